//! Start-up and shut-down: config → EAL → mempool → ports → rings → workers and slow path.
//!
//! Every failure here is a [`StartupError`] whose message is one line naming the config field
//! or device at fault; `main` prints it and exits non-zero. Nothing is left running.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use arc_swap::ArcSwap;
use dpdk_ffi::{Eal, Mempool, Port, PortConf, Ring, RingMode, TxBuffer};
use fastpath::forward::{LocalInfo, PortAddrs};
use fastpath::route::{IpPrefix, Route, RouteTable};
use fastpath::time::Instant;
use fastpath::wire::ethernet::EthernetAddress;
use slowpath::{SlowPath, SlowPathConfig, StaticNeighbor};
use svr_config::{Config, ConfigError, Device, Node};

use crate::counters::WorkerCounters;
use crate::slow::{Reporter, SlowThread};
use crate::worker::{PortSlot, Worker};
use fastpath::svr_path::SvrWorker;
use rand::RngCore;

/// Session-move events queued from the workers to the slow path between two of its loops.
const MOVE_EVENTS_QUEUED: usize = 1024;

/// Why svrd could not start. Each message is one line that names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("no configuration given: use --config FILE to run, --bootstrap FILE to start from a conductor, or --check FILE to validate")]
    NoConfig,
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("DPDK EAL failed to start: {0}")]
    Eal(String),
    #[error("{path}: cannot open device \"{device}\": {reason}")]
    Device {
        path: String,
        device: String,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Port { path: String, reason: String },
    #[error("cannot create the mbuf pool ({n} mbufs): {reason}")]
    Mempool { n: u32, reason: String },
    #[error("cannot create ring {name}: {reason}")]
    Ring { name: String, reason: String },
    #[error("core-map: cannot launch on lcore {lcore}: {reason}")]
    Launch { lcore: u32, reason: String },
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("{path}: {reason}")]
    Pki { path: String, reason: String },
    #[error("{path}: cannot let capture tools attach: {source}")]
    Pdump {
        path: String,
        source: dpdk_ffi::PdumpError,
    },
    #[error("{path}: cannot register the DPDK telemetry commands: {source}")]
    Telemetry {
        path: String,
        source: dpdk_ffi::TelemetryError,
    },
    /// The control socket or metrics endpoint could not be set up (`path` is the config
    /// field).
    #[error("{path}: {reason}")]
    Management { path: String, reason: String },
}

/// `svrd --check`: parse, validate, and check this host can run it (CPUs, files, hugepage
/// mount and free memory, a driver for every vdev, certificates); start nothing.
pub fn check(path: &Path) -> Result<String, StartupError> {
    let cfg = Config::load(path)?;
    cfg.check_host()?;
    cfg.check_hugepages()?;
    cfg.check_vdev_drivers(&dpdk_vdev_drivers())?;
    if cfg.authority.enhanced_security_key_management {
        crate::zt::load_credentials(&cfg)?;
    }
    let (router, node) = cfg.local();
    Ok(format!(
        "{}: configuration is valid (router {}, node {}, {} interfaces, {} workers)",
        path.display(),
        router.name,
        node.name,
        node.device_interface.len(),
        node.core_map.workers.len()
    ))
}

