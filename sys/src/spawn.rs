//! Start a child: everything prepared in the parent, only syscalls after fork.
//!
//! [`Plan`] holds what the child needs as C strings, numbers and pointer
//! arrays, built in the parent; [`Setup`] adds the isolation steps. [`spawn`]
//! creates the child with `clone3` (placed in its cgroup and namespaces
//! atomically, with a pidfd) or, where `clone3` is unavailable, with `fork`.
//! The child runs a fixed sequence of raw syscalls (no allocation, no locks,
//! no panics) and either `execve`s or writes `(step, errno, index)` to a
//! close-on-exec pipe and `_exit`s. The parent reads the pipe: EOF means
//! `execve` succeeded.
//!
//! The child's order (DESIGN.md): session; signals; cgroup (fork fallback);
//! rlimits, nice, ionice, OOM score; namespaces not made by clone3 (the user
//! namespace, whose maps the parent writes while the child waits); mounts,
//! credentials, pivot_root, hostname, loopback; stdio and chdir;
//! setgroups, setgid, setuid; capabilities; no_new_privs; seccomp; execve.
//!
//! Secrets for one start ([`Plan::arm_secrets`]: environment entries and
//! [`Credentials`] files) are held in [`crate::mem::Secret`]s, wiped by
//! [`Plan::disarm_secrets`] once the child has exec'd.

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::raw::{c_char, c_ulong};

use nix::errno::Errno;
use nix::unistd::Pid;

use crate::mem::Secret;

/// The default search path when the child's environment has no `PATH`.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `CLONE_INTO_CGROUP` (libc's constant of that name overflows to 0 on some
/// targets).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// How the child relates to sentinel's session and terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// `setsid()`: own session and process group, no controlling terminal.
    /// What a supervised service gets.
    New,
    /// `setpgid(0, 0)`: own process group in sentinel's session; with
    /// `foreground`, it also becomes the terminal's foreground group (as
    /// tini does), so an interactive command keeps its terminal.
    Group { foreground: bool },
}

/// Where one of the child's fds 0, 1, 2 comes from.
#[derive(Debug, Clone, Copy)]
pub enum Stdio<'a> {
    /// Keep sentinel's own.
    Inherit,
    /// `dup2` this fd (the caller keeps it open across the call).
    Fd(BorrowedFd<'a>),
}

/// The cgroup the child starts in: the group's directory (for
/// `CLONE_INTO_CGROUP`) and its `cgroup.procs` opened for writing (for the
/// fork fallback, where the child writes `0` to it first thing).
#[derive(Debug, Clone, Copy)]
pub struct Cgroup<'a> {
    pub dir: BorrowedFd<'a>,
    pub procs: BorrowedFd<'a>,
}

/// A step of the child setup pipeline, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    Signals = 1,
    Session = 2,
    Terminal = 3,
    Stdio = 4,
    Chdir = 5,
    Exec = 6,
    Clone = 7,
    Cgroup = 8,
    Rlimit = 9,
    Nice = 10,
    Ionice = 11,
    OomScore = 12,
    Unshare = 13,
    IdMaps = 14,
    Mount = 15,
    PivotRoot = 16,
    Hostname = 17,
    Loopback = 18,
    Setgroups = 19,
    Setgid = 20,
    Setuid = 21,
    Capabilities = 22,
    NoNewPrivs = 23,
    Seccomp = 24,
    Credentials = 25,
}

const STEPS: [Step; 25] = [
    Step::Signals,
    Step::Session,
    Step::Terminal,
    Step::Stdio,
    Step::Chdir,
    Step::Exec,
    Step::Clone,
    Step::Cgroup,
    Step::Rlimit,
    Step::Nice,
    Step::Ionice,
    Step::OomScore,
    Step::Unshare,
    Step::IdMaps,
    Step::Mount,
    Step::PivotRoot,
    Step::Hostname,
    Step::Loopback,
    Step::Setgroups,
    Step::Setgid,
    Step::Setuid,
    Step::Capabilities,
    Step::NoNewPrivs,
    Step::Seccomp,
    Step::Credentials,
];

impl Step {
    fn from_u32(v: u32) -> Option<Step> {
        STEPS.iter().copied().find(|s| *s as u32 == v)
    }

    fn name(self) -> &'static str {
        match self {
            Step::Signals => "reset signals",
            Step::Session => "setsid",
            Step::Terminal => "tcsetpgrp",
            Step::Stdio => "dup2 stdio",
            Step::Chdir => "chdir",
            Step::Exec => "execve",
            Step::Clone => "clone",
            Step::Cgroup => "join cgroup",
            Step::Rlimit => "setrlimit",
            Step::Nice => "setpriority",
            Step::Ionice => "ioprio_set",
            Step::OomScore => "oom_score_adj",
            Step::Unshare => "unshare",
            Step::IdMaps => "uid/gid map",
            Step::Mount => "mount",
            Step::PivotRoot => "pivot_root",
            Step::Hostname => "sethostname",
            Step::Loopback => "bring up lo",
            Step::Setgroups => "setgroups",
            Step::Setgid => "setgid",
            Step::Setuid => "setuid",
            Step::Capabilities => "capabilities",
            Step::NoNewPrivs => "no_new_privs",
            Step::Seccomp => "seccomp",
            Step::Credentials => "credentials",
        }
    }
}

/// Why a child did not reach `execve`'s success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnError {
    pub step: Step,
    pub errno: Errno,
    /// What the step was acting on (the program, the folder), for the message.
    pub detail: String,
}

impl SpawnError {
    /// The command was not found (exit 127 in `exec` mode, as shells do).
    pub fn is_not_found(&self) -> bool {
        self.step == Step::Exec && matches!(self.errno, Errno::ENOENT | Errno::ENOTDIR)
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = self.step.name();
        if self.detail.is_empty() {
            write!(f, "{step}: {}", self.errno.desc())
        } else {
            write!(f, "{step}({}): {}", self.detail, self.errno.desc())
        }
    }
}

impl std::error::Error for SpawnError {}

/// One `mount(2)` call, prepared.
#[derive(Debug, Clone)]
pub struct Mount {
    pub source: Option<CString>,
    pub target: CString,
    pub fstype: Option<CString>,
    pub flags: c_ulong,
    pub data: Option<CString>,
}

/// The identity the child switches to (after mounts, before seccomp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Capabilities the child keeps. `keep` is a bitmask of capability numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub keep: u64,
    /// The highest capability number the kernel knows (`cap_last_cap`).
    pub last_cap: u32,
    /// Raise the kept capabilities as ambient too, so that a non-root
    /// user keeps them across execve.
    pub ambient: bool,
}

/// The isolation steps of a child; `Default` is none of them.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// `(resource, soft, hard)`
    pub rlimits: Vec<(u32, u64, u64)>,
    pub nice: Option<i32>,
    /// `(class << 13) | level`
    pub ioprio: Option<i32>,
    /// The decimal text written to `/proc/self/oom_score_adj`.
    pub oom_score_adj: Option<CString>,
    /// `CLONE_NEW*` flags.
    pub namespaces: i32,
    /// With `CLONE_NEWUSER`: the text the parent writes to the child's
    /// `uid_map` and `gid_map` (setgroups is denied first, as the kernel
    /// requires for unprivileged gid maps).
    pub uid_map: Option<String>,
    pub gid_map: Option<String>,
    /// In order; before `pivot_root`.
    pub mounts: Vec<Mount>,
    /// `pivot_root` into this folder (already a mount point: the plan
    /// bind-mounts it onto itself first).
    pub pivot_root: Option<CString>,
    pub hostname: Option<CString>,
    /// Bring `lo` up (in a new network namespace).
    pub loopback_up: bool,
    pub ids: Option<Ids>,
    pub caps: Option<Caps>,
    pub no_new_privs: bool,
    /// BPF programs, loaded in order (the kernel applies the strictest).
    pub seccomp: Vec<Vec<libc::sock_filter>>,
}

