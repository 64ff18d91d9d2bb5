//! Signal dispositions of sentinel's own process.

/// Put SIGPIPE back to its default (Rust's runtime ignores it), so that a
/// client command writing into a closed pipe ends quietly instead of failing
/// every write with EPIPE.
pub fn default_sigpipe() {
    // SAFETY: SIG_DFL installs no handler; sentinel has one thread, so no
    // other thread races on the disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}
