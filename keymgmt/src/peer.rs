//! The per-peer key state machine (docs/background.md §7.3, docs/background.md §6 "Grace").
//!
//! Sans-IO, in the quinn-proto shape:
//!
//! - inputs: [`PeerKeyState::handle_block`], [`PeerKeyState::handle_timeout`],
//!   [`PeerKeyState::interface_state_changed`], [`PeerKeyState::bfd_up`] /
//!   [`PeerKeyState::bfd_down`];
//! - outputs, polled after every input: [`PeerKeyState::poll_block`] (the block for the next
//!   BFD packet, `None` when there is nothing to say), [`PeerKeyState::poll_event`] and
//!   [`PeerKeyState::poll_timeout`] (the next deadline; a spurious `handle_timeout` is a no-op);
//! - queries: [`PeerKeyState::path_in_service`], [`PeerKeyState::send_metadata_key`],
//!   [`PeerKeyState::recv_metadata_key`], [`PeerKeyState::peer_key_index`],
//!   [`PeerKeyState::payload_key_index`], [`PeerKeyState::bfd_auth_keys`] with
//!   [`PeerKeyState::key_generation`].
//!
//! Hostile input (`docs/bfd-metadata.md` §3): offers must echo the follower's current
//! challenge; cheap checks (name, version, algorithm, state and index, challenge) run before a
//! per-peer token bucket on clear blocks, and only then chain validation, signatures and DH.
//! Once a peer key exists, a clear block changes neither keys nor service: it can at most start
//! an exchange in clear beside the current keys, whose key replaces them only once it
//! completes with fresh signatures.
//!
//! The exchange itself is a small "states as types" machine (`Exchange`): each state is a
//! struct named for what it waits for, and a transition consumes it, so an ephemeral secret
//! cannot outlive its exchange.

use core::fmt;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use fastpath::time::Instant;
use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use svr_crypto::MetadataKey;
use zeroize::Zeroizing;

use crate::event::{EventHistory, FailureReason, KeyEvent};
use crate::exchange::{
    derive_peer_key, EphemeralSecret, KeyExchangeAlgorithm, PeerKey, TranscriptContext,
    BFD_AUTH_LEN, CHALLENGE_LEN, EXCHANGE_VERSION, SALT_LEN,
};
use crate::message::{
    encode_block, parse_block, Ack, BlockError, Finish, Hello, KeyKind, KeyRequest, Message,
    MetadataKeyMsg, Protection, CIPHER_AES_256_CBC, HMAC_SHA384_192,
};
use crate::pki::{verify_peer, Identity, PeerIdentity, TrustAnchor};
use crate::version::SoftwareVersion;

/// "After a new key is computed the router waits 30 seconds before using it."
pub const KEY_SWITCH_DELAY: Duration = Duration::from_secs(30);
/// How long the previous key is still accepted after the sender switched away from it.
pub const GRACE: Duration = Duration::from_secs(30);
/// Events queued for [`PeerKeyState::poll_event`] before the oldest are dropped.
pub const MAX_QUEUED_EVENTS: usize = 1024;
/// Clear blocks per second (sustained) for which one peer gets expensive work done: chain
/// validation, signature verification, signing, DH. Clear blocks beyond the per-peer token
/// bucket are dropped after the cheap checks and counted in [`KeyStats::clear_rate_limited`].
pub const CLEAR_BLOCK_RATE: u64 = 10;
/// The token bucket's depth: so many clear blocks in a burst (a whole genuine exchange needs
/// three at most per side).
pub const CLEAR_BLOCK_BURST: u64 = 20;
const TOKEN_NS: u64 = 1_000_000_000 / CLEAR_BLOCK_RATE;

/// A token bucket on virtual time: [`CLEAR_BLOCK_RATE`] tokens a second, at most
/// [`CLEAR_BLOCK_BURST`] held (credit kept in nanoseconds, no floats).
#[derive(Debug, Clone, Copy)]
struct TokenBucket {
    credit_ns: u64,
    last: Instant,
}

impl TokenBucket {
    fn full(now: Instant) -> TokenBucket {
        TokenBucket {
            credit_ns: TOKEN_NS * CLEAR_BLOCK_BURST,
            last: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.as_nanos().saturating_sub(self.last.as_nanos());
        self.last = self.last.max(now);
        self.credit_ns = self
            .credit_ns
            .saturating_add(elapsed)
            .min(TOKEN_NS * CLEAR_BLOCK_BURST);
        if self.credit_ns >= TOKEN_NS {
            self.credit_ns -= TOKEN_NS;
            true
        } else {
            false
        }
    }
}

/// `payload-key-rekey-interval` / `peer-key-rekey-interval`: hours (1-720) or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RekeyInterval {
    /// Rekey every so many hours.
    Hours(u16),
    /// Never rekey on a timer.
    Never,
}

impl RekeyInterval {
    /// The interval, `None` for never.
    pub fn as_duration(self) -> Option<Duration> {
        match self {
            RekeyInterval::Hours(h) => Some(Duration::from_secs(u64::from(h) * 3600)),
            RekeyInterval::Never => None,
        }
    }
}

/// `authority > security-key-management`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyConfig {
    /// `key-exchange-algorithm` (the leader's choice is used; a follower accepts any it
    /// implements, which allows a migration).
    pub algorithm: KeyExchangeAlgorithm,
    /// `payload-key-rekey-interval`, 1-720 h or never; default 24 h.
    pub payload_key_rekey_interval: RekeyInterval,
    /// `peer-key-rekey-interval`, 1-720 h or never; default 24 h.
    pub peer_key_rekey_interval: RekeyInterval,
    /// `peer-key-retransmit-interval`, 5-3600 s; default 30 s.
    pub peer_key_retransmit_interval: Duration,
    /// `peer-key-timeout`, from the retransmit interval up to 86400 s; default 3600 s.
    pub peer_key_timeout: Duration,
}

impl Default for KeyConfig {
    fn default() -> Self {
        KeyConfig {
            algorithm: KeyExchangeAlgorithm::X25519,
            payload_key_rekey_interval: RekeyInterval::Hours(24),
            peer_key_rekey_interval: RekeyInterval::Hours(24),
            peer_key_retransmit_interval: Duration::from_secs(30),
            peer_key_timeout: Duration::from_secs(3600),
        }
    }
}

/// A setting or name refused when a [`PeerKeyState`] is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A setting outside its range; `field` is the config path.
    #[error("authority.security-key-management.{field}: {value} is outside {range}")]
    OutOfRange {
        /// Config field name.
        field: &'static str,
        /// The value given.
        value: String,
        /// The allowed range.
        range: &'static str,
    },
    /// An empty or over-long peering-common-name.
    #[error("peering-common-name {0:?} must be 1-255 bytes")]
    BadName(String),
    /// Local and peer names are equal, so no leader can be chosen.
    #[error("peer peering-common-name {0:?} equals the local one")]
    SameName(String),
}

impl KeyConfig {
    /// Check the ranges of docs/background.md §7.3.
    pub fn validate(&self) -> Result<(), SetupError> {
        for (field, r) in [
            (
                "payload-key-rekey-interval",
                self.payload_key_rekey_interval,
            ),
            ("peer-key-rekey-interval", self.peer_key_rekey_interval),
        ] {
            if let RekeyInterval::Hours(h) = r {
                if !(1..=720).contains(&h) {
                    return Err(SetupError::OutOfRange {
                        field,
                        value: format!("{h} h"),
                        range: "1-720 h or never",
                    });
                }
            }
        }
        let rt = self.peer_key_retransmit_interval;
        if rt < Duration::from_secs(5) || rt > Duration::from_secs(3600) {
            return Err(SetupError::OutOfRange {
                field: "peer-key-retransmit-interval",
                value: format!("{rt:?}"),
                range: "5-3600 s",
            });
        }
        let to = self.peer_key_timeout;
        if to < rt || to > Duration::from_secs(86_400) {
            return Err(SetupError::OutOfRange {
                field: "peer-key-timeout",
                value: format!("{to:?}"),
                range: "peer-key-retransmit-interval to 86400 s",
            });
        }
        Ok(())
    }
}

/// Which end of the pair this router is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Our peering-common-name sorts first: we start every peer-key exchange.
    Leader,
    /// We answer the leader's exchange and send Key Requests.
    Follower,
}

