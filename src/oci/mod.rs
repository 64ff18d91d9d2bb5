//! OCI runtime bundles: `bundle = "/srv/app/bundle"` runs the process an
//! image describes (`config.json` + its root file system, as `umoci unpack`
//! makes them) under sentinel's own isolation, without a container engine.
//!
//! - `spec`: the serde types of the `config.json` subset sentinel reads;
//! - `config::build` (its `oci` step) maps the file onto a service's
//!   settings — command, env, workdir, identity, hostname, rlimits,
//!   capabilities, namespaces, limits — under the service's own keys, and
//!   lists every field it does not honour as a warning;
//! - this module holds what the bundle adds to the mount plan ([`Mounts`]):
//!   a minimal `/dev`, the bundle's tmpfs/sysfs/devpts/mqueue/bind mounts,
//!   masked and read-only paths and a read-only root, and turns it into
//!   `sys::spawn::Mount`s ([`mount_plan`]) after making, before fork, the
//!   mount targets the image lacks ([`prepare`]).
//!
//! The child never follows a symbolic link of the image while mounting:
//! [`prepare`] refuses targets whose path inside the root goes through one
//! (a link could point out of the root, onto the host).

pub mod spec;

use std::ffi::CString;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// What a bundle adds to a service's mount plan; the paths inside the
/// new root are absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounts {
    /// The bundle's folder (for messages).
    pub bundle: PathBuf,
    /// `mounts` of config.json that sentinel makes, in file order (after
    /// its own `/proc` and minimal `/dev`).
    pub mounts: Vec<Mount>,
    /// `linux.maskedPaths`: hidden (an empty read-only tmpfs over a folder,
    /// an unreadable empty file over a file); missing ones are skipped.
    pub masked: Vec<PathBuf>,
    /// `linux.readonlyPaths`: bound read-only; missing ones are skipped.
    pub read_only: Vec<PathBuf>,
    /// `root.readonly`.
    pub read_only_root: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub target: PathBuf,
    pub kind: MountKind,
    /// `MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC`, atime flags.
    pub flags: libc::c_ulong,
    /// `mode=1777,size=64m`, `newinstance,ptmxmode=0666` ...
    pub data: Option<String>,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    Tmpfs,
    Sysfs,
    Devpts,
    Mqueue,
    /// A host file or folder (relative sources are taken from the bundle).
    Bind {
        source: PathBuf,
        recursive: bool,
    },
}

/// The template of the minimal `/dev`, next to the control socket.
pub const DEV_TEMPLATE: &str = ".sentinel-dev";

/// The host's device nodes a bundle's `/dev` gets (bound one by one).
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The flags of the `/proc` sentinel mounts (`isolate::mount_plan`).
const PROC_FLAGS: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

/// Folders of the minimal `/dev` (mount points of devpts, shm, mqueue).
const DEV_DIRS: [&str; 3] = ["pts", "shm", "mqueue"];

/// Links of the minimal `/dev`.
const DEV_LINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// Where `inner` (absolute, inside the new root) is on the host, refusing
/// to go through a symbolic link of the image.
fn inside(root: &Path, inner: &Path) -> Result<PathBuf, String> {
    let mut at = root.to_path_buf();
    for part in inner.components() {
        match part {
            Component::RootDir | Component::CurDir => continue,
            Component::Normal(p) => at.push(p),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!(
                    "{}: \"..\" is not allowed in a path inside the root",
                    inner.display()
                ))
            }
        }
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!(
                "{}: {} is a symbolic link in the image; sentinel does not mount through links \
                 (one could point out of the root); replace it with a folder",
                inner.display(),
                at.display()
            ));
        }
    }
    Ok(at)
}

/// Make `inner` under `base` (a folder, or an empty file when `file`),
/// with the folders above it; symbolic links refused on the way.
fn make_under(base: &Path, inner: &Path, file: bool) -> Result<(), String> {
    let path = inside(base, inner)?;
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() != file => return Ok(()),
        Ok(_) => {
            let want = if file { "a file" } else { "a folder" };
            return Err(format!(
                "{}: exists and is not {want}, as the mount there needs",
                path.display()
            ));
        }
        Err(_) => {}
    }
    let dir = if file {
        path.parent()
    } else {
        Some(path.as_path())
    };
    if let Some(d) = dir {
        std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    if file {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .map_err(|e| format!("create {}: {e}", path.display()))?;
    }
    Ok(())
}

