//! The isolation model of a service (and of `sentinel exec`): cgroup limits,
//! priorities, rlimits, identity, namespaces and mounts, capabilities,
//! seccomp. Plain data, validated; nothing here touches the system.
//!
//! In a config file most of these are keys of the service table itself
//! (`slice`, `limits`, `limits_optional`, `nice`, `ionice`,
//! `oom_score_adjust`, `rlimits`, `user`, `supplementary_groups`) and the
//! rest live in its `isolation = { ... }` table (`namespaces`, `hostname`,
//! `uid_map`, `gid_map`, `read_only_paths`, `inaccessible_paths`, `tmpfs`,
//! `root`, `capabilities`, `no_new_privs`, `seccomp`).

// Temporary, while issue 3 wires these types into the config, the cgroup
// code and the spawn pipeline: remove once they are all read.
#![allow(dead_code)]

use std::path::PathBuf;

/// Everything that isolates one service. `Default` is "no isolation".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Isolation {
    /// Name of a `[slices.NAME]` the service's cgroup sits under.
    pub slice: Option<String>,
    pub limits: Limits,
    /// A limit the host cannot apply is a warning, not an error.
    pub limits_optional: bool,
    /// -20..=19
    pub nice: Option<i32>,
    pub ionice: Option<IoPriority>,
    /// -1000..=1000
    pub oom_score_adjust: Option<i32>,
    pub rlimits: Vec<Rlimit>,
    /// `user = "www-data"`, `"1000"`, `"www-data:adm"`, `"1000:1000"`:
    /// unresolved here (names are resolved from /etc/passwd and /etc/group
    /// when the service is prepared, not through NSS).
    pub user: Option<UserSpec>,
    pub supplementary_groups: Vec<IdSpec>,
    pub namespaces: Namespaces,
    /// Needs the uts namespace.
    pub hostname: Option<String>,
    /// With the user namespace; empty: map the service's uid (or
    /// sentinel's) to root inside.
    pub uid_map: Vec<IdMap>,
    pub gid_map: Vec<IdMap>,
    /// These need the mount namespace.
    pub read_only_paths: Vec<PathBuf>,
    pub inaccessible_paths: Vec<PathBuf>,
    pub tmpfs: Vec<PathBuf>,
    /// pivot_root into this folder (an unpacked image).
    pub root: Option<PathBuf>,
    /// None: the default (root keeps its capabilities, others get none).
    /// Some(list): keep exactly these (bounding, permitted, effective,
    /// inheritable and ambient, so a non-root user keeps them across exec).
    pub capabilities: Option<Vec<Capability>>,
    /// Default true.
    pub no_new_privs: bool,
    pub seccomp: Option<Seccomp>,
}

/// cgroup v2 limits. Every field None/empty: no limit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Limits {
    /// Bytes (`memory.max`).
    pub memory_max: Option<u64>,
    pub memory_high: Option<u64>,
    pub memory_swap_max: Option<u64>,
    /// `"1.5"` (CPUs) or `"50ms/100ms"` (quota/period).
    pub cpu_max: Option<CpuMax>,
    /// 1..=10000
    pub cpu_weight: Option<u32>,
    pub pids_max: Option<u64>,
    /// 1..=10000
    pub io_weight: Option<u32>,
    pub io_max: Vec<IoMax>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuMax {
    pub quota_us: u64,
    pub period_us: u64,
}

/// `io_max = [{ device = "/dev/vda" | "254:0", rbps = "10M", wbps, riops, wiops }]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoMax {
    /// As written: a device path or `major:minor`.
    pub device: String,
    pub rbps: Option<u64>,
    pub wbps: Option<u64>,
    pub riops: Option<u64>,
    pub wiops: Option<u64>,
}

/// `[slices.NAME]`: limits shared by the services in it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SliceConfig {
    /// Nest under another slice.
    pub parent: Option<String>,
    pub limits: Limits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoClass {
    Realtime,
    BestEffort,
    Idle,
}

/// `ionice = "best-effort:4"`, `"realtime:0"`, `"idle"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoPriority {
    pub class: IoClass,
    /// 0..=7 (0 for idle)
    pub level: u8,
}

impl IoPriority {
    /// The `ioprio_set` value: `(class << 13) | level`.
    pub fn value(self) -> i32 {
        let class = match self.class {
            IoClass::Realtime => 1,
            IoClass::BestEffort => 2,
            IoClass::Idle => 3,
        };
        (class << 13) | i32::from(self.level)
    }
}

/// `rlimits = { nofile = 1024, core = "unlimited", nproc = "100:200" }`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// `libc::RLIMIT_*`
    pub resource: u32,
    /// `libc::RLIM_INFINITY` for "unlimited".
    pub soft: u64,
    pub hard: u64,
}

/// A user or group as written: a name or a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSpec {
    Name(String),
    Id(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub user: IdSpec,
    /// None: the user's primary group from /etc/passwd.
    pub group: Option<IdSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Namespaces {
    pub pid: bool,
    pub net: bool,
    pub mount: bool,
    pub ipc: bool,
    pub uts: bool,
    pub user: bool,
    pub cgroup: bool,
}

impl Namespaces {
    pub fn any(self) -> bool {
        self != Namespaces::default()
    }
}

/// `"0 100000 65536"`: inside, outside, count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// A capability number (`CAP_NET_BIND_SERVICE` = 10), parsed from its
/// name with or without the `CAP_` prefix, any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability(pub u8);

/// `seccomp = "default"`, `"strict"`, or a table:
/// `{ profile = "default", allow = ["ptrace"], deny = ["mount", { syscall = "socket",
///    args = [{ index = 0, op = "eq", value = 16 }], action = "errno:EAFNOSUPPORT" }],
///    action = "errno:EPERM" }`.
/// Without `profile`, the filter is a deny-list: everything not denied is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seccomp {
    pub profile: Option<SeccompProfile>,
    /// What a syscall outside the profile's allow-list gets (profiles only).
    /// Default `Errno(EPERM)`.
    pub default_action: SeccompAction,
    /// Extra syscalls allowed on top of the profile.
    pub allow: Vec<String>,
    /// Denied syscalls (with optional argument conditions), checked first.
    pub deny: Vec<SeccompRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompProfile {
    /// An allow-list for ordinary services: files, sockets, processes,
    /// memory, time, signals; not mount, module, reboot, kexec, bpf,
    /// ptrace, keyctl, perf_event_open, swap, clock setting, namespaces...
    Default,
    /// Less: no process creation beyond threads, no new sockets except
    /// unix/inet, no ioctl beyond terminals.
    Strict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompRule {
    pub syscall: String,
    /// Default `Errno(EPERM)`.
    pub action: SeccompAction,
    /// All must hold (AND).
    pub args: Vec<ArgCondition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompAction {
    Allow,
    /// `"errno:EPERM"`, `"errno:1"`
    Errno(u32),
    /// Kill the process.
    Kill,
    /// Allow and log.
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCondition {
    /// 0..=5
    pub index: u8,
    pub op: ArgOp,
    pub value: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `{ op = "masked_eq", mask = 0x3, value = 1 }`: `(arg & mask) == value`
    MaskedEq(u64),
}
