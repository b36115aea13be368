//! `Port`: an ethdev port (`rte_eth_dev_*`), its configuration and its burst calls.

use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use crate::burst::{MbufBurst, TxBuffer};
use crate::eal::{self, Eal};
use crate::error::{cbuf_to_string, code, cstr_to_string, Errno};
use crate::mempool::Mempool;
use crate::sys;

const MAX_PORTS: usize = sys::RTE_MAX_ETHPORTS as usize;

/// The live handle of each port id, so that every [`Port`] for one port shares one state.
static PORTS: Mutex<[Option<Weak<PortInner>>; MAX_PORTS]> = Mutex::new([const { None }; MAX_PORTS]);

/// Why a port call failed. `op` names the DPDK call.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// [`Eal::init`] has not succeeded (or every EAL handle is gone).
    #[error("the DPDK EAL is not initialised")]
    EalNotInitialised,
    /// No ethdev port has this name (check `--vdev`/[`Eal::probe_device`] or the PCI address).
    #[error("no DPDK port named {0:?}")]
    NotFound(String),
    /// No valid port has this id.
    #[error("no DPDK port with id {0}")]
    NoSuchPort(u16),
    /// The device supports fewer queues than requested.
    #[error(
        "port {port}: {requested} {dir} queues requested, but the device supports at most {max}"
    )]
    TooManyQueues {
        /// Port id.
        port: u16,
        /// `"rx"` or `"tx"`.
        dir: &'static str,
        /// Queues requested.
        requested: u16,
        /// The device's maximum.
        max: u16,
    },
    /// The device went away (`-ENODEV`).
    #[error("port {port}: {op}: device not found")]
    DeviceNotFound {
        /// Port id.
        port: u16,
        /// The failing DPDK call.
        op: &'static str,
    },
    /// The driver does not implement this (`-ENOTSUP`).
    #[error("port {port}: {op}: not supported by the driver")]
    NotSupported {
        /// Port id.
        port: u16,
        /// The failing DPDK call.
        op: &'static str,
    },
    /// A parameter was rejected (`-EINVAL`).
    #[error("port {port}: {op}: invalid argument")]
    InvalidArgument {
        /// Port id.
        port: u16,
        /// The failing DPDK call.
        op: &'static str,
    },
    /// Any other return code.
    #[error("port {port}: {op}: {errno}")]
    Errno {
        /// Port id.
        port: u16,
        /// The failing DPDK call.
        op: &'static str,
        /// The error number.
        errno: Errno,
    },
}

impl PortError {
    fn from_rc(port: u16, op: &'static str, rc: i32) -> PortError {
        let errno = Errno::from_rc(rc);
        match errno.0 {
            code::ENODEV => PortError::DeviceNotFound { port, op },
            code::ENOTSUP => PortError::NotSupported { port, op },
            code::EINVAL => PortError::InvalidArgument { port, op },
            _ => PortError::Errno { port, op, errno },
        }
    }
}

fn check(port: u16, op: &'static str, rc: i32) -> Result<(), PortError> {
    if rc < 0 {
        Err(PortError::from_rc(port, op, rc))
    } else {
        Ok(())
    }
}

/// Device capabilities (`rte_eth_dev_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// Driver name, e.g. `"net_ring"`.
    pub driver_name: String,
    /// Kernel interface index, 0 if none.
    pub if_index: u32,
    /// Smallest MTU accepted.
    pub min_mtu: u16,
    /// Largest MTU accepted.
    pub max_mtu: u16,
    /// Most RX queues.
    pub max_rx_queues: u16,
    /// Most TX queues.
    pub max_tx_queues: u16,
    /// RSS hash types supported (`RTE_ETH_RSS_*` bits); 0 means no RSS.
    pub rss_offloads: u64,
    /// Most RX descriptors per queue.
    pub max_rx_desc: u16,
    /// Most TX descriptors per queue.
    pub max_tx_desc: u16,
}

/// Link state (`rte_eth_link`, read without waiting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// Link up.
    pub up: bool,
    /// Speed in Mbit/s (0 if unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Basic port counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// RX packets dropped by the hardware (queue full).
    pub imissed: u64,
    /// Erroneous RX packets.
    pub ierrors: u64,
    /// Failed TX packets.
    pub oerrors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// What [`Port::configure`] sets up.
