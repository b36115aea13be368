//! Real-EAL tests: one EAL per process (DPDK can be initialised once), so everything runs
//! inside one `#[test]`, step by step, with virtual devices only (`--no-pci`).

use dpdk_ffi::{
    lcore_id, tsc, version, Eal, EalError, LaunchError, Mbuf, MbufBurst, Mempool, MempoolError,
    NoHeadroom, NoTailroom, Port, PortConf, PortError, ProbeError, Ring, RingError, RingMode,
    TooShort, TxBuffer, DEFAULT_DATA_ROOM, SOCKET_ANY,
};

/// `RTE_PKTMBUF_HEADROOM` of the Debian build.
const HEADROOM: usize = 128;

fn eal_args() -> Vec<String> {
    let two_cores = std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
    let prefix = format!("dpdkffi-test-{}", std::process::id());
    [
        "dpdk-ffi-test",
        "-l",
        if two_cores { "0,1" } else { "0" },
        // DPDK 22.11 rejects `--no-huge` with `--in-memory` ("--legacy-mem is not compatible
        // with --in-memory": --no-huge implies legacy memory there); `--no-shconf` gives the
        // same "no files, nothing shared" effect.
        "--no-huge",
        "--no-shconf",
        "--no-pci",
        "--no-telemetry",
        "-m",
        "128",
        "--file-prefix",
        &prefix,
        "--vdev",
        "net_ring0",
        "--log-level",
        "*:warning",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A frame whose bytes depend on `i`: 14-byte Ethernet header (broadcast dst, local src,
/// EtherType 0x88b5 "local experimental"), then `i` and a counting payload, 64 bytes in all.
fn frame(i: u8) -> [u8; 64] {
    let mut f = [0u8; 64];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, i]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    for (k, b) in f[14..].iter_mut().enumerate() {
        *b = i.wrapping_add(k as u8);
    }
    f
}

fn mbuf_with(pool: &Mempool, bytes: &[u8]) -> Mbuf {
    let mut m = pool.alloc().expect("pool has room");
    m.append(bytes.len())
        .expect("tailroom")
        .copy_from_slice(bytes);
    m
}

fn tagged(pool: &Mempool, tag: u32) -> Mbuf {
    let mut m = mbuf_with(pool, &tag.to_be_bytes());
    m.set_tag(tag);
    m
}

#[test]
fn eal_end_to_end() {
    assert!(version().starts_with("DPDK "), "version {:?}", version());
    assert_eq!(lcore_id(), u32::MAX, "not an EAL thread before init");
    // Before init, constructors refuse instead of calling into an uninitialised DPDK.
    assert!(matches!(
        Mempool::pktmbuf("early", 63, 0, DEFAULT_DATA_ROOM, SOCKET_ANY),
        Err(MempoolError::EalNotInitialised(_))
    ));
    assert!(matches!(
        Ring::create("early", 64, RingMode::default()),
        Err(RingError::EalNotInitialised(_))
    ));
    assert!(matches!(
        Port::by_name("net_ring0"),
        Err(PortError::EalNotInitialised)
    ));

    let eal = Eal::init(&eal_args()).expect("EAL init");
    assert!(matches!(
        Eal::init(&eal_args()),
        Err(EalError::AlreadyInitialised)
    ));
    assert_eq!(lcore_id(), eal.main_lcore());
    assert!(eal.is_lcore_enabled(eal.main_lcore()));
    assert!(!eal.is_lcore_enabled(100_000));
    assert!(eal.tsc_hz() > 0);
    let t0 = tsc();
    assert!(tsc() >= t0);

    let pool = Mempool::pktmbuf("t_pool", 511, 32, DEFAULT_DATA_ROOM, SOCKET_ANY).expect("mempool");
    assert_eq!(pool.capacity(), 511);
    assert_eq!(pool.available(), 511);
    assert!(matches!(
        Mempool::pktmbuf("t_pool", 63, 0, DEFAULT_DATA_ROOM, SOCKET_ANY),
        Err(MempoolError::AlreadyExists { .. })
    ));

    mbuf_editing(&pool);
    pool_exhaustion();
    net_ring_loopback(&pool);
    tx_buffer_unsent_tail(&pool);
    ring_across_threads(&pool);
    launch_on_worker(&eal, &pool);
    probing(&eal);

    assert_eq!(
        pool.available(),
        pool.capacity(),
        "every mbuf is back in the pool"
    );
    assert_eq!(pool.in_use(), 0);
    drop(pool);
    drop(eal); // rte_eal_cleanup
}

fn mbuf_editing(pool: &Mempool) {
    let mut m = pool.alloc().expect("alloc");
    assert_eq!(m.len(), 0);
    assert!(m.is_empty());
    assert_eq!(m.headroom(), HEADROOM);
    assert_eq!(m.tailroom(), usize::from(DEFAULT_DATA_ROOM) - HEADROOM);

    m.append(4).expect("append").copy_from_slice(&[1, 2, 3, 4]);
    assert_eq!(m.data(), &[1, 2, 3, 4]);
    m.prepend(2).expect("prepend").copy_from_slice(&[9, 8]);
    assert_eq!(m.data(), &[9, 8, 1, 2, 3, 4]);
    assert_eq!(m.headroom(), HEADROOM - 2);
    assert_eq!(m.pkt_len(), 6);
    m.adj(1).expect("adj");
    assert_eq!(m.data(), &[8, 1, 2, 3, 4]);
    m.trim(2).expect("trim");
    assert_eq!(m.data(), &[8, 1, 2]);
    m.data_mut()[0] = 7;
    assert_eq!(m.data(), &[7, 1, 2]);
    assert!(m.is_contiguous());
    assert_eq!(m.segments(), 1);

    // Errors leave the mbuf unchanged.
    let head = m.headroom();
    let tail = m.tailroom();
    assert_eq!(m.prepend(head + 1).map(|_| ()), Err(NoHeadroom));
    assert_eq!(m.append(tail + 1).map(|_| ()), Err(NoTailroom));
    assert_eq!(m.adj(4), Err(TooShort));
    assert_eq!(m.trim(4), Err(TooShort));
    assert_eq!(m.data(), &[7, 1, 2]);
    // Exactly the available room works.
    assert_eq!(m.prepend(head).expect("all headroom").len(), head);
    assert_eq!(m.headroom(), 0);
    m.adj(head).expect("undo");
    assert_eq!(m.data(), &[7, 1, 2]);

    m.set_tag(0xdead_beef);
    assert_eq!(m.tag(), 0xdead_beef);
    m.set_port(7);
    assert_eq!(m.port(), 7);
    m.prefetch();

    // A copy is a packet of its own: same bytes, port; writing one leaves the other.
    let mut c = m.try_copy().expect("copy");
    assert_eq!(c.data(), &[7, 1, 2]);
    assert_eq!(c.port(), 7);
    c.data_mut()[0] = 5;
    assert_eq!((m.data()[0], c.data()[0]), (7, 5));
    assert_eq!(pool.in_use(), 2);
    drop(c);
    assert_eq!(pool.in_use(), 1);

    // Raw round trip keeps ownership single.
    let raw = m.into_raw();
    // SAFETY: `raw` came from `into_raw` of an owned, direct mbuf.
    let m = unsafe { Mbuf::from_raw(raw) };
    assert_eq!(m.tag(), 0xdead_beef);
    drop(m);
    assert_eq!(pool.in_use(), 0);
}

fn pool_exhaustion() {
    let small =
        Mempool::pktmbuf("t_small", 8, 0, DEFAULT_DATA_ROOM, SOCKET_ANY).expect("small pool");
    let held: Vec<Mbuf> = (0..8).map(|_| small.alloc().expect("room")).collect();
    assert_eq!(small.available(), 0);
    assert!(small.alloc().is_none(), "exhausted pool returns None");
    assert!(
        held[0].try_copy().is_none(),
        "no copy from an exhausted pool"
    );
    drop(held);
    assert_eq!(small.available(), 8);
    assert!(small.alloc().is_some());
    assert_eq!(small.available(), 8);
}

fn net_ring_loopback(pool: &Mempool) {
    let port = Port::by_name("net_ring0").expect("net_ring0 from --vdev");
    let same = Port::by_name("net_ring0").expect("second handle");
    assert_eq!(same.id(), port.id());
    assert!(matches!(
        Port::by_name("net_nothing9"),
        Err(PortError::NotFound(_))
    ));
    assert!(matches!(Port::from_id(31), Err(PortError::NoSuchPort(31))));
    assert_eq!(port.name().expect("name"), "net_ring0");
    let info = port.info().expect("info");
    assert_eq!(info.driver_name, "net_ring");
    assert_eq!(port.driver_name(), "net_ring");
    let mac = port.mac_addr().expect("mac");
    assert_eq!(mac.len(), 6);

    let conf = |rx_queues| PortConf {
        rx_queues,
        tx_queues: 1,
        rx_desc: 256,
        tx_desc: 256,
        mempool: pool,
        rss: true,
        mtu: None,
    };
    let too_many = info.max_rx_queues + 1;
    match port.configure(&conf(too_many)) {
        Err(e @ PortError::TooManyQueues { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&too_many.to_string()), "{text}");
        }
        other => panic!("expected TooManyQueues, got {other:?}"),
    }
    port.configure(&conf(1)).expect("configure");
    port.start().expect("start");
    port.promiscuous(true).expect("promiscuous");
    let link = port.link().expect("link");
    assert!(link.up, "{link:?}");

    // TX 32 distinct frames; the ring PMD loops them back to RX.
    let mut tx = TxBuffer::new();
    for i in 0..32u8 {
        tx.push(mbuf_with(pool, &frame(i))).expect("room for 32");
    }
    let extra = tx.push(mbuf_with(pool, &frame(99))).expect_err("full");
    assert_eq!(extra.data(), &frame(99));
    drop(extra);
    assert!(tx.is_full());
    assert_eq!(port.tx_burst(1, &mut tx), 0, "queue 1 is not configured");
    assert_eq!(tx.len(), 32);
    assert_eq!(port.tx_burst(0, &mut tx), 32);
    assert!(tx.is_empty());

    let mut rx = MbufBurst::new();
    assert_eq!(port.rx_burst(1, &mut rx), 0, "queue 1 is not configured");
    let mut got = 0;
    for _ in 0..100 {
        got += port.rx_burst(0, &mut rx);
        if got >= 32 {
            break;
        }
    }
    assert_eq!(got, 32);
    assert_eq!(rx.len(), 32);
    assert_eq!(port.rx_burst(0, &mut rx), 0, "burst is full");
    for (i, m) in rx.drain().enumerate() {
        assert_eq!(m.data(), &frame(i as u8), "frame {i}");
        // net_ring passes mbufs through untouched, so `port` is not set on RX here.
    }
    assert!(rx.is_empty());

    let stats = port.stats().expect("stats");
    assert_eq!(stats.opackets, 32);
    assert_eq!(stats.ipackets, 32);

    // Mbufs left in a burst are freed by its Drop.
    tx.push(mbuf_with(pool, &frame(1))).expect("room");
    port.tx_burst(0, &mut tx);
    let mut rx2 = MbufBurst::<4>::empty();
    assert_eq!(port.rx_burst(0, &mut rx2), 1);
    drop(rx2);

    port.close().expect("close");
    assert_eq!(same.tx_burst(0, &mut tx), 0, "closed port: bursts return 0");
    assert_eq!(pool.in_use(), 0, "loopback leaked mbufs");
}

fn tx_buffer_unsent_tail(pool: &Mempool) {
    let ring = Ring::create("t_small_ring", 4, RingMode::default()).expect("ring");
    assert_eq!(ring.capacity(), 4);

    let mut tx = TxBuffer::<8>::empty();
    for tag in 0..8 {
        tx.push(tagged(pool, tag)).expect("room");
    }
    assert_eq!(ring.enqueue_burst(&mut tx), 4, "ring takes 4");
    assert_eq!(tx.len(), 4, "unsent tail stays");
    let tail: Vec<u32> = tx.as_slice().iter().map(Mbuf::tag).collect();
    assert_eq!(tail, [4, 5, 6, 7]);
    assert_eq!(ring.enqueue_burst(&mut tx), 0, "ring full");
    assert_eq!(tx.len(), 4);

    let mut rx = MbufBurst::new();
    assert_eq!(ring.dequeue_burst(&mut rx), 4);
    let tags: Vec<u32> = rx.drain().map(|m| m.tag()).collect();
    assert_eq!(tags, [0, 1, 2, 3]);

    // Retry sends the tail, in order, after a push that compacts the buffer.
    tx.push(tagged(pool, 8)).expect("room after compaction");
    assert_eq!(ring.enqueue_burst(&mut tx), 4);
    assert_eq!(tx.len(), 1);
    assert_eq!(ring.dequeue().map(|m| m.tag()), Some(4));
    assert_eq!(ring.enqueue_burst(&mut tx), 1);
    assert_eq!(ring.count(), 4);

    // Ring full: the caller gives up on the tail and counts it.
    tx.push(tagged(pool, 100)).expect("room");
    tx.push(tagged(pool, 101)).expect("room");
    assert_eq!(ring.enqueue_burst(&mut tx), 0);
    assert_eq!(tx.drop_unsent(), 2);
    assert!(tx.is_empty());
    let single = tagged(pool, 102);
    let back = ring
        .enqueue(single)
        .expect_err("full ring gives the mbuf back");
    assert_eq!(back.tag(), 102);
    drop(back);

    // A partially drained burst keeps its order when refilled.
    assert_eq!(ring.dequeue_burst(&mut rx), 4);
    assert_eq!(rx.pop_front().map(|m| m.tag()), Some(5));
    ring.enqueue(tagged(pool, 9)).expect("room");
    assert_eq!(ring.dequeue_burst(&mut rx), 1);
    let tags: Vec<u32> = rx.as_slice().iter().map(Mbuf::tag).collect();
    assert_eq!(tags, [6, 7, 8, 9]);
    drop(rx);

    // Dropping a ring frees the mbufs still inside it.
    ring.enqueue(tagged(pool, 10)).expect("room");
    ring.enqueue(tagged(pool, 11)).expect("room");
    assert!(pool.in_use() >= 2);
    drop(ring);
    drop(tx);
    assert_eq!(pool.in_use(), 0);
}

fn ring_across_threads(pool: &Mempool) {
    const TOTAL: u32 = 2000;
    let ring = Ring::create(
        "t_xthread",
        64,
        RingMode {
            single_producer: true,
            single_consumer: true,
        },
    )
    .expect("ring");
    let ring = std::sync::Arc::new(ring);
    let consumer = std::sync::Arc::clone(&ring);
    let reader = std::thread::spawn(move || {
        let mut burst = MbufBurst::new();
        let mut next = 0u32;
        while next < TOTAL {
            if consumer.dequeue_burst(&mut burst) == 0 {
                std::thread::yield_now();
            }
            for m in burst.drain() {
                assert_eq!(m.tag(), next);
                assert_eq!(m.data(), &next.to_be_bytes());
                next += 1;
            }
        }
        next
    });

    // The pool (511) is smaller than TOTAL: mbufs must come back from the other thread.
    let mut tx = TxBuffer::new();
    let mut sent = 0u32;
    while sent < TOTAL {
        while sent < TOTAL && !tx.is_full() {
            let Some(mut m) = pool.alloc() else { break };
            m.append(4)
                .expect("tailroom")
                .copy_from_slice(&sent.to_be_bytes());
            m.set_tag(sent);
            tx.push(m).expect("not full");
            sent += 1;
        }
        if ring.enqueue_burst(&mut tx) == 0 {
            std::thread::yield_now();
        }
    }
    while !tx.is_empty() {
        if ring.enqueue_burst(&mut tx) == 0 {
            std::thread::yield_now();
        }
    }
    assert_eq!(reader.join().expect("reader thread"), TOTAL);
    assert_eq!(ring.count(), 0);
    drop(ring);
    assert_eq!(pool.in_use(), 0);
}

fn launch_on_worker(eal: &Eal, pool: &Mempool) {
    assert!(matches!(
        eal.launch(eal.main_lcore(), || 0),
        Err(LaunchError::NotAWorker(_))
    ));
    assert!(matches!(
        eal.launch(5000, || 0),
        Err(LaunchError::NotAWorker(5000))
    ));
    let workers = eal.worker_lcores();
    let Some(&worker) = workers.first() else {
        eprintln!("only one lcore: skipping launch checks");
        return;
    };
    assert_eq!(eal.lcore_count(), 1 + workers.len() as u32);

    // The closure owns an mbuf and a pool handle; both cross to the worker lcore.
    let m = tagged(pool, 41);
    let worker_pool = pool.clone();
    eal.launch(worker, move || {
        let extra = worker_pool.alloc().expect("alloc on worker");
        drop(extra);
        m.tag() as i32 + 1 + (lcore_id() as i32 - worker as i32)
    })
    .expect("launch");
    assert_eq!(eal.wait(worker), Ok(42));
    assert_eq!(
        eal.wait(worker),
        Ok(42),
        "waiting again returns the last value"
    );

    // A panic in the job is reported as -1, not an abort.
    eal.launch(worker, || panic!("job panics on purpose"))
        .expect("launch");
    assert_eq!(eal.wait(worker), Ok(-1));

    eal.launch(worker, || 7).expect("launch");
    eal.wait_all();
    assert_eq!(pool.in_use(), 0);
}

fn probing(eal: &Eal) {
    let err = eal
        .probe_device("net_af_packet9,iface=does-not-exist")
        .expect_err("no such interface");
    assert!(
        matches!(err, ProbeError::AttachFailed { ref devargs } if devargs.contains("does-not-exist")),
        "{err}"
    );
    // No such driver: an error (22.11's vdev bus reports -EFAULT here), not a panic.
    assert!(eal.probe_device("net_nosuchdriver0").is_err());
    assert!(eal.probe_device("bad\0args").is_err());

    eal.probe_device("net_null0").expect("net_null probes");
    let port = Port::by_name("net_null0").expect("net_null0");
    assert_eq!(port.driver_name(), "net_null");
}
