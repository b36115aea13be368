//! Zero-trust key management in svrd (`enhanced-security-key-management: true`): BFD on every
//! peer path, the key exchange riding in its metadata block, and the keys it yields handed to
//! the fast path.
//!
//! ```text
//!  worker: UDP 1280 to our waypoint ── punt (Local) ──▶ slow-path thread
//!                                                       ZeroTrust::handle_frame
//!                                                         BfdSession (one per waypoint pair)
//!                                                           └ block ▶ PeerKeyState (one per peer)
//!                                                       ZeroTrust::drive (every loop)
//!   KeyStore (arc-swap) ◀── publish keys + paths ───────  timers, events, publish,
//!   workers read it lock-free                             BFD packets ▶ SlowPath::send_ip
//!                                                           └ inject ring ▶ worker ▶ WAN
//! ```
//!
//! Everything here runs on the slow-path thread, the only clock reader: `now` comes in from
//! it. The sans-IO state machines decide; this module moves bytes and publishes their answers:
//!
//! * **Paths**: one [`BfdSession`] per waypoint pair (our waypoint, a peer's, same family;
//!   [`SvrShared::pairs`]), UDP 1280 both ends, timers from the peer's `bfd` (the router's
//!   unless the peer overrides them). A pair is **in service** while its BFD session is Up and
//!   the peer's [`PeerKeyState::path_in_service`] holds (a peer key, the peer's metadata key,
//!   ours acknowledged); only then does the fast path start sessions on it
//!   ([`KeyStore::set_path_in_service`]).
//! * **Keys**: after every input, [`PeerKeyState::published_keys`] is compared (by pointer)
//!   with what was published; a change is published in one [`KeyStore::publish_peer`] call,
//!   with the payload-key index for new sessions. The keys are shared `Arc`s: the fast path
//!   holds the state machine's key, not a copy, and a retired key is dropped (zeroized) when
//!   the last snapshot a worker may still hold goes away.
//! * **Blocks**: a block from [`PeerKeyState::poll_block`] goes out on the next BFD packet of
//!   one of the peer's paths (an Up one if there is one; otherwise the paths take turns, so a
//!   dead path does not swallow every retransmission), sent at once
//!   ([`BfdSession::request_transmit`]).
//! * **Time**: BFD runs on the real clock. The key state machines run on a clock that is
//!   `security-key-management.test-time-scale` times faster (1 in production), so that a
//!   testbed sees hours of rotations in seconds.
//! * **Events**: every key event and path change is logged as one structured line
//!   (`peer=NAME event=...`) and kept, with its real time, in a bounded history that SIGUSR1
//!   prints with the counters.
//!
//! Secrets never reach a log line: events carry indices and reasons only, and the key types
//! print `<redacted>`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use fastpath::svr_path::keys::KeyPair;
use fastpath::svr_path::{PeerId, SvrShared, BFD_UDP_PORT};
use fastpath::time::Instant;
use fastpath::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use fastpath::wire::ipv6::{Ipv6Packet, Ipv6Repr};
use fastpath::wire::udp::{UdpPacket, UdpRepr};
use fastpath::wire::IpProtocol;
use slowpath::SlowPath;
use svr_bfd::{BfdConfig, BfdEvent, BfdSession, State};
use svr_config::Config;
use svr_keymgmt::pki::verify_peer;
use svr_keymgmt::{
    Identity, KeyConfig, KeyEvent, KeyExchangeAlgorithm, PeerKeyState, PeerSetup, PublishedKeys,
    RekeyInterval, TrustAnchor,
};

use crate::startup::StartupError;

/// TTL / hop limit of BFD packets (RFC 5881 §5 sends 255; the peer does not check it, since
/// an SVR peer path may cross routers).
const BFD_TTL: u8 = 255;
/// Lines kept for SIGUSR1.
const HISTORY: usize = 256;
/// Lines SIGUSR1 prints.
const HISTORY_SHOWN: usize = 40;
/// Room for one BFD control packet and the largest block (a 4-certificate chain).
const TX_BUF: usize = 9000;

