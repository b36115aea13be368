//! Property tests: seal/open round trips, and no panic on arbitrary bytes.

use proptest::prelude::*;
use svr_crypto::{
    metadata_ciphertext_len, open_payload, seal_payload, sealed_len, CryptoError, Direction,
    MetadataKey, PayloadKey, ReplayWindow,
};

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::Forward), Just(Direction::Reverse)]
}

proptest! {
    #[test]
    fn seal_open_round_trip(
        key in any::<[u8; 32]>(),
        index in any::<u8>(),
        dir in direction(),
        seq in any::<u64>(),
        header in proptest::collection::vec(any::<u8>(), 0..64),
        payload in proptest::collection::vec(any::<u8>(), 0..1600),
        slack in 0usize..40,
    ) {
        let k = PayloadKey::new(index, &key);
        let cs = header.len();
        // A buffer with spare tailroom, as an mbuf has.
        let mut buf = vec![0xcc; cs + sealed_len(payload.len()) + slack];
        buf[..cs].copy_from_slice(&header);
        buf[cs..cs + payload.len()].copy_from_slice(&payload);
        let total = seal_payload(&k, dir, seq, &mut buf, cs, payload.len()).unwrap();
        prop_assert_eq!(total, cs + sealed_len(payload.len()));
        buf.truncate(total);

        let mut w = ReplayWindow::new();
        let (n, got_seq) = open_payload(&k, dir, &mut buf, cs, &mut w).unwrap();
        prop_assert_eq!(got_seq, seq);
        prop_assert_eq!(&buf[cs..cs + n], &payload[..]);
        prop_assert_eq!(&buf[..cs], &header[..]);
        prop_assert_eq!(w.highest(), Some(seq));
    }

    #[test]
    fn single_bit_flip_never_opens(
        key in any::<[u8; 32]>(),
        dir in direction(),
        seq in any::<u64>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        bit in any::<prop::sample::Index>(),
    ) {
        let k = PayloadKey::new(0, &key);
        let mut buf = payload.clone();
        buf.resize(sealed_len(payload.len()), 0);
        seal_payload(&k, dir, seq, &mut buf, 0, payload.len()).unwrap();
        let b = bit.index(buf.len() * 8);
        buf[b / 8] ^= 1 << (b % 8);
        let mut w = ReplayWindow::new();
        prop_assert_eq!(open_payload(&k, dir, &mut buf, 0, &mut w), Err(CryptoError::BadMac));
        prop_assert_eq!(w.highest(), None);
    }

    #[test]
    fn open_never_panics_on_arbitrary_bytes(
        key in any::<[u8; 32]>(),
        dir in direction(),
        mut bytes in proptest::collection::vec(any::<u8>(), 0..400),
        covered_start in 0usize..450,
        marked in proptest::collection::vec(any::<u64>(), 0..4),
    ) {
        let k = PayloadKey::new(1, &key);
        let mut w = ReplayWindow::new();
        for s in marked {
            w.mark(s);
        }
        let before = w.clone();
        let r = open_payload(&k, dir, &mut bytes, covered_start, &mut w);
        // Random bytes essentially never carry a valid 192-bit tag.
        prop_assert!(r.is_err());
        prop_assert_eq!(w, before);
    }

    #[test]
    fn metadata_decrypt_never_panics(
        enc in any::<[u8; 32]>(),
        mut bytes in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let k = MetadataKey::new(0, &enc, &[0; 48]);
        if let Ok(n) = k.decrypt_tlvs(&mut bytes) {
            prop_assert!(n + 16 < bytes.len());
        }
    }

    #[test]
    fn metadata_round_trip(
        enc in any::<[u8; 32]>(),
        iv in any::<[u8; 16]>(),
        tlvs in proptest::collection::vec(any::<u8>(), 0..700),
    ) {
        let k = MetadataKey::new(9, &enc, &[1; 48]);
        let mut buf = tlvs.clone();
        buf.resize(metadata_ciphertext_len(tlvs.len()), 0);
        let total = k.encrypt_tlvs(&mut buf, tlvs.len(), iv).unwrap();
        prop_assert_eq!(total, buf.len());
        prop_assert_eq!(&buf[total - 16..], &iv[..]);
        let n = k.decrypt_tlvs(&mut buf).unwrap();
        prop_assert_eq!(&buf[..n], &tlvs[..]);
    }
}
