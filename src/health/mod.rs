//! Health checks and readiness channels, as small objects the event loop
//! drives: each exposes a mio source (or is one) for the loop to register
//! under a token of its choosing, advances when that token fires, and
//! reports a result. Nothing here blocks, sleeps or spawns a thread; every
//! timeout is a deadline the loop keeps in its heap.
//!
//! - [`HealthState`]: pure, clock-injected health of one instance (when to
//!   check next, when a running check times out, what a result changes).
//! - [`TcpProbe`], [`HttpProbe`]: one check each, over a non-blocking socket.
//! - Exec probes (`exec = [...]`) are child processes: the loop spawns them
//!   with `sys::spawn` inside the service's isolation and judges exit 0 within
//!   [`HealthState::check_deadline`] (past it: kill and report
//!   [`HealthState::timeout_reason`]). No object here; the result goes to
//!   [`HealthState::on_result`] like any other.
//! - [`NotifySocket`]: the sd_notify datagram socket (`ready = "notify"`,
//!   `WATCHDOG=1`, `STATUS=`...), with sender credentials.
//! - [`ReadyPipe`]: s6-style readiness, a newline on fd 3.
//!
//! # Wiring into the loop
//!
//! - Per instance with a `health` table: a [`HealthState`] made at exec
//!   time. While no check runs, its deadline is [`HealthState::next_check_at`];
//!   at it, [`NetProbe::start`] (an `Err` is a failed check: report
//!   [`reason`]), register the probe with [`INTEREST`] under a token of the
//!   instance, call [`HealthState::check_started`], and arm
//!   [`HealthState::check_deadline`]. On each event of the token call
//!   `on_event`; on `Ready(r)`, deregister, drop, and feed `r` to
//!   [`HealthState::on_result`]; on the deadline, deregister, drop, and feed
//!   `Err(timeout_reason())`. A stale heap entry (the check already ended)
//!   is recognised by comparing with the current deadline. The supervisor
//!   acts on the [`Transition`] (`BecameUnhealthy` + `on_unhealthy =
//!   "restart"`: restart; first `BecameHealthy` with `ready = "healthy"`:
//!   ready). One check per interval costs one wake-up for the deadline and
//!   one or two for the socket.
//! - `ready = "notify"` or `watchdog`: one [`NotifySocket`] for the whole
//!   supervisor, one token; on readable, `recv()` until `Ok(None)` and give
//!   each datagram to the instance for which [`sender_allowed`] holds.
//!   Adopt `MAINPID=N` only if `sender_allowed(N, leader, main)` holds too.
//!   `WATCHDOG=1` moves that instance's watchdog deadline.
//! - `ready = "fd"`: [`ReadyPipe::new`] before the spawn, the write end to
//!   the child as fd [`READY_FD`], the parent's copy dropped right after.
//! - Host names in probes: call [`resolve`] from config validation, so a
//!   name that is not an IP literal is a `check` error.

mod net;
mod notify;
mod ready_pipe;
mod state;

pub use net::{reason, NetProbe, INTEREST};
pub use notify::{sender_allowed, Message, NotifySocket};
pub use ready_pipe::{ReadyPipe, READY_FD};
pub use state::{HealthState, Transition};
