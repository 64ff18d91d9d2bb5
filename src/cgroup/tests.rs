//! Tests against a temporary directory that imitates cgroupfs: the
//! fixture makes the files the kernel would show (a plain `mkdir` makes
//! none), and the tests read back what the code wrote (appended, one
//! value a line).

use super::*;
use crate::config::{CpuMax, IoMax, Limits};
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A throwaway cgroup2 "mount", removed on drop.
struct Fake(PathBuf);

/// What a group holds on a kernel with every controller enabled for it.
const GROUP_FILES: &[(&str, &str)] = &[
    ("cgroup.controllers", "cpu io memory pids\n"),
    ("cgroup.subtree_control", ""),
    ("cgroup.procs", ""),
    ("cgroup.events", "populated 0\nfrozen 0\n"),
    ("cgroup.type", "domain\n"),
    ("cgroup.kill", ""),
    ("cgroup.freeze", "0\n"),
    ("memory.max", ""),
    ("memory.high", ""),
    ("memory.swap.max", ""),
    ("cpu.max", ""),
    ("cpu.weight", ""),
    ("pids.max", ""),
    ("io.weight", ""),
    ("io.max", ""),
];

impl Fake {
    fn new(name: &str) -> Fake {
        let path =
            std::env::temp_dir().join(format!("sentinel-cgroup-{}-{}", std::process::id(), name));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Fake(path)
    }

    fn root(&self) -> &Path {
        &self.0
    }

    /// A group at `rel` with the kernel's files, then `files` over them.
    fn group(&self, rel: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.0.join(rel);
        fs::create_dir_all(&dir).unwrap();
        for (name, text) in GROUP_FILES.iter().chain(files) {
            fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.0.join(rel)).unwrap()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Every file under `dir`, for "nothing was written" checks.
fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = vec![];
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            out.push((path.clone(), fs::read_to_string(&path).unwrap()));
        }
    }
    out.sort();
    out
}

// --- discovery -------------------------------------------------------------

/// This build machine's layout: v1 controllers, cgroup2 at .../unified.
const MOUNTINFO_HYBRID: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 31 0:30 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
";

const MOUNTINFO_PURE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
26 22 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
27 26 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:8 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

#[test]
fn find_mount_in_hybrid_pure_and_several() {
    assert_eq!(
        find_mount(MOUNTINFO_HYBRID),
        Some(PathBuf::from("/sys/fs/cgroup/unified"))
    );
    assert_eq!(
        find_mount(MOUNTINFO_PURE),
        Some(PathBuf::from("/sys/fs/cgroup"))
    );
    // A second cgroup2 mount first in the file: /sys/fs/cgroup still wins.
    let several = format!("90 22 0:24 / /run/my\\040cg rw - cgroup2 cgroup2 rw\n{MOUNTINFO_PURE}");
    assert_eq!(find_mount(&several), Some(PathBuf::from("/sys/fs/cgroup")));
    let escaped = "90 22 0:24 / /run/my\\040cg rw - cgroup2 cgroup2 rw\n";
    assert_eq!(find_mount(escaped), Some(PathBuf::from("/run/my cg")));
    // No optional fields, one optional field, several.
    let opt = "90 22 0:24 / /cg rw shared:1 master:2 - cgroup2 none rw\n";
    assert_eq!(find_mount(opt), Some(PathBuf::from("/cg")));
    assert_eq!(find_mount("31 23 0:28 / /x rw - tmpfs tmpfs rw\n"), None);
    assert_eq!(find_mount(""), None);
}

#[test]
fn own_cgroup_is_the_0_line() {
    let hybrid = "12:memory:/user.slice\n1:name=systemd:/user.slice/session-3.scope\n\
                  0::/user.slice/user-0.slice/session-3.scope\n";
    assert_eq!(
        own_cgroup(hybrid).as_deref(),
        Some("/user.slice/user-0.slice/session-3.scope")
    );
    assert_eq!(own_cgroup("0::/\n").as_deref(), Some("/"));
    assert_eq!(own_cgroup("9:name=systemd:/\n8:pids:/\n"), None);
}

#[test]
fn base_relative_absolute_and_refused() {
    let m = Path::new("/sys/fs/cgroup");
    let h = Hierarchy::new(m, "/system.slice/s.service", "sentinel").unwrap();
    assert_eq!(h.own, m.join("system.slice/s.service"));
    assert_eq!(h.base, m.join("system.slice/s.service/sentinel"));
    assert_eq!(h.top(), h.own);

    let h = Hierarchy::new(m, "/system.slice/s.service", "/sentinel/main").unwrap();
    assert_eq!(h.base, m.join("sentinel/main"));
    assert_eq!(h.top(), m, "disjoint: the deepest common ancestor");

    let h = Hierarchy::new(m, "/system.slice/s.service", "").unwrap();
    assert_eq!(h.base, h.own);

    let h = Hierarchy::new(m, "/", "sentinel").unwrap();
    assert_eq!((h.own.as_path(), h.base.clone()), (m, m.join("sentinel")));

    for (own, root) in [
        ("/a", "../b"),
        ("/../a", "x"),
        ("/a", "/"),
        ("/", ""),
        ("/a/b", "/a"),
    ] {
        let err = Hierarchy::new(m, own, root).unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{own} {root}: {err}");
    }
}

