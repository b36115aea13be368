//! [`EtcdStore`]: the conductor's [`Store`] in an etcd v3 cluster, shared by several
//! conductor replicas (docs/conductor.md, "etcd").
//!
//! Keys are the store's keys under `/svr/v1/<authority>/`. The rest of the conductor is
//! synchronous: the store runs the async `etcd-client` on a private tokio runtime (one
//! worker thread) and blocks on each request.
//!
//! - **Load**: one range read of the prefix; its header revision is the store revision.
//! - **Commit**: one txn. For every key written, a compare that the key is as this
//!   process last saw it (`mod_revision == seen`, or `version == 0` for a key it saw
//!   absent), then the puts and deletes. A compare that fails means another replica wrote
//!   that key first: [`StoreError::Conflict`], nothing written; the server reloads and
//!   retries. Keys nobody else wrote do not conflict, so replicas serving different routers
//!   do not get in each other's way.
//! - **Leases**: [`Op::PutExpiring`] puts with a lease of `ttl + 1` s; one lease is granted
//!   per TTL and reused for a second (so a thousand status reports a second cost one grant
//!   per TTL and second, and a key outlives its TTL by at most 2 s). etcd deletes the key
//!   when the lease expires, and every replica's watch sees the delete.
//! - **Watch**: [`Store::subscribe`] watches the prefix from the revision after the last
//!   load, resuming from the revision after the last one received whenever the stream
//!   breaks (a member died: the client's channel balances over the other endpoints), so no
//!   change is missed or seen twice; progress notifications move the resume point on
//!   while nothing changes. If etcd compacted the history it needs, the feed says
//!   [`Feed::Reload`].
//! - **Failover**: the client balances over every endpoint given; a request that fails on
//!   transport, times out ([`CALL_TIMEOUT`]) or finds no leader is tried again, at least
//!   [`ATTEMPTS`] times in all and for up to [`RETRY_BUDGET`] (a leader election after the
//!   leader died can take seconds on a loaded machine).
//!   A retried commit whose first try did succeed fails its compares; the store then reads
//!   its keys back and, if they hold exactly what it wrote, reports the commit done.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp,
    WatchOptions,
};

use etcd_client::{Certificate, Identity, TlsOptions};

use crate::etcd_access::EtcdAccess;
use crate::store::{Change, Feed, Op, Store, StoreError};

/// Time allowed for one etcd request.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Tries of one request (transport errors and timeouts only).
pub const ATTEMPTS: u32 = 4;
/// A request is tried again while its first try is younger than this.
pub const RETRY_BUDGET: Duration = Duration::from_secs(10);
/// Pause between tries, and before re-opening a broken watch.
const RETRY_PAUSE: Duration = Duration::from_millis(300);
/// A granted lease is reused for puts within this long.
const LEASE_REUSE: Duration = Duration::from_secs(1);
/// Largest answer accepted (a range read of every key).
const MAX_MESSAGE: usize = 256 * 1024 * 1024;
/// Largest commit checked for having landed already when its compares fail.
const ECHO_CHECK_MAX: usize = 16;

/// The conductor's store in etcd (see the module documentation).
pub struct EtcdStore {
    rt: tokio::runtime::Runtime,
    client: Client,
    /// Which members the client's balancer holds (a dead one is taken out, see [`Health`]).
    health: std::sync::Mutex<Health>,
    endpoints: String,
    /// Client TLS is on (`--etcd-cacert`).
    tls: bool,
    /// An etcd user is set (`--etcd-user`).
    user: bool,
    prefix: String,
    /// The `mod_revision` of every key this process knows to exist.
    known: HashMap<String, i64>,
    /// The revision of the last load: feed changes at or below it are in the loaded state.
    floor: i64,
    /// Granted leases by TTL: when, and the lease id.
    leases: HashMap<u64, (Instant, i64)>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("floor", &self.floor)
            .finish_non_exhaustive()
    }
}

/// The key prefix of an authority's store.
pub fn prefix(authority: &str) -> String {
    format!("/svr/v1/{authority}/")
}

