//! From the raw model to a validated [`Config`]: defaults, relative paths,
//! env files, and the checks that span keys. Every problem is collected.

use super::envfile;
use super::node::{path_string, suggest, Kind, Node, Pos, Seg};
use super::raw::{
    RawBackoff, RawFile, RawHttp, RawLog, RawRestart, RawService, RawSupervisor, Sig, Version,
};
use super::values::signal_name;
use super::{
    Backoff, Config, LogConfig, Problem, RestartPolicy, ServiceConfig, ServiceKind, Signal,
    SliceConfig, SupervisorConfig, CONFIG_VERSION,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod isolation;
mod lifecycle;
mod oci;
mod scaling;
mod secrets;

/// Rotated log files kept beyond this many is surely a typo.
const MAX_LOG_KEEP: u32 = 1000;
/// `sun_path` holds 108 bytes, the last one a NUL.
const MAX_SOCKET_PATH: usize = 107;

pub struct Ctx<'a> {
    /// The document as deserialized, for positions.
    pub tree: &'a Node,
    /// The config file's folder, absolute.
    pub base: &'a Path,
    /// Key paths removed because they did not deserialize: checks on them
    /// would only repeat the problem.
    pub pruned: &'a [Vec<Seg>],
    pub yaml: bool,
    pub problems: Vec<Problem>,
    /// Accepted but not fully honoured (see `Config::warnings`).
    pub warnings: Vec<Problem>,
}

fn key(path: &[&str]) -> String {
    let segs: Vec<Seg> = path.iter().map(|k| Seg::Key(k.to_string())).collect();
    path_string(&segs)
}

/// A key path that may go into arrays:
/// `services.web.isolation.seccomp.deny[1].syscall`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath(Vec<Seg>);

impl KeyPath {
    pub fn new(keys: &[&str]) -> KeyPath {
        KeyPath(keys.iter().map(|k| Seg::Key(k.to_string())).collect())
    }

    /// This path, then `key`.
    pub fn k(&self, key: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_string()));
        p
    }

    /// This path, then item `index`.
    pub fn i(&self, index: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(index));
        p
    }

    /// The keys up to the first index (what `Ctx::pruned` compares).
    fn keys(&self) -> Vec<&str> {
        self.0
            .iter()
            .map_while(|s| match s {
                Seg::Key(k) => Some(k.as_str()),
                Seg::Index(_) => None,
            })
            .collect()
    }
}

/// The key and value positions of the node at `path`, or of its nearest
/// ancestor found.
fn locate(tree: &Node, path: &[Seg]) -> (Option<Pos>, Option<Pos>) {
    let mut node = tree;
    let mut found = (None, tree.pos);
    for seg in path {
        let next = match (seg, &node.kind) {
            (Seg::Key(k), Kind::Map(entries)) => entries
                .iter()
                .find(|e| e.key == *k)
                .map(|e| (e.key_pos, &e.value)),
            (Seg::Index(i), Kind::List(items)) => items.get(*i).map(|n| (n.pos, n)),
            _ => None,
        };
        let Some((key_pos, value)) = next else {
            break;
        };
        found = (key_pos, value.pos);
        node = value;
    }
    found
}

