//! Watch mode: restart a service when files it watches change.
//!
//! One inotify instance (non-blocking, close-on-exec) for all services; it
//! is a mio source. A watched folder is watched with every subfolder,
//! including subfolders created (or moved in) later; a watched file is
//! watched through its folder, filtered by name, so editors that save by
//! writing a new file and renaming it over the old one are seen, and the
//! watch survives them. Symlinks given as paths are followed; symlinks met
//! inside a folder are not.
//!
//! A change is a create, delete, write, close after writing, attribute change
//! (`touch`, `chmod`) or move of a file or folder, unless its name or its
//! path relative to the watched folder matches an `ignore` pattern
//! ([`glob_match`]: `*` and `?`, never across `/`; a trailing `/` is
//! dropped). A folder whose name or relative path matches is not watched at
//! all (`ignore = ["target", ".git", "node_modules"]` costs nothing). A
//! queue overflow (`IN_Q_OVERFLOW`: events were lost) counts as a change of
//! every service, and every watched tree is scanned again for folders that
//! appeared meanwhile.
//!
//! Debounce, trailing edge with a ceiling: a service's first change opens a
//! window; it is due `debounce` after its *last* change, but never later
//! than 4 × `debounce` after its first, so a steady trickle of writes
//! (a build writing for a minute) still restarts it every 4 × `debounce`,
//! and a burst (a `git checkout`) restarts it once, after it ends. Changes
//! after it was due open a new window.
//!
//! Limits: a watched folder that is deleted and made again is not watched
//! again unless its parent is watched (watch the parent); the kernel's
//! `fs.inotify.max_user_watches` bounds the folders (an error says so).
//!
//! # How the loop drives it
//!
//! ```text
//! let mut watcher = Watcher::new()?;
//! registry.register(&mut watcher, WATCH, Interest::READABLE)?;
//! watcher.add(service, &watch)?;               // at start (Err: a path is missing, the watch limit, ...)
//! WATCH => for line in watcher.on_readable(now) { log(&line) }   // warnings, usually none
//! // deadlines: push watcher.next_deadline() after on_readable; when it fires:
//! for service in watcher.due(now) { restart it }
//! watcher.remove(service);                     // the service is removed (reload) or stopped for good
//! ```

// Driven by the event loop as issue 8 is integrated.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};

use crate::config::Watch;

/// How far past the first change the trailing edge may move, in `debounce`s.
pub const MAX_DEBOUNCES: u32 = 4;

/// The events that are changes.
fn mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
}

/// Whether `text` matches `pattern`: `*` is any run of characters and `?`
/// any one character, neither matching `/`; everything else is literal. So
/// a pattern matches a path only with as many `/`-separated parts, each
/// matching (`build/*.o` matches `build/x.o`, not `build/sub/x.o`). A
/// trailing `/` in the pattern is ignored (`target/` is `target`).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern = match pattern.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => pattern,
    };
    let mut ps = pattern.split('/');
    let mut ts = text.split('/');
    loop {
        match (ps.next(), ts.next()) {
            (None, None) => return true,
            (Some(p), Some(t)) if segment_match(p.as_bytes(), t.as_bytes()) => {}
            _ => return false,
        }
    }
}

/// `*` and `?` within one path part (bytes; `?` is one byte, so a
/// non-ASCII character needs as many `?` as its UTF-8 bytes).
fn segment_match(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and where its match currently ends.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            // Let the `*` take one more character and retry after it.
            star = Some((sp, st + 1));
            pi = sp + 1;
            ti = st + 1;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn ignored(patterns: &[String], name: &OsStr, rel: &Path) -> bool {
    let name = name.to_string_lossy();
    let rel = rel.to_string_lossy();
    patterns
        .iter()
        .any(|p| glob_match(p, &name) || glob_match(p, &rel))
}

/// Who watches a folder, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    service: usize,
    /// The watched folder (for a watched file: its folder).
    root: PathBuf,
    /// This folder relative to `root` (empty for the root).
    rel: PathBuf,
    /// A watched file: only this name in the folder counts.
    only: Option<OsString>,
}

impl Owner {
    fn path(&self) -> PathBuf {
        self.root.join(&self.rel)
    }
}

enum Root {
    Dir(PathBuf),
    File(PathBuf, OsString),
}

struct Entry {
    ignore: Vec<String>,
    debounce: Duration,
    roots: Vec<Root>,
    /// The first and last change of the open window.
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Entry {
    fn deadline(&self) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        Some((last + self.debounce).min(first + self.debounce * MAX_DEBOUNCES))
    }

    fn change(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(self.last.map_or(now, |l| l.max(now)));
    }
}

