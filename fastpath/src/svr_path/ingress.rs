//! LAN → peer: a packet from a LAN host to a service a peer serves (the ingress role), or a
//! LAN host's reply on a session a peer opened (the egress role's reverse direction).

use svr_crypto::{payload_ciphertext_len, Direction, HMAC_LEN, TRAILER_LEN};

use super::burst::{unreachable_pending, Deferred, OuterHeaders, SealWork, SignWork};
use super::packet::{
    self, header_save, ip_len, move_payload, set_ports, write_ip, Headers, IpFields, PROTO_TCP,
    PROTO_UDP,
};
use super::{PacketBuf, SessionCrypto, SvrDrop, SvrEvent, SvrShared, SvrWorker, Verdict};
use crate::forward::PuntReason;
use crate::session::{
    Claim, FlowKey, InsertError, MetadataState, Role, SessionInit, SessionRef, Side, TcpFlags,
};
use crate::svr::value::Context;
use crate::svr::{seal_metadata, ForwardMetadata, MetadataRepr, ReverseMetadata, SessionContext};
use crate::time::Instant;
use crate::wire::ethernet::HEADER_LEN as ETH_LEN;
use crate::wire::{IpProtocol, TcpPacket};

/// UDP sends forward metadata on at most this many packets without reverse metadata (§1.4).
pub const UDP_METADATA_LIMIT: u8 = 11;

/// `packet-duplication`: forward metadata goes on at least this many packets of a session
/// (on both copies) even after reverse metadata arrived, so that a pair losing each copy with
/// probability p stays unknown to the egress with probability p^N only (20 % loss: 0.03 %).
pub const DUPLICATE_METADATA_MIN: u8 = 5;

macro_rules! drop_with {
    ($w:expr, $cause:expr) => {{
        let c = $crate::svr_path::DropCause::from($cause);
        $w.counters.drop(c);
        return Verdict::Drop(c);
    }};
}
pub(crate) use drop_with;

/// The original 5-tuple of a LAN packet as a context TLV value.
pub(crate) fn context_of(k: &FlowKey) -> SessionContext {
    let protocol = IpProtocol::from(k.proto());
    match (k.src(), k.dst()) {
        (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) => SessionContext::V4(Context {
            src,
            dst,
            src_port: k.src_port(),
            dst_port: k.dst_port(),
            protocol,
        }),
        (s, d) => {
            let v6 = |a| match a {
                std::net::IpAddr::V4(v) => std::net::Ipv4Addr::to_ipv6_mapped(&v),
                std::net::IpAddr::V6(v) => v,
            };
            SessionContext::V6(Context {
                src: v6(s),
                dst: v6(d),
                src_port: k.src_port(),
                dst_port: k.dst_port(),
                protocol,
            })
        }
    }
}

/// The reverse metadata the egress sends (first packets, and the acknowledgement of a
/// payload rekey): TLV 47 names the payload key the packet is under by its index; the key
/// itself never travels back. What [`super::rekey_reserve`] measures too.
pub(crate) fn reverse_metadata<'a>(
    security_id: u32,
    context: SessionContext,
    tenant: &'a str,
    router: &'a str,
    path: &'a str,
    key_index: u8,
) -> MetadataRepr<'a> {
    ReverseMetadata {
        security_id,
        context,
        tenant,
        destination_router: Some(router),
        peer_path_id: Some(path),
        disable_forward_metadata: true,
        payload_key_index: Some(key_index),
    }
    .to_repr()
}

