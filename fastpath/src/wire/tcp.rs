//! TCP segment views (RFC 9293): ports, sequence numbers, flags, data offset, checksum and
//! options, with MSS clamping for the forwarding path. There is no `TcpRepr`: the router
//! never terminates TCP.

use std::net::IpAddr;

use super::udp::pseudo_header;
use super::{be, checksum, IpProtocol, WireError};

mod field {
    #![allow(non_snake_case)]
    use crate::wire::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    pub const FLAGS: Field = 12..14;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;

    pub const fn OPTIONS(header_len: u8) -> Field {
        URGENT.end..(header_len as usize)
    }
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = field::URGENT.end;

/// TCP flag bits, as in the low 9 bits of bytes 12–13.
pub mod flags {
    /// No more data from sender.
    pub const FIN: u16 = 0x001;
    /// Synchronize sequence numbers.
    pub const SYN: u16 = 0x002;
    /// Reset the connection.
    pub const RST: u16 = 0x004;
    /// Push.
    pub const PSH: u16 = 0x008;
    /// Acknowledgment field is significant.
    pub const ACK: u16 = 0x010;
    /// Urgent pointer field is significant.
    pub const URG: u16 = 0x020;
    /// ECN-Echo.
    pub const ECE: u16 = 0x040;
    /// Congestion Window Reduced.
    pub const CWR: u16 = 0x080;
    /// ECN nonce (historic, RFC 3540).
    pub const NS: u16 = 0x100;
}

/// Option kinds (IANA "TCP Option Kind Numbers").
mod kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WS: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// End of option list (the iterator stops after it).
    EndOfList,
    /// Padding.
    NoOperation,
    /// Maximum segment size.
    MaxSegmentSize(u16),
    /// Window scale shift.
    WindowScale(u8),
    /// SACK permitted.
    SackPermitted,
    /// SACK blocks (raw, 8 bytes per block).
    SackRange(&'a [u8]),
    /// Timestamps.
    Timestamps {
        /// TSval.
        tsval: u32,
        /// TSecr.
        tsecr: u32,
    },
    /// Any other option: kind and body.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Bytes after kind and length.
        data: &'a [u8],
    },
}

