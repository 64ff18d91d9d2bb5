//! `-H` over a real OpenSSH server: the test starts `sshd` on a loopback
//! port with a generated host key and user key and a pinned known_hosts,
//! and sentinels on this machine behind their own sockets play the remote
//! supervisors. Nothing touches ~/.ssh: the client runs with `ssh -F` on a
//! config file of the test's own, named in the host inventory.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;
const SSHD: &str = "/usr/sbin/sshd";

/// Whether sshd and the ssh client are here; under SENTINEL_REQUIRE_TOOLS
/// (scripts/test) their absence fails the test instead of skipping it.
fn have_ssh() -> bool {
    let in_path = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
    };
    let found = Path::new(SSHD).is_file() && in_path("ssh") && in_path("ssh-keygen");
    if !found {
        assert!(
            std::env::var_os("SENTINEL_REQUIRE_TOOLS").is_none(),
            "sshd or ssh is not installed (scripts/test installs openssh-server)"
        );
        eprintln!("SKIPPED: sshd is not installed (Debian openssh-server); run scripts/test to install it");
    }
    found
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "sentinel-test", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port that refuses connections: tcpmux's, which nothing here serves,
/// and which no test's sshd can take (they get ports from the ephemeral range).
fn refusing_port() -> u16 {
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", 1)).is_err(),
        "something listens on 127.0.0.1:1; the down host would not be down"
    );
    1
}

/// A port nothing listens on now (for sshd to take).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// sshd on loopback (killed on drop), the keys, the client's ssh config,
/// and an inventory naming hosts that all lead to it in different ways.
struct Rig {
    sshd: Child,
    dir: TempDir,
    inventory: PathBuf,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}

