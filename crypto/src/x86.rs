//! x86-64 SIMD kernels: multi-lane SHA-512 compression (AVX-512, AVX2), AES-256 key
//! expansion and its inverse-cipher form (AES-NI), and multi-lane AES-256-CBC encryption and
//! decryption (VAES + AVX-512, AES-NI).
//!
//! This is the only module of the crate with `unsafe` (DEVELOPERS.md: SIMD crypto kernels).
//! Every `#[target_feature]` function is reached only through a zero-sized token
//! ([`Avx2`], [`Avx512`], [`AesNi`], [`Vaes512`]) whose only constructor runs
//! `is_x86_feature_detected!` for every feature the kernel enables, so holding a token is the
//! proof that the CPU has them. The kernels take references and check every length they rely
//! on before touching memory; the raw pointers below never leave the slice they came from.

use core::arch::x86_64::*;

use crate::burst::RoundKeys;
use crate::sha512::{LaneBlocks, LaneState, K, LANES};

/// Number of CBC lanes of the multi-lane AES kernels.
pub(crate) const AES_LANES: usize = 32;

/// Per-lane round keys, round-major (`rk[round][lane]`, so four consecutive lanes of one
/// round are one 64-byte AVX-512 operand), and per-lane CBC chaining values.
#[derive(Clone)]
pub(crate) struct AesLanes {
    pub rk: [[[u8; 16]; AES_LANES]; 15],
    pub chain: [[u8; 16]; AES_LANES],
}

impl AesLanes {
    pub(crate) fn new() -> Self {
        Self {
            rk: [[[0; 16]; AES_LANES]; 15],
            chain: [[0; 16]; AES_LANES],
        }
    }

    /// Give `lane` the schedule `rk` and the chaining value `iv`.
    #[inline]
    pub(crate) fn load(&mut self, lane: usize, rk: &RoundKeys, iv: [u8; 16]) {
        for (r, k) in rk.iter().enumerate() {
            self.rk[r][lane] = *k;
        }
        self.chain[lane] = iv;
    }
}

impl Drop for AesLanes {
    /// Scrubs the round keys (7.7 KB per burst) with plain vector stores made observable by
    /// `black_box`: `zeroize`'s byte-by-byte volatile writes would cost more than the CBC
    /// itself at small packet sizes.
    fn drop(&mut self) {
        self.rk = [[[0; 16]; AES_LANES]; 15];
        self.chain = [[0; 16]; AES_LANES];
        core::hint::black_box(&mut *self);
    }
}

