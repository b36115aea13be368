//! ICMP for IPv6 (RFC 4443) and Neighbor Discovery (RFC 4861).
//!
//! The checksum covers an IPv6 pseudo-header, so checksum methods and [`Icmpv6Repr`] take the
//! source and destination addresses of the enclosing IPv6 packet.
//!
//! # Panic contract
//! [`Icmpv6Packet::check_len`] guarantees the header length *of the message type present*
//! (8 bytes, 16 for a Router Advertisement, 24 for NS/NA, 40 for Redirect). Getters common to
//! all types (`msg_type`, `msg_code`, `checksum`, the 4-byte rest-of-header ones, `data`,
//! `options`) never panic after it; the NDP getters (`target_addr`, `reachable_time`, …) may only
//! be called when `msg_type` is a type that has that field.
//!
//! # Neighbor Discovery validation
//! [`Icmpv6Repr::parse`] applies the checks of RFC 4861 §6.1.1/§7.1 that need only the ICMPv6
//! message and the addresses: code 0, target not multicast, no option of length 0, no source
//! link-layer option when the source is unspecified, no Solicited flag to a multicast
//! destination. The caller checks that the IPv6 hop limit was 255.

use core::ops::BitOr;
use std::net::Ipv6Addr;

use super::ethernet::EthernetAddress;
use super::{be, checksum, IpProtocol, WireError};

enum_with_unknown! {
    /// ICMPv6 message type.
    pub enum Icmpv6Message(u8) {
        /// Destination unreachable.
        DstUnreachable = 1,
        /// Packet too big.
        PktTooBig = 2,
        /// Time exceeded.
        TimeExceeded = 3,
        /// Parameter problem.
        ParamProblem = 4,
        /// Echo request.
        EchoRequest = 128,
        /// Echo reply.
        EchoReply = 129,
        /// Multicast listener query.
        MldQuery = 130,
        /// Multicast listener report (v1).
        MldReport = 131,
        /// Multicast listener done.
        MldDone = 132,
        /// Router solicitation.
        RouterSolicit = 133,
        /// Router advertisement.
        RouterAdvert = 134,
        /// Neighbor solicitation.
        NeighborSolicit = 135,
        /// Neighbor advertisement.
        NeighborAdvert = 136,
        /// Redirect.
        Redirect = 137,
        /// Multicast listener report (v2).
        MldV2Report = 143,
    }
}

impl Icmpv6Message {
    /// Whether this is a Neighbor Discovery message (types 133–137).
    pub fn is_ndisc(self) -> bool {
        matches!(u8::from(self), 133..=137)
    }
}

enum_with_unknown! {
    /// Codes of Destination Unreachable.
    pub enum Icmpv6DstUnreachable(u8) {
        /// No route to destination.
        NoRoute = 0,
        /// Communication administratively prohibited.
        AdminProhibit = 1,
        /// Beyond scope of source address.
        BeyondScope = 2,
        /// Address unreachable.
        AddrUnreachable = 3,
        /// Port unreachable.
        PortUnreachable = 4,
        /// Source address failed ingress/egress policy.
        FailedPolicy = 5,
        /// Reject route to destination.
        RejectRoute = 6,
    }
}

enum_with_unknown! {
    /// Codes of Time Exceeded.
    pub enum Icmpv6TimeExceeded(u8) {
        /// Hop limit exceeded in transit.
        HopLimitExceeded = 0,
        /// Fragment reassembly time exceeded.
        FragReassemExceeded = 1,
    }
}

enum_with_unknown! {
    /// Codes of Parameter Problem.
    pub enum Icmpv6ParamProblem(u8) {
        /// Erroneous header field.
        ErroneousHdrField = 0,
        /// Unrecognized next header.
        UnrecognizedNxtHdr = 1,
        /// Unrecognized IPv6 option.
        UnrecognizedOption = 2,
    }
}

