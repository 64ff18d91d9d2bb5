//! Event hooks (`[[hooks]]`): a command run on service events, with the
//! event as one JSON line on its stdin:
//!
//! ```text
//! {"event":"exited","service":"web","instance":"web@1","time":"2024-02-29T12:34:56.789Z",
//!  "unix_ms":1709210096789,"exit_code":1,"signal":null,"reason":"...","from":2,"to":3}
//! ```
//!
//! (one line; `event`, `time` and `unix_ms` always; `service` and `instance`
//! when the event concerns one; `exit_code` and `signal` together for
//! `exited` (one of them null); `reason` when there is one; `from` and `to`
//! for `scaled`). The environment is sentinel's, plus `SENTINEL_EVENT`,
//! `SENTINEL_SERVICE` and `SENTINEL_INSTANCE` where they apply. stdout goes
//! to /dev/null; the first line of stderr ends up in the failure message.
//!
//! A hook runs when its `events` contain the event and its `services` are
//! empty or name the event's service (an event without a service, such as
//! `reloaded`, runs only hooks without a `services` filter). At most
//! [`MAX_RUNNING`] hook commands run at once; further runs wait in a queue
//! of [`MAX_QUEUED`], in event order, and beyond that are dropped and
//! counted (logged once each time the queue overflows). A run that fails
//! (non-zero exit, signal, timeout, spawn error) is logged once with the
//! hook's command and the reason, counted, and never retried.
//!
//! # How the loop drives it
//!
//! ```text
//! let mut hooks = Hooks::new(config.hooks.clone(), base_env.clone());
//! // where an event happens (spawned, ready, exited, ...):
//! let ev = HookEventData::new(HookEvent::Exited, SystemTime::now())
//!     .service("web", Some("web@1")).exit(HookExit::Code(1)).reason("...");
//! for line in hooks.fire(&ev, now, &mut jobs, registry) { log(&line) }
//! // for each jobs.take_finished() with kind JobKind::Hook(_):
//! for line in hooks.on_finished(&finished, now, &mut jobs, registry) { log(&line) }
//! // metrics: hooks.counters() -> HookCounters { runs, failures, dropped }
//! // reload: hooks.set_hooks(new_config.hooks.clone())   (keeps counters and running runs)
//! ```
//!
//! Starting a queued run needs a finished one, so `on_finished` is where
//! the queue moves; both calls may start jobs, so the loop should refresh
//! its jobs deadline (`jobs.next_deadline()`) after them.

use std::collections::{HashMap, VecDeque};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mio::Registry;
use serde::Serialize;

use crate::config::{Hook, HookEvent};
use crate::jobs::{Finished, JobId, JobKind, JobSpec, Jobs, Outcome};

/// Hook commands running at once.
pub const MAX_RUNNING: usize = 8;
/// Hook runs waiting for a free place; more are dropped.
pub const MAX_QUEUED: usize = 256;

/// How a process ended, for `exited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookExit {
    Code(i32),
    Signal(i32),
}

/// One event, as the hooks see it. Build with [`HookEventData::new`] and
/// the setters for the fields that apply.
#[derive(Debug, Clone, PartialEq)]
pub struct HookEventData {
    pub event: HookEvent,
    pub at: SystemTime,
    pub service: Option<String>,
    /// The process's name: `web@1`, or `web` for a service without
    /// `instances`.
    pub instance: Option<String>,
    pub exit: Option<HookExit>,
    pub reason: Option<String>,
    /// `scaled`: (from, to) instance counts.
    pub scale: Option<(u32, u32)>,
}

/// The JSON line's shape.
#[derive(Serialize)]
struct Wire<'a> {
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
    time: String,
    unix_ms: u64,
    // Some(None) is a JSON null: `exited` has both keys, one of them null.
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<u32>,
}

impl HookEventData {
    pub fn new(event: HookEvent, at: SystemTime) -> HookEventData {
        HookEventData {
            event,
            at,
            service: None,
            instance: None,
            exit: None,
            reason: None,
            scale: None,
        }
    }

