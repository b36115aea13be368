//! Log lines go through a bounded queue to a writer thread, so that the slow-path thread,
//! which logs events and runs the BFD timers, never blocks on stderr (a full pipe, a stalled
//! disk under the log file). Without this, a 3 s stall of one `write` takes every peer path
//! down by BFD timeout, on both routers if they log at the same moment (seen in the testbed
//! while the disk was busy). A line that does not fit the queue is dropped, and the writer
//! says how many were dropped before the next line it writes.
//!
//! The writer also rate-limits lines about a peer: a line with a `peer=` field is keyed by
//! its `peer`, `path`, `event` and `reason` fields, and at most [`LIMIT_LINES`] lines per key
//! are written per [`LIMIT_WINDOW`]; the rest are counted, and one summary line
//! (`suppressed K log lines of <key> ...`) follows when the window ends. So a peer sending
//! malformed blocks at line rate costs a few lines every 10 s, not one per packet, while the
//! first lines of each kind of trouble still appear at once. The writer thread reads the
//! clock for this; it never feeds the protocol state machines.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Lines queued before new ones are dropped.
const QUEUE: usize = 4096;

/// Lines written per (peer, path, event, reason) and window; later ones are counted.
pub const LIMIT_LINES: u32 = 5;
/// The rate-limit window.
pub const LIMIT_WINDOW: Duration = Duration::from_secs(10);
/// Keys tracked at once; lines of further keys share one key (`other`).
const LIMIT_KEYS: usize = 1024;
/// Longest field value kept in a key (values come partly from the wire).
const KEY_VALUE_MAX: usize = 64;
/// How often the writer looks for ended windows to summarise when no line arrives.
const SWEEP: Duration = Duration::from_secs(1);

/// One key's window.
struct Window {
    start: Instant,
    written: u32,
    suppressed: u64,
}

/// Per-(peer, path, event, reason) log rate limiter; pure (the caller passes `now`), so it is
/// tested without waiting.
#[derive(Default)]
pub struct Limiter {
    windows: HashMap<String, Window>,
}

impl Limiter {
    /// Offers one formatted line: pushes onto `out` the summary of this key's previous window
    /// (if it ended with lines suppressed) and the line itself if it is within the limit.
    /// Lines without a `peer=` field are never limited.
    pub fn offer(&mut self, now: Instant, line: Vec<u8>, out: &mut Vec<Vec<u8>>) {
        let Some(mut key) = limit_key(&line) else {
            out.push(line);
            return;
        };
        if !self.windows.contains_key(&key) && self.windows.len() >= LIMIT_KEYS {
            key = "other".into();
        }
        let w = self.windows.entry(key.clone()).or_insert(Window {
            start: now,
            written: 0,
            suppressed: 0,
        });
        if now.saturating_duration_since(w.start) >= LIMIT_WINDOW {
            if w.suppressed > 0 {
                out.push(summary(&key, w.suppressed));
            }
            *w = Window {
                start: now,
                written: 0,
                suppressed: 0,
            };
        }
        if w.written < LIMIT_LINES {
            w.written += 1;
            out.push(line);
        } else {
            w.suppressed += 1;
        }
    }

    /// Summarises and forgets the windows that ended by `now` (all of them with `all`, at
    /// exit).
    pub fn sweep(&mut self, now: Instant, all: bool, out: &mut Vec<Vec<u8>>) {
        self.windows.retain(|key, w| {
            let ended = all || now.saturating_duration_since(w.start) >= LIMIT_WINDOW;
            if ended && w.suppressed > 0 {
                out.push(summary(key, w.suppressed));
            }
            !ended
        });
    }
}

fn summary(key: &str, suppressed: u64) -> Vec<u8> {
    format!(
        "svrd: suppressed {suppressed} log lines of {key} (more than {LIMIT_LINES} in {} s)\n",
        LIMIT_WINDOW.as_secs()
    )
    .into_bytes()
}

/// The rate-limit key of a line: its `peer=`, `path=`, `event=` and `reason=` fields as
/// written (a quoted value up to its closing quote, others up to white space), or `None`
/// without a `peer=` field.
fn limit_key(line: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    // A JSON line (`--log-format json`): its `msg` member holds the fields.
    let json_msg = text
        .starts_with('{')
        .then(|| serde_json::from_str::<serde_json::Value>(&text).ok())
        .flatten()
        .and_then(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_string));
    let text = json_msg.map_or(text, std::borrow::Cow::Owned);
    let mut parts: [Option<&str>; 4] = [None; 4];
    const NAMES: [&str; 4] = ["peer=", "path=", "event=", "reason="];
    let mut rest: &str = &text;
    while !rest.is_empty() {
        let start = rest.len() - rest.trim_start().len();
        rest = &rest[start..];
        let value_end = field_end(rest);
        let field = &rest[..value_end];
        for (slot, name) in parts.iter_mut().zip(NAMES) {
            if slot.is_none() && field.starts_with(name) {
                *slot = Some(field);
            }
        }
        rest = &rest[value_end..];
    }
    parts[0]?;
    let mut key = String::new();
    for part in parts.into_iter().flatten() {
        if !key.is_empty() {
            key.push(' ');
        }
        let mut end = part.len().min(KEY_VALUE_MAX);
        while !part.is_char_boundary(end) {
            end -= 1;
        }
        key.push_str(&part[..end]);
    }
    Some(key)
}

