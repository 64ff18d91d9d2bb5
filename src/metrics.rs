//! Samples and Prometheus text exposition.
//!
//! Pure pieces: what a service's resources look like ([`ResourceStats`],
//! every field optional so a source fills what it knows), a [`Monotonic`]
//! adapter that keeps counters from going backwards when a process or cgroup
//! is replaced, the text format 0.0.4 renderer ([`render`]), a bounded
//! [`History`] of samples for sparklines, and the `/proc` fallback sampler.
//!
//! Where numbers come from: the event loop fills [`ResourceStats`] per
//! service at scrape time. Today the source is `/proc/PID` of the service's
//! main process ([`proc_stats`]: CPU of it and its reaped children, resident
//! memory); the cgroup v2 source (memory.current/peak, memory.events
//! oom_kill, cpu.stat usage/throttled, pids.current, io.stat) fills the
//! same struct, and whatever a source leaves `None` is simply not emitted.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::control::{ServiceStatus, SupervisorStatus};

/// A service's resources at one instant. Counters are as the source reads
/// them (they may restart from zero with a new process); [`Monotonic`]
/// turns them into never-resetting totals for exposition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceStats {
    /// CPU time used, user + system, in seconds (counter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Time throttled by `cpu.max`, in seconds (counter; cgroup only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_throttled_seconds: Option<f64>,
    /// Memory in use, bytes (cgroup: memory.current; process: resident set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Highest memory use seen, bytes (cgroup: memory.peak).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_peak_bytes: Option<u64>,
    /// OOM kills (counter; cgroup: memory.events oom_kill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_kills: Option<u64>,
    /// Processes and threads (cgroup: pids.current).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// Bytes read from block devices (counter; cgroup: io.stat rbytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_read_bytes: Option<u64>,
    /// Bytes written to block devices (counter; cgroup: io.stat wbytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_write_bytes: Option<u64>,
}

/// The kernel's USER_HZ: `/proc/PID/stat` times are in 1/100 s on every
/// architecture (it is ABI, unlike the internal HZ).
const USER_HZ: f64 = 100.0;

/// What `/proc/PID` tells about a service's main process: CPU of the
/// process and of the children it has reaped, resident memory, threads.
/// Empty when the process is gone.
pub fn proc_stats(pid: i32) -> ResourceStats {
    let mut s = ResourceStats::default();
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Fields after the `(comm)`, which may itself hold spaces and parens.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // f[0] is field 3 (state); utime..cstime are fields 14..17.
            let ticks: u64 = (11..15)
                .filter_map(|i| f.get(i).and_then(|v| v.parse::<u64>().ok()))
                .sum();
            s.cpu_seconds = Some(ticks as f64 / USER_HZ);
        }
    }
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        for line in status.lines() {
            let num = |l: &str| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            };
            if line.starts_with("VmRSS:") {
                s.memory_bytes = num(line).map(|kb| kb * 1024);
            } else if line.starts_with("VmHWM:") {
                s.memory_peak_bytes = num(line).map(|kb| kb * 1024);
            } else if line.starts_with("Threads:") {
                s.pids = num(line);
            }
        }
    }
    s
}

/// One counter made monotonic across process (or cgroup) replacement: a
/// new `run` (pid, instance), or a value lower than the last, starts a new
/// segment on top of everything counted before. The total never decreases;
/// what a process used between its last sample and its exit is not seen.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Monotonic {
    run: Option<i64>,
    base: f64,
    last: f64,
}

impl Monotonic {
    /// Feed the source's reading for `run`; returns the total.
    pub fn update(&mut self, run: i64, value: f64) -> f64 {
        if self.run != Some(run) || value < self.last {
            self.base += self.last;
            self.last = 0.0;
            self.run = Some(run);
        }
        self.last = value;
        self.total()
    }

    pub fn total(&self) -> f64 {
        self.base + self.last
    }
}

