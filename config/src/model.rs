//! The validated configuration. Every value here has passed the rules in the crate docs;
//! defaults are filled in.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A whole, validated configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The router this svrd runs as (`local-router`); always names a router of `authority`.
    pub local_router: String,
    /// The node of that router this svrd runs as (`local-node`, or the router's only node).
    pub local_node: String,
    /// The authority: every router, the same for all of them.
    pub authority: Authority,
}

/// `authority`: the trust domain shared by all routers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// `name`.
    pub name: String,
    /// `enhanced-security-key-management`: key exchange over BFD, per-pair peer keys.
    pub enhanced_security_key_management: bool,
    /// `security-key-management`: algorithm and timers of the key hierarchy.
    pub security_key_management: SecurityKeyManagement,
    /// `trusted-ca-certificate`: the authority's root CA (PEM). Present whenever enhanced
    /// security key management is on. [`Config::load`](crate::Config::load) makes a relative
    /// path relative to the config file's directory; [`Config::parse`](crate::Config::parse)
    /// keeps it as written.
    pub trusted_ca_certificate: Option<PathBuf>,
    /// `certificate-revocation-list`: an optional CRL file (PEM, one or more `X509 CRL`
    /// blocks, or one DER CRL) of the authority's CAs; a peer whose certificate (or
    /// intermediate) it lists is refused. Only with enhanced security key management; a
    /// relative path is resolved like `trusted-ca-certificate`.
    pub certificate_revocation_list: Option<PathBuf>,
    /// `service`: the SVR services (destination prefixes) and the routers that serve them,
    /// in file order.
    pub service: Vec<Service>,
    /// `service-policy`: SLA and path-choice policies that services name, in file order.
    pub service_policy: Vec<crate::ServicePolicy>,
    /// `router`: every router of the authority, in file order.
    pub router: Vec<Router>,
}

/// One `authority.service[]` entry: an SVR service, the destination prefixes that make it
/// up, and the egress router that serves it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Service {
    /// `name`, unique in the authority.
    pub name: String,
    /// `tenant`: the tenant the service belongs to.
    pub tenant: String,
    /// `prefix`: network address (host bits zero) and length of each destination prefix;
    /// at least one, and no prefix is in two services.
    pub prefix: Vec<(IpAddr, u8)>,
    /// `router`: the name of the egress router that serves the service; always a router of
    /// the authority.
    pub router: String,
    /// `application-name`.
    pub application_name: Option<String>,
    /// `service-policy`: the name of an `authority.service-policy`; `None` = SSR's
    /// defaults (no SLA filter, best effort, sessions never move).
    pub service_policy: Option<String>,
}

impl Service {
    /// Is `ip` inside one of the service's prefixes?
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.prefix
            .iter()
            .any(|&(net, len)| crate::net::contains(net, len, ip))
    }
}

/// `authority.security-key-management`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityKeyManagement {
    /// `key-exchange-algorithm`.
    pub key_exchange_algorithm: KeyExchangeAlgorithm,
    /// `payload-key-rekey-interval`.
    pub payload_key_rekey_interval: RekeyInterval,
    /// `peer-key-rekey-interval`.
    pub peer_key_rekey_interval: RekeyInterval,
    /// `peer-key-retransmit-interval`.
    pub peer_key_retransmit_interval: Duration,
    /// `peer-key-timeout`.
    pub peer_key_timeout: Duration,
    /// `test-time-scale`: **test only**. The key state machines run this many times faster
    /// than the wall clock (every interval above, and the 30 s switch and grace periods,
    /// divided by it). 1, the default, is the only production value.
    pub test_time_scale: u32,
}

impl Default for SecurityKeyManagement {
    fn default() -> Self {
        SecurityKeyManagement {
            key_exchange_algorithm: KeyExchangeAlgorithm::X25519,
            payload_key_rekey_interval: RekeyInterval::Hours(24),
            peer_key_rekey_interval: RekeyInterval::Hours(24),
            peer_key_retransmit_interval: Duration::from_secs(30),
            peer_key_timeout: Duration::from_secs(3600),
            test_time_scale: 1,
        }
    }
}

/// The Diffie-Hellman flavour of the peer-key exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyExchangeAlgorithm {
    /// `x25519` (RFC 7748), the default.
    X25519,
    /// `dh-modp-4096`: finite-field DH, RFC 3526 group 16.
    DhModp4096,
}

