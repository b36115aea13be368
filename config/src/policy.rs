//! Multipath configuration (issue 9, docs/multipath.md): `authority.service-policy[]`,
//! the `vector` label and `adjacency` list of WAN interfaces, and the peer paths they
//! define. The `bfd` link-test and hold-down keys are read with the other `bfd` keys.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use serde_norway::Value;

use crate::net;
use crate::walk::{
    boolean, choice, each, fields, list, quote, raw, string, uint, Cx, Path, Unique,
};
use crate::ConfigError;

/// Most `vector` entries in one service policy (the data path's fixed table).
pub const MAX_POLICY_VECTORS: usize = 16;

/// One `authority.service-policy[]` entry: SSR's SLA and path-choice settings for the
/// services that name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServicePolicy {
    /// `name`, unique in the authority.
    pub name: String,
    /// `path-quality-filter`: enforce the four limits below (default `false`).
    pub path_quality_filter: bool,
    /// `max-latency`: one-way (RTT/2), default 250 ms.
    pub max_latency: Duration,
    /// `max-jitter`: default 100 ms.
    pub max_jitter: Duration,
    /// `max-loss`: default 0.5 %.
    pub max_loss: LossPercent,
    /// `min-mos`: `None` = `disabled` (the default).
    pub min_mos: Option<Mos>,
    /// `best-effort`: with no path meeting the SLA, use any path in service (default
    /// `true`); `false` drops the session (counted).
    pub best_effort: bool,
    /// `best-path`.
    pub best_path: BestPath,
    /// `lb-strategy`.
    pub lb_strategy: LbStrategy,
    /// `session-resiliency`.
    pub session_resiliency: SessionResiliency,
    /// `vector`: priorities of path labels, in file order.
    pub vector: Vec<VectorPreference>,
}

impl ServicePolicy {
    /// A policy with SSR's defaults and no vectors.
    pub fn with_defaults(name: &str) -> ServicePolicy {
        ServicePolicy {
            name: name.to_string(),
            path_quality_filter: false,
            max_latency: Duration::from_millis(250),
            max_jitter: Duration::from_millis(100),
            max_loss: LossPercent::from_thousandths(500),
            min_mos: None,
            best_effort: true,
            best_path: BestPath::Vector,
            lb_strategy: LbStrategy::Hunt,
            session_resiliency: SessionResiliency::None,
            vector: Vec::new(),
        }
    }
}

/// A loss percentage 0-100 with three decimals, kept as thousandths of a percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LossPercent(u32);

impl LossPercent {
    /// `n` thousandths of a percent (0.5 % = 500).
    pub const fn from_thousandths(n: u32) -> LossPercent {
        LossPercent(n)
    }

    /// Thousandths of a percent.
    pub fn thousandths(self) -> u32 {
        self.0
    }

    /// The percentage.
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 1000.0
    }
}

/// A MOS threshold 1.00-5.00, kept as hundredths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mos(u16);

impl Mos {
    /// `n` hundredths (3.6 = 360).
    pub const fn from_hundredths(n: u16) -> Mos {
        Mos(n)
    }

    /// Hundredths.
    pub fn hundredths(self) -> u16 {
        self.0
    }

    /// The MOS value.
    pub fn value(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

// `best-path`, `lb-strategy` and `session-resiliency` are the path selector's own types: the
// configuration names them, `svr-linkq` gives them meaning.
pub use svr_linkq::{BestPath, LbStrategy, SessionResiliency};

/// One `service-policy[].vector[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VectorPreference {
    /// `name`: the label, as put on interfaces and adjacencies.
    pub name: String,
    /// `priority`: a number, or `never`.
    pub priority: VectorPriority,
}

/// `vector[].priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VectorPriority {
    /// 1-999999, added to the adjacency cost (lower is preferred).
    Priority(u32),
    /// `never`: the policy never uses paths with this label.
    Never,
}

