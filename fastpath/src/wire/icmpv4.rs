//! ICMP for IPv4 (RFC 792, RFC 1191 for "fragmentation needed" MTU).

use super::{be, checksum, WireError};

enum_with_unknown! {
    /// ICMPv4 message type.
    pub enum Icmpv4Message(u8) {
        /// Echo reply.
        EchoReply = 0,
        /// Destination unreachable.
        DstUnreachable = 3,
        /// Redirect.
        Redirect = 5,
        /// Echo request.
        EchoRequest = 8,
        /// Router advertisement.
        RouterAdvert = 9,
        /// Router solicitation.
        RouterSolicit = 10,
        /// Time exceeded.
        TimeExceeded = 11,
        /// Parameter problem.
        ParamProblem = 12,
        /// Timestamp.
        Timestamp = 13,
        /// Timestamp reply.
        TimestampReply = 14,
    }
}

enum_with_unknown! {
    /// Codes of Destination Unreachable.
    pub enum Icmpv4DstUnreachable(u8) {
        /// Net unreachable.
        NetUnreachable = 0,
        /// Host unreachable.
        HostUnreachable = 1,
        /// Protocol unreachable.
        ProtoUnreachable = 2,
        /// Port unreachable.
        PortUnreachable = 3,
        /// Fragmentation needed and DF set (carries the next-hop MTU, RFC 1191).
        FragRequired = 4,
        /// Source route failed.
        SrcRouteFailed = 5,
        /// Destination network unknown.
        DstNetUnknown = 6,
        /// Destination host unknown.
        DstHostUnknown = 7,
        /// Source host isolated.
        SrcHostIsolated = 8,
        /// Network administratively prohibited.
        NetProhibited = 9,
        /// Host administratively prohibited.
        HostProhibited = 10,
        /// Network unreachable for ToS.
        NetUnreachToS = 11,
        /// Host unreachable for ToS.
        HostUnreachToS = 12,
        /// Communication administratively prohibited (RFC 1812).
        CommProhibited = 13,
        /// Host precedence violation.
        HostPrecedViol = 14,
        /// Precedence cutoff in effect.
        PrecedCutoff = 15,
    }
}

enum_with_unknown! {
    /// Codes of Time Exceeded.
    pub enum Icmpv4TimeExceeded(u8) {
        /// TTL expired in transit.
        TtlExpired = 0,
        /// Fragment reassembly time exceeded.
        FragExpired = 1,
    }
}

mod field {
    #![allow(non_snake_case)]
    use crate::wire::{Field, Rest};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const UNUSED: Field = 4..8;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const NEXT_HOP_MTU: Field = 6..8;
    pub const DATA: Rest = 8..;
}

/// Length of the ICMPv4 header (type, code, checksum and the 4-byte rest-of-header).
pub const HEADER_LEN: usize = field::DATA.start;

/// The most of an offending datagram an ICMP error may quote so that the error fits in 576
/// bytes (RFC 1812 §4.3.2.3): 576 − 20 (IPv4 header) − 8 (ICMP header).
pub const MAX_ERROR_QUOTE: usize = 576 - 20 - HEADER_LEN;

