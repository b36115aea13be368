//! Typed TLV values: [`TlvValue::parse`] checks one TLV's length and contents, and
//! [`TlvValue::write`] emits it. Layouts are in `docs/protocol.md` §3-§4.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::tlv::{Tlv, TlvType, TlvWriter};
use super::{be, MetadataError};
use crate::wire::IpProtocol;

/// Longest name we accept or send (our choice: one length byte's worth).
pub const MAX_NAME_LEN: usize = 255;
/// Length of our Payload Key TLV value: index (1) + cipher (1) + key (32).
pub const PAYLOAD_KEY_TLV_LEN: usize = 2 + 32;

/// Checks a name value of TLV `ty`: 1 to 255 bytes of printable ASCII (0x20-0x7E). Anything
/// else (empty, too long, control characters, non-ASCII) is `BadName(ty)`.
pub fn check_name(ty: TlvType, value: &[u8]) -> Result<&str, MetadataError> {
    let ok = (1..=MAX_NAME_LEN).contains(&value.len())
        && value.iter().all(|&b| (0x20..=0x7e).contains(&b));
    if !ok {
        return Err(MetadataError::BadName(ty.raw()));
    }
    core::str::from_utf8(value).map_err(|_| MetadataError::BadName(ty.raw()))
}

fn exact<const N: usize>(tlv: &Tlv<'_>) -> Result<[u8; N], MetadataError> {
    tlv.value
        .try_into()
        .map_err(|_| MetadataError::BadTlvLength(tlv.ty.raw()))
}

fn flag(tlv: &Tlv<'_>) -> Result<(), MetadataError> {
    exact::<0>(tlv).map(|_| ())
}

/// A session 5-tuple as carried by the context TLVs (2-5). The protocol is always the
/// original IP protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Context<A> {
    /// Source address.
    pub src: A,
    /// Destination address.
    pub dst: A,
    /// Source port (or ICMP identifier).
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Original IP protocol.
    pub protocol: IpProtocol,
}

/// A forward or reverse context of either family (types 2/4: IPv4, 13 bytes; 3/5: IPv6,
/// 37 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionContext {
    /// IPv4 5-tuple.
    V4(Context<Ipv4Addr>),
    /// IPv6 5-tuple.
    V6(Context<Ipv6Addr>),
}

impl SessionContext {
    /// Source address.
    pub fn src(&self) -> IpAddr {
        match self {
            SessionContext::V4(c) => c.src.into(),
            SessionContext::V6(c) => c.src.into(),
        }
    }

    /// Destination address.
    pub fn dst(&self) -> IpAddr {
        match self {
            SessionContext::V4(c) => c.dst.into(),
            SessionContext::V6(c) => c.dst.into(),
        }
    }

    /// `(src_port, dst_port, protocol)`.
    pub fn ports_protocol(&self) -> (u16, u16, IpProtocol) {
        match self {
            SessionContext::V4(c) => (c.src_port, c.dst_port, c.protocol),
            SessionContext::V6(c) => (c.src_port, c.dst_port, c.protocol),
        }
    }

    /// Value length: 13 (IPv4) or 37 (IPv6).
    pub const fn value_len(&self) -> usize {
        match self {
            SessionContext::V4(_) => 13,
            SessionContext::V6(_) => 37,
        }
    }

    fn parse(tlv: &Tlv<'_>, v6: bool) -> Result<SessionContext, MetadataError> {
        let v = tlv.value;
        let a = if v6 { 16 } else { 4 };
        if v.len() != 2 * a + 5 {
            return Err(MetadataError::BadTlvLength(tlv.ty.raw()));
        }
        let (src_port, dst_port) = (be::u16(&v[2 * a..]), be::u16(&v[2 * a + 2..]));
        let protocol = IpProtocol::from(v[2 * a + 4]);
        Ok(if v6 {
            SessionContext::V6(Context {
                src: be::ipv6(&v[..16]),
                dst: be::ipv6(&v[16..32]),
                src_port,
                dst_port,
                protocol,
            })
        } else {
            SessionContext::V4(Context {
                src: be::ipv4(&v[..4]),
                dst: be::ipv4(&v[4..8]),
                src_port,
                dst_port,
                protocol,
            })
        })
    }