macro_rules! token {
    ($(#[$m:meta])* $name:ident, $($feat:tt),+) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) struct $name(());

        impl $name {
            /// The token, if this CPU has every feature the kernels need.
            #[inline]
            pub(crate) fn detect() -> Option<Self> {
                if $(std::arch::is_x86_feature_detected!($feat))&&+ {
                    Some(Self(()))
                } else {
                    None
                }
            }
        }
    };
}

token!(
    /// Proof of AVX2.
    Avx2, "avx2"
);
token!(
    /// Proof of AVX-512 F and BW.
    Avx512, "avx512f", "avx512bw"
);
token!(
    /// Proof of AES-NI (with SSE2, x86-64 baseline).
    AesNi, "aes", "sse2"
);
token!(
    /// Proof of VAES with AVX-512 F (512-bit AES rounds).
    Vaes512, "vaes", "avx512f", "aes"
);

// ---- SHA-512, 8 lanes -------------------------------------------------------------------

/// The vector operations one SHA-512 round needs, over 8 lanes of u64. The methods are
/// `unsafe`: they may be called only from a function that enables the implementation's
/// target features (they are `#[inline(always)]` into it).
trait Lanes8: Copy {
    unsafe fn load(p: &[u64; 8]) -> Self;
    unsafe fn store(self, p: &mut [u64; 8]);
    unsafe fn splat(x: u64) -> Self;
    unsafe fn add(self, o: Self) -> Self;
    unsafe fn ch(e: Self, f: Self, g: Self) -> Self;
    unsafe fn maj(a: Self, b: Self, c: Self) -> Self;
    /// Σ0, Σ1, σ0, σ1 of FIPS 180-4 §4.1.3.
    unsafe fn bsig0(x: Self) -> Self;
    unsafe fn bsig1(x: Self) -> Self;
    unsafe fn ssig0(x: Self) -> Self;
    unsafe fn ssig1(x: Self) -> Self;
}

#[derive(Clone, Copy)]
struct Z(__m512i);

impl Lanes8 for Z {
    #[inline(always)]
    unsafe fn load(p: &[u64; 8]) -> Self {
        Z(_mm512_loadu_si512(p.as_ptr().cast()))
    }
    #[inline(always)]
    unsafe fn store(self, p: &mut [u64; 8]) {
        _mm512_storeu_si512(p.as_mut_ptr().cast(), self.0)
    }
    #[inline(always)]
    unsafe fn splat(x: u64) -> Self {
        Z(_mm512_set1_epi64(x as i64))
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Z(_mm512_add_epi64(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn ch(e: Self, f: Self, g: Self) -> Self {
        // e ? f : g
        Z(_mm512_ternarylogic_epi64::<0xca>(e.0, f.0, g.0))
    }
    #[inline(always)]
    unsafe fn maj(a: Self, b: Self, c: Self) -> Self {
        Z(_mm512_ternarylogic_epi64::<0xe8>(a.0, b.0, c.0))
    }
    #[inline(always)]
    unsafe fn bsig0(x: Self) -> Self {
        let (a, b, c) = (
            _mm512_ror_epi64::<28>(x.0),
            _mm512_ror_epi64::<34>(x.0),
            _mm512_ror_epi64::<39>(x.0),
        );
        Z(_mm512_ternarylogic_epi64::<0x96>(a, b, c))
    }
    #[inline(always)]
    unsafe fn bsig1(x: Self) -> Self {
        let (a, b, c) = (
            _mm512_ror_epi64::<14>(x.0),
            _mm512_ror_epi64::<18>(x.0),
            _mm512_ror_epi64::<41>(x.0),
        );
        Z(_mm512_ternarylogic_epi64::<0x96>(a, b, c))
    }
    #[inline(always)]
    unsafe fn ssig0(x: Self) -> Self {
        let (a, b, c) = (
            _mm512_ror_epi64::<1>(x.0),
            _mm512_ror_epi64::<8>(x.0),
            _mm512_srli_epi64::<7>(x.0),
        );
        Z(_mm512_ternarylogic_epi64::<0x96>(a, b, c))
    }
    #[inline(always)]
    unsafe fn ssig1(x: Self) -> Self {
        let (a, b, c) = (
            _mm512_ror_epi64::<19>(x.0),
            _mm512_ror_epi64::<61>(x.0),
            _mm512_srli_epi64::<6>(x.0),
        );
        Z(_mm512_ternarylogic_epi64::<0x96>(a, b, c))
    }
}

/// Two AVX2 registers of 4 lanes each, processed side by side (two independent dependency
/// chains per round).
#[derive(Clone, Copy)]
struct Y2(__m256i, __m256i);

macro_rules! y2 {
    ($f:ident($($a:expr),*)) => { Y2($f($($a.0),*), $f($($a.1),*)) };
}

#[inline(always)]
unsafe fn ror256<const R: i32, const L: i32>(x: __m256i) -> __m256i {
    _mm256_or_si256(_mm256_srli_epi64::<R>(x), _mm256_slli_epi64::<L>(x))
}

#[inline(always)]
unsafe fn xor3_256(a: __m256i, b: __m256i, c: __m256i) -> __m256i {
    _mm256_xor_si256(_mm256_xor_si256(a, b), c)
}

#[inline(always)]
unsafe fn bsig0_256(x: __m256i) -> __m256i {
    xor3_256(
        ror256::<28, 36>(x),
        ror256::<34, 30>(x),
        ror256::<39, 25>(x),
    )
}
#[inline(always)]
unsafe fn bsig1_256(x: __m256i) -> __m256i {
    xor3_256(
        ror256::<14, 50>(x),
        ror256::<18, 46>(x),
        ror256::<41, 23>(x),
    )
}
#[inline(always)]
unsafe fn ssig0_256(x: __m256i) -> __m256i {
    xor3_256(
        ror256::<1, 63>(x),
        ror256::<8, 56>(x),
        _mm256_srli_epi64::<7>(x),
    )
}
#[inline(always)]
unsafe fn ssig1_256(x: __m256i) -> __m256i {
    xor3_256(
        ror256::<19, 45>(x),
        ror256::<61, 3>(x),
        _mm256_srli_epi64::<6>(x),
    )
}
#[inline(always)]
unsafe fn ch256(e: __m256i, f: __m256i, g: __m256i) -> __m256i {
    _mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, g))
}
#[inline(always)]
unsafe fn maj256(a: __m256i, b: __m256i, c: __m256i) -> __m256i {
    _mm256_or_si256(
        _mm256_and_si256(a, b),
        _mm256_and_si256(c, _mm256_or_si256(a, b)),
    )
}

impl Lanes8 for Y2 {
    #[inline(always)]
    unsafe fn load(p: &[u64; 8]) -> Self {
        Y2(
            _mm256_loadu_si256(p.as_ptr().cast()),
            _mm256_loadu_si256(p[4..].as_ptr().cast()),
        )
    }
    #[inline(always)]
    unsafe fn store(self, p: &mut [u64; 8]) {
        _mm256_storeu_si256(p.as_mut_ptr().cast(), self.0);
        _mm256_storeu_si256(p[4..].as_mut_ptr().cast(), self.1);
    }
    #[inline(always)]
    unsafe fn splat(x: u64) -> Self {
        let v = _mm256_set1_epi64x(x as i64);
        Y2(v, v)
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Y2(_mm256_add_epi64(self.0, o.0), _mm256_add_epi64(self.1, o.1))
    }
    #[inline(always)]
    unsafe fn ch(e: Self, f: Self, g: Self) -> Self {
        y2!(ch256(e, f, g))
    }
    #[inline(always)]
    unsafe fn maj(a: Self, b: Self, c: Self) -> Self {
        y2!(maj256(a, b, c))
    }
    #[inline(always)]
    unsafe fn bsig0(x: Self) -> Self {
        y2!(bsig0_256(x))
    }
    #[inline(always)]
    unsafe fn bsig1(x: Self) -> Self {
        y2!(bsig1_256(x))
    }
    #[inline(always)]
    unsafe fn ssig0(x: Self) -> Self {
        y2!(ssig0_256(x))
    }
    #[inline(always)]
    unsafe fn ssig1(x: Self) -> Self {
        y2!(ssig1_256(x))
    }
}

/// FIPS 180-4 §6.4.2 on 8 lanes at once. Must be inlined into a function that enables the
/// target features of `V`.
#[inline(always)]
unsafe fn sha512_lanes<V: Lanes8>(st: &mut LaneState, mut w: [V; 16]) {
    let init = [
        V::load(&st[0]),
        V::load(&st[1]),
        V::load(&st[2]),
        V::load(&st[3]),
        V::load(&st[4]),
        V::load(&st[5]),
        V::load(&st[6]),
        V::load(&st[7]),
    ];
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = init;
    macro_rules! rounds16 {
        ($r:expr, $sched:expr; $($i:literal)*) => {$(
            if $sched {
                // W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16], in a ring of 16.
                w[$i] = V::ssig1(w[($i + 14) & 15])
                    .add(w[($i + 9) & 15])
                    .add(V::ssig0(w[($i + 1) & 15]))
                    .add(w[$i]);
            }
            let t1 = h
                .add(V::bsig1(e))
                .add(V::ch(e, f, g))
                .add(V::splat(K[$r * 16 + $i]).add(w[$i]));
            let t2 = V::bsig0(a).add(V::maj(a, b, c));
            h = g;
            g = f;
            f = e;
            e = d.add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.add(t2);
        )*};
    }
    rounds16!(0, false; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    for r in 1..5 {
        rounds16!(r, true; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    }
    for (i, v) in [a, b, c, d, e, f, g, h].into_iter().enumerate() {
        init[i].add(v).store(&mut st[i]);
    }
}

/// Loads 8 message blocks (one per lane) as the 16 word vectors `W[t]` (lane `l` of `W[t]` is
/// big-endian word `t` of `blocks[l]`): 16 row loads, a byte swap per qword, and two 8 x 8
/// qword transposes (unpack, two-source permute, 128-bit shuffle).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn load_transpose_avx512(blocks: &LaneBlocks<'_>) -> [Z; 16] {
    let bswap = _mm512_set_epi64(
        0x08090a0b0c0d0e0f,
        0x0001020304050607,
        0x08090a0b0c0d0e0f,
        0x0001020304050607,
        0x08090a0b0c0d0e0f,
        0x0001020304050607,
        0x08090a0b0c0d0e0f,
        0x0001020304050607,
    );
    let lo_idx = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    let hi_idx = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    let mut w = [Z(_mm512_setzero_si512()); 16];
    for half in 0..2 {
        let mut r = [_mm512_setzero_si512(); 8];
        for (l, v) in r.iter_mut().enumerate() {
            let row = _mm512_loadu_si512(blocks[l][64 * half..].as_ptr().cast());
            *v = _mm512_shuffle_epi8(row, bswap);
        }
        // t[2k] = (r[2k][0], r[2k+1][0], r[2k][2], r[2k+1][2], ...), t[2k+1] the odd words.
        let mut t = [_mm512_setzero_si512(); 8];
        for k in 0..4 {
            t[2 * k] = _mm512_unpacklo_epi64(r[2 * k], r[2 * k + 1]);
            t[2 * k + 1] = _mm512_unpackhi_epi64(r[2 * k], r[2 * k + 1]);
        }
        // For lanes 0-3 (u) and 4-7 (v): words (0, 4), (2, 6), (1, 5), (3, 7) of four lanes,
        // the first word in the low 256 bits.
        let mut u = [[_mm512_setzero_si512(); 4]; 2];
        for (g, q) in u.iter_mut().enumerate() {
            let (t0, t1, t2, t3) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
            q[0] = _mm512_permutex2var_epi64(t0, lo_idx, t2);
            q[1] = _mm512_permutex2var_epi64(t0, hi_idx, t2);
            q[2] = _mm512_permutex2var_epi64(t1, lo_idx, t3);
            q[3] = _mm512_permutex2var_epi64(t1, hi_idx, t3);
        }
        for (k, word) in [0usize, 2, 1, 3].into_iter().enumerate() {
            let (a, b) = (u[0][k], u[1][k]);
            w[8 * half + word] = Z(_mm512_shuffle_i64x2::<0b01_00_01_00>(a, b));
            w[8 * half + word + 4] = Z(_mm512_shuffle_i64x2::<0b11_10_11_10>(a, b));
        }
    }
    w
}

#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn sha512_x8_avx512(st: &mut LaneState, blocks: &LaneBlocks<'_>) {
    // SAFETY (of the inlined calls): this function enables avx512f and avx512bw, all that
    // `Z` and the transpose need; memory is read and written only through the references
    // (each block is exactly 128 bytes, each state row 8 words).
    unsafe {
        let w = load_transpose_avx512(blocks);
        sha512_lanes::<Z>(st, w)
    }
}

#[target_feature(enable = "avx2")]
unsafe fn sha512_x8_avx2(st: &mut LaneState, blocks: &LaneBlocks<'_>) {
    let mut words = [[0u64; 8]; 16];
    for (l, b) in blocks.iter().enumerate() {
        for (t, c) in b.chunks_exact(8).enumerate() {
            let mut x = [0u8; 8];
            x.copy_from_slice(c);
            words[t][l] = u64::from_be_bytes(x);
        }
    }
    // SAFETY: as above, with avx2 for `Y2`.
    unsafe {
        let mut w = [Y2::splat(0); 16];
        for (v, src) in w.iter_mut().zip(&words) {
            *v = Y2::load(src);
        }
        sha512_lanes::<Y2>(st, w)
    }
}

const _: () = assert!(LANES == 8);

impl Avx512 {
    /// One SHA-512 compression in each of the 8 lanes.
    #[inline]
    pub(crate) fn sha512_x8(self, st: &mut LaneState, blocks: &LaneBlocks<'_>) {
        // SAFETY: `self` exists only if avx512f and avx512bw were detected.
        unsafe { sha512_x8_avx512(st, blocks) }
    }
}

impl Avx2 {
    /// One SHA-512 compression in each of the 8 lanes (two 4-lane halves).
    #[inline]
    pub(crate) fn sha512_x8(self, st: &mut LaneState, blocks: &LaneBlocks<'_>) {
        // SAFETY: `self` exists only if `is_x86_feature_detected!("avx2")` held.
        unsafe { sha512_x8_avx2(st, blocks) }
    }
}

// ---- AES-256 key expansion ----------------------------------------------------------------

#[inline(always)]
unsafe fn expand_step(prev: __m128i, t: __m128i) -> __m128i {
    let mut k = prev;
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    _mm_xor_si128(k, t)
}

#[target_feature(enable = "aes,sse2")]
unsafe fn expand_key_aesni(key: &[u8; 32]) -> RoundKeys {
    let mut rk = [[0u8; 16]; 15];
    let mut k0 = _mm_loadu_si128(key.as_ptr().cast());
    let mut k1 = _mm_loadu_si128(key[16..].as_ptr().cast());
    _mm_storeu_si128(rk[0].as_mut_ptr().cast(), k0);
    _mm_storeu_si128(rk[1].as_mut_ptr().cast(), k1);
    macro_rules! even {
        ($i:literal, $rcon:literal) => {
            let t = _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<$rcon>(k1));
            k0 = expand_step(k0, t);
            _mm_storeu_si128(rk[2 * $i].as_mut_ptr().cast(), k0);
        };
    }
    macro_rules! odd {
        ($i:literal) => {
            let t = _mm_shuffle_epi32::<0xaa>(_mm_aeskeygenassist_si128::<0>(k0));
            k1 = expand_step(k1, t);
            _mm_storeu_si128(rk[2 * $i + 1].as_mut_ptr().cast(), k1);
        };
    }
    even!(1, 0x01);
    odd!(1);
    even!(2, 0x02);
    odd!(2);
    even!(3, 0x04);
    odd!(3);
    even!(4, 0x08);
    odd!(4);
    even!(5, 0x10);
    odd!(5);
    even!(6, 0x20);
    odd!(6);
    even!(7, 0x40);
    rk
}

#[target_feature(enable = "aes,sse2")]
unsafe fn inverse_key_aesni(rk: &RoundKeys) -> RoundKeys {
    let mut dk = [[0u8; 16]; 15];
    dk[0] = rk[14];
    dk[14] = rk[0];
    for r in 1..14 {
        let k = _mm_loadu_si128(rk[14 - r].as_ptr().cast());
        _mm_storeu_si128(dk[r].as_mut_ptr().cast(), _mm_aesimc_si128(k));
    }
    dk
}

impl AesNi {
    /// The AES-256 encryption schedule of `key` (FIPS 197 §5.2).
    #[inline]
    pub(crate) fn expand_key(self, key: &[u8; 32]) -> RoundKeys {
        // SAFETY: `self` exists only if `aes` and `sse2` were detected.
        unsafe { expand_key_aesni(key) }
    }

    /// The decryption schedule of the equivalent inverse cipher (FIPS 197 §5.3.5) from the
    /// encryption schedule `rk`, in the order `aesdec` consumes it: `rk[14]`,
    /// `InvMixColumns(rk[13..=1])`, `rk[0]`.
    #[inline]
    pub(crate) fn inverse_key(self, rk: &RoundKeys) -> RoundKeys {
        // SAFETY: `self` exists only if `aes` and `sse2` were detected; only references are
        // read and written.
        unsafe { inverse_key_aesni(rk) }
    }
}

// ---- AES-256-CBC encryption, 32 lanes ---------------------------------------------------

/// Per-lane data pointers for `n` blocks: lane `l` reads and writes `16 * i` bytes past its
/// pointer for `i < n`, or always the same 16 scratch bytes (stride 0) when its slice is
/// empty (an idle lane). Panics unless every slice is empty or exactly `16 * n` bytes long,
/// which is what makes the kernels' pointer arithmetic stay in bounds.
fn lane_ptrs(
    bufs: &mut [&mut [u8]; AES_LANES],
    scratch: &mut [[u8; 16]; AES_LANES],
    n: usize,
) -> ([*mut u8; AES_LANES], [usize; AES_LANES]) {
    let mut ptrs = [core::ptr::null_mut(); AES_LANES];
    let mut stride = [0usize; AES_LANES];
    for (l, b) in bufs.iter_mut().enumerate() {
        if b.is_empty() {
            ptrs[l] = scratch[l].as_mut_ptr();
        } else {
            assert_eq!(b.len(), 16 * n, "lane {l}: exactly n blocks");
            ptrs[l] = b.as_mut_ptr();
            stride[l] = 16;
        }
    }
    (ptrs, stride)
}

/// # Safety
/// AES-NI and SSE2 present; `ptrs[l] + stride[l] * i .. + 16` is valid for reads and writes
/// for every lane `l` and `i < n` (what [`lane_ptrs`] returns).
#[target_feature(enable = "aes,sse2")]
#[allow(clippy::needless_range_loop)] // lanes index several arrays in step
unsafe fn cbc_enc_aesni(
    lanes: &mut AesLanes,
    ptrs: &[*mut u8; AES_LANES],
    stride: &[usize; AES_LANES],
    n: usize,
) {
    let mut x = [_mm_setzero_si128(); AES_LANES];
    for (v, c) in x.iter_mut().zip(&lanes.chain) {
        *v = _mm_loadu_si128(c.as_ptr().cast());
    }
    let rk = &lanes.rk;
    macro_rules! key {
        ($r:expr, $l:expr) => {
            _mm_loadu_si128(rk[$r][$l].as_ptr().cast())
        };
    }
    for i in 0..n {
        for l in 0..AES_LANES {
            // SAFETY: in bounds by this function's contract.
            let p = unsafe { ptrs[l].add(stride[l] * i) };
            let m = unsafe { _mm_loadu_si128(p.cast()) };
            x[l] = _mm_xor_si128(_mm_xor_si128(x[l], m), key!(0, l));
        }
        for r in 1..14 {
            for l in 0..AES_LANES {
                x[l] = _mm_aesenc_si128(x[l], key!(r, l));
            }
        }
        for l in 0..AES_LANES {
            x[l] = _mm_aesenclast_si128(x[l], key!(14, l));
            // SAFETY: in bounds by this function's contract.
            unsafe { _mm_storeu_si128(ptrs[l].add(stride[l] * i).cast(), x[l]) };
        }
    }
    for (v, c) in x.iter().zip(lanes.chain.iter_mut()) {
        _mm_storeu_si128(c.as_mut_ptr().cast(), *v);
    }
}

/// # Safety
/// VAES, AVX-512 F present; pointers as for [`cbc_enc_aesni`].
#[target_feature(enable = "vaes,avx512f,aes")]
#[allow(clippy::needless_range_loop)] // groups index several arrays in step
unsafe fn cbc_enc_vaes512(
    lanes: &mut AesLanes,
    ptrs: &[*mut u8; AES_LANES],
    stride: &[usize; AES_LANES],
    n: usize,
) {
    const G: usize = AES_LANES / 4;
    let mut x = [_mm512_setzero_si512(); G];
    for (g, v) in x.iter_mut().enumerate() {
        *v = _mm512_loadu_si512(lanes.chain[4 * g..].as_ptr().cast());
    }
    let rk = &lanes.rk;
    macro_rules! key {
        ($r:expr, $g:expr) => {
            _mm512_loadu_si512(rk[$r][4 * $g..].as_ptr().cast())
        };
    }
    for i in 0..n {
        for g in 0..G {
            // SAFETY: in bounds by this function's contract.
            let m = unsafe {
                macro_rules! ld {
                    ($l:expr) => {
                        _mm_loadu_si128(ptrs[$l].add(stride[$l] * i).cast())
                    };
                }
                let v = _mm512_castsi128_si512(ld!(4 * g));
                let v = _mm512_inserti32x4::<1>(v, ld!(4 * g + 1));
                let v = _mm512_inserti32x4::<2>(v, ld!(4 * g + 2));
                _mm512_inserti32x4::<3>(v, ld!(4 * g + 3))
            };
            x[g] = _mm512_ternarylogic_epi64::<0x96>(x[g], m, key!(0, g));
        }
        for r in 1..14 {
            for v in x.iter_mut().enumerate() {
                *v.1 = _mm512_aesenc_epi128(*v.1, key!(r, v.0));
            }
        }
        for g in 0..G {
            x[g] = _mm512_aesenclast_epi128(x[g], key!(14, g));
            // SAFETY: in bounds by this function's contract.
            unsafe {
                macro_rules! st {
                    ($l:expr, $v:expr) => {
                        _mm_storeu_si128(ptrs[$l].add(stride[$l] * i).cast(), $v)
                    };
                }
                st!(4 * g, _mm512_castsi512_si128(x[g]));
                st!(4 * g + 1, _mm512_extracti32x4_epi32::<1>(x[g]));
                st!(4 * g + 2, _mm512_extracti32x4_epi32::<2>(x[g]));
                st!(4 * g + 3, _mm512_extracti32x4_epi32::<3>(x[g]));
            }
        }
    }
    for (g, v) in x.iter().enumerate() {
        _mm512_storeu_si512(lanes.chain[4 * g..].as_mut_ptr().cast(), *v);
    }
}

impl AesNi {
    /// CBC-encrypt `n` blocks in place in every lane: each `bufs[l]` is exactly `16 * n`
    /// bytes, or empty for an idle lane. Chaining values carry over in `lanes.chain`.
    pub(crate) fn cbc_encrypt_lanes(
        self,
        lanes: &mut AesLanes,
        bufs: &mut [&mut [u8]; AES_LANES],
        n: usize,
    ) {
        let mut scratch = [[0u8; 16]; AES_LANES];
        let (ptrs, stride) = lane_ptrs(bufs, &mut scratch, n);
        // SAFETY: the token proves AES-NI/SSE2; `lane_ptrs` checked every slice holds exactly
        // n blocks (or gave a 16-byte scratch with stride 0), and `bufs`/`scratch` stay
        // mutably borrowed for the call, so nothing else aliases them.
        unsafe { cbc_enc_aesni(lanes, &ptrs, &stride, n) }
    }
}

impl Vaes512 {
    /// As [`AesNi::cbc_encrypt_lanes`], four lanes per 512-bit register.
    pub(crate) fn cbc_encrypt_lanes(
        self,
        lanes: &mut AesLanes,
        bufs: &mut [&mut [u8]; AES_LANES],
        n: usize,
    ) {
        let mut scratch = [[0u8; 16]; AES_LANES];
        let (ptrs, stride) = lane_ptrs(bufs, &mut scratch, n);
        // SAFETY: the token proves VAES/AVX-512F/AES; bounds and aliasing as in
        // `AesNi::cbc_encrypt_lanes`.
        unsafe { cbc_enc_vaes512(lanes, &ptrs, &stride, n) }
    }
}

// ---- AES-256-CBC decryption, 32 lanes ---------------------------------------------------

/// `P = AES-Decrypt(C) ^ chain; chain = C` for `n` blocks in every lane, with the lanes'
/// decryption schedules (from [`AesNi::inverse_key`]) in `lanes.rk`.
///
/// # Safety
/// As [`cbc_enc_aesni`].
#[target_feature(enable = "aes,sse2")]
#[allow(clippy::needless_range_loop)] // lanes index several arrays in step
unsafe fn cbc_dec_aesni(
    lanes: &mut AesLanes,
    ptrs: &[*mut u8; AES_LANES],
    stride: &[usize; AES_LANES],
    n: usize,
) {
    let mut chain = [_mm_setzero_si128(); AES_LANES];
    for (v, c) in chain.iter_mut().zip(&lanes.chain) {
        *v = _mm_loadu_si128(c.as_ptr().cast());
    }
    let rk = &lanes.rk;
    macro_rules! key {
        ($r:expr, $l:expr) => {
            _mm_loadu_si128(rk[$r][$l].as_ptr().cast())
        };
    }
    let mut c = [_mm_setzero_si128(); AES_LANES];
    let mut x = [_mm_setzero_si128(); AES_LANES];
    for i in 0..n {
        for l in 0..AES_LANES {
            // SAFETY: in bounds by this function's contract.
            c[l] = unsafe { _mm_loadu_si128(ptrs[l].add(stride[l] * i).cast()) };
            x[l] = _mm_xor_si128(c[l], key!(0, l));
        }
        for r in 1..14 {
            for l in 0..AES_LANES {
                x[l] = _mm_aesdec_si128(x[l], key!(r, l));
            }
        }
        for l in 0..AES_LANES {
            let p = _mm_xor_si128(_mm_aesdeclast_si128(x[l], key!(14, l)), chain[l]);
            chain[l] = c[l];
            // SAFETY: in bounds by this function's contract.
            unsafe { _mm_storeu_si128(ptrs[l].add(stride[l] * i).cast(), p) };
        }
    }
    for (v, c) in chain.iter().zip(lanes.chain.iter_mut()) {
        _mm_storeu_si128(c.as_mut_ptr().cast(), *v);
    }
}

/// # Safety
/// VAES, AVX-512 F present; pointers as for [`cbc_enc_aesni`].
#[target_feature(enable = "vaes,avx512f,aes")]
#[allow(clippy::needless_range_loop)] // groups index several arrays in step
unsafe fn cbc_dec_vaes512(
    lanes: &mut AesLanes,
    ptrs: &[*mut u8; AES_LANES],
    stride: &[usize; AES_LANES],
    n: usize,
) {
    const G: usize = AES_LANES / 4;
    let mut chain = [_mm512_setzero_si512(); G];
    for (g, v) in chain.iter_mut().enumerate() {
        *v = _mm512_loadu_si512(lanes.chain[4 * g..].as_ptr().cast());
    }
    let rk = &lanes.rk;
    macro_rules! key {
        ($r:expr, $g:expr) => {
            _mm512_loadu_si512(rk[$r][4 * $g..].as_ptr().cast())
        };
    }
    let mut c = [_mm512_setzero_si512(); G];
    let mut x = [_mm512_setzero_si512(); G];
    for i in 0..n {
        for g in 0..G {
            // SAFETY: in bounds by this function's contract.
            c[g] = unsafe {
                macro_rules! ld {
                    ($l:expr) => {
                        _mm_loadu_si128(ptrs[$l].add(stride[$l] * i).cast())
                    };
                }
                let v = _mm512_castsi128_si512(ld!(4 * g));
                let v = _mm512_inserti32x4::<1>(v, ld!(4 * g + 1));
                let v = _mm512_inserti32x4::<2>(v, ld!(4 * g + 2));
                _mm512_inserti32x4::<3>(v, ld!(4 * g + 3))
            };
            x[g] = _mm512_xor_si512(c[g], key!(0, g));
        }
        for r in 1..14 {
            for g in 0..G {
                x[g] = _mm512_aesdec_epi128(x[g], key!(r, g));
            }
        }
        for g in 0..G {
            let p = _mm512_xor_si512(_mm512_aesdeclast_epi128(x[g], key!(14, g)), chain[g]);
            chain[g] = c[g];
            // SAFETY: in bounds by this function's contract.
            unsafe {
                macro_rules! st {
                    ($l:expr, $v:expr) => {
                        _mm_storeu_si128(ptrs[$l].add(stride[$l] * i).cast(), $v)
                    };
                }
                st!(4 * g, _mm512_castsi512_si128(p));
                st!(4 * g + 1, _mm512_extracti32x4_epi32::<1>(p));
                st!(4 * g + 2, _mm512_extracti32x4_epi32::<2>(p));
                st!(4 * g + 3, _mm512_extracti32x4_epi32::<3>(p));
            }
        }
    }
    for (g, v) in chain.iter().enumerate() {
        _mm512_storeu_si512(lanes.chain[4 * g..].as_mut_ptr().cast(), *v);
    }
}

impl AesNi {
    /// CBC-decrypt `n` blocks in place in every lane, with decryption schedules
    /// ([`AesNi::inverse_key`]) in `lanes.rk`: each `bufs[l]` is exactly `16 * n` bytes, or
    /// empty for an idle lane. The chaining values (the last ciphertext block) carry over in
    /// `lanes.chain`.
    pub(crate) fn cbc_decrypt_lanes(
        self,
        lanes: &mut AesLanes,
        bufs: &mut [&mut [u8]; AES_LANES],
        n: usize,
    ) {
        let mut scratch = [[0u8; 16]; AES_LANES];
        let (ptrs, stride) = lane_ptrs(bufs, &mut scratch, n);
        // SAFETY: as in `AesNi::cbc_encrypt_lanes`.
        unsafe { cbc_dec_aesni(lanes, &ptrs, &stride, n) }
    }
}

impl Vaes512 {
    /// As [`AesNi::cbc_decrypt_lanes`], four lanes per 512-bit register.
    pub(crate) fn cbc_decrypt_lanes(
        self,
        lanes: &mut AesLanes,
        bufs: &mut [&mut [u8]; AES_LANES],
        n: usize,
    ) {
        let mut scratch = [[0u8; 16]; AES_LANES];
        let (ptrs, stride) = lane_ptrs(bufs, &mut scratch, n);
        // SAFETY: as in `Vaes512::cbc_encrypt_lanes`.
        unsafe { cbc_dec_vaes512(lanes, &ptrs, &stride, n) }
    }
}
