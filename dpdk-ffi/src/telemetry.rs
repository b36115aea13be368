//! DPDK telemetry: application commands answered over the EAL's telemetry socket
//! (`<runtime-dir>/dpdk_telemetry.v2`, e.g. `/var/run/dpdk/<file-prefix>/`), which
//! `dpdk-telemetry.py -f <file-prefix>` and other clients query.
//!
//! [`register`] binds a command name to a Rust closure that returns a [`TelValue`]. DPDK calls
//! one `extern "C"` callback for every registered command on its own telemetry thread (not an
//! lcore, never a worker); the callback finds the closure by command name in a registry behind
//! a lock, runs it, and converts the value into DPDK's `struct rte_tel_data`. A closure that
//! panics does not unwind into C: the client gets `null` (the callback returns `-1`).
//!
//! # DPDK's limits, and what this module does about them (DPDK 22.11)
//!
//! | limit | in DPDK | here |
//! | --- | --- | --- |
//! | command name | `/` first, `[A-Za-z0-9_/]`, < 56 bytes | checked by [`register`] ([`TelemetryError::InvalidCommand`]) |
//! | help text | < 128 bytes | cut at 127 bytes (on a character boundary) |
//! | dict key | `[A-Za-z0-9_/]`, < 128 bytes; DPDK *refuses* others | other characters become `_`, cut at 127 bytes, `""` becomes `_` |
//! | string value in a dict or array | < 128 bytes | cut at 127 bytes on a character boundary; NUL bytes removed |
//! | top-level string | < 8192 bytes | cut at 8191 bytes |
//! | dict entries | 256 | the first 255, then `"truncated": <entries left out>` |
//! | array entries | 512 | the first 512 (typed arrays cannot carry a marker) |
//! | `int` | 32-bit | an `I64` that fits is an int; else a `U64` if ≥ 0; else its decimal string |
//! | nesting | a dict may hold dicts and scalar arrays, an array only scalars of one type | an array holding anything else (dicts, arrays, mixed types) becomes a dict keyed `"0"`, `"1"`, … |
//! | memory | each nested container is a 66 KiB `rte_tel_data` | at most [`MAX_CONTAINERS`] per answer; further ones become the string `"truncated"` |
//! | answer | 16 KiB of JSON in all (`max_output_len`) | not checked: keep answers small (DPDK cuts longer ones) |
//!
//! A top-level `U64`/`I64` is sent as its decimal string (DPDK has no top-level number).

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use crate::error::Errno;
use crate::sys;

/// A telemetry answer: what a command's closure returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelValue {
    /// An unsigned number.
    U64(u64),
    /// A signed number (DPDK carries 32 bits; see the module doc).
    I64(i64),
    /// A string.
    Str(String),
    /// Name → value pairs, in order (JSON object).
    Dict(Vec<(String, TelValue)>),
    /// A list (JSON array).
    Array(Vec<TelValue>),
}

impl From<u64> for TelValue {
    fn from(v: u64) -> Self {
        TelValue::U64(v)
    }
}

impl From<&str> for TelValue {
    fn from(v: &str) -> Self {
        TelValue::Str(v.to_string())
    }
}

impl From<String> for TelValue {
    fn from(v: String) -> Self {
        TelValue::Str(v)
    }
}

/// Why [`register`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelemetryError {
    /// The command name breaks DPDK's rules (see the module doc).
    #[error("telemetry command {cmd:?}: {reason}")]
    InvalidCommand {
        /// The command name.
        cmd: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// This process already registered the command through this module.
    #[error("telemetry command {0:?} is already registered")]
    AlreadyRegistered(String),
    /// `rte_telemetry_register_cmd` refused it (`ENOMEM`, or DPDK's own checks).
    #[error("registering telemetry command {cmd:?}: {errno}")]
    Register {
        /// The command name.
        cmd: String,
        /// The error number.
        errno: Errno,
    },
}