/// Iterator over TCP options, yielding the byte offset of each option within the options area.
/// Yields `Err(Malformed)` for a length below 2 or a known option with the wrong length,
/// `Err(Truncated)` for one running past the end, then stops.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> TcpOptions<'a> {
    /// Iterates over the options in `bytes`.
    pub const fn new(bytes: &'a [u8]) -> TcpOptions<'a> {
        TcpOptions { bytes, at: 0 }
    }

    fn fail(&mut self, e: WireError) -> Option<Result<(usize, TcpOption<'a>), WireError>> {
        self.at = self.bytes.len();
        Some(Err(e))
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<(usize, TcpOption<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.at;
        let rest = self.bytes.get(at..).filter(|r| !r.is_empty())?;
        match rest[0] {
            kind::END => {
                self.at = self.bytes.len();
                return Some(Ok((at, TcpOption::EndOfList)));
            }
            kind::NOP => {
                self.at += 1;
                return Some(Ok((at, TcpOption::NoOperation)));
            }
            _ => {}
        }
        let Some(&len) = rest.get(1) else {
            return self.fail(WireError::Truncated);
        };
        let len = usize::from(len);
        if len < 2 {
            return self.fail(WireError::Malformed);
        }
        let Some(opt) = rest.get(..len) else {
            return self.fail(WireError::Truncated);
        };
        let data = &opt[2..];
        let option = match (opt[0], len) {
            (kind::MSS, 4) => TcpOption::MaxSegmentSize(be::u16(data)),
            (kind::WS, 3) => TcpOption::WindowScale(data[0]),
            (kind::SACK_PERMITTED, 2) => TcpOption::SackPermitted,
            (kind::SACK, _) if (len - 2) % 8 == 0 => TcpOption::SackRange(data),
            (kind::TIMESTAMPS, 10) => TcpOption::Timestamps {
                tsval: be::u32(&data[..4]),
                tsecr: be::u32(&data[4..]),
            },
            (kind::MSS | kind::WS | kind::SACK_PERMITTED | kind::SACK | kind::TIMESTAMPS, _) => {
                return self.fail(WireError::Malformed)
            }
            (kind, _) => TcpOption::Unknown { kind, data },
        };
        self.at += len;
        Some(Ok((at, option)))
    }
}

/// A view of a TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T) -> TcpPacket<T> {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<TcpPacket<T>, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Truncated` if shorter than 20 bytes or than the data offset; `BadLength` if the data
    /// offset is below 5 words. The buffer is the whole segment (the IP payload).
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

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        be::u32(&self.buffer.as_ref()[field::SEQ_NUM])
    }

    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        be::u32(&self.buffer.as_ref()[field::ACK_NUM])
    }

    /// Header length in bytes (data offset × 4).
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::FLAGS.start] >> 4) * 4
    }

    /// The nine flag bits; compare with the constants in [`flags`].
    pub fn flags(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::FLAGS]) & 0x01ff
    }

    /// FIN.
    pub fn fin(&self) -> bool {
        self.flags() & flags::FIN != 0
    }

    /// SYN.
    pub fn syn(&self) -> bool {
        self.flags() & flags::SYN != 0
    }

    /// RST.
    pub fn rst(&self) -> bool {
        self.flags() & flags::RST != 0
    }

    /// PSH.
    pub fn psh(&self) -> bool {
        self.flags() & flags::PSH != 0
    }

    /// ACK.
    pub fn ack(&self) -> bool {
        self.flags() & flags::ACK != 0
    }

    /// URG.
    pub fn urg(&self) -> bool {
        self.flags() & flags::URG != 0
    }

    /// ECE.
    pub fn ece(&self) -> bool {
        self.flags() & flags::ECE != 0
    }

    /// CWR.
    pub fn cwr(&self) -> bool {
        self.flags() & flags::CWR != 0
    }

    /// Window size.
    pub fn window_len(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::WIN_SIZE])
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::URGENT])
    }

    /// The options area (between byte 20 and the data offset).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS(self.header_len())]
    }

    /// Iterator over the options, with their offsets inside [`options`](Self::options).
    pub fn option_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }

    /// The MSS option's value, if the options hold a well-formed one.
    pub fn mss(&self) -> Option<u16> {
        self.option_iter()
            .map_while(Result::ok)
            .find_map(|(_, o)| match o {
                TcpOption::MaxSegmentSize(mss) => Some(mss),
                _ => None,
            })
    }

    /// The segment data after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[usize::from(self.header_len())..]
    }

    /// Whether the checksum is correct for a segment from `src` to `dst`.
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        let data = self.buffer.as_ref();
        let pseudo = pseudo_header(src, dst, IpProtocol::Tcp, data.len());
        checksum::combine(&[pseudo, checksum::data(data)]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::SRC_PORT], v);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::DST_PORT], v);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, v: u32) {
        be::set_u32(&mut self.buffer.as_mut()[field::SEQ_NUM], v);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, v: u32) {
        be::set_u32(&mut self.buffer.as_mut()[field::ACK_NUM], v);
    }

    /// Sets the header length in bytes (a multiple of 4, 20..=60).
    pub fn set_header_len(&mut self, len: u8) {
        let b = &mut self.buffer.as_mut()[field::FLAGS.start];
        *b = (*b & 0x0f) | ((len / 4) << 4);
    }

    /// Sets the nine flag bits.
    pub fn set_flags(&mut self, v: u16) {
        let r = &mut self.buffer.as_mut()[field::FLAGS];
        let old = be::u16(r);
        be::set_u16(r, (old & !0x01ff) | (v & 0x01ff));
    }

    /// Sets the window size.
    pub fn set_window_len(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::WIN_SIZE], v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::URGENT], v);
    }

    /// The options area, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let r = field::OPTIONS(self.header_len());
        &mut self.buffer.as_mut()[r]
    }

    /// Computes and writes the checksum over the pseudo-header and the whole buffer.
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let pseudo = pseudo_header(src, dst, IpProtocol::Tcp, data.len());
        let sum = checksum::combine(&[pseudo, checksum::data(data)]);
        self.set_checksum(!sum);
    }

    /// Lowers the MSS option to `max_mss` if it is larger, patching the checksum
    /// incrementally (RFC 1624). Returns whether the segment changed. Segments without a
    /// well-formed MSS option are left alone.
    pub fn clamp_mss(&mut self, max_mss: u16) -> bool {
        let found = self
            .option_iter()
            .map_while(Result::ok)
            .find_map(|(at, o)| match o {
                TcpOption::MaxSegmentSize(mss) => Some((at, mss)),
                _ => None,
            });
        let Some((at, mss)) = found else { return false };
        if mss <= max_mss {
            return false;
        }
        // Offset of the MSS value within the segment: options start at 20, then kind, length.
        let value_at = HEADER_LEN + at + 2;
        let data = self.buffer.as_mut();
        let mut csum = be::u16(&data[field::CHECKSUM]);
        let new = max_mss.to_be_bytes();
        for (i, byte) in new.iter().enumerate() {
            let pos = value_at + i;
            // The checksum sums 16-bit words aligned to the segment start.
            let word_at = pos & !1;
            let old_word = be::u16(&data[word_at..]);
            data[pos] = *byte;
            let new_word = be::u16(&data[word_at..]);
            csum = checksum::update_u16(csum, old_word, new_word);
        }
        be::set_u16(&mut data[field::CHECKSUM], csum);
        true
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    // TCP SYN 192.168.1.100:40000 -> 192.168.1.1:80, seq 0x01020304, ack 0, data offset 10,
    // flags SYN, window 64240, checksum 0x28c2 (computed with Python), urgent 0.
    // Options as Linux sends them: MSS 1460; SACK permitted; timestamps 1/0; NOP; WS 7.
    static SYN_BYTES: [u8; 40] = [
        0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, //
        0xa0, 0x02, 0xfa, 0xf0, 0x28, 0xc2, 0x00, 0x00, //
        0x02, 0x04, 0x05, 0xb4, //
        0x04, 0x02, //
        0x08, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, //
        0x01, //
        0x03, 0x03, 0x07,
    ];

    fn v4() -> (IpAddr, IpAddr) {
        (
            "192.168.1.100".parse().unwrap(),
            "192.168.1.1".parse().unwrap(),
        )
    }

    #[test]
    fn deconstruct() {
        let (s, d) = v4();
        let p = TcpPacket::new_checked(&SYN_BYTES[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (40000, 80));
        assert_eq!((p.seq_number(), p.ack_number()), (0x0102_0304, 0));
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), flags::SYN);
        assert!(
            p.syn()
                && !p.ack()
                && !p.fin()
                && !p.rst()
                && !p.psh()
                && !p.urg()
                && !p.ece()
                && !p.cwr()
        );
        assert_eq!(
            (p.window_len(), p.checksum(), p.urgent_at()),
            (64240, 0x28c2, 0)
        );
        assert!(p.verify_checksum(&s, &d));
        assert_eq!(p.payload(), &[] as &[u8]);
        let opts: Vec<_> = p.option_iter().map(|o| o.unwrap().1).collect();
        assert_eq!(
            opts,
            [
                TcpOption::MaxSegmentSize(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps { tsval: 1, tsecr: 0 },
                TcpOption::NoOperation,
                TcpOption::WindowScale(7),
            ]
        );
        assert_eq!(p.mss(), Some(1460));
    }

    #[test]
    fn construct() {
        let (s, d) = v4();
        let mut buf = [0u8; 40];
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(40000);
        p.set_dst_port(80);
        p.set_seq_number(0x0102_0304);
        p.set_ack_number(0);
        p.set_header_len(40);
        p.set_flags(flags::SYN);
        p.set_window_len(64240);
        p.set_urgent_at(0);
        p.options_mut().copy_from_slice(&SYN_BYTES[20..]);
        p.fill_checksum(&s, &d);
        assert_eq!(buf, SYN_BYTES);
    }

    #[test]
    fn clamp_mss_updates_checksum() {
        let (s, d) = v4();
        let mut buf = SYN_BYTES;
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        assert!(!p.clamp_mss(1500));
        assert!(p.clamp_mss(1400));
        assert_eq!(p.mss(), Some(1400));
        assert!(p.verify_checksum(&s, &d));
        // Misaligned MSS (after a NOP): the value straddles two checksum words.
        let mut buf = [0u8; 28];
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.set_header_len(28);
        p.set_flags(flags::SYN);
        p.options_mut()
            .copy_from_slice(&[1, 2, 4, 0x23, 0x45, 1, 1, 0]);
        p.fill_checksum(&s, &d);
        assert!(p.clamp_mss(1200));
        assert_eq!(p.mss(), Some(1200));
        assert!(p.verify_checksum(&s, &d));
    }

    #[test]
    fn malformed() {
        for len in 0..SYN_BYTES.len() {
            assert_eq!(
                TcpPacket::new_checked(&SYN_BYTES[..len]).err(),
                Some(WireError::Truncated)
            );
        }
        let mut buf = SYN_BYTES;
        buf[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&buf[..]).err(),
            Some(WireError::BadLength)
        );
        let bad = |opts: &[u8]| TcpOptions::new(opts).last().unwrap().err();
        assert_eq!(bad(&[2, 0]), Some(WireError::Malformed));
        assert_eq!(bad(&[2, 3, 0]), Some(WireError::Malformed));
        assert_eq!(bad(&[2, 4, 5]), Some(WireError::Truncated));
        assert_eq!(bad(&[30]), Some(WireError::Truncated));
        assert_eq!(bad(&[30, 2]), None);
        assert_eq!(TcpOptions::new(&[0, 2, 0]).count(), 1);
    }

    proptest! {
        #[test]
        fn checked_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..70), max in any::<u16>()) {
            let (s, d) = v4();
            if let Ok(p) = TcpPacket::new_checked(&bytes[..]) {
                let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.flags());
                let _ = (p.window_len(), p.checksum(), p.urgent_at(), p.options(), p.payload(), p.mss());
                prop_assert!(p.option_iter().count() <= p.options().len());
                let mut copy = bytes.clone();
                let mut p = TcpPacket::new_checked(&mut copy[..]).unwrap();
                p.fill_checksum(&s, &d);
                p.clamp_mss(max);
                prop_assert!(p.verify_checksum(&s, &d));
                prop_assert!(p.mss().map_or(true, |m| m <= max));
            }
        }
    }
}
