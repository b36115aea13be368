//! Tests of the forwarding stages on golden frames.

use super::*;
use crate::route::Route;
use crate::wire::{EthernetRepr, Ipv4Repr, Ipv6Repr};
use proptest::prelude::*;
use std::collections::BTreeSet;

const MAC0: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const MAC1: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
const HOST_A: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const HOST_B: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc]);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pa(s: &str, prefix_len: u8) -> PortAddr {
    PortAddr {
        addr: ip(s),
        prefix_len,
    }
}

/// Port 0: 192.168.1.1/24, 2001:db8::2/64. Port 1: 10.0.0.1/24, 2001:db8:1::1/64.
fn local() -> LocalInfo {
    LocalInfo::new([
        PortAddrs {
            port: 0,
            mac: MAC0,
            ipv4: vec![pa("192.168.1.1", 24)],
            ipv6: vec![pa("2001:db8::2", 64)],
            mtu: 1500,
        },
        PortAddrs {
            port: 1,
            mac: MAC1,
            ipv4: vec![pa("10.0.0.1", 24)],
            ipv6: vec![pa("2001:db8:1::1", 64)],
            mtu: 1500,
        },
    ])
}

/// Connected routes for both ports, 172.16/12 via 10.0.0.254; no default route.
fn routes() -> RouteTable {
    let r = |p: &str, via: Option<&str>, port| Route {
        prefix: p.parse().unwrap(),
        next_hop: via.map(ip),
        port,
    };
    RouteTable::new([
        r("192.168.1.0/24", None, 0),
        r("10.0.0.0/24", None, 1),
        r("172.16.0.0/12", Some("10.0.0.254"), 1),
        r("2001:db8::/64", None, 0),
        r("2001:db8:1::/64", None, 1),
    ])
}

fn neighbors() -> NeighborSnapshot {
    [
        ((1, ip("10.0.0.5")), HOST_B),
        ((1, ip("2001:db8:1::5")), HOST_B),
        ((1, ip("10.0.0.254")), HOST_B),
    ]
    .into_iter()
    .collect()
}

/// What the worker loop does with a frame, stage by stage.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Drop(DropReason),
    Punt(PuntReason),
    Tx(u16),
}

fn run(frame: &mut [u8], in_port: u16) -> Outcome {
    let local = local();
    let (dst, l3_len) = match classify(frame, in_port, &local) {
        Err(r) => return Outcome::Drop(r),
        Ok(Class::Punt(r)) => return Outcome::Punt(r),
        Ok(Class::Route { dst, l3_len }) => (dst, l3_len),
    };
    let hop = match lookup(dst, &routes()) {
        Err(r) => return Outcome::Drop(r),
        Ok(hop) => hop,
    };
    let out = local.port(hop.port).unwrap();
    if let Err(r) = check_mtu(l3_len, out.mtu) {
        return Outcome::Punt(r);
    }
    let mac = match resolve(&hop, &neighbors()) {
        Err(r) => return Outcome::Punt(r),
        Ok(mac) => mac,
    };
    match transform(frame, l3_len, out.mac, mac) {
        Err(r) => Outcome::Drop(r),
        Ok(()) => Outcome::Tx(hop.port),
    }
}

fn eth(dst: EthernetAddress, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0; ethernet::HEADER_LEN + payload.len()];
    let mut frame = ethernet::EthernetFrame::new_unchecked(&mut f[..]);
    EthernetRepr {
        src_addr: HOST_A,
        dst_addr: dst,
        ethertype,
    }
    .emit(&mut frame);
    frame.payload_mut().copy_from_slice(payload);
    f
}

/// An IPv4 frame to MAC0 carrying 8 bytes of UDP-looking payload.
fn v4(src: &str, dst: &str, ttl: u8) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src.parse().unwrap(),
        dst_addr: dst.parse().unwrap(),
        next_header: IpProtocol::Udp,
        payload_len: 8,
        hop_limit: ttl,
    };
    let mut ipb = vec![0; 28];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut ipb[..]));
    eth(MAC0, EtherType::Ipv4, &ipb)
}

