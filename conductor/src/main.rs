//! `svr-conductor`: the conductor's server and its operator CLI (docs/conductor.md).

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use svr_conductor::admin::AdminRequest;
use svr_conductor::etcd_access::{EtcdAccess, EtcdAccessError, EtcdAccessFiles};
use svr_conductor::server::{self, ServeOptions, StoreChoice};

#[derive(Parser)]
#[command(
    name = "svr-conductor",
    version,
    about = "The SVR conductor: authority configuration, enrollment, CRL"
)]
struct Cli {
    /// The state directory (store file and admin socket).
    #[arg(long, global = true, default_value = "/var/lib/svr-conductor")]
    state: PathBuf,
    /// Where the state is kept: `file` (state.json in the state directory, one conductor)
    /// or `etcd` (a cluster shared by conductor replicas).
    #[arg(long, global = true, value_enum, default_value_t = StoreKind::File)]
    store: StoreKind,
    /// etcd members, comma-separated `host:port` (with `--store etcd`).
    #[arg(long, global = true, value_delimiter = ',')]
    etcd_endpoints: Vec<String>,
    /// The authority's name: its keys live under `/svr/v1/<authority>/` (with `--store etcd`).
    #[arg(long, global = true)]
    authority: Option<String>,
    /// PEM CA certificate that signed the etcd members' server certificates: turns client
    /// TLS on (endpoints are then https).
    #[arg(long, global = true, value_name = "FILE")]
    etcd_cacert: Option<PathBuf>,
    /// PEM client certificate for etcd's `--client-cert-auth` (with --etcd-key, over TLS).
    #[arg(long, global = true, value_name = "FILE")]
    etcd_cert: Option<PathBuf>,
    /// PEM private key of --etcd-cert.
    #[arg(long, global = true, value_name = "FILE")]
    etcd_key: Option<PathBuf>,
    /// etcd user to authenticate as (with --etcd-password-file).
    #[arg(long, global = true, value_name = "NAME")]
    etcd_user: Option<String>,
    /// File whose first line is --etcd-user's password (never given on the command line).
    #[arg(long, global = true, value_name = "FILE")]
    etcd_password_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StoreKind {
    File,
    Etcd,
}

/// Store options that cannot be used.
#[derive(Debug, thiserror::Error)]
enum StoreOptionError {
    /// An option `--store etcd` needs is missing.
    #[error("{0}")]
    Missing(&'static str),
    /// A TLS or user option is unusable (names the option and file).
    #[error(transparent)]
    Access(#[from] EtcdAccessError),
}

impl Cli {
    fn store(&self) -> Result<StoreChoice, StoreOptionError> {
        match self.store {
            StoreKind::File => Ok(StoreChoice::File),
            StoreKind::Etcd => {
                if self.etcd_endpoints.is_empty() {
                    return Err(StoreOptionError::Missing(
                        "--store etcd needs --etcd-endpoints HOST:PORT[,...]",
                    ));
                }
                let Some(authority) = self.authority.clone() else {
                    return Err(StoreOptionError::Missing(
                        "--store etcd needs --authority NAME (the key prefix)",
                    ));
                };
                // Read once here, so a bad file stops the process before anything starts.
                let access = EtcdAccess::load(&EtcdAccessFiles {
                    cacert: self.etcd_cacert.clone(),
                    cert: self.etcd_cert.clone(),
                    key: self.etcd_key.clone(),
                    user: self.etcd_user.clone(),
                    password_file: self.etcd_password_file.clone(),
                })?;
                Ok(StoreChoice::Etcd {
                    endpoints: self.etcd_endpoints.clone(),
                    authority,
                    access,
                })
            }
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve routers over HTTPS and operators over the admin socket.
    Serve {
        /// Address to listen on for routers.
        #[arg(long, default_value = "0.0.0.0:8443")]
        listen: SocketAddr,
        /// Authority root certificate (PEM): what routers trust.
        #[arg(long)]
        root: PathBuf,
        /// Issuing (intermediate) CA certificate (PEM), as `svrd pki init` writes it.
        #[arg(long)]
        ca_cert: PathBuf,
        /// Its private key (PEM).
        #[arg(long)]
        ca_key: PathBuf,
        /// The DNS name in the conductor's TLS certificate (the bootstrap `server-name`).
        #[arg(long, default_value = "conductor")]
        server_name: String,
        /// Lifetime of a router's status report in seconds (3 x its report interval); with
        /// etcd a lease, so a silent router loses its status when it ends.
        #[arg(long, default_value_t = svr_conductor::STATUS_TTL)]
        status_ttl: u64,
        /// Concurrent connections (a thread each; every router's long poll holds one).
        #[arg(long, default_value_t = server::MAX_CONNECTIONS)]
        max_connections: usize,
        /// This replica's name, unique among the replicas sharing an etcd store (with
        /// `--store etcd`; default `<hostname>-<listen port>`): 1-64 of `A-Za-z0-9._-`.
        #[arg(long, value_parser = replica_name)]
        replica: Option<String>,
    },
    /// Validate FILE and store it as the next revision; print what changes for whom.
    Apply {
        /// The authority document (svrd's schema without local-router/local-node).
        file: PathBuf,
    },
    /// Show routers.
    Show {
        #[command(subcommand)]
        what: ShowWhat,
    },
    /// Enrollment tokens.
    Token {
        #[command(subcommand)]
        what: TokenWhat,
    },
    /// Revoke every certificate of ROUTER; it may not enroll again without --readmit.
    Revoke {
        /// The router.
        router: String,
    },
}

#[derive(Subcommand)]
enum ShowWhat {
    /// Name, node, version, revisions, last seen, state.
    Routers {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TokenWhat {
    /// Make a one-time enrollment token for ROUTER (printed once).
    Create {
        /// The router.
        router: String,
        /// Lifetime in seconds (5 to 30 days).
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
        /// Let a revoked router enroll again.
        #[arg(long)]
        readmit: bool,
    },
}

fn replica_name(s: &str) -> Result<String, &'static str> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err("a replica name is 1-64 characters of A-Z a-z 0-9 . _ -")
    }
}

/// `<hostname>-<port>`: distinct for replicas on one host, stable across restarts.
fn default_replica(listen: SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(50)
        .collect();
    let host = if host.is_empty() {
        "conductor".into()
    } else {
        host
    };
    format!("{host}-{}", listen.port())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs audit events; the operator commands print only their answer.
    let level = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    let store = match cli.store() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("svr-conductor: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (req, json) = match cli.command {
        Command::Serve {
            listen,
            root,
            ca_cert,
            ca_key,
            server_name,
            status_ttl,
            max_connections,
            replica,
        } => {
            let replica = match store {
                StoreChoice::File => None,
                _ => Some(replica.unwrap_or_else(|| default_replica(listen))),
            };
            let opts = ServeOptions {
                listen,
                state_dir: cli.state,
                root,
                ca_cert,
                ca_key,
                server_name,
                store,
                status_ttl,
                max_connections,
                replica,
            };
            let result = server::serve(&opts, |addr| {
                println!("listening on {addr}");
                let _ = std::io::stdout().flush();
            });
            return match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("svr-conductor: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Apply { file } => match std::fs::read_to_string(&file) {
            Ok(yaml) => (AdminRequest::Apply { yaml }, false),
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        },
        Command::Show {
            what: ShowWhat::Routers { json },
        } => (AdminRequest::ShowRouters, json),
        Command::Token {
            what:
                TokenWhat::Create {
                    router,
                    ttl,
                    readmit,
                },
        } => (
            AdminRequest::TokenCreate {
                router,
                ttl,
                readmit,
            },
            false,
        ),
        Command::Revoke { router } => (AdminRequest::Revoke { router }, false),
    };
    match server::admin_with_store(&cli.state, &store, &req) {
        Ok(resp) if resp.ok => {
            let text = if json {
                serde_json::to_string_pretty(&resp.routers).unwrap_or_default()
            } else {
                resp.text
            };
            // A closed pipe (`... | head`) ends quietly, not in a panic.
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{text}").and_then(|()| o.flush());
            ExitCode::SUCCESS
        }
        Ok(resp) => {
            eprintln!("{}", resp.text);
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("svr-conductor: {e}");
            ExitCode::FAILURE
        }
    }
}
