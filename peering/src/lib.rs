//! The peer coordinator of zero-trust key management, sans-IO: BFD on every peer path, the
//! key exchange riding behind its control packets, and the decisions svrd used to make
//! inline (issue 13, "The coordinator becomes sans-IO").
//!
//! ```text
//!   UDP payload (port 1280) ──▶ handle_bfd_datagram ──▶ BfdSession (one per peer path)
//!                                                        └ block ▶ PeerKeyState (one per peer)
//!   handle_timeout / interface_state_changed ──────────▶ timers of both
//!
//!   poll_transmit ──▶ Transmit { path, len }   BFD packet + key block, for the caller to frame
//!   poll_publish  ──▶ Publish                  keys and path states for the data plane
//!   poll_event    ──▶ Event                    `peer=.. path=.. event=..` lines
//!   poll_timeout  ──▶ the next deadline
//! ```
//!
//! * **Peer up**: a peer's key state machine is told BFD is up while at least one of its
//!   paths is Up, and down when none is.
//! * **Path in service** = its BFD session is Up **and** the peer's keys are valid
//!   ([`PeerKeyState::path_in_service`]). Every change is one [`Publish::PathService`].
//! * **Keys**: after every input the peer's [`PeerKeyState::published_keys`] are compared
//!   (by pointer) with what was last published; a change is one [`Publish::PeerKeys`].
//! * **Blocks**: a block from [`PeerKeyState::poll_block`] rides the next BFD packet of one
//!   of the peer's paths, chosen by one function (`select_block_path`): the first Up path, or,
//!   when none is Up, the paths in turn so that a dead path does not swallow every
//!   retransmission. Multipath (issue 9) replaces that choice with link quality.
//! * **Time**: BFD runs on `now`; the key state machines on `now × time_scale`
//!   (`security-key-management.test-time-scale`, 1 in production), so a testbed sees hours
//!   of rotations in seconds. [`PeerCoordinator::poll_timeout`] returns real time.
//!
//! No sockets, threads or clocks. `fastpath::time::Instant` is the one thing taken from the
//! data-plane crate, because `svr-bfd` and `svr-keymgmt` use it.
//!
//! # Calling protocol (quinn-proto style)
//!
//! After [`new`](PeerCoordinator::new) and after every input
//! ([`handle_bfd_datagram`](PeerCoordinator::handle_bfd_datagram),
//! [`handle_timeout`](PeerCoordinator::handle_timeout),
//! [`interface_state_changed`](PeerCoordinator::interface_state_changed)): call
//! `poll_transmit` until `None` and send each payload, `poll_publish` until `None` and apply
//! each in order, `poll_event` until `None`, then arm one timer at `poll_timeout`. A spurious
//! `handle_timeout` is a harmless no-op.
//!
//! Secrets never reach an event: events carry indices and reasons, and the key types print
//! `<redacted>`.

#![forbid(unsafe_code, unused_must_use)]
#![warn(missing_docs)]

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use fastpath::time::Instant;
use rand_core::CryptoRngCore;
use svr_bfd::{AuthKey, BfdConfig, BfdError, BfdEvent, BfdSession, Diagnostic, State, CONTROL_LEN};
use svr_keymgmt::{
    Identity, KeyConfig, KeyEvent, PeerKeyState, PeerSetup, PublishedKeys, RekeyRefused,
    TrustAnchor,
};
use svr_linkq::{Metrics, PathMonitor, TestResult, PROBE_LEN, PROBE_VERSION};

mod link;
use link::PathLink;
pub use link::{LinkConfig, LinkDrop, LinkStats, REFLECTION_QUEUE};
/// The link-test types a caller needs to fill a [`LinkConfig`] and read a [`PathView`].
pub use svr_linkq::{HoldDownConfig, LinkTestConfig, LinkTestStats};

/// Index of a peer, in the order given to [`PeerCoordinator::new`] (svrd: its `PeerId`).
pub type PeerIndex = usize;
/// Index of a peer path, in the order given to [`PeerCoordinator::new`] (svrd: the waypoint
/// pair index of `SvrShared::pairs`, which `KeyStore::set_path_in_service` takes).
pub type PathIndex = usize;

/// One peer router, as plain values.
pub struct PeerSpec {
    /// Router name (as in the configuration), for events.
    pub name: String,
    /// Our and the peer's peering common names and the key configuration.
    pub setup: PeerSetup,
    /// This router's certificate chain and key.
    pub identity: Arc<Identity>,
    /// The authority's trust anchor.
    pub anchor: Arc<TrustAnchor>,
    /// CSPRNG of this peer's key exchange (svrd: `OsRng`; tests: a seeded one).
    pub rng: Box<dyn CryptoRngCore + Send>,
}

