//! Hooks run for real through a [`Jobs`] table in a small loop.

use super::*;
use crate::jobs::tests::{argv, env, Rig};
use std::path::PathBuf;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn hook(events: &[HookEvent], services: &[&str], command: &[&str], timeout: Duration) -> Hook {
    Hook {
        events: events.to_vec(),
        services: services.iter().map(|s| s.to_string()).collect(),
        command: argv(command),
        timeout,
    }
}

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p =
            std::env::temp_dir().join(format!("sentinel-hooks-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut e = env();
        e.push(("DIR".into(), self.0.display().to_string()));
        e
    }

    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name)).unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Turn the loop, feeding finished jobs to the hooks, until no hook runs
/// or waits; the lines the hooks asked to log.
fn drive(rig: &mut Rig, hooks: &mut Hooks, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut logs = Vec::new();
    loop {
        for f in rig.jobs.take_finished() {
            logs.extend(hooks.on_finished(&f, Instant::now(), &mut rig.jobs, rig.poll.registry()));
        }
        if rig.jobs.running() == 0 && hooks.queued() == 0 {
            assert_eq!(hooks.running(), 0);
            return logs;
        }
        assert!(
            Instant::now() < deadline,
            "hooks still running after {limit:?}"
        );
        rig.turn();
    }
}

#[test]
fn event_lines_carry_the_fields_that_apply() {
    let exited = HookEventData::new(HookEvent::Exited, at(1_709_210_096_789))
        .service("web", Some("web@1"))
        .exit(HookExit::Code(1))
        .reason("exit 1");
    assert_eq!(
        String::from_utf8(exited.to_json_line()).unwrap(),
        "{\"event\":\"exited\",\"service\":\"web\",\"instance\":\"web@1\",\
         \"time\":\"2024-02-29T12:34:56.789Z\",\"unix_ms\":1709210096789,\
         \"exit_code\":1,\"signal\":null,\"reason\":\"exit 1\"}\n"
    );
    let killed = HookEventData::new(HookEvent::Exited, at(0))
        .service("db", Some("db"))
        .exit(HookExit::Signal(libc::SIGKILL));
    assert_eq!(
        String::from_utf8(killed.to_json_line()).unwrap(),
        "{\"event\":\"exited\",\"service\":\"db\",\"instance\":\"db\",\
         \"time\":\"1970-01-01T00:00:00.000Z\",\"unix_ms\":0,\
         \"exit_code\":null,\"signal\":\"SIGKILL\"}\n"
    );
    let scaled = HookEventData::new(HookEvent::Scaled, at(951_825_600_000))
        .service("web", None)
        .scaled(2, 3)
        .reason("cpu above 0.8 for 30s");
    assert_eq!(
        String::from_utf8(scaled.to_json_line()).unwrap(),
        "{\"event\":\"scaled\",\"service\":\"web\",\"time\":\"2000-02-29T12:00:00.000Z\",\
         \"unix_ms\":951825600000,\"reason\":\"cpu above 0.8 for 30s\",\"from\":2,\"to\":3}\n"
    );
    let reloaded = HookEventData::new(HookEvent::Reloaded, at(1));
    assert_eq!(
        String::from_utf8(reloaded.to_json_line()).unwrap(),
        "{\"event\":\"reloaded\",\"time\":\"1970-01-01T00:00:00.001Z\",\"unix_ms\":1}\n"
    );
}