/// Secret files the child writes into a fresh tmpfs in its own mount
/// namespace, like systemd's `LoadCredential=`: the tmpfs is mounted on
/// `mount_at` (mode 0755), `dir` is made in it (mode 0500) holding the
/// files (mode 0400), all owned by `owner` when given, and the tmpfs is
/// then remounted read-only. Nothing of it is visible outside the child's
/// mount namespace. Needs `CLONE_NEWNS` and the private propagation mount
/// first in [`Setup::mounts`].
#[derive(Debug)]
pub struct Credentials {
    mount_at: CString,
    dir: CString,
    files: Vec<(CString, Secret)>,
    owner: Option<(u32, u32)>,
    /// Create everything as `owner` (its filesystem uid and gid): in a
    /// user namespace, where sentinel's own root is not mapped, files it
    /// made would belong to nobody.
    as_owner: bool,
    /// tmpfs options: mode and a size that fits the files.
    data: CString,
}

impl Credentials {
    /// `files`: (name inside `dir`, content). Names are plain file names.
    /// `owner`: the service's ids as the child sees them; `user_namespace`:
    /// the child has its own (the files are then made as `owner`).
    pub fn new(
        mount_at: &str,
        dir: &str,
        files: Vec<(String, Secret)>,
        owner: Option<(u32, u32)>,
        user_namespace: bool,
    ) -> Result<Credentials, NulError> {
        // Each file takes at least a page; leave room for the folders.
        let need: usize = files.iter().map(|(_, s)| s.len() + 4096).sum::<usize>() + 64 * 1024;
        let files = files
            .into_iter()
            .map(|(name, s)| Ok((cstring(&format!("{dir}/{name}"))?, s)))
            .collect::<Result<_, NulError>>()?;
        Ok(Credentials {
            mount_at: cstring(mount_at)?,
            dir: cstring(dir)?,
            files,
            owner,
            as_owner: user_namespace && owner.is_some(),
            data: cstring(&format!("mode=0755,size={need}"))?,
        })
    }
}

/// Everything the child needs, prepared before fork.
pub struct Plan {
    /// Paths to try with `execve`, in order (the `PATH` search, done as
    /// `execvp` does but without allocating in the child).
    candidates: Vec<CString>,
    argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    /// Owns the strings `envp_ptrs` points into.
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const c_char>,
    workdir: Option<CString>,
    session: Session,
    setup: Setup,
    /// `(len, ptr)` of each seccomp program, as `struct sock_fprog`.
    fprogs: Vec<libc::sock_fprog>,
    /// `lo` for SIOCGIFFLAGS/SIOCSIFFLAGS.
    ifreq: IfReq,
    /// `LISTEN_PID=` and room for the pid, which the child writes in just
    /// before exec (socket activation wants the process's own pid). Owned
    /// (from `Box::into_raw`), freed on drop; the last entry of the env.
    listen_pid: Option<*mut [u8; LISTEN_PID_BUF]>,
    /// `NAME=value\0` entries added for one start (`arm_secrets`); the
    /// pointers in `envp_ptrs` point into them while armed.
    secret_env: Vec<Secret>,
    /// Secret files for one start.
    credentials: Option<Credentials>,
}

const LISTEN_PID_BUF: usize = 32;
const LISTEN_PID_PREFIX: &[u8] = b"LISTEN_PID=";

impl Drop for Plan {
    fn drop(&mut self) {
        if let Some(p) = self.listen_pid.take() {
            // SAFETY: `p` came from `Box::into_raw` in `with_listen_pid` and
            // is freed only here, once.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// `struct ifreq` with the name and the flags member of its union.
#[repr(C)]
#[derive(Clone, Copy)]
struct IfReq {
    name: [u8; 16],
    flags: i16,
    _pad: [u8; 22],
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("candidates", &self.candidates)
            .field("argv", &self.argv)
            .field("envp_len", &self._envp.len())
            .field("workdir", &self.workdir)
            .field("session", &self.session)
            .field("setup", &self.setup)
            .field("secret_env_len", &self.secret_env.len())
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// A string with a NUL inside cannot be passed to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NulError(pub String);

impl fmt::Display for NulError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} contains a NUL byte", self.0)
    }
}

impl std::error::Error for NulError {}

/// A C string for the kernel, or an error naming the string.
pub fn cstring(s: &str) -> Result<CString, NulError> {
    CString::new(s).map_err(|_| NulError(s.to_string()))
}

/// `a`, `sep` and `b` joined into one C string, in one allocation and
/// without the formatting machinery (plans are made on every start, and
/// `sentinel exec` makes one per run).
fn joined(a: &str, sep: u8, b: &str) -> Result<CString, NulError> {
    let mut bytes = Vec::with_capacity(a.len() + b.len() + 2);
    bytes.extend_from_slice(a.as_bytes());
    bytes.push(sep);
    bytes.extend_from_slice(b.as_bytes());
    CString::new(bytes).map_err(|e| NulError(String::from_utf8_lossy(&e.into_vec()).into_owned()))
}

impl Plan {
    /// `argv[0]` is the program: a path if it has a `/` (relative paths are
    /// taken from `workdir`), else searched in the `PATH` of `env` (or
    /// [`DEFAULT_PATH`]). `env` is the complete environment.
    pub fn new(
        argv: &[String],
        env: &[(String, String)],
        workdir: Option<&str>,
        session: Session,
    ) -> Result<Plan, NulError> {
        let program = argv.first().map(String::as_str).unwrap_or("");
        let candidates = if program.contains('/') || program.is_empty() {
            vec![cstring(program)?]
        } else {
            let path = env
                .iter()
                .rev()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.as_str())
                .unwrap_or(DEFAULT_PATH);
            let mut candidates = Vec::with_capacity(path.matches(':').count() + 1);
            for dir in path.split(':') {
                let dir = if dir.is_empty() { "." } else { dir };
                candidates.push(joined(dir.trim_end_matches('/'), b'/', program)?);
            }
            candidates
        };
        // Exact capacities: a plan lives as long as its service, and
        // collecting through `Result` would round each up to a power of two.
        let mut args = Vec::with_capacity(argv.len());
        for a in argv {
            args.push(cstring(a)?);
        }
        let argv = args;
        let mut envp = Vec::with_capacity(env.len());
        for (k, v) in env {
            envp.push(joined(k, b'=', v)?);
        }
        let argv_ptrs = null_terminated(&argv);
        let envp_ptrs = null_terminated(&envp);
        let mut name = [0u8; 16];
        name[..2].copy_from_slice(b"lo");
        Ok(Plan {
            candidates,
            argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            workdir: workdir.map(cstring).transpose()?,
            session,
            setup: Setup::default(),
            fprogs: Vec::new(),
            ifreq: IfReq {
                name,
                flags: 0,
                _pad: [0; 22],
            },
            listen_pid: None,
            secret_env: Vec::new(),
            credentials: None,
        })
    }

    /// Set (or add) one environment variable, e.g. a count that changed
    /// since the plan was made.
    pub fn set_env(&mut self, key: &str, value: &str) -> Result<(), NulError> {
        let entry = joined(key, b'=', value)?;
        let prefix = format!("{key}=");
        match self
            ._envp
            .iter()
            .position(|e| e.as_bytes().starts_with(prefix.as_bytes()))
        {
            Some(i) => self._envp[i] = entry,
            None => self._envp.push(entry),
        }
        self.rebuild_envp();
        Ok(())
    }

    /// Give the child `LISTEN_PID=<its own pid>` (systemd's socket
    /// activation), written in the child right before exec.
    pub fn with_listen_pid(mut self) -> Plan {
        if self.listen_pid.is_none() {
            self._envp
                .retain(|e| !e.as_bytes().starts_with(LISTEN_PID_PREFIX));
            let mut buf = [0u8; LISTEN_PID_BUF];
            buf[..LISTEN_PID_PREFIX.len()].copy_from_slice(LISTEN_PID_PREFIX);
            buf[LISTEN_PID_PREFIX.len()] = b'0';
            self.listen_pid = Some(Box::into_raw(Box::new(buf)));
            self.rebuild_envp();
        }
        self
    }

    fn rebuild_envp(&mut self) {
        let mut ptrs = null_terminated(&self._envp);
        if let Some(p) = self.listen_pid {
            ptrs.insert(ptrs.len() - 1, p as *const c_char);
        }
        self.envp_ptrs = ptrs;
    }

