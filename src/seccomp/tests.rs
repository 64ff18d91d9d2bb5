//! Compiled programs run in a small classic-BPF interpreter (the subset
//! seccomp filters use; anything else fails the test) against made-up
//! syscalls, and a few run in the real kernel, in a re-executed copy of
//! this test binary.

use super::*;
use crate::config::{SeccompProfile, SeccompRule as Rule};

// ---------------------------------------------------------------- helpers

fn nr(name: &str) -> i64 {
    lookup(name).unwrap_or_else(|| panic!("no syscall {name}"))
}

fn deny_list(deny: Vec<Rule>) -> Seccomp {
    Seccomp {
        profile: None,
        default_action: SeccompAction::Errno(1),
        allow: vec![],
        deny,
    }
}

fn profile(profile: SeccompProfile) -> Seccomp {
    Seccomp {
        profile: Some(profile),
        default_action: SeccompAction::Errno(libc::EPERM as u32),
        allow: vec![],
        deny: vec![],
    }
}

fn rule(syscall: &str, action: SeccompAction, args: Vec<ArgCondition>) -> Rule {
    Rule {
        syscall: syscall.to_string(),
        action,
        args,
    }
}

fn deny(syscall: &str) -> Rule {
    rule(syscall, SeccompAction::Errno(libc::EPERM as u32), vec![])
}

fn arg(index: u8, op: ArgOp, value: u64) -> ArgCondition {
    ArgCondition { index, op, value }
}

/// What the filter answered, decoded.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Allow,
    Errno(i32),
    Kill,
    Log,
    Other(u32),
}

const EPERM: Verdict = Verdict::Errno(libc::EPERM);

/// A made-up syscall: `struct seccomp_data`.
struct Call {
    nr: u32,
    arch: u32,
    args: [u64; 6],
}

fn call(name: &str, args: &[u64]) -> Call {
    let mut all = [0; 6];
    all[..args.len()].copy_from_slice(args);
    Call {
        nr: nr(name) as u32,
        arch: AUDIT_ARCH_X86_64,
        args: all,
    }
}

