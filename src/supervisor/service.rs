//! One service's life as a pure state machine: `(state, event, now) -> actions`.
//!
//! No processes, no clock: the loop feeds events (a start request, a spawn
//! result, an exit, a deadline) with the current instant and executes the
//! returned actions. Unit tests drive it with a fake clock.

use std::time::{Duration, Instant};

use crate::config::{Backoff, RestartPolicy, Signal};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }

    /// The shell convention: the code, or 128 + the signal number.
    pub fn as_code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by {}", crate::config::signal_name(*s)),
        }
    }
}

/// What to do once a stopping process has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterStop {
    Stay,
    Restart,
    /// It was stopped because it failed (not ready in time, unhealthy, a
    /// silent watchdog): count a failure and restart by policy.
    Fail,
}

/// Where a service is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Not running and not going to run until started.
    Stopped,
    /// Asked to start; its dependencies are not there yet (the table says why).
    Waiting,
    /// Exec'd, not ready yet; a failed start at `deadline` (start_timeout).
    Starting { pid: i32, deadline: Option<Instant> },
    /// Its process runs and is ready.
    Running { pid: i32 },
    /// `stop_signal` sent; SIGKILL at `deadline` unless it exits first.
    Stopping {
        pid: i32,
        deadline: Instant,
        killed: bool,
        then: AfterStop,
    },
    /// Waiting to be started again at `until`.
    Backoff { until: Instant },
    /// Ended for good with success (restart policy says no more).
    Exited,
    /// A oneshot that exited 0; with `every`, it runs again at `next`.
    Completed { next: Option<Instant> },
    /// Ended for good with a failure (restart policy says no more).
    Failed,
}

impl State {
    /// The one-word name shown in `status`.
    pub fn name(&self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Waiting => "waiting",
            State::Starting { .. } => "starting",
            State::Running { .. } => "running",
            State::Stopping { .. } => "stopping",
            State::Backoff { .. } => "backoff",
            State::Exited => "exited",
            State::Completed { .. } => "completed",
            State::Failed => "failed",
        }
    }

    pub fn pid(&self) -> Option<i32> {
        match *self {
            State::Running { pid } | State::Starting { pid, .. } | State::Stopping { pid, .. } => {
                Some(pid)
            }
            _ => None,
        }
    }

    /// Neither running nor about to run (shutdown waits for this).
    pub fn is_down(&self) -> bool {
        matches!(
            self,
            State::Stopped
                | State::Waiting
                | State::Exited
                | State::Failed
                | State::Completed { .. }
        )
    }
}

/// What happens to a service.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Start now (autostart, `start`); in backoff, skip the wait.
    Start,
    /// Stop and stay down (`stop`, shutdown).
    Stop,
    /// Stop if running, then start (`restart`).
    Restart,
    /// The Spawn action's result: exec succeeded.
    Spawned { pid: i32 },
    /// The Spawn action's result: the child never reached exec.
    SpawnFailed { error: String },
    /// Its process exited.
    Exited { status: ExitStatus },
    /// It reported ready (sd_notify, the ready fd, a first passing health
    /// check); ignored unless starting.
    Ready,
    /// Its health check failed `retries` times and `on_unhealthy = "restart"`.
    Unhealthy { reason: String },
    /// No sd_notify `WATCHDOG=1` within `watchdog`.
    WatchdogTimeout,
    /// Its deadline passed.
    Deadline,
    /// `reset-failed`: forget the crash-loop window; a failed service goes
    /// to stopped (it is not started).
    ResetFailed,
}

/// What the loop must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start the process; answer with `Spawned` or `SpawnFailed`.
    Spawn,
    /// Send a signal to the process's group (the service's session).
    Signal { pid: i32, signal: Signal },
    /// SIGKILL what is left of a process group whose leader has exited.
    KillGroup { pgid: i32 },
    /// A line for sentinel's own log.
    Log(String),
}

