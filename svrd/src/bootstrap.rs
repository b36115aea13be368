//! `svrd --bootstrap FILE`: zero-touch onboarding from a conductor (docs/conductor.md,
//! "Bootstrap file" and "Router side").
//!
//! - **Stage 1** (no certificate in the state directory): generate the router's own key
//!   (Ed25519; written 0600, never sent, zeroized in memory), make a CSR for the
//!   `peering-common-name`, `POST /v1/enroll` with the one-time token (the conductor verified
//!   against the authority root), save the chain, key and CRL.
//! - **Stage 2** (mutual TLS with that certificate): fetch the router's configuration, combine
//!   it with the local node settings into a full svrd configuration (the schema of
//!   `svrd --config`; PKI paths into the state directory), check it as `svrd --check` does,
//!   save it atomically as `<state>/running.yaml` with its revision, and run svrd from it.
//! - **Watch** (one background thread; not the slow path, never a worker): long-poll for a
//!   newer revision, check it, write `running.yaml`, have svrd reload it live
//!   ([`live_reload`], the one seam: `svrctl reload` on its own control socket), report `POST /v1/status` with the revision applied or
//!   the exact error; refresh the CRL periodically. Conductor addresses are tried in order;
//!   with none reachable it retries with a bounded backoff.
//! - **Restart with the conductor down**: a saved certificate and `running.yaml` are enough
//!   to start and forward; the watch keeps retrying in the background.
//!
//! Every step logs one `event=...` line (`enrolled`, `enroll-refused`, `config-applied`,
//! `config-rejected`, `conductor-unreachable`, `conductor-reachable`,
//! `conductor-refused`, `status-reported`, `crl-updated`). No line carries the token or a key.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_norway::{Mapping, Value};
use svr_conductor::client::{Client, ClientError};
use svr_conductor::{EnrollRequest, StatusReport};
use svr_config::Config;
use zeroize::Zeroizing;

use crate::startup::StartupError;

/// The software version reported to the conductor.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// How long one long poll waits for a new revision (the conductor allows up to 60 s).
const WATCH_WAIT: Duration = Duration::from_secs(25);
/// First and largest pause between rounds over the conductor addresses when none answers.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the CRL is fetched again.
const CRL_REFRESH: Duration = Duration::from_secs(600);
/// Connect timeout of the one CRL fetch before starting from saved state: a conductor that
/// does not answer must not hold up forwarding.
const START_CRL_TIMEOUT: Duration = Duration::from_secs(3);
/// The first line of `running.yaml`: the conductor revision it was made from.
const REVISION_HEADER: &str = "# svrd bootstrap: conductor revision ";

/// Why bootstrap mode could not start. One line naming the file, field or conductor.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The bootstrap file cannot be read or parsed.
    #[error("bootstrap {file}: {reason}")]
    File { file: String, reason: String },
    /// A field of the bootstrap file is wrong.
    #[error("bootstrap {file}: {field}: {reason}")]
    Field {
        file: String,
        field: &'static str,
        reason: String,
    },
    /// A file of the state directory cannot be read or written.
    #[error("bootstrap: {path}: {reason}")]
    State { path: String, reason: String },
    /// The conductor refused enrollment (the token, the router, the CSR).
    #[error("bootstrap: conductor {addr}: {what} refused: {reason} ({detail})")]
    Refused {
        addr: SocketAddr,
        what: &'static str,
        reason: String,
        detail: String,
    },
    /// A client could not be set up (root or identity PEM, server name).
    #[error("bootstrap: {0}")]
    Client(ClientError),
    /// The configuration the conductor sent does not fit this router or does not check.
    #[error("bootstrap: configuration revision {revision} from the conductor: {reason}")]
    Config {
        revision: u64,
        reason: Box<RevisionError>,
    },
    /// svrd itself failed to start from `running.yaml`.
    #[error("{0}")]
    Startup(#[from] StartupError),
}

/// Why a revision from the conductor did not become `running.yaml`.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    #[error("not YAML: {0}")]
    NotYaml(serde_norway::Error),
    #[error("not a mapping")]
    NotMapping,
    #[error("it is for router {theirs:?}, this is router {ours:?} (bootstrap `router`)")]
    OtherRouter { theirs: String, ours: String },
    #[error("it has no local-router")]
    NoLocalRouter,
    #[error("it has no authority")]
    NoAuthority,
    #[error("router {router} has no node {node:?} (bootstrap `node`)")]
    NoNode { router: String, node: String },
    #[error(
        "a device-interface drives the management interface {0} (bootstrap \
         `management-interface` must be an interface DPDK does not own)"
    )]
    ManagementInterfaceTaken(String),
    #[error("{0}")]
    Write(serde_norway::Error),
    #[error("{0}")]
    State(BootstrapError),
    #[error("{0}")]
    Check(StartupError),
}

