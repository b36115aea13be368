//! The BFD control packet (RFC 5880 §4.1) followed by the SVR BFD metadata block.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       My Discriminator                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Your Discriminator                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Desired Min TX Interval                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   Required Min RX Interval                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Required Min Echo RX Interval                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Authentication section, 40 bytes, if A (see [`crate::auth`])  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  SVR BFD metadata block (UDP payload bytes after `Length`) ...
//! ```
//!
//! Intervals are in microseconds. [`ControlPacket`] is a view over the whole UDP payload:
//! [`ControlPacket::control`] is the first `Length` bytes and [`ControlPacket::extension`]
//! the rest.
//!
//! # Panic contract
//!
//! Bytes from the wire go through [`ControlPacket::new_checked`]; after it succeeds no getter
//! panics. [`ControlPacket::new_unchecked`] is for emitting into a buffer of at least
//! [`CONTROL_LEN`] bytes. Nothing here allocates.

use crate::auth::{AuthRepr, AuthSection, AUTH_LEN};
use crate::error::BfdError;

mod field {
    use core::ops::Range;

    /// Version (3 bits) and Diag (5 bits).
    pub const VERS_DIAG: usize = 0;
    /// Sta (2 bits) and the P, F, C, A, D, M bits.
    pub const STA_FLAGS: usize = 1;
    pub const DETECT_MULT: usize = 2;
    pub const LENGTH: usize = 3;
    pub const MY_DISCR: Range<usize> = 4..8;
    pub const YOUR_DISCR: Range<usize> = 8..12;
    pub const DESIRED_MIN_TX: Range<usize> = 12..16;
    pub const REQUIRED_MIN_RX: Range<usize> = 16..20;
    pub const REQUIRED_MIN_ECHO_RX: Range<usize> = 20..24;

    pub const FLAG_P: u8 = 0x20;
    pub const FLAG_F: u8 = 0x10;
    pub const FLAG_C: u8 = 0x08;
    pub const FLAG_A: u8 = 0x04;
    pub const FLAG_D: u8 = 0x02;
    pub const FLAG_M: u8 = 0x01;
}

/// Length of the mandatory section of a BFD control packet, without authentication.
pub const CONTROL_LEN: usize = field::REQUIRED_MIN_ECHO_RX.end;
/// Minimum length when the A bit is set: the mandatory section plus Auth Type and Auth Len.
pub const CONTROL_LEN_WITH_AUTH: usize = CONTROL_LEN + 2;
/// The only BFD version (RFC 5880 §4.1).
pub const BFD_VERSION: u8 = 1;
/// The SVR metadata cookie (docs/protocol.md §2); every SVR BFD metadata block starts with it.
pub const SVR_COOKIE: [u8; 8] = [0x4c, 0x48, 0xdb, 0xc6, 0xdd, 0xf6, 0x67, 0x0c];

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// BFD session state, the `Sta` field (RFC 5880 §4.1). Two bits: every value has a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// 0: administratively held down.
    AdminDown,
    /// 1: no session, or the session went down.
    Down,
    /// 2: the remote is heard, but it has not yet heard us.
    Init,
    /// 3: both sides hear each other.
    Up,
}

impl State {
    /// The state of the two low bits of `v`.
    pub const fn from_bits(v: u8) -> State {
        match v & 0x3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    /// The 2-bit wire value.
    pub const fn bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }
}

