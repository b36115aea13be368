//! Neighbour-table lifecycle on a virtual clock: resolution, holding, retries, failure,
//! ageing, static entries, limits, link down, and a ten-day drive.

mod common;

use std::net::Ipv6Addr;
use std::time::Duration;

use common::*;
use fastpath::time::Instant;
use slowpath::{Event, NeighborState, NeighborTimers, SlowPathConfig};

const SEC: Duration = Duration::from_secs(1);

/// A routed IPv4 frame from 203.0.113.5 to `dst` (last octet of 192.0.2.0/24), punted by a
/// worker on the wan port; `tag` marks the payload.
fn miss_v4(dst_last: u8, tag: u8) -> Vec<u8> {
    let mut f = hex::decode(TTL4_IN).unwrap();
    f[22] = 63; // already decremented by the worker
    f[33] = dst_last;
    f[45] = tag;
    f[24..26].fill(0);
    let c = internet_checksum(&[&f[14..34]]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// A routed IPv6 frame from 2001:db8:99::5 to 2001:db8:1::`dst_last`.
fn miss_v6(dst_last: u8) -> Vec<u8> {
    let mut f = hex::decode(TTL6_IN).unwrap();
    f[21] = 63;
    f[53] = dst_last;
    f
}

/// ARP reply from host B (192.0.2.20, HB) to the router.
fn arp_reply_b() -> Vec<u8> {
    let mut f = hex::decode(ARP_REPLY).unwrap();
    // Ethernet: to R0 from HB. ARP: sender HB/192.0.2.20, target R0/192.0.2.1.
    f[0..6].copy_from_slice(&R0.0);
    f[6..12].copy_from_slice(&HB.0);
    f[22..28].copy_from_slice(&HB.0);
    f[28..32].copy_from_slice(&[192, 0, 2, 20]);
    f[32..38].copy_from_slice(&R0.0);
    f[38..42].copy_from_slice(&[192, 0, 2, 1]);
    f
}

fn is_arp_request_for(f: &[u8], last: u8) -> bool {
    f[12..14] == [0x08, 0x06] && f[20..22] == [0, 1] && f[38..42] == [192, 0, 2, last]
}

#[test]
fn miss_resolves_with_arp_and_releases_held_frames_with_right_macs() {
    let mut h = Harness::new();
    for tag in 1..=4 {
        h.raw(WAN, PuntReason::NeighborMiss, &miss_v4(20, tag));
    }
    let tx = h.transmits();
    assert_eq!(tx.len(), 1, "one ARP request, frames held");
    assert_eq!(tx[0].port, LAN);
    assert_eq!(&tx[0].frame[0..12], &[[0xff; 6], R0.0].concat()[..]);
    assert!(is_arp_request_for(&tx[0].frame, 20));
    assert_eq!(
        &tx[0].frame[28..32],
        &[192, 0, 2, 1],
        "sender is our lan address"
    );
    assert_eq!(h.sp.held_frame_count(), 3);
    assert_eq!(h.counter("held_dropped_overflow"), 1);

    h.advance(SEC / 2);
    h.raw(LAN, PuntReason::Arp, &arp_reply_b());
    let tx = h.transmits();
    assert_eq!(tx.len(), 3);
    for (t, tag) in tx.iter().zip(2..=4) {
        assert_eq!(t.port, LAN);
        assert_eq!(&t.frame[0..6], &HB.0);
        assert_eq!(&t.frame[6..12], &R0.0);
        assert_eq!(
            &t.frame[12..],
            &miss_v4(20, tag)[12..],
            "rest of the frame unchanged"
        );
    }
    assert_eq!(
        h.sp.neighbor_state(LAN, v4("192.0.2.20")),
        Some(NeighborState::Reachable(HB))
    );
    assert_eq!(h.counter("held_released"), 3);
    assert_eq!(
        h.events(),
        vec![
            Event::NeighborAdded {
                port: LAN,
                addr: v4("192.0.2.20"),
                mac: HB
            },
            Event::NeighborsChanged
        ]
    );
    assert_eq!(h.sp.neighbors().get(LAN, v4("192.0.2.20")), Some(HB));
}

#[test]
fn three_probes_one_second_apart_then_failed_with_host_unreachable() {
    let mut h = Harness::new();
    let t0 = h.now;
    h.raw(WAN, PuntReason::NeighborMiss, &miss_v4(20, 1));
    assert_eq!(h.transmits().len(), 1);
    assert_eq!(h.sp.poll_timeout(), Some(t0 + SEC));
    // Early and spurious timeouts do nothing.
    h.sp.handle_timeout(t0 + SEC / 2);
    h.sp.handle_timeout(t0);
    assert!(h.transmits().is_empty());
    for n in 1..=2u32 {
        assert!(h.step());
        assert_eq!(h.now, t0 + SEC * n);
        let tx = h.transmits();
        assert_eq!(tx.len(), 1);
        assert!(is_arp_request_for(&tx[0].frame, 20));
    }
    assert!(h.step());
    assert_eq!(h.now, t0 + SEC * 3);
    assert_eq!(
        h.sp.neighbor_state(LAN, v4("192.0.2.20")),
        Some(NeighborState::Failed)
    );
    let tx = h.transmits();
    assert_eq!(tx.len(), 1, "ICMP host unreachable to the source");
    let icmp = &tx[0].frame;
    assert_eq!(tx[0].port, WAN);
    assert_eq!(&icmp[0..6], &GW.0, "routed back through the static gateway");
    assert_eq!(
        &icmp[26..30],
        &[198, 51, 100, 1],
        "from the ingress port's address"
    );
    assert_eq!(&icmp[30..34], &[203, 0, 113, 5]);
    assert_eq!((icmp[34], icmp[35]), (3, 1));
    assert_eq!(&icmp[42..], &miss_v4(20, 1)[14..]);
    assert!(icmpv4_checksums_ok(icmp));
    assert_eq!(h.counter("neighbor_probes_sent"), 3);
    assert_eq!(h.counter("neighbor_resolution_failed"), 1);
    assert_eq!(h.counter("held_dropped_failed"), 1);
    assert_eq!(h.counter("icmp_errors_sent"), 1);
    assert_eq!(
        h.events(),
        vec![Event::NeighborFailed {
            port: LAN,
            addr: v4("192.0.2.20")
        }]
    );
    // The failed entry is collected after `reachable`.
    assert_eq!(h.sp.poll_timeout(), Some(t0 + SEC * 33));
    assert!(h.step());
    assert_eq!(h.sp.dynamic_neighbor_count(), 0);
    assert_eq!(h.sp.poll_timeout(), None);
}

#[test]
fn ipv6_miss_sends_ns_to_solicited_node_group_and_failure_sends_address_unreachable() {
    let mut h = Harness::new();
    h.raw(WAN, PuntReason::NeighborMiss, &miss_v6(0x20));
    let tx = h.transmits();
    assert_eq!(tx.len(), 1);
    let ns = &tx[0].frame;
    assert_eq!(&ns[0..6], &[0x33, 0x33, 0xff, 0, 0, 0x20]);
    let group: Ipv6Addr = "ff02::1:ff00:20".parse().unwrap();
    assert_eq!(&ns[38..54], &group.octets());
    assert_eq!(ns[21], 255);
    assert_eq!(ns[54], 135);
    let target: Ipv6Addr = "2001:db8:1::20".parse().unwrap();
    assert_eq!(&ns[62..78], &target.octets());
    assert_eq!(&ns[78..80], &[1, 1], "source link-layer option");
    assert_eq!(&ns[80..86], &R0.0);
    assert!(icmpv6_checksum_ok(ns));
    for _ in 0..3 {
        h.step();
    }
    let tx = h.transmits();
    let err = tx.last().unwrap();
    assert_eq!(err.port, WAN);
    assert_eq!((err.frame[54], err.frame[55]), (1, 3));
    assert!(icmpv6_checksum_ok(&err.frame));
}

#[test]
fn ipv6_na_releases_held_frames() {
    let mut h = Harness::new();
    h.raw(WAN, PuntReason::NeighborMiss, &miss_v6(0x20));
    h.transmits();
    // A solicited NA from 2001:db8:1::20 / HB, built from the golden NA by swapping roles.
    let mut na = hex::decode(NA).unwrap();
    na[0..6].copy_from_slice(&R0.0);
    na[6..12].copy_from_slice(&HB.0);
    let b: Ipv6Addr = "2001:db8:1::20".parse().unwrap();
    let r: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
    na[22..38].copy_from_slice(&b.octets());
    na[38..54].copy_from_slice(&r.octets());
    na[62..78].copy_from_slice(&b.octets());
    na[80..86].copy_from_slice(&HB.0);
    na[58] = 0x60; // S|O
    na[56..58].fill(0);
    let c = internet_checksum(&[
        &na[22..38],
        &na[38..54],
        &[0, 0, 0, 32],
        &[0, 0, 0, 58],
        &na[54..86],
    ]);
    na[56..58].copy_from_slice(&c.to_be_bytes());
    h.raw(LAN, PuntReason::NeighborDiscovery, &na);
    let tx = h.transmits();
    assert_eq!(tx.len(), 1, "{:?}", h.sp.counters());
    assert_eq!(&tx[0].frame[0..12], &[HB.0, R0.0].concat()[..]);
    assert_eq!(
        h.sp.neighbor_state(LAN, v6("2001:db8:1::20")),
        Some(NeighborState::Reachable(HB))
    );
}

#[test]
fn reachable_becomes_stale_after_30s_and_is_collected_after_10_minutes() {
    let mut h = Harness::new();
    h.raw(WAN, PuntReason::NeighborMiss, &miss_v4(20, 1));
    h.raw(LAN, PuntReason::Arp, &arp_reply_b());
    h.transmits();
    h.events();
    let t_confirm = h.now;
    assert_eq!(h.sp.poll_timeout(), Some(t_confirm + SEC * 30));
    h.drive_until(t_confirm + SEC * 29);
    assert_eq!(
        h.sp.neighbor_state(LAN, v4("192.0.2.20")),
        Some(NeighborState::Reachable(HB))
    );
    h.drive_until(t_confirm + SEC * 30);
    assert_eq!(
        h.sp.neighbor_state(LAN, v4("192.0.2.20")),
        Some(NeighborState::Stale(HB))
    );
    assert_eq!(
        h.sp.neighbors().get(LAN, v4("192.0.2.20")),
        Some(HB),
        "stale is still used"
    );
    assert!(h.events().is_empty());
    // Used while stale: forwarded at once with the stale MAC, re-probed by unicast.
    h.raw(WAN, PuntReason::NeighborMiss, &miss_v4(20, 9));
    let tx = h.transmits();
    assert_eq!(tx.len(), 2);
    assert_eq!(&tx[0].frame[0..6], &HB.0);
    assert!(is_arp_request_for(&tx[1].frame, 20));
    assert_eq!(&tx[1].frame[0..6], &HB.0, "unicast probe");
    h.raw(LAN, PuntReason::Arp, &arp_reply_b());
    assert_eq!(
        h.sp.neighbor_state(LAN, v4("192.0.2.20")),
        Some(NeighborState::Reachable(HB))
    );
    // Left alone: stale after 30 s, gone 10 min later.
    let t = h.now;
    h.drive_until(t + SEC * 30 + SEC * 600);
    assert_eq!(h.sp.neighbor_state(LAN, v4("192.0.2.20")), None);
    assert_eq!(h.events(), vec![Event::NeighborsChanged]);
    assert_eq!(h.sp.neighbors().get(LAN, v4("192.0.2.20")), None);
}

#[test]
fn static_entries_never_change() {
    let mut h = Harness::new();
    // The gateway's address announced with another MAC, by request and by reply.
    let mut f = hex::decode(ARP_REQUEST).unwrap();
    f[6..12].copy_from_slice(&HB.0);
    f[22..28].copy_from_slice(&HB.0);
    f[28..32].copy_from_slice(&[198, 51, 100, 254]);
    f[38..42].copy_from_slice(&[198, 51, 100, 1]);
    h.raw(WAN, PuntReason::Arp, &f);
    assert_eq!(h.transmits().len(), 1, "still answered");
    f[21] = 2;
    h.raw(WAN, PuntReason::Arp, &f);
    assert_eq!(h.counter("neighbor_static_ignored"), 2);
    h.drive_until(h.now + Duration::from_secs(86_400));
    assert_eq!(
        h.sp.neighbor_state(WAN, v4("198.51.100.254")),
        Some(NeighborState::Static(GW))
    );
    assert_eq!(h.sp.neighbors().get(WAN, v4("198.51.100.254")), Some(GW));
    assert_eq!(h.sp.neighbors().get(WAN, v6("2001:db8:2::fe")), Some(GW));
    assert_eq!(h.sp.poll_timeout(), None);
}

#[test]
fn full_table_refuses_new_entries() {
    let config = SlowPathConfig {
        timers: NeighborTimers {
            max_entries: 2,
            ..NeighborTimers::default()
        },
        ..config()
    };
    let mut h = Harness::with_config(config);
    for last in [20, 21, 22] {
        h.raw(WAN, PuntReason::NeighborMiss, &miss_v4(last, 0));
    }
    assert_eq!(h.transmits().len(), 2);
    assert_eq!(h.sp.dynamic_neighbor_count(), 2);
    assert_eq!(h.counter("neighbor_table_full"), 1);
    // Learning a new neighbour is refused too (the ARP request is still answered).
    h.frame(LAN, PuntReason::Arp, ARP_REQUEST);
    assert_eq!(h.transmits().len(), 1);
    assert_eq!(h.counter("neighbor_table_full"), 2);
    assert_eq!(h.sp.neighbor_state(LAN, v4("192.0.2.10")), None);
}

#[test]
fn interface_down_flushes_dynamic_entries_of_that_port() {
    let mut h = Harness::new();
    h.frame(LAN, PuntReason::Arp, ARP_REQUEST); // 192.0.2.10 resolved
    h.raw(WAN, PuntReason::NeighborMiss, &miss_v4(20, 0)); // 192.0.2.20 pending
    h.transmits();
    h.events();
    h.sp.interface_state_changed(h.now, LAN, false);
    assert_eq!(h.sp.dynamic_neighbor_count(), 0);
    assert_eq!(h.counter("neighbor_flushed"), 2);
    assert_eq!(h.counter("held_dropped_port_down"), 1);
    assert_eq!(h.events(), vec![Event::NeighborsChanged]);
    assert_eq!(h.sp.neighbors().len(), 2, "static wan entries stay");
    assert_eq!(h.sp.poll_timeout(), None);
    h.frame(LAN, PuntReason::Arp, ARP_REQUEST);
    assert_eq!(h.counter("port_down"), 1);
    assert!(h.transmits().is_empty());
    h.sp.interface_state_changed(h.now, LAN, true);
    h.frame(LAN, PuntReason::Arp, ARP_REQUEST);
    assert_eq!(h.transmits().len(), 1);
}

#[test]
fn poll_timeout_is_always_the_nearest_deadline() {
    let mut h = Harness::new();
    let t0 = h.now;
    assert_eq!(h.sp.poll_timeout(), None);
    h.raw(WAN, PuntReason::NeighborMiss, &miss_v4(20, 0));
    h.advance(SEC / 4);
    h.raw(WAN, PuntReason::NeighborMiss, &miss_v4(21, 0));
    h.advance(SEC / 4);
    h.frame(LAN, PuntReason::Arp, ARP_REQUEST); // Stale: deadline in 10 min
    assert_eq!(h.sp.poll_timeout(), Some(t0 + SEC));
    let mut last = h.now;
    let mut steps = 0;
    while let Some(t) = h.sp.poll_timeout() {
        assert!(t >= last, "deadlines never go backwards");
        // Just before the deadline nothing happens; at it, something does.
        let before = h.sp.counters().clone();
        h.sp.handle_timeout(Instant::from_nanos(t.as_nanos() - 1));
        assert_eq!(h.sp.counters(), &before);
        assert_eq!(h.sp.poll_timeout(), Some(t));
        h.sp.handle_timeout(t);
        assert_ne!(
            h.sp.poll_timeout(),
            Some(t),
            "handle_timeout at the deadline made progress"
        );
        last = t;
        steps += 1;
        assert!(steps < 100);
    }
    assert_eq!(h.sp.dynamic_neighbor_count(), 0);
}

#[test]
fn ten_simulated_days_without_growth() {
    let mut h = Harness::new();
    let start = h.now;
    let end = start + Duration::from_secs(10 * 86_400);
    let mut next_traffic = start;
    let mut round: u32 = 0;
    let mut iterations = 0u64;
    while h.now < end {
        if h.now >= next_traffic {
            // Every 7 minutes: traffic to 20 hosts; even ones answer, odd ones never do.
            for i in 0..20u8 {
                let last = 20 + i;
                h.raw(WAN, PuntReason::NeighborMiss, &miss_v4(last, round as u8));
                if i % 2 == 0 {
                    let mut reply = arp_reply_b();
                    reply[31] = last;
                    reply[27] = last;
                    h.raw(LAN, PuntReason::Arp, &reply);
                }
            }
            h.raw(LAN, PuntReason::Local, &hex::decode(ECHO4_REQ).unwrap());
            round += 1;
            next_traffic = h.now + Duration::from_secs(420);
        }
        let next =
            h.sp.poll_timeout()
                .map_or(next_traffic, |t| t.min(next_traffic));
        h.now = h.now.max(next);
        h.sp.handle_timeout(h.now);
        let _ = h.transmits();
        let _ = h.events();
        assert!(h.sp.dynamic_neighbor_count() <= 21);
        assert!(h.sp.held_frame_count() <= 30);
        iterations += 1;
        assert!(iterations < 1_000_000, "livelock");
    }
    assert_eq!(round, 10 * 86_400 / 420 + 1);
    // Once traffic stops, everything ages out.
    h.drive_until(end + Duration::from_secs(3600));
    assert_eq!(h.sp.dynamic_neighbor_count(), 0);
    assert_eq!(h.sp.poll_timeout(), None);
    assert!(h.counter("neighbor_resolution_failed") > 0);
    assert!(h.counter("held_released") > 0);
}

/// A reload replaces the static neighbours and routes: the new entries show at once (one
/// `NeighborsChanged`), removed ones are gone, connected routes stay.
#[test]
fn reload_replaces_static_neighbors_and_routes() {
    use fastpath::route::{IpPrefix, Route};
    use slowpath::StaticNeighbor;
    let mut h = Harness::new();
    h.events();
    h.sp.set_static_neighbors(&[StaticNeighbor {
        port: WAN,
        addr: v4("198.51.100.253"),
        mac: HB,
    }]);
    assert_eq!(h.events(), vec![Event::NeighborsChanged]);
    assert_eq!(h.sp.neighbors().get(WAN, v4("198.51.100.253")), Some(HB));
    assert_eq!(h.sp.neighbors().get(WAN, v4("198.51.100.254")), None);
    // The same set again changes nothing.
    h.sp.set_static_neighbors(&[StaticNeighbor {
        port: WAN,
        addr: v4("198.51.100.253"),
        mac: HB,
    }]);
    assert!(h.events().is_empty());
    h.sp.set_routes(vec![Route {
        prefix: IpPrefix::new(v4("10.0.0.0"), 8).unwrap(),
        next_hop: Some(v4("198.51.100.253")),
        port: WAN,
    }]);
    let hop = |a: &str| fastpath::forward::lookup(v4(a), h.sp.routes()).ok();
    assert!(hop("10.1.2.3").is_some(), "new route");
    assert!(
        hop("203.0.113.9").is_none(),
        "the old default route is gone"
    );
    assert!(hop("192.0.2.7").is_some(), "connected routes stay");
}
