//! A group's counters, read on demand (never periodically). Each file is
//! parsed tolerantly: a missing file (controller not enabled, older
//! kernel) or key is `None`, not an error.

use std::fs;
use std::path::Path;

/// What the kernel counts for one group (and its subgroups).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// `memory.current`, bytes.
    pub memory_current: Option<u64>,
    /// `memory.peak`, bytes (Linux 5.19+).
    pub memory_peak: Option<u64>,
    /// `memory.events` `oom_kill`: processes the OOM killer killed.
    pub oom_kills: Option<u64>,
    /// `memory.events` `oom`: times the group hit its limit and the OOM killer ran.
    pub oom_events: Option<u64>,
    /// `cpu.stat` `usage_usec`, `user_usec`, `system_usec`.
    pub cpu_usage_usec: Option<u64>,
    pub cpu_user_usec: Option<u64>,
    pub cpu_system_usec: Option<u64>,
    /// `cpu.stat` `nr_throttled`, `throttled_usec` (with the cpu controller).
    pub nr_throttled: Option<u64>,
    pub throttled_usec: Option<u64>,
    /// `pids.current`.
    pub pids_current: Option<u64>,
    /// `io.stat` `rbytes` and `wbytes`, summed over devices.
    pub io_rbytes: Option<u64>,
    pub io_wbytes: Option<u64>,
}

/// Read the stats of the group `dir`.
pub fn stats(dir: &Path) -> Stats {
    let file = |name: &str| fs::read_to_string(dir.join(name)).ok();
    let single = |name: &str| file(name).and_then(|t| t.trim().parse().ok());
    let memory_events = file("memory.events");
    let cpu = file("cpu.stat");
    let io = file("io.stat");
    let ev = |key| memory_events.as_deref().and_then(|t| keyed(t, key));
    let cpu = |key| cpu.as_deref().and_then(|t| keyed(t, key));
    let io = |key| io.as_deref().map(|t| io_sum(t, key));
    Stats {
        memory_current: single("memory.current"),
        memory_peak: single("memory.peak"),
        oom_kills: ev("oom_kill"),
        oom_events: ev("oom"),
        cpu_usage_usec: cpu("usage_usec"),
        cpu_user_usec: cpu("user_usec"),
        cpu_system_usec: cpu("system_usec"),
        nr_throttled: cpu("nr_throttled"),
        throttled_usec: cpu("throttled_usec"),
        pids_current: single("pids.current"),
        io_rbytes: io("rbytes"),
        io_wbytes: io("wbytes"),
    }
}

/// The value of `key` in a flat-keyed file (`key value` lines:
/// `cgroup.events`, `memory.events`, `cpu.stat`).
pub(super) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The sum over devices of `key` in an `io.stat` text
/// (`MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N` lines).
fn io_sum(text: &str, key: &str) -> u64 {
    text.lines()
        .flat_map(|line| line.split_whitespace().skip(1))
        .filter_map(|field| field.split_once('='))
        .filter(|(k, _)| *k == key)
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .fold(0, u64::saturating_add)
}
