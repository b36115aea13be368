//! The payload crypto of a whole burst at once.
//!
//! [`super::ingress::lan_stage`] and [`super::egress::wan_stage`] do everything a packet needs
//! except the payload crypto of data packets (no metadata), which they hand back as a
//! [`Deferred`] with [`Verdict::Pending`]. [`finish_burst`] then seals all of them with
//! [`svr_crypto::seal_burst`] and opens all of them with [`svr_crypto::open_burst`]
//! (multi-buffer: the CBC chains and SHA-512 compressions of up to 32 packets interleaved in
//! SIMD lanes), and finishes each packet. The bytes on the wire and every verdict and counter
//! are those of [`super::ingress::lan_packet`] / [`super::egress::wan_packet`] applied one
//! packet at a time (those two are the stage plus a burst of one).

use std::net::IpAddr;
use std::sync::Arc;

use arrayvec::ArrayVec;
use svr_crypto::{
    open_burst, open_payload, seal_burst, seal_payload, sign_burst, CryptoError, Direction, MacKey,
    OpenJob, PacketKey, SealJob, HMAC_LEN, MAX_BURST,
};

use super::egress::finish_open;
use super::ingress::drop_with;
use super::packet::{fill_l4_checksum, Headers};
use super::{
    KeySnapshot, PacketBuf, PeerId, SessionCrypto, SessionKey, SvrDrop, SvrEvent, SvrShared,
    SvrWorker, Verdict,
};
use crate::session::SessionRef;
use crate::time::Instant;
use crate::wire::ethernet::HEADER_LEN as ETH_LEN;

/// Payload crypto a packet's SVR stage left for the burst.
#[derive(Debug)]
pub enum Deferred {
    /// LAN → peer data packet, rewritten and laid out: encrypt, trailer, HMAC, L4 checksum.
    Seal(SealWork),
    /// Peer → LAN data packet of a known session: HMAC, replay window, decrypt, restore.
    Open(OpenWork),
    /// LAN → peer packet with metadata, sealed and encrypted: its HMAC (metadata key) and
    /// L4 checksum.
    Sign(SignWork),
}

/// The outer headers of a LAN → peer packet, for what follows its crypto: the L4 checksum
/// (it covers the ciphertext and the tag), the count and the verdict.
#[derive(Debug, Clone, Copy)]
pub struct OuterHeaders {
    pub(super) proto: u8,
    pub(super) l4: usize,
    pub(super) frame_end: usize,
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    /// `packet-duplication`: the copy for the session's second pair, made once the packet
    /// is finished (so its verdict is [`Verdict::ForwardTwice`]).
    pub(super) copy: Option<super::DuplicateRewrite>,
}

impl OuterHeaders {
    fn finish(&self, w: &mut SvrWorker, frame: &mut [u8], sent: SvrEvent) -> Verdict {
        fill_l4_checksum(
            frame,
            self.proto,
            self.l4,
            self.frame_end,
            self.src,
            self.dst,
        );
        w.counters.events.bump(sent);
        let (dst, l3_len) = (self.dst, self.frame_end - ETH_LEN);
        match self.copy {
            None => Verdict::Forward { dst, l3_len },
            Some(copy) => Verdict::ForwardTwice { dst, l3_len, copy },
        }
    }
}

/// A LAN → peer metadata packet waiting for its HMAC: `frame[signed_start..tag_at]` is
/// signed with the peer's current metadata key in `keys` (the snapshot the metadata was
/// sealed under) and the tag written at `tag_at`.
pub struct SignWork {
    pub(super) keys: Arc<KeySnapshot>,
    pub(super) peer: PeerId,
    pub(super) signed_start: usize,
    pub(super) tag_at: usize,
    pub(super) outer: OuterHeaders,
}

impl std::fmt::Debug for SignWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignWork")
            .field("peer", &self.peer)
            .field("signed", &(self.signed_start..self.tag_at))
            .finish_non_exhaustive()
    }
}

