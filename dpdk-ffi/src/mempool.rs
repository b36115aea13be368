//! `Mempool`: a pool of packet mbufs (`rte_pktmbuf_pool_create`).

use std::ffi::CString;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::eal::{self, Eal};
use crate::error::{cbuf_to_string, code, Errno};
use crate::mbuf::Mbuf;
use crate::sys;

/// Default data room of an mbuf: 2048 bytes of packet plus `RTE_PKTMBUF_HEADROOM` (128).
pub const DEFAULT_DATA_ROOM: u16 = {
    assert!(sys::RTE_MBUF_DEFAULT_BUF_SIZE <= u16::MAX as u32);
    sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16
};

/// "Any NUMA socket" (`SOCKET_ID_ANY`).
pub const SOCKET_ANY: i32 = sys::SOCKET_ID_ANY;

/// Why [`Mempool::pktmbuf`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MempoolError {
    /// [`Eal::init`] has not succeeded (or every EAL handle is gone).
    #[error("mempool {0:?}: the DPDK EAL is not initialised")]
    EalNotInitialised(String),
    /// The name contains a NUL byte.
    #[error("mempool name {0:?} contains a NUL byte")]
    NulInName(String),
    /// A mempool (memzone) with this name exists already (`EEXIST`).
    #[error("mempool {name:?}: the name is already in use")]
    AlreadyExists {
        /// The pool name.
        name: String,
    },
    /// Not enough memory for the pool (`ENOMEM`/`ENOSPC`); raise `-m` or use fewer mbufs.
    #[error("mempool {name:?}: not enough memory")]
    NoMemory {
        /// The pool name.
        name: String,
    },
    /// Bad parameters (`EINVAL`), e.g. a cache larger than 512 or than n_mbufs / 1.5.
    #[error("mempool {name:?}: invalid parameters (cache size too large?)")]
    InvalidArgument {
        /// The pool name.
        name: String,
    },
    /// Any other `rte_errno`.
    #[error("mempool {name:?}: {errno}")]
    Errno {
        /// The pool name.
        name: String,
        /// The error number.
        errno: Errno,
    },
}

/// A pool of packet mbufs. Cheap to clone (a reference count); `Send + Sync` because DPDK
/// mempools are MT-safe (default `ring_mp_mc` ops, per-lcore caches).
///
/// Dropping the last handle frees the pool **only if every mbuf is back in it**. If mbufs are
/// still out (in an [`Mbuf`], a ring, a NIC queue), the pool and the EAL are leaked on purpose:
/// freeing the memory under a live mbuf would be a use-after-free.
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    raw: NonNull<sys::rte_mempool>,
    eal: ManuallyDrop<Eal>,
}

// SAFETY: rte_mempool operations used here (get/put, counts, free when idle) are MT-safe;
// the pointer itself is just an address owned by this handle.
unsafe impl Send for PoolInner {}
// SAFETY: as above; `&PoolInner` only allows MT-safe calls.
unsafe impl Sync for PoolInner {}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // SAFETY: `raw` is a live pool created by rte_pktmbuf_pool_create.
        let (avail, size) = unsafe {
            (
                sys::rte_mempool_avail_count(self.raw.as_ptr()),
                self.raw.as_ref().size,
            )
        };
        if avail == size {
            // SAFETY: no mbuf is outstanding and this is the last handle, so nothing can
            // allocate from or free into the pool again.
            unsafe { sys::rte_mempool_free(self.raw.as_ptr()) };
            // SAFETY: dropped once, here; the field is never touched again.
            unsafe { ManuallyDrop::drop(&mut self.eal) };
        }
        // Otherwise leak the pool and keep the EAL alive (never cleaned up) for the live mbufs.
    }
}

impl Mempool {
    /// Creates a pool of `n_mbufs` packet mbufs with a per-lcore cache of `cache` entries
    /// (0..=512, and at most `n_mbufs / 1.5`), each with `data_room` bytes of buffer
    /// (headroom included; [`DEFAULT_DATA_ROOM`] fits a 1500-byte frame), on NUMA `socket`
    /// ([`SOCKET_ANY`] for any). `name` must be unique in the process (at most 25 bytes).
    pub fn pktmbuf(
        name: &str,
        n_mbufs: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool, MempoolError> {
        let eal = eal::current().ok_or_else(|| MempoolError::EalNotInitialised(name.to_owned()))?;
        let c_name = CString::new(name).map_err(|_| MempoolError::NulInName(name.to_owned()))?;
        // SAFETY: the EAL is initialised (we hold a handle); `c_name` outlives the call.
        let raw = unsafe {
            sys::rte_pktmbuf_pool_create(c_name.as_ptr(), n_mbufs, cache, 0, data_room, socket)
        };
        let Some(raw) = NonNull::new(raw) else {
            let errno = Errno::last();
            let name = name.to_owned();
            return Err(match errno.0 {
                code::EEXIST => MempoolError::AlreadyExists { name },
                code::ENOMEM | code::ENOSPC => MempoolError::NoMemory { name },
                code::EINVAL => MempoolError::InvalidArgument { name },
                _ => MempoolError::Errno { name, errno },
            });
        };
        Ok(Mempool {
            inner: Arc::new(PoolInner {
                raw,
                eal: ManuallyDrop::new(eal),
            }),
        })
    }

    /// Takes one reset mbuf (empty, default headroom), or `None` if the pool is exhausted.
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: `raw` is a live pool; the call is MT-safe.
        let m = unsafe { sys::svr_rte_pktmbuf_alloc(self.inner.raw.as_ptr()) };
        // SAFETY: a freshly allocated mbuf is direct, refcnt 1 and owned by nobody else; the
        // pool outlives it (it is not freed while mbufs are out).
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m) })
    }

    /// Mbufs currently in the pool, per-lcore caches included (`rte_mempool_avail_count`).
    pub fn available(&self) -> u32 {
        // SAFETY: `raw` is a live pool.
        unsafe { sys::rte_mempool_avail_count(self.inner.raw.as_ptr()) }
    }

    /// Mbufs currently out of the pool (`rte_mempool_in_use_count`).
    pub fn in_use(&self) -> u32 {
        // SAFETY: `raw` is a live pool.
        unsafe { sys::rte_mempool_in_use_count(self.inner.raw.as_ptr()) }
    }

    /// Total number of mbufs in the pool.
    pub fn capacity(&self) -> u32 {
        // SAFETY: `raw` is a live pool; `size` is set at creation and never changes.
        unsafe { self.inner.raw.as_ref().size }
    }

    /// The pool's name.
    pub fn name(&self) -> String {
        // SAFETY: `raw` is a live pool; `name` is a fixed char array set at creation.
        cbuf_to_string(unsafe { &self.inner.raw.as_ref().name })
    }

    /// The raw pool pointer (still owned by this handle).
    pub fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.inner.raw.as_ptr()
    }
}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.name())
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .finish()
    }
}
