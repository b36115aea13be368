//! Two routers in memory: ingress router A → egress router B → reply B → A, for UDP, TCP and
//! ICMP echo, IPv4 and IPv6 inner over IPv4, IPv6 and mixed outer; tamper tests; an
//! independent check with Python `cryptography`.

use std::net::IpAddr;

use svr_crypto::MetadataKey;

use super::packet::{fill_l4_checksum, write_ip, IpFields, PROTO_ICMP, PROTO_ICMPV6};
use super::*;
use crate::session::MetadataState;
use crate::svr::is_metadata;
use crate::wire::checksum;

const KEY_A_ENC: [u8; 32] = [0xa0; 32];
const KEY_A_MAC: [u8; 48] = [0x10; 48];
const KEY_B_ENC: [u8; 32] = [0xb0; 32];
const KEY_B_MAC: [u8; 48] = [0x40; 48];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pfx(s: &str) -> IpPrefix {
    s.parse().unwrap()
}

/// Waypoint families for the routers: (v4 waypoints, v6 waypoints).
fn router(me: &str, wps: (bool, bool), max_sessions: u32) -> (SvrShared, SvrWorker) {
    let (a, b) = (me == "router-a", me == "router-b");
    assert!(a || b);
    let wp = |n: u8| {
        let mut v = Vec::new();
        if wps.0 {
            v.push(ip(&format!("10.9.0.{n}")));
        }
        if wps.1 {
            v.push(ip(&format!("fd00:9::{n}")));
        }
        v
    };
    let (mine, theirs, peer_name) = if a {
        (wp(1), wp(2), "router-b")
    } else {
        (wp(2), wp(1), "router-a")
    };
    let cfg = SvrConfig {
        router_name: me.into(),
        services: vec![
            ServiceRoute {
                name: "site-a".into(),
                tenant: "blue".into(),
                prefixes: vec![pfx("10.1.0.0/24"), pfx("fd00:1::/64")],
                peer: if a { None } else { Some(0) },
                policy: Default::default(),
            },
            ServiceRoute {
                name: "site-b".into(),
                tenant: "blue".into(),
                prefixes: vec![pfx("10.2.0.0/24"), pfx("fd00:2::/64")],
                peer: if b { None } else { Some(0) },
                policy: Default::default(),
            },
        ],
        peers: vec![PeerInfo {
            name: peer_name.into(),
            waypoints: theirs,
            source_nat: false,
            paths: Vec::new(),
        }],
        local_waypoints: mine,
        wayport_range: WayportRange::default(),
        wan_mtu: 1500,
        max_sessions,
        timeouts: SessionTimeouts::default(),
        enable_metadata_rate: 100,
    };
    let sh = SvrShared::new(cfg).unwrap();
    let ka = || MetadataKey::new(1, &KEY_A_ENC, &KEY_A_MAC);
    let kb = || MetadataKey::new(1, &KEY_B_ENC, &KEY_B_MAC);
    if a {
        sh.keys.install_own(ka());
        sh.keys.install_peer(0, kb());
    } else {
        sh.keys.install_own(kb());
        sh.keys.install_peer(0, ka());
    }
    let w = SvrWorker::new(&sh, [if a { 1 } else { 2 }; 32]);
    (sh, w)
}

/// Publishes `sh`'s service table with `f` applied to its services (a reload).
fn edit_services(sh: &SvrShared, f: impl FnOnce(&mut Vec<ServiceRoute>)) {
    let mut t = ServiceTable::clone(&sh.services());
    f(&mut t.services);
    sh.replace_table(t).expect("the table fits");
}

/// An Ethernet frame with an IP packet around `l4` (checksums filled).
fn frame(src: &str, dst: &str, proto: u8, l4: &[u8]) -> Vec<u8> {
    let (src, dst) = (ip(src), ip(dst));
    let ipl = if src.is_ipv4() { 20 } else { 40 };
    let l3 = ipl + l4.len();
    let mut f = vec![0u8; 14 + l3];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    let fields = IpFields {
        ttl: 64,
        tos: 0,
        flow: 0,
        df: true,
        ident: 0x1234,
    };
    write_ip(&mut f, src, dst, proto, l3, fields);
    f[14 + ipl..].copy_from_slice(l4);
    let l4s = 14 + ipl;
    match proto {
        PROTO_ICMP => {
            let c = !checksum::data(&f[l4s..]);
            f[l4s + 2..l4s + 4].copy_from_slice(&c.to_be_bytes());
        }
        PROTO_ICMPV6 => {
            let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
                unreachable!()
            };
            let ps = checksum::pseudo_header_v6(
                &s,
                &d,
                crate::wire::IpProtocol::Icmpv6,
                l4.len() as u32,
            );
            let c = !checksum::combine(&[ps, checksum::data(&f[l4s..])]);
            f[l4s + 2..l4s + 4].copy_from_slice(&c.to_be_bytes());
        }
        _ => fill_l4_checksum(&mut f, proto, l4s, 14 + l3, src, dst),
    }
    f
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 8];
    v[..2].copy_from_slice(&sport.to_be_bytes());
    v[2..4].copy_from_slice(&dport.to_be_bytes());
    v[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn tcp(sport: u16, dport: u16, flags: u16, mss: Option<u16>, payload: &[u8]) -> Vec<u8> {
    let hl = if mss.is_some() { 24 } else { 20 };
    let mut v = vec![0u8; hl];
    v[..2].copy_from_slice(&sport.to_be_bytes());
    v[2..4].copy_from_slice(&dport.to_be_bytes());
    v[4..8].copy_from_slice(&1000u32.to_be_bytes());
    v[12] = ((hl / 4) as u8) << 4;
    v[13] = flags as u8;
    v[14..16].copy_from_slice(&65535u16.to_be_bytes());
    if let Some(m) = mss {
        v[20..24].copy_from_slice(&[2, 4, (m >> 8) as u8, m as u8]);
    }
    v.extend_from_slice(payload);
    v
}

fn echo(v6: bool, reply: bool, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let t = match (v6, reply) {
        (false, false) => 8,
        (false, true) => 0,
        (true, false) => 128,
        (true, true) => 129,
    };
    let mut v = vec![t, 0, 0, 0];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn fwd(v: Verdict) -> (IpAddr, usize) {
    match v {
        Verdict::Forward { dst, l3_len } => (dst, l3_len),
        other => panic!("expected Forward, got {other:?}"),
    }
}

/// The original frame with the TTL as in `out` (IPv4 checksum fixed): "equal except TTL".
fn same_but_ttl(orig: &[u8], out: &[u8]) {
    same_l3(orig, out, false)
}

/// As [`same_but_ttl`]; `mixed`: the packet crossed an IPv6 WAN, which has no IPv4
/// identification or DF to carry, so those may differ too.
fn same_l3(orig: &[u8], out: &[u8], mixed: bool) {
    let mut exp = orig.to_vec();
    if exp[12..14] == [0x08, 0x00] {
        exp[14 + 8] = out[14 + 8];
        if mixed {
            exp[18..22].copy_from_slice(&out[18..22]);
        }
        exp[24..26].fill(0);
        let c = !checksum::data(&exp[14..34]);
        exp[24..26].copy_from_slice(&c.to_be_bytes());
    } else {
        exp[14 + 7] = out[14 + 7];
    }
    assert_eq!(hex::encode(&exp), hex::encode(out));
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn octets(a: &str) -> Vec<u8> {
    match ip(a) {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

struct Pair {
    a: (SvrShared, SvrWorker),
    b: (SvrShared, SvrWorker),
    now: Instant,
    wan: Vec<Vec<u8>>,
}

impl Pair {
    fn new(wps: (bool, bool)) -> Pair {
        Pair {
            a: router("router-a", wps, 1024),
            b: router("router-b", wps, 1024),
            now: Instant::from_nanos(1_000_000_000),
            wan: Vec::new(),
        }
    }

    /// `from_a`: host-a's packet through A (LAN→WAN) and B (WAN→LAN); else the other way.
    /// Returns (WAN frame, LAN frame out).
    fn send(&mut self, from_a: bool, f: &[u8]) -> (Vec<u8>, Vec<u8>) {
        self.now = Instant::from_nanos(self.now.as_nanos() + 1_000_000);
        let ((sa, wa), (sb, wb)) = if from_a {
            (&mut self.a, &mut self.b)
        } else {
            (&mut self.b, &mut self.a)
        };
        let mut buf = TestBuffer::new(f);
        let (dst, l3) = fwd(ingress::lan_packet(sa, wa, &mut buf, self.now));
        assert!(sb.is_local_waypoint(dst), "WAN packet to {dst}");
        assert_eq!(buf.len(), 14 + l3);
        let wan = buf.data().to_vec();
        self.wan.push(wan.clone());
        let (_, l3) = fwd(egress::wan_packet(sb, wb, &mut buf, self.now));
        assert_eq!(buf.len(), 14 + l3);
        (wan, buf.data().to_vec())
    }

    fn wan_into(&mut self, to_b: bool, f: &[u8]) -> (Verdict, Vec<u8>) {
        let (s, w) = if to_b {
            (&self.b.0, &mut self.b.1)
        } else {
            (&self.a.0, &mut self.a.1)
        };
        let mut buf = TestBuffer::new(f);
        let v = egress::wan_packet(s, w, &mut buf, self.now);
        (v, buf.data().to_vec())
    }
}

/// L4 payload of a WAN frame (after UDP or TCP header).
fn wan_payload(f: &[u8]) -> &[u8] {
    let h = packet::parse(f, false).unwrap();
    &f[h.payload_start()..h.end()]
}

fn assert_no_clear(wan: &[u8], inner: &[&str], marker: &[u8]) {
    for a in inner {
        assert!(!contains(wan, &octets(a)), "inner address {a} in clear");
    }
    assert!(!contains(wan, marker), "payload marker in clear");
}

fn overhead(plain: usize) -> usize {
    16 * (plain / 16 + 1) - plain + 8 + 24
}

fn udp_roundtrip(wps: (bool, bool), ha: &str, hb: &str) {
    let mixed = ip(ha).is_ipv4() && !wps.0;
    let same_but_ttl = |a: &[u8], b: &[u8]| same_l3(a, b, mixed);
    let mut p = Pair::new(wps);
    let marker = b"SVR-SECRET-MARKER-0123456789";
    // IP bytes of the LAN packets each way (what the session counters count).
    let mut fwd_bytes = 0;
    let mut rev_bytes = 0;
    for i in 0..3u8 {
        let mut data = marker.to_vec();
        data.push(i);
        let f = frame(ha, hb, 17, &udp(40000, 5001, &data));
        fwd_bytes += f.len() as u64 - 14;
        let (wan, out) = p.send(true, &f);
        same_but_ttl(&f, &out);
        assert_no_clear(&wan, &[ha, hb], marker);
        // No reverse traffic yet: metadata on every packet (up to 11).
        assert!(is_metadata(wan_payload(&wan)), "packet {i} lacks metadata");
    }
    // Reply: reverse metadata on the first reply, then nothing.
    let f = frame(hb, ha, 17, &udp(5001, 40000, b"reply-1"));
    rev_bytes += f.len() as u64 - 14;
    let (wan, out) = p.send(false, &f);
    same_but_ttl(&f, &out);
    assert!(is_metadata(wan_payload(&wan)));
    // Forward again: no metadata now; B hears the silence as the acknowledgement.
    let f = frame(ha, hb, 17, &udp(40000, 5001, marker));
    let inner_l3 = f.len() - 14;
    fwd_bytes += inner_l3 as u64;
    let (wan, out) = p.send(true, &f);
    same_but_ttl(&f, &out);
    assert!(!is_metadata(wan_payload(&wan)));
    let outer_extra = match (ip(ha).is_ipv4(), wan[12..14] == [0x08, 0x00]) {
        (true, false) => 20,
        (false, true) => -20i64 as usize,
        _ => 0,
    };
    assert_eq!(
        (wan.len() - 14).wrapping_sub(inner_l3),
        overhead(8 + marker.len() - 8).wrapping_add(outer_extra)
    );
    let f = frame(hb, ha, 17, &udp(5001, 40000, b"reply-2"));
    rev_bytes += f.len() as u64 - 14;
    let (wan, out) = p.send(false, &f);
    same_but_ttl(&f, &out);
    assert!(
        !is_metadata(wan_payload(&wan)),
        "reverse metadata must stop"
    );
    assert_eq!(p.a.1.counters.drops.total(), 0);
    assert_eq!(p.b.1.counters.drops.total(), 0);
    // Both routers counted the same packets and LAN-side bytes per direction: the ingress's
    // forward packets came from its LAN, the egress's from its WAN.
    for (sh, role) in [(&p.a.0, Role::Ingress), (&p.b.0, Role::Egress)] {
        let v = only_session(sh);
        assert_eq!(v.session.role, role);
        assert_eq!(v.forward(), (4, fwd_bytes), "{role:?}");
        assert_eq!(v.reverse(), (2, rev_bytes), "{role:?}");
        assert_eq!(v.created_ms, 1_001, "{role:?}"); // the first packet's time
        assert_eq!(v.last_seen_ms, 1_006, "{role:?}");
    }
}

/// The one live session of a router's table.
fn only_session(sh: &SvrShared) -> crate::session::SessionView {
    let live: Vec<_> = (0..sh.table.capacity() as u32)
        .filter_map(|i| sh.table.session_at(i))
        .collect();
    assert_eq!(live.len(), 1);
    live[0]
}

#[test]
fn udp_v4_over_v4() {
    udp_roundtrip((true, false), "10.1.0.2", "10.2.0.2");
}

#[test]
fn udp_v6_over_v6() {
    udp_roundtrip((false, true), "fd00:1::2", "fd00:2::2");
}

#[test]
fn udp_v4_over_v6() {
    udp_roundtrip((false, true), "10.1.0.2", "10.2.0.2");
}

#[test]
fn udp_v6_over_v4() {
    udp_roundtrip((true, false), "fd00:1::2", "fd00:2::2");
}

#[test]
fn udp_metadata_stops_after_eleven() {
    let mut p = Pair::new((true, false));
    let mut with = 0;
    for _ in 0..15 {
        let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40000, 5001, b"x"));
        let (wan, _) = p.send(true, &f);
        with += usize::from(is_metadata(wan_payload(&wan)));
    }
    assert_eq!(with, 11);
}

fn tcp_exchange(wps: (bool, bool), ha: &str, hb: &str) {
    use crate::wire::tcp::flags::{ACK, FIN, SYN};
    let mut p = Pair::new(wps);
    let syn = frame(ha, hb, 6, &tcp(40001, 80, SYN, Some(1000), b""));
    let (wan, out) = p.send(true, &syn);
    same_but_ttl(&syn, &out);
    assert!(is_metadata(wan_payload(&wan)));
    // Retransmitted SYN: metadata again, same session.
    let (wan, out) = p.send(true, &syn);
    same_but_ttl(&syn, &out);
    assert!(is_metadata(wan_payload(&wan)));
    assert_eq!(p.b.0.table.len(), 1);
    let synack = frame(hb, ha, 6, &tcp(80, 40001, SYN | ACK, Some(1000), b""));
    let (wan, out) = p.send(false, &synack);
    same_but_ttl(&synack, &out);
    assert!(is_metadata(wan_payload(&wan)));
    let marker = b"GET /SVR-SECRET-MARKER HTTP/1.0\r\n\r\n";
    let data = frame(ha, hb, 6, &tcp(40001, 80, ACK, None, marker));
    let (wan, out) = p.send(true, &data);
    same_but_ttl(&data, &out);
    assert!(!is_metadata(wan_payload(&wan)));
    assert_no_clear(&wan, &[ha, hb], marker);
    let resp = frame(
        hb,
        ha,
        6,
        &tcp(80, 40001, ACK, None, b"HTTP/1.0 200 OK\r\n"),
    );
    let (wan, out) = p.send(false, &resp);
    same_but_ttl(&resp, &out);
    assert!(!is_metadata(wan_payload(&wan)));
    for (from_a, f) in [
        (
            true,
            frame(ha, hb, 6, &tcp(40001, 80, FIN | ACK, None, b"")),
        ),
        (
            false,
            frame(hb, ha, 6, &tcp(80, 40001, FIN | ACK, None, b"")),
        ),
    ] {
        let (_, out) = p.send(from_a, &f);
        same_but_ttl(&f, &out);
    }
    let s =
        p.a.0
            .table
            .lookup(&packet::parse(&syn, true).unwrap().key().unwrap())
            .unwrap();
    assert!(s.tcp.closing());
    assert_eq!(s.metadata, MetadataState::Established);
}

#[test]
fn tcp_v4_over_v4() {
    tcp_exchange((true, false), "10.1.0.2", "10.2.0.2");
}

#[test]
fn tcp_v6_over_v6() {
    tcp_exchange((false, true), "fd00:1::2", "fd00:2::2");
}

#[test]
fn tcp_v6_over_v4() {
    tcp_exchange((true, false), "fd00:1::2", "fd00:2::2");
}

#[test]
fn tcp_first_packet_must_be_syn() {
    let mut p = Pair::new((true, false));
    let f = frame("10.1.0.2", "10.2.0.2", 6, &tcp(1, 80, 0x10, None, b"x"));
    let mut buf = TestBuffer::new(&f);
    let v = ingress::lan_packet(&p.a.0, &mut p.a.1, &mut buf, p.now);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::TcpNotSyn)));
}

