//! Start a child: everything prepared in the parent, only syscalls after fork.
