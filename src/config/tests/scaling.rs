//! The scaling keys (issue 8): each value form, each rule, and where each
//! problem is reported.

use super::*;

/// A config with service `a` whose table ends with `body`.
fn svc(body: &str) -> String {
    format!("[services.a]\ncommand = [\"x\"]\n{body}\n")
}

fn scale_ok(body: &str) -> Scaling {
    service(&toml_ok(&svc(body)), "a").scaling.clone()
}

/// The single problem of service `a` with `body`, at `key` (below
/// `services.a.`), mentioning `needle`; returns its `(line, column)`.
fn scale_problem(body: &str, key: &str, needle: &str) -> (usize, usize) {
    let p = one_problem(&svc(body), &format!("services.a.{key}"), needle);
    (p.line.unwrap_or(0), p.column.unwrap_or(0))
}

/// `(key, line, column)` of each problem.
fn at(problems: &[Problem]) -> Vec<(&str, usize, usize)> {
    problems
        .iter()
        .map(|p| (p.key.as_str(), p.line.unwrap_or(0), p.column.unwrap_or(0)))
        .collect()
}

fn range(min: u32, max: u32) -> Option<InstanceRange> {
    Some(InstanceRange { min, max })
}

fn tcp(name: &str, addr: &str) -> ListenSocket {
    ListenSocket {
        name: name.to_string(),
        addr: ListenAddr::Tcp(addr.parse().unwrap()),
    }
}

