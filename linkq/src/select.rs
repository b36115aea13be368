//! Path selection for a new session (docs/multipath.md §4): the spec's §2.3 algorithm over
//! an immutable [`PathSnapshot`] that the slow path publishes and workers read.
//!
//! Nothing here allocates: the snapshot and the policy are fixed-size arrays, path sets are
//! a `u64` bitmap (the test `select_does_not_allocate` checks it with a counting
//! allocator).

use crate::metrics::Metrics;

/// Most paths in one snapshot (one peer's paths: local WAN waypoints × the peer's).
pub const MAX_PATHS: usize = 32;
/// Most `vector` entries in one policy.
pub const MAX_VECTORS: usize = 16;
/// The `best-path` equivalence band: paths within 10 % of the best are equivalent.
pub const BEST_PATH_BAND: f64 = 0.10;

/// A path's place in its [`PathSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathIndex(pub u8);

/// A `vector` label, interned by the caller (config names to small numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VectorId(pub u16);

/// Interns `vector` label names as [`VectorId`]s, for the slow path building policies
/// and snapshots from the configuration (the same table for both).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VectorLabels {
    names: Vec<String>,
}

impl VectorLabels {
    /// The id of `name`, added if new; `None` after 65536 labels.
    pub fn id(&mut self, name: &str) -> Option<VectorId> {
        let i = match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        };
        u16::try_from(i).ok().map(VectorId)
    }

    /// The name of `id`.
    pub fn name(&self, id: VectorId) -> Option<&str> {
        self.names.get(usize::from(id.0)).map(String::as_str)
    }
}

/// What the slow path knows about one peer path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathEntry {
    /// BFD up (as notified through the hold-down) and a valid key.
    pub in_service: bool,
    /// The smoothed link-test metrics; `None` before the first test.
    pub metrics: Option<Metrics>,
    /// The path's `vector` label (from its interface / adjacency), if any.
    pub vector: Option<VectorId>,
    /// The adjacency `cost` (0 by default).
    pub cost: u32,
    /// Which of our WAN interfaces the path leaves by: duplication prefers two paths on
    /// different ones.
    pub local_link: u8,
}

impl PathEntry {
    /// A path out of service, without metrics, label or cost.
    pub const UNUSED: PathEntry = PathEntry {
        in_service: false,
        metrics: None,
        vector: None,
        cost: 0,
        local_link: 0,
    };
}

/// The paths to one peer, as the slow path last published them. A plain value: publish
/// it behind an `ArcSwap` (or an epoch) and let workers read it without locks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathSnapshot {
    len: u8,
    paths: [PathEntry; MAX_PATHS],
}

impl Default for PathSnapshot {
    fn default() -> Self {
        PathSnapshot {
            len: 0,
            paths: [PathEntry::UNUSED; MAX_PATHS],
        }
    }
}

impl PathSnapshot {
    /// A snapshot of the given paths; `None` if there are more than [`MAX_PATHS`].
    pub fn new(paths: &[PathEntry]) -> Option<PathSnapshot> {
        let mut s = PathSnapshot::default();
        for p in paths {
            s.push(*p)?;
        }
        Some(s)
    }

    /// Adds a path; `None` when full.
    pub fn push(&mut self, entry: PathEntry) -> Option<PathIndex> {
        let i = usize::from(self.len);
        *self.paths.get_mut(i)? = entry;
        self.len += 1;
        Some(PathIndex(i as u8))
    }

    /// The paths, in index order.
    pub fn paths(&self) -> &[PathEntry] {
        &self.paths[..usize::from(self.len)]
    }

    /// Path `i`, if it exists.
    pub fn get(&self, i: PathIndex) -> Option<&PathEntry> {
        self.paths().get(usize::from(i.0))
    }

    /// Mutable path `i` (for the slow path building the next snapshot).
    pub fn get_mut(&mut self, i: PathIndex) -> Option<&mut PathEntry> {
        let len = usize::from(self.len);
        self.paths[..len].get_mut(usize::from(i.0))
    }

