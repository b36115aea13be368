//! One BFD session on one peer path: RFC 5880 asynchronous mode, sans-IO.

use std::collections::VecDeque;
use std::time::Duration;

use fastpath::time::Instant;
use zeroize::Zeroizing;

use crate::auth::{self, AuthRepr, SECRET_LEN};
use crate::error::BfdError;
use crate::packet::{ControlPacket, ControlRepr, Diagnostic, State, CONTROL_LEN};

/// RFC 5880 §6.8.3: while the session is not Up, bfd.DesiredMinTxInterval is at least one
/// second.
pub const SLOW_TX_INTERVAL: Duration = Duration::from_secs(1);

/// Initial bfd.RemoteMinRxInterval (RFC 5880 §6.8.1): 1 µs, until the peer says otherwise.
const INITIAL_REMOTE_MIN_RX_US: u32 = 1;

/// Timers per session, indexing [`BfdSession`]'s timer table (quinn-proto `Timer` style).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// The next periodic control packet (RFC 5880 §6.8.7).
    Transmit = 0,
    /// The Detection Time since the last accepted packet (RFC 5880 §6.8.4).
    Detection = 1,
}

const TIMER_COUNT: usize = 2;

/// Local timer settings of a session, as in svrd's `router[].bfd` YAML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdConfig {
    /// `desired-tx-interval`: how often we would like to send (bfd.DesiredMinTxInterval once
    /// Up; never below [`SLOW_TX_INTERVAL`] before Up). Default 1000 ms.
    pub desired_tx: Duration,
    /// `required-min-rx-interval`: the fastest we accept packets (bfd.RequiredMinRxInterval).
    /// Default 500 ms.
    pub required_min_rx: Duration,
    /// `multiplier`: bfd.DetectMult, packets the peer may miss. Default 3.
    pub detect_mult: u8,
}

impl Default for BfdConfig {
    /// SSR's defaults (docs/background.md §4.2): one packet a second, down after 3 s.
    fn default() -> Self {
        BfdConfig {
            desired_tx: Duration::from_millis(1000),
            required_min_rx: Duration::from_millis(500),
            detect_mult: 3,
        }
    }
}

impl BfdConfig {
    /// Interval range svrd's YAML accepts, in milliseconds.
    pub const INTERVAL_MS: core::ops::RangeInclusive<u64> = 50..=60_000;
    /// Multiplier range svrd's YAML accepts (RFC 5880 forbids only 0; 1 would drop a path on
    /// a single lost packet).
    pub const MULTIPLIER: core::ops::RangeInclusive<u8> = 2..=255;

    /// Checks the ranges of svrd's YAML: both intervals 50-60000 ms, multiplier 2-255. The
    /// error names the YAML key. [`BfdSession`] itself accepts any value and clamps what the
    /// wire cannot carry (intervals to 1 µs..=u32::MAX µs, multiplier to at least 1).
    pub fn validate(&self) -> Result<(), String> {
        let lo = Duration::from_millis(*Self::INTERVAL_MS.start());
        let hi = Duration::from_millis(*Self::INTERVAL_MS.end());
        for (key, d) in [
            ("desired-tx-interval", self.desired_tx),
            ("required-min-rx-interval", self.required_min_rx),
        ] {
            if d < lo || d > hi {
                return Err(format!(
                    "{key}: {d:?} is outside {}-{} ms",
                    Self::INTERVAL_MS.start(),
                    Self::INTERVAL_MS.end()
                ));
            }
        }
        if !Self::MULTIPLIER.contains(&self.detect_mult) {
            return Err(format!(
                "multiplier: {} is outside {}-{}",
                self.detect_mult,
                Self::MULTIPLIER.start(),
                Self::MULTIPLIER.end()
            ));
        }
        Ok(())
    }
}

/// Something the owner of a session should know about; drain with
/// [`BfdSession::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BfdEvent {
    /// bfd.SessionState changed. `diag` is bfd.LocalDiag after the change.
    StateChanged {
        /// The old state.
        from: State,
        /// The new state.
        to: State,
        /// Why (No Diagnostic for Init and Up).
        diag: Diagnostic,
    },
    /// The session reached Up: the peer path may carry traffic. Follows `StateChanged`.
    PathUp,
    /// The session left Up: take the peer path out of service. Follows `StateChanged`.
    PathDown {
        /// Why: Control Detection Time Expired, Neighbor Signaled Session Down or
        /// Administratively Down.
        diag: Diagnostic,
    },
}

/// One RFC 5880 authentication key: the Auth Key ID on the wire and the 32-byte
/// HMAC-SHA256 secret. Key management derives the secret from the peer key (HKDF-SHA256,
/// info "svr-fastpath bfd auth v1"; docs/bfd-metadata.md §5) and uses the peer-key index as
/// the key id. `Debug` never prints the secret; it is wiped on drop.
#[derive(Clone)]
pub struct AuthKey {
    /// Auth Key ID.
    pub key_id: u8,
    /// The HMAC-SHA256 key.
    pub secret: Zeroizing<[u8; SECRET_LEN]>,
}

