//! The [`SlowPath`] state machine: inputs, outputs and the packet handlers.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fastpath::forward::{eui64_link_local, NeighborSnapshot, PuntReason};
use fastpath::route::{IpPrefix, Route, RouteTable};
use fastpath::time::Instant;
use fastpath::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use fastpath::wire::ethernet::{
    ipv6_multicast_mac, EtherType, EthernetAddress, EthernetFrame, EthernetRepr,
};
use fastpath::wire::icmpv4::{
    Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr, Icmpv4TimeExceeded,
};
use fastpath::wire::icmpv6::{
    Icmpv6DstUnreachable, Icmpv6Message, Icmpv6Packet, Icmpv6Repr, Icmpv6TimeExceeded, NdiscRepr,
    NeighborFlags,
};
use fastpath::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use fastpath::wire::ipv6::{
    is_unicast_link_local, solicited_node_multicast, Ipv6Packet, Ipv6Repr, LINK_LOCAL_ALL_NODES,
};
use fastpath::wire::{IpProtocol, WireError};

use crate::config::{IcmpErrorLimit, Interface, SlowPathConfig};
use crate::counters::SlowPathCounters;
use crate::neighbor::{
    Held, Key, Learn, NeighborState, NeighborTable, Origin, Resolve, TimerAction,
};
use crate::ratelimit::TokenBucket;

/// Ethernet header length.
const ETH_LEN: usize = 14;
/// Hop limit of every Neighbor Discovery message (RFC 4861 §7.1).
const ND_HOP_LIMIT: u8 = 255;
/// TTL / hop limit of other packets we originate.
const DEFAULT_HOP_LIMIT: u8 = 64;
/// RFC 1812 §4.3.2.3: an ICMPv4 error, IP header included, need not exceed 576 bytes.
const ICMPV4_ERROR_MAX: usize = 576;
/// RFC 4443 §2.4 (c): an ICMPv6 error must not exceed the minimum IPv6 MTU.
const ICMPV6_ERROR_MAX: usize = 1280;
/// Bound on queued transmits, so a caller that stops polling cannot grow memory forever.
const MAX_QUEUED_TRANSMITS: usize = 8192;
/// Bound on queued events, for the same reason.
const MAX_QUEUED_EVENTS: usize = 4096;

/// A frame to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Egress port.
    pub port: u16,
    /// The complete Ethernet frame, without FCS and without padding to 60 bytes (the NIC pads).
    pub frame: Vec<u8>,
}

/// Something the caller may want to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The set of resolved neighbours changed: publish [`SlowPath::neighbors`] to the workers.
    NeighborsChanged,
    /// A dynamic neighbour resolved, or moved to a new MAC.
    NeighborAdded {
        /// Port it is reached on.
        port: u16,
        /// Its address.
        addr: IpAddr,
        /// Its MAC.
        mac: EthernetAddress,
    },
    /// A neighbour did not answer its solicitations.
    NeighborFailed {
        /// Port it was solicited on.
        port: u16,
        /// Its address.
        addr: IpAddr,
    },
}

impl core::fmt::Display for Event {
    /// One structured log line: `event=<name> key=value ...`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Event::NeighborsChanged => write!(f, "event=neighbors-changed"),
            Event::NeighborAdded { port, addr, mac } => {
                write!(f, "event=neighbor-added port={port} addr={addr} mac={mac}")
            }
            Event::NeighborFailed { port, addr } => {
                write!(f, "event=neighbor-failed port={port} addr={addr}")
            }
        }
    }
}

/// Which ICMP error to originate about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IcmpError {
    /// TTL / hop limit reached zero in transit.
    TimeExceeded,
    /// The next hop did not resolve.
    AddressUnreachable,
    /// Too big for the next hop (or the SVR WAN): ICMPv4 Fragmentation Needed with this
    /// next-hop MTU (RFC 1191), ICMPv6 Packet Too Big (RFC 4443 §3.2).
    TooBig { mtu: u16 },
}

/// One configured port with its derived addresses.
#[derive(Clone, Debug)]
struct Port {
    mac: EthernetAddress,
    up: bool,
    ipv4: Vec<(Ipv4Addr, u8)>,
    /// Configured addresses, without the link-local one.
    ipv6: Vec<(Ipv6Addr, u8)>,
    link_local: Ipv6Addr,
}

impl Port {
    fn owns_v4(&self, a: Ipv4Addr) -> bool {
        self.ipv4.iter().any(|(x, _)| *x == a)
    }

    fn owns_v6(&self, a: Ipv6Addr) -> bool {
        a == self.link_local || self.ipv6.iter().any(|(x, _)| *x == a)
    }

    /// Our IPv4 address to speak to `peer` from: one in the same prefix, else the first.
    fn source_v4(&self, peer: Ipv4Addr) -> Option<Ipv4Addr> {
        self.ipv4
            .iter()
            .find(|(a, len)| same_prefix_v4(*a, peer, *len))
            .or(self.ipv4.first())
            .map(|(a, _)| *a)
    }

    /// Our IPv6 address to speak to `peer` from: the link-local one for link-local peers,
    /// else one in the same prefix, else the first configured, else the link-local one.
    fn source_v6(&self, peer: Ipv6Addr) -> Ipv6Addr {
        if is_unicast_link_local(&peer) {
            return self.link_local;
        }
        self.ipv6
            .iter()
            .find(|(a, len)| same_prefix_v6(*a, peer, *len))
            .or(self.ipv6.first())
            .map_or(self.link_local, |(a, _)| *a)
    }
}

