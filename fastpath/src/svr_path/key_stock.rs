//! A worker's stock of installed payload keys for new ingress sessions.
//!
//! The ingress makes the payload key of every session it opens (32 random bytes, TLV 46), so
//! it can make them ahead of time: the stock holds fresh keys from the worker's CSPRNG,
//! installed [`BATCH`] at a time with [`PayloadKey::new_many`] (their HKDF chains side by side
//! in the SHA-512 lanes, a third of the cost of installing them one by one). A new session
//! takes one; an empty stock installs a batch on the spot, and [`SvrWorker::refill_payload_keys`]
//! tops it up between bursts.
//!
//! Keys in the stock are secrets like any session key: their raw bytes and schedules are
//! zeroized on drop ([`SessionKey`], [`PayloadKey`]) and `Debug` prints only how many there are.

use std::sync::Arc;

use rand::RngCore;
use svr_crypto::PayloadKey;

use super::{SessionKey, SvrWorker};

/// Keys installed per refill: one per SHA-512 lane.
pub const BATCH: usize = PayloadKey::MAX_BATCH;

/// Most keys a stock holds (about 1.3 KB each).
pub const CAPACITY: usize = 4 * BATCH;

/// Installed payload keys, not yet given to a session. See the module doc.
pub struct KeyStock {
    /// Never cloned while here, so each `Arc` is unique until [`KeyStock::take`] hands it out.
    keys: Vec<Arc<SessionKey>>,
}

impl KeyStock {
    /// An empty stock (allocates room for [`CAPACITY`] keys; installs none).
    pub fn new() -> KeyStock {
        KeyStock {
            keys: Vec::with_capacity(CAPACITY),
        }
    }

    /// Keys ready.
    #[inline]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is ready (the next [`KeyStock::take`] installs a batch).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// A fresh payload key with `index` for a new session; installs a batch first when the
    /// stock is empty.
    pub fn take(&mut self, index: u8, rng: &mut impl RngCore) -> Arc<SessionKey> {
        if self.keys.is_empty() {
            self.install_batch(rng);
        }
        // Keys are installed without an index and get it here: the peer's index may have moved since.
        if let Some(mut key) = self.keys.pop() {
            if let Some(k) = Arc::get_mut(&mut key) {
                k.key.set_index(index);
                return key;
            }
        }
        // Not reached: the batch above filled the stock, and its keys are never shared.
        let mut raw = [0u8; 32];
        rng.fill_bytes(&mut raw);
        let key = SessionKey::new(index, raw);
        raw = [0; 32];
        std::hint::black_box(&mut raw);
        key
    }

    /// Installs batches until the stock is full (or one short of a batch from full).
    pub fn top_up(&mut self, rng: &mut impl RngCore) {
        while self.keys.len() + BATCH <= CAPACITY {
            self.install_batch(rng);
        }
    }

    /// [`BATCH`] fresh keys from `rng`, installed together.
    fn install_batch(&mut self, rng: &mut impl RngCore) {
        let mut raw = [[0u8; 32]; BATCH];
        for r in raw.iter_mut() {
            rng.fill_bytes(r);
        }
        let keys: [PayloadKey; BATCH] = PayloadKey::new_many(0, core::array::from_fn(|i| &raw[i]));
        for (key, raw) in keys.into_iter().zip(raw) {
            self.keys.push(Arc::new(SessionKey { key, raw }));
        }
        raw = [[0; 32]; BATCH];
        std::hint::black_box(&mut raw);
    }
}

impl Default for KeyStock {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for KeyStock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStock")
            .field("ready", &self.keys.len())
            .finish()
    }
}

impl SvrWorker {
    /// A fresh installed payload key with `index` for a session this worker opens (ingress),
    /// from the worker's stock.
    pub(super) fn payload_key(&mut self, index: u8) -> Arc<SessionKey> {
        self.key_stock.take(index, &mut self.rng)
    }

    /// Tops the worker's stock of payload keys up to [`CAPACITY`], [`BATCH`] keys per SHA-512
    /// lane pass: call it when a poll found no packets, so that new sessions find keys ready.
    pub fn refill_payload_keys(&mut self) {
        self.key_stock.top_up(&mut self.rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn takes_fresh_installed_keys_with_the_index_asked_for() {
        let mut rng = StdRng::from_seed([3; 32]);
        let mut stock = KeyStock::new();
        assert!(stock.is_empty());
        let mut seen = Vec::new();
        for i in 0..3 * BATCH + 1 {
            let index = (i % 5) as u8;
            let k = stock.take(index, &mut rng);
            assert_eq!(k.index(), index);
            assert_eq!(
                Arc::strong_count(&k),
                1,
                "the session holds the only reference"
            );
            // The installed key is the one TLV 46 announces, under the index given at take.
            let tlv = k.tlv();
            assert_eq!(tlv.index, index);
            let fresh = PayloadKey::new(index, tlv.key);
            assert_eq!(
                k.key.sign(svr_crypto::Direction::Forward, b"m"),
                fresh.sign(svr_crypto::Direction::Forward, b"m")
            );
            assert_eq!(
                k.key.iv(svr_crypto::Direction::Forward, 7),
                fresh.iv(svr_crypto::Direction::Forward, 7)
            );
            assert!(!seen.contains(tlv.key), "key {i} repeats");
            seen.push(*tlv.key);
        }
        // Batches of BATCH: 3 full ones and one more for the last take.
        assert_eq!(stock.len(), BATCH - 1);
    }

    #[test]
    fn top_up_fills_to_capacity_and_debug_shows_no_key() {
        let mut rng = StdRng::from_seed([4; 32]);
        let mut stock = KeyStock::new();
        stock.top_up(&mut rng);
        assert_eq!(stock.len(), CAPACITY);
        stock.take(1, &mut rng);
        stock.top_up(&mut rng); // one short of a batch: nothing to do
        assert_eq!(stock.len(), CAPACITY - 1);
        assert_eq!(
            format!("{stock:?}"),
            format!("KeyStock {{ ready: {} }}", CAPACITY - 1)
        );
    }
}
