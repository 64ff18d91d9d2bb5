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

// Until the event loop wires these in (issue 4).
#![allow(dead_code, unused_imports)]

mod net;
mod notify;
mod ready_pipe;
mod state;

pub use net::{reason, resolve, HttpProbe, NetProbe, TcpProbe, INTEREST, MAX_RESPONSE};
pub use notify::{
    parse as parse_notify, sender_allowed, session_of, Credentials, Message, NotifySocket,
    MAX_DATAGRAM,
};
pub use ready_pipe::{ReadyPipe, MAX_NOISE, READY_FD};
pub use state::{HealthState, Transition, FIRST_CHECK_AFTER};
