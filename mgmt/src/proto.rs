//! The control-socket protocol, version 1: one JSON object per line each way.
//!
//! Request: `{"v":1,"cmd":"<command>", <arguments>}`. Arguments are top-level keys beside
//! `v` and `cmd`; an argument a command does not take is an error (a typo never silently
//! means "no filter"). Commands and their arguments:
//!
//! | `cmd` | arguments | data |
//! | --- | --- | --- |
//! | `show-peers` | | `{router, peers: [PeerInfo]}` |
//! | `show-sessions` | `service`, `peer`, `id` (strings), `limit` (1-100000, default 1000) | `SessionList` |
//! | `show-stats` | `prefix` (string) | `{router, stats: [Stat]}` |
//! | `show-events` | `type` (string), `limit` (1-100000) | `EventList` |
//! | `show-config` | | `{path, config}` (secrets elided) |
//! | `rekey-peer` | `peer` (string, required) | `{peer, ...}` |
//! | `clear-sessions` | `service`, `peer`, `id` | `{cleared}` |
//! | `reload` | `path` (string: an absolute path; default the running file) | `{router, path, revision, changes}` |
//!
//! Response: `{"v":1,"ok":true,"data":...}` or
//! `{"v":1,"ok":false,"error":{"kind":"<kind>","message":"<one line>"}}`. A request line
//! is at most [`MAX_REQUEST`] bytes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::SessionFilter;

/// The protocol version this crate speaks.
pub const VERSION: u64 = 1;
/// Longest request line, newline excluded.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Sessions returned when a request sets no `limit`.
pub const DEFAULT_SESSION_LIMIT: usize = 1000;
/// Largest `limit`.
pub const MAX_LIMIT: u64 = 100_000;

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Peers, their paths and key state.
    ShowPeers,
    /// Sessions matching a filter, at most `limit`.
    ShowSessions {
        /// Which sessions.
        filter: SessionFilter,
        /// At most this many in the answer.
        limit: usize,
    },
    /// Every counter whose dotted name starts with `prefix`.
    ShowStats {
        /// Name prefix (`drop.`, `port.wan`); empty: all.
        prefix: String,
    },
    /// The event history, oldest first.
    ShowEvents {
        /// Only events of this type.
        kind: Option<String>,
        /// At most the latest `limit`.
        limit: Option<usize>,
    },
    /// The running configuration.
    ShowConfig,
    /// Start a peer-key rotation with a peer now.
    RekeyPeer {
        /// The peer's router name.
        peer: String,
    },
    /// Remove sessions matching a filter.
    ClearSessions {
        /// Which sessions (all when empty).
        filter: SessionFilter,
    },
    /// Read the configuration file again (or `path`), validate it as `svrd --check` does,
    /// and apply what may change while running; refused as a whole otherwise.
    Reload {
        /// Another file to load (absolute; svrd's working directory is not the client's).
        path: Option<String>,
    },
}

/// What kind of failure a response reports (the `error.kind` string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Not JSON, not an object, or `v`/`cmd` missing or of the wrong type.
    Malformed,
    /// The request line is longer than [`MAX_REQUEST`].
    TooLarge,
    /// `v` is not a version this server speaks.
    UnsupportedVersion,
    /// `cmd` names no command.
    UnknownCommand,
    /// An argument is unknown, missing or of the wrong type or range.
    BadArgument,
    /// The thing named (a peer) does not exist.
    NotFound,
    /// The router cannot do that now or in this mode.
    Refused,
    /// The router did not answer in time.
    Timeout,
}

/// A failed request: its kind and a one-line message naming what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MgmtError {
    /// The line is not a JSON object (with the parser's reason).
    #[error("request is not a JSON object: {0}")]
    NotJson(String),
    /// A field the envelope needs is missing or of the wrong type.
    #[error("request field `{field}`: {problem}")]
    Envelope {
        /// `v` or `cmd`.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// The request line is too long.
    #[error("request longer than {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// Unknown version.
    #[error("protocol version {got} not supported (this server speaks {VERSION})")]
    Version {
        /// What the client sent.
        got: u64,
    },
    /// Unknown command.
    #[error("unknown command \"{0}\"")]
    UnknownCommand(String),
    /// An argument is wrong.
    #[error("{cmd}: argument `{arg}`: {problem}")]
    Argument {
        /// The command.
        cmd: &'static str,
        /// The argument.
        arg: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// No peer of that name.
    #[error("no peer router named \"{0}\"")]
    UnknownPeer(String),
    /// The router refuses the action, and why.
    #[error("{0}")]
    Refused(String),
    /// The router did not answer in time.
    #[error("{what} did not answer within {ms} ms")]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// How long.
        ms: u64,
    },
}

