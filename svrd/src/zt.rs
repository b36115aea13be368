//! Zero-trust key management in svrd (`enhanced-security-key-management: true`): the edge
//! around [`svr_peering::PeerCoordinator`], which runs BFD on every peer path, the key
//! exchange riding in its metadata block, and decides what the fast path is told.
//!
//! ```text
//!  worker: UDP 1280 to our waypoint ── punt (Local) ──▶ slow-path thread
//!                                                       ZeroTrust::handle_frame (IP/UDP parse)
//!                                                         PeerCoordinator::handle_bfd_datagram
//!                                                       ZeroTrust::drive (every loop)
//!   KeyStore (arc-swap) ◀── Publish (keys, paths) ───── PeerCoordinator::poll_publish
//!   workers read it lock-free                           poll_event ▶ log + history
//!                                                       poll_transmit ▶ IP/UDP ▶ SlowPath::send_ip
//!                                                           └ inject ring ▶ worker ▶ WAN
//! ```
//!
//! The decisions (peer up across paths, path in service = BFD Up and keys valid, which path
//! carries a block, the key clock's `test-time-scale`) live in the sans-IO `svr-peering`
//! crate, tested there on virtual time. This module only:
//!
//! * builds the coordinator from the configuration: one peer per `peer` of this router, one
//!   path per waypoint pair ([`SvrShared::pairs`]) with the peer's `bfd` timers, random
//!   discriminators and seeds, `OsRng` for the key exchange;
//! * parses punted frames (IPv4/IPv6 + UDP to port 1280 on one of our waypoints) and frames
//!   the coordinator's payloads into IP/UDP packets;
//! * reads the OS clocks (the slow-path thread's monotonic `now`, wall time for certificate
//!   validity);
//! * applies each [`Publish`] to the fast path's [`fastpath::svr_path::keys::KeyStore`]
//!   (`publish_peer`, `set_path_in_service`);
//! * logs every event as one structured line (`peer=NAME path=.. event=...`) and keeps it,
//!   with its real time, in a bounded history that SIGUSR1 prints with the counters.
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
use svr_bfd::BfdConfig;
use svr_config::Config;
use svr_keymgmt::pki::verify_peer;
use svr_keymgmt::{
    Identity, KeyConfig, KeyExchangeAlgorithm, PeerSetup, RekeyInterval, SoftwareVersion,
    TrustAnchor,
};
use svr_peering::{
    HoldDownConfig, LinkConfig, LinkTestConfig, PathSpec, PeerCoordinator, PeerSpec, Publish,
    SetupError,
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

/// Counters of the framing edge (the coordinator and its state machines keep their own; see
/// [`ZeroTrust::report`]).
#[derive(Default)]
struct Counters {
    bfd_rx_bad_udp: u64,
    bfd_tx_over_mtu: u64,
}

/// BFD and key management of all peers; owned by the slow-path thread.
pub struct ZeroTrust {
    svr: Arc<SvrShared>,
    wan_mtu: usize,
    co: PeerCoordinator,
    /// Waypoint-pair index ([`SvrShared::pairs`]) of each coordinator path.
    pair_of_path: Vec<usize>,
    /// Events: slow-path time, wall time (Unix ms), the line.
    history: VecDeque<(Instant, u64, String)>,
    counters: Counters,
    /// Per peer: when (slow-path time) its peer key, metadata key and payload key last
    /// changed, and the indexes seen then.
    rotations: Vec<Rotations>,
    /// Per coordinator path: since when it is in service.
    path_up_since: Vec<Option<Instant>>,
    /// Our certificate, for `show peers security`.
    local_cert: Option<svr_mgmt::model::CertInfo>,
    buf: Vec<u8>,
    /// `bfd_<reason>` for every BFD discard reason, by [`BfdError::index`].
    bfd_drop_names: Vec<&'static str>,
    /// The bytes of the trust anchor's files (root certificate, CRL) now in use.
    trust_files: Vec<u8>,
}

/// What a peer's keys were last seen as, and when each changed.
#[derive(Default, Clone, Copy)]
struct Rotations {
    peer_key: Option<(u8, Instant)>,
    metadata_key: Option<(u32, Instant)>,
    payload_key: Option<(u8, Instant)>,
}

fn cert_info(der: &[u8]) -> Option<svr_mgmt::model::CertInfo> {
    svr_keymgmt::certificate_summary(der).map(|c| svr_mgmt::model::CertInfo {
        subject: c.subject,
        not_after_unix: c.not_after_unix,
    })
}

/// The counter names of BFD discards, made once per process (a handful of bytes).
fn bfd_drop_names() -> Vec<&'static str> {
    svr_bfd::BfdError::ALL
        .iter()
        .map(|e| &*Box::leak(format!("bfd_{}", e.name()).into_boxed_str()))
        .collect()
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

fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
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
    trust_files: Vec<u8>,
}

