//! The engine with a fake clock (a base `Instant` plus offsets), the
//! policy's parts, and sampling from a temporary directory that imitates
//! cgroupfs.

use super::*;
use crate::config::{Autoscale, InstanceRange, Metric, PolicyExec, Rule, Threshold};
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn range(min: u32, max: u32) -> InstanceRange {
    InstanceRange { min, max }
}

fn rule(metric: Metric, up: Option<f64>, down: Option<f64>, hold: u64) -> Rule {
    Rule {
        metric,
        up: up.map(Threshold::Ratio),
        down: down.map(Threshold::Ratio),
        hold: secs(hold),
    }
}

/// Every 10 s; a window of one interval, so a mean is the last interval's
/// (the window test widens it); cooldown 60 s, step 1.
fn config(rules: Vec<Rule>) -> Autoscale {
    Autoscale {
        interval: secs(10),
        window: secs(10),
        cooldown: secs(60),
        step: 1,
        rules,
        policy: None,
    }
}

/// A service under a fake clock: each `tick` is 10 s later, records a
/// sample with the running count, evaluates, and applies a Scale.
struct Rig {
    a: Autoscaler,
    t0: Instant,
    t: u64,
    usage: u64,
    current: u32,
    quota: f64,
    /// Applied to each sample before it is recorded.
    extra: Box<dyn Fn(&mut Sample)>,
}

impl Rig {
    fn new(cfg: Autoscale, r: InstanceRange, current: u32) -> Rig {
        Rig::with_limits(cfg, r, current, Limits::default())
    }

    fn with_limits(cfg: Autoscale, r: InstanceRange, current: u32, limits: Limits) -> Rig {
        let mut rig = Rig {
            a: Autoscaler::new("web", &cfg, r, limits),
            t0: Instant::now(),
            t: 0,
            usage: 1_000_000_000,
            current,
            quota: limits.cpu_quota,
            extra: Box::new(|_| {}),
        };
        // The first sample: a base for the CPU deltas.
        let s = rig.sample();
        rig.a.record(rig.t0, s);
        rig
    }

    fn now(&self) -> Instant {
        self.t0 + secs(self.t)
    }

    fn sample(&self) -> Sample {
        let mut s = Sample {
            instances: self.current,
            cpu_usage_usec: Some(self.usage),
            memory_current: vec![50 << 20; self.current as usize],
            ..Sample::default()
        };
        (self.extra)(&mut s);
        s
    }

    /// 10 s pass with each instance using `share` of its quota; then a
    /// sample and a decision.
    fn tick(&mut self, share: f64) -> Decision {
        self.t += 10;
        let usec = share * self.quota * f64::from(self.current) * 10e6;
        self.usage += usec.round() as u64;
        let (now, s) = (self.now(), self.sample());
        self.a.record(now, s);
        let d = self.a.evaluate(now, self.current);
        if let Decision::Scale { to, .. } = d {
            self.current = to;
        }
        d
    }

    /// Ticks at `share` until a Scale (returned with the seconds since
    /// the first of these ticks), at most `limit` ticks.
    fn until_scale(&mut self, share: f64, limit: u32) -> Option<(u64, Decision)> {
        let start = self.t;
        for _ in 0..limit {
            let d = self.tick(share);
            if matches!(d, Decision::Scale { .. }) {
                return Some((self.t - start, d));
            }
        }
        None
    }
}

fn scale(to: u32, reason: &str) -> Decision {
    Decision::Scale {
        to,
        reason: reason.to_string(),
    }
}

fn keep_why(d: &Decision) -> &str {
    match d {
        Decision::Keep { why, .. } => why,
        Decision::Scale { reason, .. } => panic!("expected a keep, got a scale: {reason}"),
    }
}

fn cpu_rig(min: u32, max: u32, current: u32) -> Rig {
    Rig::new(
        config(vec![rule(Metric::Cpu, Some(0.8), Some(0.2), 30)]),
        range(min, max),
        current,
    )
}

#[test]
fn below_up_and_above_down_keeps() {
    let mut rig = cpu_rig(1, 4, 2);
    for _ in 0..20 {
        let d = rig.tick(0.5);
        assert_eq!(keep_why(&d), "cpu 0.50");
    }
    assert_eq!(rig.current, 2);
}

