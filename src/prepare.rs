//! Prepare before fork: everything a service's child needs, computed once in
//! the parent — the resolved identity, the environment, the compiled seccomp
//! program, the isolation steps, the spawn plan and the cgroup leaf.
//!
//! Every failure names the service and says what to change.

use std::path::{Path, PathBuf};

use crate::cgroup::{self, Controller, Hierarchy, Leaf};
use crate::config::{Isolation, Limits, SliceConfig};

/// The cgroup tree sentinel uses, when cgroup v2 with controllers is here.
pub struct Cgroups {
    pub hierarchy: Hierarchy,
    pub enabled: Vec<Controller>,
}

/// Find and set up cgroup v2 under `cgroup_root`. `Ok(None, why)` when no
/// controller is available (a hybrid host, an undelegated container):
/// services then run without their own groups, and `why` says so once.
pub fn cgroups(cgroup_root: &str) -> (Option<Cgroups>, Vec<String>) {
    let mut notes = Vec::new();
    let h = match Hierarchy::discover(cgroup_root) {
        Ok(h) => h,
        Err(e) => {
            notes.push(format!(
                "cgroup v2 not usable ({e}); services run without their own cgroups"
            ));
            return (None, notes);
        }
    };
    let available = match h.available_controllers() {
        Ok(a) => a,
        Err(e) => {
            notes.push(format!(
                "cgroup v2 not usable ({e}); services run without their own cgroups"
            ));
            return (None, notes);
        }
    };
    if available.is_empty() {
        notes.push(format!(
            "cgroup v2 at {} offers no controllers (memory, cpu, io, pids); services run without \
             their own cgroups, and limits cannot be applied",
            h.mount.display()
        ));
        return (None, notes);
    }
    let setup = match h.setup(&available) {
        Ok(s) => s,
        Err(e) => {
            notes.push(format!(
                "cgroup setup under {} failed: {e}; services run without their own cgroups",
                h.base.display()
            ));
            return (None, notes);
        }
    };
    for (c, why) in &setup.unavailable {
        notes.push(format!("cgroup controller {c} unavailable: {why}"));
    }
    match h.cleanup_stale() {
        Ok(left) => {
            for p in left {
                let _ = cgroup::kill(&p);
                notes.push(format!(
                    "killed processes left in {} by an earlier run",
                    p.display()
                ));
            }
        }
        Err(e) => notes.push(format!("cleaning stale cgroups: {e}")),
    }
    (
        Some(Cgroups {
            hierarchy: h,
            enabled: setup.enabled,
        }),
        notes,
    )
}

/// A service ready to spawn.
pub struct Prepared {
    pub plan: sys::spawn::Plan,
    pub leaf: Option<Leaf>,
    pub warnings: Vec<String>,
}

/// The slices from the outermost to the service's own.
fn slice_chain<'a>(
    slice: Option<&'a str>,
    slices: &'a [(String, SliceConfig)],
) -> Vec<(&'a str, &'a Limits)> {
    let mut chain = Vec::new();
    let mut next = slice;
    while let Some(name) = next {
        let Some((n, cfg)) = slices.iter().find(|(n, _)| n == name) else {
            break;
        };
        chain.push((n.as_str(), &cfg.limits));
        next = cfg.parent.as_deref();
        if chain.len() > slices.len() {
            break; // a cycle; `check` refuses those
        }
    }
    chain.reverse();
    chain
}

fn names(cs: &[Controller]) -> String {
    cs.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
}