impl Ctx<'_> {
    fn push(&mut self, key: String, pos: Option<Pos>, message: String) {
        self.problems.push(Problem {
            key,
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            message,
        });
    }

    /// A problem with the value at `path` (or, if absent, its nearest parent).
    fn at_value(&mut self, path: &[&str], message: String) {
        let pos = (1..=path.len())
            .rev()
            .find_map(|n| self.tree.entry(&path[..n]).and_then(|e| e.value.pos));
        self.push(key(path), pos, message);
    }

    /// A problem with the key at `path` itself (a name, a whole table).
    fn at_key(&mut self, path: &[&str], message: String) {
        let pos = self.tree.entry(path).and_then(|e| e.key_pos);
        self.push(key(path), pos, message);
    }

    /// A problem with item `index` of the array at `path`.
    fn at_item(&mut self, path: &[&str], index: usize, message: String) {
        let entry = self.tree.entry(path);
        let pos = match entry.map(|e| &e.value.kind) {
            Some(Kind::List(items)) => items.get(index).and_then(|n| n.pos),
            _ => entry.and_then(|e| e.value.pos),
        };
        let mut k = key(path);
        if matches!(entry.map(|e| &e.value.kind), Some(Kind::List(_))) {
            k.push_str(&format!("[{index}]"));
        }
        self.push(k, pos, message);
    }

    /// Whether `path` (or something under it) failed to deserialize.
    fn pruned(&self, path: &[&str]) -> bool {
        self.pruned.iter().any(|p| {
            p.len() >= path.len()
                && p.iter()
                    .zip(path)
                    .all(|(seg, k)| matches!(seg, Seg::Key(s) if s == k))
        })
    }

    /// Whether a key of the table at `path` was refused as a misspelling
    /// of `key` (then "missing `key`" would say the same thing twice).
    fn misspelled(&self, path: &[&str], key: &str) -> bool {
        self.pruned.iter().any(|p| {
            p.len() == path.len() + 1
                && p.iter()
                    .zip(path)
                    .all(|(seg, k)| matches!(seg, Seg::Key(s) if s == k))
                && matches!(p.last(), Some(Seg::Key(s)) if suggest(s, &[key]).is_some())
        })
    }

    /// A problem with the value at `path` (or its nearest ancestor).
    fn at(&mut self, path: &KeyPath, message: String) {
        let (_, pos) = locate(self.tree, &path.0);
        self.push(path_string(&path.0), pos, message);
    }

    /// A problem with the key at the end of `path` (a setting that needs
    /// another one, a name).
    fn at_key_of(&mut self, path: &KeyPath, message: String) {
        let (key_pos, pos) = locate(self.tree, &path.0);
        self.push(path_string(&path.0), key_pos.or(pos), message);
    }

    /// Whether the value at `path` (or something under it) failed to
    /// deserialize.
    fn pruned_at(&self, path: &KeyPath) -> bool {
        self.pruned(&path.keys())
    }

    fn resolve(&self, p: &str) -> PathBuf {
        self.base.join(p)
    }
}

/// Build the config; `ctx.problems` holds whatever is wrong with it.
pub fn build(raw: RawFile, ctx: &mut Ctx<'_>) -> Config {
    let version = config_version(raw.version, ctx);
    let allow_insecure = raw
        .supervisor
        .as_ref()
        .and_then(|s| s.allow_insecure_permissions)
        .unwrap_or(false);
    let secrets = secrets::config(raw.secrets, allow_insecure, ctx);
    let supervisor = supervisor(raw.supervisor.unwrap_or_default(), ctx);
    let http = raw.http.map(|h| http(h, ctx));
    let mut services = Vec::new();
    let raw_services = raw.services.map(|s| s.0).unwrap_or_default();
    if raw_services.is_empty() && !ctx.pruned(&["services"]) {
        let example = if ctx.yaml {
            "services: {hello: {command: [echo, hello]}}"
        } else {
            "[services.hello] with command = [\"echo\", \"hello\"]"
        };
        ctx.at_key(
            &["services"],
            format!("no services defined; add at least one, e.g. {example}"),
        );
    }
    let slices = isolation::slices(raw.slices, ctx);
    for (name, raw) in raw_services {
        if let Err(why) = check_name(&name) {
            ctx.at_key(&["services", &name], format!("invalid service name: {why}"));
        }
        let svc = service(&name, raw, &supervisor, &slices, ctx);
        services.push((name, svc));
    }
    isolation::cgroup_names(&slices, &services, ctx);
    lifecycle::dependencies(&services, ctx);
    scaling::listen_conflicts(&services, http.as_ref(), ctx);
    let hooks = scaling::hooks(raw.hooks, &services, ctx);
    secrets::names(&services, &secrets, ctx);
    Config {
        version,
        supervisor,
        http,
        slices,
        services,
        hooks,
        warnings: Vec::new(),
        secrets,
    }
}