/// The client's error with the causes its `Display` leaves out (a transport error says
/// only "transport error"; the reason, e.g. a refused certificate, is in its sources).
pub fn describe(e: &etcd_client::Error) -> String {
    // A status's own Display prints its source with Debug; message and code read better.
    let (mut text, mut next): (String, Option<&(dyn std::error::Error + 'static)>) = match e {
        etcd_client::Error::TransportError(t) => (e.to_string(), std::error::Error::source(t)),
        etcd_client::Error::GRpcStatus(s) => (
            format!("{} (gRPC {:?})", s.message(), s.code()),
            std::error::Error::source(s),
        ),
        _ => (e.to_string(), None),
    };
    while let Some(cause) = next {
        let part = cause.to_string();
        // Layers often repeat their inner error's words; show each once.
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = cause.source();
    }
    text
}

/// A member serving TLS drops a plain-gRPC client without a reason: after every try failed
/// on transport without TLS, the error says TLS may be the cause.
fn hint_tls(e: StoreError, tls: bool) -> StoreError {
    match e {
        StoreError::Etcd {
            endpoints,
            what,
            source,
        } if !tls => StoreError::EtcdPlain {
            endpoints,
            what,
            source,
        },
        e => e,
    }
}

/// How long a TCP connect to a member may take in a health probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
/// A member taken out of the balancer is probed again after this long.
const PROBE_AGAIN: Duration = Duration::from_secs(2);

fn lock_health(h: &std::sync::Mutex<Health>) -> std::sync::MutexGuard<'_, Health> {
    h.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The members' URLs and which of them are out of the client's balancer, by a TCP connect
/// probe (no TLS or etcd request: it only tells a member that is down or unreachable).
#[derive(Debug)]
struct Health {
    urls: Vec<String>,
    /// Taken out, with the time of the last probe.
    out: HashMap<String, Instant>,
    /// [`PROBE_AGAIN`].
    probe_again: Duration,
}

impl Health {
    fn new(endpoints: &[String], tls: bool) -> Health {
        let scheme = if tls { "https://" } else { "http://" };
        let urls = endpoints
            .iter()
            .map(|e| {
                if e.contains("://") {
                    e.clone()
                } else {
                    format!("{scheme}{e}")
                }
            })
            .collect();
        Health {
            urls,
            out: HashMap::new(),
            probe_again: PROBE_AGAIN,
        }
    }

    fn reachable(url: &str) -> bool {
        use std::net::ToSocketAddrs;
        let host_port = url.split("://").nth(1).unwrap_or(url).trim_end_matches('/');
        let Ok(addrs) = host_port.to_socket_addrs() else {
            return false;
        };
        addrs
            .into_iter()
            .any(|a| std::net::TcpStream::connect_timeout(&a, PROBE_TIMEOUT).is_ok())
    }

    /// The URLs to connect with: the reachable ones (all when none is).
    fn start(&mut self) -> Vec<String> {
        let now = Instant::now();
        let up: Vec<String> = self
            .urls
            .iter()
            .filter(|u| Health::reachable(u))
            .cloned()
            .collect();
        if up.is_empty() {
            return self.urls.clone();
        }
        for u in &self.urls {
            if !up.contains(u) {
                self.out.insert(u.clone(), now);
            }
        }
        up
    }

    /// Members in the balancer that refuse connections, now taken out; one is always kept.
    fn prune(&mut self) -> Vec<String> {
        let now = Instant::now();
        let mut dead = Vec::new();
        for u in &self.urls {
            if !self.out.contains_key(u) && !Health::reachable(u) {
                dead.push(u.clone());
            }
        }
        if dead.len() + self.out.len() >= self.urls.len() {
            return Vec::new();
        }
        for u in &dead {
            self.out.insert(u.clone(), now);
        }
        dead
    }

    /// Members taken out that accept connections again, now back in.
    fn restore(&mut self) -> Vec<String> {
        let now = Instant::now();
        let due: Vec<String> = self
            .out
            .iter()
            .filter(|(_, at)| now.duration_since(**at) >= self.probe_again)
            .map(|(u, _)| u.clone())
            .collect();
        let mut back = Vec::new();
        for u in due {
            if Health::reachable(&u) {
                self.out.remove(&u);
                back.push(u);
            } else {
                self.out.insert(u, now);
            }
        }
        back
    }
}

/// Worth another try: the member or the connection failed, not the request.
fn transient(e: &etcd_client::Error) -> bool {
    use tonic::Code;
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(s) => matches!(
            s.code(),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
        ),
        _ => false,
    }
}

