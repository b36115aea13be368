//! Exact output bytes for the messages the slow path answers, against frames built by an
//! independent script (see `common/mod.rs`).

mod common;

use common::*;
use fastpath::wire::icmpv4::Icmpv4Packet;
use fastpath::wire::icmpv6::Icmpv6Packet;
use fastpath::wire::ipv4::Ipv4Packet;
use slowpath::{Event, NeighborState};

fn learn_host_a(h: &mut Harness) {
    h.frame(LAN, PuntReason::Arp, ARP_REQUEST);
    h.transmits();
    h.events();
}

#[test]
fn arp_request_for_us_gets_exact_reply_and_learns_sender() {
    let mut h = Harness::new();
    h.frame(LAN, PuntReason::Arp, ARP_REQUEST);
    let tx = h.transmits();
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].port, LAN);
    assert_eq!(hex::encode(&tx[0].frame), ARP_REPLY);
    assert_eq!(
        h.sp.neighbor_state(LAN, v4("192.0.2.10")),
        Some(NeighborState::Stale(HA))
    );
    assert_eq!(
        h.events(),
        vec![
            Event::NeighborAdded {
                port: LAN,
                addr: v4("192.0.2.10"),
                mac: HA
            },
            Event::NeighborsChanged
        ]
    );
    assert_eq!(h.sp.neighbors().get(LAN, v4("192.0.2.10")), Some(HA));
    assert_eq!(h.counter("arp_replies_sent"), 1);
}

#[test]
fn arp_request_for_another_port_or_host_is_ignored_and_counted() {
    let mut h = Harness::new();
    // Same request on the wan port: 192.0.2.1 belongs to the lan port.
    h.frame(WAN, PuntReason::Arp, ARP_REQUEST);
    // Request for 192.0.2.99 on the lan.
    let mut other = hex::decode(ARP_REQUEST).unwrap();
    other[41] = 99;
    h.raw(LAN, PuntReason::Arp, &other);
    assert!(h.transmits().is_empty());
    assert_eq!(h.counter("arp_not_for_us"), 2);
    assert_eq!(h.sp.neighbor_state(LAN, v4("192.0.2.10")), None);
    assert_eq!(h.sp.neighbor_state(WAN, v4("192.0.2.10")), None);
}

#[test]
fn ns_gets_exact_na_with_valid_checksum() {
    let mut h = Harness::new();
    h.frame(LAN, PuntReason::NeighborDiscovery, NS);
    let tx = h.transmits();
    assert_eq!(tx.len(), 1);
    assert_eq!(hex::encode(&tx[0].frame), NA);
    // Checksum checked twice more: by fastpath and by the test's own sum.
    let icmp = Icmpv6Packet::new_checked(&tx[0].frame[54..]).unwrap();
    let (src, dst) = (
        "2001:db8:1::1".parse().unwrap(),
        "2001:db8:1::10".parse().unwrap(),
    );
    assert!(icmp.verify_checksum(&src, &dst));
    assert!(icmpv6_checksum_ok(&tx[0].frame));
    assert_eq!(
        h.sp.neighbor_state(LAN, v6("2001:db8:1::10")),
        Some(NeighborState::Stale(HA))
    );
    assert_eq!(h.counter("nd_advertisements_sent"), 1);
}

#[test]
fn ns_for_link_local_address_is_answered() {
    let mut h = Harness::new();
    // NS for fe80::ff:fe00:1 (EUI-64 of R0) from fe80::5054:ff:fe00:a.
    let mut f = hex::decode(NS).unwrap();
    let ll_src: std::net::Ipv6Addr = "fe80::5054:ff:fe00:a".parse().unwrap();
    let target: std::net::Ipv6Addr = "fe80::ff:fe00:1".parse().unwrap();
    f[22..38].copy_from_slice(&ll_src.octets());
    f[62..78].copy_from_slice(&target.octets());
    fix_icmpv6_checksum(&mut f);
    h.raw(LAN, PuntReason::NeighborDiscovery, &f);
    let tx = h.transmits();
    assert_eq!(tx.len(), 1, "{:?}", h.sp.counters());
    assert_eq!(&tx[0].frame[22..38], &target.octets());
    assert_eq!(&tx[0].frame[38..54], &ll_src.octets());
    assert!(icmpv6_checksum_ok(&tx[0].frame));
}