/// An IPv6 frame to `dst_mac` with `payload`.
fn v6_to(
    dst_mac: EthernetAddress,
    src: &str,
    dst: &str,
    hop_limit: u8,
    next: IpProtocol,
    payload: &[u8],
) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: src.parse().unwrap(),
        dst_addr: dst.parse().unwrap(),
        next_header: next,
        payload_len: payload.len(),
        hop_limit,
    };
    let mut ipb = vec![0; 40 + payload.len()];
    let mut p = Ipv6Packet::new_unchecked(&mut ipb[..]);
    repr.emit(&mut p);
    p.payload_mut().copy_from_slice(payload);
    eth(dst_mac, EtherType::Ipv6, &ipb)
}

fn v6(src: &str, dst: &str, hop_limit: u8) -> Vec<u8> {
    v6_to(
        MAC0,
        src,
        dst,
        hop_limit,
        IpProtocol::Udp,
        &[0x9c, 0x40, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00],
    )
}

// Ethernet: broadcast <- 52:54:00:12:34:56, ARP.
// ARP request: who has 192.168.1.1? tell 192.168.1.100 (52:54:00:12:34:56).
static ARP_FRAME: [u8; 42] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06, //
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, //
    0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0xc0, 0xa8, 0x01, 0x64, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xa8, 0x01, 0x01,
];

// Ethernet: 02:00:00:00:00:01 <- 52:54:00:12:34:56, IPv4.
// IPv4: 192.168.1.100 -> 10.0.0.5, total length 28, ident 1, TTL 64, UDP, checksum 0xaebf.
// UDP: 40000 -> 53, length 8, checksum 0 (none).
static TRANSIT_V4_BEFORE: [u8; 42] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x00, //
    0x45, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0xae, 0xbf, //
    0xc0, 0xa8, 0x01, 0x64, 0x0a, 0x00, 0x00, 0x05, //
    0x9c, 0x40, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00,
];

// The same packet leaving port 1: Ethernet 52:54:00:aa:bb:cc <- 02:00:00:00:00:02,
// TTL 63, checksum 0xafbf (computed with Python), UDP unchanged.
static TRANSIT_V4_AFTER: [u8; 42] = [
    0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, //
    0x45, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x3f, 0x11, 0xaf, 0xbf, //
    0xc0, 0xa8, 0x01, 0x64, 0x0a, 0x00, 0x00, 0x05, //
    0x9c, 0x40, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00,
];

fn ns_frame() -> Vec<u8> {
    // The IPv6 NS golden packet (2001:db8::1 asks for 2001:db8::2) to 33:33:ff:00:00:02.
    let ns = &crate::wire::ipv6::test::NS_BYTES;
    eth(
        EthernetAddress([0x33, 0x33, 0xff, 0x00, 0x00, 0x02]),
        EtherType::Ipv6,
        ns,
    )
}

fn echo_to_us() -> Vec<u8> {
    // The IPv4 ICMP echo golden packet, 192.168.1.100 -> 192.168.1.1.
    eth(MAC0, EtherType::Ipv4, &crate::wire::ipv4::test::ECHO_BYTES)
}