impl EtcdStore {
    /// A store for `authority` in the etcd cluster at `endpoints` (`host:port` or
    /// `http://host:port`), plain gRPC, no user. Connects lazily: an unreachable cluster
    /// fails the first request.
    pub fn connect(endpoints: &[String], authority: &str) -> Result<EtcdStore, StoreError> {
        EtcdStore::connect_with(endpoints, authority, &EtcdAccess::default())
    }

    /// [`EtcdStore::connect`] with client TLS and an etcd user as `access` says. With TLS
    /// the endpoints are `host:port` or `https://host:port`. With a user the client
    /// authenticates at once (tried like a request), so a refused password fails here.
    pub fn connect_with(
        endpoints: &[String],
        authority: &str,
        access: &EtcdAccess,
    ) -> Result<EtcdStore, StoreError> {
        if endpoints.is_empty() {
            return Err(StoreError::Config("etcd: no endpoints"));
        }
        if authority.is_empty()
            || !authority
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(StoreError::Config(
                "etcd: the authority name must be letters, digits, '-', '_' or '.'",
            ));
        }
        // A scheme that contradicts the TLS setting would fail later, less clearly.
        for e in endpoints {
            if access.tls.is_some() && e.starts_with("http://") {
                return Err(StoreError::Config(
                    "etcd: an http:// endpoint with --etcd-cacert (TLS); give host:port or https://",
                ));
            }
            if access.tls.is_none() && e.starts_with("https://") {
                return Err(StoreError::Config(
                    "etcd: an https:// endpoint needs --etcd-cacert (the CA of the members' certificates)",
                ));
            }
        }
        let joined = endpoints.join(",");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("etcd-client")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io {
                path: "tokio runtime".into(),
                source,
            })?;
        let mut options = ConnectOptions::new()
            .with_connect_timeout(CALL_TIMEOUT)
            .with_keep_alive(Duration::from_secs(2), CALL_TIMEOUT)
            .with_keep_alive_while_idle(true)
            // A member cut off from the leader answers "no leader" at once (then the next
            // try goes elsewhere) instead of holding the request until the timeout.
            .with_require_leader(true);
        if let Some(tls) = &access.tls {
            let mut config = TlsOptions::new().ca_certificate(Certificate::from_pem(&tls.ca_pem));
            if let Some((cert, key)) = &tls.identity {
                // tonic keeps its own copy of the key for the connector; ours stays zeroized.
                config = config.identity(Identity::from_pem(cert, key.as_slice()));
            }
            options = options.with_tls(config);
        }
        if let Some(user) = &access.user {
            // etcd's simple tokens expire when idle (--auth-token-ttl): authenticate again.
            options = options
                .with_user(user.name.clone(), user.password.as_str())
                .with_auto_token_refresh(true);
        }
        let mut health = Health::new(endpoints, access.tls.is_some());
        let client = EtcdStore::first_connect(&rt, &health.start(), options, &joined, access)?;
        Ok(EtcdStore {
            rt,
            client,
            health: std::sync::Mutex::new(health),
            endpoints: joined,
            tls: access.tls.is_some(),
            user: access.user.is_some(),
            prefix: prefix(authority),
            known: HashMap::new(),
            floor: 0,
            leases: HashMap::new(),
        })
    }

    /// `Client::connect`, which with a user authenticates: bounded by [`CALL_TIMEOUT`] and
    /// tried [`ATTEMPTS`] times on transport failures, like a request.
    fn first_connect(
        rt: &tokio::runtime::Runtime,
        endpoints: &[String],
        options: ConnectOptions,
        joined: &str,
        access: &EtcdAccess,
    ) -> Result<Client, StoreError> {
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(RETRY_PAUSE);
            }
            let fut = Client::connect(endpoints, Some(options.clone()));
            let error = match rt.block_on(async { tokio::time::timeout(CALL_TIMEOUT, fut).await }) {
                Ok(Ok(client)) => return Ok(client),
                Ok(Err(source)) => {
                    // With a user, the only request connect makes is Authenticate.
                    let refused =
                        matches!(source, etcd_client::Error::GRpcStatus(_)) && !transient(&source);
                    match &access.user {
                        Some(user) if refused => {
                            return Err(StoreError::EtcdAuth {
                                endpoints: joined.to_owned(),
                                user: user.name.clone(),
                                source,
                            })
                        }
                        _ if !transient(&source) => {
                            return Err(StoreError::Etcd {
                                endpoints: joined.to_owned(),
                                what: "connect",
                                source,
                            })
                        }
                        _ => {}
                    }
                    log::warn!("etcd connect (try {}): {}", attempt + 1, describe(&source));
                    StoreError::Etcd {
                        endpoints: joined.to_owned(),
                        what: "connect",
                        source,
                    }
                }
                Err(_) => {
                    log::warn!("etcd connect (try {}): timed out", attempt + 1);
                    StoreError::Timeout {
                        endpoints: joined.to_owned(),
                        what: "connect",
                        seconds: CALL_TIMEOUT.as_secs(),
                    }
                }
            };
            last = Some(error);
        }
        let last = last.unwrap_or(StoreError::Config("etcd: no attempt made"));
        Err(hint_tls(last, access.tls.is_some()))
    }

    /// Runs one request with [`CALL_TIMEOUT`]; on transient failures again, at least
    /// [`ATTEMPTS`] times and while [`RETRY_BUDGET`] lasts.
    fn call<T, F, Fut>(&self, what: &'static str, f: F) -> Result<T, StoreError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let mut last = None;
        self.restore_members();
        let start = Instant::now();
        for attempt in 0.. {
            if attempt >= ATTEMPTS && start.elapsed() >= RETRY_BUDGET {
                break;
            }
            if attempt > 0 {
                std::thread::sleep(RETRY_PAUSE);
            }
            let fut = f(self.client.clone());
            // The timer is made inside the runtime (it needs its clock).
            match self
                .rt
                .block_on(async { tokio::time::timeout(CALL_TIMEOUT, fut).await })
            {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(source)) if transient(&source) => {
                    log::warn!("etcd {what} (try {}): {}", attempt + 1, describe(&source));
                    self.prune_members();
                    last = Some(StoreError::Etcd {
                        endpoints: self.endpoints.clone(),
                        what,
                        source,
                    });
                }
                Ok(Err(source)) => {
                    return Err(StoreError::Etcd {
                        endpoints: self.endpoints.clone(),
                        what,
                        source,
                    })
                }
                Err(_) => {
                    log::warn!("etcd {what} (try {}): timed out", attempt + 1);
                    last = Some(StoreError::Timeout {
                        endpoints: self.endpoints.clone(),
                        what,
                        seconds: CALL_TIMEOUT.as_secs(),
                    });
                }
            }
        }
        let last = last.unwrap_or(StoreError::Config("etcd: no attempt made"));
        Err(hint_tls(last, self.tls))
    }

    /// Takes members that refuse connections out of the client's balancer: it would
    /// otherwise keep sending a share of the requests to a dead member (tonic's balancer
    /// does not route around a failed endpoint), and with token refreshes a request is
    /// several calls, each of which may land there.
    fn prune_members(&self) {
        let mut h = lock_health(&self.health);
        for url in h.prune() {
            log::warn!("etcd member {url} refuses connections: taken out of the balancer");
            if let Err(e) = self.rt.block_on(self.client.remove_endpoint(&url)) {
                log::warn!("etcd: removing {url}: {}", describe(&e));
            }
        }
    }

    /// Puts members taken out back once they accept connections again.
    fn restore_members(&self) {
        let mut h = lock_health(&self.health);
        for url in h.restore() {
            log::info!("etcd member {url} accepts connections again: back in the balancer");
            if let Err(e) = self.rt.block_on(self.client.add_endpoint(&url)) {
                log::warn!("etcd: adding {url}: {}", describe(&e));
            }
        }
    }

    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            path: format!("etcd {}{}", self.endpoints, self.prefix),
            reason,
        }
    }

    /// A lease for a put that should live `ttl` seconds.
    fn lease(&mut self, ttl: u64) -> Result<i64, StoreError> {
        if let Some((at, id)) = self.leases.get(&ttl) {
            if at.elapsed() < LEASE_REUSE {
                return Ok(*id);
            }
        }
        let secs = i64::try_from(ttl.saturating_add(1)).unwrap_or(i64::MAX);
        let resp = self.call("lease grant", |mut c| async move {
            c.lease_grant(secs, None).await
        })?;
        self.leases.insert(ttl, (Instant::now(), resp.id()));
        Ok(resp.id())
    }
}