/// Everything one child needs. `name`: the service (or `exec`), `env`: the
/// complete environment before identity variables, `runtime_dir`: where
/// sentinel may create its helper files.
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    name: &str,
    argv: &[String],
    mut env: Vec<(String, String)>,
    workdir: Option<&Path>,
    iso: &Isolation,
    slices: &[(String, SliceConfig)],
    cgroups: Option<&Cgroups>,
    runtime_dir: &Path,
    session: sys::spawn::Session,
    instance: Option<u32>,
) -> Result<Prepared, String> {
    let mut warnings = Vec::new();
    let fail = |what: String| format!("service {name}: {what}");

    // Identity, from the files (never NSS); the rootfs's own with `root`.
    let (passwd, group) = crate::users::files_under(iso.root.as_deref());
    let ids = match &iso.user {
        Some(spec) => {
            let id = crate::users::resolve(spec, &iso.supplementary_groups, &passwd, &group)
                .map_err(fail)?;
            // What a login would set, unless the service sets them itself.
            let mut set = |k: &str, v: String| {
                if !env.iter().any(|(ek, _)| ek == k)
                    || k == "USER"
                    || k == "LOGNAME"
                    || k == "HOME"
                {
                    env.retain(|(ek, _)| ek != k);
                    env.push((k.to_string(), v));
                }
            };
            if let Some(n) = &id.name {
                set("USER", n.clone());
                set("LOGNAME", n.clone());
            }
            if let Some(h) = &id.home {
                set("HOME", h.to_string_lossy().into_owned());
            }
            Some(sys::spawn::Ids {
                uid: id.uid,
                gid: id.gid,
                groups: id.groups,
            })
        }
        None if !iso.supplementary_groups.is_empty() => {
            let groups =
                crate::users::resolve_groups(&iso.supplementary_groups, &group).map_err(fail)?;
            Some(sys::spawn::Ids {
                uid: nix::unistd::geteuid().as_raw(),
                gid: nix::unistd::getegid().as_raw(),
                groups,
            })
        }
        None => None,
    };

    let seccomp = match &iso.seccomp {
        Some(s) => vec![crate::seccomp::compile(s)
            .map_err(|e| fail(format!("seccomp: {e}")))?
            .instructions()
            .to_vec()],
        None => Vec::new(),
    };

    let inaccessible = runtime_dir.join(".sentinel-inaccessible");
    if !iso.inaccessible_paths.is_empty() && !inaccessible.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o000)
            .open(&inaccessible)
            .map_err(|e| fail(format!("create {}: {e}", inaccessible.display())))?;
    }
    if let (Some(root), Some(m)) = (&iso.root, &iso.oci_mounts) {
        crate::oci::prepare(root, m, workdir, &inaccessible).map_err(fail)?;
    }
    let setup = crate::isolate::setup(iso, ids, seccomp, &inaccessible).map_err(fail)?;
    let workdir = workdir.map(|w| w.to_string_lossy().into_owned());
    let plan = sys::spawn::Plan::new(argv, &env, workdir.as_deref(), session)
        .map_err(|e| fail(e.to_string()))?
        .with_setup(setup);

    // The cgroup leaf: <base>/<slices...>/<service>/<instance> (0 without
    // instances). With instances, the limits are each instance's own: on
    // the leaf, not on the service's group.
    let chain = slice_chain(iso.slice.as_deref(), slices);
    let mut needed: Vec<Controller> = cgroup::controllers_needed(&iso.limits);
    for (_, l) in &chain {
        needed.extend(cgroup::controllers_needed(l));
    }
    needed.sort_by_key(|c| c.name());
    needed.dedup();
    let leaf = match cgroups {
        Some(cg) => {
            let missing: Vec<Controller> = needed
                .iter()
                .copied()
                .filter(|c| !cg.enabled.contains(c))
                .collect();
            let (limits, chain_limits): (Limits, Vec<Limits>) = if missing.is_empty() {
                (
                    iso.limits.clone(),
                    chain.iter().map(|(_, l)| (*l).clone()).collect(),
                )
            } else if iso.limits_optional {
                warnings.push(fail(format!(
                    "limits needing {} are not applied: those controllers are not available here",
                    names(&missing)
                )));
                (
                    cgroup::limits_within(&iso.limits, &cg.enabled),
                    chain
                        .iter()
                        .map(|(_, l)| cgroup::limits_within(l, &cg.enabled))
                        .collect(),
                )
            } else {
                return Err(fail(format!(
                    "its limits need the cgroup controllers {}, which are not available under {}; \
                     delegate them, or set limits_optional = true to run without these limits",
                    names(&missing),
                    cg.hierarchy.base.display()
                )));
            };
            let named: Vec<(&str, &Limits)> = chain
                .iter()
                .map(|(n, _)| *n)
                .zip(chain_limits.iter())
                .collect();
            match instance {
                None => Some(
                    cg.hierarchy
                        .create(&cg.enabled, &named, name, &limits, "0")
                        .map_err(|e| fail(format!("cgroup: {e}")))?,
                ),
                Some(k) => {
                    let leaf = cg
                        .hierarchy
                        .create(
                            &cg.enabled,
                            &named,
                            name,
                            &Limits::default(),
                            &k.to_string(),
                        )
                        .map_err(|e| fail(format!("cgroup: {e}")))?;
                    cgroup::write_limits(leaf.path(), &limits)
                        .map_err(|e| fail(format!("cgroup: {e}")))?;
                    Some(leaf)
                }
            }
        }
        None if !needed.is_empty() && !iso.limits_optional => {
            return Err(fail(format!(
                "its limits need cgroup v2 controllers ({}), and none are available on this host; \
                 set limits_optional = true to run without these limits",
                names(&needed)
            )));
        }
        None => {
            if !needed.is_empty() {
                warnings.push(fail(
                    "limits are not applied: no cgroup v2 controllers here".to_string(),
                ));
            }
            None
        }
    };
    Ok(Prepared {
        plan,
        leaf,
        warnings,
    })
}

