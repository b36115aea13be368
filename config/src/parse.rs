//! The schema: one function per YAML mapping, each reading its fields, applying defaults
//! and checking its rules. Errors go to the [`Cx`]; a function returns `Some` only if its
//! part of the document was valid.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_norway::Value;
use zeroize::Zeroizing;

use crate::model::*;
use crate::net;
use crate::policy::{self, AdjacencyCx};
use crate::walk::{
    boolean, choice, each, fields, formatted, line, list, nonempty_list, quote, raw, string, uint,
    Cx, Path, Unique,
};
use crate::ConfigError;

/// Default `mempool-mbufs`: 2^13 - 1, the size DPDK's mempool is most efficient at.
pub(crate) const DEFAULT_MEMPOOL_MBUFS: u32 = 8191;
/// Highest lcore id: DPDK's default build has `RTE_MAX_LCORE` = 128.
pub(crate) const MAX_LCORE: u64 = 127;
/// Highest CPU number accepted (`CPU_SETSIZE` - 1).
pub(crate) const MAX_CPU: u64 = 1023;

pub(crate) fn config(cx: &mut Cx, root: &Value) -> Option<Config> {
    let at = Path::root();
    let f = fields(cx, &at, root, &["local-router", "local-node", "authority"])?;
    let local_router = f.req(cx, "local-router", line);
    let local_node = f.opt(cx, "local-node", None, |cx, p, v| line(cx, p, v).map(Some));

    // References into the authority are resolved against the raw document, so that an
    // error elsewhere in a router does not hide (or fake) a bad `local-router`.
    let routers = raw::get(root, "authority").and_then(|a| raw::seq_of(a, "router"));
    let local_node = match (&local_router, routers, local_node) {
        (Some(name), Some(routers), Some(node)) => resolve_local(
            cx,
            &f.path_of("local-router"),
            &f.path_of("local-node"),
            name,
            node,
            routers,
        ),
        (_, _, node) => node.flatten(),
    };
    // The rules that depend on which router and node are local (test keys, PKI) need both
    // names; they are skipped when either is unknown (that is reported above).
    let local = match (&local_router, &local_node) {
        (Some(r), Some(n)) => Local::Given(r.as_str(), n.as_str()),
        _ => Local::Unknown,
    };
    let authority = f.req(cx, "authority", |cx, p, v| authority(cx, p, v, local));

    Some(Config {
        local_router: local_router?,
        local_node: local_node?,
        authority: authority?,
    })
}

/// The shared part of [`config`] for a [`crate::SharedCheck`]: everything but `local-router`,
/// `local-node` (ignored if present) and the rules that depend on them, which `cx` (made by
/// [`Cx::deferring`]) keeps as [`Hook`]s. `Some` if that part is valid.
pub(crate) fn shared(cx: &mut Cx, root: &Value) -> Option<Authority> {
    let f = fields(
        cx,
        &Path::root(),
        root,
        &["local-router", "local-node", "authority"],
    )?;
    f.req(cx, "authority", |cx, p, v| {
        authority(cx, p, v, Local::Deferred)
    })
}

/// Which router and node the rules that depend on them check as.
#[derive(Debug, Clone, Copy)]
enum Local<'a> {
    /// Not known (an error elsewhere says why): those rules are skipped.
    Unknown,
    /// This router and node.
    Given(&'a str, &'a str),
    /// Any (a shared check): the rules are deferred to [`Hook`]s.
    Deferred,
}

/// Whether a node is the local node (see [`Local`]).
#[derive(Debug, Clone, Copy)]
enum LocalNode<'a> {
    /// Not the local router's node.
    No,
    /// A node of the local router; the local node is called this.
    Named(&'a str),
    /// A shared check: the node of the router with this raw name.
    Deferred(Option<&'a str>),
}

/// A rule that depends on the local router and node, deferred by a shared check.
#[derive(Debug)]
pub(crate) enum Hook {
    /// `pki` would be reported missing at `at` on the node `node` of router `router` (raw
    /// names), were that node the local node.
    Pki {
        router: Option<String>,
        node: Option<String>,
        at: Path,
    },
    /// The test-key rule (enhanced security key management is off), over these routers.
    TestKeys(KnownRouters),
}

/// The errors of deferred rule `hook` when router `router` and node `node` are local.
pub(crate) fn run_hook(cx: &mut Cx, hook: &Hook, router: &str, node: &str) {
    match hook {
        Hook::Pki {
            router: Some(r),
            node: Some(n),
            at,
        } if r == router && n == node => pki_missing_rule(cx, at),
        Hook::Pki { .. } => {}
        Hook::TestKeys(known) => {
            test_keys(cx, Some(false), Some(router), known);
        }
    }
}

fn pki_missing_rule(cx: &mut Cx, at: &Path) {
    cx.rule(
        at,
        "required on the local node when authority.enhanced-security-key-management is true",
    );
}

/// Checks `local-router` and `local-node` against the routers' names and picks the default
/// node. Returns the local node name (`None` if it cannot be known).
fn resolve_local(
    cx: &mut Cx,
    router_at: &Path,
    node_at: &Path,
    router: &str,
    node: Option<String>,
    routers: &[Value],
) -> Option<String> {
    let names: Option<Vec<&str>> = routers.iter().map(|r| raw::str_of(r, "name")).collect();
    let names = names?;
    let Some(i) = names.iter().position(|n| *n == router) else {
        cx.push(
            router_at,
            ConfigError::UnknownReference {
                path: router_at.show(),
                value: quote(router),
                what: "a router in authority.router",
            },
        );
        return None;
    };
    let nodes = raw::seq_of(&routers[i], "node")?;
    let node_names: Option<Vec<&str>> = nodes.iter().map(|n| raw::str_of(n, "name")).collect();
    let node_names = node_names?;
    match node {
        Some(node) if node_names.contains(&node.as_str()) => Some(node),
        Some(node) => {
            cx.push(
                node_at,
                ConfigError::UnknownReference {
                    path: node_at.show(),
                    value: quote(&node),
                    what: "a node of the local router",
                },
            );
            None
        }
        None => match node_names.as_slice() {
            [only] => Some(only.to_string()),
            [] => None, // reported at the router's `node` list
            several => {
                cx.rule(
                    node_at,
                    format!(
                        "required because router {} has {} nodes ({})",
                        quote(router),
                        several.len(),
                        several.join(", ")
                    ),
                );
                None
            }
        },
    }
}

/// What the routers' rules need to know about the rest of the authority.
struct RouterCx<'a> {
    /// `enhanced-security-key-management`, if valid.
    esk: Option<bool>,
    /// The local router and node.
    local: Local<'a>,
    /// The raw router entries, if `router` is a list.
    routers: Option<&'a [Value]>,
    /// Does every entry have a string name (else references to routers cannot be checked)?
    all_named: bool,
    /// The index of the first raw router entry with each string name.
    first: HashMap<&'a str, usize>,
}

