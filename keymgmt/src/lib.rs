//! Zero-trust key management for svr-fastpath (docs/background.md §7.2-§7.3, docs/background.md §6
//! "Keys"): certificates, the authenticated ephemeral DH exchange carried in BFD metadata,
//! peer keys, metadata keys, and the rotation state machine.
//!
//! - [`pki`]: load this router's [`pki::Identity`] and the authority's [`pki::TrustAnchor`],
//!   validate a peer's chain ([`pki::verify_peer`]), and generate the authority and router
//!   certificates for `svrd pki`.
//! - [`exchange`]: x25519 / dh-modp-4096, the signed transcripts, and the HKDF-SHA384 peer
//!   key derivation.
//! - [`message`]: the BFD metadata block codec (format in `docs/bfd-metadata.md`).
//! - [`peer`]: [`peer::PeerKeyState`], one per peer router, sans-IO.
//! - [`event`]: [`event::KeyEvent`] and a bounded [`event::EventHistory`].
//! - [`version`]: software versions and the compatibility rule peers and the conductor share.
//!
//! Nothing here reads a clock or does I/O: monotonic time comes in as
//! [`fastpath::time::Instant`], wall time (for certificate validity only) as unix seconds, and
//! randomness from a caller-supplied CSPRNG. Secrets are zeroized on drop and print as
//! `<redacted>`; MACs are compared in constant time (svr-crypto).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod event;
pub mod exchange;
pub mod message;
pub mod peer;
pub mod pki;
pub mod version;

pub use event::{EventHistory, EventRecord, FailureReason, KeyEvent};
pub use exchange::KeyExchangeAlgorithm;
pub use message::{BlockError, KeyKind};
pub use peer::{
    AuthSecret, BfdAuthKeys, KeyConfig, KeyStats, PeerKeyState, PeerSetup, PublishedKeys,
    RekeyInterval, RekeyRefused, Role, SetupError,
};
pub use pki::{
    certificate_summary, CertificateSummary, Identity, PeerIdentity, PkiError, TrustAnchor,
};
pub use version::SoftwareVersion;
