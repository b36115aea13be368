//! Hold-down and dynamic damping of the notifications that reach the path selector
//! (docs/multipath.md §3).
//!
//! A [`Damper`] holds one observed value (a path's up/down state, or its compliance with
//! one policy's SLA) and notifies a change only after the new value has held for the
//! current hold-down `h`:
//!
//! * a raw change to a value other than the notified one arms the notification at
//!   `now + h`; a change back to the notified value before then cancels it (nothing is
//!   notified);
//! * [`Damper::observe_urgent`] notifies at once: a path going down is notified when BFD
//!   declares it (BFD's detection time is its debounce), so that failover meets the
//!   issue's "BFD detection time plus one second";
//! * with `dynamic-damping`, a **flap** (a raw change less than `h` after the previous raw
//!   change) doubles `h`, up to `maximum-hold-down-time`; each full `h` without a raw
//!   change halves it again, down to `hold-down-time`. (SSR does not publish its
//!   algorithm; this one is ours.)

use std::time::Duration;

use svr_time::Instant;

/// SSR's `hold-down-time` default: 5 s (range 1-300 s).
pub const DEFAULT_HOLD_DOWN_TIME: Duration = Duration::from_secs(5);
/// SSR's `maximum-hold-down-time` default: 3600 s.
pub const DEFAULT_MAXIMUM_HOLD_DOWN_TIME: Duration = Duration::from_secs(3600);

/// Hold-down settings of a peer path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldDownConfig {
    /// `hold-down-time`: the base hold-down.
    pub hold_down_time: Duration,
    /// `dynamic-damping`: adapt the hold-down to flapping.
    pub dynamic_damping: bool,
    /// `maximum-hold-down-time`: the ceiling with dynamic damping.
    pub maximum_hold_down_time: Duration,
}

impl Default for HoldDownConfig {
    fn default() -> Self {
        HoldDownConfig {
            hold_down_time: DEFAULT_HOLD_DOWN_TIME,
            dynamic_damping: false,
            maximum_hold_down_time: DEFAULT_MAXIMUM_HOLD_DOWN_TIME,
        }
    }
}

/// One damped value. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Damper<T> {
    config: HoldDownConfig,
    notified: T,
    raw: T,
    /// When the raw value becomes the notified one.
    pending: Option<Instant>,
    /// The last raw change.
    last_change: Option<Instant>,
    /// When the hold-down halves (damping only, while above the base).
    relax_at: Option<Instant>,
    hold: Duration,
    event: Option<T>,
    flaps: u64,
}

impl<T: Copy + PartialEq> Damper<T> {
    /// A damper whose observers start out holding `initial`.
    pub fn new(config: HoldDownConfig, initial: T) -> Damper<T> {
        Damper {
            config,
            notified: initial,
            raw: initial,
            pending: None,
            last_change: None,
            relax_at: None,
            hold: config.hold_down_time,
            event: None,
            flaps: 0,
        }
    }

    /// New timers (a reload): the hold-down starts again from the new `hold-down-time` for
    /// the next change; a change already waiting keeps its deadline.
    pub fn set_config(&mut self, config: HoldDownConfig) {
        if config != self.config {
            self.config = config;
            self.hold = config.hold_down_time;
            self.relax_at = None;
        }
    }

    /// A new raw value, notified after the hold-down if it holds.
    pub fn observe(&mut self, now: Instant, value: T) {
        if value == self.raw {
            return;
        }
        self.raw_change(now, value);
        self.pending = (value != self.notified).then(|| now + self.hold);
    }

    /// A new raw value, notified at once (a path going down).
    pub fn observe_urgent(&mut self, now: Instant, value: T) {
        if value != self.raw {
            self.raw_change(now, value);
        }
        self.pending = None;
        if value != self.notified {
            self.notify(value);
        }
    }

    fn raw_change(&mut self, now: Instant, value: T) {
        let flap = self.last_change.is_some_and(|t| now - t < self.hold);
        if flap {
            self.flaps += 1;
            if self.config.dynamic_damping {
                self.hold = (self.hold * 2).min(self.config.maximum_hold_down_time);
            }
        }
        self.raw = value;
        self.last_change = Some(now);
        self.relax_at = (self.config.dynamic_damping && self.hold > self.config.hold_down_time)
            .then(|| now + self.hold);
    }

    fn notify(&mut self, value: T) {
        self.notified = value;
        self.event = Some(value);
    }

