//! One trial: send at a rate (or as fast as the port takes frames) for a duration, receive
//! and timestamp what comes back, then drain. One thread, one core: TX and RX in the same
//! loop, bursts of 32, no allocation per packet.

use dpdk_ffi::{tsc, Mbuf, MbufBurst, Mempool, Port, TxBuffer, BURST};
use fastpath::svr_path::{egress, is_wan_candidate, Verdict};
use fastpath::time::Instant;
use hdrhistogram::Histogram;

use crate::flows::{read_signature, seq_of, FlowWalk, Template, EPOCH_SHIFT};
use crate::svr::{MbufBuf, Peer, Pool};

/// Where the frames of a trial come from.
pub enum Source<'a> {
    /// Templates patched per packet (flow, sequence, TSC).
    Templates {
        /// One template per slot of the size pattern.
        templates: &'a [Template],
        /// The flow walk (kept across trials).
        walk: &'a mut FlowWalk,
        /// Frames per flow before moving to the next flow (1 normally; the warm-up sends a
        /// flow's first frames back to back).
        per_flow: usize,
    },
    /// Pre-sealed SVR frames, sent once each; their send TSC goes into `sent_at`.
    Pool {
        /// The frames.
        pool: &'a mut Pool,
        /// Send TSC by pool index (as long as the pool).
        sent_at: &'a mut [u64],
    },
}

/// How received frames are read.
pub enum RxMode<'a> {
    /// Plaintext frames with the signature (plain forwarding, SVR decrypt direction).
    Signature,
    /// SVR frames from the DUT: counted, and 1 in `every` opened with the peer's keys to read
    /// the signature (`every` = 1 opens all; the warm-up does, to learn every session).
    SvrSample {
        /// The generator's peer-router state.
        peer: &'a mut Peer,
        /// Open one frame in this many.
        every: u32,
    },
}

/// The ports and the pool of one run.
pub struct Io {
    /// Frames go out here.
    pub tx: Port,
    /// Frames come back here.
    pub rx: Port,
    /// Mbufs for sent frames.
    pub pool: Mempool,
    /// TSC ticks per second.
    pub hz: u64,
    /// Sleep this long when a loop pass had nothing to do (0: busy polling).
    pub idle_sleep_us: u64,
}

/// What one trial asks for.
#[derive(Debug, Clone, Copy)]
pub struct TrialSpec {
    /// Packets per second, `None` = full speed.
    pub rate_pps: Option<f64>,
    /// Seconds of sending.
    pub seconds: f64,
    /// Keep frames the port did not take and send them again (full speed), instead of
    /// counting them lost as a wire would.
    pub backpressure: bool,
    /// Tag of this trial's sequence numbers; frames of other epochs are late arrivals.
    pub epoch: u16,
    /// Stop after this many frames (the source may end earlier).
    pub max_frames: Option<u64>,
    /// At a set rate, send when this many frames are due (bursts, as a NIC's TX would).
    pub min_burst: usize,
}

/// The outcome of one trial.
#[derive(Debug, Clone, Default)]
pub struct TrialResult {
    /// Frames built and offered to the port.
    pub offered: u64,
    /// Frames the port accepted.
    pub sent: u64,
    /// Frames the port refused (full ring: lost as on a wire).
    pub tx_dropped: u64,
    /// Frames of ours received.
    pub received: u64,
    /// Frames of an earlier trial received during this one.
    pub late: u64,
    /// Frames received that are not ours (ARP, BFD, ...).
    pub other: u64,
    /// Bytes of the frames offered (frame length without FCS; sealed frames in the decrypt
    /// direction).
    pub offered_bytes: u64,
    /// Mean plaintext frame length (the size being measured), for Gbit/s.
    pub plain_mean: f64,
    /// Seconds from the first to the last frame offered.
    pub seconds: f64,
    /// Frames opened (SVR sample) or read whose signature gave a latency sample.
    pub samples: u64,
    /// SVR frames the generator failed to open (drops of its own egress).
    pub open_failed: u64,
    /// Latency percentiles in ns: p50, p99, p99.9, max.
    pub latency: Option<[u64; 4]>,
}