pub struct Watcher {
    inotify: Inotify,
    /// Watched folders: inotify gives one descriptor per folder, shared by
    /// every service that watches it.
    wds: HashMap<WatchDescriptor, Vec<Owner>>,
    services: HashMap<usize, Entry>,
}

fn add_error(path: &Path, e: Errno) -> String {
    match e {
        Errno::ENOSPC => format!(
            "watch {}: the kernel's limit of inotify watches is reached; raise \
             fs.inotify.max_user_watches (sysctl) or `ignore` big folders",
            path.display()
        ),
        Errno::ENOTDIR => format!("watch {}: not a folder", path.display()),
        e => format!("watch {}: {}", path.display(), e.desc()),
    }
}

impl Watcher {
    pub fn new() -> Result<Watcher, String> {
        let inotify =
            Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(|e| {
                format!(
                    "inotify: {} (fs.inotify.max_user_instances may be reached)",
                    e.desc()
                )
            })?;
        Ok(Watcher {
            inotify,
            wds: HashMap::new(),
            services: HashMap::new(),
        })
    }

    /// Watch `watch.paths` for `service` (replacing what it watched). On
    /// error nothing is watched for it: a path is missing or unreadable, or
    /// the kernel's watch limit is reached.
    pub fn add(&mut self, service: usize, watch: &Watch) -> Result<(), String> {
        self.remove(service);
        self.services.insert(
            service,
            Entry {
                ignore: watch.ignore.clone(),
                debounce: watch.debounce,
                roots: Vec::new(),
                first: None,
                last: None,
            },
        );
        let r = self.add_paths(service, &watch.paths);
        if r.is_err() {
            self.remove(service);
        }
        r
    }

