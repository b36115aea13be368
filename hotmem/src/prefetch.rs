//! [`prefetch`]: a hint to bring a value's cache line into all cache levels.

/// Asks the CPU to start loading the cache line that holds the start of `*r` into all cache
/// levels, without waiting for it. A hint only: it has no effect on what the program computes,
/// never faults, and is a no-op on targets without a stable prefetch instruction.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: `_mm_prefetch` is unsafe only because it is a `#[target_feature(enable =
        // "sse")]` function; the cfg above compiles this call only when `sse` is enabled for
        // the whole build (it is part of the x86-64 baseline). A prefetch does not access
        // memory architecturally and cannot fault, and `r` is a valid reference anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast::<i8>()) }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = r;
}

#[cfg(test)]
mod test {
    use super::prefetch;

    #[test]
    fn prefetch_changes_nothing() {
        let v = [1u64, 2, 3];
        prefetch(&v[1]);
        prefetch(&v);
        assert_eq!(v, [1, 2, 3]);
    }
}
