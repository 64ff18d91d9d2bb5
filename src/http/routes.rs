//! What each path answers.
//!
//! | path | answer |
//! | --- | --- |
//! | `GET /` | the dashboard (one page, embedded; cargo feature `dashboard`, on by default) |
//! | `GET /metrics` | Prometheus text 0.0.4 |
//! | `GET /healthz` | 200 while sentinel's loop runs |
//! | `GET /readyz` | 200 when no service is failed, in backoff or stopping; else 503 |
//! | `GET /api/v1/services` | JSON: every shown unit (instances grouped under their service) and `totals` per service with instances |
//! | `GET /api/v1/services/NAME` | JSON: a unit: state, pid, restarts, last exit, uptime, groups, stats, config; or a service with instances and its `units` |
//! | `GET /api/v1/services/NAME/logs?lines=N&grep=RE&since=10m&stream=stderr` | JSON lines |
//! | `GET /api/v1/events[?logs=NAME or *]` | Server-Sent Events: `snapshot`, `service`, `removed`, `scale`, `log`, `stats` |
//! | `GET /api/v1/stats/NAME?window=15m` | JSON: current stats and history |
//! | `POST /api/v1/services/NAME/{start,stop,restart}` | with `control = true` and the bearer token |
//! | `POST /api/v1/services/NAME/scale` | the same; body `{"count": 4}` and/or `{"range": "2-6"}` |

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
/// `GET /` of a build without the dashboard.
#[cfg(not(feature = "dashboard"))]
fn no_dashboard() -> Reply {
    not_found(
        "this sentinel was built without the dashboard (cargo feature `dashboard`); \
         see /metrics and /api/v1/services",
    )
}

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
            [] if get => no_dashboard(),
            #[cfg(not(feature = "dashboard"))]
            ["dashboard.css"] if get => no_dashboard(),
            #[cfg(not(feature = "dashboard"))]
            ["dashboard.js"] if get => no_dashboard(),
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
                if let Some(i) = services.iter().position(|s| s.name == *name && !s.hidden) {
                    return Response::json(200, &self.service_json(i, &services[i])).into();
                }
                match crate::metrics::totals(&services)
                    .into_iter()
                    .find(|t| t.service == *name)
                {
                    Some(t) => Response::json(200, &self.total_json(&t, &services)).into(),
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
            ["api", "v1", "services", name, "scale"] if post => self.scale(name, req, backend),
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
            ["api", "v1", "services", _, "start" | "stop" | "restart" | "scale"] => {
                method_not_allowed("POST")
            }
            _ => not_found("no such path; see / for the dashboard, /metrics, /api/v1/services"),
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.info.iter().position(|i| i.name == name && !i.hidden)
    }

    fn no_service(&self, name: &str) -> Reply {
        // `web (web@0, web@1)` for a service with instances ('@' is not
        // allowed in names: it only ever joins a service and an instance).
        let mut names: Vec<(&str, Vec<&str>)> = Vec::new();
        for i in self.info.iter().filter(|i| !i.hidden) {
            let (top, instance) = match i.name.split_once('@') {
                Some((svc, _)) => (svc, Some(i.name.as_str())),
                None => (i.name.as_str(), None),
            };
            let at = match names.iter().position(|(n, _)| *n == top) {
                Some(at) => at,
                None => {
                    names.push((top, Vec::new()));
                    names.len() - 1
                }
            };
            names[at].1.extend(instance);
        }
        let names: Vec<String> = names
            .into_iter()
            .map(|(n, inst)| {
                if inst.is_empty() {
                    n.to_string()
                } else {
                    format!("{n} ({})", inst.join(", "))
                }
            })
            .collect();
        not_found(&format!(
            "no service named {name:?}; services: {}",
            names.join(", ")
        ))
    }

    /// The list the API and the dashboard's first event show: the shown
    /// units, each service's instances together in instance order where
    /// its first unit is, and the totals of the services with instances.
    pub(super) fn snapshot_json(
        &self,
        sup: &SupervisorStatus,
        services: &[ServiceStatus],
    ) -> Value {
        let totals = crate::metrics::totals(services);
        let mut order = Vec::new();
        for (i, s) in services.iter().enumerate() {
            match &s.service {
                _ if s.hidden => {}
                None => order.push(i),
                Some(svc) => {
                    let t = totals.iter().find(|t| t.service == *svc);
                    // The service's first unit stands for all of them.
                    if let Some(t) = t.filter(|t| t.index.iter().min() == Some(&i)) {
                        order.extend_from_slice(&t.index);
                    }
                }
            }
        }
        json!({
            "supervisor": sup,
            "version": env!("CARGO_PKG_VERSION"),
            "control": self.cfg.control,
            "history_interval_ms": super::SAMPLE_EVERY.as_millis() as u64,
            "services": order
                .into_iter()
                .map(|i| self.service_json(i, &services[i]))
                .collect::<Vec<_>>(),
            "totals": totals,
        })
    }

    /// A service with instances, for `/api/v1/services/NAME`: its totals,
    /// its config, and each shown instance as a unit.
    fn total_json(&self, t: &crate::metrics::ServiceTotal, services: &[ServiceStatus]) -> Value {
        let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut v {
            map.insert("name".into(), t.service.clone().into());
            let units: Vec<Value> = t
                .index
                .iter()
                .map(|&i| self.service_json(i, &services[i]))
                .collect();
            if let Some(Value::Object(first)) = units.first() {
                if let Some(c) = first.get("config") {
                    map.insert("config".into(), c.clone());
                }
            }
            map.insert("units".into(), units.into());
        }
        v
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
            .filter(|s| !s.hidden && s.required && crate::sdnotify::blocks_readiness(&s.state))
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

    /// Whether a request may change state: `control = true`, the same
    /// origin (if the client says one), and the bearer token. `None` when it
    /// may; else the 403 that says why not.
    fn refused(&self, req: &Request) -> Option<Reply> {
        let forbidden = |msg: &str| -> Option<Reply> { Some(Response::error(403, msg).into()) };
        if !self.cfg.control {
            return forbidden(
                "control is disabled: set control = true and a token in [http] to allow \
                 start/stop/restart/scale over HTTP",
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
        None
    }

    fn control(
        &mut self,
        name: &str,
        verb: Verb,
        req: &Request,
        backend: &mut dyn Backend,
    ) -> Reply {
        if let Some(no) = self.refused(req) {
            return no;
        }
        if self.index(name).is_none() {
            return self.no_service(name);
        }
        match backend.command(name, verb) {
            Ok(msg) => Response::json(200, &json!({ "ok": true, "message": msg })).into(),
            Err(e) => Response::json(503, &json!({ "ok": false, "error": e })).into(),
        }
    }

    /// `POST /api/v1/services/NAME/scale` with `{"count": 4}`, `{"range":
    /// "2-6"}` or both: as `sentinel scale` does.
    fn scale(&mut self, name: &str, req: &Request, backend: &mut dyn Backend) -> Reply {
        if let Some(no) = self.refused(req) {
            return no;
        }
        let (count, range) = match scale_body(&req.body) {
            Ok(b) => b,
            Err(e) => return bad(e),
        };
        // An instance is not scaled on its own: say which service is.
        if let Some(i) = self.index(name) {
            if let Some((svc, _)) = self.info[i].name.split_once('@') {
                return not_found(&format!(
                    "{name} is an instance of {svc}; scale the service: \
                     POST /api/v1/services/{svc}/scale"
                ));
            }
        }
        match backend.scale(name, count, range.as_deref()) {
            Ok(msg) => Response::json(200, &json!({ "ok": true, "message": msg })).into(),
            Err(e) => {
                // The backend's words tell an unknown service from a refusal.
                let status = if e.starts_with("no service named") {
                    404
                } else if e.contains("shutting down") {
                    503
                } else {
                    409
                };
                Response::json(status, &json!({ "ok": false, "error": e })).into()
            }
        }
    }
}

/// What a scale body asks: a count, a range, or both. Every mistake is named.
fn scale_body(body: &[u8]) -> Result<(Option<u32>, Option<String>), String> {
    const SHAPE: &str = r#"send a JSON body: {"count": 4}, {"range": "2-6"} or both"#;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(format!("empty body; {SHAPE}"));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body: {e}; {SHAPE}"))?;
    let Value::Object(map) = v else {
        return Err(format!("body: expected a JSON object; {SHAPE}"));
    };
    if let Some(k) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "count" | "range"))
    {
        return Err(format!("body: unknown field {k:?}; {SHAPE}"));
    }
    let count = match map.get("count") {
        None | Some(Value::Null) => None,
        Some(c) => Some(
            c.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    format!("count: {c} is not a number of instances; give a whole number like 4")
                })?,
        ),
    };
    let range = match map.get("range") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) => Some(r.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(r) => {
            return Err(format!(
                "range: {r} is not a range; give a string like \"2-6\""
            ))
        }
    };
    if let Some(r) = &range {
        crate::config::InstanceRange::parse(r).map_err(|e| format!("range: {e}"))?;
    }
    if count.is_none() && range.is_none() {
        return Err(format!("nothing to do; {SHAPE}"));
    }
    Ok((count, range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_bodies_are_read_or_refused_with_the_reason() {
        assert_eq!(scale_body(br#"{"count": 4}"#), Ok((Some(4), None)));
        assert_eq!(
            scale_body(br#"{"range": "2-6"}"#),
            Ok((None, Some("2-6".into())))
        );
        assert_eq!(
            scale_body(br#" {"count": 3, "range": "1-4"} "#),
            Ok((Some(3), Some("1-4".into())))
        );
        assert_eq!(scale_body(br#"{"range": 3}"#), Ok((None, Some("3".into()))));
        let err = |b: &[u8]| scale_body(b).unwrap_err();
        assert!(err(b"").starts_with("empty body"), "{}", err(b""));
        assert!(err(b"count=4").contains("send a JSON body"));
        assert!(err(b"[4]").contains("expected a JSON object"));
        assert!(err(br#"{"cnt": 4}"#).contains("unknown field \"cnt\""));
        assert!(err(br#"{"count": -1}"#).contains("count: -1 is not a number"));
        assert!(err(br#"{"count": 2.5}"#).contains("count: 2.5"));
        assert!(err(br#"{"count": "4"}"#).contains("count: \"4\""));
        assert!(err(br#"{"count": 99999999999}"#).contains("count:"));
        assert!(err(br#"{"range": [2, 6]}"#).contains("range:"));
        assert!(err(br#"{"range": "6-2"}"#).contains("above the maximum"));
        assert!(err(br#"{"range": "0"}"#).contains("is not an instance count"));
        assert!(err(b"{}").starts_with("nothing to do"));
    }
}
