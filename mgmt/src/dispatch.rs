//! The sans-IO dispatcher: a request line in, a response line out, the router's state read
//! through [`Backend`]. No I/O, no clock: svrd's management thread does those.

use serde_json::{json, Value};

use crate::model::{EventInfo, EventList, PeerInfo, RouterInfo, SessionFilter, SessionList, Stat};
use crate::proto::{parse_request, MgmtError, Request, Response};

/// What the router must answer. svrd implements it over its shared state; every method is a
/// read of published snapshots or a bounded request to the thread that owns the state, and
/// none may block a worker.
pub trait Backend {
    /// Who answers.
    fn router(&self) -> RouterInfo;
    /// Peers, their paths and key state.
    fn peers(&self) -> Vec<PeerInfo>;
    /// Every counter, dotted names.
    fn stats(&self) -> Vec<Stat>;
    /// Sessions matching `filter` (all of them counted, the first `limit` returned).
    fn sessions(&self, filter: &SessionFilter, limit: usize) -> SessionList;
    /// The bounded event history, oldest first.
    fn events(&self) -> Vec<EventInfo>;
    /// The running configuration, secrets elided.
    fn config(&self) -> Value;
    /// Start a peer-key rotation with `peer` now; what happened.
    fn rekey_peer(&self, peer: &str) -> Result<Value, MgmtError>;
    /// Remove the sessions matching `filter`; how many were removed.
    fn clear_sessions(&self, filter: &SessionFilter) -> Result<u64, MgmtError>;
    /// Reload the configuration (the running file, or `path`): `{path, revision, changes}`,
    /// or `Refused` with the one-line reason (the field path at fault) and nothing changed.
    fn reload(&self, path: Option<&str>) -> Result<Value, MgmtError>;
}

/// Answers one request line (newline excluded) as a response line. Never panics on any
/// input.
pub fn handle(line: &[u8], backend: &dyn Backend) -> String {
    respond(line, backend).to_line()
}

/// The response to one request line (for a caller that counts failures).
pub fn respond(line: &[u8], backend: &dyn Backend) -> Response {
    match parse_request(line).and_then(|r| answer(r, backend)) {
        Ok(data) => Response::ok(data),
        Err(e) => Response::err(&e),
    }
}

