//! [`MetadataRepr`]: the metadata of one packet as a struct of typed fields, parsed strictly
//! and emitted in the fixed transmit order; and the three messages we send:
//! [`ForwardMetadata`], [`ReverseMetadata`] and [`ControlMessage`].

use std::net::{Ipv4Addr, Ipv6Addr};

use super::header::{MetadataHeader, BASE_LEN, MAX_HEADER_LEN};
use super::tlv::{Section, TlvIter, TlvType, TlvWriter};
use super::value::{
    ControlReason, Fragment, HealthCheck, ModifyRequest, MulticastEgressList, MulticastGroup,
    PathMetrics, PayloadKeyTlv, Sack, SessionContext, TlvValue,
};
use super::MetadataError;

/// The metadata of one packet: header TLVs and (decrypted) payload TLVs. Names borrow from the
/// packet; nothing allocates.
///
/// # Parsing ([`parse`](Self::parse)) is strict
///
/// In walk order, the first of these errors wins: a TLV overrunning its section
/// (`TlvOverrun`); a known type in the other section (`WrongSection`); a type seen twice in its
/// section (`DuplicateTlv`; types 2 and 3 are one "forward context", 4 and 5 one "reverse
/// context"); a bad length or value for the type (`BadTlvLength`, `BadName`, `BadValue`). An
/// unknown type is skipped by its length. Whether the TLVs fit the message kind (for instance
/// that forward metadata names a service) is checked by the conversions to
/// [`ForwardMetadata`], [`ReverseMetadata`] and [`ControlMessage`].
///
/// # Emission ([`emit`](Self::emit)) uses the fixed transmit order
///
/// Header: 16, 18, 24, then 1, 20, 21, 23, 26, 28, 46 (health check). Payload: forward
/// context (2/3), reverse context (4/5), 7, 10, 6, 14, 15, 17, 19, 11, 12, then 8, 13, 25, 35,
/// 42, 50, 51, and the payload key (46) last. Every field present is emitted, including the
/// ones we only parse (SACK, path metrics, …), so `parse(emit(r)) == r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetadataRepr<'a> {
    // ---- header section ----
    /// 16: the metadata key's rekey index.
    pub security_id: Option<u32>,
    /// 18: stop sending forward metadata (reverse metadata).
    pub disable_forward_metadata: bool,
    /// 24: control message reason.
    pub control: Option<ControlReason>,
    /// 52: the wayports of the packet a control message answers.
    pub control_binding: Option<u32>,
    /// 1: fragment binding.
    pub fragment: Option<Fragment>,
    /// 20: IPv4 router egress source address.
    pub egress_source_v4: Option<Ipv4Addr>,
    /// 21: IPv6 router egress source address.
    pub egress_source_v6: Option<Ipv6Addr>,
    /// 23: selective acknowledgement.
    pub sack: Option<Sack<'a>>,
    /// 26: path metrics.
    pub path_metrics: Option<PathMetrics>,
    /// 28: modify request.
    pub modify_request: Option<ModifyRequest>,
    /// 46 (header): session health check.
    pub health_check: Option<HealthCheck>,
    // ---- payload section ----
    /// 2 / 3: forward context.
    pub forward_context: Option<SessionContext>,
    /// 4 / 5: reverse context.
    pub reverse_context: Option<SessionContext>,
    /// 7: (source) tenant name.
    pub tenant: Option<&'a str>,
    /// 10: service name.
    pub service: Option<&'a str>,
    /// 6: session UUID.
    pub session_uuid: Option<[u8; 16]>,
    /// 14: source router name.
    pub source_router: Option<&'a str>,
    /// 15: source router security name.
    pub source_router_security_name: Option<&'a str>,
    /// 17: destination router name.
    pub destination_router: Option<&'a str>,
    /// 19: peer path ID.
    pub peer_path_id: Option<&'a str>,
    /// 11: the session payload is encrypted.
    pub session_encrypted: bool,
    /// 12: this packet is a TCP SYN.
    pub tcp_syn: bool,
    /// 8: global interface ID.
    pub global_interface_id: Option<u32>,
    /// 13: number of sessions of the service.
    pub number_of_sessions: Option<u64>,
    /// 25: IPv4 source NAT address.
    pub source_nat_v4: Option<Ipv4Addr>,
    /// 35: application name.
    pub application_name: Option<&'a str>,
    /// 42: remaining session time, seconds.
    pub remaining_session_time: Option<u32>,
    /// 50: multicast group context.
    pub multicast_group: Option<MulticastGroup>,
    /// 51: multicast egress list.
    pub multicast_egress: Option<MulticastEgressList<'a>>,
    /// 46 (payload): the session's payload key.
    pub payload_key: Option<PayloadKeyTlv<'a>>,
    /// 47: the index of the payload key a reverse packet is under (its acknowledgement).
    pub payload_key_index: Option<u8>,
}

