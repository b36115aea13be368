//! Two routers keyed over an in-memory wire on a virtual clock (quinn-proto's `Pair`):
//! every row of docs/background.md §7.3, attacks, and hostile input.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use fastpath::time::Instant;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use svr_keymgmt::message::{
    self, encode_block, parse_block, Hello, KeyRequest, Message, Protection,
};
use svr_keymgmt::peer::{CLEAR_BLOCK_BURST, CLEAR_BLOCK_RATE};
use svr_keymgmt::pki::{generate_authority, issue_router, AuthorityPems, TrustAnchor, Validity};
use svr_keymgmt::*;

const UNIX0: u64 = 1_800_000_000;
const A: &str = "router-a";
const B: &str = "router-b";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn at(s: u64) -> Instant {
    Instant::ZERO + secs(s)
}

struct Pki {
    auth: AuthorityPems,
    anchor: Arc<TrustAnchor>,
    a: Arc<Identity>,
    b: Arc<Identity>,
}

fn pki() -> &'static Pki {
    static P: OnceLock<Pki> = OnceLock::new();
    P.get_or_init(|| {
        let auth = generate_authority("acme", Validity::days_from(UNIX0 - 86_400, 3650)).unwrap();
        let anchor = Arc::new(TrustAnchor::load(auth.root_cert_pem.as_bytes()).unwrap());
        let a = identity_from(&auth, A, Validity::days_from(UNIX0, 365));
        let b = identity_from(&auth, B, Validity::days_from(UNIX0, 365));
        Pki { auth, anchor, a, b }
    })
}

fn identity_from(auth: &AuthorityPems, name: &str, v: Validity) -> Arc<Identity> {
    let r = issue_router(
        &auth.intermediate_cert_pem,
        &auth.intermediate_key_pem,
        name,
        v,
    )
    .unwrap();
    Arc::new(Identity::load(r.cert_chain_pem.as_bytes(), r.key_pem.as_bytes()).unwrap())
}

fn state(
    now: Instant,
    local: &str,
    peer: &str,
    cfg: KeyConfig,
    id: Arc<Identity>,
    seed: u64,
) -> PeerKeyState {
    state_v(
        now,
        local,
        peer,
        cfg,
        id,
        seed,
        SoftwareVersion::this_build(),
    )
}

fn state_v(
    now: Instant,
    local: &str,
    peer: &str,
    cfg: KeyConfig,
    id: Arc<Identity>,
    seed: u64,
    software_version: SoftwareVersion,
) -> PeerKeyState {
    PeerKeyState::new(
        now,
        PeerSetup {
            local_name: local.into(),
            peer_name: peer.into(),
            config: cfg,
            software_version,
        },
        id,
        pki().anchor.clone(),
        Box::new(StdRng::seed_from_u64(seed)),
    )
    .unwrap()
}

struct Node {
    st: PeerKeyState,
    events: Vec<(Instant, KeyEvent)>,
    sent: Vec<(Instant, Vec<u8>)>,
}

impl Node {
    fn new(st: PeerKeyState) -> Node {
        Node {
            st,
            events: Vec::new(),
            sent: Vec::new(),
        }
    }

    fn count(&self, f: impl Fn(&KeyEvent) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }

    fn has(&self, e: &KeyEvent) -> bool {
        self.events.iter().any(|(_, x)| x == e)
    }
}

type Mitm = Box<dyn FnMut(Vec<u8>) -> Vec<u8>>;

struct Pair {
    time: Instant,
    a: Node,
    b: Node,
    a_to_b: bool,
    b_to_a: bool,
    mitm: Option<Mitm>,
}

impl Pair {
    fn new(cfg: KeyConfig) -> Pair {
        Pair::with(
            state(Instant::ZERO, A, B, cfg, pki().a.clone(), 1),
            state(Instant::ZERO, B, A, cfg, pki().b.clone(), 2),
        )
    }

    fn with(a: PeerKeyState, b: PeerKeyState) -> Pair {
        Pair {
            time: Instant::ZERO,
            a: Node::new(a),
            b: Node::new(b),
            a_to_b: true,
            b_to_a: true,
            mitm: None,
        }
    }

    fn unix(&self) -> u64 {
        UNIX0 + self.time.as_nanos() / 1_000_000_000
    }

    fn bfd_up(&mut self) {
        self.a.st.bfd_up(self.time);
        self.b.st.bfd_up(self.time);
        self.drive();
    }

    fn collect(&mut self) {
        for n in [&mut self.a, &mut self.b] {
            while let Some(e) = n.st.poll_event() {
                n.events.push((self.time, e));
            }
        }
    }

    /// Exchange blocks (zero latency) until both sides are quiet.
    fn drive(&mut self) {
        let unix = self.unix();
        for _ in 0..64 {
            let mut moved = false;
            if let Some(blk) = self.a.st.poll_block() {
                moved = true;
                self.a.sent.push((self.time, blk.clone()));
                if self.a_to_b {
                    let blk = match self.mitm.as_mut() {
                        Some(m) => m(blk),
                        None => blk,
                    };
                    self.b.st.handle_block(self.time, unix, &blk);
                }
            }
            if let Some(blk) = self.b.st.poll_block() {
                moved = true;
                self.b.sent.push((self.time, blk.clone()));
                if self.b_to_a {
                    let blk = match self.mitm.as_mut() {
                        Some(m) => m(blk),
                        None => blk,
                    };
                    self.a.st.handle_block(self.time, unix, &blk);
                }
            }
            self.collect();
            if !moved {
                return;
            }
        }
        panic!("livelock: blocks still flowing after 64 rounds");
    }

    fn run_until(&mut self, end: Instant) {
        self.drive();
        loop {
            let next = [self.a.st.poll_timeout(), self.b.st.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(w) if w <= end => {
                    self.time = w.max(self.time);
                    self.a.st.handle_timeout(self.time);
                    self.b.st.handle_timeout(self.time);
                    self.drive();
                }
                _ => break,
            }
        }
        self.time = end;
        self.a.st.handle_timeout(end);
        self.b.st.handle_timeout(end);
        self.drive();
    }
}

/// Encrypt SVR metadata with the sender's view of the peer's key; the receiver finds its own
/// key by the rekey index, verifies and decrypts.
fn md_roundtrip(tx: &PeerKeyState, rx: &PeerKeyState) -> bool {
    let Some(k) = tx.send_metadata_key() else {
        return false;
    };
    let mut buf = vec![0u8; 64];
    buf[..10].copy_from_slice(b"0123456789");
    let n = k.encrypt_tlvs(&mut buf, 10, [7; 16]).unwrap();
    let tag = svr_crypto::PacketKey::sign(k.mac(), &buf[..n]);
    let Some(rk) = rx.recv_metadata_key(k.rekey_index()) else {
        return false;
    };
    svr_crypto::PacketKey::verify(rk.mac(), &buf[..n], &tag).is_ok()
        && rk.decrypt_tlvs(&mut buf[..n]) == Ok(10)
        && &buf[..10] == b"0123456789"
}

fn established(p: &Pair) {
    assert!(
        p.a.st.path_in_service(),
        "a not in service: {:?}",
        p.a.events
    );
    assert!(
        p.b.st.path_in_service(),
        "b not in service: {:?}",
        p.b.events
    );
    assert_eq!(p.a.st.peer_key_index(), p.b.st.peer_key_index());
    assert!(md_roundtrip(&p.a.st, &p.b.st), "a -> b metadata");
    assert!(md_roundtrip(&p.b.st, &p.a.st), "b -> a metadata");
}