impl Call {
    fn word(&self, offset: u32) -> u32 {
        match offset {
            0 => self.nr,
            4 => self.arch,
            8 | 12 => 0x1234, // instruction_pointer: nothing filters on it
            16..=63 if offset % 4 == 0 => {
                let arg = self.args[(offset as usize - 16) / 8];
                if offset % 8 == 0 {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            _ => panic!("load from offset {offset} outside seccomp_data"),
        }
    }
}

/// Checks what the kernel's verifier checks for these opcodes: every jump
/// lands inside the program, and the last instruction returns.
fn check_shape(program: &Program) {
    let p = program.instructions();
    assert!(!p.is_empty() && p.len() <= MAX_INSTRUCTIONS);
    assert_eq!(
        p.last().map(|i| i.code),
        Some(RET_K),
        "the program must end with a return"
    );
    for (pc, ins) in p.iter().enumerate() {
        let targets: Vec<usize> = match ins.code {
            JMP_JA => vec![pc + 1 + ins.k as usize],
            0x15 | 0x25 | 0x35 | 0x45 => {
                vec![pc + 1 + usize::from(ins.jt), pc + 1 + usize::from(ins.jf)]
            }
            _ => vec![],
        };
        for t in targets {
            assert!(t < p.len(), "instruction {pc} jumps out of the program");
        }
    }
}

/// Runs `program` on `c` and decodes the answer.
fn run(program: &Program, c: &Call) -> Verdict {
    let p = program.instructions();
    let mut pc = 0;
    let mut a: u32 = 0;
    loop {
        let ins = p[pc];
        pc += 1;
        match ins.code {
            LD_W_ABS => a = c.word(ins.k),
            0x54 => a &= ins.k, // BPF_ALU | BPF_AND | BPF_K
            JMP_JA => pc += ins.k as usize,
            0x15 | 0x25 | 0x35 | 0x45 => {
                let taken = match ins.code {
                    0x15 => a == ins.k,
                    0x25 => a > ins.k,
                    0x35 => a >= ins.k,
                    _ => a & ins.k != 0,
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
            RET_K => {
                let data = ins.k & libc::SECCOMP_RET_DATA;
                return match ins.k & libc::SECCOMP_RET_ACTION_FULL {
                    libc::SECCOMP_RET_ALLOW => Verdict::Allow,
                    libc::SECCOMP_RET_ERRNO => Verdict::Errno(data as i32),
                    libc::SECCOMP_RET_KILL_PROCESS => Verdict::Kill,
                    libc::SECCOMP_RET_LOG => Verdict::Log,
                    other => Verdict::Other(other),
                };
            }
            other => panic!("opcode {other:#x} at {} is not in the interpreter", pc - 1),
        }
    }
}

fn compiled(cfg: &Seccomp) -> Program {
    let program = compile(cfg).unwrap_or_else(|e| panic!("{e}"));
    check_shape(&program);
    program
}

fn error(cfg: &Seccomp) -> String {
    compile(cfg).expect_err("compile should fail")
}

const X32: u32 = 0x4000_0000;
const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;

// ---------------------------------------------------------------- errors

#[test]
fn unknown_syscalls_are_named_with_a_suggestion() {
    let e = error(&deny_list(vec![deny("mout")]));
    assert!(e.contains("unknown syscall \"mout\" in `deny`"), "{e}");
    assert!(e.contains("did you mean \"mount\"?"), "{e}");

    let mut cfg = profile(SeccompProfile::Default);
    cfg.allow = vec!["ptrace".into(), "personalty".into()];
    let e = error(&cfg);
    assert!(
        e.contains("\"personalty\" in `allow`") && e.contains("\"personality\""),
        "{e}"
    );

    let e = error(&deny_list(vec![deny("frobnicate_everything")]));
    assert!(!e.contains("did you mean"), "{e}");
}

#[test]
fn meaningless_combinations_are_errors() {
    let mut cfg = deny_list(vec![]);
    cfg.allow = vec!["read".into()];
    assert!(error(&cfg).contains("needs a profile"));

    let cfg = deny_list(vec![rule("mount", SeccompAction::Allow, vec![])]);
    assert!(error(&cfg).contains("has action allow"));

    let mut cfg = profile(SeccompProfile::Default);
    cfg.default_action = SeccompAction::Allow;
    assert!(error(&cfg).contains("cannot be allow"));

    let cfg = deny_list(vec![rule("mount", SeccompAction::Errno(70000), vec![])]);
    assert!(error(&cfg).contains("errno 70000"));

    let cfg = deny_list(vec![rule(
        "socket",
        SeccompAction::Kill,
        vec![arg(6, ArgOp::Eq, 1)],
    )]);
    assert!(error(&cfg).contains("argument index 6"));
}

#[test]
fn suggestions_only_for_near_misses() {
    assert_eq!(suggest("opne"), Some("open"));
    assert_eq!(suggest("EXECVE"), Some("execve"));
    assert_eq!(suggest("xyzzy"), None);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}

// ---------------------------------------------------------------- tables

#[test]
fn the_x86_64_table_is_the_kernel_numbering() {
    assert_eq!(nr("read"), 0);
    assert_eq!(nr("mount"), 165);
    assert_eq!(nr("clone3"), 435);
    assert_eq!(nr("map_shadow_stack"), 453);
    assert!(syscalls::TABLE.len() > 360);
    let mut names: Vec<_> = syscalls::TABLE.iter().map(|e| e.0).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), syscalls::TABLE.len(), "a name twice");
    let mut numbers: Vec<_> = syscalls::TABLE.iter().map(|e| e.1).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), syscalls::TABLE.len(), "a number twice");
}

/// The profiles skip names the architecture lacks; on x86_64 none may be
/// missing, so this catches typos.
#[test]
fn every_profile_name_is_a_syscall() {
    for name in profiles::all_names() {
        assert!(lookup(name).is_some(), "{name} is not an x86_64 syscall");
    }
}

