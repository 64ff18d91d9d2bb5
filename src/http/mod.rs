//! The tiny HTTP/1.1 server: metrics, health, the JSON API, Server-Sent
//! Events and the dashboard, all inside the one-thread event loop.
//!
//! The loop owns the poll and the timer heap; this module owns a listener
//! and its connections, registered under tokens `base + 0` (listener) and
//! `base + 1 + id`. The loop hands every readiness event in that range to
//! [`Server::on_event`], every due [`TimerId`] to [`Server::on_timer`], and
//! calls [`Server::after_turn`] once per loop turn (it feeds the event
//! streams). Deadlines the server wants are collected and taken by the loop
//! with [`Server::take_timers`]: idle and request timeouts are entries in
//! the loop's heap, at most about one per connection (a connection whose
//! deadline moved later re-arms when its old entry fires).
//!
//! Bounds: request head 8 KiB and 32 headers, body 8 KiB, `max_connections`
//! (the longest-idle keep-alive connection makes room for a new one),
//! `request_timeout` from a request's first byte (slowloris), `idle_timeout`
//! between requests and while a client does not read its response, 256 KiB
//! of unsent events per stream (a slower client is dropped). Pipelined
//! requests are answered in order, one at a time: the next is parsed only
//! once the previous answer is written, so a client that does not read
//! cannot make sentinel buffer without bound.

mod request;
mod response;
mod routes;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use crate::config::{Config, HttpConfig, RestartPolicy};
use crate::control::{ServiceStatus, SupervisorStatus};
use crate::logs::Ring;
use crate::metrics::{self, History, Sample, ServiceCounters};
use request::Parsed;
use response::Response;

/// What the server asks of the supervisor.
pub trait Backend {
    /// sentinel and every service, in config order; with `stats`, each
    /// service's `stats` is filled from the stats source (as read: counters
    /// may restart with a new process).
    fn status(&mut self, stats: bool) -> (SupervisorStatus, Vec<ServiceStatus>);
    /// A service's log ring.
    fn ring(&self, service: usize) -> &Ring;
    /// start/stop/restart a target (`name`, `@group`, `*`): the message, or why not.
    fn command(&mut self, target: &str, verb: Verb) -> Result<String, String>;
    /// Changes whenever units are made or their settings change (scaling,
    /// reload): the server then asks for `info` again.
    fn generation(&self) -> u64;
    /// What the config says of each unit, by id (the order of `status`).
    fn info(&self) -> Vec<ServiceInfo>;
    /// Set a service's instance count and/or range (`"2-6"`), as
    /// `sentinel scale` does: the message, or why not.
    fn scale(
        &mut self,
        service: &str,
        count: Option<u32>,
        range: Option<&str>,
    ) -> Result<String, String>;
    /// Scaling decisions so far: (service, "up"/"down", count).
    fn scale_events(&self) -> Vec<(String, &'static str, u64)>;
    /// Hook runs, failures and dropped runs so far.
    fn hook_counters(&self) -> crate::hooks::HookCounters;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
    Restart,
}

/// The server's entries in the loop's deadline heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerId {
    /// A connection's idle or request deadline (or a resumption).
    Conn(usize),
    /// Take a history sample (while someone watches, or `history = true`).
    Sample,
    /// Write `metrics_file`.
    MetricsFile,
}

/// Time between history samples.
const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// History kept per service.
const HISTORY_SPAN: Duration = Duration::from_secs(15 * 60);
/// Sampling goes on this long after the last stats request.
const WATCH_FOR: Duration = Duration::from_secs(5 * 60);
/// `/metrics` output is reused for this long.
const METRICS_CACHE: Duration = Duration::from_secs(1);
/// Unsent bytes an event stream may hold before its client is dropped.
const SSE_MAX_BUFFER: usize = 256 * 1024;
/// Requests answered on one connection per readiness event (then the
/// connection waits its turn behind the others).
const REQUESTS_PER_TURN: usize = 32;
/// Connection ids wrap below this (tokens stay inside the loop's range).
const MAX_ID: usize = 1 << 28;