#[test]
fn peering_x25519() {
    let mut p = Pair::new(KeyConfig::default());
    p.bfd_up();
    established(&p);
    assert_eq!(p.a.st.role(), Role::Leader);
    assert_eq!(p.b.st.role(), Role::Follower);
    for n in [&p.a, &p.b] {
        assert!(n.has(&KeyEvent::PeeringEstablished { peer_key_index: 1 }));
        assert_eq!(n.st.stats().total_dropped(), 0);
        let rendered: Vec<String> = n.st.history().iter().map(|r| r.to_string()).collect();
        assert!(
            rendered[0].contains("event=peering-established"),
            "{rendered:?}"
        );
    }
    // The whole exchange took a handful of blocks: KR; H_L; H_F; Fin; Ack+MD; MD+Ack; Ack.
    assert!(
        p.a.sent.len() + p.b.sent.len() <= 8,
        "{}",
        p.a.sent.len() + p.b.sent.len()
    );
    let dbg = format!("{:?}", p.a.st);
    assert!(
        dbg.contains("<redacted>") && dbg.contains("router-b"),
        "{dbg}"
    );
}

#[test]
fn peering_dh_modp_4096() {
    let cfg = KeyConfig {
        algorithm: KeyExchangeAlgorithm::DhModp4096,
        ..KeyConfig::default()
    };
    let mut p = Pair::new(cfg);
    p.bfd_up();
    established(&p);
    // The leader's Hello (its second block, after asking for a challenge) carries a 512-byte
    // public value.
    let (_, second) = &p.a.sent[1];
    let msgs = parse_block(second).unwrap().open(None).unwrap();
    assert!(msgs
        .iter()
        .any(|m| matches!(m, Message::Hello(h) if h.public.len() == 512 && h.algorithm == 2)));
}

#[test]
fn rotation_on_each_interval_for_days() {
    let cfg = KeyConfig {
        peer_key_rekey_interval: RekeyInterval::Hours(1),
        payload_key_rekey_interval: RekeyInterval::Hours(2),
        ..KeyConfig::default()
    };
    let mut p = Pair::new(cfg);
    p.bfd_up();
    established(&p);
    p.run_until(at(3 * 86_400 + 31));
    established(&p);
    for n in [&p.a, &p.b] {
        let peer = n.count(|e| {
            matches!(
                e,
                KeyEvent::KeyRotated {
                    which: KeyKind::PeerKey,
                    ..
                }
            )
        });
        let md = n.count(|e| {
            matches!(
                e,
                KeyEvent::KeyRotated {
                    which: KeyKind::MetadataKey,
                    ..
                }
            )
        });
        let pay = n.count(|e| matches!(e, KeyEvent::PayloadKeyRotationDue { .. }));
        assert_eq!(peer, 72, "peer-key rotations");
        assert_eq!(md, 72, "metadata-key rotations");
        assert_eq!(pay, 36, "payload-key rotations");
        assert_eq!(n.count(|e| *e == KeyEvent::PathOutOfService), 0);
        assert_eq!(n.st.payload_key_index(), 36);
        // Rotations happen on schedule: the k-th peer key is used from k h + 30 s.
        let first = n
            .events
            .iter()
            .find(|(_, e)| {
                matches!(
                    e,
                    KeyEvent::KeyRotated {
                        which: KeyKind::PeerKey,
                        ..
                    }
                )
            })
            .unwrap()
            .0;
        assert_eq!(first, at(3600 + 30));
        let pay_first = n
            .events
            .iter()
            .find(|(_, e)| matches!(e, KeyEvent::PayloadKeyRotationDue { .. }))
            .unwrap();
        assert_eq!(pay_first.0, at(7200));
        assert_eq!(
            pay_first.1,
            KeyEvent::PayloadKeyRotationDue {
                payload_key_index: 1
            }
        );
    }
    // 72 rotations of an 8-bit index: 1 + 72.
    assert_eq!(p.a.st.peer_key_index(), Some(73));
}

#[test]
fn never_means_never() {
    let cfg = KeyConfig {
        peer_key_rekey_interval: RekeyInterval::Never,
        payload_key_rekey_interval: RekeyInterval::Never,
        ..KeyConfig::default()
    };
    let mut p = Pair::new(cfg);
    p.bfd_up();
    let sent = p.a.sent.len() + p.b.sent.len();
    p.run_until(at(30 * 86_400));
    established(&p);
    for n in [&p.a, &p.b] {
        assert_eq!(n.count(|e| matches!(e, KeyEvent::KeyRotated { .. })), 0);
        assert_eq!(
            n.count(|e| matches!(e, KeyEvent::PayloadKeyRotationDue { .. })),
            0
        );
        assert_eq!(n.st.poll_timeout(), None, "nothing left to do");
    }
    assert_eq!(
        p.a.sent.len() + p.b.sent.len(),
        sent,
        "idle pair sends nothing"
    );
    assert_eq!(p.a.st.peer_key_index(), Some(1));
}

#[test]
fn switch_over_30_seconds_and_grace() {
    let cfg = KeyConfig {
        peer_key_rekey_interval: RekeyInterval::Hours(1),
        ..KeyConfig::default()
    };
    let mut p = Pair::new(cfg);
    p.bfd_up();
    let old_md = p.a.st.send_metadata_key().unwrap().rekey_index();
    // A block b sealed under peer key 1, kept to replay later.
    let (_, old_block) = p.b.sent.last().unwrap().clone();
    assert_eq!(parse_block(&old_block).unwrap().key_index, Some(1));

    // The rekey runs at 1 h (zero latency: it completes at once).
    p.run_until(at(3600));
    assert!(p.a.st.stats().peer_keys_installed >= 2);
    assert_eq!(p.a.st.peer_key_index(), Some(1), "old peer key still used");
    assert_eq!(p.a.st.send_metadata_key().unwrap().rekey_index(), old_md);
    p.run_until(at(3629));
    assert_eq!(p.a.st.peer_key_index(), Some(1));
    assert_eq!(p.a.st.send_metadata_key().unwrap().rekey_index(), old_md);
    assert!(md_roundtrip(&p.a.st, &p.b.st));
    assert!(md_roundtrip(&p.b.st, &p.a.st));

    p.run_until(at(3630));
    assert_eq!(
        p.a.st.peer_key_index(),
        Some(2),
        "new peer key used after 30 s"
    );
    assert_eq!(p.b.st.peer_key_index(), Some(2));
    assert_eq!(
        p.a.st.send_metadata_key().unwrap().rekey_index(),
        old_md + 1
    );
    // The old metadata key is still accepted during the grace period...
    assert!(p.b.st.recv_metadata_key(old_md).is_some());
    assert!(md_roundtrip(&p.a.st, &p.b.st));
    // ...and so is the old peer key.
    let unknown = |n: &Node| n.st.stats().dropped(BlockError::UnknownKeyIndex);
    p.run_until(at(3659));
    assert!(p.b.st.recv_metadata_key(old_md).is_some());
    let before = unknown(&p.a);
    p.a.st.handle_block(p.time, p.unix(), &old_block);
    assert_eq!(unknown(&p.a), before, "old peer key accepted in grace");

    // Then both are retired.
    p.run_until(at(3661));
    assert!(p.b.st.recv_metadata_key(old_md).is_none());
    assert!(p.b.st.recv_metadata_key(old_md + 1).is_some());
    p.a.st.handle_block(p.time, p.unix(), &old_block);
    assert_eq!(unknown(&p.a), before + 1, "old peer key retired");
    established(&p);
}

