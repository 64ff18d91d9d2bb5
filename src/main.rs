//! sentinel: a Linux isolation runner and process supervisor.
#![forbid(unsafe_code)]

mod capabilities;
mod cgroup;
mod cli;
mod config;
mod control;
mod event_loop;
mod exec;
mod http;
mod isolate;
mod logs;
mod metrics;
mod pid1;
mod prepare;
mod seccomp;
mod supervisor;
mod users;

fn main() {
    std::process::exit(cli::main());
}
