//! Finding the cgroup2 hierarchy and sentinel's place in it; setting up
//! the base group: the supervisor leaf and the controllers, top-down.

use super::{mkdir, parse_pids, read, write, Controller, Error};
use std::path::{Component, Path, PathBuf};

/// The leaf sentinel moves into, in the base.
pub const SUPERVISOR: &str = "supervisor";

/// Bounded passes when moving every process of a container's cgroup:
/// a process may fork while the others move.
const MOVE_PASSES: usize = 4;

/// The cgroup2 mount point in a `/proc/self/mountinfo` text:
/// `/sys/fs/cgroup` when it is one of several, else the first.
pub fn find_mount(mountinfo: &str) -> Option<PathBuf> {
    let mounts = cgroup2_mounts(mountinfo);
    let preferred = Path::new("/sys/fs/cgroup");
    mounts
        .iter()
        .find(|(point, _)| point == preferred)
        .or(mounts.first())
        .map(|(point, _)| point.clone())
}

/// Every cgroup2 mount in a mountinfo text: (mount point, root inside the
/// hierarchy). Fields: `id parent maj:min root point options [optional...] - fstype source super`.
fn cgroup2_mounts(mountinfo: &str) -> Vec<(PathBuf, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            if dash < 6 || fields.get(dash + 1) != Some(&"cgroup2") {
                return None;
            }
            Some((PathBuf::from(unescape(fields[4])), unescape(fields[3])))
        })
        .collect()
}

/// mountinfo's octal escapes (`\040` is a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// sentinel's cgroup v2 path (`/system.slice/x.service`) from a
/// `/proc/self/cgroup` text: its `0::` line.
pub fn own_cgroup(proc_self_cgroup: &str) -> Option<String> {
    proc_self_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(|path| path.trim_end().to_string())
}

/// The relative form of a cgroup path, refusing `..` (a cgroup outside
/// sentinel's cgroup namespace reads `/../x`).
fn relative(path: &str) -> Result<PathBuf, Error> {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::CurDir => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "cgroup path {path:?} leaves its root"
                )))
            }
        }
    }
    Ok(out)
}

/// Where sentinel's groups live in the cgroup2 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// The cgroup2 mount point, e.g. `/sys/fs/cgroup`.
    pub mount: PathBuf,
    /// sentinel's own cgroup when it started, as a directory.
    pub own: PathBuf,
    /// The group under which every service's group is made.
    pub base: PathBuf,
}

/// What [`Hierarchy::setup`] did and could not do.
#[derive(Debug, Default)]
pub struct Setup {
    /// The wanted controllers now enabled down to the base: groups may use them.
    pub enabled: Vec<Controller>,
    /// The wanted controllers that are not, each with why (path and errno).
    pub unavailable: Vec<(Controller, Error)>,
    /// The leaf sentinel moved into, when its own cgroup got children.
    pub supervisor: Option<PathBuf>,
    /// Processes moved there besides sentinel (PID 1 of a container).
    pub moved: Vec<i32>,
}

impl Hierarchy {
    /// `base` from `cgroup_root`: relative, under sentinel's own cgroup
    /// (`own_cgroup` as in `/proc/self/cgroup`); absolute, from the mount.
    /// The base must not be the hierarchy's root nor contain sentinel's
    /// own cgroup below it: it is sentinel's alone.
    pub fn new(mount: &Path, own_cgroup: &str, cgroup_root: &str) -> Result<Hierarchy, Error> {
        let own = mount.join(relative(own_cgroup)?);
        let base = if cgroup_root.starts_with('/') {
            mount.join(relative(cgroup_root)?)
        } else {
            own.join(relative(cgroup_root)?)
        };
        if base == mount {
            return Err(Error::Invalid(format!(
                "cgroup_root {cgroup_root:?} is the cgroup2 root: name a group of sentinel's own"
            )));
        }
        if own != base && own.starts_with(&base) {
            return Err(Error::Invalid(format!(
                "cgroup_root {cgroup_root:?} ({}) contains sentinel's own cgroup {}: \
                 name a group of sentinel's own",
                base.display(),
                own.display()
            )));
        }
        Ok(Hierarchy {
            mount: mount.to_path_buf(),
            own,
            base,
        })
    }

