//! Command-line interface: argh commands and their exit codes.

use argh::FromArgs;
use std::path::PathBuf;

/// sentinel: run, isolate and supervise processes.
#[derive(FromArgs, Debug)]
struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Cmd {
    Check(CheckArgs),
}

/// Validate a config file and report every problem.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
struct CheckArgs {
    /// config file (TOML, or YAML with .yaml/.yml)
    #[argh(option, short = 'c')]
    config: PathBuf,
}

pub fn main() -> i32 {
    let args: Args = argh::from_env();
    match args.cmd {
        Cmd::Check(a) => match crate::config::load(&a.config) {
            Ok(cfg) => {
                println!(
                    "{}: ok, {} services",
                    a.config.display(),
                    cfg.services.len()
                );
                0
            }
            Err(e) => {
                eprintln!("{e}");
                2
            }
        },
    }
}