/// Length of the first field of `s` (which starts at a non-space): up to white space, except
/// inside double quotes (a backslash escapes the next character).
pub fn field_end(s: &str) -> usize {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if !quoted && c.is_whitespace() {
            return i;
        }
    }
    s.len()
}

enum Msg {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

/// The `env_logger` target: hands each formatted record to the writer thread.
pub struct QueuedWriter {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl Write for QueuedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // env_logger writes one whole record per call (write_all of its buffer).
        match self.tx.try_send(Msg::Line(buf.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Relaxed);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static FLUSH: OnceLock<SyncSender<Msg>> = OnceLock::new();

fn writer(rx: Receiver<Msg>, dropped: Arc<AtomicU64>) {
    let mut err = std::io::stderr();
    let mut limiter = Limiter::default();
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut next_sweep = Instant::now() + SWEEP;
    loop {
        let m = match rx.recv_timeout(SWEEP) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let now = Instant::now();
        if now >= next_sweep {
            limiter.sweep(now, false, &mut out);
            next_sweep = now + SWEEP;
        }
        let mut done = None;
        match m {
            Some(Msg::Line(l)) => {
                let d = dropped.swap(0, Relaxed);
                if d > 0 {
                    out.push(
                        format!("svrd: {d} log lines dropped (log queue full)\n").into_bytes(),
                    );
                }
                limiter.offer(now, l, &mut out);
            }
            // At exit: say what was suppressed so far.
            Some(Msg::Flush(tx)) => {
                limiter.sweep(now, true, &mut out);
                done = Some(tx);
            }
            None => {}
        }
        for l in out.drain(..) {
            let _ = err.write_all(&l);
        }
        if let Some(tx) = done {
            let _ = err.flush();
            let _ = tx.send(());
        }
    }
}

/// Starts the writer thread and returns the target for `env_logger`.
pub fn start() -> QueuedWriter {
    let (tx, rx) = sync_channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let d = Arc::clone(&dropped);
    let spawned = std::thread::Builder::new()
        .name("svrd-log".into())
        .spawn(move || writer(rx, d));
    if spawned.is_ok() {
        let _ = FLUSH.set(tx.clone());
    }
    QueuedWriter { tx, dropped }
}

/// Waits (at most `timeout`) until every line queued so far is written; for exit.
pub fn flush(timeout: Duration) {
    if let Some(tx) = FLUSH.get() {
        let (done_tx, done_rx) = sync_channel(1);
        // A blocking send is fine at exit: the writer thread drains the queue.
        if tx.send(Msg::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_arrive_in_order_and_overflow_is_counted() {
        let (tx, rx) = sync_channel(2);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut w = QueuedWriter {
            tx,
            dropped: Arc::clone(&dropped),
        };
        for l in ["a\n", "b\n", "c\n"] {
            assert_eq!(w.write(l.as_bytes()).unwrap(), 2);
        }
        assert_eq!(dropped.load(Relaxed), 1, "the third did not fit");
        let got: Vec<Vec<u8>> = rx
            .try_iter()
            .filter_map(|m| match m {
                Msg::Line(l) => Some(l),
                Msg::Flush(_) => None,
            })
            .collect();
        assert_eq!(got, vec![b"a\n".to_vec(), b"b\n".to_vec()]);
    }

    fn text(out: &mut Vec<Vec<u8>>) -> Vec<String> {
        out.drain(..)
            .map(|l| String::from_utf8(l).unwrap())
            .collect()
    }

    #[test]
    fn json_lines_are_keyed_by_their_message() {
        let l = crate::logfmt::json_line(
            "t",
            log::Level::Info,
            "svrd::zt",
            "peer=b event=peering-failed reason=bad-signature",
        );
        assert_eq!(
            limit_key(l.as_bytes()).as_deref(),
            Some("peer=b event=peering-failed reason=bad-signature")
        );
        assert_eq!(limit_key(b"{not json peer=b"), Some("peer=b".into()));
    }

    #[test]
    fn keys_name_peer_path_event_and_reason() {
        let key = |l: &str| limit_key(l.as_bytes());
        assert_eq!(
            key("[t INFO svrd::zt] peer=b event=peering-failed reason=bad-signature\n").as_deref(),
            Some("peer=b event=peering-failed reason=bad-signature")
        );
        assert_eq!(
            key("peer=b path=wan4 event=bfd-down diag=X").as_deref(),
            Some("peer=b path=wan4 event=bfd-down")
        );
        // A quoted reason is one field, spaces and escaped quotes included.
        assert_eq!(
            key("peer=b event=certificate-rejected reason=\"certificate \\\"x\\\" revoked\" t=1")
                .as_deref(),
            Some("peer=b event=certificate-rejected reason=\"certificate \\\"x\\\" revoked\"")
        );
        // What the wire claims is not part of the key (reason is the kind, claimed is data).
        assert_eq!(
            key("peer=b event=peering-failed reason=peer-name-mismatch claimed=\"evil 1\"")
                .as_deref(),
            Some("peer=b event=peering-failed reason=peer-name-mismatch")
        );
        assert_eq!(key("svrd: forwarding"), None);
        assert_eq!(key("event=slow-path-stall gap-ms=300"), None);
        // Long values are cut, so keys stay small.
        let long = format!("peer=b reason={}", "x".repeat(500));
        assert!(key(&long).unwrap().len() <= 2 * KEY_VALUE_MAX + 1);
    }

    #[test]
    fn a_flood_of_one_kind_is_limited_and_summarised() {
        let t0 = Instant::now();
        let mut l = Limiter::default();
        let mut out = Vec::new();
        let bad = |i: u32| format!("peer=b event=peering-failed reason=bad-signature n={i}\n");
        // 1000 lines in one second: the first LIMIT_LINES pass.
        for i in 0..1000 {
            let now = t0 + Duration::from_millis(u64::from(i));
            l.offer(now, bad(i).into_bytes(), &mut out);
            // Other kinds, other peers and unkeyed lines are not held back by this one.
            if i == 500 {
                l.offer(
                    now,
                    b"peer=c event=peering-failed reason=bad-signature\n".to_vec(),
                    &mut out,
                );
                l.offer(now, b"peer=b event=bfd-down\n".to_vec(), &mut out);
                l.offer(now, b"svrd: other\n".to_vec(), &mut out);
            }
        }
        let got = text(&mut out);
        assert_eq!(got.len(), LIMIT_LINES as usize + 3, "{got:?}");
        assert!(got[0].ends_with("n=0\n") && got[4].ends_with("n=4\n"));
        // Nothing more until the window ends; then one summary line.
        l.sweep(t0 + Duration::from_secs(5), false, &mut out);
        assert!(out.is_empty());
        l.sweep(t0 + LIMIT_WINDOW, false, &mut out);
        assert_eq!(
            text(&mut out),
            vec![format!(
                "svrd: suppressed 995 log lines of peer=b event=peering-failed reason=bad-signature (more than {LIMIT_LINES} in 10 s)\n"
            )]
        );
        // A new window starts fresh.
        l.offer(
            t0 + Duration::from_secs(11),
            bad(2000).into_bytes(),
            &mut out,
        );
        assert_eq!(text(&mut out).len(), 1);
    }

    #[test]
    fn summary_comes_with_the_next_line_or_at_exit() {
        let t0 = Instant::now();
        let mut l = Limiter::default();
        let mut out = Vec::new();
        let line = || b"peer=b event=peering-failed reason=bad-signature\n".to_vec();
        for _ in 0..7 {
            l.offer(t0, line(), &mut out);
        }
        assert_eq!(text(&mut out).len(), 5);
        // The next line after the window: the summary first, then the line.
        l.offer(t0 + LIMIT_WINDOW, line(), &mut out);
        let got = text(&mut out);
        assert_eq!(got.len(), 2);
        assert!(
            got[0].starts_with("svrd: suppressed 2 log lines of peer=b"),
            "{got:?}"
        );
        // At exit every open window is summarised.
        for _ in 0..10 {
            l.offer(t0 + LIMIT_WINDOW, line(), &mut out);
        }
        text(&mut out);
        l.sweep(t0 + LIMIT_WINDOW, true, &mut out);
        let got = text(&mut out);
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("svrd: suppressed 6 log lines"),
            "{got:?}"
        );
    }

    #[test]
    fn many_keys_share_one_window_past_the_cap() {
        let t0 = Instant::now();
        let mut l = Limiter::default();
        let mut out = Vec::new();
        for i in 0..LIMIT_KEYS + 100 {
            l.offer(t0, format!("peer=p{i} event=x\n").into_bytes(), &mut out);
        }
        assert_eq!(text(&mut out).len(), LIMIT_KEYS + LIMIT_LINES as usize);
        assert_eq!(l.windows.len(), LIMIT_KEYS + 1);
    }
}