impl SignWork {
    fn key(&self) -> Option<&MacKey> {
        self.keys.peer_current(self.peer).map(|k| k.mac())
    }

    /// Signs this packet alone (`frame` is the whole frame).
    pub(super) fn finish_one(self, w: &mut SvrWorker, frame: &mut [u8]) -> Verdict {
        let tag = match (self.key(), frame.get(self.signed_start..self.tag_at)) {
            (Some(k), Some(signed)) => Some(k.sign(signed)),
            _ => None,
        };
        self.after(w, frame, tag)
    }

    /// The tag, the L4 checksum (it covers the tag) and the count.
    fn after(self, w: &mut SvrWorker, frame: &mut [u8], tag: Option<[u8; HMAC_LEN]>) -> Verdict {
        let Some(tag) = tag else {
            drop_with!(w, SvrDrop::UnknownKey)
        };
        let Some(at) = frame.get_mut(self.tag_at..self.tag_at + HMAC_LEN) else {
            drop_with!(w, SvrDrop::NoRoom)
        };
        at.copy_from_slice(&tag);
        self.outer.finish(w, frame, SvrEvent::MetadataSent)
    }
}

/// A LAN → peer data packet waiting for its sealing (see [`svr_crypto::seal_payload`]).
#[derive(Debug)]
pub struct SealWork {
    pub(super) key: Arc<SessionKey>,
    pub(super) dir: Direction,
    pub(super) seq: u64,
    pub(super) covered_start: usize,
    pub(super) plain_len: usize,
    pub(super) outer: OuterHeaders,
}

impl SealWork {
    /// Seals this packet alone (`frame` is the whole frame).
    pub(super) fn finish_one(self, w: &mut SvrWorker, frame: &mut [u8]) -> Verdict {
        let r = seal_payload(
            &self.key.key,
            self.dir,
            self.seq,
            frame,
            self.covered_start,
            self.plain_len,
        );
        self.after(w, frame, r)
    }

    /// The L4 checksum (it covers the ciphertext) and the count, once sealed.
    fn after(self, w: &mut SvrWorker, frame: &mut [u8], r: Result<usize, CryptoError>) -> Verdict {
        if r.is_err() {
            drop_with!(w, SvrDrop::NoRoom);
        }
        self.outer.finish(w, frame, SvrEvent::DataSent)
    }
}

/// A peer → LAN data packet of a known session waiting for its opening.
#[derive(Debug)]
pub struct OpenWork {
    pub(super) h: Headers,
    pub(super) s: SessionRef,
    pub(super) crypto: Arc<SessionCrypto>,
    pub(super) dir: Direction,
    /// Index of the session's replay window in the worker's windows.
    pub(super) window: usize,
}

impl OpenWork {
    /// Opens this packet alone under the session's current key (`frame`: the whole frame).
    pub(super) fn open_one(
        &self,
        w: &mut SvrWorker,
        frame: &mut [u8],
    ) -> Result<(usize, u64), CryptoError> {
        let Some(window) = w.replay.get_mut(self.window) else {
            return Err(CryptoError::BadMac);
        };
        open_payload(
            &self.crypto.current.key,
            self.dir,
            frame,
            self.h.payload_start(),
            window,
        )
    }
}

/// A `Pending` verdict without its work cannot come from the stages; counted, never a panic.
pub(super) fn unreachable_pending(w: &mut SvrWorker) -> Verdict {
    drop_with!(w, SvrDrop::StaleSession)
}

/// Finishes the packets the stages deferred: `bufs[i]` is the frame of `work[i]`, and
/// `out[i]` gets its verdict (entries without work are left alone). The slices are walked
/// together up to the shortest (what lies beyond is left alone); work is taken out of `work`.
pub fn finish_burst<B: PacketBuf>(
    sh: &SvrShared,
    w: &mut SvrWorker,
    bufs: &mut [Option<B>],
    work: &mut [Option<Deferred>],
    now: Instant,
    out: &mut [Verdict],
) {
    for ((bufs, work), out) in bufs
        .chunks_mut(MAX_BURST)
        .zip(work.chunks_mut(MAX_BURST))
        .zip(out.chunks_mut(MAX_BURST))
    {
        finish_chunk(sh, w, bufs, work, now, out);
    }
}