    /// The paths whose metrics meet `policy`'s SLA (see [`Policy::complies`]).
    pub fn compliant(&self, policy: &Policy) -> PathSet {
        self.set_where(|p| p.metrics.is_some_and(|m| policy.complies(&m)))
    }

    /// The paths in service.
    pub fn in_service(&self) -> PathSet {
        self.set_where(|p| p.in_service)
    }

    fn set_where(&self, f: impl Fn(&PathEntry) -> bool) -> PathSet {
        let mut s = PathSet::EMPTY;
        for (i, p) in self.paths().iter().enumerate() {
            if f(p) {
                s.insert(PathIndex(i as u8));
            }
        }
        s
    }
}

/// A set of paths of one snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PathSet(pub u64);

impl PathSet {
    /// No path.
    pub const EMPTY: PathSet = PathSet(0);
    /// Every path.
    pub const ALL: PathSet = PathSet(u64::MAX);

    /// Adds `i`.
    pub fn insert(&mut self, i: PathIndex) {
        if i.0 < 64 {
            self.0 |= 1 << i.0;
        }
    }

    /// Removes `i`.
    pub fn without(self, i: PathIndex) -> PathSet {
        if i.0 < 64 {
            PathSet(self.0 & !(1 << i.0))
        } else {
            self
        }
    }

    /// Is `i` in the set?
    pub fn contains(self, i: PathIndex) -> bool {
        i.0 < 64 && self.0 & (1 << i.0) != 0
    }

    /// Is the set empty?
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets.
    pub fn and(self, o: PathSet) -> PathSet {
        PathSet(self.0 & o.0)
    }

    /// Number of paths.
    pub fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// The members, lowest index first.
    pub fn iter(self) -> impl Iterator<Item = PathIndex> {
        (0..64u8)
            .filter(move |i| self.0 & (1 << i) != 0)
            .map(PathIndex)
    }
}

/// `best-path`: how eligible paths of the same vector cost are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BestPath {
    /// `vector` (default): vector cost only.
    Vector,
    /// `average-latency`: lowest smoothed latency, with the 10 % band.
    AverageLatency,
    /// `mos`: highest smoothed MOS, with the 10 % band.
    Mos,
}

/// `lb-strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LbStrategy {
    /// `hunt` (default): the lowest cost, then the best-path band; ties by session hash.
    Hunt,
    /// `proportional`: every path in the best-path band, weighted by 1/(1 + cost), picked
    /// by session hash.
    Proportional,
}

/// `session-resiliency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionResiliency {
    /// `none` (default): a session never moves.
    None,
    /// `failover`: move off a failed or violating path, never back.
    Failover,
    /// `revertible-failover`: as failover, and back once the preferred path has been
    /// usable for a full hold-down.
    RevertibleFailover,
    /// `packet-duplication`: every packet on the two best distinct paths.
    PacketDuplication,
}

/// A `vector` entry's weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VectorPriority {
    /// `priority` 0-999999: added to the adjacency cost.
    Priority(u32),
    /// `never`: paths with this label are never used by the policy.
    Never,
}

/// A `service-policy`, resolved for the data path (fixed size, `Copy`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// `path-quality-filter`: apply the four limits below.
    pub path_quality_filter: bool,
    /// `max-latency`, ms one-way.
    pub max_latency_ms: u32,
    /// `max-jitter`, ms.
    pub max_jitter_ms: u32,
    /// `max-loss`, percent.
    pub max_loss_percent: f64,
    /// `min-mos`; `None` = disabled.
    pub min_mos: Option<f64>,
    /// `best-effort`: with no compliant path, use any path in service (else drop).
    pub best_effort: bool,
    /// `best-path`.
    pub best_path: BestPath,
    /// `lb-strategy`.
    pub lb_strategy: LbStrategy,
    /// `session-resiliency`.
    pub session_resiliency: SessionResiliency,
    /// `vector`: priorities of the path labels.
    pub vectors: VectorTable,
}