    fn emit(&self, out: &mut [u8]) {
        let a = match self {
            SessionContext::V4(c) => {
                out[..4].copy_from_slice(&c.src.octets());
                out[4..8].copy_from_slice(&c.dst.octets());
                4
            }
            SessionContext::V6(c) => {
                out[..16].copy_from_slice(&c.src.octets());
                out[16..32].copy_from_slice(&c.dst.octets());
                16
            }
        };
        let (sp, dp, proto) = self.ports_protocol();
        be::set_u16(&mut out[2 * a..], sp);
        be::set_u16(&mut out[2 * a + 2..], dp);
        out[2 * a + 4] = proto.into();
    }
}

/// Fragment (type 1, 10 bytes): binds every fragment of a packet to its session. The reserved
/// flag bit is sent as 0 and ignored on receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// Extended ID: tells fragment tuples apart.
    pub extended_id: u32,
    /// The L3 Identification of the original packet.
    pub original_id: u16,
    /// DF.
    pub dont_frag: bool,
    /// MF.
    pub more_frags: bool,
    /// Fragment offset in 8-byte units (13 bits; higher bits are dropped on emit).
    pub offset: u16,
    /// Largest fragment seen.
    pub largest_seen: u16,
}

impl Fragment {
    fn parse(tlv: &Tlv<'_>) -> Result<Fragment, MetadataError> {
        let v = exact::<10>(tlv)?;
        let fo = be::u16(&v[6..8]);
        Ok(Fragment {
            extended_id: be::u32(&v[..4]),
            original_id: be::u16(&v[4..6]),
            dont_frag: fo & 0x4000 != 0,
            more_frags: fo & 0x2000 != 0,
            offset: fo & 0x1fff,
            largest_seen: be::u16(&v[8..10]),
        })
    }

    fn emit(&self, out: &mut [u8]) {
        be::set_u32(&mut out[..4], self.extended_id);
        be::set_u16(&mut out[4..6], self.original_id);
        let fo = (u16::from(self.dont_frag) << 14)
            | (u16::from(self.more_frags) << 13)
            | (self.offset & 0x1fff);
        be::set_u16(&mut out[6..8], fo);
        be::set_u16(&mut out[8..10], self.largest_seen);
    }
}

/// Selective Acknowledgement (type 23, `4 + 8n` bytes; parsed, relayed, not acted on).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sack<'a>(&'a [u8]);

impl<'a> Sack<'a> {
    /// Wraps a value of `4 + 8n` bytes; `None` for any other length.
    pub fn new_checked(value: &'a [u8]) -> Option<Sack<'a>> {
        (value.len() >= 4 && (value.len() - 4) % 8 == 0).then_some(Sack(value))
    }

    /// The last TCP sequence number received.
    pub fn ack(&self) -> u32 {
        be::u32(self.0)
    }

    /// The `(left, right)` edges of each block.
    pub fn blocks(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        self.0[4..]
            .chunks_exact(8)
            .map(|c| (be::u32(&c[..4]), be::u32(&c[4..])))
    }

    /// The value bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

impl fmt::Debug for Sack<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sack")
            .field("ack", &self.ack())
            .field("blocks", &self.blocks().count())
            .finish()
    }
}

/// Reason of an SVR Control Message (type 24). Unknown reasons are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlReason {
    /// 1: keep-alive; only keeps NAT pinholes open.
    KeepAlive,
    /// 2: Enable Metadata; the receiver has no state and asks for metadata again.
    EnableMetadata,
    /// 3: Disable Metadata; the originator may stop forward metadata.
    DisableMetadata,
    /// 6: Delete Session.
    DeleteSession,
    /// 8: Session Health Check answer: state exists.
    HealthCheckStateExists,
    /// Any other reason (0 is reserved "unknown").
    Unknown(u8),
}

