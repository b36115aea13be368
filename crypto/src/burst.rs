//! Multi-buffer seal and open over a whole burst ([`seal_burst`], [`open_burst`]).
//!
//! The wire format is exactly that of [`crate::seal_payload`] / [`crate::open_payload`]; only
//! the order of work changes. A burst is processed in chunks of [`MAX_BURST`] packets:
//!
//! 1. lengths and padding per packet, trailer written;
//! 2. the IVs (one AES block per packet) and then the CBC chains of up to 32 packets at once,
//!    one block of every chain per step, with each lane's own round keys: the chains are
//!    sequential inside a packet but independent across packets, so 16 of them fill the AES
//!    pipelines that one chain leaves idle (VAES: four packets per 512-bit register; AES-NI:
//!    one per 128-bit register);
//! 3. the HMACs in 8 SHA-512 lanes (AVX-512, or two 4-lane AVX2 halves): a lane runs its
//!    packet's inner blocks, then its outer block, then takes the next packet.
//!
//! Open verifies all tags in lanes first and compares them. The packets that authenticate,
//! pass their window as it was before the burst and repeat no earlier such packet are then
//! CBC-decrypted together, like seal: IVs in lanes, then the chains in lanes with each
//! packet's decryption schedule (derived once per key, [`PayloadKey`]'s `lane_dk`). Last,
//! per packet in burst order on the real windows: replay check, tag result, padding, mark.
//! The results, the windows and the buffers are therefore those of calling
//! [`crate::open_payload`] on the packets one after the other, duplicates within the burst
//! included: a packet decrypted ahead but refused by then (its own burst moved the window
//! past it) is encrypted back, and a repeat of a packet whose padding failed, not decrypted
//! ahead, is decrypted when it is reached.
//!
//! The SIMD path is chosen once per process ([`Backend::detect`]); [`Backend::Portable`]
//! (the `aes` crate per packet, this crate's portable SHA-512 in the lanes) runs anywhere and
//! tests force each path ([`seal_burst_with`], [`open_burst_with`]).

use std::sync::OnceLock;

use constant_time_eq::constant_time_eq;

use crate::error::CryptoError;
use crate::keys::{MacKey, PayloadKey};
use crate::mode::{cbc_decrypt, cbc_encrypt, pkcs7_pad, pkcs7_unpad};
use crate::replay::ReplayWindow;
use crate::sha512::{hmac_lanes, MacInput, ShaKernel};
use crate::{nonce_block, sealed_len, Direction, BLOCK, HMAC_LEN, MIN_SEALED_LEN, SEAL_OVERHEAD};
use crate::{AES_KEY_LEN, TRAILER_LEN};

#[cfg(target_arch = "x86_64")]
use crate::x86;

/// AES-256 round keys as plain blocks (the multi-lane kernels' format).
pub(crate) type RoundKeys = [[u8; 16]; 15];

/// Packets processed together; longer bursts are cut into chunks of this size.
pub const MAX_BURST: usize = 32;

/// Which kernels a burst runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Anywhere: the `aes` crate packet by packet, portable SHA-512 lane by lane.
    Portable,
    /// x86-64 with AES-NI and AVX2: 32 CBC lanes of 128-bit AES-NI, SHA-512 in 2 x 4 AVX2
    /// lanes.
    AesNiAvx2,
    /// x86-64 with VAES and AVX-512 F: 32 CBC lanes in eight 512-bit registers, SHA-512 in 8
    /// AVX-512 lanes.
    Vaes512,
}

impl Backend {
    /// Every backend, fastest last.
    pub const ALL: [Backend; 3] = [Backend::Portable, Backend::AesNiAvx2, Backend::Vaes512];

    /// Whether this CPU can run the backend.
    pub fn is_available(self) -> bool {
        Kernels::new(self).is_some()
    }

    /// The fastest backend this CPU can run, detected once per process.
    pub fn detect() -> Backend {
        static BEST: OnceLock<Backend> = OnceLock::new();
        *BEST.get_or_init(|| {
            Backend::ALL
                .into_iter()
                .rev()
                .find(|b| b.is_available())
                .unwrap_or(Backend::Portable)
        })
    }
}