#[test]
fn classify_golden_frames() {
    let local = local();
    let mut padded = TRANSIT_V4_BEFORE.to_vec();
    padded.resize(60, 0); // minimum Ethernet frame without FCS
    let mut ttl1 = v4("192.168.1.100", "10.0.0.5", 1);
    let ttl1_len = ttl1.len();
    let cases: Vec<(&str, Vec<u8>, Result<Class, DropReason>)> = vec![
        (
            "arp request",
            ARP_FRAME.to_vec(),
            Ok(Class::Punt(PuntReason::Arp)),
        ),
        (
            "neighbor solicitation",
            ns_frame(),
            Ok(Class::Punt(PuntReason::NeighborDiscovery)),
        ),
        (
            "echo to us",
            echo_to_us(),
            Ok(Class::Punt(PuntReason::Local)),
        ),
        (
            "transit v4",
            TRANSIT_V4_BEFORE.to_vec(),
            Ok(Class::Route {
                dst: ip("10.0.0.5"),
                l3_len: 28,
            }),
        ),
        (
            "padded transit v4",
            padded,
            Ok(Class::Route {
                dst: ip("10.0.0.5"),
                l3_len: 28,
            }),
        ),
        (
            "transit v6",
            v6("2001:db8::1", "2001:db8:1::5", 64),
            Ok(Class::Route {
                dst: ip("2001:db8:1::5"),
                l3_len: 48,
            }),
        ),
        (
            "ttl 1",
            std::mem::take(&mut ttl1),
            Ok(Class::Punt(PuntReason::TtlExceeded)),
        ),
        (
            "hop limit 1",
            v6("2001:db8::1", "2001:db8:1::5", 1),
            Ok(Class::Punt(PuntReason::TtlExceeded)),
        ),
        (
            "ttl 1 to us is local",
            v4("192.168.1.100", "10.0.0.1", 1),
            Ok(Class::Punt(PuntReason::Local)),
        ),
        (
            "v6 to link-local of port 0",
            v6("fe80::5054:ff:fe12:3456", "fe80::ff:fe00:1", 64),
            Ok(Class::Punt(PuntReason::Local)),
        ),
        (
            "v6 to all-nodes",
            v6_to(MAC0, "fe80::1", "ff02::1", 1, IpProtocol::Udp, &[0; 8]),
            Ok(Class::Punt(PuntReason::Local)),
        ),
        (
            "v6 to other group",
            v6_to(MAC0, "fe80::1", "ff02::fb", 255, IpProtocol::Udp, &[0; 8]),
            Err(DropReason::NotForUs),
        ),
        (
            "DAD probe",
            v6_to(
                MAC0,
                "::",
                "ff02::1:ff00:2",
                255,
                IpProtocol::Icmpv6,
                &[135, 0, 0, 0],
            ),
            Ok(Class::Punt(PuntReason::NeighborDiscovery)),
        ),
        (
            "v4 broadcast",
            v4("192.168.1.100", "255.255.255.255", 64),
            Err(DropReason::NotForUs),
        ),
        (
            "v4 directed broadcast",
            v4("192.168.1.100", "10.0.0.255", 64),
            Err(DropReason::NotForUs),
        ),
        (
            "v4 multicast",
            v4("192.168.1.100", "224.0.0.5", 1),
            Err(DropReason::NotForUs),
        ),
        (
            "transit v6 from ::",
            v6("::", "2001:db8:1::5", 64),
            Err(DropReason::MartianSource),
        ),
        (
            "transit v6 from link-local",
            v6("fe80::1", "2001:db8:1::5", 64),
            Err(DropReason::Unroutable),
        ),
        (
            "v6 to someone's link-local",
            v6("fe80::1", "fe80::2", 64),
            Err(DropReason::NotForUs),
        ),
        (
            "v6 to ::1",
            v6("2001:db8::1", "::1", 64),
            Err(DropReason::Unroutable),
        ),
    ];
    assert_eq!(ttl1_len, 42);
    for (name, frame, want) in cases {
        assert_eq!(classify(&frame, 0, &local), want, "{name}");
    }
    // A unicast IP packet that arrived as a link-layer broadcast is not forwarded...
    let mut bcast = TRANSIT_V4_BEFORE;
    bcast[..6].copy_from_slice(&[0xff; 6]);
    assert_eq!(classify(&bcast, 0, &local), Err(DropReason::NotForUs));
    // ...but one for us is accepted.
    let mut bcast_echo = echo_to_us();
    bcast_echo[..6].copy_from_slice(&[0xff; 6]);
    assert_eq!(
        classify(&bcast_echo, 0, &local),
        Ok(Class::Punt(PuntReason::Local))
    );
}

#[test]
fn forward_golden_v4() {
    let mut frame = TRANSIT_V4_BEFORE;
    assert_eq!(run(&mut frame, 0), Outcome::Tx(1));
    assert_eq!(frame, TRANSIT_V4_AFTER);
    assert!(Ipv4Packet::new_checked(&frame[14..])
        .unwrap()
        .verify_checksum());

    // The padded copy gets the same header rewrite; the padding is the worker's to trim.
    let mut padded = TRANSIT_V4_BEFORE.to_vec();
    padded.resize(60, 0);
    assert_eq!(run(&mut padded, 0), Outcome::Tx(1));
    assert_eq!(&padded[..42], &TRANSIT_V4_AFTER[..]);
}

#[test]
fn forward_golden_v6() {
    let mut frame = v6("2001:db8::1", "2001:db8:1::5", 64);
    let before = frame.clone();
    assert_eq!(run(&mut frame, 0), Outcome::Tx(1));
    assert_eq!(&frame[..6], &HOST_B.0);
    assert_eq!(&frame[6..12], &MAC1.0);
    assert_eq!(frame[14 + 7], 63);
    // Nothing else changed.
    assert_eq!(&frame[12..21], &before[12..21]);
    assert_eq!(&frame[22..], &before[22..]);
}