#[test]
fn the_default_profile_refuses_what_administers_the_machine() {
    let allowed: Vec<&str> = profiles::allowed(SeccompProfile::Default)
        .iter()
        .map(|a| a.name)
        .collect();
    for name in [
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "swapon",
        "swapoff",
        "reboot",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "bpf",
        "perf_event_open",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "keyctl",
        "add_key",
        "request_key",
        "unshare",
        "setns",
        "clock_settime",
        "settimeofday",
        "adjtimex",
        "clock_adjtime",
        "acct",
        "quotactl",
        "lookup_dcookie",
        "userfaultfd",
        "open_by_handle_at",
        "name_to_handle_at",
        "iopl",
        "ioperm",
        "syslog",
        "vhangup",
        "io_uring_setup",
        "fanotify_init",
        "sethostname",
        "setdomainname",
        "modify_ldt",
        "pidfd_getfd",
        "kcmp",
        "fsopen",
        "move_mount",
        "open_tree",
        "setxattr",
    ] {
        assert!(!allowed.contains(&name), "Default allows {name}");
    }
}

// ---------------------------------------------------------------- shape

#[test]
fn every_program_checks_the_arch_once_at_the_top() {
    let configs = [
        deny_list(vec![]),
        deny_list(vec![
            deny("mount"),
            rule("kill", SeccompAction::Kill, vec![]),
        ]),
        profile(SeccompProfile::Default),
        profile(SeccompProfile::Strict),
    ];
    for cfg in &configs {
        let p = compiled(cfg);
        let i = p.instructions();
        assert_eq!((i[0].code, i[0].k), (LD_W_ABS, OFFSET_ARCH));
        assert_eq!(
            (i[1].code, i[1].k, i[1].jt, i[1].jf),
            (JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0)
        );
        assert_eq!((i[2].code, i[2].k), (RET_K, libc::SECCOMP_RET_KILL_PROCESS));
        let arch_loads = i
            .iter()
            .filter(|x| x.code == LD_W_ABS && x.k == OFFSET_ARCH)
            .count();
        assert_eq!(arch_loads, 1, "{cfg:?}");
        assert!(
            !i.iter().any(|x| x.code == RET_K && x.k == CONTINUE),
            "a \"continue\" marker survived"
        );
    }
}

#[test]
fn an_empty_deny_list_only_guards_the_abi() {
    let p = compiled(&deny_list(vec![]));
    assert_eq!(p.instructions().len(), 7);
    assert_eq!(run(&p, &call("mount", &[])), Verdict::Allow);
}

#[test]
fn profiles_fit_comfortably() {
    for p in [SeccompProfile::Default, SeccompProfile::Strict] {
        let len = compiled(&profile(p)).instructions().len();
        assert!(len < 2000, "{p:?}: {len} instructions");
    }
}

// ---------------------------------------------------------------- deny-list

#[test]
fn a_deny_list_refuses_what_it_names_and_allows_the_rest() {
    let p = compiled(&deny_list(vec![
        deny("mount"),
        rule("reboot", SeccompAction::Kill, vec![]),
        rule("ptrace", SeccompAction::Log, vec![]),
        rule("sync", SeccompAction::Errno(0), vec![]),
    ]));
    assert_eq!(run(&p, &call("mount", &[])), EPERM);
    assert_eq!(run(&p, &call("reboot", &[])), Verdict::Kill);
    assert_eq!(run(&p, &call("ptrace", &[])), Verdict::Log);
    assert_eq!(run(&p, &call("sync", &[])), Verdict::Errno(0));
    assert_eq!(run(&p, &call("read", &[])), Verdict::Allow);
    assert_eq!(run(&p, &call("umount2", &[])), Verdict::Allow);
}

