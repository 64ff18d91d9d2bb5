//! A service's health as a pure state machine over check results, with an
//! injected clock: when the next check is due, when a running check times
//! out, and what one result changes. Docker's rules: failures inside
//! `start_period` do not count, but a success inside it makes the service
//! healthy and ends the grace; `retries` consecutive counted failures make
//! it unhealthy; one success makes it healthy again.

use std::time::{Duration, Instant};

use crate::config::HealthCheck;

/// The first check runs this long after start, or one `interval` if that
/// is shorter, so that `ready = "healthy"` does not wait a whole interval.
pub const FIRST_CHECK_AFTER: Duration = Duration::from_secs(1);

/// What one check result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Healthy now, and was not before (first success, or a recovery).
    BecameHealthy,
    /// Unhealthy now, and was not before: `retries` consecutive failures
    /// counted after the start period.
    BecameUnhealthy,
    /// Nothing the supervisor acts on.
    NoChange,
}

/// The health of one running instance. A new process gets a new one.
#[derive(Debug, Clone)]
pub struct HealthState {
    interval: Duration,
    timeout: Duration,
    /// At least 1.
    retries: u32,
    /// Failures before this instant do not count (unless a success came).
    grace_until: Instant,
    /// A success came: the grace is over whatever the clock says.
    grace_over: bool,
    next_check_at: Instant,
    /// When the check in flight started.
    running_since: Option<Instant>,
    /// `None` while not yet known ("starting").
    pub healthy: Option<bool>,
    /// Counted failures in a row (reset by a success).
    pub consecutive_failures: u32,
    /// The outcome of the last finished check.
    pub last_result: Option<bool>,
    /// The reason of the last failed check (kept after a recovery).
    pub last_error: Option<String>,
    /// How long the last finished check took.
    pub last_check_duration: Option<Duration>,
    /// Finished checks, for metrics (never reset).
    pub checks_total: u64,
    /// Failed checks, counted or not, for metrics (never reset).
    pub failures_total: u64,
}

impl HealthState {
    /// The health of an instance started at `started_at`.
    pub fn new(check: &HealthCheck, started_at: Instant) -> Self {
        HealthState {
            interval: check.interval,
            timeout: check.timeout,
            retries: check.retries.max(1),
            grace_until: started_at + check.start_period,
            grace_over: false,
            next_check_at: started_at + check.interval.min(FIRST_CHECK_AFTER),
            running_since: None,
            healthy: None,
            consecutive_failures: 0,
            last_result: None,
            last_error: None,
            last_check_duration: None,
            checks_total: 0,
            failures_total: 0,
        }
    }

    /// When the next check should start (the loop's deadline while no check
    /// runs).
    pub fn next_check_at(&self) -> Instant {
        self.next_check_at
    }

    /// Record that a check started at `now`.
    pub fn check_started(&mut self, now: Instant) {
        self.running_since = Some(now);
    }

    /// Whether a check is in flight.
    pub fn running(&self) -> bool {
        self.running_since.is_some()
    }

    /// When the check in flight times out: the loop's deadline while a check
    /// runs. At it, the loop drops the probe and reports
    /// [`HealthState::timeout_reason`] as a failure.
    pub fn check_deadline(&self) -> Option<Instant> {
        self.running_since.map(|t| t + self.timeout)
    }

    /// The failure reason of a check that ran out of time.
    pub fn timeout_reason(&self) -> String {
        format!("timed out after {:?}", self.timeout)
    }

