//! The SVR data plane, one packet at a time (docs/background.md §1, `docs/protocol.md`).
//!
//! ```text
//! LAN frame, classify said Route{dst} and dst is in a peer's service
//!     └─ ingress::lan_packet ─ session lookup by the LAN 5-tuple (create on a miss: wayports,
//!        payload key, UUID) → MSS clamp → MTU check → NAT to the waypoints → [metadata] →
//!        payload encryption → trailer → HMAC                      → Verdict::Forward{peer wp}
//! WAN frame addressed to one of our waypoints on a wayport
//!     └─ egress::wan_packet ─ peer ACL → lookup by the WAN 5-tuple → [cookie → HMAC (metadata
//!        key) → open metadata → create session] or HMAC (payload key) → replay → decrypt →
//!        strip → restore the original 5-tuple                     → Verdict::Forward{LAN dst}
//! ```
//!
//! Everything is generic over [`PacketBuf`] (implemented by svrd for the DPDK mbuf, and by
//! [`TestBuffer`] here), so the whole path runs in unit tests without an EAL. Nothing
//! allocates or locks per packet, except the one `Arc` of a new session's payload key (once per
//! session and per payload rekey, not per packet). Every refusal is a [`DropCause`] with a counter.
//!
//! # Decisions recorded here (summarised in README.md, "SVR on the wire")
//!
//! * **ICMP echo** travels as UDP between routers: a UDP header with the wayports is inserted
//!   and the whole ICMP message (type, code, checksum, identifier, sequence, data) is the
//!   encrypted payload; the context protocol stays 1 / 58. Context ports: an echo **request**
//!   is `src port = identifier, dst port = 0`, an echo **reply** `src port = 0, dst port =
//!   identifier`, so that a reply's 5-tuple is the request's reversed. Other ICMP types are not
//!   carried (`svr_unsupported_packet`).
//! * **Per-packet overhead** of a data packet: PKCS#7 padding (1-16) + trailer 8 + HMAC 24 (+ 8
//!   for ICMP's UDP header; ± 20 when inner and outer IP families differ).
//! * **Control messages** (Enable Metadata) are `metadata ‖ trailer (seq 0) ‖ HMAC` signed
//!   with the receiving peer's metadata key; they carry no payload.
//! * **TTL**: the outer header takes the inner TTL / hop limit, and the restored inner header
//!   takes the outer one, so hosts see one decrement per router as with plain routing. IPv4
//!   options and IPv6 extension headers are not carried (`svr_unsupported_packet`), nor are
//!   IPv4 fragments.
//! * **Replay windows: one per session, shared by all workers.** RSS keeps one WAN 5-tuple on
//!   one queue of one port, but nothing keeps a session on one worker: another port (a second
//!   waypoint), a reprogrammed RETA or an attacker's copy sent to another port would reach
//!   another worker, and a per-worker window would accept it again. So the authority is a
//!   lock-free [`svr_crypto::SharedReplayWindow`] per session slot in [`SvrShared`] (520 B per
//!   session of capacity; reset, with its owner generation, before the session's keys are
//!   published): after a packet authenticated, one compare-and-swap on the word of its
//!   sequence number accepts it for exactly one worker. Each worker keeps its own
//!   [`ReplayWindow`] in front as the cheap check before the crypto (and for the burst
//!   kernels); it only ever holds sequence numbers the shared window accepted, so it never
//!   refuses one the shared window would take. In the usual case (one worker per session)
//!   the shared window's line stays in that worker's cache. Pinning sessions to a worker
//!   with a hand-off ring (VPP) was the alternative; it needs rings between workers in svrd
//!   and costs a hop for every misrouted packet, for no gain in soundness.
//! * **Forward metadata** is bound to the session it lands on: on a live session it must
//!   carry the session's UUID and context (5-tuple), the same key bytes for a known index,
//!   and pass the replay windows before a new payload key is even tried; the key is installed
//!   only after the packet opened under it (`svr_metadata_session_mismatch`, `svr_replay`).
//!   New forward metadata must name a service this router serves, for that tenant and
//!   inner destination (`svr_service_not_served`), and must not repeat a session (UUID and
//!   payload key) created from that peer within the metadata key's lifetime
//!   (`svr_session_replayed`, a preallocated per-peer cache). Decrypted metadata is wiped
//!   from the packet buffer once read, on every path.
//! * **Path selection** (docs/multipath.md §4): a new session's waypoint pair is chosen by
//!   [`svr_linkq::select`] with its service's [`Policy`] over the peer's [`PathSnapshot`] from
//!   the key snapshot the packet already loaded (no lock, no allocation), among the paths of
//!   the inner family first (no outer family change), then the others. A policy that drops
//!   (`best-effort: false`, nothing meets the SLA) is `svr_no_sla_path`; no path in service
//!   is `svr_path_out_of_service`. Only session creation selects: a packet of a live session
//!   goes to the waypoints its table entry names (`SessionRef::rewrite`), never re-selected.
//! * **Wayports** (§1.5): a new session gets an even source and an odd destination wayport on
//!   the selected waypoint pair. Unique per live
//!   session is the (source, destination) pair, ~6·10^8 per waypoint pair in the default
//!   range, the session table's insert of the WAN key being the check; for a peer with
//!   `source-nat: true` the destination alone, 24,575 per pair. When a pair is exhausted the
//!   session spills to the pair the policy selects among the rest; `svr_wayports_exhausted` only when
//!   every one the policy allows is ([`crate::session::WayportAllocator`]).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use svr_crypto::{PayloadKey, ReplayWindow, SharedReplayWindow};
use svr_linkq::{NoPath, PathEntry, PathIndex, PathSet, PathSnapshot, Policy, VectorId};

use crate::forward::{reasons, PuntReason};
use crate::route::IpPrefix;
use crate::session::{
    Claim, ClaimError, FlowKey, InsertError, MetadataState, Role, SessionId, SessionRef,
    SessionTable, SessionTimeouts, Side, WayportAllocator, WayportMode, WayportRange, Wayports,
};
use crate::svr::MetadataError;
use crate::time::Instant;

pub mod burst;
pub mod duplicate;
pub mod egress;
#[cfg(feature = "config")]
pub mod from_config;
pub mod ingress;
pub mod key_stock;
pub mod keys;
pub mod packet;

#[cfg(test)]
mod test;

pub use burst::{finish_burst, Deferred};
pub use duplicate::{copy_failed, finish_copy, rewrite_copy, DuplicateRewrite};
pub use keys::{KeySnapshot, KeyStore, PeerId};

/// Why a buffer operation did not fit (no headroom, tailroom or length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom;

/// The packet buffer operations the SVR path needs: a contiguous frame with headroom and
/// tailroom, as a DPDK mbuf has. `prepend`/`append` grow the frame at its front/back, `adj`/
/// `trim` shrink it.
pub trait PacketBuf {
    /// The frame.
    fn data(&self) -> &[u8];
    /// The frame, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Frame length.
    fn len(&self) -> usize {
        self.data().len()
    }
    /// True for an empty frame.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes free before the frame.
    fn headroom(&self) -> usize;
    /// Bytes free after the frame.
    fn tailroom(&self) -> usize;
    /// Grows the frame by `n` bytes at the front (contents of the new bytes unspecified).
    fn prepend(&mut self, n: usize) -> Result<(), NoRoom>;
    /// Grows the frame by `n` bytes at the back.
    fn append(&mut self, n: usize) -> Result<(), NoRoom>;
    /// Removes `n` bytes from the front.
    fn adj(&mut self, n: usize) -> Result<(), NoRoom>;
    /// Removes `n` bytes from the back.
    fn trim(&mut self, n: usize) -> Result<(), NoRoom>;
}

/// A `Vec` with headroom and tailroom, imitating an mbuf for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestBuffer {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl TestBuffer {
    /// DPDK's default headroom.
    pub const HEADROOM: usize = 128;
    /// DPDK's default data room (2048) plus headroom.
    pub const CAPACITY: usize = 2048 + Self::HEADROOM;

    /// A buffer holding `frame` with the default headroom and capacity (a longer frame gets
    /// a bigger buffer).
    pub fn new(frame: &[u8]) -> TestBuffer {
        Self::with_room(frame, Self::HEADROOM, Self::CAPACITY)
    }

    /// A buffer holding `frame` after `headroom` bytes, `capacity` bytes in all.
    pub fn with_room(frame: &[u8], headroom: usize, capacity: usize) -> TestBuffer {
        let cap = capacity.max(headroom + frame.len());
        let mut buf = vec![0u8; cap];
        buf[headroom..headroom + frame.len()].copy_from_slice(frame);
        TestBuffer {
            buf,
            start: headroom,
            end: headroom + frame.len(),
        }
    }
}

impl PacketBuf for TestBuffer {
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }
    fn headroom(&self) -> usize {
        self.start
    }
    fn tailroom(&self) -> usize {
        self.buf.len() - self.end
    }
    fn prepend(&mut self, n: usize) -> Result<(), NoRoom> {
        self.start = self.start.checked_sub(n).ok_or(NoRoom)?;
        Ok(())
    }
    fn append(&mut self, n: usize) -> Result<(), NoRoom> {
        if n > self.tailroom() {
            return Err(NoRoom);
        }
        self.end += n;
        Ok(())
    }
    fn adj(&mut self, n: usize) -> Result<(), NoRoom> {
        if n > self.len() {
            return Err(NoRoom);
        }
        self.start += n;
        Ok(())
    }
    fn trim(&mut self, n: usize) -> Result<(), NoRoom> {
        if n > self.len() {
            return Err(NoRoom);
        }
        self.end -= n;
        Ok(())
    }
}

reasons! {
    /// Why the SVR path dropped a packet. Metadata parse errors are one reason here
    /// (`svr_bad_metadata`) plus a detail counter per [`MetadataError`].
    pub enum SvrDrop / SvrDropCounters {
        /// A packet to one of our wayports from an address that is not a peer waypoint.
        UnknownPeer = "svr_unknown_peer",
        /// HMAC did not verify (metadata key or payload key).
        BadMac = "svr_hmac_failure",
        /// Sequence number replayed or left of the window, on a session not in
        /// `packet-duplication` mode: an attack or a network duplicate.
        Replay = "svr_replay",
        /// `packet-duplication`: the second copy of a packet (same sequence number, other
        /// waypoint pair), dropped by the session's shared replay window as intended. A
        /// session is in duplication mode when the service it serves has
        /// `session-resiliency: packet-duplication` in this router's configuration.
        DuplicateDropped = "svr_duplicate_dropped",
        /// No session for a metadata-less WAN packet (an Enable Metadata may have been sent).
        UnknownSession = "svr_unknown_session",
        /// The session table is full; existing sessions are unaffected.
        SessionTableFull = "svr_session_table_full",
        /// No free wayports on any in-service waypoint pair to the peer (see
        /// [`crate::session::WayportAllocator`]).
        WayportsExhausted = "svr_wayports_exhausted",
        /// Metadata did not parse, or is not the kind expected (detail counters).
        BadMetadata = "svr_bad_metadata",
        /// Payload ciphertext length or padding wrong after the HMAC verified.
        Decrypt = "svr_decrypt_failure",
        /// No metadata key for the peer, or none with the Security Identifier's rekey index.
        UnknownKey = "svr_unknown_key",
        /// A kind SVR does not carry: fragments, IP options/extension headers, non-echo ICMP,
        /// other protocols.
        Unsupported = "svr_unsupported_packet",
        /// The first packet of an unknown TCP flow is not a SYN.
        TcpNotSyn = "svr_tcp_not_syn",
        /// Truncated or inconsistent IP/L4 headers.
        Malformed = "svr_malformed",
        /// No headroom/tailroom for metadata, padding, trailer or HMAC.
        NoRoom = "svr_no_buffer_room",
        /// The session vanished (timed out) between lookup and use, or its key is missing.
        StaleSession = "svr_stale_session",
        /// No peer path to the serving peer is in service (BFD down, or no valid key from
        /// the key exchange): no new session, and no packet of a session on such a path.
        PathOutOfService = "svr_path_out_of_service",
        /// Forward metadata on an existing session whose UUID or context (5-tuple) is not that
        /// session's: a captured metadata packet moved to other wayports. Nothing changed.
        SessionMismatch = "svr_metadata_session_mismatch",
        /// Forward metadata that would create a session already seen from this peer (same
        /// UUID and payload key) within the seen-session lifetime: a replayed first packet of a
        /// closed or expired session.
        SessionReplayed = "svr_session_replayed",
        /// Forward metadata whose inner destination, tenant and service do not name a service
        /// this router serves.
        ServiceNotServed = "svr_service_not_served",
        /// A new session's service policy has `path-quality-filter` and no `best-effort`, and
        /// no in-service path to the peer meets its SLA ([`svr_linkq::NoPath::SlaDrop`]).
        NoSlaPath = "svr_no_sla_path",
        /// A control message not bound to the session it arrived on (wayports), or whose
        /// echoed sequence number is not one we sent recently or was already answered.
        ControlReplayed = "svr_control_replayed",
        /// `packet-duplication`, ingress: the second copy of a packet could not be made (no
        /// mbuf for the copy); the original was sent. Counts the copy only.
        DuplicateCopyFailed = "svr_duplicate_copy_failed",
    }
}

