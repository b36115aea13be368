//! The conductor's sans-IO core: configuration revisions, router status, tokens,
//! enrollment and revocation. No sockets, no files, no clock, no randomness: the caller
//! passes `now` (unix seconds) and random bytes, commits [`Conductor::take_ops`] to a
//! [`Store`](crate::store::Store) before answering, and logs [`Conductor::poll_event`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::document::{Document, DocumentError, RouterChange};
use crate::enroll::{
    token_id, CertificateAuthority, CsrError, IssuedToken, RateLimit, TokenSecret, TokenState,
};
use crate::event::{Event, Refusal};
use crate::store::Op;
use crate::version;

/// Audit events kept in the store (older ones are deleted).
pub const AUDIT_KEEP: u64 = 10_000;
/// Longest token lifetime (seconds).
pub const TOKEN_TTL_MAX: u64 = 30 * 24 * 3600;
/// The shortest token lifetime, seconds (automation hands a token over at once).
pub const TOKEN_TTL_MIN: u64 = 5;
/// Lifetime of an issued router certificate (days).
pub const CERT_DAYS: u32 = 365;
/// A router not heard from for this long is shown `stale` (seconds).
pub const STALE_AFTER: u64 = 90;
/// Default lifetime of a stored status report (seconds): 3 × a 10 s report interval. In etcd
/// it is a lease: a router silent for longer loses its status (see [`Conductor::routers`]).
pub const STATUS_TTL: u64 = 30;
/// A token stays stored this long after its expiry, so reuse is reported as reuse.
const TOKEN_KEEP: u64 = 86_400;

/// A router's configuration as served: the revision its part last changed in, and the text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouterConfig {
    /// The configuration revision in which this router's part last changed.
    pub revision: u64,
    /// The svrd configuration (YAML with `local-router`).
    pub yaml: Arc<str>,
}

/// What a router last reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouterStatus {
    /// Its node.
    pub node: Option<String>,
    /// Its software version.
    pub version: Option<String>,
    /// The revision it runs.
    pub applied: Option<u64>,
    /// The exact error of the last revision it could not apply.
    pub error: Option<String>,
    /// Last contact (unix seconds).
    pub last_seen: Option<u64>,
}

/// A certificate issued to a router (public facts only).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertRecord {
    /// Serial number, hex.
    pub serial: String,
    /// notAfter, unix seconds.
    pub not_after: u64,
    /// When it was revoked (unix seconds), if it was.
    #[serde(default)]
    pub revoked: Option<u64>,
}

/// A new configuration revision and what it changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revision {
    /// The revision number (the previous one + 1).
    pub number: u64,
    /// What changed, per router (unchanged routers not listed).
    pub changes: Vec<RouterChange>,
}

/// Why an apply was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The document is invalid.
    #[error(transparent)]
    Invalid(#[from] DocumentError),
    /// The document says the same as the current revision (comments and layout aside).
    #[error("the document is the same as the current revision {current}; nothing stored")]
    Unchanged {
        /// The current revision.
        current: u64,
    },
}

/// Why `token create` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No router of that name in the current configuration.
    #[error("router {router}: not in the current configuration (apply one that has it first)")]
    UnknownRouter {
        /// The name given.
        router: String,
    },
    /// The router has no `peering-common-name`, so no certificate name.
    #[error("router {router}: has no peering-common-name, so no certificate can be issued to it")]
    NoCommonName {
        /// The router.
        router: String,
    },
    /// The router is revoked; `--readmit` lifts that.
    #[error("router {router}: revoked; use --readmit to let it enroll again")]
    Revoked {
        /// The router.
        router: String,
    },
    /// The lifetime is out of range.
    #[error("ttl {ttl}s: must be {TOKEN_TTL_MIN}-{TOKEN_TTL_MAX} seconds")]
    BadTtl {
        /// The lifetime given.
        ttl: u64,
    },
}

/// Why `revoke` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevokeError {
    /// The router was never enrolled and is not in the configuration.
    #[error("router {router}: unknown (not in the configuration and never enrolled)")]
    UnknownRouter {
        /// The name given.
        router: String,
    },
    /// Already revoked.
    #[error("router {router}: already revoked")]
    AlreadyRevoked {
        /// The router.
        router: String,
    },
}

/// Why the stored state could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A stored value is not what its key should hold.
    #[error("store key {key}: {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The stored document no longer validates (svr-config changed under it).
    #[error("store key config/document: {0}")]
    Document(DocumentError),
}

/// An enrollment request (stage 1).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct EnrollRequest {
    /// The one-time token (zeroized when the request is dropped).
    pub token: Zeroizing<String>,
    /// The router's name.
    pub router: String,
    /// The node's name.
    pub node: String,
    /// The router's software version.
    pub version: String,
    /// PKCS#10 request, PEM.
    pub csr: String,
}

impl std::fmt::Debug for EnrollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollRequest")
            .field("router", &self.router)
            .field("node", &self.node)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// What an enrolled router receives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Enrolled {
    /// Its certificate then the intermediate (PEM).
    pub certificate_chain: String,
    /// Serial of its certificate (hex).
    pub serial: String,
    /// The current configuration revision.
    pub revision: u64,
}

/// Why an enrollment was refused. Each has a [`Refusal`] kind for the audit event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollError {
    /// Too many attempts from this address.
    #[error("too many enrollment attempts from {from}; retry in {retry_after}s")]
    RateLimited {
        /// The address.
        from: IpAddr,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// No such token.
    #[error("unknown enrollment token")]
    UnknownToken,
    /// The token was used already.
    #[error("enrollment token already used (by router {router} at {at})")]
    TokenReused {
        /// The router it enrolled.
        router: String,
        /// When (unix seconds).
        at: u64,
    },
    /// The token is past its expiry.
    #[error("enrollment token expired at {expired}")]
    TokenExpired {
        /// Its expiry (unix seconds).
        expired: u64,
    },
    /// The token was made for another router.
    #[error("enrollment token is for router {token_router}, not {router}")]
    TokenForAnotherRouter {
        /// The router named in the request.
        router: String,
        /// The router the token enrolls.
        token_router: String,
    },
    /// The router is not in the configuration (any more).
    #[error("router {router}: not in the current configuration")]
    UnknownRouter {
        /// The name given.
        router: String,
    },
    /// The node is not a node of the router.
    #[error("router {router}: has no node {node}")]
    UnknownNode {
        /// The router.
        router: String,
        /// The node given.
        node: String,
    },
    /// The router is revoked.
    #[error("router {router}: revoked")]
    Revoked {
        /// The router.
        router: String,
    },
    /// The router has no `peering-common-name`.
    #[error("router {router}: has no peering-common-name")]
    NoCommonName {
        /// The router.
        router: String,
    },
    /// The CSR was refused.
    #[error("certificate request refused: {0}")]
    Csr(CsrError),
}

