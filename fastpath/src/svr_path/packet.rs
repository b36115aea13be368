//! Packet surgery shared by ingress and egress: parse the IP and L4 headers of a frame into a
//! small `Copy` summary, move the payload to make room for (or remove) headers and metadata,
//! and write IP and L4 headers for a 5-tuple.

use std::net::IpAddr;

use super::{NoRoom, PacketBuf, SvrDrop};
use crate::session::FlowKey;
use crate::wire::ethernet::{EtherType, HEADER_LEN as ETH_LEN};
use crate::wire::{
    be, checksum, ipv4, ipv6, tcp, udp, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket,
};
use crate::wire::{UdpPacket, WireError};

/// Longest Ethernet + IP + L4 header we save while moving a payload (14 + 60 + 60).
const MAX_HEADERS: usize = ETH_LEN + 60 + 60;

/// IP protocol numbers.
pub const PROTO_ICMP: u8 = 1;
/// TCP.
pub const PROTO_TCP: u8 = 6;
/// UDP.
pub const PROTO_UDP: u8 = 17;
/// ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;

/// What the SVR path needs to know about a frame's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers {
    /// IPv4 (else IPv6).
    pub v4: bool,
    /// IP header length (20 or 40: options and extension headers are refused).
    pub ip_len: usize,
    /// IP packet length from its header.
    pub l3_len: usize,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol of the L4 header.
    pub proto: u8,
    /// TTL / hop limit.
    pub ttl: u8,
    /// IPv4 DSCP/ECN byte or IPv6 traffic class.
    pub tos: u8,
    /// IPv6 flow label (0 for IPv4).
    pub flow: u32,
    /// IPv4 don't-fragment bit.
    pub df: bool,
    /// IPv4 identification.
    pub ident: u16,
    /// Bytes of L4 header kept in clear: the TCP header with options, the UDP header, or 0
    /// for ICMP (the whole ICMP message is payload).
    pub l4_len: usize,
    /// Source port (ICMP: see the module doc of `svr_path`).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// TCP flags (0 for others).
    pub tcp_flags: u16,
}

impl Headers {
    /// Offset of the L4 header in the frame.
    pub const fn l4_start(&self) -> usize {
        ETH_LEN + self.ip_len
    }

    /// Offset of the L4 payload.
    pub const fn payload_start(&self) -> usize {
        ETH_LEN + self.ip_len + self.l4_len
    }

    /// End of the IP packet in the frame.
    pub const fn end(&self) -> usize {
        ETH_LEN + self.l3_len
    }

    /// The packet's 5-tuple.
    pub fn key(&self) -> Option<FlowKey> {
        FlowKey::new(self.src, self.dst, self.proto, self.sport, self.dport)
    }

    /// A pure SYN (no ACK).
    pub const fn is_syn(&self) -> bool {
        self.proto == PROTO_TCP
            && self.tcp_flags & tcp::flags::SYN != 0
            && self.tcp_flags & tcp::flags::ACK == 0
    }

    /// A SYN (with or without ACK).
    pub const fn has_syn(&self) -> bool {
        self.proto == PROTO_TCP && self.tcp_flags & tcp::flags::SYN != 0
    }
}

fn malformed(_: WireError) -> SvrDrop {
    SvrDrop::Malformed
}

/// [`parse`] the frame in `b`, then trim Ethernet padding so the frame ends where its IP
/// packet does (the first step of both SVR stages).
pub fn parse_trimmed<B: PacketBuf>(b: &mut B, icmp_as_payload: bool) -> Result<Headers, SvrDrop> {
    let h = parse(b.data(), icmp_as_payload)?;
    if b.len() > h.end() && b.trim(b.len() - h.end()).is_err() {
        return Err(SvrDrop::Malformed);
    }
    Ok(h)
}