impl From<u8> for ControlReason {
    fn from(v: u8) -> Self {
        match v {
            1 => ControlReason::KeepAlive,
            2 => ControlReason::EnableMetadata,
            3 => ControlReason::DisableMetadata,
            6 => ControlReason::DeleteSession,
            8 => ControlReason::HealthCheckStateExists,
            other => ControlReason::Unknown(other),
        }
    }
}

impl From<ControlReason> for u8 {
    fn from(v: ControlReason) -> u8 {
        match v {
            ControlReason::KeepAlive => 1,
            ControlReason::EnableMetadata => 2,
            ControlReason::DisableMetadata => 3,
            ControlReason::DeleteSession => 6,
            ControlReason::HealthCheckStateExists => 8,
            ControlReason::Unknown(other) => other,
        }
    }
}

/// Session Health Check (type 46 in the header, 1 byte). Unknown values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthCheck {
    /// 1: request.
    Request,
    /// 2: request / timeout.
    RequestTimeout,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for HealthCheck {
    fn from(v: u8) -> Self {
        match v {
            1 => HealthCheck::Request,
            2 => HealthCheck::RequestTimeout,
            other => HealthCheck::Unknown(other),
        }
    }
}

impl From<HealthCheck> for u8 {
    fn from(v: HealthCheck) -> u8 {
        match v {
            HealthCheck::Request => 1,
            HealthCheck::RequestTimeout => 2,
            HealthCheck::Unknown(other) => other,
        }
    }
}

/// Path Metrics (type 26, 10 bytes; parsed, relayed, not acted on). Field widths are masked
/// on emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PathMetrics {
    /// Sender's current colour (4 bits).
    pub tx_color: u8,
    /// Milliseconds since that colour started (28 bits).
    pub tx_time: u32,
    /// Latest colour received from the peer (4 bits).
    pub rx_color: u8,
    /// Peer's time value plus time since cached, ms (28 bits).
    pub rx_time: u32,
    /// D: the packet exists only to carry metrics.
    pub drop: bool,
    /// Packets received in the colour block before the current one (15 bits).
    pub prev_rx_color_count: u16,
}

impl PathMetrics {
    fn parse(tlv: &Tlv<'_>) -> Result<PathMetrics, MetadataError> {
        let v = exact::<10>(tlv)?;
        let tx = be::u32(&v[..4]);
        let rx = be::u32(&v[4..8]);
        let d = be::u16(&v[8..10]);
        Ok(PathMetrics {
            tx_color: (tx >> 28) as u8,
            tx_time: tx & 0x0fff_ffff,
            rx_color: (rx >> 28) as u8,
            rx_time: rx & 0x0fff_ffff,
            drop: d & 0x8000 != 0,
            prev_rx_color_count: d & 0x7fff,
        })
    }

    fn emit(&self, out: &mut [u8]) {
        let word = |c: u8, t: u32| (u32::from(c & 0x0f) << 28) | (t & 0x0fff_ffff);
        be::set_u32(&mut out[..4], word(self.tx_color, self.tx_time));
        be::set_u32(&mut out[4..8], word(self.rx_color, self.rx_time));
        let d = (u16::from(self.drop) << 15) | (self.prev_rx_color_count & 0x7fff);
        be::set_u16(&mut out[8..10], d);
    }
}

/// Modify Request (type 28, 2 bytes; parsed, relayed, not acted on). The reserved bits are
/// sent as 0 and ignored on receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModifyRequest {
    /// F: forward (true) or reverse.
    pub forward: bool,
    /// D: divert to the slow path (true) or handle inline.
    pub divert: bool,
    /// Number of modifications so far (12 bits).
    pub sequence: u16,
}

impl ModifyRequest {
    fn parse(tlv: &Tlv<'_>) -> Result<ModifyRequest, MetadataError> {
        let v = be::u16(&exact::<2>(tlv)?);
        Ok(ModifyRequest {
            forward: v & 0x8000 != 0,
            divert: v & 0x4000 != 0,
            sequence: v & 0x0fff,
        })
    }

    fn emit(&self, out: &mut [u8]) {
        let v = (u16::from(self.forward) << 15)
            | (u16::from(self.divert) << 14)
            | (self.sequence & 0x0fff);
        be::set_u16(out, v);
    }
}

