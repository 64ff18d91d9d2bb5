use std::io::IoSlice;
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram as StdDatagram;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use nix::sys::socket::{sendmsg, ControlMessage, UnixAddr};

use super::*;

/// A fresh directory under the temp dir, removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        let p = std::env::temp_dir().join(format!("sentinel-notify-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TestDir(p)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn me() -> Credentials {
    Credentials {
        pid: std::process::id() as i32,
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
    }
}

/// Wait (in a real poll, up to a deadline) until the socket is readable,
/// then read everything there is.
fn receive(sock: &mut NotifySocket, want: usize) -> Vec<(Credentials, Vec<Message>)> {
    let mut poll = Poll::new().unwrap();
    poll.registry()
        .register(sock, Token(7), Interest::READABLE)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut events = Events::with_capacity(8);
    let mut got = Vec::new();
    while got.len() < want {
        let now = Instant::now();
        assert!(now < deadline, "timed out with {got:?}");
        match poll.poll(&mut events, Some(deadline - now)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r.unwrap(),
        }
        for ev in events.iter() {
            assert_eq!(ev.token(), Token(7));
            while let Some(d) = sock.recv().unwrap() {
                got.push(d);
            }
        }
    }
    poll.registry().deregister(sock).unwrap();
    got
}

#[test]
fn parse_known_keys_and_ignore_the_rest() {
    assert_eq!(
        parse(b"READY=1\nSTATUS=Serving 3 clients\nMAINPID=4242\nWATCHDOG=1\nFOO=bar\n"),
        vec![
            Message::Ready,
            Message::Status("Serving 3 clients".into()),
            Message::MainPid(4242),
            Message::Watchdog,
        ]
    );
    assert_eq!(
        parse(b"RELOADING=1\nSTOPPING=1\nERRNO=2\nSTATUS=a=b"),
        vec![
            Message::Reloading,
            Message::Stopping,
            Message::Errno(2),
            Message::Status("a=b".into())
        ]
    );
    // Garbage: no panic, nothing understood.
    for junk in [
        &b""[..],
        b"\n\n",
        b"READY",
        b"=1",
        b"READY=0",
        b"READY=yes",
        b"MAINPID=abc",
        b"MAINPID=0",
        b"MAINPID=-1",
        b"MAINPID=99999999999",
        b"ERRNO=-5",
        b"WATCHDOG=trigger",
        b"\xff\xfe\x00READY=1\x00",
        b"ready=1",
    ] {
        assert_eq!(parse(junk), vec![], "{junk:?}");
    }
    // Invalid UTF-8 in a status is kept, lossily.
    assert_eq!(
        parse(b"STATUS=caf\xe9"),
        vec![Message::Status("caf\u{fffd}".into())]
    );
}

#[test]
fn datagrams_carry_the_senders_credentials() {
    let dir = TestDir::new("creds");
    let path = dir.0.join("notify.sock");
    let mut sock = NotifySocket::bind(&path).unwrap();
    assert_eq!(sock.path(), path);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o666);
    // Nothing yet: None, not an error.
    assert_eq!(sock.recv().unwrap(), None);

    let client = StdDatagram::unbound().unwrap();
    client
        .send_to(b"READY=1\nSTATUS=up\nUNKNOWN=x", &path)
        .unwrap();
    client.send_to(b"\x00\x01garbage", &path).unwrap();
    client.send_to(b"WATCHDOG=1", &path).unwrap();
    let got = receive(&mut sock, 3);
    assert_eq!(
        got,
        vec![
            (me(), vec![Message::Ready, Message::Status("up".into())]),
            (me(), vec![]),
            (me(), vec![Message::Watchdog]),
        ]
    );
    assert_eq!(sock.rejected(), 0);
}

#[test]
fn oversized_and_fd_carrying_datagrams_are_dropped() {
    let dir = TestDir::new("reject");
    let path = dir.0.join("notify.sock");
    let mut sock = NotifySocket::bind(&path).unwrap();
    let client = StdDatagram::unbound().unwrap();

    let mut big = b"STATUS=".to_vec();
    big.resize(MAX_DATAGRAM + 100, b'x');
    client.send_to(&big, &path).unwrap();

    let payload = b"READY=1";
    let fds = [client.as_fd().as_raw_fd()];
    sendmsg(
        client.as_raw_fd(),
        &[IoSlice::new(payload)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        Some(&UnixAddr::new(&path).unwrap()),
    )
    .unwrap();

    // A datagram of exactly the limit is fine.
    let mut max = b"STATUS=".to_vec();
    max.resize(MAX_DATAGRAM, b'y');
    client.send_to(&max, &path).unwrap();

    let got = receive(&mut sock, 1);
    assert_eq!(got.len(), 1);
    assert!(matches!(&got[0].1[..], [Message::Status(s)] if s.len() == MAX_DATAGRAM - 7));
    assert_eq!(sock.rejected(), 2);
    assert_eq!(
        sock.last_rejection(),
        Some("control data truncated (file descriptors are not accepted)")
    );
}

#[test]
fn rejection_reasons() {
    let dir = TestDir::new("reasons");
    let path = dir.0.join("notify.sock");
    let mut sock = NotifySocket::bind(&path).unwrap();
    let client = StdDatagram::unbound().unwrap();
    client
        .send_to(&vec![b'z'; MAX_DATAGRAM + 1], &path)
        .unwrap();
    client.send_to(b"STOPPING=1", &path).unwrap();
    let got = receive(&mut sock, 1);
    assert_eq!(got, vec![(me(), vec![Message::Stopping])]);
    assert_eq!(
        sock.last_rejection(),
        Some("datagram longer than 4096 bytes")
    );
}

#[test]
fn bind_replaces_a_stale_socket_and_refuses_other_files() {
    let dir = TestDir::new("stale");
    let path = dir.0.join("notify.sock");
    drop(StdDatagram::bind(&path).unwrap()); // leaves the file behind
    let sock = NotifySocket::bind(&path).unwrap();
    drop(sock);
    assert!(!path.exists(), "removed on drop");

    let file = dir.0.join("regular");
    std::fs::write(&file, "x").unwrap();
    let e = NotifySocket::bind(&file).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    assert!(e.to_string().contains("not a socket"), "{e}");
    assert!(file.exists());
}

#[test]
fn senders_are_matched_by_pid_or_session() {
    let pid = std::process::id() as i32;
    let sid = nix::unistd::getsid(None).unwrap().as_raw();
    assert_eq!(session_of(pid), Some(sid));
    assert_eq!(session_of(i32::MAX), None);
    // The main pid itself, whatever its session.
    assert!(sender_allowed(pid, i32::MAX, pid));
    // Any process of the leader's session.
    assert!(sender_allowed(pid, sid, i32::MAX));
    // A stranger.
    assert!(!sender_allowed(pid, i32::MAX - 1, i32::MAX));
    assert!(!sender_allowed(0, 0, 0));
}