#[test]
fn up_scales_once_it_held_for_its_for() {
    let mut rig = cpu_rig(1, 4, 1);
    // The mean goes above 0.8 at the first tick (held 0s), then 10s, 20s:
    // the fourth tick has held 30s.
    let mut whys = vec![];
    for _ in 0..3 {
        whys.push(keep_why(&rig.tick(0.93)).to_string());
    }
    assert_eq!(
        whys,
        [
            "cpu 0.93 > 0.80 for 0ms of 30s",
            "cpu 0.93 > 0.80 for 10s of 30s",
            "cpu 0.93 > 0.80 for 20s of 30s"
        ]
    );
    assert_eq!(rig.tick(0.93), scale(2, "cpu 0.93 > 0.80 for 30s: 1 -> 2"));
}

#[test]
fn a_spike_shorter_than_for_does_nothing() {
    let mut rig = cpu_rig(1, 4, 1);
    for _ in 0..5 {
        rig.tick(0.5);
    }
    // Three intervals above: held 0s, 10s, 20s, short of 30s.
    assert!(keep_why(&rig.tick(1.0)).contains("for 0ms of 30s"));
    assert!(keep_why(&rig.tick(1.0)).contains("for 10s of 30s"));
    assert!(keep_why(&rig.tick(1.0)).contains("for 20s of 30s"));
    // Back down: the clock resets, so the next spike starts from 0.
    assert_eq!(keep_why(&rig.tick(0.5)), "cpu 0.50");
    assert!(keep_why(&rig.tick(1.0)).contains("for 0ms of 30s"));
    for _ in 0..10 {
        assert!(matches!(rig.tick(0.5), Decision::Keep { .. }));
    }
    assert_eq!(rig.current, 1);
}

#[test]
fn down_scales_after_for() {
    let mut rig = cpu_rig(1, 4, 3);
    let (after, d) = rig.until_scale(0.1, 10).unwrap();
    assert_eq!(after, 40);
    assert_eq!(d, scale(2, "cpu 0.10 < 0.20 for 30s: 3 -> 2"));
}

#[test]
fn cooldown_blocks_then_conditions_start_over_after_the_change() {
    let mut rig = cpu_rig(1, 5, 1);
    assert_eq!(rig.until_scale(1.0, 10).unwrap().0, 40);
    assert_eq!(rig.a.cooldown_left(rig.now()), Some(secs(60)));
    // After the change the samples start over: the first sample after it
    // has no interval, the next holds from then on (t+20), 30 s held by
    // t+50, cooldown over at t+60.
    let d = rig.tick(1.0);
    assert_eq!(keep_why(&d), "cooldown: 50s left");
    assert_eq!(rig.a.cooldown_left(rig.now()), Some(secs(50)));
    let (after, d) = rig.until_scale(1.0, 10).unwrap();
    assert_eq!(after, 50, "the second scale comes when the cooldown ends");
    assert_eq!(d, scale(3, "cpu 1.00 > 0.80 for 40s: 2 -> 3"));
}

#[test]
fn changed_by_hand_starts_a_cooldown_and_drops_the_samples() {
    let mut rig = cpu_rig(1, 5, 1);
    rig.tick(1.0);
    rig.tick(1.0);
    rig.a.changed(rig.now());
    assert_eq!(rig.a.samples().len(), 0);
    rig.current = 3;
    let d = rig.tick(1.0);
    assert_eq!(keep_why(&d), "cooldown: 50s left");
    assert_eq!(
        rig.until_scale(1.0, 10).unwrap().1.text(),
        "cpu 1.00 > 0.80 for 40s: 3 -> 4"
    );
}

#[test]
fn never_past_max_and_says_so_once() {
    let mut rig = cpu_rig(1, 3, 1);
    let mut seen = vec![];
    for _ in 0..40 {
        match rig.tick(1.0) {
            Decision::Scale { to, .. } => seen.push(to),
            Decision::Keep { why, notable } if why.contains("maximum") => {
                // Its condition held through the cooldown after 2 -> 3.
                assert_eq!(why, "cpu 1.00 > 0.80 for 40s, but 3 is the maximum");
                assert!(notable);
                break;
            }
            Decision::Keep { .. } => {}
        }
    }
    assert_eq!(seen, [2, 3]);
    // The block is said once; later keeps repeat it quietly.
    for _ in 0..10 {
        match rig.tick(1.0) {
            Decision::Keep { notable, why } => assert!(!notable, "{why}"),
            d => panic!("{d:?}"),
        }
    }
    assert_eq!(rig.current, 3);
}

