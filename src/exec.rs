//! `sentinel exec -- CMD ARGS`: one command, the way tini runs it. Signals
//! are forwarded, orphans reaped, and the command's exit status becomes
//! sentinel's (128 + N when killed by signal N; 127 when the command is
//! missing, 126 when it cannot be executed).

use std::io::IsTerminal;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

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

pub fn run(argv: &[String]) -> i32 {
    if argv.is_empty() {
        eprintln!("sentinel exec: no command given; usage: sentinel exec -- CMD [ARGS...]");
        return 2;
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
    let env: Vec<(String, String)> = std::env::vars().collect();
    let session = sys::spawn::Session::Group {
        foreground: std::io::stdin().is_terminal(),
    };
    let plan = match sys::spawn::Plan::new(argv, &env, None, session) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sentinel exec: {e}");
            return 2;
        }
    };
    let child = match sys::spawn::spawn(&plan, [sys::spawn::Stdio::Inherit; 3], None) {
        Ok(child) => child.pid,
        Err(e) => {
            eprintln!("sentinel exec: {}: {e}", argv[0]);
            return if e.is_not_found() { 127 } else { 126 };
        }
    };
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
