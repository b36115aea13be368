//! The poll-mode worker: one per lcore in the core map, run to completion over bursts of 32.
//!
//! Each pass of the loop: drain what the slow path wants sent, then for every port read one
//! burst from this worker's RX queue and run it through the stages (classify, lookup,
//! transform), each a loop over the whole burst, then flush the per-port TX buffers. Nothing
//! here allocates, locks or formats per packet; drops go through [`Stages::drop_pkt`], which
//! counts them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use dpdk_ffi::{tsc, Mbuf, MbufBurst, Port, Ring, TxBuffer, BURST};
use fastpath::forward::{
    self, Class, DropCounters, DropReason, LocalInfo, NeighborSnapshot, PuntReason,
};
use fastpath::route::RouteTable;
use fastpath::svr_path::{
    self, egress, ingress, Deferred, SessionMoveEvent, SvrShared, SvrWorker, Verdict,
};
use fastpath::time::Instant;
use fastpath::wire::ethernet::EthernetAddress;
use svr_config::IdleBackoff;

use crate::counters::{BurstCounts, Stage, StageClocks, WorkerCounters};
use crate::svr::MbufBuf;

/// One port as a worker sees it: its handle, MAC, and this worker's TX buffer for it.
pub struct PortSlot {
    pub port: Port,
    pub mac: EthernetAddress,
    pub tx: TxBuffer,
}

/// Everything a worker needs; built at start-up, moved onto the worker's lcore.
pub struct Worker {
    /// Index of this worker, which is also its RX and TX queue number on every port.
    pub queue: u16,
    pub ports: Vec<PortSlot>,
    pub local: Arc<LocalInfo>,
    /// The route table, replaced by a reload; loaded once per burst.
    pub routes: Arc<ArcSwap<RouteTable>>,
    pub neighbors: Arc<ArcSwap<NeighborSnapshot>>,
    /// Worker → slow path (multi-producer, single consumer): everything punted except
    /// peer-path control.
    pub punt: Arc<Ring>,
    /// Worker → slow path, served first: BFD and key exchange of the peer paths (UDP 1280 to
    /// one of our waypoints), so that a flood of other punts cannot delay them. Both punt
    /// rings are small next to the mempool (see `startup::punt_ring_sizes`), so a punt backlog
    /// never holds the mbufs the data path needs.
    pub punt_control: Arc<Ring>,
    /// Slow path → this worker (single producer, single consumer).
    pub inject: Arc<Ring>,
    pub counters: Arc<WorkerCounters>,
    pub stop: Arc<AtomicBool>,
    pub backoff: IdleBackoff,
    /// The SVR data plane (None: no SVR peers, plain routing only) and this worker's part.
    pub svr: Option<(Arc<SvrShared>, SvrWorker)>,
    /// Monotonic nanoseconds, written by the slow-path thread (the only clock reader).
    pub clock: Arc<AtomicU64>,
    /// Worker → slow path: `session-path-change` events, once per move (never blocks; a full
    /// queue drops the event, the move is still counted in `svr_session_moved`).
    pub moves: SyncSender<SessionMoveEvent>,
}

/// Packets prefetched ahead of the one being classified (l3fwd's PREFETCH_OFFSET).
const PREFETCH_OFFSET: usize = 3;

/// What the stages decided for one packet of the burst.
#[derive(Clone, Copy)]
enum Action {
    /// Dropped and counted already; the slot is empty.
    Gone,
    /// Hand to the slow path with this reason.
    Punt(PuntReason),
    /// Too big for the SVR WAN: the slow path sends Fragmentation Needed / Packet Too Big
    /// with this MTU (carried in the upper 16 bits of the mbuf tag).
    PuntMtu(u16),
    /// Transit packet: destination and IP length (frame trimmed to it later).
    Route {
        dst: std::net::IpAddr,
        l3_len: usize,
    },
    /// `packet-duplication`: route it, and a copy rewritten by `copy` (the duplicate stage
    /// turns this into two `Route`s).
    RouteTwice {
        dst: std::net::IpAddr,
        l3_len: usize,
        copy: svr_path::DuplicateRewrite,
    },
    /// An SVR data packet whose payload crypto waits for the crypto stage.
    SvrPending,
    /// Ready for TX on this port slot, to this next-hop MAC (lookup done).
    Send {
        slot: u8,
        l3_len: usize,
        dst_mac: EthernetAddress,
    },
}

