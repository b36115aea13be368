//! No input makes the parser panic: random bytes, random edits of the example text, and
//! random edits of the example's YAML tree. Beyond "no panic", each case checks that the
//! answer is consistent: an error is one line and is the first of `diagnose`'s list, and an
//! accepted config can be used (local node, EAL args, CPU check) without panicking.

use proptest::prelude::*;
use serde_norway::{Mapping, Value};
use svr_config::Config;

const EXAMPLE: &str = include_str!("../../testbed/router-a.yaml");

fn check(text: &str) {
    match Config::parse(text) {
        Ok(c) => {
            assert!(Config::diagnose(text).is_empty());
            let (_, node) = c.local();
            let args = node.eal.args(node, "svrd");
            assert!(args.len() >= 10);
            let _ = c.check_cpus(&[0, 1]);
            // The SVR views of the config are total on anything parse accepts.
            let _ = c.local_waypoints();
            for r in &c.authority.router {
                let _ = c.waypoints(&r.name);
                for p in &r.peer {
                    assert!(c.router(&p.router).is_some(), "peer {:?} dangles", p.router);
                }
            }
            for s in &c.authority.service {
                assert!(
                    c.router(&s.router).is_some(),
                    "service router {:?} dangles",
                    s.router
                );
            }
            let _ = c.services_via_peers();
            let debug = format!("{c:?}");
            assert!(!debug.contains("a0a1a2a3"), "a test key in Debug output");
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n') && !msg.is_empty(), "{msg:?}");
            let all = Config::diagnose(text);
            assert_eq!(all.first(), Some(&e), "parse and diagnose disagree");
        }
    }
}

/// Snippets that are likely to reach interesting corners of YAML and of the schema.
const SNIPPETS: &[&str] = &[
    "-1",
    "0",
    "65536",
    "99999999999999999999999",
    "1e9",
    "2.5",
    "0x10",
    "never",
    "~",
    "null",
    "true",
    "[",
    "]",
    "{",
    "}",
    ":",
    ": ",
    "- ",
    "  ",
    "\n",
    "\n  - ",
    "&a ",
    "*a",
    "!!str ",
    "!tag ",
    "\"",
    "'",
    "#",
    "|\n  x",
    "? ",
    "<<: *a",
    "\t",
    "é",
    "\u{0}",
    "\u{feff}",
    "---\n",
    "fd00::1/64",
    "fe80::1",
    "0.0.0.0/0",
    "10.9.0.300",
    "02:00:00:00:09:02",
    "0000:03:00.0",
    "net_tap0",
    "router-b",
    "wan",
    "lan",
    "node-1",
    "mtu: 1280\n",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    Snippet(usize, usize),
    DuplicateLine(usize),
    DeleteLine(usize),
    SwapLines(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), ".{0,12}").prop_map(|(a, s)| Edit::Insert(a, s)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, s)| Edit::Snippet(a, s)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        any::<usize>().prop_map(Edit::DeleteLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for e in edits {
        let len = bytes.len().max(1);
        match e {
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Edit::Insert(at, s) => {
                let at = (at % len).min(bytes.len());
                bytes.splice(at..at, s.bytes());
            }
            Edit::Snippet(at, which) => {
                let at = (at % len).min(bytes.len());
                bytes.splice(at..at, SNIPPETS[which % SNIPPETS.len()].bytes());
            }
            Edit::DuplicateLine(l) | Edit::DeleteLine(l) | Edit::SwapLines(l, _) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = text.lines().collect();
                if lines.is_empty() {
                    continue;
                }
                let i = l % lines.len();
                match e {
                    Edit::DuplicateLine(_) => lines.insert(i, lines[i]),
                    Edit::DeleteLine(_) => {
                        lines.remove(i);
                    }
                    Edit::SwapLines(_, m) => {
                        let j = m % lines.len();
                        lines.swap(i, j);
                    }
                    _ => unreachable!(),
                }
                bytes = lines.join("\n").into_bytes();
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A random replacement value for the tree mutations.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        (0u64..100_000).prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_map(|n| Value::Number(n.into())),
        any::<usize>().prop_map(|i| Value::String(SNIPPETS[i % SNIPPETS.len()].trim().into())),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Sequence),
            prop::collection::vec((".{0,8}", inner), 0..3).prop_map(|kv| {
                Value::Mapping(
                    kv.into_iter()
                        .map(|(k, v)| (Value::String(k), v))
                        .collect::<Mapping>(),
                )
            }),
        ]
    })
}