impl MgmtError {
    /// The `error.kind` of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MgmtError::NotJson(_) | MgmtError::Envelope { .. } => ErrorKind::Malformed,
            MgmtError::TooLarge { .. } => ErrorKind::TooLarge,
            MgmtError::Version { .. } => ErrorKind::UnsupportedVersion,
            MgmtError::UnknownCommand(_) => ErrorKind::UnknownCommand,
            MgmtError::Argument { .. } => ErrorKind::BadArgument,
            MgmtError::UnknownPeer(_) => ErrorKind::NotFound,
            MgmtError::Refused(_) => ErrorKind::Refused,
            MgmtError::Timeout { .. } => ErrorKind::Timeout,
        }
    }
}

/// The `error` object of a failed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable kind.
    pub kind: ErrorKind,
    /// One line for people.
    pub message: String,
}

/// A response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version.
    pub v: u64,
    /// Success.
    pub ok: bool,
    /// The answer, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// The failure, otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Response {
    /// A success.
    pub fn ok(data: Value) -> Response {
        Response {
            v: VERSION,
            ok: true,
            data: Some(data),
            error: None,
        }
    }

    /// A failure.
    pub fn err(e: &MgmtError) -> Response {
        Response {
            v: VERSION,
            ok: false,
            data: None,
            error: Some(ErrorBody {
                kind: e.kind(),
                message: e.to_string(),
            }),
        }
    }

    /// The response as one line, newline included.
    pub fn to_line(&self) -> String {
        // Serializing these plain types cannot fail (string keys, finite numbers: the
        // f64 fields come from metrics and NaN would only print as null).
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"v":1,"ok":false,"error":{"kind":"malformed","message":"response not serializable"}}"#.into()
        });
        s.push('\n');
        s
    }
}

/// Builds a request line (what svrctl sends).
pub fn request_line(cmd: &str, args: Map<String, Value>) -> String {
    let mut m = Map::new();
    m.insert("v".into(), Value::from(VERSION));
    m.insert("cmd".into(), Value::from(cmd));
    m.extend(args);
    let mut s = Value::Object(m).to_string();
    s.push('\n');
    s
}

/// The arguments of one command, each taken once; whatever is left at the end is unknown.
struct Args {
    cmd: &'static str,
    rest: Map<String, Value>,
}

impl Args {
    fn string(&mut self, name: &str) -> Result<Option<String>, MgmtError> {
        match self.rest.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => Ok(Some(s)),
            Some(Value::String(_)) => Err(self.bad(name, "must be 1-256 characters")),
            Some(_) => Err(self.bad(name, "must be a string")),
        }
    }

    fn limit(&mut self, name: &str) -> Result<Option<usize>, MgmtError> {
        match self.rest.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(usize::try_from(n).ok()),
                _ => Err(self.bad(name, "must be an integer 1-100000")),
            },
        }
    }

    fn filter(&mut self) -> Result<SessionFilter, MgmtError> {
        Ok(SessionFilter {
            service: self.string("service")?,
            peer: self.string("peer")?,
            id: self.string("id")?,
        })
    }

    fn bad(&self, arg: &str, problem: &'static str) -> MgmtError {
        MgmtError::Argument {
            cmd: self.cmd,
            arg: arg.to_string(),
            problem,
        }
    }

    fn done(self) -> Result<(), MgmtError> {
        match self.rest.keys().next() {
            None => Ok(()),
            Some(k) => Err(MgmtError::Argument {
                cmd: self.cmd,
                arg: k.clone(),
                problem: "unknown argument",
            }),
        }
    }
}