/// `version`: absent, or the one this sentinel reads.
fn config_version(raw: Option<Version>, ctx: &mut Ctx<'_>) -> u32 {
    let current = i64::from(CONFIG_VERSION);
    match raw {
        None => CONFIG_VERSION,
        Some(Version(n)) if n == current => CONFIG_VERSION,
        Some(Version(n)) if n > current => {
            ctx.at_value(
                &["version"],
                format!(
                    "this sentinel reads config version {current}; this file is written for \
                     version {n}, by a newer sentinel: upgrade sentinel, or rewrite the file \
                     for version {current} (docs/config.md)"
                ),
            );
            CONFIG_VERSION
        }
        Some(Version(n)) => {
            ctx.at_value(
                &["version"],
                format!(
                    "this sentinel reads config version {current}; there is no version {n}: \
                     write version = {current}, or leave the key out"
                ),
            );
            CONFIG_VERSION
        }
    }
}

/// Service and group names: `[A-Za-z0-9_.-]+`, so `@group` and paths never
/// clash with them; no leading `-` (it would read as a CLI flag) and not
/// only dots (they become file and cgroup names).
pub fn check_name(name: &str) -> Result<(), String> {
    let rule = "use letters, digits, '_', '.' and '-'";
    if name.is_empty() {
        return Err(format!("the name is empty; {rule}"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!("{c:?} is not allowed in \"{name}\"; {rule}"));
    }
    if name.starts_with('-') {
        return Err(format!("\"{name}\" starts with '-', which reads as an option; {rule}, starting with a letter or digit"));
    }
    if name.chars().all(|c| c == '.') {
        return Err(format!("\"{name}\" is only dots; {rule}"));
    }
    Ok(())
}

fn supervisor(raw: RawSupervisor, ctx: &mut Ctx<'_>) -> SupervisorConfig {
    let s = "supervisor";
    let log_dir = raw.log_dir.and_then(|d| {
        if d.is_empty() {
            ctx.at_value(
                &[s, "log_dir"],
                "empty path; remove the key to keep logs in memory only".to_string(),
            );
            None
        } else {
            Some(ctx.resolve(&d))
        }
    });
    let socket = raw.socket.and_then(|p| {
        if p.is_empty() {
            ctx.at_value(&[s, "socket"], "empty path; remove the key for the default".to_string());
            return None;
        }
        let path = ctx.resolve(&p);
        let len = path.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            ctx.at_value(
                &[s, "socket"],
                format!(
                    "\"{}\" is {len} bytes long, and a unix socket path is limited to {MAX_SOCKET_PATH}; choose a shorter path",
                    path.display()
                ),
            );
        }
        Some(path)
    });
    let forward_signals = match raw.forward_signals {
        Some(list) => forwardable(&list, &[s, "forward_signals"], ctx),
        None => vec![
            Signal(libc::SIGUSR1),
            Signal(libc::SIGUSR2),
            Signal(libc::SIGWINCH),
        ],
    };
    let log = log_config(raw.log, LogConfig::default(), &[s, "log"], ctx);
    SupervisorConfig {
        cgroup_root: isolation::cgroup_root(raw.cgroup_root, ctx),
        log_dir,
        socket,
        socket_allow_uids: raw.socket_allow_uids.unwrap_or_default(),
        shutdown_timeout: raw
            .shutdown_timeout
            .map_or(Duration::from_secs(30), |d| d.0),
        echo_logs: raw.echo_logs,
        forward_signals,
        log,
    }
}

/// Signals sentinel can catch, hence forward.
fn forwardable(list: &[Sig], path: &[&str], ctx: &mut Ctx<'_>) -> Vec<Signal> {
    for (i, sig) in list.iter().enumerate() {
        if Signal(sig.0) == Signal::KILL || sig.0 == libc::SIGSTOP {
            ctx.at_item(
                path,
                i,
                format!(
                    "{} cannot be caught, so it cannot be forwarded; remove it",
                    signal_name(sig.0)
                ),
            );
        }
    }
    list.iter().map(|s| Signal(s.0)).collect()
}