#[test]
fn a_deny_list_refuses_x32_numbers_and_foreign_abis() {
    let p = compiled(&deny_list(vec![deny("mount")]));
    for name in ["mount", "read"] {
        let mut c = call(name, &[]);
        c.nr |= X32;
        assert_eq!(run(&p, &c), EPERM, "x32 {name}");
    }
    let mut c = call("read", &[]);
    c.arch = AUDIT_ARCH_I386;
    assert_eq!(run(&p, &c), Verdict::Kill);
}

#[test]
fn argument_conditions_decide_and_the_first_matching_rule_wins() {
    let netlink = libc::AF_NETLINK as u64;
    let eafnosupport = SeccompAction::Errno(libc::EAFNOSUPPORT as u32);
    let p = compiled(&deny_list(vec![
        rule("socket", eafnosupport, vec![arg(0, ArgOp::Eq, netlink)]),
        rule(
            "socket",
            SeccompAction::Kill,
            vec![arg(0, ArgOp::Eq, libc::AF_PACKET as u64)],
        ),
        rule("socket", SeccompAction::Errno(libc::EACCES as u32), vec![]),
    ]));
    assert_eq!(
        run(&p, &call("socket", &[netlink])),
        Verdict::Errno(libc::EAFNOSUPPORT)
    );
    assert_eq!(
        run(&p, &call("socket", &[libc::AF_PACKET as u64])),
        Verdict::Kill
    );
    assert_eq!(run(&p, &call("socket", &[2])), Verdict::Errno(libc::EACCES));
    // garbage in the upper half of an int argument does not dodge the rule
    assert_eq!(
        run(&p, &call("socket", &[0xdead_0000_0000 | netlink])),
        Verdict::Errno(libc::EAFNOSUPPORT)
    );

    // The other order: the unconditional rule comes first and decides.
    let p = compiled(&deny_list(vec![
        rule("socket", SeccompAction::Kill, vec![]),
        rule("socket", eafnosupport, vec![arg(0, ArgOp::Eq, netlink)]),
    ]));
    assert_eq!(run(&p, &call("socket", &[netlink])), Verdict::Kill);
}