/// What the config says about a service, for `/api/v1/services/NAME`.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    pub name: String,
    pub command: Vec<String>,
    pub restart: &'static str,
    pub autostart: bool,
    pub stop_timeout_ms: u64,
    /// Scaled away or removed, and down: not shown.
    pub hidden: bool,
}

impl ServiceInfo {
    pub fn restart_name(p: RestartPolicy) -> &'static str {
        match p {
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Never => "never",
        }
    }
}

/// Which log lines an event stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogSub {
    None,
    One(usize),
    All,
}

struct Conn {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Bytes of `output` already sent.
    sent: usize,
    /// When the request now in `input` began (its first byte).
    request_started: Option<Instant>,
    last_activity: Instant,
    /// An event stream: the rest of the connection's life is events.
    sse: Option<LogSub>,
    /// Close once `output` is sent.
    closing: bool,
    /// The earliest heap entry pending for this connection.
    timer: Option<Instant>,
    /// Stopped after `REQUESTS_PER_TURN`; go on at the next timer.
    resume: bool,
}

impl Conn {
    fn pending(&self) -> bool {
        self.sent < self.output.len()
    }

    /// When the connection is due to be closed, if ever.
    fn deadline(&self, cfg: &HttpConfig) -> Option<Instant> {
        if self.sse.is_some() && !self.pending() {
            return None;
        }
        match self.request_started {
            Some(t) if !self.pending() => Some(t + cfg.request_timeout),
            _ => Some(self.last_activity + cfg.idle_timeout),
        }
    }

    /// Idle between requests: may be closed to make room.
    fn evictable(&self) -> bool {
        self.sse.is_none() && self.input.is_empty() && !self.pending()
    }
}

/// What the event streams last told their clients.
#[derive(Default)]
struct Broadcast {
    /// Per service: the `signature` last sent (to send only changes).
    states: Vec<String>,
    /// Per service: the last log `seq` sent.
    log_seq: Vec<u64>,
    /// Per service with instances: the `last_scale` text last sent.
    last_scale: HashMap<String, String>,
    /// Whether `states` and `log_seq` are current (some stream is open).
    primed: bool,
}

pub struct Server {
    /// The backend's `generation` that `info` is from.
    generation: Option<u64>,
    cfg: HttpConfig,
    registry: Registry,
    listener: Option<TcpListener>,
    base: usize,
    conns: HashMap<usize, Conn>,
    next_id: usize,
    /// An accept failed for lack of fds: try again when a connection closes.
    accept_blocked: bool,
    timers: Vec<(Instant, TimerId)>,
    requests: BTreeMap<u16, u64>,
    info: Vec<ServiceInfo>,
    counters: Vec<ServiceCounters>,
    metrics_cache: Option<(Instant, Vec<u8>)>,
    history: History,
    sampling: bool,
    watch_until: Option<Instant>,
    broadcast: Broadcast,
    metrics_file_error: Option<String>,
}

fn log(msg: &str) {
    eprintln!("sentinel: http: {msg}");
}

impl Server {
    /// Bind the listener (if `listen` is set) and register it under `base`.
    pub fn new(
        cfg: &HttpConfig,
        config: &Config,
        registry: &Registry,
        base: usize,
        now: Instant,
    ) -> Result<Server, String> {
        let registry = registry
            .try_clone()
            .map_err(|e| format!("http: epoll: {e}"))?;
        let mut listener = None;
        if let Some(addr) = cfg.listen {
            raise_fd_limit(cfg.max_connections + 2 * config.services.len() + 64);
            let mut l =
                TcpListener::bind(addr).map_err(|e| format!("http: listen on {addr}: {e}"))?;
            registry
                .register(&mut l, Token(base), Interest::READABLE)
                .map_err(|e| format!("http: register listener: {e}"))?;
            let bound = l.local_addr().map_err(|e| format!("http: {e}"))?;
            log(&format!(
                "listening on http://{bound}/ (control {})",
                if cfg.control { "on" } else { "off" }
            ));
            listener = Some(l);
        }
        let info: Vec<ServiceInfo> = Vec::new();
        let n = info.len();
        let mut server = Server {
            cfg: cfg.clone(),
            registry,
            listener,
            base,
            conns: HashMap::new(),
            next_id: 0,
            accept_blocked: false,
            timers: Vec::new(),
            requests: BTreeMap::new(),
            info,
            counters: vec![ServiceCounters::default(); n],
            metrics_cache: None,
            history: History::new(n, SAMPLE_EVERY, HISTORY_SPAN),
            sampling: false,
            watch_until: None,
            broadcast: Broadcast::default(),
            metrics_file_error: None,
            generation: None,
        };
        if cfg.metrics_file.is_some() {
            server.timers.push((now, TimerId::MetricsFile));
        }
        if cfg.history {
            server.start_sampling(now);
        }
        Ok(server)
    }