    pub fn service(mut self, service: &str, instance: Option<&str>) -> Self {
        self.service = Some(service.to_string());
        self.instance = instance.map(str::to_string);
        self
    }

    pub fn exit(mut self, exit: HookExit) -> Self {
        self.exit = Some(exit);
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn scaled(mut self, from: u32, to: u32) -> Self {
        self.scale = Some((from, to));
        self
    }

    /// The event as one JSON line, newline included.
    pub fn to_json_line(&self) -> Vec<u8> {
        let ms = self
            .at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let wire = Wire {
            event: self.event.name(),
            service: self.service.as_deref(),
            instance: self.instance.as_deref(),
            time: rfc3339_ms(ms),
            unix_ms: ms,
            exit_code: self.exit.map(|e| match e {
                HookExit::Code(c) => Some(c),
                HookExit::Signal(_) => None,
            }),
            signal: self.exit.map(|e| match e {
                HookExit::Code(_) => None,
                HookExit::Signal(s) => Some(crate::config::signal_name(s)),
            }),
            reason: self.reason.as_deref(),
            from: self.scale.map(|s| s.0),
            to: self.scale.map(|s| s.1),
        };
        let mut line = serde_json::to_vec(&wire).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// `exited web@1`, for messages.
    fn describe(&self) -> String {
        match self.instance.as_deref().or(self.service.as_deref()) {
            Some(who) => format!("{} {who}", self.event.name()),
            None => self.event.name().to_string(),
        }
    }
}

/// `2024-02-29T12:34:56.789Z` for milliseconds since the epoch.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Year, month, day of a day count since 1970-01-01 (the proleptic
/// Gregorian calendar, H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Counters for metrics; they never reset.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HookCounters {
    /// Runs started (or attempted: a spawn error counts as a run).
    pub runs: u64,
    /// Runs that failed: non-zero exit, signal, timeout, spawn error.
    pub failures: u64,
    /// Runs dropped because the queue was full.
    pub dropped: u64,
}

/// A run waiting for, or holding, a place.
struct Run {
    hook: usize,
    /// The hook's command for messages, and its timeout (kept with the run:
    /// [`Hooks::set_hooks`] may replace the list meanwhile).
    command: String,
    timeout: std::time::Duration,
    /// `exited web@1`.
    what: String,
    line: Vec<u8>,
    extra_env: Vec<(String, String)>,
}

pub struct Hooks {
    hooks: Vec<Hook>,
    env: Vec<(String, String)>,
    max_running: usize,
    max_queued: usize,
    running: HashMap<JobId, Run>,
    queue: VecDeque<Run>,
    counters: HookCounters,
    /// Dropping since the queue last overflowed (logged once).
    dropping: bool,
}

/// A command for messages: `notify --to ops`, arguments with spaces quoted.
fn show_command(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Hooks {
    /// `env`: the environment every hook starts from (sentinel's own, with
    /// a `PATH`).
    pub fn new(hooks: Vec<Hook>, env: Vec<(String, String)>) -> Hooks {
        Hooks::with_limits(hooks, env, MAX_RUNNING, MAX_QUEUED)
    }

    pub fn with_limits(
        hooks: Vec<Hook>,
        env: Vec<(String, String)>,
        max_running: usize,
        max_queued: usize,
    ) -> Hooks {
        Hooks {
            hooks,
            env,
            max_running: max_running.max(1),
            max_queued,
            running: HashMap::new(),
            queue: VecDeque::new(),
            counters: HookCounters::default(),
            dropping: false,
        }
    }

    /// A reloaded config's hooks. Runs under way finish as they are;
    /// queued runs of the old hooks are dropped (and counted). Counters go on.
    pub fn set_hooks(&mut self, hooks: Vec<Hook>) {
        self.counters.dropped += self.queue.len() as u64;
        self.queue.clear();
        self.dropping = false;
        self.hooks = hooks;
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    pub fn counters(&self) -> HookCounters {
        self.counters
    }

    /// Hook commands running now.
    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Hook runs waiting for a place.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Whether hook `h` runs for `event`.
    fn matches(&self, h: usize, event: &HookEventData) -> bool {
        let hook = &self.hooks[h];
        hook.events.contains(&event.event)
            && (hook.services.is_empty()
                || event
                    .service
                    .as_ref()
                    .is_some_and(|s| hook.services.contains(s)))
    }

    /// Run (or queue) every hook that wants `event`. Returns lines to log.
    pub fn fire(
        &mut self,
        event: &HookEventData,
        now: Instant,
        jobs: &mut Jobs,
        registry: &Registry,
    ) -> Vec<String> {
        let mut logs = Vec::new();
        let wanted: Vec<usize> = (0..self.hooks.len())
            .filter(|&h| self.matches(h, event))
            .collect();
        if wanted.is_empty() {
            return logs;
        }
        let line = event.to_json_line();
        let mut extra_env = vec![("SENTINEL_EVENT".to_string(), event.event.name().to_string())];
        if let Some(s) = &event.service {
            extra_env.push(("SENTINEL_SERVICE".into(), s.clone()));
        }
        if let Some(i) = &event.instance {
            extra_env.push(("SENTINEL_INSTANCE".into(), i.clone()));
        }
        for hook in wanted {
            let run = Run {
                hook,
                command: show_command(&self.hooks[hook].command),
                timeout: self.hooks[hook].timeout,
                what: event.describe(),
                line: line.clone(),
                extra_env: extra_env.clone(),
            };
            if self.running.len() < self.max_running {
                self.launch(run, now, jobs, registry, &mut logs);
            } else if self.queue.len() < self.max_queued {
                self.queue.push_back(run);
            } else {
                self.counters.dropped += 1;
                if !self.dropping {
                    self.dropping = true;
                    logs.push(format!(
                        "hooks: {} running and {} waiting; dropping hook runs (from {}) until the queue drains",
                        self.running.len(),
                        self.queue.len(),
                        run.what
                    ));
                }
            }
        }
        logs
    }

    /// A job of kind `JobKind::Hook` finished (others are ignored): count
    /// and log a failure, and start queued runs. Returns lines to log.
    pub fn on_finished(
        &mut self,
        finished: &Finished,
        now: Instant,
        jobs: &mut Jobs,
        registry: &Registry,
    ) -> Vec<String> {
        let mut logs = Vec::new();
        if !matches!(finished.kind, JobKind::Hook(_)) {
            return logs;
        }
        let Some(run) = self.running.remove(&finished.id) else {
            return logs;
        };
        let why = match &finished.outcome {
            Outcome::Ok { .. } => None,
            Outcome::Failed { why } => Some(why.clone()),
            Outcome::TimedOut => Some(format!("timed out after {:?}, killed", run.timeout)),
        };
        if let Some(why) = why {
            self.fail(&run, &why, &mut logs);
        }
        while self.running.len() < self.max_running {
            let Some(next) = self.queue.pop_front() else {
                break;
            };
            self.launch(next, now, jobs, registry, &mut logs);
        }
        if self.queue.is_empty() {
            self.dropping = false;
        }
        logs
    }

    fn fail(&mut self, run: &Run, why: &str, logs: &mut Vec<String>) {
        self.counters.failures += 1;
        logs.push(format!(
            "hook `{}` on {} failed: {why}",
            run.command, run.what
        ));
    }

    fn launch(
        &mut self,
        run: Run,
        now: Instant,
        jobs: &mut Jobs,
        registry: &Registry,
        logs: &mut Vec<String>,
    ) {
        self.counters.runs += 1;
        let hook = &self.hooks[run.hook];
        let mut env = self.env.clone();
        for (k, v) in &run.extra_env {
            env.retain(|(ek, _)| ek != k);
            env.push((k.clone(), v.clone()));
        }
        let spec = JobSpec {
            argv: &hook.command,
            env: &env,
            stdin: run.line.clone(),
            timeout: hook.timeout,
            capture_stdout: false,
        };
        match jobs.start(JobKind::Hook(run.hook), spec, now, registry) {
            Ok(id) => {
                self.running.insert(id, run);
            }
            Err(e) => self.fail(&run, &e, logs),
        }
    }
}

#[cfg(test)]
mod tests;