#[test]
fn retransmit_timing_timeout_and_retry_under_total_loss() {
    let mut p = Pair::new(KeyConfig::default());
    p.a_to_b = false;
    p.b_to_a = false;
    p.bfd_up();
    p.run_until(at(4 * 3600 + 1));
    let mut want: Vec<Instant> = (0..=120).map(|k| at(30 * k)).collect();
    want.extend([at(7200), at(10_800), at(14_400)]);
    for n in [&p.a, &p.b] {
        let times: Vec<Instant> = n.sent.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, want);
        assert!(!n.st.path_in_service());
        assert!(n.st.is_invalid());
        let invalid: Vec<Instant> = n
            .events
            .iter()
            .filter(|(_, e)| *e == KeyEvent::PathInvalid)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(invalid, vec![at(3600)]);
        assert!(n.has(&KeyEvent::PeeringFailed {
            reason: FailureReason::NoKeyExchange
        }));
    }
    // Both send Key Requests: the follower its challenge, the leader asking for one (it
    // never offers without the follower's fresh challenge).
    let kinds = |blk: &[u8]| parse_block(blk).unwrap().open(None).unwrap();
    for n in [&p.a, &p.b] {
        for (_, blk) in &n.sent {
            assert!(matches!(
                kinds(blk)[..],
                [Message::KeyRequest(_), Message::SoftwareVersion(_)]
            ));
        }
    }
    assert_eq!(
        p.a.st.stats().expensive_work + p.b.st.stats().expensive_work,
        0
    );

    // An interface change retries at once, and the schedule restarts from there.
    p.run_until(at(15_000));
    p.a.st.interface_state_changed(p.time);
    p.b.st.interface_state_changed(p.time);
    p.drive();
    p.run_until(at(15_000 + 3600 + 1));
    for n in [&p.a, &p.b] {
        let tail: Vec<Instant> = n.sent.iter().rev().take(2).map(|(t, _)| *t).collect();
        assert_eq!(tail, vec![at(18_600), at(15_000)]);
    }

    // The link heals: the next retry peers them.
    p.a_to_b = true;
    p.b_to_a = true;
    p.run_until(at(15_000 + 2 * 3600));
    established(&p);
    assert!(!p.a.st.is_invalid());
}

#[test]
fn keys_survive_bfd_down_and_up() {
    let mut p = Pair::new(KeyConfig::default());
    p.bfd_up();
    established(&p);
    let idx = p.a.st.peer_key_index();
    let sent = p.a.sent.len() + p.b.sent.len();
    p.a.st.bfd_down(p.time);
    p.b.st.bfd_down(p.time);
    p.collect();
    assert!(!p.a.st.path_in_service() && !p.b.st.path_in_service());
    assert!(p.a.has(&KeyEvent::PathOutOfService));
    p.run_until(at(2 * 3600));
    p.bfd_up();
    established(&p);
    assert_eq!(p.a.st.peer_key_index(), idx);
    assert_eq!(p.a.sent.len() + p.b.sent.len(), sent, "no new exchange");
}

/// Replace the Hello's public value (and optionally its salt) with an attacker's.
fn swap_hello(blk: Vec<u8>, swap_public: bool, swap_salt: bool) -> Vec<u8> {
    let Ok(view) = parse_block(&blk) else {
        return blk;
    };
    if view.is_sealed() {
        return blk;
    }
    let name = view.peering_name.to_owned();
    let mut msgs = view.open(None).unwrap();
    for m in &mut msgs {
        if let Message::Hello(h) = m {
            if swap_public {
                let mut rng = StdRng::seed_from_u64(666);
                let alg = KeyExchangeAlgorithm::from_id(h.algorithm).unwrap();
                let evil = svr_keymgmt::exchange::EphemeralSecret::generate(alg, &mut rng);
                h.public = evil.public().to_vec();
            }
            if swap_salt {
                h.salt = [0x66; 32];
            }
        }
    }
    encode_block(&name, &msgs, Protection::Clear).unwrap()
}

#[test]
fn mitm_swapping_dh_values_or_salts_is_detected() {
    for (public, salt) in [(true, false), (false, true), (true, true)] {
        let mut p = Pair::new(KeyConfig::default());
        p.mitm = Some(Box::new(move |b| swap_hello(b, public, salt)));
        p.bfd_up();
        p.run_until(at(2 * 3600));
        for n in [&p.a, &p.b] {
            assert!(!n.st.path_in_service());
            assert_eq!(n.st.peer_key_index(), None);
            assert_eq!(
                n.count(|e| matches!(e, KeyEvent::PeeringEstablished { .. })),
                0
            );
        }
        // The follower refuses the tampered offer; the leader never gets a valid answer.
        assert!(p.b.has(&KeyEvent::PeeringFailed {
            reason: FailureReason::BadSignature
        }));
        assert!(p.b.st.stats().bad_signature > 0);
        assert!(p.a.st.is_invalid());
    }
}

#[test]
fn certificate_failures_are_rejected_and_never_in_service() {
    let other = generate_authority("evil", Validity::days_from(UNIX0 - 86_400, 3650)).unwrap();
    let day = 86_400i64;
    let u = UNIX0 as i64;
    let cases: Vec<(Arc<Identity>, PkiError)> = vec![
        (
            identity_from(&other, B, Validity::days_from(UNIX0, 365)),
            PkiError::UnknownIssuer,
        ),
        (
            identity_from(
                &pki().auth,
                B,
                Validity {
                    not_before: u - 30 * day,
                    not_after: u - day,
                },
            ),
            PkiError::Expired,
        ),
        (
            identity_from(
                &pki().auth,
                B,
                Validity {
                    not_before: u + day,
                    not_after: u + 30 * day,
                },
            ),
            PkiError::NotYetValid,
        ),
        (
            identity_from(&pki().auth, "router-c", Validity::days_from(UNIX0, 365)),
            PkiError::NameMismatch {
                expected: B.into(),
                found: "router-c".into(),
            },
        ),
    ];
    for (bad_b, reason) in cases {
        let cfg = KeyConfig::default();
        let mut p = Pair::with(
            state(Instant::ZERO, A, B, cfg, pki().a.clone(), 1),
            state(Instant::ZERO, B, A, cfg, bad_b, 2),
        );
        p.bfd_up();
        p.run_until(at(3 * 3600));
        assert!(!p.a.st.path_in_service() && !p.b.st.path_in_service());
        assert_eq!(p.a.st.peer_key_index(), None);
        let rejected: Vec<&KeyEvent> =
            p.a.events
                .iter()
                .map(|(_, e)| e)
                .filter(|e| matches!(e, KeyEvent::CertificateRejected { .. }))
                .collect();
        assert_eq!(
            rejected,
            vec![&KeyEvent::CertificateRejected {
                reason: reason.clone()
            }],
            "reported once, with the reason"
        );
        assert!(p.a.st.stats().certificate_rejected > 1, "{reason}");
        assert!(p.a.has(&KeyEvent::PathInvalid));
    }
}

#[test]
fn silent_peer_fails_to_peer() {
    // b hears a, but nothing of b's reaches a (b "does not speak" the exchange).
    let mut p = Pair::new(KeyConfig::default());
    p.b_to_a = false;
    p.bfd_up();
    p.run_until(at(3600));
    assert!(p.a.has(&KeyEvent::PeeringFailed {
        reason: FailureReason::NoKeyExchange
    }));
    assert!(p.a.has(&KeyEvent::PathInvalid));
    assert!(!p.a.st.path_in_service());
    // b heard valid blocks, so it is invalid but not "does not speak".
    assert!(!p.b.has(&KeyEvent::PeeringFailed {
        reason: FailureReason::NoKeyExchange
    }));
}

