//! svrd's DPDK telemetry commands (config `eal.telemetry`), for `dpdk-telemetry.py -f
//! <file-prefix>` and any client of the EAL's telemetry socket:
//!
//! | command | answer |
//! | --- | --- |
//! | `/svr/info` | router, node, versions, pid, uptime, ports, workers |
//! | `/svr/peers` | per peer: name, key role and state, peer-key and payload-key indices; per path: label, BFD state, in service, latency/jitter/loss/MOS, sessions ingress/egress |
//! | `/svr/stats[,PREFIX]` | every counter of the SIGUSR1 report as one flat dict `name → u64` (ports, workers, drops, svr, slowpath); with `PREFIX` only the names that start with it (e.g. `/svr/stats,drop_`) |
//! | `/svr/sessions[,N]` | live sessions, by role and by waypoint pair; with `N` (≤ 32) also the first `N` sessions (UUID, role, service, path, 5-tuples) |
//!
//! The data belongs to the slow-path thread. It publishes a [`Snapshot`] once per second and
//! when a client asks ([`Published`]); the callbacks, on DPDK's telemetry thread, read the
//! latest snapshot. Workers are never touched: their counters are the same relaxed atomics
//! the SIGUSR1 report reads, and `/svr/sessions,N` walks the session table the way the
//! slow-path sweeper does.
//!
//! Names: DPDK telemetry keys allow only `[A-Za-z0-9_/]`, so the report's `rx-packets`
//! is `rx_packets` here. Latency, jitter, loss and MOS are strings (`"0.4"`, `-` before the
//! first link test) because DPDK 22.11 telemetry has no floating-point value.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use dpdk_ffi::{telemetry, TelValue, TelemetryError};
use fastpath::session::{FlowKey, Role};
use fastpath::svr_path::SvrShared;

/// One peer, for `/svr/peers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerState {
    pub name: String,
    /// Key-exchange role (`Initiator`/`Responder`).
    pub role: String,
    pub in_service: bool,
    pub invalid: bool,
    pub bfd_up: bool,
    pub peer_key_index: u64,
    pub payload_key_index: u64,
    pub paths: Vec<PathState>,
}

/// One peer path, for `/svr/peers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathState {
    /// `local->remote` waypoints.
    pub label: String,
    pub bfd_state: String,
    pub in_service: bool,
    pub latency_ms: String,
    pub jitter_ms: String,
    pub loss_pct: String,
    pub mos: String,
    pub sessions_ingress: u32,
    pub sessions_egress: u32,
}

/// What the slow-path thread publishes for the telemetry callbacks.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Incremented by each [`Published::publish`].
    pub generation: u64,
    /// Milliseconds since the slow-path thread started.
    pub uptime_ms: u64,
    /// Every counter of the SIGUSR1 report ([`stats_from_report`]).
    pub stats: Vec<(String, u64)>,
    /// Zero-trust peers (empty in test-key mode).
    pub peers: Vec<PeerState>,
    /// Live sessions in the table.
    pub live_sessions: u64,
    /// Per waypoint pair: label, ingress sessions, egress sessions.
    pub pairs: Vec<(String, u32, u32)>,
}

/// The latest [`Snapshot`], and a flag by which a client asks the slow path for a fresh one.
#[derive(Default)]
pub struct Published {
    snap: ArcSwap<Snapshot>,
    want: AtomicBool,
    generation: AtomicU64,
}

impl Published {
    /// How long a client waits for the slow path to answer a request for a fresh snapshot
    /// before it gets the latest one (at most a second old).
    const FRESH_WAIT: Duration = Duration::from_millis(200);

    /// Slow-path thread: whether a client asked for a fresh snapshot since the last call.
    pub fn wanted(&self) -> bool {
        self.want.swap(false, Relaxed)
    }

    /// Slow-path thread: makes `s` the latest snapshot.
    pub fn publish(&self, mut s: Snapshot) {
        s.generation = self.generation.fetch_add(1, Relaxed).wrapping_add(1);
        self.snap.store(Arc::new(s));
    }

