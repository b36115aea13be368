//! [`HugeSlice`]: an owned slice on memory advised onto transparent huge pages.

use core::fmt;
use core::ops::Deref;
use core::ptr::NonNull;

/// Size of an x86-64 / aarch64 (4 KiB granule) huge page, and the alignment of mapped buffers.
pub const HUGE_PAGE: usize = 2 << 20;

/// An owned, fixed-length `[T]`, like `Box<[T]>`, whose memory is a private anonymous mapping
/// aligned to [`HUGE_PAGE`], rounded up to whole huge pages and advised with
/// `madvise(MADV_HUGEPAGE)` before its first touch, so the kernel backs it with 2 MiB pages
/// when THP is `always` or `madvise`.
///
/// Falls back silently to a plain heap allocation when the buffer is smaller than one huge
/// page, when the target is not Linux, or when the mapping fails; the advice failing (THP
/// compiled out) or being ignored (THP `never`, no contiguous memory free) leaves plain pages.
/// Either way the contents are the same; [`HugeSlice::advised`] tells which path was taken.
pub struct HugeSlice<T> {
    /// `len` initialised values (a dangling pointer when `len` is 0 or `T` is zero-sized).
    ptr: NonNull<T>,
    len: usize,
    /// Bytes of the mapping that starts at `ptr`; 0 when the values are a `Box<[T]>`.
    mapped: usize,
}

// SAFETY: a `HugeSlice<T>` owns its `T`s exactly like `Box<[T]>` does (the raw pointer is
// never shared with anything else), so it may move to another thread when `T` may.
unsafe impl<T: Send> Send for HugeSlice<T> {}
// SAFETY: `&HugeSlice<T>` only hands out `&[T]`, so sharing it is sharing `&T`s.
unsafe impl<T: Sync> Sync for HugeSlice<T> {}

impl<T> HugeSlice<T> {
    /// A slice of `len` values, element `i` being `f(i)`. The values are written in index
    /// order once the memory is advised, so the first touch already faults huge pages.
    ///
    /// # Panics
    ///
    /// When `len × size_of::<T>()` overflows `usize` (as `Vec` does), and if `f` panics (the
    /// values made so far are dropped and the memory released).
    pub fn from_fn(len: usize, f: impl FnMut(usize) -> T) -> HugeSlice<T> {
        let bytes = len
            .checked_mul(core::mem::size_of::<T>())
            .expect("HugeSlice length overflows usize");
        if bytes < HUGE_PAGE || core::mem::align_of::<T>() > HUGE_PAGE {
            return Self::heap(len, f);
        }
        match map::map_huge(bytes.next_multiple_of(HUGE_PAGE)) {
            Some((ptr, mapped)) => Self::fill(ptr.cast(), len, mapped, f),
            None => Self::heap(len, f),
        }
    }

    fn heap(len: usize, f: impl FnMut(usize) -> T) -> HugeSlice<T> {
        let boxed: Box<[T]> = (0..len).map(f).collect();
        let ptr = Box::into_raw(boxed);
        HugeSlice {
            // `Box::into_raw` never returns null (a dangling, aligned pointer when empty).
            ptr: NonNull::new(ptr.cast::<T>()).unwrap_or(NonNull::dangling()),
            len,
            mapped: 0,
        }
    }

    /// Writes `f(0..len)` into a fresh mapping of `bytes` bytes at `ptr`.
    fn fill(
        ptr: NonNull<T>,
        len: usize,
        bytes: usize,
        mut f: impl FnMut(usize) -> T,
    ) -> HugeSlice<T> {
        /// Owns the mapping and the values written so far until the slice is complete.
        struct Partial<T> {
            ptr: NonNull<T>,
            done: usize,
            bytes: usize,
        }
        impl<T> Drop for Partial<T> {
            fn drop(&mut self) {
                // SAFETY: the first `done` elements were written and not dropped (only `f`
                // panicking gets us here, before the slice exists), and the mapping is ours.
                unsafe {
                    core::ptr::drop_in_place(core::ptr::slice_from_raw_parts_mut(
                        self.ptr.as_ptr(),
                        self.done,
                    ));
                    map::unmap(self.ptr.cast(), self.bytes);
                }
            }
        }
        let mut partial = Partial {
            ptr,
            done: 0,
            bytes,
        };
        for i in 0..len {
            let v = f(i);
            // SAFETY: `i < len` and the mapping holds `bytes ≥ len × size_of::<T>()` bytes,
            // aligned to `HUGE_PAGE ≥ align_of::<T>()` (checked in `from_fn`), so
            // `ptr + i` is in bounds and aligned; the slot is uninitialised (fresh zero
            // pages), so writing does not leak a value.
            unsafe { ptr.as_ptr().add(i).write(v) };
            partial.done = i + 1;
        }
        core::mem::forget(partial);
        HugeSlice {
            ptr,
            len,
            mapped: bytes,
        }
    }

    /// True when the slice is on its own 2 MiB-aligned mapping advised for huge pages (whether
    /// the kernel actually used huge pages shows in `AnonHugePages` of `/proc/<pid>/smaps`).
    pub fn advised(&self) -> bool {
        self.mapped != 0
    }
}