#[test]
fn unsupported_version_or_algorithm_fails_to_peer() {
    let mut b = state(
        Instant::ZERO,
        B,
        A,
        KeyConfig::default(),
        pki().b.clone(),
        2,
    );
    let chain = Message::CertificateChain(pki().a.chain().to_vec());
    let hello = |version, algorithm| {
        Message::Hello(Hello {
            version,
            algorithm,
            index: 1,
            salt: [1; 32],
            challenge: [0; 16],
            public: vec![9; 32],
            signature: vec![0; 64],
        })
    };
    let v = svr_keymgmt::exchange::EXCHANGE_VERSION;
    let blk = encode_block(A, &[chain.clone(), hello(v, 9)], Protection::Clear).unwrap();
    b.handle_block(Instant::ZERO, UNIX0, &blk);
    assert_eq!(
        b.poll_event(),
        Some(KeyEvent::PeeringFailed {
            reason: FailureReason::UnsupportedAlgorithm(9)
        })
    );
    // A future exchange version: only the version byte is read, and the event names the
    // software version the block claims.
    let sw = SoftwareVersion::new("0.3.0").unwrap();
    let blk = encode_block(
        A,
        &[chain, hello(v + 1, 1), Message::SoftwareVersion(sw.clone())],
        Protection::Clear,
    )
    .unwrap();
    b.handle_block(Instant::ZERO, UNIX0, &blk);
    let e = b.poll_event().unwrap();
    assert_eq!(
        e,
        KeyEvent::PeeringFailed {
            reason: FailureReason::UnsupportedVersion {
                exchange: v + 1,
                peer_software: Some(sw),
            }
        }
    );
    assert_eq!(
        e.to_string(),
        format!(
            "event=peering-failed reason=unsupported-version={} peer-software=\"0.3.0\"",
            v + 1
        )
    );
    // A clear claim is not the peer's version.
    assert_eq!(b.peer_software_version(), None);
    assert_eq!(b.stats().incompatible_version, 0);
    assert_eq!(b.stats().unsupported, 2);
    assert!(!b.path_in_service());
}

#[test]
fn follower_and_leader_restarts_repeer() {
    let mut p = Pair::new(KeyConfig::default());
    p.bfd_up();
    established(&p);
    // b restarts: new state, no keys. It asks; a offers in clear; both re-key.
    p.run_until(at(100));
    p.b = Node::new(state(
        p.time,
        B,
        A,
        KeyConfig::default(),
        pki().b.clone(),
        3,
    ));
    p.bfd_up();
    assert!(p.b.st.path_in_service());
    p.run_until(at(200));
    established(&p);
    // a restarts.
    p.a = Node::new(state(
        p.time,
        A,
        B,
        KeyConfig::default(),
        pki().a.clone(),
        4,
    ));
    p.bfd_up();
    p.run_until(at(300));
    established(&p);
    assert_eq!(p.a.st.stats().total_dropped(), 0);
}

#[test]
fn restarted_peer_gets_metadata_sealed_with_its_new_key_at_once() {
    let mut p = Pair::new(KeyConfig::default());
    p.bfd_up();
    established(&p);
    p.run_until(at(100));
    // b restarts and loses every key; a must not keep sealing metadata with b's old metadata
    // key for 30 s (b could open none of it): it switches as soon as b's new key arrives.
    p.b = Node::new(state(
        p.time,
        B,
        A,
        KeyConfig::default(),
        pki().b.clone(),
        5,
    ));
    // b's first block (a Key Request in clear) starts a new exchange at a, beside the keys
    // a holds: a clear block alone changes neither keys nor service.
    let blk = p.b.st.poll_block().unwrap();
    p.a.st.handle_block(p.time, p.unix(), &blk);
    assert!(p.a.st.path_in_service(), "a clear block changes nothing");
    assert_eq!(p.a.st.peer_key_index(), Some(1));
    p.collect();
    assert!(!p.a.has(&KeyEvent::PathOutOfService));
    // a's clear offer is in flight; deliver it (and the rest of the exchange).
    p.bfd_up();
    assert!(p.a.st.path_in_service());
    assert!(md_roundtrip(&p.a.st, &p.b.st), "a -> restarted b at once");
    assert!(md_roundtrip(&p.b.st, &p.a.st), "restarted b -> a at once");
    assert!(p.a.has(&KeyEvent::KeyRotated {
        which: KeyKind::MetadataKey,
        index: 1
    }));
    // The leader restarts too (its indices count from 1 again, like the old ones).
    p.run_until(at(200));
    p.a = Node::new(state(
        p.time,
        A,
        B,
        KeyConfig::default(),
        pki().a.clone(),
        6,
    ));
    p.bfd_up();
    assert!(md_roundtrip(&p.b.st, &p.a.st), "b -> restarted a at once");
    assert!(md_roundtrip(&p.a.st, &p.b.st), "restarted a -> b at once");
    // A scheduled rekey afterwards still waits the 30 s.
    let cfg = KeyConfig {
        peer_key_rekey_interval: RekeyInterval::Hours(1),
        ..KeyConfig::default()
    };
    let mut p = Pair::new(cfg);
    p.bfd_up();
    let before = p.a.st.send_metadata_key().map(|k| k.rekey_index());
    p.run_until(at(3600 + 1));
    assert_eq!(
        p.a.st.send_metadata_key().map(|k| k.rekey_index()),
        before,
        "a rekey switches only after 30 s"
    );
    p.run_until(at(3600 + 31));
    assert_ne!(p.a.st.send_metadata_key().map(|k| k.rekey_index()), before);
    established(&p);
}

#[test]
fn peer_claiming_another_name_is_rejected_with_the_reason() {
    // b's certificate and its blocks both say router-c; a expects router-b.
    let c = identity_from(&pki().auth, "router-c", Validity::days_from(UNIX0, 365));
    let cfg = KeyConfig::default();
    let mut p = Pair::with(
        state(Instant::ZERO, A, B, cfg, pki().a.clone(), 1),
        state(Instant::ZERO, "router-c", A, cfg, c, 2),
    );
    p.bfd_up();
    p.run_until(at(600));
    assert!(!p.a.st.path_in_service() && !p.b.st.path_in_service());
    // a never offers to a peer under another name (its Key Requests are dropped as
    // WrongPeer), so b never shows its chain; a says which name the blocks claim.
    assert!(
        p.a.has(&KeyEvent::PeeringFailed {
            reason: FailureReason::PeerNameMismatch {
                claimed: "router-c".into()
            }
        }),
        "{:?}",
        p.a.events
    );
    assert_eq!(p.a.st.stats().expensive_work, 0);
    assert_eq!(
        KeyEvent::PeeringFailed {
            reason: FailureReason::PeerNameMismatch {
                claimed: "x\ny".into()
            }
        }
        .to_string(),
        "event=peering-failed reason=peer-name-mismatch claimed=\"x\\ny\""
    );
    // A chain shown under another name is checked against the expected name.
    let c_id = identity_from(&pki().auth, "router-c", Validity::days_from(UNIX0, 365));
    let mut a = state(Instant::ZERO, A, B, cfg, pki().a.clone(), 9);
    let blk = encode_block(
        "router-c",
        &[Message::CertificateChain(c_id.chain().to_vec())],
        Protection::Clear,
    )
    .unwrap();
    a.handle_block(Instant::ZERO, UNIX0, &blk);
    assert_eq!(
        a.poll_event(),
        Some(KeyEvent::CertificateRejected {
            reason: PkiError::NameMismatch {
                expected: B.into(),
                found: "router-c".into(),
            }
        })
    );
    assert!(p.a.st.stats().dropped(BlockError::WrongPeer) > 0);
}