    /// Telemetry thread: asks for a fresh snapshot and waits a little for it; returns the
    /// latest either way (never blocks the slow path, which only swaps a pointer).
    fn fresh(&self) -> Arc<Snapshot> {
        let before = self.snap.load().generation;
        self.want.store(true, Relaxed);
        let start = Instant::now();
        while start.elapsed() < Self::FRESH_WAIT {
            if self.snap.load().generation != before {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.snap.load_full()
    }
}

/// The SIGUSR1 report (`counters::report`) as flat `name → u64` pairs: a line
/// `SECTION: k=v k=v` gives `SECTION_k` (spaces in the section become `_`), a line
/// `SECTION k=v` gives `SECTION_k`; `-` becomes `_`. Values that are not unsigned integers
/// (clocks per packet) and lines without `=` are left out. Reading the report itself keeps
/// this list and the report the same by construction.
pub fn stats_from_report(report: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for line in report.lines() {
        let (section, rest) = match line.split_once(": ") {
            Some((s, r)) if !s.contains('=') => (s, r),
            _ => match line.split_once(' ') {
                Some((s, r)) => (s, r),
                None => continue,
            },
        };
        for token in rest.split_whitespace() {
            let Some((k, v)) = token.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            let name = format!("{section}_{k}").replace([' ', '-'], "_");
            out.push((name, v));
        }
    }
    out
}

/// What `/svr/info` says that does not change while svrd runs.
#[derive(Debug, Clone)]
pub struct Info {
    pub router: String,
    pub node: String,
    pub ports: Vec<String>,
    pub workers: usize,
    pub zero_trust: bool,
}

/// The most sessions `/svr/sessions,N` lists (DPDK answers are at most 16 KiB of JSON).
const MAX_LISTED: usize = 32;

/// Registers the `/svr/...` commands. Once per process.
pub fn register(
    info: Info,
    published: Arc<Published>,
    svr: Option<Arc<SvrShared>>,
) -> Result<(), TelemetryError> {
    let p = Arc::clone(&published);
    telemetry::register(
        "/svr/info",
        "svrd: router, node, versions, pid, uptime, ports, workers.",
        move |_| info_value(&info, &p.fresh()),
    )?;
    let p = Arc::clone(&published);
    telemetry::register(
        "/svr/peers",
        "svrd: peers (keys, indices) and their paths (BFD, service, latency, jitter, loss, MOS, sessions).",
        move |_| peers_value(&p.fresh()),
    )?;
    let p = Arc::clone(&published);
    telemetry::register(
        "/svr/stats",
        "svrd: every counter as name: value. Parameter: a name prefix, e.g. drop_.",
        move |prefix| stats_value(&p.fresh(), prefix),
    )?;
    telemetry::register(
        "/svr/sessions",
        "svrd: live sessions by role and path. Parameter: N (<= 32) to list the first N.",
        move |param| sessions_value(&published.fresh(), svr.as_deref(), param),
    )?;
    Ok(())
}

fn flag(b: bool) -> TelValue {
    TelValue::U64(u64::from(b))
}

fn info_value(info: &Info, s: &Snapshot) -> TelValue {
    TelValue::Dict(vec![
        ("router".into(), info.router.as_str().into()),
        ("node".into(), info.node.as_str().into()),
        ("svrd_version".into(), env!("CARGO_PKG_VERSION").into()),
        ("dpdk_version".into(), dpdk_ffi::version().into()),
        ("pid".into(), TelValue::U64(u64::from(std::process::id()))),
        ("uptime_s".into(), TelValue::U64(s.uptime_ms / 1000)),
        ("zero_trust".into(), flag(info.zero_trust)),
        (
            "ports".into(),
            TelValue::Array(info.ports.iter().map(|p| p.as_str().into()).collect()),
        ),
        ("workers".into(), TelValue::U64(info.workers as u64)),
    ])
}

fn peers_value(s: &Snapshot) -> TelValue {
    let peers = s
        .peers
        .iter()
        .map(|p| {
            let paths = p
                .paths
                .iter()
                .map(|q| {
                    TelValue::Dict(vec![
                        ("label".into(), q.label.as_str().into()),
                        ("bfd_state".into(), q.bfd_state.as_str().into()),
                        ("in_service".into(), flag(q.in_service)),
                        ("latency_ms".into(), q.latency_ms.as_str().into()),
                        ("jitter_ms".into(), q.jitter_ms.as_str().into()),
                        ("loss_pct".into(), q.loss_pct.as_str().into()),
                        ("mos".into(), q.mos.as_str().into()),
                        (
                            "sessions_ingress".into(),
                            TelValue::U64(u64::from(q.sessions_ingress)),
                        ),
                        (
                            "sessions_egress".into(),
                            TelValue::U64(u64::from(q.sessions_egress)),
                        ),
                    ])
                })
                .collect();
            TelValue::Dict(vec![
                ("name".into(), p.name.as_str().into()),
                ("role".into(), p.role.as_str().into()),
                ("in_service".into(), flag(p.in_service)),
                ("invalid".into(), flag(p.invalid)),
                ("bfd_up".into(), flag(p.bfd_up)),
                ("peer_key_index".into(), TelValue::U64(p.peer_key_index)),
                (
                    "payload_key_index".into(),
                    TelValue::U64(p.payload_key_index),
                ),
                ("paths".into(), TelValue::Array(paths)),
            ])
        })
        .collect();
    TelValue::Dict(vec![
        ("count".into(), TelValue::U64(s.peers.len() as u64)),
        ("peers".into(), TelValue::Array(peers)),
    ])
}

fn stats_value(s: &Snapshot, prefix: &str) -> TelValue {
    TelValue::Dict(
        s.stats
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), TelValue::U64(*v)))
            .collect(),
    )
}