/// One peer path: our waypoint, the peer's, and the BFD session's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathSpec {
    /// The peer this path reaches.
    pub peer: PeerIndex,
    /// Our waypoint address.
    pub local: IpAddr,
    /// The peer's waypoint address (same family).
    pub remote: IpAddr,
    /// BFD timers.
    pub bfd: BfdConfig,
    /// bfd.LocalDiscr: nonzero, unique among the paths, and unlikely to repeat across
    /// restarts (RFC 5880 §6.3); the caller draws it.
    pub discriminator: u32,
    /// Seed of the session's transmit jitter (and of the link test's interval jitter).
    pub jitter_seed: u64,
    /// The link test beside BFD (docs/multipath.md §1.1; `LinkConfig::default()` is SSR's).
    pub link: LinkConfig,
}

/// Why [`PeerCoordinator::new`] refused its input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The key state machine refused the peer's setup.
    #[error("peer {peer}: {source}")]
    Peer {
        /// The peer.
        peer: PeerIndex,
        /// Why.
        #[source]
        source: svr_keymgmt::SetupError,
    },
    /// A path names a peer that is not in the list.
    #[error("path {path}: no peer {peer}")]
    UnknownPeer {
        /// The path.
        path: PathIndex,
        /// The peer it names.
        peer: PeerIndex,
    },
    /// A path joins an IPv4 and an IPv6 address.
    #[error("path {path}: {local} and {remote} are not of one address family")]
    MixedFamily {
        /// The path.
        path: PathIndex,
        /// Our waypoint.
        local: IpAddr,
        /// The peer's.
        remote: IpAddr,
    },
    /// A discriminator is 0 or used by two paths.
    #[error("path {path}: discriminator {discriminator} is 0 or not unique")]
    BadDiscriminator {
        /// The path.
        path: PathIndex,
        /// The discriminator.
        discriminator: u32,
    },
}

/// Why a received datagram was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RxError {
    /// No peer path joins these addresses (counted in [`Counters::bfd_rx_unknown_path`]).
    #[error("no peer path joins these addresses")]
    UnknownPath,
    /// The BFD session discarded the packet (counted by the session and in
    /// [`Counters::bfd_rx_discarded`]).
    #[error("BFD discarded the packet: {0}")]
    Bfd(#[from] BfdError),
    /// A link-test probe (first byte 1) was not taken (counted in
    /// [`Counters::link_rx_dropped`] and by reason in the path's [`LinkStats`]).
    #[error("link-test probe dropped: {0}")]
    Link(#[from] LinkDrop),
}

/// Why a path is out of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfService {
    /// Its BFD session is not Up.
    BfdDown,
    /// BFD is Up but the peer's keys are not valid.
    NoValidKey,
}

impl OutOfService {
    /// The reason as in event lines.
    pub const fn as_str(self) -> &'static str {
        match self {
            OutOfService::BfdDown => "bfd-down",
            OutOfService::NoValidKey => "no-valid-key",
        }
    }
}

/// What the data plane must be told; apply in the order polled.
#[derive(Debug, Clone)]
pub enum Publish {
    /// The metadata keys of a peer, or its payload-key index, changed (svrd:
    /// `KeyStore::publish_peer`).
    PeerKeys {
        /// The peer.
        peer: PeerIndex,
        /// Our current and previous keys and the peer's key we seal to (shared `Arc`s: the
        /// data plane holds the state machine's keys, not copies).
        keys: PublishedKeys,
        /// Payload-key index for new sessions.
        payload_key_index: u8,
    },
    /// A path entered or left service (svrd: `KeyStore::set_path_in_service`).
    PathService {
        /// The path.
        path: PathIndex,
        /// In service now.
        in_service: bool,
        /// Why not, when not.
        reason: Option<OutOfService>,
    },
    /// A path's smoothed link-test metrics changed, and the change held for the path's
    /// hold-down (the first measurement is told at once). For the path selector's snapshot.
    PathMetrics {
        /// The path.
        path: PathIndex,
        /// Smoothed latency, jitter, loss and MOS (docs/multipath.md §2.3).
        metrics: Metrics,
    },
}

/// What happened; [`Event`]'s `Display` is the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A BFD state change (a detail: svrd logs it at debug level).
    BfdStateChanged {
        /// Old state.
        from: State,
        /// New state.
        to: State,
        /// bfd.LocalDiag.
        diag: Diagnostic,
    },
    /// BFD reached Up on the path.
    BfdUp,
    /// BFD left Up on the path.
    BfdDown {
        /// Why.
        diag: Diagnostic,
    },
    /// An event of the peer's key state machine.
    Key(KeyEvent),
    /// The path entered service.
    PathInService,
    /// The path left service.
    PathOutOfService {
        /// Why.
        reason: OutOfService,
    },
}

