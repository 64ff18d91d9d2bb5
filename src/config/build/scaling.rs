//! The scaling half of `build` (issue 8): a service's instances, port
//! base, listening sockets, autoscaling, start limit, `critical` and watch
//! mode; then what spans services (two of them on one address) and the
//! top-level hooks.

use super::super::isolation::Isolation;
use super::super::lifecycle::{Lifecycle, Readiness, ServiceKind};
use super::super::node::{suggest, Kind};
use super::super::raw::{RawAutoscale, RawHooks, RawService, RawThreshold, RawWatch};
use super::super::values::parse_size;
use super::{io_reason, show, Ctx, KeyPath, MAX_SOCKET_PATH};
use crate::config::{
    Autoscale, Hook, HookEvent, HttpConfig, InstanceRange, ListenAddr, ListenSocket, Metric,
    PolicyExec, Rule, Scaling, ServiceConfig, StartLimit, Threshold, Watch,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Load is sampled at most this often.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// A memory threshold below this is surely a share or a size written wrong.
const MIN_MEMORY_BYTES: u64 = 1 << 20;

const RULE_KEYS: [&str; 5] = [
    "cpu",
    "memory",
    "cpu_pressure",
    "memory_pressure",
    "io_pressure",
];

/// The scaling keys of service `name`. `workdir` is the service's, resolved.
pub(super) fn service(
    name: &str,
    raw: &RawService,
    lifecycle: &Lifecycle,
    isolation: &Isolation,
    workdir: Option<&Path>,
    ctx: &mut Ctx<'_>,
) -> Scaling {
    let svc = KeyPath::new(&["services", name]);
    if lifecycle.kind == ServiceKind::Oneshot {
        for (key, given) in [
            ("instances", raw.instances.is_some()),
            ("autoscale", raw.autoscale.is_some()),
        ] {
            if given {
                ctx.at_key_of(
                    &svc.k(key),
                    format!(
                        "`{key}` runs copies of a long-running service side by side ({name}@0, \
                         {name}@1, ...); a one-shot task runs to completion, and copies would \
                         only repeat it: remove `{key}` (or define one oneshot service per task)"
                    ),
                );
            }
        }
    }

    let mut instances = raw.instances.map(|i| i.0);
    let autoscale = raw.autoscale.as_ref().map(|a| {
        let (autoscale, range) = autoscale(a, instances, &svc, isolation, ctx);
        instances = Some(range);
        autoscale
    });

    let port_base = raw.port_base.map(|p| p.0 as u16);
    if let Some(base) = port_base {
        let count = instances.map_or(1, |r| r.max);
        let last = u32::from(base) + count - 1;
        if last > u32::from(u16::MAX) {
            ctx.at(
                &svc.k("port_base"),
                format!(
                    "{count} instances from port {base} need ports up to {last}, past 65535; \
                     choose a port_base of at most {}",
                    65536 - count
                ),
            );
        }
    }

    let listen = listen(name, raw, lifecycle, ctx);

    let start_limit = raw.start_limit.map(|s| {
        let path = svc.k("start_limit");
        let burst = s.burst.unwrap_or(1);
        let interval = s.interval.map_or(Duration::ZERO, |d| d.0);
        for (key, given) in [
            ("burst", s.burst.is_some()),
            ("interval", s.interval.is_some()),
        ] {
            if !given && !ctx.pruned_at(&path.k(key)) && !ctx.misspelled(&path.keys(), key) {
                ctx.at_key_of(
                    &path,
                    format!(
                        "missing key `{key}`; a start limit needs both keys, like \
                         start_limit = {{ burst = 5, interval = \"10s\" }}"
                    ),
                );
            }
        }
        if s.burst == Some(0) {
            ctx.at(
                &path.k("burst"),
                "0 would refuse every start; allow 1 or more starts per interval".to_string(),
            );
        }
        if s.interval.is_some() && interval.is_zero() {
            ctx.at(
                &path.k("interval"),
                "0s counts no starts; give a window like \"10s\"".to_string(),
            );
        }
        StartLimit { burst, interval }
    });

    // Paths relative to a workdir that is refused or missing are not
    // checked: that problem is reported on its own.
    let workdir_ok = !ctx.pruned_at(&svc.k("workdir")) && workdir.map_or(true, Path::is_dir);
    let watch = raw
        .watch
        .as_ref()
        .map(|w| watch(w, &svc.k("watch"), workdir, workdir_ok, ctx));

    Scaling {
        instances,
        port_base,
        listen,
        autoscale,
        start_limit,
        critical: raw.critical.unwrap_or(false),
        watch,
    }
}

/// A `listen` entry, unix paths resolved against the config's folder.
fn listen_socket(text: &str, name: &str, base: &Path) -> Result<ListenSocket, String> {
    let mut socket = ListenSocket::parse(text, name)?;
    if let ListenAddr::Unix(path) = &mut socket.addr {
        if path.is_relative() {
            // `components` drops the `.` parts: "./run/a.sock" is "BASE/run/a.sock".
            *path = base.join(&*path).components().collect();
        }
        let len = path.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            return Err(format!(
                "\"{}\" is {len} bytes long, and a unix socket path is limited to \
                 {MAX_SOCKET_PATH}; choose a shorter path",
                path.display()
            ));
        }
    }
    Ok(socket)
}

