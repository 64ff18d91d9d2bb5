//! The bundle half of `build` (issue 9): `bundle = "DIR"` reads the OCI
//! runtime bundle's `config.json` and gives the service its settings as
//! defaults — the service's own keys win:
//!
//! | config.json | service key |
//! | --- | --- |
//! | `process.args` | `command` |
//! | `process.env` | `env` (the service's entries on top; `clear_env` defaults to true) |
//! | `process.cwd` | `workdir` (inside the new root) |
//! | `process.user` uid, gid, additionalGids | `user`, `supplementary_groups` |
//! | `process.rlimits` | `rlimits` (per resource) |
//! | `process.noNewPrivileges`, `oomScoreAdj` | `isolation.no_new_privs`, `oom_score_adjust` |
//! | `process.capabilities` | `isolation.capabilities` (one set) |
//! | `hostname` | `isolation.hostname` |
//! | `root.path` | `isolation.root` |
//! | `linux.namespaces`, `uidMappings`, `gidMappings` | `isolation.namespaces`, `uid_map`, `gid_map` |
//! | `linux.resources` memory/cpu/pids | `limits` (when the service has none) |
//! | annotation `org.opencontainers.image.stopSignal` | `stop_signal` |
//!
//! and `mounts`, `root.readonly`, `linux.maskedPaths`/`readonlyPaths` go
//! to [`crate::oci::Mounts`]. Every other field present is a warning
//! (`Ctx::warnings`), never silently dropped; a field that cannot be
//! honoured as written (a malformed file, a relative cwd) is a problem.

use super::super::isolation::{
    check_hostname, rlimit_resource, Capability, CpuMax, IdMap, IdSpec, Limits, Rlimit, UserSpec,
};
use super::super::node::path_string;
use super::super::raw::{RawIsolation, RawService};
use super::super::values::parse_signal;
use super::super::{Problem, ServiceConfig, Signal};
use super::{io_reason, locate, Ctx, KeyPath};
use crate::oci::{self, spec, MountKind};
use std::path::{Path, PathBuf};

/// The annotation an image's `STOPSIGNAL` becomes.
const STOP_SIGNAL: &str = "org.opencontainers.image.stopSignal";

/// Which keys the service wrote itself (the bundle fills the others).
#[derive(Debug, Default)]
struct Set {
    command: bool,
    workdir: bool,
    clear_env: bool,
    user: bool,
    groups: bool,
    hostname: bool,
    root: bool,
    uid_map: bool,
    gid_map: bool,
    limits: bool,
    capabilities: bool,
    no_new_privs: bool,
    oom_score_adjust: bool,
    stop_signal: bool,
    /// Resources of the service's `rlimits`.
    rlimits: Vec<u32>,
}

impl Set {
    fn of(raw: &RawService) -> Set {
        let iso = raw.isolation.as_ref();
        Set {
            command: raw.command.is_some(),
            workdir: raw.workdir.is_some(),
            clear_env: raw.clear_env.is_some(),
            user: raw.user.is_some(),
            groups: raw.supplementary_groups.is_some(),
            hostname: iso.is_some_and(|i| i.hostname.is_some()),
            root: iso.is_some_and(|i| i.root.is_some()),
            uid_map: iso.is_some_and(|i| i.uid_map.is_some()),
            gid_map: iso.is_some_and(|i| i.gid_map.is_some()),
            limits: raw.limits.is_some(),
            capabilities: iso.is_some_and(|i| i.capabilities.is_some()),
            no_new_privs: iso.is_some_and(|i| i.no_new_privs.is_some()),
            oom_score_adjust: raw.oom_score_adjust.is_some(),
            stop_signal: raw.stop_signal.is_some(),
            rlimits: raw
                .rlimits
                .as_ref()
                .map(|r| r.entries())
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(n, _, _)| rlimit_resource(n))
                .collect(),
        }
    }
}