#[test]
fn gateway_route_and_misses() {
    // 172.16.0.9 goes via 10.0.0.254, whose MAC is known.
    assert_eq!(
        run(&mut v4("192.168.1.100", "172.16.0.9", 64), 0),
        Outcome::Tx(1)
    );
    // 10.0.0.6 is connected but not resolved.
    assert_eq!(
        run(&mut v4("192.168.1.100", "10.0.0.6", 64), 0),
        Outcome::Punt(PuntReason::NeighborMiss)
    );
    // Too big for the output port.
    let local = local();
    assert_eq!(
        check_mtu(1501, local.port(1).unwrap().mtu),
        Err(PuntReason::MtuExceeded)
    );
    assert_eq!(check_mtu(1500, 1500), Ok(()));
}

/// Runs `frame` and records the drop reason, asserting it is `want`.
fn expect_drop(seen: &mut BTreeSet<DropReason>, frame: &mut [u8], in_port: u16, want: DropReason) {
    assert_eq!(run(frame, in_port), Outcome::Drop(want), "{want:?}");
    seen.insert(want);
}

#[test]
fn every_drop_reason_is_reachable() {
    let mut seen = BTreeSet::new();
    let s = &mut seen;
    expect_drop(
        s,
        &mut TRANSIT_V4_BEFORE[..13].to_vec(),
        0,
        DropReason::TruncatedFrame,
    );
    expect_drop(
        s,
        &mut TRANSIT_V4_BEFORE.to_vec(),
        7,
        DropReason::UnknownPort,
    );
    let mut lldp = TRANSIT_V4_BEFORE;
    lldp[12..14].copy_from_slice(&[0x88, 0xcc]);
    expect_drop(s, &mut lldp, 0, DropReason::UnknownEtherType);
    let mut vlan = TRANSIT_V4_BEFORE;
    vlan[12..14].copy_from_slice(&[0x81, 0x00]);
    expect_drop(s, &mut vlan, 0, DropReason::UnknownEtherType);
    let mut other_mac = TRANSIT_V4_BEFORE;
    other_mac[5] = 0x99;
    expect_drop(s, &mut other_mac, 0, DropReason::NotForUs);
    expect_drop(s, &mut ARP_FRAME[..30].to_vec(), 0, DropReason::BadArp);
    let mut bad_version = TRANSIT_V4_BEFORE;
    bad_version[14] = 0x65;
    expect_drop(s, &mut bad_version, 0, DropReason::BadIpVersion);
    let mut ihl4 = TRANSIT_V4_BEFORE;
    ihl4[14] = 0x44;
    expect_drop(s, &mut ihl4, 0, DropReason::BadIpv4Length);
    let mut long_total = TRANSIT_V4_BEFORE;
    long_total[17] = 29;
    expect_drop(s, &mut long_total, 0, DropReason::BadIpv4Length);
    let mut short_total = TRANSIT_V4_BEFORE;
    short_total[17] = 19;
    expect_drop(s, &mut short_total, 0, DropReason::BadIpv4Length);
    expect_drop(
        s,
        &mut TRANSIT_V4_BEFORE[..30].to_vec(),
        0,
        DropReason::BadIpv4Length,
    );
    let mut bad_csum = TRANSIT_V4_BEFORE;
    bad_csum[25] ^= 0x01;
    expect_drop(s, &mut bad_csum, 0, DropReason::BadIpv4Checksum);
    let mut v6_long = v6("2001:db8::1", "2001:db8:1::5", 64);
    v6_long[14 + 5] = 9; // payload length 9 > 8 bytes present
    expect_drop(s, &mut v6_long, 0, DropReason::BadIpv6Length);
    expect_drop(
        s,
        &mut v6("2001:db8::1", "2001:db8:1::5", 64)[..50].to_vec(),
        0,
        DropReason::BadIpv6Length,
    );
    expect_drop(
        s,
        &mut v4("127.0.0.1", "10.0.0.5", 64),
        0,
        DropReason::MartianSource,
    );
    expect_drop(
        s,
        &mut v4("224.0.0.1", "10.0.0.5", 64),
        0,
        DropReason::MartianSource,
    );
    expect_drop(
        s,
        &mut v4("0.0.0.0", "192.168.1.1", 64),
        0,
        DropReason::MartianSource,
    );
    expect_drop(
        s,
        &mut v6("ff02::1", "2001:db8:1::5", 64),
        0,
        DropReason::MartianSource,
    );
    expect_drop(
        s,
        &mut v4("10.0.0.1", "192.168.1.100", 64),
        0,
        DropReason::OwnSource,
    );
    expect_drop(
        s,
        &mut v4("192.168.1.100", "127.0.0.1", 64),
        0,
        DropReason::Unroutable,
    );
    expect_drop(
        s,
        &mut v4("192.168.1.100", "240.0.0.1", 64),
        0,
        DropReason::Unroutable,
    );
    expect_drop(
        s,
        &mut v4("192.168.1.100", "8.8.8.8", 64),
        0,
        DropReason::NoRoute,
    );
    expect_drop(
        s,
        &mut v6("2001:db8::1", "2001:db8:2::1", 64),
        0,
        DropReason::NoRoute,
    );
    // transform refuses a TTL-1 packet (classify would have punted it).
    let mut ttl1 = v4("192.168.1.100", "10.0.0.5", 1);
    assert_eq!(
        transform(&mut ttl1, 28, MAC1, HOST_B),
        Err(DropReason::TtlExpired)
    );
    seen.insert(DropReason::TtlExpired);
    let all: BTreeSet<DropReason> = DropReason::ALL.iter().copied().collect();
    assert_eq!(seen, all);
}

