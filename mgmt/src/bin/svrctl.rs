//! `svrctl`: operate a running svrd through its control socket.
//!
//! ```text
//! svrctl [--socket PATH | --router NAME] [--json] show peers [detail|security]
//! svrctl show sessions [--service S] [--peer P] [--by-id UUID] [--limit N]
//! svrctl show stats [PREFIX] [--since-launch]
//! svrctl show interfaces | show runtime
//! svrctl clear stats
//! svrctl capture -i PORT [-c N] [--seconds S] [-w FILE] [FILTER] | capture --list
//! svrctl show events [--type T] [--limit N]
//! svrctl show config
//! svrctl rekey peer PEER
//! svrctl reload [CONFIG]
//! svrctl clear sessions [--service S] [--peer P] [--by-id UUID]
//! ```
#![forbid(unsafe_code)]

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Map, Value};
use svr_mgmt::model::{EventInfo, PeerInfo, SessionInfo, Stat};
use svr_mgmt::proto::{request_line, Response};
use svr_mgmt::views::{self, ResetPoint};
use svr_mgmt::{framing, table};

/// Where svrd puts its control socket by default: `<runtime dir>/<file-prefix>/svrd.sock`.
const RUNTIME_DIR: &str = "/var/run/dpdk";
/// Longest response line read (a full session list is large).
const MAX_RESPONSE: usize = 256 * 1024 * 1024;

