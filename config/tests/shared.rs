//! `SharedCheck::check_as(r, n)` answers exactly what `Config::parse` answers for the
//! document with `local-router: r` and `local-node: n` (errors on those two keys left
//! out): on the example files, on random edits of them, and on a large authority in
//! linear time.

use std::time::Instant;

use proptest::prelude::*;
use serde_norway::{Mapping, Value};
use svr_config::{Config, ConfigError, SharedCheck};

const TEST_KEYS: &str = include_str!("../../testbed/router-a.yaml");
const ZT: &str = include_str!("../../testbed/router-a-zt.yaml");
const MP: &str = include_str!("../../testbed/router-a-mp.yaml");

/// What svrd's check says for `doc` as router `r`, node `n`.
fn reference(doc: &Value, r: &str, n: &str) -> Result<(), ConfigError> {
    let mut view = Mapping::new();
    view.insert("local-router".into(), r.into());
    view.insert("local-node".into(), n.into());
    if let Value::Mapping(m) = doc {
        for (k, v) in m {
            if !matches!(k.as_str(), Some("local-router" | "local-node")) {
                view.insert(k.clone(), v.clone());
            }
        }
    }
    let text = serde_norway::to_string(&Value::Mapping(view)).unwrap();
    match Config::parse(&text) {
        Ok(_) => Ok(()),
        Err(_) => Err(Config::diagnose(&text)
            .into_iter()
            .find(|e| !matches!(e.path(), Some("local-router" | "local-node")))
            .unwrap_or(ConfigError::Rule {
                path: "(top level)".into(),
                rule: "invalid configuration".into(),
            })),
    }
}

/// The (router, node) names written in `doc`, and a few that are not.
fn names(doc: &Value) -> Vec<(String, String)> {
    let mut out = vec![
        ("router-a".to_string(), "nope".to_string()),
        ("nope".to_string(), "node-1".to_string()),
        (String::new(), "node-1".to_string()),
    ];
    let routers = doc
        .get("authority")
        .and_then(|a| a.get("router"))
        .and_then(Value::as_sequence);
    for r in routers.into_iter().flatten() {
        let Some(rn) = r.get("name").and_then(Value::as_str) else {
            continue;
        };
        let nodes = r.get("node").and_then(Value::as_sequence);
        for n in nodes.into_iter().flatten() {
            if let Some(nn) = n.get("name").and_then(Value::as_str) {
                out.push((rn.to_string(), nn.to_string()));
            }
        }
    }
    out
}

/// `doc` as the conductor stores it: read back from its YAML text.
fn round_trip(doc: &Value) -> Option<Value> {
    serde_norway::from_str(&serde_norway::to_string(doc).ok()?).ok()
}

fn same_as_parse(doc: &Value) {
    let Some(doc) = round_trip(doc).filter(Value::is_mapping) else {
        return;
    };
    let shared = SharedCheck::new(&doc);
    for (r, n) in names(&doc) {
        assert_eq!(
            shared.check_as(&r, &n),
            reference(&doc, &r, &n),
            "as router {r:?}, node {n:?}"
        );
    }
}

/// The example files, and a three-router variant: a router with two nodes, one of them
/// without pki, and a router without a test key that peers with router-a.
fn bases() -> Vec<Value> {
    let mut out: Vec<Value> = [TEST_KEYS, ZT, MP]
        .iter()
        .map(|t| serde_norway::from_str(t).unwrap())
        .collect();
    for i in 0..2 {
        let mut v = out[i].clone();
        let routers = v["authority"]["router"].as_sequence_mut().unwrap();
        let mut c = routers[1].clone();
        c["name"] = "router-c".into();
        if let Some(m) = c.as_mapping_mut() {
            m.remove("svr-test-metadata-key");
            m.insert("peering-common-name".into(), "router-c.testbed.svr".into());
            m.insert(
                "peer".into(),
                serde_norway::from_str("[{router: router-a}]").unwrap(),
            );
        }
        let mut n2 = c["node"][0].clone();
        n2["name"] = "node-2".into();
        if let Some(m) = n2.as_mapping_mut() {
            m.remove("pki");
        }
        c["node"].as_sequence_mut().unwrap().push(n2);
        routers.push(c);
        out.push(v);
    }
    out
}

#[test]
fn local_rules_are_checked_per_node() {
    let bases = bases();
    // Test-key mode: router-c has no key and peers with router-a.
    let shared = SharedCheck::new(&bases[3]);
    assert_eq!(shared.check_as("router-a", "node-1"), Ok(()));
    let e = shared.check_as("router-c", "node-1").unwrap_err();
    assert_eq!(
        e.path(),
        Some("authority.router[2].svr-test-metadata-key"),
        "{e}"
    );
    // Enhanced mode: router-c's node-2 has no pki, which matters only when it is local.
    let shared = SharedCheck::new(&bases[4]);
    assert_eq!(shared.check_as("router-c", "node-1"), Ok(()));
    let e = shared.check_as("router-c", "node-2").unwrap_err();
    assert_eq!(
        e.to_string(),
        "authority.router[2].node[1].pki: required on the local node when authority.enhanced-security-key-management is true"
    );
    assert_eq!(e, reference(&bases[4], "router-c", "node-2").unwrap_err());
}