/// Declares a wire enum with named variants and an `Unknown(raw)` variant, with `From`
/// conversions both ways (smoltcp `src/macros.rs`), so unknown codes round-trip.
macro_rules! enum_with_unknown {
    (
        $( #[$enum_attr:meta] )*
        pub enum $name:ident($ty:ty) {
            $( $( #[$variant_attr:meta] )* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Clone, Copy)]
        $( #[$enum_attr] )*
        pub enum $name {
            $( $( #[$variant_attr] )* $variant, )+
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

enum_with_unknown! {
    /// Diagnostic code, the 5-bit `Diag` field (RFC 5880 §4.1): why the sender's session last
    /// left Up (or was never Up).
    pub enum Diagnostic(u8) {
        /// 0.
        NoDiagnostic = 0,
        /// 1: no packet from the remote within the Detection Time.
        ControlDetectionTimeExpired = 1,
        /// 2.
        EchoFunctionFailed = 2,
        /// 3: the remote said Down or AdminDown.
        NeighborSignaledSessionDown = 3,
        /// 4.
        ForwardingPlaneReset = 4,
        /// 5.
        PathDown = 5,
        /// 6.
        ConcatenatedPathDown = 6,
        /// 7: the operator turned the session off.
        AdministrativelyDown = 7,
        /// 8.
        ReverseConcatenatedPathDown = 8,
    }
}

/// A view of a UDP payload holding a BFD control packet and, after it, an optional SVR BFD
/// metadata block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ControlPacket<T> {
    /// Wraps `buffer` without any check. For emitting; getters may panic on short buffers.
    pub const fn new_unchecked(buffer: T) -> ControlPacket<T> {
        ControlPacket { buffer }
    }

    /// Wraps untrusted bytes after [`check_len`](Self::check_len),
    /// [`check_fields`](Self::check_fields) and [`check_extension`](Self::check_extension).
    pub fn new_checked(buffer: T) -> Result<ControlPacket<T>, BfdError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        packet.check_fields()?;
        packet.check_extension()?;
        Ok(packet)
    }

    /// The length checks of RFC 5880 §6.8.6, which make every getter safe: `Truncated` below
    /// 24 bytes, `BadVersion` unless version 1 (the length rules depend on the version),
    /// `BadLength` if the length field is below 26 with the A bit or not 24 without it
    /// (stricter than RFC 5880, which only sets the minimum), `LengthExceedsBuffer`
    /// if it is longer than the buffer.
    pub fn check_len(&self) -> Result<(), BfdError> {
        let len = self.buffer.as_ref().len();
        if len < CONTROL_LEN {
            return Err(BfdError::Truncated);
        }
        if self.version() != BFD_VERSION {
            return Err(BfdError::BadVersion);
        }
        let min = if self.auth() {
            CONTROL_LEN_WITH_AUTH
        } else {
            CONTROL_LEN
        };
        let field_len = usize::from(self.length());
        // Without A the control packet is exactly 24 bytes: bytes up to a longer Length would
        // be neither checked nor part of the SVR block (found by the bfd_packet fuzz target).
        if field_len < min || (!self.auth() && field_len != CONTROL_LEN) {
            return Err(BfdError::BadLength);
        }
        if field_len > len {
            return Err(BfdError::LengthExceedsBuffer);
        }
        Ok(())
    }

    /// The other checks of RFC 5880 §6.8.6 that need no session: Detect Mult nonzero, M bit
    /// clear, My Discriminator nonzero, and Your Discriminator nonzero unless State is Down
    /// or AdminDown. Call after [`check_len`](Self::check_len).
    pub fn check_fields(&self) -> Result<(), BfdError> {
        if self.detect_mult() == 0 {
            return Err(BfdError::ZeroDetectMult);
        }
        if self.multipoint() {
            return Err(BfdError::Multipoint);
        }
        if self.my_discriminator() == 0 {
            return Err(BfdError::ZeroMyDiscriminator);
        }
        if self.your_discriminator() == 0 && matches!(self.state(), State::Init | State::Up) {
            return Err(BfdError::ZeroYourDiscriminator);
        }
        Ok(())
    }

    /// If bytes follow the control packet, they must start with [`SVR_COOKIE`]:
    /// `ExtensionTruncated` when fewer than 8 follow, `BadExtensionCookie` when the 8 differ.
    /// Call after [`check_len`](Self::check_len).
    pub fn check_extension(&self) -> Result<(), BfdError> {
        let ext = self.trailing();
        if ext.is_empty() {
            return Ok(());
        }
        match ext.get(..SVR_COOKIE.len()) {
            None => Err(BfdError::ExtensionTruncated),
            Some(c) if c != SVR_COOKIE => Err(BfdError::BadExtensionCookie),
            Some(_) => Ok(()),
        }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version (3 bits).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERS_DIAG] >> 5
    }

    /// Diagnostic code (5 bits).
    pub fn diag(&self) -> Diagnostic {
        Diagnostic::from(self.buffer.as_ref()[field::VERS_DIAG] & 0x1f)
    }

    /// Sender's session state.
    pub fn state(&self) -> State {
        State::from_bits(self.buffer.as_ref()[field::STA_FLAGS] >> 6)
    }

    fn flag(&self, bit: u8) -> bool {
        self.buffer.as_ref()[field::STA_FLAGS] & bit != 0
    }

    /// P: the sender is running a Poll Sequence.
    pub fn poll(&self) -> bool {
        self.flag(field::FLAG_P)
    }

    /// F: the answer to a Poll.
    pub fn final_(&self) -> bool {
        self.flag(field::FLAG_F)
    }

    /// C: control plane independent.
    pub fn control_plane_independent(&self) -> bool {
        self.flag(field::FLAG_C)
    }

    /// A: an authentication section is present.
    pub fn auth(&self) -> bool {
        self.flag(field::FLAG_A)
    }

    /// D: the sender wants to run Demand mode.
    pub fn demand(&self) -> bool {
        self.flag(field::FLAG_D)
    }

    /// M: multipoint (reserved; must be zero).
    pub fn multipoint(&self) -> bool {
        self.flag(field::FLAG_M)
    }

    /// Detect Mult.
    pub fn detect_mult(&self) -> u8 {
        self.buffer.as_ref()[field::DETECT_MULT]
    }

    /// Length of the BFD control packet in bytes (authentication included, SVR block not).
    pub fn length(&self) -> u8 {
        self.buffer.as_ref()[field::LENGTH]
    }

    /// My Discriminator.
    pub fn my_discriminator(&self) -> u32 {
        be_u32(&self.buffer.as_ref()[field::MY_DISCR])
    }

    /// Your Discriminator.
    pub fn your_discriminator(&self) -> u32 {
        be_u32(&self.buffer.as_ref()[field::YOUR_DISCR])
    }

    /// Desired Min TX Interval, µs.
    pub fn desired_min_tx(&self) -> u32 {
        be_u32(&self.buffer.as_ref()[field::DESIRED_MIN_TX])
    }

    /// Required Min RX Interval, µs.
    pub fn required_min_rx(&self) -> u32 {
        be_u32(&self.buffer.as_ref()[field::REQUIRED_MIN_RX])
    }

    /// Required Min Echo RX Interval, µs.
    pub fn required_min_echo_rx(&self) -> u32 {
        be_u32(&self.buffer.as_ref()[field::REQUIRED_MIN_ECHO_RX])
    }

    /// The authentication section (bytes 24..Length) if the A bit is set. Check it with
    /// [`AuthSection::new_checked`].
    pub fn auth_section(&self) -> Option<&[u8]> {
        if self.auth() {
            Some(&self.buffer.as_ref()[CONTROL_LEN..usize::from(self.length())])
        } else {
            None
        }
    }

    /// The BFD control packet: the first `Length` bytes.
    pub fn control(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.length())]
    }

    fn trailing(&self) -> &[u8] {
        &self.buffer.as_ref()[usize::from(self.length())..]
    }

    /// The SVR BFD metadata block: every byte after `Length`, or `None` if there are none.
    /// Its content belongs to the key-management layer.
    pub fn extension(&self) -> Option<&[u8]> {
        let ext = self.trailing();
        (!ext.is_empty()).then_some(ext)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ControlPacket<T> {
    fn set_flag(&mut self, bit: u8, on: bool) {
        let b = &mut self.buffer.as_mut()[field::STA_FLAGS];
        if on {
            *b |= bit;
        } else {
            *b &= !bit;
        }
    }

    /// Sets the version.
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VERS_DIAG];
        *b = (*b & 0x1f) | (v << 5);
    }

    /// Sets the diagnostic code (low 5 bits of its value).
    pub fn set_diag(&mut self, d: Diagnostic) {
        let b = &mut self.buffer.as_mut()[field::VERS_DIAG];
        *b = (*b & 0xe0) | (u8::from(d) & 0x1f);
    }

    /// Sets the state.
    pub fn set_state(&mut self, s: State) {
        let b = &mut self.buffer.as_mut()[field::STA_FLAGS];
        *b = (*b & 0x3f) | (s.bits() << 6);
    }

    /// Sets P.
    pub fn set_poll(&mut self, on: bool) {
        self.set_flag(field::FLAG_P, on);
    }

    /// Sets F.
    pub fn set_final(&mut self, on: bool) {
        self.set_flag(field::FLAG_F, on);
    }

    /// Sets C.
    pub fn set_control_plane_independent(&mut self, on: bool) {
        self.set_flag(field::FLAG_C, on);
    }

    /// Sets A.
    pub fn set_auth(&mut self, on: bool) {
        self.set_flag(field::FLAG_A, on);
    }

    /// Sets D.
    pub fn set_demand(&mut self, on: bool) {
        self.set_flag(field::FLAG_D, on);
    }

    /// Sets M.
    pub fn set_multipoint(&mut self, on: bool) {
        self.set_flag(field::FLAG_M, on);
    }

    /// Sets Detect Mult.
    pub fn set_detect_mult(&mut self, v: u8) {
        self.buffer.as_mut()[field::DETECT_MULT] = v;
    }

    /// Sets Length.
    pub fn set_length(&mut self, v: u8) {
        self.buffer.as_mut()[field::LENGTH] = v;
    }

    /// Sets My Discriminator.
    pub fn set_my_discriminator(&mut self, v: u32) {
        self.buffer.as_mut()[field::MY_DISCR].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets Your Discriminator.
    pub fn set_your_discriminator(&mut self, v: u32) {
        self.buffer.as_mut()[field::YOUR_DISCR].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets Desired Min TX Interval (µs).
    pub fn set_desired_min_tx(&mut self, v: u32) {
        self.buffer.as_mut()[field::DESIRED_MIN_TX].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets Required Min RX Interval (µs).
    pub fn set_required_min_rx(&mut self, v: u32) {
        self.buffer.as_mut()[field::REQUIRED_MIN_RX].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets Required Min Echo RX Interval (µs).
    pub fn set_required_min_echo_rx(&mut self, v: u32) {
        self.buffer.as_mut()[field::REQUIRED_MIN_ECHO_RX].copy_from_slice(&v.to_be_bytes());
    }
}

/// A parsed BFD control packet: what this crate sends and accepts.
///
/// Version (always 1), M (always clear), A (set exactly when `auth` is `Some`) and Length (24,
/// or 64 with authentication) are implied. Intervals are in microseconds, as on the wire.
/// The digest of the authentication section is not part of the value: [`emit`](Self::emit)
/// writes zeros there and [`crate::auth::sign`] fills it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlRepr {
    /// Diag.
    pub diag: Diagnostic,
    /// Sta.
    pub state: State,
    /// P.
    pub poll: bool,
    /// F.
    pub final_: bool,
    /// C.
    pub control_plane_independent: bool,
    /// D.
    pub demand: bool,
    /// Detect Mult (nonzero).
    pub detect_mult: u8,
    /// My Discriminator (nonzero).
    pub my_discriminator: u32,
    /// Your Discriminator.
    pub your_discriminator: u32,
    /// Desired Min TX Interval, µs.
    pub desired_min_tx: u32,
    /// Required Min RX Interval, µs.
    pub required_min_rx: u32,
    /// Required Min Echo RX Interval, µs.
    pub required_min_echo_rx: u32,
    /// The authentication section (Meticulous Keyed HMAC-SHA256), if A is set.
    pub auth: Option<AuthRepr>,
}

impl ControlRepr {
    /// Parses a checked packet. With the A bit, the section must be Meticulous Keyed
    /// HMAC-SHA256 (`UnsupportedAuthType`, `BadAuthLength` otherwise); the digest is not
    /// checked here (that needs a key: [`crate::auth::verify`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &ControlPacket<T>) -> Result<ControlRepr, BfdError> {
        let auth = match packet.auth_section() {
            Some(section) => Some(AuthRepr::parse(&AuthSection::new_checked(section)?)),
            None => None,
        };
        Ok(ControlRepr {
            diag: packet.diag(),
            state: packet.state(),
            poll: packet.poll(),
            final_: packet.final_(),
            control_plane_independent: packet.control_plane_independent(),
            demand: packet.demand(),
            detect_mult: packet.detect_mult(),
            my_discriminator: packet.my_discriminator(),
            your_discriminator: packet.your_discriminator(),
            desired_min_tx: packet.desired_min_tx(),
            required_min_rx: packet.required_min_rx(),
            required_min_echo_rx: packet.required_min_echo_rx(),
            auth,
        })
    }

    /// Bytes that [`emit`](Self::emit) writes: 24, or 64 with authentication.
    pub const fn buffer_len(&self) -> usize {
        if self.auth.is_some() {
            CONTROL_LEN + AUTH_LEN
        } else {
            CONTROL_LEN
        }
    }

    /// Writes the control packet (BFD Length bytes) at the start of `packet`'s buffer, which
    /// must hold at least [`buffer_len`](Self::buffer_len) bytes. An authentication section
    /// gets a zero digest; [`crate::auth::sign`] then signs the first `buffer_len` bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ControlPacket<T>) {
        packet.set_version(BFD_VERSION);
        packet.set_diag(self.diag);
        packet.set_state(self.state);
        packet.set_poll(self.poll);
        packet.set_final(self.final_);
        packet.set_control_plane_independent(self.control_plane_independent);
        packet.set_auth(self.auth.is_some());
        packet.set_demand(self.demand);
        packet.set_multipoint(false);
        packet.set_detect_mult(self.detect_mult);
        // buffer_len is 24 or 64, which fit a u8.
        packet.set_length(self.buffer_len() as u8);
        packet.set_my_discriminator(self.my_discriminator);
        packet.set_your_discriminator(self.your_discriminator);
        packet.set_desired_min_tx(self.desired_min_tx);
        packet.set_required_min_rx(self.required_min_rx);
        packet.set_required_min_echo_rx(self.required_min_echo_rx);
        if let Some(auth) = self.auth {
            let section = &mut packet.buffer.as_mut()[CONTROL_LEN..CONTROL_LEN + AUTH_LEN];
            auth.emit(&mut AuthSection::new_unchecked(section));
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// Down, no peer heard yet: what a session sends first.
    static DOWN: [u8; 24] = [
        0x20, // version 1, diag 0 (No Diagnostic)
        0x40, // state 1 (Down), P F C A D M = 0
        0x03, // detect mult 3
        0x18, // length 24
        0x00, 0x00, 0x00, 0x01, // my discriminator 1
        0x00, 0x00, 0x00, 0x00, // your discriminator 0 (peer unknown)
        0x00, 0x0f, 0x42, 0x40, // desired min TX 1 000 000 µs (the 1 s rule before Up)
        0x00, 0x07, 0xa1, 0x20, // required min RX 500 000 µs
        0x00, 0x00, 0x00, 0x00, // required min echo RX 0 (no echo)
    ];

    /// Init with Poll, after a Detection Time expiry earlier.
    static INIT_POLL: [u8; 24] = [
        0x21, // version 1, diag 1 (Control Detection Time Expired)
        0xa0, // state 2 (Init), P = 1
        0x05, // detect mult 5
        0x18, // length 24
        0x12, 0x34, 0x56, 0x78, // my discriminator 0x12345678
        0x00, 0x00, 0x00, 0x01, // your discriminator 1
        0x00, 0x01, 0x86, 0xa0, // desired min TX 100 000 µs
        0x00, 0x00, 0xc3, 0x50, // required min RX 50 000 µs
        0x00, 0x00, 0x00, 0x00, // required min echo RX 0
    ];

    /// Up with Final, followed by a bare SVR metadata header and one TLV.
    static UP_FINAL_EXT: [u8; 40] = [
        0x20, // version 1, diag 0
        0xd0, // state 3 (Up), F = 1
        0x03, // detect mult 3
        0x18, // length 24
        0x00, 0x00, 0x00, 0x02, // my discriminator 2
        0x12, 0x34, 0x56, 0x78, // your discriminator 0x12345678
        0x00, 0x0f, 0x42, 0x40, // desired min TX 1 000 000 µs
        0x00, 0x07, 0xa1, 0x20, // required min RX 500 000 µs
        0x00, 0x00, 0x00, 0x00, // required min echo RX 0
        0x4c, 0x48, 0xdb, 0xc6, 0xdd, 0xf6, 0x67, 0x0c, // SVR cookie
        0x10, 0x10, 0x00, 0x00, // SVR version 1, header length 16, payload length 0
        0x00, 0x18, 0x00, 0x00, // header TLV type 24, length 0 (opaque to this crate)
    ];

    fn down_repr() -> ControlRepr {
        ControlRepr {
            diag: Diagnostic::NoDiagnostic,
            state: State::Down,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: 3,
            my_discriminator: 1,
            your_discriminator: 0,
            desired_min_tx: 1_000_000,
            required_min_rx: 500_000,
            required_min_echo_rx: 0,
            auth: None,
        }
    }

    fn init_poll_repr() -> ControlRepr {
        ControlRepr {
            diag: Diagnostic::ControlDetectionTimeExpired,
            state: State::Init,
            poll: true,
            detect_mult: 5,
            my_discriminator: 0x1234_5678,
            your_discriminator: 1,
            desired_min_tx: 100_000,
            required_min_rx: 50_000,
            ..down_repr()
        }
    }

    fn up_final_repr() -> ControlRepr {
        ControlRepr {
            state: State::Up,
            final_: true,
            my_discriminator: 2,
            your_discriminator: 0x1234_5678,
            ..down_repr()
        }
    }

    fn emit(repr: &ControlRepr) -> [u8; 24] {
        let mut buf = [0u8; 24];
        repr.emit(&mut ControlPacket::new_unchecked(&mut buf[..]));
        buf
    }

    #[test]
    fn deconstruct_down() {
        let p = ControlPacket::new_checked(&DOWN[..]).unwrap();
        assert_eq!(p.version(), 1);
        assert_eq!(p.state(), State::Down);
        assert_eq!(p.length(), 24);
        assert_eq!(p.extension(), None);
        assert_eq!(ControlRepr::parse(&p).unwrap(), down_repr());
    }

    #[test]
    fn deconstruct_init_poll() {
        let p = ControlPacket::new_checked(&INIT_POLL[..]).unwrap();
        assert!(p.poll() && !p.final_());
        assert_eq!(p.diag(), Diagnostic::ControlDetectionTimeExpired);
        assert_eq!(ControlRepr::parse(&p).unwrap(), init_poll_repr());
    }

    #[test]
    fn deconstruct_up_final_with_extension() {
        let p = ControlPacket::new_checked(&UP_FINAL_EXT[..]).unwrap();
        assert!(!p.poll() && p.final_());
        assert_eq!(p.control(), &UP_FINAL_EXT[..24]);
        assert_eq!(p.extension(), Some(&UP_FINAL_EXT[24..]));
        assert_eq!(ControlRepr::parse(&p).unwrap(), up_final_repr());
    }

    #[test]
    fn construct() {
        assert_eq!(emit(&down_repr()), DOWN);
        assert_eq!(emit(&init_poll_repr()), INIT_POLL);
        assert_eq!(emit(&up_final_repr())[..], UP_FINAL_EXT[..24]);
    }

    #[test]
    fn unknown_diag_round_trips() {
        let mut b = DOWN;
        b[0] = 0x20 | 0x1f;
        let p = ControlPacket::new_checked(&b[..]).unwrap();
        let r = ControlRepr::parse(&p).unwrap();
        assert_eq!(r.diag, Diagnostic::Unknown(31));
        assert_eq!(emit(&r), b);
    }

    fn check(b: &[u8]) -> Result<ControlRepr, BfdError> {
        ControlPacket::new_checked(b).and_then(|p| ControlRepr::parse(&p))
    }

    #[test]
    fn malformed_inputs_have_distinct_reasons() {
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut v = DOWN.to_vec();
            f(&mut v);
            check(&v)
        };
        assert_eq!(check(&DOWN[..23]), Err(BfdError::Truncated));
        assert_eq!(check(&[]), Err(BfdError::Truncated));
        // Version 2.
        assert_eq!(with(&|v| v[0] = 0x40), Err(BfdError::BadVersion));
        // Version 0 (the pre-RFC draft).
        assert_eq!(with(&|v| v[0] = 0x00), Err(BfdError::BadVersion));
        assert_eq!(with(&|v| v[3] = 23), Err(BfdError::BadLength));
        // A bit set with length 24: shorter than the 26 an auth section needs.
        assert_eq!(with(&|v| v[1] |= 0x04), Err(BfdError::BadLength));
        assert_eq!(with(&|v| v[3] = 25), Err(BfdError::BadLength));
        assert_eq!(
            with(&|v| {
                v[3] = 25;
                v.push(0);
            }),
            Err(BfdError::BadLength)
        );
        assert_eq!(
            with(&|v| {
                v[1] |= 0x04;
                v[3] = 64;
            }),
            Err(BfdError::LengthExceedsBuffer)
        );
        assert_eq!(with(&|v| v[2] = 0), Err(BfdError::ZeroDetectMult));
        assert_eq!(with(&|v| v[1] |= 0x01), Err(BfdError::Multipoint));
        assert_eq!(
            with(&|v| v[4..8].copy_from_slice(&[0; 4])),
            Err(BfdError::ZeroMyDiscriminator)
        );
        // State Init (0x80) or Up (0xc0) with your discriminator 0.
        assert_eq!(with(&|v| v[1] = 0x80), Err(BfdError::ZeroYourDiscriminator));
        assert_eq!(with(&|v| v[1] = 0xc0), Err(BfdError::ZeroYourDiscriminator));
        // AdminDown (0x00) with your discriminator 0 is fine.
        assert!(with(&|v| v[1] = 0x00).is_ok());
        // A bit with a 26-byte length and two auth bytes: Keyed MD5 (type 2) is not ours.
        assert_eq!(
            with(&|v| {
                v[1] |= 0x04;
                v[3] = 26;
                v.extend_from_slice(&[2, 2]);
            }),
            Err(BfdError::UnsupportedAuthType)
        );
        // Our type, but too short a section.
        assert_eq!(
            with(&|v| {
                v[1] |= 0x04;
                v[3] = 26;
                v.extend_from_slice(&[255, 2]);
            }),
            Err(BfdError::BadAuthLength)
        );
        // Our type and Auth Len 40, but BFD Length 26.
        assert_eq!(
            with(&|v| {
                v[1] |= 0x04;
                v[3] = 26;
                v.extend_from_slice(&[255, 40]);
            }),
            Err(BfdError::BadAuthLength)
        );
        assert_eq!(
            with(&|v| v.extend_from_slice(&SVR_COOKIE[..7])),
            Err(BfdError::ExtensionTruncated)
        );
        assert_eq!(
            with(&|v| v.extend_from_slice(&[0x4c, 0x48, 0xdb, 0xc6, 0xdd, 0xf6, 0x67, 0x0d])),
            Err(BfdError::BadExtensionCookie)
        );
        // A bare cookie is a valid (opaque) block.
        assert!(with(&|v| v.extend_from_slice(&SVR_COOKIE)).is_ok());
    }
}
