//! Two routers' coordinators back to back on virtual time (quinn-proto's `Pair`): every
//! transmit crosses an in-memory wire with a latency; a test can cut a path in one direction,
//! rewrite packets in flight, inject its own, or replay what it recorded.

#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use fastpath::time::Instant;
use rand::rngs::StdRng;
use rand::SeedableRng;
use svr_bfd::BfdConfig;
use svr_keymgmt::pki::{generate_authority, issue_router, AuthorityPems, Validity};
use svr_keymgmt::{Identity, KeyConfig, KeyStats, PeerSetup, TrustAnchor};
use svr_peering::{Event, EventKind, LinkConfig, PathSpec, PeerCoordinator, PeerSpec, Publish};

pub const UNIX0: u64 = 1_800_000_000;
pub const A: &str = "router-a";
pub const B: &str = "router-b";
/// Paths of router-a (local, remote); router-b has them mirrored, same indices.
pub const PATHS: [(&str, &str); 2] = [("10.9.0.1", "10.9.0.2"), ("fd00:9::1", "fd00:9::2")];

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

pub struct Pki {
    pub auth: AuthorityPems,
    pub anchor: Arc<TrustAnchor>,
    pub a: Arc<Identity>,
    pub b: Arc<Identity>,
}

/// One authority and both routers' identities, made once (rcgen, as keymgmt's tests do).
pub fn pki() -> &'static Pki {
    static P: OnceLock<Pki> = OnceLock::new();
    P.get_or_init(|| {
        let auth = generate_authority("acme", Validity::days_from(UNIX0 - 86_400, 3650)).unwrap();
        let anchor = Arc::new(TrustAnchor::load(auth.root_cert_pem.as_bytes()).unwrap());
        let id = |name: &str| {
            let r = issue_router(
                &auth.intermediate_cert_pem,
                &auth.intermediate_key_pem,
                name,
                Validity::days_from(UNIX0, 365),
            )
            .unwrap();
            Arc::new(Identity::load(r.cert_chain_pem.as_bytes(), r.key_pem.as_bytes()).unwrap())
        };
        let a = id(A);
        let b = id(B);
        Pki { auth, anchor, a, b }
    })
}

/// Settings of both routers.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub keys: KeyConfig,
    pub bfd: BfdConfig,
    pub time_scale: u32,
    /// Link test of every path (both sides).
    pub link: LinkConfig,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            keys: KeyConfig::default(),
            bfd: BfdConfig::default(),
            time_scale: 1,
            link: LinkConfig::default(),
        }
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// router-a's (`is_a`) or router-b's coordinator, one peer (the other), both paths.
pub fn coordinator(now: Instant, is_a: bool, s: &Setup, seed: u64) -> PeerCoordinator {
    let (me, peer, id) = if is_a {
        (A, B, pki().a.clone())
    } else {
        (B, A, pki().b.clone())
    };
    let peers = vec![PeerSpec {
        name: peer.into(),
        setup: PeerSetup {
            local_name: me.into(),
            peer_name: peer.into(),
            config: s.keys,
            software_version: svr_keymgmt::SoftwareVersion::this_build(),
        },
        identity: id,
        anchor: pki().anchor.clone(),
        rng: Box::new(StdRng::seed_from_u64(seed)),
    }];
    let paths: Vec<PathSpec> = PATHS
        .iter()
        .enumerate()
        .map(|(i, (l, r))| {
            let (local, remote) = if is_a { (ip(l), ip(r)) } else { (ip(r), ip(l)) };
            PathSpec {
                peer: 0,
                local,
                remote,
                bfd: s.bfd,
                // Differs per side and per restart (the seed).
                discriminator: ((seed as u32) << 8) | (u32::from(is_a) << 4) | (i as u32 + 1),
                jitter_seed: seed * 31 + i as u64,
                link: s.link,
            }
        })
        .collect();
    PeerCoordinator::new(now, s.time_scale, peers, &paths).unwrap()
}

/// A datagram one side sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub at: Instant,
    pub path: usize,
    pub payload: Vec<u8>,
    pub block: bool,
    /// A link-test probe or reflection, not BFD.
    pub link: bool,
}

pub struct Side {
    pub co: PeerCoordinator,
    pub events: Vec<(Instant, Event)>,
    pub publishes: Vec<(Instant, Publish)>,
    pub sent: Vec<Sent>,
    /// Paths cut in the direction away from this side.
    pub cut: [bool; PATHS.len()],
}