#[test]
fn never_below_min() {
    let mut rig = cpu_rig(2, 5, 4);
    let mut seen = vec![];
    for _ in 0..40 {
        if let Decision::Scale { to, .. } = rig.tick(0.0) {
            seen.push(to);
        }
    }
    assert_eq!(seen, [3, 2]);
    assert_eq!(
        keep_why(&rig.tick(0.0)),
        "cpu 0.00 < 0.20 for 4m50s, but 2 is the minimum"
    );
}

#[test]
fn step_above_one_clamps_to_the_range() {
    let mut cfg = config(vec![rule(Metric::Cpu, Some(0.8), Some(0.2), 30)]);
    cfg.step = 3;
    let mut rig = Rig::new(cfg.clone(), range(1, 4), 2);
    assert_eq!(
        rig.until_scale(1.0, 10).unwrap().1.text(),
        "cpu 1.00 > 0.80 for 30s: 2 -> 4"
    );
    let mut rig = Rig::new(cfg, range(2, 6), 3);
    assert_eq!(
        rig.until_scale(0.0, 10).unwrap().1.text(),
        "cpu 0.00 < 0.20 for 30s: 3 -> 2"
    );
}

#[test]
fn down_needs_every_rule_with_a_down() {
    let cfg = config(vec![
        rule(Metric::Cpu, Some(0.8), Some(0.2), 30),
        Rule {
            metric: Metric::Memory,
            up: Some(Threshold::Bytes(400 << 20)),
            down: Some(Threshold::Bytes(100 << 20)),
            hold: secs(20),
        },
    ]);
    // CPU idle but 200M per instance: memory is not low, no shrinking.
    let mut rig = Rig::new(cfg.clone(), range(1, 4), 3);
    rig.extra = Box::new(|s| s.memory_current.iter_mut().for_each(|m| *m = 200 << 20));
    for _ in 0..20 {
        let d = rig.tick(0.0);
        assert!(matches!(d, Decision::Keep { .. }), "{d:?}");
    }
    assert_eq!(
        keep_why(&rig.tick(0.0)),
        "cpu 0.00 < 0.20 for 3m20s, memory 200M"
    );
    // Memory low too: both held their for (memory's is 20 s).
    let mut rig = Rig::new(cfg, range(1, 4), 3);
    rig.extra = Box::new(|s| s.memory_current.iter_mut().for_each(|m| *m = 60 << 20));
    assert_eq!(
        rig.until_scale(0.0, 10).unwrap(),
        (
            40,
            scale(
                2,
                "cpu 0.00 < 0.20 for 30s, memory 60M < 100M for 30s: 3 -> 2"
            )
        )
    );
}

#[test]
fn a_rule_without_down_blocks_shrinking_only_while_its_up_holds() {
    let cfg = config(vec![
        rule(Metric::Cpu, Some(0.8), Some(0.2), 30),
        rule(Metric::IoPressure, Some(20.0), None, 60),
    ]);
    let mut rig = Rig::new(cfg.clone(), range(1, 4), 3);
    rig.extra = Box::new(|s| s.io_pressure_avg10 = Some(5.0));
    assert_eq!(rig.until_scale(0.0, 10).unwrap().0, 40);

    // I/O pressure above its up (not yet for its 60 s): no shrinking.
    let mut rig = Rig::new(cfg, range(1, 4), 3);
    rig.extra = Box::new(|s| s.io_pressure_avg10 = Some(30.0));
    for _ in 0..5 {
        rig.tick(0.0);
    }
    assert_eq!(
        keep_why(&rig.tick(0.0)),
        "cpu 0.00 < 0.20 for 50s, io_pressure 30.0% > 20.0% for 50s of 1m"
    );
    // ... and at 60 s it grows, CPU idle or not.
    assert_eq!(
        rig.tick(0.0).text(),
        "io_pressure 30.0% > 20.0% for 1m: 3 -> 4"
    );
}