/// Who is who, and with what settings.
#[derive(Debug, Clone)]
pub struct PeerSetup {
    /// Our `peering-common-name` (it must name our certificate; `svrd` checks it with
    /// [`Identity::is_named`] at start-up).
    pub local_name: String,
    /// The peer's `peering-common-name`, checked against its certificate.
    pub peer_name: String,
    /// Timers and algorithm.
    pub config: KeyConfig,
    /// Our software version, sent in the Software Version TLV.
    pub software_version: SoftwareVersion,
}

/// Counters (all monotonic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStats {
    /// Blocks handed to [`PeerKeyState::handle_block`].
    pub blocks_in: u64,
    /// Blocks returned by [`PeerKeyState::poll_block`].
    pub blocks_out: u64,
    /// Dropped blocks, indexed by [`BlockError::index`].
    pub dropped: [u64; BlockError::COUNT],
    /// Peer chains refused.
    pub certificate_rejected: u64,
    /// Hello or Finish signatures that did not verify.
    pub bad_signature: u64,
    /// Hellos without a certificate chain.
    pub missing_certificate: u64,
    /// Unsupported versions, algorithms or ciphers.
    pub unsupported: u64,
    /// Messages that did not fit the current exchange (late duplicates).
    pub stale: u64,
    /// Peer keys installed.
    pub peer_keys_installed: u64,
    /// Clear blocks refused by the per-peer token bucket before any expensive work.
    pub clear_rate_limited: u64,
    /// Expensive operations started for received blocks: a chain validation with signature
    /// check and DH (Hello), a Finish signature check, or a new signed offer (Key Request).
    pub expensive_work: u64,
    /// Offers or answers whose echoed challenge is not the current one (replays), dropped
    /// before any expensive work.
    pub stale_challenge: u64,
    /// Key Requests answered with the pending offer or Finish (same challenge): no new work.
    pub offers_reused: u64,
    /// Times the peer's authenticated software version changed to one incompatible with ours.
    pub incompatible_version: u64,
}

impl KeyStats {
    /// Drops for one reason.
    pub fn dropped(&self, e: BlockError) -> u64 {
        self.dropped[e.index()]
    }

    /// All drops.
    pub fn total_dropped(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// Why [`PeerKeyState::rekey_now`] did not start a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RekeyRefused {
    /// This router is the pair's follower: the leader starts rotations.
    #[error("this router is the follower of the pair: run the rekey on the peer (the leader)")]
    Follower,
    /// No peer key yet: the first exchange is still running.
    #[error("no peer key yet: the first key exchange has not finished")]
    NoKey,
    /// An exchange is finishing now.
    #[error("a key exchange is finishing now: try again in a moment")]
    Busy,
}

// ----- timers (an enum-indexed table, quinn-proto's `Timer`) -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    PeerKeySwitch = 0,
    PeerKeyRetire = 1,
    PeerMdSwitch = 2,
    OwnMdRetire = 3,
    PeerKeyTimeout = 4,
    Retransmit = 5,
    PeerRekey = 6,
    PayloadRekey = 7,
}

const TIMER_COUNT: usize = 8;
/// Firing order within one `handle_timeout`: key switches before the timeout, the timeout
/// before the retransmission (so a retry after `peer-key-timeout` uses the long interval).
const TIMER_ORDER: [Timer; TIMER_COUNT] = [
    Timer::PeerKeySwitch,
    Timer::PeerKeyRetire,
    Timer::PeerMdSwitch,
    Timer::OwnMdRetire,
    Timer::PeerKeyTimeout,
    Timer::Retransmit,
    Timer::PeerRekey,
    Timer::PayloadRekey,
];

// ----- the exchange, states as types -----

struct Names<'a> {
    leader: &'a str,
    follower: &'a str,
}

impl Names<'_> {
    fn ctx(&self, algorithm: KeyExchangeAlgorithm, index: u8) -> TranscriptContext<'_> {
        TranscriptContext {
            algorithm,
            index,
            leader: self.leader,
            follower: self.follower,
        }
    }
}

/// Leader: offer sent, waiting for the follower's Hello.
struct AwaitAnswer {
    alg: KeyExchangeAlgorithm,
    index: u8,
    salt: [u8; SALT_LEN],
    /// The follower's challenge this offer echoes.
    challenge: [u8; CHALLENGE_LEN],
    /// Asked for in clear: the follower holds none of our keys (or someone spoofs it), so the
    /// exchange travels in clear and its key replaces the current one at once.
    clear: bool,
    secret: EphemeralSecret,
    signature: Vec<u8>,
}

/// Leader: Finish sent, waiting for the follower's Ack of the peer key.
struct AwaitPeerKeyAck {
    index: u8,
    challenge: [u8; CHALLENGE_LEN],
    clear: bool,
    key: PeerKey,
    finish: Finish,
    answer: Hello,
}

/// Follower: answer sent, waiting for the leader's Finish.
struct AwaitFinish {
    index: u8,
    /// The offer came in clear: the key replaces the current one at once.
    clear: bool,
    offer: Hello,
    answer: Hello,
    key: PeerKey,
    finish_transcript: Vec<u8>,
    peer: PeerIdentity,
}

/// The peer-key exchange in progress, if any.
enum Exchange {
    Idle,
    AwaitAnswer(Box<AwaitAnswer>),
    AwaitPeerKeyAck(Box<AwaitPeerKeyAck>),
    AwaitFinish(Box<AwaitFinish>),
}

fn random_salt(rng: &mut dyn CryptoRngCore) -> [u8; SALT_LEN] {
    let mut s = [0u8; SALT_LEN];
    rng.fill_bytes(&mut s);
    s
}

fn random_challenge(rng: &mut dyn CryptoRngCore) -> [u8; CHALLENGE_LEN] {
    let mut s = [0u8; CHALLENGE_LEN];
    rng.fill_bytes(&mut s);
    s
}

/// Constant-time comparison of challenges.
fn same_challenge(a: &[u8; CHALLENGE_LEN], b: &[u8; CHALLENGE_LEN]) -> bool {
    bool::from(a.ct_eq(b))
}

impl AwaitAnswer {
    fn offer(
        alg: KeyExchangeAlgorithm,
        index: u8,
        challenge: [u8; CHALLENGE_LEN],
        clear: bool,
        names: &Names<'_>,
        identity: &Identity,
        rng: &mut dyn CryptoRngCore,
    ) -> Option<AwaitAnswer> {
        let salt = random_salt(rng);
        let secret = EphemeralSecret::generate(alg, rng);
        let signature = identity
            .sign(
                &names
                    .ctx(alg, index)
                    .offer(&salt, &challenge, secret.public()),
            )
            .ok()?;
        Some(AwaitAnswer {
            alg,
            index,
            salt,
            challenge,
            clear,
            secret,
            signature,
        })
    }

    fn hello(&self) -> Hello {
        Hello {
            version: EXCHANGE_VERSION,
            algorithm: self.alg.id(),
            index: self.index,
            salt: self.salt,
            challenge: self.challenge,
            public: self.secret.public().to_vec(),
            signature: self.signature.clone(),
        }
    }

    /// Check the follower's signature over the whole transcript, then agree and sign Finish.
    /// On failure the offer stays (the real answer may still come).
    fn on_answer(
        self: Box<Self>,
        answer: &Hello,
        peer: &PeerIdentity,
        names: &Names<'_>,
        identity: &Identity,
    ) -> Result<AwaitPeerKeyAck, (Box<AwaitAnswer>, FailureReason)> {
        let ctx = names.ctx(self.alg, self.index);
        let pub_l = self.secret.public();
        let c = &self.challenge;
        let t = ctx.answer(&self.salt, &answer.salt, c, pub_l, &answer.public);
        if peer.verify(&t, &answer.signature).is_err() {
            return Err((self, FailureReason::BadSignature));
        }
        let shared = match self.secret.diffie_hellman(&answer.public) {
            Ok(s) => s,
            Err(_) => return Err((self, FailureReason::BadPublicValue)),
        };
        let material = derive_peer_key(
            &shared,
            &self.salt,
            &answer.salt,
            names.leader,
            names.follower,
            self.index,
        );
        let finish_t = ctx.finish(&self.salt, &answer.salt, c, pub_l, &answer.public);
        let Ok(signature) = identity.sign(&finish_t) else {
            return Err((self, FailureReason::BadSignature));
        };
        Ok(AwaitPeerKeyAck {
            index: self.index,
            challenge: self.challenge,
            clear: self.clear,
            key: PeerKey::new(&material),
            finish: Finish {
                index: self.index,
                signature,
            },
            answer: answer.clone(),
        })
        // `self.secret` is dropped (zeroized) here.
    }
}