/// One peer router.
struct PeerCtl {
    /// Router name (as in the configuration), for logs.
    name: String,
    keys: PeerKeyState,
    /// What the fast path holds now.
    published: PublishedKeys,
    published_payload_index: u8,
    /// Indices into `ZeroTrust::paths`.
    paths: Vec<usize>,
    /// BFD is Up on at least one path (what the state machine was told).
    bfd_up: bool,
    /// Path that carries the next block when none is Up (round robin).
    next_path: usize,
}

/// One peer path: a waypoint pair with its BFD session.
struct PathCtl {
    peer: PeerId,
    local: IpAddr,
    remote: IpAddr,
    bfd: BfdSession,
    /// BFD is Up.
    up: bool,
    /// What the fast path was told.
    in_service: bool,
    /// A key-exchange block for the next packet.
    block: Option<Vec<u8>>,
    /// "10.9.0.1->10.9.0.2", for logs.
    label: String,
}

/// Counters of this module (the state machines keep their own; see [`ZeroTrust::report`]).
#[derive(Default)]
struct Counters {
    bfd_rx: u64,
    bfd_rx_unknown_path: u64,
    bfd_rx_bad_udp: u64,
    bfd_tx: u64,
    bfd_tx_blocks: u64,
    bfd_tx_over_mtu: u64,
    bfd_block_too_big: u64,
}

/// BFD and key management of all peers; owned by the slow-path thread.
pub struct ZeroTrust {
    svr: Arc<SvrShared>,
    scale: u64,
    wan_mtu: usize,
    peers: Vec<PeerCtl>,
    paths: Vec<PathCtl>,
    history: VecDeque<(Instant, String)>,
    counters: Counters,
    buf: Vec<u8>,
}

fn read_file(
    path: &str,
    file: &std::path::Path,
) -> Result<zeroize::Zeroizing<Vec<u8>>, StartupError> {
    std::fs::read(file)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| StartupError::Pki {
            path: path.to_string(),
            reason: format!("cannot read {}: {e}", file.display()),
        })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn rekey(r: svr_config::RekeyInterval) -> RekeyInterval {
    match r {
        svr_config::RekeyInterval::Hours(h) => RekeyInterval::Hours(h),
        svr_config::RekeyInterval::Never => RekeyInterval::Never,
    }
}

/// This router's identity and the authority's trust anchor, loaded and checked before
/// anything starts (`svrd --check` loads them too).
pub struct Credentials {
    identity: Identity,
    anchor: TrustAnchor,
    local_name: String,
}

