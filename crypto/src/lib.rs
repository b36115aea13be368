//! SVR packet crypto for the svr-fastpath data path.
//!
//! Keys are installed once ([`MetadataKey::new`], [`PayloadKey::new`], or
//! [`PayloadKey::new_many`] for up to 8 payload keys side by side in the SHA-512 lanes): both
//! AES-256 key schedules are expanded and the HMAC inner/outer pads absorbed at install, never
//! per packet.
//! Per-packet functions work in place in caller buffers and never allocate. Secrets are
//! zeroized on drop and print as `<redacted>`; MACs are compared in constant time. Errors are
//! one small `Copy` enum, [`CryptoError`], whose [`CryptoError::index`] indexes drop counters.
//!
//! # Wire protocol (part of the SVR contract, see `docs/background.md` §6)
//!
//! All integers are big-endian. `‖` is concatenation.
//!
//! ## Metadata (payload TLVs)
//! `block = AES-256-CBC(K_md, IV, PKCS7(tlvs)) ‖ IV`, with a fresh random 16-byte `IV` from
//! the sender's CSPRNG placed **after** the ciphertext (draft -00 §4.2.3). The metadata
//! header's payload length counts ciphertext and IV ([`metadata_ciphertext_len`]). `K_md` is
//! the receiving peer's metadata key, identified by its rekey index in the Security
//! Identifier TLV (16). Metadata packets are signed with that key's 48-byte HMAC key.
//!
//! ## Payload
//! `ciphertext = AES-256-CBC(K_p, IV, PKCS7(payload))` under the session's 32-byte payload key
//! `K_p` (TLV 46). The IV is not sent; it is the "encrypted counter" IV of NIST SP 800-38A
//! appendix C, `IV = AES-256-Encrypt(K_p, nonce_block)`, where ([`nonce_block`]):
//!
//! ```text
//! nonce_block = direction (1 B: 0 forward, 1 reverse)
//!             ‖ payload-key index (1 B)
//!             ‖ 0x00 * 6
//!             ‖ sequence number (8 B, u64 BE; the same value as the trailer)
//! ```
//!
//! Both directions share `K_p`; the direction byte keeps their IVs apart, and the key index
//! keeps IVs apart across a payload re-key.
//!
//! ## Trailer and HMAC (encrypt-then-MAC)
//! ```text
//! | IP | L4 | [metadata] | ciphertext | seq (8 B, u64 BE) | HMAC-SHA384(K_mac, covered)[..24] |
//!           \________________ covered ________________/
//! ```
//! `covered` is everything after the L4 header (so NAT and IPv4/IPv6 translation do not
//! break it). The tag is HMAC-SHA384 truncated to its first 24 bytes ([`HMAC_LEN`], the RFC
//! 4868 length). The sequence number counts per direction and per session; the receiver keeps
//! a [`ReplayWindow`] of [`REPLAY_WINDOW`] (2048) packets.
//!
//! `K_mac` is the metadata key's HMAC key on metadata packets. On data packets it is derived
//! from the payload key:
//!
//! ```text
//! okm           = HKDF-SHA384(IKM = K_p, salt = none (48 zero bytes),
//!                             info = "svr-fastpath payload hmac v1", L = 96)
//! K_mac_forward = okm[0..48]     (identical to the L = 48 output)
//! K_mac_reverse = okm[48..96]
//! ```
//!
//! One HMAC key per direction: both directions share `K_p`, so with a single HMAC key a
//! forward packet reflected back at its sender as a reverse packet would authenticate (CBC
//! with the wrong IV garbles only the first block, so its padding still checks) and be
//! delivered with 16 corrupted bytes. Separate keys make a reflected packet a [`CryptoError::BadMac`].
//!
//! ## Receive order
//! [`open_payload`]: length checks → parse the sequence number → [`ReplayWindow::check`] →
//! verify the HMAC (constant time) → decrypt and check padding → [`ReplayWindow::mark`].
//! A packet that does not authenticate never moves the window.
//!
//! # Bursts
//!
//! [`seal_burst`] and [`open_burst`] produce exactly the bytes and results of
//! [`seal_payload`] and [`open_payload`] applied packet by packet, but interleave the
//! independent CBC chains and SHA-512 compressions of up to 32 packets in SIMD lanes (see
//! the `burst` module). The kernels are picked at run time ([`Backend::detect`]); the only
//! `unsafe` code of the crate is in those x86-64 kernels.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod burst;
mod error;
#[cfg(test)]
mod kernel_tests;
mod keys;
mod mode;
mod replay;
mod sha512;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86;

