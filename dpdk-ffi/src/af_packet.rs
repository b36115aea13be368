//! Frames the kernel dropped before a `net_af_packet` port's poll saw them.
//!
//! DPDK 22.11's af_packet driver never reads its sockets' `PACKET_STATISTICS`, so a full RX
//! ring loses frames with no counter moving (`imissed` stays 0). This reads them itself: every
//! `AF_PACKET` socket of this process (the driver's, one per queue) is found in
//! `/proc/self/fd`, and its `tp_drops` read with `getsockopt(SOL_PACKET, PACKET_STATISTICS)`,
//! which also resets the kernel's counts: each call returns the drops since the previous one.
//! Nothing else in the process reads them (the driver does not), so no count is lost or
//! counted twice.

use std::collections::BTreeMap;
use std::mem::size_of;

const AF_PACKET: u16 = 17;
const SOL_PACKET: i32 = 263;
const PACKET_STATISTICS: i32 = 6;

/// `struct sockaddr_ll` (linux/if_packet.h).
#[repr(C)]
#[derive(Default)]
struct SockaddrLl {
    family: u16,
    protocol: u16,
    ifindex: i32,
    hatype: u16,
    pkttype: u8,
    halen: u8,
    addr: [u8; 8],
}

/// `struct tpacket_stats_v3` (`tpacket_stats` for TPACKET_V1/V2 is its first 8 bytes).
#[repr(C)]
#[derive(Default)]
struct TpacketStats {
    packets: u32,
    drops: u32,
    freeze_q_cnt: u32,
}

extern "C" {
    fn getsockname(fd: i32, addr: *mut SockaddrLl, len: *mut u32) -> i32;
    fn getsockopt(fd: i32, level: i32, name: i32, val: *mut TpacketStats, len: *mut u32) -> i32;
}

/// The interface index of `AF_PACKET` socket `fd`, or `None` when it is not one.
fn packet_ifindex(fd: i32) -> Option<u32> {
    let mut sa = SockaddrLl::default();
    let mut len = size_of::<SockaddrLl>() as u32;
    // SAFETY: `sa` is a writable `sockaddr_ll`-sized buffer and `len` its size; getsockname
    // writes at most `len` bytes and updates `len`. A stale or non-socket fd fails (ENOTSOCK,
    // EBADF) without touching either.
    let rc = unsafe { getsockname(fd, &mut sa, &mut len) };
    (rc == 0 && len >= 8 && sa.family == AF_PACKET).then_some(sa.ifindex as u32)
}

/// Frames dropped by the kernel on `AF_PACKET` socket `fd` since the last read (resets them).
fn take_drops(fd: i32) -> Option<u64> {
    let mut st = TpacketStats::default();
    let mut len = size_of::<TpacketStats>() as u32;
    // SAFETY: `st` is a writable buffer of `len` bytes, large enough for both the V1/V2 and V3
    // statistics structs; the kernel copies at most `len` bytes and sets `len`.
    let rc = unsafe { getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &mut st, &mut len) };
    (rc == 0).then_some(u64::from(st.drops))
}

/// Frames dropped since the previous call, by interface index, summed over every `AF_PACKET`
/// socket of this process. Empty when there are none (or `/proc` is not mounted).
pub fn take_ring_drops() -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let is_socket =
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        if let Some(ifindex) = packet_ifindex(fd) {
            if let Some(d) = take_drops(fd) {
                *out.entry(ifindex).or_insert(0) += d;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_packet_sockets_no_drops_and_other_sockets_are_skipped() {
        let _udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let drops = take_ring_drops();
        assert!(drops.values().all(|&d| d == 0), "{drops:?}");
        assert_eq!(packet_ifindex(-1), None);
        assert_eq!(take_drops(-1), None);
    }
}
