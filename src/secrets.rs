//! Secrets at service start: each value read from its source, delivered to
//! the service, and wiped from sentinel's memory.
//!
//! The config holds sources only (`config::SecretsConfig`); [`Store::arm`]
//! reads the values a service needs just before each start, so a rotated
//! file is picked up by a restart. They reach the service two ways:
//!
//! - `secrets = [...]`: files in a private folder named by
//!   `$CREDENTIALS_DIRECTORY` (systemd's `LoadCredential=` layout): the
//!   folder mode 0500 and the files 0400, owned by the service's user.
//!   With a mount namespace the child mounts a fresh tmpfs on
//!   `/run/credentials` inside it and writes them there (`sys::spawn::
//!   Credentials`): nothing is visible outside. Without one, sentinel writes
//!   them to `<runtime dir>/credentials/<service>/` before the spawn and
//!   removes them when the process ends, and at shutdown.
//! - `secret_env = { VAR = "name" }`: the variable in that start's
//!   environment only (one trailing newline dropped).
//!
//! Values live in [`Secret`]s (zeroed on drop, `Debug` shows `<redacted>`)
//! from the read to the delivery, and the plan's copies are wiped once the
//! child has exec'd ([`Store::after_spawn`]). Messages name a secret and
//! its source, never its value. With any secret configured, sentinel makes
//! itself non-dumpable (`PR_SET_DUMPABLE` 0): no core file, and its memory
//! and `/proc/PID/environ` closed to other users.

use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::{insecure_mode, Config, SecretSource, ServiceSecrets};
pub use sys::mem::Secret;
use sys::mem::MAX_SECRET;

/// The variable naming a service's secrets folder (and, in sentinel's own
/// environment, the folder systemd gives sentinel).
pub const CREDENTIALS_VAR: &str = "CREDENTIALS_DIRECTORY";
/// Where a service with its own mount namespace finds its secrets folder:
/// `/run/credentials/<service>`, as under systemd.
pub const NAMESPACE_BASE: &str = "/run/credentials";

/// One service's secrets and where they were delivered.
struct Slot {
    name: String,
    wants: ServiceSecrets,
    mount_ns: bool,
    root: Option<PathBuf>,
    /// The host folder written for the current process, removed when it ends.
    host_dir: Option<PathBuf>,
    /// The "cannot reach its folder" warning was given.
    warned: bool,
}

/// The secrets of every unit, by the supervisor's unit index (set with
/// [`Store::set_unit`]; at first, the config's order).
pub struct Store {
    sources: Vec<(String, SecretSource)>,
    allow_insecure: bool,
    /// `env` sources' values, taken from sentinel's environment at start.
    env_values: Vec<(String, Secret)>,
    /// sentinel's own `$CREDENTIALS_DIRECTORY` (from systemd).
    credentials_dir: Option<PathBuf>,
    /// `<runtime dir>/credentials`: for services without a mount namespace.
    host_base: PathBuf,
    services: Vec<Slot>,
}

impl Store {
    /// At startup, before anything inherits sentinel's environment: make
    /// sentinel non-dumpable when any secret is configured, take the `env`
    /// sources' values and sentinel's own `$CREDENTIALS_DIRECTORY` out of
    /// its environment (services and probes never inherit them), and clear
    /// secrets folders an earlier run left behind. Returns notes to log.
    pub fn new(config: &Config, runtime_dir: &Path) -> (Store, Vec<String>) {
        let mut notes = Vec::new();
        // A non-dumpable process's /proc files belong to root, so a
        // non-root sentinel could no longer write its children's uid and
        // gid maps.
        let maps_as_user = !nix::unistd::geteuid().is_root()
            && config
                .services
                .iter()
                .any(|(_, s)| s.isolation.namespaces.user);
        if !config.secrets.sources.is_empty() {
            if maps_as_user {
                notes.push(
                    "warning: sentinel stays dumpable (core dumps and its memory open to its \
                     own user): it runs as a non-root user and writes the uid and gid maps of \
                     services with a user namespace, which a non-dumpable process cannot; run \
                     sentinel as root to close them"
                        .to_string(),
                );
            } else if let Err(e) = nix::sys::prctl::set_dumpable(false) {
                notes.push(format!("warning: PR_SET_DUMPABLE 0: {e}"));
            }
        }
        let mut wanted: Vec<&str> = vec![CREDENTIALS_VAR];
        for (_, s) in &config.secrets.sources {
            if let SecretSource::Env(v) = s {
                wanted.push(v);
            }
        }
        let taken: Vec<(String, OsString)> = wanted
            .iter()
            .filter_map(|v| std::env::var_os(v).map(|value| (v.to_string(), value)))
            .collect();
        for (v, _) in &taken {
            // One thread, and nothing has read the environment yet.
            std::env::remove_var(v);
        }
        let store = Store::with_env(config, runtime_dir, taken);
        notes.extend(store.startup_notes(runtime_dir));
        for slot in &store.services {
            if !slot.wants.files.is_empty() && !slot.mount_ns {
                let _ = remove_host_dir(&store.host_base.join(&slot.name));
            }
        }
        (store, notes)
    }

