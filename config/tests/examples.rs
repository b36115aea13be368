//! The testbed's example configs parse, describe the testbed, and give the expected EAL
//! command lines.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use svr_config::*;

fn example(name: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testbed")
        .join(name);
    Config::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addr(s: &str) -> InterfaceAddress {
    let (a, l) = s.split_once('/').unwrap();
    InterfaceAddress {
        addr: ip(a),
        prefix_len: l.parse().unwrap(),
    }
}

#[test]
fn both_examples_share_the_authority() {
    let a = example("router-a.yaml");
    let b = example("router-b.yaml");
    assert_eq!(a.local_router, "router-a");
    assert_eq!(b.local_router, "router-b");
    assert_eq!(a.local_node, "node-1");
    assert_eq!(b.local_node, "node-1");
    assert_eq!(a.authority, b.authority);
    assert_eq!(a.local().0.name, "router-a");
    assert_eq!(b.local().0.name, "router-b");
    assert_eq!(a.local_path(), "authority.router[0].node[0]");
    assert_eq!(b.local_path(), "authority.router[1].node[0]");
}

#[test]
fn router_a_example_in_full() {
    let c = example("router-a.yaml");
    let auth = &c.authority;
    assert_eq!(auth.name, "testbed");
    // Test-key mode for the testbed; the key exchange (true) is the production setting.
    assert!(!auth.enhanced_security_key_management);
    assert_eq!(auth.trusted_ca_certificate, None);
    assert_eq!(
        auth.service,
        [
            Service {
                name: "site-a".into(),
                tenant: "blue".into(),
                prefix: vec![(ip("10.1.0.0"), 24), (ip("fd00:1::"), 64)],
                router: "router-a".into(),
                application_name: None,
                service_policy: None,
            },
            Service {
                name: "site-b".into(),
                tenant: "blue".into(),
                prefix: vec![(ip("10.2.0.0"), 24), (ip("fd00:2::"), 64)],
                router: "router-b".into(),
                application_name: None,
                service_policy: None,
            },
        ]
    );
    assert_eq!(
        auth.security_key_management,
        SecurityKeyManagement {
            key_exchange_algorithm: KeyExchangeAlgorithm::X25519,
            payload_key_rekey_interval: RekeyInterval::Hours(24),
            peer_key_rekey_interval: RekeyInterval::Hours(24),
            peer_key_retransmit_interval: Duration::from_secs(30),
            peer_key_timeout: Duration::from_secs(3600),
            test_time_scale: 1,
        }
    );
    let (router, node) = c.local();
    assert_eq!(
        router.peering_common_name.as_deref(),
        Some("router-a.testbed.svr")
    );
    assert_eq!(router.bfd, Bfd::default());
    assert_eq!(
        router.peer,
        [Peer {
            router: "router-b".into(),
            bfd: Bfd::default(),
            source_nat: false,
            svr_test_metadata_key: None,
        }]
    );
    let key = router.svr_test_metadata_key.as_ref().unwrap();
    assert_eq!(key.rekey_index, 1);
    let enc: Vec<u8> = (0xa0..=0xbf).collect();
    let hmac: Vec<u8> = (0x10..=0x3f).collect();
    assert_eq!(key.encryption_key[..], enc[..]);
    assert_eq!(key.hmac_key[..], hmac[..]);
    assert_eq!(
        node.eal,
        Eal {
            memory_mb: 128,
            hugepages: true,
            huge_dir: None,
            file_prefix: "router-a".into(),
            pci_allow: vec![],
            log_level: LogLevel::Notice,
            telemetry: true,
            pdump: true,
        }
    );
    assert_eq!(
        node.core_map,
        CoreMap {
            main_lcore: 0,
            slowpath_lcore: 0,
            idle_backoff: IdleBackoff::Adaptive,
            workers: vec![Worker {
                lcore: 1,
                cpu: Some(1)
            }],
        }
    );
    assert_eq!(node.mempool_mbufs, 4095);
    assert_eq!(
        node.device_interface,
        vec![
            DeviceInterface {
                name: "lan".into(),
                role: Role::Lan,
                device: Device::Vdev("net_af_packet0,iface=ra-lan".into()),
                mtu: 1500,
                address: vec![addr("10.1.0.1/24"), addr("fd00:1::1/64")],
                vector: None,
                adjacency: vec![],
            },
            DeviceInterface {
                name: "wan".into(),
                role: Role::Wan,
                device: Device::Vdev("net_af_packet1,iface=ra-wan".into()),
                mtu: 1500,
                address: vec![addr("10.9.0.1/24"), addr("fd00:9::1/64")],
                vector: None,
                adjacency: vec![],
            },
        ]
    );
    assert_eq!(
        node.route,
        vec![
            Route {
                prefix_addr: ip("10.2.0.0"),
                prefix_len: 24,
                next_hop: Some(ip("10.9.0.2")),
                interface: "wan".into(),
            },
            Route {
                prefix_addr: ip("fd00:2::"),
                prefix_len: 64,
                next_hop: Some(ip("fd00:9::2")),
                interface: "wan".into(),
            },
        ]
    );
    assert!(node.neighbor.is_empty());
    assert_eq!(node.pki, None);
    assert_eq!(node.svr, SvrSettings::default());
    assert_eq!(c.local_waypoints(), [ip("10.9.0.1"), ip("fd00:9::1")]);
    assert_eq!(c.waypoints("router-b"), [ip("10.9.0.2"), ip("fd00:9::2")]);
    let via: Vec<(&str, &str)> = c
        .services_via_peers()
        .iter()
        .map(|(s, r)| (s.name.as_str(), r.name.as_str()))
        .collect();
    assert_eq!(via, [("site-b", "router-b")]);
}

#[test]
fn router_b_routes_back_to_router_a() {
    let c = example("router-b.yaml");
    let (router, node) = c.local();
    assert_eq!(router.peer[0].router, "router-a");
    // Each router has its own test key (byte patterns b0.. and 40..).
    let key = router.svr_test_metadata_key.as_ref().unwrap();
    assert_eq!((key.encryption_key[0], key.hmac_key[0]), (0xb0, 0x40));
    assert_ne!(
        Some(key),
        c.authority.router[0].svr_test_metadata_key.as_ref()
    );
    let via: Vec<(&str, &str)> = c
        .services_via_peers()
        .iter()
        .map(|(s, r)| (s.name.as_str(), r.name.as_str()))
        .collect();
    assert_eq!(via, [("site-a", "router-a")]);
    assert_eq!(c.local_waypoints(), [ip("10.9.0.2"), ip("fd00:9::2")]);
    let nets: Vec<String> = node
        .route
        .iter()
        .map(|r| {
            format!(
                "{}/{} via {}",
                r.prefix_addr,
                r.prefix_len,
                r.next_hop.unwrap()
            )
        })
        .collect();
    assert_eq!(
        nets,
        ["10.1.0.0/24 via 10.9.0.1", "fd00:1::/64 via fd00:9::1"]
    );
    assert_eq!(
        node.interface("wan").unwrap().address[0],
        addr("10.9.0.2/24")
    );
}

#[test]
fn eal_args_of_the_examples() {
    for (file, prefix) in [("router-a.yaml", "router-a"), ("router-b.yaml", "router-b")] {
        let c = example(file);
        let (_, node) = c.local();
        assert_eq!(
            node.eal.args(node, "svrd"),
            [
                "svrd",
                "--lcores",
                "0@0,1@1",
                "--main-lcore",
                "0",
                "-m",
                "128",
                "--file-prefix",
                prefix,
                "--socket-limit",
                "128",
                "--no-pci",
                "--log-level",
                "6",
            ],
            "{file}"
        );
    }
}

#[test]
fn examples_fit_a_two_cpu_machine() {
    let c = example("router-a.yaml");
    assert_eq!(c.check_cpus(&[0, 1]), Ok(()));
    assert_eq!(
        c.check_cpus(&[0]).unwrap_err().to_string(),
        "authority.router[0].node[0].core-map.workers[0].cpu: CPU 1 does not exist on this machine (CPUs 0)"
    );
    // check_host is check_cpus against this machine's CPUs (the examples set no huge-dir).
    let here: Vec<usize> = core_affinity::get_core_ids()
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(c.check_host(), c.check_cpus(&here));
}
