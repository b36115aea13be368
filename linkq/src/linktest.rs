//! The link test of one peer path (SSR's BFD echo "JPL" test), beside asynchronous BFD:
//! [`LinkTest`] on the side that measures, [`Reflector`] on the side that answers.
//!
//! # Calling protocol (quinn-style)
//!
//! ```text
//! loop {
//!     while let Some(bytes) = test.poll_transmit(now) { send(bytes) }
//!     while let Some(result) = test.poll_event() { publish(result, test.smoothed()) }
//!     arm one timer for test.poll_timeout()
//!     on a reflection:  test.handle_reflection(now, &bytes)  (errors are already counted)
//!     on the timer:     test.handle_timeout(now)
//! }
//! ```
//!
//! A spurious `handle_timeout` is a harmless no-op. Nothing here reads a clock.

use std::time::Duration;

use svr_time::Instant;

use crate::metrics::{Metrics, TestResult};
use crate::probe::{LinkKey, Probe, ProbeError, ProbeKind, ProbeRepr, PROBE_LEN};

/// SSR's `link-test-interval` default: 10 s.
pub const DEFAULT_LINK_TEST_INTERVAL: Duration = Duration::from_secs(10);
/// SSR's `link-test-length` default: 10 probes.
pub const DEFAULT_LINK_TEST_LENGTH: u8 = 10;
/// SSR's `required-min-echo-interval` default: 1000 ms.
pub const DEFAULT_REQUIRED_MIN_ECHO_INTERVAL: Duration = Duration::from_millis(1000);
/// The shortest spacing between two probes of a test.
pub const MIN_PROBE_SPACING: Duration = Duration::from_millis(1);
/// Floor of the RTT used for the reply deadline (2 × max(1 s, 3 × RTT)).
pub const REPLY_WAIT_FLOOR: Duration = Duration::from_secs(1);

/// Settings of one path's link test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTestConfig {
    /// `link-test-interval`: from the start of one test to the start of the next (±10 %).
    pub interval: Duration,
    /// `link-test-length`: probes per test; 0 disables the test.
    pub length: u8,
    /// The **peer's** `required-min-echo-interval`: the fastest echo rate it accepts.
    pub peer_required_min_echo_interval: Duration,
}

impl Default for LinkTestConfig {
    fn default() -> Self {
        LinkTestConfig {
            interval: DEFAULT_LINK_TEST_INTERVAL,
            length: DEFAULT_LINK_TEST_LENGTH,
            peer_required_min_echo_interval: DEFAULT_REQUIRED_MIN_ECHO_INTERVAL,
        }
    }
}

impl LinkTestConfig {
    /// Spacing of the probes of one test: max(1 ms, peer `required-min-echo-interval` /
    /// `link-test-length`) — 100 ms at the defaults.
    pub fn spacing(&self) -> Duration {
        let per = self.peer_required_min_echo_interval / u32::from(self.length.max(1));
        per.max(MIN_PROBE_SPACING)
    }
}

/// Why a reflection was dropped. Each has a counter ([`LinkTestStats::dropped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReflectionDrop {
    /// Not 56 bytes.
    Length,
    /// Unknown version.
    Version,
    /// Not a reflection (a request, or an unknown kind).
    Kind,
    /// The tag does not verify: forged or corrupted.
    BadTag,
    /// Another test's discriminator.
    Discriminator,
    /// A sequence already answered in this test: a replay or a duplicate.
    Duplicate,
    /// A sequence not outstanding: an earlier test's, one never sent, or past the deadline.
    Stale,
}

impl ReflectionDrop {
    /// Number of reasons, the size of the counter array.
    pub const COUNT: usize = 7;

    /// The counter index.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Counter name.
    pub fn name(self) -> &'static str {
        match self {
            ReflectionDrop::Length => "length",
            ReflectionDrop::Version => "version",
            ReflectionDrop::Kind => "kind",
            ReflectionDrop::BadTag => "bad-tag",
            ReflectionDrop::Discriminator => "discriminator",
            ReflectionDrop::Duplicate => "duplicate",
            ReflectionDrop::Stale => "stale",
        }
    }
}

