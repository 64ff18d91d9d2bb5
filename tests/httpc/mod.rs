//! A tiny HTTP client for the tests (std TcpStream, no crate), and sentinel
//! started with an `[http]` table on a free loopback port.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::common::{wait_for, Sentinel};

/// Start sentinel with `[http] listen = "127.0.0.1:0"` plus `http_extra`,
/// and find the port it got from its log.
pub fn start(tag: &str, http_extra: &str, services: &str) -> (Sentinel, SocketAddr) {
    let s = Sentinel::start(
        tag,
        &format!("\n[http]\nlisten = \"127.0.0.1:0\"\n{http_extra}\n"),
        services,
    );
    let addr = wait_for("the http listener", Duration::from_secs(10), || {
        let err = s.stderr();
        let i = err.find("listening on http://")?;
        let rest = &err[i + "listening on http://".len()..];
        rest[..rest.find('/')?].parse().ok()
    });
    (s, addr)
}

/// A parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c
}

/// Send raw bytes, read until the server closes.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut c = connect(addr);
    let _ = c.write_all(bytes);
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    out
}

/// Split one response off the front of `buf`: (reply, bytes used).
pub fn parse_one(buf: &[u8]) -> Option<(Reply, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(buf.len() - end);
    if buf.len() < end + len {
        return None;
    }
    let body = String::from_utf8_lossy(&buf[end..end + len]).into_owned();
    Some((Reply { status, head, body }, end + len))
}

/// One request with `Connection: close`.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    let out = raw(addr, req.as_bytes());
    parse_one(&out)
        .unwrap_or_else(|| {
            panic!(
                "no response to {method} {path}: {:?}",
                String::from_utf8_lossy(&out)
            )
        })
        .0
}

pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[])
}

/// Whether `name` is on PATH. Missing: skip the test with a message, or
/// fail when SENTINEL_REQUIRE_TOOLS is set (scripts/test installs them).
pub fn have_tool(name: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    if !found {
        assert!(
            std::env::var_os("SENTINEL_REQUIRE_TOOLS").is_none(),
            "{name} is not installed (scripts/test installs it)"
        );
        eprintln!("SKIPPED: {name} is not installed; run scripts/test to install it");
    }
    found
}

/// Raise this process's open-file limit to its hard limit.
pub fn raise_nofile() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    hard
}

/// A free loopback port (for programs that want a port up front).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
