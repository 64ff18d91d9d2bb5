//! The lifecycle model of a service: its type, readiness, health check,
//! watchdog and dependencies. Plain data, validated.
//!
//! In a config file these are keys of the service table: `type`, `every`,
//! `ready`, `start_timeout`, `health = { ... }`, `watchdog`, `depends_on`,
//! `propagate`, `required`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Everything about how a service starts, is judged up, and is ordered.
/// `Default` is a plain long-running service, ready once exec'd.
#[derive(Debug, Clone, PartialEq)]
pub struct Lifecycle {
    pub kind: ServiceKind,
    /// Oneshot only: run again this long after each completion (cron-like).
    pub every: Option<Duration>,
    pub ready: Readiness,
    /// Not ready within this long after exec: a failed start (the group is
    /// killed, then backoff by policy). None: wait forever.
    pub start_timeout: Option<Duration>,
    pub health: Option<HealthCheck>,
    /// sd_notify `WATCHDOG=1` must arrive at least this often once ready,
    /// or the service is killed and restarted (systemd's WatchdogSec).
    /// Sets `WATCHDOG_USEC` in the service's environment.
    pub watchdog: Option<Duration>,
    /// In file order: `depends_on = { db = "healthy", migrate = "completed" }`.
    pub depends_on: Vec<(String, Condition)>,
    /// A restart of this service restarts the services that depend on it.
    pub propagate: bool,
    /// Counted by `/readyz` (and the readiness sentinel reports to systemd):
    /// sentinel is ready when every required service is ready. Default true.
    pub required: bool,
}

impl Lifecycle {
    /// Whether the service speaks sd_notify, so needs `NOTIFY_SOCKET`:
    /// `ready = "notify"`, or a `watchdog` (pinged with `WATCHDOG=1`).
    pub fn needs_notify_socket(&self) -> bool {
        self.ready == Readiness::Notify || self.watchdog.is_some()
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            kind: ServiceKind::Simple,
            every: None,
            ready: Readiness::Started,
            start_timeout: None,
            health: None,
            watchdog: None,
            depends_on: Vec::new(),
            propagate: false,
            required: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServiceKind {
    /// A long-running process (the default).
    #[default]
    Simple,
    /// Runs to completion: exit 0 is `completed` and unblocks dependents;
    /// a failure retries by the restart policy.
    Oneshot,
}

/// When a started service counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Readiness {
    /// As soon as exec succeeded (the default).
    #[default]
    Started,
    /// On sd_notify `READY=1` (sentinel sets `NOTIFY_SOCKET`).
    Notify,
    /// s6 style: the service writes a newline to the fd named by
    /// `SENTINEL_READY_FD` (always fd 3 in the child).
    Fd,
    /// When its health check first passes.
    Healthy,
}

/// What a dependent waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    /// The dependency's process was exec'd.
    Started,
    /// It reported ready (see `Readiness`).
    Ready,
    /// Its health check passes (needs a `health` table on it).
    Healthy,
    /// A oneshot exited 0.
    Completed,
}

impl Condition {
    /// The word used in config files and messages: `"ready"`.
    pub fn name(self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Ready => "ready",
            Condition::Healthy => "healthy",
            Condition::Completed => "completed",
        }
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl HealthCheck {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    pub const DEFAULT_RETRIES: u32 = 3;
    /// `status` when not given: any success or redirect.
    pub const DEFAULT_STATUS: (u16, u16) = (200, 399);
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    pub probe: Probe,
    /// Between checks. Default 10s.
    pub interval: Duration,
    /// One check's limit. Default 5s.
    pub timeout: Duration,
    /// Consecutive failures before unhealthy. Default 3.
    pub retries: u32,
    /// Grace after start during which failures do not count. Default 0.
    pub start_period: Duration,
    pub on_unhealthy: OnUnhealthy,
}

/// Hosts are IP addresses (IPv6 without brackets): a name lookup would
/// block the loop, so names are refused, except `localhost`, which is
/// stored as `127.0.0.1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `tcp = "127.0.0.1:8080"`: a connect that succeeds.
    Tcp { host: String, port: u16 },
    /// `http = "http://127.0.0.1:8080/healthz"`: a GET whose status is in
    /// `status` (default 200..=399) and whose body contains `body`.
    Http {
        host: String,
        port: u16,
        /// Path and query, starting with `/`.
        path: String,
        status: (u16, u16),
        body: Option<String>,
    },
    /// `exec = ["cmd", "arg"]`: exit 0 within the timeout.
    Exec(Vec<String>),
}