/// The router's control plane for ARP, Neighbor Discovery and ICMP, as a sans-IO state
/// machine.
///
/// # Calling protocol
///
/// One `SlowPath` serves the whole router and is driven by one thread. That thread:
///
/// 1. **Inputs** (`handle_*`): for every frame punted by a worker, call
///    [`handle_frame`](Self::handle_frame) with the current time, the ingress port and the
///    punt reason. When a port's link changes, call
///    [`interface_state_changed`](Self::interface_state_changed).
/// 2. **Outputs** (`poll_*`), after any input: drain [`poll_transmit`](Self::poll_transmit)
///    until `None` and give each frame to a worker for its port; drain
///    [`poll_event`](Self::poll_event) until `None`, and on [`Event::NeighborsChanged`]
///    publish [`neighbors`](Self::neighbors) to the workers.
/// 3. **Timers**: arm one OS timer for [`poll_timeout`](Self::poll_timeout) (re-read it after
///    every input, since inputs move it), and when it fires call
///    [`handle_timeout`](Self::handle_timeout) with the current time, then go to step 2. A
///    spurious or early `handle_timeout` is a harmless no-op.
///
/// Time only ever enters as the `now` argument, so tests drive days of protocol time in
/// milliseconds. Getters ([`neighbors`](Self::neighbors), [`counters`](Self::counters),
/// [`neighbor_state`](Self::neighbor_state)) have no side effects.
///
/// # Behaviour
///
/// * **ARP** (RFC 826): requests for an address of the *ingress* port are answered on that
///   port (Linux `arp_ignore=1`: a router does not answer on one segment for another
///   segment's address). The sender is learned (Stale, as RFC 4861 §7.2.3 does for NS) when
///   the request targets us, and refreshed when it is already in the table, as Linux does;
///   other requests are counted in `arp_not_for_us`. A reply updates an entry we hold
///   (pending or resolved) and makes it Reachable; a reply for an address without an entry
///   is ignored (Linux `arp_accept=0`). A gratuitous ARP (sender = target) updates an
///   existing entry only.
/// * **Neighbor Discovery** (RFC 4861): hop limit 255 and the ICMPv6 checksum are checked.
///   A Neighbor Solicitation for an address of the ingress port (link-local included) gets a
///   Neighbor Advertisement with R, S and O set and a target link-layer option, sent to the
///   solicitor, or to all-nodes without S when the solicitor is unspecified (DAD). The source
///   link-layer option of an NS creates or updates a Stale entry; an NA updates an entry we
///   hold (S makes it Reachable, a different MAC needs O).
/// * **Neighbour table**: see the table in `neighbor.rs`. Static neighbours from the
///   configuration win over anything learned and never change.
/// * **`NeighborMiss` punts** are routed again on their IP destination; the frame is held
///   (at most `max_held_per_neighbor`, oldest dropped) while the next hop resolves and sent
///   with the egress port's MAC as source once it does. The frame is otherwise sent as
///   punted: the worker has already decremented its TTL. If resolution fails, held frames
///   are dropped and each source gets an ICMP host unreachable (ICMPv6 address unreachable).
/// * **ICMP**: echo requests to any of our addresses are answered from the address pinged;
///   other traffic to us is counted in `local_unhandled`. ICMP errors (time exceeded,
///   unreachable) come from the ingress port's address of the same family, quote as much of
///   the packet as fits in 576 (IPv4) or 1280 (IPv6) bytes, are routed back to the source,
///   and are rate-limited by a token bucket. None is sent about an ICMP error, a non-first
///   fragment, a multicast or broadcast destination, or a packet from an address that does
///   not name one host (RFC 1812 §4.3.2.7, RFC 4443 §2.4).
#[derive(Debug)]
pub struct SlowPath {
    ports: BTreeMap<u16, Port>,
    routes: RouteTable,
    statics: BTreeMap<Key, EthernetAddress>,
    table: NeighborTable,
    icmp_bucket: TokenBucket,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// A `NeighborsChanged` is queued and not yet polled.
    changed_queued: bool,
    counters: SlowPathCounters,
}

impl SlowPath {
    /// Builds the slow path. Adds a connected route (next hop = the destination itself) for
    /// every interface prefix, and the EUI-64 link-local address of every interface.
    pub fn new(config: SlowPathConfig, now: Instant) -> Self {
        let mut ports = BTreeMap::new();
        // Connected routes first: for the same prefix, RouteTable lets the later route win,
        // so a configured route overrides a connected one.
        let mut routes = Vec::new();
        for Interface {
            port,
            mac,
            ipv4,
            ipv6,
            ..
        } in config.interfaces
        {
            let addrs = ipv4.iter().map(|&(a, len)| (IpAddr::V4(a), len.min(32)));
            let addrs = addrs.chain(ipv6.iter().map(|&(a, len)| (IpAddr::V6(a), len.min(128))));
            for (addr, len) in addrs {
                // The length is clamped to the family's maximum, so this cannot fail.
                if let Ok(prefix) = IpPrefix::new_masked(addr, len) {
                    routes.push(Route {
                        prefix,
                        next_hop: None,
                        port,
                    });
                }
            }
            let link_local = eui64_link_local(mac);
            let ipv6 = ipv6.into_iter().filter(|(a, _)| *a != link_local).collect();
            ports.insert(
                port,
                Port {
                    mac,
                    up: true,
                    ipv4,
                    ipv6,
                    link_local,
                },
            );
        }
        let statics = config
            .static_neighbors
            .iter()
            .map(|n| ((n.port, n.addr), n.mac))
            .collect();
        SlowPath {
            ports,
            routes: RouteTable::new(routes.into_iter().chain(config.routes)),
            statics,
            table: NeighborTable::new(config.timers),
            icmp_bucket: TokenBucket::new(IcmpErrorLimit::default(), now),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            changed_queued: false,
            counters: SlowPathCounters::default(),
        }
    }

    /// Replaces the configured routes (a reload): the connected routes of the interfaces'
    /// addresses stay, `routes` come after them as in [`SlowPath::new`]. Held frames and
    /// the neighbour table are kept.
    pub fn set_routes(&mut self, routes: Vec<Route>) {
        let connected = self.ports.iter().flat_map(|(&port, p)| {
            let v4 = p.ipv4.iter().map(|&(a, len)| (IpAddr::V4(a), len.min(32)));
            let v6 = p.ipv6.iter().map(|&(a, len)| (IpAddr::V6(a), len.min(128)));
            v4.chain(v6).filter_map(move |(addr, len)| {
                Some(Route {
                    prefix: IpPrefix::new_masked(addr, len).ok()?,
                    next_hop: None,
                    port,
                })
            })
        });
        self.routes = RouteTable::new(connected.collect::<Vec<_>>().into_iter().chain(routes));
    }

    /// Replaces the static neighbours (a reload). A resolved dynamic entry for an address
    /// that is no longer static shows again in [`Self::neighbors`]; a change queues
    /// [`Event::NeighborsChanged`].
    pub fn set_static_neighbors(&mut self, statics: &[crate::StaticNeighbor]) {
        let new: BTreeMap<Key, EthernetAddress> =
            statics.iter().map(|n| ((n.port, n.addr), n.mac)).collect();
        if new != self.statics {
            self.statics = new;
            self.neighbors_changed();
        }
    }

    /// The routes this slow path routes by (connected first, then configured).
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// Replaces the ICMP error rate limit (default 100/s, burst 50); the bucket starts full.
    pub fn set_icmp_error_limit(&mut self, limit: IcmpErrorLimit, now: Instant) {
        self.icmp_bucket = TokenBucket::new(limit, now);
    }

