//! Issue 8 with real processes: instances and scaling, the shared listening
//! socket and rolling restarts, reload, the crash-loop limit, critical
//! services, watch mode, hooks, and no leftovers without cgroups.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn names(s: &Sentinel) -> Vec<String> {
    s.status()["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

/// Wait until a unit that may not exist yet is running.
fn wait_unit(s: &Sentinel, name: &str) -> serde_json::Value {
    wait_for(&format!("{name} to run"), SECS(10), || {
        s.status()["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name && v["state"] == "running")
            .cloned()
    })
}

/// A free TCP port on loopback (bound then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.0 GET; the body, or why it failed.
fn get(port: u16) -> Result<String, String> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Some(SECS(10))).unwrap();
    c.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut out = String::new();
    c.read_to_string(&mut out)
        .map_err(|e| format!("read: {e}"))?;
    if !out.starts_with("HTTP/1.0 200") {
        return Err(format!("bad answer: {out:?}"));
    }
    Ok(out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

#[test]
fn scale_up_and_down_by_command_with_instance_env() {
    let s = Sentinel::start(
        "scale",
        "",
        r#"
[services.web]
command = ["sh", "-c", "echo inst=$SENTINEL_INSTANCE of=$SENTINEL_INSTANCES port=$PORT svc=$SENTINEL_SERVICE; exec sleep 1000"]
instances = "1-4"
port_base = 18000
stop_timeout = "5s"
"#,
    );
    s.wait_state("web@0", "running", SECS(10));
    assert_eq!(names(&s), ["web@0"]);
    let out = s.ok(&["scale", "web", "3"]);
    assert!(out.contains("web: 1 -> 3 instances"), "{out}");
    let mut pids = Vec::new();
    for k in 0..3 {
        pids.push(pid_of(&s.wait_state(
            &format!("web@{k}"),
            "running",
            SECS(10),
        )));
    }
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 3, "three processes");
    let st = s.service("web@2");
    assert_eq!(st["service"], "web");
    assert_eq!(st["instance"], 2);
    assert_eq!(st["instances"], 3);
    assert_eq!(st["instance_range"], "1-4");
    let log = wait_for("web@2's first line", SECS(10), || {
        let l = s.ok(&["logs", "web@2"]);
        l.contains("inst=").then_some(l)
    });
    assert!(log.contains("inst=2 of=3 port=18002 svc=web"), "{log}");
    // `logs web`: every instance, each line named.
    let all = wait_for("every instance's line", SECS(10), || {
        let l = s.ok(&["logs", "web"]);
        (l.matches("inst=").count() == 3).then_some(l)
    });
    assert!(all.contains("web@1 | inst=1 of="), "{all}");
    let table = s.ok(&["status"]);
    assert!(table.contains("web (total)"), "{table}");
    assert!(table.contains("3/3 running"), "{table}");

    // Outside the range, or garbage: refused with a clear reason.
    let o = s.ctl(&["scale", "web", "9"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("outside its range 1-4"));
    let o = s.ctl(&["scale", "web", "many"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a count"));

    // Down to 1: the highest instances stop and vanish.
    let gone = [pid_of(&s.service("web@1")), pid_of(&s.service("web@2"))];
    s.ok(&["scale", "web", "1"]);
    wait_for("web@1 and web@2 to go", SECS(10), || {
        (names(&s) == ["web@0"]).then_some(())
    });
    for p in gone {
        wait_for("the old instance to be dead", SECS(5), || {
            (!alive(p)).then_some(())
        });
    }
    // A new range lets it grow past the old maximum.
    s.ok(&["scale", "web", "2-6"]);
    s.ok(&["scale", "web", "5"]);
    s.wait_state("web@4", "running", SECS(10));
    assert_eq!(s.service("web@4")["instance_range"], "2-6");
}

#[test]
fn rolling_restart_behind_one_port_loses_no_connection() {
    let port = free_port();
    let probe = probe();
    let s = Sentinel::start(
        "rolling",
        "",
        &format!(
            r#"
[services.web]
command = [{probe:?}, "--serve"]
instances = 4
listen = ["tcp:127.0.0.1:{port}"]
stop_timeout = "5s"
"#
        ),
    );
    let mut old = Vec::new();
    for k in 0..4 {
        old.push(pid_of(&s.wait_state(
            &format!("web@{k}"),
            "running",
            SECS(10),
        )));
    }
    let body = wait_for("the cluster to answer", SECS(10), || get(port).ok());
    assert!(body.starts_with("instance="), "{body}");

    // A client hammers the port from another thread during the rollout.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let client = std::thread::spawn(move || {
        let (mut ok, mut failed, mut served_by) =
            (0u32, Vec::new(), std::collections::BTreeSet::new());
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            match get(port) {
                Ok(b) => {
                    ok += 1;
                    served_by.insert(b.trim().to_string());
                }
                Err(e) => failed.push(e),
            }
        }
        (ok, failed, served_by)
    });
    let out = s.ok(&["restart", "web", "--rolling"]);
    assert!(out.contains("rolling restart"), "{out}");
    wait_for("every instance to be replaced", SECS(60), || {
        let all_new = (0..4).all(|k| {
            let st = s.service(&format!("web@{k}"));
            st["state"] == "running" && !old.contains(&pid_of(&st))
        });
        (all_new && s.stderr().contains("web: rolling restart done")).then_some(())
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed, served_by) = client.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} failed of {}: {:?}",
        failed.len(),
        ok + failed.len() as u32,
        &failed[..failed.len().min(5)]
    );
    assert!(ok >= 20, "only {ok} requests went through");
    // Old and new processes both answered: the socket outlived them.
    assert!(served_by.len() >= 5, "served by {served_by:?}");
}

