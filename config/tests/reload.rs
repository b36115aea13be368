//! `svr_config::diff`: what a reload may change live, and the field path of what it may not.

use svr_config::{diff, Changes, Config};

const ZT_A: &str = include_str!("../../testbed/router-a-zt.yaml");
const TEST_A: &str = include_str!("../../testbed/router-a.yaml");

fn parse(text: &str) -> Config {
    Config::parse(text).unwrap_or_else(|e| panic!("edited config must stay valid: {e}"))
}

/// `text` with the first `from` replaced by `to` (which must be there).
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "not in the file: {from}");
    text.replacen(from, to, 1)
}

fn changes(from: &str, to: &str) -> Changes {
    diff(&parse(ZT_A), &parse(&edit(ZT_A, from, to))).expect("live change")
}

fn refused(base: &str, from: &str, to: &str) -> String {
    match diff(&parse(base), &parse(&edit(base, from, to))) {
        Ok(c) => panic!("{from:?} -> {to:?} was accepted as live: {c}"),
        Err(e) => {
            let line = e.to_string();
            assert!(line.ends_with("(restart svrd)"), "{line}");
            e.path
        }
    }
}

#[test]
fn identical_file_is_no_change() {
    for text in [ZT_A, TEST_A] {
        let c = diff(&parse(text), &parse(text)).expect("same file");
        assert!(c.is_empty());
        assert_eq!(c.to_string(), "no change");
    }
    // Comments and formatting are not configuration.
    let c = diff(&parse(ZT_A), &parse(&format!("# edited\n{ZT_A}\n"))).unwrap();
    assert!(c.is_empty());
}

#[test]
fn live_changes_are_named() {
    let c = changes(
        "prefix: [10.2.0.0/24, \"fd00:2::/64\"]",
        "prefix: [10.2.0.0/25, \"fd00:2::/64\"]",
    );
    assert_eq!(c.names(), ["services"]);
    let c = changes(
        "    peer-key-rekey-interval: 1 ",
        "    peer-key-rekey-interval: 2 ",
    );
    assert_eq!(c.names(), ["key-timers"]);
    let c = changes(
        "desired-tx-interval: 1000        # ms",
        "desired-tx-interval: 300",
    );
    assert_eq!(c.names(), ["peer-timers"]);
    let c = changes("    peer:\n        - router: router-b\n", "    peer:\n        - router: router-b\n          bfd: {link-test-interval: 3, hold-down-time: 2}\n");
    assert_eq!(c.names(), ["peer-timers"]);
    let c = changes("next-hop: 10.9.0.2", "next-hop: 10.9.0.3");
    assert_eq!(c.names(), ["routes"]);
    let c = changes(
        "neighbor: []",
        "neighbor:\n            - {address: 10.1.0.9, mac: \"02:00:00:00:00:09\", interface: lan}",
    );
    assert_eq!(c.names(), ["neighbors"]);
    let c = changes("udp: 60", "udp: 120");
    assert_eq!(c.names(), ["session-timeouts"]);
    let c = changes(
        "enable-metadata-rate: 100        # Enable",
        "enable-metadata-rate: 50 # Enable",
    );
    assert_eq!(c.names(), ["enable-metadata-rate"]);
    assert_eq!(c.to_string(), "enable-metadata-rate");
    let c = changes("location: testbed site A", "location: elsewhere");
    assert_eq!(c.names(), ["other"]);
    // Another router's own settings are its business: not refused, no effect here.
    let b_core = "          core-map:\n            main-lcore: 0\n            slowpath-lcore: 0\n            idle-backoff: adaptive\n            workers:\n              - lcore: 1\n                cpu: 1\n          mempool-mbufs: 4095\n          pki:\n            certificate-chain: run/pki/router-b";
    let text = edit(ZT_A, b_core, &b_core.replace("cpu: 1\n", "cpu: 0\n"));
    let c = diff(&parse(ZT_A), &parse(&text)).unwrap();
    assert_eq!(c.names(), ["other"]);
    // A peer's bfd reaches us (its echo interval spaces our link-test probes).
    let b_bfd = "      bfd:\n        desired-tx-interval: 1000\n";
    let text = edit(
        ZT_A,
        b_bfd,
        "      bfd:\n        required-min-echo-interval: 2000\n        desired-tx-interval: 1000\n",
    );
    assert_eq!(
        diff(&parse(ZT_A), &parse(&text)).unwrap().names(),
        ["peer-timers"]
    );
    let text = edit(ZT_A, "next-hop: 10.9.0.1", "next-hop: 10.9.0.7");
    assert_eq!(
        diff(&parse(ZT_A), &parse(&text)).unwrap().names(),
        ["other"]
    );
    // A new service and a new policy it names.
    let c = changes(
        "  router:\n    - name: router-a",
        "    - name: site-b-host\n      tenant: blue\n      prefix: [10.2.0.2/32]\n      router: router-b\n      service-policy: p\n  service-policy:\n    - name: p\n      best-effort: true\n  router:\n    - name: router-a",
    );
    assert_eq!(c.names(), ["services"]);
}

