//! svrctl's table views (SSR's PCLI style: a header, a dashed rule, one row per item).

use std::fmt::Write as _;

use crate::model::{EventInfo, PeerInfo, SessionInfo, Stat};
use crate::time::{duration, rfc3339};

/// A plain text table: columns as wide as their widest cell, two spaces apart.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are blank, extra ones dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The rendered table, one line per row, trailing blanks trimmed.
    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut width: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            let mut l = String::new();
            for (i, w) in width.iter().enumerate() {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                let _ = write!(l, "{c:<w$}");
                if i + 1 < n {
                    l.push_str("  ");
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&mut out, &self.header);
        let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
        line(&mut out, &rule);
        for r in &self.rows {
            line(&mut out, r);
        }
        out
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn secs(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), duration)
}

fn fixed(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// `show peers`.
pub fn peers(peers: &[PeerInfo]) -> String {
    let mut t = Table::new(&[
        "Peer",
        "Router Name",
        "Version",
        "Paths Up",
        "Status",
        "Uptime",
    ]);
    for p in peers {
        t.row(vec![
            p.common_name.clone().unwrap_or_else(|| p.name.clone()),
            p.name.clone(),
            opt(p.version.clone()),
            format!("{}/{}", p.paths_up, p.paths_total),
            p.status.clone(),
            secs(p.uptime_s),
        ]);
    }
    t.render()
}

/// `show peers detail`.
pub fn peers_detail(peers: &[PeerInfo]) -> String {
    let mut t = Table::new(&[
        "Peer",
        "Local Waypoint",
        "Remote Waypoint",
        "BFD",
        "Service",
        "Latency ms",
        "Jitter ms",
        "Loss %",
        "MOS",
        "Uptime",
    ]);
    for p in peers {
        for path in &p.paths {
            t.row(vec![
                p.name.clone(),
                path.local.clone(),
                path.remote.clone(),
                path.bfd_state.clone(),
                if path.in_service { "in" } else { "out" }.into(),
                fixed(path.latency_ms, 1),
                fixed(path.jitter_ms, 1),
                fixed(path.loss_percent, 1),
                fixed(path.mos, 2),
                secs(path.uptime_s),
            ]);
        }
    }
    t.render()
}

/// `show peers security`.
pub fn peers_security(peers: &[PeerInfo]) -> String {
    let mut t = Table::new(&[
        "Peer",
        "Role",
        "Keys",
        "Peer Key",
        "Age",
        "Next Rekey",
        "Metadata Key own/peer",
        "Age",
        "Payload Key",
        "Age",
        "Next Rekey",
    ]);
    let mut certs = Table::new(&["Peer", "Certificate", "Subject", "Not After"]);
    for p in peers {
        let s = &p.security;
        t.row(vec![
            p.name.clone(),
            opt(p.role.clone()),
            s.key_state.clone(),
            opt(s.peer_key_index),
            secs(s.peer_key_age_s),
            secs(s.next_peer_rekey_s),
            format!(
                "{}/{}",
                opt(s.own_metadata_key_index),
                opt(s.peer_metadata_key_index)
            ),
            secs(s.metadata_key_age_s),
            s.payload_key_index.to_string(),
            secs(s.payload_key_age_s),
            secs(s.next_payload_rekey_s),
        ]);
        for (which, c) in [
            ("local", &s.local_certificate),
            ("peer", &s.peer_certificate),
        ] {
            if let Some(c) = c {
                certs.row(vec![
                    p.name.clone(),
                    which.into(),
                    c.subject.clone(),
                    rfc3339(c.not_after_unix),
                ]);
            }
        }
    }
    let mut out = t.render();
    if !certs.rows.is_empty() {
        out.push('\n');
        out.push_str(&certs.render());
    }
    out
}

/// A time in ms: tenths of seconds under a minute (like the idle time beside it, so that a
/// young session's age never reads less than its idle time), else [`duration`].
fn tenths(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        duration(ms / 1000)
    }
}

/// `show sessions`: two rows per session, as SSR shows them: `fwd` (client → server, the
/// direction that created the session) and `rev` (server → client), each with its own
/// source, destination, waypoints and wayports (the WAN leg of that direction: leaving us at
/// the ingress for `fwd`, arriving at the egress) and its own packets and bytes; the
/// session's id, service, key, age and timeout on both.
pub fn sessions(live: u64, matched: u64, list: &[SessionInfo]) -> String {
    let mut t = Table::new(&[
        "Session Id",
        "Dir",
        "Service",
        "Tenant",
        "Proto",
        "Source",
        "Destination",
        "Role",
        "Peer",
        "Waypoints",
        "Wayports",
        "Payload Key",
        "Packets",
        "Bytes",
        "Age",
        "Idle",
        "Timeout",
        "Expires In",
    ]);
    let addr = |a: &str, p: u16| {
        if a.contains(':') {
            format!("[{a}]:{p}")
        } else {
            format!("{a}:{p}")
        }
    };
    for s in list {
        let client = addr(&s.source, s.source_port);
        let server = addr(&s.destination, s.destination_port);
        let out = (
            format!("{}->{}", s.local_waypoint, s.remote_waypoint),
            format!("{}->{}", s.local_wayport, s.remote_wayport),
        );
        let inward = (
            format!("{}->{}", s.remote_waypoint, s.local_waypoint),
            format!("{}->{}", s.remote_wayport, s.local_wayport),
        );
        // The forward leg leaves us at the ingress and arrives at the egress.
        let (fwd_wan, rev_wan) = if s.role == "egress" {
            (inward, out)
        } else {
            (out, inward)
        };
        for (dir, (src, dst), (wps, wpt), d) in [
            ("fwd", (&client, &server), fwd_wan, &s.forward),
            ("rev", (&server, &client), rev_wan, &s.reverse),
        ] {
            t.row(vec![
                s.uuid.clone(),
                dir.into(),
                opt(s.service.clone()),
                opt(s.tenant.clone()),
                s.protocol.clone(),
                src.clone(),
                dst.clone(),
                s.role.clone(),
                opt(s.peer.clone()),
                wps,
                wpt,
                s.payload_key_index.to_string(),
                d.packets.to_string(),
                d.bytes.to_string(),
                tenths(s.age_ms),
                format!("{:.1}s", s.idle_ms as f64 / 1000.0),
                duration(s.timeout_s),
                duration(s.expires_in_ms / 1000),
            ]);
        }
    }
    let mut out = t.render();
    let _ = writeln!(
        out,
        "{} of {matched} matching sessions shown ({live} live)",
        list.len()
    );
    out
}

