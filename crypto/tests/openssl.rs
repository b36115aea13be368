//! The encrypted-counter IV and the payload cipher against the openssl CLI.
//!
//! Skipped, with the reason printed, only when the `openssl` binary is absent.

use std::io::Write;
use std::process::{Command, Stdio};

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes256Enc;
use svr_crypto::{nonce_block, payload_ciphertext_len, Direction, PayloadKey};

/// `openssl enc <args>` with `input` on stdin; `None` if openssl is not installed.
fn openssl_enc(args: &[&str], input: &[u8]) -> Option<Vec<u8>> {
    let child = Command::new("openssl")
        .arg("enc")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("spawn openssl: {e}"),
    };
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl enc {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

const CASES: [(Direction, u8, u64); 6] = [
    (Direction::Forward, 0, 0),
    (Direction::Reverse, 0, 0),
    (Direction::Forward, 1, 1),
    (Direction::Reverse, 0xff, u64::MAX),
    (Direction::Forward, 0x80, 0x0123_4567_89ab_cdef),
    (Direction::Reverse, 7, 1 << 63),
];

fn key_bytes(i: u8) -> [u8; 32] {
    core::array::from_fn(|j| (j as u8).wrapping_mul(29).wrapping_add(i.wrapping_mul(101)))
}

#[test]
fn iv_is_aes_ecb_of_nonce_block_per_openssl_and_aes_crate() {
    for (i, &(dir, index, seq)) in CASES.iter().enumerate() {
        let key = key_bytes(i as u8);
        let pk = PayloadKey::new(index, &key);
        let nonce = nonce_block(dir, index, seq);
        let iv = pk.iv(dir, seq);

        // The aes crate's block cipher, directly.
        let mut b = GenericArray::from(nonce);
        Aes256Enc::new(&key.into()).encrypt_block(&mut b);
        assert_eq!(iv[..], b[..], "aes crate, case {i}");

        // openssl enc -aes-256-ecb -nopad
        let Some(out) = openssl_enc(&["-aes-256-ecb", "-nopad", "-K", &hex::encode(key)], &nonce)
        else {
            eprintln!("SKIP: `openssl` binary not found; openssl IV check not run");
            return;
        };
        assert_eq!(out, iv, "openssl, case {i}");
    }
}

#[test]
fn payload_ciphertext_matches_openssl_cbc_with_pkcs7() {
    for (i, &(dir, index, seq)) in CASES.iter().enumerate() {
        let key = key_bytes(i as u8 + 50);
        let pk = PayloadKey::new(index, &key);
        for len in [0usize, 1, 15, 16, 17, 100, 1400] {
            let plain: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
            let mut buf = vec![0u8; payload_ciphertext_len(len)];
            buf[..len].copy_from_slice(&plain);
            let n = pk.encrypt(dir, seq, &mut buf, len).unwrap();
            let iv = hex::encode(pk.iv(dir, seq));
            // openssl's default padding is PKCS#7.
            let Some(out) = openssl_enc(
                &["-aes-256-cbc", "-K", &hex::encode(key), "-iv", &iv],
                &plain,
            ) else {
                eprintln!("SKIP: `openssl` binary not found; openssl CBC check not run");
                return;
            };
            assert_eq!(out, buf[..n], "case {i} len {len}");
        }
    }
}