#[test]
fn every_condition_of_a_rule_must_hold() {
    let p = compiled(&deny_list(vec![rule(
        "mmap",
        SeccompAction::Errno(libc::EACCES as u32),
        vec![
            arg(
                2,
                ArgOp::MaskedEq(libc::PROT_EXEC as u64),
                libc::PROT_EXEC as u64,
            ),
            arg(
                3,
                ArgOp::MaskedEq(libc::MAP_ANONYMOUS as u64),
                libc::MAP_ANONYMOUS as u64,
            ),
            arg(1, ArgOp::Gt, 4096),
        ],
    )]));
    let rwx = (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u64;
    let anon = (libc::MAP_ANONYMOUS | libc::MAP_PRIVATE) as u64;
    let refused = Verdict::Errno(libc::EACCES);
    assert_eq!(run(&p, &call("mmap", &[0, 8192, rwx, anon])), refused);
    assert_eq!(
        run(&p, &call("mmap", &[0, 4096, rwx, anon])),
        Verdict::Allow
    );
    assert_eq!(
        run(&p, &call("mmap", &[0, 8192, rwx, libc::MAP_PRIVATE as u64])),
        Verdict::Allow
    );
    assert_eq!(
        run(&p, &call("mmap", &[0, 8192, libc::PROT_READ as u64, anon])),
        Verdict::Allow
    );

    // A value above 32 bits compares all 64.
    let p = compiled(&deny_list(vec![rule(
        "mmap",
        SeccompAction::Kill,
        vec![arg(1, ArgOp::Ge, 1 << 40)],
    )]));
    assert_eq!(run(&p, &call("mmap", &[0, 1 << 41])), Verdict::Kill);
    assert_eq!(run(&p, &call("mmap", &[0, (1 << 39) + 5])), Verdict::Allow);
    for (op, value, arg1, expected) in [
        (ArgOp::Ne, 7, 7, false),
        (ArgOp::Ne, 7, 8, true),
        (ArgOp::Lt, 7, 6, true),
        (ArgOp::Lt, 7, 7, false),
        (ArgOp::Le, 7, 7, true),
        (ArgOp::Le, 7, 8, false),
        (ArgOp::Gt, 7, 8, true),
        (ArgOp::Ge, 7, 6, false),
    ] {
        let p = compiled(&deny_list(vec![rule(
            "dup",
            SeccompAction::Kill,
            vec![arg(1, op, value)],
        )]));
        let got = run(&p, &call("dup", &[0, arg1])) == Verdict::Kill;
        assert_eq!(got, expected, "{op:?} {value} against {arg1}");
    }
}

// ---------------------------------------------------------------- Default

#[test]
fn the_default_profile_allows_services_and_refuses_administration() {
    let p = compiled(&profile(SeccompProfile::Default));
    for name in [
        "read",
        "write",
        "openat",
        "execve",
        "mmap",
        "clone",
        "clone3",
        "fork",
        "socket",
        "ioctl",
        "setuid",
        "prctl",
        "futex",
        "rseq",
        "exit_group",
        "getrandom",
        "chown",
    ] {
        assert_eq!(run(&p, &call(name, &[])), Verdict::Allow, "{name}");
    }
    for name in [
        "mount",
        "ptrace",
        "bpf",
        "reboot",
        "unshare",
        "init_module",
        "keyctl",
    ] {
        assert_eq!(run(&p, &call(name, &[])), EPERM, "{name}");
    }
    let mut c = call("read", &[]);
    c.nr |= X32;
    assert_eq!(run(&p, &c), EPERM, "x32 read");
    c = call("read", &[]);
    c.arch = AUDIT_ARCH_I386;
    assert_eq!(run(&p, &c), Verdict::Kill);
}

#[test]
fn the_default_profile_makes_fifos_but_not_devices() {
    let p = compiled(&profile(SeccompProfile::Default));
    let at = libc::AT_FDCWD as u32 as u64;
    let mode = |kind: libc::mode_t| u64::from(kind | 0o644);
    assert_eq!(
        run(&p, &call("mknodat", &[at, 0, mode(libc::S_IFIFO)])),
        Verdict::Allow
    );
    assert_eq!(
        run(&p, &call("mknodat", &[at, 0, mode(libc::S_IFSOCK)])),
        Verdict::Allow
    );
    assert_eq!(run(&p, &call("mknod", &[0, mode(0)])), Verdict::Allow);
    assert_eq!(
        run(&p, &call("mknodat", &[at, 0, mode(libc::S_IFCHR)])),
        EPERM
    );
    assert_eq!(run(&p, &call("mknod", &[0, mode(libc::S_IFBLK)])), EPERM);
}

#[test]
fn the_default_profile_lets_personality_be_read_not_weakened() {
    let p = compiled(&profile(SeccompProfile::Default));
    assert_eq!(
        run(&p, &call("personality", &[0xffff_ffff])),
        Verdict::Allow
    );
    assert_eq!(run(&p, &call("personality", &[0])), Verdict::Allow);
    let no_aslr = libc::ADDR_NO_RANDOMIZE as u64;
    assert_eq!(run(&p, &call("personality", &[no_aslr])), EPERM);
}

#[test]
fn allow_deny_and_default_action_adjust_a_profile() {
    let mut cfg = profile(SeccompProfile::Default);
    cfg.default_action = SeccompAction::Kill;
    cfg.allow = vec!["ptrace".into()];
    cfg.deny = vec![
        deny("write"),
        rule("mount", SeccompAction::Log, vec![]),
        rule(
            "socket",
            SeccompAction::Errno(libc::EAFNOSUPPORT as u32),
            vec![arg(0, ArgOp::Eq, 16)],
        ),
    ];
    let p = compiled(&cfg);
    assert_eq!(run(&p, &call("ptrace", &[])), Verdict::Allow);
    assert_eq!(
        run(&p, &call("write", &[])),
        EPERM,
        "deny is checked before the profile"
    );
    assert_eq!(
        run(&p, &call("mount", &[])),
        Verdict::Log,
        "log allows and logs"
    );
    assert_eq!(
        run(&p, &call("socket", &[16])),
        Verdict::Errno(libc::EAFNOSUPPORT)
    );
    assert_eq!(run(&p, &call("socket", &[2])), Verdict::Allow);
    assert_eq!(run(&p, &call("bpf", &[])), Verdict::Kill, "default action");

    cfg.default_action = SeccompAction::Log;
    assert_eq!(
        run(&compiled(&cfg), &call("bpf", &[])),
        Verdict::Log,
        "audit mode"
    );
}

// ---------------------------------------------------------------- Strict

#[test]
fn the_strict_profile_allows_threads_not_processes() {
    let p = compiled(&profile(SeccompProfile::Strict));
    let thread = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    assert_eq!(run(&p, &call("clone", &[thread])), Verdict::Allow);
    assert_eq!(
        run(&p, &call("clone", &[libc::SIGCHLD as u64])),
        EPERM,
        "fork through clone"
    );
    let vfork = (libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD) as u64;
    assert_eq!(
        run(&p, &call("clone", &[vfork])),
        EPERM,
        "posix_spawn through clone"
    );
    assert_eq!(
        run(&p, &call("clone3", &[])),
        Verdict::Errno(libc::ENOSYS),
        "so glibc falls back"
    );
    assert_eq!(run(&p, &call("fork", &[])), EPERM);
    assert_eq!(run(&p, &call("vfork", &[])), EPERM);
    assert_eq!(run(&p, &call("execve", &[])), Verdict::Allow);
}

#[test]
fn the_strict_profile_limits_socket_families_and_ioctls() {
    let p = compiled(&profile(SeccompProfile::Strict));
    for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
        assert_eq!(
            run(&p, &call("socket", &[family as u64, 1])),
            Verdict::Allow,
            "{family}"
        );
    }
    for family in [libc::AF_NETLINK, libc::AF_PACKET, libc::AF_BLUETOOTH] {
        assert_eq!(
            run(&p, &call("socket", &[family as u64, 1])),
            EPERM,
            "{family}"
        );
    }
    assert_eq!(
        run(&p, &call("socketpair", &[libc::AF_UNIX as u64])),
        Verdict::Allow
    );
    assert_eq!(run(&p, &call("socketpair", &[libc::AF_INET as u64])), EPERM);

    #[allow(clippy::unnecessary_cast)]
    let ioctl = |request: libc::Ioctl| call("ioctl", &[1, request as u32 as u64]);
    for request in [
        libc::TCGETS,
        libc::TIOCGWINSZ,
        libc::FIONREAD,
        libc::FIONBIO,
        libc::FIOCLEX,
    ] {
        assert_eq!(run(&p, &ioctl(request)), Verdict::Allow, "{request:#x}");
    }
    assert_eq!(run(&p, &ioctl(libc::TIOCSTI)), EPERM, "TIOCSTI");
    assert_eq!(run(&p, &ioctl(libc::TCSETS)), EPERM, "TCSETS");
}

