//! The service table: every service's state machine, targets (`name`,
//! `@group`, all), and the ordered shutdown. Pure: no processes, no clock.

mod service;

pub use service::{Action, Event, ExitStatus, Policy, Service, State};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::config::{Condition, Config, Readiness, RestartPolicy, ServiceKind};

/// Which services a command acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    One(String),
    Group(String),
    All,
}

impl Target {
    /// `web`, `@group`, or `*` for all.
    pub fn parse(s: &str) -> Target {
        if s == "*" {
            Target::All
        } else if let Some(g) = s.strip_prefix('@') {
            Target::Group(g.to_string())
        } else {
            Target::One(s.to_string())
        }
    }
}

/// Shutdown in progress: units are stopped one by one in reverse start
/// order; at `deadline` whatever is left is killed.
#[derive(Debug)]
struct Shutdown {
    deadline: Instant,
    /// Units still to stop, the next at the end.
    pending: Vec<usize>,
    current: Option<usize>,
    killed: bool,
}

/// A rolling restart: one instance at a time, the next once the new one is
/// ready.
#[derive(Debug)]
struct Rollout {
    spec: usize,
    /// Units still to restart, the next at the front.
    pending: std::collections::VecDeque<usize>,
    /// The unit restarting now, and the pid it had.
    current: Option<(usize, Option<i32>)>,
}

/// One configured service: the template its instances (units) share.
#[derive(Debug)]
pub struct Spec {
    pub name: String,
    /// The service's settings as configured (what reload compares).
    pub config: crate::config::ServiceConfig,
    /// None: one unit named like the service; Some: units `name@k`.
    pub range: Option<InstanceRange>,
    /// Instances wanted now (within `range`; 1 without one).
    pub want: u32,
    /// Its units by instance number; those at `want` and above are surplus
    /// (stopping, or down and hidden), kept for reuse.
    pub units: Vec<usize>,
    /// Gone from the config (reload): its units stop and are hidden.
    pub removed: bool,
    /// Set by `run --exit-with NAME` besides `critical = true`.
    pub critical: bool,
    /// Dependencies: (spec, condition).
    deps: Vec<(usize, Condition)>,
}

/// All services and their units, in config (start) order.
#[derive(Debug)]
pub struct Supervisor {
    pub specs: Vec<Spec>,
    /// One state machine per unit (an instance of a service).
    pub services: Vec<Service>,
    /// The spec of each unit.
    pub unit_spec: Vec<usize>,
    /// The instance number of each unit.
    pub unit_instance: Vec<u32>,
    shutdown: Option<Shutdown>,
    shutdown_timeout: Duration,
    /// Specs, dependencies first; ties in file order. Shutdown goes backwards.
    spec_order: Vec<usize>,
    /// Health check results per unit (None: no check, or no result yet).
    pub healthy: Vec<Option<bool>>,
    /// Why a waiting unit waits.
    pub waiting_for: Vec<Option<String>>,
    rollouts: Vec<Rollout>,
    /// A critical service went down for good: sentinel's exit code.
    pub exit_code: Option<i32>,
}

/// An action for the unit at an index.
pub type Tagged = (usize, Action);

fn tag(i: usize, actions: Vec<Action>) -> Vec<Tagged> {
    actions.into_iter().map(|a| (i, a)).collect()
}

fn policy_of(svc: &crate::config::ServiceConfig) -> Policy {
    let life = &svc.lifecycle;
    let mut policy = Policy::simple(svc.restart, svc.backoff, svc.stop_signal, svc.stop_timeout);
    policy.ready_on_start = life.ready == Readiness::Started;
    policy.start_timeout = life.start_timeout;
    policy.oneshot = life.kind == ServiceKind::Oneshot;
    policy.every = life.every;
    policy.start_limit = svc.scaling.start_limit;
    policy
}

/// What a reload changed; the loop prepares the units before carrying out
/// the actions.
#[derive(Debug, Default)]
pub struct ReloadOutcome {
    /// Units made now (they need their fds and plan).
    pub added_units: Vec<usize>,
    /// Units of changed services (their plan must be made anew).
    pub changed_units: Vec<usize>,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
    pub actions: Vec<Tagged>,
}

/// What a scale changed.
#[derive(Debug, Default)]
pub struct ScaleOutcome {
    pub added_units: Vec<usize>,
    pub actions: Vec<Tagged>,
    pub from: u32,
    pub to: u32,
}

use crate::config::InstanceRange;

impl Supervisor {
    pub fn new(config: &Config) -> Self {
        let mut sup = Supervisor {
            specs: Vec::new(),
            services: Vec::new(),
            unit_spec: Vec::new(),
            unit_instance: Vec::new(),
            shutdown: None,
            shutdown_timeout: config.supervisor.shutdown_timeout,
            spec_order: Vec::new(),
            healthy: Vec::new(),
            waiting_for: Vec::new(),
            rollouts: Vec::new(),
            exit_code: None,
        };
        for (name, svc) in &config.services {
            let s = sup.add_spec(name, svc);
            sup.grow_units(s);
        }
        sup.relink(config);
        sup
    }

    fn add_spec(&mut self, name: &str, svc: &crate::config::ServiceConfig) -> usize {
        let range = svc.scaling.instances;
        self.specs.push(Spec {
            name: name.to_string(),
            config: svc.clone(),
            range,
            want: range.map_or(1, |r| r.min),
            units: Vec::new(),
            removed: false,
            critical: svc.scaling.critical,
            deps: Vec::new(),
        });
        self.specs.len() - 1
    }

