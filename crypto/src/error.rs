//! Data-path error kinds. Small `Copy` enums: each value names one drop reason and indexes
//! one drop counter ([`CryptoError::index`]).

/// Why the anti-replay window refused a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ReplayError {
    /// The sequence number is inside the window and was already received.
    #[error("replayed sequence number (duplicate)")]
    Duplicate,
    /// The sequence number is left of the window: too old to tell, so refused.
    #[error("sequence number left of the replay window")]
    TooOld,
}

/// Why a packet could not be sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum CryptoError {
    /// The input is shorter than the smallest well-formed value (one cipher block, plus IV,
    /// trailer and HMAC where they apply).
    #[error("truncated: shorter than the smallest valid ciphertext")]
    Truncated,
    /// The ciphertext is not a whole number of 16-byte blocks.
    #[error("ciphertext length is not a multiple of the block size")]
    BadLength,
    /// The caller's buffer has no room for padding, IV, trailer or HMAC (sender side).
    #[error("buffer too small for padding, IV, trailer or HMAC")]
    BufferTooSmall,
    /// PKCS#7 padding did not check out after decryption.
    #[error("bad PKCS#7 padding")]
    BadPadding,
    /// The HMAC did not verify (or the tag had the wrong length).
    #[error("HMAC verification failed")]
    BadMac,
    /// The anti-replay window refused the sequence number.
    #[error("replay check failed: {0}")]
    Replay(ReplayError),
}

impl CryptoError {
    /// Number of distinct counter slots ([`CryptoError::index`] is below this).
    pub const COUNT: usize = 7;

    /// Counter names, indexed by [`CryptoError::index`].
    pub const NAMES: [&'static str; Self::COUNT] = [
        "crypto_truncated",
        "crypto_bad_length",
        "crypto_buffer_too_small",
        "crypto_bad_padding",
        "crypto_bad_mac",
        "crypto_replay_duplicate",
        "crypto_replay_too_old",
    ];

    /// A dense index `0..COUNT`, for per-lcore drop counter arrays.
    #[inline]
    pub const fn index(self) -> usize {
        match self {
            CryptoError::Truncated => 0,
            CryptoError::BadLength => 1,
            CryptoError::BufferTooSmall => 2,
            CryptoError::BadPadding => 3,
            CryptoError::BadMac => 4,
            CryptoError::Replay(ReplayError::Duplicate) => 5,
            CryptoError::Replay(ReplayError::TooOld) => 6,
        }
    }

    /// The counter name of this error.
    #[inline]
    pub const fn name(self) -> &'static str {
        Self::NAMES[self.index()]
    }
}

impl From<ReplayError> for CryptoError {
    #[inline]
    fn from(e: ReplayError) -> Self {
        CryptoError::Replay(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_distinct() {
        let all = [
            CryptoError::Truncated,
            CryptoError::BadLength,
            CryptoError::BufferTooSmall,
            CryptoError::BadPadding,
            CryptoError::BadMac,
            CryptoError::Replay(ReplayError::Duplicate),
            CryptoError::Replay(ReplayError::TooOld),
        ];
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert!(!e.to_string().is_empty());
            assert!(e.name().starts_with("crypto_"));
        }
    }
}
