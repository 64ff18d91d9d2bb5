//! The imperative shell: one thread, one `mio::Poll`. It owns every fd
//! (signalfd, control socket and connections, service output pipes), a heap
//! of deadlines that sets the poll timeout, and the processes. It turns what
//! happens into supervisor events and carries out the actions that come back.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use mio::net::{UnixListener, UnixStream};
use mio::unix::pipe;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{SigSet, Signal as NixSignal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::config::{Config, Signal};
use crate::control::{self, Request, Response, ServiceStatus};
use crate::logs::{LineSplitter, Ring, RotatingFile, Stream};
use crate::supervisor::{Action, Event, ExitStatus, Supervisor, Tagged, Target};

mod events;
mod lifecycle;
mod scaling;
mod systemd;

const SIGNALS: Token = Token(0);
const LISTENER: Token = Token(1);
/// The sd_notify socket.
const NOTIFY: Token = Token(2);
/// The inotify fd of watch mode.
const WATCH: Token = Token(3);
/// Short-lived jobs (hooks, policies): `JOBS_BASE + n` (see `jobs::Jobs`).
const JOBS_BASE: usize = 1 << 23;
/// A service's running health probe: `HEALTH_BASE + service`.
const HEALTH_BASE: usize = 1 << 21;
/// A service's readiness pipe (`ready = "fd"`): `READY_BASE + service`.
const READY_BASE: usize = 1 << 22;
/// Service output pipes: `PIPE_BASE + 2 * service + stream`.
const PIPE_BASE: usize = 1 << 20;
/// HTTP listener and connections: `HTTP_BASE + n` (see `http::Server`).
const HTTP_BASE: usize = 1 << 29;
/// Control connections: `CONN_BASE + n`.
const CONN_BASE: usize = 1 << 30;

/// Bytes read from one pipe per loop turn, so one chatty service cannot
/// starve the others.
const READ_BUDGET: usize = 64 * 1024;
/// Longest line kept whole; longer lines are cut.
const MAX_LINE: usize = 16 * 1024;
/// A partial line is flushed after this long without its newline.
const PARTIAL_FLUSH: Duration = Duration::from_millis(500);
/// A follower that falls this far behind is disconnected.
const MAX_CONN_BUFFER: usize = 4 * 1024 * 1024;

/// How `run` was asked to behave.
#[derive(Debug, Clone)]
pub struct Options {
    pub config_path: PathBuf,
    /// `run --exit-with NAME`: these services are critical.
    pub exit_with: Vec<String>,
    pub socket: PathBuf,
    pub echo_logs: bool,
    pub role: crate::pid1::Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    Service(usize),
    Shutdown,
    Flush(usize, u8),
    Http(crate::http::TimerId),
    /// The next health check, or the running one's timeout.
    Health(usize),
    /// The sd_notify watchdog deadline.
    Watchdog(usize),
    /// A job's timeout.
    Jobs,
    /// A watch debounce window ends.
    Watch,
    /// A service's autoscale evaluation.
    Autoscale(usize),
    /// sentinel's own watchdog ping or status line to systemd.
    Systemd,
}

/// A service's fds and output state.
struct ServiceIo {
    plan: sys::spawn::Plan,
    /// The running process's pidfd (signals without pid-reuse races).
    pidfd: Option<std::os::fd::OwnedFd>,
    /// The service's cgroup leaf, when cgroups are in use.
    leaf: Option<crate::cgroup::Leaf>,
    groups: Vec<String>,
    forward: Vec<Signal>,
    /// Read ends (registered in the loop) and write ends (given to children).
    readers: [pipe::Receiver; 2],
    writers: [pipe::Sender; 2],
    splitters: [LineSplitter; 2],
    file: Option<RotatingFile>,
    ring: Ring,
    /// `name | ` for echoed lines.
    prefix: Vec<u8>,
    /// Output bytes captured (lines with their newline), for metrics.
    log_bytes: u64,
    /// Type, readiness, health check, watchdog (from the config).
    life: crate::config::Lifecycle,
    /// The current process's health check state (None: no check, or not running).
    health: Option<crate::health::HealthState>,
    /// A health check under way.
    probe: Option<lifecycle::Probe>,
    /// The readiness pipe of the current process (`ready = "fd"`).
    ready_pipe: Option<crate::health::ReadyPipe>,
    /// When the watchdog fires unless WATCHDOG=1 comes first.
    watchdog_at: Option<Instant>,
    /// The last sd_notify STATUS= text.
    notify_status: Option<String>,
    /// Health checks and failures of earlier runs (counters never reset).
    health_totals: (u64, u64),
}

struct Conn {
    stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// `logs --follow`: (unit, last seq sent) for each unit followed.
    follow: Vec<(usize, u64)>,
    /// Name each followed line's unit (several instances).
    follow_units: bool,
    /// Which followed lines to send (`logs -f --grep ...`).
    filter: crate::logs::LogFilter,
    /// Close once `output` is written.
    closing: bool,
}

pub struct Runtime {
    poll: Poll,
    signals: SignalFd,
    listener: UnixListener,
    socket_path: PathBuf,
    allowed_uids: Vec<u32>,
    sup: Supervisor,
    io: Vec<ServiceIo>,
    pids: HashMap<i32, usize>,
    conns: HashMap<usize, Conn>,
    next_conn: usize,
    timers: BinaryHeap<Reverse<(Instant, TimerKey)>>,
    /// Pipes with data left after their read budget.
    unread: Vec<(usize, usize)>,
    dev_null: OwnedFd,
    echo: Option<Vec<u8>>,
    opts: Options,
    reaped_orphans: u64,
    /// The sd_notify socket, when a service uses `ready = "notify"` or a watchdog.
    notify: Option<crate::health::NotifySocket>,
    /// Exec health probes: pid to service.
    probe_pids: HashMap<i32, usize>,
    read_buf: Vec<u8>,
    started: Instant,
    /// The HTTP endpoint, when `[http]` is configured.
    http: Option<crate::http::Server>,
    /// The config in force (replaced by a reload).
    config: Config,
    /// sentinel's own environment, which services inherit.
    base_env: Vec<(String, String)>,
    runtime_dir: PathBuf,
    cgroups: Option<crate::prepare::Cgroups>,
    notify_path: PathBuf,
    /// Each service's `listen` sockets, as configured and opened.
    listen: HashMap<String, (Vec<crate::config::ListenSocket>, Vec<OwnedFd>)>,
    /// Each service's last scaling decision (`2 -> 3 by command`).
    last_scale: HashMap<String, String>,
    /// Bumped when units are made or change settings (for the HTTP server).
    units_generation: u64,
    /// Hook commands and autoscale policies running.
    jobs: crate::jobs::Jobs,
    hooks: crate::hooks::Hooks,
    /// Watch mode's inotify, made when a service first watches.
    watcher: Option<crate::watch::Watcher>,
    /// Autoscalers by spec, and the settings each was made from.
    autoscalers: HashMap<usize, crate::autoscale::Autoscaler>,
    autoscale_cfgs: HashMap<usize, crate::config::Autoscale>,
    /// The last autoscale verdict per spec (for `status`).
    autoscale_status: HashMap<usize, String>,
    /// Specs whose policy is running.
    policy_running: std::collections::HashSet<usize>,
    /// Scale events by (service, direction), for metrics.
    scale_events: std::collections::BTreeMap<(String, &'static str), u64>,
    /// Each unit's state name and pid when last looked at (hook events).
    seen: Vec<(&'static str, Option<i32>)>,
    /// systemd's NOTIFY_SOCKET, when sentinel runs as a `Type=notify` unit.
    notifier: Option<systemd::Link>,
    /// Secrets: read and delivered at each start (issue 9).
    secrets: crate::secrets::Store,
}

/// The signals the loop takes through its signalfd.
fn loop_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        NixSignal::SIGCHLD,
        NixSignal::SIGTERM,
        NixSignal::SIGINT,
        NixSignal::SIGQUIT,
        NixSignal::SIGHUP,
        NixSignal::SIGUSR1,
        NixSignal::SIGUSR2,
        NixSignal::SIGWINCH,
        NixSignal::SIGPWR,
    ] {
        set.add(s);
    }
    set
}

fn log(msg: &str) {
    eprintln!("sentinel: {msg}");
}

/// Bind the control socket: refuse to steal a live one, replace a stale one,
/// and create it with mode 0600 (no window with looser permissions).
fn bind_socket(path: &Path) -> Result<UnixListener, String> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!(
                "control socket {}: exists and is not a socket; remove it or set another `socket`",
                path.display()
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "control socket {}: another sentinel is listening there; stop it or set another `socket`",
                path.display()
            ));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("remove stale socket {}: {e}", path.display()))?;
    }
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
    }
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    bound.map_err(|e| format!("bind control socket {}: {e}", path.display()))
}

