//! The conductor's document: the authority configuration, validated as every router's svrd
//! would validate it, and rendered per router.
//!
//! The document is an svrd configuration file **without** `local-router` and `local-node`
//! (each router's svrd takes those from its bootstrap file): one top-level key,
//! `authority`, with exactly the schema of `svr-config`.
//!
//! **Validation.** For every node `N` of every router `R`, the document with
//! `local-router: R` and `local-node: N` added must pass [`svr_config::Config::parse`], the
//! check of `svrd --check` minus the host checks (the conductor is not the router's
//! machine). The first error is returned with its field path unchanged (the paths are the
//! same in the conductor's document, since only top-level keys are added), plus the router
//! and node it was checked as when the rule depends on them (test keys, `pki`). The
//! document is validated once ([`svr_config::SharedCheck`]) and only the rules that depend
//! on the local router and node run per node, so an apply costs time linear in the
//! document's size, not in its size times its number of nodes.
//!
//! **Rendering** ([`Document::render`]): a router `R` receives an svrd configuration with
//! `local-router: R` (its svrd adds `local-node`), and an `authority` holding
//! - every authority setting except the three lists (`name`, `enhanced-security-key-management`,
//!   `security-key-management`, `trusted-ca-certificate`, `certificate-revocation-list`);
//! - the services served by `R` or by one of `R`'s peers (`router[].peer[]`), in document
//!   order, and the service policies those services name;
//! - `R`'s own router entry, verbatim;
//! - for each peer `P` of `R`, only what `R` needs of it: `name`, `peering-common-name`,
//!   `svr-test-metadata-key` (test-key mode), `P`'s `peer[]` entry for `R`, and the nodes
//!   with a `role: wan` interface, each reduced to `name`, `core-map` and its WAN
//!   interfaces' `name`, `role`, device (`vdev` / `pci-address`) and `address` (the
//!   waypoints). `core-map` and the device are local settings of `P`, but svr-config's
//!   schema requires them on every node; they stay until the schema has a form for remote
//!   routers. Everything else of another router (its LAN interfaces, routes, neighbours,
//!   EAL, PKI paths, SVR settings, adjacencies, BFD timers, location, description) is
//!   left out.
//!
//! File paths in the document (`trusted-ca-certificate`, `certificate-revocation-list`,
//! `pki`) are paths on the router; they are passed on as written.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde_norway::{Mapping, Value};
use svr_config::{Config, ConfigError, SharedCheck};
use zeroize::Zeroizing;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The document breaks an svr-config rule (the message is svrd's, with the field path).
    #[error("{error}{}", checked_as(router.as_deref(), node.as_deref()))]
    Config {
        /// svr-config's error (boxed: it is large, and errors travel by value).
        error: Box<ConfigError>,
        /// The router it was checked as (`local-router`), when the document has routers.
        router: Option<String>,
        /// The node it was checked as (`local-node`).
        node: Option<String>,
    },
    /// `local-router` or `local-node` at the top level.
    #[error("{key}: not allowed in the conductor's document (each router's svrd takes it from its bootstrap file)")]
    LocalKey {
        /// The key found.
        key: &'static str,
    },
    /// A router's rendered part does not pass svr-config: a conductor bug, reported
    /// rather than sent to the router.
    #[error(
        "rendering router {router}: {error} (conductor bug: the rendered part fails svrd's check)"
    )]
    Render {
        /// The router whose part failed.
        router: String,
        /// svr-config's error on the rendered part.
        error: Box<ConfigError>,
    },
}

fn checked_as(router: Option<&str>, node: Option<&str>) -> String {
    match (router, node) {
        (Some(r), Some(n)) => format!(" (checked as router {r}, node {n})"),
        _ => String::new(),
    }
}

/// What the conductor needs to know about one router of a valid document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterFacts {
    /// `peering-common-name`, if set.
    pub peering_common_name: Option<String>,
    /// The names of its nodes.
    pub nodes: Vec<String>,
}

