//! `svr-pktgen`: the packet generator of the svr-fastpath testbed (see `README.md` beside this
//! crate). One DPDK process on one pinned core: it sends N flows of fixed or mixed sizes
//! (IPv4/IPv6, UDP or TCP SYN) at a rate or at full speed on one port, receives them back on
//! another (or the same) port, and reports sent, received, lost, Mpps, Gbps and latency
//! percentiles from TSC stamps. `--search` adds a binary search for the no-drop rate.
//!
//! Modes: `plain` (any forwarder: testpmd, svrd routing), `svr-encrypt` (LAN traffic in, SVR
//! out: the generator plays the peer router and opens a sample of what comes back to read
//! the stamp) and `svr-decrypt` (the generator plays the peer router and sends pre-sealed SVR
//! packets; the DUT opens them and sends the plaintext back).

mod flows;
mod run;
mod svr;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant as StdInstant};

use clap::{Parser, ValueEnum};
use dpdk_ffi::{Eal, Mempool, Port, PortConf, DEFAULT_DATA_ROOM, SOCKET_ANY};
use fastpath::time::Instant;

use crate::flows::{seq_of, FlowSpec, FlowWalk, Proto, SizeMix, Template};
use crate::run::{trial, Io, RxMode, Source, TrialResult, TrialSpec};
use crate::svr::{peer_from_config, Peer, Pool, PoolBuilder};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Frames go through a plain forwarder (testpmd io, svrd routing) and come back as sent.
    Plain,
    /// LAN traffic to a peer's service; SVR frames come back (DUT encrypts).
    SvrEncrypt,
    /// Pre-sealed SVR frames from the peer; plaintext comes back (DUT decrypts).
    SvrDecrypt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProtoArg {
    /// UDP datagrams.
    Udp,
    /// TCP SYN segments.
    TcpSyn,
}

