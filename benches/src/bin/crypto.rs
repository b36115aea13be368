//! SVR payload crypto per core: `seal_payload` (AES-256-CBC encrypt + HMAC-SHA384/192 sign)
//! and `open_payload` (replay check + verify + decrypt + replay mark) on bursts of 32 packets
//! with installed keys, one pinned core.
//!
//! ```text
//! crypto [--sizes 64,128,256,512,1024,1408] [--packets 200K] [--warmup 20K] [--cpu 1]
//! ```
//!
//! Per size the loop is: seal a burst of 32 (timed), open the same 32 (timed), so every open
//! sees a packet sealed with a fresh sequence number and the replay window moves as on a real
//! receiver. Buffers stay in L1/L2 like the mbufs of `dpdk-test-crypto-perf`. "size" is the
//! plaintext length (the `--buffer-sz` of the reference); our packet grows by PKCS#7 padding
//! (1..16 B), the 8-byte trailer and the 24-byte tag, and the HMAC covers ciphertext + trailer.
//!
//! Two more rows per size, `enc_only` (`PayloadKey::encrypt`) and `mac_only`
//! (`PayloadKey::sign` over ciphertext + trailer), split the seal cost for the analysis.
//!
//! `seal_burst` / `open_burst` run the same loop through the multi-buffer API
//! (`svr_crypto::seal_burst` / `open_burst`: one call per burst of 32, CBC chains and SHA-512
//! compressions of the burst interleaved in SIMD lanes) on the detected backend, printed as
//! `backend=`; `--backend portable|aesni-avx2|vaes512` forces one.
//!
//! Output lines: `bench=crypto op=seal|open|enc_only|mac_only|seal_burst|open_burst size=…
//! ns_per_pkt=… cycles_per_pkt=… cycles_per_byte=… gbps=… mpps=…`.

use std::hint::black_box;

use svr_benches::{ns_per, rdtsc, setup, Args, Line};
use svr_crypto::{
    open_burst_with, open_payload, seal_burst_with, seal_payload, sealed_len, Backend, CryptoError,
    Direction, OpenJob, PayloadKey, ReplayWindow, SealJob,
};

const BURST: usize = 32;

struct Acc {
    ticks: u64,
    pkts: u64,
}

impl Acc {
    fn new() -> Acc {
        Acc { ticks: 0, pkts: 0 }
    }

    fn report(&self, op: &str, size: usize, hz: f64) {
        self.report_on(op, size, hz, None)
    }

    fn report_on(&self, op: &str, size: usize, hz: f64, backend: Option<Backend>) {
        let ns = ns_per(self.ticks, self.pkts, hz);
        let cyc = self.ticks as f64 / self.pkts.max(1) as f64;
        let mut line = Line::new("crypto").kv("op", op);
        if let Some(b) = backend {
            line = line.kv("backend", backend_name(b));
        }
        line.kv("size", size)
            .kv("burst", BURST)
            .kv("packets", self.pkts)
            .f("ns_per_pkt", ns, 2)
            .f("cycles_per_pkt", cyc, 1)
            .f("cycles_per_byte", cyc / size as f64, 3)
            .f("gbps", size as f64 * 8.0 / ns, 3)
            .f("mpps", 1e3 / ns, 4)
            .print();
    }
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Portable => "portable",
        Backend::AesNiAvx2 => "aesni-avx2",
        Backend::Vaes512 => "vaes512",
    }
}

