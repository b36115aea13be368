//! The management plane of svrd: the control socket (svrctl) and the Prometheus endpoint,
//! each served by one std thread that never touches a worker.
//!
//! ```text
//!  workers ── per-lcore counters (atomics, one writer) ──────────────┐
//!  KeyStore snapshot, session table (lock-free reads) ────────────────┤
//!  slow-path thread ── every 500 ms: ArcSwap<SlowView> ───────────────┤ Mgmt (svr_mgmt::Backend)
//!     (its counters, key management's peers/paths/keys, event history) │   ├ control thread: Unix socket,
//!  slow-path thread ◀── action channel (rekey, reload) ◀──────────────┘   │  one request line → one answer
//!                                                                          └ metrics thread: GET /metrics
//! ```
//!
//! What the reader sees is at most one publication old (≤ 500 ms) for the slow path's state,
//! and current for counters, keys and sessions. Actions that change key-management state go
//! to the slow-path thread, which owns it, through a small bounded channel that it polls
//! without waiting; the management thread waits for the answer at most [`ACTION_WAIT`].
//! Clearing sessions removes them from the table directly: removal is lock-free and workers
//! do it too.
//!
//! Cost: `show sessions`, `clear sessions` and each `/metrics` scrape (sessions by service)
//! walk the whole session table (`max-sessions` entries, a few lock-free loads each; not
//! measured yet at millions of sessions); everything else reads a few snapshots.

use std::io::{BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use fastpath::session::{MetadataState, Role as SessionRole};
use fastpath::svr_path::SvrShared;
use serde_json::{json, Value};
use svr_mgmt::model::{
    DirectionStats, EventInfo, PathInfo, PeerInfo, RouterInfo, SecurityInfo, SessionFilter,
    SessionInfo, SessionList, Stat,
};
use svr_mgmt::{framing, http, metrics, Backend, MgmtError};

use crate::slow::Reporter;
use crate::startup::StartupError;

/// How long a request may take to arrive, and an answer to be written (an idle client
/// holds the one control thread, and delays svrd's exit, at most this long).
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the control thread waits for the slow-path thread to carry out an action.
pub const ACTION_WAIT: Duration = Duration::from_secs(2);
/// Sleep between two polls of a listener that had nothing (the threads check `stop`).
const ACCEPT_POLL: Duration = Duration::from_millis(50);
/// Actions queued for the slow-path thread at most; more are refused at once.
pub const ACTION_QUEUE: usize = 4;
/// How often the slow-path thread publishes its view.
pub const VIEW_EVERY: Duration = Duration::from_millis(500);

/// What the slow-path thread publishes for readers.
#[derive(Default)]
pub struct SlowView {
    /// Its counter list (the SIGUSR1 `slowpath` lines).
    pub counters: Vec<(&'static str, u64)>,
    /// Peers with key management (empty in test-key mode).
    pub peers: Vec<PeerInfo>,
    /// The event history, oldest first.
    pub events: Vec<EventInfo>,
}

/// A request for the slow-path thread.
pub enum Action {
    /// `rekey peer NAME`: the answer goes back on `reply`.
    RekeyPeer {
        peer: String,
        reply: SyncSender<Result<Value, MgmtError>>,
    },
    /// `reload [PATH]`: the answer goes back on `reply`.
    Reload {
        path: Option<PathBuf>,
        reply: SyncSender<Result<Value, MgmtError>>,
    },
}

/// The running configuration as `show config` shows it; replaced on every reload.
pub struct ShownConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// Its text as JSON, secrets elided.
    pub config: Value,
    /// The reload revision (1 at start, one more per reload that changed something).
    pub revision: u64,
}

/// Everything the management threads read.
pub struct Mgmt {
    pub router: String,
    pub node: String,
    pub key_management: bool,
    pub started: std::time::Instant,
    pub reporter: Arc<Reporter>,
    pub svr: Option<Arc<SvrShared>>,
    pub view: Arc<ArcSwap<SlowView>>,
    pub actions: SyncSender<Action>,
    /// The slow-path thread's clock (ns), the one the session table's times are in.
    pub clock: Arc<AtomicU64>,
    /// The running configuration file, secrets elided (the slow-path thread replaces it on
    /// a reload).
    pub config: Arc<ArcSwap<ShownConfig>>,
    /// The management threads' own counters (`mgmt.*` in `show stats`).
    pub counters: MgmtCounters,
}

/// Counters of the management threads; each has one writer thread.
#[derive(Default)]
pub struct MgmtCounters {
    /// Control-socket connections accepted.
    pub connections: AtomicU64,
    /// Connections refused: the peer is neither root nor svrd's user.
    pub refused_not_root: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// Of those, answered with an error (malformed, unknown, refused, ...).
    pub request_errors: AtomicU64,
    /// Connections closed for a request over the size limit.
    pub requests_too_large: AtomicU64,
    /// Connections closed on a read or write error or timeout.
    pub io_errors: AtomicU64,
    /// `/metrics` scrapes answered.
    pub metrics_scrapes: AtomicU64,
    /// HTTP requests answered with 4xx.
    pub http_errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// The configuration file as JSON with secrets elided: every value under an
/// `svr-test-metadata-key` becomes `"<elided>"`.
pub fn elided_config(text: &str) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    if k == "svr-test-metadata-key" && !v.is_null() {
                        *v = Value::from("<elided>");
                    } else {
                        walk(v);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v: Value = serde_norway::from_str(text).unwrap_or(Value::Null);
    walk(&mut v);
    v
}

fn protocol_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        n => n.to_string(),
    }
}

