//! Test helpers shared by the integration tests.
#![allow(dead_code)]

/// SplitMix64: a small deterministic generator for test keys and sizes (not for real keys).
pub struct TestRng(u64);

impl TestRng {
    /// Seed from `SVR_CRYPTO_SEED` if set, else from the OS; prints the seed so a failure
    /// can be replayed.
    pub fn from_env_or_os(test: &str) -> Self {
        let seed = match std::env::var("SVR_CRYPTO_SEED") {
            Ok(s) => s.parse().expect("SVR_CRYPTO_SEED must be a u64"),
            Err(_) => {
                let mut b = [0u8; 8];
                use std::io::Read;
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut f| f.read_exact(&mut b))
                    .expect("read /dev/urandom");
                u64::from_le_bytes(b)
            }
        };
        eprintln!("{test}: SVR_CRYPTO_SEED={seed}");
        Self(seed)
    }

    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }

    pub fn vec(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
}