#[test]
fn every_refused_field_names_its_path() {
    let n = "authority.router[0].node[0]";
    let cases: &[(&str, &str, &str, String)] = &[
        (
            ZT_A,
            "local-router: router-a",
            "local-router: router-b",
            "local-router".into(),
        ),
        (
            ZT_A,
            "  name: testbed",
            "  name: other",
            "authority.name".into(),
        ),
        (
            ZT_A,
            "key-exchange-algorithm: x25519",
            "key-exchange-algorithm: dh-modp-4096",
            "authority.security-key-management.key-exchange-algorithm".into(),
        ),
        (
            ZT_A,
            "test-time-scale: 360",
            "test-time-scale: 60",
            "authority.security-key-management.test-time-scale".into(),
        ),
        (
            ZT_A,
            "trusted-ca-certificate: run/pki/root.pem",
            "trusted-ca-certificate: run/pki/other.pem",
            "authority.trusted-ca-certificate".into(),
        ),
        (
            ZT_A,
            "peering-common-name: router-a.testbed.svr",
            "peering-common-name: a.testbed.svr",
            "authority.router[0].peering-common-name".into(),
        ),
        (
            ZT_A,
            "      peer:\n        - router: router-b\n",
            "      peer:\n        - router: router-b\n          source-nat: true\n",
            "authority.router[0].peer[0].source-nat".into(),
        ),
        (
            ZT_A,
            "memory-mb: 128",
            "memory-mb: 256",
            format!("{n}.eal.memory-mb"),
        ),
        (
            ZT_A,
            "log-level: notice",
            "log-level: info",
            format!("{n}.eal.log-level"),
        ),
        (
            ZT_A,
            "slowpath-lcore: 0",
            "slowpath-lcore: 2",
            format!("{n}.core-map.slowpath-lcore"),
        ),
        (
            ZT_A,
            "                cpu: 1",
            "                cpu: 0",
            format!("{n}.core-map.workers"),
        ),
        (
            ZT_A,
            "idle-backoff: adaptive",
            "idle-backoff: busy",
            format!("{n}.core-map.idle-backoff"),
        ),
        (
            ZT_A,
            "mempool-mbufs: 4095",
            "mempool-mbufs: 8191",
            format!("{n}.mempool-mbufs"),
        ),
        (
            ZT_A,
            "private-key: run/pki/router-a.testbed.svr.key.pem",
            "private-key: run/pki/other.key.pem",
            format!("{n}.pki.private-key"),
        ),
        (
            ZT_A,
            "vdev: \"net_af_packet0,iface=ra-lan\"",
            "vdev: \"net_af_packet0,iface=ra-lan2\"",
            format!("{n}.device-interface[0].vdev"),
        ),
        (
            ZT_A,
            "address: [10.9.0.1/24, \"fd00:9::1/64\"]",
            "address: [10.9.0.1/24, \"fd00:9::1/60\"]",
            format!("{n}.device-interface[1].address"),
        ),
        (
            ZT_A,
            "mtu: 1500",
            "mtu: 1400",
            format!("{n}.device-interface[0].mtu"),
        ),
        (
            ZT_A,
            "max-sessions: 65536",
            "max-sessions: 1024",
            format!("{n}.svr.max-sessions"),
        ),
        (
            ZT_A,
            "wayport-range: {start: 16384, end: 65534}   #",
            "wayport-range: {start: 20000, end: 65534}   #",
            format!("{n}.svr.wayport-range"),
        ),
        (
            ZT_A,
            "          neighbor: []\n\n",
            "          neighbor: []\n          management: {control-socket: /tmp/x.sock}\n\n",
            format!("{n}.management.control-socket"),
        ),
        // The peer's waypoints make our waypoint pairs.
        (
            ZT_A,
            "address: [10.9.0.2/24, \"fd00:9::2/64\"]",
            "address: [10.9.0.2/24, \"fd00:9::2/60\"]",
            "authority.router[1].node[0].device-interface[1].address".into(),
        ),
        (
            TEST_A,
            "rekey-index: 1",
            "rekey-index: 2",
            "authority.router[0].svr-test-metadata-key".into(),
        ),
    ];
    for (base, from, to, want) in cases {
        assert_eq!(&refused(base, from, to), want, "{from:?} -> {to:?}");
    }
}

#[test]
fn duplication_cannot_be_turned_on_live() {
    let with = |res: &str| {
        edit(
            ZT_A,
            "      router: router-b\n\n  router:",
            &format!("      router: router-b\n      service-policy: p\n  service-policy:\n    - name: p\n      session-resiliency: {res}\n\n  router:"),
        )
    };
    let none = parse(&with("none"));
    let dup = parse(&with("packet-duplication"));
    let e = diff(&none, &dup).unwrap_err();
    assert_eq!(e.path, "authority.service-policy[0].session-resiliency");
    assert!(e.to_string().contains("packet-duplication"), "{e}");
    // Off again, or on while a service already used it: live.
    assert_eq!(diff(&dup, &none).unwrap().names(), ["services"]);
    assert!(diff(&dup, &dup).unwrap().is_empty());
}