/// Cipher of a payload key. Only one is defined; any other code is `BadValue(46)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadCipher {
    /// 1: AES-256-CBC with the encrypted-counter IV and HMAC-SHA384/24 (svr-crypto).
    Aes256Cbc,
}

impl PayloadCipher {
    /// The wire code.
    pub const fn code(self) -> u8 {
        match self {
            PayloadCipher::Aes256Cbc => 1,
        }
    }
}

/// Our Payload Key TLV (type 46 in the payload section, 34 bytes):
/// `index (u8) | cipher (u8, 1 = AES-256-CBC) | key (32 bytes)`. Only ever sent inside the
/// encrypted payload TLVs. The key is borrowed from the (decrypted) packet buffer, never
/// copied here; `Debug` redacts it. The caller zeroizes the buffer after installing the key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PayloadKeyTlv<'a> {
    /// Payload-key index (the nonce block's second byte).
    pub index: u8,
    /// Cipher.
    pub cipher: PayloadCipher,
    /// The 32-byte AES-256 payload key.
    pub key: &'a [u8; 32],
}

impl fmt::Debug for PayloadKeyTlv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayloadKeyTlv")
            .field("index", &self.index)
            .field("cipher", &self.cipher)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl<'a> PayloadKeyTlv<'a> {
    fn parse(tlv: &Tlv<'a>) -> Result<PayloadKeyTlv<'a>, MetadataError> {
        let bad_len = MetadataError::BadTlvLength(tlv.ty.raw());
        if tlv.value.len() != PAYLOAD_KEY_TLV_LEN {
            return Err(bad_len);
        }
        let cipher = match tlv.value[1] {
            1 => PayloadCipher::Aes256Cbc,
            _ => return Err(MetadataError::BadValue(tlv.ty.raw())),
        };
        let key: &'a [u8; 32] = tlv.value[2..].try_into().map_err(|_| bad_len)?;
        Ok(PayloadKeyTlv {
            index: tlv.value[0],
            cipher,
            key,
        })
    }

    fn emit(&self, out: &mut [u8]) {
        out[0] = self.index;
        out[1] = self.cipher.code();
        out[2..PAYLOAD_KEY_TLV_LEN].copy_from_slice(self.key);
    }
}

/// Addresses of a Multicast Group Context of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Group<A> {
    /// Flags (meaning unknown; relayed as is).
    pub flags: u8,
    /// Source (unspecified for any-source).
    pub source: A,
    /// Group address.
    pub group: A,
    /// IP protocol.
    pub protocol: IpProtocol,
}

/// Multicast Group Context (type 50; parsed, relayed, not acted on):
/// `family (4 or 6) | flags | source | group | protocol`, 11 or 35 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MulticastGroup {
    /// IPv4 (family 4).
    V4(Group<Ipv4Addr>),
    /// IPv6 (family 6).
    V6(Group<Ipv6Addr>),
}

impl MulticastGroup {
    fn value_len(&self) -> usize {
        match self {
            MulticastGroup::V4(_) => 11,
            MulticastGroup::V6(_) => 35,
        }
    }

    fn parse(tlv: &Tlv<'_>) -> Result<MulticastGroup, MetadataError> {
        let v = tlv.value;
        let bad_len = MetadataError::BadTlvLength(tlv.ty.raw());
        let family = *v.first().ok_or(bad_len)?;
        let a = match family {
            4 => 4,
            6 => 16,
            _ => return Err(MetadataError::BadValue(tlv.ty.raw())),
        };
        if v.len() != 3 + 2 * a {
            return Err(bad_len);
        }
        let (flags, protocol) = (v[1], IpProtocol::from(v[2 + 2 * a]));
        Ok(if a == 4 {
            MulticastGroup::V4(Group {
                flags,
                source: be::ipv4(&v[2..6]),
                group: be::ipv4(&v[6..10]),
                protocol,
            })
        } else {
            MulticastGroup::V6(Group {
                flags,
                source: be::ipv6(&v[2..18]),
                group: be::ipv6(&v[18..34]),
                protocol,
            })
        })
    }

