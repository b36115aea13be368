//! IPv4 headers (RFC 791).

use std::net::Ipv4Addr;

use super::{be, checksum, IpProtocol, WireError};

mod field {
    #![allow(non_snake_case)]
    use crate::wire::Field;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Byte offset of the 16-bit word holding TTL (high byte) and protocol (low byte), for
/// incremental checksum updates.
pub const TTL_PROTOCOL_WORD: usize = field::TTL;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Cross-checks the buffer length, IHL and total length:
    ///
    /// * buffer < 20 bytes: `Truncated`;
    /// * IHL < 5: `BadLength`;
    /// * IHL × 4 > buffer: `Truncated`;
    /// * total length < IHL × 4: `BadLength`;
    /// * total length > buffer: `Truncated`.
    ///
    /// The version is not checked here (see [`Ipv4Repr::parse`]); a buffer longer than the total
    /// length (Ethernet padding) is fine, and [`payload`](Self::payload) stops at total length.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN {
            return Err(WireError::BadLength);
        }
        if header_len > len {
            return Err(WireError::Truncated);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(WireError::BadLength);
        }
        if total_len > len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version nibble (4 for IPv4).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// DSCP (upper six bits of the old TOS byte).
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// ECN (lower two bits of the old TOS byte).
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total length: header plus payload, in bytes.
    pub fn total_len(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::IDENT])
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        be::u16(&self.buffer.as_ref()[field::FLG_OFF]) & FLAG_DF != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        be::u16(&self.buffer.as_ref()[field::FLG_OFF]) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (be::u16(&self.buffer.as_ref()[field::FLG_OFF]) & OFFSET_MASK) << 3
    }

    /// Time to live.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Alias of [`hop_limit`](Self::hop_limit).
    pub fn ttl(&self) -> u8 {
        self.hop_limit()
    }

    /// Protocol.
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        be::ipv4(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        be::ipv4(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// Options bytes (between the fixed header and `header_len`).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    /// Whether the header checksum is correct (sum over the header is `0xffff`).
    pub fn verify_checksum(&self) -> bool {
        let header = &self.buffer.as_ref()[..usize::from(self.header_len())];
        checksum::data(header) == 0xffff
    }

    /// The payload: from `header_len` to `total_len` (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &self.buffer.as_ref()[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version nibble.
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Sets the header length in bytes (must be a multiple of 4, at most 60).
    pub fn set_header_len(&mut self, len: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) & 0x0f);
    }

    /// Sets DSCP.
    pub fn set_dscp(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (v << 2);
    }

    /// Sets ECN.
    pub fn set_ecn(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & !0x03) | (v & 0x03);
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::LENGTH], v);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::IDENT], v);
    }

    fn set_flg_off_bits(&mut self, mask: u16, bits: u16) {
        let r = &mut self.buffer.as_mut()[field::FLG_OFF];
        let old = be::u16(r);
        be::set_u16(r, (old & !mask) | (bits & mask));
    }

    /// Sets Don't Fragment.
    pub fn set_dont_frag(&mut self, v: bool) {
        self.set_flg_off_bits(FLAG_DF, if v { FLAG_DF } else { 0 });
    }

    /// Sets More Fragments.
    pub fn set_more_frags(&mut self, v: bool) {
        self.set_flg_off_bits(FLAG_MF, if v { FLAG_MF } else { 0 });
    }

    /// Sets the fragment offset in bytes (must be a multiple of 8).
    pub fn set_frag_offset(&mut self, bytes: u16) {
        self.set_flg_off_bits(OFFSET_MASK, bytes >> 3);
    }

    /// Sets the TTL.
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Sets the protocol.
    pub fn set_next_header(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = v.into();
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Computes and writes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = usize::from(self.header_len());
        let sum = checksum::data(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(!sum);
    }

    /// Decrements the TTL by one and patches the checksum incrementally (RFC 1624), as a
    /// router does when forwarding. The caller has checked that the TTL is > 1.
    pub fn decrement_ttl(&mut self) {
        let data = self.buffer.as_mut();
        let old_word = be::u16(&data[TTL_PROTOCOL_WORD..]);
        let new_word = old_word.wrapping_sub(0x0100);
        be::set_u16(&mut data[TTL_PROTOCOL_WORD..], new_word);
        let old_csum = be::u16(&data[field::CHECKSUM]);
        be::set_u16(
            &mut data[field::CHECKSUM],
            checksum::update_u16(old_csum, old_word, new_word),
        );
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// The fields of an IPv4 header that upper layers care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol.
    pub next_header: IpProtocol,
    /// Payload length in bytes (total length minus header length).
    pub payload_len: usize,
    /// TTL.
    pub hop_limit: u8,
}

impl Ipv4Repr {
    /// Parses a packet: `BadVersion` unless version 4, `BadChecksum` if the header checksum is
    /// wrong, `Unsupported` for fragments (the slow path does not reassemble). Options are
    /// skipped.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr, WireError> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(WireError::BadVersion);
        }
        if !packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        if packet.more_frags() || packet.frag_offset() != 0 {
            return Err(WireError::Unsupported);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.total_len()) - usize::from(packet.header_len()),
            hop_limit: packet.hop_limit(),
        })
    }

    /// Header length when emitted: 20 (no options).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header with DSCP 0, ident 0, DF set, and a correct checksum.
    /// `payload_len` must be at most `65535 - 20`; larger values are clamped.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN as u8);
        packet.set_dscp(0);
        packet.set_ecn(0);
        let total = (self.payload_len + HEADER_LEN).min(usize::from(u16::MAX));
        packet.set_total_len(total as u16);
        packet.set_ident(0);
        packet.set_flg_off_bits(0xffff, FLAG_DF);
        packet.set_hop_limit(self.hop_limit);
        packet.set_next_header(self.next_header);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[cfg(test)]