/// The never-resetting totals of one service's counters.
#[derive(Debug, Clone, Default)]
pub struct ServiceCounters {
    pub cpu: Monotonic,
    pub throttled: Monotonic,
    pub oom: Monotonic,
    pub io_read: Monotonic,
    pub io_write: Monotonic,
}

impl ServiceCounters {
    /// Replace the counters in `stats` (as the source read them for `run`)
    /// with their monotonic totals.
    pub fn apply(&mut self, run: i64, stats: &mut ResourceStats) {
        fn f(m: &mut Monotonic, run: i64, v: &mut Option<f64>) {
            if let Some(x) = v {
                *x = m.update(run, *x);
            } else if m.run.is_some() {
                // The source has nothing now (process gone): keep the total.
                *v = Some(m.total());
            }
        }
        fn u(m: &mut Monotonic, run: i64, v: &mut Option<u64>) {
            let mut x = v.map(|x| x as f64);
            f(m, run, &mut x);
            *v = x.map(|x| x.round() as u64);
        }
        f(&mut self.cpu, run, &mut stats.cpu_seconds);
        f(&mut self.throttled, run, &mut stats.cpu_throttled_seconds);
        u(&mut self.oom, run, &mut stats.oom_kills);
        u(&mut self.io_read, run, &mut stats.io_read_bytes);
        u(&mut self.io_write, run, &mut stats.io_write_bytes);
    }
}

/// Every state a service can be in, for one-hot and by-state series (a
/// state with no service still gets its 0, so a graph has no gaps).
pub const STATES: [&str; 9] = [
    "stopped",
    "waiting",
    "starting",
    "running",
    "stopping",
    "backoff",
    "exited",
    "completed",
    "failed",
];

/// A service with instances, summed over its units (`web` over `web@0`,
/// `web@1` ...). Each unit is a service of its own everywhere else; this is
/// the total the API, the dashboard and the metrics show beside them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceTotal {
    pub service: String,
    /// Instances wanted now.
    pub instances: u32,
    /// Instances whose process is running.
    pub running: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_range: Option<String>,
    /// The last scaling decision and its reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_scale: Option<String>,
    /// The shown instances' names, in instance order.
    pub units: Vec<String>,
    /// Their positions in the list `totals` was given.
    #[serde(skip)]
    pub index: Vec<usize>,
}

/// Every service with instances among `units` (all of them, hidden ones
/// too), in the order of their first unit. Hidden units are not counted;
/// a service whose units are all hidden is left out (it was removed by a
/// reload) unless it wants 0 instances (scaled to zero: still there).
pub fn totals(units: &[ServiceStatus]) -> Vec<ServiceTotal> {
    let mut out: Vec<ServiceTotal> = Vec::new();
    let mut at: BTreeMap<&str, usize> = BTreeMap::new();
    let mut order: Vec<Vec<(u32, usize)>> = Vec::new();
    for (i, u) in units.iter().enumerate() {
        let Some(service) = u.service.as_deref() else {
            continue;
        };
        // Every unit carries its service's numbers: take the first's.
        let k = *at.entry(service).or_insert_with(|| {
            out.push(ServiceTotal {
                service: service.to_string(),
                instances: u.instances.unwrap_or(0),
                instance_range: u.instance_range.clone(),
                last_scale: u.last_scale.clone(),
                ..Default::default()
            });
            order.push(Vec::new());
            out.len() - 1
        });
        let t = &mut out[k];
        if u.hidden {
            continue;
        }
        order[k].push((u.instance.unwrap_or(0), i));
        if u.state == "running" {
            t.running += 1;
        }
    }
    for (t, mut o) in out.iter_mut().zip(order) {
        o.sort_unstable();
        t.units = o.iter().map(|&(_, i)| units[i].name.clone()).collect();
        t.index = o.into_iter().map(|(_, i)| i).collect();
    }
    out.retain(|t| !t.units.is_empty() || t.instances == 0);
    out
}

