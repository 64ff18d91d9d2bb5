//! systemd units: the one that runs sentinel itself, and one service of
//! the config exported as a standalone unit.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{duration, made_by, Setup};
use crate::config::{
    Condition, Config, IoClass, Limits, ListenAddr, Readiness, RestartPolicy, SeccompAction,
    SeccompProfile, ServiceConfig, ServiceKind, RLIM_INFINITY,
};

/// How often systemd expects sentinel's `WATCHDOG=1` (sentinel pings at
/// half of it). Long enough that a loaded machine never trips it, short
/// enough that a hung loop is restarted within a minute.
pub const WATCHDOG: Duration = Duration::from_secs(30);

/// The unit that runs `sentinel run -c CONFIG`.
pub fn main_unit(s: &Setup) -> String {
    let bin = exec_word(&s.bin.to_string_lossy());
    let config = exec_word(&s.config_path.to_string_lossy());
    let shutdown = duration(s.config.supervisor.shutdown_timeout);
    let what = if s.user { "systemd --user" } else { "systemd" };
    let mut u = String::new();
    let _ = write!(
        u,
        "\
# sentinel, supervising the services of {cfg}.
# {made}
# Install: --install, or copy to {place}/sentinel.service.

[Unit]
Description=sentinel process supervisor ({cfg})
",
        cfg = s.config_path.display(),
        made = made_by(what),
        place = if s.user {
            "~/.config/systemd/user"
        } else {
            "/etc/systemd/system"
        },
    );
    if !s.user {
        u.push_str("After=network.target\n");
    }
    let _ = write!(
        u,
        "
[Service]
# sentinel says READY=1 once every `required` service is ready (what
# /readyz reports), keeps a one-line summary in `systemctl status`
# (STATUS=), says STOPPING=1 when it stops, and pings the watchdog from its
# event loop: a hung sentinel is killed and restarted. Its services do not
# see NOTIFY_SOCKET: only sentinel talks to systemd.
Type=notify
NotifyAccess=main
ExecStartPre={bin} check -c {config}
ExecStart={bin} run -c {config}
# SIGHUP: sentinel reopens its log files (after logrotate) and applies the
# config again; a config with errors fails the reload instead.
ExecReload={bin} check -c {config}
ExecReload=/bin/kill -HUP $MAINPID
WatchdogSec={watchdog}
# Not ready within this long (systemd's default, spelled out): the start
# failed. Raise it when the stack takes longer to become ready.
TimeoutStartSec=90s
# On stop, sentinel stops its services itself, dependents first, within
# shutdown_timeout ({shutdown}). KillMode=mixed sends SIGTERM to sentinel
# alone (signalling every process of the unit at once would break that
# order), and after TimeoutStopSec (shutdown_timeout + {margin}) SIGKILL to
# whatever is left in the unit's cgroup, so nothing outlives the unit.
KillMode=mixed
TimeoutStopSec={stop}
# sentinel makes a cgroup per service below its own, and moves itself
# into a leaf: the subtree is delegated to it.
Delegate=yes
Restart=on-failure

[Install]
WantedBy={wanted}
",
        watchdog = duration(WATCHDOG),
        margin = duration(super::STOP_MARGIN),
        stop = duration(s.stop_timeout()),
        wanted = if s.user {
            "default.target"
        } else {
            "multi-user.target"
        },
    );
    u
}

// ---------------------------------------------------------------------------
// Quoting. systemd reads values as words: quotes and C escapes, `%` starts a
// specifier, and in command lines `$` starts a variable.

