//! The isolation half of `build` (issue 3): `cgroup_root`, `[slices.NAME]`
//! and a service's cgroup, priorities, rlimits, identity, namespaces,
//! mounts, capabilities and seccomp, each checked against the others.

use super::super::isolation::{
    check_cgroup_path, check_hostname, check_syscall_name, rlimit_resource, ArgCondition, ArgOp,
    Capability, IdMap, IdSpec, IoMax, Isolation, Limits, Namespaces, Rlimit, Seccomp,
    SeccompAction, SeccompRule, SliceConfig,
};
use super::super::node::suggest;
use super::super::raw::{
    Ordered, RawDeny, RawIsolation, RawLimits, RawOp, RawSeccomp, RawService, RawSlice,
};
use super::{check_name, io_reason, Ctx, KeyPath};
use crate::config::ServiceConfig;
use std::path::PathBuf;

/// The default `supervisor.cgroup_root`.
const DEFAULT_CGROUP_ROOT: &str = "sentinel";

/// The name of sentinel's own group under the cgroup root.
const SUPERVISOR_CGROUP: &str = "supervisor";

pub(super) fn cgroup_root(raw: Option<String>, ctx: &mut Ctx<'_>) -> String {
    match raw {
        None => DEFAULT_CGROUP_ROOT.to_string(),
        Some(path) => {
            if let Err(why) = check_cgroup_path(&path) {
                ctx.at_value(&["supervisor", "cgroup_root"], why);
            }
            path
        }
    }
}

/// `[slices.NAME]`, in file order: names, parents (which must exist and
/// not loop), limits.
pub(super) fn slices(
    raw: Option<Ordered<RawSlice>>,
    ctx: &mut Ctx<'_>,
) -> Vec<(String, SliceConfig)> {
    let raw = raw.map(|r| r.0).unwrap_or_default();
    let mut slices = Vec::new();
    for (name, raw) in raw {
        let path = KeyPath::new(&["slices", &name]);
        if let Err(why) = check_name(&name) {
            ctx.at_key_of(&path, format!("invalid slice name: {why}"));
        }
        let (parent, raw_limits) = raw.split();
        let limits = limits(&raw_limits, &path, ctx);
        slices.push((name, SliceConfig { parent, limits }));
    }
    let names: Vec<&str> = slices.iter().map(|(n, _)| n.as_str()).collect();
    for (name, slice) in &slices {
        let path = KeyPath::new(&["slices", name, "parent"]);
        if let Some(parent) = &slice.parent {
            if !names.contains(&parent.as_str()) && !ctx.pruned(&["slices", parent]) {
                ctx.at(&path, unknown_slice(parent, &names, ctx.yaml));
            }
        }
        if slice.parent.is_none() && name == SUPERVISOR_CGROUP {
            ctx.at_key_of(
                &KeyPath::new(&["slices", name]),
                format!(
                    "a top-level slice cannot be called \"{SUPERVISOR_CGROUP}\": sentinel's own cgroup has that name; choose another"
                ),
            );
        }
    }
    // Loops: report each once, at the first of its slices in the file.
    for (i, (name, _)) in slices.iter().enumerate() {
        let mut chain = vec![i];
        let mut at = i;
        let looped = loop {
            let Some(parent) = &slices[at].1.parent else {
                break false;
            };
            let Some(next) = slices.iter().position(|(n, _)| n == parent) else {
                break false;
            };
            if next == i {
                break true;
            }
            if chain.contains(&next) {
                // A loop further up; its own first slice reports it.
                break false;
            }
            chain.push(next);
            at = next;
        };
        if looped && chain.iter().all(|&j| j >= i) {
            let mut names: Vec<&str> = chain.iter().map(|&j| slices[j].0.as_str()).collect();
            names.push(name);
            let message = if chain.len() == 1 {
                format!("slice \"{name}\" is its own parent; remove `parent` or name another slice")
            } else {
                format!(
                    "the slices nest in a loop: {}; remove one of these parents",
                    names.join(" → ")
                )
            };
            ctx.at(&KeyPath::new(&["slices", name, "parent"]), message);
        }
    }
    slices
}

