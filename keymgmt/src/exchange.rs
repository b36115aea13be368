//! The authenticated ephemeral Diffie-Hellman exchange that yields the peer key
//! (docs/background.md §6 "Keys"; the message flow is in `docs/bfd-metadata.md`).
//!
//! ```text
//! follower -> leader   KeyRequest = kind, have_index, challenge_F
//! leader  -> follower  Hello_L  = alg, index, salt_L, challenge_F, pub_L,  Sign_L(T_offer)
//! follower -> leader   Hello_F  = alg, index, salt_F, challenge_F, pub_F,  Sign_F(T_answer)
//! leader  -> follower  Finish   = index,                                   Sign_L(T_finish)
//!
//! common   = version(2) ‖ alg ‖ index ‖ lp(leader name) ‖ lp(follower name)
//! T_offer  = "svr-fastpath offer v2"  ‖ common ‖ salt_L ‖ challenge_F ‖ lp(pub_L)
//! T_answer = "svr-fastpath answer v2" ‖ common ‖ salt_L ‖ salt_F ‖ challenge_F ‖ lp(pub_L) ‖ lp(pub_F)
//! T_finish = "svr-fastpath finish v2" ‖ common ‖ salt_L ‖ salt_F ‖ challenge_F ‖ lp(pub_L) ‖ lp(pub_F)
//! lp(x)    = u16 BE length ‖ x
//!
//! peer key = HKDF-SHA384(IKM = DH shared secret, salt = salt_L ‖ salt_F,
//!                        info = "svr-fastpath peer key v1" ‖ lp(leader) ‖ lp(follower) ‖ index,
//!                        L = 80) -> enc key [0..32] ‖ HMAC key [32..80]
//! ```
//!
//! Both answer and finish signatures cover both salts, both names, both public values and
//! the index, so a man in the middle who swaps a public value or a salt breaks a signature;
//! the offer signature binds the leader's own values and makes a forged offer useless. A key
//! is only used after the signature that covers the whole transcript has been checked: the
//! follower's at the leader, the leader's Finish at the follower.

use core::fmt;
use std::sync::OnceLock;

use hkdf::Hkdf;
use num_bigint_dig::BigUint;
use rand_core::CryptoRngCore;
use sha2::{Sha256, Sha384};
use svr_crypto::MetadataKey;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Version of the exchange carried in every Hello.
pub const EXCHANGE_VERSION: u8 = 2;
/// HKDF `info` prefix of the peer key.
pub const PEER_KEY_INFO: &[u8] = b"svr-fastpath peer key v1";
/// HKDF-SHA256 `info` of the BFD authentication secret derived from a peer key.
pub const BFD_AUTH_INFO: &[u8] = b"svr-fastpath bfd auth v1";
/// Length of the BFD authentication secret.
pub const BFD_AUTH_LEN: usize = 32;
/// HKDF-SHA256 `info` of the link-test key derived from a peer key (docs/multipath.md §5).
pub const LINK_TEST_INFO: &[u8] = b"svr-fastpath link test v1";
/// Length of the link-test key.
pub const LINK_KEY_LEN: usize = 32;
/// Salt length of each side.
pub const SALT_LEN: usize = 32;
/// Length of the follower's challenge, which every offer must echo (freshness).
pub const CHALLENGE_LEN: usize = 16;
/// Label of the leader's offer signature.
pub const OFFER_LABEL: &[u8] = b"svr-fastpath offer v2";
/// Label of the follower's answer signature.
pub const ANSWER_LABEL: &[u8] = b"svr-fastpath answer v2";
/// Label of the leader's finish signature.
pub const FINISH_LABEL: &[u8] = b"svr-fastpath finish v2";
/// Bits of the private exponent for dh-modp-4096 (RFC 3526 §8 asks for at least twice the
/// ~150-bit strength of the group; 512 keeps a wide margin and makes modexp 8x cheaper than
/// a full-size exponent).
pub const MODP_EXPONENT_BITS: usize = 512;
/// Length of a dh-modp-4096 public value and shared secret (fixed, big-endian, left-padded).
pub const MODP_LEN: usize = 512;