    /// Make units until the spec has `want`; returns the new ones.
    fn grow_units(&mut self, s: usize) -> Vec<usize> {
        let mut made = Vec::new();
        while self.specs[s].units.len() < self.specs[s].want as usize {
            let k = self.specs[s].units.len() as u32;
            let i = self.services.len();
            let name = unit_name(&self.specs[s].name, self.specs[s].range, k);
            self.services
                .push(Service::new(name, policy_of(&self.specs[s].config)));
            self.unit_spec.push(s);
            self.unit_instance.push(k);
            self.healthy.push(None);
            self.waiting_for.push(None);
            self.specs[s].units.push(i);
            made.push(i);
        }
        made
    }

    /// Dependencies and start order from `config` (validated: no cycles).
    fn relink(&mut self, config: &Config) {
        let by_name = |sup: &Supervisor, n: &str| {
            sup.specs
                .iter()
                .position(|s| s.name == n && !s.removed)
                .expect("every configured service has a spec")
        };
        let cfg_spec: Vec<usize> = config
            .services
            .iter()
            .map(|(n, _)| by_name(self, n))
            .collect();
        let graph = crate::deps::Graph::of(config).ok();
        for (c, &s) in cfg_spec.iter().enumerate() {
            self.specs[s].deps = graph.as_ref().map_or_else(Vec::new, |g| {
                g.dependencies(c)
                    .iter()
                    .map(|&(d, cond)| (cfg_spec[d], cond))
                    .collect()
            });
        }
        let order = graph
            .as_ref()
            .map_or_else(|| (0..cfg_spec.len()).collect(), |g| g.start_order());
        self.spec_order = order.into_iter().map(|c| cfg_spec[c]).collect();
    }

    /// The name of a unit: `web`, or `web@2` for a service with instances.
    pub fn name(&self, i: usize) -> &str {
        &self.services[i].name
    }

    /// The active units of a spec (instances below `want`).
    pub fn active_units(&self, s: usize) -> &[usize] {
        let spec = &self.specs[s];
        if spec.removed {
            return &[];
        }
        &spec.units[..(spec.want as usize).min(spec.units.len())]
    }

    /// Whether a unit is shown (status, metrics): active, or still running.
    pub fn visible(&self, i: usize) -> bool {
        let s = &self.specs[self.unit_spec[i]];
        let active = !s.removed && self.unit_instance[i] < s.want;
        active || !self.services[i].state.is_down()
    }

    /// Every visible unit, in config order.
    pub fn visible_units(&self) -> Vec<usize> {
        self.all_units()
            .into_iter()
            .filter(|&i| self.visible(i))
            .collect()
    }

    /// Every unit, specs in config order, instances in order.
    fn all_units(&self) -> Vec<usize> {
        self.specs
            .iter()
            .flat_map(|s| s.units.iter().copied())
            .collect()
    }

    /// Units in start order (dependencies first).
    fn unit_order(&self) -> Vec<usize> {
        self.spec_order
            .iter()
            .flat_map(|&s| self.specs[s].units.iter().copied())
            .collect()
    }

    /// Whether dependency spec `d` meets `cond`: every active instance does
    /// (and there is at least one).
    fn meets(&self, d: usize, cond: Condition) -> Result<(), String> {
        let units = self.active_units(d);
        let bad = units.iter().find(|&&u| {
            let s = &self.services[u].state;
            !match cond {
                Condition::Started => matches!(
                    s,
                    State::Starting { .. } | State::Running { .. } | State::Completed { .. }
                ),
                Condition::Ready => matches!(s, State::Running { .. } | State::Completed { .. }),
                Condition::Healthy => {
                    self.healthy[u] == Some(true)
                        && matches!(s, State::Running { .. } | State::Starting { .. })
                }
                Condition::Completed => matches!(s, State::Completed { .. }),
            }
        });
        match (bad, units.is_empty()) {
            (_, true) => Err(format!(
                "waiting for {} to be {cond} (it has no instances)",
                self.specs[d].name
            )),
            (Some(&u), _) => Err(format!(
                "waiting for {} to be {cond} (it is {})",
                self.services[u].name,
                self.services[u].state.name()
            )),
            (None, false) => Ok(()),
        }
    }

    /// Why unit `i` cannot start yet: the first unmet dependency, or None.
    fn unmet(&self, i: usize) -> Option<String> {
        let spec = &self.specs[self.unit_spec[i]];
        spec.deps
            .iter()
            .find_map(|&(d, cond)| self.meets(d, cond).err())
    }

    /// Start `i` now if its dependencies allow, else mark it waiting.
    fn start_or_wait(&mut self, i: usize, event: Event, now: Instant) -> Vec<Tagged> {
        match self.unmet(i) {
            Some(why) if self.services[i].state.is_down() => {
                self.services[i].state = State::Waiting;
                self.waiting_for[i] = Some(why);
                Vec::new()
            }
            _ => {
                self.waiting_for[i] = None;
                tag(i, self.services[i].handle(event, now))
            }
        }
    }

    /// Start the waiting units whose dependencies are now there, in order.
    fn advance_waiting(&mut self, now: Instant) -> Vec<Tagged> {
        let mut out = Vec::new();
        if self.shutdown.is_some() {
            return out;
        }
        let order = self.unit_order();
        let mut progress = true;
        while progress {
            progress = false;
            for &i in &order {
                if self.services[i].state != State::Waiting {
                    continue;
                }
                match self.unmet(i) {
                    None => {
                        self.waiting_for[i] = None;
                        // Leave `Waiting` now: the spawn's answer comes later.
                        self.services[i].state = State::Stopped;
                        out.extend(tag(i, self.services[i].handle(Event::Start, now)));
                        progress = true;
                    }
                    Some(why) => self.waiting_for[i] = Some(why),
                }
            }
        }
        out
    }

