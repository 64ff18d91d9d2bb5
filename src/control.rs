//! The control protocol over the unix socket: newline-delimited JSON, one
//! request line, one response line (`logs --follow` then streams one line
//! per log line). Shared by the server (the event loop) and the client (CLI).

use std::io::{self, BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::logs::LogLine;

/// Largest request line accepted, newline included.
pub const MAX_REQUEST: usize = 64 * 1024;

fn default_lines() -> usize {
    20
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What a client asks. `target` is a service name, `@group`, or `*` for all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    Status {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// Fill each service's `stats` (CPU, memory: `sentinel top`).
        #[serde(default, skip_serializing_if = "is_false")]
        stats: bool,
    },
    Start {
        target: String,
    },
    Stop {
        target: String,
    },
    Restart {
        target: String,
        /// One instance at a time, each next once the new one is ready.
        #[serde(default, skip_serializing_if = "is_false")]
        rolling: bool,
    },
    /// Set a service's instance count and/or range.
    Scale {
        service: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        /// `"2-6"`: a new range.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        range: Option<String>,
    },
    /// Read the config file again and apply what changed.
    Reload {},
    /// Forget a failed service's crash-loop window (it stays stopped).
    ResetFailed {
        target: String,
    },
    Logs {
        service: String,
        #[serde(default = "default_lines")]
        lines: usize,
        #[serde(default)]
        follow: bool,
        /// Only lines matching this regular expression.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grep: Option<String>,
        /// Only lines from the last this many milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since_ms: Option<u64>,
        /// Only lines from this stream.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream: Option<crate::logs::Stream>,
    },
    /// A service's resources now and their recent history.
    Stats {
        service: String,
        /// How far back (default: all that is kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window_ms: Option<u64>,
    },
    Shutdown {},
}

/// One service as `status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub state: String,
    pub pid: Option<i32>,
    /// Milliseconds since the current process started.
    pub uptime_ms: Option<u64>,
    pub restarts: u64,
    /// `exit 1`, `killed by SIGKILL`.
    pub last_exit: Option<String>,
    /// The code, or 128 + signal.
    pub last_exit_code: Option<i32>,
    pub last_error: Option<String>,
    pub groups: Vec<String>,
    /// Output bytes that could not be written to the log file (disk full).
    #[serde(default)]
    pub log_dropped_bytes: u64,
    /// Why a waiting service waits (`waiting for db to be ready (it is starting)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// Health check: None without one or before its first result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// The health check's details, for a service that has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
    /// Counted by `/readyz`.
    #[serde(default = "yes")]
    pub required: bool,
    /// The last sd_notify `STATUS=` text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_status: Option<String>,
    /// The service's cgroup, when cgroups are in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Output bytes captured (lines and their newlines), since start.
    #[serde(default)]
    pub log_bytes: u64,
    /// When the current process started, milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    /// CPU, memory ..., when asked for (`status` with `stats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<crate::metrics::ResourceStats>,
    /// For an instance (`web@2`): its service and number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<u32>,
    /// Instances wanted now, and the range (on every instance of a service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_range: Option<String>,
    /// The last scaling decision and its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale: Option<String>,
    /// The autoscaler's latest verdict (`cpu 0.55 < 0.80`, `cooldown: 42s left`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<String>,
    /// The unit's index in the supervisor (stable; not shown).
    #[serde(skip)]
    pub id: usize,
    /// Scaled away or removed by a reload, and down: not shown.
    #[serde(skip)]
    pub hidden: bool,
}

fn yes() -> bool {
    true
}

/// A health check as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// The last check passed.
    pub last_ok: Option<bool>,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<u64>,
    pub checks_total: u64,
    pub failures_total: u64,
}

/// sentinel itself, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupervisorStatus {
    pub pid: u32,
    /// `init` (the kernel's PID 1), `namespace-init` (PID 1 of a pid
    /// namespace) or `subreaper`.
    pub role: String,
    pub uptime_ms: u64,
    /// Adopted orphans reaped since start.
    pub orphans_reaped: u64,
    pub shutting_down: bool,
}

/// The answer to a request (fields present as the request calls for).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor: Option<SupervisorStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<ServiceStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LogLine>>,
    /// One followed line (`logs --follow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<LogLine>,
    /// The answer to `stats`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<crate::metrics::StatsReply>,
}

impl Response {
    pub fn error(msg: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(msg.into()),
            ..Default::default()
        }
    }

    pub fn message(msg: impl Into<String>) -> Response {
        Response {
            ok: true,
            message: Some(msg.into()),
            ..Default::default()
        }
    }

    /// The JSON line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
        v.push(b'\n');
        v
    }
}

/// Parse one request line, with an error a client can act on.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    serde_json::from_slice(line).map_err(|e| {
        format!(
            "bad request: {e}; expected one JSON object per line, e.g. {{\"cmd\":\"status\"}} \
             (commands: status, start, stop, restart, scale, reload, reset-failed, logs, stats, shutdown)"
        )
    })
}