/// One word of a unit file value (`exec`: of a command line).
fn word(s: &str, exec: bool) -> String {
    let mut body = String::new();
    let mut quote = s.is_empty() || (exec && s == ";");
    for c in s.chars() {
        match c {
            '%' => body.push_str("%%"),
            '$' if exec => body.push_str("$$"),
            '\\' => {
                body.push_str(r"\\");
                quote = true;
            }
            '"' => {
                body.push_str("\\\"");
                quote = true;
            }
            '\n' => {
                body.push_str(r"\n");
                quote = true;
            }
            '\t' => {
                body.push_str(r"\t");
                quote = true;
            }
            c if c.is_control() => {
                let _ = write!(body, "\\u{:04x}", c as u32);
                quote = true;
            }
            ' ' | '\'' => {
                body.push(c);
                quote = true;
            }
            c => body.push(c),
        }
    }
    if quote {
        format!("\"{body}\"")
    } else {
        body
    }
}

fn exec_word(s: &str) -> String {
    word(s, true)
}

fn words<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .map(|s| word(s, false))
        .collect::<Vec<_>>()
        .join(" ")
}

fn path_words(paths: &[PathBuf]) -> String {
    let v: Vec<String> = paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    words(v.iter().map(String::as_str))
}

// ---------------------------------------------------------------------------
// One service as a unit.

/// The lines of a unit, by section.
#[derive(Default)]
struct Unit {
    unit: Vec<String>,
    service: Vec<String>,
    install: Vec<String>,
}

impl Unit {
    fn set(&mut self, key: &str, value: impl std::fmt::Display) {
        self.service.push(format!("{key}={value}"));
    }
    /// A setting with no equivalent.
    fn none(&mut self, key: &str, why: impl std::fmt::Display) {
        self.service.push(format!(
            "# sentinel: {key} has no systemd equivalent: {why}"
        ));
    }
    /// A setting whose translation needs a word of explanation.
    fn note(&mut self, key: &str, text: impl std::fmt::Display) {
        self.service.push(format!("# sentinel: {key}: {text}"));
    }
    /// A note in [Unit], by the dependencies.
    fn unit_note(&mut self, key: &str, text: impl std::fmt::Display) {
        self.unit.push(format!("# sentinel: {key}: {text}"));
    }
}