fn unix(name: &str, path: &str) -> ListenSocket {
    ListenSocket {
        name: name.to_string(),
        addr: ListenAddr::Unix(PathBuf::from(path)),
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// An autoscale table with the defaults and `rules`.
fn autoscale(rules: Vec<Rule>) -> Autoscale {
    Autoscale {
        interval: secs(10),
        window: secs(30),
        cooldown: secs(60),
        step: 1,
        rules,
        policy: None,
    }
}

fn rule(metric: Metric, up: Option<Threshold>, down: Option<Threshold>) -> Rule {
    Rule {
        metric,
        up,
        down,
        hold: secs(30),
    }
}

#[test]
fn one_plain_process_by_default() {
    let c = toml_ok(&svc(""));
    assert_eq!(service(&c, "a").scaling, Scaling::default());
    assert_eq!(service(&c, "a").scaling.instances, None);
    assert!(!service(&c, "a").scaling.critical);
    assert!(c.hooks.is_empty());
}

#[test]
fn every_scaling_key() {
    let c = toml_ok(
        r#"
[services.web]
command = ["web"]
instances = "2-4"
port_base = 8000
listen = ["tcp:0.0.0.0:8080", "unix:/run/app.sock", "http=tcp:[::1]:9000", "sock=unix:./run/a=b.sock"]
start_limit = { burst = 5, interval = "10s" }
critical = true
limits = { memory_max = "1G" }
watch = { paths = ["/", "/etc"], ignore = ["*.log", "tmp/*"], debounce = "1s" }

[services.web.autoscale]
interval = "5s"
window = "20s"
cooldown = "2m"
step = 2
cpu = { up = 0.8, down = "20%", for = "1m" }
memory = { up = "400M", down = 104857600 }
cpu_pressure = { up = 20 }
memory_pressure = { down = "5%" }
io_pressure = { up = 50.5, down = 10 }

[services.batch]
command = ["batch"]
instances = "3-6"
autoscale = { max = 6, policy = { exec = "/usr/bin/policy --json", timeout = "2s" } }

[[hooks]]
events = ["exited", "unhealthy", "failed", "scaled"]
services = ["web"]
exec = "/usr/bin/notify --all"

[[hooks]]
events = ["reloaded"]
exec = ["/bin/cat"]
timeout = "1m"
"#,
    );
    let web = &service(&c, "web").scaling;
    let mb = |n: u64| Threshold::Bytes(n << 20);
    assert_eq!(
        *web,
        Scaling {
            instances: range(2, 4),
            port_base: Some(8000),
            listen: vec![
                tcp("web", "0.0.0.0:8080"),
                unix("web", "/run/app.sock"),
                tcp("http", "[::1]:9000"),
                unix("sock", "/base/run/a=b.sock"),
            ],
            autoscale: Some(Autoscale {
                interval: secs(5),
                window: secs(20),
                cooldown: secs(120),
                step: 2,
                rules: vec![
                    Rule {
                        hold: secs(60),
                        ..rule(
                            Metric::Cpu,
                            Some(Threshold::Ratio(0.8)),
                            Some(Threshold::Ratio(0.2)),
                        )
                    },
                    rule(Metric::Memory, Some(mb(400)), Some(mb(100))),
                    rule(Metric::CpuPressure, Some(Threshold::Ratio(20.0)), None),
                    rule(Metric::MemoryPressure, None, Some(Threshold::Ratio(5.0))),
                    rule(
                        Metric::IoPressure,
                        Some(Threshold::Ratio(50.5)),
                        Some(Threshold::Ratio(10.0)),
                    ),
                ],
                policy: None,
            }),
            start_limit: Some(StartLimit {
                burst: 5,
                interval: secs(10),
            }),
            critical: true,
            watch: Some(Watch {
                paths: vec![PathBuf::from("/"), PathBuf::from("/etc")],
                ignore: strings(&["*.log", "tmp/*"]),
                debounce: secs(1),
            }),
        }
    );

    // Both ranges given, and they agree.
    let batch = &service(&c, "batch").scaling;
    assert_eq!(batch.instances, range(3, 6));
    assert_eq!(
        batch.autoscale,
        Some(Autoscale {
            policy: Some(PolicyExec {
                command: strings(&["/usr/bin/policy", "--json"]),
                timeout: secs(2),
            }),
            ..autoscale(Vec::new())
        })
    );

    assert_eq!(
        c.hooks,
        [
            Hook {
                events: vec![
                    HookEvent::Exited,
                    HookEvent::Unhealthy,
                    HookEvent::Failed,
                    HookEvent::Scaled
                ],
                services: strings(&["web"]),
                command: strings(&["/usr/bin/notify", "--all"]),
                timeout: Hook::DEFAULT_TIMEOUT,
            },
            Hook {
                events: vec![HookEvent::Reloaded],
                services: Vec::new(),
                command: strings(&["/bin/cat"]),
                timeout: secs(60),
            },
        ]
    );
}

#[test]
fn instance_counts_and_ranges() {
    assert_eq!(scale_ok("instances = 3").instances, range(3, 3));
    // One instance is still an instance: web@0.
    assert_eq!(scale_ok("instances = 1").instances, range(1, 1));
    assert_eq!(scale_ok("instances = \"2-4\"").instances, range(2, 4));
    assert_eq!(scale_ok("instances = \"0-2\"").instances, range(0, 2));
    assert_eq!(scale_ok("instances = \"5\"").instances, range(5, 5));
    assert_eq!(
        InstanceRange::parse(" 2 - 4 "),
        Ok(InstanceRange { min: 2, max: 4 })
    );
    assert_eq!(InstanceRange { min: 2, max: 4 }.to_string(), "2-4");
    assert_eq!(InstanceRange { min: 3, max: 3 }.to_string(), "3");

    let pos = scale_problem("instances = 0", "instances", "`0` is not an instance count");
    assert_eq!(pos, (3, 13));
    scale_problem("instances = 1025", "instances", "at most 1024");
    scale_problem(
        "instances = -2",
        "instances",
        "give a number (`3`) or a range (`2-4`)",
    );
    scale_problem(
        "instances = \"many\"",
        "instances",
        "`many` is not an instance count",
    );
    scale_problem(
        "instances = \"4-2\"",
        "instances",
        "the minimum (4) is above the maximum (2)",
    );
    scale_problem(
        "instances = true",
        "instances",
        "expected an instance count like 3 or a range like \"2-4\", found `true`",
    );
}

#[test]
fn a_oneshot_has_no_instances() {
    let pos = scale_problem(
        "type = \"oneshot\"\ninstances = 2",
        "instances",
        "`instances` runs copies of a long-running service side by side (a@0, a@1, ...); \
         a one-shot task runs to completion",
    );
    assert_eq!(pos, (4, 1));
    let p = toml_err(&svc(
        "type = \"oneshot\"\nautoscale = { max = 3, cpu = { up = 0.5 } }",
    ));
    assert_eq!(at(&p), [("services.a.autoscale", 4, 1)], "{p:#?}");
    assert!(p[0].message.contains("remove `autoscale`"), "{p:#?}");
    // Not when `type` itself was refused.
    scale_problem(
        "type = \"once\"\ninstances = 2",
        "type",
        "unknown value \"once\"",
    );
}

#[test]
fn port_base() {
    let s = scale_ok("port_base = 8000");
    // Without instances: PORT = port_base for the one process.
    assert_eq!((s.port_base, s.instances), (Some(8000), None));
    let s = scale_ok("instances = 4\nport_base = 65532");
    assert_eq!(s.port_base, Some(65532));
    let pos = scale_problem(
        "instances = \"2-5\"\nport_base = 65532",
        "port_base",
        "5 instances from port 65532 need ports up to 65536, past 65535; choose a port_base \
         of at most 65531",
    );
    assert_eq!(pos, (4, 13));
    // The autoscale range counts.
    scale_problem(
        "port_base = 65535\nautoscale = { max = 2, cpu = { up = 0.9 } }",
        "port_base",
        "2 instances from port 65535",
    );
    scale_problem(
        "port_base = 0",
        "port_base",
        "0 is out of range; use a whole number from 1 to 65535",
    );
    scale_problem("port_base = 70000", "port_base", "70000 is out of range");
    scale_problem(
        "port_base = \"8000\"",
        "port_base",
        "found the string \"8000\"",
    );
}

#[test]
fn listen_addresses() {
    let parse = |text: &str| ListenSocket::parse(text, "svc");
    assert_eq!(parse("tcp:127.0.0.1:80"), Ok(tcp("svc", "127.0.0.1:80")));
    assert_eq!(parse("tcp:localhost:80"), Ok(tcp("svc", "127.0.0.1:80")));
    assert_eq!(parse("tcp:[::]:443"), Ok(tcp("svc", "[::]:443")));
    assert_eq!(
        parse("unix:/run/x=y.sock"),
        Ok(unix("svc", "/run/x=y.sock"))
    );
    assert_eq!(parse("unix:rel.sock"), Ok(unix("svc", "rel.sock")));
    assert_eq!(
        parse("web.v2=tcp:0.0.0.0:80"),
        Ok(tcp("web.v2", "0.0.0.0:80"))
    );
    for (bad, needle) in [
        ("0.0.0.0:8080", "has no kind; write \"tcp:0.0.0.0:8080\""),
        ("udp:0.0.0.0:53", "is not a socket address"),
        ("tcp:0.0.0.0", "no port after the address"),
        ("tcp:[::1]", "no port after the address"),
        ("tcp:0.0.0.0:0", "port 0 would pick a random port"),
        ("tcp:0.0.0.0:99999", "\"99999\" is not a port number"),
        ("tcp::8080", "no address before the port"),
        ("tcp:::1:8080", "an IPv6 address needs brackets"),
        ("tcp:example.com:80", "host names are not looked up"),
        ("unix:", "has no path"),
        ("unix:@abstract", "abstract sockets"),
        ("=tcp:0.0.0.0:80", "the name before '=' is empty"),
        ("a:b=tcp:0.0.0.0:80", "':' cannot be part of a socket name"),
        ("a b=tcp:0.0.0.0:80", "' ' cannot be part of a socket name"),
    ] {
        let err = parse(bad).unwrap_err();
        assert!(err.contains(needle), "{bad}: {err}");
    }
    assert!(check_fd_name(&"n".repeat(255)).is_ok());
    assert!(check_fd_name(&"n".repeat(256))
        .unwrap_err()
        .contains("LISTEN_FDNAMES allows 255"));
    // The name before '=' defaults to the service's; a string is one entry.
    assert_eq!(
        scale_ok("listen = \"tcp:0.0.0.0:80\"").listen,
        [tcp("a", "0.0.0.0:80")]
    );
    assert!(scale_ok("listen = []").listen.is_empty());
}

#[test]
fn listen_mistakes_are_reported_at_their_item() {
    let p = toml_err(&svc(
        "listen = [\"tcp:0.0.0.0:80\", \"tcp:0.0.0.0\", \"unix:x.sock\", \"dns:53\"]",
    ));
    assert_eq!(
        at(&p),
        [
            ("services.a.listen[1]", 3, 29),
            ("services.a.listen[3]", 3, 59),
        ],
        "{p:#?}"
    );
    assert!(
        p[0].message
            .starts_with("\"tcp:0.0.0.0\": no port after the address; use \"tcp:ADDRESS:PORT\""),
        "{p:#?}"
    );
    let long = "s".repeat(120);
    scale_problem(
        &format!("listen = [\"unix:/{long}\"]"),
        "listen[0]",
        "limited to 107",
    );
    // A relative path counts whole, once resolved.
    let rel = "s".repeat(103);
    scale_problem(
        &format!("listen = [\"unix:{rel}\"]"),
        "listen[0]",
        "109 bytes long",
    );
    scale_problem(
        "listen = [1]",
        "listen[0]",
        "expected a string, found the integer 1",
    );
}

#[test]
fn at_most_thirteen_sockets() {
    let list = |n: usize| -> String {
        let items: Vec<String> = (0..n)
            .map(|i| format!("\"tcp:127.0.0.1:{}\"", 8000 + i))
            .collect();
        format!("listen = [{}]", items.join(", "))
    };
    assert_eq!(ListenSocket::MAX, 13);
    assert_eq!(scale_ok(&list(13)).listen.len(), 13);
    let p = toml_err(&svc(&list(14)));
    assert_eq!(at(&p), [("services.a.listen[13]", 3, 297)], "{p:#?}");
    assert!(
        p[0].message.starts_with(
            "14 sockets are too many: a service gets at most 13 (fds 3 to 15 of its processes)"
        ),
        "{p:#?}"
    );
}

#[test]
fn listen_and_ready_fd_are_refused_together() {
    let pos = scale_problem(
        "ready = \"fd\"\nlisten = [\"tcp:0.0.0.0:80\"]",
        "listen",
        "`listen` passes its sockets as fds 3 and up (LISTEN_FDS), and ready = \"fd\" needs \
         fd 3 for its pipe; the two cannot be combined yet",
    );
    assert_eq!(pos, (4, 1));
    let s = scale_ok("ready = \"notify\"\nlisten = [\"tcp:0.0.0.0:80\"]");
    assert_eq!(s.listen.len(), 1);
}

#[test]
fn an_address_is_opened_once() {
    let p = toml_err(
        r#"[http]
listen = "127.0.0.1:9100"
[services.a]
command = ["x"]
listen = ["tcp:0.0.0.0:80", "tcp:0.0.0.0:80", "tcp:127.0.0.1:80", "tcp:[::1]:80"]
[services.b]
command = ["x"]
listen = ["unix:/run/a.sock", "tcp:[::]:80", "tcp:127.0.0.1:9100", "tcp:10.0.0.1:81"]
[services.c]
command = ["x"]
listen = ["unix:/run/a.sock", "tcp:10.0.0.1:81"]
"#,
    );
    assert_eq!(
        at(&p),
        [
            ("services.a.listen[1]", 5, 29),
            ("services.a.listen[2]", 5, 47),
            ("services.b.listen[1]", 8, 31),
            ("services.b.listen[2]", 8, 46),
            ("services.c.listen[0]", 11, 11),
            ("services.c.listen[1]", 11, 31),
        ],
        "{p:#?}"
    );
    let m: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        m[0],
        "tcp:0.0.0.0:80 is listed twice (also listen[0]); remove one"
    );
    assert!(
        m[1].starts_with("tcp:127.0.0.1:80 overlaps tcp:0.0.0.0:80 (listen[0])"),
        "{m:#?}"
    );
    assert!(
        m[2].starts_with(
            "tcp:[::]:80 clashes with tcp:[::1]:80 of service \"a\" (services.a.listen[3]); \
             an address can be opened once"
        ),
        "{m:#?}"
    );
    assert!(
        m[3].starts_with("tcp:127.0.0.1:9100 clashes with sentinel's own [http] listen"),
        "{m:#?}"
    );
    assert!(
        m[4].starts_with("unix:/run/a.sock clashes with unix:/run/a.sock of service \"b\" (services.b.listen[0])"),
        "{m:#?}"
    );
    assert!(m[5].contains("(services.b.listen[3])"), "{m:#?}");
}

#[test]
fn autoscale_ranges() {
    let cpu = "cpu = { up = 0.9 }";
    let s = scale_ok(&format!("instances = \"1-3\"\nautoscale = {{ {cpu} }}"));
    assert_eq!(s.instances, range(1, 3));
    let s = scale_ok(&format!("autoscale = {{ min = 2, max = 5, {cpu} }}"));
    assert_eq!(s.instances, range(2, 5));
    // min defaults to 1.
    let s = scale_ok(&format!("autoscale = {{ max = 4, {cpu} }}"));
    assert_eq!(s.instances, range(1, 4));
    let s = scale_ok(&format!(
        "instances = \"0-4\"\nautoscale = {{ min = 0, max = 4, {cpu} }}"
    ));
    assert_eq!(s.instances, range(0, 4));
    assert_eq!(
        s.autoscale,
        Some(autoscale(vec![rule(
            Metric::Cpu,
            Some(Threshold::Ratio(0.9)),
            None
        )]))
    );

    let pos = scale_problem(
        &format!("instances = \"2-4\"\nautoscale = {{ max = 6, {cpu} }}"),
        "autoscale.max",
        "max = 6 disagrees with instances = \"2-4\" (whose max is 4); give the range once, \
         in `instances` or here",
    );
    assert_eq!(pos, (4, 21));
    scale_problem(
        &format!("instances = \"2-4\"\nautoscale = {{ min = 1, {cpu} }}"),
        "autoscale.min",
        "min = 1 disagrees with instances = \"2-4\" (whose min is 2)",
    );
    let pos = scale_problem(
        &format!("autoscale = {{ {cpu} }}"),
        "autoscale",
        "autoscale needs a range to scale within; give instances = \"1-4\", or max = 4 here",
    );
    assert_eq!(pos, (3, 1));
    scale_problem(
        &format!("autoscale = {{ min = 2, {cpu} }}"),
        "autoscale",
        "needs a range",
    );
    let pos = scale_problem(
        &format!("instances = 3\nautoscale = {{ {cpu} }}"),
        "instances",
        "instances = 3 is a fixed count, and autoscale needs room to move; give a range like \
         instances = \"3-6\"",
    );
    assert_eq!(pos, (3, 13));
    scale_problem(
        &format!("autoscale = {{ max = 1, {cpu} }}"),
        "autoscale.max",
        "min and max are both 1, which leaves autoscale nothing to do",
    );
    scale_problem(
        &format!("autoscale = {{ min = 5, max = 3, {cpu} }}"),
        "autoscale.min",
        "min (5) is above max (3)",
    );
    scale_problem(
        &format!("autoscale = {{ max = 2000, {cpu} }}"),
        "autoscale.max",
        "max = 2000 is out of range; scale up to 1 to 1024 instances",
    );
    scale_problem(
        &format!("autoscale = {{ max = 0, {cpu} }}"),
        "autoscale.max",
        "max = 0 is out of range",
    );
    scale_problem(
        &format!("autoscale = {{ max = -1, {cpu} }}"),
        "autoscale.max",
        "expected a whole number, 0 or more",
    );
    // A refused `instances` is not also a missing range.
    scale_problem(
        &format!("instances = \"x\"\nautoscale = {{ {cpu} }}"),
        "instances",
        "`x` is not an instance count",
    );
}

#[test]
fn autoscale_timing() {
    let base = "instances = \"1-4\"\n[services.a.autoscale]\ncpu = { up = 0.9 }\n";
    let a = |more: &str| scale_ok(&format!("{base}{more}")).autoscale.unwrap();
    assert_eq!(a("").interval, Autoscale::DEFAULT_INTERVAL);
    assert_eq!(a("window = \"10s\"").window, secs(10));
    assert_eq!(a("cooldown = 0").cooldown, Duration::ZERO);
    assert_eq!(
        a("interval = \"100ms\"\nwindow = \"1s\"").interval,
        Duration::from_millis(100)
    );
    let problem = |more: &str, key: &str, needle: &str| {
        scale_problem(
            &format!("{base}{more}"),
            &format!("autoscale.{key}"),
            needle,
        )
    };
    let pos = problem(
        "interval = \"5s\"\nwindow = \"2s\"",
        "window",
        "window (2s) is shorter than interval (5s), so it would hold no sample; raise window \
         or lower interval",
    );
    assert_eq!(pos, (7, 10));
    problem(
        "interval = \"1m\"",
        "interval",
        "interval (60s) is longer than the default window (30s), so a window would hold no \
         sample; lower interval, or set a window of at least 60s",
    );
    problem(
        "interval = \"50ms\"",
        "interval",
        "50ms is too often; sample at most every 100ms",
    );
    problem("step = 0", "step", "0 would never change the count");
    problem(
        "cooldown = \"soon\"",
        "cooldown",
        "invalid duration \"soon\"",
    );
    problem(
        "io_pressure = { up = 5, for = \"x\" }",
        "io_pressure.for",
        "invalid duration \"x\"",
    );
    problem(
        "windw = \"1m\"",
        "windw",
        "unknown key; did you mean \"window\"?",
    );
}

#[test]
fn cpu_thresholds() {
    let cpu = |t: &str| {
        let s = scale_ok(&format!("autoscale = {{ max = 3, cpu = {{ up = {t} }} }}"));
        s.autoscale.unwrap().rules[0].up.unwrap()
    };
    assert_eq!(cpu("0.75"), Threshold::Ratio(0.75));
    assert_eq!(cpu("1"), Threshold::Ratio(1.0));
    assert_eq!(cpu("\"80%\""), Threshold::Ratio(0.8));
    assert_eq!(cpu("\" 80 % \""), Threshold::Ratio(0.8));
    // Without a quota, of one CPU: more than one is a percentage above 100.
    assert_eq!(cpu("\"150%\""), Threshold::Ratio(1.5));
    let problem = |t: &str, more: &str, needle: &str| {
        scale_problem(
            &format!("{more}autoscale = {{ max = 3, cpu = {{ up = {t} }} }}"),
            "autoscale.cpu.up",
            needle,
        )
    };
    let pos = problem(
        "80",
        "",
        "80 is out of range: a CPU share is above 0 and at most 1 (of one CPU; \"150%\" is one \
         and a half); write 0.8 or \"80%\"",
    );
    assert_eq!(pos, (3, 37));
    problem(
        "1.5",
        "limits = { cpu_max = \"2\" }\n",
        "(of the cpu_max quota); write 0.8",
    );
    problem(
        "\"150%\"",
        "limits = { cpu_max = \"2\" }\n",
        "the cpu_max quota caps an instance at 100%",
    );
    problem("0", "", "0 is out of range");
    problem("\"0%\"", "", "a CPU share is above 0%");
    problem("\"high\"", "", "\"high\" is not a CPU share");
    problem("\"400M\"", "", "\"400M\" is not a CPU share");
    problem(
        "true",
        "",
        "expected a number like 0.8, a percentage like \"80%\"",
    );
}

#[test]
fn memory_thresholds() {
    let memory = |t: &str, limits: &str| {
        let s = scale_ok(&format!(
            "{limits}autoscale = {{ max = 3, memory = {{ down = {t} }} }}"
        ));
        s.autoscale.unwrap().rules[0].down.unwrap()
    };
    let with_max = "limits = { memory_max = \"1G\" }\n";
    assert_eq!(memory("\"400M\"", ""), Threshold::Bytes(400 << 20));
    assert_eq!(memory("2097152", ""), Threshold::Bytes(2 << 20));
    assert_eq!(memory("\"80%\"", with_max), Threshold::Ratio(0.8));
    assert_eq!(memory("0.5", with_max), Threshold::Ratio(0.5));
    let problem = |t: &str, limits: &str, needle: &str| {
        scale_problem(
            &format!("{limits}autoscale = {{ max = 3, memory = {{ down = {t} }} }}"),
            "autoscale.memory.down",
            needle,
        )
    };
    let pos = problem(
        "\"80%\"",
        "",
        "\"80%\" is a share of memory_max, and this service has none; add limits = { \
         memory_max = \"512M\" }, or give a size like \"400M\"",
    );
    assert_eq!(pos, (3, 42));
    problem(
        "0.8",
        "",
        "0.8 is a share of memory_max, and this service has none",
    );
    problem(
        "\"120%\"",
        with_max,
        "\"120%\" is out of range: a share of memory_max is above 0 and at most 1",
    );
    problem(
        "80",
        "",
        "80 is less than a megabyte; write a size like \"400M\", or a share of memory_max",
    );
    problem("\"512K\"", "", "\"512K\" is less than a megabyte");
    problem(
        "\"lots\"",
        "",
        "\"lots\" is not a memory bound; write a size like \"400M\"",
    );
    // A refused memory_max does not also make the share wrong.
    scale_problem(
        "limits = { memory_max = \"1Q\" }\nautoscale = { max = 3, memory = { up = \"80%\" } }",
        "limits.memory_max",
        "unknown unit \"Q\"",
    );
}

#[test]
fn pressure_thresholds() {
    let s = scale_ok(
        "autoscale = { max = 3, cpu_pressure = { up = 20 }, memory_pressure = { up = \"10%\" }, \
         io_pressure = { up = 99.5, down = 0.5 } }",
    );
    let rules = s.autoscale.unwrap().rules;
    assert_eq!(rules[0].up, Some(Threshold::Ratio(20.0)));
    assert_eq!(rules[1].up, Some(Threshold::Ratio(10.0)));
    assert_eq!(rules[2].down, Some(Threshold::Ratio(0.5)));
    for (key, t) in [
        ("cpu_pressure", "0"),
        ("memory_pressure", "101"),
        ("io_pressure", "\"x\""),
    ] {
        scale_problem(
            &format!("autoscale = {{ max = 3, {key} = {{ up = {t} }} }}"),
            &format!("autoscale.{key}.up"),
            &format!(
                "{t} is not a pressure: give the percentage of time stalled (PSI some avg10), \
                 above 0 and at most 100, like {key} = {{ up = 20, down = 5 }}"
            ),
        );
    }
}

#[test]
fn rules_need_a_bound_and_down_below_up() {
    let pos = scale_problem(
        "autoscale = { max = 3, cpu = { for = \"1m\" } }",
        "autoscale.cpu",
        "a rule needs `up`, `down` or both, like cpu = { up = 0.8, down = 0.3 }",
    );
    assert_eq!(pos, (3, 24));
    // A misspelled bound is reported once, as a misspelling.
    scale_problem(
        "autoscale = { max = 3, cpu = { upp = 0.5 } }",
        "autoscale.cpu.upp",
        "did you mean \"up\"?",
    );
    let pos = scale_problem(
        "autoscale = { max = 3, cpu = { up = 0.5, down = \"50%\" } }",
        "autoscale.cpu.down",
        "down (\"50%\") must be below up (0.5), or the service would grow and shrink at once",
    );
    assert_eq!(pos, (3, 49));
    scale_problem(
        "autoscale = { max = 3, memory = { up = \"100M\", down = \"200M\" } }",
        "autoscale.memory.down",
        "down (\"200M\") must be below up (\"100M\")",
    );
    scale_problem(
        "limits = { memory_max = \"1G\" }\n\
         autoscale = { max = 3, memory = { up = \"500M\", down = \"20%\" } }",
        "autoscale.memory.down",
        "up (\"500M\") and down (\"20%\") must be in the same unit",
    );
    scale_problem(
        "autoscale = { max = 3, io_pressure = { up = 10, down = 10 } }",
        "autoscale.io_pressure.down",
        "down (10) must be below up (10)",
    );
}

#[test]
fn rules_or_a_policy() {
    let pos = scale_problem(
        "autoscale = { max = 3 }",
        "autoscale",
        "autoscale needs rules or a policy to decide by; add a rule like cpu = { up = 0.8, \
         down = 0.3 }",
    );
    assert_eq!(pos, (3, 1));
    // Not when the only rule was refused: that is the mistake.
    scale_problem(
        "autoscale = { max = 3, cpus = { up = 0.5 } }",
        "autoscale.cpus",
        "did you mean \"cpu\"?",
    );
    scale_problem(
        "autoscale = { max = 3, cpu = \"80%\" }",
        "autoscale.cpu",
        "expected a table",
    );
    let pos = scale_problem(
        "autoscale = { max = 3, cpu = { up = 0.5 }, io_pressure = { up = 9 }, policy = { exec = [\"p\"] } }",
        "autoscale.policy",
        "a policy decides alone, and this table has rules too (cpu, io_pressure); remove the \
         rules or the policy",
    );
    assert_eq!(pos, (3, 70));
}

#[test]
fn policies() {
    let policy = |p: &str| {
        scale_ok(&format!("autoscale = {{ max = 3, policy = {p} }}"))
            .autoscale
            .unwrap()
            .policy
            .unwrap()
    };
    assert_eq!(
        policy("{ exec = [\"/p\", \"-v\"] }"),
        PolicyExec {
            command: strings(&["/p", "-v"]),
            timeout: Autoscale::DEFAULT_POLICY_TIMEOUT,
        }
    );
    assert_eq!(
        policy("{ exec = \"/p 'a b'\", timeout = \"10s\" }").command,
        ["/p", "a b"]
    );
    let problem = |p: &str, key: &str, needle: &str| {
        scale_problem(
            &format!("autoscale = {{ max = 3, policy = {p} }}"),
            &format!("autoscale.{key}"),
            needle,
        )
    };
    problem(
        "{ exec = [] }",
        "policy.exec",
        "empty command; give the program",
    );
    problem(
        "{ exec = [\"\"] }",
        "policy.exec",
        "the program (first word) is empty",
    );
    problem(
        "{ timeout = \"1s\" }",
        "policy",
        "missing key `exec`; give the policy's command, e.g. exec = [\"/usr/local/bin/policy\"]",
    );
    problem(
        "{ exec = 5 }",
        "policy.exec",
        "expected an array of strings",
    );
    problem(
        "{ exec = [\"p\"], timeout = 0 }",
        "policy.timeout",
        "a policy cannot answer in 0s",
    );
    let pos = problem(
        "{ exec = [\"p\"], timeout = \"11s\" }",
        "policy.timeout",
        "timeout (11s) is longer than interval (10s), so evaluations would overlap",
    );
    assert_eq!(pos, (3, 59));
    scale_problem(
        "autoscale = { max = 3, interval = \"2s\", window = \"2s\", policy = { exec = [\"p\"] } }",
        "autoscale.interval",
        "interval (2s) is shorter than the policy's default timeout (5s)",
    );
    problem("{ exec = [\"p\"], cmd = 1 }", "policy.cmd", "unknown key");
}

#[test]
fn start_limit_and_critical() {
    assert_eq!(
        scale_ok("start_limit = { burst = 1, interval = \"1m\" }").start_limit,
        Some(StartLimit {
            burst: 1,
            interval: secs(60)
        })
    );
    assert!(scale_ok("critical = true").critical);
    assert!(!scale_ok("critical = false").critical);
    let pos = scale_problem(
        "start_limit = { burst = 0, interval = \"10s\" }",
        "start_limit.burst",
        "0 would refuse every start; allow 1 or more starts per interval",
    );
    assert_eq!(pos, (3, 25));
    scale_problem(
        "start_limit = { burst = 3, interval = 0 }",
        "start_limit.interval",
        "0s counts no starts; give a window like \"10s\"",
    );
    scale_problem(
        "start_limit = { burst = 3 }",
        "start_limit",
        "missing key `interval`",
    );
    scale_problem(
        "start_limit = { burst = -3, interval = 1 }",
        "start_limit.burst",
        "expected a whole number, 0 or more",
    );
    scale_problem("start_limit = 5", "start_limit", "expected a table");
    scale_problem("critical = \"yes\"", "critical", "expected true or false");
}

#[test]
fn watch_paths_resolve_and_must_exist() {
    let dir = TempDir::new("watch");
    std::fs::create_dir_all(dir.0.join("app/src")).unwrap();
    std::fs::create_dir_all(dir.0.join("conf")).unwrap();
    let config = |body: &str| format!("[services.a]\ncommand = [\"x\"]\n{body}\n");
    // Against the workdir when there is one, else the config's folder.
    let c = from_str(
        &config("workdir = \"app\"\nwatch = { paths = [\"./src\", \"../conf\", \"/\"] }"),
        false,
        &dir.0,
    )
    .unwrap_or_else(|p| panic!("{p:#?}"));
    let w = service(&c, "a").scaling.watch.clone().unwrap();
    assert_eq!(
        w.paths,
        [
            dir.0.join("app/src"),
            dir.0.join("app/../conf"),
            PathBuf::from("/")
        ]
    );
    assert_eq!(w.debounce, Watch::DEFAULT_DEBOUNCE);
    assert!(w.ignore.is_empty());
    let c = from_str(&config("watch = { paths = [\"conf\"] }"), false, &dir.0).unwrap();
    assert_eq!(
        service(&c, "a").scaling.watch.as_ref().unwrap().paths,
        [dir.0.join("conf")]
    );

    let p = from_str(
        &config("workdir = \"app\"\nwatch = { paths = [\"src\", \"lib\"] }"),
        false,
        &dir.0,
    )
    .unwrap_err();
    assert_eq!(at(&p), [("services.a.watch.paths[1]", 4, 27)], "{p:#?}");
    assert_eq!(
        p[0].message,
        format!(
            "\"{}\": No such file or directory; create it or fix the path (a relative path is \
             against the service's workdir)",
            dir.0.join("app/lib").display()
        )
    );
    // A missing workdir is reported once, not again for each path.
    let p = from_str(
        &config("workdir = \"nope\"\nwatch = { paths = [\"src\", \"/nonexistent/x\"] }"),
        false,
        &dir.0,
    )
    .unwrap_err();
    assert_eq!(
        at(&p),
        [
            ("services.a.workdir", 3, 11),
            ("services.a.watch.paths[1]", 4, 27),
        ],
        "{p:#?}"
    );
    assert!(p[1]
        .message
        .contains("(a relative path is against the service's workdir)"));
    let p = from_str(
        &config("workdir = 5\nwatch = { paths = [\"src\"] }"),
        false,
        &dir.0,
    )
    .unwrap_err();
    assert_eq!(at(&p), [("services.a.workdir", 3, 11)], "{p:#?}");

    let p = from_str(
        &config(
            "watch = { paths = [\"conf\", \"\"], ignore = [\"*.log\", \"\"], debounce = \"1x\" }",
        ),
        false,
        &dir.0,
    )
    .unwrap_err();
    assert_eq!(
        at(&p),
        [
            ("services.a.watch.paths[1]", 3, 28),
            ("services.a.watch.ignore[1]", 3, 52),
            ("services.a.watch.debounce", 3, 68),
        ],
        "{p:#?}"
    );
    assert_eq!(p[0].message, "empty path; give a file or folder");
    assert!(p[1].message.starts_with("an empty pattern matches nothing"));
    scale_problem(
        "watch = { paths = [] }",
        "watch.paths",
        "nothing to watch; give files or folders, like paths = [\"./src\"]",
    );
    scale_problem(
        "watch = { ignore = [\"*.log\"] }",
        "watch",
        "missing key `paths`; give the files or folders to watch",
    );
    // A refused list is not also missing.
    scale_problem(
        "watch = { paths = [1] }",
        "watch.paths[0]",
        "expected a string",
    );
    scale_problem(
        "watch = { path = [\"/\"] }",
        "watch.path",
        "did you mean \"paths\"?",
    );
    scale_problem(
        "watch = { paths = [\"/\"], debounce = \"x\" }",
        "watch.debounce",
        "invalid duration",
    );
}

#[test]
fn hooks() {
    let c = toml_ok("[services.a]\ncommand = [\"x\"]\n[[hooks]]\nevents = [\"started\", \"ready\"]\nexec = [\"/bin/cat\"]\n");
    assert_eq!(
        c.hooks,
        [Hook {
            events: vec![HookEvent::Started, HookEvent::Ready],
            services: Vec::new(),
            command: strings(&["/bin/cat"]),
            timeout: secs(10),
        }]
    );
    let names: Vec<&str> = HookEvent::ALL.iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        [
            "started",
            "ready",
            "exited",
            "unhealthy",
            "failed",
            "scaled",
            "reloaded"
        ]
    );

    let p = toml_err(
        r#"[services.web]
command = ["x"]
[services.db]
command = ["x"]

[[hooks]]
events = ["exit", "failed", "failed", "boom"]
services = ["wbe", "nope", "db", "db"]
exec = []

[[hooks]]
events = []
exec = ["", "x"]
timeout = 0
"#,
    );
    assert_eq!(
        at(&p),
        [
            ("hooks[0].events[0]", 7, 11),
            ("hooks[0].events[2]", 7, 29),
            ("hooks[0].events[3]", 7, 39),
            ("hooks[0].services[0]", 8, 13),
            ("hooks[0].services[1]", 8, 20),
            ("hooks[0].services[3]", 8, 34),
            ("hooks[0].exec", 9, 8),
            ("hooks[1].events", 12, 10),
            ("hooks[1].exec", 13, 8),
            ("hooks[1].timeout", 14, 11),
        ],
        "{p:#?}"
    );
    let m: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        m,
        [
            "unknown event \"exit\"; did you mean \"exited\"?",
            "\"failed\" is listed twice; remove one",
            "unknown event \"boom\"; expected one of: started, ready, exited, unhealthy, \
             failed, scaled, reloaded",
            "unknown service \"wbe\"; did you mean \"web\"?",
            "unknown service \"nope\"; the services are: web, db",
            "\"db\" is listed twice; remove one",
            "empty command; give the program and its arguments, e.g. [\"/usr/local/bin/notify\"]",
            "no events; give some of: started, ready, exited, unhealthy, failed, scaled, reloaded",
            "the program (first word) is empty; give its path or name",
            "a hook cannot finish in 0s; give a duration like \"10s\"",
        ]
    );
}