/// A bundle, read and mapped: what it gives the service.
pub(in crate::config) struct Bundle {
    set: Set,
    /// `services.NAME.bundle`, where its problems and warnings are shown.
    key: KeyPath,
    /// `bundle DIR` (as written), the start of its messages.
    head: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    user: Option<(u32, u32, Vec<u32>)>,
    hostname: Option<String>,
    rlimits: Vec<Rlimit>,
    no_new_privs: Option<bool>,
    capabilities: Option<Vec<Capability>>,
    oom_score_adjust: Option<i32>,
    limits: Limits,
    uid_map: Vec<IdMap>,
    gid_map: Vec<IdMap>,
    stop_signal: Option<Signal>,
    root: Option<PathBuf>,
    /// `linux.namespaces` as sentinel names them, with `mount`.
    namespaces: Vec<String>,
    mounts: oci::Mounts,
}

/// Problems and warnings about one bundle's `config.json`, each starting
/// `bundle DIR: config.json ...`.
struct Notes<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    key: KeyPath,
    head: String,
}

impl Notes<'_, '_> {
    /// A field that cannot be honoured as written.
    fn bad(&mut self, field: &str, why: String) {
        let message = format!("{}: config.json {field}: {why}", self.head);
        self.ctx.at(&self.key, message);
    }

    /// A field sentinel does not honour.
    fn ignored(&mut self, field: &str, why: &str) {
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(" ({why})")
        };
        let message = format!(
            "{}: config.json field {field} is not supported{why}; ignored",
            self.head
        );
        warn(self.ctx, &self.key, message);
    }

    /// The fields of `other` under `prefix`, each with its reason from
    /// `reasons` (or none); empty values (null, {}, []) are nothing to honour.
    fn others(&mut self, prefix: &str, other: &spec::Other, reasons: &[(&str, &str)]) {
        for (k, v) in other {
            let empty = match v {
                serde_json::Value::Null => true,
                serde_json::Value::Array(a) => a.is_empty(),
                serde_json::Value::Object(o) => o.is_empty(),
                serde_json::Value::String(s) => s.is_empty(),
                _ => false,
            };
            if empty {
                continue;
            }
            let why = reasons
                .iter()
                .find(|(name, _)| name == k)
                .map_or("", |(_, why)| why);
            let field = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            self.ignored(&field, why);
        }
    }
}

/// A warning at `path` (or its nearest ancestor).
fn warn(ctx: &mut Ctx<'_>, path: &KeyPath, message: String) {
    let (_, pos) = locate(ctx.tree, &path.0);
    ctx.warnings.push(Problem {
        key: path_string(&path.0),
        line: pos.map(|p| p.line),
        column: pos.map(|p| p.column),
        message,
    });
}

/// Read the bundle of service `name`, if it has one. The bundle's
/// namespaces go into `raw` right away (unless the service lists its own),
/// so that the isolation checks see them.
pub(in crate::config) fn load(
    name: &str,
    raw: &mut RawService,
    ctx: &mut Ctx<'_>,
) -> Option<Bundle> {
    let text = raw.bundle.clone()?;
    let key = KeyPath::new(&["services", name, "bundle"]);
    if text.is_empty() {
        ctx.at(
            &key,
            "empty path; give the folder of an OCI bundle (config.json and its rootfs)".to_string(),
        );
        return None;
    }
    let dir = ctx.resolve(&text);
    let file = dir.join("config.json");
    let json = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            ctx.at(
                &key,
                format!(
                    "cannot read \"{}\": {}; a bundle is a folder with config.json and the root \
                     file system (`umoci unpack --image IMAGE:TAG DIR` makes one)",
                    file.display(),
                    io_reason(&e)
                ),
            );
            return None;
        }
    };
    let parsed = match spec::parse(&json) {
        Ok(s) => s,
        Err(e) => {
            let at = if e.line > 0 {
                format!(":{}:{}", e.line, e.column)
            } else {
                String::new()
            };
            ctx.at(
                &key,
                format!(
                    "{}{at}: {}; fix the file (it must be an OCI runtime-spec config.json)",
                    file.display(),
                    e.message
                ),
            );
            return None;
        }
    };
    let set = Set::of(raw);
    let mut notes = Notes {
        ctx,
        key: key.clone(),
        head: format!("bundle {text}"),
    };
    let b = map(&dir, parsed, set, key, &mut notes);

    // Namespaces: the bundle's, unless the service lists its own; a new
    // root needs the mount namespace either way.
    let iso = raw.isolation.get_or_insert_with(RawIsolation::default);
    match &iso.namespaces {
        None => iso.namespaces = Some(b.namespaces.clone()),
        Some(own) => {
            let has_mount = own
                .iter()
                .any(|n| matches!(n.to_ascii_lowercase().as_str(), "mount" | "mnt"));
            if !has_mount {
                let path = KeyPath::new(&["services", name, "isolation", "namespaces"]);
                notes.ctx.at(
                    &path,
                    "a bundle runs in its own root (pivot_root), which needs the mount \
                     namespace; add \"mount\""
                        .to_string(),
                );
            }
        }
    }
    Some(b)
}

