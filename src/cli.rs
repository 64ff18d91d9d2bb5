//! Command-line interface: argh commands and their exit codes.
//!
//! Exit codes: 0 success; 1 a runtime failure (cannot connect, a command the
//! supervisor refused); 2 bad usage or a bad config file.

use argh::FromArgs;
use std::path::PathBuf;

use crate::config;
use crate::control::{self, Client, Request, Response, ServiceStatus};

/// sentinel: run, isolate and supervise processes.
#[derive(FromArgs, Debug)]
struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

// `exec`'s many flags make its variant large; the enum is parsed once.
#[allow(clippy::large_enum_variant)]
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Cmd {
    Run(RunArgs),
    Exec(ExecArgs),
    Check(CheckArgs),
    Status(StatusArgs),
    Start(StartArgs),
    Stop(StopArgs),
    Restart(RestartArgs),
    Logs(LogsArgs),
    Shutdown(ShutdownArgs),
}

/// Run the supervisor in the foreground on a config file.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "run")]
struct RunArgs {
    /// config file (TOML, or YAML with .yaml/.yml)
    #[argh(option, short = 'c')]
    config: PathBuf,
    /// control socket path (overrides the config's `socket`)
    #[argh(option, short = 's')]
    socket: Option<PathBuf>,
    /// echo service output on stdout, prefixed with the service name
    /// (default: on when sentinel is PID 1)
    #[argh(switch)]
    echo_logs: bool,
}

/// Run one command as tini does: forward signals, reap orphans, pass on its exit code.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "exec")]
pub struct ExecArgs {
    /// memory limit (cgroup memory.max), e.g. 64M
    #[argh(option)]
    pub memory_max: Option<String>,
    /// memory throttling point (memory.high)
    #[argh(option)]
    pub memory_high: Option<String>,
    /// CPU limit: CPUs ("1.5") or quota/period ("50ms/100ms")
    #[argh(option)]
    pub cpu_max: Option<String>,
    /// CPU weight, 1..10000
    #[argh(option)]
    pub cpu_weight: Option<u32>,
    /// most processes and threads (pids.max)
    #[argh(option)]
    pub pids_max: Option<u64>,
    /// weight for I/O, 1..10000
    #[argh(option)]
    pub io_weight: Option<u32>,
    /// run without the limits this host cannot apply (a warning instead of an error)
    #[argh(switch)]
    pub limits_optional: bool,
    /// nice value, -20..19
    #[argh(option)]
    pub nice: Option<i32>,
    /// priority for I/O: idle, best-effort:N, realtime:N
    #[argh(option)]
    pub ionice: Option<String>,
    /// OOM score adjustment, -1000..1000
    #[argh(option)]
    pub oom_score_adjust: Option<i32>,
    /// resource limit NAME=SOFT[:HARD], e.g. nofile=1024 (repeatable)
    #[argh(option)]
    pub rlimit: Vec<String>,
    /// run as USER[:GROUP] (names or ids, from /etc/passwd and /etc/group)
    #[argh(option, short = 'u')]
    pub user: Option<String>,
    /// a supplementary group (repeatable)
    #[argh(option)]
    pub group_add: Vec<String>,
    /// new namespaces: pid,net,mount,ipc,uts,user,cgroup
    #[argh(option)]
    pub unshare: Option<String>,
    /// hostname (with the uts namespace)
    #[argh(option)]
    pub hostname: Option<String>,
    /// user namespace uid map "INSIDE OUTSIDE COUNT" (repeatable)
    #[argh(option)]
    pub uid_map: Vec<String>,
    /// user namespace gid map "INSIDE OUTSIDE COUNT" (repeatable)
    #[argh(option)]
    pub gid_map: Vec<String>,
    /// make a path read-only (with the mount namespace; repeatable)
    #[argh(option)]
    pub ro: Vec<String>,
    /// make a path inaccessible (repeatable)
    #[argh(option)]
    pub hide: Vec<String>,
    /// mount a fresh tmpfs on a path (repeatable)
    #[argh(option)]
    pub tmpfs: Vec<String>,
    /// pivot_root into this folder
    #[argh(option)]
    pub root: Option<PathBuf>,
    /// keep this capability, e.g. CAP_NET_BIND_SERVICE (repeatable); none at all: --cap-keep none
    #[argh(option)]
    pub cap_keep: Vec<String>,
    /// allow gaining privileges (setuid binaries); no_new_privs is on by default
    #[argh(switch)]
    pub allow_new_privs: bool,
    /// seccomp profile: default or strict
    #[argh(option)]
    pub seccomp: Option<String>,
    /// deny a syscall with EPERM (repeatable; without --seccomp, a deny-list)
    #[argh(option)]
    pub seccomp_deny: Vec<String>,
    /// allow a syscall on top of the profile (repeatable)
    #[argh(option)]
    pub seccomp_allow: Vec<String>,
    /// working directory
    #[argh(option, short = 'w')]
    pub workdir: Option<PathBuf>,
    /// set an environment variable KEY=VALUE (repeatable)
    #[argh(option, short = 'e')]
    pub env: Vec<String>,
    /// the cgroup for limits (relative to sentinel's own; default sentinel)
    #[argh(option, default = "String::from(\"sentinel\")")]
    pub cgroup_root: String,
    /// the command and its arguments (after `--`)
    #[argh(positional, greedy)]
    pub command: Vec<String>,
}