/// A policy's `vector` entries: up to [`MAX_VECTORS`] labels with their priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VectorTable {
    entries: [(VectorId, VectorPriority); MAX_VECTORS],
    count: u8,
}

impl Default for VectorTable {
    fn default() -> Self {
        VectorTable {
            entries: [(VectorId(0), VectorPriority::Priority(0)); MAX_VECTORS],
            count: 0,
        }
    }
}

impl VectorTable {
    /// Adds an entry; `None` when [`MAX_VECTORS`] are already set. A later entry for the
    /// same label replaces the earlier one.
    pub fn set(&mut self, id: VectorId, p: VectorPriority) -> Option<()> {
        let n = usize::from(self.count);
        if let Some(e) = self.entries[..n].iter_mut().find(|e| e.0 == id) {
            e.1 = p;
            return Some(());
        }
        *self.entries.get_mut(n)? = (id, p);
        self.count += 1;
        Some(())
    }

    /// The priority of a label: listed, or 0 when the label (or the path) has none.
    pub fn priority(&self, v: Option<VectorId>) -> VectorPriority {
        let n = usize::from(self.count);
        v.and_then(|v| self.entries[..n].iter().find(|e| e.0 == v))
            .map_or(VectorPriority::Priority(0), |e| e.1)
    }
}

impl Default for Policy {
    /// SSR's defaults: filter off, 250 ms, 100 ms, 0.5 %, no min MOS, best effort,
    /// best-path vector, hunt, resiliency none, no vectors.
    fn default() -> Self {
        Policy {
            path_quality_filter: false,
            max_latency_ms: 250,
            max_jitter_ms: 100,
            max_loss_percent: 0.5,
            min_mos: None,
            best_effort: true,
            best_path: BestPath::Vector,
            lb_strategy: LbStrategy::Hunt,
            session_resiliency: SessionResiliency::None,
            vectors: VectorTable::default(),
        }
    }
}

impl Policy {
    /// Adds a `vector` entry; `None` when [`MAX_VECTORS`] are already set. A later entry
    /// for the same label replaces the earlier one.
    pub fn set_vector(&mut self, id: VectorId, p: VectorPriority) -> Option<()> {
        self.vectors.set(id, p)
    }

    /// The priority of a label: listed, or 0 when the label (or the path) has none.
    pub fn vector_priority(&self, v: Option<VectorId>) -> VectorPriority {
        self.vectors.priority(v)
    }

    /// Do `m` meet the four limits? (Regardless of `path-quality-filter`.)
    pub fn complies(&self, m: &Metrics) -> bool {
        m.latency_ms <= f64::from(self.max_latency_ms)
            && m.jitter_ms <= f64::from(self.max_jitter_ms)
            && m.loss_percent <= self.max_loss_percent
            && self.min_mos.map_or(true, |min| m.mos >= min)
    }
}

/// Why a new session gets no path. Each is a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoPath {
    /// No path is in service (or all are `never` for the policy).
    NoneInService,
    /// Paths are in service but none meets the SLA and `best-effort` is false:
    /// `svr_sla_drop_total`.
    SlaDrop,
}

impl NoPath {
    /// Number of reasons.
    pub const COUNT: usize = 2;

    /// The counter index.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Counter name.
    pub fn name(self) -> &'static str {
        match self {
            NoPath::NoneInService => "no-path-in-service",
            NoPath::SlaDrop => "sla-drop",
        }
    }
}

/// The path for a new session with `uuid` (docs/multipath.md §4):
///
/// 1. candidates: paths in service whose vector is not `never`;
/// 2. if `path-quality-filter`, keep those whose smoothed metrics meet the SLA; if none
///    does, all candidates when `best-effort`, else [`NoPath::SlaDrop`];
/// 3. `lb-strategy` over vector cost (adjacency `cost` + `vector` priority) and the
///    `best-path` band, ties broken by a hash of the session UUID.
pub fn select(
    snapshot: &PathSnapshot,
    policy: &Policy,
    uuid: &[u8; 16],
) -> Result<PathIndex, NoPath> {
    choose(
        snapshot,
        policy,
        uuid,
        PathSet::ALL,
        snapshot.compliant(policy),
    )
}