#[test]
fn sealed_rekeys_leave_the_chain_out_and_check_the_known_one_again() {
    let cfg = KeyConfig {
        algorithm: KeyExchangeAlgorithm::DhModp4096,
        peer_key_rekey_interval: RekeyInterval::Hours(1),
        ..KeyConfig::default()
    };
    // b's certificate expires between the first and the second rekey.
    let u = UNIX0 as i64;
    let b_id = identity_from(
        &pki().auth,
        B,
        Validity {
            not_before: u - 86_400,
            not_after: u + 5400,
        },
    );
    let mut p = Pair::with(
        state(Instant::ZERO, A, B, cfg, pki().a.clone(), 1),
        state(Instant::ZERO, B, A, cfg, b_id, 2),
    );
    p.bfd_up();
    established(&p);
    let first = p.a.sent.len();
    p.run_until(at(3600 + 31));
    established(&p);
    assert_eq!(p.a.st.peer_key_index(), Some(2), "first rekey done");
    // Every rekey block was sealed and small: a dh-modp-4096 Hello without the chain fits a
    // 1500-byte MTU with BFD (24), UDP (8) and IPv6 (40) headers.
    let rekey: Vec<&Vec<u8>> = p.a.sent[first..]
        .iter()
        .chain(&p.b.sent[..])
        .map(|(_, b)| b)
        .filter(|b| parse_block(b).unwrap().is_sealed())
        .collect();
    assert!(!rekey.is_empty());
    for b in &rekey {
        assert!(
            b.len() + 24 + 8 + 40 <= 1500,
            "sealed block of {} bytes",
            b.len()
        );
    }
    assert!(p.a.sent[first..]
        .iter()
        .all(|(_, b)| parse_block(b).unwrap().is_sealed()));
    // At the second rekey b's chain, checked again at that time, has expired.
    p.run_until(at(2 * 3600 + 31));
    assert!(
        p.a.has(&KeyEvent::CertificateRejected {
            reason: PkiError::Expired
        }),
        "{:?}",
        p.a.events
    );
    assert_eq!(
        p.a.st.peer_key_index(),
        Some(2),
        "no key from an expired peer"
    );
}

/// The leader's blocks of a whole peering and one rotation, for the fuzzers.
fn corpus() -> Vec<Vec<u8>> {
    static C: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    C.get_or_init(|| {
        let cfg = KeyConfig {
            peer_key_rekey_interval: RekeyInterval::Hours(1),
            ..KeyConfig::default()
        };
        let mut p = Pair::new(cfg);
        p.bfd_up();
        p.run_until(at(3700));
        p.a.sent.iter().map(|(_, b)| b.clone()).collect()
    })
    .clone()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut b = state(Instant::ZERO, B, A, KeyConfig::default(), pki().b.clone(), 9);
        b.handle_block(Instant::ZERO, UNIX0, &data);
        prop_assert_eq!(b.stats().blocks_in, 1);
        prop_assert!(!b.path_in_service());
    }

    #[test]
    fn bit_flips_and_truncations_are_counted(
        which in any::<prop::sample::Index>(),
        bit in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let from_a = corpus();
        let blk = which.get(&from_a).clone();
        // A follower that lived through the same exchange would hold the keys; a fresh one
        // does not, so sealed blocks must be counted as drops and never panic.
        let mut b = state(Instant::ZERO, B, A, KeyConfig::default(), pki().b.clone(), 9);
        let mut flipped = blk.clone();
        let i = bit.index(flipped.len() * 8);
        flipped[i / 8] ^= 1 << (i % 8);
        b.handle_block(Instant::ZERO, UNIX0, &flipped);
        let truncated = &blk[..cut.index(blk.len())];
        b.handle_block(Instant::ZERO, UNIX0, truncated);
        prop_assert_eq!(b.stats().blocks_in, 2);
        // A truncated block never parses (lengths are cross-checked).
        prop_assert!(b.stats().total_dropped() >= 1);
        prop_assert!(!b.path_in_service());
    }
}

#[test]
fn bit_flip_of_every_sealed_block_bit_is_dropped() {
    // Replay the peering into a twin follower that holds the same keys, flipping one bit of
    // a sealed block: every flip is a counted drop (HMAC, parse, or wrong peer / key index).
    let from_a = corpus();
    let sealed: Vec<&Vec<u8>> = from_a
        .iter()
        .filter(|b| parse_block(b).unwrap().is_sealed())
        .collect();
    assert!(!sealed.is_empty());
    let mut p = Pair::new(KeyConfig::default());
    p.bfd_up();
    established(&p);
    let (_, blk) =
        p.a.sent
            .iter()
            .rev()
            .find(|(_, b)| parse_block(b).unwrap().is_sealed())
            .unwrap()
            .clone();
    for i in 0..blk.len() * 8 {
        let mut f = blk.clone();
        f[i / 8] ^= 1 << (i % 8);
        let before = p.b.st.stats().total_dropped();
        p.b.st.handle_block(p.time, p.unix(), &f);
        assert_eq!(p.b.st.stats().total_dropped(), before + 1, "bit {i}");
    }
    established(&p);
}

#[test]
fn bfd_auth_keys_follow_the_peer_keys_and_their_grace() {
    let cfg = KeyConfig {
        peer_key_rekey_interval: RekeyInterval::Hours(1),
        ..KeyConfig::default()
    };
    let mut p = Pair::new(cfg);
    assert!(p.a.st.bfd_auth_keys().send.is_none());
    assert!(p.a.st.bfd_auth_keys().accept.is_empty());
    p.bfd_up();
    established(&p);
    let ids = |n: &Node| {
        let k = n.st.bfd_auth_keys();
        (
            k.send.as_ref().map(|s| s.key_id),
            k.accept.iter().map(|s| s.key_id).collect::<Vec<_>>(),
        )
    };
    // Both ends derive the same secret from the same peer key.
    let (ka, kb) = (p.a.st.bfd_auth_keys(), p.b.st.bfd_auth_keys());
    assert_eq!(
        ka.send.as_ref().unwrap().secret,
        kb.send.as_ref().unwrap().secret
    );
    assert_eq!(ids(&p.a), (Some(1), vec![1]));
    let dbg = format!("{ka:?}");
    assert!(
        dbg.contains("<redacted>") && dbg.contains("key_id: 1"),
        "{dbg}"
    );
    let g1 = p.a.st.key_generation();
    p.run_until(at(1800));
    assert_eq!(
        p.a.st.key_generation(),
        g1,
        "nothing changed, same generation"
    );
    // Rekey at 1 h: the next key is accepted at once, used for sending 30 s later, and the
    // old one accepted for 30 s more.
    p.run_until(at(3600));
    let g2 = p.a.st.key_generation();
    assert_ne!(g2, g1);
    for n in [&p.a, &p.b] {
        assert_eq!(ids(n), (Some(1), vec![1, 2]));
    }
    p.run_until(at(3630));
    assert_ne!(p.a.st.key_generation(), g2);
    for n in [&p.a, &p.b] {
        assert_eq!(ids(n), (Some(2), vec![2, 1]));
    }
    let g3 = p.a.st.key_generation();
    p.run_until(at(3661));
    assert_ne!(p.a.st.key_generation(), g3);
    for n in [&p.a, &p.b] {
        assert_eq!(ids(n), (Some(2), vec![2]));
    }
    let (ka, kb) = (p.a.st.bfd_auth_keys(), p.b.st.bfd_auth_keys());
    assert_eq!(
        ka.send.as_ref().unwrap().secret,
        kb.send.as_ref().unwrap().secret
    );
}