/// DPDK's `MAX_CMD_LEN` (telemetry.c): a command name is shorter.
pub const MAX_CMD_LEN: usize = 56;
/// DPDK's `MAX_HELP_LEN` (telemetry.c): a help text is shorter.
pub const MAX_HELP_LEN: usize = 128;
/// `RTE_TEL_MAX_STRING_LEN`: dict keys and string values are shorter.
pub const MAX_STRING_LEN: usize = sys::RTE_TEL_MAX_STRING_LEN as usize;
/// `RTE_TEL_MAX_SINGLE_STRING_LEN`: a top-level string is shorter.
pub const MAX_SINGLE_STRING_LEN: usize = sys::RTE_TEL_MAX_SINGLE_STRING_LEN as usize;
/// `RTE_TEL_MAX_DICT_ENTRIES`.
pub const MAX_DICT_ENTRIES: usize = sys::RTE_TEL_MAX_DICT_ENTRIES as usize;
/// `RTE_TEL_MAX_ARRAY_ENTRIES`.
pub const MAX_ARRAY_ENTRIES: usize = sys::RTE_TEL_MAX_ARRAY_ENTRIES as usize;
/// Nested containers allowed in one answer (each costs DPDK a 66 KiB allocation).
pub const MAX_CONTAINERS: usize = 64;

type Handler = Arc<dyn Fn(&str) -> TelValue + Send + Sync + 'static>;

/// Command name → closure. Read by the telemetry thread, written by [`register`].
fn registry() -> &'static RwLock<HashMap<String, Handler>> {
    static REGISTRY: OnceLock<RwLock<HashMap<String, Handler>>> = OnceLock::new();
    REGISTRY.get_or_init(|| RwLock::new(HashMap::new()))
}

/// Registers `cmd` (e.g. `/svr/peers`) with DPDK telemetry: a client's request `cmd,params`
/// calls `f(params)` (`""` without parameters) on the telemetry thread, and the returned
/// value is the answer. `help` is what `/help,<cmd>` shows (cut to DPDK's limit).
///
/// Works before or after `rte_eal_init`, with or without the telemetry socket (without it
/// the command is simply never called). `f` must not block for long: one client waits.
pub fn register(
    cmd: &'static str,
    help: &'static str,
    f: impl Fn(&str) -> TelValue + Send + Sync + 'static,
) -> Result<(), TelemetryError> {
    let invalid = |reason| TelemetryError::InvalidCommand {
        cmd: cmd.to_string(),
        reason,
    };
    if !cmd.starts_with('/') {
        return Err(invalid("must start with '/'"));
    }
    if cmd.len() >= MAX_CMD_LEN {
        return Err(invalid("must be shorter than 56 bytes"));
    }
    if !cmd.bytes().all(is_name_byte) {
        return Err(invalid("may only hold A-Z, a-z, 0-9, '_' and '/'"));
    }
    // `cmd` has only name bytes, so no NUL.
    let c_cmd = CString::new(cmd).map_err(|_| invalid("contains a NUL byte"))?;
    let c_help = c_string(help, MAX_HELP_LEN - 1);

    let mut map = registry().write().unwrap_or_else(PoisonError::into_inner);
    if map.contains_key(cmd) {
        return Err(TelemetryError::AlreadyRegistered(cmd.to_string()));
    }
    map.insert(cmd.to_string(), Arc::new(f));
    // SAFETY: both strings are valid NUL-terminated C strings for the call (DPDK copies them
    // into its own table); `callback` has the `telemetry_cb` signature and stays valid for
    // the life of the process.
    let rc =
        unsafe { sys::rte_telemetry_register_cmd(c_cmd.as_ptr(), Some(callback), c_help.as_ptr()) };
    if rc != 0 {
        map.remove(cmd);
        return Err(TelemetryError::Register {
            cmd: cmd.to_string(),
            errno: Errno::from_rc(rc),
        });
    }
    Ok(())
}

