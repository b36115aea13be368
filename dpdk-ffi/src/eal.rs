//! The Environment Abstraction Layer: start-up, lcores, launching work, device probing.

use std::ffi::{c_char, c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::error::{code, Errno};
use crate::sys;

/// Set once `rte_eal_init` has succeeded in this process (it never becomes false again:
/// DPDK cannot be initialised twice, even after `rte_eal_cleanup`).
static INITIALISED: Mutex<bool> = Mutex::new(false);

/// The live EAL, for constructors that take no `Eal` argument ([`crate::Mempool::pktmbuf`],
/// [`crate::Port::by_name`], [`crate::Ring::create`]): they keep a clone of it.
static CURRENT: Mutex<Option<Weak<EalInner>>> = Mutex::new(None);

/// The live EAL handle, if `Eal::init` succeeded and some handle still exists.
pub(crate) fn current() -> Option<Eal> {
    let cur = CURRENT.lock().unwrap_or_else(PoisonError::into_inner);
    cur.as_ref()
        .and_then(Weak::upgrade)
        .map(|inner| Eal { inner })
}

/// Serialises `rte_eal_remote_launch`, whose "is the worker idle?" check is not atomic.
static LAUNCH_LOCK: Mutex<()> = Mutex::new(());

/// Why [`Eal::init`] failed.
#[derive(Debug, thiserror::Error)]
pub enum EalError {
    /// `rte_eal_init` already succeeded in this process; it can run only once.
    #[error("the DPDK EAL is already initialised in this process (rte_eal_init runs once)")]
    AlreadyInitialised,
    /// An argument contains a NUL byte and cannot be passed to C.
    #[error("EAL argument {0:?} contains a NUL byte")]
    NulInArgument(String),
    /// `rte_eal_init` returned an error; `rte_errno` says why.
    #[error("rte_eal_init failed: {0}")]
    Init(Errno),
}

/// Why [`Eal::launch`] or [`Eal::wait`] refused an lcore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// The lcore is not an enabled worker (out of range, disabled, or the main lcore).
    #[error("lcore {0} is not an enabled worker lcore")]
    NotAWorker(u32),
    /// The worker is still running an earlier job (`-EBUSY`); `wait` for it first.
    #[error("lcore {0} is busy with an earlier job")]
    Busy(u32),
    /// Any other return code of `rte_eal_remote_launch`.
    #[error("launching on lcore {lcore}: {errno}")]
    Errno {
        /// The lcore.
        lcore: u32,
        /// The error number.
        errno: Errno,
    },
}

/// Why [`Eal::probe_device`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The device arguments contain a NUL byte.
    #[error("device arguments {0:?} contain a NUL byte")]
    NulInArgument(String),
    /// No bus or driver matches the device name (`-ENOENT`/`-ENODEV`).
    #[error("probing {devargs:?}: no bus or driver for this device")]
    DeviceNotFound {
        /// The device arguments passed in.
        devargs: String,
    },
    /// The device is already probed (`-EEXIST`).
    #[error("probing {devargs:?}: device already exists")]
    AlreadyExists {
        /// The device arguments passed in.
        devargs: String,
    },
    /// Malformed arguments (`-EINVAL`).
    #[error("probing {devargs:?}: invalid device arguments")]
    InvalidArgument {
        /// The device arguments passed in.
        devargs: String,
    },
    /// The driver refused the device and returned a bare `-1` (no errno; the DPDK log says
    /// why, e.g. a missing interface for `net_af_packet`).
    #[error("probing {devargs:?}: the driver could not attach the device (see the DPDK log)")]
    AttachFailed {
        /// The device arguments passed in.
        devargs: String,
    },
    /// The driver failed to probe the device (any other return code).
    #[error("probing {devargs:?}: {errno}")]
    Errno {
        /// The device arguments passed in.
        devargs: String,
        /// The error number.
        errno: Errno,
    },
}

/// The initialised EAL. Cheap to clone (a reference count); every DPDK object made from it keeps
/// a clone, and `rte_eal_cleanup` runs when the last clone is dropped (see [`Drop`] below).
///
/// `Eal` is `Send + Sync`: its methods are control-plane calls that DPDK allows from any thread
/// (launch is serialised internally).
#[derive(Clone)]
pub struct Eal {
    inner: Arc<EalInner>,
}

struct EalInner {
    main_lcore: u32,
}

