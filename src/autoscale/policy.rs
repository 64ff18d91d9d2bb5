//! A custom policy's pure parts: its input document, its output, and the
//! decision from its answer. The loop runs the command (`jobs`).

// Wired into the event loop by the lead (issue 8).
#![allow(dead_code)]

use std::time::Instant;

use serde::Serialize;

use super::engine::{show_duration, Autoscaler, Decision, Means};

/// What a policy prints is shown up to this many characters.
const SHOWN: usize = 60;

/// The input document (the schema is in the module doc).
#[derive(Serialize)]
struct Input<'a> {
    service: &'a str,
    instances: u32,
    min: u32,
    max: u32,
    interval_ms: u128,
    window_ms: u128,
    limits: InputLimits,
    means: Means,
    samples: Vec<InputSample<'a>>,
}

#[derive(Serialize)]
struct InputLimits {
    cpu_quota: f64,
    memory_max: Option<u64>,
}

#[derive(Serialize)]
struct InputSample<'a> {
    age_ms: u128,
    instances: u32,
    cpu: Option<f64>,
    cpu_usage_usec: Option<u64>,
    memory: &'a [u64],
    cpu_pressure: Option<f64>,
    memory_pressure: Option<f64>,
    io_pressure: Option<f64>,
}

impl Autoscaler {
    /// The policy's stdin at `now`, `current` instances running: one JSON
    /// document, no newline inside.
    pub fn policy_input(&self, now: Instant, current: u32) -> String {
        let samples = self.in_window(now);
        let range = self.range();
        let cfg = self.config();
        let limits = self.limits();
        let input = Input {
            service: self.service(),
            instances: current,
            min: range.min,
            max: range.max,
            interval_ms: cfg.interval.as_millis(),
            window_ms: cfg.window.as_millis(),
            limits: InputLimits {
                cpu_quota: limits.cpu_quota,
                memory_max: limits.memory_max,
            },
            means: self.means(now),
            samples: samples
                .iter()
                .enumerate()
                .map(|(i, s)| InputSample {
                    age_ms: now.saturating_duration_since(s.at).as_millis(),
                    instances: s.sample.instances,
                    cpu: i
                        .checked_sub(1)
                        .and_then(|p| self.cpu_interval(samples[p], s))
                        .map(|(share, _)| share),
                    cpu_usage_usec: s.sample.cpu_usage_usec,
                    memory: &s.sample.memory_current,
                    cpu_pressure: s.sample.cpu_pressure_avg10,
                    memory_pressure: s.sample.memory_pressure_avg10,
                    io_pressure: s.sample.io_pressure_avg10,
                })
                .collect(),
        };
        serde_json::to_string(&input).expect("plain data serializes")
    }

    /// The decision from a policy's parsed answer (see
    /// [`parse_policy_output`]): clamped to the range, nothing during
    /// cooldown. A failed policy run is the loop's to report; it changes
    /// nothing.
    pub fn policy_decision(&mut self, now: Instant, current: u32, answer: u32) -> Decision {
        if let Some(d) = self.out_of_range(now, current) {
            return d;
        }
        if let Some(left) = self.cooldown_left(now) {
            return Decision::Keep {
                why: format!(
                    "policy wants {answer}; cooldown: {} left",
                    show_duration(left)
                ),
                notable: false,
            };
        }
        let r = self.range();
        let (to, said) = if answer > r.max {
            (
                r.max,
                format!("policy wants {answer}, above the maximum {}", r.max),
            )
        } else if answer < r.min {
            (
                r.min,
                format!("policy wants {answer}, below the minimum {}", r.min),
            )
        } else {
            (answer, format!("policy wants {answer}"))
        };
        if to == current {
            return Decision::Keep {
                notable: to != answer,
                why: said,
            };
        }
        self.changed(now);
        Decision::Scale {
            to,
            reason: format!("{said}: {current} -> {to}"),
        }
    }
}

/// A policy's stdout as an instance count: one whole number >= 0,
/// whitespace around it allowed. A number too big for a count is taken as
/// `u32::MAX` (the decision clamps it to the maximum). Anything else is an
/// error that quotes what it printed (cut at 60 characters).
pub fn parse_policy_output(stdout: &[u8]) -> Result<u32, String> {
    let text = String::from_utf8_lossy(stdout);
    let t = text.trim();
    if t.is_empty() {
        return Err("the policy printed nothing: it must print the wanted instance count".into());
    }
    let digits = t.strip_prefix('+').unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(digits.parse::<u32>().unwrap_or(u32::MAX));
    }
    let mut shown: String = t.chars().take(SHOWN).collect();
    if t.chars().count() > SHOWN {
        shown.push_str("...");
    }
    let what = if t.len() > 1 && t.starts_with('-') && t[1..].bytes().all(|b| b.is_ascii_digit()) {
        "a negative number is no instance count"
    } else {
        "not an instance count"
    };
    Err(format!(
        "the policy printed {shown:?}: {what}; it must print one whole number (the wanted count)"
    ))
}
