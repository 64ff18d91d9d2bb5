//! Watching real temporary folders. inotify queues an event during the
//! syscall that causes it, so reading right after a write sees it; times
//! are injected.

use super::*;
use std::fs;

const MS: Duration = Duration::from_millis(1);
const DEBOUNCE: Duration = Duration::from_millis(500);

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p =
            std::env::temp_dir().join(format!("sentinel-watch-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    fn write(&self, rel: &str) {
        fs::write(self.p(rel), b"x").unwrap();
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn watch(paths: Vec<PathBuf>, ignore: &[&str]) -> Watch {
    Watch {
        paths,
        ignore: ignore.iter().map(|s| s.to_string()).collect(),
        debounce: DEBOUNCE,
    }
}

/// Read the events at `now`; no warnings expected.
fn read(w: &mut Watcher, now: Instant) {
    let warnings = w.on_readable(now);
    assert!(warnings.is_empty(), "{warnings:?}");
}

/// Whether something is pending; closes the window if so.
fn changed(w: &mut Watcher, service: usize, now: Instant) -> bool {
    read(w, now);
    match w.next_deadline() {
        None => false,
        Some(d) => w.due(d) == [service],
    }
}

#[test]
fn globs() {
    let yes = [
        ("*.log", "a.log"),
        ("*.log", ".log"),
        ("a?c", "abc"),
        ("*", "anything"),
        ("target", "target"),
        ("target/", "target"),
        ("build/*.o", "build/x.o"),
        ("*/*.tmp", "a/b.tmp"),
        ("*a*b*", "xxaYYbzz"),
        ("*.tar.gz", "x.tar.gz"),
        ("**", "x"),
        ("", ""),
    ];
    for (p, t) in yes {
        assert!(glob_match(p, t), "{p} should match {t}");
    }
    let no = [
        ("*.log", "a.log.1"),
        ("*.log", "dir/a.log"),
        ("a?c", "ac"),
        ("a?c", "a/c"),
        ("build/*.o", "build/sub/x.o"),
        ("build/*.o", "x.o"),
        ("*", "a/b"),
        ("target", "targets"),
        ("*a*b", "xxaYYbzz"),
        ("", "x"),
    ];
    for (p, t) in no {
        assert!(!glob_match(p, t), "{p} should not match {t}");
    }
}

#[test]
fn writes_make_one_restart_per_debounce_window() {
    let dir = Dir::new("once");
    dir.write("app.py");
    let mut w = Watcher::new().unwrap();
    w.add(0, &watch(vec![dir.0.clone()], &[])).unwrap();
    assert_eq!(w.next_deadline(), None);
    let t0 = Instant::now();
    for _ in 0..3 {
        dir.write("app.py");
    }
    read(&mut w, t0);
    assert_eq!(w.next_deadline(), Some(t0 + DEBOUNCE));
    assert!(w.due(t0 + DEBOUNCE - MS).is_empty());
    assert_eq!(w.due(t0 + DEBOUNCE), [0]);
    assert!(w.due(t0 + DEBOUNCE * 10).is_empty());
    assert_eq!(w.next_deadline(), None);
    // `touch` (only the times change) is a change too; a new window opens.
    let t1 = t0 + Duration::from_secs(5);
    let f = fs::File::options()
        .write(true)
        .open(dir.p("app.py"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    read(&mut w, t1);
    assert_eq!(w.due(t1 + DEBOUNCE), [0]);
    // Nothing new: nothing pending.
    read(&mut w, t1 + DEBOUNCE * 2);
    assert_eq!(w.next_deadline(), None);
}

#[test]
fn trailing_edge_moves_with_each_change_up_to_four_debounces() {
    let dir = Dir::new("trail");
    let mut w = Watcher::new().unwrap();
    w.add(3, &watch(vec![dir.0.clone()], &[])).unwrap();
    let t0 = Instant::now();
    dir.write("a");
    read(&mut w, t0);
    dir.write("a");
    read(&mut w, t0 + 300 * MS);
    assert!(w.due(t0 + DEBOUNCE).is_empty());
    assert_eq!(w.next_deadline(), Some(t0 + 800 * MS));
    assert_eq!(w.due(t0 + 800 * MS), [3]);

    // A steady trickle every 300ms: due 4 × debounce after its start.
    let t1 = t0 + Duration::from_secs(10);
    for k in 0..=6u32 {
        let t = t1 + 300 * MS * k;
        dir.write("a");
        read(&mut w, t);
        assert!(w.due(t).is_empty(), "due early at {k}");
    }
    assert_eq!(w.next_deadline(), Some(t1 + DEBOUNCE * 4));
    assert_eq!(w.due(t1 + DEBOUNCE * 4), [3]);
}

#[test]
fn ignored_names_paths_and_folders_make_no_change() {
    let dir = Dir::new("ignore");
    fs::create_dir_all(dir.p("target/debug")).unwrap();
    fs::create_dir_all(dir.p("cache")).unwrap();
    let mut w = Watcher::new().unwrap();
    w.add(
        1,
        &watch(vec![dir.0.clone()], &["*.log", "target", "cache/*.bin"]),
    )
    .unwrap();
    // The root and cache/: target/ and below are not watched at all.
    assert_eq!(w.watched_folders(), 2);
    let t = Instant::now();
    dir.write("x.log");
    dir.write("target/a.o");
    dir.write("target/debug/b.o");
    dir.write("cache/c.bin");
    fs::create_dir(dir.p("target2.log")).unwrap();
    read(&mut w, t);
    assert_eq!(w.next_deadline(), None);
    // A new folder named like an ignored one is not watched either.
    fs::remove_dir_all(dir.p("target")).unwrap();
    fs::create_dir(dir.p("target")).unwrap();
    dir.write("target/c.o");
    read(&mut w, t);
    assert_eq!(w.next_deadline(), None);
    assert_eq!(w.watched_folders(), 2);
    // What is not ignored counts.
    dir.write("cache/c.txt");
    assert!(changed(&mut w, 1, t));
}

#[test]
fn folders_made_after_add_are_watched_too() {
    let dir = Dir::new("sub");
    let mut w = Watcher::new().unwrap();
    w.add(2, &watch(vec![dir.0.clone()], &[])).unwrap();
    let t = Instant::now();
    fs::create_dir(dir.p("sub")).unwrap();
    assert!(changed(&mut w, 2, t));
    dir.write("sub/f");
    assert!(changed(&mut w, 2, t));
    // A tree made at once: the folders made before the watch reached them
    // are found by walking.
    fs::create_dir_all(dir.p("a/b/c")).unwrap();
    assert!(changed(&mut w, 2, t));
    dir.write("a/b/c/f");
    assert!(changed(&mut w, 2, t));
    // A tree moved in from outside.
    let outside = Dir::new("outside");
    fs::create_dir_all(outside.p("x/y")).unwrap();
    fs::rename(outside.p("x"), dir.p("moved")).unwrap();
    assert!(changed(&mut w, 2, t));
    dir.write("moved/y/f");
    assert!(changed(&mut w, 2, t));
    // Moved within the tree: still watched, under its new name.
    fs::rename(dir.p("moved"), dir.p("sub/renamed")).unwrap();
    assert!(changed(&mut w, 2, t));
    dir.write("sub/renamed/y/g");
    assert!(changed(&mut w, 2, t));
    // Moved out: no longer ours.
    fs::rename(dir.p("sub/renamed"), outside.p("back")).unwrap();
    assert!(changed(&mut w, 2, t));
    fs::write(outside.p("back/y/h"), b"x").unwrap();
    read(&mut w, t);
    assert_eq!(w.next_deadline(), None);
    // Removed folders are let go: the root, sub and a remain.
    fs::remove_dir_all(dir.p("a/b")).unwrap();
    assert!(changed(&mut w, 2, t));
    assert_eq!(w.watched_folders(), 3);
}

#[test]
fn a_watched_file_survives_being_replaced_by_rename() {
    let dir = Dir::new("file");
    dir.write("config.toml");
    let mut w = Watcher::new().unwrap();
    w.add(0, &watch(vec![dir.p("config.toml")], &[])).unwrap();
    let t = Instant::now();
    dir.write("other.txt");
    read(&mut w, t);
    assert_eq!(w.next_deadline(), None);
    dir.write("config.toml");
    assert!(changed(&mut w, 0, t));
    // What editors do: write a new file, rename it over the old one.
    dir.write("config.toml.swp");
    fs::rename(dir.p("config.toml.swp"), dir.p("config.toml")).unwrap();
    assert!(changed(&mut w, 0, t));
    dir.write("config.toml");
    assert!(changed(&mut w, 0, t));
}

#[test]
fn services_share_folders_and_remove_lets_go() {
    let dir = Dir::new("share");
    fs::create_dir(dir.p("lib")).unwrap();
    let mut w = Watcher::new().unwrap();
    w.add(0, &watch(vec![dir.0.clone()], &[])).unwrap();
    w.add(1, &watch(vec![dir.p("lib")], &["*.tmp"])).unwrap();
    assert_eq!(w.watched_folders(), 2);
    let t = Instant::now();
    dir.write("lib/x.rs");
    read(&mut w, t);
    assert_eq!(w.due(t + DEBOUNCE), [0, 1]);
    // Each service's own ignore list, relative to its own root.
    dir.write("lib/y.tmp");
    read(&mut w, t);
    assert_eq!(w.due(t + DEBOUNCE), [0]);
    w.remove(0);
    assert_eq!(w.watched_folders(), 1);
    dir.write("top.rs");
    dir.write("lib/z.rs");
    read(&mut w, t);
    assert_eq!(w.due(t + DEBOUNCE), [1]);
    w.remove(1);
    assert_eq!(w.watched_folders(), 0);
    dir.write("lib/z.rs");
    read(&mut w, t);
    assert_eq!(w.next_deadline(), None);
}

#[test]
fn a_missing_path_is_an_error_that_names_it() {
    let dir = Dir::new("missing");
    let mut w = Watcher::new().unwrap();
    let err = w
        .add(0, &watch(vec![dir.0.clone(), dir.p("nope")], &[]))
        .unwrap_err();
    assert_eq!(
        err,
        format!(
            "watch {}: No such file or directory (os error 2)",
            dir.p("nope").display()
        )
    );
    // Nothing half-watched stays behind.
    assert_eq!(w.watched_folders(), 0);
    dir.write("a");
    read(&mut w, Instant::now());
    assert_eq!(w.next_deadline(), None);
}

#[test]
fn lost_events_count_as_a_change_and_rescan_the_trees() {
    let dir = Dir::new("overflow");
    let other = Dir::new("overflow2");
    let mut w = Watcher::new().unwrap();
    w.add(0, &watch(vec![dir.0.clone()], &[])).unwrap();
    w.add(1, &watch(vec![other.0.clone()], &[])).unwrap();
    // A folder appears and its event is lost.
    fs::create_dir(dir.p("new")).unwrap();
    let lost = w.inotify.read_events().unwrap();
    assert!(!lost.is_empty());
    let overflow = InotifyEvent {
        wd: lost[0].wd,
        mask: AddWatchFlags::IN_Q_OVERFLOW,
        cookie: 0,
        name: None,
    };
    let t = Instant::now();
    let mut warnings = Vec::new();
    assert!(w.handle(&overflow, t, &mut warnings));
    w.rescan(&mut warnings);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(w.due(t + DEBOUNCE), [0, 1]);
    dir.write("new/f");
    assert!(changed(&mut w, 0, t));
}

#[test]
fn readable_through_mio() {
    let dir = Dir::new("mio");
    let mut w = Watcher::new().unwrap();
    w.add(0, &watch(vec![dir.0.clone()], &[])).unwrap();
    let mut poll = mio::Poll::new().unwrap();
    poll.registry()
        .register(&mut w, Token(7), Interest::READABLE)
        .unwrap();
    let mut events = mio::Events::with_capacity(8);
    poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
    assert!(events.is_empty());
    dir.write("f");
    poll.poll(&mut events, Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.token()).collect::<Vec<_>>(),
        [Token(7)]
    );
    assert!(changed(&mut w, 0, Instant::now()));
    poll.registry().deregister(&mut w).unwrap();
}