/// config.json to a [`Bundle`]: values checked, unsupported fields noted.
fn map(dir: &Path, s: spec::Spec, set: Set, key: KeyPath, n: &mut Notes<'_, '_>) -> Bundle {
    let mut b = Bundle {
        set,
        key,
        head: n.head.clone(),
        args: Vec::new(),
        env: Vec::new(),
        cwd: None,
        user: None,
        hostname: None,
        rlimits: Vec::new(),
        no_new_privs: None,
        capabilities: None,
        oom_score_adjust: None,
        limits: Limits::default(),
        uid_map: Vec::new(),
        gid_map: Vec::new(),
        stop_signal: None,
        root: None,
        namespaces: Vec::new(),
        mounts: oci::Mounts {
            bundle: dir.to_path_buf(),
            mounts: Vec::new(),
            masked: Vec::new(),
            read_only: Vec::new(),
            read_only_root: false,
        },
    };
    if let Some(v) = &s.oci_version {
        if !v.starts_with("1.") {
            n.ignored(
                "ociVersion",
                &format!("sentinel reads runtime-spec 1.x, this file says {v}"),
            );
        }
    }
    n.others(
        "",
        &s.other,
        &[
            ("hooks", "sentinel runs no OCI hooks"),
            ("domainname", "sentinel sets the hostname only"),
        ],
    );

    // linux first: the namespaces decide what the rest may use.
    let linux = s.linux.unwrap_or_default();
    linux_namespaces(&linux, &mut b, n);
    if let Some(p) = s.process {
        process(p, &mut b, n);
    }
    match s.root {
        None => n.bad(
            "root",
            "missing; it names the root file system folder (\"root\": {\"path\": \"rootfs\"})"
                .to_string(),
        ),
        Some(r) => {
            let path = dir.join(&r.path);
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => n.bad(
                    "root.path",
                    format!("\"{}\" is not a folder", path.display()),
                ),
                Err(e) => n.bad(
                    "root.path",
                    format!(
                        "\"{}\": {}; unpack the image there (umoci unpack) or fix the path",
                        path.display(),
                        io_reason(&e)
                    ),
                ),
            }
            b.root = Some(path);
            b.mounts.read_only_root = r.readonly.unwrap_or(false);
            n.others("root", &r.other, &[]);
        }
    }
    if let Some(h) = s.hostname.filter(|h| !h.is_empty()) {
        match check_hostname(&h) {
            Ok(()) => b.hostname = Some(h),
            Err(why) => n.bad("hostname", why),
        }
    }
    for (i, m) in s.mounts.unwrap_or_default().into_iter().enumerate() {
        mount(dir, i, m, &mut b, n);
    }
    linux_rest(linux, &mut b, n);
    for (k, v) in s.annotations.unwrap_or_default() {
        if k == STOP_SIGNAL && !v.is_empty() {
            match parse_signal(&v) {
                Ok(sig) => b.stop_signal = Some(Signal(sig)),
                Err(why) => n.bad(&format!("annotations.\"{STOP_SIGNAL}\""), why),
            }
        }
    }
    b
}

