//! New SVR sessions per second per core, at the ingress: everything we do today when the first
//! packet of a new flow arrives from the LAN, on one pinned core.
//!
//! ```text
//! session_setup [--sessions 200K] [--payload 100] [--seed 7] [--cpu 1] [--stock 1]
//! ```
//!
//! Per new flow, in order (the step names are the `step=` keys of the breakdown):
//!
//! 1. `lookup_miss`: `SessionTable::lookup` of the LAN key misses;
//! 2. `wayport`: `WayportAllocator::allocate` on the flow's waypoint pair (one allocator per
//!    24,575 sessions, flows spread round-robin);
//! 3. `key_gen`: the 16-byte session UUID from a seeded `StdRng` (ChaCha12, the worker's
//!    CSPRNG, seeded from the OS), and with `--stock 0` the payload key's 32 random bytes;
//! 4. `key_install`: the session's installed payload key (`Arc<SessionKey>`, as
//!    `SessionCrypto` holds it), stored in a key-store slot. By default (`--stock 1`) taken from
//!    the worker's `KeyStock`, as `ingress::create` does: every 8th session pays for a batch
//!    (32 random bytes per key, `PayloadKey::new_many` with the 8 keys' HKDF chains in the
//!    SHA-512 lanes, 8 `Arc`s), the others pop a ready key. `--stock 0` is the path before the
//!    stock: `SessionKey::new` = `PayloadKey::new` (HKDF-SHA384 extract and `T(1)`, the forward
//!    HMAC key's keyed states, the AES-256 encryption schedule) per session;
//! 5. `insert`: `SessionTable::insert` with the LAN key and the WAN key built from the
//!    wayports, then `next_tx_seq`;
//! 6. `metadata`: `ForwardMetadata::emit` (security id, forward context, tenant, service, UUID,
//!    source router, security name, peer path, session-encrypted, payload key TLV), 16 random
//!    IV bytes, `seal_metadata` with the peer's installed `MetadataKey`;
//! 7. `packet`: copy the original payload after the metadata, `PayloadKey::encrypt` it, write
//!    the trailer; metadata + ciphertext + trailer are signed with the metadata key's HMAC
//!    32 first packets at a time (`svr_crypto::sign_burst`, SHA-512 lanes), as svrd's crypto
//!    stage signs the metadata packets of a burst (`fastpath::svr_path::burst`); each
//!    32nd session's step carries its burst's signing.
//!
//! Pass `total` runs the steps back to back and gives the headline rate; pass `breakdown`
//! repeats them on a fresh table with a TSC stamp between steps (adds ~8 stamps per flow, so
//! its sum is a little above `total`). Each pass fills an empty table of capacity
//! `--sessions`.
//!
//! The heap holds `--sessions` free chunks the size of an `Arc<SessionKey>` before each pass
//! (`warm_heap`), as a worker's heap does once sessions have come and gone, so that the kernel's
//! zeroing of fresh pages is not counted as key installation.
//!
//! `PayloadKey::new` leaves two things to their first use, which a new session at the ingress
//! does not need: the reverse HMAC key (HKDF's `T(2)` and its pads) and the AES decryption
//! schedule. Pass `deferred` pays them for every installed key, as the session's first reply
//! would (`key.mac(Reverse)` and a one-block `decrypt`), so the moved cost stays visible.
//!
//! Output lines: `bench=session_setup op=total sessions=… ns_per_session=… ksessions_per_s=…`,
//! `bench=session_setup op=breakdown step=… ns=… share_pct=…` and
//! `bench=session_setup op=deferred step=first_reply_keys ns=…`.

use std::hint::black_box;
use std::net::Ipv4Addr;

use fastpath::session::{
    FlowHasher, FlowKey, MetadataState, Role, SessionInit, SessionTable, Side, WayportAllocator,
    WayportMode, WayportRange,
};
use fastpath::svr::{seal_metadata, Context, ForwardMetadata, SessionContext};
use fastpath::svr_path::key_stock::KeyStock;
use fastpath::svr_path::SessionKey;
use fastpath::time::Instant;
use fastpath::wire::IpProtocol;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::sync::Arc;
use svr_benches::{ns_per, rdtsc, setup, Args, Line};
use svr_crypto::{
    payload_ciphertext_len, sign_burst, Direction, MetadataKey, PayloadKey, HMAC_LEN, MAX_BURST,
    TRAILER_LEN,
};