/// One event: peer, path (when it concerns one) and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The peer.
    pub peer: PeerIndex,
    /// The path, for path events.
    pub path: Option<PathIndex>,
    /// What happened.
    pub kind: EventKind,
    peer_name: Arc<str>,
    path_label: Option<Arc<str>>,
}

impl Event {
    /// The peer's router name.
    pub fn peer_name(&self) -> &str {
        &self.peer_name
    }

    /// The path as `local->remote`.
    pub fn path_label(&self) -> Option<&str> {
        self.path_label.as_deref()
    }

    /// A detail (BFD state transitions), not a line for the event history.
    pub fn is_detail(&self) -> bool {
        matches!(self.kind, EventKind::BfdStateChanged { .. })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer={}", self.peer_name)?;
        if let Some(l) = &self.path_label {
            write!(f, " path={l}")?;
        }
        match &self.kind {
            EventKind::BfdStateChanged { from, to, diag } => {
                write!(f, " event=bfd-state from={from:?} to={to:?} diag={diag:?}")
            }
            EventKind::BfdUp => f.write_str(" event=bfd-up"),
            EventKind::BfdDown { diag } => write!(f, " event=bfd-down diag={diag:?}"),
            // Display of KeyEvent: indices and reasons, never key material.
            EventKind::Key(e) => write!(f, " {e}"),
            EventKind::PathInService => f.write_str(" event=path-in-service"),
            EventKind::PathOutOfService { reason } => {
                write!(f, " event=path-out-of-service reason={}", reason.as_str())
            }
        }
    }
}

/// A UDP payload to send: BFD control packet, then the key block if one rides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The path.
    pub path: PathIndex,
    /// Source address (our waypoint); UDP port 1280 both ends.
    pub local: IpAddr,
    /// Destination (the peer's waypoint).
    pub remote: IpAddr,
    /// Bytes written at the start of the caller's buffer.
    pub len: usize,
    /// A key block follows the BFD packet.
    pub carries_block: bool,
    /// The payload is a link-test probe or reflection (docs/multipath.md §5), not BFD.
    pub link_probe: bool,
}

/// Counters of the coordinator (the BFD sessions and key state machines keep their own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Datagrams handed to a path's BFD session.
    pub bfd_rx: u64,
    /// Datagrams for addresses no path joins.
    pub bfd_rx_unknown_path: u64,
    /// Datagrams a BFD session discarded (reasons in its `BfdStats`).
    pub bfd_rx_discarded: u64,
    /// Key blocks handed to a key state machine.
    pub blocks_rx: u64,
    /// Key blocks dropped unseen: behind a control packet that failed BFD authentication
    /// while authenticated BFD was Up on one of the peer's paths.
    pub blocks_unauthenticated_while_up: u64,
    /// BFD packets written.
    pub bfd_tx: u64,
    /// Of those, packets with a key block.
    pub bfd_tx_blocks: u64,
    /// Blocks dropped because they did not fit the caller's buffer.
    pub bfd_block_too_big: u64,
    /// Link-test probes (first byte 1) received on a known path.
    pub link_rx: u64,
    /// Of those, dropped (reasons in the path's [`LinkStats`]).
    pub link_rx_dropped: u64,
    /// Link-test requests written.
    pub link_tx_probes: u64,
    /// Reflections written.
    pub link_tx_reflections: u64,
}

/// One peer, for reports.
#[derive(Debug, Clone, Copy)]
pub struct PeerView<'a> {
    /// Router name.
    pub name: &'a str,
    /// The key state machine (role, indices, stats, in service).
    pub keys: &'a PeerKeyState,
    /// Its paths.
    pub paths: &'a [PathIndex],
    /// BFD is Up on at least one of its paths.
    pub bfd_up: bool,
}

/// One path, for reports.
#[derive(Debug, Clone, Copy)]
pub struct PathView<'a> {
    /// The peer.
    pub peer: PeerIndex,
    /// Our waypoint.
    pub local: IpAddr,
    /// The peer's.
    pub remote: IpAddr,
    /// `local->remote`.
    pub label: &'a str,
    /// The BFD session (state, stats, detection time).
    pub bfd: &'a BfdSession,
    /// What the data plane was told.
    pub in_service: bool,
    /// Smoothed link-test metrics (latency = RTT/2, jitter, loss, MOS): the value for
    /// decisions. Kept while BFD is down (the last known).
    pub metrics: Option<Metrics>,
    /// The last link test, raw (for display).
    pub last_test: Option<TestResult>,
    /// A link test runs (BFD Up and a link-test key).
    pub link_running: bool,
    /// Link-test and reflector counters.
    pub link_stats: LinkStats,
    /// The held-down view of the path (service, metrics) for a `PathSnapshot` entry.
    pub monitor: &'a PathMonitor,
}

