//! Issue 13's attacks at coordinator level: an attacker on the WAN path between two peered
//! routers injects, rewrites or replays BFD datagrams. Each test asserts that every path
//! stays in service and that a counter of refused input moved.
//!
//! authentication (branch `bfd-auth`) and the hardened key exchange (branch `kx`) are in and
//! installed through `PeerCoordinator::install_bfd_auth_keys`; they fail today, which is the
//! weakness they document. Run them with `cargo test -p svr-peering -- --ignored`.

mod support;

use fastpath::time::Instant;
use support::*;
use svr_bfd::{ControlPacket, State, CONTROL_LEN};
use svr_keymgmt::message::{encode_block, KeyRequest, Message, Protection};
use svr_keymgmt::KeyKind;

/// Two peered routers, 30 s into service.
fn peered() -> Pair {
    let mut p = Pair::new(Setup::default());
    p.run_until_in_service(secs(10));
    p.run_for(secs(30));
    p
}

/// router-b's latest genuine BFD packet on `path` (towards router-a), without its block.
fn b_header(p: &Pair, path: usize) -> Vec<u8> {
    let s = p.b.last_sent(path);
    let len = usize::from(ControlPacket::new_unchecked(&s.payload[..]).length());
    s.payload[..len.max(CONTROL_LEN)].to_vec()
}

/// Runs `run` more seconds and asserts that no path of either router left service since
/// `since` (the attack's start), and that router-a (`victim_a`) or router-b counted refused
/// input.
fn assert_shrugged_off(p: &mut Pair, victim_a: bool, before: u64, since: Instant, run: u64) {
    p.run_for(secs(run));
    for s in [&p.a, &p.b] {
        assert_eq!(s.out_of_service_since(since), vec![]);
        assert!(s.all_in_service());
    }
    let victim = if victim_a { &p.a } else { &p.b };
    assert!(
        victim.rejections() > before,
        "no counter moved ({before} -> {})",
        victim.rejections()
    );
}

/// The first block router-a (the leader) sent: its clear offer (chain + signed Hello).
fn a_clear_offer(p: &Pair) -> Vec<u8> {
    let s = p.a.sent.iter().find(|s| s.block).unwrap();
    let len = usize::from(ControlPacket::new_unchecked(&s.payload[..]).length());
    s.payload[len..].to_vec()
}

// ---- pass today ----

#[test]
fn spoofed_bfd_with_a_wrong_discriminator_is_dropped() {
    let mut p = peered();
    let before = p.a.rejections();
    let since = p.time;
    let mut pkt = b_header(&p, 0);
    let mut c = ControlPacket::new_unchecked(&mut pkt[..]);
    c.set_state(State::Down);
    c.set_your_discriminator(0xdead_beef);
    p.inject(false, 0, &pkt);
    assert_shrugged_off(&mut p, true, before, since, 10);
}

#[test]
fn garbage_blocks_are_counted_and_change_nothing() {
    let mut p = peered();
    let before = p.a.rejections();
    let since = p.time;
    let mut pkt = b_header(&p, 1);
    pkt.extend_from_slice(&svr_bfd::SVR_COOKIE);
    pkt.extend_from_slice(&[0xa5; 200]);
    for _ in 0..100 {
        p.inject(false, 1, &pkt);
    }
    assert_shrugged_off(&mut p, true, before, since, 10);
}

// ---- need #13 (bfd-auth, kx) ----

/// A clear Key Request in router-b's name (no signature needed today) on a current BFD
/// header: router-a believes b restarted and takes the peer out of service.
#[test]
fn spoofed_clear_block_claiming_the_peers_name() {
    let mut p = peered();
    let before = p.a.rejections();
    let since = p.time;
    let block = encode_block(
        B,
        &[Message::KeyRequest(KeyRequest {
            kind: KeyKind::PeerKey,
            have_index: 0,
            challenge: [0x5a; 16],
        })],
        Protection::Clear,
    )
    .unwrap();
    let mut pkt = b_header(&p, 0);
    pkt.extend_from_slice(&block);
    p.inject(false, 0, &pkt);
    assert_shrugged_off(&mut p, true, before, since, 30);
}

/// router-a's genuine clear offer, recorded at start-up and replayed to router-b on a
/// current BFD header once peered.
#[test]
fn replayed_genuine_clear_offer() {
    let mut p = peered();
    let before = p.b.rejections();
    let since = p.time;
    let mut pkt = p.a.last_sent(0).payload.clone();
    let len = usize::from(ControlPacket::new_unchecked(&pkt[..]).length());
    pkt.truncate(len);
    pkt.extend_from_slice(&a_clear_offer(&p));
    p.inject(true, 0, &pkt);
    assert_shrugged_off(&mut p, false, before, since, 30);
}

