//! `Mbuf`: one owned DPDK packet buffer.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::slice;

use crate::sys;

/// [`Mbuf::append`] failed: the last segment has fewer free bytes after the data than asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not enough tailroom in the mbuf")]
pub struct NoTailroom;

/// [`Mbuf::prepend`] failed: the first segment has fewer free bytes before the data than asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not enough headroom in the mbuf")]
pub struct NoHeadroom;

/// [`Mbuf::adj`] or [`Mbuf::trim`] asked to remove more bytes than the segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the mbuf segment is shorter than the bytes to remove")]
pub struct TooShort;

/// One owned packet buffer (`struct rte_mbuf *`). Freed back to its pool on drop.
///
/// `#[repr(transparent)]`: a `[Mbuf; N]` has the layout of `struct rte_mbuf *[N]`, so bursts
/// are passed to DPDK without copying.
///
/// **Segments.** The byte accessors ([`data`](Mbuf::data), [`data_mut`](Mbuf::data_mut),
/// [`len`](Mbuf::len), [`headroom`](Mbuf::headroom), [`tailroom`](Mbuf::tailroom)) see the
/// *first segment* only. The appliance runs with single-segment mbufs (`pkt_len == data_len`);
/// [`is_contiguous`](Mbuf::is_contiguous) tells whether that holds for this one, and packet
/// code should count a non-contiguous mbuf as a drop rather than parse a truncated view.
///
/// **Threads.** `Send`: an mbuf has a single owner and freeing it is MT-safe, so it may move
/// to another lcore (e.g. through a [`crate::Ring`]). Not `Sync`: DPDK updates mbuf metadata
/// and the reference count with plain, non-atomic stores when it believes it is the only user
/// (`rte_pktmbuf_prefree_seg` when `refcnt == 1`), so two lcores must never look at one mbuf
/// at the same time; the `PhantomData<Cell<()>>` marker removes `Sync`.
#[repr(transparent)]
pub struct Mbuf {
    raw: NonNull<sys::rte_mbuf>,
    _not_sync: PhantomData<Cell<()>>,
}