const STEPS: [&str; 7] = [
    "lookup_miss",
    "wayport",
    "key_gen",
    "key_install",
    "insert",
    "metadata",
    "packet",
];

/// IPv4 (20) + TCP (20) in front of the covered region.
const L4_END: usize = 40;

struct Ingress {
    table: SessionTable,
    wayports: Vec<WayportAllocator>,
    keys: Vec<Option<Arc<SessionKey>>>,
    /// `None` with `--stock 0`: one `SessionKey::new` per session.
    stock: Option<KeyStock>,
    peer_md: MetadataKey,
    rng: StdRng,
    /// One frame buffer per packet of a burst: the first packets of up to [`MAX_BURST`] new
    /// sessions wait for their HMAC together, as in svrd's crypto stage.
    bufs: Vec<Vec<u8>>,
    /// (buffer, signed length) of the first packets waiting for their HMAC.
    unsigned: Vec<(usize, usize)>,
    payload: Vec<u8>,
    now: Instant,
    /// Keeps the free chunks of [`warm_heap`] apart.
    #[allow(clippy::vec_box)] // each box is a live allocation between two free chunks
    _fillers: Vec<Box<u64>>,
}

/// Leaves `n` free heap chunks of the size of an `Arc<SessionKey>` allocation, with their
/// pages already faulted in, kept from merging (and from going back to the OS) by small live
/// fillers, which it returns. A worker that has run for a while allocates session keys from
/// memory that ended sessions gave back; without this, filling an empty table would also time
/// the kernel zeroing ~1.4 KB of fresh pages per session (the stores of `--stock 1` and `0`
/// alike).
#[allow(clippy::vec_box)] // each box is a live allocation between two free chunks
fn warm_heap(n: usize) -> Vec<Box<u64>> {
    // ArcInner<SessionKey>: two counters in front of the value, at its alignment.
    let size = std::mem::size_of::<SessionKey>()
        + 2 * std::mem::size_of::<usize>().max(std::mem::align_of::<SessionKey>());
    let mut chunks = Vec::with_capacity(n);
    let mut fillers = Vec::with_capacity(n);
    for i in 0..n {
        chunks.push(vec![1u8; size].into_boxed_slice());
        fillers.push(Box::new(i as u64));
    }
    drop(chunks);
    fillers
}

impl Ingress {
    fn new(n: usize, payload_len: usize, seed: u64, stock: bool) -> Ingress {
        let pairs = n.div_ceil(24_575).max(1);
        Ingress {
            table: SessionTable::with_hasher(n as u32, FlowHasher::with_seed(seed)),
            wayports: (0..pairs)
                .map(|_| {
                    // Unique destinations (a bitmap): the allocator's mode with a source NAT.
                    WayportAllocator::new(WayportRange::default(), WayportMode::UniqueDestination)
                        .expect("default range")
                })
                .collect(),
            keys: std::iter::repeat_with(|| None).take(n).collect(),
            stock: stock.then(KeyStock::new),
            peer_md: MetadataKey::new(1, &[0x11; 32], &[0x22; 48]),
            rng: StdRng::seed_from_u64(seed),
            bufs: vec![vec![0; 2048]; MAX_BURST],
            unsigned: Vec::with_capacity(MAX_BURST),
            payload: (0..payload_len).map(|i| i as u8).collect(),
            now: Instant::from_nanos(5_000_000_000),
            _fillers: warm_heap(n + 8),
        }
    }

