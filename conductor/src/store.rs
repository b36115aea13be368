//! Storage: a key-value store with revisions, the shape of etcd.
//!
//! The conductor's core ([`crate::Conductor`]) keeps its state in memory and says what
//! to persist as a list of [`Op`]s; a [`Store`] commits such a list atomically and can give
//! everything back at start. Keys are relative to a prefix (`/svr/v1/<authority>/` with
//! etcd); values are JSON text. Every commit gets the next **store revision**, and each key
//! remembers the revision that last wrote it (its `mod_revision`), as in etcd.
//!
//! | key | value | etcd |
//! | --- | --- | --- |
//! | `config/revision` | the current configuration revision `N` | put in the same txn as the document, guarded by `mod_revision` |
//! | `config/document` | the operator's document of revision `N` | |
//! | `config/router-revisions` | `{router: revision}`: the revision each router's part last changed in (the parts are rendered from the document, not stored) | put in the same txn |
//! | `routers/<router>/status` | node, version, applied revision, error, last seen | [`Op::PutExpiring`]: a lease, TTL 3 × the report interval |
//! | `routers/<router>/certs` | serials and expiry of certificates issued to it | |
//! | `routers/<router>/revoked` | when it was revoked | |
//! | `tokens/<sha256 of token>` | router, expiry, consumed-at | [`Op::PutExpiring`]: a lease until a day after the token's expiry |
//! | `crl/number` | the last CRL number used | |
//! | `audit/<seq>`, `audit/<replica>/<seq>` | one audit event | the second form for replicas sharing etcd: each numbers its own |
//!
//! Three implementations: [`MemStore`] for tests, [`FileStore`]: a JSON snapshot replaced
//! atomically (temporary file, fsync, rename, fsync of the directory) plus a log of the
//! commits since, one fsynced JSON line each, folded into the snapshot when it outgrows it;
//! and `EtcdStore` (module `etcd`, feature `etcd`), shared by several conductor replicas. A
//! store that other processes write too gives a [`Feed`] of their changes
//! ([`Store::subscribe`]), which the server applies to its core so that every replica
//! serves the same state.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One write of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Sets `key` to `value` (JSON text).
    Put {
        /// The key, relative to the store's prefix.
        key: String,
        /// JSON text.
        value: String,
    },
    /// Sets `key` to `value` for about `ttl` seconds: a store with leases (etcd) deletes it
    /// then unless it was put again. [`FileStore`] and [`MemStore`] keep it (no leases).
    PutExpiring {
        /// The key, relative to the store's prefix.
        key: String,
        /// JSON text.
        value: String,
        /// Lifetime in seconds.
        ttl: u64,
    },
    /// Removes `key` (absent is fine).
    Delete {
        /// The key.
        key: String,
    },
}

impl Op {
    /// The key this op writes.
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::PutExpiring { key, .. } | Op::Delete { key } => key,
        }
    }
}

/// A change another process made to the store (see [`Feed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The key, relative to the store's prefix.
    pub key: String,
    /// The new value; `None`: deleted (by a commit or an expired lease).
    pub value: Option<String>,
    /// The store revision of this change.
    pub mod_revision: u64,
}