impl KeyExchangeAlgorithm {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyExchangeAlgorithm::X25519 => "x25519",
            KeyExchangeAlgorithm::DhModp4096 => "dh-modp-4096",
        }
    }
}

/// A rekey interval: a number of hours, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RekeyInterval {
    /// Rekey every so many hours (1-720).
    Hours(u16),
    /// Never rekey on a timer.
    Never,
}

impl RekeyInterval {
    /// The interval as a duration, `None` for never.
    pub fn as_duration(self) -> Option<Duration> {
        match self {
            RekeyInterval::Hours(h) => Some(Duration::from_secs(u64::from(h) * 3600)),
            RekeyInterval::Never => None,
        }
    }
}

/// One `authority.router[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    /// `name`, unique in the authority.
    pub name: String,
    /// `peering-common-name`: the certificate identity; present whenever enhanced security
    /// key management is on.
    pub peering_common_name: Option<String>,
    /// `location`.
    pub location: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `inter-node-security`: the security policy between this router's nodes.
    pub inter_node_security: Option<String>,
    /// `bfd`: peer-path liveness timers.
    pub bfd: Bfd,
    /// `svr-test-metadata-key`: **test mode only**, a static metadata key used instead of
    /// the key exchange. Only allowed while enhanced security key management is off.
    pub svr_test_metadata_key: Option<TestMetadataKey>,
    /// `peer`: the routers this router runs SVR peer paths to, in file order.
    pub peer: Vec<Peer>,
    /// `node`: one or more nodes, in file order.
    pub node: Vec<Node>,
}

impl Router {
    /// The peer entry for router `name`.
    pub fn peer(&self, name: &str) -> Option<&Peer> {
        self.peer.iter().find(|p| p.router == name)
    }

    /// Test-key mode: this router's metadata key for metadata from router `peer` (the key
    /// `peer` seals to us with): the `svr-test-metadata-key` of our peer entry for it, else
    /// our router-wide one.
    pub fn test_key_for(&self, peer: &str) -> Option<&TestMetadataKey> {
        self.peer(peer)
            .and_then(|p| p.svr_test_metadata_key.as_ref())
            .or(self.svr_test_metadata_key.as_ref())
    }
}

/// `router[].svr-test-metadata-key`: a static metadata key for **tests only**, in place of
/// the key exchange of enhanced security key management.
///
/// The key bytes are zeroized when the value is dropped, `Debug` shows them as
/// `<redacted>`, and `==` compares them without an early exit. Copying an array out of a
/// field makes a copy that is not zeroized: borrow instead.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct TestMetadataKey {
    /// `rekey-index`: the key's index, sent in the Security Identifier TLV (1-4294967295).
    pub rekey_index: u32,
    /// `encryption-key`: 32 bytes, the AES-256 key of the metadata payload TLVs.
    pub encryption_key: [u8; 32],
    /// `hmac-key`: 48 bytes, the HMAC-SHA384 key of metadata packets.
    pub hmac_key: [u8; 48],
}

impl fmt::Debug for TestMetadataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestMetadataKey")
            .field("rekey_index", &self.rekey_index)
            .field("encryption_key", &format_args!("<redacted>"))
            .field("hmac_key", &format_args!("<redacted>"))
            .finish()
    }
}

impl PartialEq for TestMetadataKey {
    fn eq(&self, other: &Self) -> bool {
        let diff = self
            .encryption_key
            .iter()
            .chain(&self.hmac_key)
            .zip(other.encryption_key.iter().chain(&other.hmac_key))
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        (self.rekey_index == other.rekey_index) & (diff == 0)
    }
}

impl Eq for TestMetadataKey {}

/// Hashes the rekey index only (equal keys have equal indices), never the key bytes.
impl std::hash::Hash for TestMetadataKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.rekey_index.hash(state);
    }
}

/// `router[].peer[]`: a router this router runs SVR peer paths to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    /// `router`: the peer's name; a router of the authority, not this one.
    pub router: String,
    /// `bfd`: the peer paths' timers; keys not given take the router's `bfd` values.
    pub bfd: Bfd,
    /// `source-nat`: a source NAT sits between this router's waypoints and the peer's, and
    /// may rewrite the source wayport (docs/background.md §1.5). `true`: every session on a
    /// waypoint pair gets its own odd destination wayport (24,575 sessions per pair in the
    /// default range). `false`, the default: its own (even source, odd destination) pair
    /// (about 6·10^8 per pair).
    pub source_nat: bool,
    /// `svr-test-metadata-key`: **test mode only**, this router's static metadata key for
    /// this peer (the peer seals metadata to us with it): keys per peer pair. When absent,
    /// the router's own `svr-test-metadata-key` serves this peer.
    pub svr_test_metadata_key: Option<TestMetadataKey>,
}