/// 100 replayed offers a second for 10 s (issue 13's flood, scaled to a debug build): the
/// path stays in service and the token bucket's drops are counted.
#[test]
fn flood_of_replayed_offers() {
    let mut p = peered();
    let before = p.b.rejections();
    let since = p.time;
    let offer = a_clear_offer(&p);
    for _ in 0..100 {
        for _ in 0..10 {
            let mut pkt = p.a.last_sent(0).payload.clone();
            let len = usize::from(ControlPacket::new_unchecked(&pkt[..]).length());
            pkt.truncate(len);
            pkt.extend_from_slice(&offer);
            p.inject(true, 0, &pkt);
        }
        p.run_for(secs(1) / 10);
    }
    assert_shrugged_off(&mut p, false, before, since, 10);
    assert!(
        p.b.rejections() >= before + 900,
        "most of the flood refused cheaply"
    );
}

/// A BFD Down (or AdminDown) "from router-b" with Your Discriminator 0, which RFC 5880
/// §6.8.6 lets through without a discriminator check.
fn spoofed_state(state: State, copy_your_discr: bool) {
    let mut p = peered();
    let before = p.a.rejections();
    let since = p.time;
    for _ in 0..5 {
        let mut pkt = b_header(&p, 0);
        let mut c = ControlPacket::new_unchecked(&mut pkt[..]);
        c.set_state(state);
        if !copy_your_discr {
            c.set_your_discriminator(0);
        }
        p.inject(false, 0, &pkt);
        p.run_for(secs(1));
    }
    assert_shrugged_off(&mut p, true, before, since, 10);
}

#[test]
fn spoofed_bfd_down_with_your_discriminator_zero() {
    spoofed_state(State::Down, false);
}

#[test]
fn spoofed_bfd_admin_down_with_your_discriminator_zero() {
    spoofed_state(State::AdminDown, false);
}

#[test]
fn spoofed_bfd_down_with_copied_discriminators() {
    spoofed_state(State::Down, true);
}

/// Spoofed packets "from router-b" that silence router-a (Required Min RX 0, or the Demand
/// bit), sent after each genuine one: router-b's detection time runs out.
fn silencer(edit: impl Fn(&mut ControlPacket<&mut [u8]>)) {
    let mut p = peered();
    let before = p.a.rejections();
    let since = p.time;
    for _ in 0..100 {
        let mut pkt = b_header(&p, 0);
        edit(&mut ControlPacket::new_unchecked(&mut pkt[..]));
        p.inject(false, 0, &pkt);
        p.run_for(secs(1) / 10);
    }
    assert_shrugged_off(&mut p, true, before, since, 5);
}

#[test]
fn spoofed_required_min_rx_zero() {
    silencer(|c| c.set_required_min_rx(0));
}

#[test]
fn spoofed_demand_bit() {
    silencer(|c| c.set_demand(true));
}

/// A clear leader Key Request "from router-a", grafted onto router-a's genuine latest BFD
/// header, towards the keyed follower: it must not start a clear exchange (which, with the
/// follower's real challenge, would run to completion through both genuine routers and
/// replace the live peer key). The BFD digest covers the block, so the grafted packet fails
/// authentication and its block is dropped unseen while BFD is Up.
#[test]
fn grafted_leader_key_request_does_not_force_a_rekey() {
    let mut p = peered();
    let before = p.b.rejections();
    let since = p.time;
    let index = p.b.co.peer(0).unwrap().keys.peer_key_index();
    let block = encode_block(
        A,
        &[Message::KeyRequest(KeyRequest {
            kind: KeyKind::PeerKey,
            have_index: 0,
            challenge: [0; 16],
        })],
        Protection::Clear,
    )
    .unwrap();
    for _ in 0..5 {
        let mut pkt = p.a.last_sent(0).payload.clone();
        let len = usize::from(ControlPacket::new_unchecked(&pkt[..]).length());
        pkt.truncate(len);
        pkt.extend_from_slice(&block);
        p.inject(true, 0, &pkt);
        p.run_for(secs(1));
    }
    assert_shrugged_off(&mut p, false, before, since, 30);
    assert_eq!(p.b.co.peer(0).unwrap().keys.peer_key_index(), index);
    assert!(p.b.co.counters().blocks_unauthenticated_while_up >= 5);
}