/// What lies under a path of the new root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner<'a> {
    /// The image's own files.
    Root,
    /// The fresh `/proc` sentinel mounts.
    Proc,
    /// The minimal `/dev`.
    Dev,
    /// A mount of the bundle.
    Mount(&'a Mount),
}

/// The mount `inner` falls in (the deepest), and the rest of the path
/// below it. `strict`: not a mount at `inner` itself (where a mount point
/// is made: in what is underneath).
fn owner<'a>(m: &'a Mounts, inner: &Path, strict: bool) -> (Owner<'a>, PathBuf) {
    let mut best: (Owner<'a>, &Path) = (Owner::Root, Path::new("/"));
    let mut consider = |o: Owner<'a>, at: &'a Path| {
        if inner.starts_with(at)
            && !(strict && inner == at)
            && at.components().count() > best.1.components().count()
        {
            best = (o, at);
        }
    };
    consider(Owner::Proc, Path::new("/proc"));
    consider(Owner::Dev, Path::new("/dev"));
    for mount in &m.mounts {
        consider(Owner::Mount(mount), &mount.target);
    }
    let rest = inner.strip_prefix(best.1).unwrap_or(inner).to_path_buf();
    (best.0, rest)
}

/// Where a masked or read-only path can be looked at from the parent,
/// before the child mounts anything: the host's own `/proc` and `/sys`
/// show the same kernel. None: inside a fresh tmpfs, devpts or mqueue
/// (empty), hence missing.
fn host_view(root: &Path, m: &Mounts, template: &Path, inner: &Path) -> Option<PathBuf> {
    let (o, rest) = owner(m, inner, false);
    match o {
        Owner::Root => inside(root, inner).ok(),
        Owner::Proc => Some(Path::new("/proc").join(rest)),
        Owner::Dev => Some(template.join(rest)),
        Owner::Mount(mount) => match &mount.kind {
            MountKind::Sysfs => Some(Path::new("/sys").join(rest)),
            MountKind::Bind { source, .. } => Some(source.join(rest)),
            MountKind::Tmpfs | MountKind::Devpts | MountKind::Mqueue => None,
        },
    }
}

/// Before fork: the minimal `/dev` template and the unreadable file in
/// `inaccessible`'s folder, and what the image lacks: the mount targets
/// (`/proc`, `/dev`, the bundle's mount points) and the working folder
/// `workdir`, as runc makes them. Nothing is made on the host outside the
/// root and that folder.
pub fn prepare(
    root: &Path,
    m: &Mounts,
    workdir: Option<&Path>,
    inaccessible: &Path,
) -> Result<(), String> {
    let template = inaccessible.with_file_name(DEV_TEMPLATE);
    dev_template(&template)?;
    if !inaccessible.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o000)
            .open(inaccessible)
            .map_err(|e| format!("create {}: {e}", inaccessible.display()))?;
    }
    make_under(root, Path::new("/proc"), false)?;
    make_under(root, Path::new("/dev"), false)?;
    for mount in &m.mounts {
        let file = match &mount.kind {
            MountKind::Bind { source, .. } => !source.is_dir(),
            _ => false,
        };
        match owner(m, &mount.target, true) {
            (Owner::Root, _) => make_under(root, &mount.target, file)?,
            (Owner::Dev, rest) => make_under(&template, &rest, file)?,
            // Inside a kernel file system or a host folder: nothing to make
            // (a missing target is named by the child's mount error).
            _ => {}
        }
    }
    if let Some(w) = workdir.filter(|w| w.is_absolute()) {
        if owner(m, w, false).0 == Owner::Root {
            make_under(root, w, false)?;
        }
    }
    Ok(())
}

/// The minimal `/dev`'s template: empty files for the device nodes bound
/// over them, folders for pts/shm/mqueue, the usual links.
fn dev_template(dir: &Path) -> Result<(), String> {
    let fail = |what: &Path, e: std::io::Error| format!("create {}: {e}", what.display());
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| fail(dir, e))?;
    for d in DEVICES {
        let p = dir.join(d);
        if !p.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o666)
                .open(&p)
                .map_err(|e| fail(&p, e))?;
        }
    }
    for d in DEV_DIRS {
        let p = dir.join(d);
        std::fs::create_dir_all(&p).map_err(|e| fail(&p, e))?;
    }
    for (name, to) in DEV_LINKS {
        let p = dir.join(name);
        if std::fs::symlink_metadata(&p).is_err() {
            std::os::unix::fs::symlink(to, &p).map_err(|e| fail(&p, e))?;
        }
    }
    Ok(())
}