/// `router[].bfd`: RFC 5880 asynchronous-mode timers for this router's peer paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bfd {
    /// `desired-tx-interval`.
    pub desired_tx_interval: Duration,
    /// `required-min-rx-interval`.
    pub required_min_rx_interval: Duration,
    /// `multiplier`: missed packets before the path is declared down.
    pub multiplier: u8,
    /// `link-test-interval`: time between link tests (echo bursts) of a path.
    pub link_test_interval: Duration,
    /// `link-test-length`: probes per link test; 0 disables the test.
    pub link_test_length: u8,
    /// `required-min-echo-interval`: the fastest echo rate this router reflects; the
    /// peer spaces its probes by this divided by its `link-test-length`.
    pub required_min_echo_interval: Duration,
    /// `hold-down-time`: how long a path change must hold before the path selector is
    /// told (a path going down is told at once).
    pub hold_down_time: Duration,
    /// `dynamic-damping`: double the hold-down per flap, up to `maximum-hold-down-time`.
    pub dynamic_damping: bool,
    /// `maximum-hold-down-time`: the ceiling of dynamic damping.
    pub maximum_hold_down_time: Duration,
}

impl Default for Bfd {
    /// The SSR defaults (docs/background.md §4.2): 1000 ms, 500 ms, 3; link test every 10 s
    /// with 10 probes, echo interval 1000 ms; hold-down 5 s, no damping, 3600 s maximum.
    fn default() -> Self {
        Bfd {
            desired_tx_interval: Duration::from_millis(1000),
            required_min_rx_interval: Duration::from_millis(500),
            multiplier: 3,
            link_test_interval: Duration::from_secs(10),
            link_test_length: 10,
            required_min_echo_interval: Duration::from_millis(1000),
            hold_down_time: Duration::from_secs(5),
            dynamic_damping: false,
            maximum_hold_down_time: Duration::from_secs(3600),
        }
    }
}

/// One `router[].node[]` entry: one svrd process on one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `name`, unique in its router.
    pub name: String,
    /// `eal`: how DPDK is started.
    pub eal: Eal,
    /// `core-map`: which lcore does what.
    pub core_map: CoreMap,
    /// `mempool-mbufs`: packet buffers in the node's mempool.
    pub mempool_mbufs: u32,
    /// `device-interface`: the ports, in file order (port ids follow this order).
    pub device_interface: Vec<DeviceInterface>,
    /// `route`: static routes.
    pub route: Vec<Route>,
    /// `neighbor`: static neighbours (ARP / ND entries that never expire).
    pub neighbor: Vec<Neighbor>,
    /// `pki`: the node's certificate and key; present on the local node whenever enhanced
    /// security key management is on.
    pub pki: Option<Pki>,
    /// `svr`: SVR data-plane settings.
    pub svr: SvrSettings,
    /// `management`: control socket and metrics endpoint.
    pub management: Management,
}

/// `node[].management`: how operators reach the running svrd.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Management {
    /// `control-socket`: the Unix socket svrctl talks to; `None` = the default,
    /// [`Management::control_socket_path`].
    pub control_socket: Option<PathBuf>,
    /// `metrics-listen`: address of the Prometheus `/metrics` endpoint; `None` = off.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Where DPDK keeps a root process's runtime files (`/var/run/dpdk/<file-prefix>/`).
pub const DPDK_RUNTIME_DIR: &str = "/var/run/dpdk";

impl Management {
    /// The control socket: `control-socket`, or `/var/run/dpdk/<file-prefix>/svrd.sock`
    /// beside the EAL's own runtime files.
    pub fn control_socket_path(&self, eal: &Eal) -> PathBuf {
        self.control_socket.clone().unwrap_or_else(|| {
            std::path::Path::new(DPDK_RUNTIME_DIR)
                .join(&eal.file_prefix)
                .join("svrd.sock")
        })
    }
}