/// The duplicate-tracking slot of a type: its number, with 3 folded onto 2 and 5 onto 4.
fn slot(ty: TlvType) -> Option<u32> {
    match ty {
        TlvType::Unknown(_) => None,
        TlvType::ForwardContextV6 => Some(2),
        TlvType::ReverseContextV6 => Some(4),
        t => Some(u32::from(t.raw())),
    }
}

impl<'a> MetadataRepr<'a> {
    /// `self` with payload key TLV 46 (forward metadata only; reverse metadata names the key
    /// by its index in TLV 47, `docs/protocol.md` §4).
    pub fn with_payload_key(mut self, key: PayloadKeyTlv<'a>) -> MetadataRepr<'a> {
        self.payload_key = Some(key);
        self
    }

    /// Parses a header-TLV section (`[12, HL)`) and a cleartext payload-TLV section.
    pub fn parse(
        header_tlvs: &'a [u8],
        payload_tlvs: &'a [u8],
    ) -> Result<MetadataRepr<'a>, MetadataError> {
        let mut repr = MetadataRepr::default();
        repr.parse_section(header_tlvs, Section::Header)?;
        repr.parse_section(payload_tlvs, Section::Payload)?;
        Ok(repr)
    }

    /// Parses metadata whose payload TLVs are in clear (before sealing, or after
    /// [`open_metadata`](super::open_metadata) decrypted them in place).
    pub fn parse_cleartext<T: AsRef<[u8]> + ?Sized>(
        header: &MetadataHeader<&'a T>,
    ) -> Result<MetadataRepr<'a>, MetadataError> {
        let data: &'a [u8] = header.clone().into_inner().as_ref();
        let h = MetadataHeader::new_unchecked(data);
        h.check_len()?;
        let (hl, pl) = (h.header_len(), h.payload_len());
        Self::parse(&data[BASE_LEN..hl], &data[hl..hl + pl])
    }

    fn parse_section(&mut self, data: &'a [u8], section: Section) -> Result<(), MetadataError> {
        let mut seen = 0u64;
        for tlv in TlvIter::new(data, section) {
            let tlv = tlv?;
            let raw = tlv.ty.raw();
            match tlv.ty.section() {
                None => continue,
                Some(s) if s != section => return Err(MetadataError::WrongSection(raw)),
                Some(_) => {}
            }
            if let Some(bit) = slot(tlv.ty) {
                // Named types are below 64.
                let mask = 1u64 << bit;
                if seen & mask != 0 {
                    return Err(MetadataError::DuplicateTlv(raw));
                }
                seen |= mask;
            }
            self.set(TlvValue::parse(tlv)?);
        }
        Ok(())
    }

    fn set(&mut self, v: TlvValue<'a>) {
        match v {
            TlvValue::Fragment(x) => self.fragment = Some(x),
            TlvValue::ForwardContext(x) => self.forward_context = Some(x),
            TlvValue::ReverseContext(x) => self.reverse_context = Some(x),
            TlvValue::SessionUuid(x) => self.session_uuid = Some(x),
            TlvValue::TenantName(x) => self.tenant = Some(x),
            TlvValue::GlobalInterfaceId(x) => self.global_interface_id = Some(x),
            TlvValue::ServiceName(x) => self.service = Some(x),
            TlvValue::SessionEncrypted => self.session_encrypted = true,
            TlvValue::TcpSyn => self.tcp_syn = true,
            TlvValue::NumberOfSessions(x) => self.number_of_sessions = Some(x),
            TlvValue::SourceRouterName(x) => self.source_router = Some(x),
            TlvValue::SourceRouterSecurityName(x) => self.source_router_security_name = Some(x),
            TlvValue::SecurityIdentifier(x) => self.security_id = Some(x),
            TlvValue::DestinationRouterName(x) => self.destination_router = Some(x),
            TlvValue::DisableForwardMetadata => self.disable_forward_metadata = true,
            TlvValue::PeerPathId(x) => self.peer_path_id = Some(x),
            TlvValue::EgressSourceV4(x) => self.egress_source_v4 = Some(x),
            TlvValue::EgressSourceV6(x) => self.egress_source_v6 = Some(x),
            TlvValue::SelectiveAck(x) => self.sack = Some(x),
            TlvValue::ControlMessage(x) => self.control = Some(x),
            TlvValue::ControlBinding(x) => self.control_binding = Some(x),
            TlvValue::SourceNatV4(x) => self.source_nat_v4 = Some(x),
            TlvValue::PathMetrics(x) => self.path_metrics = Some(x),
            TlvValue::ModifyRequest(x) => self.modify_request = Some(x),
            TlvValue::ApplicationName(x) => self.application_name = Some(x),
            TlvValue::RemainingSessionTime(x) => self.remaining_session_time = Some(x),
            TlvValue::SessionHealthCheck(x) => self.health_check = Some(x),
            TlvValue::PayloadKey(x) => self.payload_key = Some(x),
            TlvValue::PayloadKeyIndex(x) => self.payload_key_index = Some(x),
            TlvValue::MulticastGroupContext(x) => self.multicast_group = Some(x),
            TlvValue::MulticastEgressList(x) => self.multicast_egress = Some(x),
            TlvValue::Unknown(..) => {}
        }
    }

    /// The header TLVs, in transmit order.
    pub fn header_values(&self) -> impl Iterator<Item = TlvValue<'a>> {
        let flag = |b: bool, v: TlvValue<'a>| b.then_some(v);
        [
            self.security_id.map(TlvValue::SecurityIdentifier),
            flag(
                self.disable_forward_metadata,
                TlvValue::DisableForwardMetadata,
            ),
            self.control.map(TlvValue::ControlMessage),
            self.control_binding.map(TlvValue::ControlBinding),
            self.fragment.map(TlvValue::Fragment),
            self.egress_source_v4.map(TlvValue::EgressSourceV4),
            self.egress_source_v6.map(TlvValue::EgressSourceV6),
            self.sack.map(TlvValue::SelectiveAck),
            self.path_metrics.map(TlvValue::PathMetrics),
            self.modify_request.map(TlvValue::ModifyRequest),
            self.health_check.map(TlvValue::SessionHealthCheck),
        ]
        .into_iter()
        .flatten()
    }

    /// The payload TLVs, in transmit order.
    pub fn payload_values(&self) -> impl Iterator<Item = TlvValue<'a>> {
        let flag = |b: bool, v: TlvValue<'a>| b.then_some(v);
        [
            self.forward_context.map(TlvValue::ForwardContext),
            self.reverse_context.map(TlvValue::ReverseContext),
            self.tenant.map(TlvValue::TenantName),
            self.service.map(TlvValue::ServiceName),
            self.session_uuid.map(TlvValue::SessionUuid),
            self.source_router.map(TlvValue::SourceRouterName),
            self.source_router_security_name
                .map(TlvValue::SourceRouterSecurityName),
            self.destination_router.map(TlvValue::DestinationRouterName),
            self.peer_path_id.map(TlvValue::PeerPathId),
            flag(self.session_encrypted, TlvValue::SessionEncrypted),
            flag(self.tcp_syn, TlvValue::TcpSyn),
            self.global_interface_id.map(TlvValue::GlobalInterfaceId),
            self.number_of_sessions.map(TlvValue::NumberOfSessions),
            self.source_nat_v4.map(TlvValue::SourceNatV4),
            self.application_name.map(TlvValue::ApplicationName),
            self.remaining_session_time
                .map(TlvValue::RemainingSessionTime),
            self.multicast_group.map(TlvValue::MulticastGroupContext),
            self.multicast_egress.map(TlvValue::MulticastEgressList),
            self.payload_key.map(TlvValue::PayloadKey),
            self.payload_key_index.map(TlvValue::PayloadKeyIndex),
        ]
        .into_iter()
        .flatten()
    }

    /// The Header Length this metadata emits with: 12 + header TLVs.
    pub fn header_len(&self) -> usize {
        BASE_LEN + self.header_values().map(|v| v.wire_len()).sum::<usize>()
    }

    /// Cleartext length of the payload TLVs.
    pub fn payload_len(&self) -> usize {
        self.payload_values().map(|v| v.wire_len()).sum()
    }

    /// Bytes [`emit`](Self::emit) writes: Header Length + cleartext payload TLVs.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len()
    }

    /// Bytes the metadata takes once sealed: Header Length, plus (if there are payload TLVs)
    /// their PKCS#7-padded ciphertext and the 16-byte IV. Reserve this much after the L4 header.
    pub fn sealed_len(&self) -> usize {
        super::seal::sealed_len(self.header_len(), self.payload_len())
    }

    /// Writes the metadata with cleartext payload TLVs (PL = their length) into
    /// `buf[..buffer_len()]` and returns `buffer_len()`. Errors: `BufferTooSmall`,
    /// `BadHeaderLength` (HL > 4095), `BadPayloadLength` (PL > 65535), `BadName` /
    /// `BadTlvLength` for a value that could not be parsed back; on error `buf` may be
    /// partly written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, MetadataError> {
        let hl = self.header_len();
        let pl = self.payload_len();
        let hl16 = u16::try_from(hl)
            .ok()
            .filter(|&v| usize::from(v) <= MAX_HEADER_LEN)
            .ok_or(MetadataError::BadHeaderLength)?;
        let pl16 = u16::try_from(pl).map_err(|_| MetadataError::BadPayloadLength)?;
        let buf = buf
            .get_mut(..hl + pl)
            .ok_or(MetadataError::BufferTooSmall)?;
        MetadataHeader::new_unchecked(&mut buf[..]).init(hl16, pl16);
        let (head, payload) = buf.split_at_mut(hl);
        let mut w = TlvWriter::new(&mut head[BASE_LEN..]);
        for v in self.header_values() {
            v.write(&mut w)?;
        }
        let mut w = TlvWriter::new(payload);
        for v in self.payload_values() {
            v.write(&mut w)?;
        }
        Ok(hl + pl)
    }
}