/// A valid conductor document.
#[derive(Clone)]
pub struct Document {
    /// The document as parsed (one key, `authority`).
    value: Value,
    /// Each router's facts, by name.
    routers: BTreeMap<String, RouterFacts>,
    /// Each router's rendered part (YAML text), by name.
    rendered: BTreeMap<String, Zeroizing<String>>,
    /// Where each router's part comes from in `value`.
    index: Index,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The document may hold test keys: never print it.
        f.debug_struct("Document")
            .field("routers", &self.routers)
            .finish_non_exhaustive()
    }
}

impl Document {
    /// Validates `text` (see the module documentation) and renders every router's part.
    pub fn parse(text: &str) -> Result<Document, DocumentError> {
        let value = read_yaml(text)?;
        for key in ["local-router", "local-node"] {
            if value.get(key).is_some() {
                return Err(DocumentError::LocalKey { key });
            }
        }
        let names = raw_router_nodes(&value);
        if names.is_empty() {
            // No readable router: svr-config reports why (the local names are filtered out).
            check_view(&value, "", None).map_err(|error| DocumentError::Config {
                error: Box::new(error),
                router: None,
                node: None,
            })?;
        }
        let shared = SharedCheck::new(&value);
        let mut checked = false;
        for (router, nodes) in &names {
            for node in nodes {
                shared
                    .check_as(router, node)
                    .map_err(|error| DocumentError::Config {
                        error: Box::new(error),
                        router: Some(router.clone()),
                        node: Some(node.clone()),
                    })?;
                checked = true;
            }
        }
        // Every node passed, so the shared rules did (they apply to every node).
        let Some(authority) = shared.authority().filter(|_| checked) else {
            // A document whose routers have no readable node is refused above by svr-config.
            return Err(DocumentError::Config {
                error: Box::new(internal("the document has no router with a node")),
                router: None,
                node: None,
            });
        };
        let routers: BTreeMap<String, RouterFacts> = authority
            .router
            .iter()
            .map(|r| {
                let facts = RouterFacts {
                    peering_common_name: r.peering_common_name.clone(),
                    nodes: r.node.iter().map(|n| n.name.clone()).collect(),
                };
                (r.name.clone(), facts)
            })
            .collect();
        let index = Index::new(&value);
        let mut rendered = BTreeMap::new();
        for (name, facts) in &routers {
            let part = render_value(&value, &index, name);
            let check = SharedCheck::new(&part);
            for node in &facts.nodes {
                check
                    .check_as(name, node)
                    .map_err(|error| DocumentError::Render {
                        router: name.clone(),
                        error: Box::new(error),
                    })?;
            }
            rendered.insert(name.clone(), to_yaml(&part));
        }
        Ok(Document {
            value,
            routers,
            rendered,
            index,
        })
    }

    /// The routers of the document, by name.
    pub fn routers(&self) -> &BTreeMap<String, RouterFacts> {
        &self.routers
    }

    /// Router `name`'s configuration (YAML text with `local-router`), if it is in the document.
    pub fn render(&self, name: &str) -> Option<&str> {
        self.rendered.get(name).map(|s| s.as_str())
    }

    /// Do both documents say the same (comments and layout aside)?
    pub fn same_as(&self, other: &Document) -> bool {
        self.value == other.value
    }

    /// What changed for each router from `old` (no document: everything is new) to `self`.
    /// Routers whose part is unchanged are not listed.
    pub fn diff(&self, old: Option<&Document>) -> Vec<RouterChange> {
        let mut out = Vec::new();
        let empty = BTreeMap::new();
        let old_routers = old.map(|d| &d.routers).unwrap_or(&empty);
        for name in self.routers.keys() {
            let now = parts(&render_value(&self.value, &self.index, name));
            let change = match old.filter(|_| old_routers.contains_key(name)) {
                None => RouterChange {
                    router: name.clone(),
                    kind: RouterChangeKind::Added,
                },
                Some(old) => {
                    let before = parts(&render_value(&old.value, &old.index, name));
                    let changes = diff_parts(&before, &now);
                    if changes.is_empty() {
                        continue;
                    }
                    RouterChange {
                        router: name.clone(),
                        kind: RouterChangeKind::Changed(changes),
                    }
                }
            };
            out.push(change);
        }
        for name in old_routers.keys() {
            if !self.routers.contains_key(name) {
                out.push(RouterChange {
                    router: name.clone(),
                    kind: RouterChangeKind::Removed,
                });
            }
        }
        out.sort_by(|a, b| a.router.cmp(&b.router));
        out
    }
}