    /// Deadlines to put in the loop's heap.
    pub fn take_timers(&mut self) -> Vec<(Instant, TimerId)> {
        std::mem::take(&mut self.timers)
    }

    /// A readiness event for token `base + offset`.
    /// Take the backend's current units (made by scaling or a reload).
    fn sync(&mut self, backend: &dyn Backend) {
        let g = backend.generation();
        if self.generation == Some(g) {
            return;
        }
        self.generation = Some(g);
        self.info = backend.info();
        let n = self.info.len();
        if self.counters.len() < n {
            self.counters.resize(n, ServiceCounters::default());
        }
        self.history.resize(n);
        // New units join the event streams from their next line on.
        if self.broadcast.primed {
            while self.broadcast.states.len() < n {
                let i = self.broadcast.states.len();
                self.broadcast.states.push(String::new());
                self.broadcast.log_seq.push(backend.ring(i).last_seq());
            }
        }
        self.metrics_cache = None;
    }

    pub fn on_event(&mut self, offset: usize, backend: &mut dyn Backend, now: Instant) {
        self.sync(backend);
        if offset == 0 {
            self.accept(now);
        } else {
            self.drive(offset - 1, backend, now);
        }
    }

    /// A heap entry of ours came due.
    pub fn on_timer(&mut self, id: TimerId, at: Instant, backend: &mut dyn Backend, now: Instant) {
        self.sync(backend);
        match id {
            TimerId::Conn(c) => {
                let Some(conn) = self.conns.get_mut(&c) else {
                    return;
                };
                if conn.timer != Some(at) {
                    return; // stale: a later entry stands for it
                }
                conn.timer = None;
                if std::mem::take(&mut conn.resume) {
                    self.drive(c, backend, now);
                    return;
                }
                match conn.deadline(&self.cfg) {
                    Some(d) if d <= now => {
                        if conn.request_started.is_some() && !conn.pending() && conn.sse.is_none() {
                            // Slow request: say so (best effort), then close.
                            let mut out = Vec::new();
                            Response::error(408, "request not received in time")
                                .write_to(&mut out, false, false);
                            let _ = conn.stream.write(&out);
                            *self.requests.entry(408).or_default() += 1;
                        }
                        self.close(c, now);
                    }
                    _ => self.arm(c),
                }
            }
            TimerId::Sample => {
                self.sampling = false;
                self.sample(backend, now);
            }
            TimerId::MetricsFile => {
                self.write_metrics_file(backend);
                self.timers
                    .push((now + self.cfg.metrics_interval, TimerId::MetricsFile));
            }
        }
    }

