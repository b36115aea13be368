//! The 12-byte SVR metadata header (draft-menon-svr-00 §3.1) and the false-positive marker
//! (§3.1.1).
//!
//! ```text
//! | Cookie (8 B) 4C 48 DB C6 DD F6 67 0C | Version (4 b) = 1 | Header Length (12 b) | Payload Length (16 b) |
//! | header TLVs (HL - 12 bytes, clear) | payload TLVs (PL bytes: ciphertext ‖ IV) |
//! ```
//!
//! Header Length counts from offset 0 to the end of the header TLVs (so it includes the 12-byte
//! base); Payload Length counts the payload-TLV area only.

use super::tlv::{Section, TlvIter, TlvType};
use super::{be, MetadataError};
use crate::wire::{Field, Rest};

mod field {
    #![allow(non_snake_case)]
    use crate::wire::{Field, Rest};

    pub const COOKIE: Field = 0..8;
    pub const VER_HL: Field = 8..10;
    pub const PAYLOAD_LEN: Field = 10..12;
    pub const HEADER_TLVS_START: usize = PAYLOAD_LEN.end;

    pub const fn HEADER_TLVS(header_len: usize) -> Field {
        HEADER_TLVS_START..header_len
    }
    pub const fn PAYLOAD_TLVS(header_len: usize, payload_len: usize) -> Field {
        header_len..header_len + payload_len
    }
    pub const fn REST(metadata_len: usize) -> Rest {
        metadata_len..
    }
}

/// The SVR cookie, as bytes on the wire.
pub const COOKIE: [u8; 8] = [0x4c, 0x48, 0xdb, 0xc6, 0xdd, 0xf6, 0x67, 0x0c];
/// Length of the metadata header without TLVs; the smallest legal Header Length.
pub const BASE_LEN: usize = field::HEADER_TLVS_START;
/// The only metadata version defined.
pub const VERSION: u8 = 1;
/// The largest Header Length the 12-bit field can hold.
pub const MAX_HEADER_LEN: usize = 0x0fff;

const HL_MASK: u16 = 0x0fff;

/// Whether an L4 payload starts with the SVR cookie. This is only the byte test; a receiver
/// also requires the packet to be addressed to one of its waypoints with a new 5-tuple
/// (draft -00 §3.1). A sender uses the same test to decide that a payload needs the
/// false-positive marker.
#[inline]
pub fn is_metadata(l4_payload: &[u8]) -> bool {
    l4_payload.get(field::COOKIE) == Some(&COOKIE[..])
}

/// Whether an L4 payload starts with a bare false-positive marker: cookie, version 1,
/// HL = 12, PL = 0. The receiver strips these 12 bytes.
pub fn is_false_positive_marker(l4_payload: &[u8]) -> bool {
    MetadataHeader::new_checked(l4_payload)
        .map(|h| h.is_false_positive_marker())
        .unwrap_or(false)
}

/// Writes a bare metadata header (HL = 12, PL = 0) into `buf[..12]`, marking an original
/// payload that happens to start with the cookie. Returns 12.
pub fn emit_false_positive_marker(buf: &mut [u8]) -> Result<usize, MetadataError> {
    let buf = buf
        .get_mut(..BASE_LEN)
        .ok_or(MetadataError::BufferTooSmall)?;
    let mut h = MetadataHeader::new_unchecked(buf);
    h.init(BASE_LEN as u16, 0);
    Ok(BASE_LEN)
}

