//! Golden vectors for every TLV and for whole metadata blocks, built by hand from
//! `docs/protocol.md`; strict-parsing errors; round-trip and no-panic properties; sealing
//! cross-checked against Python `cryptography`.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use svr_crypto::MetadataKey;

use super::value::Group;
use super::*;
use crate::wire::IpProtocol;

/// Concatenates hand-written fields.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

const UUID: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];
/// The payload key of the vectors: bytes 0x00..=0x1f.
const PKEY: [u8; 32] = {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = i as u8;
        i += 1;
    }
    k
};
const SACK_VALUE: [u8; 12] = [0, 0, 0x03, 0xe8, 0, 0, 0x07, 0xd0, 0, 0, 0x0b, 0xb8];
const EGRESS_VALUE: [u8; 8] = [0x00, 0x02, 0x02, b'r', b'1', 0x02, b'r', b'2'];

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn fwd_ctx_v4() -> SessionContext {
    SessionContext::V4(Context {
        src: Ipv4Addr::new(192, 168, 1, 10),
        dst: Ipv4Addr::new(8, 8, 8, 8),
        src_port: 40000,
        dst_port: 53,
        protocol: IpProtocol::Udp,
    })
}

fn fwd_ctx_v6() -> SessionContext {
    SessionContext::V6(Context {
        src: v6("2001:db8::10"),
        dst: v6("2001:db8:1::53"),
        src_port: 40000,
        dst_port: 443,
        protocol: IpProtocol::Tcp,
    })
}

fn rev_ctx_v4() -> SessionContext {
    SessionContext::V4(Context {
        src: Ipv4Addr::new(172, 16, 0, 5),
        dst: Ipv4Addr::new(8, 8, 8, 8),
        src_port: 40000,
        dst_port: 53,
        protocol: IpProtocol::Udp,
    })
}

fn rev_ctx_v6() -> SessionContext {
    SessionContext::V6(Context {
        src: v6("2001:db8:2::5"),
        dst: v6("2001:db8:1::53"),
        src_port: 40000,
        dst_port: 443,
        protocol: IpProtocol::Tcp,
    })
}

fn payload_key() -> PayloadKeyTlv<'static> {
    PayloadKeyTlv {
        index: 1,
        cipher: PayloadCipher::Aes256Cbc,
        key: &PKEY,
    }
}

// ---------------------------------------------------------------------------------------------
// One golden vector per TLV type.
// ---------------------------------------------------------------------------------------------

