//! The BFD metadata block: an SVR cookie/TLV block that rides after each BFD control packet
//! (UDP 1280) and carries the key exchange. The normative description, the message flow and
//! golden vectors are in `docs/bfd-metadata.md`; this module is the codec.
//!
//! ```text
//! clear:  cookie(8) | ver=1, HL(12 bits) | PL(16) | header TLVs | payload TLVs
//! sealed: cookie(8) | ver=1, HL(12 bits) | PL(16) | header TLVs | AES-256-CBC(payload TLVs) ‖ IV
//!         | HMAC-SHA384(peer key HMAC key, everything before)[..24]
//! ```
//!
//! Header TLVs (always clear): Security Identifier (16, u32 peer-key index; present if and
//! only if the block is sealed) and Peering Name (0x8001, the sender's
//! `peering-common-name`). Payload TLVs use the private range 0x8010-0x801f. Parsing is strict
//! (docs/background.md §6 "Formats"): overruns, a wrong version, a TLV in the wrong section, a
//! duplicated TLV or trailing bytes drop the block with a named [`BlockError`]; unknown types
//! inside a well-formed section are skipped by their length.

use core::fmt;

use svr_crypto::{metadata_ciphertext_len, PacketKey, HMAC_LEN, IV_LEN};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::exchange::{PeerKey, CHALLENGE_LEN, EXCHANGE_VERSION, SALT_LEN};
use crate::version::SoftwareVersion;

/// The SVR metadata cookie, in wire order (docs/protocol.md §2).
pub const COOKIE: [u8; 8] = [0x4C, 0x48, 0xDB, 0xC6, 0xDD, 0xF6, 0x67, 0x0C];
/// Metadata header version.
pub const VERSION: u8 = 1;
/// The fixed part of the header: cookie, version/header length, payload length.
pub const BASE_HEADER_LEN: usize = 12;
/// Largest header length the 12-bit field can carry.
pub const MAX_HEADER_LEN: usize = 0x0fff;
/// Longest peering name accepted.
pub const MAX_NAME_LEN: usize = 255;
/// Most certificates in a chain TLV.
pub const MAX_CHAIN_LEN: usize = 4;

/// TLV type numbers.
pub mod tlv {
    /// Security Identifier (draft -00 §3.2.2), header: u32, the peer-key index that seals the
    /// block.
    pub const SECURITY_IDENTIFIER: u16 = 16;
    /// Peering Name, header: the sender's peering-common-name (UTF-8, 1-255 bytes).
    pub const PEERING_NAME: u16 = 0x8001;
    /// Certificate Chain, payload: `n × (u16 len ‖ DER)`, leaf first.
    pub const CERTIFICATE_CHAIN: u16 = 0x8010;
    /// Hello, payload: one side's signed DH value.
    pub const HELLO: u16 = 0x8011;
    /// Finish, payload: the leader's signature over the whole transcript.
    pub const FINISH: u16 = 0x8012;
    /// Key Request, payload: "I have no valid key".
    pub const KEY_REQUEST: u16 = 0x8013;
    /// Metadata Key, payload (sealed blocks only): the sender's own metadata key.
    pub const METADATA_KEY: u16 = 0x8014;
    /// Ack, payload (sealed blocks only): `n × (kind u8 ‖ index u32)`.
    pub const ACK: u16 = 0x8015;
    /// Software Version, payload: the sender's software version (1-32 bytes of
    /// `0-9A-Za-z.+-`); authenticated only in a sealed block.
    pub const SOFTWARE_VERSION: u16 = 0x8016;
}

/// Cipher id of AES-256-CBC in the Metadata Key TLV.
pub const CIPHER_AES_256_CBC: u8 = 1;
/// HMAC cipher id of HMAC-SHA384 truncated to 24 bytes in the Metadata Key TLV.
pub const HMAC_SHA384_192: u8 = 1;
/// Value length of the Metadata Key TLV.
pub const METADATA_KEY_LEN: usize = 4 + 1 + 32 + IV_LEN + 1 + 48;

/// Why a block was dropped. Indexes a counter ([`BlockError::index`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// Shorter than the 12-byte header.
    #[error("block shorter than the metadata header")]
    Truncated,
    /// The first 8 bytes are not the SVR cookie.
    #[error("bad cookie")]
    BadCookie,
    /// Header version other than 1.
    #[error("unsupported metadata version")]
    BadVersion,
    /// Header length below 12 or past the end of the block.
    #[error("bad header length")]
    BadHeaderLength,
    /// Payload length past the end of the block.
    #[error("bad payload length")]
    BadPayloadLength,
    /// Bytes after the payload (clear) or a trailer that is not exactly the HMAC (sealed).
    #[error("trailing bytes after the payload")]
    TrailingBytes,
    /// A TLV length runs past the end of its section.
    #[error("TLV overruns its section")]
    TlvOverrun,
    /// The same TLV type twice in one section.
    #[error("duplicated TLV")]
    DuplicateTlv,
    /// A header TLV in the payload section or the other way round.
    #[error("TLV in the wrong section")]
    WrongSection,
    /// A known TLV whose value does not parse.
    #[error("malformed TLV value")]
    BadValue,
    /// No Peering Name TLV in the header.
    #[error("no peering name")]
    MissingPeeringName,
    /// The block names a different peer than the one this state machine serves.
    #[error("block from another peer")]
    WrongPeer,
    /// Sealed with a peer-key index we do not hold.
    #[error("unknown peer-key index")]
    UnknownKeyIndex,
    /// The HMAC did not verify.
    #[error("HMAC verification failed")]
    BadMac,
    /// Decryption failed (length or padding) after the HMAC verified.
    #[error("decryption failed")]
    BadCiphertext,
    /// Key material or acknowledgements in a clear block.
    #[error("key material or ack in a clear block")]
    ClearNotAllowed,
    /// Encoding: a section does not fit its length field.
    #[error("block too large for its length fields")]
    TooLarge,
}