fn finish_chunk<B: PacketBuf>(
    sh: &SvrShared,
    w: &mut SvrWorker,
    bufs: &mut [Option<B>],
    work: &mut [Option<Deferred>],
    now: Instant,
    out: &mut [Verdict],
) {
    let n = bufs.len().min(work.len()).min(out.len());
    let (bufs, work, out) = (&mut bufs[..n], &mut work[..n], &mut out[..n]);
    let mut sealed = [Ok(0usize); MAX_BURST];
    let mut seal_at = ArrayVec::<usize, MAX_BURST>::new();
    let mut opened = [Err(CryptoError::Truncated); MAX_BURST];
    let mut open_at = ArrayVec::<usize, MAX_BURST>::new();
    let mut tags = [[0u8; HMAC_LEN]; MAX_BURST];
    let mut signed_ok = [false; MAX_BURST];
    let mut sign_at = ArrayVec::<usize, MAX_BURST>::new();
    {
        let mut signs = ArrayVec::<Option<(&MacKey, &[u8])>, MAX_BURST>::new();
        let mut seals = ArrayVec::<SealJob<'_>, MAX_BURST>::new();
        let mut opens = ArrayVec::<OpenJob<'_>, MAX_BURST>::new();
        for (i, (b, job)) in bufs.iter_mut().zip(work.iter()).enumerate() {
            let (Some(b), Some(job)) = (b.as_mut(), job.as_ref()) else {
                continue;
            };
            match job {
                Deferred::Seal(j) => {
                    seal_at.push(i);
                    seals.push(SealJob {
                        key: &j.key.key,
                        dir: j.dir,
                        seq: j.seq,
                        buf: b.data_mut(),
                        covered_start: j.covered_start,
                        plain_len: j.plain_len,
                    });
                }
                Deferred::Sign(j) => {
                    let msg = b.data().get(j.signed_start..j.tag_at);
                    let job = j.key().zip(msg);
                    signed_ok[sign_at.len()] = job.is_some();
                    sign_at.push(i);
                    signs.push(job);
                }
                Deferred::Open(j) => {
                    open_at.push(i);
                    opens.push(OpenJob {
                        key: &j.crypto.current.key,
                        dir: j.dir,
                        buf: b.data_mut(),
                        covered_start: j.h.payload_start(),
                        window: j.window,
                    });
                }
            }
        }
        if !seals.is_empty() {
            seal_burst(&mut seals, &mut sealed[..seal_at.len()]);
        }
        if !opens.is_empty() {
            open_burst(&mut opens, &mut w.replay, &mut opened[..open_at.len()]);
        }
        if !signs.is_empty() {
            sign_burst(&signs, &mut tags[..sign_at.len()]);
        }
    }
    for (k, &i) in sign_at.iter().enumerate() {
        if let (Some(b), Some(Deferred::Sign(j))) = (bufs[i].as_mut(), work[i].take()) {
            let tag = signed_ok[k].then_some(tags[k]);
            out[i] = j.after(w, b.data_mut(), tag);
        }
    }
    for (k, &i) in seal_at.iter().enumerate() {
        if let (Some(b), Some(Deferred::Seal(j))) = (bufs[i].as_mut(), work[i].take()) {
            out[i] = j.after(w, b.data_mut(), sealed[k]);
        }
    }
    for (k, &i) in open_at.iter().enumerate() {
        if let (Some(b), Some(Deferred::Open(j))) = (bufs[i].as_mut(), work[i].take()) {
            out[i] = finish_open(sh, w, b, j, opened[k], now);
        }
    }
}