/// The svr-fastpath packet generator (DPDK, one core).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Device frames are sent on: a vdev string (`net_memif0,role=server,socket=...`) or a
    /// PCI address.
    #[arg(long)]
    tx_dev: String,
    /// Device frames come back on (default: the TX device).
    #[arg(long)]
    rx_dev: Option<String>,
    /// Destination MAC of the frames sent (the DUT's port on the TX link).
    #[arg(long, value_parser = parse_mac)]
    dst_mac: MacArg,
    /// What the DUT does with the frames.
    #[arg(long, value_enum, default_value_t = Mode::Plain)]
    mode: Mode,
    /// The DUT's svrd configuration (svr-* modes): services, waypoints, test keys.
    #[arg(long)]
    svr_config: Option<PathBuf>,
    /// The router of that configuration the generator plays (svr-* modes).
    #[arg(long, default_value = "peer")]
    svr_router: String,
    /// Number of flows (source address × source port), e.g. 1024, 64K, 2M.
    #[arg(long, default_value = "1024", value_parser = parse_count)]
    flows: u64,
    /// Frame sizes without FCS, comma-separated; each is measured in turn: a length or `imix`.
    #[arg(long, default_value = "64")]
    size: String,
    /// Source address of flow 0 (the family of both addresses is the IP version sent).
    #[arg(long, default_value = "10.1.1.1")]
    src_ip: IpAddr,
    /// Destination address.
    #[arg(long, default_value = "10.2.0.2")]
    dst_ip: IpAddr,
    /// First source port.
    #[arg(long, default_value_t = 1024)]
    sport: u16,
    /// Source ports per source address before the next address.
    #[arg(long, default_value_t = 16384)]
    ports_per_ip: u32,
    /// Transport.
    #[arg(long, value_enum, default_value_t = ProtoArg::Udp)]
    proto: ProtoArg,
    /// Offered rate in Mpps for the main trial; 0 = full speed (frames the port refuses are
    /// retried: memif back-pressure).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// At a set rate, frames go out in bursts of this many (paced per burst).
    #[arg(long, default_value_t = 32)]
    tx_burst: usize,
    /// Seconds of the main trial.
    #[arg(long, default_value_t = 2.0)]
    duration: f64,
    /// Stop the main trial after this many frames.
    #[arg(long, value_parser = parse_count)]
    count: Option<u64>,
    /// After the main trial, binary-search the highest rate with no loss.
    #[arg(long)]
    search: bool,
    /// Seconds per search trial.
    #[arg(long, default_value_t = 0.5)]
    trial: f64,
    /// Most search trials.
    #[arg(long, default_value_t = 7)]
    search_steps: u32,
    /// Most seconds the search may take per size (pool sealing included).
    #[arg(long, default_value_t = 20.0)]
    search_budget: f64,
    /// Loss accepted by "no drop", as a fraction of the offered frames.
    #[arg(long, default_value_t = 0.0)]
    loss_tolerance: f64,
    /// With `--search`: a second search for the partial-drop rate (PDR), the highest rate
    /// losing at most this fraction of the offered frames (0: none).
    #[arg(long, default_value_t = 0.0)]
    pdr_tolerance: f64,
    /// svr-encrypt: open one received frame in this many to read its stamp.
    #[arg(long, default_value_t = 16)]
    sample: u32,
    /// svr-* modes: frames per flow sent first, small and slow, to open the sessions (UDP
    /// carries metadata on its first 11 frames when nothing answers).
    #[arg(long, default_value_t = 12)]
    warmup_per_flow: u32,
    /// Rate of the warm-up, Mpps.
    #[arg(long, default_value_t = 0.05)]
    warmup_rate: f64,
    /// plain mode: send the warm-up too (a chain of SVR routers, one encrypting and the next
    /// decrypting, whose far end delivers the frames as sent).
    #[arg(long)]
    warmup: bool,
    /// Seconds to wait after the links are up before the warm-up (a chain: the generator's
    /// links are up before the links between the routers behind them are).
    #[arg(long, default_value_t = 0.0)]
    warmup_delay: f64,
    /// svr-decrypt: most MiB of pre-sealed frames held at once.
    #[arg(long, default_value_t = 256)]
    pool_mb: usize,
    /// svr-decrypt: most pre-sealed frames held at once.
    #[arg(long, default_value = "1M", value_parser = parse_count)]
    pool_packets: u64,
    /// CPU the generator runs on (EAL `--lcores 0@CPU`).
    #[arg(long, default_value_t = 0)]
    cpu: u32,
    /// EAL file prefix.
    #[arg(long, default_value = "pktgen")]
    file_prefix: String,
    /// EAL memory, MiB.
    #[arg(long, default_value_t = 256)]
    mem_mb: u32,
    /// Run the EAL without hugepages (`--no-huge`).
    #[arg(long)]
    no_huge: bool,
    /// Mbufs in each of the TX and RX pools.
    #[arg(long, default_value_t = 16383)]
    mbufs: u32,
    /// Seconds to wait for the links to come up (the DUT connecting).
    #[arg(long, default_value_t = 30.0)]
    link_timeout: f64,
    /// Sleep this many µs when a loop pass found nothing to do (0: busy poll, for
    /// measurements; > 0 for small shared machines and CI).
    #[arg(long, default_value_t = 0)]
    idle_sleep_us: u64,
    /// Exit 1 unless every trial received every frame it sent (functional tests).
    #[arg(long)]
    expect_all: bool,
    /// After the results ("pktgen: done" on stderr), keep the ports open this many seconds
    /// (the script stops the DUT first, then the generator).
    #[arg(long, default_value_t = 0.0)]
    linger: f64,
    /// Print one JSON object per size on stdout.
    #[arg(long)]
    json: bool,
    /// EAL log level.
    #[arg(long, default_value = "error")]
    log_level: String,
}

#[derive(Debug, Clone, Copy)]
struct MacArg([u8; 6]);

fn parse_mac(s: &str) -> Result<MacArg, String> {
    let mut out = [0u8; 6];
    let mut it = s.split(':');
    for b in &mut out {
        let p = it.next().ok_or("a MAC is xx:xx:xx:xx:xx:xx")?;
        *b = u8::from_str_radix(p, 16).map_err(|_| "a MAC is xx:xx:xx:xx:xx:xx")?;
    }
    if it.next().is_some() {
        return Err("a MAC is xx:xx:xx:xx:xx:xx".into());
    }
    Ok(MacArg(out))
}

