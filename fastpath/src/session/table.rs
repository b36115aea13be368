//! [`SessionTable`]: the index (buckets of tagged slots), the record arena, the free list.
//! The design and its memory-ordering argument are in the module doc of [`super`].

use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::ops::Deref;

use svr_hotmem::{prefetch, HugeSlice};

use super::key::{FlowHasher, FlowKey, KEY_WORDS};
use super::types::{
    InsertError, MetadataState, Role, SessionId, SessionInit, SessionRef, SessionView, Side,
    TcpFlags,
};
use crate::time::Instant;

// ---- state word of a record -------------------------------------------------------------
//
//  bits  0..2   lifecycle: FREE, INIT (being written by its inserter), LIVE
//  bit   2      role (0 ingress, 1 egress)
//  bits  3..5   timeout class (tcp, udp, icmp, other), from the LAN key's protocol
//  bits  5..10  TcpFlags
//  bits 10..20  MetadataState (MetadataState::encode)
//  bits 20..28  payload key index
//  bits 28..32  WAN rebind epoch: odd while `rebind_wan` rewrites the WAN key (a seqlock over
//               the key words of a live record; readers retry, removers wait)
//  bits 32..64  generation

const LIFE_MASK: u64 = 0b11;
const FREE: u64 = 0;
const INIT: u64 = 1;
const LIVE: u64 = 2;
const ROLE_EGRESS: u64 = 1 << 2;
const CLASS_SHIFT: u32 = 3;
const FLAGS_SHIFT: u32 = 5;
const META_SHIFT: u32 = 10;
const META_MASK: u64 = 0x3ff << META_SHIFT;
const PKI_SHIFT: u32 = 20;
const EPOCH_SHIFT: u32 = 28;
const EPOCH_MASK: u64 = 0xf << EPOCH_SHIFT;
const GEN_SHIFT: u32 = 32;
/// The bits that name one incarnation of a record and its keys; a reader's copy is consistent
/// when these did not change while it read.
const IDENTITY_MASK: u64 = !0 << GEN_SHIFT | EPOCH_MASK | LIFE_MASK;

/// True while `rebind_wan`, `set_duplicate` or `promote_duplicate` is rewriting the record's
/// WAN keys.
const fn rebinding(state: u64) -> bool {
    (state >> EPOCH_SHIFT) & 1 != 0
}

/// `state` with its rebind epoch advanced by one (wrapping in its 4 bits).
const fn next_epoch(state: u64) -> u64 {
    let e = ((state >> EPOCH_SHIFT) + 1) & 0xf;
    (state & !EPOCH_MASK) | e << EPOCH_SHIFT
}

const fn generation(state: u64) -> u32 {
    (state >> GEN_SHIFT) as u32
}

/// Timeout class of a session, from the protocol of its LAN key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeoutClass {
    Tcp = 0,
    Udp = 1,
    Icmp = 2,
    Other = 3,
}

impl TimeoutClass {
    pub(crate) fn of_proto(proto: u8) -> TimeoutClass {
        match proto {
            6 => TimeoutClass::Tcp,
            17 => TimeoutClass::Udp,
            1 | 58 => TimeoutClass::Icmp,
            _ => TimeoutClass::Other,
        }
    }

    fn from_state(s: u64) -> TimeoutClass {
        match (s >> CLASS_SHIFT) & 3 {
            0 => TimeoutClass::Tcp,
            1 => TimeoutClass::Udp,
            2 => TimeoutClass::Icmp,
            _ => TimeoutClass::Other,
        }
    }
}

/// Milliseconds of `now` on the caller's clock.
pub(crate) const fn millis(now: Instant) -> u64 {
    now.as_nanos() / 1_000_000
}

/// Pads and aligns `T` to 128 bytes (two cache lines: the adjacent-line prefetcher pairs them)
/// so that a hot atomic shares its line with nothing.
#[repr(align(128))]
#[derive(Default)]
struct Padded<T>(T);

impl<T> Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

// ---- index -----------------------------------------------------------------------------

/// Slots per bucket (the eighth word of the cache line is `ctrl`).
pub(crate) const SLOTS: usize = 7;
/// Maximum fraction of index slots in use when the arena is full (2 entries per session, 3
/// in a table with duplicate keys).
const MAX_LOAD_PERCENT: usize = 70;
/// `ctrl` bit 63: writer lock of keys whose home is this bucket. Readers never look at it.
const LOCK: u64 = 1 << 63;
/// `ctrl` bits 0..63: how many keys whose probe passed this bucket live in a later one (at
/// most 2 × capacity < 2^33, so it never reaches the lock bit).
const OVERFLOW_MASK: u64 = !LOCK;

/// One cache line: `ctrl` and seven slots. A slot is `tag << 32 | (arena index + 1)`, 0 when
/// empty; the tag is the low 32 bits of the key's hash.
#[repr(C, align(64))]
#[derive(Default)]
struct Bucket {
    ctrl: AtomicU64,
    slots: [AtomicU64; SLOTS],
}

const fn slot_value(hash: u64, index: u32) -> u64 {
    (hash << 32) | (index as u64 + 1)
}

// ---- arena -----------------------------------------------------------------------------

/// One session, two cache lines, 128-byte aligned. Every field is an atomic, so workers read
/// it without locks in safe Rust. `info`, `lan` and `wan` are written only while the state is
/// INIT; the other fields change while LIVE, each on its own.
#[repr(C, align(128))]
#[derive(Default)]
struct Record {
    // line 0: what a lookup reads
    state: AtomicU64,
    /// `key_handle | replay_slot << 32`.
    info: AtomicU64,
    lan: [AtomicU64; KEY_WORDS],
    // `wan` straddles the two lines (bytes 56..96)
    wan: [AtomicU64; KEY_WORDS],
    // line 1: what workers write
    /// Last packet, in ms of the caller's clock.
    last_seen_ms: AtomicU64,
    /// Start of the TCP guard period in ms + 1; 0 = not started.
    guard_ms: AtomicU64,
    /// Next TX sequence number per direction, indexed by the `Side` the packet leaves on.
    tx_seq: [AtomicU64; 2],
}

