//! Every kernel against the reference crates: SHA-512 compressions against
//! `sha2::compress512`, the HMAC lanes against `hmac` (RFC 4231 and random lengths), the AES
//! key expansion, its inverse-cipher form and the CBC encryption and decryption lanes against
//! the `aes`/`cbc` crates and NIST SP 800-38A, and batched
//! payload-key installation against `PayloadKey::new` and the `hkdf` crate.

#![allow(clippy::needless_range_loop)] // lanes index several arrays in step

use aes::cipher::KeyInit;
use aes::{Aes256Dec, Aes256Enc};
use hmac::{Hmac, Mac};
use sha2::digest::generic_array::GenericArray;
use sha2::Sha384;

use crate::keys::{MacKey, PayloadKey};
use crate::mode::{cbc_decrypt, cbc_encrypt};
use crate::sha512::*;
use crate::Direction;

/// SplitMix64 (deterministic; the seed is in each test).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn sha_kernels() -> Vec<ShaKernel> {
    let mut v = vec![ShaKernel::Portable];
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(t) = crate::x86::Avx2::detect() {
            v.push(ShaKernel::Avx2(t));
        }
        if let Some(t) = crate::x86::Avx512::detect() {
            v.push(ShaKernel::Avx512(t));
        }
    }
    eprintln!("SHA-512 kernels under test: {v:?}");
    v
}

fn reference_compress(state: &mut State, block: &[u8]) {
    sha2::compress512(
        state,
        core::slice::from_ref(GenericArray::from_slice(block)),
    );
}

#[test]
fn portable_compression_matches_sha2() {
    let mut rng = Rng(1);
    for _ in 0..500 {
        let mut s: State = core::array::from_fn(|_| rng.next());
        let block = rng.bytes(128);
        let mut r = s;
        reference_compress(&mut r, &block);
        compress_words(&mut s, &block_words(&block));
        assert_eq!(s, r);
    }
}

#[test]
fn sha384_of_abc_through_every_kernel() {
    // FIPS 180-4 example: SHA-384("abc").
    let want = "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
                8086072ba1e7cc2358baeca134c825a7";
    let (tail, n) = tail_blocks(3, b"abc");
    assert_eq!(n, 1);
    for k in sha_kernels() {
        let mut st: LaneState = [[0; LANES]; 8];
        for lane in 0..LANES {
            for i in 0..8 {
                st[i][lane] = IV384[i];
            }
        }
        let b: &[u8; 128] = tail[..128].try_into().unwrap();
        k.compress(&mut st, &[b; LANES], 0xff);
        for lane in 0..LANES {
            let s: State = core::array::from_fn(|i| st[i][lane]);
            assert_eq!(hex::encode(digest384(&s)), want, "{k:?} lane {lane}");
        }
    }
}

#[test]
fn lane_kernels_match_sha2_on_random_states() {
    let mut rng = Rng(2);
    for k in sha_kernels() {
        for _ in 0..200 {
            let mut st: LaneState = [[0; LANES]; 8];
            let mut want = [[0u64; 8]; LANES];
            let mut data = [[0u8; 128]; LANES];
            for (lane, want) in want.iter_mut().enumerate() {
                let s: State = core::array::from_fn(|_| rng.next());
                data[lane].copy_from_slice(&rng.bytes(128));
                for i in 0..8 {
                    st[i][lane] = s[i];
                }
                *want = s;
                reference_compress(want, &data[lane]);
            }
            let blocks: LaneBlocks = core::array::from_fn(|l| &data[l]);
            k.compress(&mut st, &blocks, 0xff);
            for (lane, want) in want.iter().enumerate() {
                let got: State = core::array::from_fn(|i| st[i][lane]);
                assert_eq!(&got, want, "{k:?} lane {lane}");
            }
        }
    }
}

fn reference_hmac(key: &[u8], msg: &[u8]) -> [u8; 48] {
    let mut m = <Hmac<Sha384> as Mac>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().into()
}