/// What an apply changes for one router.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouterChange {
    /// The router.
    pub router: String,
    /// How its part changed.
    pub kind: RouterChangeKind,
}

/// How a router's part changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouterChangeKind {
    /// The router is new in the document.
    Added,
    /// The router left the document.
    Removed,
    /// Its rendered part changed in these places.
    Changed(Vec<Change>),
}

/// One changed part of a router's configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    /// Which part.
    pub part: Part,
    /// Added, removed or changed.
    pub what: ChangeKind,
}

/// A part of a rendered configuration, the unit of a diff.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// An authority setting (`name`, `security-key-management`, ...), by key.
    Setting(String),
    /// A service, by name.
    Service(String),
    /// A service policy, by name.
    Policy(String),
    /// The router's own entry.
    OwnRouter,
    /// What the router receives of a peer, by name.
    Peer(String),
}

/// Added, removed or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// New in this revision.
    Added,
    /// Gone in this revision.
    Removed,
    /// Present in both, different.
    Changed,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Setting(k) => write!(f, "authority setting {k}"),
            Part::Service(n) => write!(f, "service {n}"),
            Part::Policy(n) => write!(f, "service-policy {n}"),
            Part::OwnRouter => write!(f, "own router entry"),
            Part::Peer(n) => write!(f, "peer {n}"),
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        })
    }
}

impl fmt::Display for RouterChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            RouterChangeKind::Added => write!(f, "{}: new router", self.router),
            RouterChangeKind::Removed => write!(f, "{}: removed from the authority", self.router),
            RouterChangeKind::Changed(changes) => {
                write!(f, "{}: ", self.router)?;
                for (i, c) in changes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{} {}", c.part, c.what)?;
                }
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------

fn internal(rule: &str) -> ConfigError {
    ConfigError::Rule {
        path: "(top level)".into(),
        rule: rule.into(),
    }
}

/// The YAML value of `text`; syntax errors and empty documents are svr-config's own.
fn read_yaml(text: &str) -> Result<Value, DocumentError> {
    let plain = |error| DocumentError::Config {
        error: Box::new(error),
        router: None,
        node: None,
    };
    match serde_norway::from_str::<Value>(text) {
        Ok(v @ Value::Mapping(_)) => Ok(v),
        // Not a mapping (or not YAML): svr-config says why, as svrd --check would.
        _ => Err(plain(match Config::parse(text) {
            Err(e) => e,
            Ok(_) => internal("expected a mapping with the key authority"),
        })),
    }
}

/// The (router, nodes) names readable in the raw document, in document order.
fn raw_router_nodes(doc: &Value) -> Vec<(String, Vec<String>)> {
    let routers = doc
        .get("authority")
        .and_then(|a| a.get("router"))
        .and_then(Value::as_sequence);
    let name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_owned);
    routers
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let nodes: Vec<String> = r
                .get("node")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(name)
                .collect();
            Some((name(r)?, nodes))
        })
        .collect()
}

/// `doc` checked by svr-config as router `router`, node `node`. Errors on the added keys
/// themselves (a name svr-config refuses) are skipped: they are not the operator's.
fn check_view(doc: &Value, router: &str, node: Option<&str>) -> Result<Config, ConfigError> {
    let mut view = Mapping::new();
    view.insert("local-router".into(), router.into());
    if let Some(node) = node {
        view.insert("local-node".into(), node.into());
    }
    if let Value::Mapping(m) = doc {
        for (k, v) in m {
            if k.as_str() != Some("local-router") {
                view.insert(k.clone(), v.clone());
            }
        }
    }
    let text = to_yaml(&Value::Mapping(view));
    match Config::parse(&text) {
        Ok(c) => Ok(c),
        Err(_) => {
            let first = Config::diagnose(&text)
                .into_iter()
                .find(|e| !matches!(e.path(), Some("local-router" | "local-node")));
            Err(first.unwrap_or_else(|| internal("invalid configuration")))
        }
    }
}

