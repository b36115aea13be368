//! Two BFD sessions over an in-memory wire on a virtual clock (quinn-proto `Pair` style):
//! `step()` jumps to the earliest deadline or packet arrival, `run_for()` moves time by any
//! amount, links inject loss, latency, blackholes and rewrites.

use std::collections::VecDeque;
use std::time::Duration;

use fastpath::time::Instant;
use svr_bfd::{
    auth, AuthKey, AuthRepr, BfdConfig, BfdError, BfdEvent, BfdSession, ControlPacket, ControlRepr,
    Diagnostic, State, SVR_COOKIE,
};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// An SVR BFD metadata block as the key layer might send it: cookie, a header word, and
/// `tag` so that the two directions differ.
fn block(tag: u8) -> Vec<u8> {
    let mut v = SVR_COOKIE.to_vec();
    v.extend_from_slice(&[0x10, 0x10, 0x00, 0x00, 0x00, 0x18, 0x00, 0x01, tag]);
    v
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    at: Instant,
    repr: ControlRepr,
}

struct Endpoint {
    session: BfdSession,
    /// Packets on the wire towards this endpoint, by arrival time.
    inbound: VecDeque<(Instant, Vec<u8>)>,
    /// The block this endpoint's key layer appends to every packet.
    ext: Vec<u8>,
    events: Vec<(Instant, BfdEvent)>,
    sent: Vec<Sent>,
    /// The bytes of every packet sent (while `record`), for replay attacks.
    sent_bytes: Vec<Vec<u8>>,
    received_ext: Vec<Vec<u8>>,
    /// Blocks handed back with a discarded control packet.
    discarded_ext: Vec<Vec<u8>>,
    rx_errors: Vec<BfdError>,
    record: bool,
}

impl Endpoint {
    fn new(discr: u32, config: BfdConfig, seed: u64, now: Instant, ext: Vec<u8>) -> Self {
        Endpoint {
            session: BfdSession::new(discr, config, seed, now),
            inbound: VecDeque::new(),
            ext,
            events: Vec::new(),
            sent: Vec::new(),
            sent_bytes: Vec::new(),
            received_ext: Vec::new(),
            discarded_ext: Vec::new(),
            rx_errors: Vec::new(),
            record: true,
        }
    }

    /// Delivers what has arrived, runs due timers, and returns the packets to send.
    fn drive(&mut self, now: Instant) -> Vec<Vec<u8>> {
        while self.inbound.front().is_some_and(|(at, _)| *at <= now) {
            let Some((_, bytes)) = self.inbound.pop_front() else {
                break;
            };
            let r = self.session.handle_packet(now, &bytes);
            match (r.outcome, r.block) {
                (Ok(()), Some(ext)) if self.record => self.received_ext.push(ext.to_vec()),
                (Ok(()), _) => {}
                (Err(e), block) => {
                    self.rx_errors.push(e);
                    if let Some(b) = block {
                        self.discarded_ext.push(b.to_vec());
                    }
                }
            }
        }
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
        let mut out = Vec::new();
        let mut buf = [0u8; 320];
        while let Some(n) = self.session.poll_transmit(now, &self.ext, &mut buf) {
            if self.record {
                let p = ControlPacket::new_checked(&buf[..n]).expect("we emit valid packets");
                let repr = ControlRepr::parse(&p).expect("we emit valid sections");
                self.sent.push(Sent { at: now, repr });
                self.sent_bytes.push(buf[..n].to_vec());
            }
            out.push(buf[..n].to_vec());
        }
        while let Some(ev) = self.session.poll_event() {
            self.events.push((now, ev));
        }
        out
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let arrival = self.inbound.front().map(|(at, _)| *at);
        [self.session.poll_timeout(), arrival]
            .into_iter()
            .flatten()
            .min()
    }

    fn state_changes(&self) -> Vec<(State, State, Diagnostic)> {
        self.events
            .iter()
            .filter_map(|(_, e)| match *e {
                BfdEvent::StateChanged { from, to, diag } => Some((from, to, diag)),
                _ => None,
            })
            .collect()
    }

    fn first_event_after(&self, t: Instant, f: impl Fn(&BfdEvent) -> bool) -> Option<Instant> {
        self.events
            .iter()
            .find(|(at, e)| *at >= t && f(e))
            .map(|(at, _)| *at)
    }

