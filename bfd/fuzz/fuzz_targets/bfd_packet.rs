//! The BFD control packet, its authentication section and a session, on arbitrary bytes.
//! The first byte picks the session's setup (bit 0: accept keys 1 and 7 set; bit 1: a send
//! key set; bit 2: the session is first brought Up by a genuine signed packet), the rest is
//! the UDP payload. Invariants: nothing panics; a packet that parses re-emits to the same
//! bytes (but the Reserved byte and the digest); `verify` agrees with re-signing; a discarded
//! packet leaves the session unchanged; a returned block is the payload's tail after BFD
//! Length and starts with the SVR cookie.
#![no_main]

use std::time::Duration;

use fastpath::time::Instant;
use libfuzzer_sys::fuzz_target;
use svr_bfd::auth::{self, CONTROL_LEN_AUTH};
use svr_bfd::{
    AuthKey, AuthRepr, BfdConfig, BfdSession, ControlPacket, ControlRepr, Diagnostic, State,
    SVR_COOKIE,
};

/// The secret of the golden vectors (docs/bfd-metadata.md §5): 00 01 .. 1f.
fn secret() -> [u8; 32] {
    core::array::from_fn(|i| i as u8)
}

fn check_packet(bytes: &[u8]) {
    let Ok(p) = ControlPacket::new_checked(bytes) else {
        return;
    };
    let Ok(repr) = ControlRepr::parse(&p) else {
        return;
    };
    let control = p.control();
    assert_eq!(control.len(), repr.buffer_len());
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ControlPacket::new_unchecked(&mut out[..]));
    if repr.auth.is_some() {
        // Reserved (27) is ignored on receipt; the digest (32..64) is not in the repr.
        assert_eq!(out[..27], control[..27]);
        assert_eq!(out[28..32], control[28..32]);
        assert!(auth::sign(&mut out, &[], &secret()));
        let ok = auth::verify(control, &[], &secret());
        assert_eq!(ok && control[27] == 0, out[..] == control[..]);
        assert!(auth::verify(&out, &[], &secret()));
        assert_eq!(out.len(), CONTROL_LEN_AUTH);
    } else {
        assert_eq!(out[..], control[..]);
    }
}

fn genuine_up(seq: u32) -> Vec<u8> {
    let repr = ControlRepr {
        diag: Diagnostic::NoDiagnostic,
        state: State::Init,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: 1,
        your_discriminator: 2,
        desired_min_tx: 1_000_000,
        required_min_rx: 500_000,
        required_min_echo_rx: 0,
        auth: Some(AuthRepr {
            key_id: 1,
            sequence: seq,
        }),
    };
    let mut b = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ControlPacket::new_unchecked(&mut b[..]));
    auth::sign(&mut b, &[], &secret());
    b
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    check_packet(bytes);

    let now = Instant::from_nanos(1_000_000_000);
    let mut s = BfdSession::new(2, BfdConfig::default(), u64::from(sel), now);
    if sel & 1 != 0 {
        let send = (sel & 2 != 0).then(|| AuthKey::new(1, secret()));
        s.set_auth_keys(send, vec![AuthKey::new(1, secret()), AuthKey::new(7, secret())]);
    }
    if sel & 4 != 0 {
        let _ = s.handle_packet(now, &genuine_up(100)).outcome;
    }
    while s.poll_event().is_some() {}
    let before = (s.state(), s.local_diag(), s.remote_discriminator(), s.poll_timeout());
    let r = s.handle_packet(now, bytes);
    if let Some(block) = r.block {
        assert!(block.starts_with(&SVR_COOKIE));
        assert!(bytes.ends_with(block));
    }
    if r.outcome.is_err() {
        let after = (s.state(), s.local_diag(), s.remote_discriminator(), s.poll_timeout());
        assert_eq!(before, after);
        assert_eq!(s.poll_event(), None);
    }
    // The session still works afterwards.
    let later = now + Duration::from_secs(3600);
    s.handle_timeout(later);
    let mut buf = [0u8; 256];
    let _ = s.poll_transmit(later, &SVR_COOKIE, &mut buf);
});
