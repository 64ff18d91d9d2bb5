//! Reading each source, the permission rule at start, the host folder's
//! layout, and that no message carries a value.

use super::*;
use std::os::unix::fs::MetadataExt;

const VALUE: &str = "hunter2-s3cret";

/// A fresh folder for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("sentinel-secrets-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Write `name` with `mode`.
    fn file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = remove_host_dir(&self.0.join("run/credentials/web"));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Load `text` (written 0600) as a config.
fn config(dir: &TempDir, text: &str) -> Config {
    let p = dir.file("sentinel.toml", text, 0o600);
    crate::config::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

fn plan() -> sys::spawn::Plan {
    sys::spawn::Plan::new(&["true".to_string()], &[], None, sys::spawn::Session::New).unwrap()
}

#[test]
fn a_file_is_read_as_is_when_private() {
    let d = TempDir::new("file");
    let p = d.file("db", &format!("{VALUE}\n"), 0o600);
    assert_eq!(
        read_file(&p, false).unwrap().expose(),
        format!("{VALUE}\n").as_bytes()
    );
    let p = d.file("loose", VALUE, 0o644);
    let e = read_file(&p, false).unwrap_err();
    assert_eq!(
        e,
        format!(
            "{} is mode 0644, open to group or others; run chmod 600 {} \
             (or set allow_insecure_permissions = true in [supervisor])",
            p.display(),
            p.display()
        )
    );
    assert_eq!(read_file(&p, true).unwrap().expose(), VALUE.as_bytes());
    let e = read_file(&d.0.join("missing"), false).unwrap_err();
    assert!(e.ends_with("/missing: No such file or directory"), "{e}");
    let e = read_file(&d.0, false).unwrap_err();
    assert!(e.ends_with("is not a regular file"), "{e}");
}

#[test]
fn each_source_and_its_errors_name_the_source_not_the_value() {
    let d = TempDir::new("sources");
    let creds = TempDir::new("creds");
    creds.file("api", VALUE, 0o400);
    d.file("db", VALUE, 0o600);
    let cfg = config(
        &d,
        "[secrets]\n\
         db = { file = \"db\" }\n\
         token = { env = \"SENTINEL_TEST_TOKEN\" }\n\
         unset = { env = \"SENTINEL_TEST_UNSET\" }\n\
         api = { credential = \"api\" }\n\
         [services.web]\ncommand = [\"true\"]\n",
    );
    let env = vec![
        ("SENTINEL_TEST_TOKEN".to_string(), OsString::from(VALUE)),
        (
            CREDENTIALS_VAR.to_string(),
            creds.0.clone().into_os_string(),
        ),
    ];
    let store = Store::with_env(&cfg, &d.0, env);
    for name in ["db", "token", "api"] {
        assert_eq!(
            store.read(name).unwrap().expose(),
            VALUE.as_bytes(),
            "{name}"
        );
    }
    let e = store.read("unset").unwrap_err();
    assert!(
        e.starts_with("secret \"unset\": environment variable SENTINEL_TEST_UNSET was not set"),
        "{e}"
    );
    // Without systemd's folder.
    let store = Store::with_env(&cfg, &d.0, Vec::new());
    let e = store.read("api").unwrap_err();
    assert!(e.contains("LoadCredential=api:"), "{e}");
    // A secret file loosened after the config was loaded: refused at start.
    d.file("db", VALUE, 0o640);
    let e = store.read("db").unwrap_err();
    assert!(e.contains("is mode 0640") && e.contains("chmod 600"), "{e}");
    assert!(!e.contains(VALUE));
}

#[test]
fn without_a_mount_namespace_files_go_to_a_private_host_folder() {
    let d = TempDir::new("host");
    d.file("db", &format!("{VALUE}\n"), 0o600);
    let runtime = d.0.join("run");
    let cfg = config(
        &d,
        "[secrets]\ndb = { file = \"db\" }\n\
         [services.web]\ncommand = [\"true\"]\nsecrets = [\"db\"]\n\
         secret_env = { DB = \"db\" }\n\
         [services.plain]\ncommand = [\"true\"]\n",
    );
    let mut store = Store::with_env(&cfg, &runtime, Vec::new());
    let mut p = plan();
    let warnings = store.arm(0, &mut p).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let dir = runtime.join("credentials/web");
    let meta = |p: &Path| std::fs::metadata(p).unwrap();
    assert_eq!(meta(&dir).mode() & 0o7777, 0o500);
    assert_eq!(meta(&runtime.join("credentials")).mode() & 0o7777, 0o711);
    assert_eq!(meta(&dir.join("db")).mode() & 0o7777, 0o400);
    assert_eq!(meta(&dir.join("db")).uid(), nix::unistd::geteuid().as_raw());
    assert_eq!(
        std::fs::read(dir.join("db")).unwrap(),
        format!("{VALUE}\n").as_bytes()
    );
    // The plan's Debug shows no value.
    assert!(!format!("{p:?}").contains(VALUE));
    store.after_spawn(0, &mut p, true);
    assert!(dir.exists(), "kept while the process runs");
    // A rotated file is read again at the next start.
    d.file("db", "rotated", 0o600);
    store.arm(0, &mut p).unwrap();
    assert_eq!(std::fs::read(dir.join("db")).unwrap(), b"rotated");
    store.after_spawn(0, &mut p, false);
    assert!(!dir.exists(), "a failed start removes it");
    store.arm(0, &mut p).unwrap();
    store.ended(0);
    assert!(!dir.exists(), "the process's end removes it");
    // A service without secrets: nothing armed, nothing written.
    assert!(store.arm(1, &mut p).unwrap().is_empty());
    assert!(!runtime.join("credentials/plain").exists());
    store.arm(0, &mut p).unwrap();
    store.cleanup();
    assert!(!runtime.join("credentials").exists());
}

#[test]
fn an_error_in_a_secret_stops_the_start_and_leaves_nothing() {
    let d = TempDir::new("fail");
    d.file("db", VALUE, 0o600);
    let gone = d.file("gone", VALUE, 0o600);
    let runtime = d.0.join("run");
    let cfg = config(
        &d,
        "[secrets]\ndb = { file = \"db\" }\ngone = { file = \"gone\" }\n\
         [services.web]\ncommand = [\"true\"]\nsecrets = [\"db\", \"gone\"]\n",
    );
    // Removed after the config was checked: the start finds it missing.
    std::fs::remove_file(gone).unwrap();
    let mut store = Store::with_env(&cfg, &runtime, Vec::new());
    let e = store.arm(0, &mut plan()).unwrap_err();
    assert!(
        e.starts_with("secret \"gone\": cannot read ") && e.ends_with("No such file or directory"),
        "{e}"
    );
    assert!(!runtime.join("credentials/web").exists());
}

#[test]
fn a_trailing_newline_is_dropped_for_variables_only() {
    let s = |b: &[u8]| without_newline(Secret::from_slice(b)).expose().to_vec();
    assert_eq!(s(b"pw\n"), b"pw");
    assert_eq!(s(b"pw\r\n"), b"pw");
    assert_eq!(s(b"pw\n\n"), b"pw\n");
    assert_eq!(s(b"pw"), b"pw");
    assert_eq!(s(b""), b"");
}

#[test]
fn host_owner_goes_through_the_maps() {
    let mut setup = sys::spawn::Setup {
        ids: Some(sys::spawn::Ids {
            uid: 0,
            gid: 0,
            groups: vec![],
        }),
        ..Default::default()
    };
    assert_eq!(host_owner(&setup), Some((0, 0)));
    setup.uid_map = Some("0 100000 1000\n".into());
    setup.gid_map = Some("0 200000 10\n".into());
    assert_eq!(host_owner(&setup), Some((100000, 200000)));
    setup.ids = None;
    assert_eq!(host_owner(&setup), None);
}

#[test]
fn a_folder_the_service_cannot_pass_is_found() {
    let d = TempDir::new("reach");
    let closed = d.0.join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let target = closed.join("credentials/web");
    assert_eq!(
        unreachable(&target, 65534, 65534),
        Some((closed.clone(), 0o700))
    );
    assert_eq!(unreachable(&target, 0, 0), None);
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o711)).unwrap();
    assert_eq!(unreachable(&target, 65534, 65534), None);
}
