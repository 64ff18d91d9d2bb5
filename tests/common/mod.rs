//! Shared helpers for integration tests: a temporary folder, the real
//! sentinel binary run against a config in it (killed on drop, so a hang
//! fails instead of hanging), and waiting for conditions with deadlines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_sentinel");

/// A folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "sentinel-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::write(&p, content).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Wait until `f` returns Some, or panic naming `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(pause); // poll interval, bounded by the deadline above
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// A running `sentinel run` with its own folder, config and socket.
pub struct Sentinel {
    pub dir: TempDir,
    pub child: Option<Child>,
    pub socket: PathBuf,
    pub config: PathBuf,
}

impl Sentinel {
    /// Write `services` (TOML `[services.*]` tables) under a `[supervisor]`
    /// table with a socket and log_dir in a fresh folder, and start sentinel.
    pub fn start(tag: &str, supervisor_extra: &str, services: &str) -> Sentinel {
        let dir = TempDir::new(tag);
        let socket = dir.path("sentinel.sock");
        let config = dir.write(
            "sentinel.toml",
            &format!(
                "[supervisor]\nsocket = {:?}\nlog_dir = {:?}\n{supervisor_extra}\n\n{services}",
                socket,
                dir.path("logs")
            ),
        );
        Self::start_with(dir, config, socket, &[])
    }

    pub fn start_with(dir: TempDir, config: PathBuf, socket: PathBuf, prefix: &[&str]) -> Sentinel {
        let out = std::fs::File::create(dir.path("stdout")).unwrap();
        let err = std::fs::File::create(dir.path("stderr")).unwrap();
        let mut cmd = if prefix.is_empty() {
            Command::new(BIN)
        } else {
            let mut c = Command::new(prefix[0]);
            c.args(&prefix[1..]).arg(BIN);
            c
        };
        let child = cmd
            .arg("run")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        let s = Sentinel {
            dir,
            child: Some(child),
            socket,
            config,
        };
        wait_for("the control socket", Duration::from_secs(10), || {
            s.assert_alive();
            std::os::unix::net::UnixStream::connect(&s.socket).ok()
        });
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path("stderr")).unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path("stdout")).unwrap_or_default()
    }

    fn assert_alive(&self) {
        let mut c =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        if c.is_empty() || c.contains(") Z ") {
            c = self.stderr();
            panic!("sentinel exited early; stderr:\n{c}");
        }
    }

    /// Run a client command against this sentinel.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("-s")
            .arg(&self.socket)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Run a client command that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.ctl(args);
        assert!(
            o.status.success(),
            "sentinel {args:?} failed: {}\nsentinel stderr:\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.stderr()
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// `status --json` parsed.
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).unwrap()
    }

    /// One service's status object.
    pub fn service(&self, name: &str) -> serde_json::Value {
        let st = self.status();
        st["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no service {name} in {st}"))
    }

    /// Wait until `name` is in `state`; returns its status.
    pub fn wait_state(&self, name: &str, state: &str, limit: Duration) -> serde_json::Value {
        wait_for(&format!("{name} to be {state}"), limit, || {
            let s = self.service(name);
            (s["state"] == state).then_some(s)
        })
    }

    /// Wait for the process to exit; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut().unwrap();
        let status = wait_for("sentinel to exit", limit, || child.try_wait().unwrap());
        self.child = None;
        status.code()
    }
}

/// The `pid` of a service's status object.
pub fn pid_of(s: &serde_json::Value) -> i64 {
    s["pid"].as_i64().unwrap_or_else(|| panic!("no pid in {s}"))
}

/// The direct children of a process.
pub fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

impl Drop for Sentinel {
    /// Stop sentinel the way an operator would (SIGTERM: it stops every
    /// service), so no test leaves processes behind; SIGKILL only if it
    /// does not exit within the deadline.
    fn drop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        if matches!(c.try_wait(), Ok(Some(_))) {
            return;
        }
        // Under `unshare --fork`, sentinel is the child of our child.
        let me = c.id();
        let comm = std::fs::read_to_string(format!("/proc/{me}/comm")).unwrap_or_default();
        let target = if comm.trim() == "sentinel" {
            me
        } else {
            children_of(me).first().copied().unwrap_or(me)
        };
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(target as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(c.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10)); // poll until the deadline
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(target as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Voluntary + involuntary context switches of a process.
pub fn context_switches(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .filter(|l| l.contains("ctxt_switches"))
        .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
        .sum()
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The probe binary (`tests/probe`), built once per test run into its own
/// target directory (the outer `cargo test` holds the main one's lock).
pub fn probe() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let target = root.join("target/probe");
            let cargo = option_env!("CARGO").unwrap_or("cargo");
            let status = Command::new(cargo)
                .args(["build", "--quiet", "-p", "sentinel-probe", "--target-dir"])
                .arg(&target)
                .current_dir(root)
                .status()
                .expect("run cargo to build the probe");
            assert!(status.success(), "building tests/probe failed");
            target.join("debug/sentinel-probe")
        })
        .clone()
}

/// `key=value` lines of probe output as a map.
pub fn probe_report(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}