fn unknown_slice(name: &str, known: &[&str], yaml: bool) -> String {
    let define = if yaml {
        format!("define it under slices: {{{name}: {{...}}}}")
    } else {
        format!("define it with [slices.{name}]")
    };
    match suggest(name, known) {
        Some(s) => format!("unknown slice \"{name}\"; did you mean \"{s}\"? (or {define})"),
        None => format!("unknown slice \"{name}\"; {define}"),
    }
}

/// Slices and services become cgroup folders side by side: a slice's
/// children (or the root's) must have different names.
pub(super) fn cgroup_names(
    slices: &[(String, SliceConfig)],
    services: &[(String, ServiceConfig)],
    ctx: &mut Ctx<'_>,
) {
    for (name, svc) in services {
        let parent = &svc.isolation.slice;
        if let Some((slice, _)) = slices
            .iter()
            .find(|(s, cfg)| s == name && cfg.parent == *parent)
        {
            let under = match parent {
                Some(p) => format!("slice \"{p}\""),
                None => "the cgroup root".to_string(),
            };
            ctx.at_key(
                &["slices", slice],
                format!(
                    "slice \"{slice}\" and service \"{name}\" would share one cgroup under {under}; rename one of them"
                ),
            );
        }
    }
}

/// A size as a person would write it: `"24M"`.
fn show_size(n: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// `limits = { ... }` or the limit keys of a slice, under `path`.
fn limits(raw: &RawLimits, path: &KeyPath, ctx: &mut Ctx<'_>) -> Limits {
    let weight = |w: Option<super::super::raw::Ranged<1, 10000>>| w.map(|w| w.0 as u32);
    let limits = Limits {
        memory_max: raw.memory_max.and_then(|m| m.0),
        memory_high: raw.memory_high.and_then(|m| m.0),
        memory_swap_max: raw.memory_swap_max.and_then(|m| m.0),
        cpu_max: raw.cpu_max.and_then(|c| c.0),
        cpu_weight: weight(raw.cpu_weight),
        pids_max: raw.pids_max.and_then(|p| p.0),
        io_weight: weight(raw.io_weight),
        io_max: io_max(raw, path, ctx),
    };
    if let (Some(high), Some(max)) = (limits.memory_high, limits.memory_max) {
        if high > max {
            ctx.at(
                &path.k("memory_high"),
                format!(
                    "memory_high ({}) is above memory_max ({}), so it would never throttle; lower memory_high or raise memory_max",
                    show_size(high),
                    show_size(max)
                ),
            );
        }
    }
    if limits.pids_max == Some(0) {
        ctx.at(
            &path.k("pids_max"),
            "0 processes leaves no room for the service itself; give at least 1, or \"max\""
                .to_string(),
        );
    }
    limits
}

fn io_max(raw: &RawLimits, path: &KeyPath, ctx: &mut Ctx<'_>) -> Vec<IoMax> {
    let mut all: Vec<IoMax> = Vec::new();
    for (i, io) in raw.io_max.iter().flatten().enumerate() {
        let item = path.k("io_max").i(i);
        if let Err(why) = check_device(&io.device) {
            ctx.at(&item.k("device"), why);
        }
        if all.iter().any(|o| o.device == io.device) {
            ctx.at(
                &item.k("device"),
                format!(
                    "device \"{}\" is listed twice in io_max; merge the two entries",
                    io.device
                ),
            );
        }
        let one = IoMax {
            device: io.device.clone(),
            rbps: io.rbps.and_then(|v| v.0),
            wbps: io.wbps.and_then(|v| v.0),
            riops: io.riops.and_then(|v| v.0),
            wiops: io.wiops.and_then(|v| v.0),
        };
        let none_written =
            io.rbps.is_none() && io.wbps.is_none() && io.riops.is_none() && io.wiops.is_none();
        if none_written {
            ctx.at(
                &item,
                format!(
                    "no limit for device \"{}\"; add rbps, wbps (bytes per second) or riops, wiops (operations per second)",
                    io.device
                ),
            );
        }
        all.push(one);
    }
    all
}

/// `"/dev/vda"` or `"254:0"`.
fn check_device(device: &str) -> Result<(), String> {
    if device.starts_with('/') {
        return Ok(());
    }
    let numbers = device.split_once(':').is_some_and(|(maj, min)| {
        !maj.is_empty()
            && !min.is_empty()
            && maj.parse::<u32>().is_ok()
            && min.parse::<u32>().is_ok()
    });
    if numbers {
        Ok(())
    } else {
        Err(format!(
            "invalid device \"{device}\"; give a block device's path like \"/dev/vda\" or its numbers like \"254:0\""
        ))
    }
}

/// The isolation keys of service `name`.
pub(super) fn service(
    name: &str,
    raw: &RawService,
    slices: &[(String, SliceConfig)],
    ctx: &mut Ctx<'_>,
) -> Isolation {
    let svc = KeyPath::new(&["services", name]);
    if let Some(slice) = &raw.slice {
        let names: Vec<&str> = slices.iter().map(|(n, _)| n.as_str()).collect();
        if !names.contains(&slice.as_str()) && !ctx.pruned(&["slices", slice]) {
            ctx.at(&svc.k("slice"), unknown_slice(slice, &names, ctx.yaml));
        }
    }
    let limits = raw
        .limits
        .as_ref()
        .map(|l| limits(l, &svc.k("limits"), ctx))
        .unwrap_or_default();

    let mut rlimits: Vec<Rlimit> = raw
        .rlimits
        .as_ref()
        .map(|r| r.entries())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(n, soft, hard)| {
            rlimit_resource(n).map(|resource| Rlimit {
                resource,
                soft,
                hard,
            })
        })
        .collect();
    rlimits.sort_by_key(|r| r.resource);

    let mut supplementary_groups: Vec<IdSpec> = Vec::new();
    for g in raw.supplementary_groups.iter().flatten() {
        if !supplementary_groups.contains(&g.0) {
            supplementary_groups.push(g.0.clone());
        }
    }

    let mut iso = Isolation {
        slice: raw.slice.clone(),
        limits,
        limits_optional: raw.limits_optional.unwrap_or(false),
        nice: raw.nice.map(|n| n.0 as i32),
        ionice: raw.ionice.map(|i| i.0),
        oom_score_adjust: raw.oom_score_adjust.map(|n| n.0 as i32),
        rlimits,
        user: raw.user.as_ref().map(|u| u.0.clone()),
        supplementary_groups,
        ..Isolation::default()
    };
    if let Some(table) = &raw.isolation {
        isolation_table(table, &svc.k("isolation"), &mut iso, ctx);
    }
    iso
}

