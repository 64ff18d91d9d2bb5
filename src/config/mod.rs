//! The configuration: serde model, defaults, validation with precise errors.
//!
//! `load` reads a TOML (or, with the `yaml` feature, YAML) file and returns
//! either a validated [`Config`] or *every* problem found, each with its key
//! path and, where the parser knows it, line and column.
//!
//! The way through, one file per step:
//! - `toml_src` / `yaml_src`: text to a [`node::Node`] tree in which every
//!   key and value has its line and column (a syntax error stops here);
//! - `raw`: the serde model of the file (`deny_unknown_fields`, humane
//!   values), deserialized from the tree by `node`'s `Deserializer`; on an
//!   error the offending entry is noted, cut out and the rest tried again,
//!   so every bad key is reported, not just the first;
//! - `build`: defaults, relative paths, env files (`envfile`) and the checks
//!   that span keys, each problem located through the tree;
//! - `values`: durations, sizes, signals and the command split, also for
//!   the CLI;
//! - `isolation`: the isolation model (cgroup limits, slices, priorities,
//!   rlimits, identity, namespaces, mounts, capabilities, seccomp) and the
//!   parsers of its values (`CpuMax::parse`, `Capability::from_name` ...),
//!   also for the CLI; `raw/isolation.rs` and `build/isolation.rs` are its
//!   halves of those two steps;
//! - `lifecycle`: the lifecycle model (type, readiness, health check,
//!   watchdog, dependencies) and the parsers of probe addresses, URLs and
//!   status ranges; `raw/lifecycle.rs` and `build/lifecycle.rs` likewise.
//!   Dependencies across services are checked with [`crate::deps::Graph`],
//!   the graph the supervisor orders starts and stops by;
//! - `build/oci.rs`: `bundle = DIR`, an OCI bundle's `config.json` as the
//!   service's defaults; what it cannot honour becomes [`Config::warnings`]
//!   (the mount part lives in [`crate::oci`]);
//! - `scaling`: the scaling model (instances, listening sockets, autoscale,
//!   start limit, `critical`, watch mode, `[[hooks]]`) and the parsers of
//!   instance ranges and `listen` addresses; `raw/scaling.rs` and
//!   `build/scaling.rs` likewise;
//! - `secrets`: the secrets model (`[secrets]` sources, a service's
//!   `secrets` and `secret_env`) and the permission rule for secret files
//!   and a config that declares secrets; `raw/secrets.rs` and
//!   `build/secrets.rs` likewise. Values are never read here.

mod build;
mod envfile;
mod isolation;
mod lifecycle;
mod model;
mod node;
mod raw;
mod scaling;
mod secrets;
mod toml_src;
mod values;
#[cfg(feature = "yaml")]
mod yaml_src;

pub use isolation::*;
pub use lifecycle::*;
pub use model::*;
pub use scaling::*;
pub use secrets::*;
// The value parsers are for the CLI too (`stop --signal`, `--timeout` ...).
#[allow(unused_imports)]
pub use values::{parse_duration, parse_signal, parse_size, signal_name, split_command};

use node::{path_string, Kind, Node, Seg};
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path, e.g. `services.web.restart`; empty for file-level problems.
    pub key: String,
    /// 1-based line and column, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// Everything wrong with one config file.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.path.display())?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
                if let Some(col) = p.column {
                    write!(f, ":{col}")?;
                }
            }
            if !p.key.is_empty() {
                write!(f, ": {}", p.key)?;
            }
            write!(f, ": {}", p.message)?;
        }
        Ok(())
    }
}