#[test]
fn rfc3339_dates() {
    assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339_ms(86_399_999), "1970-01-01T23:59:59.999Z");
    assert_eq!(rfc3339_ms(951_868_800_000), "2000-03-01T00:00:00.000Z");
    assert_eq!(rfc3339_ms(1_704_067_199_000), "2023-12-31T23:59:59.000Z");
    assert_eq!(rfc3339_ms(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    assert_eq!(rfc3339_ms(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
}

#[test]
fn only_matching_hooks_run_and_get_the_event_on_stdin() {
    let dir = Dir::new("match");
    let save = |tag: &str| {
        format!("cat > \"$DIR/{tag}-$SENTINEL_EVENT-$SENTINEL_SERVICE-$SENTINEL_INSTANCE\"")
    };
    let hooks = vec![
        hook(
            &[HookEvent::Exited, HookEvent::Failed],
            &[],
            &["sh", "-c", &save("all")],
            LONG,
        ),
        hook(
            &[HookEvent::Ready],
            &[],
            &["sh", "-c", &save("ready")],
            LONG,
        ),
        hook(
            &[HookEvent::Exited],
            &["db"],
            &["sh", "-c", &save("db")],
            LONG,
        ),
        hook(
            &[HookEvent::Exited],
            &["db", "web"],
            &["sh", "-c", &save("web")],
            LONG,
        ),
        hook(
            &[HookEvent::Reloaded],
            &["web"],
            &["sh", "-c", &save("rl-web")],
            LONG,
        ),
        hook(
            &[HookEvent::Reloaded],
            &[],
            &["sh", "-c", "cat > \"$DIR/reloaded\""],
            LONG,
        ),
    ];
    let mut hooks = Hooks::new(hooks, dir.env());
    let mut rig = Rig::new();
    let ev = HookEventData::new(HookEvent::Exited, SystemTime::now())
        .service("web", Some("web@1"))
        .exit(HookExit::Code(2));
    let logs = hooks.fire(&ev, Instant::now(), &mut rig.jobs, rig.poll.registry());
    assert!(logs.is_empty(), "{logs:?}");
    assert_eq!(hooks.running(), 2);
    let reload = HookEventData::new(HookEvent::Reloaded, SystemTime::now());
    hooks.fire(&reload, Instant::now(), &mut rig.jobs, rig.poll.registry());
    let logs = drive(&mut rig, &mut hooks, LONG);
    assert!(logs.is_empty(), "{logs:?}");
    assert_eq!(
        dir.files(),
        ["all-exited-web-web@1", "reloaded", "web-exited-web-web@1"]
    );
    let line = dir.read("all-exited-web-web@1");
    assert_eq!(line.as_bytes(), &ev.to_json_line()[..]);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["event"], "exited");
    assert_eq!(v["instance"], "web@1");
    assert_eq!(v["exit_code"], 2);
    assert!(v["signal"].is_null());
    assert_eq!(
        hooks.counters(),
        HookCounters {
            runs: 3,
            failures: 0,
            dropped: 0
        }
    );
}

#[test]
fn each_failure_is_logged_once_with_command_and_reason_and_not_retried() {
    let dir = Dir::new("fail");
    let hooks = vec![
        hook(
            &[HookEvent::Failed],
            &[],
            &[
                "sh",
                "-c",
                "echo run >> \"$DIR/runs\"; echo 'webhook refused' >&2; exit 3",
            ],
            LONG,
        ),
        hook(
            &[HookEvent::Failed],
            &[],
            &["no-such-notifier", "--to", "ops team"],
            LONG,
        ),
        hook(
            &[HookEvent::Failed],
            &[],
            &["sleep", "30"],
            Duration::from_millis(200),
        ),
        hook(&[HookEvent::Failed], &[], &["true"], LONG),
    ];
    let mut hooks = Hooks::new(hooks, dir.env());
    let mut rig = Rig::new();
    let ev = HookEventData::new(HookEvent::Failed, SystemTime::now()).service("api", Some("api@0"));
    let mut logs = hooks.fire(&ev, Instant::now(), &mut rig.jobs, rig.poll.registry());
    logs.extend(drive(&mut rig, &mut hooks, LONG));
    logs.sort();
    assert_eq!(
        logs,
        [
            "hook `no-such-notifier --to \"ops team\"` on failed api@0 failed: execve(no-such-notifier): No such file or directory",
            "hook `sh -c \"echo run >> \\\"$DIR/runs\\\"; echo 'webhook refused' >&2; exit 3\"` on failed api@0 failed: exit 3: webhook refused",
            "hook `sleep 30` on failed api@0 failed: timed out after 200ms, killed",
        ]
    );
    assert_eq!(dir.read("runs"), "run\n");
    assert_eq!(
        hooks.counters(),
        HookCounters {
            runs: 4,
            failures: 3,
            dropped: 0
        }
    );
}

#[test]
fn runs_beyond_the_limit_queue_then_drop() {
    let dir = Dir::new("queue");
    // Each run notes its instance at once, then hangs until its timeout.
    let hooks = vec![hook(
        &[HookEvent::Started],
        &[],
        &[
            "sh",
            "-c",
            "echo $SENTINEL_INSTANCE >> \"$DIR/log\"; exec sleep 30",
        ],
        Duration::from_millis(300),
    )];
    let mut hooks = Hooks::with_limits(hooks, dir.env(), 2, 3);
    let mut rig = Rig::new();
    let mut logs = Vec::new();
    for i in 0..7 {
        let ev = HookEventData::new(HookEvent::Started, SystemTime::now())
            .service("w", Some(&format!("w@{i}")));
        logs.extend(hooks.fire(&ev, Instant::now(), &mut rig.jobs, rig.poll.registry()));
    }
    assert_eq!((hooks.running(), hooks.queued()), (2, 3));
    assert_eq!(rig.jobs.running(), 2);
    assert_eq!(hooks.counters().dropped, 2);
    // The overflow is logged once, not per dropped run.
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].contains("dropping hook runs"), "{logs:?}");
    let logs = drive(&mut rig, &mut hooks, LONG);
    assert_eq!(logs.len(), 5, "{logs:?}");
    assert!(logs.iter().all(|l| l.contains("timed out after 300ms")));
    let mut started: Vec<String> = dir.read("log").lines().map(str::to_string).collect();
    started.sort();
    assert_eq!(started, ["w@0", "w@1", "w@2", "w@3", "w@4"]);
    assert_eq!(
        hooks.counters(),
        HookCounters {
            runs: 5,
            failures: 5,
            dropped: 2
        }
    );
}

