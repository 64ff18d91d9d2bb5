//! The loop's side of hooks, watch mode and autoscaling: short-lived jobs
//! (`crate::jobs`) for hook commands and policies, the inotify watcher, one
//! evaluation timer per autoscaled service, and the state changes that
//! become hook events. The judging is in `hooks`, `watch` and `autoscale`.

use std::cmp::Reverse;
use std::time::{Instant, SystemTime};

use mio::{Interest, Token};

use super::{log, Runtime, TimerKey, WATCH};
use crate::autoscale::{Autoscaler, Decision};
use crate::config::HookEvent;
use crate::hooks::{HookEventData, HookExit};
use crate::jobs::{JobKind, JobSpec, Outcome};
use crate::supervisor::ExitStatus;

impl Runtime {
    /// Set up watches and autoscalers for every service (start and reload).
    pub(super) fn arm_services(&mut self, now: Instant) {
        for s in 0..self.sup.specs.len() {
            let spec = &self.sup.specs[s];
            let watch = (!spec.removed)
                .then(|| spec.config.scaling.watch.clone())
                .flatten();
            match watch {
                Some(w) => {
                    if self.watcher.is_none() {
                        match crate::watch::Watcher::new() {
                            Ok(mut watcher) => {
                                match self.poll.registry().register(
                                    &mut watcher,
                                    WATCH,
                                    Interest::READABLE,
                                ) {
                                    Ok(()) => self.watcher = Some(watcher),
                                    Err(e) => log(&format!("watch: register inotify: {e}")),
                                }
                            }
                            Err(e) => log(&format!("watch: {e}")),
                        }
                    }
                    if let Some(watcher) = &mut self.watcher {
                        if let Err(e) = watcher.add(s, &w) {
                            log(&format!("{}: {e}; not watching", spec.name));
                        }
                    }
                }
                None => {
                    if let Some(watcher) = &mut self.watcher {
                        watcher.remove(s);
                    }
                }
            }
            let spec = &self.sup.specs[s];
            let auto = (!spec.removed)
                .then(|| spec.config.scaling.autoscale.clone())
                .flatten();
            match (auto, spec.range) {
                (Some(cfg), Some(range)) => {
                    let fresh = !self.autoscalers.contains_key(&s)
                        || self.autoscale_cfgs.get(&s) != Some(&cfg);
                    if fresh {
                        let limits =
                            crate::autoscale::Limits::from_config(&spec.config.isolation.limits);
                        let a = Autoscaler::new(&spec.name, &cfg, range, limits);
                        self.timers
                            .push(Reverse((now + a.interval(), TimerKey::Autoscale(s))));
                        self.autoscalers.insert(s, a);
                        self.autoscale_cfgs.insert(s, cfg);
                    }
                }
                _ => {
                    self.autoscalers.remove(&s);
                    self.autoscale_cfgs.remove(&s);
                }
            }
        }
    }

    /// Every change of a unit's state since last seen: hook events.
    pub(super) fn note_transitions(&mut self, units: &[usize]) {
        for &u in units {
            let st = &self.sup.services[u].state;
            let now_seen = (st.name(), st.pid());
            let before = std::mem::replace(&mut self.seen[u], now_seen);
            if before == now_seen || self.hooks.is_empty() {
                continue;
            }
            let (was, was_pid) = before;
            let (is, pid) = now_seen;
            let mut events = Vec::new();
            // The process that ran is gone (replaced or not).
            if was_pid.is_some() && pid != was_pid {
                events.push(HookEvent::Exited);
            }
            if pid.is_some() && pid != was_pid {
                events.push(HookEvent::Started);
            }
            if is == "running" && (was != "running" || pid != was_pid) {
                events.push(HookEvent::Ready);
            }
            if is == "failed" && was != "failed" {
                events.push(HookEvent::Failed);
            }
            for e in events {
                self.fire_hook(u, e, None);
            }
        }
    }

