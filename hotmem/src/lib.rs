//! Memory for hot lookup tables, for crates that `forbid(unsafe_code)`.
//!
//! | item | job |
//! | --- | --- |
//! | [`HugeSlice`] | an owned `[T]` on 2 MiB-aligned memory advised onto transparent huge pages (`madvise(MADV_HUGEPAGE)`), plain memory when that is not available |
//! | [`prefetch`] | a cache prefetch hint (`prefetcht0` on x86-64, nothing elsewhere) |
//!
//! A table of millions of entries read at random addresses costs a TLB miss per access on
//! 4 KiB pages, and a page walk that itself misses the cache. On 2 MiB pages the whole table of
//! a few hundred MiB is covered by the second-level TLB. DPDK gets this from its hugepage
//! memory; code that allocates with the global allocator gets it only when THP is `always`,
//! and this crate asks for it when THP is `madvise` (the common distribution default).
//! Prefetching lets a burst of lookups overlap their cache misses (DPDK `rte_hash` bulk
//! lookup, l3fwd's `PREFETCH_OFFSET`); safe Rust has no prefetch (the intrinsic is an unsafe
//! `#[target_feature]` function).
//!
//! # Why this crate holds `unsafe`
//!
//! Mapping memory and turning it into a typed slice, and calling the prefetch intrinsic, need
//! `unsafe`. It lives here, in two small modules with a `SAFETY` comment per block, so that
//! `fastpath` stays `#![forbid(unsafe_code)]` and does not depend on `dpdk-ffi` (its tests run
//! without DPDK). Nothing here talks to DPDK or reads a clock.

#![deny(unsafe_code)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

#[allow(unsafe_code)]
mod huge;
#[allow(unsafe_code)]
mod prefetch;

pub use huge::{HugeSlice, HUGE_PAGE};
pub use prefetch::prefetch;
