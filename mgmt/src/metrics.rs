//! Prometheus exposition (text format 0.0.4) of the same data the control socket serves.
//!
//! Conventions: every name starts with `svr_`; counters end in `_total`; times are seconds
//! and ratios are 0-1; labels take values from bounded sets only (ports, drop reasons,
//! services, peers and paths of the configuration; never addresses of traffic or UUIDs).
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `svr_port_{rx,tx}_{packets,bytes}_total`, `svr_port_{rx_missed,rx_errors,tx_errors,rx_nombuf,rx_ring_drops}_total` (`rx_ring_drops`: frames an af_packet port's kernel ring dropped before svrd polled them) | counter | `port` |
//! | `svr_worker_<counter>_total` (`rx`, `forwarded`, `punted`, `tx`, `tx_unsent`, ...) | counter | `worker` |
//! | `svr_drops_total` | counter | `reason` (every drop reason, zeros too) |
//! | `svr_dataplane_events_total` | counter | `event` |
//! | `svr_slowpath_<counter>_total` / `svr_slowpath_<gauge>` | counter / gauge | |
//! | `svr_mgmt_<counter>_total` (`requests`, `request_errors`, `metrics_scrapes`, ...) | counter | |
//! | `svr_sessions` | gauge | `service` (`-` when none matches) |
//! | `svr_peer_up` | gauge | `peer` |
//! | `svr_peer_path_up`, `svr_peer_path_latency_seconds`, `svr_peer_path_jitter_seconds`, `svr_peer_path_loss_ratio`, `svr_peer_path_mos` | gauge | `peer`, `path` |
//! | `svr_peer_key_index`, `svr_peer_payload_key_index`, `svr_peer_metadata_key_index` | gauge | `peer` (and `direction` = `own` / `peer` for metadata keys) |
//! | `svr_peer_key_last_rotation_timestamp_seconds` | gauge | `peer`, `key` (`peer-key`, `metadata-key`, `payload-key`) |
//! | `svr_uptime_seconds` | gauge | |

use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::model::{PeerInfo, Stat, StatKind};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What one scrape shows.
#[derive(Debug, Clone, Copy)]
pub struct MetricsInput<'a> {
    /// Wall time now, Unix seconds (key-rotation timestamps are now minus their age).
    pub now_unix: i64,
    /// Seconds since svrd started.
    pub uptime_s: u64,
    /// Peers (paths, keys).
    pub peers: &'a [PeerInfo],
    /// Every counter (`show stats`).
    pub stats: &'a [Stat],
    /// Live sessions per service name.
    pub sessions_by_service: &'a [(String, u64)],
}

/// A metric name part from a counter name: `[a-z0-9_]`, other characters as `_`; a `us`
/// word ("not for us") becomes `this_router`, since Prometheus reads `_us` as microseconds.
fn sanitize(s: &str) -> String {
    let words: Vec<&str> = s
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(|w| {
            if w.eq_ignore_ascii_case("us") {
                "this_router"
            } else {
                w
            }
        })
        .collect();
    words
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Families made on demand during one scrape, registered once each.
struct Families {
    registry: Registry,
    counters: Vec<(String, IntCounterVec)>,
    gauges: Vec<(String, GaugeVec)>,
}

impl Families {
    fn new() -> Families {
        Families {
            registry: Registry::new(),
            counters: Vec::new(),
            gauges: Vec::new(),
        }
    }

    fn counter(&mut self, name: &str, help: &str, labels: &[&str], values: &[&str], v: u64) {
        let i = match self.counters.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                let Ok(c) = IntCounterVec::new(Opts::new(name, help), labels) else {
                    return;
                };
                if self.registry.register(Box::new(c.clone())).is_err() {
                    return;
                }
                self.counters.push((name.to_string(), c));
                self.counters.len() - 1
            }
        };
        if let Ok(c) = self.counters[i].1.get_metric_with_label_values(values) {
            c.inc_by(v);
        }
    }

    fn gauge(&mut self, name: &str, help: &str, labels: &[&str], values: &[&str], v: f64) {
        let i = match self.gauges.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                let Ok(g) = GaugeVec::new(Opts::new(name, help), labels) else {
                    return;
                };
                if self.registry.register(Box::new(g.clone())).is_err() {
                    return;
                }
                self.gauges.push((name.to_string(), g));
                self.gauges.len() - 1
            }
        };
        if let Ok(g) = self.gauges[i].1.get_metric_with_label_values(values) {
            g.set(v);
        }
    }
}

