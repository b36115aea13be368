//! `SlowPath::send_ip`: IP packets the caller builds (BFD of SVR peer paths) are routed,
//! their next hop resolved (the packet held meanwhile), and sent in a frame from the egress
//! port's MAC.

mod common;

use common::*;
use fastpath::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use fastpath::wire::ipv6::{Ipv6Packet, Ipv6Repr};
use fastpath::wire::IpProtocol;

fn ipv4(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src.parse().unwrap(),
        dst_addr: dst.parse().unwrap(),
        next_header: IpProtocol::Udp,
        payload_len: payload.len(),
        hop_limit: 255,
    };
    let mut p = vec![0u8; 20 + payload.len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut p[..]));
    p[20..].copy_from_slice(payload);
    p
}

fn ipv6(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: src.parse().unwrap(),
        dst_addr: dst.parse().unwrap(),
        next_header: IpProtocol::Udp,
        payload_len: payload.len(),
        hop_limit: 255,
    };
    let mut p = vec![0u8; 40 + payload.len()];
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut p[..]));
    p[40..].copy_from_slice(payload);
    p
}

#[test]
fn routed_to_a_static_next_hop_at_once() {
    let mut h = Harness::new();
    let pkt = ipv4("198.51.100.1", "203.0.113.5", b"bfd-control-packet");
    h.sp.send_ip(h.now, &pkt);
    let tx = h.transmits();
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].port, WAN);
    assert_eq!(&tx[0].frame[0..6], &GW.0);
    assert_eq!(&tx[0].frame[6..12], &R1.0);
    assert_eq!(&tx[0].frame[12..14], &[0x08, 0x00]);
    assert_eq!(&tx[0].frame[14..], &pkt[..]);
    assert_eq!(h.counter("ip_originated"), 1);
}

#[test]
fn held_while_the_next_hop_resolves() {
    let mut h = Harness::new();
    let pkt = ipv6("2001:db8:2::1", "2001:db8:2::99", b"bfd");
    h.sp.send_ip(h.now, &pkt);
    let tx = h.transmits();
    // A Neighbor Solicitation goes out; the packet waits for the answer.
    assert_eq!(tx.len(), 1, "{tx:?}");
    assert_eq!(&tx[0].frame[12..14], &[0x86, 0xdd]);
    assert_eq!(tx[0].frame[14 + 40], 135, "ICMPv6 Neighbor Solicitation");
    assert_eq!(h.sp.held_frame_count(), 1);
    assert_eq!(h.counter("neighbor_probes_sent"), 1);
}

#[test]
fn refuses_what_is_not_our_ip_packet() {
    let mut h = Harness::new();
    h.sp.send_ip(h.now, &ipv4("203.0.113.9", "198.51.100.254", b"x"));
    h.sp.send_ip(h.now, b"\x45\x00");
    h.sp.send_ip(h.now, b"");
    h.sp.send_ip(h.now, &[0x70; 60]);
    assert!(h.transmits().is_empty());
    assert_eq!(h.counter("ip_originated_invalid"), 4);
    assert_eq!(h.counter("ip_originated"), 0);
}
