//! [`WayportAllocator`]: the wayports of new sessions for one (local waypoint, peer
//! waypoint) pair, docs/background.md §1.5.
//!
//! The ingress picks both wayports of a session, an **even source** and an **odd destination**
//! (§1.5), so neither side negotiates, and sessions the peer opens towards us (same rule, so
//! opposite parities as seen from here) cannot collide with ours. What must be unique among
//! the live sessions of one waypoint pair depends on the path ([`WayportMode`]):
//!
//! | mode | unique per live session | sessions per waypoint pair, default range 16384–65534 |
//! | --- | --- | --- |
//! | [`WayportMode::UniquePair`] (no NAT) | the (source, destination) pair | 24,576 × 24,575 ≈ 6·10^8 (§1.5: 2^32 for the whole port space) |
//! | [`WayportMode::UniqueDestination`] (source NAT) | the destination; source = destination − 1 | 24,575 (§1.5: 2^16 for the whole port space) |
//!
//! A session that finds its pair exhausted spills to the peer's next in-service waypoint pair
//! (`svr_path`), and fails with `svr_wayports_exhausted` only when every one is.

use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Inclusive range of wayports this router may use on a waypoint pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WayportRange {
    /// Lowest port.
    pub first: u16,
    /// Highest port.
    pub last: u16,
}

impl Default for WayportRange {
    /// SSR's default, 16384–65534 (docs/background.md §1.5).
    fn default() -> Self {
        WayportRange {
            first: 16384,
            last: 65534,
        }
    }
}

/// What keeps the live sessions of one waypoint pair apart on the wire (docs/background.md §1.5,
/// "2^32 sessions with no NAT in between, 2^16 behind a source NAT"). Configured per peer
/// (`router[].peer[].source-nat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WayportMode {
    /// No NAT between the waypoints (`source-nat: false`, the default): every live session
    /// has its own (even source, odd destination) **pair**; two sessions may share one of the
    /// two ports. The session table is the record of what is in use: the caller's insert of
    /// the WAN key is the uniqueness check ([`WayportAllocator::claim`]).
    #[default]
    UniquePair,
    /// A source NAT may rewrite our source wayport on the way (`source-nat: true`), so only
    /// the destination identifies a session to the peer: every live session has its own odd
    /// **destination**, with source `destination - 1`. An atomic bitmap records the
    /// destinations in use.
    UniqueDestination,
}

/// The ports of one session on the WAN: our even source wayport and the peer's odd
/// destination wayport (§1.5: the ingress picks both, so neither side negotiates; sessions
/// the peer opens towards us use the opposite parities and cannot collide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Wayports {
    /// Even source wayport (`destination - 1` in [`WayportMode::UniqueDestination`]).
    pub source: u16,
    /// Odd destination wayport.
    pub destination: u16,
}

/// Why a wayport call failed. The caller counts these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WayportError {
    /// No free ports on this waypoint pair (see [`WayportAllocator::claim`]).
    Exhausted,
    /// `free` was given ports this allocator never hands out.
    NotInRange,
    /// `free` was given ports that are not allocated (double free; in
    /// [`WayportMode::UniquePair`] only detected when nothing is allocated at all).
    NotAllocated,
    /// The configured range holds no (even, odd) pair.
    EmptyRange,
}

impl fmt::Display for WayportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WayportError::Exhausted => "wayports_exhausted",
            WayportError::NotInRange => "wayport_not_in_range",
            WayportError::NotAllocated => "wayport_not_allocated",
            WayportError::EmptyRange => "wayport_range_empty",
        })
    }
}

impl std::error::Error for WayportError {}

/// What the callback of [`WayportAllocator::claim`] says about a candidate it could not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim<E> {
    /// A live session already has these ports on the wire (the session table refused the
    /// WAN key): try the next candidate.
    Taken,
    /// Stop here with this error; the candidate is given back.
    Abort(E),
}

/// Why [`WayportAllocator::claim`] returned no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError<E> {
    /// No free ports: every destination in use ([`WayportMode::UniqueDestination`]), or
    /// [`CLAIM_ATTEMPTS`] candidates in a row taken. Counted in
    /// [`WayportAllocator::exhausted_count`].
    Exhausted,
    /// The callback's [`Claim::Abort`].
    Abort(E),
}

/// Candidates [`WayportAllocator::claim`] tries before it calls a waypoint pair exhausted.
/// In [`WayportMode::UniquePair`] a candidate is taken with probability `live / capacity`
/// (about 10^-4 for 65,536 live sessions in the default range), so eight in a row happen
/// only when the pair is all but full.
pub const CLAIM_ATTEMPTS: usize = 8;