impl TrialResult {
    /// Lost frames: offered and never received.
    pub fn lost(&self) -> u64 {
        self.offered.saturating_sub(self.received)
    }
    /// Loss as a fraction of the offered frames.
    pub fn loss_ratio(&self) -> f64 {
        if self.offered == 0 {
            0.0
        } else {
            self.lost() as f64 / self.offered as f64
        }
    }
    /// Offered rate, packets per second.
    pub fn offered_pps(&self) -> f64 {
        self.offered as f64 / self.seconds.max(1e-9)
    }
    /// Received rate, packets per second.
    pub fn rx_pps(&self) -> f64 {
        self.received as f64 / self.seconds.max(1e-9)
    }
    /// Received rate in Gbit/s of plaintext frames (frame length without FCS, no preamble or
    /// gap: memif has none).
    pub fn rx_gbps(&self) -> f64 {
        self.rx_pps() * self.plain_mean * 8.0 / 1e9
    }
}

/// Receive-side counters and the histogram, kept across a trial.
struct Rx {
    burst: MbufBurst,
    hist: Histogram<u64>,
    res: TrialResult,
    seen: u64,
    epoch: u16,
    hz: u64,
}

impl Rx {
    fn tsc_ns(&self, ticks: u64) -> u64 {
        (u128::from(ticks) * 1_000_000_000 / u128::from(self.hz.max(1))) as u64
    }

    fn sample(&mut self, sent: u64, now: u64) {
        if sent == 0 || sent > now {
            return;
        }
        let ns = self.tsc_ns(now - sent).max(1);
        self.hist.saturating_record(ns);
        self.res.samples += 1;
    }

    /// Reads one burst from `port`; returns how many frames arrived.
    fn poll(
        &mut self,
        port: &Port,
        mode: &mut RxMode<'_>,
        sent_at: Option<&[u64]>,
        is_rx_port: bool,
    ) -> usize {
        let n = port.rx_burst(0, &mut self.burst);
        if n == 0 {
            return 0;
        }
        let now = tsc();
        let mut burst = std::mem::take(&mut self.burst);
        for mut m in burst.drain() {
            if !is_rx_port {
                self.res.other += 1;
                continue;
            }
            self.frame(&mut m, mode, sent_at, now);
        }
        self.burst = burst;
        n
    }

    fn frame(&mut self, m: &mut Mbuf, mode: &mut RxMode<'_>, sent_at: Option<&[u64]>, now: u64) {
        match mode {
            RxMode::Signature => {
                let Some((seq, tsc_sent)) = read_signature(m.data()) else {
                    self.res.other += 1;
                    return;
                };
                if (seq >> EPOCH_SHIFT) as u16 != self.epoch {
                    self.res.late += 1;
                    return;
                }
                self.res.received += 1;
                let sent = match sent_at {
                    Some(t) => {
                        let i = (seq & ((1 << EPOCH_SHIFT) - 1)) as usize;
                        t.get(i).copied().unwrap_or(0)
                    }
                    None => tsc_sent,
                };
                self.sample(sent, now);
            }
            RxMode::SvrSample { peer, every } => {
                if !is_wan_candidate(&peer.shared, m.data()) {
                    self.res.other += 1;
                    return;
                }
                self.res.received += 1;
                self.seen += 1;
                if self.seen % u64::from((*every).max(1)) != 0 {
                    return;
                }
                let at = Instant::from_nanos(self.tsc_ns(now));
                let v = egress::wan_packet(&peer.shared, &mut peer.worker, &mut MbufBuf(m), at);
                if !matches!(v, Verdict::Forward { .. }) {
                    self.res.open_failed += 1;
                    return;
                }
                if let Some((seq, sent)) = read_signature(m.data()) {
                    if (seq >> EPOCH_SHIFT) as u16 == self.epoch {
                        self.sample(sent, now);
                    }
                }
            }
        }
    }
}