impl From<ProbeError> for ReflectionDrop {
    fn from(e: ProbeError) -> Self {
        match e {
            ProbeError::Length => ReflectionDrop::Length,
            ProbeError::Version => ReflectionDrop::Version,
        }
    }
}

/// Counters of a [`LinkTest`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkTestStats {
    /// Probes sent.
    pub probes_sent: u64,
    /// Reflections accepted.
    pub reflections: u64,
    /// Tests completed.
    pub tests: u64,
    /// Reflections dropped, indexed by [`ReflectionDrop::index`].
    pub dropped: [u64; ReflectionDrop::COUNT],
}

/// One running test.
#[derive(Debug)]
struct Test {
    /// When the first probe went out.
    started: Instant,
    /// Sequence of the first probe.
    first_seq: u64,
    /// Send time of each probe (`None`: not sent yet), indexed by sequence - `first_seq`.
    tx: Vec<Option<Instant>>,
    /// Which probes were answered.
    answered: Vec<bool>,
    /// RTTs in ms, in arrival order.
    rtts_ms: Vec<f64>,
    /// Probes sent so far.
    sent: u8,
    /// How long a reply is waited for after its probe.
    wait: Duration,
}

/// What the link test waits for.
#[derive(Debug)]
enum State {
    /// The start of the next test.
    AwaitStart { at: Instant },
    /// The time to send the next probe of this test.
    AwaitSend { test: Test, next: Instant },
    /// The replies of a test whose probes are all sent, until `deadline`.
    AwaitReplies { test: Test, deadline: Instant },
    /// `link-test-length` is 0.
    Disabled,
}

/// xorshift64, seeded by the caller: only for the ±10 % interval jitter.
#[derive(Debug, Clone)]
struct XorShift64(u64);

impl XorShift64 {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// The measuring side of one peer path's link test. See the [module docs](self) for the
/// calling protocol.
#[derive(Debug)]
pub struct LinkTest {
    config: LinkTestConfig,
    key: LinkKey,
    discriminator: u32,
    rng: XorShift64,
    next_seq: u64,
    state: State,
    last: Option<TestResult>,
    smoothed: Option<Metrics>,
    pending: Option<TestResult>,
    stats: LinkTestStats,
}

impl LinkTest {
    /// A link test whose first test starts at `now`. `discriminator` names this test in its
    /// probes (the caller picks it, e.g. the BFD session's My Discriminator); `seed` seeds
    /// the interval jitter.
    pub fn new(
        config: LinkTestConfig,
        key: LinkKey,
        discriminator: u32,
        seed: u64,
        now: Instant,
    ) -> LinkTest {
        LinkTest {
            config,
            key,
            discriminator,
            rng: XorShift64(seed | 1),
            next_seq: 1,
            state: if config.length == 0 {
                State::Disabled
            } else {
                State::AwaitStart { at: now }
            },
            last: None,
            smoothed: None,
            pending: None,
            stats: LinkTestStats::default(),
        }
    }

    /// Replaces the key (after a peer-key rotation). Reflections in flight under the old
    /// key will be dropped as [`ReflectionDrop::BadTag`].
    pub fn set_key(&mut self, key: LinkKey) {
        self.key = key;
    }