    /// Creates the session of flow `i` whose first packet has 5-tuple `lan`. With `STAMP`,
    /// adds the TSC ticks of each step to `acc`.
    #[inline(always)]
    fn create<const STAMP: bool>(&mut self, i: usize, lan: &FlowKey, acc: &mut [u64; 7]) {
        let mut t = if STAMP { rdtsc() } else { 0 };
        let mut lap = |k: usize| {
            if STAMP {
                let now = rdtsc();
                acc[k] += now - t;
                t = now;
            }
        };

        // 1. the first packet misses the table
        let miss = self.table.lookup(lan);
        assert!(miss.is_none(), "flow {i} is new");
        lap(0);

        // 2. wayports on this flow's waypoint pair
        let pair = i % self.wayports.len();
        let wp = self.wayports[pair]
            .allocate()
            .expect("fewer flows per pair than the range");
        lap(1);

        // 3. session UUID (and the payload key's bytes without the stock)
        let uuid: [u8; 16] = self.rng.gen();
        let mut pk_bytes = [0u8; 32];
        if self.stock.is_none() {
            self.rng.fill_bytes(&mut pk_bytes);
        }
        lap(2);

        // 4. the installed payload key: from the stock, or installed here
        let key_index = (i & 0xff) as u8;
        let key = match self.stock.as_mut() {
            Some(stock) => stock.take(key_index, &mut self.rng),
            None => SessionKey::new(key_index, pk_bytes),
        };
        self.keys[i] = Some(key);
        lap(3);

        // 5. the session, reachable by the LAN key and by the WAN key of the peer's replies
        let peer_wp = Ipv4Addr::from(0x6440_0000 | pair as u32);
        let wan = FlowKey::v4(
            peer_wp,
            Ipv4Addr::new(192, 0, 2, 1),
            lan.proto(),
            wp.destination,
            wp.source,
        );
        let id = self
            .table
            .insert(
                *lan,
                wan,
                SessionInit {
                    role: Role::Ingress,
                    uuid,
                    payload_key_index: key_index,
                    key_handle: i as u32,
                    replay_slot: i as u32,
                    metadata: MetadataState::SendingForward { count: 0 },
                },
                self.now,
            )
            .expect("new flow, capacity for all");
        let seq = self.table.next_tx_seq(id, Side::Wan).expect("live");
        lap(4);

        // 6. forward metadata, sealed for the peer
        let (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) = (lan.src(), lan.dst()) else {
            unreachable!("the flows are IPv4")
        };
        let md = ForwardMetadata {
            security_id: self.peer_md.rekey_index(),
            context: SessionContext::V4(Context {
                src,
                dst,
                src_port: lan.src_port(),
                dst_port: lan.dst_port(),
                protocol: IpProtocol::from(lan.proto()),
            }),
            tenant: "engineering",
            service: "web-internal",
            session_uuid: uuid,
            source_router: "branch-router-01",
            source_router_security_name: Some("internal"),
            peer_path_id: "wan0",
            session_encrypted: true,
            tcp_syn: lan.proto() == 6,
            application_name: None,
            payload_key: Some(self.keys[i].as_ref().expect("stored above").tlv()),
        };
        let slot = i % MAX_BURST;
        let covered = &mut self.bufs[slot][L4_END..];
        md.emit(covered).expect("buffer holds the metadata");
        let iv: [u8; 16] = self.rng.gen();
        let md_len = seal_metadata(&self.peer_md, iv, covered).expect("sealed");
        lap(5);

        // 7. the first packet: payload after the metadata, encrypted, trailer, HMAC
        let key = &self.keys[i].as_ref().expect("installed above").key;
        let plen = self.payload.len();
        covered[md_len..md_len + plen].copy_from_slice(&self.payload);
        let ct = key
            .encrypt(Direction::Forward, seq, &mut covered[md_len..], plen)
            .expect("room");
        let end = md_len + ct;
        covered[end..end + TRAILER_LEN].copy_from_slice(&seq.to_be_bytes());
        // The HMAC with the burst's other first packets (svrd: `finish_burst`).
        self.unsigned.push((slot, end + TRAILER_LEN));
        if self.unsigned.len() == MAX_BURST {
            self.sign_burst();
        }
        lap(6);
    }

    /// The metadata key's HMAC of every first packet waiting, in the SHA-512 lanes.
    fn sign_burst(&mut self) {
        let mut tags = [[0u8; HMAC_LEN]; MAX_BURST];
        let mac = self.peer_md.mac();
        let mut jobs = [None; MAX_BURST];
        for (j, &(slot, n)) in jobs.iter_mut().zip(&self.unsigned) {
            *j = Some((mac, &self.bufs[slot][L4_END..L4_END + n]));
        }
        let n = self.unsigned.len();
        sign_burst(&jobs[..n], &mut tags[..n]);
        for (&(slot, len), tag) in self.unsigned.iter().zip(&tags) {
            let at = L4_END + len;
            self.bufs[slot][at..at + HMAC_LEN].copy_from_slice(tag);
        }
        black_box(&self.bufs);
        self.unsigned.clear();
    }
}

fn flows(n: usize, seed: u64) -> Vec<FlowKey> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let proto = if i % 4 == 0 { 17 } else { 6 };
            FlowKey::v4(
                Ipv4Addr::from(0x0a00_0000 | (i as u32 & 0x00ff_ffff)),
                Ipv4Addr::from(rng.gen::<u32>()),
                proto,
                rng.gen_range(1024..=65535),
                if proto == 6 { 443 } else { 53 },
            )
        })
        .collect()
}

