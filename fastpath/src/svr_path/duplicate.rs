//! `packet-duplication` (docs/multipath.md §6.1 "Duplicates"): the second copy of a LAN →
//! peer packet.
//!
//! The copy is made **after** the packet is sealed: the worker copies the finished frame and
//! [`rewrite_copy`] changes only what differs on the second waypoint pair, the outer
//! addresses and wayports, with their checksums updated incrementally (RFC 1624). Payload,
//! metadata, trailer (so the sequence number) and HMAC stay byte for byte: the HMAC covers
//! neither the outer IP header nor the ports (`docs/protocol.md`), so the copy authenticates
//! at the egress as the original does, and the session's shared replay window there takes
//! whichever arrives first and drops the other (`svr_duplicate_dropped`). A copy of a packet
//! with forward metadata carries that metadata too, which is how the egress learns the second
//! binding. The second pair is always of the first's outer family (the ingress chooses it so),
//! so the rewrite never changes the header length.

use std::net::IpAddr;

use super::packet::{PROTO_TCP, PROTO_UDP};
use super::{SvrDrop, SvrEvent, SvrWorker};
use crate::session::FlowKey;
use crate::wire::checksum;
use crate::wire::ethernet::HEADER_LEN as ETH_LEN;

/// What differs between a packet and its copy on the session's second waypoint pair: the
/// outer 5-tuple the copy leaves with (our waypoint and even wayport → the peer's waypoint and
/// odd wayport). Small and `Copy`: it rides in [`super::Verdict::ForwardTwice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateRewrite {
    /// Our waypoint on the second pair.
    pub src: IpAddr,
    /// The peer's waypoint on the second pair.
    pub dst: IpAddr,
    /// Our (even) wayport on the second pair.
    pub src_port: u16,
    /// The peer's (odd) wayport on the second pair.
    pub dst_port: u16,
}

impl DuplicateRewrite {
    /// The rewrite for a session whose second WAN key (packets from the peer, as received) is
    /// `dup_key`: the copy leaves with that key reversed.
    pub fn from_dup_key(dup_key: &FlowKey) -> DuplicateRewrite {
        let k = dup_key.reversed();
        DuplicateRewrite {
            src: k.src(),
            dst: k.dst(),
            src_port: k.src_port(),
            dst_port: k.dst_port(),
        }
    }
}

/// Where the words to rewrite are in a frame.
struct Layout {
    /// Offset of the source address (the destination follows it).
    addr: usize,
    /// Address length (4 or 16).
    addr_len: usize,
    /// Offset of the L4 header.
    l4: usize,
    /// IP length from the header.
    l3_len: usize,
    /// L4 protocol (TCP or UDP).
    proto: u8,
}

fn layout(frame: &[u8], v4: bool) -> Result<Layout, SvrDrop> {
    let be16 = |at: usize| -> Result<u16, SvrDrop> {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(SvrDrop::Malformed)
    };
    let l = match (be16(12)?, v4) {
        (0x0800, true) => {
            let ihl = usize::from(frame[ETH_LEN] & 0x0f) * 4;
            Layout {
                addr: ETH_LEN + 12,
                addr_len: 4,
                l4: ETH_LEN + ihl,
                l3_len: usize::from(be16(ETH_LEN + 2)?),
                proto: frame[ETH_LEN + 9],
            }
        }
        (0x86dd, false) => Layout {
            addr: ETH_LEN + 8,
            addr_len: 16,
            l4: ETH_LEN + 40,
            l3_len: 40 + usize::from(be16(ETH_LEN + 4)?),
            proto: *frame.get(ETH_LEN + 6).ok_or(SvrDrop::Malformed)?,
        },
        // Another family than the rewrite's: never made by the ingress.
        _ => return Err(SvrDrop::Malformed),
    };
    let l4_min = match l.proto {
        PROTO_UDP => 8,
        PROTO_TCP => 20,
        _ => return Err(SvrDrop::Unsupported),
    };
    if l.l4 < ETH_LEN + 20 || l.l4 + l4_min > ETH_LEN + l.l3_len || ETH_LEN + l.l3_len > frame.len()
    {
        return Err(SvrDrop::Malformed);
    }
    Ok(l)
}

/// `sum` after the 16-bit words of `old` became those of `new` (equal, even lengths).
fn update(sum: u16, old: &[u8], new: &[u8]) -> u16 {
    old.chunks_exact(2)
        .zip(new.chunks_exact(2))
        .fold(sum, |s, (o, n)| {
            checksum::update_u16(
                s,
                u16::from_be_bytes([o[0], o[1]]),
                u16::from_be_bytes([n[0], n[1]]),
            )
        })
}

fn octets(a: IpAddr, out: &mut [u8; 32]) -> usize {
    match a {
        IpAddr::V4(v) => {
            out[..4].copy_from_slice(&v.octets());
            4
        }
        IpAddr::V6(v) => {
            out[..16].copy_from_slice(&v.octets());
            16
        }
    }
}

