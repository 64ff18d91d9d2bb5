//! Control commands on other hosts, over the system's OpenSSH client:
//! `sentinel -H user@host status` runs `ssh -T user@host sentinel bridge`,
//! and the bridge joins ssh's session to the remote control socket. No
//! agent, no port of sentinel's own: the user's keys, known_hosts and ssh
//! config. See docs/remote.md.
//!
//! - `inventory`: `-H` names (addresses, `[hosts.NAME]`, `@group`s) to [`Host`]s.
//! - `ssh`: the ssh command line, the session, and why a session failed.
//! - `bridge`: the remote end (`sentinel bridge`).
//! - `fanout`: several hosts at once, as one `sentinel -H HOST ...` child each.

pub mod bridge;
pub mod fanout;
pub mod inventory;
pub mod ssh;

pub use inventory::{Host, Inventory};
pub use ssh::Session;

use std::path::PathBuf;

use crate::control::Client;

/// A client for the supervisor on `host`: `socket` and `config` are paths
/// on that host (`-s`, `-c` of the command), passed to its bridge.
pub fn connect(
    host: &Host,
    socket: Option<PathBuf>,
    config: Option<PathBuf>,
) -> Result<Client, String> {
    let text = |p: Option<PathBuf>, what: &str| -> Result<Option<String>, String> {
        p.map(|p| {
            p.into_os_string()
                .into_string()
                .map_err(|p| format!("{}: the remote {what} path {p:?} is not UTF-8", host.label))
        })
        .transpose()
    };
    let socket = text(socket, "socket")?;
    let config = text(config, "config")?;
    let (stream, session) = ssh::connect(host, socket.as_deref(), config.as_deref())?;
    Ok(Client::remote(stream, session))
}