/// Allocates wayports for one (local waypoint, peer waypoint) pair; the owner of the peer
/// paths keeps one per pair (a few bytes in [`WayportMode::UniquePair`], about 3 KB of bitmap
/// in [`WayportMode::UniqueDestination`] for the default range).
///
/// **Order.** An atomic cursor walks the candidates, so allocation goes round-robin and a
/// freed tuple is reused only after the cursor has come round again, which keeps late
/// packets of an old session from reaching a new one.
/// * [`WayportMode::UniquePair`]: the cursor `i` (mod `E·O`, with `E` even and `O` odd ports
///   in the range) maps to source `r = i mod E` and destination `(r + ⌊i / E⌋) mod O`, a
///   bijection onto all `E·O` pairs in which consecutive sessions differ in both ports. No
///   bitmap (the space is ~6·10^8 pairs): the caller's session-table insert of the WAN key
///   decides whether a candidate is free.
/// * [`WayportMode::UniqueDestination`]: an atomic bitmap, one bit per destination port (set
///   = in use), claimed with CAS, the search starting one position after the previous one.
///
/// **Concurrency.** Lock-free (one `fetch_add` on the cursor, CAS on a bitmap word), so any
/// worker that creates a session may allocate. Two workers never get the same candidate from
/// one round of the cursor; a live session from an earlier round is caught by the table.
#[derive(Debug)]
pub struct WayportAllocator {
    mode: WayportMode,
    /// Lowest even source port.
    even_base: u16,
    /// Number of even source ports.
    evens: u32,
    /// Lowest odd destination port.
    odd_base: u16,
    /// Number of odd destination ports.
    odds: u32,
    /// Sessions the range allows at once.
    capacity: u32,
    /// [`WayportMode::UniqueDestination`]: one bit per destination; empty otherwise.
    bits: Box<[AtomicU64]>,
    cursor: AtomicU64,
    in_use: AtomicU32,
    exhausted: AtomicU64,
}

impl WayportAllocator {
    /// An allocator over `range`; `EmptyRange` if it holds no even port followed by an odd
    /// one.
    pub fn new(range: WayportRange, mode: WayportMode) -> Result<WayportAllocator, WayportError> {
        let first = u32::from(range.first);
        let last = u32::from(range.last);
        // The lowest odd d with d - 1 ≥ first, and the highest odd port.
        let odd_base = if first % 2 == 0 { first + 1 } else { first + 2 };
        let top = if last % 2 == 1 {
            last
        } else {
            last.saturating_sub(1)
        };
        if range.first > range.last || odd_base > top {
            return Err(WayportError::EmptyRange);
        }
        let odds = (top - odd_base) / 2 + 1;
        // Even sources: UniquePair may use every even port of the range, UniqueDestination
        // only those below an odd destination.
        let even_base = odd_base - 1;
        let evens = match mode {
            WayportMode::UniquePair => (last - even_base) / 2 + 1,
            WayportMode::UniqueDestination => odds,
        };
        // ≤ 32768 · 32768 = 2^30.
        let capacity = match mode {
            WayportMode::UniquePair => evens * odds,
            WayportMode::UniqueDestination => odds,
        };
        let words = match mode {
            WayportMode::UniquePair => 0,
            WayportMode::UniqueDestination => (odds as usize).div_ceil(64),
        };
        Ok(WayportAllocator {
            mode,
            // odd_base ≤ top ≤ 65535, checked above.
            even_base: even_base as u16,
            evens,
            odd_base: odd_base as u16,
            odds,
            capacity,
            bits: std::iter::repeat_with(|| AtomicU64::new(0))
                .take(words)
                .collect(),
            cursor: AtomicU64::new(0),
            in_use: AtomicU32::new(0),
            exhausted: AtomicU64::new(0),
        })
    }

    /// What this allocator keeps unique.
    pub fn mode(&self) -> WayportMode {
        self.mode
    }

    /// Number of sessions the range allows at once.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Allocations currently held.
    pub fn in_use(&self) -> u32 {
        self.in_use.load(Ordering::Relaxed)
    }

    /// How many allocations failed with `Exhausted` since creation.
    pub fn exhausted_count(&self) -> u64 {
        self.exhausted.load(Ordering::Relaxed)
    }

    /// The ports at destination position `pos` (< odds) with source position `src`.
    fn ports(&self, src: u32, pos: u32) -> Wayports {
        // src < evens and pos < odds, so both ports are ≤ the range's last port ≤ 65535.
        Wayports {
            source: (u32::from(self.even_base) + 2 * src) as u16,
            destination: (u32::from(self.odd_base) + 2 * pos) as u16,
        }
    }

    /// Mask of valid positions in word `w` at or after bit `from`.
    fn valid(&self, w: usize, from: u32) -> u64 {
        let start = w as u32 * 64;
        let n = (self.odds - start).min(64);
        let all = if n == 64 { !0 } else { (1u64 << n) - 1 };
        all & (!0u64 << from)
    }

    /// Claims the first free position in word `w` among `mask`.
    fn claim_in(&self, w: usize, mask: u64) -> Option<u32> {
        let word = &self.bits[w];
        let mut v = word.load(Ordering::Relaxed);
        loop {
            let free = !v & mask;
            if free == 0 {
                return None;
            }
            let bit = free & free.wrapping_neg();
            match word.compare_exchange_weak(v, v | bit, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(w as u32 * 64 + bit.trailing_zeros()),
                Err(now) => v = now,
            }
        }
    }

