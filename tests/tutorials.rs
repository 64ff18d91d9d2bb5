//! The tutorials in docs/tutorials/ run, so their commands never rot.
//!
//! A shell block is run when the line before its fence is a marker:
//!
//! ```text
//! <!-- test -->                           must exit 0
//! <!-- test exit=2 -->                    must exit 2
//! <!-- test needs="sentinel generate --help" -->
//!                                         run only where that command
//!                                         succeeds (else skipped, said why)
//! <!-- test tools="promtool curl" -->     run only where these programs are
//!                                         on PATH; with SENTINEL_REQUIRE_TOOLS=1
//!                                         (scripts/test) a missing one fails
//! ```
//!
//! Ports from 28000 to 29999 in runnable blocks stand for "a free port":
//! each distinct one is replaced by a port free on this machine when the
//! tutorial runs, so that runs side by side (or another program on the
//! port) do not meet.
//!
//! Blocks without a marker are shown to the reader, not run (Docker, a
//! real systemd, a network, a VM). Each tutorial runs in a fresh folder
//! that looks like the root of a checkout (`examples`, `docs`, `scripts`
//! and `target` link to this one's), with the built `sentinel` first on
//! `PATH`. Its blocks run one after another, each as `bash -e -o pipefail`
//! (variables do not carry over; files and background processes do), each
//! within a deadline, all in one process group of their own. At the end
//! that group gets SIGTERM (a `sentinel run` left in the background stops
//! its services), then SIGKILL after a deadline, as does every process
//! still carrying this run's marker in its environment (a service that
//! left the group with `setsid`).

mod common;

use common::{wait_for, TempDir, BIN};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One block's limit.
const BLOCK_DEADLINE: Duration = Duration::from_secs(30);
/// How long processes left behind get to stop on SIGTERM.
const CLEANUP_DEADLINE: Duration = Duration::from_secs(15);
/// The environment variable that marks this run's processes.
const MARKER: &str = "SENTINEL_TUTORIAL_RUN";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A runnable block of a tutorial.
#[derive(Debug, Clone, PartialEq)]
struct Block {
    /// 1-based line of its first command.
    line: usize,
    text: String,
    /// The exit status it must end with.
    exit: i32,
    /// A command that must succeed for the block to run.
    needs: Option<String>,
    /// Programs the block needs.
    tools: Vec<String>,
}

/// The blocks after `<!-- test ... -->` markers.
fn blocks(doc: &str) -> Result<Vec<Block>, String> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim();
        let Some(attrs) = l
            .strip_prefix("<!-- test")
            .and_then(|a| a.strip_suffix("-->"))
        else {
            i += 1;
            continue;
        };
        let mut exit = 0;
        let mut needs = None;
        let mut tools = Vec::new();
        let mut rest = attrs.trim();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("exit=") {
                let end = r.find(' ').unwrap_or(r.len());
                exit = r[..end]
                    .parse()
                    .map_err(|_| format!("line {}: bad exit=", i + 1))?;
                rest = r[end..].trim_start();
            } else if let Some(r) = rest.strip_prefix("needs=\"") {
                let end = r
                    .find('"')
                    .ok_or_else(|| format!("line {}: needs=\" without its closing quote", i + 1))?;
                needs = Some(r[..end].to_string());
                rest = r[end + 1..].trim_start();
            } else if let Some(r) = rest.strip_prefix("tools=\"") {
                let end = r
                    .find('"')
                    .ok_or_else(|| format!("line {}: tools=\" without its closing quote", i + 1))?;
                tools = r[..end].split_whitespace().map(str::to_string).collect();
                rest = r[end + 1..].trim_start();
            } else {
                return Err(format!("line {}: unknown marker attribute {rest:?}", i + 1));
            }
        }
        let fence = lines.get(i + 1).map_or("", |f| f.trim());
        if fence != "```sh" && fence != "```bash" {
            return Err(format!(
                "line {}: a test marker must be followed by a ```sh block",
                i + 1
            ));
        }
        let mut text = String::new();
        let mut j = i + 2;
        while j < lines.len() && lines[j].trim() != "```" {
            text.push_str(lines[j]);
            text.push('\n');
            j += 1;
        }
        if j == lines.len() {
            return Err(format!("line {}: the block is not closed", i + 2));
        }
        out.push(Block {
            line: i + 3,
            text,
            exit,
            needs,
            tools,
        });
        i = j + 1;
    }
    Ok(out)
}

