//! Cost growth (issue 5): slow-path CPU with 1, 100 and 1000 peers, and SVR data-path
//! throughput from 1K to 10M sessions, on one pinned core.
//!
//! ```text
//! growth [--peers 1,100,1000] [--sim-secs 60] [--sessions 1K,100K,1M,10M] [--max 10M]
//!        [--packets 4M] [--only slowpath|datapath] [--seed 5] [--cpu 1]
//! ```
//!
//! # Slow path vs peers
//!
//! One router ("hub") with N peers ("peer-0001"…), each with one BFD session (default timers:
//! 1 s desired TX, 500 ms required RX, multiplier 3) and one `PeerKeyState` (x25519, 24 h
//! rekeys; every peer has its own certificate from one authority). The N counterparts run the
//! same code on the other end of an in-memory wire with zero latency, on a virtual clock: every
//! BFD packet either side sends is delivered to the other, with the SVR BFD metadata block
//! of the key layer riding on it, as `svrd`'s `zt` module glues them (a block from
//! `poll_block` goes out on the next BFD packet at once with `request_transmit`; BFD Up/Down
//! go to `bfd_up`/`bfd_down`). Deadlines are kept in a binary heap (not timed). First the
//! pairs are driven until every peer is in service (BFD Up and `path_in_service`: peer key,
//! both metadata keys, ours acknowledged); that is `op=establish`. Then `--sim-secs` simulated
//! seconds of steady state are measured: the TSC ticks the hub spends in
//! `handle_packet`/`handle_block`/`handle_timeout`/`poll_*`/`bfd_up` (and the copy of each
//! packet it sends) per simulated second. 1 s of CPU per simulated second is 100 % of a core.
//!
//! # Data path vs sessions
//!
//! Two routers in memory (as `fastpath/src/svr_path/test.rs`), one peer, one B waypoint per
//! 24,000 sessions (see `PER_PEER`). S sessions are opened, each
//! a distinct UDP 5-tuple from 10.1.0.0/16 to 10.2.0.0/16: A `ingress::lan_packet` (forward
//! metadata) → B `egress::wan_packet`, B's reply through B `lan_packet` (reverse metadata) →
//! A `wan_packet`, so that A's later packets of the session carry no metadata. Then
//! `--packets` 64-byte frames (Ethernet without FCS: 22 B of UDP payload) of sessions chosen
//! at random go through router A the way `svrd`'s worker runs them: in bursts of 32, each
//! packet through `ingress::lan_stage` (lookup, rewrite, outer headers; the payload crypto
//! deferred), then one `svr_path::finish_burst` per burst (AES-256-CBC + HMAC-SHA384/192 of
//! the whole burst with the multi-buffer kernels, L4 checksums, verdicts). The frames are
//! written in batches of 512 (16 bursts) just before each batch (not timed). Memory per
//! session = growth of the resident set over setup / (2 S) (both routers hold S sessions and
//! their payload keys) plus the preallocated table and key slots.
//!
//! Output lines: `bench=growth op=establish peers=… sim_s=… cpu_ms=…`,
//! `bench=growth op=slowpath peers=… sim_s=… us_per_sim_s=… cpu_pct=… us_per_peer_s=…
//! rx_per_s=… tx_per_s=…`, `bench=growth op=setup sessions=… ns_per_session=… rss_b_per_session=…`,
//! `bench=growth op=datapath sessions=… mpps=… ns_per_pkt=…` and `op=skipped`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant as WallClock};

