//! The plain data the control socket returns: svrd fills these from its state (the data
//! plane's key snapshot and session table, key management, counters), svrctl renders them.
//! No key material has a field here.

use serde::{Deserialize, Serialize};

/// One peer router: `show peers` (summary), `show peers detail` (`paths`), `show peers
/// security` (`security`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The peer's router name (`authority.router[].name`).
    pub name: String,
    /// The certificate name it must present (`peering-common-name`), with key management.
    pub common_name: Option<String>,
    /// `up` (some path in service), `down`, or `up (test keys)` without key management.
    pub status: String,
    /// Our role in the key exchange with it (`leader` / `follower`), with key management.
    pub role: Option<String>,
    /// Its software version, as its sealed key-exchange blocks say (authenticated); `None`
    /// until one arrived, or without key management.
    #[serde(default)]
    pub version: Option<String>,
    /// Paths in service.
    pub paths_up: u32,
    /// Paths (waypoint pairs) to it.
    pub paths_total: u32,
    /// Seconds since its longest-serving path entered service; `None` when down or unknown.
    pub uptime_s: Option<u64>,
    /// Its paths.
    pub paths: Vec<PathInfo>,
    /// Key state (never key bytes).
    pub security: SecurityInfo,
}

/// One peer path (waypoint pair).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathInfo {
    /// Our waypoint.
    pub local: String,
    /// The peer's waypoint.
    pub remote: String,
    /// BFD state (`Up`, `Down`, `Init`, `AdminDown`), or `-` without BFD (test keys).
    pub bfd_state: String,
    /// Carries sessions now.
    pub in_service: bool,
    /// Smoothed link-test metrics; `None` until the first test completes.
    pub latency_ms: Option<f64>,
    /// Jitter, ms.
    pub jitter_ms: Option<f64>,
    /// Loss, percent.
    pub loss_percent: Option<f64>,
    /// Mean opinion score (1-4.5).
    pub mos: Option<f64>,
    /// Seconds in service; `None` when not in service or not known.
    pub uptime_s: Option<u64>,
}

/// A peer's key state: indexes, ages, next rotation, certificates. No key bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecurityInfo {
    /// `valid` (keys both ways), `pending` (exchange not done), `invalid` (peer-key-timeout
    /// passed), or `test-keys`.
    pub key_state: String,
    /// Index of the peer key we seal key-exchange blocks with.
    pub peer_key_index: Option<u32>,
    /// Rekey index of our current metadata key for this peer (it seals metadata to us).
    pub own_metadata_key_index: Option<u32>,
    /// Rekey index of the peer's metadata key we seal metadata to it with.
    pub peer_metadata_key_index: Option<u32>,
    /// Payload-key index new sessions to this peer get.
    pub payload_key_index: u32,
    /// Seconds since the last peer-key rotation seen by this process.
    pub peer_key_age_s: Option<u64>,
    /// Seconds since the last metadata-key rotation.
    pub metadata_key_age_s: Option<u64>,
    /// Seconds since the last payload-key rotation.
    pub payload_key_age_s: Option<u64>,
    /// Seconds until the next peer-key rotation (leader only: the leader starts them).
    pub next_peer_rekey_s: Option<u64>,
    /// Seconds until the next payload-key rotation.
    pub next_payload_rekey_s: Option<u64>,
    /// Peer keys installed so far.
    pub peer_keys_installed: u64,
    /// Our certificate (leaf).
    pub local_certificate: Option<CertInfo>,
    /// The peer's certificate (leaf), once it presented one.
    pub peer_certificate: Option<CertInfo>,
}

/// A certificate's subject and expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// Subject distinguished name.
    pub subject: String,
    /// notAfter, Unix seconds.
    pub not_after_unix: i64,
}

