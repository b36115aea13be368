//! `seal_burst` / `open_burst` against `seal_payload` / `open_payload`, byte for byte and
//! result for result, on every backend this CPU can run (the portable one always): random
//! keys, lengths 0..2048, bursts of 1..40 packets (more than one internal chunk) with mixed
//! lengths, headers and directions, plus tampered, truncated and replayed packets, packets
//! forged with the key (authenticated, bad padding) and duplicates within a burst.

use proptest::prelude::*;
use svr_crypto::{
    open_burst_with, open_payload, seal_burst_with, seal_payload, sealed_len, Backend, CryptoError,
    Direction, OpenJob, PayloadKey, ReplayWindow, SealJob,
};

fn backends() -> Vec<Backend> {
    Backend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .collect()
}

#[derive(Debug, Clone)]
struct Pkt {
    key: usize,
    dir: Direction,
    seq: u64,
    header: usize,
    payload: Vec<u8>,
    slack: usize,
}

fn pkt(nkeys: usize) -> impl Strategy<Value = Pkt> {
    (
        0..nkeys,
        prop_oneof![Just(Direction::Forward), Just(Direction::Reverse)],
        0u64..3000,
        0usize..60,
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2048),
            proptest::collection::vec(any::<u8>(), 0..200),
        ],
        0usize..20,
    )
        .prop_map(|(key, dir, seq, header, payload, slack)| Pkt {
            key,
            dir,
            seq,
            header,
            payload,
            slack,
        })
}

