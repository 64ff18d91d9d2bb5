//! OCI bundles end to end: a tiny image built with `umoci` (Debian's
//! `umoci`) from a busybox-static root file system, unpacked into a fresh
//! bundle, its config.json edited, and run as a sentinel service. The
//! checks are made from inside the service: hostname, uid, the root file
//! system, the read-only root, env and cwd. `sentinel check` lists the
//! fields it does not honour and names a broken config.json.

mod common;
mod httpc;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// What the image's command prints, one `key=value` a line, then `done`.
const REPORT: &str = "\
echo hostname=$(busybox hostname); \
echo uid=$(busybox id -u) gid=$(busybox id -g); \
echo marker=$(busybox cat /marker); \
echo etc=$(busybox ls -d /etc 2>/dev/null || echo absent); \
echo cwd=$(busybox pwd); \
echo app=$APP extra=$EXTRA home=${HOME:-unset}; \
echo pid=$$; \
echo write=$( (echo x > /written) 2>&1 | busybox grep -o 'Read-only file system' || echo ok); \
echo devnull=$( (echo x > /dev/null && echo ok) 2>&1); \
echo done; \
exec busybox sleep 1000";

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn umoci(dir: &Path, args: &[&str]) {
    run(Command::new("umoci").args(args).current_dir(dir));
}

/// Whether umoci and busybox-static are here (skip, or fail when
/// SENTINEL_REQUIRE_TOOLS is set).
fn tools() -> bool {
    let busybox = Path::new("/bin/busybox").exists();
    if !busybox {
        assert!(
            std::env::var_os("SENTINEL_REQUIRE_TOOLS").is_none(),
            "busybox-static is not installed (scripts/test installs it)"
        );
        eprintln!("SKIPPED: /bin/busybox (busybox-static) is not installed");
    }
    busybox && httpc::have_tool("umoci")
}

/// Build the image `img:t` in `dir` — busybox and a marker file on an
/// empty base, the report as its command, uid 1000, env and a working
/// folder — and unpack it into `dir/bundle` (through the image, not the
/// staging folder). Returns the bundle.
fn build_bundle(dir: &TempDir) -> PathBuf {
    let d = &dir.0;
    umoci(d, &["init", "--layout", "img"]);
    umoci(d, &["new", "--image", "img:t"]);
    umoci(d, &["unpack", "--image", "img:t", "stage"]);
    let rootfs = d.join("stage/rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::fs::write(rootfs.join("marker"), "from-the-image\n").unwrap();
    umoci(d, &["repack", "--image", "img:t", "stage"]);
    umoci(
        d,
        &[
            "config",
            "--image",
            "img:t",
            "--config.user",
            "1000:1000",
            "--config.env",
            "APP=from-image",
            "--config.workingdir",
            "/work",
            "--config.cmd",
            "/bin/busybox",
            "--config.cmd",
            "sh",
            "--config.cmd",
            "-c",
            "--config.cmd",
            REPORT,
        ],
    );
    umoci(d, &["unpack", "--image", "img:t", "bundle"]);
    let bundle = d.join("bundle");
    edit(&bundle, |c| {
        c["hostname"] = "oci-box".into();
        c["root"]["readonly"] = true.into();
    });
    bundle
}

/// Rewrite the bundle's config.json.
fn edit(bundle: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = bundle.join("config.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut c);
    std::fs::write(&path, serde_json::to_string_pretty(&c).unwrap()).unwrap();
}

fn check(config: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_image_runs_as_a_service_in_its_own_root() {
    if !tools() {
        return;
    }
    let img = TempDir::new("oci-image");
    let bundle = build_bundle(&img);
    let s = Sentinel::start(
        "oci-run",
        "",
        &format!(
            "[services.web]\nbundle = {:?}\nenv = {{ EXTRA = \"from-service\" }}\nrestart = \"never\"\n",
            bundle
        ),
    );
    let log = s.dir.path("logs/web.log");
    let text = wait_for("the image's report", SECS(20), || {
        let t = read(&log);
        if s.service("web")["state"] == "failed" {
            panic!("web failed:\n{}\n{}", s.stderr(), t);
        }
        t.contains("done").then_some(t)
    });
    let r = probe_report(&text);
    let get = |k: &str| r.get(k).map(String::as_str).unwrap_or("<missing>");
    assert_eq!(get("hostname"), "oci-box", "{text}");
    assert_eq!(get("uid"), "1000 gid=1000", "{text}");
    assert_eq!(
        get("marker"),
        "from-the-image",
        "the root is the image's: {text}"
    );
    assert_eq!(get("etc"), "absent", "the host's /etc is not there: {text}");
    assert_eq!(get("cwd"), "/work", "{text}");
    assert_eq!(
        get("app"),
        "from-image extra=from-service home=unset",
        "image env under the service's, not sentinel's own: {text}"
    );
    assert_eq!(get("pid"), "1", "a pid namespace from the bundle: {text}");
    assert_eq!(get("write"), "Read-only file system", "{text}");
    assert_eq!(get("devnull"), "ok", "the minimal /dev works: {text}");
    let stderr = s.stderr();
    assert!(
        stderr.contains("warning: ") && stderr.contains("config.json field process.terminal"),
        "run logs the bundle's warnings:\n{stderr}"
    );
}

#[test]
fn check_lists_unsupported_fields_and_names_a_broken_file() {
    if !tools() {
        return;
    }
    let img = TempDir::new("oci-check");
    let bundle = build_bundle(&img);
    edit(&bundle, |c| {
        c["linux"]["seccomp"] = serde_json::json!({ "defaultAction": "SCMP_ACT_ERRNO" });
    });
    let config = img.write("sentinel.toml", "[services.web]\nbundle = \"bundle\"\n");
    let (code, stdout, stderr) = check(&config);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ok, 1 services"), "{stdout}");
    let line = format!(
        "warning: {}:2:10: services.web.bundle: bundle bundle: config.json field linux.seccomp \
         is not supported (sentinel's own seccomp keys apply: isolation.seccomp); ignored",
        config.display()
    );
    assert!(
        stderr.lines().any(|l| l == line),
        "no\n{line}\nin\n{stderr}"
    );

    // A broken file: named with the line and column of the mistake.
    let json = bundle.join("config.json");
    let text = std::fs::read_to_string(&json).unwrap();
    std::fs::write(&json, text.replacen("\"process\": {", "\"process\": {,", 1)).unwrap();
    let (code, _, stderr) = check(&config);
    assert_eq!(code, 2, "{stderr}");
    let want = format!(
        "{}:2:10: services.web.bundle: {}:",
        config.display(),
        json.display()
    );
    assert!(stderr.starts_with(&want), "{stderr}");
    assert!(stderr.contains("OCI runtime-spec config.json"), "{stderr}");
}

#[test]
fn the_container_example_passes_check() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/container.toml");
    let (code, stdout, stderr) = check(&example);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ok, 2 services"), "{stdout}");
    assert!(stderr.is_empty(), "{stderr}");
}
