//! Sans-IO BFD (RFC 5880 asynchronous mode) for SVR peer paths.
//!
//! Each peer path (our waypoint to the peer's waypoint) runs one [`BfdSession`]. The path
//! carries traffic only while its session is Up (svr-protocol.md §4). Behind every BFD
//! control packet rides the **SVR BFD metadata block** (decisions.md, "BFD metadata"): the
//! key exchange of the key-management layer. This crate treats that block as opaque bytes:
//! the caller passes the block to send into [`BfdSession::poll_transmit`] and gets the
//! received block back from [`BfdSession::handle_packet`].
//!
//! # On the wire
//!
//! ```text
//! | IPv4/IPv6 | UDP, port 1280 both ends | BFD control packet (24 B) | SVR BFD metadata block      |
//! |           | (BFD_UDP_PORT; not 3784)  | RFC 5880 §4.1, no auth    | (optional, rest of payload) |
//!                                         ^ UDP payload offset 0      ^ offset = BFD Length (24)
//!
//! BFD control packet, big-endian, intervals in µs:
//!   0      Vers(3) = 1 | Diag(5)
//!   1      Sta(2) | P | F | C | A = 0 | D | M = 0
//!   2      Detect Mult (≠ 0)
//!   3      Length = 24 (the BFD packet only; the SVR block is not counted)
//!   4..8   My Discriminator (≠ 0)
//!   8..12  Your Discriminator (0 only in Down/AdminDown)
//!   12..16 Desired Min TX Interval
//!   16..20 Required Min RX Interval
//!   20..24 Required Min Echo RX Interval = 0 (no echo)
//!
//! SVR BFD metadata block (owned by the key-management layer):
//!   24..32 SVR cookie 4C 48 DB C6 DD F6 67 0C
//!   32..   SVR metadata header rest and TLVs (svr-protocol.md §2.2-2.3), encrypted and
//!          signed with the peer key once one exists
//! ```
//!
//! A block is present when the UDP payload is longer than the BFD Length field; this crate
//! checks only that it starts with the cookie ([`SVR_COOKIE`]). RFC 5880 authentication is
//! not used (a packet with the A bit set is discarded): the peer key protects the block.
//!
//! # What is implemented
//!
//! * [`packet`]: the smoltcp-style view [`ControlPacket`] and value [`ControlRepr`], with
//!   the reception checks of RFC 5880 §6.8.6 that concern the bytes alone.
//! * [`session`]: the §6.2 state machine (AdminDown, Down, Init, Up), timer negotiation
//!   (§6.8.2), the 1 s transmit floor before Up and Poll Sequences on timer changes
//!   (§6.8.3, §6.5), the Detection Time (§6.8.4) and transmit jitter (§6.8.7), all driven
//!   by a caller-supplied `now` ([`fastpath::time::Instant`]) and a caller-seeded PRNG.
//!
//! Not implemented: echo, Demand mode of our own (a peer's Demand mode is honoured), RFC
//! 5880 authentication, passive role (both ends are active).
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

/// UDP port of SVR BFD, source and destination (svr-protocol.md §4.2; not RFC 5881's 3784).
pub const BFD_UDP_PORT: u16 = 1280;