// SAFETY: an Mbuf is the unique owner of its rte_mbuf (see from_raw's contract); moving that
// ownership to another thread is allowed, and rte_pktmbuf_free is MT-safe on the pool.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `raw` must point to a valid, initialised mbuf that nobody else owns or will free, and
    /// whose data is not shared with another mbuf (a direct mbuf with `refcnt == 1`, as
    /// returned by `rte_pktmbuf_alloc` or an RX burst); otherwise [`Mbuf::data_mut`] would
    /// alias. Its pool must stay alive until the mbuf is freed.
    pub unsafe fn from_raw(raw: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf {
            raw,
            _not_sync: PhantomData,
        }
    }

    /// Gives up ownership: the caller must eventually free the mbuf (or hand it to DPDK).
    pub fn into_raw(self) -> NonNull<sys::rte_mbuf> {
        let raw = self.raw;
        std::mem::forget(self);
        raw
    }

    /// The raw pointer, still owned by `self`.
    pub fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.raw.as_ptr()
    }

    fn hdr(&self) -> &sys::rte_mbuf {
        // SAFETY: `raw` is a valid mbuf we own (from_raw contract); `&self` rules out writes
        // through this handle for the lifetime of the reference.
        unsafe { self.raw.as_ref() }
    }

    fn hdr_mut(&mut self) -> &mut sys::rte_mbuf {
        // SAFETY: as in `hdr`, and `&mut self` makes the access exclusive.
        unsafe { self.raw.as_mut() }
    }

    /// The data of the first segment (`rte_pktmbuf_mtod`, `data_len` bytes).
    pub fn data(&self) -> &[u8] {
        let m = self.hdr();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's data buffer (DPDK
        // invariant: data_off + data_len <= buf_len); the data is not shared (from_raw contract)
        // and borrowed for as long as `&self`.
        unsafe {
            slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// The data of the first segment, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.hdr_mut();
        // SAFETY: as in `data`; `&mut self` makes the borrow exclusive and the data is not
        // shared with another mbuf (from_raw contract).
        unsafe {
            slice::from_raw_parts_mut(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// Bytes in the first segment (`data_len`), i.e. `self.data().len()`.
    pub fn len(&self) -> usize {
        usize::from(self.hdr().data_len)
    }

    /// Whether the first segment holds no data.
    pub fn is_empty(&self) -> bool {
        self.hdr().data_len == 0
    }

    /// Bytes in the whole packet, all segments (`pkt_len`).
    pub fn pkt_len(&self) -> u32 {
        self.hdr().pkt_len
    }

    /// Number of segments (`nb_segs`).
    pub fn segments(&self) -> u16 {
        self.hdr().nb_segs
    }

    /// Whether the whole packet is in the first segment, so [`Mbuf::data`] is all of it.
    pub fn is_contiguous(&self) -> bool {
        let m = self.hdr();
        m.nb_segs == 1 && m.pkt_len == u32::from(m.data_len)
    }

    /// Free bytes before the data (`rte_pktmbuf_headroom`).
    pub fn headroom(&self) -> usize {
        usize::from(self.hdr().data_off)
    }

    /// Free bytes after the data of the first segment (`rte_pktmbuf_tailroom`).
    pub fn tailroom(&self) -> usize {
        let m = self.hdr();
        usize::from(
            m.buf_len
                .saturating_sub(m.data_off)
                .saturating_sub(m.data_len),
        )
    }

    /// Grows the packet by `n` bytes at the end (`rte_pktmbuf_append`) and returns them for
    /// writing (their contents are whatever the buffer held).
    pub fn append(&mut self, n: usize) -> Result<&mut [u8], NoTailroom> {
        let n16 = u16::try_from(n).map_err(|_| NoTailroom)?;
        // SAFETY: `raw` is a valid mbuf we own exclusively (`&mut self`).
        let p = unsafe { sys::svr_rte_pktmbuf_append(self.raw.as_ptr(), n16) };
        if p.is_null() {
            return Err(NoTailroom);
        }
        // SAFETY: on success DPDK returns a pointer to `n` bytes inside the last segment's
        // buffer, now part of the packet; we own them exclusively for the `&mut self` borrow.
        Ok(unsafe { slice::from_raw_parts_mut(p.cast::<u8>(), n) })
    }

    /// Grows the packet by `n` bytes at the front (`rte_pktmbuf_prepend`) and returns them for
    /// writing (their contents are whatever the buffer held).
    pub fn prepend(&mut self, n: usize) -> Result<&mut [u8], NoHeadroom> {
        let n16 = u16::try_from(n).map_err(|_| NoHeadroom)?;
        // SAFETY: `raw` is a valid mbuf we own exclusively (`&mut self`).
        let p = unsafe { sys::svr_rte_pktmbuf_prepend(self.raw.as_ptr(), n16) };
        if p.is_null() {
            return Err(NoHeadroom);
        }
        // SAFETY: on success DPDK returns the new data start: `n` bytes inside the first
        // segment's buffer, now part of the packet.
        Ok(unsafe { slice::from_raw_parts_mut(p.cast::<u8>(), n) })
    }

    /// Removes `n` bytes from the front of the packet (`rte_pktmbuf_adj`, first segment).
    pub fn adj(&mut self, n: usize) -> Result<(), TooShort> {
        let n = u16::try_from(n).map_err(|_| TooShort)?;
        // SAFETY: `raw` is a valid mbuf we own exclusively.
        let p = unsafe { sys::svr_rte_pktmbuf_adj(self.raw.as_ptr(), n) };
        if p.is_null() {
            Err(TooShort)
        } else {
            Ok(())
        }
    }

    /// Removes `n` bytes from the end of the packet (`rte_pktmbuf_trim`, last segment).
    pub fn trim(&mut self, n: usize) -> Result<(), TooShort> {
        let n = u16::try_from(n).map_err(|_| TooShort)?;
        // SAFETY: `raw` is a valid mbuf we own exclusively.
        let rc = unsafe { sys::svr_rte_pktmbuf_trim(self.raw.as_ptr(), n) };
        if rc == 0 {
            Ok(())
        } else {
            Err(TooShort)
        }
    }

    /// A copy of the whole packet (all segments, into one new mbuf) from this mbuf's own
    /// pool (`rte_pktmbuf_copy`): data, length, port and offload flags are copied; the
    /// copy's data is its own, so both may be written and sent independently (the
    /// `packet-duplication` copy). `None` when the pool has no mbuf left or the packet does
    /// not fit one mbuf of the pool.
    pub fn try_copy(&self) -> Option<Mbuf> {
        let pool = self.hdr().pool;
        // SAFETY: `raw` is a valid mbuf we own (from_raw contract), read only here; `pool` is
        // the live pool it came from (it outlives the mbuf, from_raw contract), from which
        // rte_pktmbuf_copy allocates. Offset 0 and UINT32_MAX copy the whole packet.
        let p = unsafe { sys::rte_pktmbuf_copy(self.raw.as_ptr(), pool, 0, u32::MAX) };
        // SAFETY: a non-null result is a fresh direct mbuf (refcnt 1, its own data buffer)
        // that nobody else owns, from `pool`, which outlives it as it outlives `self`.
        NonNull::new(p).map(|p| unsafe { Mbuf::from_raw(p) })
    }

    /// The input port (`port`), set by the driver on RX.
    pub fn port(&self) -> u16 {
        self.hdr().port
    }

    /// Sets the port field (e.g. the output port before handing a packet on).
    pub fn set_port(&mut self, port: u16) {
        self.hdr_mut().port = port;
    }

    /// The 32-bit user tag (`hash.usr`). It shares storage with the RSS hash, so it is only
    /// meaningful after [`Mbuf::set_tag`]; the fast path uses it to tell the slow path why a
    /// packet was punted.
    pub fn tag(&self) -> u32 {
        // SAFETY: reads a field of a valid mbuf we own.
        unsafe { sys::svr_rte_mbuf_tag(self.raw.as_ptr()) }
    }

    /// Sets the 32-bit user tag (`hash.usr`, overwriting the RSS hash).
    pub fn set_tag(&mut self, tag: u32) {
        // SAFETY: writes a field of a valid mbuf we own exclusively (`&mut self`).
        unsafe { sys::svr_rte_mbuf_set_tag(self.raw.as_ptr(), tag) }
    }

    /// Prefetches the first cache line of the packet data (`rte_prefetch0`).
    pub fn prefetch(&self) {
        let p = self.data().as_ptr();
        // SAFETY: a prefetch is a hint with no memory effect; `p` points into our buffer.
        unsafe { sys::svr_rte_prefetch0(p.cast()) }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf (from_raw contract) and nobody uses it after this.
        unsafe { sys::svr_rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("ptr", &self.raw)
            .field("len", &self.len())
            .field("pkt_len", &self.pkt_len())
            .field("port", &self.port())
            .finish()
    }
}
