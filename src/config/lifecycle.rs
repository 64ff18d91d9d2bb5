//! The lifecycle model of a service: its type, readiness, health check,
//! watchdog and dependencies. Plain data, validated.
//!
//! In a config file these are keys of the service table: `type`, `every`,
//! `ready`, `start_timeout`, `health = { ... }`, `watchdog`, `depends_on`,
//! `propagate`, `required`.

// Temporary, while issue 4 wires these types in: remove once all are read.
#![allow(dead_code)]

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUnhealthy {
    /// Kill the group and restart by policy (the default).
    #[default]
    Restart,
    /// Only report it.
    None,
}