impl BlockError {
    /// Number of counter slots.
    pub const COUNT: usize = 17;
    /// Counter names, indexed by [`BlockError::index`].
    pub const NAMES: [&'static str; Self::COUNT] = [
        "bfdmd_truncated",
        "bfdmd_bad_cookie",
        "bfdmd_bad_version",
        "bfdmd_bad_header_length",
        "bfdmd_bad_payload_length",
        "bfdmd_trailing_bytes",
        "bfdmd_tlv_overrun",
        "bfdmd_duplicate_tlv",
        "bfdmd_wrong_section",
        "bfdmd_bad_value",
        "bfdmd_missing_peering_name",
        "bfdmd_wrong_peer",
        "bfdmd_unknown_key_index",
        "bfdmd_bad_mac",
        "bfdmd_bad_ciphertext",
        "bfdmd_clear_not_allowed",
        "bfdmd_too_large",
    ];

    /// A dense index `0..COUNT`.
    pub const fn index(self) -> usize {
        match self {
            BlockError::Truncated => 0,
            BlockError::BadCookie => 1,
            BlockError::BadVersion => 2,
            BlockError::BadHeaderLength => 3,
            BlockError::BadPayloadLength => 4,
            BlockError::TrailingBytes => 5,
            BlockError::TlvOverrun => 6,
            BlockError::DuplicateTlv => 7,
            BlockError::WrongSection => 8,
            BlockError::BadValue => 9,
            BlockError::MissingPeeringName => 10,
            BlockError::WrongPeer => 11,
            BlockError::UnknownKeyIndex => 12,
            BlockError::BadMac => 13,
            BlockError::BadCiphertext => 14,
            BlockError::ClearNotAllowed => 15,
            BlockError::TooLarge => 16,
        }
    }

    /// The counter name.
    pub const fn name(self) -> &'static str {
        Self::NAMES[self.index()]
    }
}

/// Which key a request, an acknowledgement or a rotation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// The per-pair peer key (wire id 1).
    PeerKey,
    /// A router's own metadata key (wire id 2).
    MetadataKey,
    /// The per-session payload keys (never on the wire of this block).
    PayloadKey,
}

impl KeyKind {
    fn to_wire(self) -> u8 {
        match self {
            KeyKind::PeerKey => 1,
            KeyKind::MetadataKey => 2,
            KeyKind::PayloadKey => 3,
        }
    }

    fn from_wire(v: u8) -> Option<KeyKind> {
        match v {
            1 => Some(KeyKind::PeerKey),
            2 => Some(KeyKind::MetadataKey),
            _ => None,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::PeerKey => "peer-key",
            KeyKind::MetadataKey => "metadata-key",
            KeyKind::PayloadKey => "payload-key",
        })
    }
}

/// Hello: one side's signed ephemeral DH value. The value layout is
/// `version u8 ‖ algorithm u8 ‖ index u8 ‖ reserved u8 (0) ‖ salt[32] ‖ challenge[16] ‖
/// u16 len ‖ public ‖ u16 len ‖ signature`. A Hello of another version carries only its first byte's meaning:
/// the rest is not parsed, so the receiver can report the unsupported version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Exchange version ([`EXCHANGE_VERSION`]).
    pub version: u8,
    /// Algorithm wire id (kept raw, so an unknown one can be reported).
    pub algorithm: u8,
    /// Peer-key index being negotiated.
    pub index: u8,
    /// The sender's salt.
    pub salt: [u8; SALT_LEN],
    /// The follower's challenge (from its Key Request), echoed by the offer and the answer.
    pub challenge: [u8; CHALLENGE_LEN],
    /// The sender's ephemeral public value.
    pub public: Vec<u8>,
    /// Signature over the offer (leader) or answer (follower) transcript.
    pub signature: Vec<u8>,
}

/// Finish: the leader's signature over the whole transcript. `index u8 ‖ signature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// Peer-key index.
    pub index: u8,
    /// Signature over `T_finish`.
    pub signature: Vec<u8>,
}