/// The socket path when neither the config nor the command line names one:
/// `/run/sentinel.sock` as root, `$XDG_RUNTIME_DIR/sentinel.sock` otherwise.
pub fn default_socket() -> Result<PathBuf, String> {
    if nix::unistd::geteuid().is_root() {
        return Ok(PathBuf::from("/run/sentinel.sock"));
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => Ok(Path::new(&d).join("sentinel.sock")),
        _ => Err(
            "no control socket path: XDG_RUNTIME_DIR is not set; set `socket` in [supervisor] \
                  or pass --socket (or SENTINEL_SOCKET)"
                .to_string(),
        ),
    }
}

/// A client connection to a running sentinel: its control socket, or on
/// another host the same protocol through `ssh HOST sentinel bridge`
/// (`crate::remote`), whose stdin and stdout are the other end of a
/// socketpair. Either way the client holds a `UnixStream`, and writes with
/// MSG_NOSIGNAL: a peer that went away is an error, not a SIGPIPE.
pub struct Client {
    reader: BufReader<UnixStream>,
    /// Named in errors: the socket path, or the host.
    peer: String,
    /// The ssh process behind a remote connection: asked why when it ends.
    session: Option<crate::remote::Session>,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, String> {
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => format!(
                "cannot connect to {}: {e}; is `sentinel run` running with this socket?",
                path.display()
            ),
            _ => format!("cannot connect to {}: {e}", path.display()),
        })?;
        Ok(Client {
            reader: BufReader::new(stream),
            peer: path.display().to_string(),
            session: None,
        })
    }

    /// A supervisor on another host: `stream` leads to ssh's stdin and stdout.
    pub fn remote(stream: UnixStream, session: crate::remote::Session) -> Client {
        Client {
            reader: BufReader::new(stream),
            peer: session.label.clone(),
            session: Some(session),
        }
    }

    /// `fallback`, or for a remote connection why ssh ended, when it says more.
    fn broken(&mut self, fallback: String) -> String {
        match self.session.as_mut().map(|s| s.finish()) {
            Some(Err(why)) => why,
            _ => fallback,
        }
    }

    pub fn send(&mut self, req: &Request) -> Result<(), String> {
        use nix::sys::socket::{send, MsgFlags};
        use std::os::fd::AsRawFd;
        let mut line = serde_json::to_vec(req).map_err(|e| e.to_string())?;
        line.push(b'\n');
        let fd = self.reader.get_ref().as_raw_fd();
        let mut rest = &line[..];
        while !rest.is_empty() {
            match send(fd, rest, MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => rest = &rest[n..],
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(format!("write to {}: {}", self.peer, e.desc())),
            }
        }
        Ok(())
    }

    /// The next response line; None at EOF.
    pub fn recv(&mut self) -> Result<Option<Response>, String> {
        let mut line = String::new();
        let n = match self.reader.read_line(&mut line) {
            Ok(n) => n,
            Err(e) => {
                let msg = format!("read from {}: {e}", self.peer);
                return Err(self.broken(msg));
            }
        };
        if n == 0 {
            // A remote end is clean only if ssh and the bridge exited cleanly.
            return match self.session.as_mut().map(|s| s.finish()) {
                Some(Err(why)) => Err(why),
                _ => Ok(None),
            };
        }
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| format!("bad response from {}: {e}", self.peer))
    }

    /// Send one request and read its one response.
    pub fn call(&mut self, req: &Request) -> Result<Response, String> {
        if let Err(e) = self.send(req) {
            // The server may have answered and closed before reading (a
            // refused peer): its answer says more than the write error.
            return match self.recv() {
                Ok(Some(r)) => Ok(r),
                Err(why) if self.session.is_some() => Err(why),
                _ => Err(e),
            };
        }
        match self.recv()? {
            Some(r) => Ok(r),
            None => Err(format!(
                "{} closed the connection without answering",
                self.peer
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_garbage_is_explained() {
        let r = Request::Logs {
            service: "web".into(),
            lines: 5,
            follow: true,
            grep: None,
            since_ms: None,
            stream: None,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"cmd":"logs","service":"web","lines":5,"follow":true}"#
        );
        assert_eq!(parse_request(s.as_bytes()), Ok(r));
        assert_eq!(
            parse_request(br#"{"cmd":"status"}"#),
            Ok(Request::Status {
                target: None,
                stats: false
            })
        );
        assert_eq!(
            parse_request(br#"{"cmd":"shutdown"}"#),
            Ok(Request::Shutdown {})
        );
        let e = parse_request(b"hello").unwrap_err();
        assert!(
            e.starts_with("bad request:") && e.contains("commands: status"),
            "{e}"
        );
        let e = parse_request(br#"{"cmd":"stop"}"#).unwrap_err();
        assert!(e.contains("target"), "{e}");
        let e = parse_request(br#"{"cmd":"status","bogus":1}"#).unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }
}