/// [`select`] restricted to the paths of `allowed` (the worker: the inner family's paths
/// first; the rest of the paths after a pair's wayports ran out). Same algorithm, same
/// errors, no allocation.
pub fn select_in(
    snapshot: &PathSnapshot,
    policy: &Policy,
    uuid: &[u8; 16],
    allowed: PathSet,
) -> Result<PathIndex, NoPath> {
    choose(snapshot, policy, uuid, allowed, snapshot.compliant(policy))
}

/// The two best distinct paths for `packet-duplication`: the [`select`]ed one, and the
/// best of the rest, preferring one that leaves by another local WAN interface. The
/// second is `None` when there is no other usable path.
pub fn select_pair(
    snapshot: &PathSnapshot,
    policy: &Policy,
    uuid: &[u8; 16],
) -> Result<(PathIndex, Option<PathIndex>), NoPath> {
    let compliant = snapshot.compliant(policy);
    let first = choose(snapshot, policy, uuid, PathSet::ALL, compliant)?;
    Ok((
        first,
        second(snapshot, policy, uuid, PathSet::ALL, compliant, first),
    ))
}

/// The second path of [`select_pair`] for a session whose first path is `first`, among the
/// paths of `allowed` only (the worker: the first path's outer family, so that the copy is an
/// address and port rewrite; and the paths whose wayports it has not found exhausted).
/// `None` when no other allowed path is eligible. Same algorithm as [`select_pair`]'s second
/// path, no allocation.
pub fn select_second_in(
    snapshot: &PathSnapshot,
    policy: &Policy,
    uuid: &[u8; 16],
    allowed: PathSet,
    first: PathIndex,
) -> Option<PathIndex> {
    second(
        snapshot,
        policy,
        uuid,
        allowed,
        snapshot.compliant(policy),
        first,
    )
}

/// The best path other than `first` among `allowed`, preferring another local link.
pub(crate) fn second(
    snapshot: &PathSnapshot,
    policy: &Policy,
    uuid: &[u8; 16],
    allowed: PathSet,
    compliant: PathSet,
    first: PathIndex,
) -> Option<PathIndex> {
    let link = snapshot.get(first).map(|p| p.local_link);
    let other_link = snapshot.set_where(|p| Some(p.local_link) != link);
    let rest = allowed.without(first);
    choose(snapshot, policy, uuid, rest.and(other_link), compliant)
        .or_else(|_| choose(snapshot, policy, uuid, rest, compliant))
        .ok()
}

