//! Move decisions for live sessions (`session-resiliency`, docs/multipath.md §6).
//!
//! Decisions are taken on damped facts only: `in_service` in the snapshot is BFD up/down as
//! notified through the hold-down (down at once, up after a hold-down), and `compliant` is
//! the set of paths whose SLA compliance with this policy, fed through a
//! [`Damper`](crate::Damper) per (policy, path), is notified true. So a path is *usable*
//! when it is in service and (without `path-quality-filter`, or) compliant, and a notified
//! "compliant" means "compliant for a full hold-down".
//!
//! The caller runs [`decide`] for each live session of a policy when one of those facts
//! changes, carries out the moves (forward metadata with the same session UUID on the new
//! path) and emits a `session.path-change` event with the old path, the new one and the
//! [`MoveReason`].

use crate::select::{choose, second, PathIndex, PathSet, PathSnapshot, Policy, SessionResiliency};

/// Where a live session's packets go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionPaths {
    /// The path forward packets take now.
    pub current: PathIndex,
    /// The path selection chose at creation: `revertible-failover` returns to it.
    pub preferred: PathIndex,
    /// `packet-duplication`: the second path each packet is copied to.
    pub duplicate: Option<PathIndex>,
}

/// Why a session moves. Each is a counter and the `reason` of the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MoveReason {
    /// Its path left service (BFD down, key invalid).
    PathDown,
    /// Its path violates the policy's SLA (after the hold-down).
    SlaViolation,
    /// `revertible-failover`: the preferred path is usable again.
    Revert,
    /// `packet-duplication`: a second path became available.
    PathUp,
}

impl MoveReason {
    /// Number of reasons.
    pub const COUNT: usize = 4;

    /// The counter index.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name in events and counters.
    pub fn name(self) -> &'static str {
        match self {
            MoveReason::PathDown => "path-down",
            MoveReason::SlaViolation => "sla-violation",
            MoveReason::Revert => "revert",
            MoveReason::PathUp => "path-up",
        }
    }
}

/// What to do with one live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Leave it where it is.
    Stay,
    /// Move it to `to` (`failover`, `revertible-failover`).
    Move {
        /// The new path.
        to: PathIndex,
        /// Why.
        reason: MoveReason,
    },
    /// `packet-duplication`: send on these paths from now on.
    Duplicate {
        /// The first copy's path (becomes `current`).
        primary: PathIndex,
        /// The second copy's path, if there is a second usable path.
        secondary: Option<PathIndex>,
        /// Why the pair changed.
        reason: MoveReason,
    },
    /// Its path is out of service and no other is usable: packets are dropped (counted)
    /// until a path returns, then the session moves there.
    Stranded,
}

/// The decision for one live session. `compliant`: the paths whose damped SLA compliance
/// with `policy` is true (ignored without `path-quality-filter`); `uuid` the session's.
pub fn decide(
    policy: &Policy,
    snapshot: &PathSnapshot,
    compliant: PathSet,
    session: &SessionPaths,
    uuid: &[u8; 16],
) -> Decision {
    let in_service = snapshot.in_service();
    let compliant = if policy.path_quality_filter {
        compliant
    } else {
        PathSet::ALL
    };
    let usable = in_service.and(compliant);
    let why = |p: PathIndex| {
        if in_service.contains(p) {
            MoveReason::SlaViolation
        } else {
            MoveReason::PathDown
        }
    };
    let cur = session.current;
    match policy.session_resiliency {
        SessionResiliency::None => Decision::Stay,
        SessionResiliency::Failover | SessionResiliency::RevertibleFailover => {
            if usable.contains(cur) {
                let revert = policy.session_resiliency == SessionResiliency::RevertibleFailover
                    && session.preferred != cur
                    && usable.contains(session.preferred);
                return if revert {
                    Decision::Move {
                        to: session.preferred,
                        reason: MoveReason::Revert,
                    }
                } else {
                    Decision::Stay
                };
            }
            let reason = why(cur);
            match choose(snapshot, policy, uuid, PathSet::ALL.without(cur), compliant) {
                // Another violating path (best-effort) is no better than this one.
                Ok(to) if reason == MoveReason::SlaViolation && !usable.contains(to) => {
                    Decision::Stay
                }
                Ok(to) => Decision::Move { to, reason },
                Err(_) if in_service.contains(cur) => Decision::Stay,
                Err(_) => Decision::Stranded,
            }
        }
        SessionResiliency::PacketDuplication => {
            let primary_ok = usable.contains(cur);
            let secondary_ok = session.duplicate.map(|d| usable.contains(d));
            if primary_ok && secondary_ok == Some(true) {
                return Decision::Stay;
            }
            let keep = if primary_ok {
                Some(cur)
            } else if secondary_ok == Some(true) {
                session.duplicate
            } else {
                None
            };
            let primary = match keep {
                Some(p) => p,
                None => match choose(snapshot, policy, uuid, usable, compliant) {
                    Ok(p) => p,
                    Err(_) if in_service.contains(cur) => return Decision::Stay,
                    Err(_) => return Decision::Stranded,
                },
            };
            let secondary = second(snapshot, policy, uuid, usable, compliant, primary);
            if primary == cur && secondary == session.duplicate {
                return Decision::Stay;
            }
            let reason = if !primary_ok {
                why(cur)
            } else if let Some(d) = session.duplicate.filter(|_| secondary_ok == Some(false)) {
                why(d)
            } else {
                MoveReason::PathUp
            };
            Decision::Duplicate {
                primary,
                secondary,
                reason,
            }
        }
    }
}