reasons! {
    /// What the SVR path did that is not a drop, counted for the report.
    pub enum SvrEvent / SvrEventCounters {
        /// Sessions this router created as ingress.
        IngressSession = "svr_ingress_sessions",
        /// Sessions this router created as egress.
        EgressSession = "svr_egress_sessions",
        /// Packets sent with forward or reverse metadata.
        MetadataSent = "svr_metadata_sent",
        /// Packets sent without metadata.
        DataSent = "svr_data_sent",
        /// WAN packets accepted and restored.
        Received = "svr_received",
        /// Enable Metadata control messages sent.
        EnableMetadataSent = "svr_enable_metadata_sent",
        /// Enable Metadata not sent: over `enable-metadata-rate`.
        EnableMetadataLimited = "svr_enable_metadata_rate_limited",
        /// Control messages received (consumed).
        ControlReceived = "svr_control_received",
        /// Packets punted because they would exceed the WAN MTU.
        MtuExceeded = "svr_mtu_exceeded",
        /// TCP MSS options lowered.
        MssClamped = "svr_mss_clamped",
        /// Ingress: payload rekeys of live sessions started (new key sent in forward metadata).
        PayloadRekeyStarted = "svr_payload_rekeys_started",
        /// Ingress: payload rekeys acknowledged by the egress; data now uses the new key.
        PayloadRekeyCompleted = "svr_payload_rekeys_completed",
        /// Egress: new payload keys of live sessions installed from forward metadata.
        PayloadRekeyInstalled = "svr_payload_rekeys_installed",
        /// WAN packets that authenticated only under the session's previous payload key
        /// (within the grace period).
        PayloadKeyPreviousUsed = "svr_payload_key_previous_used",
        /// Metadata of a payload rekey (or reverse metadata) left off a packet that fits the
        /// WAN MTU only without it; it rides on a later packet (`docs/protocol.md` §4.1).
        MetadataDeferred = "svr_metadata_deferred",
        /// Ingress: sessions the egress lost (Enable Metadata: it restarted, or expired the
        /// session) given a fresh payload key and a fresh reverse sequence space.
        SessionRefreshed = "svr_sessions_refreshed",
        /// Egress: sessions made before the peer was last unreachable, replaced by a new
        /// session of the peer (a UUID and payload key never seen) on the same wayports: a
        /// restarted peer allocates wayports afresh (`docs/security.md` §3.1).
        SessionReplaced = "svr_sessions_replaced",
        /// Sessions moved to another waypoint pair of the same peer (`session-resiliency`
        /// failover): at the ingress when its path left service, at the egress when forward
        /// metadata with the session's UUID arrived on the new pair. One
        /// [`SessionMoveEvent`] each. `packet-duplication` counts here too when a session's
        /// pair of paths changes (the survivor of a failed path becomes the first, a second
        /// path is added or replaced; reason `path-down`, `sla-violation` or `path-up`).
        SessionMoved = "svr_session_moved",
        /// `packet-duplication`, ingress: second copies sent on a session's second waypoint
        /// pair (same sequence number, outer addresses and wayports rewritten).
        DuplicateSent = "svr_duplicate_sent",
        /// `packet-duplication`, egress: a second WAN binding learnt from forward metadata
        /// arriving on another waypoint pair of the peer.
        DuplicateBound = "svr_duplicate_bound",
    }
}

/// A drop with its counter: an SVR reason, or bad metadata with its detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropCause {
    /// See [`SvrDrop`].
    Svr(SvrDrop),
    /// Metadata did not parse or open (counts `svr_bad_metadata` and the detail).
    Metadata(MetadataError),
}

impl From<SvrDrop> for DropCause {
    fn from(d: SvrDrop) -> Self {
        DropCause::Svr(d)
    }
}

impl From<MetadataError> for DropCause {
    fn from(e: MetadataError) -> Self {
        DropCause::Metadata(e)
    }
}

/// Per-worker SVR counters (plain integers; the worker publishes them).
#[derive(Debug, Clone, Default)]
pub struct SvrCounters {
    /// Drops by reason.
    pub drops: SvrDropCounters,
    /// Detail of `svr_bad_metadata`, indexed by [`MetadataError::index`].
    pub metadata: [u64; MetadataError::COUNT],
    /// Events.
    pub events: SvrEventCounters,
}

impl SvrCounters {
    /// Counts a drop.
    pub fn drop(&mut self, cause: DropCause) {
        match cause {
            DropCause::Svr(r) => self.drops.bump(r),
            DropCause::Metadata(e) => {
                self.drops.bump(SvrDrop::BadMetadata);
                self.metadata[e.index()] = self.metadata[e.index()].wrapping_add(1);
            }
        }
    }

    /// Sets every counter to zero (after publishing).
    pub fn clear(&mut self) {
        *self = SvrCounters::default();
    }
}

/// What the worker does with the packet after an SVR stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The frame was rewritten: route it to `dst` (the frame is Ethernet + `l3_len` bytes; the
    /// Ethernet addresses are set by the transform stage).
    Forward {
        /// Destination to look up.
        dst: IpAddr,
        /// IP length of the rewritten packet.
        l3_len: usize,
    },
    /// `packet-duplication`, ingress: [`Verdict::Forward`] for the frame, and send a copy of
    /// it (made after it was sealed) on the session's second waypoint pair: copy the frame,
    /// apply [`duplicate::finish_copy`] with `copy`, route the copy to `copy.dst`.
    ForwardTwice {
        /// Destination of the original.
        dst: IpAddr,
        /// IP length of both.
        l3_len: usize,
        /// What differs on the copy.
        copy: DuplicateRewrite,
    },
    /// Hand the unchanged frame to the slow path (`MtuExceeded` carries the MTU to report).
    Punt {
        /// Why.
        reason: PuntReason,
        /// For `MtuExceeded`: the largest inner IP packet that fits.
        mtu: u16,
    },
    /// Drop it; the cause is already counted in the worker's [`SvrCounters`].
    Drop(DropCause),
    /// A control message for us, acted on; free the buffer (counted as an event).
    Consumed,
    /// Only from the `*_stage` functions: the payload crypto waits for
    /// [`burst::finish_burst`], which gives the final verdict.
    Pending,
}

/// A service as the data path sees it.
#[derive(Debug, Clone)]
pub struct ServiceRoute {
    /// Service name (TLV 10).
    pub name: String,
    /// Tenant (TLV 7).
    pub tenant: String,
    /// Destination prefixes.
    pub prefixes: Vec<IpPrefix>,
    /// The peer that serves it; `None` when this router serves it (plain forwarding).
    pub peer: Option<PeerId>,
    /// Its `service-policy`, resolved (SSR's defaults when it names none): chooses the waypoint
    /// pair of each new session ([`svr_linkq::select`]) and whether live sessions move.
    pub policy: Policy,
}

/// One configured path to a peer: a waypoint pair with its selection attributes
/// (`device-interface[].adjacency`, or the default of every same-family pair).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathAttr {
    /// Our waypoint.
    pub local: IpAddr,
    /// The peer's waypoint.
    pub remote: IpAddr,
    /// The adjacency's `cost` (0 by default).
    pub cost: u32,
    /// The path's `vector` label, interned with the policies' labels.
    pub vector: Option<VectorId>,
    /// Which of our WAN interfaces it leaves by (packet duplication prefers two).
    pub local_link: u8,
}

/// A peer router: name and waypoints.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Router name.
    pub name: String,
    /// Its waypoints (WAN addresses).
    pub waypoints: Vec<IpAddr>,
    /// `source-nat`: a source NAT on the paths to it may rewrite our source wayport, so each
    /// session gets a unique destination wayport ([`WayportMode::UniqueDestination`]) instead
    /// of a unique (source, destination) pair.
    pub source_nat: bool,
    /// Its paths, in order: exactly these waypoint pairs (at most [`svr_linkq::MAX_PATHS`]).
    /// Empty: every pair of our waypoints and its of the same family, cost 0, no label.
    pub paths: Vec<PathAttr>,
}

/// Static SVR settings of this router, from the configuration.
#[derive(Debug, Clone)]
pub struct SvrConfig {
    /// Our router name (TLV 14 / 17).
    pub router_name: String,
    /// Services (peer and local). [`SvrShared::new`] moves them into its
    /// [`ServiceTable`] (read them with [`SvrShared::services`]); empty afterwards.
    pub services: Vec<ServiceRoute>,
    /// Peers, indexed by [`PeerId`].
    pub peers: Vec<PeerInfo>,
    /// Our waypoints.
    pub local_waypoints: Vec<IpAddr>,
    /// Wayport range (`svr.wayport-range`).
    pub wayport_range: WayportRange,
    /// IP MTU of the WAN.
    pub wan_mtu: u16,
    /// `svr.max-sessions`.
    pub max_sessions: u32,
    /// `svr.session-timeouts` (the start value; the live one is in [`ServiceTable`]).
    pub timeouts: SessionTimeouts,
    /// `svr.enable-metadata-rate` (messages per second, per worker and peer; the start
    /// value, the live one is in [`ServiceTable`]).
    pub enable_metadata_rate: u32,
}

/// What a reload may change in the SVR data path, published whole ([`SvrShared::replace_table`])
/// so that no reader sees half of one configuration and half of another.
///
/// Readers: a new session (its service, peer and policy), a path review or move of a live
/// session (its policy), the metadata a session sends (tenant and service name), the egress's
/// check that it serves a session's service, the Enable Metadata rate, the MSS clamp and the
/// sweeper's timeouts. Each loads the table once where it needs it, never on a data packet
/// of an established session.
///
/// **Established sessions keep their state** across a reload: peer, waypoint pair, wayports
/// and keys. A session's service is not stored: a later decision about it (a path review,
/// the metadata of a payload rekey, `show sessions`) uses the service its destination
/// matches in the table of the moment. A session whose destination no longer matches a
/// service of its peer keeps its pair, never moves, and ends when it idles out.
#[derive(Debug, Clone)]
pub struct ServiceTable {
    /// Services (peer and local), in configuration order.
    pub services: Vec<ServiceRoute>,
    /// `svr.session-timeouts`.
    pub timeouts: SessionTimeouts,
    /// `svr.enable-metadata-rate`.
    pub enable_metadata_rate: u32,
    /// `revertible-failover`: how long (ms) a session's preferred pair must have been in
    /// service before the session returns to it (the router's `hold-down-time`).
    pub revert_hold_down_ms: u64,
    /// Room the MSS clamp leaves for rekey metadata, by inner family (`[IPv6, IPv4]`).
    mss_reserve: [u16; 2],
}

impl ServiceTable {
    /// A table; the MSS reserve is computed when it is published.
    pub fn new(
        services: Vec<ServiceRoute>,
        timeouts: SessionTimeouts,
        enable_metadata_rate: u32,
        revert_hold_down_ms: u64,
    ) -> ServiceTable {
        ServiceTable {
            services,
            timeouts,
            enable_metadata_rate,
            revert_hold_down_ms,
            mss_reserve: [0; 2],
        }
    }