/// RFC 3526 §5, the 4096-bit MODP group (id 16); generator 2.
pub const MODP4096_PRIME_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D",
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D",
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9",
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64",
    "ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6B",
    "F12FFA06D98A0864D87602733EC86A64521F2B18177B200C",
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB31",
    "43DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA",
    "2583E9CA2AD44CE8DBBBC2DB04DE8EF92E8EFC141FBECAA6",
    "287C59474E6BC05D99B2964FA090C3A2233BA186515BE7ED",
    "1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199",
    "FFFFFFFFFFFFFFFF",
);

fn modp_prime() -> &'static BigUint {
    static P: OnceLock<BigUint> = OnceLock::new();
    P.get_or_init(|| {
        // The constant above is valid hex; parse_bytes only fails on invalid digits.
        BigUint::parse_bytes(MODP4096_PRIME_HEX.as_bytes(), 16).expect("RFC 3526 prime is hex")
    })
}

/// Why a public value or a shared secret was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ExchangeError {
    /// The public value has the wrong length for the algorithm.
    #[error("public value has the wrong length")]
    BadPublicLength,
    /// dh-modp-4096: the peer value is not in 1 < y < p-1.
    #[error("public value out of range (need 1 < y < p-1)")]
    PublicOutOfRange,
    /// x25519: the shared secret is all zero (a low-order point).
    #[error("non-contributory shared secret (low-order point)")]
    NonContributory,
}

/// `key-exchange-algorithm`: the DH flavour of the peer-key exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyExchangeAlgorithm {
    /// `x25519` (RFC 7748), the default. Wire id 1.
    #[default]
    X25519,
    /// `dh-modp-4096`: RFC 3526 group 16, generator 2. Wire id 2.
    DhModp4096,
}

impl KeyExchangeAlgorithm {
    /// The id carried in the Hello TLV.
    pub const fn id(self) -> u8 {
        match self {
            KeyExchangeAlgorithm::X25519 => 1,
            KeyExchangeAlgorithm::DhModp4096 => 2,
        }
    }

    /// The algorithm of a wire id, `None` if we do not implement it.
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(KeyExchangeAlgorithm::X25519),
            2 => Some(KeyExchangeAlgorithm::DhModp4096),
            _ => None,
        }
    }

    /// The configuration name.
    pub const fn name(self) -> &'static str {
        match self {
            KeyExchangeAlgorithm::X25519 => "x25519",
            KeyExchangeAlgorithm::DhModp4096 => "dh-modp-4096",
        }
    }

    /// Length of a public value.
    pub const fn public_len(self) -> usize {
        match self {
            KeyExchangeAlgorithm::X25519 => 32,
            KeyExchangeAlgorithm::DhModp4096 => MODP_LEN,
        }
    }
}

impl fmt::Display for KeyExchangeAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

enum Secret {
    X25519(x25519_dalek::StaticSecret),
    Modp(BigUint),
}

/// One side's ephemeral DH secret. Consumed by [`EphemeralSecret::diffie_hellman`] and
/// zeroized on drop (num-bigint-dig's temporaries inside `modpow` are not: best effort).
pub struct EphemeralSecret {
    alg: KeyExchangeAlgorithm,
    secret: Secret,
    public: Vec<u8>,
}

impl Drop for EphemeralSecret {
    fn drop(&mut self) {
        if let Secret::Modp(x) = &mut self.secret {
            x.zeroize();
        }
        // StaticSecret zeroizes itself (x25519-dalek "zeroize" feature).
    }
}

impl fmt::Debug for EphemeralSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EphemeralSecret")
            .field("alg", &self.alg)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn left_pad(bytes: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len.saturating_sub(bytes.len())];
    out.extend_from_slice(bytes);
    out
}

impl EphemeralSecret {
    /// A fresh secret from the caller's CSPRNG.
    pub fn generate(alg: KeyExchangeAlgorithm, rng: &mut dyn CryptoRngCore) -> EphemeralSecret {
        match alg {
            KeyExchangeAlgorithm::X25519 => {
                let mut b = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(&mut b[..]);
                Self::from_bytes(alg, &b[..])
            }
            KeyExchangeAlgorithm::DhModp4096 => {
                let mut b = Zeroizing::new([0u8; MODP_EXPONENT_BITS / 8]);
                rng.fill_bytes(&mut b[..]);
                b[0] |= 0x80; // a full-length exponent
                Self::from_bytes(alg, &b[..])
            }
        }
    }

