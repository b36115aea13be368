//! The link-test probe: a fixed 56-byte message, the same layout for the echo request and
//! its reflection (docs/multipath.md §5).
//!
//! ```text
//!  0      version = 1
//!  1      kind: 1 echo request, 2 echo reflection (other values kept, never accepted)
//!  2..4   reserved, 0 on send, ignored on receipt (covered by the tag)
//!  4..8   discriminator: chosen by the sender of the request, names its link test
//!  8..16  sequence, big-endian u64, increasing across tests
//! 16..24  send timestamp, big-endian u64 nanoseconds on the sender's monotonic clock
//! 24..56  tag: HMAC-SHA256(key, bytes 0..24)
//! ```
//!
//! The reflector sets `kind` to 2 and recomputes the tag, so a request replayed back to its
//! sender is not a reflection. [`Probe::new_checked`] checks the length and version only;
//! the tag is checked by [`Probe::verify`] (constant time).

use core::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a probe on the wire (the UDP payload).
pub const PROBE_LEN: usize = 56;
/// The only version understood.
pub const PROBE_VERSION: u8 = 1;

mod field {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const KIND: usize = 1;
    pub const RESERVED: Range<usize> = 2..4;
    pub const DISCRIMINATOR: Range<usize> = 4..8;
    pub const SEQUENCE: Range<usize> = 8..16;
    pub const TIMESTAMP: Range<usize> = 16..24;
    pub const SIGNED: Range<usize> = 0..24;
    pub const TAG: Range<usize> = 24..56;
}

/// The 32-byte secret that keys the probe tag. Key management derives it from the peer
/// key; both ends of a peer path hold the same one. Zeroized on drop, redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct LinkKey([u8; 32]);

impl LinkKey {
    /// Wraps the secret.
    pub fn new(secret: [u8; 32]) -> LinkKey {
        LinkKey(secret)
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; this cannot fail for 32 bytes.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }

    /// HMAC-SHA256 of `data`.
    fn tag(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkKey(<redacted>)")
    }
}

/// What a probe is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// 1: sent by the link test, to be reflected.
    Request,
    /// 2: sent back by the reflector.
    Reflection,
    /// Any other value, kept so that a parse and an emit give back the same byte.
    Unknown(u8),
}

impl From<u8> for ProbeKind {
    fn from(b: u8) -> Self {
        match b {
            1 => ProbeKind::Request,
            2 => ProbeKind::Reflection,
            other => ProbeKind::Unknown(other),
        }
    }
}

impl From<ProbeKind> for u8 {
    fn from(k: ProbeKind) -> u8 {
        match k {
            ProbeKind::Request => 1,
            ProbeKind::Reflection => 2,
            ProbeKind::Unknown(b) => b,
        }
    }
}

/// Why bytes are not a probe (before the tag is looked at).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeError {
    /// Not exactly [`PROBE_LEN`] bytes.
    Length,
    /// Version is not [`PROBE_VERSION`].
    Version,
}

/// A view over the bytes of a probe. Once [`new_checked`](Probe::new_checked) has passed,
/// no accessor panics.
#[derive(Debug, Clone, Copy)]
pub struct Probe<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Probe<T> {
    /// Wraps untrusted bytes: exactly [`PROBE_LEN`] of them, version 1.
    pub fn new_checked(buffer: T) -> Result<Probe<T>, ProbeError> {
        let b = buffer.as_ref();
        if b.len() != PROBE_LEN {
            return Err(ProbeError::Length);
        }
        if b[field::VERSION] != PROBE_VERSION {
            return Err(ProbeError::Version);
        }
        Ok(Probe { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn be64(&self, r: core::ops::Range<usize>) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.b()[r]);
        u64::from_be_bytes(a)
    }

    /// The kind byte.
    pub fn kind(&self) -> ProbeKind {
        self.b()[field::KIND].into()
    }

    /// The request sender's discriminator.
    pub fn discriminator(&self) -> u32 {
        let mut a = [0u8; 4];
        a.copy_from_slice(&self.b()[field::DISCRIMINATOR]);
        u32::from_be_bytes(a)
    }

    /// The sequence number.
    pub fn sequence(&self) -> u64 {
        self.be64(field::SEQUENCE)
    }

    /// The send timestamp, nanoseconds on the request sender's clock.
    pub fn timestamp(&self) -> u64 {
        self.be64(field::TIMESTAMP)
    }

    /// Is the tag the HMAC-SHA256 of bytes 0..24 under `key`? Constant-time comparison.
    pub fn verify(&self, key: &LinkKey) -> bool {
        let mut mac = key.mac();
        mac.update(&self.b()[field::SIGNED]);
        mac.verify_slice(&self.b()[field::TAG]).is_ok()
    }

    /// The parsed fields (the tag is not checked here).
    pub fn repr(&self) -> ProbeRepr {
        ProbeRepr {
            kind: self.kind(),
            discriminator: self.discriminator(),
            sequence: self.sequence(),
            timestamp: self.timestamp(),
        }
    }
}

/// The fields of a probe; [`emit`](ProbeRepr::emit) writes them and the tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProbeRepr {
    /// Request or reflection.
    pub kind: ProbeKind,
    /// The request sender's discriminator.
    pub discriminator: u32,
    /// The sequence number.
    pub sequence: u64,
    /// Send timestamp, nanoseconds.
    pub timestamp: u64,
}