impl<'a> RouterCx<'a> {
    fn new(esk: Option<bool>, local: Local<'a>, authority: &'a Value) -> Self {
        let routers = raw::seq_of(authority, "router");
        let mut first = HashMap::new();
        let mut all_named = routers.is_some();
        for (i, r) in routers.unwrap_or_default().iter().enumerate() {
            match raw::str_of(r, "name") {
                Some(name) => {
                    first.entry(name).or_insert(i);
                }
                None => all_named = false,
            }
        }
        RouterCx {
            esk,
            local,
            routers,
            all_named,
            first,
        }
    }

    /// The first raw router entry called `name`.
    fn raw_router(&self, name: &str) -> Option<&'a Value> {
        self.routers?.get(*self.first.get(name)?)
    }

    /// Reports at `at` (and returns false) if `name` is known not to be a router.
    fn check_router_ref(&self, cx: &mut Cx, at: &Path, name: &str) -> bool {
        match self.all_named {
            true if !self.first.contains_key(name) => {
                cx.push(
                    at,
                    ConfigError::UnknownReference {
                        path: at.show(),
                        value: quote(name),
                        what: "a router in authority.router",
                    },
                );
                false
            }
            _ => true,
        }
    }

    /// Does router `name` have a WAN interface on any node? `None` if that cannot be told
    /// from the raw document (a node without a readable interface list, an interface
    /// whose `role` is missing or invalid, ...).
    fn has_wan(&self, name: &str) -> Option<bool> {
        let router = self.raw_router(name)?;
        let mut unknown = false;
        for node in raw::seq_of(router, "node")? {
            let Some(ifaces) = raw::seq_of(node, "device-interface") else {
                unknown = true;
                continue;
            };
            for iface in ifaces {
                match raw::str_of(iface, "role") {
                    Some("wan") => return Some(true),
                    Some("lan") => {}
                    _ => unknown = true,
                }
            }
        }
        (!unknown).then_some(false)
    }
}

/// What the authority-wide test-key rule needs to know about one router.
#[derive(Debug)]
struct KnownRouter {
    /// The raw name.
    name: Option<String>,
    /// Where `svr-test-metadata-key` is, or would be.
    key_at: Path,
    /// Is `svr-test-metadata-key` given (non-null)?
    has_key: bool,
    /// The raw `peer[].router` names.
    peers: Vec<String>,
    /// The raw `peer[].router` names whose entry has its own `svr-test-metadata-key`.
    peer_keys: Vec<String>,
}

/// The routers as the test-key rule knows them, in document order.
#[derive(Debug, Default)]
pub(crate) struct KnownRouters {
    list: Vec<KnownRouter>,
    /// The index in `list` of the first router with each name.
    first: HashMap<String, usize>,
}

impl KnownRouters {
    fn push(&mut self, k: KnownRouter) {
        if let Some(name) = &k.name {
            self.first.entry(name.clone()).or_insert(self.list.len());
        }
        self.list.push(k);
    }

    /// The first router called `name`.
    fn find(&self, name: &str) -> Option<&KnownRouter> {
        self.list.get(*self.first.get(name)?)
    }
}

fn authority(cx: &mut Cx, at: &Path, v: &Value, local: Local) -> Option<Authority> {
    let f = fields(
        cx,
        at,
        v,
        &[
            "name",
            "enhanced-security-key-management",
            "security-key-management",
            "trusted-ca-certificate",
            "certificate-revocation-list",
            "service",
            "service-policy",
            "router",
        ],
    )?;
    let name = f.req(cx, "name", line);
    let esk = f.opt(cx, "enhanced-security-key-management", false, boolean);
    let skm = f.opt(
        cx,
        "security-key-management",
        SecurityKeyManagement::default(),
        security_key_management,
    );
    let ca = f.opt(cx, "trusted-ca-certificate", None, |cx, p, v| {
        file_path(cx, p, v).map(Some)
    });
    let ca_missing = esk == Some(true) && !f.has("trusted-ca-certificate");
    if ca_missing {
        cx.rule(
            &f.path_of("trusted-ca-certificate"),
            "required when authority.enhanced-security-key-management is true",
        );
    }
    let crl = f.opt(cx, "certificate-revocation-list", None, |cx, p, v| {
        file_path(cx, p, v).map(Some)
    });
    let crl_unused = esk == Some(false) && f.has("certificate-revocation-list");
    if crl_unused {
        cx.rule(
            &f.path_of("certificate-revocation-list"),
            "only used when authority.enhanced-security-key-management is true",
        );
    }
    let rcx = RouterCx::new(esk, local, v);
    let policy_names = policy::raw_policy_names(v);
    let services = f.opt(cx, "service", Vec::new(), |cx, p, v| {
        let items = list(cx, p, v)?;
        let mut names = Unique::new("service name");
        let mut prefixes = Unique::new("service prefix");
        each(cx, p, items, |cx, p, v| {
            service(
                cx,
                p,
                v,
                &rcx,
                &mut names,
                &mut prefixes,
                policy_names.as_deref(),
            )
        })
    });
    let policies = f.opt(cx, "service-policy", Vec::new(), policy::service_policies);
    let mut known = KnownRouters::default();
    let routers = f.req(cx, "router", |cx, p, v| {
        let items = nonempty_list(cx, p, v, "router")?;
        let mut names = Unique::new("router name");
        let mut pcns = Unique::new("peering-common-name");
        each(cx, p, items, |cx, p, v| {
            router(cx, p, v, &rcx, &mut names, &mut pcns, &mut known)
        })
    });
    let keys_ok = match local {
        Local::Given(router, _) => test_keys(cx, esk, Some(router), &known),
        Local::Unknown => true,
        Local::Deferred => {
            if esk == Some(false) {
                cx.defer(Hook::TestKeys(known));
            }
            true
        }
    };
    if ca_missing || crl_unused || !keys_ok {
        return None;
    }
    Some(Authority {
        name: name?,
        enhanced_security_key_management: esk?,
        security_key_management: skm?,
        trusted_ca_certificate: ca?,
        certificate_revocation_list: crl?,
        service: services?,
        service_policy: policies?,
        router: routers?,
    })
}

/// Without enhanced security key management, SVR between the local router and its peers
/// runs on static test keys: the local router and each of its peers need
/// `svr-test-metadata-key`. Returns false if one is missing (reported at its place).
fn test_keys(cx: &mut Cx, esk: Option<bool>, local: Option<&str>, known: &KnownRouters) -> bool {
    let (Some(false), Some(local)) = (esk, local) else {
        return true;
    };
    let Some(me) = known.find(local) else {
        return true;
    };
    if me.peers.is_empty() {
        return true;
    }
    let mut ok = true;
    // Keys per peer pair: a peer entry's own key serves that peer, the router's the rest.
    if !me.has_key && !me.peers.iter().all(|p| me.peer_keys.contains(p)) {
        cx.rule(
            &me.key_at,
            "required when authority.enhanced-security-key-management is false and the local router has peers",
        );
        ok = false;
    }
    let mut done: Vec<&str> = vec![local];
    for peer in &me.peers {
        if done.contains(&peer.as_str()) {
            continue;
        }
        done.push(peer);
        if let Some(k) = known.find(peer) {
            if !k.has_key && !k.peer_keys.iter().any(|p| p == local) {
                cx.rule(
                    &k.key_at,
                    "required when authority.enhanced-security-key-management is false and the local router lists this router as a peer",
                );
                ok = false;
            }
        }
    }
    ok
}

