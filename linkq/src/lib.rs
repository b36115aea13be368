//! Sans-IO link quality and multipath decisions for SVR peer paths (docs/multipath.md).
//!
//! * [`linktest`]: the SSR-style **link test** beside asynchronous BFD: every
//!   `link-test-interval` a burst of `link-test-length` authenticated echo probes
//!   ([`probe`]), reflected by the peer's [`Reflector`]; one [`TestResult`] per test and an
//!   EWMA ([`Metrics`]) for decisions.
//! * [`metrics`]: latency (RTT/2), jitter, loss and the pinned simplified E-model MOS.
//! * [`damping`]: `hold-down-time` and `dynamic-damping` on the notifications that reach
//!   the path selector.
//! * [`select`]: the path for a new session from an immutable [`PathSnapshot`] and a
//!   [`Policy`] (`service-policy`), without allocation.
//! * [`resiliency`]: which live sessions move, and where (`session-resiliency`).
//!
//! No sockets, threads or clocks: every call that depends on time takes `now`
//! ([`fastpath::time::Instant`]).

#![forbid(unsafe_code, unused_must_use)]
#![warn(missing_docs)]

pub mod damping;
pub mod linktest;
pub mod metrics;
pub mod probe;
pub mod resiliency;
pub mod select;

pub use damping::{Damper, HoldDownConfig};
pub use linktest::{
    LinkTest, LinkTestConfig, LinkTestStats, ReflectDrop, ReflectionDrop, Reflector,
};
pub use metrics::{mos, Metrics, TestResult};
pub use probe::{LinkKey, Probe, ProbeKind, ProbeRepr, PROBE_LEN};
pub use resiliency::{decide, Decision, MoveReason, SessionPaths};
pub use select::{
    select, select_pair, BestPath, LbStrategy, NoPath, PathEntry, PathIndex, PathSet, PathSnapshot,
    Policy, SessionResiliency, VectorId, VectorPriority, VectorTable, MAX_PATHS, MAX_VECTORS,
};
