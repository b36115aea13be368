//! The slow path's view of one peer path: its told (held-down) service state, its
//! compliance with each policy, and its smoothed metrics — what goes into a
//! [`PathSnapshot`] entry and the `compliant` set of
//! [`decide`](crate::decide).
//!
//! Feed it BFD state changes ([`PathMonitor::set_in_service`]) and link-test results
//! ([`PathMonitor::set_metrics`]); drive its timers like the rest of the crate; take
//! [`PathChange`]s from [`PathMonitor::poll_event`] and, on each, republish the snapshot
//! and run [`decide`](crate::decide) for the sessions [`needs_review`] picks.

use svr_time::Instant;

use crate::damping::{Damper, HoldDownConfig};
use crate::metrics::Metrics;
use crate::resiliency::SessionPaths;
use crate::select::{PathEntry, PathSet, PathSnapshot, Policy, SessionResiliency};

/// A change told to the path selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathChange {
    /// The path entered (`true`) or left service.
    Service(bool),
    /// The path's compliance with policy number `policy` changed.
    Compliance {
        /// Index of the policy in the list given to [`PathMonitor::new`].
        policy: usize,
        /// Compliant now?
        compliant: bool,
    },
}

/// One peer path's held-down facts. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct PathMonitor {
    service: Damper<bool>,
    ever_up: bool,
    compliance: Vec<Damper<bool>>,
    metrics: Option<Metrics>,
    /// Changes told and not yet taken, oldest first.
    events: Vec<PathChange>,
}

impl PathMonitor {
    /// A path out of service, compliant with nothing, for `policy_count` policies.
    pub fn new(config: HoldDownConfig, policy_count: usize) -> PathMonitor {
        PathMonitor {
            service: Damper::new(config, false),
            ever_up: false,
            compliance: vec![Damper::new(config, false); policy_count],
            metrics: None,
            events: Vec::new(),
        }
    }

    /// New hold-down timers (a reload), for every damped fact.
    pub fn set_hold_down(&mut self, config: HoldDownConfig) {
        self.service.set_config(config);
        for d in &mut self.compliance {
            d.set_config(config);
        }
    }

    /// BFD up (and a valid key), or not. Going down is told at once; coming up after a
    /// hold-down, except the first time (there is no flap to damp yet).
    pub fn set_in_service(&mut self, now: Instant, up: bool) {
        if !up {
            self.service.observe_urgent(now, false);
        } else if !self.ever_up {
            self.ever_up = true;
            self.service.observe_urgent(now, true);
        } else {
            self.service.observe(now, true);
        }
        self.collect();
    }

    /// New smoothed metrics (after a link test); compliance with each of `policies`
    /// (the same list, in the same order, as the count given to [`new`](Self::new)) goes
    /// through the hold-down.
    pub fn set_metrics(&mut self, now: Instant, metrics: Metrics, policies: &[Policy]) {
        self.metrics = Some(metrics);
        for (d, p) in self.compliance.iter_mut().zip(policies) {
            d.observe(now, p.complies(&metrics));
        }
        self.collect();
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.service.handle_timeout(now);
        for d in &mut self.compliance {
            d.handle_timeout(now);
        }
        self.collect();
    }

    /// The earliest timer.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        std::iter::once(&self.service)
            .chain(&self.compliance)
            .filter_map(Damper::poll_timeout)
            .min()
    }

    /// The next change told, oldest first.
    pub fn poll_event(&mut self) -> Option<PathChange> {
        if self.events.is_empty() {
            None
        } else {
            Some(self.events.remove(0))
        }
    }

    fn collect(&mut self) {
        if let Some(up) = self.service.poll_event() {
            self.events.push(PathChange::Service(up));
        }
        for (policy, d) in self.compliance.iter_mut().enumerate() {
            if let Some(compliant) = d.poll_event() {
                self.events
                    .push(PathChange::Compliance { policy, compliant });
            }
        }
    }

    /// Told in service?
    pub fn in_service(&self) -> bool {
        self.service.notified()
    }

    /// Told compliant with policy number `policy`?
    pub fn compliant(&self, policy: usize) -> bool {
        self.compliance.get(policy).is_some_and(Damper::notified)
    }

    /// The latest smoothed metrics.
    pub fn metrics(&self) -> Option<Metrics> {
        self.metrics
    }

    /// This path's snapshot entry, with its configured label, cost and local interface.
    pub fn entry(&self, template: PathEntry) -> PathEntry {
        PathEntry {
            in_service: self.in_service(),
            metrics: self.metrics,
            ..template
        }
    }
}