#[test]
fn examples_and_variants() {
    for base in bases() {
        same_as_parse(&base);
        // Each router's test key, pki, name and peer list removed in turn.
        let n = base["authority"]["router"].as_sequence().unwrap().len();
        for i in 0..n {
            for key in [
                "svr-test-metadata-key",
                "name",
                "peer",
                "peering-common-name",
            ] {
                let mut v = base.clone();
                if let Some(m) = v["authority"]["router"][i].as_mapping_mut() {
                    m.remove(key);
                }
                same_as_parse(&v);
            }
            let mut v = base.clone();
            if let Some(m) = v["authority"]["router"][i]["node"][0].as_mapping_mut() {
                m.remove("pki");
                m.remove("core-map");
            }
            same_as_parse(&v);
            // A duplicated router name.
            let mut v = base.clone();
            v["authority"]["router"][i]["name"] = "router-a".into();
            same_as_parse(&v);
        }
        for flag in [true, false] {
            let mut v = base.clone();
            v["authority"]["enhanced-security-key-management"] = flag.into();
            same_as_parse(&v);
        }
    }
}

/// A random replacement value.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0u64..100_000).prop_map(|n| Value::Number(n.into())),
        prop_oneof![
            Just("router-a"),
            Just("router-b"),
            Just("router-c"),
            Just("node-1"),
            Just("node-2"),
            Just("wan"),
            Just(""),
            Just("a\nb"),
        ]
        .prop_map(|s| Value::String(s.into())),
        Just(Value::Sequence(Vec::new())),
        Just(Value::Mapping(Mapping::new())),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Replace(Value),
    RemoveKey,
    DuplicateElement,
    RemoveElement,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        value().prop_map(Edit::Replace),
        Just(Edit::RemoveKey),
        Just(Edit::DuplicateElement),
        Just(Edit::RemoveElement),
    ]
}

/// Walks down `v` following `route` (stopping when it runs out), then applies `edit`.
fn mutate(v: &mut Value, route: &[usize], edit: &Edit) {
    let pick = route.last().copied().unwrap_or(0);
    match (route.split_first(), v) {
        (Some((s, rest)), Value::Mapping(m)) if !m.is_empty() && !rest.is_empty() => {
            let i = s % m.len();
            if let Some((_, child)) = m.iter_mut().nth(i) {
                mutate(child, rest, edit);
            }
        }
        (Some((s, rest)), Value::Sequence(items)) if !items.is_empty() && !rest.is_empty() => {
            let i = s % items.len();
            mutate(&mut items[i], rest, edit);
        }
        (_, v) => match (edit, v) {
            (Edit::RemoveKey, Value::Mapping(m)) if !m.is_empty() => {
                let key = m.iter().nth(pick % m.len()).map(|(k, _)| k.clone());
                if let Some(k) = key {
                    m.remove(&k);
                }
            }
            (Edit::DuplicateElement, Value::Sequence(items)) if !items.is_empty() => {
                let e = items[pick % items.len()].clone();
                items.push(e);
            }
            (Edit::RemoveElement, Value::Sequence(items)) if !items.is_empty() => {
                let n = items.len();
                items.remove(pick % n);
            }
            (Edit::Replace(new), v) => *v = new.clone(),
            _ => {}
        },
    }
}

/// Cases per property: 150, or `SVR_CONFIG_FUZZ_CASES` for a longer hunt.
fn cases() -> u32 {
    std::env::var("SVR_CONFIG_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn random_edits_of_the_routers(
        base in 0usize..5,
        edits in prop::collection::vec((prop::collection::vec(any::<usize>(), 1..7), edit()), 1..4)
    ) {
        let mut v = bases().swap_remove(base);
        for (route, e) in &edits {
            mutate(&mut v["authority"]["router"], route, e);
        }
        same_as_parse(&v);
    }

    #[test]
    fn random_edits_anywhere(
        base in 0usize..5,
        edits in prop::collection::vec((prop::collection::vec(any::<usize>(), 1..9), edit()), 1..4)
    ) {
        let mut v = bases().swap_remove(base);
        for (route, e) in &edits {
            mutate(&mut v, route, e);
        }
        same_as_parse(&v);
    }
}

#[test]
fn a_big_authority_is_checked_as_every_node() {
    let doc: Value = serde_norway::from_str(&svr_config::generated_authority(2_000)).unwrap();
    let start = Instant::now();
    let shared = SharedCheck::new(&doc);
    for i in 0..2_000 {
        assert_eq!(shared.check_as(&format!("r{i}"), "node-1"), Ok(()));
    }
    // Speed is BENCHMARKS.md §10's (no timed tests); quadratic, this took minutes.
    eprintln!(
        "2,000 routers checked as each node in {:?}",
        start.elapsed()
    );
    assert_eq!(shared.authority().unwrap().router.len(), 2_000);
}
