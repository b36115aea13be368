//! Anti-replay window over 64-bit per-direction sequence numbers.
//!
//! The shape follows boringtun's `ReceivingKeyCounterValidator` and RFC 6479: a ring of bits
//! indexed by `seq % REPLAY_WINDOW`, plus the highest sequence number marked so far. Use it in
//! two steps: [`ReplayWindow::check`] before any expensive work (and before trusting the
//! packet), [`ReplayWindow::mark`] only after the packet has authenticated, so a forged packet
//! never moves the window.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::error::ReplayError;

/// Packets the window remembers: sequence numbers `highest - (REPLAY_WINDOW - 1) ..= highest`
/// are tracked bit by bit; anything further left is refused as [`ReplayError::TooOld`].
/// `docs/background.md` §6 asks for at least 1024, since multipath reorders.
pub const REPLAY_WINDOW: u64 = 2048;

const WORD_BITS: u64 = 64;
const WORDS: usize = (REPLAY_WINDOW / WORD_BITS) as usize;

/// Sliding anti-replay bitmap of [`REPLAY_WINDOW`] packets. 264 bytes, no allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Highest sequence number marked, `None` until the first mark.
    highest: Option<u64>,
    /// Bit `s % REPLAY_WINDOW` is set iff `s` is inside the window and was marked.
    bitmap: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("highest", &self.highest)
            .field(
                "marked_in_window",
                &self.bitmap.iter().map(|w| w.count_ones()).sum::<u32>(),
            )
            .finish()
    }
}

#[inline]
fn bit_of(seq: u64) -> (usize, u64) {
    let pos = seq % REPLAY_WINDOW;
    ((pos / WORD_BITS) as usize, 1u64 << (pos % WORD_BITS))
}

impl ReplayWindow {
    /// An empty window: every sequence number (0 included) is acceptable.
    pub const fn new() -> Self {
        Self {
            highest: None,
            bitmap: [0; WORDS],
        }
    }

    /// The highest sequence number marked so far.
    #[inline]
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Would `seq` be accepted? Does not change the window; call before decrypting.
    #[inline]
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        let Some(highest) = self.highest else {
            return Ok(());
        };
        if seq > highest {
            return Ok(());
        }
        if highest - seq >= REPLAY_WINDOW {
            return Err(ReplayError::TooOld);
        }
        let (w, b) = bit_of(seq);
        if self.bitmap[w] & b != 0 {
            Err(ReplayError::Duplicate)
        } else {
            Ok(())
        }
    }

    /// Record `seq` as received. Call only after the packet authenticated. A `seq` left of
    /// the window is ignored (the caller's `check` already refused it); a `seq` right of the
    /// window slides it, forgetting the sequence numbers that fall out on the left.
    #[inline]
    pub fn mark(&mut self, seq: u64) {
        match self.highest {
            None => {
                self.bitmap = [0; WORDS];
                self.highest = Some(seq);
            }
            Some(highest) if seq > highest => {
                let advance = seq - highest;
                if advance >= REPLAY_WINDOW {
                    self.bitmap = [0; WORDS];
                } else {
                    // The slots of highest+1 ..= seq held sequence numbers that now fall out
                    // on the left; clear them (at most WORDS + 1 word operations).
                    self.clear_ring(highest.wrapping_add(1) % REPLAY_WINDOW, advance);
                }
                self.highest = Some(seq);
            }
            Some(highest) => {
                if highest - seq >= REPLAY_WINDOW {
                    return;
                }
            }
        }
        let (w, b) = bit_of(seq);
        self.bitmap[w] |= b;
    }

    /// Clear `count` (< REPLAY_WINDOW) consecutive ring bits starting at bit `start`.
    fn clear_ring(&mut self, start: u64, count: u64) {
        let mut pos = start;
        let mut left = count;
        while left > 0 {
            let off = pos % WORD_BITS;
            let n = (WORD_BITS - off).min(left);
            let mask = if n == WORD_BITS {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << off
            };
            self.bitmap[(pos / WORD_BITS) as usize] &= !mask;
            pos = (pos + n) % REPLAY_WINDOW;
            left -= n;
        }
    }
}

/// Bits per word of a [`SharedReplayWindow`]: the other 32 bits of the word name the block.
const SHARED_BITS: u64 = 32;
const SHARED_WORDS: usize = (REPLAY_WINDOW / SHARED_BITS) as usize;