#[cfg(test)]
mod test {
    use std::time::Duration;

    use svr_time::Instant;

    use super::*;
    use crate::damping::{Damper, HoldDownConfig};
    use crate::select::test::{path, uuid};
    use crate::select::{select, select_pair, BestPath};

    fn policy(r: SessionResiliency) -> Policy {
        Policy {
            path_quality_filter: true,
            max_loss_percent: 1.0,
            max_latency_ms: 150,
            best_path: BestPath::AverageLatency,
            session_resiliency: r,
            ..Policy::default()
        }
    }

    fn on(p: PathIndex) -> SessionPaths {
        SessionPaths {
            current: p,
            preferred: p,
            duplicate: None,
        }
    }

    const P0: PathIndex = PathIndex(0);
    const P1: PathIndex = PathIndex(1);
    const P2: PathIndex = PathIndex(2);

    #[test]
    fn none_never_moves() {
        let mut down = path(10.0, 0.0);
        down.in_service = false;
        let snap = PathSnapshot::new(&[down, path(20.0, 0.0)]).unwrap();
        let pol = policy(SessionResiliency::None);
        assert_eq!(
            decide(&pol, &snap, PathSet::ALL, &on(P0), &uuid(1)),
            Decision::Stay
        );
    }

    #[test]
    fn failover_moves_off_a_down_path_and_stays() {
        let pol = policy(SessionResiliency::Failover);
        let mut down = path(10.0, 0.0);
        down.in_service = false;
        let snap = PathSnapshot::new(&[down, path(20.0, 0.0), path(40.0, 0.0)]).unwrap();
        let all = snap.compliant(&pol);
        let d = decide(&pol, &snap, all, &on(P0), &uuid(1));
        assert_eq!(
            d,
            Decision::Move {
                to: P1,
                reason: MoveReason::PathDown
            }
        );
        // Path 0 comes back: failover stays on path 1.
        let back = PathSnapshot::new(&[path(10.0, 0.0), path(20.0, 0.0)]).unwrap();
        let s = SessionPaths {
            current: P1,
            preferred: P0,
            duplicate: None,
        };
        assert_eq!(
            decide(&pol, &back, back.compliant(&pol), &s, &uuid(1)),
            Decision::Stay
        );
    }

    #[test]
    fn failover_on_sla_violation_only_to_a_compliant_path() {
        let pol = policy(SessionResiliency::Failover);
        let snap = PathSnapshot::new(&[path(10.0, 10.0), path(20.0, 0.0)]).unwrap();
        // Damped compliance: path 0 violating, path 1 compliant.
        let mut compliant = PathSet::EMPTY;
        compliant.insert(P1);
        assert_eq!(
            decide(&pol, &snap, compliant, &on(P0), &uuid(1)),
            Decision::Move {
                to: P1,
                reason: MoveReason::SlaViolation
            }
        );
        // Both violating: stay (best-effort would only trade one bad path for another).
        assert_eq!(
            decide(&pol, &snap, PathSet::EMPTY, &on(P0), &uuid(1)),
            Decision::Stay
        );
        // Without the quality filter, SLA is no reason to move.
        let nofilter = Policy {
            path_quality_filter: false,
            ..pol
        };
        assert_eq!(
            decide(&nofilter, &snap, PathSet::EMPTY, &on(P0), &uuid(1)),
            Decision::Stay
        );
    }

    #[test]
    fn all_paths_down_strands_then_the_first_to_return_takes_the_session() {
        let pol = policy(SessionResiliency::Failover);
        let mut a = path(10.0, 0.0);
        a.in_service = false;
        let mut b = path(20.0, 0.0);
        b.in_service = false;
        let snap = PathSnapshot::new(&[a, b]).unwrap();
        assert_eq!(
            decide(&pol, &snap, PathSet::ALL, &on(P0), &uuid(1)),
            Decision::Stranded
        );
        b.in_service = true;
        let snap = PathSnapshot::new(&[a, b]).unwrap();
        assert_eq!(
            decide(&pol, &snap, PathSet::ALL, &on(P0), &uuid(1)),
            Decision::Move {
                to: P1,
                reason: MoveReason::PathDown
            }
        );
    }