#[test]
fn without_any_down_load_never_shrinks() {
    let mut rig = Rig::new(
        config(vec![rule(Metric::Cpu, Some(0.8), None, 30)]),
        range(1, 4),
        3,
    );
    assert_eq!(rig.until_scale(0.0, 30), None);
}

#[test]
fn missing_pressure_never_holds_and_is_said_once() {
    let cfg = config(vec![
        rule(Metric::Cpu, Some(0.8), Some(0.2), 30),
        rule(Metric::CpuPressure, Some(20.0), Some(5.0), 30),
    ]);
    let mut rig = Rig::new(cfg, range(1, 4), 2);
    // No PSI (the rig's samples have None): said at the first decision.
    match rig.tick(0.5) {
        Decision::Keep { why, notable } => {
            assert!(notable);
            assert_eq!(
                why,
                "cpu 0.50, cpu_pressure n/a; cpu_pressure: no cpu.pressure in the service's \
                 cgroup (a kernel without PSI: boot with psi=1); the rule never holds"
            );
        }
        d => panic!("{d:?}"),
    }
    // Then quietly; and its down never holds, so CPU alone cannot shrink.
    for _ in 0..20 {
        match rig.tick(0.0) {
            Decision::Keep { why, notable } => {
                assert!(!notable, "{why}");
                assert!(!why.contains("psi=1"), "{why}");
            }
            d => panic!("{d:?}"),
        }
    }
    // CPU's up still works.
    assert_eq!(
        rig.until_scale(1.0, 10).unwrap().1.text(),
        "cpu 1.00 > 0.80 for 30s: 2 -> 3"
    );
}

#[test]
fn missing_metric_said_again_after_it_came_back() {
    let cfg = config(vec![rule(Metric::MemoryPressure, Some(20.0), None, 30)]);
    let mut rig = Rig::new(cfg, range(1, 4), 2);
    let first = rig.tick(0.0);
    assert!(first.text().contains("no memory.pressure"), "{first:?}");
    rig.extra = Box::new(|s| s.memory_pressure_avg10 = Some(1.0));
    assert_eq!(
        rig.tick(0.0),
        Decision::Keep {
            why: "memory_pressure 1.0%".into(),
            notable: false
        }
    );
    // Gone again: said once the window holds no value (one interval here).
    rig.extra = Box::new(|_| {});
    assert_eq!(rig.tick(0.0).text(), "memory_pressure 1.0%");
    let d = rig.tick(0.0);
    assert!(d.text().contains("no memory.pressure"), "{d:?}");
    assert!(matches!(d, Decision::Keep { notable: true, .. }));
}

#[test]
fn pressure_rule_fires() {
    let cfg = config(vec![rule(Metric::CpuPressure, Some(20.0), Some(2.0), 20)]);
    let mut rig = Rig::new(cfg, range(1, 4), 1);
    rig.extra = Box::new(|s| s.cpu_pressure_avg10 = Some(35.5));
    assert_eq!(
        rig.until_scale(0.0, 10).unwrap(),
        (30, scale(2, "cpu_pressure 35.5% > 20.0% for 20s: 1 -> 2"))
    );
}

#[test]
fn memory_share_needs_memory_max() {
    let cfg = config(vec![rule(Metric::Memory, Some(0.8), Some(0.3), 20)]);
    let mut rig = Rig::new(cfg.clone(), range(1, 4), 2);
    let d = rig.tick(0.0);
    assert!(d.text().contains("needs limits.memory_max"), "{d:?}");
    // With 64M per instance, 50M used is 0.78: keep; 60M is 0.94: grow.
    let limits = Limits {
        cpu_quota: 1.0,
        memory_max: Some(64 << 20),
    };
    let mut rig = Rig::with_limits(cfg, range(1, 4), 2, limits);
    assert_eq!(keep_why(&rig.tick(0.0)), "memory 0.78");
    rig.extra = Box::new(|s| s.memory_current.iter_mut().for_each(|m| *m = 60 << 20));
    assert_eq!(
        rig.until_scale(0.0, 10).unwrap().1.text(),
        "memory 0.94 > 0.80 for 20s: 2 -> 3"
    );
}