pub use burst::{
    open_burst, open_burst_with, seal_burst, seal_burst_with, sign_burst, Backend, OpenJob,
    SealJob, MAX_BURST,
};
pub use error::{CryptoError, ReplayError};
pub use keys::{
    metadata_ciphertext_len, nonce_block, payload_ciphertext_len, MacKey, MetadataKey, PacketKey,
    PayloadKey,
};
pub use replay::{ReplayWindow, SharedReplayWindow, REPLAY_WINDOW};

/// AES block size.
pub const BLOCK: usize = 16;
/// Length of the metadata IV that follows the metadata ciphertext.
pub const IV_LEN: usize = 16;
/// Length of the truncated HMAC-SHA384 tag at the end of every SVR packet.
pub const HMAC_LEN: usize = 24;
/// Length of the sequence-number trailer before the HMAC.
pub const TRAILER_LEN: usize = 8;
/// AES-256 key length (metadata encryption key, payload key).
pub const AES_KEY_LEN: usize = 32;
/// HMAC-SHA384 key length (metadata HMAC key, each derived payload HMAC key).
pub const METADATA_HMAC_KEY_LEN: usize = 48;
/// HKDF-SHA384 `info` for the payload HMAC keys (see the crate doc).
pub const PAYLOAD_HMAC_INFO: &[u8] = b"svr-fastpath payload hmac v1";
/// Bytes [`seal_payload`] adds after the ciphertext: trailer and HMAC.
pub const SEAL_OVERHEAD: usize = TRAILER_LEN + HMAC_LEN;
/// Smallest covered region of a sealed data packet: one block, trailer, HMAC.
pub const MIN_SEALED_LEN: usize = BLOCK + TRAILER_LEN + HMAC_LEN;

/// Direction of a packet within its session. Forward is client to server (the SYN sender
/// for TCP, the first sender for UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Direction {
    /// Client to server.
    Forward = 0,
    /// Server to client.
    Reverse = 1,
}

/// Space [`seal_payload`] needs after `covered_start` for `plain_len` bytes of payload.
#[inline]
pub const fn sealed_len(plain_len: usize) -> usize {
    payload_ciphertext_len(plain_len) + SEAL_OVERHEAD
}

/// Seal a data packet in place: encrypt `buf[covered_start..covered_start + plain_len]`,
/// append the trailer (`seq`, u64 BE) and the HMAC over ciphertext and trailer, signed with
/// the HMAC key of `dir`. `buf[..covered_start]` (IP and L4 headers) is not touched.
/// Returns the new total length, `covered_start + sealed_len(plain_len)`; `buf` must be at
/// least that long.
pub fn seal_payload(
    key: &PayloadKey,
    dir: Direction,
    seq: u64,
    buf: &mut [u8],
    covered_start: usize,
    plain_len: usize,
) -> Result<usize, CryptoError> {
    let room = buf
        .len()
        .checked_sub(covered_start)
        .ok_or(CryptoError::BufferTooSmall)?;
    // plain_len < room <= isize::MAX, so sealed_len cannot overflow.
    if plain_len >= room || sealed_len(plain_len) > room {
        return Err(CryptoError::BufferTooSmall);
    }
    let covered = &mut buf[covered_start..covered_start + sealed_len(plain_len)];
    let ct_len = key.encrypt(dir, seq, covered, plain_len)?;
    let (signed, tag) = covered.split_at_mut(ct_len + TRAILER_LEN);
    signed[ct_len..].copy_from_slice(&seq.to_be_bytes());
    tag.copy_from_slice(&key.sign(dir, signed));
    Ok(covered_start + ct_len + SEAL_OVERHEAD)
}

