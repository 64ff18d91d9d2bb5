//! Start a child: everything prepared in the parent, only syscalls after fork.
//!
//! [`Plan`] holds what the child needs as C strings and pointer arrays, built
//! in the parent. [`spawn`] forks; the child runs a fixed sequence of raw
//! syscalls (no allocation, no locks, no panics) and either `execve`s or
//! writes `(step, errno)` to a close-on-exec pipe and `_exit`s. The parent
//! reads the pipe: EOF means `execve` succeeded.

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::raw::c_char;

use nix::errno::Errno;
use nix::unistd::Pid;

/// The default search path when the child's environment has no `PATH`.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
}

impl Step {
    fn from_u32(v: u32) -> Option<Step> {
        Some(match v {
            1 => Step::Signals,
            2 => Step::Session,
            3 => Step::Terminal,
            4 => Step::Stdio,
            5 => Step::Chdir,
            6 => Step::Exec,
            _ => return None,
        })
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
        let step = match self.step {
            Step::Signals => "reset signals",
            Step::Session => "setsid",
            Step::Terminal => "tcsetpgrp",
            Step::Stdio => "dup2 stdio",
            Step::Chdir => "chdir",
            Step::Exec => "execve",
        };
        if self.detail.is_empty() {
            write!(f, "{step}: {}", self.errno.desc())
        } else {
            write!(f, "{step}({}): {}", self.detail, self.errno.desc())
        }
    }
}

impl std::error::Error for SpawnError {}

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
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("candidates", &self.candidates)
            .field("argv", &self.argv)
            .field("envp_len", &self._envp.len())
            .field("workdir", &self.workdir)
            .field("session", &self.session)
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

fn cstring(s: &str) -> Result<CString, NulError> {
    CString::new(s).map_err(|_| NulError(s.to_string()))
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
            path.split(':')
                .map(|dir| {
                    let dir = if dir.is_empty() { "." } else { dir };
                    cstring(&format!("{}/{program}", dir.trim_end_matches('/')))
                })
                .collect::<Result<_, _>>()?
        };
        let argv: Vec<CString> = argv.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?;
        let envp: Vec<CString> = env
            .iter()
            .map(|(k, v)| cstring(&format!("{k}={v}")))
            .collect::<Result<_, _>>()?;
        let argv_ptrs = null_terminated(&argv);
        let envp_ptrs = null_terminated(&envp);
        Ok(Plan {
            candidates,
            argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            workdir: workdir.map(cstring).transpose()?,
            session,
        })
    }

    /// The program as given in argv[0].
    pub fn program(&self) -> &CStr {
        self.argv.first().map(CString::as_c_str).unwrap_or(c"")
    }
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Fork and exec `plan`, with `stdio` as the child's fds 0, 1, 2.
///
/// Returns the child's pid once `execve` has succeeded. On failure the child
/// has already been reaped and the error names the step and errno.
/// The caller must not have other threads (sentinel has one).
pub fn spawn(plan: &Plan, stdio: [Stdio<'_>; 3]) -> Result<Pid, SpawnError> {
    let fail = |step, errno, detail: &str| SpawnError {
        step,
        errno,
        detail: detail.to_string(),
    };
    let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| fail(Step::Signals, e, "pipe2"))?;
    let stdio_fds = stdio.map(|s| match s {
        Stdio::Inherit => -1,
        Stdio::Fd(fd) => fd.as_raw_fd(),
    });

    // SAFETY: fork in a single-threaded process; the child only runs
    // `child_main`, which makes raw syscalls on memory prepared before the
    // fork and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(fail(Step::Signals, Errno::last(), "fork"));
    }
    if pid == 0 {
        child_main(plan, stdio_fds, report_w.as_raw_fd());
    }
    drop(report_w);
    let pid = Pid::from_raw(pid);

    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(&report_r, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(fail(Step::Exec, e, "read report pipe")),
        }
    }
    if got == 0 {
        return Ok(pid);
    }
    // The child failed before execve and is exiting: reap it now so that no
    // zombie is left and the loop never sees its exit.
    while let Err(Errno::EINTR) = nix::sys::wait::waitpid(pid, None) {}
    let step = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let step = Step::from_u32(step).unwrap_or(Step::Exec);
    let detail = match step {
        Step::Exec => plan.program().to_string_lossy().into_owned(),
        Step::Chdir => plan
            .workdir
            .as_deref()
            .map(|w| w.to_string_lossy().into_owned())
            .unwrap_or_default(),
        _ => String::new(),
    };
    Err(SpawnError {
        step,
        errno: Errno::from_raw(errno),
        detail,
    })
}