/// Packets and bytes of one direction of a session, as this router forwarded them. Bytes
/// are IP bytes on the LAN side (the packet as the hosts see it; SVR's metadata, encryption
/// and HMAC are not counted), so both routers of a session count the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectionStats {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// One SVR session: its LAN 5-tuple, its WAN waypoints/wayports and, per direction, what it
/// carried (`svrctl show sessions` shows it as a forward and a reverse row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Session UUID (as in the metadata).
    pub uuid: String,
    /// Service of its LAN destination, if one matches.
    pub service: Option<String>,
    /// The service's tenant.
    pub tenant: Option<String>,
    /// `tcp`, `udp`, `icmp`, `icmpv6` or the protocol number.
    pub protocol: String,
    /// LAN source address and port (the client).
    pub source: String,
    /// LAN source port.
    pub source_port: u16,
    /// LAN destination address (the server).
    pub destination: String,
    /// LAN destination port.
    pub destination_port: u16,
    /// The peer router at the other end.
    pub peer: Option<String>,
    /// Our waypoint.
    pub local_waypoint: String,
    /// Our wayport.
    pub local_wayport: u16,
    /// The peer's waypoint.
    pub remote_waypoint: String,
    /// The peer's wayport.
    pub remote_wayport: u16,
    /// `local->remote` waypoint pair.
    pub path: String,
    /// Payload-key index the session uses.
    pub payload_key_index: u32,
    /// `ingress` (we saw its first packet on the LAN) or `egress`.
    pub role: String,
    /// Metadata handshake state.
    pub metadata: String,
    /// Milliseconds since its last packet.
    pub idle_ms: u64,
    /// Milliseconds since it was created (its first packet).
    #[serde(default)]
    pub age_ms: u64,
    /// The timeout in force, seconds: its protocol's idle timeout from
    /// `svr.session-timeouts` (TCP: half-open until both sides were seen), or `tcp-guard`
    /// once a TCP session closed.
    #[serde(default)]
    pub timeout_s: u64,
    /// Milliseconds until it expires if no packet comes (0: expired, not yet reclaimed).
    #[serde(default)]
    pub expires_in_ms: u64,
    /// Forward direction: client → server, the direction whose first packet created the
    /// session (`source` → `destination`).
    #[serde(default)]
    pub forward: DirectionStats,
    /// Reverse direction: server → client.
    #[serde(default)]
    pub reverse: DirectionStats,
}

/// `show sessions` data: the sessions that matched (at most the limit) and how many did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionList {
    /// Live sessions in the table.
    pub live: u64,
    /// Sessions that matched the filter.
    pub matched: u64,
    /// The first `limit` of them.
    pub sessions: Vec<SessionInfo>,
}

/// Which sessions a request means; every field set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFilter {
    /// Service name.
    pub service: Option<String>,
    /// Peer router name.
    pub peer: Option<String>,
    /// Session UUID (case-insensitive, dashes optional).
    pub id: Option<String>,
}

impl SessionFilter {
    /// True when `s` matches every field set.
    pub fn matches(&self, s: &SessionInfo) -> bool {
        let norm = |u: &str| -> String {
            u.chars()
                .filter(|c| *c != '-')
                .flat_map(char::to_lowercase)
                .collect()
        };
        absent_or(self.service.as_deref(), |w| s.service.as_deref() == Some(w))
            && absent_or(self.peer.as_deref(), |w| s.peer.as_deref() == Some(w))
            && absent_or(self.id.as_deref(), |w| norm(w) == norm(&s.uuid))
    }
}

/// `Option::is_none_or` (1.82; MSRV is 1.80).
fn absent_or<T>(o: Option<T>, f: impl FnOnce(T) -> bool) -> bool {
    match o {
        None => true,
        Some(v) => f(v),
    }
}

/// Whether a number only grows (`counter`) or goes up and down (`gauge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatKind {
    /// Monotonic since start.
    Counter,
    /// A level.
    Gauge,
}