/// Everything one exposition shows. `services[i].stats` holds counters
/// already made monotonic.
pub struct Input<'a> {
    pub version: &'a str,
    pub supervisor: &'a SupervisorStatus,
    /// The units shown (hidden ones left out).
    pub services: &'a [ServiceStatus],
    /// Responses by HTTP status code, since start.
    pub http_requests: &'a BTreeMap<u16, u64>,
    /// Services with instances, summed ([`totals`]).
    pub totals: &'a [ServiceTotal],
    /// Scaling decisions so far: (service, "up"/"down", count).
    pub scale_events: &'a [(String, &'static str, u64)],
    pub hooks: crate::hooks::HookCounters,
}

/// `\`, `"` and newline escaped, as label values need.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value as the text format writes it.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Writes one metric family at a time: HELP and TYPE once, then samples.
struct Writer {
    out: String,
}

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(val));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&value(v));
        self.out.push('\n');
    }

    /// A per-service family, emitted only if some service has a value.
    fn per_service(
        &mut self,
        services: &[ServiceStatus],
        name: &str,
        kind: &str,
        help: &str,
        get: impl Fn(&ServiceStatus) -> Option<f64>,
    ) {
        let values: Vec<(&str, f64)> = services
            .iter()
            .filter_map(|s| get(s).map(|v| (s.name.as_str(), v)))
            .collect();
        if values.is_empty() {
            return;
        }
        self.family(name, kind, help);
        for (svc, v) in values {
            self.sample(name, &[("service", svc)], v);
        }
    }
}

fn stat<T: Copy + Into<f64>>(
    f: impl Fn(&ResourceStats) -> Option<T>,
) -> impl Fn(&ServiceStatus) -> Option<f64> {
    move |s| s.stats.as_ref().and_then(&f).map(Into::into)
}