impl Side {
    fn new(co: PeerCoordinator) -> Side {
        Side {
            co,
            events: Vec::new(),
            publishes: Vec::new(),
            sent: Vec::new(),
            cut: [false; PATHS.len()],
        }
    }

    pub fn in_service(&self, path: usize) -> bool {
        self.co.path(path).unwrap().in_service
    }

    pub fn all_in_service(&self) -> bool {
        (0..self.co.path_count()).all(|p| self.in_service(p))
    }

    pub fn count(&self, f: impl Fn(&EventKind) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(&e.kind)).count()
    }

    /// Path-service publishes that took a path out of service at or after `since`.
    pub fn out_of_service_since(&self, since: Instant) -> Vec<(Instant, usize)> {
        self.publishes
            .iter()
            .filter_map(|(t, p)| match p {
                Publish::PathService {
                    path,
                    in_service: false,
                    ..
                } if *t >= since => Some((*t, *path)),
                _ => None,
            })
            .collect()
    }

    /// Everything the coordinator and its state machines counted as refused input.
    pub fn rejections(&self) -> u64 {
        let c = self.co.counters();
        let mut n = c.bfd_rx_discarded + c.bfd_rx_unknown_path;
        for p in 0..self.co.path_count() {
            n += self
                .co
                .path(p)
                .unwrap()
                .bfd
                .stats()
                .rx_discarded
                .iter()
                .sum::<u64>();
        }
        for p in 0..self.co.peer_count() {
            n += key_rejections(self.co.peer(p).unwrap().keys.stats());
        }
        n
    }

    /// Latest genuine BFD payload this side sent on `path`.
    pub fn last_sent(&self, path: usize) -> &Sent {
        self.sent
            .iter()
            .rev()
            .find(|s| s.path == path && !s.link)
            .unwrap()
    }

    /// Link-test payloads (probes and reflections) this side sent on `path` at or after
    /// `since`.
    pub fn link_sent_since(&self, path: usize, since: Instant) -> usize {
        self.sent
            .iter()
            .filter(|s| s.path == path && s.link && s.at >= since)
            .count()
    }
}

pub fn key_rejections(s: &KeyStats) -> u64 {
    s.total_dropped()
        + s.certificate_rejected
        + s.bad_signature
        + s.missing_certificate
        + s.unsupported
        + s.stale
}

struct Flight {
    at: Instant,
    to_b: bool,
    path: usize,
    payload: Vec<u8>,
}

/// Rewrites (or drops, with `None`) a datagram in flight: (to_b, path, payload).
pub type Mitm = Box<dyn FnMut(bool, usize, Vec<u8>) -> Option<Vec<u8>>>;

pub struct Pair {
    pub time: Instant,
    /// One-way delay of every path without its own ([`Pair::path_delay`]).
    pub latency: Duration,
    /// One-way delay of a path (both directions), overriding `latency`.
    pub path_delay: [Option<Duration>; PATHS.len()],
    /// Loss of a path, per mille, of every datagram towards router-b (seeded,
    /// deterministic): each side's link test then sees that loss once per round trip.
    pub path_loss_per_mille: [u32; PATHS.len()],
    /// Datagrams lost to `path_loss_per_mille`.
    pub lost: u64,
    rng: u64,
    pub setup: Setup,
    pub a: Side,
    pub b: Side,
    pub mitm: Option<Mitm>,
    flights: Vec<Flight>,
    buf: Vec<u8>,
    /// Datagrams delivered (both ways).
    pub delivered: u64,
}

impl Pair {
    pub fn new(setup: Setup) -> Pair {
        let mut p = Pair {
            time: Instant::ZERO,
            latency: ms(5),
            path_delay: [None; PATHS.len()],
            path_loss_per_mille: [0; PATHS.len()],
            lost: 0,
            rng: 0x2545_f491_4f6c_dd1d,
            setup,
            a: Side::new(coordinator(Instant::ZERO, true, &setup, 1)),
            b: Side::new(coordinator(Instant::ZERO, false, &setup, 2)),
            mitm: None,
            flights: Vec::new(),
            buf: vec![0; 9000],
            delivered: 0,
        };
        p.flush();
        p
    }

    pub fn unix(&self) -> u64 {
        UNIX0 + self.time.as_nanos() / 1_000_000_000
    }

    /// Replaces router-b with a fresh coordinator (a restart): what was in flight to it is
    /// lost.
    pub fn restart_b(&mut self, seed: u64) {
        self.b = Side::new(coordinator(self.time, false, &self.setup, seed));
        self.flights.clear();
        self.flush();
    }