impl EnrollError {
    /// The audit kind of this refusal.
    pub fn refusal(&self) -> Refusal {
        match self {
            EnrollError::RateLimited { .. } => Refusal::RateLimited,
            EnrollError::UnknownToken => Refusal::UnknownToken,
            EnrollError::TokenReused { .. } => Refusal::TokenReused,
            EnrollError::TokenExpired { .. } => Refusal::TokenExpired,
            EnrollError::TokenForAnotherRouter { .. } => Refusal::TokenForAnotherRouter,
            EnrollError::UnknownRouter { .. } => Refusal::UnknownRouter,
            EnrollError::UnknownNode { .. } => Refusal::UnknownNode,
            EnrollError::Revoked { .. } => Refusal::Revoked,
            EnrollError::NoCommonName { .. } => Refusal::NoCommonName,
            EnrollError::Csr(CsrError::WrongName { .. }) => Refusal::WrongName,
            EnrollError::Csr(CsrError::Issue(_)) => Refusal::IssueFailed,
            EnrollError::Csr(_) => Refusal::BadCsr,
        }
    }
}

/// A status report (stage 2).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StatusReport {
    /// The node reporting.
    pub node: String,
    /// Its software version.
    pub version: String,
    /// The revision it runs (none yet: absent).
    pub applied_revision: Option<u64>,
    /// The exact error of a revision it could not apply.
    pub error: Option<String>,
}

/// One line of `show routers`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RouterRow {
    /// Router name.
    pub router: String,
    /// Node last reported.
    pub node: Option<String>,
    /// Version last reported.
    pub version: Option<String>,
    /// The revision of its configuration the conductor serves.
    pub revision: Option<u64>,
    /// The revision it reported applied.
    pub applied: Option<u64>,
    /// Last contact (unix seconds).
    pub last_seen: Option<u64>,
    /// `not-enrolled`, `enrolled`, `up-to-date`, `behind`, `error`, `stale`, `revoked`,
    /// `removed` (enrolled, no longer in the configuration).
    pub state: String,
}

/// `config/router-revisions`: who applied the current revision, and the revision in which
/// each router's part last changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct RouterRevisions {
    /// The applying conductor's version.
    conductor: String,
    /// Router name -> revision.
    routers: BTreeMap<String, u64>,
}

/// The conductor's state (see the module documentation).
#[derive(Default)]
pub struct Conductor {
    revision: u64,
    document: Option<Document>,
    document_text: Zeroizing<String>,
    configs: BTreeMap<String, RouterConfig>,
    /// The revision each router's part last changed in (`config/router-revisions`): with
    /// the document, all a replica needs to serve every router's part.
    router_revisions: Option<RouterRevisions>,
    /// `routers/<r>/config` keys of the earlier layout, deleted by the next apply.
    legacy_configs: BTreeSet<String>,
    /// The document, revision or router revisions changed: [`Conductor::settle`] is due.
    unsettled: bool,
    status: BTreeMap<String, RouterStatus>,
    certs: BTreeMap<String, Vec<CertRecord>>,
    revoked: BTreeMap<String, u64>,
    tokens: BTreeMap<String, TokenState>,
    crl_number: u64,
    audit_seq: u64,
    /// The replica whose audit sequence this is (`audit/<replica>/<seq>`); `None` for the
    /// single conductor of a file store (`audit/<seq>`).
    replica: Option<String>,
    limiter: RateLimit,
    status_ttl: Option<u64>,
    ops: Vec<Op>,
    events: VecDeque<Event>,
}

