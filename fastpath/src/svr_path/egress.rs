//! Peer → LAN: a packet addressed to one of our waypoints on a wayport. Checks in the order of
//! docs/background.md §1.3: peer ACL, cookie, HMAC, replay window, then decrypts, strips and
//! restores the original packet.

use svr_crypto::{open_payload, CryptoError, Direction, PacketKey, HMAC_LEN, TRAILER_LEN};

use super::ingress::{drop_with, note_tcp_close};
use super::packet::{
    self, fill_l4_checksum, header_save, ip_len, move_payload, set_ports, write_ip, Headers,
    IpFields, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP,
};
use std::sync::Arc;

use super::burst::{unreachable_pending, Deferred, OpenWork};
use super::{
    DropCause, PacketBuf, PeerId, SessionCrypto, SessionKey, SvrDrop, SvrEvent, SvrShared,
    SvrWorker, Verdict,
};
use crate::session::{FlowKey, InsertError, MetadataState, Role, SessionInit, SessionRef, Side};
use crate::svr::{
    is_metadata, open_metadata, ControlMessage, ControlReason, ForwardMetadata, MetadataError,
    MetadataHeader, TlvType,
};
use crate::time::Instant;
use crate::wire::ethernet::HEADER_LEN as ETH_LEN;
use svr_crypto::MetadataKey;
use zeroize::{Zeroize, Zeroizing};

const TAIL: usize = TRAILER_LEN + HMAC_LEN;

fn crypto_drop(e: CryptoError) -> SvrDrop {
    match e {
        CryptoError::BadMac => SvrDrop::BadMac,
        CryptoError::Replay(_) => SvrDrop::Replay,
        _ => SvrDrop::Decrypt,
    }
}

/// What the metadata of a packet told us, copied out of the (borrowed) packet.
enum Md {
    Control(ControlReason, u32),
    Forward {
        fwd_key: FlowKey,
        uuid: [u8; 16],
        key_index: u8,
        raw: Zeroizing<[u8; 32]>,
    },
    Reverse {
        /// The payload-key index the egress named (TLV 47), if it did.
        key_index: Option<u8>,
    },
}

/// Opens the metadata in `md` (decrypted in place; the caller wipes it) and copies out what
/// the data path needs. Forward metadata must name a service this router serves.
fn read_metadata(sh: &SvrShared, key: &MetadataKey, md: &mut [u8]) -> Result<Md, DropCause> {
    let o = open_metadata(key, md)?;
    let r = o.repr;
    if r.control.is_some() {
        let c = ControlMessage::try_from(&r)?;
        return Ok(Md::Control(c.reason, c.binding));
    }
    if r.forward_context.is_some() {
        let f = ForwardMetadata::try_from(&r)?;
        let Some(pk) = f.payload_key else {
            return Err(MetadataError::MissingTlv(TlvType::PayloadKey.raw()).into());
        };
        if !sh.serves(f.context.dst(), f.tenant, f.service) {
            return Err(SvrDrop::ServiceNotServed.into());
        }
        let (sp, dp, proto) = f.context.ports_protocol();
        let fwd_key = FlowKey::new(f.context.src(), f.context.dst(), proto.into(), sp, dp)
            .ok_or(SvrDrop::Malformed)?;
        return Ok(Md::Forward {
            fwd_key,
            uuid: f.session_uuid,
            key_index: pk.index,
            raw: Zeroizing::new(*pk.key),
        });
    }
    if r.reverse_context.is_some() {
        return Ok(Md::Reverse {
            key_index: r.payload_key_index,
        });
    }
    Err(MetadataError::MissingTlv(TlvType::ForwardContextV4.raw()).into())
}

/// Handles a frame addressed to one of our waypoints on a wayport (the caller checked both).
pub fn wan_packet<B: PacketBuf>(
    sh: &SvrShared,
    w: &mut SvrWorker,
    b: &mut B,
    now: Instant,
) -> Verdict {
    let mut work = None;
    match wan_stage(sh, w, b, now, &mut work) {
        Verdict::Pending => match work {
            Some(Deferred::Open(job)) => {
                let r = job.open_one(w, b.data_mut());
                finish_open(sh, w, b, job, r, now)
            }
            _ => unreachable_pending(w),
        },
        v => v,
    }
}