/// Service `name` of the config as a standalone unit (`NAME.service`).
pub fn service_unit(s: &Setup, name: &str) -> Result<String, String> {
    let cfg = &s.config;
    let Some(svc) = cfg.services.iter().find(|(n, _)| n == name).map(|(_, v)| v) else {
        let names: Vec<&str> = cfg.services.iter().map(|(n, _)| n.as_str()).collect();
        return Err(format!(
            "no service {name:?} in {}; it has: {}",
            s.config_path.display(),
            names.join(", ")
        ));
    };
    let mut u = Unit::default();
    u.unit.push(format!(
        "Description=sentinel service {name}, exported from {}",
        s.config_path.display()
    ));
    dependencies(cfg, svc, &mut u);
    if let Some(l) = &svc.scaling.start_limit {
        u.unit.push(format!("StartLimitBurst={}", l.burst));
        u.unit
            .push(format!("StartLimitIntervalSec={}", duration(l.interval)));
    }

    kind(svc, &mut u);
    command(svc, &mut u);
    identity_and_env(svc, s.user, &mut u);
    restart(svc, &mut u);
    limits(cfg, svc, &mut u);
    priorities(svc, &mut u);
    sandbox(svc, &mut u);
    seccomp(svc, &mut u);
    lifecycle_notes(cfg, name, svc, &mut u);
    scaling_notes(cfg, name, svc, &mut u);

    u.install.push(format!(
        "WantedBy={}",
        if s.user {
            "default.target"
        } else {
            "multi-user.target"
        }
    ));
    if !svc.autostart {
        u.install.push(
            "# sentinel: autostart = false: leave this unit disabled and start it by hand"
                .to_string(),
        );
    }

    let mut out = format!(
        "# {name}, one service of {cfg}, as a standalone unit.\n# {made}\n\
         # Directives are the equivalents of its settings; `# sentinel:` comments\n\
         # name what systemd cannot express, and the nearest way.\n",
        cfg = s.config_path.display(),
        made = made_by(&format!("systemd --service {name}")),
    );
    for (title, lines) in [
        ("Unit", &u.unit),
        ("Service", &u.service),
        ("Install", &u.install),
    ] {
        let _ = write!(out, "\n[{title}]\n");
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

fn dependencies(cfg: &Config, svc: &ServiceConfig, u: &mut Unit) {
    for (dep, cond) in &svc.lifecycle.depends_on {
        u.unit.push(format!("Requires={dep}.service"));
        u.unit.push(format!("After={dep}.service"));
        let Some(d) = cfg.services.iter().find(|(n, _)| n == dep).map(|(_, v)| v) else {
            continue;
        };
        let key = format!("depends_on.{dep}");
        let dep_ready = match (d.lifecycle.kind, d.lifecycle.ready) {
            (ServiceKind::Oneshot, _) => "when it has run to completion",
            (_, Readiness::Notify) => "at its READY=1",
            _ => "once it is exec'd",
        };
        match cond {
            Condition::Healthy => u.unit.push(format!(
                "# sentinel: {key} = \"healthy\" has no systemd equivalent: After= waits for {dep} {dep_ready}, not for its health check"
            )),
            Condition::Ready if matches!(d.lifecycle.ready, Readiness::Fd | Readiness::Healthy) => {
                u.unit_note(
                    &format!("{key} = \"ready\""),
                    format!("{dep}'s readiness (ready = fd or healthy) has no systemd form, so After= waits for it only {dep_ready}"),
                )
            }
            Condition::Started if d.lifecycle.ready == Readiness::Notify => u.unit_note(
                &format!("{key} = \"started\""),
                format!("After= waits for {dep} {dep_ready}, later than sentinel does"),
            ),
            _ => {}
        }
        if !d.lifecycle.propagate {
            u.unit_note(
                &key,
                format!("Requires= also restarts this unit when {dep} restarts; sentinel does that only with propagate = true on {dep} (Wants= would not, but starts this even when {dep} fails)"),
            );
        }
    }
}

fn kind(svc: &ServiceConfig, u: &mut Unit) {
    let life = &svc.lifecycle;
    match (life.kind, life.ready) {
        (ServiceKind::Oneshot, _) => {
            u.set("Type", "oneshot");
            if life.every.is_none() {
                // Dependents see it as done, as sentinel's "completed".
                u.set("RemainAfterExit", "yes");
            }
        }
        (_, Readiness::Notify) => u.set("Type", "notify"),
        // Ready once exec'd: what sentinel's default readiness is.
        _ => u.set("Type", "exec"),
    }
    if life.needs_notify_socket() {
        // sentinel takes notifications from any process of the service's session.
        u.set("NotifyAccess", "all");
    }
    match life.ready {
        Readiness::Fd => u.none(
            "ready = \"fd\"",
            "a newline on fd 3 is s6's protocol; under systemd the service sends READY=1 (Type=notify)",
        ),
        Readiness::Healthy => u.none(
            "ready = \"healthy\"",
            "systemd does not probe; the service can send READY=1 itself (Type=notify)",
        ),
        _ => {}
    }
}

fn command(svc: &ServiceConfig, u: &mut Unit) {
    let (program, note) = resolve_program(svc);
    let mut line = exec_word(&program);
    for a in &svc.command[1..] {
        line.push(' ');
        line.push_str(&exec_word(a));
    }
    if let Some(n) = note {
        u.note("command", n);
    }
    u.set("ExecStart", line);
    if let Some(w) = &svc.workdir {
        u.set("WorkingDirectory", word(&w.to_string_lossy(), false));
    }
}

/// The program as an absolute path where sentinel would find it: a path
/// with a `/` against `workdir`, a bare name in the service's `PATH`.
fn resolve_program(svc: &ServiceConfig) -> (String, Option<String>) {
    let program = &svc.command[0];
    if Path::new(program).is_absolute() {
        return (program.clone(), None);
    }
    if svc.isolation.root.is_some() {
        return (
            program.clone(),
            Some(format!(
                "{program:?} is looked up inside the root by systemd too (RootDirectory=)"
            )),
        );
    }
    if program.contains('/') {
        return match &svc.workdir {
            Some(w) => (w.join(program).to_string_lossy().into_owned(), None),
            None => (
                program.clone(),
                Some(format!(
                    "{program:?} is relative to sentinel's working directory; write an absolute path"
                )),
            ),
        };
    }
    let path = svc
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| {
            (!svc.clear_env)
                .then(|| std::env::var("PATH").ok())
                .flatten()
        })
        .unwrap_or_else(|| sys::spawn::DEFAULT_PATH.to_string());
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let candidate = Path::new(dir).join(program);
        if is_executable(&candidate) {
            return (candidate.to_string_lossy().into_owned(), None);
        }
    }
    (
        program.clone(),
        Some(format!(
            "{program:?} is not in PATH here; systemd looks for it in its own search path"
        )),
    )
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn identity_and_env(svc: &ServiceConfig, user_unit: bool, u: &mut Unit) {
    let iso = &svc.isolation;
    if let (Some(user), true) = (&iso.user, user_unit) {
        u.none(
            &format!("user = \"{user}\""),
            "a user unit runs as the user whose manager runs it",
        );
    } else if let Some(user) = &iso.user {
        u.set("User", &user.user);
        if let Some(g) = &user.group {
            u.set("Group", g);
        }
    }
    if !iso.supplementary_groups.is_empty() && user_unit {
        u.none(
            "supplementary_groups",
            "a user unit runs with the groups of the user whose manager runs it",
        );
    } else if !iso.supplementary_groups.is_empty() {
        let g: Vec<String> = iso
            .supplementary_groups
            .iter()
            .map(|g| g.to_string())
            .collect();
        u.set("SupplementaryGroups", g.join(" "));
    }
    for (k, v) in &svc.env {
        u.set("Environment", word(&format!("{k}={v}"), false));
    }
    if !svc.clear_env {
        u.note(
            "clear_env = false",
            "sentinel passes its own environment on; a unit gets only its Environment= lines and systemd's few (add what the service needs)",
        );
    }
}

fn restart(svc: &ServiceConfig, u: &mut Unit) {
    let oneshot = svc.lifecycle.kind == ServiceKind::Oneshot;
    let policy = match svc.restart {
        RestartPolicy::Never => "no",
        RestartPolicy::OnFailure => "on-failure",
        // A oneshot that succeeded is completed, for sentinel too; systemd
        // refuses Restart=always on a oneshot.
        RestartPolicy::Always if oneshot => "on-failure",
        RestartPolicy::Always => "always",
    };
    u.set("Restart", policy);
    if svc.restart != RestartPolicy::Never {
        let b = &svc.backoff;
        u.set("RestartSec", duration(b.initial));
        u.note(
            "backoff",
            format!(
                "sentinel waits {} after the first failure, {} times longer after each next one up to {}, and starts over after a run of {}; systemd 252 waits RestartSec= every time (systemd 254+: RestartSteps=, RestartMaxDelaySec=)",
                duration(b.initial),
                b.factor,
                duration(b.max),
                duration(b.reset_after)
            ),
        );
    }
    match svc.lifecycle.start_timeout {
        Some(t) => u.set("TimeoutStartSec", duration(t)),
        None => u.set("TimeoutStartSec", "infinity"),
    }
    u.set("KillSignal", svc.stop_signal);
    u.set("TimeoutStopSec", duration(svc.stop_timeout));
    if let Some(w) = svc.lifecycle.watchdog {
        u.set("WatchdogSec", duration(w));
    }
}

/// cgroup limits as directives.
fn limit_lines(l: &Limits) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(n) = l.memory_max {
        v.push(format!("MemoryMax={n}"));
    }
    if let Some(n) = l.memory_high {
        v.push(format!("MemoryHigh={n}"));
    }
    if let Some(n) = l.memory_swap_max {
        v.push(format!("MemorySwapMax={n}"));
    }
    if let Some(c) = l.cpu_max {
        let permyriad = c.quota_us as u128 * 10_000 / c.period_us as u128;
        let pct = if permyriad % 100 == 0 {
            (permyriad / 100).to_string()
        } else {
            format!("{}.{:02}", permyriad / 100, permyriad % 100)
                .trim_end_matches('0')
                .to_string()
        };
        v.push(format!("CPUQuota={pct}%"));
        if c.period_us != 100_000 {
            v.push(format!(
                "CPUQuotaPeriodSec={}",
                duration(Duration::from_micros(c.period_us))
            ));
        }
    }
    if let Some(n) = l.cpu_weight {
        v.push(format!("CPUWeight={n}"));
    }
    if let Some(n) = l.pids_max {
        v.push(format!("TasksMax={n}"));
    }
    if let Some(n) = l.io_weight {
        v.push(format!("IOWeight={n}"));
    }
    for io in &l.io_max {
        // systemd takes a path; a major:minor pair has one under /dev/block.
        let dev = if io.device.starts_with('/') {
            io.device.clone()
        } else {
            format!("/dev/block/{}", io.device)
        };
        let dev = word(&dev, false);
        for (key, val) in [
            ("IOReadBandwidthMax", io.rbps),
            ("IOWriteBandwidthMax", io.wbps),
            ("IOReadIOPSMax", io.riops),
            ("IOWriteIOPSMax", io.wiops),
        ] {
            if let Some(n) = val {
                v.push(format!("{key}={dev} {n}"));
            }
        }
    }
    v
}