/// A view of SVR metadata at L4-payload offset 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> MetadataHeader<T> {
    /// Wraps `buffer` without any check (for emitting).
    pub const fn new_unchecked(buffer: T) -> MetadataHeader<T> {
        MetadataHeader { buffer }
    }

    /// Wraps untrusted bytes: buffer ≥ 12 (`Truncated`), cookie (`BadCookie`), version 1
    /// (`BadVersion`), then [`check_len`](Self::check_len). After this no getter panics.
    pub fn new_checked(buffer: T) -> Result<MetadataHeader<T>, MetadataError> {
        let h = Self::new_unchecked(buffer);
        let data = h.buffer.as_ref();
        if data.len() < BASE_LEN {
            return Err(MetadataError::Truncated);
        }
        if data[field::COOKIE] != COOKIE {
            return Err(MetadataError::BadCookie);
        }
        if h.version() != VERSION {
            return Err(MetadataError::BadVersion);
        }
        h.check_len()?;
        Ok(h)
    }

    /// Cross-checks buffer length, Header Length and Payload Length:
    ///
    /// * buffer < 12: `Truncated`;
    /// * HL < 12 or HL > buffer: `BadHeaderLength`;
    /// * HL + PL > buffer: `BadPayloadLength`.
    ///
    /// The buffer may extend past HL + PL (original payload, trailer, HMAC).
    pub fn check_len(&self) -> Result<(), MetadataError> {
        let len = self.buffer.as_ref().len();
        if len < BASE_LEN {
            return Err(MetadataError::Truncated);
        }
        let hl = self.header_len();
        if hl < BASE_LEN || hl > len {
            return Err(MetadataError::BadHeaderLength);
        }
        if hl + self.payload_len() > len {
            return Err(MetadataError::BadPayloadLength);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The cookie bytes.
    pub fn cookie(&self) -> &[u8] {
        &self.buffer.as_ref()[field::COOKIE]
    }

    /// Version (high nibble of byte 8).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_HL.start] >> 4
    }

    /// Header Length in bytes, including the 12-byte base.
    pub fn header_len(&self) -> usize {
        usize::from(be::u16(&self.buffer.as_ref()[field::VER_HL]) & HL_MASK)
    }

    /// Payload Length in bytes (payload-TLV ciphertext and IV, or cleartext TLVs before
    /// sealing).
    pub fn payload_len(&self) -> usize {
        usize::from(be::u16(&self.buffer.as_ref()[field::PAYLOAD_LEN]))
    }

    /// HL + PL: the offset of the original L4 payload.
    pub fn metadata_len(&self) -> usize {
        self.header_len() + self.payload_len()
    }

    /// The header-TLV section, `[12, HL)`.
    pub fn header_tlvs(&self) -> &[u8] {
        let r: Field = field::HEADER_TLVS(self.header_len());
        &self.buffer.as_ref()[r]
    }

    /// The payload-TLV section, `[HL, HL + PL)`.
    pub fn payload_tlvs(&self) -> &[u8] {
        let r: Field = field::PAYLOAD_TLVS(self.header_len(), self.payload_len());
        &self.buffer.as_ref()[r]
    }

    /// Everything after the metadata: original payload (and trailer and HMAC, if the buffer
    /// holds them).
    pub fn rest(&self) -> &[u8] {
        let r: Rest = field::REST(self.metadata_len());
        &self.buffer.as_ref()[r]
    }

    /// A TLV walk over the header section.
    pub fn header_iter(&self) -> TlvIter<'_> {
        TlvIter::new(self.header_tlvs(), Section::Header)
    }

    /// Whether this is a bare false-positive marker (HL = 12, PL = 0).
    pub fn is_false_positive_marker(&self) -> bool {
        self.header_len() == BASE_LEN && self.payload_len() == 0
    }

    /// The Security Identifier (TLV 16) from the clear header TLVs, which names the metadata
    /// key to verify and decrypt with. Walks the header section strictly (overrun, wrong
    /// section, duplicate 16 and a bad length are errors); `Ok(None)` if absent.
    pub fn security_identifier(&self) -> Result<Option<u32>, MetadataError> {
        let mut found = None;
        for tlv in self.header_iter() {
            let tlv = tlv?;
            if tlv.ty.section() == Some(Section::Payload) {
                return Err(MetadataError::WrongSection(tlv.ty.raw()));
            }
            if tlv.ty == TlvType::SecurityIdentifier {
                if found.is_some() {
                    return Err(MetadataError::DuplicateTlv(tlv.ty.raw()));
                }
                if tlv.value.len() != 4 {
                    return Err(MetadataError::BadTlvLength(tlv.ty.raw()));
                }
                found = Some(be::u32(tlv.value));
            }
        }
        Ok(found)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> MetadataHeader<T> {
    /// Writes the cookie, version 1, `header_len` and `payload_len`.
    pub fn init(&mut self, header_len: u16, payload_len: u16) {
        self.set_cookie();
        self.set_version(VERSION);
        self.set_header_len(header_len);
        self.set_payload_len(payload_len);
    }

    /// Writes the cookie.
    pub fn set_cookie(&mut self) {
        self.buffer.as_mut()[field::COOKIE].copy_from_slice(&COOKIE);
    }

    /// Sets the version nibble (the header length is kept).
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_HL.start];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Sets the 12-bit Header Length (higher bits of `len` are dropped; the version is kept).
    pub fn set_header_len(&mut self, len: u16) {
        let b = &mut self.buffer.as_mut()[field::VER_HL];
        let word = (be::u16(b) & !HL_MASK) | (len & HL_MASK);
        be::set_u16(b, word);
    }

    /// Sets the Payload Length.
    pub fn set_payload_len(&mut self, len: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::PAYLOAD_LEN], len);
    }

    /// The header-TLV section, writable.
    pub fn header_tlvs_mut(&mut self) -> &mut [u8] {
        let r = field::HEADER_TLVS(self.header_len());
        &mut self.buffer.as_mut()[r]
    }

    /// The payload-TLV section, writable.
    pub fn payload_tlvs_mut(&mut self) -> &mut [u8] {
        let r = field::PAYLOAD_TLVS(self.header_len(), self.payload_len());
        &mut self.buffer.as_mut()[r]
    }
}

