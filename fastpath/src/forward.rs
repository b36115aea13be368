//! The per-packet stages a worker runs on a received frame, one function per stage:
//!
//! ```text
//! classify(frame, in_port, local) ─┬─ Err(DropReason)       count it, free the mbuf
//!                                  ├─ Ok(Class::Punt(r))    tag with r as u8, hand to slow path
//!                                  └─ Ok(Class::Route{dst, l3_len})
//!                                        trim the mbuf to ethernet::HEADER_LEN + l3_len
//! lookup(dst, routes)             ─── Err(NoRoute) | Ok(NextHop{port, addr})
//! check_mtu(l3_len, out mtu)      ─── Err(PuntReason::MtuExceeded)
//! resolve(&next_hop, neighbors)   ─── Err(PuntReason::NeighborMiss) | Ok(next-hop MAC)
//! transform(frame, l3_len, out port MAC, next-hop MAC) ─── Err(DropReason) | Ok(())  → TX
//! ```
//!
//! Nothing here allocates, locks, formats or reads a clock. Every stage that refuses a packet
//! says why with a [`DropReason`] (count it in [`DropCounters`]) or a [`PuntReason`] (the slow
//! path takes over the packet: ARP/NDP, packets for the router, ICMP errors, neighbour misses).
//!
//! Validation follows RFC 1812 §5.2.2/§5.3.7 for IPv4 (no forwarding of link-layer broadcasts,
//! martian sources and destinations) and RFC 4291/RFC 8200 for IPv6 (no forwarding of
//! link-local scope, unspecified or loopback addresses). IPv4 fragments are forwarded like
//! any packet; IPv4 options are carried unchanged.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::route::{IpPrefix, NextHop, RouteTable};
use crate::wire::ethernet::{self, EtherType, EthernetAddress};
use crate::wire::icmpv6::Icmpv6Message;
use crate::wire::ipv6::{self, is_unicast_link_local, solicited_node_multicast};
use crate::wire::{ipv4, ArpPacket, ArpRepr, IpProtocol, Ipv4Packet, Ipv6Packet};

