//! Sans-IO link quality and multipath decisions for SVR peer paths (docs/multipath.md).
//!
//! * [`linktest`]: the SSR-style **link test** beside asynchronous BFD: every
//!   `link-test-interval` a burst of `link-test-length` authenticated echo probes
//!   ([`probe`]), reflected by the peer's [`Reflector`]; one [`TestResult`] per test and an
//!   EWMA ([`Metrics`]) for decisions.
//! * [`metrics`]: latency (RTT/2), jitter, loss and the pinned simplified E-model MOS.
//! * [`damping`]: `hold-down-time` and `dynamic-damping` on the notifications that reach
//!   the path selector.
//! * [`select`](mod@select): the path for a new session from an immutable [`PathSnapshot`] and a
//!   [`Policy`] (`service-policy`), without allocation.
//! * [`resiliency`]: which live sessions move, and where (`session-resiliency`).
//! * [`monitor`]: one path's held-down facts for the slow path (service state, compliance
//!   per policy, metrics), the glue between the link test, BFD and the two above.
//!
//! No sockets, threads or clocks: every call that depends on time takes `now`
//! ([`svr_time::Instant`]).

#![forbid(unsafe_code, unused_must_use)]
#![warn(missing_docs)]

pub mod damping;
pub mod linktest;
pub mod metrics;
pub mod monitor;
pub mod probe;
pub mod resiliency;
pub mod select;

pub use damping::{Damper, HoldDownConfig};
pub use linktest::{
    LinkTest, LinkTestConfig, LinkTestStats, ReflectDrop, ReflectionDrop, Reflector,
};
pub use metrics::{mos, Metrics, TestResult};
pub use monitor::{compliant_set, needs_review, usable, PathChange, PathMonitor};
pub use probe::{LinkKey, Probe, ProbeKind, ProbeRepr, PROBE_LEN, PROBE_VERSION};
pub use resiliency::{decide, Decision, MoveReason, SessionPaths};
pub use select::{
    select, select_in, select_pair, select_second_in, BestPath, LbStrategy, NoPath, PathEntry,
    PathIndex, PathSet, PathSnapshot, Policy, SessionResiliency, VectorId, VectorLabels,
    VectorPriority, VectorTable, MAX_PATHS, MAX_VECTORS,
};

/// The golden vectors of docs/multipath.md are the ones the code produces.
#[cfg(test)]
mod doc_vectors {
    const DOC: &str = include_str!("../../docs/multipath.md");

    #[test]
    fn vectors_match_the_document() {
        let flat: String = DOC.split_whitespace().collect();
        let probes = [
            ("request", crate::probe::test::GOLDEN_REQUEST),
            ("reflection", crate::probe::test::GOLDEN_REFLECTION),
        ];
        for (name, hex) in probes {
            assert!(
                flat.contains(hex),
                "{name} probe not in docs/multipath.md:\n{hex}"
            );
        }
        for (l, j, p, r, m) in crate::metrics::test::MOS_VECTORS {
            // Rows as written: "| 75 | 15 | 1 | 87.825 | 4.2821 |".
            let row = |r: String| format!("|{l}|{j}|{p}|{r}|{m:.4}|");
            let r2 = format!("{r:.2}");
            let r3 = format!("{r:.3}");
            assert!(
                flat.contains(&row(r2.clone())) || flat.contains(&row(r3.clone())),
                "MOS row for ({l}, {j}, {p}) not in docs/multipath.md ({r2} / {r3}, {m})"
            );
        }
        let h = format!("{:016x}", crate::select::uuid_hash(&[0; 16]));
        assert!(flat.contains(&format!("`{h}`")), "uuid hash {h}");
    }
}