    // ---------------------------------------------------------------- getters

    /// The resolved neighbours (static, Reachable and Stale), to publish to the workers.
    pub fn neighbors(&self) -> NeighborSnapshot {
        let dynamic = self
            .table
            .resolved()
            .filter(|(key, _)| !self.statics.contains_key(key));
        self.statics
            .iter()
            .map(|(k, m)| (*k, *m))
            .chain(dynamic)
            .collect()
    }

    /// State of one neighbour, static entries included.
    pub fn neighbor_state(&self, port: u16, addr: IpAddr) -> Option<NeighborState> {
        match self.statics.get(&(port, addr)) {
            Some(mac) => Some(NeighborState::Static(*mac)),
            None => self.table.state((port, addr)),
        }
    }

    /// Number of dynamic neighbour entries, in any state.
    pub fn dynamic_neighbor_count(&self) -> usize {
        self.table.len()
    }

    /// Number of frames held while their next hop resolves.
    pub fn held_frame_count(&self) -> usize {
        self.table.held_count()
    }

    /// The counters.
    pub fn counters(&self) -> &SlowPathCounters {
        &self.counters
    }

    // ---------------------------------------------------------------- outputs

    /// The next frame to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if event == Some(Event::NeighborsChanged) {
            self.changed_queued = false;
        }
        event
    }

    /// The earliest time at which [`handle_timeout`](Self::handle_timeout) has work to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.table.next_deadline()
    }

    // ---------------------------------------------------------------- inputs

    /// Runs every timer due at or before `now`. Calling it early or twice is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut actions = Vec::new();
        self.table.handle_timeout(now, &mut actions);
        for action in actions {
            match action {
                TimerAction::Solicit { key, unicast } => self.solicit(key, unicast),
                TimerAction::Failed {
                    key,
                    held,
                    was_resolved,
                } => {
                    self.counters.neighbor_resolution_failed += 1;
                    self.push_event(Event::NeighborFailed {
                        port: key.0,
                        addr: key.1,
                    });
                    if was_resolved {
                        self.neighbors_changed();
                    }
                    for h in held {
                        self.counters.held_dropped_failed += 1;
                        if let Origin::Forwarded { ingress } = h.origin {
                            self.icmp_error(now, ingress, &h.frame, IcmpError::AddressUnreachable);
                        }
                    }
                }
                TimerAction::Removed => self.neighbors_changed(),
            }
        }
    }

    /// A port went up or down. Going down flushes its dynamic neighbours and drops the frames
    /// held for them; static neighbours stay.
    pub fn interface_state_changed(&mut self, now: Instant, port: u16, up: bool) {
        let _ = now;
        let Some(p) = self.ports.get_mut(&port) else {
            self.counters.unknown_port += 1;
            return;
        };
        p.up = up;
        if up {
            return;
        }
        let had_resolved = self.table.resolved().any(|((p, _), _)| p == port);
        let (flushed, held) = self.table.flush_port(port);
        self.counters.neighbor_flushed += flushed as u64;
        self.counters.held_dropped_port_down += held.len() as u64;
        if had_resolved {
            self.neighbors_changed();
        }
    }

    /// Handles one frame punted by a worker on ingress `port` for `reason`.
    pub fn handle_frame(&mut self, now: Instant, port: u16, reason: PuntReason, frame: &[u8]) {
        self.counters.frames_received += 1;
        let Some(p) = self.ports.get(&port) else {
            self.counters.unknown_port += 1;
            return;
        };
        if !p.up {
            self.counters.port_down += 1;
            return;
        }
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            self.counters.malformed_frame += 1;
            return;
        };
        match reason {
            PuntReason::Arp | PuntReason::NeighborDiscovery | PuntReason::Local => {
                self.receive(now, port, &eth)
            }
            PuntReason::TtlExceeded => match eth.ethertype() {
                EtherType::Ipv4 | EtherType::Ipv6 => {
                    self.icmp_error(now, port, frame, IcmpError::TimeExceeded)
                }
                _ => self.counters.malformed_frame += 1,
            },
            PuntReason::NeighborMiss => self.neighbor_miss(now, port, frame),
            // Without the MTU (svrd passes it to `handle_too_big`): the IPv6 minimum.
            PuntReason::MtuExceeded => self.handle_too_big(now, port, frame, 1280),
        }
    }

    /// Sends an IP packet the caller built (e.g. BFD on a peer path): routes it on its
    /// destination, resolves the next hop (holding the packet meanwhile, like a punted
    /// `NeighborMiss`) and queues the frame for [`poll_transmit`](Self::poll_transmit). The
    /// packet must be a complete IPv4 or IPv6 packet (checksums done) from one of our
    /// addresses; anything else is counted in `ip_originated_invalid` and dropped.
    /// Link-local IPv6 destinations are not supported (no port to send them from).
    pub fn send_ip(&mut self, now: Instant, packet: &[u8]) {
        let (ethertype, src, dst) = match packet.first().map(|b| b >> 4) {
            Some(4) => match Ipv4Packet::new_checked(packet) {
                Ok(ip) => (
                    EtherType::Ipv4,
                    IpAddr::V4(ip.src_addr()),
                    IpAddr::V4(ip.dst_addr()),
                ),
                Err(_) => {
                    self.counters.ip_originated_invalid += 1;
                    return;
                }
            },
            Some(6) => match Ipv6Packet::new_checked(packet) {
                Ok(ip) => (
                    EtherType::Ipv6,
                    IpAddr::V6(ip.src_addr()),
                    IpAddr::V6(ip.dst_addr()),
                ),
                Err(_) => {
                    self.counters.ip_originated_invalid += 1;
                    return;
                }
            },
            _ => {
                self.counters.ip_originated_invalid += 1;
                return;
            }
        };
        if !self.is_local(src) {
            self.counters.ip_originated_invalid += 1;
            return;
        }
        self.counters.ip_originated += 1;
        let zero = EthernetAddress([0; 6]);
        let mut frame = eth_frame(zero, zero, ethertype, packet.len());
        frame[ETH_LEN..].copy_from_slice(packet);
        self.route_and_send(now, dst, u16::MAX, frame, Origin::Local);
    }

    /// A worker punted `frame` (arrived on `port`) as `PuntReason::MtuExceeded`: it is larger
    /// than `mtu` allows on its way out (for SVR: the WAN MTU less the SVR overhead). Sends
    /// ICMPv4 Fragmentation Needed (type 3 code 4) with next-hop MTU `mtu`, or ICMPv6 Packet
    /// Too Big (type 2) with MTU `mtu` (at least 1280), to the sender, rate-limited like every
    /// ICMP error. The frame itself is dropped (we do not fragment).
    pub fn handle_too_big(&mut self, now: Instant, port: u16, frame: &[u8], mtu: u16) {
        self.counters.mtu_exceeded += 1;
        let is_v6 = frame.get(12..14) == Some(&[0x86, 0xdd][..]);
        let mtu = if is_v6 { mtu.max(1280) } else { mtu.max(68) };
        self.icmp_error(now, port, frame, IcmpError::TooBig { mtu });
    }

    // ---------------------------------------------------------------- plumbing

    fn push_transmit(&mut self, port: u16, frame: Vec<u8>) {
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            self.counters.transmit_queue_full += 1;
            return;
        }
        self.transmits.push_back(Transmit { port, frame });
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.counters.event_queue_full += 1;
            return;
        }
        self.events.push_back(event);
    }

    fn neighbors_changed(&mut self) {
        if !self.changed_queued {
            self.changed_queued = true;
            self.push_event(Event::NeighborsChanged);
        }
    }

    fn port_mac(&self, port: u16) -> EthernetAddress {
        self.ports
            .get(&port)
            .map_or(EthernetAddress([0; 6]), |p| p.mac)
    }

    fn is_local(&self, addr: IpAddr) -> bool {
        self.ports.values().any(|p| match addr {
            IpAddr::V4(a) => p.owns_v4(a),
            IpAddr::V6(a) => p.owns_v6(a),
        })
    }

    /// Is `a` the broadcast address of one of our connected IPv4 prefixes (or the limited
    /// broadcast)?
    fn is_broadcast_v4(&self, a: Ipv4Addr) -> bool {
        a.is_broadcast()
            || self.ports.values().any(|p| {
                p.ipv4.iter().any(|&(net, len)| {
                    len < 31 && same_prefix_v4(net, a, len) && host_bits_set_v4(a, len)
                })
            })
    }

    /// Records `addr` at `mac` on `port`, as heard from the wire.
    fn learn(&mut self, now: Instant, port: u16, addr: IpAddr, mac: EthernetAddress, how: Learn) {
        if self.statics.contains_key(&(port, addr)) {
            self.counters.neighbor_static_ignored += 1;
            return;
        }
        let out = self.table.learn(now, (port, addr), mac, how);
        if out.refused {
            self.counters.neighbor_table_full += 1;
        }
        if let Some(mac) = out.added {
            self.push_event(Event::NeighborAdded { port, addr, mac });
            self.neighbors_changed();
            let src = self.port_mac(port);
            for h in out.released {
                self.counters.held_released += 1;
                self.push_transmit(port, with_macs(h.frame, src, mac));
            }
        }
    }

    /// Sends a frame whose Ethernet header is a placeholder to next hop `next_hop` on `port`,
    /// resolving it first if needed.
    fn send_via(
        &mut self,
        now: Instant,
        port: u16,
        next_hop: IpAddr,
        frame: Vec<u8>,
        origin: Origin,
    ) {
        let Some(p) = self.ports.get(&port) else {
            self.counters.route_port_unusable += 1;
            return;
        };
        if !p.up {
            self.counters.route_port_unusable += 1;
            return;
        }
        let src = p.mac;
        if self.is_local(next_hop) {
            self.counters.next_hop_is_local += 1;
            return;
        }
        if !names_one_host(next_hop) || matches!(next_hop, IpAddr::V4(a) if self.is_broadcast_v4(a))
        {
            self.counters.unresolvable_next_hop += 1;
            return;
        }
        if let Some(&mac) = self.statics.get(&(port, next_hop)) {
            self.push_transmit(port, with_macs(frame, src, mac));
            return;
        }
        match self
            .table
            .resolve(now, (port, next_hop), Held { frame, origin })
        {
            Resolve::Send { mac, held, probe } => {
                self.push_transmit(port, with_macs(held.frame, src, mac));
                if let Some(mac) = probe {
                    self.solicit((port, next_hop), Some(mac));
                }
            }
            Resolve::Held { solicit, dropped } => {
                if dropped.is_some() {
                    self.counters.held_dropped_overflow += 1;
                }
                if solicit {
                    self.solicit((port, next_hop), None);
                }
            }
            Resolve::Refused => self.counters.neighbor_table_full += 1,
        }
    }

    /// Routes a locally built frame (placeholder Ethernet header, IP packet after it) to
    /// `dst`. Link-local IPv6 destinations go out of `link_port` directly.
    fn route_and_send(
        &mut self,
        now: Instant,
        dst: IpAddr,
        link_port: u16,
        frame: Vec<u8>,
        origin: Origin,
    ) {
        let (port, next_hop) = match dst {
            IpAddr::V6(a) if is_unicast_link_local(&a) => (link_port, dst),
            _ => match self.routes.lookup(dst) {
                Some(route) => {
                    let hop = route.next_hop_for(dst);
                    (hop.port, hop.addr)
                }
                None => {
                    self.counters.no_route += 1;
                    return;
                }
            },
        };
        self.send_via(now, port, next_hop, frame, origin);
    }

    /// Sends an ARP request or Neighbor Solicitation for `key`: broadcast / solicited-node
    /// multicast, or unicast to `unicast` when re-probing a stale entry.
    fn solicit(&mut self, key: Key, unicast: Option<EthernetAddress>) {
        let (port, addr) = key;
        let Some(p) = self.ports.get(&port) else {
            return;
        };
        let mac = p.mac;
        let frame = match addr {
            IpAddr::V4(target) => {
                let Some(source) = p.source_v4(target) else {
                    self.counters.solicit_no_source += 1;
                    return;
                };
                let arp = ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Request,
                    source_hardware_addr: mac,
                    source_protocol_addr: source,
                    target_hardware_addr: EthernetAddress([0; 6]),
                    target_protocol_addr: target,
                };
                build_arp(mac, unicast.unwrap_or(EthernetAddress::BROADCAST), &arp)
            }
            IpAddr::V6(target) => {
                let source = p.source_v6(target);
                let (dst_ip, dst_mac) = match unicast {
                    Some(m) => (target, m),
                    None => {
                        let group = solicited_node_multicast(&target);
                        (group, ipv6_multicast_mac(&group))
                    }
                };
                let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                    target_addr: target,
                    lladdr: Some(mac),
                });
                build_icmpv6(mac, dst_mac, source, dst_ip, ND_HOP_LIMIT, &ns)
            }
        };
        self.counters.neighbor_probes_sent += 1;
        self.push_transmit(port, frame);
    }

    // ---------------------------------------------------------------- receive

    /// ARP, ND and traffic for our own addresses, dispatched on the EtherType.
    fn receive(&mut self, now: Instant, port: u16, eth: &EthernetFrame<&[u8]>) {
        match eth.ethertype() {
            EtherType::Arp => self.receive_arp(now, port, eth),
            EtherType::Ipv4 => self.receive_ipv4(now, port, eth),
            EtherType::Ipv6 => self.receive_ipv6(now, port, eth),
            _ => self.counters.unsupported_ethertype += 1,
        }
    }

    fn receive_arp(&mut self, now: Instant, port: u16, eth: &EthernetFrame<&[u8]>) {
        let repr = match ArpPacket::new_checked(eth.payload()).and_then(|p| ArpRepr::parse(&p)) {
            Ok(repr) => repr,
            Err(WireError::Unsupported) => {
                self.counters.arp_unsupported += 1;
                return;
            }
            Err(_) => {
                self.counters.malformed_frame += 1;
                return;
            }
        };
        let ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_protocol_addr: tpa,
            ..
        } = repr;
        let Some(p) = self.ports.get(&port) else {
            return;
        };
        let our_mac = p.mac;
        let target_ours = p.owns_v4(tpa);
        if !sha.is_unicast() || sha == our_mac || spa.is_multicast() || spa.is_broadcast() {
            self.counters.arp_bad_sender += 1;
            return;
        }
        if self.is_local(IpAddr::V4(spa)) {
            self.counters.address_conflict += 1;
            return;
        }
        // 0.0.0.0 is an RFC 5227 probe: answer it, learn nothing.
        let learnable = !spa.is_unspecified();
        let key = (port, IpAddr::V4(spa));
        let known = self.table.contains(key) || self.statics.contains_key(&key);
        let update = Learn {
            confirmed: false,
            create: false,
            override_mac: true,
        };
        match operation {
            ArpOperation::Request if target_ours => {
                if learnable {
                    let how = Learn {
                        create: true,
                        ..update
                    };
                    self.learn(now, port, IpAddr::V4(spa), sha, how);
                }
                let reply = ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Reply,
                    source_hardware_addr: our_mac,
                    source_protocol_addr: tpa,
                    target_hardware_addr: sha,
                    target_protocol_addr: spa,
                };
                self.counters.arp_replies_sent += 1;
                self.push_transmit(port, build_arp(our_mac, sha, &reply));
            }
            ArpOperation::Request | ArpOperation::Reply if spa == tpa => {
                // Gratuitous ARP: updates an entry we have, creates none.
                if known && learnable {
                    self.learn(now, port, IpAddr::V4(spa), sha, update);
                } else {
                    self.counters.arp_not_for_us += 1;
                }
            }
            ArpOperation::Request => {
                if known && learnable {
                    self.learn(now, port, IpAddr::V4(spa), sha, update);
                }
                self.counters.arp_not_for_us += 1;
            }
            ArpOperation::Reply => {
                if known && learnable {
                    let how = Learn {
                        confirmed: true,
                        ..update
                    };
                    self.learn(now, port, IpAddr::V4(spa), sha, how);
                } else {
                    self.counters.arp_unsolicited_reply += 1;
                }
            }
            ArpOperation::Unknown(_) => self.counters.arp_unsupported += 1,
        }
    }

    fn receive_ipv4(&mut self, now: Instant, port: u16, eth: &EthernetFrame<&[u8]>) {
        let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
            self.counters.malformed_frame += 1;
            return;
        };
        let repr = match Ipv4Repr::parse(&ip) {
            Ok(repr) => repr,
            Err(WireError::BadChecksum) => {
                self.counters.ipv4_bad_checksum += 1;
                return;
            }
            Err(WireError::Unsupported) => {
                // A fragment: the slow path does not reassemble.
                self.counters.local_unhandled += 1;
                return;
            }
            Err(_) => {
                self.counters.malformed_frame += 1;
                return;
            }
        };
        if !self.is_local(IpAddr::V4(repr.dst_addr)) {
            self.counters.local_not_ours += 1;
            return;
        }
        if repr.next_header != IpProtocol::Icmp {
            self.counters.local_unhandled += 1;
            return;
        }
        let Ok(icmp) = Icmpv4Packet::new_checked(ip.payload()) else {
            self.counters.malformed_frame += 1;
            return;
        };
        match Icmpv4Repr::parse(&icmp) {
            Ok(Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }) => {
                if !names_one_host(IpAddr::V4(repr.src_addr)) || self.is_broadcast_v4(repr.src_addr)
                {
                    self.counters.bad_source_address += 1;
                    return;
                }
                let reply = Icmpv4Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                };
                let frame = build_icmpv4(repr.dst_addr, repr.src_addr, DEFAULT_HOP_LIMIT, &reply);
                self.counters.echo_replies_sent += 1;
                self.route_and_send(now, IpAddr::V4(repr.src_addr), port, frame, Origin::Local);
            }
            Ok(_) | Err(WireError::Unsupported) => self.counters.local_unhandled += 1,
            Err(WireError::BadChecksum) => self.counters.icmp_bad_checksum += 1,
            Err(_) => self.counters.malformed_frame += 1,
        }
    }

    fn receive_ipv6(&mut self, now: Instant, port: u16, eth: &EthernetFrame<&[u8]>) {
        let Ok(ip) = Ipv6Packet::new_checked(eth.payload()) else {
            self.counters.malformed_frame += 1;
            return;
        };
        let Ok(repr) = Ipv6Repr::parse(&ip) else {
            self.counters.malformed_frame += 1;
            return;
        };
        let Some(p) = self.ports.get(&port) else {
            return;
        };
        let (src, dst) = (repr.src_addr, repr.dst_addr);
        // Unicast to us (link-local only on its own port), or a group we are in on this link.
        let for_us = if is_unicast_link_local(&dst) {
            dst == p.link_local
        } else if dst.is_multicast() {
            dst == LINK_LOCAL_ALL_NODES
                || dst == solicited_node_multicast(&p.link_local)
                || p.ipv6
                    .iter()
                    .any(|(a, _)| dst == solicited_node_multicast(a))
        } else {
            self.is_local(IpAddr::V6(dst))
        };
        if !for_us {
            self.counters.local_not_ours += 1;
            return;
        }
        let Some(upper) = upper_layer_v6(ip.payload(), repr.next_header) else {
            self.counters.malformed_frame += 1;
            return;
        };
        if upper.protocol != IpProtocol::Icmpv6 || upper.fragment {
            self.counters.local_unhandled += 1;
            return;
        }
        let Some(body) = ip.payload().get(upper.offset..) else {
            self.counters.malformed_frame += 1;
            return;
        };
        let Ok(icmp) = Icmpv6Packet::new_checked(body) else {
            self.counters.malformed_frame += 1;
            return;
        };
        let is_nd = icmp.msg_type().is_ndisc();
        if is_nd && repr.hop_limit != ND_HOP_LIMIT {
            self.counters.nd_bad_hop_limit += 1;
            return;
        }
        let parsed = match Icmpv6Repr::parse(&src, &dst, &icmp) {
            Ok(parsed) => parsed,
            Err(WireError::BadChecksum) => {
                self.counters.icmp_bad_checksum += 1;
                return;
            }
            Err(WireError::Unsupported) if is_nd || is_mld(icmp.msg_type()) => {
                self.counters.nd_unhandled += 1;
                return;
            }
            Err(WireError::Unsupported) => {
                self.counters.local_unhandled += 1;
                return;
            }
            Err(_) if is_nd => {
                self.counters.nd_invalid += 1;
                return;
            }
            Err(_) => {
                self.counters.malformed_frame += 1;
                return;
            }
        };
        match parsed {
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                target_addr,
                lladdr,
            }) => self.receive_ns(now, port, eth.src_addr(), src, dst, target_addr, lladdr),
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                flags,
                target_addr,
                lladdr,
            }) => self.receive_na(now, port, flags, target_addr, lladdr),
            Icmpv6Repr::Ndisc(_) => self.counters.nd_unhandled += 1,
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                if dst.is_multicast() {
                    self.counters.local_not_ours += 1;
                    return;
                }
                if !names_one_host(IpAddr::V6(src)) {
                    self.counters.bad_source_address += 1;
                    return;
                }
                let reply = Icmpv6Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                };
                let frame = build_icmpv6(
                    EthernetAddress([0; 6]),
                    EthernetAddress([0; 6]),
                    dst,
                    src,
                    DEFAULT_HOP_LIMIT,
                    &reply,
                );
                self.counters.echo_replies_sent += 1;
                self.route_and_send(now, IpAddr::V6(src), port, frame, Origin::Local);
            }
            _ => self.counters.local_unhandled += 1,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn receive_ns(
        &mut self,
        now: Instant,
        port: u16,
        eth_src: EthernetAddress,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        target: Ipv6Addr,
        lladdr: Option<EthernetAddress>,
    ) {
        let Some(p) = self.ports.get(&port) else {
            return;
        };
        let our_mac = p.mac;
        if !p.owns_v6(target) {
            self.counters.nd_not_for_us += 1;
            return;
        }
        let dad = src.is_unspecified();
        if dad && dst != solicited_node_multicast(&target) {
            // RFC 4861 §7.1.1: an NS from :: must go to the solicited-node group.
            self.counters.nd_invalid += 1;
            return;
        }
        if !dad && (src.is_multicast() || self.is_local(IpAddr::V6(src))) {
            self.counters.address_conflict += 1;
            return;
        }
        if let (false, Some(mac)) = (dad, lladdr) {
            if !mac.is_unicast() {
                self.counters.nd_invalid += 1;
                return;
            }
            let how = Learn {
                confirmed: false,
                create: true,
                override_mac: true,
            };
            self.learn(now, port, IpAddr::V6(src), mac, how);
        }
        let (na_dst, dst_mac, flags) = if dad {
            (
                LINK_LOCAL_ALL_NODES,
                ipv6_multicast_mac(&LINK_LOCAL_ALL_NODES),
                NeighborFlags::ROUTER | NeighborFlags::OVERRIDE,
            )
        } else {
            (
                src,
                lladdr.unwrap_or(eth_src),
                NeighborFlags::ROUTER | NeighborFlags::SOLICITED | NeighborFlags::OVERRIDE,
            )
        };
        let na = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            flags,
            target_addr: target,
            lladdr: Some(our_mac),
        });
        self.counters.nd_advertisements_sent += 1;
        let frame = build_icmpv6(our_mac, dst_mac, target, na_dst, ND_HOP_LIMIT, &na);
        self.push_transmit(port, frame);
    }

    fn receive_na(
        &mut self,
        now: Instant,
        port: u16,
        flags: NeighborFlags,
        target: Ipv6Addr,
        lladdr: Option<EthernetAddress>,
    ) {
        if self.is_local(IpAddr::V6(target)) {
            self.counters.address_conflict += 1;
            return;
        }
        let addr = IpAddr::V6(target);
        let known_mac = match self.neighbor_state(port, addr) {
            None => {
                self.counters.nd_unsolicited_advert += 1;
                return;
            }
            Some(
                NeighborState::Reachable(m) | NeighborState::Stale(m) | NeighborState::Static(m),
            ) => Some(m),
            Some(_) => None,
        };
        // RFC 4861 §7.2.5: without a target link-layer option, an advert can only confirm
        // the address we already have.
        let Some(mac) = lladdr.or(known_mac) else {
            self.counters.nd_invalid += 1;
            return;
        };
        if !mac.is_unicast() {
            self.counters.nd_invalid += 1;
            return;
        }
        let how = Learn {
            confirmed: flags.solicited(),
            create: false,
            override_mac: flags.override_flag() || known_mac.is_none(),
        };
        self.learn(now, port, addr, mac, how);
    }

    // ---------------------------------------------------------------- forwarding help

    /// A worker had no neighbour for this already-routed frame: route it again, resolve the
    /// next hop and hold the frame meanwhile.
    fn neighbor_miss(&mut self, now: Instant, ingress: u16, frame: &[u8]) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            self.counters.malformed_frame += 1;
            return;
        };
        let dst = match eth.ethertype() {
            EtherType::Ipv4 => match Ipv4Packet::new_checked(eth.payload()) {
                Ok(ip) if ip.version() == 4 => IpAddr::V4(ip.dst_addr()),
                _ => {
                    self.counters.malformed_frame += 1;
                    return;
                }
            },
            EtherType::Ipv6 => match Ipv6Packet::new_checked(eth.payload()) {
                Ok(ip) if ip.version() == 6 => IpAddr::V6(ip.dst_addr()),
                _ => {
                    self.counters.malformed_frame += 1;
                    return;
                }
            },
            _ => {
                self.counters.malformed_frame += 1;
                return;
            }
        };
        let Some(route) = self.routes.lookup(dst) else {
            self.counters.no_route += 1;
            return;
        };
        let hop = route.next_hop_for(dst);
        self.send_via(
            now,
            hop.port,
            hop.addr,
            frame.to_vec(),
            Origin::Forwarded { ingress },
        );
    }

    /// Originates an ICMP error about `frame` (an Ethernet frame that arrived on `ingress`),
    /// unless the RFCs forbid it or the token bucket is empty.
    fn icmp_error(&mut self, now: Instant, ingress: u16, frame: &[u8], kind: IcmpError) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            self.counters.malformed_frame += 1;
            return;
        };
        let link_multicast = eth.dst_addr().is_multicast();
        match eth.ethertype() {
            EtherType::Ipv4 => self.icmpv4_error(now, ingress, eth.payload(), link_multicast, kind),
            EtherType::Ipv6 => self.icmpv6_error(now, ingress, eth.payload(), link_multicast, kind),
            _ => self.counters.malformed_frame += 1,
        }
    }

    fn icmpv4_error(
        &mut self,
        now: Instant,
        ingress: u16,
        bytes: &[u8],
        link_multicast: bool,
        kind: IcmpError,
    ) {
        let Ok(ip) = Ipv4Packet::new_checked(bytes) else {
            self.counters.malformed_frame += 1;
            return;
        };
        if ip.version() != 4 {
            self.counters.malformed_frame += 1;
            return;
        }
        if !ip.verify_checksum() {
            self.counters.ipv4_bad_checksum += 1;
            return;
        }
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        // RFC 1812 §4.3.2.7.
        let about_icmp_error = ip.next_header() == IpProtocol::Icmp
            && ip
                .payload()
                .first()
                .is_some_and(|t| is_icmpv4_error(Icmpv4Message::from(*t)));
        if link_multicast
            || dst.is_multicast()
            || self.is_broadcast_v4(dst)
            || !names_one_host(IpAddr::V4(src))
            || self.is_broadcast_v4(src)
            || ip.frag_offset() != 0
            || about_icmp_error
        {
            self.counters.icmp_error_suppressed += 1;
            return;
        }
        let Some(ours) = self.ports.get(&ingress).and_then(|p| p.source_v4(src)) else {
            self.counters.icmp_error_no_source += 1;
            return;
        };
        if !self.icmp_bucket.try_take(now) {
            self.counters.icmp_error_rate_limited += 1;
            return;
        }
        let quote_len = usize::from(ip.total_len()).min(ICMPV4_ERROR_MAX - 20 - 8);
        let data = &bytes[..quote_len];
        let repr = match kind {
            IcmpError::TimeExceeded => Icmpv4Repr::TimeExceeded {
                reason: Icmpv4TimeExceeded::TtlExpired,
                data,
            },
            IcmpError::AddressUnreachable => Icmpv4Repr::DstUnreachable {
                reason: Icmpv4DstUnreachable::HostUnreachable,
                next_hop_mtu: 0,
                data,
            },
            IcmpError::TooBig { mtu } => Icmpv4Repr::DstUnreachable {
                reason: Icmpv4DstUnreachable::FragRequired,
                next_hop_mtu: mtu,
                data,
            },
        };
        let frame = build_icmpv4(ours, src, DEFAULT_HOP_LIMIT, &repr);
        self.counters.icmp_errors_sent += 1;
        self.route_and_send(now, IpAddr::V4(src), ingress, frame, Origin::Local);
    }

    fn icmpv6_error(
        &mut self,
        now: Instant,
        ingress: u16,
        bytes: &[u8],
        link_multicast: bool,
        kind: IcmpError,
    ) {
        let Ok(ip) = Ipv6Packet::new_checked(bytes) else {
            self.counters.malformed_frame += 1;
            return;
        };
        if ip.version() != 6 {
            self.counters.malformed_frame += 1;
            return;
        }
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        // RFC 4443 §2.4 (e): not about errors, multicast, or packets without a single source.
        // An unparseable extension chain is treated as "maybe an error": no ICMP.
        let upper = upper_layer_v6(ip.payload(), ip.next_header());
        let suppress_upper = match upper {
            None => true,
            Some(u) if u.non_first_fragment => true,
            Some(u) if u.protocol == IpProtocol::Icmpv6 => {
                ip.payload().get(u.offset).is_none_or(|t| *t < 128)
            }
            Some(_) => false,
        };
        if link_multicast
            || dst.is_multicast()
            || !names_one_host(IpAddr::V6(src))
            || suppress_upper
        {
            self.counters.icmp_error_suppressed += 1;
            return;
        }
        let Some(ours) = self.ports.get(&ingress).map(|p| p.source_v6(src)) else {
            self.counters.icmp_error_no_source += 1;
            return;
        };
        if !self.icmp_bucket.try_take(now) {
            self.counters.icmp_error_rate_limited += 1;
            return;
        }
        let quote_len = ip.total_len().min(ICMPV6_ERROR_MAX - 40 - 8);
        let data = &bytes[..quote_len];
        let repr = match kind {
            IcmpError::TimeExceeded => Icmpv6Repr::TimeExceeded {
                reason: Icmpv6TimeExceeded::HopLimitExceeded,
                data,
            },
            IcmpError::AddressUnreachable => Icmpv6Repr::DstUnreachable {
                reason: Icmpv6DstUnreachable::AddrUnreachable,
                data,
            },
            IcmpError::TooBig { mtu } => Icmpv6Repr::PktTooBig {
                mtu: u32::from(mtu),
                data,
            },
        };
        let zero = EthernetAddress([0; 6]);
        let frame = build_icmpv6(zero, zero, ours, src, DEFAULT_HOP_LIMIT, &repr);
        self.counters.icmp_errors_sent += 1;
        self.route_and_send(now, IpAddr::V6(src), ingress, frame, Origin::Local);
    }
}