#[test]
fn transform_rejects_inconsistent_input() {
    let mut frame = TRANSIT_V4_BEFORE;
    assert_eq!(
        transform(&mut frame, 29, MAC1, HOST_B),
        Err(DropReason::TruncatedFrame)
    );
    assert_eq!(
        transform(&mut frame, usize::MAX, MAC1, HOST_B),
        Err(DropReason::TruncatedFrame)
    );
    assert_eq!(
        transform(&mut frame, 19, MAC1, HOST_B),
        Err(DropReason::BadIpv4Length)
    );
    assert_eq!(
        transform(&mut ARP_FRAME.clone(), 28, MAC1, HOST_B),
        Err(DropReason::UnknownEtherType)
    );
    assert_eq!(
        frame, TRANSIT_V4_BEFORE,
        "a refused frame is left untouched"
    );
}

#[test]
fn reasons_names_tags_and_counters() {
    for (i, r) in DropReason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i);
        assert_eq!(DropReason::from_u8(i as u8), Some(*r));
    }
    assert_eq!(DropReason::BadIpv4Checksum.name(), "bad_ipv4_checksum");
    assert_eq!(DropReason::from_u8(DropReason::COUNT as u8), None);
    let names: BTreeSet<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(names.len(), DropReason::COUNT, "names are unique");
    assert!(names.iter().all(|n| n
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')));
    for (i, r) in PuntReason::ALL.iter().enumerate() {
        assert_eq!(PuntReason::from_u8(*r as u8), Some(*r));
        assert_eq!(*r as usize, i);
    }
    assert_eq!(PuntReason::from_u8(200), None);
    assert_eq!(PuntReason::from_u8(PuntReason::COUNT as u8), None);
    assert_eq!(PuntReason::NeighborMiss.to_string(), "neighbor_miss");

    let mut a = DropCounters::default();
    a.bump(DropReason::NoRoute);
    a.bump(DropReason::NoRoute);
    let mut b = DropCounters::default();
    b.bump(DropReason::NotForUs);
    b.add(DropReason::NoRoute, 3);
    a.merge(&b);
    assert_eq!(a.get(DropReason::NoRoute), 5);
    assert_eq!(a.get(DropReason::NotForUs), 1);
    assert_eq!(a.total(), 6);
    let listed: Vec<(&str, u64)> = a.iter().filter(|(_, v)| *v > 0).collect();
    assert_eq!(listed, [("not_for_us", 1), ("no_route", 5)]);
    a.clear();
    assert_eq!(a.total(), 0);
    let mut p = PuntCounters::default();
    p.bump(PuntReason::Arp);
    assert_eq!(p.iter().next(), Some(("arp", 1)));
}

#[test]
fn local_info() {
    let local = local();
    assert!(local.is_local(ip("192.168.1.1")));
    assert!(local.is_local(ip("2001:db8:1::1")));
    assert!(
        local.is_local(ip("fe80::ff:fe00:2")),
        "automatic link-local of port 1"
    );
    assert!(!local.is_local(ip("192.168.1.2")));
    assert!(local.is_joined_group(&"ff02::1:ff00:2".parse().unwrap()));
    assert!(local.is_joined_group(&"ff02::2".parse().unwrap()));
    assert!(!local.is_joined_group(&"ff02::1:ff00:3".parse().unwrap()));
    assert_eq!(local.port(1).unwrap().mac, MAC1);
    assert!(local.port(2).is_none() && local.port(u16::MAX).is_none());
    assert!(local.port(0).unwrap().has_addr(ip("fe80::ff:fe00:1")));
    assert_eq!(
        eui64_link_local(HOST_A),
        "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(
        pa("10.0.0.1", 24).network().unwrap().to_string(),
        "10.0.0.0/24"
    );
}

proptest! {
    #[test]
    fn incremental_ttl_checksum_matches_full(
        words in proptest::collection::vec(any::<u8>(), 60),
        ihl in 5u8..=15,
        ttl in 2u8..=255,
    ) {
        let mut hdr = words;
        hdr[0] = 0x40 | ihl;
        let len = usize::from(ihl) * 4;
        hdr[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        hdr[8] = ttl;
        let hdr = &mut hdr[..len];
        let mut p = Ipv4Packet::new_checked(&mut hdr[..]).unwrap();
        p.fill_checksum();
        p.decrement_ttl();
        prop_assert_eq!(p.ttl(), ttl - 1);
        prop_assert!(p.verify_checksum());
        let incremental = p.checksum();
        p.fill_checksum();
        prop_assert_eq!(incremental, p.checksum());
    }

    #[test]
    fn classify_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128), port in 0u16..3) {
        let _ = classify(&bytes, port, &local());
    }

    #[test]
    fn pipeline_never_panics_on_plausible_frames(
        ethertype in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x0806)],
        first in prop_oneof![Just(0x45u8), Just(0x60), any::<u8>()],
        rest in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let mut frame = MAC0.0.to_vec();
        frame.extend_from_slice(&HOST_A.0);
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.push(first);
        frame.extend_from_slice(&rest);
        let _ = run(&mut frame, 0);
    }

    #[test]
    fn mutated_golden_frames_never_panic(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
    ) {
        let mut frame = match which {
            0 => ARP_FRAME.to_vec(),
            1 => ns_frame(),
            2 => echo_to_us(),
            _ => TRANSIT_V4_BEFORE.to_vec(),
        };
        for (at, x) in flips {
            let n = frame.len();
            frame[at % n] ^= x;
        }
        let n = frame.len();
        frame.truncate(cut % (n + 1));
        if let Ok(Class::Route { l3_len, .. }) = classify(&frame, 0, &local()) {
            prop_assert!(ethernet::HEADER_LEN + l3_len <= frame.len());
        }
        let _ = run(&mut frame, 0);
    }
}