    /// The next probe to send, if one is due at `now`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<[u8; PROBE_LEN]> {
        if let State::AwaitStart { at } = self.state {
            if now < at {
                return None;
            }
            let len = usize::from(self.config.length);
            self.state = State::AwaitSend {
                test: Test {
                    started: now,
                    first_seq: self.next_seq,
                    tx: vec![None; len],
                    answered: vec![false; len],
                    rtts_ms: Vec::with_capacity(len),
                    sent: 0,
                    wait: self.reply_wait(),
                },
                next: now,
            };
        }
        let State::AwaitSend { test, next } = &mut self.state else {
            return None;
        };
        if now < *next {
            return None;
        }
        let seq = test.first_seq + u64::from(test.sent);
        let bytes = ProbeRepr {
            kind: ProbeKind::Request,
            discriminator: self.discriminator,
            sequence: seq,
            timestamp: now.as_nanos(),
        }
        .emit(&self.key);
        test.tx[usize::from(test.sent)] = Some(now);
        test.sent += 1;
        self.next_seq = seq + 1;
        self.stats.probes_sent += 1;
        if test.sent >= self.config.length {
            let deadline = now + test.wait;
            if let State::AwaitSend { test, .. } =
                std::mem::replace(&mut self.state, State::Disabled)
            {
                self.state = State::AwaitReplies { test, deadline };
            }
        } else {
            *next = now + self.config.spacing();
        }
        Some(bytes)
    }

    /// Takes a reflection. Dropped reflections are counted; the error says why.
    pub fn handle_reflection(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ReflectionDrop> {
        let r = self.check_reflection(now, bytes);
        match r {
            Ok(()) => self.stats.reflections += 1,
            Err(e) => self.stats.dropped[e.index()] += 1,
        }
        if let State::AwaitReplies { test, .. } = &self.state {
            if test.rtts_ms.len() == usize::from(test.sent) {
                self.finish(now);
            }
        }
        r
    }

    fn check_reflection(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ReflectionDrop> {
        let probe = Probe::new_checked(bytes)?;
        if probe.kind() != ProbeKind::Reflection {
            return Err(ReflectionDrop::Kind);
        }
        if !probe.verify(&self.key) {
            return Err(ReflectionDrop::BadTag);
        }
        if probe.discriminator() != self.discriminator {
            return Err(ReflectionDrop::Discriminator);
        }
        let test = match &mut self.state {
            State::AwaitSend { test, .. } | State::AwaitReplies { test, .. } => test,
            _ => return Err(ReflectionDrop::Stale),
        };
        let Some(i) = probe
            .sequence()
            .checked_sub(test.first_seq)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < usize::from(test.sent))
        else {
            return Err(ReflectionDrop::Stale);
        };
        let Some(tx) = test.tx[i] else {
            return Err(ReflectionDrop::Stale);
        };
        if test.answered[i] {
            return Err(ReflectionDrop::Duplicate);
        }
        // The RTT is taken from our own record, not from the echoed timestamp.
        let rtt = now.saturating_duration_since(tx);
        if rtt > test.wait {
            return Err(ReflectionDrop::Stale);
        }
        test.answered[i] = true;
        test.rtts_ms.push(rtt.as_secs_f64() * 1e3);
        Ok(())
    }

    /// Ends a test whose reply deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let State::AwaitReplies { deadline, .. } = self.state {
            if now >= deadline {
                self.finish(now);
            }
        }
    }

    /// The next time [`poll_transmit`](Self::poll_transmit) or
    /// [`handle_timeout`](Self::handle_timeout) has work; `None` when disabled.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::AwaitStart { at } => Some(*at),
            State::AwaitSend { next, .. } => Some(*next),
            State::AwaitReplies { deadline, .. } => Some(*deadline),
            State::Disabled => None,
        }
    }

    /// The result of a test that just completed (once each).
    pub fn poll_event(&mut self) -> Option<TestResult> {
        self.pending.take()
    }

    /// The last completed test, raw.
    pub fn last_test(&self) -> Option<TestResult> {
        self.last
    }

    /// The EWMA of all tests (α = 0.25), the value for decisions.
    pub fn smoothed(&self) -> Option<Metrics> {
        self.smoothed
    }

    /// Counters.
    pub fn stats(&self) -> LinkTestStats {
        self.stats
    }

    /// 2 × max(1 s, 3 × smoothed RTT).
    fn reply_wait(&self) -> Duration {
        let rtt_ms = self.smoothed.map_or(0.0, |m| 2.0 * m.latency_ms);
        let three = Duration::try_from_secs_f64(3.0 * rtt_ms / 1e3).unwrap_or(Duration::MAX);
        three.max(REPLY_WAIT_FLOOR).saturating_mul(2)
    }

    fn finish(&mut self, now: Instant) {
        let (State::AwaitReplies { test, .. } | State::AwaitSend { test, .. }) = &self.state else {
            return;
        };
        let result = TestResult::from_rtts(test.sent, &test.rtts_ms);
        let started = test.started;
        self.smoothed = Some(match self.smoothed {
            None => result.metrics(),
            Some(m) => m.smoothed_with(&result),
        });
        self.last = Some(result);
        self.pending = Some(result);
        self.stats.tests += 1;
        // ±10 %: interval × (900..=1100)/1000.
        let per_mille = 900 + (self.rng.next() % 201) as u32;
        let interval = self.config.interval;
        let next = started
            + interval
                .checked_mul(per_mille)
                .map_or(interval, |d| d / 1000);
        self.state = State::AwaitStart { at: next.max(now) };
    }
}