/// Loads the trust anchor (`authority.trusted-ca-certificate`) and this node's certificate
/// chain and key (`pki`), and checks that the certificate names our `peering-common-name`
/// (peers would refuse it otherwise). An own certificate that does not verify against the
/// anchor right now (expired, another CA) is only a warning: peers will say so too, and a
/// certificate may expire while running anyway.
pub fn load_credentials(cfg: &Config) -> Result<Credentials, StartupError> {
    let (me, node) = cfg.local();
    let npath = cfg.local_path();
    let ri = cfg
        .authority
        .router
        .iter()
        .position(|r| r.name == me.name)
        .unwrap_or(0);
    let name_path = format!("authority.router[{ri}].peering-common-name");
    let pki_err = |path: &str, e: &dyn std::fmt::Display| StartupError::Pki {
        path: path.to_string(),
        reason: e.to_string(),
    };
    let required = "required with enhanced-security-key-management";
    let ca_path = "authority.trusted-ca-certificate";
    let ca = cfg
        .authority
        .trusted_ca_certificate
        .as_ref()
        .ok_or_else(|| pki_err(ca_path, &required))?;
    let anchor = TrustAnchor::load(&read_file(ca_path, ca)?).map_err(|e| pki_err(ca_path, &e))?;
    let crl_path = "authority.certificate-revocation-list";
    let anchor = match &cfg.authority.certificate_revocation_list {
        Some(crl) => anchor
            .with_crls(&read_file(crl_path, crl)?)
            .map_err(|e| pki_err(crl_path, &e))?,
        None => anchor,
    };
    let chain_path = format!("{npath}.pki.certificate-chain");
    let key_path = format!("{npath}.pki.private-key");
    let pki = node
        .pki
        .as_ref()
        .ok_or_else(|| pki_err(&format!("{npath}.pki"), &required))?;
    let chain = read_file(&chain_path, &pki.certificate_chain)?;
    let key = read_file(&key_path, &pki.private_key)?;
    let identity = Identity::load(&chain, &key).map_err(|e| pki_err(&chain_path, &e))?;
    drop(key);
    let local_name = me
        .peering_common_name
        .clone()
        .ok_or_else(|| pki_err(&name_path, &required))?;
    if !identity.is_named(&local_name) {
        return Err(pki_err(
            &name_path,
            &format!(
                "{local_name:?} is not named by the certificate in {} (it names {:?}); peers would refuse it",
                pki.certificate_chain.display(),
                identity.common_name()
            ),
        ));
    }
    if let Err(e) = verify_peer(identity.chain(), &anchor, &local_name, unix_now()) {
        log::warn!(
            "event=own-certificate-invalid reason=\"{e}\" file={} (peers will reject it)",
            pki.certificate_chain.display()
        );
    }
    Ok(Credentials {
        identity,
        anchor,
        local_name,
    })
}

impl ZeroTrust {
    /// Starts one key state machine per peer and one BFD session per waypoint pair, at
    /// `now`, with `creds` from [`load_credentials`]. Gates the fast path's paths: none is in
    /// service until BFD and the key exchange say so.
    pub fn new(
        cfg: &Config,
        creds: Credentials,
        svr: Arc<SvrShared>,
        now: Instant,
    ) -> Result<ZeroTrust, StartupError> {
        let (me, _) = cfg.local();
        let ri = cfg
            .authority
            .router
            .iter()
            .position(|r| r.name == me.name)
            .unwrap_or(0);
        let pki_err = |path: &str, e: &dyn std::fmt::Display| StartupError::Pki {
            path: path.to_string(),
            reason: e.to_string(),
        };
        let Credentials {
            identity,
            anchor,
            local_name,
        } = creds;
        let identity = Arc::new(identity);
        let anchor = Arc::new(anchor);
        let skm = &cfg.authority.security_key_management;
        let key_cfg = KeyConfig {
            algorithm: match skm.key_exchange_algorithm {
                svr_config::KeyExchangeAlgorithm::X25519 => KeyExchangeAlgorithm::X25519,
                svr_config::KeyExchangeAlgorithm::DhModp4096 => KeyExchangeAlgorithm::DhModp4096,
            },
            payload_key_rekey_interval: rekey(skm.payload_key_rekey_interval),
            peer_key_rekey_interval: rekey(skm.peer_key_rekey_interval),
            peer_key_retransmit_interval: skm.peer_key_retransmit_interval,
            peer_key_timeout: skm.peer_key_timeout,
        };
        let scale = u64::from(skm.test_time_scale.max(1));
        if scale != 1 {
            log::warn!(
                "security-key-management.test-time-scale is {scale}: key timers run {scale}x faster than the clock (TEST ONLY)"
            );
        }
        let key_now = Instant::from_nanos(now.as_nanos().saturating_mul(scale));
        let mut peers = Vec::new();
        for (i, p) in me.peer.iter().enumerate() {
            let peer_path = format!("authority.router[{ri}].peer[{i}]");
            let peer_name = cfg
                .router(&p.router)
                .and_then(|r| r.peering_common_name.clone())
                .ok_or_else(|| {
                    pki_err(&peer_path, &"the peer router has no peering-common-name")
                })?;
            let setup = PeerSetup {
                local_name: local_name.clone(),
                peer_name,
                config: key_cfg,
            };
            let keys = PeerKeyState::new(
                key_now,
                setup,
                Arc::clone(&identity),
                Arc::clone(&anchor),
                Box::new(rand::rngs::OsRng),
            )
            .map_err(|e| pki_err(&peer_path, &e))?;
            log::info!(
                "peer={} peering-common-name={} role={:?} key-exchange-algorithm={}",
                p.router,
                keys.peer_name(),
                keys.role(),
                skm.key_exchange_algorithm.as_str()
            );
            peers.push(PeerCtl {
                name: p.router.clone(),
                keys,
                published: PublishedKeys::default(),
                published_payload_index: 0,
                paths: Vec::new(),
                bfd_up: false,
                next_path: 0,
            });
        }
        let mut paths = Vec::new();
        for (i, pair) in svr.pairs().iter().enumerate() {
            let Some(peer) = peers.get_mut(usize::from(pair.peer)) else {
                continue;
            };
            let b = me
                .peer
                .get(usize::from(pair.peer))
                .map(|p| p.bfd)
                .unwrap_or(me.bfd);
            let bfd_cfg = BfdConfig {
                desired_tx: b.desired_tx_interval,
                required_min_rx: b.required_min_rx_interval,
                detect_mult: b.multiplier,
            };
            // Unique per pair and unlikely to repeat across restarts (RFC 5880 §6.3).
            let discr = (rand::random::<u32>() & 0x7fff_0000) | (i as u32 + 1);
            let bfd = BfdSession::new(discr, bfd_cfg, rand::random(), now);
            peer.paths.push(i);
            paths.push(PathCtl {
                peer: pair.peer,
                local: pair.local,
                remote: pair.remote,
                bfd,
                up: false,
                in_service: false,
                block: None,
                label: format!("{}->{}", pair.local, pair.remote),
            });
        }
        svr.keys.gate_paths(svr.pairs().len());
        Ok(ZeroTrust {
            wan_mtu: usize::from(svr.cfg.wan_mtu),
            svr,
            scale,
            peers,
            paths,
            history: VecDeque::with_capacity(HISTORY),
            counters: Counters::default(),
            buf: vec![0u8; TX_BUF],
        })
    }

