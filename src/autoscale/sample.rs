//! Reading a [`Sample`] from cgroup v2 files: the only I/O of autoscaling.
//! Missing files are `None`s, never errors (a kernel without PSI, a
//! group gone between listing and reading).

// Wired into the event loop by the lead (issue 8).
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use super::engine::Sample;

/// A sample of a service: `instance_dirs` are the cgroups of its running
/// instances, `service_dir` their parent, the service's group.
///
/// - CPU: `usage_usec` of the service's `cpu.stat`. The kernel counts
///   every descendant in it, and keeps the time of a removed instance
///   group, so the counter only grows while instances come and go (a sum
///   over the instances' own counters would drop at every restart). When
///   the service's file has none, the sum over the instances'.
/// - memory: each instance's `memory.current`.
/// - pressure: `some avg10` of the service's `cpu.pressure`,
///   `memory.pressure`, `io.pressure`.
///
/// The counters come from `cgroup::stats`.
pub fn read_sample(instance_dirs: &[PathBuf], service_dir: &Path) -> Sample {
    let instances: Vec<_> = instance_dirs
        .iter()
        .map(|d| crate::cgroup::stats(d))
        .collect();
    let summed = || {
        instances
            .iter()
            .map(|s| s.cpu_usage_usec)
            .sum::<Option<u64>>()
    };
    let pressure = |file: &str| {
        fs::read_to_string(service_dir.join(file))
            .ok()
            .and_then(|t| parse_pressure(&t))
    };
    Sample {
        instances: u32::try_from(instance_dirs.len()).unwrap_or(u32::MAX),
        cpu_usage_usec: crate::cgroup::stats(service_dir)
            .cpu_usage_usec
            .or_else(summed),
        memory_current: instances.iter().filter_map(|s| s.memory_current).collect(),
        cpu_pressure_avg10: pressure("cpu.pressure"),
        memory_pressure_avg10: pressure("memory.pressure"),
        io_pressure_avg10: pressure("io.pressure"),
    }
}

/// `avg10` of the `some` line of a PSI file:
///
/// ```text
/// some avg10=1.23 avg60=0.50 avg300=0.10 total=123456
/// full avg10=0.00 avg60=0.00 avg300=0.00 total=0
/// ```
pub fn parse_pressure(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("some "))?;
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("avg10="))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
}
