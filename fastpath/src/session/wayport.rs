//! [`WayportAllocator`]: the wayports of new sessions for one (local waypoint, peer
//! waypoint) pair, svr-protocol.md §1.5.

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
    /// SSR's default, 16384–65534 (svr-protocol.md §1.5).
    fn default() -> Self {
        WayportRange {
            first: 16384,
            last: 65534,
        }
    }
}

/// The ports of one session on the WAN: our even source wayport and the peer's odd
/// destination wayport (§1.5: the ingress picks both, so neither side negotiates; sessions
/// the peer opens towards us use the opposite parities and cannot collide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Wayports {
    /// Even source wayport (`destination - 1`).
    pub source: u16,
    /// Odd destination wayport.
    pub destination: u16,
}

/// Why a wayport call failed. The caller counts these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WayportError {
    /// Every pair of the range is in use on this waypoint pair.
    Exhausted,
    /// `free` was given ports this allocator never hands out.
    NotInRange,
    /// `free` was given ports that are not allocated (double free).
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

/// Allocates wayports for one (local waypoint, peer waypoint) pair; the owner of the peer
/// paths keeps one per pair (about 3 KB each for the default range).
///
/// **What is unique.** Each allocation is a distinct odd destination port `d` in the range,
/// with source `d - 1` (even, also in the range). Keeping the destination unique per pair keeps
/// the WAN 5-tuple unique even when a NAT between the sites rewrites our source port, which
/// §1.5 says limits a pair to 2^16 sessions anyway; the default range gives 24,575 sessions per
/// pair. More sessions need more waypoint pairs (peer paths), not reuse of a destination.
///
/// **Concurrency.** Lock-free, so any worker that creates a session may allocate: an atomic
/// bitmap (one bit per destination port, set = in use) claimed with CAS, and an atomic cursor
/// that starts each search one position after the previous one. Allocation therefore goes
/// round-robin through the range, and a freed pair is reused only after the cursor has come
/// round again, which keeps late packets of an old session from reaching a new one.
#[derive(Debug)]
pub struct WayportAllocator {
    /// Lowest odd destination port.
    base: u16,
    /// Number of (even, odd) pairs.
    count: u32,
    bits: Box<[AtomicU64]>,
    cursor: AtomicU32,
    in_use: AtomicU32,
    exhausted: AtomicU64,
}

impl WayportAllocator {
    /// An allocator over `range`; `EmptyRange` if it holds no even port followed by an odd
    /// one.
    pub fn new(range: WayportRange) -> Result<WayportAllocator, WayportError> {
        let first = u32::from(range.first);
        let last = u32::from(range.last);
        // The lowest odd d with d - 1 ≥ first.
        let base = if first % 2 == 0 { first + 1 } else { first + 2 };
        let top = if last % 2 == 1 {
            last
        } else {
            last.saturating_sub(1)
        };
        if range.first > range.last || base > top || top > u32::from(u16::MAX) {
            return Err(WayportError::EmptyRange);
        }
        let count = (top - base) / 2 + 1;
        let words = (count as usize).div_ceil(64);
        Ok(WayportAllocator {
            base: base as u16, // base ≤ top ≤ 65535, checked above
            count,
            bits: std::iter::repeat_with(|| AtomicU64::new(0))
                .take(words)
                .collect(),
            cursor: AtomicU32::new(0),
            in_use: AtomicU32::new(0),
            exhausted: AtomicU64::new(0),
        })
    }

    /// Number of sessions the range allows at once.
    pub fn capacity(&self) -> u32 {
        self.count
    }

    /// Allocations currently held.
    pub fn in_use(&self) -> u32 {
        self.in_use.load(Ordering::Relaxed)
    }

    /// How many allocations failed with `Exhausted` since creation.
    pub fn exhausted_count(&self) -> u64 {
        self.exhausted.load(Ordering::Relaxed)
    }

    fn ports(&self, pos: u32) -> Wayports {
        // pos < count, so base + 2·pos ≤ top ≤ 65535.
        let d = u32::from(self.base) + 2 * pos;
        Wayports {
            source: (d - 1) as u16,
            destination: d as u16,
        }
    }

    /// Mask of valid positions in word `w` at or after bit `from`.
    fn valid(&self, w: usize, from: u32) -> u64 {
        let start = w as u32 * 64;
        let n = (self.count - start).min(64);
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

    /// A fresh (even source, odd destination) pair, or `Exhausted` (also counted here).
    pub fn allocate(&self) -> Result<Wayports, WayportError> {
        let start = self.cursor.fetch_add(1, Ordering::Relaxed) % self.count;
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
        match found {
            Some(pos) => {
                self.in_use.fetch_add(1, Ordering::Relaxed);
                Ok(self.ports(pos))
            }
            None => {
                self.exhausted.fetch_add(1, Ordering::Relaxed);
                Err(WayportError::Exhausted)
            }
        }
    }

    /// Gives back a pair from [`WayportAllocator::allocate`].
    pub fn free(&self, p: Wayports) -> Result<(), WayportError> {
        let d = u32::from(p.destination);
        let base = u32::from(self.base);
        if d < base || (d - base) % 2 != 0 || u32::from(p.source) + 1 != d {
            return Err(WayportError::NotInRange);
        }
        let pos = (d - base) / 2;
        if pos >= self.count {
            return Err(WayportError::NotInRange);
        }
        let bit = 1u64 << (pos % 64);
        let prev = self.bits[(pos / 64) as usize].fetch_and(!bit, Ordering::AcqRel);
        if prev & bit == 0 {
            return Err(WayportError::NotAllocated);
        }
        self.in_use.fetch_sub(1, Ordering::Relaxed);
        Ok(())
    }

    /// True when `p` is currently allocated.
    pub fn is_allocated(&self, p: Wayports) -> bool {
        let d = u32::from(p.destination);
        let base = u32::from(self.base);
        if d < base || (d - base) % 2 != 0 || u32::from(p.source) + 1 != d {
            return false;
        }
        let pos = (d - base) / 2;
        pos < self.count
            && self.bits[(pos / 64) as usize].load(Ordering::Relaxed) & (1 << (pos % 64)) != 0
    }
}