/// The same window as [`ReplayWindow`], shared by every worker that receives packets of one
/// session (several RX queues or ports), without a lock.
///
/// Each of its 64 words is `block (32) | bits (32)`: the bitmap of the 32 sequence numbers of
/// block `seq / 32`, and which block it holds. [`SharedReplayWindow::accept`] is one
/// compare-and-swap on the word of `seq`: it sets the bit if the word holds the block of
/// `seq`, starts the block over if the word holds an older one (the slide), and refuses when
/// the bit was set (`Duplicate`) or the word already holds a newer block (`TooOld`). A word only
/// ever moves to newer blocks, so two workers can never both accept one sequence number. A
/// `highest` (fetch-max) refuses anything [`REPLAY_WINDOW`] or more left of the highest
/// accepted, as [`ReplayWindow`] does. Blocks are compared by serial-number arithmetic on 32
/// bits: exact while a session's sequence numbers stay within 2^36 of each other.
///
/// Use it after the packet authenticated, as the authority (a worker's own
/// [`ReplayWindow`] can stay in front as the cheap check before the crypto). 520 bytes.
pub struct SharedReplayWindow {
    /// Highest accepted + 1 (0: none).
    highest: AtomicU64,
    words: [AtomicU64; SHARED_WORDS],
}

impl Default for SharedReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for SharedReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SharedReplayWindow")
            .field("highest", &self.highest().map(|h| h.to_string()))
            .finish_non_exhaustive()
    }
}