#[test]
fn the_strict_profile_drops_ownership_and_identity_changes() {
    let p = compiled(&profile(SeccompProfile::Strict));
    for name in [
        "chown",
        "fchownat",
        "setuid",
        "setresgid",
        "setgroups",
        "capset",
        "mknodat",
    ] {
        assert_eq!(run(&p, &call(name, &[])), EPERM, "{name}");
    }
    for name in [
        "read",
        "openat",
        "chmod",
        "futex",
        "epoll_wait",
        "accept4",
        "getuid",
    ] {
        assert_eq!(run(&p, &call(name, &[])), Verdict::Allow, "{name}");
    }
}

#[test]
fn an_explicit_allow_lifts_a_strict_condition() {
    let mut cfg = profile(SeccompProfile::Strict);
    cfg.allow = vec!["socket".into()];
    let p = compiled(&cfg);
    assert_eq!(
        run(&p, &call("socket", &[libc::AF_NETLINK as u64])),
        Verdict::Allow
    );
    cfg.allow.push("clone3".into());
    let p = compiled(&cfg);
    assert_eq!(
        run(&p, &call("clone3", &[])),
        Verdict::Allow,
        "no ENOSYS when allowed"
    );
    // ...while a user's deny rule for clone3 comes before everything.
    cfg.deny = vec![rule("clone3", SeccompAction::Kill, vec![])];
    assert_eq!(run(&compiled(&cfg), &call("clone3", &[])), Verdict::Kill);
}