/// Parses Ethernet + IP + L4 of a frame the forwarding classifier already validated (IP
/// lengths and IPv4 checksum). `icmp_as_payload`: ICMP echo is accepted (LAN side); on the
/// WAN side only TCP and UDP are.
pub fn parse(frame: &[u8], icmp_as_payload: bool) -> Result<Headers, SvrDrop> {
    if frame.len() < ETH_LEN + ipv4::HEADER_LEN {
        return Err(SvrDrop::Malformed);
    }
    let ethertype = EtherType::from(be::u16(&frame[12..14]));
    let ip = &frame[ETH_LEN..];
    let mut h = match ethertype {
        EtherType::Ipv4 => {
            let p = Ipv4Packet::new_checked(ip).map_err(malformed)?;
            if p.header_len() != 20 {
                return Err(SvrDrop::Unsupported);
            }
            if p.more_frags() || p.frag_offset() != 0 {
                return Err(SvrDrop::Unsupported);
            }
            Headers {
                v4: true,
                ip_len: 20,
                l3_len: usize::from(p.total_len()),
                src: IpAddr::V4(p.src_addr()),
                dst: IpAddr::V4(p.dst_addr()),
                proto: p.next_header().into(),
                ttl: p.hop_limit(),
                tos: ip[1],
                flow: 0,
                df: p.dont_frag(),
                ident: p.ident(),
                l4_len: 0,
                sport: 0,
                dport: 0,
                tcp_flags: 0,
            }
        }
        EtherType::Ipv6 => {
            let p = Ipv6Packet::new_checked(ip).map_err(malformed)?;
            Headers {
                v4: false,
                ip_len: 40,
                l3_len: p.total_len(),
                src: IpAddr::V6(p.src_addr()),
                dst: IpAddr::V6(p.dst_addr()),
                proto: p.next_header().into(),
                ttl: p.hop_limit(),
                tos: p.traffic_class(),
                flow: p.flow_label(),
                df: false,
                ident: 0,
                l4_len: 0,
                sport: 0,
                dport: 0,
                tcp_flags: 0,
            }
        }
        _ => return Err(SvrDrop::Unsupported),
    };
    let l4 = frame.get(h.l4_start()..h.end()).ok_or(SvrDrop::Malformed)?;
    match h.proto {
        PROTO_TCP => {
            let t = TcpPacket::new_checked(l4).map_err(malformed)?;
            h.l4_len = usize::from(t.header_len());
            h.sport = t.src_port();
            h.dport = t.dst_port();
            h.tcp_flags = t.flags();
        }
        PROTO_UDP => {
            let u = UdpPacket::new_checked(l4).map_err(malformed)?;
            if usize::from(u.len()) != l4.len() {
                return Err(SvrDrop::Malformed);
            }
            h.l4_len = udp::HEADER_LEN;
            h.sport = u.src_port();
            h.dport = u.dst_port();
        }
        PROTO_ICMP | PROTO_ICMPV6 if icmp_as_payload => {
            if (h.proto == PROTO_ICMP) != h.v4 || l4.len() < 8 {
                return Err(SvrDrop::Unsupported);
            }
            let id = be::u16(&l4[4..6]);
            (h.sport, h.dport) = match (h.proto, l4[0]) {
                // echo request: src port = identifier, dst port = 0
                (PROTO_ICMP, 8) | (PROTO_ICMPV6, 128) => (id, 0),
                // echo reply: the request's tuple reversed
                (PROTO_ICMP, 0) | (PROTO_ICMPV6, 129) => (0, id),
                _ => return Err(SvrDrop::Unsupported),
            };
        }
        _ => return Err(SvrDrop::Unsupported),
    }
    Ok(h)
}

/// Moves the L4 payload of `b` (`payload_start..len`) so that it starts at `new_start`, keeping
/// the first `keep` bytes (Ethernet + IP + L4 headers, at most 134) in `saved`. Grows at the
/// front when there is headroom (nothing but the headers moves), else at the back (the payload
/// moves); shrinks at the front.
pub fn move_payload<B: PacketBuf>(
    b: &mut B,
    keep: usize,
    payload_start: usize,
    new_start: usize,
    saved: &mut [u8; MAX_HEADERS],
) -> Result<(), NoRoom> {
    let keep = keep.min(MAX_HEADERS).min(b.len());
    saved[..keep].copy_from_slice(&b.data()[..keep]);
    if new_start > payload_start {
        let delta = new_start - payload_start;
        if b.headroom() >= delta {
            b.prepend(delta)?;
        } else {
            let len = b.len();
            b.append(delta)?;
            b.data_mut().copy_within(payload_start..len, new_start);
        }
    } else if payload_start > new_start {
        b.adj(payload_start - new_start)?;
    }
    Ok(())
}

