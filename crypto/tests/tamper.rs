//! Hostile input: bit flips, truncations, replays, forgeries, and what they do to the window.

mod common;

use common::TestRng;
use svr_crypto::{
    metadata_ciphertext_len, open_payload, payload_ciphertext_len, seal_payload, sealed_len,
    CryptoError, Direction, MetadataKey, PacketKey, PayloadKey, ReplayError, ReplayWindow,
    HMAC_LEN, REPLAY_WINDOW, TRAILER_LEN,
};

const CS: usize = 28; // an IPv4 + UDP header in front of the covered region

fn sealed(key: &PayloadKey, dir: Direction, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0x45u8; CS + sealed_len(payload.len())];
    buf[CS..CS + payload.len()].copy_from_slice(payload);
    let n = seal_payload(key, dir, seq, &mut buf, CS, payload.len()).unwrap();
    assert_eq!(n, buf.len());
    buf
}

fn open(
    key: &PayloadKey,
    dir: Direction,
    pkt: &[u8],
    w: &mut ReplayWindow,
) -> Result<(Vec<u8>, u64), CryptoError> {
    let mut buf = pkt.to_vec();
    let (n, seq) = open_payload(key, dir, &mut buf, CS, w)?;
    Ok((buf[CS..CS + n].to_vec(), seq))
}

#[test]
fn every_single_bit_flip_in_ciphertext_trailer_or_tag_is_bad_mac() {
    let key = PayloadKey::new(2, &[0x31; 32]);
    for len in [0usize, 1, 16, 47, 100] {
        let payload: Vec<u8> = (0..len as u8).collect();
        let pkt = sealed(&key, Direction::Forward, 1000, &payload);
        for bit in CS * 8..pkt.len() * 8 {
            let mut bad = pkt.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            // A fresh window, so a flipped trailer cannot be refused as a replay first.
            let mut w = ReplayWindow::new();
            assert_eq!(
                open(&key, Direction::Forward, &bad, &mut w),
                Err(CryptoError::BadMac),
                "len {len} bit {bit}"
            );
            assert_eq!(w.highest(), None, "a forgery moved the window");
        }
        assert_eq!(
            open(&key, Direction::Forward, &pkt, &mut ReplayWindow::new()).unwrap(),
            (payload, 1000)
        );
    }
}

#[test]
fn header_bytes_before_covered_start_are_not_covered() {
    // NAT rewrites IP and L4 headers; that must not break the HMAC.
    let key = PayloadKey::new(0, &[0x31; 32]);
    let mut pkt = sealed(&key, Direction::Reverse, 7, b"payload");
    for b in &mut pkt[..CS] {
        *b = !*b;
    }
    let (plain, seq) = open(&key, Direction::Reverse, &pkt, &mut ReplayWindow::new()).unwrap();
    assert_eq!((plain.as_slice(), seq), (&b"payload"[..], 7));
}

#[test]
fn every_truncation_and_extension_is_an_error_never_a_panic() {
    let key = PayloadKey::new(0, &[0x99; 32]);
    for len in [0usize, 5, 16, 33] {
        let pkt = sealed(&key, Direction::Forward, 3, &vec![0xab; len]);
        for cut in 0..pkt.len() {
            let mut w = ReplayWindow::new();
            let r = open(&key, Direction::Forward, &pkt[..cut], &mut w);
            let e = r.expect_err("a truncated packet opened");
            assert!(
                matches!(
                    e,
                    CryptoError::Truncated | CryptoError::BadLength | CryptoError::BadMac
                ),
                "len {len} cut {cut}: {e:?}"
            );
            if cut < CS + 48 {
                assert_eq!(e, CryptoError::Truncated, "len {len} cut {cut}");
            }
            assert_eq!(w.highest(), None);
        }
        // Trailing bytes (e.g. untrimmed L2 padding) shift the tag: never accepted.
        for extra in 1..=17 {
            let mut longer = pkt.clone();
            longer.resize(pkt.len() + extra, 0);
            assert!(open(&key, Direction::Forward, &longer, &mut ReplayWindow::new()).is_err());
        }
        // covered_start beyond the buffer.
        let mut buf = pkt.clone();
        assert_eq!(
            open_payload(
                &key,
                Direction::Forward,
                &mut buf,
                pkt.len() + 1,
                &mut ReplayWindow::new()
            ),
            Err(CryptoError::Truncated)
        );
    }
}

#[test]
fn replayed_packet_is_refused() {
    let key = PayloadKey::new(5, &[0x10; 32]);
    let mut w = ReplayWindow::new();
    let pkt = sealed(&key, Direction::Forward, 42, b"once only");
    assert!(open(&key, Direction::Forward, &pkt, &mut w).is_ok());
    assert_eq!(
        open(&key, Direction::Forward, &pkt, &mut w),
        Err(CryptoError::Replay(ReplayError::Duplicate))
    );
    // Far in the future, then the old packet is left of the window.
    let later = sealed(&key, Direction::Forward, 42 + REPLAY_WINDOW, b"later");
    assert!(open(&key, Direction::Forward, &later, &mut w).is_ok());
    assert_eq!(
        open(&key, Direction::Forward, &pkt, &mut w),
        Err(CryptoError::Replay(ReplayError::TooOld))
    );
}

