//! RFC 5880 §4.1 authentication section, type **Meticulous Keyed HMAC-SHA256** (private to
//! svr-fastpath; docs/bfd-metadata.md §5).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Auth Type=255 | Auth Len = 40 |  Auth Key ID  | Reserved = 0  |   BFD bytes 24..28
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Sequence Number                        |   28..32
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           HMAC-SHA256 digest (32 bytes) ...                   |   32..64
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The section follows the 24-byte mandatory section; the A bit is set and BFD Length is 64.
//! The digest is `HMAC-SHA256(secret, BFD bytes 0..Length with bytes 32..64 zeroed)` (the
//! RFC 5880 §6.7.4 construction with HMAC in place of "key in the digest field"). The SVR
//! BFD metadata block after Length is not covered: it protects itself.
//!
//! [`AuthSection`] is the view (parse and build), [`AuthRepr`] the value; [`sign`] writes
//! the digest of a built packet and [`verify`] checks one in constant time. Nothing here
//! allocates or panics on any input.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::BfdError;
use crate::packet::CONTROL_LEN;

type HmacSha256 = Hmac<Sha256>;

/// Auth Type of Meticulous Keyed HMAC-SHA256. RFC 5880's registry assigns 1-5 (password,
/// (Meticulous) Keyed MD5 and SHA1); 255 is the top of the unassigned range, used only
/// between svr-fastpath routers on UDP 1280, never towards standard BFD peers.
pub const AUTH_TYPE_METICULOUS_HMAC_SHA256: u8 = 255;
/// Auth Len of this type: 8 header bytes and a 32-byte digest.
pub const AUTH_LEN: usize = field::DIGEST.end;
/// BFD Length of an authenticated control packet: 24 + 40.
pub const CONTROL_LEN_AUTH: usize = CONTROL_LEN + AUTH_LEN;
/// Length of the HMAC-SHA256 digest.
pub const DIGEST_LEN: usize = 32;
/// Length of an authentication secret (given by key management: docs/bfd-metadata.md §5).
pub const SECRET_LEN: usize = 32;

/// Offsets inside the section (add [`CONTROL_LEN`] for offsets in the BFD packet).
mod field {
    use core::ops::Range;

    pub const AUTH_TYPE: usize = 0;
    pub const AUTH_LEN: usize = 1;
    pub const KEY_ID: usize = 2;
    pub const RESERVED: usize = 3;
    pub const SEQUENCE: Range<usize> = 4..8;
    pub const DIGEST: Range<usize> = 8..40;
}

/// A view of the authentication section: the BFD packet bytes from 24 to BFD Length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSection<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> AuthSection<T> {
    /// Wraps `buffer` without checks; for emitting into at least [`AUTH_LEN`] bytes.
    pub const fn new_unchecked(buffer: T) -> AuthSection<T> {
        AuthSection { buffer }
    }

    /// Wraps untrusted bytes (exactly the section: BFD Length − 24 bytes):
    /// `UnsupportedAuthType` unless Auth Type is 255, `BadAuthLength` unless Auth Len and the
    /// section length are both 40. The Reserved byte is ignored on receipt (RFC 5880 §4.3).
    pub fn new_checked(buffer: T) -> Result<AuthSection<T>, BfdError> {
        let b = buffer.as_ref();
        // check_len of the control packet guarantees two bytes; be safe anyway.
        match b.get(field::AUTH_TYPE) {
            Some(&AUTH_TYPE_METICULOUS_HMAC_SHA256) => {}
            _ => return Err(BfdError::UnsupportedAuthType),
        }
        if b.get(field::AUTH_LEN).map(|&l| usize::from(l)) != Some(AUTH_LEN) || b.len() != AUTH_LEN
        {
            return Err(BfdError::BadAuthLength);
        }
        Ok(AuthSection { buffer })
    }

    /// Auth Type.
    pub fn auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_TYPE]
    }

    /// Auth Len.
    pub fn auth_len(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_LEN]
    }

    /// Auth Key ID.
    pub fn key_id(&self) -> u8 {
        self.buffer.as_ref()[field::KEY_ID]
    }

    /// Sequence Number.
    pub fn sequence(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::SEQUENCE];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The HMAC-SHA256 digest.
    pub fn digest(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DIGEST]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> AuthSection<T> {
    /// Sets Auth Type.
    pub fn set_auth_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::AUTH_TYPE] = v;
    }

    /// Sets Auth Len.
    pub fn set_auth_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::AUTH_LEN] = v;
    }

    /// Sets Auth Key ID.
    pub fn set_key_id(&mut self, v: u8) {
        self.buffer.as_mut()[field::KEY_ID] = v;
    }

    /// Sets Reserved.
    pub fn set_reserved(&mut self, v: u8) {
        self.buffer.as_mut()[field::RESERVED] = v;
    }

    /// Sets Sequence Number.
    pub fn set_sequence(&mut self, v: u32) {
        self.buffer.as_mut()[field::SEQUENCE].copy_from_slice(&v.to_be_bytes());
    }

    /// The digest field, to write.
    pub fn digest_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DIGEST]
    }
}

