//! The link test inside the coordinator (issue 9 item 2), on virtual time: each peer path's
//! probes ride UDP 1280 beside BFD, the peer reflects them, and the path's metrics follow
//! the delay and loss the harness puts on it.

mod support;

use support::*;
use svr_linkq::{mos, ReflectDrop, ReflectionDrop};
use svr_peering::Publish;

/// Two peered routers.
fn peered() -> Pair {
    let mut p = Pair::new(Setup::default());
    p.run_until_in_service(secs(10));
    p
}

fn metrics_published(s: &Side, path: usize) -> usize {
    s.publishes
        .iter()
        .filter(|(_, p)| matches!(p, Publish::PathMetrics { path: q, .. } if *q == path))
        .count()
}

#[test]
fn latency_converges_to_the_one_way_delay_and_mos_follows() {
    let mut p = Pair::new(Setup::default());
    p.path_delay[0] = Some(ms(50));
    p.run_until_in_service(secs(10));
    p.run_for(secs(20));
    let quiet = |p: &Pair| [&p.a, &p.b].map(|s| (s.rejections(), s.co.counters().link_rx_dropped));
    let before = quiet(&p);
    p.run_for(secs(180));
    for (name, s) in [("a", &p.a), ("b", &p.b)] {
        let v = s.co.path(0).unwrap();
        assert!(v.link_running, "{name}");
        let m = v.metrics.expect("measured");
        assert!(
            (m.latency_ms - 50.0).abs() < 1.0,
            "{name}: latency {}",
            m.latency_ms
        );
        assert!(m.jitter_ms < 1.0, "{name}: jitter {}", m.jitter_ms);
        assert!(m.loss_percent < 1.0, "{name}: loss {}", m.loss_percent);
        assert!((m.mos - mos(m.latency_ms, m.jitter_ms, m.loss_percent)).abs() < 1e-9);
        assert!(
            (m.mos - mos(50.0, 0.0, 0.0)).abs() < 0.01,
            "{name}: mos {}",
            m.mos
        );
        let last = v.last_test.expect("a test ran");
        assert_eq!((last.sent, last.received), (10, 10), "{name}");
        assert!((last.latency_ms.unwrap() - 50.0).abs() < 0.5);
        // Path 1 keeps the harness's 5 ms.
        let m1 = s.co.path(1).unwrap().metrics.unwrap();
        assert!(
            (m1.latency_ms - 5.0).abs() < 0.5,
            "{name}: {}",
            m1.latency_ms
        );
        // Told once at the first measurement; later tests change nothing beyond the
        // published steps.
        assert!(metrics_published(s, 0) >= 1, "{name}");
        let c = s.co.counters();
        assert!(c.link_tx_probes >= 2 * 17 * 10, "{name}: {c:?}");
        assert!(c.link_tx_reflections >= 2 * 17 * 10, "{name}: {c:?}");
    }
    // Once both ends run, nothing is refused: no probe disturbed BFD or the keys.
    assert_eq!(quiet(&p), before);
}

#[test]
fn ten_percent_loss_is_measured() {
    let mut p = peered();
    p.run_for(secs(20));
    p.path_loss_per_mille[1] = 100;
    let before = [
        p.a.co.path(1).unwrap().link_stats,
        p.b.co.path(1).unwrap().link_stats,
    ];
    p.run_for(secs(600));
    assert!(p.lost > 0);
    for (i, s) in [&p.a, &p.b].into_iter().enumerate() {
        let v = s.co.path(1).unwrap();
        let st = v.link_stats.test;
        let sent = st.probes_sent - before[i].test.probes_sent;
        let back = st.reflections - before[i].test.reflections;
        let loss = 100.0 * (sent - back) as f64 / sent as f64;
        assert!(sent >= 500, "{sent}");
        assert!((7.0..13.0).contains(&loss), "side {i}: measured {loss} %");
        let m = v.metrics.unwrap();
        assert!(
            (2.0..25.0).contains(&m.loss_percent),
            "side {i}: smoothed {}",
            m.loss_percent
        );
        assert!(m.mos < mos(m.latency_ms, m.jitter_ms, 0.0));
        // Path 0 is clean.
        assert!(s.co.path(0).unwrap().metrics.unwrap().loss_percent < 1.0);
        // The loss moved the published value.
        assert!(metrics_published(s, 1) >= 2, "side {i}");
    }
}