#[test]
fn mss_is_clamped_both_ways() {
    use crate::wire::tcp::flags::{ACK, SYN};
    let mut p = Pair::new((true, false));
    let syn = frame(
        "10.1.0.2",
        "10.2.0.2",
        6,
        &tcp(40001, 80, SYN, Some(1460), b""),
    );
    let (_, out) = p.send(true, &syn);
    let mss = |f: &[u8]| u16::from_be_bytes([f[14 + 20 + 22], f[14 + 20 + 23]]);
    assert_eq!(max_mss(1500, true), 1412);
    assert_eq!(max_mss(1500, false), 1392);
    // Less the room for rekey metadata: 180 and 196 bytes with these names (the longest peer
    // path ID is an IPv6 waypoint), README "MTU".
    assert_eq!(rekey_reserve(&p.a.0.cfg, true), 180);
    assert_eq!(rekey_reserve(&p.a.0.cfg, false), 196);
    assert_eq!(p.a.0.clamped_mss(true, true), 1412 - 180);
    assert_eq!(p.a.0.clamped_mss(false, false), 1392 - 196);
    assert_eq!(mss(&out), 1412 - 180);
    let synack = frame(
        "10.2.0.2",
        "10.1.0.2",
        6,
        &tcp(80, 40001, SYN | ACK, Some(1460), b""),
    );
    let (_, out) = p.send(false, &synack);
    assert_eq!(mss(&out), 1412 - 180);
    // The rewritten segments still check out.
    let h = packet::parse(&out, true).unwrap();
    let t = crate::wire::TcpPacket::new_checked(&out[h.l4_start()..h.end()]).unwrap();
    assert!(t.verify_checksum(&h.src, &h.dst));
}

fn icmp_echo(wps: (bool, bool), ha: &str, hb: &str) {
    let v6 = !ip(ha).is_ipv4();
    let proto = if v6 { PROTO_ICMPV6 } else { PROTO_ICMP };
    let mut p = Pair::new(wps);
    for seq in 1..4 {
        let req = frame(
            ha,
            hb,
            proto,
            &echo(v6, false, 0x4242, seq, b"SVR-SECRET-PING"),
        );
        let (wan, out) = p.send(true, &req);
        same_but_ttl(&req, &out);
        assert_eq!(
            wan[14
                + if wan[12] == 0x08 && wan[13] == 0 {
                    9
                } else {
                    6
                }],
            17
        );
        assert_no_clear(&wan, &[ha, hb], b"SVR-SECRET-PING");
        let rep = frame(
            hb,
            ha,
            proto,
            &echo(v6, true, 0x4242, seq, b"SVR-SECRET-PING"),
        );
        let (wan, out) = p.send(false, &rep);
        same_but_ttl(&rep, &out);
        if seq > 1 {
            assert!(!is_metadata(wan_payload(&wan)));
            // Per-packet overhead: UDP header + padding + trailer + HMAC.
            let icmp_len = 8 + 15;
            assert_eq!(wan.len() - rep.len(), 8 + overhead(icmp_len));
        }
    }
    assert_eq!(p.a.0.table.len(), 1);
}

#[test]
fn icmp_v4_over_v4() {
    icmp_echo((true, false), "10.1.0.2", "10.2.0.2");
}

#[test]
fn icmp_v6_over_v6() {
    icmp_echo((false, true), "fd00:1::2", "fd00:2::2");
}

#[test]
fn icmp_v4_over_v6() {
    let mut p = Pair::new((false, true));
    let req = frame("10.1.0.2", "10.2.0.2", 1, &echo(false, false, 7, 1, b"hi"));
    let (wan, out) = p.send(true, &req);
    assert_eq!(&wan[12..14], &[0x86, 0xdd]);
    same_l3(&req, &out, true);
}

#[test]
fn mtu_exceeded_is_punted_unchanged() {
    let mut p = Pair::new((true, false));
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(1, 2, &[0x55; 1400]));
    let mut buf = TestBuffer::new(&f);
    let v = ingress::lan_packet(&p.a.0, &mut p.a.1, &mut buf, p.now);
    let Verdict::Punt { reason, mtu } = v else {
        panic!("{v:?}")
    };
    assert_eq!(reason, crate::forward::PuntReason::MtuExceeded);
    assert!(mtu < 1428 && mtu > 1000, "{mtu}");
    assert_eq!(buf.data(), &f[..]);
}

/// A session in steady state, and a genuine data packet A → B on it.
fn steady() -> (Pair, Vec<u8>, Vec<u8>) {
    steady_on(Pair::new((true, false)))
}

/// [`steady`] on the routers of `p`.
fn steady_on(mut p: Pair) -> (Pair, Vec<u8>, Vec<u8>) {
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40000, 5001, b"first"));
    p.send(true, &f);
    p.send(
        false,
        &frame("10.2.0.2", "10.1.0.2", 17, &udp(5001, 40000, b"r")),
    );
    let f = frame(
        "10.1.0.2",
        "10.2.0.2",
        17,
        &udp(40000, 5001, b"steady data packet"),
    );
    let mut buf = TestBuffer::new(&f);
    fwd(ingress::lan_packet(&p.a.0, &mut p.a.1, &mut buf, p.now));
    let wan = buf.data().to_vec();
    assert!(!is_metadata(wan_payload(&wan)));
    (p, wan, f)
}

/// The next genuine packet still passes.
fn still_works(p: &mut Pair) {
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40000, 5001, b"after"));
    let (_, out) = p.send(true, &f);
    same_but_ttl(&f, &out);
}

fn fix_ipv4_udp(f: &mut [u8]) {
    f[24..26].fill(0);
    let c = !checksum::data(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let (s, d) = (
        IpAddr::from(<[u8; 4]>::try_from(&f[26..30]).unwrap()),
        IpAddr::from(<[u8; 4]>::try_from(&f[30..34]).unwrap()),
    );
    let end = f.len();
    fill_l4_checksum(f, 17, 34, end, s, d);
}

#[test]
fn tamper_ciphertext_trailer_hmac() {
    let (mut p, wan, _) = steady();
    let n = wan.len();
    for (at, why) in [
        (42, SvrDrop::BadMac),     // first ciphertext byte
        (n - 30, SvrDrop::BadMac), // trailer
        (n - 1, SvrDrop::BadMac),  // HMAC
    ] {
        let mut t = wan.clone();
        t[at] ^= 0x01;
        let (v, _) = p.wan_into(true, &t);
        assert_eq!(v, Verdict::Drop(DropCause::Svr(why)), "byte {at}");
    }
    assert_eq!(p.b.1.counters.drops.get(SvrDrop::BadMac), 3);
    // Genuine packet, then its replay.
    let (v, _) = p.wan_into(true, &wan);
    fwd(v);
    let (v, _) = p.wan_into(true, &wan);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::Replay)));
    assert_eq!(p.b.1.counters.drops.get(SvrDrop::Replay), 1);
    still_works(&mut p);
}

#[test]
fn tamper_truncate_and_header() {
    let (mut p, wan, _) = steady();
    // Truncated with consistent IP/UDP lengths: by a block (HMAC fails), by 8 (not whole
    // blocks: refused before the HMAC is computed).
    for (cut, why) in [(16, SvrDrop::BadMac), (8, SvrDrop::Decrypt)] {
        let mut t = wan[..wan.len() - cut].to_vec();
        let l3 = (t.len() - 14) as u16;
        t[16..18].copy_from_slice(&l3.to_be_bytes());
        t[38..40].copy_from_slice(&(l3 - 20).to_be_bytes());
        fix_ipv4_udp(&mut t);
        let (v, _) = p.wan_into(true, &t);
        assert_eq!(v, Verdict::Drop(DropCause::Svr(why)), "cut {cut}");
    }
    // Shorter than trailer + HMAC.
    let mut t = wan[..14 + 20 + 8 + 20].to_vec();
    t[16..18].copy_from_slice(&48u16.to_be_bytes());
    t[38..40].copy_from_slice(&28u16.to_be_bytes());
    fix_ipv4_udp(&mut t);
    let (v, _) = p.wan_into(true, &t);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::Malformed)));
    // A flipped wayport: no such session. B asks for metadata (Enable Metadata to A).
    let mut t = wan.clone();
    t[14 + 20 + 3] ^= 0x02;
    fix_ipv4_udp(&mut t);
    let (v, ctl) = p.wan_into(true, &t);
    fwd(v);
    assert_eq!(p.b.1.counters.drops.get(SvrDrop::UnknownSession), 1);
    assert!(is_metadata(wan_payload(&ctl)));
    // Unknown peer source.
    let mut t = wan.clone();
    t[29] = 77;
    fix_ipv4_udp(&mut t);
    let (v, _) = p.wan_into(true, &t);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::UnknownPeer)));
    still_works(&mut p);
}

#[test]
fn tamper_metadata() {
    let mut p = Pair::new((true, false));
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40000, 5001, b"first"));
    let mut buf = TestBuffer::new(&f);
    fwd(ingress::lan_packet(&p.a.0, &mut p.a.1, &mut buf, p.now));
    let wan = buf.data().to_vec();
    let md = 14 + 20 + 8;
    // Header TLV (security id), encrypted TLVs, IV: HMAC catches all.
    for at in [md + 9, md + 19, md + 30, md + 60] {
        let mut t = wan.clone();
        t[at] ^= 0x80;
        let (v, _) = p.wan_into(true, &t);
        assert!(
            matches!(v, Verdict::Drop(_)),
            "flip at {at} accepted: {v:?}"
        );
    }
    assert_eq!(p.b.0.table.len(), 0);
    // Bad version: a metadata parse error with its own counter.
    let mut t = wan.clone();
    t[md + 8] = 0x20 | (t[md + 8] & 0x0f);
    let (v, _) = p.wan_into(true, &t);
    assert_eq!(
        v,
        Verdict::Drop(DropCause::Metadata(crate::svr::MetadataError::BadVersion))
    );
    assert_eq!(
        p.b.1.counters.metadata[crate::svr::MetadataError::BadVersion.index()],
        1
    );
    let (v, _) = p.wan_into(true, &wan);
    fwd(v);
    assert_eq!(p.b.0.table.len(), 1);
}

#[test]
fn enable_metadata_restores_lost_state() {
    let (mut p, wan, _) = steady();
    // B loses its session (e.g. restart): the next packet is answered with Enable Metadata.
    let s =
        p.b.0
            .table
            .lookup(&packet::parse(&wan, false).unwrap().key().unwrap())
            .unwrap();
    assert!(p.b.0.remove_session(&s));
    let (v, ctl) = p.wan_into(true, &wan);
    let (dst, _) = fwd(v);
    assert_eq!(dst, ip("10.9.0.1"));
    let (v, _) = p.wan_into(false, &ctl);
    assert_eq!(v, Verdict::Consumed);
    // A resends metadata on that session under a fresh payload key (a replay of the first
    // packet, same UUID and key, would be refused as `svr_session_replayed`); B recreates it.
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40000, 5001, b"again"));
    let (wan, out) = p.send(true, &f);
    assert!(is_metadata(wan_payload(&wan)));
    same_but_ttl(&f, &out);
    assert_eq!(p.b.1.counters.drops.get(SvrDrop::SessionReplayed), 0);
}

#[test]
fn session_table_full_keeps_old_sessions() {
    let mut p = Pair {
        a: router("router-a", (true, false), 2),
        b: router("router-b", (true, false), 64),
        now: Instant::from_nanos(1),
        wan: Vec::new(),
    };
    for port in [1000, 1001] {
        p.send(
            true,
            &frame("10.1.0.2", "10.2.0.2", 17, &udp(port, 53, b"q")),
        );
    }
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(1002, 53, b"q"));
    let mut buf = TestBuffer::new(&f);
    let v = ingress::lan_packet(&p.a.0, &mut p.a.1, &mut buf, p.now);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::SessionTableFull)));
    p.send(
        true,
        &frame("10.1.0.2", "10.2.0.2", 17, &udp(1000, 53, b"q")),
    );
    // Expiry frees the table and the wayports.
    let later = Instant::from_nanos(p.now.as_nanos() + 120_000_000_000);
    let mut cursor = 0;
    assert_eq!(p.a.0.sweep(&mut cursor, later, 16), 2);
    assert_eq!(p.a.0.pairs()[0].ports.in_use(), 0);
}

/// Independent check: Python `cryptography` verifies the HMACs and decrypts metadata and
/// payload of WAN packets produced here (fastpath/tests/svr_wan_check.py).
#[test]
fn python_verifies_wan_packets() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "python3 with the cryptography package is required");
    let mut p = Pair::new((true, true));
    p.send(
        true,
        &frame(
            "10.1.0.2",
            "10.2.0.2",
            17,
            &udp(40000, 5001, b"SVR-MARKER-ONE"),
        ),
    );
    p.send(
        false,
        &frame(
            "10.2.0.2",
            "10.1.0.2",
            17,
            &udp(5001, 40000, b"SVR-MARKER-TWO"),
        ),
    );
    p.send(
        true,
        &frame(
            "10.1.0.2",
            "10.2.0.2",
            17,
            &udp(40000, 5001, b"SVR-MARKER-THREE"),
        ),
    );
    let mut json = String::from("{\"keys\": {");
    json += &format!(
        "\"router-a\": [\"{}\", \"{}\"], \"router-b\": [\"{}\", \"{}\"]}}, \"packets\": [",
        hex::encode(KEY_A_ENC),
        hex::encode(KEY_A_MAC),
        hex::encode(KEY_B_ENC),
        hex::encode(KEY_B_MAC)
    );
    let dirs = ["router-b", "router-a", "router-b"];
    let plains = ["SVR-MARKER-ONE", "SVR-MARKER-TWO", "SVR-MARKER-THREE"];
    for (i, w) in p.wan.iter().enumerate() {
        if i > 0 {
            json += ", ";
        }
        json += &format!(
            "{{\"to\": \"{}\", \"frame\": \"{}\", \"plain\": \"{}\"}}",
            dirs[i],
            hex::encode(w),
            hex::encode(plains[i])
        );
    }
    json += "]}";
    let path = std::env::temp_dir().join(format!("svr-wan-{}.json", std::process::id()));
    std::fs::write(&path, json).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/svr_wan_check.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("OK checked=3"), "{stdout}");
}

/// Key management publishes per-peer keys (which override the shared test keys) and a
/// payload-key index; paths gate new sessions and the packets of sessions on them.
#[test]
fn path_gating_per_peer_keys_and_payload_index() {
    use std::sync::Arc;
    let mut p = Pair::new((true, true));
    // Per-peer keys in place of the shared ones, index 7, as the key exchange publishes them.
    let ka = || Arc::new(MetadataKey::new(7, &[0x5a; 32], &[0x6b; 48]));
    let kb = || Arc::new(MetadataKey::new(7, &[0x7c; 32], &[0x8d; 48]));
    let pair = |k: Arc<MetadataKey>| keys::KeyPair {
        current: Some(k),
        previous: None,
    };
    p.a.0.keys.publish_peer(0, pair(ka()), pair(kb()), 3);
    p.b.0.keys.publish_peer(0, pair(kb()), pair(ka()), 0);
    // Gated, nothing in service: no new session, counted.
    p.a.0.keys.gate_paths(p.a.0.pairs().len());
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40000, 5001, b"x"));
    let mut buf = TestBuffer::new(&f);
    let v = ingress::lan_packet(&p.a.0, &mut p.a.1, &mut buf, p.now);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::PathOutOfService)));
    assert_eq!(p.a.0.table.len(), 0);
    // Only the IPv6 pair in service: the IPv4 flow takes it (another family, still served).
    let v6 =
        p.a.0
            .pairs()
            .iter()
            .position(|x| !x.local.is_ipv4())
            .unwrap();
    let v4 =
        p.a.0
            .pairs()
            .iter()
            .position(|x| x.local.is_ipv4())
            .unwrap();
    p.a.0.keys.set_path_in_service(v6, true);
    let (wan, _) = p.send(true, &f);
    assert_eq!(&wan[12..14], &[0x86, 0xdd], "v4 inner over the v6 path");
    let key = crate::session::FlowKey::new(ip("10.1.0.2"), ip("10.2.0.2"), 17, 40000, 5001);
    let s = p.a.0.table.lookup(&key.unwrap()).unwrap();
    assert_eq!(
        s.payload_key_index, 3,
        "new session takes the published index"
    );
    let s = p.b.0.table.lookup(&key.unwrap().reversed()).unwrap();
    assert_eq!(s.payload_key_index, 3, "carried to the egress in TLV 46");
    // The session's path leaves service: its packets stop, counted.
    p.a.0.keys.set_path_in_service(v6, false);
    p.a.0.keys.set_path_in_service(v4, true);
    let mut buf = TestBuffer::new(&f);
    let v = ingress::lan_packet(&p.a.0, &mut p.a.1, &mut buf, p.now);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::PathOutOfService)));
    p.a.0.keys.set_path_in_service(v6, true);
    p.send(true, &f);
}

#[test]
fn bfd_to_a_waypoint_stays_with_the_slow_path() {
    let (sh, _) = router("router-a", (true, true), 1024);
    // 1280 inside the wayport range, to be sure the port decides, not the range.
    let mut cfg = sh.config();
    cfg.wayport_range = WayportRange {
        first: 1024,
        last: 65535,
    };
    let sh = SvrShared::new(cfg).unwrap();
    let bfd = frame("10.9.0.2", "10.9.0.1", 17, &udp(1280, 1280, &[0x20; 24]));
    assert!(!is_wan_candidate(&sh, &bfd));
    let bfd6 = frame("fd00:9::2", "fd00:9::1", 17, &udp(1280, 1280, &[0x20; 24]));
    assert!(!is_wan_candidate(&sh, &bfd6));
    let data = frame("10.9.0.2", "10.9.0.1", 17, &udp(1280, 1281, &[0; 24]));
    assert!(is_wan_candidate(&sh, &data), "a wayport, not BFD");
}

