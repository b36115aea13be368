use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::*;
use crate::time::Instant;

/// SplitMix64: a small deterministic generator for the randomized tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

fn secs(s: u64) -> Instant {
    Instant::from_nanos(s * 1_000_000_000)
}

/// LAN key of session `n`: client 10.x.y.z:port → server 192.0.2.1:443.
fn lan(n: u32, proto: u8) -> FlowKey {
    FlowKey::v4(
        Ipv4Addr::from(0x0a00_0000 | (n >> 8)),
        Ipv4Addr::new(192, 0, 2, 1),
        proto,
        1024 + (n & 0xff) as u16,
        443,
    )
}

/// WAN key of session `n` (as the peer's packets arrive): peer wp → our wp.
fn wan(n: u32, proto: u8) -> FlowKey {
    let d = 16385 + 2 * (n % 24575) as u16;
    FlowKey::v4(
        Ipv4Addr::new(203, 0, 113, 2),
        Ipv4Addr::from(0xc633_6400 | (n / 24575)), // 198.51.100.x
        proto,
        d,
        d - 1,
    )
}

fn init(n: u32) -> SessionInit {
    SessionInit {
        role: Role::Ingress,
        uuid: (u128::from(n) << 64 | 0xabcd).to_be_bytes(),
        payload_key_index: n as u8,
        key_handle: n,
        replay_slot: n.wrapping_mul(3),
        metadata: MetadataState::SendingForward { count: 0 },
    }
}

fn table(cap: u32) -> SessionTable {
    SessionTable::with_hasher(cap, FlowHasher::with_seed(7))
}

// ---- keys and hash --------------------------------------------------------------------

#[test]
fn flow_key_fields_and_reverse() {
    let k = FlowKey::v4(
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        TCP,
        1234,
        80,
    );
    assert_eq!(k.src(), Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(k.dst(), Ipv4Addr::new(10, 0, 0, 2));
    assert_eq!((k.proto(), k.src_port(), k.dst_port()), (TCP, 1234, 80));
    assert!(!k.is_ipv6());
    let r = k.reversed();
    assert_eq!((r.src(), r.dst()), (k.dst(), k.src()));
    assert_eq!((r.src_port(), r.dst_port(), r.proto()), (80, 1234, TCP));
    assert_eq!(r.reversed(), k);
    assert_eq!(format!("{k:?}"), "proto 6 10.0.0.1:1234 -> 10.0.0.2:80");

    let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let b: Ipv6Addr = "2001:db8:ffff::2".parse().unwrap();
    let k6 = FlowKey::v6(a, b, UDP, 5000, 53);
    assert!(k6.is_ipv6());
    assert_eq!((k6.src(), k6.dst()), (a.into(), b.into()));
    assert_eq!(k6.reversed().reversed(), k6);
    assert_eq!(
        format!("{k6:?}"),
        "proto 17 [2001:db8::1]:5000 -> [2001:db8:ffff::2]:53"
    );

    // An IPv4 key never equals the IPv4-compatible or -mapped IPv6 key.
    let v4 = FlowKey::v4(
        Ipv4Addr::new(1, 2, 3, 4),
        Ipv4Addr::new(5, 6, 7, 8),
        UDP,
        1,
        2,
    );
    let compat = FlowKey::v6(
        Ipv4Addr::new(1, 2, 3, 4).to_ipv6_compatible(),
        Ipv4Addr::new(5, 6, 7, 8).to_ipv6_compatible(),
        UDP,
        1,
        2,
    );
    assert_ne!(v4, compat);
    assert_eq!(
        FlowKey::new(a.into(), Ipv4Addr::LOCALHOST.into(), UDP, 1, 2),
        None
    );
    assert_eq!(
        FlowKey::new(
            Ipv4Addr::new(1, 2, 3, 4).into(),
            Ipv4Addr::new(5, 6, 7, 8).into(),
            UDP,
            1,
            2
        ),
        Some(v4)
    );
}

#[test]
fn hash_spreads_sequential_flows_and_depends_on_seed() {
    let h = FlowHasher::with_seed(1);
    let buckets = 1024u64;
    let mut counts = vec![0u32; buckets as usize];
    let mut tags = HashSet::new();
    let n = 200_000u32;
    for i in 0..n {
        let x = h.hash(&lan(i, UDP));
        counts[(((x >> 32) * buckets) >> 32) as usize] += 1;
        tags.insert(x as u32);
    }
    let mean = f64::from(n) / buckets as f64; // ≈ 195
    let (min, max) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
    // Poisson(195): ±6σ ≈ ±84.
    assert!(
        f64::from(min) > mean - 84.0 && f64::from(max) < mean + 84.0,
        "{min} {max}"
    );
    // 200k 32-bit tags: about 5 collisions expected.
    assert!(tags.len() > n as usize - 50);
    let other = FlowHasher::with_seed(2);
    assert_ne!(h.hash(&lan(1, UDP)), other.hash(&lan(1, UDP)));
    assert_ne!(
        FlowHasher::random().hash(&lan(1, UDP)),
        FlowHasher::random().hash(&lan(1, UDP))
    );
}

// ---- single-thread semantics ----------------------------------------------------------

#[test]
fn insert_and_lookup_by_both_keys() {
    let t = table(16);
    let now = secs(5);
    let id = t.insert(lan(1, TCP), wan(1, TCP), init(1), now).unwrap();
    assert_eq!(t.len(), 1);

    let l = t.lookup(&lan(1, TCP)).unwrap();
    assert_eq!(l.id, id);
    assert_eq!(l.side, Side::Lan);
    assert_eq!(l.rewrite(), wan(1, TCP).reversed());
    assert_eq!((l.lan_key, l.wan_key), (lan(1, TCP), wan(1, TCP)));
    assert_eq!(
        (l.key_handle, l.replay_slot, l.payload_key_index),
        (1, 3, 1)
    );
    assert_eq!(l.role, Role::Ingress);
    assert_eq!(l.metadata, MetadataState::SendingForward { count: 0 });
    assert_eq!(l.tcp, TcpFlags::SEEN_LAN);

    let w = t.lookup(&wan(1, TCP)).unwrap();
    assert_eq!((w.id, w.side), (id, Side::Wan));
    assert_eq!(w.rewrite(), lan(1, TCP).reversed());

    // Keys are directional and protocol-specific.
    assert_eq!(t.lookup(&lan(1, TCP).reversed()), None);
    assert_eq!(t.lookup(&lan(1, UDP)), None);
    assert_eq!(t.lookup(&lan(2, TCP)), None);

    assert_eq!(t.get(id, Side::Wan), Some(w));
    assert_eq!(t.uuid(id), Some(init(1).uuid));
    t.check_index();
}

#[test]
fn session_at_walks_live_entries_only() {
    let t = table(8);
    let a = t
        .insert(lan(1, UDP), wan(1, UDP), init(1), secs(1))
        .unwrap();
    let b = t
        .insert(lan(2, TCP), wan(2, TCP), init(2), secs(2))
        .unwrap();
    assert!(t.remove(a));
    let live: Vec<_> = (0..t.capacity() as u32)
        .filter_map(|i| t.session_at(i))
        .collect();
    assert_eq!(live.len(), 1);
    let v = live[0];
    assert_eq!(v.session.id, b);
    assert_eq!(
        (v.session.lan_key, v.session.wan_key),
        (lan(2, TCP), wan(2, TCP))
    );
    assert_eq!(v.uuid, init(2).uuid);
    assert_eq!((v.created_ms, v.last_seen_ms), (2000, 2000));
    assert_eq!(
        (v.packets, v.bytes, v.guard_start_ms),
        ([0; 2], [0; 2], None)
    );
    assert_eq!(t.session_at(t.capacity() as u32), None);
}

#[test]
fn touch_counts_packets_and_bytes_per_direction() {
    let t = table(4);
    let id = t
        .insert(lan(1, UDP), wan(1, UDP), init(1), secs(10))
        .unwrap();
    // Three forward packets from the LAN (the ingress's forward side), two replies.
    for len in [100, 200, 300] {
        assert!(t.touch(id, Side::Lan, secs(11), len));
    }
    for len in [40, 60] {
        assert!(t.touch(id, Side::Wan, secs(12), len));
    }
    let v = t.session_at(id.index).unwrap();
    assert_eq!((v.packets, v.bytes), ([3, 2], [600, 100]));
    assert_eq!(v.forward_side(), Side::Lan);
    assert_eq!((v.forward(), v.reverse()), ((3, 600), (2, 100)));
    assert_eq!((v.created_ms, v.last_seen_ms), (10_000, 12_000));

    // At the egress the forward packets arrive from the WAN.
    let egress = SessionInit {
        role: Role::Egress,
        metadata: MetadataState::SendingReverse,
        ..init(2)
    };
    let e = t
        .insert(lan(2, UDP), wan(2, UDP), egress, secs(20))
        .unwrap();
    t.touch(e, Side::Wan, secs(20), 1000);
    t.touch(e, Side::Lan, secs(21), 10);
    let v = t.session_at(e.index).unwrap();
    assert_eq!(v.forward_side(), Side::Wan);
    assert_eq!((v.forward(), v.reverse()), ((1, 1000), (1, 10)));

    // A stale id counts nothing, and a new session on the same entry starts from zero.
    assert!(t.remove(id));
    assert!(!t.touch(id, Side::Lan, secs(30), 500));
    let n = t
        .insert(lan(3, UDP), wan(3, UDP), init(3), secs(31))
        .unwrap();
    assert_eq!(n.index, id.index);
    let v = t.session_at(n.index).unwrap();
    assert_eq!((v.packets, v.bytes, v.created_ms), ([0; 2], [0; 2], 31_000));
}

#[test]
fn counters_from_concurrent_directions_are_exact() {
    // One writer per direction (as RSS gives the data path): nothing is lost.
    let t = Arc::new(table(2));
    let id = t
        .insert(lan(1, UDP), wan(1, UDP), init(1), secs(1))
        .unwrap();
    let threads: Vec<_> = [Side::Lan, Side::Wan]
        .into_iter()
        .map(|side| {
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                for _ in 0..100_000 {
                    assert!(t.touch(id, side, secs(2), 64));
                }
            })
        })
        .collect();
    for h in threads {
        h.join().unwrap();
    }
    let v = t.session_at(id.index).unwrap();
    assert_eq!((v.packets, v.bytes), ([100_000; 2], [6_400_000; 2]));
}

