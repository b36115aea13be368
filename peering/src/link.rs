//! The link test of one peer path inside the coordinator (docs/multipath.md §2, §5): a
//! [`LinkTest`] that measures while the path's BFD session is Up and a link-test key exists,
//! a [`Reflector`] that answers the peer's probes, the smoothed and last raw metrics, and the
//! hold-down on what is published ([`Publish::PathMetrics`](crate::Publish::PathMetrics)).

use std::collections::VecDeque;

use fastpath::time::Instant;
use svr_linkq::{
    Damper, HoldDownConfig, LinkKey, LinkTest, LinkTestConfig, LinkTestStats, Metrics, PathMonitor,
    ReflectDrop, ReflectionDrop, Reflector, TestResult, PROBE_LEN,
};

/// Link-test settings of one path: SSR's `bfd` keys (docs/multipath.md §1.1). The default
/// is SSR's: a test of 10 probes every 10 s, the peer's `required-min-echo-interval` 1 s
/// (probes 100 ms apart), hold-down 5 s without dynamic damping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkConfig {
    /// `link-test-interval`, `link-test-length` (0 turns the test off) and the **peer's**
    /// `required-min-echo-interval`, which spaces the probes.
    pub test: LinkTestConfig,
    /// `hold-down-time`, `dynamic-damping`, `maximum-hold-down-time`: how long a change of
    /// the smoothed metrics must hold before it is published.
    pub hold_down: HoldDownConfig,
}

/// Why a link-test probe (first byte 1, docs/multipath.md §5) was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkDrop {
    /// The path has no link-test key yet, or (requests) its BFD session is Down, or
    /// (reflections) no test runs because BFD is not Up.
    #[error("link test inactive on this path")]
    Inactive,
    /// The reflector refused a request (counted in [`LinkStats::reflect_dropped`]).
    #[error("request not reflected: {0:?}")]
    Request(ReflectDrop),
    /// The link test refused a reflection (counted in [`LinkStats::test`]`.dropped`).
    #[error("reflection dropped: {0:?}")]
    Reflection(ReflectionDrop),
}

/// Counters of one path's link test and reflector, over the path's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStats {
    /// The measuring side, summed over every activation of the test.
    pub test: LinkTestStats,
    /// Requests reflected.
    pub reflected: u64,
    /// Requests dropped by the reflector, indexed by [`ReflectDrop::index`].
    pub reflect_dropped: [u64; ReflectDrop::COUNT],
    /// Probes that arrived while the link test was inactive ([`LinkDrop::Inactive`]).
    pub inactive: u64,
    /// Reflections not queued because [`REFLECTION_QUEUE`] were already waiting.
    pub reflect_queue_full: u64,
}

/// Reflections waiting for [`poll_transmit`](crate::PeerCoordinator::poll_transmit), at most.
pub const REFLECTION_QUEUE: usize = 64;

/// The smoothed metrics as published: changes smaller than these steps are not a change
/// for the hold-down (latency and jitter in 0.1 ms, loss in 0.1 %, MOS in 0.01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Told {
    latency: i64,
    jitter: i64,
    loss: i64,
    mos: i64,
}

impl Told {
    fn of(m: &Metrics) -> Told {
        // `as` saturates for out-of-range floats and maps NaN to 0: no panic.
        Told {
            latency: (m.latency_ms * 10.0).round() as i64,
            jitter: (m.jitter_ms * 10.0).round() as i64,
            loss: (m.loss_percent * 10.0).round() as i64,
            mos: (m.mos * 100.0).round() as i64,
        }
    }
}

pub(crate) struct PathLink {
    config: LinkConfig,
    /// The BFD session's discriminator, from which each activation's probe discriminator is
    /// drawn.
    base_discriminator: u32,
    seed: u64,
    /// Activations so far (a restarted test needs a new discriminator: the peer's replay
    /// window is per discriminator).
    epoch: u32,
    key: Option<LinkKey>,
    /// Runs while BFD is Up and a key exists.
    test: Option<LinkTest>,
    reflector: Option<Reflector>,
    reflections: VecDeque<[u8; PROBE_LEN]>,
    last: Option<TestResult>,
    smoothed: Option<Metrics>,
    monitor: PathMonitor,
    told: Damper<Option<Told>>,
    /// Counters of tests no longer running.
    past: LinkTestStats,
    stats: LinkStats,
}

impl PathLink {
    pub(crate) fn new(config: LinkConfig, base_discriminator: u32, seed: u64) -> PathLink {
        PathLink {
            config,
            base_discriminator,
            seed,
            epoch: 0,
            key: None,
            test: None,
            reflector: None,
            reflections: VecDeque::new(),
            last: None,
            smoothed: None,
            // No policies here: svrd's selector evaluates them from `metrics`.
            monitor: PathMonitor::new(config.hold_down, 0),
            told: Damper::new(config.hold_down, None),
            past: LinkTestStats::default(),
            stats: LinkStats::default(),
        }
    }

    /// New settings (a reload): hold-down timers at once; a running link test stops and
    /// [`Self::update`] starts it again with the new interval and length.
    pub(crate) fn set_config(&mut self, config: LinkConfig) {
        if config.test != self.config.test {
            self.stop();
        }
        self.monitor.set_hold_down(config.hold_down);
        self.told.set_config(config.hold_down);
        self.config = config;
    }

    /// The link-test key of the peer's current key changed (`None`: no key any more).
    pub(crate) fn set_key(&mut self, secret: Option<[u8; 32]>) {
        match secret {
            Some(s) => {
                let key = LinkKey::new(s);
                if let Some(t) = &mut self.test {
                    t.set_key(key.clone());
                }
                match &mut self.reflector {
                    Some(r) => r.set_key(key.clone()),
                    None => self.reflector = Some(Reflector::new(key.clone())),
                }
                self.key = Some(key);
            }
            None => {
                self.key = None;
                self.stop();
                if let Some(r) = self.reflector.take() {
                    self.fold_reflector(&r);
                }
            }
        }
    }