/// `conductor:` of the bootstrap file.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ConductorSettings {
    server_name: String,
    addresses: Vec<SocketAddr>,
    trusted_ca_certificate: PathBuf,
}

/// The bootstrap file, as written (docs/conductor.md).
#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawBootstrap {
    router: String,
    node: String,
    peering_common_name: String,
    conductor: ConductorSettings,
    #[serde(default)]
    enrollment_token: Option<Zeroizing<String>>,
    state_dir: PathBuf,
    #[serde(default)]
    management_interface: Option<String>,
    #[serde(default)]
    local_node_settings: Option<Value>,
}

/// A checked bootstrap file, paths made absolute.
pub struct Bootstrap {
    file: String,
    router: String,
    node: String,
    peering_common_name: String,
    server_name: String,
    addresses: Vec<SocketAddr>,
    root: PathBuf,
    token: Option<Zeroizing<String>>,
    state: StateDir,
    management_interface: Option<String>,
    local_node_settings: Option<Mapping>,
}

impl std::fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrap")
            .field("router", &self.router)
            .field("node", &self.node)
            .field("addresses", &self.addresses)
            .field("state", &self.state.dir)
            .finish_non_exhaustive()
    }
}

/// The files svrd keeps in the state directory.
#[derive(Debug, Clone)]
struct StateDir {
    dir: PathBuf,
    key: PathBuf,
    chain: PathBuf,
    crl: PathBuf,
    root: PathBuf,
    running: PathBuf,
    candidate: PathBuf,
}

impl StateDir {
    fn new(dir: PathBuf) -> StateDir {
        StateDir {
            key: dir.join("key.pem"),
            chain: dir.join("chain.pem"),
            crl: dir.join("crl.pem"),
            root: dir.join("root.pem"),
            running: dir.join("running.yaml"),
            candidate: dir.join("candidate.yaml"),
            dir,
        }
    }
}

fn is_token(t: &str) -> bool {
    t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Bootstrap {
    /// Reads and checks the bootstrap file. Relative paths are relative to its directory.
    pub fn load(path: &Path) -> Result<Bootstrap, BootstrapError> {
        let file = path.display().to_string();
        let text = std::fs::read(path)
            .map(Zeroizing::new)
            .map_err(|e| BootstrapError::File {
                file: file.clone(),
                reason: e.to_string(),
            })?;
        let raw: RawBootstrap =
            serde_norway::from_slice(&text).map_err(|e| BootstrapError::File {
                file: file.clone(),
                reason: e.to_string(),
            })?;
        let field = |field: &'static str, reason: &str| BootstrapError::Field {
            file: file.clone(),
            field,
            reason: reason.into(),
        };
        for (name, value) in [("router", &raw.router), ("node", &raw.node)] {
            if value.is_empty() || value.chars().any(|c| c.is_control() || c == ' ') {
                return Err(field(name, "must be a non-empty name without spaces"));
            }
        }
        if !svr_config::is_dns_name(&raw.peering_common_name) {
            return Err(field(
                "peering-common-name",
                "not a DNS name (as authority.router[].peering-common-name)",
            ));
        }
        if raw.conductor.addresses.is_empty() {
            return Err(field(
                "conductor.addresses",
                "empty: list at least one ADDRESS:PORT",
            ));
        }
        if !server_name_ok(&raw.conductor.server_name) {
            return Err(field(
                "conductor.server-name",
                "not a DNS name or IP address",
            ));
        }
        if let Some(t) = &raw.enrollment_token {
            if !is_token(t) {
                // The value is never echoed: it is a secret.
                return Err(field(
                    "enrollment-token",
                    "not 64 hex digits (copy it as `svr-conductor token create` printed it)",
                ));
            }
        }
        let local_node_settings = match raw.local_node_settings {
            None | Some(Value::Null) => None,
            Some(Value::Mapping(m)) => {
                if m.contains_key("name") {
                    return Err(field(
                        "local-node-settings.name",
                        "the node's name is `node`, not a local setting",
                    ));
                }
                Some(m)
            }
            Some(_) => {
                return Err(field(
                    "local-node-settings",
                    "must be a mapping of node keys (eal, core-map, device-interface, ...)",
                ))
            }
        };
        if let Some(ifname) = &raw.management_interface {
            if ifname.is_empty() || ifname.contains('/') || ifname.starts_with('.') {
                return Err(field("management-interface", "not an interface name"));
            }
            if !Path::new("/sys/class/net").join(ifname).exists() {
                return Err(field(
                    "management-interface",
                    &format!("no interface {ifname:?} in this network namespace"),
                ));
            }
        }
        let base = path.parent().unwrap_or(Path::new(""));
        let absolute = |p: &Path| -> PathBuf {
            let p = if p.is_relative() {
                base.join(p)
            } else {
                p.to_path_buf()
            };
            std::path::absolute(&p).unwrap_or(p)
        };
        Ok(Bootstrap {
            router: raw.router,
            node: raw.node,
            peering_common_name: raw.peering_common_name,
            server_name: raw.conductor.server_name,
            addresses: raw.conductor.addresses,
            root: absolute(&raw.conductor.trusted_ca_certificate),
            token: raw.enrollment_token,
            state: StateDir::new(absolute(&raw.state_dir)),
            management_interface: raw.management_interface,
            local_node_settings,
            file,
        })
    }
}

