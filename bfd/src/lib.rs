//! Sans-IO BFD (RFC 5880 asynchronous mode) for SVR peer paths.
//!
//! Each peer path (our waypoint to the peer's waypoint) runs one [`BfdSession`]. The path
//! carries traffic only while its session is Up (docs/background.md §4). Behind every BFD
//! control packet rides the **SVR BFD metadata block** (docs/background.md §6 "BFD metadata"): the
//! key exchange of the key-management layer. This crate treats that block as opaque bytes:
//! the caller passes the block to send into [`BfdSession::poll_transmit`] and gets the
//! received block back from [`BfdSession::handle_packet`].
//!
//! # On the wire
//!
//! ```text
//! | IPv4/IPv6 | UDP, port 1280 both ends | BFD control packet (24 B,  | SVR BFD metadata block      |
//! |           | (BFD_UDP_PORT; not 3784)  | 64 B with authentication)  | (optional, rest of payload) |
//!                                         ^ UDP payload offset 0       ^ offset = BFD Length (24 or 64)
//!
//! BFD control packet, big-endian, intervals in µs:
//!   0      Vers(3) = 1 | Diag(5)
//!   1      Sta(2) | P | F | C | A | D = 0 | M = 0      (A set when a send key is set)
//!   2      Detect Mult (≠ 0)
//!   3      Length = 24, or 64 with A (the BFD packet only; the SVR block is not counted)
//!   4..8   My Discriminator (≠ 0)
//!   8..12  Your Discriminator (0 only in Down/AdminDown)
//!   12..16 Desired Min TX Interval
//!   16..20 Required Min RX Interval (≠ 0 from our peers)
//!   20..24 Required Min Echo RX Interval = 0 (no echo)
//! Authentication section, only with A (RFC 5880 §4.1; docs/bfd-metadata.md §5):
//!   24     Auth Type = 255 (Meticulous Keyed HMAC-SHA256, a private value)
//!   25     Auth Len = 40
//!   26     Auth Key ID (the peer-key index)
//!   27     Reserved = 0
//!   28..32 Sequence Number (meticulous: +1 every packet)
//!   32..64 HMAC-SHA256(secret, bytes 0..64 with 32..64 zeroed)
//!
//! SVR BFD metadata block (owned by the key-management layer):
//!   L..L+8 SVR cookie 4C 48 DB C6 DD F6 67 0C                       (L = BFD Length)
//!   L+8..  SVR metadata header rest and TLVs (docs/protocol.md §2-§3), encrypted and
//!          signed with the peer key once one exists
//! ```
//!
//! A block is present when the UDP payload is longer than the BFD Length field; this crate
//! checks only that it starts with the cookie ([`SVR_COOKIE`]). The block is not covered by
//! BFD authentication (it protects itself), and [`BfdSession::handle_packet`] hands it back
//! in [`Received::block`] even when the control packet is discarded.
//!
//! # Authentication
//!
//! [`BfdSession::set_auth_keys`] installs the key that signs every transmitted packet and the
//! keys accepted from the peer ([`AuthKey`]: key id and 32-byte secret, which key management
//! derives from the peer key). With an accept key set, a packet without a valid section, with
//! an unknown key id, a bad digest (compared in constant time) or a sequence number not after
//! the last accepted one is discarded and counted. Without one (no peer key yet), packets
//! with or without a section drive the state machine; the caller keeps the path out of
//! service until keys exist. See [`auth`] and docs/bfd-metadata.md §5.
//!
//! # Hardening (beyond RFC 5880 §6.8.6)
//!
//! Our peers are always other svr-fastpath routers in asynchronous mode, so the safest rule is
//! also the simplest:
//!
//! * While our session is Init or Up, a packet with Your Discriminator 0 is discarded
//!   ([`BfdError::UnselectedInSession`]): only a packet naming this session may move it. A
//!   restarted peer takes the session down by its silence (the Detection Time), not by its
//!   word.
//! * A packet with the Demand bit ([`BfdError::DemandMode`]) or Required Min RX Interval 0
//!   ([`BfdError::ZeroRequiredMinRx`]) is discarded, authenticated or not: both would
//!   silence our transmissions, and no SVR peer sends them.
//! * The last accepted sequence number is forgotten only with the peer (a Detection Time of
//!   silence); the first packet accepted after that may bring the session up but never take
//!   an Init or Up session down ([`BfdError::UnverifiedSequenceDown`]).
//!
//! # What is implemented
//!
//! * [`packet`]: the smoltcp-style view [`ControlPacket`] and value [`ControlRepr`], with
//!   the reception checks of RFC 5880 §6.8.6 that concern the bytes alone.
//! * [`auth`]: the authentication section ([`AuthSection`], [`AuthRepr`]), `sign` and
//!   `verify`.
//! * [`session`]: the §6.2 state machine (AdminDown, Down, Init, Up), timer negotiation
//!   (§6.8.2), the 1 s transmit floor before Up and Poll Sequences on timer changes
//!   (§6.8.3, §6.5), the Detection Time (§6.8.4), transmit jitter (§6.8.7) and
//!   authentication (§6.7), all driven by a caller-supplied `now`
//!   ([`fastpath::time::Instant`]) and a caller-seeded PRNG.
//!
//! Not implemented: echo; Demand mode, ours or the peer's (a peer's D bit is refused, see
//! above); the RFC 5880 authentication types 1-5 (password, Keyed MD5/SHA1: a packet with
//! them is discarded); passive role (both ends are active).
//!
//! No sockets, threads or clocks: see [`BfdSession`] for the calling protocol.

#![forbid(unsafe_code, unused_must_use)]
#![warn(missing_docs)]

pub mod auth;
mod error;
pub mod packet;
pub mod session;

pub use auth::{AuthRepr, AuthSection, AUTH_TYPE_METICULOUS_HMAC_SHA256};
pub use error::BfdError;
pub use packet::{ControlPacket, ControlRepr, Diagnostic, State, CONTROL_LEN, SVR_COOKIE};
pub use session::{AuthKey, BfdConfig, BfdEvent, BfdSession, BfdStats, Received, SLOW_TX_INTERVAL};

/// UDP port of SVR BFD, source and destination (docs/background.md §4.2; not RFC 5881's 3784).
pub const BFD_UDP_PORT: u16 = 1280;