fn parse_count(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1_000),
        Some('m' | 'M') => (&s[..s.len() - 1], 1_000_000),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("{s:?}: a count such as 1000, 64K or 2M"))
}

fn is_pci(dev: &str) -> bool {
    !dev.starts_with("net_") && dev.contains(':')
}

/// The EAL command line from our own flags: one lcore pinned to `--cpu`, our file prefix,
/// `--no-pci` unless a device is a PCI address, the vdevs.
fn eal_args(cli: &Cli) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "svr-pktgen".into(),
        "--lcores".into(),
        format!("0@{}", cli.cpu),
        "--file-prefix".into(),
        cli.file_prefix.clone(),
        "-m".into(),
        cli.mem_mb.to_string(),
        "--log-level".into(),
        cli.log_level.clone(),
        "--no-telemetry".into(),
    ];
    if cli.no_huge {
        a.push("--no-huge".into());
    } else {
        a.push("--huge-unlink".into());
    }
    let mut devs = vec![cli.tx_dev.clone()];
    if let Some(rx) = &cli.rx_dev {
        if rx != &cli.tx_dev {
            devs.push(rx.clone());
        }
    }
    if !devs.iter().any(|d| is_pci(d)) {
        a.push("--no-pci".into());
    }
    for d in devs {
        if is_pci(&d) {
            a.push("-a".into());
        } else {
            a.push("--vdev".into());
        }
        a.push(d);
    }
    a
}

fn dev_name(dev: &str) -> &str {
    dev.split(',').next().unwrap_or(dev)
}

fn open_port(dev: &str, rx_pool: &Mempool) -> Result<Port, String> {
    let name = dev_name(dev);
    let port = Port::by_name(name).map_err(|e| format!("{name}: {e}"))?;
    let conf = PortConf {
        rx_queues: 1,
        tx_queues: 1,
        rx_desc: 1024,
        tx_desc: 1024,
        mempool: rx_pool,
        rss: false,
        mtu: None,
    };
    port.configure(&conf).map_err(|e| format!("{name}: {e}"))?;
    port.start().map_err(|e| format!("{name}: {e}"))?;
    let _ = port.promiscuous(true);
    Ok(port)
}

fn fmt_mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn trial_json(t: &TrialResult) -> String {
    let lat = match t.latency {
        Some([a, b, c, d]) => format!("[{a},{b},{c},{d}]"),
        None => "null".into(),
    };
    format!(
        "{{\"offered\":{},\"sent\":{},\"tx_dropped\":{},\"received\":{},\"lost\":{},\"late\":{},\"other\":{},\"secs\":{:.4},\"offered_mpps\":{:.4},\"rx_mpps\":{:.4},\"gbps\":{:.4},\"loss\":{:.6},\"samples\":{},\"open_failed\":{},\"lat_ns\":{}}}",
        t.offered,
        t.sent,
        t.tx_dropped,
        t.received,
        t.lost(),
        t.late,
        t.other,
        t.seconds,
        t.offered_pps() / 1e6,
        t.rx_pps() / 1e6,
        t.rx_gbps(),
        t.loss_ratio(),
        t.samples,
        t.open_failed,
        lat
    )
}

fn trial_line(what: &str, t: &TrialResult) -> String {
    let lat = match t.latency {
        Some([a, b, c, d]) => format!(
            "latency p50 {:.1} µs, p99 {:.1}, p99.9 {:.1}, max {:.1} ({} samples)",
            a as f64 / 1e3,
            b as f64 / 1e3,
            c as f64 / 1e3,
            d as f64 / 1e3,
            t.samples
        ),
        None => "no latency samples".into(),
    };
    format!(
        "{what}: offered {} ({:.3} Mpps), sent {}, received {}, lost {} ({:.4} %), {:.3} Mpps, {:.3} Gbps in {:.2} s; {lat}",
        t.offered,
        t.offered_pps() / 1e6,
        t.sent,
        t.received,
        t.lost(),
        t.loss_ratio() * 100.0,
        t.rx_pps() / 1e6,
        t.rx_gbps(),
        t.seconds
    )
}