/// A name the conductor's TLS certificate can carry: a DNS name or an IP address.
fn server_name_ok(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_ok() || svr_config::is_dns_name(name)
}

// ------------------------------------------------------------------------ files

fn state_err(path: &Path, e: impl std::fmt::Display) -> BootstrapError {
    BootstrapError::State {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it (mode `mode`), fsync,
/// rename over `path`, fsync of the directory. A crash leaves the old file or the new one.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), BootstrapError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| state_err(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| state_err(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| state_err(path, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn read_text(path: &Path) -> Result<String, BootstrapError> {
    std::fs::read_to_string(path).map_err(|e| state_err(path, e))
}

/// The revision `running.yaml` was made from (its first line).
fn saved_revision(text: &str) -> Option<u64> {
    text.lines()
        .next()?
        .strip_prefix(REVISION_HEADER)?
        .trim()
        .parse()
        .ok()
}

// ------------------------------------------------------------------------ composing

/// Deep merge: mappings key by key, anything else replaced by `over`.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// The full svrd configuration for this node: the conductor's part for the router, with
/// `local-node`, the local node settings merged over the node's entry, and (zero-trust) the
/// trust anchor, CRL and the node's certificate and key in the state directory. Starts with
/// the revision header.
fn compose(boot: &Bootstrap, revision: u64, rendered: &str) -> Result<String, RevisionError> {
    let mut doc: Value = serde_norway::from_str(rendered).map_err(RevisionError::NotYaml)?;
    let Value::Mapping(top) = &mut doc else {
        return Err(RevisionError::NotMapping);
    };
    match top.get("local-router").and_then(Value::as_str) {
        Some(r) if r == boot.router => {}
        Some(r) => {
            return Err(RevisionError::OtherRouter {
                theirs: r.to_owned(),
                ours: boot.router.clone(),
            })
        }
        None => return Err(RevisionError::NoLocalRouter),
    }
    top.insert("local-node".into(), boot.node.clone().into());
    let authority = top
        .get_mut("authority")
        .and_then(Value::as_mapping_mut)
        .ok_or(RevisionError::NoAuthority)?;
    let esk = authority
        .get("enhanced-security-key-management")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if esk {
        let path = |p: &Path| Value::from(p.display().to_string());
        authority.insert("trusted-ca-certificate".into(), path(&boot.state.root));
        if boot.state.crl.exists() {
            authority.insert("certificate-revocation-list".into(), path(&boot.state.crl));
        }
    }
    let node = authority
        .get_mut("router")
        .and_then(Value::as_sequence_mut)
        .and_then(|rs| {
            rs.iter_mut()
                .find(|r| r.get("name").and_then(Value::as_str) == Some(&boot.router))
        })
        .and_then(|r| r.get_mut("node"))
        .and_then(Value::as_sequence_mut)
        .and_then(|ns| {
            ns.iter_mut()
                .find(|n| n.get("name").and_then(Value::as_str) == Some(&boot.node))
        })
        .ok_or_else(|| RevisionError::NoNode {
            router: boot.router.clone(),
            node: boot.node.clone(),
        })?;
    if let Some(local) = &boot.local_node_settings {
        merge(node, &Value::Mapping(local.clone()));
    }
    if esk {
        if let Some(n) = node.as_mapping_mut() {
            let mut pki = Mapping::new();
            pki.insert(
                "certificate-chain".into(),
                boot.state.chain.display().to_string().into(),
            );
            pki.insert(
                "private-key".into(),
                boot.state.key.display().to_string().into(),
            );
            n.insert("pki".into(), Value::Mapping(pki));
        }
    }
    if let (Some(ifname), Some(devs)) = (
        &boot.management_interface,
        node.get("device-interface").and_then(Value::as_sequence),
    ) {
        let owned = format!("iface={ifname}");
        let taken = devs.iter().any(|d| {
            d.get("vdev")
                .and_then(Value::as_str)
                .is_some_and(|v| v.split(',').any(|a| a == owned))
        });
        if taken {
            return Err(RevisionError::ManagementInterfaceTaken(ifname.clone()));
        }
    }
    let body = serde_norway::to_string(&doc).map_err(RevisionError::Write)?;
    Ok(format!(
        "{REVISION_HEADER}{revision}\n# Written by svrd --bootstrap {}: the conductor's configuration \
         for router {} with this node's local settings. Replaced on each revision.\n{body}",
        boot.file, boot.router
    ))
}

/// Checks a composed configuration with the rules of `svrd --check` (`full`: also the
/// hugepages and vdev drivers, before start; while running, svrd holds those itself) and, if
/// it passes, makes it `running.yaml` atomically.
fn check_and_save(boot: &Bootstrap, text: &str, full: bool) -> Result<(), RevisionError> {
    let st = &boot.state;
    write_atomic(&st.candidate, text.as_bytes(), 0o600).map_err(RevisionError::State)?;
    let checked = if full {
        crate::startup::check(&st.candidate).map(|_| ())
    } else {
        Config::load(&st.candidate)
            .map_err(StartupError::from)
            .and_then(|cfg| {
                cfg.check_host()?;
                if cfg.authority.enhanced_security_key_management {
                    crate::zt::load_credentials(&cfg)?;
                }
                Ok(())
            })
    };
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&st.candidate);
        return Err(RevisionError::Check(e));
    }
    std::fs::rename(&st.candidate, &st.running)
        .map_err(|e| RevisionError::State(state_err(&st.running, e)))
}

