//! The rules engine: samples in, decisions out. Pure; the clock is the
//! `now` every call gets.

// Wired into the event loop by the lead (issue 8).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::{Autoscale, InstanceRange, Metric, PolicyExec, Rule, Threshold};

/// What one instance may use: the denominators of the `cpu` share and
/// of a `memory` share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// CPUs per instance: `cpu_max` (`"1.5"`, `"50ms/100ms"` = 0.5), else 1.0.
    pub cpu_quota: f64,
    /// `memory_max` per instance, bytes.
    pub memory_max: Option<u64>,
}

impl Limits {
    /// From a service's configured limits.
    pub fn from_config(limits: &crate::config::Limits) -> Limits {
        let cpu_quota = match limits.cpu_max {
            Some(c) if c.quota_us != u64::MAX && c.quota_us > 0 && c.period_us > 0 => {
                c.quota_us as f64 / c.period_us as f64
            }
            _ => 1.0,
        };
        Limits {
            cpu_quota,
            memory_max: limits.memory_max,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            cpu_quota: 1.0,
            memory_max: None,
        }
    }
}

/// One reading of a service's cgroups (see [`super::read_sample`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Instances running when it was taken.
    pub instances: u32,
    /// CPU time of the service's group, microseconds, cumulative
    /// (`cpu.stat` `usage_usec`). None: unreadable.
    pub cpu_usage_usec: Option<u64>,
    /// `memory.current` of each instance that had one, bytes.
    pub memory_current: Vec<u64>,
    /// PSI `some avg10` of the service's group, percent. None: no such
    /// file (a kernel without PSI).
    pub cpu_pressure_avg10: Option<f64>,
    pub memory_pressure_avg10: Option<f64>,
    pub io_pressure_avg10: Option<f64>,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Leave the count as it is. `why` is the status line
    /// (`cpu 0.55, memory 120M`, `cooldown: 42s left`). `notable`: it says
    /// something new worth a log line (a metric without data, a bound
    /// reached, a policy's bad answer); otherwise it only repeats.
    Keep { why: String, notable: bool },
    /// Run `to` instances. `reason`: `cpu 0.93 > 0.80 for 30s: 2 -> 3`.
    Scale { to: u32, reason: String },
}

impl Decision {
    /// The line for logs and status.
    pub fn text(&self) -> &str {
        match self {
            Decision::Keep { why, .. } => why,
            Decision::Scale { reason, .. } => reason,
        }
    }
}

/// A sample and when it was taken.
#[derive(Debug, Clone)]
pub(super) struct Stamped {
    pub at: Instant,
    pub sample: Sample,
}

/// A rule's conditions over time.
#[derive(Debug, Clone, Default)]
struct RuleState {
    /// Since when the `up` condition has held (None: it does not).
    up_since: Option<Instant>,
    down_since: Option<Instant>,
    /// Its missing data has been reported (reset when data comes back).
    missing_said: bool,
}

/// The window's means, None where there is no data.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub(super) struct Means {
    pub cpu: Option<f64>,
    pub memory: Option<f64>,
    pub memory_share: Option<f64>,
    pub cpu_pressure: Option<f64>,
    pub memory_pressure: Option<f64>,
    pub io_pressure: Option<f64>,
}

/// A rule's metric as compared with one threshold.
#[derive(Debug, Clone, PartialEq)]
enum Reading {
    Value(f64),
    /// Not enough samples yet (no notice).
    NotYet,
    /// No data, and none will come: why (said once).
    Missing(String),
}

/// Which bound a wanted change ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocked {
    Max,
    Min,
}

/// One service's autoscaler.
#[derive(Debug)]
pub struct Autoscaler {
    service: String,
    cfg: Autoscale,
    range: InstanceRange,
    limits: Limits,
    samples: VecDeque<Stamped>,
    states: Vec<RuleState>,
    last_change: Option<Instant>,
    blocked: Option<Blocked>,
}

impl Autoscaler {
    /// The autoscaler of `service` (its name goes to the policy's input).
    pub fn new(service: &str, cfg: &Autoscale, range: InstanceRange, limits: Limits) -> Self {
        Autoscaler {
            service: service.to_string(),
            cfg: cfg.clone(),
            range,
            limits,
            samples: VecDeque::new(),
            states: vec![RuleState::default(); cfg.rules.len()],
            last_change: None,
            blocked: None,
        }
    }

    /// How often to sample (and evaluate).
    pub fn interval(&self) -> Duration {
        self.cfg.interval
    }