fn log_config(raw: Option<RawLog>, base: LogConfig, path: &[&str], ctx: &mut Ctx<'_>) -> LogConfig {
    let raw = raw.unwrap_or_default();
    let log = LogConfig {
        max_size: raw.max_size.map_or(base.max_size, |s| s.0),
        keep: raw.keep.unwrap_or(base.keep),
    };
    let sub = |k: &'static str| -> Vec<&str> { path.iter().copied().chain([k]).collect() };
    if raw.max_size.is_some_and(|s| s.0 == 0) {
        ctx.at_value(
            &sub("max_size"),
            "a log file cannot be limited to 0 bytes; use a size like \"10M\"".to_string(),
        );
    }
    if raw.keep.is_some_and(|k| k > MAX_LOG_KEEP) {
        ctx.at_value(
            &sub("keep"),
            format!(
                "{} rotated files is too many; keep at most {MAX_LOG_KEEP} (raise max_size instead)",
                log.keep
            ),
        );
    }
    log
}

fn service(
    name: &str,
    mut raw: RawService,
    sup: &SupervisorConfig,
    slices: &[(String, SliceConfig)],
    ctx: &mut Ctx<'_>,
) -> ServiceConfig {
    let p = |k: &'static str| ["services", name, k];
    let bundle = oci::load(name, &mut raw, ctx);
    let command = raw
        .command
        .as_ref()
        .map(|c| c.0.clone())
        .unwrap_or_default();
    let bundle_command = raw.bundle.is_some() && raw.command.is_none();
    if !bundle_command
        && !ctx.pruned(&p("command"))
        && !ctx.misspelled(&["services", name], "command")
    {
        match command.first() {
            _ if ctx.tree.entry(&p("command")).is_none() => ctx.at_key(
                &["services", name],
                "missing key `command`; add e.g. command = [\"/usr/bin/app\", \"--flag\"]".to_string(),
            ),
            None => ctx.at_value(
                &p("command"),
                "empty command; give the program and its arguments, e.g. [\"/usr/bin/app\", \"--flag\"]"
                    .to_string(),
            ),
            Some(program) if program.is_empty() => ctx.at_value(
                &p("command"),
                "the program (first word) is empty; give its path or name".to_string(),
            ),
            Some(_) => {}
        }
    }

    let workdir = raw.workdir.as_deref().map(|w| {
        if raw.bundle.is_some() {
            return oci::workdir(name, w, ctx);
        }
        let dir = ctx.resolve(w);
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => ctx.at_value(
                &p("workdir"),
                format!("\"{}\" is not a directory", dir.display()),
            ),
            Err(e) => ctx.at_value(
                &p("workdir"),
                format!(
                    "\"{}\": {}; create the directory or fix the path",
                    dir.display(),
                    io_reason(&e)
                ),
            ),
        }
        dir
    });

    let env = environment(name, &raw, ctx);
    let isolation = isolation::service(name, &raw, slices, ctx);
    let lifecycle = lifecycle::service(name, &raw, ctx);
    let scaling = scaling::service(name, &raw, &lifecycle, &isolation, workdir.as_deref(), ctx);
    let secrets = secrets::service(name, &raw, &env, ctx);

    let backoff = backoff(name, raw.backoff.unwrap_or_default(), ctx);

    let mut groups: Vec<String> = Vec::new();
    for (i, g) in raw
        .group
        .map(|g| g.0)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if let Err(why) = check_name(&g) {
            ctx.at_item(&p("group"), i, format!("invalid group name: {why}"));
        }
        if !groups.contains(&g) {
            groups.push(g);
        }
    }

    let log = log_config(raw.log, sup.log, &p("log"), ctx);
    let forward_signals = raw
        .forward_signals
        .map(|list| forwardable(&list, &p("forward_signals"), ctx));

    let mut svc = ServiceConfig {
        isolation,
        command,
        workdir,
        env,
        clear_env: raw.clear_env.unwrap_or(false),
        restart: match raw.restart {
            // A oneshot that succeeded stays completed.
            None if lifecycle.kind == ServiceKind::Oneshot => RestartPolicy::OnFailure,
            None | Some(RawRestart::Always) => RestartPolicy::Always,
            Some(RawRestart::OnFailure) => RestartPolicy::OnFailure,
            Some(RawRestart::Never) => RestartPolicy::Never,
        },
        backoff,
        stop_signal: raw.stop_signal.map_or(Signal::TERM, |s| Signal(s.0)),
        stop_timeout: raw.stop_timeout.map_or(Duration::from_secs(10), |d| d.0),
        groups,
        autostart: raw.autostart.unwrap_or(true),
        log,
        forward_signals,
        lifecycle,
        scaling,
        secrets,
    };
    if let Some(b) = bundle {
        oci::apply(b, &mut svc, ctx);
    }
    svc
}