/// Declares a `#[repr(u8)]` reason enum with `COUNT`, `ALL`, `name()`, `from_u8()` and a
/// counter array type, from one list of `Variant = "name"` (VPP's X-macro idea: the names
/// and the enum cannot drift apart).
macro_rules! reasons {
    (
        $( #[$attr:meta] )*
        pub enum $name:ident / $counters:ident {
            $(
                $( #[$vattr:meta] )*
                $variant:ident = $text:literal,
            )+
        }
    ) => {
        $( #[$attr] )*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $name {
            $( $( #[$vattr] )* $variant, )+
        }

        impl $name {
            /// Number of variants.
            pub const COUNT: usize = [$( $name::$variant, )+].len();
            /// Every variant, in discriminant order (`ALL[r as usize] == r`).
            pub const ALL: [$name; Self::COUNT] = [$( $name::$variant, )+];

            /// A snake_case name for counters and logs.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The variant with discriminant `v`.
            pub fn from_u8(v: u8) -> Option<$name> {
                Self::ALL.get(usize::from(v)).copied()
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.name())
            }
        }

        #[doc = concat!("One plain `u64` per [`", stringify!($name), "`]; per worker, summed by the reader.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $counters(pub [u64; $name::COUNT]);

        impl Default for $counters {
            fn default() -> Self {
                $counters([0; $name::COUNT])
            }
        }

        impl $counters {
            /// Adds one to `reason`'s counter.
            #[inline]
            pub fn bump(&mut self, reason: $name) {
                self.add(reason, 1);
            }

            /// Adds `n` to `reason`'s counter (wrapping, as hardware counters do).
            #[inline]
            pub fn add(&mut self, reason: $name, n: u64) {
                // `reason as usize` < COUNT by construction of `ALL`.
                let c = &mut self.0[reason as usize];
                *c = c.wrapping_add(n);
            }

            /// The count for `reason`.
            pub fn get(&self, reason: $name) -> u64 {
                self.0[reason as usize]
            }

            /// Sets every counter to zero (after publishing them).
            pub fn clear(&mut self) {
                self.0 = [0; $name::COUNT];
            }

            /// Sum of all counters.
            pub fn total(&self) -> u64 {
                self.0.iter().fold(0u64, |a, &b| a.wrapping_add(b))
            }

            /// `(name, value)` for every reason, in discriminant order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                $name::ALL.iter().map(move |&r| (r.name(), self.get(r)))
            }

            /// Adds every counter of `other` into `self` (summing workers).
            pub fn merge(&mut self, other: &$counters) {
                for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
                    *a = a.wrapping_add(*b);
                }
            }
        }
    };
}

pub(crate) use reasons;

reasons! {
    /// Why the fast path dropped a packet. Each variant indexes a [`DropCounters`] slot.
    pub enum DropReason / DropCounters {
        /// Frame shorter than an Ethernet header, or than the IP length a later stage was given.
        TruncatedFrame = "truncated_frame",
        /// Received on a port that has no entry in [`LocalInfo`].
        UnknownPort = "unknown_port",
        /// EtherType other than IPv4, IPv6 or ARP (802.1Q-tagged frames included).
        UnknownEtherType = "unknown_ethertype",
        /// Destination MAC not ours; a multicast/broadcast IP destination we have not joined;
        /// a directed broadcast; or a transit packet that arrived as a link-layer broadcast.
        NotForUs = "not_for_us",
        /// ARP that is truncated or not Ethernet/IPv4.
        BadArp = "bad_arp",
        /// IP version field does not match the EtherType.
        BadIpVersion = "bad_ip_version",
        /// IPv4 header shorter than 20 bytes, IHL < 5, or total length < IHL × 4 or > frame.
        BadIpv4Length = "bad_ipv4_length",
        /// IPv4 header checksum wrong.
        BadIpv4Checksum = "bad_ipv4_checksum",
        /// IPv6 frame shorter than 40 bytes, or payload length beyond the frame.
        BadIpv6Length = "bad_ipv6_length",
        /// Source is multicast, broadcast, loopback, 0.0.0.0/8, 240.0.0.0/4, or `::` on a
        /// transit packet.
        MartianSource = "martian_source",
        /// Source is one of the router's own addresses (any port): nothing of ours comes back
        /// in, so it is spoofed or looped; routing it back out would reflect it.
        OwnSource = "martian_own_source",
        /// Destination that must never be routed (0.0.0.0/8, 127/8, 240/4, `::`, `::1`), or a
        /// link-local IPv6 source on a transit packet.
        Unroutable = "unroutable",
        /// No route to the destination.
        NoRoute = "no_route",
        /// `transform` was given a packet whose TTL/hop limit is ≤ 1 (classify punts those, so
        /// this means a stage was skipped).
        TtlExpired = "ttl_expired",
    }
}

reasons! {
    /// Why the fast path handed a packet to the slow path. The worker stores `reason as u8`
    /// in the mbuf's 32-bit tag; the slow path reads it back with [`PuntReason::from_u8`].
    pub enum PuntReason / PuntCounters {
        /// ARP to our MAC or broadcast.
        Arp = "arp",
        /// ICMPv6 Neighbor Discovery (types 133–137) to us or a group we joined.
        NeighborDiscovery = "neighbor_discovery",
        /// Addressed to one of the router's own addresses, or to ff02::1 / ff02::2.
        Local = "local",
        /// Transit packet with TTL/hop limit ≤ 1: send ICMP Time Exceeded.
        TtlExceeded = "ttl_exceeded",
        /// No neighbour entry for the next hop: hold the packet and resolve it.
        NeighborMiss = "neighbor_miss",
        /// Larger than the output port's MTU: fragment, or send Fragmentation Needed /
        /// Packet Too Big.
        MtuExceeded = "mtu_exceeded",
    }
}

/// Length of the Ethernet header that precedes the `l3_len` bytes of [`Class::Route`].
pub const ETHERNET_HEADER_LEN: usize = ethernet::HEADER_LEN;

/// What to do with a frame that passed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Hand the frame, unchanged, to the slow path.
    Punt(PuntReason),
    /// Forward: look up `dst`. `l3_len` is the IP packet length (IPv4 total length, or
    /// 40 + IPv6 payload length); the frame is `ethernet::HEADER_LEN + l3_len` bytes once
    /// Ethernet padding is trimmed.
    Route {
        /// Destination address.
        dst: IpAddr,
        /// Length of the IP packet, from its header.
        l3_len: usize,
    },
}