/// What a shared store reports to a process that [subscribed](Store::subscribe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// The changes of one store revision, in revision order. They may include this
    /// process's own writes: pass them through [`Store::absorb`].
    Changes {
        /// The store revision.
        revision: u64,
        /// Its changes.
        changes: Vec<Change>,
    },
    /// The feed lost history (etcd compacted it): reload everything.
    Reload,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing the store file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The store file is not a store.
    #[error("{path}: not a conductor store ({reason})")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Someone else committed since this process last read the store (another conductor
    /// process on the same file): nothing was written; reload and retry.
    #[error("{path}: changed by another process (store revision {found}, expected {expected}); nothing written")]
    Conflict {
        /// The file.
        path: String,
        /// The revision this process last saw.
        expected: u64,
        /// The revision on disk.
        found: u64,
    },
    /// The etcd cluster could not be reached or refused the request.
    #[cfg(feature = "etcd")]
    #[error("etcd {endpoints}: {what}: {}", crate::etcd::describe(source))]
    Etcd {
        /// The endpoints tried.
        endpoints: String,
        /// The request.
        what: &'static str,
        /// The client's error.
        source: etcd_client::Error,
    },
    /// No etcd member answered over plain gRPC (no `--etcd-cacert`): perhaps they serve TLS.
    #[cfg(feature = "etcd")]
    #[error("etcd {endpoints}: {what}: {} (no member answered plain gRPC; if they serve TLS, give --etcd-cacert)", crate::etcd::describe(source))]
    EtcdPlain {
        /// The endpoints tried.
        endpoints: String,
        /// The request.
        what: &'static str,
        /// The client's last error.
        source: etcd_client::Error,
    },
    /// etcd refused the user's name or password (`--etcd-user`, `--etcd-password-file`).
    #[cfg(feature = "etcd")]
    #[error(
        "etcd {endpoints}: authentication as user {user:?} failed: {}",
        crate::etcd::describe(source)
    )]
    EtcdAuth {
        /// The endpoints tried.
        endpoints: String,
        /// The etcd user.
        user: String,
        /// The client's error (etcd's answer).
        source: etcd_client::Error,
    },
    /// No answer from any etcd endpoint in time.
    #[error("etcd {endpoints}: {what}: no answer within {seconds}s from any member")]
    Timeout {
        /// The endpoints tried.
        endpoints: String,
        /// The request.
        what: &'static str,
        /// The time allowed.
        seconds: u64,
    },
    /// A store option is unusable.
    #[error("store: {0}")]
    Config(&'static str),
}

/// A key-value store with revisions (see the module documentation).
pub trait Store: Send {
    /// Every key and value, and the store revision.
    fn load(&mut self) -> Result<(u64, BTreeMap<String, String>), StoreError>;
    /// Writes all of `ops` or none; returns the new store revision. Refused with
    /// [`StoreError::Conflict`] when another process changed a key since this one last saw
    /// it: reload and retry.
    fn commit(&mut self, ops: &[Op]) -> Result<u64, StoreError>;
    /// For a store that other processes write too (etcd): starts following it from the
    /// last [`load`](Store::load) and returns the feed of changes. `None`: only this process
    /// writes the store, nothing to follow.
    fn subscribe(&mut self) -> Result<Option<std::sync::mpsc::Receiver<Feed>>, StoreError> {
        Ok(None)
    }
    /// Of the changes of `revision` from the feed, those this process has not already
    /// loaded or written itself (call with the core locked, so that no commit runs at the
    /// same time).
    fn absorb(&mut self, revision: u64, changes: Vec<Change>) -> Vec<Change> {
        let _ = revision;
        changes
    }
}

/// A stored value with the revision that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Entry {
    mod_revision: u64,
    value: String,
}

/// The whole store, as kept in memory and in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Data {
    format: u32,
    revision: u64,
    keys: BTreeMap<String, Entry>,
}

const FORMAT: u32 = 1;

impl Data {
    fn apply(&mut self, ops: &[Op]) -> u64 {
        self.revision += 1;
        for op in ops {
            match op {
                Op::Put { key, value } | Op::PutExpiring { key, value, .. } => {
                    self.keys.insert(
                        key.clone(),
                        Entry {
                            mod_revision: self.revision,
                            value: value.clone(),
                        },
                    );
                }
                Op::Delete { key } => {
                    self.keys.remove(key);
                }
            }
        }
        self.revision
    }

    fn values(&self) -> BTreeMap<String, String> {
        self.keys
            .iter()
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect()
    }
}

/// A store in memory (tests).
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    data: Data,
    /// Commits fail while set (to test that a failed commit changes nothing).
    pub fail: bool,
}

impl MemStore {
    /// `key`'s `mod_revision`, if present.
    pub fn mod_revision(&self, key: &str) -> Option<u64> {
        self.data.keys.get(key).map(|e| e.mod_revision)
    }
}

impl Store for MemStore {
    fn load(&mut self) -> Result<(u64, BTreeMap<String, String>), StoreError> {
        Ok((self.data.revision, self.data.values()))
    }

    fn commit(&mut self, ops: &[Op]) -> Result<u64, StoreError> {
        if self.fail {
            return Err(StoreError::Io {
                path: "<memory>".into(),
                source: std::io::Error::other("injected failure"),
            });
        }
        Ok(self.data.apply(ops))
    }
}

/// A log line of [`FileStore`]: the ops of one commit and the store revision it made.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct LogRecord {
    revision: u64,
    ops: Vec<LogOp>,
}

/// [`Op`] as written in the log.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
enum LogOp {
    Put(String, String),
    Delete(String),
}

