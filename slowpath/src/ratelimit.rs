//! Token bucket for originated ICMP errors, driven by the caller's `now`.

use fastpath::time::Instant;

use crate::config::IcmpErrorLimit;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A token bucket kept as nanoseconds of credit: one token costs `1 s / rate`, and the
/// bucket holds at most `burst` tokens. Integer arithmetic only, so it is exact and
/// deterministic under a fake clock.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    /// Credit, in nanoseconds, as of `last`.
    credit: u64,
    cost: u64,
    capacity: u64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket as of `now`.
    pub(crate) fn new(limit: IcmpErrorLimit, now: Instant) -> Self {
        let cost = NANOS_PER_SEC
            .checked_div(u64::from(limit.per_second))
            .unwrap_or(u64::MAX);
        let capacity = if limit.per_second == 0 {
            0
        } else {
            cost.saturating_mul(u64::from(limit.burst))
        };
        Self {
            credit: capacity,
            cost,
            capacity,
            last: now,
        }
    }

    /// Takes one token if there is one. A `now` earlier than the last call adds nothing.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        let elapsed = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        if elapsed > 0 {
            self.credit = self.credit.saturating_add(elapsed).min(self.capacity);
            self.last = now;
        }
        if self.capacity > 0 && self.credit >= self.cost {
            self.credit -= self.cost;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::from_nanos(5);
        let mut b = TokenBucket::new(IcmpErrorLimit::default(), t0);
        assert_eq!((0..60).filter(|_| b.try_take(t0)).count(), 50);
        // 100/s: one token every 10 ms.
        assert!(!b.try_take(t0 + Duration::from_millis(9)));
        assert!(b.try_take(t0 + Duration::from_millis(10)));
        assert!(!b.try_take(t0 + Duration::from_millis(10)));
        // A long pause refills to the burst only.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!((0..60).filter(|_| b.try_take(later)).count(), 50);
    }

    #[test]
    fn zero_rate_disables() {
        let t0 = Instant::from_nanos(0);
        let mut b = TokenBucket::new(
            IcmpErrorLimit {
                per_second: 0,
                burst: 10,
            },
            t0,
        );
        assert!(!b.try_take(t0 + Duration::from_secs(10)));
    }
}