    /// Once per loop turn: send state changes and new log lines to the
    /// event streams.
    pub fn after_turn(&mut self, backend: &mut dyn Backend) {
        self.sync(backend);
        let subs: Vec<(usize, LogSub)> = self
            .conns
            .iter()
            .filter_map(|(id, c)| c.sse.map(|s| (*id, s)))
            .collect();
        if subs.is_empty() {
            self.broadcast.primed = false;
            return;
        }
        let (_, services) = backend.status(false);
        if !self.broadcast.primed {
            self.prime(&services, backend);
        }
        let mut common = Vec::new();
        for (i, s) in services.iter().enumerate() {
            let sig = if s.hidden {
                HIDDEN.to_string()
            } else {
                signature(s)
            };
            if self.broadcast.states[i] == sig {
                continue;
            }
            if s.hidden {
                // Scaled away or removed, and down: the dashboard drops it.
                let data = serde_json::json!({ "service": s.name });
                sse_event(&mut common, "removed", &data.to_string());
            } else {
                let line = serde_json::to_string(s).unwrap_or_default();
                sse_event(&mut common, "service", &line);
            }
            self.broadcast.states[i] = sig;
        }
        for t in metrics::totals(&services) {
            let Some(text) = t.last_scale else { continue };
            if self.broadcast.last_scale.get(&t.service) != Some(&text) {
                let data = serde_json::json!({
                    "service": t.service, "text": text, "instances": t.instances,
                    "instance_range": t.instance_range,
                });
                sse_event(&mut common, "scale", &data.to_string());
                self.broadcast.last_scale.insert(t.service, text);
            }
        }
        let mut per_service: Vec<Vec<u8>> = vec![Vec::new(); services.len()];
        for (i, s) in services.iter().enumerate() {
            let ring = backend.ring(i);
            let last = self.broadcast.log_seq[i];
            if ring.last_seq() == last {
                continue;
            }
            let wanted = subs
                .iter()
                .any(|(_, sub)| matches!(sub, LogSub::All) || *sub == LogSub::One(i));
            if wanted {
                for l in ring.iter_after(last) {
                    let data = serde_json::json!({
                        "service": s.name, "seq": l.seq, "time_ms": l.time_ms,
                        "stream": l.stream, "text": l.text,
                    });
                    sse_event(&mut per_service[i], "log", &data.to_string());
                }
            }
            self.broadcast.log_seq[i] = ring.last_seq();
        }
        for (id, sub) in subs {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            c.output.extend_from_slice(&common);
            match sub {
                LogSub::None => {}
                LogSub::One(i) => c.output.extend_from_slice(&per_service[i]),
                LogSub::All => per_service
                    .iter()
                    .for_each(|p| c.output.extend_from_slice(p)),
            }
            if c.pending() {
                self.flush_sse(id);
            }
        }
    }

    fn prime(&mut self, services: &[ServiceStatus], backend: &dyn Backend) {
        self.broadcast.states = services
            .iter()
            .map(|s| {
                if s.hidden {
                    HIDDEN.to_string()
                } else {
                    signature(s)
                }
            })
            .collect();
        self.broadcast.last_scale = metrics::totals(services)
            .into_iter()
            .filter_map(|t| Some((t.service, t.last_scale?)))
            .collect();
        self.broadcast.log_seq = (0..services.len())
            .map(|i| backend.ring(i).last_seq())
            .collect();
        self.broadcast.primed = true;
    }

    /// Write what an event stream has; drop it if it is too far behind.
    fn flush_sse(&mut self, id: usize) {
        let now = Instant::now();
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let before = c.sent;
        if write_out(c).is_err() {
            self.close(id, now);
            return;
        }
        if c.sent > before {
            c.last_activity = now;
        }
        if c.output.len() - c.sent > SSE_MAX_BUFFER {
            log("an event stream client fell too far behind; dropped it");
            self.close(id, now);
            return;
        }
        self.arm(id);
    }

    // ----- connections ---------------------------------------------------