/// The `compliant` set for policy number `policy` over the monitors of a snapshot's paths
/// (in snapshot order).
pub fn compliant_set(monitors: &[PathMonitor], policy: usize) -> PathSet {
    let mut s = PathSet::EMPTY;
    for (i, m) in monitors.iter().enumerate().take(64) {
        if m.compliant(policy) {
            s.insert(crate::PathIndex(i as u8));
        }
    }
    s
}

/// The usable paths of a policy: in service and, with `path-quality-filter`, compliant.
pub fn usable(policy: &Policy, snapshot: &PathSnapshot, compliant: PathSet) -> PathSet {
    if policy.path_quality_filter {
        snapshot.in_service().and(compliant)
    } else {
        snapshot.in_service()
    }
}

/// Can [`decide`](crate::decide) say anything but `Stay` for this session, given its
/// policy's usable paths before and after a change? A cheap filter for when thousands of
/// sessions share a peer: `false` means "skip it". `true` when one of its paths changed
/// usability, when it is on an unusable path and some path became usable, for
/// `revertible-failover` when its preferred path became usable, and for
/// `packet-duplication` without a second path when any path became usable.
pub fn needs_review(
    resiliency: SessionResiliency,
    session: &SessionPaths,
    before: PathSet,
    after: PathSet,
) -> bool {
    let changed = PathSet(before.0 ^ after.0);
    let became_usable = PathSet(after.0 & !before.0);
    let own = changed.contains(session.current)
        || session.duplicate.is_some_and(|d| changed.contains(d))
        || (!after.contains(session.current) && !became_usable.is_empty());
    match resiliency {
        SessionResiliency::None => false,
        SessionResiliency::Failover => own,
        SessionResiliency::RevertibleFailover => own || became_usable.contains(session.preferred),
        SessionResiliency::PacketDuplication => {
            own || (session.duplicate.is_none() && !became_usable.is_empty())
        }
    }
}

#[cfg(test)]
mod test {
    use std::time::Duration;

    use super::*;
    use crate::linktest::{LinkTest, LinkTestConfig, Reflector};
    use crate::probe::test::golden_key;
    use crate::resiliency::{decide, Decision, MoveReason};
    use crate::select::test::{path, uuid};
    use crate::select::{select, BestPath, PathIndex};

    fn s(secs: u64) -> Instant {
        Instant::from_nanos(secs * 1_000_000_000)
    }

    #[test]
    fn first_up_is_immediate_then_down_immediate_then_up_held() {
        let mut m = PathMonitor::new(HoldDownConfig::default(), 0);
        m.set_in_service(s(1), true);
        assert_eq!(m.poll_event(), Some(PathChange::Service(true)));
        m.set_in_service(s(2), false);
        assert_eq!(m.poll_event(), Some(PathChange::Service(false)));
        m.set_in_service(s(3), true);
        assert_eq!(m.poll_event(), None);
        assert_eq!(m.poll_timeout(), Some(s(8)));
        m.handle_timeout(s(8));
        assert_eq!(m.poll_event(), Some(PathChange::Service(true)));
        assert!(m.in_service());
    }

    #[test]
    fn needs_review_filters_sessions() {
        let sess = SessionPaths {
            current: PathIndex(0),
            preferred: PathIndex(0),
            duplicate: Some(PathIndex(1)),
        };
        let set = |bits: u64| PathSet(bits);
        let dup = SessionResiliency::PacketDuplication;
        assert!(!needs_review(dup, &sess, set(0b111), set(0b011)));
        assert!(needs_review(dup, &sess, set(0b111), set(0b110)));
        assert!(needs_review(dup, &sess, set(0b111), set(0b101)));
        let single = SessionPaths {
            duplicate: None,
            ..sess
        };
        assert!(needs_review(dup, &single, set(0b001), set(0b101)));
        let moved = SessionPaths {
            current: PathIndex(1),
            preferred: PathIndex(0),
            duplicate: None,
        };
        let rev = SessionResiliency::RevertibleFailover;
        let fo = SessionResiliency::Failover;
        assert!(needs_review(rev, &moved, set(0b010), set(0b011)));
        assert!(!needs_review(fo, &moved, set(0b010), set(0b011)));
        assert!(!needs_review(rev, &moved, set(0b010), set(0b110)));
        assert!(!needs_review(rev, &moved, set(0b110), set(0b010)));
        assert!(needs_review(fo, &moved, set(0b110), set(0b100)));
        // Stranded: any path becoming usable.
        assert!(needs_review(fo, &moved, set(0b000), set(0b100)));
        assert!(!needs_review(
            SessionResiliency::None,
            &moved,
            set(0b110),
            set(0b100)
        ));
    }

