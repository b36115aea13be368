//! SVR glue: the [`PacketBuf`] adapter for DPDK mbufs, and the SVR data-plane state built from
//! the configuration (services, peers, waypoints, session table, the key store filled with the
//! test-mode metadata keys).

use std::net::IpAddr;

use dpdk_ffi::Mbuf;
use fastpath::svr_path::{from_config, NoRoom, PacketBuf, ServiceTable, SvrShared};
use svr_config::Config;

/// An mbuf seen as a [`PacketBuf`] (a newtype: both the trait and `Mbuf` are foreign here).
pub struct MbufBuf<'a>(pub &'a mut Mbuf);

impl PacketBuf for MbufBuf<'_> {
    fn data(&self) -> &[u8] {
        self.0.data()
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }
    fn headroom(&self) -> usize {
        self.0.headroom()
    }
    fn tailroom(&self) -> usize {
        self.0.tailroom()
    }
    fn prepend(&mut self, n: usize) -> Result<(), NoRoom> {
        self.0.prepend(n).map(|_| ()).map_err(|_| NoRoom)
    }
    fn append(&mut self, n: usize) -> Result<(), NoRoom> {
        self.0.append(n).map(|_| ()).map_err(|_| NoRoom)
    }
    fn adj(&mut self, n: usize) -> Result<(), NoRoom> {
        self.0.adj(n).map_err(|_| NoRoom)
    }
    fn trim(&mut self, n: usize) -> Result<(), NoRoom> {
        self.0.trim(n).map_err(|_| NoRoom)
    }
}

/// The SVR state of this router, or `None` when it has no SVR peers (plain routing only).
///
/// Keys: in test-key mode (`enhanced-security-key-management: false`) our own metadata key
/// and each peer's come from `svr-test-metadata-key`, and every path is in service; in
/// production they come from the key exchange (`crate::zt`), which publishes them and the
/// paths' service state through the same [`fastpath::svr_path::KeyStore`].
pub fn build(cfg: &Config) -> Option<SvrShared> {
    let svr_cfg = from_config::svr_config(cfg)?;
    let shared = match SvrShared::new(svr_cfg) {
        Ok(s) => s,
        Err(e) => {
            log::error!("SVR disabled: {e}");
            return None;
        }
    };
    if let Some(t) = service_table(cfg) {
        // The table of `svr_cfg`, with the router's hold-down: cannot be refused.
        let _ = shared.replace_table(t);
    }
    if !cfg.authority.enhanced_security_key_management {
        if let Err(e) = from_config::install_test_keys(cfg, &shared.keys) {
            log::error!("SVR test keys: {e}");
        }
        log::warn!("SVR in TEST-KEY MODE: static metadata keys from the configuration");
    } else {
        log::info!("SVR keys come from enhanced security key management: BFD on every peer path, keys exchanged in its metadata");
    }
    let addrs: Vec<IpAddr> = shared.cfg.local_waypoints.clone();
    log::info!(
        "SVR: {} services, {} peers, waypoints {:?}, {} sessions max",
        shared.services().services.len(),
        shared.cfg.peers.len(),
        addrs,
        shared.cfg.max_sessions
    );
    Some(shared)
}

/// The SVR service table of `cfg` (services, policies, session timeouts, enable-metadata
/// rate, and the router's `hold-down-time`, which `revertible-failover` waits after a pair
/// returns), or `None` when the router has no SVR peers. Built at start and on a reload.
pub fn service_table(cfg: &Config) -> Option<ServiceTable> {
    let c = from_config::svr_config(cfg)?;
    let hold = cfg.local().0.bfd.hold_down_time.as_millis();
    Some(ServiceTable::new(
        c.services,
        c.timeouts,
        c.enable_metadata_rate,
        u64::try_from(hold).unwrap_or(u64::MAX),
    ))
}
