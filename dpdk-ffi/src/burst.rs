//! Fixed-capacity arrays of mbufs for RX bursts and buffered TX. No heap allocation.

use std::ffi::c_uint;
use std::mem::MaybeUninit;
use std::{ptr, slice};

use crate::mbuf::Mbuf;
use crate::sys;

/// The default burst size (l3fwd's `MAX_PKT_BURST`).
pub const BURST: usize = 32;

/// Owned mbufs in `bufs[start..end]`; the other slots are uninitialised.
/// Invariant: `start <= end <= N`.
struct Slots<const N: usize> {
    bufs: [MaybeUninit<Mbuf>; N],
    start: usize,
    end: usize,
}

impl<const N: usize> Slots<N> {
    const fn new() -> Self {
        Slots {
            bufs: [const { MaybeUninit::uninit() }; N],
            start: 0,
            end: 0,
        }
    }

    fn len(&self) -> usize {
        self.end - self.start
    }

    /// Moves the live mbufs to the front so the free space is one run at the end.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        let n = self.len();
        // SAFETY: source `start..end` and destination `0..n` are in bounds (`end <= N`);
        // `ptr::copy` allows overlap. Afterwards the live mbufs are `0..n`, and the old slots
        // are treated as uninitialised, so each mbuf still has exactly one owner.
        unsafe {
            ptr::copy(
                self.bufs.as_ptr().add(self.start),
                self.bufs.as_mut_ptr().add(0),
                n,
            );
        }
        self.start = 0;
        self.end = n;
    }

    fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.end == N {
            self.compact();
        }
        match self.bufs.get_mut(self.end) {
            Some(slot) => {
                slot.write(m);
                self.end += 1;
                Ok(())
            }
            None => Err(m),
        }
    }

    fn pop_front(&mut self) -> Option<Mbuf> {
        if self.start == self.end {
            return None;
        }
        let slot = self.bufs.get(self.start)?;
        // SAFETY: `start < end`, so the slot holds an initialised mbuf; advancing `start`
        // below hands its ownership to the caller (it is never read again).
        let m = unsafe { slot.assume_init_read() };
        self.start += 1;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Some(m)
    }

    /// Free space at the end, as a C array for DPDK to fill (`rx_burst`, ring dequeue).
    fn spare(&mut self) -> (*mut *mut sys::rte_mbuf, usize) {
        self.compact();
        // SAFETY: `end <= N`, so the pointer is in bounds or one past the end.
        let p = unsafe { self.bufs.as_mut_ptr().add(self.end) };
        (p.cast(), N - self.end)
    }

    /// Records that DPDK wrote `n` owned mbuf pointers into the spare space.
    ///
    /// # Safety
    /// The first `n` spare slots (after `spare()`) must now hold valid, non-NULL, owned,
    /// direct mbuf pointers, and `n <= N - end`.
    unsafe fn commit(&mut self, n: usize) {
        self.end += n;
    }

    /// The live mbufs as a C array for DPDK to consume (`tx_burst`, ring enqueue).
    fn filled(&mut self) -> (*mut *mut sys::rte_mbuf, usize) {
        // SAFETY: `start <= N`, so the pointer is in bounds or one past the end.
        let p = unsafe { self.bufs.as_mut_ptr().add(self.start) };
        (p.cast(), self.len())
    }

    /// Records that DPDK took ownership of the first `n` live mbufs.
    ///
    /// # Safety
    /// DPDK must have accepted (and now own) exactly the first `n` live mbufs; `n <= len()`.
    unsafe fn forget_front(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: `start..end` are initialised mbufs; `MaybeUninit<Mbuf>` has Mbuf's layout.
        unsafe { slice::from_raw_parts(self.bufs.as_ptr().add(self.start).cast(), self.len()) }
    }

    fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        let n = self.len();
        // SAFETY: as in `as_slice`, borrowed exclusively.
        unsafe { slice::from_raw_parts_mut(self.bufs.as_mut_ptr().add(self.start).cast(), n) }
    }

    /// Frees every live mbuf; returns how many.
    fn clear(&mut self) -> usize {
        let (p, n) = self.filled();
        if n > 0 {
            // `n <= N`; bursts larger than u32::MAX do not exist, but free in chunks anyway.
            let count = c_uint::try_from(n).unwrap_or(c_uint::MAX);
            // SAFETY: `p[..n]` are owned, valid mbuf pointers; after this call they are freed
            // and the slots are marked empty, so nothing frees them again.
            unsafe { sys::rte_pktmbuf_free_bulk(p, count) };
        }
        self.start = 0;
        self.end = 0;
        n
    }
}