/// Open a data packet in place. `buf` is the whole packet, trimmed to its true length;
/// `buf[covered_start..]` is ciphertext ‖ trailer ‖ HMAC. On success the plaintext is
/// `buf[covered_start..covered_start + plain_len]` and `(plain_len, seq)` is returned.
///
/// Order: length checks, parse the sequence number, `replay.check`, verify the HMAC of `dir`
/// (constant time), decrypt and check the padding, `replay.mark`. The window moves only for
/// packets that authenticate and decrypt.
pub fn open_payload(
    key: &PayloadKey,
    dir: Direction,
    buf: &mut [u8],
    covered_start: usize,
    replay: &mut ReplayWindow,
) -> Result<(usize, u64), CryptoError> {
    let covered_len = buf
        .len()
        .checked_sub(covered_start)
        .ok_or(CryptoError::Truncated)?;
    if covered_len < MIN_SEALED_LEN {
        return Err(CryptoError::Truncated);
    }
    let ct_len = covered_len - SEAL_OVERHEAD;
    if !ct_len.is_multiple_of(BLOCK) {
        return Err(CryptoError::BadLength);
    }
    let covered = &mut buf[covered_start..];
    let (signed, tag) = covered.split_at_mut(ct_len + TRAILER_LEN);
    let mut seq_be = [0u8; TRAILER_LEN];
    seq_be.copy_from_slice(&signed[ct_len..]);
    let seq = u64::from_be_bytes(seq_be);

    replay.check(seq)?;
    key.verify(dir, signed, tag)?;
    let plain_len = key.decrypt(dir, seq, &mut signed[..ct_len])?;
    replay.mark(seq);
    Ok((plain_len, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(payload_ciphertext_len(0), 16);
        assert_eq!(payload_ciphertext_len(15), 16);
        assert_eq!(payload_ciphertext_len(16), 32);
        assert_eq!(payload_ciphertext_len(1500), 1504);
        assert_eq!(metadata_ciphertext_len(0), 32);
        assert_eq!(metadata_ciphertext_len(16), 48);
        assert_eq!(sealed_len(0), 48);
        assert_eq!(sealed_len(1400), 1408 + 32);
        assert_eq!(MIN_SEALED_LEN, sealed_len(0));
    }

    #[test]
    fn seal_layout_and_open() {
        let key = PayloadKey::new(4, &[0x24; 32]);
        let header = [0xa5u8; 28];
        let payload = b"hello, secure vector routing";
        let mut buf = [0u8; 128];
        buf[..28].copy_from_slice(&header);
        buf[28..28 + payload.len()].copy_from_slice(payload);
        let total =
            seal_payload(&key, Direction::Forward, 77, &mut buf, 28, payload.len()).unwrap();
        assert_eq!(total, 28 + 32 + 8 + 24);
        assert_eq!(buf[..28], header);
        assert_eq!(buf[60..68], 77u64.to_be_bytes());
        let tag = key.sign(Direction::Forward, &buf[28..68]);
        assert_eq!(buf[68..92], tag);

        let mut w = ReplayWindow::new();
        let mut rx = buf[..total].to_vec();
        let (n, seq) = open_payload(&key, Direction::Forward, &mut rx, 28, &mut w).unwrap();
        assert_eq!((n, seq), (payload.len(), 77));
        assert_eq!(&rx[28..28 + n], payload);
        assert_eq!(rx[..28], header);
    }

    #[test]
    fn seal_buffer_checks() {
        let key = PayloadKey::new(0, &[1; 32]);
        let mut buf = [0u8; 100];
        assert_eq!(
            seal_payload(&key, Direction::Forward, 0, &mut buf, 101, 0),
            Err(CryptoError::BufferTooSmall)
        );
        // 100 - 52 = 48 = sealed_len(0..=15)
        assert_eq!(
            seal_payload(&key, Direction::Forward, 0, &mut buf, 52, 15),
            Ok(100)
        );
        assert_eq!(
            seal_payload(&key, Direction::Forward, 0, &mut buf, 52, 16),
            Err(CryptoError::BufferTooSmall)
        );
        assert_eq!(
            seal_payload(&key, Direction::Forward, 0, &mut buf, 0, usize::MAX),
            Err(CryptoError::BufferTooSmall)
        );
    }

    #[test]
    fn reflected_packet_does_not_authenticate() {
        let key = PayloadKey::new(0, &[9; 32]);
        let mut buf = vec![0x77u8; 200];
        let total = seal_payload(&key, Direction::Forward, 5, &mut buf, 0, 100).unwrap();
        buf.truncate(total);
        let mut w = ReplayWindow::new();
        assert_eq!(
            open_payload(&key, Direction::Reverse, &mut buf.clone(), 0, &mut w),
            Err(CryptoError::BadMac)
        );
        assert_eq!(w.highest(), None);
        assert!(open_payload(&key, Direction::Forward, &mut buf, 0, &mut w).is_ok());
    }
}