/// [`wan_packet`] up to the payload crypto: a data packet of a known session comes back as
/// [`Verdict::Pending`] with its opening in `work`, for [`super::burst::finish_burst`] to
/// run with the rest of the burst; everything else (metadata packets included) is finished
/// here.
pub fn wan_stage<B: PacketBuf>(
    sh: &SvrShared,
    w: &mut SvrWorker,
    b: &mut B,
    now: Instant,
    work: &mut Option<Deferred>,
) -> Verdict {
    let h = match packet::parse_trimmed(b, false) {
        Ok(h) => h,
        Err(d) => drop_with!(w, d),
    };
    let Some(peer) = sh.peer_of_waypoint(h.src) else {
        drop_with!(w, SvrDrop::UnknownPeer)
    };
    let Some(wan_key) = h.key() else {
        drop_with!(w, SvrDrop::Malformed)
    };
    let l4_end = h.payload_start();
    let end = h.end();
    if end < l4_end + TAIL {
        drop_with!(w, SvrDrop::Malformed);
    }
    let found = sh.table.lookup(&wan_key).filter(|s| s.side == Side::Wan);

    let (s, crypto, dir, payload_start, plain_len) = if is_metadata(&b.data()[l4_end..end]) {
        let frame = b.data_mut();
        let covered_end = end - HMAC_LEN;
        let (md_len, sec) = match MetadataHeader::new_checked(&frame[l4_end..end - TAIL]) {
            Ok(hd) => match hd.security_identifier() {
                Ok(Some(id)) => (hd.metadata_len(), id),
                Ok(None) => drop_with!(
                    w,
                    MetadataError::MissingTlv(TlvType::SecurityIdentifier.raw())
                ),
                Err(e) => drop_with!(w, e),
            },
            Err(e) => drop_with!(w, e),
        };
        let keys = sh.keys.load();
        let Some(key) = keys.recv(peer, sec) else {
            drop_with!(w, SvrDrop::UnknownKey)
        };
        if key
            .verify(&frame[l4_end..covered_end], &frame[covered_end..end])
            .is_err()
        {
            drop_with!(w, SvrDrop::BadMac);
        }
        let mut seq_be = [0u8; 8];
        seq_be.copy_from_slice(&frame[end - TAIL..covered_end]);
        let seq = u64::from_be_bytes(seq_be);
        let md = read_metadata(sh, key, &mut frame[l4_end..l4_end + md_len]);
        // The decrypted TLVs (the payload key among them) are consumed: wipe them from the
        // buffer on every path, so they do not stay in the headroom or the freed mbuf.
        frame[l4_end..l4_end + md_len].zeroize();
        drop(keys);
        let md = match md {
            Ok(md) => md,
            Err(d) => drop_with!(w, d),
        };
        let now_ms = crate::session::now_millis(now);
        let mut rebind = None;
        // `packet-duplication`: forward metadata of a known session on a WAN key to bind as
        // its second one (or, arriving on its second one, to answer).
        let mut attach = None;
        let (s, dir, crypto, k, candidate) = match md {
            Md::Control(reason, binding) => {
                if let (ControlReason::EnableMetadata, Some(s)) = (reason, found) {
                    // Bound to this session: the wayports it answers are this packet's (the
                    // sender's own one always; ours unless a source NAT on the way to the
                    // peer may rewrite it), and it echoes a sequence number we sent
                    // recently and above any echo acted on before.
                    let ours_ok = sh
                        .cfg
                        .peers
                        .get(usize::from(peer))
                        .is_some_and(|p| p.source_nat)
                        || binding as u16 == h.dport;
                    if (binding >> 16) as u16 != h.sport
                        || !ours_ok
                        || !sh.accept_control(s.id, seq)
                    {
                        drop_with!(w, SvrDrop::ControlReplayed);
                    }
                    match s.role {
                        // A fresh payload key and reverse sequence space (ingress::refresh).
                        Role::Ingress => super::ingress::refresh(sh, w, &s, now),
                        Role::Egress => {
                            sh.table
                                .update_metadata(s.id, |_| MetadataState::SendingReverse);
                        }
                    }
                }
                w.counters.events.bump(SvrEvent::ControlReceived);
                return Verdict::Consumed;
            }
            Md::Forward {
                fwd_key,
                uuid,
                key_index,
                raw,
            } => {
                let fp = sh.session_fingerprint(&uuid, key_index, &raw);
                let found = match found {
                    Some(old) if sh.reused_by_restarted_peer(&old, peer, &uuid, fp, now_ms) => {
                        sh.remove_session(&old);
                        w.counters.events.bump(SvrEvent::SessionReplaced);
                        None
                    }
                    other => other,
                };
                // A session of this peer moving to another of its waypoint pairs: forward
                // metadata with its UUID and context on new wayports (docs/multipath.md §6).
                // Its WAN key is rebound only once this packet authenticated under the
                // session's key and passed the replay windows, so a captured metadata packet
                // sent to other wayports moves nothing.
                let moving = match found {
                    None => sh.table.lookup(&fwd_key.reversed()).filter(|e| {
                        e.side == Side::Lan
                            && e.role == Role::Egress
                            && e.key_handle == u32::from(peer)
                            && sh.table.uuid(e.id) == Some(uuid)
                    }),
                    Some(_) => None,
                };
                match moving {
                    // Its copies on a second pair: a second binding, not a move.
                    Some(m) if sh.duplicates(&m) => attach = Some(wan_key),
                    Some(_) => rebind = Some(wan_key),
                    None if found.is_some_and(|f| f.via_duplicate) => attach = Some(wan_key),
                    None => {}
                }
                let s = match moving.or(found) {
                    Some(s) if s.role == Role::Egress => {
                        // Metadata on a live session must be that session's: a captured
                        // metadata packet with rewritten wayports changes nothing.
                        if sh.table.uuid(s.id) != Some(uuid) || s.lan_key != fwd_key.reversed() {
                            drop_with!(w, SvrDrop::SessionMismatch);
                        }
                        s
                    }
                    Some(_) => drop_with!(w, SvrDrop::StaleSession),
                    None => {
                        if sh.seen_before(peer, fp, now_ms) {
                            drop_with!(w, SvrDrop::SessionReplayed);
                        }
                        match create(
                            sh, w, &h, peer, wan_key, fwd_key, uuid, key_index, &raw, now,
                        ) {
                            Ok(s) => {
                                sh.remember(peer, fp, now_ms);
                                s
                            }
                            Err(d) => drop_with!(w, d),
                        }
                    }
                };
                let Some(crypto) = sh.crypto(s.id) else {
                    drop_with!(w, SvrDrop::StaleSession)
                };
                // The packet is encrypted under the key its TLV 46 carries. A known index must
                // come with the same key bytes.
                let (k, candidate) = if crypto.current.index() == key_index {
                    if !crypto.current.raw_eq(&raw) {
                        drop_with!(w, SvrDrop::SessionMismatch);
                    }
                    (KeyUse::Current, None)
                } else if let Some(p) = crypto.previous.as_ref().filter(|p| p.index() == key_index)
                {
                    // Forward metadata of the old key, late: within the grace period only.
                    if crypto.previous_at(now_ms).is_none() {
                        drop_with!(w, SvrDrop::StaleSession);
                    }
                    if !p.raw_eq(&raw) {
                        drop_with!(w, SvrDrop::SessionMismatch);
                    }
                    (KeyUse::Previous, None)
                } else {
                    // A rekey of a live session: a candidate key, installed only once this
                    // packet passed the replay window and opened under it.
                    (
                        KeyUse::Candidate,
                        Some((SessionKey::new(key_index, *raw), fp)),
                    )
                };
                (s, Direction::Forward, crypto, k, candidate)
            }
            Md::Reverse { key_index } => {
                let Some(s) = found.filter(|s| s.role == Role::Ingress) else {
                    drop_with!(w, SvrDrop::UnknownSession)
                };
                let Some(crypto) = sh.crypto(s.id) else {
                    drop_with!(w, SvrDrop::StaleSession)
                };
                let k = match key_index {
                    Some(i) if crypto.next.as_ref().is_some_and(|n| n.index() == i) => KeyUse::Next,
                    Some(i)
                        if i != crypto.current.index()
                            && crypto.previous_at(now_ms).is_some_and(|p| p.index() == i) =>
                    {
                        KeyUse::Previous
                    }
                    _ => KeyUse::Current,
                };
                (s, Direction::Reverse, crypto, k, None)
            }
        };
        let key = match (k, &candidate) {
            (KeyUse::Current, _) => Some(&crypto.current),
            (KeyUse::Next, _) => crypto.next.as_ref(),
            (KeyUse::Previous, _) => crypto.previous.as_ref(),
            (KeyUse::Candidate, Some((c, _))) => Some(c),
            (KeyUse::Candidate, None) => None,
        };
        let Some(key) = key.cloned() else {
            drop_with!(w, SvrDrop::StaleSession)
        };
        // The session's replay windows (this worker's, then the shared one) before anything
        // of the session changes.
        let Some(window) = w.window(s.id) else {
            drop_with!(w, SvrDrop::StaleSession)
        };
        if let Err(e) = window.check(seq) {
            if let Some(k) = attach.filter(|_| e == svr_crypto::ReplayError::Duplicate) {
                // The second copy of a metadata packet (authenticated by the peer's metadata
                // key, with the session's UUID and context): its binding is learnt all the
                // same, or the copies after it would arrive on a key the session lacks.
                let _ = attach_duplicate(sh, w, &s, k);
            }
            drop_with!(
                w,
                sh.replay_or_duplicate(&s, crypto_drop(CryptoError::Replay(e)))
            );
        }
        if let Err(d) = sh.check_seq(s.id, seq) {
            if let Some(k) = attach.filter(|_| sh.seen_seq(s.id, seq)) {
                let _ = attach_duplicate(sh, w, &s, k);
            }
            drop_with!(w, sh.replay_or_duplicate(&s, d));
        }
        let ct_start = l4_end + md_len;
        let ct_end = end - TAIL;
        let plain = match key
            .key
            .decrypt(dir, seq, &mut b.data_mut()[ct_start..ct_end])
        {
            Ok(n) => n,
            Err(e) => drop_with!(w, crypto_drop(e)),
        };
        if let Some(window) = w.window(s.id) {
            window.mark(seq);
        }
        if let Err(d) = sh.accept_seq(s.id, seq) {
            if let Some(k) = attach {
                let _ = attach_duplicate(sh, w, &s, k);
            }
            drop_with!(w, sh.replay_or_duplicate(&s, d));
        }
        if k == KeyUse::Previous {
            w.counters.events.bump(SvrEvent::PayloadKeyPreviousUsed);
        }
        let s = match (rebind, attach) {
            (Some(new_wan), _) => match move_here(sh, w, &s, new_wan) {
                Ok(s) => s,
                Err(d) => drop_with!(w, d),
            },
            (None, Some(k)) => match attach_duplicate(sh, w, &s, k) {
                Ok(s) => s,
                Err(d) => drop_with!(w, d),
            },
            (None, None) => s,
        };
        let mut crypto = crypto;
        if let Some((key, fp)) = candidate {
            // A rekey of a live session: install, acknowledge with reverse metadata.
            match sh.install_rekey(w, s.id, &crypto, key, now_ms) {
                Some(c) => {
                    sh.table
                        .update_metadata(s.id, |_| MetadataState::SendingReverse);
                    sh.remember(peer, fp, now_ms);
                    crypto = c;
                }
                None => drop_with!(w, SvrDrop::StaleSession),
            }
        }
        if k == KeyUse::Next {
            // The egress echoed the pending key: it has it; switch.
            if let Some(c) = sh.complete_rekey(w, s.id, &crypto, now_ms) {
                crypto = c;
            }
        }
        if dir == Direction::Reverse && (crypto.next.is_none() || k == KeyUse::Next) {
            // Reverse metadata arrived: stop sending forward metadata (§1.4). Not while a
            // rekey waits for an echo of its key. A duplicated session goes on for its first
            // DUPLICATE_METADATA_MIN packets: the reverse path proves only that one of its two
            // pairs is bound at the egress, and the other learns the session only from
            // metadata (all of it lost on one lossy pair would leave that pair unknown).
            let dup = s.dup_key.is_some();
            sh.table.update_metadata(s.id, |m| match m {
                MetadataState::SendingForward { count }
                    if dup && count < super::ingress::DUPLICATE_METADATA_MIN =>
                {
                    m
                }
                _ => MetadataState::Established,
            });
        }
        (s, crypto, dir, ct_start, plain)
    } else {
        let Some(s) = found else {
            return enable_metadata(sh, w, b, &h, peer, now);
        };
        let Some(crypto) = sh.crypto(s.id) else {
            drop_with!(w, SvrDrop::StaleSession)
        };
        let dir = match s.role {
            Role::Egress => Direction::Forward,
            Role::Ingress => Direction::Reverse,
        };
        let Some(window) = w.window_index(s.id) else {
            drop_with!(w, SvrDrop::StaleSession)
        };
        // A data packet: HMAC, replay window and decryption run with the burst.
        *work = Some(Deferred::Open(OpenWork {
            h,
            s,
            crypto,
            dir,
            window,
        }));
        return Verdict::Pending;
    };
    let _ = (dir, crypto);
    restore(sh, w, b, &h, &s, payload_start, plain_len, now)
}