/// `device-interface[].adjacency[]`: one peer waypoint this WAN interface reaches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Adjacency {
    /// `peer`: a router in this router's `peer` list.
    pub peer: String,
    /// `address`: one of that router's waypoints.
    pub address: IpAddr,
    /// `cost`: 0-999999, default 0.
    pub cost: u32,
    /// `vector`: the path's label; `None` takes the interface's.
    pub vector: Option<String>,
}

/// A peer path of the local node, from [`Config::peer_paths`](crate::Config::peer_paths).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerPath {
    /// Our WAN interface.
    pub interface: String,
    /// Our waypoint (an address of that interface).
    pub local: IpAddr,
    /// The peer's waypoint.
    pub remote: IpAddr,
    /// The adjacency's `cost` (0 by default).
    pub cost: u32,
    /// The path's `vector` label: the adjacency's, else the interface's.
    pub vector: Option<String>,
}

/// `authority.service-policy`.
pub(crate) fn service_policies(cx: &mut Cx, at: &Path, v: &Value) -> Option<Vec<ServicePolicy>> {
    let items = list(cx, at, v)?;
    let mut names = Unique::new("service-policy name");
    each(cx, at, items, |cx, p, v| {
        service_policy(cx, p, v, &mut names)
    })
}

fn service_policy(cx: &mut Cx, at: &Path, v: &Value, names: &mut Unique) -> Option<ServicePolicy> {
    let f = fields(
        cx,
        at,
        v,
        &[
            "name",
            "path-quality-filter",
            "max-latency",
            "max-jitter",
            "max-loss",
            "min-mos",
            "best-effort",
            "best-path",
            "lb-strategy",
            "session-resiliency",
            "vector",
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
    let d = ServicePolicy::with_defaults("");
    let pqf = f.opt(cx, "path-quality-filter", d.path_quality_filter, boolean);
    let ms = |cx: &mut Cx, p: &Path, v: &Value| {
        uint(cx, p, v, 0, u64::from(u32::MAX)).map(Duration::from_millis)
    };
    let max_latency = f.opt(cx, "max-latency", d.max_latency, ms);
    let max_jitter = f.opt(cx, "max-jitter", d.max_jitter, ms);
    let max_loss = f.opt(cx, "max-loss", d.max_loss, |cx, p, v| {
        // 100_000 fits u32.
        decimal(cx, p, v, 3, 0, 100_000, "0-100, at most 3 decimals").map(|n| LossPercent(n as u32))
    });
    let min_mos = f.opt(cx, "min-mos", d.min_mos, |cx, p, v| match v {
        Value::String(s) if s == "disabled" => Some(None),
        Value::String(s) => {
            cx.push(
                p,
                ConfigError::NotOneOf {
                    path: p.show(),
                    value: quote(s),
                    allowed: "1.00-5.00, disabled",
                },
            );
            None
        }
        // 500 fits u16.
        _ => decimal(
            cx,
            p,
            v,
            2,
            100,
            500,
            "1.00-5.00 or disabled, at most 2 decimals",
        )
        .map(|n| Some(Mos(n as u16))),
    });
    let best_effort = f.opt(cx, "best-effort", d.best_effort, boolean);
    let best_path = f.opt(cx, "best-path", d.best_path, |cx, p, v| {
        choice(
            cx,
            p,
            v,
            &[
                ("vector", BestPath::Vector),
                ("average-latency", BestPath::AverageLatency),
                ("mos", BestPath::Mos),
            ],
            "vector, average-latency, mos",
        )
    });
    let lb = f.opt(cx, "lb-strategy", d.lb_strategy, |cx, p, v| {
        choice(
            cx,
            p,
            v,
            &[
                ("hunt", LbStrategy::Hunt),
                ("proportional", LbStrategy::Proportional),
            ],
            "hunt, proportional",
        )
    });
    let resiliency = f.opt(
        cx,
        "session-resiliency",
        d.session_resiliency,
        |cx, p, v| {
            choice(
                cx,
                p,
                v,
                &[
                    ("none", SessionResiliency::None),
                    ("failover", SessionResiliency::Failover),
                    ("revertible-failover", SessionResiliency::RevertibleFailover),
                    ("packet-duplication", SessionResiliency::PacketDuplication),
                ],
                "none, failover, revertible-failover, packet-duplication",
            )
        },
    );
    let vector = f.opt(cx, "vector", Vec::new(), |cx, p, v| {
        let items = list(cx, p, v)?;
        if items.len() > MAX_POLICY_VECTORS {
            cx.rule(
                p,
                format!(
                    "{} entries, at most {MAX_POLICY_VECTORS} are allowed",
                    items.len()
                ),
            );
            return None;
        }
        let mut names = Unique::new("vector name");
        each(cx, p, items, |cx, p, v| {
            vector_preference(cx, p, v, &mut names)
        })
    });
    Some(ServicePolicy {
        name: name?,
        path_quality_filter: pqf?,
        max_latency: max_latency?,
        max_jitter: max_jitter?,
        max_loss: max_loss?,
        min_mos: min_mos?,
        best_effort: best_effort?,
        best_path: best_path?,
        lb_strategy: lb?,
        session_resiliency: resiliency?,
        vector: vector?,
    })
}

fn vector_preference(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    names: &mut Unique,
) -> Option<VectorPreference> {
    let f = fields(cx, at, v, &["name", "priority"])?;
    let name = f.req(cx, "name", |cx, p, v| {
        names.name(
            cx,
            p,
            v,
            net::is_name,
            "a vector name of 1-63 characters [A-Za-z0-9_-]",
        )
    });
    let priority = f.req(cx, "priority", |cx, p, v| match v {
        Value::String(s) if s == "never" => Some(VectorPriority::Never),
        Value::String(s) => {
            cx.push(
                p,
                ConfigError::NotOneOf {
                    path: p.show(),
                    value: quote(s),
                    allowed: "1-999999, never",
                },
            );
            None
        }
        // 999999 fits u32.
        _ => uint(cx, p, v, 1, 999_999).map(|n| VectorPriority::Priority(n as u32)),
    });
    Some(VectorPreference {
        name: name?,
        priority: priority?,
    })
}

/// A YAML number with at most `places` decimals, as an integer count of 10^-places,
/// within `min..=max` (in those units).
fn decimal(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    places: i32,
    min: u64,
    max: u64,
    expected: &'static str,
) -> Option<u64> {
    let Value::Number(n) = v else {
        cx.push(
            at,
            ConfigError::WrongType {
                path: at.show(),
                expected: "a number",
                found: crate::walk::describe(v),
            },
        );
        return None;
    };
    let x = n.as_f64().unwrap_or(f64::NAN);
    let scaled = x * 10f64.powi(places);
    let units = scaled.round();
    let in_range = units >= min as f64 && units <= max as f64;
    if !x.is_finite() || (scaled - units).abs() > 1e-6 || !in_range {
        cx.rule(at, format!("{n} is not {expected}"));
        return None;
    }
    // In range, so it fits u64.
    Some(units as u64)
}

/// What an interface's adjacencies need to know about the router: its `peer` names and
/// the raw router list (for the peers' waypoints).
pub(crate) struct AdjacencyCx<'a> {
    /// The raw `peer[].router` names of this router; `None` if unreadable.
    pub(crate) peers: Option<Vec<&'a str>>,
    /// The raw `authority.router` list.
    pub(crate) routers: Option<&'a [Value]>,
    /// The index in `routers` of the first entry with each name.
    pub(crate) first: &'a HashMap<&'a str, usize>,
}

impl AdjacencyCx<'_> {
    /// The waypoints of router `name` as written (`None` if that cannot be told).
    fn waypoints(&self, name: &str) -> Option<Vec<IpAddr>> {
        let router = self.routers?.get(*self.first.get(name)?)?;
        let mut out = Vec::new();
        for node in raw::seq_of(router, "node")? {
            for iface in raw::seq_of(node, "device-interface")? {
                if raw::str_of(iface, "role")? != "wan" {
                    continue;
                }
                for a in raw::seq_of(iface, "address")? {
                    out.push(net::parse_prefix(a.as_str()?)?.0);
                }
            }
        }
        Some(out)
    }
}

