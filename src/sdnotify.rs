//! sentinel as a systemd service (`Type=notify`): the client side of the
//! sd_notify protocol, for sentinel's *own* readiness. (The server side,
//! services notifying sentinel, is `health::NotifySocket`.)
//!
//! systemd gives a `Type=notify` service `NOTIFY_SOCKET` (an absolute path,
//! or `@name` for a socket in the abstract namespace) and, with
//! `WatchdogSec=`, `WATCHDOG_USEC` (and `WATCHDOG_PID`, the pid the watchdog
//! is meant for). [`Notifier::from_env`] reads them and *removes* them from
//! sentinel's environment, as `sd_notify(unset_environment = 1)` does: the
//! services inherit sentinel's environment and must not talk to systemd
//! behind sentinel's back (or be killed by a watchdog that was not theirs).
//!
//! What is sent, and when, is decided by [`Reporter`], a pure state machine
//! with an injected clock: `READY=1` once, when every `required` service is
//! ready by the same rule `/readyz` uses ([`blocks_readiness`]); `STATUS=`
//! with a one-line [`summary`] when it changes, at most once a second;
//! `STOPPING=1` when the shutdown begins; `WATCHDOG=1` every half
//! `WATCHDOG_USEC`. The event loop only feeds it and sends.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// The variables systemd hands a notify service, all removed by `from_env`.
pub const ENV_VARS: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// A STATUS= change waits this long after the previous one (a crash loop
/// with no backoff must not flood the manager).
pub const STATUS_MIN_GAP: Duration = Duration::from_secs(1);

/// A connectionless, non-blocking client of the manager's notify socket.
#[derive(Debug)]
pub struct Notifier {
    sock: UnixDatagram,
    addr: SocketAddr,
    /// `NOTIFY_SOCKET` as given, for messages.
    target: String,
    /// `WATCHDOG_USEC`, when it is meant for this process.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From sentinel's environment, which loses the variables (see the
    /// module doc). `Ok(None)`: not started by a manager that listens.
    /// Call while sentinel is still one thread (before anything spawns).
    pub fn from_env() -> Result<Option<Notifier>, String> {
        let vars: Vec<Option<OsString>> = ENV_VARS.iter().map(std::env::var_os).collect();
        for k in ENV_VARS {
            std::env::remove_var(k);
        }
        Notifier::from_values(
            vars[0].as_deref(),
            vars[1].as_deref(),
            vars[2].as_deref(),
            std::process::id(),
        )
    }

    /// From the variables' values: `NOTIFY_SOCKET`, `WATCHDOG_USEC`,
    /// `WATCHDOG_PID`, and this process's pid. A watchdog meant for another
    /// pid, or a `WATCHDOG_USEC` that is not a positive number, is ignored
    /// (as `sd_watchdog_enabled` does).
    pub fn from_values(
        socket: Option<&OsStr>,
        watchdog_usec: Option<&OsStr>,
        watchdog_pid: Option<&OsStr>,
        pid: u32,
    ) -> Result<Option<Notifier>, String> {
        let Some(socket) = socket.filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let target = socket.to_string_lossy().into_owned();
        let addr = socket_addr(socket).map_err(|why| format!("NOTIFY_SOCKET={target}: {why}"))?;
        let sock = UnixDatagram::unbound()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| format!("NOTIFY_SOCKET={target}: socket: {e}"))?;
        let number = |v: Option<&OsStr>| v.and_then(|v| v.to_str()?.parse::<u64>().ok());
        let for_us = match watchdog_pid.filter(|v| !v.is_empty()) {
            None => true,
            Some(v) => number(Some(v)) == Some(u64::from(pid)),
        };
        let watchdog = number(watchdog_usec)
            .filter(|&us| us > 0 && for_us)
            .map(Duration::from_micros);
        Ok(Some(Notifier {
            sock,
            addr,
            target,
            watchdog,
        }))
    }

    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, as
    /// sd_watchdog_enabled(3) advises. None: no watchdog.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    /// Where the messages go (`NOTIFY_SOCKET`'s value).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Send one datagram of `KEY=VALUE` lines. Never blocks: a full socket
    /// buffer is an error (`WouldBlock`) for the caller to report.
    pub fn send(&self, message: &str) -> io::Result<()> {
        self.sock
            .send_to_addr(message.as_bytes(), &self.addr)
            .map(|_| ())
    }

    // The one-message helpers, for callers outside the loop (and the
    // tests); the loop sends `Reporter`'s combined datagrams with `send`.
    #[allow(dead_code)]
    pub fn ready(&self) -> io::Result<()> {
        self.send("READY=1")
    }

    /// `STATUS=text` (line breaks become spaces: one message, one line).
    #[allow(dead_code)]
    pub fn status(&self, text: &str) -> io::Result<()> {
        self.send(&status_line(text))
    }

    #[allow(dead_code)]
    pub fn ping(&self) -> io::Result<()> {
        self.send("WATCHDOG=1")
    }

    #[allow(dead_code)]
    pub fn stopping(&self) -> io::Result<()> {
        self.send("STOPPING=1")
    }
}