// -------------------------------------------------------------------- frame builders

/// A zeroed frame with an Ethernet header and room for `payload_len` bytes.
fn eth_frame(
    src: EthernetAddress,
    dst: EthernetAddress,
    ethertype: EtherType,
    payload_len: usize,
) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
    };
    let mut frame = vec![0u8; repr.buffer_len() + payload_len];
    repr.emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
    frame
}

/// Rewrites the Ethernet addresses of `frame` (at least 14 bytes by construction).
fn with_macs(mut frame: Vec<u8>, src: EthernetAddress, dst: EthernetAddress) -> Vec<u8> {
    if frame.len() >= ETH_LEN {
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        eth.set_src_addr(src);
        eth.set_dst_addr(dst);
    }
    frame
}

fn build_arp(src: EthernetAddress, dst: EthernetAddress, arp: &ArpRepr) -> Vec<u8> {
    let mut frame = eth_frame(src, dst, EtherType::Arp, arp.buffer_len());
    arp.emit(&mut ArpPacket::new_unchecked(&mut frame[ETH_LEN..]));
    frame
}

/// An IPv4 ICMP packet in a frame whose MACs are placeholders (set when it is routed).
fn build_icmpv4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, icmp: &Icmpv4Repr<'_>) -> Vec<u8> {
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: ttl,
    };
    let zero = EthernetAddress([0; 6]);
    let mut frame = eth_frame(
        zero,
        zero,
        EtherType::Ipv4,
        ip.buffer_len() + icmp.buffer_len(),
    );
    let (header, body) = frame[ETH_LEN..].split_at_mut(ip.buffer_len());
    icmp.emit(&mut Icmpv4Packet::new_unchecked(body));
    // Emitting the header over the whole packet would need the payload too; it only writes
    // the first 20 bytes.
    ip.emit(&mut Ipv4Packet::new_unchecked(header));
    frame
}

