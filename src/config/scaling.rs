//! The scaling model of a service: instances, shared listening sockets,
//! autoscaling, the crash-loop limit, `critical`, watch mode; and the
//! supervisor-wide event hooks. Plain data, validated.
//!
//! In a config file these are keys of the service table: `instances`,
//! `port_base`, `listen`, `autoscale = { ... }`, `start_limit`, `critical`,
//! `watch`; and `[[hooks]]` at the top level.

// Parsed and carried out by work in progress (issue 8).
#![allow(dead_code)]

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
