//! The slow path of one router: ARP, IPv6 Neighbor Discovery, the neighbour table, ICMP echo
//! and ICMP errors.
//!
//! This crate is **sans-IO** in the quinn-proto sense: it contains no sockets, threads or DPDK
//! calls and never reads a clock. The caller (the slow-path thread of `svrd`) passes punted
//! frames and the current [`Instant`](fastpath::time::Instant) in, and takes frames to send,
//! events and the next deadline out. See [`SlowPath`] for the calling protocol.
//!
//! Every input that is ignored or dropped bumps one named counter in [`SlowPathCounters`];
//! no input panics.

#![forbid(unsafe_code, unused_must_use)]
#![warn(missing_docs)]

mod config;
mod counters;
mod neighbor;
mod ratelimit;
mod slow_path;

pub use config::{IcmpErrorLimit, Interface, NeighborTimers, SlowPathConfig, StaticNeighbor};
pub use counters::SlowPathCounters;
pub use neighbor::NeighborState;
pub use slow_path::{Event, SlowPath, Transmit};