    pub fn range(&self) -> InstanceRange {
        self.range
    }

    /// The policy command, when the policy decides instead of the rules.
    pub fn policy(&self) -> Option<&PolicyExec> {
        self.cfg.policy.as_ref()
    }

    /// A new range (`sentinel scale web 2-6`). A count now outside it is
    /// brought inside by the next decision, cooldown or not.
    pub fn set_range(&mut self, range: InstanceRange) {
        self.range = range;
        self.blocked = None;
    }

    /// The count changed at `now` by other means (by hand): cooldown
    /// starts, samples and conditions start over. Decisions to scale
    /// call this themselves.
    pub fn changed(&mut self, now: Instant) {
        self.last_change = Some(now);
        self.samples.clear();
        for s in &mut self.states {
            s.up_since = None;
            s.down_since = None;
        }
        self.blocked = None;
    }

    /// How much of the cooldown is left at `now` (None: none). The loop
    /// need not run a policy while there is.
    pub fn cooldown_left(&self, now: Instant) -> Option<Duration> {
        let end = self.last_change? + self.cfg.cooldown;
        (end > now).then(|| end - now)
    }

    /// Add a sample taken at `now`; samples older than `window` go.
    pub fn record(&mut self, now: Instant, sample: Sample) {
        if self.samples.back().is_some_and(|s| s.at > now) {
            return;
        }
        self.samples.push_back(Stamped { at: now, sample });
        self.trim(now);
    }

    /// Keep only the samples within `window` of `now`.
    fn trim(&mut self, now: Instant) {
        let window = self.cfg.window;
        while self
            .samples
            .front()
            .is_some_and(|s| now.saturating_duration_since(s.at) > window)
        {
            self.samples.pop_front();
        }
    }

    pub(super) fn samples(&self) -> &VecDeque<Stamped> {
        &self.samples
    }

    /// The samples within `window` of `now`, oldest first.
    pub(super) fn in_window(&self, now: Instant) -> Vec<&Stamped> {
        let window = self.cfg.window;
        self.samples
            .iter()
            .filter(|s| now.saturating_duration_since(s.at) <= window)
            .collect()
    }

    pub(super) fn service(&self) -> &str {
        &self.service
    }

    pub(super) fn limits(&self) -> Limits {
        self.limits
    }

    pub(super) fn config(&self) -> &Autoscale {
        &self.cfg
    }

    /// The `cpu` share per instance over the interval between `a` and `b`,
    /// and the interval's length in seconds; None when the interval
    /// tells nothing (a count change, a counter going back, no counter).
    pub(super) fn cpu_interval(&self, a: &Stamped, b: &Stamped) -> Option<(f64, f64)> {
        let (ua, ub) = (a.sample.cpu_usage_usec?, b.sample.cpu_usage_usec?);
        let n = b.sample.instances;
        if ub < ua || n == 0 || a.sample.instances != n {
            return None;
        }
        let secs = b.at.checked_duration_since(a.at)?.as_secs_f64();
        if secs <= 0.0 {
            return None;
        }
        let cpus = (ub - ua) as f64 / 1e6 / secs;
        Some((cpus / f64::from(n) / self.limits.cpu_quota, secs))
    }

    /// The means over the samples in the window at `now`.
    pub(super) fn means(&self, now: Instant) -> Means {
        let s = self.in_window(now);
        let (mut weighted, mut secs) = (0.0, 0.0);
        for pair in s.windows(2) {
            if let Some((share, t)) = self.cpu_interval(pair[0], pair[1]) {
                weighted += share * t;
                secs += t;
            }
        }
        let cpu = (secs > 0.0).then(|| weighted / secs);
        let memory = mean(s.iter().filter_map(|x| {
            let m = &x.sample.memory_current;
            (!m.is_empty()).then(|| m.iter().map(|&b| b as f64).sum::<f64>() / m.len() as f64)
        }));
        let memory_share = match (memory, self.limits.memory_max) {
            (Some(m), Some(max)) if max > 0 => Some(m / max as f64),
            _ => None,
        };
        Means {
            cpu,
            memory,
            memory_share,
            cpu_pressure: mean(s.iter().filter_map(|x| x.sample.cpu_pressure_avg10)),
            memory_pressure: mean(s.iter().filter_map(|x| x.sample.memory_pressure_avg10)),
            io_pressure: mean(s.iter().filter_map(|x| x.sample.io_pressure_avg10)),
        }
    }

