//! An SVR packet that would not fit the WAN MTU once encrypted is punted `MtuExceeded` with
//! the MTU that fits; the slow path answers the sender with ICMP Fragmentation Needed (IPv4,
//! RFC 1191: type 3 code 4, next-hop MTU in bytes 6-7) or ICMPv6 Packet Too Big (RFC 4443
//! §3.2: type 2, MTU in bytes 4-7, never below 1280), quoting the packet, rate-limited.

mod common;

use common::*;
use fastpath::wire::ipv4::Ipv4Packet;

#[test]
fn fragmentation_needed_v4_carries_the_mtu_and_quotes_the_packet() {
    let mut h = Harness::new();
    let mut f = hex::decode(TTL4_IN).unwrap();
    f[22] = 64; // a live TTL: this packet is too big, not expiring
    let total = 1480u16;
    f.resize(14 + usize::from(total), 0x5a);
    f[16..18].copy_from_slice(&total.to_be_bytes());
    fix_ipv4_checksum(&mut f);
    h.sp.handle_too_big(h.now, WAN, &f, 1412);
    let tx = h.transmits();
    assert_eq!(tx.len(), 1);
    let out = &tx[0].frame;
    assert!(icmpv4_checksums_ok(out));
    let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
    assert_eq!(
        ip.dst_addr().octets(),
        <[u8; 4]>::try_from(&f[26..30]).unwrap(),
        "sent back to the source"
    );
    let icmp = ip.payload();
    assert_eq!(
        (icmp[0], icmp[1]),
        (3, 4),
        "destination unreachable, fragmentation needed"
    );
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1412, "next-hop MTU");
    assert_eq!(
        &icmp[8..8 + 28],
        &f[14..14 + 28],
        "quotes the IP header and 8 bytes"
    );
    assert_eq!(h.counter("mtu_exceeded"), 1);
    assert_eq!(h.counter("icmp_errors_sent"), 1);
}

#[test]
fn packet_too_big_v6_never_reports_below_1280() {
    let mut h = Harness::new();
    let mut f = hex::decode(TTL6_IN).unwrap();
    f[21] = 64; // live hop limit
    f.resize(14 + 40 + 1400, 0x66);
    f[18..20].copy_from_slice(&1400u16.to_be_bytes());
    for (offered, reported) in [(1392u16, 1392u32), (1000, 1280)] {
        h.sp.handle_too_big(h.now, WAN, &f, offered);
        let tx = h.transmits();
        assert_eq!(tx.len(), 1);
        let out = &tx[0].frame;
        assert!(icmpv6_checksum_ok(out));
        assert_eq!(
            &out[14 + 24..14 + 40],
            &f[14 + 8..14 + 24],
            "sent back to the source"
        );
        let icmp = &out[14 + 40..];
        assert_eq!((icmp[0], icmp[1]), (2, 0), "packet too big");
        assert_eq!(
            u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
            reported
        );
        assert!(
            out.len() <= 14 + 1280,
            "the error itself fits the IPv6 minimum MTU"
        );
    }
}

#[test]
fn too_big_errors_are_rate_limited() {
    let mut h = Harness::new();
    let mut f = hex::decode(TTL4_IN).unwrap();
    f[22] = 64;
    fix_ipv4_checksum(&mut f);
    for _ in 0..60 {
        h.sp.handle_too_big(h.now, WAN, &f, 1400);
    }
    assert_eq!(h.transmits().len(), 50, "burst of the default token bucket");
    assert_eq!(h.counter("icmp_error_rate_limited"), 10);
    assert_eq!(h.counter("mtu_exceeded"), 60);
}
