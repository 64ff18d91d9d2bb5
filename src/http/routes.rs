//! What each path answers.
//!
//! | path | answer |
//! | --- | --- |
//! | `GET /` | the dashboard (one page, embedded; cargo feature `dashboard`, on by default) |
//! | `GET /metrics` | Prometheus text 0.0.4 |
//! | `GET /healthz` | 200 while sentinel's loop runs |
//! | `GET /readyz` | 200 when no service is failed, in backoff or stopping; else 503 |
//! | `GET /api/v1/services[/NAME]` | JSON: state, pid, restarts, last exit, uptime, groups, stats, config |
//! | `GET /api/v1/services/NAME/logs?lines=N&grep=RE&since=10m&stream=stderr` | JSON lines |
//! | `GET /api/v1/events[?logs=NAME or *]` | Server-Sent Events: `snapshot`, `service`, `log`, `stats` |
//! | `GET /api/v1/stats/NAME?window=15m` | JSON: current stats and history |
//! | `POST /api/v1/services/NAME/{start,stop,restart}` | with `control = true` and the bearer token |

use std::time::{Instant, SystemTime};

use serde_json::{json, Value};

use super::request::{Method, Request};
use super::response::{self, Response};
use super::{same_secret, Backend, LogSub, Server, Verb};
use crate::control::{ServiceStatus, SupervisorStatus};
use crate::logs::{LogFilter, Stream};

#[cfg(feature = "dashboard")]
const DASHBOARD: &str = include_str!("dashboard.html");
#[cfg(feature = "dashboard")]
const DASHBOARD_CSS: &str = include_str!("dashboard.css");
#[cfg(feature = "dashboard")]
const DASHBOARD_JS: &str = include_str!("dashboard.js");
/// The dashboard's policy: its own script and style only (no inline code),
/// nothing from elsewhere, no framing.
#[cfg(feature = "dashboard")]
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";
/// Most log lines one request returns.
const MAX_LINES: usize = 10_000;

pub enum Reply {
    Response(Response),
    /// Turn the connection into an event stream.
    Events(LogSub),
}

impl From<Response> for Reply {
    fn from(r: Response) -> Reply {
        Reply::Response(r)
    }
}

fn not_found(what: &str) -> Reply {
    Response::error(404, what).into()
}

fn method_not_allowed(allow: &'static str) -> Reply {
    Response::error(405, &format!("method not allowed; use {allow}"))
        .header("Allow", allow)
        .into()
}

fn bad(msg: String) -> Reply {
    Response::error(400, &msg).into()
}

impl Server {
    pub(super) fn route(
        &mut self,
        req: &Request,
        backend: &mut dyn Backend,
        now: Instant,
    ) -> Reply {
        let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let get = matches!(req.method, Method::Get | Method::Head);
        let post = req.method == Method::Post;
        match segs.as_slice() {
            #[cfg(feature = "dashboard")]
            [] if get => Response::new(200, response::HTML, DASHBOARD)
                .header("Content-Security-Policy", CSP)
                .header("X-Frame-Options", "DENY")
                .header("Referrer-Policy", "no-referrer")
                .into(),
            #[cfg(feature = "dashboard")]
            ["dashboard.css"] if get => Response::new(200, response::CSS, DASHBOARD_CSS).into(),
            #[cfg(feature = "dashboard")]
            ["dashboard.js"] if get => {
                Response::new(200, response::JAVASCRIPT, DASHBOARD_JS).into()
            }
            #[cfg(not(feature = "dashboard"))]
            [] | ["dashboard.css" | "dashboard.js"] if get => not_found(
                "this sentinel was built without the dashboard (cargo feature `dashboard`); \
                 see /metrics and /api/v1/services",
            ),
            ["metrics"] if get => {
                Response::new(200, response::PROMETHEUS, self.metrics_text(backend, now)).into()
            }
            ["healthz"] if get => Response::new(200, response::TEXT, "ok\n").into(),
            ["readyz"] if get => self.readyz(backend),
            ["api", "v1", "services"] if get => {
                let (sup, services) = self.sampled(backend);
                Response::json(200, &self.snapshot_json(&sup, &services)).into()
            }
            ["api", "v1", "services", name] if get => {
                let (_, services) = self.sampled(backend);
                match services.iter().position(|s| s.name == *name) {
                    Some(i) => Response::json(200, &self.service_json(i, &services[i])).into(),
                    None => self.no_service(name),
                }
            }
            ["api", "v1", "services", name, "logs"] if get => self.logs(name, req, backend),
            ["api", "v1", "services", name, verb @ ("start" | "stop" | "restart")] if post => {
                let verb = match *verb {
                    "start" => Verb::Start,
                    "stop" => Verb::Stop,
                    _ => Verb::Restart,
                };
                self.control(name, verb, req, backend)
            }
            ["api", "v1", "events"] if get => match req.param("logs") {
                None | Some("") => Reply::Events(LogSub::None),
                Some("*") => Reply::Events(LogSub::All),
                Some(name) => match self.index(name) {
                    Some(i) => Reply::Events(LogSub::One(i)),
                    None => self.no_service(name),
                },
            },
            ["api", "v1", "stats", name] if get => self.stats(name, req, backend, now),
            [] | ["metrics" | "healthz" | "readyz"] | ["api", "v1", "services" | "events"] => {
                method_not_allowed("GET, HEAD")
            }
            ["api", "v1", "services", _] | ["api", "v1", "services", _, "logs"] => {
                method_not_allowed("GET, HEAD")
            }
            ["api", "v1", "stats", _] => method_not_allowed("GET, HEAD"),
            ["api", "v1", "services", _, "start" | "stop" | "restart"] => {
                method_not_allowed("POST")
            }
            _ => not_found("no such path; see / for the dashboard, /metrics, /api/v1/services"),
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.info.iter().position(|i| i.name == name && !i.hidden)
    }

    fn no_service(&self, name: &str) -> Reply {
        let names: Vec<&str> = self
            .info
            .iter()
            .filter(|i| !i.hidden)
            .map(|i| i.name.as_str())
            .collect();
        not_found(&format!(
            "no service named {name:?}; services: {}",
            names.join(", ")
        ))
    }

    /// The list the API and the dashboard's first event show.
    pub(super) fn snapshot_json(
        &self,
        sup: &SupervisorStatus,
        services: &[ServiceStatus],
    ) -> Value {
        json!({
            "supervisor": sup,
            "version": env!("CARGO_PKG_VERSION"),
            "control": self.cfg.control,
            "history_interval_ms": super::SAMPLE_EVERY.as_millis() as u64,
            "services": services
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.hidden)
                .map(|(i, s)| self.service_json(i, s))
                .collect::<Vec<_>>(),
        })
    }