impl AwaitFinish {
    /// Verify the leader's offer, agree, sign the answer.
    fn answer(
        alg: KeyExchangeAlgorithm,
        offer: &Hello,
        clear: bool,
        peer: PeerIdentity,
        names: &Names<'_>,
        identity: &Identity,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<AwaitFinish, FailureReason> {
        let ctx = names.ctx(alg, offer.index);
        let c = &offer.challenge;
        peer.verify(&ctx.offer(&offer.salt, c, &offer.public), &offer.signature)
            .map_err(|_| FailureReason::BadSignature)?;
        let salt = random_salt(rng);
        let secret = EphemeralSecret::generate(alg, rng);
        let shared = secret
            .diffie_hellman(&offer.public)
            .map_err(|_| FailureReason::BadPublicValue)?;
        let material = derive_peer_key(
            &shared,
            &offer.salt,
            &salt,
            names.leader,
            names.follower,
            offer.index,
        );
        let pub_f = secret.public();
        let signature = identity
            .sign(&ctx.answer(&offer.salt, &salt, c, &offer.public, pub_f))
            .map_err(|_| FailureReason::BadSignature)?;
        let finish_transcript = ctx.finish(&offer.salt, &salt, c, &offer.public, pub_f);
        Ok(AwaitFinish {
            index: offer.index,
            clear,
            offer: offer.clone(),
            answer: Hello {
                version: EXCHANGE_VERSION,
                algorithm: alg.id(),
                index: offer.index,
                salt,
                challenge: offer.challenge,
                public: pub_f.to_vec(),
                signature,
            },
            key: PeerKey::new(&material),
            finish_transcript,
            peer,
        })
        // `secret` is dropped (zeroized) here: the follower's secret lives for one call.
    }

    /// Verify the leader's Finish; the key becomes usable.
    fn on_finish(
        self: Box<Self>,
        finish: &Finish,
    ) -> Result<PeerKey, (Box<AwaitFinish>, FailureReason)> {
        if self
            .peer
            .verify(&self.finish_transcript, &finish.signature)
            .is_err()
        {
            return Err((self, FailureReason::BadSignature));
        }
        let this = *self;
        Ok(this.key)
    }
}

// ----- key sets -----

/// Peer keys: the one we seal with, the next one (used after [`KEY_SWITCH_DELAY`]), and the
/// previous one (accepted for [`GRACE`] after the switch).
#[derive(Default)]
struct PeerKeyRing {
    current: Option<PeerKey>,
    next: Option<PeerKey>,
    previous: Option<PeerKey>,
}

impl PeerKeyRing {
    fn lookup(&self, index: u32) -> Option<&PeerKey> {
        [&self.current, &self.next, &self.previous]
            .into_iter()
            .flatten()
            .find(|k| u32::from(k.index()) == index)
    }
}

/// Our own metadata key as sent to the peer.
struct OwnMd {
    msg: MetadataKeyMsg,
    key: Arc<MetadataKey>,
    acked: bool,
}

#[derive(Default)]
struct OwnMdKeys {
    current: Option<OwnMd>,
    /// The last acknowledged key before `current`, accepted until retired.
    previous: Option<Arc<MetadataKey>>,
    acked_any: bool,
    last_index: u32,
}

/// One of the peer's metadata keys, with the peer-key index it arrived under and a
/// fingerprint that recognises retransmissions.
struct PeerMd {
    key: Arc<MetadataKey>,
    peer_key: u32,
    fingerprint: [u8; 16],
}

/// SHA-256 over the key material, truncated: tells a retransmitted key from a new one with
/// the same index (a restarted peer counts from 1 again).
fn fingerprint(m: &MetadataKeyMsg) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(m.rekey_index.to_be_bytes());
    h.update(m.enc_key);
    h.update(m.hmac_key);
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The peer's metadata keys: the one we encrypt metadata to it with, and the next one.
#[derive(Default)]
struct PeerMdKeys {
    current: Option<PeerMd>,
    next: Option<PeerMd>,
}

/// The metadata keys a data plane needs for one peer; see [`PeerKeyState::published_keys`].
#[derive(Debug, Clone, Default)]
pub struct PublishedKeys {
    /// Our current metadata key for this peer (opens metadata the peer sends us).
    pub own_current: Option<Arc<MetadataKey>>,
    /// Our previous metadata key, accepted until its grace period ends.
    pub own_previous: Option<Arc<MetadataKey>>,
    /// The peer's metadata key we seal metadata to it with.
    pub send: Option<Arc<MetadataKey>>,
}

impl PublishedKeys {
    /// True when both hold the very same keys (pointer equality, no key bytes compared).
    pub fn same_as(&self, other: &PublishedKeys) -> bool {
        fn eq(a: &Option<Arc<MetadataKey>>, b: &Option<Arc<MetadataKey>>) -> bool {
            match (a, b) {
                (Some(x), Some(y)) => Arc::ptr_eq(x, y),
                (None, None) => true,
                _ => false,
            }
        }
        eq(&self.own_current, &other.own_current)
            && eq(&self.own_previous, &other.own_previous)
            && eq(&self.send, &other.send)
    }
}

/// One BFD authentication secret (RFC 5880 §6.7 keyed SHA/HMAC), derived from a peer key.
/// `Debug` redacts the secret; it is zeroized on drop.
#[derive(Clone)]
pub struct AuthSecret {
    /// The BFD Auth Key ID: the peer-key index the secret was derived from.
    pub key_id: u8,
    /// The 32-byte secret (HKDF-SHA256, `docs/bfd-metadata.md` §3).
    pub secret: Zeroizing<[u8; BFD_AUTH_LEN]>,
}

impl fmt::Debug for AuthSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSecret")
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The BFD authentication keys of one peer; see [`PeerKeyState::bfd_auth_keys`].
#[derive(Debug, Clone, Default)]
pub struct BfdAuthKeys {
    /// The key to sign transmitted BFD packets with (that of the current peer key); `None`
    /// before any peer key exists (BFD then runs unauthenticated, the path out of service).
    pub send: Option<AuthSecret>,
    /// Keys accepted on receipt: current, next (confirmed, not yet used for sending) and
    /// previous (during its grace period).
    pub accept: Vec<AuthSecret>,
    /// The link-test key (docs/multipath.md §5) of the current peer key, for the link test
    /// and the reflector of each of the peer's paths (`key_id` is the peer-key index, the
    /// secret is `derive_link_key`'s); `None` before any peer key exists.
    pub link: Option<AuthSecret>,
}

/// The stretch of time in which we hold no valid key for the peer.
#[derive(Debug, Clone, Copy)]
struct Episode {
    invalid: bool,
    heard_valid: bool,
    bfd_seen_up: bool,
}

/// The key state of one peer router. See the module doc for the calling protocol.
pub struct PeerKeyState {
    cfg: KeyConfig,
    local_name: String,
    peer_name: String,
    role: Role,
    identity: Arc<Identity>,
    anchor: Arc<TrustAnchor>,
    rng: Box<dyn CryptoRngCore + Send>,
    now: Instant,

    exchange: Exchange,
    last_index: u8,
    last_finished: Option<u8>,
    ring: PeerKeyRing,
    own_md: OwnMdKeys,
    peer_md: PeerMdKeys,
    payload_key_index: u8,

    bfd_up: bool,
    in_service: bool,
    episode: Option<Episode>,
    /// Follower: the challenge the leader's next offer must echo; renewed whenever an offer
    /// is answered, so a recorded offer is never answered again.
    challenge: [u8; CHALLENGE_LEN],
    /// Leader: we want to start an exchange and ask the follower for its challenge.
    request_challenge: bool,
    /// Follower: the leader asked for our challenge; `Some(true)` when it asked in clear.
    kr_reply: Option<bool>,
    /// The last block was clear (an exchange with a peer that lost our keys) while sealed
    /// messages wait: the next block carries those.
    sealed_next: bool,
    bucket: TokenBucket,
    /// The peer lost its keys (it restarted: a new peer key went into use at once after it
    /// spoke in clear), so the metadata key of its we hold is useless to it: the next one it
    /// sends replaces it at once rather than after [`KEY_SWITCH_DELAY`].
    peer_md_outdated: bool,
    /// The peer's certificate chain as last verified, for sealed Hellos that omit it.
    peer_chain: Option<Vec<Vec<u8>>>,
    acks_out: Vec<Ack>,
    tx_due: bool,
    timers: [Option<Instant>; TIMER_COUNT],