/// Idle backoff: after a run of empty polls, sleep a little longer each time, so that several
/// appliances (and the test tools) share a two-core machine. `busy` never sleeps.
struct Backoff {
    adaptive: bool,
    empty_polls: u32,
    sleep: Duration,
}

impl Backoff {
    const SPIN_POLLS: u32 = 256;
    const MIN_SLEEP: Duration = Duration::from_micros(10);
    const MAX_SLEEP: Duration = Duration::from_micros(500);

    fn new(mode: IdleBackoff) -> Self {
        Self {
            adaptive: matches!(mode, IdleBackoff::Adaptive),
            empty_polls: 0,
            sleep: Self::MIN_SLEEP,
        }
    }

    fn after_poll(&mut self, work: usize) {
        if work > 0 || !self.adaptive {
            self.empty_polls = 0;
            self.sleep = Self::MIN_SLEEP;
            return;
        }
        self.empty_polls += 1;
        if self.empty_polls >= Self::SPIN_POLLS {
            std::thread::sleep(self.sleep);
            self.sleep = (self.sleep * 2).min(Self::MAX_SLEEP);
        }
    }
}

impl Worker {
    /// The worker's main loop; returns when `stop` is set, after flushing its TX buffers.
    pub fn run(mut self) -> i32 {
        let mut backoff = Backoff::new(self.backoff);
        let mut burst = MbufBurst::new();
        let mut drops = DropCounters::default();
        let mut slot_of = [u8::MAX; 256];
        for (i, s) in self.ports.iter().enumerate() {
            slot_of[usize::from(s.port.id()) & 0xff] = i as u8;
        }
        let mut clocks = StageClocks::default();
        while !self.stop.load(Relaxed) {
            let mut counts = BurstCounts::default();
            let mut work = self.drain_inject(&mut burst, &slot_of, &mut counts, &mut drops);
            for in_slot in 0..self.ports.len() {
                let t = tsc();
                let n = self.rx(in_slot, &mut burst);
                if n == 0 {
                    continue;
                }
                clocks.add(Stage::Rx, tsc() - t, n);
                work += n;
                counts.rx += n as u64;
                self.process(in_slot, &mut burst, &mut counts, &mut drops, &mut clocks);
            }
            let t = tsc();
            self.tx_flush(&mut counts);
            if work > 0 {
                clocks.add(Stage::Tx, tsc() - t, counts.tx as usize);
                self.counters.publish_clocks(&mut clocks);
                self.counters.publish(&counts, &mut drops);
                if let Some((_, sw)) = self.svr.as_mut() {
                    self.counters.publish_svr(&mut sw.counters);
                    for e in sw.move_events.drain(..) {
                        let _ = self.moves.try_send(e);
                    }
                }
            }
            if work == 0 {
                // Idle: install payload keys for the next new sessions ahead of time.
                if let Some((_, sw)) = self.svr.as_mut() {
                    sw.refill_payload_keys();
                }
            }
            backoff.after_poll(work);
        }
        let mut counts = BurstCounts::default();
        self.tx_flush(&mut counts);
        self.counters.publish(&counts, &mut drops);
        if let Some((_, sw)) = self.svr.as_mut() {
            self.counters.publish_svr(&mut sw.counters);
        }
        0
    }

    /// Stage rx: one burst from this worker's queue on one port.
    #[inline(never)] // one symbol per stage in profiles
    fn rx(&self, slot: usize, burst: &mut MbufBurst) -> usize {
        self.ports[slot].port.rx_burst(self.queue, burst)
    }