fn sessions_value(s: &Snapshot, svr: Option<&SvrShared>, param: &str) -> TelValue {
    let (ingress, egress) = s.pairs.iter().fold((0u64, 0u64), |(i, e), p| {
        (i + u64::from(p.1), e + u64::from(p.2))
    });
    let by_path = s
        .pairs
        .iter()
        .map(|(label, i, e)| {
            TelValue::Dict(vec![
                ("label".into(), label.as_str().into()),
                ("ingress".into(), TelValue::U64(u64::from(*i))),
                ("egress".into(), TelValue::U64(u64::from(*e))),
            ])
        })
        .collect();
    let mut out = vec![
        ("live".into(), TelValue::U64(s.live_sessions)),
        ("ingress".into(), TelValue::U64(ingress)),
        ("egress".into(), TelValue::U64(egress)),
        ("by_path".into(), TelValue::Array(by_path)),
    ];
    let param = param.trim();
    if param.is_empty() {
        return TelValue::Dict(out);
    }
    match (param.parse::<usize>(), svr) {
        (Ok(n), Some(svr)) if n <= MAX_LISTED => {
            let rows = svr
                .first_sessions(n)
                .iter()
                .map(|x| {
                    let service = x
                        .service
                        .and_then(|i| svr.services().services.get(i).map(|s| s.name.clone()))
                        .unwrap_or_else(|| "-".into());
                    let path = x
                        .pair
                        .and_then(|i| svr.pairs().get(i))
                        .map_or_else(|| "-".into(), |p| format!("{}->{}", p.local, p.remote));
                    TelValue::Dict(vec![
                        ("uuid".into(), crate::slow::uuid_text(&x.uuid).into()),
                        (
                            "role".into(),
                            match x.role {
                                Role::Ingress => "ingress",
                                Role::Egress => "egress",
                            }
                            .into(),
                        ),
                        ("service".into(), service.into()),
                        ("path".into(), path.into()),
                        ("lan".into(), flow_text(&x.lan_key).into()),
                        ("wan".into(), flow_text(&x.wan_key).into()),
                        (
                            "payload_key_index".into(),
                            TelValue::U64(u64::from(x.payload_key_index)),
                        ),
                    ])
                })
                .collect();
            out.push(("sessions".into(), TelValue::Array(rows)));
        }
        (Ok(_), None) => out.push(("error".into(), "no SVR data plane on this router".into())),
        _ => out.push((
            "error".into(),
            format!("parameter {param:?}: give a number of sessions to list, 0-{MAX_LISTED}")
                .into(),
        )),
    }
    TelValue::Dict(out)
}