fn tlv_goldens() -> Vec<(Section, TlvValue<'static>, Vec<u8>)> {
    use Section::{Header as H, Payload as P};
    vec![
        (
            H,
            TlvValue::Fragment(Fragment {
                extended_id: 0x0102_0304,
                original_id: 0x1c46,
                dont_frag: false,
                more_frags: true,
                offset: 185,
                largest_seen: 1480,
            }),
            cat(&[
                // type 1, length 10
                &[0x00, 0x01, 0x00, 0x0a],
                // extended ID 0x01020304
                &[0x01, 0x02, 0x03, 0x04],
                // original ID 0x1c46
                &[0x1c, 0x46],
                // flags 0b001 (MF), offset 185 (0xb9)
                &[0x20, 0xb9],
                // largest seen fragment 1480
                &[0x05, 0xc8],
            ]),
        ),
        (
            P,
            TlvValue::ForwardContext(fwd_ctx_v4()),
            cat(&[
                // type 2, length 13
                &[0x00, 0x02, 0x00, 0x0d],
                // 192.168.1.10 -> 8.8.8.8
                &[0xc0, 0xa8, 0x01, 0x0a, 0x08, 0x08, 0x08, 0x08],
                // ports 40000 -> 53, protocol 17 (UDP)
                &[0x9c, 0x40, 0x00, 0x35, 0x11],
            ]),
        ),
        (
            P,
            TlvValue::ForwardContext(fwd_ctx_v6()),
            cat(&[
                // type 3, length 37
                &[0x00, 0x03, 0x00, 0x25],
                // 2001:db8::10
                &[
                    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
                ],
                // 2001:db8:1::53
                &[
                    0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
                ],
                // ports 40000 -> 443, protocol 6 (TCP)
                &[0x9c, 0x40, 0x01, 0xbb, 0x06],
            ]),
        ),
        (
            P,
            TlvValue::ReverseContext(rev_ctx_v4()),
            cat(&[
                // type 4, length 13
                &[0x00, 0x04, 0x00, 0x0d],
                // 172.16.0.5 -> 8.8.8.8
                &[0xac, 0x10, 0x00, 0x05, 0x08, 0x08, 0x08, 0x08],
                // ports 40000 -> 53, UDP
                &[0x9c, 0x40, 0x00, 0x35, 0x11],
            ]),
        ),
        (
            P,
            TlvValue::ReverseContext(rev_ctx_v6()),
            cat(&[
                // type 5, length 37
                &[0x00, 0x05, 0x00, 0x25],
                // 2001:db8:2::5
                &[
                    0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05,
                ],
                // 2001:db8:1::53
                &[
                    0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
                ],
                // ports 40000 -> 443, TCP
                &[0x9c, 0x40, 0x01, 0xbb, 0x06],
            ]),
        ),
        (
            P,
            TlvValue::SessionUuid(UUID),
            cat(&[
                // type 6, length 16
                &[0x00, 0x06, 0x00, 0x10],
                // 00112233-4455-6677-8899-aabbccddeeff
                &UUID,
            ]),
        ),
        (
            P,
            TlvValue::TenantName("blue"),
            // type 7, length 4, "blue"
            cat(&[&[0x00, 0x07, 0x00, 0x04], b"blue"]),
        ),
        (
            P,
            TlvValue::GlobalInterfaceId(0x102),
            // type 8, length 4, 258
            cat(&[&[0x00, 0x08, 0x00, 0x04], &[0, 0, 0x01, 0x02]]),
        ),
        (
            P,
            TlvValue::ServiceName("dns-svc"),
            // type 10, length 7, "dns-svc"
            cat(&[&[0x00, 0x0a, 0x00, 0x07], b"dns-svc"]),
        ),
        (
            P,
            TlvValue::SessionEncrypted,
            // type 11, length 0
            vec![0x00, 0x0b, 0x00, 0x00],
        ),
        (
            P,
            TlvValue::TcpSyn,
            // type 12, length 0
            vec![0x00, 0x0c, 0x00, 0x00],
        ),
        (
            P,
            TlvValue::NumberOfSessions(42),
            // type 13, length 8, 42
            cat(&[&[0x00, 0x0d, 0x00, 0x08], &[0, 0, 0, 0, 0, 0, 0, 0x2a]]),
        ),
        (
            P,
            TlvValue::SourceRouterName("branch-router"),
            // type 14, length 13, "branch-router"
            cat(&[&[0x00, 0x0e, 0x00, 0x0d], b"branch-router"]),
        ),
        (
            P,
            TlvValue::SourceRouterSecurityName("internal"),
            // type 15, length 8, "internal"
            cat(&[&[0x00, 0x0f, 0x00, 0x08], b"internal"]),
        ),
        (
            H,
            TlvValue::SecurityIdentifier(1),
            // type 16, length 4, rekey index 1
            vec![0x00, 0x10, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01],
        ),
        (
            P,
            TlvValue::DestinationRouterName("hq-router"),
            // type 17, length 9, "hq-router"
            cat(&[&[0x00, 0x11, 0x00, 0x09], b"hq-router"]),
        ),
        (
            H,
            TlvValue::DisableForwardMetadata,
            // type 18, length 0
            vec![0x00, 0x12, 0x00, 0x00],
        ),
        (
            P,
            TlvValue::PeerPathId("wan0"),
            // type 19, length 4, "wan0"
            cat(&[&[0x00, 0x13, 0x00, 0x04], b"wan0"]),
        ),
        (
            H,
            TlvValue::EgressSourceV4(Ipv4Addr::new(203, 0, 113, 7)),
            // type 20, length 4, 203.0.113.7
            vec![0x00, 0x14, 0x00, 0x04, 0xcb, 0x00, 0x71, 0x07],
        ),
        (
            H,
            TlvValue::EgressSourceV6(v6("2001:db8::7")),
            cat(&[
                // type 21, length 16
                &[0x00, 0x15, 0x00, 0x10],
                // 2001:db8::7
                &[
                    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07,
                ],
            ]),
        ),
        (
            H,
            TlvValue::SelectiveAck(Sack::new_checked(&SACK_VALUE).unwrap()),
            cat(&[
                // type 23, length 12
                &[0x00, 0x17, 0x00, 0x0c],
                // ack 1000, block [2000, 3000]
                &SACK_VALUE,
            ]),
        ),
        (
            H,
            TlvValue::ControlMessage(ControlReason::EnableMetadata),
            // type 24, length 1, reason 2 (Enable Metadata)
            vec![0x00, 0x18, 0x00, 0x01, 0x02],
        ),
        (
            H,
            TlvValue::ControlBinding(0x4001_4000),
            // type 52, length 4, wayports 16385 (sender's) and 16384
            vec![0x00, 0x34, 0x00, 0x04, 0x40, 0x01, 0x40, 0x00],
        ),
        (
            P,
            TlvValue::SourceNatV4(Ipv4Addr::new(198, 51, 100, 9)),
            // type 25, length 4, 198.51.100.9
            vec![0x00, 0x19, 0x00, 0x04, 0xc6, 0x33, 0x64, 0x09],
        ),
        (
            H,
            TlvValue::PathMetrics(PathMetrics {
                tx_color: 1,
                tx_time: 100,
                rx_color: 2,
                rx_time: 200,
                drop: true,
                prev_rx_color_count: 10,
            }),
            cat(&[
                // type 26, length 10
                &[0x00, 0x1a, 0x00, 0x0a],
                // tx colour 1, 100 ms | rx colour 2, 200 ms | D, count 10 (DS2's example)
                &[0x10, 0x00, 0x00, 0x64, 0x20, 0x00, 0x00, 0xc8, 0x80, 0x0a],
            ]),
        ),
        (
            H,
            TlvValue::ModifyRequest(ModifyRequest {
                forward: true,
                divert: false,
                sequence: 5,
            }),
            // type 28, length 2, F=1 D=0 seq 5
            vec![0x00, 0x1c, 0x00, 0x02, 0x80, 0x05],
        ),
        (
            P,
            TlvValue::ApplicationName("DNS"),
            // type 35, length 3, "DNS"
            cat(&[&[0x00, 0x23, 0x00, 0x03], b"DNS"]),
        ),
        (
            P,
            TlvValue::RemainingSessionTime(300),
            // type 42, length 4, 300 s
            vec![0x00, 0x2a, 0x00, 0x04, 0x00, 0x00, 0x01, 0x2c],
        ),
        (
            H,
            TlvValue::SessionHealthCheck(HealthCheck::Request),
            // type 46 (header), length 1, request
            vec![0x00, 0x2e, 0x00, 0x01, 0x01],
        ),
        (
            P,
            TlvValue::PayloadKey(payload_key()),
            cat(&[
                // type 46 (payload), length 34
                &[0x00, 0x2e, 0x00, 0x22],
                // payload-key index 1, cipher 1 (AES-256-CBC)
                &[0x01, 0x01],
                // key 00 01 .. 1f
                &PKEY,
            ]),
        ),
        (
            P,
            TlvValue::PayloadKeyIndex(1),
            // type 47, length 1, payload-key index 1
            vec![0x00, 0x2f, 0x00, 0x01, 0x01],
        ),
        (
            P,
            TlvValue::MulticastGroupContext(MulticastGroup::V4(Group {
                flags: 0,
                source: Ipv4Addr::UNSPECIFIED,
                group: Ipv4Addr::new(239, 1, 1, 1),
                protocol: IpProtocol::Udp,
            })),
            cat(&[
                // type 50, length 11
                &[0x00, 0x32, 0x00, 0x0b],
                // family 4, flags 0
                &[0x04, 0x00],
                // any source 0.0.0.0, group 239.1.1.1
                &[0, 0, 0, 0, 0xef, 0x01, 0x01, 0x01],
                // protocol UDP
                &[0x11],
            ]),
        ),
        (
            P,
            TlvValue::MulticastEgressList(MulticastEgressList::new_checked(&EGRESS_VALUE).unwrap()),
            cat(&[
                // type 51, length 8
                &[0x00, 0x33, 0x00, 0x08],
                // 2 routers: "r1", "r2"
                &EGRESS_VALUE,
            ]),
        ),
    ]
}

