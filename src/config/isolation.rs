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

use super::node::suggest;
use super::values::{parse_duration, parse_size};
use std::fmt;
use std::path::PathBuf;

/// Everything that isolates one service. `Default` is "no isolation"
/// (besides `no_new_privs`, which is on unless a config turns it off).
#[derive(Debug, Clone, PartialEq)]
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
    /// What an OCI bundle (`bundle = ...`) adds to the mounts: a minimal
    /// /dev, its mounts, masked and read-only paths, a read-only root.
    pub oci_mounts: Option<crate::oci::Mounts>,
}

impl Default for Isolation {
    fn default() -> Self {
        Isolation {
            slice: None,
            limits: Limits::default(),
            limits_optional: false,
            nice: None,
            ionice: None,
            oom_score_adjust: None,
            rlimits: Vec::new(),
            user: None,
            supplementary_groups: Vec::new(),
            namespaces: Namespaces::default(),
            hostname: None,
            uid_map: Vec::new(),
            gid_map: Vec::new(),
            read_only_paths: Vec::new(),
            inaccessible_paths: Vec::new(),
            tmpfs: Vec::new(),
            root: None,
            capabilities: None,
            no_new_privs: true,
            seccomp: None,
            oci_mounts: None,
        }
    }
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
    #[cfg(test)]
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

// ---------------------------------------------------------------------------
// Values as written, to the model. Each parser returns a message that names
// the value and says what would have been accepted; the config (and the
// CLI's isolation flags) put the key or flag in front of it.

/// The cgroup v2 default period, and the one `cpu_max = "1.5"` uses.
const CPU_PERIOD_US: u64 = 100_000;

impl CpuMax {
    /// `"1.5"` (CPUs: 150000 per 100000 µs), `"50ms/100ms"` (quota/period),
    /// or `"max"` (no limit: `None`). The period must be 1ms to 1s and the
    /// quota at least 1ms.
    pub fn parse(text: &str) -> Result<Option<CpuMax>, String> {
        let s = text.trim();
        let hint =
            "use a number of CPUs like \"1.5\", a quota/period like \"50ms/100ms\", or \"max\"";
        if s.eq_ignore_ascii_case("max") {
            return Ok(None);
        }
        let cpu = if let Some((quota, period)) = s.split_once('/') {
            let us = |part: &str, what: &str| -> Result<u64, String> {
                let d = parse_duration(part)
                    .map_err(|e| format!("invalid cpu {what} \"{}\": {e}", part.trim()))?;
                u64::try_from(d.as_micros())
                    .map_err(|_| format!("cpu {what} \"{}\" is too long", part.trim()))
            };
            CpuMax {
                quota_us: us(quota, "quota")?,
                period_us: us(period, "period")?,
            }
        } else {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return Err(format!("invalid cpu limit \"{text}\"; {hint}"));
            }
            let cpus: f64 = s
                .parse()
                .map_err(|_| format!("invalid cpu limit \"{text}\"; {hint}"))?;
            let quota = (cpus * CPU_PERIOD_US as f64).round();
            if quota >= u64::MAX as f64 {
                return Err(format!("{s} CPUs is too many; {hint}"));
            }
            CpuMax {
                quota_us: quota as u64,
                period_us: CPU_PERIOD_US,
            }
        };
        if !(1_000..=1_000_000).contains(&cpu.period_us) {
            return Err(format!(
                "the cpu period in \"{text}\" must be from 1ms to 1s (100ms is usual)"
            ));
        }
        if cpu.quota_us < 1_000 {
            return Err(format!(
                "\"{text}\" allows less than 1ms of CPU time per period, which the kernel refuses; \
                 give at least \"0.01\" CPUs or a quota of 1ms"
            ));
        }
        Ok(Some(cpu))
    }

    #[cfg(test)]
    /// The `cpu.max` file's text: `"150000 100000"`.
    pub fn cgroup_value(self) -> String {
        format!("{} {}", self.quota_us, self.period_us)
    }
}

