//! UDP (RFC 768), with checksums over the IPv4 or IPv6 pseudo-header.

use std::net::IpAddr;

use super::{be, checksum, IpProtocol, WireError};

mod field {
    #![allow(non_snake_case)]
    use crate::wire::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;

    pub const fn PAYLOAD(length: u16) -> Field {
        CHECKSUM.end..(length as usize)
    }
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// Sum of the pseudo-header for an upper-layer packet of `len` bytes between `src` and `dst`.
/// Mixed families (one v4, one v6 address) cannot occur on the wire; they sum as IPv6 with
/// the v4 address mapped, which never verifies against a real packet.
pub(crate) fn pseudo_header(src: &IpAddr, dst: &IpAddr, proto: IpProtocol, len: usize) -> u16 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // Callers pass an IPv4 payload length, which fits in 16 bits; saturate otherwise.
            checksum::pseudo_header_v4(s, d, proto, u16::try_from(len).unwrap_or(u16::MAX))
        }
        _ => {
            let s = match src {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => *a,
            };
            let d = match dst {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => *a,
            };
            checksum::pseudo_header_v6(&s, &d, proto, u32::try_from(len).unwrap_or(u32::MAX))
        }
    }
}

/// A view of a UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T) -> UdpPacket<T> {
        UdpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<UdpPacket<T>, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Truncated` if shorter than 8 bytes or than the length field; `BadLength` if the
    /// length field is below 8.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let field_len = usize::from(self.len());
        if field_len < HEADER_LEN {
            return Err(WireError::BadLength);
        }
        if field_len > len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// Length field: header plus payload.
    pub fn len(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The payload, up to the length field.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD(self.len())]
    }

    /// Whether the checksum is correct for a datagram from `src` to `dst`. Over IPv4 a zero
    /// checksum means "none" and passes; over IPv6 it is required (RFC 8200 §8.1).
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        if src.is_ipv4() && self.checksum() == 0 {
            return true;
        }
        let data = &self.buffer.as_ref()[..usize::from(self.len())];
        let pseudo = pseudo_header(src, dst, IpProtocol::Udp, data.len());
        checksum::combine(&[pseudo, checksum::data(data)]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::SRC_PORT], v);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::DST_PORT], v);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::LENGTH], v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let r = field::PAYLOAD(self.len());
        &mut self.buffer.as_mut()[r]
    }

    /// Computes and writes the checksum; a computed 0 is sent as `0xffff` (RFC 768).
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let data = &self.buffer.as_ref()[..usize::from(self.len())];
        let pseudo = pseudo_header(src, dst, IpProtocol::Udp, data.len());
        let sum = !checksum::combine(&[pseudo, checksum::data(data)]);
        self.set_checksum(if sum == 0 { 0xffff } else { sum });
    }
}

/// A parsed UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> UdpRepr<'a> {
    /// Parses a datagram from `src` to `dst`: `BadChecksum` if the checksum is wrong,
    /// `Malformed` for destination port 0.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        src: &IpAddr,
        dst: &IpAddr,
        packet: &UdpPacket<&'a T>,
    ) -> Result<UdpRepr<'a>, WireError> {
        packet.check_len()?;
        if packet.dst_port() == 0 {
            return Err(WireError::Malformed);
        }
        if !packet.verify_checksum(src, dst) {
            return Err(WireError::BadChecksum);
        }
        let payload = &packet.buffer.as_ref()[field::PAYLOAD(packet.len())];
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload,
        })
    }

    /// Bytes needed to emit: 8 + payload.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes the datagram and its checksum. The payload must fit in a UDP length (65527
    /// bytes); the buffer must be at least [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        src: &IpAddr,
        dst: &IpAddr,
        packet: &mut UdpPacket<T>,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(u16::try_from(self.buffer_len()).unwrap_or(u16::MAX));
        let n = usize::from(packet.len()) - HEADER_LEN;
        packet.payload_mut().copy_from_slice(&self.payload[..n]);
        packet.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    // UDP 192.168.1.100:40000 -> 192.168.1.1:53, length 14, checksum 0x9bb3, payload "hello!".
    static UDP4_BYTES: [u8; 14] = [
        0x9c, 0x40, 0x00, 0x35, 0x00, 0x0e, 0x9b, 0xb3, //
        0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x21,
    ];
    // The same datagram 2001:db8::1 -> 2001:db8::2: checksum 0xc3f4.
    static UDP6_BYTES: [u8; 14] = [
        0x9c, 0x40, 0x00, 0x35, 0x00, 0x0e, 0xc3, 0xf4, //
        0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x21,
    ];

    fn v4() -> (IpAddr, IpAddr) {
        (
            "192.168.1.100".parse().unwrap(),
            "192.168.1.1".parse().unwrap(),
        )
    }
    fn v6() -> (IpAddr, IpAddr) {
        (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
    }

    #[test]
    fn deconstruct() {
        let (s, d) = v4();
        let p = UdpPacket::new_checked(&UDP4_BYTES[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.len(), p.checksum()),
            (40000, 53, 14, 0x9bb3)
        );
        assert_eq!(p.payload(), b"hello!");
        assert!(p.verify_checksum(&s, &d));
        assert_eq!(
            UdpRepr::parse(&s, &d, &p).unwrap(),
            UdpRepr {
                src_port: 40000,
                dst_port: 53,
                payload: b"hello!"
            }
        );
        let (s6, d6) = v6();
        let p6 = UdpPacket::new_checked(&UDP6_BYTES[..]).unwrap();
        assert!(p6.verify_checksum(&s6, &d6));
        assert!(!p6.verify_checksum(&s, &d));
    }

    #[test]
    fn construct() {
        let repr = UdpRepr {
            src_port: 40000,
            dst_port: 53,
            payload: b"hello!",
        };
        for ((s, d), golden) in [(v4(), UDP4_BYTES), (v6(), UDP6_BYTES)] {
            let mut buf = [0xa5u8; 14];
            repr.emit(&s, &d, &mut UdpPacket::new_unchecked(&mut buf[..]));
            assert_eq!(buf, golden);
        }
    }

    #[test]
    fn zero_checksum() {
        let (s, d) = v4();
        let mut buf = UDP4_BYTES;
        buf[6] = 0;
        buf[7] = 0;
        assert!(UdpPacket::new_checked(&buf[..])
            .unwrap()
            .verify_checksum(&s, &d));
        let (s6, d6) = v6();
        assert!(!UdpPacket::new_checked(&buf[..])
            .unwrap()
            .verify_checksum(&s6, &d6));
    }

    #[test]
    fn malformed() {
        for len in 0..UDP4_BYTES.len() {
            assert_eq!(
                UdpPacket::new_checked(&UDP4_BYTES[..len]).err(),
                Some(WireError::Truncated)
            );
        }
        let mut buf = UDP4_BYTES;
        buf[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&buf[..]).err(),
            Some(WireError::BadLength)
        );
        let (s, d) = v4();
        let mut buf = UDP4_BYTES;
        buf[13] ^= 1;
        assert_eq!(
            UdpRepr::parse(&s, &d, &UdpPacket::new_checked(&buf[..]).unwrap()),
            Err(WireError::BadChecksum)
        );
    }

    proptest! {
        #[test]
        fn checked_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let (s, d) = v6();
            if let Ok(p) = UdpPacket::new_checked(&bytes[..]) {
                let _ = (p.src_port(), p.dst_port(), p.len(), p.checksum(), p.payload(), p.is_empty());
                let _ = p.verify_checksum(&s, &d);
                let _ = UdpRepr::parse(&s, &d, &p);
            }
        }
    }
}