/// The Prometheus text format (version 0.0.4) for everything in `input`.
pub fn render(input: &Input<'_>) -> String {
    let mut w = Writer {
        out: String::with_capacity(4096 + input.services.len() * 1024),
    };
    let sup = input.supervisor;
    w.family(
        "sentinel_build_info",
        "gauge",
        "sentinel's version; the value is always 1.",
    );
    w.sample("sentinel_build_info", &[("version", input.version)], 1.0);
    w.family(
        "sentinel_uptime_seconds",
        "gauge",
        "Seconds since sentinel started.",
    );
    w.sample(
        "sentinel_uptime_seconds",
        &[],
        sup.uptime_ms as f64 / 1000.0,
    );
    w.family(
        "sentinel_services",
        "gauge",
        "Services by state (every state listed, 0 when none).",
    );
    for st in STATES {
        let n = input.services.iter().filter(|s| s.state == st).count();
        w.sample("sentinel_services", &[("state", st)], n as f64);
    }
    w.family(
        "sentinel_orphans_reaped_total",
        "counter",
        "Adopted orphan processes reaped since start.",
    );
    w.sample(
        "sentinel_orphans_reaped_total",
        &[],
        sup.orphans_reaped as f64,
    );
    w.family(
        "sentinel_http_requests_total",
        "counter",
        "HTTP responses sent, by status code.",
    );
    if input.http_requests.is_empty() {
        w.sample("sentinel_http_requests_total", &[("code", "200")], 0.0);
    }
    for (code, n) in input.http_requests {
        w.sample(
            "sentinel_http_requests_total",
            &[("code", &code.to_string())],
            *n as f64,
        );
    }

    let svcs = input.services;
    w.per_service(
        svcs,
        "sentinel_log_bytes_written_total",
        "counter",
        "Bytes of service output captured (lines with their newline).",
        |s| Some(s.log_bytes as f64),
    );
    w.per_service(
        svcs,
        "sentinel_log_bytes_dropped_total",
        "counter",
        "Bytes of service output that could not be written to the log file.",
        |s| Some(s.log_dropped_bytes as f64),
    );
    w.per_service(
        svcs,
        "sentinel_service_up",
        "gauge",
        "1 when the service's process is running, else 0.",
        |s| Some(if s.state == "running" { 1.0 } else { 0.0 }),
    );
    if !svcs.is_empty() {
        w.family(
            "sentinel_service_state",
            "gauge",
            "The service's state: 1 for the current one, 0 for the others.",
        );
        for s in svcs {
            for st in STATES {
                w.sample(
                    "sentinel_service_state",
                    &[("service", &s.name), ("state", st)],
                    if s.state == st { 1.0 } else { 0.0 },
                );
            }
        }
    }
    w.per_service(
        svcs,
        "sentinel_service_restarts_total",
        "counter",
        "Automatic restarts after exits and failed starts.",
        |s| Some(s.restarts as f64),
    );
    w.per_service(
        svcs,
        "sentinel_service_last_exit_code",
        "gauge",
        "The last exit code (128 + N when killed by signal N).",
        |s| s.last_exit_code.map(f64::from),
    );
    w.per_service(
        svcs,
        "sentinel_service_start_time_seconds",
        "gauge",
        "When the running process started, seconds since the Unix epoch.",
        |s| s.started_at_ms.map(|ms| ms as f64 / 1000.0),
    );
    w.per_service(
        svcs,
        "sentinel_service_cpu_seconds_total",
        "counter",
        "CPU time used (user + system), seconds, over all runs.",
        stat(|r| r.cpu_seconds),
    );
    w.per_service(
        svcs,
        "sentinel_service_cpu_throttled_seconds_total",
        "counter",
        "Time throttled by the CPU limit, seconds, over all runs.",
        stat(|r| r.cpu_throttled_seconds),
    );
    w.per_service(
        svcs,
        "sentinel_service_memory_bytes",
        "gauge",
        "Memory in use, bytes.",
        stat(|r| r.memory_bytes.map(|v| v as f64)),
    );
    w.per_service(
        svcs,
        "sentinel_service_memory_peak_bytes",
        "gauge",
        "Highest memory use, bytes.",
        stat(|r| r.memory_peak_bytes.map(|v| v as f64)),
    );
    w.per_service(
        svcs,
        "sentinel_service_oom_kills_total",
        "counter",
        "Processes killed by the OOM killer.",
        stat(|r| r.oom_kills.map(|v| v as f64)),
    );
    w.per_service(
        svcs,
        "sentinel_service_pids",
        "gauge",
        "Processes and threads.",
        stat(|r| r.pids.map(|v| v as f64)),
    );
    w.per_service(
        svcs,
        "sentinel_service_io_read_bytes_total",
        "counter",
        "Bytes read from block devices.",
        stat(|r| r.io_read_bytes.map(|v| v as f64)),
    );
    w.per_service(
        svcs,
        "sentinel_service_io_write_bytes_total",
        "counter",
        "Bytes written to block devices.",
        stat(|r| r.io_write_bytes.map(|v| v as f64)),
    );
    w.per_service(
        svcs,
        "sentinel_service_ready",
        "gauge",
        "1 when the service is ready (running and past its readiness check, or a completed oneshot).",
        |s| Some(if matches!(s.state.as_str(), "running" | "completed") { 1.0 } else { 0.0 }),
    );
    w.per_service(
        svcs,
        "sentinel_service_healthy",
        "gauge",
        "1 when the health check passes, 0 when it is unhealthy (services with a check).",
        |s| s.healthy.map(|h| if h { 1.0 } else { 0.0 }),
    );
    w.per_service(
        svcs,
        "sentinel_service_health_checks_total",
        "counter",
        "Health checks run, over all runs.",
        |s| s.health.as_ref().map(|h| h.checks_total as f64),
    );
    w.per_service(
        svcs,
        "sentinel_service_health_check_failures_total",
        "counter",
        "Health checks that failed, over all runs.",
        |s| s.health.as_ref().map(|h| h.failures_total as f64),
    );
    w.per_service(
        svcs,
        "sentinel_service_health_check_duration_seconds",
        "gauge",
        "How long the last health check took.",
        |s| {
            s.health
                .as_ref()
                .and_then(|h| h.last_duration_ms)
                .map(|ms| ms as f64 / 1000.0)
        },
    );
    if !input.totals.is_empty() {
        w.family(
            "sentinel_service_instances",
            "gauge",
            "Instances wanted, for services with instances (each instance is also a service of its own).",
        );
        for t in input.totals {
            w.sample(
                "sentinel_service_instances",
                &[("service", &t.service)],
                f64::from(t.instances),
            );
        }
        w.family(
            "sentinel_service_instances_running",
            "gauge",
            "Instances whose process is running, for services with instances.",
        );
        for t in input.totals {
            w.sample(
                "sentinel_service_instances_running",
                &[("service", &t.service)],
                f64::from(t.running),
            );
        }
    }
    // Both directions of every service with instances start at 0, so a
    // first decision is an increase and not a new series.
    let mut scaled: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for t in input.totals {
        for d in ["up", "down"] {
            scaled.insert((t.service.as_str(), d), 0);
        }
    }
    for (svc, d, n) in input.scale_events {
        *scaled.entry((svc.as_str(), d)).or_insert(0) += n;
    }
    if !scaled.is_empty() {
        w.family(
            "sentinel_scale_events_total",
            "counter",
            "Scaling decisions (by command, the API or autoscaling), by direction.",
        );
        for ((svc, d), n) in scaled {
            w.sample(
                "sentinel_scale_events_total",
                &[("service", svc), ("direction", d)],
                n as f64,
            );
        }
    }
    for (name, help, n) in [
        (
            "sentinel_hook_runs_total",
            "Event hook runs started (a spawn error counts as a run).",
            input.hooks.runs,
        ),
        (
            "sentinel_hook_failures_total",
            "Event hook runs that failed: non-zero exit, signal, timeout, spawn error.",
            input.hooks.failures,
        ),
        (
            "sentinel_hook_dropped_total",
            "Event hook runs dropped because the queue was full.",
            input.hooks.dropped,
        ),
    ] {
        w.family(name, "counter", help);
        w.sample(name, &[], n as f64);
    }
    w.out
}