#[derive(Debug, Clone, Copy)]
pub struct PortConf<'a> {
    /// RX queues (one per polling lcore, typically).
    pub rx_queues: u16,
    /// TX queues.
    pub tx_queues: u16,
    /// RX descriptors per queue (adjusted to the device limits).
    pub rx_desc: u16,
    /// TX descriptors per queue (adjusted to the device limits).
    pub tx_desc: u16,
    /// Pool the RX queues fill from; kept alive by the port until it is closed.
    pub mempool: &'a Mempool,
    /// Spread packets over RX queues with RSS (IP/TCP/UDP) when `rx_queues > 1` and the
    /// device supports it; ignored otherwise.
    pub rss: bool,
    /// MTU to set, if any.
    pub mtu: Option<u16>,
}

/// An ethdev port: a cheap, cloneable handle (`Send + Sync`); every handle for one port id
/// shares one state, and the port is stopped and closed when the last handle is dropped.
///
/// **Rules the types do not check** (DPDK does not synchronise them either):
/// - each RX and TX queue is polled by **one thread at a time** (give each lcore its queues);
/// - control calls (`configure`, `start`, `stop`, `close`) run **while no thread polls the
///   port** — before the workers are launched, or after [`Eal::wait_all`].
///
/// The burst calls check the queue index against the configured queue count, so polling an
/// unconfigured, stopped or closed port returns 0 instead of touching freed queues.
#[derive(Clone)]
pub struct Port {
    inner: Arc<PortInner>,
}

struct PortInner {
    id: u16,
    /// Configured queue counts; 0 while unconfigured, being configured, or closed.
    rx_queues: AtomicU16,
    tx_queues: AtomicU16,
    control: Mutex<Control>,
    _eal: Eal,
}

#[derive(Default)]
struct Control {
    started: bool,
    /// Pools the device's RX queues may refer to; kept until the port is closed.
    pools: Vec<Mempool>,
}

impl PortInner {
    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops (if started) and closes (if configured) the port.
    fn shutdown(&self, ctl: &mut Control) -> Result<(), PortError> {
        let port = self.id;
        if ctl.started {
            // SAFETY: valid port id; callers guarantee no thread polls the port.
            let rc = unsafe { sys::rte_eth_dev_stop(port) };
            check(port, "rte_eth_dev_stop", rc)?;
            ctl.started = false;
        }
        if !ctl.pools.is_empty() {
            self.rx_queues.store(0, Ordering::Release);
            self.tx_queues.store(0, Ordering::Release);
            // SAFETY: valid, stopped port id; callers guarantee no thread polls the port.
            let rc = unsafe { sys::rte_eth_dev_close(port) };
            check(port, "rte_eth_dev_close", rc)?;
            ctl.pools.clear();
        }
        Ok(())
    }
}

impl Drop for PortInner {
    fn drop(&mut self) {
        let ctl = self
            .control
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let mut ctl = std::mem::take(ctl);
        // Last handle: nobody can poll. Best effort; if the device could not be closed it may
        // still refer to its pools, so those are leaked rather than freed.
        if self.shutdown(&mut ctl).is_err() {
            for pool in ctl.pools.drain(..) {
                std::mem::forget(pool);
            }
        }
    }
}

impl Port {
    fn handle(id: u16) -> Result<Port, PortError> {
        let eal = eal::current().ok_or(PortError::EalNotInitialised)?;
        let mut ports = PORTS.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = ports
            .get_mut(usize::from(id))
            .ok_or(PortError::NoSuchPort(id))?;
        if let Some(inner) = slot.as_ref().and_then(Weak::upgrade) {
            return Ok(Port { inner });
        }
        let inner = Arc::new(PortInner {
            id,
            rx_queues: AtomicU16::new(0),
            tx_queues: AtomicU16::new(0),
            control: Mutex::new(Control::default()),
            _eal: eal,
        });
        *slot = Some(Arc::downgrade(&inner));
        Ok(Port { inner })
    }