    /// A health check result changed (the loop runs the checks).
    pub fn set_health(&mut self, i: usize, healthy: Option<bool>, now: Instant) -> Vec<Tagged> {
        self.healthy[i] = healthy;
        let mut out = self.advance_waiting(now);
        out.extend(self.advance_rollouts(now));
        out
    }

    /// The spec named `name` (not removed).
    pub fn spec_index(&self, name: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.name == name && !s.removed)
    }

    /// The unit named `name` (`web`, `web@1`), if visible.
    pub fn index(&self, name: &str) -> Option<usize> {
        (0..self.services.len()).find(|&i| self.services[i].name == name && self.visible(i))
    }

    /// The units a target names, in start order, or an error that says
    /// what exists. A service name means all its instances.
    pub fn resolve(&self, target: &Target) -> Result<Vec<usize>, String> {
        let live = |s: &Spec| !s.removed;
        match target {
            Target::All => Ok(self.visible_units()),
            Target::One(name) => {
                if let Some(s) = self.spec_index(name) {
                    let units: Vec<usize> = self.specs[s]
                        .units
                        .iter()
                        .copied()
                        .filter(|&u| self.visible(u))
                        .collect();
                    return Ok(units);
                }
                self.index(name).map(|i| vec![i]).ok_or_else(|| {
                    let names: Vec<&str> = self
                        .specs
                        .iter()
                        .filter(|s| live(s))
                        .map(|s| s.name.as_str())
                        .collect();
                    format!("no service named {name:?}; services: {}", names.join(", "))
                })
            }
            Target::Group(g) => {
                let specs: Vec<&Spec> = self
                    .specs
                    .iter()
                    .filter(|s| live(s) && s.config.groups.contains(g))
                    .collect();
                if !specs.is_empty() {
                    return Ok(specs
                        .iter()
                        .flat_map(|s| s.units.iter().copied())
                        .filter(|&u| self.visible(u))
                        .collect());
                }
                let mut groups: Vec<&str> = self
                    .specs
                    .iter()
                    .filter(|s| live(s))
                    .flat_map(|s| s.config.groups.iter().map(String::as_str))
                    .collect();
                groups.sort_unstable();
                groups.dedup();
                if groups.is_empty() {
                    Err(format!(
                        "no group named {g:?}; no service has a `group` key"
                    ))
                } else {
                    Err(format!(
                        "no group named {g:?}; groups: {}",
                        groups.join(", ")
                    ))
                }
            }
        }
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    /// Start every autostart service's instances, in order.
    pub fn start_all(&mut self, now: Instant) -> Vec<Tagged> {
        let mut out = Vec::new();
        for k in 0..self.spec_order.len() {
            let s = self.spec_order[k];
            if self.specs[s].config.autostart {
                for u in self.active_units(s).to_vec() {
                    out.extend(self.handle(u, Event::Start, now));
                }
            }
        }
        out
    }

    /// Feed one unit an event.
    pub fn handle(&mut self, i: usize, event: Event, now: Instant) -> Vec<Tagged> {
        let was_down = self.services[i].state.is_down();
        let mut out = match event {
            Event::Start => self.start_or_wait(i, Event::Start, now),
            Event::Restart => {
                let mut out = self.start_or_wait(i, Event::Restart, now);
                let s = self.unit_spec[i];
                if self.specs[s].config.lifecycle.propagate {
                    for d in self.dependents_transitive(s) {
                        for j in self.active_units(d).to_vec() {
                            if !self.services[j].state.is_down() {
                                out.extend(tag(j, self.services[j].handle(Event::Restart, now)));
                            }
                        }
                    }
                }
                out
            }
            Event::Stop => {
                self.waiting_for[i] = None;
                tag(i, self.services[i].handle(Event::Stop, now))
            }
            other => tag(i, self.services[i].handle(other, now)),
        };
        if !was_down {
            out.extend(self.check_critical(i, now));
        }
        out.extend(self.advance_waiting(now));
        out.extend(self.advance_rollouts(now));
        out.extend(self.advance_shutdown(now));
        out
    }

    /// Specs that depend on `s`, directly or not, in start order.
    fn dependents_transitive(&self, s: usize) -> Vec<usize> {
        let mut seen = vec![false; self.specs.len()];
        let mut stack = vec![s];
        while let Some(x) = stack.pop() {
            for (d, spec) in self.specs.iter().enumerate() {
                if !spec.removed && !seen[d] && spec.deps.iter().any(|&(t, _)| t == x) {
                    seen[d] = true;
                    stack.push(d);
                }
            }
        }
        self.spec_order
            .iter()
            .copied()
            .filter(|&d| seen[d])
            .collect()
    }

    /// A critical service's unit went down for good: stop everything and
    /// exit with its code.
    fn check_critical(&mut self, i: usize, now: Instant) -> Vec<Tagged> {
        let s = self.unit_spec[i];
        let unit = &self.services[i];
        let for_good = matches!(unit.state, State::Failed | State::Exited);
        if !self.specs[s].critical || !for_good || self.shutdown.is_some() {
            return Vec::new();
        }
        let code = match unit.last_exit {
            Some(e) => e.as_code(),
            None => 1,
        };
        self.exit_code = Some(code);
        let mut out =
            vec![(
                i,
                Action::Log(format!(
                "{}: critical service is down for good ({}); stopping everything, exit code {code}",
                unit.name,
                unit.last_exit
                    .map_or_else(|| unit.last_error.clone().unwrap_or_default(), |e| e.to_string())
            )),
            )];
        out.extend(self.begin_shutdown(now));
        out
    }

    /// `run --exit-with NAME`: make a service critical.
    pub fn set_critical(&mut self, name: &str) -> Result<(), String> {
        let s = self.spec_index(name).ok_or_else(|| {
            let names: Vec<&str> = self.specs.iter().map(|s| s.name.as_str()).collect();
            format!(
                "--exit-with {name}: no such service; services: {}",
                names.join(", ")
            )
        })?;
        self.specs[s].critical = true;
        Ok(())
    }

    // ----- scaling -------------------------------------------------------

    /// Set a service's instance count (`Some(n)`) and/or its range. Scaling
    /// down stops the highest-numbered instances; scaling up starts new
    /// ones unless the service is stopped (then they start with it).
    pub fn scale(
        &mut self,
        name: &str,
        count: Option<u32>,
        range: Option<InstanceRange>,
        now: Instant,
    ) -> Result<ScaleOutcome, String> {
        if self.shutdown.is_some() {
            return Err("sentinel is shutting down".into());
        }
        let s = self.spec_index(name).ok_or_else(|| {
            let names: Vec<&str> = self
                .specs
                .iter()
                .filter(|s| !s.removed)
                .map(|s| s.name.as_str())
                .collect();
            format!("no service named {name:?}; services: {}", names.join(", "))
        })?;
        let Some(old_range) = self.specs[s].range else {
            return Err(format!(
                "{name} has no instances; set `instances = N` (or a range like \"1-4\") on it, then reload"
            ));
        };
        let range = range.unwrap_or(old_range);
        let from = self.specs[s].want;
        let to = match count {
            Some(n) if n < range.min || n > range.max => {
                return Err(format!(
                    "{name}: {n} is outside its range {range}; give a count within it, or a new range (`scale {name} {}-{}`)",
                    n.min(range.min),
                    n.max(range.max)
                ))
            }
            Some(n) => n,
            None => from.clamp(range.min, range.max),
        };
        self.specs[s].range = Some(range);
        Ok(self.set_want(s, to, now))
    }

    /// Move a spec to `to` instances.
    fn set_want(&mut self, s: usize, to: u32, now: Instant) -> ScaleOutcome {
        let from = self.specs[s].want;
        // Is the service up (any active unit not stopped by hand)?
        let up = self
            .active_units(s)
            .iter()
            .any(|&u| self.services[u].state != State::Stopped)
            || from == 0;
        self.specs[s].want = to;
        let added_units = self.grow_units(s);
        let mut actions = Vec::new();
        let units = self.specs[s].units.clone();
        if to > from && up {
            for &u in &units[from as usize..to as usize] {
                if self.services[u].state.is_down() {
                    actions.extend(self.start_or_wait(u, Event::Start, now));
                }
            }
        }
        if to < from {
            // Highest first.
            for &u in units[to as usize..from as usize].iter().rev() {
                self.waiting_for[u] = None;
                actions.extend(tag(u, self.services[u].handle(Event::Stop, now)));
            }
        }
        // Rollouts forget units no longer active.
        for r in &mut self.rollouts {
            if r.spec == s {
                r.pending
                    .retain(|u| units[to as usize..].iter().all(|x| x != u));
            }
        }
        ScaleOutcome {
            added_units,
            actions,
            from,
            to,
        }
    }

    /// Restart the units of `target` one at a time: each next one only once
    /// the one before is back and ready. Units that are down are skipped.
    pub fn restart_rolling(&mut self, units: &[usize], now: Instant) -> Vec<Tagged> {
        let mut by_spec: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &u in units {
            if !self.services[u].state.is_down() {
                by_spec.entry(self.unit_spec[u]).or_default().push(u);
            }
        }
        for (spec, list) in by_spec {
            self.rollouts.retain(|r| r.spec != spec);
            self.rollouts.push(Rollout {
                spec,
                pending: list.into(),
                current: None,
            });
        }
        let mut out = self.advance_rollouts(now);
        out.extend(self.advance_waiting(now));
        out
    }

    /// Whether a rolling restart of the spec is under way.
    #[cfg(test)]
    pub fn rolling(&self, s: usize) -> bool {
        self.rollouts.iter().any(|r| r.spec == s)
    }

    fn advance_rollouts(&mut self, now: Instant) -> Vec<Tagged> {
        let mut out = Vec::new();
        if self.shutdown.is_some() {
            self.rollouts.clear();
            return out;
        }
        let mut k = 0;
        while k < self.rollouts.len() {
            let mut done = false;
            loop {
                let r = &mut self.rollouts[k];
                if let Some((u, old)) = r.current {
                    let st = &self.services[u].state;
                    match st {
                        State::Running { pid } if Some(*pid) != old => r.current = None,
                        State::Failed | State::Exited | State::Backoff { .. } => {
                            out.push((
                                u,
                                Action::Log(format!(
                                    "{}: rolling restart stopped: {} did not come back ({})",
                                    self.specs[r.spec].name,
                                    self.services[u].name,
                                    st.name()
                                )),
                            ));
                            done = true;
                            break;
                        }
                        State::Stopped => r.current = None,
                        _ => break,
                    }
                }
                let Some(u) = self.rollouts[k].pending.pop_front() else {
                    done = true;
                    break;
                };
                if self.services[u].state.is_down() {
                    continue;
                }
                let old = self.services[u].state.pid();
                self.rollouts[k].current = Some((u, old));
                out.extend(tag(u, self.services[u].handle(Event::Restart, now)));
                break;
            }
            if done {
                let r = self.rollouts.remove(k);
                out.push((
                    self.specs[r.spec].units[0],
                    Action::Log(format!("{}: rolling restart done", self.specs[r.spec].name)),
                ));
            } else {
                k += 1;
            }
        }
        out
    }

    // ----- reload --------------------------------------------------------

    /// Apply a new (validated) config: added services start, removed ones
    /// stop, changed ones restart (rolling when they have instances),
    /// untouched ones are left alone.
    pub fn reload(&mut self, config: &Config, now: Instant) -> ReloadOutcome {
        let mut o = ReloadOutcome::default();
        let mut restart: Vec<usize> = Vec::new();
        let mut start: Vec<usize> = Vec::new();
        let mut present = vec![false; self.specs.len()];
        for (name, svc) in &config.services {
            let found = self.specs.iter().position(|s| s.name == *name);
            match found {
                Some(s) if !self.specs[s].removed && self.specs[s].config == *svc => {
                    present[s] = true;
                    o.unchanged += 1;
                }
                Some(s) if !self.specs[s].removed => {
                    present[s] = true;
                    o.changed.push(name.clone());
                    self.respec(s, svc);
                    let before = self.specs[s].want;
                    let range = self.specs[s].range;
                    let want = range.map_or(1, |r| before.clamp(r.min, r.max));
                    let sc = self.set_want(s, want, now);
                    o.added_units.extend(sc.added_units);
                    o.actions.extend(sc.actions);
                    o.changed_units.extend(self.specs[s].units.iter().copied());
                    restart.push(s);
                }
                Some(s) => {
                    // Removed earlier, back now: its units are reused.
                    present[s] = true;
                    self.specs[s].removed = false;
                    self.respec(s, svc);
                    self.specs[s].want = self.specs[s].range.map_or(1, |r| r.min);
                    for &u in &self.specs[s].units.clone() {
                        self.services[u].restarts = 0;
                        self.services[u].last_exit = None;
                        self.services[u].last_error = None;
                    }
                    o.added_units.extend(self.grow_units(s));
                    o.changed_units.extend(self.specs[s].units.iter().copied());
                    o.added.push(name.clone());
                    start.push(s);
                }
                None => {
                    let s = self.add_spec(name, svc);
                    present.push(true);
                    o.added_units.extend(self.grow_units(s));
                    o.added.push(name.clone());
                    start.push(s);
                }
            }
        }
        for s in 0..self.specs.len() {
            if !present.get(s).copied().unwrap_or(false) && !self.specs[s].removed {
                self.specs[s].removed = true;
                self.rollouts.retain(|r| r.spec != s);
                o.removed.push(self.specs[s].name.clone());
                for u in self.specs[s].units.clone() {
                    self.waiting_for[u] = None;
                    o.actions
                        .extend(tag(u, self.services[u].handle(Event::Stop, now)));
                }
            }
        }
        self.shutdown_timeout = config.supervisor.shutdown_timeout;
        self.relink(config);
        for s in restart {
            let units: Vec<usize> = self.active_units(s).to_vec();
            if self.specs[s].range.is_some() && units.len() > 1 {
                o.actions.extend(self.restart_rolling(&units, now));
            } else {
                for u in units {
                    if !self.services[u].state.is_down() {
                        o.actions.extend(self.handle(u, Event::Restart, now));
                    }
                }
            }
        }
        for s in start {
            if self.specs[s].config.autostart {
                for u in self.active_units(s).to_vec() {
                    o.actions.extend(self.handle(u, Event::Start, now));
                }
            }
        }
        o.actions.extend(self.advance_waiting(now));
        o
    }

    /// Take a spec's new settings (its units' policies and names too).
    fn respec(&mut self, s: usize, svc: &crate::config::ServiceConfig) {
        let spec = &mut self.specs[s];
        spec.config = svc.clone();
        spec.range = svc.scaling.instances;
        spec.critical = svc.scaling.critical;
        let policy = policy_of(svc);
        for (k, &u) in spec.units.iter().enumerate() {
            self.services[u].policy = policy.clone();
            self.services[u].name = unit_name(&spec.name, spec.range, k as u32);
        }
    }

    // ----- shutdown ------------------------------------------------------

    /// Begin the ordered shutdown (idempotent).
    pub fn begin_shutdown(&mut self, now: Instant) -> Vec<Tagged> {
        if self.shutdown.is_some() {
            return Vec::new();
        }
        for s in &mut self.services {
            // Nothing restarts from here on.
            s.policy.restart = RestartPolicy::Never;
        }
        self.rollouts.clear();
        let mut out = Vec::new();
        for i in 0..self.services.len() {
            if matches!(
                self.services[i].state,
                State::Backoff { .. } | State::Waiting | State::Completed { next: Some(_) }
            ) {
                out.extend(tag(i, self.services[i].handle(Event::Stop, now)));
            }
        }
        self.shutdown = Some(Shutdown {
            deadline: now + self.shutdown_timeout,
            pending: self.unit_order(),
            current: None,
            killed: false,
        });
        out.extend(self.advance_shutdown(now));
        out
    }

    /// True once shutdown was asked for and every unit is down.
    pub fn shutdown_complete(&self) -> bool {
        self.shutdown.is_some() && self.services.iter().all(|s| s.state.is_down())
    }

    /// The shutdown deadline, while shutting down and not yet past it.
    pub fn shutdown_deadline(&self) -> Option<Instant> {
        self.shutdown
            .as_ref()
            .filter(|s| !s.killed)
            .map(|s| s.deadline)
    }

    /// Move the shutdown along: the next unit when the current one is
    /// down; SIGKILL for all that is left once the deadline has passed.
    pub fn advance_shutdown(&mut self, now: Instant) -> Vec<Tagged> {
        let mut out = Vec::new();
        let Some(sd) = self.shutdown.as_mut() else {
            return out;
        };
        if !sd.killed && now >= sd.deadline {
            sd.killed = true;
            sd.pending.clear();
            sd.current = None;
            for (i, s) in self.services.iter_mut().enumerate() {
                if !s.state.is_down() {
                    out.push((
                        i,
                        Action::Log(format!(
                            "{}: shutdown deadline passed; sending SIGKILL",
                            s.name
                        )),
                    ));
                    out.extend(s.kill_now(now).into_iter().map(|a| (i, a)));
                }
            }
            return out;
        }
        loop {
            if let Some(c) = sd.current {
                if !self.services[c].state.is_down() {
                    break;
                }
                sd.current = None;
            }
            let Some(next) = sd.pending.pop() else { break };
            if self.services[next].state.is_down() {
                continue;
            }
            sd.current = Some(next);
            out.extend(tag(next, self.services[next].handle(Event::Stop, now)));
        }
        out
    }
}