/// One point of a service's history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub time_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    pub restarts: u64,
}

/// `sentinel stats` and `/api/v1/stats/NAME`: the current numbers and the
/// history within the asked window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsReply {
    pub service: String,
    pub state: String,
    pub restarts: u64,
    pub current: ResourceStats,
    /// Time between samples.
    pub interval_ms: u64,
    pub samples: Vec<Sample>,
}

/// A bounded history of samples per service, oldest first.
#[derive(Debug)]
pub struct History {
    pub interval: Duration,
    cap: usize,
    per_service: Vec<VecDeque<Sample>>,
}

impl History {
    /// `span` of history at one sample per `interval`.
    pub fn new(services: usize, interval: Duration, span: Duration) -> Self {
        let cap = (span.as_millis() / interval.as_millis().max(1)).max(1) as usize;
        History {
            interval,
            cap,
            per_service: vec![VecDeque::new(); services],
        }
    }

    /// Room for `services` (units made since: scaling, reload).
    pub fn resize(&mut self, services: usize) {
        if self.per_service.len() < services {
            self.per_service.resize(services, VecDeque::new());
        }
    }

    pub fn push(&mut self, service: usize, sample: Sample) {
        if let Some(q) = self.per_service.get_mut(service) {
            if q.len() >= self.cap {
                q.pop_front();
            }
            q.push_back(sample);
        }
    }

