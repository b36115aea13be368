//! `Ring`: a DPDK ring of mbufs (`rte_ring`), e.g. to punt packets from workers to the slow path.

use std::ffi::{c_uint, c_void, CString};
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::burst::{MbufBurst, TxBuffer};
use crate::eal::{self, Eal};
use crate::error::{code, Errno};
use crate::mbuf::Mbuf;
use crate::mempool::SOCKET_ANY;
use crate::sys;

/// Producer/consumer synchronisation of a ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingMode {
    /// One enqueuing thread at a time (`RING_F_SP_ENQ`).
    pub single_producer: bool,
    /// One dequeuing thread at a time (`RING_F_SC_DEQ`).
    pub single_consumer: bool,
}

/// Why [`Ring::create`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// [`Eal::init`] has not succeeded (or every EAL handle is gone).
    #[error("ring {0:?}: the DPDK EAL is not initialised")]
    EalNotInitialised(String),
    /// The name contains a NUL byte.
    #[error("ring name {0:?} contains a NUL byte")]
    NulInName(String),
    /// A ring (memzone) with this name exists already (`EEXIST`).
    #[error("ring {name:?}: the name is already in use")]
    AlreadyExists {
        /// The ring name.
        name: String,
    },
    /// Not enough memory (`ENOMEM`/`ENOSPC`).
    #[error("ring {name:?}: not enough memory")]
    NoMemory {
        /// The ring name.
        name: String,
    },
    /// Bad parameters (`EINVAL`): count 0 or too large, or name longer than 29 bytes.
    #[error("ring {name:?}: invalid size or name")]
    InvalidArgument {
        /// The ring name.
        name: String,
    },
    /// Any other `rte_errno`.
    #[error("ring {name:?}: {errno}")]
    Errno {
        /// The ring name.
        name: String,
        /// The error number.
        errno: Errno,
    },
}

/// Serialises one side (enqueue or dequeue) of a single-producer/-consumer ring, so that a
/// shared `&Ring` can never run two SP enqueues (or SC dequeues) at once. Uncontended when the
/// ring is used as declared: one atomic swap and one store per call.
struct SideGuard<'a>(Option<&'a AtomicBool>);

impl<'a> SideGuard<'a> {
    fn lock(flag: &'a AtomicBool, single: bool) -> SideGuard<'a> {
        if !single {
            return SideGuard(None);
        }
        while flag
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        SideGuard(Some(flag))
    }
}

impl Drop for SideGuard<'_> {
    fn drop(&mut self) {
        if let Some(flag) = self.0 {
            flag.store(false, Ordering::Release);
        }
    }
}

/// A DPDK ring of mbufs. `Send + Sync`: share it with `Arc<Ring>` between the producing and
/// consuming threads. The ring owns the mbufs inside it and frees them when dropped.
///
/// **SP/SC.** With [`RingMode::single_producer`] (or `single_consumer`) DPDK's enqueue (or
/// dequeue) is not thread-safe; this type serialises that side with an atomic flag, so misuse
/// costs a spin instead of corrupting the ring. Declare SP/SC only when one thread per side is
/// the design (e.g. a worker's own inject ring); several workers punting into one ring want
/// `single_producer: false`.
pub struct Ring {
    raw: NonNull<sys::rte_ring>,
    mode: RingMode,
    enq_busy: AtomicBool,
    deq_busy: AtomicBool,
    _eal: Eal,
}

// SAFETY: the ring is shared memory made for concurrent producers and consumers; the
// non-thread-safe SP/SC paths are serialised by `enq_busy`/`deq_busy`.
unsafe impl Send for Ring {}
// SAFETY: as above: every `&self` method is either MT-safe in DPDK or serialised by a guard.
unsafe impl Sync for Ring {}

impl Ring {
    /// Creates a ring holding up to `count` mbufs (exactly; `RING_F_EXACT_SZ`). `name` must be
    /// unique in the process (at most 29 bytes).
    pub fn create(name: &str, count: u32, mode: RingMode) -> Result<Ring, RingError> {
        let eal = eal::current().ok_or_else(|| RingError::EalNotInitialised(name.to_owned()))?;
        let c_name = CString::new(name).map_err(|_| RingError::NulInName(name.to_owned()))?;
        let mut flags = sys::RING_F_EXACT_SZ;
        if mode.single_producer {
            flags |= sys::RING_F_SP_ENQ;
        }
        if mode.single_consumer {
            flags |= sys::RING_F_SC_DEQ;
        }
        // SAFETY: the EAL is initialised (we hold a handle); `c_name` outlives the call.
        let raw = unsafe { sys::rte_ring_create(c_name.as_ptr(), count, SOCKET_ANY, flags) };
        let Some(raw) = NonNull::new(raw) else {
            let errno = Errno::last();
            let name = name.to_owned();
            return Err(match errno.0 {
                code::EEXIST => RingError::AlreadyExists { name },
                code::ENOMEM | code::ENOSPC => RingError::NoMemory { name },
                code::EINVAL => RingError::InvalidArgument { name },
                _ => RingError::Errno { name, errno },
            });
        };
        Ok(Ring {
            raw,
            mode,
            enq_busy: AtomicBool::new(false),
            deq_busy: AtomicBool::new(false),
            _eal: eal,
        })
    }