    /// Stages classify → lookup → transform → enqueue, each over the whole burst.
    #[inline(never)] // one symbol per stage in profiles
    fn process(
        &mut self,
        in_slot: usize,
        burst: &mut MbufBurst,
        counts: &mut BurstCounts,
        drops: &mut DropCounters,
        clocks: &mut StageClocks,
    ) {
        let in_port = self.ports[in_slot].port.id();
        // Room for a copy of each packet (`packet-duplication`, the duplicate stage).
        let mut pkts: [Option<Mbuf>; 2 * BURST] = [const { None }; 2 * BURST];
        let mut n = 0;
        while let Some(m) = burst.pop_front() {
            pkts[n] = Some(m);
            n += 1;
        }
        let mut actions = [Action::Gone; 2 * BURST];
        let mut work: [Option<Deferred>; BURST] = [const { None }; BURST];
        let t0 = tsc();
        self.classify(
            in_port,
            &mut pkts[..n],
            &mut actions[..n],
            &mut work[..n],
            drops,
        );
        let t1 = tsc();
        self.crypto(&mut pkts[..n], &mut actions[..n], &mut work[..n]);
        let t2 = tsc();
        // Copies (if any) go after the burst's packets, so the stages below take both.
        let rx_n = n;
        let n = n + self.duplicate(&mut pkts, &mut actions, n);
        let t2b = tsc();
        self.lookup(&mut pkts[..n], &mut actions[..n], drops);
        let t3 = tsc();
        self.transform(&mut pkts[..n], &mut actions[..n], drops);
        let t4 = tsc();
        self.enqueue(&mut pkts[..n], &actions[..n], counts, drops);
        let t5 = tsc();
        clocks.add(Stage::Classify, t1 - t0, rx_n);
        clocks.add(Stage::Crypto, t2 - t1, rx_n);
        clocks.add(Stage::Duplicate, t2b - t2, rx_n);
        clocks.add(Stage::Lookup, t3 - t2b, n);
        clocks.add(Stage::Transform, t4 - t3, n);
        clocks.add(Stage::Enqueue, t5 - t4, n);
    }

    /// Stage classify: validate headers, split punts from transit packets, and run the SVR
    /// stage on packets to a peer's service (LAN side) or to our waypoints' wayports (WAN
    /// side), leaving data packets' payload crypto in `work`; everything else keeps plain
    /// forwarding.
    #[inline(never)] // one symbol per stage in profiles
    fn classify(
        &mut self,
        in_port: u16,
        pkts: &mut [Option<Mbuf>],
        actions: &mut [Action],
        work: &mut [Option<Deferred>],
        drops: &mut DropCounters,
    ) {
        let now = Instant::from_nanos(self.clock.load(Relaxed));
        // The service table of this burst (a reload swaps it whole).
        let services = self.svr.as_ref().map(|(s, _)| s.services());
        for m in pkts.iter().take(PREFETCH_OFFSET).flatten() {
            m.prefetch();
        }
        for i in 0..pkts.len() {
            if let Some(Some(ahead)) = pkts.get(i + PREFETCH_OFFSET) {
                ahead.prefetch();
            }
            let slot = &mut pkts[i];
            let Some(m) = slot.as_ref() else { continue };
            let class = forward::classify(m.data(), in_port, &self.local);
            if let Some((svr, sw)) = self.svr.as_mut() {
                let wan = match class {
                    Ok(Class::Punt(PuntReason::Local)) => {
                        svr_path::is_wan_candidate(svr, m.data()).then_some(true)
                    }
                    Ok(Class::Route { dst, .. }) => services
                        .as_ref()
                        .is_some_and(|t| t.is_peer_service(dst))
                        .then_some(false),
                    _ => None,
                };
                if let Some(wan) = wan {
                    actions[i] = svr_stage(svr, sw, slot, wan, now, &mut work[i]);
                    continue;
                }
            }
            actions[i] = match class {
                Ok(Class::Punt(reason)) => Action::Punt(reason),
                Ok(Class::Route { dst, l3_len }) => Action::Route { dst, l3_len },
                Err(reason) => {
                    drop_pkt(slot, reason, drops);
                    Action::Gone
                }
            };
        }
    }