fn need<T>(v: Option<T>, ty: TlvType) -> Result<T, MetadataError> {
    v.ok_or(MetadataError::MissingTlv(ty.raw()))
}

/// Forward first-packet metadata (draft -00 §4.2.1), sent by the ingress router on every
/// forward packet until reverse metadata arrives.
///
/// Header: Security Identifier (16). Payload, in order: forward context (2/3), tenant (7),
/// service (10), session UUID (6), source router (14), source router security name (15,
/// optional), peer path ID (19), Session Encrypted (11, if set), TCP SYN (12, if set),
/// application name (35, optional), payload key (46, optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardMetadata<'a> {
    /// Rekey index of the receiving peer's metadata key (TLV 16).
    pub security_id: u32,
    /// The original 5-tuple as the ingress received it.
    pub context: SessionContext,
    /// Source tenant.
    pub tenant: &'a str,
    /// Service name (required in every forward metadata).
    pub service: &'a str,
    /// Session UUID, chosen by the initiating router.
    pub session_uuid: [u8; 16],
    /// Our router name.
    pub source_router: &'a str,
    /// Our security policy name, for the peer's reverse metadata.
    pub source_router_security_name: Option<&'a str>,
    /// Our egress interface or path.
    pub peer_path_id: &'a str,
    /// The session's payload is encrypted.
    pub session_encrypted: bool,
    /// This packet is a TCP SYN (needed when the session is UDP-transformed).
    pub tcp_syn: bool,
    /// Application name, from application classification.
    pub application_name: Option<&'a str>,
    /// The session's payload key (TLV 46), when payload encryption is on.
    pub payload_key: Option<PayloadKeyTlv<'a>>,
}