/// A path to a PEM file, kept as written.
fn file_path(cx: &mut Cx, at: &Path, v: &Value) -> Option<PathBuf> {
    formatted(cx, at, v, net::is_file_path, "a file path").map(PathBuf::from)
}

fn service(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    rcx: &RouterCx,
    names: &mut Unique,
    prefixes: &mut Unique,
    policy_names: Option<&[&str]>,
) -> Option<Service> {
    let f = fields(
        cx,
        at,
        v,
        &[
            "name",
            "tenant",
            "prefix",
            "router",
            "application-name",
            "service-policy",
        ],
    )?;
    let name = f.req(cx, "name", |cx, p, v| {
        names.name(
            cx,
            p,
            v,
            net::is_name,
            "a name of 1-63 characters [A-Za-z0-9_-]",
        )
    });
    let tenant = f.req(cx, "tenant", |cx, p, v| {
        formatted(
            cx,
            p,
            v,
            net::is_tenant,
            "a tenant name of 1-63 characters [A-Za-z0-9_.-]",
        )
    });
    let prefix = f.req(cx, "prefix", |cx, p, v| {
        let items = nonempty_list(cx, p, v, "prefix")?;
        each(cx, p, items, |cx, p, v| network_prefix(cx, p, v, prefixes))
    });
    let router = f.req(cx, "router", |cx, p, v| {
        let r = string(cx, p, v)?;
        rcx.check_router_ref(cx, p, &r).then_some(r)
    });
    let app = f.opt(cx, "application-name", None, |cx, p, v| {
        line(cx, p, v).map(Some)
    });
    let service_policy = f.opt(cx, "service-policy", None, |cx, p, v| {
        policy::policy_ref(cx, p, v, policy_names).map(Some)
    });
    Some(Service {
        name: name?,
        tenant: tenant?,
        prefix: prefix?,
        router: router?,
        application_name: app?,
        service_policy: service_policy?,
    })
}

/// `addr/len` with the host bits zero, unique in `seen`.
fn network_prefix(cx: &mut Cx, at: &Path, v: &Value, seen: &mut Unique) -> Option<(IpAddr, u8)> {
    let s = string(cx, at, v)?;
    let Some((addr, len)) = net::parse_prefix(&s) else {
        cx.bad_format(at, &s, "an IPv4 or IPv6 prefix");
        return None;
    };
    let netw = net::network(addr, len);
    if netw != addr {
        cx.rule(
            at,
            format!(
                "{} has host bits set; the network is {netw}/{len}",
                quote(&s)
            ),
        );
        return None;
    }
    let shown = format!("{addr}/{len}");
    seen.check(cx, at, shown.clone(), &shown)
        .then_some((addr, len))
}

fn security_key_management(cx: &mut Cx, at: &Path, v: &Value) -> Option<SecurityKeyManagement> {
    let f = fields(
        cx,
        at,
        v,
        &[
            "key-exchange-algorithm",
            "payload-key-rekey-interval",
            "peer-key-rekey-interval",
            "peer-key-retransmit-interval",
            "peer-key-timeout",
            "test-time-scale",
        ],
    )?;
    let d = SecurityKeyManagement::default();
    let kex = f.opt(
        cx,
        "key-exchange-algorithm",
        d.key_exchange_algorithm,
        |cx, p, v| {
            choice(
                cx,
                p,
                v,
                &[
                    ("x25519", KeyExchangeAlgorithm::X25519),
                    ("dh-modp-4096", KeyExchangeAlgorithm::DhModp4096),
                ],
                "x25519, dh-modp-4096",
            )
        },
    );
    let payload = f.opt(
        cx,
        "payload-key-rekey-interval",
        d.payload_key_rekey_interval,
        rekey,
    );
    let peer = f.opt(
        cx,
        "peer-key-rekey-interval",
        d.peer_key_rekey_interval,
        rekey,
    );
    let secs = |min, max| {
        move |cx: &mut Cx, p: &Path, v: &Value| uint(cx, p, v, min, max).map(Duration::from_secs)
    };
    let retransmit = f.opt(
        cx,
        "peer-key-retransmit-interval",
        d.peer_key_retransmit_interval,
        secs(5, 3600),
    );
    let timeout = f.opt(cx, "peer-key-timeout", d.peer_key_timeout, secs(60, 86400));
    // 3600 fits u32.
    let scale = f.opt(cx, "test-time-scale", d.test_time_scale, |cx, p, v| {
        uint(cx, p, v, 1, 3600).map(|n| n as u32)
    });
    if let (Some(r), Some(t)) = (retransmit, timeout) {
        if t < r {
            cx.rule(
                &f.path_of("peer-key-timeout"),
                format!(
                    "{} must be at least peer-key-retransmit-interval ({})",
                    t.as_secs(),
                    r.as_secs()
                ),
            );
            return None;
        }
    }
    Some(SecurityKeyManagement {
        key_exchange_algorithm: kex?,
        payload_key_rekey_interval: payload?,
        peer_key_rekey_interval: peer?,
        peer_key_retransmit_interval: retransmit?,
        peer_key_timeout: timeout?,
        test_time_scale: scale?,
    })
}

/// Hours 1-720, or `never`.
fn rekey(cx: &mut Cx, at: &Path, v: &Value) -> Option<RekeyInterval> {
    match v {
        Value::String(s) if s == "never" => Some(RekeyInterval::Never),
        Value::String(s) => {
            cx.push(
                at,
                ConfigError::NotOneOf {
                    path: at.show(),
                    value: quote(s),
                    allowed: "1-720 (hours), never",
                },
            );
            None
        }
        // 720 fits u16.
        Value::Number(_) => uint(cx, at, v, 1, 720).map(|h| RekeyInterval::Hours(h as u16)),
        other => {
            cx.push(
                at,
                ConfigError::WrongType {
                    path: at.show(),
                    expected: "a number of hours (1-720) or \"never\"",
                    found: crate::walk::describe(other),
                },
            );
            None
        }
    }
}

