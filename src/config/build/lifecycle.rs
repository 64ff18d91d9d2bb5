//! The lifecycle half of `build` (issue 4): a service's type, readiness,
//! start timeout, health check and watchdog, then the dependencies across
//! services (unknown names, conditions a dependency cannot meet, cycles),
//! checked with the graph the supervisor orders starts and stops by.

use super::super::lifecycle::{
    Condition, HealthCheck, Lifecycle, OnUnhealthy, Probe, Readiness, ServiceKind,
};
use super::super::node::{path_string, suggest, Kind};
use super::super::raw::{
    RawCondition, RawHealth, RawKind, RawOnUnhealthy, RawReady, RawRestart, RawService,
};
use super::{locate, show, Ctx, KeyPath};
use crate::config::ServiceConfig;
use crate::deps::{Graph, GraphError};
use std::time::Duration;

/// A oneshot repeats at most this often.
const MIN_EVERY: Duration = Duration::from_secs(1);
/// Health checks at most this often.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

const PROBE_EXAMPLES: &str = "tcp = \"127.0.0.1:8080\", http = \"http://127.0.0.1:8080/healthz\" \
                              or exec = [\"/usr/bin/check\"]";

/// The lifecycle keys of service `name`.
pub(super) fn service(name: &str, raw: &RawService, ctx: &mut Ctx<'_>) -> Lifecycle {
    let svc = KeyPath::new(&["services", name]);
    let kind = match raw.r#type {
        Some(RawKind::Oneshot) => ServiceKind::Oneshot,
        None | Some(RawKind::Simple) => ServiceKind::Simple,
    };
    let kind_known = !ctx.pruned_at(&svc.k("type"));

    let every = raw.every.map(|d| d.0);
    if let Some(every) = every {
        if kind != ServiceKind::Oneshot && kind_known {
            ctx.at_key_of(
                &svc.k("every"),
                "`every` repeats a one-shot task, and this service is long-running; \
                 add type = \"oneshot\" (or remove `every`)"
                    .to_string(),
            );
        }
        if every < MIN_EVERY {
            ctx.at(
                &svc.k("every"),
                format!(
                    "{} is too often; repeat a task at most once a second (\"1s\" or more)",
                    show(every)
                ),
            );
        }
    }
    if kind == ServiceKind::Oneshot && raw.restart == Some(RawRestart::Always) {
        ctx.at(
            &svc.k("restart"),
            "a one-shot task restarted always would never stay completed; use \"on-failure\" \
             (the default for oneshot) or \"never\", and `every` to repeat it on a schedule"
                .to_string(),
        );
    }

    let ready = match raw.ready {
        None | Some(RawReady::Started) => Readiness::Started,
        Some(RawReady::Notify) => Readiness::Notify,
        Some(RawReady::Fd) => Readiness::Fd,
        Some(RawReady::Healthy) => Readiness::Healthy,
    };
    if ready == Readiness::Healthy && raw.health.is_none() && !ctx.pruned_at(&svc.k("health")) {
        ctx.at(
            &svc.k("ready"),
            format!(
                "ready = \"healthy\" waits for the health check to pass, and there is none; \
                 add health = {{ ... }} with one of {PROBE_EXAMPLES}, or choose another readiness"
            ),
        );
    }

    let start_timeout = raw.start_timeout.map(|d| d.0);
    if start_timeout == Some(Duration::ZERO) {
        ctx.at(
            &svc.k("start_timeout"),
            "0s would fail every start; give a duration like \"30s\", or remove the key to wait \
             as long as it takes"
                .to_string(),
        );
    }
    let watchdog = raw.watchdog.map(|d| d.0);
    if watchdog == Some(Duration::ZERO) {
        ctx.at(
            &svc.k("watchdog"),
            "0s would kill the service at once; give a duration like \"10s\" (the service must \
             send sd_notify WATCHDOG=1 at least this often)"
                .to_string(),
        );
    }

    let health = raw
        .health
        .as_ref()
        .map(|h| health_check(h, &svc.k("health"), ctx));

    Lifecycle {
        kind,
        every,
        ready,
        start_timeout,
        health,
        watchdog,
        depends_on: depends_on(name, raw, ctx),
        propagate: raw.propagate.unwrap_or(false),
        required: raw.required.unwrap_or(true),
    }
}