    /// Delivers `payload` to router-a (`to_b` false) or router-b on `path` now, as if from
    /// the other side's waypoint; then runs the outputs.
    pub fn inject(&mut self, to_b: bool, path: usize, payload: &[u8]) {
        let unix = self.unix();
        let side = if to_b { &mut self.b } else { &mut self.a };
        let pv = side.co.path(path).unwrap();
        let (l, r) = (pv.local, pv.remote);
        let _ = side.co.handle_bfd_datagram(self.time, unix, l, r, payload);
        self.flush();
    }

    /// Polls both sides' outputs until quiet.
    pub fn flush(&mut self) {
        let now = self.time;
        for _ in 0..1000 {
            let mut moved = false;
            for to_b in [true, false] {
                let side = if to_b { &mut self.a } else { &mut self.b };
                while let Some(t) = side.co.poll_transmit(now, &mut self.buf) {
                    moved = true;
                    let payload = self.buf[..t.len].to_vec();
                    side.sent.push(Sent {
                        at: now,
                        path: t.path,
                        payload: payload.clone(),
                        block: t.carries_block,
                        link: t.link_probe,
                    });
                    if side.cut[t.path] {
                        continue;
                    }
                    let loss = if to_b {
                        self.path_loss_per_mille[t.path]
                    } else {
                        0
                    };
                    if loss > 0 {
                        // xorshift64: the same losses on every run.
                        self.rng ^= self.rng << 13;
                        self.rng ^= self.rng >> 7;
                        self.rng ^= self.rng << 17;
                        if self.rng % 1000 < u64::from(loss) {
                            self.lost += 1;
                            continue;
                        }
                    }
                    let payload = match self.mitm.as_mut() {
                        Some(m) => match m(to_b, t.path, payload) {
                            Some(p) => p,
                            None => continue,
                        },
                        None => payload,
                    };
                    self.flights.push(Flight {
                        at: now + self.path_delay[t.path].unwrap_or(self.latency),
                        to_b,
                        path: t.path,
                        payload,
                    });
                }
                while let Some(p) = side.co.poll_publish() {
                    side.publishes.push((now, p));
                }
                while let Some(e) = side.co.poll_event() {
                    side.events.push((now, e));
                }
            }
            if !moved {
                return;
            }
        }
        panic!("livelock: still transmitting after 1000 rounds at {now}");
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let f = self.flights.iter().map(|f| f.at).min();
        [self.a.co.poll_timeout(), self.b.co.poll_timeout(), f]
            .into_iter()
            .flatten()
            .min()
    }

    fn deliver_due(&mut self) {
        let now = self.time;
        let unix = self.unix();
        // Delays differ per path: the earliest due first, in send order among equals.
        while let Some(i) = self
            .flights
            .iter()
            .enumerate()
            .filter(|(_, f)| f.at <= now)
            .min_by_key(|(i, f)| (f.at, *i))
            .map(|(i, _)| i)
        {
            let f = self.flights.remove(i);
            let side = if f.to_b { &mut self.b } else { &mut self.a };
            let pv = side.co.path(f.path).unwrap();
            let (l, r) = (pv.local, pv.remote);
            let _ = side.co.handle_bfd_datagram(now, unix, l, r, &f.payload);
            self.delivered += 1;
        }
    }

    /// Runs both routers until `end` (virtual time).
    pub fn run_until(&mut self, end: Instant) {
        self.flush();
        while let Some(t) = self.next_wakeup().filter(|&t| t <= end) {
            self.time = t.max(self.time);
            self.deliver_due();
            self.a.co.handle_timeout(self.time);
            self.b.co.handle_timeout(self.time);
            self.flush();
        }
        self.time = end.max(self.time);
        self.a.co.handle_timeout(self.time);
        self.b.co.handle_timeout(self.time);
        self.flush();
    }

    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.time + d);
    }

    /// Runs until both routers have every path in service; panics after `limit`.
    pub fn run_until_in_service(&mut self, limit: Duration) {
        let end = self.time + limit;
        while !(self.a.all_in_service() && self.b.all_in_service()) {
            assert!(
                self.time < end,
                "not in service by {end}: a {:?} / b {:?}",
                self.a
                    .events
                    .iter()
                    .map(|(t, e)| format!("{t} {e}"))
                    .collect::<Vec<_>>(),
                self.b
                    .events
                    .iter()
                    .map(|(t, e)| format!("{t} {e}"))
                    .collect::<Vec<_>>()
            );
            self.run_for(ms(100));
        }
    }
}