#[derive(Debug, Clone)]
enum TreeEdit {
    Replace(Value),
    RemoveKey,
    DuplicateElement,
    RemoveElement,
    AddKey(String, Value),
}

fn tree_edit() -> impl Strategy<Value = TreeEdit> {
    prop_oneof![
        value().prop_map(TreeEdit::Replace),
        Just(TreeEdit::RemoveKey),
        Just(TreeEdit::DuplicateElement),
        Just(TreeEdit::RemoveElement),
        (
            prop_oneof![Just("mtu".to_string()), Just("name".to_string()), ".{1,8}"],
            value()
        )
            .prop_map(|(k, v)| TreeEdit::AddKey(k, v)),
    ]
}

/// Walks down `v` following `route` (stopping early at random), then applies `edit`.
fn mutate(v: &mut Value, route: &[usize], edit: &TreeEdit) {
    let (step, rest) = match route.split_first() {
        Some((s, r)) if s % 16 != 0 => (Some(*s), r),
        _ => (None, route),
    };
    let pick = rest.first().copied().unwrap_or(0);
    match (step, v) {
        (Some(s), Value::Mapping(m)) if !m.is_empty() => {
            let i = s % m.len();
            if let Some((_, child)) = m.iter_mut().nth(i) {
                mutate(child, rest, edit);
            }
        }
        (Some(s), Value::Sequence(items)) if !items.is_empty() => {
            let i = s % items.len();
            mutate(&mut items[i], rest, edit);
        }
        (_, v) => match (edit, v) {
            (TreeEdit::RemoveKey, Value::Mapping(m)) if !m.is_empty() => {
                let key = m.iter().nth(pick % m.len()).map(|(k, _)| k.clone());
                if let Some(k) = key {
                    m.remove(&k);
                }
            }
            (TreeEdit::AddKey(k, val), Value::Mapping(m)) => {
                m.insert(Value::String(k.clone()), val.clone());
            }
            (TreeEdit::DuplicateElement, Value::Sequence(items)) if !items.is_empty() => {
                let e = items[pick % items.len()].clone();
                items.push(e);
            }
            (TreeEdit::RemoveElement, Value::Sequence(items)) if !items.is_empty() => {
                let n = items.len();
                items.remove(pick % n);
            }
            (TreeEdit::Replace(new), v) => *v = new.clone(),
            _ => {}
        },
    }
}

/// Cases per property: 1000, or `SVR_CONFIG_FUZZ_CASES` for a longer hunt.
fn cases() -> u32 {
    std::env::var("SVR_CONFIG_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_text_edits_of_the_example(edits in prop::collection::vec(edit(), 1..6)) {
        check(&apply(EXAMPLE, &edits));
    }

    #[test]
    fn random_tree_edits_of_the_example(
        edits in prop::collection::vec((prop::collection::vec(any::<usize>(), 2..14), tree_edit()), 1..4)
    ) {
        let mut v: Value = serde_norway::from_str(EXAMPLE).unwrap();
        for (route, e) in &edits {
            mutate(&mut v, route, e);
        }
        if let Ok(text) = serde_norway::to_string(&v) {
            check(&text);
        }
    }

    #[test]
    fn random_tree_edits_of_the_local_node(
        edits in prop::collection::vec((prop::collection::vec(any::<usize>(), 2..8), tree_edit()), 1..4)
    ) {
        let mut v: Value = serde_norway::from_str(EXAMPLE).unwrap();
        let node = &mut v["authority"]["router"][0]["node"][0];
        for (route, e) in &edits {
            mutate(node, route, e);
        }
        if let Ok(text) = serde_norway::to_string(&v) {
            check(&text);
        }
    }
}

#[test]
fn hostile_documents() {
    let deep_list = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let deep_map: String = (0..2_000)
        .map(|i| format!("{}a:\n", " ".repeat(i)))
        .collect();
    let laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
                  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n\
                  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    let long_line = format!("local-router: {}\n", "x".repeat(1_000_000));
    for text in [
        deep_list.as_str(),
        deep_map.as_str(),
        laughs,
        long_line.as_str(),
        "\u{0}",
        "\u{feff}",
        "%YAML 1.1\n---\na: 1\n",
        "!!binary aGVsbG8=",
        "? a\n",
        "local-router: 18446744073709551616\n",
        "authority:\n  router:\n    - node:\n        - core-map:\n            workers:\n              - lcore: 18446744073709551615\n",
    ] {
        check(text);
    }
    // Long values are cut in messages.
    let e = Config::parse(&long_line).unwrap_err().to_string();
    assert!(e.len() < 200, "{}", e.len());
}