impl Drop for EalInner {
    /// Waits for every launched job, then calls `rte_eal_cleanup`. Only on the main lcore:
    /// if the last handle dies on a worker (inside a launched closure), the EAL is left as is,
    /// because waiting there would wait for itself.
    fn drop(&mut self) {
        if lcore_id() != self.main_lcore {
            return;
        }
        // SAFETY: the EAL is initialised (an `EalInner` exists only after a successful
        // rte_eal_init) and we are on the main lcore, which is where DPDK requires both calls.
        // No other `Eal` handle exists, so every Mempool/Port/Ring (each holds one) is gone.
        unsafe {
            sys::rte_eal_mp_wait_lcore();
            sys::rte_eal_cleanup();
        }
    }
}

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// Runs a job given to [`Eal::launch`] on a worker lcore.
///
/// # Safety
/// `arg` must come from `Box::into_raw(Box<Job>)` and be passed here exactly once.
unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: per this function's contract, `arg` is an owned `Box<Job>` handed over once.
    let job: Box<Job> = unsafe { Box::from_raw(arg.cast::<Job>()) };
    // A panic must not unwind into C; report it as -1 to whoever waits for the lcore.
    catch_unwind(AssertUnwindSafe(job)).unwrap_or(-1)
}

impl Eal {
    /// Initialises DPDK with `args`, a C-style argument vector: `args[0]` is the program name
    /// (`"dpdk-ffi"` is used if `args` is empty), the rest are EAL options. Succeeds at most
    /// once per process: a second call returns [`EalError::AlreadyInitialised`] without calling
    /// into DPDK.
    ///
    /// The argument strings are leaked on purpose (a few bytes, once): DPDK may keep pointers
    /// into `argv`.
    pub fn init(args: &[String]) -> Result<Eal, EalError> {
        let mut initialised = INITIALISED.lock().unwrap_or_else(PoisonError::into_inner);
        if *initialised {
            return Err(EalError::AlreadyInitialised);
        }
        let mut owned = Vec::with_capacity(args.len() + 1);
        if args.is_empty() {
            owned.push(CString::from(c"dpdk-ffi"));
        }
        for arg in args {
            let c = CString::new(arg.as_str()).map_err(|_| EalError::NulInArgument(arg.clone()))?;
            owned.push(c);
        }
        let owned: &'static [CString] = owned.leak();
        let mut argv: Vec<*mut c_char> = owned.iter().map(|s| s.as_ptr().cast_mut()).collect();
        let argc = c_int::try_from(argv.len()).map_err(|_| EalError::Init(Errno(code::EINVAL)))?;
        argv.push(std::ptr::null_mut());
        let argv: &'static mut [*mut c_char] = argv.leak();

        // SAFETY: argv holds argc valid, NUL-terminated, 'static strings followed by NULL;
        // the INITIALISED lock guarantees no concurrent or repeated successful init.
        let rc = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            let errno = Errno::last();
            if errno.0 == code::EALREADY {
                *initialised = true;
                return Err(EalError::AlreadyInitialised);
            }
            return Err(EalError::Init(errno));
        }
        *initialised = true;
        // SAFETY: the EAL is initialised; rte_get_main_lcore reads its configuration.
        let main_lcore = unsafe { sys::rte_get_main_lcore() };
        let inner = Arc::new(EalInner { main_lcore });
        *CURRENT.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::downgrade(&inner));
        Ok(Eal { inner })
    }

    /// The main lcore (the thread that called [`Eal::init`]).
    pub fn main_lcore(&self) -> u32 {
        self.inner.main_lcore
    }

    /// Number of enabled lcores, the main one included.
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: the EAL is initialised (we hold a handle); a read of its configuration.
        unsafe { sys::rte_lcore_count() }
    }

    /// Whether `lcore` is enabled (given to the EAL with `-l`/`-c`). Out-of-range ids are `false`.
    pub fn is_lcore_enabled(&self, lcore: u32) -> bool {
        if lcore >= sys::RTE_MAX_LCORE {
            return false;
        }
        // SAFETY: the EAL is initialised and `lcore` < RTE_MAX_LCORE.
        unsafe { sys::rte_lcore_is_enabled(lcore) != 0 }
    }

    /// The enabled worker lcores (all enabled lcores except the main one), in id order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        (0..sys::RTE_MAX_LCORE)
            .filter(|&l| l != self.inner.main_lcore && self.is_lcore_enabled(l))
            .collect()
    }

    /// TSC frequency in Hz, measured by the EAL at start-up.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: the EAL is initialised; reads the calibrated frequency.
        unsafe { sys::svr_rte_get_tsc_hz() }
    }

    fn check_worker(&self, lcore: u32) -> Result<(), LaunchError> {
        if lcore == self.inner.main_lcore || !self.is_lcore_enabled(lcore) {
            return Err(LaunchError::NotAWorker(lcore));
        }
        Ok(())
    }

    /// Runs `f` on worker `lcore` (`rte_eal_remote_launch`). Its return value is collected by
    /// [`Eal::wait`] or discarded by [`Eal::wait_all`]. A panic inside `f` is caught and
    /// reported as `-1`. If the launch fails, `f` is dropped here (nothing leaks).
    pub fn launch<F>(&self, lcore: u32, f: F) -> Result<(), LaunchError>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        self.check_worker(lcore)?;
        let job: Box<Job> = Box::new(Box::new(f));
        let arg = Box::into_raw(job).cast::<c_void>();
        let _guard = LAUNCH_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: `lcore` is an enabled worker (checked above, so in range); `trampoline`
        // takes ownership of `arg` exactly once if the launch succeeds; LAUNCH_LOCK prevents a
        // concurrent launch racing on the worker's state.
        let rc = unsafe { sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if rc != 0 {
            // SAFETY: the launch failed, so DPDK never passed `arg` to the worker and we
            // still own the box created above.
            drop(unsafe { Box::from_raw(arg.cast::<Job>()) });
            let errno = Errno::from_rc(rc);
            return Err(if errno.0 == code::EBUSY {
                LaunchError::Busy(lcore)
            } else {
                LaunchError::Errno { lcore, errno }
            });
        }
        Ok(())
    }

    /// Waits for the job on `lcore` to finish and returns its value. If the worker is idle,
    /// returns at once with the value of its last job (0 if it never ran one).
    pub fn wait(&self, lcore: u32) -> Result<i32, LaunchError> {
        self.check_worker(lcore)?;
        // SAFETY: `lcore` is an enabled worker lcore id (checked above).
        Ok(unsafe { sys::rte_eal_wait_lcore(lcore) })
    }

    /// Waits for every worker to finish its job (`rte_eal_mp_wait_lcore`). Call on the main
    /// lcore; from a worker it would wait for itself.
    pub fn wait_all(&self) {
        // SAFETY: the EAL is initialised; the call only spins on worker states.
        unsafe { sys::rte_eal_mp_wait_lcore() }
    }

    /// Hot-plugs a device after init (`rte_dev_probe`), e.g. `"net_af_packet0,iface=veth0"`,
    /// `"net_null0"` or `"net_ring1"`. The new port is then found with [`crate::Port::by_name`].
    pub fn probe_device(&self, devargs: &str) -> Result<(), ProbeError> {
        let c = CString::new(devargs).map_err(|_| ProbeError::NulInArgument(devargs.to_owned()))?;
        // SAFETY: the EAL is initialised; `c` is a valid C string that outlives the call.
        let rc = unsafe { sys::rte_dev_probe(c.as_ptr()) };
        if rc == 0 {
            return Ok(());
        }
        let devargs = devargs.to_owned();
        if rc == -1 {
            // Drivers commonly return -1 rather than -errno; EPERM would be a lie.
            return Err(ProbeError::AttachFailed { devargs });
        }
        let errno = Errno::from_rc(rc);
        Err(match errno.0 {
            code::ENOENT | code::ENODEV => ProbeError::DeviceNotFound { devargs },
            code::EEXIST => ProbeError::AlreadyExists { devargs },
            code::EINVAL => ProbeError::InvalidArgument { devargs },
            _ => ProbeError::Errno { devargs, errno },
        })
    }
}

/// The calling thread's lcore id, or `u32::MAX` (`LCORE_ID_ANY`) on a thread the EAL did not
/// start. Works before init too.
pub fn lcore_id() -> u32 {
    // SAFETY: reads the calling thread's per-lcore TLS variable; no preconditions.
    unsafe { sys::svr_rte_lcore_id() }
}

/// The current TSC value (`rte_get_tsc_cycles`); divide differences by [`Eal::tsc_hz`].
pub fn tsc() -> u64 {
    // SAFETY: reads the time-stamp counter; no preconditions.
    unsafe { sys::svr_rte_get_tsc_cycles() }
}

/// TSC ticks per second as the EAL measured them at start-up (0 before `rte_eal_init`).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value the EAL set at init; no preconditions.
    unsafe { sys::svr_rte_get_tsc_hz() }
}