struct Peer {
    name: Arc<str>,
    keys: PeerKeyState,
    /// What the data plane holds now.
    published: PublishedKeys,
    published_payload_index: u8,
    paths: Vec<PathIndex>,
    /// What the state machine was told.
    bfd_up: bool,
    /// Turn of the paths for blocks while none is Up.
    next_path: usize,
    /// The path holding this peer's block that is not sent yet.
    pending: Option<PathIndex>,
    /// The key generation whose BFD authentication keys the paths hold.
    auth_generation: Option<u64>,
    /// The latest block dropped while authenticated BFD was Up, with its wall time: handed
    /// to the key layer when BFD goes Down (a restarted peer's Key Request).
    held_block: Option<(u64, Vec<u8>)>,
}

struct Path {
    peer: PeerIndex,
    local: IpAddr,
    remote: IpAddr,
    label: Arc<str>,
    bfd: BfdSession,
    /// What the data plane was told.
    in_service: bool,
    /// A key block for the next packet.
    block: Option<Vec<u8>>,
    /// Link test, reflector and metrics.
    link: PathLink,
}

/// BFD and key management of all peers of one router. See the crate doc for the calling
/// protocol.
pub struct PeerCoordinator {
    scale: u64,
    peers: Vec<Peer>,
    paths: Vec<Path>,
    events: VecDeque<Event>,
    publish: VecDeque<Publish>,
    counters: Counters,
    /// Where [`PeerCoordinator::poll_transmit`] looks first.
    tx_cursor: usize,
}

