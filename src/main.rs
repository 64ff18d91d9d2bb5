//! sentinel: a Linux isolation runner and process supervisor.
#![forbid(unsafe_code)]

mod cli;
mod config;
mod logs;
mod supervisor;

fn main() {
    std::process::exit(cli::main());
}
