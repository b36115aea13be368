//! What a reload may change in a running svrd: [`diff`] compares the running configuration
//! with a new one (both already validated) and says which live parts differ, or names the
//! first field that cannot change without a restart.
//!
//! Live (applied without a restart): `authority.service` and `authority.service-policy`;
//! `security-key-management`'s rekey, retransmit and timeout intervals; the local router's
//! `bfd` and its `peer[].bfd` (timers, link test, hold-down), and its peers' `bfd` (their
//! `required-min-echo-interval` spaces our link-test probes); the local node's `route`,
//! `neighbor`, `svr.session-timeouts` and `svr.enable-metadata-rate`; descriptive keys
//! (`location`, `description`, `application-name`) and other nodes' local settings, which
//! this node does not use.
//!
//! Refused: `local-router`, `local-node`, `authority.name`, the key-management mode, the
//! key-exchange algorithm and `test-time-scale`, certificate paths, every router's name,
//! identity, test keys, peer list and device interfaces (they make the waypoint pairs), and
//! the local node's `eal`, `core-map`, `mempool-mbufs`, `pki`, `management`,
//! `svr.max-sessions` and `svr.wayport-range`. Turning `packet-duplication` on where no
//! service used it is refused too (the session table was built without room for it).

use std::fmt;

use crate::model::{Config, DeviceInterface, Node, Router};
use crate::SessionResiliency;

/// The live parts of the configuration that differ between two files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Changes {
    /// `authority.service` or `authority.service-policy`.
    pub services: bool,
    /// The local router's or its peers' `bfd` (BFD timers, link test, hold-down).
    pub peer_timers: bool,
    /// `security-key-management` intervals (rekey, retransmit, timeout).
    pub key_timers: bool,
    /// The local node's `route`.
    pub routes: bool,
    /// The local node's `neighbor`.
    pub neighbors: bool,
    /// The local node's `svr.session-timeouts`.
    pub session_timeouts: bool,
    /// The local node's `svr.enable-metadata-rate`.
    pub enable_metadata_rate: bool,
    /// The content of the root certificate or CRL file (their paths cannot change live).
    /// Not set by [`diff`], which reads no file: svrd sets it when the bytes differ.
    pub trust_anchor: bool,
    /// Keys that change nothing on this node (descriptions, other nodes' local settings).
    pub other: bool,
}

impl Changes {
    /// Nothing differs.
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }

    /// The names of what changed, in a fixed order (`services`, `peer-timers`, ...).
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.services, "services"),
            (self.peer_timers, "peer-timers"),
            (self.key_timers, "key-timers"),
            (self.routes, "routes"),
            (self.neighbors, "neighbors"),
            (self.session_timeouts, "session-timeouts"),
            (self.enable_metadata_rate, "enable-metadata-rate"),
            (self.trust_anchor, "trust-anchor"),
            (self.other, "other"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

impl fmt::Display for Changes {
    /// `services, routes`, or `no change`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("no change")
        } else {
            f.write_str(&self.names().join(", "))
        }
    }
}

/// A field that differs and cannot change while svrd runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotLive {
    /// Its document path, e.g. `authority.router[0].node[0].core-map.workers`.
    pub path: String,
    /// Why, when it is more than "cannot change while running".
    pub reason: Option<&'static str>,
}

impl fmt::Display for NotLive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            Some(r) => write!(f, "{}: {r} (restart svrd)", self.path),
            None => write!(
                f,
                "{}: cannot change while running (restart svrd)",
                self.path
            ),
        }
    }
}

impl std::error::Error for NotLive {}