    /// The service whose prefixes hold `dst`: the longest matching prefix wins (as the
    /// configuration reference says), the first in configuration order among equals.
    #[inline]
    pub fn service_for(&self, dst: IpAddr) -> Option<(usize, &ServiceRoute)> {
        let mut best: Option<(u8, usize, &ServiceRoute)> = None;
        for (i, s) in self.services.iter().enumerate() {
            for p in s.prefixes.iter().filter(|p| p.contains(dst)) {
                if !matches!(best, Some((len, _, _)) if len >= p.len()) {
                    best = Some((p.len(), i, s));
                }
            }
        }
        best.map(|(_, i, s)| (i, s))
    }

    /// True when `dst` is in a service served by a peer: the packet goes over SVR.
    #[inline]
    pub fn is_peer_service(&self, dst: IpAddr) -> bool {
        self.service_for(dst).is_some_and(|(_, s)| s.peer.is_some())
    }

    /// Egress: does this router serve `dst` as service `service` of tenant `tenant`? (A
    /// service with `peer: None` whose prefixes hold `dst`.)
    pub fn serves(&self, dst: IpAddr, tenant: &str, service: &str) -> bool {
        self.services.iter().any(|s| {
            s.peer.is_none()
                && s.name == service
                && s.tenant == tenant
                && s.prefixes.iter().any(|p| p.contains(dst))
        })
    }

    /// Does a service use `packet-duplication`?
    fn duplicates(&self) -> bool {
        self.services
            .iter()
            .any(|s| s.policy.session_resiliency == svr_linkq::SessionResiliency::PacketDuplication)
    }
}

/// Why [`SvrShared::replace_table`] refused a table (nothing was changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableRefused {
    /// A service names a peer this data path does not have.
    UnknownPeer,
    /// A service uses `packet-duplication` but the session table was built without room for
    /// a second WAN key per session.
    NoDuplication,
}

impl std::fmt::Display for TableRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TableRefused::UnknownPeer => "a service is served by a router that is not a peer",
            TableRefused::NoDuplication => {
                "packet-duplication cannot be turned on while running when no service used it"
            }
        })
    }
}

impl std::error::Error for TableRefused {}

/// One (our waypoint, peer waypoint) pair with its wayport allocator.
#[derive(Debug)]
pub struct WaypointPair {
    /// The peer.
    pub peer: PeerId,
    /// Our waypoint.
    pub local: IpAddr,
    /// The peer's waypoint.
    pub remote: IpAddr,
    /// Our waypoint as text (Peer Path ID, TLV 19), formatted once.
    pub path_id: String,
    /// Wayports of this pair.
    pub ports: WayportAllocator,
}

/// How long a receiver still accepts a session's previous payload key after a rekey
/// (docs/background.md §6 "Grace").
pub const PAYLOAD_KEY_GRACE_MS: u64 = 30_000;

/// Ingress: a rekey that no reverse packet acknowledged (a one-way flow) switches this long
/// after it started. Shorter than [`PAYLOAD_KEY_GRACE_MS`], so that the egress, which keeps
/// the old key for the grace period from when it installed the new one, still accepts what
/// was sent under the old key until then.
pub const PAYLOAD_KEY_SWITCH_MS: u64 = 20_000;

/// One payload key of a session with its 32 raw bytes (for TLV 46); the raw bytes are zeroed
/// on drop, the key schedule zeroizes itself.
pub struct SessionKey {
    /// The expanded key.
    pub key: PayloadKey,
    raw: [u8; 32],
}

impl SessionKey {
    /// A key with its TLV 46 index.
    pub fn new(index: u8, raw: [u8; 32]) -> Arc<SessionKey> {
        Arc::new(SessionKey {
            key: PayloadKey::new(index, &raw),
            raw,
        })
    }

    /// Its index.
    #[inline]
    pub fn index(&self) -> u8 {
        self.key.index()
    }

    /// True when `raw` are this key's bytes (constant time).
    pub fn raw_eq(&self, raw: &[u8; 32]) -> bool {
        use subtle::ConstantTimeEq;
        self.raw.ct_eq(raw).into()
    }

    /// TLV 46 for it.
    pub fn tlv(&self) -> crate::svr::PayloadKeyTlv<'_> {
        crate::svr::PayloadKeyTlv {
            index: self.key.index(),
            cipher: crate::svr::value::PayloadCipher::Aes256Cbc,
            key: &self.raw,
        }
    }
}

impl Drop for SessionKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.raw);
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("key", &self.key)
            .finish()
    }
}

/// A session's payload keys, published for all workers; `generation` ties them to one
/// session. Immutable: a rekey publishes a new value (one allocation per rekey).
///
/// Payload-key rotation of a live session (see `docs/protocol.md`): the ingress puts a new
/// key in `next` and sends it in forward metadata (the payload of those metadata packets is
/// encrypted under it, data packets still under `current`); the egress installs it as its
/// `current` at once, keeps the old one as `previous` for [`PAYLOAD_KEY_GRACE_MS`] and echoes
/// the index in reverse metadata; the ingress switches (`next` becomes `current`, the old one
/// `previous`) when reverse metadata echoes the new index or a reverse data packet
/// authenticates under it.
#[derive(Debug)]
pub struct SessionCrypto {
    /// The session's generation (an older entry in the slot is stale).
    pub generation: u32,
    /// The peer (which metadata key to use for metadata on this session).
    pub peer: PeerId,
    /// The key data packets are sent with.
    pub current: Arc<SessionKey>,
    /// Ingress during a rekey: the new key, sent in TLV 46, not yet acknowledged.
    pub next: Option<Arc<SessionKey>>,
    /// The key before `current`, still accepted until `previous_until_ms`.
    pub previous: Option<Arc<SessionKey>>,
    /// End of the grace period of `previous` (session clock, ms).
    pub previous_until_ms: u64,
    /// When `next` was made (session clock, ms): without an acknowledgement the ingress
    /// switches [`PAYLOAD_KEY_SWITCH_MS`] later.
    pub next_since_ms: u64,
    /// The peer's unreachability epoch ([`KeySnapshot::peer_epoch`]) when these keys were
    /// made. Ingress: another one on a packet means "refresh". Egress: another one means
    /// the peer may have restarted and reused the session's wayports
    /// ([`SvrShared::reused_by_restarted_peer`]).
    pub peer_epoch: u8,
}

impl SessionCrypto {
    /// A new session's keys.
    pub fn new(generation: u32, peer: PeerId, index: u8, raw: [u8; 32]) -> SessionCrypto {
        Self::with_key(generation, peer, SessionKey::new(index, raw))
    }

    /// The same keys, made at the peer's unreachability epoch `peer_epoch`.
    pub fn at_epoch(mut self, peer_epoch: u8) -> SessionCrypto {
        self.peer_epoch = peer_epoch;
        self
    }

    /// A new session's keys, with an installed `current` key (the ingress's key stock).
    pub fn with_key(generation: u32, peer: PeerId, current: Arc<SessionKey>) -> SessionCrypto {
        SessionCrypto {
            peer_epoch: 0,
            generation,
            peer,
            current,
            next: None,
            previous: None,
            previous_until_ms: 0,
            next_since_ms: 0,
        }
    }

    /// The previous key if its grace period still runs at `now_ms`.
    #[inline]
    pub fn previous_at(&self, now_ms: u64) -> Option<&SessionKey> {
        self.previous
            .as_deref()
            .filter(|_| now_ms < self.previous_until_ms)
    }

    /// The key of a forward-metadata packet: `next` during a rekey, else `current`.
    #[inline]
    pub fn announced(&self) -> &Arc<SessionKey> {
        self.next.as_ref().unwrap_or(&self.current)
    }

    /// Our keys with `key` made current and the current one kept as previous for the grace
    /// period from `now_ms`.
    fn switched(&self, key: Arc<SessionKey>, now_ms: u64) -> SessionCrypto {
        SessionCrypto {
            peer_epoch: self.peer_epoch,
            generation: self.generation,
            peer: self.peer,
            current: key,
            next: None,
            previous: Some(Arc::clone(&self.current)),
            previous_until_ms: now_ms + PAYLOAD_KEY_GRACE_MS,
            next_since_ms: 0,
        }
    }

    /// Whether `index` names one of our keys (current, pending or previous).
    #[inline]
    fn index_in_use(&self, index: u8) -> bool {
        [
            Some(&self.current),
            self.next.as_ref(),
            self.previous.as_ref(),
        ]
        .into_iter()
        .flatten()
        .any(|k| k.index() == index)
    }

    /// The index a new key of this session takes: `want` (the peer's current payload-key
    /// index), or the first after it (wrapping) that names none of our keys, so that the
    /// egress, which holds at most our current and previous key, never takes the new key for
    /// one it has (it tells keys apart by index, `docs/protocol.md` §4.1).
    pub fn fresh_index(&self, want: u8) -> u8 {
        let mut i = want;
        // At most 3 indices are in use, so this ends within 4 steps.
        while self.index_in_use(i) {
            i = i.wrapping_add(1);
        }
        i
    }

    /// Our keys after the egress lost the session (ingress, Enable Metadata): `key` is current
    /// at once, nothing waits, and the key the egress last had stays as `previous` only to
    /// keep its index reserved: its grace period is over (`previous_until_ms = now_ms`), so
    /// nothing under it is accepted again, since the reverse replay window restarts.
    fn refreshed(&self, key: Arc<SessionKey>, now_ms: u64, peer_epoch: u8) -> SessionCrypto {
        SessionCrypto {
            peer_epoch,
            generation: self.generation,
            peer: self.peer,
            current: key,
            next: None,
            previous: Some(Arc::clone(self.announced())),
            previous_until_ms: now_ms,
            next_since_ms: 0,
        }
    }

    /// Our keys with `next` pending (a rekey started at `now_ms`).
    fn with_next(&self, next: Arc<SessionKey>, now_ms: u64) -> SessionCrypto {
        SessionCrypto {
            peer_epoch: self.peer_epoch,
            generation: self.generation,
            peer: self.peer,
            current: Arc::clone(&self.current),
            next: Some(next),
            previous: self.previous.clone(),
            previous_until_ms: self.previous_until_ms,
            next_since_ms: now_ms,
        }
    }
}

/// One live session, for reports ([`SvrShared::first_sessions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSummary {
    /// The session UUID.
    pub uuid: [u8; 16],
    /// Ingress or egress.
    pub role: Role,
    /// Index in [`ServiceTable::services`] of the service its LAN side matches.
    pub service: Option<usize>,
    /// Index in [`SvrShared::pairs`] of its waypoint pair.
    pub pair: Option<usize>,
    /// The LAN-side 5-tuple, as received.
    pub lan_key: FlowKey,
    /// The WAN-side 5-tuple, as received from the peer.
    pub wan_key: FlowKey,
    /// Payload key index.
    pub payload_key_index: u8,
}

/// Everything the SVR path shares between workers: config, session table, keys.
#[derive(Debug)]
pub struct SvrShared {
    /// Settings.
    pub cfg: SvrConfig,
    /// Sessions.
    pub table: SessionTable,
    /// Metadata keys.
    pub keys: KeyStore,
    /// Payload keys by session arena index.
    crypto: Box<[ArcSwapOption<SessionCrypto>]>,
    /// Waypoint pairs, grouped by peer (a peer's pairs are contiguous, in its path order).
    pairs: Vec<WaypointPair>,
    /// Per peer, its pairs' range in [`Self::pairs`]; path `i` of the peer's
    /// [`PathSnapshot`] is pair `start + i`.
    peer_pairs: Vec<std::ops::Range<usize>>,
    /// One replay window per session slot, shared by every worker (see the module doc).
    windows: Box<[SessionWindow]>,
    /// Sessions recently created as egress, per peer (replayed first packets).
    seen: SeenSessions,
    /// How long a created session stays in [`Self::seen`]: by default the metadata key's
    /// lifetime (the 24 h default peer-key rekey interval plus its grace); a replayed first
    /// packet older than that is under a metadata key we no longer accept.
    pub seen_session_ttl_ms: u64,
    /// Services, policies, timeouts and rates: what a reload swaps ([`ServiceTable`]).
    live: ArcSwap<ServiceTable>,
}

