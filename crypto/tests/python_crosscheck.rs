//! Cross-check against an independent implementation: Python `cryptography` (OpenSSL).
//!
//! Rust seals payload packets and encrypts metadata blocks with random keys, sizes 0..=1500
//! and both directions; `tests/crosscheck.py` verifies and decrypts them from the wire
//! description alone, then produces its own packets, which Rust opens here. python3 and
//! python3-cryptography are required (scripts/setup.sh installs them): a missing interpreter
//! or module fails the test rather than skipping it.

mod common;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use common::TestRng;
use svr_crypto::{
    metadata_ciphertext_len, open_payload, seal_payload, sealed_len, CryptoError, Direction,
    MetadataKey, PacketKey, PayloadKey, ReplayError, ReplayWindow, HMAC_LEN,
};

/// Removes the temp file however the test ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/crosscheck.py")
}

fn require_python_cryptography() {
    let out = Command::new("python3")
        .args(["-c", "import cryptography; print(cryptography.__version__)"])
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is required for the cross-check (scripts/setup.sh installs it): {e}")
        });
    assert!(
        out.status.success(),
        "python3 module `cryptography` is required (apt install python3-cryptography): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "python cryptography {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
}

fn unhex(s: &str) -> Vec<u8> {
    if s == "-" {
        Vec::new()
    } else {
        hex::decode(s).expect("hex from crosscheck.py")
    }
}

fn dir_of(d: u64) -> Direction {
    match d {
        0 => Direction::Forward,
        1 => Direction::Reverse,
        _ => panic!("bad direction {d}"),
    }
}

/// Rust-made packets and blocks, as the JSON document crosscheck.py reads.
fn rust_vectors(rng: &mut TestRng) -> (String, usize) {
    let mut json = String::from("{\"payload\": [\n");
    let mut count = 0;
    let seq_edges = [0u64, 1, u64::MAX, 1 << 63];
    let mut first = true;
    for size in 0..=1500usize {
        for dir in [Direction::Forward, Direction::Reverse] {
            let key_bytes: [u8; 32] = rng.bytes();
            let index = rng.next_u64() as u8;
            let key = PayloadKey::new(index, &key_bytes);
            let seq = if size % 7 == 0 {
                seq_edges[(size / 7) % seq_edges.len()]
            } else {
                rng.next_u64()
            };
            let cs = rng.below(64) as usize;
            let plain = rng.vec(size);
            let header = rng.vec(cs);
            let mut buf = vec![0u8; cs + sealed_len(size)];
            buf[..cs].copy_from_slice(&header);
            buf[cs..cs + size].copy_from_slice(&plain);
            let total = seal_payload(&key, dir, seq, &mut buf, cs, size).unwrap();
            assert_eq!(total, buf.len());
            assert_eq!(buf[..cs], header[..]);
            if !first {
                json.push_str(",\n");
            }
            first = false;
            write!(
                json,
                "{{\"key\": \"{}\", \"index\": {}, \"dir\": {}, \"seq\": {}, \"covered_start\": {}, \
                 \"iv\": \"{}\", \"packet\": \"{}\", \"plain\": \"{}\"}}",
                hex::encode(key_bytes),
                index,
                dir as u8,
                seq,
                cs,
                hex::encode(key.iv(dir, seq)),
                hex::encode(&buf),
                hex::encode(&plain)
            )
            .unwrap();
            count += 1;
        }
    }
    json.push_str("\n], \"metadata\": [\n");
    for size in 0..=600usize {
        let enc: [u8; 32] = rng.bytes();
        let mac: [u8; 48] = rng.bytes();
        let iv: [u8; 16] = rng.bytes();
        let key = MetadataKey::new(rng.next_u64() as u32, &enc, &mac);
        let plain = rng.vec(size);
        let mut buf = vec![0u8; metadata_ciphertext_len(size)];
        buf[..size].copy_from_slice(&plain);
        let total = key.encrypt_tlvs(&mut buf, size, iv).unwrap();
        let tag = key.sign(&buf[..total]);
        if size > 0 {
            json.push_str(",\n");
        }
        write!(
            json,
            "{{\"enc_key\": \"{}\", \"hmac_key\": \"{}\", \"iv\": \"{}\", \"block\": \"{}\", \
             \"tag\": \"{}\", \"plain\": \"{}\"}}",
            hex::encode(enc),
            hex::encode(mac),
            hex::encode(iv),
            hex::encode(&buf[..total]),
            hex::encode(tag),
            hex::encode(&plain)
        )
        .unwrap();
        count += 1;
    }
    json.push_str("\n]}\n");
    (json, count)
}

fn open_python_payload(fields: &[&str]) {
    let [key, index, dir, seq, cs, packet, plain] = fields else {
        panic!("bad P line: {fields:?}");
    };
    let key: [u8; 32] = unhex(key).try_into().unwrap();
    let key = PayloadKey::new(index.parse().unwrap(), &key);
    let dir = dir_of(dir.parse().unwrap());
    let seq: u64 = seq.parse().unwrap();
    let cs: usize = cs.parse().unwrap();
    let packet = unhex(packet);
    let plain = unhex(plain);

    let mut w = ReplayWindow::new();
    let mut buf = packet.clone();
    let (n, got_seq) = open_payload(&key, dir, &mut buf, cs, &mut w)
        .unwrap_or_else(|e| panic!("python packet len {} seq {seq}: {e}", plain.len()));
    assert_eq!(got_seq, seq);
    assert_eq!(buf[cs..cs + n], plain[..]);
    assert_eq!(buf[..cs], packet[..cs]);
    // The same bytes again are a replay.
    let mut again = packet.clone();
    assert_eq!(
        open_payload(&key, dir, &mut again, cs, &mut w),
        Err(CryptoError::Replay(ReplayError::Duplicate))
    );
    // And they do not authenticate in the other direction.
    let other = match dir {
        Direction::Forward => Direction::Reverse,
        Direction::Reverse => Direction::Forward,
    };
    let mut refl = packet;
    assert_eq!(
        open_payload(&key, other, &mut refl, cs, &mut ReplayWindow::new()),
        Err(CryptoError::BadMac)
    );
}

fn open_python_metadata(fields: &[&str]) {
    let [enc, mac, block, tag, plain] = fields else {
        panic!("bad M line: {fields:?}");
    };
    let enc: [u8; 32] = unhex(enc).try_into().unwrap();
    let mac: [u8; 48] = unhex(mac).try_into().unwrap();
    let key = MetadataKey::new(0, &enc, &mac);
    let mut block = unhex(block);
    let tag = unhex(tag);
    let plain = unhex(plain);
    assert_eq!(tag.len(), HMAC_LEN);
    key.verify(&block, &tag).expect("python metadata HMAC");
    let n = key.decrypt_tlvs(&mut block).expect("python metadata block");
    assert_eq!(block[..n], plain[..]);
}

#[test]
fn python_cryptography_cross_check() {
    require_python_cryptography();
    let mut rng = TestRng::from_env_or_os("python_cryptography_cross_check");
    let (json, count) = rust_vectors(&mut rng);

    let path = std::env::temp_dir().join(format!(
        "svr-crypto-crosscheck-{}-{}.json",
        std::process::id(),
        rng.next_u64()
    ));
    let _guard = TempFile(path.clone());
    std::fs::write(&path, json).unwrap();

    let out = Command::new("python3")
        .arg(script())
        .arg(&path)
        .output()
        .expect("run python3 crosscheck.py");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "crosscheck.py rejected Rust's output:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = format!("OK checked={count}");
    assert!(
        stdout.lines().any(|l| l == ok),
        "expected `{ok}` from crosscheck.py; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (mut p, mut m) = (0, 0);
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields[0] {
            "P" => {
                open_python_payload(&fields[1..]);
                p += 1;
            }
            "M" => {
                open_python_metadata(&fields[1..]);
                m += 1;
            }
            "OK" => {}
            other => panic!("unexpected line from crosscheck.py: {other}"),
        }
    }
    eprintln!("python verified {count} Rust items; Rust opened {p} python packets, {m} blocks");
    assert!(
        p >= 400 && m >= 80,
        "too few python vectors: {p} packets, {m} blocks"
    );
}