/// `show stats`: `name  value`, names sorted.
pub fn stats(stats: &[Stat]) -> String {
    let mut t = Table::new(&["Counter", "Value"]);
    for s in stats {
        t.row(vec![s.name.clone(), s.value.to_string()]);
    }
    t.render()
}

/// `reload`: the file, the revision now running and what changed.
pub fn reload(d: &serde_json::Value) -> String {
    let changes: Vec<&str> = d["changes"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let mut t = Table::new(&["Router", "Revision", "Changes", "File"]);
    t.row(vec![
        d["router"]["router"].as_str().unwrap_or("-").to_string(),
        d["revision"].to_string(),
        if changes.is_empty() {
            "none".to_string()
        } else {
            changes.join(", ")
        },
        d["path"].as_str().unwrap_or("-").to_string(),
    ]);
    t.render()
}

/// `show events`: one line each, time first.
pub fn events(events: &[EventInfo]) -> String {
    let mut out = String::new();
    for e in events {
        let t = i64::try_from(e.unix_ms / 1000).unwrap_or(i64::MAX);
        let _ = writeln!(
            out,
            "{}.{:03} {}",
            rfc3339(t).trim_end_matches('Z'),
            e.unix_ms % 1000,
            e.line
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::tests::{peer, session};

    #[test]
    fn tables_line_up() {
        let out = peers(&[peer()]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("Peer "));
        assert!(lines[1].starts_with("----"));
        assert!(lines[2].contains("router-b.testbed.svr"));
        assert!(lines[2].contains("1/2"));
        assert!(lines[2].contains("42s"));
        let col = lines[0].find("Version").unwrap();
        assert_eq!(&lines[2][col..col + 5], "0.1.0");
        // Columns start at the same place on every line.
        let col = lines[0].find("Router Name").unwrap();
        assert_eq!(&lines[2][col..col + 8], "router-b");

        let d = peers_detail(&[peer()]);
        assert!(d.contains("10.9.0.1") && d.contains("Up") && d.contains("4.40"));
        assert!(d.lines().nth(3).unwrap().contains("Down"));
        let s = peers_security(&[peer()]);
        assert!(s.contains("valid") && s.contains("4/5"), "{s}");
        let s = sessions(2, 1, &[session("a-1", "site-b")]);
        assert!(s.ends_with("1 of 1 matching sessions shown (2 live)\n"));
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 5, "{s}");
        let cells = |l: &str| -> Vec<String> {
            l.split("  ")
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect()
        };
        assert_eq!(
            cells(lines[2]),
            [
                "a-1",
                "fwd",
                "site-b",
                "blue",
                "udp",
                "10.1.0.2:40000",
                "10.2.0.2:5001",
                "ingress",
                "router-b",
                "10.9.0.1->10.9.0.2",
                "16384->16385",
                "2",
                "20",
                "4560",
                "1m 5s",
                "0.0s",
                "1m 0s",
                "59s"
            ],
            "{s}"
        );
        assert_eq!(
            cells(lines[3]),
            [
                "a-1",
                "rev",
                "site-b",
                "blue",
                "udp",
                "10.2.0.2:5001",
                "10.1.0.2:40000",
                "ingress",
                "router-b",
                "10.9.0.2->10.9.0.1",
                "16385->16384",
                "2",
                "19",
                "4332",
                "1m 5s",
                "0.0s",
                "1m 0s",
                "59s"
            ],
            "{s}"
        );
        // At the egress the forward leg arrives from the peer.
        let mut e = session("a-1", "site-b");
        e.role = "egress".into();
        e.age_ms = 1_750;
        let s = sessions(1, 1, &[e]);
        let lines: Vec<&str> = s.lines().collect();
        assert!(
            lines[2].contains("  fwd  ") && lines[2].contains("10.9.0.2->10.9.0.1  16385->16384"),
            "{s}"
        );
        assert!(
            lines[3].contains("  rev  ") && lines[3].contains("10.9.0.1->10.9.0.2  16384->16385"),
            "{s}"
        );
        assert!(lines[3].contains("  1.8s  0.0s  1m 0s"), "{s}");
        // Columns start at the same place on every line.
        let col = lines[0].find("Packets").unwrap();
        assert_eq!(&lines[2][col..col + 2], "20");
        let r = reload(
            &serde_json::json!({"router": {"router": "router-a"}, "revision": 3, "changes": ["services", "routes"], "path": "/etc/a.yaml"}),
        );
        assert!(
            r.lines()
                .nth(2)
                .unwrap()
                .starts_with("router-a  3         services, routes  /etc/a.yaml"),
            "{r}"
        );
        let r = reload(&serde_json::json!({"revision": 1, "changes": []}));
        assert!(r.contains(" none "), "{r}");
    }
}