fn build_icmpv6(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    icmp: &Icmpv6Repr<'_>,
) -> Vec<u8> {
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit,
    };
    let mut frame = eth_frame(
        src_mac,
        dst_mac,
        EtherType::Ipv6,
        ip.buffer_len() + icmp.buffer_len(),
    );
    let (header, body) = frame[ETH_LEN..].split_at_mut(ip.buffer_len());
    ip.emit(&mut Ipv6Packet::new_unchecked(header));
    icmp.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(body));
    frame
}

// -------------------------------------------------------------------- address helpers

fn mask_v4(a: Ipv4Addr, len: u8) -> Ipv4Addr {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(u32::from(a) & mask)
}

fn mask_v6(a: Ipv6Addr, len: u8) -> Ipv6Addr {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0);
    Ipv6Addr::from(u128::from(a) & mask)
}

fn same_prefix_v4(a: Ipv4Addr, b: Ipv4Addr, len: u8) -> bool {
    mask_v4(a, len) == mask_v4(b, len)
}

fn same_prefix_v6(a: Ipv6Addr, b: Ipv6Addr, len: u8) -> bool {
    mask_v6(a, len) == mask_v6(b, len)
}

/// All host bits of `a` under a `/len` prefix are one (a directed broadcast).
fn host_bits_set_v4(a: Ipv4Addr, len: u8) -> bool {
    let host = u32::MAX.checked_shr(u32::from(len.min(32))).unwrap_or(0);
    u32::from(a) & host == host
}