#[test]
fn hooks_as_written_wrong() {
    let base = "[services.a]\ncommand = [\"x\"]\n";
    let p = toml_err(&format!(
        "{base}[hooks]\nevents = [\"ready\"]\nexec = \"x\"\n"
    ));
    assert_eq!(at(&p), [("hooks", 3, 1)], "{p:#?}");
    assert_eq!(
        p[0].message,
        "expected a list of hooks (in TOML, one [[hooks]] table each: two brackets), found a table"
    );
    let p = toml_err(&format!(
        "{base}[[hooks]]\nevents = [\"ready\"]\nexce = \"x\"\n"
    ));
    // The hooks are cut out whole (an item of a list), so this is all.
    assert_eq!(at(&p), [("hooks[0].exce", 5, 1)], "{p:#?}");
    let p = toml_err(&format!(
        "{base}[[hooks]]\nevents = \"ready\"\nexec = \"x\"\n"
    ));
    assert_eq!(at(&p), [("hooks[0].events", 4, 10)], "{p:#?}");
    // A service refused as a whole is not also unknown to a hook.
    let p = toml_err(&format!(
        "{base}[services]\nb = 5\n[[hooks]]\nevents = [\"ready\"]\nservices = [\"b\"]\nexec = \"x\"\n"
    ));
    assert_eq!(at(&p), [("services.b", 4, 5)], "{p:#?}");
    let p = toml_err("[services.a]\ncommand = [\"x\"]\n[[hookz]]\n");
    assert!(p[0].message.contains("did you mean \"hooks\"?"), "{p:#?}");
}