    /// The next candidate: in `UniquePair` the cursor's pair, in `UniqueDestination` a
    /// destination claimed in the bitmap (`None` when every one is in use).
    fn next(&self) -> Option<Wayports> {
        let i = self.cursor.fetch_add(1, Ordering::Relaxed);
        if self.mode == WayportMode::UniquePair {
            let i = i % u64::from(self.capacity);
            let (q, r) = (i / u64::from(self.evens), i % u64::from(self.evens));
            // r < evens; (r + q) mod odds < odds.
            let pos = (r + q) % u64::from(self.odds);
            return Some(self.ports(r as u32, pos as u32));
        }
        let start = (i % u64::from(self.odds)) as u32;
        let words = self.bits.len();
        let (w0, b0) = ((start / 64) as usize, start % 64);
        // The start word from the cursor on, the other words in order, the start word's head.
        let mut found = self.claim_in(w0, self.valid(w0, b0));
        let mut w = w0;
        for _ in 1..words {
            if found.is_some() {
                break;
            }
            w = if w + 1 == words { 0 } else { w + 1 };
            found = self.claim_in(w, self.valid(w, 0));
        }
        if found.is_none() && b0 != 0 {
            found = self.claim_in(w0, self.valid(w0, 0) & !(!0u64 << b0));
        }
        found.map(|pos| self.ports(pos, pos))
    }

    /// Clears the bitmap bit of `p` (`UniqueDestination`); false if it was not set.
    fn unmark(&self, p: Wayports) -> bool {
        if self.mode == WayportMode::UniquePair {
            return true;
        }
        let pos = u32::from(p.destination - self.odd_base) / 2;
        let bit = 1u64 << (pos % 64);
        self.bits[(pos / 64) as usize].fetch_and(!bit, Ordering::AcqRel) & bit != 0
    }

    /// Allocates wayports for one new session: offers candidates to `claim`, which inserts
    /// the session with them (normally into the session table, whose refusal of an existing
    /// WAN key is the uniqueness check) and returns [`Claim::Taken`] when a live session
    /// already uses them. Up to [`CLAIM_ATTEMPTS`] candidates; `claim`'s first success is
    /// the result and counts as one allocation, to be given back with
    /// [`WayportAllocator::free`] when the session ends.
    pub fn claim<T, E>(
        &self,
        mut claim: impl FnMut(Wayports) -> Result<T, Claim<E>>,
    ) -> Result<T, ClaimError<E>> {
        for _ in 0..CLAIM_ATTEMPTS {
            let Some(p) = self.next() else {
                break;
            };
            match claim(p) {
                Ok(t) => {
                    self.in_use.fetch_add(1, Ordering::Relaxed);
                    return Ok(t);
                }
                Err(Claim::Taken) => {
                    self.unmark(p);
                }
                Err(Claim::Abort(e)) => {
                    self.unmark(p);
                    return Err(ClaimError::Abort(e));
                }
            }
        }
        self.exhausted.fetch_add(1, Ordering::Relaxed);
        Err(ClaimError::Exhausted)
    }

    /// The next wayports with nothing to check them against: in
    /// [`WayportMode::UniqueDestination`] an unused destination, in
    /// [`WayportMode::UniquePair`] simply the cursor's next pair (use
    /// [`WayportAllocator::claim`] to keep live pairs unique). `Exhausted` is counted.
    pub fn allocate(&self) -> Result<Wayports, WayportError> {
        self.claim(Ok::<_, Claim<core::convert::Infallible>>)
            .map_err(|_| WayportError::Exhausted)
    }

    /// True when `p` is a pair this allocator hands out.
    fn in_range(&self, p: Wayports) -> bool {
        let (s, d) = (u32::from(p.source), u32::from(p.destination));
        let (eb, ob) = (u32::from(self.even_base), u32::from(self.odd_base));
        let src_ok = s >= eb && (s - eb) % 2 == 0 && (s - eb) / 2 < self.evens;
        let dst_ok = d >= ob && (d - ob) % 2 == 0 && (d - ob) / 2 < self.odds;
        src_ok && dst_ok && (self.mode == WayportMode::UniquePair || s + 1 == d)
    }

    /// Gives back a pair from [`WayportAllocator::claim`] or [`WayportAllocator::allocate`].
    pub fn free(&self, p: Wayports) -> Result<(), WayportError> {
        if !self.in_range(p) {
            return Err(WayportError::NotInRange);
        }
        if !self.unmark(p) {
            return Err(WayportError::NotAllocated);
        }
        self.in_use
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .map(|_| ())
            .map_err(|_| WayportError::NotAllocated)
    }

    /// [`WayportMode::UniqueDestination`]: true when `p` is currently allocated. Always false
    /// in [`WayportMode::UniquePair`], where the session table is the record.
    pub fn is_allocated(&self, p: Wayports) -> bool {
        if self.mode == WayportMode::UniquePair || !self.in_range(p) {
            return false;
        }
        let pos = u32::from(p.destination - self.odd_base) / 2;
        self.bits[(pos / 64) as usize].load(Ordering::Relaxed) & (1 << (pos % 64)) != 0
    }
}
