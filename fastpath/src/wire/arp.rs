//! ARP (RFC 826). The view handles any hardware/protocol address length; [`ArpRepr`] only
//! Ethernet + IPv4, and rejects anything else as [`WireError::Unsupported`].

use std::net::Ipv4Addr;

use super::ethernet::{EtherType, EthernetAddress};
use super::{be, WireError};

enum_with_unknown! {
    /// The ARP operation code.
    pub enum ArpOperation(u16) {
        /// Who has `target_protocol_addr`?
        Request = 1,
        /// `source_protocol_addr` is at `source_hardware_addr`.
        Reply = 2,
    }
}

enum_with_unknown! {
    /// The ARP hardware type.
    pub enum ArpHardware(u16) {
        /// Ethernet (10 Mb and up).
        Ethernet = 1,
    }
}

mod field {
    #![allow(non_snake_case)]
    use crate::wire::Field;

    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const FIXED_END: usize = 8;

    pub const fn SHA(hlen: u8, _plen: u8) -> Field {
        let start = OPER.end;
        start..(start + hlen as usize)
    }
    pub const fn SPA(hlen: u8, plen: u8) -> Field {
        let start = SHA(hlen, plen).end;
        start..(start + plen as usize)
    }
    pub const fn THA(hlen: u8, plen: u8) -> Field {
        let start = SPA(hlen, plen).end;
        start..(start + hlen as usize)
    }
    pub const fn TPA(hlen: u8, plen: u8) -> Field {
        let start = THA(hlen, plen).end;
        start..(start + plen as usize)
    }
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const ETHERNET_IPV4_LEN: usize = field::TPA(6, 4).end;

/// A view of an ARP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T) -> ArpPacket<T> {
        ArpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<ArpPacket<T>, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Truncated` unless the buffer holds the fixed part and both address pairs that the
    /// length fields announce. Trailing bytes (Ethernet padding) are allowed.
    pub fn check_len(&self) -> Result<(), WireError> {
        let data = self.buffer.as_ref();
        if data.len() < field::FIXED_END {
            return Err(WireError::Truncated);
        }
        if data.len() < field::TPA(self.hardware_len(), self.protocol_len()).end {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type.
    pub fn hardware_type(&self) -> ArpHardware {
        ArpHardware::from(be::u16(&self.buffer.as_ref()[field::HTYPE]))
    }

    /// Protocol type (an EtherType).
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(be::u16(&self.buffer.as_ref()[field::PTYPE]))
    }

    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation.
    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from(be::u16(&self.buffer.as_ref()[field::OPER]))
    }

    /// Sender hardware address bytes.
    pub fn source_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SHA(self.hardware_len(), self.protocol_len())]
    }

    /// Sender protocol address bytes.
    pub fn source_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SPA(self.hardware_len(), self.protocol_len())]
    }

    /// Target hardware address bytes.
    pub fn target_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::THA(self.hardware_len(), self.protocol_len())]
    }

    /// Target protocol address bytes.
    pub fn target_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::TPA(self.hardware_len(), self.protocol_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    pub fn set_hardware_type(&mut self, v: ArpHardware) {
        be::set_u16(&mut self.buffer.as_mut()[field::HTYPE], v.into());
    }

    /// Sets the protocol type.
    pub fn set_protocol_type(&mut self, v: EtherType) {
        be::set_u16(&mut self.buffer.as_mut()[field::PTYPE], v.into());
    }

    /// Sets the hardware address length.
    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }

    /// Sets the protocol address length.
    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v;
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, v: ArpOperation) {
        be::set_u16(&mut self.buffer.as_mut()[field::OPER], v.into());
    }

    /// Sets the sender hardware address; `v` must be `hardware_len()` bytes.
    pub fn set_source_hardware_addr(&mut self, v: &[u8]) {
        let r = field::SHA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[r].copy_from_slice(v);
    }

    /// Sets the sender protocol address; `v` must be `protocol_len()` bytes.
    pub fn set_source_protocol_addr(&mut self, v: &[u8]) {
        let r = field::SPA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[r].copy_from_slice(v);
    }

    /// Sets the target hardware address; `v` must be `hardware_len()` bytes.
    pub fn set_target_hardware_addr(&mut self, v: &[u8]) {
        let r = field::THA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[r].copy_from_slice(v);
    }

    /// Sets the target protocol address; `v` must be `protocol_len()` bytes.
    pub fn set_target_protocol_addr(&mut self, v: &[u8]) {
        let r = field::TPA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[r].copy_from_slice(v);
    }
}

/// A parsed ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpRepr {
    /// ARP for IPv4 over Ethernet: the only kind a router needs.
    EthernetIpv4 {
        /// Request, reply, or a code kept as `Unknown`.
        operation: ArpOperation,
        /// Sender MAC.
        source_hardware_addr: EthernetAddress,
        /// Sender IPv4 address.
        source_protocol_addr: Ipv4Addr,
        /// Target MAC (zero in a request).
        target_hardware_addr: EthernetAddress,
        /// Target IPv4 address.
        target_protocol_addr: Ipv4Addr,
    },
}

impl ArpRepr {
    /// Parses a checked packet; `Unsupported` unless it is Ethernet (1) / IPv4 (0x0800) with
    /// address lengths 6 and 4.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr, WireError> {
        packet.check_len()?;
        if packet.hardware_type() != ArpHardware::Ethernet
            || packet.protocol_type() != EtherType::Ipv4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(WireError::Unsupported);
        }
        // The lengths are 6 and 4 and check_len passed, so every slice below has that length.
        let mac = |b: &[u8]| EthernetAddress::from_bytes(b).ok_or(WireError::Truncated);
        Ok(ArpRepr::EthernetIpv4 {
            operation: packet.operation(),
            source_hardware_addr: mac(packet.source_hardware_addr())?,
            source_protocol_addr: be::ipv4(packet.source_protocol_addr()),
            target_hardware_addr: mac(packet.target_hardware_addr())?,
            target_protocol_addr: be::ipv4(packet.target_protocol_addr()),
        })
    }

    /// Bytes needed to emit: 28.
    pub const fn buffer_len(&self) -> usize {
        ETHERNET_IPV4_LEN
    }

    /// Writes the packet; the buffer must be at least [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        match *self {
            ArpRepr::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                target_hardware_addr,
                target_protocol_addr,
            } => {
                packet.set_hardware_type(ArpHardware::Ethernet);
                packet.set_protocol_type(EtherType::Ipv4);
                packet.set_hardware_len(6);
                packet.set_protocol_len(4);
                packet.set_operation(operation);
                packet.set_source_hardware_addr(&source_hardware_addr.0);
                packet.set_source_protocol_addr(&source_protocol_addr.octets());
                packet.set_target_hardware_addr(&target_hardware_addr.0);
                packet.set_target_protocol_addr(&target_protocol_addr.octets());
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    // ARP request, as `arping -I eth0 192.168.1.1` sends it from 00:11:22:33:44:55:
    // htype Ethernet, ptype IPv4, hlen 6, plen 4, op request,
    // sender 00:11:22:33:44:55 / 192.168.1.100, target 00:00:00:00:00:00 / 192.168.1.1.
    static REQUEST_BYTES: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, //
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0xc0, 0xa8, 0x01, 0x64, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xa8, 0x01, 0x01,
    ];

    fn request_repr() -> ArpRepr {
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]),
            source_protocol_addr: Ipv4Addr::new(192, 168, 1, 100),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Addr::new(192, 168, 1, 1),
        }
    }

    #[test]
    fn deconstruct() {
        let p = ArpPacket::new_checked(&REQUEST_BYTES[..]).unwrap();
        assert_eq!(p.hardware_type(), ArpHardware::Ethernet);
        assert_eq!(p.protocol_type(), EtherType::Ipv4);
        assert_eq!(p.operation(), ArpOperation::Request);
        assert_eq!(p.source_protocol_addr(), &[192, 168, 1, 100]);
        assert_eq!(ArpRepr::parse(&p).unwrap(), request_repr());
    }

    #[test]
    fn construct() {
        let repr = request_repr();
        let mut buf = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REQUEST_BYTES);
    }

    #[test]
    fn padded_frame_is_accepted() {
        let mut buf = REQUEST_BYTES.to_vec();
        buf.extend_from_slice(&[0; 18]);
        let p = ArpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p).unwrap(), request_repr());
    }

    #[test]
    fn truncated_at_every_length() {
        for len in 0..REQUEST_BYTES.len() {
            assert_eq!(
                ArpPacket::new_checked(&REQUEST_BYTES[..len]).err(),
                Some(WireError::Truncated),
                "len {len}"
            );
        }
    }

    #[test]
    fn non_ethernet_ipv4_is_unsupported() {
        let mut buf = REQUEST_BYTES;
        buf[1] = 6; // IEEE 802 hardware
        assert_eq!(
            ArpRepr::parse(&ArpPacket::new_unchecked(&buf[..])),
            Err(WireError::Unsupported)
        );
        let mut buf = REQUEST_BYTES;
        buf[2] = 0x86; // protocol IPv6
        buf[3] = 0xdd;
        assert_eq!(
            ArpRepr::parse(&ArpPacket::new_unchecked(&buf[..])),
            Err(WireError::Unsupported)
        );
    }

    #[test]
    fn unknown_operation_round_trips() {
        let mut buf = REQUEST_BYTES;
        buf[7] = 9;
        let repr = ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap();
        let mut out = [0u8; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
        assert_eq!(out, buf);
    }

    proptest! {
        #[test]
        fn checked_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = ArpPacket::new_checked(&bytes[..]) {
                let _ = (p.hardware_type(), p.protocol_type(), p.operation());
                let _ = (p.source_hardware_addr(), p.source_protocol_addr());
                let _ = (p.target_hardware_addr(), p.target_protocol_addr());
                let _ = ArpRepr::parse(&p);
            }
        }
    }
}
