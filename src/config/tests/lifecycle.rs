//! The lifecycle keys (issue 4): each value form, each rule, and where
//! each problem is reported.

use super::*;

/// A config with service `a` whose table ends with `body`.
fn svc(body: &str) -> String {
    format!("[services.a]\ncommand = [\"x\"]\n{body}\n")
}

fn life_ok(body: &str) -> Lifecycle {
    service(&toml_ok(&svc(body)), "a").lifecycle.clone()
}

/// The single problem of service `a` with `body`, at `key` (below
/// `services.a.`), mentioning `needle`.
fn life_problem(body: &str, key: &str, needle: &str) -> Problem {
    one_problem(&svc(body), &format!("services.a.{key}"), needle)
}

/// `(key, line, column)` of each problem.
fn at(problems: &[Problem]) -> Vec<(&str, usize, usize)> {
    problems
        .iter()
        .map(|p| (p.key.as_str(), p.line.unwrap_or(0), p.column.unwrap_or(0)))
        .collect()
}

#[cfg(feature = "yaml")]
fn yaml_err(text: &str) -> Vec<Problem> {
    match from_str(text, true, Path::new("/base")) {
        Ok(c) => panic!("expected problems, got {c:#?}"),
        Err(p) => p,
    }
}

fn health(probe: Probe) -> HealthCheck {
    HealthCheck {
        probe,
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(5),
        retries: 3,
        start_period: Duration::ZERO,
        on_unhealthy: OnUnhealthy::Restart,
    }
}

fn tcp(host: &str, port: u16) -> Probe {
    Probe::Tcp {
        host: host.to_string(),
        port,
    }
}

fn http(host: &str, port: u16, path: &str) -> Probe {
    Probe::Http {
        host: host.to_string(),
        port,
        path: path.to_string(),
        status: (200, 399),
        body: None,
    }
}

fn deps(list: &[(&str, Condition)]) -> Vec<(String, Condition)> {
    list.iter().map(|(n, c)| (n.to_string(), *c)).collect()
}

#[test]
fn a_plain_service_by_default() {
    let c = toml_ok(&svc(""));
    let a = service(&c, "a");
    assert_eq!(a.lifecycle, Lifecycle::default());
    assert_eq!(a.lifecycle.kind, ServiceKind::Simple);
    assert_eq!(a.lifecycle.ready, Readiness::Started);
    assert!(a.lifecycle.required);
    assert!(!a.lifecycle.propagate);
    assert!(!a.lifecycle.needs_notify_socket());
    assert_eq!(a.restart, RestartPolicy::Always);
}

