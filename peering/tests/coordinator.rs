//! Two coordinators back to back on virtual time: peering on every path, days of rotations,
//! path loss, restarts, time scaling.

mod support;

use std::time::Duration;

use fastpath::time::Instant;
use support::*;
use svr_bfd::{BfdConfig, Diagnostic};
use svr_keymgmt::{KeyConfig, KeyEvent, KeyKind, RekeyInterval};
use svr_peering::{EventKind, OutOfService, Publish};

/// The metadata key a side seals to its peer opens with the peer's own current key.
fn keys_agree(p: &Pair) {
    let last_keys = |s: &Side| {
        s.publishes
            .iter()
            .rev()
            .find_map(|(_, p)| match p {
                Publish::PeerKeys { keys, .. } => Some(keys.clone()),
                _ => None,
            })
            .expect("keys published")
    };
    let (ka, kb) = (last_keys(&p.a), last_keys(&p.b));
    for (tx, rx) in [(&ka, &kb), (&kb, &ka)] {
        let send = tx.send.as_ref().expect("a send key");
        let own = [rx.own_current.as_ref(), rx.own_previous.as_ref()];
        let k = own
            .into_iter()
            .flatten()
            .find(|k| k.rekey_index() == send.rekey_index())
            .expect("the receiver holds the key the sender seals with");
        let mut buf = vec![0u8; 64];
        buf[..10].copy_from_slice(b"0123456789");
        let n = send.encrypt_tlvs(&mut buf, 10, [7; 16]).unwrap();
        assert_eq!(k.decrypt_tlvs(&mut buf[..n]), Ok(10));
        assert_eq!(&buf[..10], b"0123456789");
    }
}

#[test]
fn both_peers_reach_service_on_all_paths() {
    let mut p = Pair::new(Setup::default());
    p.run_until_in_service(secs(10));
    keys_agree(&p);
    for s in [&p.a, &p.b] {
        // At most the packets sent while only one side had installed the new peer key.
        assert!(s.co.counters().bfd_rx_discarded <= 2);
        // (A Key Request crossing the leader's offer is `stale`, as in keymgmt's tests.)
        assert_eq!(s.co.peer(0).unwrap().keys.stats().total_dropped(), 0);
        assert_eq!(s.count(|k| *k == EventKind::PathInService), 2);
        assert!(s.count(|k| matches!(k, EventKind::Key(KeyEvent::PeeringEstablished { .. }))) == 1);
        let v = s.co.peer(0).unwrap();
        assert!(v.bfd_up && v.keys.path_in_service());
        // Publish order: keys before the paths that need them.
        let first_keys = s
            .publishes
            .iter()
            .position(|(_, p)| matches!(p, Publish::PeerKeys { keys, .. } if keys.send.is_some()))
            .unwrap();
        let first_path = s
            .publishes
            .iter()
            .position(|(_, p)| {
                matches!(
                    p,
                    Publish::PathService {
                        in_service: true,
                        ..
                    }
                )
            })
            .unwrap();
        assert!(first_keys < first_path);
    }
    // Event lines read as before.
    let line =
        p.a.events
            .iter()
            .find(|(_, e)| e.kind == EventKind::PathInService && e.path == Some(1))
            .unwrap()
            .1
            .to_string();
    assert_eq!(
        line,
        "peer=router-b path=fd00:9::1->fd00:9::2 event=path-in-service"
    );
    // The exchange rode BFD packets: a few blocks, on the Up paths.
    let blocks = p.a.sent.iter().filter(|s| s.block).count();
    assert!((1..=8).contains(&blocks), "{blocks}");
}

fn rotation_setup(time_scale: u32, bfd_ms: u64) -> Setup {
    Setup {
        keys: KeyConfig {
            peer_key_rekey_interval: RekeyInterval::Hours(1),
            payload_key_rekey_interval: RekeyInterval::Hours(2),
            ..KeyConfig::default()
        },
        bfd: BfdConfig {
            desired_tx: Duration::from_millis(bfd_ms),
            required_min_rx: Duration::from_millis(bfd_ms),
            detect_mult: 3,
        },
        time_scale,
        // Hours of virtual time: the link test (tested in tests/linktest.rs) would cost
        // minutes of HMACs in a debug build.
        link: svr_peering::LinkConfig {
            test: svr_peering::LinkTestConfig {
                length: 0,
                ..Default::default()
            },
            ..Default::default()
        },
    }
}