fn limits(cfg: &Config, svc: &ServiceConfig, u: &mut Unit) {
    let iso = &svc.isolation;
    u.service.extend(limit_lines(&iso.limits));
    if iso.limits_optional && !iso.limits.is_empty() {
        u.note(
            "limits_optional",
            "systemd applies what the host's cgroup controllers allow and ignores the rest, without a word",
        );
    }
    let Some(slice) = &iso.slice else {
        return;
    };
    // [slices.a] with parent b: systemd's b-a.slice, nested by its name.
    let mut chain = vec![slice.as_str()];
    let mut cur = slice.as_str();
    while let Some(parent) = cfg
        .slices
        .iter()
        .find(|(n, _)| n == cur)
        .and_then(|(_, s)| s.parent.as_deref())
    {
        if chain.contains(&parent) {
            break;
        }
        chain.push(parent);
        cur = parent;
    }
    chain.reverse();
    if chain.iter().any(|n| n.contains('-')) {
        u.none(
            &format!("slice = {slice:?}"),
            "a '-' in a slice name means nesting to systemd; name the slices without one and use Slice=",
        );
        return;
    }
    let unit = format!("{}.slice", chain.join("-"));
    u.set("Slice", &unit);
    for (i, name) in chain.iter().enumerate() {
        let Some((_, sc)) = cfg.slices.iter().find(|(n, _)| n == name) else {
            continue;
        };
        if !sc.limits.is_empty() {
            u.note(
                &format!("slices.{name}"),
                format!(
                    "its limits go in {}.slice: [Slice] {}",
                    chain[..=i].join("-"),
                    limit_lines(&sc.limits).join(" ")
                ),
            );
        }
    }
}