impl<'a> ForwardMetadata<'a> {
    /// The metadata to emit.
    pub fn to_repr(&self) -> MetadataRepr<'a> {
        MetadataRepr {
            security_id: Some(self.security_id),
            forward_context: Some(self.context),
            tenant: Some(self.tenant),
            service: Some(self.service),
            session_uuid: Some(self.session_uuid),
            source_router: Some(self.source_router),
            source_router_security_name: self.source_router_security_name,
            peer_path_id: Some(self.peer_path_id),
            session_encrypted: self.session_encrypted,
            tcp_syn: self.tcp_syn,
            application_name: self.application_name,
            payload_key: self.payload_key,
            ..MetadataRepr::default()
        }
    }

    /// Bytes [`emit`](Self::emit) writes (cleartext).
    pub fn buffer_len(&self) -> usize {
        self.to_repr().buffer_len()
    }

    /// Writes the cleartext metadata into `buf`; see [`MetadataRepr::emit`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, MetadataError> {
        self.to_repr().emit(buf)
    }
}

impl<'a> TryFrom<&MetadataRepr<'a>> for ForwardMetadata<'a> {
    type Error = MetadataError;

    /// Requires 16, 2/3, 7, 10, 6, 14 and 19 (`MissingTlv`); TLVs not valid in the forward
    /// direction are ignored (draft -00 §3.1.4).
    fn try_from(r: &MetadataRepr<'a>) -> Result<Self, MetadataError> {
        Ok(ForwardMetadata {
            security_id: need(r.security_id, TlvType::SecurityIdentifier)?,
            context: need(r.forward_context, TlvType::ForwardContextV4)?,
            tenant: need(r.tenant, TlvType::TenantName)?,
            service: need(r.service, TlvType::ServiceName)?,
            session_uuid: need(r.session_uuid, TlvType::SessionUuid)?,
            source_router: need(r.source_router, TlvType::SourceRouterName)?,
            source_router_security_name: r.source_router_security_name,
            peer_path_id: need(r.peer_path_id, TlvType::PeerPathId)?,
            session_encrypted: r.session_encrypted,
            tcp_syn: r.tcp_syn,
            application_name: r.application_name,
            payload_key: r.payload_key,
        })
    }
}