fn process(p: spec::Process, b: &mut Bundle, n: &mut Notes<'_, '_>) {
    if p.terminal == Some(true) {
        n.ignored(
            "process.terminal",
            "a service gets no terminal: stdin is /dev/null and its output goes to sentinel's logs",
        );
    }
    if let Some(u) = p.user {
        b.user = Some((u.uid, u.gid, u.additional_gids.unwrap_or_default()));
        n.others("process.user", &u.other, &[]);
    }
    b.args = p.args.unwrap_or_default();
    for (i, kv) in p.env.unwrap_or_default().into_iter().enumerate() {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => match b.env.iter_mut().find(|(ek, _)| ek == k) {
                Some(slot) => slot.1 = v.to_string(),
                None => b.env.push((k.to_string(), v.to_string())),
            },
            _ => n.bad(
                &format!("process.env[{i}]"),
                format!("\"{kv}\" is not NAME=value"),
            ),
        }
    }
    if let Some(cwd) = p.cwd.filter(|c| !c.is_empty()) {
        if cwd.starts_with('/') {
            b.cwd = Some(PathBuf::from(cwd));
        } else {
            n.bad(
                "process.cwd",
                format!("\"{cwd}\" is relative; it must be absolute (inside the root)"),
            );
        }
    }
    if let Some(caps) = p.capabilities {
        b.capabilities = Some(capabilities(&caps, n));
    }
    for (i, r) in p.rlimits.unwrap_or_default().into_iter().enumerate() {
        let lower = r.kind.to_ascii_lowercase();
        let name = lower.strip_prefix("rlimit_").unwrap_or(&lower);
        let field = format!("process.rlimits[{i}]");
        match rlimit_resource(name) {
            None => n.ignored(&field, &format!("unknown resource \"{}\"", r.kind)),
            Some(_) if r.soft > r.hard => n.bad(
                &field,
                format!(
                    "{}: the soft limit {} is above the hard one {}",
                    r.kind, r.soft, r.hard
                ),
            ),
            Some(resource) => {
                b.rlimits.retain(|x| x.resource != resource);
                b.rlimits.push(Rlimit {
                    resource,
                    soft: r.soft,
                    hard: r.hard,
                });
            }
        }
    }
    b.no_new_privs = p.no_new_privileges;
    if let Some(adj) = p.oom_score_adj {
        if (-1000..=1000).contains(&adj) {
            b.oom_score_adjust = Some(adj);
        } else {
            n.bad(
                "process.oomScoreAdj",
                format!("{adj} is out of range (-1000 to 1000)"),
            );
        }
    }
    n.others(
        "process",
        &p.other,
        &[
            ("apparmorProfile", "sentinel loads no AppArmor profiles"),
            ("selinuxLabel", "sentinel sets no SELinux labels"),
            (
                "ioPriority",
                "use the service's ionice key, e.g. ionice = \"best-effort:4\"",
            ),
        ],
    );
}

/// sentinel keeps one capability set for the process (bounding, permitted,
/// effective, inheritable and, for a non-root user, ambient): the bounding
/// set of the file (or permitted, or effective). A set that differs is a
/// warning.
fn capabilities(caps: &spec::Capabilities, n: &mut Notes<'_, '_>) -> Vec<Capability> {
    let sets = [
        ("bounding", &caps.bounding),
        ("permitted", &caps.permitted),
        ("effective", &caps.effective),
        ("inheritable", &caps.inheritable),
        ("ambient", &caps.ambient),
    ];
    let Some((base_name, base)) = sets
        .iter()
        .take(3)
        .find_map(|(name, s)| s.as_ref().map(|s| (*name, s)))
    else {
        return Vec::new();
    };
    let parse = |list: &[String]| -> (Vec<Capability>, Vec<String>) {
        let mut ok = Vec::new();
        let mut unknown = Vec::new();
        for c in list {
            match Capability::from_name(c) {
                Ok(cap) if !ok.contains(&cap) => ok.push(cap),
                Ok(_) => {}
                Err(_) => unknown.push(c.clone()),
            }
        }
        ok.sort();
        (ok, unknown)
    };
    let (kept, unknown) = parse(base);
    for u in unknown {
        n.ignored(
            &format!("process.capabilities.{base_name} \"{u}\""),
            "a capability sentinel does not know",
        );
    }
    for (name, set) in sets {
        let Some(set) = set else { continue };
        if name == base_name {
            continue;
        }
        let (other, _) = parse(set);
        if other != kept {
            n.ignored(
                &format!("process.capabilities.{name}"),
                &format!(
                    "it differs from {base_name}, and sentinel keeps one set: the {base_name} one"
                ),
            );
        }
    }
    n.others("process.capabilities", &caps.other, &[]);
    kept
}

