//! The service table: every service's state machine, targets (`name`,
//! `@group`, all), and the ordered shutdown. Pure: no processes, no clock.

mod service;

pub use service::{Action, Event, ExitStatus, Policy, Service, State};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::config::{Config, RestartPolicy};

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
}

/// An action for the service at an index.
pub type Tagged = (usize, Action);

impl Supervisor {
    pub fn new(config: &Config) -> Self {
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut services = Vec::new();
        let mut autostart = Vec::new();
        for (i, (name, svc)) in config.services.iter().enumerate() {
            for g in &svc.groups {
                groups.entry(g.clone()).or_default().push(i);
            }
            services.push(Service::new(
                name.clone(),
                Policy {
                    restart: svc.restart,
                    backoff: svc.backoff,
                    stop_signal: svc.stop_signal,
                    stop_timeout: svc.stop_timeout,
                },
            ));
            autostart.push(svc.autostart);
        }
        Supervisor {
            services,
            groups,
            autostart,
            shutdown: None,
            shutdown_timeout: config.supervisor.shutdown_timeout,
        }
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
        for i in 0..self.services.len() {
            if self.autostart[i] {
                out.extend(self.handle(i, Event::Start, now));
            }
        }
        out
    }

    /// Feed one service an event.
    pub fn handle(&mut self, i: usize, event: Event, now: Instant) -> Vec<Tagged> {
        let mut out: Vec<Tagged> = self.services[i]
            .handle(event, now)
            .into_iter()
            .map(|a| (i, a))
            .collect();
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
            if matches!(self.services[i].state, State::Backoff { .. }) {
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
            pending: (0..self.services.len()).collect(),
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

    fn sup() -> Supervisor {
        let config = Config {
            http: None,
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
            services: vec![
                ("db".into(), svc(&["back"])),
                ("api".into(), svc(&["back", "front"])),
                ("web".into(), svc(&["front"])),
            ],
        };
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
}