/// One number of `show stats`, with its dotted name (`port.wan.rx-packets`,
/// `drop.svr_bad_metadata`, `slowpath.bfd_rx`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    /// Dotted name.
    pub name: String,
    /// Value.
    pub value: u64,
    /// Counter or gauge.
    pub kind: StatKind,
}

impl Stat {
    /// A counter.
    pub fn counter(name: impl Into<String>, value: u64) -> Stat {
        Stat {
            name: name.into(),
            value,
            kind: StatKind::Counter,
        }
    }

    /// A gauge.
    pub fn gauge(name: impl Into<String>, value: u64) -> Stat {
        Stat {
            name: name.into(),
            value,
            kind: StatKind::Gauge,
        }
    }
}

/// One entry of the bounded event history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInfo {
    /// Wall time, Unix milliseconds.
    pub unix_ms: u64,
    /// The event type, `category.name` ([`event_type`]: `peer.up`, `path.down`,
    /// `key.rotated`, `certificate.rejected`, `session.path-change`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The log line's `event=` name it comes from (`peering-established`, ...).
    pub event: String,
    /// The peer it concerns.
    pub peer: Option<String>,
    /// The path it concerns (`local->remote`).
    pub path: Option<String>,
    /// The whole structured line (`peer=.. path=.. event=.. key=value ...`).
    pub line: String,
}

impl EventInfo {
    /// An event from a structured log line: `event=`, `peer=` and `path=` fields become the
    /// type, peer and path.
    pub fn from_line(unix_ms: u64, line: &str) -> EventInfo {
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(name))
                .map(|v| v.trim_matches('"').to_string())
        };
        let event = field("event=").unwrap_or_else(|| "other".into());
        EventInfo {
            unix_ms,
            kind: event_type(&event),
            event,
            peer: field("peer="),
            path: field("path="),
            line: line.to_string(),
        }
    }
}

/// The type of an event, `category.name`, from the `event=` name of its log line. Categories:
/// `peer`, `path`, `key`, `certificate`, `session`, `neighbor`, `interface`, `config`, `mgmt`,
/// `system`; an unknown name is `other.NAME`.
pub fn event_type(event: &str) -> String {
    const TYPES: &[(&str, &str)] = &[
        ("peering-established", "peer.up"),
        ("peering-failed", "peer.failed"),
        ("bfd-up", "path.bfd-up"),
        ("bfd-down", "path.bfd-down"),
        ("bfd-state", "path.bfd-state"),
        ("path-in-service", "path.up"),
        ("path-out-of-service", "path.down"),
        ("path-invalid", "path.invalid"),
        ("key-rotated", "key.rotated"),
        ("rekey-requested", "key.rekey-requested"),
        ("payload-key-rotation-due", "key.payload-rotation-due"),
        ("certificate-rejected", "certificate.rejected"),
        ("own-certificate-invalid", "certificate.own-invalid"),
        ("session-path-change", "session.path-change"),
        ("sessions-cleared", "session.cleared"),
        ("neighbor-added", "neighbor.added"),
        ("neighbor-failed", "neighbor.failed"),
        ("neighbors-changed", "neighbor.changed"),
        ("interface-up", "interface.up"),
        ("interface-down", "interface.down"),
        ("config-reloaded", "config.reloaded"),
        ("config-rejected", "config.rejected"),
        // svrd --bootstrap (svrd/src/bootstrap.rs): onboarding and the conductor watch.
        ("enrolling", "conductor.enrolling"),
        ("enrolled", "conductor.enrolled"),
        ("enrolled-before", "conductor.enrolled-before"),
        ("enroll-refused", "conductor.enroll-refused"),
        ("conductor-reachable", "conductor.reachable"),
        ("conductor-unreachable", "conductor.unreachable"),
        ("conductor-refused", "conductor.refused"),
        ("status-reported", "conductor.status-reported"),
        ("config-loaded", "config.loaded"),
        ("config-applied", "config.applied"),
        ("crl-updated", "certificate.crl-updated"),
        ("crl-rejected", "certificate.crl-rejected"),
        ("control-socket-refused", "mgmt.refused"),
        ("slow-path-stall", "system.slow-path-stall"),
    ];
    TYPES
        .iter()
        .find(|(e, _)| *e == event)
        .map_or_else(|| format!("other.{event}"), |(_, t)| (*t).to_string())
}

