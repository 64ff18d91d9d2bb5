//! sentinel: a Linux isolation runner and process supervisor.
#![forbid(unsafe_code)]

mod cli;
mod config;
mod control;
mod event_loop;
mod exec;
mod http;
mod logs;
mod metrics;
mod pid1;
mod supervisor;

fn main() {
    std::process::exit(cli::main());
}