    events: VecDeque<KeyEvent>,
    history: EventHistory,
    last_failure: Option<KeyEvent>,
    stats: KeyStats,
    /// Moves on every change of `ring` (see [`PeerKeyState::key_generation`]).
    key_generation: u64,
    software_version: SoftwareVersion,
    /// The peer's software version from its last sealed block that carried one.
    peer_version: Option<SoftwareVersion>,
    /// The version its last clear block claimed: only named in a failure event.
    claimed_peer_version: Option<SoftwareVersion>,
}

impl fmt::Debug for PeerKeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerKeyState")
            .field("local_name", &self.local_name)
            .field("peer_name", &self.peer_name)
            .field("role", &self.role)
            .field("peer_key_index", &self.peer_key_index())
            .field("in_service", &self.in_service)
            .field("invalid", &self.is_invalid())
            .field("keys", &"<redacted>")
            .finish()
    }
}

impl PeerKeyState {
    /// Start keying with one peer at `now`. The leader (lower peering-common-name) offers at
    /// once; the follower sends a Key Request. Poll [`PeerKeyState::poll_block`] next.
    pub fn new(
        now: Instant,
        setup: PeerSetup,
        identity: Arc<Identity>,
        anchor: Arc<TrustAnchor>,
        rng: Box<dyn CryptoRngCore + Send>,
    ) -> Result<PeerKeyState, SetupError> {
        setup.config.validate()?;
        for n in [&setup.local_name, &setup.peer_name] {
            if n.is_empty() || n.len() > crate::message::MAX_NAME_LEN {
                return Err(SetupError::BadName(n.clone()));
            }
        }
        let role = match setup.local_name.as_str().cmp(setup.peer_name.as_str()) {
            core::cmp::Ordering::Less => Role::Leader,
            core::cmp::Ordering::Greater => Role::Follower,
            core::cmp::Ordering::Equal => return Err(SetupError::SameName(setup.peer_name)),
        };
        let mut s = PeerKeyState {
            cfg: setup.config,
            local_name: setup.local_name,
            peer_name: setup.peer_name,
            role,
            identity,
            anchor,
            rng,
            now,
            exchange: Exchange::Idle,
            last_index: 0,
            last_finished: None,
            ring: PeerKeyRing::default(),
            own_md: OwnMdKeys::default(),
            peer_md: PeerMdKeys::default(),
            payload_key_index: 0,
            bfd_up: false,
            in_service: false,
            episode: Some(Episode {
                invalid: false,
                heard_valid: false,
                bfd_seen_up: false,
            }),
            challenge: [0; CHALLENGE_LEN],
            request_challenge: false,
            kr_reply: None,
            sealed_next: false,
            bucket: TokenBucket::full(now),
            peer_md_outdated: false,
            peer_chain: None,
            acks_out: Vec::new(),
            tx_due: true,
            timers: [None; TIMER_COUNT],
            events: VecDeque::new(),
            history: EventHistory::default(),
            last_failure: None,
            stats: KeyStats::default(),
            key_generation: 0,
            software_version: setup.software_version,
            peer_version: None,
            claimed_peer_version: None,
        };
        s.set_timer(Timer::PeerKeyTimeout, now + s.cfg.peer_key_timeout);
        s.challenge = random_challenge(&mut *s.rng);
        if role == Role::Leader {
            s.request_exchange();
        }
        Ok(s)
    }

    // ----- queries -----

    /// This router's role in the pair.
    pub fn role(&self) -> Role {
        self.role
    }

    /// BFD is Up and keys are valid both ways (a peer key, the peer's metadata key, and ours
    /// acknowledged by the peer).
    pub fn path_in_service(&self) -> bool {
        self.in_service
    }

    /// Whether `peer-key-timeout` passed with no valid key: the path is invalid.
    pub fn is_invalid(&self) -> bool {
        self.episode.is_some_and(|e| e.invalid)
    }

    /// The peer's metadata key we encrypt SVR metadata to it with: the current one; a new one
    /// replaces it [`KEY_SWITCH_DELAY`] after it arrived.
    pub fn send_metadata_key(&self) -> Option<&MetadataKey> {
        self.peer_md.current.as_ref().map(|p| &*p.key)
    }

    /// Our own metadata key of `rekey_index` (the Security Identifier of received metadata):
    /// the current one, or the previous one during the grace period.
    pub fn recv_metadata_key(&self, rekey_index: u32) -> Option<&MetadataKey> {
        self.own_md
            .current
            .as_ref()
            .map(|o| &*o.key)
            .into_iter()
            .chain(self.own_md.previous.as_deref())
            .find(|k| k.rekey_index() == rekey_index)
    }

    /// The metadata keys to publish to a data plane, shared rather than copied (so one copy of
    /// the key schedule exists, zeroized when the last holder drops it):
    ///
    /// - `own`: our current metadata key for this peer (sent, maybe not yet acknowledged:
    ///   the peer may use it as soon as it has it) and the previous one still accepted;
    /// - `send`: the peer's metadata key we seal SVR metadata to it with.
    ///
    /// Compare with [`Arc::ptr_eq`] to see whether anything changed since the last call.
    pub fn published_keys(&self) -> PublishedKeys {
        PublishedKeys {
            own_current: self.own_md.current.as_ref().map(|o| Arc::clone(&o.key)),
            own_previous: self.own_md.previous.clone(),
            send: self.peer_md.current.as_ref().map(|p| Arc::clone(&p.key)),
        }
    }

    /// The BFD authentication keys derived from the peer keys held now: `send` from the
    /// current peer key, `accept` from the current, next and (during grace) previous ones.
    /// The set changes only when [`PeerKeyState::key_generation`] does.
    pub fn bfd_auth_keys(&self) -> BfdAuthKeys {
        let secret = |k: &PeerKey| AuthSecret {
            key_id: k.index(),
            secret: k.bfd_auth_secret().clone(),
        };
        BfdAuthKeys {
            send: self.ring.current.as_ref().map(secret),
            accept: [&self.ring.current, &self.ring.next, &self.ring.previous]
                .into_iter()
                .flatten()
                .map(secret)
                .collect(),
            link: self.ring.current.as_ref().map(|k| AuthSecret {
                key_id: k.index(),
                secret: k.link_key().clone(),
            }),
        }
    }

    /// A number that changes whenever the set of peer keys held (current, next, previous)
    /// changes, and so [`PeerKeyState::bfd_auth_keys`]: re-install BFD keys only when it moved.
    pub fn key_generation(&self) -> u64 {
        self.key_generation
    }

    /// The index of the peer key we seal blocks with.
    pub fn peer_key_index(&self) -> Option<u8> {
        self.ring.current.as_ref().map(PeerKey::index)
    }

    /// The current payload-key index; it moves on every `payload-key-rekey-interval`.
    pub fn payload_key_index(&self) -> u8 {
        self.payload_key_index
    }

    /// Counters.
    pub fn stats(&self) -> &KeyStats {
        &self.stats
    }

    /// Every event so far (bounded), with timestamps.
    pub fn history(&self) -> &EventHistory {
        &self.history
    }

    /// The peer's peering-common-name.
    pub fn peer_name(&self) -> &str {
        &self.peer_name
    }

    /// The peer's software version, from its last sealed block that carried one.
    pub fn peer_software_version(&self) -> Option<&SoftwareVersion> {
        self.peer_version.as_ref()
    }

    /// The leaf certificate (DER) the peer last presented, once it presented one.
    pub fn peer_certificate(&self) -> Option<&[u8]> {
        self.peer_chain.as_ref()?.first().map(Vec::as_slice)
    }

    /// When (key clock) the next peer-key rotation starts (the leader's timer; `None` on the
    /// follower, before the first key, or with `never`) and the next payload-key rotation.
    pub fn next_rotations(&self) -> (Option<Instant>, Option<Instant>) {
        (
            self.timers[Timer::PeerRekey as usize],
            self.timers[Timer::PayloadRekey as usize],
        )
    }