/// Runs one trial.
pub fn trial(
    io: &Io,
    spec: TrialSpec,
    source: &mut Source<'_>,
    mode: &mut RxMode<'_>,
) -> TrialResult {
    let hz = io.hz;
    let mut rx = Rx {
        burst: MbufBurst::new(),
        // Cannot fail: low bound 1, high bound above 2 × low, 3 significant figures (≤ 5).
        hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds"),
        res: TrialResult::default(),
        seen: 0,
        epoch: spec.epoch,
        hz,
    };
    let same_port = io.tx.id() == io.rx.id();
    let mut txb: TxBuffer = TxBuffer::new();
    let start = tsc();
    let end = start + (spec.seconds * hz as f64) as u64;
    let mut n: u64 = 0; // frames built (index into the size pattern, sequence number)
    let mut last_tx = start;
    let mut exhausted = false;
    loop {
        let now = tsc();
        if now >= end || (exhausted && txb.is_empty()) {
            break;
        }
        if spec.max_frames.is_some_and(|m| n >= m) {
            exhausted = true;
        }
        let room = if exhausted { 0 } else { BURST - txb.len() };
        let want = match spec.rate_pps {
            Some(r) => {
                let due = ((now - start) as f64 * r / hz as f64) as u64;
                let due = due.saturating_sub(n) as usize;
                // Paced bursts: wait until a whole burst is due (at most `min_burst`).
                if due >= spec.min_burst.max(1) {
                    due.min(room)
                } else {
                    0
                }
            }
            None => room,
        };
        let want = match spec.max_frames {
            Some(m) => want.min(m.saturating_sub(n) as usize),
            None => want,
        };
        for _ in 0..want {
            let Some(mut m) = io.pool.alloc() else {
                break;
            };
            let len = match source {
                Source::Templates {
                    templates,
                    walk,
                    per_flow,
                } => {
                    let t = &templates[(n % templates.len() as u64) as usize];
                    let len = t.bytes.len();
                    let Ok(buf) = m.append(len) else { break };
                    buf.copy_from_slice(&t.bytes);
                    walk.patch(t, buf, seq_of(spec.epoch, n), now);
                    if *per_flow <= 1 || (n + 1) % *per_flow as u64 == 0 {
                        walk.advance();
                    }
                    len
                }
                Source::Pool { pool, sent_at } => {
                    let Some((i, f)) = pool.next_frame() else {
                        exhausted = true;
                        break;
                    };
                    let Ok(buf) = m.append(f.len()) else { break };
                    buf.copy_from_slice(f);
                    if let Some(s) = sent_at.get_mut(i) {
                        *s = now;
                    }
                    f.len()
                }
            };
            n += 1;
            rx.res.offered_bytes += len as u64;
            if txb.push(m).is_err() {
                break;
            }
        }
        let mut work = 0;
        if !txb.is_empty() {
            let sent = io.tx.tx_burst(0, &mut txb);
            rx.res.sent += sent as u64;
            if sent > 0 {
                last_tx = now;
            }
            if !spec.backpressure {
                rx.res.tx_dropped += txb.drop_unsent() as u64;
            }
            work += sent;
        }
        let sent_at = match source {
            Source::Pool { sent_at, .. } => Some(&**sent_at),
            Source::Templates { .. } => None,
        };
        work += rx.poll(&io.rx, mode, sent_at, true);
        if !same_port {
            work += rx.poll(&io.tx, mode, sent_at, false);
        }
        if work == 0 && want == 0 && io.idle_sleep_us > 0 {
            std::thread::sleep(std::time::Duration::from_micros(io.idle_sleep_us));
        }
    }
    // Frames still queued at the end (back-pressure) never left: not offered.
    let unsent = txb.drop_unsent() as u64;
    rx.res.offered = n - unsent;
    // The sending phase: to the last frame the port took, or to the end of the loop when the
    // port took nothing at the end (a full ring: the wire was busy all along).
    let sending_end = if spec.backpressure {
        last_tx
    } else {
        tsc().min(end)
    };
    rx.res.seconds = (sending_end.max(start + 1) - start) as f64 / hz as f64;
    // Drain: until 20 ms pass without a frame, at most 500 ms.
    let sent_at = match source {
        Source::Pool { sent_at, .. } => Some(&**sent_at),
        Source::Templates { .. } => None,
    };
    let quiet = hz / 50;
    let stop = tsc() + hz / 2;
    let mut last = tsc();
    loop {
        let now = tsc();
        if now >= stop || now - last >= quiet {
            break;
        }
        let mut got = rx.poll(&io.rx, mode, sent_at, true);
        if !same_port {
            got += rx.poll(&io.tx, mode, sent_at, false);
        }
        if got > 0 {
            last = tsc();
        } else if io.idle_sleep_us > 0 {
            std::thread::sleep(std::time::Duration::from_micros(io.idle_sleep_us));
        }
    }
    if !rx.hist.is_empty() {
        rx.res.latency = Some([
            rx.hist.value_at_quantile(0.5),
            rx.hist.value_at_quantile(0.99),
            rx.hist.value_at_quantile(0.999),
            rx.hist.max(),
        ]);
    }
    rx.res
}