#[test]
fn hierarchy_from_proc_texts() {
    let h =
        Hierarchy::from_proc(MOUNTINFO_PURE, "0::/system.slice/s.service\n", "sentinel").unwrap();
    assert_eq!(
        h.base,
        Path::new("/sys/fs/cgroup/system.slice/s.service/sentinel")
    );
    // The hybrid layout of this build machine.
    let h =
        Hierarchy::from_proc(MOUNTINFO_HYBRID, "1:name=systemd:/\n0::/user.slice\n", "/s").unwrap();
    assert_eq!(h.own, Path::new("/sys/fs/cgroup/unified/user.slice"));
    assert_eq!(h.base, Path::new("/sys/fs/cgroup/unified/s"));
    // A container's own cgroup bind-mounted at /sys/fs/cgroup (no cgroupns).
    let bind = "40 30 0:24 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n";
    let h = Hierarchy::from_proc(bind, "0::/docker/abc\n", "sentinel").unwrap();
    assert_eq!(h.own, Path::new("/sys/fs/cgroup"));
    assert_eq!(h.base, Path::new("/sys/fs/cgroup/sentinel"));
    let err = Hierarchy::from_proc("", "0::/\n", "sentinel").unwrap_err();
    assert_eq!(err.to_string(), "no cgroup2 file system is mounted");
    let err = Hierarchy::from_proc(MOUNTINFO_PURE, "0::/../x\n", "sentinel").unwrap_err();
    assert_eq!(err.to_string(), "cgroup path \"/../x\" leaves its root");
}

// --- setup -----------------------------------------------------------------

const ALL_CONTROLLERS: &str = "cpuset cpu io memory hugetlb pids rdma misc\n";

#[test]
fn setup_moves_sentinel_and_enables_top_down() {
    let fake = Fake::new("setup");
    let own = "system.slice/s.service";
    fake.group(
        own,
        &[
            ("cgroup.controllers", ALL_CONTROLLERS),
            ("cgroup.procs", "4242\n"),
        ],
    );
    fake.group(&format!("{own}/sentinel"), &[]);
    fake.group(&format!("{own}/sentinel/supervisor"), &[]);
    let h = Hierarchy::new(fake.root(), "/system.slice/s.service", "sentinel").unwrap();
    assert_eq!(
        h.available_controllers().unwrap(),
        [
            Controller::Cpu,
            Controller::Io,
            Controller::Memory,
            Controller::Pids
        ]
    );

    let setup = h
        .setup_as(
            &[
                Controller::Pids,
                Controller::Memory,
                Controller::Cpu,
                Controller::Pids,
            ],
            4242,
        )
        .unwrap();
    assert_eq!(
        setup.enabled,
        [Controller::Cpu, Controller::Memory, Controller::Pids]
    );
    assert!(setup.unavailable.is_empty());
    assert_eq!(setup.supervisor, Some(h.base.join("supervisor")));
    assert!(setup.moved.is_empty());
    assert_eq!(
        fake.read(&format!("{own}/sentinel/supervisor/cgroup.procs")),
        "4242\n"
    );
    // Own cgroup and base each get every controller; the leaf none.
    for dir in [own.to_string(), format!("{own}/sentinel")] {
        let text = fake.read(&format!("{dir}/cgroup.subtree_control"));
        assert_eq!(text, "+cpu\n+memory\n+pids\n", "{dir}");
    }
    assert_eq!(
        fake.read(&format!("{own}/sentinel/supervisor/cgroup.subtree_control")),
        ""
    );
    // Nothing above sentinel's own cgroup is touched.
    assert!(!fake.root().join("cgroup.subtree_control").exists());
}

#[test]
fn setup_makes_the_base_and_reports_what_it_cannot_enable() {
    let fake = Fake::new("setup-missing");
    fake.group(
        "svc",
        &[
            ("cgroup.controllers", "cpu pids\n"),
            ("cgroup.subtree_control", "pids\n"),
        ],
    );
    let h = Hierarchy::new(fake.root(), "/svc", "sentinel/nested").unwrap();
    // No base yet: what the nearest existing ancestor offers.
    assert_eq!(
        h.available_controllers().unwrap(),
        [Controller::Cpu, Controller::Pids]
    );
    // The supervisor leaf as the kernel makes it; sentinel/nested stay plain dirs.
    fake.group("svc/sentinel/nested/supervisor", &[]);

    let setup = h
        .setup_as(&[Controller::Memory, Controller::Pids, Controller::Cpu], 77)
        .unwrap();
    assert_eq!(
        fake.read("svc/sentinel/nested/supervisor/cgroup.procs"),
        "77\n"
    );
    assert!(setup.enabled.is_empty());
    let reasons: Vec<(Controller, String)> = setup
        .unavailable
        .iter()
        .map(|(c, e)| (*c, e.to_string()))
        .collect();
    let root = fake.root().display();
    assert_eq!(
        reasons,
        [
            // svc/sentinel is a plain dir: no kernel files in it.
            (
                Controller::Cpu,
                format!(
                    "write \"+cpu\" to {root}/svc/sentinel/cgroup.subtree_control: \
                     No such file or directory"
                )
            ),
            (
                Controller::Memory,
                format!("controller memory is not available: not in {root}/svc/cgroup.controllers")
            ),
            (
                Controller::Pids,
                format!(
                    "write \"+pids\" to {root}/svc/sentinel/cgroup.subtree_control: \
                     No such file or directory"
                )
            ),
        ]
    );
    // pids was enabled already in svc: not written again; cpu was.
    assert_eq!(fake.read("svc/cgroup.subtree_control"), "pids\n+cpu\n");
}