/// `device-interface[].adjacency`. `families`: does the interface have IPv4 / IPv6
/// addresses (`None` if unknown).
pub(crate) fn adjacencies(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    acx: &AdjacencyCx,
    families: Option<(bool, bool)>,
) -> Option<Vec<Adjacency>> {
    let items = list(cx, at, v)?;
    let mut seen = Unique::new("adjacency");
    each(cx, at, items, |cx, p, v| {
        adjacency(cx, p, v, acx, families, &mut seen)
    })
}

fn adjacency(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    acx: &AdjacencyCx,
    families: Option<(bool, bool)>,
    seen: &mut Unique,
) -> Option<Adjacency> {
    let f = fields(cx, at, v, &["peer", "address", "cost", "vector"])?;
    let peer = f.req(cx, "peer", |cx, p, v| {
        let s = string(cx, p, v)?;
        match &acx.peers {
            Some(peers) if !peers.contains(&s.as_str()) => {
                cx.push(
                    p,
                    ConfigError::UnknownReference {
                        path: p.show(),
                        value: quote(&s),
                        what: "a router in this router's peer list",
                    },
                );
                None
            }
            _ => Some(s),
        }
    });
    let address = f.req(cx, "address", |cx, p, v| {
        let s = string(cx, p, v)?;
        let Ok(addr) = s.parse::<IpAddr>() else {
            cx.bad_format(p, &s, "an IPv4 or IPv6 address");
            return None;
        };
        if let Some((v4, v6)) = families {
            if (addr.is_ipv4() && !v4) || (addr.is_ipv6() && !v6) {
                let fam = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
                cx.rule(
                    p,
                    format!("{addr} is {fam}, and this interface has no {fam} address"),
                );
                return None;
            }
        }
        if let Some(peer) = &peer {
            if let Some(wps) = acx.waypoints(peer) {
                if !wps.contains(&addr) {
                    cx.rule(
                        p,
                        format!(
                            "{addr} is not a waypoint of router {} (an address of one of its role wan interfaces)",
                            quote(peer)
                        ),
                    );
                    return None;
                }
            }
            let key = format!("{peer} {addr}");
            if !seen.check(cx, p, key, &format!("{} {addr}", quote(peer))) {
                return None;
            }
        }
        Some(addr)
    });
    // 999999 fits u32.
    let cost = f.opt(cx, "cost", 0, |cx, p, v| {
        uint(cx, p, v, 0, 999_999).map(|n| n as u32)
    });
    let vector = f.opt(cx, "vector", None, |cx, p, v| {
        vector_label(cx, p, v).map(Some)
    });
    Some(Adjacency {
        peer: peer?,
        address: address?,
        cost: cost?,
        vector: vector?,
    })
}