/// The latest link-test payload `s` sent on `path` of kind 1 (request) or 2 (reflection).
fn last_probe(s: &Side, path: usize, kind: u8) -> Vec<u8> {
    s.sent
        .iter()
        .rev()
        .find(|x| x.path == path && x.link && x.payload[1] == kind)
        .unwrap()
        .payload
        .clone()
}

#[test]
fn forged_and_replayed_probes_are_dropped_and_counted() {
    let mut p = peered();
    p.run_for(secs(30));
    let request = last_probe(&p.b, 0, 1);
    let reflection = last_probe(&p.b, 0, 2);
    assert_eq!(request.len(), 56);
    assert_eq!(request[0], 1, "a probe never starts like BFD (0x20..=0x3f)");
    let st0 = p.a.co.path(0).unwrap().link_stats;
    let c0 = *p.a.co.counters();

    // Replays of genuine probes: the reflector's window, the test's outstanding set.
    p.inject(false, 0, &request);
    p.inject(false, 0, &reflection);
    // Forgeries: a flipped tag bit, a flipped sequence bit.
    let mut forged = request.clone();
    forged[40] ^= 1;
    p.inject(false, 0, &forged);
    let mut forged = reflection.clone();
    forged[15] ^= 1;
    p.inject(false, 0, &forged);

    let st = p.a.co.path(0).unwrap().link_stats;
    let c = *p.a.co.counters();
    assert_eq!(
        st.reflect_dropped[ReflectDrop::Replay.index()]
            - st0.reflect_dropped[ReflectDrop::Replay.index()],
        1
    );
    assert_eq!(
        st.reflect_dropped[ReflectDrop::BadTag.index()]
            - st0.reflect_dropped[ReflectDrop::BadTag.index()],
        1
    );
    assert_eq!(
        st.test.dropped[ReflectionDrop::BadTag.index()]
            - st0.test.dropped[ReflectionDrop::BadTag.index()],
        1
    );
    let replayed: u64 = [ReflectionDrop::Duplicate, ReflectionDrop::Stale]
        .iter()
        .map(|r| st.test.dropped[r.index()] - st0.test.dropped[r.index()])
        .sum();
    assert_eq!(replayed, 1);
    assert_eq!(c.link_rx - c0.link_rx, 4);
    assert_eq!(c.link_rx_dropped - c0.link_rx_dropped, 4);
    // Nothing was reflected for them, and BFD never saw them.
    assert_eq!(c.link_tx_reflections, c0.link_tx_reflections);
    assert_eq!(c.bfd_rx, c0.bfd_rx);
    p.run_for(secs(30));
    assert!(p.a.all_in_service() && p.b.all_in_service());
}

#[test]
fn link_test_traffic_stops_while_bfd_is_down() {
    let mut p = peered();
    p.run_for(secs(30));
    p.a.cut[0] = true;
    p.b.cut[0] = true;
    // BFD's detection time (3 × 1 s) and then some.
    p.run_for(secs(5));
    assert!(!p.a.in_service(0) && !p.b.in_service(0));
    let since = p.time;
    let metrics = p.a.co.path(0).unwrap().metrics;
    p.run_for(secs(60));
    for s in [&p.a, &p.b] {
        assert_eq!(s.link_sent_since(0, since), 0);
        assert!(s.link_sent_since(1, since) > 0, "path 1 keeps testing");
        let v = s.co.path(0).unwrap();
        assert!(!v.link_running);
    }
    // The last known metrics stay for display.
    assert_eq!(p.a.co.path(0).unwrap().metrics, metrics);
    p.a.cut[0] = false;
    p.b.cut[0] = false;
    p.run_until_in_service(secs(10));
    let back = p.time;
    p.run_for(secs(30));
    for s in [&p.a, &p.b] {
        assert!(s.co.path(0).unwrap().link_running);
        assert!(s.link_sent_since(0, back) >= 20);
    }
    // The restarted test has a new discriminator, so the peer's replay window lets it in.
    let st = p.a.co.path(0).unwrap().link_stats;
    assert_eq!(st.reflect_dropped[ReflectDrop::Replay.index()], 0);
    let last = p.a.co.path(0).unwrap().last_test.unwrap();
    assert_eq!(last.received, last.sent);
}