/// The parsed authentication section, without its digest (which [`sign`] computes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthRepr {
    /// Auth Key ID: which secret signed the packet (the peer-key index, see docs).
    pub key_id: u8,
    /// Meticulous sequence number: the sender adds one for every packet.
    pub sequence: u32,
}

impl AuthRepr {
    /// Parses a checked section.
    pub fn parse<T: AsRef<[u8]>>(section: &AuthSection<T>) -> AuthRepr {
        AuthRepr {
            key_id: section.key_id(),
            sequence: section.sequence(),
        }
    }

    /// Writes the section with a zero digest into a buffer of at least [`AUTH_LEN`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, section: &mut AuthSection<T>) {
        section.set_auth_type(AUTH_TYPE_METICULOUS_HMAC_SHA256);
        // AUTH_LEN is 40, which fits a u8.
        section.set_auth_len(AUTH_LEN as u8);
        section.set_key_id(self.key_id);
        section.set_reserved(0);
        section.set_sequence(self.sequence);
        section.digest_mut().fill(0);
    }
}

/// The HMAC of an authenticated control packet (`control` = exactly BFD Length =
/// [`CONTROL_LEN_AUTH`] bytes) with its digest field taken as zero, followed by the SVR BFD
/// metadata block that rides behind it (`extension`, empty when there is none): a block
/// cannot be grafted onto a genuine control packet. `None` if `control` has another length.
fn mac(control: &[u8], extension: &[u8], secret: &[u8; SECRET_LEN]) -> Option<HmacSha256> {
    if control.len() != CONTROL_LEN_AUTH {
        return None;
    }
    let digest_at = CONTROL_LEN + field::DIGEST.start;
    // A 32-byte key is always accepted by HMAC.
    let mut m = HmacSha256::new_from_slice(secret).ok()?;
    m.update(&control[..digest_at]);
    m.update(&[0u8; DIGEST_LEN]);
    m.update(&control[digest_at + DIGEST_LEN..]);
    m.update(extension);
    Some(m)
}

/// Writes the digest of an authenticated control packet built by
/// [`ControlRepr::emit`](crate::ControlRepr::emit): `control` is exactly its
/// [`CONTROL_LEN_AUTH`] bytes, `extension` the block that will follow it. Returns false (and
/// writes nothing) on any other length.
pub fn sign(control: &mut [u8], extension: &[u8], secret: &[u8; SECRET_LEN]) -> bool {
    let Some(m) = mac(control, extension, secret) else {
        return false;
    };
    let tag = m.finalize().into_bytes();
    let digest_at = CONTROL_LEN + field::DIGEST.start;
    control[digest_at..digest_at + DIGEST_LEN].copy_from_slice(&tag);
    true
}

