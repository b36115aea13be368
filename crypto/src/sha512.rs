//! SHA-512 compression (FIPS 180-4 §6.4) and the HMAC-SHA384 core on raw midstates.
//!
//! HMAC-SHA384 here is always "compress from a keyed midstate": a [`crate::MacKey`] holds the
//! SHA-384 states after the 128-byte ipad and opad blocks, so a tag over `m` is
//! `outer(SHA-384-finish(inner, m))`: the blocks of `m` and its padding (lengths count the
//! 128 pad bytes already absorbed), then one outer block holding the 48-byte inner digest.
//!
//! Three compressors, all checked against `sha2::compress512` in the tests:
//!
//! * [`compress_bytes`]: one state over contiguous 128-byte blocks, `sha2`'s own backend
//!   (AVX2 on x86-64), for the single-packet path and key installation;
//! * [`compress_words`]: this file's portable Rust, one lane of the multi-buffer manager when
//!   no SIMD kernel is available;
//! * the multi-lane kernels of `crate::x86` (8 lanes of AVX-512, or 2 x 4 lanes of AVX2),
//!   driven by [`HmacLanes`], which interleaves the HMACs of a whole burst.

use sha2::digest::generic_array::GenericArray;

/// A SHA-512/384 chaining state.
pub(crate) type State = [u64; 8];

/// SHA-512 block length.
pub(crate) const BLOCK_LEN: usize = 128;

/// SHA-384 initial hash value (FIPS 180-4 §5.3.4).
pub(crate) const IV384: State = [
    0xcbbb_9d5d_c105_9ed8,
    0x629a_292a_367c_d507,
    0x9159_015a_3070_dd17,
    0x152f_ecd8_f70e_5939,
    0x6733_2667_ffc0_0b31,
    0x8eb4_4a87_6858_1511,
    0xdb0c_2e0d_64f9_8fa7,
    0x47b5_481d_befa_4fa4,
];

/// SHA-512 round constants (FIPS 180-4 §4.2.3).
pub(crate) const K: [u64; 80] = [
    0x428a2f98d728ae22,
    0x7137449123ef65cd,
    0xb5c0fbcfec4d3b2f,
    0xe9b5dba58189dbbc,
    0x3956c25bf348b538,
    0x59f111f1b605d019,
    0x923f82a4af194f9b,
    0xab1c5ed5da6d8118,
    0xd807aa98a3030242,
    0x12835b0145706fbe,
    0x243185be4ee4b28c,
    0x550c7dc3d5ffb4e2,
    0x72be5d74f27b896f,
    0x80deb1fe3b1696b1,
    0x9bdc06a725c71235,
    0xc19bf174cf692694,
    0xe49b69c19ef14ad2,
    0xefbe4786384f25e3,
    0x0fc19dc68b8cd5b5,
    0x240ca1cc77ac9c65,
    0x2de92c6f592b0275,
    0x4a7484aa6ea6e483,
    0x5cb0a9dcbd41fbd4,
    0x76f988da831153b5,
    0x983e5152ee66dfab,
    0xa831c66d2db43210,
    0xb00327c898fb213f,
    0xbf597fc7beef0ee4,
    0xc6e00bf33da88fc2,
    0xd5a79147930aa725,
    0x06ca6351e003826f,
    0x142929670a0e6e70,
    0x27b70a8546d22ffc,
    0x2e1b21385c26c926,
    0x4d2c6dfc5ac42aed,
    0x53380d139d95b3df,
    0x650a73548baf63de,
    0x766a0abb3c77b2a8,
    0x81c2c92e47edaee6,
    0x92722c851482353b,
    0xa2bfe8a14cf10364,
    0xa81a664bbc423001,
    0xc24b8b70d0f89791,
    0xc76c51a30654be30,
    0xd192e819d6ef5218,
    0xd69906245565a910,
    0xf40e35855771202a,
    0x106aa07032bbd1b8,
    0x19a4c116b8d2d0c8,
    0x1e376c085141ab53,
    0x2748774cdf8eeb99,
    0x34b0bcb5e19b48a8,
    0x391c0cb3c5c95a63,
    0x4ed8aa4ae3418acb,
    0x5b9cca4f7763e373,
    0x682e6ff3d6b2b8a3,
    0x748f82ee5defb2fc,
    0x78a5636f43172f60,
    0x84c87814a1f0ab72,
    0x8cc702081a6439ec,
    0x90befffa23631e28,
    0xa4506cebde82bde9,
    0xbef9a3f7b2c67915,
    0xc67178f2e372532b,
    0xca273eceea26619c,
    0xd186b8c721c0c207,
    0xeada7dd6cde0eb1e,
    0xf57d4f7fee6ed178,
    0x06f067aa72176fba,
    0x0a637dc5a2c898a6,
    0x113f9804bef90dae,
    0x1b710b35131c471b,
    0x28db77f523047d84,
    0x32caab7b40c72493,
    0x3c9ebe0a15c9bebc,
    0x431d67c49c100d4c,
    0x4cc5d4becb3e42b6,
    0x597f299cfc657e2a,
    0x5fcb6fab3ad6faec,
    0x6c44198c4a475817,
];

