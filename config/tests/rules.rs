//! One test per validation rule: the exact one-line message, with the field path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use svr_config::*;

const EXAMPLE: &str = include_str!("../../testbed/router-a.yaml");

/// The smallest valid file: everything optional left out.
const MINIMAL: &str = "\
local-router: r1
authority:
  name: a
  router:
    - name: r1
      node:
        - name: n1
          core-map:
            workers:
              - lcore: 1
          device-interface:
            - name: wan
              role: wan
              pci-address: \"0000:03:00.0\"
              address: [192.0.2.1/24]
";

/// `text` with the one occurrence of `from` replaced by `to`.
fn with(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once");
    text.replacen(from, to, 1)
}

/// The error message for `text`, checked to be one line.
fn err(text: &str) -> String {
    let e = Config::parse(text)
        .expect_err("must be rejected")
        .to_string();
    assert!(!e.contains('\n'), "not one line: {e}");
    e
}

/// The error message for the example with `from` replaced by `to`.
fn ex(from: &str, to: &str) -> String {
    err(&with(EXAMPLE, from, to))
}

const A: &str = "authority";
/// router-a's `bfd.multiplier` line and what follows it.
const MULT: &str = "        multiplier: 3\n      node:\n        - name: node-1\n          # DPDK";
const N0: &str = "authority.router[0].node[0]";

#[test]
fn minimal_file_gets_the_defaults() {
    let c = Config::parse(MINIMAL).unwrap();
    assert_eq!(c.local_node, "n1");
    assert!(!c.authority.enhanced_security_key_management);
    assert_eq!(
        c.authority.security_key_management,
        SecurityKeyManagement::default()
    );
    let (r, n) = c.local();
    assert_eq!(r.peering_common_name, None);
    assert_eq!(
        r.bfd,
        Bfd {
            desired_tx_interval: Duration::from_millis(1000),
            required_min_rx_interval: Duration::from_millis(500),
            multiplier: 3,
            ..Bfd::default()
        }
    );
    assert_eq!(
        n.eal,
        Eal {
            memory_mb: 256,
            hugepages: true,
            huge_dir: None,
            file_prefix: "r1".into(),
            pci_allow: vec![],
            log_level: LogLevel::Notice,
            telemetry: true,
            pdump: true,
        }
    );
    assert_eq!(n.core_map.main_lcore, 0);
    assert_eq!(n.core_map.slowpath_lcore, 0);
    assert_eq!(n.core_map.idle_backoff, IdleBackoff::Adaptive);
    assert_eq!(n.core_map.workers[0].pinned_cpu(), 1);
    assert_eq!(n.mempool_mbufs, 8191);
    assert_eq!(n.device_interface[0].mtu, 1500);
    assert_eq!(
        n.device_interface[0].device,
        Device::Pci("0000:03:00.0".into())
    );
    assert!(n.route.is_empty() && n.neighbor.is_empty());
    // The PCI interface is allowed on the EAL command line.
    assert_eq!(
        n.eal.args(n, "svrd"),
        [
            "svrd",
            "--lcores",
            "0@0,1@1",
            "--main-lcore",
            "0",
            "-m",
            "256",
            "--file-prefix",
            "r1",
            "--socket-limit",
            "256",
            "-a",
            "0000:03:00.0",
            "--log-level",
            "6"
        ]
    );
}

#[test]
fn eal_args_other_shapes() {
    let text = with(
        MINIMAL,
        "          core-map:\n            workers:\n              - lcore: 1\n",
        "          eal:
            memory-mb: 64
            hugepages: false
            file-prefix: t_1
            pci-allow: [\"0000:05:00.1\", \"0000:03:00.0\"]
            log-level: debug
            telemetry: false
          core-map:
            main-lcore: 2
            slowpath-lcore: 3
            idle-backoff: busy
            workers:
              - lcore: 4
                cpu: 0
              - lcore: 5
",
    );
    let c = Config::parse(&text).unwrap();
    let (_, n) = c.local();
    assert_eq!(n.core_map.idle_backoff, IdleBackoff::Busy);
    // Without hugepages there is no capture (pdump follows hugepages by default).
    assert!(!n.eal.pdump && !n.eal.telemetry);
    assert_eq!(
        n.eal.args(n, "prog"),
        [
            "prog",
            "--lcores",
            "2@2,3@3,4@0,5@5",
            "--main-lcore",
            "2",
            "-m",
            "64",
            "--file-prefix",
            "t_1",
            "--no-huge",
            "-a",
            "0000:05:00.1",
            "-a",
            "0000:03:00.0",
            "--no-telemetry",
            "--log-level",
            "8"
        ]
    );
    let text = with(
        MINIMAL,
        "          core-map:",
        "          eal:\n            huge-dir: /dev/hugepages\n            pdump: false\n          core-map:",
    );
    let c = Config::parse(&text).unwrap();
    let (_, n) = c.local();
    let args = n.eal.args(n, "svrd");
    assert_eq!(
        args[9..15],
        [
            "--huge-unlink",
            "--socket-limit",
            "256",
            "--huge-dir",
            "/dev/hugepages",
            "-a"
        ]
    );
}

#[test]
fn unknown_fields_are_errors_naming_the_path() {
    assert_eq!(
        ex(
            "              mtu: 1500\n              address: [10.9.0.1/24",
            "              mtuu: 1500\n              address: [10.9.0.1/24"
        ),
        format!("{N0}.device-interface[1]: unknown field \"mtuu\"")
    );
    assert_eq!(
        ex("local-router: router-a", "local-routr: router-a"),
        "(top level): unknown field \"local-routr\""
    );
    assert_eq!(
        ex(
            "    peer-key-timeout: 3600",
            "    peer-key-timeout: 3600\n    rekey: 1"
        ),
        format!("{A}.security-key-management: unknown field \"rekey\"")
    );
    assert_eq!(
        ex(MULT, &MULT.replace("3\n", "3\n        echo: 1\n")),
        "authority.router[0].bfd: unknown field \"echo\""
    );
    // A key that is not a string.
    assert_eq!(
        err(&with(MINIMAL, "  name: a\n", "  name: a\n  7: x\n")),
        "authority: unknown field \"7\""
    );
}

#[test]
fn numbers_out_of_range() {
    let skm = "authority.security-key-management";
    let cases: &[(&str, &str, String)] = &[
        ("peer-key-retransmit-interval: 30", "peer-key-retransmit-interval: 4", format!("{skm}.peer-key-retransmit-interval: 4 is below the minimum 5")),
        ("peer-key-retransmit-interval: 30", "peer-key-retransmit-interval: 3601", format!("{skm}.peer-key-retransmit-interval: 3601 is above the maximum 3600")),
        ("peer-key-timeout: 3600", "peer-key-timeout: 59", format!("{skm}.peer-key-timeout: 59 is below the minimum 60")),
        ("peer-key-timeout: 3600", "peer-key-timeout: 86401", format!("{skm}.peer-key-timeout: 86401 is above the maximum 86400")),
        ("payload-key-rekey-interval: 24", "payload-key-rekey-interval: 0", format!("{skm}.payload-key-rekey-interval: 0 is below the minimum 1")),
        ("payload-key-rekey-interval: 24", "payload-key-rekey-interval: 721", format!("{skm}.payload-key-rekey-interval: 721 is above the maximum 720")),
        ("peer-key-rekey-interval: 24", "peer-key-rekey-interval: -3", format!("{skm}.peer-key-rekey-interval: -3 is below the minimum 1")),
        ("        desired-tx-interval: 1000        # ms", "        desired-tx-interval: 49", "authority.router[0].bfd.desired-tx-interval: 49 is below the minimum 50".into()),
        ("        required-min-rx-interval: 500    # ms", "        required-min-rx-interval: 60001", "authority.router[0].bfd.required-min-rx-interval: 60001 is above the maximum 60000".into()),
        (MULT, &MULT.replace("3\n", "1\n"), "authority.router[0].bfd.multiplier: 1 is below the minimum 2".into()),
        (MULT, &MULT.replace("3\n", "256\n"), "authority.router[0].bfd.multiplier: 256 is above the maximum 255".into()),
        ("memory-mb: 128\n            hugepages: true\n            file-prefix: router-a", "memory-mb: 63\n            hugepages: true\n            file-prefix: router-a", format!("{N0}.eal.memory-mb: 63 is below the minimum 64")),
        ("memory-mb: 128\n            hugepages: true\n            file-prefix: router-a", "memory-mb: 65537\n            hugepages: true\n            file-prefix: router-a", format!("{N0}.eal.memory-mb: 65537 is above the maximum 65536")),
        ("mempool-mbufs: 4095\n          # Ports", "mempool-mbufs: 1023\n          # Ports", format!("{N0}.mempool-mbufs: 1023 is below the minimum 1024")),
        ("mempool-mbufs: 4095\n          # Ports", "mempool-mbufs: 1048576\n          # Ports", format!("{N0}.mempool-mbufs: 1048576 is above the maximum 1048575")),
        ("main-lcore: 0\n            slowpath-lcore: 0\n            idle-backoff: adaptive\n            workers:\n              - lcore: 1\n                cpu: 1\n          # Packet", "main-lcore: -1\n            slowpath-lcore: 0\n            idle-backoff: adaptive\n            workers:\n              - lcore: 1\n                cpu: 1\n          # Packet", format!("{N0}.core-map.main-lcore: -1 is below the minimum 0")),
        ("              - lcore: 1\n                cpu: 1\n          # Packet", "              - lcore: 128\n                cpu: 1\n          # Packet", format!("{N0}.core-map.workers[0].lcore: 128 is above the maximum 127")),
        ("              - lcore: 1\n                cpu: 1\n          # Packet", "              - lcore: 1\n                cpu: 1024\n          # Packet", format!("{N0}.core-map.workers[0].cpu: 1024 is above the maximum 1023")),
        ("              mtu: 1500\n              address: [10.1.0.1/24", "              mtu: 575\n              address: [10.1.0.1/24", format!("{N0}.device-interface[0].mtu: 575 is below the minimum 576")),
        ("              mtu: 1500\n              address: [10.1.0.1/24", "              mtu: 9001\n              address: [10.1.0.1/24", format!("{N0}.device-interface[0].mtu: 9001 is above the maximum 9000")),
        ("              mtu: 1500\n              address: [10.1.0.1/24", "              mtu: 1279\n              address: [10.1.0.1/24", format!("{N0}.device-interface[0].mtu: 1279 is below the minimum 1280 for an interface with an IPv6 address")),
    ];
    for (from, to, want) in cases {
        assert_eq!(&ex(from, to), want, "{to}");
    }
    // The same MTU is fine on an IPv4-only interface, and the ranges' ends are accepted.
    let text = with(
        EXAMPLE,
        "mtu: 1500\n              address: [10.1.0.1/24, \"fd00:1::1/64\"]",
        "mtu: 576\n              address: [10.1.0.1/24]",
    );
    let text = with(
        &text,
        "peer-key-retransmit-interval: 30",
        "peer-key-retransmit-interval: 5",
    );
    let text = with(&text, "peer-key-timeout: 3600", "peer-key-timeout: 86400");
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.local().1.device_interface[0].mtu, 576);
    assert_eq!(
        c.authority.security_key_management.peer_key_timeout,
        Duration::from_secs(86400)
    );
}