/// Egress: live session `s` (found by its LAN key) now arrives as `new_wan`, another waypoint
/// pair of the same peer: rebinds its WAN key (keeping id, UUID, keys and replay window; the
/// old binding is forgotten), answers with reverse metadata on the new pair, and returns the
/// session as seen from the WAN.
fn move_here(
    sh: &SvrShared,
    w: &mut SvrWorker,
    s: &SessionRef,
    new_wan: FlowKey,
) -> Result<SessionRef, SvrDrop> {
    let old = sh
        .table
        .rebind_wan(s.id, new_wan)
        .map_err(|_| SvrDrop::StaleSession)?;
    let pair = |k: FlowKey| sh.pair_index(k.dst(), k.src()).unwrap_or(usize::MAX);
    sh.table
        .update_metadata(s.id, |_| MetadataState::SendingReverse);
    w.note_move(super::SessionMoveEvent {
        uuid: sh.table.uuid(s.id).unwrap_or_default(),
        peer: s.key_handle as PeerId,
        from_pair: pair(old),
        to_pair: pair(new_wan),
        reason: super::MoveCause::PeerMoved,
    });
    sh.table.get(s.id, Side::Wan).ok_or(SvrDrop::StaleSession)
}

/// Egress, `packet-duplication`: authenticated forward metadata of live session `s` arrived
/// on `wan`, one of its WAN keys or a new one on another pair of the same peer. A new key
/// becomes the session's second WAN key (replacing the one it had: the ingress changed its
/// second path), unless the first binding's pair is out of service here, in which case the
/// second takes the first's place first (the ingress's survivor) or, without a second, the
/// new key replaces the first (a move, as [`move_here`]). Either way the session answers
/// with reverse metadata, so the ingress stops sending forward metadata. Reverse packets keep
/// leaving by the first binding. Returns the session as seen from the WAN.
fn attach_duplicate(
    sh: &SvrShared,
    w: &mut SvrWorker,
    s: &SessionRef,
    wan: FlowKey,
) -> Result<SessionRef, SvrDrop> {
    let mut now = sh.table.get(s.id, Side::Lan).ok_or(SvrDrop::StaleSession)?;
    let pair = |k: FlowKey| sh.pair_index(k.dst(), k.src());
    let keys = sh.keys.load();
    let first_down = pair(now.wan_key).is_some_and(|p| !keys.path_in_service(p));
    drop(keys);
    if first_down && now.wan_key != wan {
        if now.dup_key.is_none() {
            return move_here(sh, w, &now, wan);
        }
        promote_here(sh, w, &now, super::MoveCause::PeerMoved);
        now = sh.table.get(s.id, Side::Lan).ok_or(SvrDrop::StaleSession)?;
    }
    if now.wan_key != wan && now.dup_key != Some(wan) {
        let old = now.dup_key;
        sh.table
            .set_duplicate(s.id, old, Some(wan))
            .map_err(|_| SvrDrop::StaleSession)?;
        w.counters.events.bump(SvrEvent::DuplicateBound);
        if let (Some(from), Some(to)) = (old.and_then(pair), pair(wan)) {
            w.note_move(super::SessionMoveEvent {
                uuid: sh.table.uuid(s.id).unwrap_or_default(),
                peer: s.key_handle as PeerId,
                from_pair: from,
                to_pair: to,
                reason: super::MoveCause::PeerMoved,
            });
        }
    }
    sh.table
        .update_metadata(s.id, |_| MetadataState::SendingReverse);
    sh.table.get(s.id, Side::Wan).ok_or(SvrDrop::StaleSession)
}