    /// A check finished at `now`: `Ok(())` or `Err(reason)`. Schedules the
    /// next check one interval from now.
    pub fn on_result(&mut self, result: Result<(), String>, now: Instant) -> Transition {
        if let Some(t) = self.running_since.take() {
            self.last_check_duration = Some(now.saturating_duration_since(t));
        }
        self.next_check_at = now + self.interval;
        self.checks_total += 1;
        match result {
            Ok(()) => {
                self.last_result = Some(true);
                self.consecutive_failures = 0;
                self.grace_over = true;
                if self.healthy == Some(true) {
                    Transition::NoChange
                } else {
                    self.healthy = Some(true);
                    Transition::BecameHealthy
                }
            }
            Err(reason) => {
                self.last_result = Some(false);
                self.last_error = Some(reason);
                self.failures_total += 1;
                if !self.grace_over && now < self.grace_until {
                    return Transition::NoChange;
                }
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if self.consecutive_failures >= self.retries && self.healthy != Some(false) {
                    self.healthy = Some(false);
                    Transition::BecameUnhealthy
                } else {
                    Transition::NoChange
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{OnUnhealthy, Probe};

    fn check(retries: u32, start_period: Duration) -> HealthCheck {
        HealthCheck {
            probe: Probe::Tcp {
                host: "127.0.0.1".into(),
                port: 1,
            },
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            retries,
            start_period,
            on_unhealthy: OnUnhealthy::Restart,
        }
    }

    fn fail() -> Result<(), String> {
        Err("connection refused".into())
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn schedule_first_check_soon_then_every_interval() {
        let t0 = Instant::now();
        let mut h = HealthState::new(&check(3, S(0)), t0);
        assert_eq!(h.next_check_at(), t0 + FIRST_CHECK_AFTER);
        assert_eq!(h.check_deadline(), None);
        h.check_started(t0 + S(1));
        assert!(h.running());
        assert_eq!(h.check_deadline(), Some(t0 + S(6)));
        h.on_result(Ok(()), t0 + S(2));
        assert!(!h.running());
        assert_eq!(h.last_check_duration, Some(S(1)));
        assert_eq!(h.next_check_at(), t0 + S(12));

        let mut fast = check(3, S(0));
        fast.interval = Duration::from_millis(200);
        let h = HealthState::new(&fast, t0);
        assert_eq!(h.next_check_at(), t0 + Duration::from_millis(200));
    }

    #[test]
    fn retries_threshold() {
        let t0 = Instant::now();
        let mut h = HealthState::new(&check(3, S(0)), t0);
        assert_eq!(h.on_result(fail(), t0 + S(1)), Transition::NoChange);
        assert_eq!(h.on_result(fail(), t0 + S(11)), Transition::NoChange);
        assert_eq!(h.healthy, None);
        assert_eq!(h.consecutive_failures, 2);
        assert_eq!(h.on_result(fail(), t0 + S(21)), Transition::BecameUnhealthy);
        assert_eq!(h.healthy, Some(false));
        // Reported once, not on every further failure.
        assert_eq!(h.on_result(fail(), t0 + S(31)), Transition::NoChange);
        assert_eq!(h.consecutive_failures, 4);
        assert_eq!(h.last_error.as_deref(), Some("connection refused"));
    }

    #[test]
    fn retries_zero_means_one() {
        let t0 = Instant::now();
        let mut h = HealthState::new(&check(0, S(0)), t0);
        assert_eq!(h.on_result(fail(), t0), Transition::BecameUnhealthy);
    }

    #[test]
    fn failures_in_start_period_do_not_count() {
        let t0 = Instant::now();
        let mut h = HealthState::new(&check(2, S(30)), t0);
        for s in [1, 11, 21, 29] {
            assert_eq!(h.on_result(fail(), t0 + S(s)), Transition::NoChange);
        }
        assert_eq!(h.consecutive_failures, 0);
        assert_eq!(h.failures_total, 4);
        assert_eq!(h.healthy, None);
        // From the end of the grace they count.
        assert_eq!(h.on_result(fail(), t0 + S(30)), Transition::NoChange);
        assert_eq!(h.on_result(fail(), t0 + S(40)), Transition::BecameUnhealthy);
    }

    #[test]
    fn success_in_start_period_ends_the_grace() {
        let t0 = Instant::now();
        let mut h = HealthState::new(&check(2, S(60)), t0);
        assert_eq!(h.on_result(Ok(()), t0 + S(1)), Transition::BecameHealthy);
        assert_eq!(h.healthy, Some(true));
        assert_eq!(h.on_result(fail(), t0 + S(11)), Transition::NoChange);
        assert_eq!(h.on_result(fail(), t0 + S(21)), Transition::BecameUnhealthy);
    }

    #[test]
    fn recovery_resets_the_count() {
        let t0 = Instant::now();
        let mut h = HealthState::new(&check(2, S(0)), t0);
        h.on_result(fail(), t0 + S(1));
        assert_eq!(h.on_result(Ok(()), t0 + S(2)), Transition::BecameHealthy);
        assert_eq!(h.consecutive_failures, 0);
        assert_eq!(h.on_result(Ok(()), t0 + S(3)), Transition::NoChange);
        h.on_result(fail(), t0 + S(4));
        assert_eq!(h.on_result(fail(), t0 + S(5)), Transition::BecameUnhealthy);
        assert_eq!(h.on_result(Ok(()), t0 + S(6)), Transition::BecameHealthy);
        assert_eq!(h.healthy, Some(true));
        assert_eq!(h.last_result, Some(true));
        // The last error stays visible after a recovery.
        assert_eq!(h.last_error.as_deref(), Some("connection refused"));
    }

    #[test]
    fn counters() {
        let t0 = Instant::now();
        let mut h = HealthState::new(&check(5, S(10)), t0);
        h.on_result(fail(), t0 + S(1)); // in grace: still counted for metrics
        h.on_result(Ok(()), t0 + S(2));
        h.on_result(fail(), t0 + S(3));
        h.check_started(t0 + S(4));
        let reason = h.timeout_reason();
        assert_eq!(reason, "timed out after 5s");
        h.on_result(Err(reason), t0 + S(9));
        assert_eq!(h.checks_total, 4);
        assert_eq!(h.failures_total, 3);
        assert_eq!(h.consecutive_failures, 2);
        assert_eq!(h.last_check_duration, Some(S(5)));
        assert_eq!(h.last_error.as_deref(), Some("timed out after 5s"));
    }
}
