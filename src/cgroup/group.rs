//! One group per service instance: create it with its slices' and
//! service's limits, kill everything in it, remove it.

use super::hierarchy::{enable, SUPERVISOR};
use super::{mkdir, parse_pids, read, write, Controller, Error, Hierarchy, Op};
use crate::config::{CpuMax, IoMax, Limits};
use nix::sys::signal::{kill as send, Signal};
use nix::unistd::Pid;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Passes of the freeze fallback's SIGKILL sweep: a process caught in
/// the middle of `fork` when the group froze leaves a (frozen) child that
/// the next pass finds.
const SWEEP_PASSES: usize = 4;

/// The controllers `limits` need.
pub fn controllers_needed(limits: &Limits) -> Vec<Controller> {
    let l = limits;
    let mut out = vec![];
    if l.cpu_max.is_some() || l.cpu_weight.is_some() {
        out.push(Controller::Cpu);
    }
    if l.io_weight.is_some() || !l.io_max.is_empty() {
        out.push(Controller::Io);
    }
    if l.memory_max.is_some() || l.memory_high.is_some() || l.memory_swap_max.is_some() {
        out.push(Controller::Memory);
    }
    if l.pids_max.is_some() {
        out.push(Controller::Pids);
    }
    out
}

/// `limits` without those whose controller is not in `enabled` (for a
/// service with `limits_optional`, after saying which were left out).
pub fn limits_within(limits: &Limits, enabled: &[Controller]) -> Limits {
    let mut l = limits.clone();
    if !enabled.contains(&Controller::Cpu) {
        (l.cpu_max, l.cpu_weight) = (None, None);
    }
    if !enabled.contains(&Controller::Io) {
        (l.io_weight, l.io_max) = (None, vec![]);
    }
    if !enabled.contains(&Controller::Memory) {
        (l.memory_max, l.memory_high, l.memory_swap_max) = (None, None, None);
    }
    if !enabled.contains(&Controller::Pids) {
        l.pids_max = None;
    }
    l
}

/// `(major, minor)` of an io_max device: `"254:0"` as written, or a
/// device file's (`/dev/vda`; `/dev/null` is 1:3).
pub fn device_number(device: &str) -> Result<(u64, u64), Error> {
    if let Some((maj, min)) = device.split_once(':') {
        if let (Ok(maj), Ok(min)) = (maj.parse(), min.parse()) {
            return Ok((maj, min));
        }
    }
    let meta = fs::metadata(device).map_err(|e| Error::io(Op::Stat, Path::new(device), e))?;
    let kind = meta.file_type();
    if !kind.is_block_device() && !kind.is_char_device() {
        return Err(Error::Invalid(format!(
            "io_max device {device}: not a device file nor major:minor"
        )));
    }
    let dev = meta.rdev();
    Ok((nix::sys::stat::major(dev), nix::sys::stat::minor(dev)))
}

/// `cpu.max`: `"quota period"`, or `"max period"` for a quota of `u64::MAX`.
fn cpu_max_value(c: CpuMax) -> String {
    match c.quota_us {
        u64::MAX => format!("max {}", c.period_us),
        q => format!("{q} {}", c.period_us),
    }
}

/// `io.max`: `"MAJ:MIN rbps=N wbps=N riops=N wiops=N"`, `max` where unset.
fn io_max_value(m: &IoMax) -> Result<String, Error> {
    let (maj, min) = device_number(&m.device)?;
    let v = |x: Option<u64>| x.map_or("max".to_string(), |n| n.to_string());
    Ok(format!(
        "{maj}:{min} rbps={} wbps={} riops={} wiops={}",
        v(m.rbps),
        v(m.wbps),
        v(m.riops),
        v(m.wiops)
    ))
}

/// Write the limits that are set into the group `dir` (unset ones are
/// left as they are: a new group has the kernel's defaults).
pub fn write_limits(dir: &Path, limits: &Limits) -> Result<(), Error> {
    let l = limits;
    let numbers = [
        ("memory.max", l.memory_max),
        ("memory.high", l.memory_high),
        ("memory.swap.max", l.memory_swap_max),
        ("cpu.weight", l.cpu_weight.map(u64::from)),
        ("pids.max", l.pids_max),
    ];
    for (file, value) in numbers {
        if let Some(v) = value {
            write(&dir.join(file), &v.to_string())?;
        }
    }
    if let Some(c) = l.cpu_max {
        write(&dir.join("cpu.max"), &cpu_max_value(c))?;
    }
    if let Some(w) = l.io_weight {
        write(&dir.join("io.weight"), &format!("default {w}"))?;
    }
    for m in &l.io_max {
        write(&dir.join("io.max"), &io_max_value(m)?)?;
    }
    Ok(())
}

/// A name that is one path component and not a kernel file's.
fn check_name(name: &str) -> Result<(), Error> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\0', '\n'])
        || name.starts_with("cgroup.");
    if bad {
        return Err(Error::Invalid(format!("{name:?} cannot name a cgroup")));
    }
    Ok(())
}