#[test]
fn every_lifecycle_key() {
    let c = toml_ok(
        r#"
[services.db]
command = ["db"]
ready = "notify"
start_timeout = "30s"
watchdog = "10s"
required = false
health = { tcp = "127.0.0.1:5432", interval = "2s", timeout = "1s", retries = 5, start_period = "1m", on_unhealthy = "none" }

[services.migrate]
command = "migrate --all"
type = "oneshot"
every = "1h"
depends_on = { db = "ready" }

[services.web]
command = ["web"]
type = "simple"
ready = "healthy"
propagate = true
depends_on = { migrate = "completed", db = "healthy", cache = "started" }
health = { http = "http://[::1]:8080/healthz?deep=1#top", status = "200-299", body = "ok" }

[services.cache]
command = ["cache"]
ready = "fd"
depends_on = ["db"]
health = { exec = "check --quick" }
"#,
    );
    let db = &service(&c, "db").lifecycle;
    assert_eq!(
        *db,
        Lifecycle {
            ready: Readiness::Notify,
            start_timeout: Some(Duration::from_secs(30)),
            watchdog: Some(Duration::from_secs(10)),
            required: false,
            health: Some(HealthCheck {
                probe: tcp("127.0.0.1", 5432),
                interval: Duration::from_secs(2),
                timeout: Duration::from_secs(1),
                retries: 5,
                start_period: Duration::from_secs(60),
                on_unhealthy: OnUnhealthy::None,
            }),
            ..Lifecycle::default()
        }
    );
    assert!(db.needs_notify_socket());

    let migrate = service(&c, "migrate");
    assert_eq!(
        migrate.lifecycle,
        Lifecycle {
            kind: ServiceKind::Oneshot,
            every: Some(Duration::from_secs(3600)),
            depends_on: deps(&[("db", Condition::Ready)]),
            ..Lifecycle::default()
        }
    );
    // A oneshot that exited 0 stays completed: no restart by default.
    assert_eq!(migrate.restart, RestartPolicy::OnFailure);

    let web = &service(&c, "web").lifecycle;
    assert_eq!(
        *web,
        Lifecycle {
            ready: Readiness::Healthy,
            propagate: true,
            depends_on: deps(&[
                ("migrate", Condition::Completed),
                ("db", Condition::Healthy),
                ("cache", Condition::Started),
            ]),
            health: Some(health(Probe::Http {
                host: "::1".to_string(),
                port: 8080,
                path: "/healthz?deep=1".to_string(),
                status: (200, 299),
                body: Some("ok".to_string()),
            })),
            ..Lifecycle::default()
        }
    );
    assert_eq!(
        web.health.as_ref().unwrap().probe.socket_addr(),
        Some("[::1]:8080".parse().unwrap())
    );

    let cache = &service(&c, "cache").lifecycle;
    assert_eq!(cache.ready, Readiness::Fd);
    assert_eq!(cache.depends_on, deps(&[("db", Condition::Ready)]));
    let probe = &cache.health.as_ref().unwrap().probe;
    assert_eq!(
        *probe,
        Probe::Exec(vec!["check".to_string(), "--quick".to_string()])
    );
    assert_eq!(probe.socket_addr(), None);
}

#[test]
fn watchdog_goes_with_any_readiness() {
    let l = life_ok("watchdog = \"5s\"");
    assert_eq!(l.ready, Readiness::Started);
    assert_eq!(l.watchdog, Some(Duration::from_secs(5)));
    assert!(l.needs_notify_socket());
}

#[test]
fn tcp_probes() {
    let probe = |text: &str| Probe::parse_tcp(text);
    assert_eq!(probe("127.0.0.1:8080"), Ok(tcp("127.0.0.1", 8080)));
    assert_eq!(probe("[::1]:53"), Ok(tcp("::1", 53)));
    assert_eq!(probe("[fe80::0001]:1"), Ok(tcp("fe80::1", 1)));
    assert_eq!(probe("localhost:6379"), Ok(tcp("127.0.0.1", 6379)));
    assert_eq!(
        probe("10.0.0.2:80").unwrap().socket_addr(),
        Some("10.0.0.2:80".parse().unwrap())
    );
    for (bad, needle) in [
        ("127.0.0.1", "has no port"),
        ("127.0.0.1:", "\"\" is not a port number"),
        ("127.0.0.1:0", "port 0"),
        ("127.0.0.1:65536", "\"65536\" is not a port number"),
        (":80", "has no host"),
        ("db:5432", "host names are not looked up"),
        ("::1:80", "in brackets"),
        ("[::1", "no closing ']'"),
        ("[::1]", "has no port"),
        ("[::1]x", "unexpected \"x\""),
        ("[1.2.3.4]:80", "not an IPv6 address"),
    ] {
        let err = probe(bad).unwrap_err();
        assert!(err.contains(needle), "{bad}: {err}");
        assert!(err.contains("like \"127.0.0.1:8080\""), "{bad}: {err}");
    }
}

