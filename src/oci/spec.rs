//! The subset of an OCI runtime bundle's `config.json` (runtime-spec 1.x)
//! that sentinel reads, as serde types. Every struct keeps the fields it
//! does not know in `other`, so that nothing in the file is silently
//! ignored: `config::build` lists each of them as a warning.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Fields a struct does not model, by name.
pub type Other = BTreeMap<String, Value>;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// Read for completeness; sentinel takes any 1.x file.
    pub oci_version: Option<String>,
    pub process: Option<Process>,
    pub root: Option<Root>,
    pub hostname: Option<String>,
    pub mounts: Option<Vec<Mount>>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub linux: Option<Linux>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    pub terminal: Option<bool>,
    pub user: Option<User>,
    pub args: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub cwd: Option<String>,
    pub capabilities: Option<Capabilities>,
    pub rlimits: Option<Vec<Rlimit>>,
    pub no_new_privileges: Option<bool>,
    pub oom_score_adj: Option<i32>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Option<Vec<u32>>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct Capabilities {
    pub bounding: Option<Vec<String>>,
    pub effective: Option<Vec<String>>,
    pub inheritable: Option<Vec<String>>,
    pub permitted: Option<Vec<String>>,
    pub ambient: Option<Vec<String>>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Deserialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct Root {
    pub path: String,
    pub readonly: Option<bool>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub source: Option<String>,
    pub options: Option<Vec<String>>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    pub namespaces: Option<Vec<Namespace>>,
    pub uid_mappings: Option<Vec<IdMapping>>,
    pub gid_mappings: Option<Vec<IdMapping>>,
    pub resources: Option<Resources>,
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Deserialize)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct IdMapping {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

#[derive(Debug, Default, Deserialize)]
pub struct Resources {
    pub memory: Option<Memory>,
    pub cpu: Option<Cpu>,
    pub pids: Option<Pids>,
    pub devices: Option<Vec<DeviceRule>>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct Memory {
    pub limit: Option<i64>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct Cpu {
    pub quota: Option<i64>,
    pub period: Option<u64>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct Pids {
    pub limit: i64,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeviceRule {
    pub allow: bool,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: Option<String>,
}

/// A `config.json` that does not parse: the message and its 1-based
/// position (0 when serde_json does not know it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parse a `config.json`'s text.
pub fn parse(text: &str) -> Result<Spec, JsonError> {
    serde_json::from_str(text).map_err(|e| {
        // serde_json's text ends in " at line L column C"; keep it once.
        let full = e.to_string();
        let message = match full.rfind(" at line ") {
            Some(i) if e.line() > 0 => full[..i].to_string(),
            _ => full,
        };
        JsonError {
            line: e.line(),
            column: e.column(),
            message,
        }
    })
}