impl EtcdStore {
    /// After failed compares: whether the store already holds exactly these writes (a try
    /// that succeeded but whose answer was lost, then tried again). If so, notes the keys'
    /// revisions and returns the newest: the commit is done. Checked for small commits
    /// only ([`ECHO_CHECK_MAX`] keys); a larger one is left a conflict.
    fn already_written(&mut self, ops: &[&Op]) -> Option<u64> {
        if ops.len() > ECHO_CHECK_MAX {
            return None;
        }
        let mut seen = Vec::with_capacity(ops.len());
        for op in ops {
            let full = format!("{}{}", self.prefix, op.key());
            let resp = self
                .call("get", |mut c| {
                    let full = full.clone();
                    async move { c.get(full, None).await }
                })
                .ok()?;
            let kv = resp.kvs().first();
            match (op, kv) {
                (Op::Put { value, .. } | Op::PutExpiring { value, .. }, Some(kv))
                    if kv.value() == value.as_bytes() =>
                {
                    seen.push((op.key().to_owned(), Some(kv.mod_revision())));
                }
                (Op::Delete { .. }, None) => seen.push((op.key().to_owned(), None)),
                _ => return None,
            }
        }
        let mut newest = self.floor;
        for (key, rev) in seen {
            match rev {
                Some(rev) => {
                    newest = newest.max(rev);
                    self.known.insert(key, rev);
                }
                None => {
                    self.known.remove(&key);
                }
            }
        }
        Some(u64::try_from(newest).unwrap_or(0))
    }
}

