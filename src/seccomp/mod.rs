//! Seccomp: compile a service's `config::Seccomp` into one classic-BPF
//! program, in the parent, before fork. The child only hands the program
//! to `seccomp(SECCOMP_SET_MODE_FILTER, 0, &sock_fprog)` (the sys crate
//! does that, as the last step before `execve`, after
//! `PR_SET_NO_NEW_PRIVS`).
//!
//! # Modes
//!
//! - **With a profile** (`default` or `strict`): an allow-list. A syscall
//!   the profile (plus `allow`) does not name gets `default_action`
//!   (`errno:EPERM` unless configured). `deny` rules are checked *before*
//!   the allow-list, in the order written: the first rule whose syscall
//!   matches and whose argument conditions all hold decides (a rule without
//!   conditions always holds). A rule whose action is `log` therefore
//!   allows and logs the call even when the profile would refuse it. A
//!   profile's `default_action` cannot be `allow` (that would be no
//!   filter); `log` is accepted: an audit mode that refuses nothing and
//!   logs what the profile would refuse.
//! - **Without a profile**: a deny-list. Everything is allowed except what
//!   `deny` names (first matching rule decides, as above). `allow` makes no
//!   sense here and is an error, so is a `deny` rule whose action is `allow`.
//!
//! Every program starts by checking `seccomp_data.arch`: a call made
//! through another ABI (32-bit x86 via `int 0x80` on x86_64, arm32 on
//! aarch64) kills the process, since its syscall numbers mean other things.
//! On x86_64 a deny-list also refuses (EPERM) every number with the x32
//! bit (`nr >= 0x40000000`): x32 calls share the 64-bit ABI's audit arch
//! but not its numbers, so `mount` through x32 would slip past a rule for
//! 64-bit `mount`. An allow-list needs no such guard: it matches exact
//! 64-bit numbers, so x32 numbers fall to `default_action`.
//!
//! Argument conditions compare the low 32 bits of the argument when the
//! value (and mask) fit in 32 bits, and all 64 bits otherwise. The kernel
//! reads `int`, `unsigned int` and most flag arguments from the low half
//! of the register only, so a 64-bit comparison could be dodged by a
//! process that puts garbage in the upper half (`socket(0x1_0000_0010,..)`
//! is `socket(AF_NETLINK,..)` to the kernel).
//!
//! # How the program is put together
//!
//! seccompiler builds filters with one match action and one mismatch
//! action each. sentinel needs several actions (one per deny rule, then
//! the allow-list's default), so `compile` builds one seccompiler filter
//! per run of consecutive `deny` rules that share an action, each with a
//! private "no opinion" mismatch value, then the allow-list filter (match
//! allow, mismatch `default_action`), and chains them into **one**
//! program: each piece loses seccompiler's arch check (the program checks
//! the arch once, at the top), and each "no opinion" return becomes a jump
//! to the next piece. The last piece's answers are final (the allow-list's
//! two actions, or an unconditional allow after a deny-list).
//!
//! One program rather than several stacked filters, because stacking
//! cannot express "checked first": the kernel runs every installed filter
//! and keeps the most severe answer (kill > errno > log > allow), not the
//! first; because the first filter of a stack would have to allow
//! `seccomp()` itself for the next one to load; and because one syscall in
//! the child is simpler to get right than several.
//!
//! # The Default profile
//!
//! For ordinary services: what glibc and musl programs, shells, Python,
//! Node, the JVM and Go need, and nothing that administers the machine.
//!
//! - Allowed: process life and memory (`execve`, `execveat`, `brk`,
//!   `mmap`, `mprotect`, `munmap`, `mremap`, `madvise`, `msync`,
//!   `mincore`, the `mlock` family (bounded by `RLIMIT_MEMLOCK`), the
//!   `pkey_*` calls, `map_shadow_stack`, `arch_prctl`, `set_tid_address`,
//!   `set_robust_list`, `rseq`, `prlimit64`, `getrlimit`, `setrlimit`,
//!   `getrandom`, the futex calls, `membarrier`, `memfd_create`, `clone`,
//!   `clone3`, `fork`, `vfork`, `wait4`, `waitid`, `exit`, `exit_group`,
//!   `restart_syscall`, `prctl`, `capget`, `capset`, `seccomp` and
//!   landlock, which only ever restrict further); file descriptors and I/O
//!   (`read`/`write` and their `p`/`v`/`v2` forms, `open`, `openat`,
//!   `openat2`, `creat`, `close`, `close_range`, `lseek`, `fcntl`, `ioctl`,
//!   `dup*`, `pipe*`, `flock`, the sync calls, `fallocate`, `fadvise64`,
//!   `readahead`, `truncate`, `ftruncate`, `sendfile`, `splice`, `tee`,
//!   `vmsplice`, `copy_file_range`, Linux AIO `io_*` (not io_uring),
//!   `cachestat`); waiting (`poll`, `ppoll`, `select`, `pselect6`,
//!   `epoll_*`, `eventfd*`, `signalfd*`, `timerfd_*`, `inotify_*`); the
//!   file system (the stat family, `statfs`, `fstatfs`, `access`,
//!   `faccessat*`, `getdents*`, `getcwd`, `chdir`, `fchdir`, rename, mkdir,
//!   rmdir, unlink, link, symlink, readlink and their `*at` forms, the
//!   chmod and chown families, `umask`, the utime family, the read-only
//!   xattr calls); sockets (`socket`, `socketpair`, `bind`, `listen`,
//!   `accept*`, `connect`, `get{sock,peer}name`, send and receive calls,
//!   `{set,get}sockopt`, `shutdown`); signals (`rt_sig*`, `sigaltstack`,
//!   `kill`, `tgkill`, `tkill`, `pause`, `alarm`, itimers, `pidfd_open`,
//!   `pidfd_send_signal`); identity and sessions (the get/set uid and gid
//!   families, as Docker allows: capabilities decide whether they work;
//!   `setsid`, `setpgid`, `getpgid`, `getpgrp`, `getsid`); time and
//!   scheduling (clocks and sleeps, POSIX timers, `getrusage`, `times`,
//!   `sched_yield`, the `sched_get*` calls, `sched_setaffinity`,
//!   `{get,set}priority`, `ioprio_{get,set}`, `uname`, `sysinfo`,
//!   `getcpu`); System V IPC and POSIX message queues.
//! - Allowed with conditions: `mknod`/`mknodat` for FIFOs, sockets and
//!   regular files only (so `mkfifo` works, device nodes do not);
//!   `personality` for the plain Linux personality, PER_LINUX32, UNAME26
//!   and the query value 0xffffffff only (not ADDR_NO_RANDOMIZE).
//! - Refused (anything not listed, among them): `mount`, `umount2`,
//!   `pivot_root`, `chroot`, the new mount API, `swapon`, `swapoff`,
//!   `reboot`, `kexec_*`, module loading, `bpf`, `perf_event_open`,
//!   `ptrace`, `process_vm_*`, `pidfd_getfd`, `kcmp`, the keyring calls,
//!   `unshare`, `setns`, clock and time setting, `acct`, `quotactl*`,
//!   `lookup_dcookie`, `userfaultfd`, `open_by_handle_at`,
//!   `name_to_handle_at`, `iopl`, `ioperm`, `modify_ldt`, `syslog`,
//!   `vhangup`, `sethostname`, `setdomainname`, io_uring, fanotify, the
//!   NUMA policy calls, the xattr-changing calls.
//!
//! # The Strict profile
//!
//! Default minus: process creation beyond threads (`fork`, `vfork`,
//! `execveat`, `clone3`, and `clone` unless its flags have CLONE_THREAD;
//! `clone3` answers ENOSYS so that glibc falls back to `clone` for
//! threads); sockets other than AF_UNIX, AF_INET and AF_INET6
//! (`socketpair`: AF_UNIX); `ioctl` other than TCGETS, TIOCGWINSZ,
//! FIONREAD, FIONBIO, FIOCLEX, FIONCLEX; the chown family; every uid, gid,
//! group and capability change (the service already runs as the user it
//! should); `mknod`, `mknodat`, `personality`. `execve` stays: the
//! service's own `execve` comes after the filter is loaded.
//!
//! A syscall named in `allow` is allowed without conditions and without
//! the ENOSYS answer: `allow = ["socket"]` on Strict allows every family.
//!
//! # Architectures
//!
//! x86_64 and aarch64 (syscall numbers from the `libc` crate). Elsewhere
//! `compile` returns an error, which the caller reports for services that
//! ask for seccomp.