#[test]
fn rekey_intervals_take_never_and_nothing_else() {
    let text = with(
        EXAMPLE,
        "payload-key-rekey-interval: 24",
        "payload-key-rekey-interval: never",
    );
    let text = with(
        &text,
        "peer-key-rekey-interval: 24",
        "peer-key-rekey-interval: 720",
    );
    let skm = Config::parse(&text)
        .unwrap()
        .authority
        .security_key_management;
    assert_eq!(skm.payload_key_rekey_interval, RekeyInterval::Never);
    assert_eq!(skm.peer_key_rekey_interval, RekeyInterval::Hours(720));
    assert_eq!(
        skm.peer_key_rekey_interval.as_duration(),
        Some(Duration::from_secs(720 * 3600))
    );
    assert_eq!(
        ex("payload-key-rekey-interval: 24", "payload-key-rekey-interval: sometimes"),
        "authority.security-key-management.payload-key-rekey-interval: \"sometimes\" is not one of 1-720 (hours), never"
    );
    assert_eq!(
        ex("peer-key-rekey-interval: 24", "peer-key-rekey-interval: true"),
        "authority.security-key-management.peer-key-rekey-interval: expected a number of hours (1-720) or \"never\", found true"
    );
}

#[test]
fn choices() {
    assert_eq!(
        ex("key-exchange-algorithm: x25519", "key-exchange-algorithm: ml-kem"),
        "authority.security-key-management.key-exchange-algorithm: \"ml-kem\" is not one of x25519, dh-modp-4096"
    );
    let c = Config::parse(&with(
        EXAMPLE,
        "key-exchange-algorithm: x25519",
        "key-exchange-algorithm: dh-modp-4096",
    ))
    .unwrap();
    assert_eq!(
        c.authority.security_key_management.key_exchange_algorithm,
        KeyExchangeAlgorithm::DhModp4096
    );
    assert_eq!(
        ex(
            "              role: lan\n              vdev: \"net_af_packet0,iface=ra-lan\"",
            "              role: dmz\n              vdev: \"net_af_packet0,iface=ra-lan\""
        ),
        format!("{N0}.device-interface[0].role: \"dmz\" is not one of lan, wan")
    );
    assert_eq!(
        ex("idle-backoff: adaptive\n            workers:\n              - lcore: 1\n                cpu: 1\n          # Packet", "idle-backoff: spin\n            workers:\n              - lcore: 1\n                cpu: 1\n          # Packet"),
        format!("{N0}.core-map.idle-backoff: \"spin\" is not one of busy, adaptive")
    );
    assert_eq!(
        ex("log-level: notice\n          # Threads", "log-level: verbose\n          # Threads"),
        format!("{N0}.eal.log-level: \"verbose\" is not one of emerg, alert, crit, error, warning, notice, info, debug")
    );
}

#[test]
fn type_errors_name_the_path() {
    assert_eq!(
        ex(
            "              mtu: 1500\n              address: [10.1.0.1/24",
            "              mtu: \"1500\"\n              address: [10.1.0.1/24"
        ),
        format!("{N0}.device-interface[0].mtu: expected an integer, found \"1500\"")
    );
    assert_eq!(
        ex(
            "            hugepages: true\n            file-prefix: router-a",
            "            hugepages: yes\n            file-prefix: router-a"
        ),
        format!("{N0}.eal.hugepages: expected true or false, found \"yes\"")
    );
    assert_eq!(
        ex(
            "address: [10.1.0.1/24, \"fd00:1::1/64\"]",
            "address: 10.1.0.1/24"
        ),
        format!("{N0}.device-interface[0].address: expected a list, found \"10.1.0.1/24\"")
    );
    assert_eq!(
        ex(MULT, &MULT.replace("3\n", "2.5\n")),
        "authority.router[0].bfd.multiplier: expected an integer, found 2.5"
    );
    assert_eq!(
        ex("  name: testbed", "  name: [testbed]"),
        "authority.name: expected a string, found a list"
    );
    assert_eq!(
        err("local-router: r1\nauthority: 3\n"),
        "authority: expected a mapping, found 3"
    );
    assert_eq!(
        err("- a\n- b\n"),
        "(top level): expected a mapping, found a list"
    );
    assert_eq!(
        ex("  name: testbed", "  name: !secret testbed"),
        "authority.name: expected a string, found a value tagged \"!secret\""
    );
}

#[test]
fn required_fields() {
    assert_eq!(
        err(&with(MINIMAL, "  name: a\n", "")),
        "authority.name: required field is missing"
    );
    assert_eq!(
        err(&with(MINIMAL, "local-router: r1\n", "")),
        "local-router: required field is missing"
    );
    assert_eq!(
        err(&with(MINIMAL, "              role: wan\n", "")),
        "authority.router[0].node[0].device-interface[0].role: required field is missing"
    );
    assert_eq!(
        err(&with(MINIMAL, "  name: a\n", "  name: \"  \"\n")),
        "authority.name: must not be empty"
    );
}

#[test]
fn names_must_be_unique() {
    // A third router (added last, so that no reference to router-b dangles).
    assert_eq!(
        err(&format!("{EXAMPLE}    - name: router-a\n      node: [{{name: n, core-map: {{workers: [{{lcore: 1}}]}}, device-interface: [{{name: wan, role: wan, vdev: net_tap0, address: [192.0.2.1/24]}}]}}]\n")),
        "authority.router[2].name: duplicate router name \"router-a\" (first at authority.router[0].name)"
    );
    assert_eq!(
        ex("peering-common-name: router-b.testbed.svr", "peering-common-name: ROUTER-A.testbed.svr"),
        "authority.router[1].peering-common-name: duplicate peering-common-name \"ROUTER-A.testbed.svr\" (first at authority.router[0].peering-common-name)"
    );
    let two_nodes = with(
        MINIMAL,
        "      node:\n",
        "      node:
        - name: n1
          core-map: {workers: [{lcore: 1}]}
          device-interface: [{name: lan, role: lan, vdev: net_tap0, address: [198.51.100.1/24]}]
",
    );
    assert_eq!(
        err(&with(&two_nodes, "local-router: r1\n", "local-router: r1\nlocal-node: n1\n")),
        "authority.router[0].node[1].name: duplicate node name \"n1\" (first at authority.router[0].node[0].name)"
    );
    assert_eq!(
        ex("            - name: wan\n              role: wan\n              vdev: \"net_af_packet1,iface=ra-wan\"", "            - name: lan\n              role: wan\n              vdev: \"net_af_packet1,iface=ra-wan\""),
        format!("{N0}.device-interface[1].name: duplicate device-interface name \"lan\" (first at {N0}.device-interface[0].name)")
    );
    assert_eq!(
        ex("vdev: \"net_af_packet1,iface=ra-wan\"", "vdev: \"net_af_packet0,iface=ra-wan\""),
        format!("{N0}.device-interface[1].vdev: duplicate device \"net_af_packet0\" (first at {N0}.device-interface[0].vdev)")
    );
    assert_eq!(
        ex("address: [10.9.0.1/24, \"fd00:9::1/64\"]", "address: [10.9.0.1/24, \"fd00:1::1/48\"]"),
        format!("{N0}.device-interface[1].address[1]: duplicate interface address fd00:1::1 (first at {N0}.device-interface[0].address[1])")
    );
    assert_eq!(
        ex("              - lcore: 1\n                cpu: 1\n          # Packet", "              - lcore: 1\n                cpu: 1\n              - lcore: 1\n          # Packet"),
        format!("{N0}.core-map.workers[1].lcore: duplicate worker lcore 1 (first at {N0}.core-map.workers[0].lcore)")
    );
    assert_eq!(
        ex("          route:\n            - prefix: 10.2.0.0/24", "          route:\n            - prefix: \"fd00:2::/64\"\n              interface: wan\n            - prefix: 10.2.0.0/24"),
        format!("{N0}.route[2].prefix: duplicate route prefix fd00:2::/64 (first at {N0}.route[0].prefix)")
    );
    assert_eq!(
        ex("          neighbor: []\n\n    - name: router-b", "          neighbor:\n            - {address: 10.9.0.2, mac: \"02:00:00:00:09:02\", interface: wan}\n            - {address: 10.9.0.2, mac: \"02:00:00:00:09:03\", interface: wan}\n\n    - name: router-b"),
        format!("{N0}.neighbor[1].address: duplicate neighbor address 10.9.0.2 (first at {N0}.neighbor[0].address)")
    );
}

#[test]
fn references_must_resolve() {
    assert_eq!(
        ex(
            "              next-hop: 10.9.0.2\n              interface: wan",
            "              next-hop: 10.9.0.2\n              interface: wam"
        ),
        format!("{N0}.route[0].interface: \"wam\" does not name a device-interface of this node")
    );
    assert_eq!(
        ex("          neighbor: []\n\n    - name: router-b", "          neighbor:\n            - {address: 10.9.0.2, mac: \"02:00:00:00:09:02\", interface: eth9}\n\n    - name: router-b"),
        format!("{N0}.neighbor[0].interface: \"eth9\" does not name a device-interface of this node")
    );
    assert_eq!(
        ex("local-router: router-a", "local-router: router-c"),
        "local-router: \"router-c\" does not name a router in authority.router"
    );
    assert_eq!(
        ex(
            "local-router: router-a",
            "local-router: router-a\nlocal-node: node-2"
        ),
        "local-node: \"node-2\" does not name a node of the local router"
    );
    let c = Config::parse(&with(
        EXAMPLE,
        "local-router: router-a",
        "local-router: router-b\nlocal-node: node-1",
    ))
    .unwrap();
    assert_eq!(c.local().0.name, "router-b");
    // A router with two nodes needs local-node.
    let two_nodes = with(
        MINIMAL,
        "      node:\n",
        "      node:
        - name: n0
          core-map: {workers: [{lcore: 1}]}
          device-interface: [{name: lan, role: lan, vdev: net_tap0, address: [198.51.100.1/24]}]
",
    );
    assert_eq!(
        err(&two_nodes),
        "local-node: required because router \"r1\" has 2 nodes (n0, n1)"
    );
    let c = Config::parse(&with(
        &two_nodes,
        "local-router: r1\n",
        "local-router: r1\nlocal-node: n1\n",
    ))
    .unwrap();
    assert_eq!(c.local().1.name, "n1");
}

