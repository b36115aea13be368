//! Installed keys: AES-256 schedules and keyed HMAC-SHA384 states, computed once.

use core::fmt;

use std::sync::OnceLock;

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::{Aes256Dec, Aes256Enc};
use constant_time_eq::constant_time_eq;
use sha2::{Digest, Sha384};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::burst::sha_kernel;
use crate::burst::RoundKeys;
use crate::sha512::{self, ShaKernel, State, IV384};

use crate::error::CryptoError;
use crate::mode::{cbc_decrypt, cbc_encrypt, padded_len, pkcs7_pad, pkcs7_unpad};
use crate::{
    Direction, AES_KEY_LEN, BLOCK, HMAC_LEN, IV_LEN, METADATA_HMAC_KEY_LEN, PAYLOAD_HMAC_INFO,
};

/// Prints `<redacted>` in place of key material.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Sign and verify with HMAC-SHA384 truncated to [`HMAC_LEN`] (24) bytes, the RFC 4868
/// length. `covered` is everything after the L4 header: metadata, ciphertext and trailer.
pub trait PacketKey {
    /// The 24-byte tag over `covered`.
    fn sign(&self, covered: &[u8]) -> [u8; HMAC_LEN];

    /// Check `tag` against `covered` in constant time. A tag of any length other than
    /// [`HMAC_LEN`] fails as [`CryptoError::BadMac`].
    fn verify(&self, covered: &[u8], tag: &[u8]) -> Result<(), CryptoError>;
}

/// A keyed HMAC-SHA384 state: the SHA-384 midstates after the inner (ipad) and outer (opad)
/// key blocks, computed once at install (RFC 2104 §4 "precomputed" form).
///
/// Per message the cost is the message's blocks plus one outer block; nothing is cloned but
/// two 64-byte states. The midstates are zeroized on drop.
pub struct MacKey {
    pub(crate) inner: State,
    pub(crate) outer: State,
}

impl MacKey {
    /// Key an HMAC-SHA384 state. Any key length is accepted (RFC 2104); SVR uses 48 bytes.
    pub fn new(key: &[u8]) -> Self {
        let [k] = Self::new_many(sha_kernel(), [key]);
        k
    }

    /// Key several states at once: their 2 * N pad blocks are independent compressions and
    /// run in the lanes of `kernel` (N <= 4).
    pub(crate) fn new_many<const N: usize>(kernel: ShaKernel, keys: [&[u8]; N]) -> [Self; N] {
        const { assert!(2 * N <= sha512::LANES) };
        let mut jobs = [(IV384, [0u8; sha512::BLOCK_LEN]); 8];
        for (i, key) in keys.iter().enumerate() {
            let hashed;
            let key: &[u8] = if key.len() > sha512::BLOCK_LEN {
                hashed = Zeroizing::new(<[u8; 48]>::from(Sha384::digest(key)));
                &hashed[..]
            } else {
                key
            };
            jobs[2 * i].1 = sha512::pad_block(key, 0x36);
            jobs[2 * i + 1].1 = sha512::pad_block(key, 0x5c);
        }
        sha512::compress_independent(kernel, &mut jobs[..2 * N]);
        let out = core::array::from_fn(|i| MacKey {
            inner: jobs[2 * i].0,
            outer: jobs[2 * i + 1].0,
        });
        scrub(&mut jobs[..2 * N]);
        out
    }

    /// The full 48-byte HMAC-SHA384 over `data` (for tests against RFC 4231).
    pub fn sign_full(&self, data: &[u8]) -> [u8; 48] {
        sha512::hmac_single(&self.inner, &self.outer, data)
    }
}

/// Scrubs the pad blocks and midstates of [`MacKey::new_many`] (key material). Plain
/// (vectorized) stores made observable with `black_box`, not `zeroize`'s byte-by-byte volatile
/// writes: those cost more than the key installation's SHA-512 work.
fn scrub(jobs: &mut [(State, [u8; sha512::BLOCK_LEN])]) {
    for (s, b) in jobs.iter_mut() {
        *s = [0; 8];
        *b = [0; sha512::BLOCK_LEN];
    }
    core::hint::black_box(jobs);
}

impl PacketKey for MacKey {
    #[inline]
    fn sign(&self, covered: &[u8]) -> [u8; HMAC_LEN] {
        let full = self.sign_full(covered);
        let mut tag = [0u8; HMAC_LEN];
        tag.copy_from_slice(&full[..HMAC_LEN]);
        tag
    }