fn router(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    rcx: &RouterCx,
    names: &mut Unique,
    pcns: &mut Unique,
    known: &mut KnownRouters,
) -> Option<Router> {
    let esk = rcx.esk;
    let f = fields(
        cx,
        at,
        v,
        &[
            "name",
            "peering-common-name",
            "location",
            "description",
            "inter-node-security",
            "bfd",
            "svr-test-metadata-key",
            "peer",
            "node",
        ],
    )?;
    known.push(KnownRouter {
        name: raw::str_of(v, "name").map(str::to_owned),
        key_at: f.path_of("svr-test-metadata-key"),
        has_key: f.has("svr-test-metadata-key"),
        peers: raw::seq_of(v, "peer")
            .unwrap_or_default()
            .iter()
            .filter_map(|p| raw::str_of(p, "router"))
            .map(str::to_owned)
            .collect(),
        peer_keys: raw::seq_of(v, "peer")
            .unwrap_or_default()
            .iter()
            .filter(|p| raw::get(p, "svr-test-metadata-key").is_some_and(|k| !k.is_null()))
            .filter_map(|p| raw::str_of(p, "router"))
            .map(str::to_owned)
            .collect(),
    });
    let name = f.req(cx, "name", |cx, p, v| {
        names.name(
            cx,
            p,
            v,
            net::is_name,
            "a name of 1-63 characters [A-Za-z0-9_-]",
        )
    });
    let pcn = f.opt(cx, "peering-common-name", None, |cx, p, v| {
        let n = formatted(
            cx,
            p,
            v,
            net::is_dns_name,
            "a DNS name (labels of [A-Za-z0-9-])",
        )?;
        pcns.check(cx, p, n.to_ascii_lowercase(), &quote(&n))
            .then_some(Some(n))
    });
    if esk == Some(true) && !f.has("peering-common-name") {
        cx.rule(
            &f.path_of("peering-common-name"),
            "required when authority.enhanced-security-key-management is true",
        );
    }
    let opt_line = |cx: &mut Cx, p: &Path, v: &Value| line(cx, p, v).map(Some);
    let location = f.opt(cx, "location", None, opt_line);
    let description = f.opt(cx, "description", None, |cx, p, v| {
        string(cx, p, v).map(Some)
    });
    let ins = f.opt(cx, "inter-node-security", None, opt_line);
    let bfd = f.opt(cx, "bfd", Bfd::default(), |cx, p, v| {
        read_bfd(cx, p, v, Bfd::default())
    });
    let key_banned = esk == Some(true) && f.has("svr-test-metadata-key");
    if key_banned {
        cx.rule(
            &f.path_of("svr-test-metadata-key"),
            "not allowed when authority.enhanced-security-key-management is true",
        );
    }
    let key = f.opt(cx, "svr-test-metadata-key", None, |cx, p, v| {
        test_metadata_key(cx, p, v).map(Some)
    });
    let raw_name = raw::str_of(v, "name");
    let peers = f.opt(cx, "peer", Vec::new(), |cx, p, v| {
        let items = list(cx, p, v)?;
        let mut seen = Unique::new("peer router");
        each(cx, p, items, |cx, p, v| {
            peer(cx, p, v, rcx, raw_name, bfd, &mut seen)
        })
    });
    let router_name = name.as_deref();
    let local_node = match rcx.local {
        Local::Given(r, n) if raw_name == Some(r) => LocalNode::Named(n),
        Local::Deferred => LocalNode::Deferred(raw_name),
        _ => LocalNode::No,
    };
    let acx = AdjacencyCx {
        peers: match raw::get(v, "peer") {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(Value::Sequence(ps)) => ps.iter().map(|p| raw::str_of(p, "router")).collect(),
            Some(_) => None,
        },
        routers: rcx.routers,
        first: &rcx.first,
    };
    let nodes = f.req(cx, "node", |cx, p, v| {
        let items = nonempty_list(cx, p, v, "node")?;
        let mut names = Unique::new("node name");
        each(cx, p, items, |cx, p, v| {
            node(cx, p, v, router_name, esk, local_node, &mut names, &acx)
        })
    });
    if (esk == Some(true) && !f.has("peering-common-name")) || key_banned {
        return None;
    }
    Some(Router {
        name: name?,
        peering_common_name: pcn?,
        location: location?,
        description: description?,
        inter_node_security: ins?,
        bfd: bfd?,
        svr_test_metadata_key: key?,
        peer: peers?,
        node: nodes?,
    })
}

/// `svr-test-metadata-key`. The key bytes never reach an error message.
fn test_metadata_key(cx: &mut Cx, at: &Path, v: &Value) -> Option<TestMetadataKey> {
    let f = fields(cx, at, v, &["rekey-index", "encryption-key", "hmac-key"])?;
    // u32::MAX fits u32.
    let index = f.req(cx, "rekey-index", |cx, p, v| {
        uint(cx, p, v, 1, u64::from(u32::MAX)).map(|n| n as u32)
    });
    let enc = f.req(cx, "encryption-key", |cx, p, v| {
        hex_key::<32>(cx, p, v, "a string of 64 hex digits", "AES-256")
    });
    let hmac = f.req(cx, "hmac-key", |cx, p, v| {
        hex_key::<48>(cx, p, v, "a string of 96 hex digits", "HMAC-SHA384")
    });
    let (index, enc, hmac) = (index?, enc?, hmac?);
    Some(TestMetadataKey {
        rekey_index: index,
        encryption_key: *enc,
        hmac_key: *hmac,
    })
}

/// `N` bytes as `2 * N` hex digits. Messages name the length or the offset of a bad
/// character, never the value.
fn hex_key<const N: usize>(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    expected: &'static str,
    cipher: &str,
) -> Option<Zeroizing<[u8; N]>> {
    let Value::String(s) = v else {
        let found = match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
            Value::Tagged(_) => "a tagged value",
        };
        cx.push(
            at,
            ConfigError::WrongType {
                path: at.show(),
                expected,
                found: found.into(),
            },
        );
        return None;
    };
    let mut key = Zeroizing::new([0u8; N]);
    let digits = 2 * N;
    let secret = "the value is secret and not shown";
    match net::parse_hex_key(s, &mut key) {
        Ok(()) if key.iter().all(|&b| b == 0) => {
            cx.rule(at, "must not be all zero bytes");
            None
        }
        Ok(()) => Some(key),
        Err(net::HexError::Length(n)) => {
            cx.rule(
                at,
                format!("must be {digits} hex digits ({N} bytes, {cipher}), found {n} characters ({secret})"),
            );
            None
        }
        Err(net::HexError::NotHex(i)) => {
            cx.rule(
                at,
                format!("must be {digits} hex digits ({N} bytes, {cipher}), found a character that is not a hex digit at offset {i} ({secret})"),
            );
            None
        }
    }
}

fn peer(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    rcx: &RouterCx,
    own_name: Option<&str>,
    router_bfd: Option<Bfd>,
    seen: &mut Unique,
) -> Option<Peer> {
    let f = fields(
        cx,
        at,
        v,
        &["router", "bfd", "source-nat", "svr-test-metadata-key"],
    )?;
    let router = f.req(cx, "router", |cx, p, v| {
        let r = string(cx, p, v)?;
        if own_name == Some(r.as_str()) {
            cx.rule(
                p,
                format!("{} is this router itself; a router does not peer with itself", quote(&r)),
            );
            return None;
        }
        if !rcx.check_router_ref(cx, p, &r) || !seen.check(cx, p, r.clone(), &quote(&r)) {
            return None;
        }
        if rcx.has_wan(&r) == Some(false) {
            cx.rule(
                p,
                format!("router {} has no device-interface with role wan, so no waypoint to reach it on", quote(&r)),
            );
            return None;
        }
        Some(r)
    });
    // A peer's bfd keys default to the router's; if that has errors, the peer's are checked
    // against the built-in defaults and the router is rejected anyway.
    let base = router_bfd.unwrap_or_default();
    let bfd = f.opt(cx, "bfd", base, |cx, p, v| read_bfd(cx, p, v, base));
    let source_nat = f.opt(cx, "source-nat", false, boolean);
    let key_banned = rcx.esk == Some(true) && f.has("svr-test-metadata-key");
    if key_banned {
        cx.rule(
            &f.path_of("svr-test-metadata-key"),
            "not allowed when authority.enhanced-security-key-management is true",
        );
    }
    let key = f.opt(cx, "svr-test-metadata-key", None, |cx, p, v| {
        test_metadata_key(cx, p, v).map(Some)
    });
    router_bfd?;
    if key_banned {
        return None;
    }
    Some(Peer {
        router: router?,
        bfd: bfd?,
        source_nat: source_nat?,
        svr_test_metadata_key: key?,
    })
}