/// Creates an ingress session for `lan_key` (first packet of a flow to a peer's service).
fn create(
    sh: &SvrShared,
    w: &mut SvrWorker,
    h: &Headers,
    lan_key: FlowKey,
    now: Instant,
) -> Result<SessionRef, SvrDrop> {
    let services = sh.services();
    let (peer, policy) = services
        .service_for(h.dst)
        .and_then(|(_, s)| Some((s.peer?, &s.policy)))
        .ok_or(SvrDrop::Unsupported)?;
    if h.proto == PROTO_TCP && !h.is_syn() {
        return Err(SvrDrop::TcpNotSyn);
    }
    let keys = sh.keys.load();
    if keys.peer_current(peer).is_none() {
        return Err(SvrDrop::UnknownKey);
    }
    // Fresh payload key for every session; its index is the peer's current one, which
    // moves on every payload-key-rekey-interval.
    let key_index = keys.payload_key_index(peer);
    let wan_proto = if h.proto == PROTO_TCP {
        PROTO_TCP
    } else {
        PROTO_UDP
    };
    // The UUID first: SLA path selection hashes it (docs/multipath.md §4).
    let uuid: [u8; 16] = w.random();
    let init = SessionInit {
        role: Role::Ingress,
        uuid,
        payload_key_index: key_index,
        key_handle: u32::from(peer),
        replay_slot: 0,
        metadata: MetadataState::SendingForward { count: 0 },
    };
    // Wayports on the pair SLA path selection picks from the peer's published paths (a path
    // out of service starts no session; the next pair the policy allows when its wayports
    // are exhausted): the table's insert of the WAN key is the uniqueness check, a key a live
    // session has sends us to the next candidate (session::WayportAllocator).
    let mut existing = None;
    let claimed = sh.claim_wayports(&keys, policy, &uuid, peer, h.v4, |pi, pair, ports| {
        // Packets from the peer: its waypoint:odd → ours:even.
        let wan_key = FlowKey::new(
            pair.remote,
            pair.local,
            wan_proto,
            ports.destination,
            ports.source,
        )
        .ok_or(Claim::Abort(SvrDrop::Unsupported))?;
        match sh.table.insert(lan_key, wan_key, init, now) {
            Ok(id) => Ok((id, pi)),
            Err(InsertError::Full) => Err(Claim::Abort(SvrDrop::SessionTableFull)),
            Err(InsertError::Exists) => {
                // Another worker created it a moment ago, or the WAN key is taken.
                existing = sh.table.lookup(&lan_key).filter(|s| s.side == Side::Lan);
                Err(match existing {
                    Some(_) => Claim::Abort(SvrDrop::StaleSession),
                    None => Claim::Taken,
                })
            }
        }
    });
    if let Some(s) = existing {
        return Ok(s);
    }
    let (id, pair) = claimed?;
    // A fresh key, installed ahead of time in the worker's stock (key_stock.rs).
    let key = w.payload_key(key_index);
    let epoch = keys.peer_epoch(peer);
    sh.publish_crypto(
        id,
        SessionCrypto::with_key(id.generation, peer, key).at_epoch(epoch),
    );
    // The pair selection chose is the one `revertible-failover` returns to.
    sh.note_created_on(id, pair, &keys);
    if policy.session_resiliency == svr_linkq::SessionResiliency::PacketDuplication
        && sh.table.has_duplicate_keys()
    {
        // A second pair for the copies; none usable or no wayports: single-path for now (a
        // later path change adds one).
        if let Some(s) = sh.table.get(id, Side::Lan) {
            let _ = sh.add_duplicate(&keys, policy, &uuid, &s, pair);
        }
    }
    drop(keys);
    w.counters.events.bump(SvrEvent::IngressSession);
    sh.table.get(id, Side::Lan).ok_or(SvrDrop::StaleSession)
}

/// Handles a LAN frame whose destination is in a service served by a peer (or a reply on a
/// session a peer opened). See the module doc of [`super`].
pub fn lan_packet<B: PacketBuf>(
    sh: &SvrShared,
    w: &mut SvrWorker,
    b: &mut B,
    now: Instant,
) -> Verdict {
    let mut work = None;
    match lan_stage(sh, w, b, now, &mut work) {
        Verdict::Pending => match work {
            Some(Deferred::Seal(job)) => job.finish_one(w, b.data_mut()),
            Some(Deferred::Sign(job)) => job.finish_one(w, b.data_mut()),
            _ => unreachable_pending(w),
        },
        v => v,
    }
}

