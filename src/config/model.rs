//! The serde model of a config file, with defaults.

use std::path::PathBuf;

use super::isolation::{Isolation, SliceConfig};
use super::lifecycle::Lifecycle;
use super::scaling::{Hook, Scaling};
use super::secrets::{SecretsConfig, ServiceSecrets};
use std::time::Duration;

/// The config format this sentinel reads (`version = 1`). Within one
/// version, a file that was valid stays valid and means the same thing
/// (docs/stability.md).
pub const CONFIG_VERSION: u32 = 1;

/// A whole config file, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The config format version the file is written for: `version = 1`,
    /// or [`CONFIG_VERSION`] when the file does not say.
    pub version: u32,
    pub supervisor: SupervisorConfig,
    /// `[http]`; None when the table is absent (no endpoint, no metrics file).
    pub http: Option<HttpConfig>,
    /// `[slices.NAME]`, in file order.
    pub slices: Vec<(String, SliceConfig)>,
    /// Services by name, in the order they appear in the file.
    pub services: Vec<(String, ServiceConfig)>,
    /// `[[hooks]]`, in file order.
    pub hooks: Vec<Hook>,
    /// What sentinel accepts but does not fully honour (an OCI bundle's
    /// unsupported fields): `check` prints these, `run` logs them.
    pub warnings: Vec<super::Problem>,
    /// `[secrets]`: sources only, never values.
    pub secrets: SecretsConfig,
}

/// `[supervisor]`
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorConfig {
    /// The cgroup (relative to sentinel's own cgroup, or absolute from the
    /// cgroup2 root when it starts with `/`) under which services' groups
    /// are made. Default `sentinel`.
    pub cgroup_root: String,
    /// Folder for `<service>.log` files. None: no log files, ring only.
    pub log_dir: Option<PathBuf>,
    /// Control socket path (relative: against the config file's folder). None: the default (`/run/sentinel.sock` as root,
    /// `$XDG_RUNTIME_DIR/sentinel.sock` otherwise).
    pub socket: Option<PathBuf>,
    /// Uids besides sentinel's own allowed on the control socket.
    pub socket_allow_uids: Vec<u32>,
    /// Whole-shutdown deadline. Default 30s.
    pub shutdown_timeout: Duration,
    /// Echo service output on sentinel's stdout, prefixed with the name.
    /// None: on when sentinel is PID 1 (container mode), off otherwise.
    pub echo_logs: Option<bool>,
    /// Signals sentinel forwards to every service (unless a service sets
    /// its own list). Default: SIGUSR1, SIGUSR2, SIGWINCH.
    pub forward_signals: Vec<Signal>,
    /// Default log rotation for services.
    pub log: LogConfig,
}

/// `[http]`: the HTTP endpoint and the metrics file.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Address to serve on; None: no listener (a metrics file only). Port 0
    /// picks a free port (sentinel logs the one it got).
    pub listen: Option<std::net::SocketAddr>,
    /// POST start/stop/restart allowed (with `token`). Default false.
    pub control: bool,
    /// The bearer token (from `token` or `token_file`); required with `control`.
    pub token: Option<String>,
    /// Open connections at most; beyond, the longest-idle one is closed. Default 256.
    pub max_connections: usize,
    /// A keep-alive connection with nothing to do is closed after this. Default 30s.
    pub idle_timeout: Duration,
    /// A request must arrive whole within this of its first byte. Default 10s.
    pub request_timeout: Duration,
    /// Keep the CPU/memory/restarts history even when nobody watches. Default false.
    pub history: bool,
    /// Write the Prometheus text here (atomically) every `metrics_interval`.
    pub metrics_file: Option<PathBuf>,
    /// Default 15s.
    pub metrics_interval: Duration,
}

/// `log = { max_size = "10M", keep = 5 }`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// Rotate when the current file would grow past this many bytes. Default 10 MiB.
    pub max_size: u64,
    /// Rotated files kept (`name.log.1` .. `name.log.N`) besides the current one. Default 5.
    pub keep: u32,
}

/// `[services.NAME]`
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// argv; never empty after validation.
    pub command: Vec<String>,
    pub workdir: Option<PathBuf>,
    /// The final environment additions: env_file entries in order, then `env`.
    /// (sentinel's own environment is inherited underneath unless `clear_env`.)
    pub env: Vec<(String, String)>,
    /// Start from an empty environment instead of sentinel's. Default false.
    pub clear_env: bool,
    pub restart: RestartPolicy,
    pub backoff: Backoff,
    pub stop_signal: Signal,
    /// Wait this long after `stop_signal`, then SIGKILL. Default 10s.
    pub stop_timeout: Duration,
    /// Named groups this service belongs to (`@group` in commands).
    pub groups: Vec<String>,
    /// Start with the supervisor. Default true.
    pub autostart: bool,
    pub log: LogConfig,
    /// None: use `supervisor.forward_signals`.
    pub forward_signals: Option<Vec<Signal>>,
    /// cgroup, priorities, identity, namespaces, capabilities, seccomp.
    pub isolation: Isolation,
    /// Type, readiness, health check, watchdog, dependencies.
    pub lifecycle: Lifecycle,
    /// Instances, shared sockets, autoscaling, start limit, critical, watch.
    pub scaling: Scaling,
    /// The secrets it gets as files and as variables.
    pub secrets: ServiceSecrets,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

/// Exponential backoff between restarts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// First delay. Default 100ms. Zero means restart at once.
    pub initial: Duration,
    /// Ceiling. Default 30s.
    pub max: Duration,
    /// Growth per consecutive failure. Default 2.0 (>= 1.0).
    pub factor: f64,
    /// A run that lasted this long resets the delay to `initial`. Default 10s.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            factor: 2.0,
            reset_after: Duration::from_secs(10),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_size: 10 * 1024 * 1024,
            keep: 5,
        }
    }
}

/// A signal number, parsed from `"SIGTERM"`, `"TERM"` or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(pub i32);

impl Signal {
    pub const TERM: Signal = Signal(libc::SIGTERM);
    pub const KILL: Signal = Signal(libc::SIGKILL);
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::values::signal_name(self.0))
    }
}