/// Read, parse and validate a config file. Relative paths inside it
/// (`log_dir`, `socket`, `workdir`, `env_file`, `listen = ["unix:..."]`)
/// are resolved against the file's folder (`watch` paths against the
/// service's workdir, if it has one), and come out absolute.
///
/// Files ending in `.yaml` or `.yml` are YAML (cargo feature `yaml`);
/// anything else is TOML.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let fail = |problems: Vec<Problem>| ConfigErrors {
        path: path.to_path_buf(),
        problems,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(vec![Problem {
            key: String::new(),
            line: None,
            column: None,
            message: format!("cannot read the config file: {e}"),
        }])
    })?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = std::path::absolute(&folder).unwrap_or(folder);
    let config = from_str(&text, is_yaml(path), &base).map_err(fail)?;
    // A config that declares secrets says where they are: it is private.
    if !config.secrets.sources.is_empty() && !config.secrets.allow_insecure_permissions {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_or(0, |m| m.permissions().mode());
        if let Some(why) = insecure_mode(path, mode) {
            return Err(fail(vec![Problem {
                key: "secrets".to_string(),
                line: None,
                column: None,
                message: format!("this file declares secrets and {why}"),
            }]));
        }
    }
    Ok(config)
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "YAML" | "YML")
    )
}

#[cfg(feature = "yaml")]
fn parse_yaml(text: &str) -> Result<Node, Vec<Problem>> {
    yaml_src::parse(text)
}

#[cfg(not(feature = "yaml"))]
fn parse_yaml(_text: &str) -> Result<Node, Vec<Problem>> {
    Err(vec![Problem {
        key: String::new(),
        line: None,
        column: None,
        message: "YAML support was left out of this build (cargo feature `yaml`); use TOML"
            .to_string(),
    }])
}

/// Parse and validate config text; relative paths resolve against `base`.
/// Problems come in file order, those without a position last.
fn from_str(text: &str, yaml: bool, base: &Path) -> Result<Config, Vec<Problem>> {
    check_text(text, yaml, base).map_err(|mut problems| {
        problems.sort_by_key(|p| (p.line.unwrap_or(usize::MAX), p.column.unwrap_or(0)));
        problems
    })
}

fn check_text(text: &str, yaml: bool, base: &Path) -> Result<Config, Vec<Problem>> {
    let mut tree = if yaml {
        parse_yaml(text)?
    } else {
        toml_src::parse(text)?
    };
    match tree.kind {
        Kind::Map(_) => {}
        // An empty YAML document: no services, reported below.
        Kind::Null => tree.kind = Kind::Map(Vec::new()),
        _ => {
            return Err(vec![Problem {
                key: String::new(),
                line: tree.pos.map(|p| p.line),
                column: tree.pos.map(|p| p.column),
                message: "the file must be a table of settings ([supervisor], [services.NAME])"
                    .to_string(),
            }])
        }
    }

    // Deserialize; on each error, note it, cut the offending entry out and
    // go again, so that every key gets its say.
    let mut problems = Vec::new();
    let mut pruned = Vec::new();
    let mut raw = None;
    for _ in 0..10_000 {
        match node::from_node::<raw::RawFile>(&tree) {
            Ok(r) => {
                raw = Some(r);
                break;
            }
            Err(e) => {
                let mut path = e.path();
                problems.push(Problem {
                    key: path_string(&path),
                    line: e.pos.map(|p| p.line),
                    column: e.pos.map(|p| p.column),
                    message: e.message,
                });
                if let Some(i) = path.iter().position(|s| matches!(s, Seg::Index(_))) {
                    path.truncate(i);
                }
                let removed = tree.remove(&path);
                pruned.push(path);
                if !removed {
                    break;
                }
            }
        }
    }

    if let Some(raw) = raw {
        let mut ctx = build::Ctx {
            tree: &tree,
            base,
            pruned: &pruned,
            yaml,
            problems: Vec::new(),
            warnings: Vec::new(),
        };
        let mut config = build::build(raw, &mut ctx);
        config.warnings = std::mem::take(&mut ctx.warnings);
        problems.append(&mut ctx.problems);
        if problems.is_empty() {
            return Ok(config);
        }
    }
    Err(problems)
}

#[cfg(test)]
mod tests;