#[test]
fn every_tlv_golden() {
    let goldens = tlv_goldens();
    let covered: BTreeSet<TlvType> = goldens.iter().map(|(_, v, _)| v.ty()).collect();
    assert_eq!(covered, TlvType::ALL.into_iter().collect());
    for (section, value, bytes) in &goldens {
        // Parse.
        let mut it = TlvIter::new(bytes, *section);
        let tlv = it.next().unwrap().unwrap();
        assert!(it.next().is_none());
        assert_eq!(tlv.ty.section(), Some(*section));
        assert_eq!(TlvValue::parse(tlv).as_ref(), Ok(value), "{:?}", tlv.ty);
        // Emit.
        let mut buf = vec![0xa5; value.wire_len()];
        let mut w = TlvWriter::new(&mut buf);
        value.write(&mut w).unwrap();
        assert_eq!(w.len(), bytes.len());
        assert_eq!(&buf, bytes, "{:?}", value.ty());
        // Through MetadataRepr: parse, emit, identical section.
        let (h, p): (&[u8], &[u8]) = match section {
            Section::Header => (bytes, &[]),
            Section::Payload => (&[], bytes),
        };
        let repr = MetadataRepr::parse(h, p).unwrap();
        assert_eq!(repr.buffer_len(), BASE_LEN + bytes.len());
        let mut out = vec![0; repr.buffer_len()];
        repr.emit(&mut out).unwrap();
        assert_eq!(&out[BASE_LEN..], &bytes[..]);
    }
}

#[test]
fn payload_key_debug_is_redacted() {
    let s = format!("{:?}", payload_key());
    assert!(s.contains("redacted") && !s.contains("31"), "{s}");
}

// ---------------------------------------------------------------------------------------------
// Whole first-packet metadata blocks (cleartext payload section).
// ---------------------------------------------------------------------------------------------

fn forward_v4() -> ForwardMetadata<'static> {
    ForwardMetadata {
        security_id: 1,
        context: fwd_ctx_v4(),
        tenant: "blue",
        service: "dns-svc",
        session_uuid: UUID,
        source_router: "branch-router",
        source_router_security_name: Some("internal"),
        peer_path_id: "wan0",
        session_encrypted: true,
        tcp_syn: false,
        application_name: None,
        payload_key: Some(payload_key()),
    }
}

/// Forward first packet, IPv4 UDP session, with the payload key.
pub(crate) fn forward_v4_bytes() -> Vec<u8> {
    cat(&[
        // cookie
        &[0x4c, 0x48, 0xdb, 0xc6, 0xdd, 0xf6, 0x67, 0x0c],
        // version 1, header length 20 (12 + 8)
        &[0x10, 0x14],
        // payload length 135 (cleartext TLVs)
        &[0x00, 0x87],
        // [H] 16 Security Identifier: rekey index 1
        &[0x00, 0x10, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01],
        // [P] 2 Forward Context IPv4: 192.168.1.10:40000 -> 8.8.8.8:53 UDP
        &[
            0x00, 0x02, 0x00, 0x0d, 0xc0, 0xa8, 0x01, 0x0a, 0x08, 0x08, 0x08, 0x08,
        ],
        &[0x9c, 0x40, 0x00, 0x35, 0x11],
        // [P] 7 Tenant "blue"
        &[0x00, 0x07, 0x00, 0x04],
        b"blue",
        // [P] 10 Service "dns-svc"
        &[0x00, 0x0a, 0x00, 0x07],
        b"dns-svc",
        // [P] 6 Session UUID
        &[0x00, 0x06, 0x00, 0x10],
        &UUID,
        // [P] 14 Source Router "branch-router"
        &[0x00, 0x0e, 0x00, 0x0d],
        b"branch-router",
        // [P] 15 Source Router Security Name "internal"
        &[0x00, 0x0f, 0x00, 0x08],
        b"internal",
        // [P] 19 Peer Path ID "wan0"
        &[0x00, 0x13, 0x00, 0x04],
        b"wan0",
        // [P] 11 Session Encrypted
        &[0x00, 0x0b, 0x00, 0x00],
        // [P] 46 Payload Key: index 1, cipher 1, key 00..1f
        &[0x00, 0x2e, 0x00, 0x22, 0x01, 0x01],
        &PKEY,
    ])
}

fn forward_v6() -> ForwardMetadata<'static> {
    ForwardMetadata {
        security_id: 1,
        context: fwd_ctx_v6(),
        tenant: "blue",
        service: "web",
        session_uuid: UUID,
        source_router: "branch-router",
        source_router_security_name: None,
        peer_path_id: "wan0",
        session_encrypted: true,
        tcp_syn: true,
        application_name: None,
        payload_key: Some(payload_key()),
    }
}

/// Forward first packet (the SYN), IPv6 TCP session.
fn forward_v6_bytes() -> Vec<u8> {
    cat(&[
        // cookie
        &[0x4c, 0x48, 0xdb, 0xc6, 0xdd, 0xf6, 0x67, 0x0c],
        // version 1, header length 20
        &[0x10, 0x14],
        // payload length 147
        &[0x00, 0x93],
        // [H] 16 Security Identifier: 1
        &[0x00, 0x10, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01],
        // [P] 3 Forward Context IPv6, length 37
        &[0x00, 0x03, 0x00, 0x25],
        // 2001:db8::10
        &[
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ],
        // 2001:db8:1::53
        &[
            0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
        ],
        // 40000 -> 443, TCP
        &[0x9c, 0x40, 0x01, 0xbb, 0x06],
        // [P] 7 Tenant "blue"
        &[0x00, 0x07, 0x00, 0x04],
        b"blue",
        // [P] 10 Service "web"
        &[0x00, 0x0a, 0x00, 0x03],
        b"web",
        // [P] 6 Session UUID
        &[0x00, 0x06, 0x00, 0x10],
        &UUID,
        // [P] 14 Source Router "branch-router"
        &[0x00, 0x0e, 0x00, 0x0d],
        b"branch-router",
        // [P] 19 Peer Path ID "wan0"
        &[0x00, 0x13, 0x00, 0x04],
        b"wan0",
        // [P] 11 Session Encrypted
        &[0x00, 0x0b, 0x00, 0x00],
        // [P] 12 TCP SYN
        &[0x00, 0x0c, 0x00, 0x00],
        // [P] 46 Payload Key: index 1, cipher 1, key 00..1f
        &[0x00, 0x2e, 0x00, 0x22, 0x01, 0x01],
        &PKEY,
    ])
}

fn reverse_v4() -> ReverseMetadata<'static> {
    ReverseMetadata {
        security_id: 1,
        context: rev_ctx_v4(),
        tenant: "blue",
        destination_router: Some("hq-router"),
        peer_path_id: Some("wan1"),
        disable_forward_metadata: true,
        payload_key_index: Some(1),
    }
}