#[test]
fn finished_policy_jobs_are_not_the_hooks_business() {
    let mut hooks = Hooks::new(Vec::new(), env());
    let mut rig = Rig::new();
    rig.start(JobKind::Policy(0), &argv(&["false"]), b"", LONG)
        .unwrap();
    let done = rig.finish_all(LONG);
    let logs = hooks.on_finished(&done[0], Instant::now(), &mut rig.jobs, rig.poll.registry());
    assert!(logs.is_empty());
    assert_eq!(hooks.counters(), HookCounters::default());
    assert!(hooks.is_empty());
}

#[test]
fn new_hooks_after_a_reload_drop_the_queue_and_let_running_ones_finish() {
    let hooks = vec![hook(
        &[HookEvent::Ready],
        &[],
        &["sleep", "30"],
        Duration::from_millis(200),
    )];
    let mut hooks = Hooks::with_limits(hooks, env(), 1, 5);
    let mut rig = Rig::new();
    for i in 0..3 {
        let ev = HookEventData::new(HookEvent::Ready, SystemTime::now())
            .service("w", Some(&format!("w@{i}")));
        hooks.fire(&ev, Instant::now(), &mut rig.jobs, rig.poll.registry());
    }
    assert_eq!((hooks.running(), hooks.queued()), (1, 2));
    hooks.set_hooks(vec![hook(&[HookEvent::Exited], &[], &["true"], LONG)]);
    assert_eq!(hooks.queued(), 0);
    let logs = drive(&mut rig, &mut hooks, LONG);
    assert_eq!(
        logs,
        ["hook `sleep 30` on ready w@0 failed: timed out after 200ms, killed"]
    );
    assert_eq!(
        hooks.counters(),
        HookCounters {
            runs: 1,
            failures: 1,
            dropped: 2
        }
    );
}
