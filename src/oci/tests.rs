use super::*;

/// A fresh folder for one test, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("sentinel-oci-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("rootfs")).unwrap();
        std::fs::create_dir_all(d.join("run")).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fs_mount(target: &str, kind: MountKind, flags: libc::c_ulong, ro: bool) -> Mount {
    Mount {
        target: target.into(),
        kind,
        flags,
        data: None,
        read_only: ro,
    }
}

/// What `umoci unpack` asks for, plus a read-only bind of a host file.
fn umoci_like(d: &Dir) -> Mounts {
    std::fs::write(d.0.join("hosts"), "127.0.0.1 localhost\n").unwrap();
    Mounts {
        bundle: d.0.clone(),
        mounts: vec![
            fs_mount("/dev/pts", MountKind::Devpts, libc::MS_NOSUID, false),
            fs_mount("/dev/shm", MountKind::Tmpfs, libc::MS_NODEV, false),
            fs_mount("/sys", MountKind::Sysfs, libc::MS_NOEXEC, true),
            fs_mount(
                "/etc/hosts",
                MountKind::Bind {
                    source: d.0.join("hosts"),
                    recursive: false,
                },
                0,
                true,
            ),
        ],
        masked: vec![
            "/proc/timer_list".into(),
            "/sys/firmware".into(),
            "/proc/no-such-file".into(),
            "/dev/shm/x".into(),
        ],
        read_only: vec!["/proc/sys".into()],
        read_only_root: true,
    }
}

#[test]
fn prepare_makes_the_targets_and_the_dev_template() {
    let d = Dir::new("prepare");
    let root = d.0.join("rootfs");
    let m = umoci_like(&d);
    let inaccessible = d.0.join("run/.sentinel-inaccessible");
    prepare(&root, &m, Some(Path::new("/srv/app")), &inaccessible).unwrap();
    for dir in ["proc", "dev", "sys", "srv/app"] {
        assert!(root.join(dir).is_dir(), "{dir}");
    }
    assert!(root.join("etc/hosts").is_file(), "a file bind needs a file");
    // /dev/pts and /dev/shm are in the template, not in the image.
    assert!(!root.join("dev/pts").exists());
    let t = d.0.join("run").join(DEV_TEMPLATE);
    for f in DEVICES {
        assert!(t.join(f).is_file(), "{f}");
    }
    assert!(t.join("pts").is_dir() && t.join("shm").is_dir());
    assert_eq!(
        std::fs::read_link(t.join("ptmx")).unwrap(),
        Path::new("pts/ptmx")
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&inaccessible).unwrap().mode() & 0o777, 0);
    // Twice is fine.
    prepare(&root, &m, None, &inaccessible).unwrap();
}

#[test]
fn prepare_refuses_links_of_the_image() {
    let d = Dir::new("links");
    let root = d.0.join("rootfs");
    std::os::unix::fs::symlink("/tmp", root.join("sys")).unwrap();
    let m = umoci_like(&d);
    let err = prepare(&root, &m, None, &d.0.join("run/x")).unwrap_err();
    assert!(
        err.starts_with(&format!(
            "/sys: {} is a symbolic link in the image",
            root.join("sys").display()
        )),
        "{err}"
    );
}

#[test]
fn mount_plan_order_and_flags() {
    let d = Dir::new("plan");
    let root = d.0.join("rootfs");
    let m = umoci_like(&d);
    let inaccessible = d.0.join("run/.sentinel-inaccessible");
    prepare(&root, &m, None, &inaccessible).unwrap();
    let plan = mount_plan(&root, &m, &inaccessible).unwrap();
    let r = root.display().to_string();
    let mut want: Vec<String> = vec![format!("{r}/dev")];
    for dev in DEVICES {
        if Path::new("/dev").join(dev).exists() {
            want.push(format!("{r}/dev/{dev}"));
        }
    }
    want.extend(
        [
            "/dev/pts",
            "/dev/shm",
            "/sys",
            "/etc/hosts",
            "/etc/hosts",
            "/dev",
        ]
        .map(|t| format!("{r}{t}")),
    );
    // Masked: a file of /proc (bind + read-only), a folder of /sys; the
    // missing one and the one inside a fresh tmpfs are skipped.
    if Path::new("/proc/timer_list").exists() {
        want.extend([
            format!("{r}/proc/timer_list"),
            format!("{r}/proc/timer_list"),
        ]);
    }
    if Path::new("/sys/firmware").is_dir() {
        want.push(format!("{r}/sys/firmware"));
    }
    want.extend([format!("{r}/proc/sys"), format!("{r}/proc/sys"), r.clone()]);
    let targets: Vec<String> = plan
        .iter()
        .map(|m| m.target.to_string_lossy().into_owned())
        .collect();
    assert_eq!(targets, want);

    let find = |t: &str| {
        plan.iter()
            .filter(|m| m.target.to_string_lossy() == format!("{r}{t}"))
            .collect::<Vec<_>>()
    };
    let dev = find("/dev");
    assert_eq!(
        dev[0]
            .source
            .as_deref()
            .map(|s| s.to_string_lossy().into_owned()),
        Some(d.0.join("run").join(DEV_TEMPLATE).display().to_string())
    );
    assert_ne!(
        dev[1].flags & libc::MS_RDONLY,
        0,
        "the /dev template is read-only"
    );
    let sys = find("/sys")[0];
    assert_eq!(sys.fstype.as_deref(), Some(c"sysfs"));
    assert_eq!(sys.flags, libc::MS_NOEXEC | libc::MS_RDONLY);
    let hosts = find("/etc/hosts");
    assert_eq!(hosts[0].flags, libc::MS_BIND);
    let ro = libc::MS_REMOUNT | libc::MS_RDONLY;
    assert_eq!(hosts[1].flags & ro, ro);
    let proc_sys = find("/proc/sys");
    assert_eq!(proc_sys[0].flags, libc::MS_BIND | libc::MS_REC);
    let want_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RDONLY;
    assert_eq!(
        proc_sys[1].flags & want_flags,
        want_flags,
        "proc's flags kept"
    );
    let last = plan.last().unwrap();
    assert_eq!(last.target.to_string_lossy(), r);
    assert_eq!(
        last.flags & (libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY),
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY
    );
}

#[test]
fn a_writable_root_is_not_remounted() {
    let d = Dir::new("rw");
    let root = d.0.join("rootfs");
    let m = Mounts {
        bundle: d.0.clone(),
        mounts: Vec::new(),
        masked: Vec::new(),
        read_only: Vec::new(),
        read_only_root: false,
    };
    let plan = mount_plan(&root, &m, &d.0.join("run/x")).unwrap();
    assert!(plan
        .iter()
        .all(|p| !p.target.to_string_lossy().ends_with("rootfs")));
}