#[derive(Clone, Copy)]
enum AesKernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    AesNi(x86::AesNi),
    #[cfg(target_arch = "x86_64")]
    Vaes(x86::Vaes512),
}

#[derive(Clone, Copy)]
struct Kernels {
    aes: AesKernel,
    sha: ShaKernel,
}

impl Kernels {
    /// The kernels of `b`, or `None` if this CPU lacks a feature they need.
    fn new(b: Backend) -> Option<Kernels> {
        match b {
            Backend::Portable => Some(Kernels {
                aes: AesKernel::Portable,
                sha: ShaKernel::Portable,
            }),
            #[cfg(target_arch = "x86_64")]
            Backend::AesNiAvx2 => Some(Kernels {
                aes: AesKernel::AesNi(x86::AesNi::detect()?),
                sha: ShaKernel::Avx2(x86::Avx2::detect()?),
            }),
            #[cfg(target_arch = "x86_64")]
            Backend::Vaes512 => Some(Kernels {
                aes: AesKernel::Vaes(x86::Vaes512::detect()?),
                sha: ShaKernel::Avx512(x86::Avx512::detect()?),
            }),
            #[cfg(not(target_arch = "x86_64"))]
            _ => None,
        }
    }
}

/// The SHA-512 lane kernel of the detected backend (key installation uses it too).
pub(crate) fn sha_kernel() -> ShaKernel {
    static K: OnceLock<ShaKernel> = OnceLock::new();
    *K.get_or_init(|| {
        Kernels::new(Backend::detect())
            .map(|k| k.sha)
            .unwrap_or(ShaKernel::Portable)
    })
}

/// The encryption schedule for the lane kernels, when this CPU has AES-NI.
pub(crate) fn expand_lane_key(key: &[u8; AES_KEY_LEN]) -> Option<RoundKeys> {
    #[cfg(target_arch = "x86_64")]
    {
        static AESNI: OnceLock<Option<x86::AesNi>> = OnceLock::new();
        AESNI
            .get_or_init(x86::AesNi::detect)
            .map(|t| t.expand_key(key))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = key;
        None
    }
}

/// The decryption schedule (equivalent inverse cipher) of the lane encryption schedule `rk`,
/// when this CPU has AES-NI.
pub(crate) fn inverse_lane_key(rk: &RoundKeys) -> Option<RoundKeys> {
    #[cfg(target_arch = "x86_64")]
    {
        x86::AesNi::detect().map(|t| t.inverse_key(rk))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = rk;
        None
    }
}

/// The truncated HMAC-SHA384 tags of a burst of messages at once: `out[i]` gets what
/// [`crate::PacketKey::sign`] of `jobs[i]`'s key over its message returns (entries that are
/// `None` are left alone). The messages' SHA-512 compressions run in the lanes of
/// [`Backend::detect`] (the metadata packets of a burst are signed this way).
///
/// # Panics
/// If `out` is shorter than `jobs`.
pub fn sign_burst(jobs: &[Option<(&MacKey, &[u8])>], out: &mut [[u8; HMAC_LEN]]) {
    assert!(out.len() >= jobs.len(), "one tag per job");
    let sha = sha_kernel();
    for (jobs, out) in jobs.chunks(MAX_BURST).zip(out.chunks_mut(MAX_BURST)) {
        let mut macs = [None::<MacInput<'_>>; MAX_BURST];
        for (m, j) in macs.iter_mut().zip(jobs) {
            *m = j.map(|(k, msg)| MacInput {
                inner: &k.inner,
                outer: &k.outer,
                msg,
            });
        }
        let mut tags = [[0u8; 48]; MAX_BURST];
        hmac_lanes(sha, &macs[..jobs.len()], &mut tags[..jobs.len()]);
        for ((o, t), j) in out.iter_mut().zip(&tags).zip(jobs) {
            if j.is_some() {
                o.copy_from_slice(&t[..HMAC_LEN]);
            }
        }
    }
}

/// One packet to seal: the arguments of [`crate::seal_payload`].
#[derive(Debug)]
pub struct SealJob<'a> {
    /// The session's installed payload key.
    pub key: &'a PayloadKey,
    /// Direction of the packet (selects the HMAC key and the nonce's direction byte).
    pub dir: Direction,
    /// Sequence number (trailer and nonce).
    pub seq: u64,
    /// The whole packet buffer, with room for padding, trailer and tag.
    pub buf: &'a mut [u8],
    /// Offset of the covered region (end of the L4 header).
    pub covered_start: usize,
    /// Plaintext bytes at `covered_start`.
    pub plain_len: usize,
}

