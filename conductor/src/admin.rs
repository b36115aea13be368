//! Operator commands, the same whether they reach a running conductor over its admin
//! socket (`<state-dir>/admin.sock`, mode 0600 in a 0700 directory: root, or the user the
//! conductor runs as) or, when no conductor is running, are executed on the store file
//! directly ([`crate::store::FileStore`] refuses a commit if another process wrote in
//! between).
//!
//! Wire format on the socket: one JSON [`AdminRequest`] line, answered by one JSON
//! [`AdminResponse`] line.

use crate::core::{Conductor, TOKEN_TTL_MAX};
use crate::document::{Document, DocumentError};
use crate::RouterRow;

/// An operator command.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "command")]
pub enum AdminRequest {
    /// `apply FILE` (the file's text).
    Apply {
        /// The document.
        yaml: String,
    },
    /// `show routers`.
    ShowRouters,
    /// `token create ROUTER`.
    TokenCreate {
        /// The router.
        router: String,
        /// Lifetime in seconds.
        ttl: u64,
        /// Lift a revocation.
        readmit: bool,
    },
    /// `revoke ROUTER`.
    Revoke {
        /// The router.
        router: String,
    },
}

impl std::fmt::Debug for AdminRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminRequest::Apply { .. } => f.write_str("Apply { .. }"),
            AdminRequest::ShowRouters => f.write_str("ShowRouters"),
            AdminRequest::TokenCreate {
                router,
                ttl,
                readmit,
            } => write!(
                f,
                "TokenCreate {{ router: {router:?}, ttl: {ttl}, readmit: {readmit} }}"
            ),
            AdminRequest::Revoke { router } => write!(f, "Revoke {{ router: {router:?} }}"),
        }
    }
}

/// The answer: success or not, and text for the operator's terminal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AdminResponse {
    /// The command succeeded.
    pub ok: bool,
    /// What to print (the error when `ok` is false).
    pub text: String,
    /// `show routers` rows, for programs.
    #[serde(default)]
    pub routers: Vec<RouterRow>,
}

impl AdminResponse {
    fn ok(text: String) -> AdminResponse {
        AdminResponse {
            ok: true,
            text,
            routers: Vec::new(),
        }
    }

    fn err(e: impl std::fmt::Display) -> AdminResponse {
        AdminResponse {
            ok: false,
            text: e.to_string(),
            routers: Vec::new(),
        }
    }
}

/// The part of a request that needs no core: an apply's document, validated and rendered
/// ([`Document::parse`]), which for thousands of routers takes long enough that it must not
/// hold the core's lock (enrollments and long-poll answers wait for that lock).
pub struct Prepared {
    document: Option<Result<Document, DocumentError>>,
}

/// Does the part of `req` that needs no core (see [`Prepared`]).
pub fn prepare(req: &AdminRequest) -> Prepared {
    Prepared {
        document: match req {
            AdminRequest::Apply { yaml } => Some(Document::parse(yaml)),
            _ => None,
        },
    }
}

/// Runs `req` on `core` at `now`; `random` feeds a token.
pub fn execute(
    core: &mut Conductor,
    now: u64,
    req: &AdminRequest,
    random: [u8; 32],
) -> AdminResponse {
    execute_prepared(core, now, req, &prepare(req), random)
}

/// [`execute`] of `req`, whose [`prepare`] is `prepared`.
pub fn execute_prepared(
    core: &mut Conductor,
    now: u64,
    req: &AdminRequest,
    prepared: &Prepared,
    random: [u8; 32],
) -> AdminResponse {
    match req {
        AdminRequest::Apply { yaml } => match match &prepared.document {
            Some(parsed) => core.apply_parsed(now, yaml, parsed),
            None => core.apply(now, yaml),
        } {
            Ok(rev) => {
                let mut text = format!("revision {} stored", rev.number);
                if rev.changes.is_empty() {
                    text.push_str("\n  (no router's configuration changes)");
                }
                for c in &rev.changes {
                    text.push_str("\n  ");
                    text.push_str(&c.to_string());
                }
                AdminResponse::ok(text)
            }
            Err(e) => AdminResponse::err(e),
        },
        AdminRequest::ShowRouters => {
            let routers = core.routers(now);
            AdminResponse {
                ok: true,
                text: table(&routers, now),
                routers,
            }
        }
        AdminRequest::TokenCreate {
            router,
            ttl,
            readmit,
        } => match core.token_create(now, router, *ttl, *readmit, random) {
            Ok(secret) => {
                let name = core
                    .document()
                    .and_then(|d| d.routers().get(router))
                    .and_then(|f| f.peering_common_name.clone())
                    .unwrap_or_default();
                AdminResponse::ok(format!(
                    "{}\n(one-time enrollment token for router {router}, peering-common-name {name}; expires in {ttl}s; shown once: put it in the router's bootstrap file)",
                    secret.expose()
                ))
            }
            Err(e) => AdminResponse::err(e),
        },
        AdminRequest::Revoke { router } => match core.revoke(now, router) {
            Ok(serials) => AdminResponse::ok(format!(
                "router {router} revoked ({} certificate(s)); the next CRL lists them",
                serials.len()
            )),
            Err(e) => AdminResponse::err(e),
        },
    }
}

/// The longest token lifetime, for the CLI's help.
pub const MAX_TTL: u64 = TOKEN_TTL_MAX;

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

/// `show routers` as a table.
pub fn table(rows: &[RouterRow], now: u64) -> String {
    let mut lines = vec![[
        "ROUTER".to_owned(),
        "NODE".into(),
        "VERSION".into(),
        "REVISION".into(),
        "APPLIED".into(),
        "LAST-SEEN".into(),
        "STATE".into(),
    ]];
    for r in rows {
        lines.push([
            r.router.clone(),
            opt(&r.node),
            opt(&r.version),
            opt(&r.revision),
            opt(&r.applied),
            r.last_seen.map_or_else(
                || "never".into(),
                |t| format!("{}s ago", now.saturating_sub(t)),
            ),
            r.state.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
        .collect();
    lines
        .iter()
        .map(|l| {
            let cells: Vec<String> = l
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