impl EventInfo {
    /// Does `--type T` select this event: its type (`path.down`), its category (`path`) or
    /// its log name (`path-out-of-service`)?
    pub fn matches_type(&self, t: &str) -> bool {
        self.kind == t || self.event == t || self.kind.split_once('.').is_some_and(|(c, _)| c == t)
    }
}

/// `show events` data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventList {
    /// Matching events, oldest first.
    pub events: Vec<EventInfo>,
}

/// The router a response comes from, in every `show` answer's envelope data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterInfo {
    /// Router name.
    pub router: String,
    /// Node name.
    pub node: String,
    /// Key management on (`enhanced-security-key-management`).
    pub key_management: bool,
    /// Seconds since svrd started.
    pub uptime_s: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(uuid: &str, service: &str, peer: &str) -> SessionInfo {
        SessionInfo {
            uuid: uuid.into(),
            service: Some(service.into()),
            tenant: None,
            protocol: "udp".into(),
            source: "10.1.0.2".into(),
            source_port: 1,
            destination: "10.2.0.2".into(),
            destination_port: 2,
            peer: Some(peer.into()),
            local_waypoint: "10.9.0.1".into(),
            local_wayport: 16384,
            remote_waypoint: "10.9.0.2".into(),
            remote_wayport: 16385,
            path: "10.9.0.1->10.9.0.2".into(),
            payload_key_index: 1,
            role: "ingress".into(),
            metadata: "established".into(),
            idle_ms: 0,
            age_ms: 0,
            timeout_s: 60,
            expires_in_ms: 60_000,
            forward: DirectionStats::default(),
            reverse: DirectionStats::default(),
        }
    }

    #[test]
    fn filters_match_every_field_set() {
        let s = session("0011-2233", "site-b", "router-b");
        assert!(SessionFilter::default().matches(&s));
        let f = |service: Option<&str>, peer: Option<&str>, id: Option<&str>| SessionFilter {
            service: service.map(Into::into),
            peer: peer.map(Into::into),
            id: id.map(Into::into),
        };
        assert!(f(Some("site-b"), Some("router-b"), None).matches(&s));
        assert!(!f(Some("site-a"), None, None).matches(&s));
        assert!(!f(None, Some("router-c"), None).matches(&s));
        assert!(f(None, None, Some("00112233")).matches(&s));
        assert!(f(None, None, Some("0011-2233")).matches(&s));
        assert!(!f(None, None, Some("0011")).matches(&s));
    }

    #[test]
    fn events_take_type_peer_and_path_from_the_line() {
        let e = EventInfo::from_line(
            5,
            "peer=router-b path=10.9.0.1->10.9.0.2 event=path-in-service",
        );
        assert_eq!(
            (e.kind.as_str(), e.event.as_str()),
            ("path.up", "path-in-service")
        );
        assert!(e.matches_type("path") && e.matches_type("path.up"));
        assert!(e.matches_type("path-in-service") && !e.matches_type("peer"));
        assert_eq!(event_type("session-path-change"), "session.path-change");
        assert_eq!(event_type("certificate-rejected"), "certificate.rejected");
        assert_eq!(event_type("something-new"), "other.something-new");
        assert_eq!(event_type("enroll-refused"), "conductor.enroll-refused");
        assert_eq!(e.peer.as_deref(), Some("router-b"));
        assert_eq!(e.path.as_deref(), Some("10.9.0.1->10.9.0.2"));
        let e = EventInfo::from_line(5, "something else");
        assert_eq!((e.kind.as_str(), e.peer), ("other.other", None));
    }
}
