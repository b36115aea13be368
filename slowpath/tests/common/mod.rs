//! Shared fixtures: a two-port router, golden frames and a virtual-clock harness.
//!
//! The golden frames were built by a short independent Python script (`struct` plus its own
//! RFC 1071 checksum), not by fastpath's emitters, so they check our output against something
//! that is not us.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

pub use fastpath::forward::PuntReason;
use fastpath::route::{IpPrefix, Route};
use fastpath::time::Instant;
use fastpath::wire::ethernet::EthernetAddress;
use slowpath::{
    Event, Interface, NeighborTimers, SlowPath, SlowPathConfig, StaticNeighbor, Transmit,
};

/// Router port 0 ("lan") MAC: 192.0.2.1/24, 2001:db8:1::1/64, fe80::ff:fe00:1.
pub const R0: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
/// Router port 1 ("wan") MAC: 198.51.100.1/24, 2001:db8:2::1/64.
pub const R1: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x01, 0x01]);
/// Host A on the lan: 192.0.2.10, 2001:db8:1::10.
pub const HA: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0, 0, 0x0a]);
/// The wan gateway, a static neighbour: 198.51.100.254, 2001:db8:2::fe.
pub const GW: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0, 0, 0xfe]);
/// Host B on the lan: 192.0.2.20, 2001:db8:1::20.
pub const HB: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0, 0, 0x0b]);

pub const LAN: u16 = 0;
pub const WAN: u16 = 1;

pub fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
}

pub fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

pub fn config() -> SlowPathConfig {
    SlowPathConfig {
        interfaces: vec![
            Interface {
                port: LAN,
                name: "lan".into(),
                mac: R0,
                ipv4: vec![("192.0.2.1".parse().unwrap(), 24)],
                ipv6: vec![("2001:db8:1::1".parse().unwrap(), 64)],
                mtu: 1500,
            },
            Interface {
                port: WAN,
                name: "wan".into(),
                mac: R1,
                ipv4: vec![("198.51.100.1".parse().unwrap(), 24)],
                ipv6: vec![("2001:db8:2::1".parse().unwrap(), 64)],
                mtu: 1500,
            },
        ],
        routes: vec![
            Route {
                prefix: IpPrefix::new(v4("0.0.0.0"), 0).unwrap(),
                next_hop: Some(v4("198.51.100.254")),
                port: WAN,
            },
            Route {
                prefix: IpPrefix::new(v6("::"), 0).unwrap(),
                next_hop: Some(v6("2001:db8:2::fe")),
                port: WAN,
            },
        ],
        static_neighbors: vec![
            StaticNeighbor {
                port: WAN,
                addr: v4("198.51.100.254"),
                mac: GW,
            },
            StaticNeighbor {
                port: WAN,
                addr: v6("2001:db8:2::fe"),
                mac: GW,
            },
        ],
        timers: NeighborTimers::default(),
    }
}

/// A slow path on a virtual clock, in the style of quinn-proto's test `Pair`.
pub struct Harness {
    pub sp: SlowPath,
    pub now: Instant,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(config())
    }

    pub fn with_config(config: SlowPathConfig) -> Self {
        let now = Instant::from_nanos(1_000_000_000);
        Harness {
            sp: SlowPath::new(config, now),
            now,
        }
    }

    pub fn frame(&mut self, port: u16, reason: PuntReason, hex_frame: &str) {
        let bytes = hex::decode(hex_frame).unwrap();
        self.sp.handle_frame(self.now, port, reason, &bytes);
    }

    pub fn raw(&mut self, port: u16, reason: PuntReason, bytes: &[u8]) {
        self.sp.handle_frame(self.now, port, reason, bytes);
    }

    pub fn transmits(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.sp.poll_transmit()).collect()
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.sp.poll_event()).collect()
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Jumps to the next deadline and runs it; false when there is none.
    pub fn step(&mut self) -> bool {
        match self.sp.poll_timeout() {
            Some(t) => {
                self.now = self.now.max(t);
                self.sp.handle_timeout(self.now);
                true
            }
            None => false,
        }
    }

    /// Runs every deadline up to and including `until`, then sets the clock to `until`.
    pub fn drive_until(&mut self, until: Instant) {
        let mut guard = 0;
        while let Some(t) = self.sp.poll_timeout() {
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            self.sp.handle_timeout(self.now);
            guard += 1;
            assert!(guard < 1_000_000, "livelock: deadline does not move");
        }
        self.now = until;
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.sp
            .counters()
            .get(name)
            .unwrap_or_else(|| panic!("no counter {name}"))
    }
}

