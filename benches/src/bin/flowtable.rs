//! Session table lookups per core: a `SessionTable` filled to its capacity with N sessions
//! (two keys each), then random lookups of existing keys, one at a time (`lookup`) and in
//! bursts of 32 (`lookup_batch::<32>`), on one pinned core.
//!
//! ```text
//! flowtable [--sizes 1K,100K,1M,10M] [--max 10M] [--lookups 8M] [--seed 1] [--cpu 1]
//! ```
//!
//! Keys look like real traffic: LAN keys are IPv4 TCP/UDP 5-tuples from 10.0.0.0/8 clients to
//! random servers; WAN keys are peer waypoint → our waypoint with the odd/even wayports a
//! `WayportAllocator` would hand out in its unique-destination mode (`source-nat: true`: 24,575
//! sessions per waypoint pair, so 10M sessions use 407 peer addresses). The lookup array holds
//! all 2N keys, shuffled; `--lookups` lookups walk it (cycling for small N, a random sample for
//! large N) so every access goes to a random session.
//!
//! Output lines: `bench=flowtable op=insert|lookup|lookup_batch32 sessions=… mlookups_per_s=…
//! ns_per_lookup=… hits=…` and `bench=flowtable op=memory sessions=… overhead_b=… record_b=…
//! total_b=…` (bytes per session of capacity; `anon_huge_kb` is the process's memory on
//! transparent huge pages after the inserts, from `/proc/self/smaps_rollup`, so a run shows
//! whether the table got 2 MiB pages).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant as WallClock;

use fastpath::session::{FlowHasher, FlowKey, MetadataState, Role, SessionInit, SessionTable};
use fastpath::time::Instant;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use svr_benches::{ns_per, rdtsc, setup, Args, Line};

/// Sessions per waypoint pair with the default wayport range (16384–65534).
const PER_PAIR: usize = 24_575;

/// The LAN and WAN key of session `i` (`i` < 2^24 keeps every key distinct).
fn keys(i: usize, rng: &mut StdRng) -> (FlowKey, FlowKey) {
    let proto = if i % 4 == 0 { 17 } else { 6 };
    let client = Ipv4Addr::from(0x0a00_0000 | (i as u32 & 0x00ff_ffff));
    let server = Ipv4Addr::from(rng.gen::<u32>());
    let lan = FlowKey::v4(
        client,
        server,
        proto,
        rng.gen_range(1024..=65535),
        if proto == 6 { 443 } else { 53 },
    );
    let pair = (i / PER_PAIR) as u32;
    let slot = (i % PER_PAIR) as u16;
    let peer_wp = Ipv4Addr::from(0x6440_0000 | pair); // 100.64.0.0/10
    let our_wp = Ipv4Addr::new(192, 0, 2, 1);
    let dst_odd = 16385 + 2 * slot;
    // As the peer's reply arrives: peer waypoint:odd → our waypoint:even.
    let wan = FlowKey::v4(peer_wp, our_wp, proto, dst_odd, dst_odd - 1);
    (lan, wan)
}

fn init(i: usize) -> SessionInit {
    SessionInit {
        role: Role::Ingress,
        uuid: (i as u128).to_be_bytes(),
        payload_key_index: 0,
        key_handle: i as u32,
        replay_slot: i as u32,
        metadata: MetadataState::SendingForward { count: 0 },
    }
}