#[test]
fn interface_addresses() {
    assert_eq!(
        ex(
            "address: [10.1.0.1/24, \"fd00:1::1/64\"]",
            "address: [10.1.0.1/24, \"10.1.0.300/24\"]"
        ),
        format!(
            "{N0}.device-interface[0].address[1]: \"10.1.0.300/24\" is not an IPv4 or IPv6 prefix"
        )
    );
    for bad in [
        "10.1.0.1",
        "10.1.0.1/33",
        "fd00:1::1/129",
        "lan",
        "fe80::1%eth0/64",
    ] {
        assert_eq!(
            ex(
                "address: [10.1.0.1/24, \"fd00:1::1/64\"]",
                &format!("address: [\"{bad}\"]")
            ),
            format!("{N0}.device-interface[0].address[0]: \"{bad}\" is not an IPv4 or IPv6 prefix")
        );
    }
    assert_eq!(
        ex("address: [10.1.0.1/24, \"fd00:1::1/64\"]", "address: [10.1.0.0/24]"),
        format!("{N0}.device-interface[0].address[0]: \"10.1.0.0/24\" is the network or broadcast address of its prefix, not a host address")
    );
    assert_eq!(
        ex("address: [10.1.0.1/24, \"fd00:1::1/64\"]", "address: [\"ff02::1/64\"]"),
        format!("{N0}.device-interface[0].address[0]: \"ff02::1/64\" is not a unicast address usable on an interface")
    );
    assert_eq!(
        ex("address: [10.1.0.1/24, \"fd00:1::1/64\"]", "address: []"),
        format!("{N0}.device-interface[0].address: at least one address is required")
    );
    // Host bits are the address itself; /31 and /32 have no network/broadcast address.
    let c = Config::parse(&with(
        EXAMPLE,
        "address: [10.1.0.1/24, \"fd00:1::1/64\"]",
        "address: [10.1.0.0/31, 10.1.1.7/32, \"fd00:1::/64\"]",
    ))
    .unwrap();
    let a = &c.local().1.device_interface[0].address;
    assert_eq!(a[2].to_string(), "fd00:1::/64");
    assert_eq!(a[1].network().to_string(), "10.1.1.7");
}

#[test]
fn routes() {
    assert_eq!(
        ex("prefix: 10.2.0.0/24", "prefix: 10.2.0.1/24"),
        format!(
            "{N0}.route[0].prefix: \"10.2.0.1/24\" has host bits set; the network is 10.2.0.0/24"
        )
    );
    assert_eq!(
        ex("prefix: 10.2.0.0/24", "prefix: 10.2.0.0"),
        format!("{N0}.route[0].prefix: \"10.2.0.0\" is not an IPv4 or IPv6 prefix")
    );
    assert_eq!(
        ex("next-hop: 10.9.0.2", "next-hop: \"fd00:9::2\""),
        format!("{N0}.route[0].next-hop: fd00:9::2 is an IPv6 address but the prefix 10.2.0.0/24 is IPv4")
    );
    assert_eq!(
        ex("next-hop: \"fd00:9::2\"", "next-hop: 10.9.0.2"),
        format!("{N0}.route[1].next-hop: 10.9.0.2 is an IPv4 address but the prefix fd00:2::/64 is IPv6")
    );
    assert_eq!(
        ex("next-hop: 10.9.0.2", "next-hop: 10.8.0.2"),
        format!("{N0}.route[0].next-hop: 10.8.0.2 is not on-link on device-interface \"wan\" (addresses 10.9.0.1/24, fd00:9::1/64)")
    );
    assert_eq!(
        ex("next-hop: 10.9.0.2", "next-hop: 10.9.0.1"),
        format!(
            "{N0}.route[0].next-hop: 10.9.0.1 is an address of device-interface \"wan\" itself"
        )
    );
    assert_eq!(
        ex("next-hop: 10.9.0.2", "next-hop: 10.9.0.256"),
        format!("{N0}.route[0].next-hop: \"10.9.0.256\" is not an IPv4 or IPv6 address")
    );
    // The next hop must be on-link on the interface named, not on another one.
    assert_eq!(
        ex("              next-hop: 10.9.0.2\n              interface: wan", "              next-hop: 10.9.0.2\n              interface: lan"),
        format!("{N0}.route[0].next-hop: 10.9.0.2 is not on-link on device-interface \"lan\" (addresses 10.1.0.1/24, fd00:1::1/64)")
    );
    // IPv6 link-local next hops are on-link by definition; no next hop = directly connected.
    let text = with(EXAMPLE, "next-hop: \"fd00:9::2\"", "next-hop: \"fe80::2\"");
    let text = with(&text, "              next-hop: 10.9.0.2\n", "");
    let c = Config::parse(&text).unwrap();
    let r = &c.local().1.route;
    assert_eq!(r[0].next_hop, None);
    assert_eq!(r[1].next_hop, Some("fe80::2".parse().unwrap()));
    // A default route.
    let text = with(EXAMPLE, "prefix: 10.2.0.0/24", "prefix: 0.0.0.0/0");
    assert_eq!(
        Config::parse(&text).unwrap().local().1.route[0].prefix_len,
        0
    );
}

#[test]
fn neighbors() {
    let nb = |entry: &str| {
        with(
            EXAMPLE,
            "          neighbor: []\n\n    - name: router-b",
            &format!("          neighbor:\n            - {entry}\n\n    - name: router-b"),
        )
    };
    let c = Config::parse(&nb(
        "{address: 10.9.0.2, mac: \"02:00:00:00:09:0A\", interface: wan}",
    ))
    .unwrap();
    assert_eq!(
        c.local().1.neighbor,
        [Neighbor {
            address: "10.9.0.2".parse().unwrap(),
            mac: [2, 0, 0, 0, 9, 0x0a],
            interface: "wan".into()
        }]
    );
    assert!(Config::parse(&nb(
        "{address: \"fe80::2\", mac: \"02:00:00:00:09:02\", interface: wan}"
    ))
    .is_ok());
    assert_eq!(
        err(&nb(
            "{address: 10.9.0.2, mac: \"02:00:00:00:09\", interface: wan}"
        )),
        format!(
            "{N0}.neighbor[0].mac: \"02:00:00:00:09\" is not a MAC address like 02:00:00:00:09:02"
        )
    );
    assert_eq!(
        err(&nb("{address: 10.9.0.2, mac: \"02-00-00-00-09-02\", interface: wan}")),
        format!("{N0}.neighbor[0].mac: \"02-00-00-00-09-02\" is not a MAC address like 02:00:00:00:09:02")
    );
    assert_eq!(
        err(&nb(
            "{address: 10.9.0.2, mac: \"01:00:5e:00:00:01\", interface: wan}"
        )),
        format!("{N0}.neighbor[0].mac: \"01:00:5e:00:00:01\" is not a unicast MAC address")
    );
    assert_eq!(
        err(&nb("{address: 10.1.0.2, mac: \"02:00:00:00:09:02\", interface: wan}")),
        format!("{N0}.neighbor[0].address: 10.1.0.2 is not on-link on device-interface \"wan\" (addresses 10.9.0.1/24, fd00:9::1/64)")
    );
}

#[test]
fn devices() {
    let lan_vdev = "              vdev: \"net_af_packet0,iface=ra-lan\"\n";
    assert_eq!(
        ex(lan_vdev, "              vdev: \"net_af_packet0,iface=ra-lan\"\n              pci-address: \"0000:03:00.0\"\n"),
        format!("{N0}.device-interface[0].pci-address: cannot be given together with vdev; give exactly one")
    );
    assert_eq!(
        ex(lan_vdev, "              pci-address: \"0000:03:00.0\"\n              vdev: \"net_af_packet0,iface=ra-lan\"\n"),
        format!("{N0}.device-interface[0].vdev: cannot be given together with pci-address; give exactly one")
    );
    assert_eq!(
        ex(lan_vdev, ""),
        format!("{N0}.device-interface[0]: needs exactly one of vdev or pci-address")
    );
    assert_eq!(
        ex(lan_vdev, "              vdev: \"af_packet0,iface=ra-lan\"\n"),
        format!("{N0}.device-interface[0].vdev: \"af_packet0,iface=ra-lan\" is not a vdev string net_<driver><n>[,key=value...]")
    );
    assert_eq!(
        ex(lan_vdev, "              vdev: \"net_af_packet,iface=ra-lan\"\n"),
        format!("{N0}.device-interface[0].vdev: \"net_af_packet,iface=ra-lan\" is not a vdev string net_<driver><n>[,key=value...]")
    );
    assert_eq!(
        ex(lan_vdev, "              pci-address: 0000:03:00.8\n"),
        format!("{N0}.device-interface[0].pci-address: \"0000:03:00.8\" is not a PCI address DDDD:BB:DD.F")
    );
    // An unquoted PCI address is a string in YAML 1.2, and it is allowed on the EAL line.
    let c = Config::parse(&with(
        EXAMPLE,
        lan_vdev,
        "              pci-address: 0000:03:00.0\n",
    ))
    .unwrap();
    let (_, n) = c.local();
    assert_eq!(
        n.device_interface[0].device,
        Device::Pci("0000:03:00.0".into())
    );
    assert_eq!(n.eal.args(n, "svrd")[11..13], ["-a", "0000:03:00.0"]);
    assert_eq!(
        ex(
            "pci-allow: []                # af_packet",
            "pci-allow: [\"03:00.0\"]  # af_packet"
        ),
        format!("{N0}.eal.pci-allow[0]: \"03:00.0\" is not a PCI address DDDD:BB:DD.F")
    );
    assert_eq!(
        ex("pci-allow: []                # af_packet", "pci-allow: [\"0000:03:00.0\", \"0000:03:00.0\"]  # af_packet"),
        format!("{N0}.eal.pci-allow[1]: duplicate PCI address \"0000:03:00.0\" (first at {N0}.eal.pci-allow[0])")
    );
    assert_eq!(
        ex("            - name: wan\n              role: wan\n              vdev: \"net_af_packet1,iface=ra-wan", "            - name: Wan\n              role: wan\n              vdev: \"net_af_packet1,iface=ra-wan"),
        format!("{N0}.device-interface[1].name: \"Wan\" is not an interface name of 1-32 characters [a-z0-9-]")
    );
}

#[test]
fn eal_settings() {
    assert_eq!(
        ex("            file-prefix: router-a", "            file-prefix: router/a"),
        format!("{N0}.eal.file-prefix: \"router/a\" is not a file prefix of 1-63 characters [A-Za-z0-9_-]")
    );
    assert_eq!(
        ex("            hugepages: true\n            file-prefix: router-a", "            hugepages: false\n            huge-dir: /dev/hugepages\n            file-prefix: router-a"),
        format!("{N0}.eal.huge-dir: has no meaning when hugepages is false")
    );
    assert_eq!(
        ex("            hugepages: true\n            file-prefix: router-a", "            hugepages: false\n            pdump: true\n            file-prefix: router-a"),
        format!("{N0}.eal.pdump: needs hugepages: true (dpdk-dumpcap, a DPDK secondary process, maps svrd's hugepage memory; --no-huge memory cannot be shared)")
    );
    assert!(
        ex(
            "            file-prefix: router-a",
            "            telemetry: yes\n            file-prefix: router-a"
        )
        .starts_with(&format!("{N0}.eal.telemetry: ")),
        "telemetry must be a boolean"
    );
    assert_eq!(
        ex(
            "            file-prefix: router-a",
            "            huge-dir: hugepages\n            file-prefix: router-a"
        ),
        format!("{N0}.eal.huge-dir: \"hugepages\" is not an absolute path")
    );
}

