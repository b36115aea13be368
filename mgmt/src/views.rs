//! Views that `svrctl` builds from the counter tree (`show-stats`), so they need nothing
//! more from svrd: `show interfaces` (the `port.*` counters by interface), `show runtime`
//! (VPP `show runtime` style: clocks per packet of every burst stage, per worker, from the
//! `worker.N.stage.*` counters), and the reset point of `show stats` (`clear stats` saves
//! the values; later views subtract them, until svrd restarts).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Stat, StatKind};
use crate::table::Table;

/// One interface's counters (`port.<name>.<field>`), in the order svrd reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// The interface name from the configuration.
    pub name: String,
    /// Its counters by field (`rx_packets`, `rx_ring_drops`, ...).
    pub counters: BTreeMap<String, u64>,
}

/// `port.*` counters grouped by interface.
pub fn interfaces(stats: &[Stat]) -> Vec<Interface> {
    let mut by: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for s in stats {
        let Some(rest) = s.name.strip_prefix("port.") else {
            continue;
        };
        if let Some((name, field)) = rest.split_once('.') {
            by.entry(name.to_string())
                .or_default()
                .insert(field.to_string(), s.value);
        }
    }
    by.into_iter()
        .map(|(name, counters)| Interface { name, counters })
        .collect()
}

/// `show interfaces` as a table.
pub fn interfaces_table(list: &[Interface]) -> String {
    const COLS: [(&str, &str); 9] = [
        ("RX Packets", "rx_packets"),
        ("RX Bytes", "rx_bytes"),
        ("TX Packets", "tx_packets"),
        ("TX Bytes", "tx_bytes"),
        ("RX Missed", "rx_missed"),
        ("RX Ring Drops", "rx_ring_drops"),
        ("RX No Mbuf", "rx_nombuf"),
        ("RX Errors", "rx_errors"),
        ("TX Errors", "tx_errors"),
    ];
    let mut head = vec!["Interface"];
    head.extend(COLS.iter().map(|(h, _)| *h));
    let mut t = Table::new(&head);
    for i in list {
        let mut row = vec![i.name.clone()];
        row.extend(COLS.iter().map(|(_, f)| {
            i.counters
                .get(*f)
                .map_or_else(|| "-".to_string(), u64::to_string)
        }));
        t.row(row);
    }
    t.render()
}

/// One burst stage of one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRuntime {
    /// Worker index.
    pub worker: String,
    /// Stage name (`rx`, `classify`, `crypto`, ...).
    pub stage: String,
    /// Packets the stage handled.
    pub packets: u64,
    /// TSC cycles it spent.
    pub cycles: u64,
    /// Cycles per packet (0 when no packet).
    pub clocks_per_packet: f64,
}

/// `worker.N.stage.S.{cycles,packets}` as one row per worker and stage, in svrd's order.
pub fn runtime(stats: &[Stat]) -> Vec<StageRuntime> {
    let mut rows: Vec<StageRuntime> = Vec::new();
    for s in stats {
        let Some(rest) = s.name.strip_prefix("worker.") else {
            continue;
        };
        let mut parts = rest.splitn(4, '.');
        let (Some(w), Some("stage"), Some(stage), Some(what)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let pos = rows.iter().position(|r| r.worker == w && r.stage == stage);
        let i = pos.unwrap_or_else(|| {
            rows.push(StageRuntime {
                worker: w.to_string(),
                stage: stage.to_string(),
                packets: 0,
                cycles: 0,
                clocks_per_packet: 0.0,
            });
            rows.len() - 1
        });
        match what {
            "cycles" => rows[i].cycles = s.value,
            "packets" => rows[i].packets = s.value,
            _ => {}
        }
    }
    for r in &mut rows {
        if r.packets > 0 {
            r.clocks_per_packet = r.cycles as f64 / r.packets as f64;
        }
    }
    rows
}

/// `show runtime` as a table, with a total line per worker (the sum of its stages' clocks
/// per packet: what one packet costs).
pub fn runtime_table(rows: &[StageRuntime]) -> String {
    let mut t = Table::new(&["Worker", "Stage", "Packets", "Clocks/Packet"]);
    let mut workers: Vec<&str> = Vec::new();
    for r in rows {
        if !workers.contains(&r.worker.as_str()) {
            workers.push(&r.worker);
        }
    }
    for w in workers {
        let mine: Vec<&StageRuntime> = rows.iter().filter(|r| r.worker == w).collect();
        for r in &mine {
            t.row(vec![
                w.to_string(),
                r.stage.clone(),
                r.packets.to_string(),
                format!("{:.1}", r.clocks_per_packet),
            ]);
        }
        let total: f64 = mine.iter().map(|r| r.clocks_per_packet).sum();
        t.row(vec![
            w.to_string(),
            "total".into(),
            "-".into(),
            format!("{total:.1}"),
        ]);
    }
    t.render()
}

/// The values saved by `clear stats`, with the svrd start they belong to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetPoint {
    /// svrd's start, Unix seconds (now − uptime when saved): a restarted svrd has another,
    /// and then the reset point no longer applies.
    pub started_unix_s: u64,
    /// When it was saved, Unix seconds.
    pub saved_unix_s: u64,
    /// Counter values then.
    pub values: BTreeMap<String, u64>,
}