/// Reverse metadata (draft -00 §4.2.4), sent by the egress router on reverse packets until a
/// forward packet arrives without metadata.
///
/// Header: Security Identifier (16), Disable Forward Metadata (18, if set). Payload: reverse
/// context (4/5), tenant (7), destination router (17), peer path ID (19).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReverseMetadata<'a> {
    /// Rekey index of the receiving peer's metadata key (TLV 16).
    pub security_id: u32,
    /// Our egress-side 5-tuple, after any NAT we applied.
    pub context: SessionContext,
    /// Tenant.
    pub tenant: &'a str,
    /// Our router name (we send it; optional on receive).
    pub destination_router: Option<&'a str>,
    /// Our egress interface or path (we send it; optional on receive).
    pub peer_path_id: Option<&'a str>,
    /// TLV 18, the explicit "stop sending forward metadata" (we always set it).
    pub disable_forward_metadata: bool,
    /// TLV 47: the index of the payload key this packet is under, which acknowledges a
    /// payload rekey (`docs/protocol.md` §4.1). Only the index: the key never travels back.
    pub payload_key_index: Option<u8>,
}

impl<'a> ReverseMetadata<'a> {
    /// The metadata to emit.
    pub fn to_repr(&self) -> MetadataRepr<'a> {
        MetadataRepr {
            security_id: Some(self.security_id),
            disable_forward_metadata: self.disable_forward_metadata,
            reverse_context: Some(self.context),
            tenant: Some(self.tenant),
            destination_router: self.destination_router,
            peer_path_id: self.peer_path_id,
            payload_key_index: self.payload_key_index,
            ..MetadataRepr::default()
        }
    }

    /// Bytes [`emit`](Self::emit) writes (cleartext).
    pub fn buffer_len(&self) -> usize {
        self.to_repr().buffer_len()
    }

    /// Writes the cleartext metadata into `buf`; see [`MetadataRepr::emit`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, MetadataError> {
        self.to_repr().emit(buf)
    }
}

