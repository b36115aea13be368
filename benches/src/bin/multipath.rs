//! Multipath costs in the data path (issue 9), on one pinned core, through the same
//! `ingress::lan_packet` / `egress::wan_packet` calls svrd's workers make (one packet at a
//! time, crypto included), between two in-process routers A and B:
//!
//! ```text
//! multipath [--sessions 10K] [--rounds 20] [--cpu 1] [--only none|failover|packet-duplication|move]
//! ```
//!
//! * `op=established`: LAN packets of established UDP sessions (metadata no longer sent) at
//!   A, `--rounds` rounds of one 100-byte packet per session. `paths=1 resiliency=none` is a
//!   router with one peer path; `paths=2 resiliency=failover` has two paths and a policy that
//!   moves sessions. The difference is what path selection costs an established session:
//!   selection runs only when a session is created or path state changes; in between, a packet
//!   pays one compare of the session's review version and one of its revert time.
//! * `op=review`: the first round after path state changed without making the sessions move
//!   (the second path's metrics published again): every session is reviewed once
//!   (`svr_linkq::decide`).
//! * `paths=2 resiliency=packet-duplication`: every packet leaves twice (the copy made as
//!   svrd's `duplicate` stage makes it, counted in the figure); `op=duplication-copy` is that
//!   copy and rewrite alone (per copy); `op=duplication-egress` is the egress's work per
//!   original packet: open the first copy, authenticate and drop the second
//!   (`svr_duplicate_dropped`), against `op=egress` (one copy) of the other configurations.
//! * `op=move`: path 1 leaves service at A; one round of one packet per session: every
//!   session moves to path 2 (new wayports, WAN key rebound, forward metadata again): `side=a`
//!   is A's ingress per moved session; `side=b` is B's egress rebinding each on that packet's
//!   forward metadata. `total_ms` is the data-path time to move all `--sessions` on one core
//!   each side; in the appliance each session moves on its next LAN packet after BFD declared
//!   the path down (detection time), so a busy flow moves within a packet interval of it.
//!
//! Packet buffers are built before each timed round (the copy is not counted).
//!
//! Output lines: `bench=multipath op=… paths=… resiliency=… sessions=… ns_per_packet=…`
//! (`established`: the median round, with `min_ns` and `max_ns`) and
//! `bench=multipath op=move side=a|b sessions=… ns_per_session=… total_ms=…`.

use std::net::{IpAddr, Ipv4Addr};

use fastpath::session::{SessionTimeouts, WayportRange};
use fastpath::svr_path::{
    egress, finish_copy, ingress, PacketBuf, PathAttr, PeerInfo, ServiceRoute, SvrConfig,
    SvrShared, SvrWorker, TestBuffer, Verdict,
};
use fastpath::time::Instant;
use svr_benches::{ns_per, rdtsc, setup, Args, Line};
use svr_crypto::MetadataKey;
use svr_linkq::{Policy, SessionResiliency};

type Router = (SvrShared, SvrWorker);

const A_ENC: [u8; 32] = [0xa0; 32];
const A_MAC: [u8; 48] = [0x10; 48];
const B_ENC: [u8; 32] = [0xb0; 32];
const B_MAC: [u8; 48] = [0x20; 48];

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn prefix(s: &str) -> fastpath::route::IpPrefix {
    s.parse().expect("prefix")
}

/// Router A (10.9.0.1, LAN 10.1.0.0/24) with `paths` paths to B (10.9.0.2, 10.9.0.3), or
/// router B, serving 10.2.0.0/24; `resiliency` is the policy of A's service to B.
fn router(a: bool, paths: usize, resiliency: SessionResiliency, sessions: u32) -> Router {
    let a_wps = vec![v4([10, 9, 0, 1])];
    let b_wps: Vec<IpAddr> = (0..paths as u8).map(|i| v4([10, 9, 0, 2 + i])).collect();
    let policy = Policy {
        session_resiliency: resiliency,
        ..Policy::default()
    };
    let service = |name: &str, pfx: &str, served_here: bool| ServiceRoute {
        name: name.into(),
        tenant: "blue".into(),
        prefixes: vec![prefix(pfx)],
        peer: if served_here { None } else { Some(0) },
        policy,
    };
    let (mine, theirs, peer) = if a {
        (a_wps, b_wps.clone(), "router-b")
    } else {
        (b_wps.clone(), a_wps, "router-a")
    };
    let paths = if a {
        b_wps
            .iter()
            .enumerate()
            .map(|(k, &remote)| PathAttr {
                local: mine[0],
                remote,
                cost: 10 * k as u32,
                vector: None,
                local_link: 0,
            })
            .collect()
    } else {
        Vec::new()
    };
    let cfg = SvrConfig {
        router_name: if a { "router-a" } else { "router-b" }.into(),
        services: vec![
            service("site-a", "10.1.0.0/24", a),
            service("site-b", "10.2.0.0/24", !a),
        ],
        peers: vec![PeerInfo {
            name: peer.into(),
            waypoints: theirs,
            source_nat: false,
            paths,
        }],
        local_waypoints: mine,
        wayport_range: WayportRange::default(),
        wan_mtu: 1500,
        max_sessions: sessions * 2,
        timeouts: SessionTimeouts::default(),
        enable_metadata_rate: 100,
    };
    let sh = SvrShared::new(cfg).expect("router config");
    let (own, peer) = if a {
        (
            MetadataKey::new(1, &A_ENC, &A_MAC),
            MetadataKey::new(1, &B_ENC, &B_MAC),
        )
    } else {
        (
            MetadataKey::new(1, &B_ENC, &B_MAC),
            MetadataKey::new(1, &A_ENC, &A_MAC),
        )
    };
    sh.keys.install_own(own);
    sh.keys.install_peer(0, peer);
    let w = SvrWorker::new(&sh, [if a { 1 } else { 2 }; 32]);
    (sh, w)
}