/// A `bfd` mapping; keys not given take their value from `d`.
fn read_bfd(cx: &mut Cx, at: &Path, v: &Value, d: Bfd) -> Option<Bfd> {
    let f = fields(
        cx,
        at,
        v,
        &[
            "desired-tx-interval",
            "required-min-rx-interval",
            "multiplier",
            "link-test-interval",
            "link-test-length",
            "required-min-echo-interval",
            "hold-down-time",
            "dynamic-damping",
            "maximum-hold-down-time",
        ],
    )?;
    let ms =
        |cx: &mut Cx, p: &Path, v: &Value| uint(cx, p, v, 50, 60_000).map(Duration::from_millis);
    let tx = f.opt(cx, "desired-tx-interval", d.desired_tx_interval, ms);
    let rx = f.opt(
        cx,
        "required-min-rx-interval",
        d.required_min_rx_interval,
        ms,
    );
    // 255 fits u8.
    let mult = f.opt(cx, "multiplier", d.multiplier, |cx, p, v| {
        uint(cx, p, v, 2, 255).map(|m| m as u8)
    });
    let secs = |min, max| {
        move |cx: &mut Cx, p: &Path, v: &Value| uint(cx, p, v, min, max).map(Duration::from_secs)
    };
    let lt_interval = f.opt(
        cx,
        "link-test-interval",
        d.link_test_interval,
        secs(1, 86_400),
    );
    // 255 fits u8.
    let lt_length = f.opt(cx, "link-test-length", d.link_test_length, |cx, p, v| {
        uint(cx, p, v, 0, 255).map(|n| n as u8)
    });
    let echo = f.opt(
        cx,
        "required-min-echo-interval",
        d.required_min_echo_interval,
        ms,
    );
    let hold = f.opt(cx, "hold-down-time", d.hold_down_time, secs(1, 300));
    let damping = f.opt(cx, "dynamic-damping", d.dynamic_damping, |cx, p, v| {
        choice(
            cx,
            p,
            v,
            &[("enabled", true), ("disabled", false)],
            "enabled, disabled",
        )
    });
    let max_hold = f.opt(
        cx,
        "maximum-hold-down-time",
        d.maximum_hold_down_time,
        secs(2, 86_400),
    );
    if let (Some(h), Some(m)) = (hold, max_hold) {
        if m <= h {
            let at = if f.has("maximum-hold-down-time") {
                f.path_of("maximum-hold-down-time")
            } else {
                f.path_of("hold-down-time")
            };
            cx.rule(
                &at,
                format!(
                    "maximum-hold-down-time ({} s) must be greater than hold-down-time ({} s)",
                    m.as_secs(),
                    h.as_secs()
                ),
            );
            return None;
        }
    }
    Some(Bfd {
        desired_tx_interval: tx?,
        required_min_rx_interval: rx?,
        multiplier: mult?,
        link_test_interval: lt_interval?,
        link_test_length: lt_length?,
        required_min_echo_interval: echo?,
        hold_down_time: hold?,
        dynamic_damping: damping?,
        maximum_hold_down_time: max_hold?,
    })
}

/// What routes and neighbours need to know about an interface, gathered even when the
/// interface has errors of its own (a `None` part means "unknown, skip the check").
struct KnownIface {
    name: Option<String>,
    addrs: Option<Vec<InterfaceAddress>>,
}

/// `local_node` says whether this node may be the local node.
// One more than clippy's limit: `acx` (the router's peers, for adjacencies) was added
// beside the router facts without reshaping the signature the other rules share.
#[allow(clippy::too_many_arguments)]
fn node(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    router_name: Option<&str>,
    esk: Option<bool>,
    local_node: LocalNode,
    names: &mut Unique,
    acx: &AdjacencyCx,
) -> Option<Node> {
    let f = fields(
        cx,
        at,
        v,
        &[
            "name",
            "eal",
            "core-map",
            "mempool-mbufs",
            "device-interface",
            "route",
            "neighbor",
            "pki",
            "svr",
            "management",
        ],
    )?;
    let name = f.req(cx, "name", |cx, p, v| {
        names.name(
            cx,
            p,
            v,
            net::is_name,
            "a name of 1-63 characters [A-Za-z0-9_-]",
        )
    });
    let eal = match f.raw("eal") {
        Some((p, v)) if !v.is_null() => eal(cx, &p, v, router_name),
        _ => eal(
            cx,
            &f.path_of("eal"),
            &Value::Mapping(Default::default()),
            router_name,
        ),
    };
    let core_map = f.req(cx, "core-map", core_map);
    // 1048575 fits u32.
    let mbufs = f.opt(cx, "mempool-mbufs", DEFAULT_MEMPOOL_MBUFS, |cx, p, v| {
        uint(cx, p, v, 1024, 1_048_575).map(|n| n as u32)
    });

    let mut known: Option<Vec<KnownIface>> = None;
    let ifaces = f.req(cx, "device-interface", |cx, p, v| {
        let items = nonempty_list(cx, p, v, "device-interface")?;
        let mut st = IfaceState {
            names: Unique::new("device-interface name"),
            devices: Unique::new("device"),
            addrs: Unique::new("interface address"),
            known: Vec::new(),
            acx,
        };
        let out = each(cx, p, items, |cx, p, v| device_interface(cx, p, v, &mut st));
        known = Some(st.known);
        out
    });
    let known = known.as_deref();

    let routes = f.opt(cx, "route", Vec::new(), |cx, p, v| {
        let items = list(cx, p, v)?;
        let mut prefixes = Unique::new("route prefix");
        each(cx, p, items, |cx, p, v| {
            route(cx, p, v, known, &mut prefixes)
        })
    });
    let neighbors = f.opt(cx, "neighbor", Vec::new(), |cx, p, v| {
        let items = list(cx, p, v)?;
        let mut addrs = Unique::new("neighbor address");
        each(cx, p, items, |cx, p, v| {
            neighbor(cx, p, v, known, &mut addrs)
        })
    });
    let pki = f.opt(cx, "pki", None, |cx, p, v| pki(cx, p, v).map(Some));
    let no_pki = esk == Some(true) && !f.has("pki");
    let pki_missing = no_pki
        && match local_node {
            LocalNode::No => false,
            LocalNode::Named(n) => raw::str_of(v, "name") == Some(n),
            LocalNode::Deferred(router) => {
                cx.defer(Hook::Pki {
                    router: router.map(str::to_owned),
                    node: raw::str_of(v, "name").map(str::to_owned),
                    at: f.path_of("pki"),
                });
                false
            }
        };
    if pki_missing {
        pki_missing_rule(cx, &f.path_of("pki"));
    }
    let svr = f.opt(cx, "svr", SvrSettings::default(), svr_settings);
    let management = f.opt(cx, "management", Management::default(), management);
    if pki_missing {
        return None;
    }
    Some(Node {
        name: name?,
        eal: eal?,
        core_map: core_map?,
        mempool_mbufs: mbufs?,
        device_interface: ifaces?,
        route: routes?,
        neighbor: neighbors?,
        pki: pki?,
        svr: svr?,
        management: management?,
    })
}

