//! The small `Copy` values that go in and out of the [`super::SessionTable`].

use core::fmt;

use super::key::FlowKey;

/// Which side of the router a 5-tuple belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Side {
    /// The LAN (client/server) side: original addresses and ports.
    Lan = 0,
    /// The WAN (SVR) side: waypoint addresses and wayports.
    Wan = 1,
}

impl Side {
    /// The other side.
    pub const fn other(self) -> Side {
        match self {
            Side::Lan => Side::Wan,
            Side::Wan => Side::Lan,
        }
    }
}

/// What this router is for the session (docs/background.md §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We saw the first packet on the LAN and insert forward metadata.
    Ingress,
    /// We received the first packet with forward metadata from a peer and insert reverse
    /// metadata.
    Egress,
}

/// Where the metadata handshake of docs/background.md §1.4 stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetadataState {
    /// Ingress: put forward metadata on every forward packet; `count` of them sent so far
    /// (UDP stops at 11 without a reverse packet, §1.4).
    SendingForward {
        /// Forward packets sent with metadata so far (saturates at 255).
        count: u8,
    },
    /// Ingress: the limit was reached with no reverse metadata; send no more, wait for the
    /// reverse direction (or a Disable/Enable Metadata control message).
    AwaitingReverse,
    /// Egress: put reverse metadata on reverse packets until a forward packet arrives without
    /// metadata.
    SendingReverse,
    /// Handshake done: no metadata in either direction.
    Established,
}

impl MetadataState {
    /// Packs into 10 bits: a 2-bit tag and the 8-bit count.
    pub(crate) const fn encode(self) -> u64 {
        match self {
            MetadataState::SendingForward { count } => (count as u64) << 2,
            MetadataState::AwaitingReverse => 1,
            MetadataState::SendingReverse => 2,
            MetadataState::Established => 3,
        }
    }

    /// Inverse of `encode` (only the low 10 bits of `v` are read).
    pub(crate) const fn decode(v: u64) -> MetadataState {
        match v & 3 {
            0 => MetadataState::SendingForward {
                count: (v >> 2) as u8,
            },
            1 => MetadataState::AwaitingReverse,
            2 => MetadataState::SendingReverse,
            _ => MetadataState::Established,
        }
    }
}

/// What the table has been told about a TCP session's packets (bits; other protocols only
/// use the `SEEN_*` bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u8);

impl TcpFlags {
    /// A packet arrived on the LAN side.
    pub const SEEN_LAN: TcpFlags = TcpFlags(1);
    /// A packet arrived on the WAN side.
    pub const SEEN_WAN: TcpFlags = TcpFlags(2);
    /// A FIN arrived on the LAN side.
    pub const FIN_LAN: TcpFlags = TcpFlags(4);
    /// A FIN arrived on the WAN side.
    pub const FIN_WAN: TcpFlags = TcpFlags(8);
    /// An RST arrived on either side.
    pub const RST: TcpFlags = TcpFlags(16);
    /// No flag.
    pub const EMPTY: TcpFlags = TcpFlags(0);

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Flags from raw bits (unknown bits dropped).
    pub const fn from_bits(b: u8) -> TcpFlags {
        TcpFlags(b & 0x1f)
    }

    /// True when every flag of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the flags of `other` added.
    pub const fn union(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }

    /// The `SEEN_*` flag for `side`.
    pub const fn seen(side: Side) -> TcpFlags {
        match side {
            Side::Lan => Self::SEEN_LAN,
            Side::Wan => Self::SEEN_WAN,
        }
    }

    /// The `FIN_*` flag for `side`.
    pub const fn fin(side: Side) -> TcpFlags {
        match side {
            Side::Lan => Self::FIN_LAN,
            Side::Wan => Self::FIN_WAN,
        }
    }

    /// Packets seen from both sides (a TCP session is past half-open).
    pub const fn both_seen(self) -> bool {
        self.contains(TcpFlags(Self::SEEN_LAN.0 | Self::SEEN_WAN.0))
    }

    /// FIN seen both ways or an RST: the session is in its guard period (§1.7).
    pub const fn closing(self) -> bool {
        self.contains(TcpFlags(Self::FIN_LAN.0 | Self::FIN_WAN.0)) || self.contains(Self::RST)
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = ["SEEN_LAN", "SEEN_WAN", "FIN_LAN", "FIN_WAN", "RST"];
        let mut first = true;
        f.write_str("TcpFlags(")?;
        for (i, n) in names.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

/// A handle on one session: the arena index plus the generation of that arena entry when the
/// session was created. Every operation by id checks the generation, so an id kept by a
/// worker after the session was removed acts on nothing, even once the entry is reused (ABA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId {
    /// Index into the session arena (`0..capacity`).
    pub index: u32,
    /// Generation of the arena entry; bumped on every removal.
    pub generation: u32,
}

/// Everything about a new session except its two keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInit {
    /// Ingress or egress router for this session.
    pub role: Role,
    /// Session UUID (§3.3.5: the same at every hop).
    pub uuid: [u8; 16],
    /// Index of the payload key in the TLV 46 sense (which of the peer's keys).
    pub payload_key_index: u8,
    /// Handle of the key material in the key store (which lives elsewhere).
    pub key_handle: u32,
    /// Slot of this session's replay window (owned by one worker, lives elsewhere).
    pub replay_slot: u32,
    /// Initial metadata state (ingress: `SendingForward { count: 0 }`, egress:
    /// `SendingReverse`).
    pub metadata: MetadataState,
}