/// DPDK virtual-device driver names this process could use: the `PMD_INFO_STRING` that every DPDK driver
/// embeds (what `dpdk-pmdinfo.py` reads) in the shared DPDK libraries this process has
/// mapped and in the plugin directory beside `librte_eal` (`<libdir>/dpdk/pmds-*`, where a
/// shared DPDK keeps the drivers its EAL loads at start), or, with a static DPDK (no
/// `librte_eal` mapped), in the executable itself. Nothing is started. Empty when none is
/// found, and then no vdev is checked.
fn dpdk_vdev_drivers() -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let is_rte = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("librte_"))
    };
    let mut files: Vec<PathBuf> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(PathBuf::from)
        .filter(|p| is_rte(p))
        .collect();
    files.sort();
    files.dedup();
    let eal = files.iter().find(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("librte_eal."))
    });
    match eal.and_then(|p| p.parent()).map(|d| d.join("dpdk")) {
        Some(dpdk) => {
            let dirs = std::fs::read_dir(dpdk).into_iter().flatten().flatten();
            for d in dirs.filter(|d| d.file_name().to_string_lossy().starts_with("pmds-")) {
                let pmds = std::fs::read_dir(d.path()).into_iter().flatten().flatten();
                files.extend(
                    pmds.map(|f| f.path())
                        .filter(|f| is_rte(f) && f.extension().is_some_and(|e| e == "so")),
                );
            }
        }
        None => files.push(PathBuf::from("/proc/self/exe")),
    }
    let mut names: Vec<String> = files
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .flat_map(|bytes| pmd_info_names(&bytes))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The driver names of the `PMD_INFO_STRING= {"name": "net_af_packet", ...}` strings in a
/// binary (each a NUL-terminated JSON object after the marker), leaving out PCI drivers.
fn pmd_info_names(bytes: &[u8]) -> Vec<String> {
    const MARKER: &[u8] = b"PMD_INFO_STRING=";
    let mut names = Vec::new();
    let mut rest = bytes;
    while let Some(at) = find(rest, MARKER) {
        rest = &rest[at + MARKER.len()..];
        let json = &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())];
        // A driver with PCI ids binds PCI devices only; the vdev bus never offers it one.
        if let (Some(name), false) = (json_name(json), has_pci_ids(json)) {
            names.push(name);
        }
    }
    names
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = hay.get(from..)?.iter().position(|&b| b == needle[0]) {
        let at = from + i;
        if hay.get(at..at + needle.len()) == Some(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Whether a PMD info object has a non-empty `"pci_ids"` list.
fn has_pci_ids(json: &[u8]) -> bool {
    let Some(at) = find(json, b"\"pci_ids\"") else {
        return false;
    };
    let rest = String::from_utf8_lossy(&json[at + 9..]);
    let rest = rest.trim_start().trim_start_matches(':').trim_start();
    rest.strip_prefix('[')
        .is_some_and(|r| !r.trim_start().starts_with(']'))
}

/// The `"name"` value of a flat JSON object, if it is a plausible driver name.
fn json_name(json: &[u8]) -> Option<String> {
    let at = find(json, b"\"name\"")?;
    let rest = std::str::from_utf8(&json[at + 6..]).ok()?;
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let name = &rest[..rest.find('"')?];
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then(|| name.to_owned())
}

/// Entries of the two punt rings (worker → slow path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PuntRingSizes {
    /// BFD and key exchange of the peer paths, served first.
    pub control: u32,
    /// Everything else punted (ARP, ND, ICMP, held packets, ...).
    pub other: u32,
}

/// Sizes the punt rings so that punted mbufs never hold more than an eighth of the pool: the
/// two rings plus the one burst the slow-path thread has in hand (it copies what it keeps
/// and frees every punted mbuf before it dequeues the next burst). The rest of the pool stays
/// for RX descriptors, TX and the data path, however long a punt flood lasts. The control
/// ring is small on purpose: BFD and key exchange are a few packets a second per peer path,
/// and a short queue bounds how stale a BFD packet can be when the slow path reads it.
pub fn punt_ring_sizes(n_mbufs: u32) -> PuntRingSizes {
    const BURST: u32 = dpdk_ffi::BURST as u32;
    let share = n_mbufs / 8;
    let control = (share / 4).clamp(BURST, 256);
    let other = share.saturating_sub(control + BURST).max(BURST);
    PuntRingSizes { control, other }
}

/// An opened, configured and started port, with what the data path needs to know about it.
struct OpenPort {
    name: String,
    port: Port,
    mac: EthernetAddress,
    /// The kernel interface of a `net_af_packet` port (its `iface=`), whose ring drops svrd
    /// reads itself (`dpdk_ffi::af_packet`).
    kernel_iface: Option<String>,
}

/// `iface=NAME` of `net_af_packet` devargs.
fn af_packet_iface(devargs: &str) -> Option<String> {
    let mut parts = devargs.split(',');
    if !parts.next()?.starts_with("net_af_packet") {
        return None;
    }
    parts
        .find_map(|kv| kv.strip_prefix("iface="))
        .map(str::to_string)
}

/// The kernel interface index of `iface` (in svrd's network namespace).
fn ifindex(iface: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn open_ports(
    eal: &Eal,
    node: &Node,
    npath: &str,
    mempool: &Mempool,
    queues: u16,
) -> Result<Vec<OpenPort>, StartupError> {
    let mut ports = Vec::new();
    for (i, ifc) in node.device_interface.iter().enumerate() {
        let ipath = format!("{npath}.device-interface[{i}]");
        let (field, device, dev_name) = match &ifc.device {
            Device::Vdev(devargs) => {
                let name = devargs.split(',').next().unwrap_or(devargs).to_string();
                (format!("{ipath}.vdev"), devargs.clone(), name)
            }
            Device::Pci(addr) => (format!("{ipath}.pci-address"), addr.clone(), addr.clone()),
        };
        if let Device::Vdev(devargs) = &ifc.device {
            eal.probe_device(devargs)
                .map_err(|e| StartupError::Device {
                    path: field.clone(),
                    device: device.clone(),
                    reason: e.to_string(),
                })?;
        }
        let port = Port::by_name(&dev_name).map_err(|e| StartupError::Device {
            path: field.clone(),
            device: device.clone(),
            reason: format!("no DPDK port of that name ({e})"),
        })?;
        let conf = PortConf {
            rx_queues: queues,
            tx_queues: queues,
            rx_desc: 1024,
            tx_desc: 1024,
            mempool,
            rss: queues > 1,
            mtu: Some(ifc.mtu),
        };
        port.configure(&conf).map_err(|e| StartupError::Port {
            path: ipath.clone(),
            reason: format!("cannot configure port {dev_name}: {e}"),
        })?;
        port.start().map_err(|e| StartupError::Port {
            path: ipath.clone(),
            reason: format!("cannot start port {dev_name}: {e}"),
        })?;
        // The port's MAC is the router's; frames to other unicast MACs are dropped in classify.
        let _ = port.promiscuous(true);
        let mac = EthernetAddress(port.mac_addr().map_err(|e| StartupError::Port {
            path: ipath.clone(),
            reason: format!("cannot read MAC of {dev_name}: {e}"),
        })?);
        log::info!(
            "interface {} on {} (port {}, {}), MAC {mac}",
            ifc.name,
            device,
            port.id(),
            port.driver_name()
        );
        let kernel_iface = match &ifc.device {
            Device::Vdev(devargs) => af_packet_iface(devargs),
            Device::Pci(_) => None,
        };
        ports.push(OpenPort {
            name: ifc.name.clone(),
            port,
            kernel_iface,
            mac,
        });
    }
    Ok(ports)
}

/// The data-path view of the node: addresses per port, routes (connected + configured).
type Tables = (LocalInfo, Vec<Route>, Vec<StaticNeighbor>);

fn tables(node: &Node, npath: &str, ports: &[OpenPort]) -> Result<Tables, StartupError> {
    let mut addrs = Vec::new();
    for (ifc, p) in node.device_interface.iter().zip(ports) {
        addrs.push(PortAddrs::new(
            p.port.id(),
            p.mac,
            ifc.address.iter().map(|a| (a.addr, a.prefix_len)),
            ifc.mtu,
        ));
    }
    let ids: Vec<u16> = ports.iter().map(|p| p.port.id()).collect();
    let (routes, neighbors) = routes_of(node, npath, &ids)?;
    Ok((LocalInfo::new(addrs), routes, neighbors))
}

/// The routes (connected, then `route`) and static neighbours of `node`, whose
/// device interfaces have port ids `ids` (in order). At start and on a reload.
pub fn routes_of(
    node: &Node,
    npath: &str,
    ids: &[u16],
) -> Result<(Vec<Route>, Vec<StaticNeighbor>), StartupError> {
    let port_of = |ifc: &str| {
        node.device_interface
            .iter()
            .position(|d| d.name == ifc)
            .and_then(|i| ids.get(i).copied())
            .unwrap_or(u16::MAX)
    };
    let mut routes = Vec::new();
    for (i, (ifc, &id)) in node.device_interface.iter().zip(ids).enumerate() {
        for (j, a) in ifc.address.iter().enumerate() {
            // The connected route of an interface address: its network, directly reachable.
            let prefix =
                IpPrefix::new_masked(a.addr, a.prefix_len).map_err(|e| StartupError::Port {
                    path: format!("{npath}.device-interface[{i}].address[{j}]"),
                    reason: e.to_string(),
                })?;
            routes.push(Route {
                prefix,
                next_hop: None,
                port: id,
            });
        }
    }
    for (i, r) in node.route.iter().enumerate() {
        let prefix =
            IpPrefix::new(r.prefix_addr, r.prefix_len).map_err(|e| StartupError::Port {
                path: format!("{npath}.route[{i}].prefix"),
                reason: e.to_string(),
            })?;
        routes.push(Route {
            prefix,
            next_hop: r.next_hop,
            port: port_of(&r.interface),
        });
    }
    let neighbors = node
        .neighbor
        .iter()
        .map(|n| StaticNeighbor {
            port: port_of(&n.interface),
            addr: n.address,
            mac: EthernetAddress(n.mac),
        })
        .collect();
    Ok((routes, neighbors))
}

fn slowpath_config(
    node: &Node,
    ports: &[OpenPort],
    routes: Vec<Route>,
    static_neighbors: Vec<StaticNeighbor>,
) -> SlowPathConfig {
    let interfaces = node
        .device_interface
        .iter()
        .zip(ports)
        .map(|(ifc, p)| slowpath::Interface {
            port: p.port.id(),
            name: ifc.name.clone(),
            mac: p.mac,
            ipv4: ifc
                .address
                .iter()
                .filter_map(|a| match a.addr {
                    IpAddr::V4(v4) => Some((v4, a.prefix_len)),
                    IpAddr::V6(_) => None,
                })
                .collect(),
            ipv6: ifc
                .address
                .iter()
                .filter_map(|a| match a.addr {
                    IpAddr::V6(v6) => Some((v6, a.prefix_len)),
                    IpAddr::V4(_) => None,
                })
                .collect(),
            mtu: ifc.mtu,
        })
        .collect();
    SlowPathConfig {
        interfaces,
        routes,
        static_neighbors,
        timers: Default::default(),
    }
}

/// Runs the appliance until SIGINT/SIGTERM.
pub fn run(path: &Path) -> Result<(), StartupError> {
    let cfg = Config::load(path)?;
    cfg.check_host()?;
    let (router, node) = cfg.local();
    let npath = cfg.local_path();
    cfg.check_hugepages()?;
    // Certificates before anything starts: a wrong file or name fails fast.
    let creds = if cfg.authority.enhanced_security_key_management {
        Some(crate::zt::load_credentials(&cfg)?)
    } else {
        None
    };

    let stop = Arc::new(AtomicBool::new(false));
    let dump = Arc::new(AtomicBool::new(false));
    // SIGHUP: reload the configuration file (the slow-path thread does it).
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
        .map_err(StartupError::Signals)?;
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(StartupError::Signals)?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&dump))
        .map_err(StartupError::Signals)?;

    let eal =
        Eal::init(&node.eal.args(node, "svrd")).map_err(|e| StartupError::Eal(e.to_string()))?;
    log::info!(
        "DPDK {} started for router {} node {}",
        dpdk_ffi::version(),
        router.name,
        node.name
    );
    // With pdump the EAL keeps its hugepage files (no --huge-unlink) so that capture tools
    // can map them; this guard removes them when run() returns, so a clean exit (or a
    // start-up error) gives the pages back even while svrd's memory is still allocated.
    let _huge_files = (node.eal.hugepages && node.eal.pdump).then(|| HugepageFiles {
        dirs: match &node.eal.huge_dir {
            Some(d) => vec![d.clone()],
            None => svr_config::hugetlbfs_mounts(
                &std::fs::read_to_string("/proc/mounts").unwrap_or_default(),
            ),
        },
        prefix: node.eal.file_prefix.clone(),
    });
    // dpdk-dumpcap attaches as a secondary process (same file-prefix) once this has run.
    if node.eal.pdump {
        dpdk_ffi::pdump::init(&eal).map_err(|source| StartupError::Pdump {
            path: format!("{npath}.eal.pdump"),
            source,
        })?;
        log::info!(
            "packet capture on: dpdk-dumpcap --file-prefix {} -i <port>",
            node.eal.file_prefix
        );
    }
    let n_mbufs = node.mempool_mbufs;
    let mempool = Arc::new(
        Mempool::pktmbuf("svrd_mbufs", n_mbufs, 256, dpdk_ffi::DEFAULT_DATA_ROOM, -1).map_err(
            |e| StartupError::Mempool {
                n: n_mbufs,
                reason: e.to_string(),
            },
        )?,
    );
    let workers_cfg = &node.core_map.workers;
    let n_workers = workers_cfg.len() as u16;
    let ports = open_ports(&eal, node, &npath, &mempool, n_workers)?;

    let (local, routes, static_neighbors) = tables(node, &npath, &ports)?;
    let local = Arc::new(local);
    let route_table = Arc::new(ArcSwap::from_pointee(RouteTable::new(
        routes.iter().cloned(),
    )));
    let slow = SlowPath::new(
        slowpath_config(node, &ports, routes, static_neighbors),
        Instant::from_nanos(0),
    );
    let neighbors = Arc::new(ArcSwap::from_pointee(slow.neighbors()));

    let ring_err = |name: &str| {
        let name = name.to_string();
        move |e: dpdk_ffi::RingError| StartupError::Ring {
            name: name.clone(),
            reason: e.to_string(),
        }
    };
    let sizes = punt_ring_sizes(n_mbufs);
    let punt_mode = RingMode {
        single_producer: n_workers == 1,
        single_consumer: true,
    };
    let punt =
        Arc::new(Ring::create("svrd_punt", sizes.other, punt_mode).map_err(ring_err("svrd_punt"))?);
    let punt_control = Arc::new(
        Ring::create("svrd_punt_bfd", sizes.control, punt_mode)
            .map_err(ring_err("svrd_punt_bfd"))?,
    );
    log::info!(
        "punt rings: {} entries for BFD and key exchange, {} for the rest ({} mbufs in the pool)",
        sizes.control,
        sizes.other,
        n_mbufs
    );
    let mut inject = Vec::new();
    let mut counters = Vec::new();
    for w in 0..n_workers {
        let name = format!("svrd_inject{w}");
        inject.push(Arc::new(
            Ring::create(
                &name,
                1024,
                RingMode {
                    single_producer: true,
                    single_consumer: true,
                },
            )
            .map_err(ring_err(&name))?,
        ));
        counters.push(Arc::new(WorkerCounters::default()));
    }

    let reporter = Arc::new(Reporter {
        router: router.name.clone(),
        ports: ports
            .iter()
            .map(|p| (p.name.clone(), p.port.clone()))
            .collect(),
        workers: counters.clone(),
        ring_drops: ports
            .iter()
            .map(|p| {
                let index = p.kernel_iface.as_deref().and_then(ifindex);
                (index, AtomicU64::new(0))
            })
            .collect(),
    });

    let svr = crate::svr::build(&cfg).map(Arc::new);
    // Enhanced security key management: identity, trust anchor, one key state machine per
    // peer and one BFD session per peer path, driven by the slow-path thread (whose clock
    // starts at 0 when it starts).
    let zt = match (&svr, creds) {
        (Some(s), Some(creds)) => Some(crate::zt::ZeroTrust::new(
            &cfg,
            creds,
            Arc::clone(s),
            Instant::from_nanos(0),
        )?),
        _ => None,
    };
    // DPDK telemetry: the /svr/ commands read what the slow-path thread publishes.
    let telemetry = if node.eal.telemetry {
        let published = Arc::new(crate::telemetry::Published::default());
        crate::telemetry::register(
            crate::telemetry::Info {
                router: router.name.clone(),
                node: node.name.clone(),
                ports: ports.iter().map(|p| p.name.clone()).collect(),
                workers: workers_cfg.len(),
                zero_trust: zt.is_some(),
            },
            Arc::clone(&published),
            svr.clone(),
        )
        .map_err(|source| StartupError::Telemetry {
            path: format!("{npath}.eal.telemetry"),
            source,
        })?;
        log::info!(
            "telemetry on: dpdk-telemetry.py -f {} (commands /svr/info, /svr/peers, /svr/stats, /svr/sessions)",
            node.eal.file_prefix
        );
        Some(published)
    } else {
        None
    };
    let clock = Arc::new(AtomicU64::new(0));
    let (moves_tx, moves) = std::sync::mpsc::sync_channel(MOVE_EVENTS_QUEUED);

    // The management plane: control socket (and metrics), reading published state only.
    let view = Arc::new(ArcSwap::from_pointee(crate::mgmt::SlowView::default()));
    let (actions_tx, actions_rx) = std::sync::mpsc::sync_channel(crate::mgmt::ACTION_QUEUE);
    let config_text = std::fs::read_to_string(path).unwrap_or_default();
    let shown = Arc::new(ArcSwap::from_pointee(crate::mgmt::ShownConfig {
        path: path.to_path_buf(),
        config: crate::mgmt::elided_config(&config_text),
        revision: 1,
    }));
    let mgmt = Arc::new(crate::mgmt::Mgmt {
        router: router.name.clone(),
        node: node.name.clone(),
        key_management: cfg.authority.enhanced_security_key_management,
        started: std::time::Instant::now(),
        reporter: Arc::clone(&reporter),
        svr: svr.clone(),
        view: Arc::clone(&view),
        actions: actions_tx,
        clock: Arc::clone(&clock),
        config: Arc::clone(&shown),
        counters: Default::default(),
    });
    let mpath = format!("{npath}.management");
    if let Some(a) = node.management.metrics_listen {
        if !crate::mgmt::is_loopback(&a) {
            log::warn!("{mpath}.metrics-listen: {a} is not a loopback address: /metrics is reachable from the network");
        }
    }
    let mgmt_threads = crate::mgmt::start(
        mgmt,
        node.management.control_socket_path(&node.eal),
        &format!("{mpath}.control-socket"),
        node.management.metrics_listen,
        &format!("{mpath}.metrics-listen"),
        Arc::clone(&stop),
    )?;

    for (w, wc) in workers_cfg.iter().enumerate() {
        // Each worker's CSPRNG (payload keys, UUIDs, metadata IVs) is seeded from the OS once.
        let svr_part = svr.as_ref().map(|s| {
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            let sw = SvrWorker::new(s, seed);
            seed = [0; 32];
            std::hint::black_box(&mut seed);
            (Arc::clone(s), sw)
        });
        let worker = Worker {
            queue: w as u16,
            ports: ports
                .iter()
                .map(|p| PortSlot {
                    port: p.port.clone(),
                    mac: p.mac,
                    tx: TxBuffer::new(),
                })
                .collect(),
            local: Arc::clone(&local),
            routes: Arc::clone(&route_table),
            neighbors: Arc::clone(&neighbors),
            punt: Arc::clone(&punt),
            punt_control: Arc::clone(&punt_control),
            inject: Arc::clone(&inject[w]),
            counters: Arc::clone(&counters[w]),
            stop: Arc::clone(&stop),
            backoff: node.core_map.idle_backoff,
            svr: svr_part,
            clock: Arc::clone(&clock),
            moves: moves_tx.clone(),
        };
        if let Err(e) = eal.launch(wc.lcore, move || worker.run()) {
            stop.store(true, Relaxed);
            eal.wait_all();
            return Err(StartupError::Launch {
                lcore: wc.lcore,
                reason: e.to_string(),
            });
        }
    }

    let slow_thread = SlowThread {
        slow,
        punt: Arc::clone(&punt),
        punt_control: Arc::clone(&punt_control),
        inject: inject.clone(),
        mempool: Arc::clone(&mempool),
        neighbors,
        stop: Arc::clone(&stop),
        dump,
        reporter: Arc::clone(&reporter),
        svr,
        zt,
        clock,
        moves,
        telemetry,
        view,
        actions: actions_rx,
        reload: crate::reload::Reloader::new(
            cfg.clone(),
            path.to_path_buf(),
            hup,
            shown,
            ports.iter().map(|p| p.port.id()).collect(),
            Arc::clone(&route_table),
        ),
    };
    println!(
        "svrd: forwarding: router {} node {}, {} ports, {} workers on lcores {:?}",
        router.name,
        node.name,
        ports.len(),
        n_workers,
        workers_cfg.iter().map(|w| w.lcore).collect::<Vec<_>>()
    );
    let report = if node.core_map.slowpath_lcore == node.core_map.main_lcore {
        slow_thread.run()
    } else {
        let (tx, rx) = std::sync::mpsc::channel();
        eal.launch(node.core_map.slowpath_lcore, move || {
            let _ = tx.send(slow_thread.run());
            0
        })
        .map_err(|e| StartupError::Launch {
            lcore: node.core_map.slowpath_lcore,
            reason: e.to_string(),
        })?;
        while !stop.load(Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        rx.recv().unwrap_or_default()
    };
    eal.wait_all();
    if node.eal.pdump {
        let _ = dpdk_ffi::pdump::uninit(&eal);
    }
    mgmt_threads.join();
    for p in &ports {
        let _ = p.port.stop();
    }
    print!("{report}");
    for p in &ports {
        let _ = p.port.close();
    }
    drop(inject);
    drop(punt);
    drop(punt_control);
    println!("svrd: stopped");
    Ok(())
}

/// The hugepage files of an EAL run with `--file-prefix prefix` and without
/// `--huge-unlink` (`<hugetlbfs>/<prefix>map_<n>`), removed on drop. DPDK leaves the files of
/// memory still allocated at exit (svrd's pools live until the process ends), and a file
/// holds its pages until it is removed; unlinking a mapped file is harmless (the pages go back
/// when the last mapping goes). A `SIGKILL`ed svrd cannot do this: DPDK removes such stale
/// files when the next process with the same prefix starts.
struct HugepageFiles {
    dirs: Vec<String>,
    prefix: String,
}

impl HugepageFiles {
    /// Whether `name` is one of this prefix's page files: `<prefix>map_<digits>`.
    fn is_ours(&self, name: &str) -> bool {
        name.strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix("map_"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }
}

impl Drop for HugepageFiles {
    fn drop(&mut self) {
        let mut removed = 0usize;
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                if name.to_str().is_some_and(|n| self.is_ours(n))
                    && std::fs::remove_file(e.path()).is_ok()
                {
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            log::info!(
                "removed {removed} hugepage files of file-prefix {}",
                self.prefix
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hugepage_files_of_this_prefix_only() {
        let h = HugepageFiles {
            dirs: vec![],
            prefix: "router-a".into(),
        };
        assert!(h.is_ours("router-amap_0") && h.is_ours("router-amap_117"));
        for other in [
            "router-abmap_0",
            "router-amap_",
            "router-amap_1x",
            "router-bmap_0",
            "rtemap_0",
            "router-a",
        ] {
            assert!(!h.is_ours(other), "{other}");
        }
    }

    #[test]
    fn af_packet_interface_from_devargs() {
        let f = af_packet_iface;
        assert_eq!(
            f("net_af_packet0,iface=ra-wan1").as_deref(),
            Some("ra-wan1")
        );
        assert_eq!(
            f("net_af_packet1,qpairs=2,iface=eth0,blocksz=4096").as_deref(),
            Some("eth0")
        );
        assert_eq!(f("net_af_packet0"), None);
        assert_eq!(f("net_memif0,iface=x"), None);
        assert_eq!(ifindex("lo"), Some(1));
        assert_eq!(ifindex("no-such-if/../x"), None);
    }

    #[test]
    fn driver_names_from_pmd_info_strings() {
        let bin = b"\x7fELF..\0PMD_INFO_STRING= {\"name\": \"net_af_packet\", \"params\": \"iface=<string>\", \"pci_ids\": []}\0PMD_INFO_STRING= {\"name\": \"net_i40e\", \"pci_ids\": [[32902, 5522, 65535, 65535] ]}\0junk PMD_INFO_STRING= {\"name\" : \"net_virtio_user\"}\0PMD_INFO_STRING= {\"name\": \"Bad Name\"}\0PMD_INFO_STRING=";
        assert_eq!(
            pmd_info_names(bin),
            vec!["net_af_packet", "net_virtio_user"]
        );
        assert!(pmd_info_names(b"").is_empty());
        assert!(pmd_info_names(b"PMD_INFO_STRING= {\"name\": \"net_x").is_empty());
    }

    #[test]
    fn punt_rings_hold_at_most_an_eighth_of_the_pool() {
        // The config allows 1024..=1048575 mbufs.
        for n in [1024, 1500, 4095, 8191, 65535, 1_048_575] {
            let s = punt_ring_sizes(n);
            let held = s.control + s.other + dpdk_ffi::BURST as u32;
            assert!(held <= n / 8, "{n}: {s:?}");
            assert!(s.control >= 32 && s.control <= 256, "{n}: {s:?}");
            assert!(s.other >= 32, "{n}: {s:?}");
        }
        assert_eq!(
            punt_ring_sizes(8191),
            PuntRingSizes {
                control: 255,
                other: 736
            }
        );
    }
}