impl Runtime {
    /// Prepare everything before the first fork: plans, pipes, log files,
    /// the signalfd and the socket. Any failure here is fatal and named.
    pub fn new(config: &Config, opts: Options) -> Result<Runtime, String> {
        // First: it takes NOTIFY_SOCKET out of the environment services inherit.
        let notifier = systemd::Link::from_env(Instant::now());
        let poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
        let mask = loop_signals();
        mask.thread_block()
            .map_err(|e| format!("block signals: {e}"))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| format!("signalfd: {e}"))?;
        poll.registry()
            .register(
                &mut SourceFd(&signals.as_fd().as_raw_fd()),
                SIGNALS,
                Interest::READABLE,
            )
            .map_err(|e| format!("register signalfd: {e}"))?;

        let runtime_dir = crate::prepare::runtime_dir(&opts.socket);
        // First: it takes secrets out of sentinel's environment.
        let (secrets, notes) = crate::secrets::Store::new(config, &runtime_dir);
        notes.iter().for_each(|n| log(n));
        let mut base_env: Vec<(String, String)> = std::env::vars().collect();
        if !base_env.iter().any(|(k, _)| k == "PATH") {
            // The kernel starts init with no PATH; services still need one.
            base_env.push(("PATH".into(), sys::spawn::DEFAULT_PATH.into()));
        }
        let (cgroups, notes) = crate::prepare::cgroups(&config.supervisor.cgroup_root);
        for n in notes {
            log(&n);
        }
        let notify_path = runtime_dir.join("notify.sock");