impl AuthKey {
    /// A key from its id and secret.
    pub fn new(key_id: u8, secret: [u8; SECRET_LEN]) -> Self {
        AuthKey {
            key_id,
            secret: Zeroizing::new(secret),
        }
    }
}

impl core::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AuthKey")
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// What [`BfdSession::handle_packet`] made of one UDP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Received<'a> {
    /// The SVR BFD metadata block after BFD Length, for the key-management layer. Present
    /// whenever the payload's lengths are sound and the block starts with the SVR cookie,
    /// **even when `outcome` is an error** (a restarted peer without keys sends
    /// unauthenticated BFD whose block must still reach key management; the block protects
    /// itself).
    pub block: Option<&'a [u8]>,
    /// `Ok` if the BFD control packet was accepted by the state machine; otherwise why it was
    /// discarded (counted in [`BfdStats::rx_discarded`], session unchanged).
    pub outcome: Result<(), BfdError>,
}

/// Counters of one session. Plain numbers; read them with [`BfdSession::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BfdStats {
    /// Control packets written by [`BfdSession::poll_transmit`].
    pub tx_packets: u64,
    /// Of those, packets with the P bit.
    pub tx_poll: u64,
    /// Of those, packets with the F bit.
    pub tx_final: u64,
    /// Packets accepted by [`BfdSession::handle_packet`].
    pub rx_accepted: u64,
    /// Packets discarded, indexed by [`BfdError::index`].
    pub rx_discarded: [u64; BfdError::COUNT],
    /// Poll Sequences ended by a Final.
    pub polls_completed: u64,
    /// Changes of bfd.SessionState.
    pub state_changes: u64,
}

impl BfdStats {
    /// Packets discarded for `reason`.
    pub fn discarded(&self, reason: BfdError) -> u64 {
        self.rx_discarded[reason.index()]
    }
}

/// xorshift64 (Marsaglia), seeded by the caller: only for transmit jitter, where it needs to
/// be cheap and, in tests, repeatable, not unpredictable.
#[derive(Debug, Clone)]
struct XorShift64(u64);