    /// `metric` as compared with `threshold`.
    fn reading(&self, means: &Means, metric: Metric, threshold: Threshold) -> Reading {
        let any = |f: fn(&Sample) -> bool| self.samples.iter().any(|s| f(&s.sample));
        let have = |v: Option<f64>, why: &dyn Fn() -> Option<String>| match v {
            Some(v) => Reading::Value(v),
            None => match why() {
                Some(w) => Reading::Missing(w),
                None => Reading::NotYet,
            },
        };
        let empty = self.samples.is_empty();
        let psi = |file: &str| {
            format!("no {file} in the service's cgroup (a kernel without PSI: boot with psi=1)")
        };
        match (metric, threshold) {
            (Metric::Memory, Threshold::Bytes(_)) => have(means.memory, &|| {
                (!empty && any(|s| s.instances > 0))
                    .then(|| "no memory.current in the instances' cgroups".to_string())
            }),
            (Metric::Memory, Threshold::Ratio(_)) => match self.limits.memory_max {
                None => Reading::Missing(
                    "a share of memory needs limits.memory_max (or give bytes: \"400M\")"
                        .to_string(),
                ),
                Some(_) => have(means.memory_share, &|| {
                    (!empty && any(|s| s.instances > 0))
                        .then(|| "no memory.current in the instances' cgroups".to_string())
                }),
            },
            (_, Threshold::Bytes(_)) => {
                Reading::Missing("a size threshold fits only `memory`".to_string())
            }
            (Metric::Cpu, _) => have(means.cpu, &|| {
                (!empty && !any(|s| s.cpu_usage_usec.is_some()))
                    .then(|| "no cpu.stat usage_usec in the service's cgroup".to_string())
            }),
            (Metric::CpuPressure, _) => have(means.cpu_pressure, &|| {
                (!empty).then(|| psi("cpu.pressure"))
            }),
            (Metric::MemoryPressure, _) => have(means.memory_pressure, &|| {
                (!empty).then(|| psi("memory.pressure"))
            }),
            (Metric::IoPressure, _) => {
                have(means.io_pressure, &|| (!empty).then(|| psi("io.pressure")))
            }
        }
    }

    /// A count outside the range, brought to its nearest bound.
    pub(super) fn out_of_range(&mut self, now: Instant, current: u32) -> Option<Decision> {
        let r = self.range;
        let (to, side) = if current < r.min {
            (r.min, "below")
        } else if current > r.max {
            (r.max, "above")
        } else {
            return None;
        };
        self.changed(now);
        Some(Decision::Scale {
            to,
            reason: format!("{current} is {side} the range {r}: {current} -> {to}"),
        })
    }