fn uuid_string(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Mgmt {
    /// The session in table entry `index` as shown to operators.
    fn session_info(&self, svr: &SvrShared, index: u32, now_ms: u64) -> Option<SessionInfo> {
        let v = svr.table.session_at(index)?;
        let s = v.session;
        // LAN key: packets arriving from the LAN (client → server for an ingress session,
        // server → client for an egress one). WAN key: packets from the peer, peer → us.
        let client = match s.role {
            SessionRole::Ingress => s.lan_key,
            SessionRole::Egress => s.lan_key.reversed(),
        };
        let server_addr = client.dst();
        let services = svr.services();
        let service = services.service_for(server_addr).map(|(_, r)| r);
        let timeouts = &services.timeouts;
        let direction = |(packets, bytes): (u64, u64)| DirectionStats { packets, bytes };
        let (local_wp, remote_wp) = (s.wan_key.dst(), s.wan_key.src());
        let peer = svr
            .peer_of_waypoint(remote_wp)
            .and_then(|p| svr.cfg.peers.get(usize::from(p)))
            .map(|p| p.name.clone());
        Some(SessionInfo {
            uuid: uuid_string(&v.uuid),
            service: service.map(|r| r.name.clone()),
            tenant: service.map(|r| r.tenant.clone()),
            protocol: protocol_name(client.proto()),
            source: client.src().to_string(),
            source_port: client.src_port(),
            destination: client.dst().to_string(),
            destination_port: client.dst_port(),
            peer,
            local_waypoint: local_wp.to_string(),
            local_wayport: s.wan_key.dst_port(),
            remote_waypoint: remote_wp.to_string(),
            remote_wayport: s.wan_key.src_port(),
            path: format!("{local_wp}->{remote_wp}"),
            payload_key_index: u32::from(s.payload_key_index),
            role: match s.role {
                SessionRole::Ingress => "ingress".into(),
                SessionRole::Egress => "egress".into(),
            },
            metadata: match s.metadata {
                MetadataState::SendingForward { .. } => "sending-forward".into(),
                MetadataState::AwaitingReverse => "awaiting-reverse".into(),
                MetadataState::SendingReverse => "sending-reverse".into(),
                MetadataState::Established => "established".into(),
            },
            idle_ms: now_ms.saturating_sub(v.last_seen_ms),
            age_ms: now_ms.saturating_sub(v.created_ms),
            timeout_s: timeouts.timeout_of(&v).as_secs(),
            expires_in_ms: timeouts.remaining_ms(&v, now_ms),
            forward: direction(v.forward()),
            reverse: direction(v.reverse()),
        })
    }

    fn now_ms(&self) -> u64 {
        self.clock.load(Relaxed) / 1_000_000
    }

    /// Visits every live session (bounded by the table's capacity).
    fn each_session(&self, mut f: impl FnMut(u32, SessionInfo)) {
        let Some(svr) = &self.svr else { return };
        let now = self.now_ms();
        let cap = u32::try_from(svr.table.capacity()).unwrap_or(u32::MAX);
        for i in 0..cap {
            if let Some(s) = self.session_info(svr, i, now) {
                f(i, s);
            }
        }
    }

    /// Live sessions per service (`-` for none), for `/metrics`.
    pub fn sessions_by_service(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = Vec::new();
        if let Some(svr) = &self.svr {
            for s in &svr.services().services {
                out.push((s.name.clone(), 0));
            }
        }
        self.each_session(|_, s| {
            let name = s.service.unwrap_or_else(|| "-".into());
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => *c += 1,
                None => out.push((name, 1)),
            }
        });
        out
    }

    /// Peers in test-key mode: from the configuration and the key snapshot.
    fn test_key_peers(&self, svr: &SvrShared) -> Vec<PeerInfo> {
        let snap = svr.keys.load();
        let mut out = Vec::new();
        for (i, p) in svr.cfg.peers.iter().enumerate() {
            let id = i as u16;
            let paths: Vec<PathInfo> = svr
                .pairs()
                .iter()
                .enumerate()
                .filter(|(_, pair)| pair.peer == id)
                .map(|(pi, pair)| PathInfo {
                    local: pair.local.to_string(),
                    remote: pair.remote.to_string(),
                    bfd_state: "-".into(),
                    in_service: snap.path_in_service(pi),
                    latency_ms: None,
                    jitter_ms: None,
                    loss_percent: None,
                    mos: None,
                    uptime_s: None,
                })
                .collect();
            let up = paths.iter().filter(|p| p.in_service).count() as u32;
            out.push(PeerInfo {
                name: p.name.clone(),
                common_name: None,
                status: if up > 0 { "up (test keys)" } else { "down" }.into(),
                role: None,
                version: None,
                paths_up: up,
                paths_total: paths.len() as u32,
                uptime_s: Some(self.started.elapsed().as_secs()),
                paths,
                security: SecurityInfo {
                    key_state: "test-keys".into(),
                    own_metadata_key_index: snap
                        .own_per_peer
                        .get(i)
                        .and_then(|k| k.current.as_ref())
                        .or(snap.own.current.as_ref())
                        .map(|k| k.rekey_index()),
                    peer_metadata_key_index: snap
                        .peers
                        .get(i)
                        .and_then(|k| k.current.as_ref())
                        .map(|k| k.rekey_index()),
                    payload_key_index: u32::from(snap.payload_key_index(id)),
                    ..Default::default()
                },
            });
        }
        out
    }
}