/// Everything the per-size runs share.
struct Ctx<'a> {
    cli: &'a Cli,
    io: Io,
    spec: FlowSpec,
    walk: FlowWalk,
    peer: Option<Peer>,
    builder: Option<PoolBuilder>,
    pool: Pool,
    sent_at: Vec<u64>,
    epoch: u16,
    all_received: bool,
    /// A link went down during a trial (the DUT stopped): results after it are void.
    link_down: bool,
    t0: StdInstant,
}

impl Ctx<'_> {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.t0.elapsed().as_nanos() as u64)
    }

    fn next_epoch(&mut self) -> u16 {
        self.epoch = self.epoch.wrapping_add(1).max(1);
        self.epoch
    }

    /// Makes the pool for a decrypt trial of `count` frames (capped by the pool limits).
    fn fill(&mut self, templates: &[Template], count: u64, per_flow: usize, epoch: u16) {
        let (Some(b), Some(peer)) = (self.builder.as_mut(), self.peer.as_mut()) else {
            return;
        };
        let count = count
            .min(self.cli.pool_packets)
            .min(self.sent_at.len() as u64) as usize;
        let now = Instant::from_nanos(self.t0.elapsed().as_nanos() as u64);
        let st = b.fill(
            peer,
            &mut self.pool,
            templates,
            count,
            self.cli.pool_mb << 20,
            seq_of(epoch, 0),
            per_flow,
            now,
        );
        if st.refused > 0 {
            eprintln!(
                "pktgen: sealing refused {} of {} frames (see the peer's drop counters)",
                st.refused,
                st.made + st.refused
            );
        }
        self.sent_at[..self.pool.len()].fill(0);
    }

    /// One trial from the right source with the right receive mode.
    fn run(
        &mut self,
        templates: &[Template],
        spec: TrialSpec,
        per_flow: usize,
        every: u32,
    ) -> TrialResult {
        let mut source = match self.cli.mode {
            Mode::SvrDecrypt => Source::Pool {
                pool: &mut self.pool,
                sent_at: &mut self.sent_at,
            },
            _ => Source::Templates {
                templates,
                walk: &mut self.walk,
                per_flow,
            },
        };
        let mut mode = match (self.cli.mode, self.peer.as_mut()) {
            (Mode::SvrEncrypt, Some(peer)) => RxMode::SvrSample { peer, every },
            _ => RxMode::Signature,
        };
        let mut r = trial(&self.io, spec, &mut source, &mut mode);
        for p in [&self.io.tx, &self.io.rx] {
            if !p.link().is_ok_and(|l| l.up) {
                self.link_down = true;
            }
        }
        r.plain_mean = templates.iter().map(|t| t.bytes.len()).sum::<usize>() as f64
            / templates.len().max(1) as f64;
        // Every frame handed to the DUT must come back. Frames the TX ring refused (the DUT
        // did not drain it: on a loaded 2-CPU machine its worker may be descheduled for tens
        // of ms) were never offered to it; they show as sent < offered.
        if r.received != r.sent {
            self.all_received = false;
        }
        r
    }

    /// A trial at `rate_pps` (None: full speed) for `seconds`, sealing its pool first in the
    /// decrypt direction.
    fn measure(
        &mut self,
        templates: &[Template],
        rate_pps: Option<f64>,
        seconds: f64,
        count: Option<u64>,
    ) -> TrialResult {
        let epoch = self.next_epoch();
        if self.cli.mode == Mode::SvrDecrypt {
            let want = match rate_pps {
                Some(r) => (r * seconds * 1.02) as u64 + 64,
                None => u64::MAX,
            };
            self.fill(templates, want.min(count.unwrap_or(u64::MAX)), 1, epoch);
        }
        let spec = TrialSpec {
            rate_pps,
            seconds,
            backpressure: rate_pps.is_none(),
            epoch,
            max_frames: count,
            min_burst: self.cli.tx_burst,
        };
        self.run(templates, spec, 1, self.cli.sample)
    }

    /// Opens the SVR sessions: `warmup_per_flow` small frames per flow, slowly.
    fn warmup(&mut self) -> Result<(), String> {
        let per_flow = self.cli.warmup_per_flow.max(1) as usize;
        let frames = self.spec.flows as u64 * per_flow as u64;
        let v4 = self.spec.src.is_ipv4();
        let small = SizeMix::parse("64", v4, self.spec.proto)?;
        let templates: Vec<Template> = small
            .pattern
            .iter()
            .map(|&l| Template::new(&self.spec, l))
            .collect();
        let rate = self.cli.warmup_rate * 1e6;
        let epoch = self.next_epoch();
        if self.cli.mode == Mode::SvrDecrypt {
            self.fill(&templates, frames, per_flow, epoch);
        }
        // Back-pressure: the DUT's worker may start polling a moment after the link is up,
        // and every session must see its first frames.
        let spec = TrialSpec {
            rate_pps: Some(rate),
            seconds: frames as f64 / rate + 2.0,
            backpressure: true,
            epoch,
            max_frames: Some(frames),
            min_burst: 1,
        };
        let r = self.run(&templates, spec, per_flow, 1);
        eprintln!("{}", trial_line("warm-up", &r));
        if self.cli.json {
            println!("{{\"warmup\":{}}}", trial_json(&r));
        }
        // The pool restarts from flow 0 for the measured frames, as the template walk does.
        self.walk = FlowWalk::new(&self.spec);
        if let Some(b) = self.builder.as_mut() {
            b.walk = FlowWalk::new(&self.spec);
        }
        if r.received < r.offered {
            eprintln!(
                "pktgen: warning: warm-up lost {} of {} frames; some sessions may not be open",
                r.lost(),
                r.offered
            );
        }
        Ok(())
    }

    /// Binary search, from `hi` down, of the highest rate losing at most `tolerance` of the
    /// offered frames, above `floor` (a rate known to pass, with its trial: the result when
    /// nothing higher passes); its trials go into `trials` (JSON) tagged `tag`.
    #[allow(clippy::too_many_arguments)]
    fn search_rate(
        &mut self,
        templates: &[Template],
        mix: &SizeMix,
        mut hi: f64,
        floor: Option<(f64, TrialResult)>,
        tolerance: f64,
        tag: &str,
        trials: &mut Vec<String>,
        limited: &mut bool,
    ) -> Option<(f64, TrialResult)> {
        let cli = self.cli;
        let started = StdInstant::now();
        let mut lo = floor.as_ref().map_or(0.0, |f| f.0);
        let mut r = hi;
        let mut found = floor;
        for step in 0..cli.search_steps {
            if self.link_down {
                break;
            }
            if started.elapsed().as_secs_f64() > cli.search_budget {
                eprintln!("pktgen: search budget of {} s used up", cli.search_budget);
                break;
            }
            let t = self.measure(templates, Some(r), cli.trial, None);
            *limited |= t.offered_pps() < 0.98 * r;
            let pass = t.loss_ratio() <= tolerance && t.offered > 0;
            let label = format!(
                "size {} {tag} {} at {:.4} Mpps {}",
                mix.label,
                step + 1,
                r / 1e6,
                if pass { "PASS" } else { "fail" }
            );
            eprintln!("{}", trial_line(&label, &t));
            trials.push(format!(
                "{{\"search\":\"{tag}\",\"rate_mpps\":{:.4},\"pass\":{},\"trial\":{}}}",
                r / 1e6,
                pass,
                trial_json(&t)
            ));
            if pass {
                lo = r;
                found = Some((r, t));
                if step == 0 {
                    break;
                }
            } else {
                hi = r;
            }
            if (hi - lo) / hi < 0.02 {
                break;
            }
            r = (lo + hi) / 2.0;
        }
        found
    }

    /// The main trial, then the no-drop search (and the partial-drop one), for one size.
    fn size_run(&mut self, mix: &SizeMix) -> String {
        let templates: Vec<Template> = mix
            .pattern
            .iter()
            .map(|&l| Template::new(&self.spec, l))
            .collect();
        let cli = self.cli;
        let rate = (cli.rate > 0.0).then_some(cli.rate * 1e6);
        let main = self.measure(&templates, rate, cli.duration, cli.count);
        eprintln!("{}", trial_line(&format!("size {} main", mix.label), &main));
        let mut search = Vec::new();
        let mut ndr: Option<(f64, TrialResult)> = None;
        let mut pdr: Option<(f64, TrialResult)> = None;
        let mut limited = false;
        if cli.search {
            let start = main.rx_pps().max(1.0);
            ndr = self.search_rate(
                &templates,
                mix,
                start,
                None,
                cli.loss_tolerance,
                "search",
                &mut search,
                &mut limited,
            );
            if cli.pdr_tolerance > 0.0 {
                // A no-drop rate passes any tolerance: the PDR is searched above it.
                pdr = self.search_rate(
                    &templates,
                    mix,
                    start,
                    ndr.clone(),
                    cli.pdr_tolerance,
                    "pdr-search",
                    &mut search,
                    &mut limited,
                );
            }
        }
        let rate_json = |found: &Option<(f64, TrialResult)>| match found {
            Some((r, t)) => format!(
                "{{\"rate_mpps\":{:.4},\"gbps\":{:.4},\"trial\":{}}}",
                r / 1e6,
                t.rx_gbps(),
                trial_json(t)
            ),
            None => "null".into(),
        };
        let ndr_json = rate_json(&ndr);
        let pdr_json = rate_json(&pdr);
        if cli.search {
            match &ndr {
                Some((r, t)) => eprintln!(
                    "size {}: no-drop rate {:.3} Mpps ({:.3} Gbps)",
                    mix.label,
                    r / 1e6,
                    t.rx_gbps()
                ),
                None => eprintln!("size {}: no rate without loss found", mix.label),
            }
        }
        format!(
            "{{\"mode\":\"{}\",\"size\":\"{}\",\"frame_mean\":{:.1},\"flows\":{},\"ip\":{},\"proto\":\"{}\",\"main\":{},\"ndr\":{},\"pdr\":{},\"search\":[{}],\"generator_limited\":{}}}",
            match cli.mode {
                Mode::Plain => "plain",
                Mode::SvrEncrypt => "svr-encrypt",
                Mode::SvrDecrypt => "svr-decrypt",
            },
            mix.label,
            mix.mean(),
            self.spec.flows,
            if self.spec.src.is_ipv4() { 4 } else { 6 },
            match self.spec.proto {
                Proto::Udp => "udp",
                Proto::TcpSyn => "tcp-syn",
            },
            trial_json(&main),
            ndr_json,
            pdr_json,
            search.join(","),
            limited
        )
    }
}