pub(crate) mod test {
    use super::*;
    use proptest::prelude::*;

    // IPv4 header: version 4, IHL 5, DSCP 0, total length 36, ident 0x1c46, DF,
    // TTL 64, protocol ICMP, checksum 0x9add, 192.168.1.100 -> 192.168.1.1.
    // ICMP echo request: type 8, code 0, checksum 0x5435, ident 0x1234, seq 1, data "abcdefgh".
    pub(crate) static ECHO_BYTES: [u8; 36] = [
        0x45, 0x00, 0x00, 0x24, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x9a, 0xdd, //
        0xc0, 0xa8, 0x01, 0x64, 0xc0, 0xa8, 0x01, 0x01, //
        0x08, 0x00, 0x54, 0x35, 0x12, 0x34, 0x00, 0x01, //
        0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    ];

    #[test]
    fn deconstruct() {
        let p = Ipv4Packet::new_checked(&ECHO_BYTES[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.dscp(), 0);
        assert_eq!(p.total_len(), 36);
        assert_eq!(p.ident(), 0x1c46);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.next_header(), IpProtocol::Icmp);
        assert_eq!(p.checksum(), 0x9add);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 1, 100));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 1, 1));
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &ECHO_BYTES[20..]);
        assert_eq!(p.options(), &[] as &[u8]);
        assert_eq!(
            Ipv4Repr::parse(&p).unwrap(),
            Ipv4Repr {
                src_addr: Ipv4Addr::new(192, 168, 1, 100),
                dst_addr: Ipv4Addr::new(192, 168, 1, 1),
                next_header: IpProtocol::Icmp,
                payload_len: 16,
                hop_limit: 64,
            }
        );
    }

    #[test]
    fn construct() {
        let mut buf = ECHO_BYTES;
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_ident(0x1c46);
        p.set_total_len(36);
        p.set_checksum(0);
        p.fill_checksum();
        assert_eq!(buf, ECHO_BYTES);

        // A Repr emits the same header except ident 0, so only ident and checksum differ.
        let repr = Ipv4Repr::parse(&Ipv4Packet::new_checked(&ECHO_BYTES[..]).unwrap()).unwrap();
        let mut out = ECHO_BYTES;
        let mut p = Ipv4Packet::new_unchecked(&mut out[..]);
        repr.emit(&mut p);
        p.set_ident(0x1c46);
        p.fill_checksum();
        assert_eq!(out, ECHO_BYTES);
    }

    #[test]
    fn flags_and_offset_setters() {
        let mut buf = ECHO_BYTES;
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_dont_frag(false);
        p.set_more_frags(true);
        p.set_frag_offset(1480);
        assert!(!p.dont_frag() && p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        p.fill_checksum();
        assert_eq!(Ipv4Repr::parse(&p), Err(WireError::Unsupported));
    }

    #[test]
    fn truncated_at_every_length() {
        for len in 0..ECHO_BYTES.len() {
            assert_eq!(
                Ipv4Packet::new_checked(&ECHO_BYTES[..len]).err(),
                Some(WireError::Truncated),
                "len {len}"
            );
        }
    }

    #[test]
    fn bad_lengths() {
        let mut buf = ECHO_BYTES;
        buf[0] = 0x44; // IHL 4
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(WireError::BadLength)
        );
        let mut buf = ECHO_BYTES;
        buf[0] = 0x4f; // IHL 15 = 60 bytes > 36-byte buffer
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(WireError::Truncated)
        );
        let mut buf = ECHO_BYTES;
        buf[3] = 19; // total length < header length
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(WireError::BadLength)
        );
        let mut buf = ECHO_BYTES;
        buf[3] = 37; // total length > buffer
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(WireError::Truncated)
        );
    }

    #[test]
    fn bad_version_and_checksum() {
        let mut buf = ECHO_BYTES;
        buf[0] = 0x65;
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_checked(&buf[..]).unwrap()),
            Err(WireError::BadVersion)
        );
        let mut buf = ECHO_BYTES;
        buf[11] ^= 1;
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(!p.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&p), Err(WireError::BadChecksum));
    }

    #[test]
    fn padding_is_not_payload() {
        let mut buf = ECHO_BYTES.to_vec();
        buf.resize(46, 0);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload().len(), 16);
    }

    #[test]
    fn decrement_ttl_keeps_checksum_valid() {
        let mut buf = ECHO_BYTES;
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.decrement_ttl();
        assert_eq!(p.ttl(), 63);
        assert!(p.verify_checksum());
        assert_eq!(p.checksum(), 0x9bdd);
    }

    proptest! {
        #[test]
        fn checked_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(p) = Ipv4Packet::new_checked(&bytes[..]) {
                let _ = (p.version(), p.header_len(), p.dscp(), p.ecn(), p.total_len(), p.ident());
                let _ = (p.dont_frag(), p.more_frags(), p.frag_offset(), p.ttl(), p.next_header());
                let _ = (p.checksum(), p.src_addr(), p.dst_addr(), p.options(), p.verify_checksum());
                prop_assert!(p.payload().len() <= bytes.len());
                let _ = Ipv4Repr::parse(&p);
            }
        }
    }
}