    /// Samples no older than `window` before `now_ms`, oldest first.
    pub fn window(&self, service: usize, window: Duration, now_ms: u64) -> Vec<Sample> {
        let from = now_ms.saturating_sub(window.as_millis() as u64);
        self.per_service
            .get(service)
            .map(|q| q.iter().filter(|s| s.time_ms >= from).copied().collect())
            .unwrap_or_default()
    }

    /// The longest window kept.
    pub fn span(&self) -> Duration {
        self.interval * self.cap as u32
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, state: &str) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            state: state.into(),
            pid: Some(42),
            uptime_ms: Some(1500),
            restarts: 3,
            last_exit: Some("exit 1".into()),
            last_exit_code: Some(1),
            last_error: None,
            groups: vec![],
            log_dropped_bytes: 7,
            log_bytes: 100,
            started_at_ms: Some(1_700_000_000_500),
            cgroup: None,
            waiting_for: None,
            healthy: None,
            health: None,
            notify_status: None,
            required: true,
            stats: None,
            ..Default::default()
        }
    }

    fn sup() -> SupervisorStatus {
        SupervisorStatus {
            pid: 1,
            role: "subreaper".into(),
            uptime_ms: 12_345,
            orphans_reaped: 2,
            shutting_down: false,
        }
    }

    #[test]
    fn renders_families_once_with_help_type_and_escaped_labels() {
        let mut a = svc("web", "running");
        a.stats = Some(ResourceStats {
            cpu_seconds: Some(1.25),
            memory_bytes: Some(4096),
            ..Default::default()
        });
        let b = svc("we\"ird\\name\n", "backoff");
        let mut codes = BTreeMap::new();
        codes.insert(200, 5);
        codes.insert(404, 1);
        let text = render(&Input {
            version: "0.1.0",
            supervisor: &sup(),
            services: &[a, b],
            http_requests: &codes,
            totals: &[],
            scale_events: &[],
            hooks: Default::default(),
        });
        for family in [
            "sentinel_build_info",
            "sentinel_service_state",
            "sentinel_service_restarts_total",
            "sentinel_service_cpu_seconds_total",
        ] {
            assert_eq!(
                text.matches(&format!("# TYPE {family} ")).count(),
                1,
                "{family} in\n{text}"
            );
        }
        assert!(text.contains("sentinel_build_info{version=\"0.1.0\"} 1\n"));
        assert!(text.contains("sentinel_uptime_seconds 12.345\n"));
        assert!(text.contains("sentinel_services{state=\"running\"} 1\n"));
        assert!(text.contains("sentinel_services{state=\"failed\"} 0\n"));
        assert!(text.contains("sentinel_service_up{service=\"web\"} 1\n"));
        assert!(text.contains("sentinel_service_state{service=\"web\",state=\"running\"} 1\n"));
        assert!(text.contains("sentinel_service_state{service=\"web\",state=\"stopped\"} 0\n"));
        assert!(
            text.contains("sentinel_service_restarts_total{service=\"we\\\"ird\\\\name\\n\"} 3\n")
        );
        assert!(
            text.contains("sentinel_service_start_time_seconds{service=\"web\"} 1700000000.5\n")
        );
        assert!(text.contains("sentinel_service_cpu_seconds_total{service=\"web\"} 1.25\n"));
        assert!(text.contains("sentinel_http_requests_total{code=\"404\"} 1\n"));
        // Absent stats are not emitted at all.
        assert!(!text.contains("oom_kills"), "{text}");
        assert!(
            !text.contains("cpu_seconds_total{service=\"we\\\""),
            "{text}"
        );
        // Every sample line belongs to the family declared last.
        let mut family = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap().to_string();
            } else if !line.starts_with('#') {
                assert!(line.starts_with(&family), "{line} outside {family}");
            }
        }
    }

    fn unit(service: &str, k: u32, state: &str, hidden: bool) -> ServiceStatus {
        let mut u = svc(&format!("{service}@{k}"), state);
        u.service = Some(service.into());
        u.instance = Some(k);
        u.instances = Some(3);
        u.instance_range = Some("1-4".into());
        u.last_scale = Some(format!(
            "{service}: 1 -> 3 instances (by command; range 1-4)"
        ));
        u.hidden = hidden;
        u
    }

    #[test]
    fn totals_sum_the_shown_instances_in_instance_order() {
        // Ids in the order units were made: web@2 after db, a hidden web@3.
        let units = [
            unit("web", 0, "running", false),
            svc("db", "running"),
            unit("web", 3, "stopped", true),
            unit("web", 2, "starting", false),
            unit("web", 1, "running", false),
            // Removed by a reload: every unit hidden, still wanting 2.
            unit("old", 0, "stopped", true),
        ];
        let t = totals(&units);
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(t[0].service, "web");
        assert_eq!((t[0].instances, t[0].running), (3, 2));
        assert_eq!(t[0].units, ["web@0", "web@1", "web@2"]);
        assert_eq!(t[0].index, [0, 4, 3]);
        assert_eq!(t[0].instance_range.as_deref(), Some("1-4"));
        // Scaled to zero: still a service, with no instance shown.
        let mut zero = unit("q", 0, "stopped", true);
        zero.instances = Some(0);
        let t = totals(&[zero]);
        assert_eq!((t.len(), t[0].instances, t[0].units.len()), (1, 0, 0));
    }

    #[test]
    fn instances_scale_events_and_hooks_are_series() {
        let units = [
            unit("web", 0, "running", false),
            unit("web", 1, "backoff", false),
            unit("web", 2, "stopped", true),
            svc("db", "running"),
        ];
        let shown: Vec<ServiceStatus> = units.iter().filter(|u| !u.hidden).cloned().collect();
        let text = render(&Input {
            version: "0.1.0",
            supervisor: &sup(),
            services: &shown,
            http_requests: &BTreeMap::new(),
            totals: &totals(&units),
            scale_events: &[("web".into(), "up", 2), ("gone".into(), "down", 1)],
            hooks: crate::hooks::HookCounters {
                runs: 5,
                failures: 2,
                dropped: 1,
            },
        });
        assert!(
            text.contains("sentinel_service_instances{service=\"web\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("sentinel_service_instances_running{service=\"web\"} 1\n"));
        assert!(!text.contains("sentinel_service_instances{service=\"db\"}"));
        assert!(text.contains("sentinel_service_up{service=\"web@1\"} 0\n"));
        assert!(
            !text.contains("web@2"),
            "hidden units are not shown:\n{text}"
        );
        assert!(text.contains("sentinel_scale_events_total{service=\"web\",direction=\"up\"} 2\n"));
        assert!(
            text.contains("sentinel_scale_events_total{service=\"web\",direction=\"down\"} 0\n")
        );
        assert!(
            text.contains("sentinel_scale_events_total{service=\"gone\",direction=\"down\"} 1\n")
        );
        assert!(text.contains("sentinel_hook_runs_total 5\n"));
        assert!(text.contains("sentinel_hook_failures_total 2\n"));
        assert!(text.contains("sentinel_hook_dropped_total 1\n"));
        for family in ["sentinel_service_instances", "sentinel_scale_events_total"] {
            assert_eq!(text.matches(&format!("# TYPE {family} ")).count(), 1);
            assert_eq!(text.matches(&format!("# HELP {family} ")).count(), 1);
        }
        // Without instances, no empty family.
        let text = render(&Input {
            version: "0.1.0",
            supervisor: &sup(),
            services: &[svc("db", "running")],
            http_requests: &BTreeMap::new(),
            totals: &[],
            scale_events: &[],
            hooks: Default::default(),
        });
        assert!(!text.contains("sentinel_service_instances"), "{text}");
        assert!(!text.contains("sentinel_scale_events_total"), "{text}");
        assert!(text.contains("sentinel_hook_runs_total 0\n"));
    }

    #[test]
    fn monotonic_counters_survive_process_replacement() {
        let mut m = Monotonic::default();
        assert_eq!(m.update(1, 2.0), 2.0);
        assert_eq!(m.update(1, 5.0), 5.0);
        // A new process starts from zero: the total goes on.
        assert_eq!(m.update(2, 0.5), 5.5);
        assert_eq!(m.update(2, 1.0), 6.0);
        // A reset within one run (a recreated cgroup) too.
        assert_eq!(m.update(2, 0.25), 6.25);
        let mut c = ServiceCounters::default();
        let mut s = ResourceStats {
            cpu_seconds: Some(3.0),
            ..Default::default()
        };
        c.apply(7, &mut s);
        let mut gone = ResourceStats::default();
        c.apply(7, &mut gone);
        assert_eq!(gone.cpu_seconds, Some(3.0), "the total is kept when gone");
        assert_eq!(gone.oom_kills, None, "never seen: still absent");
    }

    #[test]
    fn the_grafana_dashboard_uses_only_metrics_that_exist() {
        let mut a = svc("web", "running");
        a.stats = Some(ResourceStats {
            cpu_seconds: Some(1.0),
            cpu_throttled_seconds: Some(1.0),
            memory_bytes: Some(1),
            memory_peak_bytes: Some(1),
            oom_kills: Some(1),
            pids: Some(1),
            io_read_bytes: Some(1),
            io_write_bytes: Some(1),
        });
        let mut b = svc("web@0", "running");
        b.service = Some("web".into());
        b.instance = Some(0);
        b.instances = Some(1);
        let units = [a, b];
        let text = render(&Input {
            version: "0.1.0",
            supervisor: &sup(),
            services: &units,
            http_requests: &BTreeMap::new(),
            totals: &totals(&units),
            scale_events: &[],
            hooks: Default::default(),
        });
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
            .collect();
        let dashboard = include_str!("../docs/grafana-dashboard.json");
        let doc: serde_json::Value = serde_json::from_str(dashboard).unwrap();
        assert_eq!(doc["uid"], "sentinel-overview");
        let mut used = 0;
        for word in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("sentinel_") {
                assert!(families.contains(&word), "{word} is not emitted");
                used += 1;
            }
        }
        assert!(used > 15);
    }

    #[test]
    fn values_print_as_the_format_wants() {
        assert_eq!(value(3.0), "3");
        assert_eq!(value(0.5), "0.5");
        assert_eq!(value(f64::NAN), "NaN");
        assert_eq!(value(f64::INFINITY), "+Inf");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn history_is_bounded_and_windowed() {
        let mut h = History::new(1, Duration::from_secs(2), Duration::from_secs(10));
        assert_eq!(h.span(), Duration::from_secs(10));
        for i in 0..8u64 {
            h.push(
                0,
                Sample {
                    time_ms: i * 2000,
                    cpu_seconds: None,
                    memory_bytes: Some(i),
                    restarts: 0,
                },
            );
        }
        let all = h.window(0, Duration::from_secs(3600), 14_000);
        assert_eq!(all.len(), 5);
        assert_eq!(all[0].time_ms, 6000);
        let recent = h.window(0, Duration::from_secs(4), 14_000);
        assert_eq!(
            recent.iter().map(|s| s.time_ms).collect::<Vec<_>>(),
            [10_000, 12_000, 14_000]
        );
        assert!(h.window(5, Duration::from_secs(4), 0).is_empty());
    }

    #[test]
    fn proc_stats_reads_this_process() {
        let s = proc_stats(std::process::id() as i32);
        assert!(s.cpu_seconds.is_some());
        assert!(s.memory_bytes.unwrap() > 0);
        assert!(s.pids.unwrap() >= 1);
        assert_eq!(proc_stats(i32::MAX), ResourceStats::default());
    }
}