/// A `vector` label.
pub(crate) fn vector_label(cx: &mut Cx, at: &Path, v: &Value) -> Option<String> {
    crate::walk::formatted(
        cx,
        at,
        v,
        net::is_name,
        "a vector name of 1-63 characters [A-Za-z0-9_-]",
    )
}

/// `service[].service-policy`: must name a policy of `authority.service-policy` (`names`
/// is `None` when those cannot be read; then the reference is not checked).
pub(crate) fn policy_ref(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    names: Option<&[&str]>,
) -> Option<String> {
    let s = string(cx, at, v)?;
    match names {
        Some(names) if !names.contains(&s.as_str()) => {
            cx.push(
                at,
                ConfigError::UnknownReference {
                    path: at.show(),
                    value: quote(&s),
                    what: "a service-policy in authority.service-policy",
                },
            );
            None
        }
        _ => Some(s),
    }
}

/// The raw names of `authority.service-policy` (`None` if any cannot be read, or the key
/// is not a list); an absent key is an empty list.
pub(crate) fn raw_policy_names(authority: &Value) -> Option<Vec<&str>> {
    match raw::get(authority, "service-policy") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Sequence(items)) => items.iter().map(|p| raw::str_of(p, "name")).collect(),
        Some(_) => None,
    }
}