/// Compares the running configuration `old` with `new` (both validated). `Ok` lists the live
/// parts that differ (empty for an identical file); `Err` names the first field, in file
/// order, that cannot change without a restart.
pub fn diff(old: &Config, new: &Config) -> Result<Changes, NotLive> {
    let mut c = Changes::default();
    same("local-router", &old.local_router, &new.local_router)?;
    same("local-node", &old.local_node, &new.local_node)?;
    let (a, b) = (&old.authority, &new.authority);
    same("authority.name", &a.name, &b.name)?;
    same(
        "authority.enhanced-security-key-management",
        &a.enhanced_security_key_management,
        &b.enhanced_security_key_management,
    )?;
    let (ka, kb) = (&a.security_key_management, &b.security_key_management);
    let skm = "authority.security-key-management";
    same(
        &format!("{skm}.key-exchange-algorithm"),
        &ka.key_exchange_algorithm,
        &kb.key_exchange_algorithm,
    )?;
    same(
        &format!("{skm}.test-time-scale"),
        &ka.test_time_scale,
        &kb.test_time_scale,
    )?;
    c.key_timers = ka != kb;
    same(
        "authority.trusted-ca-certificate",
        &a.trusted_ca_certificate,
        &b.trusted_ca_certificate,
    )?;
    same(
        "authority.certificate-revocation-list",
        &a.certificate_revocation_list,
        &b.certificate_revocation_list,
    )?;
    c.services = a.service != b.service || a.service_policy != b.service_policy;
    if c.services && !uses_duplication(old) {
        if let Some(i) = duplication_policy(new) {
            return Err(NotLive {
                path: format!("authority.service-policy[{i}].session-resiliency"),
                reason: Some(
                    "packet-duplication cannot be turned on while running when no service used it",
                ),
            });
        }
    }
    same("authority.router", &a.router.len(), &b.router.len())?;
    let (lr, ln) = old.local_index();
    // A peer's `bfd` reaches us too: its `required-min-echo-interval` spaces our probes.
    let peers: Vec<&str> = a.router[lr]
        .peer
        .iter()
        .map(|p| p.router.as_str())
        .collect();
    for (i, (ra, rb)) in a.router.iter().zip(&b.router).enumerate() {
        let local = (i == lr).then_some(ln);
        let ours = local.is_some() || peers.contains(&ra.name.as_str());
        router(
            &format!("authority.router[{i}]"),
            ra,
            rb,
            local,
            ours,
            &mut c,
        )?;
    }
    Ok(c)
}

/// `Err(NotLive)` at `path` when `a != b`.
fn same<T: PartialEq + ?Sized>(path: &str, a: &T, b: &T) -> Result<(), NotLive> {
    if a == b {
        Ok(())
    } else {
        Err(NotLive {
            path: path.to_string(),
            reason: None,
        })
    }
}

/// One router; `local` is the index of the local node when this is the local router; `ours`:
/// its `bfd` settings matter here (the local router or one of its peers).
fn router(
    p: &str,
    a: &Router,
    b: &Router,
    local: Option<usize>,
    ours: bool,
    c: &mut Changes,
) -> Result<(), NotLive> {
    same(&format!("{p}.name"), &a.name, &b.name)?;
    same(
        &format!("{p}.peering-common-name"),
        &a.peering_common_name,
        &b.peering_common_name,
    )?;
    same(
        &format!("{p}.svr-test-metadata-key"),
        &a.svr_test_metadata_key,
        &b.svr_test_metadata_key,
    )?;
    same(&format!("{p}.peer"), &a.peer.len(), &b.peer.len())?;
    for (j, (pa, pb)) in a.peer.iter().zip(&b.peer).enumerate() {
        let pp = format!("{p}.peer[{j}]");
        same(&format!("{pp}.router"), &pa.router, &pb.router)?;
        same(&format!("{pp}.source-nat"), &pa.source_nat, &pb.source_nat)?;
        same(
            &format!("{pp}.svr-test-metadata-key"),
            &pa.svr_test_metadata_key,
            &pb.svr_test_metadata_key,
        )?;
        if pa.bfd != pb.bfd {
            mark(c, ours, |c| c.peer_timers = true);
        }
    }
    if a.bfd != b.bfd {
        mark(c, ours, |c| c.peer_timers = true);
    }
    if (&a.location, &a.description, &a.inter_node_security)
        != (&b.location, &b.description, &b.inter_node_security)
    {
        c.other = true;
    }
    same(&format!("{p}.node"), &a.node.len(), &b.node.len())?;
    for (k, (na, nb)) in a.node.iter().zip(&b.node).enumerate() {
        node(&format!("{p}.node[{k}]"), na, nb, local == Some(k), c)?;
    }
    Ok(())
}

/// Sets a live change when it concerns this node, else `other`.
fn mark(c: &mut Changes, ours: bool, set: impl FnOnce(&mut Changes)) {
    if ours {
        set(c)
    } else {
        c.other = true
    }
}