/// The ports a tutorial writes: 5-digit numbers from 28000 to 29999.
const PORTS: std::ops::RangeInclusive<u32> = 28000..=29999;

/// Each 5-digit number in `PORTS` in `text`, passed through `f`.
fn map_ports(text: &str, mut f: impl FnMut(u32) -> u32) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i > start {
            let word = &text[start..i];
            let alone = start == 0 || !b[start - 1].is_ascii_alphanumeric();
            match word.parse::<u32>() {
                Ok(n) if word.len() == 5 && alone && PORTS.contains(&n) => {
                    out.push_str(&f(n).to_string())
                }
                _ => out.push_str(word),
            }
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// A port no one listens on now (the kernel's pick; released at once).
fn free_port() -> u32 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    u32::from(l.local_addr().unwrap().port())
}

/// Whether a process is alive (not a zombie), and its process group.
fn stat(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = s.rsplit_once(')')?.1;
    let mut f = after.split_whitespace();
    let state = f.next()?;
    let _ppid = f.next()?;
    let pgrp: i32 = f.next()?.parse().ok()?;
    (state != "Z").then_some(pgrp)
}

/// Live processes in group `pgid` or carrying `marker` in their environment.
fn leftovers(pgid: i32, marker: &str) -> Vec<i32> {
    processes(pgid, Some(marker))
}

/// Live processes in group `pgid`, or (with a marker) carrying it in their
/// environment.
fn processes(pgid: i32, marker: Option<&str>) -> Vec<i32> {
    let needle = marker.map(|m| format!("{MARKER}={m}"));
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Some(pgrp) = stat(pid) else { continue };
        let marked = needle.as_ref().is_some_and(|needle| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
                .unwrap_or(false)
        });
        if pgrp == pgid || marked {
            out.push(pid);
        }
    }
    out
}

/// One tutorial's run: its folder, its process group, its marker.
struct Run {
    dir: TempDir,
    /// The group leader: a process that only waits, so that the group
    /// exists from the first block to the last.
    anchor: Child,
    marker: String,
    path: String,
}

impl Run {
    fn new(name: &str) -> Run {
        // Under the target folder, not /tmp: the tutorials give services a
        // fresh /tmp, which would hide their own folder.
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = TempDir(Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "tutorial-{}-{}-{}",
            name.trim_end_matches(".md"),
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        )));
        let _ = std::fs::remove_dir_all(&dir.0);
        std::fs::create_dir_all(&dir.0).unwrap();
        let target = Path::new(BIN)
            .parent()
            .and_then(Path::parent)
            .expect("the binary is in <target>/<profile>/");
        for (link, to) in [
            ("examples", root().join("examples")),
            ("docs", root().join("docs")),
            ("scripts", root().join("scripts")),
            ("target", target.to_path_buf()),
        ] {
            std::os::unix::fs::symlink(to, dir.path(link)).unwrap();
        }
        let anchor = Command::new("sleep")
            .arg("100000")
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the group's anchor (sleep)");
        let bin_dir = Path::new(BIN).parent().unwrap();
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let marker = format!("{}-{}", std::process::id(), anchor.id());
        Run {
            dir,
            anchor,
            marker,
            path,
        }
    }

    fn pgid(&self) -> i32 {
        self.anchor.id() as i32
    }

    fn command(&self, script: &str, out: Stdio, err: Stdio) -> Command {
        let mut c = Command::new("bash");
        c.args(["-e", "-o", "pipefail", "-c", script])
            .current_dir(&self.dir.0)
            .env("PATH", &self.path)
            .env(MARKER, &self.marker)
            .env_remove("SENTINEL_SOCKET")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(self.pgid());
        c
    }

    /// Run `script` within the deadline: `Some(exit status)`, or None when
    /// it ran out of time (then it is killed).
    fn run(&self, script: &str, log: &Path) -> Option<i32> {
        let out = std::fs::File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        let mut child = self
            .command(script, out.into(), err.into())
            .spawn()
            .expect("run bash");
        let deadline = Instant::now() + BLOCK_DEADLINE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10)); // poll until the deadline
        }
    }

    /// Whether `needs` succeeds here.
    fn has(&self, needs: &str) -> bool {
        let log = self.dir.path(".needs.log");
        self.run(needs, &log) == Some(0)
    }
}

