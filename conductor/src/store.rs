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
//! | `routers/<router>/config` | `{revision, yaml}`: the router's rendered part and the revision it last changed in | a router watches this key from its last `mod_revision` |
//! | `routers/<router>/status` | node, version, applied revision, error, last seen | [`Op::PutExpiring`]: a lease, TTL 3 × the report interval |
//! | `routers/<router>/certs` | serials and expiry of certificates issued to it | |
//! | `routers/<router>/revoked` | when it was revoked | |
//! | `tokens/<sha256 of token>` | router, expiry, consumed-at | [`Op::PutExpiring`]: a lease until a day after the token's expiry |
//! | `crl/number` | the last CRL number used | |
//! | `audit/<seq>` | one audit event | |
//!
//! Three implementations: [`MemStore`] for tests, [`FileStore`], one JSON file rewritten
//! atomically (temporary file, fsync, rename, fsync of the directory) on every commit, and
//! `EtcdStore` (module `etcd`, feature `etcd`), shared by several conductor replicas. A
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
    #[error("etcd {endpoints}: {what}: {source}")]
    Etcd {
        /// The endpoints tried.
        endpoints: String,
        /// The request.
        what: &'static str,
        /// The client's error.
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

/// A store in one JSON file (see the module documentation). A missing file is an empty
/// store; the file is created, mode 0600, on the first commit.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    data: Data,
}

impl FileStore {
    /// The store at `path` (read at [`Store::load`]).
    pub fn new(path: &Path) -> FileStore {
        FileStore {
            path: path.to_owned(),
            data: Data::default(),
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

    fn read(&self) -> Result<Data, StoreError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Data::default()),
            Err(e) => return Err(self.io(e)),
        };
        let data: Data = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            path: self.shown(),
            reason: e.to_string(),
        })?;
        if data.format != FORMAT {
            return Err(StoreError::Corrupt {
                path: self.shown(),
                reason: format!("format {} (this conductor reads {FORMAT})", data.format),
            });
        }
        Ok(data)
    }

    fn write(&self, data: &Data) -> Result<(), StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_json::to_string(data).map_err(|e| StoreError::Corrupt {
            path: self.shown(),
            reason: e.to_string(),
        })?;
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
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io(e))
    }
}

impl Store for FileStore {
    fn load(&mut self) -> Result<(u64, BTreeMap<String, String>), StoreError> {
        self.data = self.read()?;
        Ok((self.data.revision, self.data.values()))
    }

    fn commit(&mut self, ops: &[Op]) -> Result<u64, StoreError> {
        let on_disk = self.read()?.revision;
        if on_disk != self.data.revision {
            return Err(StoreError::Conflict {
                path: self.shown(),
                expected: self.data.revision,
                found: on_disk,
            });
        }
        let mut next = self.data.clone();
        next.format = FORMAT;
        let rev = next.apply(ops);
        self.write(&next)?;
        self.data = next;
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
}
