//! Reading this process's scheduling attributes (for probes and checks).

/// This process's nice value.
pub fn nice() -> i32 {
    // SAFETY: plain syscall without pointers. getpriority can legitimately
    // return -1, so errno is cleared first and checked after.
    unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, 0)
    }
}

/// This process's I/O priority: `(class << 13) | level` (0: none set).
pub fn ioprio() -> i32 {
    // SAFETY: plain syscall without pointers: IOPRIO_WHO_PROCESS (1), self.
    unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) as i32 }
}

/// Send `sig` to the process behind `pidfd`: no pid-reuse race, since the
/// pidfd names exactly that process, alive or zombie.
pub fn pidfd_send_signal(
    pidfd: std::os::fd::BorrowedFd<'_>,
    sig: i32,
) -> Result<(), nix::errno::Errno> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall: a valid fd we borrow, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(nix::errno::Errno::last())
    } else {
        Ok(())
    }
}

/// Take ownership of fd `n` that this process inherited at exec (socket
/// activation passes listening sockets at 3..). None when `n` is not open.
/// Call it once per fd: the returned `OwnedFd` closes it on drop.
pub fn inherited_fd(n: std::os::fd::RawFd) -> Option<std::os::fd::OwnedFd> {
    // SAFETY: F_GETFD only reads the fd's flags; -1 means it is not open.
    let open = unsafe { libc::fcntl(n, libc::F_GETFD) } >= 0;
    // SAFETY: the fd is open, was inherited (nothing in this process has
    // claimed it: the caller takes it once), so it can be owned here.
    open.then(|| unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(n) })
}