impl Drop for Run {
    /// SIGTERM to the group, as an operator would stop a `sentinel run`
    /// (it stops its services), and time to finish; then SIGTERM to what
    /// still carries the marker (services whose sentinel is gone); then
    /// SIGKILL to whatever is left.
    fn drop(&mut self) {
        let pgid = self.pgid();
        let _ = kill(Pid::from_raw(-pgid), Signal::SIGTERM);
        let _ = self.anchor.wait();
        let gone = |what: &str, limit: Duration, signal: Option<Signal>| -> bool {
            let deadline = Instant::now() + limit;
            loop {
                let left = leftovers(pgid, &self.marker);
                if left.is_empty() {
                    return true;
                }
                if Instant::now() > deadline {
                    eprintln!("tutorial cleanup: {left:?} still there after {what}");
                    if let Some(sig) = signal {
                        let _ = kill(Pid::from_raw(-pgid), sig);
                        for pid in left {
                            let _ = kill(Pid::from_raw(pid), sig);
                        }
                    }
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20)); // poll until the deadline
            }
        };
        // 1. The group (sentinel stops its services on SIGTERM).
        let deadline = Instant::now() + CLEANUP_DEADLINE;
        while !processes(pgid, None).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20)); // poll until the deadline
        }
        // 2. What is left: marked processes outside the group, then anything.
        if !gone(
            "SIGTERM to the group",
            Duration::ZERO,
            Some(Signal::SIGTERM),
        ) && !gone("SIGTERM", Duration::from_secs(5), Some(Signal::SIGKILL))
        {
            gone("SIGKILL", Duration::from_secs(5), None);
        }
    }
}

