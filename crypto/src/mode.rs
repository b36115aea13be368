//! AES-256-CBC over whole blocks in caller buffers, and PKCS#7 padding.
//!
//! Both metadata and payload crypto run through these four functions; the NIST SP 800-38A
//! known-answer tests at the bottom call the same ones.

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit};
use aes::{Aes256Dec, Aes256Enc};
use subtle::ConstantTimeEq;

use crate::error::CryptoError;
use crate::BLOCK;

/// `cbc` mode over a *borrowed* key schedule: `&Aes256Enc` is itself a block cipher, so no
/// schedule is expanded or copied per packet.
type CbcEnc<'a> = cbc::Encryptor<&'a Aes256Enc>;
type CbcDec<'a> = cbc::Decryptor<&'a Aes256Dec>;

/// Length after PKCS#7 padding: always at least one byte of padding, so
/// `(n / 16 + 1) * 16`.
#[inline]
pub const fn padded_len(n: usize) -> usize {
    (n / BLOCK + 1) * BLOCK
}

/// Write PKCS#7 padding after `buf[..n]`; returns the padded length. `buf` must hold
/// `padded_len(n)` bytes (checked by the callers, re-checked here).
#[inline]
pub fn pkcs7_pad(buf: &mut [u8], n: usize) -> Result<usize, CryptoError> {
    let total = n
        .checked_div(BLOCK)
        .and_then(|b| b.checked_add(1))
        .and_then(|b| b.checked_mul(BLOCK))
        .ok_or(CryptoError::BufferTooSmall)?;
    let pad = buf.get_mut(n..total).ok_or(CryptoError::BufferTooSmall)?;
    // 1..=16, fits a byte.
    let v = (total - n) as u8;
    pad.fill(v);
    Ok(total)
}

/// Check PKCS#7 padding of a decrypted, block-aligned, non-empty `buf` and return the
/// plaintext length. The check touches the whole last block whatever the byte values, and
/// every failure is the same `BadPadding`.
#[inline]
pub fn pkcs7_unpad(buf: &[u8]) -> Result<usize, CryptoError> {
    if buf.len() < BLOCK || !buf.len().is_multiple_of(BLOCK) {
        return Err(CryptoError::BadLength);
    }
    let last = &buf[buf.len() - BLOCK..];
    let p = u32::from(last[BLOCK - 1]);
    // Branch-free integer arithmetic and one `subtle` compare at the end (a `subtle` call per
    // byte costs an optimisation barrier each). `bad` is non-zero iff the padding is wrong:
    // p outside 1..=16 ((p - 1) >= 16, with p = 0 wrapping), or a padding byte that is not p.
    let mut bad = p.wrapping_sub(1) >> 4;
    for (i, &b) in last.iter().enumerate() {
        // Distance from the end, 16..=1; the byte is padding iff that distance <= p, i.e.
        // iff p - dist does not go negative: all ones then, else zero.
        let dist = (BLOCK - i) as u32;
        let in_pad = ((p.wrapping_sub(dist) >> 31) ^ 1).wrapping_neg();
        bad |= in_pad & (u32::from(b) ^ p);
    }
    let ok = bad.ct_eq(&0);
    if bool::from(ok) {
        Ok(buf.len() - p as usize)
    } else {
        Err(CryptoError::BadPadding)
    }
}

/// CBC-encrypt `buf` (a whole number of blocks) in place.
#[inline]
pub fn cbc_encrypt(key: &Aes256Enc, iv: &[u8; BLOCK], buf: &mut [u8]) -> Result<(), CryptoError> {
    if !buf.len().is_multiple_of(BLOCK) {
        return Err(CryptoError::BadLength);
    }
    let len = buf.len();
    CbcEnc::inner_iv_init(key, iv.into())
        .encrypt_padded_mut::<NoPadding>(buf, len)
        .map(|_| ())
        .map_err(|_| CryptoError::BadLength)
}