#[test]
fn setup_fails_when_sentinel_cannot_move() {
    let fake = Fake::new("setup-nomove");
    fake.group("svc", &[]);
    let h = Hierarchy::new(fake.root(), "/svc", "sentinel").unwrap();
    let err = h.setup_as(&[], 4242).unwrap_err();
    // mkdir made the base and the leaf; the plain leaf has no cgroup.procs.
    assert!(h.base.join("supervisor").is_dir());
    assert_eq!(
        err.to_string(),
        format!(
            "write \"4242\" to {}/svc/sentinel/supervisor/cgroup.procs: No such file or directory",
            fake.root().display()
        )
    );
}

#[test]
fn setup_as_pid1_of_a_container_moves_everyone() {
    let fake = Fake::new("setup-pid1");
    // The container's cgroup namespace root: not the real root (cgroup.type).
    fake.group(
        "",
        &[
            ("cgroup.controllers", ALL_CONTROLLERS),
            ("cgroup.procs", "1\n37\n52\n"),
        ],
    );
    fake.group("sentinel", &[]);
    fake.group("sentinel/supervisor", &[]);
    let h = Hierarchy::new(fake.root(), "/", "sentinel").unwrap();
    let setup = h.setup_as(&[Controller::Memory], 1).unwrap();
    assert_eq!(setup.moved, [37, 52]);
    assert_eq!(fake.read("sentinel/supervisor/cgroup.procs"), "1\n37\n52\n");
    assert_eq!(fake.read("cgroup.subtree_control"), "+memory\n");
    assert_eq!(fake.read("sentinel/cgroup.subtree_control"), "+memory\n");
}

#[test]
fn setup_as_pid1_in_the_real_root_moves_only_itself() {
    let fake = Fake::new("setup-root");
    fake.group(
        "",
        &[
            ("cgroup.controllers", ALL_CONTROLLERS),
            ("cgroup.procs", "1\n2\n3\n"),
        ],
    );
    fs::remove_file(fake.root().join("cgroup.type")).unwrap();
    fake.group("sentinel/supervisor", &[]);
    let h = Hierarchy::new(fake.root(), "/", "sentinel").unwrap();
    let setup = h.setup_as(&[], 1).unwrap();
    assert!(setup.moved.is_empty());
    assert_eq!(fake.read("sentinel/supervisor/cgroup.procs"), "1\n");
}

#[test]
fn setup_with_an_absolute_root_elsewhere_does_not_move() {
    let fake = Fake::new("setup-abs");
    fake.group(
        "",
        &[
            ("cgroup.controllers", ALL_CONTROLLERS),
            ("cgroup.subtree_control", "memory\n"),
        ],
    );
    fake.group("user.slice/x.scope", &[("cgroup.procs", "4242\n")]);
    fake.group("sentinel", &[]);
    let before = snapshot(&fake.root().join("user.slice"));
    let h = Hierarchy::new(fake.root(), "/user.slice/x.scope", "/sentinel").unwrap();
    let setup = h
        .setup_as(&[Controller::Memory, Controller::Pids], 4242)
        .unwrap();
    assert_eq!(setup.supervisor, None);
    assert_eq!(setup.enabled, [Controller::Memory, Controller::Pids]);
    assert_eq!(fake.read("cgroup.subtree_control"), "memory\n+pids\n");
    assert_eq!(
        fake.read("sentinel/cgroup.subtree_control"),
        "+memory\n+pids\n"
    );
    assert_eq!(snapshot(&fake.root().join("user.slice")), before);
}

#[test]
fn occupied_names_the_processes() {
    let err = Error::Occupied {
        path: "/sys/fs/cgroup/user.slice/session-3.scope".into(),
        pids: vec![812, 990],
        source: std::io::Error::from_raw_os_error(libc::EBUSY),
    };
    let text = err.to_string();
    assert!(
        text.starts_with(
            "enable controllers in /sys/fs/cgroup/user.slice/session-3.scope: \
             Device or resource busy: processes 812, 990 are in it besides sentinel"
        ),
        "{text}"
    );
    assert!(err.is_busy());
}

// --- groups and limits -----------------------------------------------------