// ---------------------------------------------------------------- the kernel

/// The environment variable that turns `kernel_probe` into a probe.
const PROBE: &str = "SENTINEL_SECCOMP_PROBE";

/// Not a test on its own: `the_kernel_agrees` runs this test binary again
/// with `PROBE` set to a filter's name, and this function then loads that
/// filter on its thread (seccompiler's loader, test-only; sentinel's own
/// loader lives in the sys crate) and reports what a few calls got, one
/// `key=value` line each. With `PROBE` = `PROFILE:ARGV` (ARGV split by
/// 0x1f), it execs that program under the filter instead.
#[test]
fn kernel_probe() {
    let Ok(which) = std::env::var(PROBE) else {
        return;
    };
    let (which, argv) = match which.split_once(':') {
        Some((which, argv)) => (which.to_string(), Some(argv.to_string())),
        None => (which, None),
    };
    let cfg = match which.as_str() {
        "deny" => deny_list(vec![deny("mount")]),
        "default" => profile(SeccompProfile::Default),
        "strict" => profile(SeccompProfile::Strict),
        _ => panic!("unknown probe {which}"),
    };
    let program: Vec<seccompiler::sock_filter> = compiled(&cfg)
        .instructions()
        .iter()
        .map(|i| seccompiler::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    seccompiler::apply_filter(&program).expect("load the filter");

    // "PROFILE:ARGV": become that program, as a service does: the filter
    // stays across execve (which, from this thread, ends the others).
    if let Some(argv) = argv {
        use std::os::unix::process::CommandExt;
        let argv: Vec<&str> = argv.split('\x1f').collect();
        let error = std::process::Command::new(argv[0]).args(&argv[1..]).exec();
        panic!("execve {argv:?}: {error}");
    }

    let errno = |r: nix::Result<()>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("{e:?}"),
    };
    let mount = nix::mount::mount(
        Some("none"),
        "/nonexistent-sentinel-probe",
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    );
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockProtocol, SockType};
    let netlink = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::empty(),
        SockProtocol::NetlinkRoute,
    )
    .map(drop);
    let inet = std::net::TcpListener::bind("127.0.0.1:0").map(drop);
    let thread = std::thread::spawn(|| 7).join();
    let spawn = std::process::Command::new("/bin/true").status();
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    let mode = status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .map_or("?", str::trim)
        .to_string();
    let lines = [
        format!("mount={}", errno(mount)),
        format!("netlink={}", errno(netlink)),
        format!("inet={}", if inet.is_ok() { "ok" } else { "error" }),
        format!("thread={}", if thread.is_ok() { "ok" } else { "error" }),
        format!("spawn={}", if spawn.is_ok() { "ok" } else { "error" }),
        format!("seccomp={mode}"),
    ];
    // libtest has printed "test kernel_probe ... " without a newline yet
    println!("\n{}", lines.map(|l| format!("probe {l}")).join("\n"));
}