/// Default of [`ServiceTable::revert_hold_down_ms`]: `hold-down-time`'s default, 5 s.
pub const REVERT_HOLD_DOWN_MS: u64 = 5_000;

/// Default of [`SvrShared::seen_session_ttl_ms`].
pub const SEEN_SESSION_TTL_MS: u64 = 25 * 3600 * 1000;

/// Ingress: how far back (packets sent on the session) the sequence number an Enable
/// Metadata echoes may lie. An answer to an older packet is refused as stale.
pub const CONTROL_ECHO_WINDOW: u64 = 1 << 16;

/// A session's replay window, shared by the workers, with the generation it belongs to and
/// the floor of the control messages it still accepts.
#[derive(Debug, Default)]
struct SessionWindow {
    /// Generation + 1 of the session the window belongs to (0: none).
    owner: AtomicU64,
    /// Control messages (Enable Metadata) must echo a sequence number at or above this: one
    /// more than the last one acted on.
    control_floor: AtomicU64,
    window: SharedReplayWindow,
    /// Ingress: the waypoint pair + 1 the session was created on (0: none), to which
    /// `revertible-failover` returns.
    preferred: AtomicU64,
    /// Ingress: [`KeySnapshot::path_version`] + 1 at the session's last review (0: never).
    reviewed: AtomicU64,
    /// Ingress: session-clock ms at which a pending revert falls due (0: none).
    revert_at_ms: AtomicU64,
}

/// Ways per bucket of [`SeenSessions`].
const SEEN_WAYS: usize = 8;

/// Per peer, a set-associative cache of fingerprints of the sessions created from its forward
/// metadata (UUID and payload key), each with an expiry. Preallocated: nothing allocates per
/// packet; when a bucket is full the entry closest to expiry is replaced (so under a churn of
/// more sessions than ways × buckets within the lifetime, the oldest lose protection).
struct SeenSessions {
    /// Per peer: `mask + 1` entries.
    peers: Box<[Box<[SeenEntry]>]>,
    mask: usize,
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Default)]
struct SeenEntry {
    /// Fingerprint (never 0 when used).
    fp: AtomicU64,
    /// Session clock ms after which the entry no longer counts.
    until_ms: AtomicU64,
}

impl std::fmt::Debug for SeenSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeenSessions")
            .field("peers", &self.peers.len())
            .field("per_peer", &(self.mask + 1))
            .finish()
    }
}

impl SeenSessions {
    fn new(peers: usize, max_sessions: u32) -> SeenSessions {
        let per = (max_sessions as usize)
            .next_power_of_two()
            .clamp(1024, 1 << 20);
        SeenSessions {
            peers: (0..peers)
                .map(|_| (0..per).map(|_| SeenEntry::default()).collect())
                .collect(),
            mask: per - 1,
            hasher: Default::default(),
        }
    }

    /// The fingerprint of a session: its UUID and payload key (index and bytes).
    fn fingerprint(&self, uuid: &[u8; 16], index: u8, raw: &[u8; 32]) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = self.hasher.build_hasher();
        h.write(uuid);
        h.write_u8(index);
        h.write(raw);
        h.finish().max(1)
    }

    fn bucket(&self, peer: PeerId, fp: u64) -> Option<&[SeenEntry]> {
        let entries = self.peers.get(usize::from(peer))?;
        let start = (fp as usize & self.mask) & !(SEEN_WAYS - 1);
        entries.get(start..start + SEEN_WAYS)
    }

    fn contains(&self, peer: PeerId, fp: u64, now_ms: u64) -> bool {
        self.bucket(peer, fp).is_some_and(|b| {
            b.iter().any(|e| {
                e.fp.load(Ordering::Acquire) == fp && now_ms < e.until_ms.load(Ordering::Relaxed)
            })
        })
    }

    /// Records `fp` until `until_ms`. Two workers recording into one bucket at once may pick
    /// the same way; one entry is then lost (the cache is best effort under that race).
    fn insert(&self, peer: PeerId, fp: u64, until_ms: u64) {
        let Some(b) = self.bucket(peer, fp) else {
            return;
        };
        let way = b
            .iter()
            .find(|e| e.fp.load(Ordering::Relaxed) == fp)
            .or_else(|| b.iter().min_by_key(|e| e.until_ms.load(Ordering::Relaxed)));
        if let Some(e) = way {
            // Expiry first: a reader that sees the new fingerprint sees at least this expiry
            // or a later one.
            e.until_ms.store(until_ms, Ordering::Relaxed);
            e.fp.store(fp, Ordering::Release);
        }
    }
}

/// Why [`SvrShared::new`] refused the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SvrSetupError {
    /// The wayport range holds no (even, odd) pair.
    EmptyWayportRange,
    /// A peer has more paths than a [`PathSnapshot`] holds ([`svr_linkq::MAX_PATHS`]).
    TooManyPaths,
}

impl std::fmt::Display for SvrSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SvrSetupError::EmptyWayportRange => "svr.wayport-range holds no (even, odd) port pair",
            SvrSetupError::TooManyPaths => "a peer has more than 32 paths (waypoint pairs)",
        })
    }
}

impl std::error::Error for SvrSetupError {}

impl SvrShared {
    /// Builds the table (`max_sessions`), one wayport allocator per (our waypoint, peer
    /// waypoint) pair of the same family, and an empty key store.
    pub fn new(mut cfg: SvrConfig) -> Result<SvrShared, SvrSetupError> {
        let mut table = ServiceTable::new(
            std::mem::take(&mut cfg.services),
            cfg.timeouts,
            cfg.enable_metadata_rate,
            REVERT_HOLD_DOWN_MS,
        );
        table.mss_reserve = mss_reserve(&cfg, &table.services);
        // A second WAN key per session only where a service duplicates (ours or a peer's):
        // the others pay nothing for it (docs/multipath.md §6.1).
        let duplication = table.duplicates();
        let sessions = SessionTable::build(
            cfg.max_sessions,
            crate::session::FlowHasher::random(),
            duplication,
        );
        let crypto = (0..cfg.max_sessions)
            .map(|_| ArcSwapOption::empty())
            .collect();
        let mut pairs = Vec::new();
        let mut peer_pairs = Vec::with_capacity(cfg.peers.len());
        let mut peer_paths = Vec::with_capacity(cfg.peers.len());
        let mut pair_slots = Vec::new();
        for (p, peer) in cfg.peers.iter().enumerate() {
            let mode = if peer.source_nat {
                WayportMode::UniqueDestination
            } else {
                WayportMode::UniquePair
            };
            let attrs: Vec<PathAttr> = if peer.paths.is_empty() {
                let mut v = Vec::new();
                for &remote in &peer.waypoints {
                    for (l, &local) in cfg.local_waypoints.iter().enumerate() {
                        if local.is_ipv4() == remote.is_ipv4() {
                            v.push(PathAttr {
                                local,
                                remote,
                                cost: 0,
                                vector: None,
                                local_link: u8::try_from(l).unwrap_or(u8::MAX),
                            });
                        }
                    }
                }
                v
            } else {
                peer.paths.clone()
            };
            let start = pairs.len();
            let mut snap = PathSnapshot::default();
            for a in attrs {
                let i = snap
                    .push(PathEntry {
                        in_service: true,
                        metrics: None,
                        vector: a.vector,
                        cost: a.cost,
                        local_link: a.local_link,
                    })
                    .ok_or(SvrSetupError::TooManyPaths)?;
                pair_slots.push((p as PeerId, i));
                pairs.push(WaypointPair {
                    peer: p as PeerId,
                    local: a.local,
                    remote: a.remote,
                    path_id: a.local.to_string(),
                    ports: WayportAllocator::new(cfg.wayport_range, mode)
                        .map_err(|_| SvrSetupError::EmptyWayportRange)?,
                });
            }
            peer_pairs.push(start..pairs.len());
            peer_paths.push(snap);
        }
        let windows = (0..cfg.max_sessions)
            .map(|_| SessionWindow::default())
            .collect();
        let seen = SeenSessions::new(cfg.peers.len(), cfg.max_sessions);
        let keys = KeyStore::new();
        keys.set_topology(peer_paths, pair_slots);
        Ok(SvrShared {
            cfg,
            table: sessions,
            keys,
            crypto,
            pairs,
            peer_pairs,
            windows,
            seen,
            seen_session_ttl_ms: SEEN_SESSION_TTL_MS,
            live: ArcSwap::from_pointee(table),
        })
    }

    /// The settings this data path runs with now: [`Self::cfg`] with the services, timeouts
    /// and rate of the current [`ServiceTable`] (to build another `SvrShared` like it).
    pub fn config(&self) -> SvrConfig {
        let t = self.services();
        SvrConfig {
            services: t.services.clone(),
            timeouts: t.timeouts,
            enable_metadata_rate: t.enable_metadata_rate,
            ..self.cfg.clone()
        }
    }

    /// The services, policies, timeouts and rates of the moment (one atomic load; hold the
    /// guard only for the decision at hand).
    #[inline]
    pub fn services(&self) -> arc_swap::Guard<Arc<ServiceTable>> {
        self.live.load()
    }

    /// Publishes `new` in one store, after checking it fits this data path (its peers, and
    /// room for packet duplication); on `Err` nothing changed. The MSS reserve never
    /// shrinks, so sessions clamped before the reload still fit their rekey metadata. For
    /// the slow path (allocates).
    pub fn replace_table(&self, mut new: ServiceTable) -> Result<(), TableRefused> {
        let peers = self.cfg.peers.len();
        if new
            .services
            .iter()
            .any(|s| s.peer.is_some_and(|p| usize::from(p) >= peers))
        {
            return Err(TableRefused::UnknownPeer);
        }
        if new.duplicates() && !self.table.has_duplicate_keys() {
            return Err(TableRefused::NoDuplication);
        }
        let old = self.live.load();
        let want = mss_reserve(&self.cfg, &new.services);
        new.mss_reserve = [
            want[0].max(old.mss_reserve[0]),
            want[1].max(old.mss_reserve[1]),
        ];
        self.live.store(Arc::new(new));
        Ok(())
    }

    /// The waypoint pairs.
    pub fn pairs(&self) -> &[WaypointPair] {
        &self.pairs
    }

    /// The MSS a SYN or SYN-ACK leaving for the WAN is clamped to: [`max_mss`] less the room
    /// for the metadata of a payload rekey (see [`rekey_reserve`]), so that a full-size
    /// segment still fits the WAN MTU when that metadata rides on it.
    #[inline]
    pub fn clamped_mss(&self, outer_v4: bool, inner_v4: bool) -> u16 {
        max_mss(self.cfg.wan_mtu, outer_v4)
            .saturating_sub(self.live.load().mss_reserve[usize::from(inner_v4)])
    }

    /// True when `dst` is in a service served by a peer: the packet goes over SVR. (One
    /// table load: a burst loop loads [`Self::services`] once and asks the table.)
    #[inline]
    pub fn is_peer_service(&self, dst: IpAddr) -> bool {
        self.services().is_peer_service(dst)
    }

    /// True when `addr` is one of our waypoints.
    #[inline]
    pub fn is_local_waypoint(&self, addr: IpAddr) -> bool {
        self.cfg.local_waypoints.contains(&addr)
    }

    /// True for a port of the wayport range (either parity).
    #[inline]
    pub fn is_wayport(&self, port: u16) -> bool {
        (self.cfg.wayport_range.first..=self.cfg.wayport_range.last).contains(&port)
    }

    /// The peer owning waypoint `addr`.
    #[inline]
    pub fn peer_of_waypoint(&self, addr: IpAddr) -> Option<PeerId> {
        self.cfg
            .peers
            .iter()
            .position(|p| p.waypoints.contains(&addr))
            .map(|i| i as PeerId)
    }

