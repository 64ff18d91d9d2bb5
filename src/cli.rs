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
    /// print the version and exit
    #[argh(switch, short = 'V')]
    version: bool,
    /// run the control command on other hosts over ssh: [user@]host[:port],
    /// names and @groups from ~/.config/sentinel/hosts.toml, comma-separated
    #[argh(option, short = 'H')]
    hosts: Option<String>,
    /// with several hosts, how many to reach at once (default 8)
    #[argh(option, default = "8")]
    parallel: usize,
    /// the sentinel program on the remote hosts (default: the inventory's
    /// `sentinel`, else `sentinel` from the remote PATH)
    #[argh(option)]
    remote_sentinel: Option<String>,
    #[argh(subcommand)]
    cmd: Option<Cmd>,
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
    Scale(ScaleArgs),
    Reload(ReloadArgs),
    ResetFailed(ResetFailedArgs),
    Logs(LogsArgs),
    Stats(StatsArgs),
    Top(TopArgs),
    Shutdown(ShutdownArgs),
    Bridge(BridgeArgs),
    Generate(crate::generate::GenerateArgs),
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
    /// when this service is down for good, stop everything and exit with its
    /// exit code (as `critical = true`; repeatable)
    #[argh(option)]
    exit_with: Vec<String>,
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
    ResetFailedArgs,
    "reset-failed",
    "Forget the crash-loop count of failed services (they stay stopped until `start`)."
);

