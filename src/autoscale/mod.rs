//! Autoscaling (issue 8): how many instances of a service should run,
//! decided from its cgroups' load or by a policy command. The spec is the
//! `Autoscale` model in `config/scaling.rs`; this module carries it out.
//!
//! - [`Autoscaler`] (`engine`): the pure part, clock injected. The loop
//!   calls [`Autoscaler::record`] with a [`Sample`] every `interval`, then
//!   [`Autoscaler::evaluate`] (rules) or, with a `policy`, runs the policy
//!   command on [`Autoscaler::policy_input`] and hands its answer to
//!   [`Autoscaler::policy_decision`]. A [`Decision`] says keep or scale,
//!   with a one-line reason for logs, status and SSE.
//! - [`parse_policy_output`] (`policy`): a policy's stdout as a count.
//! - [`read_sample`] (`sample`): the I/O, reading cgroup v2 files.
//!
//! # How rules decide
//!
//! Each rule looks at the mean of its metric over the samples of the last
//! `window`:
//!
//! - `cpu`: CPU time per second per instance as a share of the instance's
//!   quota (`cpu_max`, else one CPU). It comes from the *differences* of
//!   the service group's cumulative `usage_usec` between consecutive
//!   samples, divided by the wall time between them, the instance count
//!   and the quota; the window's mean weighs each interval by its length.
//!   An interval across which the instance count changed, or the counter
//!   went backwards, is left out.
//! - `memory`: `memory.current` per instance (the mean over instances,
//!   then over samples); in bytes, or as a share of `memory_max`.
//! - `cpu_pressure`, `memory_pressure`, `io_pressure`: PSI `some avg10`
//!   (percent) of the service's group, averaged over the samples.
//!
//! A rule's `up` condition *holds* from the first evaluation whose mean
//! is above `up`, and stops holding (its clock resets) at the first one
//! whose mean is not; `down` likewise below `down`. Then, at each
//! evaluation:
//!
//! 1. A count outside the range (after `sentinel scale web 2-6`, say) is
//!    brought back to its nearest bound at once, cooldown or not.
//! 2. During `cooldown` after any change nothing happens (the conditions'
//!    clocks keep running, on samples taken after the change).
//! 3. When any rule's `up` has held for its `for`: grow by `step`.
//! 4. When every rule that has a `down` has had it hold for its `for`, and
//!    no rule's `up` holds right now: shrink by `step`. A rule without a
//!    `down` does not hold shrinking back except while its `up` holds
//!    (shrinking while one metric asks to grow would flap); with no `down`
//!    at all, load never shrinks the service.
//! 5. The result is clamped to `min`-`max`; at a bound the decision is a
//!    keep that says so.
//!
//! After a change (its own scale decision, or [`Autoscaler::changed`] for
//! one made by hand) the samples are dropped and every condition starts
//! over: what was measured with the old count says little about the new.
//!
//! A metric that has no data (no `cpu.pressure` file: a kernel without
//! `psi=1`; no `memory_max` for a memory share) never holds; the first
//! decision that meets it says so, once.
//!
//! # The policy's input (user-facing)
//!
//! With `policy = { exec = [...] }`, at each evaluation outside cooldown
//! the command gets one JSON document on stdin and prints the wanted
//! instance count: one whole number, whitespace around it allowed. Its
//! answer is clamped to `min`-`max` (`step` does not apply); a failure,
//! a timeout or anything else printed changes nothing and is reported.
//!
//! ```json
//! {
//!   "service": "web",
//!   "instances": 2,
//!   "min": 1,
//!   "max": 6,
//!   "interval_ms": 10000,
//!   "window_ms": 30000,
//!   "limits": { "cpu_quota": 1.0, "memory_max": 536870912 },
//!   "means": {
//!     "cpu": 0.93,
//!     "memory": 123456789,
//!     "memory_share": 0.23,
//!     "cpu_pressure": 12.5,
//!     "memory_pressure": 0.0,
//!     "io_pressure": null
//!   },
//!   "samples": [
//!     { "age_ms": 20000, "instances": 2, "cpu": null, "cpu_usage_usec": 81234567,
//!       "memory": [61728394, 61728395],
//!       "cpu_pressure": 11.9, "memory_pressure": 0.0, "io_pressure": null }
//!   ]
//! }
//! ```
//!
//! - `instances`: running now; `min`, `max`: the current range.
//! - `limits.cpu_quota`: CPUs per instance that `cpu` is a share of;
//!   `limits.memory_max`: bytes per instance, or `null`.
//! - `means`: the window's means as the rules see them (`null`: no data):
//!   `cpu` a share of `cpu_quota` per instance, `memory` bytes per
//!   instance, `memory_share` a share of `memory_max`, the pressures PSI
//!   `some avg10` percent.
//! - `samples`: the window's samples, oldest first. `age_ms` before now;
//!   `cpu` the share over the interval since the previous sample (`null`
//!   for the first, or when the count changed in between);
//!   `cpu_usage_usec` the service group's cumulative counter; `memory`
//!   each instance's `memory.current`.
//!
//! Fields may be added; none will be renamed or removed.

mod engine;
mod policy;
mod sample;
#[cfg(test)]
mod tests;

#[cfg(test)]
pub use engine::Sample;
pub use engine::{Autoscaler, Decision, Limits};
pub use policy::parse_policy_output;
#[cfg(test)]
pub use sample::parse_pressure;
pub use sample::read_sample;