impl IoPriority {
    /// `"best-effort:4"`, `"be:4"`, `"realtime:0"`, `"rt:0"`, `"idle"`;
    /// a class without a level gets level 4.
    pub fn parse(text: &str) -> Result<IoPriority, String> {
        let hint =
            "use \"best-effort:N\" or \"realtime:N\" with N from 0 (highest) to 7, or \"idle\"";
        let lower = text.trim().to_ascii_lowercase();
        let (class, level) = match lower.split_once(':') {
            Some((c, l)) => (c, Some(l)),
            None => (lower.as_str(), None),
        };
        let class = match class {
            "best-effort" | "be" | "best_effort" | "besteffort" => IoClass::BestEffort,
            "realtime" | "rt" | "real-time" => IoClass::Realtime,
            "idle" => IoClass::Idle,
            _ => return Err(format!("unknown I/O class in \"{text}\"; {hint}")),
        };
        let level = match (class, level) {
            (IoClass::Idle, Some(_)) => {
                return Err(format!(
                    "the idle class has no level; write \"idle\" instead of \"{text}\""
                ))
            }
            (IoClass::Idle, None) => 0,
            (_, None) => 4,
            (_, Some(l)) => match l.trim().parse::<u8>() {
                Ok(n) if n <= 7 => n,
                _ => return Err(format!("invalid I/O priority level in \"{text}\"; {hint}")),
            },
        };
        Ok(IoPriority { class, level })
    }
}

/// `(name, libc::RLIMIT_*, takes sizes like "64M")`, in resource order.
// The constants are a `c_uint` with glibc and a `c_int` with musl.
#[allow(clippy::unnecessary_cast)]
const RLIMITS: [(&str, u32, bool); 16] = [
    ("cpu", libc::RLIMIT_CPU as u32, false),
    ("fsize", libc::RLIMIT_FSIZE as u32, true),
    ("data", libc::RLIMIT_DATA as u32, true),
    ("stack", libc::RLIMIT_STACK as u32, true),
    ("core", libc::RLIMIT_CORE as u32, true),
    ("rss", libc::RLIMIT_RSS as u32, true),
    ("nproc", libc::RLIMIT_NPROC as u32, false),
    ("nofile", libc::RLIMIT_NOFILE as u32, false),
    ("memlock", libc::RLIMIT_MEMLOCK as u32, true),
    ("as", libc::RLIMIT_AS as u32, true),
    ("locks", libc::RLIMIT_LOCKS as u32, false),
    ("sigpending", libc::RLIMIT_SIGPENDING as u32, false),
    ("msgqueue", libc::RLIMIT_MSGQUEUE as u32, true),
    ("nice", libc::RLIMIT_NICE as u32, false),
    ("rtprio", libc::RLIMIT_RTPRIO as u32, false),
    ("rttime", libc::RLIMIT_RTTIME as u32, false),
];

/// "unlimited".
// `rlim_t` is a `u64` on 64-bit targets only.
#[allow(clippy::unnecessary_cast)]
pub const RLIM_INFINITY: u64 = libc::RLIM_INFINITY as u64;

impl Rlimit {
    /// Every name `rlimits = { ... }` takes: `as`, `core`, ... `stack`.
    pub fn names() -> impl Iterator<Item = &'static str> {
        RLIMITS.iter().map(|r| r.0)
    }

    #[cfg(test)]
    /// The resource's name as written in a config (`nofile`).
    pub fn name(self) -> &'static str {
        RLIMITS
            .iter()
            .find(|r| r.1 == self.resource)
            .map_or("?", |r| r.0)
    }

    /// `rlimits.NAME = VALUE` with the value as text: `"1024"`,
    /// `"1024:4096"` (soft:hard), `"unlimited"` / `"infinity"`, and for
    /// the byte-counted ones (as, core, data, fsize, memlock, msgqueue,
    /// rss, stack) sizes like `"64M"`. One value sets both limits.
    pub fn parse(name: &str, value: &str) -> Result<Rlimit, String> {
        let lower = name.to_ascii_lowercase();
        let key = lower.strip_prefix("rlimit_").unwrap_or(&lower);
        let Some(&(_, resource, sizes)) = RLIMITS.iter().find(|r| r.0 == key) else {
            let names: Vec<&str> = Rlimit::names().collect();
            return Err(match suggest(key, &names) {
                Some(s) => format!("unknown rlimit \"{name}\"; did you mean \"{s}\"?"),
                None => format!(
                    "unknown rlimit \"{name}\"; use one of: {}",
                    names.join(", ")
                ),
            });
        };
        let (soft, hard) = parse_rlimit_value(value, sizes)?;
        Ok(Rlimit {
            resource,
            soft,
            hard,
        })
    }
}

/// The resource number of the rlimit named `name` (as written in a config).
pub(super) fn rlimit_resource(name: &str) -> Option<u32> {
    RLIMITS.iter().find(|r| r.0 == name).map(|r| r.1)
}