    /// Starts or stops the test: it runs while `bfd_up` and a key exists. Then takes the
    /// results of finished tests into the monitor and the hold-down of what is published.
    pub(crate) fn update(&mut self, now: Instant, bfd_up: bool, in_service: bool) {
        match (&self.test, &self.key) {
            (None, Some(key)) if bfd_up => {
                self.epoch = self.epoch.wrapping_add(1);
                let disc = discriminator(self.base_discriminator, self.epoch);
                self.test = Some(LinkTest::new(
                    self.config.test,
                    key.clone(),
                    disc,
                    self.seed ^ u64::from(self.epoch),
                    now,
                ));
            }
            (Some(_), _) if !bfd_up || self.key.is_none() => self.stop(),
            _ => {}
        }
        self.monitor.set_in_service(now, in_service);
        if let Some(t) = &mut self.test {
            while let Some(result) = t.poll_event() {
                self.last = Some(result);
                self.smoothed = t.smoothed();
            }
        }
        if let Some(m) = self.smoothed {
            if self.monitor.metrics() != Some(m) {
                self.monitor.set_metrics(now, m, &[]);
                let told = Some(Told::of(&m));
                if self.told.notified().is_none() {
                    // The first measurement is news at once, as a path's first Up is.
                    self.told.observe_urgent(now, told);
                } else {
                    self.told.observe(now, told);
                }
            }
        }
    }

    fn stop(&mut self) {
        if let Some(t) = self.test.take() {
            let s = t.stats();
            self.past.probes_sent += s.probes_sent;
            self.past.reflections += s.reflections;
            self.past.tests += s.tests;
            for (p, n) in self.past.dropped.iter_mut().zip(s.dropped) {
                *p += n;
            }
        }
        self.reflections.clear();
    }

    fn fold_reflector(&mut self, r: &Reflector) {
        self.stats.reflected += r.reflected();
        for (p, n) in self.stats.reflect_dropped.iter_mut().zip(r.dropped()) {
            *p += n;
        }
    }

    /// A probe that arrived on the path. Requests are reflected while BFD is not Down
    /// (`bfd_alive`: Init or Up, so the peer's first probes after it saw Up are answered);
    /// reflections go to the running test.
    pub(crate) fn handle_probe(
        &mut self,
        now: Instant,
        bfd_alive: bool,
        bytes: &[u8],
    ) -> Result<(), LinkDrop> {
        let is_request = bytes.get(1) == Some(&1);
        if is_request {
            let Some(r) = self.reflector.as_mut().filter(|_| bfd_alive) else {
                self.stats.inactive += 1;
                return Err(LinkDrop::Inactive);
            };
            let reflection = r.reflect(bytes).map_err(LinkDrop::Request)?;
            if self.reflections.len() >= REFLECTION_QUEUE {
                self.stats.reflect_queue_full += 1;
            } else {
                self.reflections.push_back(reflection);
            }
            Ok(())
        } else {
            let Some(t) = self.test.as_mut() else {
                self.stats.inactive += 1;
                return Err(LinkDrop::Inactive);
            };
            t.handle_reflection(now, bytes)
                .map_err(LinkDrop::Reflection)
        }
    }

    /// The next probe or reflection due at `now`; `true` for a reflection.
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<([u8; PROBE_LEN], bool)> {
        if let Some(r) = self.reflections.pop_front() {
            return Some((r, true));
        }
        self.test.as_mut()?.poll_transmit(now).map(|p| (p, false))
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let Some(t) = &mut self.test {
            if t.poll_timeout().is_some_and(|d| d <= now) {
                t.handle_timeout(now);
            }
        }
        self.monitor.handle_timeout(now);
        self.told.handle_timeout(now);
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [
            self.test.as_ref().and_then(LinkTest::poll_timeout),
            self.monitor.poll_timeout(),
            self.told.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The smoothed metrics to publish, once a change has held for the hold-down.
    pub(crate) fn poll_publish(&mut self) -> Option<Metrics> {
        // The monitor's own service changes are read through `monitor()`; drain them so
        // they do not pile up.
        while self.monitor.poll_event().is_some() {}
        self.told.poll_event()?;
        self.smoothed
    }

    pub(crate) fn smoothed(&self) -> Option<Metrics> {
        self.smoothed
    }

    pub(crate) fn last(&self) -> Option<TestResult> {
        self.last
    }

    pub(crate) fn monitor(&self) -> &PathMonitor {
        &self.monitor
    }

    pub(crate) fn running(&self) -> bool {
        self.test.is_some()
    }

    pub(crate) fn stats(&self) -> LinkStats {
        let mut s = self.stats;
        s.test = self.past;
        if let Some(t) = &self.test {
            let c = t.stats();
            s.test.probes_sent += c.probes_sent;
            s.test.reflections += c.reflections;
            s.test.tests += c.tests;
            for (p, n) in s.test.dropped.iter_mut().zip(c.dropped) {
                *p += n;
            }
        }
        if let Some(r) = &self.reflector {
            s.reflected += r.reflected();
            for (p, n) in s.reflect_dropped.iter_mut().zip(r.dropped()) {
                *p += n;
            }
        }
        s
    }
}

/// The probe discriminator of activation `epoch` of a path whose BFD discriminator is
/// `base`: splitmix64 of both, never 0.
fn discriminator(base: u32, epoch: u32) -> u32 {
    let mut z = (u64::from(base) << 32 | u64::from(epoch)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z as u32).max(1)
}