#[test]
fn rfc4231_hmac_sha384_through_every_kernel() {
    let big = vec![0xaa; 131];
    let cases: [(&[u8], &[u8], &str); 3] = [
        (
            &[0x0b; 20],
            b"Hi There",
            "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c\
             faea9ea9076ede7f4af152e8b2fa9cb6",
        ),
        (
            b"Jefe",
            b"what do ya want for nothing?",
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
             8e2240ca5e69e2c78b3239ecfab21649",
        ),
        (
            &big,
            b"This is a test using a larger than block-size key and a larger than \
              block-size data. The key needs to be hashed before being used by the \
              HMAC algorithm.",
            "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5\
             a678cc31e799176d3860e6110c46523e",
        ),
    ];
    for k in sha_kernels() {
        let keys: Vec<MacKey> = cases
            .iter()
            .map(|c| MacKey::new_many(k, [c.0]))
            .map(|[m]| m)
            .collect();
        let jobs: Vec<Option<MacInput>> = keys
            .iter()
            .zip(&cases)
            .map(|(m, c)| {
                Some(MacInput {
                    inner: &m.inner,
                    outer: &m.outer,
                    msg: c.1,
                })
            })
            .collect();
        let mut out = vec![[0u8; 48]; jobs.len()];
        hmac_lanes(k, &jobs, &mut out);
        for (o, c) in out.iter().zip(&cases) {
            assert_eq!(hex::encode(o), c.2, "{k:?}");
        }
    }
}

#[test]
fn hmac_lanes_match_the_hmac_crate_on_mixed_lengths() {
    let mut rng = Rng(3);
    for k in sha_kernels() {
        for round in 0..60 {
            let n = 1 + rng.below(40);
            let keys: Vec<Vec<u8>> = (0..n)
                .map(|_| {
                    let l = rng.below(200);
                    rng.bytes(l)
                })
                .collect();
            let msgs: Vec<Vec<u8>> = (0..n)
                .map(|_| {
                    // Around the one/two-tail-block boundaries (111/112 mod 128) and long ones.
                    let l = match rng.below(3) {
                        0 => rng.below(2100),
                        1 => 128 * rng.below(8) + 100 + rng.below(30),
                        _ => rng.below(300),
                    };
                    rng.bytes(l)
                })
                .collect();
            let mk: Vec<MacKey> = keys
                .iter()
                .map(|key| MacKey::new_many(k, [&key[..]]))
                .map(|[m]| m)
                .collect();
            let skip = rng.below(n + 1); // one job left out (None), or none
            let jobs: Vec<Option<MacInput>> = (0..n)
                .map(|i| {
                    (i != skip).then(|| MacInput {
                        inner: &mk[i].inner,
                        outer: &mk[i].outer,
                        msg: &msgs[i],
                    })
                })
                .collect();
            let mut out = vec![[7u8; 48]; n];
            hmac_lanes(k, &jobs, &mut out);
            for i in 0..n {
                if i == skip {
                    assert_eq!(out[i], [7u8; 48]);
                } else {
                    assert_eq!(
                        out[i],
                        reference_hmac(&keys[i], &msgs[i]),
                        "{k:?} round {round} job {i} len {}",
                        msgs[i].len()
                    );
                    assert_eq!(mk[i].sign_full(&msgs[i]), out[i]);
                }
            }
        }
    }
}

#[test]
fn mac_keys_in_lanes_match_single() {
    let mut rng = Rng(4);
    for k in sha_kernels() {
        for _ in 0..50 {
            let a = rng.bytes(48);
            let bl = rng.below(300);
            let b = rng.bytes(bl);
            let [x, y] = MacKey::new_many(k, [&a[..], &b[..]]);
            let [x1] = MacKey::new_many(ShaKernel::Portable, [&a[..]]);
            let [y1] = MacKey::new_many(ShaKernel::Portable, [&b[..]]);
            assert_eq!((x.inner, x.outer), (x1.inner, x1.outer));
            assert_eq!((y.inner, y.outer), (y1.inner, y1.outer));
            assert_eq!(x.sign_full(b"m"), reference_hmac(&a, b"m"));
            assert_eq!(y.sign_full(b"m"), reference_hmac(&b, b"m"));
        }
    }
}