/// `depends_on`, each dependency once (a repeat is a problem).
fn depends_on(name: &str, raw: &RawService, ctx: &mut Ctx<'_>) -> Vec<(String, Condition)> {
    let Some(deps) = &raw.depends_on else {
        return Vec::new();
    };
    let path = KeyPath::new(&["services", name, "depends_on"]);
    let mut all: Vec<(String, Condition)> = Vec::new();
    for (i, (dep, cond)) in deps.items.iter().enumerate() {
        let cond = match cond {
            RawCondition::Started => Condition::Started,
            RawCondition::Ready => Condition::Ready,
            RawCondition::Healthy => Condition::Healthy,
            RawCondition::Completed => Condition::Completed,
        };
        if all.iter().any(|(d, _)| d == dep) {
            let at = if deps.list { path.i(i) } else { path.k(dep) };
            ctx.at(&at, format!("\"{dep}\" is listed twice; remove one"));
            continue;
        }
        all.push((dep.clone(), cond));
    }
    all
}

fn health_check(raw: &RawHealth, path: &KeyPath, ctx: &mut Ctx<'_>) -> HealthCheck {
    let mut probes: Vec<(&str, Probe)> = Vec::new();
    if let Some(t) = &raw.tcp {
        probes.push(("tcp", t.0.clone()));
    }
    if let Some(h) = &raw.http {
        probes.push(("http", h.0.clone()));
    }
    if let Some(e) = &raw.exec {
        probes.push(("exec", Probe::Exec(e.0.clone())));
    }
    let keys = path.keys();
    let refused = ["tcp", "http", "exec"]
        .iter()
        .any(|k| ctx.pruned_at(&path.k(k)) || ctx.misspelled(&keys, k));
    if probes.is_empty() && !refused {
        ctx.at_key_of(
            path,
            format!("no probe in this health check; add one of {PROBE_EXAMPLES}"),
        );
    }
    if let [(first, _), (second, _), ..] = probes.as_slice() {
        ctx.at_key_of(
            &path.k(second),
            format!(
                "a health check has one probe, and `{first}` is already given; \
                 remove `{second}` or `{first}`"
            ),
        );
    }
    if let Some((_, Probe::Exec(argv))) = probes.iter().find(|(k, _)| *k == "exec") {
        match argv.first() {
            None => ctx.at(
                &path.k("exec"),
                "empty command; give the check program and its arguments, \
                 e.g. [\"/usr/bin/check\", \"--quick\"]"
                    .to_string(),
            ),
            Some(program) if program.is_empty() => ctx.at(
                &path.k("exec"),
                "the program (first word) is empty; give its path or name".to_string(),
            ),
            Some(_) => {}
        }
    }

    let interval = raw.interval.map_or(HealthCheck::DEFAULT_INTERVAL, |d| d.0);
    let timeout = raw.timeout.map_or(HealthCheck::DEFAULT_TIMEOUT, |d| d.0);
    if interval < MIN_INTERVAL {
        ctx.at(
            &path.k("interval"),
            format!(
                "{} is too often; check at most every {} (\"1s\" or more is usual)",
                show(interval),
                show(MIN_INTERVAL)
            ),
        );
    }
    if timeout.is_zero() {
        ctx.at(
            &path.k("timeout"),
            "a check cannot pass in 0s; give a duration like \"5s\"".to_string(),
        );
    } else if timeout > interval && interval >= MIN_INTERVAL {
        if raw.timeout.is_some() {
            ctx.at(
                &path.k("timeout"),
                format!(
                    "timeout ({}) is longer than interval ({}), so checks would overlap; \
                     lower timeout or raise interval",
                    show(timeout),
                    show(interval)
                ),
            );
        } else {
            ctx.at(
                &path.k("interval"),
                format!(
                    "interval ({}) is shorter than the default timeout ({}), so checks would \
                     overlap; raise interval or set a shorter timeout",
                    show(interval),
                    show(timeout)
                ),
            );
        }
    }
    let retries = raw.retries.unwrap_or(HealthCheck::DEFAULT_RETRIES);
    if retries == 0 {
        ctx.at(
            &path.k("retries"),
            "use at least 1: retries is how many failures in a row make the service unhealthy"
                .to_string(),
        );
    }

    let http_given = raw.http.is_some() || ctx.pruned_at(&path.k("http"));
    for (key, given) in [
        ("status", raw.status.is_some()),
        ("body", raw.body.is_some()),
    ] {
        if given && !http_given {
            ctx.at_key_of(
                &path.k(key),
                format!(
                    "`{key}` is for http checks, and this one is not; remove it, or check with \
                     http = \"http://HOST:PORT/PATH\""
                ),
            );
        }
    }
    if raw.body.as_deref() == Some("") {
        ctx.at(
            &path.k("body"),
            "an empty body matches every response; give the text to look for, or remove `body`"
                .to_string(),
        );
    }

    let probe = match probes.into_iter().next() {
        Some((
            _,
            Probe::Http {
                host,
                port,
                path,
                status,
                ..
            },
        )) => Probe::Http {
            host,
            port,
            path,
            status: raw.status.map_or(status, |s| s.0),
            body: raw.body.clone(),
        },
        Some((_, probe)) => probe,
        // Reported above; the config is not returned.
        None => Probe::Exec(Vec::new()),
    };
    HealthCheck {
        probe,
        interval,
        timeout,
        retries,
        start_period: raw.start_period.map_or(Duration::ZERO, |d| d.0),
        on_unhealthy: match raw.on_unhealthy {
            None | Some(RawOnUnhealthy::Restart) => OnUnhealthy::Restart,
            Some(RawOnUnhealthy::None) => OnUnhealthy::None,
        },
    }
}