// ------------------------------------------------------------------------ conductor

/// What went wrong talking to the conductors.
enum Failure {
    /// No address answered (logged once by [`Conductors::mark`]).
    Unreachable,
    /// One answered and refused: an HTTP status (`status`), or a TLS alert (`status` 0;
    /// e.g. `CertificateRevoked` for a revoked router's stage 2).
    Refused {
        addr: SocketAddr,
        status: u16,
        error: String,
        reason: Option<String>,
    },
}

/// The clients, one per address, in failover order; `current` is the one that answered last.
struct Conductors {
    clients: Vec<Client>,
    current: usize,
    reachable: Option<bool>,
    /// Log nothing (the one quick CRL try at start; the watch logs).
    quiet: bool,
}

impl Conductors {
    fn new(
        boot: &Bootstrap,
        identity: Option<(&str, &str)>,
        timeout: Option<Duration>,
    ) -> Result<Conductors, BootstrapError> {
        let root = read_text(&boot.root).map_err(|_| BootstrapError::Field {
            file: boot.file.clone(),
            field: "conductor.trusted-ca-certificate",
            reason: format!("cannot read {}", boot.root.display()),
        })?;
        let clients = boot
            .addresses
            .iter()
            .map(|a| {
                Client::new(*a, &boot.server_name, &root, identity).map(|c| match timeout {
                    Some(t) => c.with_timeout(t),
                    None => c,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(BootstrapError::Client)?;
        Ok(Conductors {
            clients,
            current: 0,
            reachable: None,
            quiet: false,
        })
    }

    /// Runs `f` against the conductor that answered last, then the others in order; the
    /// first that answers (even with a refusal) is kept for next time.
    fn call<T>(
        &mut self,
        mut f: impl FnMut(&Client) -> Result<T, ClientError>,
    ) -> Result<(SocketAddr, T), Failure> {
        let n = self.clients.len();
        let mut errors = Vec::new();
        for i in 0..n {
            let at = (self.current + i) % n;
            let c = &self.clients[at];
            let addr = c.addr();
            match f(c) {
                Ok(t) => {
                    self.current = at;
                    self.mark(true, "");
                    return Ok((addr, t));
                }
                Err(ClientError::Refused {
                    status,
                    error,
                    reason,
                }) => {
                    self.current = at;
                    self.mark(true, "");
                    let reason = reason.and_then(|r| {
                        serde_json::to_value(r)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                    });
                    return Err(Failure::Refused {
                        addr,
                        status,
                        error,
                        reason,
                    });
                }
                Err(e) => {
                    // ClientError::Http names the address already.
                    let msg = e.to_string();
                    if msg.contains("received fatal alert") {
                        // The conductor answered, with a TLS alert: a refusal.
                        self.current = at;
                        self.mark(true, "");
                        return Err(Failure::Refused {
                            addr,
                            status: 0,
                            error: msg,
                            reason: Some("tls-alert".into()),
                        });
                    }
                    errors.push(msg);
                }
            }
        }
        let all = errors.join("; ");
        self.mark(false, &all);
        Err(Failure::Unreachable)
    }

    /// Logs reachability changes once (not every retry).
    fn mark(&mut self, up: bool, error: &str) {
        if self.reachable != Some(up) && !self.quiet {
            if up {
                let addr = self.clients[self.current].addr();
                log::info!("event=conductor-reachable conductor={addr}");
            } else {
                log::warn!("event=conductor-unreachable error={}", quoted(error));
            }
            self.reachable = Some(up);
        }
    }
}

/// `status=403`, or `tls-alert` for a refusal at the TLS layer.
fn refusal_kind(status: u16) -> String {
    match status {
        0 => "tls-alert".into(),
        s => format!("status={s}"),
    }
}

/// A field value in double quotes (for values with spaces), `"` and `\` escaped.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Bounded exponential backoff between rounds over the addresses.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(BACKOFF_MIN)
    }
    fn wait(&mut self) {
        std::thread::sleep(self.0);
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
    }
    fn reset(&mut self) {
        self.0 = BACKOFF_MIN;
    }
}

/// Stage 1: key, CSR, `POST /v1/enroll`; saves key, chain, CRL and the root.
fn enroll(boot: &Bootstrap) -> Result<(), BootstrapError> {
    let token = boot.token.as_ref().ok_or_else(|| BootstrapError::Field {
        file: boot.file.clone(),
        field: "enrollment-token",
        reason: format!(
            "missing, and {} holds no certificate yet (make one with `svr-conductor token create {}`)",
            boot.state.dir.display(),
            boot.router
        ),
    })?;
    let mut conductors = Conductors::new(boot, None, None)?;
    let key = svr_conductor::client::router_key_and_csr(&boot.peering_common_name)
        .map_err(BootstrapError::Client)?;
    let req = EnrollRequest {
        token: token.clone(),
        router: boot.router.clone(),
        node: boot.node.clone(),
        version: VERSION.into(),
        csr: key.csr_pem.clone(),
    };
    let mut backoff = Backoff::new();
    let (addr, resp) = loop {
        match conductors.call(|c| c.enroll(&req)) {
            Ok(ok) => break ok,
            Err(Failure::Unreachable) => backoff.wait(),
            Err(Failure::Refused {
                addr,
                status,
                error,
                reason,
            }) => {
                // Too many attempts is the only refusal worth waiting out.
                if status == 429 {
                    log::warn!("event=enroll-refused conductor={addr} reason=rate-limited");
                    backoff.wait();
                    continue;
                }
                let reason = reason.unwrap_or_else(|| format!("HTTP {status}"));
                log::error!(
                    "event=enroll-refused conductor={addr} router={} reason={reason} error={}",
                    boot.router,
                    quoted(&error)
                );
                let what = match reason.as_str() {
                    "unknown-token"
                    | "token-reused"
                    | "token-expired"
                    | "token-for-another-router" => "token",
                    "wrong-name" | "bad-csr" | "no-common-name" => "certificate request",
                    _ => "enrollment",
                };
                return Err(BootstrapError::Refused {
                    addr,
                    what,
                    reason,
                    detail: error,
                });
            }
        }
    };
    let st = &boot.state;
    // The key first, the chain last: a chain on disk means enrolled.
    write_atomic(&st.key, key.key_pem.as_bytes(), 0o600)?;
    write_atomic(&st.crl, resp.crl.as_bytes(), 0o644)?;
    write_atomic(&st.chain, resp.enrolled.certificate_chain.as_bytes(), 0o644)?;
    log::info!(
        "event=enrolled router={} node={} conductor={addr} serial={} peering-common-name={}",
        boot.router,
        boot.node,
        resp.enrolled.serial,
        boot.peering_common_name
    );
    Ok(())
}

/// The router's certificate chain and key (PEM) from the state directory.
fn identity(st: &StateDir) -> Result<(String, Zeroizing<String>), BootstrapError> {
    Ok((read_text(&st.chain)?, Zeroizing::new(read_text(&st.key)?)))
}

/// Replaces the saved CRL by `crl` if the authority root verifies it; logs either way.
fn save_crl(st: &StateDir, crl: &str) -> bool {
    let ok = std::fs::read(&st.root)
        .ok()
        .and_then(|root| svr_keymgmt::pki::TrustAnchor::load(&root).ok())
        .is_some_and(|a| a.with_crls(crl.as_bytes()).is_ok());
    if !ok {
        log::warn!("event=crl-rejected reason=\"does not verify against the authority root\"");
        return false;
    }
    if let Err(e) = write_atomic(&st.crl, crl.as_bytes(), 0o644) {
        log::warn!("event=crl-rejected reason={}", quoted(&e.to_string()));
        return false;
    }
    log::info!("event=crl-updated file={}", st.crl.display());
    true
}

// ------------------------------------------------------------------------ the seam

/// What the live reload did with a new `running.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// Running now.
    Applied,
    /// Refused (or svrd could not be asked); svrd runs the previous configuration. The
    /// exact error.
    Failed(String),
}

/// How long svrd's control socket may take to appear (svrd still starting) and to answer.
const RELOAD_CONNECT: Duration = Duration::from_secs(15);
const RELOAD_ANSWER: Duration = Duration::from_secs(30);
/// Largest answer read from the control socket.
const RELOAD_MAX_ANSWER: usize = 64 * 1024;

/// **The seam to svrd's live reload**: `running.yaml` has just been replaced by a checked
/// configuration; ask this svrd to reload it, exactly as `svrctl reload` does (a `reload`
/// request on its own control socket `socket`; the slow-path thread validates with
/// `--check`'s rules, refuses a change that needs a restart, applies the rest), and return
/// its verdict, which is what the router reports to the conductor.
fn live_reload(socket: Option<&Path>) -> Reload {
    use std::io::BufReader;
    use std::os::unix::net::UnixStream;
    use svr_mgmt::proto::{request_line, Response};
    let Some(socket) = socket else {
        return Reload::Failed("no control socket known for this configuration".into());
    };
    let shown = socket.display();
    let deadline = Instant::now() + RELOAD_CONNECT;
    let stream = loop {
        match UnixStream::connect(socket) {
            Ok(s) => break s,
            Err(e) if Instant::now() >= deadline => {
                return Reload::Failed(format!("control socket {shown}: {e}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    };
    let asked = stream
        .set_read_timeout(Some(RELOAD_ANSWER))
        .and_then(|_| stream.set_write_timeout(Some(RELOAD_ANSWER)))
        .and_then(|_| (&stream).write_all(request_line("reload", Default::default()).as_bytes()));
    if let Err(e) = asked {
        return Reload::Failed(format!("control socket {shown}: {e}"));
    }
    let mut r = BufReader::new(&stream);
    let line = match svr_mgmt::framing::read_line(&mut r, RELOAD_MAX_ANSWER) {
        Ok(Some(line)) => line,
        Ok(None) => return Reload::Failed(format!("control socket {shown}: no answer")),
        Err(e) => return Reload::Failed(format!("control socket {shown}: {e}")),
    };
    match serde_json::from_slice::<Response>(&line) {
        Ok(Response { ok: true, .. }) => Reload::Applied,
        Ok(Response { error: Some(e), .. }) => Reload::Failed(e.message),
        Ok(_) | Err(_) => Reload::Failed(format!("control socket {shown}: malformed answer")),
    }
}

/// The control socket of the svrd that runs `running` (as svrd itself computes it).
fn control_socket(running: &Path) -> Option<PathBuf> {
    let cfg = Config::load(running).ok()?;
    let (_, node) = cfg.local();
    Some(node.management.control_socket_path(&node.eal))
}

// ------------------------------------------------------------------------ watch

/// The watch loop's state.
struct Watch {
    boot: Bootstrap,
    conductors: Conductors,
    /// The revision svrd runs.
    applied: u64,
    /// The newest revision fetched (applied, saved, or refused).
    seen: u64,
    /// The error of the newest revision, if it could not be applied.
    error: Option<String>,
    /// A status report is due.
    report: bool,
    last_crl: Instant,
    crl: String,
    /// svrd's control socket (the reload).
    socket: Option<PathBuf>,
}

impl Watch {
    fn run(mut self) {
        let mut backoff = Backoff::new();
        loop {
            match self.round() {
                Ok(()) => backoff.reset(),
                Err(Failure::Unreachable) => backoff.wait(),
                Err(Failure::Refused {
                    addr,
                    status,
                    error,
                    ..
                }) => {
                    log::warn!(
                        "event=conductor-refused conductor={addr} {} error={}",
                        refusal_kind(status),
                        quoted(&error)
                    );
                    backoff.wait();
                }
            }
        }
    }

    /// One round: the status if due, the CRL if due, one long poll.
    fn round(&mut self) -> Result<(), Failure> {
        if self.report {
            let report = StatusReport {
                node: self.boot.node.clone(),
                version: VERSION.into(),
                applied_revision: (self.applied > 0).then_some(self.applied),
                error: self.error.clone(),
            };
            let (addr, ()) = self.conductors.call(|c| c.status(&report))?;
            self.report = false;
            log::info!(
                "event=status-reported conductor={addr} applied={}{}",
                self.applied,
                match &self.error {
                    Some(e) => format!(" error={}", quoted(e)),
                    None => String::new(),
                }
            );
        }
        if self.last_crl.elapsed() >= CRL_REFRESH {
            let (_, crl) = self.conductors.call(|c| c.crl())?;
            self.last_crl = Instant::now();
            if crl != self.crl {
                self.update_crl(&crl);
            }
        }
        let node = self.boot.node.clone();
        let seen = self.seen;
        // Naming our CRL makes a revocation end the poll at once.
        let crl = (!self.crl.is_empty()).then(|| svr_conductor::client::crl_fingerprint(&self.crl));
        let (_, got) = self
            .conductors
            .call(|c| c.watch(&node, seen, WATCH_WAIT, crl.as_deref()))?;
        if let Some(cfg) = got {
            if let Some(new) = cfg.crl.filter(|c| *c != self.crl) {
                self.last_crl = Instant::now();
                self.update_crl(&new);
            }
            if cfg.revision > self.seen {
                self.new_revision(cfg.revision, &cfg.yaml);
            }
        }
        Ok(())
    }

    /// Saves a new CRL and has svrd reload it: a peer it revokes loses its paths at once.
    fn update_crl(&mut self, crl: &str) {
        // Named in the next poll even when refused (logged): the conductor must not answer
        // the same CRL at once again, in a loop.
        self.crl = crl.to_owned();
        if !save_crl(&self.boot.state, crl) {
            return;
        }
        match live_reload(self.socket.as_deref()) {
            Reload::Applied => log::info!("event=crl-applied live=true"),
            Reload::Failed(e) => log::warn!("event=crl-not-applied error={}", quoted(&e)),
        }
    }

    fn new_revision(&mut self, revision: u64, yaml: &str) {
        self.seen = revision;
        self.report = true;
        let checked = compose(&self.boot, revision, yaml)
            .and_then(|text| check_and_save(&self.boot, &text, false));
        if let Err(e) = checked {
            log::warn!(
                "event=config-rejected revision={revision} error={}",
                quoted(&e.to_string())
            );
            self.error = Some(format!("revision {revision}: {e}"));
            return;
        }
        match live_reload(self.socket.as_deref()) {
            Reload::Applied => {
                self.applied = revision;
                self.error = None;
                log::info!("event=config-applied revision={revision} live=true");
            }
            Reload::Failed(e) => {
                log::warn!(
                    "event=config-rejected revision={revision} error={}",
                    quoted(&e)
                );
                self.error = Some(format!("revision {revision}: {e}"));
            }
        }
    }
}

// ------------------------------------------------------------------------ run

/// `svrd --bootstrap FILE`: enroll if needed, get or reuse the configuration, start the
/// watch, and run svrd from `<state>/running.yaml` until SIGINT/SIGTERM.
pub fn run(path: &Path) -> Result<(), BootstrapError> {
    let boot = Bootstrap::load(path)?;
    let st = boot.state.clone();
    std::fs::create_dir_all(&st.dir).map_err(|e| state_err(&st.dir, e))?;
    std::fs::set_permissions(&st.dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| state_err(&st.dir, e))?;
    // The trust anchor travels with the state (the configuration points at the copy).
    let root = std::fs::read(&boot.root).map_err(|e| BootstrapError::Field {
        file: boot.file.clone(),
        field: "conductor.trusted-ca-certificate",
        reason: format!("{}: {e}", boot.root.display()),
    })?;
    if std::fs::read(&st.root).ok().as_deref() != Some(&root[..]) {
        write_atomic(&st.root, &root, 0o644)?;
    }

    if !st.chain.exists() || !st.key.exists() {
        log::info!(
            "event=enrolling router={} node={} conductors={}",
            boot.router,
            boot.node,
            boot.addresses
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        enroll(&boot)?;
    } else {
        log::info!(
            "event=enrolled-before router={} chain={}",
            boot.router,
            st.chain.display()
        );
    }
    let (chain, key) = identity(&st)?;
    let mut conductors = Conductors::new(&boot, Some((&chain, &key)), None)?;

    let applied = match std::fs::read_to_string(&st.running)
        .ok()
        .and_then(|t| saved_revision(&t))
    {
        Some(rev) => {
            log::info!(
                "event=config-loaded revision={rev} file={} source=saved",
                st.running.display()
            );
            // One quick try for a newer CRL, so that a router revoked while this one was
            // down does not peer with it; no answer is not an error.
            let mut quick = Conductors::new(&boot, Some((&chain, &key)), Some(START_CRL_TIMEOUT))?;
            quick.quiet = true;
            if let Ok((_, crl)) = quick.call(|c| c.crl()) {
                if std::fs::read_to_string(&st.crl).ok().as_deref() != Some(crl.as_str()) {
                    save_crl(&st, &crl);
                }
            }
            rev
        }
        None => {
            // No saved configuration: wait for the conductor's.
            let mut backoff = Backoff::new();
            let (addr, cfg) = loop {
                match conductors.call(|c| c.config(&boot.node, 0, Duration::from_secs(5))) {
                    Ok((addr, Some(cfg))) => break (addr, cfg),
                    Ok((_, None)) => {}
                    Err(Failure::Unreachable) => backoff.wait(),
                    Err(Failure::Refused {
                        addr,
                        status,
                        error,
                        ..
                    }) => {
                        log::error!(
                            "event=conductor-refused conductor={addr} {} error={}",
                            refusal_kind(status),
                            quoted(&error)
                        );
                        return Err(BootstrapError::Refused {
                            addr,
                            what: "configuration request",
                            reason: refusal_kind(status),
                            detail: error,
                        });
                    }
                }
            };
            let text = compose(&boot, cfg.revision, &cfg.yaml).map_err(|reason| {
                BootstrapError::Config {
                    revision: cfg.revision,
                    reason: Box::new(reason),
                }
            })?;
            if let Err(reason) = check_and_save(&boot, &text, true) {
                log::error!(
                    "event=config-rejected revision={} conductor={addr} error={}",
                    cfg.revision,
                    quoted(&reason.to_string())
                );
                // Tell the conductor why this router does not come up.
                let report = StatusReport {
                    node: boot.node.clone(),
                    version: VERSION.into(),
                    applied_revision: None,
                    error: Some(format!("revision {}: {reason}", cfg.revision)),
                };
                let _ = conductors.call(|c| c.status(&report));
                return Err(BootstrapError::Config {
                    revision: cfg.revision,
                    reason: Box::new(reason),
                });
            }
            log::info!(
                "event=config-applied revision={} conductor={addr} file={}",
                cfg.revision,
                st.running.display()
            );
            cfg.revision
        }
    };

    let crl = std::fs::read_to_string(&st.crl).unwrap_or_default();
    let watch = Watch {
        boot,
        conductors,
        applied,
        seen: applied,
        error: None,
        report: true,
        last_crl: Instant::now(),
        crl,
        socket: control_socket(&st.running),
    };
    std::thread::Builder::new()
        .name("svrd-conductor".into())
        .spawn(move || watch.run())
        .map_err(|e| BootstrapError::State {
            path: "(watch thread)".into(),
            reason: e.to_string(),
        })?;
    crate::startup::run(&st.running)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(dir: &Path, extra: &str) -> Result<Bootstrap, BootstrapError> {
        std::fs::create_dir_all(dir).unwrap();
        let file = dir.join("bootstrap.yaml");
        std::fs::write(
            &file,
            format!(
                "router: router-a\nnode: node-1\npeering-common-name: router-a.acme.svr\n\
                 conductor:\n  server-name: conductor\n  addresses: [127.0.0.1:8443, 127.0.0.2:8443]\n  \
                 trusted-ca-certificate: root.pem\nstate-dir: state\n{extra}"
            ),
        )
        .unwrap();
        Bootstrap::load(&file)
    }

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("svrd-boot-{name}-{}", std::process::id()))
    }

    #[test]
    fn bootstrap_file_errors_name_the_field() {
        let dir = tmp("fields");
        let b = boot(&dir, "enrollment-token: 00ff\n")
            .unwrap_err()
            .to_string();
        assert!(b.contains("enrollment-token: not 64 hex digits"), "{b}");
        assert!(!b.contains("00ff"), "the token is never echoed: {b}");
        let b = boot(&dir, "colour: blue\n").unwrap_err().to_string();
        assert!(b.contains("unknown field `colour`"), "{b}");
        let b = boot(&dir, "local-node-settings: [1]\n")
            .unwrap_err()
            .to_string();
        assert!(b.contains("local-node-settings: must be a mapping"), "{b}");
        let b = boot(&dir, "management-interface: no-such-if0\n")
            .unwrap_err()
            .to_string();
        assert!(b.contains("management-interface: no interface"), "{b}");
        let ok = boot(&dir, &format!("enrollment-token: {}\n", "ab".repeat(32))).unwrap();
        assert_eq!(ok.addresses.len(), 2);
        assert!(ok.root.is_absolute() && ok.state.dir.ends_with("state"));
        assert!(!format!("{ok:?}").contains("abab"), "Debug hides the token");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn compose_merges_local_settings_and_points_pki_into_the_state_dir() {
        let dir = tmp("compose");
        let b = boot(
            &dir,
            "local-node-settings:\n  eal: {memory-mb: 256}\n  management: {control-socket: /run/x.sock}\n",
        )
        .unwrap();
        let rendered = "local-router: router-a\nauthority:\n  name: acme\n  enhanced-security-key-management: true\n  \
                        trusted-ca-certificate: elsewhere.pem\n  router:\n  - name: router-a\n    node:\n    \
                        - name: node-1\n      eal: {memory-mb: 128, hugepages: false}\n      pki: {certificate-chain: a, private-key: b}\n";
        let out = compose(&b, 7, rendered).unwrap();
        assert_eq!(saved_revision(&out), Some(7));
        let v: Value = serde_norway::from_str(&out).unwrap();
        assert_eq!(v["local-node"].as_str(), Some("node-1"));
        let node = &v["authority"]["router"][0]["node"][0];
        assert_eq!(node["eal"]["memory-mb"].as_u64(), Some(256));
        assert_eq!(node["eal"]["hugepages"].as_bool(), Some(false));
        assert_eq!(
            node["management"]["control-socket"].as_str(),
            Some("/run/x.sock")
        );
        assert!(node["pki"]["private-key"]
            .as_str()
            .unwrap()
            .ends_with("state/key.pem"));
        assert!(v["authority"]["trusted-ca-certificate"]
            .as_str()
            .unwrap()
            .ends_with("state/root.pem"));
        // Another router's part, or no node of that name, is refused.
        let e = compose(
            &b,
            7,
            &rendered.replace("local-router: router-a", "local-router: x"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("for router \"x\""), "{e}");
        let e = compose(&b, 7, &rendered.replace("node-1", "node-2")).unwrap_err();
        assert!(e.to_string().contains("no node \"node-1\""), "{e}");
        assert!(compose(&b, 7, "[").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn atomic_write_is_private_when_asked() {
        let dir = tmp("atomic");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("key.pem");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let _ = std::fs::remove_dir_all(dir);
    }
}