#[cfg(feature = "yaml")]
#[test]
fn yaml_scaling() {
    let toml = r#"
[services.web]
command = ["w"]
instances = "2-4"
port_base = 8000
listen = ["tcp:0.0.0.0:8080", "admin=unix:run/admin.sock"]
start_limit = { burst = 5, interval = "10s" }
critical = true
limits = { memory_max = "1G" }
watch = { paths = ["/"], ignore = ["*.log"] }
[services.web.autoscale]
cooldown = "2m"
cpu = { up = "80%", down = 0.2 }
memory = { up = 0.9, for = "1m" }
[[hooks]]
events = ["failed", "scaled"]
services = ["web"]
exec = "/bin/cat -u"
"#;
    let yaml = r#"
services:
  web:
    command: [w]
    instances: 2-4
    port_base: 8000
    listen:
      - tcp:0.0.0.0:8080
      - admin=unix:run/admin.sock
    start_limit: {burst: 5, interval: 10s}
    critical: true
    limits: {memory_max: 1G}
    watch:
      paths: [/]
      ignore: ["*.log"]
    autoscale:
      cooldown: 2m
      cpu: {up: 80%, down: 0.2}
      memory: {up: 0.9, for: 1m}
hooks:
  - events: [failed, scaled]
    services: [web]
    exec: /bin/cat -u
"#;
    let from_yaml = from_str(yaml, true, Path::new("/base")).unwrap_or_else(|p| panic!("{p:#?}"));
    let from_toml = toml_ok(toml);
    assert_eq!(from_toml, from_yaml);
    assert_eq!(from_yaml.hooks.len(), 1);
    assert_eq!(
        service(&from_yaml, "web").scaling.listen[1],
        unix("admin", "/base/run/admin.sock")
    );

    let p = from_str(
        "services:\n  web:\n    command: [w]\n    listen: [tcp:0.0.0.0:80, tcp:0.0.0.0:80]\n    autoscale: {max: 3, cpu: {up: 80}}\nhooks:\n  - events: [exited, crashed]\n    services: [wbe]\n    exec: [cat]\n",
        true,
        Path::new("/base"),
    )
    .unwrap_err();
    assert_eq!(
        at(&p),
        [
            ("services.web.listen[1]", 4, 30),
            ("services.web.autoscale.cpu.up", 5, 35),
            ("hooks[0].events[1]", 7, 22),
            ("hooks[0].services[0]", 8, 16),
        ],
        "{p:#?}"
    );
    let p = from_str(
        "services:\n  web:\n    command: [w]\nhooks:\n  events: [exited]\n  exec: [cat]\n",
        true,
        Path::new("/base"),
    )
    .unwrap_err();
    assert_eq!(at(&p), [("hooks", 5, 3)], "{p:#?}");
}

#[test]
fn the_scaling_examples_load_and_agree() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let toml = load(&dir.join("scaling.toml")).unwrap_or_else(|e| panic!("{e}"));
    let web = &service(&toml, "web").scaling;
    assert_eq!(web.instances, range(2, 4));
    assert_eq!(web.port_base, Some(8000));
    assert_eq!(
        web.listen,
        [tcp("web", "127.0.0.1:8080"), tcp("admin", "[::1]:8081")]
    );
    assert_eq!(web.start_limit.map(|s| s.burst), Some(5));
    let auto = web.autoscale.as_ref().unwrap();
    assert_eq!(auto.rules.len(), 1);
    assert_eq!(auto.rules[0].metric, Metric::Cpu);
    assert_eq!(toml.hooks.len(), 1);
    assert_eq!(toml.hooks[0].command, ["/bin/cat"]);
    #[cfg(feature = "yaml")]
    {
        let yaml = load(&dir.join("scaling.yaml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(toml, yaml);
    }
}