fn assert_rotated_in_service(p: &Pair, since: Instant, peer_rotations: usize) {
    for s in [&p.a, &p.b] {
        assert!(s.all_in_service());
        assert_eq!(
            s.out_of_service_since(since),
            vec![],
            "a path left service during rotations"
        );
        let peer = s.count(|k| {
            matches!(
                k,
                EventKind::Key(KeyEvent::KeyRotated {
                    which: KeyKind::PeerKey,
                    ..
                })
            )
        });
        let pay = s.count(|k| matches!(k, EventKind::Key(KeyEvent::PayloadKeyRotationDue { .. })));
        assert!(peer >= peer_rotations, "peer-key rotations: {peer}");
        assert!(pay >= peer_rotations / 2, "payload-key rotations: {pay}");
        // Every rotation reached the data plane.
        let key_publishes = s
            .publishes
            .iter()
            .filter(|(_, p)| matches!(p, Publish::PeerKeys { .. }))
            .count();
        assert!(key_publishes > peer, "{key_publishes} publishes");
        assert_eq!(s.co.counters().bfd_block_too_big, 0);
    }
    keys_agree(p);
}

#[test]
fn stays_in_service_through_48_hours_of_rotations() {
    // BFD every 30 s (detection 90 s) keeps 48 h to ~25 k packets.
    let mut p = Pair::new(rotation_setup(1, 30_000));
    p.run_until_in_service(secs(60));
    let since = p.time;
    p.run_until(Instant::ZERO + secs(48 * 3600 + 60));
    assert_rotated_in_service(&p, since, 47);
}

#[test]
fn test_time_scale_runs_48_key_hours_in_48_minutes() {
    let mut p = Pair::new(rotation_setup(60, 1000));
    assert_eq!(p.a.co.time_scale(), 60);
    p.run_until_in_service(secs(10));
    let since = p.time;
    p.run_until(Instant::ZERO + secs(48 * 60 + 5));
    assert_rotated_in_service(&p, since, 47);
    // BFD itself is not scaled: about one packet a second per path and side.
    let tx = p.a.co.path(0).unwrap().bfd.stats().tx_packets;
    assert!((2500..=4000).contains(&tx), "{tx}");
}

#[test]
fn dead_path_leaves_service_within_detection_time_and_blocks_move() {
    let setup = Setup {
        keys: KeyConfig {
            peer_key_rekey_interval: RekeyInterval::Hours(1),
            ..KeyConfig::default()
        },
        ..Setup::default()
    };
    let mut p = Pair::new(setup);
    p.run_until_in_service(secs(10));
    p.run_for(secs(60));
    // Path 0 dies both ways.
    let cut_at = p.time;
    p.a.cut[0] = true;
    p.b.cut[0] = true;
    let detection = p.a.co.path(0).unwrap().bfd.detection_time().unwrap();
    assert_eq!(detection, secs(3));
    p.run_for(detection + secs(1));
    for s in [&p.a, &p.b] {
        let out = s.out_of_service_since(cut_at);
        assert_eq!(out.len(), 1, "{out:?}");
        let (t, path) = out[0];
        assert_eq!(path, 0);
        assert!(
            t - cut_at <= detection,
            "left service after {:?}",
            t - cut_at
        );
        assert!(s.publishes.iter().any(|(_, p)| matches!(
            p,
            Publish::PathService {
                path: 0,
                reason: Some(OutOfService::BfdDown),
                ..
            }
        )));
        assert!(
            s.count(|k| *k
                == EventKind::BfdDown {
                    diag: Diagnostic::ControlDetectionTimeExpired
                })
                >= 1
        );
        assert!(s.in_service(1), "the other path stays");
    }
    // The next rotation's blocks go on path 1 only, and succeed.
    let before = p.time;
    p.run_until(Instant::ZERO + secs(3600 + 120));
    for s in [&p.a, &p.b] {
        let blocks: Vec<usize> = s
            .sent
            .iter()
            .filter(|x| x.block && x.at > before)
            .map(|x| x.path)
            .collect();
        assert!(!blocks.is_empty());
        assert!(blocks.iter().all(|&x| x == 1), "{blocks:?}");
        assert!(
            s.count(|k| matches!(
                k,
                EventKind::Key(KeyEvent::KeyRotated {
                    which: KeyKind::PeerKey,
                    ..
                })
            )) >= 1
        );
        assert!(s.in_service(1) && !s.in_service(0));
    }
    // The path comes back.
    p.a.cut[0] = false;
    p.b.cut[0] = false;
    p.run_until_in_service(secs(10));
}