#[test]
fn cpu_is_a_share_of_the_quota_per_instance() {
    // Half a CPU each: 3 instances using 0.45 CPU each are at 0.9.
    let limits = Limits::from_config(&crate::config::Limits {
        cpu_max: Some(crate::config::CpuMax {
            quota_us: 50_000,
            period_us: 100_000,
        }),
        ..Default::default()
    });
    assert_eq!(limits.cpu_quota, 0.5);
    let mut a = Autoscaler::new("web", &config(vec![]), range(1, 4), limits);
    let t0 = Instant::now();
    let s = |usage| Sample {
        instances: 3,
        cpu_usage_usec: Some(usage),
        ..Sample::default()
    };
    a.record(t0, s(5_000_000));
    a.record(t0 + secs(10), s(5_000_000 + 3 * 4_500_000));
    let m = a.means(t0 + secs(10)).cpu.unwrap();
    assert!((m - 0.9).abs() < 1e-9, "{m}");
    // "max" (no quota) is one CPU.
    let unlimited = crate::config::Limits {
        cpu_max: Some(crate::config::CpuMax {
            quota_us: u64::MAX,
            period_us: 100_000,
        }),
        memory_max: Some(1 << 30),
        ..Default::default()
    };
    assert_eq!(
        Limits::from_config(&unlimited),
        Limits {
            cpu_quota: 1.0,
            memory_max: Some(1 << 30)
        }
    );
}

#[test]
fn cpu_leaves_out_intervals_across_a_count_change_or_a_counter_reset() {
    let mut cfg = config(vec![]);
    cfg.window = secs(60);
    let mut a = Autoscaler::new("web", &cfg, range(1, 4), Limits::default());
    let t0 = Instant::now();
    let s = |instances, usage| Sample {
        instances,
        cpu_usage_usec: Some(usage),
        ..Sample::default()
    };
    a.record(t0, s(1, 0));
    a.record(t0 + secs(10), s(2, 100_000_000)); // count changed: left out
    a.record(t0 + secs(20), s(2, 104_000_000)); // 4 s over 10 s, 2 instances: 0.2
    a.record(t0 + secs(30), s(2, 1_000)); // counter went back: left out
    assert!((a.means(t0 + secs(30)).cpu.unwrap() - 0.2).abs() < 1e-9);
    // Weighted by the intervals' lengths: 20 s at 0.8 after 10 s at 0.2.
    a.record(t0 + secs(50), s(2, 1_000 + 32_000_000));
    let m = a.means(t0 + secs(50)).cpu.unwrap();
    assert!((m - (0.2 * 10.0 + 0.8 * 20.0) / 30.0).abs() < 1e-9, "{m}");
    // No counter at all: no CPU, and the rule says so.
    let mut a = Autoscaler::new(
        "web",
        &config(vec![rule(Metric::Cpu, Some(0.8), None, 30)]),
        range(1, 4),
        Limits::default(),
    );
    a.record(t0, s(1, 0));
    a.record(
        t0 + secs(10),
        Sample {
            instances: 1,
            ..Sample::default()
        },
    );
    a.record(
        t0 + secs(20),
        Sample {
            instances: 1,
            ..Sample::default()
        },
    );
    assert!(a
        .evaluate(t0 + secs(20), 1)
        .text()
        .contains("no cpu.stat usage_usec"));
}

#[test]
fn no_samples_yet_is_no_notice() {
    let mut a = Autoscaler::new(
        "web",
        &config(vec![
            rule(Metric::Cpu, Some(0.8), None, 30),
            rule(Metric::IoPressure, Some(10.0), None, 30),
        ]),
        range(1, 4),
        Limits::default(),
    );
    let t0 = Instant::now();
    assert_eq!(
        a.evaluate(t0, 1),
        Decision::Keep {
            why: "cpu (no data yet), io_pressure (no data yet)".into(),
            notable: false
        }
    );
    // One sample: pressure known, CPU needs two.
    a.record(
        t0,
        Sample {
            instances: 1,
            cpu_usage_usec: Some(5),
            io_pressure_avg10: Some(3.0),
            ..Sample::default()
        },
    );
    assert_eq!(
        a.evaluate(t0, 1).text(),
        "cpu (no data yet), io_pressure 3.0%"
    );
}