fn main() {
    let args = Args::from_env();
    let hz = setup("flowtable", &args);
    let max = args.get_usize("max", 10_000_000);
    let sizes: Vec<usize> = args
        .get_list("sizes", &[1_000, 100_000, 1_000_000, 10_000_000])
        .into_iter()
        .filter(|&n| {
            let keep = n <= max && (16..1 << 24).contains(&n);
            if !keep {
                Line::new("flowtable")
                    .kv("op", "skipped")
                    .kv("sessions", n)
                    .print();
            }
            keep
        })
        .collect();
    let lookups = args.get_usize("lookups", 8_000_000);
    let seed = args.get_usize("seed", 1) as u64;

    for &n in &sizes {
        let mut rng = StdRng::seed_from_u64(seed ^ n as u64);
        let table = SessionTable::with_hasher(n as u32, FlowHasher::with_seed(seed));
        let mut all = Vec::with_capacity(2 * n);
        for i in 0..n {
            let (l, w) = keys(i, &mut rng);
            all.push(l);
            all.push(w);
        }
        // Insert rate, for the record (single thread, empty table to full).
        let now = Instant::from_nanos(1_000_000_000);
        let t0 = rdtsc();
        for (i, pair) in all.chunks_exact(2).enumerate() {
            table
                .insert(pair[0], pair[1], init(i), now)
                .expect("distinct keys, capacity n");
        }
        let ins = rdtsc() - t0;
        let ns = ns_per(ins, n as u64, hz);
        Line::new("flowtable")
            .kv("op", "insert")
            .kv("sessions", n)
            .f("ns_per_insert", ns, 1)
            .f("minserts_per_s", 1e3 / ns, 3)
            .print();

        let m = table.memory();
        Line::new("flowtable")
            .kv("op", "memory")
            .kv("sessions", n)
            .kv("capacity", m.capacity)
            .kv("index_bytes", m.index_bytes)
            .kv("free_list_bytes", m.free_list_bytes)
            .kv("record_bytes", m.record_bytes)
            .f("overhead_b", m.overhead_per_session(), 1)
            .f("record_b", m.record_per_session(), 1)
            .f("total_b", table.bytes_per_session(), 1)
            .kv("anon_huge_kb", anon_huge_kb().map_or(-1, |kb| kb as i64))
            .print();

        all.shuffle(&mut rng);
        let batch_len = all.len() / 32 * 32;
        // Cycles through the shuffled array when it is shorter than `lookups`, else a random
        // sample of it: either way every lookup goes to a random session.
        let n_lookups = lookups.max(32).div_ceil(32) * 32;

        // Warm-up: one pass (caches, TLB, page faults already taken by the inserts).
        let mut sink = 0u64;
        for k in all.iter().take(n_lookups.min(1_000_000)) {
            sink ^= table.lookup(k).map_or(0, |r| u64::from(r.id.index));
        }

        // Single lookups.
        let mut hits = 0u64;
        let w0 = WallClock::now();
        let t0 = rdtsc();
        for k in all.iter().cycle().take(n_lookups) {
            if let Some(r) = table.lookup(k) {
                hits += 1;
                sink ^= u64::from(r.id.index);
            }
        }
        let t = rdtsc() - t0;
        let wall = w0.elapsed().as_secs_f64();
        report("lookup", n, n_lookups, hits, t, wall, hz);

        // Bursts of 32.
        let mut out = [None; 32];
        let mut hits = 0u64;
        let w0 = WallClock::now();
        let t0 = rdtsc();
        for chunk in all[..batch_len]
            .chunks_exact(32)
            .cycle()
            .take(n_lookups / 32)
        {
            let keys: &[FlowKey; 32] = chunk.try_into().expect("chunks_exact(32)");
            table.lookup_batch(keys, &mut out);
            for r in out.iter().flatten() {
                hits += 1;
                sink ^= u64::from(r.id.index);
            }
        }
        let t = rdtsc() - t0;
        let wall = w0.elapsed().as_secs_f64();
        report("lookup_batch32", n, n_lookups, hits, t, wall, hz);
        black_box(sink);
    }
}

/// `AnonHugePages` of this process in KiB (Linux), `None` where it cannot be read.
fn anon_huge_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let line = s.lines().find(|l| l.starts_with("AnonHugePages:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn report(op: &str, n: usize, lookups: usize, hits: u64, ticks: u64, wall: f64, hz: f64) {
    if hits != lookups as u64 {
        eprintln!("error: {op} at {n} sessions found {hits} of {lookups} keys");
        std::process::exit(1);
    }
    let ns = ns_per(ticks, lookups as u64, hz);
    Line::new("flowtable")
        .kv("op", op)
        .kv("sessions", n)
        .kv("lookups", lookups)
        .kv("hits", hits)
        .f("ns_per_lookup", ns, 2)
        .f("mlookups_per_s", 1e3 / ns, 3)
        .f("cycles_per_lookup", ticks as f64 / lookups as f64, 1)
        .f("wall_s", wall, 3)
        .print();
}