/// Turns `frame`, a finished LAN → peer SVR frame (Ethernet, IPv4 or IPv6 without options,
/// UDP or TCP), into its copy for the second waypoint pair: outer source and destination
/// addresses and ports from `rw`, the IPv4 header checksum and the TCP/UDP checksum updated
/// incrementally (RFC 1624; a UDP checksum of 0, "none", stays 0). Nothing else changes.
/// Returns the IP length (for the route lookup). `Malformed` / `Unsupported` for a frame
/// the ingress never makes (other family than `rw`, other protocol, truncated).
pub fn rewrite_copy(frame: &mut [u8], rw: &DuplicateRewrite) -> Result<usize, SvrDrop> {
    let v4 = rw.src.is_ipv4();
    if rw.dst.is_ipv4() != v4 {
        return Err(SvrDrop::Malformed);
    }
    let l = layout(frame, v4)?;
    let mut new = [0u8; 32];
    let n = octets(rw.src, &mut new);
    let mut dst = [0u8; 32];
    octets(rw.dst, &mut dst);
    new[n..2 * n].copy_from_slice(&dst[..n]);
    let addrs = l.addr..l.addr + 2 * l.addr_len;
    let mut old = [0u8; 32];
    old[..2 * n].copy_from_slice(&frame[addrs.clone()]);
    let mut ports_new = [0u8; 4];
    ports_new[..2].copy_from_slice(&rw.src_port.to_be_bytes());
    ports_new[2..].copy_from_slice(&rw.dst_port.to_be_bytes());
    let mut ports_old = [0u8; 4];
    ports_old.copy_from_slice(&frame[l.l4..l.l4 + 4]);

    if v4 {
        let at = ETH_LEN + 10;
        let sum = u16::from_be_bytes([frame[at], frame[at + 1]]);
        let sum = update(sum, &old[..2 * n], &new[..2 * n]);
        frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    }
    let at = l.l4 + if l.proto == PROTO_TCP { 16 } else { 6 };
    let sum = u16::from_be_bytes([frame[at], frame[at + 1]]);
    // UDP over IPv4 may go without a checksum (0); never on IPv6, and never what we send.
    if !(l.proto == PROTO_UDP && sum == 0) {
        let sum = update(sum, &old[..2 * n], &new[..2 * n]);
        let sum = update(sum, &ports_old, &ports_new);
        let sum = if l.proto == PROTO_UDP && sum == 0 {
            0xffff
        } else {
            sum
        };
        frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    }
    frame[addrs].copy_from_slice(&new[..2 * n]);
    frame[l.l4..l.l4 + 4].copy_from_slice(&ports_new);
    Ok(l.l3_len)
}

/// The worker's duplicate stage for one copy: `frame` is a byte copy of the finished frame
/// that left with [`super::Verdict::ForwardTwice`]; rewrites it for the second pair and
/// counts it (`svr_duplicate_sent`), or counts the copy's failure
/// (`svr_duplicate_copy_failed`; the original is sent either way). Returns where to route
/// the copy: its destination and IP length.
pub fn finish_copy(
    w: &mut SvrWorker,
    frame: &mut [u8],
    rw: &DuplicateRewrite,
) -> Option<(IpAddr, usize)> {
    match rewrite_copy(frame, rw) {
        Ok(l3_len) => {
            w.counters.events.bump(SvrEvent::DuplicateSent);
            Some((rw.dst, l3_len))
        }
        Err(_) => {
            copy_failed(w);
            None
        }
    }
}