/// The settings of a service that its state machine reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub restart: RestartPolicy,
    pub backoff: Backoff,
    pub stop_signal: Signal,
    pub stop_timeout: Duration,
    /// Ready as soon as exec'd (`ready = "started"`).
    pub ready_on_start: bool,
    pub start_timeout: Option<Duration>,
    /// A oneshot: exit 0 completes it.
    pub oneshot: bool,
    /// A oneshot runs again this long after completing.
    pub every: Option<Duration>,
    /// Too many starts within a window: `failed` until started by hand.
    pub start_limit: Option<crate::config::StartLimit>,
}

impl Policy {
    /// A long-running service, ready once exec'd.
    pub fn simple(
        restart: RestartPolicy,
        backoff: Backoff,
        stop_signal: Signal,
        stop_timeout: Duration,
    ) -> Policy {
        Policy {
            restart,
            backoff,
            stop_signal,
            stop_timeout,
            ready_on_start: true,
            start_timeout: None,
            oneshot: false,
            every: None,
            start_limit: None,
        }
    }
}

/// One service's state and counters.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub policy: Policy,
    pub state: State,
    /// Restarts after exits and failed starts (not manual restarts).
    pub restarts: u64,
    pub last_exit: Option<ExitStatus>,
    pub last_error: Option<String>,
    /// When the current process started (monotonic and wall clock).
    pub started_at: Option<(Instant, std::time::SystemTime)>,
    /// The delay the next automatic restart will wait.
    next_delay: Duration,
    /// When recent processes started (for `start_limit`; at most `burst`).
    starts: std::collections::VecDeque<Instant>,
}

impl Service {
    pub fn new(name: String, policy: Policy) -> Self {
        let next_delay = policy.backoff.initial;
        Service {
            name,
            policy,
            state: State::Stopped,
            restarts: 0,
            last_exit: None,
            last_error: None,
            started_at: None,
            next_delay,
            starts: std::collections::VecDeque::new(),
        }
    }