/// A view of an ICMPv4 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T) -> Icmpv4Packet<T> {
        Icmpv4Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Icmpv4Packet<T>, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Truncated` if shorter than the 8-byte header. The buffer is the whole message (the
    /// IPv4 payload), since the checksum covers all of it.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    pub fn msg_type(&self) -> Icmpv4Message {
        Icmpv4Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// Code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Echo identifier (echo request/reply).
    pub fn echo_ident(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }

    /// Echo sequence number (echo request/reply).
    pub fn echo_seq_no(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::ECHO_SEQNO])
    }

    /// Next-hop MTU (destination unreachable, fragmentation required).
    pub fn next_hop_mtu(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::NEXT_HOP_MTU])
    }

    /// The 4-byte rest-of-header as one number.
    pub fn rest_of_header(&self) -> u32 {
        be::u32(&self.buffer.as_ref()[field::UNUSED])
    }

    /// Everything after the 8-byte header: echo data, or the quoted datagram of an error.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// Whether the checksum over the whole message is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the type.
    pub fn set_msg_type(&mut self, v: Icmpv4Message) {
        self.buffer.as_mut()[field::TYPE] = v.into();
    }

    /// Sets the code.
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::ECHO_IDENT], v);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::ECHO_SEQNO], v);
    }

    /// Sets the 4-byte rest-of-header.
    pub fn set_rest_of_header(&mut self, v: u32) {
        be::set_u32(&mut self.buffer.as_mut()[field::UNUSED], v);
    }

    /// Sets the next-hop MTU.
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::NEXT_HOP_MTU], v);
    }

    /// The data, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }

    /// Computes and writes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::data(self.buffer.as_ref());
        self.set_checksum(!sum);
    }
}

/// A parsed ICMPv4 message. Error messages carry the quoted datagram as raw bytes (the
/// offending IPv4 header and the start of its payload), as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data echoed back.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data echoed back.
        data: &'a [u8],
    },
    /// Destination unreachable.
    DstUnreachable {
        /// Code.
        reason: Icmpv4DstUnreachable,
        /// Next-hop MTU for `FragRequired` (RFC 1191); 0 otherwise.
        next_hop_mtu: u16,
        /// The quoted datagram.
        data: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// Code.
        reason: Icmpv4TimeExceeded,
        /// The quoted datagram.
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a message: `BadChecksum` if the checksum is wrong, `Malformed` for a non-zero
    /// echo code, `Unsupported` for other message types.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv4Packet<&'a T>,
    ) -> Result<Icmpv4Repr<'a>, WireError> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        let data = &packet.buffer.as_ref()[field::DATA];
        match (packet.msg_type(), packet.msg_code()) {
            (Icmpv4Message::EchoRequest, 0) => Ok(Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (Icmpv4Message::EchoReply, 0) => Ok(Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (Icmpv4Message::EchoRequest | Icmpv4Message::EchoReply, _) => Err(WireError::Malformed),
            (Icmpv4Message::DstUnreachable, code) => {
                let reason = Icmpv4DstUnreachable::from(code);
                let next_hop_mtu = if reason == Icmpv4DstUnreachable::FragRequired {
                    packet.next_hop_mtu()
                } else {
                    0
                };
                Ok(Icmpv4Repr::DstUnreachable {
                    reason,
                    next_hop_mtu,
                    data,
                })
            }
            (Icmpv4Message::TimeExceeded, code) => Ok(Icmpv4Repr::TimeExceeded {
                reason: Icmpv4TimeExceeded::from(code),
                data,
            }),
            _ => Err(WireError::Unsupported),
        }
    }

    /// Bytes needed to emit: 8 + data.
    pub fn buffer_len(&self) -> usize {
        let data = match self {
            Icmpv4Repr::EchoRequest { data, .. }
            | Icmpv4Repr::EchoReply { data, .. }
            | Icmpv4Repr::DstUnreachable { data, .. }
            | Icmpv4Repr::TimeExceeded { data, .. } => data,
        };
        HEADER_LEN + data.len()
    }

    /// Writes the message and its checksum. The packet buffer must be exactly
    /// [`buffer_len`](Self::buffer_len) bytes, since the checksum covers all of it.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>) {
        let data = match *self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                packet.set_msg_type(Icmpv4Message::EchoRequest);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                data
            }
            Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                packet.set_msg_type(Icmpv4Message::EchoReply);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                data
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                data,
            } => {
                packet.set_msg_type(Icmpv4Message::DstUnreachable);
                packet.set_msg_code(reason.into());
                packet.set_rest_of_header(0);
                packet.set_next_hop_mtu(next_hop_mtu);
                data
            }
            Icmpv4Repr::TimeExceeded { reason, data } => {
                packet.set_msg_type(Icmpv4Message::TimeExceeded);
                packet.set_msg_code(reason.into());
                packet.set_rest_of_header(0);
                data
            }
        };
        packet.data_mut()[..data.len()].copy_from_slice(data);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::ipv4::test::ECHO_BYTES;
    use proptest::prelude::*;

    fn echo_bytes() -> &'static [u8] {
        // The ICMP part of the IPv4 golden packet: echo request, checksum 0x5435,
        // ident 0x1234, seq 1, data "abcdefgh".
        &ECHO_BYTES[20..]
    }

    #[test]
    fn deconstruct() {
        let p = Icmpv4Packet::new_checked(echo_bytes()).unwrap();
        assert_eq!(p.msg_type(), Icmpv4Message::EchoRequest);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x5435);
        assert_eq!(p.echo_ident(), 0x1234);
        assert_eq!(p.echo_seq_no(), 1);
        assert_eq!(p.data(), b"abcdefgh");
        assert!(p.verify_checksum());
        assert_eq!(
            Icmpv4Repr::parse(&p).unwrap(),
            Icmpv4Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
                data: b"abcdefgh"
            }
        );
    }

    #[test]
    fn construct() {
        let repr = Icmpv4Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 1,
            data: b"abcdefgh",
        };
        let mut buf = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..], echo_bytes());
    }

    #[test]
    fn echo_reply_checksum() {
        // Same as the request with type 0: checksum 0x5c35 (computed with Python).
        let repr = Icmpv4Repr::EchoReply {
            ident: 0x1234,
            seq_no: 1,
            data: b"abcdefgh",
        };
        let mut buf = vec![0; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..4], &[0x00, 0x00, 0x5c, 0x35]);
    }

    #[test]
    fn errors_round_trip() {
        let quoted = &ECHO_BYTES[..28];
        for repr in [
            Icmpv4Repr::TimeExceeded {
                reason: Icmpv4TimeExceeded::TtlExpired,
                data: quoted,
            },
            Icmpv4Repr::DstUnreachable {
                reason: Icmpv4DstUnreachable::FragRequired,
                next_hop_mtu: 1400,
                data: quoted,
            },
            Icmpv4Repr::DstUnreachable {
                reason: Icmpv4DstUnreachable::NetUnreachable,
                next_hop_mtu: 0,
                data: quoted,
            },
        ] {
            let mut buf = vec![0xa5; repr.buffer_len()];
            repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
            let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
            assert_eq!(Icmpv4Repr::parse(&p).unwrap(), repr);
        }
        // Time exceeded header bytes: type 11, code 0, then four zero bytes.
        let repr = Icmpv4Repr::TimeExceeded {
            reason: Icmpv4TimeExceeded::TtlExpired,
            data: quoted,
        };
        let mut buf = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        assert_eq!((buf[0], buf[1], &buf[4..8]), (11, 0, &[0u8; 4][..]));
    }

    #[test]
    fn malformed() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Icmpv4Packet::new_checked(&echo_bytes()[..len]).err(),
                Some(WireError::Truncated)
            );
        }
        let mut buf = echo_bytes().to_vec();
        buf[9] ^= 0xff;
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&buf[..]).unwrap()),
            Err(WireError::BadChecksum)
        );
        let mut buf = echo_bytes().to_vec();
        buf[0] = 13; // timestamp
        let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
        p.fill_checksum();
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&buf[..]).unwrap()),
            Err(WireError::Unsupported)
        );
    }

    proptest! {
        #[test]
        fn checked_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = Icmpv4Packet::new_checked(&bytes[..]) {
                let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.echo_ident(), p.echo_seq_no());
                let _ = (p.next_hop_mtu(), p.rest_of_header(), p.data(), p.verify_checksum());
                if let Ok(repr) = Icmpv4Repr::parse(&p) {
                    prop_assert_eq!(repr.buffer_len(), bytes.len());
                }
            }
        }
    }
}
