//! TCP and HTTP probes over non-blocking sockets.
//!
//! A probe starts a non-blocking connect and is then a mio source: the loop
//! registers it with [`INTEREST`] under a token of its own, calls `on_event`
//! on every event of that token (whatever its readiness flags: the probe
//! retries everything until `WouldBlock`, so spurious or merged events are
//! harmless) until it returns `Poll::Ready`, then deregisters and drops it.
//! The timeout is the loop's deadline ([`super::HealthState::check_deadline`]):
//! a probe that is still pending then is dropped and counted as failed.
//!
//! Hosts are resolved numerically only: an IPv4 or IPv6 literal, or
//! `localhost` (127.0.0.1). A name lookup (getaddrinfo) blocks, and would
//! freeze every service while DNS is slow; [`resolve`] is meant to be called
//! by config validation too, so a name is a `check` error, not a runtime one.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::Poll;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::config::Probe;

/// What every probe here is registered for.
pub const INTEREST: Interest = Interest::READABLE.add(Interest::WRITABLE);

/// Largest HTTP response read (head and body): beyond it the check fails
/// with `response too large`.
pub const MAX_RESPONSE: usize = 64 * 1024;

/// Most response headers parsed.
const MAX_HEADERS: usize = 64;

/// The address of `host:port` without a name lookup: an IP literal (IPv6
/// with or without brackets) or `localhost`.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, port))
        .map_err(|_| {
            format!(
                "health check host {host:?} is not an IP address: sentinel does not look up \
                 names (a lookup would block); use an address such as 127.0.0.1 or ::1"
            )
        })
}

/// A short lowercase reason for a socket error: `connection refused`.
pub fn reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let desc = nix::errno::Errno::from_raw(code).desc();
            let mut chars = desc.chars();
            match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).collect(),
                None => e.to_string(),
            }
        }
        None => e.to_string(),
    }
}

fn connect(host: &str, port: u16) -> io::Result<TcpStream> {
    let addr = resolve(host, port).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    TcpStream::connect(addr)
}

/// Where a non-blocking connect stands: mio's recipe (`take_error`, then
/// `peer_addr`; `ENOTCONN` means not yet).
fn connect_state(stream: &TcpStream) -> Poll<Result<(), String>> {
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => return Poll::Ready(Err(reason(&e))),
        Ok(None) => {}
    }
    match stream.peer_addr() {
        Ok(_) => Poll::Ready(Ok(())),
        Err(e)
            if e.kind() == io::ErrorKind::NotConnected
                || e.raw_os_error() == Some(libc::EINPROGRESS) =>
        {
            Poll::Pending
        }
        Err(e) => Poll::Ready(Err(reason(&e))),
    }
}

/// `tcp = "host:port"`: healthy when a connect succeeds.
#[derive(Debug)]
pub struct TcpProbe {
    stream: TcpStream,
}

impl TcpProbe {
    /// Start a non-blocking connect. An error is a failed check (its
    /// [`reason`]), or for a host that is not an IP literal, a config error.
    pub fn start(host: &str, port: u16) -> io::Result<TcpProbe> {
        Ok(TcpProbe {
            stream: connect(host, port)?,
        })
    }

    /// Advance on any event of the probe's token: `Ready(Ok)` connected,
    /// `Ready(Err(reason))` failed (`connection refused`), else pending.
    pub fn on_event(&mut self) -> Poll<Result<(), String>> {
        connect_state(&self.stream)
    }
}

impl Source for TcpProbe {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.stream.register(r, t, i)
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.stream.reregister(r, t, i)
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        self.stream.deregister(r)
    }
}

/// `http = "http://host:port/path"`: a GET whose status is in a range and
/// whose body (if asked) contains a substring.
#[derive(Debug)]
pub struct HttpProbe {
    stream: TcpStream,
    connected: bool,
    request: Vec<u8>,
    written: usize,
    response: Vec<u8>,
    status: (u16, u16),
    body: Option<String>,
}