    /// Revertible failover on virtual time: the preferred path recovers at t = 100 s;
    /// compliance goes through a 5 s hold-down; the session returns at 105 s, not before.
    #[test]
    fn revertible_failover_returns_after_a_full_hold_down() {
        let pol = policy(SessionResiliency::RevertibleFailover);
        let secs = |s: u64| Instant::from_nanos(s * 1_000_000_000);
        let mut damp0 = Damper::new(HoldDownConfig::default(), true);
        // Path 0 goes lossy at t=0, notified at t=5.
        damp0.observe(secs(0), false);
        damp0.handle_timeout(secs(5));
        assert_eq!(damp0.poll_event(), Some(false));
        let snap = PathSnapshot::new(&[path(10.0, 10.0), path(20.0, 0.0)]).unwrap();
        let compliant = |d: &Damper<bool>| {
            let mut s = PathSet::EMPTY;
            s.insert(P1);
            if d.notified() {
                s.insert(P0);
            }
            s
        };
        let d = decide(&pol, &snap, compliant(&damp0), &on(P0), &uuid(7));
        assert_eq!(
            d,
            Decision::Move {
                to: P1,
                reason: MoveReason::SlaViolation
            }
        );
        let moved = SessionPaths {
            current: P1,
            preferred: P0,
            duplicate: None,
        };
        // Recovers at 100 s; at 104 s still held down.
        damp0.observe(secs(100), true);
        damp0.handle_timeout(secs(104));
        assert_eq!(
            decide(&pol, &snap, compliant(&damp0), &moved, &uuid(7)),
            Decision::Stay
        );
        assert_eq!(damp0.poll_timeout(), Some(secs(105)));
        damp0.handle_timeout(secs(105));
        assert_eq!(
            decide(&pol, &snap, compliant(&damp0), &moved, &uuid(7)),
            Decision::Move {
                to: P0,
                reason: MoveReason::Revert
            }
        );
        let _ = Duration::ZERO;
    }

    #[test]
    fn duplication_keeps_a_usable_pair_and_replaces_a_failed_member() {
        let pol = policy(SessionResiliency::PacketDuplication);
        let mut a = path(10.0, 0.0);
        a.local_link = 0;
        let mut b = path(20.0, 0.0);
        b.local_link = 1;
        let mut c = path(30.0, 0.0);
        c.local_link = 1;
        let snap = PathSnapshot::new(&[a, b, c]).unwrap();
        let (p, s) = select_pair(&snap, &pol, &uuid(3)).unwrap();
        assert_eq!((p, s), (P0, Some(P1)));
        let sess = SessionPaths {
            current: p,
            preferred: p,
            duplicate: s,
        };
        assert_eq!(
            decide(&pol, &snap, snap.compliant(&pol), &sess, &uuid(3)),
            Decision::Stay
        );
        // The secondary goes down: replaced by the other path on link 1.
        let mut b_down = b;
        b_down.in_service = false;
        let snap2 = PathSnapshot::new(&[a, b_down, c]).unwrap();
        assert_eq!(
            decide(&pol, &snap2, snap2.compliant(&pol), &sess, &uuid(3)),
            Decision::Duplicate {
                primary: P0,
                secondary: Some(P2),
                reason: MoveReason::PathDown
            }
        );
        // The primary goes down: the secondary becomes primary.
        let mut a_down = a;
        a_down.in_service = false;
        let snap3 = PathSnapshot::new(&[a_down, b, c]).unwrap();
        assert_eq!(
            decide(&pol, &snap3, snap3.compliant(&pol), &sess, &uuid(3)),
            Decision::Duplicate {
                primary: P1,
                secondary: Some(P2),
                reason: MoveReason::PathDown
            }
        );
        // Only one path: no second copy; when another comes up, it is added.
        let single = PathSnapshot::new(&[a, b_down]).unwrap();
        let alone = SessionPaths {
            current: P0,
            preferred: P0,
            duplicate: None,
        };
        assert_eq!(
            decide(&pol, &single, single.compliant(&pol), &alone, &uuid(3)),
            Decision::Stay
        );
        assert_eq!(
            decide(&pol, &snap, snap.compliant(&pol), &alone, &uuid(3)),
            Decision::Duplicate {
                primary: P0,
                secondary: Some(P1),
                reason: MoveReason::PathUp
            }
        );
        // Selection for a new session agrees with the pair.
        assert_eq!(select(&snap, &pol, &uuid(3)), Ok(P0));
    }
}