    #[inline]
    fn verify(&self, covered: &[u8], tag: &[u8]) -> Result<(), CryptoError> {
        if tag.len() != HMAC_LEN {
            return Err(CryptoError::BadMac);
        }
        let expect = self.sign(covered);
        if constant_time_eq(&expect[..], tag) {
            Ok(())
        } else {
            Err(CryptoError::BadMac)
        }
    }
}

impl Drop for MacKey {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

impl ZeroizeOnDrop for MacKey {}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MacKey").field(&Redacted).finish()
    }
}

/// Length of the metadata block for `plain_len` bytes of payload TLVs: PKCS#7-padded
/// ciphertext followed by the 16-byte IV.
#[inline]
pub const fn metadata_ciphertext_len(plain_len: usize) -> usize {
    padded_len(plain_len) + IV_LEN
}

/// Length of the payload ciphertext for `plain_len` bytes: `(n / 16 + 1) * 16`.
#[inline]
pub const fn payload_ciphertext_len(plain_len: usize) -> usize {
    padded_len(plain_len)
}

/// A receiving (or sending) peer's metadata key, as installed from key management: the
/// AES-256 encrypt and decrypt schedules and the keyed HMAC-SHA384 state.
pub struct MetadataKey {
    rekey_index: u32,
    enc: Aes256Enc,
    dec: Aes256Dec,
    mac: MacKey,
}

impl MetadataKey {
    /// Install a metadata key: expands both AES schedules and absorbs the HMAC pads. The
    /// caller keeps (and zeroizes) its copies of `enc_key` and `hmac_key`.
    pub fn new(
        rekey_index: u32,
        enc_key: &[u8; AES_KEY_LEN],
        hmac_key: &[u8; METADATA_HMAC_KEY_LEN],
    ) -> Self {
        Self {
            rekey_index,
            enc: Aes256Enc::new(enc_key.into()),
            dec: Aes256Dec::new(enc_key.into()),
            mac: MacKey::new(hmac_key),
        }
    }

    /// The rekey index carried in the Security Identifier TLV (16).
    #[inline]
    pub fn rekey_index(&self) -> u32 {
        self.rekey_index
    }

    /// The keyed HMAC state that signs metadata packets.
    #[inline]
    pub fn mac(&self) -> &MacKey {
        &self.mac
    }

    /// Encrypt the payload TLVs in `buf[..plaintext_len]` in place: AES-256-CBC with PKCS#7
    /// padding, then `iv` is written after the ciphertext (draft -00 §4.2.3). Returns the
    /// length of ciphertext + IV, which is the metadata header's payload-length contribution.
    /// `buf` needs [`metadata_ciphertext_len`]`(plaintext_len)` bytes; `iv` must be fresh and
    /// unpredictable (the caller's CSPRNG).
    pub fn encrypt_tlvs(
        &self,
        buf: &mut [u8],
        plaintext_len: usize,
        iv: [u8; IV_LEN],
    ) -> Result<usize, CryptoError> {
        // plaintext_len < buf.len() <= isize::MAX, so the length arithmetic cannot overflow.
        if plaintext_len >= buf.len() || metadata_ciphertext_len(plaintext_len) > buf.len() {
            return Err(CryptoError::BufferTooSmall);
        }
        let ct_len = pkcs7_pad(buf, plaintext_len)?;
        let (ct, rest) = buf.split_at_mut(ct_len);
        let iv_out = rest.get_mut(..IV_LEN).ok_or(CryptoError::BufferTooSmall)?;
        cbc_encrypt(&self.enc, &iv, ct)?;
        iv_out.copy_from_slice(&iv);
        Ok(ct_len + IV_LEN)
    }

    /// Decrypt a metadata block `buf` = ciphertext ‖ IV (exactly; the caller slices it by the
    /// header's payload length) in place. Returns the plaintext length; the payload TLVs are
    /// then `buf[..len]`. Padding is checked without branching on the padding bytes; every
    /// padding failure is [`CryptoError::BadPadding`].
    pub fn decrypt_tlvs(&self, buf: &mut [u8]) -> Result<usize, CryptoError> {
        if buf.len() < BLOCK + IV_LEN {
            return Err(CryptoError::Truncated);
        }
        let ct_len = buf.len() - IV_LEN;
        if !ct_len.is_multiple_of(BLOCK) {
            return Err(CryptoError::BadLength);
        }
        let (ct, iv) = buf.split_at_mut(ct_len);
        let mut iv_block = [0u8; IV_LEN];
        iv_block.copy_from_slice(iv);
        cbc_decrypt(&self.dec, &iv_block, ct)?;
        pkcs7_unpad(ct)
    }
}

impl PacketKey for MetadataKey {
    #[inline]
    fn sign(&self, covered: &[u8]) -> [u8; HMAC_LEN] {
        self.mac.sign(covered)
    }

