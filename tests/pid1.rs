//! sentinel as PID 1 of a pid namespace (`unshare --pid --fork --mount-proc`):
//! reaping adopted orphans, and shutdown on SIGTERM with the right code.

mod common;

use common::*;
use std::time::Duration;

/// The pid (in our namespace) of sentinel under `unshare`'s fork.
fn inner_pid(unshare_pid: u32) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// Zombie children of `pid`.
fn zombies_of(pid: u32) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name();
        let Some(p) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let rest: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if rest.len() > 2 && rest[0] == "Z" && rest[1] == pid.to_string() {
            n += 1;
        }
    }
    n
}

#[test]
fn pid1_in_a_namespace_reaps_orphans_and_shuts_down_on_sigterm() {
    if std::process::Command::new("unshare")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("unshare (util-linux) is required; scripts/test installs it");
    }
    let dir = TempDir::new("pid1");
    let socket = dir.path("s.sock");
    let done = dir.path("spawned");
    let config = dir.write(
        "sentinel.toml",
        &format!(
            r#"
[supervisor]
socket = {socket:?}
[services.orphaner]
# 1000 double-forked children: each `sh -c` exits at once and leaves its
# `sleep` to PID 1 (sentinel), which must reap it when it exits.
command = ["sh", "-c", "i=0; while [ $i -lt 1000 ]; do sh -c 'sleep 0.3 &'; i=$((i+1)); done; touch {done}; exec sleep 1000"]
restart = "never"
[services.other]
command = ["sleep", "1000"]
"#,
            done = done.display()
        ),
    );
    let mut s = Sentinel::start_with(
        dir,
        config,
        socket,
        &["unshare", "--pid", "--fork", "--mount-proc"],
    );
    let st = s.status();
    assert_eq!(st["supervisor"]["role"], "namespace-init", "{st}");
    assert_eq!(st["supervisor"]["pid"], 1, "{st}");
    wait_for("1000 orphans spawned", Duration::from_secs(60), || {
        done.exists().then_some(())
    });
    let reaped = wait_for("1000 orphans reaped", Duration::from_secs(30), || {
        let n = s.status()["supervisor"]["orphans_reaped"].as_u64().unwrap();
        // The `sh -c`s are the service's own children; the sleeps are orphans.
        (n >= 1000).then_some(n)
    });
    assert!(reaped >= 1000);
    let inner = inner_pid(s.pid()).expect("sentinel under unshare");
    wait_for("no zombies", Duration::from_secs(10), || {
        (zombies_of(inner) == 0).then_some(())
    });
    assert_eq!(s.service("orphaner")["state"], "running");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(inner as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(s.wait_exit(Duration::from_secs(30)), Some(0));
    assert!(
        s.stderr().contains("SIGTERM: stopping all services"),
        "{}",
        s.stderr()
    );
}