/// Sets the payload-key index new sessions to peer 0 get (what svrd's key-management glue
/// publishes on `PayloadKeyRotationDue`), keeping the test keys.
fn set_payload_index(sh: &SvrShared, index: u8) {
    let snap = sh.keys.load_full();
    sh.keys.publish_peer(
        0,
        keys::KeyPair {
            current: snap.own.current.clone(),
            previous: None,
        },
        snap.peers[0].clone(),
        index,
    );
}

impl Pair {
    /// `from_a`: host-a's packet through A's LAN side only; the WAN frame.
    fn lan_out(&mut self, from_a: bool, f: &[u8]) -> Vec<u8> {
        self.now = Instant::from_nanos(self.now.as_nanos() + 1_000_000);
        let (s, w) = if from_a {
            (&self.a.0, &mut self.a.1)
        } else {
            (&self.b.0, &mut self.b.1)
        };
        let mut buf = TestBuffer::new(f);
        fwd(ingress::lan_packet(s, w, &mut buf, self.now));
        buf.data().to_vec()
    }

    /// A WAN frame into B (`to_b`) or A: must be delivered as `orig`.
    fn deliver(&mut self, to_b: bool, wan: &[u8], orig: &[u8]) {
        let (v, out) = self.wan_into(to_b, wan);
        fwd(v);
        same_but_ttl(orig, &out);
    }

    fn advance(&mut self, secs: u64) {
        self.now = Instant::from_nanos(self.now.as_nanos() + secs * 1_000_000_000);
    }
}

/// Whether `key` authenticates the data packet `wan` travelling in `dir`.
fn signed_by(wan: &[u8], key: &svr_crypto::PayloadKey, dir: svr_crypto::Direction) -> bool {
    let h = packet::parse(wan, false).unwrap();
    let (signed, tag) = wan[h.payload_start()..h.end()].split_at(h.end() - h.payload_start() - 24);
    key.verify(dir, signed, tag).is_ok()
}

/// A live session keeps delivering every packet, both ways, across two payload-key index
/// changes with reordering around each switch; after the switch the WAN packets are signed
/// under the new key only; old-key packets pass within the grace period and not after.
fn rekey_live_session(tcp_flow: bool) {
    use crate::wire::tcp::flags::{ACK, SYN};
    use svr_crypto::Direction;
    let (ha, hb) = ("10.1.0.2", "10.2.0.2");
    let fa = |d: &[u8]| {
        if tcp_flow {
            frame(ha, hb, 6, &tcp(40001, 80, ACK, None, d))
        } else {
            frame(ha, hb, 17, &udp(40000, 5001, d))
        }
    };
    let fb = |d: &[u8]| {
        if tcp_flow {
            frame(hb, ha, 6, &tcp(80, 40001, ACK, None, d))
        } else {
            frame(hb, ha, 17, &udp(5001, 40000, d))
        }
    };
    let mut p = Pair::new((true, false));
    if tcp_flow {
        p.send(
            true,
            &frame(ha, hb, 6, &tcp(40001, 80, SYN, Some(1200), b"")),
        );
        p.send(
            false,
            &frame(hb, ha, 6, &tcp(80, 40001, SYN | ACK, Some(1200), b"")),
        );
    } else {
        p.send(true, &fa(b"hello"));
        p.send(false, &fb(b"hello back"));
    }
    for i in 0..3u8 {
        p.send(true, &fa(&[b'a', i]));
        p.send(false, &fb(&[b'b', i]));
    }
    let lan_a = packet::parse(&fa(b"k"), true).unwrap().key().unwrap();
    let lan_b = lan_a.reversed();
    let sa = p.a.0.table.lookup(&lan_a).unwrap();
    let sb = p.b.0.table.lookup(&lan_b).unwrap();
    assert_eq!(sa.metadata, MetadataState::Established);
    assert_eq!(sb.metadata, MetadataState::Established);
    for (round, index) in [(1u64, 5u8), (2, 9)] {
        let old_a = p.a.0.crypto(sa.id).unwrap();
        let old_b = p.b.0.crypto(sb.id).unwrap();
        assert_eq!(old_a.current.index(), old_b.current.index());
        // Old-key packets still in flight when the rotation comes, both ways.
        let (held_a, held_a_f) = (p.lan_out(true, &fa(b"held-a")), fa(b"held-a"));
        let (late_a, late_a_f) = (p.lan_out(true, &fa(b"late-a")), fa(b"late-a"));
        let (held_b, held_b_f) = (p.lan_out(false, &fb(b"held-b")), fb(b"held-b"));
        assert!(!is_metadata(wan_payload(&held_a)));
        set_payload_index(&p.a.0, index);
        // A notices on its next packet: new key, forward metadata again.
        let f: Vec<_> = (0..3u8).map(|i| fa(&[b'm', i])).collect();
        let w: Vec<_> = f.iter().map(|x| p.lan_out(true, x)).collect();
        for x in &w {
            assert!(is_metadata(wan_payload(x)), "rekey: forward metadata again");
        }
        let pending = p.a.0.crypto(sa.id).unwrap();
        assert_eq!(pending.next.as_ref().map(|k| k.index()), Some(index));
        assert_eq!(
            p.a.0.table.get(sa.id, Side::Lan).unwrap().payload_key_index,
            index
        );
        // Reordered at B: the second metadata packet, the old-key data packet, the first, the
        // third.
        p.deliver(true, &w[1], &f[1]);
        p.deliver(true, &held_a, &held_a_f);
        p.deliver(true, &w[0], &f[0]);
        p.deliver(true, &w[2], &f[2]);
        let b_now = p.b.0.crypto(sb.id).unwrap();
        assert_eq!(b_now.current.index(), index, "B installed the new key");
        assert_eq!(
            p.b.0.table.get(sb.id, Side::Lan).unwrap().payload_key_index,
            index
        );
        // B answers with reverse metadata (the acknowledgement), under the new key; reordered
        // at A with B's old-key packet.
        let r: Vec<_> = (0..2u8).map(|i| fb(&[b'r', i])).collect();
        let rw: Vec<_> = r.iter().map(|x| p.lan_out(false, x)).collect();
        for x in &rw {
            assert!(
                is_metadata(wan_payload(x)),
                "acknowledged with reverse metadata"
            );
        }
        p.deliver(false, &rw[1], &r[1]);
        assert_eq!(
            p.a.0.crypto(sa.id).unwrap().current.index(),
            index,
            "A switched on the echo"
        );
        p.deliver(false, &held_b, &held_b_f);
        p.deliver(false, &rw[0], &r[0]);
        // Both ways on the new key only, without metadata.
        let new_a = p.a.0.crypto(sa.id).unwrap();
        assert!(new_a.next.is_none());
        for from_a in [true, false, true, false] {
            let f = if from_a { fa(b"after") } else { fb(b"after") };
            let (wan, out) = p.send(from_a, &f);
            same_but_ttl(&f, &out);
            assert!(!is_metadata(wan_payload(&wan)));
            let dir = if from_a {
                Direction::Forward
            } else {
                Direction::Reverse
            };
            assert!(signed_by(&wan, &new_a.current.key, dir), "new key");
            assert!(!signed_by(&wan, &old_a.current.key, dir), "not the old key");
            assert!(!signed_by(&wan, &old_b.current.key, dir), "not the old key");
        }
        assert_eq!(
            p.a.0.table.get(sa.id, Side::Lan).unwrap().metadata,
            MetadataState::Established
        );
        assert_eq!(
            p.b.0.table.get(sb.id, Side::Lan).unwrap().metadata,
            MetadataState::Established
        );
        let ev = |c: &SvrCounters, e| c.events.get(e);
        assert_eq!(ev(&p.a.1.counters, SvrEvent::PayloadRekeyStarted), round);
        assert_eq!(ev(&p.a.1.counters, SvrEvent::PayloadRekeyCompleted), round);
        assert_eq!(ev(&p.b.1.counters, SvrEvent::PayloadRekeyInstalled), round);
        assert_eq!(ev(&p.b.1.counters, SvrEvent::PayloadKeyPreviousUsed), round);
        assert_eq!(ev(&p.a.1.counters, SvrEvent::PayloadKeyPreviousUsed), round);
        // After the grace period the old key is refused.
        p.advance(PAYLOAD_KEY_GRACE_MS / 1000 + 1);
        let (v, _) = p.wan_into(true, &late_a);
        assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::BadMac)));
        let _ = late_a_f;
        p.b.1.counters.drops = SvrDropCounters::default();
        for from_a in [true, false] {
            let f = if from_a { fa(b"still") } else { fb(b"still") };
            p.send(from_a, &f);
        }
    }
    assert_eq!(p.a.1.counters.drops.total(), 0);
    assert_eq!(p.b.1.counters.drops.total(), 0);
}

#[test]
fn payload_rekey_live_udp_session() {
    rekey_live_session(false);
}

#[test]
fn payload_rekey_live_tcp_session() {
    rekey_live_session(true);
}

/// A rekey nobody acknowledges (a one-way flow) switches after `PAYLOAD_KEY_SWITCH_MS`, and
/// the egress still has the old key's packets covered by its grace period.
#[test]
fn payload_rekey_one_way_flow_switches_on_time() {
    let (ha, hb) = ("10.1.0.2", "10.2.0.2");
    let fa = |d: &[u8]| frame(ha, hb, 17, &udp(40000, 5001, d));
    let mut p = Pair::new((true, false));
    p.send(true, &fa(b"one"));
    p.send(false, &frame(hb, ha, 17, &udp(5001, 40000, b"back")));
    p.send(true, &fa(b"two"));
    set_payload_index(&p.a.0, 3);
    // Metadata for eleven packets, then data under the old key (accepted by B as previous).
    for i in 0..15u8 {
        let f = fa(&[b'x', i]);
        let (wan, out) = p.send(true, &f);
        same_but_ttl(&f, &out);
        assert_eq!(is_metadata(wan_payload(&wan)), i < 11, "packet {i}");
    }
    assert!(p.b.1.counters.events.get(SvrEvent::PayloadKeyPreviousUsed) >= 4);
    p.advance(PAYLOAD_KEY_SWITCH_MS / 1000);
    let f = fa(b"switched");
    let (wan, out) = p.send(true, &f);
    same_but_ttl(&f, &out);
    let key = crate::session::FlowKey::new(ip(ha), ip(hb), 17, 40000, 5001).unwrap();
    let id = p.a.0.table.lookup(&key).unwrap().id;
    let c = p.a.0.crypto(id).unwrap();
    assert_eq!(c.current.index(), 3);
    assert!(signed_by(
        &wan,
        &c.current.key,
        svr_crypto::Direction::Forward
    ));
    assert_eq!(
        p.a.1.counters.events.get(SvrEvent::PayloadRekeyCompleted),
        1
    );
    assert_eq!(p.b.1.counters.drops.total(), 0);
}

/// Runs `frames` through one router's LAN side (`lan`) or WAN side, one packet at a time or
/// as one burst (stages, then [`finish_burst`]); returns each verdict and frame.
fn run_side(
    r: &mut (SvrShared, SvrWorker),
    lan: bool,
    frames: &[Vec<u8>],
    now: Instant,
    burst: bool,
) -> Vec<(Verdict, Vec<u8>)> {
    let (sh, w) = (&r.0, &mut r.1);
    let mut bufs: Vec<Option<TestBuffer>> =
        frames.iter().map(|f| Some(TestBuffer::new(f))).collect();
    let mut verdicts = vec![Verdict::Pending; frames.len()];
    if burst {
        let mut work: Vec<Option<Deferred>> = (0..frames.len()).map(|_| None).collect();
        for (i, b) in bufs.iter_mut().enumerate() {
            let b = b.as_mut().unwrap();
            verdicts[i] = if lan {
                ingress::lan_stage(sh, w, b, now, &mut work[i])
            } else {
                egress::wan_stage(sh, w, b, now, &mut work[i])
            };
            assert_eq!(verdicts[i] == Verdict::Pending, work[i].is_some());
        }
        finish_burst(sh, w, &mut bufs, &mut work, now, &mut verdicts);
        assert!(
            work.iter().all(Option::is_none),
            "every deferred packet finished"
        );
    } else {
        for (i, b) in bufs.iter_mut().enumerate() {
            let b = b.as_mut().unwrap();
            verdicts[i] = if lan {
                ingress::lan_packet(sh, w, b, now)
            } else {
                egress::wan_packet(sh, w, b, now)
            };
        }
    }
    verdicts
        .into_iter()
        .zip(bufs)
        .map(|(v, b)| (v, b.unwrap().data().to_vec()))
        .collect()
}

/// The burst path (stages + `finish_burst`, multi-buffer crypto) gives the same bytes,
/// verdicts and counters as the packet-at-a-time path, on a mixed burst of 70: new sessions
/// (metadata), established UDP and TCP data both ways, a duplicate within the burst
/// (replay), a tampered packet, IPv4 and IPv6, long and short payloads.
#[test]
fn burst_matches_packet_by_packet() {
    let mut one = Pair::new((true, true));
    let mut many = Pair::new((true, true));
    let flow = |i: u16, v6: bool, rev: bool, len: usize| {
        let (a, b) = if v6 {
            ("fd00:1::2", "fd00:2::2")
        } else {
            ("10.1.0.2", "10.2.0.2")
        };
        let data: Vec<u8> = (0..len).map(|k| (k as u8) ^ (i as u8)).collect();
        if rev {
            frame(b, a, 17, &udp(5001, 40000 + i, &data))
        } else {
            frame(a, b, 17, &udp(40000 + i, 5001, &data))
        }
    };
    // 24 flows established identically on both pairs (forward, reply, forward).
    for p in [&mut one, &mut many] {
        for i in 0..24u16 {
            let v6 = i % 3 == 0;
            p.send(true, &flow(i, v6, false, 10));
            p.send(false, &flow(i, v6, true, 10));
            p.send(true, &flow(i, v6, false, 10));
        }
    }
    let mut lan_a = Vec::new();
    for i in 0..60u16 {
        // Flows 24.. are new (metadata); sizes from 0 to 1,400 bytes of payload.
        let len = (usize::from(i) * 97) % 1401;
        lan_a.push(flow(i % 30, i % 3 == 0, false, len));
    }
    lan_a.push(frame(
        "10.1.0.2",
        "10.2.0.2",
        6,
        &tcp(41000, 80, crate::wire::tcp::flags::SYN, Some(1460), b""),
    ));
    let now = Instant::from_nanos(one.now.as_nanos() + 1_000_000);
    let a1 = run_side(&mut one.a, true, &lan_a, now, false);
    let a2 = run_side(&mut many.a, true, &lan_a, now, true);
    assert_eq!(a1, a2, "LAN → WAN");
    // The WAN frames into B: all of them, then one replayed and one tampered.
    let mut wan: Vec<Vec<u8>> = a1
        .iter()
        .filter(|(v, _)| matches!(v, Verdict::Forward { .. }))
        .map(|(_, f)| f.clone())
        .collect();
    assert!(wan.len() > 50);
    wan.push(wan[3].clone());
    let mut bad = wan[5].clone();
    let n = bad.len();
    bad[n - 30] ^= 1;
    wan.push(bad);
    let b1 = run_side(&mut one.b, false, &wan, now, false);
    let b2 = run_side(&mut many.b, false, &wan, now, true);
    assert_eq!(b1, b2, "WAN → LAN");
    assert!(b1
        .iter()
        .any(|(v, _)| *v == Verdict::Drop(DropCause::Svr(SvrDrop::Replay))));
    assert!(b1
        .iter()
        .any(|(v, _)| *v == Verdict::Drop(DropCause::Svr(SvrDrop::BadMac))));
    // Replies B → A: data of the established flows, as a burst.
    let lan_b: Vec<Vec<u8>> = (0..24u16)
        .map(|i| flow(i, i % 3 == 0, true, 1 + usize::from(i) * 50))
        .collect();
    let r1 = run_side(&mut one.b, true, &lan_b, now, false);
    let r2 = run_side(&mut many.b, true, &lan_b, now, true);
    assert_eq!(r1, r2, "reply LAN → WAN");
    let wan_b: Vec<Vec<u8>> = r1.into_iter().map(|(_, f)| f).collect();
    let o1 = run_side(&mut one.a, false, &wan_b, now, false);
    let o2 = run_side(&mut many.a, false, &wan_b, now, true);
    assert_eq!(o1, o2, "reply WAN → LAN");
    for (i, (v, f)) in o1.iter().enumerate() {
        assert!(matches!(v, Verdict::Forward { .. }), "reply {i}: {v:?}");
        same_l3(&lan_b[i], f, false);
    }
    assert_eq!(
        format!("{:?}", one.a.1.counters),
        format!("{:?}", many.a.1.counters)
    );
    assert_eq!(
        format!("{:?}", one.b.1.counters),
        format!("{:?}", many.b.1.counters)
    );
}

// ---- wayports (docs/background.md §1.5) ----------------------------------------------------

use std::collections::HashSet;

/// Router A (IPv4 waypoints) with its config changed by `f`, test keys installed.
fn router_a_with(max_sessions: u32, f: impl FnOnce(&mut SvrConfig)) -> (SvrShared, SvrWorker) {
    let mut cfg = router("router-a", (true, false), 1024).0.config();
    cfg.max_sessions = max_sessions;
    f(&mut cfg);
    let sh = SvrShared::new(cfg).unwrap();
    sh.keys
        .install_own(MetadataKey::new(1, &KEY_A_ENC, &KEY_A_MAC));
    sh.keys
        .install_peer(0, MetadataKey::new(1, &KEY_B_ENC, &KEY_B_MAC));
    let w = SvrWorker::new(&sh, [1; 32]);
    (sh, w)
}