/// One address of the router on a port, with the length of its connected prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortAddr {
    /// The address (host bits set, e.g. 10.0.0.1).
    pub addr: IpAddr,
    /// Prefix length of the connected network (e.g. 24).
    pub prefix_len: u8,
}

impl PortAddr {
    /// The connected network, or `None` if `prefix_len` is too long for the family.
    pub fn network(&self) -> Option<IpPrefix> {
        IpPrefix::new_masked(self.addr, self.prefix_len).ok()
    }
}

/// The router's identity on one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAddrs {
    /// Port id (DPDK port id; the `in_port` given to [`classify`]).
    pub port: u16,
    /// The port's MAC.
    pub mac: EthernetAddress,
    /// IPv4 addresses.
    pub ipv4: Vec<PortAddr>,
    /// IPv6 addresses. The EUI-64 link-local address is added by [`LocalInfo::new`]; list it
    /// here only to use a different one.
    pub ipv6: Vec<PortAddr>,
    /// IP MTU: the largest IP packet (not frame) the port sends.
    pub mtu: u16,
}

impl PortAddrs {
    /// A port with the given `(address, prefix length)` pairs, split by family.
    pub fn new(
        port: u16,
        mac: EthernetAddress,
        addrs: impl IntoIterator<Item = (IpAddr, u8)>,
        mtu: u16,
    ) -> PortAddrs {
        let mut p = PortAddrs {
            port,
            mac,
            ipv4: Vec::new(),
            ipv6: Vec::new(),
            mtu,
        };
        for (addr, prefix_len) in addrs {
            let list = if addr.is_ipv4() {
                &mut p.ipv4
            } else {
                &mut p.ipv6
            };
            list.push(PortAddr { addr, prefix_len });
        }
        p
    }

    /// The EUI-64 link-local address derived from the MAC (RFC 4291 App. A), `fe80::/64`.
    pub fn link_local_v6(&self) -> Ipv6Addr {
        eui64_link_local(self.mac)
    }

    /// Whether `addr` is one of this port's configured addresses (the automatic link-local
    /// one included).
    pub fn has_addr(&self, addr: IpAddr) -> bool {
        addr == IpAddr::V6(self.link_local_v6())
            || self.ipv4.iter().chain(&self.ipv6).any(|a| a.addr == addr)
    }
}

/// `fe80::` + the modified EUI-64 interface identifier of `mac`.
pub fn eui64_link_local(mac: EthernetAddress) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

/// Everything about the router's own ports that classification needs. Built once from the
/// configuration; shared read-only by workers.
#[derive(Debug, Clone)]
pub struct LocalInfo {
    ports: Vec<PortAddrs>,
    /// Port id → index into `ports`.
    by_id: Vec<Option<usize>>,
    /// Every router address, sorted, for binary search.
    local: Vec<IpAddr>,
    /// ff02::1, ff02::2 and the solicited-node group of every local IPv6 address, sorted.
    v6_groups: Vec<Ipv6Addr>,
    /// Directed-broadcast addresses of the connected IPv4 networks (prefixes up to /30), sorted.
    v4_broadcasts: Vec<Ipv4Addr>,
}

