//! SVR glue: the [`PacketBuf`] adapter for DPDK mbufs, and the SVR data-plane state built from
//! the configuration (services, peers, waypoints, session table, the key store filled with the
//! test-mode metadata keys).

use std::net::IpAddr;

use dpdk_ffi::Mbuf;
use fastpath::route::IpPrefix;
use fastpath::session::{SessionTimeouts, WayportRange};
use fastpath::svr_path::{NoRoom, PacketBuf, PeerInfo, ServiceRoute, SvrConfig, SvrShared};
use svr_config::{Config, Role};
use svr_crypto::MetadataKey;

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
    let (me, node) = cfg.local();
    if me.peer.is_empty() {
        return None;
    }
    let peers: Vec<PeerInfo> = me
        .peer
        .iter()
        .map(|p| PeerInfo {
            name: p.router.clone(),
            waypoints: cfg.waypoints(&p.router),
        })
        .collect();
    let peer_id = |name: &str| peers.iter().position(|p| p.name == name).map(|i| i as u16);
    let services = cfg
        .authority
        .service
        .iter()
        .filter_map(|s| {
            // A service of a router that is not our peer is not reachable by SVR from here.
            let peer = if s.router == me.name {
                None
            } else {
                Some(peer_id(&s.router)?)
            };
            Some(ServiceRoute {
                name: s.name.clone(),
                tenant: s.tenant.clone(),
                prefixes: s
                    .prefix
                    .iter()
                    .filter_map(|&(a, l)| IpPrefix::new_masked(a, l).ok())
                    .collect(),
                peer,
            })
        })
        .collect();
    let wan_mtu = node
        .device_interface
        .iter()
        .filter(|i| i.role == Role::Wan)
        .map(|i| i.mtu)
        .min()
        .unwrap_or(1500);
    let t = node.svr.session_timeouts;
    let svr_cfg = SvrConfig {
        router_name: me.name.clone(),
        services,
        peers,
        local_waypoints: cfg.local_waypoints(),
        wayport_range: WayportRange {
            first: node.svr.wayport_range.0,
            last: node.svr.wayport_range.1,
        },
        wan_mtu,
        max_sessions: node.svr.max_sessions,
        timeouts: SessionTimeouts {
            tcp_established: t.tcp,
            tcp_half_open: t.tcp_half_open,
            tcp_guard: t.tcp_guard,
            udp: t.udp,
            icmp: t.icmp,
            ..SessionTimeouts::default()
        },
        enable_metadata_rate: node.svr.enable_metadata_rate,
    };
    let shared = match SvrShared::new(svr_cfg) {
        Ok(s) => s,
        Err(e) => {
            log::error!("SVR disabled: {e}");
            return None;
        }
    };
    if !cfg.authority.enhanced_security_key_management {
        let key = |k: &svr_config::TestMetadataKey| {
            MetadataKey::new(k.rekey_index, &k.encryption_key, &k.hmac_key)
        };
        if let Some(k) = &me.svr_test_metadata_key {
            shared.keys.install_own(key(k));
        }
        for (i, p) in me.peer.iter().enumerate() {
            if let Some(k) = cfg
                .router(&p.router)
                .and_then(|r| r.svr_test_metadata_key.as_ref())
            {
                shared.keys.install_peer(i as u16, key(k));
            }
        }
        log::warn!("SVR in TEST-KEY MODE: static metadata keys from the configuration");
    } else {
        log::info!("SVR keys come from enhanced security key management: BFD on every peer path, keys exchanged in its metadata");
    }
    let addrs: Vec<IpAddr> = shared.cfg.local_waypoints.clone();
    log::info!(
        "SVR: {} services, {} peers, waypoints {:?}, {} sessions max",
        shared.cfg.services.len(),
        shared.cfg.peers.len(),
        addrs,
        shared.cfg.max_sessions
    );
    Some(shared)
}