fn c(s: &str) -> Result<CString, String> {
    sys::spawn::cstring(s).map_err(|e| e.to_string())
}

fn cpath(p: &Path) -> Result<CString, String> {
    c(&p.to_string_lossy())
}

fn mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<sys::spawn::Mount, String> {
    Ok(sys::spawn::Mount {
        source: source.map(c).transpose()?,
        target: cpath(target)?,
        fstype: fstype.map(c).transpose()?,
        flags,
        data: data.map(c).transpose()?,
    })
}

/// Bind `source` over `target` (recursively when `rec`).
fn bind(source: &Path, target: &Path, rec: bool) -> Result<sys::spawn::Mount, String> {
    let rec = if rec { libc::MS_REC } else { 0 };
    mount(
        Some(&source.to_string_lossy()),
        target,
        None,
        libc::MS_BIND | rec,
        None,
    )
}

/// Make the bind mount at `target` read-only (and `extra` flags), keeping
/// the flags the kernel locked on `host` (the file system it came from).
fn remount_ro(
    target: &Path,
    host: &Path,
    extra: libc::c_ulong,
) -> Result<sys::spawn::Mount, String> {
    let flags = libc::MS_BIND
        | libc::MS_REMOUNT
        | libc::MS_RDONLY
        | extra
        | crate::isolate::locked_flags(host);
    mount(None, target, None, flags, None)
}

/// The bundle's part of the mount plan, made after sentinel has bound the
/// new root onto itself and mounted its `/proc`. `inaccessible`: the
/// unreadable file bound over masked files (its folder holds the `/dev`
/// template that [`prepare`] made).
pub fn mount_plan(
    root: &Path,
    m: &Mounts,
    inaccessible: &Path,
) -> Result<Vec<sys::spawn::Mount>, String> {
    let template = inaccessible.with_file_name(DEV_TEMPLATE);
    let at = |inner: &Path| root.join(inner.strip_prefix("/").unwrap_or(inner));
    let mut out = Vec::new();

    // A minimal /dev: the template, the host's harmless device nodes over
    // its empty files, read-only afterwards.
    let dev = at(Path::new("/dev"));
    out.push(bind(&template, &dev, false)?);
    for d in DEVICES {
        let host = Path::new("/dev").join(d);
        if host.exists() {
            out.push(bind(&host, &dev.join(d), false)?);
        }
    }

    for mount_ in &m.mounts {
        let target = at(&mount_.target);
        let ro = if mount_.read_only { libc::MS_RDONLY } else { 0 };
        let data = mount_.data.as_deref();
        let fs = |name: &str| mount(Some(name), &target, Some(name), mount_.flags | ro, data);
        match &mount_.kind {
            MountKind::Tmpfs => out.push(fs("tmpfs")?),
            MountKind::Sysfs => out.push(fs("sysfs")?),
            MountKind::Devpts => out.push(fs("devpts")?),
            MountKind::Mqueue => out.push(fs("mqueue")?),
            MountKind::Bind { source, recursive } => {
                out.push(bind(source, &target, *recursive)?);
                if mount_.read_only {
                    out.push(remount_ro(&target, source, mount_.flags)?);
                }
            }
        }
    }
    out.push(remount_ro(
        &dev,
        &template,
        libc::MS_NOSUID | libc::MS_NOEXEC,
    )?);

    for p in &m.masked {
        let Some(host) = host_view(root, m, &template, p) else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        let target = at(p);
        if meta.is_dir() {
            out.push(mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                Some("mode=000,size=0"),
            )?);
        } else {
            out.push(bind(inaccessible, &target, false)?);
            out.push(remount_ro(&target, inaccessible, 0)?);
        }
    }
    for p in &m.read_only {
        let Some(host) = host_view(root, m, &template, p) else {
            continue;
        };
        if std::fs::symlink_metadata(&host).is_err() {
            continue;
        }
        // A remount sets the bind's flags anew: repeat those of the mount
        // the path is in.
        let extra = match owner(m, p, false).0 {
            Owner::Proc => PROC_FLAGS,
            Owner::Mount(under) => under.flags,
            Owner::Root | Owner::Dev => 0,
        };
        let target = at(p);
        out.push(bind(&target, &target, true)?);
        out.push(remount_ro(&target, &host, extra)?);
    }
    if m.read_only_root {
        out.push(remount_ro(root, root, 0)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