/// Does `a` name a single remote host (not unspecified, multicast, limited broadcast or
/// loopback)?
fn names_one_host(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => {
            !(a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback())
        }
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_loopback()),
    }
}

fn is_icmpv4_error(t: Icmpv4Message) -> bool {
    matches!(
        t,
        Icmpv4Message::DstUnreachable
            | Icmpv4Message::Redirect
            | Icmpv4Message::TimeExceeded
            | Icmpv4Message::ParamProblem
            | Icmpv4Message::Unknown(4)
    )
}

fn is_mld(t: Icmpv6Message) -> bool {
    matches!(
        t,
        Icmpv6Message::MldQuery
            | Icmpv6Message::MldReport
            | Icmpv6Message::MldDone
            | Icmpv6Message::MldV2Report
    )
}

/// Where the upper-layer header of an IPv6 packet starts, past its extension headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct UpperLayer {
    protocol: IpProtocol,
    /// Offset in the IPv6 payload.
    offset: usize,
    /// A Fragment header was crossed.
    fragment: bool,
    /// A Fragment header with a non-zero offset was crossed: the upper layer is not here.
    non_first_fragment: bool,
}

/// Walks the IPv6 extension headers (RFC 8200 §4) of `payload`. `None` when a header runs
/// past the end. fastpath has no extension-header walker yet, so this is the one private
/// parser in this crate; it reads only the next-header and length octets.
fn upper_layer_v6(payload: &[u8], first: IpProtocol) -> Option<UpperLayer> {
    let mut protocol = first;
    let mut offset = 0usize;
    let mut fragment = false;
    // RFC 8200 allows each header at most once or twice; 8 bounds the walk.
    for _ in 0..8 {
        match protocol {
            IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                let header = payload.get(offset..offset + 2)?;
                let len = (usize::from(header[1]) + 1) * 8;
                payload.get(offset..offset + len)?;
                protocol = IpProtocol::from(header[0]);
                offset += len;
            }
            IpProtocol::Ipv6Frag => {
                let header = payload.get(offset..offset + 8)?;
                let frag_offset = u16::from_be_bytes([header[2], header[3]]) >> 3;
                protocol = IpProtocol::from(header[0]);
                offset += 8;
                fragment = true;
                if frag_offset != 0 {
                    return Some(UpperLayer {
                        protocol,
                        offset,
                        fragment,
                        non_first_fragment: true,
                    });
                }
            }
            _ => {
                return Some(UpperLayer {
                    protocol,
                    offset,
                    fragment,
                    non_first_fragment: false,
                })
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_helpers() {
        let a = Ipv4Addr::new(10, 1, 2, 3);
        assert_eq!(mask_v4(a, 24), Ipv4Addr::new(10, 1, 2, 0));
        assert_eq!(mask_v4(a, 0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(mask_v4(a, 32), a);
        assert!(host_bits_set_v4(Ipv4Addr::new(10, 1, 2, 255), 24));
        assert!(!host_bits_set_v4(a, 24));
        let b: Ipv6Addr = "2001:db8:1:2::5".parse().unwrap();
        assert_eq!(
            mask_v6(b, 64),
            "2001:db8:1:2::".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(mask_v6(b, 0), Ipv6Addr::UNSPECIFIED);
    }

    #[test]
    fn extension_header_walk() {
        // Hop-by-hop (8 bytes) then a fragment header at offset 0x10 (non-first) then UDP.
        let mut p = vec![IpProtocol::Ipv6Frag.into(), 0, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(&[17, 0, 0x00, 0x10, 0, 0, 0, 1]);
        let u = upper_layer_v6(&p, IpProtocol::HopByHop).unwrap();
        assert!(u.fragment && u.non_first_fragment);
        assert_eq!((u.protocol, u.offset), (IpProtocol::Udp, 16));
        // Truncated hop-by-hop.
        assert_eq!(upper_layer_v6(&p[..1], IpProtocol::HopByHop), None);
        // No extension headers.
        let u = upper_layer_v6(&[], IpProtocol::Icmpv6).unwrap();
        assert_eq!(
            (u.protocol, u.offset, u.fragment),
            (IpProtocol::Icmpv6, 0, false)
        );
    }
}