/// Egress, `packet-duplication`: live session `s`'s first binding's pair is out of service
/// here; its second binding becomes the first (reverse packets leave by it). True when this
/// call made the change (counted with a [`super::SessionMoveEvent`]).
pub(super) fn promote_here(
    sh: &SvrShared,
    w: &mut SvrWorker,
    s: &SessionRef,
    reason: super::MoveCause,
) -> bool {
    let Some(dup) = s.dup_key else {
        return false;
    };
    if sh.table.promote_duplicate(s.id, s.wan_key).is_err() {
        return false;
    }
    let pair = |k: FlowKey| sh.pair_index(k.dst(), k.src()).unwrap_or(usize::MAX);
    w.note_move(super::SessionMoveEvent {
        uuid: sh.table.uuid(s.id).unwrap_or_default(),
        peer: s.key_handle as PeerId,
        from_pair: pair(s.wan_key),
        to_pair: pair(dup),
        reason,
    });
    true
}

/// Which of a session's payload keys opens a metadata packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyUse {
    Current,
    Next,
    Previous,
    /// Egress: the new key of a payload rekey, not installed yet.
    Candidate,
}

/// The rest of a deferred data packet once [`OpenWork::open_one`] or the burst opened it
/// under the session's current key (`r`): on a bad HMAC the pending and previous keys are
/// tried, then the session state is updated and the original packet restored.
pub(super) fn finish_open<B: PacketBuf>(
    sh: &SvrShared,
    w: &mut SvrWorker,
    b: &mut B,
    job: OpenWork,
    r: Result<(usize, u64), CryptoError>,
    now: Instant,
) -> Verdict {
    let OpenWork {
        h, s, crypto, dir, ..
    } = job;
    let l4_end = h.payload_start();
    let (plain, seq, used) = match r {
        Ok((n, seq)) => (n, seq, KeyUse::Current),
        Err(CryptoError::BadMac) => {
            match open_other_keys(sh, w, &s, crypto, dir, b.data_mut(), l4_end, now) {
                Ok(t) => t,
                Err(e) => drop_with!(w, sh.replay_or_duplicate(&s, crypto_drop(e))),
            }
        }
        Err(e) => drop_with!(w, sh.replay_or_duplicate(&s, crypto_drop(e))),
    };
    // This worker's window let it through; the session's shared window decides, so a packet
    // accepted by another worker (another queue or port) is refused here.
    if let Err(d) = sh.accept_seq(s.id, seq) {
        drop_with!(w, sh.replay_or_duplicate(&s, d));
    }
    if s.role == Role::Egress
        && s.metadata == MetadataState::SendingReverse
        && used == KeyUse::Current
    {
        // A forward packet without metadata under the current key: the ingress saw our
        // reverse metadata (an old-key packet may be one sent before a rekey).
        sh.table.update_metadata(s.id, |m| match m {
            MetadataState::SendingReverse => MetadataState::Established,
            other => other,
        });
    }
    restore(sh, w, b, &h, &s, l4_end, plain, now)
}