/// A trust anchor read by [`ZeroTrust::trust_check`], to install with
/// [`ZeroTrust::trust_apply`].
pub struct NewTrust {
    anchor: TrustAnchor,
    files: Vec<u8>,
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
    let (anchor, trust_files) = trust_anchor(cfg)?;
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
        trust_files,
    })
}

/// The trust anchor of `cfg`: `authority.trusted-ca-certificate` with the CRLs of
/// `authority.certificate-revocation-list`, and the bytes of both files (to see whether a
/// reload changes them).
fn trust_anchor(cfg: &Config) -> Result<(TrustAnchor, Vec<u8>), StartupError> {
    let pki_err = |path: &str, e: &dyn std::fmt::Display| StartupError::Pki {
        path: path.to_string(),
        reason: e.to_string(),
    };
    let ca_path = "authority.trusted-ca-certificate";
    let ca = cfg
        .authority
        .trusted_ca_certificate
        .as_ref()
        .ok_or_else(|| pki_err(ca_path, &"required with enhanced-security-key-management"))?;
    let mut files = read_file(ca_path, ca)?.to_vec();
    let anchor = TrustAnchor::load(&files).map_err(|e| pki_err(ca_path, &e))?;
    let crl_path = "authority.certificate-revocation-list";
    let anchor = match &cfg.authority.certificate_revocation_list {
        Some(crl) => {
            let crl = read_file(crl_path, crl)?;
            files.extend_from_slice(&crl);
            anchor.with_crls(&crl).map_err(|e| pki_err(crl_path, &e))?
        }
        None => anchor,
    };
    Ok((anchor, files))
}

/// `security-key-management` as key management takes it.
fn key_config(cfg: &Config) -> KeyConfig {
    let skm = &cfg.authority.security_key_management;
    KeyConfig {
        algorithm: match skm.key_exchange_algorithm {
            svr_config::KeyExchangeAlgorithm::X25519 => KeyExchangeAlgorithm::X25519,
            svr_config::KeyExchangeAlgorithm::DhModp4096 => KeyExchangeAlgorithm::DhModp4096,
        },
        payload_key_rekey_interval: rekey(skm.payload_key_rekey_interval),
        peer_key_rekey_interval: rekey(skm.peer_key_rekey_interval),
        peer_key_retransmit_interval: skm.peer_key_retransmit_interval,
        peer_key_timeout: skm.peer_key_timeout,
    }
}

/// BFD timers and link-test/hold-down settings of the paths to the local router's `peer`-th
/// peer: its peer entry's `bfd`, else the router's.
fn path_settings(cfg: &Config, peer: usize) -> (BfdConfig, LinkConfig) {
    let (me, _) = cfg.local();
    let b = me.peer.get(peer).map(|p| p.bfd).unwrap_or(me.bfd);
    // The peer's `required-min-echo-interval` (its settings for us, else its router's),
    // which spaces our probes; ours when the peer is not in the config.
    let peer_echo = me
        .peer
        .get(peer)
        .and_then(|p| cfg.router(&p.router))
        .map(|r| {
            r.peer
                .iter()
                .find(|q| q.router == me.name)
                .map_or(r.bfd, |q| q.bfd)
                .required_min_echo_interval
        })
        .unwrap_or(b.required_min_echo_interval);
    let bfd = BfdConfig {
        desired_tx: b.desired_tx_interval,
        required_min_rx: b.required_min_rx_interval,
        detect_mult: b.multiplier,
    };
    let link = LinkConfig {
        test: LinkTestConfig {
            interval: b.link_test_interval,
            length: b.link_test_length,
            peer_required_min_echo_interval: peer_echo,
        },
        hold_down: HoldDownConfig {
            hold_down_time: b.hold_down_time,
            dynamic_damping: b.dynamic_damping,
            maximum_hold_down_time: b.maximum_hold_down_time,
        },
    };
    (bfd, link)
}