fn limits() -> Limits {
    Limits {
        memory_max: Some(512 << 20),
        memory_high: Some(400 << 20),
        memory_swap_max: Some(0),
        cpu_max: Some(CpuMax {
            quota_us: 150_000,
            period_us: 100_000,
        }),
        cpu_weight: Some(200),
        pids_max: Some(64),
        io_weight: Some(50),
        io_max: vec![
            IoMax {
                device: "/dev/null".into(),
                rbps: Some(10 << 20),
                wbps: None,
                riops: None,
                wiops: Some(100),
            },
            IoMax {
                device: "254:16".into(),
                rbps: None,
                wbps: Some(1 << 20),
                riops: None,
                wiops: None,
            },
        ],
    }
}

#[test]
fn controllers_needed_and_limits_within() {
    assert!(controllers_needed(&Limits::default()).is_empty());
    assert_eq!(controllers_needed(&limits()), Controller::ALL);
    let only_pids = Limits {
        pids_max: Some(5),
        ..Limits::default()
    };
    assert_eq!(controllers_needed(&only_pids), [Controller::Pids]);
    let mem = Limits {
        memory_swap_max: Some(0),
        ..Limits::default()
    };
    assert_eq!(controllers_needed(&mem), [Controller::Memory]);

    let within = limits_within(&limits(), &[Controller::Pids, Controller::Io]);
    assert_eq!(
        within,
        Limits {
            pids_max: Some(64),
            io_weight: Some(50),
            io_max: limits().io_max,
            ..Limits::default()
        }
    );
    assert_eq!(limits_within(&limits(), &Controller::ALL), limits());
}

#[test]
fn device_numbers() {
    assert_eq!(device_number("/dev/null").unwrap(), (1, 3));
    assert_eq!(device_number("254:0").unwrap(), (254, 0));
    let err = device_number("/dev/no-such-disk").unwrap_err();
    assert_eq!(
        err.to_string(),
        "stat /dev/no-such-disk: No such file or directory"
    );
    let err = device_number("/").unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
}

#[test]
fn create_writes_every_level_and_opens_the_leaf() {
    let fake = Fake::new("create");
    for dir in [
        "base",
        "base/batch",
        "base/batch/nightly",
        "base/batch/nightly/web",
        "base/batch/nightly/web/0",
    ] {
        fake.group(dir, &[]);
    }
    let h = Hierarchy::new(fake.root(), "/", "/base").unwrap();
    let batch = Limits {
        memory_max: Some(2 << 30),
        ..Limits::default()
    };
    let nightly = Limits {
        pids_max: Some(1000),
        cpu_max: Some(CpuMax {
            quota_us: u64::MAX,
            period_us: 50_000,
        }),
        ..Limits::default()
    };
    let enabled = [
        Controller::Cpu,
        Controller::Io,
        Controller::Memory,
        Controller::Pids,
    ];
    let leaf = h
        .create(
            &enabled,
            &[("batch", &batch), ("nightly", &nightly)],
            "web",
            &limits(),
            "0",
        )
        .unwrap();
    assert_eq!(leaf.path(), fake.root().join("base/batch/nightly/web/0"));

    assert_eq!(fake.read("base/batch/memory.max"), "2147483648\n");
    assert_eq!(fake.read("base/batch/pids.max"), "");
    assert_eq!(fake.read("base/batch/nightly/pids.max"), "1000\n");
    assert_eq!(fake.read("base/batch/nightly/cpu.max"), "max 50000\n");
    let web = |f: &str| fake.read(&format!("base/batch/nightly/web/{f}"));
    assert_eq!(web("memory.max"), "536870912\n");
    assert_eq!(web("memory.high"), "419430400\n");
    assert_eq!(web("memory.swap.max"), "0\n");
    assert_eq!(web("cpu.max"), "150000 100000\n");
    assert_eq!(web("cpu.weight"), "200\n");
    assert_eq!(web("pids.max"), "64\n");
    assert_eq!(web("io.weight"), "default 50\n");
    assert_eq!(
        web("io.max"),
        "1:3 rbps=10485760 wbps=max riops=max wiops=100\n\
         254:16 rbps=max wbps=1048576 riops=max wiops=max\n"
    );
    // Controllers for the children of every level down to the leaf's parent.
    for dir in ["base/batch", "base/batch/nightly", "base/batch/nightly/web"] {
        assert_eq!(
            fake.read(&format!("{dir}/cgroup.subtree_control")),
            "+cpu\n+io\n+memory\n+pids\n",
            "{dir}"
        );
    }
    assert_eq!(web("0/cgroup.subtree_control"), "");
    assert_eq!(web("0/memory.max"), "");

    // The descriptors are the leaf's directory and its cgroup.procs.
    let target = |fd: i32| fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    assert_eq!(target(leaf.dir_fd().as_raw_fd()), leaf.path());
    assert_eq!(
        target(leaf.procs_fd().as_raw_fd()),
        leaf.path().join("cgroup.procs")
    );
    for fd in [leaf.dir_fd(), leaf.procs_fd()] {
        let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_eq!(flags, libc::FD_CLOEXEC);
    }
    let fl = nix::fcntl::fcntl(leaf.procs_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
    assert_eq!(fl & libc::O_ACCMODE, libc::O_WRONLY);

    // Again (a restart): the groups are reused and get their limits again;
    // controllers the kernel shows enabled are not written again.
    let shown = "cpu io memory pids\n";
    fs::write(fake.root().join("base/batch/cgroup.subtree_control"), shown).unwrap();
    let again = h.create(
        &enabled,
        &[("batch", &batch), ("nightly", &nightly)],
        "web",
        &limits(),
        "0",
    );
    assert!(again.is_ok());
    assert_eq!(
        fake.read("base/batch/memory.max"),
        "2147483648\n2147483648\n"
    );
    assert_eq!(fake.read("base/batch/cgroup.subtree_control"), shown);
}

#[test]
fn create_refuses_before_making_anything() {
    let fake = Fake::new("create-refuse");
    fake.group("base", &[]);
    let h = Hierarchy::new(fake.root(), "/", "/base").unwrap();
    let none = Limits::default();
    let mem = Limits {
        memory_max: Some(1 << 20),
        ..Limits::default()
    };
    let err = h
        .create(&[Controller::Pids], &[("batch", &none)], "web", &mem, "0")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "limits for {}/base/batch/web need the memory controller, which is not enabled",
            fake.root().display()
        )
    );
    for (slice, service, instance) in [
        ("supervisor", "web", "0"),
        ("batch", "a/b", "0"),
        ("batch", "..", "0"),
        ("batch", "cgroup.procs", "0"),
        ("batch", "web", ""),
    ] {
        let err = h
            .create(&[], &[(slice, &none)], service, &none, instance)
            .unwrap_err();
        assert!(
            matches!(err, Error::Invalid(_)),
            "{slice} {service} {instance}: {err}"
        );
    }
    let err = h.create(&[], &[], "supervisor", &none, "0").unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert_eq!(snapshot(&fake.root().join("base")).len(), GROUP_FILES.len());
    assert!(!fake.root().join("base/batch").exists());
}