enum_with_unknown! {
    /// NDP option type (RFC 4861 §4.6).
    pub enum NdiscOptionType(u8) {
        /// Source link-layer address.
        SourceLinkLayerAddr = 1,
        /// Target link-layer address.
        TargetLinkLayerAddr = 2,
        /// Prefix information.
        PrefixInformation = 3,
        /// Redirected header.
        RedirectedHeader = 4,
        /// MTU.
        Mtu = 5,
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
    pub const MTU: Field = 4..8;
    pub const POINTER: Field = 4..8;
    pub const DATA: Rest = 8..;

    // Router Advertisement.
    pub const CUR_HOP_LIMIT: usize = 4;
    pub const ROUTER_FLAGS: usize = 5;
    pub const ROUTER_LT: Field = 6..8;
    pub const REACHABLE_TM: Field = 8..12;
    pub const RETRANS_TM: Field = 12..16;
    pub const RA_END: usize = 16;

    // Neighbor Solicitation / Advertisement / Redirect.
    pub const NEIGH_FLAGS: usize = 4;
    pub const TARGET_ADDR: Field = 8..24;
    pub const NEIGH_END: usize = 24;
    pub const DEST_ADDR: Field = 24..40;
    pub const REDIRECT_END: usize = 40;
}

/// Length of the common ICMPv6 header (type, code, checksum, 4-byte rest).
pub const HEADER_LEN: usize = field::DATA.start;

/// The most of an offending packet an ICMPv6 error may quote so that the error fits in the
/// IPv6 minimum MTU (RFC 4443 §2.4 (c)): 1280 − 40 − 8.
pub const MAX_ERROR_QUOTE: usize = 1280 - 40 - HEADER_LEN;

/// Header length (before NDP options or data) of a message of type `t`.
fn header_len_of(t: Icmpv6Message) -> usize {
    match t {
        Icmpv6Message::RouterAdvert => field::RA_END,
        Icmpv6Message::NeighborSolicit | Icmpv6Message::NeighborAdvert => field::NEIGH_END,
        Icmpv6Message::Redirect => field::REDIRECT_END,
        _ => HEADER_LEN,
    }
}

/// Flags of a Neighbor Advertisement (RFC 4861 §4.4).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeighborFlags(u8);

impl NeighborFlags {
    /// R: the sender is a router.
    pub const ROUTER: NeighborFlags = NeighborFlags(0x80);
    /// S: sent in response to a solicitation.
    pub const SOLICITED: NeighborFlags = NeighborFlags(0x40);
    /// O: override an existing cache entry.
    pub const OVERRIDE: NeighborFlags = NeighborFlags(0x20);

    /// No flags.
    pub const fn empty() -> NeighborFlags {
        NeighborFlags(0)
    }

    /// From the flags byte; reserved bits are dropped.
    pub const fn from_bits_truncate(bits: u8) -> NeighborFlags {
        NeighborFlags(bits & 0xe0)
    }

    /// The flags byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: NeighborFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// R flag.
    pub const fn router(self) -> bool {
        self.contains(Self::ROUTER)
    }

    /// S flag.
    pub const fn solicited(self) -> bool {
        self.contains(Self::SOLICITED)
    }

    /// O flag.
    pub const fn override_flag(self) -> bool {
        self.contains(Self::OVERRIDE)
    }
}

impl BitOr for NeighborFlags {
    type Output = NeighborFlags;
    fn bitor(self, rhs: NeighborFlags) -> NeighborFlags {
        NeighborFlags(self.0 | rhs.0)
    }
}

/// One NDP option: its type and the bytes after the type and length octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdiscOption<'a> {
    /// Option type.
    pub kind: NdiscOptionType,
    /// Option body (length × 8 − 2 bytes).
    pub data: &'a [u8],
}

impl NdiscOption<'_> {
    /// The link-layer address of a source/target link-layer address option on Ethernet.
    pub fn lladdr(&self) -> Option<EthernetAddress> {
        match self.kind {
            NdiscOptionType::SourceLinkLayerAddr | NdiscOptionType::TargetLinkLayerAddr => {
                EthernetAddress::from_bytes(self.data)
            }
            _ => None,
        }
    }
}

/// Iterator over NDP options. Yields `Err(Malformed)` for a length-0 option and
/// `Err(Truncated)` for one that runs past the end, then stops.
#[derive(Debug, Clone)]
pub struct NdiscOptions<'a> {
    rest: &'a [u8],
}

impl<'a> NdiscOptions<'a> {
    /// Iterates over the options in `bytes`.
    pub const fn new(bytes: &'a [u8]) -> NdiscOptions<'a> {
        NdiscOptions { rest: bytes }
    }
}

impl<'a> Iterator for NdiscOptions<'a> {
    type Item = Result<NdiscOption<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest;
        let (&kind, &len) = match rest {
            [] => return None,
            [kind, len, ..] => (kind, len),
            [_] => {
                self.rest = &[];
                return Some(Err(WireError::Truncated));
            }
        };
        let len = usize::from(len) * 8;
        if len == 0 {
            self.rest = &[];
            return Some(Err(WireError::Malformed));
        }
        if len > rest.len() {
            self.rest = &[];
            return Some(Err(WireError::Truncated));
        }
        self.rest = &rest[len..];
        Some(Ok(NdiscOption {
            kind: NdiscOptionType::from(kind),
            data: &rest[2..len],
        }))
    }
}

