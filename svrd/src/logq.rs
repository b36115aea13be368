//! Log lines go through a bounded queue to a writer thread, so that the slow-path thread,
//! which logs events and runs the BFD timers, never blocks on stderr (a full pipe, a stalled
//! disk under the log file). Without this, a 3 s stall of one `write` takes every peer path
//! down by BFD timeout, on both routers if they log at the same moment (seen in the testbed
//! while the disk was busy). A line that does not fit the queue is dropped, and the writer
//! says how many were dropped before the next line it writes.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Lines queued before new ones are dropped.
const QUEUE: usize = 4096;

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
    for m in rx {
        match m {
            Msg::Line(l) => {
                let d = dropped.swap(0, Relaxed);
                if d > 0 {
                    let _ = writeln!(err, "svrd: {d} log lines dropped (log queue full)");
                }
                let _ = err.write_all(&l);
            }
            Msg::Flush(done) => {
                let _ = err.flush();
                let _ = done.send(());
            }
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
}
