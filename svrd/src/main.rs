//! `svrd`: the svr-fastpath appliance.
//!
//! One process per router: it reads one YAML file, starts the DPDK EAL from it, brings up the
//! ports with one RX and one TX queue per worker, pins each poll-mode worker to the lcore the
//! core map names, and runs the slow path (ARP, Neighbor Discovery, ICMP) on its own lcore or
//! on the main one. Workers and slow path talk only over DPDK rings.
#![forbid(unsafe_code)]

mod bootstrap;
mod counters;
mod logfmt;
mod logq;
mod mgmt;
mod pki;
mod reload;
mod slow;
mod startup;
mod svr;
mod telemetry;
mod worker;
mod zt;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The svr-fastpath appliance.
#[derive(Parser, Debug)]
#[command(name = "svrd", version, about)]
struct Cli {
    /// Configuration file (YAML) to run.
    #[arg(long, short = 'c', value_name = "CONFIG", conflicts_with = "check")]
    config: Option<PathBuf>,
    /// Start from a bootstrap file (zero-touch onboarding from a conductor: enroll, fetch
    /// the configuration, keep it in the state directory, watch for new revisions).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["check", "config"])]
    bootstrap: Option<PathBuf>,
    /// Validate a configuration file (and that this machine can run it) without starting.
    #[arg(long, value_name = "CONFIG")]
    check: Option<PathBuf>,
    /// Log line format: `text`, or `json` (one object per line, for journald and syslog
    /// pipelines).
    #[arg(long, value_enum, default_value = "text", global = true)]
    log_format: logfmt::LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Certificates for an authority: a root CA, an intermediate CA, router certificates.
    #[command(subcommand)]
    Pki(PkiCommand),
}

#[derive(Subcommand, Debug)]
enum PkiCommand {
    /// Create DIR/root.pem, DIR/intermediate.pem and their keys.
    Init {
        /// Directory for the authority's files (created if missing).
        dir: PathBuf,
        /// Authority name, used in the CA subjects.
        #[arg(long, default_value = "svr")]
        authority: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Issue DIR/NAME.chain.pem and DIR/NAME.key.pem for a router's peering-common-name NAME.
    Issue {
        /// The authority directory made by `svrd pki init`.
        dir: PathBuf,
        /// The router's peering-common-name (certificate CN and DNS SAN).
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logfmt::init(cli.log_format);
    let code = run(cli);
    logq::flush(std::time::Duration::from_secs(2));
    code
}

fn run(cli: Cli) -> ExitCode {
    if let Some(Command::Pki(cmd)) = &cli.command {
        let done = match cmd {
            PkiCommand::Init {
                dir,
                authority,
                days,
            } => pki::init(dir, authority, *days),
            PkiCommand::Issue { dir, name, days } => pki::issue(dir, name, *days),
        };
        return match done {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("svrd: error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(path) = &cli.bootstrap {
        return finish(bootstrap::run(path));
    }
    let result = match (&cli.check, &cli.config) {
        (Some(path), _) => startup::check(path).map(|summary| println!("{summary}")),
        (None, Some(path)) => startup::run(path),
        (None, None) => Err(startup::StartupError::NoConfig),
    };
    finish(result)
}

/// The exit code of a run; an error is printed as one line after the log lines.
fn finish<E: std::fmt::Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Log lines before the error line.
            logq::flush(std::time::Duration::from_secs(2));
            eprintln!("svrd: error: {e}");
            ExitCode::FAILURE
        }
    }
}