    /// Enqueues the queued mbufs of `buf`; the accepted prefix moves into the ring, the rest
    /// stays in `buf` (retry, or `drop_unsent`). Returns how many were accepted.
    pub fn enqueue_burst<const N: usize>(&self, buf: &mut TxBuffer<N>) -> usize {
        let (p, n) = buf.filled();
        if n == 0 {
            return 0;
        }
        let n = c_uint::try_from(n).unwrap_or(c_uint::MAX);
        let _side = SideGuard::lock(&self.enq_busy, self.mode.single_producer);
        // SAFETY: live ring; `p[..n]` are owned mbuf pointers, passed as the ring's
        // `void *const *` object table; the SP path is serialised by `_side`.
        let done = unsafe {
            sys::svr_rte_ring_enqueue_burst(self.raw.as_ptr(), p.cast::<*mut c_void>(), n)
        };
        let done = done.min(n) as usize;
        // SAFETY: the ring now owns exactly the first `done` mbufs.
        unsafe { buf.forget_front(done) };
        done
    }

    /// Enqueues one mbuf; gives it back if the ring is full.
    pub fn enqueue(&self, m: Mbuf) -> Result<(), Mbuf> {
        let raw = m.into_raw();
        let obj = [raw.as_ptr().cast::<c_void>()];
        let done = {
            let _side = SideGuard::lock(&self.enq_busy, self.mode.single_producer);
            // SAFETY: live ring; `obj` holds one owned mbuf pointer; SP serialised by `_side`.
            unsafe { sys::svr_rte_ring_enqueue_burst(self.raw.as_ptr(), obj.as_ptr(), 1) }
        };
        if done == 1 {
            Ok(())
        } else {
            // SAFETY: the ring did not take it; we still own it (it came from an Mbuf).
            Err(unsafe { Mbuf::from_raw(raw) })
        }
    }

    /// Dequeues into the free room of `burst`; returns how many arrived.
    pub fn dequeue_burst<const N: usize>(&self, burst: &mut MbufBurst<N>) -> usize {
        let (p, room) = burst.spare();
        if room == 0 {
            return 0;
        }
        let room = c_uint::try_from(room).unwrap_or(c_uint::MAX);
        let n = {
            let _side = SideGuard::lock(&self.deq_busy, self.mode.single_consumer);
            // SAFETY: live ring; `p` has `room` writable slots; only owned mbuf pointers are
            // ever enqueued, so every dequeued entry is one; SC serialised by `_side`.
            unsafe {
                sys::svr_rte_ring_dequeue_burst(self.raw.as_ptr(), p.cast::<*mut c_void>(), room)
            }
        };
        let n = n.min(room) as usize;
        // SAFETY: the ring wrote `n` owned mbuf pointers at the start of the spare room.
        unsafe { burst.commit(n) };
        n
    }

    /// Dequeues one mbuf.
    pub fn dequeue(&self) -> Option<Mbuf> {
        let mut obj: MaybeUninit<*mut c_void> = MaybeUninit::uninit();
        let n = {
            let _side = SideGuard::lock(&self.deq_busy, self.mode.single_consumer);
            // SAFETY: live ring; room for one pointer; SC serialised by `_side`.
            unsafe { sys::svr_rte_ring_dequeue_burst(self.raw.as_ptr(), obj.as_mut_ptr(), 1) }
        };
        if n != 1 {
            return None;
        }
        // SAFETY: one entry was written.
        let p = unsafe { obj.assume_init() };
        // SAFETY: an owned, direct mbuf that went through the ring (all entries are).
        NonNull::new(p.cast::<sys::rte_mbuf>()).map(|m| unsafe { Mbuf::from_raw(m) })
    }

    /// Mbufs in the ring now (a snapshot).
    pub fn count(&self) -> usize {
        // SAFETY: live ring; a read of its head/tail indexes.
        unsafe { sys::svr_rte_ring_count(self.raw.as_ptr()) as usize }
    }

    /// Most mbufs the ring holds.
    pub fn capacity(&self) -> usize {
        // SAFETY: live ring; the capacity is fixed at creation.
        unsafe { sys::svr_rte_ring_capacity(self.raw.as_ptr()) as usize }
    }

    /// The mode the ring was created with.
    pub fn mode(&self) -> RingMode {
        self.mode
    }
}

impl Drop for Ring {
    /// Frees the mbufs still in the ring, then the ring (`&mut self`: nobody else uses it).
    fn drop(&mut self) {
        let mut burst = MbufBurst::new();
        while self.dequeue_burst(&mut burst) > 0 {
            burst.clear();
        }
        // SAFETY: exclusive access; the ring is empty and never used again.
        unsafe { sys::rte_ring_free(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("mode", &self.mode)
            .field("count", &self.count())
            .field("capacity", &self.capacity())
            .finish()
    }
}