impl LocalInfo {
    /// Indexes the ports. If a port id appears twice, the later entry wins.
    pub fn new(ports: impl IntoIterator<Item = PortAddrs>) -> LocalInfo {
        let ports: Vec<PortAddrs> = ports.into_iter().collect();
        let max_id = ports
            .iter()
            .map(|p| usize::from(p.port))
            .max()
            .map_or(0, |m| m + 1);
        let mut by_id = vec![None; max_id];
        let mut local = Vec::new();
        let mut v6_groups = vec![ipv6::LINK_LOCAL_ALL_NODES, ipv6::LINK_LOCAL_ALL_ROUTERS];
        let mut v4_broadcasts = Vec::new();
        for (index, port) in ports.iter().enumerate() {
            by_id[usize::from(port.port)] = Some(index);
            let link_local = port.link_local_v6();
            local.push(IpAddr::V6(link_local));
            v6_groups.push(solicited_node_multicast(&link_local));
            for a in port.ipv4.iter().chain(&port.ipv6) {
                local.push(a.addr);
                match a.addr {
                    IpAddr::V6(v6) => v6_groups.push(solicited_node_multicast(&v6)),
                    IpAddr::V4(v4) if a.prefix_len <= 30 => {
                        let host_mask = u32::MAX.checked_shr(u32::from(a.prefix_len)).unwrap_or(0);
                        v4_broadcasts.push(Ipv4Addr::from(u32::from(v4) | host_mask));
                    }
                    IpAddr::V4(_) => {}
                }
            }
        }
        local.sort_unstable();
        local.dedup();
        v6_groups.sort_unstable();
        v6_groups.dedup();
        v4_broadcasts.sort_unstable();
        v4_broadcasts.dedup();
        LocalInfo {
            ports,
            by_id,
            local,
            v6_groups,
            v4_broadcasts,
        }
    }

    /// The port with id `port`.
    #[inline]
    pub fn port(&self, port: u16) -> Option<&PortAddrs> {
        let index = (*self.by_id.get(usize::from(port))?)?;
        self.ports.get(index)
    }

    /// All ports, in the order given.
    pub fn ports(&self) -> &[PortAddrs] {
        &self.ports
    }

    /// Whether `addr` is one of the router's own unicast addresses, on any port.
    #[inline]
    pub fn is_local(&self, addr: IpAddr) -> bool {
        self.local.binary_search(&addr).is_ok()
    }

    /// Whether the router listens on IPv6 multicast `group` (all-nodes, all-routers, or the
    /// solicited-node group of one of its addresses).
    #[inline]
    pub fn is_joined_group(&self, group: &Ipv6Addr) -> bool {
        self.v6_groups.binary_search(group).is_ok()
    }

    /// The IPv6 groups the router listens on (for programming NIC multicast filters).
    pub fn joined_groups(&self) -> &[Ipv6Addr] {
        &self.v6_groups
    }

    fn is_directed_broadcast(&self, addr: &Ipv4Addr) -> bool {
        self.v4_broadcasts.binary_search(addr).is_ok()
    }
}

/// Classifies a received frame: validates Ethernet and IP headers and decides whether to
/// drop, punt or route it. Never panics and never allocates.
pub fn classify(frame: &[u8], in_port: u16, local: &LocalInfo) -> Result<Class, DropReason> {
    let eth =
        ethernet::EthernetFrame::new_checked(frame).map_err(|_| DropReason::TruncatedFrame)?;
    let port = local.port(in_port).ok_or(DropReason::UnknownPort)?;
    let dst_mac = eth.dst_addr();
    let to_our_mac = dst_mac == port.mac;
    if !to_our_mac && !dst_mac.is_multicast() {
        return Err(DropReason::NotForUs);
    }
    match eth.ethertype() {
        EtherType::Arp => classify_arp(eth.payload()),
        EtherType::Ipv4 => classify_ipv4(eth.payload(), to_our_mac, local),
        EtherType::Ipv6 => classify_ipv6(eth.payload(), to_our_mac, local),
        _ => Err(DropReason::UnknownEtherType),
    }
}

fn classify_arp(payload: &[u8]) -> Result<Class, DropReason> {
    let arp = ArpPacket::new_checked(payload).map_err(|_| DropReason::BadArp)?;
    ArpRepr::parse(&arp).map_err(|_| DropReason::BadArp)?;
    Ok(Class::Punt(PuntReason::Arp))
}

/// RFC 1812 §5.3.7 martian sources, plus class E.
fn is_martian_v4_source(a: &Ipv4Addr) -> bool {
    a.is_multicast()
        || a.is_broadcast()
        || a.is_loopback()
        || a.octets()[0] == 0
        || a.octets()[0] >= 240
}

