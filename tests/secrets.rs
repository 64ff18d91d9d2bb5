//! Secrets through the real binary: a service gets its secrets as private
//! files owned by its user (on the host, or in a tmpfs only its mount
//! namespace sees) and as variables only when asked; no output channel of
//! sentinel ever shows a value; loose permissions are refused; sentinel is
//! not dumpable. Checked from inside with the probe, which reports digests,
//! never the bytes.

mod common;
mod httpc;

use common::*;
use httpc::{connect, get};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECS: fn(u64) -> Duration = Duration::from_secs;
/// The secret: a needle no output may contain.
const VALUE: &str = "correct-horse-battery-staple-7f3a9c";
/// An `env` source's value.
const TOKEN: &str = "tok-5e1f0b7d2a-from-the-environment";

/// The probe's `LEN:FNV` of bytes.
fn digest(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}:{h:016x}", bytes.len())
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A folder with the secret file `db` (VALUE and a newline, mode 0600) and
/// a private config: `[supervisor]` with socket and log_dir plus
/// `supervisor_extra`, `[secrets]` with `db` plus `secrets_extra`, then
/// `body`. `{probe}` in `body` is the probe's path.
fn folder(
    tag: &str,
    supervisor_extra: &str,
    secrets_extra: &str,
    body: &str,
) -> (TempDir, PathBuf) {
    let dir = TempDir::new(tag);
    let db = dir.write("db", &format!("{VALUE}\n"));
    chmod(&db, 0o600);
    let text = format!(
        "[supervisor]\nsocket = {:?}\nlog_dir = {:?}\n{supervisor_extra}\n\n\
         [secrets]\ndb = {{ file = \"db\" }}\n{secrets_extra}\n\n{}",
        dir.path("sentinel.sock"),
        dir.path("logs"),
        body.replace("{probe}", &probe().display().to_string())
    );
    let config = dir.write("sentinel.toml", &text);
    chmod(&config, 0o600);
    (dir, config)
}

fn start(tag: &str, secrets_extra: &str, body: &str, prefix: &[&str]) -> Sentinel {
    let (dir, config) = folder(tag, "", secrets_extra, body);
    let socket = dir.path("sentinel.sock");
    Sentinel::start_with(dir, config, socket, prefix)
}

/// A probe service command that reports on its secrets folder, `DB`, and
/// `more` (extra probe arguments), then holds.
fn reporter(more: &str) -> String {
    format!(
        "[\"/bin/sh\", \"-c\", \"exec {{probe}} --env CREDENTIALS_DIRECTORY \
         --stat \\\"$CREDENTIALS_DIRECTORY\\\" --stat \\\"$CREDENTIALS_DIRECTORY/db\\\" \
         --digest \\\"$CREDENTIALS_DIRECTORY/db\\\" --env-digest DB {more} --hold\"]"
    )
}

/// The probe report of `name`'s current run (the last report in its log).
fn report(s: &Sentinel, name: &str) -> std::collections::HashMap<String, String> {
    let out = wait_for(&format!("{name}'s report"), SECS(10), || {
        let out = s.ok(&["logs", name, "-n", "200"]);
        let last = out.rfind("pid=")?;
        out[last..]
            .contains("env-digest.DB=")
            .then(|| out[last..].to_string())
    });
    probe_report(&out)
}

fn get_key<'a>(r: &'a std::collections::HashMap<String, String>, k: &str) -> &'a str {
    r.get(k)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no {k} in {r:?}"))
}

fn pid_of(s: &Sentinel, name: &str) -> i64 {
    s.wait_state(name, "running", SECS(10))["pid"]
        .as_i64()
        .unwrap()
}