fn main() {
    let args = Args::from_env();
    let hz = setup("crypto", &args);
    let sizes = args.get_list("sizes", &[64, 128, 256, 512, 1024, 1408]);
    let packets = args.get_usize("packets", 200_000);
    let warmup = args.get_usize("warmup", 20_000);
    let bursts = packets.div_ceil(BURST).max(1);
    let warm_bursts = warmup.div_ceil(BURST);
    // `--backend NAME` (not a count, so read here rather than through `Args`).
    let argv: Vec<String> = std::env::args().collect();
    let forced = argv
        .iter()
        .position(|a| a == "--backend")
        .and_then(|i| argv.get(i + 1));
    let backend = match forced {
        Some(name) => Backend::ALL
            .into_iter()
            .find(|b| backend_name(*b) == name)
            .filter(|b| b.is_available())
            .unwrap_or_else(|| panic!("--backend {name}: unknown or not available on this CPU")),
        None => Backend::detect(),
    };

    // An installed payload key, as after TLV 46 was received: schedules and HMAC states ready.
    let key = PayloadKey::new(3, &[0x5a; 32]);
    let dir = Direction::Forward;

    for &size in &sizes {
        let cap = sealed_len(size);
        let mut bufs: Vec<Vec<u8>> = (0..BURST)
            .map(|i| (0..cap).map(|j| (i * 31 + j) as u8).collect())
            .collect();
        let mut lens = [0usize; BURST];
        let mut replay = ReplayWindow::new();
        let mut seq = 0u64;
        let (mut seal, mut open) = (Acc::new(), Acc::new());

        for round in 0..warm_bursts + bursts {
            let t0 = rdtsc();
            for (b, len) in bufs.iter_mut().zip(lens.iter_mut()) {
                // `size` bytes of "plaintext" (whatever the previous open left there).
                *len =
                    seal_payload(&key, dir, seq, b, 0, size).expect("buffer sized by sealed_len");
                seq += 1;
            }
            let t1 = rdtsc();
            for (b, &len) in bufs.iter_mut().zip(lens.iter()) {
                let (n, _) = open_payload(&key, dir, &mut b[..len], 0, &mut replay)
                    .expect("a packet we just sealed opens");
                black_box(n);
            }
            let t2 = rdtsc();
            if round >= warm_bursts {
                seal.ticks += t1 - t0;
                open.ticks += t2 - t1;
                seal.pkts += BURST as u64;
                open.pkts += BURST as u64;
            }
        }
        seal.report("seal", size, hz);
        open.report("open", size, hz);

        // The two halves of a seal, on a quarter of the packets.
        let (mut enc, mut mac) = (Acc::new(), Acc::new());
        let ct_len = svr_crypto::payload_ciphertext_len(size);
        for round in 0..warm_bursts + (bursts / 4).max(1) {
            let t0 = rdtsc();
            for b in bufs.iter_mut() {
                let n = key.encrypt(dir, seq, b, size).expect("sized");
                black_box(n);
                seq += 1;
            }
            let t1 = rdtsc();
            for b in bufs.iter() {
                black_box(key.sign(dir, &b[..ct_len + svr_crypto::TRAILER_LEN]));
            }
            let t2 = rdtsc();
            if round >= warm_bursts {
                enc.ticks += t1 - t0;
                mac.ticks += t2 - t1;
                enc.pkts += BURST as u64;
                mac.pkts += BURST as u64;
            }
        }
        enc.report("enc_only", size, hz);
        mac.report("mac_only", size, hz);

        // The same seal/open loop through the burst API: one call per burst.
        let mut replay = [ReplayWindow::new()];
        let (mut seal, mut open) = (Acc::new(), Acc::new());
        let mut sealed = [Ok(0usize); BURST];
        let mut opened = [Ok((0usize, 0u64)); BURST];
        for round in 0..warm_bursts + bursts {
            let t0 = rdtsc();
            {
                let mut jobs: [SealJob; BURST] = {
                    let mut it = bufs.iter_mut();
                    std::array::from_fn(|i| SealJob {
                        key: &key,
                        dir,
                        seq: seq + i as u64,
                        buf: it.next().expect("BURST buffers"),
                        covered_start: 0,
                        plain_len: size,
                    })
                };
                seal_burst_with(backend, &mut jobs, &mut sealed);
            }
            seq += BURST as u64;
            let t1 = rdtsc();
            {
                let mut jobs: [OpenJob; BURST] = {
                    let mut it = bufs.iter_mut().zip(sealed.iter());
                    std::array::from_fn(|_| {
                        let (b, len) = it.next().expect("BURST buffers");
                        let len = *len.as_ref().expect("a burst we just sealed");
                        OpenJob {
                            key: &key,
                            dir,
                            buf: &mut b[..len],
                            covered_start: 0,
                            window: 0,
                        }
                    })
                };
                open_burst_with(backend, &mut jobs, &mut replay, &mut opened);
            }
            let t2 = rdtsc();
            for r in &opened {
                let r: &Result<(usize, u64), CryptoError> = r;
                assert!(r.is_ok(), "a packet we just sealed opens: {r:?}");
            }
            black_box(&opened);
            if round >= warm_bursts {
                seal.ticks += t1 - t0;
                open.ticks += t2 - t1;
                seal.pkts += BURST as u64;
                open.pkts += BURST as u64;
            }
        }
        seal.report_on("seal_burst", size, hz, Some(backend));
        open.report_on("open_burst", size, hz, Some(backend));
    }
}