impl ProbeRepr {
    /// The probe's bytes, signed with `key`.
    pub fn emit(&self, key: &LinkKey) -> [u8; PROBE_LEN] {
        let mut out = [0u8; PROBE_LEN];
        out[field::VERSION] = PROBE_VERSION;
        out[field::KIND] = self.kind.into();
        out[field::RESERVED].copy_from_slice(&[0, 0]);
        out[field::DISCRIMINATOR].copy_from_slice(&self.discriminator.to_be_bytes());
        out[field::SEQUENCE].copy_from_slice(&self.sequence.to_be_bytes());
        out[field::TIMESTAMP].copy_from_slice(&self.timestamp.to_be_bytes());
        let tag = key.tag(&out[field::SIGNED]);
        out[field::TAG].copy_from_slice(&tag);
        out
    }
}

#[cfg(test)]
pub(crate) mod test {
    use super::*;

    /// The golden key: bytes 0x00..=0x1f.
    pub(crate) fn golden_key() -> LinkKey {
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        LinkKey::new(k)
    }

    pub(crate) const GOLDEN_REQUEST_REPR: ProbeRepr = ProbeRepr {
        kind: ProbeKind::Request,
        discriminator: 0x0102_0304,
        sequence: 7,
        timestamp: 1_000_000_000,
    };

    /// Request: discriminator 0x01020304, sequence 7, timestamp 1 s, key 00..1f.
    pub(crate) const GOLDEN_REQUEST: &str = "0101000001020304000000000000000700000000\
3b9aca00b3e428021671616eba1fda1ce297797e0826484dc6bd24edf375f6a683213040";
    /// Its reflection.
    pub(crate) const GOLDEN_REFLECTION: &str = "0102000001020304000000000000000700000000\
3b9aca00aa71f57b58a813c3b1f0f1faa59085f5cf97e355397d41e2c59d4b54b76c83c3";

    #[test]
    fn golden_request() {
        let bytes = GOLDEN_REQUEST_REPR.emit(&golden_key());
        assert_eq!(hex::encode(bytes), GOLDEN_REQUEST);
        let p = Probe::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.repr(), GOLDEN_REQUEST_REPR);
        assert!(p.verify(&golden_key()));
    }

    #[test]
    fn golden_reflection() {
        let repr = ProbeRepr {
            kind: ProbeKind::Reflection,
            ..GOLDEN_REQUEST_REPR
        };
        assert_eq!(hex::encode(repr.emit(&golden_key())), GOLDEN_REFLECTION);
    }

    #[test]
    fn wrong_key_or_any_flipped_bit_fails_verification() {
        let bytes = GOLDEN_REQUEST_REPR.emit(&golden_key());
        assert!(!Probe::new_checked(&bytes[..])
            .unwrap()
            .verify(&LinkKey::new([9; 32])));
        for i in 1..PROBE_LEN {
            for bit in 0..8 {
                let mut b = bytes;
                b[i] ^= 1 << bit;
                let p = Probe::new_checked(&b[..]).unwrap();
                assert!(!p.verify(&golden_key()), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn bad_length_and_version() {
        let bytes = GOLDEN_REQUEST_REPR.emit(&golden_key());
        assert_eq!(
            Probe::new_checked(&bytes[..55]).unwrap_err(),
            ProbeError::Length
        );
        let mut long = bytes.to_vec();
        long.push(0);
        assert_eq!(Probe::new_checked(&long).unwrap_err(), ProbeError::Length);
        let mut v = bytes;
        v[0] = 2;
        assert_eq!(Probe::new_checked(&v[..]).unwrap_err(), ProbeError::Version);
        assert_eq!(Probe::new_checked(&[][..]).unwrap_err(), ProbeError::Length);
    }

    #[test]
    fn unknown_kind_round_trips() {
        let repr = ProbeRepr {
            kind: ProbeKind::Unknown(9),
            ..GOLDEN_REQUEST_REPR
        };
        let b = repr.emit(&golden_key());
        assert_eq!(Probe::new_checked(&b[..]).unwrap().repr(), repr);
    }

    #[test]
    fn debug_redacts_the_key() {
        assert_eq!(format!("{:?}", golden_key()), "LinkKey(<redacted>)");
    }
}
