//! The HTTP endpoint through the real binary: metrics, API, control,
//! event streams, and robustness (bad, huge, slow, many and pipelined
//! requests) while sentinel keeps supervising.

mod common;
mod httpc;

use common::*;
use httpc::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const SECS: fn(u64) -> Duration = Duration::from_secs;
const TOKEN: &str = "test-token-0123456789";

fn kill(pid: i64) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

fn pid_of(s: &Sentinel, name: &str) -> i64 {
    s.wait_state(name, "running", SECS(10))["pid"]
        .as_i64()
        .unwrap()
}

/// Kill `name` and wait (a limit that proves the loop was not stuck) until
/// a new process runs.
fn killed_is_restarted(s: &Sentinel, name: &str, limit: Duration) {
    let pid = pid_of(s, name);
    let t0 = Instant::now();
    kill(pid);
    wait_for(&format!("{name} to be restarted"), limit, || {
        let st = s.service(name);
        (st["state"] == "running" && st["pid"].as_i64() != Some(pid)).then_some(())
    });
    eprintln!("{name} restarted {:?} after SIGKILL", t0.elapsed());
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_are_valid_prometheus_text_and_track_restarts() {
    let (s, addr) = start(
        "metrics",
        "",
        r#"
[services.web]
command = ["sleep", "1000"]
backoff = { initial = "0s" }
[services."we-ird"]
command = ["sh", "-c", "echo hello; exec sleep 1000"]
"#,
    );
    let pid = pid_of(&s, "web");
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(
        metric(&r.body, "sentinel_service_restarts_total{service=\"web\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&r.body, "sentinel_service_up{service=\"web\"}"),
        Some(1.0)
    );
    kill(pid);
    wait_for("restarts_total to count the crash", SECS(10), || {
        // The text is cached for a second; ask until it moves.
        let r = get(addr, "/metrics");
        (metric(&r.body, "sentinel_service_restarts_total{service=\"web\"}") == Some(1.0))
            .then_some(())
    });
    let text = wait_for("a log line counted", SECS(10), || {
        let t = get(addr, "/metrics").body;
        (metric(&t, "sentinel_log_bytes_written_total{service=\"we-ird\"}") == Some(6.0))
            .then_some(t)
    });
    assert_eq!(
        metric(&text, "sentinel_service_last_exit_code{service=\"web\"}"),
        Some(137.0)
    );
    assert!(text.contains("sentinel_service_state{service=\"web\",state=\"running\"} 1\n"));
    assert!(text.contains("sentinel_build_info{version=\""));
    assert!(metric(&text, "sentinel_http_requests_total{code=\"200\"}").unwrap() >= 2.0);
    assert!(metric(&text, "sentinel_service_memory_bytes{service=\"web\"}").unwrap() > 0.0);
    assert!(
        metric(
            &text,
            "sentinel_service_start_time_seconds{service=\"web\"}"
        )
        .unwrap()
            > 1.6e9
    );
    promtool_check(&text);
}

#[test]
fn api_reports_services_logs_and_readiness() {
    let (s, addr) = start(
        "api",
        "",
        r#"
[services.talker]
command = ["sh", "-c", "echo 'GET /a 200'; echo 'oops: disk full' >&2; echo 'GET /b 500'; exec sleep 1000"]
group = "front"
[services.crashy]
command = ["sh", "-c", "exit 3"]
backoff = { initial = "30s" }
"#,
    );
    s.wait_state("talker", "running", SECS(10));
    let all = get(addr, "/api/v1/services").json();
    assert_eq!(all["control"], false);
    let names: Vec<&str> = all["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["talker", "crashy"]);
    let one = get(addr, "/api/v1/services/talker").json();
    assert_eq!(one["state"], "running");
    assert_eq!(one["groups"][0], "front");
    assert_eq!(one["config"]["restart"], "always");
    assert_eq!(one["config"]["command"][0], "sh");
    assert!(one["pid"].as_i64().unwrap() > 1);
    assert!(one["stats"]["memory_bytes"].as_u64().unwrap() > 0);

    let lines = |q: &str| -> Vec<String> {
        let r = get(addr, &format!("/api/v1/services/talker/logs{q}"));
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        r.json()["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["text"].as_str().unwrap().to_string())
            .collect()
    };
    wait_for("talker's three lines", SECS(10), || {
        (lines("").len() == 3).then_some(())
    });
    assert_eq!(lines("?grep=GET%20%2F%5Cw%205%5Cd%5Cd"), ["GET /b 500"]);
    assert_eq!(lines("?stream=stderr"), ["oops: disk full"]);
    assert_eq!(lines("?lines=1&stream=stdout"), ["GET /b 500"]);
    assert_eq!(lines("?since=10m&grep=GET"), ["GET /a 200", "GET /b 500"]);
    let r = get(addr, "/api/v1/services/talker/logs?grep=(");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("invalid regular expression"), "{}", r.body);
    assert_eq!(
        get(addr, "/api/v1/services/talker/logs?since=soon").status,
        400
    );

    // crashy waits 30 s to restart: not ready.
    s.wait_state("crashy", "backoff", SECS(10));
    let r = get(addr, "/readyz");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["not_ready"][0]["service"], "crashy");
    s.ok(&["stop", "crashy"]);
    s.wait_state("crashy", "stopped", SECS(10));
    assert_eq!(get(addr, "/readyz").status, 200);
    assert_eq!(get(addr, "/healthz").body, "ok\n");

    let r = get(addr, "/api/v1/services/nope");
    assert_eq!(r.status, 404);
    assert!(r.body.contains("services: talker, crashy"), "{}", r.body);
    assert_eq!(get(addr, "/nope").status, 404);
    let r = request(addr, "DELETE", "/metrics", &[]);
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    let out = raw(
        addr,
        b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let head = String::from_utf8_lossy(&out);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Length: 3\r\n") && head.ends_with("\r\n\r\n"),
        "{head}"
    );

    let st = get(addr, "/api/v1/stats/talker?window=5m").json();
    assert_eq!(st["service"], "talker");
    assert_eq!(st["interval_ms"], 2000);
    let page = get(addr, "/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>sentinel"), "{}", page.body);
    assert!(page.header("content-security-policy").is_some());
}

#[test]
fn control_needs_the_opt_in_the_token_and_the_same_origin() {
    let svc = "[services.web]\ncommand = [\"sleep\", \"1000\"]\n";
    let (s, addr) = start("nocontrol", "", svc);
    s.wait_state("web", "running", SECS(10));
    let auth = format!("Bearer {TOKEN}");
    let r = request(
        addr,
        "POST",
        "/api/v1/services/web/stop",
        &[("Authorization", &auth)],
    );
    assert_eq!(r.status, 403);
    assert!(r.body.contains("control is disabled"), "{}", r.body);
    let r = post_json(
        addr,
        "/api/v1/services/web/scale",
        Some(TOKEN),
        r#"{"count": 2}"#,
    );
    assert_eq!(r.status, 403);
    assert!(r.body.contains("control is disabled"), "{}", r.body);
    drop(s);

    let (s, addr) = start(
        "control",
        &format!("control = true\ntoken = \"{TOKEN}\""),
        svc,
    );
    let pid = pid_of(&s, "web");
    let post = |path: &str, headers: &[(&str, &str)]| request(addr, "POST", path, headers);
    let r = post("/api/v1/services/web/restart", &[]);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("missing token"), "{}", r.body);
    let r = post(
        "/api/v1/services/web/restart",
        &[("Authorization", "Bearer test-token-0123456780")],
    );
    assert_eq!((r.status, r.body.contains("wrong token")), (403, true));
    let r = post(
        "/api/v1/services/web/restart",
        &[("Authorization", &auth), ("Origin", "http://evil.example")],
    );
    assert_eq!(r.status, 403);
    assert!(r.body.contains("cross-origin"), "{}", r.body);
    assert_eq!(
        s.service("web")["pid"].as_i64(),
        Some(pid),
        "nothing happened yet"
    );
    assert_eq!(get(addr, "/api/v1/services/web/restart").status, 405);

    let own = format!("http://{addr}");
    let r = post(
        "/api/v1/services/web/restart",
        &[("Authorization", &auth), ("Origin", &own)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["message"], "restarting: web");
    wait_for("web to run again", SECS(10), || {
        let st = s.service("web");
        (st["state"] == "running" && st["pid"].as_i64() != Some(pid)).then_some(())
    });
    let r = post("/api/v1/services/web/stop", &[("Authorization", &auth)]);
    assert_eq!(r.status, 200, "{}", r.body);
    s.wait_state("web", "stopped", SECS(10));
    let r = post("/api/v1/services/nope/start", &[("Authorization", &auth)]);
    assert_eq!(r.status, 404);
}

#[test]
fn bad_huge_and_pipelined_requests_get_the_right_answer() {
    let (s, addr) = start(
        "robust",
        "",
        "[services.web]\ncommand = [\"sleep\", \"1000\"]\nbackoff = { initial = \"0s\" }\n",
    );
    s.wait_state("web", "running", SECS(10));
    let status_of = |bytes: &[u8]| -> u16 {
        let out = raw(addr, bytes);
        parse_one(&out)
            .unwrap_or_else(|| panic!("no response: {:?}", String::from_utf8_lossy(&out)))
            .0
            .status
    };
    assert_eq!(status_of(b"\x16\x03\x01\x02\x00garbage\r\n\r\n"), 400);
    assert_eq!(status_of(b"GET / HTTP/1.1\r\n\r\n"), 400, "no Host");
    assert_eq!(status_of(b"GET / HTTP/3.0\r\nHost: x\r\n\r\n"), 505);
    let mut many = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..100 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(status_of(&many), 431);
    let mut big = b"GET / HTTP/1.1\r\nHost: x\r\nCookie: ".to_vec();
    big.extend(std::iter::repeat(b'a').take(64 * 1024));
    assert_eq!(status_of(&big), 431, "head never ends: refused at 8 KiB");
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(status_of(&big), 431);
    assert_eq!(
        status_of(
            b"POST /api/v1/services/web/stop HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
        ),
        413
    );
    assert_eq!(
        status_of(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        501
    );

    // Three pipelined requests in one write: three answers, in order; the
    // last asks to close.
    let out = raw(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let mut rest = &out[..];
    let mut statuses = Vec::new();
    while let Some((r, n)) = parse_one(rest) {
        statuses.push(r.status);
        rest = &rest[n..];
    }
    assert_eq!(
        statuses,
        [200, 404, 200],
        "{:?}",
        String::from_utf8_lossy(&out)
    );

    // 500 pipelined requests, written before reading any answer.
    let mut c = connect(addr);
    let one = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut all = one.repeat(499);
    all.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let writer = {
        let mut w = c.try_clone().unwrap();
        std::thread::spawn(move || w.write_all(&all))
    };
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    writer.join().unwrap().unwrap();
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 500);

    // HTTP/1.0 without keep-alive is closed after its answer.
    let out = raw(addr, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert!(String::from_utf8_lossy(&out).contains("Connection: close"));

    killed_is_restarted(&s, "web", SECS(10));
}

#[test]
fn slow_and_idle_connections_are_closed_on_their_deadlines() {
    let (s, addr) = start(
        "slow",
        "request_timeout = \"1s\"\nidle_timeout = \"2s\"",
        "[services.web]\ncommand = [\"sleep\", \"1000\"]\nbackoff = { initial = \"0s\" }\n",
    );
    s.wait_state("web", "running", SECS(10));
    // Slowloris: a header line every 300 ms, never the end of the head.
    let mut slow = connect(addr);
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let t0 = Instant::now();
    let mut closed_after = None;
    for i in 0..40 {
        if slow.write_all(format!("X-{i}: y\r\n").as_bytes()).is_err() {
            closed_after = Some(t0.elapsed());
            break;
        }
        // Pace the drip; the kernel tells us when sentinel has closed it.
        let mut buf = [0u8; 512];
        slow.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        match slow.read(&mut buf) {
            Ok(0) => {
                closed_after = Some(t0.elapsed());
                break;
            }
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                assert!(text.starts_with("HTTP/1.1 408"), "{text}");
            }
            Err(_) => {}
        }
    }
    let took = closed_after.expect("a slowloris connection was never closed");
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    assert!(took < SECS(8), "closed only after {took:?}");

    // An idle keep-alive connection is closed after idle_timeout.
    let mut idle = connect(addr);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let t0 = Instant::now();
    let mut out = Vec::new();
    idle.read_to_end(&mut out).unwrap();
    let took = t0.elapsed();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
    assert!(took >= Duration::from_millis(1900), "closed after {took:?}");
    assert!(took < SECS(10), "closed only after {took:?}");

    killed_is_restarted(&s, "web", SECS(10));
}

/// Open `n` connections that send nothing.
fn open_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect()
}

#[test]
fn a_thousand_idle_connections_do_not_stop_supervision_or_service() {
    raise_nofile();
    let (s, addr) = start(
        "thousand",
        "max_connections = 1100",
        "[services.web]\ncommand = [\"sleep\", \"1000\"]\nbackoff = { initial = \"0s\" }\n",
    );
    s.wait_state("web", "running", SECS(10));
    let conns = open_idle(addr, 1000);
    // All held: sentinel has an fd for each.
    wait_for("sentinel to hold 1000 connections", SECS(20), || {
        let n = std::fs::read_dir(format!("/proc/{}/fd", s.pid()))
            .ok()?
            .count();
        (n >= 1000).then_some(())
    });
    killed_is_restarted(&s, "web", SECS(10));
    assert_eq!(get(addr, "/healthz").status, 200);
    assert!(s.stderr().contains("sentinel: http:"), "{}", s.stderr());
    drop(conns);

    // With the default limit (256) the longest-idle connections make room,
    // and a new client is still answered.
    drop(s);
    let (s, addr) = start(
        "thousand-default",
        "",
        "[services.web]\ncommand = [\"sleep\", \"1000\"]\nbackoff = { initial = \"0s\" }\n",
    );
    s.wait_state("web", "running", SECS(10));
    let mut conns = open_idle(addr, 1000);
    assert_eq!(get(addr, "/healthz").status, 200);
    let fds = std::fs::read_dir(format!("/proc/{}/fd", s.pid()))
        .unwrap()
        .count();
    assert!(fds < 256 + 64, "sentinel holds {fds} fds");
    // The evicted ones were closed: the oldest reads EOF.
    conns[0].set_read_timeout(Some(SECS(10))).unwrap();
    assert_eq!(conns[0].read(&mut [0u8; 16]).unwrap(), 0);
    killed_is_restarted(&s, "web", SECS(10));
}

#[test]
fn event_stream_carries_state_changes_and_log_lines() {
    let (s, addr) = start(
        "events",
        "",
        r#"
[services.web]
command = ["sh", "-c", "echo started $$; exec sleep 1000"]
backoff = { initial = "1s" }
[services.other]
command = ["sh", "-c", "echo other-line; exec sleep 1000"]
"#,
    );
    let pid = pid_of(&s, "web");
    let mut c = connect(addr);
    c.write_all(b"GET /api/v1/events?logs=web HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = String::new();
    let mut read_until = |what: &str, got: &mut String| {
        let deadline = Instant::now() + SECS(15);
        let mut buf = [0u8; 4096];
        while !got.contains(what) {
            assert!(Instant::now() < deadline, "no {what:?} in {got}");
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "stream closed: {got}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    read_until("event: snapshot", &mut got);
    assert!(got.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream"));
    kill(pid);
    read_until("\"state\":\"backoff\"", &mut got);
    read_until("\"text\":\"started ", &mut got);
    assert!(
        !got.contains("\"text\":\"other-line"),
        "only web's logs were asked for"
    );
    read_until("event: stats", &mut got);
    s.wait_state("web", "running", SECS(10));
}

#[test]
fn a_slow_event_client_is_dropped_and_supervision_goes_on() {
    let (s, addr) = start(
        "slowsse",
        "",
        r#"
[services.chatty]
command = ["sh", "-c", "while :; do head -c 3000000 /dev/zero | tr '\\0' x | fold -w 150; sleep 0.1; done"]
[services.web]
command = ["sleep", "1000"]
backoff = { initial = "0s" }
"#,
    );
    s.wait_state("web", "running", SECS(10));
    let mut c = connect(addr);
    c.write_all(b"GET /api/v1/events?logs=* HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Never read: sentinel must drop this client, not buffer without bound.
    wait_for("the slow client to be dropped", SECS(60), || {
        s.stderr().contains("fell too far behind").then_some(())
    });
    killed_is_restarted(&s, "web", SECS(10));
    let rss = common::read(std::path::Path::new(&format!("/proc/{}/status", s.pid())))
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap();
    assert!(rss < 64 * 1024, "sentinel's RSS is {rss} kB");
    assert_eq!(get(addr, "/healthz").status, 200);
}

#[test]
fn metrics_file_is_written_atomically_on_its_interval() {
    let (s, _addr) = start(
        "mfile",
        "metrics_file = \"metrics.prom\"\nmetrics_interval = \"1s\"",
        "[services.web]\ncommand = [\"sleep\", \"1000\"]\n",
    );
    let file = s.dir.path("metrics.prom");
    let first = wait_for("the metrics file", SECS(10), || {
        let t = read(&file);
        t.contains("sentinel_service_up{service=\"web\"} 1")
            .then_some(t)
    });
    assert!(first.ends_with('\n'));
    let up = |t: &str| metric(t, "sentinel_uptime_seconds").unwrap();
    wait_for("the metrics file to be rewritten", SECS(10), || {
        let t = read(&file);
        (t.contains("sentinel_build_info") && up(&t) > up(&first)).then_some(())
    });
    let names: Vec<String> = std::fs::read_dir(&s.dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn cli_logs_filters_stats_and_top() {
    let (s, _addr) = start(
        "cli",
        "",
        r#"
[services.talker]
command = ["sh", "-c", "echo 'GET /a 200'; echo 'boom' >&2; echo 'GET /b 503'; exec sleep 1000"]
"#,
    );
    s.wait_state("talker", "running", SECS(10));
    wait_for("the lines", SECS(10), || {
        (s.ok(&["logs", "talker"]).lines().count() == 3).then_some(())
    });
    assert_eq!(
        s.ok(&["logs", "talker", "--grep", r"\s5\d\d$", "--since", "10m"]),
        "GET /b 503\n"
    );
    assert_eq!(s.ok(&["logs", "talker", "--stream", "stderr"]), "boom\n");
    let o = s.ctl(&["logs", "talker", "--grep", "("]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid regular expression"));

    let stats = s.ok(&["stats", "talker"]);
    assert!(
        stats.starts_with("talker: running, 0 restarts\n"),
        "{stats}"
    );
    assert!(stats.contains("memory"), "{stats}");
    let json: serde_json::Value =
        serde_json::from_str(&s.ok(&["stats", "talker", "--json"])).unwrap();
    assert!(json["current"]["memory_bytes"].as_u64().unwrap() > 0);
    let top = s.ok(&["top", "-n", "2", "--interval", "100ms"]);
    assert!(
        top.contains("NAME") && top.contains("CPU%") && top.contains("talker"),
        "{top}"
    );
}

/// A POST with a JSON body, and the token if given.
fn post_json(addr: SocketAddr, path: &str, token: Option<&str>, body: &str) -> Reply {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let out = raw(addr, req.as_bytes());
    parse_one(&out)
        .unwrap_or_else(|| {
            panic!(
                "no response to POST {path}: {:?}",
                String::from_utf8_lossy(&out)
            )
        })
        .0
}

/// The names `/api/v1/services` lists, in its order.
fn listed(addr: SocketAddr) -> Vec<String> {
    get(addr, "/api/v1/services").json()["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn scale_over_http_with_the_token_and_instances_in_api_metrics_and_events() {
    let (s, addr) = start(
        "scale",
        &format!("control = true\ntoken = \"{TOKEN}\""),
        r#"
[services.web]
command = ["sleep", "1000"]
instances = "1-3"
stop_timeout = "5s"
[services.db]
command = ["sleep", "1000"]
"#,
    );
    s.wait_state("web@0", "running", SECS(10));
    s.wait_state("db", "running", SECS(10));
    let all = get(addr, "/api/v1/services").json();
    assert_eq!(listed(addr), ["web@0", "db"]);
    let t = &all["totals"][0];
    assert_eq!(
        (
            &t["service"],
            &t["instances"],
            &t["running"],
            &t["instance_range"]
        ),
        (&"web".into(), &1.into(), &1.into(), &"1-3".into()),
        "{all}"
    );
    assert_eq!(
        all["totals"].as_array().unwrap().len(),
        1,
        "db has no instances"
    );
    assert_eq!(all["services"][0]["service"], "web");
    assert_eq!(all["services"][0]["instance"], 0);
    assert!(all["services"][1].get("instance").is_none(), "{all}");

    // An event stream open before the scaling sees it.
    let mut events = connect(addr);
    events
        .write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = String::new();
    let mut read_until = |what: &str, got: &mut String| {
        let deadline = Instant::now() + SECS(15);
        let mut buf = [0u8; 4096];
        while !got.contains(what) {
            assert!(Instant::now() < deadline, "no {what:?} in {got}");
            let n = events.read(&mut buf).unwrap();
            assert!(n > 0, "stream closed: {got}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    read_until("event: snapshot", &mut got);
    assert!(got.contains("\"totals\":[{"), "{got}");

    // Refused without the token, or with a bad body; nothing changes.
    let scale = "/api/v1/services/web/scale";
    let r = post_json(addr, scale, None, r#"{"count": 3}"#);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("missing token"), "{}", r.body);
    let r = post_json(
        addr,
        scale,
        Some("not-the-token-0123456789"),
        r#"{"count": 3}"#,
    );
    assert_eq!((r.status, r.body.contains("wrong token")), (403, true));
    for (body, says) in [
        ("", "empty body"),
        ("count=3", "send a JSON body"),
        (
            r#"{"count": "three"}"#,
            "count: \\\"three\\\" is not a number",
        ),
        (r#"{"count": -1}"#, "count: -1"),
        (r#"{"cnt": 3}"#, "unknown field \\\"cnt\\\""),
        (r#"{"range": ["1", "4"]}"#, "range:"),
        (r#"{"range": "5-2"}"#, "above the maximum"),
        (r#"{"range": "lots"}"#, "is not an instance count"),
        ("{}", "nothing to do"),
    ] {
        let r = post_json(addr, scale, Some(TOKEN), body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains(says), "{body}: {}", r.body);
    }
    let r = post_json(addr, scale, Some(TOKEN), r#"{"count": 9}"#);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("outside its range 1-3"), "{}", r.body);
    let r = post_json(
        addr,
        "/api/v1/services/db/scale",
        Some(TOKEN),
        r#"{"count": 2}"#,
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("db has no instances"), "{}", r.body);
    let r = post_json(
        addr,
        "/api/v1/services/nope/scale",
        Some(TOKEN),
        r#"{"count": 2}"#,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let r = post_json(
        addr,
        "/api/v1/services/web@0/scale",
        Some(TOKEN),
        r#"{"count": 2}"#,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("instance of web"), "{}", r.body);
    let r = get(addr, scale);
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    assert_eq!(listed(addr), ["web@0", "db"], "nothing happened yet");

    // Up to 3: the new instances are listed with web@0, before db.
    let r = post_json(addr, scale, Some(TOKEN), r#"{"count": 3}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["ok"], true);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("web: 1 -> 3 instances"),
        "{}",
        r.body
    );
    for k in 0..3 {
        s.wait_state(&format!("web@{k}"), "running", SECS(10));
    }
    assert_eq!(listed(addr), ["web@0", "web@1", "web@2", "db"]);
    let web = wait_for("web to count 3 running", SECS(10), || {
        let w = get(addr, "/api/v1/services/web");
        assert_eq!(w.status, 200, "{}", w.body);
        let w = w.json();
        (w["running"] == 3).then_some(w)
    });
    assert_eq!(web["name"], "web");
    assert_eq!(web["instances"], 3);
    assert_eq!(web["instance_range"], "1-3");
    let units: Vec<&str> = web["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(units, ["web@0", "web@1", "web@2"]);
    assert!(web["units"][2]["pid"].as_i64().unwrap() > 1);
    assert_eq!(web["config"]["command"][0], "sleep");
    assert!(
        web["last_scale"].as_str().unwrap().contains("1 -> 3"),
        "{web}"
    );
    assert_eq!(get(addr, "/api/v1/services/web@1").json()["instance"], 1);
    read_until("event: scale", &mut got);
    assert!(got.contains("\"text\":\"web: 1 -> 3 instances"), "{got}");

    let text = wait_for("the metrics to count 3 running", SECS(10), || {
        let t = get(addr, "/metrics").body;
        (metric(&t, "sentinel_service_instances_running{service=\"web\"}") == Some(3.0))
            .then_some(t)
    });
    assert_eq!(
        metric(&text, "sentinel_service_instances{service=\"web\"}"),
        Some(3.0)
    );
    assert_eq!(
        metric(
            &text,
            "sentinel_scale_events_total{service=\"web\",direction=\"up\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            "sentinel_scale_events_total{service=\"web\",direction=\"down\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        metric(&text, "sentinel_service_up{service=\"web@2\"}"),
        Some(1.0)
    );
    assert_eq!(metric(&text, "sentinel_hook_runs_total"), Some(0.0));
    assert!(!text.contains("sentinel_service_instances{service=\"db\"}"));
    promtool_check(&text);

    // Down to 1 with a new range: web@1 and web@2 go from everything.
    let r = post_json(addr, scale, Some(TOKEN), r#"{"count": 1, "range": "1-4"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    wait_for("web@1 and web@2 to leave the list", SECS(15), || {
        (listed(addr) == ["web@0", "db"]).then_some(())
    });
    read_until("event: removed\ndata: {\"service\":\"web@2\"}", &mut got);
    read_until("event: removed\ndata: {\"service\":\"web@1\"}", &mut got);
    read_until("\"text\":\"web: 3 -> 1 instances", &mut got);
    assert_eq!(get(addr, "/api/v1/services/web@2").status, 404);
    let web = get(addr, "/api/v1/services/web").json();
    assert_eq!(
        (&web["instances"], &web["instance_range"]),
        (&1.into(), &"1-4".into())
    );
    let text = wait_for("the metrics to drop web@2", SECS(10), || {
        let t = get(addr, "/metrics").body;
        (!t.contains("web@2")).then_some(t)
    });
    assert_eq!(
        metric(
            &text,
            "sentinel_scale_events_total{service=\"web\",direction=\"down\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "sentinel_service_instances{service=\"web\"}"),
        Some(1.0)
    );
    promtool_check(&text);
}

fn promtool_check(text: &str) {
    if !have_tool("promtool") {
        return;
    }
    let dir = TempDir::new("promtool");
    let file = dir.write("metrics.prom", text);
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