/// Reverse first packet, IPv4 UDP session.
pub(crate) fn reverse_v4_bytes() -> Vec<u8> {
    cat(&[
        // cookie
        &[0x4c, 0x48, 0xdb, 0xc6, 0xdd, 0xf6, 0x67, 0x0c],
        // version 1, header length 24 (12 + 8 + 4)
        &[0x10, 0x18],
        // payload length 51
        &[0x00, 0x33],
        // [H] 16 Security Identifier: 1
        &[0x00, 0x10, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01],
        // [H] 18 Disable Forward Metadata
        &[0x00, 0x12, 0x00, 0x00],
        // [P] 4 Reverse Context IPv4: 172.16.0.5:40000 -> 8.8.8.8:53 UDP
        &[
            0x00, 0x04, 0x00, 0x0d, 0xac, 0x10, 0x00, 0x05, 0x08, 0x08, 0x08, 0x08,
        ],
        &[0x9c, 0x40, 0x00, 0x35, 0x11],
        // [P] 7 Tenant "blue"
        &[0x00, 0x07, 0x00, 0x04],
        b"blue",
        // [P] 17 Destination Router "hq-router"
        &[0x00, 0x11, 0x00, 0x09],
        b"hq-router",
        // [P] 19 Peer Path ID "wan1"
        &[0x00, 0x13, 0x00, 0x04],
        b"wan1",
        // [P] 47 Payload Key Index: 1
        &[0x00, 0x2f, 0x00, 0x01, 0x01],
    ])
}

fn reverse_v6() -> ReverseMetadata<'static> {
    ReverseMetadata {
        context: rev_ctx_v6(),
        ..reverse_v4()
    }
}

/// Reverse first packet (the SYN-ACK), IPv6 TCP session.
fn reverse_v6_bytes() -> Vec<u8> {
    cat(&[
        // cookie
        &[0x4c, 0x48, 0xdb, 0xc6, 0xdd, 0xf6, 0x67, 0x0c],
        // version 1, header length 24
        &[0x10, 0x18],
        // payload length 75
        &[0x00, 0x4b],
        // [H] 16 Security Identifier: 1
        &[0x00, 0x10, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01],
        // [H] 18 Disable Forward Metadata
        &[0x00, 0x12, 0x00, 0x00],
        // [P] 5 Reverse Context IPv6, length 37
        &[0x00, 0x05, 0x00, 0x25],
        // 2001:db8:2::5
        &[
            0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05,
        ],
        // 2001:db8:1::53
        &[
            0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
        ],
        // 40000 -> 443, TCP
        &[0x9c, 0x40, 0x01, 0xbb, 0x06],
        // [P] 7 Tenant "blue"
        &[0x00, 0x07, 0x00, 0x04],
        b"blue",
        // [P] 17 Destination Router "hq-router"
        &[0x00, 0x11, 0x00, 0x09],
        b"hq-router",
        // [P] 19 Peer Path ID "wan1"
        &[0x00, 0x13, 0x00, 0x04],
        b"wan1",
        // [P] 47 Payload Key Index: 1
        &[0x00, 0x2f, 0x00, 0x01, 0x01],
    ])
}

/// Control message: Enable Metadata, header only.
pub(crate) fn control_bytes() -> Vec<u8> {
    cat(&[
        // cookie
        &[0x4c, 0x48, 0xdb, 0xc6, 0xdd, 0xf6, 0x67, 0x0c],
        // version 1, header length 33 (12 + 8 + 5 + 8)
        &[0x10, 0x21],
        // payload length 0
        &[0x00, 0x00],
        // [H] 16 Security Identifier: 1
        &[0x00, 0x10, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01],
        // [H] 24 Control Message: reason 2 (Enable Metadata)
        &[0x00, 0x18, 0x00, 0x01, 0x02],
        // [H] 52 Control Binding: answers a packet to our wayport 16385 from 16384
        &[0x00, 0x34, 0x00, 0x04, 0x40, 0x01, 0x40, 0x00],
    ])
}

fn emit_vec(repr: &MetadataRepr<'_>) -> Vec<u8> {
    let mut buf = vec![0xa5; repr.buffer_len()];
    assert_eq!(repr.emit(&mut buf), Ok(buf.len()));
    buf
}

fn parse_vec(bytes: &[u8]) -> Result<MetadataRepr<'_>, MetadataError> {
    MetadataRepr::parse_cleartext(&MetadataHeader::new_checked(bytes)?)
}

#[test]
fn forward_golden() {
    for (msg, golden) in [
        (forward_v4(), forward_v4_bytes()),
        (forward_v6(), forward_v6_bytes()),
    ] {
        assert_eq!(msg.buffer_len(), golden.len());
        let mut buf = vec![0xa5; golden.len()];
        assert_eq!(msg.emit(&mut buf), Ok(golden.len()));
        assert_eq!(buf, golden);
        let repr = parse_vec(&golden).unwrap();
        assert_eq!(repr, msg.to_repr());
        assert_eq!(ForwardMetadata::try_from(&repr), Ok(msg));
        // Forward metadata is not reverse metadata.
        assert_eq!(
            ReverseMetadata::try_from(&repr),
            Err(MetadataError::MissingTlv(4))
        );
    }
    assert_eq!(forward_v4_bytes().len(), 155);
    assert_eq!(forward_v6_bytes().len(), 167);
}

#[test]
fn reverse_golden() {
    for (msg, golden) in [
        (reverse_v4(), reverse_v4_bytes()),
        (reverse_v6(), reverse_v6_bytes()),
    ] {
        let mut buf = vec![0xa5; msg.buffer_len()];
        assert_eq!(msg.emit(&mut buf), Ok(golden.len()));
        assert_eq!(buf, golden);
        let repr = parse_vec(&golden).unwrap();
        assert_eq!(repr, msg.to_repr());
        assert!(repr.disable_forward_metadata);
        assert_eq!(ReverseMetadata::try_from(&repr), Ok(msg));
    }
}

#[test]
fn control_golden() {
    let msg = ControlMessage::enable_metadata(1, 16385, 16384);
    let golden = control_bytes();
    let mut buf = vec![0xa5; msg.buffer_len()];
    assert_eq!(msg.emit(&mut buf), Ok(33));
    assert_eq!(buf, golden);
    let repr = parse_vec(&golden).unwrap();
    assert_eq!(ControlMessage::try_from(&repr), Ok(msg));
    assert_eq!(repr.sealed_len(), 33);
    assert_eq!(
        ControlMessage::try_from(&MetadataRepr::default()),
        Err(MetadataError::MissingTlv(16))
    );
}