    /// The port with this device name (e.g. `"net_ring0"`, `"0000:00:04.0"`).
    pub fn by_name(name: &str) -> Result<Port, PortError> {
        if eal::current().is_none() {
            return Err(PortError::EalNotInitialised);
        }
        let c = CString::new(name).map_err(|_| PortError::NotFound(name.to_owned()))?;
        let mut id = 0u16;
        // SAFETY: the EAL is initialised; `c` and `id` are valid for the call.
        let rc = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if rc != 0 {
            return Err(PortError::NotFound(name.to_owned()));
        }
        Self::handle(id)
    }

    /// The port with this id, if it exists.
    pub fn from_id(id: u16) -> Result<Port, PortError> {
        if eal::current().is_none() {
            return Err(PortError::EalNotInitialised);
        }
        // SAFETY: the EAL is initialised; any id is accepted and checked.
        if unsafe { sys::rte_eth_dev_is_valid_port(id) } != 1 {
            return Err(PortError::NoSuchPort(id));
        }
        Self::handle(id)
    }

    /// The port id.
    pub fn id(&self) -> u16 {
        self.inner.id
    }

    /// The device name.
    pub fn name(&self) -> Result<String, PortError> {
        let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: `buf` has RTE_ETH_NAME_MAX_LEN bytes, the size DPDK writes at most.
        let rc = unsafe { sys::rte_eth_dev_get_name_by_port(self.inner.id, buf.as_mut_ptr()) };
        check(self.inner.id, "rte_eth_dev_get_name_by_port", rc)?;
        Ok(cbuf_to_string(&buf))
    }

