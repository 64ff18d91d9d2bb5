//! PID 1 duties: knowing whether sentinel is an init, the early mounts of
//! a real init, becoming a child subreaper, and powering off.

use std::path::Path;

use nix::mount::{mount, MsFlags};

/// `/proc/self/ns/pid` of the kernel's initial pid namespace.
const INIT_PID_NS: &str = "pid:[4026531836]";

/// How sentinel relates to the processes it may adopt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The kernel's PID 1: mounts, and powers off instead of exiting.
    RealInit,
    /// PID 1 of a pid namespace (a container).
    NamespaceInit,
    /// Any other process: becomes a child subreaper.
    Subreaper,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::RealInit => "init",
            Role::NamespaceInit => "namespace-init",
            Role::Subreaper => "subreaper",
        }
    }

    pub fn is_pid1(self) -> bool {
        self != Role::Subreaper
    }
}

/// Find the role; as the kernel's PID 1, first mount what an init needs.
pub fn take_role() -> Role {
    if nix::unistd::getpid().as_raw() != 1 {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            eprintln!("sentinel: warning: PR_SET_CHILD_SUBREAPER: {e}; orphans of services will not be reaped by sentinel");
        }
        return Role::Subreaper;
    }
    if !Path::new("/proc/self").exists() {
        mount_if_missing(
            "proc",
            "/proc",
            "proc",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        );
    }
    let ns = std::fs::read_link("/proc/self/ns/pid").unwrap_or_default();
    if ns.as_os_str() != INIT_PID_NS {
        return Role::NamespaceInit;
    }
    early_mounts();
    Role::RealInit
}

fn mounted(target: &str) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| m.lines().any(|l| l.split(' ').nth(1) == Some(target)))
        .unwrap_or(false)
}

fn mount_if_missing(src: &str, target: &str, fstype: &str, flags: MsFlags, data: Option<&str>) {
    if Path::new("/proc/self").exists() && mounted(target) {
        return;
    }
    let _ = std::fs::create_dir_all(target);
    if let Err(e) = mount(Some(src), target, Some(fstype), flags, data) {
        eprintln!("sentinel: mount {fstype} on {target}: {e}");
    }
}

/// What an init in an initramfs mounts before anything else runs.
fn early_mounts() {
    let common = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    mount_if_missing("sysfs", "/sys", "sysfs", common, None);
    mount_if_missing(
        "devtmpfs",
        "/dev",
        "devtmpfs",
        MsFlags::MS_NOSUID,
        Some("mode=0755"),
    );
    mount_if_missing("cgroup2", "/sys/fs/cgroup", "cgroup2", common, None);
    mount_if_missing(
        "tmpfs",
        "/run",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    );
    mount_if_missing(
        "tmpfs",
        "/tmp",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    );
}

/// The last act of the kernel's PID 1 (exiting would panic the kernel).
pub fn power_off() -> ! {
    nix::unistd::sync();
    let e = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    eprintln!("sentinel: power off failed: {e:?}");
    loop {
        std::thread::park();
    }
}