#[test]
fn create_errors_name_the_file() {
    // Plain directories: mkdir works, the kernel's files are missing.
    let fake = Fake::new("create-nofile");
    fake.group("base", &[]);
    let h = Hierarchy::new(fake.root(), "/", "/base").unwrap();
    let mem = Limits {
        memory_max: Some(1 << 20),
        ..Limits::default()
    };
    let err = h
        .create(&[Controller::Memory], &[], "web", &mem, "0")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "write \"1048576\" to {}/base/web/memory.max: No such file or directory",
            fake.root().display()
        )
    );
    assert_eq!(err.errno(), Some(libc::ENOENT));
    assert!(fake.root().join("base/web").is_dir());
    let err = h
        .create(&[], &[], "db", &Limits::default(), "0")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "open {}/base/db/0/cgroup.procs: No such file or directory",
            fake.root().display()
        )
    );
}

// --- kill, empty, remove ---------------------------------------------------

#[test]
fn kill_uses_cgroup_kill_when_there() {
    let fake = Fake::new("kill");
    let dir = fake.group("g", &[("cgroup.procs", "999999\n")]);
    assert_eq!(kill(&dir).unwrap(), KillMethod::CgroupKill);
    assert_eq!(fake.read("g/cgroup.kill"), "1\n");
    assert_eq!(fake.read("g/cgroup.freeze"), "0\n", "no fallback");
}

#[test]
fn kill_falls_back_to_freeze_and_sigkill() {
    let fake = Fake::new("kill-freeze");
    let mut a = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let mut b = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let dir = fake.group("g", &[("cgroup.procs", &format!("{}\n", a.id()))]);
    fake.group("g/sub", &[("cgroup.procs", &format!("{}\n", b.id()))]);
    fs::remove_file(dir.join("cgroup.kill")).unwrap();
    assert_eq!(kill(&dir).unwrap(), KillMethod::Freeze);
    assert_eq!(
        fake.read("g/cgroup.freeze"),
        "0\n1\n0\n",
        "frozen, then thawed"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(a.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(b.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn kill_without_freezer_only_signals() {
    let fake = Fake::new("kill-signals");
    // A pid that is gone (ESRCH) is not an error.
    let dir = fake.group("g", &[("cgroup.procs", "")]);
    fs::remove_file(dir.join("cgroup.kill")).unwrap();
    fs::remove_file(dir.join("cgroup.freeze")).unwrap();
    assert_eq!(kill(&dir).unwrap(), KillMethod::Signals);
    assert!(!dir.join("cgroup.freeze").exists());
}

#[test]
fn kill_errors_name_the_file() {
    let fake = Fake::new("kill-err");
    let dir = fake.group("g", &[]);
    fs::remove_file(dir.join("cgroup.kill")).unwrap();
    fs::create_dir(dir.join("cgroup.kill")).unwrap();
    let err = kill(&dir).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "write \"1\" to {}: Is a directory",
            dir.join("cgroup.kill").display()
        )
    );
    let err = kill(&fake.root().join("gone")).unwrap_err();
    assert!(err.to_string().starts_with("read "), "{err}");
}

#[test]
fn populated_from_cgroup_events() {
    let fake = Fake::new("events");
    let empty = fake.group("a", &[]);
    let busy = fake.group("b", &[("cgroup.events", "populated 1\nfrozen 0\n")]);
    assert!(is_empty(&empty).unwrap());
    assert!(!is_empty(&busy).unwrap());
    let err = is_empty(&fake.root().join("c")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "read {}/c/cgroup.events: No such file or directory",
            fake.root().display()
        )
    );
    fs::write(busy.join("cgroup.events"), "frozen 0\n").unwrap();
    assert!(matches!(is_empty(&busy), Err(Error::Invalid(_))));
}

/// Drop the fixture's files under `dir`: an empty cgroup, as rmdir sees it.
fn strip_files(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            strip_files(&path);
        } else {
            fs::remove_file(path).unwrap();
        }
    }
}

