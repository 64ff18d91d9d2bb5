//! Isolation on this host (namespaces, identity, capabilities, seccomp,
//! priorities), checked from inside with the probe. cgroup limits need a
//! kernel with controllers: they are tested in the VM rig (tests/vm/).

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn exec_isolates_one_command_as_flags_say() {
    let o = Command::new(BIN)
        .args([
            "exec",
            "--unshare",
            "pid,net,mount,ipc,uts",
            "--hostname",
            "box",
            "--user",
            "nobody",
            "--nice",
            "10",
            "--ionice",
            "idle",
            "--oom-score-adjust",
            "250",
            "--rlimit",
            "nofile=64:128",
            "--seccomp",
            "default",
            "--seccomp-deny",
            "mkdir",
            "--cap-keep",
            "CAP_NET_BIND_SERVICE",
            "--ro",
            "/usr",
            "--hide",
            "/root",
            "--tmpfs",
            "/mnt",
            "--",
        ])
        .arg(probe())
        .args([
            "--try",
            "write:/usr",
            "--try",
            "read:/root",
            "--try",
            "mkdir:/mnt/x",
            "--try",
            "write:/mnt",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = probe_report(&out);
    let want = [
        ("pid", "1"),
        ("uid", "65534"),
        ("gid", "65534"),
        ("hostname", "box"),
        ("interfaces", "lo"),
        ("nice", "10"),
        ("ioprio", &(3 << 13).to_string()),
        ("oom_score_adj", "250"),
        ("nofile", "64:128"),
        ("NoNewPrivs", "1"),
        ("Seccomp", "2"),
        ("CapEff", "0000000000000400"),
        ("CapBnd", "0000000000000400"),
        ("CapAmb", "0000000000000400"),
        ("try.write:/usr", "EROFS"),
        ("try.read:/root", "EACCES"),
        ("try.mkdir:/mnt/x", "EPERM"),
        ("try.write:/mnt", "ok"),
    ];
    for (k, v) in want {
        assert_eq!(r.get(k).map(String::as_str), Some(v), "{k} in\n{out}");
    }
}

#[test]
fn exec_refuses_what_it_cannot_apply_with_a_clear_error() {
    let run = |args: &[&str]| {
        let o = Command::new(BIN)
            .arg("exec")
            .args(args)
            .args(["--", "true"])
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--user", "no-such-user-xyz"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("unknown user \"no-such-user-xyz\": not in /etc/passwd"),
        "{err}"
    );
    let (code, err) = run(&[
        "--nice",
        "40",
        "--cpu-max",
        "lots",
        "--unshare",
        "pid,bogus",
    ]);
    assert_eq!(code, Some(2));
    for want in [
        "--nice: 40 is out of range",
        "--cpu-max:",
        "--unshare: unknown namespace \"bogus\"",
    ] {
        assert!(err.contains(want), "{want} in {err}");
    }
    let (code, err) = run(&["--seccomp-deny", "mkdri"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("mkdri") && err.contains("mkdir"), "{err}");
    // This host's cgroup v2 has no controllers: a limit is an error unless optional.
    if !std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .unwrap_or_default()
        .contains("memory")
    {
        let (code, err) = run(&["--memory-max", "64M"]);
        assert_eq!(code, Some(2));
        assert!(err.contains("--limits-optional"), "{err}");
        let (code, err) = run(&["--memory-max", "64M", "--limits-optional"]);
        assert_eq!(code, Some(0), "{err}");
        assert!(err.contains("warning"), "{err}");
    }
}

#[test]
fn a_service_gets_its_isolation_and_a_missing_binary_is_named() {
    let probe = probe();
    let s = Sentinel::start(
        "isolated",
        "",
        &format!(
            r#"
[services.jail]
command = [{probe:?}, "--try", "write:/etc", "--try", "socket:netlink", "--hold"]
user = "nobody"
nice = 3
ionice = "best-effort:6"
rlimits = {{ nofile = 100 }}
isolation = {{ namespaces = ["pid", "net", "mount", "uts", "ipc"], hostname = "jail", read_only_paths = ["/etc"], capabilities = [], seccomp = {{ profile = "strict" }} }}

[services.ghost]
command = ["/no/such/binary"]
user = "nobody"
restart = "never"
"#
        ),
    );
    s.wait_state("jail", "running", Duration::from_secs(10));
    let out = wait_for("the probe's report", Duration::from_secs(10), || {
        let out = s.ok(&["logs", "jail", "-n", "100"]);
        out.contains("try.socket:netlink").then_some(out)
    });
    let r = probe_report(&out);
    for (k, v) in [
        ("pid", "1"),
        ("uid", "65534"),
        ("hostname", "jail"),
        ("interfaces", "lo"),
        ("nice", "3"),
        ("ioprio", &((2 << 13) | 6).to_string()),
        ("nofile", "100:100"),
        ("NoNewPrivs", "1"),
        ("Seccomp", "2"),
        ("CapEff", "0000000000000000"),
        ("CapBnd", "0000000000000000"),
        ("try.write:/etc", "EROFS"),
        ("try.socket:netlink", "EPERM"),
    ] {
        assert_eq!(r.get(k).map(String::as_str), Some(v), "{k} in\n{out}");
    }
    let ghost = s.wait_state("ghost", "failed", Duration::from_secs(10));
    assert_eq!(
        ghost["last_error"],
        "execve(/no/such/binary): No such file or directory"
    );
}

#[test]
fn an_unknown_user_stops_startup_with_the_service_named() {
    let dir = TempDir::new("baduser");
    let cfg = dir.write(
        "s.toml",
        &format!(
            "[supervisor]\nsocket = {:?}\n[services.web]\ncommand = [\"true\"]\nuser = \"no-such-user-xyz\"\n",
            dir.path("s.sock")
        ),
    );
    let o = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("service web: unknown user \"no-such-user-xyz\": not in /etc/passwd"),
        "{err}"
    );
}

#[test]
fn check_names_an_unknown_syscall() {
    let dir = TempDir::new("check-seccomp");
    let cfg = dir.write(
        "s.toml",
        "[services.a]\ncommand = [\"true\"]\nisolation = { seccomp = { deny = [\"mkdri\"] } }\n",
    );
    let o = Command::new(BIN)
        .args(["check", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("services.a.isolation.seccomp: unknown syscall \"mkdri\"")
            && err.contains("did you mean \"mkdir\"?"),
        "{err}"
    );
}

#[test]
fn without_clone3_the_fork_path_isolates_too_and_refuses_a_pid_namespace() {
    let o = Command::new(BIN)
        .env("SENTINEL_NO_CLONE3", "1")
        .args([
            "exec",
            "--unshare",
            "net,uts,mount",
            "--hostname",
            "forked",
            "--ro",
            "/usr",
            "--",
        ])
        .arg(probe())
        .args(["--try", "write:/usr"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = probe_report(&out);
    assert_eq!(r["hostname"], "forked");
    assert_eq!(r["interfaces"], "lo");
    assert_eq!(r["try.write:/usr"], "EROFS");
    let o = Command::new(BIN)
        .env("SENTINEL_NO_CLONE3", "1")
        .args(["exec", "--unshare", "pid", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(126));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("pid and user namespaces need clone3"), "{err}");
}

#[test]
fn root_pivots_into_a_folder() {
    let busybox = std::path::Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "busybox-static is required; scripts/test installs it"
    );
    let dir = TempDir::new("rootfs");
    for d in ["bin", "proc", "dev", "tmp"] {
        std::fs::create_dir_all(dir.path(d)).unwrap();
    }
    std::fs::copy(busybox, dir.path("bin/busybox")).unwrap();
    std::fs::write(dir.path("marker"), "inside the new root\n").unwrap();
    let o = Command::new(BIN)
        .args(["exec", "--unshare", "pid,mount", "--root"])
        .arg(&dir.0)
        .args([
            "--",
            "/bin/busybox",
            "sh",
            "-c",
            "/bin/busybox cat /marker; echo pid=$$; /bin/busybox ls /",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.starts_with("inside the new root\npid=1\n"), "{out}");
    assert!(!out.contains("usr"), "the host's root is visible: {out}");
}
