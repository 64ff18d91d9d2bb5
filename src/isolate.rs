//! Prepare a service's isolation before fork: turn `config::Isolation` (plus
//! the resolved identity and the compiled seccomp programs) into the
//! `sys::spawn::Setup` the child executes step by step.
//!
//! Everything that can fail is checked here, in the parent, and named:
//! paths that must exist, strings with NUL bytes, maps without a user
//! namespace.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use sys::spawn::{Caps, Ids, Mount, Setup};

use crate::config::{Isolation, Namespaces};

fn c(s: &str) -> Result<CString, String> {
    sys::spawn::cstring(s).map_err(|e| e.to_string())
}

fn cpath(p: &Path) -> Result<CString, String> {
    c(&p.to_string_lossy())
}

/// `CLONE_NEW*` flags of a namespace set.
pub fn clone_flags(ns: Namespaces) -> i32 {
    let mut f = 0;
    for (on, flag) in [
        (ns.pid, libc::CLONE_NEWPID),
        (ns.net, libc::CLONE_NEWNET),
        (ns.mount, libc::CLONE_NEWNS),
        (ns.ipc, libc::CLONE_NEWIPC),
        (ns.uts, libc::CLONE_NEWUTS),
        (ns.user, libc::CLONE_NEWUSER),
        (ns.cgroup, libc::CLONE_NEWCGROUP),
    ] {
        if on {
            f |= flag;
        }
    }
    f
}