    /// The store, with `env`: the variables taken from sentinel's
    /// environment (`env` sources and `CREDENTIALS_DIRECTORY`).
    fn with_env(config: &Config, runtime_dir: &Path, env: Vec<(String, OsString)>) -> Store {
        let mut credentials_dir = None;
        let mut env_values = Vec::new();
        for (k, v) in env {
            if k == CREDENTIALS_VAR {
                credentials_dir = Some(PathBuf::from(v.clone()));
            }
            if config
                .secrets
                .sources
                .iter()
                .any(|(_, s)| *s == SecretSource::Env(k.clone()))
            {
                env_values.push((k, Secret::new(v.into_encoded_bytes())));
            }
        }
        Store {
            sources: config.secrets.sources.clone(),
            allow_insecure: config.secrets.allow_insecure_permissions,
            env_values,
            credentials_dir,
            host_base: runtime_dir.join("credentials"),
            services: config
                .services
                .iter()
                .map(|(name, svc)| Slot {
                    name: name.clone(),
                    wants: svc.secrets.clone(),
                    mount_ns: svc.isolation.namespaces.mount,
                    root: svc.isolation.root.clone(),
                    host_dir: None,
                    warned: false,
                })
                .collect(),
        }
    }

    /// (Re)define unit `u` of the supervisor: an instance named `name`
    /// (`web`, `web@2`: its own folder) with its service's settings. Called
    /// for every unit as it is made, and again after a reload changed it.
    pub fn set_unit(&mut self, u: usize, name: &str, svc: &crate::config::ServiceConfig) {
        while self.services.len() <= u {
            self.services.push(Slot {
                name: String::new(),
                wants: ServiceSecrets::default(),
                mount_ns: false,
                root: None,
                host_dir: None,
                warned: false,
            });
        }
        let slot = &mut self.services[u];
        slot.name = name.to_string();
        slot.wants = svc.secrets.clone();
        slot.mount_ns = svc.isolation.namespaces.mount;
        slot.root = svc.isolation.root.clone();
    }

    /// A reload: the sources and the permission rule of the new config
    /// (`env` sources are those read at startup).
    pub fn set_sources(&mut self, config: &Config) {
        self.sources = config.secrets.sources.clone();
        self.allow_insecure = config.secrets.allow_insecure_permissions;
    }

    /// Said once at startup: host folders that are not on a tmpfs.
    fn startup_notes(&self, runtime_dir: &Path) -> Vec<String> {
        let on_disk: Vec<&str> = self
            .services
            .iter()
            .filter(|s| !s.wants.files.is_empty() && !s.mount_ns)
            .map(|s| s.name.as_str())
            .collect();
        if on_disk.is_empty() || on_tmpfs(runtime_dir) {
            return Vec::new();
        }
        vec![format!(
            "warning: the secrets of {} (no mount namespace) are written under {}, which is not \
             on a tmpfs, so they touch the disk; put sentinel's socket (and so its runtime folder) \
             under /run, or give {} a mount namespace (isolation = {{ namespaces = [\"mount\"] }})",
            on_disk.join(", "),
            self.host_base.display(),
            if on_disk.len() == 1 { "it" } else { "them" }
        )]
    }

