//! The one crate of sentinel with `unsafe` code: the fork → setup → execve
//! pipeline and raw syscalls nix does not wrap safely. Every `unsafe` block
//! carries a `// SAFETY:` comment.

pub mod mem;
pub mod process;
pub mod signals;
pub mod spawn;