/// `(libc::RLIMIT_*, systemd's LimitXXX=)`.
// The constants are a `c_uint` with glibc and a `c_int` with musl.
#[allow(clippy::unnecessary_cast)]
const RLIMITS: [(u32, &str); 16] = [
    (libc::RLIMIT_CPU as u32, "LimitCPU"),
    (libc::RLIMIT_FSIZE as u32, "LimitFSIZE"),
    (libc::RLIMIT_DATA as u32, "LimitDATA"),
    (libc::RLIMIT_STACK as u32, "LimitSTACK"),
    (libc::RLIMIT_CORE as u32, "LimitCORE"),
    (libc::RLIMIT_RSS as u32, "LimitRSS"),
    (libc::RLIMIT_NPROC as u32, "LimitNPROC"),
    (libc::RLIMIT_NOFILE as u32, "LimitNOFILE"),
    (libc::RLIMIT_MEMLOCK as u32, "LimitMEMLOCK"),
    (libc::RLIMIT_AS as u32, "LimitAS"),
    (libc::RLIMIT_LOCKS as u32, "LimitLOCKS"),
    (libc::RLIMIT_SIGPENDING as u32, "LimitSIGPENDING"),
    (libc::RLIMIT_MSGQUEUE as u32, "LimitMSGQUEUE"),
    (libc::RLIMIT_NICE as u32, "LimitNICE"),
    (libc::RLIMIT_RTPRIO as u32, "LimitRTPRIO"),
    (libc::RLIMIT_RTTIME as u32, "LimitRTTIME"),
];