impl<const N: usize> Drop for Slots<N> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Up to `N` received (or otherwise collected) mbufs, without heap allocation. Filled by
/// [`crate::Port::rx_burst`] / [`crate::Ring::dequeue_burst`]; yields owned [`Mbuf`]s in
/// arrival order; frees whatever is left when dropped.
pub struct MbufBurst<const N: usize = BURST> {
    slots: Slots<N>,
}

impl<const N: usize> Default for MbufBurst<N> {
    fn default() -> Self {
        Self::empty()
    }
}

impl MbufBurst {
    /// An empty burst of the default size [`BURST`] (use [`MbufBurst::empty`] for another `N`).
    pub const fn new() -> Self {
        Self::empty()
    }
}

impl<const N: usize> MbufBurst<N> {
    /// An empty burst of capacity `N`.
    pub const fn empty() -> Self {
        MbufBurst {
            slots: Slots::new(),
        }
    }

    /// Number of mbufs held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no mbuf is held.
    pub fn is_empty(&self) -> bool {
        self.slots.len() == 0
    }

    /// The fixed capacity `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Takes the oldest mbuf.
    pub fn pop_front(&mut self) -> Option<Mbuf> {
        self.slots.pop_front()
    }

    /// Adds an mbuf at the end; gives it back if the burst is full.
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        self.slots.push(m)
    }

    /// Yields the held mbufs in order. Mbufs not taken before the iterator is dropped stay in
    /// the burst.
    pub fn drain(&mut self) -> Drain<'_, N> {
        Drain {
            slots: &mut self.slots,
        }
    }

    /// The held mbufs, oldest first.
    pub fn as_slice(&self) -> &[Mbuf] {
        self.slots.as_slice()
    }

    /// The held mbufs, writable (e.g. to edit packets in place before forwarding).
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        self.slots.as_mut_slice()
    }

    /// Frees every held mbuf; returns how many.
    pub fn clear(&mut self) -> usize {
        self.slots.clear()
    }

    /// Spare room as a C array for DPDK to fill, after moving held mbufs to the front.
    pub(crate) fn spare(&mut self) -> (*mut *mut sys::rte_mbuf, usize) {
        self.slots.spare()
    }

    /// # Safety
    /// See `Slots::commit`: DPDK wrote `n` owned mbuf pointers into the spare room.
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.slots.commit(n) }
    }
}

/// Iterator returned by [`MbufBurst::drain`].
pub struct Drain<'a, const N: usize> {
    slots: &'a mut Slots<N>,
}

impl<const N: usize> Iterator for Drain<'_, N> {
    type Item = Mbuf;

    fn next(&mut self) -> Option<Mbuf> {
        self.slots.pop_front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.slots.len(), Some(self.slots.len()))
    }
}

impl<const N: usize> ExactSizeIterator for Drain<'_, N> {}

/// A TX buffer of up to `N` mbufs, flushed with [`crate::Port::tx_burst`] or
/// [`crate::Ring::enqueue_burst`].
///
/// Flushing gives DPDK the accepted prefix and keeps the unsent tail here, in order: retry
/// later, or [`drop_unsent`](TxBuffer::drop_unsent) to free and count them (l3fwd
/// `send_burst`). Every mbuf is freed exactly once either way; dropping the buffer frees the
/// tail too.
pub struct TxBuffer<const N: usize = BURST> {
    slots: Slots<N>,
}

impl<const N: usize> Default for TxBuffer<N> {
    fn default() -> Self {
        Self::empty()
    }
}

impl TxBuffer {
    /// An empty buffer of the default size [`BURST`] (use [`TxBuffer::empty`] for another `N`).
    pub const fn new() -> Self {
        Self::empty()
    }
}

impl<const N: usize> TxBuffer<N> {
    /// An empty buffer of capacity `N`.
    pub const fn empty() -> Self {
        TxBuffer {
            slots: Slots::new(),
        }
    }

    /// Queues an mbuf; gives it back if the buffer is full (flush first).
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        self.slots.push(m)
    }

    /// Number of queued mbufs.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.slots.len() == 0
    }

    /// Whether `N` mbufs are queued.
    pub fn is_full(&self) -> bool {
        self.slots.len() == N
    }

    /// The fixed capacity `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The queued mbufs, oldest first.
    pub fn as_slice(&self) -> &[Mbuf] {
        self.slots.as_slice()
    }

    /// Frees every queued (unsent) mbuf and returns how many, for a drop counter.
    pub fn drop_unsent(&mut self) -> usize {
        self.slots.clear()
    }

    /// Queued mbufs as a C array for DPDK to consume.
    pub(crate) fn filled(&mut self) -> (*mut *mut sys::rte_mbuf, usize) {
        self.slots.filled()
    }

    /// # Safety
    /// See `Slots::forget_front`: DPDK took ownership of exactly the first `n` queued mbufs.
    pub(crate) unsafe fn forget_front(&mut self, n: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.slots.forget_front(n) }
    }
}