#[test]
fn timeout_and_time_left_of_a_session() {
    let t = table(4);
    let to = SessionTimeouts::default();
    let u = t
        .insert(lan(1, UDP), wan(1, UDP), init(1), secs(100))
        .unwrap();
    t.touch(u, Side::Lan, secs(110), 64);
    let v = t.session_at(u.index).unwrap();
    assert_eq!(to.timeout_of(&v), Duration::from_secs(60));
    assert_eq!(to.remaining_ms(&v, 125_000), 45_000);
    assert_eq!(to.remaining_ms(&v, 200_000), 0);

    let c = t
        .insert(lan(2, TCP), wan(2, TCP), init(2), secs(100))
        .unwrap();
    let v = t.session_at(c.index).unwrap();
    assert_eq!(to.timeout_of(&v), Duration::from_secs(30)); // half open
    t.touch(c, Side::Wan, secs(101), 64);
    let v = t.session_at(c.index).unwrap();
    assert_eq!(to.timeout_of(&v), Duration::from_secs(1800));
    t.mark_fin(c, Side::Lan, secs(102));
    t.mark_fin(c, Side::Wan, secs(103));
    let v = t.session_at(c.index).unwrap();
    assert_eq!(v.guard_start_ms, Some(103_000));
    assert_eq!(to.timeout_of(&v), Duration::from_secs(10));
    assert_eq!(to.remaining_ms(&v, 105_000), 8_000);
}

#[test]
fn remove_reinsert_and_stale_ids() {
    let t = table(4);
    let now = secs(1);
    let id = t.insert(lan(1, UDP), wan(1, UDP), init(1), now).unwrap();
    assert!(t.remove(id));
    assert!(t.is_empty());
    assert_eq!(t.lookup(&lan(1, UDP)), None);
    assert_eq!(t.lookup(&wan(1, UDP)), None);
    // Every operation on the stale id does nothing.
    assert!(!t.remove(id));
    assert!(!t.touch(id, Side::Lan, now, 0));
    assert_eq!(t.get(id, Side::Lan), None);
    assert_eq!(t.uuid(id), None);
    assert_eq!(t.next_tx_seq(id, Side::Wan), None);
    assert_eq!(t.mark_fin(id, Side::Lan, now), None);
    assert_eq!(t.mark_rst(id, now), None);
    assert_eq!(t.update_metadata(id, |_| MetadataState::Established), None);

    // The entry is reused with a new generation; the old id still does nothing.
    let id2 = t.insert(lan(2, UDP), wan(2, UDP), init(2), now).unwrap();
    assert_eq!(id2.index, id.index);
    assert_ne!(id2.generation, id.generation);
    assert!(!t.remove(id));
    assert_eq!(t.next_tx_seq(id, Side::Wan), None);
    assert_eq!(t.lookup(&lan(2, UDP)).unwrap().id, id2);
    // Same keys again after removal: fine.
    let id3 = t.insert(lan(1, UDP), wan(1, UDP), init(1), now).unwrap();
    assert_eq!(t.lookup(&wan(1, UDP)).unwrap().id, id3);
    assert_eq!(t.len(), 2);
    t.check_index();
}

#[test]
fn full_at_capacity_keeps_old_sessions() {
    let t = table(8);
    let now = secs(1);
    let ids: Vec<_> = (0..8)
        .map(|i| t.insert(lan(i, UDP), wan(i, UDP), init(i), now).unwrap())
        .collect();
    assert_eq!(
        t.insert(lan(100, UDP), wan(100, UDP), init(100), now),
        Err(InsertError::Full)
    );
    for i in 0..8 {
        assert_eq!(t.lookup(&lan(i, UDP)).unwrap().id, ids[i as usize]);
        assert_eq!(t.lookup(&wan(i, UDP)).unwrap().id, ids[i as usize]);
    }
    assert_eq!(t.lookup(&lan(100, UDP)), None);
    assert!(t.remove(ids[3]));
    let id = t
        .insert(lan(100, UDP), wan(100, UDP), init(100), now)
        .unwrap();
    assert_eq!(id.index, ids[3].index);
    t.check_index();

    let empty = table(0);
    assert_eq!(
        empty.insert(lan(1, UDP), wan(1, UDP), init(1), now),
        Err(InsertError::Full)
    );
    assert_eq!(empty.lookup(&lan(1, UDP)), None);
}

#[test]
fn exists_for_either_key_and_costs_nothing() {
    let t = table(2);
    let now = secs(1);
    t.insert(lan(1, UDP), wan(1, UDP), init(1), now).unwrap();
    let e = Err(InsertError::Exists);
    assert_eq!(t.insert(lan(1, UDP), wan(2, UDP), init(2), now), e);
    assert_eq!(t.insert(lan(2, UDP), wan(1, UDP), init(2), now), e);
    // One session's WAN key as another's LAN key: one 5-tuple maps to one session.
    assert_eq!(t.insert(wan(1, UDP), wan(2, UDP), init(2), now), e);
    assert_eq!(t.insert(lan(2, UDP), lan(2, UDP), init(2), now), e);
    assert_eq!(t.len(), 1);
    // The refused inserts used no capacity and left no index entries.
    t.insert(lan(2, UDP), wan(2, UDP), init(2), now).unwrap();
    t.check_index();
    assert_eq!(InsertError::Full.to_string(), "session_table_full");
    assert_eq!(InsertError::ALL.map(|e| e as usize), [0, 1]);
}

#[test]
fn ipv6_sessions() {
    let t = table(4);
    let now = secs(1);
    let c: Ipv6Addr = "2001:db8:1::10".parse().unwrap();
    let s: Ipv6Addr = "2001:db8:2::20".parse().unwrap();
    let our: Ipv6Addr = "2001:db8:a::1".parse().unwrap();
    let peer: Ipv6Addr = "2001:db8:b::1".parse().unwrap();
    let l = FlowKey::v6(c, s, TCP, 40000, 443);
    let w = FlowKey::v6(peer, our, TCP, 16385, 16384);
    let id = t.insert(l, w, init(9), now).unwrap();
    let hit = t.lookup(&l).unwrap();
    assert_eq!(hit.id, id);
    assert_eq!(hit.rewrite(), FlowKey::v6(our, peer, TCP, 16384, 16385));
    assert_eq!(
        t.lookup(&w).unwrap().rewrite(),
        FlowKey::v6(s, c, TCP, 443, 40000)
    );
    // A v4 session next to it.
    t.insert(lan(1, TCP), wan(1, TCP), init(1), now).unwrap();
    assert_eq!(t.lookup(&l).unwrap().id, id);
    t.check_index();
}

#[test]
fn every_key_in_one_bucket_with_one_tag() {
    // The degenerate hasher sends all keys to bucket 0 with tag 0: every lookup compares
    // full keys along one long overflow chain.
    let cap = 40;
    let t = SessionTable::with_hasher(cap, FlowHasher::degenerate());
    let now = secs(1);
    let ids: Vec<_> = (0..cap)
        .map(|i| t.insert(lan(i, UDP), wan(i, UDP), init(i), now).unwrap())
        .collect();
    t.check_index();
    for i in 0..cap {
        assert_eq!(t.lookup(&lan(i, UDP)).unwrap().id, ids[i as usize]);
        assert_eq!(t.lookup(&wan(i, UDP)).unwrap().side, Side::Wan);
    }
    assert_eq!(t.lookup(&lan(1000, UDP)), None);
    for i in (0..cap).step_by(2) {
        assert!(t.remove(ids[i as usize]));
    }
    t.check_index();
    for i in 0..cap {
        assert_eq!(t.lookup(&lan(i, UDP)).is_some(), i % 2 == 1);
    }
    for i in (0..cap).step_by(2) {
        t.insert(lan(i + 1000, UDP), wan(i + 1000, UDP), init(i), now)
            .unwrap();
    }
    t.check_index();
    for i in (1..cap).step_by(2) {
        assert!(t.remove(t.lookup(&lan(i, UDP)).unwrap().id));
    }
    for i in (0..cap).step_by(2) {
        assert!(t.remove(t.lookup(&wan(i + 1000, UDP)).unwrap().id));
    }
    assert_eq!(t.check_index(), 0);
}