    #[inline]
    fn verify(&self, covered: &[u8], tag: &[u8]) -> Result<(), CryptoError> {
        self.mac.verify(covered, tag)
    }
}

impl ZeroizeOnDrop for MetadataKey {}

impl fmt::Debug for MetadataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataKey")
            .field("rekey_index", &self.rekey_index)
            .field("keys", &Redacted)
            .finish()
    }
}

/// The 16-byte nonce block whose AES encryption is a payload packet's IV:
///
/// ```text
/// byte 0      direction (0 = forward, 1 = reverse)
/// byte 1      payload-key index
/// bytes 2..8  zero
/// bytes 8..16 sequence number, u64 big-endian (the packet's trailer)
/// ```
#[inline]
pub const fn nonce_block(dir: Direction, key_index: u8, seq: u64) -> [u8; BLOCK] {
    let s = seq.to_be_bytes();
    [
        dir as u8, key_index, 0, 0, 0, 0, 0, 0, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
    ]
}

/// A session's payload key: AES-256 schedules for the payload cipher and two keyed
/// HMAC-SHA384 states, one per direction, derived with HKDF-SHA384 (see the crate doc).
///
/// Installation does the least it can ahead of the first packet: HKDF runs on raw SHA-512
/// midstates (the zero salt's pads are computed once per process, the PRK's two pads side by
/// side in SIMD lanes), and two things wait for their first use: the reverse HMAC key
/// (`T(2)` of HKDF-Expand and its pads, on the first [`PayloadKey::mac`] of
/// [`Direction::Reverse`]) and the AES decryption schedule (derived from the encryption one
/// on the first [`PayloadKey::decrypt`]). The bytes on the wire are the same either way.
pub struct PayloadKey {
    index: u8,
    enc: Aes256Enc,
    /// Built from `enc` on first use (the ingress seals long before it opens a reply).
    dec: OnceLock<Aes256Dec>,
    /// The encryption schedule as plain blocks for the multi-lane kernels (`None` without
    /// AES-NI, where bursts use `enc` packet by packet).
    lane_rk: Option<RoundKeys>,
    /// The decryption schedule (equivalent inverse cipher) of `lane_rk` for the multi-lane
    /// CBC decryption of `open_burst`, built on first use like `dec`.
    lane_dk: OnceLock<Option<RoundKeys>>,
    /// The forward HMAC key, `okm[0..48]`.
    fwd: MacKey,
    /// The reverse HMAC key, `okm[48..96]`, derived on first use from `prk` and `t1`.
    rev: OnceLock<MacKey>,
    /// HKDF's PRK (keyed) and `T(1)` (= the forward HMAC key), kept for `rev`.
    prk: MacKey,
    t1: Zeroizing<[u8; 48]>,
}

/// The HMAC state keyed with HKDF's default salt, 48 zero bytes (RFC 5869 §2.2), computed
/// once: it is the same for every payload key.
fn zero_salt() -> &'static MacKey {
    static SALT: OnceLock<MacKey> = OnceLock::new();
    SALT.get_or_init(|| MacKey::new(&[0u8; METADATA_HMAC_KEY_LEN]))
}

/// HKDF-SHA384 with `salt = none` and `ikm = key` (RFC 5869 §2.2): the keyed PRK state.
fn hkdf_prk(kernel: ShaKernel, key: &[u8; AES_KEY_LEN]) -> MacKey {
    let prk = Zeroizing::new(zero_salt().sign_full(key));
    let [prk] = MacKey::new_many(kernel, [&prk[..]]);
    prk
}

/// `T(1) = HMAC(PRK, info || 0x01)`, the first 48 bytes of HKDF-Expand (RFC 5869 §2.3).
fn hkdf_t1(prk: &MacKey) -> Zeroizing<[u8; 48]> {
    let n = PAYLOAD_HMAC_INFO.len();
    let mut m = Zeroizing::new([0u8; 64]);
    m[..n].copy_from_slice(PAYLOAD_HMAC_INFO);
    m[n] = 1;
    Zeroizing::new(prk.sign_full(&m[..n + 1]))
}

/// `T(2) = HMAC(PRK, T(1) || info || 0x02)`, bytes 48..96 of HKDF-Expand.
fn hkdf_t2(prk: &MacKey, t1: &[u8; 48]) -> Zeroizing<[u8; 48]> {
    let n = PAYLOAD_HMAC_INFO.len();
    let mut m = Zeroizing::new([0u8; 48 + 64]);
    m[..48].copy_from_slice(t1);
    m[48..48 + n].copy_from_slice(PAYLOAD_HMAC_INFO);
    m[48 + n] = 2;
    Zeroizing::new(prk.sign_full(&m[..48 + n + 1]))
}