    /// For the next start only: add `env` to the environment (replacing
    /// entries of the same names) and have the child write `credentials`.
    /// Call [`Plan::disarm_secrets`] once `spawn` has returned. Errors name
    /// the variable, never its value.
    pub fn arm_secrets(
        &mut self,
        env: Vec<(String, Secret)>,
        credentials: Option<Credentials>,
    ) -> Result<(), String> {
        self.disarm_secrets();
        let mut entries: Vec<(String, Secret)> = Vec::with_capacity(env.len());
        for (k, v) in env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(format!("invalid environment variable name {k:?}"));
            }
            if v.expose().contains(&0) {
                return Err(format!(
                    "the value for {k} contains a NUL byte, which the environment cannot hold"
                ));
            }
            // Sized exactly, so it never reallocates (and leaves no copy).
            let mut bytes = Vec::with_capacity(k.len() + v.len() + 2);
            bytes.extend_from_slice(k.as_bytes());
            bytes.push(b'=');
            bytes.extend_from_slice(v.expose());
            bytes.push(0);
            entries.push((k, Secret::new(bytes)));
        }
        let overridden = |e: &CString| {
            let key = e.as_bytes().split(|&b| b == b'=').next().unwrap_or(&[]);
            entries.iter().any(|(k, _)| k.as_bytes() == key)
        };
        let mut ptrs: Vec<*const c_char> = self
            ._envp
            .iter()
            .filter(|e| !overridden(e))
            .map(|e| e.as_ptr())
            .collect();
        if let Some(p) = self.listen_pid {
            ptrs.push(p as *const c_char);
        }
        // A Vec's heap buffer stays put when the Vec is moved below.
        ptrs.extend(
            entries
                .iter()
                .map(|(_, s)| s.expose().as_ptr().cast::<c_char>()),
        );
        ptrs.push(std::ptr::null());
        self.envp_ptrs = ptrs;
        self.secret_env = entries.into_iter().map(|(_, s)| s).collect();
        self.credentials = credentials;
        Ok(())
    }

    /// Wipe what `arm_secrets` added (the environment goes back to the
    /// plan's own).
    pub fn disarm_secrets(&mut self) {
        self.rebuild_envp();
        self.secret_env.clear();
        self.credentials = None;
    }

    /// Add the isolation steps.
    pub fn with_setup(mut self, setup: Setup) -> Plan {
        self.fprogs = setup
            .seccomp
            .iter()
            .map(|p| libc::sock_fprog {
                len: p.len() as u16,
                filter: p.as_ptr() as *mut libc::sock_filter,
            })
            .collect();
        self.setup = setup;
        self
    }

    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// The program as given in argv[0].
    pub fn program(&self) -> &CStr {
        self.argv.first().map(CString::as_c_str).unwrap_or(c"")
    }

    /// What a failed step at `index` was acting on, for the message.
    fn detail(&self, step: Step, index: u32) -> String {
        let i = index as usize;
        let lossy = |c: &CStr| c.to_string_lossy().into_owned();
        match step {
            Step::Exec => lossy(self.program()),
            Step::Chdir => self.workdir.as_deref().map(lossy).unwrap_or_default(),
            Step::Mount => self
                .setup
                .mounts
                .get(i)
                .map(|m| lossy(&m.target))
                .unwrap_or_default(),
            Step::PivotRoot => self
                .setup
                .pivot_root
                .as_deref()
                .map(lossy)
                .unwrap_or_default(),
            Step::Rlimit => self
                .setup
                .rlimits
                .get(i)
                .map(|r| format!("resource {}", r.0))
                .unwrap_or_default(),
            // 0: the tmpfs, 1: the folder, 2: the read-only remount, 3..: files.
            Step::Credentials => match (&self.credentials, index) {
                (None, _) => String::new(),
                (Some(c), 0 | 2) => lossy(&c.mount_at),
                (Some(c), 1) => lossy(&c.dir),
                (Some(c), i) => c
                    .files
                    .get(i as usize - 3)
                    .map(|(p, _)| lossy(p))
                    .unwrap_or_default(),
            },
            Step::Setuid => self
                .setup
                .ids
                .as_ref()
                .map(|d| d.uid.to_string())
                .unwrap_or_default(),
            Step::Setgid => self
                .setup
                .ids
                .as_ref()
                .map(|d| d.gid.to_string())
                .unwrap_or_default(),
            Step::Nice => self.setup.nice.map(|n| n.to_string()).unwrap_or_default(),
            Step::Hostname => self
                .setup
                .hostname
                .as_deref()
                .map(lossy)
                .unwrap_or_default(),
            Step::Capabilities => match index {
                0 => "bounding set".into(),
                1 => "capset".into(),
                2 => "ambient".into(),
                _ => "keepcaps".into(),
            },
            _ => String::new(),
        }
    }
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// A started child.
#[derive(Debug)]
pub struct Child {
    pub pid: Pid,
    /// A pidfd for the child (from `CLONE_PIDFD` or `pidfd_open`), when the
    /// kernel gives one.
    pub pidfd: Option<OwnedFd>,
}