/// Random operations against a `HashMap` model on small tables (lots of overflow and reuse),
/// checking the index structure as it goes.
#[test]
fn random_operations_match_a_model() {
    for (cap, hasher) in [
        (3, FlowHasher::with_seed(1)),
        (17, FlowHasher::with_seed(2)),
        (64, FlowHasher::with_seed(3)),
        (12, FlowHasher::degenerate()),
    ] {
        let t = SessionTable::with_hasher(cap, hasher);
        let mut rng = Rng(u64::from(cap));
        let mut model: HashMap<u32, SessionId> = HashMap::new();
        let now = secs(1);
        for step in 0..20_000 {
            let n = rng.below(u64::from(cap) * 3) as u32;
            match rng.below(3) {
                0 => match t.insert(lan(n, UDP), wan(n, UDP), init(n), now) {
                    Ok(id) => assert!(model.insert(n, id).is_none()),
                    Err(InsertError::Exists) => assert!(model.contains_key(&n)),
                    Err(InsertError::Full) => {
                        assert!(!model.contains_key(&n));
                        assert_eq!(model.len(), cap as usize);
                    }
                },
                1 => {
                    if let Some(id) = model.remove(&n) {
                        assert!(t.remove(id));
                        assert!(!t.remove(id));
                    }
                }
                _ => {
                    let got = t.lookup(&wan(n, UDP)).map(|r| r.id);
                    assert_eq!(got, model.get(&n).copied());
                }
            }
            assert_eq!(t.len(), model.len());
            if step % 997 == 0 {
                t.check_index();
            }
        }
        for id in model.values() {
            assert!(t.remove(*id));
        }
        assert_eq!(t.check_index(), 0);
    }
}

#[test]
fn lookup_batch_matches_lookup() {
    let t = table(1000);
    let now = secs(1);
    for i in 0..500 {
        t.insert(lan(i, UDP), wan(i, UDP), init(i), now).unwrap();
    }
    let keys: [FlowKey; 32] = core::array::from_fn(|i| {
        let n = (i as u32) * 37;
        if i % 2 == 0 {
            lan(n, UDP)
        } else {
            wan(n, UDP)
        }
    });
    let mut out = [None; 32];
    t.lookup_batch(&keys, &mut out);
    for (k, o) in keys.iter().zip(&out) {
        assert_eq!(*o, t.lookup(k));
    }
    assert!(out.iter().filter(|o| o.is_some()).count() >= 14);
}

/// `lookup_batch` against `lookup` where its shortcut (the first tag match of the home bucket)
/// is usually wrong: every key with one tag in one bucket, removed entries, misses; and on a
/// table big enough for its arena to be a huge-page mapping.
#[test]
fn lookup_batch_with_collisions_removals_and_misses() {
    let t = SessionTable::with_hasher(40, FlowHasher::degenerate());
    let now = secs(1);
    let ids: Vec<_> = (0..40)
        .map(|i| t.insert(lan(i, UDP), wan(i, UDP), init(i), now).unwrap())
        .collect();
    for i in (0..40).step_by(3) {
        assert!(t.remove(ids[i as usize]));
    }
    let keys: [FlowKey; 64] = core::array::from_fn(|i| match i % 3 {
        0 => lan(i as u32, UDP),
        1 => wan(i as u32 / 2, UDP),
        _ => lan(1000 + i as u32, UDP), // never inserted
    });
    let mut out = [None; 64];
    t.lookup_batch(&keys, &mut out);
    for (k, o) in keys.iter().zip(&out) {
        assert_eq!(*o, t.lookup(k));
    }
    assert!(out.iter().any(|o| o.is_some()));

    let n = 20_000;
    let t = table(n);
    assert!(SessionTable::RECORD_BYTES * n as usize > 2 << 20);
    for i in 0..n {
        t.insert(lan(i, TCP), wan(i, TCP), init(i), now).unwrap();
    }
    let mut out = [None; 32];
    for base in (0..n + 64).step_by(32) {
        let keys: [FlowKey; 32] = core::array::from_fn(|j| {
            let i = base + j as u32;
            if j % 2 == 0 {
                lan(i, TCP)
            } else {
                wan(i, TCP)
            }
        });
        t.lookup_batch(&keys, &mut out);
        for (j, (k, o)) in keys.iter().zip(&out).enumerate() {
            let i = base + j as u32;
            assert_eq!(o.map(|s| s.id.index), (i < n).then_some(i), "key {k:?}");
            assert_eq!(*o, t.lookup(k));
        }
    }
    t.check_index();
}

#[test]
fn metadata_state_and_tx_sequence() {
    let t = table(2);
    let id = t
        .insert(lan(1, UDP), wan(1, UDP), init(1), secs(1))
        .unwrap();
    // The UDP rule of §1.4: at most 11 packets with metadata, then wait.
    let step = |m| match m {
        MetadataState::SendingForward { count } if count + 1 >= 11 => {
            MetadataState::AwaitingReverse
        }
        MetadataState::SendingForward { count } => {
            MetadataState::SendingForward { count: count + 1 }
        }
        m => m,
    };
    for i in 0..10u8 {
        let (old, new) = t.update_metadata(id, step).unwrap();
        assert_eq!(old, MetadataState::SendingForward { count: i });
        assert_eq!(new, MetadataState::SendingForward { count: i + 1 });
    }
    assert_eq!(
        t.update_metadata(id, step).unwrap().1,
        MetadataState::AwaitingReverse
    );
    assert_eq!(
        t.lookup(&lan(1, UDP)).unwrap().metadata,
        MetadataState::AwaitingReverse
    );
    for m in [
        MetadataState::SendingReverse,
        MetadataState::Established,
        MetadataState::SendingForward { count: 255 },
    ] {
        t.update_metadata(id, |_| m).unwrap();
        assert_eq!(t.get(id, Side::Lan).unwrap().metadata, m);
    }
    // Updates leave the other state bits alone.
    let r = t.get(id, Side::Lan).unwrap();
    assert_eq!(
        (r.role, r.payload_key_index, r.tcp),
        (Role::Ingress, 1, TcpFlags::SEEN_LAN)
    );

    assert_eq!(t.next_tx_seq(id, Side::Wan), Some(0));
    assert_eq!(t.next_tx_seq(id, Side::Wan), Some(1));
    assert_eq!(t.next_tx_seq(id, Side::Lan), Some(0));
    // A new session on the same entry starts again at 0.
    assert!(t.remove(id));
    let id = t
        .insert(lan(1, UDP), wan(1, UDP), init(1), secs(1))
        .unwrap();
    assert_eq!(t.next_tx_seq(id, Side::Wan), Some(0));
}

#[test]
fn memory_numbers() {
    assert_eq!(SessionTable::RECORD_BYTES, 128);
    // Apart from the hot record: UUID + creation time 24 B, counters 32 B.
    for cap in [1_000u32, 1_000_000] {
        let t = table(cap);
        let m = t.memory();
        // Index: 2 entries per session at ≤ 70 % of 7-slot 64-byte buckets ≈ 26.1 B.
        let index = m.index_bytes as f64 / f64::from(cap);
        assert!((26.0..26.3).contains(&index), "{index}");
        assert!(
            m.overhead_per_session() <= 31.0,
            "{}",
            m.overhead_per_session()
        );
        assert_eq!(m.record_per_session(), 184.0);
        assert!((t.bytes_per_session() - m.total_per_session()).abs() < 1e-9);
        assert!(m.total_per_session() < 215.0);
    }
}

// ---- timeouts ---------------------------------------------------------------------------

fn sweep_all(t: &SessionTable, now: Instant) -> usize {
    Sweeper::new(SessionTimeouts::default()).sweep(t, now, t.capacity())
}

#[test]
fn idle_timeouts_per_protocol() {
    let cases = [
        (UDP, 60),
        (ICMP, 10),
        (58, 10),  // ICMPv6
        (TCP, 30), // half-open: only the LAN side seen
        (47, 60),  // GRE: "other"
    ];
    for (proto, timeout) in cases {
        let t = table(2);
        let id = t
            .insert(lan(1, proto), wan(1, proto), init(1), secs(100))
            .unwrap();
        assert_eq!(
            sweep_all(&t, secs(100 + timeout) - Duration::from_millis(1)),
            0,
            "{proto}"
        );
        assert!(t.touch(id, Side::Lan, secs(100 + timeout / 2), 0));
        assert_eq!(sweep_all(&t, secs(100 + timeout)), 0, "{proto}");
        assert_eq!(
            sweep_all(&t, secs(100 + timeout / 2 + timeout)),
            1,
            "{proto}"
        );
        assert!(t.lookup(&lan(1, proto)).is_none());
    }
}