/// A consistent copy of what a worker needs from a session, taken by
/// [`super::SessionTable::lookup`] or [`super::SessionTable::get`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRef {
    /// The session.
    pub id: SessionId,
    /// The side whose key matched: the packet arrived on this side.
    pub side: Side,
    /// `packet-duplication`: the key that matched is the session's second WAN key
    /// (`dup_key`), not `wan_key` (`side` is then [`Side::Wan`]). Always false from
    /// [`super::SessionTable::get`].
    pub via_duplicate: bool,
    /// Ingress or egress.
    pub role: Role,
    /// The LAN-side key (5-tuple of packets arriving on the LAN, as received).
    pub lan_key: FlowKey,
    /// The WAN-side key (5-tuple of packets arriving from the peer, as received).
    pub wan_key: FlowKey,
    /// `packet-duplication`: the session's second WAN key (the copies' 5-tuple as received,
    /// on a second waypoint pair), if it has one ([`super::SessionTable::set_duplicate`]).
    pub dup_key: Option<FlowKey>,
    /// Payload key index.
    pub payload_key_index: u8,
    /// Key store handle.
    pub key_handle: u32,
    /// Replay window slot.
    pub replay_slot: u32,
    /// Metadata handshake state at the time of the copy.
    pub metadata: MetadataState,
    /// TCP flags at the time of the copy.
    pub tcp: TcpFlags,
}

impl SessionRef {
    /// The 5-tuple a packet that arrived on `self.side` leaves with: the other side's key,
    /// reversed. (A packet from the LAN is rewritten to the reverse of what the peer sends us,
    /// i.e. our waypoint → peer waypoint with the allocated wayports; a packet from the WAN is
    /// restored to the reverse of what the LAN host sends.) This is the whole address/port/
    /// protocol rewrite of §1.5, so the record stores no separate NAT fields.
    pub const fn rewrite(&self) -> FlowKey {
        match self.side {
            Side::Lan => self.wan_key.reversed(),
            Side::Wan => self.lan_key.reversed(),
        }
    }
}

/// A live session as a management reader sees it ([`super::SessionTable::session_at`]):
/// the copy a lookup would give, plus the fields no packet needs to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionView {
    /// The session as seen from the LAN side.
    pub session: SessionRef,
    /// Its UUID.
    pub uuid: [u8; 16],
    /// When it was created (its first packet), ms of the caller's clock.
    pub created_ms: u64,
    /// When its last packet came, ms of the caller's clock.
    pub last_seen_ms: u64,
    /// Start of its TCP guard period (FIN both ways or RST), ms; `None` if not started.
    pub guard_start_ms: Option<u64>,
    /// Packets that arrived on each side, indexed by [`Side`] (`packets[Side::Lan as usize]`).
    pub packets: [u64; 2],
    /// Their bytes (IP length on the LAN side: see [`super::SessionTable::touch`]).
    pub bytes: [u64; 2],
}

impl SessionView {
    /// The side the session's forward packets arrive on: the direction that created it
    /// (the LAN at the ingress, the WAN at the egress).
    pub const fn forward_side(&self) -> Side {
        match self.session.role {
            Role::Ingress => Side::Lan,
            Role::Egress => Side::Wan,
        }
    }

    /// `(packets, bytes)` of the forward direction (client → server).
    pub const fn forward(&self) -> (u64, u64) {
        let i = self.forward_side() as usize;
        (self.packets[i], self.bytes[i])
    }

    /// `(packets, bytes)` of the reverse direction (server → client).
    pub const fn reverse(&self) -> (u64, u64) {
        let i = self.forward_side().other() as usize;
        (self.packets[i], self.bytes[i])
    }
}

/// Why [`super::SessionTable::insert`] refused a session. The caller counts these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum InsertError {
    /// Every arena entry is in use (capacity from config). Existing sessions are unaffected.
    Full,
    /// A live session already has the LAN key or the WAN key (or the two keys are equal).
    Exists,
}

impl InsertError {
    /// Number of variants.
    pub const COUNT: usize = 2;
    /// Every variant, in discriminant order.
    pub const ALL: [InsertError; Self::COUNT] = [InsertError::Full, InsertError::Exists];

    /// A snake_case name for counters and logs.
    pub const fn name(self) -> &'static str {
        match self {
            InsertError::Full => "session_table_full",
            InsertError::Exists => "session_exists",
        }
    }
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