impl<T> Deref for HugeSlice<T> {
    type Target = [T];

    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` holds `len` initialised values (a `Box<[T]>` turned into a raw
        // pointer, or a mapping `fill` wrote completely), owned until `drop`; only shared
        // references are handed out.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for HugeSlice<T> {
    fn drop(&mut self) {
        let values = core::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
        if self.mapped == 0 {
            // SAFETY: `ptr`/`len` came from `Box::<[T]>::into_raw` in `heap` and are turned
            // back into that box exactly once, here.
            drop(unsafe { Box::from_raw(values) });
        } else {
            // SAFETY: the `len` values are initialised and dropped exactly once, here; then
            // the mapping, which nothing references any more, is released.
            unsafe {
                core::ptr::drop_in_place(values);
                map::unmap(self.ptr.cast(), self.mapped);
            }
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for HugeSlice<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(target_os = "linux")]
mod map {
    use super::HUGE_PAGE;
    use core::ptr::NonNull;

    /// A private anonymous read-write mapping of `bytes` (a multiple of `HUGE_PAGE`) at a
    /// `HUGE_PAGE`-aligned address, advised `MADV_HUGEPAGE`; `None` if the kernel refuses.
    pub(super) fn map_huge(bytes: usize) -> Option<(NonNull<u8>, usize)> {
        let total = bytes.checked_add(HUGE_PAGE)?;
        // SAFETY: a new anonymous mapping at an address of the kernel's choosing touches no
        // existing memory.
        let raw = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return None;
        }
        let start = raw as usize;
        let aligned = start.next_multiple_of(HUGE_PAGE);
        let (head, tail) = (aligned - start, start + total - (aligned + bytes));
        // SAFETY: both ranges are page-aligned parts of the mapping just made, outside
        // `aligned..aligned + bytes`, and nothing refers to them. Failure would only leave
        // them mapped (a leak of address space), so the results are not checked.
        unsafe {
            if head > 0 {
                libc::munmap(raw, head);
            }
            if tail > 0 {
                libc::munmap((aligned + bytes) as *mut libc::c_void, tail);
            }
        }
        let ptr = aligned as *mut libc::c_void;
        // SAFETY: advice on our own mapping; it changes how pages are backed, not contents.
        // EINVAL (THP not built in) is fine: the memory stays on ordinary pages.
        let _ = unsafe { libc::madvise(ptr, bytes, libc::MADV_HUGEPAGE) };
        NonNull::new(ptr.cast()).map(|p| (p, bytes))
    }

    /// Releases a mapping made by `map_huge`.
    ///
    /// # Safety
    ///
    /// `ptr`/`bytes` must be a mapping returned by `map_huge` that nothing references.
    pub(super) unsafe fn unmap(ptr: NonNull<u8>, bytes: usize) {
        // SAFETY: the caller's contract.
        unsafe { libc::munmap(ptr.as_ptr().cast(), bytes) };
    }
}

#[cfg(not(target_os = "linux"))]
mod map {
    use core::ptr::NonNull;

    pub(super) fn map_huge(_bytes: usize) -> Option<(NonNull<u8>, usize)> {
        None
    }

    /// Never called: `map_huge` maps nothing here.
    pub(super) unsafe fn unmap(_ptr: NonNull<u8>, _bytes: usize) {}
}

#[cfg(test)]
mod test {
    use super::{HugeSlice, HUGE_PAGE};
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    #[test]
    fn small_slices_are_plain_heap() {
        let s = HugeSlice::from_fn(1000, |i| i as u32 * 3);
        assert!(!s.advised());
        assert_eq!(s.len(), 1000);
        assert_eq!(s[999], 2997);
        let e = HugeSlice::<u64>::from_fn(0, |_| unreachable!());
        assert!(e.is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn large_slices_are_mapped_aligned_and_filled() {
        // 3 MiB of atomics: rounded up to two huge pages.
        let n = 3 * HUGE_PAGE / 8;
        let s = HugeSlice::from_fn(n, |i| AtomicU64::new(i as u64));
        assert!(s.advised());
        assert_eq!(s.as_ptr() as usize % HUGE_PAGE, 0);
        assert_eq!(s.len(), n);
        assert!(s
            .iter()
            .enumerate()
            .all(|(i, v)| v.load(Ordering::Relaxed) == i as u64));
        s[n - 1].store(7, Ordering::Relaxed);
        assert_eq!(s[n - 1].load(Ordering::Relaxed), 7);
    }

    /// Counts drops of a value that owns nothing.
    struct Counted<'a>(&'a AtomicUsize);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn every_value_is_dropped_once() {
        let drops = AtomicUsize::new(0);
        // A reference each: 8 × 2 Mi bytes, a mapped buffer.
        let n = HUGE_PAGE;
        drop(HugeSlice::from_fn(n, |_| Counted(&drops)));
        assert_eq!(drops.load(Ordering::Relaxed), n);
        drops.store(0, Ordering::Relaxed);
        drop(HugeSlice::from_fn(10, |_| Counted(&drops)));
        assert_eq!(drops.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn a_panic_while_filling_drops_what_was_made() {
        let drops = AtomicUsize::new(0);
        let n = HUGE_PAGE;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            HugeSlice::from_fn(n, |i| {
                assert!(i < 1000, "fill stops");
                Counted(&drops)
            })
        }));
        assert!(r.is_err());
        assert_eq!(drops.load(Ordering::Relaxed), 1000);
    }

    #[test]
    fn zero_sized_values_never_map() {
        let s = HugeSlice::from_fn(1 << 20, |_| ());
        assert!(!s.advised());
        assert_eq!(s.len(), 1 << 20);
    }
}
