//! The conductor process: the HTTPS router API (TLS 1.3 only, rustls), the admin socket,
//! and the glue that commits the core's writes before answering.
//!
//! One thread per connection (at most [`ServeOptions::max_connections`], by default
//! [`MAX_CONNECTIONS`]; a waiting long poll holds one), one request per connection,
//! [`IO_TIMEOUT`] to send a request, long polls up to [`MAX_WAIT`].
//!
//! | endpoint | TLS client certificate | |
//! | --- | --- | --- |
//! | `POST /v1/enroll` | none | token + CSR + router/node/version → chain, CRL, revision |
//! | `GET /v1/config?after=REV&node=N&wait=S` | the router's | 200 `{revision, yaml}` when newer than `REV`, else 204 after `S` s |
//! | `POST /v1/status` | the router's | `{node, version, applied-revision, error}` → 204 |
//! | `GET /v1/crl` | none | the current CRL, PEM |

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use zeroize::Zeroizing;

use crate::admin::{execute, execute_prepared, prepare, AdminRequest, AdminResponse};
use crate::client::{crl_fingerprint, ConfigResponse, EnrollResponse, ErrorBody};
use crate::core::{Conductor, EnrollError, EnrollRequest, LoadError, StatusReport};
use crate::enroll::{leaf_serial_and_name, CertificateAuthority, CsrError};
use crate::http::{self, Request};
use crate::store::{Feed, FileStore, Store, StoreError};

/// Concurrent connections served by default; more are closed at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// Time allowed to send a request or receive an answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest long poll.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Validity of each CRL the conductor signs (days); it re-signs daily.
pub const CRL_DAYS: u32 = 7;
/// Tries of one request against a shared store when another replica wrote first.
pub const CONFLICT_TRIES: u32 = 8;

/// Where the conductor keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// `state.json` in the state directory (one conductor).
    File,
    /// An etcd cluster shared by conductor replicas.
    Etcd {
        /// The members (`host:port`); the client fails over between them.
        endpoints: Vec<String>,
        /// The authority: keys live under `/svr/v1/<authority>/`.
        authority: String,
        /// Client TLS and the etcd user (both off by default).
        access: crate::etcd_access::EtcdAccess,
    },
}

/// Opens the store `choice` names (the file one in `state_dir`).
pub fn open_store(state_dir: &Path, choice: &StoreChoice) -> Result<Box<dyn Store>, StoreError> {
    Ok(match choice {
        StoreChoice::File => Box::new(FileStore::new(&store_path(state_dir))),
        #[cfg(feature = "etcd")]
        StoreChoice::Etcd {
            endpoints,
            authority,
            access,
        } => Box::new(crate::etcd::EtcdStore::connect_with(
            endpoints, authority, access,
        )?),
        #[cfg(not(feature = "etcd"))]
        StoreChoice::Etcd { .. } => {
            return Err(StoreError::Config(
                "this svr-conductor was built without the etcd feature",
            ))
        }
    })
}

/// Why the conductor could not start or went down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A file given on the command line could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The reason.
        source: std::io::Error,
    },
    /// The CA certificate or key is unusable.
    #[error("issuing CA: {0}")]
    Ca(CsrError),
    /// TLS set-up failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored state is unreadable.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A socket could not be opened.
    #[error("{what}: {source}")]
    Socket {
        /// Which socket.
        what: String,
        /// The reason.
        source: std::io::Error,
    },
}

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen for routers.
    pub listen: SocketAddr,
    /// The state directory (store file `state.json`, `admin.sock`).
    pub state_dir: PathBuf,
    /// The authority root certificate (PEM).
    pub root: PathBuf,
    /// The issuing (intermediate) CA certificate (PEM).
    pub ca_cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub ca_key: PathBuf,
    /// The name in the conductor's own TLS certificate (routers' bootstrap `server-name`).
    pub server_name: String,
    /// Where the state is kept.
    pub store: StoreChoice,
    /// Lifetime of a stored status report (seconds; a lease in etcd).
    pub status_ttl: u64,
    /// Concurrent connections (each a thread; every router's long poll holds one): at
    /// least the number of routers, below the process's open-file limit.
    pub max_connections: usize,
    /// This replica's name among those sharing an etcd store (its audit events go under
    /// `audit/<replica>/`); `None` with the file store.
    pub replica: Option<String>,
}