// ----- attacks on the clear key exchange (issue 13, items 1 and 5) -----

fn kr(challenge: [u8; 16]) -> Message {
    Message::KeyRequest(message::KeyRequest {
        kind: KeyKind::PeerKey,
        have_index: 0,
        challenge,
    })
}

/// What an attacker learns by spoofing a clear leader Key Request to b: b's current
/// challenge, in b's clear reply (which the attacker keeps from a).
fn steal_challenge(p: &mut Pair) -> [u8; 16] {
    let spoof = encode_block(A, &[kr([0; 16])], Protection::Clear).unwrap();
    p.b.st.handle_block(p.time, p.unix(), &spoof);
    let reply = p.b.st.poll_block().expect("b answers with its challenge");
    let view = parse_block(&reply).unwrap();
    assert!(!view.is_sealed(), "asked in clear, answered in clear");
    view.open(None)
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            Message::KeyRequest(r) => Some(r.challenge),
            _ => None,
        })
        .unwrap()
}

fn forged_offer(challenge: [u8; 16], index: u8) -> Vec<u8> {
    let hello = Message::Hello(Hello {
        version: svr_keymgmt::exchange::EXCHANGE_VERSION,
        algorithm: 1,
        index,
        salt: [0x42; 32],
        challenge,
        public: vec![9; 32],
        signature: vec![0xee; 64],
    });
    let chain = Message::CertificateChain(pki().a.chain().to_vec());
    encode_block(A, &[chain, hello], Protection::Clear).unwrap()
}

/// Key generations and out-of-service counts of both sides.
type Snapshot = [(u64, usize); 2];

fn gens(p: &Pair) -> Snapshot {
    [&p.a, &p.b].map(|n| {
        (
            n.st.key_generation(),
            n.count(|e| *e == KeyEvent::PathOutOfService),
        )
    })
}

/// Keys and service exactly as at `before`.
fn unchanged(p: &Pair, before: Snapshot) {
    established(p);
    assert_eq!(gens(p), before, "keys or service changed: {:?}", p.b.events);
}

#[test]
fn spoofed_clear_blocks_with_garbage_signatures_change_nothing() {
    let cfg = KeyConfig {
        peer_key_rekey_interval: RekeyInterval::Hours(1),
        ..KeyConfig::default()
    };
    let mut p = Pair::new(cfg);
    p.bfd_up();
    established(&p);
    let g = gens(&p);
    let (u, t) = (p.unix(), p.time);
    // A garbage offer with a guessed challenge: dropped on the challenge, no expensive work.
    let before = p.b.st.stats().clone();
    p.b.st.handle_block(t, u, &forged_offer([1; 16], 2));
    assert_eq!(p.b.st.stats().stale_challenge, before.stale_challenge + 1);
    assert_eq!(p.b.st.stats().expensive_work, before.expensive_work);
    unchanged(&p, g);
    // With b's real challenge (learned from a spoofed request): the chain is validated and
    // the signature fails; nothing else happens.
    let c = steal_challenge(&mut p);
    p.b.st.handle_block(t, u, &forged_offer(c, 2));
    assert_eq!(p.b.st.stats().expensive_work, before.expensive_work + 1);
    assert_eq!(p.b.st.stats().bad_signature, before.bad_signature + 1);
    unchanged(&p, g);
    // A spoofed clear Key Request "from b" at the leader: at most a parallel clear offer.
    let spoof = encode_block(B, &[kr([3; 16])], Protection::Clear).unwrap();
    p.a.st.handle_block(t, u, &spoof);
    let offer = p.a.st.poll_block().expect("a offers in clear");
    assert!(!parse_block(&offer).unwrap().is_sealed());
    unchanged(&p, g);
    // That offer reaches b: wrong challenge, refused before any work.
    let stale = p.b.st.stats().stale_challenge;
    p.b.st.handle_block(t, u, &offer);
    assert_eq!(p.b.st.stats().stale_challenge, stale + 1);
    unchanged(&p, g);
    // The next scheduled rekey displaces the dangling clear offer and runs as usual.
    p.run_until(at(3600 + 31));
    established(&p);
    assert_eq!(
        p.a.st.peer_key_index(),
        Some(3),
        "rekeyed past the spoofed offer's index"
    );
    for n in [&p.a, &p.b] {
        assert!(!n.has(&KeyEvent::PathOutOfService));
    }
}

#[test]
fn replayed_genuine_clear_offer_is_refused_by_the_challenge_without_dh() {
    let mut p = Pair::new(KeyConfig::default());
    p.bfd_up();
    established(&p);
    let g = gens(&p);
    // The leader's genuine, signed clear offer of the first peering.
    let offer =
        p.a.sent
            .iter()
            .map(|(_, b)| b.clone())
            .find(|b| {
                parse_block(b)
                    .unwrap()
                    .open(None)
                    .is_ok_and(|m| m.iter().any(|m| matches!(m, Message::Hello(_))))
            })
            .unwrap();
    p.run_until(at(60));
    let before = p.b.st.stats().clone();
    p.b.st.handle_block(p.time, p.unix(), &offer);
    assert_eq!(p.b.st.stats().stale_challenge, before.stale_challenge + 1);
    assert_eq!(
        p.b.st.stats().expensive_work,
        before.expensive_work,
        "no DH"
    );
    assert_eq!(p.b.st.poll_block(), None, "nothing to answer");
    unchanged(&p, g);
    // Nor does a restarted follower (a new challenge) answer it.
    let mut fresh = state(p.time, B, A, KeyConfig::default(), pki().b.clone(), 77);
    fresh.handle_block(p.time, p.unix(), &offer);
    assert_eq!(fresh.stats().stale_challenge, 1);
    assert_eq!(fresh.stats().expensive_work, 0);
}

#[test]
fn replayed_key_request_flood_costs_the_leader_one_offer() {
    let mut p = Pair::new(KeyConfig::default());
    p.bfd_up();
    established(&p);
    let g = gens(&p);
    let request = p.b.sent[0].1.clone();
    assert!(matches!(
        parse_block(&request).unwrap().open(None).unwrap()[..],
        [Message::KeyRequest(_), Message::SoftwareVersion(_)]
    ));
    let before = p.a.st.stats().clone();
    for i in 0..1000u64 {
        let t = p.time + Duration::from_millis(i);
        p.a.st.handle_block(t, p.unix(), &request);
        let _ = p.a.st.poll_block();
    }
    let s = p.a.st.stats();
    assert_eq!(
        s.expensive_work,
        before.expensive_work + 1,
        "one offer signed"
    );
    assert_eq!(s.offers_reused, before.offers_reused + 999);
    unchanged(&p, g);
    // Spoofed requests with ever new challenges: only as many offers as the bucket allows.
    p.run_until(at(100));
    let before = p.a.st.stats().clone();
    for i in 0..1000u64 {
        let t = p.time + Duration::from_millis(i);
        let mut c = [0u8; 16];
        c[..8].copy_from_slice(&i.to_be_bytes());
        let spoof = encode_block(B, &[kr(c)], Protection::Clear).unwrap();
        p.a.st.handle_block(t, p.unix(), &spoof);
        let _ = p.a.st.poll_block();
    }
    let s = p.a.st.stats();
    let work = s.expensive_work - before.expensive_work;
    assert!(work <= CLEAR_BLOCK_BURST + CLEAR_BLOCK_RATE, "{work}");
    assert!(work >= CLEAR_BLOCK_BURST, "{work}");
    assert_eq!(
        s.clear_rate_limited - before.clear_rate_limited,
        1000 - work
    );
    unchanged(&p, g);
}