fn to_yaml(v: &Value) -> Zeroizing<String> {
    // Serialising a Value that came from YAML cannot fail (string keys, no tags we did not read).
    Zeroizing::new(serde_norway::to_string(v).unwrap_or_default())
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn seq_at<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Where the parts of each router's configuration are in a document: the positions of the
/// routers, of the services by serving router and of the policies, by name. Built once,
/// so that rendering a router costs the size of its part, not of the whole document.
#[derive(Debug, Clone, Default)]
struct Index {
    /// `authority.router` positions, by `name`.
    routers: HashMap<String, Vec<usize>>,
    /// `authority.service` positions, by `router`.
    services: HashMap<String, Vec<usize>>,
    /// `authority.service-policy` positions, by `name`.
    policies: HashMap<String, Vec<usize>>,
}

impl Index {
    fn new(doc: &Value) -> Index {
        let empty = Value::Mapping(Mapping::new());
        let authority = doc.get("authority").unwrap_or(&empty);
        let by = |list: &str, key: &str| {
            let mut map: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, v) in seq_at(authority, list).iter().enumerate() {
                if let Some(k) = str_at(v, key) {
                    map.entry(k.to_owned()).or_default().push(i);
                }
            }
            map
        };
        Index {
            routers: by("router", "name"),
            services: by("service", "router"),
            policies: by("service-policy", "name"),
        }
    }
}

/// The entries of `list` at the positions `map` gives for `keys`, in document order.
fn select<'a>(
    list: &'a [Value],
    map: &HashMap<String, Vec<usize>>,
    keys: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a Value> {
    let mut at: Vec<usize> = keys
        .into_iter()
        .filter_map(|k| map.get(k))
        .flatten()
        .copied()
        .collect();
    at.sort_unstable();
    at.dedup();
    at.into_iter().filter_map(|i| list.get(i)).collect()
}