    /// An operator asks for a peer-key rotation now (what `peer-key-rekey-interval` does when
    /// it expires): the leader starts a new exchange at once. Refused on the follower (the
    /// leader starts every rotation), before the first key, and while an exchange is
    /// finishing (its key is being acknowledged).
    pub fn rekey_now(&mut self, now: Instant) -> Result<(), RekeyRefused> {
        self.now = now;
        if self.role != Role::Leader {
            return Err(RekeyRefused::Follower);
        }
        if self.ring.current.is_none() {
            return Err(RekeyRefused::NoKey);
        }
        if matches!(self.exchange, Exchange::AwaitPeerKeyAck(_)) {
            return Err(RekeyRefused::Busy);
        }
        self.exchange = Exchange::Idle;
        self.request_exchange();
        Ok(())
    }

    // ----- outputs -----

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<KeyEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline at which [`PeerKeyState::handle_timeout`] must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    /// The metadata block for the next BFD control packet, or `None` when there is nothing
    /// to send (a BFD packet may then go without a block). Uses the time of the last input.
    pub fn poll_block(&mut self) -> Option<Vec<u8>> {
        if !self.tx_due {
            return None;
        }
        self.tx_due = false;
        let have_key = self.ring.current.is_some();
        // After a clear block, sealed messages that waited go alone.
        let sealed_only = core::mem::take(&mut self.sealed_next) && have_key;
        let mut msgs = Vec::new();
        let mut retransmit = false;
        // Clear when we hold no key, or when the exchange (or the request) in hand is with a
        // peer that spoke in clear: it holds none of our keys.
        let mut clear = !have_key;
        if sealed_only {
            if self.kr_reply.is_some() {
                self.tx_due = true;
            }
        } else {
            match &self.exchange {
                Exchange::AwaitAnswer(o) => {
                    msgs.push(Message::Hello(o.hello()));
                    clear |= o.clear;
                    // A clear offer while we hold a key is retransmitted only when asked
                    // again (the follower's Key Request), so a spoofed request costs one
                    // block, not one every interval.
                    retransmit |= !(o.clear && have_key);
                }
                Exchange::AwaitPeerKeyAck(f) => {
                    msgs.push(Message::Finish(f.finish.clone()));
                    clear |= f.clear;
                    retransmit = true;
                }
                Exchange::AwaitFinish(a) => {
                    msgs.push(Message::Hello(a.answer.clone()));
                    clear |= a.clear;
                    retransmit = true;
                }
                Exchange::Idle => {}
            }
            let idle = matches!(self.exchange, Exchange::Idle);
            let have_index = self.peer_key_index().map_or(0, u32::from);
            match self.role {
                Role::Follower => {
                    let reply = self.kr_reply.take();
                    let no_key = idle && !have_key;
                    if no_key || reply.is_some() {
                        clear |= reply == Some(true);
                        retransmit |= no_key;
                        msgs.push(Message::KeyRequest(KeyRequest {
                            kind: KeyKind::PeerKey,
                            have_index,
                            challenge: self.challenge,
                        }));
                    }
                }
                Role::Leader => {
                    if self.request_challenge && idle {
                        retransmit = true;
                        msgs.push(Message::KeyRequest(KeyRequest {
                            kind: KeyKind::PeerKey,
                            have_index,
                            challenge: [0; CHALLENGE_LEN],
                        }));
                    }
                }
            }
            // A sealed block goes to a peer that verified our chain in the exchange that made
            // the sealing key: it re-verifies that one, so the chain (most of a Hello's size)
            // stays out and a dh-modp-4096 rekey Hello fits a 1500-byte path MTU.
            if clear && msgs.iter().any(|m| matches!(m, Message::Hello(_))) {
                msgs.push(Message::CertificateChain(self.identity.chain().to_vec()));
            }
        }
        let own_md_due = self.own_md.current.as_ref().is_some_and(|o| !o.acked);
        if !clear {
            if let Some(o) = self.own_md.current.as_ref().filter(|o| !o.acked) {
                msgs.push(Message::MetadataKey(o.msg.clone()));
                retransmit = true;
            }
            if !self.acks_out.is_empty() {
                msgs.push(Message::Ack(core::mem::take(&mut self.acks_out)));
            }
        } else if have_key && (own_md_due || !self.acks_out.is_empty()) {
            self.sealed_next = true;
            self.tx_due = true;
        }
        if retransmit {
            if self.timers[Timer::Retransmit as usize].is_none() {
                let at = self.now + self.retransmit_interval();
                self.set_timer(Timer::Retransmit, at);
            }
        } else if !self.sealed_next {
            self.timers[Timer::Retransmit as usize] = None;
        }
        if msgs.is_empty() {
            return None;
        }
        if msgs.iter().any(|m| {
            matches!(
                m,
                Message::KeyRequest(_) | Message::Hello(_) | Message::MetadataKey(_)
            )
        }) {
            msgs.push(Message::SoftwareVersion(self.software_version.clone()));
        }
        let mut iv = [0u8; 16];
        let protection = match self.ring.current.as_ref().filter(|_| !clear) {
            Some(key) => {
                self.rng.fill_bytes(&mut iv);
                Protection::Sealed { key, iv }
            }
            None => Protection::Clear,
        };
        match encode_block(&self.local_name, &msgs, protection) {
            Ok(b) => {
                self.stats.blocks_out += 1;
                Some(b)
            }
            Err(e) => {
                self.stats.dropped[e.index()] += 1;
                None
            }
        }
    }

    // ----- inputs -----

    /// BFD for this peer went Up (on any path).
    pub fn bfd_up(&mut self, now: Instant) {
        self.now = now;
        self.bfd_up = true;
        if let Some(e) = self.episode.as_mut() {
            e.bfd_seen_up = true;
        }
        self.update_service(now);
    }

    /// BFD went Down. Keys survive; the path leaves service.
    pub fn bfd_down(&mut self, now: Instant) {
        self.now = now;
        self.bfd_up = false;
        self.update_service(now);
    }

    /// An interface changed state: if we hold no valid key, retry at once.
    pub fn interface_state_changed(&mut self, now: Instant) {
        self.now = now;
        if self.episode.is_some() {
            self.retry();
        }
    }