    /// `peer`'s waypoint pair with path index `i` of its [`PathSnapshot`].
    #[inline]
    pub fn pair_of_path(&self, peer: PeerId, i: PathIndex) -> Option<usize> {
        let r = self.peer_pairs.get(usize::from(peer))?;
        let pair = r.start + usize::from(i.0);
        (pair < r.end).then_some(pair)
    }

    /// The path index of waypoint pair `pair` among its peer's paths.
    #[inline]
    pub fn path_of_pair(&self, pair: usize) -> Option<(PeerId, PathIndex)> {
        let peer = self.pairs.get(pair)?.peer;
        let start = self.peer_pairs.get(usize::from(peer))?.start;
        Some((peer, PathIndex(u8::try_from(pair - start).ok()?)))
    }

    /// `peer`'s paths whose outer family is the inner packet's (`v4`): preferred, so that the
    /// outer header needs no family change.
    fn family_paths(&self, peer: PeerId, v4: bool) -> PathSet {
        let mut set = PathSet::EMPTY;
        if let Some(r) = self.peer_pairs.get(usize::from(peer)) {
            for (i, p) in self.pairs[r.clone()].iter().enumerate() {
                if p.local.is_ipv4() == v4 {
                    set.insert(PathIndex(i as u8));
                }
            }
        }
        set
    }

    /// SLA path selection for a new session (docs/multipath.md §4) among `allowed` of `peer`'s
    /// paths, with the service's `policy` and the session's `uuid`: the inner family's paths
    /// first, then the others. `NoPath::SlaDrop` only when no path of either family is
    /// eligible and at least one was dropped for its SLA.
    fn select_path(
        &self,
        paths: &PathSnapshot,
        policy: &Policy,
        uuid: &[u8; 16],
        peer: PeerId,
        v4: bool,
        allowed: PathSet,
    ) -> Result<PathIndex, NoPath> {
        let same = self.family_paths(peer, v4).and(allowed);
        let other = PathSet(allowed.0 & !same.0);
        match svr_linkq::select_in(paths, policy, uuid, same) {
            Ok(i) => Ok(i),
            Err(first) => match svr_linkq::select_in(paths, policy, uuid, other) {
                Ok(i) => Ok(i),
                Err(NoPath::SlaDrop) => Err(NoPath::SlaDrop),
                Err(NoPath::NoneInService) => Err(first),
            },
        }
    }

    /// Creates a new session to `peer` on wayports of one of its waypoint pairs chosen by
    /// SLA path selection (`policy`, `uuid`): the selected one, then, when its wayports are
    /// exhausted, the next one the policy selects among the rest, and so on: the session
    /// spills over only to paths the policy allows (in service, not `never`, and meeting the
    /// SLA unless `best-effort` lets it fall back). `claim` inserts the session with a
    /// candidate pair and its ports (see [`WayportAllocator::claim`]). `WayportsExhausted`
    /// when every allowed pair is exhausted; `PathOutOfService` / `NoSlaPath` when selection
    /// finds no path at all; `UnknownPeer` for a peer without pairs.
    #[allow(clippy::too_many_arguments)]
    fn claim_wayports<T>(
        &self,
        keys: &KeySnapshot,
        policy: &Policy,
        uuid: &[u8; 16],
        peer: PeerId,
        v4: bool,
        mut claim: impl FnMut(usize, &WaypointPair, Wayports) -> Result<T, Claim<SvrDrop>>,
    ) -> Result<T, SvrDrop> {
        let Some(paths) = keys.paths_of(peer).filter(|p| !p.paths().is_empty()) else {
            return Err(SvrDrop::UnknownPeer);
        };
        let mut allowed = PathSet::ALL;
        let mut tried = false;
        loop {
            let i = match self.select_path(paths, policy, uuid, peer, v4, allowed) {
                Ok(i) => i,
                Err(_) if tried => return Err(SvrDrop::WayportsExhausted),
                Err(NoPath::SlaDrop) => return Err(SvrDrop::NoSlaPath),
                Err(NoPath::NoneInService) => return Err(SvrDrop::PathOutOfService),
            };
            tried = true;
            allowed = allowed.without(i);
            let Some(pi) = self.pair_of_path(peer, i) else {
                continue;
            };
            let p = &self.pairs[pi];
            match p.ports.claim(|ports| claim(pi, p, ports)) {
                Ok(t) => return Ok(t),
                Err(ClaimError::Abort(d)) => return Err(d),
                Err(ClaimError::Exhausted) => {}
            }
        }
    }

    /// Ingress, on a packet of live session `s` whose waypoint pair `from` is out of service:
    /// with `session-resiliency` `failover` or `revertible-failover` in its service's policy,
    /// moves it to the best other in-service pair (SLA selection with the session's UUID,
    /// wayports on the new pair; the table rebinds its WAN key, so id, UUID, payload keys,
    /// sequence numbers and replay window stay), frees the old wayports and sends forward
    /// metadata again, so the egress rebinds too (docs/multipath.md §6). Otherwise, or when
    /// no other pair is usable, `PathOutOfService` (the session is stranded; its packets are
    /// dropped and counted until a path returns). Runs once per move, not per packet.
    pub(crate) fn move_session(
        &self,
        w: &mut SvrWorker,
        keys: &KeySnapshot,
        s: &SessionRef,
        from: usize,
    ) -> Result<SessionRef, SvrDrop> {
        use svr_linkq::SessionResiliency as R;
        let lan_dst = s.lan_key.dst();
        let services = self.services();
        let policy = services
            .service_for(lan_dst)
            .map(|(_, svc)| &svc.policy)
            .filter(|p| p.session_resiliency != R::None)
            .ok_or(SvrDrop::PathOutOfService)?;
        if policy.session_resiliency == R::PacketDuplication {
            return self.review_duplicate(w, keys, s, from, policy);
        }
        let uuid = self.table.uuid(s.id).ok_or(SvrDrop::StaleSession)?;
        let peer = self.pairs.get(from).ok_or(SvrDrop::StaleSession)?.peer;
        let old_wan = s.wan_key;
        let moved = self.claim_wayports(
            keys,
            policy,
            &uuid,
            peer,
            lan_dst.is_ipv4(),
            |pi, pair, ports| {
                if pi == from {
                    return Err(Claim::Taken);
                }
                self.rebind_claim(s, old_wan, pair, ports).map(|()| pi)
            },
        );
        let to = match moved {
            Ok(to) => to,
            Err(SvrDrop::WayportsExhausted | SvrDrop::NoSlaPath) => {
                return Err(SvrDrop::PathOutOfService)
            }
            Err(SvrDrop::StaleSession) => {
                // Another worker moved it first: carry on with what it did.
                return self
                    .table
                    .get(s.id, Side::Lan)
                    .filter(|n| n.wan_key != old_wan)
                    .ok_or(SvrDrop::StaleSession);
            }
            Err(d) => return Err(d),
        };
        self.finish_move(w, s, from, to, MoveCause::PathDown)
    }

    /// After session `s`'s WAN key was rebound from pair `from` to pair `to`: frees the old
    /// wayports, sends forward metadata again (same UUID: the egress rebinds), records the
    /// move.
    fn finish_move(
        &self,
        w: &mut SvrWorker,
        s: &SessionRef,
        from: usize,
        to: usize,
        reason: MoveCause,
    ) -> Result<SessionRef, SvrDrop> {
        let old_wan = s.wan_key;
        // wan_key: peer wp:odd → our wp:even.
        let _ = self.pairs[from].ports.free(Wayports {
            source: old_wan.dst_port(),
            destination: old_wan.src_port(),
        });
        self.table
            .update_metadata(s.id, |_| MetadataState::SendingForward { count: 0 });
        w.note_move(SessionMoveEvent {
            uuid: self.table.uuid(s.id).unwrap_or_default(),
            peer: self.pairs[from].peer,
            from_pair: from,
            to_pair: to,
            reason,
        });
        self.table.get(s.id, Side::Lan).ok_or(SvrDrop::StaleSession)
    }

    /// Ingress: moves live session `s` from pair `from` to exactly pair `to` (new wayports
    /// there, the WAN key rebound; id, UUID, keys and sequence numbers stay). `Ok(s)`
    /// unchanged when `to` has no free wayports (the session stays where it is, still
    /// usable); another worker's move is taken as it is.
    fn rebind_to(
        &self,
        w: &mut SvrWorker,
        s: &SessionRef,
        from: usize,
        to: usize,
        reason: MoveCause,
    ) -> Result<SessionRef, SvrDrop> {
        let old_wan = s.wan_key;
        let Some(pair) = self.pairs.get(to) else {
            return Ok(*s);
        };
        let r = pair
            .ports
            .claim(|ports| self.rebind_claim(s, old_wan, pair, ports));
        match r {
            Ok(()) => self.finish_move(w, s, from, to, reason),
            Err(ClaimError::Exhausted) => Ok(*s),
            Err(ClaimError::Abort(SvrDrop::StaleSession)) => {
                self.table.get(s.id, Side::Lan).ok_or(SvrDrop::StaleSession)
            }
            Err(ClaimError::Abort(d)) => Err(d),
        }
    }

    /// Ingress: records that session `id` was created on waypoint pair `pair` (its preferred
    /// path) and reviewed against the path state of `keys`.
    fn note_created_on(&self, id: SessionId, pair: usize, keys: &KeySnapshot) {
        if let Some(w) = self.session_window(id) {
            w.preferred.store(pair as u64 + 1, Ordering::Relaxed);
            w.reviewed
                .store(keys.path_version.wrapping_add(1), Ordering::Relaxed);
        }
    }

    /// Ingress, per packet of a live session: has path state changed since its last review
    /// ([`KeySnapshot::path_version`]), or has a pending revert fallen due? Two loads and two
    /// compares on the session's window line.
    #[inline]
    pub(crate) fn review_due(&self, id: SessionId, keys: &KeySnapshot, now_ms: u64) -> bool {
        let Some(w) = self.session_window(id) else {
            return false;
        };
        if w.reviewed.load(Ordering::Relaxed) != keys.path_version.wrapping_add(1) {
            return true;
        }
        let at = w.revert_at_ms.load(Ordering::Relaxed);
        at != 0 && now_ms >= at
    }

    /// Ingress, on a packet of live session `s` on in-service pair `from` after path state
    /// changed ([`Self::review_due`]): [`svr_linkq::decide`] with its service's policy over
    /// the peer's published paths (metrics and compliance as the slow path published them,
    /// i.e. after its hold-down). `failover` / `revertible-failover`: a pair that no longer
    /// meets the SLA is left for a compliant one (`SlaViolation`); `revertible-failover`
    /// returns to the preferred pair (`Revert`) once it is usable and has been in service for
    /// [`Self::revert_hold_down_ms`] (else the revert is armed for then). Anything else:
    /// the session stays. Runs once per change, not per packet.
    pub(crate) fn review_session(
        &self,
        w: &mut SvrWorker,
        keys: &KeySnapshot,
        s: &SessionRef,
        from: usize,
        now: Instant,
    ) -> Result<SessionRef, SvrDrop> {
        use svr_linkq::{Decision, MoveReason, SessionResiliency as R};
        let Some(win) = self.session_window(s.id) else {
            return Ok(*s);
        };
        win.reviewed
            .store(keys.path_version.wrapping_add(1), Ordering::Relaxed);
        win.revert_at_ms.store(0, Ordering::Relaxed);
        let services = self.services();
        let Some(policy) = services
            .service_for(s.lan_key.dst())
            .map(|(_, svc)| &svc.policy)
            .filter(|p| p.session_resiliency != R::None)
        else {
            return Ok(*s);
        };
        if policy.session_resiliency == R::PacketDuplication {
            return self.review_duplicate(w, keys, s, from, policy);
        }
        let (Some((peer, current)), Some(uuid)) = (self.path_of_pair(from), self.table.uuid(s.id))
        else {
            return Ok(*s);
        };
        let Some(paths) = keys.paths_of(peer) else {
            return Ok(*s);
        };
        let preferred = match win.preferred.load(Ordering::Relaxed) {
            0 => current,
            p => self
                .path_of_pair(p as usize - 1)
                .filter(|&(pp, _)| pp == peer)
                .map_or(current, |(_, i)| i),
        };
        let sp = svr_linkq::SessionPaths {
            current,
            preferred,
            duplicate: None,
        };
        match svr_linkq::decide(policy, paths, paths.compliant(policy), &sp, &uuid) {
            Decision::Move {
                to,
                reason: MoveReason::Revert,
            } => {
                let Some(pair) = self.pair_of_path(peer, to) else {
                    return Ok(*s);
                };
                // 0: in service since before anyone said when (no hold-down to wait for).
                let due = match keys.pair_up_since_ms(pair) {
                    0 => 0,
                    since => since.saturating_add(services.revert_hold_down_ms),
                };
                if crate::session::now_millis(now) < due {
                    win.revert_at_ms.store(due, Ordering::Relaxed);
                    return Ok(*s);
                }
                self.rebind_to(w, s, from, pair, MoveCause::Revert)
            }
            Decision::Move {
                to,
                reason: MoveReason::SlaViolation,
            } => match self.pair_of_path(peer, to) {
                Some(pair) => self.rebind_to(w, s, from, pair, MoveCause::SlaViolation),
                None => Ok(*s),
            },
            _ => Ok(*s),
        }
    }