/// `linux.namespaces`, `uidMappings`, `gidMappings`.
fn linux_namespaces(l: &spec::Linux, b: &mut Bundle, n: &mut Notes<'_, '_>) {
    for (i, ns) in l.namespaces.iter().flatten().enumerate() {
        let name = match ns.kind.as_str() {
            "pid" | "ipc" | "uts" | "user" | "cgroup" | "mount" => ns.kind.as_str(),
            "network" => "net",
            other => {
                n.ignored(
                    &format!("linux.namespaces[{i}] ({other})"),
                    "sentinel makes pid, network, mount, ipc, uts, user and cgroup namespaces",
                );
                continue;
            }
        };
        if let Some(path) = &ns.path {
            n.ignored(
                &format!("linux.namespaces[{i}].path"),
                &format!("joining {path} is not supported: the service gets a new {name} namespace instead"),
            );
        }
        if !b.namespaces.iter().any(|x| x == name) {
            b.namespaces.push(name.to_string());
        }
    }
    if !b.namespaces.iter().any(|x| x == "mount") {
        b.namespaces.push("mount".to_string());
    }
    for (field, maps, out) in [
        ("linux.uidMappings", &l.uid_mappings, &mut b.uid_map),
        ("linux.gidMappings", &l.gid_mappings, &mut b.gid_map),
    ] {
        for (i, m) in maps.iter().flatten().enumerate() {
            let text = format!("{} {} {}", m.container_id, m.host_id, m.size);
            match IdMap::parse(&text) {
                Ok(map) => out.push(map),
                Err(why) => n.bad(&format!("{field}[{i}]"), why),
            }
        }
    }
}

/// `linux.resources`, `maskedPaths`, `readonlyPaths` and the rest of `linux`.
fn linux_rest(l: spec::Linux, b: &mut Bundle, n: &mut Notes<'_, '_>) {
    if let Some(r) = l.resources {
        if let Some(m) = r.memory {
            b.limits.memory_max = m.limit.filter(|&v| v > 0).map(|v| v as u64);
            n.others("linux.resources.memory", &m.other, &[]);
        }
        if let Some(c) = r.cpu {
            if let Some(quota) = c.quota.filter(|&q| q > 0) {
                let cpu = CpuMax {
                    quota_us: quota as u64,
                    period_us: c.period.unwrap_or(100_000),
                };
                if !(1_000..=1_000_000).contains(&cpu.period_us) || cpu.quota_us < 1_000 {
                    n.bad(
                        "linux.resources.cpu",
                        format!(
                            "quota {} / period {} µs: the period must be 1000 to 1000000 and \
                             the quota at least 1000",
                            cpu.quota_us, cpu.period_us
                        ),
                    );
                } else {
                    b.limits.cpu_max = Some(cpu);
                }
            } else if c.period.is_some() {
                n.ignored("linux.resources.cpu.period", "no quota goes with it");
            }
            n.others(
                "linux.resources.cpu",
                &c.other,
                &[("shares", "use limits.cpu_weight")],
            );
        }
        if let Some(p) = r.pids {
            b.limits.pids_max = (p.limit > 0).then_some(p.limit as u64);
        }
        let deny_all = |d: &spec::DeviceRule| {
            !d.allow
                && d.kind.as_deref().map_or(true, |t| t == "a")
                && d.major.is_none()
                && d.minor.is_none()
                && d.access.as_deref().map_or(true, |a| a == "rwm")
        };
        // Denying every device is what the minimal /dev gives anyway.
        let devices = r.devices.unwrap_or_default();
        if !devices.iter().all(deny_all) {
            n.ignored(
                "linux.resources.devices",
                "the service sees sentinel's minimal /dev: null, zero, full, random, urandom, tty, pts, shm, mqueue",
            );
        }
        n.others(
            "linux.resources",
            &r.other,
            &[
                ("blockIO", "use limits.io_weight and limits.io_max"),
                ("hugepageLimits", ""),
            ],
        );
    }
    for (field, list, out) in [
        ("linux.maskedPaths", l.masked_paths, &mut b.mounts.masked),
        (
            "linux.readonlyPaths",
            l.readonly_paths,
            &mut b.mounts.read_only,
        ),
    ] {
        for (i, p) in list.unwrap_or_default().into_iter().enumerate() {
            if p.starts_with('/') && !p.split('/').any(|c| c == "..") {
                out.push(PathBuf::from(p));
            } else {
                n.bad(
                    &format!("{field}[{i}]"),
                    format!("\"{p}\" must be an absolute path without \"..\""),
                );
            }
        }
    }
    n.others(
        "linux",
        &l.other,
        &[
            (
                "seccomp",
                "sentinel's own seccomp keys apply: isolation.seccomp",
            ),
            (
                "devices",
                "the service sees sentinel's minimal /dev: null, zero, full, random, urandom, tty, pts, shm, mqueue",
            ),
            ("cgroupsPath", "sentinel puts each service in its own cgroup"),
            (
                "rootfsPropagation",
                "mounts in the service's namespace are private",
            ),
            ("mountLabel", "sentinel sets no SELinux labels"),
            ("sysctl", ""),
        ],
    );
}

