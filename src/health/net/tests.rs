//! Loopback tests: the probe and a small non-blocking responder share one
//! real `mio::Poll`, driven by the test up to a deadline.

use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Poll as MioPoll};

use super::*;

const PROBE: Token = Token(0);
const LISTENER: Token = Token(1);
/// Generous: only a broken probe gets near it.
const WITHIN: Duration = Duration::from_secs(10);

/// A loopback HTTP responder: reads a request head, sends `reply`, then
/// closes (or not), all non-blocking in the test's poll.
struct Responder {
    listener: TcpListener,
    /// None: accept and never answer.
    reply: Option<Vec<u8>>,
    close: bool,
    conns: Vec<Conn>,
    requests: Vec<Vec<u8>>,
}

struct Conn {
    stream: Option<TcpStream>,
    input: Vec<u8>,
    output: Vec<u8>,
    answered: bool,
}

impl Responder {
    fn new(poll: &MioPoll, reply: Option<&[u8]>, close: bool) -> Responder {
        let mut listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .unwrap();
        Responder {
            listener,
            reply: reply.map(<[u8]>::to_vec),
            close,
            conns: Vec::new(),
            requests: Vec::new(),
        }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    fn on_event(&mut self, registry: &Registry, token: Token) {
        if token == LISTENER {
            while let Ok((mut stream, _)) = self.listener.accept() {
                let t = Token(2 + self.conns.len());
                registry.register(&mut stream, t, INTEREST).unwrap();
                self.conns.push(Conn {
                    stream: Some(stream),
                    input: Vec::new(),
                    output: Vec::new(),
                    answered: false,
                });
            }
            return;
        }
        let c = &mut self.conns[token.0 - 2];
        let Some(stream) = c.stream.as_mut() else {
            return;
        };
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            c.input.extend_from_slice(&buf[..n]);
        }
        if !c.answered && contains(&c.input, b"\r\n\r\n") {
            c.answered = true;
            self.requests.push(c.input.clone());
            if let Some(r) = &self.reply {
                c.output = r.clone();
            }
        }
        while !c.output.is_empty() {
            match stream.write(&c.output) {
                Ok(n) => {
                    c.output.drain(..n);
                }
                Err(_) => break,
            }
        }
        if c.answered && c.output.is_empty() && self.reply.is_some() && self.close {
            let mut s = c.stream.take().unwrap();
            registry.deregister(&mut s).unwrap();
        }
    }
}

/// Run a started probe (or its start error) to its verdict; None if still
/// pending after `within`.
fn drive(
    poll: &mut MioPoll,
    started: io::Result<NetProbe>,
    mut server: Option<&mut Responder>,
    within: Duration,
) -> Option<Result<(), String>> {
    let mut probe = match started {
        Ok(p) => p,
        Err(e) => return Some(Err(reason(&e))),
    };
    poll.registry()
        .register(&mut probe, PROBE, INTEREST)
        .unwrap();
    let deadline = Instant::now() + within;
    let mut events = Events::with_capacity(64);
    loop {
        let now = Instant::now();
        if now >= deadline {
            poll.registry().deregister(&mut probe).unwrap();
            return None;
        }
        match poll.poll(&mut events, Some(deadline - now)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r.unwrap(),
        }
        for ev in events.iter() {
            if ev.token() == PROBE {
                if let Poll::Ready(r) = probe.on_event() {
                    poll.registry().deregister(&mut probe).unwrap();
                    return Some(r);
                }
            } else if let Some(s) = server.as_deref_mut() {
                s.on_event(poll.registry(), ev.token());
            }
        }
    }
}

fn http(port: u16, status: (u16, u16), body: Option<&str>) -> io::Result<NetProbe> {
    HttpProbe::start("127.0.0.1", port, "/healthz", status, body).map(NetProbe::Http)
}

/// Run an HTTP probe against a responder sending `reply`.
fn http_against(reply: &[u8], close: bool, body: Option<&str>) -> Option<Result<(), String>> {
    let mut poll = MioPoll::new().unwrap();
    let mut server = Responder::new(&poll, Some(reply), close);
    let port = server.port();
    drive(
        &mut poll,
        http(port, (200, 399), body),
        Some(&mut server),
        WITHIN,
    )
}

/// A loopback port nothing listens on (a listener's, once closed).
fn refused_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn resolve_takes_literals_and_localhost_only() {
    assert_eq!(
        resolve("127.0.0.1", 80).unwrap(),
        "127.0.0.1:80".parse().unwrap()
    );
    assert_eq!(resolve("::1", 80).unwrap(), "[::1]:80".parse().unwrap());
    assert_eq!(resolve("[::1]", 80).unwrap(), "[::1]:80".parse().unwrap());
    assert_eq!(
        resolve("localhost", 8080).unwrap(),
        "127.0.0.1:8080".parse().unwrap()
    );
    let e = resolve("db.internal", 5432).unwrap_err();
    assert!(e.contains("\"db.internal\" is not an IP address"), "{e}");
    let e = TcpProbe::start("db", 1).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn reason_is_short_and_lowercase() {
    let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
    assert_eq!(reason(&e), "connection refused");
}

#[test]
fn tcp_connects() {
    let mut poll = MioPoll::new().unwrap();
    // Never accepted: the kernel completes the handshake from the backlog.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let p = TcpProbe::start("127.0.0.1", port).map(NetProbe::Tcp);
    assert_eq!(drive(&mut poll, p, None, WITHIN), Some(Ok(())));
    let p = NetProbe::start(&Probe::Tcp {
        host: "localhost".into(),
        port,
    })
    .unwrap();
    assert_eq!(drive(&mut poll, p, None, WITHIN), Some(Ok(())));
}

#[test]
fn tcp_connects_over_ipv6() {
    let Ok(l) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    };
    let mut poll = MioPoll::new().unwrap();
    let port = l.local_addr().unwrap().port();
    let p = TcpProbe::start("::1", port).map(NetProbe::Tcp);
    assert_eq!(drive(&mut poll, p, None, WITHIN), Some(Ok(())));
}

