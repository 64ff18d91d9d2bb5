//! The sd_notify socket: services with `ready = "notify"` (or a `watchdog`)
//! get `NOTIFY_SOCKET=<path>` and send datagrams of `KEY=VALUE` lines to it:
//! `READY=1`, `STATUS=...`, `RELOADING=1`, `STOPPING=1`, `WATCHDOG=1`,
//! `MAINPID=N`, `ERRNO=N`.
//!
//! One socket serves the whole supervisor (sentinel binds it at
//! `<runtime dir>/notify.sock`, an absolute path, which is what every
//! sd_notify client accepts). Who sent a datagram is told by the kernel:
//! with `SO_PASSCRED` on, every datagram carries the sender's pid, uid and
//! gid (`SCM_CREDENTIALS`), which an unprivileged sender cannot forge. The
//! loop maps the pid to a service with [`sender_allowed`].
//!
//! Why the socket is mode 0666: a service that runs as another user
//! (`user = "www-data"`) needs write permission on the socket file to send
//! to it. Access control is not the file mode but the credentials checked
//! on each datagram: a datagram from a process that belongs to no service
//! is dropped. (The directory holding the socket must still be searchable by
//! the service's user.)

use std::io::{self, IoSliceMut};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mio::event::Source;
use mio::net::UnixDatagram;
use mio::{Interest, Registry, Token};
use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, UnixCredentials,
};

/// Longest datagram read (systemd's limit too); longer ones are dropped.
pub const MAX_DATAGRAM: usize = 4096;

/// The sender of a datagram, as the kernel attests it (pids in sentinel's
/// pid namespace, even for a service in its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// One understood line of a notification. Unknown keys and malformed
/// values are ignored, as systemd does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `READY=1`: startup finished.
    Ready,
    /// `RELOADING=1`: reloading its configuration (ready again on `READY=1`).
    Reloading,
    /// `STOPPING=1`: shutting down.
    Stopping,
    /// `WATCHDOG=1`: alive (resets the watchdog deadline).
    Watchdog,
    /// `STATUS=...`: free text for `status`.
    Status(String),
    /// `MAINPID=N`: the service's main process is now N (a positive pid).
    MainPid(i32),
    /// `ERRNO=N`: the service failed with this errno (N >= 0).
    Errno(i32),
}

/// Parse one datagram: newline-separated `KEY=VALUE` lines.
pub fn parse(datagram: &[u8]) -> Vec<Message> {
    let text = String::from_utf8_lossy(datagram);
    text.split('\n')
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            match (key, value) {
                ("READY", "1") => Some(Message::Ready),
                ("RELOADING", "1") => Some(Message::Reloading),
                ("STOPPING", "1") => Some(Message::Stopping),
                ("WATCHDOG", "1") => Some(Message::Watchdog),
                ("STATUS", s) => Some(Message::Status(s.to_string())),
                ("MAINPID", n) => n.parse().ok().filter(|&p| p > 0).map(Message::MainPid),
                ("ERRNO", n) => n.parse().ok().filter(|&e| e >= 0).map(Message::Errno),
                _ => None,
            }
        })
        .collect()
}

/// The session id of `pid` (field 6 of `/proc/PID/stat`), None if gone.
pub fn session_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything.
    let rest = &stat[stat.rfind(')')? + 1..];
    // state, ppid, pgrp, session
    rest.split_whitespace().nth(3)?.parse().ok()
}

/// Whether a datagram from `pid` speaks for the service whose session
/// leader is `leader` (the pid sentinel spawned: services run with
/// `setsid`, so every process of theirs has session id `leader`, unless it
/// left with its own `setsid`) and whose main pid is now `main_pid` (the
/// leader, or what an accepted `MAINPID=` said). The loop applies the same
/// test to a `MAINPID=` value before adopting it.
pub fn sender_allowed(pid: i32, leader: i32, main_pid: i32) -> bool {
    pid > 0 && (pid == main_pid || pid == leader || session_of(pid) == Some(leader))
}

/// The sd_notify datagram socket, a mio source (readable).
#[derive(Debug)]
pub struct NotifySocket {
    sock: UnixDatagram,
    path: PathBuf,
    buf: Vec<u8>,
    cmsg: Vec<u8>,
    rejected: u64,
    last_rejection: Option<String>,
}

impl NotifySocket {
    /// Bind at `path` (replacing a stale socket, refusing any other kind of
    /// file), with `SO_PASSCRED` on and mode 0666 (see the module doc).
    pub fn bind(path: &Path) -> io::Result<NotifySocket> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(named(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a socket",
                )));
            }
            std::fs::remove_file(path).map_err(named)?;
        }
        let sock = UnixDatagram::bind(path).map_err(named)?;
        setsockopt(&sock, sockopt::PassCred, &true).map_err(|e| named(e.into()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(named)?;
        Ok(NotifySocket {
            sock,
            path: path.to_path_buf(),
            // One more than the limit, so that a longer datagram shows.
            buf: vec![0; MAX_DATAGRAM + 1],
            // Room for exactly one credentials message: file descriptors
            // someone sends along do not fit, so the kernel installs none
            // (and the datagram is refused for its truncated control data).
            cmsg: nix::cmsg_space!(UnixCredentials),
            rejected: 0,
            last_rejection: None,
        })
    }

    #[cfg(test)]
    /// Where the socket is: the value of `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next datagram's sender and messages; `Ok(None)` once none is left
    /// (the loop calls this until then on each readable event). Datagrams
    /// without credentials, longer than [`MAX_DATAGRAM`], or carrying file
    /// descriptors are dropped and counted ([`NotifySocket::rejected`]). A
    /// datagram with no understood line yields an empty list.
    pub fn recv(&mut self) -> io::Result<Option<(Credentials, Vec<Message>)>> {
        loop {
            let fd = self.sock.as_raw_fd();
            let mut iov = [IoSliceMut::new(&mut self.buf)];
            let got = recvmsg::<()>(
                fd,
                &mut iov,
                Some(&mut self.cmsg),
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
            );
            let (bytes, truncated, creds) = match got {
                Ok(msg) => {
                    let creds = msg.cmsgs().map(|mut c| {
                        c.find_map(|m| match m {
                            ControlMessageOwned::ScmCredentials(u) => Some(Credentials {
                                pid: u.pid(),
                                uid: u.uid(),
                                gid: u.gid(),
                            }),
                            _ => None,
                        })
                    });
                    let truncated =
                        msg.flags.contains(MsgFlags::MSG_TRUNC) || msg.bytes > MAX_DATAGRAM;
                    (msg.bytes, truncated, creds)
                }
                Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let refusal = match creds {
                _ if truncated => format!("datagram longer than {MAX_DATAGRAM} bytes"),
                Err(_) => "control data truncated (file descriptors are not accepted)".into(),
                Ok(None) => "no sender credentials".into(),
                Ok(Some(c)) => return Ok(Some((c, parse(&self.buf[..bytes])))),
            };
            self.rejected += 1;
            self.last_rejection = Some(refusal);
        }
    }

    #[cfg(test)]
    /// Datagrams dropped so far.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    #[cfg(test)]
    /// Why the last dropped datagram was dropped.
    pub fn last_rejection(&self) -> Option<&str> {
        self.last_rejection.as_deref()
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Source for NotifySocket {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.sock.register(r, t, i)
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.sock.reregister(r, t, i)
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        self.sock.deregister(r)
    }
}

#[cfg(test)]
mod tests;