/// The one callback DPDK calls for every command registered here.
///
/// # Safety
/// Called by DPDK's telemetry thread with `cmd` a NUL-terminated string, `params` NULL or a
/// NUL-terminated string, and `d` a valid, empty `rte_tel_data` owned by the caller.
unsafe extern "C" fn callback(
    cmd: *const c_char,
    params: *const c_char,
    d: *mut sys::rte_tel_data,
) -> c_int {
    if cmd.is_null() || d.is_null() {
        return -1;
    }
    // SAFETY: `cmd` is non-NULL and NUL-terminated (this function's contract).
    let cmd = unsafe { CStr::from_ptr(cmd) }
        .to_string_lossy()
        .into_owned();
    let params = if params.is_null() {
        String::new()
    } else {
        // SAFETY: non-NULL and NUL-terminated (this function's contract).
        unsafe { CStr::from_ptr(params) }
            .to_string_lossy()
            .into_owned()
    };
    let handler = registry()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&cmd)
        .cloned();
    let Some(handler) = handler else { return -1 };
    // No panic may unwind into DPDK: the closure and the conversion run inside catch_unwind.
    let answer = catch_unwind(AssertUnwindSafe(|| shape(handler(&params))));
    match answer {
        // SAFETY: `d` is the valid, empty rte_tel_data DPDK passed in (this function's
        // contract), and this thread is the only one filling it.
        Ok(shaped) => unsafe { fill(d, &shaped) },
        Err(_) => -1,
    }
}

/// A [`TelValue`] reshaped to fit DPDK's rules: every string is a C string within its length
/// limit, every key valid, every array one scalar type, every count within DPDK's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shaped {
    /// A top-level string (`rte_tel_data_string`).
    Str(CString),
    /// `rte_tel_data_start_dict` and one `add_dict_*` per entry.
    Dict(Vec<(CString, Entry)>),
    /// `rte_tel_data_start_array(RTE_TEL_U64_VAL)`.
    U64s(Vec<u64>),
    /// `rte_tel_data_start_array(RTE_TEL_INT_VAL)`.
    Ints(Vec<c_int>),
    /// `rte_tel_data_start_array(RTE_TEL_STRING_VAL)`.
    Strs(Vec<CString>),
}

/// One value of a [`Shaped::Dict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    U64(u64),
    Int(c_int),
    Str(CString),
    /// A nested dict or scalar array (`rte_tel_data_alloc` + `add_dict_container`).
    Container(Shaped),
}

/// Reshapes `v` for DPDK (see the module doc).
pub(crate) fn shape(v: TelValue) -> Shaped {
    let mut budget = MAX_CONTAINERS;
    match v {
        TelValue::U64(n) => Shaped::Str(c_string(&n.to_string(), MAX_SINGLE_STRING_LEN - 1)),
        TelValue::I64(n) => Shaped::Str(c_string(&n.to_string(), MAX_SINGLE_STRING_LEN - 1)),
        TelValue::Str(s) => Shaped::Str(c_string(&s, MAX_SINGLE_STRING_LEN - 1)),
        TelValue::Dict(d) => shape_dict(d, &mut budget),
        TelValue::Array(a) => shape_array(a, &mut budget),
    }
}

fn shape_dict(entries: Vec<(String, TelValue)>, budget: &mut usize) -> Shaped {
    let total = entries.len();
    let keep = if total > MAX_DICT_ENTRIES {
        MAX_DICT_ENTRIES - 1
    } else {
        total
    };
    let mut out: Vec<(CString, Entry)> = entries
        .into_iter()
        .take(keep)
        .map(|(k, v)| (key(&k), shape_entry(v, budget)))
        .collect();
    if keep < total {
        out.push((key("truncated"), Entry::U64((total - keep) as u64)));
    }
    Shaped::Dict(out)
}

fn shape_entry(v: TelValue, budget: &mut usize) -> Entry {
    match v {
        TelValue::U64(n) => Entry::U64(n),
        TelValue::I64(n) => match (c_int::try_from(n), u64::try_from(n)) {
            (Ok(i), _) => Entry::Int(i),
            (Err(_), Ok(u)) => Entry::U64(u),
            (Err(_), Err(_)) => Entry::Str(c_string(&n.to_string(), MAX_STRING_LEN - 1)),
        },
        TelValue::Str(s) => Entry::Str(c_string(&s, MAX_STRING_LEN - 1)),
        TelValue::Dict(_) | TelValue::Array(_) if *budget == 0 => {
            Entry::Str(c_string("truncated", MAX_STRING_LEN - 1))
        }
        TelValue::Dict(d) => {
            *budget -= 1;
            Entry::Container(shape_dict(d, budget))
        }
        TelValue::Array(a) => {
            *budget -= 1;
            Entry::Container(shape_array(a, budget))
        }
    }
}