fn management(cx: &mut Cx, at: &Path, v: &Value) -> Option<Management> {
    let f = fields(cx, at, v, &["control-socket", "metrics-listen"])?;
    let socket = f.opt(cx, "control-socket", None, |cx, p, v| {
        // sun_path holds 107 bytes and a NUL.
        let ok = |s: &str| net::is_abs_path(s) && s.len() <= 107 && !s.ends_with('/');
        formatted(cx, p, v, ok, "an absolute path of at most 107 bytes")
            .map(|s| Some(PathBuf::from(s)))
    });
    let listen = f.opt(cx, "metrics-listen", None, |cx, p, v| {
        let addr: std::net::SocketAddr = formatted(
            cx,
            p,
            v,
            |s| {
                s.parse::<std::net::SocketAddr>()
                    .is_ok_and(|a| a.port() != 0)
            },
            "an address and port (127.0.0.1:9464, [::1]:9464), port not 0",
        )?
        .parse()
        .ok()?;
        Some(Some(addr))
    });
    Some(Management {
        control_socket: socket?,
        metrics_listen: listen?,
    })
}

fn pki(cx: &mut Cx, at: &Path, v: &Value) -> Option<Pki> {
    let f = fields(cx, at, v, &["certificate-chain", "private-key"])?;
    let chain = f.req(cx, "certificate-chain", file_path);
    let key = f.req(cx, "private-key", file_path);
    Some(Pki {
        certificate_chain: chain?,
        private_key: key?,
    })
}

fn svr_settings(cx: &mut Cx, at: &Path, v: &Value) -> Option<SvrSettings> {
    let f = fields(
        cx,
        at,
        v,
        &[
            "max-sessions",
            "wayport-range",
            "session-timeouts",
            "enable-metadata-rate",
        ],
    )?;
    let d = SvrSettings::default();
    // 16777216 and 100000 fit u32.
    let max = f.opt(cx, "max-sessions", d.max_sessions, |cx, p, v| {
        uint(cx, p, v, 1024, 16_777_216).map(|n| n as u32)
    });
    let range = f.opt(cx, "wayport-range", d.wayport_range, wayport_range);
    let timeouts = f.opt(cx, "session-timeouts", d.session_timeouts, session_timeouts);
    let rate = f.opt(
        cx,
        "enable-metadata-rate",
        d.enable_metadata_rate,
        |cx, p, v| uint(cx, p, v, 1, 100_000).map(|n| n as u32),
    );
    Some(SvrSettings {
        max_sessions: max?,
        wayport_range: range?,
        session_timeouts: timeouts?,
        enable_metadata_rate: rate?,
    })
}

fn wayport_range(cx: &mut Cx, at: &Path, v: &Value) -> Option<(u16, u16)> {
    let f = fields(cx, at, v, &["start", "end"])?;
    let (d_start, d_end) = SvrSettings::default().wayport_range;
    // 65535 fits u16.
    let port = |cx: &mut Cx, p: &Path, v: &Value| uint(cx, p, v, 1025, 65_535).map(|n| n as u16);
    let start = f.opt(cx, "start", d_start, port);
    let end = f.opt(cx, "end", d_end, port);
    let start = start?;
    if start % 2 != 0 {
        cx.rule(
            &f.path_of("start"),
            format!("{start} must be even (the ingress allocates an even source and an odd destination wayport)"),
        );
        return None;
    }
    let end = end?;
    if end <= start {
        cx.rule(
            &f.path_of("end"),
            format!(
                "{end} must be at least start + 1 ({})",
                u32::from(start) + 1
            ),
        );
        return None;
    }
    Some((start, end))
}

fn session_timeouts(cx: &mut Cx, at: &Path, v: &Value) -> Option<SessionTimeouts> {
    let f = fields(
        cx,
        at,
        v,
        &["tcp", "tcp-half-open", "tcp-guard", "udp", "icmp"],
    )?;
    let d = SessionTimeouts::default();
    let secs = |min, max| {
        move |cx: &mut Cx, p: &Path, v: &Value| uint(cx, p, v, min, max).map(Duration::from_secs)
    };
    let tcp = f.opt(cx, "tcp", d.tcp, secs(10, 86_400));
    let half = f.opt(cx, "tcp-half-open", d.tcp_half_open, secs(1, 3600));
    let guard = f.opt(cx, "tcp-guard", d.tcp_guard, secs(1, 600));
    let udp = f.opt(cx, "udp", d.udp, secs(1, 86_400));
    let icmp = f.opt(cx, "icmp", d.icmp, secs(1, 3600));
    Some(SessionTimeouts {
        tcp: tcp?,
        tcp_half_open: half?,
        tcp_guard: guard?,
        udp: udp?,
        icmp: icmp?,
    })
}

fn eal(cx: &mut Cx, at: &Path, v: &Value, router_name: Option<&str>) -> Option<Eal> {
    let f = fields(
        cx,
        at,
        v,
        &[
            "memory-mb",
            "hugepages",
            "huge-dir",
            "file-prefix",
            "pci-allow",
            "log-level",
            "telemetry",
            "pdump",
        ],
    )?;
    // 65536 fits u32.
    let memory = f.opt(cx, "memory-mb", 256, |cx, p, v| {
        uint(cx, p, v, 64, 65_536).map(|n| n as u32)
    });
    let hugepages = f.opt(cx, "hugepages", true, boolean);
    let huge_dir = f.opt(cx, "huge-dir", None, |cx, p, v| {
        formatted(cx, p, v, net::is_abs_path, "an absolute path").map(Some)
    });
    if hugepages == Some(false) && f.has("huge-dir") {
        cx.rule(
            &f.path_of("huge-dir"),
            "has no meaning when hugepages is false",
        );
    }
    let prefix = match f.raw("file-prefix") {
        Some((p, v)) if !v.is_null() => formatted(
            cx,
            &p,
            v,
            net::is_name,
            "a file prefix of 1-63 characters [A-Za-z0-9_-]",
        ),
        _ => router_name.map(str::to_string),
    };
    let pci_allow = f.opt(cx, "pci-allow", Vec::new(), |cx, p, v| {
        let items = list(cx, p, v)?;
        let mut seen = Unique::new("PCI address");
        each(cx, p, items, |cx, p, v| {
            let a = formatted(cx, p, v, net::is_pci_address, "a PCI address DDDD:BB:DD.F")?;
            seen.check(cx, p, a.to_ascii_lowercase(), &quote(&a))
                .then_some(a)
        })
    });
    let log_level = f.opt(cx, "log-level", LogLevel::Notice, |cx, p, v| {
        choice(
            cx,
            p,
            v,
            &[
                ("emerg", LogLevel::Emerg),
                ("alert", LogLevel::Alert),
                ("crit", LogLevel::Crit),
                ("error", LogLevel::Error),
                ("warning", LogLevel::Warning),
                ("notice", LogLevel::Notice),
                ("info", LogLevel::Info),
                ("debug", LogLevel::Debug),
            ],
            "emerg, alert, crit, error, warning, notice, info, debug",
        )
    });
    let telemetry = f.opt(cx, "telemetry", true, boolean);
    // Capture tools are secondary processes that map svrd's hugepage files: without
    // hugepages there is nothing to share, so the default follows `hugepages`.
    let pdump = f.opt(cx, "pdump", hugepages.unwrap_or(true), boolean);
    if hugepages == Some(false) && pdump == Some(true) {
        cx.rule(
            &f.path_of("pdump"),
            "needs hugepages: true (dpdk-dumpcap, a DPDK secondary process, maps svrd's hugepage memory; --no-huge memory cannot be shared)",
        );
        return None;
    }
    if hugepages == Some(false) && f.has("huge-dir") {
        return None;
    }
    Some(Eal {
        memory_mb: memory?,
        hugepages: hugepages?,
        huge_dir: huge_dir?,
        file_prefix: prefix?,
        pci_allow: pci_allow?,
        log_level: log_level?,
        telemetry: telemetry?,
        pdump: pdump?,
    })
}