/// Loads compiled programs into the real kernel (in a re-executed copy of
/// this test binary, see `kernel_probe`) and checks that the kernel
/// accepts them and answers what the interpreter above says.
#[test]
fn the_kernel_agrees() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if !status.contains("Seccomp:") {
        eprintln!("skipped: this kernel has no seccomp");
        return;
    }
    let probe = |which: &str| -> std::collections::HashMap<String, String> {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["seccomp::tests::kernel_probe", "--exact", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(PROBE, which)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{which}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .filter_map(|l| l.strip_prefix("probe "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let expect = |which: &str, pairs: &[(&str, &str)]| {
        let got = probe(which);
        for (key, value) in pairs {
            assert_eq!(
                got.get(*key).map(String::as_str),
                Some(*value),
                "{which}: {key} in {got:?}"
            );
        }
    };
    expect(
        "deny",
        &[
            ("seccomp", "2"),
            ("mount", "EPERM"),
            ("netlink", "ok"),
            ("spawn", "ok"),
        ],
    );
    expect(
        "default",
        &[
            ("mount", "EPERM"),
            ("netlink", "ok"),
            ("inet", "ok"),
            ("thread", "ok"),
            ("spawn", "ok"),
        ],
    );
    expect(
        "strict",
        &[
            ("mount", "EPERM"),
            ("netlink", "EPERM"),
            ("inet", "ok"),
            ("thread", "ok"),
            ("spawn", "error"),
        ],
    );
}

/// Real programs start and do ordinary work under the profiles, and fail
/// at what the profiles refuse: shells, Python, Node, Perl, the JVM (those
/// installed here; the others are skipped with a message).
#[test]
fn real_programs_run_under_the_profiles() {
    let shell = "ls / >/dev/null && echo hi | cat >/dev/null && f=/tmp/sentinel-fifo-$$ \
                 && mkfifo $f && rm $f && date >/dev/null";
    let python = "import socket, threading, json, hashlib, os; socket.socket().close(); \
                  t = threading.Thread(target=os.getpid); t.start(); t.join(); \
                  socket.socket(socket.AF_INET6).close(); open('/proc/self/status').read()";
    let python_spawn = "import subprocess; subprocess.run(['true'], check=True)";
    let node =
        "const s = require('net').createServer(); s.listen(0, '127.0.0.1', () => s.close()); \
                require('fs').readdirSync('/'); require('crypto').randomBytes(8)";
    let node_spawn = "require('child_process').execFileSync('true')";
    // (profile, argv, should succeed)
    let cases: &[(&str, &[&str], bool)] = &[
        ("default", &["/bin/sh", "-c", shell], true),
        ("default", &["/bin/bash", "-c", shell], true),
        ("default", &["/bin/busybox", "sh", "-c", shell], true),
        ("default", &["python3", "-c", python], true),
        ("default", &["python3", "-c", python_spawn], true),
        ("default", &["node", "-e", node], true),
        ("default", &["node", "-e", node_spawn], true),
        (
            "default",
            &["perl", "-e", "opendir(D, '/') or die; print STDERR ''"],
            true,
        ),
        ("default", &["java", "-version"], true),
        ("strict", &["python3", "-c", python], true),
        ("strict", &["node", "-e", node], true),
        ("strict", &["java", "-version"], true),
        ("strict", &["python3", "-c", python_spawn], false),
        ("strict", &["node", "-e", node_spawn], false),
        (
            "default",
            &["/bin/busybox", "mount", "-t", "tmpfs", "none", "/mnt"],
            false,
        ),
    ];
    let python3 = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    for &(which, argv, succeeds) in cases {
        let mut argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        // pyenv's python3 is a shell script that forks; use the binary
        if argv[0] == "python3" {
            match &python3 {
                Some(p) if !p.is_empty() => argv[0] = p.clone(),
                _ => {
                    eprintln!("skipped: no python3");
                    continue;
                }
            }
        }
        let found = argv[0].starts_with('/') && std::path::Path::new(&argv[0]).exists()
            || std::process::Command::new("sh")
                .args(["-c", &format!("command -v {} >/dev/null", argv[0])])
                .status()
                .is_ok_and(|s| s.success());
        if !found {
            eprintln!("skipped: no {}", argv[0]);
            continue;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["seccomp::tests::kernel_probe", "--exact", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(PROBE, format!("{which}:{}", argv.join("\x1f")))
            .output()
            .unwrap();
        assert_eq!(
            out.status.success(),
            succeeds,
            "{which}: {argv:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
