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

/// Shutdown in progress: services are stopped one by one in reverse start
/// order; at `deadline` whatever is left is killed.
#[derive(Debug)]
struct Shutdown {
    deadline: Instant,
    /// Services still to stop, the next at the end.
    pending: Vec<usize>,
    current: Option<usize>,
    killed: bool,
}

/// All services, in config (start) order.
#[derive(Debug)]
pub struct Supervisor {
    pub services: Vec<Service>,
    pub groups: BTreeMap<String, Vec<usize>>,
    autostart: Vec<bool>,
    shutdown: Option<Shutdown>,
    shutdown_timeout: Duration,
    /// Who depends on whom, and on what condition.
    graph: Option<crate::deps::Graph>,
    /// Dependencies first; ties in file order. Shutdown goes backwards.
    start_order: Vec<usize>,
    /// Health check results (None: no check, or no result yet).
    pub healthy: Vec<Option<bool>>,
    /// Why a waiting service waits.
    pub waiting_for: Vec<Option<String>>,
    /// A restart restarts the services that depend on this one.
    propagate: Vec<bool>,
}

/// An action for the service at an index.
pub type Tagged = (usize, Action);

fn tag(i: usize, actions: Vec<Action>) -> Vec<Tagged> {
    actions.into_iter().map(|a| (i, a)).collect()
}

impl Supervisor {
    pub fn new(config: &Config) -> Self {
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut services = Vec::new();
        let mut autostart = Vec::new();
        for (i, (name, svc)) in config.services.iter().enumerate() {
            for g in &svc.groups {
                groups.entry(g.clone()).or_default().push(i);
            }
            let life = &svc.lifecycle;
            let mut policy =
                Policy::simple(svc.restart, svc.backoff, svc.stop_signal, svc.stop_timeout);
            policy.ready_on_start = life.ready == Readiness::Started;
            policy.start_timeout = life.start_timeout;
            policy.oneshot = life.kind == ServiceKind::Oneshot;
            policy.every = life.every;
            services.push(Service::new(name.clone(), policy));
            autostart.push(svc.autostart);
        }
        let n = services.len();
        let graph = crate::deps::Graph::of(config).ok();
        Supervisor {
            // `check` refused cycles and unknown names (no graph: file order).
            start_order: graph
                .as_ref()
                .map_or_else(|| (0..n).collect(), |g| g.start_order()),
            graph,
            healthy: vec![None; n],
            waiting_for: vec![None; n],
            propagate: config
                .services
                .iter()
                .map(|(_, s)| s.lifecycle.propagate)
                .collect(),
            services,
            groups,
            autostart,
            shutdown: None,
            shutdown_timeout: config.supervisor.shutdown_timeout,
        }
    }

    /// Why `i` cannot start yet: the first unmet dependency, or None.
    fn unmet(&self, i: usize) -> Option<String> {
        let deps = self.graph.as_ref().map_or(&[][..], |g| g.dependencies(i));
        deps.iter().find_map(|&(d, cond)| {
            let s = &self.services[d].state;
            let ok = match cond {
                Condition::Started => {
                    matches!(
                        s,
                        State::Starting { .. } | State::Running { .. } | State::Completed { .. }
                    )
                }
                Condition::Ready => matches!(s, State::Running { .. } | State::Completed { .. }),
                Condition::Healthy => {
                    self.healthy[d] == Some(true)
                        && matches!(s, State::Running { .. } | State::Starting { .. })
                }
                Condition::Completed => matches!(s, State::Completed { .. }),
            };
            let want = match cond {
                Condition::Started => "started",
                Condition::Ready => "ready",
                Condition::Healthy => "healthy",
                Condition::Completed => "completed",
            };
            (!ok).then(|| {
                format!(
                    "waiting for {} to be {want} (it is {})",
                    self.services[d].name,
                    s.name()
                )
            })
        })
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

    /// Start the waiting services whose dependencies are now there, in order.
    fn advance_waiting(&mut self, now: Instant) -> Vec<Tagged> {
        let mut out = Vec::new();
        if self.shutdown.is_some() {
            return out;
        }
        let mut progress = true;
        while progress {
            progress = false;
            for k in 0..self.start_order.len() {
                let i = self.start_order[k];
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
        self.advance_waiting(now)
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.name == name)
    }

    /// The services a target names, in start order, or an error that says
    /// what exists.
    pub fn resolve(&self, target: &Target) -> Result<Vec<usize>, String> {
        match target {
            Target::All => Ok((0..self.services.len()).collect()),
            Target::One(name) => self.index(name).map(|i| vec![i]).ok_or_else(|| {
                let names: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
                format!("no service named {name:?}; services: {}", names.join(", "))
            }),
            Target::Group(g) => self.groups.get(g).cloned().ok_or_else(|| {
                if self.groups.is_empty() {
                    format!("no group named {g:?}; no service has a `group` key")
                } else {
                    let names: Vec<&str> = self.groups.keys().map(String::as_str).collect();
                    format!("no group named {g:?}; groups: {}", names.join(", "))
                }
            }),
        }
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    /// Start every autostart service, in order.
    pub fn start_all(&mut self, now: Instant) -> Vec<Tagged> {
        let mut out = Vec::new();
        for k in 0..self.start_order.len() {
            let i = self.start_order[k];
            if self.autostart[i] {
                out.extend(self.handle(i, Event::Start, now));
            }
        }
        out
    }

    /// Feed one service an event.
    pub fn handle(&mut self, i: usize, event: Event, now: Instant) -> Vec<Tagged> {
        let mut out = match event {
            Event::Start => self.start_or_wait(i, Event::Start, now),
            Event::Restart => {
                let mut out = self.start_or_wait(i, Event::Restart, now);
                if self.propagate[i] {
                    let dependents = self
                        .graph
                        .as_ref()
                        .map(|g| g.dependents_transitive(i))
                        .unwrap_or_default();
                    for j in dependents {
                        if !self.services[j].state.is_down() {
                            out.extend(tag(j, self.services[j].handle(Event::Restart, now)));
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
        out.extend(self.advance_waiting(now));
        out.extend(self.advance_shutdown(now));
        out
    }

    /// Begin the ordered shutdown (idempotent).
    pub fn begin_shutdown(&mut self, now: Instant) -> Vec<Tagged> {
        if self.shutdown.is_some() {
            return Vec::new();
        }
        for s in &mut self.services {
            // Nothing restarts from here on.
            s.policy.restart = RestartPolicy::Never;
        }
        let mut out = Vec::new();
        for i in 0..self.services.len() {
            if matches!(
                self.services[i].state,
                State::Backoff { .. } | State::Waiting | State::Completed { next: Some(_) }
            ) {
                out.extend(
                    self.services[i]
                        .handle(Event::Stop, now)
                        .into_iter()
                        .map(|a| (i, a)),
                );
            }
        }
        self.shutdown = Some(Shutdown {
            deadline: now + self.shutdown_timeout,
            pending: self.start_order.clone(),
            current: None,
            killed: false,
        });
        out.extend(self.advance_shutdown(now));
        out
    }

    /// True once shutdown was asked for and every service is down.
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

    /// Move the shutdown along: the next service when the current one is
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
            out.extend(
                self.services[next]
                    .handle(Event::Stop, now)
                    .into_iter()
                    .map(|a| (next, a)),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Backoff, LogConfig, ServiceConfig, Signal, SupervisorConfig};

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
            hooks: Vec::new(),
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
}