fn main() {
    let args = Args::from_env();
    let hz = setup("session_setup", &args);
    let n = args.get_usize("sessions", 200_000).clamp(1, 1 << 24);
    let payload_len = args.get_usize("payload", 100).min(1400);
    let seed = args.get_usize("seed", 7) as u64;
    let stock = args.get_usize("stock", 1) != 0;
    let lan = flows(n, seed);

    // Warm-up: a small table, so code and key schedules' code paths are hot.
    {
        let w = n.min(10_000);
        let mut ing = Ingress::new(w, payload_len, seed + 1, stock);
        let mut acc = [0u64; 7];
        for (i, k) in lan.iter().take(w).enumerate() {
            ing.create::<false>(i, k, &mut acc);
        }
    }

    // Headline pass.
    let mut ing = Ingress::new(n, payload_len, seed, stock);
    let md_len = {
        let mut acc = [0u64; 7];
        let t0 = rdtsc();
        for (i, k) in lan.iter().enumerate() {
            ing.create::<false>(i, k, &mut acc);
        }
        ing.sign_burst();
        let t = rdtsc() - t0;
        let ns = ns_per(t, n as u64, hz);
        Line::new("session_setup")
            .kv("op", "total")
            .kv("sessions", n)
            .kv("payload", payload_len)
            .kv("stock", u8::from(stock))
            .f("ns_per_session", ns, 1)
            .f("cycles_per_session", t as f64 / n as f64, 0)
            .f("ksessions_per_s", 1e6 / ns, 1)
            .print();
        fastpath::svr::MetadataHeader::new_checked(&ing.bufs[0][L4_END..])
            .map(|h| h.metadata_len())
            .unwrap_or(0)
    };
    Line::new("session_setup")
        .kv("op", "packet")
        .kv("metadata_sealed_bytes", md_len)
        .kv(
            "first_packet_covered_bytes",
            md_len + payload_ciphertext_len(payload_len) + TRAILER_LEN + HMAC_LEN,
        )
        .kv("table_len", ing.table.len())
        .print();
    drop(ing);

    // Breakdown pass.
    let mut ing = Ingress::new(n, payload_len, seed, stock);
    let mut acc = [0u64; 7];
    for (i, k) in lan.iter().enumerate() {
        ing.create::<true>(i, k, &mut acc);
    }
    let t = rdtsc();
    ing.sign_burst();
    acc[6] += rdtsc() - t;
    let sum: u64 = acc.iter().sum();
    for (name, &t) in STEPS.iter().zip(&acc) {
        Line::new("session_setup")
            .kv("op", "breakdown")
            .kv("step", name)
            .f("ns", ns_per(t, n as u64, hz), 1)
            .f("share_pct", 100.0 * t as f64 / sum.max(1) as f64, 1)
            .print();
    }
    Line::new("session_setup")
        .kv("op", "breakdown")
        .kv("step", "sum")
        .f("ns", ns_per(sum, n as u64, hz), 1)
        .f("share_pct", 100.0, 1)
        .print();

    // Key installation alone: one at a time, and 8 at a time in the SHA-512 lanes.
    let raw: Vec<[u8; 32]> = (0..4096).map(|_| ing.rng.gen()).collect();
    let t0 = rdtsc();
    for r in &raw {
        black_box(PayloadKey::new(0, r));
    }
    let one = rdtsc() - t0;
    let t0 = rdtsc();
    for r in raw.chunks_exact(8) {
        black_box(PayloadKey::new_many(
            0,
            core::array::from_fn::<_, 8, _>(|i| &r[i]),
        ));
    }
    let many = rdtsc() - t0;
    for (step, t) in [("payload_key_new", one), ("payload_key_new_many_8", many)] {
        Line::new("session_setup")
            .kv("op", "install")
            .kv("step", step)
            .f("ns_per_key", ns_per(t, raw.len() as u64, hz), 1)
            .print();
    }

    // Deferred pass: what the first reply of each session pays on top.
    let t0 = rdtsc();
    let mut block = [0u8; 16];
    for key in ing.keys.iter().flatten().map(|k| &k.key) {
        black_box(key.mac(Direction::Reverse));
        black_box(key.decrypt(Direction::Reverse, 0, &mut block).is_ok());
    }
    let t = rdtsc() - t0;
    Line::new("session_setup")
        .kv("op", "deferred")
        .kv("step", "first_reply_keys")
        .f("ns", ns_per(t, n as u64, hz), 1)
        .print();
}