fn wait_link(ports: &[&Port], timeout: f64) -> Result<(), String> {
    let until = StdInstant::now() + Duration::from_secs_f64(timeout);
    loop {
        if ports.iter().all(|p| p.link().is_ok_and(|l| l.up)) {
            return Ok(());
        }
        if StdInstant::now() >= until {
            return Err(format!(
                "links not up after {timeout} s (is the DUT running?)"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn real_main(cli: &Cli) -> Result<bool, String> {
    if cli.src_ip.is_ipv4() != cli.dst_ip.is_ipv4() {
        return Err("--src-ip and --dst-ip must be of one family".into());
    }
    let proto = match cli.proto {
        ProtoArg::Udp => Proto::Udp,
        ProtoArg::TcpSyn => Proto::TcpSyn,
    };
    if cli.flows == 0 || cli.flows > u64::from(u32::MAX) {
        return Err("--flows: 1 to 4294967295".into());
    }
    let v4 = cli.src_ip.is_ipv4();
    let mixes = cli
        .size
        .split(',')
        .map(|s| SizeMix::parse(s.trim(), v4, proto))
        .collect::<Result<Vec<_>, _>>()?;
    let peer = match cli.mode {
        Mode::Plain => None,
        _ => {
            let path = cli
                .svr_config
                .as_ref()
                .ok_or("--svr-config is needed in the svr-* modes")?;
            let max = u32::try_from(cli.flows.saturating_mul(2).max(1024)).unwrap_or(u32::MAX);
            Some(peer_from_config(path, &cli.svr_router, max)?)
        }
    };

    let eal = Eal::init(&eal_args(cli)).map_err(|e| e.to_string())?;
    let tx_pool = Mempool::pktmbuf("pktgen_tx", cli.mbufs, 256, DEFAULT_DATA_ROOM, SOCKET_ANY)
        .map_err(|e| e.to_string())?;
    let rx_pool = Mempool::pktmbuf("pktgen_rx", cli.mbufs, 256, DEFAULT_DATA_ROOM, SOCKET_ANY)
        .map_err(|e| e.to_string())?;
    let tx = open_port(&cli.tx_dev, &rx_pool)?;
    let rx = match &cli.rx_dev {
        Some(d) if d != &cli.tx_dev => open_port(d, &rx_pool)?,
        _ => tx.clone(),
    };
    eprintln!(
        "pktgen: tx {} ({}), rx {} ({}), waiting for links",
        dev_name(&cli.tx_dev),
        fmt_mac(tx.mac_addr().unwrap_or_default()),
        dev_name(cli.rx_dev.as_deref().unwrap_or(&cli.tx_dev)),
        fmt_mac(rx.mac_addr().unwrap_or_default())
    );
    wait_link(&[&tx, &rx], cli.link_timeout)?;
    let src_mac = tx.mac_addr().map_err(|e| e.to_string())?;
    let spec = FlowSpec {
        src_mac,
        dst_mac: cli.dst_mac.0,
        src: cli.src_ip,
        dst: cli.dst_ip,
        sport: cli.sport,
        ports_per_ip: cli.ports_per_ip,
        flows: cli.flows as u32,
        proto,
    };
    let decrypt = cli.mode == Mode::SvrDecrypt;
    let pool_cap = if decrypt {
        cli.pool_packets
            .max(cli.flows * u64::from(cli.warmup_per_flow))
    } else {
        0
    };
    let mut ctx = Ctx {
        cli,
        io: Io {
            tx,
            rx,
            pool: tx_pool,
            hz: eal.tsc_hz(),
            idle_sleep_us: cli.idle_sleep_us,
        },
        walk: FlowWalk::new(&spec),
        builder: decrypt.then(|| PoolBuilder::new(&spec, cli.dst_mac.0, src_mac)),
        spec,
        peer,
        pool: Pool::default(),
        sent_at: vec![0; pool_cap as usize],
        epoch: 0,
        all_received: true,
        link_down: false,
        t0: StdInstant::now(),
    };
    let _ = ctx.now();
    if cli.mode != Mode::Plain || cli.warmup {
        if cli.warmup_delay > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(cli.warmup_delay));
        }
        ctx.warmup()?;
    }
    for mix in &mixes {
        let line = ctx.size_run(mix);
        if ctx.link_down {
            return Err(format!(
                "size {}: a link went down during the run (did the DUT stop?); results void",
                mix.label
            ));
        }
        if cli.json {
            println!("{line}");
        }
    }
    if cli.expect_all && !ctx.all_received {
        eprintln!("pktgen: FAIL: some frames sent were not received");
    }
    eprintln!("pktgen: done");
    if cli.linger > 0.0 {
        // Keep the links up until the DUT has been stopped (or the time is up): some DUTs do
        // not take their memif peer vanishing under them well.
        std::thread::sleep(Duration::from_secs_f64(cli.linger));
    }
    if let Some(p) = &ctx.peer {
        let c = &p.worker.counters;
        let drops: Vec<String> = c
            .drops
            .iter()
            .filter(|&(_, n)| n > 0)
            .map(|(name, n)| format!("{name}={n}"))
            .collect();
        if !drops.is_empty() {
            eprintln!("pktgen: peer-side SVR drops: {}", drops.join(" "));
        }
    }
    Ok(ctx.all_received)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(&cli) {
        Ok(all) => {
            if cli.expect_all && !all {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("pktgen: error: {e}");
            ExitCode::from(2)
        }
    }
}