#[test]
fn core_map() {
    let workers = "            workers:\n              - lcore: 1\n                cpu: 1\n          # Packet";
    assert_eq!(
        ex(workers, "            workers: []\n          # Packet"),
        format!("{N0}.core-map.workers: at least one worker is required")
    );
    assert_eq!(
        ex(workers, "            workers:\n          # Packet"),
        format!("{N0}.core-map.workers: at least one worker is required")
    );
    assert_eq!(
        ex(workers, "            workers:\n              - lcore: 0\n          # Packet"),
        format!("{N0}.core-map.workers[0].lcore: lcore 0 is the main-lcore; a worker needs its own lcore")
    );
    assert_eq!(
        ex("slowpath-lcore: 0\n            idle-backoff: adaptive\n            workers:\n              - lcore: 1\n                cpu: 1\n          # Packet", "slowpath-lcore: 1\n            idle-backoff: adaptive\n            workers:\n              - lcore: 1\n                cpu: 1\n          # Packet"),
        format!("{N0}.core-map.workers[0].lcore: lcore 1 is the slowpath-lcore; a worker needs its own lcore")
    );
    assert_eq!(
        ex(
            workers,
            "            workers:\n              - cpu: 1\n          # Packet"
        ),
        format!("{N0}.core-map.workers[0].lcore: required field is missing")
    );
}

#[test]
fn host_checks_are_separate_from_parsing() {
    // Parsing accepts any CPU number in range, whatever the machine.
    let text = with(
        EXAMPLE,
        "              - lcore: 1\n                cpu: 1\n          # Packet",
        "              - lcore: 1\n                cpu: 7\n          # Packet",
    );
    let c = Config::parse(&text).unwrap();
    assert_eq!(
        c.check_cpus(&[0, 1]).unwrap_err().to_string(),
        "authority.router[0].node[0].core-map.workers[0].cpu: CPU 7 does not exist on this machine (CPUs 0-1)"
    );
    // Without `cpu`, the lcore id is the CPU.
    let text = with(
        EXAMPLE,
        "              - lcore: 1\n                cpu: 1\n          # Packet",
        "              - lcore: 5\n          # Packet",
    );
    let c = Config::parse(&text).unwrap();
    assert_eq!(
        c.check_cpus(&[0, 1, 2, 3]).unwrap_err().to_string(),
        "authority.router[0].node[0].core-map.workers[0].lcore: CPU 5 does not exist on this machine (CPUs 0-3)"
    );
    assert_eq!(c.check_cpus(&[0, 5]), Ok(()));
    // Main lcore, and only the local node is checked (router-b's node is another machine).
    let text = with(EXAMPLE, "main-lcore: 0\n            slowpath-lcore: 0\n            idle-backoff: adaptive\n            workers:\n              - lcore: 1\n                cpu: 1\n          # Packet", "main-lcore: 3\n            slowpath-lcore: 0\n            idle-backoff: adaptive\n            workers:\n              - lcore: 1\n                cpu: 1\n          # Packet");
    let c = Config::parse(&text).unwrap();
    assert_eq!(
        c.check_cpus(&[0, 1]).unwrap_err().to_string(),
        "authority.router[0].node[0].core-map.main-lcore: CPU 3 does not exist on this machine (CPUs 0-1)"
    );
    let text = with(&text, "local-router: router-a", "local-router: router-b");
    assert_eq!(Config::parse(&text).unwrap().check_cpus(&[0, 1]), Ok(()));
    // A huge-dir that does not exist.
    let text = with(
        EXAMPLE,
        "            file-prefix: router-a",
        "            huge-dir: /nonexistent/hugepages\n            file-prefix: router-a",
    );
    let c = Config::parse(&text).unwrap();
    if c.check_cpus(&cpus_here()).is_ok() {
        assert_eq!(
            c.check_host().unwrap_err().to_string(),
            "authority.router[0].node[0].eal.huge-dir: /nonexistent/hugepages is not a directory on this machine"
        );
    }
}

fn cpus_here() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

#[test]
fn security_cross_rules() {
    assert_eq!(
        err(&with(&esk_example(), "      peering-common-name: router-b.testbed.svr\n", "")),
        "authority.router[1].peering-common-name: required when authority.enhanced-security-key-management is true"
    );
    // The example has enhanced security key management off: no peering-common-name needed.
    let c = Config::parse(&with(
        EXAMPLE,
        "      peering-common-name: router-b.testbed.svr\n",
        "",
    ))
    .unwrap();
    assert_eq!(c.authority.router[1].peering_common_name, None);
    assert_eq!(
        ex("peering-common-name: router-b.testbed.svr", "peering-common-name: router_b.testbed.svr"),
        "authority.router[1].peering-common-name: \"router_b.testbed.svr\" is not a DNS name (labels of [A-Za-z0-9-])"
    );
    let text = with(
        EXAMPLE,
        "peer-key-retransmit-interval: 30",
        "peer-key-retransmit-interval: 3600",
    );
    assert_eq!(
        err(&with(&text, "peer-key-timeout: 3600", "peer-key-timeout: 600")),
        "authority.security-key-management.peer-key-timeout: 600 must be at least peer-key-retransmit-interval (3600)"
    );
    assert!(Config::parse(&text).is_ok(), "equal is fine");
}

#[test]
fn first_error_in_document_order() {
    // Two errors: the one earlier in the file wins, whichever check runs first.
    let text = with(
        EXAMPLE,
        "      location: testbed site B",
        "      location: \"\"",
    );
    let text = with(
        &text,
        "              mtu: 1500\n              address: [10.1.0.1/24",
        "              mtu: 1\n              address: [10.1.0.1/24",
    );
    assert_eq!(
        err(&text),
        format!("{N0}.device-interface[0].mtu: 1 is below the minimum 576")
    );
    // A route listed before the interfaces, naming a missing interface, comes before an
    // interface error; the same route listed after them comes after it.
    let node = |route_first: bool| {
        let route = "          route: [{prefix: 10.0.0.0/8, interface: wam}]\n";
        let ifaces = "          device-interface: [{name: wan, role: wan, vdev: net_tap0, mtu: 99, address: [192.0.2.1/24]}]\n";
        let body = if route_first {
            format!("{route}{ifaces}")
        } else {
            format!("{ifaces}{route}")
        };
        format!("local-router: r1\nauthority:\n  name: a\n  router:\n    - name: r1\n      node:\n        - name: n1\n          core-map: {{workers: [{{lcore: 1}}]}}\n{body}")
    };
    let route_err = "authority.router[0].node[0].route[0].interface: \"wam\" does not name a device-interface of this node";
    let mtu_err =
        "authority.router[0].node[0].device-interface[0].mtu: 99 is below the minimum 576";
    assert_eq!(err(&node(true)), route_err);
    assert_eq!(err(&node(false)), mtu_err);
    // diagnose lists them all, in document order.
    let all: Vec<String> = Config::diagnose(&node(false))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(all, [mtu_err, route_err]);
    // local-router is checked even when the authority has errors, at its own place.
    let text = with(EXAMPLE, "local-router: router-a", "local-router: nobody");
    let text = with(&text, "  name: testbed", "  name: 5");
    assert_eq!(
        err(&text),
        "local-router: \"nobody\" does not name a router in authority.router"
    );
    let moved = format!(
        "{}\nlocal-router: nobody\n",
        with(&text, "local-router: nobody", "")
    );
    assert_eq!(err(&moved), "authority.name: expected a string, found 5");
    // An interface with an error does not make routes through it look dangling.
    let text = with(
        EXAMPLE,
        "role: wan\n              vdev: \"net_af_packet1,iface=ra-wan\"",
        "role: waan\n              vdev: \"net_af_packet1,iface=ra-wan\"",
    );
    assert_eq!(Config::diagnose(&text).len(), 1);
}

#[test]
fn yaml_errors_have_line_and_column() {
    let e = err("local-router: r1\nauthority:\n  name: [unclosed\n");
    assert!(e.starts_with("<config>:"), "{e}");
    assert!(e.contains("YAML error"), "{e}");
    let e = Config::parse("a: 1\nb: : 2\n").unwrap_err();
    let ConfigError::Syntax { line, column, .. } = e else {
        panic!("{e:?}")
    };
    assert_eq!((line, column), (2, 4));
    assert_eq!(
        err("local-router: r1\nlocal-router: r2\n"),
        "<config>:1:1: YAML error: duplicate entry with key \"local-router\" (in the mapping that starts here)"
    );
    assert_eq!(
        err(&with(MINIMAL, "              role: wan\n", "              role: wan\n              name: x\n")),
        "<config>:12:15: YAML error: authority.router[0].node[0].device-interface[0]: duplicate entry with key \"name\" (in the mapping that starts here)"
    );
    let e = err("a: 1\n---\nb: 2\n");
    assert!(e.contains("more than one document"), "{e}");
    assert!(e.starts_with("<config>"), "{e}");
}

fn tmp(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("svr-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn files() {
    let empty = tmp("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    assert_eq!(
        Config::load(&empty).unwrap_err().to_string(),
        format!("{}: config is empty (no YAML document)", empty.display())
    );
    let comments = tmp("comments.yaml");
    std::fs::write(&comments, "# nothing here\n\n---\n").unwrap();
    assert_eq!(
        Config::load(&comments).unwrap_err(),
        ConfigError::Empty {
            file: comments.display().to_string()
        }
    );
    assert_eq!(
        Config::parse("").unwrap_err().to_string(),
        "<config>: config is empty (no YAML document)"
    );
    let missing = tmp("missing.yaml");
    let e = Config::load(&missing).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: cannot read config file: ", missing.display())),
        "{e}"
    );
    assert!(!e.contains('\n'));
    let dir = tmp("a-directory");
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(
        Config::load(&dir).unwrap_err().to_string(),
        format!("{}: is a directory, not a config file", dir.display())
    );
    let binary = tmp("binary.yaml");
    std::fs::write(&binary, b"local-router: \xff\n").unwrap();
    assert_eq!(
        Config::load(&binary).unwrap_err().to_string(),
        format!(
            "{}: cannot read config file: not UTF-8 text (invalid byte at offset 14)",
            binary.display()
        )
    );
    let bad = tmp("bad.yaml");
    std::fs::write(&bad, "local-router: r1\n  x: [\n").unwrap();
    let e = Config::load(&bad).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:2:", bad.display())), "{e}");
    let good = tmp("good.yaml");
    std::fs::write(&good, MINIMAL).unwrap();
    assert_eq!(
        Config::load(&good).unwrap(),
        Config::parse(MINIMAL).unwrap()
    );
}

#[test]
fn error_paths_are_exposed() {
    let e = Config::parse(&with(MINIMAL, "  name: a\n", "")).unwrap_err();
    assert_eq!(e.path(), Some("authority.name"));
    assert_eq!(Config::parse("").unwrap_err().path(), None);
}

// ---------------------------------------------------------------------------------------
// SVR: services, peers, keys, PKI, data-plane settings.