/// The first packet of UDP flow host-a:`sport` → host-b:53 through A: the verdict, and the
/// WAN destination and (source, destination) wayports when it was forwarded.
fn open_flow(r: &mut (SvrShared, SvrWorker), sport: u16) -> Result<(IpAddr, Wayports), Verdict> {
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(sport, 53, b"q"));
    let mut buf = TestBuffer::new(&f);
    match ingress::lan_packet(&r.0, &mut r.1, &mut buf, Instant::from_nanos(1_000_000_000)) {
        Verdict::Forward { dst, .. } => {
            let d = buf.data();
            let port = |i: usize| u16::from_be_bytes([d[34 + i], d[35 + i]]);
            Ok((
                dst,
                Wayports {
                    source: port(0),
                    destination: port(2),
                },
            ))
        }
        v => Err(v),
    }
}

#[test]
fn one_waypoint_pair_carries_more_than_24575_sessions() {
    // Unique (even source, odd destination) pairs: the old limit of one session per odd
    // destination (24,575 in the default range) no longer holds.
    const N: u16 = 30_000;
    let mut a = router_a_with(32_768, |_| {});
    assert_eq!(a.0.pairs().len(), 1);
    assert_eq!(a.0.pairs()[0].ports.mode(), WayportMode::UniquePair);
    let mut seen = HashSet::new();
    let mut destinations = HashSet::new();
    for i in 0..N {
        let (dst, p) = open_flow(&mut a, 1024 + i).unwrap_or_else(|v| panic!("flow {i}: {v:?}"));
        assert_eq!(dst, ip("10.9.0.2"));
        assert_eq!((p.source % 2, p.destination % 2), (0, 1), "{p:?}");
        assert!(seen.insert(p), "flow {i}: {p:?} already in use");
        destinations.insert(p.destination);
    }
    assert!(
        destinations.len() <= 24_575,
        "destinations repeat, pairs do not"
    );
    assert_eq!(a.0.table.len(), usize::from(N));
    assert_eq!(a.0.pairs()[0].ports.in_use(), u32::from(N));
    assert_eq!(a.0.pairs()[0].ports.exhausted_count(), 0);
    assert_eq!(a.1.counters.drops.total(), 0);
}

/// 16384-16393: 5 even and 5 odd wayports, so 25 pairs or 5 destinations per waypoint pair.
const FIVE_BY_FIVE: WayportRange = WayportRange {
    first: 16384,
    last: 16393,
};

#[test]
fn source_nat_peer_gets_unique_destinations_and_spills_to_the_next_pair() {
    let mut a = router_a_with(1024, |c| {
        c.wayport_range = FIVE_BY_FIVE;
        c.peers[0].source_nat = true;
        c.peers[0].waypoints = vec![ip("10.9.0.2"), ip("10.9.0.3")];
        // The second pair costs more: selection picks the first while it has wayports, and
        // the spill goes to the second (equal costs would spread sessions by UUID hash).
        c.peers[0].paths = ["10.9.0.2", "10.9.0.3"]
            .iter()
            .enumerate()
            .map(|(k, r)| PathAttr {
                local: ip("10.9.0.1"),
                remote: ip(r),
                cost: 10 * k as u32,
                vector: None,
                local_link: 0,
            })
            .collect();
    });
    assert!(a
        .0
        .pairs()
        .iter()
        .all(|p| p.ports.mode() == WayportMode::UniqueDestination));
    let mut per_pair: [HashSet<u16>; 2] = Default::default();
    for i in 0..10 {
        let (dst, p) = open_flow(&mut a, 1024 + i).unwrap();
        assert_eq!(p.source + 1, p.destination, "{p:?}");
        // The first pair's five destinations, then the second pair's.
        let (want, k) = if i < 5 {
            ("10.9.0.2", 0)
        } else {
            ("10.9.0.3", 1)
        };
        assert_eq!(dst, ip(want), "flow {i}");
        assert!(per_pair[k].insert(p.destination), "{p:?} twice on {want}");
    }
    assert_eq!(
        open_flow(&mut a, 2000),
        Err(Verdict::Drop(DropCause::Svr(SvrDrop::WayportsExhausted)))
    );
    assert_eq!(a.1.counters.drops.get(SvrDrop::WayportsExhausted), 1);
    let pairs = a.0.pairs();
    assert_eq!((pairs[0].ports.in_use(), pairs[1].ports.in_use()), (5, 5));
    // Expiry gives the destinations back.
    let later = Instant::from_nanos(1_000_000_000 + 120_000_000_000);
    assert_eq!(a.0.sweep(&mut 0, later, 1024), 10);
    assert_eq!(a.0.pairs()[0].ports.in_use(), 0);
    assert!(open_flow(&mut a, 2000).is_ok());
}

#[test]
fn unique_pair_mode_fills_every_pair_then_counts_exhaustion() {
    let mut a = router_a_with(1024, |c| c.wayport_range = FIVE_BY_FIVE);
    let mut seen = HashSet::new();
    for i in 0..25 {
        let (dst, p) = open_flow(&mut a, 1024 + i).unwrap();
        assert_eq!(dst, ip("10.9.0.2"));
        assert!(seen.insert(p), "{p:?} twice");
    }
    // All 25 live: every candidate is refused by the table.
    assert_eq!(
        open_flow(&mut a, 2000),
        Err(Verdict::Drop(DropCause::Svr(SvrDrop::WayportsExhausted)))
    );
    assert_eq!(a.0.pairs()[0].ports.exhausted_count(), 1);
    assert_eq!(a.0.table.len(), 25);
    // A packet of a live flow still finds its session.
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(1024, 53, b"again"));
    let mut buf = TestBuffer::new(&f);
    fwd(ingress::lan_packet(
        &a.0,
        &mut a.1,
        &mut buf,
        Instant::from_nanos(1_000_000_000),
    ));
}

// ---- issue 13: the egress against a WAN attacker -----------------------------------------

/// `wan` (IPv4 outer, UDP) with its wayports replaced by those of `like`, checksums fixed:
/// what an attacker who captured `wan` sends at the session of `like`.
fn with_wayports_of(wan: &[u8], like: &[u8]) -> Vec<u8> {
    let mut t = wan.to_vec();
    t[34..38].copy_from_slice(&like[34..38]);
    fix_ipv4_udp(&mut t);
    t
}

fn b_session(p: &Pair, wan: &[u8]) -> SessionRef {
    let k = packet::parse(wan, false).unwrap().key().unwrap();
    p.b.0.table.lookup(&k).unwrap()
}

#[test]
fn forward_metadata_moved_to_another_session_changes_nothing() {
    let mut p = Pair::new((true, false));
    // Flow 1 starts under payload-key index 2, flow 2 under index 1: a captured first packet
    // of flow 1 moved onto flow 2's wayports announces "a rekey" of flow 2.
    set_payload_index(&p.a.0, 2);
    let f1 = frame("10.1.0.2", "10.2.0.2", 17, &udp(40000, 5001, b"one"));
    let wan1 = p.lan_out(true, &f1);
    p.deliver(true, &wan1, &f1);
    set_payload_index(&p.a.0, 1);
    let f2 = frame("10.1.0.2", "10.2.0.2", 17, &udp(40001, 5001, b"two"));
    let wan2 = p.lan_out(true, &f2);
    p.deliver(true, &wan2, &f2);
    let s2 = b_session(&p, &wan2);
    let before = p.b.0.crypto(s2.id).unwrap();
    assert_eq!(before.current.index(), 1);

    let moved = with_wayports_of(&wan1, &wan2);
    let (v, _) = p.wan_into(true, &moved);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::SessionMismatch)));
    assert_eq!(p.b.1.counters.drops.get(SvrDrop::SessionMismatch), 1);
    let after = p.b.0.crypto(s2.id).unwrap();
    assert!(Arc::ptr_eq(&before, &after), "no foreign key installed");
    assert_eq!(
        p.b.1.counters.events.get(SvrEvent::PayloadRekeyInstalled),
        0
    );

    // The genuine packet again on its own session: the replay window refuses it (before any
    // key or index is touched).
    let (v, _) = p.wan_into(true, &wan1);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::Replay)));
    // Flow 2 still works.
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40001, 5001, b"more"));
    p.send(true, &f);
    assert_eq!(p.b.1.counters.drops.get(SvrDrop::BadMac), 0);
}

#[test]
fn replayed_rekey_metadata_installs_nothing() {
    let mut p = Pair::new((true, false));
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40000, 5001, b"one"));
    p.send(true, &f);
    p.send(
        false,
        &frame("10.2.0.2", "10.1.0.2", 17, &udp(5001, 40000, b"r")),
    );
    // A rekey to index 2: A's forward metadata carries the new key; B installs it.
    set_payload_index(&p.a.0, 2);
    let rk = p.lan_out(true, &f);
    p.deliver(true, &rk, &f);
    assert_eq!(
        p.b.1.counters.events.get(SvrEvent::PayloadRekeyInstalled),
        1
    );
    let s = b_session(&p, &rk);
    let installed = p.b.0.crypto(s.id).unwrap();
    // Replayed as is: refused by the window, nothing re-installed.
    let (v, _) = p.wan_into(true, &rk);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::Replay)));
    assert!(Arc::ptr_eq(&installed, &p.b.0.crypto(s.id).unwrap()));
    assert_eq!(
        p.b.1.counters.events.get(SvrEvent::PayloadRekeyInstalled),
        1
    );
}

#[test]
fn replayed_first_packet_of_a_closed_session_is_dropped() {
    let mut p = Pair::new((true, false));
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40000, 5001, b"first"));
    let wan = p.lan_out(true, &f);
    p.deliver(true, &wan, &f);
    // B's session expires (the sweeper): the captured first packet must not open it again.
    let s = b_session(&p, &wan);
    assert!(p.b.0.remove_session(&s));
    p.advance(3600);
    let (v, _) = p.wan_into(true, &wan);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::SessionReplayed)));
    assert_eq!(p.b.1.counters.drops.get(SvrDrop::SessionReplayed), 1);
    assert_eq!(p.b.0.table.len(), 0);
    // A session with a new UUID (a restarted ingress, or any new flow) is fine.
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40002, 5001, b"new"));
    p.send(true, &f);
    assert_eq!(p.b.0.table.len(), 1);
}

#[test]
fn egress_serves_only_its_services() {
    let mut p = Pair::new((true, false));
    // A believes B serves 10.3.0.0/24 (it does not), and site-b for tenant "red" (B serves it
    // for "blue" only).
    let mut cfg = p.a.0.config();
    cfg.services.push(ServiceRoute {
        name: "site-c".into(),
        tenant: "blue".into(),
        prefixes: vec![pfx("10.3.0.0/24")],
        peer: Some(0),
        policy: Default::default(),
    });
    cfg.services[1].tenant = "red".into();
    let sh = SvrShared::new(cfg).unwrap();
    sh.keys
        .install_own(MetadataKey::new(1, &KEY_A_ENC, &KEY_A_MAC));
    sh.keys
        .install_peer(0, MetadataKey::new(1, &KEY_B_ENC, &KEY_B_MAC));
    let wa = SvrWorker::new(&sh, [1; 32]);
    p.a = (sh, wa);
    for dst in ["10.3.0.2", "10.2.0.2"] {
        let wan = p.lan_out(true, &frame("10.1.0.2", dst, 17, &udp(40000, 53, b"q")));
        let (v, _) = p.wan_into(true, &wan);
        assert_eq!(
            v,
            Verdict::Drop(DropCause::Svr(SvrDrop::ServiceNotServed)),
            "{dst}"
        );
    }
    assert_eq!(p.b.1.counters.drops.get(SvrDrop::ServiceNotServed), 2);
    assert_eq!(p.b.0.table.len(), 0);
}

#[test]
fn one_replay_window_per_session_across_workers() {
    let (mut p, wan, f) = steady();
    // A second worker of router B (another RX queue or port) gets the same packet.
    let mut w2 = SvrWorker::new(&p.b.0, [7; 32]);
    p.deliver(true, &wan, &f);
    let mut buf = TestBuffer::new(&wan);
    let v = egress::wan_packet(&p.b.0, &mut w2, &mut buf, p.now);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::Replay)));
    assert_eq!(w2.counters.drops.get(SvrDrop::Replay), 1);
    // The other way round: a new packet through worker 2 first, then replayed at worker 1.
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40000, 5001, b"via w2"));
    let wan = p.lan_out(true, &f);
    let mut buf = TestBuffer::new(&wan);
    fwd(egress::wan_packet(&p.b.0, &mut w2, &mut buf, p.now));
    let (v, _) = p.wan_into(true, &wan);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::Replay)));
    // Metadata packets too: the first reverse packet of B, replayed at A through a second
    // worker of A.
    let r = frame("10.2.0.2", "10.1.0.2", 17, &udp(5001, 40000, b"reply"));
    let rw = p.lan_out(false, &r);
    p.deliver(false, &rw, &r);
    let mut a2 = SvrWorker::new(&p.a.0, [8; 32]);
    let mut buf = TestBuffer::new(&rw);
    let v = egress::wan_packet(&p.a.0, &mut a2, &mut buf, p.now);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::Replay)));
}

#[test]
fn decrypted_metadata_does_not_stay_in_the_buffer() {
    let mut p = Pair::new((true, false));
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40000, 5001, b"first"));
    let wan = p.lan_out(true, &f);
    let s =
        p.a.0
            .table
            .lookup(&packet::parse(&f, false).unwrap().key().unwrap())
            .unwrap();
    let raw = p.a.0.crypto(s.id).unwrap().current.raw;
    let mut buf = TestBuffer::new(&wan);
    fwd(egress::wan_packet(&p.b.0, &mut p.b.1, &mut buf, p.now));
    // The whole mbuf (headroom and tailroom included), not only the frame.
    assert!(!contains(&buf.buf, &raw), "payload key left in the buffer");
    // Also when the metadata is refused after it was decrypted (a service B does not serve).
    let mut cfg = p.b.0.config();
    cfg.services[1].tenant = "red".into();
    let sb = SvrShared::new(cfg).unwrap();
    sb.keys
        .install_own(MetadataKey::new(1, &KEY_B_ENC, &KEY_B_MAC));
    sb.keys
        .install_peer(0, MetadataKey::new(1, &KEY_A_ENC, &KEY_A_MAC));
    let mut wb = SvrWorker::new(&sb, [2; 32]);
    let mut buf = TestBuffer::new(&wan);
    let v = egress::wan_packet(&sb, &mut wb, &mut buf, p.now);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::ServiceNotServed)));
    assert!(!contains(&buf.buf, &raw), "payload key left after a drop");
}

#[test]
fn enable_metadata_cannot_be_retargeted_or_replayed() {
    let (mut p, wan, _) = steady();
    // Junk to unused wayports (a flipped destination wayport) draws a signed Enable Metadata.
    let mut junk = wan.clone();
    junk[14 + 20 + 3] ^= 0x02;
    fix_ipv4_udp(&mut junk);
    let (v, ctl) = p.wan_into(true, &junk);
    fwd(v);
    // Moved onto the live session's wayports: refused, A keeps its state.
    let moved = {
        let mut t = ctl.clone();
        t[34..36].copy_from_slice(&wan[36..38]);
        t[36..38].copy_from_slice(&wan[34..36]);
        fix_ipv4_udp(&mut t);
        t
    };
    let (v, _) = p.wan_into(false, &moved);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::ControlReplayed)));
    assert_eq!(p.a.1.counters.drops.get(SvrDrop::ControlReplayed), 1);
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40000, 5001, b"plain"));
    let out = p.lan_out(true, &f);
    assert!(
        !is_metadata(wan_payload(&out)),
        "A was made to send metadata"
    );
    p.deliver(true, &out, &f);

    // A genuine one (B lost the session) works once; its replay does nothing.
    let s = b_session(&p, &wan);
    assert!(p.b.0.remove_session(&s));
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40000, 5001, b"lost"));
    let lost = p.lan_out(true, &f);
    let (v, ctl) = p.wan_into(true, &lost);
    fwd(v);
    let (v, _) = p.wan_into(false, &ctl);
    assert_eq!(v, Verdict::Consumed);
    let (v, _) = p.wan_into(false, &ctl);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::ControlReplayed)));
}

#[test]
fn enable_metadata_is_rate_limited_per_peer() {
    let (mut p, wan, _) = steady();
    let mut sent = 0;
    for i in 0..300u16 {
        let mut junk = wan.clone();
        junk[36..38].copy_from_slice(&(20001 + 2 * i).to_be_bytes());
        fix_ipv4_udp(&mut junk);
        let (v, _) = p.wan_into(true, &junk);
        if matches!(v, Verdict::Forward { .. }) {
            sent += 1;
        }
    }
    // enable-metadata-rate 100: a burst of 100, then nothing within the same millisecond.
    assert_eq!(sent, 100);
    assert_eq!(
        p.b.1.counters.events.get(SvrEvent::EnableMetadataLimited),
        200
    );
    assert_eq!(p.b.1.counters.events.get(SvrEvent::EnableMetadataSent), 100);
}

/// Every (payload key, direction, sequence number) a flow's WAN packets used, to prove that
/// none is used twice (a repeat would repeat a CBC IV).
#[derive(Default)]
struct SeqLog(std::collections::HashSet<([u8; 32], u8, u64)>);

impl SeqLog {
    /// Records the WAN packet `wan` that `from_a`'s side of flow `lan_a` (A's LAN key) just
    /// sent: the key is the one the sender's session holds for it (the announced key for the
    /// ingress's metadata packets), the sequence number the trailer's.
    fn note(&mut self, p: &Pair, from_a: bool, lan_a: &crate::session::FlowKey, wan: &[u8]) {
        let (sh, key) = if from_a {
            (&p.a.0, *lan_a)
        } else {
            (&p.b.0, lan_a.reversed())
        };
        let s = sh.table.lookup(&key).expect("sender's session");
        let c = sh.crypto(s.id).unwrap();
        let k = if from_a && is_metadata(wan_payload(wan)) {
            c.announced().raw
        } else {
            c.current.raw
        };
        let n = wan.len();
        let seq = u64::from_be_bytes(wan[n - 32..n - 24].try_into().unwrap());
        assert!(
            self.0.insert((k, u8::from(!from_a), seq)),
            "(key, direction {}, seq {seq}) used twice",
            u8::from(!from_a)
        );
    }
}