/// DS2's synthetic forward packet (docs/background.md §2.6) parses, and is complete forward
/// metadata. Its UUID is not given; we use ours.
#[test]
fn ds2_sample_forward() {
    let bytes = cat(&[
        // header, HL=20, PL=88
        &[
            0x4c, 0x48, 0xdb, 0xc6, 0xdd, 0xf6, 0x67, 0x0c, 0x10, 0x14, 0x00, 0x58,
        ],
        // [H] Security ID = 1
        &[0x00, 0x10, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01],
        // [P] fwd ctx 192.168.1.10:40000 -> 8.8.8.8:53 UDP
        &[
            0x00, 0x02, 0x00, 0x0d, 0xc0, 0xa8, 0x01, 0x0a, 0x08, 0x08, 0x08, 0x08,
        ],
        &[0x9c, 0x40, 0x00, 0x35, 0x11],
        // [P] 7 "blue", 10 "dns-svc", 6 <uuid>
        &[0x00, 0x07, 0x00, 0x04],
        b"blue",
        &[0x00, 0x0a, 0x00, 0x07],
        b"dns-svc",
        &[0x00, 0x06, 0x00, 0x10],
        &UUID,
        // [P] 35 "DNS", 14 "branch-router", 19 "wan0"
        &[0x00, 0x23, 0x00, 0x03],
        b"DNS",
        &[0x00, 0x0e, 0x00, 0x0d],
        b"branch-router",
        &[0x00, 0x13, 0x00, 0x04],
        b"wan0",
        // original DNS payload
        &[0x12, 0x34, 0x01, 0x00],
    ]);
    let h = MetadataHeader::new_checked(&bytes[..]).unwrap();
    assert_eq!((h.header_len(), h.payload_len()), (20, 88));
    assert_eq!(h.rest(), [0x12, 0x34, 0x01, 0x00]);
    let repr = MetadataRepr::parse_cleartext(&h).unwrap();
    let fwd = ForwardMetadata::try_from(&repr).unwrap();
    assert_eq!(fwd.context, fwd_ctx_v4());
    assert_eq!(
        (fwd.tenant, fwd.service, fwd.source_router, fwd.peer_path_id),
        ("blue", "dns-svc", "branch-router", "wan0")
    );
    assert_eq!(fwd.application_name, Some("DNS"));
    // Re-emitted in our transmit order (35 moves after 12): same length, same repr.
    let again = emit_vec(&repr);
    assert_eq!(again.len(), 108);
    assert_eq!(parse_vec(&again), Ok(repr));
}

/// DS2's reverse sample puts 18 in the payload; we follow D00 §3.2.3 (header), so it is a
/// WrongSection drop. With 18 in the header it parses.
#[test]
fn ds2_sample_reverse_and_type_18() {
    let ctx = &[
        0x00, 0x04, 0x00, 0x0d, 0x0a, 0x00, 0x00, 0x02, 0x0a, 0x00, 0x00, 0x01, 0x40, 0x11, 0x40,
        0x10, 0x11,
    ][..];
    let tenant = &[0x00, 0x07, 0x00, 0x04, b'b', b'l', b'u', b'e'][..];
    let t18 = &[0x00, 0x12, 0x00, 0x00][..];
    let sid = &[0x00, 0x10, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01][..];
    let payload = cat(&[ctx, tenant, t18]);
    assert_eq!(
        MetadataRepr::parse(sid, &payload),
        Err(MetadataError::WrongSection(18))
    );
    let header = cat(&[sid, t18]);
    let payload = cat(&[ctx, tenant]);
    let repr = MetadataRepr::parse(&header, &payload).unwrap();
    let rev = ReverseMetadata::try_from(&repr).unwrap();
    assert!(rev.disable_forward_metadata);
    assert_eq!((rev.destination_router, rev.peer_path_id), (None, None));
}

#[test]
fn false_positive_marker() {
    let mut buf = [0u8; 12];
    emit_false_positive_marker(&mut buf).unwrap();
    assert!(is_metadata(&buf));
    assert!(is_false_positive_marker(&buf));
    let repr = parse_vec(&buf).unwrap();
    assert_eq!(repr, MetadataRepr::default());
    assert_eq!(emit_vec(&repr), buf);
    assert!(!is_false_positive_marker(&control_bytes()));
}

#[test]
fn unknown_types_are_skipped() {
    // [P] type 9 (unknown) length 3, then 7 "blue"; [H] type 0x7fff length 0.
    let payload = cat(&[&[0x00, 0x09, 0x00, 0x03, 1, 2, 3], &[0, 7, 0, 4], b"blue"]);
    let repr = MetadataRepr::parse(&[0x7f, 0xff, 0, 0], &payload).unwrap();
    assert_eq!(repr.tenant, Some("blue"));
    // An unknown type may repeat; it is not tracked.
    let twice = cat(&[&[0x00, 0x09, 0x00, 0x00], &[0x00, 0x09, 0x00, 0x00]]);
    assert!(MetadataRepr::parse(&[], &twice).is_ok());
    // But it may not overrun.
    assert_eq!(
        MetadataRepr::parse(&[], &[0x00, 0x09, 0x00, 0x01]),
        Err(MetadataError::TlvOverrun)
    );
}

// ---------------------------------------------------------------------------------------------
// Every MetadataError is reachable.
// ---------------------------------------------------------------------------------------------

fn test_key(index: u32) -> MetadataKey {
    MetadataKey::new(index, &[0x42; 32], &[0x24; 48])
}