/// A data packet whose HMAC failed under the current key: try the pending key of an ingress
/// rekey (which acknowledges it: the ingress switches) and the previous key while its grace
/// period runs (counted). A failed HMAC never moved the replay window, so this is exactly
/// what trying the keys in that order on the packet alone would do.
#[allow(clippy::too_many_arguments)]
fn open_other_keys(
    sh: &SvrShared,
    w: &mut SvrWorker,
    s: &SessionRef,
    crypto: Arc<SessionCrypto>,
    dir: Direction,
    buf: &mut [u8],
    l4_end: usize,
    now: Instant,
) -> Result<(usize, u64, KeyUse), CryptoError> {
    let now_ms = crate::session::now_millis(now);
    if let Some(next) = crypto.next.clone() {
        if let Some(window) = w.window(s.id) {
            if let Ok((n, seq)) = open_payload(&next.key, dir, buf, l4_end, window) {
                sh.complete_rekey(w, s.id, &crypto, now_ms);
                sh.table
                    .update_metadata(s.id, |_| MetadataState::Established);
                return Ok((n, seq, KeyUse::Next));
            }
        }
    }
    if let (Some(prev), Some(window)) = (crypto.previous_at(now_ms), w.window(s.id)) {
        let (n, seq) = open_payload(&prev.key, dir, buf, l4_end, window)?;
        w.counters.events.bump(SvrEvent::PayloadKeyPreviousUsed);
        return Ok((n, seq, KeyUse::Previous));
    }
    Err(CryptoError::BadMac)
}