fn json<T: serde::Serialize>(v: &T) -> String {
    // Our own plain structs: serialisation cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

fn unknown_key(key: &str) -> LoadError {
    LoadError::BadValue {
        key: key.into(),
        reason: "unknown key".into(),
    }
}

fn parse<T: serde::de::DeserializeOwned>(key: &str, v: &str) -> Result<T, LoadError> {
    serde_json::from_str(v).map_err(|e| LoadError::BadValue {
        key: key.into(),
        reason: e.to_string(),
    })
}

impl Conductor {
    /// A conductor with no configuration.
    pub fn new() -> Conductor {
        Conductor::default()
    }

    /// The state stored in `kv` (what [`Store::load`](crate::store::Store::load) gave).
    pub fn from_store(kv: &BTreeMap<String, String>) -> Result<Conductor, LoadError> {
        Conductor::from_store_as(kv, None)
    }

    /// [`from_store`](Conductor::from_store) for one of several replicas sharing the
    /// store: its audit events go under `audit/<replica>/`, a sequence only it writes, so
    /// two replicas never compete for one audit key.
    pub fn from_store_as(
        kv: &BTreeMap<String, String>,
        replica: Option<&str>,
    ) -> Result<Conductor, LoadError> {
        let mut c = Conductor::new();
        c.replica = replica.map(str::to_owned);
        for (key, value) in kv {
            c.store_changed(key, Some(value))?;
        }
        c.settle();
        Ok(c)
    }

    /// [`from_store`](Conductor::from_store) for a replica that reloads (after a conflict
    /// with another replica's write): `previous`'s parsed document is kept when the stored
    /// document is the same text, instead of being parsed again (its parse is linear in
    /// the authority's size, and the other replica's write was most often an enrollment or
    /// a status report).
    pub fn reload_from(
        kv: &BTreeMap<String, String>,
        previous: &Conductor,
    ) -> Result<Conductor, LoadError> {
        let mut c = Conductor::new();
        c.replica = previous.replica.clone();
        if kv.contains_key("config/document") {
            c.document = previous.document.clone();
            c.document_text = previous.document_text.clone();
            // Parts of an unchanged document are kept; settle re-renders the others.
            c.configs = previous.configs.clone();
        }
        for (key, value) in kv {
            c.store_changed(key, Some(value))?;
        }
        c.settle();
        Ok(c)
    }

    /// Brings every router's part in line with the document and the router revisions after
    /// [`store_changed`](Conductor::store_changed) took in a batch of changes. The parts are
    /// not stored: the document renders them (when it parsed), so an apply writes three keys
    /// whatever the number of routers. A store without router revisions (written before
    /// they existed) gives every router the current revision.
    pub fn settle(&mut self) {
        if !std::mem::take(&mut self.unsettled) {
            return;
        }
        let Some(doc) = self.document.as_ref() else {
            self.configs.clear();
            return;
        };
        let every_router_now: BTreeMap<String, u64>;
        let revisions = match &self.router_revisions {
            Some(m) => &m.routers,
            None => {
                every_router_now = doc
                    .routers()
                    .keys()
                    .map(|r| (r.clone(), self.revision))
                    .collect();
                &every_router_now
            }
        };
        self.configs.retain(|r, _| revisions.contains_key(r));
        for (router, &rev) in revisions {
            if self.configs.get(router).map(|c| c.revision) == Some(rev) {
                continue;
            }
            match doc.render(router) {
                Some(yaml) => {
                    let config = RouterConfig {
                        revision: rev,
                        yaml: Arc::from(yaml),
                    };
                    self.configs.insert(router.clone(), config);
                }
                None => {
                    self.configs.remove(router);
                }
            }
        }
    }

    /// Takes in a change another process made to the store (a replica's write, an expired
    /// lease: [`crate::store::Feed`]): `value` is the key's new value, `None` if it was
    /// deleted. Nothing is written back; call [`settle`](Conductor::settle) after a batch.
    /// On error the state is unchanged.
    pub fn store_changed(&mut self, key: &str, value: Option<&str>) -> Result<(), LoadError> {
        let parts: Vec<&str> = key.split('/').collect();
        let Some(value) = value else {
            match parts.as_slice() {
                ["config", "revision"] => {
                    self.revision = 0;
                    self.unsettled = true;
                }
                ["config", "document"] => {
                    self.document = None;
                    self.document_text = Zeroizing::new(String::new());
                    self.unsettled = true;
                }
                ["config", "router-revisions"] => {
                    self.router_revisions = None;
                    self.unsettled = true;
                }
                ["routers", r, "config"] => {
                    self.legacy_configs.remove(*r);
                }
                ["routers", r, "status"] => {
                    self.status.remove(*r);
                }
                ["routers", r, "certs"] => {
                    self.certs.remove(*r);
                }
                ["routers", r, "revoked"] => {
                    self.revoked.remove(*r);
                }
                ["tokens", id] => {
                    self.tokens.remove(*id);
                }
                ["crl", "number"] => self.crl_number = 0,
                // Old audit events are deleted; the sequence goes on.
                ["audit", _] | ["audit", _, _] => {}
                _ => return Err(unknown_key(key)),
            }
            return Ok(());
        };
        match parts.as_slice() {
            ["config", "revision"] => {
                self.revision = parse(key, value)?;
                self.unsettled = true;
            }
            ["config", "document"] => {
                let text: String = parse(key, value)?;
                // The parse depends on the text alone: the same text is the same document.
                if self.document.is_none() || *self.document_text != text {
                    self.document = Some(Document::parse(&text).map_err(LoadError::Document)?);
                }
                self.document_text = Zeroizing::new(text);
                self.unsettled = true;
            }
            ["config", "router-revisions"] => {
                self.router_revisions = Some(parse(key, value)?);
                self.unsettled = true;
            }
            ["routers", r, "config"] => {
                self.legacy_configs.insert((*r).into());
            }
            ["routers", r, "status"] => {
                self.status.insert((*r).into(), parse(key, value)?);
            }
            ["routers", r, "certs"] => {
                self.certs.insert((*r).into(), parse(key, value)?);
            }
            ["routers", r, "revoked"] => {
                self.revoked.insert((*r).into(), parse(key, value)?);
            }
            ["tokens", id] => {
                self.tokens.insert((*id).into(), parse(key, value)?);
            }
            ["crl", "number"] => self.crl_number = parse(key, value)?,
            ["audit", seq] => {
                let n: u64 = seq.parse().map_err(|_| LoadError::BadValue {
                    key: key.into(),
                    reason: "not a sequence number".into(),
                })?;
                if self.replica.is_none() {
                    self.audit_seq = self.audit_seq.max(n);
                }
            }
            ["audit", replica, seq] => {
                let n: u64 = seq.parse().map_err(|_| LoadError::BadValue {
                    key: key.into(),
                    reason: "not a sequence number".into(),
                })?;
                if self.replica.as_deref() == Some(*replica) {
                    self.audit_seq = self.audit_seq.max(n);
                }
            }
            _ => return Err(unknown_key(key)),
        }
        Ok(())
    }

    /// Sets the lifetime of stored status reports (seconds, at least 1; default
    /// [`STATUS_TTL`]).
    pub fn set_status_ttl(&mut self, ttl: u64) {
        self.status_ttl = Some(ttl.max(1));
    }

    /// The writes made since the last call, to commit before answering.
    pub fn take_ops(&mut self) -> Vec<Op> {
        std::mem::take(&mut self.ops)
    }

    /// The next audit event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn put<T: serde::Serialize>(&mut self, key: String, value: &T) {
        self.ops.push(Op::Put {
            key,
            value: json(value),
        });
    }

    fn put_expiring<T: serde::Serialize>(&mut self, key: String, value: &T, ttl: u64) {
        self.ops.push(Op::PutExpiring {
            key,
            value: json(value),
            ttl: ttl.max(1),
        });
    }

    fn put_status(&mut self, router: &str, status: &RouterStatus) {
        let ttl = self.status_ttl.unwrap_or(STATUS_TTL);
        self.put_expiring(format!("routers/{router}/status"), status, ttl);
    }

    fn put_token(&mut self, now: u64, id: &str, token: &TokenState) {
        let expires = match token {
            TokenState::Issued(t) => t.expires,
            TokenState::Consumed(t) => t.expires,
        };
        let ttl = expires.saturating_add(TOKEN_KEEP).saturating_sub(now);
        self.put_expiring(format!("tokens/{id}"), token, ttl);
    }

    fn audit_key(&self, seq: u64) -> String {
        match &self.replica {
            Some(r) => format!("audit/{r}/{seq:020}"),
            None => format!("audit/{seq:020}"),
        }
    }

    fn event(&mut self, now: u64, event: Event) {
        self.audit_seq += 1;
        let record = serde_json::json!({ "at": now, "event": &event });
        self.put(self.audit_key(self.audit_seq), &record);
        if self.audit_seq > AUDIT_KEEP {
            self.ops.push(Op::Delete {
                key: self.audit_key(self.audit_seq - AUDIT_KEEP),
            });
        }
        self.events.push_back(event);
    }

    /// The current configuration revision (0: none applied yet).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The current document, if any.
    pub fn document(&self) -> Option<&Document> {
        self.document.as_ref()
    }

    /// Validates `text` and stores it as revision N+1 (see [`Document`]); an invalid
    /// document changes nothing.
    pub fn apply(&mut self, now: u64, text: &str) -> Result<Revision, ApplyError> {
        self.apply_parsed(now, text, &Document::parse(text))
    }

    /// [`apply`](Conductor::apply) of `text`, whose [`Document::parse`] is `parsed`. The
    /// parse (validation and rendering, the costly part of an apply) depends on the text
    /// alone, so the server runs it before taking the core's lock.
    pub fn apply_parsed(
        &mut self,
        now: u64,
        text: &str,
        parsed: &Result<Document, DocumentError>,
    ) -> Result<Revision, ApplyError> {
        let doc = match parsed {
            Ok(d) => d.clone(),
            Err(e) => {
                let e = e.clone();
                self.event(
                    now,
                    Event::ApplyRefused {
                        error: e.to_string(),
                    },
                );
                return Err(e.into());
            }
        };
        if self.document.as_ref().is_some_and(|d| d.same_as(&doc)) {
            return Err(ApplyError::Unchanged {
                current: self.revision,
            });
        }
        // A change no router sees (an unused policy) is still a revision: it is stored.
        let changes = doc.diff(self.document.as_ref());
        self.revision += 1;
        let rev = self.revision;
        // Nothing below fails: the map is taken and put back updated.
        let mut revisions = match self.router_revisions.take() {
            Some(m) => m.routers,
            None => self
                .configs
                .iter()
                .map(|(r, c)| (r.clone(), c.revision))
                .collect(),
        };
        for change in &changes {
            let name = &change.router;
            match doc.render(name) {
                Some(yaml) => {
                    let config = RouterConfig {
                        revision: rev,
                        yaml: Arc::from(yaml),
                    };
                    self.configs.insert(name.clone(), config);
                    revisions.insert(name.clone(), rev);
                }
                None => {
                    self.configs.remove(name);
                    revisions.remove(name);
                }
            }
        }
        for r in std::mem::take(&mut self.legacy_configs) {
            self.ops.push(Op::Delete {
                key: format!("routers/{r}/config"),
            });
        }
        let revisions = RouterRevisions {
            conductor: version::OURS.into(),
            routers: revisions,
        };
        self.put("config/router-revisions".into(), &revisions);
        self.router_revisions = Some(revisions);
        self.document_text = Zeroizing::new(text.to_owned());
        let text_json = Zeroizing::new(json(&*self.document_text));
        self.ops.push(Op::Put {
            key: "config/document".into(),
            value: text_json.to_string(),
        });
        self.put("config/revision".into(), &rev);
        self.document = Some(doc);
        let routers = changes.iter().map(ToString::to_string).collect();
        self.event(
            now,
            Event::Applied {
                revision: rev,
                changes: routers,
            },
        );
        Ok(Revision {
            number: rev,
            changes,
        })
    }

    /// The version of the conductor that applied the current revision (`None` before the
    /// first apply, or in a store from before it was recorded). Every replica renders the
    /// routers' parts itself, so one of another version may render them differently.
    pub fn applied_by(&self) -> Option<&str> {
        self.router_revisions.as_ref().map(|m| m.conductor.as_str())
    }

    /// Router `router`'s configuration, if it has one.
    pub fn config(&self, router: &str) -> Option<&RouterConfig> {
        self.configs.get(router)
    }

    /// The router whose `peering-common-name` is `name`.
    pub fn router_named(&self, name: &str) -> Option<&str> {
        self.document.as_ref().and_then(|d| {
            d.routers()
                .iter()
                .find(|(_, f)| f.peering_common_name.as_deref() == Some(name))
                .map(|(r, _)| r.as_str())
        })
    }

    /// Is the certificate with serial `serial` (hex) one of `router`'s, unrevoked?
    pub fn is_current_cert(&self, router: &str, serial: &str) -> bool {
        !self.revoked.contains_key(router)
            && self
                .certs
                .get(router)
                .is_some_and(|c| c.iter().any(|c| c.serial == serial && c.revoked.is_none()))
    }

    /// Makes a one-time enrollment token for `router`, valid for `ttl` seconds; `random`
    /// is 32 bytes from the OS's generator. `readmit` lifts a revocation.
    pub fn token_create(
        &mut self,
        now: u64,
        router: &str,
        ttl: u64,
        readmit: bool,
        random: [u8; 32],
    ) -> Result<TokenSecret, TokenError> {
        if !(TOKEN_TTL_MIN..=TOKEN_TTL_MAX).contains(&ttl) {
            return Err(TokenError::BadTtl { ttl });
        }
        let facts = self
            .document
            .as_ref()
            .and_then(|d| d.routers().get(router))
            .ok_or_else(|| TokenError::UnknownRouter {
                router: router.into(),
            })?;
        if facts.peering_common_name.is_none() {
            return Err(TokenError::NoCommonName {
                router: router.into(),
            });
        }
        if self.revoked.contains_key(router) {
            if !readmit {
                return Err(TokenError::Revoked {
                    router: router.into(),
                });
            }
            self.revoked.remove(router);
            self.ops.push(Op::Delete {
                key: format!("routers/{router}/revoked"),
            });
        }
        let secret = TokenSecret::from_random(random);
        let id = token_id(secret.expose());
        let token = TokenState::Issued(IssuedToken {
            router: router.into(),
            created: now,
            expires: now.saturating_add(ttl),
        });
        self.put_token(now, &id, &token);
        self.tokens.insert(id, token);
        self.drop_old_tokens(now);
        self.event(
            now,
            Event::TokenCreated {
                router: router.into(),
                expires: now.saturating_add(ttl),
            },
        );
        Ok(secret)
    }

    /// Forgets tokens a day past their expiry (used or not).
    fn drop_old_tokens(&mut self, now: u64) {
        let old: Vec<String> = self
            .tokens
            .iter()
            .filter(|(_, t)| {
                let exp = match t {
                    TokenState::Issued(t) => t.expires,
                    TokenState::Consumed(t) => t.expires,
                };
                exp.saturating_add(TOKEN_KEEP) < now
            })
            .map(|(k, _)| k.clone())
            .collect();
        for id in old {
            self.tokens.remove(&id);
            self.ops.push(Op::Delete {
                key: format!("tokens/{id}"),
            });
        }
    }

    /// Stage 1: checks the token and the CSR, issues the certificate, consumes the token.
    /// Every attempt is an audit event. `serial` is 16 random bytes.
    pub fn enroll(
        &mut self,
        now: u64,
        source: IpAddr,
        req: &EnrollRequest,
        ca: &CertificateAuthority,
        serial: [u8; 16],
    ) -> Result<Enrolled, EnrollError> {
        let result = self.try_enroll(now, source, req, ca, serial);
        let event = match &result {
            Ok(e) => Event::Enrolled {
                router: req.router.clone(),
                node: req.node.clone(),
                source,
                serial: e.serial.clone(),
                version: req.version.clone(),
            },
            Err(e) => Event::EnrollRefused {
                router: req.router.clone(),
                node: req.node.clone(),
                source,
                reason: e.refusal(),
                detail: e.to_string(),
            },
        };
        self.event(now, event);
        if result.is_ok() {
            self.note_version(now, &req.router, &req.node, &req.version);
        }
        result
    }

    fn try_enroll(
        &mut self,
        now: u64,
        source: IpAddr,
        req: &EnrollRequest,
        ca: &CertificateAuthority,
        serial: [u8; 16],
    ) -> Result<Enrolled, EnrollError> {
        if !self.limiter.allow(now, source) {
            return Err(EnrollError::RateLimited {
                from: source,
                retry_after: RateLimit::REFILL_SECS,
            });
        }
        let id = token_id(&req.token);
        let issued = match self.tokens.get(&id) {
            None => return Err(EnrollError::UnknownToken),
            Some(TokenState::Consumed(c)) => {
                return Err(EnrollError::TokenReused {
                    router: c.router.clone(),
                    at: c.at,
                })
            }
            Some(TokenState::Issued(t)) => t.clone(),
        };
        if now >= issued.expires {
            return Err(EnrollError::TokenExpired {
                expired: issued.expires,
            });
        }
        if issued.router != req.router {
            return Err(EnrollError::TokenForAnotherRouter {
                router: req.router.clone(),
                token_router: issued.router,
            });
        }
        let router = req.router.as_str();
        let facts = self
            .document
            .as_ref()
            .and_then(|d| d.routers().get(router))
            .ok_or_else(|| EnrollError::UnknownRouter {
                router: router.into(),
            })?;
        if !facts.nodes.contains(&req.node) {
            return Err(EnrollError::UnknownNode {
                router: router.into(),
                node: req.node.clone(),
            });
        }
        if self.revoked.contains_key(router) {
            return Err(EnrollError::Revoked {
                router: router.into(),
            });
        }
        let name = facts
            .peering_common_name
            .clone()
            .ok_or_else(|| EnrollError::NoCommonName {
                router: router.into(),
            })?;
        let cert = ca
            .issue(&req.csr, router, &name, serial, now, CERT_DAYS)
            .map_err(EnrollError::Csr)?;
        let consumed = TokenState::Consumed(issued.consume(now));
        self.put_token(now, &id, &consumed);
        self.tokens.insert(id, consumed);
        let certs = self.certs.entry(router.into()).or_default();
        certs.retain(|c| c.not_after > now);
        // Its earlier certificates are superseded: revoked, so a lost key stops working.
        for c in certs.iter_mut().filter(|c| c.revoked.is_none()) {
            c.revoked = Some(now);
        }
        certs.push(CertRecord {
            serial: cert.serial.clone(),
            not_after: cert.not_after,
            revoked: None,
        });
        let certs = certs.clone();
        self.put(format!("routers/{router}/certs"), &certs);
        let status = self.status.entry(router.into()).or_default();
        status.node = Some(req.node.clone());
        status.version = Some(req.version.clone());
        status.last_seen = Some(now);
        let status = status.clone();
        self.put_status(router, &status);
        Ok(Enrolled {
            certificate_chain: cert.chain_pem,
            serial: cert.serial,
            revision: self.revision,
        })
    }

    /// Raises [`Event::IncompatibleVersion`] when `version` does not match ours.
    fn note_version(&mut self, now: u64, router: &str, node: &str, version: &str) {
        if !version::compatible(version, version::OURS) {
            self.event(
                now,
                Event::IncompatibleVersion {
                    router: router.into(),
                    node: node.into(),
                    version: version.into(),
                    conductor: version::OURS.into(),
                },
            );
        }
    }

    /// Stage 2: a router's status report.
    pub fn report(&mut self, now: u64, router: &str, report: &StatusReport) {
        let old = self.status.get(router).cloned().unwrap_or_default();
        let status = RouterStatus {
            node: Some(report.node.clone()),
            version: Some(report.version.clone()),
            applied: report.applied_revision,
            error: report.error.clone(),
            last_seen: Some(now),
        };
        if old.version.as_deref() != Some(report.version.as_str()) {
            self.note_version(now, router, &report.node, &report.version);
        }
        if (old.applied, &old.error) != (status.applied, &status.error) {
            self.event(
                now,
                Event::StatusReported {
                    router: router.into(),
                    node: report.node.clone(),
                    applied: report.applied_revision,
                    error: report.error.clone(),
                },
            );
        }
        self.put_status(router, &status);
        self.status.insert(router.into(), status);
    }

    /// Notes contact from `router` without persisting it (a config poll).
    pub fn seen(&mut self, now: u64, router: &str) {
        self.status.entry(router.into()).or_default().last_seen = Some(now);
    }

    /// Revokes every certificate of `router`; it can no longer enroll (until a token with
    /// `readmit`) nor use stage 2. Returns the serials revoked.
    pub fn revoke(&mut self, now: u64, router: &str) -> Result<Vec<String>, RevokeError> {
        let known = self.certs.contains_key(router)
            || self
                .document
                .as_ref()
                .is_some_and(|d| d.routers().contains_key(router));
        if !known {
            return Err(RevokeError::UnknownRouter {
                router: router.into(),
            });
        }
        if self.revoked.contains_key(router) {
            return Err(RevokeError::AlreadyRevoked {
                router: router.into(),
            });
        }
        self.revoked.insert(router.into(), now);
        self.put(format!("routers/{router}/revoked"), &now);
        // Unused tokens for it die with it.
        let unused: Vec<String> = self
            .tokens
            .iter()
            .filter(|(_, t)| matches!(t, TokenState::Issued(t) if t.router == router))
            .map(|(k, _)| k.clone())
            .collect();
        for id in unused {
            self.tokens.remove(&id);
            self.ops.push(Op::Delete {
                key: format!("tokens/{id}"),
            });
        }
        let mut serials = Vec::new();
        if let Some(certs) = self.certs.get_mut(router) {
            for c in certs.iter_mut().filter(|c| c.revoked.is_none()) {
                c.revoked = Some(now);
                serials.push(c.serial.clone());
            }
            let certs = certs.clone();
            self.put(format!("routers/{router}/certs"), &certs);
        }
        self.event(
            now,
            Event::Revoked {
                router: router.into(),
                serials: serials.clone(),
            },
        );
        Ok(serials)
    }

    /// The certificates to list in the CRL: (serial, revocation time), unexpired only.
    pub fn crl_entries(&self, now: u64) -> Vec<(String, u64)> {
        self.certs
            .values()
            .flatten()
            .filter(|c| c.not_after > now)
            .filter_map(|c| Some((c.serial.clone(), c.revoked?)))
            .collect()
    }

    /// The number for the next CRL (persisted).
    pub fn next_crl_number(&mut self) -> u64 {
        self.crl_number += 1;
        let n = self.crl_number;
        self.put("crl/number".into(), &n);
        n
    }

    /// `show routers`: every router of the configuration, and enrolled routers that left it.
    pub fn routers(&self, now: u64) -> Vec<RouterRow> {
        let mut names: Vec<&String> = self.configs.keys().collect();
        names.extend(self.certs.keys().filter(|r| !self.configs.contains_key(*r)));
        names.sort();
        names
            .into_iter()
            .map(|r| {
                let s = self.status.get(r).cloned().unwrap_or_default();
                let revision = self.configs.get(r).map(|c| c.revision);
                let state = self.state_of(now, r, &s, revision);
                RouterRow {
                    router: r.clone(),
                    node: s.node,
                    version: s.version,
                    revision,
                    applied: s.applied,
                    last_seen: s.last_seen,
                    state: state.into(),
                }
            })
            .collect()
    }

    fn state_of(&self, now: u64, r: &str, s: &RouterStatus, rev: Option<u64>) -> &'static str {
        if self.revoked.contains_key(r) {
            return "revoked";
        }
        if !self.certs.contains_key(r) {
            return "not-enrolled";
        }
        if rev.is_none() {
            return "removed";
        }
        if s.last_seen
            .map_or(true, |t| now.saturating_sub(t) > STALE_AFTER)
        {
            return "stale";
        }
        if s.error.is_some() {
            return "error";
        }
        match (s.applied, rev) {
            (None, _) => "enrolled",
            (Some(a), Some(r)) if a >= r => "up-to-date",
            _ => "behind",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::tests::DOC;
    use crate::document::RouterChangeKind;
    use crate::enroll::tests::{authority, csr, NOW};
    use crate::store::{MemStore, Store};

    const SRC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 10));

    fn applied() -> Conductor {
        let mut c = Conductor::new();
        c.apply(NOW, DOC).unwrap();
        c.take_ops();
        while c.poll_event().is_some() {}
        c
    }

    fn request(token: &str, router: &str, name: &str) -> EnrollRequest {
        EnrollRequest {
            token: Zeroizing::new(token.into()),
            router: router.into(),
            node: "node-1".into(),
            version: version::OURS.into(),
            csr: csr(&[name], Some(name)),
        }
    }

    fn last_event(c: &mut Conductor) -> Option<Event> {
        let mut last = None;
        while let Some(e) = c.poll_event() {
            last = Some(e);
        }
        last
    }

    #[test]
    fn apply_stores_revisions_and_invalid_changes_nothing() {
        let mut store = MemStore::default();
        let mut c = Conductor::new();
        let r1 = c.apply(NOW, DOC).unwrap();
        assert_eq!(r1.number, 1);
        assert_eq!(r1.changes.len(), 3);
        store.commit(&c.take_ops()).unwrap();
        let before = store.load().unwrap();

        let bad = DOC.replace("tenant: red", "tenant: \"\"");
        let e = c.apply(NOW, &bad).unwrap_err();
        assert!(
            e.to_string().starts_with("authority.service[2].tenant:"),
            "{e}"
        );
        assert!(matches!(
            last_event(&mut c),
            Some(Event::ApplyRefused { .. })
        ));
        assert_eq!(c.revision(), 1);
        let ops = c.take_ops();
        assert!(ops
            .iter()
            .all(|op| matches!(op, Op::Put { key, .. } if key.starts_with("audit/"))));
        store.commit(&ops).unwrap();
        let after = store.load().unwrap();
        let non_audit = |kv: &BTreeMap<String, String>| {
            kv.iter()
                .filter(|(k, _)| !k.starts_with("audit/"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(non_audit(&before.1), non_audit(&after.1), "nothing changed");
        assert_eq!(c.apply(NOW, DOC), Err(ApplyError::Unchanged { current: 1 }));
        let comment_only = format!("# a comment\n{DOC}");
        assert_eq!(
            c.apply(NOW, &comment_only),
            Err(ApplyError::Unchanged { current: 1 })
        );

        // Revision 2 changes router-c only: a and b keep their revision.
        let r2 = c
            .apply(NOW, &DOC.replace("10.3.0.0/24", "10.3.0.0/23"))
            .unwrap();
        assert_eq!(r2.number, 2);
        assert_eq!(r2.changes.len(), 1);
        assert!(matches!(r2.changes[0].kind, RouterChangeKind::Changed(_)));
        assert_eq!(c.config("router-c").unwrap().revision, 2);
        assert_eq!(c.config("router-a").unwrap().revision, 1);
        assert!(c.config("router-c").unwrap().yaml.contains("10.3.0.0/23"));
        store.commit(&c.take_ops()).unwrap();

        // A change that reaches no router is a revision with no router changes.
        let unused = DOC
            .replace("10.3.0.0/24", "10.3.0.0/23")
            .replace("{name: unused}", "{name: unused, best-effort: false}");
        let r3 = c.apply(NOW, &unused).unwrap();
        assert_eq!((r3.number, r3.changes.len()), (3, 0));
        assert_eq!(c.config("router-c").unwrap().revision, 2);
        store.commit(&c.take_ops()).unwrap();

        // Reloaded from the store: the same state.
        let (_, kv) = store.load().unwrap();
        let back = Conductor::from_store(&kv).unwrap();
        assert_eq!(back.revision(), 3);
        assert_eq!(back.config("router-c"), c.config("router-c"));
        assert_eq!(back.audit_seq, c.audit_seq);
    }

    #[test]
    fn a_reload_keeps_the_parsed_document_only_for_the_same_text() {
        let mut c = Conductor::new();
        c.apply(NOW, DOC).unwrap();
        let mut kv = BTreeMap::new();
        for op in c.take_ops() {
            match op {
                Op::Put { key, value } | Op::PutExpiring { key, value, .. } => {
                    kv.insert(key, value);
                }
                Op::Delete { key } => {
                    kv.remove(&key);
                }
            }
        }
        let same =
            |a: &Conductor, b: &Conductor| a.document().unwrap().same_as(b.document().unwrap());
        let back = Conductor::reload_from(&kv, &c).unwrap();
        assert!(same(&back, &c));
        assert_eq!(back.config("router-c"), c.config("router-c"));
        // A replica whose document is another: the stored one wins.
        let mut other = Conductor::new();
        other
            .apply(NOW, &DOC.replace("10.3.0.0/24", "10.3.0.0/23"))
            .unwrap();
        let back = Conductor::reload_from(&kv, &other).unwrap();
        assert!(same(&back, &c) && !same(&back, &other));
        // No stored document: none, whatever the replica had.
        let back = Conductor::reload_from(&BTreeMap::new(), &c).unwrap();
        assert!(back.document().is_none());
    }

    fn commit_to(kv: &mut BTreeMap<String, String>, ops: Vec<Op>) -> Vec<String> {
        let mut written = Vec::new();
        for op in ops {
            match op {
                Op::Put { key, value } | Op::PutExpiring { key, value, .. } => {
                    written.push(key.clone());
                    kv.insert(key, value);
                }
                Op::Delete { key } => {
                    written.push(format!("-{key}"));
                    kv.remove(&key);
                }
            }
        }
        written
    }

    #[test]
    fn an_apply_stores_the_document_and_router_revisions_not_the_parts() {
        let mut a = Conductor::new();
        a.apply(NOW, DOC).unwrap();
        let mut kv = BTreeMap::new();
        let w = commit_to(&mut kv, a.take_ops());
        let config_keys: Vec<&String> = w.iter().filter(|k| !k.starts_with("audit/")).collect();
        assert_eq!(
            config_keys,
            [
                "config/router-revisions",
                "config/document",
                "config/revision"
            ]
        );
        a.apply(NOW, &DOC.replace("10.3.0.0/24", "10.3.0.0/23"))
            .unwrap();
        commit_to(&mut kv, a.take_ops());
        // Another replica renders every part from the document, at the same revisions.
        let b = Conductor::from_store_as(&kv, Some("b")).unwrap();
        for r in ["router-a", "router-b", "router-c"] {
            assert_eq!(b.config(r), a.config(r), "{r}");
        }
        assert_eq!(b.config("router-c").unwrap().revision, 2);
        assert_eq!(b.config("router-a").unwrap().revision, 1);
        assert_eq!(b.applied_by(), Some(version::OURS));
        // A store of the earlier layout (parts stored, no router revisions): every router
        // gets the current revision, and the next apply deletes the stored parts.
        let mut old = kv.clone();
        old.remove("config/router-revisions");
        old.insert("routers/router-a/config".into(), "{}".into());
        let mut c = Conductor::from_store(&old).unwrap();
        assert_eq!(c.config("router-a").unwrap().revision, 2);
        assert_eq!(
            c.config("router-a").unwrap().yaml,
            a.config("router-a").unwrap().yaml
        );
        c.apply(NOW, DOC).unwrap();
        let w = commit_to(&mut old, c.take_ops());
        assert!(w.contains(&"-routers/router-a/config".to_owned()), "{w:?}");
        assert_eq!(c.config("router-c").unwrap().revision, 3);
        assert_eq!(c.config("router-a").unwrap().revision, 2);
    }

    #[test]
    fn replicas_keep_their_own_audit_sequences() {
        // Two replicas on one store: each writes its events under its own prefix, so
        // neither ever writes a key the other wrote (no conflict), and a reload keeps each
        // one's sequence.
        let mut kv = BTreeMap::new();
        let mut a = Conductor::from_store_as(&kv, Some("a")).unwrap();
        a.apply(NOW, DOC).unwrap();
        let wa = commit_to(&mut kv, a.take_ops());
        assert!(wa.contains(&format!("audit/a/{:020}", 1)), "{wa:?}");
        let mut b = Conductor::from_store_as(&kv, Some("b")).unwrap();
        assert!(b.token_create(NOW, "router-a", 600, false, [1; 32]).is_ok());
        let wb = commit_to(&mut kv, b.take_ops());
        assert!(wb.contains(&format!("audit/b/{:020}", 1)), "{wb:?}");
        assert!(wa.iter().all(|k| !wb.contains(k)));
        let a2 = Conductor::from_store_as(&kv, Some("a")).unwrap();
        let b2 = Conductor::from_store_as(&kv, Some("b")).unwrap();
        assert_eq!((a2.audit_seq, b2.audit_seq), (1, 1));
        // The single conductor of a file store keeps `audit/<seq>`, and reads both layouts.
        let single = Conductor::from_store(&kv).unwrap();
        assert_eq!(single.audit_seq, 0);
        assert_eq!(single.revision(), 1);
        // Old events are deleted from the replica's own sequence only.
        let mut a3 = Conductor::from_store_as(&kv, Some("a")).unwrap();
        a3.audit_seq = AUDIT_KEEP;
        a3.apply(NOW, &DOC.replace("10.3.0.0/24", "10.3.0.0/23"))
            .unwrap();
        let w = commit_to(&mut kv, a3.take_ops());
        assert!(w.contains(&format!("-audit/a/{:020}", 1)), "{w:?}");
        assert!(kv.contains_key(&format!("audit/b/{:020}", 1)));
    }

    fn token(c: &mut Conductor, router: &str, ttl: u64, byte: u8) -> String {
        c.token_create(NOW, router, ttl, false, [byte; 32])
            .unwrap()
            .expose()
            .to_owned()
    }

    #[test]
    fn enrollment_consumes_the_token_once() {
        let (_, ca) = authority();
        let mut c = applied();
        let t = token(&mut c, "router-a", 3600, 1);
        let ops = c.take_ops();
        assert!(
            ops.iter().all(|op| !format!("{op:?}").contains(&t)),
            "only the token's hash is stored"
        );
        let req = request(&t, "router-a", "router-a.acme.svr");
        let ok = c.enroll(NOW + 10, SRC, &req, &ca, [5; 16]).unwrap();
        assert_eq!(ok.revision, 1);
        assert!(matches!(last_event(&mut c), Some(Event::Enrolled { .. })));
        assert!(c.is_current_cert("router-a", &ok.serial));
        assert_eq!(c.router_named("router-a.acme.svr"), Some("router-a"));

        let again = c.enroll(NOW + 20, SRC, &req, &ca, [6; 16]).unwrap_err();
        assert_eq!(
            again,
            EnrollError::TokenReused {
                router: "router-a".into(),
                at: NOW + 10
            }
        );
        match last_event(&mut c) {
            Some(Event::EnrollRefused { reason, .. }) => assert_eq!(reason, Refusal::TokenReused),
            e => panic!("{e:?}"),
        }
        let rows = c.routers(NOW + 20);
        assert_eq!(rows[0].state, "enrolled");
        assert_eq!(rows[1].state, "not-enrolled");
    }

    #[test]
    fn refusals_are_errors_and_events() {
        let (_, ca) = authority();
        let mut c = applied();
        let expired = token(&mut c, "router-a", 60, 1);
        let t = token(&mut c, "router-a", 3600, 2);
        let cases: Vec<(EnrollRequest, u64, Refusal)> = vec![
            (
                request(&expired, "router-a", "router-a.acme.svr"),
                NOW + 60,
                Refusal::TokenExpired,
            ),
            (
                request("00ff", "router-a", "router-a.acme.svr"),
                NOW,
                Refusal::UnknownToken,
            ),
            (
                request(&t, "router-b", "router-b.acme.svr"),
                NOW,
                Refusal::TokenForAnotherRouter,
            ),
            (
                request(&t, "router-a", "router-b.acme.svr"),
                NOW,
                Refusal::WrongName,
            ),
            (
                EnrollRequest {
                    node: "node-9".into(),
                    ..request(&t, "router-a", "router-a.acme.svr")
                },
                NOW,
                Refusal::UnknownNode,
            ),
            (
                EnrollRequest {
                    csr: "not a csr".into(),
                    ..request(&t, "router-a", "router-a.acme.svr")
                },
                NOW,
                Refusal::BadCsr,
            ),
        ];
        for (i, (req, now, want)) in cases.into_iter().enumerate() {
            // A different source each time: the rate limit is tested below.
            let src = IpAddr::from([198, 51, 100, i as u8]);
            let e = c.enroll(now, src, &req, &ca, [9; 16]).unwrap_err();
            assert_eq!(e.refusal(), want, "{e}");
            match last_event(&mut c) {
                Some(Event::EnrollRefused {
                    reason,
                    detail,
                    source,
                    ..
                }) => {
                    assert_eq!((reason, source), (want, src));
                    assert_eq!(detail, e.to_string());
                }
                e => panic!("{e:?}"),
            }
        }
        let e = c
            .enroll(
                NOW,
                SRC,
                &request(&t, "router-a", "router-b.acme.svr"),
                &ca,
                [9; 16],
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "certificate request refused: the request names \"router-b.acme.svr\"; router router-a has peering-common-name \"router-a.acme.svr\""
        );
        // The refused attempts did not burn the token.
        assert!(c
            .enroll(
                NOW,
                SRC,
                &request(&t, "router-a", "router-a.acme.svr"),
                &ca,
                [9; 16]
            )
            .is_ok());

        // Rate limit: the 6th attempt in a burst from one address.
        let other = IpAddr::from([203, 0, 113, 1]);
        for _ in 0..RateLimit::BURST {
            let _ = c.enroll(NOW, other, &request("x", "router-b", "x"), &ca, [1; 16]);
        }
        let e = c
            .enroll(NOW, other, &request("x", "router-b", "x"), &ca, [1; 16])
            .unwrap_err();
        assert_eq!(e.refusal(), Refusal::RateLimited);
    }

    #[test]
    fn revoked_router_cannot_enroll_until_readmitted() {
        let (_, ca) = authority();
        let mut c = applied();
        let t = token(&mut c, "router-a", 3600, 1);
        let ok = c
            .enroll(
                NOW,
                SRC,
                &request(&t, "router-a", "router-a.acme.svr"),
                &ca,
                [5; 16],
            )
            .unwrap();
        let pending = token(&mut c, "router-a", 3600, 2);
        assert_eq!(
            c.revoke(NOW + 5, "router-a").unwrap(),
            vec![ok.serial.clone()]
        );
        assert!(matches!(last_event(&mut c), Some(Event::Revoked { .. })));
        assert!(!c.is_current_cert("router-a", &ok.serial));
        assert_eq!(c.crl_entries(NOW + 6), [(ok.serial.clone(), NOW + 5)]);
        assert_eq!(
            c.revoke(NOW, "router-a"),
            Err(RevokeError::AlreadyRevoked {
                router: "router-a".into()
            })
        );
        assert!(matches!(
            c.revoke(NOW, "nobody"),
            Err(RevokeError::UnknownRouter { .. })
        ));
        // Its unused token died with the revocation.
        let e = c
            .enroll(
                NOW + 7,
                SRC,
                &request(&pending, "router-a", "router-a.acme.svr"),
                &ca,
                [6; 16],
            )
            .unwrap_err();
        assert_eq!(e, EnrollError::UnknownToken);
        assert_eq!(
            c.token_create(NOW, "router-a", 3600, false, [3; 32])
                .unwrap_err(),
            TokenError::Revoked {
                router: "router-a".into()
            }
        );
        assert_eq!(c.routers(NOW)[0].state, "revoked");
        let t = c
            .token_create(NOW, "router-a", 3600, true, [4; 32])
            .unwrap();
        let again = c
            .enroll(
                NOW + 8,
                SRC,
                &request(t.expose(), "router-a", "router-a.acme.svr"),
                &ca,
                [7; 16],
            )
            .unwrap();
        assert!(c.is_current_cert("router-a", &again.serial));
        assert!(!c.is_current_cert("router-a", &ok.serial));
        assert_eq!(
            c.crl_entries(NOW + 9),
            [(ok.serial.clone(), NOW + 5)],
            "readmitted: the old certificate stays revoked"
        );
    }

    #[test]
    fn tokens_need_a_known_named_router_and_a_sane_ttl() {
        let mut c = applied();
        assert!(matches!(
            c.token_create(NOW, "router-x", 3600, false, [1; 32]),
            Err(TokenError::UnknownRouter { .. })
        ));
        assert!(matches!(
            c.token_create(NOW, "router-a", 4, false, [1; 32]),
            Err(TokenError::BadTtl { ttl: 4 })
        ));
        assert!(c.token_create(NOW, "router-a", 5, false, [1; 32]).is_ok());
    }

    #[test]
    fn a_replica_follows_another_through_store_changes() {
        let (_, ca) = authority();
        let mut a = Conductor::new();
        let mut b = Conductor::new();
        let feed = |a: &mut Conductor, b: &mut Conductor| {
            for op in a.take_ops() {
                let value = match &op {
                    Op::Put { value, .. } | Op::PutExpiring { value, .. } => Some(value.as_str()),
                    Op::Delete { .. } => None,
                };
                b.store_changed(op.key(), value).unwrap();
            }
            b.settle();
        };
        a.apply(NOW, DOC).unwrap();
        let t = token(&mut a, "router-a", 3600, 1);
        feed(&mut a, &mut b);
        // b enrolls with a's token, a sees it.
        b.enroll(
            NOW,
            SRC,
            &request(&t, "router-a", "router-a.acme.svr"),
            &ca,
            [5; 16],
        )
        .unwrap();
        feed(&mut b, &mut a);
        assert!(a
            .enroll(
                NOW,
                SRC,
                &request(&t, "router-a", "router-a.acme.svr"),
                &ca,
                [6; 16]
            )
            .is_err_and(|e| matches!(e, EnrollError::TokenReused { .. })));
        a.take_ops();
        let r2 = a
            .apply(NOW, &DOC.replace("10.3.0.0/24", "10.3.0.0/23"))
            .unwrap();
        feed(&mut a, &mut b);
        assert_eq!(b.revision(), r2.number);
        assert_eq!(b.config("router-c"), a.config("router-c"));
        assert_eq!(b.routers(NOW), a.routers(NOW));
        let ops = {
            a.report(
                NOW + 1,
                "router-a",
                &StatusReport {
                    node: "node-1".into(),
                    version: version::OURS.into(),
                    applied_revision: Some(2),
                    error: None,
                },
            );
            a.take_ops()
        };
        assert!(
            ops.iter().any(
                |op| matches!(op, Op::PutExpiring { key, ttl: STATUS_TTL, .. }
                if key == "routers/router-a/status")
            ),
            "a status report is put with a lease: {ops:?}"
        );
        for op in &ops {
            if let Op::PutExpiring { key, value, .. } | Op::Put { key, value } = op {
                b.store_changed(key, Some(value)).unwrap();
            }
        }
        assert_eq!(b.routers(NOW + 2)[0].state, "up-to-date");
        // The lease expired: the status is deleted, the router has no live status left.
        b.store_changed("routers/router-a/status", None).unwrap();
        let row = &b.routers(NOW + 2)[0];
        assert_eq!(
            (row.node.as_deref(), row.last_seen, row.state.as_str()),
            (None, None, "stale")
        );
        assert!(b.store_changed("nonsense/key", Some("1")).is_err());
        assert!(b
            .store_changed("config/revision", Some("not json"))
            .is_err());
        assert_eq!(b.revision(), 2, "a bad value changes nothing");
    }

    #[test]
    fn status_reports_and_versions() {
        let (_, ca) = authority();
        let mut c = applied();
        let t = token(&mut c, "router-b", 3600, 1);
        let mut req = request(&t, "router-b", "router-b.acme.svr");
        req.version = "0.9.3".into();
        c.enroll(NOW, SRC, &req, &ca, [5; 16]).unwrap();
        let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
        assert!(events.iter().any(|e| matches!(e,
            Event::IncompatibleVersion { router, version, .. } if router == "router-b" && version == "0.9.3")));
        let report = StatusReport {
            node: "node-1".into(),
            version: version::OURS.into(),
            applied_revision: Some(1),
            error: None,
        };
        c.report(NOW + 1, "router-b", &report);
        assert!(matches!(
            last_event(&mut c),
            Some(Event::StatusReported { .. })
        ));
        let row = c
            .routers(NOW + 2)
            .into_iter()
            .find(|r| r.router == "router-b")
            .unwrap();
        assert_eq!(
            (row.applied, row.revision, row.state.as_str()),
            (Some(1), Some(1), "up-to-date")
        );
        assert_eq!(row.version.as_deref(), Some(version::OURS));
        let failed = StatusReport {
            error: Some("authority.router[0]: bad".into()),
            ..report
        };
        c.report(NOW + 3, "router-b", &failed);
        assert_eq!(c.routers(NOW + 3)[1].state, "error");
        assert_eq!(c.routers(NOW + 3 + STALE_AFTER + 1)[1].state, "stale");
    }
}
