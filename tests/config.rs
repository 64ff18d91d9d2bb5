//! `sentinel check` on the example configs and on a broken one: the real
//! binary, its exit code and what it prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn check(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args(["check", "-c"])
        .arg(config)
        .output()
        .expect("run sentinel")
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn example_toml_is_valid() {
    let out = check(&example("sentinel.toml"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("ok, 4 services"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn example_yaml_is_valid_or_clearly_refused() {
    let out = check(&example("sentinel.yaml"));
    if cfg!(feature = "yaml") {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("ok, 4 services"));
    } else {
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).contains("cargo feature `yaml`"));
    }
}

/// Every config in examples/ passes `check`, so none of them rots.
#[test]
fn every_example_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        // Not a sentinel config: the Kubernetes manifest of the container example.
        if path.file_name().is_some_and(|n| n == "kubernetes.yaml") {
            continue;
        }
        let yaml = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => false,
            Some("yaml" | "yml") => true,
            _ => continue,
        };
        if yaml && !cfg!(feature = "yaml") {
            continue;
        }
        let out = check(&path);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            text(&out.stderr)
        );
        checked.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    assert!(checked.iter().any(|n| n == "scaling.toml"), "{checked:?}");
}

#[test]
fn every_mistake_is_named_with_its_line() {
    let dir = std::env::temp_dir().join(format!("sentinel-check-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        r#"[supervisor]
shutdown_timeout = "30s"

[services.web]
comand = ["/srv/web"]
restart = "sometimes"

[services.worker]
command = ["/srv/worker"]
backoff = { initial = "1s", factor = 0.5 }
"#,
    )
    .unwrap();
    let out = check(&path);
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let p = path.display();
    assert_eq!(
        lines,
        [
            format!("{p}:5:1: services.web.comand: unknown key; did you mean \"command\"?"),
            format!(
                "{p}:6:11: services.web.restart: unknown value \"sometimes\"; \
                 expected one of: always, on-failure, never"
            ),
            format!(
                "{p}:10:38: services.worker.backoff.factor: 0.5 would shrink the delay; \
                 use a number of at least 1 (1 keeps it constant)"
            ),
            "3 problem(s) found".to_string(),
        ],
        "{stderr}"
    );
}

#[test]
fn example_isolation_is_valid() {
    for name in ["isolation.toml", "isolation.yaml"] {
        if name.ends_with(".yaml") && !cfg!(feature = "yaml") {
            continue;
        }
        let out = check(&example(name));
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("ok, 2 services"),
            "{}",
            text(&out.stdout)
        );
    }
}