/// RFC 1071 checksum of `data` (folded, not inverted).
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// Ethernet + IPv4 + UDP frame `src:sport -> dst:dport` with `payload`, checksums filled.
fn udp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let l4 = 8 + payload.len();
    let mut f = vec![0u8; 14 + 20 + l4];
    f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + l4) as u16).to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let c = !(sum16(ip, 0) as u16);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let u = &mut f[34..];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&(l4 as u16).to_be_bytes());
    u[8..].copy_from_slice(payload);
    let mut pseudo = [0u8; 12];
    pseudo[..4].copy_from_slice(&src);
    pseudo[4..8].copy_from_slice(&dst);
    pseudo[9] = 17;
    pseudo[10..12].copy_from_slice(&(l4 as u16).to_be_bytes());
    let c = !(sum16(&f[34..], sum16(&pseudo, 0)) as u16);
    f[40..42].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
    f
}

/// Session `i`'s packet from host-a (LAN of A) or its reply from host-b.
fn packet(i: usize, forward: bool) -> Vec<u8> {
    let sport = 20_000 + i as u16;
    let payload = [0x5a; 100];
    if forward {
        udp_frame([10, 1, 0, 2], [10, 2, 0, 2], sport, 5001, &payload)
    } else {
        udp_frame([10, 2, 0, 2], [10, 1, 0, 2], 5001, sport, &payload)
    }
}

/// One round of packets through `r`'s ingress (`lan`) or egress: returns TSC ticks and the
/// frames as they left, with the copy of each duplicated packet after it (made as svrd's
/// `duplicate` stage does: a byte copy of the finished frame, rewritten for the second pair,
/// into a buffer allocated before the round).
fn round(r: &mut Router, frames: &[Vec<u8>], lan: bool, now: Instant) -> (u64, Vec<Vec<u8>>) {
    let mut bufs: Vec<TestBuffer> = frames.iter().map(|f| TestBuffer::new(f)).collect();
    let mut copies: Vec<Vec<u8>> = frames.iter().map(|_| Vec::with_capacity(2048)).collect();
    let t0 = rdtsc();
    for (b, c) in bufs.iter_mut().zip(&mut copies) {
        let v = if lan {
            ingress::lan_packet(&r.0, &mut r.1, b, now)
        } else {
            egress::wan_packet(&r.0, &mut r.1, b, now)
        };
        match v {
            Verdict::Forward { .. } => {}
            Verdict::ForwardTwice { copy, .. } => {
                c.extend_from_slice(b.data());
                assert!(finish_copy(&mut r.1, c, &copy).is_some(), "copy rewrite");
            }
            // The egress's second copy of a duplicated packet.
            Verdict::Drop(_) if !lan => {}
            other => panic!("{other:?}"),
        }
    }
    let ticks = rdtsc() - t0;
    let mut out = Vec::with_capacity(2 * frames.len());
    for (b, c) in bufs.iter().zip(copies) {
        out.push(b.data().to_vec());
        if !c.is_empty() {
            out.push(c);
        }
    }
    (ticks, out)
}

/// One round through `r`'s ingress timing only the duplicate stage's work per
/// `ForwardTwice`: the byte copy of the finished frame and `finish_copy`'s rewrite. Returns
/// TSC ticks and the number of copies.
fn copy_cost(r: &mut Router, frames: &[Vec<u8>], now: Instant) -> (u64, u64) {
    let mut bufs: Vec<TestBuffer> = frames.iter().map(|f| TestBuffer::new(f)).collect();
    let mut copy: Vec<u8> = Vec::with_capacity(2048);
    let (mut ticks, mut n) = (0, 0);
    for b in &mut bufs {
        if let Verdict::ForwardTwice { copy: rw, .. } = ingress::lan_packet(&r.0, &mut r.1, b, now)
        {
            let t0 = rdtsc();
            copy.clear();
            copy.extend_from_slice(b.data());
            let done = finish_copy(&mut r.1, &mut copy, &rw).is_some();
            ticks += rdtsc() - t0;
            assert!(done, "copy rewrite");
            n += 1;
        }
    }
    (ticks, n)
}

