//! Metadata encryption with `svr-crypto`: the payload TLVs are encrypted in place with
//! AES-256-CBC under the receiving peer's metadata key, PKCS#7-padded, with a fresh 16-byte IV
//! written **after** the ciphertext; Payload Length then counts ciphertext + IV. Header TLVs
//! stay clear. Metadata without payload TLVs (control messages, the false-positive marker) has
//! PL = 0 and nothing to encrypt.
//!
//! Send: reserve [`MetadataRepr::sealed_len`] bytes after the L4 header, [`MetadataRepr::emit`]
//! the cleartext there, [`seal_metadata`], then encrypt the payload and append trailer and HMAC
//! (`svr_crypto`; the HMAC covers everything after the L4 header).
//!
//! Receive: [`MetadataHeader::new_checked`], [`MetadataHeader::security_identifier`] to pick
//! the key, verify the HMAC over everything after the L4 header (constant time, `svr_crypto`),
//! then [`open_metadata`].

use svr_crypto::{metadata_ciphertext_len, MetadataKey, IV_LEN};

use super::header::MetadataHeader;
use super::repr::MetadataRepr;
use super::tlv::TlvType;
use super::MetadataError;

/// Sealed metadata length for a Header Length and a cleartext payload-TLV length:
/// `header_len` if `payload_clear_len` is 0, else `header_len + padded(payload) + 16`.
pub const fn sealed_len(header_len: usize, payload_clear_len: usize) -> usize {
    if payload_clear_len == 0 {
        header_len
    } else {
        header_len + metadata_ciphertext_len(payload_clear_len)
    }
}

fn check_key(h: &MetadataHeader<&[u8]>, key: &MetadataKey) -> Result<(), MetadataError> {
    let ty = TlvType::SecurityIdentifier.raw();
    match h.security_identifier()? {
        None => Err(MetadataError::MissingTlv(ty)),
        Some(id) if id != key.rekey_index() => Err(MetadataError::BadValue(ty)),
        Some(_) => Ok(()),
    }
}

/// Encrypts, in place, the cleartext payload TLVs of the metadata that starts at `buf[0]` (as
/// written by [`MetadataRepr::emit`]), appends `iv`, and rewrites Payload Length. Returns the
/// sealed metadata length (HL + PL). `buf` must hold [`sealed_len`] bytes
/// (`BufferTooSmall`); the Security Identifier (TLV 16) must name `key`'s rekey index
/// (`MissingTlv(16)` / `BadValue(16)`); `iv` must come from a CSPRNG.
pub fn seal_metadata(
    key: &MetadataKey,
    iv: [u8; IV_LEN],
    buf: &mut [u8],
) -> Result<usize, MetadataError> {
    let (hl, pl) = {
        let h = MetadataHeader::new_checked(&buf[..])?;
        check_key(&h, key)?;
        (h.header_len(), h.payload_len())
    };
    if pl == 0 {
        return Ok(hl);
    }
    let sealed_pl = metadata_ciphertext_len(pl);
    let pl16 = u16::try_from(sealed_pl).map_err(|_| MetadataError::BadPayloadLength)?;
    let area = buf
        .get_mut(hl..hl + sealed_pl)
        .ok_or(MetadataError::BufferTooSmall)?;
    let n = key.encrypt_tlvs(area, pl, iv)?;
    debug_assert_eq!(n, sealed_pl);
    MetadataHeader::new_unchecked(&mut buf[..]).set_payload_len(pl16);
    Ok(hl + sealed_pl)
}

/// Metadata opened by [`open_metadata`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenedMetadata<'a> {
    /// The parsed metadata (names and the payload key borrow the decrypted buffer).
    pub repr: MetadataRepr<'a>,
    /// HL + PL on the wire: the original L4 payload starts at this offset.
    pub metadata_len: usize,
}

/// Decrypts, in place, the payload TLVs of the sealed metadata at `buf[0]` (buf may run on to
/// the end of the packet) and parses header and payload TLVs strictly. Call it only after the
/// packet's HMAC verified. Errors: those of [`MetadataHeader::new_checked`] and
/// [`MetadataRepr::parse`]; `MissingTlv(16)` / `BadValue(16)` if the Security Identifier is
/// absent or does not name `key`; `Decrypt(_)` if the block is not a whole number of AES
/// blocks plus IV or its padding is wrong. On error `buf` may hold garbage plaintext.
pub fn open_metadata<'a>(
    key: &MetadataKey,
    buf: &'a mut [u8],
) -> Result<OpenedMetadata<'a>, MetadataError> {
    let (hl, pl) = {
        let h = MetadataHeader::new_checked(&buf[..])?;
        check_key(&h, key)?;
        (h.header_len(), h.payload_len())
    };
    let plain = if pl == 0 {
        0
    } else {
        // hl + pl <= buf.len() was checked by new_checked.
        key.decrypt_tlvs(&mut buf[hl..hl + pl])
            .map_err(MetadataError::Decrypt)?
    };
    let buf: &'a [u8] = buf;
    let repr = MetadataRepr::parse(&buf[super::BASE_LEN..hl], &buf[hl..hl + plain])?;
    Ok(OpenedMetadata {
        repr,
        metadata_len: hl + pl,
    })
}