impl ZeroTrust {
    /// A reload, step 1 (changes nothing): the key timers of `cfg`, checked.
    pub fn reload_check(&self, cfg: &Config) -> Result<KeyConfig, svr_keymgmt::SetupError> {
        let k = key_config(cfg);
        k.validate()?;
        Ok(k)
    }

    /// A reload, step 1 for the trust anchor: `Some` when `cfg`'s root certificate or CRL
    /// file now holds something else than what runs (a new CRL from the conductor). On
    /// `Err` (one line naming the field) nothing changes.
    pub fn trust_check(&self, cfg: &Config) -> Result<Option<NewTrust>, StartupError> {
        let (anchor, files) = trust_anchor(cfg)?;
        Ok((files != self.trust_files).then_some(NewTrust { anchor, files }))
    }

    /// A reload, step 2 for the trust anchor: every peer is checked against it at once; a
    /// peer it now rejects (revoked) loses its keys and paths (event=certificate-rejected).
    pub fn trust_apply(&mut self, now: Instant, new: NewTrust) {
        let crls = new.anchor.crl_count();
        let revoked = self
            .co
            .set_trust_anchor(now, unix_now(), Arc::new(new.anchor));
        self.trust_files = new.files;
        self.record(
            now,
            format!("event=trust-anchor-reloaded crls={crls} peers-rejected={revoked}"),
        );
    }

    /// A reload, step 2: the key timers from [`Self::reload_check`] and every path's BFD,
    /// link-test and hold-down settings of `cfg` (the same peers and waypoint pairs as now:
    /// `svr_config::diff` refused anything else). Keys and sessions are kept.
    pub fn reload_apply(&mut self, now: Instant, cfg: &Config, keys: KeyConfig) {
        if let Err(e) = self.co.set_key_timers(now, keys) {
            // reload_check validated the same settings.
            log::error!("key timers not changed: {e}");
        }
        for (path, &pair) in self.pair_of_path.iter().enumerate() {
            let Some(p) = self.svr.pairs().get(pair) else {
                continue;
            };
            let (bfd, link) = path_settings(cfg, usize::from(p.peer));
            self.co.set_path_config(now, path, bfd, link);
        }
    }