#[test]
fn every_error_is_reachable() {
    let ctl = control_bytes();
    let mut got = Vec::new();
    let mut expect = |r: Result<(), MetadataError>, e: MetadataError| {
        assert_eq!(r, Err(e));
        got.push(e.index());
        assert!(e.name().starts_with("metadata_"));
        assert!(!e.to_string().is_empty());
    };
    let hdr = |b: &[u8]| MetadataHeader::new_checked(b).map(|_| ());
    let mut b = ctl.clone();

    expect(hdr(&ctl[..11]), MetadataError::Truncated);
    b[0] = 0;
    expect(hdr(&b), MetadataError::BadCookie);
    b = ctl.clone();
    b[8] = 0x20 | (b[8] & 0x0f);
    expect(hdr(&b), MetadataError::BadVersion);
    b = ctl.clone();
    b[9] = 0x0b; // HL 11
    expect(hdr(&b), MetadataError::BadHeaderLength);
    b = ctl.clone();
    b[11] = 1; // PL 1, nothing follows
    expect(hdr(&b), MetadataError::BadPayloadLength);

    let sid = [0x00, 0x10, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01];
    let parse = |h: &[u8], p: &[u8]| MetadataRepr::parse(h, p).map(|_| ());
    // 16 claiming 5 bytes in an 8-byte section.
    expect(
        parse(&[0x00, 0x10, 0x00, 0x05, 0, 0, 0, 1], &[]),
        MetadataError::TlvOverrun,
    );
    // Tenant (payload) in the header.
    expect(
        parse(&[0x00, 0x07, 0x00, 0x01, b'x'], &[]),
        MetadataError::WrongSection(7),
    );
    // Security Identifier (header) in the payload.
    expect(parse(&[], &sid), MetadataError::WrongSection(16));
    // Forward context IPv4 then IPv6: one forward context too many.
    let two_ctx = cat(&[
        &[0x00, 0x02, 0x00, 0x0d],
        &[0; 13],
        &[0x00, 0x03, 0x00, 0x25],
        &[0; 37],
    ]);
    expect(parse(&[], &two_ctx), MetadataError::DuplicateTlv(3));
    expect(
        parse(&cat(&[&sid, &sid]), &[]),
        MetadataError::DuplicateTlv(16),
    );
    // 16 with 3 bytes; flag 11 with 1 byte; context 2 with IPv6 length.
    expect(
        parse(&[0x00, 0x10, 0x00, 0x03, 0, 0, 1], &[]),
        MetadataError::BadTlvLength(16),
    );
    expect(
        parse(&[], &[0x00, 0x0b, 0x00, 0x01, 0]),
        MetadataError::BadTlvLength(11),
    );
    expect(
        parse(&[], &cat(&[&[0x00, 0x02, 0x00, 0x25], &[0; 37]])),
        MetadataError::BadTlvLength(2),
    );
    // Names: non-ASCII, control character, empty.
    expect(
        parse(&[], &cat(&[&[0x00, 0x07, 0x00, 0x04], "blé".as_bytes()])),
        MetadataError::BadName(7),
    );
    expect(
        parse(&[], &[0x00, 0x0a, 0x00, 0x02, b'a', 0x0a]),
        MetadataError::BadName(10),
    );
    expect(
        parse(&[], &[0x00, 0x13, 0x00, 0x00]),
        MetadataError::BadName(19),
    );
    // Payload key with cipher 2; multicast family 5.
    let mut key_tlv = cat(&[&[0x00, 0x2e, 0x00, 0x22, 0x01, 0x02], &PKEY]);
    expect(parse(&[], &key_tlv), MetadataError::BadValue(46));
    key_tlv[5] = 1;
    assert!(parse(&[], &key_tlv).is_ok());
    expect(
        parse(&[], &cat(&[&[0x00, 0x32, 0x00, 0x0b, 0x05], &[0; 10]])),
        MetadataError::BadValue(50),
    );
    // Forward metadata without a service name.
    let mut repr = forward_v4().to_repr();
    repr.service = None;
    expect(
        ForwardMetadata::try_from(&repr).map(|_| ()),
        MetadataError::MissingTlv(10),
    );
    // Emission into a short buffer; a bad name on emission.
    let mut short = [0u8; 20];
    expect(
        forward_v4().emit(&mut short).map(|_| ()),
        MetadataError::BufferTooSmall,
    );
    let long = "x".repeat(256);
    let bad = ForwardMetadata {
        tenant: &long,
        ..forward_v4()
    };
    let mut buf = vec![0; bad.buffer_len()];
    expect(bad.emit(&mut buf).map(|_| ()), MetadataError::BadName(7));
    // Open with a payload length that is not blocks + IV.
    let key = test_key(1);
    let mut sealed = forward_v4_bytes();
    sealed.resize(BASE_LEN + 8 + 33, 0);
    sealed[10..12].copy_from_slice(&33u16.to_be_bytes());
    expect(
        open_metadata(&key, &mut sealed).map(|_| ()),
        MetadataError::Decrypt(svr_crypto::CryptoError::BadLength),
    );

    let all: BTreeSet<usize> = got.into_iter().collect();
    assert_eq!(all, (0..MetadataError::COUNT).collect());
}

// ---------------------------------------------------------------------------------------------
// Sealing.
// ---------------------------------------------------------------------------------------------

const IV: [u8; 16] = [0xee; 16];

#[test]
fn seal_and_open() {
    let key = test_key(1);
    let msg = forward_v4();
    let clear = forward_v4_bytes();
    let sealed_len = msg.to_repr().sealed_len();
    // 135 bytes of TLVs pad to 144, plus the IV.
    assert_eq!(sealed_len, 20 + 144 + 16);
    let original = b"original payload";
    let mut pkt = vec![0u8; sealed_len + original.len()];
    pkt[sealed_len..].copy_from_slice(original);
    assert_eq!(msg.emit(&mut pkt[..sealed_len]), Ok(clear.len()));
    assert_eq!(
        seal_metadata(&key, IV, &mut pkt[..sealed_len]),
        Ok(sealed_len)
    );
    // Header and header TLVs unchanged except PL = 160; IV last; payload untouched.
    assert_eq!(pkt[..10], clear[..10]);
    assert_eq!(pkt[10..12], 160u16.to_be_bytes());
    assert_eq!(pkt[12..20], clear[12..20]);
    assert_eq!(pkt[sealed_len - 16..sealed_len], IV);
    assert_ne!(pkt[20..155], clear[20..]);
    assert_eq!(&pkt[sealed_len..], original);

    let mut rx = pkt.clone();
    let opened = open_metadata(&key, &mut rx).unwrap();
    assert_eq!(opened.metadata_len, sealed_len);
    assert_eq!(ForwardMetadata::try_from(&opened.repr), Ok(msg));

    // A key with another rekey index is refused before any crypto.
    assert_eq!(
        open_metadata(&test_key(2), &mut pkt.clone()).err(),
        Some(MetadataError::BadValue(16))
    );
    let mut c = clear.clone();
    c.resize(sealed_len, 0);
    assert_eq!(
        seal_metadata(&test_key(2), IV, &mut c),
        Err(MetadataError::BadValue(16))
    );
    // No room for padding and IV.
    let mut c = clear.clone();
    assert_eq!(
        seal_metadata(&key, IV, &mut c),
        Err(MetadataError::BufferTooSmall)
    );
    // A wrong key with the right index fails padding (or parsing) — never panics.
    let other = MetadataKey::new(1, &[0x43; 32], &[0x24; 48]);
    assert!(open_metadata(&other, &mut pkt.clone()).is_err());
}

#[test]
fn seal_control_message_is_header_only() {
    let key = test_key(1);
    let mut buf = control_bytes();
    assert_eq!(seal_metadata(&key, IV, &mut buf), Ok(33));
    assert_eq!(buf, control_bytes());
    let opened = open_metadata(&key, &mut buf).unwrap();
    assert_eq!(
        ControlMessage::try_from(&opened.repr),
        Ok(ControlMessage::enable_metadata(1, 16385, 16384))
    );
    // The marker has no Security Identifier: sealing it is refused.
    let mut m = [0u8; 12];
    emit_false_positive_marker(&mut m).unwrap();
    assert_eq!(
        seal_metadata(&key, IV, &mut m),
        Err(MetadataError::MissingTlv(16))
    );
}

