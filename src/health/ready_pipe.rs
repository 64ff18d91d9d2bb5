//! s6-style readiness (`ready = "fd"`): the service writes a newline to fd
//! [`READY_FD`] when it is ready. sentinel holds the read end of a pipe,
//! registered in the loop; the child gets the write end as fd 3
//! (`SENTINEL_READY_FD=3`).

use std::io::{self, Read};
use std::os::fd::OwnedFd;

use mio::event::Source;
use mio::unix::pipe::Receiver;
use mio::{Interest, Registry, Token};
use nix::fcntl::OFlag;

/// The fd number the write end gets in the child.
pub const READY_FD: i32 = 3;

/// Bytes read without a newline before the service counts as never ready
/// (so a service that floods the fd cannot hold the loop).
pub const MAX_NOISE: usize = 64 * 1024;

/// The read end of a readiness pipe, a mio source (readable).
#[derive(Debug)]
pub struct ReadyPipe {
    rx: Receiver,
    noise: usize,
}

impl ReadyPipe {
    /// A pipe: the read end (non-blocking, for the loop) and the write end
    /// for the child (blocking, close-on-exec: the spawn `dup2`s it to fd
    /// [`READY_FD`], which clears the flag on that copy only). The parent
    /// must close its write end right after the spawn, or EOF never comes.
    pub fn new() -> io::Result<(ReadyPipe, OwnedFd)> {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let rx = Receiver::from(r);
        rx.set_nonblocking(true)?;
        Ok((ReadyPipe { rx, noise: 0 }, w))
    }

    /// Read what there is, until `WouldBlock`: `Some(true)` a newline came
    /// (ready), `Some(false)` EOF or an error before any newline, or more
    /// than [`MAX_NOISE`] bytes without one (the service will never say
    /// ready this way), None nothing decisive yet. Call on each readable
    /// event until it returns `Some`, then deregister and drop.
    pub fn on_readable(&mut self) -> Option<bool> {
        let mut buf = [0u8; 512];
        loop {
            match self.rx.read(&mut buf) {
                Ok(0) => return Some(false),
                Ok(n) if buf[..n].contains(&b'\n') => return Some(true),
                Ok(n) => {
                    self.noise += n;
                    if self.noise > MAX_NOISE {
                        return Some(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Some(false),
            }
        }
    }
}

impl Source for ReadyPipe {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.rx.register(r, t, i)
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.rx.reregister(r, t, i)
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        self.rx.deregister(r)
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    use mio::{Events, Poll};
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};

    use super::*;

    /// Wait for readable events (real poll, deadline) until `on_readable`
    /// decides; None if it has not within `within`.
    fn wait(pipe: &mut ReadyPipe, within: Duration) -> Option<bool> {
        let mut poll = Poll::new().unwrap();
        poll.registry()
            .register(pipe, Token(3), Interest::READABLE)
            .unwrap();
        let deadline = Instant::now() + within;
        let mut events = Events::with_capacity(4);
        let verdict = loop {
            let now = Instant::now();
            if now >= deadline {
                break None;
            }
            match poll.poll(&mut events, Some(deadline - now)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => r.unwrap(),
            }
            if !events.is_empty() {
                if let Some(v) = pipe.on_readable() {
                    break Some(v);
                }
            }
        };
        poll.registry().deregister(pipe).unwrap();
        verdict
    }

    const WITHIN: Duration = Duration::from_secs(10);

    #[test]
    fn flags_of_both_ends() {
        let (pipe, w) = ReadyPipe::new().unwrap();
        let fl = |fd| OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap());
        let fd = |fd| FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap());
        assert!(fl(pipe.rx.as_fd()).contains(OFlag::O_NONBLOCK));
        assert!(!fl(w.as_fd()).contains(OFlag::O_NONBLOCK));
        assert!(fd(w.as_fd()).contains(FdFlag::FD_CLOEXEC));
        assert!(fd(pipe.rx.as_fd()).contains(FdFlag::FD_CLOEXEC));
    }

    #[test]
    fn a_newline_is_ready() {
        let (mut pipe, w) = ReadyPipe::new().unwrap();
        let mut w = File::from(w);
        assert_eq!(pipe.on_readable(), None, "nothing yet");
        w.write_all(b"starting...").unwrap();
        // Something came, but no newline: still undecided.
        assert_eq!(wait(&mut pipe, Duration::from_millis(100)), None);
        w.write_all(b" done\n").unwrap();
        assert_eq!(wait(&mut pipe, WITHIN), Some(true));
    }

    #[test]
    fn eof_without_newline_is_never_ready() {
        let (mut pipe, w) = ReadyPipe::new().unwrap();
        let mut w = File::from(w);
        w.write_all(b"no newline").unwrap();
        drop(w);
        assert_eq!(wait(&mut pipe, WITHIN), Some(false));

        let (mut pipe, w) = ReadyPipe::new().unwrap();
        drop(w);
        assert_eq!(wait(&mut pipe, WITHIN), Some(false));
    }

    #[test]
    fn noise_without_newline_is_bounded() {
        let (mut pipe, w) = ReadyPipe::new().unwrap();
        let mut w = File::from(w);
        let chunk = vec![b'x'; 16 * 1024];
        let mut verdict = None;
        for _ in 0..(MAX_NOISE / chunk.len() + 1) {
            w.write_all(&chunk).unwrap();
            verdict = pipe.on_readable();
        }
        assert_eq!(verdict, Some(false));
    }
}