/// A typed array when every element is the same scalar type, else a dict keyed by index.
fn shape_array(items: Vec<TelValue>, budget: &mut usize) -> Shaped {
    let all = |f: fn(&TelValue) -> bool| items.iter().all(f);
    if all(|v| matches!(v, TelValue::U64(_))) {
        let v = items.into_iter().take(MAX_ARRAY_ENTRIES);
        return Shaped::U64s(
            v.filter_map(|x| match x {
                TelValue::U64(n) => Some(n),
                _ => None,
            })
            .collect(),
        );
    }
    if all(|v| matches!(v, TelValue::Str(_))) {
        let v = items.into_iter().take(MAX_ARRAY_ENTRIES);
        return Shaped::Strs(
            v.filter_map(|x| match x {
                TelValue::Str(s) => Some(c_string(&s, MAX_STRING_LEN - 1)),
                _ => None,
            })
            .collect(),
        );
    }
    if all(|v| matches!(v, TelValue::I64(_))) {
        let nums: Vec<i64> = items
            .into_iter()
            .take(MAX_ARRAY_ENTRIES)
            .filter_map(|x| match x {
                TelValue::I64(n) => Some(n),
                _ => None,
            })
            .collect();
        if let Ok(ints) = nums.iter().map(|&n| c_int::try_from(n)).collect() {
            return Shaped::Ints(ints);
        }
        if let Ok(u) = nums.iter().map(|&n| u64::try_from(n)).collect() {
            return Shaped::U64s(u);
        }
        return Shaped::Strs(
            nums.iter()
                .map(|n| c_string(&n.to_string(), MAX_STRING_LEN - 1))
                .collect(),
        );
    }
    let by_index = items
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i.to_string(), v))
        .collect();
    shape_dict(by_index, budget)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'/'
}

/// A dict key DPDK accepts: other bytes become `_` (so the key is ASCII), at most 127 bytes,
/// never empty.
pub(crate) fn key(k: &str) -> CString {
    let mut s: Vec<u8> = k
        .chars()
        .map(|c| {
            let b = u8::try_from(c).unwrap_or(b'_');
            if is_name_byte(b) {
                b
            } else {
                b'_'
            }
        })
        .take(MAX_STRING_LEN - 1)
        .collect();
    if s.is_empty() {
        s.push(b'_');
    }
    // Only name bytes, none of them NUL.
    CString::new(s).unwrap_or_default()
}

/// `s` without NUL bytes, cut to at most `max` bytes on a character boundary.
pub(crate) fn c_string(s: &str, max: usize) -> CString {
    let clean: String = s.chars().filter(|&c| c != '\0').collect();
    let mut end = clean.len().min(max);
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    CString::new(&clean.as_bytes()[..end]).unwrap_or_default()
}