#[test]
fn the_window_keeps_only_recent_samples() {
    let mut cfg = config(vec![rule(Metric::CpuPressure, Some(50.0), None, 30)]);
    cfg.window = secs(30);
    let mut a = Autoscaler::new("web", &cfg, range(1, 4), Limits::default());
    let t0 = Instant::now();
    let p = |v| Sample {
        instances: 1,
        cpu_pressure_avg10: Some(v),
        ..Sample::default()
    };
    for i in 0..10u64 {
        a.record(t0 + secs(10 * i), p(i as f64 * 10.0));
    }
    // At 90 s: 60, 70, 80, 90 (ages 30 to 0).
    let ages: Vec<u64> = a
        .samples()
        .iter()
        .map(|s| (t0 + secs(90) - s.at).as_secs())
        .collect();
    assert_eq!(ages, [30, 20, 10, 0]);
    assert_eq!(a.means(t0 + secs(90)).cpu_pressure, Some(75.0));
    // Later, fewer: at 105 s the 80 and 90 s samples.
    assert_eq!(a.means(t0 + secs(105)).cpu_pressure, Some(85.0));
    // Evaluating later trims too: at 115 s only the 90 s sample is left.
    assert_eq!(
        a.evaluate(t0 + secs(115), 1).text(),
        "cpu_pressure 90.0% > 50.0% for 0ms of 30s"
    );
    assert_eq!(a.samples().len(), 1);
    // A gap longer than the window leaves the new sample alone.
    a.record(t0 + secs(500), p(1.0));
    assert_eq!(a.samples().len(), 1);
    // A sample from before the last is ignored.
    a.record(t0 + secs(400), p(99.0));
    assert_eq!(a.means(t0 + secs(500)).cpu_pressure, Some(1.0));
}

#[test]
fn a_count_outside_a_new_range_is_brought_in_at_once() {
    let mut rig = cpu_rig(1, 8, 1);
    assert_eq!(
        rig.until_scale(1.0, 10).unwrap().1.text(),
        "cpu 1.00 > 0.80 for 30s: 1 -> 2"
    );
    rig.current = 6;
    rig.a.set_range(range(2, 4));
    assert_eq!(rig.a.range(), range(2, 4));
    // Within the cooldown, still.
    assert_eq!(rig.tick(0.5), scale(4, "6 is above the range 2-4: 6 -> 4"));
    rig.a.set_range(range(5, 6));
    assert_eq!(rig.tick(0.5), scale(5, "4 is below the range 5-6: 4 -> 5"));
}

#[test]
fn no_rules_keeps() {
    let mut rig = Rig::new(config(vec![]), range(1, 4), 2);
    assert_eq!(keep_why(&rig.tick(1.0)), "no rules");
}

// --- the policy --------------------------------------------------------------

fn policy_rig(min: u32, max: u32, current: u32) -> Rig {
    let mut cfg = config(vec![]);
    cfg.window = secs(30);
    cfg.policy = Some(PolicyExec {
        command: vec!["/bin/policy".into()],
        timeout: secs(5),
    });
    Rig::new(cfg, range(min, max), current)
}

#[test]
fn policy_output_parsing() {
    assert_eq!(parse_policy_output(b"3\n"), Ok(3));
    assert_eq!(parse_policy_output(b"  \t7  \n\n"), Ok(7));
    assert_eq!(parse_policy_output(b"0"), Ok(0));
    assert_eq!(parse_policy_output(b"+2"), Ok(2));
    // Too big for a count: the most there is (the decision clamps it).
    assert_eq!(parse_policy_output(b"99999999999999999999"), Ok(u32::MAX));
    assert_eq!(
        parse_policy_output(b" \n"),
        Err("the policy printed nothing: it must print the wanted instance count".into())
    );
    assert_eq!(
        parse_policy_output(b"-1\n"),
        Err(
            "the policy printed \"-1\": a negative number is no instance count; \
             it must print one whole number (the wanted count)"
                .into()
        )
    );
    assert_eq!(
        parse_policy_output(b"scale to 4"),
        Err("the policy printed \"scale to 4\": not an instance count; \
             it must print one whole number (the wanted count)"
            .into())
    );
    for bad in [&b"3 4"[..], b"3.5", b"0x10", b"-", b"+", b"\xff\xfe"] {
        let e = parse_policy_output(bad).unwrap_err();
        assert!(e.contains("not an instance count"), "{bad:?}: {e}");
    }
    // Garbage is cut.
    let long = "Traceback (most recent call last): ".repeat(20);
    let e = parse_policy_output(long.as_bytes()).unwrap_err();
    assert!(e.starts_with("the policy printed \"Traceback (most recent call last): Traceback"));
    assert!(e.contains("...\": not an instance count"), "{e}");
    assert!(e.len() < 160, "{e}");
}

