//! Counters shared between the data path and the reporting side.
//!
//! Each worker owns one [`WorkerCounters`] and is its only writer: it adds a burst's worth of
//! local counts with relaxed load+store (no read-modify-write, so no locked instruction),
//! once per burst. The slow-path thread reads them for SIGUSR1 and exit reports.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use fastpath::forward::{DropCounters, DropReason};
use fastpath::svr::MetadataError;
use fastpath::svr_path::{SvrCounters, SvrDrop, SvrEvent};

/// Per-worker counters; cache-line aligned so two workers never share a line.
#[repr(align(64))]
#[derive(Default)]
pub struct WorkerCounters {
    pub rx: AtomicU64,
    pub forwarded: AtomicU64,
    pub punted: AtomicU64,
    pub injected: AtomicU64,
    pub tx: AtomicU64,
    /// Packets the NIC would not take and that we freed (TX queue full).
    pub tx_unsent: AtomicU64,
    /// Punts dropped because the slow-path ring (ARP, ND, ICMP, held packets...) was full.
    pub punt_ring_full: AtomicU64,
    /// BFD / key-exchange punts (UDP 1280 to our waypoints) dropped because their own
    /// slow-path ring was full.
    pub punt_bfd_ring_full: AtomicU64,
    pub drops: [AtomicU64; DropReason::COUNT],
    /// SVR drops by reason, and the metadata detail of `svr_bad_metadata`.
    pub svr_drops: [AtomicU64; SvrDrop::COUNT],
    pub metadata_drops: [AtomicU64; MetadataError::COUNT],
    pub svr_events: [AtomicU64; SvrEvent::COUNT],
    /// TSC cycles spent in each stage of the burst loop, and the packets it handled there.
    pub stage_cycles: [AtomicU64; Stage::COUNT],
    pub stage_packets: [AtomicU64; Stage::COUNT],
}

/// The stages of the burst loop, timed with the TSC once per burst (VPP's "show runtime"):
/// clocks per packet by stage, from the data path itself, whatever the profiler can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Non-empty RX polls (empty polls are idle time, not counted).
    Rx,
    Classify,
    Crypto,
    /// `packet-duplication` copies (nothing when no packet asks for one).
    Duplicate,
    Lookup,
    Transform,
    Enqueue,
    /// TX flushes after a pass that had work.
    Tx,
}

impl Stage {
    pub const COUNT: usize = 8;
    pub const ALL: [Stage; Stage::COUNT] = [
        Stage::Rx,
        Stage::Classify,
        Stage::Crypto,
        Stage::Duplicate,
        Stage::Lookup,
        Stage::Transform,
        Stage::Enqueue,
        Stage::Tx,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Rx => "rx",
            Stage::Classify => "classify",
            Stage::Crypto => "crypto",
            Stage::Duplicate => "duplicate",
            Stage::Lookup => "lookup",
            Stage::Transform => "transform",
            Stage::Enqueue => "enqueue",
            Stage::Tx => "tx",
        }
    }
}

/// A pass's stage clocks, on the worker's stack.
#[derive(Default, Clone, Copy)]
pub struct StageClocks {
    pub cycles: [u64; Stage::COUNT],
    pub packets: [u64; Stage::COUNT],
}

impl StageClocks {
    #[inline]
    pub fn add(&mut self, stage: Stage, cycles: u64, packets: usize) {
        self.cycles[stage as usize] += cycles;
        self.packets[stage as usize] += packets as u64;
    }
}

/// What one burst counted, kept in plain integers on the worker's stack.
#[derive(Default, Clone, Copy)]
pub struct BurstCounts {
    pub rx: u64,
    pub forwarded: u64,
    pub punted: u64,
    pub injected: u64,
    pub tx: u64,
    pub tx_unsent: u64,
    pub punt_ring_full: u64,
    pub punt_bfd_ring_full: u64,
}

fn add(c: &AtomicU64, n: u64) {
    if n != 0 {
        // Single writer: a plain load and store is exact and avoids a locked RMW.
        c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
    }
}

impl WorkerCounters {
    /// Publish one burst's counts. Called by the owning worker only.
    pub fn publish(&self, b: &BurstCounts, drops: &mut DropCounters) {
        add(&self.rx, b.rx);
        add(&self.forwarded, b.forwarded);
        add(&self.punted, b.punted);
        add(&self.injected, b.injected);
        add(&self.tx, b.tx);
        add(&self.tx_unsent, b.tx_unsent);
        add(&self.punt_ring_full, b.punt_ring_full);
        add(&self.punt_bfd_ring_full, b.punt_bfd_ring_full);
        for reason in DropReason::ALL {
            add(&self.drops[reason as usize], drops.get(reason));
        }
        drops.clear();
    }

    /// Publish (and clear) a pass's stage clocks. Called by the owning worker only.
    pub fn publish_clocks(&self, c: &mut StageClocks) {
        for st in Stage::ALL {
            add(&self.stage_cycles[st as usize], c.cycles[st as usize]);
            add(&self.stage_packets[st as usize], c.packets[st as usize]);
        }
        *c = StageClocks::default();
    }
}

