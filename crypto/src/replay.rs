//! Anti-replay window over 64-bit per-direction sequence numbers.
//!
//! The shape follows boringtun's `ReceivingKeyCounterValidator` and RFC 6479: a ring of bits
//! indexed by `seq % REPLAY_WINDOW`, plus the highest sequence number marked so far. Use it in
//! two steps: [`ReplayWindow::check`] before any expensive work (and before trusting the
//! packet), [`ReplayWindow::mark`] only after the packet has authenticated, so a forged packet
//! never moves the window.

use crate::error::ReplayError;

/// Packets the window remembers: sequence numbers `highest - (REPLAY_WINDOW - 1) ..= highest`
/// are tracked bit by bit; anything further left is refused as [`ReplayError::TooOld`].
/// `decisions.md` asks for at least 1024, since multipath reorders.
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
}