#[test]
fn policy_decision_clamps_and_says_so() {
    let mut rig = policy_rig(1, 6, 2);
    let now = rig.now();
    assert_eq!(
        rig.a.policy_decision(now, 2, 2),
        Decision::Keep {
            why: "policy wants 2".into(),
            notable: false
        }
    );
    assert_eq!(
        rig.a.policy_decision(now, 2, 4),
        scale(4, "policy wants 4: 2 -> 4")
    );
    // Cooldown now.
    let later = now + secs(30);
    assert_eq!(
        rig.a.policy_decision(later, 4, 1),
        Decision::Keep {
            why: "policy wants 1; cooldown: 30s left".into(),
            notable: false
        }
    );
    let after = now + secs(60);
    assert_eq!(
        rig.a.policy_decision(after, 4, u32::MAX),
        scale(6, "policy wants 4294967295, above the maximum 6: 4 -> 6")
    );
    // Already at the bound: a keep worth a log line.
    let after = after + secs(60);
    assert_eq!(
        rig.a.policy_decision(after, 6, 50),
        Decision::Keep {
            why: "policy wants 50, above the maximum 6".into(),
            notable: true
        }
    );
    assert_eq!(
        rig.a.policy_decision(after, 6, 0),
        scale(1, "policy wants 0, below the minimum 1: 6 -> 1")
    );
}