/// The store file in a state directory.
pub fn store_path(state_dir: &Path) -> PathBuf {
    state_dir.join("state.json")
}

/// The admin socket in a state directory.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("admin.sock")
}

/// Replicas render the routers' parts themselves: one of another version than the one
/// that applied may render them differently (docs/conductor.md, store keys).
fn warn_if_applied_by_another_version(core: &Conductor) {
    if let Some(v) = core.applied_by().filter(|v| *v != crate::version::OURS) {
        log::warn!(
            "revision {} was applied by conductor {v}; this one is {} and renders the routers' parts itself: run one version on every replica",
            core.revision(),
            crate::version::OURS
        );
    }
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn read(path: &Path) -> Result<Zeroizing<String>, ServerError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|source| ServerError::Read {
            path: path.display().to_string(),
            source,
        })
}

struct Inner {
    core: Conductor,
    store: Box<dyn Store>,
    crl_pem: String,
    crl_signed: u64,
    crl_entries: Vec<(String, u64)>,
    tls: Arc<rustls::ServerConfig>,
}

struct Shared {
    inner: Mutex<Inner>,
    changed: Condvar,
    ca: CertificateAuthority,
    root_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Zeroizing<String>,
    active: AtomicUsize,
    status_ttl: u64,
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panicking request thread must not take the conductor down with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

impl Shared {
    /// Runs `f` on the core, commits its writes, logs its events, wakes the watchers. A
    /// failed commit reloads the core from the store, so memory never runs ahead of the
    /// store; when another replica wrote first (a conflict), `f` runs again on the
    /// reloaded state, up to [`CONFLICT_TRIES`] times.
    fn with_core<T>(&self, mut f: impl FnMut(&mut Conductor) -> T) -> Result<T, StoreError> {
        let mut g = lock(&self.inner);
        let revision = g.core.revision();
        let crl = g.crl_pem.clone();
        let mut tries = 1;
        let out = loop {
            let out = f(&mut g.core);
            let ops = g.core.take_ops();
            let committed = if ops.is_empty() {
                Ok(0)
            } else {
                g.store.commit(&ops)
            };
            match committed {
                Ok(_) => break out,
                Err(e) => {
                    while g.core.poll_event().is_some() {}
                    self.reload(&mut g);
                    if matches!(e, StoreError::Conflict { .. }) && tries < CONFLICT_TRIES {
                        log::info!("store: {e}; reloaded, trying again");
                        tries += 1;
                        // The other replica is writing too: step aside for a random moment,
                        // the lock released, so that the two do not collide again at once.
                        drop(g);
                        let wait = u64::from(random::<1>()[0] % 16) * u64::from(tries);
                        std::thread::sleep(Duration::from_millis(wait));
                        g = lock(&self.inner);
                        continue;
                    }
                    log::error!("store commit failed, reloaded: {e}");
                    return Err(e);
                }
            }
        };
        while let Some(e) = g.core.poll_event() {
            log::info!("audit {e}");
        }
        self.refresh_crl(&mut g);
        // Watchers wait for a new configuration revision or CRL; enrollments, status reports
        // and tokens make neither, and waking every long poll for them costs O(routers).
        let applied = g.core.revision() != revision || g.crl_pem != crl;
        drop(g);
        if applied {
            self.changed.notify_all();
        }
        Ok(out)
    }

    /// Replaces the core by the store's state (after a failed commit, or when the feed
    /// lost history). On failure the core stays as it was.
    fn reload(&self, g: &mut Inner) {
        let loaded = g
            .store
            .load()
            .map_err(|e| e.to_string())
            .and_then(|(_, kv)| Conductor::reload_from(&kv, &g.core).map_err(|e| e.to_string()));
        match loaded {
            Ok(mut core) => {
                core.set_status_ttl(self.status_ttl);
                g.core = core;
            }
            Err(e) => log::error!("reloading from the store failed: {e}"),
        }
    }

