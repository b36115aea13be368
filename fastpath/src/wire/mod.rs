//! Typed, zero-copy views of the packet formats the router handles.
//!
//! Every format has two layers, as in smoltcp:
//!
//! * a **packet view** `XxxPacket<T: AsRef<[u8]>>` over borrowed or owned bytes. Field offsets
//!   live in a private `mod field`; each getter is one big-endian read of a named range, and the
//!   same type writes when `T: AsMut<[u8]>`.
//! * a **`Repr`**: a small validated value that is parsed from a view and emitted into one.
//!
//! # Panic contract
//!
//! * Bytes from the wire must go through `new_checked`, which calls `check_len`. Once
//!   `check_len` has passed, **no getter panics** (for ICMPv6 this holds for the getters of the
//!   message type that is present; see that module).
//! * `new_unchecked` is for emitting: the caller provides a buffer of at least
//!   `Repr::buffer_len()` bytes, and `Repr::emit` fills it.
//! * Nothing in this module allocates.
//!
//! Wire enums (`EtherType`, `IpProtocol`, ICMP types and codes) keep unknown code points in an
//! `Unknown(_)` variant, so a parse followed by an emit gives back the same bytes.

use core::fmt;

/// Declares a wire enum with named variants and an `Unknown(raw)` variant, with `From`
/// conversions in both directions (pattern from smoltcp `src/macros.rs`).
macro_rules! enum_with_unknown {
    (
        $( #[$enum_attr:meta] )*
        pub enum $name:ident($ty:ty) {
            $(
                $( #[$variant_attr:meta] )*
                $variant:ident = $value:expr
            ),+ $(,)?
        }
    ) => {
        #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Clone, Copy)]
        $( #[$enum_attr] )*
        pub enum $name {
            $(
                $( #[$variant_attr] )*
                $variant,
            )+
            /// A code point this crate does not name; kept so that it round-trips.
            Unknown($ty),
        }

        impl ::core::convert::From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( v if v == $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl ::core::convert::From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use icmpv4::{Icmpv4Message, Icmpv4Packet, Icmpv4Repr};
pub use icmpv6::{Icmpv6Message, Icmpv6Packet, Icmpv6Repr, NdiscRepr, NeighborFlags};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use tcp::TcpPacket;
pub use udp::{UdpPacket, UdpRepr};

/// A byte range inside a header.
pub(crate) type Field = core::ops::Range<usize>;
/// The bytes from an offset to the end of the buffer.
pub(crate) type Rest = core::ops::RangeFrom<usize>;

/// Why bytes could not be read as (or written as) a packet. Small and `Copy`, so it can be
/// returned from per-packet code and mapped onto drop counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The buffer is shorter than the header, or than a length field inside it says.
    Truncated,
    /// A length field contradicts another field (e.g. IPv4 total length < header length).
    BadLength,
    /// The checksum does not match the contents.
    BadChecksum,
    /// The version field is not the one this format requires.
    BadVersion,
    /// Well-formed, but a kind this crate does not handle (e.g. non-Ethernet ARP, fragments).
    Unsupported,
    /// A field holds a value the protocol forbids (e.g. an NDP option of length 0).
    Malformed,
}

impl WireError {
    /// A short snake_case name, usable as a counter label.
    pub const fn name(self) -> &'static str {
        match self {
            WireError::Truncated => "truncated",
            WireError::BadLength => "bad_length",
            WireError::BadChecksum => "bad_checksum",
            WireError::BadVersion => "bad_version",
            WireError::Unsupported => "unsupported",
            WireError::Malformed => "malformed",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            WireError::Truncated => "packet truncated",
            WireError::BadLength => "length fields disagree",
            WireError::BadChecksum => "checksum mismatch",
            WireError::BadVersion => "wrong IP version",
            WireError::Unsupported => "unsupported packet kind",
            WireError::Malformed => "malformed field",
        };
        f.write_str(text)
    }
}

impl std::error::Error for WireError {}

enum_with_unknown! {
    /// The IPv4 protocol / IPv6 next-header number (IANA "Assigned Internet Protocol Numbers").
    pub enum IpProtocol(u8) {
        /// IPv6 Hop-by-Hop Options header.
        HopByHop = 0,
        /// ICMP for IPv4.
        Icmp = 1,
        /// IGMP.
        Igmp = 2,
        /// TCP.
        Tcp = 6,
        /// UDP.
        Udp = 17,
        /// IPv6 Routing header.
        Ipv6Route = 43,
        /// IPv6 Fragment header.
        Ipv6Frag = 44,
        /// ESP (IPsec).
        Esp = 50,
        /// AH (IPsec).
        Ah = 51,
        /// ICMP for IPv6.
        Icmpv6 = 58,
        /// IPv6 "no next header".
        Ipv6NoNxt = 59,
        /// IPv6 Destination Options header.
        Ipv6Opts = 60,
    }
}

/// Big-endian reads and writes on slices whose length the caller has already checked.
/// Every caller passes a `Field` range of the right width, so the conversions cannot fail.
pub(crate) mod be {
    #[inline]
    pub fn u16(b: &[u8]) -> u16 {
        u16::from_be_bytes([b[0], b[1]])
    }
    #[inline]
    pub fn u32(b: &[u8]) -> u32 {
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    #[inline]
    pub fn set_u16(b: &mut [u8], v: u16) {
        b[..2].copy_from_slice(&v.to_be_bytes());
    }
    #[inline]
    pub fn set_u32(b: &mut [u8], v: u32) {
        b[..4].copy_from_slice(&v.to_be_bytes());
    }
    #[inline]
    pub fn ipv4(b: &[u8]) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    #[inline]
    pub fn ipv6(b: &[u8]) -> std::net::Ipv6Addr {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&b[..16]);
        std::net::Ipv6Addr::from(octets)
    }
}
