//! The built-in profiles, as data: which syscalls they allow (some only
//! with argument conditions) and the few answers they give before their
//! allow-list is consulted. The lists are explained in the module docs of
//! `seccomp`; names missing from the running architecture's table (`open`
//! on aarch64) are skipped, and a test checks that every name here is a
//! real x86_64 syscall.

use crate::config::{ArgCondition, ArgOp, SeccompAction, SeccompProfile};

/// One allowed syscall: always (`any_of` empty), or when every condition
/// of at least one of the `any_of` alternatives holds.
#[derive(Clone, Copy)]
pub struct Allowed {
    pub name: &'static str,
    pub any_of: &'static [&'static [ArgCondition]],
}

/// An answer given before the allow-list is consulted.
pub struct Answer {
    pub name: &'static str,
    pub action: SeccompAction,
}

/// The Default profile's unconditional allow-list.
#[rustfmt::skip]
const DEFAULT: &[&str] = &[
    // process life, memory, the dynamic loader and language runtimes
    "execve", "execveat", "brk", "mmap", "mprotect", "munmap", "mremap", "madvise", "msync",
    "mincore", "mlock", "mlock2", "munlock", "mlockall", "munlockall", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "map_shadow_stack", "arch_prctl", "set_tid_address",
    "set_robust_list", "rseq", "prlimit64", "getrlimit", "setrlimit", "getrandom", "futex",
    "futex_waitv", "futex_wait", "futex_wake", "futex_requeue", "membarrier", "memfd_create",
    "clone", "clone3", "fork", "vfork", "wait4", "waitid", "exit", "exit_group",
    "restart_syscall", "prctl", "capget", "capset", "seccomp", "landlock_create_ruleset",
    "landlock_add_rule", "landlock_restrict_self",
    // file descriptors and I/O
    "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2",
    "pwritev2", "open", "openat", "openat2", "creat", "close", "close_range", "lseek", "fcntl",
    "ioctl", "dup", "dup2", "dup3", "pipe", "pipe2", "flock", "fsync", "fdatasync", "sync",
    "syncfs", "sync_file_range", "fallocate", "fadvise64", "readahead", "truncate",
    "ftruncate", "sendfile", "splice", "tee", "vmsplice", "copy_file_range", "io_setup",
    "io_destroy", "io_getevents", "io_pgetevents", "io_submit", "io_cancel", "cachestat",
    // waiting for events
    "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd",
    "signalfd4", "timerfd_create", "timerfd_settime", "timerfd_gettime", "inotify_init",
    "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
    // the file system: metadata, names, permissions
    "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "access",
    "faccessat", "faccessat2", "getdents", "getdents64", "getcwd", "chdir", "fchdir", "rename",
    "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "link",
    "linkat", "symlink", "symlinkat", "readlink", "readlinkat", "chmod", "fchmod", "fchmodat",
    "fchmodat2", "chown", "fchown", "fchownat", "lchown", "umask", "utime", "utimes",
    "utimensat", "futimesat", "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr",
    "flistxattr",
    // sockets
    "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
    "getpeername", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
    "setsockopt", "getsockopt", "shutdown",
    // signals
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
    "rt_sigsuspend", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "kill", "tgkill",
    "tkill", "pause", "alarm", "getitimer", "setitimer", "pidfd_open", "pidfd_send_signal",
    // identity, sessions
    "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getgroups",
    "getresuid", "getresgid", "setuid", "setgid", "setreuid", "setregid", "setresuid",
    "setresgid", "setgroups", "setfsuid", "setfsgid", "setsid", "setpgid", "getpgid",
    "getpgrp", "getsid",
    // time, scheduling, system information
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
    "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete",
    "getrusage", "times", "sched_yield", "sched_getaffinity", "sched_setaffinity",
    "sched_getparam", "sched_getscheduler", "sched_getattr", "sched_get_priority_max",
    "sched_get_priority_min", "sched_rr_get_interval", "getpriority", "setpriority",
    "ioprio_get", "ioprio_set", "uname", "sysinfo", "getcpu",
    // System V and POSIX IPC (PostgreSQL, some databases)
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget",
    "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
    "mq_notify", "mq_getsetattr",
];

/// `(mode & S_IFMT)` is a FIFO, a socket or a regular file (0 means regular):
/// `mkfifo` works, device nodes do not.
macro_rules! not_a_device {
    ($index:expr) => {
        &[
            &[ArgCondition {
                index: $index,
                op: ArgOp::MaskedEq(S_IFMT),
                value: S_IFIFO,
            }],
            &[ArgCondition {
                index: $index,
                op: ArgOp::MaskedEq(S_IFMT),
                value: S_IFSOCK,
            }],
            &[ArgCondition {
                index: $index,
                op: ArgOp::MaskedEq(S_IFMT),
                value: S_IFREG,
            }],
            &[ArgCondition {
                index: $index,
                op: ArgOp::MaskedEq(S_IFMT),
                value: 0,
            }],
        ]
    };
}

const S_IFMT: u64 = libc::S_IFMT as u64;
const S_IFIFO: u64 = libc::S_IFIFO as u64;
const S_IFSOCK: u64 = libc::S_IFSOCK as u64;
const S_IFREG: u64 = libc::S_IFREG as u64;