    /// Ingress, `packet-duplication`: session `s` (first copy on pair `from`) after a path
    /// change (reviewed, or its pair out of service): [`svr_linkq::decide`] with the
    /// session's pair of paths. When the first path failed and the second is usable, the
    /// second becomes the first (the table swaps the two WAN keys; nothing is claimed); when
    /// neither is, the session moves to the path `decide` names (as `failover` does). Then a
    /// second path that is unusable, or missing, is replaced by the best usable other path of
    /// the first's family ([`Self::add_duplicate`]), or dropped when there is none. Forward
    /// metadata goes out again after every change, so the egress learns the new binding
    /// from it. Every change is a [`SessionMoveEvent`] with `decide`'s reason (`path-down`,
    /// `sla-violation`, `path-up`); `Stranded` is `PathOutOfService`. Once per change.
    fn review_duplicate(
        &self,
        w: &mut SvrWorker,
        keys: &KeySnapshot,
        s: &SessionRef,
        from: usize,
        policy: &Policy,
    ) -> Result<SessionRef, SvrDrop> {
        use svr_linkq::Decision;
        if let Some(win) = self.session_window(s.id) {
            win.reviewed
                .store(keys.path_version.wrapping_add(1), Ordering::Relaxed);
        }
        let (Some((peer, current)), Some(uuid)) = (self.path_of_pair(from), self.table.uuid(s.id))
        else {
            return Ok(*s);
        };
        let Some(paths) = keys.paths_of(peer) else {
            return Ok(*s);
        };
        let path_of = |p: usize| {
            self.path_of_pair(p)
                .filter(|&(pp, _)| pp == peer)
                .map(|(_, i)| i)
        };
        let dup_pair = self.dup_pair(s);
        let sp = svr_linkq::SessionPaths {
            current,
            preferred: current,
            duplicate: dup_pair.and_then(path_of),
        };
        let compliant = paths.compliant(policy);
        let (primary, cause) = match svr_linkq::decide(policy, paths, compliant, &sp, &uuid) {
            Decision::Duplicate {
                primary, reason, ..
            } => (primary, MoveCause::of(reason)),
            Decision::Stranded => return Err(SvrDrop::PathOutOfService),
            _ => return Ok(*s),
        };
        let mut s = *s;
        let mut from = from;
        if primary != current {
            let Some(to) = self.pair_of_path(peer, primary) else {
                return Ok(s);
            };
            if Some(to) == dup_pair {
                // The survivor takes the first copy; its wayports and binding stay.
                if self.table.promote_duplicate(s.id, s.wan_key).is_ok() {
                    self.table
                        .update_metadata(s.id, |_| MetadataState::SendingForward { count: 0 });
                    w.note_move(SessionMoveEvent {
                        uuid,
                        peer,
                        from_pair: from,
                        to_pair: to,
                        reason: cause,
                    });
                }
                // (Else another worker did it, or moved the session: take what it did.)
                s = self
                    .table
                    .get(s.id, Side::Lan)
                    .ok_or(SvrDrop::StaleSession)?;
            } else {
                s = self.rebind_to(w, &s, from, to, cause)?;
            }
            from = self
                .pair_index(s.rewrite().src(), s.rewrite().dst())
                .unwrap_or(from);
        }
        // The second path: kept while usable (and not the first); else the best other.
        let usable = svr_linkq::usable(policy, paths, compliant);
        let old = self.dup_pair(&s);
        let keep = old.is_some_and(|d| d != from && path_of(d).is_some_and(|i| usable.contains(i)));
        if !keep {
            match self.add_duplicate(keys, policy, &uuid, &s, from) {
                Some(to) => {
                    self.table
                        .update_metadata(s.id, |_| MetadataState::SendingForward { count: 0 });
                    w.note_move(SessionMoveEvent {
                        uuid,
                        peer,
                        from_pair: old.unwrap_or(from),
                        to_pair: to,
                        reason: cause,
                    });
                }
                None => {
                    // No usable second path: single-path until one is (a later review).
                    if let Some(d) = s.dup_key {
                        if self.table.set_duplicate(s.id, Some(d), None).is_ok() {
                            self.free_wan_ports(&d);
                        }
                    }
                }
            }
            s = self
                .table
                .get(s.id, Side::Lan)
                .ok_or(SvrDrop::StaleSession)?;
        }
        Ok(s)
    }

    /// The waypoint pair of session `s`'s second WAN key (`packet-duplication`).
    #[inline]
    pub(crate) fn dup_pair(&self, s: &SessionRef) -> Option<usize> {
        s.dup_key.and_then(|d| self.pair_index(d.dst(), d.src()))
    }

    /// Ingress, `packet-duplication`: gives session `s`, whose first copy takes pair
    /// `primary`, a second pair: the best other path of the peer
    /// ([`svr_linkq::select_second_in`]: in service, meeting the SLA unless `best-effort`,
    /// preferring another of our WAN interfaces) among the paths of `primary`'s outer family,
    /// so that the copy is an address and port rewrite of the sealed packet; when its
    /// wayports are exhausted, the next. The wayports claimed there become the session's
    /// second WAN key in place of `s.dup_key`, whose wayports are given back. `None` when no
    /// such path has free wayports (the session stays single-path; nothing is counted as a
    /// drop), or `s` changed meanwhile.
    pub(crate) fn add_duplicate(
        &self,
        keys: &KeySnapshot,
        policy: &Policy,
        uuid: &[u8; 16],
        s: &SessionRef,
        primary: usize,
    ) -> Option<usize> {
        let (peer, first) = self.path_of_pair(primary)?;
        let paths = keys.paths_of(peer)?;
        let v4 = self.pairs.get(primary)?.local.is_ipv4();
        let mut allowed = self.family_paths(peer, v4).without(first);
        if let Some(d) = self.dup_pair(s).and_then(|d| self.path_of_pair(d)) {
            // The second path being replaced: not again.
            allowed = allowed.without(d.1);
        }
        loop {
            let i = svr_linkq::select_second_in(paths, policy, uuid, allowed, first)?;
            allowed = allowed.without(i);
            let Some(pi) = self.pair_of_path(peer, i) else {
                continue;
            };
            let pair = &self.pairs[pi];
            match pair
                .ports
                .claim(|ports| self.duplicate_claim(s, pair, ports))
            {
                Ok(()) => {
                    if let Some(d) = s.dup_key {
                        self.free_wan_ports(&d);
                    }
                    return Some(pi);
                }
                Err(ClaimError::Exhausted) => {}
                Err(ClaimError::Abort(_)) => return None,
            }
        }
    }

    /// One claim step of [`Self::add_duplicate`]: session `s` takes wayports `ports` on `pair`
    /// as its second WAN key (a compare-and-set from `s.dup_key`). `Taken` when another
    /// session holds them; `StaleSession` when `s` changed or ended meanwhile.
    fn duplicate_claim(
        &self,
        s: &SessionRef,
        pair: &WaypointPair,
        ports: Wayports,
    ) -> Result<(), Claim<SvrDrop>> {
        let key = FlowKey::new(
            pair.remote,
            pair.local,
            s.wan_key.proto(),
            ports.destination,
            ports.source,
        )
        .ok_or(Claim::Abort(SvrDrop::Unsupported))?;
        match self.table.set_duplicate(s.id, s.dup_key, Some(key)) {
            Ok(()) => Ok(()),
            Err(InsertError::Full) => Err(Claim::Abort(SvrDrop::SessionTableFull)),
            Err(InsertError::Exists) => match self.table.get(s.id, Side::Lan) {
                Some(now) if now.dup_key == s.dup_key && now.wan_key == s.wan_key => {
                    Err(Claim::Taken)
                }
                _ => Err(Claim::Abort(SvrDrop::StaleSession)),
            },
        }
    }

    /// The waypoint pair ([`SvrShared::pairs`] index) from our `local` waypoint to a peer's `remote`.
    pub fn pair_index(&self, local: IpAddr, remote: IpAddr) -> Option<usize> {
        self.pairs
            .iter()
            .position(|p| p.local == local && p.remote == remote)
    }

    fn publish_crypto(&self, id: SessionId, c: SessionCrypto) {
        // The shared replay window first: no worker opens a packet of the session before its
        // keys are published (the store below is SeqCst), so none sees the old window.
        if let Some(w) = self.windows.get(id.index as usize) {
            w.window.reset();
            w.control_floor.store(0, Ordering::Relaxed);
            w.preferred.store(0, Ordering::Relaxed);
            w.reviewed.store(0, Ordering::Relaxed);
            w.revert_at_ms.store(0, Ordering::Relaxed);
            w.owner
                .store(u64::from(id.generation) + 1, Ordering::Release);
        }
        if let Some(slot) = self.crypto.get(id.index as usize) {
            slot.store(Some(Arc::new(c)));
        }
    }

    /// Session `id`'s shared replay window, if the slot still belongs to it.
    fn session_window(&self, id: SessionId) -> Option<&SessionWindow> {
        let w = self.windows.get(id.index as usize)?;
        (w.owner.load(Ordering::Acquire) == u64::from(id.generation) + 1).then_some(w)
    }

    /// Empties session `id`'s shared replay window, keeping its control floor: the session got
    /// a fresh payload key, under which the peer's sequence numbers start again.
    fn restart_window(&self, id: SessionId) {
        if let Some(w) = self.session_window(id) {
            w.window.reset();
        }
    }

    /// Egress: a replay drop of session `s` is `DuplicateDropped` when the session is in
    /// `packet-duplication` mode (the service it serves, here: the destination of its forward
    /// direction, `s.lan_key.src()`), else `Replay`. Only on the drop path: a packet that
    /// passes pays nothing.
    pub(crate) fn replay_or_duplicate(&self, s: &SessionRef, d: SvrDrop) -> SvrDrop {
        use svr_linkq::SessionResiliency as R;
        if d != SvrDrop::Replay || s.role != Role::Egress {
            return d;
        }
        match self.services().service_for(s.lan_key.src()) {
            Some((_, svc)) if svc.policy.session_resiliency == R::PacketDuplication => {
                SvrDrop::DuplicateDropped
            }
            _ => d,
        }
    }

    /// Egress: does session `s` serve a `packet-duplication` service in this router's
    /// configuration (and can the table bind its copies)? Only on forward metadata of a
    /// session arriving on a key it lacks.
    pub(crate) fn duplicates(&self, s: &SessionRef) -> bool {
        s.role == Role::Egress
            && self.table.has_duplicate_keys()
            && self
                .services()
                .service_for(s.lan_key.src())
                .is_some_and(|(_, svc)| {
                    svc.policy.session_resiliency == svr_linkq::SessionResiliency::PacketDuplication
                })
    }

    /// Has session `id`'s shared window seen `seq` already (a duplicate, not too old)?
    pub(crate) fn seen_seq(&self, id: SessionId, seq: u64) -> bool {
        self.session_window(id)
            .is_some_and(|w| w.window.check(seq) == Err(svr_crypto::ReplayError::Duplicate))
    }