/// `node[].pki`: PEM files of the node's identity. [`Config::load`](crate::Config::load)
/// makes relative paths relative to the config file's directory;
/// [`Config::parse`](crate::Config::parse) keeps them as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pki {
    /// `certificate-chain`: the router certificate followed by the intermediate CA.
    pub certificate_chain: PathBuf,
    /// `private-key`: the private key of the router certificate.
    pub private_key: PathBuf,
}

/// `node[].svr`: SVR data-plane settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SvrSettings {
    /// `max-sessions`: size of the session table.
    pub max_sessions: u32,
    /// `wayport-range`: `(start, end)`, inclusive; `start` is even and `end > start`.
    pub wayport_range: (u16, u16),
    /// `session-timeouts`: idle timeouts per protocol and state.
    pub session_timeouts: SessionTimeouts,
    /// `enable-metadata-rate`: the most Enable Metadata control messages sent per second.
    pub enable_metadata_rate: u32,
}

impl Default for SvrSettings {
    /// 65536 sessions, wayports 16384-65534 (SSR's range), the default timeouts, 100
    /// control messages a second.
    fn default() -> Self {
        SvrSettings {
            max_sessions: 65536,
            wayport_range: (16384, 65534),
            session_timeouts: SessionTimeouts::default(),
            enable_metadata_rate: 100,
        }
    }
}

/// `node[].svr.session-timeouts`: how long an idle session is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionTimeouts {
    /// `tcp`: an established TCP session.
    pub tcp: Duration,
    /// `tcp-half-open`: a TCP session whose handshake has not completed.
    pub tcp_half_open: Duration,
    /// `tcp-guard`: a TCP session after FIN both ways or RST.
    pub tcp_guard: Duration,
    /// `udp`: a UDP session.
    pub udp: Duration,
    /// `icmp`: an ICMP session.
    pub icmp: Duration,
}

impl Default for SessionTimeouts {
    /// 1800 s, 30 s, 10 s, 60 s, 10 s.
    fn default() -> Self {
        SessionTimeouts {
            tcp: Duration::from_secs(1800),
            tcp_half_open: Duration::from_secs(30),
            tcp_guard: Duration::from_secs(10),
            udp: Duration::from_secs(60),
            icmp: Duration::from_secs(10),
        }
    }
}

impl Node {
    /// The device interface called `name`.
    pub fn interface(&self, name: &str) -> Option<&DeviceInterface> {
        self.device_interface.iter().find(|i| i.name == name)
    }
}

/// `node[].eal`: DPDK Environment Abstraction Layer settings. See [`Eal::args`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eal {
    /// `memory-mb`: memory preallocated at start (EAL `-m`).
    pub memory_mb: u32,
    /// `hugepages`: back memory with hugepages; false gives EAL `--no-huge`.
    pub hugepages: bool,
    /// `huge-dir`: hugetlbfs mount to use (EAL `--huge-dir`).
    pub huge_dir: Option<String>,
    /// `file-prefix`: EAL `--file-prefix`, defaulted to the router name.
    pub file_prefix: String,
    /// `pci-allow`: extra PCI devices to allow (EAL `-a`).
    pub pci_allow: Vec<String>,
    /// `log-level`: EAL `--log-level`.
    pub log_level: LogLevel,
    /// `telemetry`: the EAL's telemetry socket (`<runtime-dir>/dpdk_telemetry.v2`) for
    /// `dpdk-telemetry.py` and svrd's `/svr/...` commands; false gives EAL `--no-telemetry`.
    pub telemetry: bool,
    /// `pdump`: svrd calls `rte_pdump_init` so `dpdk-dumpcap` can capture from its ports;
    /// only with hugepages, and then the EAL runs without `--huge-unlink`.
    pub pdump: bool,
}

/// A DPDK log level, syslog names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `emerg` (DPDK 1).
    Emerg,
    /// `alert` (DPDK 2).
    Alert,
    /// `crit` (DPDK 3).
    Crit,
    /// `error` (DPDK 4).
    Error,
    /// `warning` (DPDK 5).
    Warning,
    /// `notice` (DPDK 6), the default.
    Notice,
    /// `info` (DPDK 7).
    Info,
    /// `debug` (DPDK 8).
    Debug,
}