/// The sealed block decrypts with an independent AES-256-CBC (Python `cryptography`), with the
/// IV taken from after the ciphertext and PKCS#7 padding, to our cleartext payload TLVs.
#[test]
fn seal_matches_python_cryptography() {
    let key = test_key(1);
    let clear = forward_v4_bytes();
    let mut pkt = clear.clone();
    pkt.resize(forward_v4().to_repr().sealed_len(), 0);
    seal_metadata(&key, IV, &mut pkt).unwrap();
    let script = r#"
import sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives import padding
key = bytes.fromhex(sys.argv[1]); block = bytes.fromhex(sys.argv[2])
ct, iv = block[:-16], block[-16:]
d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
p = d.update(ct) + d.finalize()
u = padding.PKCS7(128).unpadder()
print((u.update(p) + u.finalize()).hex())
"#;
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            &hex::encode([0x42; 32]),
            &hex::encode(&pkt[20..]),
        ])
        .output()
        .expect("python3 with the cryptography package is a test dependency");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        hex::encode(&clear[20..])
    );
}

/// The hex blocks of `docs/protocol.md` §8, by section number ("8.1" ...).
fn protocol_md_vectors() -> Vec<(String, Vec<u8>)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.md");
    let doc = std::fs::read_to_string(path).expect("docs/protocol.md is part of the repository");
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    let mut hex_text: Option<String> = None;
    for line in doc.lines() {
        if let Some(rest) = line.strip_prefix("### 8.") {
            section = rest.split_whitespace().next().map(|n| format!("8.{n}"));
        } else if line.starts_with("```") {
            match (hex_text.take(), &section) {
                (Some(h), Some(s)) => out.push((s.clone(), hex::decode(h).expect("hex"))),
                (None, Some(_)) => hex_text = Some(String::new()),
                _ => {}
            }
        } else if let Some(h) = hex_text.as_mut() {
            h.extend(line.split_whitespace());
        }
    }
    out
}

/// Every golden vector of `docs/protocol.md` §8 is what the code builds, byte for byte.
#[test]
fn golden_vectors_match_the_document() {
    let mut marker = [0u8; 12];
    emit_false_positive_marker(&mut marker).unwrap();
    let want = [
        ("8.1", forward_v4_bytes()),
        ("8.2", forward_v6_bytes()),
        ("8.3", reverse_v4_bytes()),
        ("8.4", reverse_v6_bytes()),
        ("8.5", control_bytes()),
        ("8.6", marker.to_vec()),
    ];
    let doc = protocol_md_vectors();
    for (section, bytes) in want {
        let found = doc.iter().find(|(s, _)| s == section);
        let (_, in_doc) = found.unwrap_or_else(|| panic!("docs/protocol.md has no §{section}"));
        assert_eq!(
            hex::encode(in_doc),
            hex::encode(&bytes),
            "docs/protocol.md §{section} differs from the code (regenerate with print_golden_hex)"
        );
    }
}

/// Prints the golden vectors as hex for docs/protocol.md (`cargo test -p fastpath
/// print_golden_hex -- --ignored --nocapture`).
#[test]
#[ignore]
fn print_golden_hex() {
    for (name, v) in [
        ("forward v4", forward_v4_bytes()),
        ("forward v6", forward_v6_bytes()),
        ("reverse v4", reverse_v4_bytes()),
        ("reverse v6", reverse_v6_bytes()),
        ("control", control_bytes()),
    ] {
        println!("{name} ({} bytes):", v.len());
        for line in v.chunks(16) {
            let words: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
            println!("  {}", words.join(" "));
        }
    }
}

/// Writes the seed corpora of `fastpath/fuzz` (`cargo test -p fastpath write_fuzz_corpus --
/// --ignored`).
#[test]
#[ignore]
fn write_fuzz_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.bin")), bytes).unwrap();
    };
    let mut marker = [0u8; 12];
    emit_false_positive_marker(&mut marker).unwrap();
    for (name, v) in [
        ("forward_v4", forward_v4_bytes()),
        ("forward_v6", forward_v6_bytes()),
        ("reverse_v4", reverse_v4_bytes()),
        ("reverse_v6", reverse_v6_bytes()),
        ("control", control_bytes()),
        ("marker", marker.to_vec()),
    ] {
        write("metadata", name, &v);
    }
    for (section, value, bytes) in tlv_goldens() {
        let s = match section {
            Section::Header => 'h',
            Section::Payload => 'p',
        };
        // The tlv target's first byte picks the section (even: header, odd: payload).
        let sel = if s == 'h' { 0u8 } else { 1u8 };
        write(
            "tlv",
            &format!("{}_{}", value.ty().raw(), value.ty().name()),
            &cat(&[&[sel], &bytes]),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------

/// Owned inputs from which a `MetadataRepr` borrowing them is built.
#[derive(Debug, Clone)]
struct Owned {
    names: Vec<Option<String>>,
    contexts: (Option<SessionContext>, Option<SessionContext>),
    flags: [bool; 3],
    uuid: Option<[u8; 16]>,
    numbers: (Option<u32>, Option<u32>, Option<u64>, Option<u32>),
    addrs: (Option<Ipv4Addr>, Option<Ipv6Addr>, Option<Ipv4Addr>),
    sack: Option<Vec<u8>>,
    control: Option<u8>,
    fragment: Option<Fragment>,
    metrics: Option<PathMetrics>,
    modify: Option<ModifyRequest>,
    health: Option<u8>,
    key: Option<(u8, [u8; 32])>,
    group: Option<MulticastGroup>,
    egress: Option<Vec<u8>>,
}

fn arb_ctx() -> impl Strategy<Value = SessionContext> {
    prop_oneof![
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<[u16; 2]>(),
            any::<u8>()
        )
            .prop_map(|(s, d, p, proto)| SessionContext::V4(Context {
                src: s.into(),
                dst: d.into(),
                src_port: p[0],
                dst_port: p[1],
                protocol: proto.into(),
            })),
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<[u16; 2]>(),
            any::<u8>()
        )
            .prop_map(|(s, d, p, proto)| SessionContext::V6(Context {
                src: s.into(),
                dst: d.into(),
                src_port: p[0],
                dst_port: p[1],
                protocol: proto.into(),
            })),
    ]
}

fn arb_group() -> impl Strategy<Value = MulticastGroup> {
    prop_oneof![
        (any::<u8>(), any::<[u8; 4]>(), any::<[u8; 4]>(), any::<u8>()).prop_map(|(f, s, g, p)| {
            MulticastGroup::V4(Group {
                flags: f,
                source: s.into(),
                group: g.into(),
                protocol: p.into(),
            })
        }),
        (
            any::<u8>(),
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>()
        )
            .prop_map(|(f, s, g, p)| MulticastGroup::V6(Group {
                flags: f,
                source: s.into(),
                group: g.into(),
                protocol: p.into(),
            })),
    ]
}