/// Key Request: "start an exchange". `kind u8 ‖ have_index u32 ‖ challenge[16]`. From the
/// follower: it holds no valid key (or answers the leader's request), and `challenge` is the
/// value the leader's next offer must echo. From the leader: it wants to start an exchange and
/// asks the follower for a challenge (its own `challenge` is zero and ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRequest {
    /// What is missing.
    pub kind: KeyKind,
    /// The index the sender holds, 0 if none.
    pub have_index: u32,
    /// The follower's current challenge (zero from the leader).
    pub challenge: [u8; CHALLENGE_LEN],
}

/// Ack: receipt of a key. `kind u8 ‖ index u32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// Peer key (the Finish) or metadata key.
    pub kind: KeyKind,
    /// Its index.
    pub index: u32,
}

/// Metadata Key: the sender's own metadata key (docs/background.md §7.2): `rekey index u32 ‖
/// cipher u8 ‖ encryption key[32] ‖ IV[16] ‖ HMAC cipher u8 ‖ HMAC key[48]`. Zeroized on drop;
/// `Debug` redacts. The IV is carried as the requirements list it; the data path draws a fresh
/// IV per packet (docs/background.md §6), so receivers store it and do not use it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MetadataKeyMsg {
    /// Rekey index (the Security Identifier of SVR metadata sealed with this key).
    pub rekey_index: u32,
    /// Cipher id ([`CIPHER_AES_256_CBC`]).
    pub cipher: u8,
    /// AES-256 key.
    pub enc_key: [u8; 32],
    /// Per-key IV.
    pub iv: [u8; IV_LEN],
    /// HMAC cipher id ([`HMAC_SHA384_192`]).
    pub hmac_cipher: u8,
    /// HMAC-SHA384 key.
    pub hmac_key: [u8; 48],
}

impl fmt::Debug for MetadataKeyMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataKeyMsg")
            .field("rekey_index", &self.rekey_index)
            .field("cipher", &self.cipher)
            .field("hmac_cipher", &self.hmac_cipher)
            .field("keys", &"<redacted>")
            .finish()
    }
}

/// One payload TLV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The sender's certificate chain (DER, leaf first).
    CertificateChain(Vec<Vec<u8>>),
    /// A signed DH value.
    Hello(Hello),
    /// The leader's transcript signature.
    Finish(Finish),
    /// "I hold no valid key".
    KeyRequest(KeyRequest),
    /// The sender's own metadata key.
    MetadataKey(MetadataKeyMsg),
    /// Acknowledgements.
    Ack(Vec<Ack>),
    /// The sender's software version.
    SoftwareVersion(SoftwareVersion),
}

impl Message {
    fn tlv_type(&self) -> u16 {
        match self {
            Message::CertificateChain(_) => tlv::CERTIFICATE_CHAIN,
            Message::Hello(_) => tlv::HELLO,
            Message::Finish(_) => tlv::FINISH,
            Message::KeyRequest(_) => tlv::KEY_REQUEST,
            Message::MetadataKey(_) => tlv::METADATA_KEY,
            Message::Ack(_) => tlv::ACK,
            Message::SoftwareVersion(_) => tlv::SOFTWARE_VERSION,
        }
    }

    /// Whether the message may travel in a clear block.
    pub fn allowed_in_clear(&self) -> bool {
        !matches!(self, Message::MetadataKey(_) | Message::Ack(_))
    }

    fn encode_value(&self, out: &mut Vec<u8>) -> Result<(), BlockError> {
        match self {
            Message::CertificateChain(certs) => {
                if certs.is_empty() || certs.len() > MAX_CHAIN_LEN {
                    return Err(BlockError::BadValue);
                }
                for c in certs {
                    put_lp(out, c)?;
                }
            }
            Message::Hello(h) => {
                out.extend_from_slice(&[h.version, h.algorithm, h.index, 0]);
                out.extend_from_slice(&h.salt);
                out.extend_from_slice(&h.challenge);
                put_lp(out, &h.public)?;
                put_lp(out, &h.signature)?;
            }
            Message::Finish(f) => {
                out.push(f.index);
                out.extend_from_slice(&f.signature);
            }
            Message::KeyRequest(r) => {
                out.push(r.kind.to_wire());
                out.extend_from_slice(&r.have_index.to_be_bytes());
                out.extend_from_slice(&r.challenge);
            }
            Message::MetadataKey(m) => {
                out.extend_from_slice(&m.rekey_index.to_be_bytes());
                out.push(m.cipher);
                out.extend_from_slice(&m.enc_key);
                out.extend_from_slice(&m.iv);
                out.push(m.hmac_cipher);
                out.extend_from_slice(&m.hmac_key);
            }
            Message::Ack(acks) => {
                if acks.is_empty() {
                    return Err(BlockError::BadValue);
                }
                for a in acks {
                    out.push(a.kind.to_wire());
                    out.extend_from_slice(&a.index.to_be_bytes());
                }
            }
            Message::SoftwareVersion(v) => out.extend_from_slice(v.as_str().as_bytes()),
        }
        Ok(())
    }
}