/// Validate a config file and report every problem.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
struct CheckArgs {
    /// config file (TOML, or YAML with .yaml/.yml)
    #[argh(option, short = 'c')]
    config: PathBuf,
}

/// Show services: name, state, pid, uptime, restarts, last exit.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "status")]
struct StatusArgs {
    /// a service name, or @group (default: all)
    #[argh(positional)]
    target: Option<String>,
    /// print JSON
    #[argh(switch)]
    json: bool,
    /// control socket path
    #[argh(option, short = 's')]
    socket: Option<PathBuf>,
    /// take the control socket path from this config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

macro_rules! target_command {
    ($name:ident, $cmd:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(FromArgs, Debug)]
        #[argh(subcommand, name = $cmd)]
        struct $name {
            /// service names and @groups
            #[argh(positional)]
            targets: Vec<String>,
            /// every service
            #[argh(switch)]
            all: bool,
            /// control socket path
            #[argh(option, short = 's')]
            socket: Option<PathBuf>,
            /// take the control socket path from this config file
            #[argh(option, short = 'c')]
            config: Option<PathBuf>,
        }
    };
}

target_command!(
    StartArgs,
    "start",
    "Start services (NAME, @group, or --all)."
);
target_command!(
    StopArgs,
    "stop",
    "Stop services (NAME, @group, or --all): stop_signal, then SIGKILL after stop_timeout."
);
target_command!(
    RestartArgs,
    "restart",
    "Restart services (NAME, @group, or --all)."
);

/// Show a service's recent output, and follow it with -f.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "logs")]
struct LogsArgs {
    /// the service
    #[argh(positional)]
    service: String,
    /// how many recent lines (default 20)
    #[argh(option, short = 'n', default = "20")]
    lines: usize,
    /// keep printing new lines as they come
    #[argh(switch, short = 'f')]
    follow: bool,
    /// print JSON lines
    #[argh(switch)]
    json: bool,
    /// control socket path
    #[argh(option, short = 's')]
    socket: Option<PathBuf>,
    /// take the control socket path from this config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

/// Stop every service in order and exit the supervisor.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "shutdown")]
struct ShutdownArgs {
    /// control socket path
    #[argh(option, short = 's')]
    socket: Option<PathBuf>,
    /// take the control socket path from this config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

pub fn main() -> i32 {
    let args: Args = argh::from_env();
    if !matches!(args.cmd, Cmd::Run(_) | Cmd::Exec(_)) {
        // A client piped into `head` ends quietly, as other tools do.
        sys::signals::default_sigpipe();
    }
    match args.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Exec(a) => crate::exec::run(&a),
        Cmd::Check(a) => match config::load(&a.config) {
            Ok(cfg) => {
                println!(
                    "{}: ok, {} services",
                    a.config.display(),
                    cfg.services.len()
                );
                0
            }
            Err(e) => {
                eprintln!("{e}");
                eprintln!("{} problem(s) found", e.problems.len());
                2
            }
        },
        Cmd::Status(a) => client(a.socket, a.config, |c| status(c, a.target, a.json)),
        Cmd::Start(a) => client(a.socket, a.config, |c| {
            targets(c, a.targets, a.all, "start")
        }),
        Cmd::Stop(a) => client(a.socket, a.config, |c| targets(c, a.targets, a.all, "stop")),
        Cmd::Restart(a) => client(a.socket, a.config, |c| {
            targets(c, a.targets, a.all, "restart")
        }),
        Cmd::Logs(a) => client(a.socket.clone(), a.config.clone(), |c| logs(c, &a)),
        Cmd::Shutdown(a) => client(a.socket, a.config, shutdown),
    }
}

fn run(a: RunArgs) -> i32 {
    let cfg = match config::load(&a.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let role = crate::pid1::take_role();
    let socket = match a.socket.or_else(|| cfg.supervisor.socket.clone()) {
        Some(s) => s,
        None => match control::default_socket() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("sentinel: {e}");
                return 2;
            }
        },
    };
    let opts = crate::event_loop::Options {
        config_path: a.config.clone(),
        socket,
        echo_logs: a.echo_logs || cfg.supervisor.echo_logs.unwrap_or(role.is_pid1()),
        role,
    };
    let code = match crate::event_loop::Runtime::new(&cfg, opts) {
        Ok(rt) => rt.run(),
        Err(e) => {
            eprintln!("sentinel: {e}");
            1
        }
    };
    if role == crate::pid1::Role::RealInit {
        crate::pid1::power_off();
    }
    code
}