impl PayloadKey {
    /// Install a payload key (the 32 random bytes of TLV 46) with its one-byte index. Expands
    /// the AES encryption schedule and derives the forward HMAC key (the reverse one and the
    /// decryption schedule follow on first use). The caller keeps (and zeroizes) its copy of
    /// `key`.
    pub fn new(index: u8, key: &[u8; AES_KEY_LEN]) -> Self {
        let kernel = sha_kernel();
        let prk = hkdf_prk(kernel, key);
        let t1 = hkdf_t1(&prk);
        Self {
            index,
            enc: Aes256Enc::new(key.into()),
            dec: OnceLock::new(),
            lane_rk: crate::burst::expand_lane_key(key),
            lane_dk: OnceLock::new(),
            fwd: MacKey::new(&t1[..]),
            rev: OnceLock::new(),
            prk,
            t1,
        }
    }

    /// Install up to [`PayloadKey::MAX_BATCH`] (8) payload keys at once, all with `index`:
    /// the same keys as [`PayloadKey::new`], byte for byte, but the independent SHA-512
    /// compressions of their HKDF chains (extract, `T(1)`, the pads of the PRK and of the
    /// forward HMAC key) run side by side in the SIMD lanes, 8 lane calls for 8 keys where
    /// `new` pays 6 latency-bound compressions per key. For callers that make their own keys
    /// ahead of use (the ingress's stock of fresh keys); the caller zeroizes its copies of
    /// `keys`.
    pub fn new_many<const N: usize>(index: u8, keys: [&[u8; AES_KEY_LEN]; N]) -> [Self; N] {
        Self::new_many_with(sha_kernel(), index, keys)
    }

    /// Most keys [`PayloadKey::new_many`] installs in one call: one per SHA-512 lane.
    pub const MAX_BATCH: usize = sha512::LANES;

    /// [`PayloadKey::new_many`] on the lanes of `kernel`.
    pub(crate) fn new_many_with<const N: usize>(
        kernel: ShaKernel,
        index: u8,
        keys: [&[u8; AES_KEY_LEN]; N],
    ) -> [Self; N] {
        const { assert!(N <= sha512::LANES) };
        const { assert!(AES_KEY_LEN < sha512::BLOCK_LEN - 16) }; // the key's tail is one block
        let salt = zero_salt();
        // Up to two jobs per key (a key's two pads); lane calls take 8 at a time.
        let mut jobs = [(IV384, [0u8; sha512::BLOCK_LEN]); 2 * sha512::LANES];
        let mut digests = [[0u8; 48]; sha512::LANES];

        // HKDF-Extract: PRK = HMAC(zero salt, key), inner block (key + padding), then outer.
        for (j, key) in jobs.iter_mut().zip(keys) {
            let (tail, _) = sha512::tail_blocks(sha512::BLOCK_LEN + AES_KEY_LEN, key);
            j.0 = salt.inner;
            j.1.copy_from_slice(&tail[..sha512::BLOCK_LEN]);
        }
        compress_lanes(kernel, &mut jobs[..N]);
        for j in &mut jobs[..N] {
            j.1 = sha512::outer_block(&j.0);
            j.0 = salt.outer;
        }
        compress_lanes(kernel, &mut jobs[..N]);
        for (d, j) in digests.iter_mut().zip(&jobs[..N]) {
            *d = sha512::digest384(&j.0);
        }
        // The PRK's keyed states (inner, outer).
        let mut prk: [(State, State); N] = pads_in_lanes(kernel, &mut jobs, &digests[..N]);

        // HKDF-Expand: T(1) = HMAC(PRK, info || 0x01); the message block is the same for all.
        let n = PAYLOAD_HMAC_INFO.len();
        let mut m = [0u8; 64];
        m[..n].copy_from_slice(PAYLOAD_HMAC_INFO);
        m[n] = 1;
        let (t1_block, _) = sha512::tail_blocks(sha512::BLOCK_LEN + n + 1, &m[..n + 1]);
        for (j, p) in jobs.iter_mut().zip(&prk) {
            j.0 = p.0;
            j.1.copy_from_slice(&t1_block[..sha512::BLOCK_LEN]);
        }
        compress_lanes(kernel, &mut jobs[..N]);
        for (j, p) in jobs.iter_mut().zip(&prk) {
            j.1 = sha512::outer_block(&j.0);
            j.0 = p.1;
        }
        compress_lanes(kernel, &mut jobs[..N]);
        for (d, j) in digests.iter_mut().zip(&jobs[..N]) {
            *d = sha512::digest384(&j.0);
        }
        // The forward HMAC key is T(1).
        let mut fwd: [(State, State); N] = pads_in_lanes(kernel, &mut jobs, &digests[..N]);

        let out = core::array::from_fn(|i| {
            let key = keys[i];
            Self {
                index,
                enc: Aes256Enc::new(key.into()),
                dec: OnceLock::new(),
                lane_rk: crate::burst::expand_lane_key(key),
                lane_dk: OnceLock::new(),
                fwd: MacKey {
                    inner: fwd[i].0,
                    outer: fwd[i].1,
                },
                rev: OnceLock::new(),
                prk: MacKey {
                    inner: prk[i].0,
                    outer: prk[i].1,
                },
                t1: Zeroizing::new(digests[i]),
            }
        });
        scrub(&mut jobs);
        digests = [[0; 48]; sha512::LANES];
        prk = [([0; 8], [0; 8]); N];
        fwd = [([0; 8], [0; 8]); N];
        core::hint::black_box((&mut digests, &mut prk, &mut fwd));
        out
    }