impl Rig {
    /// `hosts`: extra inventory text; `{port}` stands for sshd's port and
    /// `{dir}` for the rig's folder.
    fn start(hosts: &str) -> Rig {
        let dir = TempDir::new("remote");
        keygen(&dir.path("host_key"));
        keygen(&dir.path("user_key"));
        std::fs::copy(dir.path("user_key.pub"), dir.path("authorized_keys")).unwrap();
        let port = closed_port();
        let cfg = dir.write(
            "sshd_config",
            &format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_key\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\nUsePAM no\n\
                 StrictModes no\nPermitRootLogin yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nLogLevel VERBOSE\n",
                d = dir.0.display()
            ),
        );
        // sshd's privilege separation folder (the package makes it at boot).
        std::fs::create_dir_all("/run/sshd").unwrap();
        let sshd = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(&cfg)
            .arg("-E")
            .arg(dir.path("sshd.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start sshd");
        let host_pub = read(&dir.path("host_key.pub"));
        dir.write(
            "known_hosts",
            &format!("[127.0.0.1]:{port} {}", host_pub.trim()),
        );
        // Another key pinned for the same host: what a reinstalled host looks like.
        keygen(&dir.path("other_key"));
        let other_pub = read(&dir.path("other_key.pub"));
        dir.write(
            "wrong_known_hosts",
            &format!("[127.0.0.1]:{port} {}", other_pub.trim()),
        );
        dir.write(
            "ssh_config",
            &format!(
                "User root\nIdentityFile {d}/user_key\nIdentitiesOnly yes\n\
                 UserKnownHostsFile {d}/known_hosts\nGlobalKnownHostsFile /dev/null\n\
                 StrictHostKeyChecking yes\n",
                d = dir.0.display()
            ),
        );
        let inventory = dir.write(
            "hosts.toml",
            &format!(
                "[defaults]\nssh_config = {cfg:?}\nsentinel = {BIN:?}\n\n{}",
                hosts
                    .replace("{port}", &port.to_string())
                    .replace("{dir}", dir.0.to_str().unwrap()),
                cfg = dir.path("ssh_config")
            ),
        );
        let mut rig = Rig {
            sshd,
            dir,
            inventory,
        };
        wait_for("sshd to listen", SECS(10), || {
            if let Ok(Some(st)) = rig.sshd.try_wait() {
                panic!("sshd exited ({st}):\n{}", read(&rig.dir.path("sshd.log")));
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        rig
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("SENTINEL_HOSTS", &self.inventory)
            .env_remove("SENTINEL_SOCKET")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// A command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "sentinel {args:?} failed: {}\nsshd log:\n{}",
            String::from_utf8_lossy(&o.stderr),
            read(&self.dir.path("sshd.log"))
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// A command that must fail with exit code 1; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(1),
            "sentinel {args:?}: stdout {}\nstderr {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stderr).unwrap()
    }
}

/// A service that says which process it is, once, when it starts.
const HELLO: &str =
    "[services.hello]\ncommand = [\"sh\", \"-c\", \"echo hello-$$; exec sleep 1000\"]\n";

fn host_entry(name: &str, socket: &Path) -> String {
    format!("[hosts.{name}]\naddress = \"root@127.0.0.1:{{port}}\"\nsocket = {socket:?}\n\n")
}

fn pid_of(status_json: &str, name: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(status_json).unwrap();
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .and_then(|s| s["pid"].as_i64())
        .unwrap_or_else(|| panic!("no pid for {name} in {v}"))
}

#[test]
fn status_and_restart_over_ssh() {
    if !have_ssh() {
        return;
    }
    let s = Sentinel::start("remote-a", "", HELLO);
    let pid = s.wait_state("hello", "running", SECS(10))["pid"]
        .as_i64()
        .unwrap();
    let rig = Rig::start(&host_entry("alpha", &s.socket));

    let table = rig.ok(&["-H", "alpha", "status"]);
    assert!(table.starts_with("NAME"), "{table}");
    let row = table.lines().find(|l| l.starts_with("hello")).unwrap();
    assert!(
        row.contains("running") && row.contains(&pid.to_string()),
        "{table}"
    );
    // The same as local: pretty JSON, no host field.
    let json = rig.ok(&["-H", "alpha", "status", "--json"]);
    assert_eq!(pid_of(&json, "hello"), pid);
    assert!(!json.contains("\"host\""), "{json}");

    // An ad-hoc address, with -s naming the socket on that host.
    let port = read(&rig.dir.path("sshd_config"))
        .lines()
        .find_map(|l| l.strip_prefix("Port ").map(String::from))
        .unwrap();
    let addr = format!("root@127.0.0.1:{port}");
    let s_path = s.socket.to_str().unwrap();
    let json = rig.ok(&["-H", &addr, "status", "--json", "-s", s_path]);
    assert_eq!(pid_of(&json, "hello"), pid);

    let said = rig.ok(&["-H", "alpha", "restart", "hello"]);
    assert!(said.contains("hello"), "{said}");
    let new_pid = wait_for("a new hello process", SECS(10), || {
        let st = s.service("hello");
        let p = st["pid"].as_i64()?;
        (p != pid && st["state"] == "running").then_some(p)
    });
    let json = rig.ok(&["-H", "alpha", "status", "--json"]);
    assert_eq!(pid_of(&json, "hello"), new_pid);
}

/// Lines of a child's stdout, read on a thread, with a deadline per line.
fn lines_of(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_line(rx: &std::sync::mpsc::Receiver<String>, what: &str, seen: &mut Vec<String>) {
    let deadline = std::time::Instant::now() + SECS(20);
    while !seen.iter().any(|l| l.contains(what)) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => panic!("no line with {what:?} within 20s; got {seen:?}"),
        }
    }
}

#[test]
fn logs_follow_streams_over_ssh() {
    if !have_ssh() {
        return;
    }
    let s = Sentinel::start("remote-f", "", HELLO);
    let pid = s.wait_state("hello", "running", SECS(10))["pid"]
        .as_i64()
        .unwrap();
    let rig = Rig::start(&host_entry("alpha", &s.socket));
    let mut follow = rig
        .command(&["-H", "alpha", "logs", "-f", "hello"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut follow);
    let mut seen = Vec::new();
    wait_line(&rx, &format!("hello-{pid}"), &mut seen);
    // Written after the follow started: it must arrive through ssh.
    s.ok(&["restart", "hello"]);
    let new_pid = wait_for("a new hello process", SECS(10), || {
        let st = s.service("hello");
        let p = st["pid"].as_i64()?;
        (p != pid && st["state"] == "running").then_some(p)
    });
    wait_line(&rx, &format!("hello-{new_pid}"), &mut seen);
    assert!(
        matches!(follow.try_wait(), Ok(None)),
        "the follow ended early"
    );
    let _ = follow.kill();
    let _ = follow.wait();
}

#[test]
fn fan_out_prints_every_host_and_names_the_one_that_is_down() {
    if !have_ssh() {
        return;
    }
    let a = Sentinel::start("remote-fa", "", HELLO);
    let b = Sentinel::start(
        "remote-fb",
        "",
        "[services.other]\ncommand = [\"sh\", \"-c\", \"echo other-$$; exec sleep 1000\"]\n",
    );
    a.wait_state("hello", "running", SECS(10));
    b.wait_state("other", "running", SECS(10));
    let down = refusing_port();
    let rig = Rig::start(&format!(
        "{}{}[hosts.down]\naddress = \"root@127.0.0.1:{down}\"\n\n[groups]\npair = [\"alpha\", \"beta\"]\n",
        host_entry("alpha", &a.socket),
        host_entry("beta", &b.socket),
    ));

    let o = rig.run(&["-H", "alpha,beta,down", "status"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    let has = |host: &str, word: &str| {
        out.lines()
            .any(|l| l.starts_with(&format!("{host}:")) && l.contains(word))
    };
    assert!(has("alpha", "NAME") && has("alpha", "hello"), "{out}");
    assert!(has("beta", "other") && !has("beta", "hello"), "{out}");
    assert!(!out.contains("down:"), "{out}");
    assert!(
        err.contains("sentinel: 1 of 3 hosts failed:\n  down: connection refused"),
        "{err}"
    );

    // A group, as JSON lines with the host in each object.
    let json = rig.ok(&["-H", "@pair", "status", "--json"]);
    let docs: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2, "{json}");
    for (host, svc) in [("alpha", "hello"), ("beta", "other")] {
        let d = docs.iter().find(|d| d["host"] == host).unwrap();
        assert_eq!(d["services"][0]["name"], svc, "{json}");
    }

    // Following two hosts: their lines interleave, each with its host.
    let mut follow = rig
        .command(&["-H", "@pair", "logs", "-f", "hello"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // beta has no `hello`: it fails and is named, alpha keeps following.
    let rx = lines_of(&mut follow);
    let mut seen = Vec::new();
    wait_line(&rx, "alpha: hello-", &mut seen);
    a.ok(&["restart", "hello"]);
    let pid = wait_for("a new hello process", SECS(10), || {
        let st = a.service("hello");
        (st["state"] == "running").then(|| st["pid"].as_i64())?
    });
    wait_line(&rx, &format!("alpha: hello-{pid}"), &mut seen);
    let _ = follow.kill();
    let _ = follow.wait();
}

#[test]
fn each_way_a_host_can_fail_is_explained() {
    if !have_ssh() {
        return;
    }
    let s = Sentinel::start("remote-e", "", HELLO);
    let rig = Rig::start(&format!(
        "{}[hosts.mismatch]\naddress = \"root@127.0.0.1:{{port}}\"\nsocket = {sock:?}\n\
         ssh_options = [\"UserKnownHostsFile={{dir}}/wrong_known_hosts\"]\n\n\
         [hosts.bare]\naddress = \"root@127.0.0.1:{{port}}\"\nsentinel = \"/nonexistent/sentinel\"\n\n\
         [hosts.idle]\naddress = \"root@127.0.0.1:{{port}}\"\nsocket = \"/nonexistent/sentinel.sock\"\n",
        host_entry("alpha", &s.socket),
        sock = s.socket,
    ));

    let e = rig.fails(&["-H", "mismatch", "status"]);
    assert!(
        e.starts_with("sentinel: mismatch: host key mismatch"),
        "{e}"
    );
    assert!(e.contains("ssh-keygen -R"), "{e}");

    let e = rig.fails(&["-H", "bare", "status"]);
    assert!(
        e.starts_with("sentinel: bare: \"/nonexistent/sentinel\" was not found there"),
        "{e}"
    );

    let e = rig.fails(&["-H", "idle", "status"]);
    assert!(
        e.starts_with("sentinel: idle: no supervisor at /nonexistent/sentinel.sock on this host"),
        "{e}"
    );

    // The same host, fine, in the same run of sshd.
    rig.ok(&["-H", "alpha", "status"]);

    // A bad inventory is a usage error that points into the file.
    std::fs::write(&rig.inventory, "[hosts.x]\nadress = \"h\"\n").unwrap();
    let o = rig.run(&["-H", "x", "status"]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("hosts.toml:2:1: unknown field `adress`"), "{e}");
}

#[test]
fn bridge_joins_stdin_and_stdout_to_the_socket() {
    let s = Sentinel::start("remote-b", "", HELLO);
    s.wait_state("hello", "running", SECS(10));
    let mut c = Command::new(BIN)
        .arg("bridge")
        .arg("-s")
        .arg(&s.socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut i = c.stdin.take().unwrap();
        i.write_all(b"{\"cmd\":\"status\"}\n{\"cmd\":\"status\",\"target\":\"hello\"}\n")
            .unwrap();
        // EOF here: the supervisor still answers both, then the bridge ends.
    }
    let o = wait_for("the bridge to exit", SECS(10), || c.try_wait().unwrap());
    assert!(o.success());
    let mut out = String::new();
    use std::io::Read;
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let answers: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 2, "{out}");
    assert!(answers.iter().all(|a| a["ok"] == true), "{out}");

    let o = Command::new(BIN)
        .args(["bridge", "-s", "/nonexistent/x.sock"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.starts_with("sentinel: no supervisor at /nonexistent/x.sock on this host"),
        "{e}"
    );
}

#[test]
fn h_is_refused_for_local_commands_and_bad_host_lists() {
    let o = Command::new(BIN)
        .args(["-H", "h", "check", "-c", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not `check`"));
    let o = Command::new(BIN)
        .args(["-H", "a,,b", "status"])
        .env("SENTINEL_HOSTS", "/nonexistent/hosts.toml")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("/nonexistent/hosts.toml") && e.contains("SENTINEL_HOSTS"),
        "{e}"
    );
}
