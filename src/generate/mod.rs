//! `sentinel generate systemd|openrc|sysvinit`: the file that makes sentinel
//! a service of the host's init system, printed or (`--install`) written to
//! its standard place; and `generate systemd --service NAME`, one service of
//! the config exported as a standalone systemd unit.
//!
//! - `systemd`: the unit runs `sentinel run -c CONFIG` as `Type=notify`
//!   (sentinel's side is `sdnotify`); the choices are explained in comments
//!   in the unit itself ([`systemd::main_unit`]).
//! - `--service NAME`: every setting with a systemd equivalent becomes that
//!   directive, every other one a `# sentinel: ...` comment saying what is
//!   lost and the nearest systemd way ([`systemd::service_unit`]).
//! - `openrc`: an `openrc-run` script with `command_background` and a
//!   pidfile, `reload` sending SIGHUP.
//! - `sysvinit`: an LSB init script in POSIX sh: start, stop, restart,
//!   reload, force-reload, status, with LSB exit codes.
//!
//! Everything is made from the config as it loads (a config that does not
//! load is refused: the unit would fail anyway), and paths are absolute.

mod openrc;
mod systemd;
mod sysvinit;

use argh::FromArgs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Config};

/// Print a systemd unit, an OpenRC script or an LSB init script that runs sentinel (or one service as a unit).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "generate")]
pub struct GenerateArgs {
    /// what to generate: systemd, openrc or sysvinit
    #[argh(positional, from_str_fn(kind_arg))]
    pub kind: Kind,
    /// config file (default /etc/sentinel/sentinel.toml; with --user, ~/.config/sentinel/sentinel.toml)
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,
    /// systemd: a user unit (systemctl --user) instead of a system one
    #[argh(switch)]
    pub user: bool,
    /// systemd: export this service of the config as a standalone unit
    #[argh(option)]
    pub service: Option<String>,
    /// write the file to its standard place instead of printing it
    #[argh(switch)]
    pub install: bool,
    /// with --install: replace an existing file that differs
    #[argh(switch)]
    pub force: bool,
    /// with --install: install under this folder instead of / (as systemctl --root)
    #[argh(option)]
    pub root: Option<PathBuf>,
    /// the sentinel binary to run (default: this one)
    #[argh(option)]
    pub bin: Option<PathBuf>,
    /// openrc, sysvinit: the pidfile (default /run/sentinel.pid)
    #[argh(option)]
    pub pidfile: Option<PathBuf>,
    /// openrc, sysvinit: where sentinel's own messages go (default /var/log/sentinel.log)
    #[argh(option)]
    pub log_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Systemd,
    Openrc,
    Sysvinit,
}

fn kind_arg(s: &str) -> Result<Kind, String> {
    match s {
        "systemd" => Ok(Kind::Systemd),
        "openrc" => Ok(Kind::Openrc),
        "sysvinit" | "sysv" | "init.d" | "lsb" => Ok(Kind::Sysvinit),
        _ => Err(format!(
            "{s:?}: expected systemd, openrc or sysvinit (an LSB init.d script)"
        )),
    }
}

/// What every generator gets: absolute paths and the loaded config.
pub struct Setup {
    /// The sentinel binary.
    pub bin: PathBuf,
    /// The config file, absolute.
    pub config_path: PathBuf,
    pub config: Config,
    /// A systemd user unit.
    pub user: bool,
    pub pidfile: PathBuf,
    pub log_file: PathBuf,
}

impl Setup {
    /// How long stopping may take: sentinel's `shutdown_timeout`, plus a
    /// margin for its own exit and the last log lines.
    pub fn stop_timeout(&self) -> Duration {
        self.config.supervisor.shutdown_timeout + STOP_MARGIN
    }
}

/// Added to `shutdown_timeout` before an init system kills sentinel.
pub const STOP_MARGIN: Duration = Duration::from_secs(15);

pub const DEFAULT_CONFIG: &str = "/etc/sentinel/sentinel.toml";
pub const DEFAULT_PIDFILE: &str = "/run/sentinel.pid";
pub const DEFAULT_LOG_FILE: &str = "/var/log/sentinel.log";

/// `sentinel generate ...`: the exit code (0; 1 a write failed or an
/// install was refused; 2 bad usage or a config that does not load).
pub fn run(a: &GenerateArgs) -> i32 {
    match generate(a) {
        Ok(()) => 0,
        Err((code, msg)) => {
            eprintln!("sentinel generate: {msg}");
            code
        }
    }
}

type Failure = (i32, String);

fn usage(msg: impl Into<String>) -> Failure {
    (2, msg.into())
}

