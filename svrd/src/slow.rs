//! The slow-path thread: the only place in svrd that reads the clock.
//!
//! It drains the punt rings (the peer-control ring with BFD and key exchange first, then the
//! ring of everything else, one burst of each per loop), feeds each frame to the sans-IO [`SlowPath`] with `now`, fires its
//! timers, copies the frames it wants sent into fresh mbufs and hands them to the workers
//! through their inject rings, and publishes the neighbour table when it changes. It never
//! waits on a worker: a full inject ring or an empty mempool is a counted drop.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use dpdk_ffi::{Mbuf, MbufBurst, Mempool, Port, Ring};
use fastpath::forward::{NeighborSnapshot, PuntReason};
use fastpath::svr_path::{SessionMoveEvent, SvrShared};
use fastpath::time::Instant;
use slowpath::{Event, SlowPath};

use crate::counters::{self, WorkerCounters};
use crate::zt::ZeroTrust;

/// What the report needs to read: port handles, worker counters.
pub struct Reporter {
    pub router: String,
    pub ports: Vec<(String, Port)>,
    pub workers: Vec<Arc<WorkerCounters>>,
    /// Per port (same order): its kernel interface index when it is a `net_af_packet` port,
    /// and the frames the kernel dropped on its RX ring before a poll saw them.
    pub ring_drops: Vec<(Option<u32>, AtomicU64)>,
}

