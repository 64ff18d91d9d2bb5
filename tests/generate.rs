//! `sentinel generate`: the systemd units pass `systemd-analyze verify`,
//! the init scripts pass `sh -n` and `checkbashisms`, the LSB script really
//! starts, reloads and stops sentinel on this machine, `--install` writes
//! where it should and refuses to overwrite; and sentinel, run with a
//! `NOTIFY_SOCKET`, says READY=1 only once its required services are ready.

mod common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Whether `name` is on PATH; when it is not, a skip with a note, or a
/// failure under SENTINEL_REQUIRE_TOOLS=1 (scripts/test installs it).
fn have_tool(name: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    if !found {
        assert!(
            std::env::var_os("SENTINEL_REQUIRE_TOOLS").is_none(),
            "{name} is not installed (scripts/test installs it)"
        );
        eprintln!("SKIPPED: {name} is not installed; run scripts/test to install it");
    }
    found
}

fn sentinel(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `sentinel ARGS`, which must succeed; its stdout.
fn generate(args: &[&str]) -> String {
    let o = sentinel(args);
    assert!(
        o.status.success(),
        "sentinel {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A config whose services use most keys that become directives, with
/// programs that exist here (verify checks ExecStart).
const STACK: &str = r#"
[supervisor]
shutdown_timeout = "20s"

[slices.batch]
memory_max = "1G"

[services.db]
command = ["sleep", "100000"]
ready = "notify"
propagate = true
watchdog = "30s"

[services.migrate]
command = ["/bin/sh", "-c", "echo migrating 100% of \"$DB\""]
type = "oneshot"
depends_on = { db = "ready" }
env = { DB = "postgres://db/app name" }

[services.web]
command = ["/bin/sleep", "100000"]
workdir = "/tmp"
user = "daemon:daemon"
supplementary_groups = ["adm"]
depends_on = { migrate = "completed", db = "started" }
slice = "batch"
restart = "on-failure"
backoff = { initial = "2s" }
stop_signal = "SIGINT"
limits = { memory_max = "512M", memory_high = "400M", cpu_max = "0.5", cpu_weight = 50, pids_max = 64, io_weight = 200, io_max = [{ device = "8:0", rbps = "1M", wiops = 100 }] }
nice = 5
ionice = "best-effort:3"
oom_score_adjust = 200
rlimits = { nofile = "1024:4096", core = 0, as = "unlimited" }
health = { tcp = "127.0.0.1:8080" }

[services.web.isolation]
namespaces = ["net", "ipc", "uts", "mount", "user", "pid", "cgroup"]
hostname = "web"
read_only_paths = ["/usr", "/boot", "/srv/data dir"]
inaccessible_paths = ["/root"]
tmpfs = ["/tmp"]
capabilities = ["CAP_NET_BIND_SERVICE"]
seccomp = { profile = "default", allow = ["ptrace"], deny = ["mount", { syscall = "kexec_load", action = "kill" }] }

[services.jail]
command = ["/bin/true"]
restart = "never"
isolation = { capabilities = [], no_new_privs = false, seccomp = { profile = "strict", action = "errno:EACCES" } }

[services.logged]
command = ["/bin/true"]
isolation = { seccomp = { profile = "default", action = "log" } }
"#;

const SERVICES: [&str; 5] = ["db", "migrate", "web", "jail", "logged"];

/// `systemd-analyze verify` on every file in `dir`: success, and not a
/// word on stderr (unknown keys and bad values are only warnings there).
fn verify(dir: &Path, files: &[PathBuf], user: bool) {
    let runtime = dir.join("xdg-runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    let mut cmd = Command::new("systemd-analyze");
    if user {
        cmd.arg("--user");
    }
    let o = cmd
        .args(["verify", "--man=no", "--generators=no"])
        .args(files)
        .current_dir(dir)
        // A user manager needs a runtime dir; the test's own.
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "systemd-analyze verify {files:?}: {}",
        text(&o)
    );
}

fn write_units(dir: &TempDir, config: &Path, user: bool) -> Vec<PathBuf> {
    let cfg = config.to_str().unwrap();
    let mut extra: Vec<&str> = Vec::new();
    if user {
        extra.push("--user");
    }
    let mut files = Vec::new();
    let main = generate(&[&["generate", "systemd", "-c", cfg], extra.as_slice()].concat());
    files.push(dir.write("sentinel.service", &main));
    for s in SERVICES {
        let unit = generate(
            &[
                &["generate", "systemd", "-c", cfg, "--service", s],
                extra.as_slice(),
            ]
            .concat(),
        );
        files.push(dir.write(&format!("{s}.service"), &unit));
    }
    files
}

#[test]
fn every_systemd_unit_passes_systemd_analyze_verify() {
    if !have_tool("systemd-analyze") {
        return;
    }
    let dir = TempDir::new("gen-verify");
    let config = dir.write("stack.toml", STACK);
    let files = write_units(&dir, &config, false);
    // The units say what they should, not only something systemd accepts.
    let main = read(&files[0]);
    assert!(main.contains(&format!("\nExecStart={BIN} run -c {}\n", config.display())));
    assert!(main.contains("\nType=notify\n") && main.contains("\nTimeoutStopSec=35s\n"));
    let web = read(&dir.path("web.service"));
    for want in [
        "User=daemon",
        "ProtectSystem=yes",
        "ReadOnlyPaths=\"/srv/data dir\"",
        "CPUQuota=50%",
        "Slice=batch.slice",
        "SystemCallFilter=~kexec_load",
    ] {
        assert!(web.contains(&format!("\n{want}\n")), "no {want} in:\n{web}");
    }
    let migrate = read(&dir.path("migrate.service"));
    assert!(
        migrate.contains(r#"ExecStart=/bin/sh -c "echo migrating 100%% of \"$$DB\"""#),
        "{migrate}"
    );
    verify(&dir.0, &files, false);

    // The shipped examples (their programs swapped for ones that exist).
    let iso = dir.write(
        "isolation.toml",
        &read(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/isolation.toml"
        )))
        .replace("/srv/app/web", "/bin/sleep")
        .replace("/srv/app/report", "/bin/true"),
    );
    let ex = TempDir::new("gen-verify-examples");
    let mut files = Vec::new();
    for s in ["web", "report"] {
        let unit = generate(&[
            "generate",
            "systemd",
            "-c",
            iso.to_str().unwrap(),
            "--service",
            s,
        ]);
        files.push(ex.write(&format!("{s}.service"), &unit));
    }
    verify(&ex.0, &files, false);
}

#[test]
fn user_units_pass_systemd_analyze_verify() {
    if !have_tool("systemd-analyze") {
        return;
    }
    let dir = TempDir::new("gen-verify-user");
    let config = dir.write("stack.toml", STACK);
    let files = write_units(&dir, &config, true);
    let main = read(&files[0]);
    assert!(main.contains("\nWantedBy=default.target\n"), "{main}");
    assert!(!read(&dir.path("web.service")).contains("\nUser="));
    verify(&dir.0, &files, true);
}

#[test]
fn init_scripts_pass_sh_n_and_checkbashisms() {
    let dir = TempDir::new("gen-sh");
    let config = dir.write("s.toml", "[services.a]\ncommand = [\"sleep\", \"1000\"]\n");
    let cfg = config.to_str().unwrap();
    let init = dir.write("sysvinit", &generate(&["generate", "sysvinit", "-c", cfg]));
    let openrc = dir.write("openrc", &generate(&["generate", "openrc", "-c", cfg]));
    for shell in ["sh", "dash", "busybox"] {
        if shell != "sh" && !Path::new("/bin").join(shell).exists() {
            continue;
        }
        for f in [&init, &openrc] {
            let mut c = Command::new(shell);
            if shell == "busybox" {
                c.arg("sh");
            }
            let o = c.arg("-n").arg(f).output().unwrap();
            assert!(
                o.status.success(),
                "{shell} -n {}: {}",
                f.display(),
                text(&o)
            );
        }
    }
    if !have_tool("checkbashisms") {
        return;
    }
    // The OpenRC script's #! is openrc-run, which checkbashisms skips
    // unless forced; its body is POSIX sh all the same.
    for (f, force) in [(&init, false), (&openrc, true)] {
        let mut c = Command::new("checkbashisms");
        if force {
            c.arg("--force");
        }
        let o = c.arg(f).output().unwrap();
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "checkbashisms {}: {}",
            f.display(),
            text(&o)
        );
    }
}

/// An LSB script run against the real binary, with every path in a
/// temporary folder; on drop, whatever it started is stopped.
struct InitScript {
    dir: TempDir,
    script: PathBuf,
    pidfile: PathBuf,
    socket: PathBuf,
    use_ssd: &'static str,
}

impl InitScript {
    fn new(tag: &str, use_ssd: &'static str) -> InitScript {
        let dir = TempDir::new(tag);
        let socket = dir.path("sentinel.sock");
        let config = dir.write(
            "sentinel.toml",
            &format!(
                "[supervisor]\nsocket = {socket:?}\nlog_dir = {:?}\nshutdown_timeout = \"5s\"\n\n\
                 [services.sleeper]\ncommand = [\"sleep\", \"100000\"]\n",
                dir.path("logs")
            ),
        );
        let pidfile = dir.path("run/sentinel.pid");
        let script = dir.write(
            "sentinel.init",
            &generate(&[
                "generate",
                "sysvinit",
                "-c",
                config.to_str().unwrap(),
                "--pidfile",
                pidfile.to_str().unwrap(),
                "--log-file",
                dir.path("log/sentinel.log").to_str().unwrap(),
            ]),
        );
        InitScript {
            dir,
            script,
            pidfile,
            socket,
            use_ssd,
        }
    }

    fn run(&self, action: &str) -> Output {
        Command::new("sh")
            .arg(&self.script)
            .arg(action)
            .env("USE_SSD", self.use_ssd)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn pid(&self) -> Option<i64> {
        read(&self.pidfile).trim().parse().ok()
    }

    fn sentinel_log(&self) -> String {
        read(&self.dir.path("log/sentinel.log"))
    }
}

impl Drop for InitScript {
    fn drop(&mut self) {
        if let Some(pid) = self.pid().filter(|p| alive(*p)) {
            let _ = self.run("stop");
            if alive(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn init_script_lifecycle(use_ssd: &'static str) {
    let s = InitScript::new(&format!("gen-init-{use_ssd}"), use_ssd);
    let o = s.run("status");
    assert_eq!(
        o.status.code(),
        Some(3),
        "status before start: {}",
        text(&o)
    );

    let o = s.run("start");
    assert!(o.status.success(), "start: {}", text(&o));
    let pid = s.pid().expect("a pid in the pidfile");
    assert!(alive(pid));
    assert_eq!(
        read(Path::new(&format!("/proc/{pid}/comm"))).trim(),
        "sentinel"
    );
    // It is the supervisor: it answers on its socket and runs the service.
    let svc = wait_for("the service to run", SECS(10), || {
        let o = sentinel(&["status", "--json", "-s", s.socket.to_str().unwrap()]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        let svc = v["services"][0].clone();
        (svc["state"] == "running").then_some(svc)
    });
    let service_pid = svc["pid"].as_i64().unwrap();
    assert!(alive(service_pid));

    let o = s.run("status");
    assert_eq!(o.status.code(), Some(0), "status: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("running (pid {pid})")));

    let o = s.run("start");
    assert!(o.status.success(), "a second start: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("already running"));
    assert_eq!(s.pid(), Some(pid));

    // reload is SIGHUP: sentinel reopens a log file that was moved away.
    let log = s.dir.path("logs/sleeper.log");
    std::fs::rename(&log, s.dir.path("logs/sleeper.log.1")).unwrap();
    let o = s.run("reload");
    assert!(o.status.success(), "reload: {}", text(&o));
    wait_for("sentinel to reopen the log file", SECS(10), || {
        s.sentinel_log()
            .contains("sleeper: log file reopened")
            .then_some(())
    });
    assert!(log.exists());
    assert_eq!(s.pid(), Some(pid), "reload must not restart sentinel");

    let o = s.run("stop");
    assert!(o.status.success(), "stop: {}", text(&o));
    assert!(!alive(pid), "sentinel still runs after stop");
    assert!(!alive(service_pid), "its service still runs after stop");
    assert!(!s.pidfile.exists());
    assert!(s.sentinel_log().contains("all services stopped"));
    let o = s.run("status");
    assert_eq!(o.status.code(), Some(3), "status after stop: {}", text(&o));
    let o = s.run("reload");
    assert_eq!(
        o.status.code(),
        Some(7),
        "reload when stopped: {}",
        text(&o)
    );

    // restart from stopped starts it; stop again.
    let o = s.run("restart");
    assert!(o.status.success(), "restart: {}", text(&o));
    let pid2 = s.pid().unwrap();
    assert!(alive(pid2) && pid2 != pid);
    assert!(s.run("stop").status.success());
    assert!(!alive(pid2));

    // A broken config is refused at start (LSB 6: not configured), with
    // its errors on stderr.
    std::fs::write(s.dir.path("sentinel.toml"), "[services.x]\ncommnd = []\n").unwrap();
    let o = s.run("start");
    assert_eq!(
        o.status.code(),
        Some(6),
        "start with a bad config: {}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("commnd"),
        "{}",
        text(&o)
    );
    assert!(s.pid().is_none());
}

#[test]
fn the_init_script_starts_reloads_and_stops_sentinel_with_start_stop_daemon() {
    if !have_tool("start-stop-daemon") {
        return;
    }
    init_script_lifecycle("yes");
}

#[test]
fn the_init_script_starts_reloads_and_stops_sentinel_with_plain_sh() {
    init_script_lifecycle("no");
}

#[test]
fn install_writes_the_standard_place_and_refuses_to_overwrite() {
    let dir = TempDir::new("gen-install");
    let config = dir.write("s.toml", "[services.a]\ncommand = [\"sleep\", \"1000\"]\n");
    let cfg = config.to_str().unwrap();
    let root = dir.path("root");
    let root = root.to_str().unwrap();
    let out = generate(&[
        "generate",
        "systemd",
        "-c",
        cfg,
        "--install",
        "--root",
        root,
    ]);
    let unit = dir.path("root/etc/systemd/system/sentinel.service");
    assert!(out.contains(&format!("wrote {}", unit.display())), "{out}");
    assert!(
        out.contains("next: systemctl daemon-reload && systemctl enable --now sentinel"),
        "{out}"
    );
    assert_eq!(read(&unit), generate(&["generate", "systemd", "-c", cfg]));
    // Again: nothing to do.
    let out = generate(&[
        "generate",
        "systemd",
        "-c",
        cfg,
        "--install",
        "--root",
        root,
    ]);
    assert!(out.contains("already up to date"), "{out}");
    // A different file there is kept, unless --force.
    std::fs::write(&unit, "[Service]\nExecStart=/bin/true\n").unwrap();
    let o = sentinel(&[
        "generate",
        "systemd",
        "-c",
        cfg,
        "--install",
        "--root",
        root,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--force"),
        "{}",
        text(&o)
    );
    assert_eq!(read(&unit), "[Service]\nExecStart=/bin/true\n");
    generate(&[
        "generate",
        "systemd",
        "-c",
        cfg,
        "--install",
        "--root",
        root,
        "--force",
    ]);
    assert!(read(&unit).contains("Type=notify"));

    // The init scripts go to /etc/init.d, executable.
    let out = generate(&[
        "generate",
        "sysvinit",
        "-c",
        cfg,
        "--install",
        "--root",
        root,
    ]);
    assert!(out.contains("update-rc.d sentinel defaults"), "{out}");
    let script = dir.path("root/etc/init.d/sentinel");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&script).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);

    // A user unit goes under XDG_CONFIG_HOME.
    let o = Command::new(BIN)
        .args([
            "generate",
            "systemd",
            "--user",
            "-c",
            cfg,
            "--install",
            "--root",
            root,
        ])
        .env("XDG_CONFIG_HOME", "/home/someone/.config")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(dir
        .path("root/home/someone/.config/systemd/user/sentinel.service")
        .exists());
    assert!(String::from_utf8_lossy(&o.stdout).contains("systemctl --user daemon-reload"));
}

#[test]
fn bad_usage_is_named() {
    let dir = TempDir::new("gen-usage");
    let config = dir.write("s.toml", "[services.a]\ncommand = [\"true\"]\n");
    let cfg = config.to_str().unwrap();
    // (argh itself exits 1 on a value it cannot parse.)
    for (args, code, needle) in [
        (
            vec!["generate", "upstart", "-c", cfg],
            1,
            "expected systemd, openrc or sysvinit",
        ),
        (
            vec!["generate", "openrc", "--user", "-c", cfg],
            2,
            "--user makes a systemd user unit",
        ),
        (
            vec!["generate", "sysvinit", "--service", "a", "-c", cfg],
            2,
            "--service exports",
        ),
        (
            vec!["generate", "systemd", "--service", "b", "-c", cfg],
            2,
            "no service \"b\"",
        ),
        (
            vec!["generate", "systemd", "--force", "-c", cfg],
            2,
            "go with --install",
        ),
        (
            vec!["generate", "systemd", "-c", "/nonexistent/s.toml"],
            2,
            "cannot read the config file",
        ),
    ] {
        let o = sentinel(&args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {t}");
        assert!(t.contains(needle), "{args:?}: no {needle:?} in {t}");
    }
}

/// The test's end of a NOTIFY_SOCKET: every datagram, in order.
struct Manager {
    sock: UnixDatagram,
    got: Vec<String>,
}

impl Manager {
    fn bind(path: &Path) -> Manager {
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Manager {
            sock,
            got: Vec::new(),
        }
    }

    /// Read what came, until a datagram satisfies `f` (within `limit`).
    fn wait(&mut self, what: &str, limit: Duration, mut f: impl FnMut(&str) -> bool) -> String {
        wait_for(what, limit, || {
            let mut buf = [0u8; 4096];
            let n = self.sock.recv(&mut buf).ok()?;
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.got.push(m.clone());
            f(&m).then_some(m)
        })
    }
}

#[test]
fn sentinel_tells_systemd_when_its_required_services_are_ready() {
    let dir = TempDir::new("gen-notify");
    let go = dir.path("go");
    let socket = dir.path("sentinel.sock");
    let config = dir.write(
        "sentinel.toml",
        &format!(
            r#"[supervisor]
socket = {socket:?}
log_dir = {logs:?}

[services.env]
command = ["sh", "-c", "echo notify=${{NOTIFY_SOCKET-unset}} watchdog=${{WATCHDOG_USEC-unset}} pid=${{WATCHDOG_PID-unset}}; exec sleep 100000"]

[services.gate]
command = ["sh", "-c", "while [ ! -e {go} ]; do sleep 0.02; done; echo >&3; exec sleep 100000"]
ready = "fd"

[services.broken]
command = ["false"]
restart = "never"
required = false
"#,
            logs = dir.path("logs"),
            go = go.display(),
        ),
    );
    let notify = dir.path("notify.sock");
    let mut m = Manager::bind(&notify);
    let child = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify)
        .env("WATCHDOG_USEC", "200000")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.path("stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut s = Sentinel {
        dir,
        child: Some(child),
        socket,
        config,
    };
    // The watchdog is pinged at half of WATCHDOG_USEC, while gate is not
    // ready yet: no READY=1 so far.
    let mut pings = 0;
    m.wait("three watchdog pings", SECS(10), |d| {
        pings += usize::from(d.lines().any(|l| l == "WATCHDOG=1"));
        pings >= 3
    });
    let status = s.service("gate");
    assert_eq!(status["state"], "starting", "{status}");
    assert!(
        !m.got.iter().any(|d| d.contains("READY=1")),
        "READY=1 before gate was ready: {:?}",
        m.got
    );
    assert!(
        m.got.iter().any(|d| d.contains("STATUS=3 services: ")),
        "no STATUS= yet: {:?}",
        m.got
    );

    std::fs::write(&go, "").unwrap();
    let ready = m.wait("READY=1", SECS(10), |d| d.contains("READY=1"));
    // The failed service is not required: it does not hold readiness back.
    assert!(
        ready
            .lines()
            .any(|l| l == "STATUS=3 services: 2 running, 1 failed"),
        "{ready}"
    );
    assert_eq!(s.service("broken")["state"], "failed");

    // The services never saw systemd's variables.
    let env_log = wait_for("env's line", SECS(10), || {
        let l = read(&s.dir.path("logs/env.log"));
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(
        env_log.trim(),
        "notify=unset watchdog=unset pid=unset",
        "{env_log}"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(s.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let stopping = m.wait("STOPPING=1", SECS(10), |d| d.contains("STOPPING=1"));
    assert!(stopping.contains("STATUS=shutting down: "), "{stopping}");
    assert_eq!(s.wait_exit(SECS(20)), Some(0));
    assert_eq!(
        m.got.iter().filter(|d| d.contains("READY=1")).count(),
        1,
        "{:?}",
        m.got
    );
}