impl Probe {
    /// `tcp = "..."`: `"127.0.0.1:8080"`, `"[::1]:8080"`, `"localhost:8080"`.
    pub fn parse_tcp(text: &str) -> Result<Probe, String> {
        let hint = "use an address and port like \"127.0.0.1:8080\" or \"[::1]:8080\"";
        let (host, port) = split_host_port(text, None).map_err(|why| format!("{why}; {hint}"))?;
        Ok(Probe::Tcp { host, port })
    }

    /// `http = "..."`: `http://HOST[:PORT][/PATH[?QUERY]]`; the port
    /// defaults to 80 and the path to `/`; a `#fragment` is dropped.
    /// `status` and `body` take their defaults (200-399, none).
    pub fn parse_http(url: &str) -> Result<Probe, String> {
        let hint = "use a URL like \"http://127.0.0.1:8080/healthz\"";
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                return Err(format!(
                    "\"{url}\": https is not supported (sentinel speaks no TLS); \
                     check the port with tcp = \"HOST:PORT\", or run a client with exec = [\"curl\", \"-fsS\", \"{url}\"]"
                ))
            }
            Some((scheme, _)) => {
                return Err(format!(
                    "\"{url}\": unsupported scheme \"{scheme}\"; only http:// is checked ({hint})"
                ))
            }
            None => return Err(format!("\"{url}\" is not a URL (no http://); {hint}")),
        };
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path
        };
        if authority.contains('@') {
            return Err(format!(
                "\"{url}\": credentials in the URL are not supported; check a path that needs none"
            ));
        }
        if authority.is_empty() {
            return Err(format!("\"{url}\" has no host; {hint}"));
        }
        let (host, port) = split_host_port(authority, Some(80))
            .map_err(|why| format!("\"{url}\": {why}; {hint}"))?;
        if let Some(c) = path.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "\"{url}\": {c:?} cannot be part of a request path; percent-encode it (a space is %20)"
            ));
        }
        Ok(Probe::Http {
            host,
            port,
            path,
            status: HealthCheck::DEFAULT_STATUS,
            body: None,
        })
    }

    #[cfg(test)]
    /// The address a tcp or http probe connects to; None for exec.
    pub fn socket_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Probe::Tcp { host, port } | Probe::Http { host, port, .. } => host
                .parse::<IpAddr>()
                .ok()
                .map(|ip| std::net::SocketAddr::new(ip, *port)),
            Probe::Exec(_) => None,
        }
    }
}

/// `"HOST:PORT"` or `"[V6]:PORT"` (or without the port when it has a
/// default) into an IP address text and a port.
fn split_host_port(text: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("\"{text}\" has no closing ']'"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("unexpected \"{after}\" after ']' in \"{text}\"")),
        };
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("\"{host}\" is not an IPv6 address"));
        }
        (host, port)
    } else {
        match text.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(format!(
                "\"{text}\" is ambiguous; write an IPv6 address in brackets, like \"[::1]:8080\""
            ))
            }
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port = match (port, default_port) {
        (Some(p), _) => match p.parse::<u16>() {
            Ok(0) => return Err("port 0 cannot be connected to".to_string()),
            Ok(n) => n,
            Err(_) => return Err(format!("\"{p}\" is not a port number (1 to 65535)")),
        },
        (None, Some(d)) => d,
        (None, None) => return Err(format!("\"{text}\" has no port")),
    };
    if host.is_empty() {
        return Err(format!("\"{text}\" has no host"));
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok((Ipv4Addr::LOCALHOST.to_string(), port));
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok((ip.to_string(), port)),
        Err(_) => Err(format!(
            "\"{host}\" is not an IP address (host names are not looked up: that would block sentinel's loop)"
        )),
    }
}

/// `status = "200-399"`, `"204"` or `204`: an inclusive range of HTTP
/// status codes, each from 100 to 599.
pub fn parse_status_range(text: &str) -> Result<(u16, u16), String> {
    let hint = "use a status code like 200 or a range like \"200-399\" (codes 100 to 599)";
    let code = |s: &str| -> Result<u16, String> {
        match s.trim().parse::<u16>() {
            Ok(n) if (100..=599).contains(&n) => Ok(n),
            _ => Err(format!("invalid status \"{text}\"; {hint}")),
        }
    };
    let (lo, hi) = match text.split_once('-') {
        Some((lo, hi)) => (code(lo)?, code(hi)?),
        None => {
            let n = code(text)?;
            (n, n)
        }
    };
    if lo > hi {
        return Err(format!(
            "the range \"{text}\" is backwards; write the lower code first, like \"{hi}-{lo}\""
        ));
    }
    Ok((lo, hi))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUnhealthy {
    /// Kill the group and restart by policy (the default).
    #[default]
    Restart,
    /// Only report it.
    None,
}