mod profiles;
mod syscalls;
// The tests name x86_64 syscalls (`fork`, `mknod`...) and the x32 ABI.
#[cfg(all(test, target_arch = "x86_64"))]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use seccompiler::{
    BpfProgram, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

use crate::config::{ArgCondition, ArgOp, Seccomp, SeccompAction};

/// A compiled filter: the instructions of one classic-BPF program, ready
/// for a `sock_fprog { len, filter }`.
#[derive(Clone)]
pub struct Program {
    instructions: Vec<libc::sock_filter>,
}

impl Program {
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.instructions
    }
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Program({} instructions)", self.instructions.len())
    }
}

// Classic BPF opcodes (linux/bpf_common.h) for the instructions written
// here; seccompiler writes the rest.
/// BPF_LD | BPF_W | BPF_ABS
const LD_W_ABS: u16 = 0x20;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x05 | 0x10;
const JMP_JGE_K: u16 = 0x05 | 0x30;
const RET_K: u16 = 0x06;

/// The kernel's limit on one program (BPF_MAXINSNS).
const MAX_INSTRUCTIONS: usize = 4096;

/// `struct seccomp_data` offsets.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;

const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
const AUDIT_ARCH_AARCH64: u32 = 183 | 0x8000_0000 | 0x4000_0000;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The "no opinion" value a piece returns before chaining rewrites it into
/// a jump to the next piece: SECCOMP_RET_TRACE with a data value of our
/// own. sentinel never asks for TRACE, so no real answer collides.
const CONTINUE_DATA: u32 = 0xfff7;
const CONTINUE: u32 = libc::SECCOMP_RET_TRACE | CONTINUE_DATA;