/// `struct clone_args` (version 2, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Whether `clone3` was found unusable (ENOSYS, or refused by a seccomp
/// filter around sentinel); then every spawn takes the fork path.
static CLONE3_UNUSABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Never use `clone3` (tests of the fallback; `SENTINEL_NO_CLONE3=1`).
pub fn disable_clone3() {
    CLONE3_UNUSABLE.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Most fds a child is given (`fds`: 0, 1, 2 and up to 13 more).
pub const MAX_FDS: usize = 16;

/// Fork and exec `plan`, with `stdio[n]` as the child's fd `n` (0, 1, 2 are
/// stdio; more are passed on at 3, 4, ...: a readiness pipe, sockets), started
/// inside `cgroup` when given.
///
/// Returns the child once `execve` has succeeded. On failure the child has
/// already been reaped and the error names the step and errno. The caller
/// must not have other threads (sentinel has one).
pub fn spawn(
    plan: &Plan,
    stdio: &[Stdio<'_>],
    cgroup: Option<Cgroup<'_>>,
) -> Result<Child, SpawnError> {
    let fail = |step, errno, detail: &str| SpawnError {
        step,
        errno,
        detail: detail.to_string(),
    };
    let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| fail(Step::Clone, e, "pipe2"))?;
    // The user namespace's maps are written by the parent while the child
    // waits on this pipe.
    let needs_maps = plan.setup.namespaces & libc::CLONE_NEWUSER != 0;
    let barrier = if needs_maps {
        Some(
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| fail(Step::Clone, e, "pipe2"))?,
        )
    } else {
        None
    };
    if stdio.len() > MAX_FDS {
        return Err(fail(
            Step::Stdio,
            Errno::EMFILE,
            "more than 16 fds for a child",
        ));
    }
    let mut raw = [-1; MAX_FDS];
    for (slot, s) in raw.iter_mut().zip(stdio) {
        if let Stdio::Fd(fd) = s {
            *slot = fd.as_raw_fd();
        }
    }
    let stdio_fds = (raw, stdio.len());
    let barrier_r = barrier.as_ref().map_or(-1, |(r, _)| r.as_raw_fd());
    let report = report_w.as_raw_fd();

    // clone3 makes the namespaces (with pid, the child is PID 1 of its
    // namespace; with user, the others belong to the new user namespace).
    let clone_ns = plan.setup.namespaces as u64;
    let mut pidfd: RawFd = -1;
    let mut pid: libc::pid_t = -1;
    let mut via_clone3 = false;
    if !CLONE3_UNUSABLE.load(std::sync::atomic::Ordering::Relaxed) {
        let mut args = CloneArgs {
            flags: libc::CLONE_PIDFD as u64 | clone_ns,
            pidfd: &mut pidfd as *mut RawFd as u64,
            exit_signal: libc::SIGCHLD as u64,
            ..Default::default()
        };
        if let Some(cg) = cgroup {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = cg.dir.as_raw_fd() as u64;
        }
        // SAFETY: clone3 without CLONE_VM in a single-threaded process is a
        // fork: the child gets a copy of this stack and memory, and only
        // runs `child_main` (raw syscalls on memory prepared before), which
        // never returns. `args` and `pidfd` outlive the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &mut args as *mut CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if r == 0 {
            child_main(plan, stdio_fds, report, barrier_r, None);
        }
        if r > 0 {
            pid = r as libc::pid_t;
            via_clone3 = true;
        } else {
            match Errno::last() {
                // No clone3 here: an old kernel, or a seccomp profile such
                // as Docker's default, which answers ENOSYS (some answer
                // EPERM; with namespaces asked for, EPERM is a real refusal).
                Errno::ENOSYS => CLONE3_UNUSABLE.store(true, std::sync::atomic::Ordering::Relaxed),
                Errno::EPERM if clone_ns == 0 => {
                    CLONE3_UNUSABLE.store(true, std::sync::atomic::Ordering::Relaxed)
                }
                e => return Err(fail(Step::Clone, e, "clone3")),
            }
        }
    }
    if !via_clone3 {
        if (clone_ns as i32 | plan.setup.namespaces) & (libc::CLONE_NEWPID | libc::CLONE_NEWUSER)
            != 0
        {
            return Err(fail(
                Step::Clone,
                Errno::ENOSYS,
                "pid and user namespaces need clone3 (Linux 5.7 or later, not blocked by a seccomp filter)",
            ));
        }
        // SAFETY: fork in a single-threaded process; the child only runs
        // `child_main`, which makes raw syscalls on memory prepared before
        // the fork and never returns.
        let r = unsafe { libc::fork() };
        if r < 0 {
            return Err(fail(Step::Clone, Errno::last(), "fork"));
        }
        if r == 0 {
            let procs = cgroup.map(|c| c.procs.as_raw_fd());
            child_main(
                plan,
                stdio_fds,
                report,
                barrier_r,
                Some((procs, clone_ns as i32)),
            );
        }
        pid = r;
    }
    drop(report_w);
    let pid = Pid::from_raw(pid);
    let pidfd = if pidfd >= 0 {
        // SAFETY: the kernel wrote a new pidfd that nothing else owns.
        Some(unsafe { OwnedFd::from_raw_fd(pidfd) })
    } else {
        // SAFETY: plain syscall; a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
        // SAFETY: on success the fd is new and ours.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    };

    // Reports: 12 bytes (step, errno, index). A `Step::IdMaps` report with
    // errno 0 asks the parent to write the user namespace's maps.
    let mut failure = None;
    loop {
        let mut buf = [0u8; 12];
        let got =
            read_full(&report_r, &mut buf).map_err(|e| fail(Step::Exec, e, "read report pipe"))?;
        if got == 0 {
            break;
        }
        let word = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let (step, errno, index) = (word(0), word(4) as i32, word(8));
        let step = Step::from_u32(step).unwrap_or(Step::Exec);
        if step == Step::IdMaps && errno == 0 {
            let result = write_id_maps(pid, &plan.setup);
            let (_, w) = barrier
                .as_ref()
                .expect("maps are only asked for with a barrier");
            let byte = [u8::from(result.is_ok())];
            let _ = nix::unistd::write(w, &byte);
            if let Err(e) = result {
                failure = Some(e);
            }
            continue;
        }
        failure = Some(SpawnError {
            step,
            errno: Errno::from_raw(errno),
            detail: plan.detail(step, index),
        });
        break;
    }
    match failure {
        None => Ok(Child { pid, pidfd }),
        Some(e) => {
            // The child failed before execve and is exiting (or waits on a
            // closed barrier): make sure, reap it, so that no zombie is left
            // and the loop never sees its exit.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            while let Err(Errno::EINTR) = nix::sys::wait::waitpid(pid, None) {}
            Err(e)
        }
    }
}

fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// For a child in a new user namespace: apply the steps that need
/// sentinel's privileges in the initial namespace to its pid (rlimits,
/// nice, ionice, OOM score), then write its uid and gid maps (setgroups
/// denied first, as the kernel wants for gid maps written this way).
fn write_id_maps(pid: Pid, setup: &Setup) -> Result<(), SpawnError> {
    let err = |e: std::io::Error, what: &str| SpawnError {
        step: Step::IdMaps,
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        detail: what.to_string(),
    };
    let sys_err = |step: Step, detail: String| SpawnError {
        step,
        errno: Errno::last(),
        detail,
    };
    for &(resource, soft, hard) in &setup.rlimits {
        let lim = libc::rlimit64 {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: `lim` is a valid rlimit64 on our stack; no old value wanted.
        if unsafe { libc::prlimit64(pid.as_raw(), resource as _, &lim, std::ptr::null_mut()) } < 0 {
            return Err(sys_err(Step::Rlimit, format!("resource {resource}")));
        }
    }
    if let Some(n) = setup.nice {
        // SAFETY: plain syscall without pointers.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, pid.as_raw() as libc::id_t, n) } < 0 {
            return Err(sys_err(Step::Nice, n.to_string()));
        }
    }
    if let Some(v) = setup.ioprio {
        // SAFETY: plain syscall: IOPRIO_WHO_PROCESS (1) of the child's pid.
        if unsafe { libc::syscall(libc::SYS_ioprio_set, 1, pid.as_raw(), v) } < 0 {
            return Err(sys_err(Step::Ionice, String::new()));
        }
    }
    let base = format!("/proc/{}", pid.as_raw());
    if let Some(text) = &setup.oom_score_adj {
        std::fs::write(format!("{base}/oom_score_adj"), text.as_bytes()).map_err(|e| {
            SpawnError {
                step: Step::OomScore,
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                detail: String::new(),
            }
        })?;
    }
    if let Some(m) = &setup.uid_map {
        std::fs::write(format!("{base}/uid_map"), m).map_err(|e| err(e, m))?;
    }
    if let Some(m) = &setup.gid_map {
        std::fs::write(format!("{base}/setgroups"), "deny")
            .map_err(|e| err(e, "setgroups deny"))?;
        std::fs::write(format!("{base}/gid_map"), m).map_err(|e| err(e, m))?;
    }
    Ok(())
}

/// Report `(step, errno, index)` to the parent and exit. Async-signal-safe.
fn child_fail_at(report: RawFd, step: Step, errno: i32, index: u32) -> ! {
    child_report(report, step, errno, index);
    // SAFETY: `_exit` ends the child without running the parent's atexit
    // handlers or destructors.
    unsafe { libc::_exit(127) }
}

fn child_fail(report: RawFd, step: Step, errno: i32) -> ! {
    child_fail_at(report, step, errno, 0)
}

fn child_report(report: RawFd, step: Step, errno: i32, index: u32) {
    let mut buf = [0u8; 12];
    buf[..4].copy_from_slice(&(step as u32).to_ne_bytes());
    buf[4..8].copy_from_slice(&errno.to_ne_bytes());
    buf[8..].copy_from_slice(&index.to_ne_bytes());
    // SAFETY: `buf` is a valid 12-byte buffer; a short or failed write only
    // makes the parent report a less precise error.
    unsafe { libc::write(report, buf.as_ptr().cast(), buf.len()) };
}

fn errno() -> i32 {
    Errno::last_raw()
}

/// `r < 0`: report `step` with errno and exit.
fn check(r: i64, report: RawFd, step: Step, index: u32) {
    if r < 0 {
        child_fail_at(report, step, errno(), index);
    }
}

/// `capset` data: effective, permitted, inheritable for caps 0..31 and 32..63.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// This process's permitted set, as a mask.
fn cap_permitted(report: RawFd) -> u64 {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and data are valid version-3 capget buffers on our stack.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    check(r, report, Step::Capabilities, 1);
    u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32)
}

fn capset(report: RawFd, mask_eff: u64, mask_perm: u64, mask_inh: u64, index: u32) {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: mask_eff as u32,
            permitted: mask_perm as u32,
            inheritable: mask_inh as u32,
        },
        CapData {
            effective: (mask_eff >> 32) as u32,
            permitted: (mask_perm >> 32) as u32,
            inheritable: (mask_inh >> 32) as u32,
        },
    ];
    // SAFETY: header and data are valid `cap_user_header_t` /
    // `cap_user_data_t[2]` for version 3 and outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    check(r, report, Step::Capabilities, index);
}