#[test]
fn tcp_established_after_both_sides_and_egress_role() {
    let t = table(2);
    let id = t
        .insert(lan(1, TCP), wan(1, TCP), init(1), secs(0))
        .unwrap();
    assert!(t.touch(id, Side::Wan, secs(1), 0));
    assert_eq!(
        t.get(id, Side::Lan).unwrap().tcp,
        TcpFlags::SEEN_LAN.union(TcpFlags::SEEN_WAN)
    );
    assert_eq!(sweep_all(&t, secs(1800)), 0);
    assert_eq!(sweep_all(&t, secs(1801)), 1);

    // At the egress the first packet came from the WAN; the LAN answer establishes it.
    let egress = SessionInit {
        role: Role::Egress,
        metadata: MetadataState::SendingReverse,
        ..init(2)
    };
    let id = t.insert(lan(2, TCP), wan(2, TCP), egress, secs(0)).unwrap();
    let r = t.get(id, Side::Wan).unwrap();
    assert_eq!((r.role, r.tcp), (Role::Egress, TcpFlags::SEEN_WAN));
    assert_eq!(sweep_all(&t, secs(30)), 1);
    let id = t.insert(lan(2, TCP), wan(2, TCP), egress, secs(0)).unwrap();
    t.touch(id, Side::Lan, secs(0), 0);
    assert_eq!(sweep_all(&t, secs(30)), 0);
}

#[test]
fn touch_ignores_time_going_backwards_and_sub_millisecond_steps() {
    let t = table(1);
    let id = t
        .insert(lan(1, UDP), wan(1, UDP), init(1), secs(10))
        .unwrap();
    t.touch(id, Side::Lan, secs(20), 0);
    t.touch(id, Side::Lan, secs(15), 0); // another worker's slightly older clock
    assert_eq!(sweep_all(&t, secs(79)), 0);
    assert_eq!(sweep_all(&t, secs(80)), 1);
}

#[test]
fn fin_both_ways_and_rst_start_the_guard_timer() {
    let t = table(4);
    let est = |t: &SessionTable, n| {
        let id = t
            .insert(lan(n, TCP), wan(n, TCP), init(n), secs(0))
            .unwrap();
        t.touch(id, Side::Wan, secs(0), 0);
        id
    };
    // FIN one way: still the established timeout.
    let a = est(&t, 1);
    let f = t.mark_fin(a, Side::Lan, secs(100)).unwrap();
    assert!(f.contains(TcpFlags::FIN_LAN) && !f.closing());
    // FIN both ways: 10 s from the second FIN, whatever packets follow.
    let b = est(&t, 2);
    t.mark_fin(b, Side::Wan, secs(100)).unwrap();
    assert!(t.mark_fin(b, Side::Lan, secs(105)).unwrap().closing());
    t.touch(b, Side::Lan, secs(110), 0); // last ACK
    t.mark_fin(b, Side::Lan, secs(112)); // a retransmitted FIN does not restart the timer
                                         // RST: 10 s from the RST.
    let c = est(&t, 3);
    assert!(t.mark_rst(c, secs(200)).unwrap().contains(TcpFlags::RST));

    let mut sw = Sweeper::new(SessionTimeouts::default());
    assert_eq!(sw.sweep(&t, secs(114), 4), 0);
    assert_eq!(sw.sweep(&t, secs(115), 4), 1);
    assert_eq!(t.get(b, Side::Lan), None);
    assert_eq!(sw.sweep(&t, secs(209), 4), 0);
    assert_eq!(sw.sweep(&t, secs(210), 4), 1);
    assert_eq!(t.get(c, Side::Lan), None);
    assert!(t.get(a, Side::Lan).is_some());
    // §1.7: a new SYN during the guard period replaces the session at once.
    let d = est(&t, 4);
    t.mark_rst(d, secs(300));
    assert_eq!(
        t.insert(lan(4, TCP), wan(4, TCP), init(4), secs(301)),
        Err(InsertError::Exists)
    );
    let hit = t.lookup(&lan(4, TCP)).unwrap();
    assert!(hit.tcp.closing());
    assert!(t.remove(hit.id));
    t.insert(lan(4, TCP), wan(4, TCP), init(4), secs(301))
        .unwrap();
}

#[test]
fn sweeper_examines_at_most_its_budget() {
    let t = table(100);
    for i in 0..100 {
        t.insert(lan(i, UDP), wan(i, UDP), init(i), secs(0))
            .unwrap();
    }
    let mut sw = Sweeper::new(SessionTimeouts::default());
    let late = secs(1000);
    for call in 1..=10 {
        assert_eq!(sw.sweep(&t, late, 10), 10);
        assert_eq!(t.len(), 100 - 10 * call);
        assert_eq!(sw.cursor(), 10 * call);
    }
    assert_eq!(sw.sweep(&t, late, 1000), 0);
    assert_eq!(sw.cursor(), 100);
    assert_eq!(sw.sweep(&t, late, 0), 0);
    assert_eq!(
        Sweeper::budget_for(
            1_000_000,
            Duration::from_millis(10),
            Duration::from_secs(10)
        ),
        1000
    );
    assert_eq!(
        Sweeper::budget_for(10, Duration::from_millis(1), Duration::from_secs(10)),
        1
    );
    assert_eq!(
        Sweeper::budget_for(10, Duration::from_secs(100), Duration::from_secs(10)),
        10
    );
}

/// Ten simulated days of session churn, one step per 10 simulated seconds: memory stays bounded
/// (the table never fills, the live count has a steady-state ceiling) and the index ends
/// clean.
#[test]
fn ten_days_of_churn() {
    let cap = 1024;
    let t = table(cap);
    let timeouts = SessionTimeouts::default();
    let mut sw = Sweeper::new(timeouts);
    // One step per 10 simulated seconds; the whole arena once per 40 s.
    let step = 10;
    let budget = Sweeper::budget_for(
        cap as usize,
        Duration::from_secs(step),
        Duration::from_secs(40),
    );
    assert_eq!(budget, 256);
    let mut rng = Rng(10);
    let mut next = 0u32;
    let mut live: Vec<(SessionId, u8)> = Vec::new();
    let (mut inserted, mut removed_by_sweep, mut max_live) = (0usize, 0usize, 0usize);
    for s in (0..10 * 86_400u64).step_by(step as usize) {
        let now = secs(s);
        // New sessions: 1 per second on average, half UDP, half TCP.
        for _ in 0..rng.below(21) {
            let proto = if rng.below(2) == 0 { UDP } else { TCP };
            let n = next % 2_000_000;
            next += 1;
            match t.insert(lan(n, proto), wan(n, proto), init(n), now) {
                Ok(id) => {
                    inserted += 1;
                    live.push((id, proto));
                }
                Err(e) => panic!("{e} at {s} s with {} live", t.len()),
            }
        }
        // Packets on a few sessions; TCP ones close or reset now and then.
        for _ in 0..20 {
            if live.is_empty() {
                break;
            }
            let i = rng.below(live.len() as u64) as usize;
            let (id, proto) = live[i];
            let side = if rng.below(2) == 0 {
                Side::Lan
            } else {
                Side::Wan
            };
            if !t.touch(id, side, now, 0) {
                live.swap_remove(i); // expired meanwhile
                continue;
            }
            if proto == TCP {
                match rng.below(8) {
                    0 => {
                        t.mark_fin(id, Side::Lan, now);
                        t.mark_fin(id, Side::Wan, now);
                    }
                    1 => {
                        t.mark_rst(id, now);
                    }
                    _ => {}
                }
            }
        }
        removed_by_sweep += sw.sweep(&t, now, budget);
        max_live = max_live.max(t.len());
        if live.len() > 8 * cap as usize {
            live.retain(|(id, _)| t.get(*id, Side::Lan).is_some());
        }
    }
    assert!(inserted > 800_000, "{inserted}");
    assert_eq!(inserted - removed_by_sweep, t.len());
    // Arrivals 1/s; most sessions live ≤ 60 s + 40 s until the sweeper comes by, a few
    // established TCP ones 1800 s.
    assert!(max_live < 600, "{max_live}");
    t.check_index();
    let mut all = Sweeper::new(timeouts);
    all.sweep(&t, secs(20 * 86_400), cap as usize);
    assert_eq!(t.check_index(), 0);
    assert!(t.is_empty());
}

// ---- concurrency ------------------------------------------------------------------------

/// Session number → (lan, wan) keys and an init whose fields all derive from the number, so
/// a reader can tell a torn copy (fields of two sessions) from a good one.
fn check_consistent(r: &SessionRef) -> u32 {
    let n = r.key_handle;
    assert_eq!(r.lan_key, lan(n, UDP), "torn read: key_handle {n}");
    assert_eq!(r.wan_key, wan(n, UDP), "torn read: key_handle {n}");
    assert_eq!(r.replay_slot, n.wrapping_mul(3));
    assert_eq!(r.payload_key_index, n as u8);
    n
}