impl Hierarchy {
    /// Make `<base>/<slice>.../<service>/<instance>` and open the leaf.
    ///
    /// `slices` go outermost first, each with its limits; `limits` are the
    /// service's. `enabled` is [`Setup::enabled`](super::Setup): each slice
    /// and the service group get these controllers in their
    /// `cgroup.subtree_control`, so the leaf has their files (stats). A
    /// limit whose controller is not in `enabled` is an
    /// [`Error::NotEnabled`] before anything is made (see
    /// [`limits_within`]). Existing groups are reused, and get the limits
    /// again.
    pub fn create(
        &self,
        enabled: &[Controller],
        slices: &[(&str, &Limits)],
        service: &str,
        limits: &Limits,
        instance: &str,
    ) -> Result<Leaf, Error> {
        let mut levels: Vec<(&str, &Limits)> = slices.to_vec();
        levels.push((service, limits));
        if levels[0].0 == SUPERVISOR {
            return Err(Error::Invalid(format!(
                "{SUPERVISOR:?} is sentinel's own group: another name, please"
            )));
        }
        let mut dir = self.base.clone();
        for (name, limits) in &levels {
            check_name(name)?;
            dir.push(name);
            if let Some(&c) = controllers_needed(limits)
                .iter()
                .find(|c| !enabled.contains(c))
            {
                return Err(Error::NotEnabled {
                    controller: c,
                    path: dir,
                });
            }
        }
        check_name(instance)?;
        let mut dir = self.base.clone();
        let mut parents = vec![];
        for (name, limits) in &levels {
            dir.push(name);
            mkdir(&dir)?;
            write_limits(&dir, limits)?;
            for &c in enabled {
                enable(&dir, c)?;
            }
            parents.push(dir.clone());
        }
        parents.reverse();
        let leaf = dir.join(instance);
        mkdir(&leaf)?;
        let mut leaf = Leaf::open(&leaf)?;
        leaf.parents = parents;
        Ok(leaf)
    }

    /// Remove the empty groups a previous run left in the base (all but
    /// the supervisor leaf), deepest first. Returns the leaves it could
    /// not remove: still populated, for [`kill`] and a later
    /// [`cleanup_stale`](Self::cleanup_stale).
    pub fn cleanup_stale(&self) -> Result<Vec<PathBuf>, Error> {
        let mut left = vec![];
        for entry in subgroups(&self.base)? {
            if entry.file_name() != Some(SUPERVISOR.as_ref()) {
                remove_tree(&entry, &mut left)?;
            }
        }
        Ok(left)
    }
}

/// The child groups (directories) of `dir`.
fn subgroups(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let wrap = |e| Error::io(Op::Read, dir, e);
    let mut out = vec![];
    for entry in fs::read_dir(dir).map_err(wrap)? {
        let entry = entry.map_err(wrap)?;
        if entry.file_type().map_err(wrap)?.is_dir() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// rmdir `dir` after its children; busy leaves go to `left`.
fn remove_tree(dir: &Path, left: &mut Vec<PathBuf>) -> Result<(), Error> {
    let children = subgroups(dir)?;
    for child in &children {
        remove_tree(child, left)?;
    }
    match rmdir(dir) {
        Err(e) if e.is_busy() => {
            if subgroups(dir)?.is_empty() {
                left.push(dir.to_path_buf());
            }
            Ok(())
        }
        result => result,
    }
}

/// rmdir, where a directory already gone is fine.
fn rmdir(dir: &Path) -> Result<(), Error> {
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(Op::Rmdir, dir, e)),
        _ => Ok(()),
    }
}

/// How [`kill`] killed a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillMethod {
    /// `cgroup.kill` (Linux 5.14+): the kernel killed the whole subtree.
    CgroupKill,
    /// `cgroup.freeze`, SIGKILL to every pid listed, thaw (Linux 5.2+).
    Freeze,
    /// SIGKILL to every pid listed, without freezing (older kernels).
    Signals,
}

/// SIGKILL every process in the group `dir` and its subgroups.
///
/// With `cgroup.kill` one write does it. Without: `1` to `cgroup.freeze`,
/// then SIGKILL to each pid in `cgroup.procs` (and those of subgroups),
/// then `0` to `cgroup.freeze`. This does not wait for `frozen 1` in
/// `cgroup.events`: the freeze write marks every task of the group before
/// it returns, and a task forked later in the group is marked at birth,
/// so no process runs user code again, and SIGKILL still reaches frozen
/// ones. Only a child forked *during* the sweep can be missed: a few
/// passes, without sleeping, look again until one finds no new pid. It
/// never blocks: the caller waits for `populated 0` (see [`is_empty`]) as
/// for any exit, and calls again after a deadline. A pid's SIGKILL that
/// fails (other than ESRCH) is an error, after the thaw.
pub fn kill(dir: &Path) -> Result<KillMethod, Error> {
    match write(&dir.join("cgroup.kill"), "1") {
        Err(e) if e.errno() == Some(libc::ENOENT) => kill_by_freezing(dir),
        result => result.map(|()| KillMethod::CgroupKill),
    }
}