/// Parses one request line (without its newline). Never panics.
pub fn parse_request(line: &[u8]) -> Result<Request, MgmtError> {
    if line.len() > MAX_REQUEST {
        return Err(MgmtError::TooLarge { max: MAX_REQUEST });
    }
    let v: Value = serde_json::from_slice(line).map_err(|e| MgmtError::NotJson(e.to_string()))?;
    let Value::Object(mut m) = v else {
        return Err(MgmtError::NotJson("not an object".into()));
    };
    let version = match m.remove("v") {
        None => {
            return Err(MgmtError::Envelope {
                field: "v",
                problem: "missing",
            })
        }
        Some(v) => v.as_u64().ok_or(MgmtError::Envelope {
            field: "v",
            problem: "must be a non-negative integer",
        })?,
    };
    if version != VERSION {
        return Err(MgmtError::Version { got: version });
    }
    let cmd = match m.remove("cmd") {
        Some(Value::String(s)) => s,
        None => {
            return Err(MgmtError::Envelope {
                field: "cmd",
                problem: "missing",
            })
        }
        Some(_) => {
            return Err(MgmtError::Envelope {
                field: "cmd",
                problem: "must be a string",
            })
        }
    };
    let name: &'static str = match cmd.as_str() {
        "show-peers" => "show-peers",
        "show-sessions" => "show-sessions",
        "show-stats" => "show-stats",
        "show-events" => "show-events",
        "show-config" => "show-config",
        "rekey-peer" => "rekey-peer",
        "clear-sessions" => "clear-sessions",
        "reload" => "reload",
        _ => {
            let mut shown: String = cmd.chars().take(64).collect();
            shown.retain(|c| !c.is_control());
            return Err(MgmtError::UnknownCommand(shown));
        }
    };
    let mut a = Args { cmd: name, rest: m };
    let req = match name {
        "show-peers" => Request::ShowPeers,
        "show-sessions" => Request::ShowSessions {
            filter: a.filter()?,
            limit: a.limit("limit")?.unwrap_or(DEFAULT_SESSION_LIMIT),
        },
        "show-stats" => Request::ShowStats {
            prefix: a.string("prefix")?.unwrap_or_default(),
        },
        "show-events" => Request::ShowEvents {
            kind: a.string("type")?,
            limit: a.limit("limit")?,
        },
        "show-config" => Request::ShowConfig,
        "rekey-peer" => Request::RekeyPeer {
            peer: a.string("peer")?.ok_or(MgmtError::Argument {
                cmd: name,
                arg: "peer".into(),
                problem: "required",
            })?,
        },
        "reload" => Request::Reload {
            path: a.string("path")?,
        },
        _ => Request::ClearSessions {
            filter: a.filter()?,
        },
    };
    a.done()?;
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(line: &[u8]) -> ErrorKind {
        parse_request(line).unwrap_err().kind()
    }

    #[test]
    fn requests_parse() {
        assert_eq!(
            parse_request(br#"{"v":1,"cmd":"show-peers"}"#),
            Ok(Request::ShowPeers)
        );
        assert_eq!(
            parse_request(br#"{"v":1,"cmd":"show-sessions","service":"site-b","limit":5}"#),
            Ok(Request::ShowSessions {
                filter: SessionFilter {
                    service: Some("site-b".into()),
                    ..Default::default()
                },
                limit: 5
            })
        );
        assert_eq!(
            parse_request(br#"{"cmd":"rekey-peer","peer":"router-b","v":1}"#),
            Ok(Request::RekeyPeer {
                peer: "router-b".into()
            })
        );
        assert_eq!(
            parse_request(br#"{"v":1,"cmd":"show-stats","prefix":null}"#),
            Ok(Request::ShowStats {
                prefix: String::new()
            })
        );
    }

    #[test]
    fn malformed_requests_are_errors() {
        for bad in [
            &b""[..],
            b"{",
            b"not json",
            b"[1,2]",
            b"\"v\"",
            b"\xff\xfe",
            br#"{"cmd":"show-peers"}"#,
            br#"{"v":"1","cmd":"show-peers"}"#,
            br#"{"v":-1,"cmd":"show-peers"}"#,
            br#"{"v":1}"#,
            br#"{"v":1,"cmd":7}"#,
        ] {
            assert_eq!(
                kind(bad),
                ErrorKind::Malformed,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn unknown_version_command_and_arguments_are_named() {
        assert_eq!(
            kind(br#"{"v":2,"cmd":"show-peers"}"#),
            ErrorKind::UnsupportedVersion
        );
        let e = parse_request(br#"{"v":1,"cmd":"format-disk"}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownCommand);
        assert_eq!(e.to_string(), "unknown command \"format-disk\"");
        let e = parse_request(br#"{"v":1,"cmd":"show-sessions","servce":"x"}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadArgument);
        assert_eq!(
            e.to_string(),
            "show-sessions: argument `servce`: unknown argument"
        );
        assert_eq!(
            kind(br#"{"v":1,"cmd":"rekey-peer"}"#),
            ErrorKind::BadArgument
        );
        assert_eq!(
            kind(br#"{"v":1,"cmd":"show-sessions","limit":0}"#),
            ErrorKind::BadArgument
        );
        assert_eq!(
            kind(br#"{"v":1,"cmd":"show-sessions","service":5}"#),
            ErrorKind::BadArgument
        );
        assert_eq!(
            kind(br#"{"v":1,"cmd":"show-peers","x":1}"#),
            ErrorKind::BadArgument
        );
    }

    #[test]
    fn oversized_requests_are_refused_before_parsing() {
        let mut big = br#"{"v":1,"cmd":"show-peers","pad":""#.to_vec();
        big.resize(MAX_REQUEST + 10, b'a');
        big.extend_from_slice(br#""}"#);
        assert_eq!(kind(&big), ErrorKind::TooLarge);
    }

    #[test]
    fn responses_are_one_line_of_the_documented_shape() {
        let line = Response::err(&MgmtError::UnknownCommand("x".into())).to_line();
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"]["kind"], "unknown-command");
        let line = Response::ok(serde_json::json!({"a": 1})).to_line();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (v["ok"].clone(), v["data"]["a"].clone()),
            (true.into(), 1.into())
        );
        assert!(v.get("error").is_none());
        let req = request_line("show-stats", Map::new());
        assert_eq!(
            parse_request(req.trim_end().as_bytes()),
            Ok(Request::ShowStats {
                prefix: String::new()
            })
        );
    }
}