/// The data of a successful answer to `req`.
pub fn answer(req: Request, b: &dyn Backend) -> Result<Value, MgmtError> {
    let router = b.router();
    Ok(match req {
        Request::ShowPeers => json!({ "router": router, "peers": b.peers() }),
        Request::ShowSessions { filter, limit } => {
            let list = b.sessions(&filter, limit);
            json!({ "router": router, "live": list.live, "matched": list.matched, "sessions": list.sessions })
        }
        Request::ShowStats { prefix } => {
            let mut stats: Vec<Stat> = b
                .stats()
                .into_iter()
                .filter(|s| s.name.starts_with(&prefix))
                .collect();
            stats.sort_by(|a, b| a.name.cmp(&b.name));
            json!({ "router": router, "stats": stats })
        }
        Request::ShowEvents { kind, limit } => {
            let mut events: Vec<EventInfo> = b
                .events()
                .into_iter()
                .filter(|e| kind.as_deref().map_or(true, |k| e.matches_type(k)))
                .collect();
            if let Some(n) = limit {
                let skip = events.len().saturating_sub(n);
                events.drain(..skip);
            }
            serde_json::to_value(EventList { events }).unwrap_or(Value::Null)
        }
        Request::ShowConfig => json!({ "router": router, "config": b.config() }),
        Request::RekeyPeer { peer } => b.rekey_peer(&peer)?,
        Request::ClearSessions { filter } => {
            json!({ "router": router, "cleared": b.clear_sessions(&filter)? })
        }
        Request::Reload { path } => {
            let mut v = b.reload(path.as_deref())?;
            if let Value::Object(m) = &mut v {
                m.insert("router".into(), json!(router));
            }
            v
        }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{DirectionStats, PathInfo, SecurityInfo, SessionInfo};
    use crate::proto::ErrorKind;
    use std::cell::Cell;

    /// A router with one peer, two sessions, a few counters and events.
    #[derive(Default)]
    pub(crate) struct Fake {
        pub cleared: Cell<u64>,
    }

    pub(crate) fn peer() -> PeerInfo {
        PeerInfo {
            name: "router-b".into(),
            common_name: Some("router-b.testbed.svr".into()),
            status: "up".into(),
            role: Some("leader".into()),
            version: Some("0.1.0".into()),
            paths_up: 1,
            paths_total: 2,
            uptime_s: Some(42),
            paths: vec![
                PathInfo {
                    local: "10.9.0.1".into(),
                    remote: "10.9.0.2".into(),
                    bfd_state: "Up".into(),
                    in_service: true,
                    latency_ms: Some(1.5),
                    jitter_ms: Some(0.25),
                    loss_percent: Some(0.0),
                    mos: Some(4.4),
                    uptime_s: Some(42),
                },
                PathInfo {
                    local: "fd00:9::1".into(),
                    remote: "fd00:9::2".into(),
                    bfd_state: "Down".into(),
                    in_service: false,
                    latency_ms: None,
                    jitter_ms: None,
                    loss_percent: None,
                    mos: None,
                    uptime_s: None,
                },
            ],
            security: SecurityInfo {
                key_state: "valid".into(),
                peer_key_index: Some(3),
                own_metadata_key_index: Some(4),
                peer_metadata_key_index: Some(5),
                payload_key_index: 2,
                peer_key_age_s: Some(7),
                next_peer_rekey_s: Some(3593),
                ..Default::default()
            },
        }
    }

    pub(crate) fn session(uuid: &str, service: &str) -> SessionInfo {
        SessionInfo {
            uuid: uuid.into(),
            service: Some(service.into()),
            tenant: Some("blue".into()),
            protocol: "udp".into(),
            source: "10.1.0.2".into(),
            source_port: 40000,
            destination: "10.2.0.2".into(),
            destination_port: 5001,
            peer: Some("router-b".into()),
            local_waypoint: "10.9.0.1".into(),
            local_wayport: 16384,
            remote_waypoint: "10.9.0.2".into(),
            remote_wayport: 16385,
            path: "10.9.0.1->10.9.0.2".into(),
            payload_key_index: 2,
            role: "ingress".into(),
            metadata: "established".into(),
            idle_ms: 10,
            age_ms: 65_400,
            timeout_s: 60,
            expires_in_ms: 59_990,
            forward: DirectionStats {
                packets: 20,
                bytes: 4560,
            },
            reverse: DirectionStats {
                packets: 19,
                bytes: 4332,
            },
        }
    }

    impl Backend for Fake {
        fn router(&self) -> RouterInfo {
            RouterInfo {
                router: "router-a".into(),
                node: "node-1".into(),
                key_management: true,
                uptime_s: 100,
            }
        }
        fn peers(&self) -> Vec<PeerInfo> {
            vec![peer()]
        }
        fn stats(&self) -> Vec<Stat> {
            vec![
                Stat::counter("port.wan.rx-packets", 10),
                Stat::counter("drop.svr_bad_metadata", 3),
                Stat::gauge("svr.sessions_live", 2),
            ]
        }
        fn sessions(&self, filter: &SessionFilter, limit: usize) -> SessionList {
            let all = [session("a-1", "site-b"), session("b-2", "site-c")];
            let m: Vec<SessionInfo> = all.into_iter().filter(|s| filter.matches(s)).collect();
            SessionList {
                live: 2,
                matched: m.len() as u64,
                sessions: m.into_iter().take(limit).collect(),
            }
        }
        fn events(&self) -> Vec<EventInfo> {
            vec![
                EventInfo::from_line(1, "peer=router-b event=peering-established"),
                EventInfo::from_line(2, "peer=router-b path=x event=path-in-service"),
                EventInfo::from_line(3, "peer=router-b event=key-rotated key=peer-key index=4"),
            ]
        }
        fn config(&self) -> Value {
            json!({"local-router": "router-a"})
        }
        fn rekey_peer(&self, peer: &str) -> Result<Value, MgmtError> {
            if peer == "router-b" {
                Ok(json!({"peer": peer, "started": true}))
            } else {
                Err(MgmtError::UnknownPeer(peer.into()))
            }
        }
        fn clear_sessions(&self, filter: &SessionFilter) -> Result<u64, MgmtError> {
            let n = self.sessions(filter, usize::MAX).matched;
            self.cleared.set(self.cleared.get() + n);
            Ok(n)
        }
        fn reload(&self, path: Option<&str>) -> Result<Value, MgmtError> {
            match path {
                Some("/bad.yaml") => Err(MgmtError::Refused(
                    "authority.router[0].node[0].core-map.workers: cannot change while running (restart svrd)".into(),
                )),
                p => Ok(json!({"path": p.unwrap_or("/etc/svrd.yaml"), "revision": 2, "changes": ["services"]})),
            }
        }
    }

    fn call(line: &str) -> Value {
        let out = handle(line.as_bytes(), &Fake::default());
        assert!(
            out.ends_with('\n') && out.matches('\n').count() == 1,
            "{out}"
        );
        serde_json::from_str(&out).unwrap()
    }

    #[test]
    fn every_command_answers() {
        let v = call(r#"{"v":1,"cmd":"show-peers"}"#);
        assert_eq!(v["ok"], true);
        assert_eq!(v["data"]["router"]["router"], "router-a");
        assert_eq!(v["data"]["peers"][0]["paths"][0]["bfd_state"], "Up");
        assert_eq!(v["data"]["peers"][0]["security"]["peer_key_index"], 3);

        let v = call(r#"{"v":1,"cmd":"show-sessions","service":"site-c"}"#);
        assert_eq!(v["data"]["matched"], 1);
        assert_eq!(v["data"]["sessions"][0]["uuid"], "b-2");
        let s = &v["data"]["sessions"][0];
        assert_eq!(
            (&s["forward"], &s["reverse"]),
            (
                &json!({"packets": 20, "bytes": 4560}),
                &json!({"packets": 19, "bytes": 4332})
            )
        );
        assert_eq!(
            (&s["age_ms"], &s["timeout_s"], &s["expires_in_ms"]),
            (&json!(65_400), &json!(60), &json!(59_990))
        );
        // svrctl reads the same JSON back; an older svrd's answer (no counters) still reads.
        let back: SessionInfo = serde_json::from_value(s.clone()).unwrap();
        assert_eq!(back, session("b-2", "site-c"));
        let mut old = s.clone();
        for k in ["age_ms", "timeout_s", "expires_in_ms", "forward", "reverse"] {
            old.as_object_mut().unwrap().remove(k);
        }
        let old: SessionInfo = serde_json::from_value(old).unwrap();
        assert_eq!((old.forward, old.timeout_s), (DirectionStats::default(), 0));
        let v = call(r#"{"v":1,"cmd":"show-sessions","limit":1}"#);
        assert_eq!(
            (
                v["data"]["matched"].clone(),
                v["data"]["sessions"].as_array().unwrap().len()
            ),
            (2.into(), 1)
        );

        let v = call(r#"{"v":1,"cmd":"show-stats","prefix":"drop."}"#);
        let stats = v["data"]["stats"].as_array().unwrap();
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0]["name"], "drop.svr_bad_metadata");
        assert_eq!(stats[0]["kind"], "counter");

        let v = call(r#"{"v":1,"cmd":"show-events","type":"key-rotated"}"#);
        assert_eq!(v["data"]["events"].as_array().unwrap().len(), 1);
        assert_eq!(v["data"]["events"][0]["type"], "key.rotated");
        let v = call(r#"{"v":1,"cmd":"show-events","limit":2}"#);
        assert_eq!(v["data"]["events"][0]["unix_ms"], 2);

        let v = call(r#"{"v":1,"cmd":"show-config"}"#);
        assert_eq!(v["data"]["config"]["local-router"], "router-a");

        let v = call(r#"{"v":1,"cmd":"rekey-peer","peer":"router-b"}"#);
        assert_eq!(v["data"]["started"], true);
        let v = call(r#"{"v":1,"cmd":"rekey-peer","peer":"router-z"}"#);
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"]["kind"], "not-found");

        let v = call(r#"{"v":1,"cmd":"clear-sessions","service":"site-b"}"#);
        assert_eq!(v["data"]["cleared"], 1);

        let v = call(r#"{"v":1,"cmd":"reload"}"#);
        assert_eq!(v["data"]["revision"], 2);
        assert_eq!(v["data"]["router"]["router"], "router-a");
        assert_eq!(v["data"]["path"], "/etc/svrd.yaml");
        let v = call(r#"{"v":1,"cmd":"reload","path":"/bad.yaml"}"#);
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"]["kind"], "refused");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("authority.router[0].node[0].core-map.workers: "));
        let v = call(r#"{"v":1,"cmd":"reload","path":7}"#);
        assert_eq!(v["error"]["kind"], "bad-argument");
    }

    #[test]
    fn bad_requests_get_error_responses() {
        for (line, kind) in [
            ("}{", ErrorKind::Malformed),
            ("", ErrorKind::Malformed),
            (
                r#"{"v":9,"cmd":"show-peers"}"#,
                ErrorKind::UnsupportedVersion,
            ),
            (r#"{"v":1,"cmd":"reboot"}"#, ErrorKind::UnknownCommand),
            (
                r#"{"v":1,"cmd":"show-stats","prefix":[]}"#,
                ErrorKind::BadArgument,
            ),
        ] {
            let v = call(line);
            assert_eq!(v["ok"], false, "{line}");
            assert_eq!(v["v"], 1);
            let got: ErrorKind = serde_json::from_value(v["error"]["kind"].clone()).unwrap();
            assert_eq!(got, kind, "{line}");
            assert!(!v["error"]["message"].as_str().unwrap().is_empty());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic fuzz: every answer is one JSON line.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let seeds: [&[u8]; 3] = [
            br#"{"v":1,"cmd":"show-sessions","service":"s"}"#,
            br#"{"v":1,"cmd":"rekey-peer","peer":"router-b"}"#,
            b"\x00\xff{}",
        ];
        for i in 0..3000 {
            let mut line = seeds[i % 3].to_vec();
            for _ in 0..(i % 7) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x as usize) % (line.len() + 1);
                if at < line.len() && x & 0x100 != 0 {
                    line[at] = (x >> 24) as u8;
                } else {
                    line.insert(at.min(line.len()), (x >> 32) as u8);
                }
            }
            let out = handle(&line, &Fake::default());
            let v: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["v"], 1);
        }
    }
}