    /// A secret from given bytes (x25519: the 32-byte scalar; dh-modp-4096: the big-endian
    /// exponent). For golden vectors and tests; production uses [`EphemeralSecret::generate`].
    pub fn from_bytes(alg: KeyExchangeAlgorithm, bytes: &[u8]) -> EphemeralSecret {
        match alg {
            KeyExchangeAlgorithm::X25519 => {
                let mut b = Zeroizing::new([0u8; 32]);
                let n = bytes.len().min(32);
                b[..n].copy_from_slice(&bytes[..n]);
                let s = x25519_dalek::StaticSecret::from(*b);
                let public = x25519_dalek::PublicKey::from(&s).as_bytes().to_vec();
                EphemeralSecret {
                    alg,
                    secret: Secret::X25519(s),
                    public,
                }
            }
            KeyExchangeAlgorithm::DhModp4096 => {
                let x = BigUint::from_bytes_be(bytes);
                let y = BigUint::from(2u32).modpow(&x, modp_prime());
                let public = left_pad(&y.to_bytes_be(), MODP_LEN);
                EphemeralSecret {
                    alg,
                    secret: Secret::Modp(x),
                    public,
                }
            }
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KeyExchangeAlgorithm {
        self.alg
    }

    /// The public value to send.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// Combine with the peer's public value. The secret stays usable for a retransmitted
    /// answer; it is zeroized when this value is dropped, which the state machine does as soon
    /// as the exchange moves on.
    pub fn diffie_hellman(&self, peer_public: &[u8]) -> Result<SharedSecret, ExchangeError> {
        if peer_public.len() != self.alg.public_len() {
            return Err(ExchangeError::BadPublicLength);
        }
        match &self.secret {
            Secret::X25519(s) => {
                let mut pk = [0u8; 32];
                pk.copy_from_slice(peer_public);
                let shared = s.diffie_hellman(&x25519_dalek::PublicKey::from(pk));
                if !shared.was_contributory() {
                    return Err(ExchangeError::NonContributory);
                }
                Ok(SharedSecret(Zeroizing::new(shared.as_bytes().to_vec())))
            }
            Secret::Modp(x) => {
                let y = validate_modp_public(peer_public)?;
                let mut z = y.modpow(x, modp_prime());
                let out = left_pad(&z.to_bytes_be(), MODP_LEN);
                z.zeroize();
                Ok(SharedSecret(Zeroizing::new(out)))
            }
        }
    }
}

/// Check a dh-modp-4096 public value: exactly 512 bytes and 1 < y < p-1 (RFC 2631 §2.1.5's
/// range check; with a safe prime that excludes the order-1 and order-2 elements).
pub fn validate_modp_public(y: &[u8]) -> Result<BigUint, ExchangeError> {
    if y.len() != MODP_LEN {
        return Err(ExchangeError::BadPublicLength);
    }
    let y = BigUint::from_bytes_be(y);
    let p = modp_prime();
    let one = BigUint::from(1u32);
    if y <= one || y >= p - &one {
        return Err(ExchangeError::PublicOutOfRange);
    }
    Ok(y)
}

/// A DH shared secret. Zeroized on drop; `Debug` redacts.
pub struct SharedSecret(Zeroizing<Vec<u8>>);

impl SharedSecret {
    /// The secret bytes (x25519: 32; dh-modp-4096: 512, big-endian, left-padded).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

/// The derived peer key material: AES-256 key and HMAC-SHA384 key. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct PeerKeyMaterial {
    /// The peer-key index the key was derived for.
    #[zeroize(skip)]
    pub index: u8,
    /// AES-256-CBC key for the BFD metadata block.
    pub enc: [u8; 32],
    /// HMAC-SHA384 key for the BFD metadata block.
    pub hmac: [u8; 48],
}

impl fmt::Debug for PeerKeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerKeyMaterial")
            .field("index", &self.index)
            .field("keys", &"<redacted>")
            .finish()
    }
}