impl<'a> TryFrom<&MetadataRepr<'a>> for ReverseMetadata<'a> {
    type Error = MetadataError;

    /// Requires 16, 4/5 and 7 (`MissingTlv`).
    fn try_from(r: &MetadataRepr<'a>) -> Result<Self, MetadataError> {
        Ok(ReverseMetadata {
            security_id: need(r.security_id, TlvType::SecurityIdentifier)?,
            context: need(r.reverse_context, TlvType::ReverseContextV4)?,
            tenant: need(r.tenant, TlvType::TenantName)?,
            destination_router: r.destination_router,
            peer_path_id: r.peer_path_id,
            disable_forward_metadata: r.disable_forward_metadata,
            payload_key_index: r.payload_key_index,
        })
    }
}

/// A control message (TLV 24): header TLVs only (16, 24), no payload TLVs, PL = 0. Never
/// forwarded by the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlMessage {
    /// Rekey index of the metadata key that signs it (TLV 16).
    pub security_id: u32,
    /// Reason.
    pub reason: ControlReason,
    /// TLV 52: `sender's wayport << 16 | other wayport` of the packet this answers (the
    /// trailer's sequence number is that packet's): binds the message to one session.
    pub binding: u32,
}

impl ControlMessage {
    /// Reason 2, Enable Metadata: "I have no state for this wayport; resend with metadata",
    /// answering a packet that arrived on `our_port` from `their_port`.
    pub const fn enable_metadata(
        security_id: u32,
        our_port: u16,
        their_port: u16,
    ) -> ControlMessage {
        ControlMessage {
            security_id,
            reason: ControlReason::EnableMetadata,
            binding: (our_port as u32) << 16 | their_port as u32,
        }
    }

    /// The metadata to emit.
    pub fn to_repr(&self) -> MetadataRepr<'static> {
        MetadataRepr {
            security_id: Some(self.security_id),
            control: Some(self.reason),
            control_binding: Some(self.binding),
            ..MetadataRepr::default()
        }
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        self.to_repr().buffer_len()
    }

    /// Writes the control message into `buf`; see [`MetadataRepr::emit`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, MetadataError> {
        self.to_repr().emit(buf)
    }
}

impl TryFrom<&MetadataRepr<'_>> for ControlMessage {
    type Error = MetadataError;

    /// Requires 16, 24 and 52 (`MissingTlv`).
    fn try_from(r: &MetadataRepr<'_>) -> Result<Self, MetadataError> {
        Ok(ControlMessage {
            security_id: need(r.security_id, TlvType::SecurityIdentifier)?,
            reason: need(r.control, TlvType::ControlMessage)?,
            binding: need(r.control_binding, TlvType::ControlBinding)?,
        })
    }
}