#[test]
fn both_paths_dead_then_blocks_take_turns() {
    let mut p = Pair::new(Setup::default());
    // Nothing gets through: the follower's Key Requests and the leader's offers alternate
    // between the paths.
    p.a.cut = [true, true];
    p.b.cut = [true, true];
    p.run_for(secs(60));
    for s in [&p.a, &p.b] {
        let paths: Vec<usize> = s.sent.iter().filter(|x| x.block).map(|x| x.path).collect();
        assert!(paths.len() >= 2, "{paths:?}");
        assert!(paths.contains(&0) && paths.contains(&1), "{paths:?}");
        assert!(!s.co.path(0).unwrap().in_service);
    }
    p.a.cut = [false, false];
    p.b.cut = [false, false];
    p.run_until_in_service(secs(30));
    keys_agree(&p);
}

#[test]
fn restarted_peer_repeers() {
    let mut p = Pair::new(Setup::default());
    p.run_until_in_service(secs(10));
    p.run_for(secs(100));
    p.restart_b(7);
    assert!(!p.b.all_in_service());
    p.run_until_in_service(secs(15));
    keys_agree(&p);
    p.run_for(secs(100));
    assert!(p.a.all_in_service() && p.b.all_in_service());
    // A second restart of the follower re-peers the same way.
    p.restart_b(9);
    p.run_until_in_service(secs(15));
    keys_agree(&p);
}

#[test]
fn interface_change_retries_at_once() {
    let mut p = Pair::new(Setup::default());
    p.a.cut = [true, true];
    p.b.cut = [true, true];
    p.run_for(secs(3));
    p.a.cut = [false, false];
    p.b.cut = [false, false];
    let sent =
        p.a.sent.iter().filter(|s| s.block).count() + p.b.sent.iter().filter(|s| s.block).count();
    p.a.co.interface_state_changed(p.time);
    p.b.co.interface_state_changed(p.time);
    p.flush();
    let after =
        p.a.sent.iter().filter(|s| s.block).count() + p.b.sent.iter().filter(|s| s.block).count();
    assert!(after > sent, "a retry went out at once");
    p.run_until_in_service(secs(10));
}

#[test]
fn unknown_path_and_garbage_are_counted() {
    let mut p = Pair::new(Setup::default());
    p.run_until_in_service(secs(10));
    let t = p.time;
    let unix = p.unix();
    let r = p.a.co.handle_bfd_datagram(
        t,
        unix,
        "10.9.0.1".parse().unwrap(),
        "10.9.0.99".parse().unwrap(),
        &[0; 24],
    );
    assert_eq!(r, Err(svr_peering::RxError::UnknownPath));
    assert_eq!(p.a.co.counters().bfd_rx_unknown_path, 1);
    for junk in [&[][..], &[0x20; 10][..], &[0xff; 60][..]] {
        p.inject(false, 0, junk);
    }
    assert_eq!(p.a.co.counters().bfd_rx_discarded, 3);
    p.run_for(secs(10));
    assert!(p.a.all_in_service());
}

#[test]
fn setup_errors_name_the_path() {
    use std::sync::Arc;
    use svr_peering::{PathSpec, PeerCoordinator, SetupError};
    let spec = |d: u32, remote: &str| PathSpec {
        peer: 0,
        local: "10.9.0.1".parse().unwrap(),
        remote: remote.parse().unwrap(),
        bfd: BfdConfig::default(),
        discriminator: d,
        jitter_seed: 1,
        link: svr_peering::LinkConfig::default(),
    };
    let peers = || {
        vec![svr_peering::PeerSpec {
            name: "b".into(),
            setup: svr_keymgmt::PeerSetup {
                local_name: A.into(),
                peer_name: B.into(),
                config: KeyConfig::default(),
                software_version: svr_keymgmt::SoftwareVersion::this_build(),
            },
            identity: pki().a.clone(),
            anchor: Arc::clone(&pki().anchor),
            rng: Box::new(rand::rngs::OsRng),
        }]
    };
    let t = Instant::ZERO;
    assert!(matches!(
        PeerCoordinator::new(t, 1, peers(), &[spec(1, "10.9.0.2"), spec(1, "10.9.1.2")]),
        Err(SetupError::BadDiscriminator { path: 1, .. })
    ));
    assert!(matches!(
        PeerCoordinator::new(t, 1, peers(), &[spec(1, "fd00::2")]),
        Err(SetupError::MixedFamily { path: 0, .. })
    ));
    assert!(matches!(
        PeerCoordinator::new(t, 1, vec![], &[spec(1, "10.9.0.2")]),
        Err(SetupError::UnknownPeer { path: 0, peer: 0 })
    ));
}