impl fmt::Debug for PeerCoordinator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerCoordinator")
            .field("scale", &self.scale)
            .field("peers", &self.peers.len())
            .field("paths", &self.paths.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl PeerCoordinator {
    /// One key state machine per peer and one BFD session per path, started at `now`. The
    /// key machines run `time_scale` times faster than `now` (0 counts as 1). No path is in
    /// service until BFD and the key exchange say so.
    pub fn new(
        now: Instant,
        time_scale: u32,
        peers: Vec<PeerSpec>,
        paths: &[PathSpec],
    ) -> Result<PeerCoordinator, SetupError> {
        let scale = u64::from(time_scale.max(1));
        let key_now = scale_instant(now, scale);
        let mut out = Vec::with_capacity(peers.len());
        for (i, p) in peers.into_iter().enumerate() {
            let keys = PeerKeyState::new(key_now, p.setup, p.identity, p.anchor, p.rng)
                .map_err(|source| SetupError::Peer { peer: i, source })?;
            out.push(Peer {
                name: p.name.into(),
                keys,
                published: PublishedKeys::default(),
                published_payload_index: 0,
                paths: Vec::new(),
                bfd_up: false,
                next_path: 0,
                pending: None,
                auth_generation: None,
                held_block: None,
            });
        }
        let mut ps: Vec<Path> = Vec::with_capacity(paths.len());
        for (i, s) in paths.iter().enumerate() {
            let Some(peer) = out.get_mut(s.peer) else {
                return Err(SetupError::UnknownPeer {
                    path: i,
                    peer: s.peer,
                });
            };
            if s.local.is_ipv4() != s.remote.is_ipv4() {
                return Err(SetupError::MixedFamily {
                    path: i,
                    local: s.local,
                    remote: s.remote,
                });
            }
            if s.discriminator == 0
                || ps
                    .iter()
                    .any(|p| p.bfd.local_discriminator() == s.discriminator)
            {
                return Err(SetupError::BadDiscriminator {
                    path: i,
                    discriminator: s.discriminator,
                });
            }
            peer.paths.push(i);
            ps.push(Path {
                peer: s.peer,
                local: s.local,
                remote: s.remote,
                label: format!("{}->{}", s.local, s.remote).into(),
                bfd: BfdSession::new(s.discriminator, s.bfd, s.jitter_seed, now),
                in_service: false,
                block: None,
                link: PathLink::new(s.link, s.discriminator, s.jitter_seed),
            });
        }
        let mut c = PeerCoordinator {
            scale,
            peers: out,
            paths: ps,
            events: VecDeque::new(),
            publish: VecDeque::new(),
            counters: Counters::default(),
            tx_cursor: 0,
        };
        c.process(now);
        Ok(c)
    }

    // ---- queries ----

    /// Changes the key timers of every peer at `now` (a reload; see
    /// [`PeerKeyState::set_timers`]). On `Err` nothing changed.
    pub fn set_key_timers(&mut self, now: Instant, cfg: KeyConfig) -> Result<(), SetupError> {
        cfg.validate()
            .map_err(|source| SetupError::Peer { peer: 0, source })?;
        let key_now = self.key_now(now);
        for (i, p) in self.peers.iter_mut().enumerate() {
            p.keys
                .set_timers(key_now, cfg)
                .map_err(|source| SetupError::Peer { peer: i, source })?;
        }
        self.process(now);
        Ok(())
    }

    /// A new trust anchor for every peer at `now` (a reload with a new CRL; see
    /// [`PeerKeyState::set_trust_anchor`]): a peer it now rejects loses its keys and its
    /// paths at once. Returns how many peers that was. `unix_now` is wall time in seconds.
    pub fn set_trust_anchor(
        &mut self,
        now: Instant,
        unix_now: u64,
        anchor: Arc<TrustAnchor>,
    ) -> usize {
        let key_now = self.key_now(now);
        let mut revoked = 0;
        for p in &mut self.peers {
            if p.keys
                .set_trust_anchor(key_now, unix_now, Arc::clone(&anchor))
            {
                revoked += 1;
            }
        }
        self.process(now);
        revoked
    }

    /// Changes path `path`'s BFD timers (a Poll Sequence while Up, RFC 5880 §6.8.3) and its
    /// link-test and hold-down settings at `now` (a reload). Sessions and keys are kept.
    /// `false` for an unknown path.
    pub fn set_path_config(
        &mut self,
        now: Instant,
        path: PathIndex,
        bfd: BfdConfig,
        link: LinkConfig,
    ) -> bool {
        let Some(p) = self.paths.get_mut(path) else {
            return false;
        };
        if *p.bfd.config() != bfd {
            p.bfd.set_config(now, bfd);
        }
        p.link.set_config(link);
        self.process(now);
        true
    }

    /// The key clock's speed-up (`test-time-scale`).
    pub fn time_scale(&self) -> u64 {
        self.scale
    }

    /// Number of peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Number of paths.
    pub fn path_count(&self) -> usize {
        self.paths.len()
    }

    /// One peer.
    pub fn peer(&self, peer: PeerIndex) -> Option<PeerView<'_>> {
        self.peers.get(peer).map(|p| PeerView {
            name: &p.name,
            keys: &p.keys,
            paths: &p.paths,
            bfd_up: p.bfd_up,
        })
    }

    /// One path.
    pub fn path(&self, path: PathIndex) -> Option<PathView<'_>> {
        self.paths.get(path).map(|p| PathView {
            peer: p.peer,
            local: p.local,
            remote: p.remote,
            label: &p.label,
            bfd: &p.bfd,
            in_service: p.in_service,
            metrics: p.link.smoothed(),
            last_test: p.link.last(),
            link_running: p.link.running(),
            link_stats: p.link.stats(),
            monitor: p.link.monitor(),
        })
    }

    /// The path from our waypoint `local` to the peer's `remote`.
    pub fn path_index(&self, local: IpAddr, remote: IpAddr) -> Option<PathIndex> {
        self.paths
            .iter()
            .position(|p| p.local == local && p.remote == remote)
    }

    /// When (real time) `peer`'s next peer-key and payload-key rotations are due
    /// ([`PeerKeyState::next_rotations`] on the key clock, scaled back).
    pub fn next_rotations(&self, peer: PeerIndex) -> (Option<Instant>, Option<Instant>) {
        let Some(p) = self.peers.get(peer) else {
            return (None, None);
        };
        let (a, b) = p.keys.next_rotations();
        (
            a.map(|t| self.real_deadline(t)),
            b.map(|t| self.real_deadline(t)),
        )
    }

    /// An operator's `rekey peer`: `peer`'s key state machine starts a peer-key rotation
    /// now ([`PeerKeyState::rekey_now`]); its blocks go out with the next BFD packets.
    pub fn rekey_peer(&mut self, now: Instant, peer: PeerIndex) -> Result<(), RekeyRefused> {
        let key_now = self.key_now(now);
        let p = self.peers.get_mut(peer).ok_or(RekeyRefused::NoKey)?;
        p.keys.rekey_now(key_now)?;
        self.process(now);
        Ok(())
    }

    /// The coordinator's counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    // ---- inputs ----

    /// A UDP payload (port 1280) that arrived at our waypoint `local` from `remote`.
    /// `unix_now` is wall time in seconds, for certificate validity.
    pub fn handle_bfd_datagram(
        &mut self,
        now: Instant,
        unix_now: u64,
        local: IpAddr,
        remote: IpAddr,
        udp_payload: &[u8],
    ) -> Result<PathIndex, RxError> {
        let Some(pi) = self.path_index(local, remote) else {
            self.counters.bfd_rx_unknown_path += 1;
            return Err(RxError::UnknownPath);
        };
        self.handle_bfd_datagram_on(now, unix_now, pi, udp_payload)
            .map(|()| pi)
    }

    /// A UDP payload that arrived on path `path` (the caller demultiplexed it).
    pub fn handle_bfd_datagram_on(
        &mut self,
        now: Instant,
        unix_now: u64,
        path: PathIndex,
        udp_payload: &[u8],
    ) -> Result<(), RxError> {
        let key_now = self.key_now(now);
        let Some(p) = self.paths.get_mut(path) else {
            self.counters.bfd_rx_unknown_path += 1;
            return Err(RxError::UnknownPath);
        };
        if udp_payload.first() == Some(&PROBE_VERSION) {
            // A link-test probe: its first byte (version 1) can never start BFD (version 1
            // in the top three bits: 0x20..=0x3f). docs/multipath.md §5.
            self.counters.link_rx += 1;
            let alive = matches!(p.bfd.state(), State::Init | State::Up);
            let res = p.link.handle_probe(now, alive, udp_payload).map_err(|e| {
                self.counters.link_rx_dropped += 1;
                RxError::Link(e)
            });
            self.process(now);
            return res;
        }
        self.counters.bfd_rx += 1;
        let received = p.bfd.handle_packet(now, udp_payload);
        let peer = p.peer;
        let authenticated_up = p.bfd.auth_required()
            && self.peers[peer]
                .paths
                .iter()
                .any(|&i| self.paths[i].bfd.state() == State::Up);
        // The block authenticates itself, so it reaches the key layer whatever BFD made of the
        // control packet: a restarted peer has no BFD key yet, and its clear blocks are how it
        // gets one. But while authenticated BFD is Up the peer is alive and holds our key, so
        // a block behind a control packet that failed authentication is not from it: dropped
        // unseen (a forced rekey or a flood costs nothing). A restarted peer's BFD fails
        // authentication, our session goes Down within the detection time, and its blocks
        // pass again.
        match received.block {
            Some(block) if authenticated_up && received.outcome.is_err() => {
                self.counters.blocks_unauthenticated_while_up += 1;
                // Kept (the latest one only) for when BFD goes Down: if the peer restarted,
                // this is its Key Request, and the exchange starts without waiting for a
                // retransmission.
                self.peers[peer].held_block = Some((unix_now, block.to_vec()));
            }
            Some(block) => {
                self.counters.blocks_rx += 1;
                self.peers[peer].keys.handle_block(key_now, unix_now, block);
            }
            None => {}
        }
        let res = received.outcome.map_err(|e| {
            self.counters.bfd_rx_discarded += 1;
            RxError::Bfd(e)
        });
        self.process(now);
        res
    }

    /// Runs the timers due at `now`. Early or repeated calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let key_now = self.key_now(now);
        for p in &mut self.paths {
            if p.bfd.poll_timeout().is_some_and(|t| t <= now) {
                p.bfd.handle_timeout(now);
            }
            p.link.handle_timeout(now);
        }
        for p in &mut self.peers {
            if p.keys.poll_timeout().is_some_and(|t| t <= key_now) {
                p.keys.handle_timeout(key_now);
            }
        }
        self.process(now);
    }

    /// A port's link went up or down: a peer without valid keys retries at once.
    pub fn interface_state_changed(&mut self, now: Instant) {
        let key_now = self.key_now(now);
        for p in &mut self.peers {
            p.keys.interface_state_changed(key_now);
        }
        self.process(now);
    }

    // ---- outputs ----

    /// Writes the next UDP payload due at `now` into `buf` (room for a BFD packet and the
    /// largest block: 9000 bytes is plenty). A block that does not fit is dropped and counted
    /// ([`Counters::bfd_block_too_big`]; the key layer retransmits) and the BFD packet goes
    /// without it.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.route_blocks();
        let n = self.paths.len();
        for k in 0..n {
            let pi = (self.tx_cursor + k) % n;
            let path = &mut self.paths[pi];
            let ext: &[u8] = path.block.as_deref().unwrap_or(&[]);
            if !ext.is_empty() && buf.len() < CONTROL_LEN + ext.len() {
                path.block = None;
                self.peers[path.peer].pending = None;
                self.counters.bfd_block_too_big += 1;
            }
            let ext: &[u8] = path.block.as_deref().unwrap_or(&[]);
            let Some(len) = path.bfd.poll_transmit(now, ext, buf) else {
                continue;
            };
            let carries_block = path.block.take().is_some();
            if carries_block {
                self.counters.bfd_tx_blocks += 1;
                self.peers[path.peer].pending = None;
            }
            self.counters.bfd_tx += 1;
            // Stay on this path: it may owe more (a Final and a periodic packet).
            self.tx_cursor = pi;
            return Some(Transmit {
                path: pi,
                local: path.local,
                remote: path.remote,
                len,
                carries_block,
                link_probe: false,
            });
        }
        self.tx_cursor = 0;
        // Then link-test traffic: reflections first, then the probes due.
        if buf.len() < PROBE_LEN {
            return None;
        }
        for (pi, path) in self.paths.iter_mut().enumerate() {
            let Some((bytes, reflection)) = path.link.poll_transmit(now) else {
                continue;
            };
            buf[..PROBE_LEN].copy_from_slice(&bytes);
            if reflection {
                self.counters.link_tx_reflections += 1;
            } else {
                self.counters.link_tx_probes += 1;
            }
            return Some(Transmit {
                path: pi,
                local: path.local,
                remote: path.remote,
                len: PROBE_LEN,
                carries_block: false,
                link_probe: true,
            });
        }
        None
    }

    /// The next change for the data plane, in order.
    pub fn poll_publish(&mut self) -> Option<Publish> {
        self.publish_changes();
        self.publish.pop_front()
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.key_events();
        self.events.pop_front()
    }

    /// The next deadline (real time) at which [`handle_timeout`](Self::handle_timeout) has
    /// work.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        // Reflections are queued at an input and leave at the poll_transmit that follows it.
        let bfd = self
            .paths
            .iter()
            .flat_map(|p| [p.bfd.poll_timeout(), p.link.poll_timeout()])
            .flatten();
        let keys = self
            .peers
            .iter()
            .filter_map(|p| p.keys.poll_timeout())
            .map(|t| self.real_deadline(t));
        bfd.chain(keys).min()
    }

    // ---- internals ----

    fn key_now(&self, now: Instant) -> Instant {
        scale_instant(now, self.scale)
    }

    /// The first real instant at which the key clock has reached `key_t`.
    fn real_deadline(&self, key_t: Instant) -> Instant {
        Instant::from_nanos(key_t.as_nanos().div_ceil(self.scale))
    }

    /// After every input: BFD events and peer up/down, blocks to paths, key events, BFD
    /// authentication keys, and what to publish.
    fn process(&mut self, now: Instant) {
        self.bfd_events(now);
        self.route_blocks();
        self.key_events();
        for peer in 0..self.peers.len() {
            self.install_bfd_auth_keys(peer);
        }
        self.update_links(now);
        self.publish_changes();
    }

    /// Starts each path's link test when its BFD is Up and a link-test key exists, stops it
    /// otherwise (no probe goes out while BFD is not Up), and takes finished tests' results.
    fn update_links(&mut self, now: Instant) {
        for path in &mut self.paths {
            let up = path.bfd.state() == State::Up;
            let in_service = up && self.peers[path.peer].keys.path_in_service();
            path.link.update(now, up, in_service);
        }
    }

    fn bfd_events(&mut self, now: Instant) {
        let key_now = self.key_now(now);
        for (pi, path) in self.paths.iter_mut().enumerate() {
            while let Some(ev) = path.bfd.poll_event() {
                let kind = match ev {
                    BfdEvent::PathUp => EventKind::BfdUp,
                    BfdEvent::PathDown { diag } => EventKind::BfdDown { diag },
                    BfdEvent::StateChanged { from, to, diag } => {
                        EventKind::BfdStateChanged { from, to, diag }
                    }
                };
                self.events.push_back(Event {
                    peer: path.peer,
                    path: Some(pi),
                    kind,
                    peer_name: Arc::clone(&self.peers[path.peer].name),
                    path_label: Some(Arc::clone(&path.label)),
                });
            }
        }
        for peer in &mut self.peers {
            let up = peer
                .paths
                .iter()
                .any(|&i| self.paths[i].bfd.state() == State::Up);
            if up != peer.bfd_up {
                peer.bfd_up = up;
                if up {
                    peer.keys.bfd_up(key_now);
                    peer.held_block = None;
                } else {
                    peer.keys.bfd_down(key_now);
                    if let Some((unix_now, block)) = peer.held_block.take() {
                        self.counters.blocks_rx += 1;
                        peer.keys.handle_block(key_now, unix_now, &block);
                    }
                }
            }
        }
    }

    fn key_events(&mut self) {
        for (i, peer) in self.peers.iter_mut().enumerate() {
            while let Some(ev) = peer.keys.poll_event() {
                self.events.push_back(Event {
                    peer: i,
                    path: None,
                    kind: EventKind::Key(ev),
                    peer_name: Arc::clone(&peer.name),
                    path_label: None,
                });
            }
        }
    }

    /// Gives each peer's next block to one of its paths, one block per peer at a time.
    fn route_blocks(&mut self) {
        for i in 0..self.peers.len() {
            if self.peers[i].pending.is_some() || self.peers[i].paths.is_empty() {
                continue;
            }
            let Some(block) = self.peers[i].keys.poll_block() else {
                continue;
            };
            let pi = self.select_block_path(i);
            let path = &mut self.paths[pi];
            path.block = Some(block);
            path.bfd.request_transmit();
            self.peers[i].pending = Some(pi);
        }
    }

    /// Which of `peer`'s paths carries its next block: the first Up one; when none is Up,
    /// the paths in turn. The one place path choice for the key exchange is made (multipath,
    /// issue 9: prefer the best link quality among the Up paths). `peer` has paths.
    fn select_block_path(&mut self, peer: PeerIndex) -> PathIndex {
        let p = &mut self.peers[peer];
        if let Some(&up) = p
            .paths
            .iter()
            .find(|&&i| self.paths[i].bfd.state() == State::Up)
        {
            return up;
        }
        p.next_path = (p.next_path + 1) % p.paths.len();
        p.paths[p.next_path]
    }

    /// Installs the BFD authentication keys that key management derives for `peer` (the
    /// current peer key to send with; current, next and previous-in-grace to accept) into the
    /// `BfdSession` of each of its paths, whenever `PeerKeyState::key_generation()` moved.
    /// Runs after every input, before the next [`poll_transmit`](Self::poll_transmit), so the
    /// first BFD packet after a rotation is already authenticated with the new key.
    fn install_bfd_auth_keys(&mut self, peer: PeerIndex) {
        let p = &mut self.peers[peer];
        let generation = p.keys.key_generation();
        if p.auth_generation == Some(generation) {
            return;
        }
        let keys = p.keys.bfd_auth_keys();
        let auth_key = |s: &svr_keymgmt::AuthSecret| AuthKey::new(s.key_id, *s.secret);
        for &pi in &p.paths {
            let send = keys.send.as_ref().map(auth_key);
            let accept = keys.accept.iter().map(auth_key).collect();
            self.paths[pi].bfd.set_auth_keys(send, accept);
            self.paths[pi]
                .link
                .set_key(keys.link.as_ref().map(|s| *s.secret));
        }
        p.auth_generation = Some(generation);
    }

    fn publish_changes(&mut self) {
        for (id, peer) in self.peers.iter_mut().enumerate() {
            let keys = peer.keys.published_keys();
            let pidx = peer.keys.payload_key_index();
            if !keys.same_as(&peer.published) || pidx != peer.published_payload_index {
                // The old Arcs go here; the keys themselves go (zeroized) once no data-plane
                // snapshot holds them either.
                peer.published = keys.clone();
                peer.published_payload_index = pidx;
                self.publish.push_back(Publish::PeerKeys {
                    peer: id,
                    keys,
                    payload_key_index: pidx,
                });
            }
        }
        for (i, path) in self.paths.iter_mut().enumerate() {
            if let Some(metrics) = path.link.poll_publish() {
                self.publish
                    .push_back(Publish::PathMetrics { path: i, metrics });
            }
            let peer = &self.peers[path.peer];
            let up = path.bfd.state() == State::Up;
            let valid = peer.keys.path_in_service();
            let in_service = up && valid;
            if in_service == path.in_service {
                continue;
            }
            path.in_service = in_service;
            let reason = if in_service {
                None
            } else if up {
                Some(OutOfService::NoValidKey)
            } else {
                Some(OutOfService::BfdDown)
            };
            self.publish.push_back(Publish::PathService {
                path: i,
                in_service,
                reason,
            });
            self.events.push_back(Event {
                peer: path.peer,
                path: Some(i),
                kind: match reason {
                    None => EventKind::PathInService,
                    Some(reason) => EventKind::PathOutOfService { reason },
                },
                peer_name: Arc::clone(&peer.name),
                path_label: Some(Arc::clone(&path.label)),
            });
        }
    }
}

fn scale_instant(now: Instant, scale: u64) -> Instant {
    Instant::from_nanos(now.as_nanos().saturating_mul(scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines() {
        let e = Event {
            peer: 0,
            path: Some(1),
            kind: EventKind::PathOutOfService {
                reason: OutOfService::NoValidKey,
            },
            peer_name: "router-b".into(),
            path_label: Some("10.9.0.1->10.9.0.2".into()),
        };
        assert_eq!(
            e.to_string(),
            "peer=router-b path=10.9.0.1->10.9.0.2 event=path-out-of-service reason=no-valid-key"
        );
        let k = Event {
            peer: 0,
            path: None,
            kind: EventKind::Key(KeyEvent::PathInvalid),
            peer_name: "router-b".into(),
            path_label: None,
        };
        assert_eq!(k.to_string(), "peer=router-b event=path-invalid");
    }
}