/// Payload keys installed `N` at a time on `k`, checked against one-at-a-time
/// `PayloadKey::new` (every installed state), the `hkdf` and `hmac` crates (both directions'
/// HMAC keys) and the `aes` crate (the encryption schedule).
fn payload_keys_in_lanes_match<const N: usize>(k: ShaKernel, raw: &[[u8; 32]; N], index: u8) {
    let many: [PayloadKey; N] =
        PayloadKey::new_many_with(k, index, core::array::from_fn(|i| &raw[i]));
    let info = crate::PAYLOAD_HMAC_INFO;
    for (i, (pk, key)) in many.iter().zip(raw).enumerate() {
        let one = PayloadKey::new(index, key);
        assert!(pk.installed() == one.installed(), "{k:?} N={N} key {i}");
        let mut okm = [0u8; 96];
        hkdf::Hkdf::<Sha384>::new(None, key)
            .expand(info, &mut okm)
            .unwrap();
        let msg = [i as u8; 77];
        assert_eq!(
            pk.mac(Direction::Forward).sign_full(&msg),
            reference_hmac(&okm[..48], &msg)
        );
        assert_eq!(
            pk.mac(Direction::Reverse).sign_full(&msg),
            reference_hmac(&okm[48..], &msg)
        );
        let mut block = GenericArray::from([0u8; 16]);
        aes::cipher::BlockEncrypt::encrypt_block(&Aes256Enc::new(key.into()), &mut block);
        assert_eq!(pk.installed().3, <[u8; 16]>::from(block));
        assert_eq!(pk.index(), index);
    }
}

#[test]
fn payload_key_known_answer_in_every_lane() {
    // HKDF-SHA384(IKM = 00 01 .. 1f, salt = none, info = PAYLOAD_HMAC_INFO): T(1) and T(2),
    // from Python's hmac/hashlib, and HMAC(T(1), "svr")[..24].
    let t1 = "5d9cd446977fdb0fab071a601fd6c12b082bbc68f54c6dc4ef0facb4f1b289e9\
              c1ef8431c8cfc697926d60d2648fa8b2";
    let t2 = "6699d1cd0ba4423c81f722beda5c6ad45feb8e85a1e624a456ee72c052ab9cdf\
              876b38ca8f15def7a4265e96a59f4459";
    let key: [u8; 32] = core::array::from_fn(|i| i as u8);
    for k in sha_kernels() {
        let many = PayloadKey::new_many_with(k, 5, [&key; 8]);
        for (lane, pk) in many.iter().enumerate() {
            assert_eq!(hex::encode(pk.installed().2), t1, "{k:?} lane {lane}");
            assert_eq!(
                hex::encode(pk.sign(Direction::Forward, b"svr")),
                "96016019dacd72c09ecc0e8a81e4ac11718cbee0eb53bec8",
                "{k:?} lane {lane}"
            );
            let t2 = hex::decode(t2).unwrap();
            assert_eq!(
                pk.mac(Direction::Reverse).sign_full(b"svr"),
                MacKey::new(&t2).sign_full(b"svr"),
                "{k:?} lane {lane}"
            );
        }
    }
}

#[test]
fn payload_keys_in_lanes_match_single_install_and_hkdf() {
    let mut rng = Rng(6);
    let mut raw = || -> [u8; 32] { rng.bytes(32).try_into().unwrap() };
    for k in sha_kernels() {
        for round in 0..20u8 {
            payload_keys_in_lanes_match(k, &[raw()], round);
            payload_keys_in_lanes_match(k, &[raw(), raw(), raw()], round);
            payload_keys_in_lanes_match(k, &[raw(), raw(), raw(), raw(), raw()], round);
            payload_keys_in_lanes_match(k, &core::array::from_fn::<_, 8, _>(|_| raw()), round);
        }
    }
    // The public entry point (the detected kernel), and an index set after installation.
    let key = raw();
    let [mut pk] = PayloadKey::new_many(0, [&key]);
    pk.set_index(42);
    assert!(pk.installed() == PayloadKey::new(42, &key).installed());
    assert_eq!(
        pk.iv(Direction::Forward, 9),
        PayloadKey::new(42, &key).iv(Direction::Forward, 9)
    );
}

#[cfg(target_arch = "x86_64")]
mod aes_lanes {
    use super::*;
    use crate::x86::{AesLanes, AesNi, Vaes512, AES_LANES};

    type Run = Box<dyn Fn(&mut AesLanes, &mut [&mut [u8]; AES_LANES], usize)>;