    /// Applies what other replicas wrote (the store's feed) to the core, then wakes the
    /// long polls: an apply made on another replica reaches the routers watching this one.
    fn follow(&self, feed: std::sync::mpsc::Receiver<Feed>) {
        for item in feed {
            let mut g = lock(&self.inner);
            match item {
                Feed::Changes { revision, changes } => {
                    let changes = g.store.absorb(revision, changes);
                    if changes.is_empty() {
                        continue;
                    }
                    for c in &changes {
                        if let Err(e) = g.core.store_changed(&c.key, c.value.as_deref()) {
                            log::error!("store revision {revision}: {e}; key ignored");
                        }
                    }
                    let before = g.core.applied_by().map(str::to_owned);
                    g.core.settle();
                    if g.core.applied_by() != before.as_deref() {
                        warn_if_applied_by_another_version(&g.core);
                    }
                    log::debug!("store revision {revision}: {} changes", changes.len());
                }
                Feed::Reload => {
                    log::warn!("store feed lost history: reloading everything");
                    self.reload(&mut g);
                }
            }
            self.refresh_crl(&mut g);
            drop(g);
            self.changed.notify_all();
        }
        log::error!("store feed ended: this replica no longer sees the others' writes");
    }

    /// Re-signs the CRL (and rebuilds the TLS config that checks it) when the revoked set
    /// changed or the CRL is a day old.
    fn refresh_crl(&self, g: &mut Inner) {
        let now = unix_now();
        let entries = g.core.crl_entries(now);
        if entries == g.crl_entries && now.saturating_sub(g.crl_signed) < 86_400 {
            return;
        }
        let mut tries = 1;
        let number = loop {
            let number = g.core.next_crl_number();
            let ops = g.core.take_ops();
            match g.store.commit(&ops) {
                Ok(_) => break number,
                Err(e) => {
                    self.reload(g);
                    if matches!(e, StoreError::Conflict { .. }) && tries < CONFLICT_TRIES {
                        tries += 1;
                        continue;
                    }
                    log::error!("store commit of the CRL number failed: {e}");
                    return;
                }
            }
        };
        match self.ca.crl(&entries, number, now, CRL_DAYS) {
            Ok(pem) => match self.tls_config(&pem) {
                Ok(tls) => {
                    g.crl_pem = pem;
                    g.crl_signed = now;
                    g.crl_entries = entries;
                    g.tls = tls;
                }
                Err(e) => log::error!("TLS config with the new CRL: {e}"),
            },
            Err(e) => log::error!("signing the CRL failed: {e}"),
        }
    }