fn put_lp(out: &mut Vec<u8>, v: &[u8]) -> Result<(), BlockError> {
    let len = u16::try_from(v.len()).map_err(|_| BlockError::TooLarge)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(v);
    Ok(())
}

fn put_tlv(out: &mut Vec<u8>, ty: u16, value: &[u8]) -> Result<(), BlockError> {
    out.extend_from_slice(&ty.to_be_bytes());
    put_lp(out, value)
}

/// A cursor over untrusted bytes (rustls's `Reader`).
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BlockError> {
        if self.buf.len() < n {
            return Err(BlockError::BadValue);
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, BlockError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, BlockError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, BlockError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BlockError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn lp(&mut self) -> Result<&'a [u8], BlockError> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }

    fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    fn end(&self) -> Result<(), BlockError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(BlockError::BadValue)
        }
    }
}

/// Walk `section` as back-to-back TLVs, calling `f(type, value)`; rejects overruns and
/// duplicates of the types in `known` (others are passed through once each as well).
fn walk_tlvs<'a>(
    section: &'a [u8],
    mut f: impl FnMut(u16, &'a [u8]) -> Result<(), BlockError>,
) -> Result<(), BlockError> {
    let mut seen: Vec<u16> = Vec::new();
    let mut r = Reader { buf: section };
    while !r.buf.is_empty() {
        if r.buf.len() < 4 {
            return Err(BlockError::TlvOverrun);
        }
        let ty = r.u16().map_err(|_| BlockError::TlvOverrun)?;
        let len = usize::from(r.u16().map_err(|_| BlockError::TlvOverrun)?);
        let value = r.take(len).map_err(|_| BlockError::TlvOverrun)?;
        if seen.contains(&ty) {
            return Err(BlockError::DuplicateTlv);
        }
        seen.push(ty);
        f(ty, value)?;
    }
    Ok(())
}

fn is_header_type(ty: u16) -> bool {
    ty == tlv::SECURITY_IDENTIFIER || ty == tlv::PEERING_NAME
}

fn is_payload_type(ty: u16) -> bool {
    (tlv::CERTIFICATE_CHAIN..=tlv::ACK).contains(&ty)
}

fn parse_message(ty: u16, value: &[u8]) -> Result<Option<Message>, BlockError> {
    let mut r = Reader { buf: value };
    let m = match ty {
        tlv::CERTIFICATE_CHAIN => {
            let mut certs = Vec::new();
            while !r.buf.is_empty() {
                let c = r.lp()?;
                if c.is_empty() || certs.len() == MAX_CHAIN_LEN {
                    return Err(BlockError::BadValue);
                }
                certs.push(c.to_vec());
            }
            if certs.is_empty() {
                return Err(BlockError::BadValue);
            }
            Message::CertificateChain(certs)
        }
        tlv::HELLO => {
            let version = r.u8()?;
            if version != EXCHANGE_VERSION {
                return Ok(Some(Message::Hello(Hello {
                    version,
                    algorithm: 0,
                    index: 0,
                    salt: [0; SALT_LEN],
                    challenge: [0; CHALLENGE_LEN],
                    public: Vec::new(),
                    signature: Vec::new(),
                })));
            }
            let algorithm = r.u8()?;
            let index = r.u8()?;
            let _reserved = r.u8()?;
            let salt = r.array::<SALT_LEN>()?;
            let challenge = r.array::<CHALLENGE_LEN>()?;
            let public = r.lp()?.to_vec();
            let signature = r.lp()?.to_vec();
            r.end()?;
            Message::Hello(Hello {
                version,
                algorithm,
                index,
                salt,
                challenge,
                public,
                signature,
            })
        }
        tlv::FINISH => {
            let index = r.u8()?;
            let signature = r.rest().to_vec();
            if signature.is_empty() {
                return Err(BlockError::BadValue);
            }
            Message::Finish(Finish { index, signature })
        }
        tlv::KEY_REQUEST => {
            let kind = KeyKind::from_wire(r.u8()?).ok_or(BlockError::BadValue)?;
            let have_index = r.u32()?;
            let challenge = r.array::<CHALLENGE_LEN>()?;
            r.end()?;
            Message::KeyRequest(KeyRequest {
                kind,
                have_index,
                challenge,
            })
        }
        tlv::METADATA_KEY => {
            let m = MetadataKeyMsg {
                rekey_index: r.u32()?,
                cipher: r.u8()?,
                enc_key: r.array()?,
                iv: r.array()?,
                hmac_cipher: r.u8()?,
                hmac_key: r.array()?,
            };
            r.end()?;
            Message::MetadataKey(m)
        }
        tlv::ACK => {
            let mut acks = Vec::new();
            while !r.buf.is_empty() {
                let kind = KeyKind::from_wire(r.u8()?).ok_or(BlockError::BadValue)?;
                acks.push(Ack {
                    kind,
                    index: r.u32()?,
                });
            }
            if acks.is_empty() {
                return Err(BlockError::BadValue);
            }
            Message::Ack(acks)
        }
        tlv::SOFTWARE_VERSION => {
            let v = core::str::from_utf8(r.rest()).map_err(|_| BlockError::BadValue)?;
            Message::SoftwareVersion(SoftwareVersion::new(v).map_err(|_| BlockError::BadValue)?)
        }
        _ => return Ok(None),
    };
    Ok(Some(m))
}