    fn key_now(&self, now: Instant) -> Instant {
        Instant::from_nanos(now.as_nanos().saturating_mul(self.scale))
    }

    fn record(&mut self, now: Instant, line: String) {
        log::info!("{line}");
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((now, line));
    }

    /// A frame punted as `Local`: if it is BFD (UDP to port 1280 on one of our waypoints),
    /// consume it and return true; otherwise leave it to the slow path.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) -> bool {
        let Some(l3) = frame.get(14..) else {
            return false;
        };
        let (src, dst, l4): (IpAddr, IpAddr, &[u8]) = match frame.get(12..14) {
            Some([0x08, 0x00]) => {
                let Ok(ip) = Ipv4Packet::new_checked(l3) else {
                    return false;
                };
                // Fragments and bad checksums are the slow path's to count.
                let Ok(r) = Ipv4Repr::parse(&ip) else {
                    return false;
                };
                if r.next_header != IpProtocol::Udp {
                    return false;
                }
                // new_checked proved header length <= total length <= the buffer.
                let range = usize::from(ip.header_len())..usize::from(ip.total_len());
                let Some(l4) = l3.get(range) else {
                    return false;
                };
                (r.src_addr.into(), r.dst_addr.into(), l4)
            }
            Some([0x86, 0xdd]) => {
                let Ok(ip) = Ipv6Packet::new_checked(l3) else {
                    return false;
                };
                let Ok(r) = Ipv6Repr::parse(&ip) else {
                    return false;
                };
                if r.next_header != IpProtocol::Udp {
                    return false;
                }
                let Some(l4) = l3.get(40..40 + usize::from(ip.payload_len())) else {
                    return false;
                };
                (r.src_addr.into(), r.dst_addr.into(), l4)
            }
            _ => return false,
        };
        let Ok(udp) = UdpPacket::new_checked(l4) else {
            return false;
        };
        if udp.dst_port() != BFD_UDP_PORT || !self.svr.is_local_waypoint(dst) {
            return false;
        }
        let Ok(u) = UdpRepr::parse(&src, &dst, &udp) else {
            self.counters.bfd_rx_bad_udp += 1;
            return true;
        };
        let Some(pi) = self
            .paths
            .iter()
            .position(|p| p.local == dst && p.remote == src)
        else {
            self.counters.bfd_rx_unknown_path += 1;
            return true;
        };
        self.counters.bfd_rx += 1;
        let key_now = self.key_now(now);
        let unix = unix_now();
        let path = &mut self.paths[pi];
        // A discarded packet is counted by the session (BfdStats::rx_discarded).
        if let Ok(Some(block)) = path.bfd.handle_packet(now, u.payload) {
            let peer = &mut self.peers[usize::from(path.peer)];
            peer.keys.handle_block(key_now, unix, block);
        }
        true
    }

    /// A port's link went up or down: a peer without valid keys retries at once.
    pub fn interface_state_changed(&mut self, now: Instant) {
        let key_now = self.key_now(now);
        for p in &mut self.peers {
            p.keys.interface_state_changed(key_now);
        }
    }

    /// Runs due timers, reacts to BFD and key events, publishes keys and path states to the
    /// fast path, and sends the BFD packets that are due through `slow`. Call after inputs
    /// and on every loop of the slow-path thread.
    pub fn drive(&mut self, now: Instant, slow: &mut SlowPath) {
        let key_now = self.key_now(now);
        for path in &mut self.paths {
            if path.bfd.poll_timeout().is_some_and(|t| t <= now) {
                path.bfd.handle_timeout(now);
            }
        }
        for peer in &mut self.peers {
            if peer.keys.poll_timeout().is_some_and(|t| t <= key_now) {
                peer.keys.handle_timeout(key_now);
            }
        }
        self.bfd_events(now);
        self.key_events(now);
        self.publish(now);
        self.transmit(now, slow);
        // Transmitting may have changed nothing the fast path sees, but polling blocks can
        // arm timers and queue events: pick those up on the next loop.
    }

    fn bfd_events(&mut self, now: Instant) {
        let key_now = self.key_now(now);
        let mut lines = Vec::new();
        for path in &mut self.paths {
            while let Some(ev) = path.bfd.poll_event() {
                let peer = &self.peers[usize::from(path.peer)].name;
                match ev {
                    BfdEvent::PathUp => {
                        path.up = true;
                        lines.push(format!("peer={peer} path={} event=bfd-up", path.label));
                    }
                    BfdEvent::PathDown { diag } => {
                        path.up = false;
                        lines.push(format!(
                            "peer={peer} path={} event=bfd-down diag={diag:?}",
                            path.label
                        ));
                    }
                    BfdEvent::StateChanged { from, to, diag } => log::debug!(
                        "peer={peer} path={} bfd {from:?} -> {to:?} ({diag:?})",
                        path.label
                    ),
                }
            }
        }
        for l in lines {
            self.record(now, l);
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
                } else {
                    peer.keys.bfd_down(key_now);
                }
            }
        }
    }

    fn key_events(&mut self, now: Instant) {
        let mut lines = Vec::new();
        for peer in &mut self.peers {
            while let Some(ev) = peer.keys.poll_event() {
                // Display of KeyEvent: indices and reasons, never key material.
                lines.push(format!("peer={} {ev}", peer.name));
                if let KeyEvent::PayloadKeyRotationDue { payload_key_index } = ev {
                    // New sessions take the new index from the next publish on; live sessions
                    // see it on their next packet and re-key (docs/protocol.md §4.1).
                    log::debug!(
                        "peer={} new sessions now use payload-key index {payload_key_index}",
                        peer.name
                    );
                }
            }
        }
        for l in lines {
            self.record(now, l);
        }
    }

    fn publish(&mut self, now: Instant) {
        for (id, peer) in self.peers.iter_mut().enumerate() {
            let keys = peer.keys.published_keys();
            let pidx = peer.keys.payload_key_index();
            if !keys.same_as(&peer.published) || pidx != peer.published_payload_index {
                self.svr.keys.publish_peer(
                    id as PeerId,
                    KeyPair {
                        current: keys.own_current.clone(),
                        previous: keys.own_previous.clone(),
                    },
                    KeyPair {
                        current: keys.send.clone(),
                        previous: None,
                    },
                    pidx,
                );
                // The old Arcs go here: the keys themselves go (zeroized) once no worker
                // snapshot holds them either.
                peer.published = keys;
                peer.published_payload_index = pidx;
            }
        }
        let mut lines = Vec::new();
        for (i, path) in self.paths.iter_mut().enumerate() {
            let peer = &self.peers[usize::from(path.peer)];
            let valid = peer.keys.path_in_service();
            let in_service = path.up && valid;
            if in_service != path.in_service {
                path.in_service = in_service;
                self.svr.keys.set_path_in_service(i, in_service);
                lines.push(if in_service {
                    format!(
                        "peer={} path={} event=path-in-service",
                        peer.name, path.label
                    )
                } else {
                    let why = if path.up { "no-valid-key" } else { "bfd-down" };
                    format!(
                        "peer={} path={} event=path-out-of-service reason={why}",
                        peer.name, path.label
                    )
                });
            }
        }
        for l in lines {
            self.record(now, l);
        }
    }

    fn transmit(&mut self, now: Instant, slow: &mut SlowPath) {
        for peer in &mut self.peers {
            let Some(block) = peer.keys.poll_block() else {
                continue;
            };
            if peer.paths.is_empty() {
                continue;
            }
            let up = peer
                .paths
                .iter()
                .copied()
                .find(|&i| self.paths[i].bfd.state() == State::Up);
            let pi = up.unwrap_or_else(|| {
                peer.next_path = (peer.next_path + 1) % peer.paths.len();
                peer.paths[peer.next_path]
            });
            let path = &mut self.paths[pi];
            path.block = Some(block);
            path.bfd.request_transmit();
        }
        for path in &mut self.paths {
            loop {
                let ext: &[u8] = path.block.as_deref().unwrap_or(&[]);
                let Some(n) = path.bfd.poll_transmit(now, ext, &mut self.buf) else {
                    if path.block.take().is_some() {
                        // Only when the block does not fit the buffer: nothing else stops a
                        // requested transmit.
                        self.counters.bfd_block_too_big += 1;
                    }
                    break;
                };
                if path.block.take().is_some() {
                    self.counters.bfd_tx_blocks += 1;
                }
                self.counters.bfd_tx += 1;
                let pkt = udp_packet(path.local, path.remote, &self.buf[..n]);
                if pkt.len() > self.wan_mtu {
                    self.counters.bfd_tx_over_mtu += 1;
                }
                slow.send_ip(now, &pkt);
            }
        }
    }

    /// Aggregate counters for the report (`slowpath NAME=VALUE` lines).
    pub fn counter_list(&self) -> Vec<(&'static str, u64)> {
        let c = &self.counters;
        let in_service = self.paths.iter().filter(|p| p.in_service).count() as u64;
        vec![
            ("bfd_rx", c.bfd_rx),
            ("bfd_rx_unknown_path", c.bfd_rx_unknown_path),
            ("bfd_rx_bad_udp", c.bfd_rx_bad_udp),
            ("bfd_tx", c.bfd_tx),
            ("bfd_tx_blocks", c.bfd_tx_blocks),
            ("bfd_tx_over_mtu", c.bfd_tx_over_mtu),
            ("bfd_block_too_big", c.bfd_block_too_big),
            ("peer_paths", self.paths.len() as u64),
            ("peer_paths_in_service", in_service),
        ]
    }

    /// Per-peer and per-path state and counters, then the latest events (SIGUSR1, exit).
    pub fn report(&self) -> String {
        let mut out = String::new();
        for p in &self.peers {
            let k = &p.keys;
            let s = k.stats();
            let _ = writeln!(
                out,
                "keymgmt peer={} role={:?} in-service={} invalid={} peer-key-index={} payload-key-index={} blocks-in={} blocks-out={} blocks-dropped={} certificate-rejected={} bad-signature={} stale={} peer-keys-installed={}",
                p.name,
                k.role(),
                u8::from(k.path_in_service()),
                u8::from(k.is_invalid()),
                k.peer_key_index().unwrap_or(0),
                k.payload_key_index(),
                s.blocks_in,
                s.blocks_out,
                s.total_dropped(),
                s.certificate_rejected,
                s.bad_signature,
                s.stale,
                s.peer_keys_installed,
            );
        }
        for p in &self.paths {
            let s = p.bfd.stats();
            let discarded: u64 = s.rx_discarded.iter().sum();
            let _ = writeln!(
                out,
                "bfd path={} state={:?} in-service={} tx={} rx={} rx-discarded={} detection-ms={}",
                p.label,
                p.bfd.state(),
                u8::from(p.in_service),
                s.tx_packets,
                s.rx_accepted,
                discarded,
                p.bfd
                    .detection_time()
                    .map(|d: Duration| d.as_millis())
                    .unwrap_or(0),
            );
        }
        let skip = self.history.len().saturating_sub(HISTORY_SHOWN);
        for (at, line) in self.history.iter().skip(skip) {
            let _ = writeln!(out, "keymgmt event t={at} {line}");
        }
        out
    }
}