    /// Decide by the rules at `now`, `current` instances running.
    pub fn evaluate(&mut self, now: Instant, current: u32) -> Decision {
        self.trim(now);
        if let Some(d) = self.out_of_range(now, current) {
            return d;
        }
        let means = self.means(now);
        let rules = self.cfg.rules.clone();

        let mut notices = vec![];
        let mut status = vec![];
        let mut up_fired = vec![];
        let mut up_holds = false;
        let mut down_parts = vec![];
        let mut down_all = true;
        let mut any_down = false;
        for (i, rule) in rules.iter().enumerate() {
            let up = rule.up.map(|t| (t, self.reading(&means, rule.metric, t)));
            let down = rule.down.map(|t| (t, self.reading(&means, rule.metric, t)));
            let missing = [&up, &down]
                .into_iter()
                .flatten()
                .find_map(|(_, r)| match r {
                    Reading::Missing(why) => Some(why.clone()),
                    _ => None,
                });
            let st = &mut self.states[i];
            match missing {
                Some(why) if !st.missing_said => {
                    st.missing_said = true;
                    notices.push(format!(
                        "{}: {why}; the rule never holds",
                        rule.metric.key()
                    ));
                }
                Some(_) => {}
                None => st.missing_said = false,
            }

            let mut part = None;
            if let Some((t, r)) = &up {
                let holds = matches!(r, Reading::Value(v) if *v > threshold_value(*t));
                st.up_since = if holds {
                    st.up_since.or(Some(now))
                } else {
                    None
                };
                if let (Some(since), Reading::Value(v)) = (st.up_since, r) {
                    up_holds = true;
                    let held = now.saturating_duration_since(since);
                    let text = format!(
                        "{} {} > {} for {}",
                        rule.metric.key(),
                        show_value(rule.metric, *t, *v),
                        show_threshold(rule.metric, *t),
                        show_duration(held)
                    );
                    if held >= rule.hold {
                        up_fired.push(text);
                    } else {
                        part = Some(format!("{text} of {}", show_duration(rule.hold)));
                    }
                }
            }
            if let Some((t, r)) = &down {
                any_down = true;
                let holds = matches!(r, Reading::Value(v) if *v < threshold_value(*t));
                st.down_since = if holds {
                    st.down_since.or(Some(now))
                } else {
                    None
                };
                match (st.down_since, r) {
                    (Some(since), Reading::Value(v)) => {
                        let held = now.saturating_duration_since(since);
                        let text = format!(
                            "{} {} < {} for {}",
                            rule.metric.key(),
                            show_value(rule.metric, *t, *v),
                            show_threshold(rule.metric, *t),
                            show_duration(held)
                        );
                        if held >= rule.hold {
                            down_parts.push(text.clone());
                            part = part.or(Some(text));
                        } else {
                            down_all = false;
                            part = Some(format!("{text} of {}", show_duration(rule.hold)));
                        }
                    }
                    _ => down_all = false,
                }
            }
            status.push(part.unwrap_or_else(|| plain_status(rule, &up, &down)));
        }

        let notice = |text: String| -> String {
            if notices.is_empty() {
                text
            } else {
                format!("{text}; {}", notices.join("; "))
            }
        };
        if let Some(left) = self.cooldown_left(now) {
            return Decision::Keep {
                why: notice(format!("cooldown: {} left", show_duration(left))),
                notable: !notices.is_empty(),
            };
        }
        let (want, reason, blocked) = if !up_fired.is_empty() {
            (
                current.saturating_add(self.cfg.step).min(self.range.max),
                up_fired.join(", "),
                Blocked::Max,
            )
        } else if any_down && down_all && !up_holds {
            (
                current.saturating_sub(self.cfg.step).max(self.range.min),
                down_parts.join(", "),
                Blocked::Min,
            )
        } else {
            self.blocked = None;
            let why = if status.is_empty() {
                "no rules".to_string()
            } else {
                status.join(", ")
            };
            return Decision::Keep {
                why: notice(why),
                notable: !notices.is_empty(),
            };
        };
        if want == current {
            let bound = match blocked {
                Blocked::Max => "maximum",
                Blocked::Min => "minimum",
            };
            let first = self.blocked != Some(blocked);
            self.blocked = Some(blocked);
            return Decision::Keep {
                why: notice(format!("{reason}, but {current} is the {bound}")),
                notable: first || !notices.is_empty(),
            };
        }
        self.changed(now);
        Decision::Scale {
            to: want,
            reason: notice(format!("{reason}: {current} -> {want}")),
        }
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

fn threshold_value(t: Threshold) -> f64 {
    match t {
        Threshold::Ratio(r) => r,
        Threshold::Bytes(b) => b as f64,
    }
}

/// A rule's reading when neither condition is on its way.
fn plain_status(
    rule: &Rule,
    up: &Option<(Threshold, Reading)>,
    down: &Option<(Threshold, Reading)>,
) -> String {
    let key = rule.metric.key();
    match up.as_ref().or(down.as_ref()) {
        Some((t, Reading::Value(v))) => format!("{key} {}", show_value(rule.metric, *t, *v)),
        Some((_, Reading::Missing(_))) => format!("{key} n/a"),
        _ => format!("{key} (no data yet)"),
    }
}

/// A metric's value as its threshold is written: a share `0.93`, bytes
/// `412M`, pressure `25.3%`.
pub(super) fn show_value(metric: Metric, t: Threshold, v: f64) -> String {
    match (metric, t) {
        (_, Threshold::Bytes(_)) => show_bytes(v),
        (Metric::Cpu | Metric::Memory, _) => format!("{v:.2}"),
        _ => format!("{v:.1}%"),
    }
}

fn show_threshold(metric: Metric, t: Threshold) -> String {
    match t {
        Threshold::Bytes(b) => show_bytes(b as f64),
        Threshold::Ratio(r) => show_value(metric, t, r),
    }
}

/// `412M`, `1.5G`, `900K`, `12B`.
pub(super) fn show_bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let (mut v, mut u) = (v, 0);
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 || v >= 10.0 {
        format!("{v:.0}{}", UNITS[u])
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

/// `450ms`, `30s`, `1m30s`, `2m`.
pub(super) fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        format!("{}ms", d.as_millis())
    } else if s < 60 {
        format!("{s}s")
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}
