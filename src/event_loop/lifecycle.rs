//! The loop's side of issue 4: readiness (sd_notify, the ready pipe),
//! health checks (a probe at a time per service, timed by the deadline
//! heap) and the sd_notify watchdog. The judging is pure (`health::state`,
//! `supervisor`); this only moves fds, timers and events.

use std::cmp::Reverse;
use std::os::fd::AsFd;
use std::task::Poll as TaskPoll;
use std::time::Instant;

use mio::{Interest, Token};

use super::{log, Runtime, TimerKey, HEALTH_BASE, READY_BASE};
use crate::config::{OnUnhealthy, Probe as ProbeSpec, Readiness};
use crate::health::{self, HealthState, Message, NetProbe, ReadyPipe, Transition};
use crate::supervisor::{Event, State};

/// A health check under way.
pub enum Probe {
    /// A TCP or HTTP probe, registered at `HEALTH_BASE + service`.
    Net(NetProbe),
    /// An exec probe: its process, reaped by the loop.
    Exec(i32),
}

impl Runtime {
    /// Before a spawn: the readiness pipe for `ready = "fd"`. Returns the
    /// write end for the child's fd 3.
    pub(super) fn ready_pipe_for(&mut self, i: usize) -> Option<std::os::fd::OwnedFd> {
        if self.io[i].life.ready != Readiness::Fd {
            return None;
        }
        match ReadyPipe::new() {
            Ok((mut pipe, write)) => {
                let token = Token(READY_BASE + i);
                if let Err(e) = self
                    .poll
                    .registry()
                    .register(&mut pipe, token, Interest::READABLE)
                {
                    log(&format!(
                        "{}: register ready pipe: {e}",
                        self.sup.services[i].name
                    ));
                    return None;
                }
                self.io[i].ready_pipe = Some(pipe);
                Some(write)
            }
            Err(e) => {
                log(&format!("{}: ready pipe: {e}", self.sup.services[i].name));
                None
            }
        }
    }

    /// After a successful spawn: health checks and the watchdog begin.
    pub(super) fn on_started(&mut self, i: usize, now: Instant) {
        if let Some(check) = &self.io[i].life.health {
            let h = HealthState::new(check, now);
            self.timers
                .push(Reverse((h.next_check_at(), TimerKey::Health(i))));
            self.io[i].health = Some(h);
        }
        if let Some(w) = self.io[i].life.watchdog {
            self.arm_watchdog(i, now + w);
        }
    }

    /// The process exited: its checks, pipe and watchdog end with it.
    pub(super) fn on_ended(&mut self, i: usize, now: Instant) {
        self.cancel_probe(i);
        if let Some(h) = self.io[i].health.take() {
            let t = &mut self.io[i].health_totals;
            t.0 += h.checks_total;
            t.1 += h.failures_total;
        }
        if let Some(mut p) = self.io[i].ready_pipe.take() {
            let _ = self.poll.registry().deregister(&mut p);
        }
        self.io[i].watchdog_at = None;
        if self.sup.healthy[i].is_some() {
            let a = self.sup.set_health(i, None, now);
            self.execute(a);
        }
    }

    fn arm_watchdog(&mut self, i: usize, at: Instant) {
        self.io[i].watchdog_at = Some(at);
        self.timers.push(Reverse((at, TimerKey::Watchdog(i))));
    }

    fn cancel_probe(&mut self, i: usize) {
        match self.io[i].probe.take() {
            Some(Probe::Net(mut p)) => {
                let _ = self.poll.registry().deregister(&mut p);
            }
            Some(Probe::Exec(pid)) => {
                self.probe_pids.remove(&pid);
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                // The zombie is reaped (and counted as an orphan) by the loop.
            }
            None => {}
        }
    }

    /// The ready pipe of service `i` is readable.
    pub(super) fn on_ready_pipe(&mut self, i: usize) {
        let Some(pipe) = self.io[i].ready_pipe.as_mut() else {
            return;
        };
        let Some(ready) = pipe.on_readable() else {
            return;
        };
        if let Some(mut p) = self.io[i].ready_pipe.take() {
            let _ = self.poll.registry().deregister(&mut p);
        }
        if ready {
            let a = self.sup.handle(i, Event::Ready, Instant::now());
            self.execute(a);
        } else {
            log(&format!(
                "{}: closed its ready fd without a newline; it will not become ready",
                self.sup.services[i].name
            ));
        }
    }

