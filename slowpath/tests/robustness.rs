//! No input panics: arbitrary bytes, and mutations of valid frames (which get past the first
//! parsers and reach deeper code), under every punt reason, on known and unknown ports.

mod common;

use std::time::Duration;

use common::*;
use proptest::prelude::*;

fn seeds() -> Vec<Vec<u8>> {
    [
        ARP_REQUEST,
        ARP_REPLY,
        NS,
        NA,
        ECHO4_REQ,
        ECHO6_REQ,
        TTL4_IN,
        TTL6_IN,
        TE4_OUT,
        TE6_OUT,
    ]
    .iter()
    .map(|h| hex::decode(h).unwrap())
    .collect()
}

fn reason() -> impl Strategy<Value = PuntReason> {
    prop::sample::select(PuntReason::ALL.to_vec())
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (
            prop::sample::select(seeds()),
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(mut f, edits, cut)| {
                for (at, byte) in edits {
                    let i = at.index(f.len());
                    f[i] = byte;
                }
                let keep = cut.index(f.len() + 1).max(f.len() / 2);
                f.truncate(keep);
                f
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_frames_never_panic(
        frames in prop::collection::vec((0u16..3, reason(), input(), 0u64..3_000_000_000), 1..12)
    ) {
        let mut h = Harness::new();
        for (port, reason, frame, gap) in frames {
            h.advance(Duration::from_nanos(gap));
            h.raw(port, reason, &frame);
            h.sp.handle_timeout(h.now);
            for t in h.transmits() {
                // Everything we send is a well-formed Ethernet frame on a real port.
                prop_assert!(t.frame.len() >= 14);
                prop_assert!(t.port == LAN || t.port == WAN);
            }
            h.events();
        }
        // And the machine still winds down.
        h.drive_until(h.now + Duration::from_secs(3600));
        prop_assert_eq!(h.sp.dynamic_neighbor_count(), 0);
        prop_assert_eq!(h.sp.held_frame_count(), 0);
    }
}