#[test]
fn remove_takes_empty_parents_but_not_the_base() {
    let fake = Fake::new("remove");
    for dir in [
        "base",
        "base/batch",
        "base/batch/web",
        "base/batch/web/0",
        "base/batch/web/1",
    ] {
        fake.group(dir, &[]);
    }
    let h = Hierarchy::new(fake.root(), "/", "/base").unwrap();
    let none = Limits::default();
    let l0 = h
        .create(&[], &[("batch", &none)], "web", &none, "0")
        .unwrap();
    let l1 = h
        .create(&[], &[("batch", &none)], "web", &none, "1")
        .unwrap();

    // Still "populated" (here: a file in it): busy, with the path.
    let err = l0.remove().unwrap_err();
    assert!(err.is_busy(), "{err}");
    assert_eq!(
        err.to_string(),
        format!("rmdir {}: Directory not empty", l0.path().display())
    );

    strip_files(&fake.root().join("base/batch"));
    l0.remove().unwrap();
    assert!(!l0.path().exists());
    assert!(
        fake.root().join("base/batch/web").is_dir(),
        "instance 1 is left"
    );
    l1.remove().unwrap();
    assert!(!fake.root().join("base/batch").exists());
    assert!(fake.root().join("base").is_dir());
    // Removing again is fine.
    l1.remove().unwrap();
}

#[test]
fn cleanup_stale_removes_empty_groups_and_lists_busy_leaves() {
    let fake = Fake::new("stale");
    fake.group("base", &[]);
    fake.group("base/supervisor", &[]);
    fs::create_dir_all(fake.root().join("base/old/web/0")).unwrap();
    fs::create_dir_all(fake.root().join("base/db/0")).unwrap();
    fs::create_dir_all(fake.root().join("base/live/web/0")).unwrap();
    fake.group("base/live/web/1", &[("cgroup.events", "populated 1\n")]);
    let supervisor = fs::create_dir(fake.root().join("base/supervisor/x"));
    assert!(supervisor.is_ok());

    let h = Hierarchy::new(fake.root(), "/", "/base").unwrap();
    let left = h.cleanup_stale().unwrap();
    assert_eq!(left, [fake.root().join("base/live/web/1")]);
    for gone in ["base/old", "base/db", "base/live/web/0"] {
        assert!(!fake.root().join(gone).exists(), "{gone}");
    }
    assert!(fake.root().join("base/live/web").is_dir());
    assert!(
        fake.root().join("base/supervisor/x").is_dir(),
        "supervisor untouched"
    );
    assert!(fake.root().join("base").is_dir());
}

// --- stats -----------------------------------------------------------------

const MEMORY_EVENTS: &str = "low 0\nhigh 3\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
const CPU_STAT: &str = "\
usage_usec 2183071
user_usec 1372409
system_usec 810662
core_sched.force_idle_usec 0
nr_periods 412
nr_throttled 37
throttled_usec 1893325
nr_bursts 0
burst_usec 0
";
const IO_STAT: &str = "\
254:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0
8:16 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0
";

#[test]
fn stats_from_kernel_samples() {
    let fake = Fake::new("stats");
    let dir = fake.group(
        "g",
        &[
            ("memory.current", "10420224\n"),
            ("memory.peak", "22740992\n"),
            ("memory.events", MEMORY_EVENTS),
            ("cpu.stat", CPU_STAT),
            ("pids.current", "7\n"),
            ("io.stat", IO_STAT),
        ],
    );
    assert_eq!(
        stats(&dir),
        Stats {
            memory_current: Some(10_420_224),
            memory_peak: Some(22_740_992),
            oom_kills: Some(1),
            oom_events: Some(2),
            cpu_usage_usec: Some(2_183_071),
            cpu_user_usec: Some(1_372_409),
            cpu_system_usec: Some(810_662),
            nr_throttled: Some(37),
            throttled_usec: Some(1_893_325),
            pids_current: Some(7),
            io_rbytes: Some(1_459_200 + 4096),
            io_wbytes: Some(314_773_504 + 8192),
        }
    );
}

#[test]
fn stats_tolerate_missing_files_and_keys() {
    let fake = Fake::new("stats-missing");
    assert_eq!(stats(&fake.root().join("nowhere")), Stats::default());
    // No controllers enabled, kernel 5.10: cpu.stat has only the basics,
    // no memory.peak, an io.stat with no I/O yet.
    let dir = fake.group(
        "g",
        &[
            (
                "cpu.stat",
                "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
            ),
            ("memory.current", "garbage\n"),
            ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\n"),
            ("io.stat", ""),
        ],
    );
    let s = stats(&dir);
    assert_eq!(s.cpu_usage_usec, Some(1500));
    assert_eq!((s.nr_throttled, s.throttled_usec), (None, None));
    assert_eq!((s.memory_current, s.memory_peak), (None, None));
    assert_eq!((s.oom_events, s.oom_kills), (Some(0), None));
    assert_eq!((s.io_rbytes, s.io_wbytes), (Some(0), Some(0)));
    assert_eq!(s.pids_current, None);
}