fn priorities(svc: &ServiceConfig, u: &mut Unit) {
    let iso = &svc.isolation;
    if let Some(n) = iso.nice {
        u.set("Nice", n);
    }
    if let Some(p) = iso.ionice {
        match p.class {
            IoClass::Idle => u.set("IOSchedulingClass", "idle"),
            IoClass::BestEffort | IoClass::Realtime => {
                let class = if p.class == IoClass::Realtime {
                    "realtime"
                } else {
                    "best-effort"
                };
                u.set("IOSchedulingClass", class);
                u.set("IOSchedulingPriority", p.level);
            }
        }
    }
    if let Some(n) = iso.oom_score_adjust {
        u.set("OOMScoreAdjust", n);
    }
    for r in &iso.rlimits {
        let Some((_, key)) = RLIMITS.iter().find(|(res, _)| *res == r.resource) else {
            continue;
        };
        let v = |n: u64| {
            if n == RLIM_INFINITY {
                "infinity".to_string()
            } else {
                n.to_string()
            }
        };
        if r.soft == r.hard {
            u.set(key, v(r.soft));
        } else {
            u.set(key, format!("{}:{}", v(r.soft), v(r.hard)));
        }
    }
}

fn sandbox(svc: &ServiceConfig, u: &mut Unit) {
    let iso = &svc.isolation;
    let ns = iso.namespaces;
    if ns.pid {
        u.none(
            "namespaces = [\"pid\"]",
            "systemd 252 runs a unit in the host's pid namespace (systemd 257+: PrivatePIDs=yes)",
        );
    }
    if ns.net {
        u.set("PrivateNetwork", "yes");
    }
    if ns.ipc {
        u.set("PrivateIPC", "yes");
    }
    if ns.uts {
        u.set("ProtectHostname", "yes");
    }
    if let Some(h) = &iso.hostname {
        u.none(
            &format!("hostname = {h:?}"),
            "ProtectHostname=yes gives the unit its own UTS namespace, but with the host's name",
        );
    }
    if ns.user {
        u.set("PrivateUsers", "yes");
    }
    for (key, map) in [("uid_map", &iso.uid_map), ("gid_map", &iso.gid_map)] {
        if !map.is_empty() {
            u.none(key, "PrivateUsers=yes maps root and the unit's user only");
        }
    }
    if ns.cgroup {
        u.none(
            "namespaces = [\"cgroup\"]",
            "systemd 252 gives a unit no cgroup namespace; ProtectControlGroups=yes makes /sys/fs/cgroup read-only",
        );
    }
    let mounts = !iso.read_only_paths.is_empty()
        || !iso.inaccessible_paths.is_empty()
        || !iso.tmpfs.is_empty()
        || iso.root.is_some();
    if ns.mount && !mounts {
        u.note(
            "namespaces = [\"mount\"]",
            "systemd makes a mount namespace when a setting needs one (ReadOnlyPaths=, PrivateTmp= ...); alone it has no directive",
        );
    }
    if let Some(r) = &iso.root {
        u.set("RootDirectory", word(&r.to_string_lossy(), false));
    }
    let ro: Vec<PathBuf> = protect_system(&iso.read_only_paths, u);
    if !ro.is_empty() {
        u.set("ReadOnlyPaths", path_words(&ro));
    }
    if !iso.inaccessible_paths.is_empty() {
        u.set("InaccessiblePaths", path_words(&iso.inaccessible_paths));
    }
    if !iso.tmpfs.is_empty() {
        u.set("TemporaryFileSystem", path_words(&iso.tmpfs));
    }
    if let Some(caps) = &iso.capabilities {
        let names: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
        // Empty: no capabilities at all.
        u.set("CapabilityBoundingSet", names.join(" "));
        if !names.is_empty() {
            // sentinel keeps them across exec for a non-root user too.
            u.set("AmbientCapabilities", names.join(" "));
        }
    }
    u.set(
        "NoNewPrivileges",
        if iso.no_new_privs { "yes" } else { "no" },
    );
}