#[test]
fn dad_ns_is_answered_to_all_nodes_without_solicited_flag() {
    let mut h = Harness::new();
    // NS from :: (no source link-layer option allowed).
    let mut f = hex::decode(NS).unwrap();
    f[22..38].fill(0);
    f.truncate(f.len() - 8);
    f[18..20].copy_from_slice(&24u16.to_be_bytes());
    fix_icmpv6_checksum(&mut f);
    h.raw(LAN, PuntReason::NeighborDiscovery, &f);
    let tx = h.transmits();
    assert_eq!(tx.len(), 1, "{:?}", h.sp.counters());
    let na = &tx[0].frame;
    assert_eq!(&na[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!(
        &na[38..54],
        &"ff02::1".parse::<std::net::Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(na[58], 0xa0, "R and O, not S");
    assert!(icmpv6_checksum_ok(na));
    assert_eq!(h.sp.dynamic_neighbor_count(), 0);
}

#[test]
fn nd_with_bad_hop_limit_or_checksum_is_dropped() {
    let mut h = Harness::new();
    let mut f = hex::decode(NS).unwrap();
    f[21] = 64;
    h.raw(LAN, PuntReason::NeighborDiscovery, &f);
    assert_eq!(h.counter("nd_bad_hop_limit"), 1);
    let mut f = hex::decode(NS).unwrap();
    f[60] ^= 0xff;
    h.raw(LAN, PuntReason::NeighborDiscovery, &f);
    assert_eq!(h.counter("icmp_bad_checksum"), 1);
    assert!(h.transmits().is_empty());
    assert_eq!(h.sp.dynamic_neighbor_count(), 0);
}

#[test]
fn echo_v4_gets_exact_reply() {
    let mut h = Harness::new();
    learn_host_a(&mut h);
    h.frame(LAN, PuntReason::Local, ECHO4_REQ);
    let tx = h.transmits();
    // The reply, then a unicast ARP probe: an entry learned from a request is Stale
    // (RFC 4861 §7.2.3 rules) and its first use re-confirms it in the background.
    assert_eq!(tx.len(), 2);
    assert_eq!(hex::encode(&tx[0].frame), ECHO4_REPLY);
    assert_eq!(&tx[1].frame[0..6], &HA.0);
    assert_eq!(&tx[1].frame[12..14], &[0x08, 0x06]);
    assert_eq!(h.counter("neighbor_probes_sent"), 1);
    let ip = Ipv4Packet::new_checked(&tx[0].frame[14..]).unwrap();
    assert!(ip.verify_checksum());
    assert!(Icmpv4Packet::new_checked(ip.payload())
        .unwrap()
        .verify_checksum());
    assert!(icmpv4_checksums_ok(&tx[0].frame));
}

#[test]
fn echo_v4_with_bad_checksums_is_dropped() {
    let mut h = Harness::new();
    learn_host_a(&mut h);
    let mut f = hex::decode(ECHO4_REQ).unwrap();
    f[24] ^= 1; // IPv4 header checksum
    h.raw(LAN, PuntReason::Local, &f);
    let mut f = hex::decode(ECHO4_REQ).unwrap();
    f[36] ^= 1; // ICMP checksum
    h.raw(LAN, PuntReason::Local, &f);
    assert!(h.transmits().is_empty());
    assert_eq!(h.counter("ipv4_bad_checksum"), 1);
    assert_eq!(h.counter("icmp_bad_checksum"), 1);
}

#[test]
fn echo_v6_gets_exact_reply() {
    let mut h = Harness::new();
    h.frame(LAN, PuntReason::NeighborDiscovery, NS); // learns host A
    h.transmits();
    h.frame(LAN, PuntReason::Local, ECHO6_REQ);
    let tx = h.transmits();
    assert_eq!(
        tx.len(),
        2,
        "reply and a unicast NS probe of the Stale entry"
    );
    // The probe: NS to the neighbour's own address and MAC.
    assert_eq!(&tx[1].frame[0..6], &HA.0);
    assert_eq!(tx[1].frame[54], 135);
    assert_eq!(hex::encode(&tx[0].frame), ECHO6_REPLY);
    assert!(icmpv6_checksum_ok(&tx[0].frame));
}

#[test]
fn time_exceeded_v4_quotes_the_packet() {
    let mut h = Harness::new();
    h.frame(WAN, PuntReason::TtlExceeded, TTL4_IN);
    let tx = h.transmits();
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].port, WAN);
    assert_eq!(hex::encode(&tx[0].frame), TE4_OUT);
    assert!(icmpv4_checksums_ok(&tx[0].frame));
    let ip = Ipv4Packet::new_checked(&tx[0].frame[14..]).unwrap();
    assert!(Icmpv4Packet::new_checked(ip.payload())
        .unwrap()
        .verify_checksum());
    assert_eq!(h.counter("icmp_errors_sent"), 1);
}

#[test]
fn time_exceeded_v6_quotes_the_packet() {
    let mut h = Harness::new();
    h.frame(WAN, PuntReason::TtlExceeded, TTL6_IN);
    let tx = h.transmits();
    assert_eq!(tx.len(), 1);
    assert_eq!(hex::encode(&tx[0].frame), TE6_OUT);
    assert!(icmpv6_checksum_ok(&tx[0].frame));
}

#[test]
fn time_exceeded_quote_is_capped_at_576_and_1280_bytes() {
    let mut h = Harness::new();
    // A 1400-byte IPv4 UDP packet with TTL 1.
    let mut f = hex::decode(TTL4_IN).unwrap();
    let total = 1400u16;
    f.resize(14 + usize::from(total), 0x55);
    f[16..18].copy_from_slice(&total.to_be_bytes());
    fix_ipv4_checksum(&mut f);
    h.raw(WAN, PuntReason::TtlExceeded, &f);
    let tx = h.transmits();
    assert_eq!(tx[0].frame.len(), 14 + 576);
    assert!(icmpv4_checksums_ok(&tx[0].frame));
    assert_eq!(&tx[0].frame[14 + 28..], &f[14..14 + 548]);

    let mut f = hex::decode(TTL6_IN).unwrap();
    f.resize(14 + 40 + 1400, 0x66);
    f[18..20].copy_from_slice(&1400u16.to_be_bytes());
    h.raw(WAN, PuntReason::TtlExceeded, &f);
    let tx = h.transmits();
    assert_eq!(tx[0].frame.len(), 14 + 1280);
    assert!(icmpv6_checksum_ok(&tx[0].frame));
}

#[test]
fn no_icmp_errors_about_errors_multicast_or_later_fragments() {
    let mut h = Harness::new();
    let base = hex::decode(TTL4_IN).unwrap();
    // Destination multicast.
    let mut f = base.clone();
    f[30..34].copy_from_slice(&[224, 0, 0, 5]);
    fix_ipv4_checksum(&mut f);
    h.raw(WAN, PuntReason::TtlExceeded, &f);
    // Non-first fragment.
    let mut f = base.clone();
    f[20..22].copy_from_slice(&0x0010u16.to_be_bytes());
    fix_ipv4_checksum(&mut f);
    h.raw(WAN, PuntReason::TtlExceeded, &f);
    // An ICMP error (type 3) itself.
    let mut f = base.clone();
    f[23] = 1;
    f[34] = 3;
    fix_ipv4_checksum(&mut f);
    h.raw(WAN, PuntReason::TtlExceeded, &f);
    // Link-layer broadcast.
    let mut f = base.clone();
    f[0..6].fill(0xff);
    h.raw(WAN, PuntReason::TtlExceeded, &f);
    // IPv6: an ICMPv6 error, and a multicast destination.
    let b6 = hex::decode(TTL6_IN).unwrap();
    let mut f = b6.clone();
    f[20] = 58;
    f[54] = 1;
    h.raw(WAN, PuntReason::TtlExceeded, &f);
    let mut f = b6;
    f[38] = 0xff;
    h.raw(WAN, PuntReason::TtlExceeded, &f);
    assert!(h.transmits().is_empty());
    assert_eq!(h.counter("icmp_error_suppressed"), 6);
    assert_eq!(h.counter("icmp_errors_sent"), 0);
}

#[test]
fn icmp_errors_are_rate_limited_by_a_token_bucket() {
    let mut h = Harness::new();
    let f = hex::decode(TTL4_IN).unwrap();
    for _ in 0..60 {
        h.raw(WAN, PuntReason::TtlExceeded, &f);
    }
    assert_eq!(h.transmits().len(), 50);
    assert_eq!(h.counter("icmp_error_rate_limited"), 10);
    h.advance(std::time::Duration::from_millis(10));
    h.raw(WAN, PuntReason::TtlExceeded, &f);
    h.raw(WAN, PuntReason::TtlExceeded, &f);
    assert_eq!(h.transmits().len(), 1);
    assert_eq!(h.counter("icmp_error_rate_limited"), 11);
}

fn fix_icmpv6_checksum(f: &mut [u8]) {
    f[56..58].fill(0);
    let plen = u16::from_be_bytes([f[18], f[19]]) as usize;
    let c = internet_checksum(&[
        &f[22..38],
        &f[38..54],
        &(plen as u32).to_be_bytes(),
        &[0, 0, 0, 58],
        &f[54..54 + plen],
    ]);
    f[56..58].copy_from_slice(&c.to_be_bytes());
}