/// CBC-decrypt `buf` (a whole number of blocks) in place.
#[inline]
pub fn cbc_decrypt(key: &Aes256Dec, iv: &[u8; BLOCK], buf: &mut [u8]) -> Result<(), CryptoError> {
    if !buf.len().is_multiple_of(BLOCK) {
        return Err(CryptoError::BadLength);
    }
    CbcDec::inner_iv_init(key, iv.into())
        .decrypt_padded_mut::<NoPadding>(buf)
        .map(|_| ())
        .map_err(|_| CryptoError::BadLength)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::KeyInit;

    // NIST SP 800-38A, appendix F.2.5 / F.2.6 (CBC-AES256).
    const KEY: &str = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
    const IV: &str = "000102030405060708090a0b0c0d0e0f";
    const PLAIN: &str = "6bc1bee22e409f96e93d7e117393172a\
                         ae2d8a571e03ac9c9eb76fac45af8e51\
                         30c81c46a35ce411e5fbc1191a0a52ef\
                         f69f2445df4f9b17ad2b417be66c3710";
    const CIPHER: &str = "f58c4c04d6e5f1ba779eabfb5f7bfbd6\
                          9cfc4e967edb808d679f777bc6702c7d\
                          39f23369a9d9bacfa530e26304231461\
                          b2eb05e2c39be9fcda6c19078c6a9d1b";

    fn keys() -> (Aes256Enc, Aes256Dec, [u8; 16]) {
        let k = hex::decode(KEY).unwrap();
        let iv: [u8; 16] = hex::decode(IV).unwrap().try_into().unwrap();
        (
            Aes256Enc::new_from_slice(&k).unwrap(),
            Aes256Dec::new_from_slice(&k).unwrap(),
            iv,
        )
    }

    #[test]
    fn nist_sp800_38a_f25_cbc_aes256_encrypt() {
        let (enc, _, iv) = keys();
        let mut buf = hex::decode(PLAIN).unwrap();
        cbc_encrypt(&enc, &iv, &mut buf).unwrap();
        assert_eq!(hex::encode(&buf), CIPHER);
    }

    #[test]
    fn nist_sp800_38a_f26_cbc_aes256_decrypt() {
        let (_, dec, iv) = keys();
        let mut buf = hex::decode(CIPHER).unwrap();
        cbc_decrypt(&dec, &iv, &mut buf).unwrap();
        assert_eq!(hex::encode(&buf), PLAIN);
    }

    #[test]
    fn nist_vectors_block_by_block_prefixes() {
        // CBC is a chain: every block prefix of the F.2.5 vector is itself a valid vector.
        let (enc, dec, iv) = keys();
        let plain = hex::decode(PLAIN).unwrap();
        let cipher = hex::decode(CIPHER).unwrap();
        for blocks in 1..=4 {
            let mut b = plain[..blocks * 16].to_vec();
            cbc_encrypt(&enc, &iv, &mut b).unwrap();
            assert_eq!(b, cipher[..blocks * 16]);
            cbc_decrypt(&dec, &iv, &mut b).unwrap();
            assert_eq!(b, plain[..blocks * 16]);
        }
    }

    #[test]
    fn unaligned_is_rejected() {
        let (enc, dec, iv) = keys();
        let mut b = [0u8; 17];
        assert_eq!(cbc_encrypt(&enc, &iv, &mut b), Err(CryptoError::BadLength));
        assert_eq!(cbc_decrypt(&dec, &iv, &mut b), Err(CryptoError::BadLength));
        assert_eq!(cbc_encrypt(&enc, &iv, &mut []), Ok(()));
    }

    #[test]
    fn pkcs7_round_trip_every_length() {
        for n in 0..=64usize {
            let mut buf = vec![0xeeu8; padded_len(n)];
            assert_eq!(pkcs7_pad(&mut buf, n), Ok(padded_len(n)));
            let p = padded_len(n) - n;
            assert!((1..=16).contains(&p));
            assert!(buf[n..].iter().all(|&b| usize::from(b) == p));
            assert_eq!(pkcs7_unpad(&buf), Ok(n));
        }
    }

    #[test]
    fn pkcs7_pad_needs_room() {
        let mut buf = [0u8; 31];
        assert_eq!(pkcs7_pad(&mut buf, 16), Err(CryptoError::BufferTooSmall));
        assert_eq!(
            pkcs7_pad(&mut buf, usize::MAX),
            Err(CryptoError::BufferTooSmall)
        );
    }

    #[test]
    fn pkcs7_unpad_rejects_every_bad_last_block() {
        // Exhaustive over the pad byte, with one corrupted padding byte at each position.
        for p in 0..=255u8 {
            let mut block = [0x41u8; 16];
            let valid = (1..=16).contains(&p);
            if valid {
                block[16 - usize::from(p)..].fill(p);
            } else {
                block[15] = p;
            }
            let got = pkcs7_unpad(&block);
            if valid {
                assert_eq!(got, Ok(16 - usize::from(p)));
                for i in 16 - usize::from(p)..15 {
                    let mut bad = block;
                    bad[i] ^= 0x01;
                    assert_eq!(
                        pkcs7_unpad(&bad),
                        Err(CryptoError::BadPadding),
                        "p {p} i {i}"
                    );
                }
            } else {
                assert_eq!(got, Err(CryptoError::BadPadding), "p {p}");
            }
        }
        assert_eq!(pkcs7_unpad(&[]), Err(CryptoError::BadLength));
        assert_eq!(pkcs7_unpad(&[1u8; 15]), Err(CryptoError::BadLength));
        assert_eq!(pkcs7_unpad(&[16u8; 16]), Ok(0));
        assert_eq!(pkcs7_unpad(&[16u8; 32]), Ok(16));
    }
}