/// Independent RFC 1071 sum (not fastpath's), folded and complemented.
pub fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    let bytes: Vec<u8> = parts.concat();
    for w in bytes.chunks(2) {
        sum += u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Verifies the ICMPv6 checksum of an Ethernet/IPv6/ICMPv6 frame independently.
/// Recomputes the IPv4 header checksum of an Ethernet frame in place.
pub fn fix_ipv4_checksum(f: &mut [u8]) {
    f[24..26].fill(0);
    let c = internet_checksum(&[&f[14..34]]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

pub fn icmpv6_checksum_ok(frame: &[u8]) -> bool {
    let ip = &frame[14..];
    let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize;
    let body = &ip[40..40 + plen];
    let pseudo_len = (plen as u32).to_be_bytes();
    internet_checksum(&[&ip[8..24], &ip[24..40], &pseudo_len, &[0, 0, 0, 58], body]) == 0
}

/// Verifies the IPv4 header and ICMP checksums of an Ethernet/IPv4/ICMP frame independently.
pub fn icmpv4_checksums_ok(frame: &[u8]) -> bool {
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    internet_checksum(&[&ip[..ihl]]) == 0 && internet_checksum(&[&ip[ihl..total]]) == 0
}
pub const ARP_REQUEST: &str =
    "ffffffffffff52540000000a0806000108000604000152540000000ac000020a000000000000c0000201";
pub const ARP_REPLY: &str =
    "52540000000a02000000000108060001080006040002020000000001c000020152540000000ac000020a";
pub const NS: &str = "3333ff00000152540000000a86dd6000000000203aff20010db8000100000000000000000010ff0200000000000000000001ff0000018700cbba0000000020010db8000100000000000000000001010152540000000a";
pub const NA: &str = "52540000000a02000000000186dd6000000000203aff20010db800010000000000000000000120010db800010000000000000000001088000a62e000000020010db80001000000000000000000010201020000000001";
pub const ECHO4_REQ: &str = "02000000000152540000000a080045000024424200004001b48bc000020ac000020108005435123400016162636465666768";
pub const ECHO4_REPLY: &str = "52540000000a020000000001080045000024000040004001b6cdc0000201c000020a00005c35123400016162636465666768";
pub const ECHO6_REQ: &str = "02000000000152540000000a86dd6000000000103a4020010db800010000000000000000001020010db800010000000000000000000180008065123400016162636465666768";
pub const ECHO6_REPLY: &str = "52540000000a02000000000186dd6000000000103a4020010db800010000000000000000000120010db800010000000000000000001081007f65123400016162636465666768";
pub const TTL4_IN: &str =
    "0200000001015254000000fe080045000020010100000111babccb007105c000020a0fa0829a000c000070696e67";
pub const TE4_OUT: &str = "5254000000fe02000000010108004500003c000040004001d486c6336401cb0071050b0083e80000000045000020010100000111babccb007105c000020a0fa0829a000c000070696e67";
pub const TTL6_IN: &str = "0200000001015254000000fe86dd60000000000c110120010db800990000000000000000000520010db80001000000000000000000100fa0829a000c000070696e67";
pub const TE6_OUT: &str = "5254000000fe02000000010186dd60000000003c3a4020010db800020000000000000000000120010db8009900000000000000000005030062300000000060000000000c110120010db800990000000000000000000520010db80001000000000000000000100fa0829a000c000070696e67";