fn core_map(cx: &mut Cx, at: &Path, v: &Value) -> Option<CoreMap> {
    let f = fields(
        cx,
        at,
        v,
        &["main-lcore", "slowpath-lcore", "idle-backoff", "workers"],
    )?;
    let lcore = |cx: &mut Cx, p: &Path, v: &Value| uint(cx, p, v, 0, MAX_LCORE).map(|n| n as u32);
    let main = f.opt(cx, "main-lcore", 0, lcore);
    let slow = match f.raw("slowpath-lcore") {
        Some((p, v)) if !v.is_null() => lcore(cx, &p, v),
        _ => main,
    };
    let backoff = f.opt(cx, "idle-backoff", IdleBackoff::Adaptive, |cx, p, v| {
        choice(
            cx,
            p,
            v,
            &[
                ("busy", IdleBackoff::Busy),
                ("adaptive", IdleBackoff::Adaptive),
            ],
            "busy, adaptive",
        )
    });
    let workers = f.req(cx, "workers", |cx, p, v| {
        let items = nonempty_list(cx, p, v, "worker")?;
        let mut lcores = Unique::new("worker lcore");
        each(cx, p, items, |cx, p, v| {
            let w = fields(cx, p, v, &["lcore", "cpu"])?;
            let l = w.req(cx, "lcore", lcore);
            let cpu = w.opt(cx, "cpu", None, |cx, p, v| {
                uint(cx, p, v, 0, MAX_CPU).map(|n| Some(n as u32))
            });
            let l = l?;
            let lp = w.path_of("lcore");
            if Some(l) == main {
                cx.rule(
                    &lp,
                    format!("lcore {l} is the main-lcore; a worker needs its own lcore"),
                );
                return None;
            }
            if Some(l) == slow {
                cx.rule(
                    &lp,
                    format!("lcore {l} is the slowpath-lcore; a worker needs its own lcore"),
                );
                return None;
            }
            if !lcores.check(cx, &lp, l.to_string(), &l.to_string()) {
                return None;
            }
            Some(Worker {
                lcore: l,
                cpu: cpu?,
            })
        })
    });
    Some(CoreMap {
        main_lcore: main?,
        slowpath_lcore: slow?,
        idle_backoff: backoff?,
        workers: workers?,
    })
}

struct IfaceState<'a, 'b> {
    names: Unique,
    devices: Unique,
    addrs: Unique,
    known: Vec<KnownIface>,
    acx: &'b AdjacencyCx<'a>,
}

fn device_interface(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    st: &mut IfaceState,
) -> Option<DeviceInterface> {
    let Some(f) = fields(
        cx,
        at,
        v,
        &[
            "name",
            "role",
            "vdev",
            "pci-address",
            "mtu",
            "address",
            "vector",
            "adjacency",
        ],
    ) else {
        st.known.push(KnownIface {
            name: None,
            addrs: None,
        });
        return None;
    };
    let name = f.req(cx, "name", |cx, p, v| {
        st.names.name(
            cx,
            p,
            v,
            net::is_interface_name,
            "an interface name of 1-32 characters [a-z0-9-]",
        )
    });
    let role = f.req(cx, "role", |cx, p, v| {
        choice(
            cx,
            p,
            v,
            &[("lan", Role::Lan), ("wan", Role::Wan)],
            "lan, wan",
        )
    });
    let vdev = f.opt(cx, "vdev", None, |cx, p, v| {
        let s = formatted(
            cx,
            p,
            v,
            net::is_vdev,
            "a vdev string net_<driver><n>[,key=value...]",
        )?;
        let dev = net::vdev_name(&s).unwrap_or_default().to_string();
        st.devices
            .check(cx, p, dev.clone(), &quote(&dev))
            .then_some(Some(s))
    });
    let pci = f.opt(cx, "pci-address", None, |cx, p, v| {
        let s = formatted(cx, p, v, net::is_pci_address, "a PCI address DDDD:BB:DD.F")?;
        st.devices
            .check(cx, p, s.to_ascii_lowercase(), &quote(&s))
            .then_some(Some(s))
    });
    let device = match (f.has("vdev"), f.has("pci-address")) {
        (true, true) => {
            let (v, p) = (f.path_of("vdev"), f.path_of("pci-address"));
            let (later, other) = if p.is_after(&v) {
                (p, "vdev")
            } else {
                (v, "pci-address")
            };
            cx.rule(
                &later,
                format!("cannot be given together with {other}; give exactly one"),
            );
            None
        }
        (false, false) => {
            cx.rule(&f.end(), "needs exactly one of vdev or pci-address");
            None
        }
        (true, false) => vdev.flatten().map(Device::Vdev),
        (false, true) => pci.flatten().map(Device::Pci),
    };
    // 9000 fits u16.
    let mtu = f.opt(cx, "mtu", 1500, |cx, p, v| {
        uint(cx, p, v, 576, 9000).map(|n| n as u16)
    });
    let addrs = f.req(cx, "address", |cx, p, v| {
        let items = nonempty_list(cx, p, v, "address")?;
        each(cx, p, items, |cx, p, v| {
            interface_address(cx, p, v, &mut st.addrs)
        })
    });
    st.known.push(KnownIface {
        name: name.clone(),
        addrs: addrs.clone(),
    });
    let families = addrs.as_ref().map(|a| {
        (
            a.iter().any(|a| a.addr.is_ipv4()),
            a.iter().any(|a| a.addr.is_ipv6()),
        )
    });
    let wan_only = |cx: &mut Cx, key: &str| {
        if role == Some(Role::Lan) && f.has(key) {
            cx.rule(&f.path_of(key), "only allowed on a role wan interface");
            false
        } else {
            true
        }
    };
    let vector_ok = wan_only(cx, "vector");
    let adjacency_ok = wan_only(cx, "adjacency");
    let vector = f.opt(cx, "vector", None, |cx, p, v| {
        policy::vector_label(cx, p, v).map(Some)
    });
    let adjacency = f.opt(cx, "adjacency", Vec::new(), |cx, p, v| {
        policy::adjacencies(cx, p, v, st.acx, families)
    });
    if !(vector_ok && adjacency_ok) {
        return None;
    }
    if let (Some(m), Some(a)) = (mtu, &addrs) {
        if m < 1280 && a.iter().any(|a| a.addr.is_ipv6()) {
            cx.rule(
                &f.path_of("mtu"),
                format!("{m} is below the minimum 1280 for an interface with an IPv6 address"),
            );
            return None;
        }
    }
    Some(DeviceInterface {
        name: name?,
        role: role?,
        device: device?,
        mtu: mtu?,
        address: addrs?,
        vector: vector?,
        adjacency: adjacency?,
    })
}