/// An IPv4 or IPv6 + UDP (1280 → 1280) packet around `payload`, checksums filled.
fn udp_packet(src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
    let udp = UdpRepr {
        src_port: BFD_UDP_PORT,
        dst_port: BFD_UDP_PORT,
        payload,
    };
    let ulen = udp.buffer_len();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let ip = Ipv4Repr {
                src_addr: s,
                dst_addr: d,
                next_header: IpProtocol::Udp,
                payload_len: ulen,
                hop_limit: BFD_TTL,
            };
            let hl = ip.buffer_len();
            let mut pkt = vec![0u8; hl + ulen];
            ip.emit(&mut Ipv4Packet::new_unchecked(&mut pkt[..]));
            udp.emit(&src, &dst, &mut UdpPacket::new_unchecked(&mut pkt[hl..]));
            pkt
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let ip = Ipv6Repr {
                src_addr: s,
                dst_addr: d,
                next_header: IpProtocol::Udp,
                payload_len: ulen,
                hop_limit: BFD_TTL,
            };
            let hl = ip.buffer_len();
            let mut pkt = vec![0u8; hl + ulen];
            ip.emit(&mut Ipv6Packet::new_unchecked(&mut pkt[..]));
            udp.emit(&src, &dst, &mut UdpPacket::new_unchecked(&mut pkt[hl..]));
            pkt
        }
        // Pairs are built of one family only (SvrShared::new).
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfd_packets_parse_back() {
        for (s, d) in [("10.9.0.1", "10.9.0.2"), ("fd00:9::1", "fd00:9::2")] {
            let (s, d): (IpAddr, IpAddr) = (s.parse().unwrap(), d.parse().unwrap());
            let pkt = udp_packet(s, d, b"0123456789abcdef0123456789");
            let l4 = if s.is_ipv4() {
                let ip = Ipv4Packet::new_checked(&pkt[..]).unwrap();
                let r = Ipv4Repr::parse(&ip).unwrap();
                assert_eq!(r.hop_limit, BFD_TTL);
                ip.payload().to_vec()
            } else {
                let ip = Ipv6Packet::new_checked(&pkt[..]).unwrap();
                Ipv6Repr::parse(&ip).unwrap();
                ip.payload().to_vec()
            };
            let u = UdpPacket::new_checked(&l4[..]).unwrap();
            let r = UdpRepr::parse(&s, &d, &u).unwrap();
            assert_eq!((r.src_port, r.dst_port), (1280, 1280));
            assert_eq!(r.payload, b"0123456789abcdef0123456789");
        }
    }
}