fn mode_owner(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

#[test]
fn a_secret_reaches_the_service_as_a_private_file_of_its_user() {
    let mut s = start(
        "files",
        "",
        &format!(
            r#"
[services.web]
command = {}
user = "nobody"
secrets = ["db"]

[services.other]
command = {}
user = "daemon"
"#,
            reporter(""),
            reporter("")
        ),
        &[],
    );
    let runtime = s.dir.0.clone();
    let r = report(&s, "web");
    let dir = runtime.join("credentials/web");
    assert_eq!(
        get_key(&r, "env.CREDENTIALS_DIRECTORY"),
        dir.to_str().unwrap()
    );
    assert_eq!(
        get_key(&r, &format!("stat.{}", dir.display())),
        "0500:65534:65534"
    );
    assert_eq!(
        get_key(&r, &format!("stat.{}/db", dir.display())),
        "0400:65534:65534"
    );
    assert_eq!(
        get_key(&r, &format!("digest.{}/db", dir.display())),
        digest(format!("{VALUE}\n").as_bytes()),
        "the file holds the secret, byte for byte"
    );
    assert_eq!(
        get_key(&r, "env-digest.DB"),
        "unset",
        "no variable unless asked"
    );
    // From outside: the same, and the base lets others through, not list.
    assert_eq!(mode_owner(&dir), (0o500, 65534, 65534));
    assert_eq!(mode_owner(&dir.join("db")).0, 0o400);
    assert_eq!(mode_owner(&runtime.join("credentials")).0, 0o711);

    // A service without secrets (another user) gets no folder and cannot
    // read web's.
    let o = report(&s, "other");
    assert_eq!(get_key(&o, "env.CREDENTIALS_DIRECTORY"), "unset");
    let probe = probe();
    let other = Command::new("setpriv")
        .args(["--reuid=daemon", "--regid=daemon", "--clear-groups"])
        .arg(&probe)
        .arg("--try")
        .arg(format!("read:{}", dir.join("db").display()))
        .output()
        .unwrap();
    let other = String::from_utf8_lossy(&other.stdout).into_owned();
    assert!(
        other.contains(&format!("try.read:{}=EACCES", dir.join("db").display())),
        "{other}"
    );

    // A rotated file is picked up by a restart.
    let db = s.dir.path("db");
    std::fs::write(&db, "rotated\n").unwrap();
    let pid = pid_of(&s, "web");
    s.ok(&["restart", "web"]);
    wait_for("web to run again", SECS(10), || {
        let st = s.service("web");
        (st["state"] == "running" && st["pid"].as_i64() != Some(pid)).then_some(())
    });
    let r = report(&s, "web");
    assert_eq!(
        get_key(&r, &format!("digest.{}/db", dir.display())),
        digest(b"rotated\n")
    );

    // Stopped for good: the folder goes; at shutdown, the base too.
    s.ok(&["stop", "web"]);
    wait_for("web's folder to be removed", SECS(10), || {
        (!dir.exists()).then_some(())
    });
    s.ok(&["shutdown"]);
    assert_eq!(s.wait_exit(SECS(20)), Some(0));
    assert!(!runtime.join("credentials").exists());
}

#[test]
fn variables_only_when_asked_and_sources_never_inherited() {
    let s = start(
        "env",
        "token = { env = \"SENTINEL_T_TOKEN\" }",
        &format!(
            r#"
[services.asks]
command = {}
secret_env = {{ DB = "db", TOKEN = "token" }}

[services.plain]
command = {}
"#,
            reporter("--env-digest TOKEN --env-digest SENTINEL_T_TOKEN"),
            reporter("--env-digest TOKEN --env-digest SENTINEL_T_TOKEN")
        ),
        &["env", &format!("SENTINEL_T_TOKEN={TOKEN}")],
    );
    let a = report(&s, "asks");
    // One trailing newline of the file dropped for the variable.
    assert_eq!(get_key(&a, "env-digest.DB"), digest(VALUE.as_bytes()));
    assert_eq!(get_key(&a, "env-digest.TOKEN"), digest(TOKEN.as_bytes()));
    assert_eq!(get_key(&a, "env-digest.SENTINEL_T_TOKEN"), "unset");
    assert_eq!(
        get_key(&a, "env.CREDENTIALS_DIRECTORY"),
        "unset",
        "no files asked"
    );
    let p = report(&s, "plain");
    for k in [
        "env-digest.DB",
        "env-digest.TOKEN",
        "env-digest.SENTINEL_T_TOKEN",
    ] {
        assert_eq!(get_key(&p, k), "unset", "{k}");
    }
    // Not in the running service's environment as the kernel shows it
    // either, other than under the name it was asked for.
    let pid = pid_of(&s, "plain");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(!String::from_utf8_lossy(&environ).contains(TOKEN));
}

#[test]
fn with_a_mount_namespace_the_folder_exists_only_inside() {
    let s = start(
        "mountns",
        "",
        &format!(
            r#"
[services.vault]
command = {}
user = "nobody"
secrets = ["db"]
isolation = {{ namespaces = ["mount"] }}

[services.jailed]
command = {}
user = "nobody"
secrets = ["db"]
isolation = {{ namespaces = ["user", "mount", "pid"] }}
"#,
            reporter(""),
            reporter("")
        ),
        &[],
    );
    // In a user namespace: root inside, the service's user outside.
    let j = report(&s, "jailed");
    let inside = "/run/credentials/jailed";
    assert_eq!(get_key(&j, "uid"), "0");
    assert_eq!(get_key(&j, &format!("stat.{inside}/db")), "0400:0:0");
    assert_eq!(
        get_key(&j, &format!("digest.{inside}/db")),
        digest(format!("{VALUE}\n").as_bytes())
    );
    let pid = pid_of(&s, "jailed");
    let through = PathBuf::from(format!("/proc/{pid}/root{inside}"));
    assert_eq!(mode_owner(&through), (0o500, 65534, 65534));
    assert_eq!(mode_owner(&through.join("db")), (0o400, 65534, 65534));

    let r = report(&s, "vault");
    let inside = "/run/credentials/vault";
    assert_eq!(get_key(&r, "env.CREDENTIALS_DIRECTORY"), inside);
    assert_eq!(get_key(&r, &format!("stat.{inside}")), "0500:65534:65534");
    assert_eq!(
        get_key(&r, &format!("stat.{inside}/db")),
        "0400:65534:65534"
    );
    assert_eq!(
        get_key(&r, &format!("digest.{inside}/db")),
        digest(format!("{VALUE}\n").as_bytes())
    );
    // Outside: neither the namespace's path nor a host folder.
    assert!(!Path::new(inside).exists());
    assert!(!s.dir.path("credentials").exists());
    // Through the process's own root (root may look), it is there, on a
    // read-only tmpfs.
    let pid = pid_of(&s, "vault");
    let through = PathBuf::from(format!("/proc/{pid}/root{inside}/db"));
    assert_eq!(mode_owner(&through), (0o400, 65534, 65534));
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mounts")).unwrap();
    assert!(
        mounts
            .lines()
            .any(|l| l.starts_with("tmpfs /run/credentials tmpfs ro,")),
        "{mounts}"
    );
}

/// Read an event stream until `what` shows or the deadline passes.
fn read_stream(c: &mut std::net::TcpStream, got: &mut String, what: &str) {
    let deadline = Instant::now() + SECS(15);
    let mut buf = [0u8; 8192];
    while !got.contains(what) {
        assert!(Instant::now() < deadline, "no {what:?} in {got}");
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "stream closed: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[test]
fn no_output_channel_shows_a_secret() {
    let (dir, config) = folder(
        "channels",
        "echo_logs = true",
        "token = { env = \"SENTINEL_T_TOKEN\" }\nloose = { file = \"loose\" }",
        &format!(
            r#"
[http]
listen = "127.0.0.1:0"
metrics_file = "metrics.prom"
metrics_interval = "1s"

[services.web]
command = {}
user = "nobody"
secrets = ["db"]
secret_env = {{ DB = "db", TOKEN = "token" }}

[services.vault]
command = {}
secrets = ["db", "token"]
secret_env = {{ DB = "db" }}
isolation = {{ namespaces = ["mount"] }}

[services.loosened]
command = ["sleep", "1000"]
secrets = ["loose"]
backoff = {{ initial = "5s" }}
"#,
            reporter("--env-digest TOKEN"),
            reporter("")
        ),
    );
    let loose = dir.write("loose", &format!("{VALUE}-loose\n"));
    chmod(&loose, 0o600);
    let socket = dir.path("sentinel.sock");
    let s = Sentinel::start_with(
        dir,
        config.clone(),
        socket,
        &["env", &format!("SENTINEL_T_TOKEN={TOKEN}")],
    );
    let addr: std::net::SocketAddr = wait_for("the http listener", SECS(10), || {
        let err = s.stderr();
        let rest = &err[err.find("listening on http://")? + "listening on http://".len()..];
        rest[..rest.find('/')?].parse().ok()
    });

    // The services did receive the secrets.
    let w = report(&s, "web");
    let cd = get_key(&w, "env.CREDENTIALS_DIRECTORY").to_string();
    assert_eq!(
        get_key(&w, &format!("digest.{cd}/db")),
        digest(format!("{VALUE}\n").as_bytes())
    );
    assert_eq!(get_key(&w, "env-digest.DB"), digest(VALUE.as_bytes()));
    assert_eq!(get_key(&w, "env-digest.TOKEN"), digest(TOKEN.as_bytes()));
    let v = report(&s, "vault");
    assert_eq!(get_key(&v, "env-digest.DB"), digest(VALUE.as_bytes()));

    // An event stream open while things happen.
    let mut sse = connect(addr);
    sse.write_all(b"GET /api/v1/events?logs=* HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut events = String::new();
    read_stream(&mut sse, &mut events, "event: snapshot");

    // A secret file loosened after start: the restart is refused, and the
    // error names the file and its mode.
    s.wait_state("loosened", "running", SECS(10));
    chmod(&loose, 0o644);
    s.ok(&["restart", "loosened"]);
    let st = wait_for("the refused start", SECS(10), || {
        let st = s.service("loosened");
        st["last_error"].as_str().map(str::to_string)
    });
    assert_eq!(
        st,
        format!(
            "secret \"loose\": {} is mode 0644, open to group or others; run chmod 600 {} \
             (or set allow_insecure_permissions = true in [supervisor])",
            loose.display(),
            loose.display()
        )
    );
    read_stream(&mut sse, &mut events, "\"name\":\"loosened\"");
    // web's new run reports again: its lines go out as log events.
    s.ok(&["restart", "web"]);
    read_stream(&mut sse, &mut events, "env-digest.DB=");
    read_stream(&mut sse, &mut events, "event: stats");

    // Every channel, while the secrets are in use.
    let mut channels: Vec<(String, String)> = vec![
        ("status".into(), s.ok(&["status"])),
        ("status --json".into(), s.ok(&["status", "--json"])),
        ("stats".into(), s.ok(&["stats", "web"])),
        ("events".into(), events),
    ];
    for name in ["web", "vault", "loosened"] {
        channels.push((format!("logs {name}"), s.ok(&["logs", name, "-n", "1000"])));
        channels.push((
            format!("logs {name} --json"),
            s.ok(&["logs", name, "-n", "1000", "--json"]),
        ));
    }
    for path in [
        "/",
        "/metrics",
        "/healthz",
        "/readyz",
        "/api/v1/services",
        "/api/v1/services/web",
        "/api/v1/services/vault",
        "/api/v1/services/loosened",
        "/api/v1/services/web/logs?lines=1000",
        "/api/v1/services/vault/logs?lines=1000",
        "/api/v1/stats/web",
    ] {
        let r = get(addr, path);
        channels.push((format!("GET {path}"), format!("{}{}", r.head, r.body)));
    }
    let check = Command::new(BIN)
        .args(["check", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // It names the loosened file (and only its path).
    assert_eq!(check.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&check.stderr).contains("secrets.loose.file: secret file"));
    channels.push((
        "check".into(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        ),
    ));
    let mut s = s;
    s.ok(&["shutdown"]);
    assert_eq!(s.wait_exit(SECS(20)), Some(0));
    channels.push(("sentinel stdout".into(), s.stdout()));
    channels.push(("sentinel stderr".into(), s.stderr()));
    for entry in std::fs::read_dir(s.dir.path("logs")).unwrap() {
        let p = entry.unwrap().path();
        channels.push((p.display().to_string(), read(&p)));
    }
    channels.push(("metrics file".into(), read(&s.dir.path("metrics.prom"))));

    // The channels carry what they should (the check would be empty
    // otherwise), and never a value.
    let stderr = &channels
        .iter()
        .find(|(n, _)| n == "sentinel stderr")
        .unwrap()
        .1;
    assert!(
        stderr.contains("loosened: failed to start: secret \"loose\""),
        "{stderr}"
    );
    let stdout = &channels
        .iter()
        .find(|(n, _)| n == "sentinel stdout")
        .unwrap()
        .1;
    assert!(stdout.contains("env-digest.DB="), "echoed logs: {stdout}");
    assert!(channels
        .iter()
        .any(|(n, t)| n == "GET /metrics" && t.contains("sentinel_service_up")));
    for (name, text) in &channels {
        for needle in [VALUE, TOKEN] {
            assert!(!text.contains(needle), "{name} shows a secret:\n{text}");
        }
    }
    // Stopped: nothing left on the host.
    assert!(!s.dir.path("credentials").exists());
}

#[test]
fn loose_permissions_are_refused_with_the_fix() {
    let (dir, config) = folder(
        "perms",
        "",
        "",
        "[services.web]\ncommand = [\"true\"]\nsecrets = [\"db\"]\n",
    );
    let check = || {
        let o = Command::new(BIN)
            .args(["check", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(check().0, Some(0));

    let db = dir.path("db");
    chmod(&db, 0o644);
    let (code, err) = check();
    assert_eq!(code, Some(2));
    assert!(
        err.contains(&format!(
            "secrets.db.file: secret file {} is mode 0644, open to group or others; run chmod 600 {}",
            db.display(),
            db.display()
        )),
        "{err}"
    );
    assert!(err.contains("allow_insecure_permissions = true"), "{err}");
    assert!(!err.contains(VALUE));
    chmod(&db, 0o600);

    chmod(&config, 0o644);
    let (code, err) = check();
    assert_eq!(code, Some(2));
    assert!(
        err.contains(&format!(
            "{}: secrets: this file declares secrets and is mode 0644, open to group or others; \
             run chmod 600 {}",
            config.display(),
            config.display()
        )),
        "{err}"
    );
    // `run` refuses it the same way, before starting anything.
    let o = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("this file declares secrets"));

    // The key allows both.
    chmod(&db, 0o644);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "[supervisor]\n",
            "[supervisor]\nallow_insecure_permissions = true\n",
        ),
    )
    .unwrap();
    assert_eq!(check(), (Some(0), String::new()));
}

#[test]
fn sentinel_is_not_dumpable_with_secrets() {
    // As an unprivileged user, so that the owner of /proc/PID/environ tells:
    // the user's own when dumpable, root's when not.
    let run_as_nobody = |tag: &str, with_secrets: bool, isolation: &str| -> (u32, String) {
        let (dir, config) = folder(
            tag,
            "",
            "",
            &format!(
                "[services.web]\ncommand = [\"sleep\", \"1000\"]\n{isolation}\n{}",
                if with_secrets {
                    "secrets = [\"db\"]\n"
                } else {
                    ""
                }
            ),
        );
        if !with_secrets {
            // The same config without the [secrets] table.
            let text = std::fs::read_to_string(&config).unwrap();
            let text = text.replace("[secrets]\ndb = { file = \"db\" }\n", "");
            std::fs::write(&config, text).unwrap();
        }
        for p in [dir.0.clone(), config.clone(), dir.path("db")] {
            std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        }
        let socket = dir.path("sentinel.sock");
        let s = Sentinel::start_with(
            dir,
            config,
            socket,
            &[
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ],
        );
        s.wait_state("web", "running", SECS(10));
        let owner = std::fs::metadata(format!("/proc/{}/environ", s.pid()))
            .unwrap()
            .uid();
        (owner, s.stderr())
    };
    assert_eq!(run_as_nobody("nodump", false, "").0, 65534);
    assert_eq!(run_as_nobody("dump", true, "").0, 0);
    // Not root, and a service with a user namespace, whose maps sentinel
    // writes: it stays dumpable, and says so.
    let (owner, err) = run_as_nobody(
        "dumpuserns",
        true,
        "isolation = { namespaces = [\"user\", \"mount\"] }",
    );
    assert_eq!(owner, 65534);
    assert!(err.contains("warning: sentinel stays dumpable"), "{err}");
}