fn interface_address(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    seen: &mut Unique,
) -> Option<InterfaceAddress> {
    let s = string(cx, at, v)?;
    let Some((addr, prefix_len)) = net::parse_prefix(&s) else {
        cx.bad_format(at, &s, "an IPv4 or IPv6 prefix");
        return None;
    };
    if !net::is_unicast(addr) || addr.is_loopback() {
        cx.rule(
            at,
            format!(
                "{} is not a unicast address usable on an interface",
                quote(&s)
            ),
        );
        return None;
    }
    if net::is_ipv4_network_or_broadcast(addr, prefix_len) {
        cx.rule(
            at,
            format!(
                "{} is the network or broadcast address of its prefix, not a host address",
                quote(&s)
            ),
        );
        return None;
    }
    if !seen.check(cx, at, addr.to_string(), &addr.to_string()) {
        return None;
    }
    Some(InterfaceAddress { addr, prefix_len })
}

/// Looks up the interface a route or neighbour names. `Err(())` if the reference is known
/// to be bad (reported), `Ok(None)` if it cannot be checked, `Ok(Some(addrs))` if found
/// (addresses `None` if they had errors).
fn find_iface<'k>(
    cx: &mut Cx,
    at: &Path,
    name: &str,
    known: Option<&'k [KnownIface]>,
) -> Result<Option<Option<&'k [InterfaceAddress]>>, ()> {
    let Some(known) = known else {
        return Ok(None);
    };
    if let Some(k) = known.iter().find(|k| k.name.as_deref() == Some(name)) {
        return Ok(Some(k.addrs.as_deref()));
    }
    if known.iter().any(|k| k.name.is_none()) {
        return Ok(None); // an interface without a valid name: it might be this one
    }
    cx.push(
        at,
        ConfigError::UnknownReference {
            path: at.show(),
            value: quote(name),
            what: "a device-interface of this node",
        },
    );
    Err(())
}

/// Is `ip` a usable on-link neighbour on an interface with addresses `addrs`? Reports at
/// `at` and returns false if not.
fn check_on_link(
    cx: &mut Cx,
    at: &Path,
    ip: IpAddr,
    iface: &str,
    addrs: &[InterfaceAddress],
) -> bool {
    if !net::is_unicast(ip) || ip.is_loopback() {
        cx.rule(at, format!("{ip} is not a unicast address"));
        return false;
    }
    if addrs.iter().any(|a| a.addr == ip) {
        cx.rule(
            at,
            format!(
                "{ip} is an address of device-interface {} itself",
                quote(iface)
            ),
        );
        return false;
    }
    if net::is_ipv6_link_local(ip) || addrs.iter().any(|a| a.contains(ip)) {
        return true;
    }
    let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    cx.rule(
        at,
        format!(
            "{ip} is not on-link on device-interface {} (addresses {})",
            quote(iface),
            list.join(", ")
        ),
    );
    false
}

fn ip_addr(cx: &mut Cx, at: &Path, v: &Value) -> Option<IpAddr> {
    let s = string(cx, at, v)?;
    match s.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            cx.bad_format(at, &s, "an IPv4 or IPv6 address");
            None
        }
    }
}

fn route(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    known: Option<&[KnownIface]>,
    prefixes: &mut Unique,
) -> Option<Route> {
    let f = fields(cx, at, v, &["prefix", "next-hop", "interface"])?;
    let prefix = f.req(cx, "prefix", |cx, p, v| network_prefix(cx, p, v, prefixes));
    let next_hop = f.opt(cx, "next-hop", None, |cx, p, v| ip_addr(cx, p, v).map(Some));
    let iface = f.req(cx, "interface", string);

    let nh_at = f.path_of("next-hop");
    if let (Some((paddr, plen)), Some(Some(nh))) = (prefix, next_hop) {
        if paddr.is_ipv4() != nh.is_ipv4() {
            let fam = |ip: IpAddr| if ip.is_ipv4() { "IPv4" } else { "IPv6" };
            cx.rule(
                &nh_at,
                format!(
                    "{nh} is an {} address but the prefix {paddr}/{plen} is {}",
                    fam(nh),
                    fam(paddr)
                ),
            );
            return None;
        }
    }
    let iface = iface?;
    match find_iface(cx, &f.path_of("interface"), &iface, known) {
        Err(()) => return None,
        Ok(Some(Some(addrs))) => {
            if let Some(Some(nh)) = next_hop {
                if !check_on_link(cx, &nh_at, nh, &iface, addrs) {
                    return None;
                }
            }
        }
        Ok(_) => {}
    }
    let (prefix_addr, prefix_len) = prefix?;
    Some(Route {
        prefix_addr,
        prefix_len,
        next_hop: next_hop?,
        interface: iface,
    })
}

fn neighbor(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    known: Option<&[KnownIface]>,
    seen: &mut Unique,
) -> Option<Neighbor> {
    let f = fields(cx, at, v, &["address", "mac", "interface"])?;
    let address = f.req(cx, "address", |cx, p, v| {
        let ip = ip_addr(cx, p, v)?;
        seen.check(cx, p, ip.to_string(), &ip.to_string())
            .then_some(ip)
    });
    let mac = f.req(cx, "mac", |cx, p, v| {
        let s = string(cx, p, v)?;
        let Some(mac) = net::parse_mac(&s) else {
            cx.bad_format(p, &s, "a MAC address like 02:00:00:00:09:02");
            return None;
        };
        if mac[0] & 1 == 1 || mac == [0; 6] {
            cx.rule(p, format!("{} is not a unicast MAC address", quote(&s)));
            return None;
        }
        Some(mac)
    });
    let iface = f.req(cx, "interface", string)?;
    match find_iface(cx, &f.path_of("interface"), &iface, known) {
        Err(()) => return None,
        Ok(Some(Some(addrs))) => {
            if let Some(ip) = address {
                if !check_on_link(cx, &f.path_of("address"), ip, &iface, addrs) {
                    return None;
                }
            }
        }
        Ok(_) => {}
    }
    Some(Neighbor {
        address: address?,
        mac: mac?,
        interface: iface,
    })
}