    /// Before service `i` starts: read its secrets and arm `plan` with them
    /// (the files written to the host folder first, without a mount
    /// namespace). Returns warnings to log; an error names the secret and
    /// its source, never the value.
    pub fn arm(&mut self, i: usize, plan: &mut sys::spawn::Plan) -> Result<Vec<String>, String> {
        let Some(slot) = self.services.get(i) else {
            return Ok(Vec::new());
        };
        if slot.wants.is_empty() {
            return Ok(Vec::new());
        }
        let mut warnings = Vec::new();
        let mut env: Vec<(String, Secret)> = Vec::new();
        for (var, name) in &slot.wants.env {
            let value = self.read(name)?;
            env.push((var.clone(), without_newline(value)));
        }
        let mut files: Vec<(String, Secret)> = Vec::new();
        for name in &slot.wants.files {
            files.push((name.clone(), self.read(name)?));
        }
        let setup = plan.setup();
        let mut credentials = None;
        if !files.is_empty() {
            let name = slot.name.clone();
            let inside = format!("{NAMESPACE_BASE}/{name}");
            if slot.mount_ns {
                let owner = setup.ids.as_ref().map(|ids| (ids.uid, ids.gid));
                let mount_at = under(slot.root.as_deref(), Path::new(NAMESPACE_BASE));
                std::fs::create_dir_all(&mount_at).map_err(|e| {
                    format!(
                        "create {}, where the secrets folder is mounted: {e}",
                        mount_at.display()
                    )
                })?;
                let mount_at = mount_at.to_string_lossy().into_owned();
                credentials = Some(
                    sys::spawn::Credentials::new(
                        &mount_at,
                        &format!("{mount_at}/{name}"),
                        files,
                        owner,
                        setup.namespaces & libc::CLONE_NEWUSER != 0,
                    )
                    .map_err(|e| e.to_string())?,
                );
                env.push((
                    CREDENTIALS_VAR.into(),
                    Secret::from_slice(inside.as_bytes()),
                ));
            } else {
                let owner = host_owner(setup);
                let dir = self.host_base.join(&name);
                if let Some((uid, gid)) = owner {
                    if !self.services[i].warned {
                        self.services[i].warned = true;
                        if let Some((a, mode)) = unreachable(&dir, uid, gid) {
                            warnings.push(format!(
                                "warning: service {name} runs as uid {uid}, which cannot reach \
                                 its secrets in {}: {} is mode {mode:04o}; let it through \
                                 (chmod o+x {}), move sentinel's socket (its runtime folder), \
                                 or give the service a mount namespace",
                                dir.display(),
                                a.display(),
                                a.display()
                            ));
                        }
                    }
                }
                write_host_dir(&self.host_base, &dir, &files, owner).map_err(|e| {
                    let _ = remove_host_dir(&dir);
                    format!("write secrets folder {}: {e}", dir.display())
                })?;
                self.services[i].host_dir = Some(dir.clone());
                env.push((
                    CREDENTIALS_VAR.into(),
                    Secret::from_slice(dir.as_os_str().as_encoded_bytes()),
                ));
            }
        }
        if let Err(e) = plan.arm_secrets(env, credentials) {
            self.ended(i);
            return Err(e);
        }
        Ok(warnings)
    }

    /// After service `i`'s spawn returned: wipe the plan's secrets; on a
    /// failed spawn, remove the host folder too.
    pub fn after_spawn(&mut self, i: usize, plan: &mut sys::spawn::Plan, spawned: bool) {
        plan.disarm_secrets();
        if !spawned {
            self.ended(i);
        }
    }

    /// Service `i`'s process ended: its host folder goes.
    pub fn ended(&mut self, i: usize) {
        if let Some(dir) = self.services.get_mut(i).and_then(|s| s.host_dir.take()) {
            let _ = remove_host_dir(&dir);
        }
    }

    /// At shutdown: every host folder goes, and the base if empty.
    pub fn cleanup(&mut self) {
        for i in 0..self.services.len() {
            self.ended(i);
        }
        let _ = std::fs::remove_dir(&self.host_base);
    }

    /// The value of secret `name`, from its source.
    fn read(&self, name: &str) -> Result<Secret, String> {
        let fail = |why: String| format!("secret \"{name}\": {why}");
        let source = self
            .sources
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .ok_or_else(|| fail("not defined in [secrets]".into()))?;
        match source {
            SecretSource::File(path) => read_file(path, self.allow_insecure).map_err(fail),
            SecretSource::Env(var) => self
                .env_values
                .iter()
                .find(|(v, _)| v == var)
                .map(|(_, s)| Secret::from_slice(s.expose()))
                .ok_or_else(|| {
                    fail(format!(
                        "environment variable {var} was not set when sentinel started; set it \
                         in sentinel's environment (under systemd: Environment= or \
                         EnvironmentFile= in its unit)"
                    ))
                }),
            SecretSource::Credential(c) => match &self.credentials_dir {
                Some(dir) => read_file(&dir.join(c), self.allow_insecure).map_err(fail),
                None => Err(fail(format!(
                    "{{ credential = \"{c}\" }} reads $CREDENTIALS_DIRECTORY/{c}, and sentinel \
                     was started without $CREDENTIALS_DIRECTORY; run it under systemd with \
                     LoadCredential={c}:/path/to/secret in its unit, or use {{ file = ... }}"
                ))),
            },
        }
    }
}