    fn emit(&self, out: &mut [u8]) {
        let (a, flags, protocol) = match self {
            MulticastGroup::V4(g) => {
                out[2..6].copy_from_slice(&g.source.octets());
                out[6..10].copy_from_slice(&g.group.octets());
                (4, g.flags, g.protocol)
            }
            MulticastGroup::V6(g) => {
                out[2..18].copy_from_slice(&g.source.octets());
                out[18..34].copy_from_slice(&g.group.octets());
                (16, g.flags, g.protocol)
            }
        };
        out[0] = if a == 4 { 4 } else { 6 };
        out[1] = flags;
        out[2 + 2 * a] = protocol.into();
    }
}

/// Multicast Egress List (type 51; parsed, relayed, not acted on):
/// `count (u16) | count × { name length (u8) | router name }`, ending exactly at the value end.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MulticastEgressList<'a>(&'a [u8]);

impl<'a> MulticastEgressList<'a> {
    /// Validates a value: the entries must fill it exactly (`BadTlvLength(51)`) and each name
    /// must pass [`check_name`] (`BadName(51)`).
    pub fn new_checked(value: &'a [u8]) -> Result<MulticastEgressList<'a>, MetadataError> {
        let ty = TlvType::MulticastEgressList;
        let bad_len = MetadataError::BadTlvLength(ty.raw());
        let count = be::u16(value.get(..2).ok_or(bad_len)?);
        let mut rest = &value[2..];
        for _ in 0..count {
            let n = usize::from(*rest.first().ok_or(bad_len)?);
            check_name(ty, rest.get(1..1 + n).ok_or(bad_len)?)?;
            rest = &rest[1 + n..];
        }
        if !rest.is_empty() {
            return Err(bad_len);
        }
        Ok(MulticastEgressList(value))
    }

    /// Number of egress routers.
    pub fn count(&self) -> u16 {
        be::u16(self.0)
    }

    /// The egress router names.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut rest = self.0.get(2..).unwrap_or(&[]);
        core::iter::from_fn(move || {
            let n = usize::from(*rest.first()?);
            let name = rest.get(1..1 + n)?;
            rest = rest.get(1 + n..)?;
            core::str::from_utf8(name).ok()
        })
    }