#[test]
fn thousand_replayed_offers_in_one_second_cost_only_the_bucket() {
    let mut p = Pair::new(KeyConfig::default());
    p.bfd_up();
    established(&p);
    let g = gens(&p);
    p.run_until(at(10));
    // The worst case: the attacker even knows b's current challenge.
    let c = steal_challenge(&mut p);
    let offer = forged_offer(c, 2);
    let before = p.b.st.stats().clone();
    for i in 0..1000u64 {
        let t = p.time + Duration::from_millis(i);
        p.b.st.handle_block(t, p.unix(), &offer);
    }
    let s = p.b.st.stats();
    let work = s.expensive_work - before.expensive_work;
    assert!(
        (CLEAR_BLOCK_BURST..=CLEAR_BLOCK_BURST + CLEAR_BLOCK_RATE).contains(&work),
        "{work} expensive verifications"
    );
    assert_eq!(
        s.clear_rate_limited - before.clear_rate_limited,
        1000 - work
    );
    assert_eq!(s.bad_signature - before.bad_signature, work);
    unchanged(&p, g);
    // Recorded offers without the challenge: none reaches the bucket at all.
    p.run_until(at(20));
    let old = forged_offer([0; 16], 2);
    let before = p.b.st.stats().clone();
    for i in 0..1000u64 {
        p.b.st
            .handle_block(p.time + Duration::from_millis(i), p.unix(), &old);
    }
    let s = p.b.st.stats();
    assert_eq!(s.expensive_work, before.expensive_work);
    assert_eq!(s.clear_rate_limited, before.clear_rate_limited);
    assert_eq!(s.stale_challenge - before.stale_challenge, 1000);
    // The bucket refills: a genuine exchange one second later is not starved.
    p.run_until(at(25));
    established(&p);
}

#[test]
fn restarted_peers_repeer_within_seconds_and_noise_never_takes_the_path_down() {
    let mut p = Pair::new(KeyConfig::default());
    p.bfd_up();
    established(&p);
    let request = p.b.sent[0].1.clone();
    let offer = p.a.sent[1].1.clone();
    for (round, restart_b) in [(1u64, true), (2, false), (3, true)] {
        let t0 = at(round * 1000);
        p.run_until(t0);
        let seed = 100 + round;
        if restart_b {
            p.b = Node::new(state(
                p.time,
                B,
                A,
                KeyConfig::default(),
                pki().b.clone(),
                seed,
            ));
        } else {
            p.a = Node::new(state(
                p.time,
                A,
                B,
                KeyConfig::default(),
                pki().a.clone(),
                seed,
            ));
        }
        p.bfd_up();
        p.run_until(t0 + secs(3));
        established(&p);
        for n in [&p.a, &p.b] {
            let up = n
                .events
                .iter()
                .filter(|(t, e)| *t >= t0 && matches!(e, KeyEvent::PeeringEstablished { .. }))
                .count();
            let restarted = std::ptr::eq(n, if restart_b { &p.b } else { &p.a });
            assert!(!restarted || up == 1, "restarted side peered again");
        }
        // After the old key's grace: noise (replayed old request and offer, garbage offers)
        // changes nothing.
        p.run_until(t0 + secs(31));
        let g = gens(&p);
        let (t, u) = (p.time, p.unix());
        p.a.st.handle_block(t, u, &request);
        p.b.st.handle_block(t, u, &offer);
        p.b.st.handle_block(t, u, &forged_offer([5; 16], 9));
        unchanged(&p, g);
        // The leader may have made a clear offer for the replayed request; let it reach b
        // (b refuses it: the challenge is old).
        p.drive();
        unchanged(&p, g);
        p.run_until(t0 + secs(100));
        unchanged(&p, g);
    }
}

#[test]
fn an_operator_rekey_rotates_the_peer_key_at_once_on_the_leader_only() {
    let mut p = Pair::new(KeyConfig::default());
    // Before the first key: nothing to rotate.
    assert_eq!(p.a.st.rekey_now(p.time), Err(RekeyRefused::NoKey));
    p.bfd_up();
    established(&p);
    assert_eq!(p.a.st.peer_key_index(), Some(1));
    // The leader's rotation timer runs, the follower has none; payload rotation on both.
    let (peer_at, payload_at) = p.a.st.next_rotations();
    assert_eq!(peer_at, Some(p.time + secs(24 * 3600)));
    assert!(payload_at.is_some());
    assert_eq!(p.b.st.next_rotations().0, None);
    assert_eq!(p.b.st.rekey_now(p.time), Err(RekeyRefused::Follower));
    // The peer certificate is the one presented.
    let cert = p.b.st.peer_certificate().expect("the leader's certificate");
    let s = certificate_summary(cert).unwrap();
    assert!(s.subject.contains("router-a"), "{}", s.subject);
    assert!(s.not_after_unix > UNIX0 as i64);

    p.time = at(60);
    assert_eq!(p.a.st.rekey_now(p.time), Ok(()));
    p.drive();
    p.run_until(at(200));
    assert_eq!(p.a.st.peer_key_index(), Some(2));
    assert_eq!(p.b.st.peer_key_index(), Some(2));
    assert!(md_roundtrip(&p.a.st, &p.b.st) && md_roundtrip(&p.b.st, &p.a.st));
    // The next scheduled rotation counts from the new key.
    let (peer_at, _) = p.a.st.next_rotations();
    assert!(peer_at.unwrap() >= at(60) + secs(24 * 3600));
}

/// A reload changes the rekey intervals of a running pair: from 24 h to 1 h (peer key) and
/// 2 h (payload key) one hour in, rotations follow the new intervals counted from the last
/// rotation (at once when that is past), the keys in use stay; `never` then stops them; an
/// out-of-range interval is refused and changes nothing.
#[test]
fn rekey_intervals_change_on_a_running_pair() {
    let mut p = Pair::new(KeyConfig::default());
    p.bfd_up();
    established(&p);
    p.run_until(at(3600));
    let index = p.a.st.peer_key_index();
    let faster = KeyConfig {
        peer_key_rekey_interval: RekeyInterval::Hours(1),
        payload_key_rekey_interval: RekeyInterval::Hours(2),
        ..KeyConfig::default()
    };
    let bad = KeyConfig {
        peer_key_rekey_interval: RekeyInterval::Hours(0),
        ..faster
    };
    let now = p.time;
    assert!(p.a.st.set_timers(now, bad).is_err());
    assert_eq!(p.a.st.config(), &KeyConfig::default());
    p.a.st.set_timers(now, faster).unwrap();
    p.b.st.set_timers(now, faster).unwrap();
    assert_eq!(p.a.st.peer_key_index(), index, "keys in use are kept");
    established(&p);
    let peer_rotations = |n: &Node| {
        n.count(|e| {
            matches!(
                e,
                KeyEvent::KeyRotated {
                    which: KeyKind::PeerKey,
                    ..
                }
            )
        })
    };
    let payload = |n: &Node| n.count(|e| matches!(e, KeyEvent::PayloadKeyRotationDue { .. }));
    p.run_until(at(5 * 3600 + 31));
    established(&p);
    for n in [&p.a, &p.b] {
        // Peer key: due at once (1 h since the start), then at 2, 3, 4, 5 h.
        assert_eq!(peer_rotations(n), 5);
        // Payload key: 2 h and 4 h.
        assert_eq!(payload(n), 2);
        assert_eq!(n.count(|e| *e == KeyEvent::PathOutOfService), 0);
    }
    let never = KeyConfig {
        peer_key_rekey_interval: RekeyInterval::Never,
        payload_key_rekey_interval: RekeyInterval::Never,
        ..KeyConfig::default()
    };
    let now = p.time;
    p.a.st.set_timers(now, never).unwrap();
    p.b.st.set_timers(now, never).unwrap();
    p.run_until(at(30 * 3600));
    for n in [&p.a, &p.b] {
        assert_eq!((peer_rotations(n), payload(n)), (5, 2));
    }
    // And back on: counting starts at the reload.
    let now = p.time;
    p.a.st.set_timers(now, faster).unwrap();
    p.b.st.set_timers(now, faster).unwrap();
    p.run_until(at(31 * 3600 + 31));
    established(&p);
    assert_eq!(peer_rotations(&p.a), 6);
}

