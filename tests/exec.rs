//! `sentinel exec`: tini's contract.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn exec(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("exec")
        .arg("--")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn exit_codes_pass_through() {
    assert_eq!(exec(&["true"]).status.code(), Some(0));
    assert_eq!(exec(&["sh", "-c", "exit 3"]).status.code(), Some(3));
    // Killed by signal N: 128 + N.
    assert_eq!(
        exec(&["sh", "-c", "kill -KILL $$"]).status.code(),
        Some(137)
    );
    assert_eq!(
        exec(&["sh", "-c", "kill -TERM $$"]).status.code(),
        Some(143)
    );
}

#[test]
fn missing_and_non_executable_commands_give_127_and_126() {
    let o = exec(&["no-such-command-xyz"]);
    assert_eq!(o.status.code(), Some(127));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no-such-command-xyz") && err.contains("No such file"),
        "{err}"
    );
    let dir = TempDir::new("exec");
    let f = dir.write("not-exec", "#!/bin/sh\n");
    let o = exec(&[f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(126));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Permission denied"));
    let o = Command::new(BIN).arg("exec").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn signals_are_forwarded_to_the_command() {
    let dir = TempDir::new("exec-sig");
    let ready = dir.path("ready");
    let script = format!(
        "trap 'exit 42' TERM; trap 'echo usr1 > {r}.usr1' USR1; touch {r}; while :; do sleep 0.05; done",
        r = ready.display()
    );
    let mut child = Command::new(BIN)
        .args(["exec", "--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the command to start", Duration::from_secs(10), || {
        ready.exists().then_some(())
    });
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    let usr1 = dir.path("ready.usr1");
    wait_for(
        "SIGUSR1 to reach the command",
        Duration::from_secs(10),
        || usr1.exists().then_some(()),
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = wait_for("exec to exit", Duration::from_secs(10), || {
        child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(42));
}

#[test]
fn sigpipe_is_default_in_the_child() {
    // `yes | head -1` ends because yes dies of SIGPIPE; were SIGPIPE
    // ignored, yes would loop on EPIPE errors... and report them.
    let o = exec(&["sh", "-c", "yes | head -n 1; grep SigIgn /proc/self/status"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("SigIgn:\t0000000000000000"), "{out}");
}

#[test]
fn version_and_a_missing_command_are_answered() {
    let o = Command::new(BIN).arg("--version").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("sentinel {}\n", env!("CARGO_PKG_VERSION"))
    );
    let o = Command::new(BIN).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--help"));
}