    /// Gaps between consecutive periodic packets (not Finals) sent in `[from, to]`.
    fn periodic_gaps(&self, from: Instant, to: Instant) -> Vec<Duration> {
        let times: Vec<Instant> = self
            .sent
            .iter()
            .filter(|s| s.at >= from && s.at <= to && !s.repr.final_)
            .map(|s| s.at)
            .collect();
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

/// One direction of the wire.
#[derive(Default)]
struct Link {
    latency: Duration,
    /// Random loss, per mille.
    loss_per_mille: u64,
    /// Drop everything.
    blackhole: bool,
    /// Rewrite each packet in flight.
    mangle: Option<fn(&mut [u8])>,
}

struct Pair {
    time: Instant,
    a: Endpoint,
    b: Endpoint,
    a_to_b: Link,
    b_to_a: Link,
    rng: u64,
}

impl Pair {
    fn new(cfg_a: BfdConfig, cfg_b: BfdConfig) -> Self {
        let time = Instant::from_nanos(1_000_000_000);
        let latency = ms(10);
        Pair {
            time,
            a: Endpoint::new(0xa, cfg_a, 1, time, block(b'a')),
            b: Endpoint::new(0xb, cfg_b, 2, time, block(b'b')),
            a_to_b: Link {
                latency,
                ..Link::default()
            },
            b_to_a: Link {
                latency,
                ..Link::default()
            },
            rng: 0x1234_5678_9abc_def1,
        }
    }

    fn default_pair() -> Self {
        Pair::new(BfdConfig::default(), BfdConfig::default())
    }

    fn random_per_mille(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % 1000
    }

    fn send(&mut self, packets: Vec<Vec<u8>>, a_to_b: bool) {
        for mut p in packets {
            let roll = self.random_per_mille();
            let (link, to) = if a_to_b {
                (&self.a_to_b, &mut self.b)
            } else {
                (&self.b_to_a, &mut self.a)
            };
            if link.blackhole || roll < link.loss_per_mille {
                continue;
            }
            if let Some(m) = link.mangle {
                m(&mut p);
            }
            to.inbound.push_back((self.time + link.latency, p));
        }
    }

    /// Runs both endpoints at the current time until neither has more to do.
    fn drive(&mut self) {
        for _ in 0..100 {
            let from_a = self.a.drive(self.time);
            let from_b = self.b.drive(self.time);
            let idle = from_a.is_empty() && from_b.is_empty();
            self.send(from_a, true);
            self.send(from_b, false);
            let due = |e: &Endpoint| e.next_wakeup().is_some_and(|t| t <= self.time);
            if idle && !due(&self.a) && !due(&self.b) {
                return;
            }
        }
        panic!("livelock at {}", self.time);
    }

    fn next_wakeup(&self) -> Option<Instant> {
        [self.a.next_wakeup(), self.b.next_wakeup()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Jumps to the earliest deadline or arrival and runs it.
    fn step(&mut self) -> bool {
        self.drive();
        match self.next_wakeup() {
            Some(t) => {
                self.time = self.time.max(t);
                self.drive();
                true
            }
            None => false,
        }
    }

    /// Runs everything that happens in the next `d`, ending exactly at `time + d`.
    fn run_for(&mut self, d: Duration) {
        let end = self.time + d;
        self.drive();
        while let Some(t) = self.next_wakeup().filter(|t| *t <= end) {
            self.time = self.time.max(t);
            self.drive();
        }
        self.time = end;
        self.drive();
    }

    /// Steps until `cond` holds; false if it does not within `limit`.
    fn run_until(&mut self, limit: Duration, cond: impl Fn(&Pair) -> bool) -> bool {
        let end = self.time + limit;
        self.drive();
        while !cond(self) {
            if !self.step() || self.time > end {
                return false;
            }
        }
        true
    }

    fn both_up(&self) -> bool {
        self.a.session.state() == State::Up && self.b.session.state() == State::Up
    }

    /// Brings the pair Up and lets any Poll Sequence finish.
    fn establish(&mut self) {
        assert!(self.run_until(Duration::from_secs(10), Pair::both_up));
        assert!(self.run_until(Duration::from_secs(10), |p| {
            !p.a.session.poll_in_progress() && !p.b.session.poll_in_progress()
        }));
    }
}

#[test]
fn three_way_handshake_reaches_up_on_both_sides() {
    let mut pair = Pair::default_pair();
    let start = pair.time;
    assert!(pair.run_until(Duration::from_secs(5), Pair::both_up));
    // Both send Down at once; each sees the other's Down → Init; each sees Init → Up.
    let up = [
        (State::Down, State::Init, Diagnostic::NoDiagnostic),
        (State::Init, State::Up, Diagnostic::NoDiagnostic),
    ];
    assert_eq!(pair.a.state_changes(), up);
    assert_eq!(pair.b.state_changes(), up);
    for ep in [&pair.a, &pair.b] {
        assert!(ep.events.iter().any(|(_, e)| *e == BfdEvent::PathUp));
        assert!(ep.rx_errors.is_empty());
    }
    // Within one slow interval and two latencies.
    assert!(pair.time - start <= ms(1000) + ms(20));
    assert_eq!(pair.a.session.remote_discriminator(), 0xb);
    assert_eq!(pair.b.session.remote_discriminator(), 0xa);
    // Defaults: one packet a second, down after 3 s.
    assert_eq!(pair.a.session.tx_interval(), Some(ms(1000)));
    assert_eq!(pair.a.session.detection_time(), Some(ms(3000)));
}

#[test]
fn one_side_late_still_completes_handshake() {
    // B's first packets are lost; A goes Init only when B is heard.
    let mut pair = Pair::default_pair();
    pair.b_to_a.blackhole = true;
    pair.run_for(Duration::from_secs(5));
    assert_eq!(pair.a.session.state(), State::Down);
    assert_eq!(pair.b.session.state(), State::Init);
    pair.b_to_a.blackhole = false;
    assert!(pair.run_until(Duration::from_secs(3), Pair::both_up));
}

#[test]
fn slow_tx_before_up_then_negotiated_rate() {
    let fast = BfdConfig {
        desired_tx: ms(100),
        required_min_rx: ms(50),
        detect_mult: 3,
    };
    let mut pair = Pair::new(fast, fast);
    // A is not heard by B: nobody reaches Up for 20 s.
    pair.a_to_b.blackhole = true;
    pair.run_for(Duration::from_secs(20));
    assert_ne!(pair.a.session.state(), State::Up);
    let start = pair.a.sent[0].at;
    let gaps = pair.a.periodic_gaps(start, pair.time);
    assert!(gaps.len() >= 19, "{} packets", gaps.len());
    for g in &gaps {
        assert!(*g >= ms(750) && *g <= ms(1000), "gap {g:?} before Up");
    }
    assert!(pair
        .a
        .sent
        .iter()
        .all(|s| s.repr.desired_min_tx == 1_000_000 && s.repr.required_min_rx == 50_000));

    pair.a_to_b.blackhole = false;
    let t_up_search = pair.time;
    pair.establish();
    let t_up = pair
        .a
        .first_event_after(t_up_search, |e| *e == BfdEvent::PathUp)
        .unwrap();
    // The first periodic packet after Up advertises 100 ms with a Poll (§6.8.3).
    let first = pair
        .a
        .sent
        .iter()
        .find(|s| s.at >= t_up && !s.repr.final_)
        .unwrap();
    assert!(first.repr.poll);
    assert_eq!(first.repr.desired_min_tx, 100_000);
    assert_eq!(pair.a.session.tx_interval(), Some(ms(100)));

    let t0 = pair.time;
    pair.run_for(Duration::from_secs(5));
    let gaps = pair.a.periodic_gaps(t0, pair.time);
    assert!(gaps.len() >= 49);
    for g in &gaps {
        assert!(*g >= ms(75) && *g <= ms(100), "gap {g:?} after Up");
    }
}

#[test]
fn asymmetric_timers_are_negotiated() {
    let cfg_a = BfdConfig {
        desired_tx: ms(100),
        required_min_rx: ms(300),
        detect_mult: 3,
    };
    let cfg_b = BfdConfig {
        desired_tx: ms(200),
        required_min_rx: ms(50),
        detect_mult: 4,
    };
    let mut pair = Pair::new(cfg_a, cfg_b);
    pair.establish();
    let (a, b) = (&pair.a.session, &pair.b.session);
    // TX = max(own desired TX, peer's required min RX).
    assert_eq!(a.tx_interval(), Some(ms(100)));
    assert_eq!(b.tx_interval(), Some(ms(300)));
    // Detection = peer's mult × max(own required min RX, peer's desired TX).
    assert_eq!(a.detection_time(), Some(ms(300) * 4));
    assert_eq!(b.detection_time(), Some(ms(100) * 3));

    let t0 = pair.time;
    pair.run_for(Duration::from_secs(10));
    for g in pair.a.periodic_gaps(t0, pair.time) {
        assert!(g >= ms(75) && g <= ms(100), "A gap {g:?}");
    }
    for g in pair.b.periodic_gaps(t0, pair.time) {
        assert!(g >= ms(225) && g <= ms(300), "B gap {g:?}");
    }
    assert!(pair.a.events.iter().all(|(_, e)| *e
        != BfdEvent::PathDown {
            diag: Diagnostic::ControlDetectionTimeExpired
        }));
}

#[test]
fn total_loss_is_detected_within_the_detection_time() {
    let mut pair = Pair::default_pair();
    pair.establish();
    pair.run_for(Duration::from_secs(30));
    let t0 = pair.time;
    pair.a_to_b.blackhole = true;
    pair.b_to_a.blackhole = true;
    pair.run_for(Duration::from_secs(10));

    let lat = pair.b_to_a.latency;
    for (ep, peer_cfg) in [
        (&pair.a, pair.b.session.config()),
        (&pair.b, pair.a.session.config()),
    ] {
        let down = ep
            .first_event_after(t0, |e| {
                *e == BfdEvent::PathDown {
                    diag: Diagnostic::ControlDetectionTimeExpired,
                }
            })
            .expect("path went down");
        // Detection = 3 × max(500 ms, 1000 ms) = 3 s after the last packet heard. That
        // packet was sent at most one peer TX interval (1 s, jitter only shortens it)
        // before the cut and arrived one latency later.
        let detect = ms(1000) * u32::from(peer_cfg.detect_mult);
        let peer_interval = ms(1000);
        assert!(
            down >= t0 + detect - peer_interval + lat,
            "down at {down}, cut at {t0}"
        );
        assert!(down <= t0 + detect + lat, "down at {down}, cut at {t0}");
        assert_eq!(ep.session.state(), State::Down);
        assert_eq!(
            ep.session.local_diag(),
            Diagnostic::ControlDetectionTimeExpired
        );
        // The peer is forgotten (§6.8.1).
        assert_eq!(ep.session.remote_discriminator(), 0);
    }
    // Packets keep going out at the slow rate while Down.
    let sent_before = pair.a.session.stats().tx_packets;
    pair.run_for(Duration::from_secs(10));
    let n = pair.a.session.stats().tx_packets - sent_before;
    assert!((10..=14).contains(&n), "{n} packets in 10 s");

    // The link comes back: Up again, no operator action.
    pair.a_to_b.blackhole = false;
    pair.b_to_a.blackhole = false;
    assert!(pair.run_until(Duration::from_secs(3), Pair::both_up));
}

#[test]
fn peer_restart_recovers_without_operator() {
    let mut pair = Pair::default_pair();
    pair.establish();
    pair.run_for(Duration::from_secs(5));
    let t0 = pair.time;
    // B restarts: new session, new discriminator, same path. Packets in flight to the old
    // B arrive at the new one.
    let inflight = std::mem::take(&mut pair.b.inbound);
    pair.b = Endpoint::new(0xb2, BfdConfig::default(), 99, t0, block(b'B'));
    pair.b.inbound = inflight;
    assert!(pair.run_until(Duration::from_secs(8), Pair::both_up));
    // A does not believe a Down that names no session (Your Discriminator 0: anyone could
    // send it) while Up; the new B's silence towards the old session takes A down after
    // the Detection Time; then a fresh handshake (Down → Init → Up, or Down → Up if B
    // reached Init first).
    let events: Vec<_> = pair
        .a
        .events
        .iter()
        .filter(|(at, _)| *at >= t0)
        .map(|(_, e)| *e)
        .collect();
    assert_eq!(
        events[..2],
        [
            BfdEvent::StateChanged {
                from: State::Up,
                to: State::Down,
                diag: Diagnostic::ControlDetectionTimeExpired
            },
            BfdEvent::PathDown {
                diag: Diagnostic::ControlDetectionTimeExpired
            },
        ]
    );
    assert!(
        pair.a
            .session
            .stats()
            .discarded(BfdError::UnselectedInSession)
            >= 1
    );
    assert_eq!(events.last(), Some(&BfdEvent::PathUp));
    assert!(events.len() <= 5);
    // The new B saw the old B's in-flight packets as addressed to someone else.
    assert!(pair
        .b
        .rx_errors
        .iter()
        .all(|e| *e == BfdError::DiscriminatorMismatch));
    assert_eq!(pair.a.session.remote_discriminator(), 0xb2);
    // Stay up.
    pair.run_for(Duration::from_secs(60));
    assert!(pair.both_up());
}

#[test]
fn set_config_runs_a_poll_sequence() {
    let mut pair = Pair::default_pair();
    pair.establish();
    pair.run_for(Duration::from_millis(1234));

    // Faster: takes effect at once; the Poll still runs.
    let t0 = pair.time;
    let faster = BfdConfig {
        desired_tx: ms(300),
        ..BfdConfig::default()
    };
    pair.a.session.set_config(t0, faster);
    assert!(pair.a.session.poll_in_progress());
    assert!(pair.run_until(Duration::from_secs(3), |p| !p.a.session.poll_in_progress()));
    let poll = *pair
        .a
        .sent
        .iter()
        .find(|s| s.at >= t0)
        .expect("a packet after set_config");
    assert!(poll.repr.poll && !poll.repr.final_);
    assert_eq!(poll.repr.desired_min_tx, 300_000);
    // B answered with a Final as soon as the Poll arrived, outside its own schedule.
    let fin = *pair
        .b
        .sent
        .iter()
        .find(|s| s.at >= t0 && s.repr.final_)
        .unwrap();
    assert_eq!(fin.at, poll.at + pair.a_to_b.latency);
    assert!(!fin.repr.poll);
    assert_eq!(pair.a.session.stats().polls_completed, 1);
    // A's TX is max(300 ms, B's 500 ms); B detects at 3 × max(500 ms, 300 ms).
    assert_eq!(pair.a.session.tx_interval(), Some(ms(500)));
    assert_eq!(pair.b.session.detection_time(), Some(ms(1500)));
    // Later packets carry no Poll.
    pair.run_for(Duration::from_secs(3));
    assert!(pair
        .a
        .sent
        .iter()
        .filter(|s| s.at > fin.at + pair.b_to_a.latency)
        .all(|s| !s.repr.poll));

    // Slower: the old interval stays in use until the Final arrives (§6.8.3). Hold B's
    // answers back for 1.4 s, less than A's 3 s detection time.
    let t1 = pair.time;
    pair.b_to_a.blackhole = true;
    let slower = BfdConfig {
        desired_tx: ms(2000),
        ..BfdConfig::default()
    };
    pair.a.session.set_config(t1, slower);
    pair.run_for(Duration::from_millis(1400));
    assert!(pair.a.session.poll_in_progress());
    assert_eq!(pair.a.session.tx_interval(), Some(ms(500)));
    let polls: Vec<_> = pair.a.sent.iter().filter(|s| s.at > t1).collect();
    assert!(polls.len() >= 2);
    assert!(polls
        .iter()
        .all(|s| s.repr.poll && s.repr.desired_min_tx == 2_000_000));
    // B already uses the new, longer detection time from the first Poll it saw.
    assert_eq!(pair.b.session.detection_time(), Some(ms(6000)));
    pair.b_to_a.blackhole = false;
    assert!(pair.run_until(Duration::from_secs(2), |p| !p.a.session.poll_in_progress()));
    assert_eq!(pair.a.session.tx_interval(), Some(ms(2000)));
    let t2 = pair.time;
    pair.run_for(Duration::from_secs(20));
    for g in pair.a.periodic_gaps(t2, pair.time).into_iter().skip(1) {
        assert!(g >= ms(1500) && g <= ms(2000), "gap {g:?}");
    }
    assert!(pair.both_up());
    assert_eq!(pair.a.state_changes().len(), 2, "no flap");
}

#[test]
fn admin_down_holds_the_peer_down_and_recovers() {
    let mut pair = Pair::default_pair();
    pair.establish();
    let t0 = pair.time;
    pair.a.session.set_admin_down(t0, true);
    pair.run_for(Duration::from_secs(10));
    assert_eq!(pair.a.session.state(), State::AdminDown);
    assert_eq!(
        pair.a.state_changes().last(),
        Some(&(
            State::Up,
            State::AdminDown,
            Diagnostic::AdministrativelyDown
        ))
    );
    // The AdminDown packet went out at once; B followed one latency later, not by timeout.
    let b_down = pair
        .b
        .first_event_after(t0, |e| {
            *e == BfdEvent::PathDown {
                diag: Diagnostic::NeighborSignaledSessionDown,
            }
        })
        .unwrap();
    assert_eq!(b_down, t0 + pair.a_to_b.latency);
    // B stays Down (not Init) while A says AdminDown; A discards what B sends.
    assert_eq!(pair.b.session.state(), State::Down);
    assert_eq!(pair.b.state_changes().len(), 3);
    assert!(pair.a.session.stats().discarded(BfdError::AdminDown) >= 5);
    assert!(pair.a.sent.iter().filter(|s| s.at >= t0).all(|s| {
        s.repr.state == State::AdminDown && s.repr.diag == Diagnostic::AdministrativelyDown
    }));

    let t1 = pair.time;
    pair.a.session.set_admin_down(t1, false);
    assert!(pair.run_until(Duration::from_secs(3), Pair::both_up));
    assert_eq!(
        pair.a.state_changes()[3..],
        [
            (State::AdminDown, State::Down, Diagnostic::NoDiagnostic),
            (State::Down, State::Up, Diagnostic::NoDiagnostic),
        ]
    );
}

/// Rewrites a nonzero Your Discriminator to a value that selects no session.
fn wrong_your_discriminator(p: &mut [u8]) {
    if p[8..12] != [0; 4] {
        p[8..12].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    }
}

#[test]
fn wrong_your_discriminator_is_ignored() {
    let mut pair = Pair::default_pair();
    pair.b_to_a.mangle = Some(wrong_your_discriminator);
    pair.run_for(Duration::from_secs(30));
    // A hears only B's first Down packet(s) (Your Discriminator 0) and stays short of Up.
    assert_ne!(pair.a.session.state(), State::Up);
    assert!(pair.a.events.iter().all(|(_, e)| *e != BfdEvent::PathUp));
    let mismatches = pair
        .a
        .session
        .stats()
        .discarded(BfdError::DiscriminatorMismatch);
    assert!(mismatches >= 25, "{mismatches}");

    // On an Up session a forged packet with the wrong Your Discriminator changes nothing.
    let mut pair = Pair::default_pair();
    pair.establish();
    let forged = ControlRepr {
        diag: Diagnostic::NoDiagnostic,
        state: State::Down,
        poll: true,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: 0xb,
        your_discriminator: 0xa + 1,
        desired_min_tx: 1_000_000,
        required_min_rx: 1,
        required_min_echo_rx: 0,
        auth: None,
    };
    let mut buf = [0u8; 24];
    forged.emit(&mut ControlPacket::new_unchecked(&mut buf[..]));
    let now = pair.time;
    let a = &mut pair.a.session;
    let events_before = pair.a.events.len();
    assert_eq!(
        a.handle_packet(now, &buf).outcome,
        Err(BfdError::DiscriminatorMismatch)
    );
    assert_eq!(a.state(), State::Up);
    assert_eq!(a.poll_event(), None);
    assert_eq!(a.tx_interval(), Some(ms(1000)));
    let mut out = [0u8; 64];
    assert_eq!(
        a.poll_transmit(now, &[], &mut out),
        None,
        "no Final for a forged Poll"
    );
    assert_eq!(pair.a.events.len(), events_before);
}

#[test]
fn a_day_of_steady_up_in_virtual_time() {
    let mut pair = Pair::default_pair();
    pair.establish();
    pair.a.record = false;
    pair.b.record = false;
    let before = (
        pair.a.session.stats().tx_packets,
        pair.b.session.stats().tx_packets,
    );
    let changes = pair.a.session.stats().state_changes;
    let day = Duration::from_secs(24 * 3600);
    pair.run_for(day);
    assert!(pair.both_up());
    // No loss: every packet B ever sent was accepted by A or is still in flight.
    assert_eq!(
        pair.a.session.stats().rx_accepted + pair.a.inbound.len() as u64,
        pair.b.session.stats().tx_packets
    );
    assert_eq!(pair.a.session.stats().state_changes, changes);
    for (ep, before) in [(&pair.a, before.0), (&pair.b, before.1)] {
        let n = ep.session.stats().tx_packets - before;
        // Jitter keeps each gap within 75-100 % of 1 s.
        assert!((86_400..=115_200).contains(&n), "{n} packets");
        // Uniform jitter averages 87.5 %: 98 743 packets, give or take 1 %.
        assert!((97_755..=99_731).contains(&n), "{n} packets");
        assert_eq!(
            ep.session
                .stats()
                .discarded(BfdError::DiscriminatorMismatch),
            0
        );
    }
}

#[test]
fn extension_blocks_round_trip() {
    let mut pair = Pair::default_pair();
    pair.establish();
    pair.run_for(Duration::from_secs(5));
    assert!(!pair.a.received_ext.is_empty());
    assert!(pair.a.received_ext.iter().all(|e| *e == block(b'b')));
    assert!(pair.b.received_ext.iter().all(|e| *e == block(b'a')));
    assert_eq!(
        pair.b.received_ext.len() as u64,
        pair.b.session.stats().rx_accepted
    );

    // The key layer has a message now: it rides at once, off the periodic schedule.
    pair.run_for(Duration::from_millis(321));
    let t = pair.time;
    pair.a.ext = block(b'k');
    pair.a.session.request_transmit();
    pair.run_for(pair.a_to_b.latency);
    assert_eq!(pair.b.received_ext.last(), Some(&block(b'k')));
    assert_eq!(pair.a.sent.last().unwrap().at, t);

    // No block: nothing after the control packet.
    pair.a.ext.clear();
    let n = pair.b.received_ext.len();
    pair.run_for(Duration::from_secs(5));
    assert_eq!(pair.b.received_ext.len(), n);
    assert!(pair.both_up());
}

#[test]
fn survives_random_loss_and_latency() {
    let cfg = BfdConfig {
        detect_mult: 5,
        ..BfdConfig::default()
    };
    let mut pair = Pair::new(cfg, cfg);
    for link in [&mut pair.a_to_b, &mut pair.b_to_a] {
        link.loss_per_mille = 100;
        link.latency = ms(80);
    }
    assert!(pair.run_until(Duration::from_secs(30), Pair::both_up));
    let t0 = pair.time;
    pair.run_for(Duration::from_secs(600));
    assert!(pair.both_up());
    assert!(pair
        .a
        .first_event_after(t0, |e| matches!(e, BfdEvent::PathDown { .. }))
        .is_none());
    assert!(pair.a.session.stats().rx_accepted < pair.b.session.stats().tx_packets);
}

#[test]
fn detect_mult_one_jitters_at_most_ninety_percent() {
    let cfg = BfdConfig {
        detect_mult: 1,
        desired_tx: ms(1000),
        required_min_rx: ms(1000),
    };
    let mut pair = Pair::new(cfg, cfg);
    pair.establish();
    let t0 = pair.time;
    pair.run_for(Duration::from_secs(300));
    let gaps = pair.a.periodic_gaps(t0, pair.time);
    assert!(gaps.len() > 300);
    for g in gaps {
        assert!(g >= ms(750) && g <= ms(900), "gap {g:?}");
    }
    assert!(pair.both_up());
}

// ---- RFC 5880 authentication (Meticulous Keyed HMAC-SHA256) and §6.8.6 hardening ----

fn key(id: u8) -> AuthKey {
    AuthKey::new(id, [id.wrapping_mul(0x3b) ^ 0x5a; 32])
}

/// Both sides sign with key 1 and accept only key 1 from the start.
fn keyed_pair() -> Pair {
    let mut pair = Pair::default_pair();
    for ep in [&mut pair.a, &mut pair.b] {
        ep.session.set_auth_keys(Some(key(1)), vec![key(1)]);
    }
    pair
}

/// A packet "from B to A" built by hand: `secret` signs it when given.
fn forged(state: State, your: u32, auth: Option<(u8, u32, &[u8; 32])>) -> Vec<u8> {
    let repr = ControlRepr {
        diag: Diagnostic::NoDiagnostic,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: 0xb,
        your_discriminator: your,
        desired_min_tx: 1_000_000,
        required_min_rx: 500_000,
        required_min_echo_rx: 0,
        auth: auth.map(|(key_id, sequence, _)| AuthRepr { key_id, sequence }),
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ControlPacket::new_unchecked(&mut buf[..]));
    if let Some((_, _, secret)) = auth {
        assert!(auth::sign(&mut buf, &[], secret));
    }
    buf
}

/// Feeds `bytes` to A directly and checks it was discarded for `reason` without any
/// effect on A's state, events or transmissions.
fn assert_discarded_by_a(pair: &mut Pair, bytes: &[u8], reason: BfdError) {
    let now = pair.time;
    let a = &mut pair.a.session;
    let (state, remote, before) = (
        a.state(),
        a.remote_discriminator(),
        a.stats().discarded(reason),
    );
    let timeout = a.poll_timeout();
    let r = a.handle_packet(now, bytes);
    assert_eq!(r.outcome, Err(reason));
    assert_eq!(a.stats().discarded(reason), before + 1);
    assert_eq!((a.state(), a.remote_discriminator()), (state, remote));
    assert_eq!(a.poll_event(), None);
    assert_eq!(a.poll_timeout(), timeout);
    let mut out = [0u8; 128];
    assert_eq!(a.poll_transmit(now, &[], &mut out), None);
}

#[test]
fn authenticated_pair_reaches_up_and_stays_up_for_an_hour() {
    let mut pair = keyed_pair();
    pair.establish();
    let t0 = pair.time;
    pair.run_for(Duration::from_secs(3600));
    assert!(pair.both_up());
    for ep in [&pair.a, &pair.b] {
        assert!(
            ep.rx_errors.is_empty(),
            "{:?}",
            &ep.rx_errors[..5.min(ep.rx_errors.len())]
        );
        assert_eq!(ep.state_changes().len(), 2, "no flap");
        // Every packet is signed with key 1, numbered one more than the one before.
        assert!(ep.sent.len() > 3000);
        for w in ep.sent.windows(2) {
            let (x, y) = (w[0].repr.auth.unwrap(), w[1].repr.auth.unwrap());
            assert_eq!((x.key_id, y.key_id), (1, 1));
            assert_eq!(y.sequence, x.sequence.wrapping_add(1));
        }
        assert!(ep
            .sent_bytes
            .iter()
            .all(|b| b.len() == 64 + block(b'a').len()));
    }
    // Blocks still ride behind the authenticated packet.
    assert!(pair.a.received_ext.iter().all(|e| *e == block(b'b')));
    assert!(pair
        .a
        .first_event_after(t0, |e| matches!(e, BfdEvent::PathDown { .. }))
        .is_none());
    // The two sides started at different (random) sequence numbers.
    assert_ne!(
        pair.a.sent[0].repr.auth.unwrap().sequence,
        pair.b.sent[0].repr.auth.unwrap().sequence
    );
}

#[test]
fn spoofed_down_and_admin_down_do_not_take_an_authenticated_session_down() {
    let mut pair = keyed_pair();
    pair.establish();
    pair.run_for(Duration::from_secs(10));
    let wrong = [0x77u8; 32];
    let next_seq = pair
        .b
        .sent
        .last()
        .unwrap()
        .repr
        .auth
        .unwrap()
        .sequence
        .wrapping_add(1);
    for state in [State::Down, State::AdminDown] {
        // Your Discriminator 0: names no session.
        assert_discarded_by_a(
            &mut pair,
            &forged(state, 0, None),
            BfdError::UnselectedInSession,
        );
        // Copied Your Discriminator, no authentication.
        assert_discarded_by_a(&mut pair, &forged(state, 0xa, None), BfdError::AuthMissing);
        // Signed with a wrong secret under the right key id.
        let p = forged(state, 0xa, Some((1, next_seq, &wrong)));
        assert_discarded_by_a(&mut pair, &p, BfdError::BadAuthDigest);
        // An unknown key id.
        let p = forged(state, 0xa, Some((9, next_seq, &wrong)));
        assert_discarded_by_a(&mut pair, &p, BfdError::UnknownAuthKey);
        // Some other session's discriminator.
        let p = forged(state, 0xa + 1, None);
        assert_discarded_by_a(&mut pair, &p, BfdError::DiscriminatorMismatch);
    }
    // Two spoofed packets a second for a minute, interleaved with the real traffic.
    for i in 0..120u32 {
        pair.run_for(ms(500));
        let now = pair.time;
        let state = if i % 2 == 0 {
            State::Down
        } else {
            State::AdminDown
        };
        let p = forged(state, if i % 3 == 0 { 0 } else { 0xa }, None);
        assert!(pair.a.session.handle_packet(now, &p).outcome.is_err());
    }
    pair.run_for(Duration::from_secs(5));
    assert!(pair.both_up());
    assert_eq!(pair.a.state_changes().len(), 2, "never left Up");
    let st = pair.a.session.stats();
    assert!(st.discarded(BfdError::AuthMissing) >= 80);
    assert!(st.discarded(BfdError::UnselectedInSession) >= 40);
}

#[test]
fn replayed_genuine_packets_are_dropped() {
    let mut pair = keyed_pair();
    pair.establish();
    pair.run_for(Duration::from_secs(5));
    // Everything B ever sent, replayed: the latest (a duplicate) and every older one.
    let captured = pair.b.sent_bytes.clone();
    let n = captured.len();
    assert_discarded_by_a(&mut pair, &captured[n - 1], BfdError::AuthReplay);
    for p in captured.iter().rev() {
        // Old packets with Your Discriminator 0 stop earlier, at the discriminator rule.
        let r = pair.a.session.handle_packet(pair.time, p).outcome;
        assert!(
            matches!(r, Err(BfdError::AuthReplay | BfdError::UnselectedInSession)),
            "{r:?}"
        );
    }
    assert!(pair.a.session.stats().discarded(BfdError::AuthReplay) as usize >= n - 2);
    pair.run_for(Duration::from_secs(5));
    assert!(pair.both_up());
    assert_eq!(pair.a.state_changes().len(), 2);
}

#[test]
fn a_replay_after_a_sequence_reset_cannot_take_an_up_session_down() {
    // A reaches Up before it has keys (packets accepted unverified), then gets B's key: no
    // sequence number is known. A genuine old Down signed by B (captured earlier) passes the
    // digest, but may not take A down.
    let mut pair = Pair::default_pair();
    pair.b.session.set_auth_keys(Some(key(1)), vec![]);
    pair.establish();
    pair.run_for(Duration::from_secs(3));
    pair.a.session.set_auth_keys(Some(key(1)), vec![key(1)]);
    let old = forged(State::Down, 0xa, Some((1, 5, &key(1).secret)));
    assert_discarded_by_a(&mut pair, &old, BfdError::UnverifiedSequenceDown);
    // The real packets keep it Up and set the sequence number.
    pair.run_for(Duration::from_secs(30));
    assert!(pair.both_up());
    assert!(pair.a.rx_errors.is_empty());
    assert_eq!(pair.a.state_changes().len(), 2);
}

#[test]
fn required_min_rx_zero_and_demand_never_silence_our_transmissions() {
    let mut pair = keyed_pair();
    pair.establish();
    pair.run_for(Duration::from_secs(2));
    let mut seq = pair.b.sent.last().unwrap().repr.auth.unwrap().sequence;
    for (rx, demand, reason) in [
        (0, false, BfdError::ZeroRequiredMinRx),
        (500_000, true, BfdError::DemandMode),
    ] {
        // Even signed with the real key (a peer that misbehaves) and in sequence.
        seq = seq.wrapping_add(1000);
        let repr = ControlRepr {
            demand,
            required_min_rx: rx,
            auth: Some(AuthRepr {
                key_id: 1,
                sequence: seq,
            }),
            ..ControlRepr::parse(
                &ControlPacket::new_checked(&forged(State::Up, 0xa, None)[..]).unwrap(),
            )
            .unwrap()
        };
        let mut p = vec![0u8; 64];
        repr.emit(&mut ControlPacket::new_unchecked(&mut p[..]));
        assert!(auth::sign(&mut p, &[], &key(1).secret));
        assert_discarded_by_a(&mut pair, &p, reason);
    }
    let before = pair.a.session.stats().tx_packets;
    pair.run_for(Duration::from_secs(10));
    let n = pair.a.session.stats().tx_packets - before;
    assert!((10..=14).contains(&n), "{n} packets in 10 s");
    assert_eq!(pair.a.session.tx_interval(), Some(ms(1000)));
    assert!(pair.both_up());
}

#[test]
fn key_rotation_keeps_the_session_up() {
    let mut pair = keyed_pair();
    pair.establish();
    pair.run_for(Duration::from_secs(10));
    // The new peer key is confirmed: both accept keys 1 and 2, still send 1.
    for ep in [&mut pair.a, &mut pair.b] {
        ep.session.set_auth_keys(Some(key(1)), vec![key(1), key(2)]);
    }
    pair.run_for(Duration::from_secs(30));
    // A switches first (its grace ended earlier), B 5 s later.
    pair.a
        .session
        .set_auth_keys(Some(key(2)), vec![key(1), key(2)]);
    pair.run_for(Duration::from_secs(5));
    pair.b
        .session
        .set_auth_keys(Some(key(2)), vec![key(1), key(2)]);
    pair.run_for(Duration::from_secs(30));
    // The old key is dropped after the grace.
    for ep in [&mut pair.a, &mut pair.b] {
        ep.session.set_auth_keys(Some(key(2)), vec![key(2)]);
    }
    pair.run_for(Duration::from_secs(60));
    assert!(pair.both_up());
    for ep in [&pair.a, &pair.b] {
        assert!(ep.rx_errors.is_empty(), "{:?}", ep.rx_errors);
        assert_eq!(ep.state_changes().len(), 2, "no flap");
        assert_eq!(ep.sent.last().unwrap().repr.auth.unwrap().key_id, 2);
        // The sequence runs on across the key change.
        for w in ep.sent.windows(2) {
            let (x, y) = (w[0].repr.auth.unwrap(), w[1].repr.auth.unwrap());
            assert_eq!(y.sequence, x.sequence.wrapping_add(1));
        }
    }
    // A packet under the retired key is now refused.
    let seq = pair
        .b
        .sent
        .last()
        .unwrap()
        .repr
        .auth
        .unwrap()
        .sequence
        .wrapping_add(1);
    let old = forged(State::Up, 0xa, Some((1, seq, &key(1).secret)));
    assert_discarded_by_a(&mut pair, &old, BfdError::UnknownAuthKey);
}

#[test]
fn the_block_of_an_unauthenticated_packet_still_reaches_key_management() {
    let mut pair = keyed_pair();
    pair.establish();
    pair.run_for(Duration::from_secs(5));
    let t0 = pair.time;
    // B restarts and has no keys yet: unauthenticated BFD, a clear key-exchange block.
    let inflight = std::mem::take(&mut pair.b.inbound);
    pair.b = Endpoint::new(0xb2, BfdConfig::default(), 99, t0, block(b'R'));
    pair.b.inbound = inflight;
    pair.run_for(Duration::from_secs(10));
    // A discards the BFD part but hands every block to the key layer.
    assert!(!pair.a.discarded_ext.is_empty());
    assert!(pair.a.discarded_ext.iter().all(|e| *e == block(b'R')));
    assert!(pair
        .a
        .rx_errors
        .iter()
        .all(|e| matches!(e, BfdError::AuthMissing | BfdError::UnselectedInSession)));
    assert!(pair.a.session.stats().discarded(BfdError::AuthMissing) >= 5);
    // A went Down by detection time, not by B's word, and stays Down without keys.
    assert_ne!(pair.a.session.state(), State::Up);
    assert_eq!(
        pair.a.state_changes()[2],
        (
            State::Up,
            State::Down,
            Diagnostic::ControlDetectionTimeExpired
        )
    );
    // The key exchange completes: B gets the new key, A accepts it; Up again.
    pair.b.session.set_auth_keys(Some(key(3)), vec![key(3)]);
    pair.a.session.set_auth_keys(Some(key(3)), vec![key(3)]);
    assert!(pair.run_until(Duration::from_secs(5), Pair::both_up));
}

#[test]
fn without_accept_keys_signed_and_unsigned_packets_both_drive_the_session() {
    let mut pair = Pair::default_pair();
    // Only B signs; A has no key yet and accepts B's signed packets unverified.
    pair.b.session.set_auth_keys(Some(key(4)), vec![]);
    pair.establish();
    assert!(pair.a.rx_errors.is_empty() && pair.b.rx_errors.is_empty());
    assert!(pair.b.sent.iter().all(|s| s.repr.auth.is_some()));
    assert!(pair.a.sent.iter().all(|s| s.repr.auth.is_none()));
    assert!(!pair.a.session.auth_required());
    assert_eq!(pair.b.session.send_key_id(), Some(4));
}