    /// Fires the notification and the relaxation that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.pending.is_some_and(|t| now >= t) {
            self.pending = None;
            self.notify(self.raw);
        }
        if let Some(t) = self.relax_at.filter(|&t| now >= t) {
            self.hold = (self.hold / 2).max(self.config.hold_down_time);
            self.relax_at = (self.hold > self.config.hold_down_time).then(|| t + self.hold);
        }
    }

    /// The next time [`handle_timeout`](Self::handle_timeout) has work.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.pending, self.relax_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The latest notification not taken yet.
    pub fn poll_event(&mut self) -> Option<T> {
        self.event.take()
    }

    /// The value observers hold (the last notified).
    pub fn notified(&self) -> T {
        self.notified
    }

    /// The last raw value.
    pub fn raw(&self) -> T {
        self.raw
    }

    /// The hold-down now in force.
    pub fn hold_down(&self) -> Duration {
        self.hold
    }

    /// Flaps seen (raw changes within the hold-down of the previous one).
    pub fn flaps(&self) -> u64 {
        self.flaps
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn s(secs: u64) -> Instant {
        Instant::from_nanos(secs * 1_000_000_000)
    }

    /// Runs the damper's timers up to `until`.
    fn run(d: &mut Damper<bool>, until: Instant) {
        while let Some(t) = d.poll_timeout().filter(|&t| t <= until) {
            d.handle_timeout(t);
        }
    }

    #[test]
    fn a_change_is_notified_after_a_full_hold_down() {
        let mut d = Damper::new(HoldDownConfig::default(), true);
        d.observe(s(100), false);
        assert_eq!(d.poll_timeout(), Some(s(105)));
        d.handle_timeout(s(104));
        assert_eq!(d.poll_event(), None);
        d.handle_timeout(s(105));
        assert_eq!(d.poll_event(), Some(false));
        assert!(!d.notified());
        assert_eq!(d.poll_timeout(), None);
    }

    #[test]
    fn a_change_that_reverts_within_the_hold_down_is_never_notified() {
        let mut d = Damper::new(HoldDownConfig::default(), true);
        d.observe(s(0), false);
        d.observe(s(3), true);
        run(&mut d, s(100));
        assert_eq!(d.poll_event(), None);
        assert_eq!(d.flaps(), 1);
        // Without damping the hold-down stays at 5 s.
        assert_eq!(d.hold_down(), Duration::from_secs(5));
    }

    #[test]
    fn urgent_down_is_immediate_and_up_waits() {
        let mut d = Damper::new(HoldDownConfig::default(), true);
        d.observe_urgent(s(10), false);
        assert_eq!(d.poll_event(), Some(false));
        d.observe(s(20), true);
        run(&mut d, s(24));
        assert_eq!(d.poll_event(), None);
        run(&mut d, s(25));
        assert_eq!(d.poll_event(), Some(true));
    }

    #[test]
    fn dynamic_damping_doubles_per_flap_up_to_the_maximum_and_halves_when_stable() {
        let cfg = HoldDownConfig {
            hold_down_time: Duration::from_secs(5),
            dynamic_damping: true,
            maximum_hold_down_time: Duration::from_secs(60),
        };
        let mut d = Damper::new(cfg, true);
        let mut now = s(0);
        let mut value = true;
        // Flap every second: 5 -> 10 -> 20 -> 40 -> 60 -> 60.
        let mut holds = Vec::new();
        for _ in 0..6 {
            value = !value;
            d.observe(now, value);
            holds.push(d.hold_down().as_secs());
            now += Duration::from_secs(1);
        }
        assert_eq!(holds, [5, 10, 20, 40, 60, 60]);
        assert_eq!(d.poll_event(), None, "no flap was stable long enough");
        // Last change at t=5 (value true = notified), nothing pending. Stable from then:
        // halves at 65 (30), 95 (15), 110 (7.5), 117.5 (5).
        run(&mut d, s(64));
        assert_eq!(d.hold_down(), Duration::from_secs(60));
        run(&mut d, s(65));
        assert_eq!(d.hold_down(), Duration::from_secs(30));
        run(&mut d, s(110));
        assert_eq!(d.hold_down(), Duration::from_millis(7500));
        run(&mut d, s(118));
        assert_eq!(d.hold_down(), Duration::from_secs(5));
        assert_eq!(d.poll_timeout(), None);
        // While damped, a change waits for the long hold-down.
        let mut d2 = Damper::new(cfg, true);
        for i in 0..4 {
            d2.observe(s(i), false);
            d2.observe(s(i) + Duration::from_millis(500), true);
        }
        let h = d2.hold_down();
        assert_eq!(h, Duration::from_secs(60));
        d2.observe(s(10), false);
        run(&mut d2, s(10) + h - Duration::from_secs(1));
        assert_eq!(d2.poll_event(), None);
        run(&mut d2, s(10) + h);
        assert_eq!(d2.poll_event(), Some(false));
    }
}