const R0: &str = "authority.router[0]";
const KEY_A: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";
const HMAC_A: &str = "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
const ESK_FALSE: &str = "\n  enhanced-security-key-management: false\n";
const ESK_TRUE: &str = "\n  enhanced-security-key-management: true\n";
/// router-a's `svr-test-metadata-key` block.
const KEY_BLOCK_A: &str =
    "      svr-test-metadata-key:\n        rekey-index: 1\n        encryption-key: \"a0a1";
/// Where the local node's `svr` block starts.
const SVR_A: &str =
    "          # SVR data plane (these are the defaults, spelled out).\n          svr:\n";

/// `text` without its `svr-test-metadata-key` blocks (the key line and the three after).
fn without_test_keys(text: &str) -> String {
    let mut out = String::new();
    let mut skip = 0;
    for l in text.lines() {
        if l.trim_start().starts_with("svr-test-metadata-key:") {
            skip = 4;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The example in key-exchange mode (the production setting): enhanced security key
/// management on, no test keys, the root CA and router-a's node PKI files given (relative).
fn esk_example() -> String {
    let t = without_test_keys(&with(EXAMPLE, ESK_FALSE, ESK_TRUE));
    let t = with(
        &t,
        "  # trusted-ca-certificate: /etc/svrd/pki/root.pem\n",
        "  trusted-ca-certificate: pki/root.pem\n",
    );
    with(
        &t,
        SVR_A,
        &format!("          pki:\n            certificate-chain: pki/router-a.chain.pem\n            private-key: /etc/svrd/pki/router-a.key.pem\n{SVR_A}"),
    )
}

/// The example with router-a's `svr` block replaced by `svr`.
fn svr(body: &str) -> String {
    let start = EXAMPLE.find(SVR_A).unwrap();
    let end = start
        + EXAMPLE[start..]
            .find("          # Static neighbours")
            .unwrap();
    format!("{}{body}{}", &EXAMPLE[..start], &EXAMPLE[end..])
}

#[test]
fn services() {
    let c = Config::parse(EXAMPLE).unwrap();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert_eq!(
        c.authority.service,
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
    assert!(c.authority.service[1].contains(ip("10.2.0.77")));
    assert!(!c.authority.service[1].contains(ip("10.1.0.77")));
    let site_a = "    - name: site-a\n      tenant: blue\n";
    let c = Config::parse(&with(
        EXAMPLE,
        site_a,
        "    - name: site-a\n      tenant: blue.sub_1-x\n      application-name: web\n",
    ))
    .unwrap();
    assert_eq!(c.authority.service[0].tenant, "blue.sub_1-x");
    assert_eq!(
        c.authority.service[0].application_name.as_deref(),
        Some("web")
    );
    // No services at all is fine.
    assert!(Config::parse(MINIMAL).unwrap().authority.service.is_empty());
    let s0 = "authority.service[0]";
    let cases: &[(&str, &str, String)] = &[
        (site_a, "    - name: site b\n      tenant: blue\n", format!("{s0}.name: \"site b\" is not a name of 1-63 characters [A-Za-z0-9_-]")),
        ("    - name: site-b", "    - name: site-a", "authority.service[1].name: duplicate service name \"site-a\" (first at authority.service[0].name)".into()),
        (site_a, "    - name: site-a\n", format!("{s0}.tenant: required field is missing")),
        (site_a, "    - name: site-a\n      tenant: blue team\n", format!("{s0}.tenant: \"blue team\" is not a tenant name of 1-63 characters [A-Za-z0-9_.-]")),
        (site_a, &format!("    - name: site-a\n      tenant: {}\n", "t".repeat(64)), format!("{s0}.tenant: \"{}\" is not a tenant name of 1-63 characters [A-Za-z0-9_.-]", "t".repeat(64))),
        ("prefix: [10.1.0.0/24, \"fd00:1::/64\"]", "prefix: []", format!("{s0}.prefix: at least one prefix is required")),
        ("prefix: [10.1.0.0/24, \"fd00:1::/64\"]", "prefix: 10.1.0.0/24", format!("{s0}.prefix: expected a list, found \"10.1.0.0/24\"")),
        ("      prefix: [10.1.0.0/24, \"fd00:1::/64\"]\n", "", format!("{s0}.prefix: required field is missing")),
        ("prefix: [10.1.0.0/24, \"fd00:1::/64\"]", "prefix: [10.1.0.1/24]", format!("{s0}.prefix[0]: \"10.1.0.1/24\" has host bits set; the network is 10.1.0.0/24")),
        ("prefix: [10.1.0.0/24, \"fd00:1::/64\"]", "prefix: [10.1.0.0]", format!("{s0}.prefix[0]: \"10.1.0.0\" is not an IPv4 or IPv6 prefix")),
        ("prefix: [10.1.0.0/24, \"fd00:1::/64\"]", "prefix: [10.1.0.0/24, \"fd00:1::/64\", 10.1.0.0/24]", format!("{s0}.prefix[2]: duplicate service prefix 10.1.0.0/24 (first at {s0}.prefix[0])")),
        ("prefix: [10.2.0.0/24, \"fd00:2::/64\"]", "prefix: [10.2.0.0/24, \"fd00:1::/64\"]", format!("authority.service[1].prefix[1]: duplicate service prefix fd00:1::/64 (first at {s0}.prefix[1])")),
        ("      router: router-a\n", "      router: router-c\n", format!("{s0}.router: \"router-c\" does not name a router in authority.router")),
        ("      router: router-a\n", "", format!("{s0}.router: required field is missing")),
        ("      router: router-a\n", "      router: [router-a]\n", format!("{s0}.router: expected a string, found a list")),
        (site_a, "    - name: site-a\n      tenant: blue\n      application-name: \"\"\n", format!("{s0}.application-name: must not be empty")),
        (site_a, "    - name: site-a\n      tenant: blue\n      owner: me\n", format!("{s0}: unknown field \"owner\"")),
        ("  service:\n", "  service: site-a\n  unused:\n", "authority.service: expected a list, found \"site-a\"".into()),
    ];
    for (from, to, want) in cases {
        assert_eq!(&ex(from, to), want, "{to}");
    }
    // Overlapping (but different) prefixes are allowed: the longest match wins.
    assert!(Config::parse(&with(
        EXAMPLE,
        "prefix: [10.2.0.0/24, \"fd00:2::/64\"]",
        "prefix: [10.0.0.0/8]"
    ))
    .is_ok());
}

#[test]
fn peers() {
    let c = Config::parse(EXAMPLE).unwrap();
    let (r, _) = c.local();
    assert_eq!(
        r.peer,
        [Peer {
            router: "router-b".into(),
            bfd: Bfd::default(),
            source_nat: false,
            svr_test_metadata_key: None,
        }]
    );
    assert_eq!(r.peer("router-b"), Some(&r.peer[0]));
    assert_eq!(r.peer("router-c"), None);
    let peer_b = "      peer:\n        - router: router-b\n";
    let cases: &[(&str, &str, String)] = &[
        (peer_b, "      peer:\n        - router: router-c\n", format!("{R0}.peer[0].router: \"router-c\" does not name a router in authority.router")),
        (peer_b, "      peer:\n        - router: router-a\n", format!("{R0}.peer[0].router: \"router-a\" is this router itself; a router does not peer with itself")),
        (peer_b, "      peer:\n        - router: router-b\n        - {router: router-b}\n", format!("{R0}.peer[1].router: duplicate peer router \"router-b\" (first at {R0}.peer[0].router)")),
        (peer_b, "      peer:\n        - bfd: {multiplier: 3}\n", format!("{R0}.peer[0].router: required field is missing")),
        (peer_b, "      peer:\n        - router: router-b\n          path: wan\n", format!("{R0}.peer[0]: unknown field \"path\"")),
        (peer_b, "      peer: router-b\n", format!("{R0}.peer: expected a list, found \"router-b\"")),
        (peer_b, "      peer:\n        - router: router-b\n          bfd: {multiplier: 1}\n", format!("{R0}.peer[0].bfd.multiplier: 1 is below the minimum 2")),
        (peer_b, "      peer:\n        - router: router-b\n          bfd: {desired-tx-interval: 60001}\n", format!("{R0}.peer[0].bfd.desired-tx-interval: 60001 is above the maximum 60000")),
        (peer_b, "      peer:\n        - router: router-b\n          bfd: {echo: 1}\n", format!("{R0}.peer[0].bfd: unknown field \"echo\"")),
        // router-b with no WAN interface has no waypoint.
        ("role: wan\n              vdev: \"net_af_packet1,iface=rb-wan\"", "role: lan\n              vdev: \"net_af_packet1,iface=rb-wan\"", format!("{R0}.peer[0].router: router \"router-b\" has no device-interface with role wan, so no waypoint to reach it on")),
    ];
    for (from, to, want) in cases {
        assert_eq!(&ex(from, to), want, "{to}");
    }
    // A peer's bfd keys default to the router's bfd, not to the built-in defaults.
    let text = with(
        EXAMPLE,
        "        desired-tx-interval: 1000        # ms",
        "        desired-tx-interval: 2000",
    );
    let text = with(
        &text,
        peer_b,
        "      peer:\n        - router: router-b\n          bfd: {multiplier: 5}\n",
    );
    let c = Config::parse(&text).unwrap();
    let (r, _) = c.local();
    assert_eq!(
        r.peer[0].bfd,
        Bfd {
            desired_tx_interval: Duration::from_millis(2000),
            required_min_rx_interval: Duration::from_millis(500),
            multiplier: 5,
            ..Bfd::default()
        }
    );
    assert_eq!(r.bfd.multiplier, 3);
    // Without a bfd of its own, a peer takes the router's.
    let text = with(
        EXAMPLE,
        "        desired-tx-interval: 1000        # ms",
        "        desired-tx-interval: 2000",
    );
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.local().0.peer[0].bfd, c.local().0.bfd);
    // An empty peer list is fine (and then the test keys are not needed, see test_keys).
    let c = Config::parse(&with(EXAMPLE, peer_b, "      peer: []\n")).unwrap();
    assert!(c.local().0.peer.is_empty());
}

#[test]
fn peer_source_nat() {
    // Default: no NAT between the waypoints, unique (source, destination) wayport pairs.
    let c = Config::parse(EXAMPLE).unwrap();
    assert!(!c.local().0.peer[0].source_nat);
    let peer_b = "      peer:\n        - router: router-b\n";
    for (yaml, want) in [("true", true), ("false", false)] {
        let text = with(
            EXAMPLE,
            peer_b,
            &format!("      peer:\n        - router: router-b\n          source-nat: {yaml}\n"),
        );
        let c = Config::parse(&text).unwrap();
        let p = &c.local().0.peer[0];
        assert_eq!(p.source_nat, want, "{yaml}");
        assert_eq!(p.bfd, c.local().0.bfd, "bfd still inherited");
    }
    assert_eq!(
        ex(
            peer_b,
            "      peer:\n        - router: router-b\n          source-nat: yes\n"
        ),
        format!("{R0}.peer[0].source-nat: expected true or false, found \"yes\"")
    );
    assert_eq!(
        ex(
            peer_b,
            "      peer:\n        - router: router-b\n          source-nat: 1\n"
        ),
        format!("{R0}.peer[0].source-nat: expected true or false, found 1")
    );
}

#[test]
fn waypoints_and_services_via_peers() {
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let a = Config::parse(EXAMPLE).unwrap();
    assert_eq!(a.waypoints("router-b"), [ip("10.9.0.2"), ip("fd00:9::2")]);
    assert_eq!(a.waypoints("router-a"), [ip("10.9.0.1"), ip("fd00:9::1")]);
    assert_eq!(a.local_waypoints(), a.waypoints("router-a"));
    assert!(a.waypoints("router-c").is_empty());
    assert_eq!(a.router("router-b").unwrap().name, "router-b");
    assert!(a.router("router-c").is_none());
    let via: Vec<(&str, &str)> = a
        .services_via_peers()
        .iter()
        .map(|(s, r)| (s.name.as_str(), r.name.as_str()))
        .collect();
    assert_eq!(via, [("site-b", "router-b")]);
    let b = Config::parse(&with(
        EXAMPLE,
        "local-router: router-a",
        "local-router: router-b",
    ))
    .unwrap();
    assert_eq!(b.local_waypoints(), [ip("10.9.0.2"), ip("fd00:9::2")]);
    let via: Vec<(&str, &str)> = b
        .services_via_peers()
        .iter()
        .map(|(s, r)| (s.name.as_str(), r.name.as_str()))
        .collect();
    assert_eq!(via, [("site-a", "router-a")]);
    // A service served by a router that is not a peer is not an error, just not reachable
    // through SVR from here.
    let text = with(EXAMPLE, "      peer:\n        - router: router-b\n", "");
    let c = Config::parse(&text).unwrap();
    assert!(c.services_via_peers().is_empty());
    // A LAN interface holds no waypoint.
    assert!(!a.local_waypoints().contains(&ip("10.1.0.1")));
}

#[test]
fn test_keys() {
    let c = Config::parse(EXAMPLE).unwrap();
    let k = c.local().0.svr_test_metadata_key.as_ref().unwrap();
    assert_eq!(k.rekey_index, 1);
    assert_eq!(k.encryption_key[0], 0xa0);
    assert_eq!(k.encryption_key[31], 0xbf);
    assert_eq!(k.hmac_key[0], 0x10);
    assert_eq!(k.hmac_key[47], 0x3f);
    let kb = c.authority.router[1]
        .svr_test_metadata_key
        .as_ref()
        .unwrap();
    assert_ne!(k, kb);
    assert_eq!(k, &k.clone());
    // The keys are never printed.
    let debug = format!("{c:?}");
    assert!(debug.contains("<redacted>"));
    for secret in [KEY_A, HMAC_A, "a0a1", "160, 161"] {
        assert!(!debug.contains(secret), "{secret}");
    }
    assert_eq!(
        format!("{k:?}"),
        "TestMetadataKey { rekey_index: 1, encryption_key: <redacted>, hmac_key: <redacted> }"
    );
    let kp = format!("{R0}.svr-test-metadata-key");
    let secret = "(the value is secret and not shown)";
    let enc = |v: &str| {
        ex(
            &format!("encryption-key: \"{KEY_A}\""),
            &format!("encryption-key: {v}"),
        )
    };
    let hmac = |v: &str| {
        ex(
            &format!("hmac-key: \"{HMAC_A}\""),
            &format!("hmac-key: {v}"),
        )
    };
    let short = &KEY_A[..63];
    let cases: Vec<(String, String)> = vec![
        (enc(&format!("\"{short}\"")), format!("{kp}.encryption-key: must be 64 hex digits (32 bytes, AES-256), found 63 characters {secret}")),
        (enc(&format!("\"{KEY_A}00\"")), format!("{kp}.encryption-key: must be 64 hex digits (32 bytes, AES-256), found 66 characters {secret}")),
        (enc(&format!("\"a0 {}\"", &KEY_A[2..])), format!("{kp}.encryption-key: must be 64 hex digits (32 bytes, AES-256), found a character that is not a hex digit at offset 2 {secret}")),
        (enc(&format!("\"0x{}\"", &KEY_A[2..])), format!("{kp}.encryption-key: must be 64 hex digits (32 bytes, AES-256), found a character that is not a hex digit at offset 1 {secret}")),
        (enc(&format!("\"{}\"", "0".repeat(64))), format!("{kp}.encryption-key: must not be all zero bytes")),
        (enc(&"1".repeat(64)), format!("{kp}.encryption-key: expected a string of 64 hex digits, found a number")),
        (enc("[a0]"), format!("{kp}.encryption-key: expected a string of 64 hex digits, found a list")),
        (enc("~"), format!("{kp}.encryption-key: expected a string of 64 hex digits, found null")),
        (hmac(&format!("\"{}\"", &HMAC_A[..94])), format!("{kp}.hmac-key: must be 96 hex digits (48 bytes, HMAC-SHA384), found 94 characters {secret}")),
        (hmac(&format!("\"{}g\"", &HMAC_A[..95])), format!("{kp}.hmac-key: must be 96 hex digits (48 bytes, HMAC-SHA384), found a character that is not a hex digit at offset 95 {secret}")),
        (hmac(&format!("\"{}\"", "0".repeat(96))), format!("{kp}.hmac-key: must not be all zero bytes")),
        (hmac("true"), format!("{kp}.hmac-key: expected a string of 96 hex digits, found a boolean")),
        (ex(&format!("        hmac-key: \"{HMAC_A}\"\n"), ""), format!("{kp}.hmac-key: required field is missing")),
        (ex(KEY_BLOCK_A, "      svr-test-metadata-key:\n        encryption-key: \"a0a1"), format!("{kp}.rekey-index: required field is missing")),
        (ex(KEY_BLOCK_A, "      svr-test-metadata-key:\n        rekey-index: 0\n        encryption-key: \"a0a1"), format!("{kp}.rekey-index: 0 is below the minimum 1")),
        (ex(KEY_BLOCK_A, "      svr-test-metadata-key:\n        rekey-index: 4294967296\n        encryption-key: \"a0a1"), format!("{kp}.rekey-index: 4294967296 is above the maximum 4294967295")),
        (ex(KEY_BLOCK_A, "      svr-test-metadata-key:\n        salt: 1\n        rekey-index: 1\n        encryption-key: \"a0a1"), format!("{kp}: unknown field \"salt\"")),
        (ex(KEY_BLOCK_A, "      svr-test-metadata-key: 5\n      unused:\n        encryption-key: \"a0a1"), format!("{kp}: expected a mapping, found 5")),
    ];
    for (got, want) in &cases {
        assert_eq!(got, want);
        assert!(
            !got.contains(&KEY_A[2..20]) && !got.contains(&HMAC_A[2..20]),
            "{got}"
        );
    }
    // The ends of the index range, and upper-case hex.
    let c = Config::parse(&with(
        &with(EXAMPLE, KEY_BLOCK_A, "      svr-test-metadata-key:\n        rekey-index: 4294967295\n        encryption-key: \"a0a1"),
        &format!("encryption-key: \"{KEY_A}\""),
        &format!("encryption-key: \"{}\"", KEY_A.to_uppercase()),
    ))
    .unwrap();
    let k = c.local().0.svr_test_metadata_key.as_ref().unwrap();
    assert_eq!((k.rekey_index, k.encryption_key[10]), (u32::MAX, 0xaa));
}

#[test]
fn test_key_cross_rules() {
    // Test-key mode (enhanced security key management off): the local router and each of
    // its peers need a key; the message names the one that is missing.
    let no_keys = without_test_keys(EXAMPLE);
    assert_eq!(
        err(&no_keys),
        format!("{R0}.svr-test-metadata-key: required when authority.enhanced-security-key-management is false and the local router has peers")
    );
    let text = with(
        &without_test_keys(EXAMPLE),
        "local-router: router-a",
        "local-router: router-b",
    );
    assert_eq!(
        Config::diagnose(&text)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            format!("{R0}.svr-test-metadata-key: required when authority.enhanced-security-key-management is false and the local router lists this router as a peer"),
            "authority.router[1].svr-test-metadata-key: required when authority.enhanced-security-key-management is false and the local router has peers".to_string(),
        ]
    );
    // Only router-a's key given: router-b's is missing, and only router-a lists peers
    // that matter (the local router's).
    let b_key_start = EXAMPLE.rfind("      svr-test-metadata-key:").unwrap();
    let only_a = format!(
        "{}{}",
        &EXAMPLE[..b_key_start],
        without_test_keys(&EXAMPLE[b_key_start..])
    );
    assert_eq!(
        err(&only_a),
        "authority.router[1].svr-test-metadata-key: required when authority.enhanced-security-key-management is false and the local router lists this router as a peer"
    );
    // A router without peers needs no key, and neither do routers that only it might use.
    let text = with(&no_keys, "      peer:\n        - router: router-b\n", "");
    let c = Config::parse(&text).unwrap();
    assert!(c.local().0.svr_test_metadata_key.is_none());
    // With enhanced security key management on, test keys are refused wherever they are.
    assert_eq!(
        ex(ESK_FALSE, ESK_TRUE),
        format!("{R0}.svr-test-metadata-key: not allowed when authority.enhanced-security-key-management is true")
    );
    let text = with(&esk_example(), "      peer:\n        - router: router-a\n", "      svr-test-metadata-key: {rekey-index: 2, encryption-key: \"b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf\", hmac-key: \"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f\"}\n      peer:\n        - router: router-a\n");
    assert_eq!(
        err(&text),
        "authority.router[1].svr-test-metadata-key: not allowed when authority.enhanced-security-key-management is true"
    );
}

#[test]
fn pki_and_trusted_ca() {
    let c = Config::parse(&esk_example()).unwrap();
    assert!(c.authority.enhanced_security_key_management);
    // parse keeps the paths as written.
    assert_eq!(
        c.authority.trusted_ca_certificate.as_deref(),
        Some(Path::new("pki/root.pem"))
    );
    assert_eq!(
        c.local().1.pki,
        Some(Pki {
            certificate_chain: "pki/router-a.chain.pem".into(),
            private_key: "/etc/svrd/pki/router-a.key.pem".into(),
        })
    );
    assert!(c
        .authority
        .router
        .iter()
        .all(|r| r.svr_test_metadata_key.is_none()));
    assert_eq!(
        err(&with(&esk_example(), "  trusted-ca-certificate: pki/root.pem\n", "")),
        "authority.trusted-ca-certificate: required when authority.enhanced-security-key-management is true"
    );
    let no_pki = with(
        &esk_example(),
        "          pki:\n            certificate-chain: pki/router-a.chain.pem\n            private-key: /etc/svrd/pki/router-a.key.pem\n",
        "",
    );
    assert_eq!(
        err(&no_pki),
        format!("{N0}.pki: required on the local node when authority.enhanced-security-key-management is true")
    );
    // Only the local node needs one: router-b's node has none.
    assert_eq!(
        err(&with(&esk_example(), "local-router: router-a", "local-router: router-b")),
        "authority.router[1].node[0].pki: required on the local node when authority.enhanced-security-key-management is true"
    );
    // Without enhanced security key management, neither is needed but both are allowed.
    let text = with(&esk_example(), ESK_TRUE, ESK_FALSE);
    let c = Config::parse(&with(
        &text,
        "      peer:\n        - router: router-b\n",
        "",
    ))
    .unwrap();
    assert!(c.local().1.pki.is_some());
    let esk = esk_example();
    let cases: &[(&str, &str, String)] = &[
        (
            "private-key: /etc/svrd/pki/router-a.key.pem",
            "privat-key: /etc/svrd/pki/router-a.key.pem",
            format!("{N0}.pki: unknown field \"privat-key\""),
        ),
        (
            "            private-key: /etc/svrd/pki/router-a.key.pem\n",
            "",
            format!("{N0}.pki.private-key: required field is missing"),
        ),
        (
            "certificate-chain: pki/router-a.chain.pem",
            "certificate-chain: /etc/svrd/pki/",
            format!("{N0}.pki.certificate-chain: \"/etc/svrd/pki/\" is not a file path"),
        ),
        (
            "certificate-chain: pki/router-a.chain.pem",
            "certificate-chain: \"\"",
            format!("{N0}.pki.certificate-chain: \"\" is not a file path"),
        ),
        (
            "certificate-chain: pki/router-a.chain.pem",
            "certificate-chain: \"a\\tb.pem\"",
            format!("{N0}.pki.certificate-chain: \"a\\tb.pem\" is not a file path"),
        ),
        (
            "private-key: /etc/svrd/pki/router-a.key.pem",
            "private-key: 7",
            format!("{N0}.pki.private-key: expected a string, found 7"),
        ),
        (
            "trusted-ca-certificate: pki/root.pem",
            "trusted-ca-certificate: \"\"",
            "authority.trusted-ca-certificate: \"\" is not a file path".into(),
        ),
    ];
    for (from, to, want) in cases {
        assert_eq!(&err(&with(&esk, from, to)), want, "{to}");
    }
}

#[test]
fn pem_paths_are_resolved_by_load_and_checked_by_check_host() {
    let dir = tmp("pki-test");
    std::fs::create_dir_all(dir.join("pki")).unwrap();
    let key = dir.join("router-a.key.pem");
    let text = with(
        &esk_example(),
        "/etc/svrd/pki/router-a.key.pem",
        key.to_str().unwrap(),
    );
    let file = dir.join("router-a.yaml");
    std::fs::write(&file, &text).unwrap();
    let c = Config::load(&file).unwrap();
    // Relative paths are relative to the config file's directory; absolute ones are kept.
    assert_eq!(
        c.authority.trusted_ca_certificate.as_deref(),
        Some(dir.join("pki/root.pem").as_path())
    );
    let pki = c.local().1.pki.clone().unwrap();
    assert_eq!(pki.certificate_chain, dir.join("pki/router-a.chain.pem"));
    assert_eq!(pki.private_key, key);
    // Existence is a host check, in this order: CA, chain, key.
    if c.check_cpus(&cpus_here()).is_err() {
        return;
    }
    assert_eq!(
        c.check_host().unwrap_err().to_string(),
        format!(
            "authority.trusted-ca-certificate: {} does not exist",
            dir.join("pki/root.pem").display()
        )
    );
    std::fs::write(dir.join("pki/root.pem"), "x").unwrap();
    std::fs::create_dir_all(dir.join("pki/router-a.chain.pem")).unwrap();
    assert_eq!(
        c.check_host().unwrap_err().to_string(),
        format!(
            "{N0}.pki.certificate-chain: {} is not a file",
            dir.join("pki/router-a.chain.pem").display()
        )
    );
    std::fs::remove_dir(dir.join("pki/router-a.chain.pem")).unwrap();
    std::fs::write(dir.join("pki/router-a.chain.pem"), "x").unwrap();
    assert_eq!(
        c.check_host().unwrap_err().to_string(),
        format!("{N0}.pki.private-key: {} does not exist", key.display())
    );
    std::fs::write(&key, "x").unwrap();
    assert_eq!(c.check_host(), Ok(()));
}

#[test]
fn svr_settings() {
    let d = SvrSettings::default();
    assert_eq!(
        d,
        SvrSettings {
            max_sessions: 65536,
            wayport_range: (16384, 65534),
            session_timeouts: SessionTimeouts {
                tcp: Duration::from_secs(1800),
                tcp_half_open: Duration::from_secs(30),
                tcp_guard: Duration::from_secs(10),
                udp: Duration::from_secs(60),
                icmp: Duration::from_secs(10),
            },
            enable_metadata_rate: 100,
        }
    );
    assert_eq!(Config::parse(MINIMAL).unwrap().local().1.svr, d);
    assert_eq!(Config::parse(EXAMPLE).unwrap().local().1.svr, d);
    assert_eq!(
        Config::parse(&svr("          svr: {}\n"))
            .unwrap()
            .local()
            .1
            .svr,
        d
    );
    assert_eq!(
        Config::parse(&svr("          svr:\n"))
            .unwrap()
            .local()
            .1
            .svr,
        d
    );
    let c = Config::parse(&svr("          svr:\n            max-sessions: 16777216\n            wayport-range: {start: 1026, end: 1027}\n            session-timeouts: {tcp: 86400, tcp-half-open: 1, tcp-guard: 600, udp: 1, icmp: 3600}\n            enable-metadata-rate: 100000\n")).unwrap();
    let s = c.local().1.svr;
    assert_eq!(s.max_sessions, 16_777_216);
    assert_eq!(s.wayport_range, (1026, 1027));
    assert_eq!(s.session_timeouts.tcp_guard, Duration::from_secs(600));
    assert_eq!(s.session_timeouts.udp, Duration::from_secs(1));
    assert_eq!(s.enable_metadata_rate, 100_000);
    // Only one end given: the other keeps its default.
    let c = Config::parse(&svr("          svr: {wayport-range: {start: 30000}}\n")).unwrap();
    assert_eq!(c.local().1.svr.wayport_range, (30000, 65534));
    let p = format!("{N0}.svr");
    let cases: &[(&str, String)] = &[
        ("{max-sessions: 1023}", format!("{p}.max-sessions: 1023 is below the minimum 1024")),
        ("{max-sessions: 16777217}", format!("{p}.max-sessions: 16777217 is above the maximum 16777216")),
        ("{wayport-range: {start: 1024}}", format!("{p}.wayport-range.start: 1024 is below the minimum 1025")),
        ("{wayport-range: {end: 65536}}", format!("{p}.wayport-range.end: 65536 is above the maximum 65535")),
        ("{wayport-range: {start: 16385}}", format!("{p}.wayport-range.start: 16385 must be even (the ingress allocates an even source and an odd destination wayport)")),
        ("{wayport-range: {start: 20000, end: 20000}}", format!("{p}.wayport-range.end: 20000 must be at least start + 1 (20001)")),
        ("{wayport-range: {start: 20000, end: 1025}}", format!("{p}.wayport-range.end: 1025 must be at least start + 1 (20001)")),
        ("{wayport-range: {start: 65534, end: 65535}, max-sessions: 1}", format!("{p}.max-sessions: 1 is below the minimum 1024")),
        ("{wayport-range: [16384, 65534]}", format!("{p}.wayport-range: expected a mapping, found a list")),
        ("{wayport-range: {start: 16384, stop: 65534}}", format!("{p}.wayport-range: unknown field \"stop\"")),
        ("{session-timeouts: {tcp: 9}}", format!("{p}.session-timeouts.tcp: 9 is below the minimum 10")),
        ("{session-timeouts: {tcp: 86401}}", format!("{p}.session-timeouts.tcp: 86401 is above the maximum 86400")),
        ("{session-timeouts: {tcp-half-open: 0}}", format!("{p}.session-timeouts.tcp-half-open: 0 is below the minimum 1")),
        ("{session-timeouts: {tcp-half-open: 3601}}", format!("{p}.session-timeouts.tcp-half-open: 3601 is above the maximum 3600")),
        ("{session-timeouts: {tcp-guard: 0}}", format!("{p}.session-timeouts.tcp-guard: 0 is below the minimum 1")),
        ("{session-timeouts: {tcp-guard: 601}}", format!("{p}.session-timeouts.tcp-guard: 601 is above the maximum 600")),
        ("{session-timeouts: {udp: 0}}", format!("{p}.session-timeouts.udp: 0 is below the minimum 1")),
        ("{session-timeouts: {udp: 86401}}", format!("{p}.session-timeouts.udp: 86401 is above the maximum 86400")),
        ("{session-timeouts: {icmp: 0}}", format!("{p}.session-timeouts.icmp: 0 is below the minimum 1")),
        ("{session-timeouts: {icmp: 3601}}", format!("{p}.session-timeouts.icmp: 3601 is above the maximum 3600")),
        ("{session-timeouts: {sctp: 10}}", format!("{p}.session-timeouts: unknown field \"sctp\"")),
        ("{session-timeouts: {udp: \"60\"}}", format!("{p}.session-timeouts.udp: expected an integer, found \"60\"")),
        ("{enable-metadata-rate: 0}", format!("{p}.enable-metadata-rate: 0 is below the minimum 1")),
        ("{enable-metadata-rate: 100001}", format!("{p}.enable-metadata-rate: 100001 is above the maximum 100000")),
        ("{max-session: 1}", format!("{p}: unknown field \"max-session\"")),
        ("16384", format!("{p}: expected a mapping, found 16384")),
    ];
    for (body, want) in cases {
        assert_eq!(
            &err(&svr(&format!("          svr: {body}\n"))),
            want,
            "{body}"
        );
    }
    // The wayport range of the example, start and end at the extremes that pass.
    let c = Config::parse(&svr(
        "          svr: {wayport-range: {start: 65534, end: 65535}}\n",
    ))
    .unwrap();
    assert_eq!(c.local().1.svr.wayport_range, (65534, 65535));
}

#[test]
fn test_time_scale_is_a_bounded_test_knob() {
    let c = Config::parse(EXAMPLE).unwrap();
    assert_eq!(c.authority.security_key_management.test_time_scale, 1);
    let text = with(
        EXAMPLE,
        "peer-key-timeout: 3600",
        "peer-key-timeout: 3600\n    test-time-scale: 360",
    );
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.authority.security_key_management.test_time_scale, 360);
    for bad in ["0", "3601"] {
        let text = with(
            EXAMPLE,
            "peer-key-timeout: 3600",
            &format!("peer-key-timeout: 3600\n    test-time-scale: {bad}"),
        );
        let e = Config::parse(&text).unwrap_err().to_string();
        assert!(
            e.starts_with("authority.security-key-management.test-time-scale:"),
            "{e}"
        );
    }
}

#[test]
fn certificate_revocation_list() {
    let crl_line = "  trusted-ca-certificate: pki/root.pem\n  certificate-revocation-list: pki/authority.crl.pem\n";
    let esk = with(
        &esk_example(),
        "  trusted-ca-certificate: pki/root.pem\n",
        crl_line,
    );
    let c = Config::parse(&esk).unwrap();
    assert_eq!(
        c.authority.certificate_revocation_list.as_deref(),
        Some(Path::new("pki/authority.crl.pem"))
    );
    // Optional: absent by default.
    let c = Config::parse(&esk_example()).unwrap();
    assert_eq!(c.authority.certificate_revocation_list, None);
    // A file path, like the other PEM paths.
    assert_eq!(
        err(&with(
            &esk,
            "certificate-revocation-list: pki/authority.crl.pem",
            "certificate-revocation-list: pki/"
        )),
        "authority.certificate-revocation-list: \"pki/\" is not a file path"
    );
    assert_eq!(
        err(&with(
            &esk,
            "certificate-revocation-list: pki/authority.crl.pem",
            "certificate-revocation-list: [a]"
        )),
        "authority.certificate-revocation-list: expected a string, found a list"
    );
    // Nothing would read it in test-key mode: say so rather than ignore it.
    let text = with(&esk, ESK_TRUE, ESK_FALSE);
    let text = with(&text, "      peer:\n        - router: router-b\n", "");
    assert_eq!(
        err(&text),
        "authority.certificate-revocation-list: only used when authority.enhanced-security-key-management is true"
    );

    // Resolved relative to the config file by load, and checked to exist by check_host.
    let dir = tmp("crl-test");
    std::fs::create_dir_all(dir.join("pki")).unwrap();
    let file = dir.join("router-a.yaml");
    std::fs::write(&file, &esk).unwrap();
    let c = Config::load(&file).unwrap();
    assert_eq!(
        c.authority.certificate_revocation_list.as_deref(),
        Some(dir.join("pki/authority.crl.pem").as_path())
    );
    if c.check_cpus(&cpus_here()).is_err() {
        return;
    }
    std::fs::write(dir.join("pki/root.pem"), "x").unwrap();
    assert_eq!(
        c.check_host().unwrap_err().to_string(),
        format!(
            "authority.certificate-revocation-list: {} does not exist",
            dir.join("pki/authority.crl.pem").display()
        )
    );
}

#[test]
fn hugepages_are_checked_against_the_machine() {
    let mounts = "sysfs /sys sysfs rw 0 0\nnodev /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\nnodev /mnt/h hugetlbfs rw 0 0\n";
    let free = |pages: u32| format!("HugePages_Free: {pages}\nHugepagesize: 2048 kB\n");
    // The example: hugepages, 128 MiB, no huge-dir.
    let c = Config::parse(EXAMPLE).unwrap();
    assert_eq!(c.check_hugepages_with(mounts, &free(64)), Ok(()));
    assert_eq!(
        c.check_hugepages_with(mounts, &free(63)).unwrap_err().to_string(),
        format!("{N0}.eal.memory-mb: 128 MiB of hugepages needed but only 126 MiB are free for /dev/hugepages (run scripts/setup.sh to reserve them, lower memory-mb, or set hugepages: false)")
    );
    assert_eq!(
        c.check_hugepages_with("sysfs /sys sysfs rw 0 0\n", &free(64))
            .unwrap_err()
            .to_string(),
        format!("{N0}.eal.huge-dir: no hugetlbfs is mounted (default /dev/hugepages: mount -t hugetlbfs nodev /dev/hugepages, or run scripts/setup.sh; or set hugepages: false)")
    );
    // A configured huge-dir must itself be a hugetlbfs mount point.
    let with_dir = |dir: &str| {
        Config::parse(&with(
            EXAMPLE,
            "            hugepages: true\n            file-prefix: router-a",
            &format!("            hugepages: true\n            huge-dir: {dir}\n            file-prefix: router-a"),
        ))
        .unwrap()
    };
    assert_eq!(
        with_dir("/mnt/h").check_hugepages_with(mounts, &free(64)),
        Ok(())
    );
    assert_eq!(
        with_dir("/mnt/h/").check_hugepages_with(mounts, &free(64)),
        Ok(())
    );
    assert_eq!(
        with_dir("/tmp")
            .check_hugepages_with(mounts, &free(64))
            .unwrap_err()
            .to_string(),
        format!("{N0}.eal.huge-dir: /tmp is not a mounted hugetlbfs (mount -t hugetlbfs nodev /tmp, or run scripts/setup.sh)")
    );
    // hugepages: false needs none of it.
    let no_huge = Config::parse(&with(
        EXAMPLE,
        "            hugepages: true\n            file-prefix: router-a",
        "            hugepages: false\n            file-prefix: router-a",
    ))
    .unwrap();
    assert_eq!(no_huge.check_hugepages_with("", ""), Ok(()));
}

#[test]
fn vdevs_need_a_driver_of_this_dpdk() {
    let drivers: Vec<String> = ["net_af_packet", "net_memif", "net_virtio_user", "net_i40e"]
        .map(String::from)
        .to_vec();
    let c = Config::parse(EXAMPLE).unwrap();
    assert_eq!(c.check_vdev_drivers(&drivers), Ok(()));
    // No list found: nothing to check against.
    assert_eq!(c.check_vdev_drivers(&[]), Ok(()));
    let foo = Config::parse(&with(
        EXAMPLE,
        "vdev: \"net_af_packet1,iface=ra-wan\"",
        "vdev: \"net_foo0,iface=ra-wan\"",
    ))
    .unwrap();
    assert_eq!(
        foo.check_vdev_drivers(&drivers).unwrap_err().to_string(),
        format!("{N0}.device-interface[1].vdev: no DPDK driver for \"net_foo0\" in this DPDK (its net vdev drivers: net_af_packet, net_i40e, net_memif, net_virtio_user)")
    );
    // DPDK matches a driver name as a prefix of the device name.
    let vu = Config::parse(&with(
        EXAMPLE,
        "vdev: \"net_af_packet1,iface=ra-wan\"",
        "vdev: \"net_virtio_user1,path=/dev/vhost-net\"",
    ))
    .unwrap();
    assert_eq!(vu.check_vdev_drivers(&drivers), Ok(()));
}

/// `svr-test-metadata-key` under a peer entry: keys per peer pair, inline.
fn peer_key(index: u32, enc: &str) -> String {
    format!(
        "          svr-test-metadata-key: {{rekey-index: {index}, encryption-key: \"{}\", hmac-key: \"{HMAC_A}\"}}\n",
        enc.repeat(32)
    )
}

const PEER_A: &str = "      peer:\n        - router: router-b\n";
const PEER_B: &str = "      peer:\n        - router: router-a\n";

#[test]
fn test_keys_per_peer_pair() {
    // Each peer entry has its own key: the router-wide keys are no longer needed.
    let text = with(
        &with(
            &without_test_keys(EXAMPLE),
            PEER_A,
            &format!("{PEER_A}{}", peer_key(3, "a3")),
        ),
        PEER_B,
        &format!("{PEER_B}{}", peer_key(4, "b4")),
    );
    let c = Config::parse(&text).expect("keys per peer pair are enough");
    let (a, _) = c.local();
    assert!(a.svr_test_metadata_key.is_none());
    let k = a
        .test_key_for("router-b")
        .expect("router-a's key for router-b");
    assert_eq!((k.rekey_index, k.encryption_key[0]), (3, 0xa3));
    let b = c.router("router-b").unwrap();
    let k = b
        .test_key_for("router-a")
        .expect("router-b's key for router-a");
    assert_eq!((k.rekey_index, k.encryption_key[0]), (4, 0xb4));
    assert!(format!("{:?}", a.peer[0]).contains("<redacted>"));
    // A peer entry's key overrides the router-wide one for that peer only.
    let text = with(EXAMPLE, PEER_A, &format!("{PEER_A}{}", peer_key(3, "a3")));
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.local().0.test_key_for("router-b").unwrap().rekey_index, 3);
    assert_eq!(c.local().0.test_key_for("router-x").unwrap().rekey_index, 1);
    // The peer's side: router-b needs a key for router-a, router-wide or in its entry.
    let no_b = {
        let b_key_start = EXAMPLE.rfind("      svr-test-metadata-key:").unwrap();
        format!(
            "{}{}",
            &EXAMPLE[..b_key_start],
            without_test_keys(&EXAMPLE[b_key_start..])
        )
    };
    assert_eq!(
        err(&no_b),
        "authority.router[1].svr-test-metadata-key: required when authority.enhanced-security-key-management is false and the local router lists this router as a peer"
    );
    Config::parse(&with(
        &no_b,
        PEER_B,
        &format!("{PEER_B}{}", peer_key(4, "b4")),
    ))
    .expect("router-b's entry for router-a has one");
    // Validated with its field path, the bytes never shown.
    let kp = format!("{R0}.peer[0].svr-test-metadata-key");
    assert_eq!(
        ex(PEER_A, &format!("{PEER_A}{}", peer_key(0, "a3"))),
        format!("{kp}.rekey-index: 0 is below the minimum 1")
    );
    let e = ex(
        PEER_A,
        &format!(
            "{PEER_A}{}",
            peer_key(3, "a3").replace(&"a3".repeat(32), "a3a3")
        ),
    );
    assert!(e.starts_with(&format!("{kp}.encryption-key:")), "{e}");
    assert!(!e.contains("a3a3"), "{e}");
    // Refused with enhanced security key management on.
    let text = with(
        &esk_example(),
        PEER_A,
        &format!("{PEER_A}{}", peer_key(3, "a3")),
    );
    assert_eq!(
        err(&text),
        format!("{kp}: not allowed when authority.enhanced-security-key-management is true")
    );
}

