//! The errno value DPDK reports, and helpers shared by the per-call error enums.

use std::ffi::{c_char, CStr};
use std::fmt;

use crate::sys;

/// A DPDK error number (a positive `errno` or `E_RTE_*` value). `Display` shows the
/// `rte_strerror` text and the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// `rte_errno` of the calling thread (set by DPDK calls that return NULL or -1).
    pub fn last() -> Errno {
        // SAFETY: reads the calling thread's `rte_errno` TLS variable; no preconditions.
        Errno(unsafe { sys::svr_rte_errno() })
    }

    /// From a DPDK return code of the form `-errno`.
    pub(crate) fn from_rc(rc: i32) -> Errno {
        Errno(rc.saturating_neg())
    }

    /// The `rte_strerror` text of this error number.
    pub fn text(self) -> String {
        // SAFETY: rte_strerror accepts any int and returns NULL or a pointer to a static or
        // thread-local NUL-terminated string that stays valid until the next call on this
        // thread; `cstr_to_string` copies it before we return.
        unsafe { cstr_to_string(sys::rte_strerror(self.0)) }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (errno {})", self.text(), self.0)
    }
}

impl std::error::Error for Errno {}

/// Linux errno values, from `<errno.h>` through bindgen.
pub(crate) mod code {
    use crate::sys;
    pub const EINVAL: i32 = sys::EINVAL as i32;
    pub const ENODEV: i32 = sys::ENODEV as i32;
    pub const ENOTSUP: i32 = sys::ENOTSUP as i32;
    pub const ENOENT: i32 = sys::ENOENT as i32;
    pub const EEXIST: i32 = sys::EEXIST as i32;
    pub const ENOMEM: i32 = sys::ENOMEM as i32;
    pub const ENOSPC: i32 = sys::ENOSPC as i32;
    pub const EBUSY: i32 = sys::EBUSY as i32;
    pub const EALREADY: i32 = sys::EALREADY as i32;
}

/// Copies a C string into an owned `String` (lossy UTF-8); NULL becomes `""`.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string that stays valid during the call.
pub(crate) unsafe fn cstr_to_string(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-NULL and NUL-terminated, per this function's contract.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Copies a fixed-size C char buffer (NUL-terminated or full) into a `String`.
pub(crate) fn cbuf_to_string(buf: &[c_char]) -> String {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