/// env files in order (later ones win), then the `env` table (wins over
/// all files). Each key appears once, where it first appeared.
fn environment(name: &str, raw: &RawService, ctx: &mut Ctx<'_>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: String, v: String| match env.iter_mut().find(|(key, _)| *key == k) {
        Some(slot) => slot.1 = v,
        None => env.push((k, v)),
    };
    let files = raw
        .env_file
        .as_ref()
        .map(|f| f.0.as_slice())
        .unwrap_or_default();
    for (i, file) in files.iter().enumerate() {
        let path = ctx.resolve(file);
        let where_ = ["services", name, "env_file"];
        match std::fs::read_to_string(&path) {
            Ok(text) => match envfile::parse(&text) {
                Ok(pairs) => pairs.into_iter().for_each(|(k, v)| set(k, v)),
                Err(e) => ctx.at_item(
                    &where_,
                    i,
                    format!("{}:{}: {}", path.display(), e.line, e.message),
                ),
            },
            Err(e) => ctx.at_item(
                &where_,
                i,
                format!(
                    "cannot read env file \"{}\": {}; create it or fix the path",
                    path.display(),
                    io_reason(&e)
                ),
            ),
        }
    }
    for (k, v) in raw.env.as_ref().map(|e| e.0.as_slice()).unwrap_or_default() {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            ctx.at_key(
                &["services", name, "env", k],
                "invalid variable name; it must be non-empty, without '=' or NUL".to_string(),
            );
        } else if v.0.contains('\0') {
            ctx.at_value(
                &["services", name, "env", k],
                "a value cannot contain a NUL character".to_string(),
            );
        }
        set(k.clone(), v.0.clone());
    }
    env
}

fn backoff(name: &str, raw: RawBackoff, ctx: &mut Ctx<'_>) -> Backoff {
    let d = Backoff::default();
    let b = Backoff {
        initial: raw.initial.map_or(d.initial, |x| x.0),
        max: raw.max.map_or(d.max, |x| x.0),
        factor: raw.factor.unwrap_or(d.factor),
        reset_after: raw.reset_after.map_or(d.reset_after, |x| x.0),
    };
    let p = |k: &'static str| ["services", name, "backoff", k];
    if let Some(f) = raw.factor {
        if !(f >= 1.0 && f.is_finite()) {
            ctx.at_value(
                &p("factor"),
                format!(
                    "{f} would shrink the delay; use a number of at least 1 (1 keeps it constant)"
                ),
            );
        }
    }
    if b.max < b.initial && !ctx.pruned(&p("initial")) && !ctx.pruned(&p("max")) {
        let (path, what) = if raw.max.is_some() {
            (p("max"), "raise max or lower initial")
        } else {
            (p("initial"), "lower initial or set a larger max")
        };
        ctx.at_value(
            &path,
            format!(
                "max ({}) is shorter than initial ({}); {what}",
                show(b.max),
                show(b.initial)
            ),
        );
    }
    b
}

/// A duration as a person would write it.
fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// An I/O error without the "(os error N)" tail.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

// ----- [http] -------------------------------------------------------------

/// A token shorter than this is too easy to guess.
const MIN_TOKEN: usize = 16;