#[test]
fn an_operator_rekey_on_the_leader_rotates_the_peer_key_on_both_sides() {
    let mut p = Pair::new(Setup::default());
    p.run_until_in_service(secs(10));
    p.run_for(secs(5));
    let index = |s: &Side| s.co.peer(0).unwrap().keys.peer_key_index();
    assert_eq!((index(&p.a), index(&p.b)), (Some(1), Some(1)));
    // router-a leads; its next rotation is a day away on the real clock.
    let (next, _) = p.a.co.next_rotations(0);
    assert!(next.unwrap() > p.time + secs(23 * 3600));
    assert_eq!(p.b.co.next_rotations(0).0, None);
    assert_eq!(
        p.b.co.rekey_peer(p.time, 0),
        Err(svr_keymgmt::RekeyRefused::Follower)
    );
    assert_eq!(p.a.co.rekey_peer(p.time, 0), Ok(()));
    p.run_for(secs(60));
    assert_eq!((index(&p.a), index(&p.b)), (Some(2), Some(2)));
    assert!(p.a.all_in_service() && p.b.all_in_service());
}

/// BFD packets `s` sent on `path` in `[from, to)`.
fn bfd_sent(s: &Side, path: usize, from: Instant, to: Instant) -> usize {
    s.sent
        .iter()
        .filter(|x| x.path == path && !x.link && x.at >= from && x.at < to)
        .count()
}

/// A reload on a running pair: faster BFD timers take effect through a Poll Sequence and
/// faster rekey intervals through the key clock (time-scaled here as in the testbed), with
/// no path leaving service and the keys in use kept.
#[test]
fn reload_changes_bfd_and_rekey_timers_in_service() {
    let mut setup = rotation_setup(360, 1000);
    setup.keys = KeyConfig {
        peer_key_rekey_interval: RekeyInterval::Hours(720),
        payload_key_rekey_interval: RekeyInterval::Hours(720),
        ..KeyConfig::default()
    };
    let mut p = Pair::new(setup);
    p.run_until_in_service(secs(10));
    p.run_for(secs(20));
    let t0 = p.time;
    let index = |s: &Side| s.co.peer(0).unwrap().keys.peer_key_index();
    let before = index(&p.a);
    let slow = bfd_sent(&p.a, 0, t0 - secs(10), t0);
    assert!((8..=14).contains(&slow), "1/s: {slow}");
    // Reload both routers: BFD every 200 ms, peer key every hour (10 s at 360x).
    let fast = BfdConfig {
        desired_tx: Duration::from_millis(200),
        required_min_rx: Duration::from_millis(200),
        detect_mult: 3,
    };
    let keys = KeyConfig {
        peer_key_rekey_interval: RekeyInterval::Hours(1),
        payload_key_rekey_interval: RekeyInterval::Hours(1),
        ..KeyConfig::default()
    };
    let bad = KeyConfig {
        peer_key_rekey_interval: RekeyInterval::Hours(0),
        ..keys
    };
    assert!(p.a.co.set_key_timers(t0, bad).is_err());
    for s in [&mut p.a, &mut p.b] {
        for path in 0..s.co.path_count() {
            assert!(s.co.set_path_config(t0, path, fast, setup.link));
        }
        s.co.set_key_timers(t0, keys).unwrap();
    }
    assert!(!p.a.co.set_path_config(t0, 99, fast, setup.link));
    p.flush();
    assert_eq!(index(&p.a), before, "keys in use are kept");
    p.run_for(secs(2));
    let t1 = p.time;
    p.run_for(secs(10));
    let quick = bfd_sent(&p.a, 0, t1, p.time);
    assert!(
        (45..=75).contains(&quick),
        "5/s after the Poll Sequence: {quick}"
    );
    assert_eq!(
        p.a.co.path(0).unwrap().bfd.config().desired_tx,
        fast.desired_tx
    );
    // The peer key rotated within the new interval (10 s), and again.
    p.run_for(secs(12));
    let after = index(&p.a).unwrap();
    assert!(
        after.wrapping_sub(before.unwrap()) >= 2,
        "{before:?} -> {after}"
    );
    assert_rotated_in_service(&p, t0, 2);
}