/// The architecture `compile` builds for: the one sentinel runs on.
struct Arch {
    target: TargetArch,
    audit: u32,
    /// x86_64: refuse x32 numbers in a deny-list.
    x32: bool,
}

fn arch() -> Result<Arch, String> {
    if cfg!(target_arch = "x86_64") {
        Ok(Arch {
            target: TargetArch::x86_64,
            audit: AUDIT_ARCH_X86_64,
            x32: true,
        })
    } else if cfg!(target_arch = "aarch64") {
        Ok(Arch {
            target: TargetArch::aarch64,
            audit: AUDIT_ARCH_AARCH64,
            x32: false,
        })
    } else {
        Err(format!(
            "seccomp filters are not supported on {} (only x86_64 and aarch64)",
            std::env::consts::ARCH
        ))
    }
}

/// Compile `cfg` into one program (see the module docs for its shape).
/// Errors name the offending syscall, rule or action.
pub fn compile(cfg: &Seccomp) -> Result<Program, String> {
    let arch = arch()?;

    // Checked first, in order: the user's deny rules, then the profile's
    // own answers (Strict's clone3 → ENOSYS).
    let mut first: Vec<(i64, SeccompAction, &[ArgCondition])> = Vec::new();
    for rule in &cfg.deny {
        if rule.action == SeccompAction::Allow {
            return Err(format!(
                "deny rule for \"{}\" has action allow; name the syscall in `allow` instead",
                rule.syscall
            ));
        }
        first.push((number(&rule.syscall, "deny")?, rule.action, &rule.args));
    }

    let mut pieces: Vec<Vec<libc::sock_filter>> = Vec::new();
    let last = match cfg.profile {
        Some(profile) => {
            if cfg.default_action == SeccompAction::Allow {
                return Err(
                    "a profile's default action cannot be allow (that allows everything); \
                     leave out the profile for a deny-list"
                        .to_string(),
                );
            }
            // A syscall the user allows explicitly gets no profile answer.
            for answer in profiles::answers(profile) {
                if cfg.allow.iter().any(|a| a == answer.name) {
                    continue;
                }
                if let Some(nr) = lookup(answer.name) {
                    first.push((nr, answer.action, &[]));
                }
            }
            let mut allowed: Vec<(i64, Option<Vec<ArgCondition>>)> = Vec::new();
            for entry in profiles::allowed(profile) {
                // Not every syscall exists everywhere (`open` on aarch64).
                let Some(nr) = lookup(entry.name) else {
                    continue;
                };
                if entry.any_of.is_empty() {
                    allowed.push((nr, None));
                }
                for alternative in entry.any_of {
                    allowed.push((nr, Some(alternative.to_vec())));
                }
            }
            for name in &cfg.allow {
                allowed.push((number(name, "allow")?, None));
            }
            piece(
                &arch,
                allowed,
                seccompiler::SeccompAction::Allow,
                action(cfg.default_action)?,
            )?
        }
        None => {
            if let Some(name) = cfg.allow.first() {
                return Err(format!(
                    "`allow` (\"{name}\") needs a profile: without one, everything not denied is \
                     allowed already"
                ));
            }
            vec![ret(libc::SECCOMP_RET_ALLOW)]
        }
    };

    // Consecutive rules with the same action share a piece.
    let mut start = 0;
    while start < first.len() {
        let action = first[start].1;
        let end = first[start..]
            .iter()
            .position(|r| r.1 != action)
            .map_or(first.len(), |n| start + n);
        let rules = first[start..end]
            .iter()
            .map(|&(nr, _, args)| (nr, (!args.is_empty()).then(|| args.to_vec())))
            .collect();
        let continue_ = seccompiler::SeccompAction::Trace(CONTINUE_DATA);
        let mut bpf = piece(&arch, rules, self::action(action)?, continue_)?;
        let len = bpf.len();
        for (i, ins) in bpf.iter_mut().enumerate() {
            if ins.code == RET_K && ins.k == CONTINUE {
                *ins = jump((len - i - 1) as u32);
            }
        }
        pieces.push(bpf);
        start = end;
    }
    pieces.push(last);

    let mut instructions = vec![
        load(OFFSET_ARCH),
        branch(JMP_JEQ_K, arch.audit, 1, 0),
        ret(libc::SECCOMP_RET_KILL_PROCESS),
    ];
    if arch.x32 && cfg.profile.is_none() {
        instructions.extend([
            load(OFFSET_NR),
            branch(JMP_JGE_K, X32_SYSCALL_BIT, 0, 1),
            ret(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        ]);
    }
    instructions.extend(pieces.into_iter().flatten());
    if instructions.len() > MAX_INSTRUCTIONS {
        return Err(format!(
            "the seccomp filter needs {} instructions, more than the kernel's {MAX_INSTRUCTIONS}; \
             use fewer rules",
            instructions.len()
        ));
    }
    Ok(Program { instructions })
}

/// One seccompiler filter, without its leading arch check: `rules` are
/// `(number, None)` for "always" or `(number, Some(conditions))`, several
/// per number meaning "any of".
fn piece(
    arch: &Arch,
    rules: Vec<(i64, Option<Vec<ArgCondition>>)>,
    on_match: seccompiler::SeccompAction,
    on_mismatch: seccompiler::SeccompAction,
) -> Result<Vec<libc::sock_filter>, String> {
    let mut always = BTreeSet::new();
    let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, conditions) in rules {
        let chain = map.entry(nr).or_default();
        match conditions {
            None => {
                always.insert(nr);
                chain.clear();
            }
            Some(conditions) if !always.contains(&nr) => {
                let conditions = conditions
                    .iter()
                    .map(condition)
                    .collect::<Result<Vec<_>, String>>()?;
                chain.push(SeccompRule::new(conditions).map_err(|e| e.to_string())?);
            }
            Some(_) => {}
        }
    }
    let filter =
        SeccompFilter::new(map, on_mismatch, on_match, arch.target).map_err(|e| e.to_string())?;
    let bpf = BpfProgram::try_from(filter).map_err(|e| e.to_string())?;

    let expected = [
        (LD_W_ABS, OFFSET_ARCH),
        (JMP_JEQ_K, arch.audit),
        (RET_K, libc::SECCOMP_RET_KILL_PROCESS),
    ];
    let starts_with_arch_check = bpf.len() > 3
        && bpf
            .iter()
            .zip(expected)
            .all(|(ins, (code, k))| ins.code == code && ins.k == k);
    if !starts_with_arch_check {
        return Err(
            "internal error: seccompiler's filter does not start with its arch check".into(),
        );
    }
    Ok(bpf[3..]
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect())
}