/// Why a request was not reflected. Each has a counter ([`Reflector::dropped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReflectDrop {
    /// Not 56 bytes.
    Length,
    /// Unknown version.
    Version,
    /// Not a request.
    Kind,
    /// The tag does not verify.
    BadTag,
    /// A sequence seen before, or older than the replay window: a replay.
    Replay,
}

impl ReflectDrop {
    /// Number of reasons.
    pub const COUNT: usize = 5;

    /// The counter index.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl From<ProbeError> for ReflectDrop {
    fn from(e: ProbeError) -> Self {
        match e {
            ProbeError::Length => ReflectDrop::Length,
            ProbeError::Version => ReflectDrop::Version,
        }
    }
}

/// Width of the reflector's replay window, in sequence numbers.
pub const REPLAY_WINDOW: u64 = 64;

/// The answering side of a peer path: reflects authenticated requests, once each. Its
/// only state is the replay window of the current discriminator (a new discriminator,
/// i.e. a restarted link test, starts a new window).
#[derive(Debug)]
pub struct Reflector {
    key: LinkKey,
    /// (discriminator, highest sequence, bitmap of the 64 below and including it).
    window: Option<(u32, u64, u64)>,
    reflected: u64,
    dropped: [u64; ReflectDrop::COUNT],
}

impl Reflector {
    /// A reflector keyed like the peer's link test.
    pub fn new(key: LinkKey) -> Reflector {
        Reflector {
            key,
            window: None,
            reflected: 0,
            dropped: [0; ReflectDrop::COUNT],
        }
    }

    /// Replaces the key (after a peer-key rotation).
    pub fn set_key(&mut self, key: LinkKey) {
        self.key = key;
    }

    /// The reflection of `request`, or why there is none (counted).
    pub fn reflect(&mut self, request: &[u8]) -> Result<[u8; PROBE_LEN], ReflectDrop> {
        let r = self.check(request);
        match r {
            Ok(_) => self.reflected += 1,
            Err(e) => self.dropped[e.index()] += 1,
        }
        r
    }

    fn check(&mut self, request: &[u8]) -> Result<[u8; PROBE_LEN], ReflectDrop> {
        let probe = Probe::new_checked(request)?;
        if probe.kind() != ProbeKind::Request {
            return Err(ReflectDrop::Kind);
        }
        if !probe.verify(&self.key) {
            return Err(ReflectDrop::BadTag);
        }
        let (disc, seq) = (probe.discriminator(), probe.sequence());
        // Checked only after the tag, so that a forgery cannot move the window.
        self.window = Some(match self.window {
            Some((d, top, bits)) if d == disc => {
                if seq > top {
                    let shift = seq - top;
                    let bits = if shift >= REPLAY_WINDOW {
                        0
                    } else {
                        bits << shift
                    };
                    (d, seq, bits | 1)
                } else {
                    let back = top - seq;
                    if back >= REPLAY_WINDOW || bits & (1 << back) != 0 {
                        return Err(ReflectDrop::Replay);
                    }
                    (d, top, bits | (1 << back))
                }
            }
            _ => (disc, seq, 1),
        });
        Ok(ProbeRepr {
            kind: ProbeKind::Reflection,
            ..probe.repr()
        }
        .emit(&self.key))
    }