fn buffer(p: &Pkt) -> Vec<u8> {
    let mut b = vec![0xa5; p.header + sealed_len(p.payload.len()) + p.slack];
    b[p.header..p.header + p.payload.len()].copy_from_slice(&p.payload);
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn seal_burst_equals_seal_payload(
        keys in proptest::collection::vec((any::<[u8; 32]>(), any::<u8>()), 1..4),
        pkts in proptest::collection::vec(pkt(3), 1..40),
        short in proptest::collection::vec(any::<bool>(), 40),
    ) {
        let keys: Vec<PayloadKey> = keys.iter().map(|(k, i)| PayloadKey::new(*i, k)).collect();
        let key = |p: &Pkt| &keys[p.key % keys.len()];
        // Reference, packet by packet; a few buffers are one byte short.
        let mut want = Vec::new();
        let mut bufs0 = Vec::new();
        for (i, p) in pkts.iter().enumerate() {
            let mut b = buffer(p);
            if short[i] && p.slack == 0 {
                b.pop();
            }
            bufs0.push(b.clone());
            let r = seal_payload(key(p), p.dir, p.seq, &mut b, p.header, p.payload.len());
            want.push((r, b));
        }
        for backend in backends() {
            let mut bufs = bufs0.clone();
            let mut jobs: Vec<SealJob> = pkts
                .iter()
                .zip(bufs.iter_mut())
                .map(|(p, b)| SealJob {
                    key: key(p),
                    dir: p.dir,
                    seq: p.seq,
                    buf: b,
                    covered_start: p.header,
                    plain_len: p.payload.len(),
                })
                .collect();
            let mut out = vec![Err(CryptoError::Truncated); jobs.len()];
            seal_burst_with(backend, &mut jobs, &mut out);
            for (i, ((r, b), (got, gb))) in want.iter().zip(out.iter().zip(&bufs)).enumerate() {
                prop_assert_eq!(r, got, "{:?} job {}", backend, i);
                if r.is_ok() {
                    prop_assert_eq!(b, gb, "{:?} job {} bytes", backend, i);
                }
            }
        }
    }

    #[test]
    fn open_burst_equals_open_payload_in_order(
        keys in proptest::collection::vec(any::<[u8; 32]>(), 1..4),
        pkts in proptest::collection::vec(pkt(3), 1..40),
        // per packet: 0 intact, 1 flip a bit, 2 truncate, 3 duplicate of an earlier packet,
        // 4 wrong direction, 5 forged with the key: a bit of the last ciphertext block
        // flipped and the tag recomputed (authenticates, padding almost always bad)
        faults in proptest::collection::vec(0u8..13, 40),
        bit in any::<usize>(),
        marked in proptest::collection::vec(0u64..3000, 0..5),
    ) {
        let keys: Vec<PayloadKey> = keys.iter().enumerate().map(|(i, k)| PayloadKey::new(i as u8, k)).collect();
        let nwin = keys.len() * 2;
        let mut sealed: Vec<(usize, Direction, usize, Vec<u8>)> = Vec::new();
        for (i, p) in pkts.iter().enumerate() {
            let k = p.key % keys.len();
            let mut b = buffer(p);
            let total = seal_payload(&keys[k], p.dir, p.seq, &mut b, p.header, p.payload.len()).unwrap();
            b.truncate(total);
            let mut dir = p.dir;
            match faults[i] {
                1 => { let at = bit % (b.len() * 8); b[at / 8] ^= 1 << (at % 8); }
                2 => { b.truncate(bit % (b.len() + 1)); }
                3 if i > 0 => { b = sealed[bit % i].3.clone(); }
                4 => { dir = match dir { Direction::Forward => Direction::Reverse, Direction::Reverse => Direction::Forward }; }
                5 => forge_bad_padding(&keys[k], dir, &mut b, p.header, bit),
                _ => {}
            }
            let header = if faults[i] == 3 && i > 0 { sealed[bit % i].2 } else { p.header };
            let k = if faults[i] == 3 && i > 0 { sealed[bit % i].0 } else { k };
            sealed.push((k, dir, header, b));
        }
        let mut windows0 = vec![ReplayWindow::new(); nwin];
        for (i, s) in marked.iter().enumerate() {
            windows0[i % nwin].mark(*s);
        }
        let win = |k: usize, d: Direction| 2 * k + d as usize;

        let mut want = Vec::new();
        let mut wwin = windows0.clone();
        for (k, dir, header, b) in &sealed {
            let mut b = b.clone();
            let r = open_payload(&keys[*k], *dir, &mut b, *header, &mut wwin[win(*k, *dir)]);
            want.push((r, b));
        }
        for backend in backends() {
            let mut windows = windows0.clone();
            let mut bufs: Vec<Vec<u8>> = sealed.iter().map(|s| s.3.clone()).collect();
            let mut jobs: Vec<OpenJob> = sealed
                .iter()
                .zip(bufs.iter_mut())
                .map(|((k, dir, header, _), b)| OpenJob {
                    key: &keys[*k],
                    dir: *dir,
                    buf: b,
                    covered_start: *header,
                    window: win(*k, *dir),
                })
                .collect();
            let mut out = vec![Err(CryptoError::Truncated); jobs.len()];
            open_burst_with(backend, &mut jobs, &mut windows, &mut out);
            for (i, ((r, b), (got, gb))) in want.iter().zip(out.iter().zip(&bufs)).enumerate() {
                prop_assert_eq!(r, got, "{:?} job {}", backend, i);
                // The whole buffer, failures included: plaintext, or the ciphertext left
                // as `open_payload` leaves it.
                prop_assert_eq!(b, gb, "{:?} job {} bytes", backend, i);
            }
            prop_assert_eq!(&windows, &wwin, "{:?} windows", backend);
        }
    }
}

/// A packet only a key holder could send: flip a bit of the last ciphertext block of the
/// sealed packet `b` (covered region from `header`) and sign it again, so it authenticates
/// but its padding is (almost always) bad.
fn forge_bad_padding(key: &PayloadKey, dir: Direction, b: &mut [u8], header: usize, bit: usize) {
    let tag_at = b.len() - svr_crypto::HMAC_LEN;
    let ct_end = tag_at - svr_crypto::TRAILER_LEN;
    b[ct_end - 16 + (bit / 8) % 16] ^= 1 << (bit % 8);
    let tag = key.sign(dir, &b[header..tag_at]);
    b[tag_at..].copy_from_slice(&tag);
}

