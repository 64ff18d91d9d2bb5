//! The loop's side of sentinel running as a systemd `Type=notify` service:
//! after each turn, the supervisor's view goes to `sdnotify::Reporter`, and
//! what it says to send goes to the manager's socket. Watchdog pings and
//! held-back status lines are timed by the deadline heap
//! (`TimerKey::Systemd`). Without `NOTIFY_SOCKET` none of this runs.

use std::cmp::Reverse;
use std::time::Instant;

use super::{log, Runtime, TimerKey};
use crate::sdnotify::{self, Notifier, Reporter};

/// The link to the service manager.
pub struct Link {
    notifier: Notifier,
    reporter: Reporter,
    /// The deadline already in the heap.
    armed: Option<Instant>,
    /// A send failed (reported once, until one succeeds again).
    failing: bool,
}

impl Link {
    /// From (and out of) sentinel's environment; call before the services'
    /// environment is made from it.
    pub fn from_env(now: Instant) -> Option<Link> {
        match Notifier::from_env() {
            Ok(Some(notifier)) => {
                let reporter = Reporter::new(notifier.watchdog_interval(), now);
                Some(Link {
                    notifier,
                    reporter,
                    armed: None,
                    failing: false,
                })
            }
            Ok(None) => None,
            Err(e) => {
                log(&format!("warning: not notifying the service manager: {e}"));
                None
            }
        }
    }

    fn send(&mut self, message: Option<String>) {
        let Some(m) = message else {
            return;
        };
        match self.notifier.send(&m) {
            Ok(()) => self.failing = false,
            Err(e) if !self.failing => {
                self.failing = true;
                log(&format!(
                    "sd_notify to {}: {e} (the service manager may miss READY=1 or WATCHDOG=1)",
                    self.notifier.target()
                ));
            }
            Err(_) => {}
        }
    }
}

impl Runtime {
    /// Once per loop turn (before polling): tell the manager what changed.
    pub(super) fn systemd_turn(&mut self) {
        if self.notifier.is_none() {
            return;
        }
        let shutting_down = self.sup.shutting_down();
        // Units scaled away or removed by a reload do not count.
        let shown = || (0..self.io.len()).filter(|&u| self.sup.visible(u));
        let states = || shown().map(|u| self.sup.services[u].state.name());
        let ready = !shutting_down
            && shown().all(|u| {
                !(self.io[u].life.required
                    && sdnotify::blocks_readiness(self.sup.services[u].state.name()))
            });
        let status = sdnotify::summary(states(), shutting_down);
        let now = Instant::now();
        if let Some(link) = self.notifier.as_mut() {
            let m = link.reporter.update(ready, shutting_down, &status, now);
            link.send(m);
        }
        self.systemd_arm();
    }

    /// A `TimerKey::Systemd` entry for `at` is due.
    pub(super) fn systemd_timer(&mut self, at: Instant) {
        if let Some(link) = self.notifier.as_mut() {
            if link.armed == Some(at) {
                link.armed = None;
            }
            let m = link.reporter.on_deadline(Instant::now());
            link.send(m);
        }
        self.systemd_arm();
    }

    fn systemd_arm(&mut self) {
        let Some(link) = self.notifier.as_mut() else {
            return;
        };
        let next = link.reporter.deadline();
        if next.is_some() && next != link.armed {
            link.armed = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, TimerKey::Systemd)));
            }
        }
    }
}
