//! `svrd`: the svr-fastpath appliance.
//!
//! One process per router: it reads one YAML file, starts the DPDK EAL from it, brings up the
//! ports with one RX and one TX queue per worker, pins each poll-mode worker to the lcore the
//! core map names, and runs the slow path (ARP, Neighbor Discovery, ICMP) on its own lcore or
//! on the main one. Workers and slow path talk only over DPDK rings.

mod counters;
mod slow;
mod startup;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The svr-fastpath appliance.
#[derive(Parser, Debug)]
#[command(name = "svrd", version, about)]
struct Cli {
    /// Configuration file (YAML) to run.
    #[arg(long, short = 'c', value_name = "CONFIG", conflicts_with = "check")]
    config: Option<PathBuf>,
    /// Validate a configuration file (and that this machine can run it) without starting.
    #[arg(long, value_name = "CONFIG")]
    check: Option<PathBuf>,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    let cli = Cli::parse();
    let result = match (&cli.check, &cli.config) {
        (Some(path), _) => startup::check(path).map(|summary| println!("{summary}")),
        (None, Some(path)) => startup::run(path),
        (None, None) => Err(startup::StartupError::NoConfig),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("svrd: error: {e}");
            ExitCode::FAILURE
        }
    }
}