/// Operate a running svrd.
#[derive(Parser, Debug)]
#[command(name = "svrctl", version, about)]
struct Cli {
    /// The control socket (default: the only /var/run/dpdk/*/svrd.sock).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The router whose socket to use: /var/run/dpdk/NAME/svrd.sock (NAME is the EAL
    /// file-prefix, the router name by default).
    #[arg(long, global = true, value_name = "NAME", conflicts_with = "socket")]
    router: Option<String>,
    /// Print the answer as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for svrd.
    #[arg(long, global = true, default_value_t = 5)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show state.
    #[command(subcommand)]
    Show(Show),
    /// Start a key rotation now.
    #[command(subcommand)]
    Rekey(Rekey),
    /// Remove state.
    #[command(subcommand)]
    Clear(Clear),
    /// Read the configuration again (the running file, or CONFIG), check it as
    /// `svrd --check` does and apply what can change while running; a bad file or a change
    /// that needs a restart is refused and nothing changes. SIGHUP to svrd does the same
    /// with the running file.
    Reload {
        /// Another configuration file to load (made absolute here).
        config: Option<std::path::PathBuf>,
    },
    /// Capture packets of a port of the running svrd into a pcapng file (runs DPDK's
    /// `dpdk-dumpcap` against svrd's EAL file prefix; needs `eal.pdump`, on by default).
    Capture {
        /// The DPDK port name (`net_af_packet1`) or id (`svrctl capture --list` shows them).
        #[arg(short = 'i', long, required_unless_present = "list")]
        interface: Option<String>,
        /// List the ports instead.
        #[arg(long)]
        list: bool,
        /// Stop after this many packets.
        #[arg(short = 'c', long)]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// The pcapng file to write.
        #[arg(short = 'w', long, default_value = "svrd-capture.pcapng")]
        write: PathBuf,
        /// A libpcap filter (`udp port 1280`).
        filter: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum Show {
    /// Peer routers: paths up, status, uptime.
    Peers {
        /// `detail`: every path (BFD, latency, jitter, loss, MOS); `security`: keys and
        /// certificates.
        #[arg(value_enum)]
        view: Option<PeerView>,
    },
    /// SVR sessions.
    Sessions {
        #[command(flatten)]
        filter: Filter,
        /// At most this many rows.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Every counter, by dotted name: since the reset point of `clear stats` when there is
    /// one for this run of svrd, else since svrd started.
    Stats {
        /// Only names starting with this (`drop.`, `port.wan`).
        prefix: Option<String>,
        /// Ignore the reset point: the values since svrd started.
        #[arg(long)]
        since_launch: bool,
    },
    /// Interfaces (ports) and their counters, incl. frames lost before svrd saw them.
    Interfaces,
    /// Clocks per packet of every burst stage, per worker (VPP's `show runtime`).
    Runtime,
    /// The event history.
    Events {
        /// Only this event type (`key.rotated`), category (`path`) or log name
        /// (`path-in-service`).
        #[arg(long = "type", value_name = "T")]
        kind: Option<String>,
        /// Only the latest N.
        #[arg(long)]
        limit: Option<u64>,
        /// Keep printing new events as they come (asks svrd once a second; Ctrl-C stops).
        #[arg(long)]
        follow: bool,
    },
    /// The running configuration (secrets elided).
    Config,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum PeerView {
    Detail,
    Security,
}

#[derive(clap::Args, Debug)]
struct Filter {
    /// Only this service.
    #[arg(long)]
    service: Option<String>,
    /// Only sessions to or from this peer router.
    #[arg(long)]
    peer: Option<String>,
    /// Only the session with this UUID.
    #[arg(long = "by-id", value_name = "UUID")]
    id: Option<String>,
}

impl Filter {
    fn args(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for (k, v) in [
            ("service", &self.service),
            ("peer", &self.peer),
            ("id", &self.id),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), Value::from(v.as_str()));
            }
        }
        m
    }
}

#[derive(Subcommand, Debug)]
enum Rekey {
    /// Rotate the peer key with PEER (run it on the pair's leader).
    Peer {
        /// The peer's router name.
        peer: String,
    },
}

#[derive(Subcommand, Debug)]
enum Clear {
    /// Remove sessions (all, or those matching the filter).
    Sessions {
        #[command(flatten)]
        filter: Filter,
    },
    /// Set the reset point of `show stats`, `show interfaces` and `show runtime` (saved beside
    /// the control socket; svrd's own counters keep counting).
    Stats,
}

/// Why svrctl failed.
#[derive(Debug, thiserror::Error)]
enum CtlError {
    #[error("no control socket in {RUNTIME_DIR}/*/svrd.sock: is svrd running? (or give --socket)")]
    NoSocket,
    #[error("several svrd sockets ({0}): choose one with --router or --socket")]
    Several(String),
    #[error("{path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("talking to svrd: {0}")]
    Io(#[from] std::io::Error),
    #[error("svrd's answer: {0}")]
    Frame(#[from] framing::FrameError),
    #[error("svrd closed the connection without an answer")]
    NoAnswer,
    #[error("svrd's answer is not valid: {0}")]
    BadAnswer(#[from] serde_json::Error),
    #[error("{kind}: {message}")]
    Refused { kind: String, message: String },
}

fn socket_path(cli: &Cli) -> Result<PathBuf, CtlError> {
    if let Some(p) = &cli.socket {
        return Ok(p.clone());
    }
    if let Some(r) = &cli.router {
        return Ok(Path::new(RUNTIME_DIR).join(r).join("svrd.sock"));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(RUNTIME_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("svrd.sock"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    match found.len() {
        0 => Err(CtlError::NoSocket),
        1 => Ok(found.remove(0)),
        _ => Err(CtlError::Several(
            found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

/// Sends one request and returns the answer's data.
fn call(cli: &Cli, cmd: &str, args: Map<String, Value>) -> Result<Value, CtlError> {
    let path = socket_path(cli)?;
    let stream = UnixStream::connect(&path).map_err(|source| CtlError::Connect {
        path: path.display().to_string(),
        source,
    })?;
    let t = Some(Duration::from_secs(cli.timeout.max(1)));
    stream.set_read_timeout(t)?;
    stream.set_write_timeout(t)?;
    (&stream).write_all(request_line(cmd, args).as_bytes())?;
    let mut r = BufReader::new(&stream);
    let line = framing::read_line(&mut r, MAX_RESPONSE)?.ok_or(CtlError::NoAnswer)?;
    let resp: Response = serde_json::from_slice(&line)?;
    match (resp.ok, resp.data, resp.error) {
        (true, Some(d), _) => Ok(d),
        (_, _, Some(e)) => Err(CtlError::Refused {
            kind: serde_json::to_value(e.kind)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            message: e.message,
        }),
        _ => Err(CtlError::NoAnswer),
    }
}

fn field<T: serde::de::DeserializeOwned>(data: &Value, name: &str) -> Result<T, CtlError> {
    Ok(serde_json::from_value(
        data.get(name).cloned().unwrap_or(Value::Null),
    )?)
}

/// Turns an answer's data into the table view.
type Render = Box<dyn Fn(&Value) -> Result<String, CtlError>>;

fn run(cli: &Cli) -> Result<String, CtlError> {
    let mut args = Map::new();
    let (cmd, render): (&str, Render) = match &cli.command {
        Command::Show(Show::Peers { view }) => {
            let view = *view;
            (
                "show-peers",
                Box::new(move |d| {
                    let peers: Vec<PeerInfo> = field(d, "peers")?;
                    Ok(match view {
                        None => table::peers(&peers),
                        Some(PeerView::Detail) => table::peers_detail(&peers),
                        Some(PeerView::Security) => table::peers_security(&peers),
                    })
                }),
            )
        }
        Command::Show(Show::Sessions { filter, limit }) => {
            args = filter.args();
            if let Some(n) = limit {
                args.insert("limit".into(), Value::from(*n));
            }
            (
                "show-sessions",
                Box::new(|d| {
                    let list: Vec<SessionInfo> = field(d, "sessions")?;
                    Ok(table::sessions(
                        field(d, "live")?,
                        field(d, "matched")?,
                        &list,
                    ))
                }),
            )
        }
        Command::Show(Show::Stats { .. } | Show::Interfaces | Show::Runtime)
        | Command::Clear(Clear::Stats)
        | Command::Capture { .. } => return counters_view(cli),
        Command::Show(Show::Events { kind, limit, .. }) => {
            if let Some(k) = kind {
                args.insert("type".into(), Value::from(k.as_str()));
            }
            if let Some(n) = limit {
                args.insert("limit".into(), Value::from(*n));
            }
            (
                "show-events",
                Box::new(|d| Ok(table::events(&field::<Vec<EventInfo>>(d, "events")?))),
            )
        }
        Command::Show(Show::Config) => (
            "show-config",
            Box::new(|d| {
                let c = d.get("config").cloned().unwrap_or(Value::Null);
                Ok(format!("{}\n", serde_json::to_string_pretty(&c)?))
            }),
        ),
        Command::Rekey(Rekey::Peer { peer }) => {
            args.insert("peer".into(), Value::from(peer.as_str()));
            (
                "rekey-peer",
                Box::new(|d| {
                    Ok(format!(
                        "peer-key rotation started with {} (current peer-key index {}; the new key takes over when the exchange completes)\n",
                        d.get("peer").and_then(Value::as_str).unwrap_or("?"),
                        d.get("peer_key_index")
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "-".into())
                    ))
                }),
            )
        }
        Command::Reload { config } => {
            if let Some(p) = config {
                let abs = std::path::absolute(p)?;
                args.insert("path".into(), Value::from(abs.display().to_string()));
            }
            ("reload", Box::new(|d| Ok(table::reload(d))))
        }
        Command::Clear(Clear::Sessions { filter }) => {
            args = filter.args();
            (
                "clear-sessions",
                Box::new(|d| Ok(format!("{} sessions cleared\n", d["cleared"]))),
            )
        }
    };
    let data = call(cli, cmd, args)?;
    if cli.json {
        Ok(format!("{}\n", serde_json::to_string_pretty(&data)?))
    } else {
        render(&data)
    }
}

/// Where `clear stats` keeps its reset point: beside the control socket (root only).
fn reset_path(cli: &Cli) -> Result<PathBuf, CtlError> {
    let sock = socket_path(cli)?;
    Ok(sock.with_file_name("svrctl-stats-reset.json"))
}

/// The counters and svrd's start (Unix seconds, from its uptime).
fn counters(cli: &Cli, prefix: &str) -> Result<(Vec<Stat>, u64), CtlError> {
    let mut args = Map::new();
    if !prefix.is_empty() {
        args.insert("prefix".into(), Value::from(prefix));
    }
    let data = call(cli, "show-stats", args)?;
    let uptime = data["router"]["uptime_s"].as_u64().unwrap_or(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok((field(&data, "stats")?, now.saturating_sub(uptime)))
}

/// `show stats`, `show interfaces`, `show runtime`, `clear stats` and `capture`: views of
/// the counter tree (since the reset point unless `--since-launch`), and the capture tool.
fn counters_view(cli: &Cli) -> Result<String, CtlError> {
    let (prefix, since_launch) = match &cli.command {
        Command::Show(Show::Stats {
            prefix,
            since_launch,
        }) => (prefix.clone().unwrap_or_default(), *since_launch),
        Command::Show(Show::Interfaces) => ("port.".into(), false),
        Command::Show(Show::Runtime) => ("worker.".into(), false),
        Command::Capture {
            interface,
            list,
            count,
            seconds,
            write,
            filter,
        } => {
            return capture(
                cli,
                interface.as_deref(),
                *list,
                *count,
                *seconds,
                write,
                filter,
            )
        }
        _ => (String::new(), true),
    };
    let (mut stats, started) = counters(cli, &prefix)?;
    let path = reset_path(cli)?;
    if matches!(cli.command, Command::Clear(Clear::Stats)) {
        let saved = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(started, |d| d.as_secs());
        let point = ResetPoint::new(&stats, started, saved);
        std::fs::write(&path, serde_json::to_vec(&point)?)?;
        return Ok(if cli.json {
            let v = serde_json::json!({"reset_point": path, "saved_unix_s": saved});
            format!("{v}\n")
        } else {
            let p = path.display();
            format!("reset point set ({p}); `show stats --since-launch` ignores it\n")
        });
    }
    let point = (!since_launch)
        .then(|| std::fs::read(&path).ok())
        .flatten()
        .and_then(|b| serde_json::from_slice::<ResetPoint>(&b).ok())
        .filter(|p| p.applies(started));
    if let Some(p) = &point {
        p.subtract(&mut stats);
    }
    let since = point.as_ref().map_or_else(
        || "launch".to_string(),
        |p| {
            format!(
                "reset at {}",
                svr_mgmt::time::rfc3339(i64::try_from(p.saved_unix_s).unwrap_or(0))
            )
        },
    );
    let (json, text) = match &cli.command {
        Command::Show(Show::Interfaces) => {
            let list = views::interfaces(&stats);
            (
                serde_json::json!({"since": since, "interfaces": list}),
                views::interfaces_table(&list),
            )
        }
        Command::Show(Show::Runtime) => {
            let rows = views::runtime(&stats);
            (
                serde_json::json!({"since": since, "runtime": rows}),
                views::runtime_table(&rows),
            )
        }
        _ => (
            serde_json::json!({"since": since, "stats": stats}),
            table::stats(&stats),
        ),
    };
    Ok(if cli.json {
        format!("{}\n", serde_json::to_string_pretty(&json)?)
    } else {
        format!("since {since}\n{text}")
    })
}

/// `capture`: `dpdk-dumpcap` against svrd's file prefix (the control socket's directory).
fn capture(
    cli: &Cli,
    interface: Option<&str>,
    list: bool,
    count: Option<u64>,
    seconds: u64,
    write: &Path,
    filter: &Option<String>,
) -> Result<String, CtlError> {
    let sock = socket_path(cli)?;
    let prefix = sock
        .parent()
        .and_then(Path::file_name)
        .map(|p| p.to_string_lossy().into_owned())
        .ok_or(CtlError::NoSocket)?;
    let mut cmd = std::process::Command::new("dpdk-dumpcap");
    cmd.arg("--file-prefix").arg(&prefix);
    if list {
        cmd.arg("-D");
    } else {
        cmd.arg("-i").arg(interface.unwrap_or("0"));
        cmd.arg("-w").arg(write);
        cmd.arg("-a").arg(format!("duration:{}", seconds.max(1)));
        if let Some(c) = count {
            cmd.arg("-c").arg(c.to_string());
        }
        if let Some(f) = filter {
            cmd.arg("-f").arg(f);
        }
    }
    let status = cmd.status().map_err(|source| CtlError::Connect {
        path: "dpdk-dumpcap".into(),
        source,
    })?;
    if !status.success() {
        return Err(CtlError::Refused {
            kind: "capture".into(),
            message: format!("dpdk-dumpcap exited with {status}"),
        });
    }
    Ok(if list {
        String::new()
    } else {
        format!("capture written to {}\n", write.display())
    })
}

/// `show events --follow`: the history, then every new event (one line each, or one JSON
/// object per line with `--json`), polling once a second.
fn follow(cli: &Cli, kind: Option<&str>) -> Result<String, CtlError> {
    let mut seen: Option<(u64, usize)> = None;
    loop {
        let mut args = Map::new();
        if let Some(k) = kind {
            args.insert("type".into(), Value::from(k));
        }
        let data = call(cli, "show-events", args)?;
        let events: Vec<EventInfo> = field(&data, "events")?;
        // New: after the newest time seen, or at that time but past the count seen then.
        let (t0, n0) = seen.unwrap_or((0, 0));
        let fresh: Vec<&EventInfo> = if seen.is_none() {
            events.iter().collect()
        } else {
            let at_t0 = events.iter().filter(|e| e.unix_ms == t0).count();
            events
                .iter()
                .filter(|e| e.unix_ms > t0)
                .chain(
                    events
                        .iter()
                        .filter(|e| e.unix_ms == t0)
                        .skip(n0.min(at_t0)),
                )
                .collect()
        };
        let mut out = std::io::stdout().lock();
        for e in &fresh {
            let line = if cli.json {
                format!("{}\n", serde_json::to_string(e)?)
            } else {
                table::events(std::slice::from_ref(e))
            };
            if out.write_all(line.as_bytes()).is_err() {
                return Ok(String::new());
            }
        }
        let _ = out.flush();
        if let Some(last) = events.last() {
            let n = events.iter().filter(|e| e.unix_ms == last.unix_ms).count();
            seen = Some((last.unix_ms, n));
        } else if seen.is_none() {
            seen = Some((0, 0));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Show(Show::Events {
            kind, follow: true, ..
        }) => follow(&cli, kind.as_deref()),
        _ => run(&cli),
    };
    match result {
        Ok(out) => {
            // A closed pipe (`svrctl ... | head`) ends quietly, not in a panic.
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(out.as_bytes()).and_then(|()| o.flush());
            ExitCode::SUCCESS
        }
        Err(e) => {
            if cli.json {
                if let CtlError::Refused { kind, message } = &e {
                    let v = serde_json::json!({"error": {"kind": kind, "message": message}});
                    println!("{v}");
                }
            }
            eprintln!("svrctl: error: {e}");
            ExitCode::FAILURE
        }
    }
}
