//! `sentinel exec -- CMD ARGS`: one command, the way tini runs it. Signals
//! are forwarded, orphans reaped, and the command's exit status becomes
//! sentinel's (128 + N when killed by signal N; 127 when the command is
//! missing, 126 when it cannot be executed).

use std::io::IsTerminal;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::cli::ExecArgs;
use crate::config::{
    check_hostname, parse_size, Capability, CpuMax, IdMap, IdSpec, IoPriority, Isolation, Rlimit,
    Seccomp, SeccompAction, SeccompProfile, SeccompRule, UserSpec,
};
use crate::pid1;

/// Signals that are about sentinel itself and are never forwarded.
const NOT_FORWARDED: [Signal; 9] = [
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

/// The isolation the flags ask for, or every flag that is wrong.
pub fn isolation(a: &ExecArgs) -> Result<Isolation, Vec<String>> {
    let mut errors = Vec::new();
    let mut iso = Isolation::default();
    let mut err = |flag: &str, e: String| errors.push(format!("--{flag}: {e}"));
    let size = |v: &Option<String>, flag: &str, err: &mut dyn FnMut(&str, String)| -> Option<u64> {
        v.as_deref()
            .and_then(|t| parse_size(t).map_err(|e| err(flag, e)).ok())
    };
    iso.limits.memory_max = size(&a.memory_max, "memory-max", &mut err);
    iso.limits.memory_high = size(&a.memory_high, "memory-high", &mut err);
    if let Some(c) = &a.cpu_max {
        match CpuMax::parse(c) {
            Ok(v) => iso.limits.cpu_max = v,
            Err(e) => err("cpu-max", e),
        }
    }
    for (flag, v) in [("cpu-weight", a.cpu_weight), ("io-weight", a.io_weight)] {
        if let Some(w) = v {
            if !(1..=10000).contains(&w) {
                err(flag, format!("{w} is out of range; use 1..10000"));
            }
        }
    }
    iso.limits.cpu_weight = a.cpu_weight;
    iso.limits.io_weight = a.io_weight;
    if a.pids_max == Some(0) {
        err(
            "pids-max",
            "0 would allow no process at all; use 1 or more".into(),
        );
    }
    iso.limits.pids_max = a.pids_max;
    iso.limits_optional = a.limits_optional;
    if let Some(n) = a.nice {
        if !(-20..=19).contains(&n) {
            err("nice", format!("{n} is out of range; use -20..19"));
        }
    }
    iso.nice = a.nice;
    if let Some(i) = &a.ionice {
        match IoPriority::parse(i) {
            Ok(p) => iso.ionice = Some(p),
            Err(e) => err("ionice", e),
        }
    }
    if let Some(o) = a.oom_score_adjust {
        if !(-1000..=1000).contains(&o) {
            err(
                "oom-score-adjust",
                format!("{o} is out of range; use -1000..1000"),
            );
        }
    }
    iso.oom_score_adjust = a.oom_score_adjust;
    for r in &a.rlimit {
        match r.split_once('=') {
            Some((name, value)) => match Rlimit::parse(name, value) {
                Ok(l) => iso.rlimits.push(l),
                Err(e) => err("rlimit", e),
            },
            None => err(
                "rlimit",
                format!("{r:?}: use NAME=SOFT[:HARD], e.g. nofile=1024"),
            ),
        }
    }
    if let Some(u) = &a.user {
        match UserSpec::parse(u) {
            Ok(spec) => iso.user = Some(spec),
            Err(e) => err("user", e),
        }
    }
    for g in &a.group_add {
        match IdSpec::parse(g) {
            Ok(spec) => iso.supplementary_groups.push(spec),
            Err(e) => err("group-add", e),
        }
    }
    if let Some(list) = &a.unshare {
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if let Err(e) = iso.namespaces.add(name) {
                err("unshare", e);
            }
        }
    }
    if let Some(h) = &a.hostname {
        match check_hostname(h) {
            Ok(()) if iso.namespaces.uts => iso.hostname = Some(h.clone()),
            Ok(()) => err(
                "hostname",
                "needs the uts namespace: add --unshare uts".into(),
            ),
            Err(e) => err("hostname", e),
        }
    }
    for (flag, maps, target) in [
        ("uid-map", &a.uid_map, &mut iso.uid_map),
        ("gid-map", &a.gid_map, &mut iso.gid_map),
    ] {
        for m in maps {
            match IdMap::parse(m) {
                Ok(v) => target.push(v),
                Err(e) => err(flag, e),
            }
        }
        if !maps.is_empty() && !iso.namespaces.user {
            err(flag, "needs the user namespace: add --unshare user".into());
        }
    }
    let mount_ns = iso.namespaces.mount;
    for (flag, list, target) in [
        ("ro", &a.ro, &mut iso.read_only_paths),
        ("hide", &a.hide, &mut iso.inaccessible_paths),
        ("tmpfs", &a.tmpfs, &mut iso.tmpfs),
    ] {
        for p in list {
            if !p.starts_with('/') {
                err(flag, format!("{p:?} is not an absolute path"));
            }
            target.push(p.into());
        }
        if !list.is_empty() && !mount_ns {
            err(
                flag,
                "needs the mount namespace: add --unshare mount".into(),
            );
        }
    }
    if let Some(r) = &a.root {
        if !mount_ns {
            err(
                "root",
                "needs the mount namespace: add --unshare mount".into(),
            );
        }
        iso.root = Some(r.clone());
    }
    if !a.cap_keep.is_empty() {
        let mut keep = Vec::new();
        for c in &a.cap_keep {
            if c.eq_ignore_ascii_case("none") {
                continue;
            }
            match Capability::from_name(c) {
                Ok(cap) => keep.push(cap),
                Err(e) => err("cap-keep", e),
            }
        }
        iso.capabilities = Some(keep);
    }
    iso.no_new_privs = !a.allow_new_privs;
    if a.seccomp.is_some() || !a.seccomp_deny.is_empty() || !a.seccomp_allow.is_empty() {
        let profile = match a.seccomp.as_deref().map(SeccompProfile::parse).transpose() {
            Ok(p) => p,
            Err(e) => {
                err("seccomp", e);
                None
            }
        };
        if profile.is_none() && !a.seccomp_allow.is_empty() {
            err(
                "seccomp-allow",
                "only adds to a profile: give --seccomp default or strict".into(),
            );
        }
        iso.seccomp = Some(Seccomp {
            profile,
            default_action: SeccompAction::default(),
            allow: a.seccomp_allow.clone(),
            deny: a
                .seccomp_deny
                .iter()
                .map(|name| SeccompRule {
                    syscall: name.clone(),
                    action: SeccompAction::default(),
                    args: Vec::new(),
                })
                .collect(),
        });
    }
    if errors.is_empty() {
        Ok(iso)
    } else {
        Err(errors)
    }
}