/// Router B restarts mid-flow (a fresh instance without sessions, item 7 of issue 13): A's
/// next packet gets an Enable Metadata back; A refreshes the session (new payload key, fresh
/// reverse sequence space) and the flow works both ways again within that one round trip,
/// without a replay drop. Two Enable Metadata in a row (two packets in flight) refresh twice,
/// and the second key reaches B's new session as a rekey (its index differs). No (key,
/// direction, seq) is ever used twice.
#[test]
fn peer_restart_refreshes_the_session_within_one_round_trip() {
    let (ha, hb) = ("10.1.0.2", "10.2.0.2");
    let fa = |d: &[u8]| frame(ha, hb, 17, &udp(40000, 5001, d));
    let fb = |d: &[u8]| frame(hb, ha, 17, &udp(5001, 40000, d));
    let lan_a = packet::parse(&fa(b"k"), true).unwrap().key().unwrap();
    let mut p = Pair::new((true, false));
    let mut log = SeqLog::default();
    let both_ways = |p: &mut Pair, log: &mut SeqLog, n: u8| {
        for i in 0..n {
            for from_a in [true, false] {
                let f = if from_a {
                    fa(&[b'a', i])
                } else {
                    fb(&[b'b', i])
                };
                let wan = p.lan_out(from_a, &f);
                log.note(p, from_a, &lan_a, &wan);
                p.deliver(from_a, &wan, &f);
            }
        }
    };
    both_ways(&mut p, &mut log, 20);
    // A reverse packet of the old session, captured and held back.
    let captured = p.lan_out(false, &fb(b"captured"));
    let old =
        p.a.0
            .crypto(p.a.0.table.lookup(&lan_a).unwrap().id)
            .unwrap();

    // B restarts: same configuration and keys, nothing else.
    let (sb, _) = router("router-b", (true, false), 1024);
    let wb = SvrWorker::new(&sb, [9; 32]);
    p.b = (sb, wb);
    // Two of A's packets reach the new B: each is answered with Enable Metadata.
    let lost: Vec<_> = (0..2u8).map(|i| p.lan_out(true, &fa(&[b'l', i]))).collect();
    let ctl: Vec<_> = lost
        .iter()
        .map(|wan| {
            let (v, ctl) = p.wan_into(true, wan);
            fwd(v);
            assert!(is_metadata(wan_payload(&ctl)));
            ctl
        })
        .collect();
    assert_eq!(p.b.1.counters.drops.get(SvrDrop::UnknownSession), 2);
    // The first one reaches A: a fresh key, current at once, metadata again.
    let (v, _) = p.wan_into(false, &ctl[0]);
    assert_eq!(v, Verdict::Consumed);
    let s = p.a.0.table.lookup(&lan_a).unwrap();
    let k1 = p.a.0.crypto(s.id).unwrap();
    assert_ne!(k1.current.raw, old.current.raw, "a new payload key");
    assert_ne!(k1.current.index(), old.current.index(), "under a new index");
    assert!(k1.next.is_none());
    assert!(k1.previous_at(crate::session::now_millis(p.now)).is_none());
    assert_eq!(s.metadata, MetadataState::SendingForward { count: 0 });
    assert_eq!(p.a.1.counters.events.get(SvrEvent::SessionRefreshed), 1);
    // One round trip: forward metadata creates B's session, B's reply (its sequence numbers
    // start at 0 again) is accepted by A.
    let f = fa(b"again");
    let wan = p.lan_out(true, &f);
    assert!(is_metadata(wan_payload(&wan)));
    log.note(&p, true, &lan_a, &wan);
    p.deliver(true, &wan, &f);
    let f = fb(b"answer");
    let wan = p.lan_out(false, &f);
    log.note(&p, false, &lan_a, &wan);
    p.deliver(false, &wan, &f);
    // The second Enable Metadata, late: refreshed again; B's live session installs the key.
    let (v, _) = p.wan_into(false, &ctl[1]);
    assert_eq!(v, Verdict::Consumed);
    let k2 = p.a.0.crypto(s.id).unwrap();
    assert_ne!(k2.current.raw, k1.current.raw);
    assert_ne!(k2.current.index(), k1.current.index());
    both_ways(&mut p, &mut log, 20);
    let sb = p.b.0.table.lookup(&lan_a.reversed()).unwrap();
    assert_eq!(p.b.0.crypto(sb.id).unwrap().current.raw, k2.current.raw);
    assert_eq!(
        p.b.1.counters.events.get(SvrEvent::PayloadRekeyInstalled),
        1
    );
    assert_eq!(p.a.1.counters.drops.get(SvrDrop::Replay), 0);
    assert_eq!(p.a.1.counters.drops.total(), 0);
    assert_eq!(p.b.1.counters.drops.total(), 2, "only the two lost packets");
    assert_eq!(p.a.1.counters.events.get(SvrEvent::SessionRefreshed), 2);
    assert_eq!(
        p.a.0.table.get(s.id, Side::Lan).unwrap().metadata,
        MetadataState::Established
    );
    assert!(log.0.len() > 80);
    // The captured old-key packet, replayed into A now: refused (its sequence number is one
    // the new session used; were it not, its key, whose grace ended at the refresh, is).
    let (v, _) = p.wan_into(false, &captured);
    assert!(matches!(
        v,
        Verdict::Drop(DropCause::Svr(SvrDrop::Replay | SvrDrop::BadMac))
    ));
}

/// A payload rekey during a TCP transfer at the clamped MSS (issue 13 item 8): the clamp left
/// room for the rekey metadata, so full-size segments carry it both ways within the WAN MTU,
/// nothing is punted (`svr_mtu_exceeded` stays 0) and the rekey completes.
#[test]
fn full_size_tcp_segments_carry_rekey_metadata_within_the_mtu() {
    use crate::wire::tcp::flags::{ACK, SYN};
    let (ha, hb) = ("10.1.0.2", "10.2.0.2");
    let mut p = Pair::new((true, false));
    let mss = |f: &[u8]| usize::from(u16::from_be_bytes([f[14 + 20 + 22], f[14 + 20 + 23]]));
    let (_, out) = p.send(
        true,
        &frame(ha, hb, 6, &tcp(40001, 80, SYN, Some(1460), b"")),
    );
    let mss_b = mss(&out); // what host b may send
    let synack = frame(hb, ha, 6, &tcp(80, 40001, SYN | ACK, Some(1460), b""));
    let (_, out) = p.send(false, &synack);
    let mss_a = mss(&out);
    p.send(true, &frame(ha, hb, 6, &tcp(40001, 80, ACK, None, b"")));
    let full = |from_a: bool, i: u8| {
        if from_a {
            frame(ha, hb, 6, &tcp(40001, 80, ACK, None, &vec![i; mss_a]))
        } else {
            frame(hb, ha, 6, &tcp(80, 40001, ACK, None, &vec![i; mss_b]))
        }
    };
    for i in 0..2 {
        for from_a in [true, false] {
            let (wan, _) = p.send(from_a, &full(from_a, i));
            assert!(!is_metadata(wan_payload(&wan)));
        }
    }
    set_payload_index(&p.a.0, 4);
    // A's full-size segments carry the new key; B's full-size replies acknowledge it.
    for (i, from_a) in [(10, true), (11, true), (12, false), (13, true), (14, false)] {
        let f = full(from_a, i);
        let (wan, out) = p.send(from_a, &f);
        same_but_ttl(&f, &out);
        assert!(
            wan.len() - 14 <= 1500,
            "{} bytes on the WAN",
            wan.len() - 14
        );
        assert_eq!(is_metadata(wan_payload(&wan)), i <= 12, "segment {i}");
    }
    for c in [&p.a.1.counters, &p.b.1.counters] {
        assert_eq!(c.events.get(SvrEvent::MtuExceeded), 0);
        assert_eq!(c.events.get(SvrEvent::MetadataDeferred), 0);
        assert_eq!(c.drops.total(), 0);
    }
    assert_eq!(
        p.a.1.counters.events.get(SvrEvent::PayloadRekeyCompleted),
        1
    );
    let id =
        p.a.0
            .table
            .lookup(&packet::parse(&full(true, 0), true).unwrap().key().unwrap());
    assert_eq!(p.a.0.crypto(id.unwrap().id).unwrap().current.index(), 4);
}

/// A UDP datagram that fits the WAN MTU only without the rekey metadata goes as a data packet
/// under the current key (`svr_metadata_deferred`), not punted; the metadata rides on the
/// next packet that fits and the rekey completes.
#[test]
fn rekey_metadata_waits_for_a_packet_it_fits_on() {
    let (ha, hb) = ("10.1.0.2", "10.2.0.2");
    let fa = |d: &[u8]| frame(ha, hb, 17, &udp(40000, 5001, d));
    let fb = |d: &[u8]| frame(hb, ha, 17, &udp(5001, 40000, d));
    let mut p = Pair::new((true, false));
    p.send(true, &fa(b"one"));
    p.send(false, &fb(b"back"));
    set_payload_index(&p.a.0, 2);
    let big = fa(&[0x42; 1400]);
    let (wan, out) = p.send(true, &big);
    same_but_ttl(&big, &out);
    assert!(!is_metadata(wan_payload(&wan)));
    assert_eq!(p.a.1.counters.events.get(SvrEvent::MetadataDeferred), 1);
    assert_eq!(p.a.1.counters.events.get(SvrEvent::MtuExceeded), 0);
    let (wan, _) = p.send(true, &fa(b"small"));
    assert!(is_metadata(wan_payload(&wan)));
    // B's big reply defers its acknowledgement too; a small one carries it.
    let big = fb(&[0x24; 1400]);
    let (wan, out) = p.send(false, &big);
    same_but_ttl(&big, &out);
    assert!(!is_metadata(wan_payload(&wan)));
    assert_eq!(p.b.1.counters.events.get(SvrEvent::MetadataDeferred), 1);
    p.send(false, &fb(b"ack"));
    assert_eq!(
        p.a.1.counters.events.get(SvrEvent::PayloadRekeyCompleted),
        1
    );
    assert_eq!(p.a.1.counters.drops.total(), 0);
    assert_eq!(p.b.1.counters.drops.total(), 0);
}

/// Reverse metadata acknowledges a payload key by its index (TLV 47); the 32 key bytes never
/// travel back to the ingress (issue 13).
#[test]
fn reverse_metadata_carries_the_key_index_only() {
    use crate::svr::value::Context;
    let ctx = crate::svr::SessionContext::V4(Context {
        src: std::net::Ipv4Addr::new(10, 2, 0, 2),
        dst: std::net::Ipv4Addr::new(10, 1, 0, 2),
        src_port: 5001,
        dst_port: 40000,
        protocol: crate::wire::IpProtocol::Udp,
    });
    let r = ingress::reverse_metadata(1, ctx, "blue", "router-b", "10.9.0.2", 9);
    assert_eq!(r.payload_key_index, Some(9));
    assert!(r.payload_key.is_none());
    // On the wire: A learns the index from B's reverse metadata during a rekey (the rekey
    // tests), and B's reverse packets never hold A's key bytes, encrypted or not.
    let mut p = Pair::new((true, false));
    p.send(
        true,
        &frame("10.1.0.2", "10.2.0.2", 17, &udp(40000, 5001, b"q")),
    );
    let (wan, _) = p.send(
        false,
        &frame("10.2.0.2", "10.1.0.2", 17, &udp(5001, 40000, b"r")),
    );
    assert!(is_metadata(wan_payload(&wan)));
    let key = crate::session::FlowKey::new(ip("10.1.0.2"), ip("10.2.0.2"), 17, 40000, 5001);
    let s = p.a.0.table.lookup(&key.unwrap()).unwrap();
    let raw = p.a.0.crypto(s.id).unwrap().current.raw;
    let md = wan_payload(&wan);
    let hl = usize::from(u16::from_be_bytes([md[8], md[9]]) & 0x0fff);
    let pl = usize::from(u16::from_be_bytes([md[10], md[11]]));
    let mut sealed = md[..hl + pl].to_vec();
    let own = MetadataKey::new(1, &KEY_A_ENC, &KEY_A_MAC);
    let opened = crate::svr::open_metadata(&own, &mut sealed).unwrap();
    assert_eq!(opened.repr.payload_key_index, Some(s.payload_key_index));
    assert!(opened.repr.payload_key.is_none());
    assert!(!contains(&sealed, &raw), "key bytes in reverse metadata");
}

// ---- SLA path selection for new sessions (docs/multipath.md §4) -----------------------------

use svr_linkq::{Metrics, PathIndex, VectorId, VectorPriority};

/// Router A with two IPv4 waypoint pairs to B (10.9.0.1 → 10.9.0.2 labelled `mpls` (0),
/// 10.9.0.1 → 10.9.0.3 labelled `inet` (1)) and `policy` on site-b.
fn two_paths(policy: Policy) -> (SvrShared, SvrWorker) {
    router_a_with(1024, |c| {
        c.peers[0].waypoints = vec![ip("10.9.0.2"), ip("10.9.0.3")];
        c.peers[0].paths = ["10.9.0.2", "10.9.0.3"]
            .iter()
            .enumerate()
            .map(|(k, r)| PathAttr {
                local: ip("10.9.0.1"),
                remote: ip(r),
                cost: 0,
                vector: Some(VectorId(k as u16)),
                local_link: k as u8,
            })
            .collect();
        c.services[1].policy = policy;
    })
}

const MPLS: VectorId = VectorId(0);
const INET: VectorId = VectorId(1);

/// The WAN destinations of `n` new flows from source port `from` on.
fn destinations(r: &mut (SvrShared, SvrWorker), from: u16, n: u16) -> Vec<Result<IpAddr, Verdict>> {
    (from..from + n)
        .map(|sport| open_flow(r, sport).map(|(d, _)| d))
        .collect()
}

#[test]
fn new_sessions_follow_the_policys_vectors() {
    // Equal costs: hunt spreads sessions over both paths by UUID hash.
    let mut r = two_paths(Policy::default());
    let d = destinations(&mut r, 1000, 64);
    let on =
        |d: &[Result<IpAddr, Verdict>], wp: &str| d.iter().filter(|x| **x == Ok(ip(wp))).count();
    assert_eq!(on(&d, "10.9.0.2") + on(&d, "10.9.0.3"), 64);
    assert!(
        on(&d, "10.9.0.2") > 8 && on(&d, "10.9.0.3") > 8,
        "spread: {d:?}"
    );

    // `mpls` costs 100: every new session takes `inet`.
    let mut p = Policy::default();
    p.set_vector(MPLS, VectorPriority::Priority(100)).unwrap();
    let mut r = two_paths(p);
    assert!(destinations(&mut r, 1000, 32)
        .iter()
        .all(|d| *d == Ok(ip("10.9.0.3"))));

    // `inet` never: every new session takes `mpls`; without `mpls` in service, none starts.
    let mut p = Policy::default();
    p.set_vector(INET, VectorPriority::Never).unwrap();
    let mut r = two_paths(p);
    assert!(destinations(&mut r, 1000, 32)
        .iter()
        .all(|d| *d == Ok(ip("10.9.0.2"))));
    r.0.keys.gate_paths(2);
    r.0.keys.set_path_in_service(1, true);
    assert_eq!(
        open_flow(&mut r, 2000),
        Err(Verdict::Drop(DropCause::Svr(SvrDrop::PathOutOfService)))
    );
    assert_eq!(r.1.counters.drops.get(SvrDrop::PathOutOfService), 1);
    assert_eq!(r.1.counters.drops.get(SvrDrop::NoSlaPath), 0);
}

fn sla_policy(best_effort: bool) -> Policy {
    Policy {
        path_quality_filter: true,
        max_loss_percent: 1.0,
        max_latency_ms: 150,
        best_effort,
        ..Policy::default()
    }
}

#[test]
fn sla_filter_picks_the_compliant_path_and_counts_sla_drops() {
    let mut r = two_paths(sla_policy(false));
    // Not measured yet: no path meets the SLA, and the policy is not best effort.
    assert_eq!(
        open_flow(&mut r, 1000),
        Err(Verdict::Drop(DropCause::Svr(SvrDrop::NoSlaPath)))
    );
    assert_eq!(r.1.counters.drops.get(SvrDrop::NoSlaPath), 1);
    assert_eq!(r.0.table.len(), 0, "no session, no wayports");
    assert_eq!(
        r.0.pairs()[0].ports.in_use() + r.0.pairs()[1].ports.in_use(),
        0
    );
    // 10 % loss on mpls, a clean inet: voice takes inet.
    r.0.keys
        .publish_path_metrics(0, PathIndex(0), Some(Metrics::new(20.0, 2.0, 10.0)));
    r.0.keys
        .publish_path_metrics(0, PathIndex(1), Some(Metrics::new(30.0, 2.0, 0.0)));
    assert!(destinations(&mut r, 1001, 16)
        .iter()
        .all(|d| *d == Ok(ip("10.9.0.3"))));
    // inet gains 100 ms of latency, mpls recovers: new sessions take mpls.
    r.0.keys
        .publish_path_metrics(0, PathIndex(0), Some(Metrics::new(20.0, 2.0, 0.0)));
    r.0.keys
        .publish_path_metrics(0, PathIndex(1), Some(Metrics::new(180.0, 2.0, 0.0)));
    assert!(destinations(&mut r, 1100, 16)
        .iter()
        .all(|d| *d == Ok(ip("10.9.0.2"))));
    // Both violate: dropped and counted; best effort would have used either.
    r.0.keys
        .publish_path_metrics(0, PathIndex(0), Some(Metrics::new(200.0, 2.0, 0.0)));
    assert!(destinations(&mut r, 1200, 4)
        .iter()
        .all(|d| *d == Err(Verdict::Drop(DropCause::Svr(SvrDrop::NoSlaPath)))));
    assert_eq!(r.1.counters.drops.get(SvrDrop::NoSlaPath), 5);
    let mut be = two_paths(sla_policy(true));
    be.0.keys
        .publish_path_metrics(0, PathIndex(0), Some(Metrics::new(200.0, 2.0, 0.0)));
    assert!(destinations(&mut be, 1000, 8).iter().all(|d| d.is_ok()));
}