    fn service_json(&self, i: usize, s: &ServiceStatus) -> Value {
        let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
        if let (Some(info), Value::Object(map)) = (self.info.get(i), &mut v) {
            map.insert(
                "config".into(),
                json!({
                    "command": info.command,
                    "restart": info.restart,
                    "autostart": info.autostart,
                    "stop_timeout_ms": info.stop_timeout_ms,
                }),
            );
        }
        v
    }

    /// Ready: every `required` service is ready — none is waiting for its
    /// dependencies, starting (not ready yet), failed, waiting to restart,
    /// or stopping. A service stopped on purpose, or exited with success,
    /// does not count against it.
    fn readyz(&mut self, backend: &mut dyn Backend) -> Reply {
        let (sup, services) = backend.status(false);
        let not_ready: Vec<Value> = services
            .iter()
            .filter(|s| {
                s.required
                    && matches!(
                        s.state.as_str(),
                        "failed" | "backoff" | "stopping" | "waiting" | "starting"
                    )
            })
            .map(|s| json!({ "service": s.name, "state": s.state }))
            .collect();
        let ready = not_ready.is_empty() && !sup.shutting_down;
        Response::json(
            if ready { 200 } else { 503 },
            &json!({ "ready": ready, "shutting_down": sup.shutting_down, "not_ready": not_ready }),
        )
        .into()
    }

    fn logs(&mut self, name: &str, req: &Request, backend: &mut dyn Backend) -> Reply {
        let Some(i) = self.index(name) else {
            return self.no_service(name);
        };
        let lines = match req.param("lines").map(str::parse::<usize>) {
            None => 100,
            Some(Ok(n)) => n.min(MAX_LINES),
            Some(Err(_)) => return bad("lines: expected a whole number".into()),
        };
        let since = match req.param("since").filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match crate::config::parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => return bad(format!("since: {e}")),
            },
        };
        let stream = match req.param("stream").filter(|s| !s.is_empty()) {
            None => None,
            Some("stdout") => Some(Stream::Stdout),
            Some("stderr") => Some(Stream::Stderr),
            Some(other) => return bad(format!("stream: {other:?}; expected stdout or stderr")),
        };
        let filter = match LogFilter::new(req.param("grep"), since, stream, SystemTime::now()) {
            Ok(f) => f,
            Err(e) => return bad(e),
        };
        let lines = filter.tail(backend.ring(i), lines);
        Response::json(200, &json!({ "service": name, "lines": lines })).into()
    }

    fn stats(
        &mut self,
        name: &str,
        req: &Request,
        backend: &mut dyn Backend,
        now: Instant,
    ) -> Reply {
        let Some(i) = self.index(name) else {
            return self.no_service(name);
        };
        let window = match req.param("window").filter(|s| !s.is_empty()) {
            None => None,
            Some(w) => match crate::config::parse_duration(w) {
                Ok(d) => Some(d),
                Err(e) => return bad(format!("window: {e}")),
            },
        };
        let (_, services) = self.sampled(backend);
        let s = &services[i];
        let (interval_ms, samples) = self.history(i, window, now);
        let reply = crate::metrics::StatsReply {
            service: s.name.clone(),
            state: s.state.clone(),
            restarts: s.restarts,
            current: s.stats.clone().unwrap_or_default(),
            interval_ms,
            samples,
        };
        Response::json(200, &serde_json::to_value(reply).unwrap_or(Value::Null)).into()
    }

    fn control(
        &mut self,
        name: &str,
        verb: Verb,
        req: &Request,
        backend: &mut dyn Backend,
    ) -> Reply {
        let forbidden = |msg: &str| -> Reply { Response::error(403, msg).into() };
        if !self.cfg.control {
            return forbidden(
                "control is disabled: set control = true and a token in [http] to allow \
                 start/stop/restart over HTTP",
            );
        }
        if let Some(origin) = &req.origin {
            let own = req.host.as_ref().map(|h| format!("http://{h}"));
            if own.as_deref() != Some(origin.as_str()) {
                return forbidden(&format!(
                    "cross-origin request refused: Origin {origin} is not this server"
                ));
            }
        }
        let Some(given) = req
            .authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
        else {
            return forbidden("missing token: send Authorization: Bearer <token>");
        };
        let expected = self.cfg.token.as_deref().unwrap_or("");
        if expected.is_empty() || !same_secret(given.trim().as_bytes(), expected.as_bytes()) {
            return forbidden("wrong token");
        }
        if self.index(name).is_none() {
            return self.no_service(name);
        }
        match backend.command(name, verb) {
            Ok(msg) => Response::json(200, &json!({ "ok": true, "message": msg })).into(),
            Err(e) => Response::json(503, &json!({ "ok": false, "error": e })).into(),
        }
    }
}