#[test]
fn four_threads_insert_lookup_remove() {
    const THREADS: u32 = 4;
    const OWN: u32 = 300; // keys per thread that only that thread writes
    const SHARED: u32 = 200; // keys every thread inserts and removes
    const STABLE: u32 = 100; // inserted first, never removed
    const OPS: u32 = 60_000;
    let cap = THREADS * OWN + SHARED + STABLE;
    let t = Arc::new(SessionTable::with_capacity(cap));
    let now = secs(1);
    let stable_base = 1_000_000;
    let shared_base = 2_000_000;
    for i in 0..STABLE {
        let n = stable_base + i;
        t.insert(lan(n, UDP), wan(n, UDP), init(n), now).unwrap();
    }
    let shared_inserts = Arc::new(AtomicU64::new(0));
    let shared_removes = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|th| {
            let (t, barrier) = (t.clone(), barrier.clone());
            let (si, sr) = (shared_inserts.clone(), shared_removes.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(u64::from(th) + 100);
                let mut mine: HashMap<u32, SessionId> = HashMap::new();
                barrier.wait();
                for _ in 0..OPS {
                    let r = rng.below(100);
                    if r < 25 {
                        // Own keys: this thread is the only writer, so results are exact.
                        let n = th * OWN + rng.below(u64::from(OWN)) as u32;
                        match mine.get(&n) {
                            Some(&id) => {
                                assert!(t.remove(id));
                                mine.remove(&n);
                                assert!(t.lookup(&lan(n, UDP)).is_none());
                            }
                            None => {
                                let id = t.insert(lan(n, UDP), wan(n, UDP), init(n), now).unwrap();
                                mine.insert(n, id);
                            }
                        }
                    } else if r < 50 {
                        let n = th * OWN + rng.below(u64::from(OWN)) as u32;
                        let key = if r % 2 == 0 { lan(n, UDP) } else { wan(n, UDP) };
                        let got = t.lookup(&key);
                        assert_eq!(got.map(|s| s.id), mine.get(&n).copied());
                        if let Some(s) = got {
                            assert_eq!(check_consistent(&s), n);
                        }
                    } else if r < 65 {
                        // Another thread's keys: whatever is found must be that key's session.
                        let n = rng.below(u64::from(THREADS * OWN)) as u32;
                        if let Some(s) = t.lookup(&wan(n, UDP)) {
                            assert_eq!(check_consistent(&s), n);
                            assert_eq!(s.side, Side::Wan);
                        }
                    } else if r < 80 {
                        let n = shared_base + rng.below(u64::from(SHARED)) as u32;
                        if rng.below(2) == 0 {
                            match t.insert(lan(n, UDP), wan(n, UDP), init(n), now) {
                                Ok(_) => {
                                    si.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(InsertError::Exists) => {}
                                Err(InsertError::Full) => panic!("cannot be full"),
                            }
                        } else if let Some(s) = t.lookup(&lan(n, UDP)) {
                            assert_eq!(check_consistent(&s), n);
                            if t.remove(s.id) {
                                sr.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    } else {
                        // Stable keys are always found, by every thread, by both keys.
                        let n = stable_base + rng.below(u64::from(STABLE)) as u32;
                        let s = t.lookup(&lan(n, UDP)).expect("stable key lost");
                        assert_eq!(check_consistent(&s), n);
                        let w = t.lookup(&wan(n, UDP)).expect("stable key lost");
                        assert_eq!(w.id, s.id);
                    }
                }
                mine.len() as u64
            })
        })
        .collect();
    let own_left: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let shared_left =
        shared_inserts.load(Ordering::Relaxed) - shared_removes.load(Ordering::Relaxed);
    assert_eq!(t.len() as u64, u64::from(STABLE) + own_left + shared_left);
    let found_shared = (0..SHARED)
        .filter(|i| t.lookup(&lan(shared_base + i, UDP)).is_some())
        .count() as u64;
    assert_eq!(found_shared, shared_left);
    t.check_index();
}

/// Writers churn a tiny table (entries reused constantly, with different keys) while
/// readers copy sessions: every copy must be one session's fields, never a mix.
#[test]
fn readers_never_see_torn_records_during_reuse() {
    let t = Arc::new(SessionTable::with_capacity(4));
    let stop = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (t, stop, hits) = (t.clone(), stop.clone(), hits.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(r);
                while !stop.load(Ordering::Relaxed) {
                    let n = rng.below(32) as u32;
                    if let Some(s) = t.lookup(&lan(n, UDP)) {
                        assert_eq!(check_consistent(&s), n);
                        hits.fetch_add(1, Ordering::Relaxed);
                    }
                    let keys: [FlowKey; 4] = core::array::from_fn(|j| {
                        let m = (n + 7 * j as u32) % 32;
                        if j % 2 == 0 {
                            lan(m, UDP)
                        } else {
                            wan(m, UDP)
                        }
                    });
                    let mut out = [None; 4];
                    t.lookup_batch(&keys, &mut out);
                    for (k, s) in keys.iter().zip(&out) {
                        if let Some(s) = s {
                            check_consistent(s);
                            assert!(s.lan_key == *k || s.wan_key == *k);
                        }
                    }
                    for i in 0..4 {
                        let id = SessionId {
                            index: i,
                            generation: rng.below(1 << 16) as u32,
                        };
                        if let Some(s) = t.get(id, Side::Lan) {
                            check_consistent(&s);
                        }
                    }
                }
            })
        })
        .collect();
    let writers: Vec<_> = (0..2u32)
        .map(|w| {
            let t = t.clone();
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for round in 0..150_000u32 {
                    let n = (round * 2 + w) % 32;
                    if let Ok(id) = t.insert(lan(n, UDP), wan(n, UDP), init(n), secs(1)) {
                        ids.push(id);
                    }
                    if ids.len() >= 2 {
                        t.remove(ids.remove(0));
                    }
                }
                for id in ids {
                    t.remove(id);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert!(hits.load(Ordering::Relaxed) > 0);
    assert_eq!(t.check_index(), 0);
}

/// Concurrent inserts of the same sessions: exactly one wins each, and the index has no
/// duplicate.
#[test]
fn racing_inserts_of_the_same_key_create_one_session() {
    for round in 0..50u32 {
        let t = Arc::new(SessionTable::with_capacity(64));
        let barrier = Arc::new(Barrier::new(4));
        let wins: Vec<_> = (0..4)
            .map(|_| {
                let (t, b) = (t.clone(), barrier.clone());
                std::thread::spawn(move || {
                    b.wait();
                    (0..32u32)
                        .filter(|i| {
                            let n = round * 100 + i;
                            t.insert(lan(n, UDP), wan(n, UDP), init(n), secs(1)).is_ok()
                        })
                        .count()
                })
            })
            .collect();
        let total: usize = wins.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 32);
        assert_eq!(t.check_index(), 64);
    }
}

// ---- wayports ---------------------------------------------------------------------------

#[test]
fn unique_destination_wayports_even_source_odd_destination_in_range() {
    let a = WayportAllocator::new(WayportRange::default(), WayportMode::UniqueDestination).unwrap();
    assert_eq!(a.capacity(), 24_575);
    let mut seen = HashSet::new();
    for _ in 0..a.capacity() {
        let p = a.allocate().unwrap();
        assert_eq!(p.source % 2, 0);
        assert_eq!(p.destination % 2, 1);
        assert_eq!(p.source + 1, p.destination);
        assert!(p.source >= 16384 && p.destination <= 65534);
        assert!(seen.insert(p.destination));
        assert!(a.is_allocated(p));
    }
    assert_eq!(a.allocate(), Err(WayportError::Exhausted));
    assert_eq!(a.allocate(), Err(WayportError::Exhausted));
    assert_eq!(a.exhausted_count(), 2);
    assert_eq!(a.in_use(), 24_575);
    let min = seen.iter().min().copied().unwrap();
    let max = seen.iter().max().copied().unwrap();
    assert_eq!((min, max), (16385, 65533));
}

#[test]
fn unique_destination_wayports_reuse_round_robin_and_reject_bad_frees() {
    let a = WayportAllocator::new(
        WayportRange {
            first: 2001, // odd: the first pair is 2002/2003
            last: 2010,  // even: the last pair is 2008/2009
        },
        WayportMode::UniqueDestination,
    )
    .unwrap();
    assert_eq!(a.capacity(), 4);
    let got: Vec<_> = (0..4).map(|_| a.allocate().unwrap()).collect();
    assert_eq!(
        got.iter().map(|p| p.destination).collect::<Vec<_>>(),
        [2003, 2005, 2007, 2009]
    );
    assert_eq!(a.allocate(), Err(WayportError::Exhausted));
    a.free(got[1]).unwrap();
    assert_eq!(a.free(got[1]), Err(WayportError::NotAllocated));
    assert_eq!(a.allocate().unwrap(), got[1]);
    // Freed pairs come back only when the cursor reaches them again.
    a.free(got[0]).unwrap();
    a.free(got[3]).unwrap();
    assert_eq!(a.allocate().unwrap(), got[3]);
    assert_eq!(a.allocate().unwrap(), got[0]);
    for bad in [
        Wayports {
            source: 2002,
            destination: 2004,
        },
        Wayports {
            source: 2010,
            destination: 2011,
        },
        Wayports {
            source: 2000,
            destination: 2001,
        },
        Wayports {
            source: 2004,
            destination: 2003,
        },
    ] {
        assert_eq!(a.free(bad), Err(WayportError::NotInRange), "{bad:?}");
        assert!(!a.is_allocated(bad));
    }
    for r in [(100, 100), (101, 101), (101, 102), (200, 100)] {
        let range = WayportRange {
            first: r.0,
            last: r.1,
        };
        assert_eq!(
            WayportAllocator::new(range, WayportMode::UniqueDestination).unwrap_err(),
            WayportError::EmptyRange
        );
    }
    let one = WayportAllocator::new(
        WayportRange {
            first: 65534,
            last: 65535,
        },
        WayportMode::UniqueDestination,
    )
    .unwrap();
    assert_eq!(
        one.allocate().unwrap(),
        Wayports {
            source: 65534,
            destination: 65535
        }
    );
    assert_eq!(one.allocate(), Err(WayportError::Exhausted));
}

#[test]
fn concurrent_unique_destination_allocation_is_unique() {
    let a = Arc::new(
        WayportAllocator::new(
            WayportRange {
                first: 20000,
                last: 29999,
            },
            WayportMode::UniqueDestination,
        )
        .unwrap(),
    );
    let cap = a.capacity() as usize; // 5000
    let handles: Vec<_> = (0..4)
        .map(|th| {
            let a = a.clone();
            std::thread::spawn(move || {
                let mut held = Vec::new();
                let mut rng = Rng(th);
                for _ in 0..20_000 {
                    if held.len() < 1000 && rng.below(3) != 0 {
                        held.push(a.allocate().unwrap());
                    } else if !held.is_empty() {
                        let i = rng.below(held.len() as u64) as usize;
                        a.free(held.swap_remove(i)).unwrap();
                    }
                }
                held
            })
        })
        .collect();
    let mut all = HashSet::new();
    for h in handles {
        for p in h.join().unwrap() {
            assert!(all.insert(p), "{p:?} held twice");
        }
    }
    assert_eq!(a.in_use() as usize, all.len());
    // Fill the rest: exactly the free ones remain.
    let mut more = 0;
    while a.allocate().is_ok() {
        more += 1;
    }
    assert_eq!(all.len() + more, cap);
}

/// A range with 5 even and 5 odd ports: 25 unique pairs, 5 unique destinations.
const SMALL: WayportRange = WayportRange {
    first: 2000,
    last: 2009,
};

#[test]
fn unique_pair_wayports_walk_every_pair_once_per_round() {
    let d = WayportAllocator::new(WayportRange::default(), WayportMode::UniquePair).unwrap();
    assert_eq!(d.capacity(), 24_576 * 24_575);
    assert_eq!(d.mode(), WayportMode::UniquePair);

    let a = WayportAllocator::new(SMALL, WayportMode::UniquePair).unwrap();
    assert_eq!(a.capacity(), 25);
    let round: Vec<_> = (0..25).map(|_| a.allocate().unwrap()).collect();
    let distinct: HashSet<_> = round.iter().copied().collect();
    assert_eq!(distinct.len(), 25, "every (source, destination) pair once");
    for p in &round {
        assert_eq!(p.source % 2, 0, "{p:?}");
        assert_eq!(p.destination % 2, 1, "{p:?}");
        assert!((2000..=2008).contains(&p.source), "{p:?}");
        assert!((2001..=2009).contains(&p.destination), "{p:?}");
    }
    // Consecutive sessions differ in both ports, across the round's end too.
    for (x, y) in round.iter().zip(round.iter().cycle().skip(1)) {
        assert!(
            x.source != y.source && x.destination != y.destination,
            "{x:?} {y:?}"
        );
    }
    // Wrap-around: the next round repeats the first, in order.
    let again: Vec<_> = (0..25).map(|_| a.allocate().unwrap()).collect();
    assert_eq!(again, round);
    assert_eq!(
        a.in_use(),
        50,
        "allocate counts; the table would have refused"
    );
    assert_eq!(a.exhausted_count(), 0);
    // Frees check the range and parities only (the table is the record).
    for bad in [
        Wayports {
            source: 2001,
            destination: 2003,
        },
        Wayports {
            source: 2000,
            destination: 2002,
        },
        Wayports {
            source: 2010,
            destination: 2001,
        },
        Wayports {
            source: 2000,
            destination: 2011,
        },
        Wayports {
            source: 1998,
            destination: 2001,
        },
    ] {
        assert_eq!(a.free(bad), Err(WayportError::NotInRange), "{bad:?}");
    }
    for p in round.iter().chain(&again) {
        a.free(*p).unwrap();
    }
    assert_eq!(a.in_use(), 0);
    assert_eq!(a.free(round[0]), Err(WayportError::NotAllocated));
    assert!(!a.is_allocated(round[0]), "no bitmap in this mode");
    // Same emptiness rule as the other mode.
    assert_eq!(
        WayportAllocator::new(
            WayportRange {
                first: 101,
                last: 102
            },
            WayportMode::UniquePair
        )
        .unwrap_err(),
        WayportError::EmptyRange
    );
    let one = WayportAllocator::new(
        WayportRange {
            first: 65534,
            last: 65535,
        },
        WayportMode::UniquePair,
    )
    .unwrap();
    assert_eq!(one.capacity(), 1);
    assert_eq!(
        one.allocate().unwrap(),
        Wayports {
            source: 65534,
            destination: 65535
        }
    );
}

/// `claim` with a set of live tuples standing in for the session table.
fn claim_into<E>(
    a: &WayportAllocator,
    live: &mut HashSet<Wayports>,
) -> Result<Wayports, ClaimError<E>> {
    a.claim(|p| {
        if live.contains(&p) {
            Err(Claim::Taken)
        } else {
            live.insert(p);
            Ok(p)
        }
    })
}

#[test]
fn unique_pair_claim_skips_live_tuples_and_counts_exhaustion() {
    let a = WayportAllocator::new(SMALL, WayportMode::UniquePair).unwrap();
    let mut live = HashSet::new();
    for _ in 0..25 {
        claim_into::<()>(&a, &mut live).unwrap();
    }
    assert_eq!((live.len(), a.in_use()), (25, 25));
    // Full: CLAIM_ATTEMPTS candidates taken, counted once.
    assert_eq!(claim_into::<()>(&a, &mut live), Err(ClaimError::Exhausted));
    assert_eq!(a.exhausted_count(), 1);
    // The cursor stands at 25 + 8 = 33 ≡ 8: free the pair at position 10, two steps ahead.
    let round: Vec<_> = {
        let b = WayportAllocator::new(SMALL, WayportMode::UniquePair).unwrap();
        (0..25).map(|_| b.allocate().unwrap()).collect()
    };
    let gap = round[10];
    live.remove(&gap);
    a.free(gap).unwrap();
    assert_eq!(claim_into::<()>(&a, &mut live), Ok(gap));
    assert_eq!(a.in_use(), 25);
    // An abort hands the candidate back and is not an exhaustion.
    live.remove(&round[0]);
    a.free(round[0]).unwrap();
    assert_eq!(
        a.claim(|_| Err::<(), _>(Claim::Abort("table full"))),
        Err(ClaimError::Abort("table full"))
    );
    assert_eq!((a.in_use(), a.exhausted_count()), (24, 1));
}

#[test]
fn unique_destination_claim_gives_back_refused_candidates() {
    let a = WayportAllocator::new(SMALL, WayportMode::UniqueDestination).unwrap();
    assert_eq!(a.capacity(), 5);
    // The table refuses the first candidate (a live session it knows and we do not).
    let mut refused = None;
    let got = a
        .claim(|p| match refused {
            None => {
                refused = Some(p);
                Err::<Wayports, Claim<()>>(Claim::Taken)
            }
            Some(_) => Ok(p),
        })
        .unwrap();
    let refused = refused.unwrap();
    assert_ne!(got, refused);
    assert!(a.is_allocated(got));
    assert!(
        !a.is_allocated(refused),
        "a refused candidate goes back to the bitmap"
    );
    assert_eq!(
        a.claim(|p| Err::<Wayports, _>(Claim::Abort(p)))
            .map_err(|e| match e {
                ClaimError::Abort(p) => a.is_allocated(p),
                ClaimError::Exhausted => true,
            }),
        Err(false),
        "an aborted candidate goes back too"
    );
    assert_eq!(a.in_use(), 1);
    // Four more destinations, then none: exhausted at once, not after eight tries.
    let mut live = HashSet::from([got]);
    for _ in 0..4 {
        let p = claim_into::<()>(&a, &mut live).unwrap();
        assert_eq!(p.source + 1, p.destination);
    }
    assert_eq!(claim_into::<()>(&a, &mut live), Err(ClaimError::Exhausted));
    let dsts: HashSet<_> = live.iter().map(|p| p.destination).collect();
    assert_eq!(dsts.len(), 5);
}

#[test]
fn unique_pair_churn_never_hands_out_a_live_tuple() {
    let range = WayportRange {
        first: 3000,
        last: 3039,
    };
    let a = WayportAllocator::new(range, WayportMode::UniquePair).unwrap();
    assert_eq!(a.capacity(), 400);
    let mut live = HashSet::new();
    let mut held = Vec::new();
    let mut rng = Rng(11);
    let mut exhausted = 0;
    for _ in 0..50_000 {
        // Keep the space about 90 % full, so that candidates are often taken.
        if held.len() < 360 && rng.below(2) == 0 {
            let r = a.claim(|p| {
                if live.contains(&p) {
                    Err(Claim::<()>::Taken)
                } else {
                    Ok(p)
                }
            });
            match r {
                Ok(p) => {
                    assert!(live.insert(p), "{p:?} handed out while live");
                    held.push(p);
                }
                Err(ClaimError::Exhausted) => exhausted += 1,
                Err(ClaimError::Abort(())) => unreachable!(),
            }
        } else if !held.is_empty() {
            let p = held.swap_remove(rng.below(held.len() as u64) as usize);
            live.remove(&p);
            a.free(p).unwrap();
        }
        assert_eq!(a.in_use() as usize, live.len());
    }
    // At 90 % a claim fails with probability 0.9^8 ≈ 0.43 at worst; most succeed.
    assert!(
        a.exhausted_count() == exhausted && exhausted < 10_000,
        "{exhausted}"
    );
}

#[test]
fn concurrent_unique_pair_claims_keep_wan_keys_unique() {
    // The real table is the uniqueness check, as in svr_path's session creation.
    let range = WayportRange {
        first: 20000,
        last: 20079,
    };
    let a = Arc::new(WayportAllocator::new(range, WayportMode::UniquePair).unwrap());
    assert_eq!(a.capacity(), 1600);
    let t = Arc::new(table(4096));
    let wan_key = |p: Wayports| {
        FlowKey::v4(
            Ipv4Addr::new(203, 0, 113, 2),
            Ipv4Addr::new(198, 51, 100, 1),
            UDP,
            p.destination,
            p.source,
        )
    };
    let handles: Vec<_> = (0..4u32)
        .map(|th| {
            let (a, t) = (a.clone(), t.clone());
            std::thread::spawn(move || {
                let mut held: Vec<(SessionId, Wayports)> = Vec::new();
                let mut rng = Rng(u64::from(th) + 100);
                for i in 0..20_000u32 {
                    if held.len() < 350 && rng.below(3) != 0 {
                        let n = th << 20 | i;
                        let r = a.claim(|p| {
                            match t.insert(lan(n, UDP), wan_key(p), init(n), secs(1)) {
                                Ok(id) => Ok((id, p)),
                                Err(InsertError::Exists) => Err(Claim::Taken),
                                Err(InsertError::Full) => Err(Claim::Abort(())),
                            }
                        });
                        if let Ok(x) = r {
                            held.push(x);
                        }
                    } else if !held.is_empty() {
                        let (id, p) = held.swap_remove(rng.below(held.len() as u64) as usize);
                        assert!(t.remove(id));
                        a.free(p).unwrap();
                    }
                }
                held
            })
        })
        .collect();
    let mut all = HashSet::new();
    for h in handles {
        for (id, p) in h.join().unwrap() {
            assert!(all.insert(p), "{p:?} held twice");
            let s = t.lookup(&wan_key(p)).expect("live");
            assert_eq!(s.id, id);
        }
    }
    assert_eq!(a.in_use() as usize, all.len());
    assert_eq!(t.len(), all.len());
}

#[test]
fn rebind_wan_moves_the_wan_key_and_keeps_the_session() {
    let t = SessionTable::with_capacity(64);
    let id = t.insert(lan(1, 17), wan(1, 17), init(1), secs(1)).unwrap();
    let other = t.insert(lan(2, 17), wan(2, 17), init(2), secs(1)).unwrap();
    let uuid = t.uuid(id);
    assert_eq!(t.rebind_wan(id, wan(3, 17)), Ok(wan(1, 17)));
    assert!(t.lookup(&wan(1, 17)).is_none(), "old binding forgotten");
    let s = t.lookup(&wan(3, 17)).unwrap();
    assert_eq!((s.id, s.side, s.lan_key), (id, Side::Wan, lan(1, 17)));
    assert_eq!(t.lookup(&lan(1, 17)).unwrap().wan_key, wan(3, 17));
    assert_eq!(t.uuid(id), uuid);
    // A key another session has, or a stale id, is refused and changes nothing.
    assert_eq!(t.rebind_wan(id, wan(2, 17)), Err(InsertError::Exists));
    assert_eq!(t.lookup(&wan(2, 17)).map(|s| s.id), Some(other));
    assert!(t.remove(id));
    assert_eq!(t.rebind_wan(id, wan(4, 17)), Err(InsertError::Exists));
    assert!(t.lookup(&wan(3, 17)).is_none());
    t.check_index();
}

#[test]
fn readers_never_see_a_torn_key_while_a_session_moves() {
    let t = Arc::new(SessionTable::with_capacity(64));
    let id = t
        .insert(lan(1, 17), wan(1000, 17), init(1), secs(1))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (t, stop, reads) = (Arc::clone(&t), Arc::clone(&stop), Arc::clone(&reads));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let s = t
                    .lookup(&lan(1, 17))
                    .expect("the LAN key never goes missing");
                assert!((1000..1200).any(|k| s.wan_key == wan(k, 17)), "torn key");
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Move it round 200 keys until the reader has overlapped many moves (bounded).
    let mut k = 1000;
    for _ in 0..2_000_000 {
        k = if k == 1199 { 1000 } else { k + 1 };
        t.rebind_wan(id, wan(k, 17)).unwrap();
        if reads.load(Ordering::Relaxed) > 20_000 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert!(reads.load(Ordering::Relaxed) > 0);
    t.check_index();
}

// ---- duplicate keys (packet-duplication) ---------------------------------------------------

fn dup_table(cap: u32) -> SessionTable {
    SessionTable::build(cap, FlowHasher::with_seed(7), true)
}

#[test]
fn duplicate_key_finds_the_session_by_either_wan_key() {
    let t = dup_table(64);
    assert!(t.has_duplicate_keys());
    let id = t
        .insert(lan(1, UDP), wan(1, UDP), init(1), secs(1))
        .unwrap();
    let other = t
        .insert(lan(2, UDP), wan(2, UDP), init(2), secs(1))
        .unwrap();
    assert_eq!(t.lookup(&lan(1, UDP)).unwrap().dup_key, None);
    assert_eq!(t.set_duplicate(id, None, Some(wan(3, UDP))), Ok(()));
    let by_dup = t.lookup(&wan(3, UDP)).unwrap();
    assert_eq!(
        (by_dup.id, by_dup.side, by_dup.via_duplicate),
        (id, Side::Wan, true)
    );
    assert_eq!(by_dup.wan_key, wan(1, UDP));
    assert_eq!(by_dup.dup_key, Some(wan(3, UDP)));
    let by_wan = t.lookup(&wan(1, UDP)).unwrap();
    assert_eq!((by_wan.id, by_wan.via_duplicate), (id, false));
    assert_eq!(by_wan.dup_key, Some(wan(3, UDP)));
    let by_lan = t.lookup(&lan(1, UDP)).unwrap();
    assert_eq!((by_lan.side, by_lan.via_duplicate), (Side::Lan, false));
    assert_eq!(t.get(id, Side::Wan).unwrap().dup_key, Some(wan(3, UDP)));
    assert_eq!(t.check_index(), 5);
    // A key another session has (WAN or LAN), or this session's own WAN key: refused.
    for k in [wan(2, UDP), lan(2, UDP), wan(1, UDP)] {
        assert_eq!(
            t.set_duplicate(id, Some(wan(3, UDP)), Some(k)),
            Err(InsertError::Exists)
        );
    }
    // Nor can another session take it, as WAN key, duplicate or by insert.
    assert_eq!(t.rebind_wan(other, wan(3, UDP)), Err(InsertError::Exists));
    assert_eq!(
        t.set_duplicate(other, None, Some(wan(3, UDP))),
        Err(InsertError::Exists)
    );
    // A compare-and-set: a stale `from` changes nothing.
    assert_eq!(
        t.set_duplicate(id, None, Some(wan(4, UDP))),
        Err(InsertError::Exists)
    );
    assert_eq!(t.set_duplicate(id, None, None), Err(InsertError::Exists));
    assert!(t.lookup(&wan(4, UDP)).is_none());
    assert_eq!(
        t.insert(lan(9, UDP), wan(3, UDP), init(9), secs(1)),
        Err(InsertError::Exists)
    );
    // Replace: the old second key is forgotten.
    assert_eq!(
        t.set_duplicate(id, Some(wan(3, UDP)), Some(wan(4, UDP))),
        Ok(())
    );
    assert!(t.lookup(&wan(3, UDP)).is_none());
    assert_eq!(t.lookup(&wan(4, UDP)).map(|s| s.id), Some(id));
    // A move of the WAN key keeps the second key.
    assert_eq!(t.rebind_wan(id, wan(5, UDP)), Ok(wan(1, UDP)));
    let s = t.lookup(&wan(4, UDP)).unwrap();
    assert_eq!((s.wan_key, s.dup_key), (wan(5, UDP), Some(wan(4, UDP))));
    // Promote: the keys swap, both stay reachable.
    assert_eq!(
        t.promote_duplicate(id, wan(4, UDP)),
        Err(InsertError::Exists),
        "not its WAN key"
    );
    assert_eq!(t.promote_duplicate(id, wan(5, UDP)), Ok(()));
    let s = t.lookup(&wan(5, UDP)).unwrap();
    assert_eq!((s.wan_key, s.dup_key), (wan(4, UDP), Some(wan(5, UDP))));
    assert!(s.via_duplicate);
    assert!(!t.lookup(&wan(4, UDP)).unwrap().via_duplicate);
    t.check_index();
    // Unbind.
    assert_eq!(t.set_duplicate(id, Some(wan(5, UDP)), None), Ok(()));
    assert!(t.lookup(&wan(5, UDP)).is_none());
    assert_eq!(t.set_duplicate(id, None, None), Ok(()));
    assert_eq!(
        t.promote_duplicate(id, wan(4, UDP)),
        Err(InsertError::Exists)
    );
    assert_eq!(t.check_index(), 4);
    // Removal clears both WAN keys; the entry's next session starts without a second key.
    t.set_duplicate(id, None, Some(wan(6, UDP))).unwrap();
    assert_eq!(t.remove_keys(id), Some((wan(4, UDP), Some(wan(6, UDP)))));
    assert_eq!(t.remove_keys(id), None);
    for k in [lan(1, UDP), wan(4, UDP), wan(6, UDP)] {
        assert!(t.lookup(&k).is_none(), "{k:?} after remove");
    }
    assert_eq!(
        t.set_duplicate(id, None, Some(wan(7, UDP))),
        Err(InsertError::Exists)
    );
    assert_eq!(t.set_duplicate(id, None, None), Err(InsertError::Exists));
    assert_eq!(t.check_index(), 2);
    let again = t
        .insert(lan(8, UDP), wan(8, UDP), init(8), secs(2))
        .unwrap();
    assert_eq!(again.index, id.index);
    assert_eq!(t.lookup(&lan(8, UDP)).unwrap().dup_key, None);
    t.check_index();
}

#[test]
fn a_table_without_duplicate_keys_refuses_them_and_costs_nothing() {
    let t = table(64);
    assert!(!t.has_duplicate_keys());
    let id = t
        .insert(lan(1, UDP), wan(1, UDP), init(1), secs(1))
        .unwrap();
    assert_eq!(
        t.set_duplicate(id, None, Some(wan(3, UDP))),
        Err(InsertError::Full)
    );
    assert_eq!(
        t.promote_duplicate(id, wan(1, UDP)),
        Err(InsertError::Exists)
    );
    assert!(t.lookup(&wan(3, UDP)).is_none());
    assert_eq!(t.memory().duplicate_key_bytes, 0);
}

#[test]
fn memory_numbers_with_duplicate_keys() {
    for cap in [1_000u32, 1_000_000] {
        let (plain, dup) = (table(cap).memory(), dup_table(cap).memory());
        assert_eq!(dup.duplicate_key_bytes, 40 * cap as usize);
        // Index: 3 entries per session at ≤ 70 % ≈ 39.2 B instead of 26.1 B.
        let index = dup.index_bytes as f64 / f64::from(cap);
        assert!((39.1..39.4).contains(&index), "{index}");
        let extra = dup.total_per_session() - plain.total_per_session();
        assert!((52.9..53.3).contains(&extra), "{extra}");
        assert!(dup.total_per_session() < 268.0);
    }
}

#[test]
fn many_sessions_with_duplicate_keys_fill_the_index_consistently() {
    let t = dup_table(500);
    let ids: Vec<_> = (0..500)
        .map(|n| {
            t.insert(lan(n, UDP), wan(n, UDP), init(n), secs(1))
                .unwrap()
        })
        .collect();
    for (n, id) in ids.iter().enumerate() {
        t.set_duplicate(*id, None, Some(wan(1000 + n as u32, UDP)))
            .unwrap();
    }
    assert_eq!(t.check_index(), 1500);
    for n in 0..500u32 {
        let s = t.lookup(&wan(1000 + n, UDP)).unwrap();
        assert_eq!((s.id, s.via_duplicate), (ids[n as usize], true));
    }
    for id in ids.iter().step_by(2) {
        assert!(t.remove(*id));
    }
    assert_eq!(t.check_index(), 750);
}

/// A writer rebinds, promotes, replaces and clears the second key of one session while a
/// reader looks it up by its LAN key and by two WAN keys: every copy it gets is one the
/// writer made (never a WAN key of one step with a second key of another), and the LAN key
/// never goes missing.
#[test]
fn readers_never_see_torn_duplicate_keys() {
    let t = Arc::new(dup_table(64));
    let id = t
        .insert(lan(1, UDP), wan(100, UDP), init(1), secs(1))
        .unwrap();
    // The writer cycles through these (wan, dup) states.
    let states: [(u32, Option<u32>); 4] =
        [(100, Some(200)), (200, Some(100)), (200, None), (100, None)];
    let valid = move |s: &SessionRef| {
        states
            .iter()
            .any(|&(w, d)| s.wan_key == wan(w, UDP) && s.dup_key == d.map(|d| wan(d, UDP)))
    };
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (t, stop, reads) = (Arc::clone(&t), Arc::clone(&stop), Arc::clone(&reads));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let s = t
                    .lookup(&lan(1, UDP))
                    .expect("the LAN key never goes missing");
                assert!(valid(&s), "torn: {:?} / {:?}", s.wan_key, s.dup_key);
                for k in [100, 200] {
                    if let Some(s) = t.lookup(&wan(k, UDP)) {
                        assert!(valid(&s), "torn via {k}");
                        assert_eq!(s.id, id);
                        let via = if s.via_duplicate {
                            s.dup_key
                        } else {
                            Some(s.wan_key)
                        };
                        assert_eq!(via, Some(wan(k, UDP)), "the matched key is the one asked");
                    }
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    for _ in 0..200_000 {
        t.set_duplicate(id, None, Some(wan(200, UDP))).unwrap(); // (100, 200)
        t.promote_duplicate(id, wan(100, UDP)).unwrap(); // (200, 100)
        t.set_duplicate(id, Some(wan(100, UDP)), None).unwrap(); // (200, -)
        t.rebind_wan(id, wan(100, UDP)).unwrap(); // (100, -)
        if reads.load(Ordering::Relaxed) > 20_000 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert!(reads.load(Ordering::Relaxed) > 0);
    t.check_index();
}

/// Four threads, each with its own sessions: insert, bind a second key, look up by all three
/// keys, remove; a reader checks that a session found by a second key is consistent. The
/// index stays exact.
#[test]
fn threads_bind_and_remove_duplicate_keys() {
    const THREADS: u32 = 4;
    const PER: u32 = 200;
    let t = Arc::new(dup_table(THREADS * PER));
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|th| {
            let (t, barrier) = (Arc::clone(&t), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                for round in 0..20u32 {
                    let mut ids = Vec::new();
                    for i in 0..PER {
                        let n = th * PER + i;
                        let id = t
                            .insert(lan(n, UDP), wan(n, UDP), init(n), secs(1))
                            .unwrap();
                        t.set_duplicate(id, None, Some(wan(20_000 + n, UDP)))
                            .unwrap();
                        ids.push((n, id));
                    }
                    for &(n, id) in &ids {
                        let s = t.lookup(&wan(20_000 + n, UDP)).unwrap();
                        assert_eq!((s.id, s.via_duplicate), (id, true));
                        check_consistent(&s);
                        assert_eq!(t.lookup(&wan(n, UDP)).unwrap().id, id);
                    }
                    for &(n, id) in &ids {
                        if (n + round) % 3 == 0 {
                            t.set_duplicate(id, Some(wan(20_000 + n, UDP)), None)
                                .unwrap();
                        }
                        assert!(t.remove(id));
                        assert!(t.lookup(&wan(20_000 + n, UDP)).is_none());
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(t.is_empty());
    assert_eq!(t.check_index(), 0);
}
