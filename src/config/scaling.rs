//! The scaling model of a service: instances, shared listening sockets,
//! autoscaling, the crash-loop limit, `critical`, watch mode; and the
//! supervisor-wide event hooks. Plain data, validated.
//!
//! In a config file these are keys of the service table: `instances`,
//! `port_base`, `listen`, `autoscale = { ... }`, `start_limit`, `critical`,
//! `watch`; and `[[hooks]]` at the top level.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How many copies of a service run, and what they share.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scaling {
    /// `instances = 3` or `"2-4"`. None: one process named like the service
    /// (no `@k` suffix). Some even for `instances = 1`: then `web@0`.
    pub instances: Option<InstanceRange>,
    /// `PORT = port_base + k` in instance k's environment.
    pub port_base: Option<u16>,
    /// Sockets sentinel opens once and passes to every instance as fd 3..
    /// (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`), in this order.
    pub listen: Vec<ListenSocket>,
    /// Scale within `instances` by load or by a policy command. When set,
    /// `instances` is always Some (its range is `autoscale.min`-`max`).
    pub autoscale: Option<Autoscale>,
    /// systemd's StartLimitBurst/IntervalSec: too many starts in the
    /// window and the service is `failed` until `start` or `reset-failed`.
    pub start_limit: Option<StartLimit>,
    /// When the service is down for good, stop everything and exit with
    /// its exit code. Default false.
    pub critical: bool,
    /// Restart when files change.
    pub watch: Option<Watch>,
}

/// `instances`: at least `min` always run; `max` is the ceiling for scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceRange {
    pub min: u32,
    pub max: u32,
}

impl InstanceRange {
    /// `"3"` or `"2-4"` (also for `sentinel scale web 2-6`). min <= max,
    /// max >= 1, max <= MAX_INSTANCES.
    pub fn parse(s: &str) -> Result<InstanceRange, String> {
        let bad = || {
            format!(
                "`{s}` is not an instance count: give a number (`3`) or a range (`2-4`), at most {}",
                Self::MAX_INSTANCES
            )
        };
        let num = |t: &str| t.trim().parse::<u32>().map_err(|_| bad());
        let (min, max) = match s.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(s)?;
                (n, n)
            }
        };
        if max == 0 || max > Self::MAX_INSTANCES {
            return Err(bad());
        }
        if min > max {
            return Err(format!(
                "`{s}`: the minimum ({min}) is above the maximum ({max})"
            ));
        }
        Ok(InstanceRange { min, max })
    }

    /// A ceiling that keeps tokens and pids sane.
    pub const MAX_INSTANCES: u32 = 1024;
}

impl std::fmt::Display for InstanceRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

/// One `listen` entry: `"tcp:0.0.0.0:8080"`, `"unix:/run/app.sock"`,
/// optionally named `"http=tcp:0.0.0.0:8080"` (the name goes to
/// `LISTEN_FDNAMES`; default: the service's name, as systemd does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSocket {
    pub name: String,
    pub addr: ListenAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl ListenSocket {
    /// At most this many sockets per service: a child gets at most
    /// `sys::spawn::MAX_FDS` fds, and 0, 1, 2 are stdio.
    pub const MAX: usize = sys::spawn::MAX_FDS - 3;

    /// `"tcp:0.0.0.0:8080"`, `"tcp:[::1]:8080"`, `"unix:/run/app.sock"`, each
    /// optionally after `"NAME="`; without a name, `default_name`. A unix
    /// path is kept as written (relative ones are resolved by the caller).
    pub fn parse(text: &str, default_name: &str) -> Result<ListenSocket, String> {
        let hint = "use \"tcp:ADDRESS:PORT\" (e.g. \"tcp:0.0.0.0:8080\", \"tcp:[::1]:8080\") \
                    or \"unix:PATH\", optionally named like \"http=tcp:0.0.0.0:8080\"";
        let (name, addr) = if text.starts_with("tcp:") || text.starts_with("unix:") {
            (default_name, text)
        } else {
            match text.split_once('=') {
                Some((name, addr)) => {
                    check_fd_name(name).map_err(|why| format!("\"{text}\": {why}"))?;
                    (name, addr)
                }
                None => (default_name, text),
            }
        };
        let addr = if let Some(a) = addr.strip_prefix("tcp:") {
            ListenAddr::Tcp(
                parse_tcp_listen(a).map_err(|why| format!("\"{text}\": {why}; {hint}"))?,
            )
        } else if let Some(p) = addr.strip_prefix("unix:") {
            if p.is_empty() {
                return Err(format!("\"{text}\" has no path; {hint}"));
            }
            if p.starts_with('@') {
                return Err(format!(
                    "\"{text}\": abstract sockets (@name) are not supported; give a path"
                ));
            }
            if p.contains('\0') {
                return Err(format!("\"{text}\": a path cannot contain a NUL character"));
            }
            ListenAddr::Unix(PathBuf::from(p))
        } else if addr.parse::<SocketAddr>().is_ok() {
            return Err(format!("\"{text}\" has no kind; write \"tcp:{addr}\""));
        } else {
            return Err(format!("\"{text}\" is not a socket address; {hint}"));
        };
        Ok(ListenSocket {
            name: name.to_string(),
            addr,
        })
    }
}