/// Parse the payload TLVs of a clear block or of a decrypted sealed block.
pub fn parse_payload(section: &[u8]) -> Result<Vec<Message>, BlockError> {
    let mut out = Vec::new();
    walk_tlvs(section, |ty, value| {
        if is_header_type(ty) {
            return Err(BlockError::WrongSection);
        }
        if let Some(m) = parse_message(ty, value)? {
            out.push(m);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Encode payload TLVs in the fixed transmit order (certificate, hello, finish, key request,
/// metadata key, ack, software version). A kind given twice is an error.
pub fn encode_payload(messages: &[Message]) -> Result<Vec<u8>, BlockError> {
    let mut sorted: Vec<&Message> = messages.iter().collect();
    sorted.sort_by_key(|m| m.tlv_type());
    let mut out = Vec::new();
    let mut value = Vec::new();
    let mut last = None;
    for m in sorted {
        if last == Some(m.tlv_type()) {
            return Err(BlockError::DuplicateTlv);
        }
        last = Some(m.tlv_type());
        value.clear();
        m.encode_value(&mut value)?;
        put_tlv(&mut out, m.tlv_type(), &value)?;
    }
    value.zeroize();
    Ok(out)
}

/// How a block is protected.
pub enum Protection<'a> {
    /// No peer key yet (or the peer has lost it): clear, only exchange messages.
    Clear,
    /// Sealed with a peer key; `iv` must come from a CSPRNG.
    Sealed {
        /// The peer key.
        key: &'a PeerKey,
        /// The CBC IV.
        iv: [u8; IV_LEN],
    },
}

/// Encode a whole block.
pub fn encode_block(
    peering_name: &str,
    messages: &[Message],
    protection: Protection<'_>,
) -> Result<Vec<u8>, BlockError> {
    if peering_name.is_empty() || peering_name.len() > MAX_NAME_LEN {
        return Err(BlockError::BadValue);
    }
    let mut header_tlvs = Vec::new();
    if let Protection::Sealed { key, .. } = &protection {
        put_tlv(
            &mut header_tlvs,
            tlv::SECURITY_IDENTIFIER,
            &u32::from(key.index()).to_be_bytes(),
        )?;
    } else if messages.iter().any(|m| !m.allowed_in_clear()) {
        return Err(BlockError::ClearNotAllowed);
    }
    put_tlv(&mut header_tlvs, tlv::PEERING_NAME, peering_name.as_bytes())?;
    let hl = BASE_HEADER_LEN + header_tlvs.len();
    if hl > MAX_HEADER_LEN {
        return Err(BlockError::TooLarge);
    }
    let mut payload = encode_payload(messages)?;
    let (body, key) = match protection {
        Protection::Clear => (payload, None),
        Protection::Sealed { key, iv } => {
            let plain_len = payload.len();
            payload.resize(metadata_ciphertext_len(plain_len), 0);
            let n = key
                .key()
                .encrypt_tlvs(&mut payload, plain_len, iv)
                .map_err(|_| BlockError::TooLarge)?;
            payload.truncate(n);
            (payload, Some(key))
        }
    };
    let pl = u16::try_from(body.len()).map_err(|_| BlockError::TooLarge)?;
    let mut out = Vec::with_capacity(hl + body.len() + HMAC_LEN);
    out.extend_from_slice(&COOKIE);
    // hl <= 0x0fff, checked above.
    out.extend_from_slice(&((u16::from(VERSION) << 12) | hl as u16).to_be_bytes());
    out.extend_from_slice(&pl.to_be_bytes());
    out.extend_from_slice(&header_tlvs);
    out.extend_from_slice(&body);
    if let Some(key) = key {
        let tag = key.key().mac().sign(&out);
        out.extend_from_slice(&tag);
    }
    Ok(out)
}

/// A block whose header parsed: who sent it and how it is protected. Open the payload with
/// [`BlockView::open`].
#[derive(Debug, Clone, Copy)]
pub struct BlockView<'a> {
    /// The sender's peering-common-name.
    pub peering_name: &'a str,
    /// The peer-key index that sealed the block; `None` for a clear block.
    pub key_index: Option<u32>,
    signed: &'a [u8],
    payload: &'a [u8],
    tag: &'a [u8],
}

/// Parse and check the header of a block.
pub fn parse_block(b: &[u8]) -> Result<BlockView<'_>, BlockError> {
    if b.len() < BASE_HEADER_LEN {
        return Err(BlockError::Truncated);
    }
    if b[..8] != COOKIE {
        return Err(BlockError::BadCookie);
    }
    let w = u16::from_be_bytes([b[8], b[9]]);
    if (w >> 12) as u8 != VERSION {
        return Err(BlockError::BadVersion);
    }
    let hl = usize::from(w & 0x0fff);
    if hl < BASE_HEADER_LEN || hl > b.len() {
        return Err(BlockError::BadHeaderLength);
    }
    let pl = usize::from(u16::from_be_bytes([b[10], b[11]]));
    let end = hl + pl;
    if end > b.len() {
        return Err(BlockError::BadPayloadLength);
    }
    let mut name = None;
    let mut key_index = None;
    walk_tlvs(&b[BASE_HEADER_LEN..hl], |ty, value| {
        match ty {
            tlv::SECURITY_IDENTIFIER => {
                let v: [u8; 4] = value.try_into().map_err(|_| BlockError::BadValue)?;
                key_index = Some(u32::from_be_bytes(v));
            }
            tlv::PEERING_NAME => {
                if value.is_empty() || value.len() > MAX_NAME_LEN {
                    return Err(BlockError::BadValue);
                }
                name = Some(core::str::from_utf8(value).map_err(|_| BlockError::BadValue)?);
            }
            t if is_payload_type(t) => return Err(BlockError::WrongSection),
            _ => {}
        }
        Ok(())
    })?;
    let peering_name = name.ok_or(BlockError::MissingPeeringName)?;
    let trailer = &b[end..];
    let want = if key_index.is_some() { HMAC_LEN } else { 0 };
    if trailer.len() != want {
        return Err(BlockError::TrailingBytes);
    }
    Ok(BlockView {
        peering_name,
        key_index,
        signed: &b[..end],
        payload: &b[hl..end],
        tag: trailer,
    })
}

impl BlockView<'_> {
    /// Whether the block is sealed.
    pub fn is_sealed(&self) -> bool {
        self.key_index.is_some()
    }

    /// Verify (sealed: HMAC first, in constant time), decrypt and parse the payload TLVs.
    /// `key` must be the peer key of [`BlockView::key_index`] for a sealed block and is
    /// ignored for a clear one. Clear blocks may only carry exchange messages.
    pub fn open(&self, key: Option<&PeerKey>) -> Result<Vec<Message>, BlockError> {
        match self.key_index {
            None => {
                let msgs = parse_payload(self.payload)?;
                if msgs.iter().any(|m| !m.allowed_in_clear()) {
                    return Err(BlockError::ClearNotAllowed);
                }
                Ok(msgs)
            }
            Some(idx) => {
                let key = key
                    .filter(|k| u32::from(k.index()) == idx)
                    .ok_or(BlockError::UnknownKeyIndex)?;
                key.key()
                    .mac()
                    .verify(self.signed, self.tag)
                    .map_err(|_| BlockError::BadMac)?;
                let mut buf = zeroize::Zeroizing::new(self.payload.to_vec());
                let n = key
                    .key()
                    .decrypt_tlvs(&mut buf)
                    .map_err(|_| BlockError::BadCiphertext)?;
                parse_payload(&buf[..n])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::PeerKeyMaterial;

    fn key(index: u8) -> PeerKey {
        PeerKey::new(&PeerKeyMaterial {
            index,
            enc: [0x11; 32],
            hmac: [0x22; 48],
        })
    }

    fn sample() -> Vec<Message> {
        vec![
            Message::Ack(vec![
                Ack {
                    kind: KeyKind::PeerKey,
                    index: 3,
                },
                Ack {
                    kind: KeyKind::MetadataKey,
                    index: 7,
                },
            ]),
            Message::CertificateChain(vec![vec![0x30, 0x01, 0x00], vec![0x30, 0x00]]),
            Message::Hello(Hello {
                version: EXCHANGE_VERSION,
                algorithm: 1,
                index: 3,
                salt: [0xa5; 32],
                challenge: [0x5a; 16],
                public: vec![9; 32],
                signature: vec![8; 64],
            }),
            Message::Finish(Finish {
                index: 3,
                signature: vec![7; 64],
            }),
            Message::KeyRequest(KeyRequest {
                kind: KeyKind::PeerKey,
                have_index: 0,
                challenge: [0x77; 16],
            }),
            Message::MetadataKey(MetadataKeyMsg {
                rekey_index: 7,
                cipher: CIPHER_AES_256_CBC,
                enc_key: [1; 32],
                iv: [2; 16],
                hmac_cipher: HMAC_SHA384_192,
                hmac_key: [3; 48],
            }),
        ]
    }

    fn sorted(mut v: Vec<Message>) -> Vec<Message> {
        v.sort_by_key(|m| m.tlv_type());
        v
    }

    #[test]
    fn sealed_round_trip_and_order() {
        let k = key(3);
        let b = encode_block(
            "router-b",
            &sample(),
            Protection::Sealed {
                key: &k,
                iv: [4; 16],
            },
        )
        .unwrap();
        let v = parse_block(&b).unwrap();
        assert_eq!(v.peering_name, "router-b");
        assert_eq!(v.key_index, Some(3));
        assert_eq!(v.open(Some(&k)).unwrap(), sorted(sample()));
        assert_eq!(
            v.open(Some(&key(4))).unwrap_err(),
            BlockError::UnknownKeyIndex
        );
        assert_eq!(v.open(None).unwrap_err(), BlockError::UnknownKeyIndex);
        let other = PeerKey::new(&PeerKeyMaterial {
            index: 3,
            enc: [0x11; 32],
            hmac: [0x23; 48],
        });
        assert_eq!(v.open(Some(&other)).unwrap_err(), BlockError::BadMac);
        // Security Identifier first, then the name.
        assert_eq!(b[12..14], [0x00, 0x10]);
        assert_eq!(b[20..22], [0x80, 0x01]);
        assert!(!format!("{:?}", sample()).contains("1, 1, 1, 1"));
    }

    #[test]
    fn clear_refuses_key_material() {
        assert_eq!(
            encode_block("a", &sample(), Protection::Clear).unwrap_err(),
            BlockError::ClearNotAllowed
        );
        let msgs: Vec<Message> = sample()
            .into_iter()
            .filter(|m| m.allowed_in_clear())
            .collect();
        let b = encode_block("a", &msgs, Protection::Clear).unwrap();
        let v = parse_block(&b).unwrap();
        assert_eq!(v.key_index, None);
        assert_eq!(v.open(None).unwrap(), sorted(msgs));
        // A clear block carrying an Ack is refused on receipt.
        let mut forged = b[..12].to_vec();
        let tail = &b[12..];
        let ack = [0x80, 0x15, 0, 5, 1, 0, 0, 0, 1];
        forged.extend_from_slice(tail);
        forged.extend_from_slice(&ack);
        let pl = u16::from_be_bytes([forged[10], forged[11]]) + ack.len() as u16;
        forged[10..12].copy_from_slice(&pl.to_be_bytes());
        assert_eq!(
            parse_block(&forged).unwrap().open(None).unwrap_err(),
            BlockError::ClearNotAllowed
        );
    }

    #[test]
    fn strict_header() {
        let b = encode_block("a", &[], Protection::Clear).unwrap();
        assert_eq!(b.len(), 12 + 5);
        assert_eq!(b[8..12], [0x10, 0x11, 0x00, 0x00]);
        assert!(parse_block(&b).is_ok());
        assert_eq!(parse_block(&b[..11]).unwrap_err(), BlockError::Truncated);
        let mut x = b.clone();
        x[0] ^= 1;
        assert_eq!(parse_block(&x).unwrap_err(), BlockError::BadCookie);
        let mut x = b.clone();
        x[8] = 0x20;
        assert_eq!(parse_block(&x).unwrap_err(), BlockError::BadVersion);
        let mut x = b.clone();
        x[9] = 0x0b;
        assert_eq!(parse_block(&x).unwrap_err(), BlockError::BadHeaderLength);
        let mut x = b.clone();
        x[11] = 1;
        assert_eq!(parse_block(&x).unwrap_err(), BlockError::BadPayloadLength);
        let mut x = b.clone();
        x.push(0);
        assert_eq!(parse_block(&x).unwrap_err(), BlockError::TrailingBytes);
        // A payload TLV in the header.
        let mut x = b.clone();
        x[12..14].copy_from_slice(&tlv::HELLO.to_be_bytes());
        assert_eq!(parse_block(&x).unwrap_err(), BlockError::WrongSection);
        // An unknown header TLV is skipped, but then the name is missing.
        let mut x = b.clone();
        x[12..14].copy_from_slice(&0x7777u16.to_be_bytes());
        assert_eq!(parse_block(&x).unwrap_err(), BlockError::MissingPeeringName);
        // Duplicated name.
        let mut x = b[..12].to_vec();
        x.extend_from_slice(&b[12..]);
        x.extend_from_slice(&b[12..]);
        x[9] = 12 + 10;
        assert_eq!(parse_block(&x).unwrap_err(), BlockError::DuplicateTlv);
    }

    #[test]
    fn payload_rules() {
        // unknown payload TLV skipped
        assert_eq!(parse_payload(&[0x90, 0x00, 0, 2, 1, 2]).unwrap(), vec![]);
        // header TLV in payload
        assert_eq!(
            parse_payload(&[0x00, 0x10, 0, 4, 0, 0, 0, 1]).unwrap_err(),
            BlockError::WrongSection
        );
        // overrun
        assert_eq!(
            parse_payload(&[0x80, 0x13, 0, 9, 1]).unwrap_err(),
            BlockError::TlvOverrun
        );
        assert_eq!(parse_payload(&[0x80]).unwrap_err(), BlockError::TlvOverrun);
        // bad values
        assert_eq!(
            parse_payload(&[0x80, 0x13, 0, 4, 1, 0, 0, 0]).unwrap_err(),
            BlockError::BadValue
        );
        assert_eq!(
            parse_payload(&[0x80, 0x13, 0, 5, 9, 0, 0, 0, 0]).unwrap_err(),
            BlockError::BadValue
        );
        assert_eq!(
            parse_payload(&[0x80, 0x15, 0, 0]).unwrap_err(),
            BlockError::BadValue
        );
        // duplicate
        let mut kr = vec![0x80, 0x13, 0, 21, 1, 0, 0, 0, 0];
        kr.extend_from_slice(&[0; 16]);
        let mut two = kr.clone();
        two.extend_from_slice(&kr);
        assert_eq!(parse_payload(&two).unwrap_err(), BlockError::DuplicateTlv);
        // Hello of another version keeps only the version.
        let m = parse_payload(&[0x80, 0x11, 0, 3, 3, 0xff, 0xff]).unwrap();
        assert!(matches!(&m[0], Message::Hello(h) if h.version == 3));
        assert_eq!(
            encode_payload(&vec![
                Message::KeyRequest(KeyRequest {
                    kind: KeyKind::PeerKey,
                    have_index: 0,
                    challenge: [0; 16],
                });
                2
            ])
            .unwrap_err(),
            BlockError::DuplicateTlv
        );
    }
}

/// Golden vectors; the same hex is in `docs/bfd-metadata.md`, which this test also checks.
#[cfg(test)]
mod golden {
    use super::*;
    use crate::exchange::{
        derive_peer_key, EphemeralSecret, KeyExchangeAlgorithm, TranscriptContext,
    };

    const DOC: &str = include_str!("../../docs/bfd-metadata.md");

    fn vectors() -> Vec<(&'static str, String)> {
        let alice = EphemeralSecret::from_bytes(
            KeyExchangeAlgorithm::X25519,
            &hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap(),
        );
        let bob_pub =
            hex::decode("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
                .unwrap();
        let shared = alice.diffie_hellman(&bob_pub).unwrap();
        let salt_l = [0x11u8; 32];
        let salt_f = [0x22u8; 32];
        let m = derive_peer_key(&shared, &salt_l, &salt_f, "router-a", "router-b", 1);
        let ctx = TranscriptContext {
            algorithm: KeyExchangeAlgorithm::X25519,
            index: 1,
            leader: "router-a",
            follower: "router-b",
        };
        let key = PeerKey::new(&m);
        let key_request = encode_block(
            "router-b",
            &[Message::KeyRequest(KeyRequest {
                kind: KeyKind::PeerKey,
                have_index: 0,
                challenge: [0x77; 16],
            })],
            Protection::Clear,
        )
        .unwrap();
        let versioned_request = encode_block(
            "router-b",
            &[
                Message::SoftwareVersion(SoftwareVersion::new("0.1.0").unwrap()),
                Message::KeyRequest(KeyRequest {
                    kind: KeyKind::PeerKey,
                    have_index: 0,
                    challenge: [0x77; 16],
                }),
            ],
            Protection::Clear,
        )
        .unwrap();
        let sealed = encode_block(
            "router-b",
            &[
                Message::MetadataKey(MetadataKeyMsg {
                    rekey_index: 1,
                    cipher: CIPHER_AES_256_CBC,
                    enc_key: [0x44; 32],
                    iv: [0x55; 16],
                    hmac_cipher: HMAC_SHA384_192,
                    hmac_key: [0x66; 48],
                }),
                Message::Ack(vec![Ack {
                    kind: KeyKind::PeerKey,
                    index: 1,
                }]),
            ],
            Protection::Sealed {
                key: &key,
                iv: [0x33; 16],
            },
        )
        .unwrap();
        vec![
            ("key-request-block", hex::encode(key_request)),
            (
                "key-request-block-with-version",
                hex::encode(versioned_request),
            ),
            (
                "t-offer",
                hex::encode(ctx.offer(&salt_l, &[0x77; 16], alice.public())),
            ),
            ("peer-key-enc", hex::encode(m.enc)),
            ("peer-key-hmac", hex::encode(m.hmac)),
            ("sealed-block", hex::encode(sealed)),
            ("bfd-auth-secret", hex::encode(&key.bfd_auth_secret()[..])),
            ("link-test-key", hex::encode(&key.link_key()[..])),
        ]
    }

    #[test]
    fn vectors_match_the_document() {
        let v = vectors();
        for (name, hex) in &v {
            println!("{name}: {hex}");
        }
        for (name, hex) in v {
            // The document wraps long vectors at 64 hex digits per line.
            let doc: String = DOC.split_whitespace().collect();
            assert!(
                doc.contains(&hex),
                "{name} not in docs/bfd-metadata.md:\n{hex}"
            );
        }
    }

    #[test]
    fn sealed_vector_opens() {
        let v = vectors();
        let sealed = hex::decode(&v[5].1).unwrap();
        let view = parse_block(&sealed).unwrap();
        assert_eq!(view.key_index, Some(1));
        let alice = EphemeralSecret::from_bytes(
            KeyExchangeAlgorithm::X25519,
            &hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap(),
        );
        let bob_pub =
            hex::decode("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
                .unwrap();
        let shared = alice.diffie_hellman(&bob_pub).unwrap();
        let m = derive_peer_key(&shared, &[0x11; 32], &[0x22; 32], "router-a", "router-b", 1);
        let msgs = view.open(Some(&PeerKey::new(&m))).unwrap();
        assert_eq!(msgs.len(), 2);
    }
}