fn listen(
    name: &str,
    raw: &RawService,
    lifecycle: &Lifecycle,
    ctx: &mut Ctx<'_>,
) -> Vec<ListenSocket> {
    let Some(list) = &raw.listen else {
        return Vec::new();
    };
    let path = ["services", name, "listen"];
    let mut all = Vec::new();
    for (i, text) in list.0.iter().enumerate() {
        match listen_socket(text, name, ctx.base) {
            Ok(socket) => all.push(socket),
            Err(why) => ctx.at_item(&path, i, why),
        }
    }
    if list.0.len() > ListenSocket::MAX {
        ctx.at_item(
            &path,
            ListenSocket::MAX,
            format!(
                "{} sockets are too many: a service gets at most {} (fds 3 to {} of its \
                 processes); serve more addresses from fewer sockets, or split the service",
                list.0.len(),
                ListenSocket::MAX,
                ListenSocket::MAX + 2
            ),
        );
    }
    if lifecycle.ready == Readiness::Fd && !list.0.is_empty() {
        ctx.at_key(
            &path,
            "`listen` passes its sockets as fds 3 and up (LISTEN_FDS), and ready = \"fd\" \
             needs fd 3 for its pipe; the two cannot be combined yet: use ready = \"notify\" \
             (sd_notify READY=1) or ready = \"healthy\" with a health check"
                .to_string(),
        );
    }
    all
}

/// An example rule for `metric`, for messages.
fn example(metric: Metric) -> &'static str {
    match metric {
        Metric::Cpu => "cpu = { up = 0.8, down = 0.3 }",
        Metric::Memory => "memory = { up = \"80%\", down = \"40%\" }",
        Metric::CpuPressure => "cpu_pressure = { up = 20, down = 5 }",
        Metric::MemoryPressure => "memory_pressure = { up = 20, down = 5 }",
        Metric::IoPressure => "io_pressure = { up = 20, down = 5 }",
    }
}

