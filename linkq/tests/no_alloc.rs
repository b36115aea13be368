//! `select`, `select_pair` and `decide` run on workers per new session: they must not
//! allocate. A counting global allocator checks it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use svr_linkq::*;

struct Counting;

thread_local! {
    /// Allocations made by this thread (the test harness's own threads are not counted).
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn select_does_not_allocate() {
    let mut snap = PathSnapshot::default();
    for i in 0..MAX_PATHS {
        snap.push(PathEntry {
            in_service: i % 5 != 0,
            metrics: Some(Metrics::new(10.0 + i as f64, 2.0, (i % 3) as f64)),
            vector: Some(VectorId((i % 4) as u16)),
            cost: (i % 7) as u32,
            local_link: (i % 2) as u8,
        })
        .unwrap();
    }
    let mut policies = Vec::new();
    for (bp, lb) in [
        (BestPath::Vector, LbStrategy::Hunt),
        (BestPath::AverageLatency, LbStrategy::Proportional),
        (BestPath::Mos, LbStrategy::Hunt),
    ] {
        let mut p = Policy {
            path_quality_filter: true,
            max_loss_percent: 1.0,
            best_path: bp,
            lb_strategy: lb,
            session_resiliency: SessionResiliency::PacketDuplication,
            ..Policy::default()
        };
        p.set_vector(VectorId(1), VectorPriority::Priority(5))
            .unwrap();
        p.set_vector(VectorId(3), VectorPriority::Never).unwrap();
        policies.push(p);
    }
    let session = SessionPaths {
        current: PathIndex(0),
        preferred: PathIndex(0),
        duplicate: None,
    };
    let before = allocs();
    let mut sum = 0u64;
    for p in &policies {
        for n in 0..1000u32 {
            let mut uuid = [0u8; 16];
            uuid[..4].copy_from_slice(&n.to_le_bytes());
            sum += u64::from(select(&snap, p, &uuid).map_or(0, |i| i.0));
            sum += u64::from(select_pair(&snap, p, &uuid).map_or(0, |(i, _)| i.0));
            if let Decision::Duplicate { primary, .. } =
                decide(p, &snap, snap.compliant(p), &session, &uuid)
            {
                sum += u64::from(primary.0);
            }
        }
    }
    let after = allocs();
    assert!(sum > 0);
    assert_eq!(after - before, 0, "selection allocated");
}
