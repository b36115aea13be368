//! [`KeyStore`]: the metadata keys the data path uses, published to workers lock-free.
//!
//! Key management (issue 4; for now the YAML test keys) installs keys here; workers load one
//! immutable [`KeySnapshot`] per burst (an `arc-swap` load, no lock). Two roles:
//!
//! * **our own** metadata key decrypts and verifies incoming metadata (peers encrypt to us
//!   with it); looked up by the Security Identifier's rekey index;
//! * **each peer's** metadata key encrypts and signs outgoing metadata to that peer.
//!
//! Each role keeps the current key and the previous one, so a receiver still accepts the old
//! key during a rotation (decisions.md "Grace"); [`KeyStore::retire_own`] /
//! [`KeyStore::retire_peer`] drop a key when the grace period is over. Writers (the slow path)
//! are serialised by a mutex that workers never touch.

use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};
use svr_crypto::MetadataKey;

/// Index of a peer router in [`super::SvrConfig::peers`].
pub type PeerId = u16;

/// A current key and, during a rotation, the previous one.
#[derive(Debug, Clone, Default)]
pub struct KeyPair {
    /// The key to send with.
    pub current: Option<Arc<MetadataKey>>,
    /// The key before it, still accepted.
    pub previous: Option<Arc<MetadataKey>>,
}

impl KeyPair {
    fn install(&mut self, key: MetadataKey) {
        let key = Arc::new(key);
        if let Some(cur) = self.current.take() {
            if cur.rekey_index() != key.rekey_index() {
                self.previous = Some(cur);
            }
        }
        self.current = Some(key);
    }

    fn retire(&mut self, rekey_index: u32) {
        if self
            .previous
            .as_ref()
            .is_some_and(|k| k.rekey_index() == rekey_index)
        {
            self.previous = None;
        }
        if self
            .current
            .as_ref()
            .is_some_and(|k| k.rekey_index() == rekey_index)
        {
            self.current = self.previous.take();
        }
    }

    /// The key with `rekey_index` (current or previous).
    #[inline]
    pub fn by_index(&self, rekey_index: u32) -> Option<&MetadataKey> {
        [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .map(|k| k.as_ref())
            .find(|k| k.rekey_index() == rekey_index)
    }
}

/// One immutable generation of keys.
#[derive(Debug, Clone, Default)]
pub struct KeySnapshot {
    /// Our own metadata key(s).
    pub own: KeyPair,
    /// Peers' metadata keys, indexed by [`PeerId`].
    pub peers: Vec<KeyPair>,
}

impl KeySnapshot {
    /// Our key with `rekey_index`, to open incoming metadata.
    #[inline]
    pub fn own(&self, rekey_index: u32) -> Option<&MetadataKey> {
        self.own.by_index(rekey_index)
    }

    /// The key to seal metadata to `peer` with.
    #[inline]
    pub fn peer_current(&self, peer: PeerId) -> Option<&MetadataKey> {
        self.peers.get(usize::from(peer))?.current.as_deref()
    }

    /// `peer`'s key with `rekey_index`.
    pub fn peer(&self, peer: PeerId, rekey_index: u32) -> Option<&MetadataKey> {
        self.peers.get(usize::from(peer))?.by_index(rekey_index)
    }
}

/// The published key set; see the module doc.
#[derive(Debug, Default)]
pub struct KeyStore {
    snap: ArcSwap<KeySnapshot>,
    writer: Mutex<()>,
}

impl KeyStore {
    /// An empty store.
    pub fn new() -> KeyStore {
        KeyStore::default()
    }

    /// The current snapshot (lock-free; hold it for a burst, not longer).
    #[inline]
    pub fn load(&self) -> Guard<Arc<KeySnapshot>> {
        self.snap.load()
    }

    fn update(&self, f: impl FnOnce(&mut KeySnapshot)) {
        // A poisoned lock only means another writer panicked; the snapshot is still whole.
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = KeySnapshot::clone(&self.snap.load());
        f(&mut next);
        self.snap.store(Arc::new(next));
    }

    /// Installs our own metadata key; the previous one stays accepted until retired.
    pub fn install_own(&self, key: MetadataKey) {
        self.update(|s| s.own.install(key));
    }

    /// Installs `peer`'s metadata key; the previous one stays known until retired.
    pub fn install_peer(&self, peer: PeerId, key: MetadataKey) {
        self.update(|s| {
            let i = usize::from(peer);
            if s.peers.len() <= i {
                s.peers.resize_with(i + 1, KeyPair::default);
            }
            s.peers[i].install(key);
        });
    }

    /// Forgets our key with `rekey_index` (end of a rotation's grace period).
    pub fn retire_own(&self, rekey_index: u32) {
        self.update(|s| s.own.retire(rekey_index));
    }

    /// Forgets `peer`'s key with `rekey_index`.
    pub fn retire_peer(&self, peer: PeerId, rekey_index: u32) {
        self.update(|s| {
            if let Some(p) = s.peers.get_mut(usize::from(peer)) {
                p.retire(rekey_index);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> MetadataKey {
        MetadataKey::new(i, &[i as u8; 32], &[i as u8; 48])
    }

    #[test]
    fn rotation_keeps_previous_until_retired() {
        let ks = KeyStore::new();
        ks.install_own(key(1));
        ks.install_peer(2, key(7));
        assert!(ks.load().own(1).is_some());
        assert!(ks.load().peer_current(2).is_some());
        assert!(ks.load().peer_current(0).is_none());
        ks.install_own(key(2));
        let s = ks.load();
        assert_eq!(s.own(1).map(|k| k.rekey_index()), Some(1));
        assert_eq!(s.own(2).map(|k| k.rekey_index()), Some(2));
        drop(s);
        ks.retire_own(1);
        assert!(ks.load().own(1).is_none());
        assert!(ks.load().own(2).is_some());
        ks.install_peer(2, key(8));
        assert_eq!(ks.load().peer_current(2).map(|k| k.rekey_index()), Some(8));
        assert!(ks.load().peer(2, 7).is_some());
        ks.retire_peer(2, 8);
        assert_eq!(ks.load().peer_current(2).map(|k| k.rekey_index()), Some(7));
    }
}
