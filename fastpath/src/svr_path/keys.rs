//! [`KeyStore`]: the metadata keys the data path uses, published to workers lock-free.
//!
//! Key management installs keys here (svrd: the key exchange of enhanced security key
//! management, publishing what `svr_keymgmt::PeerKeyState` decides; or the YAML test keys);
//! workers load one immutable [`KeySnapshot`] per packet or burst (an `arc-swap` load, no
//! lock, never a wait). Two roles:
//!
//! * **our own** metadata key decrypts and verifies incoming metadata (peers encrypt to us
//!   with it); looked up by the Security Identifier's rekey index. With the key exchange each
//!   peer gets its own ([`KeyStore::publish_peer`], [`KeySnapshot::recv`]); the test keys
//!   use one for all peers ([`KeyStore::install_own`]);
//! * **each peer's** metadata key encrypts and signs outgoing metadata to that peer.
//!
//! Each role keeps the current key and the previous one, so a receiver still accepts the old
//! key during a rotation (docs/background.md §6 "Grace"); [`KeyStore::retire_own`] /
//! [`KeyStore::retire_peer`] drop a key when the grace period is over. Writers (the slow path)
//! are serialised by a mutex that workers never touch.
//!
//! The snapshot also says which **peer paths** (waypoint pairs) are in service
//! ([`KeyStore::set_path_in_service`]): with key management, a path carries new sessions only
//! while BFD is Up on it and the peer's keys are valid. Without it (test keys) every path is.
//!
//! Beside it, per peer, the [`PathSnapshot`] that SLA path selection reads
//! ([`KeySnapshot::peer_paths`]: in service, smoothed metrics, vector label, cost of each of
//! the peer's waypoint pairs, in [`super::SvrShared::pairs`] order). It lives in this same
//! snapshot so that a worker makes **one** atomic load per packet or burst for keys, path
//! state and metrics together, and a path leaving service and its metrics are never seen
//! half-published. The slow path writes it with [`KeyStore::set_path_in_service`] (both
//! views at once), [`KeyStore::publish_path_metrics`] and [`KeyStore::publish_paths`].
//!
//! **Retired keys are dropped, and zeroized, once no worker holds them**: a snapshot owns its
//! keys through `Arc`s; replacing the snapshot drops the store's reference to the old one, and
//! the last worker guard or `Arc` clone of it to go away drops the keys (`MetadataKey` is
//! `ZeroizeOnDrop`). Workers hold a snapshot for one packet or burst, so that is soon.

use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};
use svr_crypto::MetadataKey;
use svr_linkq::{Metrics, PathIndex, PathSnapshot};

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
    /// Our own metadata key(s), for every peer (test keys).
    pub own: KeyPair,
    /// Our own metadata key(s) per peer (key exchange), indexed by [`PeerId`]; looked up
    /// before [`KeySnapshot::own`].
    pub own_per_peer: Vec<KeyPair>,
    /// Peers' metadata keys, indexed by [`PeerId`].
    pub peers: Vec<KeyPair>,
    /// The payload-key index new sessions to each peer get, indexed by [`PeerId`] (0 when
    /// absent); it moves on every `payload-key-rekey-interval`.
    pub payload_key_index: Vec<u8>,
    /// Which waypoint pairs ([`super::SvrShared::pairs`] order) are in service; `None`: not
    /// gated, every path is (test-key mode).
    pub paths: Option<Vec<bool>>,
    /// Per peer ([`PeerId`]), its paths as SLA path selection sees them: path `i` of peer
    /// `p` is its `i`th waypoint pair in [`super::SvrShared::pairs`] order. Set up by
    /// [`super::SvrShared::new`] (every path in service, no metrics), kept in step with
    /// [`KeySnapshot::paths`] by the writers.
    pub peer_paths: Vec<PathSnapshot>,
    /// Waypoint pair ([`super::SvrShared::pairs`] index) → its peer and its index in that
    /// peer's [`PathSnapshot`].
    pub pair_slots: Vec<(PeerId, PathIndex)>,
    /// Per peer ([`PeerId`]): moves (wrapping) each time the last of its paths leaves
    /// service. The peer may have restarted meanwhile and lost its sessions, so an ingress
    /// session made before the move refreshes its payload key on its next packet.
    pub peer_epoch: Vec<u8>,
    /// Moves on every write to path state (service, metrics, a whole snapshot): a live
    /// session whose last review saw another value is reviewed on its next packet
    /// ([`super::SvrShared::review_due`]), so a packet of a session pays one compare.
    pub path_version: u64,
    /// Per waypoint pair: when (session clock, ms) it last entered service; 0 when not known
    /// (test keys, or told without a time): in service "long ago". `revertible-failover`
    /// returns to a pair only a full hold-down after this.
    pub pair_up_since_ms: Vec<u64>,
}