/// Opens `pkts` (key, dir, header, bytes; one window per key and direction) with
/// `open_payload` one by one and with `open_burst_with` on every backend, and checks that
/// results, buffers and windows agree. Returns the results.
fn open_both_ways(
    keys: &[PayloadKey],
    pkts: &[(usize, Direction, usize, Vec<u8>)],
) -> Vec<Result<(usize, u64), CryptoError>> {
    let win = |k: usize, d: Direction| 2 * k + d as usize;
    let mut wwin = vec![ReplayWindow::new(); 2 * keys.len()];
    let mut want = Vec::new();
    for (k, dir, header, b) in pkts {
        let mut b = b.clone();
        let r = open_payload(&keys[*k], *dir, &mut b, *header, &mut wwin[win(*k, *dir)]);
        want.push((r, b));
    }
    for backend in backends() {
        let mut windows = vec![ReplayWindow::new(); 2 * keys.len()];
        let mut bufs: Vec<Vec<u8>> = pkts.iter().map(|s| s.3.clone()).collect();
        let mut jobs: Vec<OpenJob> = pkts
            .iter()
            .zip(bufs.iter_mut())
            .map(|((k, dir, header, _), b)| OpenJob {
                key: &keys[*k],
                dir: *dir,
                buf: b,
                covered_start: *header,
                window: win(*k, *dir),
            })
            .collect();
        let mut out = vec![Err(CryptoError::Truncated); jobs.len()];
        open_burst_with(backend, &mut jobs, &mut windows, &mut out);
        for (i, ((r, b), (got, gb))) in want.iter().zip(out.iter().zip(&bufs)).enumerate() {
            assert_eq!(r, got, "{backend:?} job {i}");
            assert_eq!(b, gb, "{backend:?} job {i} bytes");
        }
        assert!(windows == wwin, "{backend:?} windows");
    }
    want.into_iter().map(|w| w.0).collect()
}

fn sealed(key: &PayloadKey, dir: Direction, seq: u64, header: usize, plain: &[u8]) -> Vec<u8> {
    let mut b = vec![0x5a; header + sealed_len(plain.len())];
    b[header..header + plain.len()].copy_from_slice(plain);
    let total = seal_payload(key, dir, seq, &mut b, header, plain.len()).unwrap();
    b.truncate(total);
    b
}

#[test]
fn repeat_of_a_packet_with_bad_padding_is_still_accepted_once() {
    // An authenticated packet with bad padding does not mark its number, so a valid packet
    // with the same number later in the burst opens, and a third copy is a duplicate.
    let keys = [
        PayloadKey::new(1, &[0x11; 32]),
        PayloadKey::new(2, &[0x22; 32]),
    ];
    let f = Direction::Forward;
    let good = sealed(&keys[0], f, 10, 14, &[0xab; 40]);
    let mut bad = good.clone();
    // Bit 0 of the last padding byte: 0x08 becomes 0x09, bad padding for sure.
    forge_bad_padding(&keys[0], f, &mut bad, 14, 15 * 8);
    let other = sealed(&keys[1], f, 10, 0, &[0xcd; 3]);
    let pkts = vec![
        (0, f, 14, bad.clone()),
        (1, f, 0, other.clone()),
        (0, f, 14, bad),
        (0, f, 14, good.clone()),
        (1, f, 0, other),
        (0, f, 14, good),
    ];
    let r = open_both_ways(&keys, &pkts);
    use svr_crypto::ReplayError::Duplicate;
    assert_eq!(
        r,
        vec![
            Err(CryptoError::BadPadding),
            Ok((3, 10)),
            Err(CryptoError::BadPadding),
            Ok((40, 10)),
            Err(CryptoError::Replay(Duplicate)),
            Err(CryptoError::Replay(Duplicate)),
        ]
    );
}

#[test]
fn packet_pushed_out_of_the_window_by_its_own_burst_keeps_its_ciphertext() {
    // Both pass the window as it was before the burst, but the first moves it 5000 ahead,
    // so the second is too old by the time it is decided (and is left as it arrived).
    let keys = [PayloadKey::new(0, &[0x33; 32])];
    let r = Direction::Reverse;
    let pkts: Vec<_> = [5000u64, 100, 2952, 2953, 5000]
        .into_iter()
        .map(|s| (0, r, 8, sealed(&keys[0], r, s, 8, &[s as u8; 70])))
        .collect();
    use svr_crypto::ReplayError::{Duplicate, TooOld};
    assert_eq!(
        open_both_ways(&keys, &pkts),
        vec![
            Ok((70, 5000)),
            Err(CryptoError::Replay(TooOld)),
            Err(CryptoError::Replay(TooOld)),
            Ok((70, 2953)),
            Err(CryptoError::Replay(Duplicate)),
        ]
    );
}