#[allow(clippy::too_many_arguments)]
fn create(
    sh: &SvrShared,
    w: &mut SvrWorker,
    h: &Headers,
    peer: PeerId,
    wan_key: FlowKey,
    fwd_key: FlowKey,
    uuid: [u8; 16],
    key_index: u8,
    raw: &[u8; 32],
    now: Instant,
) -> Result<SessionRef, SvrDrop> {
    // The context must describe something we carry, on the matching transport.
    let ok = match fwd_key.proto() {
        PROTO_TCP => h.proto == PROTO_TCP,
        PROTO_UDP => h.proto == PROTO_UDP,
        PROTO_ICMP => h.proto == PROTO_UDP && !fwd_key.is_ipv6(),
        PROTO_ICMPV6 => h.proto == PROTO_UDP && fwd_key.is_ipv6(),
        _ => false,
    };
    if !ok {
        return Err(SvrDrop::Unsupported);
    }
    let init = SessionInit {
        role: Role::Egress,
        uuid,
        payload_key_index: key_index,
        key_handle: u32::from(peer),
        replay_slot: 0,
        metadata: MetadataState::SendingReverse,
    };
    let id = match sh.table.insert(fwd_key.reversed(), wan_key, init, now) {
        Ok(id) => id,
        Err(InsertError::Full) => return Err(SvrDrop::SessionTableFull),
        Err(InsertError::Exists) => return Err(SvrDrop::StaleSession),
    };
    let epoch = sh.keys.load().peer_epoch(peer);
    sh.publish_crypto(
        id,
        SessionCrypto::new(id.generation, peer, key_index, *raw).at_epoch(epoch),
    );
    w.counters.events.bump(SvrEvent::EgressSession);
    sh.table.get(id, Side::Wan).ok_or(SvrDrop::StaleSession)
}

