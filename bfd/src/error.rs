//! Why a received BFD packet was discarded.

/// Why a received BFD packet was discarded: one variant per reason, so that each can index a
/// drop counter ([`BfdError::index`], [`crate::BfdStats::rx_discarded`]).
///
/// The first eleven are properties of the bytes alone and come from
/// [`ControlPacket::new_checked`](crate::ControlPacket::new_checked) or
/// [`ControlRepr::parse`](crate::ControlRepr::parse) (RFC 5880 §6.8.6, in the RFC's order);
/// the last two depend on the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
#[repr(u8)]
pub enum BfdError {
    /// Fewer than 24 bytes: not even the mandatory section is there.
    #[error("shorter than the 24-byte BFD control header")]
    Truncated,
    /// The version field is not 1.
    #[error("BFD version is not 1")]
    BadVersion,
    /// The length field is below 24 (below 26 with the A bit set).
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
    /// The A bit is set: this implementation runs no RFC 5880 authentication (the SVR BFD
    /// metadata block is protected by the peer key instead), so §6.8.6 says discard.
    #[error("authentication section present but no authentication in use")]
    AuthenticationPresent,
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
}

impl BfdError {
    /// Number of variants.
    pub const COUNT: usize = Self::ALL.len();

    /// Every variant, in discriminant order (`ALL[e.index()] == e`).
    pub const ALL: [BfdError; 13] = [
        BfdError::Truncated,
        BfdError::BadVersion,
        BfdError::BadLength,
        BfdError::LengthExceedsBuffer,
        BfdError::ZeroDetectMult,
        BfdError::Multipoint,
        BfdError::ZeroMyDiscriminator,
        BfdError::ZeroYourDiscriminator,
        BfdError::AuthenticationPresent,
        BfdError::ExtensionTruncated,
        BfdError::BadExtensionCookie,
        BfdError::DiscriminatorMismatch,
        BfdError::AdminDown,
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
            BfdError::AuthenticationPresent => "authentication_present",
            BfdError::ExtensionTruncated => "extension_truncated",
            BfdError::BadExtensionCookie => "bad_extension_cookie",
            BfdError::DiscriminatorMismatch => "discriminator_mismatch",
            BfdError::AdminDown => "admin_down",
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