    fn add_paths(&mut self, service: usize, paths: &[PathBuf]) -> Result<(), String> {
        for path in paths {
            let meta =
                std::fs::metadata(path).map_err(|e| format!("watch {}: {e}", path.display()))?;
            let root = if meta.is_dir() {
                Root::Dir(path.clone())
            } else {
                let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                    return Err(format!("watch {}: not a file or folder", path.display()));
                };
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                Root::File(dir.to_path_buf(), name.to_os_string())
            };
            self.watch_root(service, &root)?;
            if let Some(e) = self.services.get_mut(&service) {
                e.roots.push(root);
            }
        }
        Ok(())
    }

    fn watch_root(&mut self, service: usize, root: &Root) -> Result<(), String> {
        match root {
            Root::Dir(dir) => self.add_tree(service, dir, Path::new(""), true),
            Root::File(dir, name) => {
                let owner = Owner {
                    service,
                    root: dir.clone(),
                    rel: PathBuf::new(),
                    only: Some(name.clone()),
                };
                self.add_dir(owner, true)
                    .map_err(|e| add_error(&dir.join(name), e))
            }
        }
    }

    /// Watch one folder for `owner`. `follow`: the folder may be a symlink.
    fn add_dir(&mut self, owner: Owner, follow: bool) -> Result<(), Errno> {
        let mut flags = mask();
        if !follow {
            flags |= AddWatchFlags::IN_DONT_FOLLOW;
        }
        let wd = self.inotify.add_watch(&owner.path(), flags)?;
        let owners = self.wds.entry(wd).or_default();
        // The same service and root may come again (a rescan, a folder moved
        // within the tree): keep one entry, with the folder's current place.
        owners.retain(|o| !(o.service == owner.service && o.root == owner.root));
        owners.push(owner);
        Ok(())
    }

    /// Watch `root/rel` and every folder below it that is not ignored.
    /// Errors on the top folder are returned when `top_must_work`; below
    /// it, folders that vanish or cannot be read are skipped, and only the
    /// watch limit is an error.
    fn add_tree(
        &mut self,
        service: usize,
        root: &Path,
        rel: &Path,
        top_must_work: bool,
    ) -> Result<(), String> {
        let ignore = match self.services.get(&service) {
            Some(e) => e.ignore.clone(),
            None => return Ok(()),
        };
        let mut stack = vec![rel.to_path_buf()];
        let mut top = true;
        while let Some(rel) = stack.pop() {
            let path = root.join(&rel);
            let owner = Owner {
                service,
                root: root.to_path_buf(),
                rel: rel.clone(),
                only: None,
            };
            match self.add_dir(owner, top && top_must_work) {
                Ok(()) => {}
                Err(e) if e == Errno::ENOSPC || (top && top_must_work) => {
                    return Err(add_error(&path, e))
                }
                Err(_) => {
                    top = false;
                    continue;
                }
            }
            top = false;
            let Ok(entries) = std::fs::read_dir(&path) else {
                continue;
            };
            for entry in entries.flatten() {
                // DirEntry's type does not follow symlinks.
                if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let name = entry.file_name();
                let child = rel.join(&name);
                if !ignored(&ignore, &name, &child) {
                    stack.push(child);
                }
            }
        }
        Ok(())
    }

    /// Stop watching for `service`'s folders at `rel` and below (moved away).
    fn forget_tree(&mut self, service: usize, root: &Path, rel: &Path) {
        let mut dropped = Vec::new();
        for (wd, owners) in self.wds.iter_mut() {
            owners.retain(|o| !(o.service == service && o.root == root && o.rel.starts_with(rel)));
            if owners.is_empty() {
                dropped.push(*wd);
            }
        }
        for wd in dropped {
            self.wds.remove(&wd);
            let _ = self.inotify.rm_watch(wd);
        }
    }

    /// Stop watching for `service` and forget its pending changes.
    pub fn remove(&mut self, service: usize) {
        if self.services.remove(&service).is_none() {
            return;
        }
        let mut dropped = Vec::new();
        for (wd, owners) in self.wds.iter_mut() {
            owners.retain(|o| o.service != service);
            if owners.is_empty() {
                dropped.push(*wd);
            }
        }
        for wd in dropped {
            self.wds.remove(&wd);
            let _ = self.inotify.rm_watch(wd);
        }
    }

    /// Read every pending event and note the changes. Returns warnings to
    /// log (a failed read, a folder that could not be watched).
    pub fn on_readable(&mut self, now: Instant) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut rescan = false;
        loop {
            match self.inotify.read_events() {
                Ok(events) if events.is_empty() => break,
                Ok(events) => {
                    for ev in &events {
                        rescan |= self.handle(ev, now, &mut warnings);
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    warnings.push(format!("watch: read inotify events: {}", e.desc()));
                    break;
                }
            }
        }
        if rescan {
            self.rescan(&mut warnings);
        }
        warnings
    }

    /// One event; true when events were lost (rescan the trees).
    fn handle(&mut self, ev: &InotifyEvent, now: Instant, warnings: &mut Vec<String>) -> bool {
        if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
            for e in self.services.values_mut() {
                e.change(now);
            }
            return true;
        }
        if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
            // The folder is gone (or its watch was removed).
            self.wds.remove(&ev.wd);
            return false;
        }
        let Some(owners) = self.wds.get(&ev.wd).cloned() else {
            return false;
        };
        let is_dir = ev.mask.contains(AddWatchFlags::IN_ISDIR);
        for o in owners {
            let Some(entry) = self.services.get_mut(&o.service) else {
                continue;
            };
            let Some(name) = &ev.name else {
                // The folder itself: attributes, deleted, moved.
                let gone = AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF;
                if o.only.is_none() || ev.mask.intersects(gone) {
                    entry.change(now);
                }
                continue;
            };
            if o.only.as_ref().is_some_and(|only| only != name) {
                continue;
            }
            let rel = o.rel.join(name);
            if ignored(&entry.ignore, name, &rel) {
                continue;
            }
            entry.change(now);
            if !is_dir || o.only.is_some() {
                continue;
            }
            if ev.mask.contains(AddWatchFlags::IN_MOVED_FROM) {
                self.forget_tree(o.service, &o.root, &rel);
            }
            if ev
                .mask
                .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
            {
                if let Err(e) = self.add_tree(o.service, &o.root, &rel, false) {
                    warnings.push(e);
                }
            }
        }
        false
    }

    /// Watch again every tree (after lost events: folders may have come).
    fn rescan(&mut self, warnings: &mut Vec<String>) {
        let mut services: Vec<usize> = self.services.keys().copied().collect();
        services.sort_unstable();
        for s in services {
            let roots = match self.services.get_mut(&s) {
                Some(e) => std::mem::take(&mut e.roots),
                None => continue,
            };
            for root in &roots {
                if let Err(e) = self.watch_root(s, root) {
                    warnings.push(e);
                }
            }
            if let Some(e) = self.services.get_mut(&s) {
                e.roots = roots;
            }
        }
    }

    /// When the next service is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.services.values().filter_map(Entry::deadline).min()
    }

    /// The services whose changes are due at `now` (sorted); their windows
    /// close.
    pub fn due(&mut self, now: Instant) -> Vec<usize> {
        let mut due: Vec<usize> = Vec::new();
        for (s, e) in self.services.iter_mut() {
            if e.deadline().is_some_and(|d| d <= now) {
                e.first = None;
                e.last = None;
                due.push(*s);
            }
        }
        due.sort_unstable();
        due
    }

    /// Folders watched (for tests and metrics).
    pub fn watched_folders(&self) -> usize {
        self.wds.len()
    }
}

impl mio::event::Source for Watcher {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.inotify.as_fd().as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.inotify.as_fd().as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.inotify.as_fd().as_raw_fd()).deregister(registry)
    }
}

#[cfg(test)]
mod tests;