/// `isolation = { ... }` into `iso`.
fn isolation_table(raw: &RawIsolation, path: &KeyPath, iso: &mut Isolation, ctx: &mut Ctx<'_>) {
    // Namespaces first: the other keys check against them. If the list
    // itself was refused, do not pile "add X to namespaces" on top.
    let ns_path = path.k("namespaces");
    let ns_known = !ctx.pruned_at(&ns_path);
    let mut ns = Namespaces::default();
    for (i, name) in raw.namespaces.iter().flatten().enumerate() {
        let before = ns;
        match ns.add(name) {
            Err(why) => ctx.at(&ns_path.i(i), why),
            Ok(()) if ns == before => ctx.at(
                &ns_path.i(i),
                format!("namespace \"{name}\" is listed twice; remove one"),
            ),
            Ok(()) => {}
        }
    }
    iso.namespaces = ns;
    let needs = |ctx: &mut Ctx<'_>, key: &str, on: bool, ns_name: &str, what: &str| {
        if ns_known && !on {
            ctx.at_key_of(
                &path.k(key),
                format!(
                    "{what} needs the {ns_name} namespace; add \"{ns_name}\" to {}",
                    path_text(&ns_path)
                ),
            );
        }
    };

    if let Some(host) = &raw.hostname {
        if let Err(why) = check_hostname(host) {
            ctx.at(&path.k("hostname"), why);
        }
        needs(ctx, "hostname", ns.uts, "uts", "a hostname of its own");
        iso.hostname = Some(host.clone());
    }

    for (key, maps) in [("uid_map", &raw.uid_map), ("gid_map", &raw.gid_map)] {
        let Some(maps) = maps else { continue };
        let maps: Vec<IdMap> = maps.iter().map(|m| m.0).collect();
        needs(ctx, key, ns.user, "user", &format!("`{key}`"));
        for (i, m) in maps.iter().enumerate() {
            let overlap = maps[..i].iter().find(|o| {
                ranges_overlap(o.inside, m.inside, o.count, m.count)
                    || ranges_overlap(o.outside, m.outside, o.count, m.count)
            });
            if let Some(o) = overlap {
                ctx.at(
                    &path.k(key).i(i),
                    format!(
                        "\"{} {} {}\" overlaps \"{} {} {}\"; the kernel refuses overlapping ranges",
                        m.inside, m.outside, m.count, o.inside, o.outside, o.count
                    ),
                );
            }
        }
        if key == "uid_map" {
            iso.uid_map = maps;
        } else {
            iso.gid_map = maps;
        }
    }

    for (key, list) in [
        ("read_only_paths", &raw.read_only_paths),
        ("inaccessible_paths", &raw.inaccessible_paths),
        ("tmpfs", &raw.tmpfs),
    ] {
        let Some(list) = list else { continue };
        if !list.is_empty() {
            needs(ctx, key, ns.mount, "mount", &format!("`{key}`"));
        }
        let mut paths: Vec<PathBuf> = Vec::new();
        for (i, p) in list.iter().enumerate() {
            if let Err(why) = check_inner_path(p) {
                ctx.at(&path.k(key).i(i), why);
            }
            let p = PathBuf::from(p);
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
        match key {
            "read_only_paths" => iso.read_only_paths = paths,
            "inaccessible_paths" => iso.inaccessible_paths = paths,
            _ => iso.tmpfs = paths,
        }
    }

    if let Some(root) = &raw.root {
        let root_path = path.k("root");
        needs(ctx, "root", ns.mount, "mount", "a new root");
        match check_inner_path(root) {
            Err(why) => ctx.at(&root_path, why),
            Ok(()) => match std::fs::metadata(root) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => ctx.at(
                    &root_path,
                    format!("\"{root}\" is not a directory; give the folder of an unpacked root file system"),
                ),
                Err(e) => ctx.at(
                    &root_path,
                    format!(
                        "\"{root}\": {}; unpack the root file system there or fix the path",
                        io_reason(&e)
                    ),
                ),
            },
        }
        iso.root = Some(PathBuf::from(root));
    }

    if let Some(list) = &raw.capabilities {
        let mut caps: Vec<Capability> = Vec::new();
        for (i, name) in list.iter().enumerate() {
            match Capability::from_name(name) {
                Ok(c) if !caps.contains(&c) => caps.push(c),
                Ok(_) => {}
                Err(why) => ctx.at(&path.k("capabilities").i(i), why),
            }
        }
        iso.capabilities = Some(caps);
    }

    iso.no_new_privs = raw.no_new_privs.unwrap_or(true);

    if let Some(seccomp) = &raw.seccomp {
        iso.seccomp = Some(seccomp_filter(seccomp, &path.k("seccomp"), ctx));
    }
}