    /// Sets the payload-key index of a key installed ahead of its use (by
    /// [`PayloadKey::new_many`]). The index is not part of the key derivation; it only enters
    /// the nonce blocks, so the keyed states stay valid. Do not change the index of a key that
    /// has already sealed packets: the peer would open them under the other index.
    #[inline]
    pub fn set_index(&mut self, index: u8) {
        self.index = index;
    }

    /// The payload-key index (carried with the key in TLV 46, and in every nonce block).
    #[inline]
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The keyed HMAC state that signs data packets travelling in `dir`. The reverse one is
    /// derived on its first use (two SHA-512 compressions of HKDF-Expand and its two pads).
    #[inline]
    pub fn mac(&self, dir: Direction) -> &MacKey {
        match dir {
            Direction::Forward => &self.fwd,
            Direction::Reverse => self
                .rev
                .get_or_init(|| MacKey::new(&hkdf_t2(&self.prk, &self.t1)[..])),
        }
    }

    /// Everything installation computed, for tests comparing two ways of installing: index,
    /// PRK states, `T(1)`, forward HMAC states, the encryption of a zero block, lane schedule.
    #[cfg(test)]
    pub(crate) fn installed(&self) -> (u8, [State; 4], [u8; 48], [u8; BLOCK], Option<RoundKeys>) {
        let mut b = GenericArray::from([0u8; BLOCK]);
        self.enc.encrypt_block(&mut b);
        (
            self.index,
            [
                self.prk.inner,
                self.prk.outer,
                self.fwd.inner,
                self.fwd.outer,
            ],
            *self.t1,
            b.into(),
            self.lane_rk,
        )
    }

    #[inline]
    pub(crate) fn lane_rk(&self) -> Option<&RoundKeys> {
        self.lane_rk.as_ref()
    }

    /// The decryption schedule of [`PayloadKey::lane_rk`] in the lane kernels' format,
    /// derived on first use (`None` without AES-NI).
    #[inline]
    pub(crate) fn lane_dk(&self) -> Option<&RoundKeys> {
        self.lane_dk
            .get_or_init(|| {
                self.lane_rk
                    .as_ref()
                    .and_then(crate::burst::inverse_lane_key)
            })
            .as_ref()
    }

    #[inline]
    pub(crate) fn enc(&self) -> &Aes256Enc {
        &self.enc
    }

    #[inline]
    pub(crate) fn dec(&self) -> &Aes256Dec {
        self.dec.get_or_init(|| Aes256Dec::from(&self.enc))
    }

    /// HMAC-SHA384/192 over `covered` with the HMAC key of `dir`.
    #[inline]
    pub fn sign(&self, dir: Direction, covered: &[u8]) -> [u8; HMAC_LEN] {
        self.mac(dir).sign(covered)
    }

    /// Constant-time check of `tag` over `covered` with the HMAC key of `dir`.
    #[inline]
    pub fn verify(&self, dir: Direction, covered: &[u8], tag: &[u8]) -> Result<(), CryptoError> {
        self.mac(dir).verify(covered, tag)
    }

    /// The IV of packet `seq` in `dir`: AES-256-Encrypt_K(nonce block), the "encrypted
    /// counter" IV of NIST SP 800-38A appendix C. Never sent.
    #[inline]
    pub fn iv(&self, dir: Direction, seq: u64) -> [u8; IV_LEN] {
        let mut b = GenericArray::from(nonce_block(dir, self.index, seq));
        self.enc.encrypt_block(&mut b);
        b.into()
    }