#[test]
fn spill_stays_among_the_paths_the_policy_allows() {
    let mut p = Policy::default();
    p.set_vector(INET, VectorPriority::Never).unwrap();
    // Five destinations per pair: `inet` is never used, so mpls's wayports are all there is.
    let mut cfg = two_paths(p).0.config();
    cfg.wayport_range = FIVE_BY_FIVE;
    cfg.peers[0].source_nat = true;
    let sh = SvrShared::new(cfg).unwrap();
    sh.keys
        .install_own(MetadataKey::new(1, &KEY_A_ENC, &KEY_A_MAC));
    sh.keys
        .install_peer(0, MetadataKey::new(1, &KEY_B_ENC, &KEY_B_MAC));
    let w = SvrWorker::new(&sh, [1; 32]);
    let mut r = (sh, w);
    assert!(destinations(&mut r, 1000, 5)
        .iter()
        .all(|d| *d == Ok(ip("10.9.0.2"))));
    assert_eq!(
        open_flow(&mut r, 2000),
        Err(Verdict::Drop(DropCause::Svr(SvrDrop::WayportsExhausted)))
    );
    assert_eq!(
        r.0.pairs()[1].ports.in_use(),
        0,
        "no spill onto a `never` path"
    );
}

#[test]
fn established_sessions_never_reselect() {
    // By construction: only `ingress::create` (a session-table miss) calls the selector; a
    // live session's packets take the waypoints of its table entry. Here: a session on inet,
    // then metrics that make the selector refuse every path; the session's packets still
    // leave on inet, while a new session is dropped.
    let mut r = two_paths(sla_policy(false));
    r.0.keys
        .publish_path_metrics(0, PathIndex(1), Some(Metrics::new(30.0, 2.0, 0.0)));
    assert_eq!(open_flow(&mut r, 1000).map(|x| x.0), Ok(ip("10.9.0.3")));
    r.0.keys
        .publish_path_metrics(0, PathIndex(1), Some(Metrics::new(300.0, 2.0, 50.0)));
    assert_eq!(
        open_flow(&mut r, 1001),
        Err(Verdict::Drop(DropCause::Svr(SvrDrop::NoSlaPath)))
    );
    for _ in 0..100 {
        assert_eq!(open_flow(&mut r, 1000).map(|x| x.0), Ok(ip("10.9.0.3")));
    }
    assert_eq!(r.1.counters.drops.get(SvrDrop::NoSlaPath), 1);
    assert_eq!(r.1.counters.events.get(SvrEvent::IngressSession), 1);
}

// ---- sessions that move (docs/multipath.md §6, failover) ------------------------------------

/// A and B joined by two waypoint pairs: A 10.9.0.1 → B 10.9.0.2 (pair 0, cost 0) and →
/// 10.9.0.3 (pair 1, cost 10), so sessions start on pair 0. `resiliency` on A's site-b.
fn two_pair_routers(resiliency: svr_linkq::SessionResiliency) -> Pair {
    let mut p = Pair::new((true, false));
    let b_wps = vec![ip("10.9.0.2"), ip("10.9.0.3")];
    let mut ca = p.a.0.config();
    ca.peers[0].waypoints = b_wps.clone();
    ca.peers[0].paths = b_wps
        .iter()
        .enumerate()
        .map(|(k, &remote)| PathAttr {
            local: ip("10.9.0.1"),
            remote,
            cost: 10 * k as u32,
            vector: None,
            local_link: 0,
        })
        .collect();
    ca.services[1].policy.session_resiliency = resiliency;
    let mut cb = p.b.0.config();
    cb.local_waypoints = b_wps;
    let make = |cfg: SvrConfig, own: MetadataKey, peer: MetadataKey, seed: u8| {
        let sh = SvrShared::new(cfg).unwrap();
        sh.keys.install_own(own);
        sh.keys.install_peer(0, peer);
        let w = SvrWorker::new(&sh, [seed; 32]);
        (sh, w)
    };
    let ka = || MetadataKey::new(1, &KEY_A_ENC, &KEY_A_MAC);
    let kb = || MetadataKey::new(1, &KEY_B_ENC, &KEY_B_MAC);
    p.a = make(ca, ka(), kb(), 1);
    p.b = make(cb, kb(), ka(), 2);
    p
}

/// WAN destination address of a WAN frame (IPv4).
fn wan_dst(f: &[u8]) -> IpAddr {
    packet::parse(f, false).unwrap().dst
}

/// (session, UUID, current payload key) of the session a LAN key names on router `r`.
fn session_state(
    r: &SvrShared,
    lan: &crate::session::FlowKey,
) -> (SessionId, [u8; 16], Arc<SessionKey>) {
    let s = r.table.lookup(lan).expect("session");
    let c = r.crypto(s.id).expect("keys");
    (s.id, r.table.uuid(s.id).unwrap(), Arc::clone(&c.current))
}

fn failover_mid_flow(tcp_flow: bool) {
    use crate::wire::tcp::flags::{ACK, SYN};
    let mut p = two_pair_routers(svr_linkq::SessionResiliency::Failover);
    let (ha, hb) = ("10.1.0.2", "10.2.0.2");
    let fwd_pkt = |flags: u16, data: &[u8]| {
        if tcp_flow {
            frame(ha, hb, 6, &tcp(40001, 80, flags, None, data))
        } else {
            frame(ha, hb, 17, &udp(40001, 80, data))
        }
    };
    let rev_pkt = |flags: u16, data: &[u8]| {
        if tcp_flow {
            frame(hb, ha, 6, &tcp(80, 40001, flags, None, data))
        } else {
            frame(hb, ha, 17, &udp(80, 40001, data))
        }
    };
    // Established on pair 0.
    let (wan, _) = p.send(true, &fwd_pkt(SYN, b""));
    assert_eq!(wan_dst(&wan), ip("10.9.0.2"));
    let (wan, _) = p.send(false, &rev_pkt(SYN | ACK, b""));
    assert_eq!(wan_dst(&wan), ip("10.9.0.1"));
    for i in 0..3u8 {
        let f = fwd_pkt(ACK, &[i; 40]);
        let (wan, out) = p.send(true, &f);
        same_l3(&f, &out, false);
        assert_eq!(wan_dst(&wan), ip("10.9.0.2"));
    }
    let lan_a =
        crate::session::FlowKey::new(ip(ha), ip(hb), if tcp_flow { 6 } else { 17 }, 40001, 80)
            .unwrap();
    let lan_b = lan_a.reversed();
    let (id_a, uuid_a, key_a) = session_state(&p.a.0, &lan_a);
    let (id_b, uuid_b, key_b) = session_state(&p.b.0, &lan_b);
    assert_eq!(uuid_a, uuid_b);
    let old_wan_b = p.b.0.table.lookup(&lan_b).unwrap().wan_key;
    // Sessions per path (the report's `sessions-ingress` / `sessions-egress`): by the pair
    // of each side's WAN key.
    let on_pair = |sh: &SvrShared, local: &str| {
        let i = sh
            .pairs()
            .iter()
            .position(|q| q.local == ip(local))
            .unwrap();
        sh.sessions_per_pair()[i]
    };
    assert_eq!(on_pair(&p.a.0, "10.9.0.1"), (1, 0));
    assert_eq!(on_pair(&p.b.0, "10.9.0.2"), (0, 1));

    // Pair 0 leaves service at A (BFD down): the next packet moves the session to pair 1.
    p.a.0.keys.gate_paths(2);
    p.a.0.keys.set_path_in_service(1, true);
    for i in 0..3u8 {
        let f = fwd_pkt(ACK, &[0x40 + i; 40]);
        let (wan, out) = p.send(true, &f);
        same_l3(&f, &out, false);
        assert_eq!(wan_dst(&wan), ip("10.9.0.3"), "packet {i} after the move");
        // Forward metadata again (same UUID) until B answers on the new pair.
        assert!(is_metadata(wan_payload(&wan)));
    }
    let f = rev_pkt(ACK, b"reply on the new pair");
    let (wan, out) = p.send(false, &f);
    same_l3(&f, &out, false);
    assert_eq!(
        packet::parse(&wan, false).unwrap().src,
        ip("10.9.0.3"),
        "B answers from the new waypoint"
    );
    assert!(
        is_metadata(wan_payload(&wan)),
        "reverse metadata on the new pair"
    );
    let f = fwd_pkt(ACK, b"settled");
    let (wan, out) = p.send(true, &f);
    same_l3(&f, &out, false);
    assert!(!is_metadata(wan_payload(&wan)), "forward metadata stops");

    // Same session on both sides: id, UUID and payload key unchanged.
    let (id_a2, uuid_a2, key_a2) = session_state(&p.a.0, &lan_a);
    let (id_b2, uuid_b2, key_b2) = session_state(&p.b.0, &lan_b);
    assert_eq!((id_a2, uuid_a2), (id_a, uuid_a));
    assert_eq!((id_b2, uuid_b2), (id_b, uuid_b));
    assert!(Arc::ptr_eq(&key_a, &key_a2) && Arc::ptr_eq(&key_b, &key_b2));
    // The old binding is forgotten; A's old wayports are free.
    assert!(p.b.0.table.lookup(&old_wan_b).is_none());
    assert_eq!(p.a.0.pairs()[0].ports.in_use(), 0);
    assert_eq!(p.a.0.pairs()[1].ports.in_use(), 1);
    assert_eq!(p.a.0.table.len(), 1);
    assert_eq!(p.b.0.table.len(), 1);
    assert_eq!(p.a.1.counters.events.get(SvrEvent::SessionMoved), 1);
    assert_eq!(p.b.1.counters.events.get(SvrEvent::SessionMoved), 1);
    assert_eq!(
        p.a.1.move_events.as_slice(),
        &[SessionMoveEvent {
            uuid: uuid_a,
            peer: 0,
            from_pair: 0,
            to_pair: 1,
            reason: MoveCause::PathDown,
        }]
    );
    assert_eq!(p.b.1.move_events[0].reason, MoveCause::PeerMoved);
    assert_eq!(MoveCause::PathDown.to_string(), "path-down");
    assert_eq!(on_pair(&p.a.0, "10.9.0.1"), (0, 0));
    assert_eq!(on_pair(&p.b.0, "10.9.0.2"), (0, 0));
    assert_eq!(
        p.a.0.sessions_per_pair().iter().map(|c| c.0).sum::<u32>(),
        1
    );
    assert_eq!(
        p.b.0.sessions_per_pair().iter().map(|c| c.1).sum::<u32>(),
        1
    );
    assert_eq!(p.a.1.counters.drops.total(), 0);
    assert_eq!(p.b.1.counters.drops.total(), 0);
}

#[test]
fn failover_moves_a_udp_session_to_the_other_pair() {
    failover_mid_flow(false);
}

#[test]
fn failover_moves_a_tcp_session_to_the_other_pair() {
    failover_mid_flow(true);
}

#[test]
fn resiliency_none_drops_when_its_path_leaves_service() {
    let mut p = two_pair_routers(svr_linkq::SessionResiliency::None);
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40001, 80, b"x"));
    let (wan, _) = p.send(true, &f);
    assert_eq!(wan_dst(&wan), ip("10.9.0.2"));
    p.a.0.keys.gate_paths(2);
    p.a.0.keys.set_path_in_service(1, true);
    let mut buf = TestBuffer::new(&f);
    assert_eq!(
        ingress::lan_packet(&p.a.0, &mut p.a.1, &mut buf, p.now),
        Verdict::Drop(DropCause::Svr(SvrDrop::PathOutOfService))
    );
    assert_eq!(p.a.1.counters.drops.get(SvrDrop::PathOutOfService), 1);
    assert_eq!(p.a.1.counters.events.get(SvrEvent::SessionMoved), 0);
    // A new session takes the pair in service.
    let f = frame("10.1.0.2", "10.2.0.2", 17, &udp(40002, 80, b"y"));
    let (wan, _) = p.send(true, &f);
    assert_eq!(wan_dst(&wan), ip("10.9.0.3"));
}

/// Every path to B leaves service (B restarts and loses its sessions) and comes back; A's
/// payload-key rotation falls due meanwhile. A refreshes the live session on its next packet
/// (a fresh key, current at once, in forward metadata), so B re-creates it with the key A's
/// data packets use, not with a rekey's pending one that A would not use for another 20 s.
#[test]
fn sessions_refresh_after_every_path_to_the_peer_left_service() {
    let (ha, hb) = ("10.1.0.2", "10.2.0.2");
    let fa = |d: &[u8]| frame(ha, hb, 17, &udp(40000, 5001, d));
    let fb = |d: &[u8]| frame(hb, ha, 17, &udp(5001, 40000, d));
    let mut p = Pair::new((true, false));
    let pairs = p.a.0.pairs().len();
    p.a.0.keys.gate_paths(pairs);
    for i in 0..pairs {
        p.a.0.keys.set_path_in_service(i, true);
    }
    p.send(true, &fa(b"one"));
    p.send(false, &fb(b"back"));
    p.send(true, &fa(b"two"));
    let epoch = p.a.0.keys.load().peer_epoch(0);
    for i in 0..pairs {
        p.a.0.keys.set_path_in_service(i, false);
    }
    assert_eq!(p.a.0.keys.load().peer_epoch(0), epoch.wrapping_add(1));
    // B restarts; A's paths come back; a payload-key rotation is due.
    let (sb, _) = router("router-b", (true, false), 1024);
    let wb = SvrWorker::new(&sb, [9; 32]);
    p.b = (sb, wb);
    for i in 0..pairs {
        p.a.0.keys.set_path_in_service(i, true);
    }
    set_payload_index(&p.a.0, 3);
    for i in 0..5u8 {
        let f = fa(&[b'x', i]);
        let (wan, out) = p.send(true, &f);
        same_but_ttl(&f, &out);
        assert!(
            is_metadata(wan_payload(&wan)),
            "packet {i} carries the fresh key"
        );
    }
    p.send(false, &fb(b"answer"));
    for i in 0..20u8 {
        let f = fa(&[b'y', i]);
        let (_, out) = p.send(true, &f);
        same_but_ttl(&f, &out);
    }
    assert_eq!(p.a.1.counters.events.get(SvrEvent::SessionRefreshed), 1);
    assert_eq!(p.b.1.counters.drops.total(), 0);
    assert_eq!(p.a.1.counters.drops.total(), 0);
}

// ---- revertible-failover and SLA moves (docs/multipath.md §6) -------------------------------

/// A UDP flow host-a 10.1.0.2:40001 → host-b 10.2.0.2:80 and its reply.
fn flow_a(d: &[u8]) -> Vec<u8> {
    frame("10.1.0.2", "10.2.0.2", 17, &udp(40001, 80, d))
}

fn flow_b(d: &[u8]) -> Vec<u8> {
    frame("10.2.0.2", "10.1.0.2", 17, &udp(80, 40001, d))
}

impl Pair {
    /// One packet each way on the flow; returns the WAN destination A sent to and the WAN
    /// source B answered from. Both must be delivered unchanged.
    fn exchange(&mut self, tag: u8) -> (IpAddr, IpAddr) {
        let f = flow_a(&[tag; 24]);
        let (wan, out) = self.send(true, &f);
        same_but_ttl(&f, &out);
        let r = flow_b(&[tag; 12]);
        let (back, out) = self.send(false, &r);
        same_but_ttl(&r, &out);
        (wan_dst(&wan), packet::parse(&back, false).unwrap().src)
    }

    fn reasons_a(&self) -> Vec<MoveCause> {
        self.a.1.move_events.iter().map(|e| e.reason).collect()
    }
}

/// Two pairs gated with both in service at `now`; the flow established on pair 0.
fn on_pair_0(resiliency: svr_linkq::SessionResiliency) -> Pair {
    let mut p = two_pair_routers(resiliency);
    p.a.0.keys.gate_paths(2);
    p.a.0.keys.set_path_in_service_at(0, true, p.now);
    p.a.0.keys.set_path_in_service_at(1, true, p.now);
    assert_eq!(p.exchange(0), (ip("10.9.0.2"), ip("10.9.0.2")));
    p
}

/// Pair 0 goes down (the session fails over to pair 1) and comes back at the returned time.
fn fail_over_and_recover(p: &mut Pair) -> Instant {
    p.a.0.keys.set_path_in_service_at(0, false, p.now);
    assert_eq!(p.exchange(1), (ip("10.9.0.3"), ip("10.9.0.3")));
    p.advance(1);
    p.a.0.keys.set_path_in_service_at(0, true, p.now);
    p.now
}

