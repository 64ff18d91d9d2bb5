//! Readiness, health checks, dependencies, oneshots and ordered shutdown,
//! with real processes. sd_notify is spoken by a python3 one-liner.

mod common;
mod httpc;

use common::*;
use std::time::{Duration, Instant};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A shell snippet that sends `msg` to $NOTIFY_SOCKET, escaped to sit in
/// a TOML basic string.
fn notify(msg: &str) -> String {
    format!(
        "python3 -c \\\"import os,socket; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.connect(os.environ['NOTIFY_SOCKET']); s.send(b'{msg}')\\\""
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_stack_starts_in_dependency_order() {
    let dir = TempDir::new("stack");
    let order = dir.path("order");
    let port = free_port();
    let o = order.display();
    let s = Sentinel::start_with(
        TempDir::new("stack-run"),
        dir.write(
            "s.toml",
            &format!(
                r#"
[supervisor]
socket = {sock:?}

[services.web]
command = ["sh", "-c", "echo web-start >> {o}; exec python3 -m http.server {port} --bind 127.0.0.1"]
depends_on = {{ migrate = "completed" }}
health = {{ http = "http://127.0.0.1:{port}/", interval = "200ms", timeout = "200ms" }}
ready = "healthy"

[services.migrate]
type = "oneshot"
command = ["sh", "-c", "echo migrate-start >> {o}; sleep 0.2; echo migrate-done >> {o}"]
depends_on = {{ db = "ready" }}

[services.db]
command = ["sh", "-c", "echo db-start >> {o}; sleep 1; echo db-ready >> {o}; {ready}; exec sleep 100000"]
ready = "notify"
"#,
                sock = dir.path("s.sock"),
                ready = notify("READY=1"),
            ),
        ),
        dir.path("s.sock"),
        &[],
    );
    // Before db is ready, the others wait, and say why.
    let m = s.service("migrate");
    assert_eq!(m["state"], "waiting", "{m}");
    assert!(
        m["waiting_for"]
            .as_str()
            .unwrap()
            .contains("db to be ready"),
        "{m}"
    );
    s.wait_state("web", "running", SECS(30));
    assert_eq!(s.service("web")["healthy"], true);
    assert_eq!(s.service("migrate")["state"], "completed");
    assert_eq!(
        read(&order),
        "db-start\ndb-ready\nmigrate-start\nmigrate-done\nweb-start\n",
        "start order"
    );
}

#[test]
fn a_failing_http_health_check_restarts_after_retries_and_not_before_start_period() {
    let port = free_port();
    let (s, http) = httpc::start(
        "unhealthy",
        "",
        &format!(
            r#"
[services.sick]
command = ["python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
health = {{ http = "http://127.0.0.1:{port}/no-such-page", interval = "300ms", timeout = "200ms", retries = 3, start_period = "1500ms" }}
backoff = {{ initial = "0s" }}
"#
        ),
    );
    let t0 = Instant::now();
    let first = s.wait_state("sick", "running", SECS(10))["pid"]
        .as_i64()
        .unwrap();
    // The check runs and fails with the server's answer, visible in status.
    let h = wait_for("a failed check in status", SECS(10), || {
        let v = s.service("sick");
        let err = v["health"]["last_error"].as_str().unwrap_or("").to_string();
        err.contains("HTTP 404").then_some(v)
    });
    assert_eq!(h["health"]["last_ok"], false, "{h}");
    let restarted = wait_for("an unhealthy restart", SECS(20), || {
        let v = s.service("sick");
        (v["restarts"].as_u64().unwrap() >= 1).then_some(v)
    });
    let took = t0.elapsed();
    // Not before start_period (1.5 s), and after `retries` failures.
    assert!(
        took >= Duration::from_millis(1500),
        "restarted after {took:?}, inside start_period"
    );
    assert!(
        s.stderr().contains("sick: unhealthy (HTTP 404)"),
        "{}",
        s.stderr()
    );
    assert_ne!(restarted["pid"].as_i64(), Some(first));
    // The health metrics count every check, over runs.
    let m = httpc::get(http, "/metrics").body;
    let failures = m
        .lines()
        .find(|l| l.starts_with("sentinel_service_health_check_failures_total{service=\"sick\"}"))
        .unwrap_or_else(|| panic!("no failure counter in\n{m}"));
    let n: f64 = failures.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 3.0, "{failures}");
    assert!(
        m.contains("sentinel_service_ready{service=\"sick\"}"),
        "{m}"
    );
}

#[test]
fn health_checks_cost_about_one_wakeup_per_interval() {
    // A listener that never accepts: connects succeed from its backlog.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let s = Sentinel::start(
        "wakeups",
        "",
        &format!(
            r#"
[services.checked]
command = ["sleep", "100000"]
health = {{ tcp = "127.0.0.1:{port}", interval = "1s", timeout = "500ms" }}
"#
        ),
    );
    wait_for("a first passing check", SECS(10), || {
        (s.service("checked")["healthy"] == true).then_some(())
    });
    let checks = |s: &Sentinel| {
        s.service("checked")["health"]["checks_total"]
            .as_u64()
            .unwrap()
    };
    let c0 = checks(&s);
    let before = context_switches(s.pid());
    std::thread::sleep(SECS(10)); // measure until the window ends (not a settling delay)
    let after = context_switches(s.pid());
    let c1 = checks(&s);
    let per_check = (after - before) as f64 / (c1 - c0).max(1) as f64;
    eprintln!(
        "health checks: {} in 10 s, {} context switches ({per_check:.1} per check)",
        c1 - c0,
        after - before
    );
    assert!(
        (9..=11).contains(&(c1 - c0)),
        "{} checks in 10 s at interval 1s",
        c1 - c0
    );
    assert!(
        per_check <= 2.0,
        "{per_check:.1} context switches per check"
    );
    drop(listener);
}

#[test]
fn a_silent_watchdog_and_a_start_timeout_restart_the_service() {
    let s = Sentinel::start(
        "watchdog",
        "",
        &format!(
            r#"
[services.pinger]
command = ["sh", "-c", "{ready}; {ping}; exec sleep 100000"]
ready = "notify"
watchdog = "700ms"
backoff = {{ initial = "0s" }}

[services.mute]
command = ["sleep", "100000"]
ready = "notify"
start_timeout = "500ms"
backoff = {{ initial = "0s" }}
"#,
            ready = notify("READY=1"),
            ping = notify("WATCHDOG=1"),
        ),
    );
    let p = wait_for("the watchdog restart", SECS(20), || {
        let v = s.service("pinger");
        (v["restarts"].as_u64().unwrap() >= 1).then_some(v)
    });
    assert!(
        s.stderr().contains("pinger: watchdog timeout"),
        "{p}\n{}",
        s.stderr()
    );
    let m = wait_for("the start timeout", SECS(20), || {
        let v = s.service("mute");
        (v["restarts"].as_u64().unwrap() >= 1).then_some(v)
    });
    assert!(
        s.stderr().contains("mute: not ready within"),
        "{m}\n{}",
        s.stderr()
    );
}

#[test]
fn shutdown_goes_in_reverse_dependency_order_and_is_bounded() {
    let dir = TempDir::new("revorder");
    let order = dir.path("order");
    let o = order.display();
    let mut s = Sentinel::start_with(
        TempDir::new("revorder-run"),
        dir.write(
            "s.toml",
            &format!(
                r#"
[supervisor]
socket = {sock:?}
shutdown_timeout = "3s"

[services.front]
command = ["sh", "-c", "trap 'echo front >> {o}; exit 0' TERM; while :; do sleep 0.05; done"]
depends_on = ["stubborn"]

[services.stubborn]
command = ["sh", "-c", "trap 'echo stubborn-ignores >> {o}' TERM; while :; do sleep 0.05; done"]
depends_on = ["base"]
stop_timeout = "30s"

[services.base]
command = ["sh", "-c", "trap 'echo base >> {o}; exit 0' TERM; while :; do sleep 0.05; done"]
"#,
                sock = dir.path("s.sock"),
            ),
        ),
        dir.path("s.sock"),
        &[],
    );
    for n in ["base", "stubborn", "front"] {
        s.wait_state(n, "running", SECS(10));
    }
    let t0 = Instant::now();
    s.ok(&["shutdown"]);
    assert_eq!(s.wait_exit(SECS(20)), Some(0));
    let took = t0.elapsed();
    // front first, then stubborn (ignores TERM), and base is reached by the
    // shutdown deadline (SIGKILL), not after stubborn's 30 s stop_timeout.
    assert!(
        read(&order).starts_with("front\nstubborn-ignores\n"),
        "{}",
        read(&order)
    );
    assert!(took < SECS(10), "shutdown took {took:?}");
}