    /// Builds the coordinator: one key state machine per peer and one BFD session per
    /// waypoint pair, at `now`, with `creds` from [`load_credentials`]. Gates the fast path's
    /// paths: none is in service until BFD and the key exchange say so.
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
            trust_files,
        } = creds;
        let local_cert = identity.chain().first().and_then(|c| cert_info(c));
        let identity = Arc::new(identity);
        let anchor = Arc::new(anchor);
        let skm = &cfg.authority.security_key_management;
        let key_cfg = key_config(cfg);
        let scale = skm.test_time_scale.max(1);
        if scale != 1 {
            log::warn!(
                "security-key-management.test-time-scale is {scale}: key timers run {scale}x faster than the clock (TEST ONLY)"
            );
        }
        let mut peers = Vec::new();
        for (i, p) in me.peer.iter().enumerate() {
            let peer_path = format!("authority.router[{ri}].peer[{i}]");
            let peer_name = cfg
                .router(&p.router)
                .and_then(|r| r.peering_common_name.clone())
                .ok_or_else(|| {
                    pki_err(&peer_path, &"the peer router has no peering-common-name")
                })?;
            peers.push(PeerSpec {
                name: p.router.clone(),
                setup: PeerSetup {
                    local_name: local_name.clone(),
                    peer_name,
                    config: key_cfg,
                    software_version: SoftwareVersion::this_build(),
                },
                identity: Arc::clone(&identity),
                anchor: Arc::clone(&anchor),
                rng: Box::new(rand::rngs::OsRng),
            });
        }
        let mut paths = Vec::new();
        let mut pair_of_path = Vec::new();
        for (i, pair) in svr.pairs().iter().enumerate() {
            let peer = usize::from(pair.peer);
            if peer >= peers.len() {
                continue;
            }
            let (bfd, link) = path_settings(cfg, peer);
            paths.push(PathSpec {
                peer,
                local: pair.local,
                remote: pair.remote,
                bfd,
                // Unique per pair and unlikely to repeat across restarts (RFC 5880 §6.3).
                discriminator: (rand::random::<u32>() & 0x7fff_0000) | (i as u32 + 1),
                jitter_seed: rand::random(),
                link,
            });
            pair_of_path.push(i);
        }
        let co = PeerCoordinator::new(now, scale, peers, &paths).map_err(|e| match e {
            SetupError::Peer { peer, source } => {
                pki_err(&format!("authority.router[{ri}].peer[{peer}]"), &source)
            }
            e => pki_err(&format!("authority.router[{ri}].peer"), &e),
        })?;
        for i in 0..co.peer_count() {
            if let Some(p) = co.peer(i) {
                log::info!(
                    "peer={} peering-common-name={} role={:?} key-exchange-algorithm={}",
                    p.name,
                    p.keys.peer_name(),
                    p.keys.role(),
                    skm.key_exchange_algorithm.as_str()
                );
            }
        }
        svr.keys.gate_paths(svr.pairs().len());
        let peer_count = co.peer_count();
        let path_count = co.path_count();
        Ok(ZeroTrust {
            rotations: vec![Rotations::default(); peer_count],
            path_up_since: vec![None; path_count],
            local_cert,
            wan_mtu: usize::from(svr.cfg.wan_mtu),
            svr,
            co,
            pair_of_path,
            history: VecDeque::with_capacity(HISTORY),
            counters: Counters::default(),
            buf: vec![0u8; TX_BUF],
            bfd_drop_names: bfd_drop_names(),
            trust_files,
        })
    }

    fn record(&mut self, now: Instant, line: String) {
        log::info!("{line}");
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((now, unix_now_ms(), line));
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
        // Unknown paths and discarded packets are counted by the coordinator.
        let _ = self
            .co
            .handle_bfd_datagram(now, unix_now(), dst, src, u.payload);
        true
    }

    /// A port's link went up or down: a peer without valid keys retries at once (what it
    /// sends goes out on the next [`ZeroTrust::drive`]).
    pub fn interface_state_changed(&mut self, now: Instant) {
        self.co.interface_state_changed(now);
    }

    /// Runs due timers, applies what the coordinator publishes to the fast path, logs its
    /// events, and sends the BFD packets that are due through `slow`. Call after inputs and
    /// on every loop of the slow-path thread.
    pub fn drive(&mut self, now: Instant, slow: &mut SlowPath) {
        if self.co.poll_timeout().is_some_and(|t| t <= now) {
            self.co.handle_timeout(now);
        }
        while let Some(p) = self.co.poll_publish() {
            self.apply(now, p);
        }
        while let Some(e) = self.co.poll_event() {
            if e.is_detail() {
                log::debug!("{e}");
            } else {
                self.record(now, e.to_string());
            }
        }
        self.track_rotations(now);
        while let Some(t) = self.co.poll_transmit(now, &mut self.buf) {
            let pkt = udp_packet(t.local, t.remote, &self.buf[..t.len]);
            if pkt.len() > self.wan_mtu {
                self.counters.bfd_tx_over_mtu += 1;
            }
            slow.send_ip(now, &pkt);
        }
    }

    fn apply(&mut self, now: Instant, p: Publish) {
        match p {
            Publish::PeerKeys {
                peer,
                keys,
                payload_key_index,
            } => {
                // New sessions take the new payload-key index from here on; live sessions
                // see it on their next packet and re-key (docs/protocol.md §4.1).
                self.svr.keys.publish_peer(
                    peer as PeerId,
                    KeyPair {
                        current: keys.own_current,
                        previous: keys.own_previous,
                    },
                    KeyPair {
                        current: keys.send,
                        previous: None,
                    },
                    payload_key_index,
                );
            }
            Publish::PathService {
                path, in_service, ..
            } => {
                if let Some(since) = self.path_up_since.get_mut(path) {
                    *since = in_service.then(|| since.unwrap_or(now));
                }
                if let Some(&pair) = self.pair_of_path.get(path) {
                    // When it entered service: `revertible-failover` returns to it a
                    // hold-down later.
                    self.svr.keys.set_path_in_service_at(pair, in_service, now);
                }
            }
            // Into the path selector's snapshot: new sessions choose by SLA from it.
            Publish::PathMetrics { path, metrics } => {
                let at = self.pair_of_path.get(path).copied();
                if let Some((peer, index)) = at.and_then(|pair| self.svr.path_of_pair(pair)) {
                    self.svr
                        .keys
                        .publish_path_metrics(peer, index, Some(metrics));
                }
            }
        }
    }

    /// Notes when each peer's peer key, metadata key and payload key changed (a compare per
    /// peer per loop).
    fn track_rotations(&mut self, now: Instant) {
        let snap = self.svr.keys.load();
        for (i, r) in self.rotations.iter_mut().enumerate() {
            let Some(p) = self.co.peer(i) else { continue };
            let k = p.keys;
            if let Some(idx) = k.peer_key_index() {
                if r.peer_key.map(|(x, _)| x) != Some(idx) {
                    r.peer_key = Some((idx, now));
                }
            }
            let md = snap
                .own_per_peer
                .get(i)
                .and_then(|kp| kp.current.as_ref())
                .map(|m| m.rekey_index());
            if let Some(idx) = md {
                if r.metadata_key.map(|(x, _)| x) != Some(idx) {
                    r.metadata_key = Some((idx, now));
                }
            }
            let pk = k.payload_key_index();
            if r.payload_key.map(|(x, _)| x) != Some(pk) {
                r.payload_key = Some((pk, now));
            }
        }
    }

    /// `rekey peer NAME` from the control socket: the pair's leader starts a peer-key
    /// rotation now; its blocks go out on the next [`ZeroTrust::drive`].
    pub fn rekey_peer(
        &mut self,
        now: Instant,
        name: &str,
    ) -> Result<serde_json::Value, svr_mgmt::MgmtError> {
        let peer = (0..self.co.peer_count())
            .find(|&i| self.co.peer(i).is_some_and(|p| p.name == name))
            .ok_or_else(|| svr_mgmt::MgmtError::UnknownPeer(name.to_string()))?;
        self.co
            .rekey_peer(now, peer)
            .map_err(|e| svr_mgmt::MgmtError::Refused(format!("peer {name}: {e}")))?;
        let index = self.co.peer(peer).and_then(|p| p.keys.peer_key_index());
        self.record(
            now,
            format!(
                "peer={name} event=rekey-requested by=control-socket peer-key-index={}",
                index.unwrap_or(0)
            ),
        );
        Ok(serde_json::json!({ "peer": name, "started": true, "peer_key_index": index }))
    }

    /// Peers, paths, keys and the event history for the control socket and `/metrics`.
    pub fn mgmt_view(
        &self,
        now: Instant,
    ) -> (
        Vec<svr_mgmt::model::PeerInfo>,
        Vec<svr_mgmt::model::EventInfo>,
    ) {
        use svr_mgmt::model::{EventInfo, PathInfo, PeerInfo, SecurityInfo};
        let age = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t).as_secs());
        let until = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(now).as_secs());
        let snap = self.svr.keys.load();
        let mut peers = Vec::with_capacity(self.co.peer_count());
        for i in 0..self.co.peer_count() {
            let Some(p) = self.co.peer(i) else { continue };
            let k = p.keys;
            let mut paths = Vec::with_capacity(p.paths.len());
            for &pi in p.paths {
                let Some(path) = self.co.path(pi) else {
                    continue;
                };
                let m = path.metrics;
                let since = self.path_up_since.get(pi).copied().flatten();
                paths.push(PathInfo {
                    local: path.local.to_string(),
                    remote: path.remote.to_string(),
                    bfd_state: format!("{:?}", path.bfd.state()),
                    in_service: path.in_service,
                    latency_ms: m.map(|m| m.latency_ms),
                    jitter_ms: m.map(|m| m.jitter_ms),
                    loss_percent: m.map(|m| m.loss_percent),
                    mos: m.map(|m| m.mos),
                    uptime_s: if path.in_service { age(since) } else { None },
                });
            }
            let up = paths.iter().filter(|x| x.in_service).count() as u32;
            let uptime = paths.iter().filter_map(|x| x.uptime_s).max();
            let r = self.rotations.get(i).copied().unwrap_or_default();
            let (next_peer, next_payload) = self.co.next_rotations(i);
            let key_state = if k.path_in_service() {
                "valid"
            } else if k.is_invalid() {
                "invalid"
            } else {
                "pending"
            };
            peers.push(PeerInfo {
                name: p.name.to_string(),
                common_name: Some(k.peer_name().to_string()),
                status: if up > 0 { "up" } else { "down" }.into(),
                role: Some(format!("{:?}", k.role()).to_lowercase()),
                version: k.peer_software_version().map(|v| v.to_string()),
                paths_up: up,
                paths_total: paths.len() as u32,
                uptime_s: uptime,
                paths,
                security: SecurityInfo {
                    key_state: key_state.into(),
                    peer_key_index: k.peer_key_index().map(u32::from),
                    own_metadata_key_index: snap
                        .own_per_peer
                        .get(i)
                        .and_then(|kp| kp.current.as_ref())
                        .map(|m| m.rekey_index()),
                    peer_metadata_key_index: snap
                        .peers
                        .get(i)
                        .and_then(|kp| kp.current.as_ref())
                        .map(|m| m.rekey_index()),
                    payload_key_index: u32::from(k.payload_key_index()),
                    peer_key_age_s: age(r.peer_key.map(|x| x.1)),
                    metadata_key_age_s: age(r.metadata_key.map(|x| x.1)),
                    payload_key_age_s: age(r.payload_key.map(|x| x.1)),
                    next_peer_rekey_s: until(next_peer),
                    next_payload_rekey_s: until(next_payload),
                    peer_keys_installed: k.stats().peer_keys_installed,
                    local_certificate: self.local_cert.clone(),
                    peer_certificate: k.peer_certificate().and_then(cert_info),
                },
            });
        }
        let events = self
            .history
            .iter()
            .map(|(_, unix_ms, line)| EventInfo::from_line(*unix_ms, line))
            .collect();
        (peers, events)
    }

    /// Aggregate counters for the report (`slowpath NAME=VALUE` lines).
    pub fn counter_list(&self) -> Vec<(&'static str, u64)> {
        let c = self.co.counters();
        let e = &self.counters;
        let paths = self.co.path_count();
        let in_service = (0..paths)
            .filter(|&i| self.co.path(i).is_some_and(|p| p.in_service))
            .count() as u64;
        let mut v = vec![
            ("bfd_rx", c.bfd_rx),
            ("bfd_rx_unknown_path", c.bfd_rx_unknown_path),
            ("bfd_rx_bad_udp", e.bfd_rx_bad_udp),
            ("bfd_rx_discarded", c.bfd_rx_discarded),
            ("bfd_tx", c.bfd_tx),
            ("bfd_tx_blocks", c.bfd_tx_blocks),
            ("bfd_tx_over_mtu", e.bfd_tx_over_mtu),
            ("bfd_block_too_big", c.bfd_block_too_big),
            ("peer_paths", paths as u64),
            ("peer_paths_in_service", in_service),
            (
                "bfd_blocks_unauthenticated_while_up",
                c.blocks_unauthenticated_while_up,
            ),
        ];
        // BFD discards by reason, summed over the paths.
        let mut bfd = [0u64; svr_bfd::BfdError::COUNT];
        for p in (0..paths).filter_map(|i| self.co.path(i)) {
            for (sum, n) in bfd.iter_mut().zip(p.bfd.stats().rx_discarded) {
                *sum += n;
            }
        }
        v.extend(self.bfd_drop_names.iter().copied().zip(bfd));
        // Key management's refusals, summed over the peers.
        let mut k = [0u64; 10];
        for p in (0..self.co.peer_count()).filter_map(|i| self.co.peer(i)) {
            let s = p.keys.stats();
            let each = [
                s.total_dropped(),
                s.certificate_rejected,
                s.bad_signature,
                s.stale,
                s.clear_rate_limited,
                s.stale_challenge,
                s.offers_reused,
                s.expensive_work,
                s.unsupported,
                s.incompatible_version,
            ];
            for (sum, n) in k.iter_mut().zip(each) {
                *sum += n;
            }
        }
        v.extend(
            [
                "keymgmt_blocks_dropped",
                "keymgmt_certificate_rejected",
                "keymgmt_bad_signature",
                "keymgmt_stale",
                "keymgmt_clear_rate_limited",
                "keymgmt_stale_challenge",
                "keymgmt_offers_reused",
                "keymgmt_expensive_work",
                "keymgmt_unsupported",
                "keymgmt_incompatible_version",
            ]
            .into_iter()
            .zip(k),
        );
        v
    }

    /// Per-peer and per-path state for DPDK telemetry (`/svr/peers`): the values of
    /// [`Self::report`]'s `keymgmt peer=` and `bfd path=` lines. `sessions` as there.
    pub fn peer_states(
        &self,
        sessions: &dyn Fn(IpAddr, IpAddr) -> Option<(u32, u32)>,
    ) -> Vec<crate::telemetry::PeerState> {
        use crate::telemetry::{PathState, PeerState};
        let mut peers: Vec<PeerState> = (0..self.co.peer_count())
            .filter_map(|i| self.co.peer(i))
            .map(|p| PeerState {
                name: p.name.to_string(),
                role: format!("{:?}", p.keys.role()),
                in_service: p.keys.path_in_service(),
                invalid: p.keys.is_invalid(),
                bfd_up: p.bfd_up,
                peer_key_index: u64::from(p.keys.peer_key_index().unwrap_or(0)),
                payload_key_index: u64::from(p.keys.payload_key_index()),
                paths: Vec::new(),
            })
            .collect();
        for p in (0..self.co.path_count()).filter_map(|i| self.co.path(i)) {
            let on_path = sessions(p.local, p.remote).unwrap_or_default();
            let text = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            let state = PathState {
                label: p.label.to_string(),
                bfd_state: format!("{:?}", p.bfd.state()),
                in_service: p.in_service,
                latency_ms: text(p.metrics.map(|m| format!("{:.1}", m.latency_ms))),
                jitter_ms: text(p.metrics.map(|m| format!("{:.1}", m.jitter_ms))),
                loss_pct: text(p.metrics.map(|m| format!("{:.1}", m.loss_percent))),
                mos: text(p.metrics.map(|m| format!("{:.2}", m.mos))),
                sessions_ingress: on_path.0,
                sessions_egress: on_path.1,
            };
            if let Some(peer) = peers.get_mut(p.peer) {
                peer.paths.push(state);
            }
        }
        peers
    }

    /// Per-peer and per-path state and counters, then the latest events (SIGUSR1, exit).
    /// `sessions(local, remote)`: the (ingress, egress) sessions on that waypoint pair.
    pub fn report(&self, sessions: &dyn Fn(IpAddr, IpAddr) -> Option<(u32, u32)>) -> String {
        let mut out = String::new();
        for p in (0..self.co.peer_count()).filter_map(|i| self.co.peer(i)) {
            let k = p.keys;
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
        for p in (0..self.co.path_count()).filter_map(|i| self.co.path(i)) {
            let s = p.bfd.stats();
            let discarded: u64 = s.rx_discarded.iter().sum();
            let on_path = sessions(p.local, p.remote).unwrap_or_default();
            // Smoothed link-test metrics; `-` until the first test completes.
            let (lat, jit, loss, mos) = p.metrics.map_or_else(
                || ("-".into(), "-".into(), "-".into(), "-".into()),
                |m| {
                    (
                        format!("{:.1}", m.latency_ms),
                        format!("{:.1}", m.jitter_ms),
                        format!("{:.1}", m.loss_percent),
                        format!("{:.2}", m.mos),
                    )
                },
            );
            let _ = writeln!(
                out,
                "bfd path={} state={:?} in-service={} tx={} rx={} rx-discarded={} detection-ms={} latency-ms={lat} jitter-ms={jit} loss-pct={loss} mos={mos} sessions-ingress={} sessions-egress={}",
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
                on_path.0,
                on_path.1,
            );
        }
        let skip = self.history.len().saturating_sub(HISTORY_SHOWN);
        for (at, _, line) in self.history.iter().skip(skip) {
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
