//! Packet capture by a secondary process (`rte_pdump`): after [`init`], `dpdk-dumpcap` and
//! `dpdk-pdump` can attach to this (primary) process and capture any port's traffic.
//!
//! The capture tools are DPDK *secondary* processes: they need the primary's shared
//! configuration and its hugepage files, under the same `--file-prefix`. The EAL must
//! therefore run **without** `--in-memory`, `--no-shconf`, `--no-huge` and
//! `--huge-unlink[=always]`. With `--no-shconf` DPDK disables its multi-process channel and
//! [`init`] still succeeds (DPDK ignores that case), but no tool can attach.
//!
//! Cost: nothing until a tool enables capture; then DPDK's RX/TX callbacks copy each
//! captured packet into the tool's mempool on the thread that polled it.

use std::sync::{Mutex, PoisonError};

use crate::error::{code, Errno};
use crate::{sys, Eal};

/// Whether [`init`] succeeded and [`uninit`] has not run since. DPDK cannot say: a second
/// `rte_pdump_init` fails its memzone reservation and reports `ENOMEM`.
static ACTIVE: Mutex<bool> = Mutex::new(false);

/// Why [`init`] or [`uninit`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PdumpError {
    /// [`init`] already succeeded in this process (and [`uninit`] has not run since).
    #[error("packet capture (rte_pdump) is already initialised in this process")]
    AlreadyInitialised,
    /// DPDK could not reserve the capture statistics memzone (`ENOMEM`).
    #[error("packet capture (rte_pdump) could not reserve its statistics memory: {0}")]
    NoMemory(Errno),
    /// Any other error of `rte_pdump_init`/`rte_pdump_uninit`.
    #[error("packet capture (rte_pdump): {0}")]
    Errno(Errno),
}

impl PdumpError {
    fn last() -> PdumpError {
        match Errno::last() {
            e @ Errno(code::ENOMEM) => PdumpError::NoMemory(e),
            e => PdumpError::Errno(e),
        }
    }
}

/// Lets capture tools attach (`rte_pdump_init`): registers the `mp_pdump` multi-process action
/// and reserves the capture statistics memzone. Runs once per process; call it after
/// [`Eal::init`] (the `&Eal` argument proves that) and before the ports start.
pub fn init(_eal: &Eal) -> Result<(), PdumpError> {
    let mut active = ACTIVE.lock().unwrap_or_else(PoisonError::into_inner);
    if *active {
        return Err(PdumpError::AlreadyInitialised);
    }
    // SAFETY: the EAL is initialised (we hold a handle); rte_pdump_init takes no arguments and
    // only reserves a memzone and registers a multi-process action, both thread-safe.
    let rc = unsafe { sys::rte_pdump_init() };
    if rc == 0 {
        *active = true;
        Ok(())
    } else {
        Err(PdumpError::last())
    }
}

/// Undoes [`init`] (`rte_pdump_uninit`): unregisters the action and frees the memzone. A
/// capture still running in a tool stops receiving packets.
pub fn uninit(_eal: &Eal) -> Result<(), PdumpError> {
    let mut active = ACTIVE.lock().unwrap_or_else(PoisonError::into_inner);
    // SAFETY: the EAL is initialised (we hold a handle); rte_pdump_uninit takes no arguments
    // and tolerates being called without a prior rte_pdump_init.
    let rc = unsafe { sys::rte_pdump_uninit() };
    if rc == 0 {
        *active = false;
        Ok(())
    } else {
        Err(PdumpError::last())
    }
}
