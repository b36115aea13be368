//! The inner-packet views of `fastpath::wire` (Ethernet, IPv4, IPv6, UDP, TCP, ICMPv4,
//! ICMPv6, ARP) and `forward::classify` on arbitrary frames: nothing may panic, and a route
//! decision's `l3_len` must fit in the frame.
#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;

use fastpath::forward::{classify, Class, LocalInfo, PortAddrs};
use fastpath::wire::{
    ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, Icmpv4Packet,
    Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr,
    TcpPacket, UdpPacket, UdpRepr,
};
use libfuzzer_sys::fuzz_target;

fn local() -> &'static LocalInfo {
    static LOCAL: OnceLock<LocalInfo> = OnceLock::new();
    LOCAL.get_or_init(|| {
        let ip = |s: &str| s.parse::<IpAddr>().expect("literal address");
        LocalInfo::new([
            PortAddrs::new(
                0,
                EthernetAddress([0x02, 0, 0, 0, 0, 0x01]),
                [(ip("192.168.1.1"), 24), (ip("2001:db8::2"), 64)],
                1500,
            ),
            PortAddrs::new(
                1,
                EthernetAddress([0x02, 0, 0, 0, 0, 0x02]),
                [(ip("10.0.0.1"), 24), (ip("2001:db8:1::1"), 64)],
                1500,
            ),
        ])
    })
}

fn l4(proto: IpProtocol, src: IpAddr, dst: IpAddr, payload: &[u8]) {
    match (proto, src, dst) {
        (IpProtocol::Udp, _, _) => {
            if let Ok(p) = UdpPacket::new_checked(payload) {
                let _ = (
                    p.src_port(),
                    p.dst_port(),
                    p.payload(),
                    p.verify_checksum(&src, &dst),
                );
                let _ = UdpRepr::parse(&src, &dst, &p);
            }
        }
        (IpProtocol::Tcp, _, _) => {
            if let Ok(p) = TcpPacket::new_checked(payload) {
                let _ = (
                    p.flags(),
                    p.payload(),
                    p.mss(),
                    p.verify_checksum(&src, &dst),
                );
                for _ in p.option_iter() {}
            }
        }
        (IpProtocol::Icmp, _, _) => {
            if let Ok(p) = Icmpv4Packet::new_checked(payload) {
                let _ = (p.msg_type(), p.msg_code(), p.data(), p.verify_checksum());
                let _ = Icmpv4Repr::parse(&p);
            }
        }
        (IpProtocol::Icmpv6, IpAddr::V6(s), IpAddr::V6(d)) => {
            if let Ok(p) = Icmpv6Packet::new_checked(payload) {
                let _ = (p.data(), p.verify_checksum(&s, &d));
                let _ = Icmpv6Repr::parse(&s, &d, &p);
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    // Both ports: one where our MAC may match, and an unknown one.
    for port in [0, 1, 7] {
        if let Ok(Class::Route { l3_len, .. }) = classify(data, port, local()) {
            assert!(14 + l3_len <= data.len());
        }
    }
    let Ok(eth) = EthernetFrame::new_checked(data) else {
        return;
    };
    let _ = EthernetRepr::parse(&eth);
    let payload = eth.payload();
    match eth.ethertype() {
        EtherType::Ipv4 => {
            if let Ok(ip) = Ipv4Packet::new_checked(payload) {
                let _ = (ip.options(), ip.verify_checksum(), Ipv4Repr::parse(&ip));
                let (s, d) = (ip.src_addr().into(), ip.dst_addr().into());
                l4(ip.next_header(), s, d, ip.payload());
            }
        }
        EtherType::Ipv6 => {
            if let Ok(ip) = Ipv6Packet::new_checked(payload) {
                let _ = Ipv6Repr::parse(&ip);
                let (s, d) = (ip.src_addr().into(), ip.dst_addr().into());
                l4(ip.next_header(), s, d, ip.payload());
            }
        }
        EtherType::Arp => {
            if let Ok(a) = ArpPacket::new_checked(payload) {
                let _ = ArpRepr::parse(&a);
            }
        }
        _ => {}
    }
});