pub fn run(a: &ExecArgs) -> i32 {
    let argv = &a.command;
    if argv.is_empty() {
        eprintln!("sentinel exec: no command given; usage: sentinel exec [FLAGS] -- CMD [ARGS...]");
        return 2;
    }
    let iso = match isolation(a) {
        Ok(i) => i,
        Err(errors) => {
            for e in errors {
                eprintln!("sentinel exec: {e}");
            }
            return 2;
        }
    };
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    for kv in &a.env {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                env.retain(|(ek, _)| ek != k);
                env.push((k.to_string(), v.to_string()));
            }
            _ => {
                eprintln!("sentinel exec: --env {kv:?}: use KEY=VALUE");
                return 2;
            }
        }
    }
    pid1::take_role();
    let mut mask = SigSet::all();
    for s in NOT_FORWARDED {
        mask.remove(s);
    }
    if let Err(e) = mask.thread_block() {
        eprintln!("sentinel exec: block signals: {e}");
        return 1;
    }
    let signals = match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sentinel exec: signalfd: {e}");
            return 1;
        }
    };
    let session = sys::spawn::Session::Group {
        foreground: std::io::stdin().is_terminal(),
    };
    // Cgroups only when a limit asks for them: a plain `exec` stays as
    // cheap as tini.
    let cgroups = if iso.limits.is_empty() {
        None
    } else {
        let (cg, notes) = crate::prepare::cgroups(&a.cgroup_root);
        if cg.is_none() {
            for n in notes {
                eprintln!("sentinel exec: {n}");
            }
        }
        cg
    };
    let name = format!("exec-{}", std::process::id());
    let prepared = match crate::prepare::prepare(
        &name,
        argv,
        env,
        a.workdir.as_deref(),
        &iso,
        &[],
        cgroups.as_ref(),
        &std::env::temp_dir(),
        session,
        None,
    ) {
        Ok(p) => p,
        Err(e) => {
            let e = e.strip_prefix(&format!("service {name}: ")).unwrap_or(&e);
            let e = e.replace("set limits_optional = true", "pass --limits-optional");
            eprintln!("sentinel exec: {e}");
            return 2;
        }
    };
    for w in &prepared.warnings {
        eprintln!("sentinel exec: warning: {w}");
    }
    let plan = prepared.plan;
    let cgroup = prepared.leaf.as_ref().map(|l| sys::spawn::Cgroup {
        dir: l.dir_fd(),
        procs: l.procs_fd(),
    });
    let child = match sys::spawn::spawn(&plan, &[sys::spawn::Stdio::Inherit; 3], cgroup) {
        Ok(child) => child.pid,
        Err(e) => {
            eprintln!("sentinel exec: {}: {e}", argv[0]);
            return if e.is_not_found() { 127 } else { 126 };
        }
    };
    let code = wait(&signals, child);
    if let Some(leaf) = &prepared.leaf {
        // Nothing the command forked outlives it; then the group goes.
        let _ = leaf.kill();
        let _ = leaf.remove();
    }
    code
}

/// Forward signals to `child` and reap until it exits; its exit code.
fn wait(signals: &SignalFd, child: Pid) -> i32 {
    loop {
        let info = match signals.read_signal() {
            Ok(Some(info)) => info,
            Ok(None) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("sentinel exec: read signalfd: {e}");
                return 1;
            }
        };
        let sig = info.ssi_signo as i32;
        if sig != libc::SIGCHLD {
            if let Ok(s) = Signal::try_from(sig) {
                let _ = nix::sys::signal::kill(child, s);
            }
            continue;
        }
        if let Some(code) = reap_all(child) {
            return code;
        }
    }
}

/// Reap every exited child; the main child's exit code once it has exited.
fn reap_all(child: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, c)) if pid == child => code = Some(c),
            Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => code = Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return code,
            Err(nix::errno::Errno::EINTR) => {}
            Ok(_) => {}
            Err(e) => {
                eprintln!("sentinel exec: waitpid: {e}");
                return code;
            }
        }
    }
}