/// A stack buffer for [`move_payload`].
pub fn header_save() -> [u8; MAX_HEADERS] {
    [0u8; MAX_HEADERS]
}

/// IP header fields carried from one packet to its rewrite.
#[derive(Debug, Clone, Copy)]
pub struct IpFields {
    /// TTL / hop limit.
    pub ttl: u8,
    /// DSCP/ECN or traffic class.
    pub tos: u8,
    /// IPv6 flow label.
    pub flow: u32,
    /// IPv4 DF.
    pub df: bool,
    /// IPv4 identification.
    pub ident: u16,
}

impl From<&Headers> for IpFields {
    fn from(h: &Headers) -> Self {
        IpFields {
            ttl: h.ttl,
            tos: h.tos,
            flow: h.flow,
            df: h.df,
            ident: h.ident,
        }
    }
}

/// Writes the Ethertype and an IP header (20 or 40 bytes) for `src → dst` at `frame[14..]`,
/// for an IP packet of `l3_len` bytes. Returns the IP header length.
pub fn write_ip(
    frame: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    l3_len: usize,
    f: IpFields,
) -> usize {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            be::set_u16(&mut frame[12..14], EtherType::Ipv4.into());
            let mut ip = Ipv4Packet::new_unchecked(&mut frame[ETH_LEN..ETH_LEN + 20]);
            ip.set_version(4);
            ip.set_header_len(20);
            ip.set_dscp(f.tos >> 2);
            ip.set_ecn(f.tos & 3);
            ip.set_total_len(l3_len as u16);
            ip.set_ident(f.ident);
            ip.set_hop_limit(f.ttl);
            ip.set_next_header(IpProtocol::from(proto));
            ip.set_src_addr(s);
            ip.set_dst_addr(d);
            // Flags and fragment offset: DF only (never a fragment, reserved bit clear).
            be::set_u16(
                &mut frame[ETH_LEN + 6..ETH_LEN + 8],
                if f.df { 0x4000 } else { 0 },
            );
            // The header checksum from the values just written, not read back from the frame
            // (reading fresh 2-byte stores as wider loads stalls store forwarding).
            let (so, dof) = (s.octets(), d.octets());
            let sum = checksum::combine(&[
                0x4500 | u16::from(f.tos),
                l3_len as u16,
                f.ident,
                if f.df { 0x4000 } else { 0 },
                u16::from(f.ttl) << 8 | u16::from(proto),
                u16::from_be_bytes([so[0], so[1]]),
                u16::from_be_bytes([so[2], so[3]]),
                u16::from_be_bytes([dof[0], dof[1]]),
                u16::from_be_bytes([dof[2], dof[3]]),
            ]);
            be::set_u16(&mut frame[ETH_LEN + 10..ETH_LEN + 12], !sum);
            ipv4::HEADER_LEN
        }
        (s, d) => {
            let to6 = |a: IpAddr| match a {
                IpAddr::V4(v) => v.to_ipv6_mapped(),
                IpAddr::V6(v) => v,
            };
            be::set_u16(&mut frame[12..14], EtherType::Ipv6.into());
            let mut ip = Ipv6Packet::new_unchecked(&mut frame[ETH_LEN..ETH_LEN + 40]);
            ip.set_version(6);
            ip.set_traffic_class(f.tos);
            ip.set_flow_label(f.flow);
            ip.set_payload_len((l3_len - 40) as u16);
            ip.set_next_header(IpProtocol::from(proto));
            ip.set_hop_limit(f.ttl);
            ip.set_src_addr(to6(s));
            ip.set_dst_addr(to6(d));
            ipv6::HEADER_LEN
        }
    }
}

