//! Audit events: every enrollment attempt, apply, token, revocation, status change and
//! incompatible version, with a type and fields. Serialised as JSON (`{"type": ...}`) in
//! the store and in the conductor's log; secrets (tokens, keys) never appear in them.

use std::fmt;
use std::net::IpAddr;

/// Why an enrollment was refused (the `reason` field of [`Event::EnrollRefused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// Too many attempts from the source address.
    RateLimited,
    /// The token is not one the conductor made.
    UnknownToken,
    /// The token was used already.
    TokenReused,
    /// The token is past its expiry.
    TokenExpired,
    /// The token enrolls another router.
    TokenForAnotherRouter,
    /// The router is not in the configuration.
    UnknownRouter,
    /// The node is not one of the router's.
    UnknownNode,
    /// The router is revoked.
    Revoked,
    /// The router has no `peering-common-name`.
    NoCommonName,
    /// The CSR names something other than the router's `peering-common-name`.
    WrongName,
    /// The CSR is malformed, badly signed, or asks for what is not given.
    BadCsr,
    /// The conductor could not sign.
    IssueFailed,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Event {
    /// A router enrolled and got a certificate.
    Enrolled {
        /// Router.
        router: String,
        /// Node.
        node: String,
        /// Source address.
        source: IpAddr,
        /// Certificate serial (hex).
        serial: String,
        /// Reported software version.
        version: String,
    },
    /// An enrollment was refused.
    EnrollRefused {
        /// The router named in the request.
        router: String,
        /// The node named in the request.
        node: String,
        /// Source address.
        source: IpAddr,
        /// Why, as a kind.
        reason: Refusal,
        /// Why, as the error the router received.
        detail: String,
    },
    /// An enrollment token was made.
    TokenCreated {
        /// For this router.
        router: String,
        /// Expiry (unix seconds).
        expires: u64,
    },
    /// A router was revoked.
    Revoked {
        /// Router.
        router: String,
        /// Its certificates' serials.
        serials: Vec<String>,
    },
    /// A configuration revision was stored.
    Applied {
        /// The revision.
        revision: u64,
        /// What changed, one line per router.
        changes: Vec<String>,
    },
    /// An apply was refused (nothing changed).
    ApplyRefused {
        /// The validation error.
        error: String,
    },
    /// A router reported a new applied revision or error.
    StatusReported {
        /// Router.
        router: String,
        /// Node.
        node: String,
        /// Revision it runs.
        applied: Option<u64>,
        /// Its error, if it could not apply.
        error: Option<String>,
    },
    /// A router runs a version the conductor is not compatible with (see
    /// [`crate::version::compatible`]).
    IncompatibleVersion {
        /// Router.
        router: String,
        /// Node.
        node: String,
        /// Its version.
        version: String,
        /// Ours.
        conductor: String,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line of JSON: typed, greppable, and the same as stored.
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}