    fn tls_config(&self, crl_pem: &str) -> Result<Arc<rustls::ServerConfig>, ServerError> {
        let tls = |e: &dyn std::fmt::Display| ServerError::Tls(e.to_string());
        let provider = crate::client::provider();
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(self.root_pem.as_bytes()) {
            roots.add(c.map_err(|e| tls(&e))?).map_err(|e| tls(&e))?;
        }
        let crls: Vec<CertificateRevocationListDer<'static>> =
            CertificateRevocationListDer::pem_slice_iter(crl_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| tls(&e))?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .with_crls(crls)
                .only_check_end_entity_revocation()
                .allow_unknown_revocation_status()
                .allow_unauthenticated()
                .build()
                .map_err(|e| tls(&e))?;
        let key = PrivateKeyDer::from_pem_slice(self.server_key.as_bytes()).map_err(|e| tls(&e))?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| tls(&e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.server_chain.clone(), key)
            .map_err(|e| tls(&e))?;
        Ok(Arc::new(config))
    }
}

/// Starts the conductor and serves until the process ends. `on_listening` gets the bound
/// address (the port may have been 0).
pub fn serve(
    opts: &ServeOptions,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let root_pem = read(&opts.root)?.to_string();
    let ca_cert = read(&opts.ca_cert)?;
    let ca_key = read(&opts.ca_key)?;
    let ca = CertificateAuthority::from_pem(&ca_cert, &ca_key).map_err(ServerError::Ca)?;
    // The conductor's own TLS certificate, from the same CA, made fresh at each start.
    let now = unix_now();
    let own = svr_keymgmt::pki::issue_router(
        &ca_cert,
        &ca_key,
        &opts.server_name,
        svr_keymgmt::pki::Validity::days_from(now, 30),
    )
    .map_err(|e| ServerError::Tls(e.to_string()))?;
    let server_chain = CertificateDer::pem_slice_iter(own.cert_chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    make_state_dir(&opts.state_dir)?;
    let mut store = open_store(&opts.state_dir, &opts.store)?;
    let (_, kv) = store.load()?;
    let mut core = Conductor::from_store_as(&kv, opts.replica.as_deref())?;
    core.set_status_ttl(opts.status_ttl);
    warn_if_applied_by_another_version(&core);
    let feed = store.subscribe()?;
    if core.router_named(&opts.server_name).is_some() {
        return Err(ServerError::Tls(format!(
            "server name {} is a router's peering-common-name; the conductor needs its own",
            opts.server_name
        )));
    }
    let placeholder = Arc::new(
        rustls::ServerConfig::builder_with_provider(crate::client::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ServerError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(
                server_chain.clone(),
                PrivateKeyDer::from_pem_slice(own.key_pem.as_bytes())
                    .map_err(|e| ServerError::Tls(e.to_string()))?,
            )
            .map_err(|e| ServerError::Tls(e.to_string()))?,
    );
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            core,
            store,
            crl_pem: String::new(),
            crl_signed: 0,
            // crl_signed 0: the first refresh signs.
            crl_entries: Vec::new(),
            tls: placeholder,
        }),
        changed: Condvar::new(),
        ca,
        root_pem,
        server_chain,
        server_key: Zeroizing::new(own.key_pem.to_string()),
        active: AtomicUsize::new(0),
        status_ttl: opts.status_ttl,
    });
    if let Some(feed) = feed {
        let s = shared.clone();
        std::thread::spawn(move || s.follow(feed));
    }
    {
        let mut g = lock(&shared.inner);
        shared.refresh_crl(&mut g);
        if g.crl_pem.is_empty() {
            return Err(ServerError::Tls("could not sign the first CRL".into()));
        }
    }
    let admin = admin_listener(&opts.state_dir)?;
    let listener = TcpListener::bind(opts.listen).map_err(|source| ServerError::Socket {
        what: format!("listen {}", opts.listen),
        source,
    })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Socket {
            what: "listen".into(),
            source,
        })?;
    let s = shared.clone();
    std::thread::spawn(move || admin_loop(&s, admin));
    on_listening(addr);
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors (EMFILE) and the like: the pending connection
                // stays queued, so retrying at once would spin; wait for some to close.
                log::warn!("accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if shared.active.fetch_add(1, Ordering::SeqCst) >= opts.max_connections {
            shared.active.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("conductor-conn".into())
            .spawn(move || {
                if let Err(e) = connection(&s, stream) {
                    log::debug!("connection: {e}");
                }
                s.active.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            // The closure (and the stream) is dropped: the connection is closed.
            log::warn!("no thread for a connection: {e}");
            shared.active.fetch_sub(1, Ordering::SeqCst);
        }
    }
    Ok(())
}

/// Creates the state directory, mode 0700 (the admin socket and store are the operator's).
fn make_state_dir(dir: &Path) -> Result<(), ServerError> {
    std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|source| ServerError::Read {
            path: dir.display().to_string(),
            source,
        })
}

fn admin_listener(dir: &Path) -> Result<UnixListener, ServerError> {
    let path = socket_path(dir);
    let err = |source| ServerError::Socket {
        what: path.display().to_string(),
        source,
    };
    if UnixStream::connect(&path).is_ok() {
        return Err(err(std::io::Error::other(
            "another conductor is serving this state directory",
        )));
    }
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).map_err(err)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(l)
}

fn admin_loop(shared: &Arc<Shared>, listener: UnixListener) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let s = shared.clone();
        std::thread::spawn(move || {
            let _ = admin_connection(&s, stream);
        });
    }
}

fn admin_connection(shared: &Shared, stream: UnixStream) -> std::io::Result<()> {
    let mut line = String::new();
    BufReader::new(&stream)
        .take_limited(16 * 1024 * 1024)
        .read_line(&mut line)?;
    let line = Zeroizing::new(line);
    let resp = match serde_json::from_str::<AdminRequest>(&line) {
        Ok(req) => {
            let random = random::<32>();
            // An apply's validation and rendering run here, outside the core's lock.
            let prepared = prepare(&req);
            shared
                .with_core(|c| execute_prepared(c, unix_now(), &req, &prepared, random))
                .unwrap_or_else(|e| AdminResponse {
                    ok: false,
                    text: format!("not stored: {e}"),
                    routers: Vec::new(),
                })
        }
        Err(e) => AdminResponse {
            ok: false,
            text: format!("bad admin request: {e}"),
            routers: Vec::new(),
        },
    };
    let mut w = &stream;
    let mut text = serde_json::to_string(&resp).unwrap_or_default();
    text.push('\n');
    w.write_all(text.as_bytes())
}