fn action(action: SeccompAction) -> Result<seccompiler::SeccompAction, String> {
    Ok(match action {
        SeccompAction::Allow => seccompiler::SeccompAction::Allow,
        // The kernel caps the errno at MAX_ERRNO; say so instead.
        SeccompAction::Errno(n) if n > 4095 => {
            return Err(format!("errno {n} is out of range (0..=4095)"))
        }
        SeccompAction::Errno(n) => seccompiler::SeccompAction::Errno(n),
        SeccompAction::Kill => seccompiler::SeccompAction::KillProcess,
        SeccompAction::Log => seccompiler::SeccompAction::Log,
    })
}

fn condition(c: &ArgCondition) -> Result<SeccompCondition, String> {
    if c.index > 5 {
        return Err(format!(
            "argument index {} is out of range (0..=5)",
            c.index
        ));
    }
    let wide = |v: u64| v > u64::from(u32::MAX);
    let (op, is_wide) = match c.op {
        ArgOp::Eq => (SeccompCmpOp::Eq, wide(c.value)),
        ArgOp::Ne => (SeccompCmpOp::Ne, wide(c.value)),
        ArgOp::Lt => (SeccompCmpOp::Lt, wide(c.value)),
        ArgOp::Le => (SeccompCmpOp::Le, wide(c.value)),
        ArgOp::Gt => (SeccompCmpOp::Gt, wide(c.value)),
        ArgOp::Ge => (SeccompCmpOp::Ge, wide(c.value)),
        ArgOp::MaskedEq(mask) => (SeccompCmpOp::MaskedEq(mask), wide(c.value) || wide(mask)),
    };
    let len = if is_wide {
        SeccompCmpArgLen::Qword
    } else {
        SeccompCmpArgLen::Dword
    };
    SeccompCondition::new(c.index, len, op, c.value).map_err(|e| e.to_string())
}