#[test]
fn every_isolation_mistake_is_named_with_its_line() {
    let dir = std::env::temp_dir().join(format!("sentinel-check-iso-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("iso.toml");
    std::fs::write(
        &path,
        r#"[supervisor]
cgroup_root = "a//b"

[slices.batch]
parent = "batch"

[services.web]
command = ["/srv/web"]
slice = "bacth"
limits = { memory_max = "24M", memory_high = "32M", cpu_max = "3s/10s", cpu_weight = 0 }
nice = 20
ionice = "idle:3"
oom_score_adjust = -1001
rlimits = { nofile = "4096:1024", stak = "8M" }
user = "www-data:"
supplementary_groups = ["adm", "a b"]

[services.web.isolation]
namespaces = ["pid", "network", "time"]
hostname = "box"
uid_map = ["0 100000"]
read_only_paths = ["etc"]
root = "/nonexistent/rootfs"
capabilities = ["NET_BIND_SERVICE", "CAP_SYS_ADMN"]
seccomp = { action = "kill", allow = ["ptrace"], deny = ["Mount", { syscall = "socket", args = [{ index = 0, op = "masked_eq", value = 1 }] }] }
"#,
    )
    .unwrap();
    let out = check(&path);
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let p = path.display();
    let expected = [
        "2:15: supervisor.cgroup_root: \"a//b\" has an empty part",
        "5:10: slices.batch.parent: slice \"batch\" is its own parent",
        "9:9: services.web.slice: unknown slice \"bacth\"; did you mean \"batch\"?",
        "10:46: services.web.limits.memory_high: memory_high (32M) is above memory_max (24M)",
        "10:63: services.web.limits.cpu_max: the cpu period in \"3s/10s\" must be from 1ms to 1s",
        "10:86: services.web.limits.cpu_weight: 0 is out of range; use a whole number from 1 to 10000",
        "11:8: services.web.nice: 20 is out of range; use a whole number from -20 to 19",
        "12:10: services.web.ionice: the idle class has no level; write \"idle\"",
        "13:20: services.web.oom_score_adjust: -1001 is out of range",
        "14:22: services.web.rlimits.nofile: the soft limit is above the hard one",
        "14:35: services.web.rlimits.stak: unknown key; did you mean \"stack\"?",
        "15:8: services.web.user: empty group in \"www-data:\"",
        "16:32: services.web.supplementary_groups[1]: ' ' cannot be part of a user or group name",
        "19:33: services.web.isolation.namespaces[2]: unknown namespace \"time\"; use any of: pid, net, mount, ipc, uts, user, cgroup",
        "20:1: services.web.isolation.hostname: a hostname of its own needs the uts namespace; add \"uts\"",
        "21:12: services.web.isolation.uid_map[0]: invalid id map \"0 100000\"",
        "22:1: services.web.isolation.read_only_paths: `read_only_paths` needs the mount namespace; add \"mount\"",
        "22:20: services.web.isolation.read_only_paths[0]: \"etc\" is relative",
        "23:1: services.web.isolation.root: a new root needs the mount namespace",
        "23:8: services.web.isolation.root: \"/nonexistent/rootfs\": No such file or directory",
        "24:37: services.web.isolation.capabilities[1]: unknown capability \"CAP_SYS_ADMN\"; did you mean \"CAP_SYS_ADMIN\"?",
        "25:13: services.web.isolation.seccomp.action: `action` is for syscalls outside a profile's allow-list",
        "25:30: services.web.isolation.seccomp.allow: `allow` adds to a profile's allow-list",
        "25:58: services.web.isolation.seccomp.deny[0]: 'M' cannot be part of a syscall name",
        "25:97: services.web.isolation.seccomp.deny[1].args[0]: op \"masked_eq\" needs a mask",
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), expected.len() + 1, "{stderr}");
    for (line, want) in lines.iter().zip(expected) {
        let want = format!("{p}:{want}");
        assert!(
            line.starts_with(&want),
            "{line}\n  should start with\n{want}\n\n{stderr}"
        );
    }
    assert_eq!(
        lines.last().copied(),
        Some(format!("{} problem(s) found", expected.len()).as_str())
    );
}

#[test]
fn example_stack_is_valid() {
    for name in ["stack.toml", "stack.yaml"] {
        if name.ends_with(".yaml") && !cfg!(feature = "yaml") {
            continue;
        }
        let out = check(&example(name));
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("ok, 4 services"),
            "{}",
            text(&out.stdout)
        );
    }
}

#[test]
fn a_dependency_cycle_and_other_lifecycle_mistakes_are_named() {
    let dir = std::env::temp_dir().join(format!("sentinel-check-life-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stack.toml");
    std::fs::write(
        &path,
        r#"[services.a]
command = ["/bin/true"]
depends_on = { b = "ready" }

[services.b]
command = ["/bin/true"]
depends_on = ["c"]
every = "1h"

[services.c]
command = ["/bin/true"]
depends_on = { a = "started", db = "healthy" }

[services.db]
command = ["/bin/true"]
health = { http = "https://127.0.0.1:5432/" }
"#,
    )
    .unwrap();
    let out = check(&path);
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let p = path.display();
    let expected = [
        "3:16: services.a.depends_on: dependency cycle: a -> b -> c -> a; none of them could ever start",
        "8:1: services.b.every: `every` repeats a one-shot task, and this service is long-running; add type = \"oneshot\"",
        "16:19: services.db.health.http: \"https://127.0.0.1:5432/\": https is not supported",
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), expected.len() + 1, "{stderr}");
    for (line, want) in lines.iter().zip(expected) {
        let want = format!("{p}:{want}");
        assert!(
            line.starts_with(&want),
            "{line}\n  should start with\n{want}\n\n{stderr}"
        );
    }
    assert_eq!(lines.last().copied(), Some("3 problem(s) found"));
}