impl HttpProbe {
    /// Start a non-blocking connect; the request goes out once connected.
    /// `status` is inclusive. Errors as for [`TcpProbe::start`]; a path that
    /// does not start with `/` or holds whitespace or control characters is
    /// refused (`InvalidInput`), so nothing can be smuggled into the request.
    pub fn start(
        host: &str,
        port: u16,
        path: &str,
        status: (u16, u16),
        body: Option<&str>,
    ) -> io::Result<HttpProbe> {
        if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("health check path {path:?}: must start with / and hold no spaces"),
            ));
        }
        let stream = connect(host, port)?;
        // Host is what the config named (virtual hosts); IPv6 in brackets.
        let host_header = match host.parse::<Ipv6Addr>() {
            Ok(ip) => format!("[{ip}]:{port}"),
            Err(_) => format!("{host}:{port}"),
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: sentinel-health\r\n\
             Connection: close\r\n\r\n"
        )
        .into_bytes();
        Ok(HttpProbe {
            stream,
            connected: false,
            request,
            written: 0,
            response: Vec::new(),
            status,
            body: body.map(str::to_string),
        })
    }

    /// Advance on any event of the probe's token: connect, write the
    /// request, read the response, each until `WouldBlock`. `Ready(Ok)`
    /// passed; `Ready(Err(reason))` failed (`HTTP 503`,
    /// `body does not contain "ok"`, `connection refused`,
    /// `response too large`); else pending.
    pub fn on_event(&mut self) -> Poll<Result<(), String>> {
        if !self.connected {
            match connect_state(&self.stream) {
                Poll::Ready(Ok(())) => self.connected = true,
                other => return other,
            }
        }
        while self.written < self.request.len() {
            match self.stream.write(&self.request[self.written..]) {
                Ok(0) => return Poll::Ready(Err("connection closed while sending".into())),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(reason(&e))),
            }
        }
        let mut buf = [0u8; 8192];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    return Poll::Ready(
                        self.judge(true)
                            .unwrap_or(Err("connection closed before a complete response".into())),
                    )
                }
                Ok(n) => {
                    self.response.extend_from_slice(&buf[..n]);
                    if let Some(result) = self.judge(false) {
                        return Poll::Ready(result);
                    }
                    if self.response.len() > MAX_RESPONSE {
                        return Poll::Ready(Err("response too large".into()));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(reason(&e))),
            }
        }
    }

    /// The verdict on what was read, or None while more is needed. `eof`:
    /// nothing more will come.
    fn judge(&self, eof: bool) -> Option<Result<(), String>> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let head_len = match resp.parse(&self.response) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return None,
            Err(e) => return Some(Err(format!("bad HTTP response: {e}"))),
        };
        let code = resp.code.unwrap_or(0);
        if code < self.status.0 || code > self.status.1 {
            return Some(Err(format!("HTTP {code}")));
        }
        let Some(want) = &self.body else {
            return Some(Ok(()));
        };
        let header = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
        };
        let raw = &self.response[head_len..];
        let body: Vec<u8> = if matches!(code, 100..=199 | 204 | 304) {
            Vec::new()
        } else if header("transfer-encoding").is_some_and(|v| v.ends_with("chunked")) {
            match dechunk(raw) {
                Some(b) => b,
                None if eof => return Some(Err("truncated chunked body".into())),
                None => return None,
            }
        } else if let Some(len) = header("content-length") {
            let Ok(len) = len.parse::<usize>() else {
                return Some(Err("bad HTTP response: invalid Content-Length".into()));
            };
            if raw.len() < len {
                return eof.then(|| Err("connection closed before a complete response".into()));
            }
            raw[..len].to_vec()
        } else if eof {
            raw.to_vec()
        } else {
            return None;
        };
        if contains(&body, want.as_bytes()) {
            Some(Ok(()))
        } else {
            Some(Err(format!("body does not contain {want:?}")))
        }
    }
}

impl Source for HttpProbe {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.stream.register(r, t, i)
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.stream.reregister(r, t, i)
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        self.stream.deregister(r)
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// A whole chunked body decoded, or None while its last chunk has not come.
/// Chunk extensions and trailers are skipped.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&raw[..eol]).ok()?;
        let size = line.split(';').next()?.trim();
        let size = usize::from_str_radix(size, 16).ok()?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        if raw.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// A TCP or HTTP probe: what the loop holds for a check in flight.
#[derive(Debug)]
pub enum NetProbe {
    Tcp(TcpProbe),
    Http(HttpProbe),
}

impl NetProbe {
    /// Start the check `probe` describes; None for `exec` probes, which the
    /// loop spawns itself. Errors as for [`TcpProbe::start`].
    pub fn start(probe: &Probe) -> Option<io::Result<NetProbe>> {
        Some(match probe {
            Probe::Tcp { host, port } => TcpProbe::start(host, *port).map(NetProbe::Tcp),
            Probe::Http {
                host,
                port,
                path,
                status,
                body,
            } => HttpProbe::start(host, *port, path, *status, body.as_deref()).map(NetProbe::Http),
            Probe::Exec(_) => return None,
        })
    }

    /// Advance on any event of the probe's token (see the probe types).
    pub fn on_event(&mut self) -> Poll<Result<(), String>> {
        match self {
            NetProbe::Tcp(p) => p.on_event(),
            NetProbe::Http(p) => p.on_event(),
        }
    }
}

impl Source for NetProbe {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            NetProbe::Tcp(p) => p.register(r, t, i),
            NetProbe::Http(p) => p.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            NetProbe::Tcp(p) => p.reregister(r, t, i),
            NetProbe::Http(p) => p.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            NetProbe::Tcp(p) => p.deregister(r),
            NetProbe::Http(p) => p.deregister(r),
        }
    }
}

#[cfg(test)]
mod tests;
