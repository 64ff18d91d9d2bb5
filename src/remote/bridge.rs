//! `sentinel bridge`: stdin and stdout joined to the control socket, what
//! `-H` runs on the remote host over ssh. One thread: poll(2) on stdin,
//! stdout and the socket, a bounded buffer each way.
//!
//! stdin's EOF half-closes the socket (the supervisor still answers what it
//! was asked, then closes); the socket's EOF ends the bridge once stdout has
//! everything; a stdout nobody reads any more ends it at once.

use std::io::{self, Read};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{send, MsgFlags};

/// Bytes buffered each way before the bridge stops reading that side.
const CAP: usize = 64 * 1024;

/// Connect to `socket` and copy both ways; the exit code.
pub fn run(socket: &Path) -> i32 {
    let stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sentinel: {}", connect_error(socket, &e));
            return 1;
        }
    };
    match copy(&stream) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sentinel: bridge to {}: {e}", socket.display());
            1
        }
    }
}

fn connect_error(socket: &Path, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => format!(
            "no supervisor at {} on this host (is `sentinel run` running with that socket? \
             another path: `socket` in the host inventory, or -s)",
            socket.display()
        ),
        io::ErrorKind::PermissionDenied => format!(
            "may not connect to {} on this host: permission denied (the control socket is for \
             the supervisor's user; log in as that user, or add yours to socket_allow_uids)",
            socket.display()
        ),
        _ => format!("cannot connect to {} on this host: {e}", socket.display()),
    }
}

fn copy(stream: &UnixStream) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut up: Vec<u8> = Vec::new(); // stdin → socket
    let mut down: Vec<u8> = Vec::new(); // socket → stdout
    let mut stdin_open = true;
    let mut socket_open = true;
    let mut shut = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !socket_open && down.is_empty() {
            return Ok(());
        }
        if !stdin_open && up.is_empty() && !shut {
            // Ignore ENOTCONN: the supervisor may have closed first.
            let _ = stream.shutdown(Shutdown::Write);
            shut = true;
        }
        // Only fds with something to wait for: a closed pipe reports POLLHUP
        // whatever is asked, and would spin the loop.
        let mut fds = Vec::with_capacity(3);
        let (mut i_in, mut i_sock) = (None, None);
        if stdin_open && up.len() < CAP {
            i_in = Some(fds.len());
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        // Always watched: POLLERR says the reader went away.
        let i_out = fds.len();
        let out_ev = if down.is_empty() {
            PollFlags::empty()
        } else {
            PollFlags::POLLOUT
        };
        fds.push(PollFd::new(stdout.as_fd(), out_ev));
        let mut sock_ev = PollFlags::empty();
        if socket_open && down.len() < CAP {
            sock_ev |= PollFlags::POLLIN;
        }
        if !up.is_empty() {
            sock_ev |= PollFlags::POLLOUT;
        }
        if !sock_ev.is_empty() {
            i_sock = Some(fds.len());
            fds.push(PollFd::new(stream.as_fd(), sock_ev));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let rev = |i: usize| fds[i].revents().unwrap_or(PollFlags::empty());
        let (r_in, r_out, r_sock) = (
            i_in.map(rev).unwrap_or(PollFlags::empty()),
            rev(i_out),
            i_sock.map(rev).unwrap_or(PollFlags::empty()),
        );
        drop(fds);

        if r_out.intersects(PollFlags::POLLERR | PollFlags::POLLHUP) {
            // Nobody reads what we would write: the client is gone.
            return Ok(());
        }
        if r_out.contains(PollFlags::POLLOUT) {
            match nix::unistd::write(&stdout, &down) {
                Ok(n) => {
                    down.drain(..n);
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(Errno::EPIPE) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        if !r_in.is_empty() {
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(0) => stdin_open = false,
                Ok(n) => up.extend_from_slice(&buf[..n]),
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(_) => stdin_open = false,
            }
        }
        if r_sock.contains(PollFlags::POLLOUT) || (!up.is_empty() && !r_sock.is_empty()) {
            match send(stream.as_raw_fd(), &up, MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => {
                    up.drain(..n);
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(_) => {
                    // The supervisor closed: what it said is still to be read.
                    up.clear();
                    stdin_open = false;
                    shut = true;
                }
            }
        }
        if socket_open && !r_sock.is_empty() {
            // Drain what is there (bounded), as the socket is non-blocking.
            while down.len() < CAP {
                match (&*stream).read(&mut buf) {
                    Ok(0) => {
                        socket_open = false;
                        break;
                    }
                    Ok(n) => down.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                        socket_open = false;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_socket_names_the_path_and_the_host() {
        let e = io::Error::from(io::ErrorKind::NotFound);
        let m = connect_error(Path::new("/run/sentinel.sock"), &e);
        assert!(
            m.starts_with("no supervisor at /run/sentinel.sock on this host"),
            "{m}"
        );
        let e = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(connect_error(Path::new("/s"), &e).contains("socket_allow_uids"));
    }
}