impl KeySnapshot {
    /// Our key with `rekey_index`, to open incoming metadata (any peer; test keys).
    #[inline]
    pub fn own(&self, rekey_index: u32) -> Option<&MetadataKey> {
        self.own.by_index(rekey_index)
    }

    /// Our key with `rekey_index` for metadata from `peer`: the one exchanged with that peer,
    /// else the shared one.
    #[inline]
    pub fn recv(&self, peer: PeerId, rekey_index: u32) -> Option<&MetadataKey> {
        self.own_per_peer
            .get(usize::from(peer))
            .and_then(|p| p.by_index(rekey_index))
            .or_else(|| self.own(rekey_index))
    }

    /// `peer`'s unreachability epoch ([`KeySnapshot::peer_epoch`]).
    #[inline]
    pub fn peer_epoch(&self, peer: PeerId) -> u8 {
        self.peer_epoch.get(usize::from(peer)).copied().unwrap_or(0)
    }

    /// The payload-key index for a new session to `peer`.
    #[inline]
    pub fn payload_key_index(&self, peer: PeerId) -> u8 {
        self.payload_key_index
            .get(usize::from(peer))
            .copied()
            .unwrap_or(0)
    }

    /// Whether waypoint pair `pair` may carry sessions.
    #[inline]
    pub fn path_in_service(&self, pair: usize) -> bool {
        match &self.paths {
            None => true,
            Some(p) => p.get(pair).copied().unwrap_or(false),
        }
    }

    /// When waypoint pair `pair` last entered service ([`KeySnapshot::pair_up_since_ms`]).
    #[inline]
    pub fn pair_up_since_ms(&self, pair: usize) -> u64 {
        self.pair_up_since_ms.get(pair).copied().unwrap_or(0)
    }