/// Whether the digest of `control` (exactly BFD Length bytes) and the `extension` behind it
/// is right for `secret`,
/// compared in constant time (`hmac`'s `verify_slice`, built on `subtle`).
pub fn verify(control: &[u8], extension: &[u8], secret: &[u8; SECRET_LEN]) -> bool {
    let Some(m) = mac(control, extension, secret) else {
        return false;
    };
    let digest_at = CONTROL_LEN + field::DIGEST.start;
    m.verify_slice(&control[digest_at..digest_at + DIGEST_LEN])
        .is_ok()
}

/// Serial-number order (RFC 1982) on the 32-bit sequence space: `seq` is strictly after
/// `last` when it is 1 to 2³¹ − 1 steps ahead.
pub fn sequence_after(seq: u32, last: u32) -> bool {
    let d = seq.wrapping_sub(last);
    d != 0 && d < 0x8000_0000
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn section_round_trips_and_rejects_other_types() {
        let mut b = [0u8; AUTH_LEN];
        let repr = AuthRepr {
            key_id: 7,
            sequence: 0xfedc_ba98,
        };
        repr.emit(&mut AuthSection::new_unchecked(&mut b[..]));
        assert_eq!(b[..8], [255, 40, 7, 0, 0xfe, 0xdc, 0xba, 0x98]);
        let s = AuthSection::new_checked(&b[..]).unwrap();
        assert_eq!(AuthRepr::parse(&s), repr);
        assert_eq!(s.digest(), &[0u8; 32]);

        let mut md5 = b;
        md5[0] = 2;
        assert_eq!(
            AuthSection::new_checked(&md5[..]),
            Err(BfdError::UnsupportedAuthType)
        );
        let mut short = b;
        short[1] = 24;
        assert_eq!(
            AuthSection::new_checked(&short[..]),
            Err(BfdError::BadAuthLength)
        );
        assert_eq!(
            AuthSection::new_checked(&b[..39]),
            Err(BfdError::BadAuthLength)
        );
        assert_eq!(
            AuthSection::new_checked(&b[..0]),
            Err(BfdError::UnsupportedAuthType)
        );
    }

    #[test]
    fn sign_and_verify_need_the_exact_length() {
        let secret = [9u8; 32];
        let mut p = [0u8; CONTROL_LEN_AUTH + 1];
        assert!(!sign(&mut p, &[], &secret));
        assert!(!verify(&p, &[], &secret));
        assert!(sign(&mut p[..CONTROL_LEN_AUTH], &[], &secret));
        assert!(verify(&p[..CONTROL_LEN_AUTH], &[], &secret));
        assert!(!verify(&p[..CONTROL_LEN_AUTH], &[], &[8u8; 32]));
        p[5] ^= 1;
        assert!(!verify(&p[..CONTROL_LEN_AUTH], &[], &secret));
    }

    /// The digest covers the block behind the control packet: a block grafted onto a genuine
    /// authenticated control packet does not verify.
    #[test]
    fn the_digest_covers_the_block() {
        let secret = [9u8; 32];
        let mut p = [0u8; CONTROL_LEN_AUTH];
        let block = b"\x4c\x48\xdb\xc6\xdd\xf6\x67\x0c genuine block";
        assert!(sign(&mut p, block, &secret));
        assert!(verify(&p, block, &secret));
        assert!(!verify(
            &p,
            b"\x4c\x48\xdb\xc6\xdd\xf6\x67\x0c grafted block",
            &secret
        ));
        assert!(!verify(&p, &[], &secret));
    }

    /// Golden vectors, also in docs/bfd-metadata.md §5 (checked below). Secret 00 01 .. 1f.
    /// The digests were computed independently with Python's `hmac`/`hashlib`.
    const UP_AUTH: &str = "20c403400000000100000002000f42400007a12000000000\
                           ff28010001020304\
                           caf55b8e0d83be3662fc856f8534bc2837be07a2aa899bb7426e5eeecf9f00e9";
    const DOWN_AUTH: &str = "204403400000000a00000000000f42400007a12000000000\
                             ff280700fffffffe\
                             dfd8281c481673ada14587fdb57bc8d8234e5f8ff340182419f1634a966cac57";
    const DOC: &str = include_str!("../../docs/bfd-metadata.md");

    fn secret() -> [u8; 32] {
        core::array::from_fn(|i| i as u8)
    }

    fn strip(s: &str) -> String {
        s.split_whitespace().collect()
    }

    pub(crate) fn golden() -> [(&'static str, crate::ControlRepr, Vec<u8>); 2] {
        use crate::{ControlRepr, Diagnostic, State};
        let up = ControlRepr {
            diag: Diagnostic::NoDiagnostic,
            state: State::Up,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: 3,
            my_discriminator: 1,
            your_discriminator: 2,
            desired_min_tx: 1_000_000,
            required_min_rx: 500_000,
            required_min_echo_rx: 0,
            auth: Some(AuthRepr {
                key_id: 1,
                sequence: 0x0102_0304,
            }),
        };
        let down = ControlRepr {
            state: State::Down,
            my_discriminator: 0xa,
            your_discriminator: 0,
            auth: Some(AuthRepr {
                key_id: 7,
                sequence: 0xffff_fffe,
            }),
            ..up
        };
        [
            ("up", up, hex::decode(strip(UP_AUTH)).unwrap()),
            ("down", down, hex::decode(strip(DOWN_AUTH)).unwrap()),
        ]
    }

    #[test]
    fn golden_vectors_build_parse_and_verify() {
        use crate::{ControlPacket, ControlRepr};
        for (name, repr, bytes) in golden() {
            let mut buf = [0u8; CONTROL_LEN_AUTH];
            repr.emit(&mut ControlPacket::new_unchecked(&mut buf[..]));
            assert!(sign(&mut buf, &[], &secret()));
            assert_eq!(hex::encode(buf), hex::encode(&bytes), "{name}");
            let p = ControlPacket::new_checked(&bytes[..]).unwrap();
            assert_eq!(ControlRepr::parse(&p).unwrap(), repr, "{name}");
            assert!(verify(p.control(), &[], &secret()), "{name}");
            let section = AuthSection::new_checked(p.auth_section().unwrap()).unwrap();
            assert_eq!(section.auth_type(), AUTH_TYPE_METICULOUS_HMAC_SHA256);
            assert_eq!(usize::from(section.auth_len()), AUTH_LEN);
            assert_eq!(section.digest(), &bytes[32..64]);
            // Any flipped bit breaks the digest.
            for i in 0..CONTROL_LEN_AUTH {
                let mut b = buf;
                b[i] ^= 0x80;
                assert!(!verify(&b, &[], &secret()), "{name} byte {i}");
            }
        }
    }

    #[test]
    fn vectors_match_the_document() {
        let doc = strip(DOC);
        let section = doc
            .split("##5.BFDauthentication")
            .nth(1)
            .expect("docs/bfd-metadata.md has a section 5");
        for (name, _, bytes) in golden() {
            let hex = hex::encode(bytes);
            println!("{name}: {hex}");
            assert!(section.contains(&hex), "{name} not in docs §5:\n{hex}");
        }
        assert!(section.contains("255"));
        assert!(section.contains("svr-fastpathbfdauthv1"));
    }

    #[test]
    fn serial_order() {
        assert!(sequence_after(1, 0));
        assert!(!sequence_after(0, 0));
        assert!(!sequence_after(0, 1));
        assert!(sequence_after(0, u32::MAX));
        assert!(sequence_after(0x7fff_ffff, 0));
        assert!(!sequence_after(0x8000_0000, 0));
    }
}