fn classify_ipv4(payload: &[u8], to_our_mac: bool, local: &LocalInfo) -> Result<Class, DropReason> {
    if payload.len() < ipv4::HEADER_LEN {
        return Err(DropReason::BadIpv4Length);
    }
    let ip = Ipv4Packet::new_unchecked(payload);
    if ip.version() != 4 {
        return Err(DropReason::BadIpVersion);
    }
    ip.check_len().map_err(|_| DropReason::BadIpv4Length)?;
    if !ip.verify_checksum() {
        return Err(DropReason::BadIpv4Checksum);
    }
    let src = ip.src_addr();
    let dst = ip.dst_addr();
    if is_martian_v4_source(&src) {
        return Err(DropReason::MartianSource);
    }
    if local.is_local(IpAddr::V4(src)) {
        return Err(DropReason::OwnSource);
    }
    if local.is_local(IpAddr::V4(dst)) {
        return Ok(Class::Punt(PuntReason::Local));
    }
    if dst.is_broadcast() || dst.is_multicast() || local.is_directed_broadcast(&dst) {
        return Err(DropReason::NotForUs);
    }
    if dst.is_loopback() || dst.octets()[0] == 0 || dst.octets()[0] >= 240 {
        return Err(DropReason::Unroutable);
    }
    // RFC 1812 §5.3.4: do not forward what arrived as a link-layer broadcast/multicast.
    if !to_our_mac {
        return Err(DropReason::NotForUs);
    }
    if ip.hop_limit() <= 1 {
        return Ok(Class::Punt(PuntReason::TtlExceeded));
    }
    Ok(Class::Route {
        dst: IpAddr::V4(dst),
        l3_len: usize::from(ip.total_len()),
    })
}

fn classify_ipv6(payload: &[u8], to_our_mac: bool, local: &LocalInfo) -> Result<Class, DropReason> {
    if payload.len() < ipv6::HEADER_LEN {
        return Err(DropReason::BadIpv6Length);
    }
    let ip = Ipv6Packet::new_unchecked(payload);
    if ip.version() != 6 {
        return Err(DropReason::BadIpVersion);
    }
    ip.check_len().map_err(|_| DropReason::BadIpv6Length)?;
    let src = ip.src_addr();
    let dst = ip.dst_addr();
    if src.is_multicast() || src.is_loopback() {
        return Err(DropReason::MartianSource);
    }
    if local.is_local(IpAddr::V6(src)) {
        return Err(DropReason::OwnSource);
    }
    // The first byte of an ICMPv6 message directly after the fixed header is its type.
    let is_ndisc = ip.next_header() == IpProtocol::Icmpv6
        && ip
            .payload()
            .first()
            .is_some_and(|&t| Icmpv6Message::from(t).is_ndisc());
    let ours = if dst.is_multicast() {
        local.is_joined_group(&dst)
    } else {
        local.is_local(IpAddr::V6(dst))
    };
    if ours {
        let reason = if is_ndisc {
            PuntReason::NeighborDiscovery
        } else {
            PuntReason::Local
        };
        return Ok(Class::Punt(reason));
    }
    if dst.is_multicast() {
        return Err(DropReason::NotForUs);
    }
    if dst.is_unspecified() || dst.is_loopback() {
        return Err(DropReason::Unroutable);
    }
    if is_unicast_link_local(&dst) || !to_our_mac {
        return Err(DropReason::NotForUs);
    }
    if src.is_unspecified() {
        return Err(DropReason::MartianSource);
    }
    if is_unicast_link_local(&src) {
        return Err(DropReason::Unroutable);
    }
    if ip.hop_limit() <= 1 {
        return Ok(Class::Punt(PuntReason::TtlExceeded));
    }
    Ok(Class::Route {
        dst: IpAddr::V6(dst),
        l3_len: ip.total_len(),
    })
}

/// Route lookup stage: the next hop for `dst`, or `NoRoute`.
#[inline]
pub fn lookup(dst: IpAddr, routes: &RouteTable) -> Result<NextHop, DropReason> {
    routes
        .lookup(dst)
        .map(|r| r.next_hop_for(dst))
        .ok_or(DropReason::NoRoute)
}