        let mut listener = bind_socket(&opts.socket)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| format!("register socket: {e}"))?;
        let http = match &config.http {
            Some(h) => Some(crate::http::Server::new(
                h,
                config,
                poll.registry(),
                HTTP_BASE,
                Instant::now(),
            )?),
            None => None,
        };

        let mut rt = Runtime {
            poll,
            signals,
            listener,
            socket_path: opts.socket.clone(),
            allowed_uids: config.supervisor.socket_allow_uids.clone(),
            sup: Supervisor::new(config),
            io: Vec::new(),
            pids: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 0,
            timers: BinaryHeap::new(),
            unread: Vec::new(),
            dev_null: sys::spawn::dev_null().map_err(|e| format!("/dev/null: {e}"))?,
            echo: opts.echo_logs.then(Vec::new),
            opts,
            reaped_orphans: 0,
            notify: None,
            probe_pids: HashMap::new(),
            read_buf: vec![0; READ_BUDGET],
            started: Instant::now(),
            http,
            config: config.clone(),
            base_env,
            runtime_dir,
            cgroups,
            notify_path,
            listen: HashMap::new(),
            last_scale: HashMap::new(),
            units_generation: 0,
            jobs: crate::jobs::Jobs::new(JOBS_BASE)?,
            hooks: crate::hooks::Hooks::new(config.hooks.clone(), Vec::new()),
            watcher: None,
            autoscalers: HashMap::new(),
            autoscale_cfgs: HashMap::new(),
            autoscale_status: HashMap::new(),
            policy_running: Default::default(),
            scale_events: Default::default(),
            seen: Vec::new(),
            notifier,
            secrets,
        };
        rt.hooks = crate::hooks::Hooks::new(config.hooks.clone(), rt.base_env.clone());
        for name in &rt.opts.exit_with.clone() {
            rt.sup.set_critical(name)?;
        }
        rt.open_notify_socket()?;
        for (name, svc) in &config.services {
            rt.open_listen(name, &svc.scaling.listen)?;
        }
        for u in 0..rt.sup.services.len() {
            let io = rt.make_io(u)?;
            rt.io.push(io);
            rt.seen.push(("stopped", None));
        }
        rt.fix_prefixes();
        rt.arm_services(Instant::now());
        Ok(rt)
    }

    /// One sd_notify socket for every service that speaks the protocol
    /// (made when the first one appears).
    fn open_notify_socket(&mut self) -> Result<(), String> {
        if self.notify.is_some()
            || !self
                .config
                .services
                .iter()
                .any(|(_, s)| s.lifecycle.needs_notify_socket())
        {
            return Ok(());
        }
        let path = &self.notify_path;
        let mut sock = crate::health::NotifySocket::bind(path)
            .map_err(|e| format!("sd_notify socket {}: {e}", path.display()))?;
        self.poll
            .registry()
            .register(&mut sock, NOTIFY, Interest::READABLE)
            .map_err(|e| format!("register sd_notify socket: {e}"))?;
        self.notify = Some(sock);
        Ok(())
    }

    /// Open a service's `listen` sockets (once: kept across restarts and
    /// reloads while the addresses stay the same).
    fn open_listen(
        &mut self,
        service: &str,
        wanted: &[crate::config::ListenSocket],
    ) -> Result<(), String> {
        if let Some((have, _)) = self.listen.get(service) {
            if have == wanted {
                return Ok(());
            }
        }
        let mut fds = Vec::new();
        for l in wanted {
            let fd = crate::listen::open(&l.addr)
                .map_err(|e| format!("service {service}: listen {}: {e}", l.addr))?;
            fds.push(fd);
        }
        if wanted.is_empty() {
            self.listen.remove(service);
        } else {
            self.listen
                .insert(service.to_string(), (wanted.to_vec(), fds));
        }
        Ok(())
    }

    /// The environment, plan and cgroup leaf of unit `u`, from its
    /// service's current settings.
    fn prepare_unit(&self, u: usize) -> Result<crate::prepare::Prepared, String> {
        let spec = &self.sup.specs[self.sup.unit_spec[u]];
        let k = self.sup.unit_instance[u];
        let svc = &spec.config;
        let name = &spec.name;
        let mut env: Vec<(String, String)> = if svc.clear_env {
            Vec::new()
        } else {
            self.base_env.clone()
        };
        let mut extra = vec![("SENTINEL_SERVICE".to_string(), name.clone())];
        if spec.range.is_some() {
            extra.push(("SENTINEL_INSTANCE".into(), k.to_string()));
            extra.push(("SENTINEL_INSTANCES".into(), spec.want.to_string()));
        }
        if let Some(base) = svc.scaling.port_base {
            extra.push(("PORT".into(), (u32::from(base) + k).to_string()));
        }
        let life = &svc.lifecycle;
        if life.needs_notify_socket() {
            extra.push((
                "NOTIFY_SOCKET".into(),
                self.notify_path.display().to_string(),
            ));
        }
        if let Some(w) = life.watchdog {
            extra.push(("WATCHDOG_USEC".into(), w.as_micros().to_string()));
        }
        if life.ready == crate::config::Readiness::Fd {
            extra.push((
                "SENTINEL_READY_FD".into(),
                crate::health::READY_FD.to_string(),
            ));
        }
        let listen = &svc.scaling.listen;
        if !listen.is_empty() {
            extra.push(("LISTEN_FDS".into(), listen.len().to_string()));
            let names: Vec<&str> = listen.iter().map(|l| l.name.as_str()).collect();
            extra.push(("LISTEN_FDNAMES".into(), names.join(":")));
        }
        for (k, v) in svc.env.iter().chain(extra.iter()) {
            env.retain(|(ek, _)| ek != k);
            env.push((k.clone(), v.clone()));
        }
        let mut prepared = crate::prepare::prepare(
            name,
            &svc.command,
            env,
            svc.workdir.as_deref(),
            &svc.isolation,
            &self.config.slices,
            self.cgroups.as_ref(),
            &self.runtime_dir,
            sys::spawn::Session::New,
            spec.range.map(|_| k),
        )?;
        if !listen.is_empty() {
            prepared.plan = prepared.plan.with_listen_pid();
        }
        Ok(prepared)
    }

    /// Pipes, log file and plan for unit `u` (a new slot).
    fn make_io(&mut self, u: usize) -> Result<ServiceIo, String> {
        let name = self.sup.name(u).to_string();
        self.secrets
            .set_unit(u, &name, &self.sup.specs[self.sup.unit_spec[u]].config);
        let prepared = self.prepare_unit(u)?;
        for w in &prepared.warnings {
            log(&format!("warning: {w}"));
        }
        let (out_w, mut out_r) = pipe::new().map_err(|e| format!("service {name}: pipe: {e}"))?;
        let (err_w, mut err_r) = pipe::new().map_err(|e| format!("service {name}: pipe: {e}"))?;
        // Children get blocking write ends; only sentinel's ends are non-blocking.
        for w in [&out_w, &err_w] {
            w.set_nonblocking(false)
                .map_err(|e| format!("service {name}: pipe: {e}"))?;
        }
        for (s, r) in [&mut out_r, &mut err_r].into_iter().enumerate() {
            self.poll
                .registry()
                .register(r, Token(PIPE_BASE + 2 * u + s), Interest::READABLE)
                .map_err(|e| format!("service {name}: register pipe: {e}"))?;
        }
        let svc = &self.sup.specs[self.sup.unit_spec[u]].config;
        let file = self.open_log_file(&name, svc.log)?;
        Ok(ServiceIo {
            life: svc.lifecycle.clone(),
            health: None,
            probe: None,
            ready_pipe: None,
            watchdog_at: None,
            notify_status: None,
            health_totals: (0, 0),
            plan: prepared.plan,
            pidfd: None,
            leaf: prepared.leaf,
            groups: svc.groups.clone(),
            forward: self.forward_of(svc),
            readers: [out_r, err_r],
            writers: [out_w, err_w],
            splitters: [LineSplitter::new(MAX_LINE), LineSplitter::new(MAX_LINE)],
            file,
            ring: Ring::new(1000, 256 * 1024),
            prefix: Vec::new(),
            log_bytes: 0,
        })
    }

    /// The signals sentinel passes on to a service: its own list, or
    /// `[supervisor] forward_signals`.
    fn forward_of(&self, svc: &crate::config::ServiceConfig) -> Vec<Signal> {
        svc.forward_signals
            .clone()
            .unwrap_or_else(|| self.config.supervisor.forward_signals.clone())
    }

    fn open_log_file(
        &self,
        name: &str,
        log: crate::config::LogConfig,
    ) -> Result<Option<RotatingFile>, String> {
        match &self.config.supervisor.log_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("log_dir {}: {e}", dir.display()))?;
                let path = dir.join(format!("{name}.log"));
                Ok(Some(
                    RotatingFile::open(path.clone(), log.max_size, log.keep)
                        .map_err(|e| format!("service {name}: open {}: {e}", path.display()))?,
                ))
            }
            None => Ok(None),
        }
    }

    /// `name | ` for echoed lines, padded to the longest unit name.
    fn fix_prefixes(&mut self) {
        let width = (0..self.io.len())
            .map(|u| self.sup.name(u).len())
            .max()
            .unwrap_or(0);
        for u in 0..self.io.len() {
            let name = self.sup.name(u);
            self.io[u].prefix = format!("{name:width$} | ").into_bytes();
        }
    }

    /// Give unit `u` its service's new settings (after a reload), keeping
    /// its pipes and log ring. Takes effect at its next start.
    fn refresh_io(&mut self, u: usize) -> Result<(), String> {
        let prepared = self.prepare_unit(u)?;
        for w in &prepared.warnings {
            log(&format!("warning: {w}"));
        }
        let name = self.sup.name(u).to_string();
        let svc = self.sup.specs[self.sup.unit_spec[u]].config.clone();
        self.secrets.set_unit(u, &name, &svc);
        let file = self.open_log_file(&name, svc.log)?;
        let forward = self.forward_of(&svc);
        let io = &mut self.io[u];
        io.plan = prepared.plan;
        if prepared.leaf.is_some() {
            io.leaf = prepared.leaf;
        }
        io.life = svc.lifecycle.clone();
        io.groups = svc.groups.clone();
        io.forward = forward;
        if let Some(mut old) = std::mem::replace(&mut io.file, file) {
            let _ = old.flush();
        }
        Ok(())
    }

    /// Run until shutdown completes; returns the exit code.
    pub fn run(mut self) -> i32 {
        log(&format!(
            "supervising {} services from {} (control socket {})",
            self.io.len(),
            self.opts.config_path.display(),
            self.socket_path.display()
        ));
        let now = Instant::now();
        let actions = self.sup.start_all(now);
        self.execute(actions);
        self.with_http(|_, _| {});
        let mut events = Events::with_capacity(256);
        loop {
            self.flush_outputs();
            self.systemd_turn();
            if self.sup.shutdown_complete() {
                break;
            }
            let timeout = if self.unread.is_empty() {
                self.timers
                    .peek()
                    .map(|Reverse((t, _))| t.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log(&format!("epoll_wait: {e}"));
                }
                continue;
            }
            for ev in events.iter() {
                match ev.token() {
                    SIGNALS => self.on_signals(),
                    NOTIFY => self.on_notify(),
                    Token(t) if (HEALTH_BASE..READY_BASE).contains(&t) => {
                        self.on_probe_event(t - HEALTH_BASE)
                    }
                    Token(t) if (READY_BASE..READY_BASE + HEALTH_BASE).contains(&t) => {
                        self.on_ready_pipe(t - READY_BASE)
                    }
                    LISTENER => self.on_accept(),
                    WATCH => self.on_watch_event(),
                    t if self.jobs.owns_token(t) => self.on_job_event(t),
                    Token(t) if (HTTP_BASE..CONN_BASE).contains(&t) => self.on_http(t - HTTP_BASE),
                    Token(t) if (PIPE_BASE..CONN_BASE).contains(&t) => {
                        let (i, s) = ((t - PIPE_BASE) / 2, (t - PIPE_BASE) % 2);
                        self.read_pipe(i, s);
                    }
                    Token(t) => self.on_conn(t - CONN_BASE),
                }
            }
            for (i, s) in std::mem::take(&mut self.unread) {
                self.read_pipe(i, s);
            }
            self.fire_timers();
            self.feed_followers();
            self.with_http(|h, rt| h.after_turn(rt));
        }
        self.finish()
    }

    fn finish(mut self) -> i32 {
        // Hook commands and policies still running go with sentinel.
        self.jobs.kill_all(self.poll.registry());
        for pid in self.jobs.pids() {
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        for i in 0..self.io.len() {
            for s in 0..2 {
                self.read_pipe(i, s);
                self.flush_partial(i, s);
            }
        }
        self.flush_outputs();
        for (i, io) in self.io.iter().enumerate() {
            if let Some(leaf) = &io.leaf {
                let _ = leaf.kill();
                if let Err(e) = leaf.remove() {
                    if !e.is_busy() {
                        log(&format!(
                            "{}: remove cgroup: {e}",
                            self.sup.services[i].name
                        ));
                    }
                }
            }
        }
        self.secrets.cleanup();
        let _ = std::fs::remove_file(&self.socket_path);
        match self.sup.exit_code {
            Some(code) => {
                log(&format!(
                    "all services stopped; exiting with {code} (critical service)"
                ));
                code
            }
            None => {
                log("all services stopped; exiting");
                0
            }
        }
    }

    // ----- actions -------------------------------------------------------

    fn execute(&mut self, actions: Vec<Tagged>) {
        let mut queue = std::collections::VecDeque::from(actions);
        let mut touched = Vec::new();
        let mut sessions: Vec<(usize, i32)> = Vec::new();
        while let Some((i, action)) = queue.pop_front() {
            touched.push(i);
            match action {
                Action::Spawn => {
                    let ev = self.spawn(i);
                    queue.extend(self.sup.handle(i, ev, Instant::now()));
                }
                Action::Signal { pid, signal } => {
                    signal_group(pid, signal.0);
                    if signal.0 == libc::SIGKILL {
                        self.kill_cgroup(i);
                    }
                }
                Action::KillGroup { pgid } => {
                    signal_group(pgid, libc::SIGKILL);
                    // Whatever the service forked, wherever it went: its
                    // cgroup, or without one, its session.
                    if self.io[i].leaf.is_some() {
                        self.kill_cgroup(i);
                    } else {
                        // After the queue: a restart spawns first.
                        sessions.push((i, pgid));
                    }
                }
                Action::Log(msg) => log(&msg),
            }
        }
        for (i, sid) in sessions {
            let n = crate::leftovers::kill_session(sid);
            if n > 0 {
                log(&format!(
                    "{}: killed {n} leftover process(es) of its session",
                    self.sup.name(i)
                ));
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for &i in &touched {
            if let Some(t) = self.sup.services[i].deadline() {
                self.timers.push(Reverse((t, TimerKey::Service(i))));
            }
        }
        self.note_transitions(&touched);
        if let Some(t) = self.sup.shutdown_deadline() {
            self.timers.push(Reverse((t, TimerKey::Shutdown)));
        }
    }

    /// SIGKILL everything in a service's cgroup (`cgroup.kill`).
    fn kill_cgroup(&self, i: usize) {
        if let Some(leaf) = &self.io[i].leaf {
            if let Err(e) = leaf.kill() {
                log(&format!("{}: kill cgroup: {e}", self.sup.services[i].name));
            }
        }
    }

    fn spawn(&mut self, i: usize) -> Event {
        let spec = &self.sup.specs[self.sup.unit_spec[i]];
        if spec.range.is_some() {
            let n = spec.want.to_string();
            let _ = self.io[i].plan.set_env("SENTINEL_INSTANCES", &n);
        }
        match self.secrets.arm(i, &mut self.io[i].plan) {
            Ok(warnings) => warnings.iter().for_each(|w| log(w)),
            Err(error) => return Event::SpawnFailed { error },
        }
        let ready_write = self.ready_pipe_for(i);
        let io = &self.io[i];
        let mut stdio = vec![
            sys::spawn::Stdio::Fd(self.dev_null.as_fd()),
            sys::spawn::Stdio::Fd(io.writers[0].as_fd()),
            sys::spawn::Stdio::Fd(io.writers[1].as_fd()),
        ];
        if let Some(w) = &ready_write {
            // `ready = "fd"`: fd 3 (SENTINEL_READY_FD).
            stdio.push(sys::spawn::Stdio::Fd(w.as_fd()));
        }
        let spec = &self.sup.specs[self.sup.unit_spec[i]];
        // `listen`: fd 3.. (LISTEN_FDS), shared by every instance.
        if let Some((_, fds)) = self.listen.get(&spec.name) {
            stdio.extend(fds.iter().map(|fd| sys::spawn::Stdio::Fd(fd.as_fd())));
        }
        let cgroup = io.leaf.as_ref().map(|l| sys::spawn::Cgroup {
            dir: l.dir_fd(),
            procs: l.procs_fd(),
        });
        let result = sys::spawn::spawn(&io.plan, &stdio, cgroup);
        self.secrets
            .after_spawn(i, &mut self.io[i].plan, result.is_ok());
        // Only the child holds the pipe's write end now (EOF = it is gone).
        drop(ready_write);
        match result {
            Ok(child) => {
                let pid = child.pid;
                self.io[i].pidfd = child.pidfd;
                self.pids.insert(pid.as_raw(), i);
                self.on_started(i, Instant::now());
                Event::Spawned { pid: pid.as_raw() }
            }
            Err(e) => {
                if let Some(mut p) = self.io[i].ready_pipe.take() {
                    let _ = self.poll.registry().deregister(&mut p);
                }
                Event::SpawnFailed {
                    error: e.to_string(),
                }
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(Reverse((t, key))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            due.push((t, key));
        }
        for (t, key) in due {
            match key {
                TimerKey::Service(i) => {
                    // Stale entries (the deadline moved) are skipped.
                    if self.sup.services[i].deadline() == Some(t) {
                        let a = self.sup.handle(i, Event::Deadline, now);
                        self.execute(a);
                    }
                }
                TimerKey::Shutdown => {
                    let a = self.sup.advance_shutdown(now);
                    self.execute(a);
                }
                TimerKey::Http(id) => self.with_http(|h, rt| h.on_timer(id, t, rt, Instant::now())),
                TimerKey::Health(i) => self.on_health_timer(i, t),
                TimerKey::Watchdog(i) => self.on_watchdog_timer(i, t),
                TimerKey::Jobs => self.on_jobs_timer(),
                TimerKey::Watch => self.on_watch_timer(),
                TimerKey::Autoscale(s) => self.on_autoscale_timer(s, t),
                TimerKey::Systemd => self.systemd_timer(t),
                TimerKey::Flush(i, s) => {
                    let s = s as usize;
                    if let Some(d) = self.io[i].splitters[s].flush_deadline(PARTIAL_FLUSH) {
                        if d <= now {
                            self.flush_partial(i, s);
                        }
                    }
                }
            }
        }
    }

    // ----- signals and children -----------------------------------------

    fn on_signals(&mut self) {
        loop {
            match self.signals.read_signal() {
                Ok(Some(info)) => self.on_signal(info.ssi_signo as i32),
                Ok(None) => break,
                Err(e) => {
                    log(&format!("read signalfd: {e}"));
                    break;
                }
            }
        }
    }

    fn on_signal(&mut self, sig: i32) {
        let now = Instant::now();
        match sig {
            libc::SIGCHLD => self.reap(),
            libc::SIGTERM | libc::SIGINT | libc::SIGQUIT | libc::SIGPWR => {
                self.begin_shutdown(&crate::config::signal_name(sig), now)
            }
            libc::SIGUSR2 if self.opts.role == crate::pid1::Role::RealInit => {
                self.begin_shutdown("SIGUSR2 (poweroff)", now)
            }
            _ => {
                for (i, io) in self.io.iter().enumerate() {
                    if io.forward.contains(&Signal(sig)) {
                        if let Some(pid) = self.sup.services[i].state.pid() {
                            match &io.pidfd {
                                Some(fd) => {
                                    let _ = sys::process::pidfd_send_signal(fd.as_fd(), sig);
                                }
                                None => {
                                    let _ =
                                        nix::sys::signal::kill(Pid::from_raw(pid), signal_of(sig));
                                }
                            }
                        }
                    }
                }
                if sig == libc::SIGHUP {
                    self.reopen_logs();
                    // SIGHUP reloads the config, unless a service takes it.
                    if !self.io.iter().any(|io| io.forward.contains(&Signal(sig))) {
                        let _ = self.reload();
                    }
                }
            }
        }
    }

    /// SIGHUP: reopen log files that an outside tool (logrotate) moved.
    fn reopen_logs(&mut self) {
        for (i, io) in self.io.iter_mut().enumerate() {
            if let Some(f) = &mut io.file {
                match f.reopen_if_moved() {
                    Ok(true) => log(&format!("{}: log file reopened", self.sup.services[i].name)),
                    Ok(false) => {}
                    Err(e) => log(&format!(
                        "{}: reopen log file: {e}",
                        self.sup.services[i].name
                    )),
                }
            }
        }
    }

    fn begin_shutdown(&mut self, why: &str, now: Instant) {
        if !self.sup.shutting_down() {
            log(&format!("{why}: stopping all services"));
        }
        let a = self.sup.begin_shutdown(now);
        self.execute(a);
    }

    /// Reap every child that has exited: services and adopted orphans.
    fn reap(&mut self) {
        loop {
            let status = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => break,
                Ok(s) => s,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    log(&format!("waitpid: {e}"));
                    break;
                }
            };
            if self.jobs.reaped(status, self.poll.registry()) {
                self.finish_jobs();
                continue;
            }
            let (pid, exit) = match status {
                WaitStatus::Exited(pid, code) => (pid, ExitStatus::Code(code)),
                WaitStatus::Signaled(pid, sig, _) => (pid, ExitStatus::Signal(sig as i32)),
                _ => continue,
            };
            match self.pids.remove(&pid.as_raw()) {
                Some(i) => {
                    self.io[i].pidfd = None;
                    self.secrets.ended(i);
                    self.on_ended(i, Instant::now());
                    // Its last output belongs to this run: read it, and end
                    // a partial last line, so the next run starts a new line.
                    for s in 0..2 {
                        self.read_pipe(i, s);
                        self.flush_partial(i, s);
                    }
                    let a = self
                        .sup
                        .handle(i, Event::Exited { status: exit }, Instant::now());
                    self.execute(a);
                }
                None => match self.probe_pids.remove(&pid.as_raw()) {
                    Some(i) => self.on_exec_probe_exit(i, exit.success(), exit.as_code()),
                    None => self.reaped_orphans += 1,
                },
            }
        }
    }

    // ----- service output ------------------------------------------------

    fn read_pipe(&mut self, i: usize, s: usize) {
        let mut total = 0;
        loop {
            if total >= READ_BUDGET {
                self.unread.push((i, s));
                break;
            }
            let want = (READ_BUDGET - total).min(self.read_buf.len());
            let n = match self.io[i].readers[s].read(&mut self.read_buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log(&format!("{}: read output: {e}", self.sup.services[i].name));
                    break;
                }
            };
            total += n;
            let now = Instant::now();
            let had_partial = self.io[i].splitters[s]
                .flush_deadline(PARTIAL_FLUSH)
                .is_some();
            let data = std::mem::take(&mut self.read_buf);
            let mut lines: Vec<Vec<u8>> = Vec::new();
            self.io[i].splitters[s].push(&data[..n], now, |l| lines.push(l.to_vec()));
            self.read_buf = data;
            for l in lines {
                self.emit_line(i, s, &l);
            }
            if !had_partial {
                if let Some(d) = self.io[i].splitters[s].flush_deadline(PARTIAL_FLUSH) {
                    self.timers.push(Reverse((d, TimerKey::Flush(i, s as u8))));
                }
            }
        }
    }

    fn flush_partial(&mut self, i: usize, s: usize) {
        let mut lines: Vec<Vec<u8>> = Vec::new();
        self.io[i].splitters[s].flush(|l| lines.push(l.to_vec()));
        for l in lines {
            self.emit_line(i, s, &l);
        }
    }

    fn emit_line(&mut self, i: usize, s: usize, line: &[u8]) {
        let stream = if s == 0 {
            Stream::Stdout
        } else {
            Stream::Stderr
        };
        let io = &mut self.io[i];
        io.log_bytes += line.len() as u64 + 1;
        io.ring.push(stream, SystemTime::now(), line);
        if let Some(f) = &mut io.file {
            if let Err(e) = f.write_line(line) {
                eprintln!(
                    "sentinel: {}: write log file: {e}",
                    self.sup.services[i].name
                );
            }
        }
        if let Some(echo) = &mut self.echo {
            echo.extend_from_slice(&io.prefix);
            echo.extend_from_slice(line);
            echo.push(b'\n');
        }
    }

    fn flush_outputs(&mut self) {
        for io in &mut self.io {
            if let Some(f) = &mut io.file {
                let _ = f.flush();
            }
        }
        if let Some(echo) = &mut self.echo {
            if !echo.is_empty() {
                let mut out = io::stdout().lock();
                let _ = out.write_all(echo);
                let _ = out.flush();
                echo.clear();
            }
        }
    }

    // ----- control socket ------------------------------------------------

    fn on_accept(&mut self) {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log(&format!("accept on control socket: {e}"));
                    break;
                }
            };
            let uid =
                nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
                    .map(|c| c.uid())
                    .unwrap_or(u32::MAX);
            let me = nix::unistd::geteuid().as_raw();
            if uid != me && uid != 0 && !self.allowed_uids.contains(&uid) {
                let _ = stream.write_all(
                    &Response::error(format!(
                        "uid {uid} may not use this socket; add it to [supervisor] socket_allow_uids"
                    ))
                    .to_line(),
                );
                continue;
            }
            let id = self.next_conn;
            self.next_conn += 1;
            if self
                .poll
                .registry()
                .register(
                    &mut stream,
                    Token(CONN_BASE + id),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                continue;
            }
            self.conns.insert(
                id,
                Conn {
                    stream,
                    input: Vec::new(),
                    output: Vec::new(),
                    follow: Vec::new(),
                    follow_units: false,
                    filter: crate::logs::LogFilter::all(),
                    closing: false,
                },
            );
        }
    }

    fn on_conn(&mut self, id: usize) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let mut buf = [0u8; 4096];
        let mut eof = false;
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    conn.input.extend_from_slice(&buf[..n]);
                    if conn.input.len() > control::MAX_REQUEST && !conn.input.contains(&b'\n') {
                        conn.output.extend(
                            Response::error(format!(
                                "request too large: over {} bytes without a newline",
                                control::MAX_REQUEST
                            ))
                            .to_line(),
                        );
                        conn.input.clear();
                        conn.closing = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        while let Some(pos) = self
            .conns
            .get(&id)
            .and_then(|c| c.input.iter().position(|&b| b == b'\n'))
        {
            let line: Vec<u8> = {
                let c = self.conns.get_mut(&id).expect("checked above");
                let l = c.input.drain(..=pos).collect();
                l
            };
            let line = &line[..line.len() - 1];
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let reply = match control::parse_request(line) {
                Ok(req) => self.on_request(id, req),
                Err(e) => Response::error(e),
            };
            if let Some(c) = self.conns.get_mut(&id) {
                c.output.extend(reply.to_line());
            }
        }
        if eof {
            if let Some(c) = self.conns.get_mut(&id) {
                // A client that half-closed still gets its answers.
                c.closing = true;
                c.follow.clear();
            }
        }
        self.write_conn(id);
    }

    fn write_conn(&mut self, id: usize) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        while !c.output.is_empty() {
            match c.stream.write(&c.output) {
                Ok(0) => break,
                Ok(n) => {
                    c.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.output.clear();
                    c.closing = true;
                    break;
                }
            }
        }
        let too_far_behind = c.output.len() > MAX_CONN_BUFFER;
        if (c.closing && c.output.is_empty()) || too_far_behind {
            if let Some(mut c) = self.conns.remove(&id) {
                let _ = self.poll.registry().deregister(&mut c.stream);
            }
        }
    }

    fn on_request(&mut self, id: usize, req: Request) -> Response {
        let now = Instant::now();
        match req {
            Request::Status { target, stats } => {
                let target = target.as_deref().map(Target::parse).unwrap_or(Target::All);
                match self.sup.resolve(&target) {
                    Ok(idx) => Response {
                        ok: true,
                        supervisor: Some(self.supervisor_status(now)),
                        services: Some(
                            idx.into_iter()
                                .map(|i| {
                                    let mut s = self.status_of(i, now);
                                    s.stats = stats.then(|| self.resource_stats(i));
                                    s
                                })
                                .collect(),
                        ),
                        ..Default::default()
                    },
                    Err(e) => Response::error(e),
                }
            }
            Request::Start { .. }
            | Request::Stop { .. }
            | Request::Restart { .. }
            | Request::Scale { .. }
            | Request::Reload {}
            | Request::ResetFailed { .. }
                if self.sup.shutting_down() =>
            {
                Response::error("sentinel is shutting down")
            }
            Request::Start { target } => self.command(&target, Event::Start, "started"),
            Request::Stop { target } => self.command(&target, Event::Stop, "stopping"),
            Request::Restart {
                target,
                rolling: false,
            } => self.command(&target, Event::Restart, "restarting"),
            Request::Restart {
                target,
                rolling: true,
            } => match self.sup.resolve(&Target::parse(&target)) {
                Ok(units) => {
                    let a = self.sup.restart_rolling(&units, now);
                    self.execute(a);
                    Response::message(format!(
                        "rolling restart: {}",
                        units
                            .iter()
                            .map(|&u| self.sup.name(u))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
                Err(e) => Response::error(e),
            },
            Request::ResetFailed { target } => self.command(&target, Event::ResetFailed, "reset"),
            Request::Scale {
                service,
                count,
                range,
            } => self.scale(&service, count, range.as_deref(), "by command", now),
            Request::Reload {} => self.reload(),
            Request::Logs {
                service,
                lines,
                follow,
                grep,
                since_ms,
                stream,
            } => match self.sup.resolve(&Target::One(service.clone())) {
                Ok(units) => {
                    let filter = match crate::logs::LogFilter::new(
                        grep.as_deref(),
                        since_ms.map(Duration::from_millis),
                        stream,
                        SystemTime::now(),
                    ) {
                        Ok(f) => f,
                        Err(e) => return Response::error(e),
                    };
                    // A service with instances: all of them, by time, each
                    // line naming its instance.
                    let tag = units.len() > 1
                        || units.first().is_some_and(|&u| {
                            self.sup.specs[self.sup.unit_spec[u]].range.is_some()
                        });
                    let mut tail = Vec::new();
                    for &u in &units {
                        let mut t = filter.tail(&self.io[u].ring, lines);
                        if tag {
                            for l in &mut t {
                                l.unit = Some(self.sup.name(u).to_string());
                            }
                        }
                        tail.extend(t);
                    }
                    tail.sort_by_key(|l| l.time_ms);
                    let skip = tail.len().saturating_sub(lines);
                    tail.drain(..skip);
                    if follow {
                        let heads: Vec<(usize, u64)> = units
                            .iter()
                            .map(|&u| (u, self.io[u].ring.last_seq()))
                            .collect();
                        if let Some(c) = self.conns.get_mut(&id) {
                            c.follow = heads;
                            c.follow_units = tag;
                            c.filter = filter;
                        }
                    }
                    Response {
                        ok: true,
                        lines: Some(tail),
                        ..Default::default()
                    }
                }
                Err(e) => Response::error(e),
            },
            Request::Stats { service, window_ms } => self.stats_reply(&service, window_ms, now),
            Request::Shutdown {} => {
                self.begin_shutdown("shutdown requested", now);
                Response::message("shutting down")
            }
        }
    }

    fn command(&mut self, target: &str, event: Event, verb: &str) -> Response {
        match self.sup.resolve(&Target::parse(target)) {
            Ok(idx) => {
                let now = Instant::now();
                let mut names = Vec::new();
                for i in idx {
                    let a = self.sup.handle(i, event.clone(), now);
                    self.execute(a);
                    names.push(self.sup.services[i].name.clone());
                }
                Response::message(format!("{verb}: {}", names.join(", ")))
            }
            Err(e) => Response::error(e),
        }
    }

    fn supervisor_status(&self, now: Instant) -> control::SupervisorStatus {
        control::SupervisorStatus {
            pid: std::process::id(),
            role: self.opts.role.name().to_string(),
            uptime_ms: now.saturating_duration_since(self.started).as_millis() as u64,
            orphans_reaped: self.reaped_orphans,
            shutting_down: self.sup.shutting_down(),
        }
    }

    fn status_of(&self, i: usize, now: Instant) -> ServiceStatus {
        let s = &self.sup.services[i];
        let spec = &self.sup.specs[self.sup.unit_spec[i]];
        ServiceStatus {
            name: s.name.clone(),
            state: s.state.name().to_string(),
            pid: s.state.pid(),
            uptime_ms: s
                .started_at
                .map(|(t, _)| now.saturating_duration_since(t).as_millis() as u64),
            restarts: s.restarts,
            last_exit: s.last_exit.map(|e| e.to_string()),
            last_exit_code: s.last_exit.map(ExitStatus::as_code),
            last_error: s.last_error.clone(),
            groups: self.io[i].groups.clone(),
            waiting_for: self.sup.waiting_for[i].clone(),
            healthy: self.sup.healthy[i],
            health: self.io[i].life.health.as_ref().map(|_| {
                let h = self.io[i].health.as_ref();
                let (checks, failures) = self.io[i].health_totals;
                control::HealthStatus {
                    last_ok: h.and_then(|h| h.last_result),
                    consecutive_failures: h.map_or(0, |h| h.consecutive_failures),
                    last_error: h.and_then(|h| h.last_error.clone()),
                    last_duration_ms: h
                        .and_then(|h| h.last_check_duration)
                        .map(|d| d.as_millis() as u64),
                    // Counters never go back: earlier runs' checks included.
                    checks_total: checks + h.map_or(0, |h| h.checks_total),
                    failures_total: failures + h.map_or(0, |h| h.failures_total),
                }
            }),
            notify_status: self.io[i].notify_status.clone(),
            required: self.io[i].life.required,
            cgroup: self.io[i]
                .leaf
                .as_ref()
                .map(|l| l.path().display().to_string()),
            log_dropped_bytes: self.io[i]
                .file
                .as_ref()
                .map_or(0, RotatingFile::dropped_bytes),
            log_bytes: self.io[i].log_bytes,
            started_at_ms: s.started_at.map(|(_, wall)| crate::metrics::unix_ms(wall)),
            stats: None,
            service: spec.range.map(|_| spec.name.clone()),
            instance: spec.range.map(|_| self.sup.unit_instance[i]),
            instances: spec.range.map(|_| spec.want),
            instance_range: spec.range.map(|r| r.to_string()),
            last_scale: self.last_scale.get(&spec.name).cloned(),
            autoscale: self.autoscale_status.get(&self.sup.unit_spec[i]).cloned(),
            id: i,
            hidden: !self.sup.visible(i),
        }
    }

    fn feed_followers(&mut self) {
        let ids: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.follow.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            let mut sent = false;
            for k in 0..c.follow.len() {
                let (u, seq) = c.follow[k];
                let ring = &self.io[u].ring;
                if ring.last_seq() == seq {
                    continue;
                }
                for mut line in ring.after(seq).into_iter().filter(|l| c.filter.matches(l)) {
                    if c.follow_units {
                        line.unit = Some(self.sup.services[u].name.clone());
                    }
                    c.output.extend(
                        Response {
                            ok: true,
                            line: Some(line),
                            ..Default::default()
                        }
                        .to_line(),
                    );
                }
                c.follow[k].1 = ring.last_seq();
                sent = true;
            }
            if sent {
                self.write_conn(id);
            }
        }
    }
}

// ----- HTTP endpoint and stats (issue 5) ------------------------------------

impl Runtime {
    /// Lend the HTTP server the runtime (as its backend), then put the
    /// deadlines it asked for in the heap.
    fn with_http(&mut self, f: impl FnOnce(&mut crate::http::Server, &mut Runtime)) {
        if let Some(mut h) = self.http.take() {
            f(&mut h, self);
            for (t, id) in h.take_timers() {
                self.timers.push(Reverse((t, TimerKey::Http(id))));
            }
            self.http = Some(h);
        }
    }

    fn on_http(&mut self, offset: usize) {
        self.with_http(|h, rt| h.on_event(offset, rt, Instant::now()));
    }

    /// A service's resources now: the stats source. Today `/proc` of its
    /// main process; the cgroup source replaces this.
    /// A service's resources: from its cgroup (the whole group, every
    /// descendant counted) when it has one, else from its main process.
    fn resource_stats(&self, i: usize) -> crate::metrics::ResourceStats {
        if let Some(leaf) = &self.io[i].leaf {
            let c = leaf.stats();
            let secs = |usec: Option<u64>| usec.map(|u| u as f64 / 1e6);
            return crate::metrics::ResourceStats {
                cpu_seconds: secs(c.cpu_usage_usec),
                cpu_throttled_seconds: secs(c.throttled_usec),
                memory_bytes: c.memory_current,
                memory_peak_bytes: c.memory_peak,
                oom_kills: c.oom_kills,
                pids: c.pids_current,
                io_read_bytes: c.io_rbytes,
                io_write_bytes: c.io_wbytes,
            };
        }
        self.sup.services[i]
            .state
            .pid()
            .map(crate::metrics::proc_stats)
            .unwrap_or_default()
    }

    fn stats_reply(&mut self, service: &str, window_ms: Option<u64>, now: Instant) -> Response {
        let i = match self.sup.resolve(&Target::One(service.to_string())) {
            Ok(idx) => idx[0],
            Err(e) => return Response::error(e),
        };
        let s = self.status_of(i, now);
        let mut reply = crate::metrics::StatsReply {
            service: s.name,
            state: s.state,
            restarts: s.restarts,
            current: self.resource_stats(i),
            interval_ms: 0,
            samples: Vec::new(),
        };
        let window = window_ms.map(Duration::from_millis);
        self.with_http(|h, _| (reply.interval_ms, reply.samples) = h.history(i, window, now));
        Response {
            ok: true,
            stats: Some(reply),
            ..Default::default()
        }
    }
}

impl crate::http::Backend for Runtime {
    fn status(&mut self, stats: bool) -> (control::SupervisorStatus, Vec<ServiceStatus>) {
        let now = Instant::now();
        let services = (0..self.io.len())
            .map(|i| {
                let mut s = self.status_of(i, now);
                s.stats = stats.then(|| self.resource_stats(i));
                s
            })
            .collect();
        (self.supervisor_status(now), services)
    }

    fn ring(&self, service: usize) -> &Ring {
        &self.io[service].ring
    }

    fn generation(&self) -> u64 {
        let visible = (0..self.io.len()).filter(|&u| self.sup.visible(u)).count();
        (self.units_generation << 32) ^ visible as u64
    }

    fn scale(
        &mut self,
        service: &str,
        count: Option<u32>,
        range: Option<&str>,
    ) -> Result<String, String> {
        if self.sup.shutting_down() {
            return Err("sentinel is shutting down".into());
        }
        let r = Runtime::scale(self, service, count, range, "by the API", Instant::now());
        match (r.ok, r.message, r.error) {
            (true, m, _) => Ok(m.unwrap_or_default()),
            (false, _, e) => Err(e.unwrap_or_else(|| "refused".into())),
        }
    }

    fn scale_events(&self) -> Vec<(String, &'static str, u64)> {
        self.scale_events
            .iter()
            .map(|((s, d), n)| (s.clone(), *d, *n))
            .collect()
    }

    fn hook_counters(&self) -> crate::hooks::HookCounters {
        self.hooks.counters()
    }

    fn info(&self) -> Vec<crate::http::ServiceInfo> {
        (0..self.io.len())
            .map(|u| {
                let svc = &self.sup.specs[self.sup.unit_spec[u]].config;
                crate::http::ServiceInfo {
                    name: self.sup.name(u).to_string(),
                    command: svc.command.clone(),
                    restart: crate::http::ServiceInfo::restart_name(svc.restart),
                    autostart: svc.autostart,
                    stop_timeout_ms: svc.stop_timeout.as_millis() as u64,
                    hidden: !self.sup.visible(u),
                }
            })
            .collect()
    }

    fn command(&mut self, target: &str, verb: crate::http::Verb) -> Result<String, String> {
        let target = target.to_string();
        let req = match verb {
            crate::http::Verb::Start => Request::Start { target },
            crate::http::Verb::Stop => Request::Stop { target },
            crate::http::Verb::Restart => Request::Restart {
                target,
                rolling: false,
            },
        };
        let r = self.on_request(usize::MAX, req);
        match (r.ok, r.message, r.error) {
            (true, m, _) => Ok(m.unwrap_or_default()),
            (false, _, e) => Err(e.unwrap_or_else(|| "refused".into())),
        }
    }
}

fn signal_of(sig: i32) -> NixSignal {
    NixSignal::try_from(sig).unwrap_or(NixSignal::SIGTERM)
}

/// Signal a service's process group (its session: pgid == its pid).
fn signal_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        let _ = nix::sys::signal::killpg(Pid::from_raw(pgid), signal_of(sig));
    }
}