impl XorShift64 {
    fn new(seed: u64) -> Self {
        // The all-zero state is a fixed point; replace it.
        XorShift64(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn duration_to_us(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX).max(1)
}

fn us(v: u32) -> Duration {
    Duration::from_micros(u64::from(v))
}

/// A BFD session on one peer path (RFC 5880 asynchronous mode; no echo, no Demand mode;
/// Meticulous Keyed HMAC-SHA256 authentication once keys are set with
/// [`set_auth_keys`](Self::set_auth_keys); the SVR BFD metadata block that rides behind each
/// control packet is protected by the peer key itself).
///
/// # Calling protocol (quinn-proto style)
///
/// * **Inputs**: [`handle_packet`](Self::handle_packet) for each UDP payload received from
///   the peer on port 1280 (the caller demultiplexes by path, or by Your Discriminator),
///   [`handle_timeout`](Self::handle_timeout) when the deadline of
///   [`poll_timeout`](Self::poll_timeout) has passed (a spurious call is a harmless no-op).
/// * **Mutators**: [`set_admin_down`](Self::set_admin_down),
///   [`set_config`](Self::set_config), [`set_auth_keys`](Self::set_auth_keys),
///   [`request_transmit`](Self::request_transmit).
/// * **Outputs**, after any input or mutator, in this order: call
///   [`poll_transmit`](Self::poll_transmit) until it returns `None` and send each packet;
///   call [`poll_event`](Self::poll_event) until `None`; then arm one timer for
///   [`poll_timeout`](Self::poll_timeout).
///
/// Every call that depends on time takes `now`; the session never reads a clock.
#[derive(Debug, Clone)]
pub struct BfdSession {
    config: BfdConfig,
    /// bfd.LocalDiscr.
    local_discr: u32,
    /// bfd.SessionState.
    state: State,
    /// bfd.LocalDiag.
    local_diag: Diagnostic,
    /// bfd.RemoteDiscr.
    remote_discr: u32,
    /// bfd.RemoteSessionState.
    remote_state: State,
    /// bfd.RemoteDemandMode.
    remote_demand: bool,
    /// bfd.RemoteMinRxInterval, µs.
    remote_min_rx_us: u32,
    /// Desired Min TX Interval last received, µs.
    remote_desired_tx_us: u32,
    /// Detect Mult last received; 0 while no peer is known.
    remote_detect_mult: u8,
    /// bfd.DesiredMinTxInterval as advertised, µs (the 1 s rule applied).
    desired_min_tx_us: u32,
    /// bfd.RequiredMinRxInterval as advertised, µs.
    required_min_rx_us: u32,
    /// The DesiredMinTxInterval our transmit timer uses: during a Poll Sequence an increase
    /// waits for the Final (§6.8.3).
    tx_in_use_us: u32,
    /// The RequiredMinRxInterval our Detection Time uses: during a Poll Sequence a decrease
    /// waits for the Final (§6.8.3).
    rx_in_use_us: u32,
    /// A Poll Sequence is in progress.
    polling: bool,
    /// A Poll has been sent since the latest parameter change, so a Final may end the
    /// sequence.
    poll_sent: bool,
    /// A Poll was received; a Final is owed "as soon as practicable" (§6.8.7).
    final_owed: bool,
    /// The owner asked for a packet now.
    transmit_requested: bool,
    /// The periodic transmit timer fired.
    periodic_due: bool,
    /// Last time a packet was accepted, for the Detection Time.
    last_rx: Option<Instant>,
    timers: [Option<Instant>; TIMER_COUNT],
    rng: XorShift64,
    events: VecDeque<BfdEvent>,
    stats: BfdStats,
    /// The key that signs every transmitted packet, if any.
    send_key: Option<AuthKey>,
    /// Keys whose packets we accept; when not empty, every received packet must carry a
    /// valid authentication section.
    accept_keys: Vec<AuthKey>,
    /// bfd.XmitAuthSeq: the sequence number of the next signed packet.
    tx_seq: u32,
    /// bfd.RcvAuthSeq, `None` while bfd.AuthSeqKnown is 0.
    rx_seq: Option<u32>,
}

impl BfdSession {
    /// A session in state Down that sends its first control packet at `now`.
    ///
    /// `local_discr` must be nonzero and unique among the caller's sessions (0 is replaced by
    /// 1, since My Discriminator 0 is invalid on the wire). `seed` seeds the transmit jitter.
    pub fn new(local_discr: u32, config: BfdConfig, seed: u64, now: Instant) -> Self {
        let mut s = BfdSession {
            config,
            local_discr: local_discr.max(1),
            state: State::Down,
            local_diag: Diagnostic::NoDiagnostic,
            remote_discr: 0,
            remote_state: State::Down,
            remote_demand: false,
            remote_min_rx_us: INITIAL_REMOTE_MIN_RX_US,
            remote_desired_tx_us: 0,
            remote_detect_mult: 0,
            desired_min_tx_us: 0,
            required_min_rx_us: 0,
            tx_in_use_us: 0,
            rx_in_use_us: 0,
            polling: false,
            poll_sent: false,
            final_owed: false,
            transmit_requested: false,
            periodic_due: false,
            last_rx: None,
            timers: [None; TIMER_COUNT],
            rng: XorShift64::new(seed),
            events: VecDeque::with_capacity(4),
            stats: BfdStats::default(),
            send_key: None,
            accept_keys: Vec::new(),
            // §6.8.1: bfd.XmitAuthSeq starts at a random value. Its own generator, so the
            // jitter sequence does not depend on whether keys are set.
            tx_seq: XorShift64::new(seed ^ 0x5eed_a17b_5e90_0001).next_u64() as u32,
            rx_seq: None,
        };
        s.config.detect_mult = s.config.detect_mult.max(1);
        s.apply_params(now);
        s.timers[Timer::Transmit as usize] = Some(now);
        s
    }

    // ---- getters ----

    /// bfd.SessionState.
    pub fn state(&self) -> State {
        self.state
    }

    /// bfd.LocalDiag: why the session last went down.
    pub fn local_diag(&self) -> Diagnostic {
        self.local_diag
    }

    /// bfd.LocalDiscr.
    pub fn local_discriminator(&self) -> u32 {
        self.local_discr
    }

    /// bfd.RemoteDiscr: 0 until the peer is heard, and again a Detection Time after it fell
    /// silent.
    pub fn remote_discriminator(&self) -> u32 {
        self.remote_discr
    }

    /// bfd.RemoteSessionState.
    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// The configuration in force.
    pub fn config(&self) -> &BfdConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &BfdStats {
        &self.stats
    }

    /// Whether a Poll Sequence is in progress.
    pub fn poll_in_progress(&self) -> bool {
        self.polling
    }

    /// The Desired Min TX Interval we advertise (never below 1 s before Up).
    pub fn advertised_desired_tx(&self) -> Duration {
        us(self.desired_min_tx_us)
    }

    /// The negotiated periodic transmit interval before jitter (§6.8.2): the greater of our
    /// DesiredMinTxInterval in use and the peer's Required Min RX Interval. `None` would mean
    /// no periodic packets (a peer's Required Min RX 0 or Demand mode), which cannot happen:
    /// such packets are discarded (crate doc, "Hardening"); the guard stays.
    pub fn tx_interval(&self) -> Option<Duration> {
        self.periodic_allowed().then(|| us(self.tx_interval_us()))
    }

    /// The Detection Time (§6.8.4): the peer's Detect Mult × the greater of our
    /// RequiredMinRxInterval in use and the peer's last Desired Min TX Interval. `None`
    /// while no peer is known.
    pub fn detection_time(&self) -> Option<Duration> {
        if self.remote_detect_mult == 0 {
            return None;
        }
        let per = self.rx_in_use_us.max(self.remote_desired_tx_us);
        Some(us(per) * u32::from(self.remote_detect_mult))
    }

    /// The next deadline at which [`handle_timeout`](Self::handle_timeout) has work, or
    /// `None`. Packets owed at once (a Final, a requested transmit) are not deadlines: call
    /// [`poll_transmit`](Self::poll_transmit) after every input.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    // ---- inputs ----

    /// Processes one UDP payload from the peer (RFC 5880 §6.8.6, with the authentication of
    /// §6.7 and the hardening rules of the crate doc). The returned [`Received::block`] is
    /// the SVR BFD metadata block that followed the control packet, if any, for the
    /// key-management layer, **also when the control packet was discarded**. On
    /// `outcome: Err` the control packet was discarded, counted in
    /// [`BfdStats::rx_discarded`], and the session state is unchanged.
    pub fn handle_packet<'a>(&mut self, now: Instant, udp_payload: &'a [u8]) -> Received<'a> {
        let packet = ControlPacket::new_unchecked(udp_payload);
        // Lengths first: after them no getter panics and the block is where Length says.
        let (block, outcome) = match packet.check_len().and_then(|()| packet.check_extension()) {
            Err(e) => (None, Err(e)),
            Ok(()) => {
                // `check_len` proved Length <= the payload length.
                let block = udp_payload
                    .get(usize::from(packet.length())..)
                    .filter(|e| !e.is_empty());
                let outcome = packet
                    .check_fields()
                    .and_then(|()| self.process(now, &packet));
                (block, outcome)
            }
        };
        match outcome {
            Ok(()) => self.stats.rx_accepted += 1,
            Err(e) => self.stats.rx_discarded[e.index()] += 1,
        }
        Received { block, outcome }
    }

