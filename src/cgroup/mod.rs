//! cgroup v2 by direct cgroupfs I/O: find the hierarchy, set it up, make
//! one group per service instance with its limits, kill and remove groups,
//! read their stats.
//!
//! The layout (DESIGN.md, "cgroup v2 layout"):
//!
//! ```text
//! <base>/                      cgroup_root: under sentinel's own cgroup, or absolute
//!   supervisor/                sentinel itself, when its own cgroup gets children
//!   <slice>/[<slice>/...]      slices, nestable, each with its SliceConfig limits
//!     <service>/               the service's Limits
//!       <instance>/            the leaf the process joins
//! ```
//!
//! Every path is derived from the [`Hierarchy`]'s `mount`, so tests point
//! it at a temporary directory that imitates cgroupfs. Every I/O error
//! names the operation and the path (`write "512M" to .../memory.max:
//! Device or resource busy`).
//!
//! One file per step: `hierarchy` (discover, setup), `group` (create,
//! limits, kill, remove), `stats` (read on demand).

mod group;
mod hierarchy;
mod stats;
#[cfg(test)]
mod tests;

#[allow(unused_imports)] // until the supervisor uses them
pub use group::*;
pub use hierarchy::*;
pub use stats::*;

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The controllers sentinel uses, in the kernel's order of `cgroup.controllers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    Cpu,
    Io,
    Memory,
    Pids,
}

impl Controller {
    /// Every controller sentinel knows.
    pub const ALL: [Controller; 4] = [
        Controller::Cpu,
        Controller::Io,
        Controller::Memory,
        Controller::Pids,
    ];

    /// The name in `cgroup.controllers` and `cgroup.subtree_control`.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Io => "io",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
        }
    }

    /// The known controllers among the names in a `cgroup.controllers`
    /// (or `cgroup.subtree_control`) text; others (cpuset, hugetlb ...) are left out.
    pub fn parse_list(text: &str) -> Vec<Controller> {
        let names: Vec<&str> = text.split_whitespace().collect();
        Controller::ALL
            .into_iter()
            .filter(|c| names.contains(&c.name()))
            .collect()
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What was being done to a path when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
    Open,
    Mkdir,
    Rmdir,
    Stat,
    /// SIGKILL to this pid, listed in the group (the freeze fallback).
    Kill(i32),
}

/// An error of this module; each names the path it is about.
#[derive(Debug)]
pub enum Error {
    /// A syscall on a path failed. `value` is what was being written.
    Io {
        op: Op,
        path: PathBuf,
        value: Option<String>,
        source: io::Error,
    },
    /// A controller is not in `path` (a `cgroup.controllers`): the parent
    /// does not delegate it, and sentinel cannot change that.
    Unavailable {
        controller: Controller,
        path: PathBuf,
    },
    /// Limits for the group at `path` need a controller that setup did not enable.
    NotEnabled {
        controller: Controller,
        path: PathBuf,
    },
    /// Enabling controllers in `path` failed because processes other than
    /// sentinel are in it (the "no internal processes" rule).
    Occupied {
        path: PathBuf,
        pids: Vec<i32>,
        source: io::Error,
    },
    /// No cgroup2 mount, no `0::` line, or a path that leaves its parent.
    Invalid(String),
}

impl Error {
    fn io(op: Op, path: &Path, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.to_path_buf(),
            value: None,
            source,
        }
    }

    /// The errno, for I/O errors.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } | Error::Occupied { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The group is still in use (populated or has children): try again
    /// later, e.g. when its `cgroup.events` says `populated 0`.
    pub fn is_busy(&self) -> bool {
        matches!(self.errno(), Some(libc::EBUSY | libc::ENOTEMPTY))
    }
}

/// `Device or resource busy`, without Rust's `(os error 16)`.
fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                op,
                path,
                value,
                source,
            } => {
                let p = path.display();
                let why = describe(source);
                match (op, value) {
                    (Op::Write, Some(v)) => write!(f, "write {v:?} to {p}: {why}"),
                    (Op::Kill(pid), _) => write!(f, "SIGKILL {pid} in {p}: {why}"),
                    (op, _) => {
                        let op = match op {
                            Op::Read => "read",
                            Op::Write => "write",
                            Op::Open => "open",
                            Op::Mkdir => "mkdir",
                            Op::Rmdir => "rmdir",
                            Op::Stat | Op::Kill(_) => "stat",
                        };
                        write!(f, "{op} {p}: {why}")
                    }
                }
            }
            Error::Unavailable { controller, path } => write!(
                f,
                "controller {controller} is not available: not in {}",
                path.display()
            ),
            Error::NotEnabled { controller, path } => write!(
                f,
                "limits for {} need the {controller} controller, which is not enabled",
                path.display()
            ),
            Error::Occupied { path, pids, source } => {
                let pids: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
                let (who, are) = match pids.len() {
                    1 => ("process", "is"),
                    _ => ("processes", "are"),
                };
                write!(
                    f,
                    "enable controllers in {}: {}: {who} {} {are} in it besides sentinel \
                     (a cgroup with processes cannot enable controllers for its children); \
                     run sentinel in a cgroup of its own (systemd: Delegate=yes) \
                     or set an absolute cgroup_root",
                    path.display(),
                    describe(source),
                    pids.join(", ")
                )
            }
            Error::Invalid(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Occupied { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Read a whole cgroupfs file.
fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|e| Error::io(Op::Read, path, e))
}

/// Write one value to a cgroupfs file that exists (never created), in
/// one `write`, newline-terminated like `echo`. `O_APPEND` is what
/// `echo >>` does: the kernel ignores it, and a test's plain file keeps
/// every value written, in order.
fn write(path: &Path, value: &str) -> Result<(), Error> {
    let wrap = |e| Error::Io {
        op: Op::Write,
        path: path.to_path_buf(),
        value: Some(value.to_string()),
        source: e,
    };
    let mut file = OpenOptions::new().append(true).open(path).map_err(wrap)?;
    file.write_all(format!("{value}\n").as_bytes())
        .map_err(wrap)
}

/// `mkdir`, where an existing directory is fine.
fn mkdir(path: &Path) -> Result<(), Error> {
    match fs::create_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(Error::io(Op::Mkdir, path, e)),
        _ => Ok(()),
    }
}

/// The pids in a `cgroup.procs` text.
fn parse_pids(text: &str) -> Vec<i32> {
    text.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}