    /// Device capabilities.
    pub fn info(&self) -> Result<PortInfo, PortError> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: valid port id; `info` is a writable rte_eth_dev_info.
        let rc = unsafe { sys::rte_eth_dev_info_get(self.inner.id, &mut info) };
        check(self.inner.id, "rte_eth_dev_info_get", rc)?;
        Ok(PortInfo {
            // SAFETY: driver_name is NULL or a static string of the driver.
            driver_name: unsafe { cstr_to_string(info.driver_name) },
            if_index: info.if_index,
            min_mtu: info.min_mtu,
            max_mtu: info.max_mtu,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            rss_offloads: info.flow_type_rss_offloads,
            max_rx_desc: info.rx_desc_lim.nb_max,
            max_tx_desc: info.tx_desc_lim.nb_max,
        })
    }

    /// The driver name (e.g. `"net_ring"`); empty if the port vanished.
    pub fn driver_name(&self) -> String {
        self.info().map(|i| i.driver_name).unwrap_or_default()
    }

    /// The port's MAC address.
    pub fn mac_addr(&self) -> Result<[u8; 6], PortError> {
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: valid port id; `addr` is writable.
        let rc = unsafe { sys::rte_eth_macaddr_get(self.inner.id, &mut addr) };
        check(self.inner.id, "rte_eth_macaddr_get", rc)?;
        Ok(addr.addr_bytes)
    }

    /// The NUMA socket of the device, or [`crate::SOCKET_ANY`].
    pub fn socket_id(&self) -> i32 {
        // SAFETY: valid port id.
        unsafe { sys::rte_eth_dev_socket_id(self.inner.id) }
    }

    /// Configures queues (`rte_eth_dev_configure`, `rte_eth_{rx,tx}_queue_setup`) and the MTU.
    /// The port must be stopped and not polled. Fails with [`PortError::TooManyQueues`] if the
    /// device supports fewer queues than requested.
    pub fn configure(&self, conf: &PortConf<'_>) -> Result<(), PortError> {
        let port = self.inner.id;
        let mut ctl = self.inner.control();
        let info = self.info()?;
        if conf.rx_queues > info.max_rx_queues {
            return Err(PortError::TooManyQueues {
                port,
                dir: "rx",
                requested: conf.rx_queues,
                max: info.max_rx_queues,
            });
        }
        if conf.tx_queues > info.max_tx_queues {
            return Err(PortError::TooManyQueues {
                port,
                dir: "tx",
                requested: conf.tx_queues,
                max: info.max_tx_queues,
            });
        }

        let mut eth_conf = sys::rte_eth_conf::default();
        if conf.rss && conf.rx_queues > 1 {
            // SAFETY: returns a constant.
            let wanted = unsafe { sys::svr_rte_eth_rss_hf_ip_tcp_udp() };
            let hf = wanted & info.rss_offloads;
            if hf != 0 {
                eth_conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
                eth_conf.rx_adv_conf.rss_conf.rss_hf = hf;
            }
        }

        // The queues are unusable from here until setup has finished.
        self.inner.rx_queues.store(0, Ordering::Release);
        self.inner.tx_queues.store(0, Ordering::Release);
        // SAFETY: valid port id; `eth_conf` is a fully initialised rte_eth_conf; the port is
        // not polled (documented rule) and control calls are serialised by `ctl`.
        let rc =
            unsafe { sys::rte_eth_dev_configure(port, conf.rx_queues, conf.tx_queues, &eth_conf) };
        check(port, "rte_eth_dev_configure", rc)?;

        let (mut rx_desc, mut tx_desc) = (conf.rx_desc, conf.tx_desc);
        // SAFETY: valid port id; both pointers are writable u16s.
        let rc = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(port, &mut rx_desc, &mut tx_desc) };
        check(port, "rte_eth_dev_adjust_nb_rx_tx_desc", rc)?;

        // From the first queue setup on, the device may refer to this pool: keep it alive
        // until close (also if a later step fails).
        if !ctl
            .pools
            .iter()
            .any(|p| p.as_ptr() == conf.mempool.as_ptr())
        {
            ctl.pools.push(conf.mempool.clone());
        }
        // The queue setup calls take an unsigned socket; SOCKET_ID_ANY (-1) becomes u32::MAX,
        // exactly as in C.
        let socket = self.socket_id() as u32;
        for q in 0..conf.rx_queues {
            // SAFETY: valid port configured with rx_queues queues; a NULL rxconf selects the
            // driver defaults; the pool is live and kept alive (above) until close.
            let rc = unsafe {
                sys::rte_eth_rx_queue_setup(
                    port,
                    q,
                    rx_desc,
                    socket,
                    std::ptr::null(),
                    conf.mempool.as_ptr(),
                )
            };
            check(port, "rte_eth_rx_queue_setup", rc)?;
        }
        for q in 0..conf.tx_queues {
            // SAFETY: valid port configured with tx_queues queues; NULL txconf = defaults.
            let rc =
                unsafe { sys::rte_eth_tx_queue_setup(port, q, tx_desc, socket, std::ptr::null()) };
            check(port, "rte_eth_tx_queue_setup", rc)?;
        }
        if let Some(mtu) = conf.mtu {
            // SAFETY: valid port id.
            let rc = unsafe { sys::rte_eth_dev_set_mtu(port, mtu) };
            // Some drivers (net_memif in 22.11) cannot change the MTU at all; an MTU the port
            // already has needs no change, so only a different one is an error.
            let mut current = 0u16;
            // SAFETY: valid port id; `current` is a writable u16.
            let unchanged = rc == -code::ENOTSUP
                && unsafe { sys::rte_eth_dev_get_mtu(port, &mut current) } == 0
                && current == mtu;
            if !unchanged {
                check(port, "rte_eth_dev_set_mtu", rc)?;
            }
        }
        self.inner
            .rx_queues
            .store(conf.rx_queues, Ordering::Release);
        self.inner
            .tx_queues
            .store(conf.tx_queues, Ordering::Release);
        Ok(())
    }

    /// Starts the port (`rte_eth_dev_start`).
    pub fn start(&self) -> Result<(), PortError> {
        let mut ctl = self.inner.control();
        // SAFETY: valid port id; control calls are serialised by `ctl`.
        let rc = unsafe { sys::rte_eth_dev_start(self.inner.id) };
        check(self.inner.id, "rte_eth_dev_start", rc)?;
        ctl.started = true;
        Ok(())
    }

    /// Stops the port (`rte_eth_dev_stop`). No thread may be polling it.
    pub fn stop(&self) -> Result<(), PortError> {
        let mut ctl = self.inner.control();
        // SAFETY: valid port id; not polled (documented rule); serialised by `ctl`.
        let rc = unsafe { sys::rte_eth_dev_stop(self.inner.id) };
        check(self.inner.id, "rte_eth_dev_stop", rc)?;
        ctl.started = false;
        Ok(())
    }

    /// Stops (if started) and closes the port (`rte_eth_dev_close`), releasing its RX pool.
    /// No thread may be polling it. Bursts on any handle return 0 afterwards; a closed vdev
    /// port disappears (probe it again to reuse the name). Closing twice is a no-op.
    pub fn close(&self) -> Result<(), PortError> {
        let mut ctl = self.inner.control();
        self.inner.shutdown(&mut ctl)
    }

    /// Enables or disables promiscuous mode.
    pub fn promiscuous(&self, on: bool) -> Result<(), PortError> {
        // SAFETY: valid port id.
        let rc = unsafe {
            if on {
                sys::rte_eth_promiscuous_enable(self.inner.id)
            } else {
                sys::rte_eth_promiscuous_disable(self.inner.id)
            }
        };
        check(self.inner.id, "rte_eth_promiscuous_enable/disable", rc)
    }

    /// The link state, without waiting for negotiation (`rte_eth_link_get_nowait`).
    pub fn link(&self) -> Result<LinkStatus, PortError> {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: valid port id; `link` is writable.
        let rc = unsafe { sys::rte_eth_link_get_nowait(self.inner.id, &mut link) };
        check(self.inner.id, "rte_eth_link_get_nowait", rc)?;
        Ok(LinkStatus {
            up: link.link_status() != 0,
            speed_mbps: link.link_speed,
            full_duplex: link.link_duplex() != 0,
        })
    }

    /// The basic counters (`rte_eth_stats_get`).
    pub fn stats(&self) -> Result<PortStats, PortError> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid port id; `s` is writable.
        let rc = unsafe { sys::rte_eth_stats_get(self.inner.id, &mut s) };
        check(self.inner.id, "rte_eth_stats_get", rc)?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Receives into the free room of `burst` (`rte_eth_rx_burst`); returns how many mbufs
    /// arrived. Returns 0 if `queue` is not a configured RX queue. One thread per queue.
    pub fn rx_burst<const N: usize>(&self, queue: u16, burst: &mut MbufBurst<N>) -> usize {
        if queue >= self.inner.rx_queues.load(Ordering::Acquire) {
            return 0;
        }
        let (p, room) = burst.spare();
        let room = u16::try_from(room).unwrap_or(u16::MAX);
        if room == 0 {
            return 0;
        }
        // SAFETY: the port is configured and `queue` is one of its set-up RX queues (the
        // driver's dummy ops return 0 while it is stopped); `p` has `room` writable slots.
        let n = unsafe { sys::svr_rte_eth_rx_burst(self.inner.id, queue, p, room) };
        let n = usize::from(n.min(room));
        // SAFETY: rx_burst wrote `n` valid, owned mbuf pointers at the start of the room.
        unsafe { burst.commit(n) };
        n
    }

    /// Sends the queued mbufs of `buf` (`rte_eth_tx_burst`). The accepted prefix now belongs
    /// to the driver; the rest stays in `buf`. Returns how many were accepted (0 if `queue` is
    /// not a configured TX queue). One thread per queue.
    pub fn tx_burst<const N: usize>(&self, queue: u16, buf: &mut TxBuffer<N>) -> usize {
        if queue >= self.inner.tx_queues.load(Ordering::Acquire) {
            return 0;
        }
        let (p, n) = buf.filled();
        let n = u16::try_from(n).unwrap_or(u16::MAX);
        if n == 0 {
            return 0;
        }
        // SAFETY: configured port and set-up TX queue; `p[..n]` are owned, valid mbufs.
        let sent = unsafe { sys::svr_rte_eth_tx_burst(self.inner.id, queue, p, n) };
        let sent = usize::from(sent.min(n));
        // SAFETY: the driver took ownership of exactly the first `sent` mbufs.
        unsafe { buf.forget_front(sent) };
        sent
    }
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("id", &self.inner.id)
            .field("rx_queues", &self.inner.rx_queues.load(Ordering::Relaxed))
            .field("tx_queues", &self.inner.tx_queues.load(Ordering::Relaxed))
            .finish()
    }
}