/// Where service `svc` names `dep` in its `depends_on`: the key of a
/// table, or the item of a list.
fn dep_path(ctx: &Ctx<'_>, svc: &str, dep: &str) -> KeyPath {
    let base = KeyPath::new(&["services", svc, "depends_on"]);
    match ctx
        .tree
        .entry(&["services", svc, "depends_on"])
        .map(|e| &e.value.kind)
    {
        Some(Kind::List(items)) => {
            match items
                .iter()
                .position(|n| matches!(&n.kind, Kind::Str(s) if s == dep))
            {
                Some(i) => base.i(i),
                None => base,
            }
        }
        _ => base.k(dep),
    }
}

/// The dependencies across services: each names a service that can meet
/// its condition, none depends on itself, and there is no cycle.
pub(super) fn dependencies(services: &[(String, ServiceConfig)], ctx: &mut Ctx<'_>) {
    let names: Vec<&str> = services.iter().map(|(n, _)| n.as_str()).collect();
    for (name, svc) in services {
        for (dep, cond) in &svc.lifecycle.depends_on {
            let Some((_, target)) = services.iter().find(|(n, _)| n == dep) else {
                continue;
            };
            let message = match cond {
                Condition::Healthy
                    if target.lifecycle.health.is_none()
                        && !ctx.pruned(&["services", dep, "health"]) =>
                {
                    format!(
                        "\"healthy\" needs a health check on \"{dep}\", and it has none; add \
                         health = {{ ... }} to services.{dep}, or wait for \"ready\""
                    )
                }
                Condition::Completed
                    if target.lifecycle.kind != ServiceKind::Oneshot
                        && !ctx.pruned(&["services", dep, "type"]) =>
                {
                    format!(
                        "\"completed\" waits for a one-shot task to exit 0, and \"{dep}\" is \
                         long-running; wait for \"ready\" (or \"started\"), or make \"{dep}\" a \
                         one-shot task with type = \"oneshot\""
                    )
                }
                _ => continue,
            };
            let at = dep_path(ctx, name, dep);
            ctx.at(&at, message);
        }
    }

    let graph: Vec<(String, Vec<(String, Condition)>)> = services
        .iter()
        .map(|(n, s)| (n.clone(), s.lifecycle.depends_on.clone()))
        .collect();
    let Err(errors) = Graph::new(&graph) else {
        return;
    };
    for error in errors {
        match error {
            GraphError::Unknown { service, name } => {
                if ctx.pruned(&["services", &name]) {
                    continue;
                }
                let svc = &names[service];
                let others: Vec<&str> = names.iter().copied().filter(|n| n != svc).collect();
                let define = if ctx.yaml {
                    format!("define it under services: {{{name}: {{...}}}}")
                } else {
                    format!("define it with [services.{name}]")
                };
                let message = match suggest(&name, &others) {
                    Some(s) => format!("unknown service \"{name}\"; did you mean \"{s}\"?"),
                    None => format!("unknown service \"{name}\"; {define}, or remove it here"),
                };
                let at = dep_path(ctx, svc, &name);
                ctx.at_key_of(&at, message);
            }
            GraphError::Cycle { names: cycle, .. } if cycle.len() == 1 => {
                let at = dep_path(ctx, &cycle[0], &cycle[0]);
                ctx.at_key_of(
                    &at,
                    format!(
                        "a service cannot depend on itself; remove \"{}\" here",
                        cycle[0]
                    ),
                );
            }
            GraphError::Cycle { names: cycle, .. } => {
                // Reported once, at the first service's dependency on the
                // next, under its `depends_on`.
                let at = dep_path(ctx, &cycle[0], &cycle[1]);
                let (key_pos, pos) = locate(ctx.tree, &at.0);
                ctx.push(
                    path_string(&KeyPath::new(&["services", &cycle[0], "depends_on"]).0),
                    key_pos.or(pos),
                    format!(
                        "dependency cycle: {}; none of them could ever start: remove one of \
                         these dependencies",
                        GraphError::cycle_text(&cycle)
                    ),
                );
            }
        }
    }
}