    fn accept(&mut self, now: Instant) {
        loop {
            let accepted = match &self.listener {
                Some(l) => l.accept(),
                None => return,
            };
            let (mut stream, _) = match accepted {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_blocked = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if !self.accept_blocked {
                        log(&format!(
                            "accept: {e}; new connections wait until one closes"
                        ));
                    }
                    self.accept_blocked = true;
                    break;
                }
            };
            if self.conns.len() >= self.cfg.max_connections && !self.evict_one(now) {
                // Everyone is busy: this one is refused (closed at once).
                drop(stream);
                continue;
            }
            let id = self.new_id();
            if self
                .registry
                .register(
                    &mut stream,
                    Token(self.base + 1 + id),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                continue;
            }
            let _ = stream.set_nodelay(true);
            self.conns.insert(
                id,
                Conn {
                    stream,
                    input: Vec::new(),
                    output: Vec::new(),
                    sent: 0,
                    request_started: None,
                    last_activity: now,
                    sse: None,
                    closing: false,
                    timer: None,
                    resume: false,
                },
            );
            self.arm(id);
        }
    }

    fn new_id(&mut self) -> usize {
        loop {
            let id = self.next_id;
            self.next_id = (self.next_id + 1) % MAX_ID;
            if !self.conns.contains_key(&id) {
                return id;
            }
        }
    }

    /// Close the longest-idle keep-alive connection; false if none is idle.
    fn evict_one(&mut self, now: Instant) -> bool {
        let victim = self
            .conns
            .iter()
            .filter(|(_, c)| c.evictable())
            .min_by_key(|(_, c)| c.last_activity)
            .map(|(id, _)| *id);
        match victim {
            Some(id) => {
                self.close(id, now);
                true
            }
            None => false,
        }
    }

    fn close(&mut self, id: usize, now: Instant) {
        if let Some(mut c) = self.conns.remove(&id) {
            let _ = self.registry.deregister(&mut c.stream);
        }
        if self.accept_blocked {
            self.accept(now);
        }
    }

    /// Make sure a heap entry stands for the connection's deadline.
    fn arm(&mut self, id: usize) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let want = if c.resume {
            Some(Instant::now())
        } else {
            c.deadline(&self.cfg)
        };
        if let Some(d) = want {
            if c.timer.is_none_or_later(d) {
                c.timer = Some(d);
                self.timers.push((d, TimerId::Conn(id)));
            }
        }
    }

    /// Move a connection along as far as it goes without blocking: write,
    /// answer what is buffered, read more.
    fn drive(&mut self, id: usize, backend: &mut dyn Backend, now: Instant) {
        let mut answered = 0;
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            let before = c.sent;
            if write_out(c).is_err() {
                self.close(id, now);
                return;
            }
            if c.sent > before {
                c.last_activity = now;
            }
            if c.pending() {
                if c.sse.is_some() && c.output.len() - c.sent > SSE_MAX_BUFFER {
                    self.close(id, now);
                    return;
                }
                break; // wait for WRITABLE
            }
            if c.closing {
                self.close(id, now);
                return;
            }
            if c.sse.is_none() && !c.input.is_empty() {
                match request::parse(&c.input) {
                    Parsed::Done(req, len) => {
                        if answered >= REQUESTS_PER_TURN {
                            c.resume = true;
                            break;
                        }
                        c.input.drain(..len);
                        c.request_started = (!c.input.is_empty()).then_some(now);
                        answered += 1;
                        self.answer(id, &req, backend, now);
                        continue;
                    }
                    Parsed::Bad(status, why) => {
                        c.input.clear();
                        c.request_started = None;
                        c.closing = true;
                        let r = Response::error(status, why);
                        r.write_to(&mut c.output, false, false);
                        *self.requests.entry(status).or_default() += 1;
                        continue;
                    }
                    Parsed::Partial => {}
                }
            }
            // Read more (an event stream's input is read and dropped, to see EOF).
            let mut buf = [0u8; 4096];
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    self.close(id, now);
                    return;
                }
                Ok(n) => {
                    c.last_activity = now;
                    if c.sse.is_none() {
                        if c.input.is_empty() {
                            c.request_started = Some(now);
                        }
                        c.input.extend_from_slice(&buf[..n]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.close(id, now);
                    return;
                }
            }
        }
        self.arm(id);
    }

    fn answer(
        &mut self,
        id: usize,
        req: &request::Request,
        backend: &mut dyn Backend,
        now: Instant,
    ) {
        let reply = self.route(req, backend, now);
        let head_only = req.method == request::Method::Head;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        match reply {
            routes::Reply::Response(r) => {
                *self.requests.entry(r.status).or_default() += 1;
                if c.sent == c.output.len() {
                    c.output.clear();
                    c.sent = 0;
                }
                r.write_to(&mut c.output, req.keep_alive, head_only);
                if !req.keep_alive {
                    c.closing = true;
                }
            }
            routes::Reply::Events(sub) => {
                *self.requests.entry(200).or_default() += 1;
                response::event_stream_head(&mut c.output);
                c.output.extend_from_slice(b"retry: 2000\n\n");
                c.sse = Some(sub);
                c.input.clear();
                c.request_started = None;
                // Everything as of now; changes follow from `after_turn`.
                let (sup, services) = backend.status(false);
                let snapshot = self.snapshot_json(&sup, &services);
                let c = self.conns.get_mut(&id).expect("present above");
                sse_event(&mut c.output, "snapshot", &snapshot.to_string());
                if !self.broadcast.primed {
                    self.prime(&services, backend);
                }
                self.start_sampling(now);
            }
        }
    }

    // ----- sampling and the metrics file ---------------------------------

    /// Every service with its stats, counters made monotonic.
    fn sampled(&mut self, backend: &mut dyn Backend) -> (SupervisorStatus, Vec<ServiceStatus>) {
        let (sup, mut services) = backend.status(true);
        for (s, counters) in services.iter_mut().zip(&mut self.counters) {
            let run = s
                .started_at_ms
                .map_or(-1, |t| t as i64 ^ i64::from(s.pid.unwrap_or(0)) << 48);
            let stats = s.stats.get_or_insert_with(Default::default);
            counters.apply(run, stats);
        }
        (sup, services)
    }

    fn metrics_text(&mut self, backend: &mut dyn Backend, now: Instant) -> Vec<u8> {
        if let Some((t, text)) = &self.metrics_cache {
            if now.saturating_duration_since(*t) < METRICS_CACHE {
                return text.clone();
            }
        }
        let (sup, mut services) = self.sampled(backend);
        let totals = metrics::totals(&services);
        services.retain(|s| !s.hidden);
        let text = metrics::render(&metrics::Input {
            version: env!("CARGO_PKG_VERSION"),
            supervisor: &sup,
            services: &services,
            http_requests: &self.requests,
            totals: &totals,
            scale_events: &backend.scale_events(),
            hooks: backend.hook_counters(),
        })
        .into_bytes();
        self.metrics_cache = Some((now, text.clone()));
        text
    }

    fn write_metrics_file(&mut self, backend: &mut dyn Backend) {
        let Some(path) = self.cfg.metrics_file.clone() else {
            return;
        };
        self.metrics_cache = None;
        let text = self.metrics_text(backend, Instant::now());
        match write_atomically(&path, &text) {
            Ok(()) => {
                if self.metrics_file_error.take().is_some() {
                    log(&format!("{}: written again", path.display()));
                }
            }
            Err(e) => {
                if self.metrics_file_error.as_deref() != Some(&e) {
                    log(&e);
                }
                self.metrics_file_error = Some(e);
            }
        }
    }

    /// Someone looks at stats: keep sampling for a while.
    fn watch(&mut self, now: Instant) {
        self.watch_until = Some(now + WATCH_FOR);
        self.start_sampling(now);
    }

    fn start_sampling(&mut self, now: Instant) {
        if !self.sampling {
            self.sampling = true;
            self.timers.push((now, TimerId::Sample));
        }
    }

    fn sample(&mut self, backend: &mut dyn Backend, now: Instant) {
        let (_, services) = self.sampled(backend);
        let time_ms = metrics::unix_ms(SystemTime::now());
        let mut points = Vec::new();
        for (i, s) in services.iter().enumerate() {
            let st = s.stats.clone().unwrap_or_default();
            let sample = Sample {
                time_ms,
                cpu_seconds: st.cpu_seconds,
                memory_bytes: st.memory_bytes,
                restarts: s.restarts,
            };
            self.history.push(i, sample);
            if !s.hidden {
                points.push(serde_json::json!({ "service": s.name, "sample": sample }));
            }
        }
        let streams: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.sse.is_some())
            .map(|(id, _)| *id)
            .collect();
        if !streams.is_empty() {
            let mut ev = Vec::new();
            sse_event(
                &mut ev,
                "stats",
                &serde_json::json!({ "time_ms": time_ms, "services": points }).to_string(),
            );
            for id in &streams {
                if let Some(c) = self.conns.get_mut(id) {
                    c.output.extend_from_slice(&ev);
                }
                self.flush_sse(*id);
            }
        }
        let watched =
            self.cfg.history || !streams.is_empty() || self.watch_until.is_some_and(|t| now < t);
        if watched {
            self.sampling = true;
            self.timers.push((now + SAMPLE_EVERY, TimerId::Sample));
        }
    }

    /// `sentinel stats` over the control socket: the history of service `i`.
    pub fn history(
        &mut self,
        i: usize,
        window: Option<Duration>,
        now: Instant,
    ) -> (u64, Vec<Sample>) {
        self.watch(now);
        let window = window.map_or(self.history.span(), |w| w.min(self.history.span()));
        (
            self.history.interval.as_millis() as u64,
            self.history
                .window(i, window, metrics::unix_ms(SystemTime::now())),
        )
    }
}

