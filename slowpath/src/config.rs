//! Configuration of a [`SlowPath`](crate::SlowPath): interfaces, routes, static neighbours and
//! timer constants.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use fastpath::route::Route;
use fastpath::wire::ethernet::EthernetAddress;

/// Everything a [`SlowPath`](crate::SlowPath) needs to know at start-up.
#[derive(Clone, Debug, Default)]
pub struct SlowPathConfig {
    /// The router's ports. Their prefixes become connected routes.
    pub interfaces: Vec<Interface>,
    /// Routes used for locally generated packets and for re-routing `NeighborMiss` punts.
    pub routes: Vec<Route>,
    /// Neighbours that never expire and are never overwritten by learning.
    pub static_neighbors: Vec<StaticNeighbor>,
    /// Neighbour-table timers and limits.
    pub timers: NeighborTimers,
}

/// One port of the router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Port id, as used in punts and transmits.
    pub port: u16,
    /// Human name, for logs.
    pub name: String,
    /// The port's MAC address: the source of every frame sent on it.
    pub mac: EthernetAddress,
    /// IPv4 addresses with their prefix length.
    pub ipv4: Vec<(Ipv4Addr, u8)>,
    /// IPv6 addresses with their prefix length. The EUI-64 link-local address derived from
    /// `mac` is added automatically.
    pub ipv6: Vec<(Ipv6Addr, u8)>,
    /// IP MTU of the port.
    pub mtu: u16,
}

/// A configured neighbour: never expires, never changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticNeighbor {
    /// Port the neighbour is reached on.
    pub port: u16,
    /// Its IP address.
    pub addr: IpAddr,
    /// Its MAC address.
    pub mac: EthernetAddress,
}

/// Neighbour-table timers and limits. Names follow RFC 4861 §10 where there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighborTimers {
    /// Time between two solicitations of an unresolved neighbour (`RETRANS_TIMER`, 1 s).
    pub retransmit: Duration,
    /// Solicitations sent before a resolution fails (`MAX_MULTICAST_SOLICIT`, 3).
    pub max_probes: u8,
    /// How long a confirmed entry stays Reachable (`REACHABLE_TIME`, 30 s).
    pub reachable: Duration,
    /// How long a Stale entry is kept before it is removed (10 min). Failed entries are
    /// removed after `reachable`.
    pub stale_gc: Duration,
    /// Packets held per unresolved neighbour; the oldest is dropped past it (3).
    pub max_held_per_neighbor: usize,
    /// Dynamic entries in the table; new ones are refused past it (4096).
    pub max_entries: usize,
}

impl Default for NeighborTimers {
    fn default() -> Self {
        Self {
            retransmit: Duration::from_secs(1),
            max_probes: 3,
            reachable: Duration::from_secs(30),
            stale_gc: Duration::from_secs(600),
            max_held_per_neighbor: 3,
            max_entries: 4096,
        }
    }
}

/// Token bucket for originated ICMP errors (RFC 1812 §4.3.2.8, RFC 4443 §2.4 (f)). The
/// default applies unless [`SlowPath::set_icmp_error_limit`](crate::SlowPath::set_icmp_error_limit)
/// is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpErrorLimit {
    /// Sustained rate, errors per second (100). Zero disables ICMP errors.
    pub per_second: u32,
    /// Bucket depth (50).
    pub burst: u32,
}

impl Default for IcmpErrorLimit {
    fn default() -> Self {
        Self {
            per_second: 100,
            burst: 50,
        }
    }
}