/// The number of syscall `name` on this architecture.
fn lookup(name: &str) -> Option<i64> {
    syscalls::TABLE
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, nr)| nr)
}

/// `lookup`, or an error naming the syscall, where it was written, and a
/// close name if there is one.
fn number(name: &str, list: &str) -> Result<i64, String> {
    lookup(name).ok_or_else(|| {
        let mut message = format!(
            "unknown syscall \"{name}\" in `{list}` (on {})",
            std::env::consts::ARCH
        );
        if let Some(close) = suggest(name) {
            message.push_str(&format!("; did you mean \"{close}\"?"));
        }
        message
    })
}

/// The table's closest name to `name`, if it is close enough to be a typo.
// config has the same helper, private to it; worth sharing later.
fn suggest(name: &str) -> Option<&'static str> {
    let name = name.trim().to_lowercase();
    let limit = (name.chars().count() / 3).clamp(1, 3);
    syscalls::TABLE
        .iter()
        .map(|&(candidate, _)| (edit_distance(&name, candidate), candidate))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, with an adjacent swap counting as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j]
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

fn load(offset: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: LD_W_ABS,
        jt: 0,
        jf: 0,
        k: offset,
    }
}

fn branch(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

fn jump(offset: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: JMP_JA,
        jt: 0,
        jf: 0,
        k: offset,
    }
}

fn ret(value: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: RET_K,
        jt: 0,
        jf: 0,
        k: value,
    }
}