/// The socket: --socket, then SENTINEL_SOCKET, then the config's, then the default.
fn socket_path(socket: Option<PathBuf>, config: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(s) = socket {
        return Ok(s);
    }
    if let Some(s) = std::env::var_os("SENTINEL_SOCKET").filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(s));
    }
    if let Some(c) = config {
        let cfg = config::load(&c).map_err(|e| e.to_string())?;
        if let Some(s) = cfg.supervisor.socket {
            return Ok(s);
        }
    }
    control::default_socket()
}

fn client(
    socket: Option<PathBuf>,
    config: Option<PathBuf>,
    f: impl FnOnce(&mut Client) -> Result<i32, String>,
) -> i32 {
    let result = socket_path(socket, config).and_then(|p| {
        let mut c = Client::connect(&p)?;
        f(&mut c)
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sentinel: {e}");
            1
        }
    }
}

fn answer(r: Response) -> Result<Response, String> {
    if r.ok {
        Ok(r)
    } else {
        Err(r.error.unwrap_or_else(|| "request failed".into()))
    }
}

fn status(c: &mut Client, target: Option<String>, json: bool) -> Result<i32, String> {
    let r = answer(c.call(&Request::Status { target })?)?;
    if json {
        let doc = serde_json::json!({ "supervisor": r.supervisor, "services": r.services });
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", status_table(&r.services.unwrap_or_default()));
    }
    Ok(0)
}

/// `1h02m`, `3m05s`, `12s`.
fn human_duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

fn status_table(services: &[ServiceStatus]) -> String {
    let rows: Vec<[String; 6]> = services
        .iter()
        .map(|s| {
            let last = match (&s.last_error, &s.last_exit) {
                (Some(e), _) if s.state != "running" => e.clone(),
                (_, Some(x)) => x.clone(),
                _ => "-".into(),
            };
            [
                s.name.clone(),
                s.state.clone(),
                s.pid.map_or("-".into(), |p| p.to_string()),
                s.uptime_ms.map_or("-".into(), human_duration),
                s.restarts.to_string(),
                last,
            ]
        })
        .collect();
    let header = ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(header.map(String::from)).chain(rows) {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i == r.len() - 1 {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn targets(c: &mut Client, targets: Vec<String>, all: bool, verb: &str) -> Result<i32, String> {
    let targets = match (all, targets.is_empty()) {
        (true, true) => vec!["*".to_string()],
        (false, false) => targets,
        (true, false) => return Err(format!("{verb}: give service names or --all, not both")),
        (false, true) => return Err(format!("{verb}: name a service or @group, or pass --all")),
    };
    for target in targets {
        let req = match verb {
            "start" => Request::Start { target },
            "stop" => Request::Stop { target },
            _ => Request::Restart { target },
        };
        let r = answer(c.call(&req)?)?;
        if let Some(m) = r.message {
            println!("{m}");
        }
    }
    Ok(0)
}

fn print_line(l: &crate::logs::LogLine, json: bool) {
    if json {
        if let Ok(s) = serde_json::to_string(l) {
            println!("{s}");
        }
    } else {
        println!("{}", l.text);
    }
}

fn logs(c: &mut Client, a: &LogsArgs) -> Result<i32, String> {
    let r = answer(c.call(&Request::Logs {
        service: a.service.clone(),
        lines: a.lines,
        follow: a.follow,
    })?)?;
    for l in r.lines.unwrap_or_default() {
        print_line(&l, a.json);
    }
    if a.follow {
        while let Some(r) = c.recv()? {
            if let Some(l) = r.line {
                print_line(&l, a.json);
            }
        }
    }
    Ok(0)
}

fn shutdown(c: &mut Client) -> Result<i32, String> {
    let r = answer(c.call(&Request::Shutdown {})?)?;
    if let Some(m) = r.message {
        println!("{m}");
    }
    // The supervisor closes the connection when it exits.
    while c.recv()?.is_some() {}
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(59_999), "59s");
        assert_eq!(human_duration(185_000), "3m05s");
        assert_eq!(human_duration(3_720_000), "1h02m");
        assert_eq!(human_duration(90_000_000), "1d01h");
    }

    #[test]
    fn status_table_aligns_columns() {
        let s = ServiceStatus {
            name: "web".into(),
            state: "running".into(),
            pid: Some(1234),
            uptime_ms: Some(5000),
            restarts: 2,
            last_exit: Some("exit 1".into()),
            last_exit_code: Some(1),
            last_error: None,
            groups: vec![],
            log_dropped_bytes: 0,
            cgroup: None,
            stats: None,
        };
        let t = status_table(&[s]);
        assert_eq!(
            t,
            "NAME  STATE    PID   UPTIME  RESTARTS  LAST EXIT\nweb   running  1234  5s      2         exit 1\n"
        );
    }
}
