//! The scaling keys as written (issue 8): `instances`, `port_base`,
//! `listen`, `autoscale = { ... }`, `start_limit`, `critical`, `watch`, and
//! the top-level `[[hooks]]`. An instance range is parsed here, so a
//! mistake is reported at the value; socket addresses, thresholds and
//! event names are read in `build`, where each item of a list gets its own
//! problem and the checks that span keys (and services) are made.

use super::super::scaling::{InstanceRange, Metric};
use super::{Command, Dur};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// `instances = 3` or `instances = "2-4"`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instances(pub InstanceRange);

impl<'de> Deserialize<'de> for Instances {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Instances;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an instance count like 3 or a range like \"2-4\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Instances, E> {
                InstanceRange::parse(s).map(Instances).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Instances, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Instances, E> {
                self.visit_str(&n.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

/// `autoscale = { ... }`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawAutoscale {
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub interval: Option<Dur>,
    pub window: Option<Dur>,
    pub cooldown: Option<Dur>,
    pub step: Option<u32>,
    pub cpu: Option<RawRule>,
    pub memory: Option<RawRule>,
    pub cpu_pressure: Option<RawRule>,
    pub memory_pressure: Option<RawRule>,
    pub io_pressure: Option<RawRule>,
    pub policy: Option<RawPolicy>,
}

impl RawAutoscale {
    /// Each metric's rule, in the order of [`Metric`].
    pub fn rules(&self) -> [(Metric, Option<&RawRule>); 5] {
        [
            (Metric::Cpu, self.cpu.as_ref()),
            (Metric::Memory, self.memory.as_ref()),
            (Metric::CpuPressure, self.cpu_pressure.as_ref()),
            (Metric::MemoryPressure, self.memory_pressure.as_ref()),
            (Metric::IoPressure, self.io_pressure.as_ref()),
        ]
    }
}

/// `cpu = { up = 0.8, down = 0.2, for = "30s" }`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawRule {
    pub up: Option<RawThreshold>,
    pub down: Option<RawThreshold>,
    pub r#for: Option<Dur>,
}

/// A rule's bound as written; what it means depends on the metric, so it
/// is read in `build`.
#[derive(Debug, Clone, PartialEq)]
pub enum RawThreshold {
    Int(i64),
    Float(f64),
    Text(String),
}

impl fmt::Display for RawThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawThreshold::Int(n) => write!(f, "{n}"),
            RawThreshold::Float(x) => write!(f, "{x}"),
            RawThreshold::Text(s) => write!(f, "\"{s}\""),
        }
    }
}

impl<'de> Deserialize<'de> for RawThreshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawThreshold;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number like 0.8, a percentage like \"80%\", or a size like \"400M\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawThreshold, E> {
                Ok(RawThreshold::Text(s.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<RawThreshold, E> {
                Ok(RawThreshold::Int(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RawThreshold, E> {
                match i64::try_from(n) {
                    Ok(n) => Ok(RawThreshold::Int(n)),
                    Err(_) => Ok(RawThreshold::Float(n as f64)),
                }
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<RawThreshold, E> {
                Ok(RawThreshold::Float(x))
            }
        }
        d.deserialize_any(V)
    }
}

/// `policy = { exec = ["/usr/local/bin/policy"], timeout = "5s" }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawPolicy {
    pub exec: Option<Command>,
    pub timeout: Option<Dur>,
}

/// `start_limit = { burst = 5, interval = "10s" }`. Both keys are needed;
/// that is checked in `build`, so that a refused value is not also
/// reported missing (likewise `paths` and `exec` below).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawStartLimit {
    pub burst: Option<u32>,
    pub interval: Option<Dur>,
}

/// `watch = { paths = ["./src"], ignore = ["*.log"], debounce = "500ms" }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawWatch {
    pub paths: Option<Vec<String>>,
    pub ignore: Option<Vec<String>>,
    pub debounce: Option<Dur>,
}

/// `[[hooks]]` (TOML) or a list under `hooks:` (YAML).
#[derive(Debug, Default)]
pub struct RawHooks(pub Vec<RawHook>);

impl<'de> Deserialize<'de> for RawHooks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHooks;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of hooks (in TOML, one [[hooks]] table each: two brackets)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawHooks, A::Error> {
                let mut all = Vec::new();
                while let Some(h) = seq.next_element::<RawHook>()? {
                    all.push(h);
                }
                Ok(RawHooks(all))
            }
        }
        d.deserialize_any(V)
    }
}

/// One hook: `events = ["exited", "failed"]`, `services = ["web"]`,
/// `exec = [...]` or a command string, `timeout = "10s"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RawHook {
    pub events: Vec<String>,
    pub services: Option<Vec<String>>,
    pub exec: Command,
    pub timeout: Option<Dur>,
}