    fn aes_kernels() -> Vec<(&'static str, Run)> {
        let mut v: Vec<(&'static str, Run)> = Vec::new();
        if let Some(t) = AesNi::detect() {
            v.push((
                "aesni",
                Box::new(move |l, b, n| t.cbc_encrypt_lanes(l, b, n)),
            ));
        }
        if let Some(t) = Vaes512::detect() {
            v.push((
                "vaes512",
                Box::new(move |l, b, n| t.cbc_encrypt_lanes(l, b, n)),
            ));
        }
        eprintln!(
            "AES kernels under test: {:?}",
            v.iter().map(|k| k.0).collect::<Vec<_>>()
        );
        v
    }

    fn aes_dec_kernels() -> Vec<(&'static str, Run)> {
        let mut v: Vec<(&'static str, Run)> = Vec::new();
        if let Some(t) = AesNi::detect() {
            v.push((
                "aesni",
                Box::new(move |l, b, n| t.cbc_decrypt_lanes(l, b, n)),
            ));
        }
        if let Some(t) = Vaes512::detect() {
            v.push((
                "vaes512",
                Box::new(move |l, b, n| t.cbc_decrypt_lanes(l, b, n)),
            ));
        }
        v
    }

    #[test]
    fn nist_sp800_38a_f26_decrypt_in_every_lane() {
        let Some(t) = AesNi::detect() else { return };
        let key: [u8; 32] =
            hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
                .unwrap()
                .try_into()
                .unwrap();
        let iv: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f")
            .unwrap()
            .try_into()
            .unwrap();
        let cipher = hex::decode(
            "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d\
             39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b",
        )
        .unwrap();
        let want = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
                    30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
        let dk = t.inverse_key(&t.expand_key(&key));
        for (name, run) in aes_dec_kernels() {
            let mut lanes = AesLanes::new();
            let mut data = vec![cipher.clone(); AES_LANES];
            for l in 0..AES_LANES {
                lanes.load(l, &dk, iv);
            }
            // In two calls (1 + 3 blocks): the chain carries over between calls.
            for (from, to) in [(0, 16), (16, 64)] {
                let mut it = data.iter_mut();
                let mut bufs: [&mut [u8]; AES_LANES] =
                    core::array::from_fn(|_| &mut it.next().unwrap()[from..to]);
                run(&mut lanes, &mut bufs, (to - from) / 16);
            }
            for d in &data {
                assert_eq!(hex::encode(d), want, "{name}");
            }
        }
    }

    #[test]
    fn decrypt_lanes_with_random_keys_lengths_and_idle_lanes_match_the_cbc_crate() {
        let Some(t) = AesNi::detect() else { return };
        let mut rng = Rng(7);
        for (name, run) in aes_dec_kernels() {
            for _ in 0..100 {
                let n = rng.below(20);
                let mut lanes = AesLanes::new();
                let keys: Vec<[u8; 32]> = (0..AES_LANES)
                    .map(|_| rng.bytes(32).try_into().unwrap())
                    .collect();
                let ivs: Vec<[u8; 16]> = (0..AES_LANES)
                    .map(|_| rng.bytes(16).try_into().unwrap())
                    .collect();
                let idle: Vec<bool> = (0..AES_LANES).map(|_| rng.below(4) == 0).collect();
                let mut data: Vec<Vec<u8>> = (0..AES_LANES).map(|_| rng.bytes(16 * n)).collect();
                let want: Vec<Vec<u8>> = (0..AES_LANES)
                    .map(|l| {
                        let mut d = data[l].clone();
                        cbc_decrypt(&Aes256Dec::new(&keys[l].into()), &ivs[l], &mut d).unwrap();
                        d
                    })
                    .collect();
                for l in 0..AES_LANES {
                    lanes.load(l, &t.inverse_key(&t.expand_key(&keys[l])), ivs[l]);
                }
                let orig = data.clone();
                let mut it = data.iter_mut().zip(&idle);
                let mut bufs: [&mut [u8]; AES_LANES] = core::array::from_fn(|_| {
                    let (d, &i) = it.next().unwrap();
                    if i {
                        &mut d[..0]
                    } else {
                        &mut d[..]
                    }
                });
                run(&mut lanes, &mut bufs, n);
                for l in 0..AES_LANES {
                    if idle[l] {
                        assert_eq!(data[l], orig[l], "{name}: idle lane {l} untouched");
                    } else {
                        assert_eq!(data[l], want[l], "{name}: lane {l}, {n} blocks");
                        if n > 0 {
                            // The chain is the last ciphertext block.
                            assert_eq!(lanes.chain[l][..], orig[l][16 * n - 16..], "{name}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn payload_key_decryption_schedule_matches_the_aes_crate() {
        let mut rng = Rng(8);
        for _ in 0..50 {
            let key: [u8; 32] = rng.bytes(32).try_into().unwrap();
            let pk = PayloadKey::new(3, &key);
            let (Some(rk), Some(dk)) = (pk.lane_rk(), pk.lane_dk()) else {
                assert!(AesNi::detect().is_none());
                return;
            };
            // Decrypting one block with the lane schedule equals the `aes` crate.
            let block: [u8; 16] = rng.bytes(16).try_into().unwrap();
            let mut want = GenericArray::from(block);
            aes::cipher::BlockDecrypt::decrypt_block(&Aes256Dec::new(&key.into()), &mut want);
            for (name, run) in aes_dec_kernels() {
                let mut lanes = AesLanes::new();
                lanes.load(0, dk, [0; 16]);
                let mut b = block;
                let mut bufs: [&mut [u8]; AES_LANES] = Default::default();
                bufs[0] = &mut b[..];
                run(&mut lanes, &mut bufs, 1);
                assert_eq!(b, <[u8; 16]>::from(want), "{name}");
            }
            assert_eq!(dk[0], rk[14]);
            assert_eq!(dk[14], rk[0]);
        }
    }

    #[test]
    fn key_expansion_matches_fips197_appendix_a3() {
        let Some(t) = AesNi::detect() else { return };
        let key: [u8; 32] =
            hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
                .unwrap()
                .try_into()
                .unwrap();
        let rk = t.expand_key(&key);
        // FIPS 197 A.3: w[56..60], the last round key.
        assert_eq!(hex::encode(rk[14]), "fe4890d1e6188d0b046df344706c631e");
        assert_eq!(hex::encode(rk[2]), "9ba354118e6925afa51a8b5f2067fcde");
    }

    #[test]
    fn nist_sp800_38a_f25_in_every_lane() {
        let key: [u8; 32] =
            hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
                .unwrap()
                .try_into()
                .unwrap();
        let iv: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f")
            .unwrap()
            .try_into()
            .unwrap();
        let plain = hex::decode(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
             30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
        )
        .unwrap();
        let want = "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d\
                    39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b";
        let Some(t) = AesNi::detect() else { return };
        let rk = t.expand_key(&key);
        for (name, run) in aes_kernels() {
            let mut lanes = AesLanes::new();
            let mut data = vec![plain.clone(); AES_LANES];
            for l in 0..AES_LANES {
                lanes.load(l, &rk, iv);
            }
            // In two calls (2 + 2 blocks): the chain carries over between calls.
            for half in 0..2 {
                let mut it = data.iter_mut();
                let mut bufs: [&mut [u8]; AES_LANES] =
                    core::array::from_fn(|_| &mut it.next().unwrap()[32 * half..32 * half + 32]);
                run(&mut lanes, &mut bufs, 2);
            }
            for d in &data {
                assert_eq!(hex::encode(d), want, "{name}");
            }
        }
    }

    #[test]
    fn random_keys_lengths_and_idle_lanes_match_the_aes_crate() {
        let Some(t) = AesNi::detect() else { return };
        let mut rng = Rng(5);
        for (name, run) in aes_kernels() {
            for _ in 0..100 {
                let n = rng.below(20);
                let mut lanes = AesLanes::new();
                let keys: Vec<[u8; 32]> = (0..AES_LANES)
                    .map(|_| rng.bytes(32).try_into().unwrap())
                    .collect();
                let ivs: Vec<[u8; 16]> = (0..AES_LANES)
                    .map(|_| rng.bytes(16).try_into().unwrap())
                    .collect();
                let idle: Vec<bool> = (0..AES_LANES).map(|_| rng.below(4) == 0).collect();
                let mut data: Vec<Vec<u8>> = (0..AES_LANES).map(|_| rng.bytes(16 * n)).collect();
                let want: Vec<Vec<u8>> = (0..AES_LANES)
                    .map(|l| {
                        let mut d = data[l].clone();
                        cbc_encrypt(&Aes256Enc::new(&keys[l].into()), &ivs[l], &mut d).unwrap();
                        d
                    })
                    .collect();
                for l in 0..AES_LANES {
                    lanes.load(l, &t.expand_key(&keys[l]), ivs[l]);
                }
                let orig = data.clone();
                let mut it = data.iter_mut().zip(&idle);
                let mut bufs: [&mut [u8]; AES_LANES] = core::array::from_fn(|_| {
                    let (d, &i) = it.next().unwrap();
                    if i {
                        &mut d[..0]
                    } else {
                        &mut d[..]
                    }
                });
                run(&mut lanes, &mut bufs, n);
                for l in 0..AES_LANES {
                    if idle[l] {
                        assert_eq!(data[l], orig[l], "{name}: idle lane {l} untouched");
                    } else {
                        assert_eq!(data[l], want[l], "{name}: lane {l}, {n} blocks");
                    }
                }
            }
        }
    }
}