/// A name in `LISTEN_FDNAMES` (as systemd checks it): 1 to 255 printable
/// ASCII characters, without ':' (the separator).
pub fn check_fd_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name before '=' is empty; give one, or leave out \"NAME=\"".to_string());
    }
    if name.len() > 255 {
        return Err(format!(
            "the name is {} characters long; LISTEN_FDNAMES allows 255",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| *c == ':' || !c.is_ascii_graphic()) {
        return Err(format!(
            "{c:?} cannot be part of a socket name (LISTEN_FDNAMES takes printable characters \
             without ':' or spaces)"
        ));
    }
    Ok(())
}

/// `ADDRESS:PORT` of a listening TCP socket: an IP address (IPv6 in
/// brackets) or `localhost` (127.0.0.1), and a port from 1 to 65535.
fn parse_tcp_listen(text: &str) -> Result<SocketAddr, String> {
    let addr = match text.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) if text.ends_with(']') => return Err("no port after the address".to_string()),
        Err(_) => match text.rsplit_once(':') {
            None => return Err("no port after the address".to_string()),
            Some((host, port)) => {
                let port: u16 = port
                    .parse()
                    .map_err(|_| format!("\"{port}\" is not a port number (1 to 65535)"))?;
                if host.eq_ignore_ascii_case("localhost") {
                    SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port))
                } else if host.is_empty() {
                    return Err("no address before the port; give one like 0.0.0.0 (every \
                                IPv4 address) or 127.0.0.1"
                        .to_string());
                } else if host.contains(':') && !host.starts_with('[') {
                    return Err(
                        "an IPv6 address needs brackets, like \"tcp:[::1]:8080\"".to_string()
                    );
                } else {
                    return Err(format!(
                        "\"{host}\" is not an IP address (host names are not looked up)"
                    ));
                }
            }
        },
    };
    if addr.port() == 0 {
        return Err(
            "port 0 would pick a random port that clients cannot know; give a port".to_string(),
        );
    }
    Ok(addr)
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "tcp:{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// `[services.NAME.autoscale]`
///
/// Every `interval` sentinel samples the service's cgroups; each rule
/// looks at the mean over the last `window`. When any rule's `up` has held
/// for its `for`, the service grows by `step`; when every rule's `down`
/// has held for its `for`, it shrinks by `step`. After any change nothing
/// happens for `cooldown`. With a `policy`, the policy's answer decides
/// instead (rules are then not allowed).
#[derive(Debug, Clone, PartialEq)]
pub struct Autoscale {
    /// Default 10s.
    pub interval: Duration,
    /// Default 30s (at least `interval`).
    pub window: Duration,
    /// Default 60s.
    pub cooldown: Duration,
    /// Instances added or removed per decision. Default 1.
    pub step: u32,
    pub rules: Vec<Rule>,
    pub policy: Option<PolicyExec>,
}