/// A view of an ICMPv6 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T) -> Icmpv6Packet<T> {
        Icmpv6Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Icmpv6Packet<T>, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Truncated` if shorter than 8 bytes or than the fixed header of its message type.
    /// The buffer is the whole message (the IPv6 payload).
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < header_len_of(self.msg_type()) {
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
    pub fn msg_type(&self) -> Icmpv6Message {
        Icmpv6Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// Code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }

    /// Echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::ECHO_SEQNO])
    }

    /// MTU of a Packet Too Big.
    pub fn pkt_too_big_mtu(&self) -> u32 {
        be::u32(&self.buffer.as_ref()[field::MTU])
    }

    /// Pointer of a Parameter Problem.
    pub fn param_problem_ptr(&self) -> u32 {
        be::u32(&self.buffer.as_ref()[field::POINTER])
    }

    /// Everything after the 8-byte header: echo data or the quoted packet of an error.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// NDP options: everything after the fixed header of this message type.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[header_len_of(self.msg_type())..]
    }

    /// Iterator over [`options`](Self::options).
    pub fn ndisc_options(&self) -> NdiscOptions<'_> {
        NdiscOptions::new(self.options())
    }

    /// Current hop limit of a Router Advertisement.
    pub fn current_hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::CUR_HOP_LIMIT]
    }

    /// Flags byte of a Router Advertisement (M = 0x80, O = 0x40).
    pub fn router_flags(&self) -> u8 {
        self.buffer.as_ref()[field::ROUTER_FLAGS]
    }

    /// Router lifetime of a Router Advertisement, in seconds.
    pub fn router_lifetime(&self) -> u16 {
        be::u16(&self.buffer.as_ref()[field::ROUTER_LT])
    }

    /// Reachable time of a Router Advertisement, in milliseconds.
    pub fn reachable_time(&self) -> u32 {
        be::u32(&self.buffer.as_ref()[field::REACHABLE_TM])
    }

    /// Retransmission timer of a Router Advertisement, in milliseconds.
    pub fn retrans_time(&self) -> u32 {
        be::u32(&self.buffer.as_ref()[field::RETRANS_TM])
    }

    /// Flags of a Neighbor Advertisement.
    pub fn neighbor_flags(&self) -> NeighborFlags {
        NeighborFlags::from_bits_truncate(self.buffer.as_ref()[field::NEIGH_FLAGS])
    }

    /// Target address of a Neighbor Solicitation/Advertisement or Redirect.
    pub fn target_addr(&self) -> Ipv6Addr {
        be::ipv6(&self.buffer.as_ref()[field::TARGET_ADDR])
    }

    /// Destination address of a Redirect.
    pub fn redirect_dest_addr(&self) -> Ipv6Addr {
        be::ipv6(&self.buffer.as_ref()[field::DEST_ADDR])
    }

    /// Whether the checksum over the pseudo-header and the whole message is correct.
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let data = self.buffer.as_ref();
        let Ok(len) = u32::try_from(data.len()) else {
            return false;
        };
        let pseudo = checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6, len);
        checksum::combine(&[pseudo, checksum::data(data)]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the type.
    pub fn set_msg_type(&mut self, v: Icmpv6Message) {
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

    /// Sets the 4-byte rest-of-header (MTU, pointer, reserved or NA flags).
    pub fn set_rest_of_header(&mut self, v: u32) {
        be::set_u32(&mut self.buffer.as_mut()[field::UNUSED], v);
    }

    /// Sets the current hop limit of a Router Advertisement.
    pub fn set_current_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::CUR_HOP_LIMIT] = v;
    }

    /// Sets the flags byte of a Router Advertisement.
    pub fn set_router_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::ROUTER_FLAGS] = v;
    }

    /// Sets the router lifetime (seconds).
    pub fn set_router_lifetime(&mut self, v: u16) {
        be::set_u16(&mut self.buffer.as_mut()[field::ROUTER_LT], v);
    }

    /// Sets the reachable time (milliseconds).
    pub fn set_reachable_time(&mut self, v: u32) {
        be::set_u32(&mut self.buffer.as_mut()[field::REACHABLE_TM], v);
    }

    /// Sets the retransmission timer (milliseconds).
    pub fn set_retrans_time(&mut self, v: u32) {
        be::set_u32(&mut self.buffer.as_mut()[field::RETRANS_TM], v);
    }

    /// Sets the Neighbor Advertisement flags (and clears the reserved bits after them).
    pub fn set_neighbor_flags(&mut self, v: NeighborFlags) {
        self.set_rest_of_header(u32::from(v.bits()) << 24);
    }

    /// Sets the target address.
    pub fn set_target_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET_ADDR].copy_from_slice(&a.octets());
    }

    /// The data after the 8-byte header, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }

    /// The NDP options area, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let start = header_len_of(self.msg_type());
        &mut self.buffer.as_mut()[start..]
    }

    /// Computes and writes the checksum over the pseudo-header and the whole buffer.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        // An ICMPv6 message is at most an IPv6 payload (< 4 GiB); saturate rather than panic.
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let pseudo = checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6, len);
        let sum = checksum::combine(&[pseudo, checksum::data(data)]);
        self.set_checksum(!sum);
    }
}

/// A parsed Neighbor Discovery message. Options other than the link-layer address (and the
/// MTU of a Router Advertisement) are skipped, as RFC 4861 §4.6 allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdiscRepr {
    /// Router Solicitation.
    RouterSolicit {
        /// Source link-layer address option.
        lladdr: Option<EthernetAddress>,
    },
    /// Router Advertisement (prefix information options are not parsed).
    RouterAdvert {
        /// Current hop limit to advertise (0 = unspecified).
        hop_limit: u8,
        /// M/O flags byte.
        flags: u8,
        /// Router lifetime, seconds.
        router_lifetime: u16,
        /// Reachable time, milliseconds.
        reachable_time: u32,
        /// Retransmission timer, milliseconds.
        retrans_time: u32,
        /// Source link-layer address option.
        lladdr: Option<EthernetAddress>,
        /// MTU option.
        mtu: Option<u32>,
    },
    /// Neighbor Solicitation.
    NeighborSolicit {
        /// The address being resolved.
        target_addr: Ipv6Addr,
        /// Source link-layer address option.
        lladdr: Option<EthernetAddress>,
    },
    /// Neighbor Advertisement.
    NeighborAdvert {
        /// R/S/O flags.
        flags: NeighborFlags,
        /// The address being advertised.
        target_addr: Ipv6Addr,
        /// Target link-layer address option.
        lladdr: Option<EthernetAddress>,
    },
}

impl NdiscRepr {
    fn parse<T: AsRef<[u8]>>(
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        packet: &Icmpv6Packet<T>,
    ) -> Result<NdiscRepr, WireError> {
        if packet.msg_code() != 0 {
            return Err(WireError::Malformed);
        }
        let mut slla = None;
        let mut tlla = None;
        let mut mtu = None;
        for option in packet.ndisc_options() {
            let option = option?;
            match option.kind {
                NdiscOptionType::SourceLinkLayerAddr if slla.is_none() => slla = option.lladdr(),
                NdiscOptionType::TargetLinkLayerAddr if tlla.is_none() => tlla = option.lladdr(),
                NdiscOptionType::Mtu if mtu.is_none() && option.data.len() >= 6 => {
                    mtu = Some(be::u32(&option.data[2..6]))
                }
                _ => {}
            }
        }
        match packet.msg_type() {
            Icmpv6Message::RouterSolicit => Ok(NdiscRepr::RouterSolicit { lladdr: slla }),
            Icmpv6Message::RouterAdvert => Ok(NdiscRepr::RouterAdvert {
                hop_limit: packet.current_hop_limit(),
                flags: packet.router_flags(),
                router_lifetime: packet.router_lifetime(),
                reachable_time: packet.reachable_time(),
                retrans_time: packet.retrans_time(),
                lladdr: slla,
                mtu,
            }),
            Icmpv6Message::NeighborSolicit => {
                let target_addr = packet.target_addr();
                if target_addr.is_multicast() || (src.is_unspecified() && slla.is_some()) {
                    return Err(WireError::Malformed);
                }
                Ok(NdiscRepr::NeighborSolicit {
                    target_addr,
                    lladdr: slla,
                })
            }
            Icmpv6Message::NeighborAdvert => {
                let target_addr = packet.target_addr();
                let flags = packet.neighbor_flags();
                if target_addr.is_multicast() || (flags.solicited() && dst.is_multicast()) {
                    return Err(WireError::Malformed);
                }
                Ok(NdiscRepr::NeighborAdvert {
                    flags,
                    target_addr,
                    lladdr: tlla,
                })
            }
            _ => Err(WireError::Unsupported),
        }
    }

    fn lladdr(&self) -> Option<EthernetAddress> {
        match *self {
            NdiscRepr::RouterSolicit { lladdr }
            | NdiscRepr::RouterAdvert { lladdr, .. }
            | NdiscRepr::NeighborSolicit { lladdr, .. }
            | NdiscRepr::NeighborAdvert { lladdr, .. } => lladdr,
        }
    }

    /// Bytes needed to emit: fixed header plus 8 per option.
    pub fn buffer_len(&self) -> usize {
        let (fixed, mtu) = match self {
            NdiscRepr::RouterSolicit { .. } => (HEADER_LEN, false),
            NdiscRepr::RouterAdvert { mtu, .. } => (field::RA_END, mtu.is_some()),
            NdiscRepr::NeighborSolicit { .. } | NdiscRepr::NeighborAdvert { .. } => {
                (field::NEIGH_END, false)
            }
        };
        fixed + 8 * usize::from(self.lladdr().is_some()) + 8 * usize::from(mtu)
    }

    fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv6Packet<T>) {
        let (msg_type, lladdr_kind) = match self {
            NdiscRepr::RouterSolicit { .. } => (
                Icmpv6Message::RouterSolicit,
                NdiscOptionType::SourceLinkLayerAddr,
            ),
            NdiscRepr::RouterAdvert { .. } => (
                Icmpv6Message::RouterAdvert,
                NdiscOptionType::SourceLinkLayerAddr,
            ),
            NdiscRepr::NeighborSolicit { .. } => (
                Icmpv6Message::NeighborSolicit,
                NdiscOptionType::SourceLinkLayerAddr,
            ),
            NdiscRepr::NeighborAdvert { .. } => (
                Icmpv6Message::NeighborAdvert,
                NdiscOptionType::TargetLinkLayerAddr,
            ),
        };
        packet.set_msg_type(msg_type);
        packet.set_msg_code(0);
        packet.set_rest_of_header(0);
        let mut ra_mtu = None;
        match *self {
            NdiscRepr::RouterSolicit { .. } => {}
            NdiscRepr::RouterAdvert {
                hop_limit,
                flags,
                router_lifetime,
                reachable_time,
                retrans_time,
                mtu,
                ..
            } => {
                packet.set_current_hop_limit(hop_limit);
                packet.set_router_flags(flags);
                packet.set_router_lifetime(router_lifetime);
                packet.set_reachable_time(reachable_time);
                packet.set_retrans_time(retrans_time);
                ra_mtu = mtu;
            }
            NdiscRepr::NeighborSolicit { target_addr, .. } => packet.set_target_addr(target_addr),
            NdiscRepr::NeighborAdvert {
                flags, target_addr, ..
            } => {
                packet.set_neighbor_flags(flags);
                packet.set_target_addr(target_addr);
            }
        }
        let options = packet.options_mut();
        let mut at = 0;
        if let Some(mac) = self.lladdr() {
            options[at] = lladdr_kind.into();
            options[at + 1] = 1;
            options[at + 2..at + 8].copy_from_slice(&mac.0);
            at += 8;
        }
        if let Some(mtu) = ra_mtu {
            options[at] = NdiscOptionType::Mtu.into();
            options[at + 1] = 1;
            options[at + 2..at + 4].fill(0);
            be::set_u32(&mut options[at + 4..at + 8], mtu);
        }
    }
}

/// A parsed ICMPv6 message. Error messages carry the quoted packet as raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
    /// Destination unreachable.
    DstUnreachable {
        /// Code.
        reason: Icmpv6DstUnreachable,
        /// The quoted packet.
        data: &'a [u8],
    },
    /// Packet too big.
    PktTooBig {
        /// MTU of the next-hop link.
        mtu: u32,
        /// The quoted packet.
        data: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// Code.
        reason: Icmpv6TimeExceeded,
        /// The quoted packet.
        data: &'a [u8],
    },
    /// Parameter problem.
    ParamProblem {
        /// Code.
        reason: Icmpv6ParamProblem,
        /// Offset of the offending byte in the quoted packet.
        pointer: u32,
        /// The quoted packet.
        data: &'a [u8],
    },
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
    /// Neighbor Discovery.
    Ndisc(NdiscRepr),
}

impl<'a> Icmpv6Repr<'a> {
    /// Parses a message carried from `src` to `dst`: `BadChecksum` if the checksum is wrong,
    /// `Malformed` for a message that breaks the RFC 4861 checks listed in the module doc (or a
    /// non-zero echo code), `Truncated` for an NDP option running past the end, `Unsupported`
    /// for Redirect, MLD and unknown types.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        packet: &Icmpv6Packet<&'a T>,
    ) -> Result<Icmpv6Repr<'a>, WireError> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(WireError::BadChecksum);
        }
        let data = &packet.buffer.as_ref()[field::DATA];
        let code = packet.msg_code();
        match packet.msg_type() {
            Icmpv6Message::DstUnreachable => Ok(Icmpv6Repr::DstUnreachable {
                reason: Icmpv6DstUnreachable::from(code),
                data,
            }),
            Icmpv6Message::PktTooBig => Ok(Icmpv6Repr::PktTooBig {
                mtu: packet.pkt_too_big_mtu(),
                data,
            }),
            Icmpv6Message::TimeExceeded => Ok(Icmpv6Repr::TimeExceeded {
                reason: Icmpv6TimeExceeded::from(code),
                data,
            }),
            Icmpv6Message::ParamProblem => Ok(Icmpv6Repr::ParamProblem {
                reason: Icmpv6ParamProblem::from(code),
                pointer: packet.param_problem_ptr(),
                data,
            }),
            Icmpv6Message::EchoRequest | Icmpv6Message::EchoReply if code != 0 => {
                Err(WireError::Malformed)
            }
            Icmpv6Message::EchoRequest => Ok(Icmpv6Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            Icmpv6Message::EchoReply => Ok(Icmpv6Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            t if t.is_ndisc() => NdiscRepr::parse(src, dst, packet).map(Icmpv6Repr::Ndisc),
            _ => Err(WireError::Unsupported),
        }
    }

    /// Bytes needed to emit.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv6Repr::DstUnreachable { data, .. }
            | Icmpv6Repr::PktTooBig { data, .. }
            | Icmpv6Repr::TimeExceeded { data, .. }
            | Icmpv6Repr::ParamProblem { data, .. }
            | Icmpv6Repr::EchoRequest { data, .. }
            | Icmpv6Repr::EchoReply { data, .. } => HEADER_LEN + data.len(),
            Icmpv6Repr::Ndisc(ndisc) => ndisc.buffer_len(),
        }
    }

    /// Writes the message and its checksum for a packet from `src` to `dst`. The buffer must
    /// be exactly [`buffer_len`](Self::buffer_len) bytes, since the checksum covers all of it.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        packet: &mut Icmpv6Packet<T>,
    ) {
        let (msg_type, code, rest, data): (Icmpv6Message, u8, u32, &[u8]) = match *self {
            Icmpv6Repr::DstUnreachable { reason, data } => {
                (Icmpv6Message::DstUnreachable, reason.into(), 0, data)
            }
            Icmpv6Repr::PktTooBig { mtu, data } => (Icmpv6Message::PktTooBig, 0, mtu, data),
            Icmpv6Repr::TimeExceeded { reason, data } => {
                (Icmpv6Message::TimeExceeded, reason.into(), 0, data)
            }
            Icmpv6Repr::ParamProblem {
                reason,
                pointer,
                data,
            } => (Icmpv6Message::ParamProblem, reason.into(), pointer, data),
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (
                Icmpv6Message::EchoRequest,
                0,
                (u32::from(ident) << 16) | u32::from(seq_no),
                data,
            ),
            Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (
                Icmpv6Message::EchoReply,
                0,
                (u32::from(ident) << 16) | u32::from(seq_no),
                data,
            ),
            Icmpv6Repr::Ndisc(ndisc) => {
                ndisc.emit(packet);
                packet.fill_checksum(src, dst);
                return;
            }
        };
        packet.set_msg_type(msg_type);
        packet.set_msg_code(code);
        packet.set_rest_of_header(rest);
        packet.data_mut()[..data.len()].copy_from_slice(data);
        packet.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::ipv6::test::NS_BYTES;
    use proptest::prelude::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    const MAC_A: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const MAC_B: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);

    // ICMPv6 Neighbor Advertisement 2001:db8::2 -> 2001:db8::1: type 136, code 0,
    // checksum 0x6b84 (computed with Python), flags S|O, target 2001:db8::2.
    // Option: target link-layer address (type 2, length 1), 52:54:00:ab:cd:ef.
    static NA_BYTES: [u8; 32] = [
        0x88, 0x00, 0x6b, 0x84, 0x60, 0x00, 0x00, 0x00, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x02, //
        0x02, 0x01, 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef,
    ];

    // ICMPv6 echo request 2001:db8::1 -> 2001:db8::2: type 128, code 0, checksum 0x8075,
    // ident 0x1234, seq 1, data "abcdefgh".
    static ECHO_BYTES: [u8; 16] = [
        0x80, 0x00, 0x80, 0x75, 0x12, 0x34, 0x00, 0x01, //
        0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    ];

    fn ns_icmp() -> &'static [u8] {
        &NS_BYTES[40..]
    }

    #[test]
    fn deconstruct_ns() {
        let (src, dst) = (a("2001:db8::1"), a("ff02::1:ff00:2"));
        let p = Icmpv6Packet::new_checked(ns_icmp()).unwrap();
        assert_eq!(p.msg_type(), Icmpv6Message::NeighborSolicit);
        assert_eq!(p.checksum(), 0x976b);
        assert!(p.verify_checksum(&src, &dst));
        assert!(!p.verify_checksum(&src, &a("ff02::1")));
        assert_eq!(p.target_addr(), a("2001:db8::2"));
        let opts: Vec<_> = p.ndisc_options().collect();
        assert_eq!(opts.len(), 1);
        assert_eq!(opts[0].unwrap().lladdr(), Some(MAC_A));
        assert_eq!(
            Icmpv6Repr::parse(&src, &dst, &p).unwrap(),
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                target_addr: a("2001:db8::2"),
                lladdr: Some(MAC_A)
            })
        );
    }

    #[test]
    fn construct_ns() {
        let (src, dst) = (a("2001:db8::1"), a("ff02::1:ff00:2"));
        let repr = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
            target_addr: a("2001:db8::2"),
            lladdr: Some(MAC_A),
        });
        assert_eq!(repr.buffer_len(), 32);
        let mut buf = vec![0xa5; repr.buffer_len()];
        repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..], ns_icmp());
    }

    #[test]
    fn na_round_trip() {
        let (src, dst) = (a("2001:db8::2"), a("2001:db8::1"));
        let p = Icmpv6Packet::new_checked(&NA_BYTES[..]).unwrap();
        let flags = p.neighbor_flags();
        assert!(flags.solicited() && flags.override_flag() && !flags.router());
        let repr = Icmpv6Repr::parse(&src, &dst, &p).unwrap();
        assert_eq!(
            repr,
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                flags: NeighborFlags::SOLICITED | NeighborFlags::OVERRIDE,
                target_addr: a("2001:db8::2"),
                lladdr: Some(MAC_B),
            })
        );
        let mut buf = vec![0xa5; repr.buffer_len()];
        repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, NA_BYTES);
    }

    #[test]
    fn echo_round_trip() {
        let (src, dst) = (a("2001:db8::1"), a("2001:db8::2"));
        let p = Icmpv6Packet::new_checked(&ECHO_BYTES[..]).unwrap();
        assert_eq!(
            (p.echo_ident(), p.echo_seq_no(), p.data()),
            (0x1234, 1, &b"abcdefgh"[..])
        );
        let repr = Icmpv6Repr::parse(&src, &dst, &p).unwrap();
        assert_eq!(
            repr,
            Icmpv6Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
                data: b"abcdefgh"
            }
        );
        let mut buf = vec![0; repr.buffer_len()];
        repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, ECHO_BYTES);
    }

    #[test]
    fn errors_and_router_messages_round_trip() {
        let (src, dst) = (a("2001:db8::ff"), a("2001:db8::1"));
        let quoted = &NS_BYTES[..48];
        let reprs = [
            Icmpv6Repr::TimeExceeded {
                reason: Icmpv6TimeExceeded::HopLimitExceeded,
                data: quoted,
            },
            Icmpv6Repr::PktTooBig {
                mtu: 1400,
                data: quoted,
            },
            Icmpv6Repr::DstUnreachable {
                reason: Icmpv6DstUnreachable::NoRoute,
                data: quoted,
            },
            Icmpv6Repr::ParamProblem {
                reason: Icmpv6ParamProblem::UnrecognizedNxtHdr,
                pointer: 6,
                data: quoted,
            },
            Icmpv6Repr::EchoReply {
                ident: 7,
                seq_no: 9,
                data: b"",
            },
            Icmpv6Repr::Ndisc(NdiscRepr::RouterSolicit { lladdr: None }),
            Icmpv6Repr::Ndisc(NdiscRepr::RouterSolicit {
                lladdr: Some(MAC_A),
            }),
            Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
                hop_limit: 64,
                flags: 0x40,
                router_lifetime: 1800,
                reachable_time: 30_000,
                retrans_time: 1_000,
                lladdr: Some(MAC_B),
                mtu: Some(1500),
            }),
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                flags: NeighborFlags::ROUTER,
                target_addr: src,
                lladdr: None,
            }),
        ];
        for repr in reprs {
            let mut buf = vec![0xa5; repr.buffer_len()];
            repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut buf[..]));
            let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
            assert_eq!(Icmpv6Repr::parse(&src, &dst, &p), Ok(repr));
        }
        // Packet Too Big header: type 2, code 0, MTU 1400.
        let repr = Icmpv6Repr::PktTooBig {
            mtu: 1400,
            data: quoted,
        };
        let mut buf = vec![0; repr.buffer_len()];
        repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut buf[..]));
        assert_eq!(
            (buf[0], buf[1], &buf[4..8]),
            (2, 0, &[0, 0, 0x05, 0x78][..])
        );
    }

    /// Re-checksums a modified NS and parses it.
    fn parse_ns(mut body: Vec<u8>, src: Ipv6Addr) -> Result<(), WireError> {
        let dst = a("ff02::1:ff00:2");
        Icmpv6Packet::new_unchecked(&mut body[..]).fill_checksum(&src, &dst);
        let p = Icmpv6Packet::new_checked(&body[..])?;
        Icmpv6Repr::parse(&src, &dst, &p).map(|_| ())
    }

    #[test]
    fn malformed_ndisc() {
        let src = a("2001:db8::1");
        // Option length 0.
        let mut body = ns_icmp().to_vec();
        body[25] = 0;
        assert_eq!(parse_ns(body, src), Err(WireError::Malformed));
        // Option length 2 (16 bytes) runs past the end.
        let mut body = ns_icmp().to_vec();
        body[25] = 2;
        assert_eq!(parse_ns(body, src), Err(WireError::Truncated));
        // A lone trailing option byte.
        let mut body = ns_icmp().to_vec();
        body.push(1);
        assert_eq!(parse_ns(body, src), Err(WireError::Truncated));
        // Multicast target.
        let mut body = ns_icmp().to_vec();
        body[8] = 0xff;
        assert_eq!(parse_ns(body, src), Err(WireError::Malformed));
        // Non-zero code.
        let mut body = ns_icmp().to_vec();
        body[1] = 1;
        assert_eq!(parse_ns(body, src), Err(WireError::Malformed));
        // DAD probe (source ::) must not carry a source link-layer address...
        assert_eq!(
            parse_ns(ns_icmp().to_vec(), Ipv6Addr::UNSPECIFIED),
            Err(WireError::Malformed)
        );
        // ...and is fine without one.
        assert_eq!(
            parse_ns(ns_icmp()[..24].to_vec(), Ipv6Addr::UNSPECIFIED),
            Ok(())
        );
        // Unknown options are skipped.
        let mut body = ns_icmp().to_vec();
        body.extend_from_slice(&[0x0e, 0x01, 1, 2, 3, 4, 5, 6]);
        assert_eq!(parse_ns(body, src), Ok(()));
        // Solicited NA to a multicast destination.
        let dst = a("ff02::1");
        let mut body = NA_BYTES.to_vec();
        let mut p = Icmpv6Packet::new_unchecked(&mut body[..]);
        p.fill_checksum(&src, &dst);
        let p = Icmpv6Packet::new_checked(&body[..]).unwrap();
        assert_eq!(Icmpv6Repr::parse(&src, &dst, &p), Err(WireError::Malformed));
    }

    #[test]
    fn truncations() {
        for len in 0..24 {
            assert_eq!(
                Icmpv6Packet::new_checked(&ns_icmp()[..len]).err(),
                Some(WireError::Truncated),
                "len {len}"
            );
        }
        for len in 24..32 {
            // The fixed NS header is there; the option is cut.
            let p = Icmpv6Packet::new_checked(&ns_icmp()[..len]).unwrap();
            let n = p.ndisc_options().filter(|o| o.is_err()).count();
            assert_eq!(n, usize::from(len > 24), "len {len}");
        }
        for len in 0..8 {
            assert_eq!(
                Icmpv6Packet::new_checked(&ECHO_BYTES[..len]).err(),
                Some(WireError::Truncated)
            );
        }
    }

    #[test]
    fn bad_checksum_and_unsupported() {
        let (src, dst) = (a("2001:db8::1"), a("2001:db8::2"));
        let mut buf = ECHO_BYTES;
        buf[15] ^= 1;
        assert_eq!(
            Icmpv6Repr::parse(&src, &dst, &Icmpv6Packet::new_checked(&buf[..]).unwrap()),
            Err(WireError::BadChecksum)
        );
        let mut buf = ECHO_BYTES;
        buf[0] = 130; // MLD query
        Icmpv6Packet::new_unchecked(&mut buf[..]).fill_checksum(&src, &dst);
        assert_eq!(
            Icmpv6Repr::parse(&src, &dst, &Icmpv6Packet::new_checked(&buf[..]).unwrap()),
            Err(WireError::Unsupported)
        );
    }

    proptest! {
        #[test]
        fn checked_never_panics(
            ty in prop_oneof![Just(1u8), Just(2), Just(3), Just(4), Just(128), Just(129), 133u8..=137, any::<u8>()],
            rest in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = vec![ty];
            bytes.extend_from_slice(&rest);
            let (src, dst) = (Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
            if let Ok(p) = Icmpv6Packet::new_checked(&bytes[..]) {
                let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.echo_ident(), p.echo_seq_no());
                let _ = (p.pkt_too_big_mtu(), p.param_problem_ptr(), p.data(), p.options());
                let _ = p.verify_checksum(&src, &dst);
                let _ = p.ndisc_options().count();
                match p.msg_type() {
                    Icmpv6Message::RouterAdvert => {
                        let _ = (p.current_hop_limit(), p.router_flags(), p.router_lifetime());
                        let _ = (p.reachable_time(), p.retrans_time());
                    }
                    Icmpv6Message::NeighborSolicit | Icmpv6Message::NeighborAdvert => {
                        let _ = (p.target_addr(), p.neighbor_flags());
                    }
                    Icmpv6Message::Redirect => {
                        let _ = (p.target_addr(), p.redirect_dest_addr());
                    }
                    _ => {}
                }
                // With the checksum fixed up, parsing reaches the type-specific code.
                let mut fixed = bytes.clone();
                Icmpv6Packet::new_unchecked(&mut fixed[..]).fill_checksum(&src, &dst);
                let p = Icmpv6Packet::new_checked(&fixed[..]).unwrap();
                if let Ok(repr) = Icmpv6Repr::parse(&src, &dst, &p) {
                    prop_assert!(repr.buffer_len() <= fixed.len());
                }
            }
        }
    }
}