/// `"N"`, `"soft:hard"`, `"unlimited"`: `(soft, hard)`, soft ≤ hard.
pub(super) fn parse_rlimit_value(text: &str, sizes: bool) -> Result<(u64, u64), String> {
    let hint = if sizes {
        "use a number or size like \"64M\", \"soft:hard\" like \"64M:128M\", or \"unlimited\""
    } else {
        "use a whole number, \"soft:hard\" like \"1024:4096\", or \"unlimited\""
    };
    let one = |part: &str| -> Result<u64, String> {
        let p = part.trim();
        if p.eq_ignore_ascii_case("unlimited") || p.eq_ignore_ascii_case("infinity") {
            return Ok(RLIM_INFINITY);
        }
        if sizes {
            parse_size(p).map_err(|_| format!("invalid limit \"{text}\"; {hint}"))
        } else {
            p.parse::<u64>()
                .map_err(|_| format!("invalid limit \"{text}\"; {hint}"))
        }
    };
    let (soft, hard) = match text.split_once(':') {
        Some((s, h)) => (one(s)?, one(h)?),
        None => {
            let v = one(text)?;
            (v, v)
        }
    };
    if soft > hard {
        return Err(format!(
            "the soft limit is above the hard one in \"{text}\"; write \"soft:hard\" with soft ≤ hard"
        ));
    }
    Ok((soft, hard))
}

impl IdSpec {
    /// A user or group: all digits is a number (not 4294967295, which
    /// means "unchanged" to the kernel), anything else a name.
    pub fn parse(text: &str) -> Result<IdSpec, String> {
        if text.is_empty() {
            return Err("empty name; give a name like \"www-data\" or a number".to_string());
        }
        let digits = text.strip_prefix('-').unwrap_or(text);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return match text.parse::<u32>() {
                Ok(n) if n != u32::MAX => Ok(IdSpec::Id(n)),
                _ => Err(format!(
                    "{text} is not a valid id; use a number from 0 to 4294967294"
                )),
            };
        }
        if let Some(c) = text
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, ':' | ',' | '/'))
        {
            return Err(format!(
                "{c:?} cannot be part of a user or group name (\"{text}\")"
            ));
        }
        if text.starts_with('-') {
            return Err(format!(
                "a user or group name cannot start with '-' (\"{text}\")"
            ));
        }
        Ok(IdSpec::Name(text.to_string()))
    }
}

impl fmt::Display for IdSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdSpec::Name(n) => f.write_str(n),
            IdSpec::Id(n) => write!(f, "{n}"),
        }
    }
}

impl UserSpec {
    /// `"www-data"`, `"1000"`, `"www-data:adm"`, `"1000:1000"`.
    pub fn parse(text: &str) -> Result<UserSpec, String> {
        let (user, group) = match text.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (text, None),
        };
        if user.is_empty() {
            return Err(format!(
                "no user in \"{text}\"; write \"user\" or \"user:group\" (a name or a number each)"
            ));
        }
        let user = IdSpec::parse(user)?;
        let group = match group {
            Some("") => {
                return Err(format!(
                    "empty group in \"{text}\"; write \"user:group\" or just \"user\" for the user's own group"
                ))
            }
            Some(g) => Some(IdSpec::parse(g)?),
            None => None,
        };
        Ok(UserSpec { user, group })
    }
}

impl fmt::Display for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.user)?;
        if let Some(g) = &self.group {
            write!(f, ":{g}")?;
        }
        Ok(())
    }
}

impl Namespaces {
    /// The names `namespaces = [...]` takes.
    pub const NAMES: [&'static str; 7] = ["pid", "net", "mount", "ipc", "uts", "user", "cgroup"];

    /// The flag for a namespace name (`"mnt"` and `"network"` are taken too).
    pub fn flag_mut(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "pid" => &mut self.pid,
            "net" | "network" => &mut self.net,
            "mount" | "mnt" => &mut self.mount,
            "ipc" => &mut self.ipc,
            "uts" => &mut self.uts,
            "user" => &mut self.user,
            "cgroup" => &mut self.cgroup,
            _ => return None,
        })
    }

    /// Set the namespace named `name`; an unknown name is an error that
    /// lists the valid ones.
    pub fn add(&mut self, name: &str) -> Result<(), String> {
        let lower = name.to_ascii_lowercase();
        match self.flag_mut(&lower) {
            Some(flag) => {
                *flag = true;
                Ok(())
            }
            None => Err(match suggest(&lower, &Namespaces::NAMES) {
                Some(s) => format!("unknown namespace \"{name}\"; did you mean \"{s}\"?"),
                None => format!(
                    "unknown namespace \"{name}\"; use any of: {}",
                    Namespaces::NAMES.join(", ")
                ),
            }),
        }
    }

    /// The names of the namespaces set, in [`Namespaces::NAMES`] order.
    #[cfg(test)]
    pub fn names(self) -> Vec<&'static str> {
        let flags = [
            self.pid,
            self.net,
            self.mount,
            self.ipc,
            self.uts,
            self.user,
            self.cgroup,
        ];
        Namespaces::NAMES
            .iter()
            .zip(flags)
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect()
    }
}