/// The `/metrics` page.
pub fn render(input: &MetricsInput<'_>) -> String {
    let mut f = Families::new();
    f.gauge(
        "svr_uptime_seconds",
        "Seconds since svrd started.",
        &[],
        &[],
        input.uptime_s as f64,
    );
    for s in input.stats {
        stat(&mut f, s);
    }
    for (service, n) in input.sessions_by_service {
        f.gauge(
            "svr_sessions",
            "Live SVR sessions by service.",
            &["service"],
            &[service],
            *n as f64,
        );
    }
    for p in input.peers {
        peer(&mut f, p, input.now_unix);
    }
    let mut families = f.registry.gather();
    families.sort_by(|a, b| a.get_name().cmp(b.get_name()));
    let mut out = Vec::new();
    if TextEncoder::new().encode(&families, &mut out).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

fn stat(f: &mut Families, s: &Stat) {
    let parts: Vec<&str> = s.name.splitn(3, '.').collect();
    match (parts.as_slice(), s.kind) {
        (["port", port, field], _) => f.counter(
            &format!("svr_port_{}_total", sanitize(field)),
            "Port counters (rte_eth_stats; rx_ring_drops from the kernel ring of af_packet ports).",
            &["port"],
            &[port],
            s.value,
        ),
        (["worker", worker, field], StatKind::Counter) if !field.contains('.') => f.counter(
            &format!("svr_worker_{}_total", sanitize(field)),
            "Per-worker packet counters.",
            &["worker"],
            &[worker],
            s.value,
        ),
        (["drop", reason], _) => f.counter(
            "svr_drops_total",
            "Packets dropped, by reason.",
            &["reason"],
            &[reason],
            s.value,
        ),
        (["svr", event], StatKind::Counter) => f.counter(
            "svr_dataplane_events_total",
            "SVR data-plane events (sessions made, keys changed, paths moved).",
            &["event"],
            &[event],
            s.value,
        ),
        (["mgmt", name], StatKind::Counter) => f.counter(
            &format!("svr_mgmt_{}_total", sanitize(name)),
            "Control-socket and metrics-endpoint counter.",
            &[],
            &[],
            s.value,
        ),
        (["slowpath", name], StatKind::Counter) => f.counter(
            &format!("svr_slowpath_{}_total", sanitize(name)),
            "Slow-path, BFD and key-management counter.",
            &[],
            &[],
            s.value,
        ),
        ([_, ..], StatKind::Gauge) => f.gauge(
            &format!("svr_{}", sanitize(&s.name.replace('.', "_"))),
            "A level.",
            &[],
            &[],
            s.value as f64,
        ),
        _ => {}
    }
}

fn peer(f: &mut Families, p: &PeerInfo, now_unix: i64) {
    let up = if p.paths_up > 0 { 1.0 } else { 0.0 };
    f.gauge(
        "svr_peer_up",
        "1 while some path to the peer is in service.",
        &["peer"],
        &[&p.name],
        up,
    );
    for path in &p.paths {
        let label = format!("{}->{}", path.local, path.remote);
        let l = [p.name.as_str(), label.as_str()];
        let labels = ["peer", "path"];
        f.gauge(
            "svr_peer_path_up",
            "1 while the peer path is in service (BFD Up and keys valid).",
            &labels,
            &l,
            if path.in_service { 1.0 } else { 0.0 },
        );
        if let Some(v) = path.latency_ms {
            f.gauge(
                "svr_peer_path_latency_seconds",
                "Smoothed link-test latency.",
                &labels,
                &l,
                v / 1000.0,
            );
        }
        if let Some(v) = path.jitter_ms {
            f.gauge(
                "svr_peer_path_jitter_seconds",
                "Smoothed link-test jitter.",
                &labels,
                &l,
                v / 1000.0,
            );
        }
        if let Some(v) = path.loss_percent {
            f.gauge(
                "svr_peer_path_loss_ratio",
                "Smoothed link-test loss (0-1).",
                &labels,
                &l,
                v / 100.0,
            );
        }
        if let Some(v) = path.mos {
            f.gauge(
                "svr_peer_path_mos",
                "Mean opinion score of the path (1-4.5).",
                &labels,
                &l,
                v,
            );
        }
    }
    let s = &p.security;
    if let Some(i) = s.peer_key_index {
        f.gauge(
            "svr_peer_key_index",
            "Index of the current peer key.",
            &["peer"],
            &[&p.name],
            f64::from(i),
        );
    }
    f.gauge(
        "svr_peer_payload_key_index",
        "Payload-key index of new sessions to the peer.",
        &["peer"],
        &[&p.name],
        f64::from(s.payload_key_index),
    );
    for (dir, idx) in [
        ("own", s.own_metadata_key_index),
        ("peer", s.peer_metadata_key_index),
    ] {
        if let Some(i) = idx {
            f.gauge(
                "svr_peer_metadata_key_index",
                "Rekey index of the metadata keys (own: peers seal to us with it; peer: we seal to the peer with it).",
                &["peer", "direction"],
                &[&p.name, dir],
                f64::from(i),
            );
        }
    }
    for (key, age) in [
        ("peer-key", s.peer_key_age_s),
        ("metadata-key", s.metadata_key_age_s),
        ("payload-key", s.payload_key_age_s),
    ] {
        if let Some(age) = age {
            let at = now_unix.saturating_sub(i64::try_from(age).unwrap_or(i64::MAX));
            f.gauge(
                "svr_peer_key_last_rotation_timestamp_seconds",
                "When the key last rotated (Unix time).",
                &["peer", "key"],
                &[&p.name, key],
                at as f64,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::tests::peer;

    fn page() -> String {
        let stats = vec![
            Stat::counter("port.wan.rx_packets", 10),
            Stat::counter("port.wan.tx_bytes", 1000),
            Stat::counter("worker.0.rx", 10),
            Stat::counter("worker.0.stage.rx.cycles", 5),
            Stat::counter("drop.svr_bad_metadata", 3),
            Stat::counter("drop.no_route", 0),
            Stat::counter("svr.session_created", 2),
            Stat::counter("slowpath.bfd_rx", 7),
            Stat::counter("slowpath.arp_not_for_us", 1),
            Stat::gauge("slowpath.peer_paths", 2),
            Stat::counter("mgmt.requests", 4),
        ];
        render(&MetricsInput {
            now_unix: 1_000_000,
            uptime_s: 5,
            peers: &[peer()],
            stats: &stats,
            sessions_by_service: &[("site-b".into(), 4)],
        })
    }

    /// A small checker of the text format: every sample line is `name{labels} value`, its
    /// family was declared by a TYPE line before it, counters end in `_total`.
    fn parse(text: &str) -> Vec<(String, String, f64)> {
        let mut types = std::collections::HashMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (n, t) = rest.split_once(' ').unwrap();
                types.insert(n.to_string(), t.to_string());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (name_labels, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
            let (name, labels) = match name_labels.split_once('{') {
                Some((n, l)) => {
                    assert!(l.ends_with('}'), "{line}");
                    (n.to_string(), l.trim_end_matches('}').to_string())
                }
                None => (name_labels.to_string(), String::new()),
            };
            assert!(name.starts_with("svr_"), "{line}");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            let t = types
                .get(&name)
                .unwrap_or_else(|| panic!("no TYPE for {line}"));
            if t == "counter" {
                assert!(name.ends_with("_total"), "{line}");
            }
            samples.push((name, labels, value));
        }
        samples
    }

    fn get(s: &[(String, String, f64)], name: &str, labels: &str) -> Option<f64> {
        s.iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map(|x| x.2)
    }

    #[test]
    fn the_page_parses_and_has_the_documented_metrics() {
        let text = page();
        let s = parse(&text);
        assert_eq!(
            get(&s, "svr_port_rx_packets_total", r#"port="wan""#),
            Some(10.0)
        );
        assert_eq!(
            get(&s, "svr_port_tx_bytes_total", r#"port="wan""#),
            Some(1000.0)
        );
        assert_eq!(get(&s, "svr_worker_rx_total", r#"worker="0""#), Some(10.0));
        assert_eq!(
            get(&s, "svr_drops_total", r#"reason="svr_bad_metadata""#),
            Some(3.0)
        );
        assert_eq!(
            get(&s, "svr_drops_total", r#"reason="no_route""#),
            Some(0.0)
        );
        assert_eq!(get(&s, "svr_slowpath_bfd_rx_total", ""), Some(7.0));
        assert_eq!(
            get(&s, "svr_slowpath_arp_not_for_this_router_total", ""),
            Some(1.0)
        );
        assert_eq!(get(&s, "svr_slowpath_peer_paths", ""), Some(2.0));
        assert_eq!(get(&s, "svr_mgmt_requests_total", ""), Some(4.0));
        assert_eq!(get(&s, "svr_sessions", r#"service="site-b""#), Some(4.0));
        assert_eq!(get(&s, "svr_peer_up", r#"peer="router-b""#), Some(1.0));
        let path = r#"path="10.9.0.1->10.9.0.2",peer="router-b""#;
        assert_eq!(get(&s, "svr_peer_path_up", path), Some(1.0));
        assert_eq!(get(&s, "svr_peer_path_latency_seconds", path), Some(0.0015));
        assert_eq!(get(&s, "svr_peer_path_jitter_seconds", path), Some(0.00025));
        assert_eq!(get(&s, "svr_peer_path_loss_ratio", path), Some(0.0));
        assert_eq!(get(&s, "svr_peer_path_mos", path), Some(4.4));
        let down = r#"path="fd00:9::1->fd00:9::2",peer="router-b""#;
        assert_eq!(get(&s, "svr_peer_path_up", down), Some(0.0));
        assert_eq!(get(&s, "svr_peer_path_latency_seconds", down), None);
        assert_eq!(
            get(&s, "svr_peer_key_index", r#"peer="router-b""#),
            Some(3.0)
        );
        assert_eq!(
            get(
                &s,
                "svr_peer_key_last_rotation_timestamp_seconds",
                r#"key="peer-key",peer="router-b""#
            ),
            Some(999_993.0)
        );
        assert_eq!(get(&s, "svr_uptime_seconds", ""), Some(5.0));
        // Stage clocks are not exported as worker counters.
        assert!(!text.contains("stage"));
    }

    #[test]
    fn promtool_accepts_the_page_when_installed() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let Ok(mut child) = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        else {
            eprintln!("promtool not installed: skipped");
            return;
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(page().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
