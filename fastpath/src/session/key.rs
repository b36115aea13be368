//! [`FlowKey`]: an IPv4 or IPv6 5-tuple in five `u64` words, and [`FlowHasher`], the seeded
//! per-packet hash over those words.

use core::fmt;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Number of `u64` words in a [`FlowKey`].
pub(crate) const KEY_WORDS: usize = 5;

const FAMILY_V4: u64 = 4;
const FAMILY_V6: u64 = 6;

/// A 5-tuple as seen on the wire: source and destination address, IP protocol, source and
/// destination port (for ICMP the caller decides what goes in the ports, e.g. the echo
/// identifier in both).
///
/// Stored as five words (37 meaningful bytes, 40 in memory):
///
/// ```text
/// w[0], w[1]  source address, big-endian u128 (IPv4: w[0] = 0, w[1] = the u32)
/// w[2], w[3]  destination address, the same way
/// w[4]        src_port << 48 | dst_port << 32 | proto << 8 | family (4 or 6)
/// ```
///
/// The family byte keeps an IPv4 key distinct from the IPv6 key `::a.b.c.d` and makes every
/// valid key non-zero. Equality is word equality.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    w: [u64; KEY_WORDS],
}

impl FlowKey {
    /// An IPv4 5-tuple.
    pub const fn v4(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        src_port: u16,
        dst_port: u16,
    ) -> FlowKey {
        FlowKey {
            w: [
                0,
                u32::from_be_bytes(src.octets()) as u64,
                0,
                u32::from_be_bytes(dst.octets()) as u64,
                Self::tail(proto, src_port, dst_port, FAMILY_V4),
            ],
        }
    }

    /// An IPv6 5-tuple.
    pub const fn v6(
        src: Ipv6Addr,
        dst: Ipv6Addr,
        proto: u8,
        src_port: u16,
        dst_port: u16,
    ) -> FlowKey {
        let s = u128::from_be_bytes(src.octets());
        let d = u128::from_be_bytes(dst.octets());
        FlowKey {
            w: [
                (s >> 64) as u64,
                s as u64,
                (d >> 64) as u64,
                d as u64,
                Self::tail(proto, src_port, dst_port, FAMILY_V6),
            ],
        }
    }

    /// A 5-tuple from two addresses of the same family; `None` when the families differ.
    pub fn new(
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        src_port: u16,
        dst_port: u16,
    ) -> Option<FlowKey> {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Some(Self::v4(s, d, proto, src_port, dst_port)),
            (IpAddr::V6(s), IpAddr::V6(d)) => Some(Self::v6(s, d, proto, src_port, dst_port)),
            _ => None,
        }
    }

    const fn tail(proto: u8, src_port: u16, dst_port: u16, family: u64) -> u64 {
        (src_port as u64) << 48 | (dst_port as u64) << 32 | (proto as u64) << 8 | family
    }

    /// The 5-tuple of a packet going the other way: addresses and ports swapped.
    pub const fn reversed(&self) -> FlowKey {
        let t = self.w[4];
        let tail = (t >> 32 & 0xffff) << 48 | (t >> 48) << 32 | (t & 0xffff_ffff);
        FlowKey {
            w: [self.w[2], self.w[3], self.w[0], self.w[1], tail],
        }
    }

    /// True for an IPv6 key.
    pub const fn is_ipv6(&self) -> bool {
        self.w[4] & 0xff == FAMILY_V6
    }

    fn addr(&self, hi: u64, lo: u64) -> IpAddr {
        if self.is_ipv6() {
            IpAddr::V6(Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo)))
        } else {
            // Only the low 32 bits are ever set for an IPv4 key (see `v4`).
            IpAddr::V4(Ipv4Addr::from(lo as u32))
        }
    }

    /// Source address.
    pub fn src(&self) -> IpAddr {
        self.addr(self.w[0], self.w[1])
    }

    /// Destination address.
    pub fn dst(&self) -> IpAddr {
        self.addr(self.w[2], self.w[3])
    }

    /// IP protocol number.
    pub const fn proto(&self) -> u8 {
        (self.w[4] >> 8) as u8
    }

    /// Source port.
    pub const fn src_port(&self) -> u16 {
        (self.w[4] >> 48) as u16
    }

    /// Destination port.
    pub const fn dst_port(&self) -> u16 {
        (self.w[4] >> 32) as u16
    }

    /// The five words (what the table stores and compares).
    pub(crate) const fn words(&self) -> [u64; KEY_WORDS] {
        self.w
    }

    /// The key whose [`FlowKey::words`] are `w`. Only the table calls this, on words it stored
    /// from a `FlowKey`, so `w` is always a valid key.
    pub(crate) const fn from_words(w: [u64; KEY_WORDS]) -> FlowKey {
        FlowKey { w }
    }
}

impl fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, d) = (self.src(), self.dst());
        let (sp, dp) = (self.src_port(), self.dst_port());
        if self.is_ipv6() {
            write!(f, "proto {} [{s}]:{sp} -> [{d}]:{dp}", self.proto())
        } else {
            write!(f, "proto {} {s}:{sp} -> {d}:{dp}", self.proto())
        }
    }
}

/// The per-packet flow hash: a seeded folded-multiply hash (the construction of
/// foldhash/wyhash) over the five key words, four 64×64→128 multiplies per key.
///
/// SipHash would cost more than the whole rest of a lookup. The seeds are random per table
/// ([`FlowHasher::random`]), so a sender who cannot read our memory cannot compute which
/// 5-tuples land in one bucket. This is not a keyed MAC: it stops cheap aiming, not an attacker
/// who can observe timing for a long time, which the bounded probe length and capacity limit
/// handle instead.
#[derive(Clone, Copy, Debug)]
pub struct FlowHasher {
    seeds: [u64; 6],
    /// `!0` except in tests that force every key onto one bucket and one tag.
    mask: u64,
}

/// The 128-bit product of `a` and `b`, folded to 64 bits by xoring its halves.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// SplitMix64, to expand one seed into several.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl FlowHasher {
    /// Seeds from the standard library's per-process random keys (`RandomState`, which the OS
    /// random source seeds). Reads no clock.
    pub fn random() -> FlowHasher {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0x5356_525f_666c_6f77); // "SVR_flow"
        Self::with_seed(h.finish())
    }

    /// Deterministic seeds, for tests and benchmarks that want repeatable bucket placement.
    pub fn with_seed(seed: u64) -> FlowHasher {
        let mut s = seed;
        let mut seeds = [0u64; 6];
        for x in &mut seeds {
            // A zero seed word would turn `fold` into a constant; SplitMix64 output is zero
            // for one input in 2^64, and `| 1` rules even that out.
            *x = splitmix(&mut s) | 1;
        }
        FlowHasher { seeds, mask: !0 }
    }

    /// A hasher that maps every key to the same hash (tests of collision handling).
    #[cfg(test)]
    pub(crate) fn degenerate() -> FlowHasher {
        FlowHasher {
            seeds: [1; 6],
            mask: 0,
        }
    }

    /// The 64-bit hash of `key`. The table uses the high 32 bits to pick a bucket and the low
    /// 32 bits as the tag stored in the slot.
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        let w = &key.w;
        let s = &self.seeds;
        let a = fold(w[0] ^ s[0], w[1] ^ s[1]);
        let b = fold(w[2] ^ s[2], w[3] ^ s[3]);
        let c = fold(w[4] ^ s[4], a.rotate_left(29) ^ b ^ s[5]);
        fold(c ^ s[2], s[1]) & self.mask
    }
}