fn put_lp(out: &mut Vec<u8>, v: &[u8]) {
    // Names and public values are at most 512 bytes; the cast cannot truncate real input,
    // and lengths above u16 are refused by the codec before they get here.
    out.extend_from_slice(&(v.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend_from_slice(v);
}

/// Derive the peer key (see the module doc).
pub fn derive_peer_key(
    shared: &SharedSecret,
    salt_leader: &[u8; SALT_LEN],
    salt_follower: &[u8; SALT_LEN],
    leader: &str,
    follower: &str,
    index: u8,
) -> PeerKeyMaterial {
    let mut salt = [0u8; 2 * SALT_LEN];
    salt[..SALT_LEN].copy_from_slice(salt_leader);
    salt[SALT_LEN..].copy_from_slice(salt_follower);
    let mut info = Vec::with_capacity(PEER_KEY_INFO.len() + leader.len() + follower.len() + 5);
    info.extend_from_slice(PEER_KEY_INFO);
    put_lp(&mut info, leader.as_bytes());
    put_lp(&mut info, follower.as_bytes());
    info.push(index);
    let mut okm = Zeroizing::new([0u8; 80]);
    // 80 bytes is far below HKDF-SHA384's 255 * 48 limit, so expand cannot fail.
    Hkdf::<Sha384>::new(Some(&salt), shared.as_bytes())
        .expand(&info, &mut okm[..])
        .expect("80 bytes is a valid HKDF-SHA384 length");
    let mut m = PeerKeyMaterial {
        index,
        enc: [0; 32],
        hmac: [0; 48],
    };
    m.enc.copy_from_slice(&okm[..32]);
    m.hmac.copy_from_slice(&okm[32..]);
    m
}

/// The BFD authentication secret of a peer key:
/// `HKDF-SHA256(IKM = enc key ‖ HMAC key, salt = none, info = "svr-fastpath bfd auth v1",
/// L = 32)`. Derived once when the key is installed; the result is zeroized on drop.
pub fn derive_bfd_auth(material: &PeerKeyMaterial) -> Zeroizing<[u8; BFD_AUTH_LEN]> {
    let mut ikm = Zeroizing::new([0u8; 80]);
    ikm[..32].copy_from_slice(&material.enc);
    ikm[32..].copy_from_slice(&material.hmac);
    let mut out = Zeroizing::new([0u8; BFD_AUTH_LEN]);
    // 32 bytes is far below HKDF-SHA256's 255 * 32 limit, so expand cannot fail.
    Hkdf::<Sha256>::new(None, &ikm[..])
        .expand(BFD_AUTH_INFO, &mut out[..])
        .expect("32 bytes is a valid HKDF-SHA256 length");
    out
}

/// The link-test key of a peer key, which tags the link-test probes of the peer's paths
/// (docs/multipath.md §5): `HKDF-SHA256(IKM = enc key ‖ HMAC key, salt = none,
/// info = "svr-fastpath link test v1", L = 32)`, the shape of [`derive_bfd_auth`] with its own
/// label, so neither secret tells anything about the other. Zeroized on drop.
pub fn derive_link_key(material: &PeerKeyMaterial) -> Zeroizing<[u8; LINK_KEY_LEN]> {
    let mut ikm = Zeroizing::new([0u8; 80]);
    ikm[..32].copy_from_slice(&material.enc);
    ikm[32..].copy_from_slice(&material.hmac);
    let mut out = Zeroizing::new([0u8; LINK_KEY_LEN]);
    // 32 bytes is far below HKDF-SHA256's 255 * 32 limit, so expand cannot fail.
    Hkdf::<Sha256>::new(None, &ikm[..])
        .expand(LINK_TEST_INFO, &mut out[..])
        .expect("32 bytes is a valid HKDF-SHA256 length");
    out
}

/// An installed peer key: the svr-crypto [`MetadataKey`] (AES-256-CBC + HMAC-SHA384/24)
/// built from the peer key material, which protects the BFD metadata block, and the BFD
/// authentication secret derived from the same material ([`derive_bfd_auth`]).
pub struct PeerKey {
    index: u8,
    key: MetadataKey,
    bfd_auth: Zeroizing<[u8; BFD_AUTH_LEN]>,
    link_key: Zeroizing<[u8; LINK_KEY_LEN]>,
}

impl PeerKey {
    /// Install: expands the AES schedules and HMAC pads once, and derives the BFD
    /// authentication secret (the material itself is not kept).
    pub fn new(material: &PeerKeyMaterial) -> PeerKey {
        PeerKey {
            index: material.index,
            key: MetadataKey::new(u32::from(material.index), &material.enc, &material.hmac),
            bfd_auth: derive_bfd_auth(material),
            link_key: derive_link_key(material),
        }
    }

    /// The 32-byte BFD authentication secret of this peer key (see [`derive_bfd_auth`]).
    pub fn bfd_auth_secret(&self) -> &Zeroizing<[u8; BFD_AUTH_LEN]> {
        &self.bfd_auth
    }

    /// The 32-byte link-test key of this peer key (see [`derive_link_key`]).
    pub fn link_key(&self) -> &Zeroizing<[u8; LINK_KEY_LEN]> {
        &self.link_key
    }

    /// The peer-key index (carried in the block's Security Identifier TLV).
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The block cipher and MAC.
    pub fn key(&self) -> &MetadataKey {
        &self.key
    }
}

impl fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerKey")
            .field("index", &self.index)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// What every transcript starts with.
#[derive(Debug, Clone, Copy)]
pub struct TranscriptContext<'a> {
    /// The algorithm of the exchange.
    pub algorithm: KeyExchangeAlgorithm,
    /// The peer-key index being negotiated.
    pub index: u8,
    /// The leader's peering-common-name.
    pub leader: &'a str,
    /// The follower's peering-common-name.
    pub follower: &'a str,
}

impl TranscriptContext<'_> {
    fn common(&self, label: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(label);
        out.push(EXCHANGE_VERSION);
        out.push(self.algorithm.id());
        out.push(self.index);
        put_lp(out, self.leader.as_bytes());
        put_lp(out, self.follower.as_bytes());
    }

    /// `T_offer`, signed by the leader in its Hello; `challenge` is the follower's, echoed.
    pub fn offer(
        &self,
        salt_l: &[u8; SALT_LEN],
        challenge: &[u8; CHALLENGE_LEN],
        pub_l: &[u8],
    ) -> Vec<u8> {
        let mut t = Vec::with_capacity(144 + pub_l.len());
        self.common(OFFER_LABEL, &mut t);
        t.extend_from_slice(salt_l);
        t.extend_from_slice(challenge);
        put_lp(&mut t, pub_l);
        t
    }

    fn full(
        &self,
        label: &[u8],
        salt_l: &[u8; SALT_LEN],
        salt_f: &[u8; SALT_LEN],
        challenge: &[u8; CHALLENGE_LEN],
        pub_l: &[u8],
        pub_f: &[u8],
    ) -> Vec<u8> {
        let mut t = Vec::with_capacity(176 + pub_l.len() + pub_f.len());
        self.common(label, &mut t);
        t.extend_from_slice(salt_l);
        t.extend_from_slice(salt_f);
        t.extend_from_slice(challenge);
        put_lp(&mut t, pub_l);
        put_lp(&mut t, pub_f);
        t
    }

    /// `T_answer`, signed by the follower in its Hello.
    pub fn answer(
        &self,
        salt_l: &[u8; SALT_LEN],
        salt_f: &[u8; SALT_LEN],
        challenge: &[u8; CHALLENGE_LEN],
        pub_l: &[u8],
        pub_f: &[u8],
    ) -> Vec<u8> {
        self.full(ANSWER_LABEL, salt_l, salt_f, challenge, pub_l, pub_f)
    }

    /// `T_finish`, signed by the leader in its Finish.
    pub fn finish(
        &self,
        salt_l: &[u8; SALT_LEN],
        salt_f: &[u8; SALT_LEN],
        challenge: &[u8; CHALLENGE_LEN],
        pub_l: &[u8],
        pub_f: &[u8],
    ) -> Vec<u8> {
        self.full(FINISH_LABEL, salt_l, salt_f, challenge, pub_l, pub_f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn x25519_rfc7748_section_6_1() {
        let a = EphemeralSecret::from_bytes(
            KeyExchangeAlgorithm::X25519,
            &h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
        );
        let b = EphemeralSecret::from_bytes(
            KeyExchangeAlgorithm::X25519,
            &h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
        );
        assert_eq!(
            a.public(),
            h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        let b_pub = b.public().to_vec();
        assert_eq!(
            b_pub,
            h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        );
        let a_pub = a.public().to_vec();
        let s1 = a.diffie_hellman(&b_pub).unwrap();
        let s2 = b.diffie_hellman(&a_pub).unwrap();
        assert_eq!(
            s1.as_bytes(),
            h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        );
        assert_eq!(s1.as_bytes(), s2.as_bytes());
        assert_eq!(format!("{s1:?}"), "SharedSecret(<redacted>)");
    }

    #[test]
    fn x25519_rejects_low_order_and_bad_length() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let a = EphemeralSecret::generate(KeyExchangeAlgorithm::X25519, &mut rng);
        assert_eq!(
            a.diffie_hellman(&[0u8; 31]).unwrap_err(),
            ExchangeError::BadPublicLength
        );
        let a = EphemeralSecret::generate(KeyExchangeAlgorithm::X25519, &mut rng);
        assert_eq!(
            a.diffie_hellman(&[0u8; 32]).unwrap_err(),
            ExchangeError::NonContributory
        );
    }

    #[test]
    fn modp_range_checks() {
        let p = modp_prime();
        let enc = |v: &BigUint| left_pad(&v.to_bytes_be(), MODP_LEN);
        let one = BigUint::from(1u32);
        for bad in [BigUint::from(0u32), one.clone(), p - &one, p.clone()] {
            assert_eq!(
                validate_modp_public(&enc(&bad)).unwrap_err(),
                ExchangeError::PublicOutOfRange
            );
        }
        assert!(validate_modp_public(&enc(&BigUint::from(2u32))).is_ok());
        assert!(validate_modp_public(&enc(&(p - BigUint::from(2u32)))).is_ok());
        assert_eq!(
            validate_modp_public(&[0xff; MODP_LEN]).unwrap_err(),
            ExchangeError::PublicOutOfRange
        );
        assert_eq!(
            validate_modp_public(&[2; 511]).unwrap_err(),
            ExchangeError::BadPublicLength
        );
        // The prime is the RFC's: 4096 bits, top and bottom 64 bits all ones.
        assert_eq!(p.bits(), 4096);
        let b = p.to_bytes_be();
        assert_eq!(b[..8], [0xff; 8]);
        assert_eq!(b[504..], [0xff; 8]);
    }

    #[test]
    fn modp_agreement() {
        // Small exponents keep this cheap in debug builds; the arithmetic is the same.
        let a = EphemeralSecret::from_bytes(KeyExchangeAlgorithm::DhModp4096, &[3]);
        let b = EphemeralSecret::from_bytes(KeyExchangeAlgorithm::DhModp4096, &[5]);
        // g^3 = 8
        assert_eq!(a.public()[MODP_LEN - 1], 8);
        assert!(a.public()[..MODP_LEN - 1].iter().all(|&x| x == 0));
        let (pa, pb) = (a.public().to_vec(), b.public().to_vec());
        let s1 = a.diffie_hellman(&pb).unwrap();
        let s2 = b.diffie_hellman(&pa).unwrap();
        assert_eq!(s1.as_bytes(), s2.as_bytes());
        // 2^15 = 32768
        assert_eq!(s1.as_bytes()[MODP_LEN - 2..], [0x80, 0x00]);
    }

    /// The peer key of docs/bfd-metadata.md §4.
    fn doc_peer_key() -> PeerKeyMaterial {
        let mut m = PeerKeyMaterial {
            index: 1,
            enc: [0; 32],
            hmac: [0; 48],
        };
        m.enc.copy_from_slice(&h(
            "275d573fa78c8f6c573d4c5cc3baee1186f1d3d201f0a5a62baedca50516dbd3",
        ));
        m.hmac.copy_from_slice(&h(concat!(
            "b6085aa8a7e00a02ffa28a01b7d6af3d38e6ae8d3618e60b2ac70335d0190d7f",
            "89b79f11ffcc49e348857bf5323f962d"
        )));
        m
    }

    #[test]
    fn bfd_auth_secret_matches_python_cryptography() {
        // The peer key of docs/bfd-metadata.md §4; the expected secret was computed with
        // Python `cryptography`: HKDF(SHA256(), 32, salt=None,
        // info=b"svr-fastpath bfd auth v1").derive(enc + hmac).
        let m = doc_peer_key();
        let want = h("0a8ded2eeeecd4c459ff9aa00df22d090ac1abbc633022db5f5363b85f38cb62");
        assert_eq!(derive_bfd_auth(&m)[..], want[..]);
        let k = PeerKey::new(&m);
        assert_eq!(k.bfd_auth_secret()[..], want[..]);
        assert!(!format!("{k:?}").contains("0a8d"));
    }

    #[test]
    fn link_key_matches_python_cryptography() {
        // The peer key of docs/bfd-metadata.md §4; the expected key was computed with
        // Python `cryptography`: HKDF(SHA256(), 32, salt=None,
        // info=b"svr-fastpath link test v1").derive(enc + hmac).
        let m = doc_peer_key();
        let want = h("bda7207b7b5c5ccce4d58b55fc8422d309b1a8058392ed407087289a3d469e32");
        assert_eq!(derive_link_key(&m)[..], want[..]);
        let k = PeerKey::new(&m);
        assert_eq!(k.link_key()[..], want[..]);
        assert_ne!(k.link_key()[..], k.bfd_auth_secret()[..]);
        assert!(!format!("{k:?}").contains("bda7"));
    }

    #[test]
    fn derive_binds_every_input() {
        let s = SharedSecret(Zeroizing::new(vec![7u8; 32]));
        let base = derive_peer_key(&s, &[1; 32], &[2; 32], "a", "b", 1);
        let variants = [
            derive_peer_key(&s, &[9; 32], &[2; 32], "a", "b", 1),
            derive_peer_key(&s, &[1; 32], &[9; 32], "a", "b", 1),
            derive_peer_key(&s, &[2; 32], &[1; 32], "a", "b", 1),
            derive_peer_key(&s, &[1; 32], &[2; 32], "b", "a", 1),
            derive_peer_key(&s, &[1; 32], &[2; 32], "ab", "", 1),
            derive_peer_key(&s, &[1; 32], &[2; 32], "a", "b", 2),
        ];
        for v in &variants {
            assert_ne!(v.enc, base.enc);
            assert_ne!(v.hmac, base.hmac);
        }
        // Matches a direct HKDF computation.
        let mut info = PEER_KEY_INFO.to_vec();
        info.extend_from_slice(&[0, 1, b'a', 0, 1, b'b', 1]);
        let mut salt = [1u8; 64];
        salt[32..].fill(2);
        let mut okm = [0u8; 80];
        Hkdf::<Sha384>::new(Some(&salt), &[7u8; 32])
            .expand(&info, &mut okm)
            .unwrap();
        assert_eq!(base.enc[..], okm[..32]);
        assert_eq!(base.hmac[..], okm[32..]);
        assert!(format!("{base:?}").contains("<redacted>"));
    }

    #[test]
    fn transcripts_differ_by_label_and_cover_fields() {
        let ctx = TranscriptContext {
            algorithm: KeyExchangeAlgorithm::X25519,
            index: 4,
            leader: "a",
            follower: "b",
        };
        let c = [6; CHALLENGE_LEN];
        let a = ctx.answer(&[1; 32], &[2; 32], &c, &[3; 32], &[4; 32]);
        let f = ctx.finish(&[1; 32], &[2; 32], &c, &[3; 32], &[4; 32]);
        assert_ne!(a, f);
        assert_ne!(a, ctx.answer(&[1; 32], &[2; 32], &c, &[3; 32], &[5; 32]));
        assert_ne!(a, ctx.answer(&[1; 32], &[9; 32], &c, &[3; 32], &[4; 32]));
        assert_ne!(
            a,
            ctx.answer(&[1; 32], &[2; 32], &[7; 16], &[3; 32], &[4; 32])
        );
        let o = ctx.offer(&[1; 32], &c, &[3; 32]);
        assert!(o.starts_with(OFFER_LABEL));
        assert_ne!(o, ctx.offer(&[1; 32], &[7; 16], &[3; 32]));
    }
}
