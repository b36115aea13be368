//! The SVR session table: every live session, reachable from its LAN 5-tuple and from its
//! WAN (waypoint) 5-tuple, read by all workers without locks; timeouts and reclamation;
//! wayport allocation (docs/background.md §1.2–§1.7).
//!
//! | item | job |
//! | --- | --- |
//! | [`FlowKey`], [`FlowHasher`] | IPv4/IPv6 5-tuple in five words; seeded folded-multiply hash |
//! | [`SessionTable`] | fixed-capacity index + record arena: `insert`, `lookup`, `lookup_batch`, `get`, `touch`, `mark_fin`, `mark_rst`, `update_metadata`, `next_tx_seq`, `remove`; moves: `rebind_wan`, and for `packet-duplication` a second WAN key per session (`set_duplicate`, `promote_duplicate`); `session_at` for management |
//! | [`SessionRef`] | the `Copy` snapshot a lookup returns; [`SessionRef::rewrite`] is the NAT of §1.5 |
//! | [`SessionView`] | what management sees of a session: the copy, UUID, creation and last-seen times, packets and bytes per direction |
//! | [`SessionTimeouts`], [`Sweeper`] | idle timeouts per protocol, TCP guard timer, bounded reclamation steps; the timeout of a session and its time left (`timeout_of`, `remaining_ms`) |
//! | [`WayportAllocator`] | even source / odd destination wayports per waypoint pair, lock-free: unique pairs, or unique destinations behind a source NAT ([`WayportMode`]) |
//!
//! # Keys: what a lookup is keyed by
//!
//! A session has two keys, each **the 5-tuple of packets as they arrive** on one side:
//! `lan_key` for packets from the LAN host, `wan_key` for packets from the peer router. Every
//! arriving packet is then one lookup, and the other key reversed is the 5-tuple to write
//! ([`SessionRef::rewrite`]): at the ingress, a LAN packet `c:cp → s:sp` leaves as
//! `our_wp:even → peer_wp:odd`, and the peer's reply arrives as `peer_wp:odd → our_wp:even`
//! (the `wan_key`), leaving for the LAN as `s:sp → c:cp` (`lan_key` reversed). Source NAT on the
//! way is covered because the WAN key is what actually arrived (§1.3, §2.10), and a protocol
//! change (UDP transform) because the protocol is part of each key. So the record holds no
//! separate rewrite fields.
//!
//! # Layout
//!
//! * **Index**: `⌈2·capacity / 0.7⌉` slots in 64-byte buckets of one control word and seven
//!   slots. A slot is `tag(32) | arena index + 1 (32)`, 0 = empty; the tag is the low half of
//!   the 64-bit hash, the high half picks the home bucket (multiply-shift, any bucket count).
//!   Linear probing by bucket with an **overflow count** per bucket (Folly F14's idea): an
//!   insert that finds a bucket full increments its count *before* moving on; a lookup stops at
//!   the first bucket whose count is 0, so a miss usually reads one cache line and deletion
//!   needs no tombstones (the remover decrements the counts it passed). Entries never move.
//! * **Arena**: `capacity` records of exactly 128 bytes, 128-byte aligned (two lines the
//!   adjacent-line prefetcher fetches together). Line 0: state word, key handle / replay slot,
//!   LAN key, first word of the WAN key; line 1: rest of the WAN key, last-seen ms, guard start,
//!   two TX sequence counters. The UUID (16 B) and the creation time (8 B) are in a separate
//!   array: only metadata building and management read them ([`SessionTable::uuid`]).
//! * **Counters**: packets and bytes per direction (indexed by the side the packets arrived
//!   on; the forward side is the LAN at the ingress, the WAN at the egress), 32 B per session
//!   in an array of their own, two sessions per line. [`SessionTable::touch`] adds to them
//!   with a Relaxed load and store (one writer per direction: RSS keeps a 5-tuple on one
//!   queue), and a lookup hit prefetches the line. Bytes are the IP length on the LAN side,
//!   the same at both routers of a session.
//! * **State word** (`AtomicU64`): generation (32) | payload key index | metadata state | TCP
//!   flags | timeout class | role | lifecycle (FREE / INIT / LIVE). Small mutable state lives
//!   here so each update is one CAS that also checks the generation.
//! * **Free list**: Treiber stack of arena indices, head = `tag(32) | index + 1` in one
//!   `AtomicU64` (the tag changes on every push/pop: no ABA), links in a `u32` array.
//!
//! Nothing is allocated after [`SessionTable::with_capacity`].
//!
//! # Memory
//!
//! Per session of capacity: index `64 / (7 × 0.7 / 2)` ≈ **26.1 B** (exact value depends on
//! rounding to whole buckets; [`SessionTable::memory`]) plus 4 B of free-list link: ≈ **30 B
//! of table overhead**, well under the 128 B target. The session record itself is **184 B**
//! (128 hot + 16 UUID + 8 creation time + 32 counters), so everything together is ≈ 214 B
//! per session (≈ 174 B before the counters and creation time of `show sessions`: +40 B).
//! Two full keys (80 B) are most of the record; if "≤ 128 B per session" is ever meant to
//! include the record, the way down is to keep only one full key plus the WAN key's
//! differences.
//!
//! **Duplicate keys** (`packet-duplication`, [`SessionTable::with_duplicate_keys`]): a
//! session may have a second WAN key, the 5-tuple its copies arrive with on a second waypoint
//! pair. The table keeps it in an array of its own (40 B per session, all zero = none) and
//! sizes the index for three keys per session (≈ 39.2 B instead of 26.1 B): ≈ **53 B more per
//! session**, ≈ 267 B in all. A table built without them (every router with no duplication
//! service) allocates nothing for them and reads nothing more per lookup; with them, a lookup
//! also reads the second key (one more line, in the separate array). Its writes follow
//! `rebind_wan`: the seqlock epoch of the state word over all WAN key words, the new index
//! entry placed under its home bucket's lock before the old one is cleared; removal clears
//! all three entries.
//!
//! # Concurrency
//!
//! * **Readers** (`lookup`, `get`) take no lock and write nothing. For each slot whose tag
//!   matches they copy the record with a seqlock read on the state word: state (Acquire),
//!   fields, Acquire fence, state again; the copy is kept if generation and lifecycle are
//!   unchanged and LIVE, and the full key is compared, so a lookup never returns a session
//!   whose key differs from the probe. Mutable bits come from the same atomic load.
//! * **Inserts** lock the home bucket(s) of their two keys (a bit in the control word, taken
//!   in bucket order) only against each other, so two workers cannot insert the same key
//!   twice; readers ignore the bit. The record is written while INIT, both slots are placed,
//!   then the state turns LIVE with a Release store: both keys appear at that instant.
//! * **Removes** (worker or sweeper) CAS the state from LIVE to FREE with the generation + 1;
//!   that is the moment the session is gone for everyone. Then they clear the two slots and
//!   push the entry on the free list. A reader still holding an old slot sees FREE or a new
//!   generation and moves on; a worker holding an old [`SessionId`] gets `None`/`false`.
//! * **Per-packet writes** are cheap and local: `touch` adds to the session's packet and byte
//!   counters of its side (a load and a store each, no locked instruction), writes last-seen
//!   only when it advanced ≥ 1 ms and sets a `SEEN_*` bit once per side; `next_tx_seq` is a
//!   `fetch_add`. Following
//!   VPP's "one writer per SA", a session's replay window and per-packet counters belong to
//!   one worker elsewhere (`replay_slot`); this table holds only what several workers share.
//!
//! Per-lcore flow caches (ipsec-secgw `sad.h`, habit 8) can sit in front: cache
//! `(FlowKey, SessionId, Side)` direct-mapped by [`FlowHasher::hash`], re-validate with
//! [`SessionTable::get`], which checks the generation.
//!
//! # Where the API differs from the first sketch
//!
//! * `insert(lan_key, wan_key, init, now)` takes `now` (the first packet's time starts the
//!   idle timer); `touch(id, side, now)` and `mark_fin(id, side, now)` take the arrival side,
//!   because TCP leaves half-open only when both sides have sent (`SEEN_LAN | SEEN_WAN`), and
//!   the guard timer needs a FIN from each side.
//! * No rewrite fields: [`SessionRef::rewrite`] derives them from the keys (see above).
//! * `InsertError::Exists` carries no id; on a SYN during the guard period the worker looks the
//!   key up, sees [`TcpFlags::closing`], removes the old session and inserts again (§1.7).
//!
//! # Speed
//!
//! A hit reads one bucket line and the two record lines. At millions of sessions these are
//! DRAM misses (~160 ns each on the benchmark VM), and on 4 KiB pages TLB misses too, so
//! every array of the table is a `svr_hotmem::HugeSlice`: 2 MiB-aligned and advised onto
//! transparent huge pages (THP `always` or `madvise`; plain pages otherwise). A single
//! `lookup` is a chain of two dependent misses. `lookup_batch` follows DPDK's bulk lookup:
//! hash all keys and prefetch their home buckets, pick each key's first tag match and
//! prefetch both record lines, then read; so a burst keeps ~20 misses in flight and costs
//! about one line-fetch slot per line (3 per hit). Benchmarks belong in `benches/`.
//!
//! # Limits
//!
//! * Writers are not lock-free: an insert spins while another insert holds one of its home
//!   buckets (a few hundred nanoseconds at most, unless the holder is descheduled).
//! * A generation is 32 bits: an id held across 2^32 reuses of one entry would match again.
//! * Capacity is a `u32`; the table's allocation is checked by config validation, not here.

mod expiry;
mod key;
mod table;
mod types;
mod wayport;

pub use expiry::{SessionTimeouts, Sweeper};
pub use key::{FlowHasher, FlowKey};
pub use table::{MemoryUsage, SessionTable};
pub use types::{
    InsertError, MetadataState, Role, SessionId, SessionInit, SessionRef, SessionView, Side,
    TcpFlags,
};
pub use wayport::{
    Claim, ClaimError, WayportAllocator, WayportError, WayportMode, WayportRange, Wayports,
    CLAIM_ATTEMPTS,
};

/// Milliseconds of an [`crate::time::Instant`] as the table keeps them (for the SVR sweep).
pub(crate) use table::millis as now_millis;

#[cfg(test)]
mod test;