/// `BufRead::take` with a name that says why.
trait TakeLimited: Sized {
    fn take_limited(self, n: u64) -> std::io::Take<Self>;
}

impl<R: std::io::Read> TakeLimited for R {
    fn take_limited(self, n: u64) -> std::io::Take<Self> {
        self.take(n)
    }
}

type Reply = (u16, &'static str, Vec<u8>);

fn error_reply(status: u16, error: String, reason: Option<crate::Refusal>) -> Reply {
    let body = serde_json::to_vec(&ErrorBody { error, reason }).unwrap_or_default();
    (status, "application/json", body)
}

fn json_reply<T: serde::Serialize>(v: &T) -> Reply {
    match serde_json::to_vec(v) {
        Ok(b) => (200, "application/json", b),
        Err(e) => error_reply(500, e.to_string(), None),
    }
}

fn connection(shared: &Shared, tcp: TcpStream) -> Result<(), http::HttpError> {
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
    let peer = tcp.peer_addr()?.ip();
    let tls = lock(&shared.inner).tls.clone();
    let conn =
        rustls::ServerConnection::new(tls).map_err(|_| http::HttpError::Malformed("TLS set-up"))?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let mut req = match http::read_request(&mut s) {
        Ok(r) => r,
        Err(http::HttpError::TooLarge { limit }) => {
            let (st, ct, b) = error_reply(413, format!("request over {limit} bytes"), None);
            return Ok(http::write_response(&mut s, st, ct, &b)?);
        }
        Err(e) => return Err(e),
    };
    let identity = s
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(leaf_serial_and_name);
    let (status, ct, body) = route(shared, peer, identity, &req);
    // An enrollment body holds a token: wipe it.
    zeroize::Zeroize::zeroize(&mut req.body);
    http::write_response(&mut s, status, ct, &body)?;
    s.conn.send_close_notify();
    let _ = s.flush();
    Ok(())
}

fn route(
    shared: &Shared,
    peer: IpAddr,
    identity: Option<(String, String)>,
    req: &Request,
) -> Reply {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/v1/enroll") => enroll(shared, peer, req),
        ("GET", "/v1/crl") => (
            200,
            "application/pkix-crl",
            lock(&shared.inner).crl_pem.clone().into_bytes(),
        ),
        ("GET", "/v1/config") | ("POST", "/v1/status") => {
            let router = match authenticated(shared, identity) {
                Ok(r) => r,
                Err(reply) => return reply,
            };
            if req.method == "GET" {
                watch(shared, &router, req)
            } else {
                status(shared, &router, req)
            }
        }
        (_, "/v1/enroll" | "/v1/crl" | "/v1/config" | "/v1/status") => {
            error_reply(405, format!("{} not allowed here", req.method), None)
        }
        _ => error_reply(404, format!("no endpoint {}", req.path), None),
    }
}

/// The router named by a current (unrevoked) client certificate.
fn authenticated(shared: &Shared, identity: Option<(String, String)>) -> Result<String, Reply> {
    let Some((serial, name)) = identity else {
        return Err(error_reply(
            401,
            "a router certificate is required (stage 2 is mutual TLS)".into(),
            None,
        ));
    };
    let g = lock(&shared.inner);
    match g.core.router_named(&name) {
        Some(r) if g.core.is_current_cert(r, &serial) => Ok(r.to_owned()),
        Some(r) => Err(error_reply(
            403,
            format!("certificate {serial} of router {r} is revoked or superseded"),
            None,
        )),
        None => Err(error_reply(
            403,
            format!("{name} is no router's peering-common-name"),
            None,
        )),
    }
}