    /// Would session `id` accept `seq`? (Before any state changes; read-only.)
    fn check_seq(&self, id: SessionId, seq: u64) -> Result<(), SvrDrop> {
        let w = self.session_window(id).ok_or(SvrDrop::StaleSession)?;
        w.window.check(seq).map_err(|_| SvrDrop::Replay)
    }

    /// Accepts `seq` for session `id` once across all workers; call after the packet
    /// authenticated. `Replay` when another worker (or an earlier packet) had it.
    fn accept_seq(&self, id: SessionId, seq: u64) -> Result<(), SvrDrop> {
        let w = self.session_window(id).ok_or(SvrDrop::StaleSession)?;
        w.window.accept(seq).map_err(|_| SvrDrop::Replay)
    }

    /// A control message for session `id` echoing `echoed`, one of our TX sequence numbers
    /// toward the peer: acted on only if we sent it (below our next one, at most
    /// [`CONTROL_ECHO_WINDOW`] back) and it is above every echo acted on before (each
    /// captured control message works at most once, and never after a newer one).
    fn accept_control(&self, id: SessionId, echoed: u64) -> bool {
        let Some(w) = self.session_window(id) else {
            return false;
        };
        let Some(next) = self.table.peek_tx_seq(id, Side::Wan) else {
            return false;
        };
        if echoed >= next || next - echoed > CONTROL_ECHO_WINDOW {
            return false;
        }
        let mut floor = w.control_floor.load(Ordering::Acquire);
        loop {
            if echoed < floor {
                return false;
            }
            match w.control_floor.compare_exchange_weak(
                floor,
                echoed + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(f) => floor = f,
            }
        }
    }

    /// Egress: the fingerprint of a session for [`Self::seen_before`] / [`Self::remember`].
    fn session_fingerprint(&self, uuid: &[u8; 16], index: u8, raw: &[u8; 32]) -> u64 {
        self.seen.fingerprint(uuid, index, raw)
    }

    /// Whether new forward metadata (`uuid`, fingerprint `fp`) on `old`'s WAN key comes from
    /// a restarted peer reusing the wayports of a session it no longer has: `old` is an
    /// egress session of `peer` with another UUID, its keys predate the peer's last
    /// unreachability, and the metadata is not a replay. Anything else stays a mismatch.
    fn reused_by_restarted_peer(
        &self,
        old: &SessionRef,
        peer: PeerId,
        uuid: &[u8; 16],
        fp: u64,
        now_ms: u64,
    ) -> bool {
        old.role == Role::Egress
            && old.key_handle == u32::from(peer)
            && self.table.uuid(old.id).is_some_and(|u| u != *uuid)
            && self
                .crypto(old.id)
                .is_some_and(|c| c.peer_epoch != self.keys.load().peer_epoch(peer))
            && !self.seen_before(peer, fp, now_ms)
    }

    /// Egress: was a session with this fingerprint created from `peer`'s metadata within the
    /// seen-session lifetime?
    fn seen_before(&self, peer: PeerId, fp: u64, now_ms: u64) -> bool {
        self.seen.contains(peer, fp, now_ms)
    }

    /// Egress: remembers a session created from `peer`'s metadata.
    fn remember(&self, peer: PeerId, fp: u64, now_ms: u64) {
        self.seen
            .insert(peer, fp, now_ms.saturating_add(self.seen_session_ttl_ms));
    }

    /// Egress: does this router serve `dst` as service `service` of tenant `tenant`? (A
    /// service with `peer: None` whose prefixes hold `dst`.)
    pub fn serves(&self, dst: IpAddr, tenant: &str, service: &str) -> bool {
        self.services().serves(dst, tenant, service)
    }

    /// Replaces session `id`'s keys if they are still `old` (compare-and-swap); the new
    /// value on success.
    fn swap_crypto(
        &self,
        id: SessionId,
        old: &Arc<SessionCrypto>,
        new: SessionCrypto,
    ) -> Option<Arc<SessionCrypto>> {
        let slot = self.crypto.get(id.index as usize)?;
        let new = Arc::new(new);
        let cur = Some(Arc::clone(old));
        let was = slot.compare_and_swap(&cur, Some(Arc::clone(&new)));
        matches!(&*was, Some(p) if Arc::ptr_eq(p, old)).then_some(new)
    }

    /// One claim step of a move: session `s` (WAN key `old_wan`) takes wayports `ports` on
    /// `pair`. `Taken` when another session holds them, `StaleSession` when `s` moved or ended
    /// meanwhile.
    fn rebind_claim(
        &self,
        s: &SessionRef,
        old_wan: FlowKey,
        pair: &WaypointPair,
        ports: Wayports,
    ) -> Result<(), Claim<SvrDrop>> {
        let wan_key = FlowKey::new(
            pair.remote,
            pair.local,
            old_wan.proto(),
            ports.destination,
            ports.source,
        )
        .ok_or(Claim::Abort(SvrDrop::Unsupported))?;
        match self.table.rebind_wan(s.id, wan_key) {
            Ok(_) => Ok(()),
            Err(InsertError::Full) => Err(Claim::Abort(SvrDrop::SessionTableFull)),
            Err(InsertError::Exists) => match self.table.get(s.id, Side::Lan) {
                Some(now) if now.wan_key == old_wan => Err(Claim::Taken),
                _ => Err(Claim::Abort(SvrDrop::StaleSession)),
            },
        }
    }

    /// Ingress: starts a payload rekey of session `s` to index `to` (its index in the table
    /// differs from the peer's current one). One worker wins the table's compare-and-set and
    /// makes the key; the others carry on with the keys they have. The session sends forward
    /// metadata again, now with the new key in TLV 46.
    fn start_rekey(
        &self,
        w: &mut SvrWorker,
        s: &SessionRef,
        crypto: &Arc<SessionCrypto>,
        to: u8,
        now_ms: u64,
    ) -> Option<Arc<SessionCrypto>> {
        if !self
            .table
            .set_payload_key_index(s.id, s.payload_key_index, to)
        {
            return None;
        }
        // `to` unless the session already holds a key with that index (after a refresh).
        let next = w.payload_key(crypto.fresh_index(to));
        let mut cur = Arc::clone(crypto);
        let c = loop {
            if let Some(c) = self.swap_crypto(s.id, &cur, cur.with_next(Arc::clone(&next), now_ms))
            {
                break c;
            }
            cur = self.crypto(s.id)?;
        };
        self.table
            .update_metadata(s.id, |_| MetadataState::SendingForward { count: 0 });
        w.counters.events.bump(SvrEvent::PayloadRekeyStarted);
        Some(c)
    }

    /// Ingress: the pending key of a rekey becomes current (acknowledged, or
    /// [`PAYLOAD_KEY_SWITCH_MS`] passed); the old one stays accepted for the grace period.
    fn complete_rekey(
        &self,
        w: &mut SvrWorker,
        id: SessionId,
        old: &Arc<SessionCrypto>,
        now_ms: u64,
    ) -> Option<Arc<SessionCrypto>> {
        let next = Arc::clone(old.next.as_ref()?);
        let c = self.swap_crypto(id, old, old.switched(next, now_ms))?;
        w.counters.events.bump(SvrEvent::PayloadRekeyCompleted);
        Some(c)
    }

    /// Egress: forward metadata announced payload key `key` for live session `id` (and its
    /// payload opened under it): it becomes current, the old one previous for the grace
    /// period.
    fn install_rekey(
        &self,
        w: &mut SvrWorker,
        id: SessionId,
        old: &Arc<SessionCrypto>,
        key: Arc<SessionKey>,
        now_ms: u64,
    ) -> Option<Arc<SessionCrypto>> {
        let index = key.index();
        // Keys the peer sent since it was last unreachable: the session is its current one.
        let epoch = self.keys.load().peer_epoch(old.peer);
        let c = self.swap_crypto(id, old, old.switched(key, now_ms).at_epoch(epoch))?;
        let _ = self
            .table
            .set_payload_key_index(id, old.current.index(), index);
        w.counters.events.bump(SvrEvent::PayloadRekeyInstalled);
        Some(c)
    }

    /// The payload key of session `id`, if it is still that session's.
    #[inline]
    /// The session's keys without cloning the `Arc` (`None` inside: no keys, or a stale
    /// generation); hold the guard only for one packet.
    fn crypto_guard(&self, id: SessionId) -> Option<arc_swap::Guard<Option<Arc<SessionCrypto>>>> {
        let g = self.crypto.get(id.index as usize)?.load();
        let current = matches!(&*g, Some(c) if c.generation == id.generation);
        current.then_some(g)
    }

    fn crypto(&self, id: SessionId) -> Option<Arc<SessionCrypto>> {
        let c = self.crypto.get(id.index as usize)?.load_full()?;
        (c.generation == id.generation).then_some(c)
    }

    /// Removes a session and gives its wayports back (ingress sessions own theirs, on their
    /// pair and, with `packet-duplication`, on their second pair).
    pub fn remove_session(&self, s: &SessionRef) -> bool {
        let Some((wan, dup)) = self.table.remove_keys(s.id) else {
            return false;
        };
        if let Some(slot) = self.crypto.get(s.id.index as usize) {
            slot.store(None);
        }
        if s.role == Role::Ingress {
            self.free_wan_ports(&wan);
            if let Some(d) = dup {
                self.free_wan_ports(&d);
            }
        }
        true
    }

    /// Gives back the wayports of an ingress session's WAN key `k` (peer wp:odd → our
    /// wp:even) to its pair's allocator.
    fn free_wan_ports(&self, k: &FlowKey) {
        if let Some(i) = self.pair_index(k.dst(), k.src()) {
            let _ = self.pairs[i].ports.free(Wayports {
                source: k.dst_port(),
                destination: k.src_port(),
            });
        }
    }

    /// Live sessions per waypoint pair ([`Self::pairs`] order): `(ingress, egress)` counts by
    /// the pair of each session's WAN key. Walks the whole arena: for reports (SIGUSR1, the
    /// control socket), never the data path.
    pub fn sessions_per_pair(&self) -> Vec<(u32, u32)> {
        let mut counts = vec![(0u32, 0u32); self.pairs.len()];
        for index in 0..self.table.capacity() as u32 {
            let Some(v) = self.table.expiry_view(index) else {
                continue;
            };
            let Some(s) = self.table.get(v.id, Side::Lan) else {
                continue;
            };
            // wan_key: peer waypoint → our waypoint.
            let (ours, peer) = (s.wan_key.dst(), s.wan_key.src());
            if let Some(c) = self.pair_index(ours, peer).and_then(|i| counts.get_mut(i)) {
                match s.role {
                    Role::Ingress => c.0 += 1,
                    Role::Egress => c.1 += 1,
                }
            }
        }
        counts
    }

    /// The first `n` live sessions in arena order, for reports (DPDK telemetry
    /// `/svr/sessions,N`): stops once it has `n`, so a small `n` costs a short walk. Never the
    /// data path.
    pub fn first_sessions(&self, n: usize) -> Vec<SessionSummary> {
        let services = self.services();
        let mut out = Vec::new();
        for index in 0..self.table.capacity() as u32 {
            if out.len() >= n {
                break;
            }
            let Some(v) = self.table.expiry_view(index) else {
                continue;
            };
            let (Some(s), Some(uuid)) = (self.table.get(v.id, Side::Lan), self.table.uuid(v.id))
            else {
                continue;
            };
            // The LAN key as received: an ingress session's LAN host talks to the service
            // (destination); an egress session's server is the service (source).
            let served = match s.role {
                Role::Ingress => s.lan_key.dst(),
                Role::Egress => s.lan_key.src(),
            };
            out.push(SessionSummary {
                uuid,
                role: s.role,
                service: services.service_for(served).map(|(i, _)| i),
                pair: self.pair_index(s.wan_key.dst(), s.wan_key.src()),
                lan_key: s.lan_key,
                wan_key: s.wan_key,
                payload_key_index: s.payload_key_index,
            });
        }
        out
    }