#[test]
fn leaf_stats_and_empty_read_its_group() {
    let fake = Fake::new("leaf");
    let dir = fake.group(
        "g",
        &[("pids.current", "3\n"), ("cgroup.events", "populated 1\n")],
    );
    let leaf = Leaf::open(&dir).unwrap();
    assert_eq!(leaf.stats().pids_current, Some(3));
    assert!(!leaf.is_empty().unwrap());
}

#[test]
fn errors_read_like_one_line() {
    let e = Error::Io {
        op: Op::Write,
        path: "/sys/fs/cgroup/x/memory.max".into(),
        value: None,
        source: std::io::Error::from_raw_os_error(libc::EBUSY),
    };
    assert_eq!(
        e.to_string(),
        "write /sys/fs/cgroup/x/memory.max: Device or resource busy"
    );
    let e = Error::Io {
        op: Op::Kill(1234),
        path: "/sys/fs/cgroup/x".into(),
        value: None,
        source: std::io::Error::from_raw_os_error(libc::EPERM),
    };
    assert_eq!(
        e.to_string(),
        "SIGKILL 1234 in /sys/fs/cgroup/x: Operation not permitted"
    );
    assert!(!e.is_busy());
    assert_eq!(
        Controller::parse_list("cpuset cpu io memory hugetlb pids rdma misc"),
        Controller::ALL
    );
    assert_eq!(Controller::parse_list("memory"), [Controller::Memory]);
}

// --- a real kernel ---------------------------------------------------------

/// Poll `cond` every 10 ms for up to 3 s.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..300 {
        if cond() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{what}: not within 3 s");
}

fn sleeper() -> std::process::Child {
    std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .unwrap()
}

fn killed(child: &mut std::process::Child) -> bool {
    use std::os::unix::process::ExitStatusExt;
    child.wait().unwrap().signal() == Some(libc::SIGKILL)
}

