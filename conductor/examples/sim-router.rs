//! A simulated router for conductor tests (testbed/conductor-etcd-test.sh): it makes the
//! test PKI, enrolls with a real CSR, reports status and watches its configuration through
//! [`svr_conductor::client::Client`], listing several conductor replicas and failing over
//! between them as svrd's bootstrap mode will.
//!
//! ```text
//! sim-router pki DIR                      root.pem, intermediate.pem, intermediate.key.pem
//! sim-router enroll DIR --conductors A,B --token T --router R --name CN [--node N]
//! sim-router report DIR --conductors A,B [--applied REV]
//! sim-router watch DIR --conductors A,B --after REV --until REV [--deadline S]
//! ```
//! DIR holds the PKI (root.pem) and the router's key.pem and chain.pem. Every answer is
//! printed with the replica that gave it (`config revision 2 from 127.0.0.1:23481`).

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use svr_conductor::client::{Client, ClientError};
use svr_conductor::{EnrollRequest, StatusReport};

const SERVER_NAME: &str = "conductor.acme.svr";

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Makes a test authority (root and intermediate CA) in DIR.
    Pki { dir: PathBuf },
    /// Enrolls with a fresh key and CSR; writes key.pem and chain.pem in DIR.
    Enroll {
        dir: PathBuf,
        #[arg(long, value_delimiter = ',', required = true)]
        conductors: Vec<SocketAddr>,
        #[arg(long)]
        token: String,
        #[arg(long)]
        router: String,
        /// The router's peering-common-name.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "node-1")]
        node: String,
    },
    /// Sends one status report.
    Report {
        dir: PathBuf,
        #[arg(long, value_delimiter = ',', required = true)]
        conductors: Vec<SocketAddr>,
        #[arg(long)]
        applied: Option<u64>,
        #[arg(long, default_value = "node-1")]
        node: String,
    },
    /// Watches the configuration from revision AFTER, reporting each revision applied,
    /// until one >= UNTIL arrives (exit 0) or DEADLINE seconds pass (exit 1).
    Watch {
        dir: PathBuf,
        #[arg(long, value_delimiter = ',', required = true)]
        conductors: Vec<SocketAddr>,
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[arg(long)]
        until: u64,
        #[arg(long, default_value_t = 60)]
        deadline: u64,
        #[arg(long, default_value = "node-1")]
        node: String,
    },
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
enum SimError {
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("test PKI: {0}")]
    Pki(String),
    #[error("CSR: {0}")]
    Csr(#[from] rcgen::Error),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("no revision >= {until} within {deadline}s (last {last})")]
    Deadline {
        until: u64,
        deadline: u64,
        last: u64,
    },
}

fn read(dir: &Path, name: &str) -> Result<String, SimError> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).map_err(|source| SimError::File {
        path: path.display().to_string(),
        source,
    })
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), SimError> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|source| SimError::File {
        path: path.display().to_string(),
        source,
    })
}

fn router_client(dir: &Path, conductors: &[SocketAddr]) -> Result<Client, SimError> {
    let root = read(dir, "root.pem")?;
    let chain = read(dir, "chain.pem")?;
    let key = read(dir, "key.pem")?;
    Ok(Client::with_addresses(
        conductors,
        SERVER_NAME,
        &root,
        Some((&chain, &key)),
    )?)
}

fn report(client: &Client, node: &str, applied: Option<u64>) -> Result<(), SimError> {
    client.status(&StatusReport {
        node: node.into(),
        version: svr_conductor::version::OURS.into(),
        applied_revision: applied,
        error: None,
    })?;
    println!("status applied {applied:?} to {}", client.current());
    Ok(())
}

fn run(cli: Cli) -> Result<(), SimError> {
    match cli.command {
        Command::Pki { dir } => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let v = svr_keymgmt::pki::Validity::days_from(now, 30);
            let pems = svr_keymgmt::pki::generate_authority("acme", v)
                .map_err(|e| SimError::Pki(e.to_string()))?;
            write(&dir, "root.pem", &pems.root_cert_pem)?;
            write(&dir, "intermediate.pem", &pems.intermediate_cert_pem)?;
            write(&dir, "intermediate.key.pem", &pems.intermediate_key_pem)?;
            Ok(())
        }
        Command::Enroll {
            dir,
            conductors,
            token,
            router,
            name,
            node,
        } => {
            let root = read(&dir, "root.pem")?;
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
            let mut p = rcgen::CertificateParams::new(vec![name.clone()])?;
            p.distinguished_name = rcgen::DistinguishedName::new();
            p.distinguished_name.push(rcgen::DnType::CommonName, &name);
            let csr = p.serialize_request(&key)?.pem()?;
            let anon = Client::with_addresses(&conductors, SERVER_NAME, &root, None)?;
            let resp = anon.enroll(&EnrollRequest {
                token: zeroize::Zeroizing::new(token),
                router,
                node,
                version: svr_conductor::version::OURS.into(),
                csr,
            })?;
            write(&dir, "key.pem", &key.serialize_pem())?;
            write(&dir, "chain.pem", &resp.enrolled.certificate_chain)?;
            println!(
                "enrolled serial {} revision {} via {}",
                resp.enrolled.serial,
                resp.enrolled.revision,
                anon.current()
            );
            Ok(())
        }
        Command::Report {
            dir,
            conductors,
            applied,
            node,
        } => report(&router_client(&dir, &conductors)?, &node, applied),
        Command::Watch {
            dir,
            conductors,
            after,
            until,
            deadline,
            node,
        } => {
            let client = router_client(&dir, &conductors)?;
            let end = Instant::now() + Duration::from_secs(deadline);
            let mut last = after;
            while Instant::now() < end {
                match client.config(&node, last, Duration::from_secs(5)) {
                    Ok(Some(c)) => {
                        println!("config revision {} from {}", c.revision, client.current());
                        last = c.revision;
                        // A report failing is not the watch failing: the next poll retries.
                        if let Err(e) = report(&client, &node, Some(last)) {
                            println!("status report: {e}");
                        }
                        if last >= until {
                            return Ok(());
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // Every replica down for now: try again shortly.
                        println!("watch: {e}");
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            }
            Err(SimError::Deadline {
                until,
                deadline,
                last,
            })
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sim-router: {e}");
            ExitCode::FAILURE
        }
    }
}