    /// Run the hooks that want `event` of unit `u`.
    pub(super) fn fire_hook(&mut self, u: usize, event: HookEvent, reason: Option<String>) {
        if self.hooks.is_empty() {
            return;
        }
        let spec = &self.sup.specs[self.sup.unit_spec[u]];
        let unit = &self.sup.services[u];
        let instance = spec.range.map(|_| unit.name.as_str());
        let mut data = HookEventData::new(event, SystemTime::now()).service(&spec.name, instance);
        if event == HookEvent::Exited {
            match unit.last_exit {
                Some(ExitStatus::Code(c)) => data = data.exit(HookExit::Code(c)),
                Some(ExitStatus::Signal(s)) => data = data.exit(HookExit::Signal(s)),
                None => {}
            }
        }
        if let Some(r) = reason.or_else(|| {
            matches!(event, HookEvent::Failed | HookEvent::Exited)
                .then(|| unit.last_error.clone())
                .flatten()
        }) {
            data = data.reason(r);
        }
        self.fire(data);
    }

    pub(super) fn fire(&mut self, data: HookEventData) {
        let now = Instant::now();
        for l in self
            .hooks
            .fire(&data, now, &mut self.jobs, self.poll.registry())
        {
            log(&l);
        }
        self.arm_jobs_timer();
    }

    fn arm_jobs_timer(&mut self) {
        if let Some(t) = self.jobs.next_deadline() {
            self.timers.push(Reverse((t, TimerKey::Jobs)));
        }
    }

    /// A job's pipe is ready.
    pub(super) fn on_job_event(&mut self, token: Token) {
        self.jobs.on_ready(token, self.poll.registry());
        self.finish_jobs();
    }

    pub(super) fn on_jobs_timer(&mut self) {
        self.jobs.on_timeout(Instant::now(), self.poll.registry());
        self.finish_jobs();
    }

    /// Hand finished jobs to hooks and policies.
    pub(super) fn finish_jobs(&mut self) {
        let now = Instant::now();
        for f in self.jobs.take_finished() {
            match f.kind {
                JobKind::Hook(_) => {
                    for l in self
                        .hooks
                        .on_finished(&f, now, &mut self.jobs, self.poll.registry())
                    {
                        log(&l);
                    }
                }
                JobKind::Policy(s) => {
                    self.policy_running.remove(&s);
                    let answer = match &f.outcome {
                        Outcome::Ok { stdout } => crate::autoscale::parse_policy_output(stdout),
                        Outcome::Failed { why } => Err(format!("failed: {why}")),
                        Outcome::TimedOut => Err("timed out; killed".into()),
                    };
                    let current = self.sup.specs[s].want;
                    match answer {
                        Ok(n) => {
                            if let Some(a) = self.autoscalers.get_mut(&s) {
                                let d = a.policy_decision(now, current, n);
                                self.apply_decision(s, d, now);
                            }
                        }
                        Err(e) => {
                            let name = self.sup.specs[s].name.clone();
                            let msg = format!("{name}: autoscale policy: {e}; no change");
                            // The same failure again is not logged again.
                            if self.autoscale_status.get(&s) != Some(&msg) {
                                log(&msg);
                            }
                            self.autoscale_status.insert(s, msg);
                        }
                    }
                }
            }
        }
        self.arm_jobs_timer();
    }

    /// inotify has events.
    pub(super) fn on_watch_event(&mut self) {
        let now = Instant::now();
        if let Some(w) = &mut self.watcher {
            for l in w.on_readable(now) {
                log(&format!("watch: {l}"));
            }
            if let Some(t) = w.next_deadline() {
                self.timers.push(Reverse((t, TimerKey::Watch)));
            }
        }
    }

    /// Debounce windows that ended: restart their services.
    pub(super) fn on_watch_timer(&mut self) {
        let now = Instant::now();
        let Some(w) = &mut self.watcher else {
            return;
        };
        let due = w.due(now);
        if let Some(t) = w.next_deadline() {
            self.timers.push(Reverse((t, TimerKey::Watch)));
        }
        for s in due {
            if self.sup.shutting_down() || self.sup.specs[s].removed {
                continue;
            }
            let units: Vec<usize> = self
                .sup
                .active_units(s)
                .iter()
                .copied()
                .filter(|&u| !self.sup.services[u].state.is_down())
                .collect();
            if units.is_empty() {
                continue;
            }
            log(&format!(
                "{}: files changed; restarting",
                self.sup.specs[s].name
            ));
            let a = if units.len() > 1 {
                self.sup.restart_rolling(&units, now)
            } else {
                self.sup
                    .handle(units[0], crate::supervisor::Event::Restart, now)
            };
            self.execute(a);
        }
    }