/// Router `name`'s part of `doc` (see the module documentation); `doc` is valid and
/// `index` is its [`Index`].
fn render_value(doc: &Value, index: &Index, name: &str) -> Value {
    let empty = Value::Mapping(Mapping::new());
    let authority = doc.get("authority").unwrap_or(&empty);
    let routers = seq_at(authority, "router");
    let me = index
        .routers
        .get(name)
        .and_then(|at| at.first())
        .and_then(|&i| routers.get(i));
    let Some(me) = me else {
        return Value::Null;
    };
    let peers: BTreeSet<&str> = seq_at(me, "peer")
        .iter()
        .filter_map(|p| str_at(p, "router"))
        .collect();
    let here = || std::iter::once(name).chain(peers.iter().copied());
    let services: Vec<Value> = select(seq_at(authority, "service"), &index.services, here())
        .into_iter()
        .cloned()
        .collect();
    let used: BTreeSet<&str> = services
        .iter()
        .filter_map(|s| str_at(s, "service-policy"))
        .collect();
    let policies: Vec<Value> = select(
        seq_at(authority, "service-policy"),
        &index.policies,
        used.iter().copied(),
    )
    .into_iter()
    .cloned()
    .collect();
    let mut out = Mapping::new();
    if let Value::Mapping(m) = authority {
        for (k, v) in m {
            if !matches!(k.as_str(), Some("service" | "service-policy" | "router")) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if !services.is_empty() {
        out.insert("service".into(), Value::Sequence(services));
    }
    if !policies.is_empty() {
        out.insert("service-policy".into(), Value::Sequence(policies));
    }
    let kept: Vec<Value> = select(routers, &index.routers, here())
        .into_iter()
        .filter_map(|r| match str_at(r, "name") {
            Some(n) if n == name => Some(r.clone()),
            Some(n) if peers.contains(n) => Some(reduce_peer(r, name)),
            _ => None,
        })
        .collect();
    out.insert("router".into(), Value::Sequence(kept));
    let mut top = Mapping::new();
    top.insert("local-router".into(), name.into());
    top.insert("authority".into(), Value::Mapping(out));
    Value::Mapping(top)
}

/// Copies the keys `keys` of mapping `from` that are present, in that order.
fn pick(from: &Value, keys: &[&str]) -> Mapping {
    let mut m = Mapping::new();
    for k in keys {
        if let Some(v) = from.get(*k) {
            m.insert((*k).into(), v.clone());
        }
    }
    m
}

/// What router `me` receives of its peer `peer`.
fn reduce_peer(peer: &Value, me: &str) -> Value {
    let mut m = pick(
        peer,
        &["name", "peering-common-name", "svr-test-metadata-key"],
    );
    let back: Vec<Value> = seq_at(peer, "peer")
        .iter()
        .filter(|p| str_at(p, "router") == Some(me))
        .cloned()
        .collect();
    if !back.is_empty() {
        m.insert("peer".into(), Value::Sequence(back));
    }
    let nodes: Vec<Value> = seq_at(peer, "node")
        .iter()
        .filter_map(|n| {
            let wans: Vec<Value> = seq_at(n, "device-interface")
                .iter()
                .filter(|i| str_at(i, "role") == Some("wan"))
                .map(|i| {
                    Value::Mapping(pick(i, &["name", "role", "vdev", "pci-address", "address"]))
                })
                .collect();
            if wans.is_empty() {
                return None;
            }
            let mut node = pick(n, &["name", "core-map"]);
            node.insert("device-interface".into(), Value::Sequence(wans));
            Some(Value::Mapping(node))
        })
        .collect();
    m.insert("node".into(), Value::Sequence(nodes));
    Value::Mapping(m)
}

/// The parts of a rendered configuration, for diffs.
fn parts(rendered: &Value) -> BTreeMap<Part, Value> {
    let mut out = BTreeMap::new();
    let Some(authority) = rendered.get("authority") else {
        return out;
    };
    let me = str_at(rendered, "local-router").unwrap_or("");
    if let Value::Mapping(m) = authority {
        for (k, v) in m {
            let Some(k) = k.as_str() else { continue };
            if !matches!(k, "service" | "service-policy" | "router") {
                out.insert(Part::Setting(k.to_owned()), v.clone());
            }
        }
    }
    let named = |key: &str| {
        seq_at(authority, key)
            .iter()
            .filter_map(|v| Some((str_at(v, "name")?.to_owned(), v.clone())))
            .collect::<Vec<_>>()
    };
    for (n, v) in named("service") {
        out.insert(Part::Service(n), v);
    }
    for (n, v) in named("service-policy") {
        out.insert(Part::Policy(n), v);
    }
    for (n, v) in named("router") {
        let part = if n == me {
            Part::OwnRouter
        } else {
            Part::Peer(n)
        };
        out.insert(part, v);
    }
    out
}

fn diff_parts(before: &BTreeMap<Part, Value>, after: &BTreeMap<Part, Value>) -> Vec<Change> {
    let mut out = Vec::new();
    for (part, v) in after {
        match before.get(part) {
            None => out.push(Change {
                part: part.clone(),
                what: ChangeKind::Added,
            }),
            Some(old) if old != v => out.push(Change {
                part: part.clone(),
                what: ChangeKind::Changed,
            }),
            Some(_) => {}
        }
    }
    for part in before.keys().filter(|p| !after.contains_key(p)) {
        out.push(Change {
            part: part.clone(),
            what: ChangeKind::Removed,
        });
    }
    out.sort_by(|a, b| a.part.cmp(&b.part));
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Three routers: a and b peer, c is alone with its own service; enhanced mode.
    pub(crate) const DOC: &str = r#"
authority:
  name: acme
  enhanced-security-key-management: true
  trusted-ca-certificate: /var/lib/svrd/root.pem
  service:
    - {name: site-a, tenant: blue, prefix: [10.1.0.0/24], router: router-a}
    - {name: site-b, tenant: blue, prefix: [10.2.0.0/24], router: router-b, service-policy: gold}
    - {name: site-c, tenant: red, prefix: [10.3.0.0/24], router: router-c}
  service-policy:
    - {name: gold, best-effort: false}
    - {name: unused}
  router:
    - name: router-a
      peering-common-name: router-a.acme.svr
      peer: [{router: router-b}]
      node:
        - name: node-1
          core-map: {workers: [{lcore: 1}]}
          pki: {certificate-chain: /var/lib/svrd/chain.pem, private-key: /var/lib/svrd/key.pem}
          device-interface:
            - {name: lan, role: lan, vdev: net_null0, address: [10.1.0.1/24]}
            - {name: wan, role: wan, vdev: net_null1, address: [10.9.0.1/24]}
          route: [{prefix: 10.7.0.0/24, next-hop: 10.1.0.9, interface: lan}]
    - name: router-b
      peering-common-name: router-b.acme.svr
      location: site B
      peer: [{router: router-a}]
      node:
        - name: node-1
          eal: {memory-mb: 512}
          core-map: {workers: [{lcore: 2}]}
          pki: {certificate-chain: /var/lib/svrd/chain.pem, private-key: /var/lib/svrd/key.pem}
          device-interface:
            - {name: lan, role: lan, vdev: net_null0, address: [10.2.0.1/24]}
            - {name: wan, role: wan, vdev: net_null1, address: [10.9.0.2/24]}
    - name: router-c
      peering-common-name: router-c.acme.svr
      node:
        - name: node-1
          core-map: {workers: [{lcore: 1}]}
          pki: {certificate-chain: /var/lib/svrd/chain.pem, private-key: /var/lib/svrd/key.pem}
          device-interface:
            - {name: wan, role: wan, vdev: net_null1, address: [10.9.0.3/24]}
"#;

    #[test]
    fn valid_document_lists_routers_and_names() {
        let d = Document::parse(DOC).unwrap();
        let names: Vec<&str> = d.routers().keys().map(String::as_str).collect();
        assert_eq!(names, ["router-a", "router-b", "router-c"]);
        assert_eq!(
            d.routers()["router-b"].peering_common_name.as_deref(),
            Some("router-b.acme.svr")
        );
        assert_eq!(d.routers()["router-b"].nodes, ["node-1"]);
    }

    #[test]
    fn errors_are_svrd_check_errors_with_field_paths() {
        let bad = DOC.replace("address: [10.9.0.2/24]", "address: [10.9.0.2/33]");
        let e = Document::parse(&bad).unwrap_err();
        let DocumentError::Config { error, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(
            error.path(),
            Some("authority.router[1].node[0].device-interface[1].address[0]")
        );
        // The same message as svrd --check gives for the same authority.
        let svrd_view = format!("local-router: router-a\n{bad}");
        assert_eq!(**error, Config::parse(&svrd_view).unwrap_err());
        assert!(e.to_string().starts_with(&error.to_string()), "{e}");

        let unknown = DOC.replace("location: site B", "locaton: site B");
        assert_eq!(
            Document::parse(&unknown).unwrap_err().to_string(),
            "authority.router[1]: unknown field \"locaton\" (checked as router router-a, node node-1)"
        );
        // A rule that depends on the local node names it: pki is required on each node.
        let no_pki = DOC.replacen(
            "          pki: {certificate-chain: /var/lib/svrd/chain.pem, private-key: /var/lib/svrd/key.pem}\n",
            "",
            3,
        );
        let e = Document::parse(&no_pki).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("authority.router[0].node[0].pki: required on the local node"),
            "{e}"
        );
        let e = Document::parse("authority: [").unwrap_err();
        assert!(e.to_string().starts_with("<config>:2:1: YAML error"), "{e}");
        assert!(Document::parse("# nothing\n")
            .unwrap_err()
            .to_string()
            .contains("empty"));
        let e = Document::parse("authority: {name: x}\n").unwrap_err();
        assert_eq!(e.to_string(), "authority.router: required field is missing");
    }

    #[test]
    fn local_keys_are_refused() {
        let e = Document::parse(&format!("local-router: router-a\n{DOC}")).unwrap_err();
        assert_eq!(
            e,
            DocumentError::LocalKey {
                key: "local-router"
            }
        );
    }

    #[test]
    fn render_gives_a_router_its_part_only() {
        let d = Document::parse(DOC).unwrap();
        let a: Value = serde_norway::from_str(d.render("router-a").unwrap()).unwrap();
        assert_eq!(str_at(&a, "local-router"), Some("router-a"));
        let auth = &a["authority"];
        let names = |k: &str| -> Vec<String> {
            seq_at(auth, k)
                .iter()
                .filter_map(|v| str_at(v, "name").map(str::to_owned))
                .collect()
        };
        assert_eq!(names("service"), ["site-a", "site-b"]);
        assert_eq!(names("service-policy"), ["gold"]);
        assert_eq!(names("router"), ["router-a", "router-b"]);
        assert_eq!(
            str_at(auth, "trusted-ca-certificate"),
            Some("/var/lib/svrd/root.pem")
        );
        // Own entry verbatim (its routes stay); the peer's local settings are gone.
        assert!(auth["router"][0]["node"][0].get("route").is_some());
        let b = &auth["router"][1];
        assert!(b.get("location").is_none());
        let node = &b["node"][0];
        assert!(node.get("eal").is_none() && node.get("pki").is_none());
        assert_eq!(seq_at(node, "device-interface").len(), 1, "WAN only");
        assert_eq!(str_at(&node["device-interface"][0], "name"), Some("wan"));
        // A router alone gets its own service only.
        let c: Value = serde_norway::from_str(d.render("router-c").unwrap()).unwrap();
        assert_eq!(seq_at(&c["authority"], "service").len(), 1);
        assert_eq!(seq_at(&c["authority"], "router").len(), 1);
        assert!(d.render("router-x").is_none());
        // The rendered part is an svrd configuration that passes svrd's check.
        let typed = Config::parse(d.render("router-a").unwrap()).unwrap();
        assert_eq!(typed.local().0.name, "router-a");
        assert_eq!(typed.services_via_peers().len(), 1);
    }

    #[test]
    fn diff_names_what_changed_for_whom() {
        let d1 = Document::parse(DOC).unwrap();
        let all_new = d1.diff(None);
        assert_eq!(all_new.len(), 3);
        assert!(all_new.iter().all(|c| c.kind == RouterChangeKind::Added));
        assert!(d1.diff(Some(&d1)).is_empty());

        // site-b's prefix changes: a (peer of b) and b see it, c does not.
        let d2 = Document::parse(&DOC.replace("10.2.0.0/24", "10.2.0.0/16")).unwrap();
        let changes = d2.diff(Some(&d1));
        let changed = Change {
            part: Part::Service("site-b".into()),
            what: ChangeKind::Changed,
        };
        assert_eq!(
            changes,
            [
                RouterChange {
                    router: "router-a".into(),
                    kind: RouterChangeKind::Changed(vec![changed.clone()]),
                },
                RouterChange {
                    router: "router-b".into(),
                    kind: RouterChangeKind::Changed(vec![changed]),
                },
            ]
        );
        assert_eq!(changes[0].to_string(), "router-a: service site-b changed");

        // b's local EAL setting concerns b only; the unused policy concerns nobody.
        let d3 = Document::parse(
            &DOC.replace("memory-mb: 512", "memory-mb: 1024")
                .replace("{name: unused}", "{name: unused, best-effort: false}"),
        )
        .unwrap();
        let changes = d3.diff(Some(&d1));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].to_string(), "router-b: own router entry changed");

        // b's WAN address is a waypoint: its peer a sees it too.
        let d4 = Document::parse(&DOC.replace("10.9.0.2/24", "10.9.0.20/24")).unwrap();
        let who: Vec<String> = d4.diff(Some(&d1)).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            who,
            [
                "router-a: peer router-b changed",
                "router-b: own router entry changed"
            ]
        );

        // c removed, and a setting changed for all who remain.
        let start = DOC.find("    - name: router-c").unwrap();
        let without_c = DOC[..start]
            .replace(
                "    - {name: site-c, tenant: red, prefix: [10.3.0.0/24], router: router-c}\n",
                "",
            )
            .replace("name: acme", "name: acme2");
        let d5 = Document::parse(&without_c).unwrap();
        let who: Vec<String> = d5.diff(Some(&d1)).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            who,
            [
                "router-a: authority setting name changed",
                "router-b: authority setting name changed",
                "router-c: removed from the authority",
            ]
        );
    }

    #[test]
    fn a_big_authority_parses_renders_and_diffs() {
        let text = svr_config::generated_authority(2_000);
        let start = std::time::Instant::now();
        let d = Document::parse(&text).unwrap();
        let diff = d.diff(None);
        // Speed is BENCHMARKS.md §10's (no timed tests); the full check per node this
        // replaced took hours here.
        eprintln!("2,000 routers parsed and diffed in {:?}", start.elapsed());
        assert_eq!(d.routers().len(), 2_000);
        assert_eq!(diff.len(), 2_000);
        let r7: Value = serde_norway::from_str(d.render("r7").unwrap()).unwrap();
        let names: Vec<&str> = seq_at(&r7["authority"], "router")
            .iter()
            .filter_map(|r| str_at(r, "name"))
            .collect();
        assert_eq!(names, ["r6", "r7"]);
        assert_eq!(seq_at(&r7["authority"], "service").len(), 2);
    }

    #[test]
    fn per_node_errors_name_the_field_and_the_node() {
        let text = svr_config::generated_authority(40);
        // A rule of the local node: r33's node has no pki.
        let no_pki = text.replacen(
            "          pki: {certificate-chain: /c.pem, private-key: /k.pem}\n",
            "",
            34,
        );
        let no_pki = no_pki.replacen(
            "          device-interface:\n",
            "          pki: {certificate-chain: /c.pem, private-key: /k.pem}\n          device-interface:\n",
            33,
        );
        let e = Document::parse(&no_pki).unwrap_err();
        assert_eq!(
            e.to_string(),
            "authority.router[33].node[0].pki: required on the local node when \
             authority.enhanced-security-key-management is true (checked as router r33, node node-1)"
        );
        // A rule of every node: reported as the first node checked, as before.
        let bad = text.replace("172.16.30.1/24", "172.16.30.1/33");
        let e = Document::parse(&bad).unwrap_err();
        let DocumentError::Config { error, router, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(
            error.path(),
            Some("authority.router[30].node[0].device-interface[0].address[0]")
        );
        assert_eq!(router.as_deref(), Some("r0"));
        // The same error as svrd --check gives as that router.
        let svrd_view = format!("local-router: r30\n{bad}");
        assert_eq!(**error, Config::parse(&svrd_view).unwrap_err());
        // Test-key mode: r21 has a key, its peer r20 none.
        let test_keys = text
            .replace("enhanced-security-key-management: true", "enhanced-security-key-management: false")
            .replace("  trusted-ca-certificate: /var/lib/svrd/root.pem\n", "")
            .replace(
                "    - name: r21\n",
                "    - name: r21\n      svr-test-metadata-key: {rekey-index: 1, encryption-key: a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf, hmac-key: 101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f}\n",
            );
        let mut lines: Vec<&str> = test_keys.lines().collect();
        // Only r20 and r21 peer; the others stand alone (no key needed).
        lines.retain(|l| {
            !l.starts_with("      peer: ")
                || l.contains("router: r20}")
                || l.contains("router: r21}")
        });
        let test_keys = lines.join("\n");
        let e = Document::parse(&test_keys).unwrap_err();
        assert_eq!(
            e.to_string(),
            "authority.router[20].svr-test-metadata-key: required when authority.enhanced-security-key-management \
             is false and the local router has peers (checked as router r20, node node-1)"
        );
    }

    #[test]
    fn debug_never_prints_the_document() {
        let d = Document::parse(DOC).unwrap();
        assert!(!format!("{d:?}").contains("10.1.0.0/24"));
    }
}
