//! Monotonic time as a value: [`Instant`] from the leaf crate `svr-time`, re-exported here so
//! that `fastpath::time::Instant` keeps naming the same type everywhere.

pub use svr_time::Instant;
