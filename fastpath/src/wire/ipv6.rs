//! IPv6 fixed headers (RFC 8200). Extension headers are not walked here: `next_header` is
//! whatever follows the fixed header.

use std::net::Ipv6Addr;

use super::{be, IpProtocol, WireError};

mod field {
    #![allow(non_snake_case)]
    use crate::wire::Field;

    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Byte offset of the hop limit, for in-place forwarding.
pub const HOP_LIMIT_OFFSET: usize = field::HOP_LIMIT;

/// `ff02::1`, all nodes on the link.
pub const LINK_LOCAL_ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// `ff02::2`, all routers on the link.
pub const LINK_LOCAL_ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// The solicited-node multicast group of `addr` (RFC 4291 §2.7.1): `ff02::1:ff` + its low 24
/// bits.
pub fn solicited_node_multicast(addr: &Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
    ])
}

/// Whether `addr` is in `fe80::/10`.
pub const fn is_unicast_link_local(addr: &Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T) -> Ipv6Packet<T> {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Ipv6Packet<T>, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Truncated` if the buffer is shorter than 40 bytes or than 40 + payload length.
    /// Jumbograms (payload length 0 with a Jumbo option) are not supported. The version is
    /// checked by [`Ipv6Repr::parse`].
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < HEADER_LEN + usize::from(self.payload_len()) {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version nibble (6).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Traffic class.
    pub fn traffic_class(&self) -> u8 {
        (be::u16(&self.buffer.as_ref()[0..2]) >> 4) as u8
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        be::u32(&self.buffer.as_ref()[field::VER_TC_FLOW]) & 0x000f_ffff
    }

    /// Payload length (bytes after the fixed header, extension headers included).
    pub fn payload_len(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Next header.
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NXT_HDR])
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        be::ipv6(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        be::ipv6(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// Total length of the packet: 40 + payload length.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    /// The payload (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the version nibble.
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[0];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Sets the traffic class.
    pub fn set_traffic_class(&mut self, v: u8) {
        let r = &mut self.buffer.as_mut()[field::VER_TC_FLOW];
        let word = be::u32(r);
        be::set_u32(r, (word & 0xf00f_ffff) | (u32::from(v) << 20));
    }

    /// Sets the flow label (low 20 bits of `v`).
    pub fn set_flow_label(&mut self, v: u32) {
        let r = &mut self.buffer.as_mut()[field::VER_TC_FLOW];
        let word = be::u32(r);
        be::set_u32(r, (word & 0xfff0_0000) | (v & 0x000f_ffff));
    }

    /// Sets the payload length.
    pub fn set_payload_len(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::LENGTH], v);
    }

    /// Sets the next header.
    pub fn set_next_header(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = v.into();
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// The fields of an IPv6 fixed header that upper layers care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next header.
    pub next_header: IpProtocol,
    /// Payload length in bytes.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
}

impl Ipv6Repr {
    /// Parses a packet; `BadVersion` unless version 6.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Ipv6Repr, WireError> {
        packet.check_len()?;
        if packet.version() != 6 {
            return Err(WireError::BadVersion);
        }
        Ok(Ipv6Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
        })
    }

    /// Header length when emitted: 40.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header with traffic class and flow label 0. `payload_len` above
    /// 65535 is clamped.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) {
        be::set_u32(&mut packet.buffer.as_mut()[field::VER_TC_FLOW], 0x6000_0000);
        packet.set_payload_len(self.payload_len.min(usize::from(u16::MAX)) as u16);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

#[cfg(test)]
pub(crate) mod test {
    use super::*;
    use proptest::prelude::*;

    // IPv6 header: version 6, traffic class 0, flow label 0, payload length 32,
    // next header ICMPv6, hop limit 255, 2001:db8::1 -> ff02::1:ff00:2.
    // ICMPv6 Neighbor Solicitation: type 135, code 0, checksum 0x976b, reserved,
    // target 2001:db8::2.
    // Option: source link-layer address (type 1, length 1 = 8 bytes), 52:54:00:12:34:56.
    pub(crate) static NS_BYTES: [u8; 72] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x01, //
        0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00,
        0x02, //
        0x87, 0x00, 0x97, 0x6b, 0x00, 0x00, 0x00, 0x00, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x02, //
        0x01, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56,
    ];

    fn ns_repr() -> Ipv6Repr {
        Ipv6Repr {
            src_addr: "2001:db8::1".parse().unwrap(),
            dst_addr: "ff02::1:ff00:2".parse().unwrap(),
            next_header: IpProtocol::Icmpv6,
            payload_len: 32,
            hop_limit: 255,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Ipv6Packet::new_checked(&NS_BYTES[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0);
        assert_eq!(p.flow_label(), 0);
        assert_eq!(p.payload_len(), 32);
        assert_eq!(p.next_header(), IpProtocol::Icmpv6);
        assert_eq!(p.hop_limit(), 255);
        assert_eq!(p.payload(), &NS_BYTES[40..]);
        assert_eq!(Ipv6Repr::parse(&p).unwrap(), ns_repr());
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 72];
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        ns_repr().emit(&mut p);
        p.payload_mut().copy_from_slice(&NS_BYTES[40..]);
        assert_eq!(buf, NS_BYTES);
    }

    #[test]
    fn traffic_class_and_flow_label() {
        let mut buf = NS_BYTES;
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        p.set_traffic_class(0xb8);
        p.set_flow_label(0x12345);
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 0xb8, 0x12345)
        );
        assert_eq!(&buf[..4], &[0x6b, 0x81, 0x23, 0x45]);
    }

    #[test]
    fn truncated_at_every_length() {
        for len in 0..NS_BYTES.len() {
            assert_eq!(
                Ipv6Packet::new_checked(&NS_BYTES[..len]).err(),
                Some(WireError::Truncated)
            );
        }
    }

    #[test]
    fn bad_version() {
        let mut buf = NS_BYTES;
        buf[0] = 0x40;
        assert_eq!(
            Ipv6Repr::parse(&Ipv6Packet::new_checked(&buf[..]).unwrap()),
            Err(WireError::BadVersion)
        );
    }

    #[test]
    fn solicited_node() {
        let a: Ipv6Addr = "2001:db8::12:3456:789a".parse().unwrap();
        assert_eq!(
            solicited_node_multicast(&a),
            "ff02::1:ff56:789a".parse::<Ipv6Addr>().unwrap()
        );
        assert!(is_unicast_link_local(&"fe80::1".parse().unwrap()));
        assert!(is_unicast_link_local(&"febf::1".parse().unwrap()));
        assert!(!is_unicast_link_local(&"fec0::1".parse().unwrap()));
    }

    proptest! {
        #[test]
        fn checked_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(p) = Ipv6Packet::new_checked(&bytes[..]) {
                let _ = (p.version(), p.traffic_class(), p.flow_label(), p.payload_len());
                let _ = (p.next_header(), p.hop_limit(), p.src_addr(), p.dst_addr());
                prop_assert_eq!(p.payload().len(), usize::from(p.payload_len()));
                let _ = Ipv6Repr::parse(&p);
            }
        }
    }
}