/// Per-session traffic counters, indexed by the [`Side`] the packets arrived on: 32 bytes,
/// two sessions per cache line, apart from the record (which is exactly two lines). Written
/// by [`SessionTable::touch`] with a Relaxed load and store, not a read-modify-write: packets
/// of one direction of a session are handled by one worker (RSS keeps a 5-tuple on one
/// queue), so there is one writer per word. When two workers do handle the same direction
/// at once (the moment a session moves to another waypoint pair), an increment can be lost:
/// these are numbers for operators, not for billing.
#[repr(C, align(32))]
#[derive(Default)]
struct Counters {
    /// Packets, by arrival side.
    packets: [AtomicU64; 2],
    /// Bytes (LAN-side IP length, see [`SessionTable::touch`]), by arrival side.
    bytes: [AtomicU64; 2],
}

/// Memory used by a [`SessionTable`], in bytes, all allocated at construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Sessions the table can hold.
    pub capacity: usize,
    /// Hash index: buckets of tagged slots (two entries per session, at most 70 % full).
    pub index_bytes: usize,
    /// Free list links (4 bytes per session).
    pub free_list_bytes: usize,
    /// Session records: the 128-byte hot record, plus kept apart the 16-byte UUID with the
    /// 8-byte creation time and the 32 bytes of packet and byte counters (184 B).
    pub record_bytes: usize,
    /// `packet-duplication`: the second WAN key of each record (40 bytes per session), only
    /// in a table built with duplicate keys ([`SessionTable::with_duplicate_keys`]); 0
    /// otherwise. (The index of such a table is sized for three keys per session, which
    /// `index_bytes` includes.)
    pub duplicate_key_bytes: usize,
}

impl MemoryUsage {
    /// Table overhead per session: index and free list, excluding the session record.
    pub fn overhead_per_session(&self) -> f64 {
        (self.index_bytes + self.free_list_bytes) as f64 / self.capacity.max(1) as f64
    }

    /// Record bytes per session (fields the data path uses).
    pub fn record_per_session(&self) -> f64 {
        self.record_bytes as f64 / self.capacity.max(1) as f64
    }

    /// Everything per session.
    pub fn total_per_session(&self) -> f64 {
        (self.index_bytes + self.free_list_bytes + self.record_bytes + self.duplicate_key_bytes)
            as f64
            / self.capacity.max(1) as f64
    }
}

/// The SVR session table: fixed capacity, lock-free lookups from every worker, each session
/// reachable by its LAN key and its WAN key. See the module doc of [`super`].
pub struct SessionTable {
    hasher: FlowHasher,
    // All four arrays are on 2 MiB pages when the kernel allows (`HugeSlice`): at millions of
    // sessions a 4 KiB-page TLB miss per access would cost as much as the cache miss.
    buckets: HugeSlice<Bucket>,
    records: HugeSlice<Record>,
    /// Session UUIDs (words 0 and 1) and creation times (word 2, ms of the caller's clock),
    /// apart from the hot record: read only when building metadata and by management.
    uuids: HugeSlice<[AtomicU64; 3]>,
    /// Packet and byte counters per direction, apart from the hot record (one more line a
    /// packet writes; [`SessionTable::lookup`] prefetches it on a hit).
    counters: HugeSlice<Counters>,
    /// `packet-duplication`: each record's second WAN key ("duplicate key", all words 0 when
    /// it has none; a valid key is never all zero), under the same seqlock as `wan`. Empty
    /// unless the table was built [`SessionTable::with_duplicate_keys`]: routers without a
    /// duplication service pay nothing. Apart from the record, which is exactly two lines.
    dups: HugeSlice<[AtomicU64; KEY_WORDS]>,
    /// Free list links: `next[i]` is the arena index + 1 below `i` on the stack, 0 at the end.
    next: HugeSlice<AtomicU32>,
    /// Treiber stack head: `tag << 32 | (arena index + 1)`; the tag changes on every push and
    /// pop, so a stale head cannot be swapped back in (ABA).
    free_head: Padded<AtomicU64>,
    live: Padded<AtomicU64>,
}

impl core::fmt::Debug for SessionTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionTable")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("buckets", &self.buckets.len())
            .finish()
    }
}

/// Unlocks the bucket locks an insert took, on every path out of `insert`.
struct BucketLocks<'a> {
    table: &'a SessionTable,
    first: usize,
    second: Option<usize>,
}

impl Drop for BucketLocks<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.second {
            self.table.unlock(b);
        }
        self.table.unlock(self.first);
    }
}

impl SessionTable {
    /// A table for `capacity` sessions with random hash seeds. Allocates everything now and
    /// never again; about `capacity × 214` bytes (see [`SessionTable::memory`]).
    pub fn with_capacity(capacity: u32) -> SessionTable {
        Self::with_hasher(capacity, FlowHasher::random())
    }

    /// Same as [`SessionTable::with_capacity`] with a given hasher (repeatable tests and
    /// benchmarks).
    pub fn with_hasher(capacity: u32, hasher: FlowHasher) -> SessionTable {
        Self::build(capacity, hasher, false)
    }

    /// A table whose sessions may each have a second WAN key (`packet-duplication`: the
    /// session's copies arrive on a second waypoint pair; [`SessionTable::set_duplicate`]).
    /// Costs 40 bytes of key per session plus an index sized for three keys per session
    /// instead of two: about 53 bytes more per session (see [`SessionTable::memory`]).
    pub fn with_duplicate_keys(capacity: u32) -> SessionTable {
        Self::build(capacity, FlowHasher::random(), true)
    }

    /// Any of the above: `duplicate_keys` gives each record room for a second WAN key.
    pub fn build(capacity: u32, hasher: FlowHasher, duplicate_keys: bool) -> SessionTable {
        let cap = capacity as usize;
        let keys_per_session = if duplicate_keys { 3 } else { 2 };
        let slots = (keys_per_session * cap * 100).div_ceil(MAX_LOAD_PERCENT);
        let nbuckets = slots.div_ceil(SLOTS).max(1);
        let buckets = HugeSlice::from_fn(nbuckets, |_| Bucket::default());
        let records = HugeSlice::from_fn(cap, |_| Record::default());
        let uuids = HugeSlice::from_fn(cap, |_| Default::default());
        let counters = HugeSlice::from_fn(cap, |_| Counters::default());
        let dups = HugeSlice::from_fn(if duplicate_keys { cap } else { 0 }, |_| Default::default());
        // Stack order: index 0 on top, so a fresh table hands out 0, 1, 2, …
        let next = HugeSlice::from_fn(cap, |i| {
            AtomicU32::new(if i + 1 < cap { i as u32 + 2 } else { 0 })
        });
        let head = if cap > 0 { 1 } else { 0 };
        SessionTable {
            hasher,
            buckets,
            records,
            uuids,
            counters,
            dups,
            next,
            free_head: Padded(AtomicU64::new(head)),
            live: Padded(AtomicU64::new(0)),
        }
    }