    /// `peer`'s paths for selection (`None`: a peer without waypoint pairs).
    #[inline]
    pub fn paths_of(&self, peer: PeerId) -> Option<&PathSnapshot> {
        self.peer_paths.get(usize::from(peer))
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

    /// The current snapshot as an owned `Arc` (for the slow path and tests).
    pub fn load_full(&self) -> Arc<KeySnapshot> {
        self.snap.load_full()
    }

    fn update(&self, f: impl FnOnce(&mut KeySnapshot)) {
        // A poisoned lock only means another writer panicked; the snapshot is still whole.
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = KeySnapshot::clone(&self.snap.load());
        f(&mut next);
        self.snap.store(Arc::new(next));
    }

    /// [`Self::update`] of path state: moves [`KeySnapshot::path_version`] as well.
    fn update_paths(&self, f: impl FnOnce(&mut KeySnapshot)) {
        self.update(|s| {
            f(s);
            s.path_version = s.path_version.wrapping_add(1);
        });
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

    /// Publishes what key management holds for `peer` in one step: our metadata keys for it
    /// (`own`: current and previous), its metadata key we seal with (`send`), and the
    /// payload-key index of new sessions. The keys are shared, not copied.
    pub fn publish_peer(&self, peer: PeerId, own: KeyPair, send: KeyPair, payload_key_index: u8) {
        self.update(|s| {
            let i = usize::from(peer);
            if s.peers.len() <= i {
                s.peers.resize_with(i + 1, KeyPair::default);
            }
            if s.own_per_peer.len() <= i {
                s.own_per_peer.resize_with(i + 1, KeyPair::default);
            }
            if s.payload_key_index.len() <= i {
                s.payload_key_index.resize(i + 1, 0);
            }
            s.own_per_peer[i] = own;
            s.peers[i] = send;
            s.payload_key_index[i] = payload_key_index;
        });
    }

    /// Gates new sessions on path state: from now on a waypoint pair is in service only
    /// after [`KeyStore::set_path_in_service`] says so. `pairs`: how many there are.
    pub fn gate_paths(&self, pairs: usize) {
        self.update_paths(|s| {
            s.paths = Some(vec![false; pairs]);
            for snap in &mut s.peer_paths {
                for i in 0..snap.paths().len() {
                    if let Some(e) = snap.get_mut(PathIndex(i as u8)) {
                        e.in_service = false;
                    }
                }
            }
        });
    }

    /// The paths of every peer and where each waypoint pair is among them (by
    /// [`super::SvrShared::new`], once).
    pub(crate) fn set_topology(
        &self,
        peer_paths: Vec<PathSnapshot>,
        pair_slots: Vec<(PeerId, PathIndex)>,
    ) {
        self.update(|s| {
            s.peer_paths = peer_paths;
            s.pair_slots = pair_slots;
        });
    }

    /// Puts waypoint pair `pair` in or out of service (only once [`KeyStore::gate_paths`]),
    /// for the per-packet check and for path selection in one step.
    pub fn set_path_in_service(&self, pair: usize, in_service: bool) {
        self.set_path_in_service_since(pair, in_service, 0);
    }

    /// [`Self::set_path_in_service`] told at `now`: a pair entering service remembers when
    /// ([`KeySnapshot::pair_up_since_ms`]), for the hold-down of `revertible-failover`.
    pub fn set_path_in_service_at(&self, pair: usize, in_service: bool, now: crate::time::Instant) {
        let now_ms = crate::session::now_millis(now).max(1);
        self.set_path_in_service_since(pair, in_service, now_ms);
    }

    fn set_path_in_service_since(&self, pair: usize, in_service: bool, now_ms: u64) {
        self.update_paths(|s| {
            let peer = s.pair_slots.get(pair).map(|&(peer, _)| peer);
            let reachable = |s: &KeySnapshot| {
                let (Some(peer), Some(paths)) = (peer, s.paths.as_ref()) else {
                    return false;
                };
                s.pair_slots
                    .iter()
                    .zip(paths)
                    .any(|(&(p, _), &up)| p == peer && up)
            };
            let was_reachable = reachable(s);
            let was = match s.paths.as_mut().and_then(|p| p.get_mut(pair)) {
                Some(p) => std::mem::replace(p, in_service),
                None => return,
            };
            if in_service && !was {
                if s.pair_up_since_ms.len() <= pair {
                    s.pair_up_since_ms.resize(pair + 1, 0);
                }
                s.pair_up_since_ms[pair] = now_ms;
            }
            if let Some(peer) = peer.filter(|_| was_reachable && !reachable(s)) {
                let i = usize::from(peer);
                if s.peer_epoch.len() <= i {
                    s.peer_epoch.resize(i + 1, 0);
                }
                s.peer_epoch[i] = s.peer_epoch[i].wrapping_add(1);
            }
            if let Some(&(peer, i)) = s.pair_slots.get(pair) {
                if let Some(e) = s
                    .peer_paths
                    .get_mut(usize::from(peer))
                    .and_then(|snap| snap.get_mut(i))
                {
                    e.in_service = in_service;
                }
            }
        });
    }

    /// Publishes the smoothed link-test metrics of `peer`'s path `path` (`None`: not
    /// measured), as the slow path's link monitor tells them (after the hold-down).
    pub fn publish_path_metrics(&self, peer: PeerId, path: PathIndex, metrics: Option<Metrics>) {
        self.update_paths(|s| {
            if let Some(e) = s
                .peer_paths
                .get_mut(usize::from(peer))
                .and_then(|snap| snap.get_mut(path))
            {
                e.metrics = metrics;
            }
        });
    }

    /// Replaces `peer`'s whole path snapshot (service state, metrics, labels, costs) in one
    /// step; with gating on, the per-pair service state follows its `in_service` flags.
    /// Paths beyond the peer's waypoint pairs are ignored by the data path.
    pub fn publish_paths(&self, peer: PeerId, paths: PathSnapshot) {
        self.update_paths(|s| {
            let Some(slot) = s.peer_paths.get_mut(usize::from(peer)) else {
                return;
            };
            *slot = paths;
            if let Some(gate) = s.paths.as_mut() {
                for (pair, &(p, i)) in s.pair_slots.iter().enumerate() {
                    if p == peer {
                        if let Some(g) = gate.get_mut(pair) {
                            *g = paths.get(i).is_some_and(|e| e.in_service);
                        }
                    }
                }
            }
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

    #[test]
    fn per_peer_keys_gating_and_zeroize_on_last_drop() {
        let ks = KeyStore::new();
        assert!(ks.load().path_in_service(5), "ungated: every path");
        ks.gate_paths(2);
        assert!(!ks.load().path_in_service(0));
        ks.set_path_in_service(1, true);
        let s = ks.load();
        assert!(!s.path_in_service(0) && s.path_in_service(1) && !s.path_in_service(2));
        drop(s);
        let own = Arc::new(key(1));
        let send = Arc::new(key(9));
        ks.install_own(key(1)); // the shared (test) key with the same index
        ks.publish_peer(
            1,
            KeyPair {
                current: Some(Arc::clone(&own)),
                previous: None,
            },
            KeyPair {
                current: Some(Arc::clone(&send)),
                previous: None,
            },
            3,
        );
        let s = ks.load_full();
        assert!(std::ptr::eq(s.recv(1, 1).unwrap(), own.as_ref()));
        assert!(
            !std::ptr::eq(s.recv(0, 1).unwrap(), own.as_ref()),
            "peer 0: shared"
        );
        assert_eq!(s.payload_key_index(1), 3);
        assert_eq!(s.payload_key_index(0), 0);
        // A worker still holds the old snapshot: the key lives on until it lets go.
        ks.publish_peer(1, KeyPair::default(), KeyPair::default(), 4);
        drop(send);
        let weak = Arc::downgrade(&own);
        drop(own);
        assert!(weak.upgrade().is_some(), "held by the old snapshot");
        drop(s);
        assert!(
            weak.upgrade().is_none(),
            "dropped (and zeroized) with the last holder"
        );
    }
}
