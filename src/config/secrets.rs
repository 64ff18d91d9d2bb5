//! The secrets model: where each secret comes from, and which service gets
//! which. Plain data, validated. The config never holds a secret's value,
//! only its source: values are read when a service starts
//! (`crate::secrets`), so a rotated file is picked up by a restart.
//!
//! In a config file: the top-level `[secrets]` table (`NAME = { file = ... }`,
//! `{ env = ... }` or `{ credential = ... }`), the service keys `secrets`
//! and `secret_env`, and `allow_insecure_permissions` in `[supervisor]`.

use std::path::PathBuf;

/// Where a secret's value is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `{ file = "/etc/sentinel/secrets/db" }`: the file's bytes, as they
    /// are (absolute; a relative path is taken from the config's folder).
    File(PathBuf),
    /// `{ env = "DB_PASSWORD" }`: a variable of sentinel's own environment,
    /// taken when sentinel starts and then removed from the environment its
    /// services inherit.
    Env(String),
    /// `{ credential = "db" }`: `$CREDENTIALS_DIRECTORY/db`, the folder
    /// systemd gives sentinel for `LoadCredential=db:...` in its unit.
    Credential(String),
}

/// `[secrets]`, and the permission rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretsConfig {
    /// By name, in file order.
    pub sources: Vec<(String, SecretSource)>,
    /// `[supervisor] allow_insecure_permissions = true`: accept secret
    /// files (and a config declaring secrets) open to group or others.
    /// Default false.
    pub allow_insecure_permissions: bool,
}

impl SecretsConfig {
    pub fn source(&self, name: &str) -> Option<&SecretSource> {
        self.sources.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }
}

/// A service's secrets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceSecrets {
    /// `secrets = ["db_password"]`: files in `$CREDENTIALS_DIRECTORY`,
    /// named like the secrets.
    pub files: Vec<String>,
    /// `secret_env = { DB_PASSWORD = "db_password" }`: (variable, secret),
    /// in file order.
    pub env: Vec<(String, String)>,
}

impl ServiceSecrets {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.env.is_empty()
    }
}

/// Group or other permission bits: a file with any of them set is refused
/// (unless `allow_insecure_permissions`).
pub const INSECURE_BITS: u32 = 0o077;

/// What is wrong with a file open to group or others (`path` with `mode`):
/// "is mode 0644, open to group or others; run chmod 600 PATH (or ...)",
/// to follow the file's name. None when its permissions are fine.
pub fn insecure_mode(path: &std::path::Path, mode: u32) -> Option<String> {
    (mode & INSECURE_BITS != 0).then(|| {
        format!(
            "is mode {:04o}, open to group or others; run chmod 600 {} \
             (or set allow_insecure_permissions = true in [supervisor])",
            mode & 0o7777,
            path.display()
        )
    })
}