/// `a..a+n` and `b..b+m` share an id.
fn ranges_overlap(a: u32, b: u32, n: u32, m: u32) -> bool {
    let (a, b, n, m) = (u64::from(a), u64::from(b), u64::from(n), u64::from(m));
    a < b + m && b < a + n
}

/// `services.web.isolation.namespaces` as written in messages.
fn path_text(path: &KeyPath) -> String {
    super::path_string(&path.0)
}

/// A path inside the service's mount namespace: absolute, no NUL.
fn check_inner_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("empty path; give an absolute path like \"/var/lib/app\"".to_string());
    }
    if p.contains('\0') {
        return Err("a path cannot contain a NUL character".to_string());
    }
    if !p.starts_with('/') {
        return Err(format!(
            "\"{p}\" is relative; give an absolute path like \"/{p}\" (it is taken inside the service's mount namespace)"
        ));
    }
    Ok(())
}

fn seccomp_filter(raw: &RawSeccomp, path: &KeyPath, ctx: &mut Ctx<'_>) -> Seccomp {
    let table = match raw {
        RawSeccomp::Profile(p) => {
            return Seccomp {
                profile: Some(*p),
                default_action: SeccompAction::default(),
                allow: Vec::new(),
                deny: Vec::new(),
            }
        }
        RawSeccomp::Table(t) => t,
    };
    let profile = table.profile.map(|p| p.0);
    if profile.is_none() {
        if table.action.is_some() {
            ctx.at_key_of(
                &path.k("action"),
                "`action` is for syscalls outside a profile's allow-list, and there is no profile; \
                 add profile = \"default\", or give each deny rule its own action"
                    .to_string(),
            );
        }
        if table.allow.as_ref().is_some_and(|a| !a.is_empty()) {
            ctx.at_key_of(
                &path.k("allow"),
                "`allow` adds to a profile's allow-list, and there is no profile (without one, \
                 everything not denied is allowed); add profile = \"default\" or remove `allow`"
                    .to_string(),
            );
        }
        let no_rules = table.deny.as_ref().map_or(true, |d| d.is_empty());
        if no_rules && !ctx.pruned_at(&path.k("deny")) && !ctx.pruned_at(&path.k("profile")) {
            ctx.at_key_of(
                path,
                "this filter blocks nothing; give a profile (\"default\" or \"strict\") or deny rules"
                    .to_string(),
            );
        }
    }

    let mut allow: Vec<String> = Vec::new();
    for (i, name) in table.allow.iter().flatten().enumerate() {
        if let Err(why) = check_syscall_name(name) {
            ctx.at(&path.k("allow").i(i), why);
        }
        if !allow.contains(name) {
            allow.push(name.clone());
        }
    }

    let mut deny: Vec<SeccompRule> = Vec::new();
    for (i, item) in table.deny.iter().flatten().enumerate() {
        let item_path = path.k("deny").i(i);
        let rule = match item {
            RawDeny::Name(name) => {
                if let Err(why) = check_syscall_name(name) {
                    ctx.at(&item_path, why);
                }
                SeccompRule {
                    syscall: name.clone(),
                    action: SeccompAction::default(),
                    args: Vec::new(),
                }
            }
            RawDeny::Rule(r) => {
                if let Err(why) = check_syscall_name(&r.syscall) {
                    ctx.at(&item_path.k("syscall"), why);
                }
                let mut args = Vec::new();
                for (j, a) in r.args.iter().flatten().enumerate() {
                    let arg_path = item_path.k("args").i(j);
                    let op = match a.op.unwrap_or(RawOp::Eq) {
                        RawOp::Eq => ArgOp::Eq,
                        RawOp::Ne => ArgOp::Ne,
                        RawOp::Lt => ArgOp::Lt,
                        RawOp::Le => ArgOp::Le,
                        RawOp::Gt => ArgOp::Gt,
                        RawOp::Ge => ArgOp::Ge,
                        RawOp::MaskedEq => ArgOp::MaskedEq(a.mask.unwrap_or(u64::MAX)),
                    };
                    match (op, a.mask) {
                        (ArgOp::MaskedEq(_), None) => ctx.at(
                            &arg_path,
                            "op \"masked_eq\" needs a mask: it tests (argument & mask) == value; add mask = ..."
                                .to_string(),
                        ),
                        (ArgOp::MaskedEq(_), Some(_)) | (_, None) => {}
                        (_, Some(_)) => ctx.at_key_of(
                            &arg_path.k("mask"),
                            "`mask` is only for op = \"masked_eq\"; remove it or change the op"
                                .to_string(),
                        ),
                    }
                    args.push(ArgCondition {
                        index: a.index.0 as u8,
                        op,
                        value: a.value,
                    });
                }
                SeccompRule {
                    syscall: r.syscall.clone(),
                    action: r.action.map_or_else(SeccompAction::default, |a| a.0),
                    args,
                }
            }
        };
        if rule.args.is_empty() && rule.action != SeccompAction::Allow {
            if let Some(j) = table
                .allow
                .iter()
                .flatten()
                .position(|a| *a == rule.syscall)
            {
                ctx.at(
                    &path.k("allow").i(j),
                    format!(
                        "\"{}\" is both allowed and denied (deny wins); remove it from one list",
                        rule.syscall
                    ),
                );
            }
        }
        deny.push(rule);
    }

    Seccomp {
        profile,
        default_action: table.action.map_or_else(SeccompAction::default, |a| a.0),
        allow,
        deny,
    }
}