impl IdMap {
    /// `"0 100000 65536"`: inside, outside, count (like `/proc/PID/uid_map`).
    pub fn parse(text: &str) -> Result<IdMap, String> {
        let hint = "write \"INSIDE OUTSIDE COUNT\", e.g. \"0 100000 65536\"";
        let nums: Vec<&str> = text.split_whitespace().collect();
        let [inside, outside, count] = nums.as_slice() else {
            return Err(format!("invalid id map \"{text}\"; {hint}"));
        };
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("invalid id map \"{text}\": \"{s}\" is not an id; {hint}"))
        };
        let map = IdMap {
            inside: num(inside)?,
            outside: num(outside)?,
            count: num(count)?,
        };
        if map.count == 0 {
            return Err(format!(
                "id map \"{text}\" maps no ids; the count must be at least 1"
            ));
        }
        let end = |start: u32| u64::from(start) + u64::from(map.count);
        if end(map.inside) > u64::from(u32::MAX) || end(map.outside) > u64::from(u32::MAX) {
            return Err(format!(
                "id map \"{text}\" runs past the last id (4294967294); lower the count"
            ));
        }
        Ok(map)
    }
}

/// Linux capability names, by number (`include/uapi/linux/capability.h`).
const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

impl Capability {
    #[cfg(test)]
    /// The highest capability sentinel knows (`CAP_CHECKPOINT_RESTORE`).
    /// The running kernel may know fewer (`/proc/sys/kernel/cap_last_cap`).
    pub const LAST: Capability = Capability(CAPABILITIES.len() as u8 - 1);

    #[cfg(test)]
    /// Every capability sentinel knows, by number.
    pub fn all() -> impl Iterator<Item = Capability> {
        (0..=Capability::LAST.0).map(Capability)
    }

    /// `"CAP_NET_BIND_SERVICE"`, `"net_bind_service"`, `"Net_Raw"` ...
    pub fn from_name(name: &str) -> Result<Capability, String> {
        let upper = name.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if let Some(i) = CAPABILITIES.iter().position(|c| &c[4..] == bare) {
            return Ok(Capability(i as u8));
        }
        let lower: Vec<String> = CAPABILITIES
            .iter()
            .map(|c| c[4..].to_ascii_lowercase())
            .collect();
        let candidates: Vec<&str> = lower.iter().map(String::as_str).collect();
        let word = bare.to_ascii_lowercase();
        let hint = match suggest(&word, &candidates) {
            Some(s) => format!("did you mean \"CAP_{}\"?", s.to_ascii_uppercase()),
            None => {
                let near: Vec<&str> = CAPABILITIES
                    .iter()
                    .filter(|c| !word.is_empty() && c.contains(bare))
                    .copied()
                    .take(4)
                    .collect();
                if let [one] = near.as_slice() {
                    format!("did you mean \"{one}\"?")
                } else if near.is_empty() {
                    "see `man 7 capabilities` for the names (e.g. \"CAP_NET_BIND_SERVICE\")"
                        .to_string()
                } else {
                    format!("did you mean one of: {}?", near.join(", "))
                }
            }
        };
        Err(format!("unknown capability \"{name}\"; {hint}"))
    }

    #[cfg(test)]
    /// `"CAP_NET_BIND_SERVICE"`; `"CAP_?"` for a number sentinel does not know.
    pub fn name(self) -> &'static str {
        CAPABILITIES
            .get(usize::from(self.0))
            .copied()
            .unwrap_or("CAP_?")
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match CAPABILITIES.get(usize::from(self.0)) {
            Some(name) => f.write_str(name),
            None => write!(f, "capability {}", self.0),
        }
    }
}

impl SeccompProfile {
    pub fn parse(text: &str) -> Result<SeccompProfile, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "default" => Ok(SeccompProfile::Default),
            "strict" => Ok(SeccompProfile::Strict),
            _ => Err(format!(
                "unknown seccomp profile \"{text}\"; use \"default\" or \"strict\""
            )),
        }
    }
}

