//! Property tests: arbitrary bytes never panic a session and never move its state unless
//! they are a valid control packet; valid control packets round-trip.

use std::time::Duration;

use fastpath::time::Instant;
use proptest::prelude::*;
use svr_bfd::{
    BfdConfig, BfdSession, ControlPacket, ControlRepr, Diagnostic, State, CONTROL_LEN, SVR_COOKIE,
};

/// Two sessions brought Up by hand-fed packets (no harness needed for three packets each).
fn up_pair() -> (BfdSession, BfdSession, Instant) {
    let mut now = Instant::from_nanos(1);
    let mut a = BfdSession::new(0xa, BfdConfig::default(), 1, now);
    let mut b = BfdSession::new(0xb, BfdConfig::default(), 2, now);
    let mut buf = [0u8; 64];
    for _ in 0..4 {
        a.request_transmit();
        b.request_transmit();
        while let Some(n) = a.poll_transmit(now, &[], &mut buf) {
            b.handle_packet(now, &buf[..n]).outcome.unwrap();
        }
        while let Some(n) = b.poll_transmit(now, &[], &mut buf) {
            a.handle_packet(now, &buf[..n]).outcome.unwrap();
        }
        now += Duration::from_millis(10);
    }
    assert_eq!((a.state(), b.state()), (State::Up, State::Up));
    while a.poll_event().is_some() {}
    (a, b, now)
}

fn state_strategy() -> impl Strategy<Value = State> {
    (0u8..4).prop_map(State::from_bits)
}

prop_compose! {
    fn valid_repr()(
        diag in 0u8..32,
        state in state_strategy(),
        poll in any::<bool>(),
        final_ in any::<bool>(),
        c in any::<bool>(),
        demand in any::<bool>(),
        detect_mult in 1u8..,
        my in 1u32..,
        your in any::<u32>(),
        tx in any::<u32>(),
        rx in any::<u32>(),
        echo in any::<u32>(),
    ) -> ControlRepr {
        let your = if matches!(state, State::Init | State::Up) { your.max(1) } else { your };
        ControlRepr {
            diag: Diagnostic::from(diag),
            state,
            poll,
            final_,
            control_plane_independent: c,
            demand,
            detect_mult,
            my_discriminator: my,
            your_discriminator: your,
            desired_min_tx: tx,
            required_min_rx: rx,
            required_min_echo_rx: echo,
            auth: None,
        }
    }
}

fn observe(s: &BfdSession) -> (State, Diagnostic, u32) {
    (s.state(), s.local_diag(), s.remote_discriminator())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_or_move_state(
        bytes in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let (up, _, now) = up_pair();
        let fresh = BfdSession::new(7, BfdConfig::default(), 3, now);
        let mut admin = up.clone();
        admin.set_admin_down(now, true);
        while admin.poll_event().is_some() {}
        for mut s in [up, fresh, admin] {
            let before = observe(&s);
            match s.handle_packet(now, &bytes).outcome {
                Ok(()) => {}
                Err(_) => {
                    prop_assert_eq!(observe(&s), before);
                    prop_assert_eq!(s.poll_event(), None);
                }
            }
            // The session still works afterwards.
            s.handle_timeout(now + Duration::from_secs(3600));
            let mut buf = [0u8; 64];
            let _ = s.poll_transmit(now + Duration::from_secs(3600), &[], &mut buf);
        }
    }

    #[test]
    fn mutated_valid_packets_never_move_state_unless_valid(
        flips in proptest::collection::vec((0usize..CONTROL_LEN + 12, any::<u8>()), 1..6),
        truncate in 0usize..40,
    ) {
        // Start from what B really sends to A (with a metadata block) and damage it.
        let (mut a, mut b, now) = up_pair();
        b.request_transmit();
        let mut buf = [0u8; 64];
        let mut ext = SVR_COOKIE.to_vec();
        ext.extend_from_slice(&[0x10, 0x0c, 0x00, 0x00]);
        let n = b.poll_transmit(now, &ext, &mut buf).unwrap();
        let mut bytes = buf[..n].to_vec();
        for (i, v) in flips {
            if let Some(x) = bytes.get_mut(i) {
                *x ^= v;
            }
        }
        bytes.truncate(bytes.len().saturating_sub(truncate % 3 * 13));
        let before = observe(&a);
        let r = a.handle_packet(now, &bytes);
        match r.outcome {
            Ok(()) => {
                let ext = r.block;
                // Valid: then it parses, and any block starts with the cookie.
                let p = ControlPacket::new_checked(&bytes[..]).unwrap();
                prop_assert!(ControlRepr::parse(&p).is_ok());
                if let Some(e) = ext {
                    prop_assert!(e.starts_with(&SVR_COOKIE));
                }
            }
            Err(e) => {
                prop_assert_eq!(observe(&a), before);
                prop_assert_eq!(a.poll_event(), None);
                prop_assert_eq!(a.stats().discarded(e), 1);
            }
        }
    }

    #[test]
    fn repr_round_trips(repr in valid_repr(), ext in proptest::collection::vec(any::<u8>(), 0..16)) {
        let mut buf = vec![0u8; CONTROL_LEN];
        repr.emit(&mut ControlPacket::new_unchecked(&mut buf[..]));
        let p = ControlPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(ControlRepr::parse(&p).unwrap(), repr);
        // With a block after it: accepted exactly when the block starts with the cookie.
        buf.extend_from_slice(&SVR_COOKIE);
        buf.extend_from_slice(&ext);
        let p = ControlPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(p.extension().map(|e| e.len()), Some(8 + ext.len()));
        prop_assert_eq!(ControlRepr::parse(&p).unwrap(), repr);
    }
}