    /// The value bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

impl fmt::Debug for MulticastEgressList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// One TLV with a typed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlvValue<'a> {
    /// 1.
    Fragment(Fragment),
    /// 2 (IPv4) or 3 (IPv6).
    ForwardContext(SessionContext),
    /// 4 (IPv4) or 5 (IPv6).
    ReverseContext(SessionContext),
    /// 6.
    SessionUuid([u8; 16]),
    /// 7.
    TenantName(&'a str),
    /// 8.
    GlobalInterfaceId(u32),
    /// 10.
    ServiceName(&'a str),
    /// 11.
    SessionEncrypted,
    /// 12.
    TcpSyn,
    /// 13.
    NumberOfSessions(u64),
    /// 14.
    SourceRouterName(&'a str),
    /// 15.
    SourceRouterSecurityName(&'a str),
    /// 16.
    SecurityIdentifier(u32),
    /// 52 (ours): `sender's wayport << 16 | other wayport` of the packet a control answers.
    ControlBinding(u32),
    /// 17.
    DestinationRouterName(&'a str),
    /// 18.
    DisableForwardMetadata,
    /// 19.
    PeerPathId(&'a str),
    /// 20.
    EgressSourceV4(Ipv4Addr),
    /// 21.
    EgressSourceV6(Ipv6Addr),
    /// 23.
    SelectiveAck(Sack<'a>),
    /// 24.
    ControlMessage(ControlReason),
    /// 25.
    SourceNatV4(Ipv4Addr),
    /// 26.
    PathMetrics(PathMetrics),
    /// 28.
    ModifyRequest(ModifyRequest),
    /// 35.
    ApplicationName(&'a str),
    /// 42.
    RemainingSessionTime(u32),
    /// 46 in the header.
    SessionHealthCheck(HealthCheck),
    /// 46 in the payload.
    PayloadKey(PayloadKeyTlv<'a>),
    /// 47: payload-key index (reverse metadata's acknowledgement of a payload key).
    PayloadKeyIndex(u8),
    /// 50.
    MulticastGroupContext(MulticastGroup),
    /// 51.
    MulticastEgressList(MulticastEgressList<'a>),
    /// A type this crate does not name (skipped by [`MetadataRepr`](super::MetadataRepr)).
    Unknown(u16, &'a [u8]),
}

impl<'a> TlvValue<'a> {
    /// Checks the length and contents of `tlv` for its type. Section placement is the
    /// caller's check ([`MetadataRepr::parse`](super::MetadataRepr::parse)).
    pub fn parse(tlv: Tlv<'a>) -> Result<TlvValue<'a>, MetadataError> {
        use TlvType as T;
        let name = || check_name(tlv.ty, tlv.value);
        Ok(match tlv.ty {
            T::Fragment => TlvValue::Fragment(Fragment::parse(&tlv)?),
            T::ForwardContextV4 => TlvValue::ForwardContext(SessionContext::parse(&tlv, false)?),
            T::ForwardContextV6 => TlvValue::ForwardContext(SessionContext::parse(&tlv, true)?),
            T::ReverseContextV4 => TlvValue::ReverseContext(SessionContext::parse(&tlv, false)?),
            T::ReverseContextV6 => TlvValue::ReverseContext(SessionContext::parse(&tlv, true)?),
            T::SessionUuid => TlvValue::SessionUuid(exact::<16>(&tlv)?),
            T::TenantName => TlvValue::TenantName(name()?),
            T::GlobalInterfaceId => TlvValue::GlobalInterfaceId(u32::from_be_bytes(exact(&tlv)?)),
            T::ServiceName => TlvValue::ServiceName(name()?),
            T::SessionEncrypted => flag(&tlv).map(|_| TlvValue::SessionEncrypted)?,
            T::TcpSyn => flag(&tlv).map(|_| TlvValue::TcpSyn)?,
            T::NumberOfSessions => TlvValue::NumberOfSessions(u64::from_be_bytes(exact(&tlv)?)),
            T::SourceRouterName => TlvValue::SourceRouterName(name()?),
            T::SourceRouterSecurityName => TlvValue::SourceRouterSecurityName(name()?),
            T::SecurityIdentifier => TlvValue::SecurityIdentifier(u32::from_be_bytes(exact(&tlv)?)),
            T::ControlBinding => TlvValue::ControlBinding(u32::from_be_bytes(exact(&tlv)?)),
            T::DestinationRouterName => TlvValue::DestinationRouterName(name()?),
            T::DisableForwardMetadata => flag(&tlv).map(|_| TlvValue::DisableForwardMetadata)?,
            T::PeerPathId => TlvValue::PeerPathId(name()?),
            T::EgressSourceV4 => TlvValue::EgressSourceV4(exact::<4>(&tlv)?.into()),
            T::EgressSourceV6 => TlvValue::EgressSourceV6(exact::<16>(&tlv)?.into()),
            T::SelectiveAck => TlvValue::SelectiveAck(
                Sack::new_checked(tlv.value).ok_or(MetadataError::BadTlvLength(tlv.ty.raw()))?,
            ),
            T::ControlMessage => TlvValue::ControlMessage(exact::<1>(&tlv)?[0].into()),
            T::SourceNatV4 => TlvValue::SourceNatV4(exact::<4>(&tlv)?.into()),
            T::PathMetrics => TlvValue::PathMetrics(PathMetrics::parse(&tlv)?),
            T::ModifyRequest => TlvValue::ModifyRequest(ModifyRequest::parse(&tlv)?),
            T::ApplicationName => TlvValue::ApplicationName(name()?),
            T::RemainingSessionTime => {
                TlvValue::RemainingSessionTime(u32::from_be_bytes(exact(&tlv)?))
            }
            T::SessionHealthCheck => TlvValue::SessionHealthCheck(exact::<1>(&tlv)?[0].into()),
            T::PayloadKey => TlvValue::PayloadKey(PayloadKeyTlv::parse(&tlv)?),
            T::PayloadKeyIndex => TlvValue::PayloadKeyIndex(exact::<1>(&tlv)?[0]),
            T::MulticastGroupContext => {
                TlvValue::MulticastGroupContext(MulticastGroup::parse(&tlv)?)
            }
            T::MulticastEgressList => {
                TlvValue::MulticastEgressList(MulticastEgressList::new_checked(tlv.value)?)
            }
            T::Unknown(t) => TlvValue::Unknown(t, tlv.value),
        })
    }

    /// The wire type (for contexts, by address family).
    pub fn ty(&self) -> TlvType {
        use TlvType as T;
        match self {
            TlvValue::Fragment(_) => T::Fragment,
            TlvValue::ForwardContext(SessionContext::V4(_)) => T::ForwardContextV4,
            TlvValue::ForwardContext(SessionContext::V6(_)) => T::ForwardContextV6,
            TlvValue::ReverseContext(SessionContext::V4(_)) => T::ReverseContextV4,
            TlvValue::ReverseContext(SessionContext::V6(_)) => T::ReverseContextV6,
            TlvValue::SessionUuid(_) => T::SessionUuid,
            TlvValue::TenantName(_) => T::TenantName,
            TlvValue::GlobalInterfaceId(_) => T::GlobalInterfaceId,
            TlvValue::ServiceName(_) => T::ServiceName,
            TlvValue::SessionEncrypted => T::SessionEncrypted,
            TlvValue::TcpSyn => T::TcpSyn,
            TlvValue::NumberOfSessions(_) => T::NumberOfSessions,
            TlvValue::SourceRouterName(_) => T::SourceRouterName,
            TlvValue::SourceRouterSecurityName(_) => T::SourceRouterSecurityName,
            TlvValue::SecurityIdentifier(_) => T::SecurityIdentifier,
            TlvValue::ControlBinding(_) => T::ControlBinding,
            TlvValue::DestinationRouterName(_) => T::DestinationRouterName,
            TlvValue::DisableForwardMetadata => T::DisableForwardMetadata,
            TlvValue::PeerPathId(_) => T::PeerPathId,
            TlvValue::EgressSourceV4(_) => T::EgressSourceV4,
            TlvValue::EgressSourceV6(_) => T::EgressSourceV6,
            TlvValue::SelectiveAck(_) => T::SelectiveAck,
            TlvValue::ControlMessage(_) => T::ControlMessage,
            TlvValue::SourceNatV4(_) => T::SourceNatV4,
            TlvValue::PathMetrics(_) => T::PathMetrics,
            TlvValue::ModifyRequest(_) => T::ModifyRequest,
            TlvValue::ApplicationName(_) => T::ApplicationName,
            TlvValue::RemainingSessionTime(_) => T::RemainingSessionTime,
            TlvValue::SessionHealthCheck(_) => T::SessionHealthCheck,
            TlvValue::PayloadKey(_) => T::PayloadKey,
            TlvValue::PayloadKeyIndex(_) => T::PayloadKeyIndex,
            TlvValue::MulticastGroupContext(_) => T::MulticastGroupContext,
            TlvValue::MulticastEgressList(_) => T::MulticastEgressList,
            TlvValue::Unknown(t, _) => T::Unknown(*t),
        }
    }

    /// Length of the value (without the 4-byte type/length).
    pub fn value_len(&self) -> usize {
        match self {
            TlvValue::Fragment(_) | TlvValue::PathMetrics(_) => 10,
            TlvValue::ForwardContext(c) | TlvValue::ReverseContext(c) => c.value_len(),
            TlvValue::SessionUuid(_) | TlvValue::EgressSourceV6(_) => 16,
            TlvValue::TenantName(s)
            | TlvValue::ServiceName(s)
            | TlvValue::SourceRouterName(s)
            | TlvValue::SourceRouterSecurityName(s)
            | TlvValue::DestinationRouterName(s)
            | TlvValue::PeerPathId(s)
            | TlvValue::ApplicationName(s) => s.len(),
            TlvValue::GlobalInterfaceId(_)
            | TlvValue::SecurityIdentifier(_)
            | TlvValue::ControlBinding(_)
            | TlvValue::EgressSourceV4(_)
            | TlvValue::SourceNatV4(_)
            | TlvValue::RemainingSessionTime(_) => 4,
            TlvValue::SessionEncrypted | TlvValue::TcpSyn | TlvValue::DisableForwardMetadata => 0,
            TlvValue::NumberOfSessions(_) => 8,
            TlvValue::SelectiveAck(s) => s.as_bytes().len(),
            TlvValue::ControlMessage(_)
            | TlvValue::SessionHealthCheck(_)
            | TlvValue::PayloadKeyIndex(_) => 1,
            TlvValue::ModifyRequest(_) => 2,
            TlvValue::PayloadKey(_) => PAYLOAD_KEY_TLV_LEN,
            TlvValue::MulticastGroupContext(g) => g.value_len(),
            TlvValue::MulticastEgressList(l) => l.as_bytes().len(),
            TlvValue::Unknown(_, v) => v.len(),
        }
    }

    /// Bytes on the wire: 4 + value.
    pub fn wire_len(&self) -> usize {
        super::tlv::TLV_HEADER_LEN + self.value_len()
    }

    /// Appends this TLV to `w`. Names are checked ([`check_name`]) before anything is written.
    pub fn write(&self, w: &mut TlvWriter<'_>) -> Result<(), MetadataError> {
        let ty = self.ty();
        match self {
            TlvValue::TenantName(s)
            | TlvValue::ServiceName(s)
            | TlvValue::SourceRouterName(s)
            | TlvValue::SourceRouterSecurityName(s)
            | TlvValue::DestinationRouterName(s)
            | TlvValue::PeerPathId(s)
            | TlvValue::ApplicationName(s) => {
                check_name(ty, s.as_bytes())?;
                return w.write(ty, s.as_bytes());
            }
            TlvValue::MulticastEgressList(l) => {
                MulticastEgressList::new_checked(l.as_bytes())?;
            }
            _ => {}
        }
        let out = w.begin(ty, self.value_len())?;
        match self {
            TlvValue::Fragment(f) => f.emit(out),
            TlvValue::ForwardContext(c) | TlvValue::ReverseContext(c) => c.emit(out),
            TlvValue::SessionUuid(u) => out.copy_from_slice(u),
            TlvValue::GlobalInterfaceId(v)
            | TlvValue::SecurityIdentifier(v)
            | TlvValue::ControlBinding(v)
            | TlvValue::RemainingSessionTime(v) => be::set_u32(out, *v),
            TlvValue::NumberOfSessions(v) => out.copy_from_slice(&v.to_be_bytes()),
            TlvValue::EgressSourceV4(a) | TlvValue::SourceNatV4(a) => {
                out.copy_from_slice(&a.octets())
            }
            TlvValue::EgressSourceV6(a) => out.copy_from_slice(&a.octets()),
            TlvValue::SelectiveAck(s) => out.copy_from_slice(s.as_bytes()),
            TlvValue::ControlMessage(r) => out[0] = (*r).into(),
            TlvValue::PathMetrics(m) => m.emit(out),
            TlvValue::ModifyRequest(m) => m.emit(out),
            TlvValue::SessionHealthCheck(h) => out[0] = (*h).into(),
            TlvValue::PayloadKey(k) => k.emit(out),
            TlvValue::PayloadKeyIndex(i) => out[0] = *i,
            TlvValue::MulticastGroupContext(g) => g.emit(out),
            TlvValue::MulticastEgressList(l) => out.copy_from_slice(l.as_bytes()),
            TlvValue::Unknown(_, v) => out.copy_from_slice(v),
            // Flags have no value; names were written above.
            TlvValue::SessionEncrypted
            | TlvValue::TcpSyn
            | TlvValue::DisableForwardMetadata
            | TlvValue::TenantName(_)
            | TlvValue::ServiceName(_)
            | TlvValue::SourceRouterName(_)
            | TlvValue::SourceRouterSecurityName(_)
            | TlvValue::DestinationRouterName(_)
            | TlvValue::PeerPathId(_)
            | TlvValue::ApplicationName(_) => {}
        }
        Ok(())
    }
}