/// The errno values a seccomp action can name, by name.
const ERRNOS: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("ESRCH", libc::ESRCH),
    ("EINTR", libc::EINTR),
    ("EIO", libc::EIO),
    ("ENXIO", libc::ENXIO),
    ("E2BIG", libc::E2BIG),
    ("ENOEXEC", libc::ENOEXEC),
    ("EBADF", libc::EBADF),
    ("ECHILD", libc::ECHILD),
    ("EAGAIN", libc::EAGAIN),
    ("EWOULDBLOCK", libc::EWOULDBLOCK),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("EXDEV", libc::EXDEV),
    ("ENODEV", libc::ENODEV),
    ("ENOTDIR", libc::ENOTDIR),
    ("EISDIR", libc::EISDIR),
    ("EINVAL", libc::EINVAL),
    ("ENFILE", libc::ENFILE),
    ("EMFILE", libc::EMFILE),
    ("ENOTTY", libc::ENOTTY),
    ("ETXTBSY", libc::ETXTBSY),
    ("EFBIG", libc::EFBIG),
    ("ENOSPC", libc::ENOSPC),
    ("ESPIPE", libc::ESPIPE),
    ("EROFS", libc::EROFS),
    ("EMLINK", libc::EMLINK),
    ("EPIPE", libc::EPIPE),
    ("EDOM", libc::EDOM),
    ("ERANGE", libc::ERANGE),
    ("EDEADLK", libc::EDEADLK),
    ("ENAMETOOLONG", libc::ENAMETOOLONG),
    ("ENOLCK", libc::ENOLCK),
    ("ENOSYS", libc::ENOSYS),
    ("ENOTEMPTY", libc::ENOTEMPTY),
    ("ELOOP", libc::ELOOP),
    ("ENOMSG", libc::ENOMSG),
    ("ENODATA", libc::ENODATA),
    ("EPROTO", libc::EPROTO),
    ("EOVERFLOW", libc::EOVERFLOW),
    ("EILSEQ", libc::EILSEQ),
    ("ENOTSOCK", libc::ENOTSOCK),
    ("EPROTOTYPE", libc::EPROTOTYPE),
    ("ENOPROTOOPT", libc::ENOPROTOOPT),
    ("EPROTONOSUPPORT", libc::EPROTONOSUPPORT),
    ("ESOCKTNOSUPPORT", libc::ESOCKTNOSUPPORT),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("ENOTSUP", libc::ENOTSUP),
    ("EPFNOSUPPORT", libc::EPFNOSUPPORT),
    ("EAFNOSUPPORT", libc::EAFNOSUPPORT),
    ("EADDRINUSE", libc::EADDRINUSE),
    ("EADDRNOTAVAIL", libc::EADDRNOTAVAIL),
    ("ENETDOWN", libc::ENETDOWN),
    ("ENETUNREACH", libc::ENETUNREACH),
    ("ECONNABORTED", libc::ECONNABORTED),
    ("ECONNRESET", libc::ECONNRESET),
    ("ENOBUFS", libc::ENOBUFS),
    ("EISCONN", libc::EISCONN),
    ("ENOTCONN", libc::ENOTCONN),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    ("ECONNREFUSED", libc::ECONNREFUSED),
    ("EHOSTUNREACH", libc::EHOSTUNREACH),
    ("EALREADY", libc::EALREADY),
    ("EINPROGRESS", libc::EINPROGRESS),
    ("EDQUOT", libc::EDQUOT),
    ("ECANCELED", libc::ECANCELED),
];

/// The highest errno a seccomp filter can return (`MAX_ERRNO`).
const MAX_ERRNO: u32 = 4095;

/// `"EPERM"`, `"eperm"` or a number from 1 to 4095.
pub fn parse_errno(text: &str) -> Result<u32, String> {
    let s = text.trim();
    let hint = "use a name like \"EPERM\", \"EACCES\", \"ENOSYS\", or a number from 1 to 4095";
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u32>() {
            Ok(n) if (1..=MAX_ERRNO).contains(&n) => Ok(n),
            _ => Err(format!("errno {s} is out of range; {hint}")),
        };
    }
    let upper = s.to_ascii_uppercase();
    match ERRNOS.iter().find(|(name, _)| *name == upper) {
        Some(&(_, n)) => Ok(n as u32),
        None => {
            let names: Vec<String> = ERRNOS.iter().map(|(n, _)| n.to_lowercase()).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            Err(match suggest(&upper, &names) {
                Some(near) => format!(
                    "unknown errno \"{s}\"; did you mean \"{}\"?",
                    near.to_ascii_uppercase()
                ),
                None => format!("unknown errno \"{s}\"; {hint}"),
            })
        }
    }
}