impl Reporter {
    pub fn render(&self, slow: &[(&'static str, u64)]) -> String {
        let ports: Vec<_> = self
            .ports
            .iter()
            .map(|(n, p)| (n.clone(), p.stats().unwrap_or_default()))
            .collect();
        let workers: Vec<&WorkerCounters> = self.workers.iter().map(|w| w.as_ref()).collect();
        let ring: Vec<u64> = self
            .ring_drops
            .iter()
            .map(|(_, d)| d.load(Relaxed))
            .collect();
        counters::report(&self.router, &ports, &ring, &workers, slow)
    }

    /// Adds the kernel's af_packet ring drops since the last call to each port's count.
    pub fn poll_ring_drops(&self) {
        if self.ring_drops.iter().all(|(i, _)| i.is_none()) {
            return;
        }
        let drops = dpdk_ffi::af_packet::take_ring_drops();
        for (index, count) in &self.ring_drops {
            if let Some(d) = index.and_then(|i| drops.get(&i)) {
                count.fetch_add(*d, Relaxed);
            }
        }
    }
}

/// Counters of the thread itself (the state machine keeps its own).
#[derive(Default)]
struct ThreadCounters {
    punted_frames: u64,
    /// Of `punted_frames`, those from the peer-control ring (BFD, key exchange).
    punted_control_frames: u64,
    bad_punt_tag: u64,
    transmit_alloc_failed: u64,
    transmit_too_big: u64,
    inject_ring_full: u64,
    injected: u64,
    sessions_expired: u64,
    /// Loops that came more than `STALL` after the previous one.
    stalls: u64,
}

pub struct SlowThread {
    pub slow: SlowPath,
    pub punt: Arc<Ring>,
    /// BFD and key exchange of the peer paths, served before `punt`.
    pub punt_control: Arc<Ring>,
    pub inject: Vec<Arc<Ring>>,
    pub mempool: Arc<Mempool>,
    pub neighbors: Arc<ArcSwap<NeighborSnapshot>>,
    pub stop: Arc<AtomicBool>,
    pub dump: Arc<AtomicBool>,
    pub reporter: Arc<Reporter>,
    /// The SVR data plane, whose expired sessions this thread reclaims.
    pub svr: Option<Arc<SvrShared>>,
    /// BFD and key management of the peer paths (enhanced security key management).
    pub zt: Option<ZeroTrust>,
    /// Monotonic nanoseconds for the workers, written here once per loop.
    pub clock: Arc<AtomicU64>,
    /// The workers' session moves, logged as `session-path-change` events.
    pub moves: Receiver<SessionMoveEvent>,
    /// Where DPDK telemetry's `/svr/...` commands read from (`eal.telemetry`).
    pub telemetry: Option<Arc<crate::telemetry::Published>>,
    /// What the management threads read of this thread's state, republished every
    /// [`crate::mgmt::VIEW_EVERY`].
    pub view: Arc<ArcSwap<crate::mgmt::SlowView>>,
    /// Actions from the control socket (bounded; polled without waiting).
    pub actions: std::sync::mpsc::Receiver<crate::mgmt::Action>,
    /// The running configuration; `reload` and SIGHUP replace it.
    pub reload: crate::reload::Reloader,
}

impl SlowThread {
    const IDLE_SLEEP: Duration = Duration::from_micros(200);
    /// Session-table entries the sweeper looks at per loop: small, so a loop stays short;
    /// at ≥ 1 loop per 200 µs + work, 65536 entries are visited in well under a second.
    const SWEEP_BUDGET: usize = 256;
    /// How often port links are read (interface state changes feed the slow path and key
    /// management).
    const LINK_POLL: Duration = Duration::from_secs(1);
    /// A loop gap worth reporting (BFD detection times are a few hundred ms and up).
    const STALL: Duration = Duration::from_millis(250);
    /// How often the telemetry snapshot is refreshed without a client asking.
    const SNAPSHOT: Duration = Duration::from_secs(1);

    /// Runs until `stop`; returns the final counter report.
    pub fn run(mut self) -> String {
        let epoch = std::time::Instant::now();
        let now = move || {
            Instant::from_nanos(u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
        };
        let mut burst = MbufBurst::new();
        let mut tc = ThreadCounters::default();
        let mut next_worker = 0usize;
        let mut sweep_cursor = 0usize;
        let mut swept = 0u64;
        let mut links: Vec<Option<bool>> = vec![None; self.reporter.ports.len()];
        let mut next_link_poll = Instant::from_nanos(0);
        let mut next_snapshot = Instant::from_nanos(0);
        let mut next_view = Instant::from_nanos(0);
        let mut last_loop = now();
        while !self.stop.load(Relaxed) {
            let t = now();
            self.clock.store(t.as_nanos(), Relaxed);
            // This thread runs BFD: a long gap between two loops (the thread was not
            // scheduled, or blocked) makes peers' paths time out. Say so, once per gap.
            let gap = t.saturating_duration_since(last_loop);
            if gap > Self::STALL {
                tc.stalls += 1;
                log::warn!("event=slow-path-stall gap-ms={}", gap.as_millis());
            }
            last_loop = t;
            if let Some(svr) = &self.svr {
                swept += svr.sweep(&mut sweep_cursor, t, Self::SWEEP_BUDGET) as u64;
            }
            tc.sessions_expired = swept;
            if self.dump.swap(false, Relaxed) {
                print!("{}", self.render(&tc));
            }
            if let Some(p) = &self.telemetry {
                if p.wanted() || t >= next_snapshot {
                    next_snapshot = t + Self::SNAPSHOT;
                    p.publish(self.snapshot(&tc, t));
                }
            }
            if t >= next_link_poll {
                next_link_poll = t + Self::LINK_POLL;
                self.poll_links(t, &mut links);
            }
            // Peer control first: a backlog of other punts never delays BFD. Each ring gives at
            // most one burst per loop, so neither starves the other or the timers below.
            let t = now();
            let nc = self.punt_control.dequeue_burst(&mut burst);
            tc.punted_control_frames += nc as u64;
            self.handle_punts(t, &mut burst, &mut tc);
            let t = now();
            let n = nc + self.punt.dequeue_burst(&mut burst);
            self.handle_punts(t, &mut burst, &mut tc);
            if self
                .slow
                .poll_timeout()
                .is_some_and(|deadline| deadline <= t)
            {
                self.slow.handle_timeout(t);
            }
            while let Ok(a) = self.actions.try_recv() {
                match a {
                    crate::mgmt::Action::RekeyPeer { peer, reply } => {
                        let r = match self.zt.as_mut() {
                            Some(zt) => zt.rekey_peer(t, &peer),
                            None => Err(svr_mgmt::MgmtError::Refused(
                                "no key management on this router".into(),
                            )),
                        };
                        let _ = reply.try_send(r);
                    }
                    crate::mgmt::Action::Reload { path, reply } => {
                        let r = self.reload(t, path, crate::reload::By::ControlSocket);
                        let _ = reply.try_send(r);
                        // Its event and counters show at once.
                        next_view = t;
                    }
                }
            }
            if self.reload.take_signal() {
                // The outcome is logged and kept as an event.
                let _ = self.reload(t, None, crate::reload::By::Signal);
                next_view = t;
            }
            if let Some(zt) = self.zt.as_mut() {
                zt.drive(t, &mut self.slow);
            }
            if t >= next_view {
                next_view = t + crate::mgmt::VIEW_EVERY;
                self.publish_view(t, &tc);
            }
            while let Some(tx) = self.slow.poll_transmit() {
                self.transmit(tx.port, &tx.frame, &mut tc, &mut next_worker);
            }
            let mut changed = false;
            while let Some(ev) = self.slow.poll_event() {
                if matches!(ev, Event::NeighborsChanged) {
                    changed = true;
                } else {
                    log::info!("{ev}");
                }
            }
            if changed {
                self.neighbors.store(Arc::new(self.slow.neighbors()));
            }
            self.log_moves();
            if n == 0 {
                std::thread::sleep(Self::IDLE_SLEEP);
            }
        }
        self.render(&tc)
    }

    /// Reloads the configuration (see [`crate::reload`]).
    fn reload(
        &mut self,
        now: Instant,
        path: Option<std::path::PathBuf>,
        by: crate::reload::By,
    ) -> Result<serde_json::Value, svr_mgmt::MgmtError> {
        self.reload.reload(
            now,
            path,
            by,
            crate::reload::Parts {
                slow: &mut self.slow,
                neighbors: &self.neighbors,
                svr: self.svr.as_deref(),
                zt: self.zt.as_mut(),
            },
        )
    }

    /// One `event=session-path-change` line per session move the workers made (the log
    /// writer rate-limits them per peer, path and reason, so a mass move costs a few lines).
    fn log_moves(&self) {
        let Some(svr) = &self.svr else { return };
        while let Ok(e) = self.moves.try_recv() {
            let path = |i: usize| {
                svr.pairs()
                    .get(i)
                    .map_or_else(|| "-".to_string(), |p| format!("{}->{}", p.local, p.remote))
            };
            let peer = svr
                .cfg
                .peers
                .get(usize::from(e.peer))
                .map_or("-", |p| p.name.as_str());
            log::info!(
                "peer={peer} path={} event=session-path-change reason={} session={} to={}",
                path(e.from_pair),
                e.reason,
                uuid_text(&e.uuid),
                path(e.to_pair),
            );
        }
    }

    /// Feeds the punted frames of `burst` to key management or the slow path, and frees them.
    fn handle_punts(&mut self, t: Instant, burst: &mut MbufBurst, tc: &mut ThreadCounters) {
        while let Some(m) = burst.pop_front() {
            tc.punted_frames += 1;
            match PuntReason::from_u8(m.tag() as u8) {
                // The worker put the MTU to report in the tag's upper 16 bits.
                Some(PuntReason::MtuExceeded) if m.tag() >> 16 != 0 => {
                    self.slow
                        .handle_too_big(t, m.port(), m.data(), (m.tag() >> 16) as u16)
                }
                // BFD of a peer path (UDP 1280 to one of our waypoints).
                Some(PuntReason::Local)
                    if self
                        .zt
                        .as_mut()
                        .is_some_and(|zt| zt.handle_frame(t, m.data())) => {}
                Some(reason) => self.slow.handle_frame(t, m.port(), reason, m.data()),
                None => tc.bad_punt_tag += 1,
            }
        }
    }

    /// Publishes what the management threads show (a few allocations every 500 ms).
    fn publish_view(&self, now: Instant, tc: &ThreadCounters) {
        let (peers, mut events) = match &self.zt {
            Some(zt) => zt.mgmt_view(now),
            None => (Vec::new(), Vec::new()),
        };
        events.extend(self.reload.events());
        // Stable: events of one millisecond keep their order.
        events.sort_by_key(|e| e.unix_ms);
        self.view.store(Arc::new(crate::mgmt::SlowView {
            counters: self.counter_list(tc),
            peers,
            events,
        }));
    }

    /// The counter report, then key management's state and latest events.
    fn render(&self, tc: &ThreadCounters) -> String {
        let mut out = self.reporter.render(&self.counter_list(tc));
        if let Some(zt) = &self.zt {
            let per_pair = self
                .svr
                .as_ref()
                .map(|svr| svr.sessions_per_pair())
                .unwrap_or_default();
            let sessions = |local, remote| {
                let pairs = self.svr.as_ref()?.pairs();
                let i = pairs
                    .iter()
                    .position(|p| p.local == local && p.remote == remote)?;
                per_pair.get(i).copied()
            };
            out.push_str(&zt.report(&sessions));
        }
        out
    }

    /// The state DPDK telemetry shows (`crate::telemetry`): the report's counters, the
    /// peers and the sessions per waypoint pair.
    fn snapshot(&self, tc: &ThreadCounters, now: Instant) -> crate::telemetry::Snapshot {
        let report = self.reporter.render(&self.counter_list(tc));
        let (pairs, live) = match &self.svr {
            Some(svr) => {
                let pairs = svr
                    .pairs()
                    .iter()
                    .zip(svr.sessions_per_pair())
                    .map(|(p, (i, e))| (p.local, p.remote, i, e))
                    .collect::<Vec<_>>();
                (pairs, svr.table.len() as u64)
            }
            None => (Vec::new(), 0),
        };
        let sessions = |local, remote| {
            pairs
                .iter()
                .find(|p| p.0 == local && p.1 == remote)
                .map(|p| (p.2, p.3))
        };
        crate::telemetry::Snapshot {
            generation: 0,
            uptime_ms: now.as_nanos() / 1_000_000,
            stats: crate::telemetry::stats_from_report(&report),
            peers: self
                .zt
                .as_ref()
                .map(|zt| zt.peer_states(&sessions))
                .unwrap_or_default(),
            live_sessions: live,
            pairs: pairs
                .iter()
                .map(|(l, r, i, e)| (format!("{l}->{r}"), *i, *e))
                .collect(),
        }
    }

    /// Reads every port's link; a change goes to the slow path (neighbour flush) and to key
    /// management (a peer without valid keys retries at once).
    fn poll_links(&mut self, now: Instant, links: &mut [Option<bool>]) {
        self.reporter.poll_ring_drops();
        for (i, (name, port)) in self.reporter.ports.iter().enumerate() {
            let Ok(link) = port.link() else { continue };
            let was = links[i].replace(link.up);
            if was.is_some_and(|w| w != link.up) {
                log::info!(
                    "event=interface-{} interface={name}",
                    if link.up { "up" } else { "down" }
                );
                self.slow.interface_state_changed(now, port.id(), link.up);
                if let Some(zt) = self.zt.as_mut() {
                    zt.interface_state_changed(now);
                }
            }
        }
    }

    fn transmit(&self, port: u16, frame: &[u8], tc: &mut ThreadCounters, next_worker: &mut usize) {
        let Some(mut m) = self.mempool.alloc() else {
            tc.transmit_alloc_failed += 1;
            return;
        };
        match m.append(frame.len()) {
            Ok(buf) => buf.copy_from_slice(frame),
            Err(_) => {
                tc.transmit_too_big += 1;
                return;
            }
        }
        m.set_port(port);
        let ring = &self.inject[*next_worker % self.inject.len()];
        *next_worker = next_worker.wrapping_add(1);
        match ring.enqueue(m) {
            Ok(()) => tc.injected += 1,
            Err(m) => {
                drop::<Mbuf>(m);
                tc.inject_ring_full += 1;
            }
        }
    }

    fn counter_list(&self, tc: &ThreadCounters) -> Vec<(&'static str, u64)> {
        let mut v = vec![
            ("punted_frames", tc.punted_frames),
            ("punted_control_frames", tc.punted_control_frames),
            ("bad_punt_tag", tc.bad_punt_tag),
            ("transmit_alloc_failed", tc.transmit_alloc_failed),
            ("transmit_too_big", tc.transmit_too_big),
            ("inject_ring_full", tc.inject_ring_full),
            ("injected", tc.injected),
            ("svr_sessions_expired", tc.sessions_expired),
            ("slow_path_stalls", tc.stalls),
        ];
        v.extend(self.reload.counter_list());
        if let Some(svr) = &self.svr {
            v.push(("svr_sessions_live", svr.table.len() as u64));
        }
        v.extend(self.slow.counters().iter());
        if let Some(zt) = &self.zt {
            v.extend(zt.counter_list());
        }
        v
    }
}

/// A session UUID as 8-4-4-4-12 hex.
pub(crate) fn uuid_text(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