/// Fills the L4 checksum of the TCP segment or UDP datagram `frame[l4..end]` (UDP length too).
pub fn fill_l4_checksum(
    frame: &mut [u8],
    proto: u8,
    l4: usize,
    end: usize,
    src: IpAddr,
    dst: IpAddr,
) {
    let seg = &mut frame[l4..end];
    match proto {
        PROTO_TCP => TcpPacket::new_unchecked(seg).fill_checksum(&src, &dst),
        PROTO_UDP if seg.len() >= udp::HEADER_LEN => {
            // The header's words from their values and the body from memory: reading the
            // header's fresh 2-byte stores back as wider loads would stall store forwarding.
            let len = seg.len() as u16;
            let (sport, dport) = (be::u16(&seg[0..2]), be::u16(&seg[2..4]));
            let sum = !checksum::combine(&[
                udp::pseudo_header(&src, &dst, IpProtocol::Udp, seg.len()),
                sport,
                dport,
                len,
                checksum::data(&seg[udp::HEADER_LEN..]),
            ]);
            let mut u = UdpPacket::new_unchecked(seg);
            u.set_len(len);
            u.set_checksum(if sum == 0 { 0xffff } else { sum });
        }
        _ => {}
    }
}

/// Writes the ports of an L4 header (TCP or UDP) at `frame[l4..]`.
pub fn set_ports(frame: &mut [u8], l4: usize, sport: u16, dport: u16) {
    be::set_u16(&mut frame[l4..l4 + 2], sport);
    be::set_u16(&mut frame[l4 + 2..l4 + 4], dport);
}

/// The 20/40-byte IP header length of an address family.
pub const fn ip_len(v4: bool) -> usize {
    if v4 {
        ipv4::HEADER_LEN
    } else {
        ipv6::HEADER_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 header checksum `write_ip` computes from the field values verifies over the
    /// bytes it wrote, for every TOS, DF and a spread of lengths, identifications and TTLs.
    #[test]
    fn write_ip_v4_checksum_verifies() {
        let mut frame = [0xa5u8; ETH_LEN + 1500];
        for i in 0..4096u32 {
            let f = IpFields {
                ttl: (i * 7) as u8,
                tos: (i * 13) as u8,
                flow: 0,
                df: i % 2 == 0,
                ident: (i * 40_503) as u16,
            };
            let src = IpAddr::from([10, (i >> 4) as u8, i as u8, 0xff]);
            let dst = IpAddr::from([0xfe, 0x80, (i * 3) as u8, 1]);
            let len = 20 + (i as usize * 37) % 1481;
            write_ip(&mut frame, src, dst, 17, len, f);
            let ip = Ipv4Packet::new_checked(&frame[ETH_LEN..ETH_LEN + len]).expect("valid header");
            assert!(ip.verify_checksum(), "case {i}");
            assert_eq!(usize::from(ip.total_len()), len);
        }
    }

    /// The UDP checksum `fill_l4_checksum` computes verifies with the wire module's parser,
    /// over IPv4 and IPv6, every payload length from 0 to 300, odd and even.
    #[test]
    fn fill_l4_checksum_udp_verifies() {
        let pairs = [
            (IpAddr::from([10, 9, 0, 1]), IpAddr::from([10, 9, 0, 2])),
            (
                "fd00:9::1".parse::<IpAddr>().unwrap(),
                "fd00:9::2".parse::<IpAddr>().unwrap(),
            ),
        ];
        for (src, dst) in pairs {
            for n in 0..300usize {
                let mut frame = vec![0u8; 64 + n];
                let l4 = 20;
                set_ports(&mut frame, l4, 16_384 + n as u16, 16_385);
                for (k, b) in frame[l4 + 8..l4 + 8 + n].iter_mut().enumerate() {
                    *b = (k * 31 + n) as u8 ^ 0xff;
                }
                fill_l4_checksum(&mut frame, PROTO_UDP, l4, l4 + 8 + n, src, dst);
                let seg = &frame[l4..l4 + 8 + n];
                assert!(
                    udp::UdpRepr::parse(&src, &dst, &UdpPacket::new_unchecked(seg)).is_ok(),
                    "{src} payload {n}: checksum"
                );
                assert_eq!(usize::from(be::u16(&seg[4..6])), 8 + n);
            }
        }
    }
}