/// Strips everything SVR added and writes the original headers back.
#[allow(clippy::too_many_arguments)]
fn restore<B: PacketBuf>(
    sh: &SvrShared,
    w: &mut SvrWorker,
    b: &mut B,
    h: &Headers,
    s: &SessionRef,
    payload_start: usize,
    plain: usize,
    now: Instant,
) -> Verdict {
    let nk = s.rewrite();
    let proto = nk.proto();
    let inner_v4 = nk.src().is_ipv4();
    let new_ip = ip_len(inner_v4);
    let new_l4 = match proto {
        PROTO_ICMP | PROTO_ICMPV6 => 0,
        _ => h.l4_len,
    };
    let l3 = new_ip + new_l4 + plain;
    let new_start = ETH_LEN + new_ip + new_l4;
    let mut saved = header_save();
    if move_payload(b, h.payload_start(), payload_start, new_start, &mut saved).is_err() {
        drop_with!(w, SvrDrop::NoRoom);
    }
    let want = ETH_LEN + l3;
    if b.len() < want || b.trim(b.len() - want).is_err() {
        drop_with!(w, SvrDrop::Malformed);
    }
    let frame = b.data_mut();
    frame[..12].copy_from_slice(&saved[..12]);
    write_ip(frame, nk.src(), nk.dst(), proto, l3, IpFields::from(h));
    let l4 = ETH_LEN + new_ip;
    if new_l4 > 0 {
        frame[l4..l4 + new_l4].copy_from_slice(&saved[h.l4_start()..h.payload_start()]);
        set_ports(frame, l4, nk.src_port(), nk.dst_port());
        fill_l4_checksum(frame, proto, l4, want, nk.src(), nk.dst());
    }
    sh.table.touch(s.id, Side::Wan, now, l3);
    if proto == PROTO_TCP {
        note_tcp_close(sh, s, Side::Wan, h.tcp_flags, now);
    }
    w.counters.events.bump(SvrEvent::Received);
    Verdict::Forward {
        dst: nk.dst(),
        l3_len: l3,
    }
}