    /// Encrypt `buf[..plain_len]` in place (AES-256-CBC, PKCS#7, IV from [`PayloadKey::iv`]).
    /// `buf` needs [`payload_ciphertext_len`]`(plain_len)` bytes. Returns the ciphertext
    /// length.
    pub fn encrypt(
        &self,
        dir: Direction,
        seq: u64,
        buf: &mut [u8],
        plain_len: usize,
    ) -> Result<usize, CryptoError> {
        // plain_len < buf.len() <= isize::MAX, so the length arithmetic cannot overflow.
        if plain_len >= buf.len() || payload_ciphertext_len(plain_len) > buf.len() {
            return Err(CryptoError::BufferTooSmall);
        }
        let ct_len = pkcs7_pad(buf, plain_len)?;
        let iv = self.iv(dir, seq);
        cbc_encrypt(&self.enc, &iv, &mut buf[..ct_len])?;
        Ok(ct_len)
    }

    /// Decrypt the ciphertext `buf` (exactly) in place and return the plaintext length.
    /// Callers on the data path verify the HMAC first ([`crate::open_payload`] does).
    pub fn decrypt(&self, dir: Direction, seq: u64, buf: &mut [u8]) -> Result<usize, CryptoError> {
        if buf.len() < BLOCK {
            return Err(CryptoError::Truncated);
        }
        if !buf.len().is_multiple_of(BLOCK) {
            return Err(CryptoError::BadLength);
        }
        let iv = self.iv(dir, seq);
        cbc_decrypt(self.dec(), &iv, buf)?;
        pkcs7_unpad(buf)
    }
}

/// Compress each job's block into its state, [`sha512::LANES`] jobs per lane call.
fn compress_lanes(kernel: ShaKernel, jobs: &mut [(State, [u8; sha512::BLOCK_LEN])]) {
    for chunk in jobs.chunks_mut(sha512::LANES) {
        sha512::compress_independent(kernel, chunk);
    }
}

/// The keyed HMAC states (inner, outer) of the 48-byte keys `keys` (N of them, N <= 8): their
/// 2 * N ipad and opad blocks in the lanes of `kernel`, with `jobs` as scratch.
fn pads_in_lanes<const N: usize>(
    kernel: ShaKernel,
    jobs: &mut [(State, [u8; sha512::BLOCK_LEN]); 2 * sha512::LANES],
    keys: &[[u8; 48]],
) -> [(State, State); N] {
    for (pair, key) in jobs.chunks_exact_mut(2).zip(keys) {
        pair[0] = (IV384, sha512::pad_block(key, 0x36));
        pair[1] = (IV384, sha512::pad_block(key, 0x5c));
    }
    compress_lanes(kernel, &mut jobs[..2 * N]);
    core::array::from_fn(|i| (jobs[2 * i].0, jobs[2 * i + 1].0))
}

impl Drop for PayloadKey {
    fn drop(&mut self) {
        if let Some(rk) = self.lane_rk.as_mut() {
            rk.zeroize();
        }
        if let Some(Some(dk)) = self.lane_dk.get_mut() {
            dk.zeroize();
        }
    }
}

impl ZeroizeOnDrop for PayloadKey {}