    /// Datagrams on the sd_notify socket.
    pub(super) fn on_notify(&mut self) {
        loop {
            let Some(sock) = self.notify.as_mut() else {
                return;
            };
            let (cred, msgs) = match sock.recv() {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) => {
                    log(&format!("sd_notify socket: {e}"));
                    break;
                }
            };
            let now = Instant::now();
            let owner = (0..self.io.len()).find(|&i| {
                self.sup.services[i]
                    .state
                    .pid()
                    .is_some_and(|leader| health::sender_allowed(cred.pid, leader, leader))
            });
            let Some(i) = owner else {
                log(&format!(
                    "sd_notify: ignored a message from pid {}, which belongs to no service",
                    cred.pid
                ));
                continue;
            };
            for m in msgs {
                match m {
                    Message::Ready => {
                        let a = self.sup.handle(i, Event::Ready, now);
                        self.execute(a);
                    }
                    Message::Watchdog => {
                        if let Some(w) = self.io[i].life.watchdog {
                            self.arm_watchdog(i, now + w);
                        }
                    }
                    Message::Status(text) => self.io[i].notify_status = Some(text),
                    _ => {}
                }
            }
        }
    }

    /// A health timer: start the next check, or time out the running one.
    pub(super) fn on_health_timer(&mut self, i: usize, at: Instant) {
        let now = Instant::now();
        let Some(h) = self.io[i].health.as_ref() else {
            return;
        };
        let alive = matches!(
            self.sup.services[i].state,
            State::Running { .. } | State::Starting { .. }
        );
        if !alive {
            return;
        }
        if h.running() {
            if h.check_deadline() != Some(at) {
                return; // a stale entry
            }
            let reason = h.timeout_reason();
            self.cancel_probe(i);
            self.health_result(i, Err(reason), now);
            return;
        }
        if h.next_check_at() != at {
            return;
        }
        let Some(spec) = self.io[i].life.health.as_ref().map(|c| c.probe.clone()) else {
            return;
        };
        match NetProbe::start(&spec) {
            Some(Ok(mut p)) => {
                if let Some(h) = self.io[i].health.as_mut() {
                    h.check_started(now);
                }
                // A loopback connect often completes at once: judge it now
                // and save the wake-up its event would cost.
                if let TaskPoll::Ready(r) = p.on_event() {
                    self.health_result(i, r, now);
                    return;
                }
                let token = Token(HEALTH_BASE + i);
                if let Err(e) = self
                    .poll
                    .registry()
                    .register(&mut p, token, health::INTEREST)
                {
                    self.health_result(i, Err(format!("register probe: {e}")), now);
                    return;
                }
                self.io[i].probe = Some(Probe::Net(p));
                let deadline = self.io[i]
                    .health
                    .as_ref()
                    .and_then(HealthState::check_deadline);
                if let Some(d) = deadline {
                    self.timers.push(Reverse((d, TimerKey::Health(i))));
                }
                return;
            }
            Some(Err(e)) => {
                if let Some(h) = self.io[i].health.as_mut() {
                    h.check_started(now);
                }
                self.health_result(i, Err(health::reason(&e)), now);
                return;
            }
            None => {
                let ProbeSpec::Exec(argv) = spec else { return };
                match self.spawn_exec_probe(&argv) {
                    Ok(pid) => {
                        self.probe_pids.insert(pid, i);
                        self.io[i].probe = Some(Probe::Exec(pid));
                    }
                    Err(e) => {
                        if let Some(h) = self.io[i].health.as_mut() {
                            h.check_started(now);
                        }
                        self.health_result(i, Err(e), now);
                        return;
                    }
                }
            }
        }
        if let Some(h) = self.io[i].health.as_mut() {
            h.check_started(now);
            if let Some(d) = h.check_deadline() {
                self.timers.push(Reverse((d, TimerKey::Health(i))));
            }
        }
    }

    /// An exec probe: the command with sentinel's environment, no stdin,
    /// output discarded.
    fn spawn_exec_probe(&self, argv: &[String]) -> Result<i32, String> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let plan = sys::spawn::Plan::new(argv, &env, None, sys::spawn::Session::New)
            .map_err(|e| e.to_string())?;
        let null = self.dev_null.as_fd();
        let stdio = [sys::spawn::Stdio::Fd(null); 3];
        sys::spawn::spawn(&plan, &stdio, None)
            .map(|c| c.pid.as_raw())
            .map_err(|e| e.to_string())
    }

    /// An exec probe exited (from the reaper).
    pub(super) fn on_exec_probe_exit(&mut self, i: usize, ok: bool, code: i32) {
        self.io[i].probe = None;
        let r = if ok {
            Ok(())
        } else {
            Err(format!("exit {code}"))
        };
        self.health_result(i, r, Instant::now());
    }

    /// Events on a running network probe.
    pub(super) fn on_probe_event(&mut self, i: usize) {
        let Some(Probe::Net(p)) = self.io[i].probe.as_mut() else {
            return;
        };
        if let TaskPoll::Ready(r) = p.on_event() {
            self.cancel_probe(i);
            self.health_result(i, r, Instant::now());
        }
    }

    fn health_result(&mut self, i: usize, r: Result<(), String>, now: Instant) {
        let Some(h) = self.io[i].health.as_mut() else {
            return;
        };
        let reason = r.as_ref().err().cloned().unwrap_or_default();
        let t = h.on_result(r, now);
        let next = h.next_check_at();
        self.timers.push(Reverse((next, TimerKey::Health(i))));
        match t {
            Transition::BecameHealthy => {
                let mut a = self.sup.set_health(i, Some(true), now);
                if self.io[i].life.ready == Readiness::Healthy {
                    a.extend(self.sup.handle(i, Event::Ready, now));
                }
                self.execute(a);
            }
            Transition::BecameUnhealthy => {
                let mut a = self.sup.set_health(i, Some(false), now);
                let restart = self.io[i].life.health.as_ref().map(|c| c.on_unhealthy)
                    == Some(OnUnhealthy::Restart);
                if restart {
                    a.extend(self.sup.handle(i, Event::Unhealthy { reason }, now));
                } else {
                    log(&format!(
                        "{}: unhealthy ({reason})",
                        self.sup.services[i].name
                    ));
                }
                self.execute(a);
            }
            Transition::NoChange => {}
        }
    }

    /// The watchdog timer of service `i`.
    pub(super) fn on_watchdog_timer(&mut self, i: usize, at: Instant) {
        if self.io[i].watchdog_at != Some(at) {
            return;
        }
        self.io[i].watchdog_at = None;
        let a = self.sup.handle(i, Event::WatchdogTimeout, Instant::now());
        self.execute(a);
    }
}