fn status_line(text: &str) -> String {
    format!("STATUS={}", text.replace(['\n', '\r'], " "))
}

/// `/path` or `@abstract`.
fn socket_addr(socket: &OsStr) -> Result<SocketAddr, String> {
    let bytes = socket.as_bytes();
    match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(socket).map_err(|e| e.to_string()),
        Some(b'@') => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(&bytes[1..]).map_err(|e| e.to_string())
        }
        _ => Err(
            "not an absolute path or an @abstract socket name (other kinds, like vsock:, are not supported)"
                .to_string(),
        ),
    }
}

/// Whether a service in this state keeps the supervisor from being ready
/// (when the service is `required`): waiting for its dependencies, started
/// but not ready yet, failed, waiting to restart, or stopping. A service
/// stopped on purpose, or that exited with success, does not. The rule of
/// both `/readyz` and `READY=1`.
pub fn blocks_readiness(state: &str) -> bool {
    matches!(
        state,
        "failed" | "backoff" | "stopping" | "waiting" | "starting"
    )
}

/// The one-line summary for `STATUS=`: `5 services: 4 running, 1 backoff`
/// (states in a fixed order, empty ones left out).
pub fn summary<'a>(states: impl IntoIterator<Item = &'a str>, shutting_down: bool) -> String {
    const ORDER: [&str; 9] = [
        "running",
        "starting",
        "waiting",
        "backoff",
        "stopping",
        "completed",
        "exited",
        "failed",
        "stopped",
    ];
    let mut counts = [0usize; ORDER.len()];
    let mut other = 0;
    let mut total = 0;
    for s in states {
        total += 1;
        match ORDER.iter().position(|o| *o == s) {
            Some(i) => counts[i] += 1,
            None => other += 1,
        }
    }
    let mut parts: Vec<String> = ORDER
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    if other > 0 {
        parts.push(format!("{other} other"));
    }
    let noun = if total == 1 { "service" } else { "services" };
    let head = if shutting_down { "shutting down: " } else { "" };
    if parts.is_empty() {
        format!("{head}{total} {noun}")
    } else {
        format!("{head}{total} {noun}: {}", parts.join(", "))
    }
}

/// What to tell the manager, and when. Pure: the caller gives it the
/// supervisor's view and the time, and sends what comes back.
#[derive(Debug)]
pub struct Reporter {
    ready_sent: bool,
    stopping_sent: bool,
    /// The last STATUS= sent, and when.
    status: Option<(String, Instant)>,
    /// A changed status held back by [`STATUS_MIN_GAP`].
    pending: Option<String>,
    ping_every: Option<Duration>,
    next_ping: Option<Instant>,
}

impl Reporter {
    /// `ping_every`: [`Notifier::watchdog_interval`]. The first ping is due
    /// at once (the manager's watchdog runs from the start).
    pub fn new(ping_every: Option<Duration>, now: Instant) -> Reporter {
        Reporter {
            ready_sent: false,
            stopping_sent: false,
            status: None,
            pending: None,
            ping_every,
            next_ping: ping_every.map(|_| now),
        }
    }