/// MTU stage: punt packets larger than the output port's IP MTU to the slow path, which
/// fragments them or answers with Fragmentation Needed / Packet Too Big.
#[inline]
pub fn check_mtu(l3_len: usize, out_mtu: u16) -> Result<(), PuntReason> {
    if l3_len > usize::from(out_mtu) {
        Err(PuntReason::MtuExceeded)
    } else {
        Ok(())
    }
}

/// A read-only view of the neighbour table: `(port, IP) → MAC`.
pub trait NeighborTable {
    /// The MAC of neighbour `ip` on `port`, if known.
    fn get(&self, port: u16, ip: IpAddr) -> Option<EthernetAddress>;
}

/// An immutable neighbour table snapshot, built by the slow path and published to workers
/// (a new snapshot replaces the old one; workers never write).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NeighborSnapshot {
    map: HashMap<(u16, IpAddr), EthernetAddress>,
}

impl NeighborSnapshot {
    /// Wraps a map built by the slow path.
    pub fn new(map: HashMap<(u16, IpAddr), EthernetAddress>) -> NeighborSnapshot {
        NeighborSnapshot { map }
    }

    /// The MAC of neighbour `ip` on `port`, if known.
    #[inline]
    pub fn get(&self, port: u16, ip: IpAddr) -> Option<EthernetAddress> {
        self.map.get(&(port, ip)).copied()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// All entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, IpAddr, EthernetAddress)> + '_ {
        self.map.iter().map(|(&(port, ip), &mac)| (port, ip, mac))
    }
}

impl FromIterator<((u16, IpAddr), EthernetAddress)> for NeighborSnapshot {
    fn from_iter<I: IntoIterator<Item = ((u16, IpAddr), EthernetAddress)>>(iter: I) -> Self {
        NeighborSnapshot {
            map: iter.into_iter().collect(),
        }
    }
}

impl NeighborTable for NeighborSnapshot {
    fn get(&self, port: u16, ip: IpAddr) -> Option<EthernetAddress> {
        NeighborSnapshot::get(self, port, ip)
    }
}

/// Neighbour stage: the MAC to send to, or `NeighborMiss` (the slow path holds the packet and
/// resolves the address).
#[inline]
pub fn resolve<N: NeighborTable + ?Sized>(
    next_hop: &NextHop,
    neighbors: &N,
) -> Result<EthernetAddress, PuntReason> {
    neighbors
        .get(next_hop.port, next_hop.addr)
        .ok_or(PuntReason::NeighborMiss)
}

/// Rewrite stage: decrements the IPv4 TTL (with an RFC 1624 incremental checksum update) or
/// the IPv6 hop limit, and rewrites the Ethernet source and destination. `frame` may be longer
/// than `HEADER_LEN + l3_len` (padding); only the headers are touched.
pub fn transform(
    frame: &mut [u8],
    l3_len: usize,
    out_src_mac: EthernetAddress,
    next_hop_mac: EthernetAddress,
) -> Result<(), DropReason> {
    let end = ethernet::HEADER_LEN
        .checked_add(l3_len)
        .ok_or(DropReason::TruncatedFrame)?;
    if frame.len() < end {
        return Err(DropReason::TruncatedFrame);
    }
    let mut eth = ethernet::EthernetFrame::new_unchecked(&mut frame[..end]);
    match eth.ethertype() {
        EtherType::Ipv4 => {
            if l3_len < ipv4::HEADER_LEN {
                return Err(DropReason::BadIpv4Length);
            }
            let mut ip = Ipv4Packet::new_unchecked(eth.payload_mut());
            if ip.hop_limit() <= 1 {
                return Err(DropReason::TtlExpired);
            }
            ip.decrement_ttl();
        }
        EtherType::Ipv6 => {
            if l3_len < ipv6::HEADER_LEN {
                return Err(DropReason::BadIpv6Length);
            }
            let mut ip = Ipv6Packet::new_unchecked(eth.payload_mut());
            let hop_limit = ip.hop_limit();
            if hop_limit <= 1 {
                return Err(DropReason::TtlExpired);
            }
            ip.set_hop_limit(hop_limit - 1);
        }
        _ => return Err(DropReason::UnknownEtherType),
    }
    eth.set_src_addr(out_src_mac);
    eth.set_dst_addr(next_hop_mac);
    Ok(())
}

#[cfg(test)]
mod test;