#[test]
fn policy_input_document() {
    let limits = Limits {
        cpu_quota: 0.5,
        memory_max: Some(256 << 20),
    };
    let mut cfg = config(vec![]);
    cfg.window = secs(30);
    let mut rig = Rig::with_limits(cfg, range(1, 6), 2, limits);
    rig.extra = Box::new(|s| {
        s.cpu_pressure_avg10 = Some(12.5);
        s.memory_current = vec![64 << 20, 128 << 20];
    });
    for _ in 0..5 {
        rig.tick(0.8);
    }
    let text = rig.a.policy_input(rig.now(), 2);
    assert!(!text.contains('\n'));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["service"], "web");
    assert_eq!(v["instances"], 2);
    assert_eq!((v["min"].as_u64(), v["max"].as_u64()), (Some(1), Some(6)));
    assert_eq!(
        (v["interval_ms"].as_u64(), v["window_ms"].as_u64()),
        (Some(10_000), Some(30_000))
    );
    assert_eq!(v["limits"]["cpu_quota"], 0.5);
    assert_eq!(v["limits"]["memory_max"], 256u64 << 20);
    let m = &v["means"];
    assert!((m["cpu"].as_f64().unwrap() - 0.8).abs() < 1e-6, "{m}");
    assert_eq!(m["memory"], f64::from(96u32 << 20));
    assert_eq!(m["memory_share"], 0.375);
    assert_eq!(m["cpu_pressure"], 12.5);
    assert!(m["memory_pressure"].is_null() && m["io_pressure"].is_null());
    let samples = v["samples"].as_array().unwrap();
    let ages: Vec<u64> = samples
        .iter()
        .map(|s| s["age_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(ages, [30_000, 20_000, 10_000, 0]);
    // The first has no interval before it in the window.
    assert!(samples[0]["cpu"].is_null());
    assert!((samples[3]["cpu"].as_f64().unwrap() - 0.8).abs() < 1e-6);
    assert_eq!(samples[3]["instances"], 2);
    assert_eq!(
        samples[3]["memory"],
        serde_json::json!([64 << 20, 128 << 20])
    );
    assert_eq!(samples[3]["cpu_pressure"], 12.5);
    assert!(samples[3]["io_pressure"].is_null());
    let usage = |i: usize| samples[i]["cpu_usage_usec"].as_u64().unwrap();
    assert_eq!(
        usage(3) - usage(2),
        8_000_000,
        "0.8 of 0.5 CPU, 2 instances, 10 s"
    );
}

#[test]
fn policy_brings_a_count_outside_the_range_in() {
    let mut rig = policy_rig(2, 4, 2);
    let now = rig.now();
    rig.a.set_range(range(3, 4));
    assert_eq!(
        rig.a.policy_decision(now, 2, 2),
        scale(3, "2 is below the range 3-4: 2 -> 3")
    );
    assert_eq!(rig.a.policy().unwrap().command, ["/bin/policy"]);
    assert_eq!(rig.a.interval(), secs(10));
}

// --- sampling ----------------------------------------------------------------

/// cgroup v2 `cpu.stat` of Linux 6.1 with the cpu controller enabled.
const CPU_STAT: &str = "usage_usec 2183071
user_usec 1372409
system_usec 810662
core_sched.force_idle_usec 0
nr_periods 312
nr_throttled 37
throttled_usec 1893325
nr_bursts 0
burst_usec 0
";

const CPU_PRESSURE: &str = "some avg10=12.34 avg60=5.67 avg300=1.02 total=98765432
full avg10=3.21 avg60=1.00 avg300=0.20 total=1234567
";

#[test]
fn pressure_text() {
    assert_eq!(parse_pressure(CPU_PRESSURE), Some(12.34));
    // Kernels before 5.13 have no `full` line for CPU.
    assert_eq!(
        parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"),
        Some(0.0)
    );
    // `full` alone, garbage, empty: nothing.
    assert_eq!(
        parse_pressure("full avg10=3.00 avg60=1.00 avg300=0.20 total=1\n"),
        None
    );
    assert_eq!(parse_pressure("some avg10=x avg60=0.00\n"), None);
    assert_eq!(parse_pressure("some avg10=-1.0\n"), None);
    assert_eq!(parse_pressure(""), None);
}

/// A throwaway directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("sentinel-autoscale-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn group(&self, rel: &str, files: &[(&str, &str)]) -> PathBuf {
        let d = self.0.join(rel);
        fs::create_dir_all(&d).unwrap();
        for (name, text) in files {
            fs::write(d.join(name), text).unwrap();
        }
        d
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn sample_from_cgroup_files() {
    let tmp = TempDir::new("read");
    let service = tmp.group(
        "web",
        &[
            ("cpu.stat", CPU_STAT),
            ("cpu.pressure", CPU_PRESSURE),
            (
                "memory.pressure",
                "some avg10=0.50 avg60=0.10 avg300=0.00 total=99\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
            ),
            // No io.pressure.
        ],
    );
    let i0 = tmp.group(
        "web/web@0",
        &[
            ("cpu.stat", "usage_usec 1000\n"),
            ("memory.current", "10420224\n"),
        ],
    );
    let i1 = tmp.group(
        "web/web@1",
        &[
            ("cpu.stat", "usage_usec 2000\n"),
            ("memory.current", "garbage\n"),
        ],
    );
    let s = read_sample(&[i0.clone(), i1.clone()], &service);
    assert_eq!(
        s,
        Sample {
            instances: 2,
            // The service's counter (it keeps exited instances' time).
            cpu_usage_usec: Some(2_183_071),
            memory_current: vec![10_420_224],
            cpu_pressure_avg10: Some(12.34),
            memory_pressure_avg10: Some(0.5),
            io_pressure_avg10: None,
        }
    );
    // Without the service's cpu.stat: the instances' sum.
    fs::remove_file(service.join("cpu.stat")).unwrap();
    assert_eq!(
        read_sample(&[i0.clone(), i1.clone()], &service).cpu_usage_usec,
        Some(3000)
    );
    // ... and none when one of them has none.
    fs::remove_file(i1.join("cpu.stat")).unwrap();
    assert_eq!(read_sample(&[i0, i1], &service).cpu_usage_usec, None);
    // Nothing there at all: an empty sample, no error.
    assert_eq!(
        read_sample(&[tmp.0.join("gone/web@0")], &tmp.0.join("gone")),
        Sample {
            instances: 1,
            ..Sample::default()
        }
    );
}

#[test]
fn policy_input_without_samples() {
    let rig = policy_rig(1, 4, 1);
    // The rig's base sample, 40 s back: out of the 30 s window.
    let v: serde_json::Value =
        serde_json::from_str(&rig.a.policy_input(rig.now() + secs(40), 1)).unwrap();
    assert_eq!(v["samples"], serde_json::json!([]));
    assert!(v["means"]["cpu"].is_null() && v["means"]["memory"].is_null());
    assert!(v["limits"]["memory_max"].is_null());
}