use fastpath::route::IpPrefix;
use fastpath::session::{SessionTimeouts, WayportRange};
use fastpath::svr::is_metadata;
use fastpath::svr_path::packet::{fill_l4_checksum, parse, write_ip, IpFields, PROTO_UDP};
use fastpath::svr_path::{
    egress, finish_burst, ingress, Deferred, PacketBuf, PeerInfo, ServiceRoute, SvrConfig,
    SvrShared, SvrWorker, TestBuffer, Verdict,
};
use fastpath::time::Instant;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use svr_benches::{ns_per, rdtsc, setup, Args, Line};
use svr_bfd::{BfdConfig, BfdEvent, BfdSession, State};
use svr_crypto::MetadataKey;
use svr_keymgmt::pki::{generate_authority, issue_router, Validity};
use svr_keymgmt::{Identity, KeyConfig, PeerKeyState, PeerSetup, TrustAnchor};

const UNIX0: u64 = 1_800_000_000;
const HUB: &str = "hub";

// ------------------------------------------------------------------ slow path

/// One end of one peer relationship: BFD session, key state, the block waiting for a packet.
struct End {
    bfd: BfdSession,
    keys: PeerKeyState,
    block: Option<Vec<u8>>,
}

impl End {
    /// Timers, events, blocks and transmits of this end at `now`; packets sent go to `out`.
    fn service(&mut self, now: Instant, buf: &mut [u8], out: &mut Vec<Vec<u8>>) {
        if self.bfd.poll_timeout().is_some_and(|t| t <= now) {
            self.bfd.handle_timeout(now);
        }
        if self.keys.poll_timeout().is_some_and(|t| t <= now) {
            self.keys.handle_timeout(now);
        }
        while let Some(ev) = self.bfd.poll_event() {
            match ev {
                BfdEvent::PathUp => self.keys.bfd_up(now),
                BfdEvent::PathDown { .. } => self.keys.bfd_down(now),
                BfdEvent::StateChanged { .. } => {}
            }
        }
        while self.keys.poll_event().is_some() {}
        if let Some(b) = self.keys.poll_block() {
            self.block = Some(b);
            self.bfd.request_transmit();
        }
        loop {
            let ext: &[u8] = self.block.as_deref().unwrap_or(&[]);
            let Some(n) = self.bfd.poll_transmit(now, ext, buf) else {
                self.block = None;
                break;
            };
            self.block = None;
            out.push(buf[..n].to_vec());
        }
    }