    /// The instant at which the loop must send `Deadline`, if any.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Backoff { until } => Some(until),
            State::Starting { deadline, .. } => deadline,
            State::Completed { next } => next,
            State::Stopping {
                deadline,
                killed: false,
                ..
            } => Some(deadline),
            _ => None,
        }
    }

    /// Apply `event` at `now`; returns the actions to execute, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match (&self.state, event) {
            // Start
            (
                State::Stopped
                | State::Waiting
                | State::Exited
                | State::Failed
                | State::Completed { .. }
                | State::Backoff { .. },
                Event::Start | Event::Restart,
            ) => {
                self.next_delay = self.policy.backoff.initial;
                // Started by hand: the crash-loop window begins again.
                self.starts.clear();
                out.push(Action::Spawn);
            }
            (State::Running { .. } | State::Starting { .. }, Event::Start) => {}
            (State::Stopping { .. }, Event::Start) => self.set_after_stop(AfterStop::Restart),

            // Stop / restart a running process
            (&State::Running { pid } | &State::Starting { pid, .. }, Event::Stop) => {
                self.begin_stop(pid, AfterStop::Stay, now, &mut out)
            }
            (&State::Running { pid } | &State::Starting { pid, .. }, Event::Restart) => {
                self.begin_stop(pid, AfterStop::Restart, now, &mut out)
            }
            (State::Stopping { .. }, Event::Stop) => self.set_after_stop(AfterStop::Stay),
            (State::Stopping { .. }, Event::Restart) => self.set_after_stop(AfterStop::Restart),
            (State::Backoff { .. } | State::Waiting | State::Completed { .. }, Event::Stop) => {
                self.state = State::Stopped
            }
            (State::Stopped | State::Exited | State::Failed, Event::Stop) => {}

            // Readiness, health, watchdog
            (&State::Starting { pid, .. }, Event::Ready) => {
                self.state = State::Running { pid };
                out.push(Action::Log(format!("{}: ready", self.name)));
            }
            (_, Event::Ready) => {}
            (
                &State::Running { pid } | &State::Starting { pid, .. },
                Event::Unhealthy { reason },
            ) => {
                out.push(Action::Log(format!(
                    "{}: unhealthy ({reason}); restarting",
                    self.name
                )));
                self.last_error = Some(format!("unhealthy: {reason}"));
                self.begin_stop(pid, AfterStop::Fail, now, &mut out);
            }
            (&State::Running { pid } | &State::Starting { pid, .. }, Event::WatchdogTimeout) => {
                out.push(Action::Log(format!(
                    "{}: watchdog timeout; restarting",
                    self.name
                )));
                self.last_error = Some("watchdog timeout: no WATCHDOG=1 in time".into());
                self.begin_stop(pid, AfterStop::Fail, now, &mut out);
            }
            (_, Event::Unhealthy { .. } | Event::WatchdogTimeout) => {}

            // Spawn results
            (_, Event::Spawned { pid }) => {
                if let Some(limit) = self.policy.start_limit {
                    if self.starts.len() >= limit.burst as usize {
                        self.starts.pop_front();
                    }
                    self.starts.push_back(now);
                }
                self.state = if self.policy.ready_on_start {
                    State::Running { pid }
                } else {
                    State::Starting {
                        pid,
                        deadline: self.policy.start_timeout.map(|t| now + t),
                    }
                };
                self.started_at = Some((now, std::time::SystemTime::now()));
                self.last_error = None;
            }
            (_, Event::SpawnFailed { error }) => {
                out.push(Action::Log(format!(
                    "{}: failed to start: {error}",
                    self.name
                )));
                self.last_error = Some(error);
                self.started_at = None;
                self.after_failure(false, Duration::ZERO, now, &mut out);
            }

            // Exits
            (&State::Running { pid } | &State::Starting { pid, .. }, Event::Exited { status }) => {
                let ran = self.ran_for(now);
                self.last_exit = Some(status);
                self.started_at = None;
                out.push(Action::KillGroup { pgid: pid });
                if self.policy.oneshot && status.success() {
                    let next = self.policy.every.map(|e| now + e);
                    out.push(Action::Log(match self.policy.every {
                        Some(e) => format!("{}: completed; next run in {e:?}", self.name),
                        None => format!("{}: completed", self.name),
                    }));
                    self.next_delay = self.policy.backoff.initial;
                    self.state = State::Completed { next };
                    return out;
                }
                let restart = match self.policy.restart {
                    RestartPolicy::Always => true,
                    RestartPolicy::OnFailure => !status.success(),
                    RestartPolicy::Never => false,
                };
                if restart {
                    out.push(Action::Log(format!("{}: {status}", self.name)));
                    self.after_failure(true, ran, now, &mut out);
                } else {
                    out.push(Action::Log(format!(
                        "{}: {status}; not restarting",
                        self.name
                    )));
                    self.state = if status.success() {
                        State::Exited
                    } else {
                        State::Failed
                    };
                }
            }
            (&State::Stopping { pid, then, .. }, Event::Exited { status }) => {
                self.last_exit = Some(status);
                self.started_at = None;
                out.push(Action::KillGroup { pgid: pid });
                match then {
                    AfterStop::Stay => self.state = State::Stopped,
                    AfterStop::Restart => {
                        self.next_delay = self.policy.backoff.initial;
                        out.push(Action::Spawn);
                    }
                    AfterStop::Fail if self.policy.restart == RestartPolicy::Never => {
                        out.push(Action::Log(format!(
                            "{}: not restarting (restart = never)",
                            self.name
                        )));
                        self.state = State::Failed;
                    }
                    AfterStop::Fail => {
                        let ran = self.ran_for(now);
                        self.after_failure(true, ran, now, &mut out);
                    }
                }
            }
            (_, Event::Exited { .. }) => {}

            (State::Failed, Event::ResetFailed) => {
                self.starts.clear();
                self.last_error = None;
                self.state = State::Stopped;
            }
            (_, Event::ResetFailed) => self.starts.clear(),

            // Deadlines
            (&State::Backoff { until }, Event::Deadline) if now >= until => out.push(Action::Spawn),
            (&State::Completed { next: Some(at) }, Event::Deadline) if now >= at => {
                out.push(Action::Spawn)
            }
            (
                &State::Starting {
                    pid,
                    deadline: Some(at),
                },
                Event::Deadline,
            ) if now >= at => {
                let limit = self.policy.start_timeout.unwrap_or_default();
                out.push(Action::Log(format!(
                    "{}: not ready within {limit:?} (start_timeout); killing it",
                    self.name
                )));
                self.last_error = Some(format!("not ready within {limit:?} (start_timeout)"));
                out.push(Action::Signal {
                    pid,
                    signal: Signal::KILL,
                });
                self.state = State::Stopping {
                    pid,
                    deadline: at,
                    killed: true,
                    then: AfterStop::Fail,
                };
            }
            (
                &State::Stopping {
                    pid,
                    deadline,
                    killed: false,
                    then,
                },
                Event::Deadline,
            ) if now >= deadline => {
                out.push(Action::Log(format!(
                    "{}: did not exit within {:?} of {}; sending SIGKILL",
                    self.name,
                    self.policy.stop_timeout,
                    crate::config::signal_name(self.policy.stop_signal.0)
                )));
                out.push(Action::Signal {
                    pid,
                    signal: Signal::KILL,
                });
                self.state = State::Stopping {
                    pid,
                    deadline,
                    killed: true,
                    then,
                };
            }
            (_, Event::Deadline) => {}
        }
        out
    }

    /// Force SIGKILL now (the shutdown deadline passed).
    pub fn kill_now(&mut self, now: Instant) -> Vec<Action> {
        match self.state {
            State::Running { pid }
            | State::Starting { pid, .. }
            | State::Stopping {
                pid, killed: false, ..
            } => {
                self.state = State::Stopping {
                    pid,
                    deadline: now,
                    killed: true,
                    then: AfterStop::Stay,
                };
                vec![Action::Signal {
                    pid,
                    signal: Signal::KILL,
                }]
            }
            State::Backoff { .. } | State::Waiting | State::Completed { .. } => {
                self.state = State::Stopped;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn ran_for(&self, now: Instant) -> Duration {
        self.started_at
            .map(|(t, _)| now.saturating_duration_since(t))
            .unwrap_or_default()
    }

    fn set_after_stop(&mut self, after: AfterStop) {
        if let State::Stopping { then, .. } = &mut self.state {
            *then = after;
        }
    }

    fn begin_stop(&mut self, pid: i32, then: AfterStop, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::Signal {
            pid,
            signal: self.policy.stop_signal,
        });
        self.state = State::Stopping {
            pid,
            deadline: now + self.policy.stop_timeout,
            killed: false,
            then,
        };
    }

    /// After an exit that the policy restarts, or a failed start: wait the
    /// backoff delay (reset first if the run was long enough), then spawn.
    fn after_failure(&mut self, exited: bool, ran: Duration, now: Instant, out: &mut Vec<Action>) {
        let policy_restarts = match self.policy.restart {
            RestartPolicy::Never => false,
            // A failed start is a failure for `on-failure` too.
            RestartPolicy::OnFailure | RestartPolicy::Always => true,
        };
        if !exited && !policy_restarts {
            self.state = State::Failed;
            return;
        }
        if let Some(limit) = self.policy.start_limit {
            let recent = self
                .starts
                .iter()
                .filter(|&&t| now.saturating_duration_since(t) < limit.interval)
                .count();
            if recent >= limit.burst as usize {
                let why = format!(
                    "start limit hit: {recent} starts within {:?} (start_limit); \
                     `sentinel start {}` or `sentinel reset-failed {}` tries again",
                    limit.interval, self.name, self.name
                );
                out.push(Action::Log(format!("{}: {why}", self.name)));
                self.last_error = Some(why);
                self.state = State::Failed;
                return;
            }
        }
        let b = self.policy.backoff;
        if exited && ran >= b.reset_after {
            self.next_delay = b.initial;
        }
        let delay = self.next_delay;
        self.next_delay = grow(delay, b);
        self.restarts += 1;
        if delay.is_zero() {
            out.push(Action::Spawn);
            // The Spawned/SpawnFailed answer sets the state.
            self.state = State::Backoff { until: now };
        } else {
            out.push(Action::Log(format!(
                "{}: restarting in {delay:?}",
                self.name
            )));
            self.state = State::Backoff { until: now + delay };
        }
    }
}

fn grow(delay: Duration, b: Backoff) -> Duration {
    let next = if delay.is_zero() {
        Duration::ZERO
    } else {
        delay.mul_f64(b.factor)
    };
    next.min(b.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn policy(restart: RestartPolicy) -> Policy {
        Policy::simple(
            restart,
            Backoff {
                initial: ms(100),
                max: ms(1000),
                factor: 2.0,
                reset_after: Duration::from_secs(10),
            },
            Signal::TERM,
            Duration::from_secs(5),
        )
    }

    fn running(restart: RestartPolicy, t0: Instant) -> Service {
        let mut s = Service::new("web".into(), policy(restart));
        assert_eq!(s.handle(Event::Start, t0), vec![Action::Spawn]);
        s.handle(Event::Spawned { pid: 42 }, t0);
        assert_eq!(s.state, State::Running { pid: 42 });
        s
    }

    fn spawns(actions: &[Action]) -> bool {
        actions.contains(&Action::Spawn)
    }

    #[test]
    fn start_limit_fails_a_crash_loop_until_started_by_hand() {
        let t0 = Instant::now();
        let mut p = policy(RestartPolicy::Always);
        p.backoff.initial = Duration::ZERO;
        p.start_limit = Some(crate::config::StartLimit {
            burst: 3,
            interval: Duration::from_secs(10),
        });
        let mut s = Service::new("web".into(), p);
        s.handle(Event::Start, t0);
        let crash = Event::Exited {
            status: ExitStatus::Code(1),
        };
        let mut now = t0;
        // Starts 1, 2, 3 within the window; the third crash trips it.
        for pid in 1..=3 {
            s.handle(Event::Spawned { pid }, now);
            now += ms(100);
            let a = s.handle(crash.clone(), now);
            if pid < 3 {
                assert!(spawns(&a), "restart {pid} expected");
            } else {
                assert!(!spawns(&a));
                assert_eq!(s.state, State::Failed);
                assert!(s
                    .last_error
                    .as_deref()
                    .unwrap()
                    .contains("start limit hit: 3 starts"));
            }
        }
        // Nothing brings it back by itself.
        assert!(s.deadline().is_none());
        // reset-failed stops it; start begins a fresh window.
        s.handle(Event::ResetFailed, now);
        assert_eq!(s.state, State::Stopped);
        assert_eq!(s.handle(Event::Start, now), vec![Action::Spawn]);
        s.handle(Event::Spawned { pid: 9 }, now);
        assert!(spawns(&s.handle(crash.clone(), now)));
    }

    #[test]
    fn start_limit_window_slides() {
        let t0 = Instant::now();
        let mut p = policy(RestartPolicy::Always);
        p.backoff.initial = Duration::ZERO;
        p.start_limit = Some(crate::config::StartLimit {
            burst: 2,
            interval: Duration::from_secs(1),
        });
        let mut s = Service::new("web".into(), p);
        s.handle(Event::Start, t0);
        // One crash every 600 ms: never two starts within 1 s.
        let mut now = t0;
        for pid in 1..10 {
            s.handle(Event::Spawned { pid }, now);
            now += ms(600);
            let a = s.handle(
                Event::Exited {
                    status: ExitStatus::Code(1),
                },
                now,
            );
            assert!(spawns(&a), "crash {pid} at {:?} should restart", now - t0);
        }
    }

    #[test]
    fn always_restarts_after_backoff_that_grows_to_max() {
        let t0 = Instant::now();
        let mut s = running(RestartPolicy::Always, t0);
        let mut now = t0;
        let mut delays = Vec::new();
        for pid in 43..50 {
            let a = s.handle(
                Event::Exited {
                    status: ExitStatus::Code(1),
                },
                now,
            );
            assert!(a.contains(&Action::KillGroup { pgid: pid - 1 }));
            let State::Backoff { until } = s.state else {
                panic!("not in backoff: {:?}", s.state)
            };
            delays.push(until - now);
            // Nothing before the deadline.
            assert!(!spawns(&s.handle(Event::Deadline, until - ms(1))));
            now = until;
            assert_eq!(s.deadline(), Some(until));
            assert!(spawns(&s.handle(Event::Deadline, now)));
            s.handle(Event::Spawned { pid }, now);
        }
        assert_eq!(
            delays,
            vec![
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1000),
                ms(1000),
                ms(1000)
            ]
        );
        assert_eq!(s.restarts, 7);
    }

    #[test]
    fn long_run_resets_backoff() {
        let t0 = Instant::now();
        let mut s = running(RestartPolicy::Always, t0);
        for _ in 0..3 {
            s.handle(
                Event::Exited {
                    status: ExitStatus::Code(1),
                },
                t0,
            );
            s.handle(Event::Deadline, t0 + Duration::from_secs(1));
            s.handle(Event::Spawned { pid: 7 }, t0 + Duration::from_secs(1));
        }
        // Next delay would be 800ms; but this run lasted 10s.
        let t1 = t0 + Duration::from_secs(11);
        s.handle(
            Event::Exited {
                status: ExitStatus::Signal(9),
            },
            t1,
        );
        assert_eq!(
            s.state,
            State::Backoff {
                until: t1 + ms(100)
            }
        );
    }

    #[test]
    fn zero_backoff_spawns_at_once() {
        let t0 = Instant::now();
        let mut s = Service::new("z".into(), policy(RestartPolicy::Always));
        s.policy.backoff.initial = Duration::ZERO;
        s.next_delay = Duration::ZERO;
        s.handle(Event::Start, t0);
        s.handle(Event::Spawned { pid: 1 }, t0);
        let a = s.handle(
            Event::Exited {
                status: ExitStatus::Signal(9),
            },
            t0,
        );
        assert!(spawns(&a));
        s.handle(Event::Spawned { pid: 2 }, t0);
        assert_eq!(s.state, State::Running { pid: 2 });
        assert_eq!(s.restarts, 1);
    }

    #[test]
    fn on_failure_restarts_only_failures() {
        let t0 = Instant::now();
        let mut s = running(RestartPolicy::OnFailure, t0);
        s.handle(
            Event::Exited {
                status: ExitStatus::Signal(11),
            },
            t0,
        );
        assert!(matches!(s.state, State::Backoff { .. }));
        s.handle(Event::Deadline, t0 + ms(100));
        s.handle(Event::Spawned { pid: 2 }, t0 + ms(100));
        let a = s.handle(
            Event::Exited {
                status: ExitStatus::Code(0),
            },
            t0 + ms(200),
        );
        assert!(!spawns(&a));
        assert_eq!(s.state, State::Exited);
        assert_eq!(s.last_exit, Some(ExitStatus::Code(0)));
    }

    #[test]
    fn never_ends_in_exited_or_failed() {
        let t0 = Instant::now();
        let mut s = running(RestartPolicy::Never, t0);
        s.handle(
            Event::Exited {
                status: ExitStatus::Code(3),
            },
            t0,
        );
        assert_eq!(s.state, State::Failed);
        assert_eq!(s.deadline(), None);
        // A manual start still works.
        assert!(spawns(&s.handle(Event::Start, t0)));
    }

    #[test]
    fn stop_escalates_to_sigkill_at_stop_timeout() {
        let t0 = Instant::now();
        let mut s = running(RestartPolicy::Always, t0);
        let a = s.handle(Event::Stop, t0);
        assert_eq!(
            a,
            vec![Action::Signal {
                pid: 42,
                signal: Signal::TERM
            }]
        );
        assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(5)));
        assert!(s.handle(Event::Deadline, t0 + ms(4999)).is_empty());
        let a = s.handle(Event::Deadline, t0 + Duration::from_secs(5));
        assert!(a.contains(&Action::Signal {
            pid: 42,
            signal: Signal::KILL
        }));
        assert_eq!(s.deadline(), None);
        let a = s.handle(
            Event::Exited {
                status: ExitStatus::Signal(9),
            },
            t0 + Duration::from_secs(5),
        );
        assert_eq!(a, vec![Action::KillGroup { pgid: 42 }]);
        assert_eq!(s.state, State::Stopped);
        // A stopped service is not restarted, whatever its policy.
        assert_eq!(s.restarts, 0);
    }

    #[test]
    fn stop_that_exits_in_time_needs_no_kill() {
        let t0 = Instant::now();
        let mut s = running(RestartPolicy::Always, t0);
        s.handle(Event::Stop, t0);
        s.handle(
            Event::Exited {
                status: ExitStatus::Code(0),
            },
            t0 + ms(10),
        );
        assert_eq!(s.state, State::Stopped);
        assert!(s
            .handle(Event::Deadline, t0 + Duration::from_secs(6))
            .is_empty());
    }

    #[test]
    fn restart_stops_then_spawns_and_resets_backoff() {
        let t0 = Instant::now();
        let mut s = running(RestartPolicy::Always, t0);
        s.next_delay = ms(800);
        s.handle(Event::Restart, t0);
        let a = s.handle(
            Event::Exited {
                status: ExitStatus::Signal(15),
            },
            t0 + ms(5),
        );
        assert!(spawns(&a));
        assert_eq!(s.next_delay, ms(100));
        assert_eq!(s.restarts, 0);
    }

    #[test]
    fn failed_exec_goes_through_backoff() {
        let t0 = Instant::now();
        let mut s = Service::new("x".into(), policy(RestartPolicy::Always));
        s.handle(Event::Start, t0);
        let a = s.handle(
            Event::SpawnFailed {
                error: "execve(/nope): No such file or directory".into(),
            },
            t0,
        );
        assert!(matches!(&a[0], Action::Log(l) if l.contains("execve(/nope)")));
        assert_eq!(
            s.state,
            State::Backoff {
                until: t0 + ms(100)
            }
        );
        assert_eq!(s.restarts, 1);
        assert!(s.last_error.as_deref().unwrap().contains("No such file"));
        s.handle(Event::Deadline, t0 + ms(100));
        s.handle(
            Event::SpawnFailed {
                error: "again".into(),
            },
            t0 + ms(100),
        );
        assert_eq!(
            s.state,
            State::Backoff {
                until: t0 + ms(300)
            }
        );
    }

    #[test]
    fn failed_exec_with_never_is_failed() {
        let t0 = Instant::now();
        let mut s = Service::new("x".into(), policy(RestartPolicy::Never));
        s.handle(Event::Start, t0);
        s.handle(Event::SpawnFailed { error: "e".into() }, t0);
        assert_eq!(s.state, State::Failed);
    }

    #[test]
    fn stop_in_backoff_cancels_restart() {
        let t0 = Instant::now();
        let mut s = running(RestartPolicy::Always, t0);
        s.handle(
            Event::Exited {
                status: ExitStatus::Code(1),
            },
            t0,
        );
        s.handle(Event::Stop, t0);
        assert_eq!(s.state, State::Stopped);
        assert!(!spawns(
            &s.handle(Event::Deadline, t0 + Duration::from_secs(60))
        ));
    }

    #[test]
    fn kill_now_sigkills_running_and_stopping() {
        let t0 = Instant::now();
        let mut s = running(RestartPolicy::Always, t0);
        assert_eq!(
            s.kill_now(t0),
            vec![Action::Signal {
                pid: 42,
                signal: Signal::KILL
            }]
        );
        assert!(s.kill_now(t0).is_empty());
        s.handle(
            Event::Exited {
                status: ExitStatus::Signal(9),
            },
            t0,
        );
        assert_eq!(s.state, State::Stopped);
    }

    #[test]
    fn notify_readiness_waits_and_start_timeout_fails_the_start() {
        let t0 = Instant::now();
        let mut p = policy(RestartPolicy::Always);
        p.ready_on_start = false;
        p.start_timeout = Some(Duration::from_secs(2));
        let mut s = Service::new("db".into(), p);
        s.handle(Event::Start, t0);
        s.handle(Event::Spawned { pid: 9 }, t0);
        assert_eq!(
            s.state,
            State::Starting {
                pid: 9,
                deadline: Some(t0 + Duration::from_secs(2))
            }
        );
        assert_eq!(s.state.name(), "starting");
        // Ready in time: running, and the deadline is gone.
        s.handle(Event::Ready, t0 + ms(500));
        assert_eq!(s.state, State::Running { pid: 9 });
        assert_eq!(s.deadline(), None);

        // Next run: never ready. At the deadline: SIGKILL, then a failure
        // that goes through backoff.
        s.handle(Event::Restart, t0 + ms(600));
        s.handle(
            Event::Exited {
                status: ExitStatus::Signal(15),
            },
            t0 + ms(600),
        );
        s.handle(Event::Spawned { pid: 10 }, t0 + ms(600));
        assert!(s.handle(Event::Deadline, t0 + ms(2599)).is_empty());
        let a = s.handle(Event::Deadline, t0 + ms(2600));
        assert!(
            a.contains(&Action::Signal {
                pid: 10,
                signal: Signal::KILL
            }),
            "{a:?}"
        );
        assert!(s.last_error.as_deref().unwrap().contains("start_timeout"));
        s.handle(
            Event::Exited {
                status: ExitStatus::Signal(9),
            },
            t0 + ms(2601),
        );
        assert!(matches!(s.state, State::Backoff { .. }), "{:?}", s.state);
        assert_eq!(s.restarts, 1);
    }

    #[test]
    fn unhealthy_and_watchdog_restart_through_backoff() {
        let t0 = Instant::now();
        let mut s = running(RestartPolicy::Always, t0);
        let a = s.handle(
            Event::Unhealthy {
                reason: "HTTP 503".into(),
            },
            t0,
        );
        assert_eq!(
            a[1],
            Action::Signal {
                pid: 42,
                signal: Signal::TERM
            }
        );
        assert_eq!(s.last_error.as_deref(), Some("unhealthy: HTTP 503"));
        s.handle(
            Event::Exited {
                status: ExitStatus::Signal(15),
            },
            t0 + ms(10),
        );
        assert_eq!(
            s.state,
            State::Backoff {
                until: t0 + ms(110)
            }
        );
        s.handle(Event::Deadline, t0 + ms(110));
        s.handle(Event::Spawned { pid: 43 }, t0 + ms(110));
        s.handle(Event::WatchdogTimeout, t0 + ms(200));
        assert!(matches!(
            s.state,
            State::Stopping {
                then: AfterStop::Fail,
                ..
            }
        ));
        // Not restarted under `never`: failed.
        let mut n = running(RestartPolicy::Never, t0);
        n.handle(Event::Unhealthy { reason: "x".into() }, t0);
        n.handle(
            Event::Exited {
                status: ExitStatus::Signal(15),
            },
            t0,
        );
        assert_eq!(n.state, State::Failed);
    }

    #[test]
    fn oneshot_completes_and_repeats_every() {
        let t0 = Instant::now();
        let mut p = policy(RestartPolicy::OnFailure);
        p.oneshot = true;
        p.every = Some(Duration::from_secs(3600));
        let mut s = Service::new("migrate".into(), p);
        s.handle(Event::Start, t0);
        s.handle(Event::Spawned { pid: 5 }, t0);
        // A failure retries by policy.
        s.handle(
            Event::Exited {
                status: ExitStatus::Code(1),
            },
            t0 + ms(50),
        );
        assert!(matches!(s.state, State::Backoff { .. }));
        s.handle(Event::Deadline, t0 + ms(150));
        s.handle(Event::Spawned { pid: 6 }, t0 + ms(150));
        // Exit 0 completes it, and schedules the next run.
        s.handle(
            Event::Exited {
                status: ExitStatus::Code(0),
            },
            t0 + ms(200),
        );
        let next = t0 + ms(200) + Duration::from_secs(3600);
        assert_eq!(s.state, State::Completed { next: Some(next) });
        assert!(s.state.is_down());
        assert!(s.handle(Event::Deadline, next - ms(1)).is_empty());
        assert_eq!(s.handle(Event::Deadline, next), vec![Action::Spawn]);
    }
}