/// Writes `s` into `d`. Returns 0, or a negative errno when DPDK refused the top-level start.
/// An entry DPDK refuses is left out (the shaping makes that not happen).
///
/// # Safety
/// `d` must be a valid, empty `rte_tel_data` that no other thread touches during the call.
unsafe fn fill(d: *mut sys::rte_tel_data, s: &Shaped) -> c_int {
    match s {
        // SAFETY: `d` valid (contract); the string is NUL-terminated and DPDK copies it.
        Shaped::Str(text) => unsafe { sys::rte_tel_data_string(d, text.as_ptr()) },
        Shaped::Dict(entries) => {
            // SAFETY: `d` valid and empty (contract).
            let rc = unsafe { sys::rte_tel_data_start_dict(d) };
            if rc != 0 {
                return rc;
            }
            for (k, v) in entries {
                let name = k.as_ptr();
                match v {
                    // SAFETY: `d` is a started dict; `name` (and, below, the string) are
                    // NUL-terminated within DPDK's limits, and DPDK copies them.
                    Entry::U64(n) => unsafe {
                        sys::rte_tel_data_add_dict_u64(d, name, *n);
                    },
                    // SAFETY: as above.
                    Entry::Int(n) => unsafe {
                        sys::rte_tel_data_add_dict_int(d, name, *n);
                    },
                    // SAFETY: as above.
                    Entry::Str(t) => unsafe {
                        sys::rte_tel_data_add_dict_string(d, name, t.as_ptr());
                    },
                    Entry::Container(inner) => {
                        // SAFETY: rte_tel_data_alloc has no preconditions; NULL is checked.
                        let c = unsafe { sys::rte_tel_data_alloc() };
                        if c.is_null() {
                            continue;
                        }
                        // SAFETY: `c` is a fresh container owned by this thread; on success
                        // DPDK takes it (keep = 0: freed with `d`), otherwise we free it.
                        unsafe {
                            let ok = fill(c, inner) == 0
                                && sys::rte_tel_data_add_dict_container(d, name, c, 0) == 0;
                            if !ok {
                                sys::rte_tel_data_free(c);
                            }
                        }
                    }
                }
            }
            0
        }
        Shaped::U64s(v) => {
            // SAFETY: `d` valid and empty (contract); each add copies a number.
            unsafe {
                let rc = sys::rte_tel_data_start_array(d, sys::RTE_TEL_U64_VAL);
                if rc != 0 {
                    return rc;
                }
                for n in v {
                    sys::rte_tel_data_add_array_u64(d, *n);
                }
            }
            0
        }
        Shaped::Ints(v) => {
            // SAFETY: `d` valid and empty (contract); each add copies a number.
            unsafe {
                let rc = sys::rte_tel_data_start_array(d, sys::RTE_TEL_INT_VAL);
                if rc != 0 {
                    return rc;
                }
                for n in v {
                    sys::rte_tel_data_add_array_int(d, *n);
                }
            }
            0
        }
        Shaped::Strs(v) => {
            // SAFETY: `d` valid and empty (contract); each string is NUL-terminated within
            // DPDK's limit and copied.
            unsafe {
                let rc = sys::rte_tel_data_start_array(d, sys::RTE_TEL_STRING_VAL);
                if rc != 0 {
                    return rc;
                }
                for t in v {
                    sys::rte_tel_data_add_array_string(d, t.as_ptr());
                }
            }
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    #[test]
    fn keys_keep_only_dpdk_characters() {
        assert_eq!(key("rx-packets"), cs("rx_packets"));
        assert_eq!(key("port.wan/é"), cs("port_wan/_"));
        assert_eq!(key(""), cs("_"));
        assert_eq!(key(&"k".repeat(300)).as_bytes().len(), MAX_STRING_LEN - 1);
    }

    #[test]
    fn strings_are_cut_on_a_character_boundary_without_nul() {
        let s = "é".repeat(100); // 200 bytes
        let c = c_string(&s, MAX_STRING_LEN - 1);
        assert_eq!(c.as_bytes().len(), 126, "127 would split a character");
        assert!(std::str::from_utf8(c.as_bytes()).is_ok());
        assert_eq!(c_string("a\0b", 10), cs("ab"));
        let top = shape(TelValue::Str("x".repeat(10_000)));
        assert_eq!(
            top,
            Shaped::Str(CString::new("x".repeat(MAX_SINGLE_STRING_LEN - 1)).unwrap())
        );
    }

    #[test]
    fn big_dicts_end_with_a_truncation_count() {
        let d = (0..300)
            .map(|i| (format!("k{i}"), TelValue::U64(i)))
            .collect();
        let Shaped::Dict(e) = shape(TelValue::Dict(d)) else {
            panic!("not a dict")
        };
        assert_eq!(e.len(), MAX_DICT_ENTRIES);
        assert_eq!(e[254], (cs("k254"), Entry::U64(254)));
        assert_eq!(e[255], (cs("truncated"), Entry::U64(45)));
        let d = (0..256)
            .map(|i| (format!("k{i}"), TelValue::U64(i)))
            .collect();
        let Shaped::Dict(e) = shape(TelValue::Dict(d)) else {
            panic!("not a dict")
        };
        assert_eq!(e.len(), 256, "exactly the limit: nothing cut");
    }

    #[test]
    fn arrays_are_typed_or_become_index_dicts() {
        let u = shape(TelValue::Array((0..600).map(TelValue::U64).collect()));
        assert!(matches!(&u, Shaped::U64s(v) if v.len() == MAX_ARRAY_ENTRIES));
        assert_eq!(
            shape(TelValue::Array(vec![TelValue::I64(-1), TelValue::I64(2)])),
            Shaped::Ints(vec![-1, 2])
        );
        assert_eq!(
            shape(TelValue::Array(vec![TelValue::I64(1 << 40)])),
            Shaped::U64s(vec![1 << 40])
        );
        assert_eq!(
            shape(TelValue::Array(vec![
                TelValue::I64(-(1 << 40)),
                TelValue::I64(1)
            ])),
            Shaped::Strs(vec![cs("-1099511627776"), cs("1")])
        );
        // Mixed, or holding containers: a dict keyed by index.
        let m = shape(TelValue::Array(vec![
            TelValue::U64(1),
            TelValue::Str("a".into()),
            TelValue::Dict(vec![("x".into(), TelValue::U64(2))]),
        ]));
        assert_eq!(
            m,
            Shaped::Dict(vec![
                (cs("0"), Entry::U64(1)),
                (cs("1"), Entry::Str(cs("a"))),
                (
                    cs("2"),
                    Entry::Container(Shaped::Dict(vec![(cs("x"), Entry::U64(2))]))
                ),
            ])
        );
    }

    #[test]
    fn numbers_keep_their_value() {
        let d = shape(TelValue::Dict(vec![
            ("a".into(), TelValue::I64(-5)),
            ("b".into(), TelValue::I64(1 << 40)),
            ("c".into(), TelValue::I64(i64::MIN)),
        ]));
        assert_eq!(
            d,
            Shaped::Dict(vec![
                (cs("a"), Entry::Int(-5)),
                (cs("b"), Entry::U64(1 << 40)),
                (cs("c"), Entry::Str(cs("-9223372036854775808"))),
            ])
        );
        assert_eq!(shape(TelValue::U64(7)), Shaped::Str(cs("7")));
    }

    #[test]
    fn nesting_is_bounded() {
        let leaf = || TelValue::Dict(vec![("x".into(), TelValue::U64(1))]);
        let d = TelValue::Dict((0..100).map(|i| (format!("c{i}"), leaf())).collect());
        let Shaped::Dict(e) = shape(d) else {
            panic!("not a dict")
        };
        let containers = e
            .iter()
            .filter(|(_, v)| matches!(v, Entry::Container(_)))
            .count();
        assert_eq!(containers, MAX_CONTAINERS);
        assert_eq!(e[99].1, Entry::Str(cs("truncated")));
        // Deep nesting terminates and stays within the budget too.
        let mut deep = TelValue::U64(0);
        for _ in 0..1000 {
            deep = TelValue::Dict(vec![("d".into(), deep)]);
        }
        let _ = shape(deep);
    }

    #[test]
    fn command_names_are_checked_before_dpdk() {
        let f = |_: &str| TelValue::U64(0);
        for bad in ["svr/x", "/svr/x-y", "/svr/x.y", "/svr/é"] {
            assert!(
                matches!(
                    register(bad, "", f),
                    Err(TelemetryError::InvalidCommand { .. })
                ),
                "{bad}"
            );
        }
        let long: &'static str = Box::leak(format!("/{}", "a".repeat(60)).into_boxed_str());
        assert!(matches!(
            register(long, "", f),
            Err(TelemetryError::InvalidCommand { .. })
        ));
    }
}