impl WorkerCounters {
    /// Publish (and clear) the SVR counters of a burst. Called by the owning worker only.
    pub fn publish_svr(&self, c: &mut SvrCounters) {
        for r in SvrDrop::ALL {
            add(&self.svr_drops[r as usize], c.drops.get(r));
        }
        for (a, &v) in self.metadata_drops.iter().zip(c.metadata.iter()) {
            add(a, v);
        }
        for e in SvrEvent::ALL {
            add(&self.svr_events[e as usize], c.events.get(e));
        }
        c.clear();
    }
}

/// Renders the report printed on SIGUSR1 and at exit: one `name=value` per line, every drop
/// reason listed (zeros too), so that scripts can grep a stable set of names.
pub fn report(
    router: &str,
    ports: &[(String, dpdk_ffi::PortStats)],
    ring_drops: &[u64],
    workers: &[&WorkerCounters],
    slow: &[(&'static str, u64)],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "svrd: counters {router}");
    for (i, (name, s)) in ports.iter().enumerate() {
        // rx-ring-drops: frames an af_packet port's kernel ring dropped (DPDK's imissed
        // does not count them for that driver).
        let _ = writeln!(
            out,
            "port {name}: rx-packets={} tx-packets={} rx-bytes={} tx-bytes={} rx-missed={} rx-errors={} tx-errors={} rx-nombuf={} rx-ring-drops={}",
            s.ipackets, s.opackets, s.ibytes, s.obytes, s.imissed, s.ierrors, s.oerrors, s.rx_nombuf,
            ring_drops.get(i).copied().unwrap_or(0)
        );
    }
    for (i, w) in workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "worker {i}: rx={} forwarded={} punted={} injected={} tx={} tx-unsent={} punt-ring-full={} punt-bfd-ring-full={}",
            w.rx.load(Relaxed),
            w.forwarded.load(Relaxed),
            w.punted.load(Relaxed),
            w.injected.load(Relaxed),
            w.tx.load(Relaxed),
            w.tx_unsent.load(Relaxed),
            w.punt_ring_full.load(Relaxed),
            w.punt_bfd_ring_full.load(Relaxed),
        );
        // Clocks per packet of each stage; `total` is their sum (the cost of one packet).
        let mut line = format!("worker {i}: clocks-per-packet");
        let mut total = 0.0;
        for st in Stage::ALL {
            let cyc = w.stage_cycles[st as usize].load(Relaxed) as f64;
            let pk = w.stage_packets[st as usize].load(Relaxed).max(1) as f64;
            total += cyc / pk;
            let _ = write!(line, " {}={:.1}", st.name(), cyc / pk);
        }
        let _ = writeln!(out, "{line} total={total:.1} tsc-hz={}", dpdk_ffi::tsc_hz());
    }
    for reason in DropReason::ALL {
        let total: u64 = workers
            .iter()
            .map(|w| w.drops[reason as usize].load(Relaxed))
            .sum();
        let _ = writeln!(out, "drop {}={total}", reason.name());
    }
    let sum = |f: &dyn Fn(&WorkerCounters) -> u64| -> u64 { workers.iter().map(|w| f(w)).sum() };
    let _ = writeln!(
        out,
        "drop punt_ring_full={}",
        sum(&|w| w.punt_ring_full.load(Relaxed))
    );
    let _ = writeln!(
        out,
        "drop punt_bfd_ring_full={}",
        sum(&|w| w.punt_bfd_ring_full.load(Relaxed))
    );
    for r in SvrDrop::ALL {
        let total = sum(&|w| w.svr_drops[r as usize].load(Relaxed));
        let _ = writeln!(out, "drop {}={total}", r.name());
    }
    for (i, name) in MetadataError::NAMES.iter().enumerate() {
        let total = sum(&|w| w.metadata_drops[i].load(Relaxed));
        let _ = writeln!(out, "drop {name}={total}");
    }
    for e in SvrEvent::ALL {
        let total = sum(&|w| w.svr_events[e as usize].load(Relaxed));
        let _ = writeln!(out, "svr {}={total}", e.name());
    }
    for (name, value) in slow {
        let _ = writeln!(out, "slowpath {name}={value}");
    }
    out
}

/// Slow-path counters that are levels, not counts.
const SLOW_GAUGES: [&str; 3] = ["peer_paths", "peer_paths_in_service", "svr_sessions_live"];