#[test]
fn management_socket_and_metrics_listen() {
    let c = Config::parse(MINIMAL).unwrap();
    let (_, node) = c.local();
    assert_eq!(node.management, Management::default());
    assert_eq!(
        node.management.control_socket_path(&node.eal),
        PathBuf::from("/var/run/dpdk/r1/svrd.sock")
    );
    let at = "              address: [192.0.2.1/24]\n";
    let text = with(
        MINIMAL,
        at,
        &format!("{at}          management:\n            control-socket: /run/svrd/r1.sock\n            metrics-listen: \"127.0.0.1:9464\"\n"),
    );
    let c = Config::parse(&text).unwrap();
    let m = &c.local().1.management;
    assert_eq!(
        m.control_socket.as_deref(),
        Some(Path::new("/run/svrd/r1.sock"))
    );
    assert_eq!(m.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
    let m0 = format!("{at}          management:\n");
    let bad = |line: &str| err(&with(MINIMAL, at, &format!("{m0}            {line}\n")));
    assert_eq!(
        bad("control-socket: run/svrd.sock"),
        format!("{N0}.management.control-socket: \"run/svrd.sock\" is not an absolute path of at most 107 bytes")
    );
    assert!(bad(&format!("control-socket: /{}", "x".repeat(120)))
        .starts_with(&format!("{N0}.management.control-socket: ")));
    assert_eq!(
        bad("metrics-listen: localhost:9464"),
        format!("{N0}.management.metrics-listen: \"localhost:9464\" is not an address and port (127.0.0.1:9464, [::1]:9464), port not 0")
    );
    assert!(bad("metrics-listen: \"127.0.0.1:0\"").contains("port not 0"));
    assert_eq!(
        bad("metrics: x"),
        format!("{N0}.management: unknown field \"metrics\"")
    );
}