/// The worker could not copy the frame (no mbuf): the copy is lost, the original is sent.
pub fn copy_failed(w: &mut SvrWorker) {
    w.counters.drops.bump(SvrDrop::DuplicateCopyFailed);
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::svr_path::packet::{fill_l4_checksum, set_ports, write_ip, IpFields};
    use crate::wire::{udp, TcpPacket, UdpPacket};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// An SVR-like frame: IP header, L4 header with ports `sp → dp`, then `body`.
    fn sealed(src: &str, dst: &str, proto: u8, sp: u16, dp: u16, body: &[u8]) -> Vec<u8> {
        let (src, dst) = (ip(src), ip(dst));
        let ipl = if src.is_ipv4() { 20 } else { 40 };
        let l4l = if proto == PROTO_TCP { 20 } else { 8 };
        let l3 = ipl + l4l + body.len();
        let mut f = vec![0u8; ETH_LEN + l3];
        f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
        let fields = IpFields {
            ttl: 63,
            tos: 0x10,
            flow: 0x12345,
            df: true,
            ident: 0xbeef,
        };
        write_ip(&mut f, src, dst, proto, l3, fields);
        let l4 = ETH_LEN + ipl;
        if proto == PROTO_TCP {
            f[l4 + 4..l4 + 8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
            f[l4 + 12] = 5 << 4;
            f[l4 + 13] = 0x18;
            f[l4 + 14..l4 + 16].copy_from_slice(&1000u16.to_be_bytes());
        }
        set_ports(&mut f, l4, sp, dp);
        f[l4 + l4l..].copy_from_slice(body);
        fill_l4_checksum(&mut f, proto, l4, ETH_LEN + l3, src, dst);
        f
    }

    fn rw(src: &str, dst: &str, sp: u16, dp: u16) -> DuplicateRewrite {
        DuplicateRewrite {
            src: ip(src),
            dst: ip(dst),
            src_port: sp,
            dst_port: dp,
        }
    }

    /// The copy equals a frame built from scratch for the second pair (same payload), so
    /// every checksum is what a full recomputation gives; and it verifies as such.
    fn check(src: &str, dst: &str, proto: u8, to: DuplicateRewrite) {
        for n in [0usize, 1, 17, 63, 200, 1401] {
            let body: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
            let orig = sealed(src, dst, proto, 16384, 16385, &body);
            let mut copy = orig.clone();
            let l3 = rewrite_copy(&mut copy, &to).unwrap();
            assert_eq!(ETH_LEN + l3, orig.len());
            let want = sealed(
                &to.src.to_string(),
                &to.dst.to_string(),
                proto,
                to.src_port,
                to.dst_port,
                &body,
            );
            assert_eq!(hex::encode(&copy), hex::encode(&want), "{src} {proto} {n}");
            let ipl = if to.src.is_ipv4() { 20 } else { 40 };
            let seg = &copy[ETH_LEN + ipl..];
            let ok = match proto {
                PROTO_TCP => TcpPacket::new_unchecked(seg).verify_checksum(&to.src, &to.dst),
                _ => udp::UdpRepr::parse(&to.src, &to.dst, &UdpPacket::new_unchecked(seg)).is_ok(),
            };
            assert!(ok, "L4 checksum of the copy ({src}, {proto}, {n})");
            if to.src.is_ipv4() {
                assert_eq!(checksum::data(&copy[ETH_LEN..ETH_LEN + 20]), 0xffff);
            }
        }
    }

    #[test]
    fn copy_is_a_fresh_frame_for_the_second_pair() {
        let v4 = rw("10.9.1.1", "10.9.1.3", 16500, 20001);
        check("10.9.0.1", "10.9.0.2", PROTO_UDP, v4);
        check("10.9.0.1", "10.9.0.2", PROTO_TCP, v4);
        let v6 = rw("fd00:9:1::1", "fd00:9:1::3", 30000, 30001);
        check("fd00:9::1", "fd00:9::2", PROTO_UDP, v6);
        check("fd00:9::1", "fd00:9::2", PROTO_TCP, v6);
        // Only the addresses changing, or only the ports.
        check(
            "10.9.0.1",
            "10.9.0.2",
            PROTO_UDP,
            rw("10.9.0.1", "10.9.0.3", 16384, 16385),
        );
        check(
            "10.9.0.1",
            "10.9.0.2",
            PROTO_TCP,
            rw("10.9.0.1", "10.9.0.2", 16386, 16387),
        );
    }

    /// Golden bytes: a 4-byte UDP payload from 10.9.0.1:16384 → 10.9.0.2:16385, copied to
    /// 10.9.1.1:16500 → 10.9.1.3:20001. The expected checksums were computed independently
    /// (RFC 1071 sums in Python over the rewritten header and pseudo-header).
    #[test]
    fn golden_udp_v4_copy() {
        let orig = sealed("10.9.0.1", "10.9.0.2", PROTO_UDP, 16384, 16385, b"svr!");
        let mut copy = orig.clone();
        rewrite_copy(&mut copy, &rw("10.9.1.1", "10.9.1.3", 16500, 20001)).unwrap();
        assert_eq!(
            copy[..ETH_LEN],
            orig[..ETH_LEN],
            "Ethernet: set by the route stage"
        );
        assert_eq!(
            hex::encode(&copy[ETH_LEN..]),
            concat!(
                "45100020beef4000", // version/IHL, TOS 0x10, length 32, ident, DF
                "3f11",             // TTL 63, UDP
                "66b8",             // header checksum
                "0a090101",         // 10.9.1.1
                "0a090103",         // 10.9.1.3
                "40744e21",         // 16500 → 20001
                "000c",             // UDP length 12
                "7593",             // UDP checksum
                "73767221",         // "svr!"
            )
        );
    }

    #[test]
    fn refuses_what_the_ingress_never_makes() {
        let orig = sealed("10.9.0.1", "10.9.0.2", PROTO_UDP, 16384, 16385, b"x");
        // Family change.
        let mut f = orig.clone();
        assert_eq!(
            rewrite_copy(&mut f, &rw("fd00::1", "fd00::2", 1, 2)),
            Err(SvrDrop::Malformed)
        );
        assert_eq!(
            rewrite_copy(&mut f, &rw("10.0.0.1", "fd00::2", 1, 2)),
            Err(SvrDrop::Malformed)
        );
        assert_eq!(f, orig, "nothing written");
        // Truncated.
        let mut short = orig[..30].to_vec();
        assert_eq!(
            rewrite_copy(&mut short, &rw("10.0.0.1", "10.0.0.2", 1, 2)),
            Err(SvrDrop::Malformed)
        );
        // ICMP.
        let mut icmp = orig.clone();
        icmp[ETH_LEN + 9] = 1;
        assert_eq!(
            rewrite_copy(&mut icmp, &rw("10.0.0.1", "10.0.0.2", 1, 2)),
            Err(SvrDrop::Unsupported)
        );
    }
}