/// `autoscale = { ... }` and the range it scales within.
fn autoscale(
    raw: &RawAutoscale,
    instances: Option<InstanceRange>,
    svc: &KeyPath,
    isolation: &Isolation,
    ctx: &mut Ctx<'_>,
) -> (Autoscale, InstanceRange) {
    let path = svc.k("autoscale");
    let keys = path.keys();
    let range = autoscale_range(raw, instances, svc, ctx);

    let interval = raw.interval.map_or(Autoscale::DEFAULT_INTERVAL, |d| d.0);
    let window = raw.window.map_or(Autoscale::DEFAULT_WINDOW, |d| d.0);
    let interval_ok = interval >= MIN_INTERVAL && !ctx.pruned_at(&path.k("interval"));
    if interval < MIN_INTERVAL {
        ctx.at(
            &path.k("interval"),
            format!(
                "{} is too often; sample at most every {} (the default, 10s, is usual)",
                show(interval),
                show(MIN_INTERVAL)
            ),
        );
    }
    if window < interval && interval_ok && !ctx.pruned_at(&path.k("window")) {
        if raw.window.is_some() {
            ctx.at(
                &path.k("window"),
                format!(
                    "window ({}) is shorter than interval ({}), so it would hold no sample; \
                     raise window or lower interval",
                    show(window),
                    show(interval)
                ),
            );
        } else {
            ctx.at(
                &path.k("interval"),
                format!(
                    "interval ({}) is longer than the default window ({}), so a window would \
                     hold no sample; lower interval, or set a window of at least {}",
                    show(interval),
                    show(window),
                    show(interval)
                ),
            );
        }
    }
    let step = raw.step.unwrap_or(1);
    if step == 0 {
        ctx.at(
            &path.k("step"),
            "0 would never change the count; use 1 or more".to_string(),
        );
    }

    let has_memory_max = isolation.limits.memory_max.is_some() || ctx.pruned_at(&svc.k("limits"));
    let has_cpu_max = isolation.limits.cpu_max.is_some();
    let mut rules = Vec::new();
    for (metric, rule) in raw.rules() {
        let Some(rule) = rule else {
            continue;
        };
        let at = path.k(metric.key());
        let bound = |key: &str, t: &Option<RawThreshold>, ctx: &mut Ctx<'_>| {
            let t = t.as_ref()?;
            match threshold(metric, t, has_cpu_max, has_memory_max) {
                Ok(v) => Some(v),
                Err(why) => {
                    ctx.at(&at.k(key), why);
                    None
                }
            }
        };
        let up = bound("up", &rule.up, ctx);
        let down = bound("down", &rule.down, ctx);
        let refused = ["up", "down"]
            .iter()
            .any(|k| ctx.pruned_at(&at.k(k)) || ctx.misspelled(&at.keys(), k));
        if rule.up.is_none() && rule.down.is_none() && !refused {
            ctx.at_key_of(
                &at,
                format!(
                    "a rule needs `up`, `down` or both, like {}",
                    example(metric)
                ),
            );
        }
        if let (Some(u), Some(d), Some(ut), Some(dt)) = (up, down, &rule.up, &rule.down) {
            let message = match (u, d) {
                (Threshold::Ratio(u), Threshold::Ratio(d)) if d >= u => Some(format!(
                    "down ({dt}) must be below up ({ut}), or the service would grow and shrink \
                     at once; lower down or raise up"
                )),
                (Threshold::Bytes(u), Threshold::Bytes(d)) if d >= u => Some(format!(
                    "down ({dt}) must be below up ({ut}), or the service would grow and shrink \
                     at once; lower down or raise up"
                )),
                (Threshold::Ratio(_), Threshold::Bytes(_))
                | (Threshold::Bytes(_), Threshold::Ratio(_)) => Some(format!(
                    "up ({ut}) and down ({dt}) must be in the same unit: both sizes like \
                     \"400M\", or both shares of memory_max like \"80%\""
                )),
                _ => None,
            };
            if let Some(message) = message {
                ctx.at(&at.k("down"), message);
            }
        }
        rules.push(Rule {
            metric,
            up,
            down,
            hold: rule.r#for.map_or(Autoscale::DEFAULT_FOR, |d| d.0),
        });
    }

    let policy = raw.policy.as_ref().map(|p| {
        let at = path.k("policy");
        let command = p.exec.as_ref().map(|c| c.0.clone()).unwrap_or_default();
        let example = "[\"/usr/local/bin/policy\"]";
        match &p.exec {
            Some(_) => check_command(&command, &at.k("exec"), example, ctx),
            None if !ctx.pruned_at(&at.k("exec")) && !ctx.misspelled(&at.keys(), "exec") => ctx
                .at_key_of(
                    &at,
                    format!("missing key `exec`; give the policy's command, e.g. exec = {example}"),
                ),
            None => {}
        }
        let timeout = p.timeout.map_or(Autoscale::DEFAULT_POLICY_TIMEOUT, |d| d.0);
        if timeout.is_zero() {
            ctx.at(
                &at.k("timeout"),
                "a policy cannot answer in 0s; give a duration like \"5s\"".to_string(),
            );
        } else if timeout > interval && interval_ok {
            if p.timeout.is_some() {
                ctx.at(
                    &at.k("timeout"),
                    format!(
                        "timeout ({}) is longer than interval ({}), so evaluations would \
                         overlap; lower timeout or raise interval",
                        show(timeout),
                        show(interval)
                    ),
                );
            } else {
                ctx.at(
                    &path.k("interval"),
                    format!(
                        "interval ({}) is shorter than the policy's default timeout ({}), so \
                         evaluations would overlap; raise interval or set a shorter policy timeout",
                        show(interval),
                        show(timeout)
                    ),
                );
            }
        }
        PolicyExec { command, timeout }
    });

    let given: Vec<&str> = raw
        .rules()
        .iter()
        .filter(|(_, r)| r.is_some())
        .map(|(m, _)| m.key())
        .collect();
    let refused = RULE_KEYS
        .iter()
        .chain(&["policy"])
        .any(|k| ctx.pruned_at(&path.k(k)) || ctx.misspelled(&keys, k));
    if given.is_empty() && raw.policy.is_none() && !refused {
        ctx.at_key_of(
            &path,
            format!(
                "autoscale needs rules or a policy to decide by; add a rule like {} (or \
                 memory, cpu_pressure, memory_pressure, io_pressure), or \
                 policy = {{ exec = [\"/usr/local/bin/policy\"] }}",
                example(Metric::Cpu)
            ),
        );
    }
    if !given.is_empty() && raw.policy.is_some() {
        ctx.at_key_of(
            &path.k("policy"),
            format!(
                "a policy decides alone, and this table has rules too ({}); remove the rules \
                 or the policy",
                given.join(", ")
            ),
        );
    }

    let autoscale = Autoscale {
        interval,
        window,
        cooldown: raw.cooldown.map_or(Autoscale::DEFAULT_COOLDOWN, |d| d.0),
        step,
        rules,
        policy,
    };
    (autoscale, range)
}