/// Compress contiguous 128-byte blocks (`data.len()` a multiple of 128) into `state`, with
/// `sha2`'s runtime-selected backend.
#[inline]
pub(crate) fn compress_bytes(state: &mut State, data: &[u8]) {
    debug_assert_eq!(data.len() % BLOCK_LEN, 0);
    for block in data.chunks_exact(BLOCK_LEN) {
        sha2::compress512(
            state,
            core::slice::from_ref(GenericArray::from_slice(block)),
        );
    }
}

/// The portable SHA-512 compression function on a block given as 16 big-endian words,
/// written from FIPS 180-4 §6.4.2.
pub(crate) fn compress_words(state: &mut State, block: &[u64; 16]) {
    let mut w = [0u64; 80];
    w[..16].copy_from_slice(block);
    for t in 16..80 {
        let s0 = w[t - 15].rotate_right(1) ^ w[t - 15].rotate_right(8) ^ (w[t - 15] >> 7);
        let s1 = w[t - 2].rotate_right(19) ^ w[t - 2].rotate_right(61) ^ (w[t - 2] >> 6);
        w[t] = w[t - 16]
            .wrapping_add(s0)
            .wrapping_add(w[t - 7])
            .wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for t in 0..80 {
        let s1 = e.rotate_right(14) ^ e.rotate_right(18) ^ e.rotate_right(41);
        let ch = (e & f) ^ (!e & g);
        let t1 = h
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add(K[t])
            .wrapping_add(w[t]);
        let s0 = a.rotate_right(28) ^ a.rotate_right(34) ^ a.rotate_right(39);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
}

/// The block of a 128-byte key pad: `key` (at most 128 bytes) zero-filled, XOR `pad`.
pub(crate) fn pad_block(key: &[u8], pad: u8) -> [u8; BLOCK_LEN] {
    let mut b = [pad; BLOCK_LEN];
    for (o, k) in b.iter_mut().zip(key) {
        *o ^= k;
    }
    b
}

/// The padded tail of a message whose first `prefix` bytes (a multiple of 128) were already
/// compressed and whose unprocessed remainder `rest` is shorter than a block. Returns the 1 or
/// 2 final blocks and how many there are (FIPS 180-4 §5.1.2: `0x80`, zeros, 128-bit length).
#[inline]
pub(crate) fn tail_blocks(total_len: usize, rest: &[u8]) -> ([u8; 2 * BLOCK_LEN], usize) {
    debug_assert!(rest.len() < BLOCK_LEN);
    let mut t = [0u8; 2 * BLOCK_LEN];
    t[..rest.len()].copy_from_slice(rest);
    t[rest.len()] = 0x80;
    let n = if rest.len() < BLOCK_LEN - 16 { 1 } else { 2 };
    let bits = (total_len as u128) * 8;
    t[n * BLOCK_LEN - 16..n * BLOCK_LEN].copy_from_slice(&bits.to_be_bytes());
    (t, n)
}

/// The outer HMAC block over a 48-byte SHA-384 inner digest given as its first 6 state words,
/// after the 128-byte opad block: digest, `0x80`, zeros, length `(128 + 48) * 8` bits.
#[inline]
pub(crate) fn outer_block_words(inner: &State) -> [u64; 16] {
    let mut w = [0u64; 16];
    w[..6].copy_from_slice(&inner[..6]);
    w[6] = 1 << 63;
    w[15] = ((BLOCK_LEN + 48) * 8) as u64;
    w
}

/// [`outer_block_words`] as bytes.
#[inline]
pub(crate) fn outer_block(inner: &State) -> [u8; BLOCK_LEN] {
    let mut b = [0u8; BLOCK_LEN];
    for (c, v) in b.chunks_exact_mut(8).zip(outer_block_words(inner)) {
        c.copy_from_slice(&v.to_be_bytes());
    }
    b
}

/// Big-endian word view of a 128-byte block.
#[inline]
pub(crate) fn block_words(block: &[u8]) -> [u64; 16] {
    let mut w = [0u64; 16];
    for (o, c) in w.iter_mut().zip(block.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        *o = u64::from_be_bytes(b);
    }
    w
}

/// The first 48 bytes (SHA-384 output) of a state.
#[inline]
pub(crate) fn digest384(state: &State) -> [u8; 48] {
    let mut out = [0u8; 48];
    for (o, w) in out.chunks_exact_mut(8).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// Single-buffer HMAC-SHA384 from keyed midstates (`sha2`'s compressor): the full 48 bytes.
pub(crate) fn hmac_single(inner: &State, outer: &State, msg: &[u8]) -> [u8; 48] {
    let mut st = *inner;
    let full = msg.len() - msg.len() % BLOCK_LEN;
    compress_bytes(&mut st, &msg[..full]);
    let (tail, n) = tail_blocks(BLOCK_LEN + msg.len(), &msg[full..]);
    compress_bytes(&mut st, &tail[..n * BLOCK_LEN]);
    let mut o = *outer;
    compress_bytes(&mut o, &outer_block(&st));
    digest384(&o)
}

/// Number of lanes of the multi-buffer SHA-512 manager.
pub(crate) const LANES: usize = 8;
/// Chaining states of the lanes, word-major: `st[word][lane]`.
pub(crate) type LaneState = [[u64; LANES]; 8];
/// One 128-byte message block per lane.
pub(crate) type LaneBlocks<'a> = [&'a [u8; BLOCK_LEN]; LANES];

/// The block idle lanes hash (their result is never read).
static IDLE: [u8; BLOCK_LEN] = [0; BLOCK_LEN];

/// The compressor behind [`HmacLanes`]: one call compresses one block in every lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ShaKernel {
    /// [`compress_words`] lane by lane.
    Portable,
    /// `crate::x86`: two interleaved 4-lane AVX2 halves.
    #[cfg(target_arch = "x86_64")]
    Avx2(crate::x86::Avx2),
    /// `crate::x86`: 8 lanes in AVX-512 registers.
    #[cfg(target_arch = "x86_64")]
    Avx512(crate::x86::Avx512),
}

impl ShaKernel {
    /// Compress `blocks[l]` into lane `l` of `st` for every lane whose bit is set in `active`
    /// (SIMD kernels compute all lanes; idle lanes hold junk that nobody reads).
    #[inline]
    pub(crate) fn compress(self, st: &mut LaneState, blocks: &LaneBlocks<'_>, active: u8) {
        match self {
            ShaKernel::Portable => {
                for lane in 0..LANES {
                    if active & (1 << lane) == 0 {
                        continue;
                    }
                    let mut s = [0u64; 8];
                    for (i, v) in s.iter_mut().enumerate() {
                        *v = st[i][lane];
                    }
                    compress_words(&mut s, &block_words(blocks[lane]));
                    for (i, v) in s.iter().enumerate() {
                        st[i][lane] = *v;
                    }
                }
            }
            #[cfg(target_arch = "x86_64")]
            ShaKernel::Avx2(t) => t.sha512_x8(st, blocks),
            #[cfg(target_arch = "x86_64")]
            ShaKernel::Avx512(t) => t.sha512_x8(st, blocks),
        }
    }
}

/// One HMAC to compute: keyed midstates and the message after the ipad block.
#[derive(Clone, Copy)]
pub(crate) struct MacInput<'a> {
    pub inner: &'a State,
    pub outer: &'a State,
    pub msg: &'a [u8],
}

