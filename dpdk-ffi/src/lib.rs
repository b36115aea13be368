//! Bindings to the system DPDK (22.11+) and the safe types the appliance uses.
//!
//! Three layers, as in githedgehog/dataplane:
//! - [`sys`]: bindgen output for `rte_*`/`RTE_*` items plus the `svr_*` C shim (`src/shim.c`)
//!   that gives DPDK's static-inline functions a symbol. Nothing else lives there.
//! - The safe RAII types: [`Eal`], [`Mempool`], [`Mbuf`], [`MbufBurst`], [`TxBuffer`],
//!   [`Port`], [`Ring`]; and DPDK's operator plumbing: [`telemetry`] commands and [`pdump`]
//!   (capture by `dpdk-dumpcap`).
//! - Packet code (the `fastpath` crate) sees only byte slices and never names DPDK.
//!
//! # Safety policy
//!
//! **All FFI `unsafe` of the workspace lives in this crate.** Every `unsafe` block carries a
//! `// SAFETY:` comment and every `unsafe fn` a `# Safety` section (enforced by
//! `clippy::undocumented_unsafe_blocks` and `clippy::missing_safety_doc`); `unwrap`, `expect`
//! and `panic!` are denied outside tests. The safe API upholds these invariants:
//!
//! - **EAL first, EAL last.** [`Mempool`], [`Port`] and [`Ring`] can only be made after
//!   [`Eal::init`] (before, they return an `EalNotInitialised` error) and each keeps a clone of
//!   the EAL handle; `rte_eal_cleanup` runs only when the last clone is dropped, on the main
//!   lcore. [`Eal::init`] succeeds at most once per process.
//! - **Ownership of mbufs is linear.** An [`Mbuf`] frees itself on drop. [`Port::tx_burst`] and
//!   [`Ring::enqueue_burst`] hand the accepted prefix of a [`TxBuffer`] to DPDK and keep the
//!   rest (l3fwd `send_burst`), so nothing is freed twice and nothing leaks.
//! - **A pool outlives its mbufs.** A [`Mempool`] is freed only when every mbuf is back in it;
//!   otherwise it (and the EAL) is deliberately leaked rather than freed under live mbufs.
//!   A configured [`Port`] keeps its RX pool alive until the port is closed.
//! - **Rings are safe to share.** The non-thread-safe single-producer/-consumer paths of a
//!   [`Ring`] are serialised by an atomic flag, so an `Arc<Ring>` cannot corrupt it.
//! - **Bursts cannot reach unset queues.** All handles of one port share one state; burst calls
//!   check the queue index against the configured queue count (0 while unconfigured, being
//!   reconfigured, or closed).
//!
//! What the types do **not** check, because DPDK does not synchronise it and a check would cost
//! the data path (documented on [`Port`]): each RX/TX queue is polled by one thread at a time,
//! and port control calls (`configure`/`start`/`stop`/`close`) run while no thread polls that
//! port. Raw mbufs given to [`Mbuf::from_raw`] must be direct and unshared.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]
#![warn(missing_docs)]

/// Raw bindgen output (`rte_*`, `RTE_*`, `svr_*` shim). The C naming lints are allowed here only.
#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]
pub mod sys {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub mod af_packet;
mod burst;
mod eal;
mod error;
mod mbuf;
mod mempool;
pub mod pdump;
mod port;
mod ring;
pub mod telemetry;

pub use burst::{Drain, MbufBurst, TxBuffer, BURST};
pub use eal::{lcore_id, tsc, tsc_hz, Eal, EalError, LaunchError, ProbeError};
pub use error::Errno;
pub use mbuf::{Mbuf, NoHeadroom, NoTailroom, TooShort};
pub use mempool::{Mempool, MempoolError, DEFAULT_DATA_ROOM, SOCKET_ANY};
pub use pdump::PdumpError;
pub use port::{LinkStatus, Port, PortConf, PortError, PortInfo, PortStats};
pub use ring::{Ring, RingError, RingMode};
pub use telemetry::{TelValue, TelemetryError};

/// The DPDK version string of the linked library, e.g. `"DPDK 22.11.11"` (`rte_version`).
pub fn version() -> String {
    // SAFETY: rte_version takes no arguments and returns a pointer to a static NUL-terminated
    // string (or NULL, handled by `cstr_to_string`); it does not need the EAL.
    let p = unsafe { sys::rte_version() };
    // SAFETY: `p` is NULL or a static C string, per the above.
    unsafe { error::cstr_to_string(p) }
}
