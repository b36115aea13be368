//! Events of the key state machine, and a bounded history of them with timestamps.

use core::fmt;
use std::collections::VecDeque;

use fastpath::time::Instant;

use crate::message::KeyKind;
use crate::pki::PkiError;
use crate::version::SoftwareVersion;

/// Why peering with a router failed to establish.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureReason {
    /// BFD ran, but no valid key-exchange block arrived within `peer-key-timeout`: the peer
    /// does not run enhanced security key management.
    NoKeyExchange,
    /// The peer's Hello carries an exchange version we do not speak; `peer_software` is the
    /// software version its clear blocks claim (not authenticated), when they carry one.
    UnsupportedVersion {
        /// The Hello's exchange version.
        exchange: u8,
        /// The Software Version TLV beside it.
        peer_software: Option<SoftwareVersion>,
    },
    /// The peer's Hello names an algorithm we do not implement.
    UnsupportedAlgorithm(u8),
    /// A Hello or Finish signature did not verify against the peer's certificate (a man in the
    /// middle, or corruption).
    BadSignature,
    /// The peer's DH public value was refused (length, range, low order).
    BadPublicValue,
    /// The peer's metadata key names a cipher or HMAC we do not implement.
    UnsupportedCipher,
    /// Blocks on the peer's path name another `peering-common-name` than the one configured
    /// for the peer (a misconfiguration, or an impostor); `claimed` is what they say, not
    /// authenticated.
    PeerNameMismatch {
        /// The name in the blocks' Peering Name TLV.
        claimed: String,
    },
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::NoKeyExchange => f.write_str("no-key-exchange"),
            FailureReason::UnsupportedVersion {
                exchange,
                peer_software,
            } => {
                write!(f, "unsupported-version={exchange}")?;
                match peer_software {
                    Some(v) => write!(f, " peer-software=\"{v}\""),
                    None => Ok(()),
                }
            }
            FailureReason::UnsupportedAlgorithm(a) => write!(f, "unsupported-algorithm={a}"),
            FailureReason::BadSignature => f.write_str("bad-signature"),
            FailureReason::BadPublicValue => f.write_str("bad-public-value"),
            FailureReason::UnsupportedCipher => f.write_str("unsupported-cipher"),
            // Debug quoting escapes whatever the wire put there (no log injection).
            FailureReason::PeerNameMismatch { claimed } => {
                write!(f, "peer-name-mismatch claimed={claimed:?}")
            }
        }
    }
}

/// What the key state machine of one peer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyEvent {
    /// Keys are valid both ways (peer key, the peer's metadata key, ours acknowledged).
    PeeringEstablished {
        /// The peer-key index in use.
        peer_key_index: u8,
    },
    /// Peering did not establish, and why.
    PeeringFailed {
        /// The reason.
        reason: FailureReason,
    },
    /// A key was replaced: the new one is now used for sending.
    KeyRotated {
        /// Which key.
        which: KeyKind,
        /// Its index (peer-key index, metadata rekey index, payload-key index).
        index: u32,
    },
    /// `payload-key-rekey-interval` elapsed: the data plane should re-key live sessions with
    /// this payload-key index.
    PayloadKeyRotationDue {
        /// The new payload-key index.
        payload_key_index: u8,
    },
    /// The path left service (BFD down, or no valid key).
    PathOutOfService,
    /// No valid key after `peer-key-timeout`: the path is invalid and removed from service.
    PathInvalid,
    /// The peer's certificate chain was refused; the path stays out of service.
    CertificateRejected {
        /// Why.
        reason: PkiError,
    },
    /// The peer's software version (authenticated, from a sealed block) is incompatible with
    /// ours (`crate::version`); peering goes on.
    IncompatibleVersion {
        /// The peer's version.
        peer: SoftwareVersion,
        /// Ours.
        local: SoftwareVersion,
    },
}