/// `read_only_paths` that systemd names as a whole: `/` is
/// `ProtectSystem=strict`; `/usr`, `/boot` and `/etc` together
/// `ProtectSystem=full`; `/usr` and `/boot` `ProtectSystem=yes` (which also
/// covers `/efi`). Returns the paths left for `ReadOnlyPaths=`.
fn protect_system(paths: &[PathBuf], u: &mut Unit) -> Vec<PathBuf> {
    let has = |p: &str| paths.iter().any(|x| x == Path::new(p));
    let (level, covered): (&str, &[&str]) = if has("/") {
        ("strict", &["/"])
    } else if has("/usr") && has("/boot") && has("/etc") {
        ("full", &["/usr", "/boot", "/etc"])
    } else if has("/usr") && has("/boot") {
        ("yes", &["/usr", "/boot"])
    } else {
        return paths.to_vec();
    };
    u.set("ProtectSystem", level);
    paths
        .iter()
        .filter(|p| !covered.iter().any(|c| Path::new(c) == p.as_path()))
        .cloned()
        .collect()
}

fn errno_name(n: u32) -> String {
    crate::config::errno_name(n)
}

fn seccomp(svc: &ServiceConfig, u: &mut Unit) {
    let Some(sc) = &svc.isolation.seccomp else {
        return;
    };
    let mut errno_set = false;
    if let Some(profile) = sc.profile {
        match sc.default_action {
            SeccompAction::Log => {
                // Everything runs; what the profile would refuse is logged.
                u.set("SystemCallLog", "~@system-service");
            }
            SeccompAction::Allow => {}
            action => {
                u.set("SystemCallFilter", "@system-service");
                if !sc.allow.is_empty() {
                    u.set(
                        "SystemCallFilter",
                        words(sc.allow.iter().map(String::as_str)),
                    );
                }
                if let SeccompAction::Errno(n) = action {
                    u.set("SystemCallErrorNumber", errno_name(n));
                    errno_set = true;
                }
            }
        }
        match profile {
            SeccompProfile::Default => u.note(
                "seccomp profile \"default\"",
                "systemd's @system-service group is the nearest, not the same, list",
            ),
            SeccompProfile::Strict => {
                u.set("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6");
                u.none(
                    "seccomp profile \"strict\"",
                    "@system-service with RestrictAddressFamilies= is the nearest; systemd cannot refuse fork while allowing threads, or limit ioctl to terminals",
                );
            }
        }
    }
    for rule in &sc.deny {
        let key = format!("seccomp deny {:?}", rule.syscall);
        if !rule.args.is_empty() {
            u.none(
                &key,
                "systemd filters by syscall name only, not by argument",
            );
            continue;
        }
        match rule.action {
            SeccompAction::Errno(n) => u.set(
                "SystemCallFilter",
                format!("~{}:{}", rule.syscall, errno_name(n)),
            ),
            SeccompAction::Kill => {
                u.set("SystemCallFilter", format!("~{}", rule.syscall));
                if errno_set {
                    u.note(
                        &key,
                        "with SystemCallErrorNumber= set, systemd fails the call instead of killing the process",
                    );
                }
            }
            SeccompAction::Log => u.set("SystemCallLog", &rule.syscall),
            SeccompAction::Allow => {}
        }
    }
}