/// `src:port->dst:port/proto` (IPv6 in brackets), as received.
fn flow_text(k: &FlowKey) -> String {
    let proto = match k.proto() {
        1 => "icmp".to_string(),
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        58 => "icmpv6".to_string(),
        n => n.to_string(),
    };
    format!(
        "{}->{}/{proto}",
        SocketAddr::new(k.src(), k.src_port()),
        SocketAddr::new(k.dst(), k.dst_port())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "svrd: counters router-a
port lan: rx-packets=10 tx-packets=9 rx-bytes=1000 tx-bytes=900 rx-missed=0 rx-errors=0 tx-errors=0 rx-nombuf=0 rx-ring-drops=2
worker 0: rx=19 forwarded=15 punted=4 injected=3 tx=18 tx-unsent=0 punt-ring-full=0 punt-bfd-ring-full=0
worker 0: clocks-per-packet rx=12.5 classify=3.0 total=15.5 tsc-hz=2400000000
drop no_route=1
svr sessions_created=4
slowpath bfd_rx=7
";

    #[test]
    fn every_integer_counter_of_the_report() {
        let s = stats_from_report(REPORT);
        let get = |n: &str| s.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
        assert_eq!(get("port_lan_rx_packets"), Some(10));
        assert_eq!(get("port_lan_rx_ring_drops"), Some(2));
        assert_eq!(get("worker_0_punt_bfd_ring_full"), Some(0));
        assert_eq!(get("worker_0_tsc_hz"), Some(2_400_000_000));
        assert_eq!(
            get("worker_0_rx"),
            Some(19),
            "the integer rx, not the clocks"
        );
        assert_eq!(get("drop_no_route"), Some(1));
        assert_eq!(get("svr_sessions_created"), Some(4));
        assert_eq!(get("slowpath_bfd_rx"), Some(7));
        assert!(get("worker_0_classify").is_none(), "floats are left out");
        assert_eq!(s.len(), 9 + 8 + 1 + 3);
        // Garbage lines give nothing and do not panic.
        assert!(stats_from_report("x\n: =\n=\na b=c d=-1 e=1=2\n").is_empty());
    }

    #[test]
    fn answers_from_a_snapshot() {
        let snap = Snapshot {
            stats: stats_from_report(REPORT),
            peers: vec![PeerState {
                name: "router-b".into(),
                paths: vec![PathState {
                    label: "10.9.0.1->10.9.0.2".into(),
                    sessions_ingress: 2,
                    ..PathState::default()
                }],
                ..PeerState::default()
            }],
            pairs: vec![("10.9.0.1->10.9.0.2".into(), 2, 1)],
            live_sessions: 3,
            ..Snapshot::default()
        };
        let TelValue::Dict(d) = stats_value(&snap, "drop_") else {
            panic!("a dict")
        };
        assert_eq!(d, vec![("drop_no_route".to_string(), TelValue::U64(1))]);
        let TelValue::Dict(p) = peers_value(&snap) else {
            panic!("a dict")
        };
        assert_eq!(p[0], ("count".into(), TelValue::U64(1)));
        let TelValue::Dict(s) = sessions_value(&snap, None, "") else {
            panic!("a dict")
        };
        assert_eq!(s[1], ("ingress".into(), TelValue::U64(2)));
        assert_eq!(s[2], ("egress".into(), TelValue::U64(1)));
        for bad in ["x", "-1", "33", "99999999999999999999999"] {
            let TelValue::Dict(s) = sessions_value(&snap, None, bad) else {
                panic!("a dict")
            };
            assert_eq!(s.last().map(|e| e.0.as_str()), Some("error"), "{bad}");
        }
    }
}