/// One packet to open: the arguments of [`crate::open_payload`], with the replay window
/// named by its index in the `windows` slice of [`open_burst`] (packets of one session share
/// it).
#[derive(Debug)]
pub struct OpenJob<'a> {
    /// The session's installed payload key.
    pub key: &'a PayloadKey,
    /// Direction of the packet.
    pub dir: Direction,
    /// The whole packet, trimmed to its true length.
    pub buf: &'a mut [u8],
    /// Offset of the covered region.
    pub covered_start: usize,
    /// Index of the session's [`ReplayWindow`] in `windows`.
    pub window: usize,
}

/// Seal every job of the burst; `out[i]` gets what [`crate::seal_payload`] would have
/// returned for `jobs[i]` (and the buffers the same bytes). Runs on [`Backend::detect`].
///
/// # Panics
/// If `out` is shorter than `jobs`.
pub fn seal_burst(jobs: &mut [SealJob<'_>], out: &mut [Result<usize, CryptoError>]) {
    seal_burst_with(Backend::detect(), jobs, out)
}

/// [`seal_burst`] on a chosen backend, which falls back to [`Backend::Portable`] if this CPU
/// cannot run it.
///
/// # Panics
/// If `out` is shorter than `jobs`.
pub fn seal_burst_with(
    backend: Backend,
    jobs: &mut [SealJob<'_>],
    out: &mut [Result<usize, CryptoError>],
) {
    assert!(out.len() >= jobs.len(), "one result per job");
    let k = Kernels::new(backend).unwrap_or(Kernels {
        aes: AesKernel::Portable,
        sha: ShaKernel::Portable,
    });
    for (jobs, out) in jobs.chunks_mut(MAX_BURST).zip(out.chunks_mut(MAX_BURST)) {
        seal_chunk(k, jobs, out);
    }
}

fn seal_chunk(k: Kernels, jobs: &mut [SealJob<'_>], out: &mut [Result<usize, CryptoError>]) {
    let n = jobs.len();
    // 1. lengths, padding, trailer. ct[i] is the ciphertext length of a job still going.
    let mut ct = [None::<usize>; MAX_BURST];
    for (i, j) in jobs.iter_mut().enumerate() {
        out[i] = prepare_seal(j).map(|c| {
            ct[i] = Some(c);
            j.covered_start + c + SEAL_OVERHEAD
        });
    }

    // 2. AES-256-CBC.
    match k.aes {
        AesKernel::Portable => {
            for (i, j) in jobs.iter_mut().enumerate() {
                if let Some(c) = ct[i] {
                    let iv = j.key.iv(j.dir, j.seq);
                    let body = &mut j.buf[j.covered_start..j.covered_start + c];
                    if let Err(e) = cbc_encrypt(j.key.enc(), &iv, body) {
                        out[i] = Err(e);
                        ct[i] = None;
                    }
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        AesKernel::AesNi(t) => cbc_lanes(|l, b, m| t.cbc_encrypt_lanes(l, b, m), jobs, &mut ct),
        #[cfg(target_arch = "x86_64")]
        AesKernel::Vaes(t) => cbc_lanes(|l, b, m| t.cbc_encrypt_lanes(l, b, m), jobs, &mut ct),
    }

    // 3. HMAC over ciphertext + trailer, all jobs in lanes.
    let mut tags = [[0u8; 48]; MAX_BURST];
    {
        let mut macs = [None::<MacInput<'_>>; MAX_BURST];
        for (i, j) in jobs.iter().enumerate() {
            if let Some(c) = ct[i] {
                let m = j.key.mac(j.dir);
                macs[i] = Some(MacInput {
                    inner: &m.inner,
                    outer: &m.outer,
                    msg: &j.buf[j.covered_start..j.covered_start + c + TRAILER_LEN],
                });
            }
        }
        hmac_lanes(k.sha, &macs[..n], &mut tags[..n]);
    }
    for (i, j) in jobs.iter_mut().enumerate() {
        if let Some(c) = ct[i] {
            let at = j.covered_start + c + TRAILER_LEN;
            j.buf[at..at + HMAC_LEN].copy_from_slice(&tags[i][..HMAC_LEN]);
        }
    }
}

/// The checks of [`crate::seal_payload`], then PKCS#7 padding and the trailer. Returns the
/// ciphertext length.
fn prepare_seal(j: &mut SealJob<'_>) -> Result<usize, CryptoError> {
    let room = j
        .buf
        .len()
        .checked_sub(j.covered_start)
        .ok_or(CryptoError::BufferTooSmall)?;
    if j.plain_len >= room || sealed_len(j.plain_len) > room {
        return Err(CryptoError::BufferTooSmall);
    }
    let covered = &mut j.buf[j.covered_start..j.covered_start + sealed_len(j.plain_len)];
    let c = pkcs7_pad(covered, j.plain_len)?;
    covered[c..c + TRAILER_LEN].copy_from_slice(&j.seq.to_be_bytes());
    Ok(c)
}

/// `block = AES_K(block)` for every `(key, block)` with lane round keys, 32 blocks per call
/// of the 32-lane encryption kernel `run` (a one-block CBC with a zero chain): the IVs of a
/// burst, one per packet.
#[cfg(target_arch = "x86_64")]
fn encrypt_blocks_in_lanes<'k, 'b, F>(
    run: &F,
    lanes: &mut x86::AesLanes,
    blocks: impl Iterator<Item = (&'k PayloadKey, &'b mut [u8; 16])>,
) where
    F: Fn(&mut x86::AesLanes, &mut [&mut [u8]; x86::AES_LANES], usize),
{
    let mut blocks = blocks.peekable();
    while blocks.peek().is_some() {
        let mut bufs: [&mut [u8]; x86::AES_LANES] = Default::default();
        for (l, (key, block)) in blocks.by_ref().take(x86::AES_LANES).enumerate() {
            if let Some(rk) = key.lane_rk() {
                lanes.load(l, rk, [0; 16]);
                bufs[l] = &mut block[..];
            }
        }
        run(lanes, &mut bufs, 1);
    }
}

/// AES-256-CBC of every job with `ct[i] = Some(_)` on a 32-lane kernel `run(lanes, bufs, n)`.
/// Jobs without lane round keys (no AES-NI at install) are done by the `aes` crate.
#[cfg(target_arch = "x86_64")]
fn cbc_lanes<F>(run: F, jobs: &mut [SealJob<'_>], ct: &mut [Option<usize>; MAX_BURST])
where
    F: Fn(&mut x86::AesLanes, &mut [&mut [u8]; x86::AES_LANES], usize),
{
    let mut lanes = x86::AesLanes::new();

    // IVs: AES_K(nonce block), one block per job, 32 jobs per call (CBC with a zero chain).
    let mut ivs = [[0u8; 16]; MAX_BURST];
    let mut with_rk = [false; MAX_BURST];
    for (i, j) in jobs.iter_mut().enumerate() {
        if ct[i].is_none() {
            continue;
        }
        match j.key.lane_rk() {
            Some(_) => with_rk[i] = true,
            None => {
                let c = ct[i].unwrap_or(0);
                let iv = j.key.iv(j.dir, j.seq);
                let body = &mut j.buf[j.covered_start..j.covered_start + c];
                // Whole blocks by construction (pkcs7_pad), so this cannot fail.
                let _ = cbc_encrypt(j.key.enc(), &iv, body);
            }
        }
        ivs[i] = nonce_block(j.dir, j.key.index(), j.seq);
    }
    encrypt_blocks_in_lanes(
        &run,
        &mut lanes,
        jobs.iter()
            .zip(ivs.iter_mut())
            .enumerate()
            .filter(|(i, _)| with_rk[*i])
            .map(|(_, (j, iv))| (j.key, iv)),
    );

    // The CBC chains.
    let queue = jobs
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| with_rk[*i])
        .filter_map(|(i, j)| {
            let c = ct[i]?;
            let rk = j.key.lane_rk()?;
            Some((rk, ivs[i], &mut j.buf[j.covered_start..j.covered_start + c]))
        });
    run_chains(run, &mut lanes, queue);
}

/// Runs the CBC chains of `queue` (schedule, IV, whole blocks) on a 32-lane kernel
/// `run(lanes, bufs, n)`: a lane that finishes takes the next chain; each call runs as many
/// steps as the shortest chain in flight has blocks left.
#[cfg(target_arch = "x86_64")]
fn run_chains<'a, F, I>(run: F, lanes: &mut x86::AesLanes, mut queue: I)
where
    F: Fn(&mut x86::AesLanes, &mut [&mut [u8]; x86::AES_LANES], usize),
    I: Iterator<Item = (&'a RoundKeys, [u8; 16], &'a mut [u8])>,
{
    use x86::AES_LANES;
    let mut cur: [&mut [u8]; AES_LANES] = Default::default();
    loop {
        let mut steps = usize::MAX;
        for (l, c) in cur.iter_mut().enumerate() {
            if c.is_empty() {
                if let Some((rk, iv, body)) = queue.next() {
                    lanes.load(l, rk, iv);
                    *c = body;
                }
            }
            if !c.is_empty() {
                steps = steps.min(c.len() / BLOCK);
            }
        }
        if steps == usize::MAX {
            return;
        }
        let mut heads: [&mut [u8]; AES_LANES] = Default::default();
        for (c, h) in cur.iter_mut().zip(heads.iter_mut()) {
            if !c.is_empty() {
                let (a, b) = core::mem::take(c).split_at_mut(steps * BLOCK);
                *h = a;
                *c = b;
            }
        }
        run(lanes, &mut heads, steps);
    }
}

/// Open every job of the burst; `out[i]` gets what [`crate::open_payload`] would have
/// returned had the jobs been opened one after the other, in order, with
/// `windows[jobs[i].window]`. Runs on [`Backend::detect`].
///
/// # Panics
/// If `out` is shorter than `jobs`, or a job's `window` is not an index of `windows`.
pub fn open_burst(
    jobs: &mut [OpenJob<'_>],
    windows: &mut [ReplayWindow],
    out: &mut [Result<(usize, u64), CryptoError>],
) {
    open_burst_with(Backend::detect(), jobs, windows, out)
}

/// [`open_burst`] on a chosen backend (falls back to [`Backend::Portable`] if unavailable).
///
/// # Panics
/// As [`open_burst`].
pub fn open_burst_with(
    backend: Backend,
    jobs: &mut [OpenJob<'_>],
    windows: &mut [ReplayWindow],
    out: &mut [Result<(usize, u64), CryptoError>],
) {
    assert!(out.len() >= jobs.len(), "one result per job");
    let k = Kernels::new(backend).unwrap_or(Kernels {
        aes: AesKernel::Portable,
        sha: ShaKernel::Portable,
    });
    for (jobs, out) in jobs.chunks_mut(MAX_BURST).zip(out.chunks_mut(MAX_BURST)) {
        open_chunk(k, jobs, windows, out);
    }
}

/// Length checks of [`crate::open_payload`]: `(ciphertext length, seq)`.
fn parse_open(j: &OpenJob<'_>) -> Result<(usize, u64), CryptoError> {
    let covered_len = j
        .buf
        .len()
        .checked_sub(j.covered_start)
        .ok_or(CryptoError::Truncated)?;
    if covered_len < MIN_SEALED_LEN {
        return Err(CryptoError::Truncated);
    }
    let c = covered_len - SEAL_OVERHEAD;
    if !c.is_multiple_of(BLOCK) {
        return Err(CryptoError::BadLength);
    }
    let at = j.covered_start + c;
    let mut seq_be = [0u8; TRAILER_LEN];
    seq_be.copy_from_slice(&j.buf[at..at + TRAILER_LEN]);
    Ok((c, u64::from_be_bytes(seq_be)))
}

fn open_chunk(
    k: Kernels,
    jobs: &mut [OpenJob<'_>],
    windows: &mut [ReplayWindow],
    out: &mut [Result<(usize, u64), CryptoError>],
) {
    let n = jobs.len();
    // 1. Lengths, and the HMACs of the packets the windows do not already refuse, in lanes.
    let mut parsed = [Err(CryptoError::Truncated); MAX_BURST];
    let mut tags = [[0u8; 48]; MAX_BURST];
    let mut computed = [false; MAX_BURST];
    {
        let mut macs = [None::<MacInput<'_>>; MAX_BURST];
        for (i, j) in jobs.iter().enumerate() {
            parsed[i] = parse_open(j);
            if let Ok((c, seq)) = parsed[i] {
                // Early replay filter: a refused number is refused later too (windows only
                // move forward), so its HMAC is not worth computing.
                if windows[j.window].check(seq).is_ok() {
                    let m = j.key.mac(j.dir);
                    macs[i] = Some(MacInput {
                        inner: &m.inner,
                        outer: &m.outer,
                        msg: &j.buf[j.covered_start..j.covered_start + c + TRAILER_LEN],
                    });
                    computed[i] = true;
                }
            }
        }
        hmac_lanes(k.sha, &macs[..n], &mut tags[..n]);
    }

    // 2. Tag compare (constant time; it does not depend on the windows), and the packets to
    //    decrypt ahead of the replay decisions: those that authenticate, pass the window as
    //    it was before the burst, and repeat no earlier one of them (same window and
    //    number). Unless an authenticated packet has bad padding or the burst itself moves a
    //    window past one of them, these are exactly the packets step 4 decrypts.
    let mut tag_ok = [false; MAX_BURST];
    let mut ahead = [None::<(usize, u64)>; MAX_BURST];
    let mut highest = None::<u64>; // of the numbers in `ahead`, all windows
    for i in 0..n {
        let j = &jobs[i];
        let Ok((c, seq)) = parsed[i] else { continue };
        if !computed[i] {
            continue;
        }
        let tag = &j.buf[j.covered_start + c + TRAILER_LEN..];
        tag_ok[i] = constant_time_eq(&tags[i][..HMAC_LEN], tag);
        if !tag_ok[i] {
            continue;
        }
        // In-order traffic never repeats: only a number at or below the highest so far needs
        // the scan.
        let repeat = highest.is_some_and(|h| seq <= h)
            && (0..i)
                .any(|e| ahead[e].is_some_and(|(_, s)| s == seq) && jobs[e].window == j.window);
        if !repeat {
            ahead[i] = Some((c, seq));
            highest = Some(highest.map_or(seq, |h| h.max(seq)));
        }
    }

    // 3. CBC-decrypt them (whole blocks, padding still in place).
    match k.aes {
        AesKernel::Portable => {
            for (i, j) in jobs.iter_mut().enumerate() {
                if let Some((c, seq)) = ahead[i] {
                    cbc_decrypt_job(j, c, seq);
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        AesKernel::AesNi(t) => cbc_decrypt_lanes(
            |l, b, m| t.cbc_encrypt_lanes(l, b, m),
            |l, b, m| t.cbc_decrypt_lanes(l, b, m),
            jobs,
            &ahead,
        ),
        #[cfg(target_arch = "x86_64")]
        AesKernel::Vaes(t) => cbc_decrypt_lanes(
            |l, b, m| t.cbc_encrypt_lanes(l, b, m),
            |l, b, m| t.cbc_decrypt_lanes(l, b, m),
            jobs,
            &ahead,
        ),
    }

    // 4. The decisions of `open_payload`, in burst order, on the real windows.
    for (i, j) in jobs.iter_mut().enumerate() {
        out[i] = (|| {
            let (c, seq) = parsed[i]?;
            let w = &mut windows[j.window];
            if let Err(e) = w.check(seq) {
                if ahead[i].is_some() {
                    // Decrypted ahead, refused now (the burst moved the window past it):
                    // give the buffer its ciphertext back, as `open_payload` leaves it.
                    restore_job(j, c, seq);
                }
                return Err(e.into());
            }
            let covered = &mut j.buf[j.covered_start..];
            let (signed, tag) = covered.split_at_mut(c + TRAILER_LEN);
            let ok = if computed[i] {
                tag_ok[i]
            } else {
                let full = j.key.mac(j.dir).sign_full(signed);
                constant_time_eq(&full[..HMAC_LEN], tag)
            };
            if !ok {
                return Err(CryptoError::BadMac);
            }
            let plain = if ahead[i].is_some() {
                pkcs7_unpad(&signed[..c])?
            } else {
                // A repeat of a packet whose padding failed: not decrypted yet.
                j.key.decrypt(j.dir, seq, &mut signed[..c])?
            };
            w.mark(seq);
            Ok((plain, seq))
        })();
    }
}

/// CBC-decrypt the `c` ciphertext bytes of `j` (whole blocks, at least one) in place with the
/// `aes` crate, padding left in place.
fn cbc_decrypt_job(j: &mut OpenJob<'_>, c: usize, seq: u64) {
    let iv = j.key.iv(j.dir, seq);
    let body = &mut j.buf[j.covered_start..j.covered_start + c];
    // Whole blocks by `parse_open`, so this cannot fail.
    let _ = cbc_decrypt(j.key.dec(), &iv, body);
}

/// Undo [`cbc_decrypt_job`]: CBC encryption under the same IV gives back the ciphertext.
fn restore_job(j: &mut OpenJob<'_>, c: usize, seq: u64) {
    let iv = j.key.iv(j.dir, seq);
    let body = &mut j.buf[j.covered_start..j.covered_start + c];
    // Whole blocks by `parse_open`, so this cannot fail.
    let _ = cbc_encrypt(j.key.enc(), &iv, body);
}

/// CBC-decrypt every job with `todo[i] = Some((ciphertext length, seq))` across packets: the
/// IVs (one block per job) on the 32-lane encryption kernel `enc`, then the chains on the
/// 32-lane decryption kernel `dec` with each job's decryption schedule. Jobs without lane
/// schedules (no AES-NI at install) are done by the `aes` crate.
#[cfg(target_arch = "x86_64")]
fn cbc_decrypt_lanes<E, D>(
    enc: E,
    dec: D,
    jobs: &mut [OpenJob<'_>],
    todo: &[Option<(usize, u64)>; MAX_BURST],
) where
    E: Fn(&mut x86::AesLanes, &mut [&mut [u8]; x86::AES_LANES], usize),
    D: Fn(&mut x86::AesLanes, &mut [&mut [u8]; x86::AES_LANES], usize),
{
    let mut lanes = x86::AesLanes::new();

    // IVs: AES_K(nonce block), 32 jobs per call (CBC with a zero chain).
    let mut ivs = [[0u8; 16]; MAX_BURST];
    let mut in_lanes = [false; MAX_BURST];
    for (i, j) in jobs.iter_mut().enumerate() {
        let Some((c, seq)) = todo[i] else { continue };
        if j.key.lane_rk().is_some() && j.key.lane_dk().is_some() {
            in_lanes[i] = true;
            ivs[i] = nonce_block(j.dir, j.key.index(), seq);
        } else {
            cbc_decrypt_job(j, c, seq);
        }
    }
    encrypt_blocks_in_lanes(
        &enc,
        &mut lanes,
        jobs.iter()
            .zip(ivs.iter_mut())
            .enumerate()
            .filter(|(i, _)| in_lanes[*i])
            .map(|(_, (j, iv))| (j.key, iv)),
    );

    // The chains, with the decryption schedules.
    let queue = jobs
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| in_lanes[*i])
        .filter_map(|(i, j)| {
            let (c, _) = todo[i]?;
            let dk = j.key.lane_dk()?;
            Some((dk, ivs[i], &mut j.buf[j.covered_start..j.covered_start + c]))
        });
    run_chains(dec, &mut lanes, queue);
}