/// The child side: raw syscalls only, in the fixed order of DESIGN.md.
/// `fork_path`: the fork fallback's `cgroup.procs` fd and the namespaces
/// clone3 would have made, which the child then unshares itself.
fn child_main(
    plan: &Plan,
    stdio: ([RawFd; MAX_FDS], usize),
    report: RawFd,
    barrier: RawFd,
    fork_path: Option<(Option<RawFd>, i32)>,
) -> ! {
    let setup = &plan.setup;
    // 1. Session or process group, and the terminal (while signals are still
    //    blocked, so tcsetpgrp from a background group raises no SIGTTOU).
    match plan.session {
        Session::New => {
            // SAFETY: plain syscall without pointers.
            if unsafe { libc::setsid() } < 0 {
                child_fail(report, Step::Session, errno());
            }
        }
        Session::Group { foreground } => {
            // SAFETY: plain syscall without pointers.
            if unsafe { libc::setpgid(0, 0) } < 0 {
                child_fail(report, Step::Session, errno());
            }
            if foreground {
                // SAFETY: plain syscalls without pointers. Failing (no
                // terminal on fd 0) is normal and ignored, as tini does.
                unsafe { libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpgrp()) };
            }
        }
    }

    // 2. Signals: default dispositions (Rust ignores SIGPIPE; ignored
    //    dispositions survive execve), then an empty mask.
    //    The raw syscall also reaches 32 and 33, which glibc's wrapper
    //    refuses; an all-zero kernel sigaction is SIG_DFL on every arch.
    let default_action = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `default_action` is a zeroed kernel `struct sigaction`
        // (handler SIG_DFL, no flags, empty mask) that outlives the call;
        // 8 is the kernel's sigset size.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                default_action.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
    }
    // SAFETY: an all-zero sigset_t is valid storage for sigemptyset.
    let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `empty` is valid, writable sigset storage on our stack.
    unsafe { libc::sigemptyset(&mut empty) };
    // SAFETY: `empty` is an initialised sigset; the old mask is not wanted.
    if unsafe { libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) } < 0 {
        child_fail(report, Step::Signals, errno());
    }

    // 3. The cgroup, on the fork path (clone3 placed the child already).
    if let Some((Some(procs), _)) = fork_path {
        // SAFETY: writes 1 byte from a static string to an fd the parent keeps open.
        let r = unsafe { libc::write(procs, c"0".as_ptr().cast(), 1) };
        check(r as i64, report, Step::Cgroup, 0);
    }

    // With a user namespace the parent writes the maps and applies the
    // privileged steps (rlimits, nice, ionice, OOM score) to this pid, which
    // needs sentinel's capabilities in the initial namespace; wait for it.
    let in_userns = setup.namespaces & libc::CLONE_NEWUSER != 0;
    if in_userns {
        child_report(report, Step::IdMaps, 0, 0);
        let mut ok = [0u8; 1];
        // SAFETY: reads 1 byte into a stack buffer.
        let n = unsafe { libc::read(barrier, ok.as_mut_ptr().cast(), 1) };
        if n != 1 || ok[0] != 1 {
            // The parent has the error already.
            // SAFETY: ends the child.
            unsafe { libc::_exit(127) };
        }
    } else {
        // 4. rlimits, nice, ionice, OOM score.
        for (i, &(resource, soft, hard)) in setup.rlimits.iter().enumerate() {
            let lim = libc::rlimit64 {
                rlim_cur: soft,
                rlim_max: hard,
            };
            // SAFETY: `lim` is a valid rlimit64 on our stack; no old value wanted.
            let r = unsafe { libc::prlimit64(0, resource as _, &lim, std::ptr::null_mut()) };
            check(r as i64, report, Step::Rlimit, i as u32);
        }
        if let Some(n) = setup.nice {
            // SAFETY: plain syscall without pointers.
            let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) };
            check(r as i64, report, Step::Nice, 0);
        }
        if let Some(v) = setup.ioprio {
            // SAFETY: plain syscall: IOPRIO_WHO_PROCESS (1), this process.
            let r = unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, v) };
            check(r, report, Step::Ionice, 0);
        }
        if let Some(text) = &setup.oom_score_adj {
            // SAFETY: a NUL-terminated path prepared before fork.
            let fd = unsafe {
                libc::open(
                    c"/proc/self/oom_score_adj".as_ptr(),
                    libc::O_WRONLY | libc::O_CLOEXEC,
                )
            };
            check(fd as i64, report, Step::OomScore, 0);
            let bytes = text.as_bytes();
            // SAFETY: writes the prepared bytes to the fd just opened.
            let r = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
            check(r as i64, report, Step::OomScore, 0);
            // SAFETY: closes our own fd.
            unsafe { libc::close(fd) };
        }
    }

    // 5. Namespaces clone3 did not make (the fork path).
    if let Some((_, ns)) = fork_path {
        if ns != 0 {
            // SAFETY: plain syscall without pointers.
            let r = unsafe { libc::unshare(ns) };
            check(r as i64, report, Step::Unshare, 0);
        }
    }

    // 6. Mounts, pivot_root, hostname, loopback.
    for (i, m) in setup.mounts.iter().enumerate() {
        let p = |c: &Option<CString>| c.as_deref().map_or(std::ptr::null(), CStr::as_ptr);
        // SAFETY: NUL-terminated strings (or NULL) prepared before fork.
        let r = unsafe {
            libc::mount(
                p(&m.source),
                m.target.as_ptr(),
                p(&m.fstype),
                m.flags,
                p(&m.data).cast(),
            )
        };
        check(r as i64, report, Step::Mount, i as u32);
    }
    if let Some(cr) = &plan.credentials {
        write_credentials(cr, report);
    }
    if let Some(root) = &setup.pivot_root {
        // SAFETY: NUL-terminated paths prepared before fork or static.
        unsafe {
            check(
                libc::chdir(root.as_ptr()) as i64,
                report,
                Step::PivotRoot,
                0,
            );
            let dot = c".".as_ptr();
            check(
                libc::syscall(libc::SYS_pivot_root, dot, dot),
                report,
                Step::PivotRoot,
                1,
            );
            check(
                libc::umount2(dot, libc::MNT_DETACH) as i64,
                report,
                Step::PivotRoot,
                2,
            );
            check(
                libc::chdir(c"/".as_ptr()) as i64,
                report,
                Step::PivotRoot,
                3,
            );
        }
    }
    if let Some(name) = &setup.hostname {
        // SAFETY: the prepared name and its length.
        let r = unsafe { libc::sethostname(name.as_ptr(), name.as_bytes().len()) };
        check(r as i64, report, Step::Hostname, 0);
    }
    if setup.loopback_up {
        let mut ifr = plan.ifreq;
        // SAFETY: plain syscall without pointers.
        let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        check(s as i64, report, Step::Loopback, 0);
        // SAFETY: `ifr` is a valid `struct ifreq` naming "lo" on our stack.
        let r = unsafe { libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr as *mut IfReq) };
        check(r as i64, report, Step::Loopback, 1);
        ifr.flags |= (libc::IFF_UP | libc::IFF_RUNNING) as i16;
        // SAFETY: as above, with the flags set.
        let r = unsafe { libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr as *const IfReq) };
        check(r as i64, report, Step::Loopback, 2);
        // SAFETY: closes our own socket.
        unsafe { libc::close(s) };
    }

    // 7. stdio and passed fds. First move every source above the targets,
    //    so that a source that is itself a target is not overwritten by an
    //    earlier dup2.
    let (stdio, count) = stdio;
    let stdio = &stdio[..count];
    let mut moved = [-1; MAX_FDS];
    for (i, &fd) in stdio.iter().enumerate() {
        if fd >= 0 {
            // SAFETY: fcntl(F_DUPFD_CLOEXEC) on an fd the parent keeps open.
            let m = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, MAX_FDS as libc::c_int) };
            if m < 0 {
                child_fail(report, Step::Stdio, errno());
            }
            moved[i] = m;
        }
    }
    for (target, &fd) in moved.iter().enumerate() {
        // SAFETY: dup2 onto a target from an fd we own; clears close-on-exec.
        if fd >= 0 && unsafe { libc::dup2(fd, target as RawFd) } < 0 {
            child_fail(report, Step::Stdio, errno());
        }
    }
    // Nothing else crosses execve: mark every fd above the passed ones
    // close-on-exec (guards against fds leaked to sentinel by whoever
    // started it).
    let first_free = count.max(3) as u32;
    // SAFETY: plain syscall without pointers; ENOSYS on old kernels is fine
    // because sentinel opens all its own fds with O_CLOEXEC.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first_free,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };

    // 8. Working directory (inside the new root, after pivot_root).
    if let Some(dir) = &plan.workdir {
        // SAFETY: `dir` is a NUL-terminated string prepared before fork.
        if unsafe { libc::chdir(dir.as_ptr()) } < 0 {
            child_fail(report, Step::Chdir, errno());
        }
    }

    // 9. Identity: keep capabilities across setuid when some are kept.
    if let (Some(_), Some(ids)) = (&setup.caps, &setup.ids) {
        if ids.uid != 0 {
            // SAFETY: plain prctl without pointers.
            let r = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
            check(r as i64, report, Step::Capabilities, 3);
        }
    }
    if let Some(ids) = &setup.ids {
        if !in_userns {
            // The raw syscalls, not glibc's wrappers: those broadcast the
            // change to every thread glibc knows of, which after a fork
            // from a threaded process (the test harness) can hang.
            // SAFETY: `groups` is a prepared Vec<u32> (gid_t) and its length.
            let r = unsafe {
                libc::syscall(libc::SYS_setgroups, ids.groups.len(), ids.groups.as_ptr())
            };
            check(r as i64, report, Step::Setgroups, 0);
        }
        // SAFETY: plain syscalls without pointers.
        let r = unsafe { libc::syscall(libc::SYS_setresgid, ids.gid, ids.gid, ids.gid) };
        check(r as i64, report, Step::Setgid, 0);
        // SAFETY: plain syscall without pointers.
        let r = unsafe { libc::syscall(libc::SYS_setresuid, ids.uid, ids.uid, ids.uid) };
        check(r as i64, report, Step::Setuid, 0);
    }

    // 10. Capabilities: effective back from permitted (setuid cleared it),
    //     drop the bounding set, set the kept sets, raise ambient.
    if let Some(caps) = &setup.caps {
        // setuid to non-root cleared the effective set (keepcaps kept the
        // permitted one): take it back to drop the bounding set.
        let permitted = cap_permitted(report);
        capset(report, permitted, permitted, 0, 1);
        for c in 0..=caps.last_cap {
            if caps.keep & (1u64 << c) == 0 {
                // SAFETY: plain prctl without pointers.
                let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) };
                check(r as i64, report, Step::Capabilities, 0);
            }
        }
        capset(report, caps.keep, caps.keep, caps.keep, 1);
        if caps.ambient {
            for c in 0..=caps.last_cap {
                if caps.keep & (1u64 << c) != 0 {
                    // SAFETY: plain prctl without pointers.
                    let r = unsafe {
                        libc::prctl(
                            libc::PR_CAP_AMBIENT,
                            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                            c as libc::c_ulong,
                            0,
                            0,
                        )
                    };
                    check(r as i64, report, Step::Capabilities, 2);
                }
            }
        }
    }

    // LISTEN_PID: this process's pid as its own namespace sees it.
    if let Some(buf) = plan.listen_pid {
        // SAFETY: plain syscall without pointers.
        let mut pid = unsafe { libc::syscall(libc::SYS_getpid) } as u64;
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (pid % 10) as u8;
            n += 1;
            pid /= 10;
            if pid == 0 {
                break;
            }
        }
        // SAFETY: `buf` is this process's own copy (a fork: no shared
        // memory) of a live allocation of LISTEN_PID_BUF bytes that nothing
        // else references while the child runs; prefix (11) + 20 digits +
        // NUL fit in 32.
        let out = unsafe { &mut *buf };
        let start = LISTEN_PID_PREFIX.len();
        for k in 0..n {
            out[start + k] = digits[n - 1 - k];
        }
        out[start + n] = 0;
    }

    // 11. no_new_privs.
    if setup.no_new_privs {
        // SAFETY: plain prctl without pointers.
        let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        check(r as i64, report, Step::NoNewPrivs, 0);
    }

    // 12. seccomp, last: nothing above is filtered.
    for (i, prog) in plan.fprogs.iter().enumerate() {
        // SAFETY: `prog` points to a BPF program owned by the plan, which
        // outlives this call; SECCOMP_SET_MODE_FILTER is 1.
        let r = unsafe { libc::syscall(libc::SYS_seccomp, 1, 0, prog as *const libc::sock_fprog) };
        check(r, report, Step::Seccomp, i as u32);
    }

    // 13. execve each candidate, as execvp does: remember EACCES, go on past
    //     ENOENT/ENOTDIR, stop at any other error.
    let mut last = libc::ENOENT;
    let mut saw_eacces = false;
    for path in &plan.candidates {
        // SAFETY: path, argv and envp are NUL-terminated strings and
        // NULL-terminated pointer arrays prepared before fork.
        unsafe {
            libc::execve(
                path.as_ptr(),
                plan.argv_ptrs.as_ptr(),
                plan.envp_ptrs.as_ptr(),
            )
        };
        last = errno();
        match last {
            libc::EACCES => saw_eacces = true,
            libc::ENOENT | libc::ENOTDIR => {}
            _ => break,
        }
    }
    if saw_eacces && matches!(last, libc::ENOENT | libc::ENOTDIR) {
        last = libc::EACCES;
    }
    child_fail(report, Step::Exec, last)
}

