//! Multipath configuration (issue 9): `service-policy`, `service.service-policy`, the
//! `bfd` link-test and hold-down keys, WAN `vector` and `adjacency`, and the peer paths.
//! Defaults, ranges, and every error with its field path.

use std::net::IpAddr;
use std::time::Duration;

use svr_config::*;

/// Two routers, each with two WAN links; router-a's `wan1`/`wan2` face router-b's.
const BASE: &str = "\
local-router: router-a
authority:
  name: mp
  service-policy:
    - name: voice
      path-quality-filter: true
      max-latency: 150
      max-loss: 1
      session-resiliency: failover
    - name: bulk
      vector:
        - name: link1
          priority: 10
        - name: link2
          priority: 100
  service:
    - name: voice
      tenant: blue
      prefix: [10.2.0.0/24]
      router: router-b
      service-policy: voice
    - name: bulk
      tenant: blue
      prefix: [10.3.0.0/24]
      router: router-b
      service-policy: bulk
    - name: other
      tenant: blue
      prefix: [10.4.0.0/24]
      router: router-b
  router:
    - name: router-a
      svr-test-metadata-key: &key
        rekey-index: 1
        encryption-key: \"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\"
        hmac-key: \"101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\"
      peer:
        - router: router-b
      node:
        - name: n1
          core-map:
            workers:
              - lcore: 1
          device-interface:
            - name: lan
              role: lan
              pci-address: \"0000:03:00.0\"
              address: [10.1.0.1/24]
            - name: wan1
              role: wan
              pci-address: \"0000:03:00.1\"
              address: [10.9.1.1/24, \"fd00:91::1/64\"]
              vector: link1
            - name: wan2
              role: wan
              pci-address: \"0000:03:00.2\"
              address: [10.9.2.1/24]
              vector: link2
    - name: router-b
      svr-test-metadata-key: *key
      peer:
        - router: router-a
      node:
        - name: n1
          core-map:
            workers:
              - lcore: 1
          device-interface:
            - name: wan1
              role: wan
              pci-address: \"0000:03:00.1\"
              address: [10.9.1.2/24, \"fd00:91::2/64\"]
            - name: wan2
              role: wan
              pci-address: \"0000:03:00.2\"
              address: [10.9.2.2/24]
";

/// `text` with the one occurrence of `from` replaced by `to`.
fn with(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once");
    text.replacen(from, to, 1)
}

/// The one-line error for BASE with `from` replaced by `to`.
fn err(from: &str, to: &str) -> String {
    let e = Config::parse(&with(BASE, from, to))
        .expect_err("must be rejected")
        .to_string();
    assert!(!e.contains('\n'), "not one line: {e}");
    e
}

fn ok(from: &str, to: &str) -> Config {
    Config::parse(&with(BASE, from, to)).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const P0: &str = "authority.service-policy[0]";
const VOICE: &str = "    - name: voice\n      path-quality-filter: true\n";
const VOICE_BLOCK: &str = "    - name: voice\n      path-quality-filter: true\n      max-latency: 150\n      max-loss: 1\n      session-resiliency: failover\n";
const BFD_AT: &str = "      peer:\n        - router: router-b\n";
const WAN2: &str = "              address: [10.9.2.1/24]\n              vector: link2\n";

#[test]
fn the_testbed_examples_have_no_policy_and_default_bfd_additions() {
    for text in [
        include_str!("../../testbed/router-a.yaml"),
        include_str!("../../testbed/router-b.yaml"),
    ] {
        let c = Config::parse(text).unwrap();
        assert!(c.authority.service_policy.is_empty());
        assert!(c
            .authority
            .service
            .iter()
            .all(|s| s.service_policy.is_none()));
        let (r, n) = c.local();
        assert_eq!(r.bfd.link_test_interval, Duration::from_secs(10));
        assert!(n.device_interface.iter().all(|i| i.vector.is_none()));
        let peer = &r.peer[0].router;
        // One WAN link, two families: one IPv4 and one IPv6 path.
        assert_eq!(c.peer_paths(peer).len(), 2);
    }
}

#[test]
fn policy_defaults_are_ssr_s() {
    let c = Config::parse(BASE).unwrap();
    let bulk = c.service_policy("bulk").unwrap();
    let mut expect = ServicePolicy::with_defaults("bulk");
    expect.vector = vec![
        VectorPreference {
            name: "link1".into(),
            priority: VectorPriority::Priority(10),
        },
        VectorPreference {
            name: "link2".into(),
            priority: VectorPriority::Priority(100),
        },
    ];
    assert_eq!(bulk, &expect);
    assert!(!bulk.path_quality_filter);
    assert_eq!(bulk.max_latency, Duration::from_millis(250));
    assert_eq!(bulk.max_jitter, Duration::from_millis(100));
    assert_eq!(bulk.max_loss.percent(), 0.5);
    assert_eq!(bulk.min_mos, None);
    assert!(bulk.best_effort);
    assert_eq!(bulk.best_path, BestPath::Vector);
    assert_eq!(bulk.lb_strategy, LbStrategy::Hunt);
    assert_eq!(bulk.session_resiliency, SessionResiliency::None);
    let voice = c.service_policy("voice").unwrap();
    assert!(voice.path_quality_filter);
    assert_eq!(voice.max_latency, Duration::from_millis(150));
    assert_eq!(voice.max_loss, LossPercent::from_thousandths(1000));
    assert_eq!(voice.session_resiliency, SessionResiliency::Failover);
    let svc = |n: &str| c.authority.service.iter().find(|s| s.name == n).unwrap();
    assert_eq!(c.policy_of(svc("voice")).unwrap().name, "voice");
    assert!(c.policy_of(svc("other")).is_none());
}

#[test]
fn every_policy_field_reads() {
    let c = ok(
        VOICE_BLOCK,
        "    - name: voice
      path-quality-filter: true
      max-jitter: 30
      max-loss: 0.125
      min-mos: 3.6
      best-effort: false
      best-path: mos
      lb-strategy: proportional
      session-resiliency: packet-duplication
      vector:
        - name: link2
          priority: never
        - name: link1
          priority: 999999
",
    );
    let v = c.service_policy("voice").unwrap();
    assert_eq!(v.max_jitter, Duration::from_millis(30));
    assert_eq!(v.max_loss.thousandths(), 125);
    assert_eq!(v.min_mos, Some(Mos::from_hundredths(360)));
    assert_eq!(v.min_mos.unwrap().value(), 3.6);
    assert!(!v.best_effort);
    assert_eq!(v.best_path, BestPath::Mos);
    assert_eq!(v.lb_strategy, LbStrategy::Proportional);
    assert_eq!(v.session_resiliency, SessionResiliency::PacketDuplication);
    assert_eq!(v.vector[0].priority, VectorPriority::Never);
    assert_eq!(v.vector[1].priority, VectorPriority::Priority(999_999));
    for (text, want) in [
        ("average-latency", BestPath::AverageLatency),
        ("vector", BestPath::Vector),
    ] {
        let c = ok(VOICE, &format!("{VOICE}      best-path: {text}\n"));
        assert_eq!(c.service_policy("voice").unwrap().best_path, want);
    }
    let c = ok(
        "      session-resiliency: failover\n",
        "      session-resiliency: revertible-failover\n",
    );
    assert_eq!(
        c.service_policy("voice").unwrap().session_resiliency,
        SessionResiliency::RevertibleFailover
    );
    let c = ok(
        "      max-loss: 1\n",
        "      max-loss: 100\n      min-mos: disabled\n",
    );
    let v = c.service_policy("voice").unwrap();
    assert_eq!((v.min_mos, v.max_loss.percent()), (None, 100.0));
    let c = ok(
        "      max-loss: 1\n",
        "      max-loss: 0\n      min-mos: 5\n",
    );
    let v = c.service_policy("voice").unwrap();
    assert_eq!(
        (v.min_mos, v.max_loss.percent()),
        (Some(Mos::from_hundredths(500)), 0.0)
    );
}

#[test]
fn policy_errors_name_the_field() {
    let cases: &[(&str, &str, String)] = &[
        (
            "    - name: bulk\n      vector:",
            "    - name: voice\n      vector:",
            "authority.service-policy[1].name: duplicate service-policy name \"voice\" (first at authority.service-policy[0].name)".into(),
        ),
        (
            "    - name: voice\n      path",
            "    - name: \"bad name\"\n      path",
            format!("{P0}.name: \"bad name\" is not a name of 1-63 characters [A-Za-z0-9_-]"),
        ),
        (
            "      max-latency: 150\n",
            "      max-latency: -1\n",
            format!("{P0}.max-latency: -1 is below the minimum 0"),
        ),
        (
            "      max-latency: 150\n",
            "      max-latency: 4294967296\n",
            format!("{P0}.max-latency: 4294967296 is above the maximum 4294967295"),
        ),
        (
            "      max-loss: 1\n",
            "      max-loss: 100.5\n",
            format!("{P0}.max-loss: 100.5 is not 0-100, at most 3 decimals"),
        ),
        (
            "      max-loss: 1\n",
            "      max-loss: 0.0001\n",
            format!("{P0}.max-loss: 0.0001 is not 0-100, at most 3 decimals"),
        ),
        (
            "      max-loss: 1\n",
            "      max-loss: \"1\"\n",
            format!("{P0}.max-loss: expected a number, found \"1\""),
        ),
        (
            "      max-loss: 1\n",
            "      max-loss: 1\n      min-mos: 0.9\n",
            format!("{P0}.min-mos: 0.9 is not 1.00-5.00 or disabled, at most 2 decimals"),
        ),
        (
            "      max-loss: 1\n",
            "      max-loss: 1\n      min-mos: 3.605\n",
            format!("{P0}.min-mos: 3.605 is not 1.00-5.00 or disabled, at most 2 decimals"),
        ),
        (
            "      max-loss: 1\n",
            "      max-loss: 1\n      min-mos: off\n",
            format!("{P0}.min-mos: \"off\" is not one of 1.00-5.00, disabled"),
        ),
        (
            "      path-quality-filter: true\n",
            "      path-quality-filter: yes\n",
            format!("{P0}.path-quality-filter: expected true or false, found \"yes\""),
        ),
        (
            "      max-loss: 1\n",
            "      max-loss: 1\n      best-effort: 1\n",
            format!("{P0}.best-effort: expected true or false, found 1"),
        ),
        (
            "      max-loss: 1\n",
            "      max-loss: 1\n      best-path: latency\n",
            format!("{P0}.best-path: \"latency\" is not one of vector, average-latency, mos"),
        ),
        (
            "      max-loss: 1\n",
            "      max-loss: 1\n      lb-strategy: round-robin\n",
            format!("{P0}.lb-strategy: \"round-robin\" is not one of hunt, proportional"),
        ),
        (
            "      session-resiliency: failover\n",
            "      session-resiliency: revert\n",
            format!("{P0}.session-resiliency: \"revert\" is not one of none, failover, revertible-failover, packet-duplication"),
        ),
        (
            "      max-loss: 1\n",
            "      max-loss: 1\n      required-qp: 3\n",
            format!("{P0}: unknown field \"required-qp\""),
        ),
        (
            "          priority: 10\n",
            "          priority: 0\n",
            "authority.service-policy[1].vector[0].priority: 0 is below the minimum 1".into(),
        ),
        (
            "          priority: 10\n",
            "          priority: 1000000\n",
            "authority.service-policy[1].vector[0].priority: 1000000 is above the maximum 999999".into(),
        ),
        (
            "          priority: 10\n",
            "          priority: always\n",
            "authority.service-policy[1].vector[0].priority: \"always\" is not one of 1-999999, never".into(),
        ),
        (
            "          priority: 10\n",
            "",
            "authority.service-policy[1].vector[0].priority: required field is missing".into(),
        ),
        (
            "        - name: link2\n",
            "        - name: link1\n",
            "authority.service-policy[1].vector[1].name: duplicate vector name \"link1\" (first at authority.service-policy[1].vector[0].name)".into(),
        ),
        (
            "    - name: voice\n      path",
            "    - path",
            format!("{P0}.name: required field is missing"),
        ),
        (
            "  service-policy:\n",
            "  service-policy: voice\n  x:\n",
            "authority.service-policy: expected a list, found \"voice\"".into(),
        ),
    ];
    for (from, to, want) in cases {
        assert_eq!(&err(from, to), want, "{from:?} -> {to:?}");
    }
    // More than 16 vectors.
    let many: String = (0..17)
        .map(|i| format!("        - name: v{i}\n          priority: 1\n"))
        .collect();
    assert_eq!(
        err(
            "        - name: link1\n          priority: 10\n        - name: link2\n          priority: 100\n",
            &many
        ),
        "authority.service-policy[1].vector: 17 entries, at most 16 are allowed"
    );
    // A mapping instead of a list.
    assert_eq!(
        err("  service-policy:\n", "  service-policy: {}\n  sp:\n"),
        "authority.service-policy: expected a list, found a mapping"
    );
}

#[test]
fn service_policy_references_are_checked() {
    assert_eq!(
        err("      service-policy: bulk\n", "      service-policy: bulky\n"),
        "authority.service[1].service-policy: \"bulky\" does not name a service-policy in authority.service-policy"
    );
    assert_eq!(
        err("      service-policy: bulk\n", "      service-policy: 3\n"),
        "authority.service[1].service-policy: expected a string, found 3"
    );
}

#[test]
fn bfd_additions_default_inherit_and_validate() {
    let c = Config::parse(BASE).unwrap();
    let (r, _) = c.local();
    let d = Bfd::default();
    assert_eq!(r.bfd, d);
    assert_eq!(d.link_test_interval, Duration::from_secs(10));
    assert_eq!(d.link_test_length, 10);
    assert_eq!(d.required_min_echo_interval, Duration::from_millis(1000));
    assert_eq!(d.hold_down_time, Duration::from_secs(5));
    assert!(!d.dynamic_damping);
    assert_eq!(d.maximum_hold_down_time, Duration::from_secs(3600));
    // Router values, and a peer overriding one of them.
    let c = ok(
        BFD_AT,
        "      bfd:
        link-test-interval: 20
        link-test-length: 20
        required-min-echo-interval: 500
        hold-down-time: 30
        dynamic-damping: enabled
        maximum-hold-down-time: 600
      peer:
        - router: router-b
          bfd:
            link-test-length: 0
",
    );
    let (r, _) = c.local();
    assert_eq!(r.bfd.link_test_interval, Duration::from_secs(20));
    assert_eq!(r.bfd.link_test_length, 20);
    assert_eq!(r.bfd.required_min_echo_interval, Duration::from_millis(500));
    assert_eq!(r.bfd.hold_down_time, Duration::from_secs(30));
    assert!(r.bfd.dynamic_damping);
    assert_eq!(r.bfd.maximum_hold_down_time, Duration::from_secs(600));
    let p = &r.peer[0].bfd;
    assert_eq!(p.link_test_length, 0);
    assert_eq!(p.hold_down_time, Duration::from_secs(30));
    assert!(p.dynamic_damping);

    let b = "authority.router[0].bfd";
    let cases: &[(&str, String)] = &[
        ("link-test-interval: 0", format!("{b}.link-test-interval: 0 is below the minimum 1")),
        ("link-test-interval: 86401", format!("{b}.link-test-interval: 86401 is above the maximum 86400")),
        ("link-test-length: 256", format!("{b}.link-test-length: 256 is above the maximum 255")),
        ("required-min-echo-interval: 49", format!("{b}.required-min-echo-interval: 49 is below the minimum 50")),
        ("required-min-echo-interval: 60001", format!("{b}.required-min-echo-interval: 60001 is above the maximum 60000")),
        ("hold-down-time: 0", format!("{b}.hold-down-time: 0 is below the minimum 1")),
        ("hold-down-time: 301", format!("{b}.hold-down-time: 301 is above the maximum 300")),
        ("dynamic-damping: true", format!("{b}.dynamic-damping: expected a string, found true")),
        ("dynamic-damping: on", format!("{b}.dynamic-damping: \"on\" is not one of enabled, disabled")),
        ("maximum-hold-down-time: 1", format!("{b}.maximum-hold-down-time: 1 is below the minimum 2")),
        ("maximum-hold-down-time: 86401", format!("{b}.maximum-hold-down-time: 86401 is above the maximum 86400")),
        ("maximum-hold-down-time: 5", format!("{b}.maximum-hold-down-time: maximum-hold-down-time (5 s) must be greater than hold-down-time (5 s)")),
        ("link-test-jitter: 1", format!("{b}: unknown field \"link-test-jitter\"")),
    ];
    for (line, want) in cases {
        let e = err(BFD_AT, &format!("      bfd:\n        {line}\n{BFD_AT}"));
        assert_eq!(&e, want, "{line}");
    }
    // The rule is reported at hold-down-time when only that is given (the maximum is
    // inherited), here on the peer.
    let e = err(
        BFD_AT,
        "      bfd:\n        maximum-hold-down-time: 60\n      peer:\n        - router: router-b\n          bfd:\n            hold-down-time: 60\n",
    );
    assert_eq!(
        e,
        "authority.router[0].peer[0].bfd.hold-down-time: maximum-hold-down-time (60 s) must be greater than hold-down-time (60 s)"
    );
}

#[test]
fn default_peer_paths_are_every_pair_of_the_same_family() {
    let c = Config::parse(BASE).unwrap();
    let paths = c.peer_paths("router-b");
    let got: Vec<(&str, IpAddr, IpAddr, Option<&str>)> = paths
        .iter()
        .map(|p| (p.interface.as_str(), p.local, p.remote, p.vector.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("wan1", ip("10.9.1.1"), ip("10.9.1.2"), Some("link1")),
            ("wan1", ip("10.9.1.1"), ip("10.9.2.2"), Some("link1")),
            ("wan1", ip("fd00:91::1"), ip("fd00:91::2"), Some("link1")),
            ("wan2", ip("10.9.2.1"), ip("10.9.1.2"), Some("link2")),
            ("wan2", ip("10.9.2.1"), ip("10.9.2.2"), Some("link2")),
        ]
    );
    assert!(paths.iter().all(|p| p.cost == 0));
    assert!(c.peer_paths("nobody").is_empty());
}

#[test]
fn adjacencies_select_the_pairs() {
    let c = ok(
        WAN2,
        "              address: [10.9.2.1/24]
              vector: link2
              adjacency:
                - peer: router-b
                  address: 10.9.2.2
                  cost: 7
                - peer: router-b
                  address: 10.9.1.2
                  vector: cross
",
    );
    let (_, n) = c.local();
    assert_eq!(
        n.interface("wan2").unwrap().adjacency[0],
        Adjacency {
            peer: "router-b".into(),
            address: ip("10.9.2.2"),
            cost: 7,
            vector: None,
        }
    );
    // wan2 lists adjacencies to router-b, so wan1 (which lists none) has no path to it.
    let paths = c.peer_paths("router-b");
    let got: Vec<(&str, IpAddr, u32, Option<&str>)> = paths
        .iter()
        .map(|p| (p.interface.as_str(), p.remote, p.cost, p.vector.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("wan2", ip("10.9.2.2"), 7, Some("link2")),
            ("wan2", ip("10.9.1.2"), 0, Some("cross")),
        ]
    );
}

#[test]
fn interface_and_adjacency_errors_name_the_field() {
    let i = "authority.router[0].node[0].device-interface";
    let adj = |body: &str| {
        err(
            WAN2,
            &format!("{WAN2}              adjacency:\n                - {body}\n"),
        )
    };
    assert_eq!(
        adj("peer: router-c\n                  address: 10.9.2.2"),
        format!("{i}[2].adjacency[0].peer: \"router-c\" does not name a router in this router's peer list")
    );
    assert_eq!(
        adj("peer: router-b\n                  address: 10.9.2.9"),
        format!("{i}[2].adjacency[0].address: 10.9.2.9 is not a waypoint of router \"router-b\" (an address of one of its role wan interfaces)")
    );
    assert_eq!(
        adj("peer: router-b\n                  address: \"fd00:91::2\""),
        format!("{i}[2].adjacency[0].address: fd00:91::2 is IPv6, and this interface has no IPv6 address")
    );
    assert_eq!(
        adj("peer: router-b\n                  address: 10.9.2"),
        format!("{i}[2].adjacency[0].address: \"10.9.2\" is not an IPv4 or IPv6 address")
    );
    assert_eq!(
        adj("peer: router-b\n                  address: 10.9.2.2\n                  cost: 1000000"),
        format!("{i}[2].adjacency[0].cost: 1000000 is above the maximum 999999")
    );
    assert_eq!(
        adj("peer: router-b\n                  address: 10.9.2.2\n                  vector: \"a b\""),
        format!("{i}[2].adjacency[0].vector: \"a b\" is not a vector name of 1-63 characters [A-Za-z0-9_-]")
    );
    assert_eq!(
        adj("peer: router-b"),
        format!("{i}[2].adjacency[0].address: required field is missing")
    );
    assert_eq!(
        adj("peer: router-b\n                  address: 10.9.2.2\n                  ip-address: 1.2.3.4"),
        format!("{i}[2].adjacency[0]: unknown field \"ip-address\"")
    );
    assert_eq!(
        adj("peer: router-b\n                  address: 10.9.2.2\n                - peer: router-b\n                  address: 10.9.2.2"),
        format!("{i}[2].adjacency[1].address: duplicate adjacency \"router-b\" 10.9.2.2 (first at {i}[2].adjacency[0].address)")
    );
    assert_eq!(
        err(
            "              vector: link2\n",
            "              vector: \"\"\n"
        ),
        format!("{i}[2].vector: \"\" is not a vector name of 1-63 characters [A-Za-z0-9_-]")
    );
    // LAN interfaces carry neither.
    let lan = "              address: [10.1.0.1/24]\n";
    assert_eq!(
        err(lan, &format!("{lan}              vector: x\n")),
        format!("{i}[0].vector: only allowed on a role wan interface")
    );
    assert_eq!(
        err(lan, &format!("{lan}              adjacency: []\n")),
        format!("{i}[0].adjacency: only allowed on a role wan interface")
    );
}

#[test]
fn the_multipath_testbed_examples_pair_each_link_with_its_isp() {
    for (text, local, peer, me, them) in [
        (
            include_str!("../../testbed/router-a-mp.yaml"),
            "router-a",
            "router-b",
            "1",
            "2",
        ),
        (
            include_str!("../../testbed/router-b-mp.yaml"),
            "router-b",
            "router-a",
            "2",
            "1",
        ),
    ] {
        let c = Config::parse(text).unwrap();
        assert_eq!(c.local().0.name, local);
        let got: Vec<(String, IpAddr, IpAddr, Option<String>)> = c
            .peer_paths(peer)
            .iter()
            .map(|p| (p.interface.clone(), p.local, p.remote, p.vector.clone()))
            .collect();
        let mut want = Vec::new();
        for l in ["1", "2"] {
            want.push((
                format!("wan{l}"),
                ip(&format!("10.9{l}.0.{me}")),
                ip(&format!("10.9{l}.0.{them}")),
                Some(format!("link{l}")),
            ));
            want.push((
                format!("wan{l}"),
                ip(&format!("fd00:9{l}::{me}")),
                ip(&format!("fd00:9{l}::{them}")),
                Some(format!("link{l}")),
            ));
        }
        assert_eq!(
            got, want,
            "{local}: one path per family per link, no cross pairs"
        );
        let svc = |n: &str| c.authority.service.iter().find(|s| s.name == n).unwrap();
        let voice = c.policy_of(svc("voice")).unwrap();
        assert!(voice.path_quality_filter);
        assert_eq!(voice.max_loss.percent(), 1.0);
        assert_eq!(voice.max_latency, Duration::from_millis(150));
        let bulk = c.policy_of(svc("bulk")).unwrap();
        assert_eq!(bulk.vector[0].name, "link1");
        assert_eq!(bulk.vector[0].priority, VectorPriority::Priority(10));
    }
}