/// The selection algorithm over `allowed` paths, with `compliant` the paths that meet the
/// SLA (from metrics for new sessions, through the hold-down for moves).
pub(crate) fn choose(
    snapshot: &PathSnapshot,
    policy: &Policy,
    uuid: &[u8; 16],
    allowed: PathSet,
    compliant: PathSet,
) -> Result<PathIndex, NoPath> {
    // 1. Candidates.
    let mut cands = PathSet::EMPTY;
    for (i, p) in snapshot.paths().iter().enumerate() {
        let i = PathIndex(i as u8);
        if allowed.contains(i)
            && p.in_service
            && policy.vector_priority(p.vector) != VectorPriority::Never
        {
            cands.insert(i);
        }
    }
    if cands.is_empty() {
        return Err(NoPath::NoneInService);
    }
    // 2. SLA filter, best-effort fallback.
    let eligible = if policy.path_quality_filter {
        let ok = cands.and(compliant);
        match (ok.is_empty(), policy.best_effort) {
            (false, _) => ok,
            (true, true) => cands,
            (true, false) => return Err(NoPath::SlaDrop),
        }
    } else {
        cands
    };
    let cost = |i: PathIndex| -> u64 {
        let p = snapshot.get(i).map_or(&PathEntry::UNUSED, |p| p);
        let prio = match policy.vector_priority(p.vector) {
            VectorPriority::Priority(n) => u64::from(n),
            VectorPriority::Never => u64::MAX / 4,
        };
        u64::from(p.cost) + prio
    };
    let hash = uuid_hash(uuid);
    // 3. Load balancing.
    let pick = match policy.lb_strategy {
        LbStrategy::Hunt => {
            let min = eligible.iter().map(cost).min().unwrap_or(0);
            let mut cheapest = PathSet::EMPTY;
            for i in eligible.iter().filter(|&i| cost(i) == min) {
                cheapest.insert(i);
            }
            let band = best_path_band(snapshot, policy, cheapest);
            nth(band, (hash % u64::from(band.len().max(1))) as u32)
        }
        LbStrategy::Proportional => {
            let band = best_path_band(snapshot, policy, eligible);
            let weight = |i| ((1u64 << 32) / (1 + cost(i))).max(1);
            let total: u64 = band.iter().map(weight).sum();
            let mut r = hash % total.max(1);
            band.iter().find(|&i| {
                let w = weight(i);
                if r < w {
                    true
                } else {
                    r -= w;
                    false
                }
            })
        }
    };
    // `eligible` is not empty, so neither is the band; the fallback is never taken.
    pick.or_else(|| eligible.iter().next())
        .ok_or(NoPath::NoneInService)
}

/// The paths of `set` within 10 % of the best by `best-path` (all of them for `vector`).
/// Paths without metrics count as worst; if none has metrics, all are kept.
fn best_path_band(snapshot: &PathSnapshot, policy: &Policy, set: PathSet) -> PathSet {
    let metric = |i: PathIndex| snapshot.get(i).and_then(|p| p.metrics);
    let keep: fn(f64, f64) -> bool;
    let value: fn(&Metrics) -> f64;
    let best = match policy.best_path {
        BestPath::Vector => return set,
        BestPath::AverageLatency => {
            value = |m| m.latency_ms;
            keep = |v, best| v <= best * (1.0 + BEST_PATH_BAND);
            set.iter()
                .filter_map(metric)
                .map(|m| value(&m))
                .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.min(v))))
        }
        BestPath::Mos => {
            value = |m| m.mos;
            keep = |v, best| v >= best * (1.0 - BEST_PATH_BAND);
            set.iter()
                .filter_map(metric)
                .map(|m| value(&m))
                .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
        }
    };
    let Some(best) = best else {
        return set;
    };
    let mut band = PathSet::EMPTY;
    for i in set.iter() {
        if metric(i).is_some_and(|m| keep(value(&m), best)) {
            band.insert(i);
        }
    }
    band
}

/// The `n`th member of `set`, lowest index first.
fn nth(set: PathSet, n: u32) -> Option<PathIndex> {
    set.iter().nth(n as usize)
}