    /// From `/proc/self/mountinfo` and `/proc/self/cgroup`: see
    /// [`from_proc`](Self::from_proc).
    pub fn discover(cgroup_root: &str) -> Result<Hierarchy, Error> {
        let mountinfo = read(Path::new("/proc/self/mountinfo"))?;
        let cgroup = read(Path::new("/proc/self/cgroup"))?;
        Hierarchy::from_proc(&mountinfo, &cgroup, cgroup_root)
    }

    /// From the texts of `/proc/self/mountinfo` and `/proc/self/cgroup`.
    /// When the mount shows a subtree (a container's bind mount of its own
    /// cgroup, without a cgroup namespace), that subtree's path is taken
    /// off sentinel's.
    pub fn from_proc(
        mountinfo: &str,
        proc_self_cgroup: &str,
        cgroup_root: &str,
    ) -> Result<Hierarchy, Error> {
        let mount = find_mount(mountinfo)
            .ok_or_else(|| Error::Invalid("no cgroup2 file system is mounted".into()))?;
        let own = own_cgroup(proc_self_cgroup)
            .ok_or_else(|| Error::Invalid("no 0:: line in /proc/self/cgroup".into()))?;
        let mounts = cgroup2_mounts(mountinfo);
        let root = mounts
            .iter()
            .find(|(point, _)| *point == mount)
            .map_or("/", |(_, root)| root.as_str());
        let own = Path::new(&own)
            .strip_prefix(root)
            .map_or(own.clone(), |p| format!("/{}", p.display()));
        Hierarchy::new(&mount, &own, cgroup_root)
    }

    /// The highest group sentinel writes: its own when the base is in it,
    /// else the deepest group holding both (for an absolute cgroup_root).
    pub fn top(&self) -> PathBuf {
        let mut top = self.base.clone();
        while !self.own.starts_with(&top) {
            top.pop();
        }
        top
    }

    /// The known controllers in `cgroup.controllers` of the base or, before
    /// setup made it, of its nearest existing ancestor: what the base's
    /// groups could get.
    pub fn available_controllers(&self) -> Result<Vec<Controller>, Error> {
        let mut dir = self.base.as_path();
        while !dir.is_dir() && dir != self.mount {
            dir = dir.parent().unwrap_or(&self.mount);
        }
        let text = read(&dir.join("cgroup.controllers"))?;
        Ok(Controller::parse_list(&text))
    }

    /// Make the base and enable `want` top-down, from [`top`](Self::top)
    /// to the base (each group's `cgroup.subtree_control` gives its
    /// children the controllers; [`create`](Self::create) continues the
    /// chain down to each leaf's parent).
    ///
    /// When the base is in sentinel's own cgroup, that cgroup gets
    /// children, and a cgroup with processes cannot enable controllers for
    /// them (the "no internal processes" rule): sentinel first moves into
    /// the leaf `<base>/supervisor`. When sentinel is PID 1 (a
    /// container) and its own cgroup is not the real root, every other
    /// process in it (a `docker exec` shell) moves there too; otherwise
    /// other processes are left where they are, and enabling fails with
    /// [`Error::Occupied`] naming them.
    ///
    /// A controller that is not in the top's `cgroup.controllers`, or whose
    /// enabling fails, is in [`Setup::unavailable`] with its reason; the
    /// rest in [`Setup::enabled`]. An `Err` is a failure to make the base
    /// or to move sentinel.
    pub fn setup(&self, want: &[Controller]) -> Result<Setup, Error> {
        self.setup_as(want, std::process::id() as i32)
    }