    /// The voice case end to end on virtual time: link tests on two paths over a
    /// simulated wire; path 0 starts losing 20 % of probes at t = 60 s; the smoothed loss
    /// crosses max-loss 1 %, compliance is told after the 5 s hold-down, and the live
    /// session fails over to path 1 — and a new voice session selects path 1 at once.
    #[test]
    fn voice_fails_over_after_loss_and_hold_down() {
        let voice = Policy {
            path_quality_filter: true,
            max_loss_percent: 1.0,
            max_latency_ms: 150,
            best_path: BestPath::AverageLatency,
            session_resiliency: SessionResiliency::Failover,
            ..Policy::default()
        };
        let policies = [voice];
        let cfg = LinkTestConfig::default();
        let mut tests: Vec<LinkTest> = (0..2)
            .map(|i| LinkTest::new(cfg, golden_key(), 10 + i, 7 + u64::from(i), s(0)))
            .collect();
        let mut refl = [Reflector::new(golden_key()), Reflector::new(golden_key())];
        let mut mons = vec![PathMonitor::new(HoldDownConfig::default(), 1); 2];
        for m in &mut mons {
            m.set_in_service(s(0), true);
        }
        let template = path(0.0, 0.0);
        let mut session = SessionPaths {
            current: PathIndex(0),
            preferred: PathIndex(0),
            duplicate: None,
        };
        let mut moved_at = None;
        let mut probe_no = [0u64; 2];
        let mut in_flight: Vec<(Instant, usize, [u8; crate::PROBE_LEN])> = Vec::new();
        let mut now = s(0);
        let rtt = [Duration::from_millis(20), Duration::from_millis(60)];
        while now < s(200) {
            for p in 0..2 {
                while let Some(b) = tests[p].poll_transmit(now) {
                    probe_no[p] += 1;
                    let lost = p == 0 && now >= s(60) && probe_no[p] % 5 == 0;
                    if !lost {
                        in_flight.push((now + rtt[p], p, refl[p].reflect(&b).unwrap()));
                    }
                }
            }
            in_flight.sort_by_key(|x| x.0);
            while in_flight.first().is_some_and(|x| x.0 <= now) {
                let (_, p, b) = in_flight.remove(0);
                tests[p].handle_reflection(now, &b).unwrap();
            }
            let mut changed = false;
            for p in 0..2 {
                tests[p].handle_timeout(now);
                if tests[p].poll_event().is_some() {
                    let m = tests[p].smoothed().unwrap();
                    mons[p].set_metrics(now, m, &policies);
                }
                mons[p].handle_timeout(now);
                while mons[p].poll_event().is_some() {
                    changed = true;
                }
            }
            if changed {
                let snap =
                    PathSnapshot::new(&[mons[0].entry(template), mons[1].entry(template)]).unwrap();
                let compliant = compliant_set(&mons, 0);
                if let Decision::Move { to, reason } =
                    decide(&voice, &snap, compliant, &session, &uuid(1))
                {
                    assert_eq!((to, reason), (PathIndex(1), MoveReason::SlaViolation));
                    session.current = to;
                    moved_at.get_or_insert(now);
                    // New voice sessions avoid path 0 as soon as its smoothed loss is over
                    // the limit.
                    assert_eq!(select(&snap, &voice, &uuid(99)), Ok(PathIndex(1)));
                }
            }
            let next = tests
                .iter()
                .filter_map(LinkTest::poll_timeout)
                .chain(mons.iter().filter_map(PathMonitor::poll_timeout))
                .chain(in_flight.first().map(|x| x.0))
                .min()
                .unwrap();
            now = next.max(now + Duration::from_micros(1));
        }
        let at = moved_at.expect("the session moved");
        // The first lossy test starts between 60 and about 70 s (the interval is jittered)
        // and ends 2.9 s later (the wait for the lost probes), plus the 5 s hold-down.
        assert!(at > s(65) && at < s(85), "moved at {at}");
        assert_eq!(session.current, PathIndex(1));
    }
}
