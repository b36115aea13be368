//! A BFD datagram as it reaches the peer coordinator: the control packet through a session
//! without keys (so any block is handed on, as for a restarted peer), then the block through
//! the key-exchange codec, clear and under a fixed peer key. Invariants: nothing panics; a
//! block that parses names a peer of 1-255 bytes; a clear block opens only to messages that
//! are allowed in clear; a sealed block under a key other than its Security Identifier's is
//! refused.
#![no_main]

use fastpath::time::Instant;
use libfuzzer_sys::fuzz_target;
use svr_bfd::{BfdConfig, BfdSession};
use svr_keymgmt::exchange::{PeerKey, PeerKeyMaterial};
use svr_keymgmt::message::parse_block;

fuzz_target!(|data: &[u8]| {
    let mut s = BfdSession::new(7, BfdConfig::default(), 1, Instant::from_nanos(0));
    let received = s.handle_packet(Instant::from_nanos(1_000_000), data);
    let Some(block) = received.block else {
        return;
    };
    let Ok(view) = parse_block(block) else {
        return;
    };
    assert!(!view.peering_name.is_empty() && view.peering_name.len() <= 255);
    match view.key_index {
        None => {
            if let Ok(msgs) = view.open(None) {
                assert!(msgs.iter().all(|m| m.allowed_in_clear()));
            }
        }
        Some(index) => {
            let key = PeerKey::new(&PeerKeyMaterial {
                index: (index as u8).wrapping_add(1),
                enc: [0x11; 32],
                hmac: [0x22; 48],
            });
            assert!(view.open(Some(&key)).is_err() || u32::from(key.index()) == index);
        }
    }
});