/// A metadata-less packet on a wayport we know nothing about: turn it into an Enable Metadata
/// control message back to the sender (rate-limited), so it resends metadata (§1.4).
fn enable_metadata<B: PacketBuf>(
    sh: &SvrShared,
    w: &mut SvrWorker,
    b: &mut B,
    h: &Headers,
    peer: PeerId,
    now: Instant,
) -> Verdict {
    w.counters.drops.bump(SvrDrop::UnknownSession);
    let cause = super::DropCause::Svr(SvrDrop::UnknownSession);
    let keys = sh.keys.load();
    let Some(key) = keys.peer_current(peer) else {
        return Verdict::Drop(cause);
    };
    if !w.take_token(peer, sh.services().enable_metadata_rate, now) {
        w.counters.events.bump(SvrEvent::EnableMetadataLimited);
        return Verdict::Drop(cause);
    }
    // Bound to the packet it answers: its wayports (TLV 52) and its sequence number (our
    // trailer), which the receiver checks against what it sent on that session.
    let msg = ControlMessage::enable_metadata(key.rekey_index(), h.dport, h.sport);
    let md_len = msg.buffer_len();
    let l4 = h.l4_start();
    let md_at = h.payload_start();
    let end = h.end();
    let mut seq = [0u8; TRAILER_LEN];
    match b.data().get(end - TAIL..end - HMAC_LEN) {
        Some(t) => seq.copy_from_slice(t),
        None => return Verdict::Drop(cause),
    }
    let want = md_at + md_len + TAIL;
    let ok = if b.len() > want {
        b.trim(b.len() - want).is_ok()
    } else {
        b.append(want - b.len()).is_ok()
    };
    if !ok {
        return Verdict::Drop(cause);
    }
    let frame = b.data_mut();
    let l3 = want - ETH_LEN;
    write_ip(frame, h.dst, h.src, h.proto, l3, IpFields::from(h));
    set_ports(frame, l4, h.dport, h.sport);
    if h.proto == PROTO_TCP {
        // Flags: ACK only, so no middlebox takes it for a connection attempt.
        frame[l4 + 12] &= 0xf0;
        frame[l4 + 13] = 0x10;
    }
    if msg.emit(&mut frame[md_at..md_at + md_len]).is_err() {
        return Verdict::Drop(cause);
    }
    let t = md_at + md_len;
    frame[t..t + TRAILER_LEN].copy_from_slice(&seq);
    let tag = key.sign(&frame[md_at..t + TRAILER_LEN]);
    frame[t + TRAILER_LEN..want].copy_from_slice(&tag);
    fill_l4_checksum(frame, h.proto, l4, want, h.dst, h.src);
    w.counters.events.bump(SvrEvent::EnableMetadataSent);
    Verdict::Forward {
        dst: h.src,
        l3_len: l3,
    }
}