/// One entry of `mounts`.
fn mount(dir: &Path, i: usize, m: spec::Mount, b: &mut Bundle, n: &mut Notes<'_, '_>) {
    let field = format!("mounts[{i}]");
    let dest = m.destination.trim_end_matches('/');
    let dest = if dest.is_empty() { "/" } else { dest };
    if !dest.starts_with('/') || dest.split('/').any(|c| c == "..") || dest == "/" {
        n.bad(
            &format!("{field}.destination"),
            format!(
                "\"{}\" must be an absolute path below / without \"..\"",
                m.destination
            ),
        );
        return;
    }
    n.others(&field, &m.other, &[]);
    let opts = m.options.unwrap_or_default();
    let is_bind = opts.iter().any(|o| o == "bind" || o == "rbind");
    let kind = m
        .kind
        .as_deref()
        .unwrap_or(if is_bind { "bind" } else { "" });
    let target = PathBuf::from(dest);
    let what = format!("{field} ({kind} on {dest})");
    let kind = match kind {
        // sentinel mounts a fresh /proc and a minimal /dev itself.
        "proc" if dest == "/proc" => return,
        "tmpfs" if dest == "/dev" => return,
        "tmpfs" => MountKind::Tmpfs,
        "sysfs" => MountKind::Sysfs,
        "devpts" => MountKind::Devpts,
        "mqueue" => MountKind::Mqueue,
        "cgroup" | "cgroup2" => {
            n.ignored(
                &what,
                "sentinel manages the service's cgroup itself; with the cgroup namespace \
                 /proc/self/cgroup shows only the service's own group",
            );
            return;
        }
        _ if is_bind || kind == "bind" || kind == "none" => {
            let Some(src) = m.source.filter(|s| !s.is_empty()) else {
                n.bad(&field, "a bind mount needs a source".to_string());
                return;
            };
            let source = dir.join(&src);
            if let Err(e) = std::fs::metadata(&source) {
                n.bad(
                    &format!("{field}.source"),
                    format!(
                        "\"{}\": {}; create it or fix the path (relative paths are taken from the bundle folder)",
                        source.display(),
                        io_reason(&e)
                    ),
                );
                return;
            }
            MountKind::Bind {
                source,
                recursive: opts.iter().any(|o| o == "rbind"),
            }
        }
        other => {
            n.ignored(
                &what,
                &format!(
                    "sentinel mounts tmpfs, sysfs, devpts, mqueue and bind mounts, not \"{other}\""
                ),
            );
            return;
        }
    };
    let mut flags: libc::c_ulong = 0;
    let mut read_only = false;
    let mut data: Vec<&str> = Vec::new();
    for o in &opts {
        match o.as_str() {
            "ro" => read_only = true,
            "nosuid" => flags |= libc::MS_NOSUID,
            "nodev" => flags |= libc::MS_NODEV,
            "noexec" => flags |= libc::MS_NOEXEC,
            "noatime" => flags |= libc::MS_NOATIME,
            "nodiratime" => flags |= libc::MS_NODIRATIME,
            "relatime" => flags |= libc::MS_RELATIME,
            "strictatime" => flags |= libc::MS_STRICTATIME,
            "sync" => flags |= libc::MS_SYNCHRONOUS,
            "dirsync" => flags |= libc::MS_DIRSYNC,
            // Defaults, and what sentinel does anyway (private propagation).
            "rw" | "suid" | "dev" | "exec" | "atime" | "diratime" | "async" | "bind" | "rbind"
            | "private" | "rprivate" => {}
            "newinstance" => data.push(o),
            _ if o.contains('=') => data.push(o),
            other => n.ignored(&format!("{what} option \"{other}\""), ""),
        }
    }
    let data = match kind {
        MountKind::Bind { .. } if !data.is_empty() => {
            n.ignored(
                &format!("{what} options \"{}\"", data.join(",")),
                "a bind mount takes no file system options",
            );
            None
        }
        _ if data.is_empty() => None,
        _ => Some(data.join(",")),
    };
    b.mounts.mounts.push(oci::Mount {
        target,
        kind,
        flags,
        data,
        read_only,
    });
}