#[test]
fn revertible_failover_returns_after_a_full_hold_down() {
    let mut p = on_pair_0(svr_linkq::SessionResiliency::RevertibleFailover);
    let (lan_a, lan_b) = {
        let k =
            crate::session::FlowKey::new(ip("10.1.0.2"), ip("10.2.0.2"), 17, 40001, 80).unwrap();
        (k, k.reversed())
    };
    let (id_a, uuid, key_a) = session_state(&p.a.0, &lan_a);
    let mut up = fail_over_and_recover(&mut p);
    // Within the hold-down (5 s) the session stays on pair 1; a flap of pair 0 at +2 s
    // restarts the hold-down.
    for s in 1..=6u64 {
        p.advance(1);
        if s == 2 {
            p.a.0.keys.set_path_in_service_at(0, false, p.now);
            p.a.0.keys.set_path_in_service_at(0, true, p.now);
            up = p.now;
        }
        let since = (p.now.as_nanos() - up.as_nanos()) / 1_000_000;
        assert!(since < REVERT_HOLD_DOWN_MS);
        assert_eq!(
            p.exchange(10 + s as u8).0,
            ip("10.9.0.3"),
            "{since} ms after up"
        );
    }
    // No packet for a while; the first one after the hold-down goes back, with forward
    // metadata (same UUID) on pair 0, and B answers there.
    p.advance(30);
    let f = flow_a(b"back home");
    let (wan, out) = p.send(true, &f);
    same_but_ttl(&f, &out);
    assert_eq!(wan_dst(&wan), ip("10.9.0.2"));
    assert!(is_metadata(wan_payload(&wan)));
    assert_eq!(p.exchange(40), (ip("10.9.0.2"), ip("10.9.0.2")));
    let (id_a2, uuid2, key_a2) = session_state(&p.a.0, &lan_a);
    assert_eq!((id_a2, uuid2), (id_a, uuid));
    assert!(Arc::ptr_eq(&key_a, &key_a2));
    assert_eq!(session_state(&p.b.0, &lan_b).1, uuid);
    assert_eq!(p.reasons_a(), [MoveCause::PathDown, MoveCause::Revert]);
    assert_eq!(p.a.1.move_events[1].from_pair, 1);
    assert_eq!(p.a.1.move_events[1].to_pair, 0);
    assert_eq!(p.b.1.counters.events.get(SvrEvent::SessionMoved), 2);
    assert_eq!(p.a.0.pairs()[0].ports.in_use(), 1);
    assert_eq!(p.a.0.pairs()[1].ports.in_use(), 0);
    assert_eq!(p.a.1.counters.drops.total(), 0);
    assert_eq!(p.b.1.counters.drops.total(), 0);
    // Settled: no more moves.
    for i in 0..5 {
        p.advance(10);
        assert_eq!(p.exchange(50 + i).0, ip("10.9.0.2"));
    }
    assert_eq!(p.a.1.counters.events.get(SvrEvent::SessionMoved), 2);
}

#[test]
fn revert_is_due_without_a_packet_in_the_hold_down() {
    // The first packet after pair 0 returns arms the revert; the next one after the
    // hold-down carries it out, however long the flow was idle.
    let mut p = on_pair_0(svr_linkq::SessionResiliency::RevertibleFailover);
    fail_over_and_recover(&mut p);
    assert_eq!(p.exchange(2).0, ip("10.9.0.3"));
    p.advance(5);
    assert_eq!(p.exchange(3), (ip("10.9.0.2"), ip("10.9.0.2")));
    assert_eq!(p.reasons_a(), [MoveCause::PathDown, MoveCause::Revert]);
}

#[test]
fn failover_stays_after_the_path_recovers() {
    let mut p = on_pair_0(svr_linkq::SessionResiliency::Failover);
    fail_over_and_recover(&mut p);
    for i in 0..10 {
        p.advance(10);
        assert_eq!(p.exchange(20 + i), (ip("10.9.0.3"), ip("10.9.0.3")));
    }
    assert_eq!(p.reasons_a(), [MoveCause::PathDown]);
    assert_eq!(
        p.a.1.counters.drops.total() + p.b.1.counters.drops.total(),
        0
    );
}

/// [`on_pair_0`] with an SLA policy (max-loss 1 %, max-latency 150 ms) and both paths
/// measured compliant.
fn sla_on_pair_0(resiliency: svr_linkq::SessionResiliency) -> Pair {
    let mut p = two_pair_routers(resiliency);
    edit_services(&p.a.0, |s| {
        s[1].policy = Policy {
            session_resiliency: resiliency,
            ..sla_policy(true)
        }
    });
    let good = Some(Metrics::new(20.0, 1.0, 0.0));
    p.a.0.keys.publish_path_metrics(0, PathIndex(0), good);
    p.a.0.keys.publish_path_metrics(0, PathIndex(1), good);
    assert_eq!(p.exchange(0), (ip("10.9.0.2"), ip("10.9.0.2")));
    p
}

fn lossy() -> Option<Metrics> {
    Some(Metrics::new(20.0, 1.0, 10.0))
}

#[test]
fn sla_violation_moves_a_failover_session_to_a_compliant_path_and_it_stays() {
    let mut p = sla_on_pair_0(svr_linkq::SessionResiliency::Failover);
    // The slow path publishes pair 0's loss after its hold-down: the next packet moves.
    p.a.0.keys.publish_path_metrics(0, PathIndex(0), lossy());
    assert_eq!(p.exchange(1), (ip("10.9.0.3"), ip("10.9.0.3")));
    assert_eq!(p.reasons_a(), [MoveCause::SlaViolation]);
    // Pair 0 compliant again: `failover` stays.
    p.a.0
        .keys
        .publish_path_metrics(0, PathIndex(0), Some(Metrics::new(20.0, 1.0, 0.0)));
    for i in 0..5 {
        p.advance(10);
        assert_eq!(p.exchange(10 + i).0, ip("10.9.0.3"));
    }
    // Pair 1 violates too: no move from one violating path to another.
    p.a.0.keys.publish_path_metrics(0, PathIndex(0), lossy());
    p.a.0.keys.publish_path_metrics(0, PathIndex(1), lossy());
    assert_eq!(p.exchange(20).0, ip("10.9.0.3"));
    assert_eq!(p.a.1.counters.events.get(SvrEvent::SessionMoved), 1);
    assert_eq!(
        p.a.1.counters.drops.total() + p.b.1.counters.drops.total(),
        0
    );
}

#[test]
fn sla_violation_then_revert_when_the_preferred_path_complies_again() {
    let mut p = sla_on_pair_0(svr_linkq::SessionResiliency::RevertibleFailover);
    p.a.0.keys.publish_path_metrics(0, PathIndex(0), lossy());
    assert_eq!(p.exchange(1).0, ip("10.9.0.3"));
    // Still lossy (a metrics update of the other path): stays.
    p.a.0
        .keys
        .publish_path_metrics(0, PathIndex(1), Some(Metrics::new(25.0, 1.0, 0.0)));
    assert_eq!(p.exchange(2).0, ip("10.9.0.3"));
    // Compliance held down by the slow path, then published; pair 0 has been in service
    // all along, so the session returns on its next packet.
    p.a.0
        .keys
        .publish_path_metrics(0, PathIndex(0), Some(Metrics::new(20.0, 1.0, 0.0)));
    assert_eq!(p.exchange(3), (ip("10.9.0.2"), ip("10.9.0.2")));
    assert_eq!(p.reasons_a(), [MoveCause::SlaViolation, MoveCause::Revert]);
    assert_eq!(
        p.a.1.counters.drops.total() + p.b.1.counters.drops.total(),
        0
    );
}

#[test]
fn sla_violation_does_not_move_without_resiliency() {
    let mut p = sla_on_pair_0(svr_linkq::SessionResiliency::None);
    p.a.0.keys.publish_path_metrics(0, PathIndex(0), lossy());
    for i in 0..3 {
        assert_eq!(p.exchange(1 + i).0, ip("10.9.0.2"));
    }
    assert!(p.a.1.move_events.is_empty());
}

/// The egress tells a duplication copy from a replay by the session's mode: the same sequence
/// number a second time is `svr_duplicate_dropped` on a session of a `packet-duplication`
/// service, `svr_replay` on any other. (The copy here is the same frame; the ingress's copy on
/// a second pair is in `duplication_sends_each_packet_on_two_pairs_with_one_sequence_number`.)
#[test]
fn second_copy_counts_as_duplicate_only_in_duplication_mode() {
    for dup in [false, true] {
        let mut p = Pair::new((true, false));
        if dup {
            // B's session table has room for copies (a spare service duplicates), so a
            // reload may turn duplication on for site-b.
            let mut cb = p.b.0.config();
            let mut spare = cb.services[0].clone();
            spare.prefixes = vec![pfx("10.99.0.0/24")];
            spare.policy.session_resiliency = svr_linkq::SessionResiliency::PacketDuplication;
            cb.services.push(spare);
            let sb = SvrShared::new(cb).unwrap();
            sb.keys
                .install_own(MetadataKey::new(1, &KEY_B_ENC, &KEY_B_MAC));
            sb.keys
                .install_peer(0, MetadataKey::new(1, &KEY_A_ENC, &KEY_A_MAC));
            let wb = SvrWorker::new(&sb, [2; 32]);
            p.b = (sb, wb);
        }
        let (mut p, wan, f) = steady_on(p);
        if dup {
            edit_services(&p.b.0, |s| {
                s[1].policy.session_resiliency = svr_linkq::SessionResiliency::PacketDuplication
            });
        }
        p.deliver(true, &wan, &f);
        let (v, _) = p.wan_into(true, &wan);
        let want = if dup {
            SvrDrop::DuplicateDropped
        } else {
            SvrDrop::Replay
        };
        assert_eq!(v, Verdict::Drop(DropCause::Svr(want)));
        assert_eq!(p.b.1.counters.drops.get(want), 1);
        assert_eq!(p.b.1.counters.drops.total(), 1);
    }
}

/// A service's prefix inside another's: the longest match wins, whatever the order.
#[test]
fn services_match_by_longest_prefix() {
    let (sh, _) = router("router-a", (true, false), 16);
    let mut cfg = sh.config();
    cfg.services.push(ServiceRoute {
        name: "voice".into(),
        tenant: "blue".into(),
        prefixes: vec![pfx("10.2.0.30/32")],
        peer: Some(0),
        policy: Default::default(),
    });
    let sh = SvrShared::new(cfg).unwrap();
    let name = |d: &str| {
        sh.services()
            .service_for(ip(d))
            .map(|(_, s)| s.name.clone())
    };
    assert_eq!(name("10.2.0.30").as_deref(), Some("voice"));
    assert_eq!(name("10.2.0.31").as_deref(), Some("site-b"));
    assert_eq!(name("10.9.9.9"), None);
}

// ---- packet-duplication (docs/multipath.md §6, §6.1 "Duplicates") ----------------------------

/// [`two_pair_routers`] with `packet-duplication` on site-b at both routers (B counts the
/// second copies as duplicates and binds their pair only in that mode).
fn duplication_routers() -> Pair {
    let mut p = two_pair_routers(svr_linkq::SessionResiliency::PacketDuplication);
    let mut cb = p.b.0.config();
    cb.services[1].policy.session_resiliency = svr_linkq::SessionResiliency::PacketDuplication;
    let sb = SvrShared::new(cb).unwrap();
    sb.keys
        .install_own(MetadataKey::new(1, &KEY_B_ENC, &KEY_B_MAC));
    sb.keys
        .install_peer(0, MetadataKey::new(1, &KEY_A_ENC, &KEY_A_MAC));
    let wb = SvrWorker::new(&sb, [2; 32]);
    p.b = (sb, wb);
    assert!(p.a.0.table.has_duplicate_keys() && p.b.0.table.has_duplicate_keys());
    p
}

/// The sequence number in a WAN frame's trailer.
fn wan_seq(f: &[u8]) -> u64 {
    let h = packet::parse(f, false).unwrap();
    let t = h.end() - 24 - 8;
    u64::from_be_bytes(f[t..t + 8].try_into().unwrap())
}

impl Pair {
    /// `f` from host-a through A: the WAN frames A sends (the original, and its copy made as
    /// svrd's duplicate stage makes it: a byte copy of the finished frame, then
    /// `finish_copy`).
    fn send_dup(&mut self, f: &[u8]) -> Vec<Vec<u8>> {
        self.now = Instant::from_nanos(self.now.as_nanos() + 1_000_000);
        let (sa, wa) = (&self.a.0, &mut self.a.1);
        let mut buf = TestBuffer::new(f);
        match ingress::lan_packet(sa, wa, &mut buf, self.now) {
            Verdict::Forward { l3_len, .. } => {
                assert_eq!(buf.len(), 14 + l3_len);
                vec![buf.data().to_vec()]
            }
            Verdict::ForwardTwice { l3_len, copy, .. } => {
                assert_eq!(buf.len(), 14 + l3_len);
                let mut c = buf.clone();
                let (dst, l3) = finish_copy(wa, c.data_mut(), &copy).expect("copy");
                assert_eq!((dst, l3), (copy.dst, l3_len));
                vec![buf.data().to_vec(), c.data().to_vec()]
            }
            v => panic!("expected Forward or ForwardTwice, got {v:?}"),
        }
    }

    /// One packet each way with `packet-duplication`: every WAN frame A sends goes to B
    /// unless `lose(k)` for its index `k` (0: the original, 1: the copy); exactly one
    /// delivery of the forward packet is required, the other a counted duplicate. Returns the
    /// WAN destinations A sent to and B's WAN source for the reply.
    fn exchange_dup(&mut self, tag: u8, lose: impl Fn(usize) -> bool) -> (Vec<IpAddr>, IpAddr) {
        let f = flow_a(&[tag; 24]);
        let frames = self.send_dup(&f);
        let mut delivered = 0;
        for (k, wan) in frames.iter().enumerate() {
            if lose(k) {
                continue;
            }
            let (v, out) = self.wan_into(true, wan);
            match v {
                Verdict::Forward { .. } => {
                    same_but_ttl(&f, &out);
                    delivered += 1;
                }
                Verdict::Drop(DropCause::Svr(SvrDrop::DuplicateDropped)) => {}
                v => panic!("frame {k} of packet {tag}: {v:?}"),
            }
        }
        if frames.iter().enumerate().any(|(k, _)| !lose(k)) {
            assert_eq!(delivered, 1, "packet {tag} delivered once");
        }
        let r = flow_b(&[tag; 12]);
        let (back, out) = self.send(false, &r);
        same_but_ttl(&r, &out);
        (
            frames.iter().map(|f| wan_dst(f)).collect(),
            packet::parse(&back, false).unwrap().src,
        )
    }
}

/// The LAN key of [`flow_a`] at A.
fn lan_key_a() -> crate::session::FlowKey {
    crate::session::FlowKey::new(ip("10.1.0.2"), ip("10.2.0.2"), 17, 40001, 80).unwrap()
}

#[test]
fn duplication_sends_each_packet_on_two_pairs_with_one_sequence_number() {
    let mut p = duplication_routers();
    for i in 0..6u8 {
        let f = flow_a(&[i; 40]);
        let frames = p.send_dup(&f);
        assert_eq!(frames.len(), 2, "packet {i}: original and copy");
        let (a, b) = (&frames[0], &frames[1]);
        assert_eq!(wan_dst(a), ip("10.9.0.2"));
        assert_eq!(wan_dst(b), ip("10.9.0.3"));
        assert_eq!(wan_seq(a), wan_seq(b));
        assert_eq!(wan_seq(a), u64::from(i));
        // Same bytes after the ports and checksum: metadata, ciphertext, trailer, HMAC.
        let (ha, hb) = (
            packet::parse(a, false).unwrap(),
            packet::parse(b, false).unwrap(),
        );
        assert_eq!(a[ha.l4_start() + 8..], b[hb.l4_start() + 8..]);
        let dup = p.a.0.table.lookup(&lan_key_a()).unwrap().dup_key.unwrap();
        assert_eq!((hb.sport, hb.dport), (dup.dst_port(), dup.src_port()));
        // The first packets carry forward metadata, the copies too.
        assert_eq!(is_metadata(wan_payload(a)), is_metadata(wan_payload(b)));
        // B delivers one, counts the other as a duplicate.
        p.deliver(true, a, &f);
        let (v, _) = p.wan_into(true, b);
        assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::DuplicateDropped)));
        if i == 2 {
            let r = flow_b(b"reply");
            let (back, out) = p.send(false, &r);
            same_but_ttl(&r, &out);
            assert_eq!(wan_dst(&back), ip("10.9.0.1"));
            assert_eq!(packet::parse(&back, false).unwrap().src, ip("10.9.0.2"));
        }
    }
    // Metadata stopped after the reply; data packets keep their copies.
    assert!(!is_metadata(wan_payload(&p.send_dup(&flow_a(b"late"))[1])));
    assert_eq!(p.a.1.counters.events.get(SvrEvent::DuplicateSent), 7);
    assert_eq!(p.b.1.counters.drops.get(SvrDrop::DuplicateDropped), 6);
    assert_eq!(p.b.1.counters.drops.get(SvrDrop::Replay), 0);
    assert_eq!(p.b.1.counters.events.get(SvrEvent::DuplicateBound), 1);
    assert_eq!(p.b.1.counters.drops.total(), 6);
    assert_eq!(p.a.1.counters.drops.total(), 0);
    // Both sides: one session, reachable by two WAN keys; A holds wayports on both pairs.
    let lan = lan_key_a();
    let sa = p.a.0.table.lookup(&lan).unwrap();
    let sb = p.b.0.table.lookup(&lan.reversed()).unwrap();
    assert!(sa.dup_key.is_some() && sb.dup_key.is_some());
    // Each side's keys are the 5-tuples it receives: the other's reversed.
    assert_eq!(sb.dup_key, sa.dup_key.map(|k| k.reversed()));
    assert_eq!(sb.wan_key, sa.wan_key.reversed());
    assert_eq!(p.a.0.pairs()[0].ports.in_use(), 1);
    assert_eq!(p.a.0.pairs()[1].ports.in_use(), 1);
    // The session ends: both pairs' wayports come back, both keys leave the table.
    assert!(p.a.0.remove_session(&sa));
    assert_eq!(p.a.0.pairs()[0].ports.in_use(), 0);
    assert_eq!(p.a.0.pairs()[1].ports.in_use(), 0);
    assert!(p.a.0.table.lookup(&sa.dup_key.unwrap()).is_none());
    p.a.0.table.check_index();
}