#[test]
fn every_backend_listed_and_detect_is_available() {
    assert!(Backend::Portable.is_available());
    assert!(Backend::detect().is_available());
    eprintln!("detected {:?}, testing {:?}", Backend::detect(), backends());
}

#[test]
fn burst_of_many_sizes_round_trips_on_every_backend() {
    // Every length 0..=300 in one burst of 301 (ten chunks), sealed and opened in bursts.
    let key = PayloadKey::new(7, &[0x42; 32]);
    for backend in backends() {
        let mut bufs: Vec<Vec<u8>> = (0..=300usize)
            .map(|n| {
                let mut b = vec![0u8; 20 + sealed_len(n)];
                for (i, x) in b[20..20 + n].iter_mut().enumerate() {
                    *x = (i * 7 + n) as u8;
                }
                b
            })
            .collect();
        let mut jobs: Vec<SealJob> = bufs
            .iter_mut()
            .enumerate()
            .map(|(n, b)| SealJob {
                key: &key,
                dir: Direction::Reverse,
                seq: n as u64,
                buf: b,
                covered_start: 20,
                plain_len: n,
            })
            .collect();
        let mut out = vec![Err(CryptoError::Truncated); jobs.len()];
        seal_burst_with(backend, &mut jobs, &mut out);
        assert!(out.iter().all(|r| r.is_ok()), "{backend:?}");
        let mut windows = [ReplayWindow::new()];
        let mut jobs: Vec<OpenJob> = bufs
            .iter_mut()
            .map(|b| OpenJob {
                key: &key,
                dir: Direction::Reverse,
                buf: b,
                covered_start: 20,
                window: 0,
            })
            .collect();
        let mut out = vec![Err(CryptoError::Truncated); jobs.len()];
        open_burst_with(backend, &mut jobs, &mut windows, &mut out);
        for (n, r) in out.iter().enumerate() {
            assert_eq!(*r, Ok((n, n as u64)), "{backend:?}");
            assert!(bufs[n][20..20 + n]
                .iter()
                .enumerate()
                .all(|(i, &x)| x == (i * 7 + n) as u8));
        }
    }
}

/// `sign_burst` gives every message the tag of the reference `hmac` crate (HMAC-SHA384
/// truncated to 24 bytes) and of `MacKey::sign`, for bursts longer than one chunk with mixed
/// keys, empty and long messages, and holes (`None` entries left alone).
#[test]
fn sign_burst_matches_hmac_crate() {
    use hmac::{Hmac, Mac};
    use svr_crypto::{sign_burst, MacKey, PacketKey, HMAC_LEN};
    let raw: Vec<[u8; 48]> = (0..5u8).map(|k| [k.wrapping_mul(37) ^ 0x5a; 48]).collect();
    let keys: Vec<MacKey> = raw.iter().map(|k| MacKey::new(k)).collect();
    let msgs: Vec<Vec<u8>> = (0..70usize)
        .map(|i| (0..(i * 53) % 1500).map(|b| (b * 7 + i) as u8).collect())
        .collect();
    let jobs: Vec<Option<(&MacKey, &[u8])>> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| (i % 9 != 4).then(|| (&keys[i % keys.len()], &m[..])))
        .collect();
    let mut out = vec![[0xeeu8; HMAC_LEN]; jobs.len()];
    sign_burst(&jobs, &mut out);
    for (i, (j, tag)) in jobs.iter().zip(&out).enumerate() {
        match j {
            None => assert_eq!(*tag, [0xee; HMAC_LEN], "job {i} left alone"),
            Some((k, m)) => {
                let mut h =
                    <Hmac<sha2::Sha384> as Mac>::new_from_slice(&raw[i % raw.len()]).unwrap();
                h.update(m);
                let full = h.finalize().into_bytes();
                assert_eq!(&tag[..], &full[..HMAC_LEN], "job {i}");
                assert_eq!(*tag, k.sign(m), "job {i}");
            }
        }
    }
}