/// [`kill`] without `cgroup.kill`.
pub(super) fn kill_by_freezing(dir: &Path) -> Result<KillMethod, Error> {
    let freeze = dir.join("cgroup.freeze");
    let method = match write(&freeze, "1") {
        Ok(()) => KillMethod::Freeze,
        Err(e) if e.errno() == Some(libc::ENOENT) => KillMethod::Signals,
        Err(e) => return Err(e),
    };
    let mut killed: Vec<i32> = vec![];
    let mut failed = None;
    for _ in 0..SWEEP_PASSES {
        let mut new = false;
        for (group, pid) in procs_below(dir)? {
            if killed.contains(&pid) {
                continue;
            }
            new = true;
            killed.push(pid);
            match send(Pid::from_raw(pid), Signal::SIGKILL) {
                Err(e) if e != nix::errno::Errno::ESRCH && failed.is_none() => {
                    failed = Some(Error::io(Op::Kill(pid), &group, e.into()));
                }
                _ => {}
            }
        }
        if !new {
            break;
        }
    }
    if method == KillMethod::Freeze {
        write(&freeze, "0")?;
    }
    failed.map_or(Ok(method), Err)
}

/// (group, pid) for every pid in `dir`'s `cgroup.procs` and its subgroups'.
fn procs_below(dir: &Path) -> Result<Vec<(PathBuf, i32)>, Error> {
    let mut out: Vec<(PathBuf, i32)> = parse_pids(&read(&dir.join("cgroup.procs"))?)
        .into_iter()
        .map(|p| (dir.to_path_buf(), p))
        .collect();
    for child in subgroups(dir)? {
        out.extend(procs_below(&child)?);
    }
    Ok(out)
}

#[cfg(test)]
/// No process in the group `dir` or below: `populated 0` in `cgroup.events`.
pub fn is_empty(dir: &Path) -> Result<bool, Error> {
    let path = dir.join("cgroup.events");
    let text = read(&path)?;
    super::stats::keyed(&text, "populated")
        .map(|n| n == 0)
        .ok_or_else(|| Error::Invalid(format!("no \"populated\" line in {}", path.display())))
}

/// The group one service instance runs in, with the descriptors its
/// process needs, opened in the parent before fork.
#[derive(Debug)]
pub struct Leaf {
    path: PathBuf,
    /// The group's directory (`O_DIRECTORY|O_CLOEXEC`).
    dir: OwnedFd,
    /// Its `cgroup.procs` (`O_WRONLY|O_CLOEXEC`).
    procs: OwnedFd,
    /// The service and slice groups made for it, innermost first.
    parents: Vec<PathBuf>,
}

impl Leaf {
    /// Open an existing group (made by [`Hierarchy::create`], or left by a
    /// previous run): [`remove`](Self::remove) then removes only it.
    pub fn open(path: &Path) -> Result<Leaf, Error> {
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)
            .map_err(|e| Error::io(Op::Open, path, e))?;
        let procs_path = path.join("cgroup.procs");
        let procs = OpenOptions::new()
            .write(true)
            .open(&procs_path)
            .map_err(|e| Error::io(Op::Open, &procs_path, e))?;
        Ok(Leaf {
            path: path.to_path_buf(),
            dir: dir.into(),
            procs: procs.into(),
            parents: vec![],
        })
    }

    /// The group's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The group's directory fd, for `clone3(CLONE_INTO_CGROUP)`.
    pub fn dir_fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// Its `cgroup.procs`, for the fork fallback: the child writes `0`.
    pub fn procs_fd(&self) -> BorrowedFd<'_> {
        self.procs.as_fd()
    }

    /// See [`kill`].
    pub fn kill(&self) -> Result<KillMethod, Error> {
        kill(&self.path)
    }

    #[cfg(test)]
    /// See [`is_empty`].
    pub fn is_empty(&self) -> Result<bool, Error> {
        is_empty(&self.path)
    }

    /// See [`stats`](super::stats()).
    pub fn stats(&self) -> super::Stats {
        super::stats(&self.path)
    }

    /// rmdir the group, then its service and slice groups while they are
    /// empty (never the base). A group still populated fails with an
    /// error whose [`is_busy`](Error::is_busy) is true: call again later,
    /// once `cgroup.events` says `populated 0`.
    pub fn remove(&self) -> Result<(), Error> {
        rmdir(&self.path)?;
        for dir in &self.parents {
            match rmdir(dir) {
                Err(e) if e.is_busy() || e.errno() == Some(libc::EEXIST) => break,
                result => result?,
            }
        }
        Ok(())
    }
}
