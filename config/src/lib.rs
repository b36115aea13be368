//! The svrd YAML configuration: schema, defaults, and validation rules that name the field
//! at fault.
//!
//! ```no_run
//! # fn main() -> Result<(), svr_config::ConfigError> {
//! let config = svr_config::Config::load("/etc/svrd/router-a.yaml".as_ref())?;
//! config.check_host()?; // CPUs, huge-dir and PEM files of this machine
//! let (router, node) = config.local();
//! let eal_args = node.eal.args(node, "svrd");
//! # let _ = (router, eal_args);
//! # Ok(()) }
//! ```
//!
//! [`Config::parse`] checks everything that does not depend on the machine;
//! [`Config::check_host`] checks the rest. Errors are one line, `<path>: <what is wrong>`,
//! where the path is the field's place in the document
//! (`authority.router[0].node[0].device-interface[1].mtu`). When a file has several
//! errors, the one that comes first in the document is returned, whatever the order of the
//! checks; [`Config::diagnose`] lists them all.
//!
//! # Configuration reference
//!
//! Keys are kebab-case. **Unknown keys are errors**, so a typo never silently falls back
//! to a default. An optional key whose value is empty (`null`) takes its default. Numbers must be YAML
//! integers (`1500`, not `"1500"`). The same `authority` section is valid for every router:
//! `local-router` alone says which router this svrd is.
//!
//! ## Top level
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `local-router` | string | required | must name a router in `authority.router` |
//! | `local-node` | string | the local router's only node | must name a node of the local router; required if it has several |
//! | `authority` | mapping | required | |
//!
//! ## `authority`
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `name` | string | required | non-empty, one line |
//! | `enhanced-security-key-management` | bool | `false` | `true` is the production setting: peer keys exchanged over BFD. Then every router needs a `peering-common-name`, the authority a `trusted-ca-certificate`, the local node a `pki`, and no router may have an `svr-test-metadata-key`. `false` is **test-key mode**: if the local router has peers, it and each of its peers need an `svr-test-metadata-key` |
//! | `security-key-management` | mapping | all defaults | see below; validated even while unused |
//! | `trusted-ca-certificate` | file path | none | the authority's root CA certificate (PEM); required when `enhanced-security-key-management` is `true`; see [Files](#files) for paths |
//! | `certificate-revocation-list` | file path | none | optional CRL of the authority's CAs (PEM with one or more `X509 CRL` blocks, or one DER CRL), loaded at start (a bad file stops svrd) and checked on every peer verification: a revoked peer or intermediate certificate is refused (`certificate revoked`); only with `enhanced-security-key-management: true`; a CRL past its nextUpdate is still used |
//! | `service` | list | empty | see below; names unique; no prefix in two services |
//! | `service-policy` | list | empty | see below; names unique |
//! | `router` | list | required | at least one; names unique |
//!
//! ## `authority.security-key-management`
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `key-exchange-algorithm` | `x25519` \| `dh-modp-4096` | `x25519` | DH flavour of the peer-key exchange (`dh-modp-4096` is RFC 3526 group 16) |
//! | `payload-key-rekey-interval` | hours or `never` | `24` | 1-720 |
//! | `peer-key-rekey-interval` | hours or `never` | `24` | 1-720 |
//! | `peer-key-retransmit-interval` | seconds | `30` | 5-3600 |
//! | `peer-key-timeout` | seconds | `3600` | 60-86400, and at least `peer-key-retransmit-interval` (a timeout shorter than one resend would never see an answer) |
//! | `test-time-scale` | integer | `1` | 1-3600. **Test only; never set it in production.** The key state machines (rekey, retransmit, timeout, and the fixed 30 s switch and grace periods) run this many times faster than the clock, so a testbed sees hours of rotations in seconds. BFD and certificate validity keep real time. svrd logs a warning when it is not 1 |
//!
//! ## `authority.service[]`
//!
//! An SVR service: destination prefixes, and the egress router that serves them. Which
//! services the local router reaches over SVR is [`Config::services_via_peers`]: those
//! served by one of its peers. A service served by a router that is not a peer is not an
//! error (a router need not use every service).
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `name` | string | required | 1-63 of `[A-Za-z0-9_-]`; unique in the authority |
//! | `tenant` | string | required | 1-63 of `[A-Za-z0-9_.-]` |
//! | `prefix` | list of `addr/len` | required | at least one; networks (host bits zero); a prefix may not appear twice, in this service or another (overlapping prefixes are allowed: the longest match wins) |
//! | `router` | string | required | must name a router in `authority.router`: the egress router that serves the service |
//! | `application-name` | string | none | non-empty, one line |
//! | `service-policy` | string | none: SSR's defaults (no SLA filter, best effort, hunt, sessions never move) | must name an entry of `authority.service-policy` |
//!
//! ## `authority.service-policy[]`
//!
//! SSR's `service-policy` (docs/multipath.md): which peer paths a service's sessions may
//! use and how they move. Names and defaults are SSR's so that SSR configurations
//! translate; [`Config::policy_of`] gives a service's policy.
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `name` | string | required | 1-63 of `[A-Za-z0-9_-]`; unique in the authority |
//! | `path-quality-filter` | bool | `false` | `true` enforces the four limits below; `false` ignores them |
//! | `max-latency` | ms | `250` | 0-4294967295; one-way (RTT/2), smoothed |
//! | `max-jitter` | ms | `100` | 0-4294967295 |
//! | `max-loss` | percent | `0.5` | 0-100, at most 3 decimals |
//! | `min-mos` | number or `disabled` | `disabled` | 1.00-5.00, at most 2 decimals |
//! | `best-effort` | bool | `true` | with no path meeting the limits: `true` uses any path in service, `false` drops the session (counted) |
//! | `best-path` | `vector` \| `average-latency` \| `mos` | `vector` | order among paths of equal vector cost; latency and MOS treat paths within 10 % of the best as equal |
//! | `lb-strategy` | `hunt` \| `proportional` | `hunt` | `hunt`: the cheapest paths only; `proportional`: all eligible, weighted by 1/(1 + cost); ties hashed on the session UUID |
//! | `session-resiliency` | `none` \| `failover` \| `revertible-failover` \| `packet-duplication` | `none` | what live sessions do when their path fails or violates the limits |
//! | `vector` | list | empty | at most 16 entries; see below |
//!
//! ## `service-policy[].vector[]`
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `name` | string | required | a label as put on interfaces and adjacencies (1-63 of `[A-Za-z0-9_-]`); unique in the policy. A label the policy does not list costs 0 |
//! | `priority` | integer or `never` | required | 1-999999, added to the adjacency `cost` (lower is preferred); `never`: the policy never uses paths with this label |
//!
//! ## `authority.router[]`
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `name` | string | required | 1-63 of `[A-Za-z0-9_-]`; unique in the authority |
//! | `peering-common-name` | string | none | a DNS name (labels of `[A-Za-z0-9-]`, 1-63 each, no leading/trailing `-`, 253 total); unique (case-insensitive); required when enhanced security key management is on |
//! | `location` | string | none | non-empty, one line |
//! | `description` | string | none | free text |
//! | `inter-node-security` | string | none | non-empty, one line |
//! | `bfd` | mapping | all defaults | see below |
//! | `svr-test-metadata-key` | mapping | none | **test mode only**, see below: this router's key for every peer whose `peer[]` entry has none. Not allowed when `enhanced-security-key-management` is `true`; when it is `false` the local router needs a key for each of its peers (here or in the peer entry), and each of those peers a key for the local router (router-wide or in its entry for the local router) |
//! | `peer` | list | empty | see below; the routers this router runs SVR peer paths to |
//! | `node` | list | required | at least one; names unique in the router |
//!
//! ## `router[].bfd`
//!
//! Defaults are SSR's (docs/background.md §4.2): one packet a second, path down after 3 s.
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `desired-tx-interval` | ms | `1000` | 50-60000 |
//! | `required-min-rx-interval` | ms | `500` | 50-60000 |
//! | `multiplier` | count | `3` | 2-255. RFC 5880 only forbids 0; we also refuse 1, which would drop a path on a single lost packet |
//! | `link-test-interval` | s | `10` | 1-86400; time between link tests (bursts of authenticated echo probes measuring latency, jitter, loss, MOS) |
//! | `link-test-length` | count | `10` | 0-255 probes per test; 0 disables the link test |
//! | `required-min-echo-interval` | ms | `1000` | 50-60000; the fastest echo rate this router reflects: a peer spaces its probes by this value divided by its `link-test-length` (at least 1 ms) |
//! | `hold-down-time` | s | `5` | 1-300; how long a path coming up or an SLA change must hold before the path selector is told (a path going down is told at once) |
//! | `dynamic-damping` | `enabled` \| `disabled` | `disabled` | `enabled`: each flap doubles the hold-down up to `maximum-hold-down-time`; each stable hold-down halves it back |
//! | `maximum-hold-down-time` | s | `3600` | 2-86400; greater than `hold-down-time` |
//!
//! ## `router[].svr-test-metadata-key`
//!
//! **For tests only.** A static metadata key for this router, used instead of the key
//! exchange of enhanced security key management: no rotation, no forward secrecy, and the
//! key sits in the file. The key bytes are zeroized when the config is dropped, never
//! printed by `Debug` (see [`TestMetadataKey`]), and never quoted in error messages.
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `rekey-index` | integer | required | 1-4294967295; sent in the Security Identifier TLV |
//! | `encryption-key` | hex string | required | exactly 64 hex digits (32 bytes, AES-256), either case; not all zero |
//! | `hmac-key` | hex string | required | exactly 96 hex digits (48 bytes, HMAC-SHA384), either case; not all zero |
//!
//! ## `router[].peer[]`
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `router` | string | required | must name a router in `authority.router`, not this router; unique in the list; that router must have at least one `role: wan` interface on its nodes (the addresses of those are its **waypoints**, [`Config::waypoints`]) |
//! | `bfd` | mapping | the router's `bfd` | as `router[].bfd`; a key not given takes the router's value |
//! | `svr-test-metadata-key` | mapping | the router's | **test mode only**, as `router[].svr-test-metadata-key`: this router's key **for this peer** (the peer seals metadata to us with it), so test keys can differ per peer pair. Not allowed when `enhanced-security-key-management` is `true` |
//! | `source-nat` | bool | `false` | `true` when a source NAT between this router's waypoints and the peer's may rewrite the source wayport (docs/background.md §1.5): each session to the peer then gets its own odd destination wayport, so a waypoint pair carries at most one session per odd port of `wayport-range` (24,575 by default). `false`: each session gets its own (even source, odd destination) pair, 24,576 × 24,575 by default. A session that finds one waypoint pair full moves on to the peer's next in-service pair |
//!
//! ## `router[].node[]`
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `name` | string | required | 1-63 of `[A-Za-z0-9_-]`; unique in the router |
//! | `eal` | mapping | all defaults | see below |
//! | `core-map` | mapping | required | see below |
//! | `mempool-mbufs` | count | `8191` | 1024-1048575; 2^n-1 sizes suit DPDK's mempool best |
//! | `device-interface` | list | required | at least one |
//! | `route` | list | empty | |
//! | `neighbor` | list | empty | |
//! | `pki` | mapping | none | see below; required on the local node when `enhanced-security-key-management` is `true` |
//! | `svr` | mapping | all defaults | see below |
//! | `management` | mapping | all defaults | see below |
//!
//! ## `node[].management`
//!
//! How operators reach the running svrd (README "Operating svrd"). Only the local node's
//! values are used.
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `control-socket` | path | `/var/run/dpdk/<file-prefix>/svrd.sock` (beside the EAL's runtime files) | absolute, at most 107 bytes (a Unix socket path). svrd creates it mode 0600 (its directory 0700 if it makes it), answers only processes of root or its own user (`SO_PEERCRED`), and replaces a stale socket left by a killed svrd. `svrctl` finds it with `--router <file-prefix>` or `--socket PATH` |
//! | `metrics-listen` | `addr:port` | none: no endpoint | the Prometheus `/metrics` endpoint (HTTP, `GET /metrics` only); `127.0.0.1:9464` or `[::1]:9464` keep it on the machine; port not 0. The metrics are listed in the `svr-mgmt` crate (`mgmt/src/metrics.rs`) |
//!
//! ## `node[].eal`
//!
//! See [`Eal::args`] for the command line built from it.
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `memory-mb` | MiB | `256` | 64-65536; preallocated (EAL `-m`) and, with hugepages, also the limit (EAL `--socket-limit`): the mempool and rings must fit in it |
//! | `hugepages` | bool | `true` | `false` runs EAL with `--no-huge` (small tests) |
//! | `huge-dir` | path | none (EAL's choice) | absolute; only with `hugepages: true`; must be a directory ([`Config::check_host`]) |
//! | `file-prefix` | string | the router's name | 1-63 of `[A-Za-z0-9_-]`; lets several DPDK processes share a machine |
//! | `pci-allow` | list of PCI addresses | empty | `DDDD:BB:DD.F` (device ≤ 1f, function ≤ 7), no duplicates. With no PCI address here or on an interface, EAL gets `--no-pci` |
//! | `log-level` | `emerg` \| `alert` \| `crit` \| `error` \| `warning` \| `notice` \| `info` \| `debug` | `notice` | |
//! | `telemetry` | bool | `true` | the EAL's telemetry socket `/var/run/dpdk/<file-prefix>/dpdk_telemetry.v2`: `dpdk-telemetry.py -f <file-prefix>` shows DPDK's `/ethdev/...` and svrd's `/svr/...` commands; `false` runs EAL with `--no-telemetry` |
//! | `pdump` | bool | `true` (`false` when `hugepages` is `false`) | svrd calls `rte_pdump_init` so `dpdk-dumpcap --file-prefix <file-prefix> -i <port>` captures from the running router; needs `hugepages: true`. The capture tool is a DPDK secondary process that maps svrd's hugepage files, so with `pdump: true` the EAL runs **without** `--huge-unlink`: svrd removes its hugepage files when it exits cleanly, but after a `SIGKILL` the pages stay taken until a process with the same `file-prefix` starts again (DPDK then removes the stale files) or `dpdk-hugepages.py -c` runs. No cost until a capture starts |
//!
//! ## `node[].core-map`
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `main-lcore` | lcore id | `0` | 0-127 (DPDK's `RTE_MAX_LCORE`); pinned to the CPU of the same number |
//! | `slowpath-lcore` | lcore id | `main-lcore` | 0-127; may equal `main-lcore` (shared); pinned to the CPU of the same number |
//! | `idle-backoff` | `busy` \| `adaptive` | `adaptive` | what a worker does after an empty poll |
//! | `workers` | list | required | at least one; each worker gets one RX and one TX queue on every port |
//! | `workers[].lcore` | lcore id | required | 0-127; unique; not `main-lcore`, not `slowpath-lcore` |
//! | `workers[].cpu` | CPU number | `lcore` | 0-1023 |
//!
//! Every CPU used (main, slow path, workers) must exist on the machine; that is checked by
//! [`Config::check_host`], not by parsing, so a file can be validated anywhere.
//!
//! ## `node[].device-interface[]`
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `name` | string | required | 1-32 of `[a-z0-9-]`; unique in the node |
//! | `role` | `lan` \| `wan` | required | |
//! | `vdev` | string | - | `net_<driver><n>[,key=value...]`; exactly one of `vdev` / `pci-address`; device names unique in the node |
//! | `pci-address` | string | - | `DDDD:BB:DD.F`; unique in the node |
//! | `mtu` | bytes | `1500` | 576-9000; at least 1280 if the interface has an IPv6 address |
//! | `address` | list of `addr/len` | required | at least one; IPv4 or IPv6 with prefix length; the host's own address, so host bits are set; unicast, not loopback; IPv4 not the network or broadcast address of a /30 or shorter; unique in the node |
//! | `vector` | string | none | `role: wan` only; 1-63 of `[A-Za-z0-9_-]`: the label of the peer paths leaving by this interface, priced by `service-policy[].vector` |
//! | `adjacency` | list | empty | `role: wan` only; see below |
//!
//! ## `device-interface[].adjacency[]`
//!
//! The peer waypoints this WAN interface reaches (SSR's adjacencies). For a peer that
//! no WAN interface of the node lists, every pair of our waypoints and the peer's of the
//! same family is a path; once one does, only the listed pairs are
//! ([`Config::peer_paths`]).
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `peer` | string | required | a router in this router's `peer` list |
//! | `address` | address | required | a waypoint of that router (an address of one of its `role: wan` interfaces); of a family this interface has an address of; (`peer`, `address`) unique in the interface |
//! | `cost` | integer | `0` | 0-999999; added to the policy's vector priority |
//! | `vector` | string | the interface's `vector` | 1-63 of `[A-Za-z0-9_-]` |
//!
//! ## `node[].route[]`
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `prefix` | `addr/len` | required | a network: host bits zero; unique in the node |
//! | `next-hop` | address | none: directly connected | same family as `prefix`; on-link (inside an address prefix of `interface`) or IPv6 link-local; not the interface's own address |
//! | `interface` | string | required | a `device-interface` of the node |
//!
//! ## `node[].neighbor[]`
//!
//! Static ARP / Neighbor Discovery entries.
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `address` | address | required | unique in the node; on-link on `interface` or IPv6 link-local; not the interface's own address |
//! | `mac` | `xx:xx:xx:xx:xx:xx` | required | unicast, not all-zero |
//! | `interface` | string | required | a `device-interface` of the node |
//!
//! ## `node[].pki`
//!
//! The node's identity for the key exchange, as PEM files; see [Files](#files) for paths.
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `certificate-chain` | file path | required | the router certificate followed by the intermediate CA |
//! | `private-key` | file path | required | the router certificate's private key |
//!
//! ## `node[].svr`
//!
//! SVR data-plane settings.
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `max-sessions` | count | `65536` | 1024-16777216 |
//! | `wayport-range` | mapping | `{start: 16384, end: 65534}` | SSR's range. `start` and `end` 1025-65535 each, each defaulted on its own; `start` even (the ingress allocates an even source and an odd destination wayport); `end` at least `start` + 1 |
//! | `session-timeouts` | mapping | all defaults | see below |
//! | `enable-metadata-rate` | per second | `100` | 1-100000; the most Enable Metadata control messages sent a second |
//!
//! ## `node[].svr.session-timeouts`
//!
//! Idle time, in seconds, after which a session is removed.
//!
//! | key | type | default | rule |
//! | --- | --- | --- | --- |
//! | `tcp` | s | `1800` | 10-86400; established TCP |
//! | `tcp-half-open` | s | `30` | 1-3600; handshake not completed |
//! | `tcp-guard` | s | `10` | 1-600; after FIN both ways or RST |
//! | `udp` | s | `60` | 1-86400 |
//! | `icmp` | s | `10` | 1-3600 |
//!
//! # Live keys (`svrctl reload`, SIGHUP)
//!
//! A running svrd can reload its file; [`diff`] says what changed. **Live** (applied without a
//! restart): `authority.service[]` and `authority.service-policy[]` (all keys);
//! `security-key-management`'s `payload-key-rekey-interval`, `peer-key-rekey-interval`,
//! `peer-key-retransmit-interval` and `peer-key-timeout`; the local router's `bfd` and its
//! `peer[].bfd` (every key); the local node's `route[]`, `neighbor[]`,
//! `svr.session-timeouts` and `svr.enable-metadata-rate`; `location`, `description`,
//! `inter-node-security`, and other nodes' own settings (no effect on this node).
//! **Refused** with the first differing field path (`<path>: cannot change while running
//! (restart svrd)`): `local-router`, `local-node`, `authority.name`,
//! `enhanced-security-key-management`, `key-exchange-algorithm`, `test-time-scale`,
//! `trusted-ca-certificate`, `certificate-revocation-list`; any router's `name`,
//! `peering-common-name`, `svr-test-metadata-key`, the `peer[]` list (`router`, `source-nat`,
//! `svr-test-metadata-key`), node names and `device-interface[]`; the local node's `eal`,
//! `core-map`, `mempool-mbufs`, `pki`, `management`, `svr.max-sessions` and
//! `svr.wayport-range`; and a `session-resiliency: packet-duplication` that a service uses when
//! none did before.
//!
//! # Files
//!
//! A file path (`trusted-ca-certificate`, `certificate-revocation-list`, `pki`) is 1-4096 bytes without control
//! characters, not ending in `/`, absolute or relative to the config file's directory:
//! [`Config::load`] makes relative paths relative to that directory, [`Config::parse`]
//! keeps them as written. Whether the files exist (and are files) is checked by
//! [`Config::check_host`], for the authority's CA and CRL and the local node's `pki` only.
//!
//! [`Config::load`] reports a missing or unreadable file, a directory, non-UTF-8 content,
//! and a file with no YAML document (empty or only comments) in one line naming the file.
//! YAML syntax errors, duplicated keys and multi-document files are reported as
//! `file:line:column: YAML error: ...`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod diff;
mod eal;
mod error;
mod host;
mod model;
mod net;
mod parse;
mod policy;
mod shared;
mod walk;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use zeroize::Zeroize;

pub use diff::{diff, Changes, NotLive};
pub use error::ConfigError;
pub use host::{free_hugepage_mib, hugetlbfs_mounts};
pub use model::{
    Authority, Bfd, Config, CoreMap, Device, DeviceInterface, Eal, IdleBackoff, InterfaceAddress,
    KeyExchangeAlgorithm, LogLevel, Management, Neighbor, Node, Peer, Pki, RekeyInterval, Role,
    Route, Router, SecurityKeyManagement, Service, SessionTimeouts, SvrSettings, TestMetadataKey,
    Worker, DPDK_RUNTIME_DIR,
};
pub use net::is_dns_name;
pub use policy::{
    Adjacency, BestPath, LbStrategy, LossPercent, Mos, PeerPath, ServicePolicy, SessionResiliency,
    VectorPreference, VectorPriority, MAX_POLICY_VECTORS,
};
pub use shared::{generated_authority, SharedCheck};

/// The name used for text given to [`Config::parse`] in messages without a field path.
const TEXT_NAME: &str = "<config>";

impl Config {
    /// Reads and validates the file at `path` (everything but the host checks). Relative
    /// PEM paths (`trusted-ca-certificate`, `pki`) are made relative to the file's
    /// directory. The text read is zeroized once parsed, since it may hold test keys.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        if path.is_dir() {
            return Err(ConfigError::IsDirectory { file });
        }
        let bytes = std::fs::read(path).map_err(|e| ConfigError::Read {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        let mut text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                e.into_bytes().zeroize();
                return Err(ConfigError::Read {
                    file,
                    reason: format!("not UTF-8 text (invalid byte at offset {offset})"),
                });
            }
        };
        let result = first(diagnose_named(&text, &file));
        text.zeroize();
        let mut config = result?;
        config.resolve_paths(path.parent().unwrap_or(Path::new("")));
        Ok(config)
    }

    /// Makes the relative PEM paths relative to `dir`.
    fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(ca) = &mut self.authority.trusted_ca_certificate {
            fix(ca);
        }
        if let Some(crl) = &mut self.authority.certificate_revocation_list {
            fix(crl);
        }
        for router in &mut self.authority.router {
            for node in &mut router.node {
                if let Some(pki) = &mut node.pki {
                    fix(&mut pki.certificate_chain);
                    fix(&mut pki.private_key);
                }
            }
        }
    }

    /// Validates YAML text (everything but the host checks).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        first(diagnose_named(text, TEXT_NAME))
    }

    /// Every error in `text`, in document order (empty if it is valid). An error in one part
    /// can hide the checks that depend on that part (a route to a misspelt interface is not
    /// also checked for being on-link).
    pub fn diagnose(text: &str) -> Vec<ConfigError> {
        match diagnose_named(text, TEXT_NAME) {
            Ok(_) => Vec::new(),
            Err(errors) => errors,
        }
    }

    /// The router and node this svrd runs as.
    ///
    /// # Panics
    ///
    /// If `local_router` / `local_node` were changed after parsing to names that are not in
    /// `authority` (parsing guarantees they are).
    pub fn local(&self) -> (&Router, &Node) {
        let (r, n) = self.local_index();
        let router = &self.authority.router[r];
        (router, &router.node[n])
    }

    /// The document path of the local node, `authority.router[<r>].node[<n>]`, for svrd's
    /// own start-up errors about that node's fields.
    ///
    /// # Panics
    ///
    /// As [`local`](Config::local).
    pub fn local_path(&self) -> String {
        let (r, n) = self.local_index();
        format!("authority.router[{r}].node[{n}]")
    }

    /// The router called `name`.
    pub fn router(&self, name: &str) -> Option<&Router> {
        self.authority.router.iter().find(|r| r.name == name)
    }

    /// The waypoints of router `name`: the addresses of the `role: wan` interfaces of all
    /// its nodes, in file order (empty if there is no such router).
    pub fn waypoints(&self, router_name: &str) -> Vec<IpAddr> {
        self.router(router_name)
            .map(|r| r.node.iter().flat_map(wan_addresses).collect())
            .unwrap_or_default()
    }

    /// The waypoints this svrd owns: the addresses of the local **node**'s `role: wan`
    /// interfaces, in file order. For a router with one node this is
    /// `waypoints(local_router)`; another node's waypoints belong to that node's svrd.
    ///
    /// # Panics
    ///
    /// As [`local`](Config::local).
    pub fn local_waypoints(&self) -> Vec<IpAddr> {
        wan_addresses(self.local().1).collect()
    }

    /// The services that the local router reaches through SVR: each service served by
    /// another router that the local router lists as a peer, with that router, in service
    /// order. Services served by the local router itself are delivered locally and are not
    /// listed; a service served by a router that is not a peer is simply not reachable by
    /// SVR from here (a router need not use every service), which is not an error.
    ///
    /// # Panics
    ///
    /// As [`local`](Config::local).
    pub fn services_via_peers(&self) -> Vec<(&Service, &Router)> {
        let (me, _) = self.local();
        self.authority
            .service
            .iter()
            .filter(|s| s.router != me.name && me.peer(&s.router).is_some())
            .filter_map(|s| self.router(&s.router).map(|r| (s, r)))
            .collect()
    }

    /// The `authority.service-policy` called `name`.
    pub fn service_policy(&self, name: &str) -> Option<&ServicePolicy> {
        self.authority
            .service_policy
            .iter()
            .find(|p| p.name == name)
    }

    /// The policy that applies to `service`: the one it names, or `None` for SSR's
    /// defaults ([`ServicePolicy::with_defaults`]).
    pub fn policy_of(&self, service: &Service) -> Option<&ServicePolicy> {
        service
            .service_policy
            .as_deref()
            .and_then(|n| self.service_policy(n))
    }

    /// The peer paths from the local **node** to router `peer`, in interface and address
    /// order: for each of our `role: wan` interfaces and each of its addresses, the
    /// peer waypoints it reaches. If any of our WAN interfaces lists an `adjacency` to
    /// `peer`, exactly the listed (interface, peer waypoint) pairs are paths, with their
    /// `cost` and `vector`; otherwise every pair of our waypoints and the peer's of the
    /// same family is a path, cost 0, labelled with the interface's `vector`.
    ///
    /// # Panics
    ///
    /// As [`local`](Config::local).
    pub fn peer_paths(&self, peer: &str) -> Vec<PeerPath> {
        let node = self.local().1;
        let remote = self.waypoints(peer);
        let wans: Vec<&DeviceInterface> = node
            .device_interface
            .iter()
            .filter(|i| i.role == Role::Wan)
            .collect();
        let explicit = wans
            .iter()
            .any(|i| i.adjacency.iter().any(|a| a.peer == peer));
        let same_family = |a: IpAddr, b: IpAddr| a.is_ipv4() == b.is_ipv4();
        let mut out = Vec::new();
        for i in wans {
            for local in i.address.iter().map(|a| a.addr) {
                if explicit {
                    for adj in i
                        .adjacency
                        .iter()
                        .filter(|a| a.peer == peer && same_family(a.address, local))
                    {
                        out.push(PeerPath {
                            interface: i.name.clone(),
                            local,
                            remote: adj.address,
                            cost: adj.cost,
                            vector: adj.vector.clone().or_else(|| i.vector.clone()),
                        });
                    }
                } else {
                    for &r in remote.iter().filter(|&&r| same_family(r, local)) {
                        out.push(PeerPath {
                            interface: i.name.clone(),
                            local,
                            remote: r,
                            cost: 0,
                            vector: i.vector.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Indices of the local router and node in `authority`.
    fn local_index(&self) -> (usize, usize) {
        let r = self
            .authority
            .router
            .iter()
            .position(|r| r.name == self.local_router);
        let n = r.and_then(|r| {
            self.authority.router[r]
                .node
                .iter()
                .position(|n| n.name == self.local_node)
        });
        match (r, n) {
            (Some(r), Some(n)) => (r, n),
            // Config::parse / load only return configs whose local names resolve; only a
            // caller that edited the public fields can get here.
            _ => panic!(
                "svr_config::Config: local router {:?} / node {:?} not in the authority",
                self.local_router, self.local_node
            ),
        }
    }
}

/// The addresses of a node's WAN interfaces.
fn wan_addresses(node: &Node) -> impl Iterator<Item = IpAddr> + '_ {
    node.device_interface
        .iter()
        .filter(|i| i.role == Role::Wan)
        .flat_map(|i| i.address.iter().map(|a| a.addr))
}

fn first(r: Result<Config, Vec<ConfigError>>) -> Result<Config, ConfigError> {
    r.map_err(|mut errors| {
        if errors.is_empty() {
            internal_error()
        } else {
            errors.swap_remove(0)
        }
    })
}

fn internal_error() -> ConfigError {
    ConfigError::Rule {
        path: "(top level)".into(),
        rule: "invalid configuration".into(),
    }
}

fn diagnose_named(text: &str, file: &str) -> Result<Config, Vec<ConfigError>> {
    let value: serde_norway::Value = match serde_norway::from_str(text) {
        Ok(v) => v,
        Err(e) => return Err(vec![syntax_error(&e, file)]),
    };
    if value.is_null() && is_blank(text) {
        return Err(vec![ConfigError::Empty { file: file.into() }]);
    }
    let mut cx = walk::Cx::default();
    let config = parse::config(&mut cx, &value);
    match config {
        Some(c) if cx.is_empty() => Ok(c),
        _ => {
            let errors = cx.into_sorted();
            // Every path that yields no config reports why; an empty list is a bug here.
            debug_assert!(!errors.is_empty(), "no config and no error for {text:?}");
            if errors.is_empty() {
                Err(vec![internal_error()])
            } else {
                Err(errors)
            }
        }
    }
}

/// Only blank lines, comments and document markers.
fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}

fn syntax_error(e: &serde_norway::Error, file: &str) -> ConfigError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let mut message = e.to_string();
    if line != 0 {
        message = message.replacen(&format!(" at line {line} column {column}"), "", 1);
    }
    // One line, whatever the parser wrote.
    let mut message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if message.contains("duplicate entry with key") && line != 0 {
        // The parser's position is the start of the mapping, not the second key.
        message.push_str(" (in the mapping that starts here)");
    }
    ConfigError::Syntax {
        file: file.into(),
        line,
        column,
        message,
    }
}