    /// The checks that need the session (all before any state changes), then the §6.8.6
    /// state machine. `packet` has passed every byte-level check.
    fn process(&mut self, now: Instant, packet: &ControlPacket<&[u8]>) -> Result<(), BfdError> {
        let rx = ControlRepr::parse(packet)?;
        // §6.8.6: a nonzero Your Discriminator selects the session.
        if rx.your_discriminator != 0 && rx.your_discriminator != self.local_discr {
            return Err(BfdError::DiscriminatorMismatch);
        }
        // §6.8.6 records the peer's fields before discarding in AdminDown; we discard first,
        // so that a discarded packet changes nothing. The only difference: our AdminDown
        // packets keep the Your Discriminator we had, which the peer accepts either way.
        if self.state == State::AdminDown {
            return Err(BfdError::AdminDown);
        }
        // Hardening (crate doc): once we are Init or Up, only a packet that names this
        // session may touch it; a Down/AdminDown with Your Discriminator 0 could come from
        // anyone who saw our address.
        if rx.your_discriminator == 0 && matches!(self.state, State::Init | State::Up) {
            return Err(BfdError::UnselectedInSession);
        }
        // Hardening: our peers never run Demand mode and never ask for silence.
        if rx.demand {
            return Err(BfdError::DemandMode);
        }
        if rx.required_min_rx == 0 {
            return Err(BfdError::ZeroRequiredMinRx);
        }
        // §6.7: authentication, cheapest checks first, the HMAC last.
        let block = packet.extension().unwrap_or(&[]);
        let verified_seq = self.check_auth(packet.control(), block, &rx)?;
        if let Some(seq) = verified_seq {
            // The first sequence number after a reset cannot be told from a replayed old one:
            // such a packet may bring a session up but never take an established one down.
            if self.rx_seq.is_none()
                && matches!(self.state, State::Init | State::Up)
                && matches!(rx.state, State::Down | State::AdminDown)
            {
                return Err(BfdError::UnverifiedSequenceDown);
            }
            // bfd.RcvAuthSeq = seq, bfd.AuthSeqKnown = 1.
            self.rx_seq = Some(seq);
        }
        self.remote_discr = rx.my_discriminator;
        self.remote_state = rx.state;
        self.remote_demand = rx.demand;
        self.remote_min_rx_us = rx.required_min_rx;
        self.remote_desired_tx_us = rx.desired_min_tx;
        self.remote_detect_mult = rx.detect_mult;
        if rx.final_ && self.polling && self.poll_sent {
            // §6.5: the Final ends the Poll Sequence; deferred timer changes take effect.
            self.polling = false;
            self.poll_sent = false;
            self.tx_in_use_us = self.desired_min_tx_us;
            self.rx_in_use_us = self.required_min_rx_us;
            self.stats.polls_completed += 1;
        }
        if rx.state == State::AdminDown {
            if self.state != State::Down {
                self.set_state(now, State::Down, Diagnostic::NeighborSignaledSessionDown);
            }
        } else {
            match (self.state, rx.state) {
                (State::Down, State::Down) => {
                    self.set_state(now, State::Init, Diagnostic::NoDiagnostic)
                }
                (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                    self.set_state(now, State::Up, Diagnostic::NoDiagnostic)
                }
                (State::Up, State::Down) => {
                    self.set_state(now, State::Down, Diagnostic::NeighborSignaledSessionDown)
                }
                _ => {}
            }
        }
        if rx.poll {
            self.final_owed = true;
        }
        self.last_rx = Some(now);
        self.refresh_detection();
        self.refresh_tx(now);
        Ok(())
    }

