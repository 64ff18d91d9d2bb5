//! The configuration: serde model, defaults, validation with precise errors.
//!
//! `load` reads a TOML (or, with the `yaml` feature, YAML) file and returns
//! either a validated [`Config`] or *every* problem found, each with its key
//! path and, where the parser knows it, line and column.

mod model;

pub use model::*;

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
/// (`env_file`, `workdir`, `log_dir`) are resolved against the file's folder.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let _ = path;
    todo!("config::load")
}

/// `SIGTERM` for 15. (Temporary: replaced by the config module's value parsers.)
pub fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGTERM => "SIGTERM".into(),
        other => format!("signal {other}"),
    }
}