/// The range autoscale moves in: `autoscale.min`/`max`, or `instances`, or
/// both when they agree. min defaults to 1. It must leave room to move
/// (max > min): a fixed count has nothing to scale.
fn autoscale_range(
    raw: &RawAutoscale,
    instances: Option<InstanceRange>,
    svc: &KeyPath,
    ctx: &mut Ctx<'_>,
) -> InstanceRange {
    let path = svc.k("autoscale");
    let fallback = |min: u32, max: u32| {
        let max = max.clamp(1, InstanceRange::MAX_INSTANCES);
        InstanceRange {
            min: min.min(max),
            max,
        }
    };
    let mut agree = true;
    if let Some(r) = instances {
        for (key, given, from_instances) in [("min", raw.min, r.min), ("max", raw.max, r.max)] {
            if let Some(v) = given {
                if v != from_instances {
                    ctx.at(
                        &path.k(key),
                        format!(
                            "{key} = {v} disagrees with instances = \"{r}\" (whose {key} is \
                             {from_instances}); give the range once, in `instances` or here"
                        ),
                    );
                    agree = false;
                }
            }
        }
    }
    let min = raw.min.or(instances.map(|r| r.min)).unwrap_or(1);
    let Some(max) = raw.max.or(instances.map(|r| r.max)) else {
        let refused = ctx.pruned_at(&svc.k("instances"))
            || ctx.pruned_at(&path.k("max"))
            || ctx.misspelled(&path.keys(), "max")
            || ctx.misspelled(&svc.keys(), "instances");
        if !refused {
            ctx.at_key_of(
                &path,
                "autoscale needs a range to scale within; give instances = \"1-4\", or \
                 max = 4 here (min defaults to 1)"
                    .to_string(),
            );
        }
        return fallback(min, min);
    };
    if !agree {
        return fallback(min, max);
    }
    let max_at = if raw.max.is_some() {
        path.k("max")
    } else {
        svc.k("instances")
    };
    let min_at = if raw.min.is_some() {
        path.k("min")
    } else {
        svc.k("instances")
    };
    if max == 0 || max > InstanceRange::MAX_INSTANCES {
        ctx.at(
            &max_at,
            format!(
                "max = {max} is out of range; scale up to 1 to {} instances",
                InstanceRange::MAX_INSTANCES
            ),
        );
    } else if min > max {
        ctx.at(
            &min_at,
            format!("min ({min}) is above max ({max}); lower min or raise max"),
        );
    } else if min == max {
        let message = if raw.max.is_none() && raw.min.is_none() {
            format!(
                "instances = {max} is a fixed count, and autoscale needs room to move; give \
                 a range like instances = \"{max}-{}\"",
                (max * 2).min(InstanceRange::MAX_INSTANCES).max(max + 1)
            )
        } else {
            format!(
                "min and max are both {max}, which leaves autoscale nothing to do; raise max \
                 (or remove autoscale for a fixed count)"
            )
        };
        ctx.at(&max_at, message);
    }
    fallback(min, max)
}

