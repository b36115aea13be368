//! SVR metadata on the wire: the 12-byte metadata header, the TLV walker, typed TLV values,
//! strict parsing into [`MetadataRepr`], emission in the fixed transmit order, and the
//! metadata encryption helpers. The normative description is `docs/protocol.md` ("svr-fastpath
//! wire protocol, version 1"); this module implements it and carries its golden vectors.
//!
//! ```text
//! | IP | L4 | cookie (8) | ver|HL (2) | PL (2) | header TLVs | payload TLVs (ciphertext ‖ IV) | original payload | trailer | HMAC |
//!           ^ metadata offset 0                 ^ 12          ^ HL                           ^ HL + PL
//! ```
//!
//! | module | contents |
//! | --- | --- |
//! | [`header`] | [`MetadataHeader`] view, [`COOKIE`], [`BASE_LEN`], [`is_metadata`], the false-positive marker |
//! | [`tlv`] | [`TlvType`] (every registry type, with its [`Section`]), [`TlvIter`], [`Tlv`], [`TlvWriter`] |
//! | [`value`] | typed TLV values ([`TlvValue`], [`SessionContext`], [`ControlReason`], [`PayloadKeyTlv`], …) |
//! | [`repr`] | [`MetadataRepr`] (strict parse, emit in transmit order), [`ForwardMetadata`], [`ReverseMetadata`], [`ControlMessage`] |
//! | [`seal`] | [`seal_metadata`] / [`open_metadata`]: payload-TLV encryption with `svr-crypto` |
//!
//! # Panic and allocation contract
//!
//! As in [`crate::wire`]: untrusted bytes go through [`MetadataHeader::new_checked`], after
//! which no getter panics; the TLV walk and [`MetadataRepr::parse`] never panic and never
//! allocate (names are `&str` borrowed from the packet). Emission writes into a caller
//! buffer and returns [`MetadataError::BufferTooSmall`] rather than panicking.
//!
//! # What the HMAC covers
//!
//! This module does not compute the HMAC; the data path does, with `svr-crypto`. The HMAC
//! (HMAC-SHA384 truncated to 24 bytes, encrypt-then-MAC) covers **every byte after the L4
//! header**: the metadata header, the header TLVs, the payload-TLV ciphertext and its IV, the
//! (encrypted) original payload and the 8-byte sequence trailer. The IP and L4 headers are not
//! covered, so NAT and IPv4/IPv6 translation do not break it. A metadata packet is signed with
//! the HMAC key of the metadata key named by the Security Identifier (TLV 16); the receiver
//! verifies it **before** calling [`open_metadata`].

use core::fmt;

use svr_crypto::CryptoError;

/// Big-endian helpers shared with [`crate::wire`].
use crate::wire::be;

pub mod header;
pub mod repr;
pub mod seal;
pub mod tlv;
pub mod value;

#[cfg(test)]
mod test;

pub use header::{
    emit_false_positive_marker, is_false_positive_marker, is_metadata, MetadataHeader, BASE_LEN,
    COOKIE, MAX_HEADER_LEN, VERSION,
};
pub use repr::{ControlMessage, ForwardMetadata, MetadataRepr, ReverseMetadata};
pub use seal::{open_metadata, seal_metadata, sealed_len, OpenedMetadata};
pub use tlv::{Section, Tlv, TlvIter, TlvType, TlvWriter, TLV_HEADER_LEN};
pub use value::{
    check_name, Context, ControlReason, Fragment, HealthCheck, ModifyRequest, MulticastEgressList,
    MulticastGroup, PathMetrics, PayloadCipher, PayloadKeyTlv, Sack, SessionContext, TlvValue,
    MAX_NAME_LEN, PAYLOAD_KEY_TLV_LEN,
};