impl LogOp {
    fn of(op: &Op) -> LogOp {
        match op {
            // No leases in files: an expiring put is kept like any other.
            Op::Put { key, value } | Op::PutExpiring { key, value, .. } => {
                LogOp::Put(key.clone(), value.clone())
            }
            Op::Delete { key } => LogOp::Delete(key.clone()),
        }
    }

    fn op(self) -> Op {
        match self {
            LogOp::Put(key, value) => Op::Put { key, value },
            LogOp::Delete(key) => Op::Delete { key },
        }
    }
}

/// What this process last saw of the files, to notice another writer: the snapshot's inode
/// (a compaction renames a new one in) and the log's length (a commit appends).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Seen {
    snapshot_inode: u64,
    snapshot_len: u64,
    log_len: u64,
}

/// The log is folded into a new snapshot once it is longer than the snapshot and this.
const COMPACT_MIN: u64 = 4 << 20;

/// A store in files (see the module documentation): a **snapshot** (`PATH`, the whole store
/// as one JSON document, replaced atomically: temporary file, fsync, rename, fsync of the
/// directory) and a **log** (`PATH.log`, one JSON line per commit since the snapshot,
/// appended and fsynced). A commit costs its own size, not the store's: thousands of routers
/// enroll and report without rewriting everything each time. When the log outgrows the
/// snapshot (and [`COMPACT_MIN`]) it is folded into a new snapshot, so the files stay within
/// about twice the store's size. Loading replays the log's lines after the snapshot's
/// revision; a torn last line (a crash while appending) was never acknowledged and is
/// dropped. A missing snapshot is an empty store; both files are created mode 0600.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    log_path: PathBuf,
    data: Data,
    seen: Seen,
}

impl FileStore {
    /// The store at `path` (read at [`Store::load`]).
    pub fn new(path: &Path) -> FileStore {
        let mut log = path.as_os_str().to_owned();
        log.push(".log");
        FileStore {
            path: path.to_owned(),
            log_path: PathBuf::from(log),
            data: Data::default(),
            seen: Seen::default(),
        }
    }

    fn shown(&self) -> String {
        self.path.display().to_string()
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.shown(),
            source,
        }
    }

    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            path: self.shown(),
            reason,
        }
    }

    /// The files' identities now (absent files: zeros).
    fn stat(&self) -> Result<Seen, StoreError> {
        use std::os::unix::fs::MetadataExt;
        let meta = |p: &Path| match fs::metadata(p) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(e)),
        };
        let snap = meta(&self.path)?;
        let log = meta(&self.log_path)?;
        Ok(Seen {
            snapshot_inode: snap.as_ref().map_or(0, |m| m.ino()),
            snapshot_len: snap.as_ref().map_or(0, |m| m.len()),
            log_len: log.map_or(0, |m| m.len()),
        })
    }

    /// The snapshot and the log replayed over it, the files' identities, and the length of
    /// the log's whole lines.
    fn read(&self) -> Result<(Data, Seen, u64), StoreError> {
        // Stat first: if a writer moves the files on between the stat and the reads, the
        // next commit sees a change and refuses (it never misses one).
        let seen = self.stat()?;
        let mut data = match fs::read_to_string(&self.path) {
            Ok(text) => {
                let data: Data =
                    serde_json::from_str(&text).map_err(|e| self.corrupt(e.to_string()))?;
                if data.format != FORMAT {
                    return Err(self.corrupt(format!(
                        "format {} (this conductor reads {FORMAT})",
                        data.format
                    )));
                }
                data
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Data::default(),
            Err(e) => return Err(self.io(e)),
        };
        let log = match fs::read(&self.log_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(self.io(e)),
        };
        let mut whole = 0u64;
        let mut lines = log.split_inclusive(|&b| b == b'\n').peekable();
        while let Some(line) = lines.next() {
            let last = lines.peek().is_none();
            let record: LogRecord = match serde_json::from_slice(line) {
                Ok(r) if line.ends_with(b"\n") => r,
                // A torn last line: its commit was never acknowledged.
                _ if last => break,
                Ok(_) | Err(_) => {
                    return Err(self.corrupt(format!(
                        "{}: a line before the last is not a commit",
                        self.log_path.display()
                    )))
                }
            };
            whole += line.len() as u64;
            // Lines at or below the snapshot's revision were folded into it (a crash
            // between a compaction's rename and its truncation of the log).
            if record.revision <= data.revision {
                continue;
            }
            if record.revision != data.revision + 1 {
                return Err(self.corrupt(format!(
                    "{}: revision {} follows {}",
                    self.log_path.display(),
                    record.revision,
                    data.revision
                )));
            }
            let ops: Vec<Op> = record.ops.into_iter().map(LogOp::op).collect();
            data.apply(&ops);
        }
        data.format = FORMAT;
        Ok((data, seen, whole))
    }

    /// Replaces the snapshot by `data` and empties the log.
    fn compact(&mut self) -> Result<(), StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_json::to_string(&self.data).map_err(|e| self.corrupt(e.to_string()))?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| self.io(e))?;
        f.write_all(text.as_bytes()).map_err(|e| self.io(e))?;
        f.sync_all().map_err(|e| self.io(e))?;
        fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        self.sync_dir()?;
        // The snapshot now holds every logged commit; a crash before this truncation
        // leaves lines that `read` skips by revision.
        if let Ok(log) = fs::OpenOptions::new().write(true).open(&self.log_path) {
            log.set_len(0)
                .and_then(|_| log.sync_all())
                .map_err(|e| self.io(e))?;
        }
        self.seen = self.stat()?;
        Ok(())
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io(e))
    }

    /// Appends one commit's line; on failure cuts the log back to where it was, so a later
    /// commit never follows a torn line.
    fn append(&mut self, line: &[u8]) -> Result<(), StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        let created = self.seen.log_len == 0;
        let mut f = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.log_path)
            .map_err(|e| self.io(e))?;
        if let Err(e) = f.write_all(line).and_then(|_| f.sync_data()) {
            let _ = f.set_len(self.seen.log_len);
            return Err(self.io(e));
        }
        if created {
            self.sync_dir()?;
        }
        self.seen.log_len += line.len() as u64;
        Ok(())
    }
}