/// The session hash: FNV-1a over the 16 UUID bytes, then the splitmix64 finalizer. Both
/// routers compute the same value for the same session.
pub fn uuid_hash(uuid: &[u8; 16]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in uuid {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
pub(crate) mod test {
    use super::*;

    pub(crate) fn path(latency: f64, loss: f64) -> PathEntry {
        PathEntry {
            in_service: true,
            metrics: Some(Metrics::new(latency, 1.0, loss)),
            vector: None,
            cost: 0,
            local_link: 0,
        }
    }

    pub(crate) fn uuid(n: u32) -> [u8; 16] {
        let mut u = [0u8; 16];
        u[12..].copy_from_slice(&n.to_be_bytes());
        u
    }

    fn counts(snap: &PathSnapshot, policy: &Policy) -> [u32; 4] {
        let mut c = [0u32; 4];
        for n in 0..4000 {
            let p = select(snap, policy, &uuid(n)).unwrap();
            c[usize::from(p.0)] += 1;
        }
        c
    }

    #[test]
    fn out_of_service_and_never_paths_are_not_candidates() {
        let mut a = path(10.0, 0.0);
        a.in_service = false;
        let mut b = path(10.0, 0.0);
        b.vector = Some(VectorId(1));
        let c = path(50.0, 0.0);
        let snap = PathSnapshot::new(&[a, b, c]).unwrap();
        let mut pol = Policy::default();
        pol.set_vector(VectorId(1), VectorPriority::Never).unwrap();
        assert_eq!(select(&snap, &pol, &uuid(1)), Ok(PathIndex(2)));
        let snap = PathSnapshot::new(&[a, b]).unwrap();
        assert_eq!(select(&snap, &pol, &uuid(1)), Err(NoPath::NoneInService));
        assert_eq!(
            select(&PathSnapshot::default(), &pol, &uuid(1)),
            Err(NoPath::NoneInService)
        );
    }

    #[test]
    fn sla_filter_best_effort_and_drop() {
        // Voice: max-loss 1 %, max-latency 150 ms. Link 1 has 10 % loss.
        let snap = PathSnapshot::new(&[path(20.0, 10.0), path(40.0, 0.0)]).unwrap();
        let mut voice = Policy {
            path_quality_filter: true,
            max_loss_percent: 1.0,
            max_latency_ms: 150,
            ..Policy::default()
        };
        for n in 0..50 {
            assert_eq!(select(&snap, &voice, &uuid(n)), Ok(PathIndex(1)));
        }
        // Without the filter the limits are ignored: both are equivalent (cost 0).
        let off = Policy {
            path_quality_filter: false,
            ..voice
        };
        let c = counts(&snap, &off);
        assert!(c[0] > 1500 && c[1] > 1500, "{c:?}");
        // Each limit on its own.
        let base = PathSnapshot::new(&[path(200.0, 0.0)]).unwrap();
        let strict = Policy {
            best_effort: false,
            ..voice
        };
        assert_eq!(select(&base, &strict, &uuid(0)), Err(NoPath::SlaDrop));
        let mut jittery = path(10.0, 0.0);
        jittery.metrics = Some(Metrics::new(10.0, 31.0, 0.0));
        let j = PathSnapshot::new(&[jittery]).unwrap();
        let max_j = Policy {
            max_jitter_ms: 30,
            ..strict
        };
        assert_eq!(select(&j, &max_j, &uuid(0)), Err(NoPath::SlaDrop));
        let mos = Policy {
            min_mos: Some(4.39),
            ..strict
        };
        let m = PathSnapshot::new(&[path(20.0, 0.0), path(30.0, 0.0)]).unwrap();
        // MOS(20, 1, 0) = 4.3965, MOS(30, 1, 0) = 4.3927.
        assert_eq!(select(&m, &mos, &uuid(0)), Ok(PathIndex(0)));
        let mos_hi = Policy {
            min_mos: Some(4.41),
            ..strict
        };
        assert_eq!(select(&m, &mos_hi, &uuid(0)), Err(NoPath::SlaDrop));
        // best-effort: all up paths when none complies.
        voice.best_effort = true;
        assert_eq!(select(&base, &voice, &uuid(0)), Ok(PathIndex(0)));
        // A path without metrics does not meet the SLA.
        let mut fresh = path(0.0, 0.0);
        fresh.metrics = None;
        let f = PathSnapshot::new(&[fresh, path(100.0, 0.0)]).unwrap();
        assert_eq!(select(&f, &voice, &uuid(3)), Ok(PathIndex(1)));
        assert_eq!(
            select(&PathSnapshot::new(&[fresh]).unwrap(), &strict, &uuid(3)),
            Err(NoPath::SlaDrop)
        );
    }

    #[test]
    fn vector_priority_and_cost_order_paths() {
        // Bulk: vector prefers link 1 (lower priority number = lower cost = preferred).
        let mut l1 = path(50.0, 10.0);
        l1.vector = Some(VectorId(1));
        let mut l2 = path(10.0, 0.0);
        l2.vector = Some(VectorId(2));
        let snap = PathSnapshot::new(&[l1, l2]).unwrap();
        let mut bulk = Policy::default();
        bulk.set_vector(VectorId(1), VectorPriority::Priority(10))
            .unwrap();
        bulk.set_vector(VectorId(2), VectorPriority::Priority(100))
            .unwrap();
        assert_eq!(counts(&snap, &bulk), [4000, 0, 0, 0]);
        // Adjacency cost adds to it.
        let mut l1c = l1;
        l1c.cost = 91;
        let snap = PathSnapshot::new(&[l1c, l2]).unwrap();
        assert_eq!(counts(&snap, &bulk), [0, 4000, 0, 0]);
        // A later entry for the same label replaces the earlier one.
        bulk.set_vector(VectorId(2), VectorPriority::Priority(500))
            .unwrap();
        assert_eq!(counts(&snap, &bulk), [4000, 0, 0, 0]);
        // An unlisted label costs 0.
        assert_eq!(
            bulk.vector_priority(Some(VectorId(9))),
            VectorPriority::Priority(0)
        );
    }

    #[test]
    fn best_path_latency_and_mos_with_the_ten_percent_band() {
        let snap = PathSnapshot::new(&[
            path(100.0, 0.0),
            path(108.0, 0.0),
            path(111.0, 0.0),
            path(30.0, 0.0),
        ])
        .unwrap();
        let lat = Policy {
            best_path: BestPath::AverageLatency,
            ..Policy::default()
        };
        assert_eq!(counts(&snap, &lat), [0, 0, 0, 4000]);
        let snap = PathSnapshot::new(&[
            path(100.0, 0.0),
            path(108.0, 0.0),
            path(111.0, 0.0),
            path(300.0, 0.0),
        ])
        .unwrap();
        let c = counts(&snap, &lat);
        assert_eq!((c[2], c[3]), (0, 0));
        assert!(c[0] > 1800 && c[1] > 1800, "{c:?}");
        // MOS: 4.40 vs 2.93 (5 % loss at 250 ms) vs 4.2.
        let mut bad = path(250.0, 5.0);
        bad.metrics = Some(Metrics::new(250.0, 50.0, 5.0));
        let snap = PathSnapshot::new(&[bad, path(0.0, 0.0), path(75.0, 1.0)]).unwrap();
        let mos = Policy {
            best_path: BestPath::Mos,
            ..Policy::default()
        };
        let c = counts(&snap, &mos);
        assert_eq!(c[0], 0);
        assert!(c[1] > 1500 && c[2] > 1500, "{c:?}");
        // Vector: all the same cost are equivalent.
        let c = counts(&snap, &Policy::default());
        assert!(c[0] > 1000 && c[1] > 1000 && c[2] > 1000, "{c:?}");
    }

    #[test]
    fn proportional_weights_by_inverse_cost() {
        let mut a = path(10.0, 0.0);
        a.cost = 0;
        let mut b = path(10.0, 0.0);
        b.cost = 2;
        let snap = PathSnapshot::new(&[a, b]).unwrap();
        let prop = Policy {
            lb_strategy: LbStrategy::Proportional,
            ..Policy::default()
        };
        // Weights 1 : 1/3 -> 75 % : 25 %.
        let c = counts(&snap, &prop);
        assert!((2800..3200).contains(&c[0]), "{c:?}");
        // Hunt takes only the cheapest.
        assert_eq!(counts(&snap, &Policy::default()), [4000, 0, 0, 0]);
    }

    #[test]
    fn the_same_session_gets_the_same_path() {
        let snap = PathSnapshot::new(&[path(10.0, 0.0), path(10.0, 0.0), path(10.0, 0.0)]).unwrap();
        for n in 0..100 {
            let a = select(&snap, &Policy::default(), &uuid(n));
            assert_eq!(a, select(&snap, &Policy::default(), &uuid(n)));
        }
        // The hash is pinned (both routers must agree).
        assert_eq!(uuid_hash(&[0; 16]), 0x6875_2350_ae1d_483f);
    }

    #[test]
    fn pair_prefers_another_local_link() {
        let mut a = path(10.0, 0.0);
        a.local_link = 0;
        let mut b = path(11.0, 0.0);
        b.local_link = 0;
        let mut c = path(50.0, 0.0);
        c.local_link = 1;
        let snap = PathSnapshot::new(&[a, b, c]).unwrap();
        let lat = Policy {
            best_path: BestPath::AverageLatency,
            session_resiliency: SessionResiliency::PacketDuplication,
            ..Policy::default()
        };
        for n in 0..100 {
            let (p, s) = select_pair(&snap, &lat, &uuid(n)).unwrap();
            assert!(p == PathIndex(0) || p == PathIndex(1));
            assert_eq!(s, Some(PathIndex(2)));
        }
        let one = PathSnapshot::new(&[a]).unwrap();
        assert_eq!(select_pair(&one, &lat, &uuid(0)), Ok((PathIndex(0), None)));
        let two = PathSnapshot::new(&[a, b]).unwrap();
        let (p, s) = select_pair(&two, &lat, &uuid(0)).unwrap();
        assert_ne!(Some(p), s);
        assert!(s.is_some());
    }

    #[test]
    fn second_path_within_an_allowed_set() {
        let mut a = path(10.0, 0.0);
        a.local_link = 0;
        let mut b = path(11.0, 0.0);
        b.local_link = 0;
        let mut c = path(50.0, 0.0);
        c.local_link = 1;
        let snap = PathSnapshot::new(&[a, b, c]).unwrap();
        let p = Policy::default();
        let all = PathSet::ALL;
        // As select_pair: another local link first.
        assert_eq!(
            select_second_in(&snap, &p, &uuid(1), all, PathIndex(0)),
            Some(PathIndex(2))
        );
        // Without path 2 (another family, say): the same link's other path.
        let no_c = all.without(PathIndex(2));
        assert_eq!(
            select_second_in(&snap, &p, &uuid(1), no_c, PathIndex(0)),
            Some(PathIndex(1))
        );
        // Nothing but the first: no second path.
        assert_eq!(
            select_second_in(
                &snap,
                &p,
                &uuid(1),
                no_c.without(PathIndex(1)),
                PathIndex(0)
            ),
            None
        );
        // A path out of service is never the second.
        let mut down = snap;
        down.get_mut(PathIndex(1)).unwrap().in_service = false;
        assert_eq!(
            select_second_in(&down, &p, &uuid(1), no_c, PathIndex(0)),
            None
        );
    }

    #[test]
    fn labels_intern() {
        let mut l = VectorLabels::default();
        let a = l.id("link1").unwrap();
        let b = l.id("link2").unwrap();
        assert_ne!(a, b);
        assert_eq!(l.id("link1"), Some(a));
        assert_eq!(l.name(b), Some("link2"));
        assert_eq!(l.name(VectorId(9)), None);
    }

    #[test]
    fn snapshot_limits() {
        let mut s = PathSnapshot::default();
        for _ in 0..MAX_PATHS {
            assert!(s.push(path(1.0, 0.0)).is_some());
        }
        assert!(s.push(path(1.0, 0.0)).is_none());
        assert!(PathSnapshot::new(&[path(1.0, 0.0); MAX_PATHS + 1]).is_none());
        let mut p = Policy::default();
        for v in 0..MAX_VECTORS as u16 {
            assert!(p
                .set_vector(VectorId(v), VectorPriority::Priority(1))
                .is_some());
        }
        assert!(p.set_vector(VectorId(99), VectorPriority::Never).is_none());
        assert!(s.get(PathIndex(200)).is_none());
    }
}
