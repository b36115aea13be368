//! Why a received BFD packet was discarded.

/// Why a received BFD packet was discarded: one variant per reason, so that each can index a
/// drop counter ([`BfdError::index`], [`crate::BfdStats::rx_discarded`]).
///
/// The first twelve are properties of the bytes alone and come from
/// [`ControlPacket::new_checked`](crate::ControlPacket::new_checked) or
/// [`ControlRepr::parse`](crate::ControlRepr::parse) (RFC 5880 §6.8.6, in the RFC's order);
/// the rest depend on the session: discriminators, AdminDown, the hardening rules of the
/// crate doc ("Hardening") and authentication (docs/bfd-metadata.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
#[repr(u8)]
pub enum BfdError {
    /// Fewer than 24 bytes: not even the mandatory section is there.
    #[error("shorter than the 24-byte BFD control header")]
    Truncated,
    /// The version field is not 1.
    #[error("BFD version is not 1")]
    BadVersion,
    /// The length field is not 24 without the A bit, or below 26 with it.
    #[error("BFD length field below the minimum")]
    BadLength,
    /// The length field is larger than the UDP payload.
    #[error("BFD length field exceeds the UDP payload")]
    LengthExceedsBuffer,
    /// Detect Mult is zero.
    #[error("detect multiplier is zero")]
    ZeroDetectMult,
    /// The M (multipoint) bit is set.
    #[error("multipoint bit set")]
    Multipoint,
    /// My Discriminator is zero.
    #[error("my discriminator is zero")]
    ZeroMyDiscriminator,
    /// Your Discriminator is zero while State is Init or Up.
    #[error("your discriminator is zero in state Init or Up")]
    ZeroYourDiscriminator,
    /// The A bit is set but Auth Type is not 255 (Meticulous Keyed HMAC-SHA256), the only
    /// type this crate speaks.
    #[error("authentication type other than meticulous keyed HMAC-SHA256")]
    UnsupportedAuthType,
    /// Auth Len is not 40, or BFD Length is not 64 (24 + the 40-byte section).
    #[error("authentication section length is not 40")]
    BadAuthLength,
    /// Bytes follow the BFD control packet, but fewer than the 8 of an SVR cookie.
    #[error("trailing bytes too short for an SVR metadata block")]
    ExtensionTruncated,
    /// Bytes follow the BFD control packet but do not start with the SVR cookie.
    #[error("trailing bytes do not start with the SVR cookie")]
    BadExtensionCookie,
    /// Your Discriminator is nonzero and is not this session's local discriminator.
    #[error("your discriminator does not select this session")]
    DiscriminatorMismatch,
    /// The session is AdminDown, where §6.8.6 discards every received packet.
    #[error("session is administratively down")]
    AdminDown,
    /// Your Discriminator is zero while our session is Init or Up: such a packet (a Down or
    /// AdminDown that names no session) may not change an established session, so it is
    /// discarded (the peer's silence, not its word, takes the session down).
    #[error("your discriminator is zero while the session is init or up")]
    UnselectedInSession,
    /// The D bit is set: our peers never run Demand mode, and honouring it would silence our
    /// transmissions.
    #[error("demand bit set")]
    DemandMode,
    /// Required Min RX Interval is zero, which would silence our transmissions.
    #[error("required min rx interval is zero")]
    ZeroRequiredMinRx,
    /// Accept keys are set but the packet carries no authentication section.
    #[error("authentication required but absent")]
    AuthMissing,
    /// The Auth Key ID is not one of the accept keys.
    #[error("authentication key id not accepted")]
    UnknownAuthKey,
    /// The HMAC-SHA256 digest does not verify under the key of that id.
    #[error("authentication digest does not verify")]
    BadAuthDigest,
    /// The sequence number is not after the last one accepted (a replay, meticulous rule).
    #[error("authentication sequence number replayed")]
    AuthReplay,
    /// A genuine packet accepted with no sequence number known yet (the first after a reset,
    /// so possibly an old one replayed) would take an Init or Up session down: refused.
    #[error("unverified sequence may not take the session down")]
    UnverifiedSequenceDown,
}

impl BfdError {
    /// Number of variants.
    pub const COUNT: usize = Self::ALL.len();

    /// Every variant, in discriminant order (`ALL[e.index()] == e`).
    pub const ALL: [BfdError; 22] = [
        BfdError::Truncated,
        BfdError::BadVersion,
        BfdError::BadLength,
        BfdError::LengthExceedsBuffer,
        BfdError::ZeroDetectMult,
        BfdError::Multipoint,
        BfdError::ZeroMyDiscriminator,
        BfdError::ZeroYourDiscriminator,
        BfdError::UnsupportedAuthType,
        BfdError::BadAuthLength,
        BfdError::ExtensionTruncated,
        BfdError::BadExtensionCookie,
        BfdError::DiscriminatorMismatch,
        BfdError::AdminDown,
        BfdError::UnselectedInSession,
        BfdError::DemandMode,
        BfdError::ZeroRequiredMinRx,
        BfdError::AuthMissing,
        BfdError::UnknownAuthKey,
        BfdError::BadAuthDigest,
        BfdError::AuthReplay,
        BfdError::UnverifiedSequenceDown,
    ];

    /// Position of this reason in a counter array of [`BfdError::COUNT`] entries.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A snake_case name for counters and logs.
    pub const fn name(self) -> &'static str {
        match self {
            BfdError::Truncated => "truncated",
            BfdError::BadVersion => "bad_version",
            BfdError::BadLength => "bad_length",
            BfdError::LengthExceedsBuffer => "length_exceeds_buffer",
            BfdError::ZeroDetectMult => "zero_detect_mult",
            BfdError::Multipoint => "multipoint",
            BfdError::ZeroMyDiscriminator => "zero_my_discriminator",
            BfdError::ZeroYourDiscriminator => "zero_your_discriminator",
            BfdError::UnsupportedAuthType => "unsupported_auth_type",
            BfdError::BadAuthLength => "bad_auth_length",
            BfdError::ExtensionTruncated => "extension_truncated",
            BfdError::BadExtensionCookie => "bad_extension_cookie",
            BfdError::DiscriminatorMismatch => "discriminator_mismatch",
            BfdError::AdminDown => "admin_down",
            BfdError::UnselectedInSession => "unselected_in_session",
            BfdError::DemandMode => "demand_mode",
            BfdError::ZeroRequiredMinRx => "zero_required_min_rx",
            BfdError::AuthMissing => "auth_missing",
            BfdError::UnknownAuthKey => "unknown_auth_key",
            BfdError::BadAuthDigest => "bad_auth_digest",
            BfdError::AuthReplay => "auth_replay",
            BfdError::UnverifiedSequenceDown => "unverified_sequence_down",
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn all_is_in_index_order_and_names_are_unique() {
        for (i, e) in BfdError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
        }
        let mut names: Vec<_> = BfdError::ALL.iter().map(|e| e.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BfdError::COUNT);
    }
}
