//! The ssh transport: `ssh -T HOST sentinel bridge` with its stdin and
//! stdout on one end of a socketpair, so a [`Client`](crate::control::Client)
//! talks to it exactly as to a local control socket; its stderr goes to a
//! memfd that is read when the connection ends, to say why.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, ExitStatus, Stdio};

use super::Host;

/// Seconds ssh waits for the TCP connection (unless the host's options say otherwise).
pub const CONNECT_TIMEOUT: u32 = 5;

/// `s` as one word for the remote user's shell.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-:@%+=,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The remote command: `sentinel bridge [-s SOCKET] [-c CONFIG]`, quoted.
pub fn remote_command(host: &Host, socket: Option<&str>, config: Option<&str>) -> String {
    let program = host.sentinel.as_deref().unwrap_or("sentinel");
    let mut cmd = format!("{} bridge", shell_quote(program));
    if let Some(s) = socket.or(host.socket.as_deref()) {
        cmd.push_str(&format!(" -s {}", shell_quote(s)));
    }
    if let Some(c) = config {
        cmd.push_str(&format!(" -c {}", shell_quote(c)));
    }
    cmd
}

/// ssh's arguments to run `remote` on `host`. BatchMode comes first so that
/// nothing can turn password prompts back on; the host's options come
/// before our ConnectTimeout so that theirs wins (ssh keeps the first value).
pub fn ssh_args(host: &Host, remote: &str) -> Vec<String> {
    let mut a: Vec<String> = vec!["-T".into(), "-o".into(), "BatchMode=yes".into()];
    if let Some(f) = &host.ssh_config {
        a.extend(["-F".into(), f.clone()]);
    }
    for o in &host.ssh_options {
        a.extend(["-o".into(), o.clone()]);
    }
    a.extend(["-o".into(), format!("ConnectTimeout={CONNECT_TIMEOUT}")]);
    if let Some(p) = host.port {
        a.extend(["-p".into(), p.to_string()]);
    }
    a.extend(["--".into(), host.destination(), remote.to_string()]);
    a
}

/// A running `ssh ... sentinel bridge`.
#[derive(Debug)]
pub struct Session {
    pub label: String,
    child: Child,
    stderr: File,
    /// The remote command, for messages.
    program: String,
}

/// Start ssh; the returned stream is the remote control connection.
pub fn connect(
    host: &Host,
    socket: Option<&str>,
    config: Option<&str>,
) -> Result<(UnixStream, Session), String> {
    let remote = remote_command(host, socket, config);
    // ssh expands `~` in the options it reads, not in -F's argument.
    let mut host = host.clone();
    if let (Some(rest), Some(home)) = (
        host.ssh_config
            .as_deref()
            .and_then(|f| f.strip_prefix("~/")),
        std::env::var_os("HOME"),
    ) {
        host.ssh_config = Some(format!("{}/{rest}", home.to_string_lossy()));
    }
    let host = &host;
    let args = ssh_args(host, &remote);
    let label = &host.label;
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| format!("{label}: socketpair for ssh: {e}"))?;
    let theirs_too = theirs
        .try_clone()
        .map_err(|e| format!("{label}: socketpair for ssh: {e}"))?;
    let err_fd = nix::sys::memfd::memfd_create(
        "sentinel-ssh-stderr",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
    )
    .map_err(|e| format!("{label}: memfd for ssh's stderr: {e}"))?;
    let stderr = File::from(err_fd);
    let err_for_child = stderr
        .try_clone()
        .map_err(|e| format!("{label}: memfd for ssh's stderr: {e}"))?;
    let child = Command::new("ssh")
        .args(args.iter().map(OsString::from))
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::from(OwnedFd::from(theirs_too)))
        .stderr(Stdio::from(err_for_child))
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "{label}: cannot run ssh: it is not installed here (Debian package openssh-client)"
            ),
            _ => format!("{label}: cannot run ssh: {e}"),
        })?;
    let program = host.sentinel.as_deref().unwrap_or("sentinel").to_string();
    Ok((
        ours,
        Session {
            label: label.clone(),
            child,
            stderr,
            program,
        },
    ))
}

impl Session {
    /// After the connection ended: Ok when ssh and the bridge exited
    /// cleanly, else why not (the host is named).
    pub fn finish(&mut self) -> Result<(), String> {
        let status = self
            .child
            .wait()
            .map_err(|e| format!("{}: wait for ssh: {e}", self.label))?;
        if status.success() {
            return Ok(());
        }
        let mut text = String::new();
        let _ = self.stderr.seek(SeekFrom::Start(0));
        let _ = (&self.stderr).take(64 * 1024).read_to_string(&mut text);
        Err(format!(
            "{}: {}",
            self.label,
            diagnose(status, &text, &self.program)
        ))
    }
}