impl Store for EtcdStore {
    fn load(&mut self) -> Result<(u64, BTreeMap<String, String>), StoreError> {
        let prefix = self.prefix.clone();
        let resp = self.call("range", |c| {
            let prefix = prefix.clone();
            async move {
                c.kv_client()
                    .max_decoding_message_size(MAX_MESSAGE)
                    .get(prefix, Some(GetOptions::new().with_prefix()))
                    .await
            }
        })?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let mut known = HashMap::new();
        let mut values = BTreeMap::new();
        for kv in resp.kvs() {
            let key = kv
                .key_str()
                .ok()
                .and_then(|k| k.strip_prefix(&self.prefix))
                .ok_or_else(|| self.corrupt("a key that is not UTF-8 under the prefix".into()))?;
            let value = kv
                .value_str()
                .map_err(|_| self.corrupt(format!("key {key}: value not UTF-8")))?;
            known.insert(key.to_owned(), kv.mod_revision());
            values.insert(key.to_owned(), value.to_owned());
        }
        self.known = known;
        self.floor = revision;
        Ok((u64::try_from(revision).unwrap_or(0), values))
    }

    fn commit(&mut self, ops: &[Op]) -> Result<u64, StoreError> {
        // One op per key (etcd refuses a txn that writes a key twice): the last one wins,
        // as it would applied in order.
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            last.insert(op.key(), i);
        }
        let mut compares = Vec::new();
        let mut writes = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            if last.get(op.key()) != Some(&i) {
                continue;
            }
            let full = format!("{}{}", self.prefix, op.key());
            compares.push(match self.known.get(op.key()) {
                Some(rev) => Compare::mod_revision(full.clone(), CompareOp::Equal, *rev),
                None => Compare::version(full.clone(), CompareOp::Equal, 0),
            });
            writes.push(match op {
                Op::Put { value, .. } => TxnOp::put(full, value.clone(), None),
                Op::PutExpiring { value, ttl, .. } => {
                    let lease = self.lease(*ttl)?;
                    TxnOp::put(
                        full,
                        value.clone(),
                        Some(PutOptions::new().with_lease(lease)),
                    )
                }
                Op::Delete { .. } => TxnOp::delete(full, None),
            });
        }
        if writes.is_empty() {
            return Ok(u64::try_from(self.floor).unwrap_or(0));
        }
        let result = self.call("txn", |mut c| {
            let txn = Txn::new().when(compares.clone()).and_then(writes.clone());
            async move { c.txn(txn).await }
        });
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                // A lease may have gone (expired, revoked): grant afresh next time.
                self.leases.clear();
                return Err(e);
            }
        };
        let revision = resp.header().map_or(0, |h| h.revision());
        if !resp.succeeded() {
            let finals: Vec<&Op> = ops
                .iter()
                .enumerate()
                .filter(|(i, op)| last.get(op.key()) == Some(i))
                .map(|(_, op)| op)
                .collect();
            if let Some(rev) = self.already_written(&finals) {
                return Ok(rev);
            }
            return Err(StoreError::Conflict {
                path: format!("etcd {}{}", self.endpoints, self.prefix),
                expected: u64::try_from(self.floor).unwrap_or(0),
                found: u64::try_from(revision).unwrap_or(0),
            });
        }
        for (i, op) in ops.iter().enumerate() {
            if last.get(op.key()) != Some(&i) {
                continue;
            }
            match op {
                Op::Put { key, .. } | Op::PutExpiring { key, .. } => {
                    self.known.insert(key.clone(), revision);
                }
                Op::Delete { key } => {
                    self.known.remove(key);
                }
            }
        }
        Ok(u64::try_from(revision).unwrap_or(0))
    }

    fn subscribe(&mut self) -> Result<Option<mpsc::Receiver<Feed>>, StoreError> {
        let (tx, rx) = mpsc::channel();
        let watch = Watch {
            client: self.client.clone(),
            user: self.user,
            prefix: self.prefix.clone(),
            next: self.floor.saturating_add(1),
            tx,
        };
        self.rt.spawn(watch.run());
        Ok(Some(rx))
    }

    fn absorb(&mut self, revision: u64, changes: Vec<Change>) -> Vec<Change> {
        if i64::try_from(revision).map_or(true, |r| r <= self.floor) {
            return Vec::new();
        }
        changes
            .into_iter()
            .filter(|c| {
                let rev = i64::try_from(c.mod_revision).unwrap_or(i64::MAX);
                if self.known.get(&c.key).is_some_and(|seen| *seen >= rev) {
                    // Our own write, or one already loaded.
                    return false;
                }
                match c.value {
                    Some(_) => {
                        self.known.insert(c.key.clone(), rev);
                    }
                    None => {
                        self.known.remove(&c.key);
                    }
                }
                true
            })
            .collect()
    }
}