/// In the child, after its mounts: a fresh tmpfs on `cr.mount_at`, the
/// folder and the files in it, owned by the service, then read-only.
fn write_credentials(cr: &Credentials, report: RawFd) {
    let step = Step::Credentials;
    if let (true, Some((uid, gid))) = (cr.as_owner, cr.owner) {
        // SAFETY: plain syscalls without pointers; each returns the old id.
        // (u32::MAX is no id: setfsuid(-1) only reads the current one.)
        let now = unsafe {
            libc::syscall(libc::SYS_setfsgid, gid);
            libc::syscall(libc::SYS_setfsuid, uid);
            libc::syscall(libc::SYS_setfsuid, u32::MAX)
        };
        if now as u32 != uid {
            child_fail_at(report, step, libc::EPERM, 1);
        }
    }
    // SAFETY: a NUL-terminated path prepared before fork. It usually exists
    // already (the parent made it); any other failure shows in the mount.
    unsafe { libc::mkdir(cr.mount_at.as_ptr(), 0o755) };
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: NUL-terminated strings prepared before fork or static.
    let r = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            cr.mount_at.as_ptr(),
            c"tmpfs".as_ptr(),
            flags,
            cr.data.as_ptr().cast(),
        )
    };
    check(r as i64, report, step, 0);
    // SAFETY: a NUL-terminated path prepared before fork.
    let r = unsafe { libc::mkdir(cr.dir.as_ptr(), 0o700) };
    check(r as i64, report, step, 1);
    for (k, (path, secret)) in cr.files.iter().enumerate() {
        let index = k as u32 + 3;
        // SAFETY: a NUL-terminated path prepared before fork; a new file.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o400 as libc::c_uint,
            )
        };
        check(fd as i64, report, step, index);
        let bytes = secret.expose();
        let mut done = 0;
        while done < bytes.len() {
            let rest = &bytes[done..];
            // SAFETY: writes from the prepared buffer to the fd just opened.
            let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            check(n as i64, report, step, index);
            done += n as usize;
        }
        if let Some((uid, gid)) = cr.owner {
            // SAFETY: plain syscall on the fd just opened.
            let r = unsafe { libc::fchown(fd, uid, gid) };
            check(r as i64, report, step, index);
        }
        // SAFETY: closes our own fd.
        unsafe { libc::close(fd) };
    }
    if let Some((uid, gid)) = cr.owner {
        // SAFETY: a NUL-terminated path prepared before fork.
        let r = unsafe { libc::chown(cr.dir.as_ptr(), uid, gid) };
        check(r as i64, report, step, 1);
    }
    // SAFETY: a NUL-terminated path prepared before fork.
    let r = unsafe { libc::chmod(cr.dir.as_ptr(), 0o500) };
    check(r as i64, report, step, 1);
    // SAFETY: a NUL-terminated path prepared before fork; NULL source,
    // type and data are what a remount takes.
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            cr.mount_at.as_ptr(),
            std::ptr::null(),
            libc::MS_REMOUNT | libc::MS_RDONLY | flags,
            std::ptr::null(),
        )
    };
    check(r as i64, report, step, 2);
}