    /// Stage crypto: the payload encryption and decryption of every SVR data packet of the
    /// burst at once (multi-buffer kernels), then the rest of each packet's SVR stage.
    #[inline(never)] // one symbol per stage in profiles
    fn crypto(
        &mut self,
        pkts: &mut [Option<Mbuf>],
        actions: &mut [Action],
        work: &mut [Option<Deferred>],
    ) {
        let Some((svr, sw)) = self.svr.as_mut() else {
            return;
        };
        if work.iter().all(Option::is_none) {
            return;
        }
        let now = Instant::from_nanos(self.clock.load(Relaxed));
        let mut verdicts = [Verdict::Pending; BURST];
        {
            let mut bufs: [Option<MbufBuf<'_>>; BURST] = [const { None }; BURST];
            for (b, (slot, w)) in bufs.iter_mut().zip(pkts.iter_mut().zip(work.iter())) {
                if w.is_some() {
                    *b = slot.as_mut().map(MbufBuf);
                }
            }
            let n = work.len();
            svr_path::finish_burst(svr, sw, &mut bufs[..n], work, now, &mut verdicts[..n]);
        }
        for (i, slot) in pkts.iter_mut().enumerate() {
            if matches!(actions[i], Action::SvrPending) {
                actions[i] = svr_action(verdicts[i], slot);
            }
        }
    }

    /// Stage duplicate (`packet-duplication`): for each packet the SVR stage sent twice, a copy
    /// of the finished frame (`Mbuf::try_copy`, from its pool) rewritten for the session's
    /// second waypoint pair (`svr_path::finish_copy`: outer addresses, wayports, checksums),
    /// placed at `pkts[n..]` to be routed and sent like any packet. A copy that cannot be
    /// made is counted (`svr_duplicate_copy_failed`) and the original goes alone. Returns how
    /// many copies were added. Costs nothing when no packet asks for one.
    #[inline(never)] // one symbol per stage in profiles
    fn duplicate(
        &mut self,
        pkts: &mut [Option<Mbuf>; 2 * BURST],
        actions: &mut [Action; 2 * BURST],
        n: usize,
    ) -> usize {
        let Some((_, sw)) = self.svr.as_mut() else {
            return 0;
        };
        let mut added = 0;
        for i in 0..n {
            let Action::RouteTwice { dst, l3_len, copy } = actions[i] else {
                continue;
            };
            actions[i] = Action::Route { dst, l3_len };
            let Some(m) = pkts[i].as_ref() else { continue };
            let Some(mut c) = m.try_copy() else {
                svr_path::copy_failed(sw);
                continue;
            };
            let Some((dst, l3_len)) = svr_path::finish_copy(sw, c.data_mut(), &copy) else {
                continue;
            };
            pkts[n + added] = Some(c);
            actions[n + added] = Action::Route { dst, l3_len };
            added += 1;
        }
        added
    }

    /// Stage lookup: route (longest prefix match), then the next hop's MAC from the neighbour
    /// snapshot the slow path published; a miss goes to the slow path, which resolves and holds.
    #[inline(never)] // one symbol per stage in profiles
    fn lookup(&self, pkts: &mut [Option<Mbuf>], actions: &mut [Action], drops: &mut DropCounters) {
        let neighbors = self.neighbors.load();
        let routes = self.routes.load();
        for (i, slot) in pkts.iter_mut().enumerate() {
            let Action::Route { dst, l3_len } = actions[i] else {
                continue;
            };
            match forward::lookup(dst, &routes) {
                Err(reason) => {
                    drop_pkt(slot, reason, drops);
                    actions[i] = Action::Gone;
                }
                Ok(hop) => {
                    let out = self.ports.iter().position(|p| p.port.id() == hop.port);
                    actions[i] = match (out, neighbors.get(hop.port, hop.addr)) {
                        (None, _) => {
                            drop_pkt(slot, DropReason::NoRoute, drops);
                            Action::Gone
                        }
                        (Some(o), Some(dst_mac)) => Action::Send {
                            slot: o as u8,
                            l3_len,
                            dst_mac,
                        },
                        // Decrement TTL now, the slow path only fills the MACs once resolved.
                        (Some(o), None) => Action::Send {
                            slot: o as u8 | 0x80,
                            l3_len,
                            dst_mac: EthernetAddress([0; 6]),
                        },
                    };
                }
            }
        }
    }

    /// Stage transform: trim Ethernet padding, decrement TTL/hop limit, rewrite MACs.
    #[inline(never)] // one symbol per stage in profiles
    fn transform(
        &self,
        pkts: &mut [Option<Mbuf>],
        actions: &mut [Action],
        drops: &mut DropCounters,
    ) {
        for (i, slot) in pkts.iter_mut().enumerate() {
            let Action::Send {
                slot: out,
                l3_len,
                dst_mac,
            } = actions[i]
            else {
                continue;
            };
            let Some(m) = slot.as_mut() else { continue };
            let frame_len = forward::ETHERNET_HEADER_LEN + l3_len;
            if m.len() > frame_len && m.trim(m.len() - frame_len).is_err() {
                drop_pkt(slot, DropReason::TruncatedFrame, drops);
                actions[i] = Action::Gone;
                continue;
            }
            let src_mac = self.ports[usize::from(out & 0x7f)].mac;
            if let Err(reason) = forward::transform(m.data_mut(), l3_len, src_mac, dst_mac) {
                drop_pkt(slot, reason, drops);
                actions[i] = Action::Gone;
            } else if out & 0x80 != 0 {
                m.set_port(self.ports[usize::from(out & 0x7f)].port.id());
                actions[i] = Action::Punt(PuntReason::NeighborMiss);
            }
        }
    }

    /// Stage enqueue: to the output port's TX buffer, or to the slow path.
    #[inline(never)] // one symbol per stage in profiles
    fn enqueue(
        &mut self,
        pkts: &mut [Option<Mbuf>],
        actions: &[Action],
        counts: &mut BurstCounts,
        drops: &mut DropCounters,
    ) {
        for (i, slot) in pkts.iter_mut().enumerate() {
            let Some(m) = slot.take() else { continue };
            match actions[i] {
                Action::Send { slot: out, .. } => {
                    counts.forwarded += 1;
                    self.tx_push(usize::from(out), m, counts);
                }
                Action::Punt(PuntReason::Local)
                    if self
                        .svr
                        .as_ref()
                        .is_some_and(|(svr, _)| is_peer_control(svr, m.data())) =>
                {
                    self.punt_control(m, counts)
                }
                Action::Punt(reason) => self.punt(m, reason as u32, counts),
                Action::PuntMtu(mtu) => self.punt(
                    m,
                    PuntReason::MtuExceeded as u32 | u32::from(mtu) << 16,
                    counts,
                ),
                Action::Route { .. }
                | Action::RouteTwice { .. }
                | Action::SvrPending
                | Action::Gone => {
                    let mut s = Some(m);
                    drop_pkt(&mut s, DropReason::NoRoute, drops);
                }
            }
        }
    }

    /// The mbuf's port is the ingress port, or the egress port for `NeighborMiss`; the tag
    /// says why the slow path gets it (low byte: `PuntReason`; for `MtuExceeded` the MTU to
    /// report in the upper 16 bits).
    fn punt(&self, mut m: Mbuf, tag: u32, counts: &mut BurstCounts) {
        m.set_tag(tag);
        match self.punt.enqueue(m) {
            Ok(()) => counts.punted += 1,
            Err(m) => {
                drop(m);
                counts.punt_ring_full += 1;
            }
        }
    }

    /// BFD or key exchange of a peer path (tag `Local`) to the slow path's priority ring.
    fn punt_control(&self, mut m: Mbuf, counts: &mut BurstCounts) {
        m.set_tag(PuntReason::Local as u32);
        match self.punt_control.enqueue(m) {
            Ok(()) => counts.punted += 1,
            Err(m) => {
                drop(m);
                counts.punt_bfd_ring_full += 1;
            }
        }
    }

    fn tx_push(&mut self, slot: usize, m: Mbuf, counts: &mut BurstCounts) {
        if let Err(m) = self.ports[slot].tx.push(m) {
            self.tx_flush_one(slot, counts);
            if let Err(m) = self.ports[slot].tx.push(m) {
                drop(m);
                counts.tx_unsent += 1;
            }
        }
    }

    /// Stage tx: send every port's buffer; what the NIC refuses is freed and counted.
    #[inline(never)] // one symbol per stage in profiles
    fn tx_flush(&mut self, counts: &mut BurstCounts) {
        for slot in 0..self.ports.len() {
            self.tx_flush_one(slot, counts);
        }
    }

    fn tx_flush_one(&mut self, slot: usize, counts: &mut BurstCounts) {
        let p = &mut self.ports[slot];
        if p.tx.is_empty() {
            return;
        }
        counts.tx += p.port.tx_burst(self.queue, &mut p.tx) as u64;
        counts.tx_unsent += p.tx.drop_unsent() as u64;
    }

    /// Frames the slow path built (ARP/ND replies, echo replies, released held packets).
    #[inline(never)] // one symbol per stage in profiles
    fn drain_inject(
        &mut self,
        burst: &mut MbufBurst,
        slot_of: &[u8; 256],
        counts: &mut BurstCounts,
        drops: &mut DropCounters,
    ) -> usize {
        let n = self.inject.dequeue_burst(burst);
        while let Some(m) = burst.pop_front() {
            let slot = slot_of[usize::from(m.port()) & 0xff];
            if usize::from(slot) < self.ports.len() {
                counts.injected += 1;
                self.tx_push(usize::from(slot), m, counts);
            } else {
                let mut s = Some(m);
                drop_pkt(&mut s, DropReason::NoRoute, drops);
            }
        }
        n
    }
}

/// The SVR stage on one packet (`wan`: from a peer, else from the LAN). The SVR functions
/// count their drops in the worker's `SvrCounters`; [`drop_svr`] only frees.
fn svr_stage(
    svr: &SvrShared,
    sw: &mut SvrWorker,
    slot: &mut Option<Mbuf>,
    wan: bool,
    now: Instant,
    work: &mut Option<Deferred>,
) -> Action {
    let Some(m) = slot.as_mut() else {
        return Action::Gone;
    };
    let mut b = MbufBuf(m);
    let v = if wan {
        egress::wan_stage(svr, sw, &mut b, now, work)
    } else {
        ingress::lan_stage(svr, sw, &mut b, now, work)
    };
    svr_action(v, slot)
}

/// What an SVR verdict means for the rest of the burst loop.
fn svr_action(v: Verdict, slot: &mut Option<Mbuf>) -> Action {
    match v {
        Verdict::Pending => Action::SvrPending,
        Verdict::Forward { dst, l3_len } => Action::Route { dst, l3_len },
        Verdict::ForwardTwice { dst, l3_len, copy } => Action::RouteTwice { dst, l3_len, copy },
        Verdict::Punt {
            reason: PuntReason::MtuExceeded,
            mtu,
        } => Action::PuntMtu(mtu),
        Verdict::Punt { reason, .. } => Action::Punt(reason),
        Verdict::Drop(_) | Verdict::Consumed => {
            drop_svr(slot);
            Action::Gone
        }
    }
}

/// Frees a packet the SVR stage refused (already counted by reason) or consumed.
fn drop_svr(slot: &mut Option<Mbuf>) {
    drop(slot.take());
}

/// True when `frame` (validated by `forward::classify`, which called it local) is UDP to the
/// BFD port on one of our waypoints, not a fragment: BFD and key exchange of a peer path. A
/// few byte reads and the waypoint lookup; no allocation.
fn is_peer_control(svr: &SvrShared, frame: &[u8]) -> bool {
    const UDP: u8 = 17;
    let (dst, l4): (IpAddr, usize) = match frame.get(12..14) {
        Some([0x08, 0x00]) => {
            let Some(h) = frame.get(14..34) else {
                return false;
            };
            // Protocol UDP, and neither More Fragments nor a fragment offset.
            if h[9] != UDP || h[6] & 0x3f != 0 || h[7] != 0 {
                return false;
            }
            let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
            (dst.into(), 14 + usize::from(h[0] & 0x0f) * 4)
        }
        Some([0x86, 0xdd]) => {
            let Some(h) = frame.get(14..54) else {
                return false;
            };
            if h[6] != UDP {
                return false;
            }
            let mut dst = [0u8; 16];
            dst.copy_from_slice(&h[24..40]);
            (Ipv6Addr::from(dst).into(), 54)
        }
        _ => return false,
    };
    frame
        .get(l4 + 2..l4 + 4)
        .is_some_and(|p| u16::from_be_bytes([p[0], p[1]]) == svr_path::BFD_UDP_PORT)
        && svr.is_local_waypoint(dst)
}

/// The only way a worker drops a packet: free it and count the reason.
fn drop_pkt(slot: &mut Option<Mbuf>, reason: DropReason, drops: &mut DropCounters) {
    if slot.take().is_some() {
        drops.bump(reason);
    }
}