/// A rule's bound for `metric`, or why it cannot be one.
fn threshold(
    metric: Metric,
    raw: &RawThreshold,
    has_cpu_max: bool,
    has_memory_max: bool,
) -> Result<Threshold, String> {
    let percent = |s: &str| {
        s.trim()
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
            .filter(|x| x.is_finite())
    };
    let number = match raw {
        RawThreshold::Int(n) => Some(*n as f64),
        RawThreshold::Float(x) => Some(*x),
        RawThreshold::Text(_) => None,
    };
    let pct = match raw {
        RawThreshold::Text(s) => percent(s),
        _ => None,
    };
    match metric {
        Metric::Cpu => {
            let of = if has_cpu_max {
                "of the cpu_max quota"
            } else {
                "of one CPU; \"150%\" is one and a half"
            };
            if let Some(x) = number {
                if x > 0.0 && x <= 1.0 {
                    return Ok(Threshold::Ratio(x));
                }
                return Err(format!(
                    "{raw} is out of range: a CPU share is above 0 and at most 1 ({of}); \
                     write 0.8 or \"80%\""
                ));
            }
            match pct {
                Some(p) if p <= 0.0 => Err(format!("{raw}: a CPU share is above 0%")),
                Some(p) if p > 100.0 && has_cpu_max => Err(format!(
                    "{raw}: the cpu_max quota caps an instance at 100%; give at most \"100%\""
                )),
                Some(p) => Ok(Threshold::Ratio(p / 100.0)),
                None => Err(format!(
                    "{raw} is not a CPU share; write a share like 0.8 or a percentage like \"80%\""
                )),
            }
        }
        Metric::Memory => {
            let bytes = match raw {
                RawThreshold::Int(n) => u64::try_from(*n).ok(),
                RawThreshold::Text(s) if pct.is_none() => Some(parse_size(s).map_err(|_| {
                    format!(
                        "{raw} is not a memory bound; write a size like \"400M\", or a share \
                         of memory_max like \"80%\" or 0.8"
                    )
                })?),
                _ => None,
            };
            if let Some(b) = bytes {
                if b < MIN_MEMORY_BYTES {
                    return Err(format!(
                        "{raw} is less than a megabyte; write a size like \"400M\", or a share \
                         of memory_max like \"80%\""
                    ));
                }
                return Ok(Threshold::Bytes(b));
            }
            let share = match (number, pct) {
                (Some(x), _) => x,
                (None, Some(p)) => p / 100.0,
                (None, None) => unreachable!("text is a size or a percentage"),
            };
            if !(share > 0.0 && share <= 1.0) {
                return Err(format!(
                    "{raw} is out of range: a share of memory_max is above 0 and at most 1 \
                     (\"100%\"); or write a size like \"400M\""
                ));
            }
            if !has_memory_max {
                return Err(format!(
                    "{raw} is a share of memory_max, and this service has none; add \
                     limits = {{ memory_max = \"512M\" }}, or give a size like \"400M\""
                ));
            }
            Ok(Threshold::Ratio(share))
        }
        Metric::CpuPressure | Metric::MemoryPressure | Metric::IoPressure => match number.or(pct) {
            Some(x) if x > 0.0 && x <= 100.0 => Ok(Threshold::Ratio(x)),
            _ => Err(format!(
                "{raw} is not a pressure: give the percentage of time stalled (PSI some \
                     avg10), above 0 and at most 100, like {}",
                example(metric)
            )),
        },
    }
}

/// A command (`exec`) whose program is given.
fn check_command(argv: &[String], at: &KeyPath, example: &str, ctx: &mut Ctx<'_>) {
    match argv.first() {
        None => ctx.at(
            at,
            format!("empty command; give the program and its arguments, e.g. {example}"),
        ),
        Some(program) if program.is_empty() => ctx.at(
            at,
            "the program (first word) is empty; give its path or name".to_string(),
        ),
        Some(_) => {}
    }
}

