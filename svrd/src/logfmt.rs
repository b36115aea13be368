//! Log line formats: `text` (env_logger's `[time LEVEL target] message`) and `json`, one JSON
//! object per line for journald / syslog / log shipper pipelines:
//!
//! ```text
//! {"ts":"2026-12-05T03:12:45.123Z","level":"info","target":"svrd::zt","peer":"router-b","path":"10.91.0.1->10.91.0.2","type":"path.up","event":"path-in-service","msg":"peer=router-b path=... event=path-in-service"}
//! ```
//!
//! svrd's messages are `key=value` fields (values with spaces are double-quoted); in JSON each
//! field is also a top-level string member (the first of a name wins; `ts`, `level`,
//! `target`, `type` and `msg` are never overwritten), an `event` field adds its dotted `type`
//! (`svr_mgmt::model::event_type`: `path.up`, `key.rotated`, ...), and `msg` keeps the whole
//! message.

use std::io::Write;

use serde_json::{Map, Value};

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `[time LEVEL target] message`.
    Text,
    /// One JSON object per line.
    Json,
}

/// Names of members the fields of a message never replace.
const RESERVED: [&str; 5] = ["ts", "level", "target", "msg", "type"];

/// The `key=value` fields of a message, in order; quotes around a value are removed (with
/// `\"` and `\\` unescaped). Tokens that are not fields are skipped.
pub fn fields(msg: &str) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    let mut rest = msg;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let end = crate::logq::field_end(rest);
        let token = &rest[..end];
        rest = &rest[end..];
        let Some((k, v)) = token.split_once('=') else {
            continue;
        };
        let is_name = !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !is_name {
            continue;
        }
        let v = match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(q) => q.replace("\\\"", "\"").replace("\\\\", "\\"),
            None => v.to_string(),
        };
        out.push((k, v));
    }
    out
}

/// One JSON log line (with its newline).
pub fn json_line(ts: &str, level: log::Level, target: &str, msg: &str) -> String {
    let mut obj = Map::new();
    obj.insert("ts".into(), Value::from(ts));
    obj.insert(
        "level".into(),
        Value::from(level.as_str().to_ascii_lowercase()),
    );
    obj.insert("target".into(), Value::from(target));
    for (k, v) in fields(msg) {
        if k == "event" && !obj.contains_key("type") {
            obj.insert("type".into(), Value::from(svr_mgmt::model::event_type(&v)));
        }
        if !RESERVED.contains(&k) && !obj.contains_key(k) {
            obj.insert(k.to_string(), Value::from(v));
        }
    }
    obj.insert("msg".into(), Value::from(msg));
    let mut line = Value::Object(obj).to_string();
    line.push('\n');
    line
}

/// Sets up the global logger (level from `RUST_LOG`, default `info`) writing through the log
/// queue in `format`.
pub fn init(format: LogFormat) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    b.target(env_logger::Target::Pipe(Box::new(crate::logq::start())));
    match format {
        LogFormat::Text => {
            b.format_timestamp_millis();
        }
        LogFormat::Json => {
            b.format(|buf, record| {
                let ts = buf.timestamp_millis().to_string();
                let msg = record.args().to_string();
                buf.write_all(json_line(&ts, record.level(), record.target(), &msg).as_bytes())
            });
        }
    }
    b.init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_a_message() {
        let f = fields(
            r#"peer=router-b path=10.0.0.1->10.0.0.2 event=bfd-down diag="Control Detection Time Expired" note=a\b junk =x x= "#,
        );
        let got: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("peer", "router-b"),
                ("path", "10.0.0.1->10.0.0.2"),
                ("event", "bfd-down"),
                ("diag", "Control Detection Time Expired"),
                ("note", r"a\b"),
                ("x", ""),
            ]
        );
    }

    #[test]
    fn json_lines_parse_back_with_their_fields() {
        let l = json_line(
            "2026-12-05T03:12:45.123Z",
            log::Level::Info,
            "svrd::zt",
            r#"peer=b event=peering-failed reason="bad \"sig\"" msg=spoof level=x ts=y"#,
        );
        assert!(l.ends_with('\n') && !l[..l.len() - 1].contains('\n'));
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["ts"], "2026-12-05T03:12:45.123Z");
        assert_eq!(v["level"], "info");
        assert_eq!(v["target"], "svrd::zt");
        assert_eq!(v["peer"], "b");
        assert_eq!(v["event"], "peering-failed");
        assert_eq!(v["type"], "peer.failed");
        assert_eq!(v["reason"], r#"bad "sig""#);
        assert!(v["msg"]
            .as_str()
            .unwrap()
            .starts_with("peer=b event=peering-failed"));
    }

    #[test]
    fn control_characters_and_bad_text_stay_one_line() {
        let l = json_line(
            "t",
            log::Level::Warn,
            "svrd",
            "event=x name=\u{1b}[31m\nsecond",
        );
        assert_eq!(l.matches('\n').count(), 1);
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "warn");
    }
}