#[test]
fn a_non_root_service_serves_a_privileged_port_through_listen() {
    // A free port below 1024, bound by sentinel (root) before the drop.
    let port = (900..1000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below 1024");
    let probe = probe();
    let s = Sentinel::start(
        "privport",
        "",
        &format!(
            r#"
[services.web]
command = [{probe:?}, "--serve"]
user = "nobody"
listen = ["http=tcp:127.0.0.1:{port}"]
"#
        ),
    );
    let pid = pid_of(&s.wait_state("web", "running", SECS(10)));
    let body = wait_for("an answer on the port", SECS(10), || get(port).ok());
    assert!(body.contains(&format!("pid={pid}")), "{body}");
    let status = read(std::path::Path::new(&format!("/proc/{pid}/status")));
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(uid.contains("65534"), "runs as nobody: {uid}");
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let env = String::from_utf8_lossy(&env);
    assert!(env.contains("LISTEN_FDNAMES=http"), "{env}");
    assert!(env.contains("LISTEN_FDS=1"), "{env}");
}

#[test]
fn reload_restarts_only_what_changed_and_keeps_a_broken_config_out() {
    let s = Sentinel::start(
        "reload",
        "",
        r#"
[services.a]
command = ["sleep", "1001"]
[services.b]
command = ["sleep", "1002"]
[services.c]
command = ["sleep", "1003"]
"#,
    );
    let pa = pid_of(&s.wait_state("a", "running", SECS(10)));
    let pb = pid_of(&s.wait_state("b", "running", SECS(10)));
    let pc = pid_of(&s.wait_state("c", "running", SECS(10)));
    let head = read(&s.config);
    let head = head.split("[services.a]").next().unwrap().to_string();
    std::fs::write(
        &s.config,
        format!(
            "{head}[services.a]\ncommand = [\"sleep\", \"1001\"]\n[services.b]\ncommand = [\"sleep\", \"2002\"]\n[services.d]\ncommand = [\"sleep\", \"1004\"]\n"
        ),
    )
    .unwrap();
    let out = s.ok(&["reload"]);
    assert!(out.contains("added d"), "{out}");
    assert!(out.contains("restarted b"), "{out}");
    assert!(out.contains("removed c"), "{out}");
    assert!(out.contains("1 unchanged"), "{out}");
    s.wait_state("d", "running", SECS(10));
    let b = wait_for("b to run its new command", SECS(10), || {
        let b = s.service("b");
        (b["state"] == "running" && pid_of(&b) != pb).then_some(b)
    });
    assert_eq!(pid_of(&s.service("a")), pa, "a is untouched");
    wait_for("c to be gone", SECS(10), || {
        (!names(&s).contains(&"c".to_string())).then_some(())
    });
    wait_for("c's process to end", SECS(5), || (!alive(pc)).then_some(()));
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid_of(&b))).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("2002"));

    // A broken file: every error reported, nothing changes.
    let good = read(&s.config);
    std::fs::write(
        &s.config,
        format!("{good}\n[services.e]\ncommand = []\nrestart = \"sometimes\"\n"),
    )
    .unwrap();
    let o = s.ctl(&["reload"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("the running config stays"), "{err}");
    assert!(err.contains("services.e.restart"), "{err}");
    assert!(err.contains("services.e.command"), "{err}");
    assert_eq!(names(&s), ["a", "b", "d"]);
    assert_eq!(pid_of(&s.service("a")), pa);

    // SIGHUP reloads too.
    std::fs::write(
        &s.config,
        format!("{good}\n[services.f]\ncommand = [\"sleep\", \"1005\"]\n"),
    )
    .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(s.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    s.wait_state("f", "running", SECS(10));
    assert_eq!(pid_of(&s.service("a")), pa);
}

#[test]
fn a_crash_loop_ends_failed_after_burst_until_started_again() {
    let s = Sentinel::start(
        "crashloop",
        "",
        r#"
[services.bad]
command = ["sh", "-c", "exit 1"]
backoff = { initial = "0s" }
start_limit = { burst = 3, interval = "30s" }
"#,
    );
    let st = s.wait_state("bad", "failed", SECS(10));
    assert_eq!(st["restarts"], 2, "{st}");
    assert!(
        st["last_error"]
            .as_str()
            .unwrap()
            .contains("start limit hit: 3 starts"),
        "{st}"
    );
    // It stays down.
    assert_eq!(s.service("bad")["state"], "failed");
    let out = s.ok(&["reset-failed", "bad"]);
    assert!(out.contains("reset"), "{out}");
    assert_eq!(s.service("bad")["state"], "stopped");
    s.ok(&["start", "bad"]);
    let st = s.wait_state("bad", "failed", SECS(10));
    assert!(st["restarts"].as_u64().unwrap() >= 4, "{st}");
}

#[test]
fn a_critical_service_that_fails_stops_everything_with_its_code() {
    let mut s = Sentinel::start(
        "critical",
        "",
        r#"
[services.db]
command = ["sleep", "1000"]
[services.job]
command = ["sh", "-c", "sleep 0.3; exit 7"]
restart = "never"
critical = true
"#,
    );
    let db = pid_of(&s.wait_state("db", "running", SECS(10)));
    assert_eq!(s.wait_exit(SECS(20)), Some(7));
    assert!(!alive(db), "db was stopped");
    assert!(
        s.stderr().contains("critical service is down for good"),
        "{}",
        s.stderr()
    );
}

#[test]
fn exit_with_makes_a_service_critical_from_the_command_line() {
    let dir = TempDir::new("exitwith");
    let socket = dir.path("s.sock");
    let config = dir.write(
        "sentinel.toml",
        &format!(
            "[supervisor]\nsocket = {socket:?}\n[services.main]\ncommand = [\"sh\", \"-c\", \"sleep 0.3; exit 3\"]\nrestart = \"on-failure\"\nbackoff = {{ initial = \"0s\" }}\nstart_limit = {{ burst = 2, interval = \"1m\" }}\n"
        ),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args(["run", "--exit-with", "main", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args(["run", "--exit-with", "nope", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--exit-with nope: no such service"));
}

/// Processes whose command line (NUL-separated) contains `marker`.
fn with_marker(marker: &str) -> Vec<i64> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i64>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn no_descendant_survives_a_stop_without_cgroups() {
    // Background jobs in their own process groups (set -m), and an orphan
    // that sentinel adopts: all keep the service's session.
    let s = Sentinel::start(
        "leftovers",
        "",
        r#"
[services.messy]
command = ["sh", "-c", "set -m; sleep 7771 & sleep 7772 & (sleep 7773 &); echo spawned; exec sleep 7774"]
stop_timeout = "5s"
"#,
    );
    s.wait_state("messy", "running", SECS(10));
    let before = wait_for("all four sleeps", SECS(10), || {
        let p: Vec<i64> = ["7771", "7772", "7773", "7774"]
            .iter()
            .flat_map(|m| with_marker(&format!("sleep\0{m}\0")))
            .collect();
        (p.len() == 4).then_some(p)
    });
    s.ok(&["stop", "messy"]);
    s.wait_state("messy", "stopped", SECS(10));
    wait_for("every descendant to be gone", SECS(10), || {
        before.iter().all(|&p| !alive(p)).then_some(())
    });
    assert!(s.stderr().contains("leftover process"), "{}", s.stderr());
}

#[test]
fn watch_restarts_once_per_debounce_window() {
    let src = TempDir::new("watched");
    let s = Sentinel::start(
        "watch",
        "",
        &format!(
            r#"
[services.dev]
command = ["sleep", "1000"]
watch = {{ paths = [{:?}], ignore = ["*.log"], debounce = "700ms" }}
"#,
            src.0
        ),
    );
    let pid = pid_of(&s.wait_state("dev", "running", SECS(10)));
    // An ignored file: nothing.
    std::fs::write(src.path("x.log"), "x").unwrap();
    // Five quick writes: one restart.
    for i in 0..5 {
        std::fs::write(src.path("main.c"), format!("v{i}")).unwrap();
    }
    let new = wait_for("a restart", SECS(10), || {
        let st = s.service("dev");
        (st["state"] == "running" && pid_of(&st) != pid).then_some(pid_of(&st))
    });
    assert_ne!(new, pid);
    let count = s.stderr().matches("dev: files changed; restarting").count();
    assert_eq!(count, 1, "{}", s.stderr());
}

#[test]
fn a_hook_receives_the_event_as_json() {
    let dir = TempDir::new("hooks-out");
    let events = dir.path("events.jsonl");
    let s = Sentinel::start(
        "hooks",
        "",
        &format!(
            r#"
[[hooks]]
events = ["exited", "failed"]
exec = ["sh", "-c", "cat >> {}"]

[services.once]
command = ["sh", "-c", "sleep 0.2; exit 3"]
restart = "never"
"#,
            events.display()
        ),
    );
    s.wait_state("once", "failed", SECS(10));
    let lines = wait_for("two hook lines", SECS(10), || {
        let t = std::fs::read_to_string(&events).unwrap_or_default();
        (t.lines().count() >= 2).then_some(t)
    });
    // The two hook runs go at once: either may write first.
    let exited: serde_json::Value = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["event"] == "exited")
        .unwrap_or_else(|| panic!("no exited event: {lines}"));
    assert_eq!(exited["service"], "once");
    assert_eq!(exited["exit_code"], 3);
    assert!(lines.contains("\"event\":\"failed\""), "{lines}");
}

#[test]
fn a_custom_policy_scales_to_what_it_prints_and_garbage_changes_nothing() {
    let dir = TempDir::new("policy-flag");
    let want = dir.write("want", "3\n");
    let input = dir.path("input.json");
    let events = dir.path("events.jsonl");
    let s = Sentinel::start(
        "policy",
        "",
        &format!(
            r#"
[[hooks]]
events = ["scaled"]
exec = ["sh", "-c", "cat >> {events}"]

[services.web]
command = ["sleep", "1000"]
instances = "1-4"
autoscale = {{ interval = "200ms", window = "1s", cooldown = "200ms", policy = {{ exec = ["sh", "-c", "cat > {input}; cat {want}"], timeout = "200ms" }} }}
"#,
            events = events.display(),
            input = input.display(),
            want = want.display(),
        ),
    );
    wait_unit(&s, "web@2");
    let doc: serde_json::Value = serde_json::from_str(&read(&input)).unwrap();
    assert_eq!(doc["service"], "web", "{doc}");
    // Above the maximum: clamped to 4.
    std::fs::write(&want, "9\n").unwrap();
    wait_unit(&s, "web@3");
    let st = s.service("web@0");
    assert_eq!(st["instances"], 4);
    assert!(
        st["last_scale"].as_str().unwrap().contains("autoscale"),
        "{st}"
    );
    // Garbage: logged, no change.
    std::fs::write(&want, "lots\n").unwrap();
    wait_for("the garbage to be reported", SECS(10), || {
        s.stderr().contains("autoscale policy").then_some(())
    });
    assert_eq!(s.service("web@0")["instances"], 4);
    let verdict = wait_for("the verdict in status", SECS(10), || {
        let v = s.service("web@0")["autoscale"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        v.contains("lots").then_some(v)
    });
    assert!(verdict.contains("no change"), "{verdict}");
    // Down to 1 on its word.
    std::fs::write(&want, "1\n").unwrap();
    wait_for("web to shrink to 1", SECS(10), || {
        (names(&s) == ["web@0"]).then_some(())
    });
    let ev = wait_for("scaled hook events", SECS(10), || {
        let t = std::fs::read_to_string(&events).unwrap_or_default();
        (t.lines().count() >= 3).then_some(t)
    });
    let first = ev
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["from"] == 1)
        .unwrap_or_else(|| panic!("no scale from 1: {ev}"));
    assert_eq!(first["event"], "scaled", "{ev}");
    assert_eq!(first["to"], 3);
}