    /// Timers; a call before any deadline is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        for t in TIMER_ORDER {
            match self.timers[t as usize] {
                Some(at) if at <= now => {
                    self.timers[t as usize] = None;
                    self.on_timer(now, t);
                }
                _ => {}
            }
        }
        self.update_service(now);
    }

    /// A metadata block that arrived after a BFD control packet from this peer. `unix_now`
    /// is wall time in seconds, for certificate validity. Malformed or unauthentic blocks are
    /// dropped and counted in [`KeyStats::dropped`]; nothing here panics on input.
    pub fn handle_block(&mut self, now: Instant, unix_now: u64, block: &[u8]) {
        self.now = now;
        self.stats.blocks_in += 1;
        let view = match parse_block(block) {
            Ok(v) => v,
            Err(e) => return self.drop_block(e),
        };
        if view.peering_name != self.peer_name {
            // Someone on the peer's path calls itself by another name. If it presents a
            // certificate, check it against the name we expect, so that the event says why
            // peering fails (a valid chain for another name is a `NameMismatch`). Cheap to
            // bound: at most one chain per BFD packet, as for a genuine Hello.
            let chain = match view.key_index {
                None => view.open(None).ok().and_then(|msgs| {
                    msgs.into_iter().find_map(|m| match m {
                        Message::CertificateChain(c) => Some(c),
                        _ => None,
                    })
                }),
                Some(_) => None,
            };
            match chain {
                Some(c) => {
                    if self.take_token(now) {
                        self.stats.expensive_work += 1;
                        let _ = self.verify_chain(unix_now, Some(&c));
                    }
                }
                None => self.report(KeyEvent::PeeringFailed {
                    reason: FailureReason::PeerNameMismatch {
                        claimed: view.peering_name.to_owned(),
                    },
                }),
            }
            return self.drop_block(BlockError::WrongPeer);
        }
        let opened = match view.key_index {
            None => view.open(None),
            Some(i) => view.open(self.lookup_key(i)),
        };
        let msgs = match opened {
            Ok(m) => m,
            Err(e) => return self.drop_block(e),
        };
        if let Some(e) = self.episode.as_mut() {
            e.heard_valid = true;
        }
        // A clear block never changes keys or service by itself: at most it starts a new
        // exchange (in clear) beside the keys we hold, and only that exchange, completed with
        // fresh signatures, replaces them.
        let clear = !view.is_sealed();
        let block_key = view.key_index;
        // A sealed block (authenticated by a peer key, which only the peer whose chain we
        // verified can hold) may leave its chain out: that chain is verified again, at
        // today's time, so an expired certificate still stops a rekey.
        let cached = if view.is_sealed() {
            self.peer_chain.clone()
        } else {
            None
        };
        let chain = msgs
            .iter()
            .find_map(|m| match m {
                Message::CertificateChain(c) => Some(c.as_slice()),
                _ => None,
            })
            .or(cached.as_deref());
        if let Some(v) = msgs.iter().find_map(|m| match m {
            Message::SoftwareVersion(v) => Some(v),
            _ => None,
        }) {
            self.on_software_version(v, clear);
        }
        // Metadata keys last: an Ack in the same block may confirm the peer key they came
        // under (the block's TLV order puts Metadata Key first).
        for m in &msgs {
            match m {
                Message::CertificateChain(_)
                | Message::MetadataKey(_)
                | Message::SoftwareVersion(_) => {}
                Message::Hello(h) => self.on_hello(now, unix_now, h, chain, clear),
                Message::Finish(f) => self.on_finish(now, f, clear),
                Message::KeyRequest(r) => self.on_key_request(now, r, clear),
                Message::Ack(acks) => {
                    for a in acks {
                        self.on_ack(now, a);
                    }
                }
            }
        }
        for m in &msgs {
            if let Message::MetadataKey(k) = m {
                self.on_metadata_key(now, k, block_key);
            }
        }
        self.update_service(now);
    }

    // ----- internals -----

    fn names<'a>(role: Role, local: &'a str, peer: &'a str) -> Names<'a> {
        match role {
            Role::Leader => Names {
                leader: local,
                follower: peer,
            },
            Role::Follower => Names {
                leader: peer,
                follower: local,
            },
        }
    }

    /// The key timers in use.
    pub fn config(&self) -> &KeyConfig {
        &self.cfg
    }

    /// A new trust anchor at `now` (a reload with a new CRL). Later exchanges verify against
    /// it; a peer whose certificate it now rejects loses every key at once: its BFD can no
    /// longer authenticate, its path leaves service, and [`KeyEvent::CertificateRejected`]
    /// says why. Returns whether that happened. `unix_now` is wall time in seconds.
    pub fn set_trust_anchor(
        &mut self,
        now: Instant,
        unix_now: u64,
        anchor: Arc<TrustAnchor>,
    ) -> bool {
        self.now = now;
        self.anchor = anchor;
        let Some(chain) = self.peer_chain.clone() else {
            return false;
        };
        let Err(reason) = verify_peer(&chain, &self.anchor, &self.peer_name, unix_now) else {
            return false;
        };
        self.stats.certificate_rejected += 1;
        self.report(KeyEvent::CertificateRejected { reason });
        self.peer_chain = None;
        self.forget_peer(now);
        true
    }

    /// Drops every key shared with the peer and starts over as at start (new exchanges
    /// verify its certificate again).
    fn forget_peer(&mut self, now: Instant) {
        self.ring = PeerKeyRing::default();
        self.peer_md = PeerMdKeys::default();
        self.own_md.acked_any = false;
        self.exchange = Exchange::Idle;
        self.key_generation += 1;
        self.episode = Some(Episode {
            invalid: false,
            heard_valid: false,
            bfd_seen_up: self.bfd_up,
        });
        self.set_timer(Timer::PeerKeyTimeout, now + self.cfg.peer_key_timeout);
        self.timers[Timer::PeerRekey as usize] = None;
        self.retry();
        self.update_service(now);
    }

    /// Changes the key timers at `now` (a reload): rekey intervals, retransmit interval and
    /// timeout; `new.algorithm` is ignored (it cannot change on a running pair). A running
    /// rekey timer is moved to where the new interval ends, counted from when the old one
    /// started (at once if that has passed); `never` stops it; an interval that was `never`
    /// starts at `now` where its timer would run (the payload rekey once peering is
    /// established; the peer-key rekey at the leader once a peer key exists). Retransmit
    /// and timeout apply from the next time they are armed. Keys and their indexes are kept.
    /// On `Err` nothing changed.
    pub fn set_timers(&mut self, now: Instant, new: KeyConfig) -> Result<(), SetupError> {
        let new = KeyConfig {
            algorithm: self.cfg.algorithm,
            ..new
        };
        new.validate()?;
        let established = self.episode.is_none() && self.ring.current.is_some();
        let leader = self.role == Role::Leader && self.ring.current.is_some();
        for (timer, old, want, arm) in [
            (
                Timer::PeerRekey,
                self.cfg.peer_key_rekey_interval,
                new.peer_key_rekey_interval,
                leader,
            ),
            (
                Timer::PayloadRekey,
                self.cfg.payload_key_rekey_interval,
                new.payload_key_rekey_interval,
                established,
            ),
        ] {
            let slot = &mut self.timers[timer as usize];
            *slot = match (*slot, old.as_duration(), want.as_duration()) {
                (_, _, None) => None,
                (Some(at), Some(old), Some(d)) => Some((at - old + d).max(now)),
                (None, None, Some(d)) if arm => Some(now + d),
                (slot, _, Some(_)) => slot,
            };
        }
        self.cfg = new;
        Ok(())
    }

    fn set_timer(&mut self, t: Timer, at: Instant) {
        self.timers[t as usize] = Some(at);
    }

    fn retransmit_interval(&self) -> Duration {
        if self.is_invalid() {
            self.cfg.peer_key_timeout
        } else {
            self.cfg.peer_key_retransmit_interval
        }
    }

    fn emit(&mut self, event: KeyEvent) {
        self.history.push(self.now, event.clone());
        if self.events.len() == MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// Emit a failure once until something else happens (retransmissions would repeat it).
    fn report(&mut self, event: KeyEvent) {
        if self.last_failure.as_ref() != Some(&event) {
            self.last_failure = Some(event.clone());
            self.emit(event);
        }
    }

    fn fail(&mut self, reason: FailureReason) {
        match reason {
            FailureReason::BadSignature => self.stats.bad_signature += 1,
            FailureReason::UnsupportedAlgorithm(_)
            | FailureReason::UnsupportedVersion { .. }
            | FailureReason::UnsupportedCipher => self.stats.unsupported += 1,
            _ => {}
        }
        self.report(KeyEvent::PeeringFailed { reason });
    }

    fn drop_block(&mut self, e: BlockError) {
        self.stats.dropped[e.index()] += 1;
    }

    fn lookup_key(&self, index: u32) -> Option<&PeerKey> {
        self.ring.lookup(index).or(match &self.exchange {
            Exchange::AwaitPeerKeyAck(f) if u32::from(f.key.index()) == index => Some(&f.key),
            Exchange::AwaitFinish(a) if u32::from(a.key.index()) == index => Some(&a.key),
            _ => None,
        })
    }

    fn next_index(&mut self) -> u8 {
        // 1..=255; 0 means "none" in a Key Request.
        self.last_index = if self.last_index == u8::MAX {
            1
        } else {
            self.last_index + 1
        };
        self.last_index
    }

    /// Leader: start an exchange by asking the follower for its challenge (the offer must
    /// echo it).
    fn request_exchange(&mut self) {
        if self.role == Role::Leader {
            self.request_challenge = true;
        }
        self.tx_due = true;
        self.timers[Timer::Retransmit as usize] = None;
    }

    /// Leader: a fresh offer (new salt, new ephemeral secret, next index) echoing the
    /// follower's `challenge`; `clear` when the follower asked in clear.
    fn start_offer(&mut self, challenge: [u8; CHALLENGE_LEN], clear: bool) {
        if self.role != Role::Leader {
            return;
        }
        let index = self.next_index();
        let alg = self.cfg.algorithm;
        let names = Names {
            leader: &self.local_name,
            follower: &self.peer_name,
        };
        if let Some(o) = AwaitAnswer::offer(
            alg,
            index,
            challenge,
            clear,
            &names,
            &self.identity,
            &mut *self.rng,
        ) {
            self.exchange = Exchange::AwaitAnswer(Box::new(o));
        }
        self.request_challenge = false;
        self.tx_due = true;
        self.timers[Timer::Retransmit as usize] = None;
    }

    /// Retry now (after `peer-key-timeout`, or on an interface change).
    fn retry(&mut self) {
        match (self.role, &self.exchange) {
            (Role::Leader, Exchange::Idle | Exchange::AwaitAnswer(_)) => {
                self.exchange = Exchange::Idle;
                self.request_exchange();
            }
            _ => self.tx_due = true,
        }
        self.timers[Timer::Retransmit as usize] = None;
    }

    /// One token of the clear-block bucket, or count the refusal.
    fn take_token(&mut self, now: Instant) -> bool {
        if self.bucket.take(now) {
            true
        } else {
            self.stats.clear_rate_limited += 1;
            false
        }
    }

    fn on_timer(&mut self, now: Instant, t: Timer) {
        match t {
            Timer::PeerKeySwitch => {
                if let Some(k) = self.ring.next.take() {
                    self.key_generation += 1;
                    let index = u32::from(k.index());
                    if let Some(old) = self.ring.current.replace(k) {
                        self.ring.previous = Some(old);
                        self.set_timer(Timer::PeerKeyRetire, now + GRACE);
                    }
                    self.emit(KeyEvent::KeyRotated {
                        which: KeyKind::PeerKey,
                        index,
                    });
                }
            }
            Timer::PeerKeyRetire => {
                if self.ring.previous.take().is_some() {
                    self.key_generation += 1;
                }
            }
            Timer::PeerMdSwitch => {
                if let Some(next) = self.peer_md.next.take() {
                    let index = next.key.rekey_index();
                    self.peer_md.current = Some(next);
                    self.emit(KeyEvent::KeyRotated {
                        which: KeyKind::MetadataKey,
                        index,
                    });
                }
            }
            Timer::OwnMdRetire => self.own_md.previous = None,
            Timer::PeerKeyTimeout => {
                if let Some(mut e) = self.episode {
                    e.invalid = true;
                    self.episode = Some(e);
                    self.emit(KeyEvent::PathInvalid);
                    if e.bfd_seen_up && !e.heard_valid {
                        self.fail(FailureReason::NoKeyExchange);
                    }
                    self.retry();
                }
            }
            Timer::Retransmit => {
                if self.is_invalid() {
                    self.retry();
                } else {
                    self.tx_due = true;
                }
            }
            Timer::PeerRekey => {
                // A rekey displaces a pending offer (a clear one may be an attacker's doing).
                if self.role == Role::Leader
                    && !matches!(self.exchange, Exchange::AwaitPeerKeyAck(_))
                {
                    self.exchange = Exchange::Idle;
                    self.request_exchange();
                }
            }
            Timer::PayloadRekey => {
                self.payload_key_index = self.payload_key_index.wrapping_add(1);
                let i = self.payload_key_index;
                self.emit(KeyEvent::PayloadKeyRotationDue {
                    payload_key_index: i,
                });
                self.emit(KeyEvent::KeyRotated {
                    which: KeyKind::PayloadKey,
                    index: u32::from(i),
                });
                if let Some(d) = self.cfg.payload_key_rekey_interval.as_duration() {
                    self.set_timer(Timer::PayloadRekey, now + d);
                }
            }
        }
    }

    /// Only a sealed block's version is the peer's (its HMAC is the peer key's); a clear
    /// block's is a claim, kept to name it if the exchange fails.
    fn on_software_version(&mut self, v: &SoftwareVersion, clear: bool) {
        if clear {
            self.claimed_peer_version = Some(v.clone());
            return;
        }
        if self.peer_version.as_ref() == Some(v) {
            return;
        }
        self.peer_version = Some(v.clone());
        if !v.is_compatible_with(&self.software_version) {
            self.stats.incompatible_version += 1;
            self.emit(KeyEvent::IncompatibleVersion {
                peer: v.clone(),
                local: self.software_version.clone(),
            });
        }
    }

    fn verify_chain(&mut self, unix_now: u64, chain: Option<&[Vec<u8>]>) -> Option<PeerIdentity> {
        let Some(chain) = chain else {
            self.stats.missing_certificate += 1;
            return None;
        };
        match verify_peer(chain, &self.anchor, &self.peer_name, unix_now) {
            Ok(p) => {
                if self.peer_chain.as_deref() != Some(chain) {
                    self.peer_chain = Some(chain.to_vec());
                }
                Some(p)
            }
            Err(reason) => {
                self.stats.certificate_rejected += 1;
                self.report(KeyEvent::CertificateRejected { reason });
                None
            }
        }
    }

    fn on_hello(
        &mut self,
        now: Instant,
        unix_now: u64,
        h: &Hello,
        chain: Option<&[Vec<u8>]>,
        clear: bool,
    ) {
        if h.version != EXCHANGE_VERSION {
            return self.fail(FailureReason::UnsupportedVersion {
                exchange: h.version,
                peer_software: self.claimed_peer_version.clone(),
            });
        }
        let Some(alg) = KeyExchangeAlgorithm::from_id(h.algorithm) else {
            return self.fail(FailureReason::UnsupportedAlgorithm(h.algorithm));
        };
        // Cheap duplicate, staleness and freshness checks before any certificate or DH work.
        match (self.role, &self.exchange) {
            (Role::Leader, Exchange::AwaitPeerKeyAck(f)) if f.answer == *h => {
                self.tx_due = true; // our Finish was lost: send it again
                return;
            }
            (Role::Leader, Exchange::AwaitAnswer(o)) if o.index == h.index && o.alg == alg => {
                if !same_challenge(&o.challenge, &h.challenge) {
                    self.stats.stale_challenge += 1;
                    return;
                }
            }
            (Role::Leader, _) => {
                self.stats.stale += 1;
                return;
            }
            (Role::Follower, Exchange::AwaitFinish(a)) if a.offer == *h => {
                self.tx_due = true; // our answer was lost: send it again
                return;
            }
            (Role::Follower, _) => {
                // An offer must echo our current challenge: a recorded one never does.
                if !same_challenge(&self.challenge, &h.challenge) {
                    self.stats.stale_challenge += 1;
                    return;
                }
            }
        }
        if clear && !self.take_token(now) {
            return;
        }
        self.stats.expensive_work += 1;
        let Some(peer) = self.verify_chain(unix_now, chain) else {
            return;
        };
        let exchange = core::mem::replace(&mut self.exchange, Exchange::Idle);
        let names = Self::names(self.role, &self.local_name, &self.peer_name);
        let (next, failure) = match (self.role, exchange) {
            (Role::Leader, Exchange::AwaitAnswer(o)) => {
                match o.on_answer(h, &peer, &names, &self.identity) {
                    Ok(f) => (Exchange::AwaitPeerKeyAck(Box::new(f)), None),
                    Err((o, r)) => (Exchange::AwaitAnswer(o), Some(r)),
                }
            }
            (Role::Follower, previous) => match AwaitFinish::answer(
                alg,
                h,
                clear,
                peer,
                &names,
                &self.identity,
                &mut *self.rng,
            ) {
                Ok(a) => (Exchange::AwaitFinish(Box::new(a)), None),
                Err(r) => (previous, Some(r)),
            },
            (Role::Leader, other) => (other, None),
        };
        self.exchange = next;
        if let Some(r) = failure {
            self.fail(r);
        } else {
            if self.role == Role::Follower {
                // This challenge is spent: the next offer must echo a new one.
                self.challenge = random_challenge(&mut *self.rng);
            }
            self.tx_due = true;
            self.timers[Timer::Retransmit as usize] = None;
        }
    }

    fn on_finish(&mut self, now: Instant, f: &Finish, clear: bool) {
        match &self.exchange {
            Exchange::AwaitFinish(a) if a.index == f.index => {}
            Exchange::Idle if self.last_finished == Some(f.index) => {
                // Our Ack was lost: acknowledge again.
                self.queue_ack(KeyKind::PeerKey, u32::from(f.index));
                return;
            }
            _ => {
                self.stats.stale += 1;
                return;
            }
        }
        if clear && !self.take_token(now) {
            return;
        }
        self.stats.expensive_work += 1;
        let Exchange::AwaitFinish(a) = core::mem::replace(&mut self.exchange, Exchange::Idle)
        else {
            return;
        };
        let at_once = a.clear;
        match a.on_finish(f) {
            Ok(key) => {
                self.last_finished = Some(f.index);
                self.last_index = f.index;
                self.queue_ack(KeyKind::PeerKey, u32::from(f.index));
                self.install_peer_key(now, key, at_once);
            }
            Err((a, r)) => {
                self.exchange = Exchange::AwaitFinish(a);
                self.fail(r);
            }
        }
    }

    fn on_key_request(&mut self, now: Instant, r: &KeyRequest, clear: bool) {
        if r.kind != KeyKind::PeerKey {
            self.stats.stale += 1;
            return;
        }
        if self.role == Role::Follower {
            // The leader wants to start an exchange: tell it our challenge (in clear if it
            // asked in clear: it may have lost our keys). Cheap; nothing else changes.
            self.kr_reply = Some(clear || self.ring.current.is_none());
            self.tx_due = true;
            return;
        }
        let have_key = self.ring.current.is_some();
        match &self.exchange {
            // The offer (or Finish) in hand already echoes this challenge: send it again, no
            // new DH or signature (a replayed Key Request costs one block).
            Exchange::AwaitAnswer(o)
                if same_challenge(&o.challenge, &r.challenge) && o.alg == self.cfg.algorithm =>
            {
                self.stats.offers_reused += 1;
                self.tx_due = true;
                return;
            }
            Exchange::AwaitPeerKeyAck(f) if same_challenge(&f.challenge, &r.challenge) => {
                self.stats.offers_reused += 1;
                self.tx_due = true;
                return;
            }
            // A clear request never displaces a sealed exchange in progress: anyone can send
            // one, and it would stall the rekey.
            Exchange::AwaitAnswer(o) if clear && have_key && !o.clear => {
                self.stats.stale += 1;
                return;
            }
            Exchange::AwaitPeerKeyAck(f) if clear && have_key && !f.clear => {
                self.stats.stale += 1;
                return;
            }
            _ => {}
        }
        if clear && !self.take_token(now) {
            return;
        }
        self.stats.expensive_work += 1;
        self.start_offer(r.challenge, clear);
    }

    fn on_metadata_key(&mut self, now: Instant, m: &MetadataKeyMsg, block_key: Option<u32>) {
        if m.cipher != CIPHER_AES_256_CBC || m.hmac_cipher != HMAC_SHA384_192 {
            return self.fail(FailureReason::UnsupportedCipher);
        }
        let index = m.rekey_index;
        // Only sealed blocks carry metadata keys (the codec refuses them in clear).
        let pk = block_key.unwrap_or(0);
        self.queue_ack(KeyKind::MetadataKey, index);
        let fp = fingerprint(m);
        let known = |s: &Option<PeerMd>| s.as_ref().is_some_and(|p| p.fingerprint == fp);
        if known(&self.peer_md.current) || known(&self.peer_md.next) {
            return; // a retransmission: acknowledged again above
        }
        let new = PeerMd {
            key: Arc::new(MetadataKey::new(index, &m.enc_key, &m.hmac_key)),
            peer_key: pk,
            fingerprint: fp,
        };
        match &self.peer_md.current {
            None => self.peer_md.current = Some(new),
            // Newer, or sent under a different peer key than the current one (the peer
            // restarted and counts from 1 again). An older index under the same peer key is a
            // replay and is ignored.
            // The peer restarted (its key came under a peer key that went into use at once
            // because the peer had lost its keys): it no longer holds the metadata key we
            // use, so waiting would only lose sessions. Switch now.
            // The restarted peer no longer holds the key we use: waiting would only lose
            // sessions. Switch now, whatever the index (it counts from 1 again).
            Some(_) if self.peer_md_outdated => {
                self.peer_md_outdated = false;
                self.peer_md.next = None;
                self.timers[Timer::PeerMdSwitch as usize] = None;
                self.peer_md.current = Some(new);
                self.emit(KeyEvent::KeyRotated {
                    which: KeyKind::MetadataKey,
                    index,
                });
            }
            Some(cur) if index > cur.key.rekey_index() || pk != cur.peer_key => {
                self.peer_md.next = Some(new);
                self.set_timer(Timer::PeerMdSwitch, now + KEY_SWITCH_DELAY);
            }
            Some(_) => self.stats.stale += 1,
        }
    }

    fn on_ack(&mut self, now: Instant, a: &Ack) {
        match a.kind {
            KeyKind::PeerKey => {
                let matches = matches!(&self.exchange,
                    Exchange::AwaitPeerKeyAck(f) if u32::from(f.index) == a.index);
                if !matches {
                    self.stats.stale += 1;
                    return;
                }
                if let Exchange::AwaitPeerKeyAck(f) =
                    core::mem::replace(&mut self.exchange, Exchange::Idle)
                {
                    let f = *f;
                    self.install_peer_key(now, f.key, f.clear);
                }
            }
            KeyKind::MetadataKey => match self.own_md.current.as_mut() {
                Some(o) if o.msg.rekey_index == a.index && !o.acked => {
                    o.acked = true;
                    self.own_md.acked_any = true;
                    if self.own_md.previous.is_some() {
                        self.set_timer(Timer::OwnMdRetire, now + KEY_SWITCH_DELAY + GRACE);
                    }
                }
                _ => self.stats.stale += 1,
            },
            KeyKind::PayloadKey => self.stats.stale += 1,
        }
    }

    fn queue_ack(&mut self, kind: KeyKind, index: u32) {
        let ack = Ack { kind, index };
        if !self.acks_out.contains(&ack) {
            self.acks_out.push(ack);
        }
        self.tx_due = true;
    }

    /// A confirmed new peer key. With no current key, or from an exchange the peer asked for
    /// (or offered) in clear (it lost its keys: it restarted), it is used at once; otherwise
    /// after [`KEY_SWITCH_DELAY`]. A new own metadata key goes with it.
    fn install_peer_key(&mut self, now: Instant, key: PeerKey, at_once: bool) {
        let index = key.index();
        self.stats.peer_keys_installed += 1;
        self.key_generation += 1;
        if self.ring.current.is_none() || at_once {
            if let Some(old) = self.ring.current.take() {
                self.ring.previous = Some(old);
                self.set_timer(Timer::PeerKeyRetire, now + GRACE);
                self.emit(KeyEvent::KeyRotated {
                    which: KeyKind::PeerKey,
                    index: u32::from(index),
                });
            }
            self.ring.current = Some(key);
            self.ring.next = None;
            self.timers[Timer::PeerKeySwitch as usize] = None;
            self.peer_md_outdated = self.peer_md.current.is_some();
        } else {
            self.ring.next = Some(key);
            self.set_timer(Timer::PeerKeySwitch, now + KEY_SWITCH_DELAY);
        }
        if self.role == Role::Leader {
            if let Some(d) = self.cfg.peer_key_rekey_interval.as_duration() {
                self.set_timer(Timer::PeerRekey, now + d);
            }
        }
        self.rotate_own_md();
        self.tx_due = true;
    }

    fn rotate_own_md(&mut self) {
        self.own_md.last_index = self.own_md.last_index.wrapping_add(1);
        let mut msg = MetadataKeyMsg {
            rekey_index: self.own_md.last_index,
            cipher: CIPHER_AES_256_CBC,
            enc_key: [0; 32],
            iv: [0; 16],
            hmac_cipher: HMAC_SHA384_192,
            hmac_key: [0; 48],
        };
        self.rng.fill_bytes(&mut msg.enc_key);
        self.rng.fill_bytes(&mut msg.iv);
        self.rng.fill_bytes(&mut msg.hmac_key);
        let key = Arc::new(MetadataKey::new(
            msg.rekey_index,
            &msg.enc_key,
            &msg.hmac_key,
        ));
        if let Some(old) = self.own_md.current.take() {
            if old.acked {
                self.own_md.previous = Some(old.key);
                // Retired once the new key is acknowledged and the peer has switched.
                self.timers[Timer::OwnMdRetire as usize] = None;
            }
        }
        self.own_md.current = Some(OwnMd {
            msg,
            key,
            acked: false,
        });
    }

    fn update_service(&mut self, now: Instant) {
        // Not while the metadata key we hold for the peer is one it no longer has (a new peer
        // key replaced the old one at once: the peer restarted): sessions would fail there.
        // Clear blocks alone never change this.
        let valid = self.ring.current.is_some()
            && self.peer_md.current.is_some()
            && self.own_md.acked_any
            && !self.peer_md_outdated;
        if valid && self.episode.is_some() {
            self.episode = None;
            self.timers[Timer::PeerKeyTimeout as usize] = None;
            self.last_failure = None;
            let peer_key_index = self.peer_key_index().unwrap_or(0);
            self.emit(KeyEvent::PeeringEstablished { peer_key_index });
            if self.timers[Timer::PayloadRekey as usize].is_none() {
                if let Some(d) = self.cfg.payload_key_rekey_interval.as_duration() {
                    self.set_timer(Timer::PayloadRekey, now + d);
                }
            }
        }
        let in_service = valid && self.bfd_up;
        if self.in_service && !in_service {
            self.emit(KeyEvent::PathOutOfService);
        }
        self.in_service = in_service;
    }
}