#[test]
fn bad_mac_packet_does_not_advance_the_window() {
    let key = PayloadKey::new(5, &[0x10; 32]);
    let mut w = ReplayWindow::new();
    let genuine_10 = sealed(&key, Direction::Forward, 10, b"ten");
    let genuine_11 = sealed(&key, Direction::Forward, 11, b"eleven");
    assert!(open(&key, Direction::Forward, &genuine_10, &mut w).is_ok());
    let before = w.clone();

    // A forgery carrying the next genuine sequence number.
    let mut forged = genuine_11.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0x80;
    assert_eq!(
        open(&key, Direction::Forward, &forged, &mut w),
        Err(CryptoError::BadMac)
    );
    assert_eq!(w, before);

    // A forgery far ahead: had it moved the window, packet 11 would now be TooOld.
    let mut jump = genuine_11.clone();
    let t = jump.len() - HMAC_LEN - TRAILER_LEN;
    jump[t..t + TRAILER_LEN].copy_from_slice(&(11 + 10 * REPLAY_WINDOW).to_be_bytes());
    assert_eq!(
        open(&key, Direction::Forward, &jump, &mut w),
        Err(CryptoError::BadMac)
    );
    assert_eq!(w, before);

    // The genuine packet is still accepted afterwards.
    assert_eq!(
        open(&key, Direction::Forward, &genuine_11, &mut w).unwrap(),
        (b"eleven".to_vec(), 11)
    );
}

#[test]
fn authentic_but_badly_padded_packet_is_bad_padding_and_not_marked() {
    // Only a key holder can make this; it must still be dropped without moving the window.
    let key = PayloadKey::new(1, &[0x77; 32]);
    let ct_len = 32;
    let mut pkt = vec![0u8; CS + ct_len + TRAILER_LEN + HMAC_LEN];
    // Encrypt 32 zero bytes and keep only the first two ciphertext blocks (dropping the
    // padding block): they decrypt to 32 zero bytes, whose last byte is invalid PKCS#7.
    let seq = 9u64;
    let mut scratch = vec![0u8; payload_ciphertext_len(ct_len)];
    let n = key
        .encrypt(Direction::Forward, seq, &mut scratch, ct_len)
        .unwrap();
    assert_eq!(n, ct_len + 16);
    pkt[CS..CS + ct_len].copy_from_slice(&scratch[..ct_len]);
    pkt[CS + ct_len..CS + ct_len + TRAILER_LEN].copy_from_slice(&seq.to_be_bytes());
    let tag = key.sign(Direction::Forward, &pkt[CS..CS + ct_len + TRAILER_LEN]);
    pkt[CS + ct_len + TRAILER_LEN..].copy_from_slice(&tag);

    let mut w = ReplayWindow::new();
    assert_eq!(
        open(&key, Direction::Forward, &pkt, &mut w),
        Err(CryptoError::BadPadding)
    );
    assert_eq!(w.highest(), None);
}

#[test]
fn wrong_key_wrong_index_or_reflected_direction_is_bad_mac() {
    let key = PayloadKey::new(3, &[0x55; 32]);
    let pkt = sealed(&key, Direction::Forward, 1, b"hello");
    let other_key = PayloadKey::new(3, &[0x56; 32]);
    assert_eq!(
        open(
            &other_key,
            Direction::Forward,
            &pkt,
            &mut ReplayWindow::new()
        ),
        Err(CryptoError::BadMac)
    );
    assert_eq!(
        open(&key, Direction::Reverse, &pkt, &mut ReplayWindow::new()),
        Err(CryptoError::BadMac)
    );
    // Same key bytes, different index: same HMAC keys, so it authenticates, but the IV
    // differs and the first block decrypts to garbage. Index selection is the caller's job
    // (the index travels with the key in TLV 46); this documents the behaviour.
    let reindexed = PayloadKey::new(4, &[0x55; 32]);
    match open(
        &reindexed,
        Direction::Forward,
        &pkt,
        &mut ReplayWindow::new(),
    ) {
        Ok((plain, _)) => assert_ne!(plain, b"hello"),
        Err(e) => assert_eq!(e, CryptoError::BadPadding),
    }
}

#[test]
fn metadata_block_tampering_is_caught_by_its_hmac() {
    let mut rng = TestRng::new(7);
    let key = MetadataKey::new(12, &rng.bytes(), &rng.bytes());
    let tlvs = rng.vec(45);
    let mut block = vec![0u8; metadata_ciphertext_len(tlvs.len())];
    block[..45].copy_from_slice(&tlvs);
    let n = key.encrypt_tlvs(&mut block, 45, rng.bytes()).unwrap();
    let tag = key.sign(&block[..n]);
    for bit in 0..n * 8 {
        let mut bad = block.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            key.verify(&bad, &tag),
            Err(CryptoError::BadMac),
            "bit {bit}"
        );
    }
    assert_eq!(key.verify(&block, &tag), Ok(()));
    for cut in 0..n {
        let mut short = block[..cut].to_vec();
        assert!(key.decrypt_tlvs(&mut short).is_err(), "cut {cut}");
    }
    assert_eq!(key.decrypt_tlvs(&mut block), Ok(45));
    assert_eq!(block[..45], tlvs[..]);
}

#[test]
fn reordered_delivery_within_the_window_is_accepted_once() {
    let mut rng = TestRng::from_env_or_os("reordered_delivery_within_the_window_is_accepted_once");
    let key = PayloadKey::new(0, &rng.bytes());
    let pkts: Vec<Vec<u8>> = (0..300u64)
        .map(|s| sealed(&key, Direction::Reverse, s, &s.to_be_bytes()))
        .collect();
    let mut order: Vec<usize> = (0..pkts.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut w = ReplayWindow::new();
    for &i in &order {
        let (plain, seq) = open(&key, Direction::Reverse, &pkts[i], &mut w).unwrap();
        assert_eq!(seq, i as u64);
        assert_eq!(plain, (i as u64).to_be_bytes());
    }
    for &i in &order {
        assert_eq!(
            open(&key, Direction::Reverse, &pkts[i], &mut w),
            Err(CryptoError::Replay(ReplayError::Duplicate))
        );
    }
}