fn generate(a: &GenerateArgs) -> Result<(), Failure> {
    if a.kind != Kind::Systemd {
        if a.user {
            return Err(usage(
                "--user makes a systemd user unit; OpenRC and init.d scripts are system-wide",
            ));
        }
        if a.service.is_some() {
            return Err(usage(
                "--service exports a service as a systemd unit; use it with `generate systemd`",
            ));
        }
    }
    if a.kind == Kind::Systemd && (a.pidfile.is_some() || a.log_file.is_some()) {
        return Err(usage(
            "--pidfile and --log-file are for openrc and sysvinit; systemd tracks sentinel itself and keeps its output in the journal",
        ));
    }
    if !a.install && (a.force || a.root.is_some()) {
        return Err(usage("--force and --root go with --install"));
    }
    let config_path = match &a.config {
        Some(c) => c.clone(),
        None => default_config(a.user)?,
    };
    let config_path = absolute(&config_path)?;
    let config = config::load(&config_path).map_err(|e| {
        usage(format!(
            "the config does not load, so neither would the service; fix it first:\n{e}"
        ))
    })?;
    let bin = match &a.bin {
        Some(b) => absolute(b)?,
        None => std::env::current_exe().map_err(|e| {
            (
                1,
                format!("cannot tell where this binary is ({e}); pass --bin"),
            )
        })?,
    };
    let setup = Setup {
        bin,
        config_path,
        config,
        user: a.user,
        pidfile: absolute(Path::new(
            a.pidfile.as_deref().unwrap_or(Path::new(DEFAULT_PIDFILE)),
        ))?,
        log_file: absolute(Path::new(
            a.log_file.as_deref().unwrap_or(Path::new(DEFAULT_LOG_FILE)),
        ))?,
    };
    let (text, name) = match (a.kind, &a.service) {
        (Kind::Systemd, Some(service)) => (
            systemd::service_unit(&setup, service).map_err(usage)?,
            format!("{service}.service"),
        ),
        (Kind::Systemd, None) => (systemd::main_unit(&setup), "sentinel.service".into()),
        (Kind::Openrc, _) => (openrc::script(&setup), "sentinel".into()),
        (Kind::Sysvinit, _) => (sysvinit::script(&setup), "sentinel".into()),
    };
    if !a.install {
        print!("{text}");
        return Ok(());
    }
    let target = install_path(a.kind, a.user, &name, a.root.as_deref())?;
    let mode = if a.kind == Kind::Systemd {
        0o644
    } else {
        0o755
    };
    let wrote = install(&target, &text, mode, a.force)?;
    if wrote {
        println!("wrote {}", target.display());
    } else {
        println!("{} is already up to date", target.display());
    }
    let unit = name.trim_end_matches(".service");
    match (a.kind, a.user) {
        (Kind::Systemd, false) => {
            println!("next: systemctl daemon-reload && systemctl enable --now {unit}")
        }
        (Kind::Systemd, true) => {
            println!(
                "next: systemctl --user daemon-reload && systemctl --user enable --now {unit}"
            );
            println!(
                "      (and `loginctl enable-linger $USER` to keep it running after you log out)"
            );
        }
        (Kind::Openrc, _) => {
            println!("next: rc-update add sentinel default && rc-service sentinel start")
        }
        (Kind::Sysvinit, _) => {
            println!("next: update-rc.d sentinel defaults && service sentinel start");
            println!("      (on Red Hat-like systems: chkconfig --add sentinel)");
        }
    }
    Ok(())
}

fn default_config(user: bool) -> Result<PathBuf, Failure> {
    if !user {
        return Ok(PathBuf::from(DEFAULT_CONFIG));
    }
    Ok(user_config_home()?.join("sentinel/sentinel.toml"))
}

/// `$XDG_CONFIG_HOME`, or `~/.config`.
fn user_config_home() -> Result<PathBuf, Failure> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".config")),
        None => Err(usage(
            "neither XDG_CONFIG_HOME nor HOME is set; pass -c for the config",
        )),
    }
}

fn absolute(p: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(p).map_err(|e| usage(format!("{}: {e}", p.display())))
}

/// Where `--install` puts the file.
fn install_path(
    kind: Kind,
    user: bool,
    name: &str,
    root: Option<&Path>,
) -> Result<PathBuf, Failure> {
    let path = match (kind, user) {
        (Kind::Systemd, false) => PathBuf::from("/etc/systemd/system").join(name),
        (Kind::Systemd, true) => user_config_home()?.join("systemd/user").join(name),
        // OpenRC and sysvinit both keep their scripts in /etc/init.d.
        (Kind::Openrc | Kind::Sysvinit, _) => PathBuf::from("/etc/init.d").join(name),
    };
    Ok(match root {
        Some(r) => r.join(path.strip_prefix("/").unwrap_or(&path)),
        None => path,
    })
}

/// Write `text` to `path` (atomically: a temporary file renamed over it),
/// unless a different file is there and `force` is off. Ok(false): the same
/// text was already there.
fn install(path: &Path, text: &str, mode: u32, force: bool) -> Result<bool, Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read(path) {
        Ok(old) if old == text.as_bytes() => return Ok(false),
        Ok(_) if !force => {
            return Err((
                1,
                format!(
                    "{} exists and differs from what would be written; \
                     compare them (print with the same command without --install), \
                     then add --force to replace it",
                    path.display()
                ),
            ))
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err((1, format!("{}: {e}", path.display()))),
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| (1, format!("create {}: {e}", dir.display())))?;
    let tmp = dir.join(format!(
        ".{}.sentinel-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("unit"),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        // The mode as asked, whatever the umask.
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        (1, format!("write {}: {e}", path.display()))
    })?;
    Ok(true)
}

/// A duration as systemd and humans read it, in its largest exact unit:
/// `1h`, `5min`, `30s`, `100ms`, `1500us`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d.is_zero() {
        "0".to_string()
    } else if d.subsec_nanos() == 0 {
        match secs {
            s if s % 3600 == 0 => format!("{}h", s / 3600),
            s if s % 60 == 0 => format!("{}min", s / 60),
            s => format!("{s}s"),
        }
    } else if d.as_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}us", d.as_micros().max(1))
    }
}

/// A word for a POSIX shell: as is when it is only safe characters, else
/// in single quotes (a `'` inside as `'\''`).
pub fn shell_word(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:@,%".contains(&b));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A path as shell text.
pub fn shell_path(p: &Path) -> String {
    shell_word(&p.to_string_lossy())
}

/// The header comment every generated file starts with.
pub fn made_by(what: &str) -> String {
    format!(
        "Made by `sentinel generate {what}` (sentinel {}).",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests;