/// The whole life of a group on a real cgroup v2 kernel. It writes to
/// `/sys/fs/cgroup`, so it runs only where `SENTINEL_CGROUP_VM=1` says
/// this is a throwaway VM with a pure cgroup v2 hierarchy (as root, in
/// the root cgroup); anywhere else it says it skips.
#[test]
fn real_kernel() {
    if std::env::var_os("SENTINEL_CGROUP_VM").is_none() {
        eprintln!("real_kernel: skipped: needs SENTINEL_CGROUP_VM=1 (a VM with cgroup v2)");
        return;
    }
    let h = Hierarchy::discover("sentinel-test").unwrap();
    assert_eq!(h.base, Path::new("/sys/fs/cgroup/sentinel-test"));
    assert_eq!(h.available_controllers().unwrap(), Controller::ALL);
    let setup = h.setup(&Controller::ALL).unwrap();
    assert_eq!(setup.enabled, Controller::ALL, "{:?}", setup.unavailable);
    let me = fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(own_cgroup(&me).unwrap(), "/sentinel-test/supervisor");

    // Limits at every level, read back from the kernel.
    let batch = Limits {
        memory_max: Some(64 << 20),
        ..Limits::default()
    };
    let svc = Limits {
        memory_max: Some(32 << 20),
        memory_high: Some(30 << 20),
        pids_max: Some(10),
        cpu_max: Some(CpuMax {
            quota_us: 50_000,
            period_us: 100_000,
        }),
        cpu_weight: Some(50),
        ..Limits::default()
    };
    let leaf = h
        .create(&setup.enabled, &[("batch", &batch)], "svc", &svc, "0")
        .unwrap();
    let svc_dir = h.base.join("batch/svc");
    let got = |p: &Path| fs::read_to_string(p).unwrap();
    assert_eq!(got(&h.base.join("batch/memory.max")), "67108864\n");
    assert_eq!(got(&svc_dir.join("memory.max")), "33554432\n");
    assert_eq!(got(&svc_dir.join("memory.high")), "31457280\n");
    assert_eq!(got(&svc_dir.join("pids.max")), "10\n");
    assert_eq!(got(&svc_dir.join("cpu.max")), "50000 100000\n");
    assert_eq!(got(&svc_dir.join("cpu.weight")), "50\n");
    assert_eq!(
        got(&svc_dir.join("cgroup.subtree_control")),
        "cpu io memory pids\n"
    );
    // The kernel's own errors carry the path and the value.
    let err = write_limits(
        &svc_dir,
        &Limits {
            cpu_max: Some(CpuMax {
                quota_us: 10,
                period_us: 100_000,
            }),
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "write \"10 100000\" to {}: Invalid argument",
            svc_dir.join("cpu.max").display()
        )
    );

    // A process in the leaf: stats, then cgroup.kill.
    let mut child = sleeper();
    write(&leaf.path().join("cgroup.procs"), &child.id().to_string()).unwrap();
    let cg = fs::read_to_string(format!("/proc/{}/cgroup", child.id())).unwrap();
    assert_eq!(cg, "0::/sentinel-test/batch/svc/0\n");
    assert!(!leaf.is_empty().unwrap());
    let s = leaf.stats();
    assert_eq!(s.pids_current, Some(1));
    assert!(
        s.memory_current.is_some() && s.memory_peak.is_some(),
        "{s:?}"
    );
    assert!(
        s.cpu_usage_usec.is_some() && s.nr_throttled.is_some(),
        "{s:?}"
    );
    assert_eq!((s.oom_kills, s.oom_events), (Some(0), Some(0)));
    assert!(s.io_rbytes.is_some(), "{s:?}");
    let err = leaf.remove().unwrap_err();
    assert!(err.is_busy(), "{err}");
    assert_eq!(
        err.to_string(),
        format!("rmdir {}: Device or resource busy", leaf.path().display())
    );
    assert_eq!(leaf.kill().unwrap(), KillMethod::CgroupKill);
    assert!(killed(&mut child));
    eventually("leaf 0 empty", || leaf.is_empty().unwrap());

    // The freeze fallback, on a kernel that has it.
    let leaf1 = h
        .create(&setup.enabled, &[("batch", &batch)], "svc", &svc, "1")
        .unwrap();
    let (mut a, mut b) = (sleeper(), sleeper());
    for c in [&a, &b] {
        write(&leaf1.path().join("cgroup.procs"), &c.id().to_string()).unwrap();
    }
    assert_eq!(kill_by_freezing(leaf1.path()).unwrap(), KillMethod::Freeze);
    assert!(killed(&mut a) && killed(&mut b));
    assert_eq!(got(&leaf1.path().join("cgroup.freeze")), "0\n");
    eventually("leaf 1 empty", || leaf1.is_empty().unwrap());

    // Removal takes the service and slice with the last leaf.
    leaf.remove().unwrap();
    assert!(svc_dir.is_dir());
    leaf1.remove().unwrap();
    assert!(!h.base.join("batch").exists());
    fs::create_dir_all(h.base.join("old/web/0")).unwrap();
    assert!(h.cleanup_stale().unwrap().is_empty());
    assert!(!h.base.join("old").exists());

    // The "no internal processes" rule: another process in the own cgroup.
    let occ = h.base.join("occ");
    fs::create_dir(&occ).unwrap();
    let mut other = sleeper();
    write(&occ.join("cgroup.procs"), &other.id().to_string()).unwrap();
    let h2 = Hierarchy::new(&h.mount, "/sentinel-test/occ", "inner").unwrap();
    let setup2 = h2.setup(&[Controller::Memory]).unwrap();
    assert_eq!(setup2.supervisor, Some(occ.join("inner/supervisor")));
    let (c, err) = &setup2.unavailable[0];
    assert_eq!(*c, Controller::Memory);
    match err {
        Error::Occupied { path, pids, .. } => {
            assert_eq!((path, pids.as_slice()), (&occ, &[other.id() as i32][..]));
        }
        e => panic!("{e}"),
    }
    other.kill().unwrap();
    other.wait().unwrap();
    eprintln!("real_kernel: {err}");
}

/// sentinel as PID 1 of a container (pid and cgroup namespaces, cgroup2
/// mounted inside): everyone in the container's cgroup moves into the
/// supervisor leaf. Runs where `SENTINEL_CGROUP_VM_PID1=1` (the VM).
#[test]
fn real_kernel_pid1() {
    if std::env::var_os("SENTINEL_CGROUP_VM_PID1").is_none() {
        eprintln!("real_kernel_pid1: skipped: needs SENTINEL_CGROUP_VM_PID1=1 (PID 1 in a VM)");
        return;
    }
    assert_eq!(std::process::id(), 1);
    let mut exec_shell = sleeper();
    let h = Hierarchy::discover("sentinel").unwrap();
    assert_eq!(h.own, Path::new("/sys/fs/cgroup"));
    assert!(
        h.own.join("cgroup.type").exists(),
        "a namespace root, not the real one"
    );
    let setup = h.setup(&[Controller::Memory, Controller::Pids]).unwrap();
    assert_eq!(setup.moved, [exec_shell.id() as i32]);
    assert_eq!(
        setup.enabled,
        [Controller::Memory, Controller::Pids],
        "{:?}",
        setup.unavailable
    );
    for pid in ["self".to_string(), exec_shell.id().to_string()] {
        let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert_eq!(cg, "0::/sentinel/supervisor\n", "{pid}");
    }
    let limits = Limits {
        pids_max: Some(5),
        ..Limits::default()
    };
    let leaf = h.create(&setup.enabled, &[], "web", &limits, "0").unwrap();
    assert_eq!(
        fs::read_to_string(h.base.join("web/pids.max")).unwrap(),
        "5\n"
    );
    leaf.remove().unwrap();
    exec_shell.kill().unwrap();
    exec_shell.wait().unwrap();
}
