//! sentinel: a Linux isolation runner and process supervisor.
#![forbid(unsafe_code)]

mod autoscale;
mod capabilities;
mod cgroup;
mod cli;
mod config;
mod control;
mod deps;
mod event_loop;
mod exec;
mod generate;
mod health;
mod hooks;
mod http;
mod isolate;
mod jobs;
mod leftovers;
mod listen;
mod logs;
mod metrics;
mod oci;
mod pid1;
mod prepare;
mod remote;
mod sdnotify;
mod seccomp;
mod secrets;
mod supervisor;
mod users;
mod watch;

fn main() {
    // For hosts whose seccomp profile breaks clone3 in odd ways, and for
    // tests of the fork path.
    if std::env::var_os("SENTINEL_NO_CLONE3").is_some_and(|v| v == "1") {
        sys::spawn::disable_clone3();
    }
    std::process::exit(cli::main());
}
