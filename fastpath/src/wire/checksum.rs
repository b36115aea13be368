//! The Internet checksum (RFC 1071), pseudo-header sums and incremental update (RFC 1624).
//!
//! Sums here are *folded, not complemented* 16-bit one's-complement sums. A header's checksum
//! field holds `!combine(&[...])`; a received header is valid when the sum over it, checksum
//! field included, is `0xffff`.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::IpProtocol;

/// Folds a 32-or-more-bit accumulator into 16 bits with end-around carry.
#[inline]
fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// One's-complement sum of `data` taken as big-endian 16-bit words; an odd trailing byte is
/// padded with a zero byte (RFC 1071 §4.1).
pub fn data(data: &[u8]) -> u16 {
    // The sum is byte-order independent (RFC 1071 §2 B) and 2^16 = 1 modulo 2^16 - 1, so
    // native-endian 64-bit words can be added as integers (two u128 accumulators: an add and
    // an add-with-carry per word, two chains) and folded once, then swapped to big-endian.
    let (mut a, mut b) = (0u128, 0u128);
    let mut blocks = data.chunks_exact(16);
    for c in &mut blocks {
        let (lo, hi) = c.split_at(8);
        a += u128::from(u64::from_ne_bytes(lo.try_into().unwrap_or_default()));
        b += u128::from(u64::from_ne_bytes(hi.try_into().unwrap_or_default()));
    }
    let mut tail = blocks.remainder().chunks_exact(4);
    for w in &mut tail {
        a += u128::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    let t = a + b;
    // Fold 128 → 64 → 32 bits with end-around carry (each step keeps the value mod 2^16 - 1).
    let (t64, c) = (t as u64).overflowing_add((t >> 64) as u64);
    let t64 = t64 + u64::from(c);
    let mut sum = u64::from(u16::from_be(fold((t64 & 0xffff_ffff) + (t64 >> 32))));
    let mut words = tail.remainder().chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    fold(sum)
}

/// One's-complement sum of several partial sums.
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// Sum of the IPv4 pseudo-header (RFC 768, RFC 793): addresses, protocol, upper-layer length.
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, proto: IpProtocol, length: u16) -> u16 {
    let s = src.octets();
    let d = dst.octets();
    let words = [
        u16::from_be_bytes([s[0], s[1]]),
        u16::from_be_bytes([s[2], s[3]]),
        u16::from_be_bytes([d[0], d[1]]),
        u16::from_be_bytes([d[2], d[3]]),
        u16::from(u8::from(proto)),
        length,
    ];
    combine(&words)
}

/// Sum of the IPv6 pseudo-header (RFC 8200 §8.1): addresses, upper-layer length (32 bits),
/// next header.
pub fn pseudo_header_v6(
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    next_header: IpProtocol,
    length: u32,
) -> u16 {
    let mut sum = u64::from(data(&src.octets())) + u64::from(data(&dst.octets()));
    sum += u64::from(length >> 16) + u64::from(length & 0xffff);
    sum += u64::from(u8::from(next_header));
    fold(sum)
}

/// Incremental checksum update (RFC 1624 eqn. 3): `HC' = ~(~HC + ~m + m')`, for a header whose
/// checksum field is `old_csum` after one 16-bit word changed from `old_word` to `new_word`.
///
/// The result equals a full recomputation for any header that has a non-zero word outside the
/// checksum field (true of every IPv4 header: the version nibble is 4).
#[inline]
pub fn update_u16(old_csum: u16, old_word: u16, new_word: u16) -> u16 {
    let sum = u64::from(!old_csum) + u64::from(!old_word) + u64::from(new_word);
    !fold(sum)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to ddf2.
        assert_eq!(
            data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(data(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(data(&[]), 0);
    }

    #[test]
    fn long_buffers_match_naive_sum() {
        let naive = |buf: &[u8]| {
            let mut sum: u64 = 0;
            for w in buf.chunks(2) {
                sum += u64::from(w[0]) << 8 | w.get(1).copied().map_or(0, u64::from);
            }
            while sum >> 16 != 0 {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            sum as u16
        };
        // Every length from 0 to 1,501 (all block/remainder splits), patterned and all-ones
        // bytes (carries on every add).
        let pattern: Vec<u8> = (0..1501u32).map(|i| (i * 7 + 3) as u8).collect();
        let ones = vec![0xffu8; 1501];
        for n in 0..=1501 {
            assert_eq!(
                data(&pattern[..n]),
                naive(&pattern[..n]),
                "pattern, {n} bytes"
            );
            assert_eq!(data(&ones[..n]), naive(&ones[..n]), "ones, {n} bytes");
        }
    }

    #[test]
    fn incremental_matches_rfc1624_example() {
        // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000.
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn pseudo_header_v6_counts_long_lengths() {
        let a = Ipv6Addr::UNSPECIFIED;
        assert_eq!(
            pseudo_header_v6(&a, &a, IpProtocol::Udp, 0x0001_0002),
            1 + 2 + 17
        );
    }
}