impl fmt::Debug for PayloadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayloadKey")
            .field("index", &self.index)
            .field("keys", &Redacted)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hkdf::Hkdf;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 4231 §4.2-4.8, HMAC-SHA-384 column: (key, data, expected).
    fn rfc4231() -> Vec<(Vec<u8>, Vec<u8>, &'static str)> {
        let big_key = vec![0xaa; 131];
        vec![
            // 4.2 Test Case 1
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c\
                 faea9ea9076ede7f4af152e8b2fa9cb6",
            ),
            // 4.3 Test Case 2
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
                 8e2240ca5e69e2c78b3239ecfab21649",
            ),
            // 4.4 Test Case 3
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b\
                 2a5ab39dc13814b94e3ab6e101a34f27",
            ),
            // 4.5 Test Case 4
            (
                (1u8..=25).collect(),
                vec![0xcd; 50],
                "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e\
                 6801dd23c4a7d679ccf8a386c674cffb",
            ),
            // 4.7 Test Case 6
            (
                big_key.clone(),
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6\
                 0c2ef6ab4030fe8296248df163f44952",
            ),
            // 4.8 Test Case 7
            (
                big_key,
                b"This is a test using a larger than block-size key and a larger than \
                  block-size data. The key needs to be hashed before being used by the \
                  HMAC algorithm."
                    .to_vec(),
                "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5\
                 a678cc31e799176d3860e6110c46523e",
            ),
        ]
    }

    #[test]
    fn rfc4231_hmac_sha384_full_and_truncated() {
        for (i, (key, data, want)) in rfc4231().into_iter().enumerate() {
            let k = MacKey::new(&key);
            let want = h(want);
            assert_eq!(k.sign_full(&data).to_vec(), want, "vector {i}");
            // Our 24-byte tag is the prefix of the full HMAC, and verifies.
            let tag = k.sign(&data);
            assert_eq!(tag[..], want[..HMAC_LEN], "vector {i}");
            assert_eq!(k.verify(&data, &want[..HMAC_LEN]), Ok(()));
            // The same state serves many messages: the clone leaves the installed state intact.
            assert_eq!(k.sign_full(&data).to_vec(), want, "vector {i} again");
        }
    }

    #[test]
    fn rfc4231_case5_truncated_to_128_bits() {
        // 4.6 Test Case 5: RFC 4231 gives only the first 128 bits.
        let k = MacKey::new(&[0x0c; 20]);
        let full = k.sign_full(b"Test With Truncation");
        assert_eq!(hex::encode(&full[..16]), "3abf34c3503b2a23a46efc619baef897");
        assert_eq!(k.sign(b"Test With Truncation")[..16], full[..16]);
    }

    #[test]
    fn verify_rejects_wrong_tags() {
        let k = MacKey::new(&[7u8; 48]);
        let tag = k.sign(b"covered");
        assert_eq!(k.verify(b"covered", &tag), Ok(()));
        assert_eq!(k.verify(b"covereD", &tag), Err(CryptoError::BadMac));
        assert_eq!(k.verify(b"covered", &tag[..23]), Err(CryptoError::BadMac));
        assert_eq!(k.verify(b"covered", &[]), Err(CryptoError::BadMac));
        let mut long = [0u8; 25];
        long[..24].copy_from_slice(&tag);
        assert_eq!(k.verify(b"covered", &long), Err(CryptoError::BadMac));
        let full = k.sign_full(b"covered");
        assert_eq!(k.verify(b"covered", &full), Err(CryptoError::BadMac));
        for bit in 0..HMAC_LEN * 8 {
            let mut t = tag;
            t[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(k.verify(b"covered", &t), Err(CryptoError::BadMac));
        }
    }

    #[test]
    fn debug_is_redacted() {
        let mk = MetadataKey::new(7, &[0x11; 32], &[0x22; 48]);
        let pk = PayloadKey::new(3, &[0x33; 32]);
        let m = format!("{mk:?} {pk:?} {:?}", pk.mac(Direction::Forward));
        assert!(m.contains("<redacted>"), "{m}");
        assert!(m.contains("rekey_index: 7"), "{m}");
        assert!(m.contains("index: 3"), "{m}");
        for secret in ["11", "22", "33", "17", "34", "51"] {
            // neither hex nor decimal renderings of the key bytes
            assert!(!m.contains(&secret.repeat(4)), "{m}");
        }
    }

    #[test]
    fn nonce_block_layout() {
        assert_eq!(
            nonce_block(Direction::Reverse, 0xab, 0x0102_0304_0506_0708),
            [1, 0xab, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(nonce_block(Direction::Forward, 0, 0), [0u8; 16]);
        assert_eq!(
            nonce_block(Direction::Forward, 255, u64::MAX)[8..],
            [0xff; 8]
        );
    }

    #[test]
    fn iv_is_aes_ecb_of_the_nonce_block() {
        let key = [0x5au8; 32];
        let pk = PayloadKey::new(9, &key);
        let reference = Aes256Enc::new(&key.into());
        for (dir, seq) in [
            (Direction::Forward, 0u64),
            (Direction::Reverse, 0),
            (Direction::Forward, 1),
            (Direction::Reverse, u64::MAX),
        ] {
            let mut b = GenericArray::from(nonce_block(dir, 9, seq));
            reference.encrypt_block(&mut b);
            assert_eq!(pk.iv(dir, seq), <[u8; 16]>::from(b));
        }
        // Direction, index and sequence number each change the IV.
        assert_ne!(pk.iv(Direction::Forward, 5), pk.iv(Direction::Reverse, 5));
        assert_ne!(pk.iv(Direction::Forward, 5), pk.iv(Direction::Forward, 6));
        assert_ne!(
            pk.iv(Direction::Forward, 5),
            PayloadKey::new(10, &key).iv(Direction::Forward, 5)
        );
    }

    #[test]
    fn payload_hmac_keys_follow_hkdf_and_differ_by_direction() {
        let key = [0x42u8; 32];
        let pk = PayloadKey::new(0, &key);
        let mut okm = [0u8; 96];
        Hkdf::<Sha384>::new(None, &key)
            .expand(b"svr-fastpath payload hmac v1", &mut okm)
            .unwrap();
        // The forward key is exactly HKDF(..., L = 48); the reverse key is the next 48 bytes.
        let mut okm48 = [0u8; 48];
        Hkdf::<Sha384>::new(None, &key)
            .expand(b"svr-fastpath payload hmac v1", &mut okm48)
            .unwrap();
        assert_eq!(okm[..48], okm48);
        let msg = b"covered bytes";
        assert_eq!(
            pk.sign(Direction::Forward, msg),
            MacKey::new(&okm[..48]).sign(msg)
        );
        assert_eq!(
            pk.sign(Direction::Reverse, msg),
            MacKey::new(&okm[48..]).sign(msg)
        );
        assert_ne!(
            pk.sign(Direction::Forward, msg),
            pk.sign(Direction::Reverse, msg)
        );
    }

    #[test]
    fn metadata_round_trip_every_length() {
        let mk = MetadataKey::new(1, &[1; 32], &[2; 48]);
        for n in 0..=100usize {
            let plain: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let mut buf = vec![0u8; metadata_ciphertext_len(n)];
            buf[..n].copy_from_slice(&plain);
            let iv = [n as u8; 16];
            let total = mk.encrypt_tlvs(&mut buf, n, iv).unwrap();
            assert_eq!(total, metadata_ciphertext_len(n));
            assert_eq!(total % 16, 0);
            assert_eq!(buf[total - 16..total], iv);
            assert_eq!(mk.decrypt_tlvs(&mut buf[..total]), Ok(n));
            assert_eq!(buf[..n], plain[..]);
        }
    }

    #[test]
    fn metadata_length_errors() {
        let mk = MetadataKey::new(1, &[1; 32], &[2; 48]);
        let mut buf = [0u8; 64];
        // Needs padded_len(16) + 16 = 48 bytes.
        assert_eq!(
            mk.encrypt_tlvs(&mut buf[..47], 16, [0; 16]),
            Err(CryptoError::BufferTooSmall)
        );
        assert_eq!(mk.encrypt_tlvs(&mut buf[..48], 16, [0; 16]), Ok(48));
        assert_eq!(
            mk.encrypt_tlvs(&mut buf, 64, [0; 16]),
            Err(CryptoError::BufferTooSmall)
        );
        assert_eq!(
            mk.encrypt_tlvs(&mut buf, usize::MAX, [0; 16]),
            Err(CryptoError::BufferTooSmall)
        );
        for len in 0..32 {
            assert_eq!(
                mk.decrypt_tlvs(&mut buf[..len]),
                Err(CryptoError::Truncated),
                "{len}"
            );
        }
        for len in 33..48 {
            assert_eq!(
                mk.decrypt_tlvs(&mut buf[..len]),
                Err(CryptoError::BadLength),
                "{len}"
            );
        }
    }

    #[test]
    fn metadata_wrong_key_is_bad_padding_or_garbage() {
        // Without the HMAC, a wrong key usually shows up as bad padding; never a panic.
        let a = MetadataKey::new(1, &[1; 32], &[2; 48]);
        let b = MetadataKey::new(2, &[9; 32], &[2; 48]);
        let mut bad = 0;
        for n in 0..64usize {
            let mut buf = vec![0x61u8; metadata_ciphertext_len(n)];
            let total = a.encrypt_tlvs(&mut buf, n, [3; 16]).unwrap();
            if b.decrypt_tlvs(&mut buf[..total]) == Err(CryptoError::BadPadding) {
                bad += 1;
            }
        }
        assert!(bad > 50, "{bad}");
    }

    #[test]
    fn payload_encrypt_needs_room_for_padding() {
        let pk = PayloadKey::new(0, &[1; 32]);
        let mut buf = [0u8; 32];
        assert_eq!(
            pk.encrypt(Direction::Forward, 0, &mut buf[..31], 16),
            Err(CryptoError::BufferTooSmall)
        );
        assert_eq!(
            pk.encrypt(Direction::Forward, 0, &mut buf[..16], 16),
            Err(CryptoError::BufferTooSmall)
        );
        assert_eq!(pk.encrypt(Direction::Forward, 0, &mut buf, 15), Ok(16));
        assert_eq!(pk.decrypt(Direction::Forward, 0, &mut buf[..16]), Ok(15));
        assert_eq!(
            pk.decrypt(Direction::Forward, 0, &mut buf[..0]),
            Err(CryptoError::Truncated)
        );
        assert_eq!(
            pk.decrypt(Direction::Forward, 0, &mut buf[..17]),
            Err(CryptoError::BadLength)
        );
    }
}