prop_compose! {
    fn arb_header_part()(
        sack in proptest::option::of((any::<u32>(), proptest::collection::vec(any::<[u8; 8]>(), 0..4))),
        control in proptest::option::of(any::<u8>()),
        fragment in proptest::option::of((any::<u32>(), any::<u16>(), any::<[bool; 2]>(), 0u16..0x2000, any::<u16>())),
        metrics in proptest::option::of((0u8..16, 0u32..1 << 28, 0u8..16, 0u32..1 << 28, any::<bool>(), 0u16..0x8000)),
        modify in proptest::option::of((any::<[bool; 2]>(), 0u16..0x1000)),
        health in proptest::option::of(any::<u8>()),
    ) -> (Option<Vec<u8>>, Option<u8>, Option<Fragment>, Option<PathMetrics>, Option<ModifyRequest>, Option<u8>) {
        let sack = sack.map(|(ack, blocks)| {
            let mut v = ack.to_be_bytes().to_vec();
            blocks.iter().for_each(|b| v.extend_from_slice(b));
            v
        });
        let fragment = fragment.map(|(e, o, f, off, l)| Fragment {
            extended_id: e, original_id: o, dont_frag: f[0], more_frags: f[1], offset: off, largest_seen: l,
        });
        let metrics = metrics.map(|(tc, tt, rc, rt, d, n)| PathMetrics {
            tx_color: tc, tx_time: tt, rx_color: rc, rx_time: rt, drop: d, prev_rx_color_count: n,
        });
        let modify = modify.map(|(b, s)| ModifyRequest { forward: b[0], divert: b[1], sequence: s });
        (sack, control, fragment, metrics, modify, health)
    }
}

prop_compose! {
    fn arb_owned()(
        names in proptest::collection::vec(proptest::option::of("[ -~]{1,40}"), 7),
        contexts in (proptest::option::of(arb_ctx()), proptest::option::of(arb_ctx())),
        flags in any::<[bool; 3]>(),
        uuid in proptest::option::of(any::<[u8; 16]>()),
        numbers in (proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>()),
                    proptest::option::of(any::<u64>()), proptest::option::of(any::<u32>())),
        addrs in (proptest::option::of(any::<[u8; 4]>()), proptest::option::of(any::<[u8; 16]>()),
                  proptest::option::of(any::<[u8; 4]>())),
        header in arb_header_part(),
        key in proptest::option::of((any::<u8>(), any::<[u8; 32]>())),
        group in proptest::option::of(arb_group()),
        egress in proptest::option::of(proptest::collection::vec("[ -~]{1,12}", 0..4)),
    ) -> Owned {
        let (sack, control, fragment, metrics, modify, health) = header;
        let egress = egress.map(|names| {
            let mut v = (names.len() as u16).to_be_bytes().to_vec();
            for n in names {
                v.push(n.len() as u8);
                v.extend_from_slice(n.as_bytes());
            }
            v
        });
        Owned {
            names, contexts, flags, uuid, numbers,
            addrs: (addrs.0.map(Into::into), addrs.1.map(Into::into), addrs.2.map(Into::into)),
            sack, control, fragment, metrics, modify, health, key, group, egress,
        }
    }
}

fn build(o: &Owned) -> MetadataRepr<'_> {
    let n = |i: usize| o.names[i].as_deref();
    MetadataRepr {
        security_id: o.numbers.0,
        disable_forward_metadata: o.flags[0],
        control: o.control.map(Into::into),
        control_binding: None,
        fragment: o.fragment,
        egress_source_v4: o.addrs.0,
        egress_source_v6: o.addrs.1,
        sack: o.sack.as_deref().map(|s| Sack::new_checked(s).unwrap()),
        path_metrics: o.metrics,
        modify_request: o.modify,
        health_check: o.health.map(Into::into),
        forward_context: o.contexts.0,
        reverse_context: o.contexts.1,
        tenant: n(0),
        service: n(1),
        session_uuid: o.uuid,
        source_router: n(2),
        source_router_security_name: n(3),
        destination_router: n(4),
        peer_path_id: n(5),
        session_encrypted: o.flags[1],
        tcp_syn: o.flags[2],
        global_interface_id: o.numbers.1,
        number_of_sessions: o.numbers.2,
        source_nat_v4: o.addrs.2,
        application_name: n(6),
        remaining_session_time: o.numbers.3,
        multicast_group: o.group,
        multicast_egress: o
            .egress
            .as_deref()
            .map(|e| MulticastEgressList::new_checked(e).unwrap()),
        payload_key: o.key.as_ref().map(|(index, key)| PayloadKeyTlv {
            index: *index,
            cipher: PayloadCipher::Aes256Cbc,
            key,
        }),
        // The key's index doubles as TLV 47 (reverse metadata's acknowledgement).
        payload_key_index: o.key.as_ref().map(|(index, _)| index.wrapping_add(1)),
    }
}

proptest! {
    #[test]
    fn parse_emit_roundtrip(o in arb_owned()) {
        let repr = build(&o);
        let bytes = emit_vec(&repr);
        prop_assert_eq!(parse_vec(&bytes), Ok(repr));
    }

    #[test]
    fn seal_open_roundtrip(o in arb_owned(), iv in any::<[u8; 16]>()) {
        let mut repr = build(&o);
        repr.security_id = Some(7);
        let key = test_key(7);
        let mut buf = vec![0u8; repr.sealed_len() + 5];
        repr.emit(&mut buf).unwrap();
        let n = seal_metadata(&key, iv, &mut buf).unwrap();
        prop_assert_eq!(n, repr.sealed_len());
        let opened = open_metadata(&key, &mut buf).unwrap();
        prop_assert_eq!(opened.metadata_len, n);
        prop_assert_eq!(opened.repr, repr);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        // As a whole block, with the cookie forced on half of the inputs.
        let mut b = bytes.clone();
        if b.len() >= 12 && b[0] & 1 == 0 {
            b[..8].copy_from_slice(&COOKIE);
            b[8] = 0x10 | (b[8] & 0x0f);
        }
        if let Ok(h) = MetadataHeader::new_checked(&b[..]) {
            let _ = (h.header_len(), h.payload_len(), h.rest(), h.security_identifier());
            if let Ok(r) = MetadataRepr::parse_cleartext(&h) {
                let again = emit_vec(&r);
                prop_assert_eq!(parse_vec(&again), Ok(r));
            }
        }
        let _ = open_metadata(&test_key(1), &mut b.clone());
        // As bare sections.
        let (h, p) = bytes.split_at(bytes.len() / 2);
        let _ = MetadataRepr::parse(h, p);
        for s in [Section::Header, Section::Payload] {
            for tlv in TlvIter::new(&bytes, s).flatten() {
                let _ = TlvValue::parse(tlv);
            }
        }
    }
}
