//! TLVs: `| type (u16) | length (u16) | value (length bytes) |`, packed back to back, in the
//! header section `[12, HL)` or the payload section `[HL, HL + PL)`.
//!
//! [`TlvType`] names every type of the registry (`docs/protocol.md` §3) and knows the one
//! section it may appear in. Type 46 is resolved by section: Session Health Check in the header,
//! our Payload Key in the payload.

use super::{be, MetadataError};

mod field {
    #![allow(non_snake_case)]
    use crate::wire::Field;

    pub const TYPE: Field = 0..2;
    pub const LENGTH: Field = 2..4;

    pub const fn VALUE(len: usize) -> Field {
        LENGTH.end..LENGTH.end + len
    }
}

/// Length of a TLV's type and length fields.
pub const TLV_HEADER_LEN: usize = field::LENGTH.end;

/// The two TLV areas of the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// Header TLVs: `[12, HL)`, always clear, belong to the peer path.
    Header,
    /// Payload TLVs: `[HL, HL + PL)`, encrypted on the wire, session attributes.
    Payload,
}

/// Declares `TlvType` from one table: variant, wire type, section, counter-friendly name.
macro_rules! tlv_types {
    ( $( $( #[$attr:meta] )* $variant:ident = $raw:literal, $section:ident, $name:literal; )+ ) => {
        /// A TLV type of the registry (draft -00 types 1-28, -08 types 35, 42, 46, 50, 51),
        /// or an unknown one. Type 46 has two variants, resolved by section.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum TlvType {
            $( $( #[$attr] )* $variant, )+
            /// A type this crate does not name: skipped on receive, in either section.
            Unknown(u16),
        }

        impl TlvType {
            /// Every named type, in transmit-table order of `docs/protocol.md`.
            pub const ALL: [TlvType; [$( $raw, )+].len()] = [$( TlvType::$variant, )+];

            /// The wire type number.
            pub const fn raw(self) -> u16 {
                match self {
                    $( TlvType::$variant => $raw, )+
                    TlvType::Unknown(t) => t,
                }
            }

            /// The section this type belongs in; `None` for unknown types.
            pub const fn section(self) -> Option<Section> {
                match self {
                    $( TlvType::$variant => Some(Section::$section), )+
                    TlvType::Unknown(_) => None,
                }
            }

            /// A snake_case name for logs and documentation.
            pub const fn name(self) -> &'static str {
                match self {
                    $( TlvType::$variant => $name, )+
                    TlvType::Unknown(_) => "unknown",
                }
            }

            /// The type of wire number `raw` found in `section`. Known types keep their name
            /// in either section (so a misplaced one can be reported as
            /// [`MetadataError::WrongSection`]); only 46 depends on the section.
            // The table's own `46` rows are unreachable: the two explicit rows decide 46.
            #[allow(unreachable_patterns)]
            pub const fn from_wire(raw: u16, section: Section) -> TlvType {
                match (raw, section) {
                    (46, Section::Header) => TlvType::SessionHealthCheck,
                    (46, Section::Payload) => TlvType::PayloadKey,
                    $( ($raw, _) => TlvType::$variant, )+
                    (t, _) => TlvType::Unknown(t),
                }
            }
        }
    };
}

tlv_types! {
    /// 1: Fragment (header, 10 bytes).
    Fragment = 1, Header, "fragment";
    /// 2: Forward Context IPv4 (payload, 13 bytes).
    ForwardContextV4 = 2, Payload, "forward_context_v4";
    /// 3: Forward Context IPv6 (payload, 37 bytes).
    ForwardContextV6 = 3, Payload, "forward_context_v6";
    /// 4: Reverse Context IPv4 (payload, 13 bytes).
    ReverseContextV4 = 4, Payload, "reverse_context_v4";
    /// 5: Reverse Context IPv6 (payload, 37 bytes).
    ReverseContextV6 = 5, Payload, "reverse_context_v6";
    /// 6: Session UUID (payload, 16 bytes).
    SessionUuid = 6, Payload, "session_uuid";
    /// 7: (Source) Tenant Name (payload, name).
    TenantName = 7, Payload, "tenant_name";
    /// 8: Global Interface ID (payload by our decision, u32).
    GlobalInterfaceId = 8, Payload, "global_interface_id";
    /// 10: Service Name (payload, name).
    ServiceName = 10, Payload, "service_name";
    /// 11: Session Encrypted (payload, flag).
    SessionEncrypted = 11, Payload, "session_encrypted";
    /// 12: TCP SYN Packet (payload, flag).
    TcpSyn = 12, Payload, "tcp_syn";
    /// 13: Number of Sessions (payload by our decision, u64).
    NumberOfSessions = 13, Payload, "number_of_sessions";
    /// 14: Source Router Name (payload, name).
    SourceRouterName = 14, Payload, "source_router_name";
    /// 15: Source Router Security Name (payload, name).
    SourceRouterSecurityName = 15, Payload, "source_router_security_name";
    /// 16: Security Identifier (header, u32: the metadata key's rekey index).
    SecurityIdentifier = 16, Header, "security_identifier";
    /// 17: Destination Router Name (payload, name).
    DestinationRouterName = 17, Payload, "destination_router_name";
    /// 18: Disable Forward Metadata (header per draft -00 §3.2.3, flag).
    DisableForwardMetadata = 18, Header, "disable_forward_metadata";
    /// 19: Peer Path ID (payload, name).
    PeerPathId = 19, Payload, "peer_path_id";
    /// 20: IPv4 Router Egress Source Address (header, 4 bytes).
    EgressSourceV4 = 20, Header, "egress_source_v4";
    /// 21: IPv6 Router Egress Source Address (header, 16 bytes).
    EgressSourceV6 = 21, Header, "egress_source_v6";
    /// 23: Selective Acknowledgement (header, 4 + 8n bytes).
    SelectiveAck = 23, Header, "selective_ack";
    /// 24: SVR Control Message (header, 1 byte reason).
    ControlMessage = 24, Header, "control_message";
    /// 25: IPv4 Source NAT Address (payload, 4 bytes).
    SourceNatV4 = 25, Payload, "source_nat_v4";
    /// 26: Path Metrics (header, 10 bytes).
    PathMetrics = 26, Header, "path_metrics";
    /// 28: Modify Request (header, 2 bytes).
    ModifyRequest = 28, Header, "modify_request";
    /// 35: Application Name (payload, name).
    ApplicationName = 35, Payload, "application_name";
    /// 42: Remaining Session Time (payload by our decision, u32 seconds).
    RemainingSessionTime = 42, Payload, "remaining_session_time";
    /// 46 in the header: Session Health Check (1 byte).
    SessionHealthCheck = 46, Header, "session_health_check";
    /// 46 in the payload: our Payload Key (`index | cipher | key[32]`, 34 bytes).
    PayloadKey = 46, Payload, "payload_key";
    /// 47: our Payload Key Index (payload, 1 byte): reverse metadata acknowledges a payload
    /// key by its index, never by echoing the key.
    PayloadKeyIndex = 47, Payload, "payload_key_index";
    /// 50: Multicast Group Context (payload by our decision, 11 or 35 bytes).
    MulticastGroupContext = 50, Payload, "multicast_group_context";
    /// 51: Multicast Egress List (payload by our decision, variable).
    MulticastEgressList = 51, Payload, "multicast_egress_list";
    /// 52: Control Binding (header, ours, 4 bytes): the wayports of the packet a control
    /// message answers, `sender's port (16) ‖ other port (16)` as the sender received them.
    ControlBinding = 52, Header, "control_binding";
}

impl From<TlvType> for u16 {
    #[inline]
    fn from(t: TlvType) -> u16 {
        t.raw()
    }
}

/// One TLV as found in a section: its type (resolved for the section) and value bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The type.
    pub ty: TlvType,
    /// The value (exactly `length` bytes).
    pub value: &'a [u8],
}

impl Tlv<'_> {
    /// Bytes this TLV occupies on the wire: 4 + value.
    #[inline]
    pub fn wire_len(&self) -> usize {
        TLV_HEADER_LEN + self.value.len()
    }
}