fn lifecycle_notes(cfg: &Config, name: &str, svc: &ServiceConfig, u: &mut Unit) {
    let life = &svc.lifecycle;
    if let Some(every) = life.every {
        u.none(
            &format!("every = \"{}\"", duration(every)),
            format!(
                "a unit runs once per start; pair it with {name}.timer: [Timer] OnUnitInactiveSec={}",
                duration(every)
            ),
        );
    }
    if life.health.is_some() {
        u.none(
            "health",
            "systemd does not probe services; the service can ping WatchdogSec= with WATCHDOG=1, or a timer can run the check and restart the unit",
        );
    }
    if life.propagate {
        u.note(
            "propagate = true",
            format!(
                "units with Requires={name}.service restart with it, as sentinel's dependents do"
            ),
        );
    }
    if !life.required {
        u.note(
            "required = false",
            "only sentinel's own readiness (/readyz, READY=1) counts it; nothing to say to systemd",
        );
    }
    if !svc.groups.is_empty() {
        u.none(
            &format!("group = {:?}", svc.groups),
            "systemd groups units with a target: a GROUP.target, and PartOf=GROUP.target here",
        );
    }
    if let Some(sigs) = &svc.forward_signals {
        let names: Vec<String> = sigs.iter().map(|s| s.to_string()).collect();
        u.none(
            &format!("forward_signals = {names:?}"),
            format!("send them yourself: systemctl kill --signal=SIG {name}"),
        );
    }
    if let Some(dir) = &cfg.supervisor.log_dir {
        u.note(
            "log",
            format!(
                "the output goes to the journal (journalctl -u {name}), not to {}; journald rotates by its own settings",
                dir.join(format!("{name}.log")).display()
            ),
        );
    }
    if cfg
        .hooks
        .iter()
        .any(|h| h.services.is_empty() || h.services.iter().any(|s| s == name))
    {
        u.none(
            "[[hooks]]",
            "OnFailure= starts a unit when this one fails; other events have no hook",
        );
    }
}

fn scaling_notes(_cfg: &Config, name: &str, svc: &ServiceConfig, u: &mut Unit) {
    let sc = &svc.scaling;
    if let Some(n) = sc.instances {
        u.none(
            &format!("instances = \"{n}\""),
            format!(
                "one unit is one process; make this a template, {name}@.service, and start {name}@0 .. {name}@{}",
                n.max.saturating_sub(1)
            ),
        );
    }
    if let Some(p) = sc.port_base {
        u.none(
            &format!("port_base = {p}"),
            "in a template, give each instance its PORT with EnvironmentFile=/etc/NAME/%i.env",
        );
    }
    for l in &sc.listen {
        let listen = match &l.addr {
            ListenAddr::Tcp(a) => a.to_string(),
            ListenAddr::Unix(p) => p.display().to_string(),
        };
        u.note(
            &format!("listen {}", l.addr),
            format!(
                "make {name}.socket with [Socket] ListenStream={listen} FileDescriptorName={}; systemd passes it as LISTEN_FDS, as sentinel does",
                l.name
            ),
        );
    }
    if sc.autoscale.is_some() {
        u.none(
            "autoscale",
            "systemd does not scale; start or stop template instances from outside",
        );
    }
    if sc.critical {
        u.none(
            "critical = true",
            "sentinel stops everything when it is down for good; the nearest is FailureAction= (exit in a container, reboot on a host)",
        );
    }
    if sc.watch.is_some() {
        u.none(
            "watch",
            format!("a {name}-watch.path unit (PathChanged=) can start a oneshot running `systemctl restart {name}`"),
        );
    }
}

#[cfg(test)]
pub(super) fn test_word(s: &str, exec: bool) -> String {
    word(s, exec)
}