/// The name of an errno (`EPERM`), or its number when sentinel has no name for it.
pub fn errno_name(errno: u32) -> String {
    ERRNOS
        .iter()
        .find(|(_, n)| *n as u32 == errno)
        .map_or_else(|| errno.to_string(), |(name, _)| (*name).to_string())
}

impl SeccompAction {
    /// `"errno:EPERM"`, `"errno:13"`, `"kill"`, `"log"`, `"allow"`.
    pub fn parse(text: &str) -> Result<SeccompAction, String> {
        let s = text.trim();
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("errno:") {
            return parse_errno(&s["errno:".len()..]).map(SeccompAction::Errno);
        }
        match lower.as_str() {
            "allow" => Ok(SeccompAction::Allow),
            "kill" => Ok(SeccompAction::Kill),
            "log" => Ok(SeccompAction::Log),
            "errno" => Ok(SeccompAction::Errno(libc::EPERM as u32)),
            _ => Err(format!(
                "unknown seccomp action \"{s}\"; use \"errno:EPERM\" (or another errno), \"kill\", \"log\" or \"allow\""
            )),
        }
    }
}

impl Default for SeccompAction {
    fn default() -> Self {
        SeccompAction::Errno(libc::EPERM as u32)
    }
}

impl fmt::Display for SeccompAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeccompAction::Allow => f.write_str("allow"),
            SeccompAction::Errno(n) => write!(f, "errno:{}", errno_name(*n)),
            SeccompAction::Kill => f.write_str("kill"),
            SeccompAction::Log => f.write_str("log"),
        }
    }
}

/// A syscall name as seccomp rules take it: `[a-z0-9_]+`. Whether the
/// kernel knows it is for the seccomp compiler to say.
pub fn check_syscall_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty syscall name; give one like \"ptrace\"".to_string());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!(
            "{c:?} cannot be part of a syscall name (\"{name}\"); use lowercase letters, digits and '_' like \"clock_settime\""
        ));
    }
    Ok(())
}

/// The longest hostname the kernel takes (`HOST_NAME_MAX`).
const MAX_HOSTNAME: usize = 64;

/// A hostname: dot-separated labels of letters, digits and '-', each 1 to
/// 63 long and not starting or ending with '-'; at most 64 in all.
pub fn check_hostname(name: &str) -> Result<(), String> {
    let rule =
        "use letters, digits and '-' in dot-separated labels, like \"box\" or \"web-1.local\"";
    if name.is_empty() {
        return Err(format!("empty hostname; {rule}"));
    }
    if name.len() > MAX_HOSTNAME {
        return Err(format!(
            "\"{name}\" is {} characters long; a hostname has at most {MAX_HOSTNAME}",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!(
                "\"{name}\" has an empty label (two dots in a row, or a dot at an end); {rule}"
            ));
        }
        if label.len() > 63 {
            return Err(format!(
                "\"{label}\" is longer than 63 characters; split it with dots"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "{c:?} is not allowed in hostname \"{name}\"; {rule}"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "a label of \"{name}\" starts or ends with '-'; {rule}"
            ));
        }
    }
    Ok(())
}

/// `cgroup_root`: relative (`"sentinel"`, `"apps/sentinel"`) or absolute
/// from the cgroup2 root (`"/sentinel"`); no empty, `.` or `..` parts.
pub fn check_cgroup_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty cgroup path; remove the key for the default \"sentinel\"".to_string());
    }
    let rest = path.strip_prefix('/').unwrap_or(path);
    if rest.is_empty() {
        return Ok(());
    }
    for part in rest.split('/') {
        match part {
            "" => {
                return Err(format!(
                "\"{path}\" has an empty part (a doubled or trailing '/'); write it like \"sentinel\" or \"/system/sentinel\""
            ))
            }
            "." | ".." => {
                return Err(format!(
                "\"{part}\" is not allowed in a cgroup path (\"{path}\"); name the groups, like \"/system/sentinel\""
            ))
            }
            _ => {}
        }
        if let Some(c) = part.chars().find(|c| c.is_control()) {
            return Err(format!("{c:?} is not allowed in cgroup path \"{path}\""));
        }
    }
    Ok(())
}
