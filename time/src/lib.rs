//! Monotonic time as a value: the leaf crate `svr-time` (DEVELOPERS.md: shared leaf types live
//! in a leaf crate), re-exported as `fastpath::time` so that `fastpath` and the sans-IO crates
//! (`svr-linkq`, which `fastpath` depends on) share one `Instant` without a cycle.
//!
//! [`Instant`] is a count of nanoseconds on some monotonic clock with an arbitrary epoch. This
//! crate never reads a clock: the caller (the slow-path thread of `svrd`) reads the OS clock once
//! and passes `now` into every function that depends on time, as quinn-proto does. Tests move
//! time by changing a number.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point on a monotonic clock, in nanoseconds since an arbitrary epoch.
///
/// Arithmetic saturates instead of wrapping or panicking: `u64` nanoseconds last 584 years, so
/// saturation only ever happens on nonsense input, where a far-future deadline is the safe answer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The epoch of the clock.
    pub const ZERO: Instant = Instant(0);
    /// The furthest representable point; useful as "never".
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant(nanos)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self - earlier`, or `None` when `earlier` is later than `self`.
    pub fn checked_duration_since(self, earlier: Instant) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_nanos)
    }

    /// `self - earlier`, or zero when `earlier` is later than `self`.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, or `None` if that is not representable.
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        let d = u64::try_from(d.as_nanos()).ok()?;
        self.0.checked_add(d).map(Instant)
    }
}

/// Nanoseconds of a `Duration`, saturating at `u64::MAX`.
fn nanos_saturating(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::MAX`].
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(nanos_saturating(d)))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::ZERO`].
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(nanos_saturating(d)))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Same as [`Instant::saturating_duration_since`]: zero if `rhs` is later.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}s",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn arithmetic() {
        let t = Instant::from_nanos(1_000);
        let later = t + Duration::from_micros(2);
        assert_eq!(later.as_nanos(), 3_000);
        assert_eq!(later - t, Duration::from_nanos(2_000));
        assert_eq!(t - later, Duration::ZERO);
        assert_eq!(
            later.checked_duration_since(t),
            Some(Duration::from_nanos(2_000))
        );
        assert_eq!(t.checked_duration_since(later), None);
        assert_eq!(t.saturating_duration_since(later), Duration::ZERO);
        assert_eq!(
            later - Duration::from_nanos(500),
            Instant::from_nanos(2_500)
        );
        assert_eq!(t - Duration::from_secs(1), Instant::ZERO);
    }

    #[test]
    fn saturates_instead_of_panicking() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO + Duration::MAX, Instant::MAX);
        assert_eq!(Instant::from_nanos(1).checked_add(Duration::MAX), None);
        let mut t = Instant::ZERO;
        t += Duration::from_secs(24 * 3600);
        assert_eq!(t.as_nanos(), 86_400_000_000_000);
    }

    #[test]
    fn display() {
        assert_eq!(
            Instant::from_nanos(1_500_000_000).to_string(),
            "1.500000000s"
        );
    }
}