    /// One bounded step of session reclamation, for the slow-path thread: looks at `budget`
    /// arena entries from `cursor` on, removes expired sessions and frees their wayports and
    /// payload keys. Returns how many it removed. Never blocks a worker.
    pub fn sweep(&self, cursor: &mut usize, now: Instant, budget: usize) -> usize {
        let cap = self.table.capacity();
        if cap == 0 {
            return 0;
        }
        let now_ms = crate::session::now_millis(now);
        let timeouts = self.services().timeouts;
        let mut removed = 0;
        for _ in 0..budget.min(cap) {
            if *cursor >= cap {
                *cursor = 0;
            }
            let index = *cursor as u32;
            *cursor += 1;
            let Some(v) = self.table.expiry_view(index) else {
                continue;
            };
            if !timeouts.expired(&v, now_ms) {
                continue;
            }
            if let Some(s) = self.table.get(v.id, Side::Lan) {
                if self.remove_session(&s) {
                    removed += 1;
                }
            }
        }
        removed
    }
}

/// Per-worker SVR state: the CSPRNG, the stock of installed payload keys for the sessions it
/// opens, replay windows of the sessions whose WAN packets this worker receives, the Enable
/// Metadata token bucket, counters.
pub struct SvrWorker {
    rng: StdRng,
    key_stock: key_stock::KeyStock,
    /// Generation + 1 of the session each replay window belongs to (0: none), by slot.
    replay_owner: Vec<u64>,
    /// Replay windows by session slot; one slice so a burst can open against it.
    replay: Vec<ReplayWindow>,
    /// Enable Metadata token buckets, per peer: (tokens, last refill ms).
    tokens: Vec<(u64, u64)>,
    /// Counters, published by the worker.
    pub counters: SvrCounters,
    /// `session-path-change` events of the moves this worker made since the slow path last
    /// drained them (preallocated; when full, further events are only counted in
    /// `svr_session_moved`).
    pub move_events: arrayvec::ArrayVec<SessionMoveEvent, MOVE_EVENTS>,
}

/// Room for [`SvrWorker::move_events`] between two drains.
pub const MOVE_EVENTS: usize = 64;

/// A session moved from one waypoint pair to another (the `session-path-change` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionMoveEvent {
    /// The session's UUID (unchanged by the move).
    pub uuid: [u8; 16],
    /// The peer.
    pub peer: PeerId,
    /// The old waypoint pair ([`SvrShared::pairs`] index).
    pub from_pair: usize,
    /// The new one.
    pub to_pair: usize,
    /// Why (`path-down`, `sla-violation`, `revert` at the ingress; the egress follows its
    /// peer: `peer-moved`).
    pub reason: MoveCause,
}

/// Why a session moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveCause {
    /// Ingress: its waypoint pair left service (`svr_linkq::MoveReason::PathDown`).
    PathDown,
    /// Ingress: its pair stopped meeting the policy's SLA (published, held-down metrics;
    /// `svr_linkq::MoveReason::SlaViolation`).
    SlaViolation,
    /// Ingress, `revertible-failover`: back to the pair it was created on, usable again for a
    /// full hold-down (`svr_linkq::MoveReason::Revert`).
    Revert,
    /// Egress: the ingress sent the session's forward metadata on another pair.
    PeerMoved,
    /// Ingress, `packet-duplication`: a second path was added to a session that had none
    /// (`svr_linkq::MoveReason::PathUp`).
    PathUp,
}

impl MoveCause {
    fn of(reason: svr_linkq::MoveReason) -> MoveCause {
        use svr_linkq::MoveReason as M;
        match reason {
            M::PathDown => MoveCause::PathDown,
            M::SlaViolation => MoveCause::SlaViolation,
            M::Revert => MoveCause::Revert,
            M::PathUp => MoveCause::PathUp,
        }
    }
}

impl MoveCause {
    /// The event's `reason` field.
    pub fn as_str(self) -> &'static str {
        match self {
            MoveCause::PathDown => "path-down",
            MoveCause::SlaViolation => "sla-violation",
            MoveCause::Revert => "revert",
            MoveCause::PathUp => "path-up",
            MoveCause::PeerMoved => "peer-moved",
        }
    }
}

impl std::fmt::Display for MoveCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for SvrWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SvrWorker")
            .field("rng", &"<redacted>")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl SvrWorker {
    /// A worker context for `shared`, seeding its CSPRNG from `seed` (svrd passes 32 bytes
    /// from the OS at start; tests a fixed value).
    pub fn new(shared: &SvrShared, seed: [u8; 32]) -> SvrWorker {
        SvrWorker {
            rng: StdRng::from_seed(seed),
            key_stock: key_stock::KeyStock::new(),
            replay_owner: vec![0; shared.table.capacity()],
            replay: vec![ReplayWindow::new(); shared.table.capacity()],
            tokens: vec![
                (u64::from(shared.services().enable_metadata_rate), 0);
                shared.cfg.peers.len()
            ],
            counters: SvrCounters::default(),
            move_events: arrayvec::ArrayVec::new(),
        }
    }

    /// Counts a move and records its event (dropped when the log is full).
    pub(crate) fn note_move(&mut self, e: SessionMoveEvent) {
        self.counters.events.bump(SvrEvent::SessionMoved);
        let _ = self.move_events.try_push(e);
    }

    fn random<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.rng.fill_bytes(&mut b);
        b
    }

    /// The replay window of session `id` (reset when the slot belonged to an older session).
    fn window(&mut self, id: SessionId) -> Option<&mut ReplayWindow> {
        let i = self.window_index(id)?;
        self.replay.get_mut(i)
    }

    /// The index of session `id`'s replay window in `replay` (reset when the slot belonged to
    /// an older session).
    fn window_index(&mut self, id: SessionId) -> Option<usize> {
        let i = id.index as usize;
        let owner = self.replay_owner.get_mut(i)?;
        let want = u64::from(id.generation) + 1;
        if *owner != want {
            *owner = want;
            self.replay[i] = ReplayWindow::new();
        }
        Some(i)
    }

    /// Takes one Enable Metadata token of `peer`'s bucket (`rate` per second, burst `rate`):
    /// junk to unused wayports from one peer's addresses cannot draw more than that.
    fn take_token(&mut self, peer: PeerId, rate: u32, now: Instant) -> bool {
        let now_ms = crate::session::now_millis(now);
        let Some((tokens, last)) = self.tokens.get_mut(usize::from(peer)) else {
            return false;
        };
        let elapsed = now_ms.saturating_sub(*last);
        let add = elapsed.saturating_mul(u64::from(rate)) / 1000;
        if add > 0 {
            *tokens = (*tokens + add).min(u64::from(rate));
            *last = now_ms;
        }
        if *tokens > 0 {
            *tokens -= 1;
            true
        } else {
            false
        }
    }
}

/// The largest TCP MSS that, with the worst-case SVR overhead (padding 16 + trailer 8 + HMAC
/// 24) and a 20-byte TCP header, fits `wan_mtu` with an outer IPv4 (`v4`) or IPv6 header.
pub const fn max_mss(wan_mtu: u16, outer_v4: bool) -> u16 {
    let ip = if outer_v4 { 20 } else { 40 };
    wan_mtu.saturating_sub(ip + 20 + MAX_DATA_OVERHEAD as u16)
}

/// [`rekey_reserve`] for both inner families (`[IPv6, IPv4]`) with `services` in place of
/// `cfg.services`.
fn mss_reserve(cfg: &SvrConfig, services: &[ServiceRoute]) -> [u16; 2] {
    let with = SvrConfig {
        services: services.to_vec(),
        ..cfg.clone()
    };
    [rekey_reserve(&with, false), rekey_reserve(&with, true)]
}

/// The sealed length (HL + PL) of the largest metadata a payload rekey puts on a data
/// packet of a session with an IPv4 (`inner_v4`) or IPv6 context, with the names this
/// configuration holds: the ingress's forward metadata (TLV 46 with the new key) and the
/// egress's reverse metadata that acknowledges it. Names are the longest of our and our
/// peers' router names, of our and their waypoints (peer path IDs), of the tenants and service
/// names; both routers are expected to configure the same services. Computed once at start.
pub fn rekey_reserve(cfg: &SvrConfig, inner_v4: bool) -> u16 {
    use crate::svr::value::{Context, PayloadCipher};
    use crate::svr::{ForwardMetadata, PayloadKeyTlv, SessionContext};
    use crate::wire::IpProtocol;
    let longest =
        |it: &mut dyn Iterator<Item = usize>| "x".repeat(it.max().unwrap_or(1).clamp(1, 255));
    let router = longest(
        &mut std::iter::once(cfg.router_name.len()).chain(cfg.peers.iter().map(|p| p.name.len())),
    );
    let path = longest(
        &mut cfg
            .local_waypoints
            .iter()
            .chain(cfg.peers.iter().flat_map(|p| p.waypoints.iter()))
            .map(|a| a.to_string().len()),
    );
    let tenant = longest(&mut cfg.services.iter().map(|s| s.tenant.len()).chain([7]));
    let service = longest(&mut cfg.services.iter().map(|s| s.name.len()).chain([7]));
    let context = if inner_v4 {
        SessionContext::V4(Context {
            src: std::net::Ipv4Addr::UNSPECIFIED,
            dst: std::net::Ipv4Addr::UNSPECIFIED,
            src_port: 0,
            dst_port: 0,
            protocol: IpProtocol::Tcp,
        })
    } else {
        SessionContext::V6(Context {
            src: std::net::Ipv6Addr::UNSPECIFIED,
            dst: std::net::Ipv6Addr::UNSPECIFIED,
            src_port: 0,
            dst_port: 0,
            protocol: IpProtocol::Tcp,
        })
    };
    let key = [0u8; 32];
    let pk = PayloadKeyTlv {
        index: 0,
        cipher: PayloadCipher::Aes256Cbc,
        key: &key,
    };
    let forward = ForwardMetadata {
        security_id: 0,
        context,
        tenant: &tenant,
        service: &service,
        session_uuid: [0; 16],
        source_router: &router,
        source_router_security_name: None,
        peer_path_id: &path,
        session_encrypted: true,
        tcp_syn: true,
        application_name: None,
        payload_key: Some(pk),
    }
    .to_repr()
    .sealed_len();
    let reverse = ingress::reverse_metadata(0, context, &tenant, &router, &path, 0).sealed_len();
    u16::try_from(forward.max(reverse)).unwrap_or(u16::MAX)
}

/// Worst-case bytes a metadata-free data packet grows by (TCP/UDP): padding 16 + trailer 8 +
/// HMAC 24. ICMP adds the 8-byte UDP header.
pub const MAX_DATA_OVERHEAD: usize = 16 + svr_crypto::SEAL_OVERHEAD;

/// UDP port of SVR BFD (docs/background.md §4.2), source and destination; kept out of SVR
/// egress even when it falls in the wayport range.
pub const BFD_UDP_PORT: u16 = 1280;

/// True when `frame` (already validated by `forward::classify`, which called it local) is a
/// UDP or TCP packet to one of our waypoints on a wayport: the SVR egress path takes it.
/// Everything else addressed to the router (ping, BFD on UDP 1280, ...) stays with the slow
/// path.
pub fn is_wan_candidate(sh: &SvrShared, frame: &[u8]) -> bool {
    use crate::wire::be;
    let (dst, proto, l4) = match frame.get(12..14) {
        Some([0x08, 0x00]) if frame.len() >= 34 => {
            let ihl = usize::from(frame[14] & 0x0f) * 4;
            (be::ipv4(&frame[30..34]).into(), frame[23], 14 + ihl)
        }
        Some([0x86, 0xdd]) if frame.len() >= 54 => (be::ipv6(&frame[38..54]).into(), frame[20], 54),
        _ => return false,
    };
    if proto != packet::PROTO_UDP && proto != packet::PROTO_TCP {
        return false;
    }
    let Some(port) = frame.get(l4 + 2..l4 + 4) else {
        return false;
    };
    let port = be::u16(port);
    if proto == packet::PROTO_UDP && port == BFD_UDP_PORT {
        return false;
    }
    sh.is_local_waypoint(dst) && sh.is_wayport(port)
}