impl Backend for Mgmt {
    fn router(&self) -> RouterInfo {
        RouterInfo {
            router: self.router.clone(),
            node: self.node.clone(),
            key_management: self.key_management,
            uptime_s: self.started.elapsed().as_secs(),
        }
    }

    fn peers(&self) -> Vec<PeerInfo> {
        match &self.svr {
            Some(svr) if !self.key_management => self.test_key_peers(svr),
            _ => self.view.load().peers.clone(),
        }
    }

    fn stats(&self) -> Vec<Stat> {
        let ports: Vec<_> = self
            .reporter
            .ports
            .iter()
            .map(|(n, p)| (n.clone(), p.stats().unwrap_or_default()))
            .collect();
        let workers: Vec<_> = self.reporter.workers.iter().map(|w| w.as_ref()).collect();
        let mut v = crate::counters::stats(&ports, &workers, &self.view.load().counters);
        // Frames an af_packet port's kernel ring dropped before a poll (DPDK does not count
        // them for that driver; `dpdk_ffi::af_packet`).
        for ((name, _), (_, drops)) in self.reporter.ports.iter().zip(&self.reporter.ring_drops) {
            v.push(Stat::counter(
                format!("port.{name}.rx_ring_drops"),
                drops.load(std::sync::atomic::Ordering::Relaxed),
            ));
        }
        let c = &self.counters;
        for (name, n) in [
            ("connections", &c.connections),
            ("refused_not_root", &c.refused_not_root),
            ("requests", &c.requests),
            ("request_errors", &c.request_errors),
            ("requests_too_large", &c.requests_too_large),
            ("io_errors", &c.io_errors),
            ("metrics_scrapes", &c.metrics_scrapes),
            ("http_errors", &c.http_errors),
        ] {
            v.push(Stat::counter(format!("mgmt.{name}"), n.load(Relaxed)));
        }
        v
    }