fn http(raw: RawHttp, ctx: &mut Ctx<'_>) -> super::HttpConfig {
    let h = "http";
    let listen = raw.listen.as_deref().and_then(|text| {
        let addr = match parse_listen(text) {
            Ok(a) => a,
            Err(why) => {
                ctx.at_value(&[h, "listen"], why);
                return None;
            }
        };
        if !addr.ip().is_loopback() && raw.allow_public != Some(true) {
            ctx.at_value(
                &[h, "listen"],
                format!(
                    "{addr} is not a loopback address, and the endpoint shows every service's \
                     state and logs; listen on 127.0.0.1 (behind a proxy), or set \
                     allow_public = true in [http] to serve it on {} anyway",
                    addr.ip()
                ),
            );
        }
        Some(addr)
    });
    let token = match (raw.token, raw.token_file) {
        (Some(_), Some(_)) => {
            ctx.at_key(
                &[h, "token_file"],
                "set either token or token_file, not both".to_string(),
            );
            None
        }
        (Some(t), None) => Some((t, vec![h, "token"])),
        (None, Some(f)) => {
            let path = ctx.resolve(&f);
            match std::fs::read_to_string(&path) {
                Ok(t) => Some((t.trim().to_string(), vec![h, "token_file"])),
                Err(e) => {
                    ctx.at_value(
                        &[h, "token_file"],
                        format!(
                            "cannot read \"{}\": {}; create it with a long random secret \
                             (e.g. head -c 24 /dev/urandom | base64)",
                            path.display(),
                            io_reason(&e)
                        ),
                    );
                    None
                }
            }
        }
        (None, None) => None,
    };
    let token = token.and_then(|(t, key)| {
        if t.chars().count() < MIN_TOKEN || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            ctx.at_value(
                &key,
                format!(
                    "the token must be at least {MIN_TOKEN} characters without spaces; \
                     use a long random secret (e.g. head -c 24 /dev/urandom | base64)"
                ),
            );
            return None;
        }
        Some(t)
    });
    let control = raw.control.unwrap_or(false);
    let token_reported = ctx.pruned(&[h, "token"])
        || ctx.pruned(&[h, "token_file"])
        || ctx.problems.iter().any(|p| p.key.starts_with("http.token"));
    if control && token.is_none() && !token_reported {
        ctx.at_value(
            &[h, "control"],
            "control = true needs a token (token = \"...\" or token_file = \"/path\"): \
             POST requests must carry it as Authorization: Bearer <token>"
                .to_string(),
        );
    }
    let max_connections = raw.max_connections.unwrap_or(256) as usize;
    if !(1..=65536).contains(&max_connections) {
        ctx.at_value(
            &[h, "max_connections"],
            format!("{max_connections} is out of range; use 1 to 65536"),
        );
    }
    let positive =
        |d: Option<super::raw::Dur>, key: &'static str, default: u64, ctx: &mut Ctx<'_>| {
            let d = d.map_or(Duration::from_secs(default), |d| d.0);
            if d < Duration::from_millis(100) {
                ctx.at_value(
                    &[h, key],
                    format!("{} is too short; use at least 100ms", show(d)),
                );
            }
            d
        };
    let idle_timeout = positive(raw.idle_timeout, "idle_timeout", 30, ctx);
    let request_timeout = positive(raw.request_timeout, "request_timeout", 10, ctx);
    let metrics_interval = raw
        .metrics_interval
        .map_or(Duration::from_secs(15), |d| d.0);
    if metrics_interval < Duration::from_secs(1) {
        ctx.at_value(
            &[h, "metrics_interval"],
            format!("{} is too short; use at least 1s", show(metrics_interval)),
        );
    }
    let metrics_file = raw.metrics_file.and_then(|f| {
        if f.is_empty() {
            ctx.at_value(&[h, "metrics_file"], "empty path".to_string());
            None
        } else {
            Some(ctx.resolve(&f))
        }
    });
    super::HttpConfig {
        listen,
        control,
        token,
        max_connections,
        idle_timeout,
        request_timeout,
        history: raw.history.unwrap_or(false),
        metrics_file,
        metrics_interval,
    }
}

/// `127.0.0.1:9100`, `[::1]:9100`, `localhost:9100`, or `:9100` (loopback).
fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::{Ipv4Addr, SocketAddr};
    let hint = "use an address and port like \"127.0.0.1:9100\" or \"[::1]:9100\"";
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(a);
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("\"{text}\" has no port; {hint}"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("\"{port}\" is not a port number; {hint}"))?;
    match host {
        "" | "localhost" => Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
        _ => Err(format!(
            "\"{host}\" is not an IP address (host names are not resolved); {hint}"
        )),
    }
}