/// Why metadata could not be parsed, emitted, sealed or opened. Small and `Copy`; each value
/// names one drop reason and [`index`](Self::index) selects its counter slot. Variants that
/// carry a `u16` carry the raw TLV type (for logs); they share one counter per variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetadataError {
    /// Shorter than the 12-byte metadata header.
    Truncated,
    /// The first 8 bytes are not the SVR cookie.
    BadCookie,
    /// The version nibble is not 1.
    BadVersion,
    /// Header length below 12, or beyond the buffer (or, on emit, above 4095).
    BadHeaderLength,
    /// Header length + payload length beyond the buffer (or, on emit, above 65535).
    BadPayloadLength,
    /// A TLV (its 4-byte type/length, or its value) runs past the end of its section.
    TlvOverrun,
    /// A TLV of a known type sits in the other section (header vs payload).
    WrongSection(u16),
    /// A TLV type appears twice (forward contexts 2 and 3 count as one type, as do 4 and 5).
    DuplicateTlv(u16),
    /// A TLV's length is not the one its type requires.
    BadTlvLength(u16),
    /// A name TLV is empty, longer than 255 bytes, or not printable ASCII.
    BadName(u16),
    /// A TLV value the protocol forbids (unknown payload cipher, multicast family not 4/6).
    BadValue(u16),
    /// A TLV required by the message kind (e.g. Service Name in forward metadata) is absent.
    MissingTlv(u16),
    /// The caller's buffer has no room for the emitted or sealed metadata.
    BufferTooSmall,
    /// The payload TLVs did not decrypt (length, padding) under the metadata key.
    Decrypt(CryptoError),
}

impl MetadataError {
    /// Number of distinct counter slots ([`index`](Self::index) is below this).
    pub const COUNT: usize = 14;

    /// Counter names, indexed by [`index`](Self::index).
    pub const NAMES: [&'static str; Self::COUNT] = [
        "metadata_truncated",
        "metadata_bad_cookie",
        "metadata_bad_version",
        "metadata_bad_header_length",
        "metadata_bad_payload_length",
        "metadata_tlv_overrun",
        "metadata_wrong_section",
        "metadata_duplicate_tlv",
        "metadata_bad_tlv_length",
        "metadata_bad_name",
        "metadata_bad_value",
        "metadata_missing_tlv",
        "metadata_buffer_too_small",
        "metadata_decrypt",
    ];

    /// A dense index `0..COUNT`, for per-worker drop counter arrays.
    #[inline]
    pub const fn index(self) -> usize {
        match self {
            MetadataError::Truncated => 0,
            MetadataError::BadCookie => 1,
            MetadataError::BadVersion => 2,
            MetadataError::BadHeaderLength => 3,
            MetadataError::BadPayloadLength => 4,
            MetadataError::TlvOverrun => 5,
            MetadataError::WrongSection(_) => 6,
            MetadataError::DuplicateTlv(_) => 7,
            MetadataError::BadTlvLength(_) => 8,
            MetadataError::BadName(_) => 9,
            MetadataError::BadValue(_) => 10,
            MetadataError::MissingTlv(_) => 11,
            MetadataError::BufferTooSmall => 12,
            MetadataError::Decrypt(_) => 13,
        }
    }

    /// The counter name of this error (snake_case, `metadata_` prefix).
    #[inline]
    pub const fn name(self) -> &'static str {
        Self::NAMES[self.index()]
    }
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::WrongSection(t)
            | MetadataError::DuplicateTlv(t)
            | MetadataError::BadTlvLength(t)
            | MetadataError::BadName(t)
            | MetadataError::BadValue(t)
            | MetadataError::MissingTlv(t) => write!(f, "{} (TLV type {t})", self.name()),
            MetadataError::Decrypt(e) => write!(f, "{}: {e}", self.name()),
            _ => f.write_str(self.name()),
        }
    }
}

impl std::error::Error for MetadataError {}

impl From<CryptoError> for MetadataError {
    #[inline]
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::BufferTooSmall => MetadataError::BufferTooSmall,
            other => MetadataError::Decrypt(other),
        }
    }
}