fn node(p: &str, a: &Node, b: &Node, local: bool, c: &mut Changes) -> Result<(), NotLive> {
    same(&format!("{p}.name"), &a.name, &b.name)?;
    // Every node's interfaces make waypoints (ours, or a peer's).
    let dp = format!("{p}.device-interface");
    same(&dp, &a.device_interface.len(), &b.device_interface.len())?;
    for (i, (da, db)) in a
        .device_interface
        .iter()
        .zip(&b.device_interface)
        .enumerate()
    {
        interface(&format!("{dp}[{i}]"), da, db)?;
    }
    if !local {
        if (a.eal != b.eal)
            | (a.core_map != b.core_map)
            | (a.mempool_mbufs != b.mempool_mbufs)
            | (a.route != b.route)
            | (a.neighbor != b.neighbor)
            | (a.pki != b.pki)
            | (a.svr != b.svr)
            | (a.management != b.management)
        {
            c.other = true;
        }
        return Ok(());
    }
    let (ea, eb) = (&a.eal, &b.eal);
    let ep = format!("{p}.eal");
    same(&format!("{ep}.memory-mb"), &ea.memory_mb, &eb.memory_mb)?;
    same(&format!("{ep}.hugepages"), &ea.hugepages, &eb.hugepages)?;
    same(&format!("{ep}.huge-dir"), &ea.huge_dir, &eb.huge_dir)?;
    same(
        &format!("{ep}.file-prefix"),
        &ea.file_prefix,
        &eb.file_prefix,
    )?;
    same(&format!("{ep}.pci-allow"), &ea.pci_allow, &eb.pci_allow)?;
    same(&format!("{ep}.log-level"), &ea.log_level, &eb.log_level)?;
    same(&format!("{ep}.telemetry"), &ea.telemetry, &eb.telemetry)?;
    same(&format!("{ep}.pdump"), &ea.pdump, &eb.pdump)?;
    let (ca, cb) = (&a.core_map, &b.core_map);
    let cp = format!("{p}.core-map");
    same(&format!("{cp}.main-lcore"), &ca.main_lcore, &cb.main_lcore)?;
    same(
        &format!("{cp}.slowpath-lcore"),
        &ca.slowpath_lcore,
        &cb.slowpath_lcore,
    )?;
    same(
        &format!("{cp}.idle-backoff"),
        &ca.idle_backoff,
        &cb.idle_backoff,
    )?;
    same(&format!("{cp}.workers"), &ca.workers, &cb.workers)?;
    same(
        &format!("{p}.mempool-mbufs"),
        &a.mempool_mbufs,
        &b.mempool_mbufs,
    )?;
    match (&a.pki, &b.pki) {
        (Some(x), Some(y)) => {
            same(
                &format!("{p}.pki.certificate-chain"),
                &x.certificate_chain,
                &y.certificate_chain,
            )?;
            same(
                &format!("{p}.pki.private-key"),
                &x.private_key,
                &y.private_key,
            )?;
        }
        (x, y) => same(&format!("{p}.pki"), x, y)?,
    }
    let mp = format!("{p}.management");
    same(
        &format!("{mp}.control-socket"),
        &a.management.control_socket,
        &b.management.control_socket,
    )?;
    same(
        &format!("{mp}.metrics-listen"),
        &a.management.metrics_listen,
        &b.management.metrics_listen,
    )?;
    let (sa, sb) = (&a.svr, &b.svr);
    same(
        &format!("{p}.svr.max-sessions"),
        &sa.max_sessions,
        &sb.max_sessions,
    )?;
    same(
        &format!("{p}.svr.wayport-range"),
        &sa.wayport_range,
        &sb.wayport_range,
    )?;
    c.session_timeouts |= sa.session_timeouts != sb.session_timeouts;
    c.enable_metadata_rate |= sa.enable_metadata_rate != sb.enable_metadata_rate;
    c.routes |= a.route != b.route;
    c.neighbors |= a.neighbor != b.neighbor;
    Ok(())
}

fn interface(p: &str, a: &DeviceInterface, b: &DeviceInterface) -> Result<(), NotLive> {
    same(&format!("{p}.name"), &a.name, &b.name)?;
    same(&format!("{p}.role"), &a.role, &b.role)?;
    let dev = match b.device {
        crate::Device::Vdev(_) => "vdev",
        crate::Device::Pci(_) => "pci-address",
    };
    same(&format!("{p}.{dev}"), &a.device, &b.device)?;
    same(&format!("{p}.mtu"), &a.mtu, &b.mtu)?;
    same(&format!("{p}.address"), &a.address, &b.address)?;
    same(&format!("{p}.vector"), &a.vector, &b.vector)?;
    same(&format!("{p}.adjacency"), &a.adjacency, &b.adjacency)
}

/// Does a service of `cfg` use a `packet-duplication` policy?
fn uses_duplication(cfg: &Config) -> bool {
    cfg.authority.service.iter().any(|s| {
        cfg.policy_of(s)
            .is_some_and(|p| p.session_resiliency == SessionResiliency::PacketDuplication)
    })
}

/// The index of the first `packet-duplication` policy a service of `cfg` uses.
fn duplication_policy(cfg: &Config) -> Option<usize> {
    cfg.authority.service_policy.iter().position(|p| {
        p.session_resiliency == SessionResiliency::PacketDuplication
            && cfg
                .authority
                .service
                .iter()
                .any(|s| s.service_policy.as_deref() == Some(p.name.as_str()))
    })
}