    /// The supervisor's current view. Returns the datagram to send now, if
    /// anything changed that must be said.
    pub fn update(
        &mut self,
        ready: bool,
        shutting_down: bool,
        status: &str,
        now: Instant,
    ) -> Option<String> {
        let mut lines = Vec::new();
        if shutting_down && !self.stopping_sent {
            self.stopping_sent = true;
            lines.push("STOPPING=1".to_string());
        } else if ready && !shutting_down && !self.ready_sent {
            self.ready_sent = true;
            lines.push("READY=1".to_string());
        }
        let changed = self.status.as_ref().map(|(s, _)| s.as_str()) != Some(status);
        if changed {
            let gap_over = self
                .status
                .as_ref()
                .map_or(true, |(_, at)| now >= *at + STATUS_MIN_GAP);
            // READY=1 and STOPPING=1 carry the status that goes with them.
            if gap_over || !lines.is_empty() {
                self.pending = None;
                self.status = Some((status.to_string(), now));
                lines.push(status_line(status));
            } else if self.pending.as_deref() != Some(status) {
                self.pending = Some(status.to_string());
            }
        } else {
            self.pending = None;
        }
        self.due(now, &mut lines);
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    /// At [`Reporter::deadline`] (or any time after): the ping and the
    /// held-back status that are due.
    pub fn on_deadline(&mut self, now: Instant) -> Option<String> {
        let mut lines = Vec::new();
        // (A status is held back only after one was sent.)
        let due = matches!(&self.status, Some((_, at)) if now >= *at + STATUS_MIN_GAP);
        if due {
            if let Some(text) = self.pending.take() {
                lines.push(status_line(&text));
                self.status = Some((text, now));
            }
        }
        self.due(now, &mut lines);
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    fn due(&mut self, now: Instant, lines: &mut Vec<String>) {
        if let (Some(at), Some(every)) = (self.next_ping, self.ping_every) {
            if now >= at {
                lines.push("WATCHDOG=1".to_string());
                self.next_ping = Some(now + every);
            }
        }
    }

    /// When [`Reporter::on_deadline`] has something to send next.
    pub fn deadline(&self) -> Option<Instant> {
        let status = match (&self.pending, &self.status) {
            (Some(_), Some((_, at))) => Some(*at + STATUS_MIN_GAP),
            _ => None,
        };
        match (status, self.next_ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    #[cfg(test)]
    pub fn ready_sent(&self) -> bool {
        self.ready_sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp_socket(tag: &str) -> (PathBuf, UnixDatagram) {
        let dir =
            std::env::temp_dir().join(format!("sentinel-sdnotify-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (path, server)
    }

    fn recv(server: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = server.recv(&mut buf).expect("a datagram within 5s");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let (path, server) = temp_socket("path");
        let n = Notifier::from_values(Some(path.as_os_str()), None, None, 1)
            .unwrap()
            .unwrap();
        n.ready().unwrap();
        assert_eq!(recv(&server), "READY=1");
        n.status("2 services:\n2 running").unwrap();
        assert_eq!(recv(&server), "STATUS=2 services: 2 running");
        n.ping().unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
        n.stopping().unwrap();
        assert_eq!(recv(&server), "STOPPING=1");
        assert_eq!(n.watchdog_interval(), None);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("sentinel-sdnotify-test-{}", std::process::id());
        let server =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let env = OsString::from(format!("@{name}"));
        let n = Notifier::from_values(Some(&env), None, None, 1)
            .unwrap()
            .unwrap();
        n.ready().unwrap();
        assert_eq!(recv(&server), "READY=1");
        assert_eq!(n.target(), format!("@{name}"));
    }

    #[test]
    fn no_socket_means_no_notifier_and_bad_ones_are_named() {
        assert!(Notifier::from_values(None, None, None, 1)
            .unwrap()
            .is_none());
        let empty = OsString::new();
        assert!(Notifier::from_values(Some(&empty), None, None, 1)
            .unwrap()
            .is_none());
        let e =
            Notifier::from_values(Some(OsStr::new("relative/sock")), None, None, 1).unwrap_err();
        assert!(
            e.starts_with("NOTIFY_SOCKET=relative/sock: not an absolute path"),
            "{e}"
        );
        let e = Notifier::from_values(Some(OsStr::new("vsock:2:1234")), None, None, 1).unwrap_err();
        assert!(e.contains("vsock"), "{e}");
    }

    #[test]
    fn the_watchdog_is_half_of_watchdog_usec_and_only_for_our_pid() {
        let sock = OsStr::new("/run/systemd/notify");
        let usec = OsStr::new("30000000");
        let n = |pid: Option<&str>| {
            Notifier::from_values(Some(sock), Some(usec), pid.map(OsStr::new), 42)
                .unwrap()
                .unwrap()
                .watchdog_interval()
        };
        assert_eq!(n(None), Some(Duration::from_secs(15)));
        assert_eq!(n(Some("42")), Some(Duration::from_secs(15)));
        assert_eq!(n(Some("43")), None);
        assert_eq!(n(Some("x")), None);
        for bad in ["0", "-5", "soon", ""] {
            let w = Notifier::from_values(Some(sock), Some(OsStr::new(bad)), None, 42)
                .unwrap()
                .unwrap()
                .watchdog_interval();
            assert_eq!(w, None, "WATCHDOG_USEC={bad}");
        }
    }

    #[test]
    fn readiness_follows_the_readyz_rule() {
        for s in ["failed", "backoff", "stopping", "waiting", "starting"] {
            assert!(blocks_readiness(s), "{s}");
        }
        for s in ["running", "stopped", "exited", "completed"] {
            assert!(!blocks_readiness(s), "{s}");
        }
    }

    #[test]
    fn summaries_count_states_in_a_fixed_order() {
        assert_eq!(summary(["running"; 5], false), "5 services: 5 running");
        assert_eq!(
            summary(["backoff", "running", "starting", "running"], false),
            "4 services: 2 running, 1 starting, 1 backoff"
        );
        assert_eq!(
            summary(["stopping"], true),
            "shutting down: 1 service: 1 stopping"
        );
        assert_eq!(summary([], false), "0 services");
    }

    #[test]
    fn ready_is_sent_once_with_the_status() {
        let t0 = Instant::now();
        let mut r = Reporter::new(None, t0);
        assert_eq!(
            r.update(false, false, "1 service: 1 starting", t0)
                .as_deref(),
            Some("STATUS=1 service: 1 starting")
        );
        assert_eq!(r.update(false, false, "1 service: 1 starting", t0), None);
        // Becoming ready within the gap: READY=1 brings its status at once.
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(
            r.update(true, false, "1 service: 1 running", t1).as_deref(),
            Some("READY=1\nSTATUS=1 service: 1 running")
        );
        assert!(r.ready_sent());
        // Not ready, then ready again: no second READY=1.
        let t2 = t1 + Duration::from_secs(2);
        assert_eq!(
            r.update(false, false, "1 service: 1 backoff", t2)
                .as_deref(),
            Some("STATUS=1 service: 1 backoff")
        );
        let t3 = t2 + Duration::from_secs(2);
        assert_eq!(
            r.update(true, false, "1 service: 1 running", t3).as_deref(),
            Some("STATUS=1 service: 1 running")
        );
        assert_eq!(r.deadline(), None);
    }

    #[test]
    fn status_changes_are_held_to_one_a_second() {
        let t0 = Instant::now();
        let mut r = Reporter::new(None, t0);
        assert!(r.update(true, false, "a", t0).is_some());
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(r.update(true, false, "b", t1), None);
        assert_eq!(r.update(true, false, "c", t1), None);
        assert_eq!(r.deadline(), Some(t0 + STATUS_MIN_GAP));
        assert_eq!(r.on_deadline(t1), None, "not due yet");
        let t2 = t0 + STATUS_MIN_GAP;
        assert_eq!(r.on_deadline(t2).as_deref(), Some("STATUS=c"));
        assert_eq!(r.deadline(), None);
        // A change back to what was sent cancels the held one.
        let t3 = t2 + Duration::from_millis(10);
        assert_eq!(r.update(true, false, "d", t3), None);
        assert_eq!(r.update(true, false, "c", t3), None);
        assert_eq!(r.deadline(), None);
    }

    #[test]
    fn stopping_is_sent_once_and_before_any_ready() {
        let t0 = Instant::now();
        let mut r = Reporter::new(None, t0);
        assert_eq!(
            r.update(true, true, "shutting down: 0 services", t0)
                .as_deref(),
            Some("STOPPING=1\nSTATUS=shutting down: 0 services")
        );
        assert_eq!(r.update(true, true, "shutting down: 0 services", t0), None);
        assert!(!r.ready_sent());
    }

    #[test]
    fn the_watchdog_pings_at_once_then_every_interval() {
        let t0 = Instant::now();
        let every = Duration::from_secs(15);
        let mut r = Reporter::new(Some(every), t0);
        assert_eq!(r.deadline(), Some(t0));
        assert_eq!(
            r.update(false, false, "s", t0).as_deref(),
            Some("STATUS=s\nWATCHDOG=1")
        );
        assert_eq!(r.deadline(), Some(t0 + every));
        assert_eq!(r.on_deadline(t0 + every / 2), None);
        let t1 = t0 + every + Duration::from_millis(3);
        assert_eq!(r.on_deadline(t1).as_deref(), Some("WATCHDOG=1"));
        assert_eq!(r.deadline(), Some(t1 + every));
    }
}