/// Send as much of `output` as the socket takes.
fn write_out(c: &mut Conn) -> io::Result<()> {
    while c.pending() {
        match c.stream.write(&c.output[c.sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if !c.pending() {
        c.output.clear();
        c.sent = 0;
    } else if c.sent > 64 * 1024 {
        c.output.drain(..c.sent);
        c.sent = 0;
    }
    Ok(())
}

/// A hidden unit's signature in `Broadcast::states`.
const HIDDEN: &str = "hidden";

/// What makes a service's state worth an event (not its ticking uptime).
fn signature(s: &ServiceStatus) -> String {
    format!(
        "{} {:?} {} {:?} {:?} {:?} {:?} {:?} {:?}",
        s.state,
        s.pid,
        s.restarts,
        s.last_exit_code,
        s.last_error,
        s.started_at_ms,
        s.instances,
        s.instance_range,
        s.last_scale
    )
}

fn sse_event(out: &mut Vec<u8>, event: &str, data: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Write `path` whole or not at all: a temporary file beside it, renamed.
fn write_atomically(path: &Path, data: &[u8]) -> Result<(), String> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let write = || -> io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("metrics_file {}: {e}", path.display())
    })
}

/// Raise the soft open-file limit to the hard one when `needed` fds would
/// not fit, and say so.
fn raise_fd_limit(needed: usize) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= needed as u64 {
        return;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => log(&format!(
            "raised the open-file limit from {soft} to {hard} to hold max_connections \
             (services inherit it)"
        )),
        Err(e) => log(&format!(
            "the open-file limit is {soft} and could not be raised ({e}); \
             connections beyond it are refused"
        )),
    }
    if hard < needed as u64 {
        log(&format!(
            "the hard open-file limit {hard} is below the {needed} fds max_connections may need"
        ));
    }
}

trait LaterThan {
    fn is_none_or_later(&self, d: Instant) -> bool;
}

impl LaterThan for Option<Instant> {
    /// No entry yet, or the pending one comes after `d`.
    fn is_none_or_later(&self, d: Instant) -> bool {
        self.map_or(true, |t| t > d)
    }
}

/// Same length and same bytes, in time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abcdefgh", b"abcdefgh"));
        assert!(!same_secret(b"abcdefgh", b"abcdefgx"));
        assert!(!same_secret(b"abcdefgh", b"abcdefg"));
        assert!(!same_secret(b"", b"a"));
        assert!(same_secret(b"", b""));
    }

    #[test]
    fn events_are_framed() {
        let mut out = Vec::new();
        sse_event(&mut out, "log", "{\"a\":1}");
        assert_eq!(out, b"event: log\ndata: {\"a\":1}\n\n");
    }
}