    fn sessions(&self, filter: &SessionFilter, limit: usize) -> SessionList {
        let mut list = SessionList::default();
        self.each_session(|_, s| {
            list.live += 1;
            if filter.matches(&s) {
                list.matched += 1;
                if list.sessions.len() < limit {
                    list.sessions.push(s);
                }
            }
        });
        list
    }

    fn events(&self) -> Vec<EventInfo> {
        self.view.load().events.clone()
    }

    fn config(&self) -> Value {
        let c = self.config.load();
        json!({ "path": c.path.display().to_string(), "revision": c.revision, "config": c.config })
    }

    fn reload(&self, path: Option<&str>) -> Result<Value, MgmtError> {
        let path = match path {
            Some(p) if !Path::new(p).is_absolute() => {
                return Err(MgmtError::Argument {
                    cmd: "reload",
                    arg: "path".into(),
                    problem: "must be an absolute path",
                })
            }
            p => p.map(PathBuf::from),
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.actions
            .try_send(Action::Reload { path, reply: tx })
            .map_err(|_| {
                MgmtError::Refused("the slow-path thread has actions queued: try again".into())
            })?;
        rx.recv_timeout(ACTION_WAIT)
            .map_err(|_| MgmtError::Timeout {
                what: "the slow-path thread",
                ms: ACTION_WAIT.as_millis() as u64,
            })?
    }

    fn rekey_peer(&self, peer: &str) -> Result<Value, MgmtError> {
        let known = self
            .svr
            .as_ref()
            .is_some_and(|s| s.cfg.peers.iter().any(|p| p.name == peer));
        if !known {
            return Err(MgmtError::UnknownPeer(peer.to_string()));
        }
        if !self.key_management {
            return Err(MgmtError::Refused(
                "test-key mode: metadata keys come from the configuration, there is no peer key to rotate".into(),
            ));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.actions
            .try_send(Action::RekeyPeer {
                peer: peer.to_string(),
                reply: tx,
            })
            .map_err(|_| {
                MgmtError::Refused("the slow-path thread has actions queued: try again".into())
            })?;
        rx.recv_timeout(ACTION_WAIT)
            .map_err(|_| MgmtError::Timeout {
                what: "the slow-path thread",
                ms: ACTION_WAIT.as_millis() as u64,
            })?
    }

    fn clear_sessions(&self, filter: &SessionFilter) -> Result<u64, MgmtError> {
        let Some(svr) = &self.svr else { return Ok(0) };
        let mut cleared = 0;
        self.each_session(|i, s| {
            if filter.matches(&s) {
                if let Some(r) = svr.table.session_at(i).map(|v| v.session) {
                    if svr.remove_session(&r) {
                        cleared += 1;
                    }
                }
            }
        });
        if cleared > 0 {
            log::info!("event=sessions-cleared count={cleared} by=control-socket");
        }
        Ok(cleared)
    }
}

/// The management threads; stopped and joined by [`Threads::join`].
pub struct Threads {
    handles: Vec<JoinHandle<()>>,
    socket: PathBuf,
}

impl Threads {
    /// Waits for the threads (they stop when `stop` is set) and removes the socket file.
    pub fn join(self) {
        for h in self.handles {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn mgmt_err(path: &str, reason: impl std::fmt::Display) -> StartupError {
    StartupError::Management {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

/// Binds the control socket at `path` (mode 0600; its directory made 0700 if missing; a
/// stale socket of a killed svrd replaced; a live one refused).
fn bind_control(path: &Path, field: &str) -> Result<UnixListener, StartupError> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    mgmt_err(field, format_args!("cannot create {}: {e}", dir.display()))
                })?;
        }
    }
    if let Ok(md) = std::fs::symlink_metadata(path) {
        if !md.file_type().is_socket() {
            return Err(mgmt_err(
                field,
                format_args!("{} exists and is not a socket", path.display()),
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(mgmt_err(
                field,
                format_args!(
                    "{} is in use by a running process (another svrd?)",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path).map_err(|e| {
            mgmt_err(
                field,
                format_args!("cannot remove stale {}: {e}", path.display()),
            )
        })?;
    }
    let l = UnixListener::bind(path)
        .map_err(|e| mgmt_err(field, format_args!("cannot bind {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| mgmt_err(field, format_args!("cannot chmod {}: {e}", path.display())))?;
    l.set_nonblocking(true)
        .map_err(|e| mgmt_err(field, format_args!("{}: {e}", path.display())))?;
    Ok(l)
}

/// Starts the control thread on `socket` and, with `metrics`, the metrics thread.
pub fn start(
    mgmt: Arc<Mgmt>,
    socket: PathBuf,
    socket_field: &str,
    metrics_listen: Option<SocketAddr>,
    metrics_field: &str,
    stop: Arc<AtomicBool>,
) -> Result<Threads, StartupError> {
    let listener = bind_control(&socket, socket_field)?;
    let metrics_listener = match metrics_listen {
        Some(addr) => {
            let l = TcpListener::bind(addr).map_err(|e| {
                mgmt_err(metrics_field, format_args!("cannot listen on {addr}: {e}"))
            })?;
            l.set_nonblocking(true)
                .map_err(|e| mgmt_err(metrics_field, format_args!("{addr}: {e}")))?;
            Some(l)
        }
        None => None,
    };
    let mut handles = Vec::new();
    let (m, s) = (Arc::clone(&mgmt), Arc::clone(&stop));
    handles.push(
        std::thread::Builder::new()
            .name("svrd-control".into())
            .spawn(move || control_loop(listener, &m, &s))
            .map_err(|e| mgmt_err(socket_field, format_args!("cannot start its thread: {e}")))?,
    );
    log::info!("control socket {} (svrctl)", socket.display());
    if let Some(l) = metrics_listener {
        let addr = l.local_addr().ok();
        let (m, s) = (Arc::clone(&mgmt), Arc::clone(&stop));
        handles.push(
            std::thread::Builder::new()
                .name("svrd-metrics".into())
                .spawn(move || metrics_loop(l, &m, &s))
                .map_err(|e| {
                    mgmt_err(metrics_field, format_args!("cannot start its thread: {e}"))
                })?,
        );
        if let Some(a) = addr {
            log::info!("metrics on http://{a}/metrics");
        }
    }
    Ok(Threads { handles, socket })
}

/// Whether the peer process may use the socket: root or our own user.
fn peer_allowed(s: &UnixStream) -> bool {
    match nix::sys::socket::getsockopt(s, nix::sys::socket::sockopt::PeerCredentials) {
        Ok(c) => c.uid() == 0 || c.uid() == nix::unistd::geteuid().as_raw(),
        Err(_) => false,
    }
}

fn control_loop(l: UnixListener, mgmt: &Mgmt, stop: &AtomicBool) {
    let c = &mgmt.counters;
    while !stop.load(Relaxed) {
        match l.accept() {
            Ok((s, _)) => {
                bump(&c.connections);
                if !peer_allowed(&s) {
                    bump(&c.refused_not_root);
                    log::warn!(
                        "event=control-socket-refused reason=peer-not-root refused={}",
                        c.refused_not_root.load(Relaxed)
                    );
                    let e = MgmtError::Refused("only root may use the control socket".into());
                    let _ = (&s).write_all(svr_mgmt::proto::Response::err(&e).to_line().as_bytes());
                    continue;
                }
                serve_control(s, mgmt, stop);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

/// Answers request lines on one connection until it closes, times out or sends too much.
fn serve_control(s: UnixStream, mgmt: &Mgmt, stop: &AtomicBool) {
    if s.set_nonblocking(false).is_err()
        || s.set_read_timeout(Some(IO_TIMEOUT)).is_err()
        || s.set_write_timeout(Some(IO_TIMEOUT)).is_err()
    {
        return;
    }
    let c = &mgmt.counters;
    let mut r = BufReader::new(&s);
    while !stop.load(Relaxed) {
        let answer = match framing::read_line(&mut r, svr_mgmt::MAX_REQUEST) {
            Ok(None) => return,
            Ok(Some(line)) => svr_mgmt::respond(&line, mgmt),
            Err(framing::FrameError::TooLong { max }) => {
                bump(&c.requests_too_large);
                let e = MgmtError::TooLarge { max };
                let _ = (&s).write_all(svr_mgmt::proto::Response::err(&e).to_line().as_bytes());
                return;
            }
            Err(framing::FrameError::Io(_)) => {
                bump(&c.io_errors);
                return;
            }
        };
        bump(&c.requests);
        if !answer.ok {
            bump(&c.request_errors);
        }
        if (&s).write_all(answer.to_line().as_bytes()).is_err() {
            bump(&c.io_errors);
            return;
        }
    }
}

/// The `/metrics` page now.
pub fn metrics_page(mgmt: &Mgmt) -> String {
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let peers = mgmt.peers();
    let stats = mgmt.stats();
    let by_service = mgmt.sessions_by_service();
    metrics::render(&metrics::MetricsInput {
        now_unix,
        uptime_s: mgmt.started.elapsed().as_secs(),
        peers: &peers,
        stats: &stats,
        sessions_by_service: &by_service,
    })
}

fn metrics_loop(l: TcpListener, mgmt: &Mgmt, stop: &AtomicBool) {
    while !stop.load(Relaxed) {
        match l.accept() {
            Ok((s, _)) => serve_http(s, mgmt),
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

fn serve_http(mut s: TcpStream, mgmt: &Mgmt) {
    if s.set_nonblocking(false).is_err()
        || s.set_read_timeout(Some(IO_TIMEOUT)).is_err()
        || s.set_write_timeout(Some(IO_TIMEOUT)).is_err()
    {
        return;
    }
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !http::head_complete(&head) && head.len() < http::MAX_HEAD {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let mut scraped = false;
    let out = http::respond(&head, || {
        scraped = true;
        metrics_page(mgmt)
    });
    bump(if scraped {
        &mgmt.counters.metrics_scrapes
    } else {
        &mgmt.counters.http_errors
    });
    let _ = s.write_all(&out);
}

/// Whether an address is loopback (a metrics endpoint elsewhere gets a warning).
pub fn is_loopback(a: &SocketAddr) -> bool {
    match a.ip() {
        IpAddr::V4(v) => v.is_loopback(),
        IpAddr::V6(v) => v.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_secrets_are_elided() {
        let text = "local-router: a\nauthority:\n  router:\n    - name: a\n      svr-test-metadata-key:\n        rekey-index: 1\n        encryption-key: 00ff\n      peer:\n        - router: b\n          svr-test-metadata-key: {encryption-key: aa}\n";
        let v = elided_config(text);
        assert_eq!(v["local-router"], "a");
        assert_eq!(
            v["authority"]["router"][0]["svr-test-metadata-key"],
            "<elided>"
        );
        assert_eq!(
            v["authority"]["router"][0]["peer"][0]["svr-test-metadata-key"],
            "<elided>"
        );
        assert!(!v.to_string().contains("00ff"));
        assert_eq!(elided_config(": : :"), Value::Null);
    }

    #[test]
    fn uuids_print_in_the_usual_groups() {
        let u = [
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        assert_eq!(uuid_string(&u), "00112233-4455-6677-8899-aabbccddeeff");
    }

    #[test]
    fn the_control_socket_is_0600_replaces_stale_ones_and_refuses_live_ones() {
        let dir = std::env::temp_dir().join(format!("svrd-mgmt-test-{}", std::process::id()));
        let path = dir.join("sub").join("svrd.sock");
        let l = bind_control(&path, "f").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        // A live listener: refused, with the field path.
        let e = bind_control(
            &path,
            "authority.router[0].node[0].management.control-socket",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("authority.router[0].node[0].management.control-socket: "),
            "{e}"
        );
        assert!(e.contains("in use"), "{e}");
        // Our own user may connect.
        let c = UnixStream::connect(&path).unwrap();
        let (s, _) = loop {
            match l.accept() {
                Ok(x) => break x,
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        assert!(peer_allowed(&s));
        drop((c, s));
        // Stale (nobody listening): replaced.
        drop(l);
        let _l = bind_control(&path, "f").unwrap();
        // Not a socket: refused.
        let file = dir.join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(bind_control(&file, "f")
            .unwrap_err()
            .to_string()
            .contains("not a socket"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