#[test]
fn tcp_refused() {
    let mut poll = MioPoll::new().unwrap();
    let p = TcpProbe::start("127.0.0.1", refused_port()).map(NetProbe::Tcp);
    assert_eq!(
        drive(&mut poll, p, None, WITHIN),
        Some(Err("connection refused".into()))
    );
}

#[test]
fn http_ok_and_the_request_sent() {
    let mut poll = MioPoll::new().unwrap();
    let mut server = Responder::new(
        &poll,
        Some(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        true,
    );
    let port = server.port();
    let p = HttpProbe::start("localhost", port, "/healthz?full=1", (200, 299), Some("ok"))
        .map(NetProbe::Http);
    assert_eq!(drive(&mut poll, p, Some(&mut server), WITHIN), Some(Ok(())));
    assert_eq!(
        String::from_utf8_lossy(&server.requests[0]),
        format!(
            "GET /healthz?full=1 HTTP/1.1\r\nHost: localhost:{port}\r\n\
             User-Agent: sentinel-health\r\nConnection: close\r\n\r\n"
        )
    );
}

#[test]
fn http_status_out_of_range() {
    assert_eq!(
        http_against(b"HTTP/1.1 503 Service Unavailable\r\n\r\n", true, None),
        Some(Err("HTTP 503".into()))
    );
    // Judged from the head alone: no need to wait for the body or EOF.
    assert_eq!(
        http_against(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 100\r\n\r\n",
            false,
            Some("ok")
        ),
        Some(Err("HTTP 404".into()))
    );
    // 3xx passes by default (200..=399), like Docker and Kubernetes.
    assert_eq!(
        http_against(b"HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n", true, None),
        Some(Ok(()))
    );
}

#[test]
fn http_body_substring() {
    assert_eq!(
        http_against(
            b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nfailing",
            true,
            Some("ok")
        ),
        Some(Err("body does not contain \"ok\"".into()))
    );
    // Content-Length ends the body: no EOF needed.
    assert_eq!(
        http_against(
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nstatus: ok\n",
            false,
            Some("ok")
        ),
        Some(Ok(()))
    );
    // Without a length, the body runs to EOF.
    assert_eq!(
        http_against(b"HTTP/1.0 200 OK\r\n\r\nall ok", true, Some("all ok")),
        Some(Ok(()))
    );
    assert_eq!(
        http_against(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok",
            true,
            Some("ok")
        ),
        Some(Err("connection closed before a complete response".into()))
    );
    // Bytes past Content-Length are not the body.
    assert_eq!(
        http_against(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbadok",
            true,
            Some("ok")
        ),
        Some(Err("body does not contain \"ok\"".into()))
    );
}

#[test]
fn http_chunked_body_is_decoded() {
    // "ok" split across chunks, connection kept open: the last chunk ends it.
    assert_eq!(
        http_against(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              3;ext=1\r\nall\r\n2\r\n o\r\n1\r\nk\r\n0\r\n\r\n",
            false,
            Some("all ok")
        ),
        Some(Ok(()))
    );
    assert_eq!(
        http_against(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nall",
            true,
            Some("all")
        ),
        Some(Err("truncated chunked body".into()))
    );
}

#[test]
fn http_response_too_large() {
    let mut reply = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    reply.extend(vec![b'x'; 2 * MAX_RESPONSE]);
    assert_eq!(
        http_against(&reply, true, Some("ok")),
        Some(Err("response too large".into()))
    );
}

#[test]
fn http_garbage_and_early_close() {
    let r = http_against(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", true, None);
    assert!(
        matches!(&r, Some(Err(e)) if e.starts_with("bad HTTP response")),
        "{r:?}"
    );
    assert_eq!(
        http_against(b"HTTP/1.1 200", true, None),
        Some(Err("connection closed before a complete response".into()))
    );
}

#[test]
fn http_refused() {
    let mut poll = MioPoll::new().unwrap();
    let p = http(refused_port(), (200, 399), None);
    assert_eq!(
        drive(&mut poll, p, None, WITHIN),
        Some(Err("connection refused".into()))
    );
}

#[test]
fn http_silent_server_stays_pending() {
    let mut poll = MioPoll::new().unwrap();
    let mut server = Responder::new(&poll, None, false);
    let port = server.port();
    let p = http(port, (200, 399), None);
    // The caller's timeout decides; the probe just waits, without blocking.
    let t = Instant::now();
    assert_eq!(
        drive(&mut poll, p, Some(&mut server), Duration::from_millis(300)),
        None
    );
    assert!(t.elapsed() < WITHIN);
    assert_eq!(server.requests.len(), 1, "the request was sent");
}

#[test]
fn http_path_is_checked() {
    for bad in ["healthz", "/a b", "/a\r\nX: y"] {
        let e = HttpProbe::start("127.0.0.1", 1, bad, (200, 399), None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
    }
}

#[test]
fn exec_probes_are_not_net_probes() {
    assert!(NetProbe::start(&Probe::Exec(vec!["true".into()])).is_none());
}

#[test]
fn dechunk_cases() {
    assert_eq!(dechunk(b"0\r\n\r\n"), Some(Vec::new()));
    assert_eq!(
        dechunk(b"A\r\n0123456789\r\n0\r\n"),
        Some(b"0123456789".to_vec())
    );
    assert_eq!(dechunk(b"5\r\nab"), None);
    assert_eq!(dechunk(b"zz\r\n"), None);
}