#[test]
fn http_probes() {
    let probe = |text: &str| Probe::parse_http(text);
    assert_eq!(
        probe("http://127.0.0.1:8080/healthz"),
        Ok(http("127.0.0.1", 8080, "/healthz"))
    );
    assert_eq!(probe("http://127.0.0.1"), Ok(http("127.0.0.1", 80, "/")));
    assert_eq!(probe("HTTP://localhost/"), Ok(http("127.0.0.1", 80, "/")));
    assert_eq!(
        probe("http://[::1]/a/b?x=1&y"),
        Ok(http("::1", 80, "/a/b?x=1&y"))
    );
    assert_eq!(
        probe("http://127.0.0.1:81?ready"),
        Ok(http("127.0.0.1", 81, "/?ready"))
    );
    assert_eq!(
        probe("http://127.0.0.1/x#frag"),
        Ok(http("127.0.0.1", 80, "/x"))
    );
    for (bad, needle) in [
        ("https://127.0.0.1/", "https is not supported"),
        ("ftp://127.0.0.1/", "unsupported scheme \"ftp\""),
        ("127.0.0.1:8080/healthz", "no http://"),
        ("http:///healthz", "has no host"),
        ("http://user:pw@127.0.0.1/", "credentials"),
        ("http://example.com/", "host names are not looked up"),
        ("http://127.0.0.1:http/", "not a port number"),
        ("http://127.0.0.1/a b", "percent-encode"),
    ] {
        let err = probe(bad).unwrap_err();
        assert!(err.contains(needle), "{bad}: {err}");
    }
    let err = probe("https://127.0.0.1:8443/").unwrap_err();
    assert!(
        err.contains("tcp = \"HOST:PORT\"") && err.contains("exec = [\"curl\""),
        "{err}"
    );
}