    fn next(&self) -> Option<Instant> {
        [self.bfd.poll_timeout(), self.keys.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn in_service(&self) -> bool {
        self.bfd.state() == State::Up && self.keys.path_in_service()
    }
}

/// Side 0 is the hub (measured), side 1 its N counterparts.
struct SlowSim {
    ends: [Vec<End>; 2],
    heap: BinaryHeap<Reverse<(u64, u8, u32)>>,
    sched: [Vec<u64>; 2],
    now: Instant,
    buf: Vec<u8>,
    hub_ticks: u64,
    hub_rx: u64,
    hub_tx: u64,
}

impl SlowSim {
    fn new(n: usize, seed: u64) -> SlowSim {
        let v = Validity::days_from(UNIX0 - 86_400, 3650);
        let auth = generate_authority("acme", v).expect("authority");
        let anchor = Arc::new(TrustAnchor::load(auth.root_cert_pem.as_bytes()).expect("anchor"));
        let ident = |name: &str| {
            let r = issue_router(
                &auth.intermediate_cert_pem,
                &auth.intermediate_key_pem,
                name,
                Validity::days_from(UNIX0, 365),
            )
            .expect("router certificate");
            Arc::new(
                Identity::load(r.cert_chain_pem.as_bytes(), r.key_pem.as_bytes())
                    .expect("identity"),
            )
        };
        let hub = ident(HUB);
        let now = Instant::ZERO;
        let end = |local: &str, peer: &str, id: Arc<Identity>, discr: u32, s: u64| End {
            bfd: BfdSession::new(discr, BfdConfig::default(), s, now),
            keys: PeerKeyState::new(
                now,
                PeerSetup {
                    local_name: local.into(),
                    peer_name: peer.into(),
                    config: KeyConfig::default(),
                    software_version: svr_keymgmt::SoftwareVersion::this_build(),
                },
                id,
                anchor.clone(),
                Box::new(StdRng::seed_from_u64(s)),
            )
            .expect("peer setup"),
            block: None,
        };
        let mut hub_ends = Vec::with_capacity(n);
        let mut peer_ends = Vec::with_capacity(n);
        for i in 0..n {
            let name = format!("peer-{:04}", i + 1);
            let s = seed.wrapping_mul(1_000_003) + 2 * i as u64;
            hub_ends.push(end(HUB, &name, hub.clone(), i as u32 + 1, s + 1));
            peer_ends.push(end(&name, HUB, ident(&name), 7, s + 2));
        }
        let mut sim = SlowSim {
            ends: [hub_ends, peer_ends],
            heap: BinaryHeap::new(),
            sched: [vec![u64::MAX; n], vec![u64::MAX; n]],
            now,
            buf: vec![0; 2048],
            hub_ticks: 0,
            hub_rx: 0,
            hub_tx: 0,
        };
        for s in 0..2 {
            for i in 0..n {
                sim.schedule(s, i);
            }
        }
        sim
    }

    fn schedule(&mut self, side: usize, i: usize) {
        let Some(t) = self.ends[side][i].next() else {
            self.sched[side][i] = u64::MAX;
            return;
        };
        let t = t.as_nanos().max(self.now.as_nanos() + 1);
        if self.sched[side][i] != t {
            self.sched[side][i] = t;
            self.heap.push(Reverse((t, side as u8, i as u32)));
        }
    }

    /// Services (side, i) (after delivering `pkt` to it, if any) and then everything that
    /// follows from it at this instant.
    fn run_at(&mut self, side: usize, i: usize, pkt: Option<Vec<u8>>) {
        let mut queue = VecDeque::new();
        queue.push_back((side, pkt));
        let unix = UNIX0 + self.now.as_nanos() / 1_000_000_000;
        let mut out = Vec::new();
        while let Some((s, pkt)) = queue.pop_front() {
            let now = self.now;
            let e = &mut self.ends[s][i];
            let t0 = rdtsc();
            if let Some(p) = pkt.as_deref() {
                if let Some(block) = e.bfd.handle_packet(now, p).block {
                    e.keys.handle_block(now, unix, block);
                }
            }
            e.service(now, &mut self.buf, &mut out);
            let t = rdtsc() - t0;
            if s == 0 {
                self.hub_ticks += t;
                self.hub_rx += u64::from(pkt.is_some());
                self.hub_tx += out.len() as u64;
            }
            for p in out.drain(..) {
                queue.push_back((1 - s, Some(p)));
            }
            self.schedule(s, i);
            assert!(queue.len() < 64, "livelock between peer {i}'s ends");
        }
    }

    fn run_until(&mut self, end: Instant) {
        while let Some(&Reverse((t, s, i))) = self.heap.peek() {
            if t > end.as_nanos() {
                break;
            }
            self.heap.pop();
            let (s, i) = (usize::from(s), i as usize);
            if self.sched[s][i] != t {
                continue; // superseded
            }
            self.sched[s][i] = u64::MAX;
            self.now = Instant::from_nanos(t);
            self.run_at(s, i, None);
        }
        self.now = self.now.max(end);
    }

    fn all_in_service(&self) -> bool {
        self.ends.iter().flatten().all(End::in_service)
    }
}

fn slowpath(peers: &[usize], sim_secs: u64, seed: u64, hz: f64) {
    for &n in peers {
        let w0 = WallClock::now();
        let mut sim = SlowSim::new(n, seed);
        let build_s = w0.elapsed().as_secs_f64();
        // Establish: up to 10 simulated minutes, checked every simulated second.
        let mut t = 0;
        while !sim.all_in_service() && t < 600 {
            t += 1;
            sim.run_until(Instant::ZERO + Duration::from_secs(t));
        }
        let ok = sim.all_in_service();
        Line::new("growth")
            .kv("op", "establish")
            .kv("peers", n)
            .kv("in_service", ok)
            .kv("sim_s", t)
            .f("cpu_ms", sim.hub_ticks as f64 / hz * 1e3, 2)
            .f(
                "cpu_ms_per_peer",
                sim.hub_ticks as f64 / hz * 1e3 / n as f64,
                3,
            )
            .kv("rx", sim.hub_rx)
            .kv("tx", sim.hub_tx)
            .f("build_s", build_s, 2)
            .print();
        if !ok {
            eprintln!("error: {n} peers not all in service after {t} simulated seconds");
            std::process::exit(1);
        }
        // Let the exchange's key-switch timers (30 s) pass, so the steady state is steady.
        sim.run_until(sim.now + Duration::from_secs(35));
        sim.hub_ticks = 0;
        sim.hub_rx = 0;
        sim.hub_tx = 0;
        let w0 = WallClock::now();
        sim.run_until(sim.now + Duration::from_secs(sim_secs));
        let wall = w0.elapsed().as_secs_f64();
        let us_per_s = sim.hub_ticks as f64 / hz * 1e6 / sim_secs as f64;
        Line::new("growth")
            .kv("op", "slowpath")
            .kv("peers", n)
            .kv("sim_s", sim_secs)
            .kv("still_in_service", sim.all_in_service())
            .f("us_per_sim_s", us_per_s, 2)
            .f("cpu_pct", us_per_s / 1e4, 4)
            .f("us_per_peer_s", us_per_s / n as f64, 3)
            .f("rx_per_s", sim.hub_rx as f64 / sim_secs as f64, 1)
            .f("tx_per_s", sim.hub_tx as f64 / sim_secs as f64, 1)
            .f("ns_per_rx", ns_per(sim.hub_ticks, sim.hub_rx, hz), 1)
            .f("wall_s", wall, 2)
            .print();
    }
}

// ------------------------------------------------------------------ data path

const PAYLOAD: usize = 22; // 64 B frame = 14 + 20 + 8 + 22
/// Frames written (not timed) before each timed run of bursts.
const BATCH: usize = 512;
/// Frames per burst, as `svrd`'s worker (`dpdk_ffi::BURST`, `svr_crypto::MAX_BURST`).
const BURST: usize = 32;

fn v4(a: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

/// LAN host, source port of session `i` (10.1.0.0/16, ports 1024…61023).
fn tuple(i: usize) -> (IpAddr, u16) {
    let host = (i / 60_000) as u32;
    (v4(0x0a01_0000 + 1 + host), 1024 + (i % 60_000) as u16)
}

const SERVER_PORT: u16 = 5001;

/// A 64-byte UDP frame.
fn frame(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, out: &mut [u8; 64]) {
    out.fill(0);
    out[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    out[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    let f = IpFields {
        ttl: 64,
        tos: 0,
        flow: 0,
        df: true,
        ident: 0x1234,
    };
    write_ip(out, src, dst, PROTO_UDP, 50, f);
    out[34..36].copy_from_slice(&sport.to_be_bytes());
    out[36..38].copy_from_slice(&dport.to_be_bytes());
    out[42..42 + PAYLOAD].fill(0x5a);
    fill_l4_checksum(out, PROTO_UDP, 34, 64, src, dst);
}

/// Sessions per peer: each "peer" here is router B reached through its own B waypoint,
/// serving its own server address. This layout dates from when a waypoint pair carried at
/// most 24,575 sessions (one per odd destination wayport); a pair now carries ~6·10^8 unique
/// wayport pairs, and the spread is kept so that results stay comparable.
const PER_PEER: usize = 24_000;

/// The server of session `i` (10.2.0.0/16, one address per peer).
fn server(i: usize) -> IpAddr {
    v4(0x0a02_0001 + (i / PER_PEER) as u32)
}

/// Router A (`a`) or B for `paths` peers of A (B waypoints), one A waypoint.
fn router(a: bool, paths: usize, max_sessions: u32) -> (SvrShared, SvrWorker) {
    let wp_a = v4(0x0a09_0101);
    let wp_b = |k: usize| v4(0x0a0a_0000 + 1 + k as u32);
    let pfx = |s: String| -> IpPrefix { s.parse().expect("prefix") };
    let cfg = if a {
        let mut services = vec![ServiceRoute {
            name: "site-a".into(),
            tenant: "blue".into(),
            prefixes: vec![pfx("10.1.0.0/16".into())],
            peer: None,
            policy: Default::default(),
        }];
        services.extend((0..paths).map(|k| ServiceRoute {
            name: format!("site-b-{k}"),
            tenant: "blue".into(),
            prefixes: vec![pfx(format!("{}/32", server(k * PER_PEER)))],
            peer: Some(k as _),
            policy: Default::default(),
        }));
        SvrConfig {
            router_name: "router-a".into(),
            services,
            peers: (0..paths)
                .map(|k| PeerInfo {
                    name: "router-b".into(),
                    waypoints: vec![wp_b(k)],
                    source_nat: false,
                    paths: Vec::new(),
                })
                .collect(),
            local_waypoints: vec![wp_a],
            wayport_range: WayportRange::default(),
            wan_mtu: 1500,
            max_sessions,
            timeouts: SessionTimeouts::default(),
            enable_metadata_rate: 100,
        }
    } else {
        SvrConfig {
            router_name: "router-b".into(),
            services: vec![
                ServiceRoute {
                    name: "site-a".into(),
                    tenant: "blue".into(),
                    prefixes: vec![pfx("10.1.0.0/16".into())],
                    peer: Some(0),
                    policy: Default::default(),
                },
                ServiceRoute {
                    name: "site-b".into(),
                    tenant: "blue".into(),
                    prefixes: vec![pfx("10.2.0.0/16".into())],
                    peer: None,
                    policy: Default::default(),
                },
            ],
            peers: vec![PeerInfo {
                name: "router-a".into(),
                waypoints: vec![wp_a],
                source_nat: false,
                paths: Vec::new(),
            }],
            local_waypoints: (0..paths).map(wp_b).collect(),
            wayport_range: WayportRange::default(),
            wan_mtu: 1500,
            max_sessions,
            timeouts: SessionTimeouts::default(),
            enable_metadata_rate: 100,
        }
    };
    let sh = SvrShared::new(cfg).expect("config");
    let ka = || MetadataKey::new(1, &[0xa0; 32], &[0x10; 48]);
    let kb = || MetadataKey::new(1, &[0xb0; 32], &[0x40; 48]);
    if a {
        sh.keys.install_own(ka());
        for k in 0..paths {
            sh.keys.install_peer(k as _, kb());
        }
    } else {
        sh.keys.install_own(kb());
        sh.keys.install_peer(0, ka());
    }
    let w = SvrWorker::new(&sh, [if a { 1 } else { 2 }; 32]);
    (sh, w)
}

fn forward(v: Verdict, what: &str, i: usize) {
    if !matches!(v, Verdict::Forward { .. }) {
        eprintln!("error: session {i}: {what} gave {v:?}");
        std::process::exit(1);
    }
}

/// One batch through A as `svrd`'s worker runs a burst, `BURST` frames at a time: the SVR
/// stage of each packet (`lan_stage`, payload crypto deferred into `work`), then the crypto
/// of the whole burst (`finish_burst`), which writes the final verdicts. Allocates nothing:
/// `bufs`, `work` and `verdicts` are the caller's, of equal length.
fn lan_bursts(
    sh: &SvrShared,
    w: &mut SvrWorker,
    bufs: &mut [Option<TestBuffer>],
    work: &mut [Option<Deferred>],
    verdicts: &mut [Verdict],
    now: Instant,
) {
    for ((bufs, work), verdicts) in bufs
        .chunks_mut(BURST)
        .zip(work.chunks_mut(BURST))
        .zip(verdicts.chunks_mut(BURST))
    {
        for ((b, work), v) in bufs
            .iter_mut()
            .zip(work.iter_mut())
            .zip(verdicts.iter_mut())
        {
            *v = match b {
                Some(b) => ingress::lan_stage(sh, w, b, now, work),
                None => Verdict::Pending,
            };
        }
        finish_burst(sh, w, bufs, work, now, verdicts);
    }
}

/// Resident set size in bytes.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

fn datapath(sizes: &[usize], packets: usize, seed: u64, hz: f64) {
    for &s in sizes {
        let rss0 = rss();
        let paths = s.div_ceil(PER_PEER);
        let (sa, mut wa) = router(true, paths, s as u32);
        let (sb, mut wb) = router(false, paths, s as u32);
        let rss1 = rss();
        let mut f = [0u8; 64];
        let mut now = Instant::from_nanos(1_000_000_000);
        let w0 = WallClock::now();
        for i in 0..s {
            let (host, port) = tuple(i);
            frame(host, server(i), port, SERVER_PORT, &mut f);
            let mut b = TestBuffer::new(&f);
            forward(ingress::lan_packet(&sa, &mut wa, &mut b, now), "A lan", i);
            forward(egress::wan_packet(&sb, &mut wb, &mut b, now), "B wan", i);
            frame(server(i), host, SERVER_PORT, port, &mut f);
            let mut b = TestBuffer::new(&f);
            forward(ingress::lan_packet(&sb, &mut wb, &mut b, now), "B lan", i);
            forward(egress::wan_packet(&sa, &mut wa, &mut b, now), "A wan", i);
            if i % 1024 == 0 {
                now = Instant::from_nanos(now.as_nanos() + 1_000);
            }
        }
        let setup_s = w0.elapsed().as_secs_f64();
        let rss2 = rss();
        let tm = sa.table.memory();
        Line::new("growth")
            .kv("op", "setup")
            .kv("sessions", s)
            .kv("waypoint_pairs", sa.pairs().len())
            .kv("table_len", sa.table.len())
            .f("ns_per_session", setup_s * 1e9 / s as f64, 0)
            .f(
                "prealloc_b_per_session",
                (rss1 - rss0) as f64 / (2 * s) as f64,
                1,
            )
            .f(
                "rss_b_per_session",
                (rss2 - rss0) as f64 / (2 * s) as f64,
                1,
            )
            .f("table_b_per_session", sa.table.bytes_per_session(), 1)
            .kv("table_capacity", tm.capacity)
            .print();

        // One packet: no metadata any more.
        let (host, port) = tuple(0);
        frame(host, server(0), port, SERVER_PORT, &mut f);
        let mut b = TestBuffer::new(&f);
        forward(ingress::lan_packet(&sa, &mut wa, &mut b, now), "A lan", 0);
        let h = parse(b.data(), false).expect("WAN frame");
        let md = is_metadata(&b.data()[h.payload_start()..h.end()]);
        let wan_len = b.len();

        let mut rng = StdRng::seed_from_u64(seed ^ s as u64);
        // Allocated once; the timed bursts only write into them.
        let mut bufs: Vec<Option<TestBuffer>> = (0..BATCH).map(|_| None).collect();
        let mut work: Vec<Option<Deferred>> = (0..BATCH).map(|_| None).collect();
        let mut verdicts = vec![Verdict::Pending; BATCH];
        let batches = packets.div_ceil(BATCH).max(1);
        let mut fill = |bufs: &mut [Option<TestBuffer>], rng: &mut StdRng| {
            for b in bufs {
                let j = rng.gen_range(0..s);
                let (host, port) = tuple(j);
                frame(host, server(j), port, SERVER_PORT, &mut f);
                *b = Some(TestBuffer::new(&f));
            }
        };
        // Warm-up: a tenth of the batches (at least one).
        for _ in 0..(batches / 10).max(1) {
            fill(&mut bufs, &mut rng);
            lan_bursts(&sa, &mut wa, &mut bufs, &mut work, &mut verdicts, now);
        }
        let mut ticks = 0u64;
        let mut fwd = 0u64;
        let w0 = WallClock::now();
        for _ in 0..batches {
            fill(&mut bufs, &mut rng);
            now = Instant::from_nanos(now.as_nanos() + 100_000);
            let t0 = rdtsc();
            lan_bursts(&sa, &mut wa, &mut bufs, &mut work, &mut verdicts, now);
            ticks += rdtsc() - t0;
            // Not timed: every packet forwarded, every deferred packet finished.
            fwd += verdicts
                .iter()
                .filter(|v| matches!(v, Verdict::Forward { .. }))
                .count() as u64;
            if work.iter().any(Option::is_some) {
                eprintln!("error: {s} sessions: finish_burst left deferred work");
                std::process::exit(1);
            }
        }
        let wall = w0.elapsed().as_secs_f64();
        let n = (batches * BATCH) as u64;
        if fwd != n {
            eprintln!("error: {s} sessions: {fwd} of {n} packets forwarded");
            std::process::exit(1);
        }
        let ns = ns_per(ticks, n, hz);
        Line::new("growth")
            .kv("op", "datapath")
            .kv("sessions", s)
            .kv("packets", n)
            .kv("metadata", md)
            .kv("wan_frame_b", wan_len)
            .f("ns_per_pkt", ns, 1)
            .f("mpps", 1e3 / ns, 3)
            .f("cycles_per_pkt", ticks as f64 / n as f64, 0)
            .f("wall_s", wall, 2)
            .print();
    }
}

fn main() {
    let args = Args::from_env();
    let hz = setup("growth", &args);
    let seed = args.get_usize("seed", 5) as u64;
    let only = std::env::args()
        .skip_while(|a| a != "--only")
        .nth(1)
        .unwrap_or_default();
    if only != "datapath" {
        let peers = args.get_list("peers", &[1, 100, 1000]);
        let sim_secs = args.get_usize("sim-secs", 60).max(1) as u64;
        slowpath(&peers, sim_secs, seed, hz);
    }
    if only != "slowpath" {
        // What one session holds in each router, by part (compile-time sizes), so that the
        // memory figures can be read against them.
        Line::new("growth")
            .kv("op", "layout")
            .kv(
                "payload_key_b",
                std::mem::size_of::<svr_crypto::PayloadKey>(),
            )
            .kv(
                "session_key_b",
                std::mem::size_of::<fastpath::svr_path::SessionKey>(),
            )
            .kv(
                "session_crypto_b",
                std::mem::size_of::<fastpath::svr_path::SessionCrypto>(),
            )
            .kv(
                "replay_window_b",
                std::mem::size_of::<svr_crypto::ReplayWindow>(),
            )
            .print();
        let max = args.get_usize("max", 10_000_000);
        let avail = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemAvailable:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1024;
        let sizes: Vec<usize> = args
            .get_list("sessions", &[1_000, 100_000, 1_000_000, 10_000_000])
            .into_iter()
            .filter(|&n| {
                // About 3 KB per session and router (payload keys, table), 2 routers, room to spare.
                let keep = n <= max && n >= 1 && (n as u64) * 6_500 < avail;
                if !keep {
                    Line::new("growth")
                        .kv("op", "skipped")
                        .kv("sessions", n)
                        .kv("max", max)
                        .kv("mem_available_b", avail)
                        .print();
                }
                keep
            })
            .collect();
        let packets = args.get_usize("packets", 4_000_000);
        datapath(&sizes, packets, seed, hz);
    }
}