/// `watch = { ... }`: relative paths against the service's workdir, else
/// the config's folder; each must exist (relative ones only if `base_ok`).
fn watch(
    raw: &RawWatch,
    path: &KeyPath,
    workdir: Option<&Path>,
    base_ok: bool,
    ctx: &mut Ctx<'_>,
) -> Watch {
    let base = workdir.unwrap_or(ctx.base).to_path_buf();
    let against = if workdir.is_some() {
        "the service's workdir"
    } else {
        "the config file's folder"
    };
    let at = path.k("paths");
    let given = raw.paths.as_deref().unwrap_or_default();
    if raw.paths.is_none() && !ctx.pruned_at(&at) && !ctx.misspelled(&path.keys(), "paths") {
        ctx.at_key_of(
            path,
            "missing key `paths`; give the files or folders to watch, like paths = [\"./src\"]"
                .to_string(),
        );
    } else if raw.paths.is_some() && given.is_empty() {
        ctx.at(
            &at,
            "nothing to watch; give files or folders, like paths = [\"./src\"]".to_string(),
        );
    }
    let mut paths = Vec::new();
    for (i, p) in given.iter().enumerate() {
        if p.is_empty() {
            ctx.at(&at.i(i), "empty path; give a file or folder".to_string());
            continue;
        }
        let full: PathBuf = base.join(p).components().collect();
        if Path::new(p).is_absolute() || base_ok {
            if let Err(e) = std::fs::metadata(&full) {
                ctx.at(
                    &at.i(i),
                    format!(
                        "\"{}\": {}; create it or fix the path (a relative path is against \
                         {against})",
                        full.display(),
                        io_reason(&e)
                    ),
                );
            }
        }
        paths.push(full);
    }
    let ignore = raw.ignore.clone().unwrap_or_default();
    for (i, pattern) in ignore.iter().enumerate() {
        if pattern.is_empty() {
            ctx.at(
                &path.k("ignore").i(i),
                "an empty pattern matches nothing; remove it, or give one like \"*.log\""
                    .to_string(),
            );
        }
    }
    Watch {
        paths,
        ignore,
        debounce: raw.debounce.map_or(Watch::DEFAULT_DEBOUNCE, |d| d.0),
    }
}

/// `(item index, socket)` of each `listen` entry of service `name` that
/// parses, read again from the tree so that positions are the file's.
fn listen_items(ctx: &Ctx<'_>, name: &str) -> Vec<(usize, ListenSocket)> {
    let texts: Vec<&str> = match ctx
        .tree
        .entry(&["services", name, "listen"])
        .map(|e| &e.value.kind)
    {
        Some(Kind::Str(s)) => vec![s.as_str()],
        Some(Kind::List(items)) => items
            .iter()
            .map(|n| match &n.kind {
                Kind::Str(s) => s.as_str(),
                _ => "",
            })
            .collect(),
        _ => Vec::new(),
    };
    texts
        .iter()
        .enumerate()
        .filter_map(|(i, t)| listen_socket(t, name, ctx.base).ok().map(|s| (i, s)))
        .collect()
}

/// Whether binding both would clash: the same path, or the same port
/// where one address is the other or takes every address of its family.
fn overlap(a: &ListenAddr, b: &ListenAddr) -> bool {
    match (a, b) {
        (ListenAddr::Unix(x), ListenAddr::Unix(y)) => x == y,
        (ListenAddr::Tcp(x), ListenAddr::Tcp(y)) => {
            x.port() == y.port()
                && x.is_ipv4() == y.is_ipv4()
                && (x.ip() == y.ip() || x.ip().is_unspecified() || y.ip().is_unspecified())
        }
        _ => false,
    }
}