    /// Requests reflected.
    pub fn reflected(&self) -> u64 {
        self.reflected
    }

    /// Requests dropped, indexed by [`ReflectDrop::index`].
    pub fn dropped(&self) -> [u64; ReflectDrop::COUNT] {
        self.dropped
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::metrics::mos;
    use crate::probe::test::golden_key;

    const MS: Duration = Duration::from_millis(1);

    fn t(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    /// Runs one test at `start` over a wire with a fixed RTT per probe index (`None`:
    /// lost), returning the result and the time it completed.
    fn run_test(
        lt: &mut LinkTest,
        refl: &mut Reflector,
        rtt: impl Fn(usize) -> Option<u64>,
    ) -> (TestResult, Instant) {
        let mut now = lt.poll_timeout().unwrap();
        let mut in_flight: Vec<(Instant, [u8; PROBE_LEN])> = Vec::new();
        for _ in 0..100_000 {
            let mut i = 0;
            while let Some(p) = lt.poll_transmit(now) {
                let idx = lt.stats().probes_sent as usize - 1;
                if let Some(r) = rtt(idx % usize::from(lt.config.length)) {
                    in_flight.push((now + MS * r as u32, refl.reflect(&p).unwrap()));
                }
                i += 1;
                assert!(i < 2, "one probe per spacing");
            }
            in_flight.sort_by_key(|x| x.0);
            while in_flight.first().is_some_and(|x| x.0 <= now) {
                let (_, b) = in_flight.remove(0);
                lt.handle_reflection(now, &b).unwrap();
            }
            lt.handle_timeout(now);
            if let Some(r) = lt.poll_event() {
                return (r, now);
            }
            let next = [lt.poll_timeout(), in_flight.first().map(|x| x.0)]
                .into_iter()
                .flatten()
                .min()
                .unwrap();
            now = next;
        }
        panic!("test never finished");
    }

    fn pair(cfg: LinkTestConfig) -> (LinkTest, Reflector) {
        (
            LinkTest::new(cfg, golden_key(), 77, 1, t(0)),
            Reflector::new(golden_key()),
        )
    }

    #[test]
    fn spacing_respects_the_peer_echo_interval() {
        let c = LinkTestConfig::default();
        assert_eq!(c.spacing(), 100 * MS);
        let fast = LinkTestConfig {
            peer_required_min_echo_interval: Duration::ZERO,
            ..c
        };
        assert_eq!(fast.spacing(), MS);
        let (mut lt, _) = pair(c);
        let mut sent = Vec::new();
        let mut now = t(0);
        while sent.len() < 10 {
            if lt.poll_transmit(now).is_some() {
                sent.push(now);
            }
            now = lt.poll_timeout().unwrap().max(now + MS);
        }
        for w in sent.windows(2) {
            assert!(w[1] - w[0] >= 100 * MS);
        }
        assert!(lt.poll_transmit(now).is_none());
    }

    #[test]
    fn a_clean_test_measures_latency_jitter_loss_and_mos() {
        let (mut lt, mut refl) = pair(LinkTestConfig::default());
        // RTTs 40, 44, 40, 44, ... ms; probe 3 lost.
        let (r, done) = run_test(&mut lt, &mut refl, |i| {
            (i != 3).then_some(if i % 2 == 0 { 40 } else { 44 })
        });
        assert_eq!((r.sent, r.received), (10, 9));
        assert_eq!(r.loss_percent, 10.0);
        // Arrival order: 40 44 40 40 44 40 44 40 44 (index 3 missing) -> 8 steps of 4 but one 0.
        let rtts = [40.0, 44.0, 40.0, 40.0, 44.0, 40.0, 44.0, 40.0, 44.0];
        let expect = TestResult::from_rtts(10, &rtts);
        assert_eq!(r, expect);
        assert_eq!(
            r.mos,
            mos(expect.latency_ms.unwrap(), expect.jitter_ms.unwrap(), 10.0)
        );
        // One probe lost: the test ends at the reply deadline, 2 s after the last probe.
        assert_eq!(done, t(900 + 2000));
        assert_eq!(lt.smoothed(), Some(r.metrics()));
        assert_eq!(lt.last_test(), Some(r));
        // The next test starts 9-11 s after the first one started.
        let next = lt.poll_timeout().unwrap();
        assert!(next >= t(9000) && next <= t(11000), "{next}");
    }

    #[test]
    fn all_replies_end_the_test_early_and_ewma_smooths() {
        let (mut lt, mut refl) = pair(LinkTestConfig::default());
        let (r1, done) = run_test(&mut lt, &mut refl, |_| Some(20));
        assert_eq!(done, t(920));
        assert_eq!(r1.latency_ms, Some(10.0));
        let (r2, _) = run_test(&mut lt, &mut refl, |_| Some(60));
        assert_eq!(r2.latency_ms, Some(30.0));
        let s = lt.smoothed().unwrap();
        assert!((s.latency_ms - 15.0).abs() < 1e-9);
        assert_eq!(lt.stats().tests, 2);
    }

    #[test]
    fn a_dead_path_reports_total_loss() {
        let (mut lt, mut refl) = pair(LinkTestConfig::default());
        let (r, _) = run_test(&mut lt, &mut refl, |_| None);
        assert_eq!(r.loss_percent, 100.0);
        assert_eq!(r.mos, 1.0);
    }

    #[test]
    fn forged_replayed_and_late_reflections_are_dropped_and_counted() {
        let (mut lt, mut refl) = pair(LinkTestConfig::default());
        let p = lt.poll_transmit(t(0)).unwrap();
        let good = refl.reflect(&p).unwrap();
        // The request sent straight back is not a reflection.
        assert_eq!(lt.handle_reflection(t(1), &p), Err(ReflectionDrop::Kind));
        // Signed with another key.
        let mut forged = Reflector::new(LinkKey::new([5; 32]));
        let fp = ProbeRepr {
            kind: ProbeKind::Request,
            ..Probe::new_checked(&p[..]).unwrap().repr()
        }
        .emit(&LinkKey::new([5; 32]));
        let f = forged.reflect(&fp).unwrap();
        assert_eq!(lt.handle_reflection(t(1), &f), Err(ReflectionDrop::BadTag));
        // A flipped timestamp bit.
        let mut bad = good;
        bad[20] ^= 1;
        assert_eq!(
            lt.handle_reflection(t(1), &bad),
            Err(ReflectionDrop::BadTag)
        );
        assert_eq!(
            lt.handle_reflection(t(1), &good[..10]),
            Err(ReflectionDrop::Length)
        );
        // Another test's discriminator.
        let other = ProbeRepr {
            kind: ProbeKind::Reflection,
            discriminator: 78,
            ..Probe::new_checked(&p[..]).unwrap().repr()
        }
        .emit(&golden_key());
        assert_eq!(
            lt.handle_reflection(t(1), &other),
            Err(ReflectionDrop::Discriminator)
        );
        // A sequence never sent.
        let unsent = ProbeRepr {
            kind: ProbeKind::Reflection,
            sequence: 99,
            ..Probe::new_checked(&p[..]).unwrap().repr()
        }
        .emit(&golden_key());
        assert_eq!(
            lt.handle_reflection(t(1), &unsent),
            Err(ReflectionDrop::Stale)
        );
        assert_eq!(lt.handle_reflection(t(5), &good), Ok(()));
        assert_eq!(
            lt.handle_reflection(t(6), &good),
            Err(ReflectionDrop::Duplicate)
        );
        // Past the 2 s reply deadline.
        let p2 = lt.poll_transmit(t(100)).unwrap();
        let late = refl.reflect(&p2).unwrap();
        assert_eq!(
            lt.handle_reflection(t(2101), &late),
            Err(ReflectionDrop::Stale)
        );
        let s = lt.stats();
        assert_eq!(s.reflections, 1);
        for (reason, n) in [
            (ReflectionDrop::Kind, 1),
            (ReflectionDrop::BadTag, 2),
            (ReflectionDrop::Length, 1),
            (ReflectionDrop::Discriminator, 1),
            (ReflectionDrop::Stale, 2),
            (ReflectionDrop::Duplicate, 1),
        ] {
            assert_eq!(s.dropped[reason.index()], n, "{}", reason.name());
        }
    }

    #[test]
    fn reflector_drops_replays_and_forgeries() {
        let mut refl = Reflector::new(golden_key());
        let req = |disc, seq| {
            ProbeRepr {
                kind: ProbeKind::Request,
                discriminator: disc,
                sequence: seq,
                timestamp: 5,
            }
            .emit(&golden_key())
        };
        let out = refl.reflect(&req(1, 10)).unwrap();
        let o = Probe::new_checked(&out[..]).unwrap();
        assert_eq!(o.kind(), ProbeKind::Reflection);
        assert_eq!((o.sequence(), o.timestamp(), o.discriminator()), (10, 5, 1));
        assert!(o.verify(&golden_key()));
        assert_eq!(refl.reflect(&req(1, 10)), Err(ReflectDrop::Replay));
        assert!(refl.reflect(&req(1, 12)).is_ok());
        assert!(refl.reflect(&req(1, 11)).is_ok()); // reordered, inside the window
        assert_eq!(refl.reflect(&req(1, 11)), Err(ReflectDrop::Replay));
        assert!(refl.reflect(&req(1, 200)).is_ok());
        assert_eq!(refl.reflect(&req(1, 136)), Err(ReflectDrop::Replay)); // too old
        assert!(refl.reflect(&req(1, 137)).is_ok());
        // A reflection is not reflected again; a forgery does not move the window.
        assert_eq!(refl.reflect(&out), Err(ReflectDrop::Kind));
        let forged = ProbeRepr {
            kind: ProbeKind::Request,
            discriminator: 1,
            sequence: 100_000,
            timestamp: 0,
        }
        .emit(&LinkKey::new([3; 32]));
        assert_eq!(refl.reflect(&forged), Err(ReflectDrop::BadTag));
        assert!(refl.reflect(&req(1, 199)).is_ok());
        // A restarted link test (new discriminator) starts a new window.
        assert!(refl.reflect(&req(2, 1)).is_ok());
        assert_eq!(refl.reflected(), 7);
        assert_eq!(refl.dropped()[ReflectDrop::Replay.index()], 3);
    }

    #[test]
    fn length_zero_disables_the_test() {
        let (mut lt, _) = pair(LinkTestConfig {
            length: 0,
            ..LinkTestConfig::default()
        });
        assert_eq!(lt.poll_timeout(), None);
        assert!(lt.poll_transmit(t(100_000)).is_none());
    }

    #[test]
    fn spurious_timeouts_are_harmless_and_garbage_never_panics() {
        let (mut lt, _) = pair(LinkTestConfig::default());
        for ms in [0, 1, 50, 5000] {
            lt.handle_timeout(t(ms));
        }
        let mut x = 1u64;
        for len in 0..80 {
            let mut b = vec![0u8; len];
            for byte in &mut b {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                *byte = (x >> 56) as u8;
            }
            if len > 0 {
                b[0] = 1;
            }
            assert!(lt.handle_reflection(t(1), &b).is_err());
        }
    }
}