/// `workdir` of a service with a bundle: a path inside the new root
/// (absolute, checked when the service starts, not on the host).
pub(in crate::config) fn workdir(name: &str, w: &str, ctx: &mut Ctx<'_>) -> PathBuf {
    if !w.starts_with('/') {
        ctx.at(
            &KeyPath::new(&["services", name, "workdir"]),
            format!("\"{w}\" is relative; with a bundle, workdir is a path inside its root, like \"/app\""),
        );
    }
    PathBuf::from(w)
}

/// Give `svc` what the bundle sets and the service does not.
pub(in crate::config) fn apply(b: Bundle, svc: &mut ServiceConfig, ctx: &mut Ctx<'_>) {
    let set = &b.set;
    if !set.command {
        if b.args.is_empty() {
            ctx.at_key_of(
                &b.key,
                format!(
                    "{}: config.json has no process.args, and the service no `command`; \
                     add command = [\"/app\", \"--flag\"] (a path inside the bundle's root)",
                    b.head
                ),
            );
        }
        svc.command = b.args;
    }
    let mut env = b.env;
    for (k, v) in std::mem::take(&mut svc.env) {
        match env.iter_mut().find(|(ek, _)| *ek == k) {
            Some(slot) => slot.1 = v,
            None => env.push((k, v)),
        }
    }
    svc.env = env;
    if !set.clear_env {
        svc.clear_env = true;
    }
    if !set.workdir {
        svc.workdir = b.cwd;
    }
    let iso = &mut svc.isolation;
    if let Some((uid, gid, groups)) = b.user {
        if !set.user {
            iso.user = Some(UserSpec {
                user: IdSpec::Id(uid),
                group: Some(IdSpec::Id(gid)),
            });
        }
        if !set.groups && !set.user {
            iso.supplementary_groups = groups.into_iter().map(IdSpec::Id).collect();
        }
    }
    if !set.hostname {
        if let Some(h) = b.hostname {
            if iso.namespaces.uts {
                iso.hostname = Some(h);
            } else {
                warn(
                    ctx,
                    &b.key,
                    format!(
                        "{}: config.json hostname \"{h}\" needs the uts namespace, which \
                         the service does not have; ignored",
                        b.head
                    ),
                );
            }
        }
    }
    if iso.namespaces.user {
        if !set.uid_map && iso.uid_map.is_empty() {
            iso.uid_map = b.uid_map;
        }
        if !set.gid_map && iso.gid_map.is_empty() {
            iso.gid_map = b.gid_map;
        }
    }
    for r in b.rlimits {
        if !set.rlimits.contains(&r.resource) {
            iso.rlimits.push(r);
        }
    }
    iso.rlimits.sort_by_key(|r| r.resource);
    if !set.no_new_privs {
        if let Some(v) = b.no_new_privs {
            iso.no_new_privs = v;
        }
    }
    if !set.capabilities && b.capabilities.is_some() {
        iso.capabilities = b.capabilities;
    }
    if !set.oom_score_adjust && b.oom_score_adjust.is_some() {
        iso.oom_score_adjust = b.oom_score_adjust;
    }
    if !set.limits {
        iso.limits = b.limits;
    }
    if !set.root {
        iso.root = b.root;
    }
    let mut mounts = b.mounts;
    if !iso.namespaces.ipc {
        let head = b.head.clone();
        mounts.mounts.retain(|m| {
            if m.kind != MountKind::Mqueue {
                return true;
            }
            warn(
                ctx,
                &b.key,
                format!(
                    "{head}: config.json mqueue mount on {} needs the ipc namespace, which the \
                     service does not have; ignored",
                    m.target.display()
                ),
            );
            false
        });
    }
    iso.oci_mounts = Some(mounts);
    if !set.stop_signal {
        if let Some(s) = b.stop_signal {
            svc.stop_signal = s;
        }
    }
}