/// Each address is opened once: not twice in a service, not by two
/// services, not on sentinel's own `[http] listen`.
pub(super) fn listen_conflicts(
    services: &[(String, ServiceConfig)],
    http: Option<&HttpConfig>,
    ctx: &mut Ctx<'_>,
) {
    let mut seen: Vec<(&str, usize, ListenAddr)> = Vec::new();
    for (name, svc) in services {
        if svc.scaling.listen.is_empty() {
            continue;
        }
        let path = ["services", name.as_str(), "listen"];
        for (i, socket) in listen_items(ctx, name) {
            let addr = socket.addr;
            let clash = seen.iter().find(|(_, _, a)| overlap(a, &addr));
            let message = match clash {
                Some((other, j, a)) if *other == name.as_str() && *a == addr => {
                    Some(format!("{addr} is listed twice (also listen[{j}]); remove one"))
                }
                Some((other, j, a)) if *other == name.as_str() => Some(format!(
                    "{addr} overlaps {a} (listen[{j}]), which takes every address on its port; \
                     remove one"
                )),
                Some((other, j, a)) => Some(format!(
                    "{addr} clashes with {a} of service \"{other}\" (services.{other}.listen[{j}]); \
                     an address can be opened once: remove one, or run both as instances of \
                     one service"
                )),
                None => match (&addr, http.and_then(|h| h.listen)) {
                    (ListenAddr::Tcp(a), Some(h))
                        if h.port() != 0 && overlap(&ListenAddr::Tcp(h), &addr) =>
                    {
                        Some(format!(
                            "tcp:{a} clashes with sentinel's own [http] listen = \"{h}\"; choose \
                             another port"
                        ))
                    }
                    _ => None,
                },
            };
            match message {
                Some(m) => ctx.at_item(&path, i, m),
                None => seen.push((name, i, addr)),
            }
        }
    }
}

/// `[[hooks]]`: known events, known services, a command.
pub(super) fn hooks(
    raw: Option<RawHooks>,
    services: &[(String, ServiceConfig)],
    ctx: &mut Ctx<'_>,
) -> Vec<Hook> {
    let names: Vec<&str> = services.iter().map(|(n, _)| n.as_str()).collect();
    let event_names: Vec<&str> = HookEvent::ALL.iter().map(|e| e.name()).collect();
    let mut hooks = Vec::new();
    for (i, raw) in raw.map(|h| h.0).unwrap_or_default().into_iter().enumerate() {
        let path = KeyPath::new(&["hooks"]).i(i);
        if raw.events.is_empty() {
            ctx.at(
                &path.k("events"),
                format!("no events; give some of: {}", event_names.join(", ")),
            );
        }
        let mut events = Vec::new();
        for (j, name) in raw.events.iter().enumerate() {
            let at = path.k("events").i(j);
            match HookEvent::ALL.iter().find(|e| e.name() == name) {
                Some(e) if events.contains(e) => {
                    ctx.at(&at, format!("\"{name}\" is listed twice; remove one"))
                }
                Some(e) => events.push(*e),
                None => {
                    // "exit" for "exited": a prefix is as good a hint as a typo.
                    let near = suggest(name, &event_names).or_else(|| {
                        event_names
                            .iter()
                            .copied()
                            .find(|e| name.len() >= 3 && e.starts_with(name.as_str()))
                    });
                    let hint = match near {
                        Some(s) => format!("did you mean \"{s}\"?"),
                        None => format!("expected one of: {}", event_names.join(", ")),
                    };
                    ctx.at(&at, format!("unknown event \"{name}\"; {hint}"));
                }
            }
        }
        let mut only: Vec<String> = Vec::new();
        for (j, name) in raw.services.unwrap_or_default().into_iter().enumerate() {
            let at = path.k("services").i(j);
            if only.contains(&name) {
                ctx.at(&at, format!("\"{name}\" is listed twice; remove one"));
                continue;
            }
            if !names.contains(&name.as_str()) && !ctx.pruned(&["services", &name]) {
                let message = match suggest(&name, &names) {
                    Some(s) => format!("unknown service \"{name}\"; did you mean \"{s}\"?"),
                    None => format!(
                        "unknown service \"{name}\"; the services are: {}",
                        names.join(", ")
                    ),
                };
                ctx.at(&at, message);
            }
            only.push(name);
        }
        check_command(
            &raw.exec.0,
            &path.k("exec"),
            "[\"/usr/local/bin/notify\"]",
            ctx,
        );
        let timeout = raw.timeout.map_or(Hook::DEFAULT_TIMEOUT, |d| d.0);
        if timeout.is_zero() {
            ctx.at(
                &path.k("timeout"),
                "a hook cannot finish in 0s; give a duration like \"10s\"".to_string(),
            );
        }
        hooks.push(Hook {
            events,
            services: only,
            command: raw.exec.0,
            timeout,
        });
    }
    hooks
}