/// A→B (forward) or B→A (reply) for every session: ingress at one router, egress at the other.
fn exchange(a: &mut Router, b: &mut Router, n: usize, forward: bool, now: Instant) {
    let frames: Vec<Vec<u8>> = (0..n).map(|i| packet(i, forward)).collect();
    let (from, to) = if forward { (a, b) } else { (b, a) };
    let (_, wan) = round(from, &frames, true, now);
    round(to, &wan, false, now);
}

/// Two routers with `n` established sessions (first packet, reply, one more forward packet).
fn established(paths: usize, res: SessionResiliency, n: usize, now: Instant) -> (Router, Router) {
    let mut a = router(true, paths, res, n as u32);
    let mut b = router(false, paths, res, n as u32);
    exchange(&mut a, &mut b, n, true, now);
    exchange(&mut a, &mut b, n, false, now);
    exchange(&mut a, &mut b, n, true, now);
    (a, b)
}

fn main() {
    let args = Args::from_env();
    let hz = setup("multipath", &args);
    let n = args.get_usize("sessions", 10_000);
    let rounds = args.get_usize("rounds", 20);
    let now = Instant::from_nanos(1_000_000_000);
    let forward: Vec<Vec<u8>> = (0..n).map(|i| packet(i, true)).collect();

    // `--only none|failover|packet-duplication|move`: one configuration (for instruction
    // counts under callgrind, where the difference between two `--rounds` isolates the
    // steady per-packet cost).
    let only = args.get_str("only").map(str::to_string);
    let skip = |name: &str| only.as_deref().is_some_and(|o| o != name);
    for (paths, res, name) in [
        (1, SessionResiliency::None, "none"),
        (2, SessionResiliency::Failover, "failover"),
        (
            2,
            SessionResiliency::PacketDuplication,
            "packet-duplication",
        ),
    ] {
        if skip(name) {
            continue;
        }
        let (mut a, mut b) = established(paths, res, n, now);
        let mut per_round: Vec<f64> = (0..rounds.max(1))
            .map(|_| ns_per(round(&mut a, &forward, true, now).0, n as u64, hz))
            .collect();
        per_round.sort_by(f64::total_cmp);
        Line::new("multipath")
            .kv("op", "established")
            .kv("paths", paths)
            .kv("resiliency", name)
            .kv("sessions", n)
            .f("ns_per_packet", per_round[per_round.len() / 2], 1)
            .f("min_ns", per_round[0], 1)
            .f("max_ns", per_round[per_round.len() - 1], 1)
            .print();
        // The egress, per original packet: one copy, or (duplication) both, the second
        // dropped by the replay window as svr_duplicate_dropped.
        if res != SessionResiliency::PacketDuplication {
            let (_, wan) = round(&mut a, &forward, true, now);
            let ticks = round(&mut b, &wan, false, now).0;
            Line::new("multipath")
                .kv("op", "egress")
                .kv("paths", paths)
                .kv("resiliency", name)
                .kv("sessions", n)
                .f("ns_per_packet", ns_per(ticks, n as u64, hz), 1)
                .print();
        }
        if res == SessionResiliency::PacketDuplication {
            let (ticks, copies) = copy_cost(&mut a, &forward, now);
            Line::new("multipath")
                .kv("op", "duplication-copy")
                .kv("sessions", n)
                .kv("copies", copies)
                .f("ns_per_copy", ns_per(ticks, copies.max(1), hz), 1)
                .print();
            let (_, wan) = round(&mut a, &forward, true, now);
            assert_eq!(wan.len(), 2 * n, "every packet sent twice");
            let ticks = round(&mut b, &wan, false, now).0;
            Line::new("multipath")
                .kv("op", "duplication-egress")
                .kv("paths", paths)
                .kv("resiliency", name)
                .kv("sessions", n)
                .f("ns_per_packet", ns_per(ticks, n as u64, hz), 1)
                .print();
        }
        if res == SessionResiliency::Failover {
            // Path state changes without a move (a write of the same state): one review per
            // session.
            a.0.keys.set_path_in_service(1, true);
            let ticks = round(&mut a, &forward, true, now).0;
            Line::new("multipath")
                .kv("op", "review")
                .kv("paths", paths)
                .kv("resiliency", name)
                .kv("sessions", n)
                .f("ns_per_packet", ns_per(ticks, n as u64, hz), 1)
                .print();
        }
    }

    if skip("move") {
        return;
    }
    let (mut a, mut b) = established(2, SessionResiliency::Failover, n, now);
    a.0.keys.gate_paths(2);
    a.0.keys.set_path_in_service(1, true);
    let (ta, wan) = round(&mut a, &forward, true, now);
    let moved_to_second = wan
        .iter()
        .filter(|f| f.len() > 34 && f[30..34] == [10, 9, 0, 3])
        .count();
    assert_eq!(moved_to_second, n, "every session moved to path 2");
    let (tb, _) = round(&mut b, &wan, false, now);
    for (side, t) in [("a", ta), ("b", tb)] {
        Line::new("multipath")
            .kv("op", "move")
            .kv("side", side)
            .kv("sessions", n)
            .f("ns_per_session", ns_per(t, n as u64, hz), 1)
            .f("total_ms", t as f64 / hz * 1e3, 2)
            .print();
    }
}