/// Open `/dev/null` read-write, close-on-exec.
pub fn dev_null() -> std::io::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    Ok(OwnedFd::from(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::path::Path;

    fn env() -> Vec<(String, String)> {
        vec![("PATH".into(), DEFAULT_PATH.into())]
    }

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn run(plan: &Plan) -> (i32, String) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let null = dev_null().unwrap();
        let pid = spawn(
            plan,
            &[
                Stdio::Fd(null.as_fd()),
                Stdio::Fd(w.as_fd()),
                Stdio::Inherit,
            ],
            None,
        )
        .unwrap()
        .pid;
        drop(w);
        let mut out = String::new();
        std::fs::File::from(r).read_to_string(&mut out).unwrap();
        let status = nix::sys::wait::waitpid(pid, None).unwrap();
        let code = match status {
            nix::sys::wait::WaitStatus::Exited(_, c) => c,
            other => panic!("unexpected {other:?}"),
        };
        (code, out)
    }

    #[test]
    fn runs_with_path_search_and_default_signals() {
        let plan = Plan::new(
            &argv(&["sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status; echo sid=$(cut -d' ' -f6 /proc/self/stat) pid=$$"]),
            &env(),
            None,
            Session::New,
        )
        .unwrap();
        let (code, out) = run(&plan);
        assert_eq!(code, 0);
        assert!(out.contains("SigIgn:\t0000000000000000"), "{out}");
        assert!(out.contains("SigBlk:\t0000000000000000"), "{out}");
        // setsid: the session id is the shell's own pid.
        let sid = out.split("sid=").nth(1).unwrap().split(' ').next().unwrap();
        let pid = out.split("pid=").nth(1).unwrap().trim();
        assert_eq!(sid, pid, "{out}");
    }

    #[test]
    fn listen_pid_is_the_childs_own_and_env_can_change() {
        let mut plan = Plan::new(
            &argv(&["sh", "-c", "echo \"$LISTEN_PID $$ $N\""]),
            &[env(), vec![("N".into(), "1".into())]].concat(),
            None,
            Session::New,
        )
        .unwrap()
        .with_listen_pid();
        for n in ["2", "3"] {
            plan.set_env("N", n).unwrap();
            let (code, out) = run(&plan);
            assert_eq!(code, 0);
            let words: Vec<&str> = out.split_whitespace().collect();
            assert_eq!(words.len(), 3, "{out}");
            assert_eq!(words[0], words[1], "LISTEN_PID is the shell's pid: {out}");
            assert_eq!(words[2], n);
        }
        // Forked children see the pid too, and the plan is intact after.
        assert_eq!(run(&plan).0, 0);
    }

    #[test]
    fn no_fd_leaks_into_child() {
        // An fd without close-on-exec in the parent still must not leak.
        let (r, w) = nix::unistd::pipe().unwrap();
        let plan = Plan::new(
            &argv(&["sh", "-c", "ls /proc/self/fd | wc -l"]),
            &env(),
            None,
            Session::New,
        )
        .unwrap();
        let (code, out) = run(&plan);
        drop((r, w));
        assert_eq!(code, 0);
        // 0, 1, 2 and the fd `ls` opens on /proc/self/fd.
        assert_eq!(out.trim(), "4", "{out}");
    }

    #[test]
    fn missing_program_names_exec_and_enoent() {
        let plan = Plan::new(&argv(&["no-such-program-xyz"]), &env(), None, Session::New).unwrap();
        let err = spawn(&plan, &[Stdio::Inherit; 3], None).unwrap_err();
        assert_eq!(err.step, Step::Exec);
        assert_eq!(err.errno, Errno::ENOENT);
        assert!(err.is_not_found());
        assert_eq!(
            err.to_string(),
            "execve(no-such-program-xyz): No such file or directory"
        );
    }

    #[test]
    fn not_executable_is_eacces() {
        let plan = Plan::new(&argv(&["/etc/passwd"]), &env(), None, Session::New).unwrap();
        let err = spawn(&plan, &[Stdio::Inherit; 3], None).unwrap_err();
        assert_eq!((err.step, err.errno), (Step::Exec, Errno::EACCES));
        assert!(!err.is_not_found());
    }

    #[test]
    fn bad_workdir_names_chdir() {
        let plan = Plan::new(&argv(&["true"]), &env(), Some("/no/such/dir"), Session::New).unwrap();
        let err = spawn(&plan, &[Stdio::Inherit; 3], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "chdir(/no/such/dir): No such file or directory"
        );
    }

    #[test]
    fn workdir_and_env_apply() {
        let plan = Plan::new(
            &argv(&["sh", "-c", "pwd; echo $FOO"]),
            &[
                ("PATH".into(), DEFAULT_PATH.into()),
                ("FOO".into(), "bar baz".into()),
            ],
            Some("/tmp"),
            Session::Group { foreground: false },
        )
        .unwrap();
        let (code, out) = run(&plan);
        assert_eq!(code, 0);
        assert_eq!(out, "/tmp\nbar baz\n");
    }

    #[test]
    fn nul_in_argument_is_refused() {
        let err = Plan::new(&argv(&["a\0b"]), &env(), None, Session::New).unwrap_err();
        assert!(err.to_string().contains("NUL"));
    }

    #[test]
    fn nul_in_environment_is_refused_naming_the_variable() {
        let env = [
            ("GOOD".to_string(), "x".to_string()),
            ("BAD".to_string(), "a\0b".to_string()),
        ];
        let err = Plan::new(&argv(&["true"]), &env, None, Session::New).unwrap_err();
        assert_eq!(err, NulError("BAD=a\0b".into()));
    }

    #[test]
    fn path_candidates_join_each_folder_and_the_program() {
        let env = [("PATH".to_string(), "/a/:/b::/c".to_string())];
        let plan = Plan::new(&argv(&["prog"]), &env, None, Session::New).unwrap();
        let got: Vec<&str> = plan
            .candidates
            .iter()
            .map(|c| c.to_str().unwrap())
            .collect();
        assert_eq!(got, ["/a/prog", "/b/prog", "./prog", "/c/prog"]);
        assert_eq!(plan._envp[0].to_str().unwrap(), "PATH=/a/:/b::/c");
    }

    fn isolated(script: &str, setup: Setup) -> (i32, String) {
        let plan = Plan::new(&argv(&["sh", "-c", script]), &env(), None, Session::New)
            .unwrap()
            .with_setup(setup);
        run(&plan)
    }

    #[test]
    fn pid_uts_net_ipc_namespaces_from_inside() {
        let setup = Setup {
            namespaces: libc::CLONE_NEWPID
                | libc::CLONE_NEWUTS
                | libc::CLONE_NEWNET
                | libc::CLONE_NEWIPC,
            hostname: Some(c"box".into()),
            loopback_up: true,
            ..Setup::default()
        };
        let (code, out) = isolated("echo pid=$$; hostname; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; ip -o link show lo", setup);
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with("pid=1\nbox\nlo\n"), "{out}");
        assert!(out.contains("<LOOPBACK,UP,LOWER_UP>"), "{out}");
    }

    #[test]
    fn identity_caps_nnp_rlimits_priorities_from_inside() {
        let setup = Setup {
            rlimits: vec![(libc::RLIMIT_NOFILE, 123, 456)],
            nice: Some(7),
            ioprio: Some((2 << 13) | 4),
            oom_score_adj: Some(c"321".into()),
            ids: Some(Ids {
                uid: 65534,
                gid: 65534,
                groups: vec![65534, 4],
            }),
            caps: Some(Caps {
                keep: 1 << 10,
                last_cap: cap_last(),
                ambient: true,
            }),
            no_new_privs: true,
            ..Setup::default()
        };
        let script = "id -u; id -g; id -G; ulimit -n; ulimit -Hn; nice; ionice -p $$; cat /proc/self/oom_score_adj; grep -E '^(Cap(Eff|Prm|Bnd|Amb|Inh)|NoNewPrivs)' /proc/self/status";
        let (code, out) = isolated(script, setup);
        assert_eq!(code, 0, "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            &lines[..8],
            [
                "65534",
                "65534",
                "65534 4",
                "123",
                "456",
                "7",
                "best-effort: prio 4",
                "321"
            ],
            "{out}"
        );
        for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert!(
                out.contains(&format!("{key}:\t0000000000000400")),
                "{key} in {out}"
            );
        }
        assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    }

    #[test]
    fn read_only_bind_mount_in_a_mount_namespace() {
        let dir = std::env::temp_dir().join(format!("sys-ro-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = cstring(dir.to_str().unwrap()).unwrap();
        let setup = Setup {
            namespaces: libc::CLONE_NEWNS,
            mounts: vec![
                Mount {
                    source: None,
                    target: c"/".into(),
                    fstype: None,
                    flags: libc::MS_REC | libc::MS_PRIVATE,
                    data: None,
                },
                Mount {
                    source: Some(target.clone()),
                    target: target.clone(),
                    fstype: None,
                    flags: libc::MS_BIND | libc::MS_REC,
                    data: None,
                },
                Mount {
                    source: None,
                    target: target.clone(),
                    fstype: None,
                    flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                    data: None,
                },
            ],
            ..Setup::default()
        };
        let (code, out) = isolated(&format!("touch {}/x 2>&1; echo done", dir.display()), setup);
        assert_eq!(code, 0);
        assert!(out.contains("Read-only file system"), "{out}");
        // The host's view is untouched.
        std::fs::write(dir.join("y"), "ok").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_mount_that_fails_names_its_target() {
        let plan = Plan::new(&argv(&["true"]), &env(), None, Session::New)
            .unwrap()
            .with_setup(Setup {
                namespaces: libc::CLONE_NEWNS,
                mounts: vec![Mount {
                    source: Some(c"tmpfs".into()),
                    target: c"/no/such/dir".into(),
                    fstype: Some(c"tmpfs".into()),
                    flags: 0,
                    data: None,
                }],
                ..Setup::default()
            });
        let err = spawn(&plan, &[Stdio::Inherit; 3], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "mount(/no/such/dir): No such file or directory"
        );
    }

    #[test]
    fn user_namespace_maps_written_by_the_parent() {
        let setup = Setup {
            namespaces: libc::CLONE_NEWUSER,
            uid_map: Some("0 100000 1000\n".into()),
            gid_map: Some("0 100000 1000\n".into()),
            ids: Some(Ids {
                uid: 0,
                gid: 0,
                groups: vec![],
            }),
            nice: Some(3),
            ..Setup::default()
        };
        let (code, out) = isolated("id -u; tr -s ' ' < /proc/self/uid_map; nice", setup);
        assert_eq!(code, 0, "{out}");
        assert_eq!(out, "0\n 0 100000 1000\n3\n");
    }

    #[test]
    fn seccomp_filter_returns_the_errno_and_shows_mode_2() {
        // A minimal filter: mkdir and mkdirat get EPERM, everything else runs.
        let ret = |k: u32| libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k,
        };
        let prog = vec![
            libc::sock_filter {
                code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
                jt: 0,
                jf: 0,
                k: 0,
            },
            libc::sock_filter {
                code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                jt: 2,
                jf: 0,
                k: libc::SYS_mkdir as u32,
            },
            libc::sock_filter {
                code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                jt: 1,
                jf: 0,
                k: libc::SYS_mkdirat as u32,
            },
            ret(libc::SECCOMP_RET_ALLOW),
            ret(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        ];
        let setup = Setup {
            no_new_privs: true,
            seccomp: vec![prog],
            ..Setup::default()
        };
        let (code, out) = isolated(
            "mkdir /tmp/sentinel-seccomp-probe 2>&1; grep Seccomp: /proc/self/status",
            setup,
        );
        assert_eq!(code, 0);
        assert!(out.contains("Operation not permitted"), "{out}");
        assert!(out.contains("Seccomp:\t2"), "{out}");
    }

    #[test]
    fn credentials_in_a_private_tmpfs_and_secret_env_for_one_start() {
        let base = std::env::temp_dir().join(format!("sys-cred-{}", std::process::id()));
        let mount_at = base.join("credentials");
        std::fs::create_dir_all(&mount_at).unwrap();
        let m = mount_at.to_str().unwrap().to_string();
        let d = format!("{m}/web");
        let mut plan = Plan::new(
            &argv(&[
                "sh",
                "-c",
                "exec 2>/dev/null; stat -c '%a %u %g' $D $D/db; cat $D/db; echo \"[$TOKEN]\"; \
                 touch $D/x 2>&1 | grep -o Read-only; grep -c \" $M tmpfs ro,\" /proc/self/mounts",
            ]),
            &[
                ("PATH".into(), DEFAULT_PATH.into()),
                ("D".into(), d.clone()),
                ("M".into(), m.clone()),
                ("TOKEN".into(), "plain".into()),
            ],
            None,
            Session::New,
        )
        .unwrap()
        .with_setup(Setup {
            namespaces: libc::CLONE_NEWNS,
            mounts: vec![Mount {
                source: None,
                target: c"/".into(),
                fstype: None,
                flags: libc::MS_REC | libc::MS_PRIVATE,
                data: None,
            }],
            ..Setup::default()
        });
        let creds = Credentials::new(
            &m,
            &d,
            vec![("db".into(), Secret::from_slice(b"pw\n"))],
            Some((65534, 65534)),
            false,
        )
        .unwrap();
        assert!(!format!("{creds:?}").contains("pw"));
        plan.arm_secrets(
            vec![("TOKEN".into(), Secret::from_slice(b"s3cret"))],
            Some(creds),
        )
        .unwrap();
        let (code, out) = run(&plan);
        assert_eq!(code, 0, "{out}");
        assert_eq!(
            out,
            "500 65534 65534\n400 65534 65534\npw\n[s3cret]\nRead-only\n1\n"
        );
        // Nothing of it outside the child's mount namespace.
        assert!(!Path::new(&d).exists());
        // Disarmed: the plan's own environment again.
        plan.disarm_secrets();
        let (_, out) = run(&plan);
        assert!(out.contains("[plain]"), "{out}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_nul_in_a_secret_env_value_is_named_without_the_value() {
        let mut plan = Plan::new(&argv(&["true"]), &env(), None, Session::New).unwrap();
        let e = plan
            .arm_secrets(vec![("K".into(), Secret::from_slice(b"a\0hunter2"))], None)
            .unwrap_err();
        assert!(e.contains("the value for K contains a NUL byte"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    fn cap_last() -> u32 {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    #[test]
    fn a_fourth_fd_arrives_as_fd_3() {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let plan = Plan::new(
            &argv(&["sh", "-c", "echo ready >&3; ls /proc/self/fd | wc -l"]),
            &env(),
            None,
            Session::New,
        )
        .unwrap();
        let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let child = spawn(
            &plan,
            &[
                Stdio::Inherit,
                Stdio::Fd(out_w.as_fd()),
                Stdio::Inherit,
                Stdio::Fd(w.as_fd()),
            ],
            None,
        )
        .unwrap();
        drop((w, out_w));
        let mut got = String::new();
        std::fs::File::from(r).read_to_string(&mut got).unwrap();
        let mut listing = String::new();
        std::fs::File::from(out_r)
            .read_to_string(&mut listing)
            .unwrap();
        nix::sys::wait::waitpid(child.pid, None).unwrap();
        assert_eq!(got, "ready\n");
        // 0..3 and the fd `ls` opens: nothing else leaked.
        assert_eq!(listing.trim(), "5");
    }
}