impl Autoscale {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);
    pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(60);
    pub const DEFAULT_FOR: Duration = Duration::from_secs(30);
    pub const DEFAULT_POLICY_TIMEOUT: Duration = Duration::from_secs(5);
}

/// `cpu = { up = 0.8, down = 0.2, for = "30s" }` and the like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub metric: Metric,
    /// Scale up when the window's mean is above this. At least one of
    /// `up`/`down` is set; when both, down < up.
    pub up: Option<Threshold>,
    /// Scale down when the window's mean is below this.
    pub down: Option<Threshold>,
    /// How long the condition must hold. Default 30s.
    pub hold: Duration,
}

/// What a rule measures, per instance (mean over instances) for CPU and
/// memory, for the service's whole group for pressure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// CPU time per second per instance, as a share of the instance's
    /// `cpu_max` quota, or of one CPU without one (key `cpu`).
    Cpu,
    /// `memory.current` per instance (key `memory`): bytes, or a share of
    /// `memory_max`.
    Memory,
    /// PSI `some avg10` (percent) of the service's group (keys
    /// `cpu_pressure`, `memory_pressure`, `io_pressure`).
    CpuPressure,
    MemoryPressure,
    IoPressure,
}

impl Metric {
    /// The config key.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Cpu => "cpu",
            Metric::Memory => "memory",
            Metric::CpuPressure => "cpu_pressure",
            Metric::MemoryPressure => "memory_pressure",
            Metric::IoPressure => "io_pressure",
        }
    }
}

/// A rule's bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// A share: `0.8` or `"80%"` (CPU of the quota, memory of
    /// `memory_max`); for pressure, percent as PSI gives it (`20` = 20%).
    Ratio(f64),
    /// Memory only: `"400M"`.
    Bytes(u64),
}

/// `policy = { exec = ["/usr/local/bin/policy"], timeout = "5s" }`: at each
/// evaluation the window's stats go to its stdin as one JSON document; it
/// prints the wanted instance count. Failure, timeout or garbage: no change,
/// reported.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyExec {
    pub command: Vec<String>,
    /// Default 5s.
    pub timeout: Duration,
}

/// `start_limit = { burst = 5, interval = "10s" }`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartLimit {
    /// Starts allowed within `interval` (>= 1).
    pub burst: u32,
    pub interval: Duration,
}

/// `watch = { paths = ["./src"], ignore = ["*.log"], debounce = "500ms" }`
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    /// Files or folders (folders recursively), absolute after build
    /// (relative ones against the service's workdir, else the config's folder).
    pub paths: Vec<PathBuf>,
    /// Glob patterns (`*`, `?`) matched against the file name and the path
    /// relative to the watched folder.
    pub ignore: Vec<String>,
    /// Changes within this window make one restart. Default 500ms.
    pub debounce: Duration,
}

impl Watch {
    pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(500);
}

/// `[[hooks]]`: a command run on events, with the event as one JSON line
/// on its stdin.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    pub events: Vec<HookEvent>,
    /// Only these services (names); empty: all.
    pub services: Vec<String>,
    pub command: Vec<String>,
    /// Killed after this. Default 10s.
    pub timeout: Duration,
}

impl Hook {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookEvent {
    Started,
    Ready,
    Exited,
    Unhealthy,
    Failed,
    Scaled,
    Reloaded,
}

impl HookEvent {
    pub const ALL: [HookEvent; 7] = [
        HookEvent::Started,
        HookEvent::Ready,
        HookEvent::Exited,
        HookEvent::Unhealthy,
        HookEvent::Failed,
        HookEvent::Scaled,
        HookEvent::Reloaded,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HookEvent::Started => "started",
            HookEvent::Ready => "ready",
            HookEvent::Exited => "exited",
            HookEvent::Unhealthy => "unhealthy",
            HookEvent::Failed => "failed",
            HookEvent::Scaled => "scaled",
            HookEvent::Reloaded => "reloaded",
        }
    }
}