/// `web` for a service without instances, `web@k` with.
pub fn unit_name(service: &str, range: Option<InstanceRange>, k: u32) -> String {
    match range {
        None => service.to_string(),
        Some(_) => format!("{service}@{k}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Backoff, LogConfig, ServiceConfig, Signal, SupervisorConfig};
    use crate::config::{InstanceRange, Readiness};

    fn svc(groups: &[&str]) -> ServiceConfig {
        ServiceConfig {
            isolation: Default::default(),
            lifecycle: Default::default(),
            scaling: Default::default(),
            secrets: Default::default(),
            command: vec!["true".into()],
            workdir: None,
            env: Vec::new(),
            clear_env: false,
            restart: RestartPolicy::Always,
            backoff: Backoff::default(),
            stop_signal: Signal::TERM,
            stop_timeout: Duration::from_secs(5),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            autostart: true,
            log: LogConfig::default(),
            forward_signals: None,
        }
    }

    fn config_of(services: Vec<(String, ServiceConfig)>) -> Config {
        Config {
            version: crate::config::CONFIG_VERSION,
            hooks: Vec::new(),
            warnings: Vec::new(),
            secrets: Default::default(),
            slices: Vec::new(),
            supervisor: SupervisorConfig {
                cgroup_root: "sentinel".into(),
                log_dir: None,
                socket: None,
                socket_allow_uids: Vec::new(),
                shutdown_timeout: Duration::from_secs(30),
                echo_logs: None,
                forward_signals: Vec::new(),
                log: LogConfig::default(),
            },
            http: None,
            services,
        }
    }

    fn sup() -> Supervisor {
        let config = config_of(vec![
            ("db".into(), svc(&["back"])),
            ("api".into(), svc(&["back", "front"])),
            ("web".into(), svc(&["front"])),
        ]);
        let mut s = Supervisor::new(&config);
        let now = Instant::now();
        let actions = s.start_all(now);
        assert_eq!(actions.len(), 3);
        for (i, (idx, a)) in actions.into_iter().enumerate() {
            assert_eq!((idx, a), (i, Action::Spawn));
            s.handle(
                i,
                Event::Spawned {
                    pid: 100 + i as i32,
                },
                now,
            );
        }
        s
    }

    #[test]
    fn targets_resolve_with_helpful_errors() {
        let s = sup();
        assert_eq!(s.resolve(&Target::parse("@front")), Ok(vec![1, 2]));
        assert_eq!(s.resolve(&Target::parse("*")), Ok(vec![0, 1, 2]));
        assert_eq!(s.resolve(&Target::parse("db")), Ok(vec![0]));
        let e = s.resolve(&Target::parse("nope")).unwrap_err();
        assert_eq!(e, "no service named \"nope\"; services: db, api, web");
        let e = s.resolve(&Target::parse("@x")).unwrap_err();
        assert_eq!(e, "no group named \"x\"; groups: back, front");
    }

    fn stop_signals(actions: &[Tagged]) -> Vec<usize> {
        actions
            .iter()
            .filter(|(_, a)| matches!(a, Action::Signal { signal, .. } if *signal == Signal::TERM))
            .map(|(i, _)| *i)
            .collect()
    }

    #[test]
    fn shutdown_stops_in_reverse_order_one_at_a_time() {
        let mut s = sup();
        let t0 = Instant::now();
        let a = s.begin_shutdown(t0);
        assert_eq!(stop_signals(&a), vec![2]);
        let a = s.handle(
            2,
            Event::Exited {
                status: ExitStatus::Signal(15),
            },
            t0,
        );
        assert_eq!(stop_signals(&a), vec![1]);
        // db crashing meanwhile is not restarted.
        let a = s.handle(
            0,
            Event::Exited {
                status: ExitStatus::Code(1),
            },
            t0,
        );
        assert!(!a.iter().any(|(_, a)| *a == Action::Spawn));
        assert!(!s.shutdown_complete());
        s.handle(
            1,
            Event::Exited {
                status: ExitStatus::Code(0),
            },
            t0,
        );
        assert!(s.shutdown_complete());
    }

    #[test]
    fn shutdown_deadline_kills_everything_left() {
        let mut s = sup();
        let t0 = Instant::now();
        s.begin_shutdown(t0);
        assert_eq!(s.shutdown_deadline(), Some(t0 + Duration::from_secs(30)));
        let a = s.advance_shutdown(t0 + Duration::from_secs(30));
        let kills: Vec<usize> = a
            .iter()
            .filter(|(_, a)| matches!(a, Action::Signal { signal, .. } if *signal == Signal::KILL))
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(kills, vec![0, 1, 2]);
        assert_eq!(s.shutdown_deadline(), None);
        for i in 0..3 {
            s.handle(
                i,
                Event::Exited {
                    status: ExitStatus::Signal(9),
                },
                t0,
            );
        }
        assert!(s.shutdown_complete());
    }

    fn stack() -> Supervisor {
        use crate::config::{Condition, Lifecycle, Readiness, ServiceKind};
        let mut db = svc(&[]);
        db.lifecycle = Lifecycle {
            ready: Readiness::Notify,
            ..Lifecycle::default()
        };
        let mut migrate = svc(&[]);
        migrate.lifecycle = Lifecycle {
            kind: ServiceKind::Oneshot,
            depends_on: vec![("db".into(), Condition::Ready)],
            ..Lifecycle::default()
        };
        let mut web = svc(&[]);
        web.lifecycle = Lifecycle {
            depends_on: vec![("migrate".into(), Condition::Completed)],
            ..Lifecycle::default()
        };
        // Written in the "wrong" order: the graph decides.
        let config = config_of(vec![
            ("web".into(), web),
            ("migrate".into(), migrate),
            ("db".into(), db),
        ]);
        Supervisor::new(&config)
    }

    fn spawned(a: &[Tagged]) -> Vec<usize> {
        a.iter()
            .filter(|(_, a)| *a == Action::Spawn)
            .map(|(i, _)| *i)
            .collect()
    }

    #[test]
    fn a_stack_starts_in_dependency_order_with_reasons() {
        let (web, migrate, db) = (0, 1, 2);
        let mut s = stack();
        let t0 = Instant::now();
        assert_eq!(spawned(&s.start_all(t0)), vec![db]);
        assert_eq!(s.services[web].state, State::Waiting);
        assert_eq!(
            s.waiting_for[migrate].as_deref(),
            Some("waiting for db to be ready (it is stopped)")
        );
        s.handle(db, Event::Spawned { pid: 10 }, t0);
        assert_eq!(
            s.waiting_for[migrate].as_deref(),
            Some("waiting for db to be ready (it is starting)")
        );
        // db ready: migrate runs; web still waits for it to complete.
        assert_eq!(spawned(&s.handle(db, Event::Ready, t0)), vec![migrate]);
        s.handle(migrate, Event::Spawned { pid: 11 }, t0);
        assert_eq!(s.services[web].state, State::Waiting);
        // A failed migration retries; web keeps waiting.
        s.handle(
            migrate,
            Event::Exited {
                status: ExitStatus::Code(1),
            },
            t0,
        );
        assert_eq!(s.services[web].state, State::Waiting);
        s.handle(migrate, Event::Deadline, t0 + Duration::from_secs(1));
        s.handle(migrate, Event::Spawned { pid: 12 }, t0);
        assert_eq!(
            spawned(&s.handle(
                migrate,
                Event::Exited {
                    status: ExitStatus::Code(0)
                },
                t0
            )),
            vec![web]
        );
        assert_eq!(s.services[migrate].state.name(), "completed");
        assert_eq!(s.waiting_for[web], None);
        s.handle(web, Event::Spawned { pid: 13 }, t0);

        // Shutdown: web before db (migrate is already down).
        let a = s.begin_shutdown(t0);
        assert_eq!(stop_signals(&a), vec![web]);
        let a = s.handle(
            web,
            Event::Exited {
                status: ExitStatus::Code(0),
            },
            t0,
        );
        assert_eq!(stop_signals(&a), vec![db]);
    }

    #[test]
    fn healthy_condition_and_propagated_restart() {
        use crate::config::{Condition, Lifecycle};
        let mut db = svc(&[]);
        db.lifecycle.propagate = true;
        let mut api = svc(&[]);
        api.lifecycle = Lifecycle {
            depends_on: vec![("db".into(), Condition::Healthy)],
            ..Lifecycle::default()
        };
        let config = config_of(vec![("db".into(), db), ("api".into(), api)]);
        let mut s = Supervisor::new(&config);
        let t0 = Instant::now();
        assert_eq!(spawned(&s.start_all(t0)), vec![0]);
        s.handle(0, Event::Spawned { pid: 1 }, t0);
        assert!(s.waiting_for[1]
            .as_deref()
            .unwrap()
            .contains("db to be healthy"));
        assert_eq!(spawned(&s.set_health(0, Some(true), t0)), vec![1]);
        s.handle(1, Event::Spawned { pid: 2 }, t0);
        // Restarting db restarts api too.
        let a = s.handle(0, Event::Restart, t0);
        assert_eq!(stop_signals(&a), vec![0, 1]);
    }

    fn scaled(range: &str) -> ServiceConfig {
        let mut web = svc(&[]);
        web.scaling.instances = Some(InstanceRange::parse(range).unwrap());
        web
    }

    fn spawn_all(s: &mut Supervisor, a: &[Tagged], now: Instant) {
        for (i, act) in a {
            if *act == Action::Spawn {
                s.handle(
                    *i,
                    Event::Spawned {
                        pid: 1000 + *i as i32,
                    },
                    now,
                );
            }
        }
    }

    fn exit(s: &mut Supervisor, i: usize, now: Instant) -> Vec<Tagged> {
        s.handle(
            i,
            Event::Exited {
                status: ExitStatus::Signal(15),
            },
            now,
        )
    }

    #[test]
    fn instances_are_units_named_at_k_and_scale_within_range() {
        let config = config_of(vec![("web".into(), scaled("2-4")), ("db".into(), svc(&[]))]);
        let mut s = Supervisor::new(&config);
        let t0 = Instant::now();
        let a = s.start_all(t0);
        assert_eq!(spawned(&a).len(), 3);
        spawn_all(&mut s, &a, t0);
        let names: Vec<&str> = s.visible_units().iter().map(|&i| s.name(i)).collect();
        assert_eq!(names, ["web@0", "web@1", "db"]);
        assert_eq!(s.resolve(&Target::parse("web")).unwrap().len(), 2);
        assert_eq!(s.resolve(&Target::parse("web@1")).unwrap().len(), 1);

        // Up to 4: two new units start.
        let o = s.scale("web", Some(4), None, t0).unwrap();
        assert_eq!((o.from, o.to, o.added_units.len()), (2, 4, 2));
        assert_eq!(spawned(&o.actions), o.added_units);
        spawn_all(&mut s, &o.actions, t0);
        // Out of range, or a service without instances: clear errors.
        let e = s.scale("web", Some(5), None, t0).unwrap_err();
        assert!(e.contains("outside its range 2-4"), "{e}");
        let e = s.scale("db", Some(2), None, t0).unwrap_err();
        assert!(e.contains("db has no instances"), "{e}");

        // Down to 2: the highest two stop, highest first, then vanish.
        let o = s.scale("web", Some(2), None, t0).unwrap();
        let units = s.specs[0].units.clone();
        let w = |k: usize| units[k];
        assert_eq!(stop_signals(&o.actions), vec![w(3), w(2)]);
        assert!(s.visible(w(3)));
        exit(&mut s, w(3), t0);
        exit(&mut s, w(2), t0);
        assert!(!s.visible(w(3)));
        assert_eq!(s.resolve(&Target::All).unwrap().len(), 3);

        // A new range: 6 allowed now, and the slots are reused.
        let o = s
            .scale(
                "web",
                Some(6),
                Some(InstanceRange::parse("2-6").unwrap()),
                t0,
            )
            .unwrap();
        assert_eq!(o.added_units.len(), 2, "units 2 and 3 are reused");
        assert_eq!(spawned(&o.actions).len(), 4);
    }

    #[test]
    fn rolling_restart_goes_one_instance_at_a_time_waiting_for_ready() {
        let mut web = scaled("3");
        web.lifecycle.ready = Readiness::Notify;
        let config = config_of(vec![("web".into(), web)]);
        let mut s = Supervisor::new(&config);
        let t0 = Instant::now();
        let a = s.start_all(t0);
        spawn_all(&mut s, &a, t0);
        let u = s.specs[0].units.clone();
        for &i in &u {
            s.handle(i, Event::Ready, t0);
        }
        let a = s.restart_rolling(&u, t0);
        assert_eq!(stop_signals(&a), vec![u[0]]);
        // u0 exits and respawns; u1 waits until u0 is ready again.
        let a = exit(&mut s, u[0], t0);
        assert_eq!(spawned(&a), vec![u[0]]);
        let a = s.handle(u[0], Event::Spawned { pid: 77 }, t0);
        assert!(stop_signals(&a).is_empty());
        let a = s.handle(u[0], Event::Ready, t0);
        assert_eq!(stop_signals(&a), vec![u[1]]);
        exit(&mut s, u[1], t0);
        s.handle(u[1], Event::Spawned { pid: 78 }, t0);
        let a = s.handle(u[1], Event::Ready, t0);
        assert_eq!(stop_signals(&a), vec![u[2]]);
        exit(&mut s, u[2], t0);
        s.handle(u[2], Event::Spawned { pid: 79 }, t0);
        let a = s.handle(u[2], Event::Ready, t0);
        assert!(stop_signals(&a).is_empty());
        assert!(!s.rolling(0));
    }

    #[test]
    fn reload_adds_removes_and_restarts_only_what_changed() {
        let config = config_of(vec![
            ("a".into(), svc(&[])),
            ("b".into(), svc(&[])),
            ("c".into(), svc(&[])),
        ]);
        let mut s = Supervisor::new(&config);
        let t0 = Instant::now();
        let a = s.start_all(t0);
        spawn_all(&mut s, &a, t0);
        let mut b = svc(&[]);
        b.command = vec!["false".into()];
        let new = config_of(vec![
            ("a".into(), svc(&[])),
            ("b".into(), b),
            ("d".into(), svc(&[])),
        ]);
        let o = s.reload(&new, t0);
        assert_eq!(o.added, ["d"]);
        assert_eq!(o.changed, ["b"]);
        assert_eq!(o.removed, ["c"]);
        assert_eq!(o.unchanged, 1);
        assert_eq!(o.added_units, vec![3]);
        assert_eq!(o.changed_units, vec![1]);
        // b restarts, c stops, d starts; a is untouched.
        // (removed services stop first)
        assert_eq!(stop_signals(&o.actions), vec![2, 1]);
        assert_eq!(spawned(&o.actions), vec![3]);
        assert!(!o.actions.iter().any(|(i, _)| *i == 0));
        assert_eq!(s.services[1].policy.restart, RestartPolicy::Always);
        exit(&mut s, 2, t0);
        assert!(!s.visible(2));
        assert!(s.resolve(&Target::parse("c")).is_err());
    }

    #[test]
    fn a_critical_service_down_for_good_stops_everything_with_its_code() {
        let mut job = svc(&[]);
        job.restart = RestartPolicy::Never;
        job.scaling.critical = true;
        let config = config_of(vec![("db".into(), svc(&[])), ("job".into(), job)]);
        let mut s = Supervisor::new(&config);
        let t0 = Instant::now();
        let a = s.start_all(t0);
        spawn_all(&mut s, &a, t0);
        let a = s.handle(
            1,
            Event::Exited {
                status: ExitStatus::Code(3),
            },
            t0,
        );
        assert_eq!(s.exit_code, Some(3));
        assert!(s.shutting_down());
        assert_eq!(stop_signals(&a), vec![0]);
        // A plain stop of a critical service is not a failure.
        let mut job = svc(&[]);
        job.scaling.critical = true;
        let mut s = Supervisor::new(&config_of(vec![("job".into(), job)]));
        let a = s.start_all(t0);
        spawn_all(&mut s, &a, t0);
        s.handle(0, Event::Stop, t0);
        exit(&mut s, 0, t0);
        assert_eq!(s.exit_code, None);
        assert!(!s.shutting_down());
    }
}