impl SharedReplayWindow {
    /// An empty window.
    pub fn new() -> Self {
        Self {
            highest: AtomicU64::new(0),
            words: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Empties the window (a new session in the slot). Call before the session's keys are
    /// published, so no worker can accept a packet of it before the reset.
    pub fn reset(&self) {
        for w in &self.words {
            w.store(0, Ordering::Relaxed);
        }
        self.highest.store(0, Ordering::Release);
    }

    /// The highest sequence number accepted so far.
    pub fn highest(&self) -> Option<u64> {
        self.highest.load(Ordering::Acquire).checked_sub(1)
    }

    /// Would `seq` be accepted now? Read-only; another worker may accept it first.
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        self.left_of_window(seq)?;
        let (i, block, bit) = Self::slot(seq);
        let cur = self.words[i].load(Ordering::Acquire);
        Self::next_word(cur, block, bit).map(|_| ())
    }

    /// Accepts `seq` exactly once across all threads: `Ok` for the one caller that set its
    /// bit. Call only after the packet authenticated.
    pub fn accept(&self, seq: u64) -> Result<(), ReplayError> {
        self.left_of_window(seq)?;
        let (i, block, bit) = Self::slot(seq);
        let word = &self.words[i];
        let mut cur = word.load(Ordering::Acquire);
        loop {
            let new = Self::next_word(cur, block, bit)?;
            match word.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        self.highest
            .fetch_max(seq.saturating_add(1), Ordering::AcqRel);
        Ok(())
    }

    fn left_of_window(&self, seq: u64) -> Result<(), ReplayError> {
        match self.highest() {
            Some(h) if seq <= h && h - seq >= REPLAY_WINDOW => Err(ReplayError::TooOld),
            _ => Ok(()),
        }
    }

    #[inline]
    fn slot(seq: u64) -> (usize, u32, u64) {
        let block = seq / SHARED_BITS;
        (
            (block % SHARED_WORDS as u64) as usize,
            block as u32,
            1u64 << (seq % SHARED_BITS),
        )
    }

    /// The word after marking `bit` of `block` in `cur`, or why not.
    #[inline]
    fn next_word(cur: u64, block: u32, bit: u64) -> Result<u64, ReplayError> {
        let held = (cur >> 32) as u32;
        if held == block {
            if cur & bit != 0 {
                return Err(ReplayError::Duplicate);
            }
            Ok(cur | bit)
        } else if (block.wrapping_sub(held) as i32) > 0 {
            Ok(u64::from(block) << 32 | bit)
        } else {
            Err(ReplayError::TooOld)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// check then mark, the way `open_payload` uses the window.
    fn accept(w: &mut ReplayWindow, seq: u64) -> Result<(), ReplayError> {
        w.check(seq)?;
        w.mark(seq);
        Ok(())
    }

    #[test]
    fn empty_window_accepts_zero_and_max() {
        let w = ReplayWindow::new();
        assert_eq!(w.check(0), Ok(()));
        assert_eq!(w.check(u64::MAX), Ok(()));
        assert_eq!(w.highest(), None);
    }

    #[test]
    fn seq_zero_is_a_normal_sequence_number() {
        let mut w = ReplayWindow::new();
        assert_eq!(accept(&mut w, 0), Ok(()));
        assert_eq!(w.check(0), Err(ReplayError::Duplicate));
        assert_eq!(accept(&mut w, 1), Ok(()));
        assert_eq!(w.check(0), Err(ReplayError::Duplicate));
        assert_eq!(w.check(1), Err(ReplayError::Duplicate));
    }

    #[test]
    fn in_order_then_duplicates() {
        let mut w = ReplayWindow::new();
        for s in 1..=5000u64 {
            assert_eq!(accept(&mut w, s), Ok(()), "seq {s}");
        }
        for s in 5000 - REPLAY_WINDOW + 1..=5000 {
            assert_eq!(w.check(s), Err(ReplayError::Duplicate), "seq {s}");
        }
        assert_eq!(w.check(5000 - REPLAY_WINDOW), Err(ReplayError::TooOld));
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
        assert_eq!(w.check(5001), Ok(()));
    }

    /// RFC 4303 Appendix A: the window's right edge is the highest authenticated number, the
    /// left edge is `highest - W + 1`; one to the left of that is refused.
    #[test]
    fn window_edges() {
        let mut w = ReplayWindow::new();
        let top = 10_000u64;
        accept(&mut w, top).unwrap();
        let left = top - (REPLAY_WINDOW - 1);
        assert_eq!(w.check(left), Ok(()), "left edge is inside");
        assert_eq!(w.check(left - 1), Err(ReplayError::TooOld));
        accept(&mut w, left).unwrap();
        assert_eq!(w.check(left), Err(ReplayError::Duplicate));
        // Sliding right by one pushes `left` out.
        accept(&mut w, top + 1).unwrap();
        assert_eq!(w.check(left), Err(ReplayError::TooOld));
        assert_eq!(w.check(left + 1), Ok(()));
    }

    #[test]
    fn out_of_order_within_window() {
        let mut w = ReplayWindow::new();
        let order = [100u64, 98, 99, 97, 2000, 60, 1500, 101, 1999];
        for s in order {
            assert_eq!(accept(&mut w, s), Ok(()), "seq {s}");
        }
        for s in order {
            assert_eq!(w.check(s), Err(ReplayError::Duplicate), "seq {s}");
        }
        for s in [61u64, 96, 102, 1998, 1501] {
            assert_eq!(w.check(s), Ok(()), "seq {s} never seen");
        }
        assert_eq!(w.check(2001), Ok(()));
    }

    #[test]
    fn jump_larger_than_window_forgets_everything() {
        let mut w = ReplayWindow::new();
        for s in 0..100u64 {
            accept(&mut w, s).unwrap();
        }
        let far = 99 + REPLAY_WINDOW + 5;
        accept(&mut w, far).unwrap();
        for s in 0..100u64 {
            assert_eq!(w.check(s), Err(ReplayError::TooOld));
        }
        // Slots that held 0..100 must not read as duplicates for their new owners.
        for s in far - REPLAY_WINDOW + 1..far {
            assert_eq!(w.check(s), Ok(()), "seq {s}");
        }
        assert_eq!(w.check(far), Err(ReplayError::Duplicate));
    }

    #[test]
    fn jump_of_exactly_window_and_window_minus_one() {
        for jump in [REPLAY_WINDOW - 1, REPLAY_WINDOW, REPLAY_WINDOW + 1] {
            let mut w = ReplayWindow::new();
            for s in 1000..1000 + REPLAY_WINDOW {
                accept(&mut w, s).unwrap();
            }
            let top = 1000 + REPLAY_WINDOW - 1;
            accept(&mut w, top + jump).unwrap();
            for s in top + jump - (REPLAY_WINDOW - 1)..top + jump {
                let expect = if s <= top {
                    Err(ReplayError::Duplicate)
                } else {
                    Ok(())
                };
                assert_eq!(w.check(s), expect, "jump {jump} seq {s}");
            }
        }
    }

    #[test]
    fn partial_jumps_clear_only_the_slots_that_fall_out() {
        // Mark every number, then slide by odd amounts that straddle word boundaries.
        let mut w = ReplayWindow::new();
        let mut top = 0u64;
        accept(&mut w, 0).unwrap();
        for step in [1u64, 63, 64, 65, 127, 700, 2047, 3, 1000] {
            for s in top + 1..top + step {
                accept(&mut w, s).unwrap();
            }
            top += step;
            accept(&mut w, top).unwrap();
            for s in top.saturating_sub(REPLAY_WINDOW - 1)..=top {
                assert_eq!(w.check(s), Err(ReplayError::Duplicate), "seq {s}");
            }
        }
        // A sparse pattern: only every 5th number marked across a slide.
        let mut w = ReplayWindow::new();
        for s in (0..3000u64).step_by(5) {
            accept(&mut w, s).unwrap();
        }
        let top = w.highest().unwrap();
        for s in top - (REPLAY_WINDOW - 1)..=top {
            let expect = if s % 5 == 0 {
                Err(ReplayError::Duplicate)
            } else {
                Ok(())
            };
            assert_eq!(w.check(s), expect, "seq {s}");
        }
    }

    #[test]
    fn near_u64_max() {
        let mut w = ReplayWindow::new();
        accept(&mut w, u64::MAX - 5).unwrap();
        accept(&mut w, u64::MAX).unwrap();
        assert_eq!(w.check(u64::MAX), Err(ReplayError::Duplicate));
        assert_eq!(w.check(u64::MAX - 5), Err(ReplayError::Duplicate));
        assert_eq!(w.check(u64::MAX - 1), Ok(()));
        assert_eq!(w.check(u64::MAX - (REPLAY_WINDOW - 1)), Ok(()));
        assert_eq!(w.check(u64::MAX - REPLAY_WINDOW), Err(ReplayError::TooOld));
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
        accept(&mut w, u64::MAX - 1).unwrap();
        assert_eq!(w.highest(), Some(u64::MAX));
        // From 0 straight to u64::MAX.
        let mut w = ReplayWindow::new();
        accept(&mut w, 0).unwrap();
        accept(&mut w, u64::MAX).unwrap();
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
        assert_eq!(w.check(u64::MAX - 1), Ok(()));
    }

    #[test]
    fn check_alone_never_moves_the_window() {
        let mut w = ReplayWindow::new();
        accept(&mut w, 10).unwrap();
        assert_eq!(w.check(100_000), Ok(()));
        assert_eq!(w.highest(), Some(10));
        assert_eq!(w.check(11), Ok(()));
        assert_eq!(w.check(10), Err(ReplayError::Duplicate));
    }

    #[test]
    fn mark_left_of_window_is_ignored() {
        let mut w = ReplayWindow::new();
        accept(&mut w, 5000).unwrap();
        let before = w.clone();
        w.mark(5000 - REPLAY_WINDOW);
        assert_eq!(w, before);
    }

    /// Against a model that remembers every sequence number in a set.
    #[test]
    fn matches_a_set_model() {
        use std::collections::BTreeSet;
        let mut w = ReplayWindow::new();
        let mut seen = BTreeSet::new();
        let mut highest: Option<u64> = None;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut base = 0u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly forward with reordering, occasional big jumps.
            let r = x % 1000;
            let seq = if r < 5 {
                base += 3000;
                base
            } else {
                base += x % 3;
                base.saturating_sub((x >> 20) % 2600)
            };
            let model = match highest {
                Some(h) if seq <= h && h - seq >= REPLAY_WINDOW => Err(ReplayError::TooOld),
                _ if seen.contains(&seq) => Err(ReplayError::Duplicate),
                _ => Ok(()),
            };
            assert_eq!(w.check(seq), model, "seq {seq}");
            if model.is_ok() {
                w.mark(seq);
                seen.insert(seq);
                highest = Some(highest.map_or(seq, |h| h.max(seq)));
            }
        }
    }

    #[test]
    fn shared_window_accepts_each_seq_once() {
        let w = SharedReplayWindow::new();
        for s in 0..5000u64 {
            assert_eq!(w.accept(s), Ok(()), "seq {s}");
            assert_eq!(w.accept(s), Err(ReplayError::Duplicate), "seq {s}");
        }
        assert_eq!(w.check(4999), Err(ReplayError::Duplicate));
        assert_eq!(w.accept(4999 - REPLAY_WINDOW), Err(ReplayError::TooOld));
        // Out of order inside the window, then a jump far right forgets the old blocks.
        assert_eq!(w.accept(6001), Ok(()));
        assert_eq!(w.accept(5500), Ok(()));
        assert_eq!(w.accept(5500), Err(ReplayError::Duplicate));
        assert_eq!(w.accept(1_000_000), Ok(()));
        assert_eq!(w.accept(6001), Err(ReplayError::TooOld));
        w.reset();
        assert_eq!(w.highest(), None);
        assert_eq!(w.accept(3), Ok(()));
    }

    #[test]
    fn shared_window_one_winner_across_threads() {
        let w = std::sync::Arc::new(SharedReplayWindow::new());
        let won: Vec<u64> = (0..4)
            .map(|_| {
                let w = std::sync::Arc::clone(&w);
                std::thread::spawn(move || {
                    (0..20_000u64).filter(|&s| w.accept(s).is_ok()).count() as u64
                })
            })
            .map(|t| t.join().unwrap())
            .collect();
        // Every sequence number was accepted by exactly one thread (the later ones at least;
        // a thread that fell behind may see early ones as too old, never twice).
        assert!(won.iter().sum::<u64>() <= 20_000);
        assert!(won.iter().sum::<u64>() >= 20_000 - REPLAY_WINDOW);
    }
}
