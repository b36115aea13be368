//! The conductor: one authority configuration with revisions, each router's part rendered
//! from it, certificate enrollment from CSRs with one-time tokens, a CRL, and an HTTPS
//! service for routers (docs/conductor.md).
//!
//! - [`Document`]: validation (exactly svrd's, per router and node) and rendering.
//! - [`Conductor`]: the sans-IO core (revisions, tokens, enrollment, status, revocation);
//!   it takes `now` and random bytes and returns [`store::Op`]s to commit and [`Event`]s.
//! - [`store`]: the key-value store with revisions (the etcd shape) and its file and
//!   memory implementations; `etcd` (feature `etcd`, on by default): the same store in an
//!   etcd cluster, shared by conductor replicas; [`etcd_access`]: its TLS and user options.
//! - [`server`], [`client`], [`admin`]: the I/O around the core.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod client;
mod core;
mod document;
pub mod enroll;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod etcd_access;
mod event;
pub mod http;
pub mod server;
pub mod store;
pub mod version;

pub use crate::core::{
    ApplyError, CertRecord, Conductor, EnrollError, EnrollRequest, Enrolled, LoadError, Revision,
    RevokeError, RouterConfig, RouterRow, RouterStatus, StatusReport, TokenError, STATUS_TTL,
};
pub use document::{
    Change, ChangeKind, Document, DocumentError, Part, RouterChange, RouterChangeKind, RouterFacts,
};
pub use event::{Event, Refusal};