/// [`lan_packet`] up to the payload crypto: a data packet comes back as
/// [`Verdict::Pending`] with its sealing in `work`, for [`super::burst::finish_burst`] to run
/// with the rest of the burst; everything else (metadata packets included) is finished here.
pub fn lan_stage<B: PacketBuf>(
    sh: &SvrShared,
    w: &mut SvrWorker,
    b: &mut B,
    now: Instant,
    work: &mut Option<Deferred>,
) -> Verdict {
    let h = match packet::parse_trimmed(b, true) {
        Ok(h) => h,
        Err(d) => drop_with!(w, d),
    };
    let Some(lan_key) = h.key() else {
        drop_with!(w, SvrDrop::Malformed)
    };
    let mut found = sh.table.lookup(&lan_key).filter(|s| s.side == Side::Lan);
    // A new SYN during the guard period ends the old session at once (§1.7).
    if let Some(s) = found {
        if h.is_syn() && s.tcp.closing() {
            sh.remove_session(&s);
            found = None;
        }
    }
    let s = match found {
        Some(s) => s,
        None => match create(sh, w, &h, lan_key, now) {
            Ok(s) => s,
            Err(d) => drop_with!(w, d),
        },
    };
    let keys = sh.keys.load();
    // The session's waypoint pair: one compare per pair and one flag per packet; no path
    // selection here (only `create` selects). A pair out of service (BFD down, keys invalid)
    // carries nothing: the session moves (`failover`) or its packet is dropped.
    // Path state changed since the session's last look (a pair's service, published
    // metrics), or a revert fell due: an ingress session is reviewed against its policy
    // (`failover`: off a pair violating the SLA; `revertible-failover`: back to the preferred
    // pair). One compare per packet otherwise.
    let mut pair_index = sh.pair_index(s.rewrite().src(), s.rewrite().dst());
    let review =
        s.role == Role::Ingress && sh.review_due(s.id, &keys, crate::session::now_millis(now));
    let s = match pair_index {
        Some(i) if !keys.path_in_service(i) => {
            if s.role != Role::Ingress {
                // `packet-duplication`: the second binding, if its pair is in service here,
                // carries the reverse packets from now on.
                let up = sh.dup_pair(&s).is_some_and(|p| keys.path_in_service(p));
                if up {
                    super::egress::promote_here(sh, w, &s, super::MoveCause::PathDown);
                }
                match sh.table.get(s.id, Side::Lan) {
                    Some(n) if up && n.wan_key != s.wan_key => {
                        pair_index = sh.pair_index(n.rewrite().src(), n.rewrite().dst());
                        n
                    }
                    _ => drop_with!(w, SvrDrop::PathOutOfService),
                }
            } else {
                match sh.move_session(w, &keys, &s, i) {
                    Ok(moved) => {
                        pair_index = sh.pair_index(moved.rewrite().src(), moved.rewrite().dst());
                        moved
                    }
                    Err(d) => drop_with!(w, d),
                }
            }
        }
        Some(i) if review => match sh.review_session(w, &keys, &s, i, now) {
            Ok(moved) => {
                pair_index = sh.pair_index(moved.rewrite().src(), moved.rewrite().dst());
                moved
            }
            Err(d) => drop_with!(w, d),
        },
        _ => s,
    };
    // Borrowed through an arc-swap guard, not cloned: a data packet clones only its key.
    let guard = sh.crypto_guard(s.id);
    let Some(loaded) = guard.as_ref().and_then(|g| g.as_ref()) else {
        drop_with!(w, SvrDrop::StaleSession)
    };
    let mut replaced: Option<std::sync::Arc<SessionCrypto>> = None;
    // Payload-key rotation of a live session we own: one byte compare per packet.
    let mut rekeyed = false;
    if s.role == Role::Ingress {
        let now_ms = crate::session::now_millis(now);
        let want = keys.payload_key_index(loaded.peer);
        if loaded.peer_epoch != keys.peer_epoch(loaded.peer) {
            // Every path to the peer left service since these keys were made: it may have
            // restarted and lost the session. Refresh now (a fresh key, current at once, in
            // forward metadata) rather than wait for its Enable Metadata; a pending rekey's
            // key would meet an egress that never saw the current one.
            refresh(sh, w, &s, now);
            replaced = sh.crypto(s.id);
            rekeyed = replaced.is_some();
        } else if loaded.next.is_some() {
            // No reverse packet acknowledged the pending key in time (a one-way flow).
            if now_ms >= loaded.next_since_ms + super::PAYLOAD_KEY_SWITCH_MS {
                replaced = sh.complete_rekey(w, s.id, loaded, now_ms);
            }
        } else if s.payload_key_index != want
            && !matches!(s.metadata, MetadataState::SendingForward { .. })
        {
            // Not while the egress may not have the session yet (its forward metadata is
            // still going out): the rekey's key would be the only one it learns.
            replaced = sh.start_rekey(w, &s, loaded, want, now_ms);
            rekeyed = replaced.is_some();
        }
    }
    let crypto = replaced.as_ref().unwrap_or(loaded);
    let dir = match s.role {
        Role::Ingress => Direction::Forward,
        Role::Egress => Direction::Reverse,
    };
    let nk = s.rewrite();
    let outer_v4 = nk.src().is_ipv4();
    // `packet-duplication`: a copy of the finished packet on the second pair, when it has
    // one in service (the review above replaced or dropped one that left service).
    let copy = match s.dup_key {
        Some(d) if s.role == Role::Ingress && d.is_ipv6() == nk.is_ipv6() => sh
            .dup_pair(&s)
            .filter(|&p| keys.path_in_service(p))
            .map(|_| super::DuplicateRewrite::from_dup_key(&d)),
        _ => None,
    };

    // MSS clamp on SYN and SYN-ACK, before anything is measured.
    if h.has_syn() {
        let end = h.end();
        let mut t = TcpPacket::new_unchecked(&mut b.data_mut()[h.l4_start()..end]);
        if t.clamp_mss(sh.clamped_mss(outer_v4, h.v4)) {
            w.counters.events.bump(SvrEvent::MssClamped);
        }
    }

    let Some(md_key) = keys.peer_current(crypto.peer) else {
        drop_with!(w, SvrDrop::UnknownKey)
    };
    let mut with_md = rekeyed
        || matches!(
            (s.role, s.metadata),
            (Role::Ingress, MetadataState::SendingForward { .. })
                | (Role::Egress, MetadataState::SendingReverse)
        );
    // Forward metadata carries the newest key (during a rekey the pending one) and its packet
    // is encrypted under it; data packets and everything the egress sends use the current one.
    let mut tx_key = if with_md && s.role == Role::Ingress {
        crypto.announced()
    } else {
        &crypto.current
    };
    // The metadata, only on the packets that carry it (a data packet skips these lookups).
    let services = with_md.then(|| sh.services());
    let mut repr: Option<MetadataRepr<'_>> = with_md.then(|| {
        let pair = pair_index
            .map(|i| sh.pairs[i].path_id.as_str())
            .unwrap_or("wan");
        let service = services.as_ref().and_then(|t| {
            t.service_for(if s.role == Role::Ingress {
                h.dst
            } else {
                h.src
            })
        });
        let tenant = service.map(|(_, s)| s.tenant.as_str()).unwrap_or("default");
        let pk = tx_key.tlv();
        match s.role {
            Role::Ingress => ForwardMetadata {
                security_id: md_key.rekey_index(),
                context: context_of(&lan_key),
                tenant,
                service: service.map(|(_, s)| s.name.as_str()).unwrap_or("default"),
                session_uuid: sh.table.uuid(s.id).unwrap_or_default(),
                source_router: &sh.cfg.router_name,
                source_router_security_name: None,
                peer_path_id: pair,
                session_encrypted: true,
                tcp_syn: h.is_syn(),
                application_name: None,
                payload_key: Some(pk),
            }
            .to_repr(),
            Role::Egress => reverse_metadata(
                md_key.rekey_index(),
                context_of(&lan_key),
                tenant,
                &sh.cfg.router_name,
                pair,
                pk.index,
            ),
        }
    });
    let mut md_len = repr.as_ref().map_or(0, MetadataRepr::sealed_len);

    // Lengths of the packet we are about to build; refuse what the WAN cannot carry.
    let plain = h.end() - h.payload_start();
    let new_ip = ip_len(outer_v4);
    let new_l4 = if h.l4_len == 0 { 8 } else { h.l4_len };
    let ct = payload_ciphertext_len(plain);
    let mut l3 = new_ip + new_l4 + md_len + ct + TRAILER_LEN + HMAC_LEN;
    let mtu = usize::from(sh.cfg.wan_mtu);
    // Metadata that only acknowledges or announces a rekey (the ingress with a key pending:
    // its data packets still use the current key; the egress's reverse metadata) is left
    // off a packet that fits only without it, and rides on a later one.
    let deferrable = match s.role {
        Role::Ingress => crypto.next.is_some(),
        Role::Egress => true,
    };
    if with_md && deferrable && l3 > mtu && l3 - md_len <= mtu {
        repr = None;
        l3 -= md_len;
        md_len = 0;
        with_md = false;
        tx_key = &crypto.current;
        w.counters.events.bump(SvrEvent::MetadataDeferred);
    }
    let tx = std::sync::Arc::clone(tx_key);
    if l3 > mtu {
        w.counters.events.bump(SvrEvent::MtuExceeded);
        let over = l3 - usize::from(sh.cfg.wan_mtu);
        let mtu = h
            .l3_len
            .saturating_sub(over)
            .max(if h.v4 { 68 } else { 1280 });
        return Verdict::Punt {
            reason: PuntReason::MtuExceeded,
            mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
        };
    }
    if with_md {
        let limit = s.lan_key.proto() != PROTO_TCP;
        let dup = s.dup_key.is_some();
        // A duplicated session whose reply already came stops at its minimum (see
        // DUPLICATE_METADATA_MIN; the reply itself left it sending).
        let replied = dup && s.tcp.contains(TcpFlags::SEEN_WAN);
        sh.table.update_metadata(s.id, |m| match m {
            MetadataState::SendingForward { count } if limit || dup => {
                let count = count.saturating_add(1);
                if replied && count >= DUPLICATE_METADATA_MIN {
                    MetadataState::Established
                } else if limit && count >= UDP_METADATA_LIMIT {
                    MetadataState::AwaitingReverse
                } else {
                    MetadataState::SendingForward { count }
                }
            }
            other => other,
        });
    }

    // Reshape: payload to its new offset, then headers and metadata in front of it.
    let mut saved = header_save();
    let new_start = ETH_LEN + new_ip + new_l4 + md_len;
    if move_payload(
        b,
        h.payload_start(),
        h.payload_start(),
        new_start,
        &mut saved,
    )
    .is_err()
    {
        drop_with!(w, SvrDrop::NoRoom);
    }
    if b.append(ct - plain + TRAILER_LEN + HMAC_LEN).is_err() {
        drop_with!(w, SvrDrop::NoRoom);
    }
    let Some(seq) = sh.table.next_tx_seq(s.id, Side::Wan) else {
        drop_with!(w, SvrDrop::StaleSession)
    };
    let frame = b.data_mut();
    frame[..12].copy_from_slice(&saved[..12]);
    write_ip(
        frame,
        nk.src(),
        nk.dst(),
        nk.proto(),
        l3,
        IpFields::from(&h),
    );
    let l4 = ETH_LEN + new_ip;
    if h.l4_len > 0 {
        frame[l4..l4 + new_l4].copy_from_slice(&saved[h.l4_start()..h.payload_start()]);
    } else {
        frame[l4..l4 + new_l4].fill(0);
    }
    set_ports(frame, l4, nk.src_port(), nk.dst_port());
    let md_at = l4 + new_l4;
    let outer = OuterHeaders {
        proto: nk.proto(),
        l4,
        frame_end: ETH_LEN + l3,
        src: nk.src(),
        dst: nk.dst(),
        copy,
    };
    sh.table.touch(s.id, Side::Lan, now, h.l3_len);
    if h.proto == PROTO_TCP {
        note_tcp_close(sh, &s, Side::Lan, h.tcp_flags, now);
    }
    let Some(repr) = repr else {
        // A data packet: its encryption, trailer, HMAC and L4 checksum run with the burst.
        *work = Some(Deferred::Seal(SealWork {
            key: tx,
            dir,
            seq,
            covered_start: new_start,
            plain_len: plain,
            outer,
        }));
        return Verdict::Pending;
    };
    let iv: [u8; 16] = w.random();
    let area = &mut frame[md_at..md_at + md_len];
    if let Err(e) = repr.emit(area) {
        drop_with!(w, e);
    }
    if let Err(e) = seal_metadata(md_key, iv, area) {
        drop_with!(w, e);
    }
    let ct_end = new_start + ct;
    if tx
        .key
        .encrypt(dir, seq, &mut frame[new_start..ct_end], plain)
        .is_err()
    {
        drop_with!(w, SvrDrop::NoRoom);
    }
    frame[ct_end..ct_end + TRAILER_LEN].copy_from_slice(&seq.to_be_bytes());
    // The HMAC (metadata key) and the L4 checksum run with the burst: the metadata packets
    // of a burst are signed together in the SHA-512 lanes. The snapshot goes with the work
    // so that the key that signs is the one whose index the metadata names.
    *work = Some(Deferred::Sign(SignWork {
        keys: arc_swap::Guard::into_inner(keys),
        peer: crypto.peer,
        signed_start: md_at,
        tag_at: ct_end + TRAILER_LEN,
        outer,
    }));
    Verdict::Pending
}

