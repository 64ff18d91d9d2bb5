use super::systemd::test_word as word;
use super::*;
use std::time::Duration;

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!(
            "sentinel-generate-unit-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn setup(dir: &Dir, toml: &str, user: bool) -> Setup {
    let path = dir.0.join("sentinel.toml");
    std::fs::write(&path, toml).unwrap();
    let config = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    Setup {
        bin: PathBuf::from("/usr/local/bin/sentinel"),
        config_path: path,
        config,
        user,
        pidfile: PathBuf::from(DEFAULT_PIDFILE),
        log_file: PathBuf::from(DEFAULT_LOG_FILE),
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn unit_words_are_quoted_and_escaped_for_systemd() {
    assert_eq!(word("/bin/sleep", true), "/bin/sleep");
    assert_eq!(word("a b", true), "\"a b\"");
    assert_eq!(word("", true), "\"\"");
    assert_eq!(word(";", true), "\";\"");
    assert_eq!(word("say \"hi\"", true), r#""say \"hi\"""#);
    assert_eq!(word(r"C:\x", false), r#""C:\\x""#);
    assert_eq!(word("it's", false), "\"it's\"");
    assert_eq!(word("a\nb\tc", false), r#""a\nb\tc""#);
    assert_eq!(word("\u{1}", false), r#""\u0001""#);
    // Specifiers everywhere; variables only in command lines.
    assert_eq!(word("100%", false), "100%%");
    assert_eq!(word("$HOME", true), "$$HOME");
    assert_eq!(word("$HOME", false), "$HOME");
}

#[test]
fn durations_use_their_largest_exact_unit() {
    assert_eq!(duration(Duration::ZERO), "0");
    assert_eq!(duration(Duration::from_secs(45)), "45s");
    assert_eq!(duration(Duration::from_secs(90)), "90s");
    assert_eq!(duration(Duration::from_secs(300)), "5min");
    assert_eq!(duration(Duration::from_secs(7200)), "2h");
    assert_eq!(duration(Duration::from_millis(1500)), "1500ms");
    assert_eq!(duration(Duration::from_micros(2500)), "2500us");
}

#[test]
fn shell_words_are_quoted_only_when_needed() {
    assert_eq!(shell_word("/usr/bin/sentinel"), "/usr/bin/sentinel");
    assert_eq!(shell_word("/srv/my app/x"), "'/srv/my app/x'");
    assert_eq!(shell_word("it's"), r"'it'\''s'");
    assert_eq!(shell_word("$HOME"), "'$HOME'");
    assert_eq!(shell_word(""), "''");
}

#[test]
fn kinds_have_clear_errors() {
    assert_eq!(kind_arg("systemd"), Ok(Kind::Systemd));
    assert_eq!(kind_arg("sysv"), Ok(Kind::Sysvinit));
    let e = kind_arg("upstart").unwrap_err();
    assert!(e.contains("systemd, openrc or sysvinit"), "{e}");
}

#[test]
fn the_main_unit_is_notify_with_a_stop_timeout_past_shutdown_timeout() {
    let d = Dir::new("main");
    let s = setup(
        &d,
        "[supervisor]\nshutdown_timeout = \"1m\"\n[services.a]\ncommand = [\"sleep\", \"1\"]\n",
        false,
    );
    let u = systemd::main_unit(&s);
    let l = lines(&u);
    let cfg = s.config_path.display().to_string();
    for want in [
        "Type=notify",
        "NotifyAccess=main",
        &format!("ExecStart=/usr/local/bin/sentinel run -c {cfg}"),
        &format!("ExecStartPre=/usr/local/bin/sentinel check -c {cfg}"),
        &format!("ExecReload=/usr/local/bin/sentinel check -c {cfg}"),
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=30s",
        "KillMode=mixed",
        "TimeoutStopSec=75s",
        "Delegate=yes",
        "Restart=on-failure",
        "After=network.target",
        "WantedBy=multi-user.target",
    ] {
        assert!(l.contains(&want), "no {want:?} in:\n{u}");
    }
    let user = systemd::main_unit(&setup(
        &d,
        "[services.a]\ncommand = [\"sleep\", \"1\"]\n",
        true,
    ));
    assert!(user.contains("WantedBy=default.target\n"), "{user}");
    assert!(!user.contains("network.target"), "{user}");
}

const ISOLATED: &str = r#"
[supervisor]
log_dir = "logs"

[slices.batch]
memory_max = "1G"

[services.db]
command = ["sleep", "1000"]
ready = "notify"
propagate = true
health = { tcp = "127.0.0.1:5432" }

[services.web]
command = ["/srv/my app/web", "--greeting", "it's 100% \"fine\"", "$HOME"]
workdir = "/srv"
env = { GREETING = "hello world", RATIO = "50%" }
user = "www-data:adm"
supplementary_groups = ["adm"]
restart = "on-failure"
backoff = { initial = "2s" }
stop_signal = "SIGINT"
stop_timeout = "20s"
start_timeout = "1m"
watchdog = "10s"
slice = "batch"
limits = { memory_max = "512M", cpu_max = "0.125", pids_max = 64, io_weight = 200, io_max = [{ device = "8:0", rbps = "1M" }] }
nice = 5
ionice = "realtime:2"
oom_score_adjust = -100
rlimits = { nofile = "1024:4096", core = "unlimited" }
depends_on = { db = "healthy" }
group = "front"
autostart = false

[services.web.health]
tcp = "127.0.0.1:80"

[services.web.isolation]
namespaces = ["net", "ipc", "uts", "mount", "user", "pid"]
hostname = "web"
read_only_paths = ["/usr", "/boot", "/etc", "/opt/data dir"]
inaccessible_paths = ["/root"]
tmpfs = ["/tmp"]
capabilities = ["net_bind_service"]
seccomp = { profile = "default", allow = ["ptrace"], deny = ["mount", { syscall = "socket", args = [{ index = 0, op = "eq", value = 10 }] }] }
"#;

#[test]
fn a_service_becomes_a_unit_with_equivalents_and_comments() {
    let d = Dir::new("service");
    let s = setup(&d, ISOLATED, false);
    let u = systemd::service_unit(&s, "web").unwrap();
    let l = lines(&u);
    for want in [
        "Requires=db.service",
        "After=db.service",
        "Type=exec",
        "NotifyAccess=all",
        r#"ExecStart="/srv/my app/web" --greeting "it's 100%% \"fine\"" $$HOME"#,
        "WorkingDirectory=/srv",
        "User=www-data",
        "Group=adm",
        "SupplementaryGroups=adm",
        r#"Environment="GREETING=hello world""#,
        "Environment=RATIO=50%%",
        "Restart=on-failure",
        "RestartSec=2s",
        "TimeoutStartSec=1min",
        "KillSignal=SIGINT",
        "TimeoutStopSec=20s",
        "WatchdogSec=10s",
        "MemoryMax=536870912",
        "CPUQuota=12.5%",
        "TasksMax=64",
        "IOWeight=200",
        "IOReadBandwidthMax=/dev/block/8:0 1048576",
        "Slice=batch.slice",
        "Nice=5",
        "IOSchedulingClass=realtime",
        "IOSchedulingPriority=2",
        "OOMScoreAdjust=-100",
        "LimitNOFILE=1024:4096",
        "LimitCORE=infinity",
        "PrivateNetwork=yes",
        "PrivateIPC=yes",
        "ProtectHostname=yes",
        "PrivateUsers=yes",
        "ProtectSystem=full",
        r#"ReadOnlyPaths="/opt/data dir""#,
        "InaccessiblePaths=/root",
        "TemporaryFileSystem=/tmp",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=ptrace",
        "SystemCallErrorNumber=EPERM",
        "SystemCallFilter=~mount:EPERM",
        "WantedBy=multi-user.target",
    ] {
        assert!(l.contains(&want), "no {want:?} in:\n{u}");
    }
    // Every setting without an equivalent is named.
    for key in [
        "depends_on.db = \"healthy\" has no systemd equivalent",
        "health has no systemd equivalent",
        "namespaces = [\"pid\"] has no systemd equivalent",
        "hostname = \"web\" has no systemd equivalent",
        "seccomp deny \"socket\" has no systemd equivalent",
        "group = [\"front\"] has no systemd equivalent",
        "backoff:",
        "clear_env = false:",
        "slices.batch: its limits go in batch.slice: [Slice] MemoryMax=1073741824",
        "autostart = false:",
        "log: the output goes to the journal (journalctl -u web)",
    ] {
        assert!(
            l.iter()
                .any(|x| x.starts_with("# sentinel: ") && x.contains(key)),
            "no comment with {key:?} in:\n{u}"
        );
    }
    // db restarts propagate, so there is no note about it.
    assert!(!u.contains("propagate = true on db"), "{u}");
    let db = systemd::service_unit(&s, "db").unwrap();
    assert!(db.contains("\nType=notify\nNotifyAccess=all\n"), "{db}");
    assert!(
        db.contains("# sentinel: propagate = true: units with Requires=db.service restart with it"),
        "{db}"
    );
}

#[test]
fn oneshots_and_dependency_notes() {
    let d = Dir::new("oneshot");
    let s = setup(
        &d,
        r#"
[services.db]
command = ["sleep", "1000"]
[services.migrate]
command = ["true"]
type = "oneshot"
depends_on = { db = "started" }
[services.tick]
command = ["true"]
type = "oneshot"
every = "5m"
"#,
        false,
    );
    let u = systemd::service_unit(&s, "migrate").unwrap();
    let l = lines(&u);
    for want in [
        "Type=oneshot",
        "RemainAfterExit=yes",
        "Restart=on-failure",
        "TimeoutStartSec=infinity",
    ] {
        assert!(l.contains(&want), "no {want:?} in:\n{u}");
    }
    assert!(
        u.contains("# sentinel: depends_on.db: Requires= also restarts this unit when db restarts"),
        "{u}"
    );
    let t = systemd::service_unit(&s, "tick").unwrap();
    assert!(!t.contains("RemainAfterExit"), "{t}");
    assert!(t.contains("[Timer] OnUnitInactiveSec=5min"), "{t}");
    // A bare command is found in PATH, as sentinel finds it.
    assert!(
        lines(&t)
            .iter()
            .any(|x| x.starts_with("ExecStart=/") && x.ends_with("/true")),
        "{t}"
    );
}

#[test]
fn an_unknown_service_lists_the_known_ones() {
    let d = Dir::new("unknown");
    let s = setup(
        &d,
        "[services.a]\ncommand = [\"true\"]\n[services.b]\ncommand = [\"true\"]\n",
        false,
    );
    let e = systemd::service_unit(&s, "c").unwrap_err();
    assert!(
        e.contains("no service \"c\"") && e.ends_with("it has: a, b"),
        "{e}"
    );
}

#[test]
fn user_units_say_that_user_cannot_be_switched() {
    let d = Dir::new("user");
    let s = setup(
        &d,
        "[services.a]\ncommand = [\"true\"]\nuser = \"www-data\"\n",
        true,
    );
    let u = systemd::service_unit(&s, "a").unwrap();
    assert!(!u.contains("User="), "{u}");
    assert!(
        u.contains("# sentinel: user = \"www-data\" has no systemd equivalent"),
        "{u}"
    );
    assert!(u.contains("WantedBy=default.target"), "{u}");
}

#[test]
fn scripts_carry_the_paths_and_the_stop_timeout() {
    let d = Dir::new("scripts");
    let mut s = setup(
        &d,
        "[supervisor]\nshutdown_timeout = \"20s\"\n[services.a]\ncommand = [\"true\"]\n",
        false,
    );
    s.pidfile = PathBuf::from("/run/x y.pid");
    let init = sysvinit::script(&s);
    assert!(
        init.starts_with("#!/bin/sh\n### BEGIN INIT INFO\n"),
        "{init}"
    );
    assert!(init.contains("\nSTOP_TIMEOUT=35\n"), "{init}");
    assert!(init.contains("\nPIDFILE='/run/x y.pid'\n"), "{init}");
    assert!(
        init.contains("\nDAEMON=/usr/local/bin/sentinel\n"),
        "{init}"
    );
    let rc = openrc::script(&s);
    assert!(rc.starts_with("#!/sbin/openrc-run\n"), "{rc}");
    assert!(rc.contains("\nretry=\"TERM/35/KILL/5\"\n"), "{rc}");
    assert!(rc.contains("\nextra_started_commands=\"reload\"\n"), "{rc}");
    assert!(
        rc.contains(&format!(
            "\ncommand_args=\"run -c {}\"\n",
            s.config_path.display()
        )),
        "{rc}"
    );
}

#[test]
fn install_refuses_to_replace_a_different_file_without_force() {
    use std::os::unix::fs::PermissionsExt;
    let d = Dir::new("install");
    let target = install_path(Kind::Sysvinit, false, "sentinel", Some(&d.0)).unwrap();
    assert_eq!(target, d.0.join("etc/init.d/sentinel"));
    assert_eq!(install(&target, "one\n", 0o755, false), Ok(true));
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
    assert_eq!(install(&target, "one\n", 0o755, false), Ok(false));
    let (code, e) = install(&target, "two\n", 0o755, false).unwrap_err();
    assert_eq!(code, 1);
    assert!(
        e.contains("exists and differs") && e.contains("--force"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "one\n");
    assert_eq!(install(&target, "two\n", 0o755, true), Ok(true));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "two\n");
    // No temporary file is left behind.
    assert_eq!(
        std::fs::read_dir(target.parent().unwrap()).unwrap().count(),
        1
    );
    let unit = install_path(Kind::Systemd, false, "web.service", Some(&d.0)).unwrap();
    assert_eq!(unit, d.0.join("etc/systemd/system/web.service"));
}