/// A walk over the TLVs of one section. Yields `Err(TlvOverrun)` once (then ends) if a TLV's
/// type/length or value runs past the section end, so a walk that yields only `Ok`s ended
/// exactly at the section end. Never allocates or panics.
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    data: &'a [u8],
    section: Section,
    failed: bool,
}

impl<'a> TlvIter<'a> {
    /// A walk over `data`, a whole section.
    pub const fn new(data: &'a [u8], section: Section) -> TlvIter<'a> {
        TlvIter {
            data,
            section,
            failed: false,
        }
    }

    /// The section being walked.
    pub const fn section(&self) -> Section {
        self.section
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, MetadataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.data.is_empty() {
            return None;
        }
        let parsed = self.data.get(..TLV_HEADER_LEN).and_then(|hdr| {
            let len = usize::from(be::u16(&hdr[field::LENGTH]));
            let value = self.data.get(field::VALUE(len))?;
            let ty = TlvType::from_wire(be::u16(&hdr[field::TYPE]), self.section);
            Some((Tlv { ty, value }, TLV_HEADER_LEN + len))
        });
        match parsed {
            Some((tlv, used)) => {
                self.data = &self.data[used..];
                Some(Ok(tlv))
            }
            None => {
                self.failed = true;
                Some(Err(MetadataError::TlvOverrun))
            }
        }
    }
}

/// A cursor that writes TLVs back to back into a caller buffer. Each write checks the room
/// left and fails with [`MetadataError::BufferTooSmall`] without writing.
#[derive(Debug)]
pub struct TlvWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> TlvWriter<'b> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'b mut [u8]) -> TlvWriter<'b> {
        TlvWriter { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Reserves a TLV of `value_len` bytes, writes its type and length, and returns the value
    /// area for the caller to fill. `value_len` above 65535 is `BufferTooSmall` too.
    pub fn begin(&mut self, ty: TlvType, value_len: usize) -> Result<&mut [u8], MetadataError> {
        let len16 = u16::try_from(value_len).map_err(|_| MetadataError::BufferTooSmall)?;
        let end = self.pos + TLV_HEADER_LEN + value_len;
        let tlv = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(MetadataError::BufferTooSmall)?;
        be::set_u16(&mut tlv[field::TYPE], ty.raw());
        be::set_u16(&mut tlv[field::LENGTH], len16);
        self.pos = end;
        Ok(&mut tlv[field::VALUE(value_len)])
    }

    /// Writes a TLV with the given value bytes.
    pub fn write(&mut self, ty: TlvType, value: &[u8]) -> Result<(), MetadataError> {
        self.begin(ty, value.len())?.copy_from_slice(value);
        Ok(())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn registry() {
        // Every registry number is named, 46 twice (once per section).
        let raws: Vec<u16> = TlvType::ALL.iter().map(|t| t.raw()).collect();
        assert_eq!(
            raws,
            [
                1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25,
                26, 28, 35, 42, 46, 46, 47, 50, 51, 52
            ]
        );
        for t in TlvType::ALL {
            let s = t.section().unwrap();
            assert_eq!(TlvType::from_wire(t.raw(), s), t);
            assert_eq!(u16::from(t), t.raw());
            assert_ne!(t.name(), "unknown");
        }
        assert_eq!(
            TlvType::from_wire(46, Section::Header),
            TlvType::SessionHealthCheck
        );
        assert_eq!(
            TlvType::from_wire(46, Section::Payload),
            TlvType::PayloadKey
        );
        assert_eq!(TlvType::from_wire(7, Section::Header), TlvType::TenantName);
        for raw in [0, 9, 22, 27, 29, 34, 36, 45, 48, 49, 53, 0xffff] {
            assert_eq!(
                TlvType::from_wire(raw, Section::Payload),
                TlvType::Unknown(raw)
            );
            assert_eq!(TlvType::Unknown(raw).section(), None);
        }
    }

    // [H] 16 Security Identifier = 1, then 18 Disable Forward Metadata (flag).
    static SECTION: [u8; 12] = [
        0x00, 0x10, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01, // type 16, len 4, value 1
        0x00, 0x12, 0x00, 0x00, // type 18, len 0
    ];

    #[test]
    fn walk() {
        let tlvs: Vec<_> = TlvIter::new(&SECTION, Section::Header).collect();
        assert_eq!(
            tlvs,
            [
                Ok(Tlv {
                    ty: TlvType::SecurityIdentifier,
                    value: &[0, 0, 0, 1][..]
                }),
                Ok(Tlv {
                    ty: TlvType::DisableForwardMetadata,
                    value: &[][..]
                }),
            ]
        );
        assert_eq!(TlvIter::new(&[], Section::Payload).count(), 0);
        // Every proper prefix that cuts a TLV overruns, exactly once.
        for cut in [1, 2, 3, 4, 5, 7, 9, 11] {
            let r: Vec<_> = TlvIter::new(&SECTION[..cut], Section::Header).collect();
            assert_eq!(r.last(), Some(&Err(MetadataError::TlvOverrun)));
            assert_eq!(r.iter().filter(|x| x.is_err()).count(), 1);
        }
    }

    #[test]
    fn writer() {
        let mut buf = [0xa5u8; 12];
        let mut w = TlvWriter::new(&mut buf);
        assert!(w.is_empty());
        w.write(TlvType::SecurityIdentifier, &[0, 0, 0, 1]).unwrap();
        w.write(TlvType::DisableForwardMetadata, &[]).unwrap();
        assert_eq!(w.len(), 12);
        assert_eq!(
            w.write(TlvType::TcpSyn, &[]),
            Err(MetadataError::BufferTooSmall)
        );
        assert_eq!(buf, SECTION);
    }
}