impl fmt::Display for KeyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyEvent::PeeringEstablished { peer_key_index } => {
                write!(
                    f,
                    "event=peering-established peer-key-index={peer_key_index}"
                )
            }
            KeyEvent::PeeringFailed { reason } => {
                write!(f, "event=peering-failed reason={reason}")
            }
            KeyEvent::KeyRotated { which, index } => {
                write!(f, "event=key-rotated key={which} index={index}")
            }
            KeyEvent::PayloadKeyRotationDue { payload_key_index } => write!(
                f,
                "event=payload-key-rotation-due payload-key-index={payload_key_index}"
            ),
            KeyEvent::PathOutOfService => f.write_str("event=path-out-of-service"),
            KeyEvent::PathInvalid => f.write_str("event=path-invalid"),
            KeyEvent::CertificateRejected { reason } => {
                write!(f, "event=certificate-rejected reason=\"{reason}\"")
            }
            KeyEvent::IncompatibleVersion { peer, local } => write!(
                f,
                "event=incompatible-version peer-version={peer} local-version={local}"
            ),
        }
    }
}

/// One event with the time it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// When.
    pub at: Instant,
    /// What.
    pub event: KeyEvent,
}

impl fmt::Display for EventRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={} {}", self.at, self.event)
    }
}

/// A bounded ring buffer of events, oldest dropped first (Versa's "SA history" view).
#[derive(Debug, Clone)]
pub struct EventHistory {
    records: VecDeque<EventRecord>,
    capacity: usize,
    dropped: u64,
}

impl EventHistory {
    /// Default capacity.
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// An empty history holding at most `capacity` (at least 1) records.
    pub fn new(capacity: usize) -> EventHistory {
        let capacity = capacity.max(1);
        EventHistory {
            records: VecDeque::with_capacity(capacity.min(64)),
            capacity,
            dropped: 0,
        }
    }

    /// Append, dropping the oldest record when full.
    pub fn push(&mut self, at: Instant, event: KeyEvent) {
        if self.records.len() == self.capacity {
            self.records.pop_front();
            self.dropped += 1;
        }
        self.records.push_back(EventRecord { at, event });
    }

    /// Records, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &EventRecord> {
        self.records.iter()
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Records dropped because the history was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Default for EventHistory {
    fn default() -> Self {
        EventHistory::new(Self::DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded() {
        let mut h = EventHistory::new(3);
        for i in 0..5u64 {
            h.push(Instant::from_nanos(i), KeyEvent::PathInvalid);
        }
        assert_eq!(h.len(), 3);
        assert_eq!(h.dropped(), 2);
        assert_eq!(h.iter().next().unwrap().at, Instant::from_nanos(2));
    }

    #[test]
    fn display_lines() {
        let e = KeyEvent::KeyRotated {
            which: KeyKind::MetadataKey,
            index: 4,
        };
        assert_eq!(e.to_string(), "event=key-rotated key=metadata-key index=4");
        let r = EventRecord {
            at: Instant::from_nanos(1_500_000_000),
            event: KeyEvent::CertificateRejected {
                reason: PkiError::Expired,
            },
        };
        assert_eq!(
            r.to_string(),
            "t=1.500000000s event=certificate-rejected reason=\"certificate expired\""
        );
        assert_eq!(
            KeyEvent::PeeringFailed {
                reason: FailureReason::UnsupportedAlgorithm(9)
            }
            .to_string(),
            "event=peering-failed reason=unsupported-algorithm=9"
        );
        let v = |s| SoftwareVersion::new(s).unwrap();
        assert_eq!(
            KeyEvent::PeeringFailed {
                reason: FailureReason::UnsupportedVersion {
                    exchange: 3,
                    peer_software: Some(v("0.2.0")),
                }
            }
            .to_string(),
            "event=peering-failed reason=unsupported-version=3 peer-software=\"0.2.0\""
        );
        assert_eq!(
            KeyEvent::IncompatibleVersion {
                peer: v("0.2.0"),
                local: v("0.1.4"),
            }
            .to_string(),
            "event=incompatible-version peer-version=0.2.0 local-version=0.1.4"
        );
    }
}