    /// §6.7.3 for Meticulous Keyed HMAC-SHA256: `Ok(None)` when no accept key is set (any
    /// packet passes, with or without a section), `Ok(Some(seq))` when the packet verified
    /// under an accept key and its sequence number is after the last accepted one.
    fn check_auth(
        &self,
        control: &[u8],
        block: &[u8],
        rx: &ControlRepr,
    ) -> Result<Option<u32>, BfdError> {
        if self.accept_keys.is_empty() {
            return Ok(None);
        }
        let a = rx.auth.ok_or(BfdError::AuthMissing)?;
        // Ids normally differ; if two keys share one (the index wrapped), either may verify.
        let mut known = false;
        let mut verified = false;
        for k in self.accept_keys.iter().filter(|k| k.key_id == a.key_id) {
            known = true;
            verified |= auth::verify(control, block, &k.secret);
        }
        if !known {
            return Err(BfdError::UnknownAuthKey);
        }
        if !verified {
            return Err(BfdError::BadAuthDigest);
        }
        if let Some(last) = self.rx_seq {
            if !auth::sequence_after(a.sequence, last) {
                return Err(BfdError::AuthReplay);
            }
        }
        Ok(Some(a.sequence))
    }

    /// Runs the timers that are due at `now`: the Detection Time (Init or Up → Down with
    /// Control Detection Time Expired, and the peer is forgotten) and the periodic transmit
    /// (the next [`poll_transmit`](Self::poll_transmit) sends). Early or repeated calls do
    /// nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timers[Timer::Detection as usize].is_some_and(|t| t <= now) {
            self.timers[Timer::Detection as usize] = None;
            self.detection_expired(now);
        }
        self.promote_transmit_timer(now);
    }

    fn detection_expired(&mut self, now: Instant) {
        if matches!(self.state, State::Init | State::Up) {
            self.set_state(now, State::Down, Diagnostic::ControlDetectionTimeExpired);
        }
        // §6.8.1: bfd.RemoteDiscr is reset when a Detection Time passes in silence. We forget
        // the peer's timers too, back to their initial values, so a returning peer starts
        // from a clean slate.
        self.remote_discr = 0;
        self.remote_state = State::Down;
        self.remote_demand = false;
        self.remote_min_rx_us = INITIAL_REMOTE_MIN_RX_US;
        self.remote_desired_tx_us = 0;
        self.remote_detect_mult = 0;
        self.last_rx = None;
        // §6.8.1 resets bfd.AuthSeqKnown after a silence (there: twice the Detection Time),
        // so that a restarted peer, whose sequence starts anywhere, can be heard again. Here:
        // when the peer is forgotten. A packet accepted next is "unverified" as to freshness
        // and may not take an established session down (see `process`).
        self.rx_seq = None;
        self.refresh_tx(now);
    }

    fn promote_transmit_timer(&mut self, now: Instant) {
        if self.timers[Timer::Transmit as usize].is_some_and(|t| t <= now) {
            self.timers[Timer::Transmit as usize] = None;
            self.periodic_due = true;
        }
    }

    // ---- mutators ----

    /// Turns AdminDown on or off (RFC 5880 §6.8.16). On: the state becomes AdminDown with
    /// diag Administratively Down, received packets are discarded, and AdminDown packets
    /// keep going out at the slow rate so the peer goes Down with Neighbor Signaled Session
    /// Down rather than by timeout. Off: back to Down, and the handshake starts again.
    pub fn set_admin_down(&mut self, now: Instant, admin_down: bool) {
        if admin_down && self.state != State::AdminDown {
            self.set_state(now, State::AdminDown, Diagnostic::AdministrativelyDown);
            self.last_rx = None;
            self.refresh_detection();
            self.transmit_requested = true;
        } else if !admin_down && self.state == State::AdminDown {
            self.set_state(now, State::Down, Diagnostic::NoDiagnostic);
            self.transmit_requested = true;
        }
    }

    /// Replaces the timer settings. While Up, a change of the advertised intervals starts a
    /// Poll Sequence (§6.8.3): an increase of the TX interval and a decrease of the RX
    /// interval take effect only when the peer's Final arrives. Before Up the new values
    /// simply ride in the next packets (the 1 s rule keeps the TX interval slow anyway).
    pub fn set_config(&mut self, now: Instant, config: BfdConfig) {
        self.config = config;
        self.config.detect_mult = self.config.detect_mult.max(1);
        self.apply_params(now);
    }

    /// Sets the authentication keys (RFC 5880 §6.7, Meticulous Keyed HMAC-SHA256).
    ///
    /// * `send`: when `Some`, every transmitted control packet carries an authentication
    ///   section signed with this key, with a sequence number one more than the previous
    ///   packet's (random start, carried across key changes).
    /// * `accept`: every key we accept from the peer (during a peer-key rotation: the current,
    ///   the next and the previous key). When not empty, a received packet without a valid
    ///   section, with an unknown key id, a bad digest or a sequence number not after the last
    ///   accepted one is discarded with [`BfdError::AuthMissing`],
    ///   [`BfdError::UnknownAuthKey`], [`BfdError::BadAuthDigest`] or
    ///   [`BfdError::AuthReplay`]. When empty (no peer key yet), packets with or without a
    ///   section drive the state machine unverified: the caller must keep the path out of
    ///   service until keys exist.
    ///
    /// The last accepted sequence number survives key changes (it is per session); it is
    /// forgotten with the peer (a Detection Time of silence) and when `accept` is empty.
    pub fn set_auth_keys(&mut self, send: Option<AuthKey>, accept: Vec<AuthKey>) {
        self.send_key = send;
        self.accept_keys = accept;
        if self.accept_keys.is_empty() {
            self.rx_seq = None;
        }
    }

    /// Whether received packets must be authenticated (an accept key is set).
    pub fn auth_required(&self) -> bool {
        !self.accept_keys.is_empty()
    }

    /// The Auth Key ID transmitted packets are signed with, if any.
    pub fn send_key_id(&self) -> Option<u8> {
        self.send_key.as_ref().map(|k| k.key_id)
    }

    /// Asks for a control packet at the next [`poll_transmit`](Self::poll_transmit),
    /// regardless of the periodic timer; e.g. the key layer has a message to send now. Any
    /// packet sent satisfies the request.
    pub fn request_transmit(&mut self) {
        self.transmit_requested = true;
    }

    // ---- outputs ----

    /// Writes the next control packet into `buf` (24 bytes, or 64 with the authentication
    /// section when a send key is set), followed by `extension` (the SVR BFD metadata block,
    /// which the key layer supplies on every call: it must be empty or start with the SVR
    /// cookie), and returns the UDP payload length. `None` if nothing is due at `now`, or if
    /// `buf` is shorter than the control packet + `extension.len()` bytes (then nothing is
    /// consumed; call again with a larger buffer).
    ///
    /// A Final owed to the peer goes first and on its own (never with P); Poll bits ride only
    /// on periodic packets (§6.5).
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        extension: &[u8],
        buf: &mut [u8],
    ) -> Option<usize> {
        self.promote_transmit_timer(now);
        #[derive(PartialEq)]
        enum Kind {
            Final,
            Periodic,
            Requested,
        }
        let kind = if self.final_owed {
            Kind::Final
        } else if self.periodic_due {
            Kind::Periodic
        } else if self.transmit_requested {
            Kind::Requested
        } else {
            return None;
        };
        let auth = self.send_key.as_ref().map(|k| AuthRepr {
            key_id: k.key_id,
            sequence: self.tx_seq,
        });
        let control_len = if auth.is_some() {
            auth::CONTROL_LEN_AUTH
        } else {
            CONTROL_LEN
        };
        let len = control_len + extension.len();
        let out = buf.get_mut(..len)?;
        let poll = kind == Kind::Periodic && self.polling;
        let fin = kind == Kind::Final;
        let repr = ControlRepr {
            diag: self.local_diag,
            state: self.state,
            poll,
            final_: fin,
            control_plane_independent: false,
            demand: false,
            detect_mult: self.config.detect_mult,
            my_discriminator: self.local_discr,
            your_discriminator: self.remote_discr,
            desired_min_tx: self.desired_min_tx_us,
            required_min_rx: self.required_min_rx_us,
            required_min_echo_rx: 0,
            auth,
        };
        let (control, ext) = out.split_at_mut(control_len);
        repr.emit(&mut ControlPacket::new_unchecked(&mut *control));
        if let Some(k) = &self.send_key {
            // `control` is exactly CONTROL_LEN_AUTH bytes, so `sign` writes the digest.
            auth::sign(control, extension, &k.secret);
            // Meticulous: every packet gets the next number.
            self.tx_seq = self.tx_seq.wrapping_add(1);
        }
        ext.copy_from_slice(extension);

        self.transmit_requested = false;
        match kind {
            Kind::Final => {
                self.final_owed = false;
                // Without a Poll of our own to carry, the Final also serves as the periodic
                // packet that is due.
                if self.periodic_due && !self.polling {
                    self.periodic_due = false;
                    self.schedule_transmit(now);
                }
            }
            Kind::Periodic => {
                self.periodic_due = false;
                self.schedule_transmit(now);
            }
            Kind::Requested => {}
        }
        self.stats.tx_packets += 1;
        if poll {
            self.poll_sent = true;
            self.stats.tx_poll += 1;
        }
        if fin {
            self.stats.tx_final += 1;
        }
        Some(len)
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<BfdEvent> {
        self.events.pop_front()
    }

    // ---- internals ----

    fn set_state(&mut self, now: Instant, to: State, diag: Diagnostic) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.local_diag = diag;
        self.stats.state_changes += 1;
        self.events
            .push_back(BfdEvent::StateChanged { from, to, diag });
        if to == State::Up {
            self.events.push_back(BfdEvent::PathUp);
        } else if from == State::Up {
            self.events.push_back(BfdEvent::PathDown { diag });
        }
        self.apply_params(now);
    }

    /// Recomputes the advertised intervals from the configuration and the state (§6.8.3),
    /// starting a Poll Sequence if they change while Up.
    fn apply_params(&mut self, now: Instant) {
        let cfg_tx = duration_to_us(self.config.desired_tx);
        let want_tx = if self.state == State::Up {
            cfg_tx
        } else {
            cfg_tx.max(duration_to_us(SLOW_TX_INTERVAL))
        };
        let want_rx = duration_to_us(self.config.required_min_rx);
        let changed = want_tx != self.desired_min_tx_us || want_rx != self.required_min_rx_us;
        self.desired_min_tx_us = want_tx;
        self.required_min_rx_us = want_rx;
        if self.state == State::Up {
            if changed {
                // Sending faster and accepting slower are safe at once; the rest waits.
                self.tx_in_use_us = self.tx_in_use_us.min(want_tx);
                self.rx_in_use_us = self.rx_in_use_us.max(want_rx);
                self.polling = true;
                self.poll_sent = false;
            }
        } else {
            self.tx_in_use_us = want_tx;
            self.rx_in_use_us = want_rx;
            self.polling = false;
            self.poll_sent = false;
        }
        self.refresh_detection();
        self.refresh_tx(now);
    }

    fn tx_interval_us(&self) -> u32 {
        self.tx_in_use_us.max(self.remote_min_rx_us)
    }

    /// §6.8.7: no periodic packets if the peer's Required Min RX is 0, or if the peer runs
    /// Demand mode with both sides Up and no Poll Sequence of ours is under way.
    fn periodic_allowed(&self) -> bool {
        let remote_demand_active =
            self.remote_demand && self.state == State::Up && self.remote_state == State::Up;
        self.remote_min_rx_us != 0 && (!remote_demand_active || self.polling)
    }

    /// The next periodic transmit, `now` + the interval reduced by 0-25 % (0-10 % more, i.e.
    /// 75-90 %, when bfd.DetectMult is 1), per §6.8.7.
    fn schedule_transmit(&mut self, now: Instant) {
        self.timers[Timer::Transmit as usize] = if self.periodic_allowed() {
            let interval = self.tx_interval_us();
            Some(now + self.jittered(interval))
        } else {
            None
        };
    }

    fn jittered(&mut self, interval_us: u32) -> Duration {
        let span = if self.config.detect_mult == 1 {
            151
        } else {
            251
        };
        // 750..=1000 (or ..=900) per mille of the interval; µs × ‰ = ns.
        let per_mille = 750 + self.rng.next_u64() % span;
        Duration::from_nanos(u64::from(interval_us) * per_mille)
    }

    /// Keeps the transmit timer consistent with the current interval and permission: stops
    /// it when periodic packets are not allowed, starts it when they become allowed, and
    /// pulls it in when the interval shrank below the time left.
    fn refresh_tx(&mut self, now: Instant) {
        if !self.periodic_allowed() {
            self.timers[Timer::Transmit as usize] = None;
            self.periodic_due = false;
            return;
        }
        if self.periodic_due {
            return;
        }
        let interval = us(self.tx_interval_us());
        match self.timers[Timer::Transmit as usize] {
            None => self.schedule_transmit(now),
            Some(t) if t > now + interval => self.schedule_transmit(now),
            Some(_) => {}
        }
    }

    fn refresh_detection(&mut self) {
        self.timers[Timer::Detection as usize] = match (self.state, self.last_rx) {
            (State::AdminDown, _) | (_, None) => None,
            (_, Some(last)) => self.detection_time().map(|d| last + d),
        };
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn config_validation_ranges() {
        assert_eq!(BfdConfig::default().validate(), Ok(()));
        let ms = Duration::from_millis;
        let ok = |tx, rx, m| {
            BfdConfig {
                desired_tx: ms(tx),
                required_min_rx: ms(rx),
                detect_mult: m,
            }
            .validate()
        };
        assert!(ok(50, 60_000, 2).is_ok());
        assert!(ok(60_000, 50, 255).is_ok());
        assert!(ok(49, 500, 3)
            .unwrap_err()
            .starts_with("desired-tx-interval"));
        assert!(ok(60_001, 500, 3)
            .unwrap_err()
            .starts_with("desired-tx-interval"));
        assert!(ok(1000, 49, 3)
            .unwrap_err()
            .starts_with("required-min-rx-interval"));
        assert!(ok(1000, 60_001, 3)
            .unwrap_err()
            .starts_with("required-min-rx-interval"));
        assert!(ok(1000, 500, 1).unwrap_err().starts_with("multiplier"));
        assert!(ok(1000, 500, 0).unwrap_err().starts_with("multiplier"));
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let now = Instant::ZERO;
        let mut s = BfdSession::new(1, BfdConfig::default(), 7, now);
        for _ in 0..10_000 {
            let d = s.jittered(1_000_000);
            assert!(d >= Duration::from_millis(750) && d <= Duration::from_millis(1000));
        }
        s.set_config(
            now,
            BfdConfig {
                detect_mult: 1,
                ..BfdConfig::default()
            },
        );
        let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
        for _ in 0..10_000 {
            let d = s.jittered(1_000_000);
            lo = lo.min(d);
            hi = hi.max(d);
        }
        assert!(lo >= Duration::from_millis(750) && hi <= Duration::from_millis(900));
        // The whole range is used.
        assert!(lo < Duration::from_millis(760) && hi > Duration::from_millis(890));
    }

    #[test]
    fn first_packet_is_down_at_once_with_slow_tx() {
        let now = Instant::from_nanos(5);
        let cfg = BfdConfig {
            desired_tx: Duration::from_millis(100),
            ..BfdConfig::default()
        };
        let mut s = BfdSession::new(42, cfg, 1, now);
        assert_eq!(s.poll_timeout(), Some(now));
        let mut buf = [0u8; 64];
        let n = s.poll_transmit(now, &[], &mut buf).unwrap();
        assert_eq!(n, 24);
        let r = ControlRepr::parse(&ControlPacket::new_checked(&buf[..n]).unwrap()).unwrap();
        assert_eq!(r.state, State::Down);
        assert_eq!(r.my_discriminator, 42);
        assert_eq!(r.your_discriminator, 0);
        assert_eq!(r.desired_min_tx, 1_000_000);
        assert_eq!(r.required_min_rx, 500_000);
        assert!(s.poll_transmit(now, &[], &mut buf).is_none());
        let next = s.poll_timeout().unwrap();
        assert!(next >= now + Duration::from_millis(750) && next <= now + SLOW_TX_INTERVAL);
    }

    #[test]
    fn small_buffer_consumes_nothing() {
        let now = Instant::ZERO;
        let mut s = BfdSession::new(1, BfdConfig::default(), 1, now);
        let ext = [0x4c, 0x48, 0xdb, 0xc6, 0xdd, 0xf6, 0x67, 0x0c];
        let mut small = [0u8; 31];
        assert_eq!(s.poll_transmit(now, &ext, &mut small), None);
        let mut buf = [0u8; 32];
        assert_eq!(s.poll_transmit(now, &ext, &mut buf), Some(32));
        assert_eq!(buf[24..], ext);
    }

    fn packet_from_peer(state: State, your: u32, required_min_rx: u32, demand: bool) -> [u8; 24] {
        let mut b = [0u8; 24];
        ControlRepr {
            diag: Diagnostic::NoDiagnostic,
            state,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand,
            detect_mult: 3,
            my_discriminator: 9,
            your_discriminator: your,
            desired_min_tx: 1_000_000,
            required_min_rx,
            required_min_echo_rx: 0,
            auth: None,
        }
        .emit(&mut ControlPacket::new_unchecked(&mut b[..]));
        b
    }

    #[test]
    fn peer_required_min_rx_zero_or_demand_never_silences_us() {
        let now = Instant::ZERO;
        let mut s = BfdSession::new(1, BfdConfig::default(), 1, now);
        let mut buf = [0u8; 64];
        assert!(s.poll_transmit(now, &[], &mut buf).is_some());
        let r = s
            .handle_packet(now, &packet_from_peer(State::Down, 0, 0, false))
            .outcome;
        assert_eq!(r, Err(BfdError::ZeroRequiredMinRx));
        assert_eq!(s.state(), State::Down);
        assert_eq!(s.remote_discriminator(), 0);
        assert_eq!(s.tx_interval(), Some(SLOW_TX_INTERVAL));
        s.handle_packet(now, &packet_from_peer(State::Down, 0, 500_000, false))
            .outcome
            .unwrap();
        s.handle_packet(now, &packet_from_peer(State::Init, 1, 500_000, false))
            .outcome
            .unwrap();
        assert_eq!(s.state(), State::Up);
        for (rx, demand, e) in [
            (500_000, true, BfdError::DemandMode),
            (0, false, BfdError::ZeroRequiredMinRx),
            (0, true, BfdError::DemandMode),
        ] {
            let r = s
                .handle_packet(now, &packet_from_peer(State::Up, 1, rx, demand))
                .outcome;
            assert_eq!(r, Err(e));
            assert_eq!(s.tx_interval(), Some(Duration::from_secs(1)));
            assert!(s.poll_timeout().is_some());
        }
        assert_eq!(s.stats().discarded(BfdError::DemandMode), 2);
        assert_eq!(s.stats().discarded(BfdError::ZeroRequiredMinRx), 2);
    }

    #[test]
    fn admin_down_discards_without_recording() {
        let now = Instant::ZERO;
        let mut s = BfdSession::new(1, BfdConfig::default(), 1, now);
        s.set_admin_down(now, true);
        assert_eq!(
            s.handle_packet(now, &packet_from_peer(State::Down, 0, 500_000, false))
                .outcome,
            Err(BfdError::AdminDown)
        );
        assert_eq!(s.remote_discriminator(), 0);
        assert_eq!(s.state(), State::AdminDown);
        assert_eq!(s.stats().discarded(BfdError::AdminDown), 1);
        assert_eq!(s.poll_timeout(), Some(now), "the AdminDown packet is due");
    }
}