/// Ingress: the egress asked for metadata on session `s` (Enable Metadata): it restarted,
/// expired the session or lost its state, and whatever it creates from our next forward
/// metadata starts its reverse sequence numbers at 0 again. So the session is **refreshed**
/// (`docs/protocol.md` §4.2): a new payload key (never used with any sequence number) with an
/// index none of the session's keys has, current at once; the old keys are no longer
/// accepted; the reverse replay window restarts (this worker owns it: the control message
/// arrives on the session's WAN 5-tuple); forward metadata is sent again. Forward sequence
/// numbers continue (the new key has not used them either). Once per control message, not per
/// packet: the key comes from the worker's stock, the new keys are one allocation.
pub(super) fn refresh(sh: &SvrShared, w: &mut SvrWorker, s: &SessionRef, now: Instant) {
    let now_ms = crate::session::now_millis(now);
    let keys = sh.keys.load();
    let want = sh
        .crypto(s.id)
        .map(|c| (keys.payload_key_index(c.peer), keys.peer_epoch(c.peer)));
    drop(keys);
    let Some((want, epoch)) = want else { return };
    let mut cur = sh.crypto(s.id);
    while let Some(old) = cur {
        let key = w.payload_key(old.fresh_index(want));
        if sh
            .swap_crypto(s.id, &old, old.refreshed(key, now_ms, epoch))
            .is_some()
        {
            // The egress restarts its sequence numbers under the fresh key: both the shared
            // window and this worker's copy in front of it start again.
            sh.restart_window(s.id);
            if let Some(window) = w.window(s.id) {
                *window = svr_crypto::ReplayWindow::new();
            }
            sh.table
                .update_metadata(s.id, |_| MetadataState::SendingForward { count: 0 });
            w.counters.events.bump(SvrEvent::SessionRefreshed);
            return;
        }
        // Another worker changed the keys meanwhile (a rekey): refresh what it published.
        cur = sh.crypto(s.id);
    }
}

/// FIN and RST feed the guard timer (§1.7).
pub(crate) fn note_tcp_close(sh: &SvrShared, s: &SessionRef, side: Side, flags: u16, now: Instant) {
    use crate::wire::tcp::flags::{FIN, RST};
    if flags & RST != 0 {
        sh.table.mark_rst(s.id, now);
    } else if flags & FIN != 0 {
        sh.table.mark_fin(s.id, side, now);
    }
}