/// The watch of the prefix, run on the store's runtime until the feed's receiver is gone.
struct Watch {
    client: Client,
    /// An etcd user is set: its token may have expired by the time the stream breaks.
    user: bool,
    prefix: String,
    /// The revision to resume from.
    next: i64,
    tx: mpsc::Sender<Feed>,
}

impl Watch {
    async fn run(mut self) {
        loop {
            match self.follow().await {
                Stop::Gone => return,
                Stop::Broken(e) => {
                    log::warn!("etcd watch from revision {}: {e}; resuming", self.next)
                }
            }
            tokio::time::sleep(RETRY_PAUSE).await;
            // etcd checks the token only when a watch is created, and cancels it (no status
            // the client would refresh on) if the token expired: authenticate first.
            if self.user {
                if let Err(e) = self.client.refresh_token().await {
                    log::warn!("etcd watch: authenticating again: {}", describe(&e));
                }
            }
        }
    }

    /// Follows one watch stream until it breaks (then resume from `self.next`) or the
    /// feed's receiver is gone.
    async fn follow(&mut self) -> Stop {
        match self.stream().await {
            Ok(never) => match never {},
            Err(stop) => stop,
        }
    }

    async fn stream(&mut self) -> Result<std::convert::Infallible, Stop> {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(self.next)
            .with_progress_notify();
        let mut watch = self
            .client
            .watch_client()
            .max_decoding_message_size(MAX_MESSAGE)
            .watch(self.prefix.clone(), Some(options))
            .await
            .map_err(|e| Stop::Broken(describe(&e)))?;
        loop {
            let Some(resp) = watch
                .message()
                .await
                .map_err(|e| Stop::Broken(describe(&e)))?
            else {
                return Err(Stop::Broken("stream closed".into()));
            };
            if resp.compact_revision() > 0 {
                // The history from `next` is gone: the reader reloads; go on from the
                // oldest revision kept (the reload's floor drops what it already has).
                self.next = resp.compact_revision();
                if self.tx.send(Feed::Reload).is_err() {
                    return Err(Stop::Gone);
                }
                return Err(Stop::Broken(format!(
                    "compacted at {}",
                    resp.compact_revision()
                )));
            }
            if resp.canceled() {
                return Err(Stop::Broken(format!("canceled: {}", resp.cancel_reason())));
            }
            if resp.events().is_empty() {
                if !resp.created() {
                    // Progress: every change up to the header revision was sent.
                    if let Some(h) = resp.header() {
                        self.next = self.next.max(h.revision().saturating_add(1));
                    }
                }
                continue;
            }
            let mut batch: Vec<Change> = Vec::new();
            let mut batch_rev = 0;
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let rev = kv.mod_revision();
                if rev != batch_rev && !batch.is_empty() {
                    self.send(batch_rev, std::mem::take(&mut batch))?;
                }
                batch_rev = rev;
                let key = match kv.key_str().ok().and_then(|k| k.strip_prefix(&self.prefix)) {
                    Some(k) => k.to_owned(),
                    None => continue,
                };
                let value = match ev.event_type() {
                    EventType::Put => match kv.value_str() {
                        Ok(v) => Some(v.to_owned()),
                        Err(_) => {
                            log::error!("etcd key {key}: value not UTF-8; ignored");
                            continue;
                        }
                    },
                    EventType::Delete => None,
                };
                batch.push(Change {
                    key,
                    value,
                    mod_revision: u64::try_from(rev).unwrap_or(0),
                });
            }
            if !batch.is_empty() {
                self.send(batch_rev, batch)?;
            }
        }
    }

    fn send(&mut self, revision: i64, changes: Vec<Change>) -> Result<(), Stop> {
        self.next = self.next.max(revision.saturating_add(1));
        let feed = Feed::Changes {
            revision: u64::try_from(revision).unwrap_or(0),
            changes,
        };
        // The receiver gone: the conductor is stopping; end the watch quietly.
        self.tx.send(feed).map_err(|_| Stop::Gone)
    }
}

/// Why a watch stream ended.
enum Stop {
    /// The feed's receiver is gone.
    Gone,
    /// The stream broke: resume.
    Broken(String),
}

#[cfg(test)]
mod health_tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_member_that_refuses_connections_is_taken_out_and_put_back() {
        let live = TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        let eps = [
            live.local_addr().unwrap().to_string(),
            dead_addr.to_string(),
        ];
        let mut h = Health::new(&eps, true);
        h.probe_again = Duration::ZERO;
        let dead_url = format!("https://{dead_addr}");
        assert_eq!(h.start(), vec![format!("https://{}", eps[0])]);
        assert_eq!(h.restore(), Vec::<String>::new());
        // Back once it listens again; taken out again when it stops.
        let back = TcpListener::bind(dead_addr).unwrap();
        assert_eq!(h.restore(), vec![dead_url.clone()]);
        drop(back);
        assert_eq!(h.prune(), vec![dead_url]);
        // The last member is never taken out, reachable or not.
        drop(live);
        assert_eq!(h.prune(), Vec::<String>::new());
    }
}
