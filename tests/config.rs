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