impl ResetPoint {
    /// The counters of `stats` at `now` for svrd started at `started`.
    pub fn new(stats: &[Stat], started_unix_s: u64, saved_unix_s: u64) -> ResetPoint {
        ResetPoint {
            started_unix_s,
            saved_unix_s,
            values: stats
                .iter()
                .filter(|s| s.kind == StatKind::Counter)
                .map(|s| (s.name.clone(), s.value))
                .collect(),
        }
    }

    /// Does it belong to svrd started at `started` (a second either way: the two starts are
    /// computed from rounded uptimes)?
    pub fn applies(&self, started_unix_s: u64) -> bool {
        self.started_unix_s.abs_diff(started_unix_s) <= 1
    }

    /// `stats` since the reset point: counters minus their saved values; gauges as they are.
    pub fn subtract(&self, stats: &mut [Stat]) {
        for s in stats.iter_mut().filter(|s| s.kind == StatKind::Counter) {
            if let Some(v) = self.values.get(&s.name) {
                s.value = s.value.saturating_sub(*v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Vec<Stat> {
        vec![
            Stat::counter("port.lan.rx_packets", 10),
            Stat::counter("port.lan.tx_packets", 9),
            Stat::counter("port.wan.rx_packets", 7),
            Stat::counter("port.wan.rx_ring_drops", 2),
            Stat::counter("worker.0.rx", 17),
            Stat::counter("worker.0.stage.rx.cycles", 1000),
            Stat::counter("worker.0.stage.rx.packets", 10),
            Stat::counter("worker.0.stage.crypto.cycles", 3000),
            Stat::counter("worker.0.stage.crypto.packets", 10),
            Stat::counter("drop.svr_replay", 3),
        ]
    }

    #[test]
    fn interfaces_group_port_counters() {
        let i = interfaces(&stats());
        assert_eq!(i.len(), 2);
        assert_eq!(i[1].name, "wan");
        assert_eq!(i[1].counters["rx_ring_drops"], 2);
        let t = interfaces_table(&i);
        assert!(t.lines().nth(2).unwrap().starts_with("lan "), "{t}");
        assert!(t.contains("RX Ring Drops"), "{t}");
    }

    #[test]
    fn runtime_is_clocks_per_packet_per_stage_with_a_total() {
        let r = runtime(&stats());
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].stage.as_str(), r[0].clocks_per_packet), ("rx", 100.0));
        assert_eq!(
            (r[1].stage.as_str(), r[1].clocks_per_packet),
            ("crypto", 300.0)
        );
        let t = runtime_table(&r);
        assert!(
            t.lines()
                .any(|l| l.starts_with("0 ") && l.contains("total") && l.ends_with("400.0")),
            "{t}"
        );
    }

    #[test]
    fn reset_point_subtracts_counters_of_the_same_start_only() {
        let before = stats();
        let p = ResetPoint::new(&before, 1000, 1100);
        let mut now = stats();
        now[0].value = 15;
        p.subtract(&mut now);
        assert_eq!(now[0].value, 5);
        assert_eq!(now[9].value, 0);
        assert!(p.applies(1000) && p.applies(1001) && !p.applies(1500));
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<ResetPoint>(&json).unwrap(), p);
    }
}