#[test]
fn losing_either_copy_still_delivers_every_packet() {
    let mut p = duplication_routers();
    // The very first original is lost: B creates the session from the copy (pair 1 is its
    // first binding), then learns pair 0 from the next packet's forward metadata.
    let f = flow_a(b"first");
    let frames = p.send_dup(&f);
    p.deliver(true, &frames[1], &f);
    let f = flow_a(b"second");
    let frames = p.send_dup(&f);
    p.deliver(true, &frames[0], &f);
    assert_eq!(
        p.wan_into(true, &frames[1]).0,
        Verdict::Drop(DropCause::Svr(SvrDrop::DuplicateDropped))
    );
    let sb = p.b.0.table.lookup(&lan_key_a().reversed()).unwrap();
    assert_eq!(wan_dst(&frames[1]), sb.wan_key.dst());
    assert_eq!(wan_dst(&frames[0]), sb.dup_key.unwrap().dst());
    // B answers on its first binding, pair 1.
    assert_eq!(p.exchange_dup(2, |_| false).1, ip("10.9.0.3"));
    for i in 3..30u8 {
        // Alternate which copy the network loses; sometimes neither.
        let lost = usize::from(i % 3);
        p.exchange_dup(i, |k| k == lost);
    }
    assert_eq!(p.a.1.counters.events.get(SvrEvent::DuplicateSent), 30);
    assert_eq!(p.b.1.counters.events.get(SvrEvent::Received), 30);
    assert_eq!(p.a.1.counters.events.get(SvrEvent::Received), 28);
    assert_eq!(
        p.b.1.counters.drops.total(),
        p.b.1.counters.drops.get(SvrDrop::DuplicateDropped)
    );
    assert_eq!(p.b.1.counters.drops.get(SvrDrop::UnknownSession), 0);
    assert_eq!(p.a.1.counters.drops.total(), 0);
    assert_eq!(p.a.1.counters.events.get(SvrEvent::SessionRefreshed), 0);
}

/// The reverse path proves only one of the two pairs bound at the egress: forward metadata
/// goes on for `DUPLICATE_METADATA_MIN` packets, so a pair whose metadata-carrying copies
/// were all lost before the reply is still learnt (no unknown session, no refresh).
#[test]
fn a_pair_that_lost_every_copy_before_the_reply_is_learnt_afterwards() {
    use super::ingress::DUPLICATE_METADATA_MIN;
    let mut p = duplication_routers();
    // The first original (pair 0) is lost: B knows pair 1 only, and answers there.
    assert_eq!(p.exchange_dup(0, |k| k == 0).1, ip("10.9.0.3"));
    // From now on only pair 0's copies arrive.
    for i in 1..DUPLICATE_METADATA_MIN + 3 {
        let (dsts, _) = p.exchange_dup(i, |k| k == 1);
        assert_eq!(dsts.len(), 2, "packet {i} still sent twice");
    }
    let sb = p.b.0.table.lookup(&lan_key_a().reversed()).unwrap();
    assert!(sb.dup_key.is_some(), "B learnt the second pair");
    assert_eq!(p.b.1.counters.drops.get(SvrDrop::UnknownSession), 0);
    assert_eq!(p.a.1.counters.events.get(SvrEvent::SessionRefreshed), 0);
    assert_eq!(
        p.b.1.counters.events.get(SvrEvent::Received),
        u64::from(DUPLICATE_METADATA_MIN) + 3
    );
    let last = p.send_dup(&flow_a(b"settled"));
    assert!(
        last.iter().all(|f| !is_metadata(wan_payload(f))),
        "metadata stops after the minimum"
    );
}

#[test]
fn a_pair_going_down_leaves_one_working_path_and_returns_as_second() {
    let mut p = duplication_routers();
    for r in [&p.a.0, &p.b.0] {
        r.keys.gate_paths(2);
        r.keys.set_path_in_service_at(0, true, p.now);
        r.keys.set_path_in_service_at(1, true, p.now);
    }
    let both = vec![ip("10.9.0.2"), ip("10.9.0.3")];
    assert_eq!(p.exchange_dup(0, |_| false), (both.clone(), ip("10.9.0.2")));
    assert_eq!(p.exchange_dup(1, |_| false), (both.clone(), ip("10.9.0.2")));
    let uuid = p.a.1.counters.events.get(SvrEvent::IngressSession);
    assert_eq!(uuid, 1);

    // Pair 0 (the first copy's) leaves service on both sides: the survivor carries
    // everything, single-path; A gives back pair 0's wayports. B answers on pair 1.
    p.a.0.keys.set_path_in_service_at(0, false, p.now);
    p.b.0.keys.set_path_in_service_at(0, false, p.now);
    for i in 2..6 {
        assert_eq!(
            p.exchange_dup(i, |_| false),
            (vec![ip("10.9.0.3")], ip("10.9.0.3"))
        );
    }
    assert_eq!(p.a.0.pairs()[0].ports.in_use(), 0);
    assert_eq!(p.a.0.pairs()[1].ports.in_use(), 1);
    assert_eq!(p.reasons_a(), [MoveCause::PathDown]);
    assert_eq!(
        (p.a.1.move_events[0].from_pair, p.a.1.move_events[0].to_pair),
        (0, 1)
    );

    // Pair 0 returns: it becomes the second path (`path-up`), with forward metadata so B
    // binds it; the first copy stays on pair 1.
    p.advance(1);
    p.a.0.keys.set_path_in_service_at(0, true, p.now);
    p.b.0.keys.set_path_in_service_at(0, true, p.now);
    let f = flow_a(b"second path again");
    let frames = p.send_dup(&f);
    assert_eq!(
        frames.iter().map(|f| wan_dst(f)).collect::<Vec<_>>(),
        [ip("10.9.0.3"), ip("10.9.0.2")]
    );
    assert!(frames.iter().all(|f| is_metadata(wan_payload(f))));
    p.deliver(true, &frames[0], &f);
    assert_eq!(
        p.wan_into(true, &frames[1]).0,
        Verdict::Drop(DropCause::Svr(SvrDrop::DuplicateDropped))
    );
    for i in 10..14 {
        let lost = usize::from(i % 2);
        assert_eq!(
            p.exchange_dup(i, |k| k == lost),
            (vec![ip("10.9.0.3"), ip("10.9.0.2")], ip("10.9.0.3"))
        );
    }
    assert_eq!(p.reasons_a(), [MoveCause::PathDown, MoveCause::PathUp]);
    assert_eq!(p.a.0.pairs()[0].ports.in_use(), 1);

    // Now the second path (pair 0) fails: the session stays on pair 1, single-path.
    p.a.0.keys.set_path_in_service_at(0, false, p.now);
    p.b.0.keys.set_path_in_service_at(0, false, p.now);
    for i in 20..23 {
        assert_eq!(
            p.exchange_dup(i, |_| false),
            (vec![ip("10.9.0.3")], ip("10.9.0.3"))
        );
    }
    assert_eq!(p.a.0.pairs()[0].ports.in_use(), 0);
    assert_eq!(p.a.1.counters.drops.total(), 0);
    assert_eq!(
        p.b.1.counters.drops.total(),
        p.b.1.counters.drops.get(SvrDrop::DuplicateDropped)
    );
}

#[test]
fn services_without_duplication_send_no_copy_and_keep_no_second_keys() {
    for r in [
        svr_linkq::SessionResiliency::None,
        svr_linkq::SessionResiliency::Failover,
    ] {
        let mut p = two_pair_routers(r);
        assert!(!p.a.0.table.has_duplicate_keys());
        assert_eq!(p.a.0.table.memory().duplicate_key_bytes, 0);
        for i in 0..4 {
            let f = flow_a(&[i; 8]);
            assert_eq!(p.send_dup(&f).len(), 1);
        }
        assert_eq!(p.a.1.counters.events.get(SvrEvent::DuplicateSent), 0);
    }
    // A router with a duplication service: only that service's sessions are copied.
    let mut p = duplication_routers();
    edit_services(&p.a.0, |s| {
        s[1].policy.session_resiliency = svr_linkq::SessionResiliency::None
    });
    assert_eq!(p.send_dup(&flow_a(b"plain")).len(), 1);
}

#[test]
fn a_failed_copy_counts_and_the_original_still_goes() {
    let mut p = duplication_routers();
    copy_failed(&mut p.a.1);
    assert_eq!(p.a.1.counters.drops.get(SvrDrop::DuplicateCopyFailed), 1);
    // A copy that cannot be rewritten (never made by the ingress) counts the same.
    let f = flow_a(b"x");
    let frames = p.send_dup(&f);
    let mut bad = frames[0].clone();
    let rw = DuplicateRewrite {
        src: ip("fd00::1"),
        dst: ip("fd00::2"),
        src_port: 1,
        dst_port: 2,
    };
    assert_eq!(finish_copy(&mut p.a.1, &mut bad, &rw), None);
    assert_eq!(p.a.1.counters.drops.get(SvrDrop::DuplicateCopyFailed), 2);
    p.deliver(true, &frames[0], &f);
}

// ---- reload: the service table swapped under live sessions ----

/// A reload that moves a destination to another service and removes the old one: the
/// established flow keeps its session and every packet is delivered; a new flow to the
/// removed prefix is refused; a new flow to the new service's prefix gets the new service.
#[test]
fn reload_keeps_established_sessions_and_new_sessions_see_the_new_table() {
    let (mut p, _, f) = steady();
    let live_a = p.a.0.table.len();
    // Router-a: site-b shrinks to 10.2.0.0/25 and a new service takes 10.2.0.128/25; both
    // routers serve them (router-b first, the egress, as an operator should).
    for (sh, ours) in [(&p.b.0, true), (&p.a.0, false)] {
        edit_services(sh, |s| {
            s[1].prefixes = vec![pfx("10.2.0.0/25")];
            let mut extra = s[1].clone();
            extra.name = "site-b-high".into();
            extra.prefixes = vec![pfx("10.2.0.128/25")];
            extra.peer = if ours { None } else { Some(0) };
            s.push(extra);
        });
    }
    // The established flow (to 10.2.0.2) goes on.
    for _ in 0..3 {
        let (_, out) = p.send(true, &f);
        same_l3(&f, &out, false);
    }
    assert_eq!(p.a.0.table.len(), live_a, "no session created or lost");
    // A new flow to 10.2.0.130 is a site-b-high session at both ends.
    let g = frame("10.1.0.2", "10.2.0.130", 17, &udp(40100, 5001, b"new"));
    p.send(true, &g);
    let names: Vec<_> =
        p.a.0
            .first_sessions(16)
            .iter()
            .filter_map(|s| s.service)
            .map(|i| p.a.0.services().services[i].name.clone())
            .collect();
    assert!(names.contains(&"site-b-high".to_string()), "{names:?}");
    // Removing site-b altogether: the established flow still goes on (its session keeps
    // its pair and keys); a new flow to it is refused.
    edit_services(&p.a.0, |s| {
        s.remove(1);
    });
    let (_, out) = p.send(true, &f);
    same_l3(&f, &out, false);
    let h = frame("10.1.0.2", "10.2.0.3", 17, &udp(40200, 5001, b"late"));
    let mut buf = TestBuffer::new(&h);
    let v = ingress::lan_packet(&p.a.0, &mut p.a.1, &mut buf, p.now);
    assert!(!matches!(v, Verdict::Forward { .. }), "{v:?}");
}

/// A table that names a peer we do not have, or turns packet duplication on in a session
/// table built without it, is refused and the old one stays.
#[test]
fn replace_table_refuses_what_the_data_path_cannot_do() {
    let (sh, _) = router("router-a", (true, false), 64);
    let mut t = ServiceTable::clone(&sh.services());
    t.services[1].peer = Some(7);
    assert_eq!(sh.replace_table(t), Err(TableRefused::UnknownPeer));
    let mut t = ServiceTable::clone(&sh.services());
    t.services[1].policy.session_resiliency = svr_linkq::SessionResiliency::PacketDuplication;
    assert_eq!(sh.replace_table(t), Err(TableRefused::NoDuplication));
    assert_eq!(sh.services().services[1].peer, Some(0));
    assert_eq!(
        sh.services().services[1].policy.session_resiliency,
        svr_linkq::SessionResiliency::None
    );
    // Timeouts and the Enable Metadata rate change with the table.
    let mut t = ServiceTable::clone(&sh.services());
    t.enable_metadata_rate = 7;
    t.timeouts.udp = std::time::Duration::from_secs(5);
    sh.replace_table(t).unwrap();
    assert_eq!(sh.services().enable_metadata_rate, 7);
    assert_eq!(sh.services().timeouts.udp.as_secs(), 5);
}

/// Readers on other threads while the table is swapped back and forth: each lookup sees
/// one whole table (the service name, tenant and peer of one version, never a mix), and
/// the MSS reserve never shrinks.
#[test]
fn readers_see_whole_tables_while_they_are_swapped() {
    use std::sync::atomic::AtomicBool;
    let (sh, _) = router("router-a", (true, false), 64);
    let sh = Arc::new(sh);
    let v1 = ServiceTable::clone(&sh.services());
    let mut v2 = v1.clone();
    v2.services[1].name = "site-b-v2-with-a-longer-name".into();
    v2.services[1].tenant = "green".into();
    v2.services[1].prefixes = vec![pfx("10.2.0.0/16")];
    let stop = Arc::new(AtomicBool::new(false));
    let mss0 = sh.clamped_mss(true, true);
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (sh, stop) = (Arc::clone(&sh), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut seen = [0u64; 2];
                while !stop.load(Ordering::Relaxed) {
                    let t = sh.services();
                    let (_, s) = t.service_for(ip("10.2.0.9")).expect("site-b in both");
                    let v = match (s.name.as_str(), s.tenant.as_str(), s.prefixes[0].len()) {
                        ("site-b", "blue", 24) => 0,
                        ("site-b-v2-with-a-longer-name", "green", 16) => 1,
                        other => panic!("half-applied table: {other:?}"),
                    };
                    seen[v] += 1;
                    // 10.2.1.1 is only in v2's prefix.
                    assert_eq!(t.service_for(ip("10.2.1.1")).is_some(), v == 1);
                }
                seen
            })
        })
        .collect();
    for i in 0..2000 {
        let t = if i % 2 == 0 { v2.clone() } else { v1.clone() };
        sh.replace_table(t).unwrap();
        if i % 256 == 0 {
            std::thread::yield_now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let seen = r.join().expect("no reader saw a mixed table");
        assert!(seen[0] + seen[1] > 0);
    }
    assert!(sh.clamped_mss(true, true) <= mss0, "the reserve only grows");
}

/// A restarted ingress allocates wayports afresh: its first new session lands on the WAN key
/// of a session the egress still holds. Once the egress saw the peer unreachable, the new
/// session replaces the old one at once; before that, and for a replay, it stays a drop.
#[test]
fn a_restarted_peer_reusing_wayports_replaces_the_old_session() {
    let (ha, hb) = ("10.1.0.2", "10.2.0.2");
    let fa = |sport: u16, d: &[u8]| frame(ha, hb, 17, &udp(sport, 5001, d));
    let fb = |dport: u16, d: &[u8]| frame(hb, ha, 17, &udp(5001, dport, d));
    let ports = |f: &[u8]| {
        let h = packet::parse(f, false).unwrap();
        (h.sport, h.dport)
    };
    let mut p = Pair::new((true, false));
    let pairs = p.b.0.pairs().len();
    p.b.0.keys.gate_paths(pairs);
    for i in 0..pairs {
        p.b.0.keys.set_path_in_service(i, true);
    }
    let (wan_old, _) = p.send(true, &fa(40000, b"one"));
    p.send(false, &fb(40000, b"back"));
    // A restarts. Until B sees A unreachable, A's new session on the old wayports is refused.
    let (sa, _) = router("router-a", (true, false), 1024);
    let wa = SvrWorker::new(&sa, [7; 32]);
    p.a = (sa, wa);
    let early = p.lan_out(true, &fa(40001, b"too early"));
    assert_eq!(
        ports(&early),
        ports(&wan_old),
        "the restarted router reuses the wayports"
    );
    let (v, _) = p.wan_into(true, &early);
    assert_eq!(v, Verdict::Drop(DropCause::Svr(SvrDrop::SessionMismatch)));
    // B sees every path to A leave service and come back: the next packet replaces it.
    for i in 0..pairs {
        p.b.0.keys.set_path_in_service(i, false);
    }
    for i in 0..pairs {
        p.b.0.keys.set_path_in_service(i, true);
    }
    let f = fa(40001, b"new flow");
    let (wan_new, out) = p.send(true, &f);
    assert_eq!(ports(&wan_new), ports(&wan_old));
    same_but_ttl(&f, &out);
    let r = fb(40001, b"answer");
    let (_, out) = p.send(false, &r);
    same_but_ttl(&r, &out);
    assert_eq!(p.b.1.counters.events.get(SvrEvent::SessionReplaced), 1);
    // A replay of the replacing packet replaces nothing.
    let (v, _) = p.wan_into(true, &wan_new);
    assert!(matches!(v, Verdict::Drop(_)), "{v:?}");
    assert_eq!(p.b.1.counters.events.get(SvrEvent::SessionReplaced), 1);
    let f = fa(40001, b"still there");
    let (_, out) = p.send(true, &f);
    same_but_ttl(&f, &out);
}