/// Every counter as one tree of dotted names, for `svrctl show stats` and `/metrics`: the
/// same numbers as [`report`], per-worker values summed where the report sums them.
///
/// `port.<interface>.<rx_packets|tx_packets|rx_bytes|tx_bytes|rx_missed|rx_errors|tx_errors|rx_nombuf>`,
/// `worker.<i>.<counter>` and `worker.<i>.stage.<stage>.<cycles|packets>`,
/// `drop.<reason>` (every reason, zeros too), `svr.<event>`, `slowpath.<counter>`.
pub fn stats(
    ports: &[(String, dpdk_ffi::PortStats)],
    workers: &[&WorkerCounters],
    slow: &[(&'static str, u64)],
) -> Vec<svr_mgmt::model::Stat> {
    use svr_mgmt::model::Stat;
    let mut v = Vec::with_capacity(256);
    for (name, s) in ports {
        for (field, value) in [
            ("rx_packets", s.ipackets),
            ("tx_packets", s.opackets),
            ("rx_bytes", s.ibytes),
            ("tx_bytes", s.obytes),
            ("rx_missed", s.imissed),
            ("rx_errors", s.ierrors),
            ("tx_errors", s.oerrors),
            ("rx_nombuf", s.rx_nombuf),
        ] {
            v.push(Stat::counter(format!("port.{name}.{field}"), value));
        }
    }
    for (i, w) in workers.iter().enumerate() {
        for (field, c) in [
            ("rx", &w.rx),
            ("forwarded", &w.forwarded),
            ("punted", &w.punted),
            ("injected", &w.injected),
            ("tx", &w.tx),
            ("tx_unsent", &w.tx_unsent),
            ("punt_ring_full", &w.punt_ring_full),
            ("punt_bfd_ring_full", &w.punt_bfd_ring_full),
        ] {
            v.push(Stat::counter(
                format!("worker.{i}.{field}"),
                c.load(Relaxed),
            ));
        }
        for st in Stage::ALL {
            let (c, p) = (
                w.stage_cycles[st as usize].load(Relaxed),
                w.stage_packets[st as usize].load(Relaxed),
            );
            v.push(Stat::counter(
                format!("worker.{i}.stage.{}.cycles", st.name()),
                c,
            ));
            v.push(Stat::counter(
                format!("worker.{i}.stage.{}.packets", st.name()),
                p,
            ));
        }
    }
    let sum = |f: &dyn Fn(&WorkerCounters) -> u64| -> u64 { workers.iter().map(|w| f(w)).sum() };
    for reason in DropReason::ALL {
        let n = sum(&|w| w.drops[reason as usize].load(Relaxed));
        v.push(Stat::counter(format!("drop.{}", reason.name()), n));
    }
    v.push(Stat::counter(
        "drop.punt_ring_full",
        sum(&|w| w.punt_ring_full.load(Relaxed)),
    ));
    v.push(Stat::counter(
        "drop.punt_bfd_ring_full",
        sum(&|w| w.punt_bfd_ring_full.load(Relaxed)),
    ));
    for r in SvrDrop::ALL {
        let n = sum(&|w| w.svr_drops[r as usize].load(Relaxed));
        v.push(Stat::counter(format!("drop.{}", r.name()), n));
    }
    for (i, name) in MetadataError::NAMES.iter().enumerate() {
        let n = sum(&|w| w.metadata_drops[i].load(Relaxed));
        v.push(Stat::counter(format!("drop.{name}"), n));
    }
    for e in SvrEvent::ALL {
        let n = sum(&|w| w.svr_events[e as usize].load(Relaxed));
        v.push(Stat::counter(format!("svr.{}", e.name()), n));
    }
    for (name, value) in slow {
        let full = format!("slowpath.{name}");
        v.push(if SLOW_GAUGES.contains(name) {
            Stat::gauge(full, *value)
        } else {
            Stat::counter(full, *value)
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_sum_workers_and_name_every_drop_reason() {
        let a = WorkerCounters::default();
        let b = WorkerCounters::default();
        a.rx.store(3, Relaxed);
        b.rx.store(4, Relaxed);
        a.drops[DropReason::ALL[0] as usize].store(2, Relaxed);
        b.drops[DropReason::ALL[0] as usize].store(5, Relaxed);
        let port = dpdk_ffi::PortStats {
            ipackets: 9,
            ..Default::default()
        };
        let s = stats(
            &[("wan".into(), port)],
            &[&a, &b],
            &[("bfd_rx", 1), ("peer_paths", 2)],
        );
        let get = |n: &str| s.iter().find(|x| x.name == n).map(|x| (x.value, x.kind));
        use svr_mgmt::model::StatKind::*;
        assert_eq!(get("port.wan.rx_packets"), Some((9, Counter)));
        assert_eq!(get("worker.0.rx"), Some((3, Counter)));
        assert_eq!(get("worker.1.rx"), Some((4, Counter)));
        assert_eq!(
            get(&format!("drop.{}", DropReason::ALL[0].name())),
            Some((7, Counter))
        );
        assert_eq!(get("slowpath.bfd_rx"), Some((1, Counter)));
        assert_eq!(get("slowpath.peer_paths"), Some((2, Gauge)));
        // Every drop reason is there, zeros too.
        let drops = s.iter().filter(|x| x.name.starts_with("drop.")).count();
        assert_eq!(
            drops,
            DropReason::COUNT + 2 + SvrDrop::COUNT + MetadataError::COUNT
        );
        // Names are unique.
        let mut names: Vec<&str> = s.iter().map(|x| x.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), s.len());
    }
}