/// Where sentinel keeps helper files next to its control socket.
pub fn runtime_dir(socket: &Path) -> PathBuf {
    socket
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_chain_goes_outermost_first() {
        let slices = vec![
            (
                "inner".to_string(),
                SliceConfig {
                    parent: Some("outer".into()),
                    limits: Limits::default(),
                },
            ),
            (
                "outer".to_string(),
                SliceConfig {
                    parent: None,
                    limits: Limits {
                        pids_max: Some(5),
                        ..Default::default()
                    },
                },
            ),
        ];
        let chain = slice_chain(Some("inner"), &slices);
        let names: Vec<&str> = chain.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["outer", "inner"]);
        assert_eq!(chain[0].1.pids_max, Some(5));
        assert!(slice_chain(None, &slices).is_empty());
    }

    /// `true` as service `web` with `iso`, no cgroups.
    fn prepare_web(iso: &Isolation) -> Result<Prepared, String> {
        let dir = std::env::temp_dir();
        prepare(
            "web",
            &["true".into()],
            vec![],
            None,
            iso,
            &[],
            None,
            &dir,
            sys::spawn::Session::New,
            None,
        )
    }

    #[test]
    fn limits_without_controllers_are_an_error_unless_optional() {
        let mut iso = Isolation {
            limits: Limits {
                memory_max: Some(1 << 20),
                ..Default::default()
            },
            ..Default::default()
        };
        let err = prepare_web(&iso).err().unwrap();
        assert!(
            err.starts_with("service web: its limits need cgroup v2 controllers (memory)"),
            "{err}"
        );
        assert!(err.contains("limits_optional = true"), "{err}");
        iso.limits_optional = true;
        let p = prepare_web(&iso).unwrap();
        assert!(p.leaf.is_none());
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn unknown_user_is_named() {
        let iso = Isolation {
            user: Some(crate::config::UserSpec {
                user: crate::config::IdSpec::Name("no-such-user-xyz".into()),
                group: None,
            }),
            ..Default::default()
        };
        let err = prepare_web(&iso).err().unwrap();
        assert!(
            err.starts_with("service web: unknown user \"no-such-user-xyz\""),
            "{err}"
        );
    }
}