const fn eq(index: u8, value: u64) -> ArgCondition {
    ArgCondition {
        index,
        op: ArgOp::Eq,
        value,
    }
}

/// `ioctl(fd, request, ..)`: libc's request type is `c_ulong` with glibc,
/// `c_int` with musl; the kernel reads an `unsigned int`.
#[allow(clippy::unnecessary_cast)]
const fn request(request: libc::Ioctl) -> ArgCondition {
    eq(1, request as u32 as u64)
}

/// The Default profile's conditional entries.
const DEFAULT_CONDITIONAL: &[Allowed] = &[
    Allowed {
        name: "mknod",
        any_of: not_a_device!(1),
    },
    Allowed {
        name: "mknodat",
        any_of: not_a_device!(2),
    },
    // Linux personality, querying it (0xffffffff), 32-bit uname
    // (PER_LINUX32 = 8) and UNAME26 (0x20000); not ADDR_NO_RANDOMIZE and
    // the other flags that weaken the process.
    Allowed {
        name: "personality",
        any_of: &[
            &[eq(0, 0)],
            &[eq(0, 8)],
            &[eq(0, 0x20000)],
            &[eq(0, 0x20008)],
            &[eq(0, 0xffff_ffff)],
        ],
    },
];

/// What Strict takes out of Default (some come back with conditions below).
#[rustfmt::skip]
const STRICT_REMOVED: &[&str] = &[
    // process creation beyond threads
    "fork", "vfork", "clone", "clone3", "execveat",
    // sockets and ioctls come back with conditions
    "socket", "socketpair", "ioctl",
    // ownership, identity and privilege changes: the service already runs
    // as the user it should be
    "chown", "fchown", "fchownat", "lchown", "setuid", "setgid", "setreuid", "setregid",
    "setresuid", "setresgid", "setgroups", "setfsuid", "setfsgid", "capset",
    // no device or FIFO nodes, no personality changes
    "mknod", "mknodat", "personality",
];

const CLONE_THREAD: u64 = libc::CLONE_THREAD as u64;

/// Strict's conditional entries.
const STRICT_CONDITIONAL: &[Allowed] = &[
    // threads only: the flags argument has CLONE_THREAD
    Allowed {
        name: "clone",
        any_of: &[&[ArgCondition {
            index: 0,
            op: ArgOp::MaskedEq(CLONE_THREAD),
            value: CLONE_THREAD,
        }]],
    },
    Allowed {
        name: "socket",
        any_of: &[
            &[eq(0, libc::AF_UNIX as u64)],
            &[eq(0, libc::AF_INET as u64)],
            &[eq(0, libc::AF_INET6 as u64)],
        ],
    },
    Allowed {
        name: "socketpair",
        any_of: &[&[eq(0, libc::AF_UNIX as u64)]],
    },
    // isatty, the terminal size, bytes readable, non-blocking mode, and the
    // close-on-exec flag (libuv, hence Node, sets it with FIOCLEX)
    Allowed {
        name: "ioctl",
        any_of: &[
            &[request(libc::TCGETS)],
            &[request(libc::TIOCGWINSZ)],
            &[request(libc::FIONREAD)],
            &[request(libc::FIONBIO)],
            &[request(libc::FIOCLEX)],
            &[request(libc::FIONCLEX)],
        ],
    },
];

/// Strict answers `clone3` with ENOSYS, not the default EPERM: its flags
/// sit in a struct the filter cannot read, and glibc (2.34+) falls back to
/// `clone` (where the CLONE_THREAD condition applies) only on ENOSYS, so
/// threads keep working.
const STRICT_ANSWERS: &[Answer] = &[Answer {
    name: "clone3",
    action: SeccompAction::Errno(libc::ENOSYS as u32),
}];

/// The allow-list of a profile.
pub fn allowed(profile: SeccompProfile) -> Vec<Allowed> {
    let plain = |name: &'static str| Allowed { name, any_of: &[] };
    match profile {
        SeccompProfile::Default => DEFAULT
            .iter()
            .map(|&n| plain(n))
            .chain(DEFAULT_CONDITIONAL.iter().copied())
            .collect(),
        SeccompProfile::Strict => DEFAULT
            .iter()
            .filter(|n| !STRICT_REMOVED.contains(n))
            .map(|&n| plain(n))
            .chain(STRICT_CONDITIONAL.iter().copied())
            .collect(),
    }
}

/// The answers a profile gives before its allow-list.
pub fn answers(profile: SeccompProfile) -> &'static [Answer] {
    match profile {
        SeccompProfile::Default => &[],
        SeccompProfile::Strict => STRICT_ANSWERS,
    }
}

/// Every name the profiles mention, for the test that they all exist.
#[cfg(test)]
pub fn all_names() -> impl Iterator<Item = &'static str> {
    DEFAULT
        .iter()
        .copied()
        .chain(DEFAULT_CONDITIONAL.iter().map(|a| a.name))
        .chain(STRICT_REMOVED.iter().copied())
        .chain(STRICT_CONDITIONAL.iter().map(|a| a.name))
        .chain(STRICT_ANSWERS.iter().map(|a| a.name))
}