/// Report `(step, errno)` to the parent and exit. Async-signal-safe.
fn child_fail(report: RawFd, step: Step, errno: i32) -> ! {
    let step = (step as u32).to_ne_bytes();
    let errno = errno.to_ne_bytes();
    let buf = [
        step[0], step[1], step[2], step[3], errno[0], errno[1], errno[2], errno[3],
    ];
    // SAFETY: `buf` is a valid 8-byte buffer; a short or failed write only
    // makes the parent report a less precise error.
    unsafe { libc::write(report, buf.as_ptr().cast(), buf.len()) };
    // SAFETY: `_exit` ends the child without running the parent's atexit
    // handlers or destructors.
    unsafe { libc::_exit(127) }
}

fn errno() -> i32 {
    Errno::last_raw()
}

/// The child side: raw syscalls only, in the fixed order of DESIGN.md.
fn child_main(plan: &Plan, stdio: [RawFd; 3], report: RawFd) -> ! {
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

    // 3. stdio. First move every source above 2 so that a source that is
    //    itself 0, 1 or 2 is not overwritten by an earlier dup2.
    let mut moved = [-1; 3];
    for (i, &fd) in stdio.iter().enumerate() {
        if fd >= 0 {
            // SAFETY: fcntl(F_DUPFD_CLOEXEC) on an fd the parent keeps open.
            let m = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
            if m < 0 {
                child_fail(report, Step::Stdio, errno());
            }
            moved[i] = m;
        }
    }
    for (target, &fd) in moved.iter().enumerate() {
        // SAFETY: dup2 onto 0..2 from an fd we own; clears close-on-exec.
        if fd >= 0 && unsafe { libc::dup2(fd, target as RawFd) } < 0 {
            child_fail(report, Step::Stdio, errno());
        }
    }
    // Nothing else crosses execve: mark every fd above 2 close-on-exec
    // (guards against fds leaked to sentinel by whoever started it).
    // SAFETY: plain syscall without pointers; ENOSYS on old kernels is fine
    // because sentinel opens all its own fds with O_CLOEXEC.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };

    // 4. Working directory.
    if let Some(dir) = &plan.workdir {
        // SAFETY: `dir` is a NUL-terminated string prepared before fork.
        if unsafe { libc::chdir(dir.as_ptr()) } < 0 {
            child_fail(report, Step::Chdir, errno());
        }
    }

    // 5. execve each candidate, as execvp does: remember EACCES, go on past
    //    ENOENT/ENOTDIR, stop at any other error.
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
            [
                Stdio::Fd(null.as_fd()),
                Stdio::Fd(w.as_fd()),
                Stdio::Inherit,
            ],
        )
        .unwrap();
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
        let err = spawn(&plan, [Stdio::Inherit; 3]).unwrap_err();
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
        let err = spawn(&plan, [Stdio::Inherit; 3]).unwrap_err();
        assert_eq!((err.step, err.errno), (Step::Exec, Errno::EACCES));
        assert!(!err.is_not_found());
    }

    #[test]
    fn bad_workdir_names_chdir() {
        let plan = Plan::new(&argv(&["true"]), &env(), Some("/no/such/dir"), Session::New).unwrap();
        let err = spawn(&plan, [Stdio::Inherit; 3]).unwrap_err();
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
}