impl LogLevel {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Emerg => "emerg",
            LogLevel::Alert => "alert",
            LogLevel::Crit => "crit",
            LogLevel::Error => "error",
            LogLevel::Warning => "warning",
            LogLevel::Notice => "notice",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }

    /// DPDK's number for the level (`RTE_LOG_EMERG` = 1 ... `RTE_LOG_DEBUG` = 8).
    pub fn dpdk_level(self) -> u32 {
        match self {
            LogLevel::Emerg => 1,
            LogLevel::Alert => 2,
            LogLevel::Crit => 3,
            LogLevel::Error => 4,
            LogLevel::Warning => 5,
            LogLevel::Notice => 6,
            LogLevel::Info => 7,
            LogLevel::Debug => 8,
        }
    }
}

/// `node[].core-map`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreMap {
    /// `main-lcore`: the EAL main lcore, pinned to the CPU with the same number.
    pub main_lcore: u32,
    /// `slowpath-lcore`: where the slow path runs; may be `main_lcore`.
    pub slowpath_lcore: u32,
    /// `idle-backoff`: what a worker does after an empty poll.
    pub idle_backoff: IdleBackoff,
    /// `workers`: at least one; each gets one RX and one TX queue on every port.
    pub workers: Vec<Worker>,
}

/// What a worker does when its RX queues are empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdleBackoff {
    /// `busy`: poll without pause (lowest latency, 100 % CPU).
    Busy,
    /// `adaptive`: pause for growing intervals while idle (the default).
    Adaptive,
}

/// `core-map.workers[]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Worker {
    /// `lcore`: the EAL lcore id.
    pub lcore: u32,
    /// `cpu`: the CPU the lcore is pinned to, if given.
    pub cpu: Option<u32>,
}

impl Worker {
    /// The CPU the lcore runs on: `cpu`, or the lcore id.
    pub fn pinned_cpu(&self) -> u32 {
        self.cpu.unwrap_or(self.lcore)
    }
}

/// `node[].device-interface[]`: one DPDK port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInterface {
    /// `name`, unique in the node.
    pub name: String,
    /// `role`.
    pub role: Role,
    /// `vdev` or `pci-address`.
    pub device: Device,
    /// `mtu`: IP MTU in bytes.
    pub mtu: u16,
    /// `address`: one or more interface addresses.
    pub address: Vec<InterfaceAddress>,
    /// `vector`: the label of the paths leaving by this interface (`role: wan` only).
    pub vector: Option<String>,
    /// `adjacency`: the peer waypoints this interface reaches (`role: wan` only). For a
    /// peer that no interface of the node lists, every pair of the same family is a path.
    pub adjacency: Vec<crate::Adjacency>,
}

/// Which side of the router an interface faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// `lan`: toward the site's hosts.
    Lan,
    /// `wan`: toward the other routers (SVR peers).
    Wan,
}

/// How the port is found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Device {
    /// A virtual device string, `net_<driver><n>[,key=value...]`, probed by svrd after EAL
    /// start-up.
    Vdev(String),
    /// A PCI address `DDDD:BB:DD.F`, allowed on the EAL command line.
    Pci(String),
}

/// An interface address: the host's own address and the length of the on-link prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InterfaceAddress {
    /// The address itself (host bits set).
    pub addr: IpAddr,
    /// The on-link prefix length.
    pub prefix_len: u8,
}

impl InterfaceAddress {
    /// Is `ip` on this address's link (inside `addr/prefix_len`)?
    pub fn contains(&self, ip: IpAddr) -> bool {
        crate::net::contains(self.addr, self.prefix_len, ip)
    }

    /// The network of the on-link prefix (host bits cleared).
    pub fn network(&self) -> IpAddr {
        crate::net::network(self.addr, self.prefix_len)
    }
}

impl fmt::Display for InterfaceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// `node[].route[]`: a static route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// The network address of the prefix (host bits zero).
    pub prefix_addr: IpAddr,
    /// The prefix length.
    pub prefix_len: u8,
    /// The gateway; `None` means the prefix is directly connected on `interface`.
    pub next_hop: Option<IpAddr>,
    /// The device interface to send on.
    pub interface: String,
}

/// `node[].neighbor[]`: a static neighbour entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Neighbor {
    /// The neighbour's IP address, on-link on `interface`.
    pub address: IpAddr,
    /// Its MAC address (unicast).
    pub mac: [u8; 6],
    /// The device interface it sits behind.
    pub interface: String,
}
