//! The local router's SVR data-plane settings and test-mode keys, from its YAML configuration
//! (feature `config`). One translation, used by `svrd` and by the packet generator when it
//! plays a peer router.

use svr_config::{Config, Role, TestMetadataKey};
use svr_crypto::MetadataKey;

use super::keys::KeyPair;
use super::{KeyStore, PathAttr, PeerInfo, ServiceRoute, SvrConfig};
use crate::route::IpPrefix;
use crate::session::{SessionTimeouts, WayportRange};

/// The SVR settings of `cfg`'s local router and node, or `None` when it has no SVR peers
/// (plain routing only). Services of routers that are not peers are left out: SVR cannot
/// reach them from here.
pub fn svr_config(cfg: &Config) -> Option<SvrConfig> {
    let (me, node) = cfg.local();
    if me.peer.is_empty() {
        return None;
    }
    // One table of `vector` labels for paths and policies, so their ids agree.
    let mut labels = svr_linkq::VectorLabels::default();
    let wan_links: Vec<&str> = node
        .device_interface
        .iter()
        .filter(|i| i.role == Role::Wan)
        .map(|i| i.name.as_str())
        .collect();
    let peers: Vec<PeerInfo> = me
        .peer
        .iter()
        .map(|p| PeerInfo {
            name: p.router.clone(),
            waypoints: cfg.waypoints(&p.router),
            source_nat: p.source_nat,
            paths: cfg
                .peer_paths(&p.router)
                .into_iter()
                .map(|pp| PathAttr {
                    local: pp.local,
                    remote: pp.remote,
                    cost: pp.cost,
                    vector: pp.vector.as_deref().and_then(|v| labels.id(v)),
                    local_link: wan_links
                        .iter()
                        .position(|n| *n == pp.interface)
                        .and_then(|i| u8::try_from(i).ok())
                        .unwrap_or(0),
                })
                .collect(),
        })
        .collect();
    let peer_id = |name: &str| peers.iter().position(|p| p.name == name).map(|i| i as u16);
    let services = cfg
        .authority
        .service
        .iter()
        .filter_map(|s| {
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
                policy: cfg
                    .policy_of(s)
                    .map_or_else(svr_linkq::Policy::default, |p| policy(p, &mut labels)),
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
    Some(SvrConfig {
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
    })
}

/// The data path's form of a `service-policy` (docs/multipath.md §1.2); `vector` names are
/// interned in `labels`, the table the paths' labels use.
pub fn policy(
    p: &svr_config::ServicePolicy,
    labels: &mut svr_linkq::VectorLabels,
) -> svr_linkq::Policy {
    use svr_config::VectorPriority as V;
    let mut out = svr_linkq::Policy {
        path_quality_filter: p.path_quality_filter,
        max_latency_ms: u32::try_from(p.max_latency.as_millis()).unwrap_or(u32::MAX),
        max_jitter_ms: u32::try_from(p.max_jitter.as_millis()).unwrap_or(u32::MAX),
        max_loss_percent: p.max_loss.percent(),
        min_mos: p.min_mos.map(|m| m.value()),
        best_effort: p.best_effort,
        best_path: p.best_path,
        lb_strategy: p.lb_strategy,
        session_resiliency: p.session_resiliency,
        vectors: svr_linkq::VectorTable::default(),
    };
    for v in &p.vector {
        let prio = match v.priority {
            V::Priority(n) => svr_linkq::VectorPriority::Priority(n),
            V::Never => svr_linkq::VectorPriority::Never,
        };
        // Validation caps `vector` at MAX_VECTORS entries and 65536 labels is far beyond any
        // file; an entry past either is left out.
        if let Some(id) = labels.id(&v.name) {
            let _ = out.set_vector(id, prio);
        }
    }
    out
}

/// Installs the TEST-MODE metadata keys (`svr-test-metadata-key`), per peer pair: for each
/// peer (numbered in `router.peer` order as in [`svr_config`]) our key for metadata from it
/// (the key of our peer entry for it, else our router-wide one; it decrypts what that peer
/// sends) and its key for us (its peer entry for us, else its router-wide key; we encrypt to
/// it with it). Errors when a peer has no key of ours, or we have neither peers nor a key.
pub fn install_test_keys(cfg: &Config, keys: &KeyStore) -> Result<(), String> {
    use std::sync::Arc;
    let (me, _) = cfg.local();
    let key = |k: &TestMetadataKey| MetadataKey::new(k.rekey_index, &k.encryption_key, &k.hmac_key);
    let pair = |k: Option<&TestMetadataKey>| KeyPair {
        current: k.map(|k| Arc::new(key(k))),
        previous: None,
    };
    if let Some(own) = me.svr_test_metadata_key.as_ref() {
        keys.install_own(key(own));
    } else if me.peer.is_empty() {
        return Err(format!("router {} has no svr-test-metadata-key", me.name));
    }
    for (i, p) in me.peer.iter().enumerate() {
        let own = me.test_key_for(&p.router).ok_or_else(|| {
            format!(
                "router {} has no svr-test-metadata-key for peer {}",
                me.name, p.router
            )
        })?;
        let send = cfg.router(&p.router).and_then(|r| r.test_key_for(&me.name));
        keys.publish_peer(i as u16, pair(Some(own)), pair(send), 0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTER_A: &str = include_str!("../../../testbed/router-a.yaml");

    #[test]
    fn the_testbed_router_a_config_translates() {
        let cfg = Config::parse(ROUTER_A).expect("example parses");
        let c = svr_config(&cfg).expect("router-a has a peer");
        assert_eq!(c.router_name, "router-a");
        assert_eq!(c.peers.len(), 1);
        assert_eq!(c.peers[0].name, "router-b");
        assert_eq!(
            c.peers[0].waypoints,
            vec![
                "10.9.0.2".parse::<std::net::IpAddr>().unwrap(),
                "fd00:9::2".parse().unwrap()
            ]
        );
        assert_eq!(c.local_waypoints, cfg.local_waypoints());
        let site = |n: &str| c.services.iter().find(|s| s.name == n).expect("service");
        assert_eq!(site("site-a").peer, None, "served here");
        assert_eq!(site("site-b").peer, Some(0), "served by router-b");
        assert_eq!(c.wayport_range.first, 16384);
        assert!(
            !c.peers[0].source_nat,
            "no NAT in the testbed: unique wayport pairs"
        );
        assert_eq!(c.wan_mtu, 1500);

        let keys = KeyStore::default();
        install_test_keys(&cfg, &keys).expect("test keys present");
        let snap = keys.load();
        assert!(snap.own(1).is_some(), "our own metadata key, rekey index 1");
        assert!(snap.own(2).is_none());
    }

    #[test]
    fn source_nat_per_peer() {
        let text = ROUTER_A.replace(
            "      peer:\n        - router: router-b\n",
            "      peer:\n        - router: router-b\n          source-nat: true\n",
        );
        let cfg = Config::parse(&text).expect("valid");
        let c = svr_config(&cfg).expect("router-a has a peer");
        assert!(c.peers[0].source_nat);
        let sh = super::super::SvrShared::new(c).expect("valid range");
        assert!(sh
            .pairs()
            .iter()
            .all(|p| p.ports.mode() == crate::session::WayportMode::UniqueDestination));
    }

    /// Test keys per peer pair: a peer entry's `svr-test-metadata-key` is our key for that
    /// peer (it overrides the router-wide one), and the peer's entry for us is the key we
    /// encrypt to it with.
    #[test]
    fn test_keys_per_peer_pair() {
        let key = |i: u32, e: &str, m: &str| {
            format!(
                "          svr-test-metadata-key:\n            rekey-index: {i}\n            encryption-key: \"{}\"\n            hmac-key: \"{}\"\n",
                e.repeat(32),
                m.repeat(48)
            )
        };
        // router-a's entry for router-b, and router-b's entry for router-a.
        let a_entry = "      peer:\n        - router: router-b\n";
        let b_entry = "      peer:\n        - router: router-a\n";
        assert!(ROUTER_A.contains(a_entry) && ROUTER_A.contains(b_entry));
        let text = ROUTER_A
            .replace(a_entry, &format!("{a_entry}{}", key(7, "a7", "17")))
            .replace(b_entry, &format!("{b_entry}{}", key(8, "b8", "28")));
        let cfg = Config::parse(&text).expect("valid");
        let keys = KeyStore::default();
        install_test_keys(&cfg, &keys).expect("test keys present");
        let snap = keys.load();
        let ours = snap.recv(0, 7).expect("our key for router-b");
        assert_eq!(ours.rekey_index(), 7);
        assert!(snap.recv(0, 1).is_some(), "the router-wide key still opens");
        let to_b = snap.peer_current(0).expect("router-b's key for us");
        assert_eq!(to_b.rekey_index(), 8);
        let b_own = MetadataKey::new(8, &[0xb8; 32], &[0x28; 48]);
        use svr_crypto::PacketKey;
        assert_eq!(to_b.sign(b"m"), b_own.sign(b"m"));
    }

    #[test]
    fn no_peers_means_no_svr() {
        let text = ROUTER_A.replace("      peer:\n        - router: router-b\n", "");
        let cfg = Config::parse(&text).expect("still valid without peers");
        assert!(svr_config(&cfg).is_none());
    }
}