/// Restart services (NAME, @group, or --all).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "restart")]
struct RestartArgs {
    /// service names and @groups
    #[argh(positional)]
    targets: Vec<String>,
    /// every service
    #[argh(switch)]
    all: bool,
    /// one instance at a time, each next once the new one is ready
    #[argh(switch)]
    rolling: bool,
    /// control socket path
    #[argh(option, short = 's')]
    socket: Option<PathBuf>,
    /// take the control socket path from this config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

/// Set how many instances of a service run: `scale web 4`, or a new range `scale web 2-6`.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "scale")]
struct ScaleArgs {
    /// the service
    #[argh(positional)]
    service: String,
    /// a count (within the service's range) or a new range MIN-MAX
    #[argh(positional)]
    count: String,
    /// control socket path
    #[argh(option, short = 's')]
    socket: Option<PathBuf>,
    /// take the control socket path from this config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

/// Read the config file again: start added services, stop removed ones, restart changed ones.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "reload")]
struct ReloadArgs {
    /// control socket path
    #[argh(option, short = 's')]
    socket: Option<PathBuf>,
    /// take the control socket path from this config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

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
    /// only lines matching this regular expression
    #[argh(option)]
    grep: Option<String>,
    /// only lines from the last DURATION (e.g. 10m, 1h)
    #[argh(option, from_str_fn(duration_arg))]
    since: Option<std::time::Duration>,
    /// only lines from this stream: stdout or stderr
    #[argh(option, from_str_fn(stream_arg))]
    stream: Option<crate::logs::Stream>,
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

/// Show a service's CPU, memory and restarts, with their recent history.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "stats")]
struct StatsArgs {
    /// the service
    #[argh(positional)]
    service: String,
    /// how far back the history goes (default: all that is kept, up to 15m)
    #[argh(option, from_str_fn(duration_arg))]
    window: Option<std::time::Duration>,
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

/// A live table of services: state, uptime, restarts, CPU, memory (Ctrl-C ends).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "top")]
struct TopArgs {
    /// time between refreshes (default 1s)
    #[argh(
        option,
        from_str_fn(duration_arg),
        default = "std::time::Duration::from_secs(1)"
    )]
    interval: std::time::Duration,
    /// stop after this many refreshes (default: until interrupted)
    #[argh(option, short = 'n')]
    iterations: Option<u64>,
    /// control socket path
    #[argh(option, short = 's')]
    socket: Option<PathBuf>,
    /// take the control socket path from this config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

fn duration_arg(s: &str) -> Result<std::time::Duration, String> {
    config::parse_duration(s)
}

fn stream_arg(s: &str) -> Result<crate::logs::Stream, String> {
    match s {
        "stdout" | "out" => Ok(crate::logs::Stream::Stdout),
        "stderr" | "err" => Ok(crate::logs::Stream::Stderr),
        _ => Err(format!("{s:?}: expected stdout or stderr")),
    }
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

/// Join stdin and stdout to the control socket (what -H runs over ssh).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "bridge")]
struct BridgeArgs {
    /// control socket path
    #[argh(option, short = 's')]
    socket: Option<PathBuf>,
    /// take the control socket path from this config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

/// The host `-H` names when it names one: [`client`] reaches its supervisor
/// through ssh instead of the local socket. Set once, before dispatch.
static REMOTE_HOST: std::sync::OnceLock<crate::remote::Host> = std::sync::OnceLock::new();

/// `-H`: one host is kept for [`client`], so every command that talks to a
/// supervisor works remotely unchanged; several fan out here, one
/// `sentinel -H HOST ...` child each. Some(exit code) when done here.
fn remote(args: &Args, cmd: &Cmd) -> Option<i32> {
    let spec = args.hosts.as_deref()?;
    // Commands that do not go through `client`: -H means nothing to them.
    let local = match cmd {
        Cmd::Run(_) => Some("run"),
        Cmd::Exec(_) => Some("exec"),
        Cmd::Check(_) => Some("check"),
        Cmd::Bridge(_) => Some("bridge"),
        Cmd::Generate(_) => Some("generate"),
        _ => None,
    };
    if let Some(name) = local {
        eprintln!(
            "sentinel: -H is for commands that talk to a supervisor (status, start, stop, \
             restart, logs, ...), not `{name}`; run `ssh HOST sentinel {name} ...` instead"
        );
        return Some(2);
    }
    let hosts = crate::remote::Inventory::load().and_then(|inv| inv.resolve(spec));
    let mut hosts = match hosts {
        Ok(h) => h,
        Err(e) => {
            eprintln!("sentinel: {e}");
            return Some(2);
        }
    };
    if let Some(s) = &args.remote_sentinel {
        for h in &mut hosts {
            h.sentinel = Some(s.clone());
        }
    }
    if let [one] = &hosts[..] {
        let _ = REMOTE_HOST.set(one.clone());
        return None;
    }
    if args.parallel == 0 {
        eprintln!("sentinel: --parallel 0: expected at least 1 host at once");
        return Some(2);
    }
    let endless = matches!(cmd, Cmd::Logs(a) if a.follow)
        || matches!(cmd, Cmd::Top(a) if a.iterations.is_none());
    if endless && hosts.len() > args.parallel {
        eprintln!(
            "sentinel: following {n} hosts needs them all at once, and --parallel is {p}: \
             pass --parallel {n}",
            n = hosts.len(),
            p = args.parallel
        );
        return Some(2);
    }
    let raw: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    Some(crate::remote::fanout::run(&hosts, &raw, args.parallel))
}

pub fn main() -> i32 {
    let mut args: Args = argh::from_env();
    let cmd = match args.cmd.take() {
        _ if args.version => {
            println!("sentinel {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Some(cmd) => cmd,
        None => {
            eprintln!("sentinel: no command given; `sentinel --help` lists them (run, exec, check, status, ...)");
            return 2;
        }
    };
    if !matches!(cmd, Cmd::Run(_) | Cmd::Exec(_)) {
        // A client piped into `head` ends quietly, as other tools do.
        sys::signals::default_sigpipe();
    }
    if let Some(code) = remote(&args, &cmd) {
        return code;
    }
    match cmd {
        Cmd::Run(a) => run(a),
        Cmd::Exec(a) => crate::exec::run(&a),
        Cmd::Check(a) => match config::load(&a.config) {
            Ok(cfg) => {
                print_warnings(&a.config, &cfg, "");
                // What only the seccomp compiler knows (syscall names).
                let problems: Vec<String> = cfg
                    .services
                    .iter()
                    .filter_map(|(name, svc)| {
                        let s = svc.isolation.seccomp.as_ref()?;
                        crate::seccomp::compile(s).err().map(|e| {
                            format!(
                                "{}: services.{name}.isolation.seccomp: {e}",
                                a.config.display()
                            )
                        })
                    })
                    .collect();
                if !problems.is_empty() {
                    for p in &problems {
                        eprintln!("{p}");
                    }
                    eprintln!("{} problem(s) found", problems.len());
                    return 2;
                }
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
        Cmd::Restart(a) if a.rolling => client(a.socket, a.config, |c| {
            targets(c, a.targets, a.all, "restart --rolling")
        }),
        Cmd::Restart(a) => client(a.socket, a.config, |c| {
            targets(c, a.targets, a.all, "restart")
        }),
        Cmd::ResetFailed(a) => client(a.socket, a.config, |c| {
            targets(c, a.targets, a.all, "reset-failed")
        }),
        Cmd::Scale(a) => client(a.socket, a.config, |c| scale(c, &a.service, &a.count)),
        Cmd::Reload(a) => client(a.socket, a.config, |c| {
            let r = answer(c.call(&Request::Reload {})?)?;
            println!("{}", r.message.unwrap_or_default());
            Ok(0)
        }),
        Cmd::Logs(a) => client(a.socket.clone(), a.config.clone(), |c| logs(c, &a)),
        Cmd::Stats(a) => client(a.socket.clone(), a.config.clone(), |c| stats(c, &a)),
        Cmd::Top(a) => client(a.socket.clone(), a.config.clone(), |c| top(c, &a)),
        Cmd::Shutdown(a) => client(a.socket, a.config, shutdown),
        Cmd::Bridge(a) => match socket_path(a.socket, a.config) {
            Ok(p) => crate::remote::bridge::run(&p),
            Err(e) => {
                eprintln!("sentinel: {e}");
                1
            }
        },
        Cmd::Generate(a) => crate::generate::run(&a),
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
    print_warnings(&a.config, &cfg, "sentinel: ");
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
        exit_with: a.exit_with.clone(),
        socket,
        echo_logs: a.echo_logs || cfg.supervisor.echo_logs.unwrap_or(role.is_pid1()),
        role,
    };
    let rt = crate::event_loop::Runtime::new(&cfg, opts);
    // The runtime keeps its own copy; this one would sit unused for the
    // whole run (about 1.7 KiB per service).
    drop(cfg);
    let code = match rt {
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

/// The config's warnings (an OCI bundle's unsupported fields), one line
/// each on stderr: `PREFIXwarning: FILE:LINE:COL: KEY: MESSAGE`.
fn print_warnings(path: &std::path::Path, cfg: &config::Config, prefix: &str) {
    if cfg.warnings.is_empty() {
        return;
    }
    let text = config::ConfigErrors {
        path: path.to_path_buf(),
        problems: cfg.warnings.clone(),
    }
    .to_string();
    for line in text.lines() {
        eprintln!("{prefix}warning: {line}");
    }
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
    // With -H, `socket` and `config` are paths on that host.
    let connected = match REMOTE_HOST.get() {
        Some(host) => crate::remote::connect(host, socket, config),
        None => socket_path(socket, config).and_then(|p| Client::connect(&p)),
    };
    let result = connected.and_then(|mut c| f(&mut c));
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
    // JSON readers get the resource figures too (read on demand).
    let r = answer(c.call(&Request::Status {
        target,
        stats: json,
    })?)?;
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
    let mut rows: Vec<[String; 6]> = Vec::new();
    for (k, s) in services.iter().enumerate() {
        rows.push(status_row(s));
        // After a service's last instance: its total.
        let Some(svc) = &s.service else { continue };
        if services.get(k + 1).and_then(|n| n.service.as_ref()) == Some(svc) {
            continue;
        }
        let all: Vec<&ServiceStatus> = services
            .iter()
            .filter(|x| x.service.as_ref() == Some(svc))
            .collect();
        let running = all.iter().filter(|x| x.state == "running").count();
        rows.push([
            format!("{svc} (total)"),
            format!(
                "{running}/{} running",
                s.instances.unwrap_or(all.len() as u32)
            ),
            "-".into(),
            "-".into(),
            all.iter().map(|x| x.restarts).sum::<u64>().to_string(),
            match (&s.instance_range, &s.last_scale) {
                (_, Some(l)) => l.clone(),
                (Some(r), None) => format!("range {r}"),
                _ => "-".into(),
            },
        ]);
    }
    table(rows)
}

fn status_row(s: &ServiceStatus) -> [String; 6] {
    let last = match (&s.last_error, &s.last_exit) {
        _ if s.waiting_for.is_some() => s.waiting_for.clone().unwrap_or_default(),
        (Some(e), _) if s.state != "running" => e.clone(),
        (_, Some(x)) => x.clone(),
        _ => "-".into(),
    };
    [
        s.name.clone(),
        match s.healthy {
            Some(true) => format!("{} (healthy)", s.state),
            Some(false) => format!("{} (unhealthy)", s.state),
            None => s.state.clone(),
        },
        s.pid.map_or("-".into(), |p| p.to_string()),
        s.uptime_ms.map_or("-".into(), human_duration),
        s.restarts.to_string(),
        last,
    ]
}

fn table(rows: Vec<[String; 6]>) -> String {
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
            "reset-failed" => Request::ResetFailed { target },
            "restart --rolling" => Request::Restart {
                target,
                rolling: true,
            },
            _ => Request::Restart {
                target,
                rolling: false,
            },
        };
        let r = answer(c.call(&req)?)?;
        if let Some(m) = r.message {
            println!("{m}");
        }
    }
    Ok(0)
}

fn scale(c: &mut Client, service: &str, count: &str) -> Result<i32, String> {
    let req = if count.contains('-') {
        // Checked here for a quick answer; the supervisor checks again.
        config::InstanceRange::parse(count).map_err(|e| format!("scale {service}: {e}"))?;
        Request::Scale {
            service: service.to_string(),
            count: None,
            range: Some(count.to_string()),
        }
    } else {
        let n = count.parse::<u32>().map_err(|_| {
            format!(
                "scale {service}: `{count}` is not a count; give a number (`4`) or a range (`2-6`)"
            )
        })?;
        Request::Scale {
            service: service.to_string(),
            count: Some(n),
            range: None,
        }
    };
    let r = answer(c.call(&req)?)?;
    println!("{}", r.message.unwrap_or_default());
    Ok(0)
}

fn print_line(l: &crate::logs::LogLine, json: bool) {
    if json {
        if let Ok(s) = serde_json::to_string(l) {
            println!("{s}");
        }
    } else if let Some(u) = &l.unit {
        println!("{u} | {}", l.text);
    } else {
        println!("{}", l.text);
    }
}

fn logs(c: &mut Client, a: &LogsArgs) -> Result<i32, String> {
    let r = answer(c.call(&Request::Logs {
        service: a.service.clone(),
        lines: a.lines,
        follow: a.follow,
        grep: a.grep.clone(),
        since_ms: a.since.map(|d| d.as_millis() as u64),
        stream: a.stream,
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

/// `12.3M`, `512K`, `1.5G`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else if v < 10.0 {
        format!("{v:.1}{}", UNITS[u])
    } else {
        format!("{v:.0}{}", UNITS[u])
    }
}

/// A line of block characters scaled between the values' min and max.
fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    values
        .iter()
        .map(|v| {
            let x = if max > min {
                (v - min) / (max - min)
            } else {
                0.0
            };
            BARS[((x * 7.0).round() as usize).min(7)]
        })
        .collect()
}

fn stats(c: &mut Client, a: &StatsArgs) -> Result<i32, String> {
    let r = answer(c.call(&Request::Stats {
        service: a.service.clone(),
        window_ms: a.window.map(|d| d.as_millis() as u64),
    })?)?;
    let s = r.stats.ok_or("the supervisor sent no stats")?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?
        );
        return Ok(0);
    }
    print!("{}", stats_text(&s));
    Ok(0)
}

fn stats_text(s: &crate::metrics::StatsReply) -> String {
    let mut out = format!("{}: {}, {} restarts\n", s.service, s.state, s.restarts);
    let c = &s.current;
    let mut row = |k: &str, v: String| out.push_str(&format!("  {k:<10} {v}\n"));
    if let Some(v) = c.cpu_seconds {
        row("cpu", format!("{v:.2}s"));
    }
    if let Some(v) = c.memory_bytes {
        let peak = c
            .memory_peak_bytes
            .map(|p| format!(" (peak {})", human_bytes(p)))
            .unwrap_or_default();
        row("memory", format!("{}{peak}", human_bytes(v)));
    }
    if let Some(v) = c.pids {
        row("pids", v.to_string());
    }
    if let Some(v) = c.oom_kills {
        row("oom kills", v.to_string());
    }
    if let (Some(r), Some(w)) = (c.io_read_bytes, c.io_write_bytes) {
        row(
            "io",
            format!("read {} write {}", human_bytes(r), human_bytes(w)),
        );
    }
    let samples = &s.samples;
    if samples.len() >= 2 {
        let span = (samples[samples.len() - 1].time_ms - samples[0].time_ms) / 1000;
        out.push_str(&format!(
            "history: {} samples over {}\n",
            samples.len(),
            human_duration(span * 1000)
        ));
        let cpu: Vec<f64> = samples
            .windows(2)
            .map(|w| {
                let dt = (w[1].time_ms.saturating_sub(w[0].time_ms)) as f64 / 1000.0;
                match (w[0].cpu_seconds, w[1].cpu_seconds) {
                    (Some(a), Some(b)) if dt > 0.0 => ((b - a) / dt * 100.0).max(0.0),
                    _ => 0.0,
                }
            })
            .collect();
        let mem: Vec<f64> = samples
            .iter()
            .map(|x| x.memory_bytes.unwrap_or(0) as f64)
            .collect();
        let last_cpu = cpu.last().copied().unwrap_or(0.0);
        out.push_str(&format!(
            "  cpu %      {} {last_cpu:.1}%\n",
            sparkline(&cpu)
        ));
        out.push_str(&format!(
            "  memory     {} {}\n",
            sparkline(&mem),
            human_bytes(*mem.last().unwrap_or(&0.0) as u64)
        ));
    } else {
        out.push_str("history: sampling started; ask again in a few seconds\n");
    }
    out
}

fn top(c: &mut Client, a: &TopArgs) -> Result<i32, String> {
    use std::io::{IsTerminal, Write};
    let tty = std::io::stdout().is_terminal();
    let mut prev: std::collections::HashMap<String, (Option<i32>, f64, std::time::Instant)> =
        Default::default();
    let mut n = 0u64;
    loop {
        let r = answer(c.call(&Request::Status {
            target: None,
            stats: true,
        })?)?;
        let now = std::time::Instant::now();
        let services = r.services.unwrap_or_default();
        let mut cpu_pct = Vec::new();
        for s in &services {
            let cpu = s.stats.as_ref().and_then(|x| x.cpu_seconds);
            let pct = match (cpu, prev.get(&s.name)) {
                (Some(c), Some((pid, p, t))) if *pid == s.pid && c >= *p => {
                    let dt = now.duration_since(*t).as_secs_f64();
                    (dt > 0.0).then(|| (c - p) / dt * 100.0)
                }
                _ => None,
            };
            cpu_pct.push(pct);
            if let Some(c) = cpu {
                prev.insert(s.name.clone(), (s.pid, c, now));
            }
        }
        let text = top_text(r.supervisor.as_ref(), &services, &cpu_pct);
        let mut out = std::io::stdout().lock();
        if tty {
            // Home, draw, clear what is left of the previous frame.
            let _ = write!(out, "\x1b[H{}\x1b[J", text.replace('\n', "\x1b[K\n"));
        } else {
            let _ = writeln!(out, "{text}");
        }
        let _ = out.flush();
        n += 1;
        if a.iterations.is_some_and(|max| n >= max) {
            return Ok(0);
        }
        std::thread::sleep(a.interval);
    }
}

fn top_text(
    sup: Option<&control::SupervisorStatus>,
    services: &[ServiceStatus],
    cpu_pct: &[Option<f64>],
) -> String {
    let mut out = String::new();
    if let Some(sup) = sup {
        let running = services.iter().filter(|s| s.state == "running").count();
        out.push_str(&format!(
            "sentinel pid {}  up {}  {} services, {} running{}\n\n",
            sup.pid,
            human_duration(sup.uptime_ms),
            services.len(),
            running,
            if sup.shutting_down {
                "  SHUTTING DOWN"
            } else {
                ""
            }
        ));
    }
    let header = ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "CPU%", "MEM"];
    let rows: Vec<[String; 7]> = services
        .iter()
        .zip(cpu_pct)
        .map(|(s, pct)| {
            [
                s.name.clone(),
                match s.healthy {
                    Some(true) => format!("{} (healthy)", s.state),
                    Some(false) => format!("{} (unhealthy)", s.state),
                    None => s.state.clone(),
                },
                s.pid.map_or("-".into(), |p| p.to_string()),
                s.uptime_ms.map_or("-".into(), human_duration),
                s.restarts.to_string(),
                pct.map_or("-".into(), |p| format!("{p:.1}")),
                s.stats
                    .as_ref()
                    .and_then(|x| x.memory_bytes)
                    .map_or("-".into(), human_bytes),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let bold = |s: &str, on: bool| {
        if on {
            format!("\x1b[1m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let color = |state: &str| match state {
        "running" => "\x1b[32m",
        "backoff" | "stopping" => "\x1b[33m",
        "failed" => "\x1b[31m",
        _ => "\x1b[2m",
    };
    let mut line = String::new();
    for (i, h) in header.iter().enumerate() {
        line.push_str(&format!("{h:w$}  ", w = widths[i]));
    }
    out.push_str(&bold(line.trim_end(), true));
    out.push('\n');
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            let cell = format!("{c:w$}  ", w = widths[i]);
            if i == 1 {
                line.push_str(&format!("{}{cell}\x1b[0m", color(c)));
            } else {
                line.push_str(&cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
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
    fn bytes_and_sparklines_read_well() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(20 * 1024 * 1024), "20M");
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 7.0]), "▁▂▃█");
        assert_eq!(sparkline(&[3.0, 3.0]), "▁▁");
    }

    #[test]
    fn status_table_totals_instances() {
        let inst = |k: u32, state: &str| ServiceStatus {
            name: format!("web@{k}"),
            state: state.into(),
            service: Some("web".into()),
            instance: Some(k),
            instances: Some(2),
            instance_range: Some("1-4".into()),
            restarts: 1,
            ..Default::default()
        };
        let t = status_table(&[inst(0, "running"), inst(1, "starting")]);
        let last = t.lines().last().unwrap();
        assert!(last.starts_with("web (total)"), "{t}");
        assert!(last.contains("1/2 running"), "{t}");
        assert!(last.contains("range 1-4"), "{t}");
        assert!(last.contains(" 2 "), "restarts summed: {t}");
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
            waiting_for: None,
            healthy: None,
            health: None,
            notify_status: None,
            required: true,
            log_bytes: 0,
            started_at_ms: None,
            stats: None,
            ..Default::default()
        };
        let t = status_table(&[s]);
        assert_eq!(
            t,
            "NAME  STATE    PID   UPTIME  RESTARTS  LAST EXIT\nweb   running  1234  5s      2         exit 1\n"
        );
    }
}