/// Mount flags to keep when remounting a bind mount read-only: a remount
/// must repeat the flags the kernel locked (nosuid, nodev, noexec...).
pub(crate) fn locked_flags(path: &Path) -> libc::c_ulong {
    let Ok(st) = nix::sys::statvfs::statvfs(path) else {
        return 0;
    };
    use nix::sys::statvfs::FsFlags;
    let mut f = 0;
    for (flag, ms) in [
        (FsFlags::ST_NOSUID, libc::MS_NOSUID),
        (FsFlags::ST_NODEV, libc::MS_NODEV),
        (FsFlags::ST_NOEXEC, libc::MS_NOEXEC),
        (FsFlags::ST_NOATIME, libc::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, libc::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.flags().contains(flag) {
            f |= ms;
        }
    }
    f
}

/// `root` + `path` (path is absolute).
fn under(root: Option<&Path>, path: &Path) -> PathBuf {
    match root {
        Some(r) => r.join(path.strip_prefix("/").unwrap_or(path)),
        None => path.to_path_buf(),
    }
}

/// The mounts of a service with a mount namespace, in order.
/// `inaccessible_file`: an empty mode-0000 file to bind over files.
pub fn mount_plan(
    iso: &Isolation,
    ids: Option<&Ids>,
    inaccessible_file: &Path,
) -> Result<Vec<Mount>, String> {
    let mut out = Vec::new();
    if !iso.namespaces.mount {
        return Ok(out);
    }
    let bind = |src: &Path, dst: &Path| -> Result<Mount, String> {
        Ok(Mount {
            source: Some(cpath(src)?),
            target: cpath(dst)?,
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
        })
    };
    // Nothing done in here propagates back to the host.
    out.push(Mount {
        source: None,
        target: c("/")?,
        fstype: None,
        flags: libc::MS_REC | libc::MS_PRIVATE,
        data: None,
    });
    let root = iso.root.as_deref();
    if let Some(r) = root {
        if !r.is_dir() {
            return Err(format!("isolation.root {}: not a directory", r.display()));
        }
        // pivot_root needs a mount point.
        out.push(bind(r, r)?);
        let dev = r.join("dev");
        // A bundle gets a minimal /dev instead of the host's (crate::oci).
        if dev.is_dir() && iso.oci_mounts.is_none() {
            out.push(bind(Path::new("/dev"), &dev)?);
        }
    }
    if iso.namespaces.pid || root.is_some() {
        let proc = under(root, Path::new("/proc"));
        if !proc.is_dir() {
            return Err(format!(
                "{}: missing; a fresh /proc is mounted there",
                proc.display()
            ));
        }
        out.push(Mount {
            source: Some(c("proc")?),
            target: cpath(&proc)?,
            fstype: Some(c("proc")?),
            flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            data: None,
        });
    }
    if let (Some(r), Some(m)) = (root, &iso.oci_mounts) {
        out.extend(crate::oci::mount_plan(r, m, inaccessible_file)?);
    }
    for t in &iso.tmpfs {
        let p = under(root, t);
        if !p.is_dir() {
            return Err(format!("isolation.tmpfs {}: not a directory", p.display()));
        }
        let mut data = "mode=0755".to_string();
        if let Some(ids) = ids {
            data.push_str(&format!(",uid={},gid={}", ids.uid, ids.gid));
        }
        out.push(Mount {
            source: Some(c("tmpfs")?),
            target: cpath(&p)?,
            fstype: Some(c("tmpfs")?),
            flags: libc::MS_NOSUID | libc::MS_NODEV,
            data: Some(c(&data)?),
        });
    }
    for ro in &iso.read_only_paths {
        let p = under(root, ro);
        if !p.exists() {
            return Err(format!(
                "isolation.read_only_paths {}: does not exist",
                p.display()
            ));
        }
        out.push(bind(&p, &p)?);
        out.push(Mount {
            source: None,
            target: cpath(&p)?,
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked_flags(&p),
            data: None,
        });
    }
    for hidden in &iso.inaccessible_paths {
        let p = under(root, hidden);
        let meta = std::fs::symlink_metadata(&p)
            .map_err(|e| format!("isolation.inaccessible_paths {}: {e}", p.display()))?;
        if meta.is_dir() {
            out.push(Mount {
                source: Some(c("tmpfs")?),
                target: cpath(&p)?,
                fstype: Some(c("tmpfs")?),
                flags: libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                data: Some(c("mode=000,size=0")?),
            });
        } else {
            out.push(Mount {
                source: Some(cpath(inaccessible_file)?),
                target: cpath(&p)?,
                fstype: None,
                flags: libc::MS_BIND,
                data: None,
            });
        }
    }
    Ok(out)
}

/// The whole setup of a child. `ids`: the resolved identity (None: stay
/// sentinel's); `seccomp`: compiled programs.
pub fn setup(
    iso: &Isolation,
    ids: Option<Ids>,
    seccomp: Vec<Vec<libc::sock_filter>>,
    inaccessible_file: &Path,
) -> Result<Setup, String> {
    let ns = iso.namespaces;
    let mut s = Setup {
        rlimits: iso
            .rlimits
            .iter()
            .map(|r| (r.resource, r.soft, r.hard))
            .collect(),
        nice: iso.nice,
        ioprio: iso.ionice.map(|p| p.value()),
        oom_score_adj: iso
            .oom_score_adjust
            .map(|v| c(&v.to_string()))
            .transpose()?,
        namespaces: clone_flags(ns),
        hostname: iso.hostname.as_deref().map(c).transpose()?,
        loopback_up: ns.net,
        no_new_privs: iso.no_new_privs,
        seccomp,
        ..Setup::default()
    };
    let mut ids = ids;
    if ns.user {
        // Outside, the service's own uid (or sentinel's); inside, root
        // unless maps say otherwise.
        let outside = ids.as_ref().map(|i| (i.uid, i.gid)).unwrap_or_else(|| {
            (
                nix::unistd::geteuid().as_raw(),
                nix::unistd::getegid().as_raw(),
            )
        });
        let text = |maps: &[crate::config::IdMap], default: u32| -> String {
            if maps.is_empty() {
                format!("0 {default} 1\n")
            } else {
                maps.iter()
                    .map(|m| format!("{} {} {}\n", m.inside, m.outside, m.count))
                    .collect()
            }
        };
        s.uid_map = Some(text(&iso.uid_map, outside.0));
        s.gid_map = Some(text(&iso.gid_map, outside.1));
        if iso.uid_map.is_empty() {
            ids = Some(Ids {
                uid: 0,
                gid: 0,
                groups: Vec::new(),
            });
        }
    }
    s.mounts = mount_plan(iso, ids.as_ref(), inaccessible_file)?;
    if let Some(r) = &iso.root {
        s.pivot_root = Some(cpath(r)?);
    }
    let target_root = ids.as_ref().map_or(true, |i| i.uid == 0);
    let plan = crate::capabilities::plan(
        iso.capabilities.as_deref(),
        target_root,
        crate::capabilities::last_cap(),
    );
    s.caps = (!plan.is_noop()).then(|| Caps {
        keep: plan.keep,
        last_cap: u32::from(plan.last_cap),
        ambient: !plan.ambient.is_empty(),
    });
    s.ids = ids;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Capability, IoClass, IoPriority};

    fn targets(m: &[Mount]) -> Vec<String> {
        m.iter()
            .map(|m| m.target.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn no_mount_namespace_no_mounts() {
        let iso = Isolation {
            read_only_paths: vec!["/usr".into()],
            ..Default::default()
        };
        assert!(mount_plan(&iso, None, Path::new("/dev/null"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn mount_plan_order_and_flags() {
        let mut iso = Isolation::default();
        iso.namespaces.mount = true;
        iso.namespaces.pid = true;
        iso.read_only_paths = vec!["/usr".into()];
        iso.inaccessible_paths = vec!["/root".into(), "/etc/hostname".into()];
        iso.tmpfs = vec!["/tmp".into()];
        let ids = Ids {
            uid: 1000,
            gid: 1000,
            groups: vec![],
        };
        let m = mount_plan(&iso, Some(&ids), Path::new("/run/x")).unwrap();
        assert_eq!(
            targets(&m),
            [
                "/",
                "/proc",
                "/tmp",
                "/usr",
                "/usr",
                "/root",
                "/etc/hostname"
            ]
        );
        assert_eq!(m[0].flags, libc::MS_REC | libc::MS_PRIVATE);
        assert_eq!(m[2].data.as_deref(), Some(c"mode=0755,uid=1000,gid=1000"));
        assert!(m[4].flags & libc::MS_RDONLY != 0 && m[4].flags & libc::MS_REMOUNT != 0);
        assert_eq!(m[5].fstype.as_deref(), Some(c"tmpfs"));
        assert_eq!(m[6].source.as_deref(), Some(c"/run/x"));
    }

    #[test]
    fn missing_paths_are_named() {
        let mut iso = Isolation::default();
        iso.namespaces.mount = true;
        iso.read_only_paths = vec!["/no/such/path".into()];
        let e = mount_plan(&iso, None, Path::new("/dev/null")).unwrap_err();
        assert_eq!(e, "isolation.read_only_paths /no/such/path: does not exist");
    }

    #[test]
    fn setup_maps_priorities_caps_and_user_namespace() {
        let mut iso = Isolation {
            nice: Some(5),
            ionice: Some(IoPriority {
                class: IoClass::Idle,
                level: 0,
            }),
            oom_score_adjust: Some(-500),
            capabilities: Some(vec![Capability(10), Capability(12)]),
            ..Default::default()
        };
        iso.namespaces.user = true;
        iso.namespaces.net = true;
        let ids = Ids {
            uid: 1000,
            gid: 100,
            groups: vec![100],
        };
        let s = setup(&iso, Some(ids), vec![], Path::new("/dev/null")).unwrap();
        assert_eq!(s.nice, Some(5));
        assert_eq!(s.ioprio, Some(3 << 13));
        assert_eq!(s.oom_score_adj.as_deref(), Some(c"-500"));
        assert_eq!(s.namespaces, libc::CLONE_NEWUSER | libc::CLONE_NEWNET);
        assert!(s.loopback_up);
        assert_eq!(s.uid_map.as_deref(), Some("0 1000 1\n"));
        assert_eq!(s.gid_map.as_deref(), Some("0 100 1\n"));
        // Root inside the user namespace: caps kept, not ambient.
        assert_eq!(s.ids.as_ref().map(|i| i.uid), Some(0));
        assert_eq!(
            s.caps.map(|c| (c.keep, c.ambient)),
            Some(((1 << 10) | (1 << 12), false))
        );
    }

    #[test]
    fn non_root_without_a_cap_list_gets_none() {
        let ids = Ids {
            uid: 65534,
            gid: 65534,
            groups: vec![],
        };
        let s = setup(
            &Isolation::default(),
            Some(ids),
            vec![],
            Path::new("/dev/null"),
        )
        .unwrap();
        assert_eq!(s.caps.map(|c| c.keep), Some(0));
        let s = setup(&Isolation::default(), None, vec![], Path::new("/dev/null")).unwrap();
        assert_eq!(s.caps, None);
    }
}