/// Run every marked block of `docs/tutorials/NAME` in order; panic with
/// the first failure and its output.
fn tutorial(name: &str) {
    let rel = format!("docs/tutorials/{name}");
    let doc = std::fs::read_to_string(root().join(&rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut blocks = blocks(&doc).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(!blocks.is_empty(), "{rel}: no <!-- test --> blocks");
    let mut ports: Vec<(u32, u32)> = Vec::new();
    for b in &mut blocks {
        b.text = map_ports(&b.text, |p| {
            if let Some(&(_, to)) = ports.iter().find(|(from, _)| *from == p) {
                return to;
            }
            let to = loop {
                let to = free_port();
                if !ports.iter().any(|(_, t)| *t == to) {
                    break to;
                }
            };
            ports.push((p, to));
            to
        });
    }
    println!("{rel}: ports {ports:?}");
    let started = Instant::now();
    let mut failure = None;
    let (pgid, marker);
    {
        let run = Run::new(name);
        (pgid, marker) = (run.pgid(), run.marker.clone());
        for (n, b) in blocks.iter().enumerate() {
            if let Some(needs) = &b.needs {
                if !run.has(needs) {
                    println!("{rel}:{}: skipped: `{needs}` fails here", b.line);
                    continue;
                }
            }
            let missing: Vec<&String> = b
                .tools
                .iter()
                .filter(|t| !run.has(&format!("command -v {t}")))
                .collect();
            if !missing.is_empty() {
                assert!(
                    std::env::var_os("SENTINEL_REQUIRE_TOOLS").is_none(),
                    "{rel}:{}: needs {missing:?}, not installed (SENTINEL_REQUIRE_TOOLS is set)",
                    b.line
                );
                println!("{rel}:{}: skipped: {missing:?} not installed", b.line);
                continue;
            }
            let log = run.dir.path(&format!(".block{n}.log"));
            let status = run.run(&b.text, &log);
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            println!("{rel}:{}: exit {status:?}\n{output}", b.line);
            if status != Some(b.exit) {
                let what = match status {
                    None => format!("did not finish within {BLOCK_DEADLINE:?}"),
                    Some(s) => format!("exited with {s}, not {}", b.exit),
                };
                failure = Some(format!(
                    "{rel}:{}: the block {what}\n--- block ---\n{}--- output ---\n{output}",
                    b.line, b.text
                ));
                break;
            }
        }
        // `run` drops here: the group is stopped before we judge.
    }
    let left = leftovers(pgid, &marker);
    assert!(left.is_empty(), "{rel}: processes left behind: {left:?}");
    if let Some(f) = failure {
        panic!("{f}");
    }
    println!("{rel}: {:?}", started.elapsed());
}

/// The tutorials, each run by a test below.
const TUTORIALS: &[&str] = &[
    "container-pid1.md",
    "hardened-host-systemd.md",
    "embedded-static.md",
    "web-app-scaled.md",
    "monitoring.md",
    "isolation-recipes.md",
];

#[test]
fn every_tutorial_has_a_test() {
    let mut found: Vec<String> = std::fs::read_dir(root().join("docs/tutorials"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md") && n != "README.md")
        .collect();
    found.sort();
    let mut known: Vec<String> = TUTORIALS.iter().map(|s| s.to_string()).collect();
    known.sort();
    assert_eq!(
        found, known,
        "add a test for each tutorial in tests/tutorials.rs"
    );
}

#[test]
fn markers_are_read() {
    let doc = "text\n<!-- test -->\n```sh\necho a\n```\n\n```sh\nnot run\n```\n\
               <!-- test exit=2 needs=\"sentinel generate --help\" tools=\"a b\" -->\n\
               ```sh\nfalse\nexit 2\n```\n";
    let b = blocks(doc).unwrap();
    assert_eq!(
        b,
        [
            Block {
                line: 4,
                text: "echo a\n".into(),
                exit: 0,
                needs: None,
                tools: Vec::new(),
            },
            Block {
                line: 12,
                text: "false\nexit 2\n".into(),
                exit: 2,
                needs: Some("sentinel generate --help".into()),
                tools: vec!["a".into(), "b".into()],
            },
        ]
    );
    assert!(blocks("<!-- test -->\ntext\n").is_err());
    assert!(blocks("<!-- test exit=x -->\n```sh\n```\n").is_err());
    assert!(blocks("<!-- test run=1 -->\n```sh\n```\n").is_err());
}

#[test]
fn ports_are_mapped() {
    let text = "listen 127.0.0.1:28084, again 28084, also 29092; not 2808, 280845, v28084, 27999";
    let mapped = map_ports(text, |p| p - 20000);
    assert_eq!(
        mapped,
        "listen 127.0.0.1:8084, again 8084, also 9092; not 2808, 280845, v28084, 27999"
    );
    assert_eq!(
        map_ports("pid 12345 é 28000", |p| p + 1),
        "pid 12345 é 28001"
    );
}

#[test]
fn a_failing_block_fails_and_nothing_is_left_behind() {
    let run = Run::new("selftest");
    let pgid = run.pgid();
    let marker = run.marker.clone();
    // A process in the group, and one that left it (as a service does).
    let log = run.dir.path("log");
    assert_eq!(
        run.run("sleep 100000 & setsid sleep 100001 & exit 3", &log),
        Some(3)
    );
    wait_for("both sleeps", Duration::from_secs(10), || {
        (leftovers(pgid, &marker).len() >= 3).then_some(())
    });
    assert!(run.has("true"));
    assert!(!run.has("sentinel generate-nothing --help"));
    drop(run);
    assert_eq!(leftovers(pgid, &marker), Vec::<i32>::new());
}

#[test]
fn container_pid1() {
    tutorial("container-pid1.md");
}

#[test]
fn hardened_host_systemd() {
    tutorial("hardened-host-systemd.md");
}

#[test]
fn embedded_static() {
    tutorial("embedded-static.md");
}

#[test]
fn web_app_scaled() {
    tutorial("web-app-scaled.md");
}

#[test]
fn monitoring() {
    tutorial("monitoring.md");
}

#[test]
fn isolation_recipes() {
    tutorial("isolation-recipes.md");
}