    /// An autoscaled service's evaluation time: sample, then decide (or
    /// ask its policy).
    pub(super) fn on_autoscale_timer(&mut self, s: usize, at: Instant) {
        let now = Instant::now();
        let Some(a) = self.autoscalers.get_mut(&s) else {
            return; // no longer autoscaled (reload)
        };
        let next = at + a.interval();
        self.timers
            .push(Reverse((next.max(now), TimerKey::Autoscale(s))));
        if self.sup.shutting_down() {
            return;
        }
        // The service's cgroup and its instances' leaves.
        let units: Vec<usize> = self.sup.active_units(s).to_vec();
        let leaves: Vec<std::path::PathBuf> = units
            .iter()
            .filter_map(|&u| self.io[u].leaf.as_ref().map(|l| l.path().to_path_buf()))
            .collect();
        let service_dir = leaves
            .first()
            .and_then(|l| l.parent().map(|p| p.to_path_buf()))
            .unwrap_or_default();
        let sample = crate::autoscale::read_sample(&leaves, &service_dir);
        let current = self.sup.specs[s].want;
        let a = self.autoscalers.get_mut(&s).expect("checked above");
        a.record(now, sample);
        if let Some(policy) = a.policy().cloned() {
            if a.cooldown_left(now).is_some() || self.policy_running.contains(&s) {
                return;
            }
            let input = a.policy_input(now, current);
            let spec = JobSpec {
                argv: &policy.command,
                env: &self.base_env,
                stdin: input.into_bytes(),
                timeout: policy.timeout,
                capture_stdout: true,
            };
            match self
                .jobs
                .start(JobKind::Policy(s), spec, now, self.poll.registry())
            {
                Ok(_) => {
                    self.policy_running.insert(s);
                    self.arm_jobs_timer();
                }
                Err(e) => {
                    let msg = format!(
                        "{}: autoscale policy cannot run: {e}; no change",
                        self.sup.specs[s].name
                    );
                    log(&msg);
                    self.autoscale_status.insert(s, msg);
                }
            }
            return;
        }
        let d = a.evaluate(now, current);
        self.apply_decision(s, d, now);
    }

    fn apply_decision(&mut self, s: usize, d: Decision, now: Instant) {
        let name = self.sup.specs[s].name.clone();
        match d {
            Decision::Keep { why, notable } => {
                if notable {
                    log(&format!("{name}: autoscale: {why}"));
                }
                self.autoscale_status.insert(s, why);
            }
            Decision::Scale { to, reason } => {
                let why = format!("autoscale: {reason}");
                let r = self.scale(&name, Some(to), None, &why, now);
                if !r.ok {
                    log(&format!(
                        "{name}: autoscale to {to} refused: {}",
                        r.error.unwrap_or_default()
                    ));
                }
                self.autoscale_status.insert(s, reason);
            }
        }
    }

    /// After a scale by anyone: the autoscaler's cooldown, the event.
    pub(super) fn scaled(&mut self, s: usize, from: u32, to: u32, why: &str, now: Instant) {
        if let Some(a) = self.autoscalers.get_mut(&s) {
            a.changed(now);
            if let Some(r) = self.sup.specs[s].range {
                a.set_range(r);
            }
        }
        let direction = if to > from { "up" } else { "down" };
        *self
            .scale_events
            .entry((self.sup.specs[s].name.clone(), direction))
            .or_insert(0) += 1;
        let data = HookEventData::new(HookEvent::Scaled, SystemTime::now())
            .service(&self.sup.specs[s].name.clone(), None)
            .scaled(from, to)
            .reason(why);
        self.fire(data);
    }
}