#[derive(Clone, Copy)]
struct Lane<'a> {
    job: usize,
    msg: &'a [u8],
    outer: &'a State,
    /// Next block of `msg` (full blocks first, then the 1-2 tail blocks).
    next: usize,
    full: usize,
    /// Full blocks + tail blocks of the inner hash.
    inner_blocks: usize,
    /// The inner hash is done and the lane runs its one outer block (`tail[..128]`).
    in_outer: bool,
    tail: [u8; 2 * BLOCK_LEN],
}

impl<'a> Lane<'a> {
    /// The block this lane compresses next.
    #[inline]
    fn block(&self) -> &[u8; BLOCK_LEN] {
        let (bytes, at) = if self.in_outer {
            (&self.tail[..], 0)
        } else if self.next < self.full {
            (self.msg, self.next * BLOCK_LEN)
        } else {
            (&self.tail[..], (self.next - self.full) * BLOCK_LEN)
        };
        bytes[at..at + BLOCK_LEN].try_into().unwrap_or(&IDLE) // never: `at + 128` is within the full blocks or the tail
    }
}

/// HMAC-SHA384 of many messages with the lanes of `kernel`: as a lane finishes its message
/// (inner blocks, then the outer block) it takes the next job, so messages of different
/// lengths keep every lane busy until the queue runs dry. Job `i`'s full 48-byte tag goes to
/// `out[i]`; `None` jobs are skipped. `out.len()` must be at least `jobs.len()`.
pub(crate) fn hmac_lanes(kernel: ShaKernel, jobs: &[Option<MacInput<'_>>], out: &mut [[u8; 48]]) {
    assert!(out.len() >= jobs.len(), "one output per job");
    let mut st: LaneState = [[0; LANES]; 8];
    let mut lanes: [Option<Lane<'_>>; LANES] = [None; LANES];
    let mut queue = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| j.map(|j| (i, j)));
    loop {
        let mut active = 0u8;
        for (l, slot) in lanes.iter_mut().enumerate() {
            if slot.is_none() {
                if let Some((job, m)) = queue.next() {
                    let full = m.msg.len() / BLOCK_LEN;
                    let (tail, n) =
                        tail_blocks(BLOCK_LEN + m.msg.len(), &m.msg[full * BLOCK_LEN..]);
                    for (i, v) in m.inner.iter().enumerate() {
                        st[i][l] = *v;
                    }
                    *slot = Some(Lane {
                        job,
                        msg: m.msg,
                        outer: m.outer,
                        next: 0,
                        full,
                        inner_blocks: full + n,
                        in_outer: false,
                        tail,
                    });
                }
            }
            if slot.is_some() {
                active |= 1 << l;
            }
        }
        if active == 0 {
            return;
        }
        let blocks: LaneBlocks<'_> =
            core::array::from_fn(|l| lanes[l].as_ref().map_or(&IDLE, |lane| lane.block()));
        kernel.compress(&mut st, &blocks, active);
        for (l, slot) in lanes.iter_mut().enumerate() {
            let Some(lane) = slot else { continue };
            if !lane.in_outer && lane.next + 1 < lane.inner_blocks {
                lane.next += 1; // mid-message: the state stays in its lane
                continue;
            }
            let mut s = [0u64; 8];
            for (i, v) in s.iter_mut().enumerate() {
                *v = st[i][l];
            }
            if lane.in_outer {
                out[lane.job] = digest384(&s);
                *slot = None;
                continue;
            }
            lane.next += 1;
            if lane.next == lane.inner_blocks {
                lane.tail[..BLOCK_LEN].copy_from_slice(&outer_block(&s));
                for (i, v) in lane.outer.iter().enumerate() {
                    st[i][l] = *v;
                }
                lane.in_outer = true;
            }
        }
    }
}

/// Compress one block into each of several independent states (key installation: the ipad
/// and opad blocks of one or more keys) with the lanes of `kernel`. At most [`LANES`] pairs.
pub(crate) fn compress_independent(kernel: ShaKernel, jobs: &mut [(State, [u8; BLOCK_LEN])]) {
    assert!(jobs.len() <= LANES);
    if jobs.len() == 1 || kernel == ShaKernel::Portable {
        for (s, b) in jobs.iter_mut() {
            compress_bytes(s, b);
        }
        return;
    }
    let mut st: LaneState = [[0; LANES]; 8];
    let mut active = 0u8;
    for (l, (s, _)) in jobs.iter().enumerate() {
        active |= 1 << l;
        for (i, v) in s.iter().enumerate() {
            st[i][l] = *v;
        }
    }
    let blocks: LaneBlocks<'_> = core::array::from_fn(|l| jobs.get(l).map_or(&IDLE, |j| &j.1));
    kernel.compress(&mut st, &blocks, active);
    for (l, (s, _)) in jobs.iter_mut().enumerate() {
        for (i, v) in s.iter_mut().enumerate() {
            *v = st[i][l];
        }
    }
}