/// Why a session failed, from ssh's exit status and its stderr (which
/// carries the remote command's stderr too).
pub fn diagnose(status: ExitStatus, stderr: &str, program: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    let has = |s: &str| stderr.contains(s);
    let last = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .unwrap_or("")
        .to_string();
    match status.code() {
        Some(255) if has("REMOTE HOST IDENTIFICATION HAS CHANGED") => {
            "host key mismatch: the host's key is not the one in known_hosts \
             (ssh: REMOTE HOST IDENTIFICATION HAS CHANGED). If the host was reinstalled, \
             check the new key with its admin, then remove the old one with `ssh-keygen -R HOST`"
                .into()
        }
        Some(255) if has("Host key verification failed") => {
            "host key verification failed: the host is not in known_hosts, or its key \
             changed; run `ssh HOST` once to check and accept its key"
                .into()
        }
        Some(255) if has("Connection refused") => {
            "connection refused: no ssh server listens there (is sshd running, is the port right?)"
                .into()
        }
        Some(255) if has("timed out") => "connection timed out: the host did not answer \
             (is it up and reachable? ssh's ConnectTimeout is set in ssh_options)"
            .into(),
        Some(255) if has("Could not resolve hostname") => {
            format!("unknown host name ({last})")
        }
        Some(255) if has("Permission denied") => "ssh authentication failed (permission \
             denied): add your public key to the remote user's authorized_keys, or name the \
             key with ssh_options = [\"IdentityFile=...\"]; no password is asked (BatchMode)"
            .into(),
        Some(255) if has("No route to host") || has("Network is unreachable") => {
            format!("host unreachable ({last})")
        }
        Some(255) if !last.is_empty() => format!("ssh failed: {last}"),
        Some(255) => "ssh failed (exit 255) without saying why".into(),
        Some(127) => format!(
            "{program:?} was not found there ({}): install sentinel on that host, or give its \
             path with `sentinel = \"/path/to/sentinel\"` in the host inventory or \
             --remote-sentinel",
            if last.is_empty() { "exit 127" } else { &last }
        ),
        Some(126) => format!("{program:?} cannot be run there ({last})"),
        _ if has("Unrecognized argument: bridge") => {
            "the sentinel there has no `bridge` command (too old for -H); upgrade it".into()
        }
        Some(c) => match last.strip_prefix("sentinel: ") {
            Some(msg) => msg.to_string(),
            None if !last.is_empty() => last,
            None => format!("the remote command failed with exit code {c}"),
        },
        None => format!(
            "ssh was killed by signal {}",
            status.signal().unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn host() -> Host {
        Host {
            label: "web1".into(),
            user: Some("deploy".into()),
            host: "10.0.0.1".into(),
            port: Some(2222),
            socket: Some("/run/my sentinel.sock".into()),
            sentinel: None,
            ssh_options: vec!["IdentityFile=~/.ssh/k".into()],
            ssh_config: Some("/etc/ssh/alt".into()),
        }
    }

    #[test]
    fn quoting_keeps_words_whole() {
        assert_eq!(shell_quote("/usr/bin/sentinel"), "/usr/bin/sentinel");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn the_ssh_command_line() {
        let h = host();
        let remote = remote_command(&h, None, None);
        assert_eq!(remote, "sentinel bridge -s '/run/my sentinel.sock'");
        let other = Host {
            sentinel: Some("/opt/s".into()),
            ..h.clone()
        };
        assert_eq!(
            remote_command(&other, Some("/x.sock"), Some("/etc/s.toml")),
            "/opt/s bridge -s /x.sock -c /etc/s.toml"
        );
        assert_eq!(
            ssh_args(&h, &remote).join(" "),
            "-T -o BatchMode=yes -F /etc/ssh/alt -o IdentityFile=~/.ssh/k -o ConnectTimeout=5 \
             -p 2222 -- deploy@10.0.0.1 sentinel bridge -s '/run/my sentinel.sock'"
        );
    }

    #[test]
    fn failures_are_named() {
        let code = |c: i32| ExitStatus::from_raw(c << 8);
        let d = |c, e: &str| diagnose(code(c), e, "sentinel");
        assert!(d(255, "@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.\n")
            .starts_with("host key mismatch"));
        assert!(
            d(255, "Host key verification failed.\n").starts_with("host key verification failed")
        );
        assert!(d(
            255,
            "ssh: connect to host 127.0.0.1 port 1: Connection refused\n"
        )
        .starts_with("connection refused"));
        assert!(d(
            255,
            "ssh: connect to host 10.1.1.1 port 22: Connection timed out\n"
        )
        .starts_with("connection timed out"));
        assert!(d(255, "root@h: Permission denied (publickey).\n").contains("authorized_keys"));
        assert_eq!(
            d(255, "kex_exchange_identification: x\n"),
            "ssh failed: kex_exchange_identification: x"
        );
        let e = d(127, "bash: line 1: sentinel: command not found\n");
        assert!(
            e.starts_with(
                "\"sentinel\" was not found there (bash: line 1: sentinel: command not found)"
            ) && e.contains("--remote-sentinel"),
            "{e}"
        );
        assert_eq!(
            d(1, "Warning: Permanently added 'x' (ED25519) to the list of known hosts.\nsentinel: no supervisor at /run/sentinel.sock on this host\n"),
            "no supervisor at /run/sentinel.sock on this host"
        );
        assert!(d(1, "Unrecognized argument: bridge\n").contains("too old"));
        assert_eq!(d(3, ""), "the remote command failed with exit code 3");
        assert_eq!(
            diagnose(ExitStatus::from_raw(9), "", "s"),
            "ssh was killed by signal 9"
        );
    }
}