/// A CRL from the intermediate in `auth` revoking the leaf certificate of `chain` (DER).
fn crl_revoking(auth: &AuthorityPems, leaf_der: &[u8]) -> String {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let key = rcgen::KeyPair::from_pem(&auth.intermediate_key_pem).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&auth.intermediate_cert_pem, key).unwrap();
    let t = |s: u64| time::OffsetDateTime::from_unix_timestamp(s as i64).unwrap();
    let (_, c) = X509Certificate::from_der(leaf_der).unwrap();
    rcgen::CertificateRevocationListParams {
        this_update: t(UNIX0 - 60),
        next_update: t(UNIX0 + 7 * 86_400),
        crl_number: rcgen::SerialNumber::from(2u64),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from_slice(c.raw_serial()),
            revocation_time: t(UNIX0),
            reason_code: Some(rcgen::RevocationReason::CessationOfOperation),
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .unwrap()
    .pem()
    .unwrap()
}

#[test]
fn a_new_crl_revoking_the_peer_takes_its_path_down_at_once_and_for_good() {
    let mut p = Pair::new(KeyConfig::default());
    p.bfd_up();
    established(&p);
    p.run_until(at(60));
    let crl = crl_revoking(&pki().auth, &pki().b.chain()[0]);
    let revoking = Arc::new(
        TrustAnchor::load(pki().auth.root_cert_pem.as_bytes())
            .unwrap()
            .with_crls(crl.as_bytes())
            .unwrap(),
    );
    let (now, unix) = (p.time, p.unix());
    // The same anchor again, or one that still accepts the peer, changes nothing.
    assert!(!p.a.st.set_trust_anchor(now, unix, pki().anchor.clone()));
    assert!(!p.b.st.set_trust_anchor(now, unix, revoking.clone()));
    established(&p);
    let generation = p.a.st.key_generation();
    assert!(p.a.st.set_trust_anchor(now, unix, revoking));
    assert!(!p.a.st.path_in_service(), "revoked peer still in service");
    assert!(p.a.st.bfd_auth_keys().accept.is_empty(), "BFD keys kept");
    assert!(p.a.st.published_keys().send.is_none(), "metadata key kept");
    assert_ne!(p.a.st.key_generation(), generation);
    p.collect();
    assert!(p.a.has(&KeyEvent::CertificateRejected {
        reason: svr_keymgmt::pki::PkiError::Revoked
    }));
    assert_eq!(p.a.count(|e| *e == KeyEvent::PathOutOfService), 1);
    // Hours later, with b retrying all along, a never takes it back (b learns it from BFD:
    // a's control packets no longer authenticate under b's keys).
    p.run_until(at(4 * 3600));
    assert!(!p.a.st.path_in_service());
    assert_eq!(
        p.a.count(|e| matches!(e, KeyEvent::PeeringEstablished { .. })),
        1
    );
}

fn version(s: &str) -> SoftwareVersion {
    SoftwareVersion::new(s).unwrap()
}

fn incompatible(n: &Node) -> Vec<&KeyEvent> {
    n.events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| matches!(e, KeyEvent::IncompatibleVersion { .. }))
        .collect()
}

#[test]
fn peers_learn_each_others_software_version_from_sealed_blocks() {
    let mut p = Pair::new(KeyConfig::default());
    p.bfd_up();
    established(&p);
    for n in [&p.a, &p.b] {
        assert_eq!(
            n.st.peer_software_version(),
            Some(&SoftwareVersion::this_build())
        );
        assert!(incompatible(n).is_empty());
    }
    // Every block that starts an exchange or carries a metadata key says the version.
    let first = &p.b.sent[0].1;
    let msgs = parse_block(first).unwrap().open(None).unwrap();
    assert!(msgs.contains(&Message::SoftwareVersion(SoftwareVersion::this_build())));
}

#[test]
fn an_incompatible_peer_version_is_one_event_naming_it_and_peering_goes_on() {
    let cfg = KeyConfig {
        peer_key_rekey_interval: RekeyInterval::Hours(1),
        ..KeyConfig::default()
    };
    let (old, new) = (version("0.1.0"), version("0.2.3"));
    let mut p = Pair::with(
        state_v(Instant::ZERO, A, B, cfg, pki().a.clone(), 1, old.clone()),
        state_v(Instant::ZERO, B, A, cfg, pki().b.clone(), 2, new.clone()),
    );
    p.bfd_up();
    established(&p);
    let a_saw = KeyEvent::IncompatibleVersion {
        peer: new.clone(),
        local: old.clone(),
    };
    assert_eq!(incompatible(&p.a), vec![&a_saw]);
    assert_eq!(
        a_saw.to_string(),
        "event=incompatible-version peer-version=0.2.3 local-version=0.1.0"
    );
    assert_eq!(
        incompatible(&p.b),
        vec![&KeyEvent::IncompatibleVersion {
            peer: old.clone(),
            local: new,
        }]
    );
    // A day of rekeys re-sends the version: no new event while it does not change.
    p.run_until(at(86_400));
    established(&p);
    assert!(p.a.st.stats().peer_keys_installed > 20);
    assert_eq!(incompatible(&p.a).len(), 1);
    assert_eq!(p.a.st.stats().incompatible_version, 1);
    // b is upgraded... to a compatible version: a learns it, and says nothing.
    let t = p.time;
    p.b = Node::new(state_v(t, B, A, cfg, pki().b.clone(), 3, version("0.1.7")));
    p.bfd_up();
    p.run_until(at(86_400 + 60));
    established(&p);
    assert_eq!(p.a.st.peer_software_version(), Some(&version("0.1.7")));
    assert_eq!(incompatible(&p.a).len(), 1);
    assert!(incompatible(&p.b).is_empty());
}

#[test]
fn a_clear_block_cannot_set_the_peer_version() {
    let mut p = Pair::new(KeyConfig::default());
    p.bfd_up();
    established(&p);
    // An attacker on the path sends a clear Key Request in a's name claiming another version.
    let forged = encode_block(
        A,
        &[
            Message::KeyRequest(KeyRequest {
                kind: KeyKind::PeerKey,
                have_index: 0,
                challenge: [0; 16],
            }),
            Message::SoftwareVersion(version("9.9.9")),
        ],
        Protection::Clear,
    )
    .unwrap();
    let unix = p.unix();
    p.b.st.handle_block(p.time, unix, &forged);
    p.run_until(at(120));
    established(&p);
    assert_eq!(
        p.b.st.peer_software_version(),
        Some(&SoftwareVersion::this_build())
    );
    assert!(incompatible(&p.b).is_empty());
}