#[cfg(test)]
mod test {
    use super::*;

    // cookie, version 1 | HL 20 (0x1014), PL 3, header TLV 16 len 4 = 7, payload "abc",
    // original payload "xy".
    static BYTES: [u8; 25] = [
        0x4c, 0x48, 0xdb, 0xc6, 0xdd, 0xf6, 0x67, 0x0c, // cookie
        0x10, 0x14, // version 1, header length 20
        0x00, 0x03, // payload length 3
        0x00, 0x10, 0x00, 0x04, 0x00, 0x00, 0x00, 0x07, // [H] 16 Security Identifier = 7
        0x61, 0x62, 0x63, // payload section
        0x78, 0x79, // original payload
    ];

    // The false-positive marker: cookie, 0x100C, PL 0.
    static MARKER: [u8; 12] = [
        0x4c, 0x48, 0xdb, 0xc6, 0xdd, 0xf6, 0x67, 0x0c, // cookie
        0x10, 0x0c, // version 1, header length 12
        0x00, 0x00, // payload length 0
    ];

    #[test]
    fn deconstruct() {
        let h = MetadataHeader::new_checked(&BYTES[..]).unwrap();
        assert_eq!(h.cookie(), COOKIE);
        assert_eq!(h.version(), 1);
        assert_eq!(h.header_len(), 20);
        assert_eq!(h.payload_len(), 3);
        assert_eq!(h.metadata_len(), 23);
        assert_eq!(h.header_tlvs(), &BYTES[12..20]);
        assert_eq!(h.payload_tlvs(), b"abc");
        assert_eq!(h.rest(), b"xy");
        assert_eq!(h.security_identifier(), Ok(Some(7)));
        assert!(!h.is_false_positive_marker());
        assert!(is_metadata(&BYTES));
        assert!(!is_metadata(&BYTES[..7]));
        assert!(!is_false_positive_marker(&BYTES));
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 20];
        let mut h = MetadataHeader::new_unchecked(&mut buf[..]);
        h.init(20, 3);
        h.header_tlvs_mut().copy_from_slice(&BYTES[12..20]);
        assert_eq!(buf[..], BYTES[..20]);
        let mut m = [0xa5u8; 13];
        assert_eq!(emit_false_positive_marker(&mut m), Ok(12));
        assert_eq!(m[..12], MARKER);
        assert!(is_false_positive_marker(&m));
        assert_eq!(
            emit_false_positive_marker(&mut m[..11]),
            Err(MetadataError::BufferTooSmall)
        );
    }

    #[test]
    fn malformed() {
        for len in 0..BASE_LEN {
            assert_eq!(
                MetadataHeader::new_checked(&BYTES[..len]).err(),
                Some(MetadataError::Truncated)
            );
        }
        let mut b = BYTES;
        b[7] ^= 1;
        assert_eq!(
            MetadataHeader::new_checked(&b[..]).err(),
            Some(MetadataError::BadCookie)
        );
        let mut b = BYTES;
        b[8] = 0x20 | (b[8] & 0x0f);
        assert_eq!(
            MetadataHeader::new_checked(&b[..]).err(),
            Some(MetadataError::BadVersion)
        );
        let mut b = BYTES;
        b[9] = 11;
        assert_eq!(
            MetadataHeader::new_checked(&b[..]).err(),
            Some(MetadataError::BadHeaderLength)
        );
        let mut b = BYTES;
        b[9] = 26;
        assert_eq!(
            MetadataHeader::new_checked(&b[..]).err(),
            Some(MetadataError::BadHeaderLength)
        );
        assert_eq!(
            MetadataHeader::new_checked(&BYTES[..22]).err(),
            Some(MetadataError::BadPayloadLength)
        );
        assert!(MetadataHeader::new_checked(&BYTES[..23]).is_ok());
        let mut b = BYTES;
        b[14] = 0;
        b[15] = 5; // TLV 16 claiming 5 bytes: 4 + 5 overruns the 8-byte header section
        assert_eq!(
            MetadataHeader::new_checked(&b[..])
                .unwrap()
                .security_identifier(),
            Err(MetadataError::TlvOverrun)
        );
    }
}