    /// Sessions the table can hold.
    pub fn capacity(&self) -> usize {
        self.records.len()
    }

    /// Live sessions (exact when no insert or remove is in flight).
    pub fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed) as usize
    }

    /// True when no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hasher (a per-worker flow cache in front of the table hashes with the same one).
    pub fn hasher(&self) -> &FlowHasher {
        &self.hasher
    }

    /// Bytes allocated, by part.
    pub fn memory(&self) -> MemoryUsage {
        MemoryUsage {
            capacity: self.capacity(),
            index_bytes: core::mem::size_of_val(&*self.buckets),
            free_list_bytes: core::mem::size_of_val(&*self.next),
            record_bytes: core::mem::size_of_val(&*self.records)
                + core::mem::size_of_val(&*self.uuids)
                + core::mem::size_of_val(&*self.counters),
            duplicate_key_bytes: core::mem::size_of_val(&*self.dups),
        }
    }

    /// True when sessions may have a second WAN key ([`SessionTable::with_duplicate_keys`]).
    pub fn has_duplicate_keys(&self) -> bool {
        !self.dups.is_empty()
    }

    /// All bytes allocated per session of capacity (index, free list and records).
    pub fn bytes_per_session(&self) -> f64 {
        self.memory().total_per_session()
    }

    /// Size of the hot session record.
    pub const RECORD_BYTES: usize = core::mem::size_of::<Record>();

    // ---- index helpers --------------------------------------------------------------

    /// Home bucket of a hash: the high 32 bits scaled to the bucket count (Lemire's
    /// multiply-shift range reduction, so the count need not be a power of two).
    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        (((hash >> 32) * self.buckets.len() as u64) >> 32) as usize
    }

    #[inline(always)]
    fn next_bucket(&self, b: usize) -> usize {
        if b + 1 == self.buckets.len() {
            0
        } else {
            b + 1
        }
    }

    fn lock(&self, b: usize) {
        let ctrl = &self.buckets[b].ctrl;
        let mut spins = 0u32;
        while ctrl.fetch_or(LOCK, Ordering::Acquire) & LOCK != 0 {
            while ctrl.load(Ordering::Relaxed) & LOCK != 0 {
                spins += 1;
                if spins < 128 {
                    std::hint::spin_loop();
                } else {
                    // The holder was descheduled (tests with more threads than cores);
                    // pinned workers never get here.
                    std::thread::yield_now();
                }
            }
        }
    }

    fn unlock(&self, b: usize) {
        self.buckets[b].ctrl.fetch_and(!LOCK, Ordering::Release);
    }

    // ---- reading a record -----------------------------------------------------------

    fn load_key(words: &[AtomicU64; KEY_WORDS]) -> FlowKey {
        FlowKey::from_words(core::array::from_fn(|i| words[i].load(Ordering::Relaxed)))
    }

    /// Record `index`'s duplicate key (Relaxed loads, inside a seqlock read or by the owner
    /// of the entry); `None` when it has none or the table keeps none.
    #[inline(always)]
    fn load_dup(&self, index: u32) -> Option<FlowKey> {
        let words = self.dups.get(index as usize)?;
        let k = Self::load_key(words);
        (k.words() != [0; KEY_WORDS]).then_some(k)
    }

    fn store_key(words: &[AtomicU64; KEY_WORDS], key: Option<&FlowKey>) {
        let v = key.map_or([0; KEY_WORDS], FlowKey::words);
        for (w, v) in words.iter().zip(v) {
            w.store(v, Ordering::Relaxed);
        }
    }

    /// `a == b` without branches or a `memcmp` call (the derived `==` on the word array
    /// compiles to one).
    #[inline(always)]
    fn same_key(a: &FlowKey, b: &FlowKey) -> bool {
        let (a, b) = (a.words(), b.words());
        (0..KEY_WORDS).fold(0, |d, i| d | (a[i] ^ b[i])) == 0
    }

    /// A consistent copy of record `index` if it is live and (when `probe` is given) one of
    /// its keys equals `probe`, or it is generation `want_gen` (when given).
    ///
    /// Seqlock read: state (Acquire), fields (Relaxed), Acquire fence, state again; the copy
    /// is good if generation and lifecycle did not change in between. A writer only rewrites
    /// `info`/`lan`/`wan` after moving the state to a new generation and issuing a Release
    /// fence, so a read that saw any new field value sees the new state on the second load.
    #[inline(always)]
    fn read(
        &self,
        index: u32,
        probe: Option<&FlowKey>,
        want: Option<(u32, Side)>,
    ) -> Option<SessionRef> {
        let r = self.records.get(index as usize)?;
        loop {
            let s1 = r.state.load(Ordering::Acquire);
            if s1 & LIFE_MASK != LIVE {
                return None;
            }
            if rebinding(s1) {
                // Its WAN key is being rewritten (a few stores): wait for the new one.
                std::hint::spin_loop();
                continue;
            }
            if let Some((g, _)) = want {
                if generation(s1) != g {
                    return None;
                }
            }
            let lan = Self::load_key(&r.lan);
            let wan = Self::load_key(&r.wan);
            let dup = self.load_dup(index);
            let info = r.info.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            let s2 = r.state.load(Ordering::Relaxed);
            if (s1 ^ s2) & IDENTITY_MASK != 0 {
                // Removed (and maybe reused) while we read: look again.
                continue;
            }
            let (side, via_duplicate) = match (probe, want) {
                (Some(k), _) if Self::same_key(k, &lan) => (Side::Lan, false),
                (Some(k), _) if Self::same_key(k, &wan) => (Side::Wan, false),
                (Some(k), _) if dup.is_some_and(|d| Self::same_key(k, &d)) => (Side::Wan, true),
                (Some(_), _) => return None,
                (None, Some((_, side))) => (side, false),
                (None, None) => (Side::Lan, false),
            };
            return Some(SessionRef {
                id: SessionId {
                    index,
                    generation: generation(s1),
                },
                side,
                via_duplicate,
                role: if s1 & ROLE_EGRESS != 0 {
                    Role::Egress
                } else {
                    Role::Ingress
                },
                lan_key: lan,
                wan_key: wan,
                dup_key: dup,
                payload_key_index: (s1 >> PKI_SHIFT) as u8,
                key_handle: info as u32,
                replay_slot: (info >> 32) as u32,
                metadata: MetadataState::decode(s1 >> META_SHIFT),
                tcp: TcpFlags::from_bits((s1 >> FLAGS_SHIFT) as u8),
            });
        }
    }

    // ---- lookups --------------------------------------------------------------------

    /// The live session whose LAN or WAN key is `key`. Lock-free: never waits for a writer;
    /// retries a record only if it was removed while being copied.
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> Option<SessionRef> {
        self.lookup_hashed(key, self.hasher.hash(key))
    }

    /// [`SessionTable::lookup`] with the hash already computed by [`SessionTable::hasher`].
    #[inline]
    pub fn lookup_hashed(&self, key: &FlowKey, hash: u64) -> Option<SessionRef> {
        let tag = hash as u32;
        let mut b = self.home(hash);
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[b];
            for slot in &bucket.slots {
                let v = slot.load(Ordering::Acquire);
                if v != 0 && (v >> 32) as u32 == tag {
                    if let Some(r) = self.read(v as u32 - 1, Some(key), None) {
                        // The packet's `touch` writes them a few hundred cycles later.
                        self.prefetch_counters(v as u32 - 1);
                        return Some(r);
                    }
                }
            }
            if bucket.ctrl.load(Ordering::Acquire) & OVERFLOW_MASK == 0 {
                return None;
            }
            b = self.next_bucket(b);
        }
        None
    }

    /// Looks up a burst: `out[i] = lookup(&keys[i])`, with the cache misses of different keys
    /// overlapped instead of taken one after another (DPDK `rte_hash_lookup_bulk`'s stages):
    ///
    /// 1. hash every key and prefetch its home bucket;
    /// 2. find the first slot of the home bucket whose tag matches, and prefetch both lines of
    ///    that record;
    /// 3. read each candidate record (seqlock copy, full key compare). A key with no tag match
    ///    in its home bucket, or whose candidate was not it (tag collision, removed meanwhile),
    ///    takes the ordinary probe of [`SessionTable::lookup_hashed`], from lines now cached.
    ///
    /// Every answer is one `lookup` could have given: a candidate is returned only after the
    /// same consistent read and key comparison.
    pub fn lookup_batch<const N: usize>(
        &self,
        keys: &[FlowKey; N],
        out: &mut [Option<SessionRef>; N],
    ) {
        /// No tag match in the home bucket.
        const NONE: u32 = u32::MAX;
        let mut hashes = [0u64; N];
        for (h, k) in hashes.iter_mut().zip(keys) {
            *h = self.hasher.hash(k);
            prefetch(&self.buckets[self.home(*h)]);
        }
        let mut cand = [NONE; N];
        for (c, h) in cand.iter_mut().zip(&hashes) {
            let tag = *h as u32;
            for slot in &self.buckets[self.home(*h)].slots {
                let v = slot.load(Ordering::Acquire);
                if v != 0 && (v >> 32) as u32 == tag {
                    let index = v as u32 - 1;
                    if let Some(r) = self.records.get(index as usize) {
                        prefetch(&r.state);
                        prefetch(&r.last_seen_ms);
                        self.prefetch_counters(index);
                        *c = index;
                    }
                    break;
                }
            }
        }
        for (((o, k), h), c) in out.iter_mut().zip(keys).zip(&hashes).zip(&cand) {
            let found = if *c == NONE {
                None
            } else {
                self.read(*c, Some(k), None)
            };
            *o = found.or_else(|| self.lookup_hashed(k, *h));
        }
    }

    #[inline(always)]
    fn prefetch_counters(&self, index: u32) {
        if let Some(c) = self.counters.get(index as usize) {
            prefetch(c);
        }
    }

    /// A fresh copy of session `id` as seen from `side` (for a per-worker flow cache that
    /// stores ids: it re-validates with this). `None` once the session was removed.
    pub fn get(&self, id: SessionId, side: Side) -> Option<SessionRef> {
        self.read(id.index, None, Some((id.generation, side)))
    }

    /// The session UUID of `id`.
    pub fn uuid(&self, id: SessionId) -> Option<[u8; 16]> {
        let r = self.records.get(id.index as usize)?;
        let u = &self.uuids[id.index as usize];
        let s1 = r.state.load(Ordering::Acquire);
        if s1 & LIFE_MASK != LIVE || generation(s1) != id.generation {
            return None;
        }
        let (hi, lo) = (u[0].load(Ordering::Relaxed), u[1].load(Ordering::Relaxed));
        fence(Ordering::Acquire);
        let s2 = r.state.load(Ordering::Relaxed);
        if (s1 ^ s2) & IDENTITY_MASK != 0 {
            return None;
        }
        Some(((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes())
    }

    // ---- insert ---------------------------------------------------------------------

    /// True when a live session has `key` (writers' check, under the home bucket lock).
    fn contains_hashed(&self, key: &FlowKey, hash: u64) -> bool {
        self.lookup_hashed(key, hash).is_some()
    }

    /// Puts `value` in the first empty slot of `hash`'s probe sequence, counting the overflow
    /// in every full bucket passed *before* moving on, so that a reader who does not find the
    /// key in a bucket sees a non-zero count there and keeps probing.
    fn place(&self, hash: u64, value: u64) -> Result<(), ()> {
        let home = self.home(hash);
        let mut b = home;
        for _ in 0..self.buckets.len() {
            for slot in &self.buckets[b].slots {
                if slot.load(Ordering::Relaxed) == 0
                    && slot
                        .compare_exchange(0, value, Ordering::Release, Ordering::Relaxed)
                        .is_ok()
                {
                    return Ok(());
                }
            }
            self.buckets[b].ctrl.fetch_add(1, Ordering::AcqRel);
            b = self.next_bucket(b);
        }
        // Cannot happen: the index has more slots than keys the arena can hold (two per
        // session, three with duplicate keys). Undo the counts so the index stays consistent.
        self.uncount(home, self.buckets.len());
        Err(())
    }

    /// Decrements the overflow count of `n` buckets starting at `home`.
    fn uncount(&self, home: usize, n: usize) {
        let mut b = home;
        for _ in 0..n {
            let prev = self.buckets[b].ctrl.fetch_sub(1, Ordering::AcqRel);
            debug_assert!(prev & OVERFLOW_MASK != 0, "overflow count underflow");
            b = self.next_bucket(b);
        }
    }

    /// Clears the slot holding `value` in `hash`'s probe sequence, then decrements the counts
    /// of the buckets its insert passed.
    fn unplace(&self, hash: u64, value: u64) {
        let home = self.home(hash);
        let mut b = home;
        for passed in 0..self.buckets.len() {
            for slot in &self.buckets[b].slots {
                if slot.load(Ordering::Relaxed) == value
                    && slot
                        .compare_exchange(value, 0, Ordering::Release, Ordering::Relaxed)
                        .is_ok()
                {
                    self.uncount(home, passed);
                    return;
                }
            }
            b = self.next_bucket(b);
        }
        debug_assert!(false, "index entry of a live session not found");
    }

    fn pop_free(&self) -> Option<u32> {
        let mut head = self.free_head.load(Ordering::Acquire);
        loop {
            let top = head as u32;
            if top == 0 {
                return None;
            }
            let below = self.next[top as usize - 1].load(Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(below);
            match self.free_head.compare_exchange_weak(
                head,
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(top - 1),
                Err(h) => head = h,
            }
        }
    }

    fn push_free(&self, index: u32) {
        let mut head = self.free_head.load(Ordering::Relaxed);
        loop {
            self.next[index as usize].store(head as u32, Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(index + 1);
            match self.free_head.compare_exchange_weak(
                head,
                new,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Creates a session reachable by `lan_key` and by `wan_key`; both keys become visible
    /// together (the record turns LIVE after both index entries are in place).
    ///
    /// `lan_key` is the 5-tuple of packets arriving on the LAN side and `wan_key` that of
    /// packets arriving from the peer, both as received (see [`SessionRef::rewrite`]).
    /// Writers of keys with the same home bucket serialise on a bit in that bucket; readers
    /// never do.
    pub fn insert(
        &self,
        lan_key: FlowKey,
        wan_key: FlowKey,
        init: SessionInit,
        now: Instant,
    ) -> Result<SessionId, InsertError> {
        if lan_key == wan_key {
            return Err(InsertError::Exists);
        }
        let (hl, hw) = (self.hasher.hash(&lan_key), self.hasher.hash(&wan_key));
        let (bl, bw) = (self.home(hl), self.home(hw));
        // Lock in bucket order: two inserters never wait on each other in a cycle.
        let (first, second) = (bl.min(bw), bl.max(bw));
        self.lock(first);
        let second = (second != first).then(|| {
            self.lock(second);
            second
        });
        let _locks = BucketLocks {
            table: self,
            first,
            second,
        };

        if self.contains_hashed(&lan_key, hl) || self.contains_hashed(&wan_key, hw) {
            return Err(InsertError::Exists);
        }
        let index = self.pop_free().ok_or(InsertError::Full)?;
        let r = &self.records[index as usize];
        // We own the entry: it is FREE and off the free list. Readers that still hold an old
        // index slot of it may read it concurrently; they check the state.
        let gen = generation(r.state.load(Ordering::Relaxed));
        let base = u64::from(gen) << GEN_SHIFT;
        r.state.store(base | INIT, Ordering::Relaxed);
        fence(Ordering::Release);
        let (lw, ww) = (lan_key.words(), wan_key.words());
        for i in 0..KEY_WORDS {
            r.lan[i].store(lw[i], Ordering::Relaxed);
            r.wan[i].store(ww[i], Ordering::Relaxed);
        }
        r.info.store(
            u64::from(init.key_handle) | u64::from(init.replay_slot) << 32,
            Ordering::Relaxed,
        );
        if let Some(d) = self.dups.get(index as usize) {
            Self::store_key(d, None);
        }
        let u = u128::from_be_bytes(init.uuid);
        let uu = &self.uuids[index as usize];
        uu[0].store((u >> 64) as u64, Ordering::Relaxed);
        uu[1].store(u as u64, Ordering::Relaxed);
        uu[2].store(millis(now), Ordering::Relaxed);
        let c = &self.counters[index as usize];
        for w in c.packets.iter().chain(&c.bytes) {
            w.store(0, Ordering::Relaxed);
        }
        r.last_seen_ms.store(millis(now), Ordering::Relaxed);
        r.guard_ms.store(0, Ordering::Relaxed);
        r.tx_seq[0].store(0, Ordering::Relaxed);
        r.tx_seq[1].store(0, Ordering::Relaxed);

        let lv = slot_value(hl, index);
        if self.place(hl, lv).is_err() {
            r.state.store(base | FREE, Ordering::Release);
            self.push_free(index);
            return Err(InsertError::Full);
        }
        if self.place(hw, slot_value(hw, index)).is_err() {
            self.unplace(hl, lv);
            r.state.store(base | FREE, Ordering::Release);
            self.push_free(index);
            return Err(InsertError::Full);
        }

        // The first packet came from the LAN at the ingress and from the WAN at the egress.
        let seen = match init.role {
            Role::Ingress => TcpFlags::SEEN_LAN,
            Role::Egress => TcpFlags::SEEN_WAN,
        };
        let class = TimeoutClass::of_proto(lan_key.proto()) as u64;
        let role = if init.role == Role::Egress {
            ROLE_EGRESS
        } else {
            0
        };
        let live = base
            | LIVE
            | role
            | class << CLASS_SHIFT
            | u64::from(seen.bits()) << FLAGS_SHIFT
            | init.metadata.encode() << META_SHIFT
            | u64::from(init.payload_key_index) << PKI_SHIFT;
        r.state.store(live, Ordering::Release);
        self.live.fetch_add(1, Ordering::Relaxed);
        Ok(SessionId {
            index,
            generation: gen,
        })
    }

    // ---- remove ---------------------------------------------------------------------

    /// Removes session `id`; false if it is already gone (stale id). The state CAS is the
    /// moment it disappears for readers; its index entries are then cleared and the arena
    /// entry goes back on the free list, in that order, so a reused entry is never reachable
    /// through an old slot with a matching key *and* the old generation.
    pub fn remove(&self, id: SessionId) -> bool {
        self.remove_keys(id).is_some()
    }

    /// [`Self::remove`], returning the WAN key and second WAN key the session had at the
    /// moment it disappeared (their wayports are the remover's to give back); `None` when
    /// it was gone already.
    pub fn remove_keys(&self, id: SessionId) -> Option<(FlowKey, Option<FlowKey>)> {
        let r = self.records.get(id.index as usize)?;
        let mut s = r.state.load(Ordering::Acquire);
        loop {
            if s & LIFE_MASK != LIVE || generation(s) != id.generation {
                return None;
            }
            if rebinding(s) {
                // The keys are being rewritten: remove the finished record.
                std::thread::yield_now();
                s = r.state.load(Ordering::Acquire);
                continue;
            }
            let freed = u64::from(id.generation.wrapping_add(1)) << GEN_SHIFT | FREE;
            match r
                .state
                .compare_exchange_weak(s, freed, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        // We own the entry now; nobody else writes its keys.
        let lan = Self::load_key(&r.lan);
        let wan = Self::load_key(&r.wan);
        let (hl, hw) = (self.hasher.hash(&lan), self.hasher.hash(&wan));
        self.unplace(hl, slot_value(hl, id.index));
        self.unplace(hw, slot_value(hw, id.index));
        let dup = self.load_dup(id.index);
        if let Some(dup) = dup {
            let hd = self.hasher.hash(&dup);
            self.unplace(hd, slot_value(hd, id.index));
        }
        self.live.fetch_sub(1, Ordering::Relaxed);
        self.push_free(id.index);
        Some((wan, dup))
    }

    // ---- moving a session ---------------------------------------------------------------

    /// Gives live session `id` a new WAN key (a session moved to another waypoint pair keeps
    /// its LAN key, UUID, keys, sequence numbers and id; only the 5-tuple its peer packets
    /// arrive with changes). Returns the old WAN key.
    ///
    /// A seqlock over the key words: the state's rebind epoch turns odd (one CAS, so it
    /// orders against a remover's CAS), the key is rewritten, the new index entry placed and
    /// the old one cleared, and the epoch turns even. Readers that overlap retry (they never
    /// see a torn key or miss the session's LAN key), removers wait. Writers of `new_wan`'s
    /// home bucket serialise with inserts on its lock. `Exists` when a live session has
    /// `new_wan`, `id` is gone or is being moved already; `Full` if the index has no slot.
    /// The epoch has 4 bits: a reader would have to stall across 8 moves of one session to
    /// accept a torn copy.
    pub fn rebind_wan(&self, id: SessionId, new_wan: FlowKey) -> Result<FlowKey, InsertError> {
        let r = self
            .records
            .get(id.index as usize)
            .ok_or(InsertError::Exists)?;
        let hn = self.hasher.hash(&new_wan);
        let home = self.home(hn);
        self.lock(home);
        let _locks = BucketLocks {
            table: self,
            first: home,
            second: None,
        };
        if self.contains_hashed(&new_wan, hn) {
            return Err(InsertError::Exists);
        }
        Self::begin_rewrite(r, id)?;
        let old = Self::load_key(&r.wan);
        let nw = new_wan.words();
        for (w, v) in r.wan.iter().zip(nw) {
            w.store(v, Ordering::Relaxed);
        }
        let placed = self.place(hn, slot_value(hn, id.index)).is_ok();
        if placed {
            let ho = self.hasher.hash(&old);
            self.unplace(ho, slot_value(ho, id.index));
        } else {
            // Cannot happen (see `place`); put the old key back.
            for (w, v) in r.wan.iter().zip(old.words()) {
                w.store(v, Ordering::Relaxed);
            }
        }
        Self::end_rewrite(r);
        if placed {
            Ok(old)
        } else {
            Err(InsertError::Full)
        }
    }

    /// Opens the seqlock over live record `id`'s WAN keys: its rebind epoch turns odd (one
    /// CAS, so it orders against a remover's CAS; readers retry, removers wait until
    /// [`Self::end_rewrite`]). `Exists` when `id` is gone or another rewrite is under way.
    fn begin_rewrite(r: &Record, id: SessionId) -> Result<(), InsertError> {
        let mut s = r.state.load(Ordering::Acquire);
        loop {
            if s & LIFE_MASK != LIVE || generation(s) != id.generation || rebinding(s) {
                return Err(InsertError::Exists);
            }
            match r.state.compare_exchange_weak(
                s,
                next_epoch(s),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        fence(Ordering::Release);
        Ok(())
    }

    /// Closes the seqlock: the epoch turns even again (other fields of the state may have
    /// changed meanwhile, hence the loop).
    fn end_rewrite(r: &Record) {
        let mut s = r.state.load(Ordering::Acquire);
        loop {
            match r.state.compare_exchange_weak(
                s,
                next_epoch(s),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
    }

    /// `packet-duplication`: replaces live session `id`'s second WAN key `from` (`None`: it
    /// has none) by `to` (`None`: take it away); a compare-and-set, so that of two workers
    /// changing it at once one wins and the other learns it lost (and gives back the
    /// wayports it claimed). The session's copies arrive with the second key, on another
    /// waypoint pair; a lookup of either WAN key finds the session
    /// ([`SessionRef::via_duplicate`] tells which matched).
    ///
    /// The same discipline as [`Self::rebind_wan`]: the new key's home bucket lock against
    /// inserts of the same key, the seqlock epoch over the key words, the new index entry
    /// placed before the old one is cleared. `Exists` when a live session has `to`, `id` is
    /// gone or being rewritten, or its second key is not `from`; `Full` when the table keeps
    /// no second keys ([`Self::with_duplicate_keys`]) or the index has no slot.
    pub fn set_duplicate(
        &self,
        id: SessionId,
        from: Option<FlowKey>,
        to: Option<FlowKey>,
    ) -> Result<(), InsertError> {
        let words = self.dups.get(id.index as usize).ok_or(InsertError::Full)?;
        let r = self
            .records
            .get(id.index as usize)
            .ok_or(InsertError::Exists)?;
        let unplace_old = |old: Option<FlowKey>| {
            if let Some(o) = old {
                let ho = self.hasher.hash(&o);
                self.unplace(ho, slot_value(ho, id.index));
            }
        };
        let Some(new) = to else {
            Self::begin_rewrite(r, id)?;
            let old = self.load_dup(id.index);
            let ok = old == from;
            if ok {
                Self::store_key(words, None);
                unplace_old(old);
            }
            Self::end_rewrite(r);
            return if ok { Ok(()) } else { Err(InsertError::Exists) };
        };
        let hn = self.hasher.hash(&new);
        let home = self.home(hn);
        self.lock(home);
        let _locks = BucketLocks {
            table: self,
            first: home,
            second: None,
        };
        if self.contains_hashed(&new, hn) {
            return Err(InsertError::Exists);
        }
        Self::begin_rewrite(r, id)?;
        let old = self.load_dup(id.index);
        if old != from {
            Self::end_rewrite(r);
            return Err(InsertError::Exists);
        }
        Self::store_key(words, Some(&new));
        let placed = self.place(hn, slot_value(hn, id.index)).is_ok();
        if placed {
            unplace_old(old);
        } else {
            // Cannot happen (see `place`); put the old key back.
            Self::store_key(words, old.as_ref());
        }
        Self::end_rewrite(r);
        if placed {
            Ok(())
        } else {
            Err(InsertError::Full)
        }
    }

    /// `packet-duplication`: live session `id`'s second WAN key becomes its WAN key and the
    /// WAN key (which must still be `wan`) its second one: the survivor of a failed first
    /// path takes the first copy. Both keys stay in the index, so only the key words change,
    /// under the seqlock. `Exists` when `id` is gone or being rewritten, its WAN key is no
    /// longer `wan` (another worker promoted or moved it) or it has no second key.
    pub fn promote_duplicate(&self, id: SessionId, wan: FlowKey) -> Result<(), InsertError> {
        let words = self
            .dups
            .get(id.index as usize)
            .ok_or(InsertError::Exists)?;
        let r = self
            .records
            .get(id.index as usize)
            .ok_or(InsertError::Exists)?;
        Self::begin_rewrite(r, id)?;
        let dup = self
            .load_dup(id.index)
            .filter(|_| Self::load_key(&r.wan) == wan);
        if let Some(dup) = dup {
            Self::store_key(&r.wan, Some(&dup));
            Self::store_key(words, Some(&wan));
        }
        Self::end_rewrite(r);
        dup.map(|_| ()).ok_or(InsertError::Exists)
    }

    // ---- per-packet updates -----------------------------------------------------------

    /// CAS loop over the mutable bits of a live record of generation `id.generation`.
    /// `f` returns the new state word or `None` to leave it. Returns `(old, new)` words.
    fn update_state(
        &self,
        id: SessionId,
        mut f: impl FnMut(u64) -> Option<u64>,
    ) -> Option<(u64, u64)> {
        let r = self.records.get(id.index as usize)?;
        let mut s = r.state.load(Ordering::Acquire);
        loop {
            if s & LIFE_MASK != LIVE || generation(s) != id.generation {
                return None;
            }
            let Some(new) = f(s) else {
                return Some((s, s));
            };
            debug_assert_eq!(new & IDENTITY_MASK, s & IDENTITY_MASK);
            if new == s {
                return Some((s, s));
            }
            match r
                .state
                .compare_exchange_weak(s, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some((s, new)),
                Err(now) => s = now,
            }
        }
    }

    fn set_flags(&self, id: SessionId, add: TcpFlags) -> Option<(TcpFlags, TcpFlags)> {
        let bits = u64::from(add.bits()) << FLAGS_SHIFT;
        let (old, new) = self.update_state(id, |s| Some(s | bits))?;
        Some((
            TcpFlags::from_bits((old >> FLAGS_SHIFT) as u8),
            TcpFlags::from_bits((new >> FLAGS_SHIFT) as u8),
        ))
    }

    /// A packet of `bytes` bytes of session `id` arrived on `side` at `now`. Counts it in the
    /// session's packets and bytes of that side (see [`SessionView`]); writes the last-seen
    /// time only when it moved forward by at least 1 ms (so a busy session's line is written
    /// at most 1000 times a second), and sets the `SEEN_*` flag the first time a side is
    /// seen. False for a stale id.
    ///
    /// The data path passes the packet's IP length on the LAN side (as received from the LAN,
    /// or as restored for it), so both routers of a session count the same bytes; SVR's
    /// metadata, encryption and HMAC are not in it.
    ///
    /// A touch racing with the removal of the same id and the reuse of its entry can move the
    /// new session's last-seen time to `now` and count one packet for it; that only delays
    /// its expiry to what it would be with one more packet.
    #[inline]
    pub fn touch(&self, id: SessionId, side: Side, now: Instant, bytes: usize) -> bool {
        let Some(r) = self.records.get(id.index as usize) else {
            return false;
        };
        let s = r.state.load(Ordering::Acquire);
        if s & LIFE_MASK != LIVE || generation(s) != id.generation {
            return false;
        }
        // One writer per side (see `Counters`): a load and a store, no locked instruction.
        let c = &self.counters[id.index as usize];
        let (p, b) = (&c.packets[side as usize], &c.bytes[side as usize]);
        p.store(p.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        b.store(
            b.load(Ordering::Relaxed).wrapping_add(bytes as u64),
            Ordering::Relaxed,
        );
        let ms = millis(now);
        if r.last_seen_ms.load(Ordering::Relaxed) < ms {
            r.last_seen_ms.store(ms, Ordering::Relaxed);
        }
        let seen = TcpFlags::seen(side);
        if !TcpFlags::from_bits((s >> FLAGS_SHIFT) as u8).contains(seen) {
            return self.set_flags(id, seen).is_some();
        }
        true
    }

    fn start_guard(&self, id: SessionId, flags: TcpFlags, now: Instant) {
        if flags.closing() {
            let r = &self.records[id.index as usize];
            // First closer wins; +1 so that 0 can mean "not started".
            let _ = r.guard_ms.compare_exchange(
                0,
                millis(now) + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// A FIN of session `id` arrived on `side`. When FINs have been seen both ways the TCP
    /// guard timer starts (§1.7). Returns the flags after the update; `None` for a stale id.
    pub fn mark_fin(&self, id: SessionId, side: Side, now: Instant) -> Option<TcpFlags> {
        let (_, new) = self.set_flags(id, TcpFlags::fin(side).union(TcpFlags::seen(side)))?;
        self.start_guard(id, new, now);
        Some(new)
    }

    /// An RST of session `id` arrived (either side): the guard timer starts.
    pub fn mark_rst(&self, id: SessionId, now: Instant) -> Option<TcpFlags> {
        let (_, new) = self.set_flags(id, TcpFlags::RST)?;
        self.start_guard(id, new, now);
        Some(new)
    }

    /// Applies `f` to the metadata state of `id` atomically; returns `(old, new)`, `None` for
    /// a stale id. `f` may run more than once if another worker updates the state at the same
    /// time, so it must be a pure function of its argument.
    pub fn update_metadata(
        &self,
        id: SessionId,
        f: impl Fn(MetadataState) -> MetadataState,
    ) -> Option<(MetadataState, MetadataState)> {
        let (old, new) = self.update_state(id, |s| {
            let m = f(MetadataState::decode(s >> META_SHIFT));
            Some(s & !META_MASK | m.encode() << META_SHIFT)
        })?;
        Some((
            MetadataState::decode(old >> META_SHIFT),
            MetadataState::decode(new >> META_SHIFT),
        ))
    }

    /// Moves the payload-key index of session `id` from `from` to `to` (a payload rekey);
    /// true only for the caller whose compare-and-set made the change, so one worker starts
    /// a rekey. False for a stale id or when the index is no longer `from`.
    pub fn set_payload_key_index(&self, id: SessionId, from: u8, to: u8) -> bool {
        const PKI_MASK: u64 = 0xff << PKI_SHIFT;
        matches!(
            self.update_state(id, |s| ((s >> PKI_SHIFT) as u8 == from)
                .then_some(s & !PKI_MASK | u64::from(to) << PKI_SHIFT)),
            Some((old, new)) if old != new
        )
    }

    /// The next TX sequence number of session `id` for packets leaving on `toward` (starts at
    /// 0). `None` for a stale id. A call racing with removal and reuse of the entry can skip
    /// one number of the new session; receivers' replay windows accept gaps.
    #[inline]
    pub fn next_tx_seq(&self, id: SessionId, toward: Side) -> Option<u64> {
        let r = self.records.get(id.index as usize)?;
        let s = r.state.load(Ordering::Acquire);
        if s & LIFE_MASK != LIVE || generation(s) != id.generation {
            return None;
        }
        Some(r.tx_seq[toward as usize].fetch_add(1, Ordering::Relaxed))
    }

    /// The TX sequence number [`Self::next_tx_seq`] would hand out next for `toward`, without
    /// taking it (a control message checks that the sequence number it echoes was sent).
    /// `None` for a stale id.
    #[inline]
    pub fn peek_tx_seq(&self, id: SessionId, toward: Side) -> Option<u64> {
        let r = self.records.get(id.index as usize)?;
        let s = r.state.load(Ordering::Acquire);
        if s & LIFE_MASK != LIVE || generation(s) != id.generation {
            return None;
        }
        Some(r.tx_seq[toward as usize].load(Ordering::Relaxed))
    }

    // ---- for the sweeper -------------------------------------------------------------

    /// The live session in arena entry `index` (`0..capacity`), for a management reader
    /// walking the table: its copy as seen from the LAN side, its UUID, creation and
    /// last-packet times and its counters ([`SessionView`]). `None` for a free entry or one
    /// that changed while read. Lock-free like [`SessionTable::get`]; never waits on a
    /// worker. The counters are read after the copy without a seqlock: a session removed
    /// and reused meanwhile shows the new one's (small) counts, which the next look fixes.
    pub fn session_at(&self, index: u32) -> Option<SessionView> {
        let v = self.expiry_view(index)?;
        let s = self.get(v.id, Side::Lan)?;
        let uuid = self.uuid(v.id)?;
        let created_ms = self.uuids[index as usize][2].load(Ordering::Relaxed);
        let c = &self.counters[index as usize];
        let by_side =
            |w: &[AtomicU64; 2]| [w[0].load(Ordering::Relaxed), w[1].load(Ordering::Relaxed)];
        Some(SessionView {
            session: s,
            uuid,
            created_ms,
            last_seen_ms: v.last_seen_ms,
            guard_start_ms: v.guard_ms.checked_sub(1),
            packets: by_side(&c.packets),
            bytes: by_side(&c.bytes),
        })
    }

    /// What the sweeper needs of arena entry `index`: its id, class, flags, last-seen and
    /// guard-start (ms + 1, 0 if none); `None` when the entry is not live.
    pub(crate) fn expiry_view(&self, index: u32) -> Option<ExpiryView> {
        let r = self.records.get(index as usize)?;
        let s = r.state.load(Ordering::Acquire);
        if s & LIFE_MASK != LIVE {
            return None;
        }
        Some(ExpiryView {
            id: SessionId {
                index,
                generation: generation(s),
            },
            class: TimeoutClass::from_state(s),
            flags: TcpFlags::from_bits((s >> FLAGS_SHIFT) as u8),
            last_seen_ms: r.last_seen_ms.load(Ordering::Relaxed),
            guard_ms: r.guard_ms.load(Ordering::Relaxed),
        })
    }

    /// Checks the index against the arena: every slot points at a live record one of whose
    /// keys hashes to the slot's tag and probes through this bucket, and every overflow count
    /// equals the number of keys that passed the bucket. Only valid when no writer runs.
    #[cfg(test)]
    pub(crate) fn check_index(&self) -> usize {
        let n = self.buckets.len();
        let mut counts = vec![0u64; n];
        let mut entries = 0;
        for (b, bucket) in self.buckets.iter().enumerate() {
            assert_eq!(
                bucket.ctrl.load(Ordering::Relaxed) & LOCK,
                0,
                "lock left set"
            );
            for slot in &bucket.slots {
                let v = slot.load(Ordering::Relaxed);
                if v == 0 {
                    continue;
                }
                entries += 1;
                let idx = v as u32 - 1;
                let r = &self.records[idx as usize];
                assert_eq!(r.state.load(Ordering::Relaxed) & LIFE_MASK, LIVE);
                let lan = Self::load_key(&r.lan);
                let wan = Self::load_key(&r.wan);
                let dup = self.load_dup(idx);
                let h = [Some(lan), Some(wan), dup]
                    .into_iter()
                    .flatten()
                    .map(|k| self.hasher.hash(&k))
                    .find(|h| slot_value(*h, idx) == v)
                    .expect("slot matches one of its record's keys");
                let mut p = self.home(h);
                while p != b {
                    counts[p] += 1;
                    p = self.next_bucket(p);
                }
            }
        }
        for (b, bucket) in self.buckets.iter().enumerate() {
            assert_eq!(
                bucket.ctrl.load(Ordering::Relaxed) & OVERFLOW_MASK,
                counts[b],
                "overflow count of bucket {b}"
            );
        }
        let dups = (0..self.capacity() as u32)
            .filter(|&i| {
                self.records[i as usize].state.load(Ordering::Relaxed) & LIFE_MASK == LIVE
                    && self.load_dup(i).is_some()
            })
            .count();
        assert_eq!(entries, 2 * self.len() + dups);
        entries
    }
}

/// A look at one live entry, for expiry decisions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExpiryView {
    pub(crate) id: SessionId,
    pub(crate) class: TimeoutClass,
    pub(crate) flags: TcpFlags,
    pub(crate) last_seen_ms: u64,
    pub(crate) guard_ms: u64,
}