/// A packet with one of the router's own addresses as source, arriving on any port (the WAN
/// included), is dropped as a martian and counted; it is never routed back out (a reflection
/// loop) nor punted, whatever its destination.
#[test]
fn own_source_is_a_counted_martian() {
    let mut cases = vec![
        // Another port's address (port 1, say the WAN), routed towards port 0's network.
        (v4("10.0.0.1", "192.168.1.100", 64), 0),
        // The receiving port's own address, routed out of another port.
        (v4("192.168.1.1", "10.0.0.5", 64), 0),
        // To the router itself.
        (v4("192.168.1.1", "192.168.1.1", 64), 0),
        (v4("10.0.0.1", "192.168.1.1", 64), 0),
        (v6("2001:db8:1::1", "2001:db8::5", 64), 0),
        (v6("2001:db8::2", "2001:db8:1::5", 64), 0),
        (v6("2001:db8::2", "2001:db8::2", 64), 0),
    ];
    // The automatic link-local address too.
    let ll = local().port(0).unwrap().link_local_v6().to_string();
    cases.push((v6(&ll, "2001:db8:1::5", 64), 0));
    for (frame, port) in &mut cases {
        let got = run(frame, *port);
        assert_eq!(got, Outcome::Drop(DropReason::OwnSource), "{frame:02x?}");
    }
    // Its own counter (the worker counts every DropReason in its DropCounters slot).
    assert_eq!(DropReason::OwnSource.name(), "martian_own_source");
    // A neighbour's address on the same networks still passes.
    assert_eq!(
        run(&mut v4("192.168.1.100", "10.0.0.5", 64), 0),
        Outcome::Tx(1)
    );
    assert_eq!(
        run(&mut v6("2001:db8::1", "2001:db8:1::5", 64), 0),
        Outcome::Tx(1)
    );
}
