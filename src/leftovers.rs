//! No leftovers without cgroups. A service runs in its own session (setsid
//! before exec), so every process it forks keeps its session id, even one
//! that moved to another process group, and even one orphaned and adopted
//! by sentinel (the subreaper). When a service's main process is gone,
//! whatever is left of its session is killed. (A process that made its own
//! session with setsid escapes; only a cgroup holds those.)

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The session id in a `/proc/PID/stat` line (field 6), read after the
/// command name, which may itself contain spaces and parentheses.
pub fn session_of(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // state ppid pgrp session
    rest.split_whitespace().nth(3)?.parse().ok()
}

/// SIGKILL every process of session `sid` but sentinel itself; returns how
/// many were signalled. A few rounds, for processes forked meanwhile.
pub fn kill_session(sid: i32) -> usize {
    if sid <= 1 {
        return 0;
    }
    let me = std::process::id() as i32;
    let mut killed = 0;
    for _ in 0..3 {
        let mut found = 0;
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return killed;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            if pid == me {
                continue;
            }
            // One open, one read, one close: this runs for every process.
            let mut buf = [0u8; 512];
            let n = match std::fs::File::open(format!("/proc/{pid}/stat")) {
                Ok(mut f) => std::io::Read::read(&mut f, &mut buf).unwrap_or(0),
                Err(_) => continue,
            };
            let stat = String::from_utf8_lossy(&buf[..n]);
            if session_of(&stat) == Some(sid) && kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                found += 1;
            }
        }
        killed += found;
        if found == 0 {
            break;
        }
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_is_read_past_odd_command_names() {
        let stat = "1234 (a (weird) name) S 1 1200 1100 0 -1 4194560 ...";
        assert_eq!(session_of(stat), Some(1100));
        assert_eq!(session_of("garbage"), None);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        let sid = nix::unistd::getsid(None).unwrap().as_raw();
        assert_eq!(session_of(&own), Some(sid));
    }
}