#[test]
fn status_ranges() {
    assert_eq!(parse_status_range("200-399"), Ok((200, 399)));
    assert_eq!(parse_status_range("204"), Ok((204, 204)));
    assert_eq!(parse_status_range(" 200 - 204 "), Ok((200, 204)));
    for bad in ["", "99", "600", "2xx", "200-", "-200", "a-b", "200-399-500"] {
        let err = parse_status_range(bad).unwrap_err();
        assert!(err.contains("like \"200-399\""), "{bad}: {err}");
    }
    assert!(parse_status_range("399-200")
        .unwrap_err()
        .contains("backwards; write the lower code first, like \"200-399\""));
    let l = life_ok("health = { http = \"http://127.0.0.1/\", status = 204 }");
    match l.health.unwrap().probe {
        Probe::Http { status, .. } => assert_eq!(status, (204, 204)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn values_are_refused_where_they_are_written() {
    let p = life_problem(
        "type = \"forking\"",
        "type",
        "expected one of: simple, oneshot",
    );
    assert_eq!((p.line, p.column), (Some(3), Some(8)));
    life_problem(
        "ready = \"yes\"",
        "ready",
        "expected one of: started, notify, fd, healthy",
    );
    life_problem("every = \"often\"", "every", "invalid duration \"often\"");
    life_problem(
        "start_timeout = -1",
        "start_timeout",
        "found the integer -1",
    );
    life_problem("watchdog = true", "watchdog", "a duration like");
    life_problem("propagate = \"yes\"", "propagate", "expected true or false");
    life_problem("required = 1", "required", "expected true or false");
    life_problem(
        "health = { tcp = 8080 }",
        "health.tcp",
        "expected an address and port like \"127.0.0.1:8080\", found the integer 8080",
    );
    let p = life_problem(
        "health = { http = \"https://127.0.0.1/\" }",
        "health.http",
        "https is not supported",
    );
    assert_eq!((p.line, p.column), (Some(3), Some(19)));
    life_problem(
        "health = { exec = \"check 'x\" }",
        "health.exec",
        "unterminated single quote",
    );
    life_problem(
        "health = { exec = [\"x\"], on_unhealthy = \"kill\" }",
        "health.on_unhealthy",
        "expected one of: restart, none",
    );
    life_problem(
        "health = { exec = [\"x\"], retries = -1 }",
        "health.retries",
        "a whole number, 0 or more",
    );
    life_problem(
        "health = { http = \"http://127.0.0.1/\", status = \"2xx\" }",
        "health.status",
        "invalid status \"2xx\"",
    );
    let p = life_problem(
        "health = { exec = [\"x\"], intreval = \"1s\" }",
        "health.intreval",
        "did you mean \"interval\"?",
    );
    assert_eq!((p.line, p.column), (Some(3), Some(26)));
    life_problem(
        "depends_on = { b = \"up\" }\n[services.b]\ncommand = [\"x\"]",
        "depends_on.b",
        "expected one of: started, ready, healthy, completed",
    );
    life_problem(
        "depends_on = \"b\"",
        "depends_on",
        "a table like { db = \"healthy\" } or a list of service names",
    );
    life_problem(
        "depends_on = [\"b\", 1]",
        "depends_on[1]",
        "expected a string",
    );
}

#[test]
fn every_needs_a_oneshot_and_at_least_a_second() {
    let p = life_problem("every = \"1h\"", "every", "add type = \"oneshot\"");
    // At the key: the setting is the mistake, not its value.
    assert_eq!((p.line, p.column), (Some(3), Some(1)));
    let p = life_problem(
        "type = \"oneshot\"\nevery = \"500ms\"",
        "every",
        "500ms is too often",
    );
    assert_eq!((p.line, p.column), (Some(4), Some(9)));
    // A refused `type` does not also make `every` wrong.
    life_problem(
        "type = \"one-shot\"\nevery = \"1h\"",
        "type",
        "unknown value \"one-shot\"",
    );
    let l = life_ok("type = \"oneshot\"\nevery = \"1s\"\nrestart = \"never\"");
    assert_eq!(l.every, Some(Duration::from_secs(1)));
}

#[test]
fn a_oneshot_does_not_restart_always() {
    let p = life_problem(
        "type = \"oneshot\"\nrestart = \"always\"",
        "restart",
        "would never stay completed",
    );
    assert_eq!((p.line, p.column), (Some(4), Some(11)));
    let c = toml_ok(&svc("type = \"oneshot\"\nrestart = \"on-failure\""));
    assert_eq!(service(&c, "a").restart, RestartPolicy::OnFailure);
    let c = toml_ok(&svc("type = \"oneshot\"\nrestart = \"never\""));
    assert_eq!(service(&c, "a").restart, RestartPolicy::Never);
}

#[test]
fn ready_healthy_needs_a_health_check() {
    let p = life_problem("ready = \"healthy\"", "ready", "add health = { ... }");
    assert_eq!((p.line, p.column), (Some(3), Some(9)));
    // Not piled on a health table that was itself refused.
    life_problem(
        "ready = \"healthy\"\nhealth = \"tcp\"",
        "health",
        "expected a table",
    );
    let l = life_ok("ready = \"healthy\"\nhealth = { tcp = \"127.0.0.1:1\" }");
    assert_eq!(l.ready, Readiness::Healthy);
}

#[test]
fn timeouts_must_be_positive() {
    let p = life_problem(
        "start_timeout = \"0s\"",
        "start_timeout",
        "0s would fail every start",
    );
    assert_eq!((p.line, p.column), (Some(3), Some(17)));
    life_problem("watchdog = 0", "watchdog", "WATCHDOG=1");
    assert_eq!(
        life_ok("start_timeout = \"1m\"").start_timeout,
        Some(Duration::from_secs(60))
    );
}

#[test]
fn a_health_check_has_exactly_one_probe() {
    let p = life_problem(
        "health = { interval = \"5s\" }",
        "health",
        "no probe in this health check; add one of tcp = ",
    );
    assert_eq!((p.line, p.column), (Some(3), Some(1)));
    let p = life_problem(
        "health = { tcp = \"127.0.0.1:1\", exec = [\"x\"] }",
        "health.exec",
        "one probe, and `tcp` is already given; remove `exec` or `tcp`",
    );
    assert_eq!((p.line, p.column), (Some(3), Some(33)));
    // A misspelled probe is reported once, as a misspelling.
    life_problem(
        "health = { tpc = \"127.0.0.1:1\" }",
        "health.tpc",
        "did you mean \"tcp\"?",
    );
    life_problem("health = { exec = [] }", "health.exec", "empty command");
    life_problem(
        "health = { exec = [\"\", \"x\"] }",
        "health.exec",
        "the program (first word) is empty",
    );
}

#[test]
fn health_timing() {
    let l = life_ok("health = { exec = [\"x\"] }");
    assert_eq!(l.health, Some(health(Probe::Exec(vec!["x".to_string()]))));
    life_problem(
        "health = { exec = [\"x\"], interval = \"50ms\", timeout = \"10ms\" }",
        "health.interval",
        "50ms is too often; check at most every 100ms",
    );
    life_problem(
        "health = { exec = [\"x\"], timeout = 0 }",
        "health.timeout",
        "cannot pass in 0s",
    );
    let p = life_problem(
        "health = { exec = [\"x\"], interval = \"2s\", timeout = \"3s\" }",
        "health.timeout",
        "timeout (3s) is longer than interval (2s), so checks would overlap",
    );
    assert_eq!((p.line, p.column), (Some(3), Some(53)));
    // With the default timeout, the interval is what was written.
    life_problem(
        "health = { exec = [\"x\"], interval = \"2s\" }",
        "health.interval",
        "interval (2s) is shorter than the default timeout (5s)",
    );
    let l = life_ok("health = { exec = [\"x\"], interval = \"2s\", timeout = \"2s\" }");
    assert_eq!(l.health.unwrap().timeout, Duration::from_secs(2));
    life_problem(
        "health = { exec = [\"x\"], retries = 0 }",
        "health.retries",
        "use at least 1",
    );
}

#[test]
fn status_and_body_are_for_http() {
    let p = toml_err(&svc(
        "health = { tcp = \"127.0.0.1:1\", status = 200, body = \"ok\" }",
    ));
    assert_eq!(
        at(&p),
        [
            ("services.a.health.status", 3, 33),
            ("services.a.health.body", 3, 47)
        ],
        "{p:#?}"
    );
    assert!(
        p[0].message.contains("`status` is for http checks"),
        "{p:#?}"
    );
    // Not when the http probe itself was refused: that is the mistake.
    life_problem(
        "health = { http = \"https://127.0.0.1/\", status = 200 }",
        "health.http",
        "https",
    );
    life_problem(
        "health = { http = \"http://127.0.0.1/\", body = \"\" }",
        "health.body",
        "an empty body matches every response",
    );
}

/// Services `a`, `b`, `c` ... each with `command` and the lines given.
fn stack(services: &[(&str, &str)]) -> String {
    services
        .iter()
        .map(|(name, body)| format!("[services.{name}]\ncommand = [\"x\"]\n{body}\n"))
        .collect()
}

#[test]
fn dependencies_on_unknown_services() {
    let p = toml_err(&stack(&[
        ("db", ""),
        (
            "web",
            "depends_on = { dbb = \"ready\", cache = \"started\" }",
        ),
        ("job", "depends_on = [\"db\", \"nope\"]"),
    ]));
    assert_eq!(
        at(&p),
        [
            ("services.web.depends_on.dbb", 6, 16),
            ("services.web.depends_on.cache", 6, 31),
            ("services.job.depends_on[1]", 9, 21),
        ],
        "{p:#?}"
    );
    assert_eq!(
        p[0].message,
        "unknown service \"dbb\"; did you mean \"db\"?"
    );
    assert_eq!(
        p[1].message,
        "unknown service \"cache\"; define it with [services.cache], or remove it here"
    );
    // A service that was itself refused is not also unknown.
    let p =
        toml_err("[services]\ndb = 5\n[services.web]\ncommand = [\"x\"]\ndepends_on = [\"db\"]\n");
    assert_eq!(at(&p), [("services.db", 2, 6)], "{p:#?}");
}

#[test]
fn conditions_a_dependency_can_meet() {
    let p = toml_err(&stack(&[
        ("db", "health = { tcp = \"127.0.0.1:1\" }"),
        ("job", "type = \"oneshot\""),
        (
            "web",
            "depends_on = { db = \"healthy\", job = \"completed\", cache = \"completed\" }",
        ),
        ("cache", "health = { tcp = \"127.0.0.1:1\" }"),
    ]));
    assert_eq!(at(&p), [("services.web.depends_on.cache", 9, 59)], "{p:#?}");
    assert!(
        p[0].message.contains(
            "\"completed\" waits for a one-shot task to exit 0, and \"cache\" is long-running"
        ),
        "{p:#?}"
    );
    let p = toml_err(&stack(&[
        ("db", ""),
        ("web", "depends_on = { db = \"healthy\" }"),
    ]));
    assert_eq!(at(&p), [("services.web.depends_on.db", 6, 21)], "{p:#?}");
    assert!(
        p[0].message.contains(
            "\"healthy\" needs a health check on \"db\", and it has none; add health = { ... } to services.db"
        ),
        "{p:#?}"
    );
    // Conditions on a dependency whose `type` was refused are not judged.
    let p = toml_err(&stack(&[
        ("job", "type = \"once\""),
        ("web", "depends_on = { job = \"completed\" }"),
    ]));
    assert_eq!(at(&p), [("services.job.type", 3, 8)], "{p:#?}");
}

#[test]
fn a_dependency_once() {
    let p = toml_err(&stack(&[
        ("db", ""),
        ("web", "depends_on = [\"db\", \"db\"]"),
    ]));
    assert_eq!(at(&p), [("services.web.depends_on[1]", 6, 21)], "{p:#?}");
    assert_eq!(p[0].message, "\"db\" is listed twice; remove one");
}

#[test]
fn a_service_cannot_depend_on_itself() {
    let p = toml_err(&stack(&[("a", "depends_on = [\"a\"]")]));
    assert_eq!(at(&p), [("services.a.depends_on[0]", 3, 15)], "{p:#?}");
    assert_eq!(
        p[0].message,
        "a service cannot depend on itself; remove \"a\" here"
    );
    let p = toml_err(&stack(&[("a", "depends_on = { a = \"started\" }")]));
    assert_eq!(at(&p), [("services.a.depends_on.a", 3, 16)], "{p:#?}");
}

#[test]
fn a_cycle_is_named_once_in_order() {
    let p = toml_err(&stack(&[
        ("x", ""),
        ("a", "depends_on = { x = \"ready\", b = \"ready\" }"),
        ("b", "depends_on = [\"c\"]"),
        ("c", "depends_on = { a = \"started\" }"),
    ]));
    assert_eq!(at(&p), [("services.a.depends_on", 6, 29)], "{p:#?}");
    assert_eq!(
        p[0].message,
        "dependency cycle: a -> b -> c -> a; none of them could ever start: \
         remove one of these dependencies"
    );
    // Two cycles, each reported; a self-loop within a cycle too.
    let p = toml_err(&stack(&[
        ("a", "depends_on = [\"b\"]"),
        ("b", "depends_on = [\"a\", \"b\"]"),
        ("c", "depends_on = [\"d\"]"),
        ("d", "depends_on = [\"c\"]"),
    ]));
    assert_eq!(
        at(&p),
        [
            ("services.a.depends_on", 3, 15),
            ("services.b.depends_on[1]", 6, 20),
            ("services.c.depends_on", 9, 15),
        ],
        "{p:#?}"
    );
    assert!(p[0].message.contains("a -> b -> a"), "{p:#?}");
    assert!(p[2].message.contains("c -> d -> c"), "{p:#?}");
}

#[test]
fn every_problem_at_once() {
    let p = toml_err(&stack(&[
        ("a", "every = \"1h\"\ndepends_on = [\"b\"]"),
        ("b", "depends_on = [\"c\"]\nready = \"healthy\""),
        (
            "c",
            "depends_on = [\"a\"]\nhealth = { http = \"https://127.0.0.1/\", retries = 0 }",
        ),
    ]));
    assert_eq!(
        at(&p),
        [
            ("services.a.every", 3, 1),
            ("services.a.depends_on", 4, 15),
            ("services.b.ready", 8, 9),
            ("services.c.health.http", 12, 19),
            ("services.c.health.retries", 12, 51),
        ],
        "{p:#?}"
    );
}

#[cfg(feature = "yaml")]
#[test]
fn yaml_lifecycle() {
    let toml = r#"
[services.db]
command = ["db"]
ready = "notify"
health = { tcp = "127.0.0.1:5432", interval = "2s", timeout = "1s", status = 200 }
[services.migrate]
command = ["m"]
type = "oneshot"
every = "1h"
depends_on = ["db"]
[services.web]
command = ["w"]
depends_on = { migrate = "completed", db = "healthy" }
health = { http = "http://127.0.0.1:8080/healthz", status = "200-299", body = "ok", on_unhealthy = "none" }
watchdog = "10s"
propagate = true
required = false
"#;
    let yaml = r#"
services:
  db:
    command: [db]
    ready: notify
    health: {tcp: "127.0.0.1:5432", interval: 2s, timeout: 1s, status: 200}
  migrate:
    command: [m]
    type: oneshot
    every: 1h
    depends_on: [db]
  web:
    command: [w]
    depends_on: {migrate: completed, db: healthy}
    health:
      http: http://127.0.0.1:8080/healthz
      status: 200-299
      body: ok
      on_unhealthy: none
    watchdog: 10s
    propagate: true
    required: false
"#;
    // `status` on a tcp check is a mistake in both.
    let t = toml_err(toml);
    let y = yaml_err(yaml);
    assert_eq!(at(&t), [("services.db.health.status", 5, 69)], "{t:#?}");
    assert_eq!(at(&y), [("services.db.health.status", 6, 64)], "{y:#?}");
    let toml = toml.replace(", status = 200 }", " }");
    let yaml = yaml.replace(", status: 200}", "}");
    let from_yaml = from_str(&yaml, true, Path::new("/base")).unwrap_or_else(|p| panic!("{p:#?}"));
    assert_eq!(toml_ok(&toml), from_yaml);

    let p = yaml_err(
        "services:\n  a:\n    command: [x]\n    depends_on: {b: ready, nope: started}\n  b:\n    command: [x]\n    depends_on:\n      - a\n",
    );
    assert_eq!(
        at(&p),
        [
            ("services.a.depends_on", 4, 18),
            ("services.a.depends_on.nope", 4, 28),
        ],
        "{p:#?}"
    );
    assert!(p[0].message.contains("a -> b -> a"), "{p:#?}");
    assert!(
        p[1].message
            .contains("define it under services: {nope: {...}}"),
        "{p:#?}"
    );
}

#[test]
fn the_stack_examples_load_and_agree() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let toml = load(&dir.join("stack.toml")).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = toml.services.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["web", "migrate", "db", "cleanup"]);
    let db = &service(&toml, "db").lifecycle;
    assert_eq!(db.ready, Readiness::Fd);
    let migrate = &service(&toml, "migrate").lifecycle;
    assert_eq!(migrate.kind, ServiceKind::Oneshot);
    assert_eq!(migrate.depends_on, deps(&[("db", Condition::Ready)]));
    let web = &service(&toml, "web").lifecycle;
    assert_eq!(
        web.depends_on,
        deps(&[("migrate", Condition::Completed), ("db", Condition::Ready)])
    );
    assert!(matches!(
        web.health.as_ref().map(|h| &h.probe),
        Some(Probe::Exec(_))
    ));
    let graph = crate::deps::Graph::of(&toml).unwrap();
    let order: Vec<&str> = graph
        .start_order()
        .into_iter()
        .map(|i| graph.name(i))
        .collect();
    assert_eq!(order, ["db", "migrate", "web", "cleanup"]);
    #[cfg(feature = "yaml")]
    {
        let yaml = load(&dir.join("stack.yaml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(toml, yaml);
    }
}