impl Store for FileStore {
    fn load(&mut self) -> Result<(u64, BTreeMap<String, String>), StoreError> {
        let (data, mut seen, whole) = self.read()?;
        if whole < seen.log_len {
            // Cut the torn line off, so the next commit's line starts on a line of its own.
            fs::OpenOptions::new()
                .write(true)
                .open(&self.log_path)
                .and_then(|f| f.set_len(whole).and_then(|_| f.sync_all()))
                .map_err(|e| self.io(e))?;
            seen.log_len = whole;
        }
        self.data = data;
        self.seen = seen;
        Ok((self.data.revision, self.data.values()))
    }

    fn commit(&mut self, ops: &[Op]) -> Result<u64, StoreError> {
        if self.stat()? != self.seen {
            let found = self.read()?.0.revision;
            if found == self.data.revision {
                // Another process compacted or cut a torn line: nothing new. Take the files
                // as they are and go on.
                self.load()?;
                return self.commit(ops);
            }
            return Err(StoreError::Conflict {
                path: self.shown(),
                expected: self.data.revision,
                found,
            });
        }
        let record = LogRecord {
            revision: self.data.revision + 1,
            ops: ops.iter().map(LogOp::of).collect(),
        };
        let mut line = serde_json::to_vec(&record).map_err(|e| self.corrupt(e.to_string()))?;
        line.push(b'\n');
        self.append(&line)?;
        let rev = self.data.apply(ops);
        self.data.format = FORMAT;
        // The first commit writes the snapshot (the store's file exists from then on);
        // after that, when the log has outgrown it.
        if self.seen.snapshot_inode == 0
            || self.seen.log_len > self.seen.snapshot_len.max(COMPACT_MIN)
        {
            // The commit is durable in the log already: a failed compaction is retried at
            // the next commit, not reported as a failed commit.
            if let Err(e) = self.compact() {
                log::warn!("store compaction failed (the log keeps every commit): {e}");
                self.seen = self.stat().unwrap_or(self.seen);
            }
        }
        Ok(rev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> Op {
        Op::Put {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn revisions_count_commits_and_keys_keep_theirs() {
        let mut s = MemStore::default();
        assert_eq!(s.commit(&[put("a", "1"), put("b", "2")]).unwrap(), 1);
        assert_eq!(s.commit(&[put("a", "3")]).unwrap(), 2);
        assert_eq!(s.mod_revision("a"), Some(2));
        assert_eq!(s.mod_revision("b"), Some(1));
        s.commit(&[Op::Delete { key: "b".into() }]).unwrap();
        let (rev, kv) = s.load().unwrap();
        assert_eq!(rev, 3);
        assert_eq!(
            kv.into_iter().collect::<Vec<_>>(),
            [("a".into(), "3".into())]
        );
    }

    #[test]
    fn file_store_survives_reopen_and_refuses_a_concurrent_writer() {
        let dir = std::env::temp_dir().join(format!("svr-conductor-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let mut a = FileStore::new(&path);
        assert_eq!(a.load().unwrap().0, 0, "a missing file is an empty store");
        a.commit(&[put("k", "\"v\"")]).unwrap();
        let mut b = FileStore::new(&path);
        let (rev, kv) = b.load().unwrap();
        assert_eq!((rev, kv["k"].as_str()), (1, "\"v\""));
        b.commit(&[put("k", "\"w\"")]).unwrap();
        // a has not seen b's commit: refused, nothing written.
        let e = a.commit(&[put("k", "\"x\"")]).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Conflict {
                    expected: 1,
                    found: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(a.load().unwrap().1["k"], "\"w\"");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::write(&path, "not json").unwrap();
        assert!(matches!(a.load(), Err(StoreError::Corrupt { .. })));
        let _ = fs::remove_dir_all(&dir);
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("svr-conductor-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn file_store_appends_commits_and_drops_a_torn_last_line() {
        let dir = temp_dir("log");
        let path = dir.join("state.json");
        let log = dir.join("state.json.log");
        let mut a = FileStore::new(&path);
        a.load().unwrap();
        a.commit(&[put("k", "1")]).unwrap();
        let snapshot = fs::read(&path).unwrap();
        a.commit(&[put("k", "2"), put("j", "3")]).unwrap();
        a.commit(&[Op::Delete { key: "j".into() }]).unwrap();
        // The first commit made the snapshot; the later two only appended.
        assert_eq!(fs::read(&path).unwrap(), snapshot);
        assert_eq!(fs::read_to_string(&log).unwrap().lines().count(), 2);
        // A crash while appending: half a line at the end.
        let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(br#"{"revision":4,"ops":[["put"#).unwrap();
        let mut b = FileStore::new(&path);
        let (rev, kv) = b.load().unwrap();
        assert_eq!((rev, kv.len(), kv["k"].as_str()), (3, 1, "2"));
        // The torn line is cut off: the next commit is a line of its own.
        assert_eq!(b.commit(&[put("k", "4")]).unwrap(), 4);
        let (rev, kv) = FileStore::new(&path).load().unwrap();
        assert_eq!((rev, kv["k"].as_str()), (4, "4"));
        // A bad line before the last is corruption, not a torn write.
        let text = fs::read_to_string(&log).unwrap();
        fs::write(&log, format!("garbage\n{text}")).unwrap();
        assert!(matches!(
            FileStore::new(&path).load(),
            Err(StoreError::Corrupt { .. })
        ));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn file_store_compacts_and_skips_lines_already_in_the_snapshot() {
        let dir = temp_dir("compact");
        let path = dir.join("state.json");
        let log = dir.join("state.json.log");
        let mut s = FileStore::new(&path);
        s.load().unwrap();
        let big = format!("\"{}\"", "x".repeat(1 << 20));
        for i in 0..6 {
            s.commit(&[put(&format!("k{i}"), &big)]).unwrap();
        }
        // 6 MiB of commits: past COMPACT_MIN and the first snapshot, folded in once.
        let log_len = fs::metadata(&log).unwrap().len();
        assert!(log_len < 3 << 20, "log {log_len} B");
        let (rev, kv) = FileStore::new(&path).load().unwrap();
        assert_eq!((rev, kv.len()), (6, 6));
        // A crash between the snapshot's rename and the log's truncation: the log still
        // holds commits the snapshot has; they are not applied twice.
        s.commit(&[put("n", "1")]).unwrap();
        let line = fs::read(&log).unwrap();
        let mut data = FileStore::new(&path).read().unwrap().0;
        data.format = FORMAT;
        fs::write(&path, serde_json::to_string(&data).unwrap()).unwrap();
        fs::write(&log, &line).unwrap();
        let (rev, kv) = FileStore::new(&path).load().unwrap();
        assert_eq!((rev, kv.len()), (7, 7));
        let _ = fs::remove_dir_all(&dir);
    }
}