/// A secret file's bytes: a private regular file of at most 1 MiB.
fn read_file(path: &Path, allow_insecure: bool) -> Result<Secret, String> {
    let shown = path.display();
    let reason = |e: std::io::Error| {
        let text = e.to_string();
        match text.find(" (os error") {
            Some(i) => text[..i].to_string(),
            None => text,
        }
    };
    let mut f =
        std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {}", reason(e)))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot read {shown}: {}", reason(e)))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    if !allow_insecure {
        if let Some(why) = insecure_mode(path, meta.permissions().mode()) {
            return Err(format!("{shown} {why}"));
        }
    }
    if meta.len() > MAX_SECRET as u64 {
        return Err(format!(
            "{shown} is larger than 1 MiB; a secret is a password, a key or a token"
        ));
    }
    Secret::read_from(&mut f, meta.len() as usize, MAX_SECRET)
        .map_err(|e| format!("cannot read {shown}: {}", reason(e)))
}

/// For a variable: one trailing newline (`\n` or `\r\n`) dropped, as a
/// file written with `echo` ends with one.
fn without_newline(s: Secret) -> Secret {
    let b = s.expose();
    let cut = if b.ends_with(b"\r\n") {
        2
    } else if b.ends_with(b"\n") {
        1
    } else {
        0
    };
    if cut == 0 {
        s
    } else {
        Secret::from_slice(&b[..b.len() - cut]) // `s` is wiped as it drops
    }
}

/// `root` + `path` (path is absolute).
fn under(root: Option<&Path>, path: &Path) -> PathBuf {
    match root {
        Some(r) => r.join(path.strip_prefix("/").unwrap_or(path)),
        None => path.to_path_buf(),
    }
}

fn on_tmpfs(dir: &Path) -> bool {
    use nix::sys::statfs::{statfs, FsType, TMPFS_MAGIC};
    // ramfs (linux/magic.h; neither nix nor libc names it).
    let ramfs = FsType(0x8584_58f6_u32 as _);
    // The folder may not exist yet: its nearest existing ancestor decides.
    let existing = dir.ancestors().find(|a| a.exists()).unwrap_or(dir);
    statfs(existing).is_ok_and(|s| {
        let t = s.filesystem_type();
        t == TMPFS_MAGIC || t == ramfs
    })
}

/// The owner of host files: the service's uid and gid as seen from
/// outside (through the uid and gid maps when it has a user namespace).
/// None: sentinel's own.
fn host_owner(setup: &sys::spawn::Setup) -> Option<(u32, u32)> {
    let ids = setup.ids.as_ref()?;
    let outside = |map: &Option<String>, id: u32| -> Option<u32> {
        match map {
            None => Some(id),
            Some(text) => text.lines().find_map(|l| {
                let n: Vec<u32> = l
                    .split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect();
                match n.as_slice() {
                    [inside, out, count] if id >= *inside && id - inside < *count => {
                        Some(out + (id - inside))
                    }
                    _ => None,
                }
            }),
        }
    };
    Some((
        outside(&setup.uid_map, ids.uid)?,
        outside(&setup.gid_map, ids.gid)?,
    ))
}

/// The first folder above `dir` that `uid`/`gid` may not pass through,
/// with its mode (root passes everywhere).
fn unreachable(dir: &Path, uid: u32, gid: u32) -> Option<(PathBuf, u32)> {
    use std::os::unix::fs::MetadataExt;
    if uid == 0 {
        return None;
    }
    dir.ancestors().skip(1).find_map(|a| {
        let m = std::fs::metadata(a).ok()?;
        let mode = m.mode() & 0o7777;
        let bit = if m.uid() == uid {
            0o100
        } else if m.gid() == gid {
            0o010
        } else {
            0o001
        };
        (mode & bit == 0).then(|| (a.to_path_buf(), mode))
    })
}

/// `<base>/<service>/` with one file per secret: written while the folder
/// is 0700 and sentinel's, then handed to `owner` and closed to 0500.
fn write_host_dir(
    base: &Path,
    dir: &Path,
    files: &[(String, Secret)],
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(base)?;
    // Others may pass through to their own folder, not list the names.
    std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o711))?;
    if dir.exists() {
        remove_host_dir(dir)?;
    }
    std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    for (name, secret) in files {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(dir.join(name))?;
        f.write_all(secret.expose())?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
    }
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500))
}

fn remove_host_dir(dir: &Path) -> std::io::Result<()> {
    // Mode 0500: sentinel may need write permission back to empty it.
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests;