    /// [`setup`](Self::setup) as process `pid` (tests play PID 1).
    pub(super) fn setup_as(&self, want: &[Controller], pid: i32) -> Result<Setup, Error> {
        let top = self.top();
        let chain: Vec<PathBuf> = self
            .base
            .ancestors()
            .take_while(|dir| dir.starts_with(&top))
            .map(Path::to_path_buf)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        for dir in &chain[1..] {
            mkdir(dir)?;
        }
        let mut setup = Setup::default();
        if self.base.starts_with(&self.own) {
            let leaf = self.base.join(SUPERVISOR);
            mkdir(&leaf)?;
            let procs = leaf.join("cgroup.procs");
            write(&procs, &pid.to_string())?;
            // The real root has no cgroup.type, and its other processes
            // (kernel threads among them) may stay: the rule spares it.
            if pid == 1 && self.own.join("cgroup.type").exists() {
                setup.moved = self.move_others(&procs, pid)?;
            }
            setup.supervisor = Some(leaf);
        }
        let mut want: Vec<Controller> = want.to_vec();
        want.sort();
        want.dedup();
        if want.is_empty() {
            return Ok(setup);
        }
        let offered = Controller::parse_list(&read(&top.join("cgroup.controllers"))?);
        for c in want {
            let result = if offered.contains(&c) {
                chain.iter().try_for_each(|dir| self.enable(dir, c))
            } else {
                Err(Error::Unavailable {
                    controller: c,
                    path: top.join("cgroup.controllers"),
                })
            };
            match result {
                Ok(()) => setup.enabled.push(c),
                Err(e) => setup.unavailable.push((c, e)),
            }
        }
        Ok(setup)
    }

    /// Move every process in sentinel's own cgroup into the supervisor
    /// leaf (`procs`), in a few passes: one may fork meanwhile. A process
    /// that exits meanwhile (ESRCH) is skipped.
    fn move_others(&self, procs: &Path, pid: i32) -> Result<Vec<i32>, Error> {
        let mut moved = vec![];
        for _ in 0..MOVE_PASSES {
            let pids = parse_pids(&read(&self.own.join("cgroup.procs"))?);
            let new: Vec<i32> = pids
                .into_iter()
                // 0: a process outside sentinel's pid namespace; it stays.
                .filter(|p| *p != pid && *p != 0 && !moved.contains(p))
                .collect();
            if new.is_empty() {
                break;
            }
            for p in new {
                match write(procs, &p.to_string()) {
                    Err(e) if e.errno() != Some(libc::ESRCH) => return Err(e),
                    _ => moved.push(p),
                }
            }
        }
        Ok(moved)
    }

    /// `+controller` in `dir`'s `cgroup.subtree_control`, unless it is
    /// there already (then nothing is written: an ancestor's file may be
    /// read-only to sentinel). EBUSY in sentinel's own cgroup becomes
    /// [`Error::Occupied`], naming the processes that stayed.
    pub(super) fn enable(&self, dir: &Path, c: Controller) -> Result<(), Error> {
        enable(dir, c).map_err(|e| match e {
            Error::Io { source, .. }
                if dir == self.own && source.raw_os_error() == Some(libc::EBUSY) =>
            {
                let pids = read(&dir.join("cgroup.procs"))
                    .map(|t| parse_pids(&t))
                    .unwrap_or_default();
                Error::Occupied {
                    path: dir.to_path_buf(),
                    pids,
                    source,
                }
            }
            e => e,
        })
    }
}

/// `+c` in `dir/cgroup.subtree_control` unless already enabled there.
pub(super) fn enable(dir: &Path, c: Controller) -> Result<(), Error> {
    let path = dir.join("cgroup.subtree_control");
    match read(&path) {
        Ok(text) if Controller::parse_list(&text).contains(&c) => Ok(()),
        _ => write(&path, &format!("+{c}")),
    }
}