fn enroll(shared: &Shared, peer: IpAddr, req: &Request) -> Reply {
    let body: EnrollRequest = match serde_json::from_slice(&req.body) {
        Ok(b) => b,
        Err(e) => return error_reply(400, format!("enroll request: {e}"), None),
    };
    let serial = random::<16>();
    let result = shared.with_core(|c| c.enroll(unix_now(), peer, &body, &shared.ca, serial));
    match result {
        Ok(Ok(enrolled)) => {
            let crl = lock(&shared.inner).crl_pem.clone();
            json_reply(&EnrollResponse { enrolled, crl })
        }
        Ok(Err(e)) => {
            let status = match e {
                EnrollError::RateLimited { .. } => 429,
                EnrollError::Csr(CsrError::Issue(_)) => 500,
                _ => 403,
            };
            error_reply(status, e.to_string(), Some(e.refusal()))
        }
        Err(e) => error_reply(503, format!("not stored: {e}"), None),
    }
}

fn watch(shared: &Shared, router: &str, req: &Request) -> Reply {
    let after: u64 = match req.param("after").map(str::parse).transpose() {
        Ok(a) => a.unwrap_or(0),
        Err(_) => return error_reply(400, "after: not a revision number".into(), None),
    };
    let wait = req
        .param("wait")
        .and_then(|w| w.parse().ok())
        .map_or(Duration::from_secs(25), Duration::from_secs)
        .min(MAX_WAIT);
    // The router's CRL: a new one (a revocation) ends the poll at once.
    let crl_seen = req.param("crl").map(str::to_owned);
    let deadline = Instant::now() + wait;
    let mut g = lock(&shared.inner);
    g.core.seen(unix_now(), router);
    loop {
        let crl_new = crl_seen
            .as_deref()
            .is_some_and(|f| !g.crl_pem.is_empty() && f != crl_fingerprint(&g.crl_pem));
        match g.core.config(router) {
            None => return error_reply(404, format!("router {router}: no configuration"), None),
            Some(c) if c.revision > after || crl_new => {
                return json_reply(&ConfigResponse {
                    revision: c.revision,
                    yaml: c.yaml.to_string(),
                    crl: crl_new.then(|| g.crl_pem.clone()),
                })
            }
            Some(_) => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (204, "text/plain", Vec::new());
        }
        g = shared
            .changed
            .wait_timeout(g, left)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

fn status(shared: &Shared, router: &str, req: &Request) -> Reply {
    let report: StatusReport = match serde_json::from_slice(&req.body) {
        Ok(r) => r,
        Err(e) => return error_reply(400, format!("status report: {e}"), None),
    };
    match shared.with_core(|c| c.report(unix_now(), router, &report)) {
        Ok(()) => (204, "text/plain", Vec::new()),
        Err(e) => error_reply(503, format!("not stored: {e}"), None),
    }
}

/// Runs an admin command: over the socket if a conductor serves `state_dir`, otherwise on
/// the store file directly.
pub fn admin(state_dir: &Path, req: &AdminRequest) -> Result<AdminResponse, ServerError> {
    admin_with_store(state_dir, &StoreChoice::File, req)
}

/// [`admin`], with the store `store` when no conductor serves `state_dir`.
pub fn admin_with_store(
    state_dir: &Path,
    store: &StoreChoice,
    req: &AdminRequest,
) -> Result<AdminResponse, ServerError> {
    let sock = socket_path(state_dir);
    match UnixStream::connect(&sock) {
        Ok(stream) => {
            let err = |source| ServerError::Socket {
                what: sock.display().to_string(),
                source,
            };
            stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(err)?;
            let mut line = Zeroizing::new(serde_json::to_string(req).unwrap_or_default());
            line.push('\n');
            (&stream).write_all(line.as_bytes()).map_err(err)?;
            let mut answer = String::new();
            BufReader::new(&stream)
                .take_limited(64 * 1024 * 1024)
                .read_line(&mut answer)
                .map_err(err)?;
            serde_json::from_str(&answer)
                .map_err(|e| err(std::io::Error::other(format!("bad answer: {e}"))))
        }
        Err(_) => {
            make_state_dir(state_dir)?;
            let mut store = open_store(state_dir, store)?;
            let (_, kv) = store.load()?;
            let mut core = Conductor::from_store(&kv)?;
            let resp = execute(&mut core, unix_now(), req, random::<32>());
            while let Some(e) = core.poll_event() {
                log::info!("audit {e}");
            }
            store.commit(&core.take_ops())?;
            Ok(resp)
        }
    }
}
