//! The conductor at scale: `N` simulated routers (light clients in this process) against
//! the real `svr-conductor` binary on 127.0.0.1 (BENCHMARKS.md, "The conductor").
//!
//! 1. Starts `svr-conductor serve` with a fresh authority (root and intermediate CA) and an
//!    empty state directory, and reads its resident memory (`VmRSS` of /proc/PID/status).
//! 2. Applies a document of `N` routers (in pairs that peer, one LAN service each) over the
//!    admin socket, and makes `N` one-time tokens over it.
//! 3. Makes `N` Ed25519 keys and CSRs (what svrd's bootstrap makes; not timed), then enrolls
//!    every router (`POST /v1/enroll`, TLS 1.3) from `--enroll-threads` threads. Each router
//!    connects from its own loopback address (127.1.0.0 + i): the conductor rate-limits
//!    enrollment per source address, and real routers have their own addresses.
//! 4. Opens one long poll per router (`GET /v1/config?after=1`, mutual TLS with the router's
//!    issued certificate), all held open at once; the answers are read by one epoll thread,
//!    which stamps each with the time it was complete.
//! 5. Applies a second document that changes every router's part (the path of the trusted
//!    CA certificate) and measures, per router, the time from the start of `apply` to the
//!    complete answer carrying revision 2 and the new path: p50, p99, max.
//!
//! Output: one `bench=conductor key=value ...` line on stdout; progress on stderr.
//!
//! `--connect ADDR` (repeatable) with `--state DIR --root PEM --pid PID` targets conductors
//! already running instead of starting one (routers are spread over the addresses in turn;
//! tokens and applies go to the admin socket in `DIR`; memory is read from each `--pid`):
//! the shape of the planned run "two replicas on a three-member etcd".
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrIn};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use svr_conductor::admin::{AdminRequest, AdminResponse};
use svr_conductor::client::{ConfigResponse, EnrollResponse};
use svr_conductor::EnrollRequest;
use svr_keymgmt::pki::{generate_authority, Validity};

const SERVER_NAME: &str = "conductor.bench.svr";
/// The long poll's wait (the conductor's maximum): every watch must be open and the apply
/// answered within it.
const WAIT_S: u64 = 60;

struct Opts {
    routers: usize,
    enroll_threads: usize,
    connect_threads: usize,
    bin: PathBuf,
    connect: Vec<SocketAddr>,
    state: Option<PathBuf>,
    root: Option<PathBuf>,
    pids: Vec<u32>,
}

fn usage() -> ! {
    eprintln!(
        "usage: conductor [--routers N] [--enroll-threads T] [--connect-threads T] \
         [--conductor PATH] | [--connect ADDR ... --state DIR --root PEM --pid PID ...]"
    );
    std::process::exit(2)
}

fn opts() -> Opts {
    let mut o = Opts {
        routers: 1000,
        enroll_threads: 8,
        connect_threads: 8,
        bin: PathBuf::from("target/release/svr-conductor"),
        connect: Vec::new(),
        state: None,
        root: None,
        pids: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--routers" => o.routers = v().parse().unwrap_or_else(|_| usage()),
            "--enroll-threads" => o.enroll_threads = v().parse().unwrap_or_else(|_| usage()),
            "--connect-threads" => o.connect_threads = v().parse().unwrap_or_else(|_| usage()),
            "--conductor" => o.bin = v().into(),
            "--connect" => o.connect.push(v().parse().unwrap_or_else(|_| usage())),
            "--state" => o.state = Some(v().into()),
            "--root" => o.root = Some(v().into()),
            "--pid" => o.pids.push(v().parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
    }
    if o.routers == 0 || o.routers > 65_536 * 16 || o.enroll_threads == 0 {
        usage();
    }
    if !o.connect.is_empty() && (o.state.is_none() || o.root.is_none()) {
        usage();
    }
    o
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The conductor process we started, killed at the end (or on a panic).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `VmRSS` (KiB) and `Threads` of a process.
fn proc_status(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("Threads:"))
}

/// Resident memory of all targets, KiB.
fn rss(pids: &[u32]) -> u64 {
    pids.iter().map(|&p| proc_status(p).0).sum()
}

fn threads(pids: &[u32]) -> u64 {
    pids.iter().map(|&p| proc_status(p).1).sum()
}

fn router(i: usize) -> String {
    format!("r{i}")
}

/// The authority document: `n` routers in pairs that peer (r0-r1, r2-r3, ...; an odd last
/// router alone), each with one node, a LAN and a WAN interface and one service.
fn document(n: usize, ca_path: &str) -> String {
    let mut y = String::with_capacity(n * 700);
    y.push_str("authority:\n  name: bench\n  enhanced-security-key-management: true\n");
    y.push_str(&format!(
        "  trusted-ca-certificate: {ca_path}\n  service:\n"
    ));
    let net = |i: usize| (i >> 8 & 0xff, i & 0xff, 10 + (i >> 16));
    for i in 0..n {
        let (b, c, a) = net(i);
        y.push_str(&format!(
            "    - {{name: s{i}, tenant: blue, prefix: [{a}.{b}.{c}.0/24], router: {}}}\n",
            router(i)
        ));
    }
    y.push_str("  router:\n");
    for i in 0..n {
        let (b, c, a) = net(i);
        let peer = i ^ 1;
        y.push_str(&format!(
            "    - name: {r}\n      peering-common-name: {r}.bench.svr\n",
            r = router(i)
        ));
        if peer < n {
            y.push_str(&format!("      peer: [{{router: {}}}]\n", router(peer)));
        }
        y.push_str(&format!(
            "      node:\n        - name: node-1\n          core-map: {{workers: [{{lcore: 1}}]}}\n          \
             pki: {{certificate-chain: /var/lib/svrd/chain.pem, private-key: /var/lib/svrd/key.pem}}\n          \
             device-interface:\n            \
             - {{name: lan, role: lan, vdev: net_null0, address: [{a}.{b}.{c}.1/24]}}\n            \
             - {{name: wan, role: wan, vdev: net_null1, address: [{}.{b}.{c}.1/24]}}\n",
            a + 100
        ));
    }
    y
}

/// One admin command over the socket (no timeout: an apply of 10,000 routers takes a while;
/// the whole run is bounded by the caller's `timeout`).
fn admin(state: &Path, req: &AdminRequest) -> AdminResponse {
    let s = UnixStream::connect(state.join("admin.sock")).expect("admin socket");
    let mut line = serde_json::to_string(req).expect("admin request");
    line.push('\n');
    (&s).write_all(line.as_bytes()).expect("admin write");
    let mut answer = String::new();
    BufReader::new(&s)
        .read_line(&mut answer)
        .expect("admin answer");
    serde_json::from_str(&answer).expect("admin answer JSON")
}

/// Router `i`'s own source address: 127.1.0.0 + i.
fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 1, 0, 0)) + i as u32)
}

/// A TCP connection to `to` from `from` (bind before connect: std cannot).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let SocketAddr::V4(to) = to else {
        return Err(std::io::Error::other("IPv4 conductor addresses only"));
    };
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(std::net::SocketAddrV4::new(from, 0)),
    )?;
    socket::connect(fd.as_raw_fd(), &SockaddrIn::from(to))?;
    Ok(TcpStream::from(fd))
}

#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_config(root_pem: &str, identity: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(c.expect("root PEM")).expect("root");
    }
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots);
    Arc::new(match identity {
        None => b.with_no_client_auth(),
        Some((chain, key)) => {
            let chain = CertificateDer::pem_slice_iter(chain.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("chain PEM");
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key PEM");
            b.with_client_auth_cert(chain, key).expect("client auth")
        }
    })
}

/// One blocking request: (status, body).
fn exchange(
    tls: &Arc<rustls::ClientConfig>,
    from: Ipv4Addr,
    to: SocketAddr,
    method: &str,
    target: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    let tcp = connect_from(from, to).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(SERVER_NAME).expect("server name");
    let conn = rustls::ClientConnection::new(tls.clone(), name).map_err(|e| e.to_string())?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    svr_conductor::http::write_request(&mut s, method, target, &to.to_string(), body)
        .map_err(|e| format!("write: {e}"))?;
    svr_conductor::http::read_response(&mut s).map_err(|e| format!("read: {e}"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[k.clamp(1, sorted.len()) - 1]
}

/// A long poll waiting for its answer.
struct Watch {
    conn: rustls::ClientConnection,
    tcp: TcpStream,
    plain: Vec<u8>,
}

/// What a watch ended with: when, and the answer (or why not).
type Outcome = (Instant, Result<(u16, Vec<u8>), String>);

/// Reads a readable watch; `Some` when its answer is complete (the conductor closes the
/// connection after one answer).
fn pump(w: &mut Watch) -> Option<Result<(u16, Vec<u8>), String>> {
    loop {
        match w.conn.read_tls(&mut w.tcp) {
            Ok(0) => break,
            Ok(_) => {
                if let Err(e) = w.conn.process_new_packets() {
                    return Some(Err(format!("TLS: {e}")));
                }
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match w.conn.reader().read(&mut buf) {
                        Ok(0) => return Some(parse(&w.plain)),
                        Ok(k) => w.plain.extend_from_slice(&buf[..k]),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => return Some(Err(format!("read: {e}"))),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
            Err(e) => return Some(Err(format!("socket: {e}"))),
        }
    }
    // TCP closed without close_notify: take what came.
    Some(parse(&w.plain))
}

fn parse(bytes: &[u8]) -> Result<(u16, Vec<u8>), String> {
    svr_conductor::http::read_response(&mut &bytes[..]).map_err(|e| format!("answer: {e}"))
}

fn main() {
    let o = opts();
    let n = o.routers;
    let dir = std::env::temp_dir().join(format!("svr-conductor-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("work directory");

    // -- the conductor(s)
    let mut server = None;
    let (addrs, pids, state, root_pem) = if o.connect.is_empty() {
        let pems =
            generate_authority("bench", Validity::days_from(unix_now(), 30)).expect("authority");
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).expect("write PEM");
            p
        };
        let root = write("root.pem", &pems.root_cert_pem);
        let ca_cert = write("intermediate.pem", &pems.intermediate_cert_pem);
        let ca_key = write("intermediate.key.pem", &pems.intermediate_key_pem);
        let state = dir.join("state");
        let log = std::fs::File::create(dir.join("conductor.log")).expect("log file");
        let mut child = Command::new(&o.bin)
            .arg("--state")
            .arg(&state)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--server-name",
                SERVER_NAME,
            ])
            .arg("--max-connections")
            .arg((n + 256).to_string())
            .arg("--root")
            .arg(&root)
            .arg("--ca-cert")
            .arg(&ca_cert)
            .arg("--ca-key")
            .arg(&ca_key)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", o.bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let pid = child.id();
        server = Some(Server(child));
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("listening line");
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("conductor said {line:?}"));
        (vec![addr], vec![pid], state, pems.root_cert_pem)
    } else {
        let root = std::fs::read_to_string(o.root.as_ref().expect("--root")).expect("--root");
        (
            o.connect.clone(),
            o.pids.clone(),
            o.state.clone().expect("--state"),
            root,
        )
    };
    std::thread::sleep(Duration::from_millis(300));
    let rss_start = rss(&pids);
    let threads_start = threads(&pids);
    eprintln!("conductor at {addrs:?}, RSS {rss_start} KiB, {threads_start} threads");

    // -- the document and the tokens
    let doc1 = document(n, "/var/lib/svrd/root.pem");
    let t = Instant::now();
    let r = admin(&state, &AdminRequest::Apply { yaml: doc1 });
    assert!(r.ok, "apply 1: {}", r.text);
    let apply1_s = t.elapsed().as_secs_f64();
    let rss_doc = rss(&pids);
    eprintln!("apply of {n} routers: {apply1_s:.2} s, RSS {rss_doc} KiB");
    let t = Instant::now();
    let tokens: Vec<String> = (0..n)
        .map(|i| {
            let r = admin(
                &state,
                &AdminRequest::TokenCreate {
                    router: router(i),
                    ttl: 86_400,
                    readmit: false,
                },
            );
            assert!(r.ok, "token {i}: {}", r.text);
            r.text.lines().next().unwrap_or_default().to_owned()
        })
        .collect();
    let tokens_s = t.elapsed().as_secs_f64();
    eprintln!("{n} tokens: {tokens_s:.2} s");

    // -- keys and CSRs (not timed: each router makes its own)
    let t = Instant::now();
    let csrs: Vec<(String, String)> = std::thread::scope(|s| {
        let parts: Vec<_> = (0..2)
            .map(|k| {
                s.spawn(move || {
                    (k..n)
                        .step_by(2)
                        .map(|i| {
                            let name = format!("{}.bench.svr", router(i));
                            let key =
                                rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
                            let mut p =
                                rcgen::CertificateParams::new(vec![name.clone()]).expect("params");
                            p.distinguished_name = rcgen::DistinguishedName::new();
                            p.distinguished_name.push(rcgen::DnType::CommonName, name);
                            let csr = p.serialize_request(&key).expect("csr").pem().expect("pem");
                            (i, (csr, key.serialize_pem()))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = parts
            .into_iter()
            .flat_map(|h| h.join().expect("keygen"))
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, c)| c).collect()
    });
    eprintln!(
        "{n} Ed25519 keys and CSRs: {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // -- enrollment
    let anon = tls_config(&root_pem, None);
    let next = AtomicUsize::new(0);
    let chains: Vec<Mutex<Option<String>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let lat: Mutex<Vec<f64>> = Mutex::new(Vec::with_capacity(n));
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..o.enroll_threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let req = EnrollRequest {
                    token: zeroize::Zeroizing::new(tokens[i].clone()),
                    router: router(i),
                    node: "node-1".into(),
                    version: svr_conductor::version::OURS.into(),
                    csr: csrs[i].0.clone(),
                };
                let body = serde_json::to_vec(&req).expect("enroll JSON");
                let t1 = Instant::now();
                let r = exchange(
                    &anon,
                    source(i),
                    addrs[i % addrs.len()],
                    "POST",
                    "/v1/enroll",
                    &body,
                );
                let dt = t1.elapsed().as_secs_f64();
                match r {
                    Ok((200, b)) => match serde_json::from_slice::<EnrollResponse>(&b) {
                        Ok(e) => {
                            *chains[i].lock().expect("chain") = Some(e.enrolled.certificate_chain);
                            lat.lock().expect("lat").push(dt);
                        }
                        Err(e) => failures.lock().expect("f").push(format!("{i}: {e}")),
                    },
                    Ok((st, b)) => failures
                        .lock()
                        .expect("f")
                        .push(format!("{i}: {st} {}", String::from_utf8_lossy(&b))),
                    Err(e) => failures.lock().expect("f").push(format!("{i}: {e}")),
                }
            });
        }
    });
    let enroll_s = t.elapsed().as_secs_f64();
    let failures = failures.into_inner().expect("failures");
    let mut lat = lat.into_inner().expect("lat");
    lat.sort_by(f64::total_cmp);
    let enrolled = lat.len();
    let rss_enrolled = rss(&pids);
    eprintln!(
        "enrolled {enrolled}/{n} in {enroll_s:.2} s ({:.0}/s), RSS {rss_enrolled} KiB; {} failed{}",
        enrolled as f64 / enroll_s,
        failures.len(),
        failures
            .first()
            .map(|f| format!(", first: {f}"))
            .unwrap_or_default()
    );

    // -- one long poll per router, all open at once
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).expect("epoll");
    let outcomes: Arc<Mutex<Vec<Option<Outcome>>>> =
        Arc::new(Mutex::new((0..n).map(|_| None).collect()));
    let done = Arc::new(AtomicUsize::new(0));
    // Set by the main thread: give up on the answers still missing.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<(usize, Watch)>();
    let reactor = {
        let outcomes = outcomes.clone();
        let done = done.clone();
        let stop = stop.clone();
        let expected = enrolled;
        std::thread::spawn(move || {
            let mut watches: Vec<Option<Watch>> = (0..n).map(|_| None).collect();
            let mut events = vec![EpollEvent::empty(); 1024];
            let mut open = 0usize;
            let mut registered = 0usize;
            while done.load(Ordering::Relaxed) < expected && !stop.load(Ordering::Relaxed) {
                while let Ok((i, w)) = rx.try_recv() {
                    epoll
                        .add(&w.tcp, EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
                        .expect("epoll add");
                    watches[i] = Some(w);
                    open += 1;
                    registered += 1;
                }
                let k = epoll.wait(&mut events, 20u16).unwrap_or(0);
                let now = Instant::now();
                for ev in &events[..k] {
                    let i = ev.data() as usize;
                    let Some(w) = watches[i].as_mut() else {
                        continue;
                    };
                    if let Some(r) = pump(w) {
                        let _ = epoll.delete(&w.tcp);
                        watches[i] = None;
                        open -= 1;
                        outcomes.lock().expect("outcomes")[i] = Some((now, r));
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            (registered, open)
        })
    };
    let t = Instant::now();
    let next = AtomicUsize::new(0);
    let watch_failures = AtomicUsize::new(0);
    let target = format!("/v1/config?after=1&node=node-1&wait={WAIT_S}");
    std::thread::scope(|s| {
        for _ in 0..o.connect_threads {
            let tx = tx.clone();
            s.spawn(|| {
                let tx = tx;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let Some(chain) = chains[i].lock().expect("chain").clone() else {
                        continue;
                    };
                    let tls = tls_config(&root_pem, Some((&chain, &csrs[i].1)));
                    let to = addrs[i % addrs.len()];
                    let open = || -> Result<Watch, Box<dyn std::error::Error>> {
                        let mut tcp = connect_from(source(i), to)?;
                        let name = ServerName::try_from(SERVER_NAME).expect("name");
                        let mut conn = rustls::ClientConnection::new(tls, name)?;
                        let mut req = Vec::new();
                        svr_conductor::http::write_request(
                            &mut req,
                            "GET",
                            &target,
                            &to.to_string(),
                            b"",
                        )?;
                        conn.writer().write_all(&req)?;
                        // Handshake (the client certificate is checked by the conductor)
                        // and the request, written before the watch goes to the reactor.
                        while conn.is_handshaking() || conn.wants_write() {
                            conn.complete_io(&mut tcp)?;
                        }
                        tcp.set_nonblocking(true)?;
                        Ok(Watch {
                            conn,
                            tcp,
                            plain: Vec::new(),
                        })
                    };
                    match open() {
                        Ok(w) => {
                            let _ = tx.send((i, w));
                        }
                        Err(e) => {
                            if watch_failures.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("watch {i}: {e}");
                            }
                        }
                    }
                }
            });
        }
    });
    drop(tx);
    let open_s = t.elapsed().as_secs_f64();
    // Wait until the conductor holds them: one thread per waiting long poll.
    let want = threads_start + enrolled as u64 - watch_failures.load(Ordering::Relaxed) as u64;
    let t2 = Instant::now();
    while threads(&pids) < want && t2.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let (rss_watching, threads_watching) = (rss(&pids), threads(&pids));
    let early = done.load(Ordering::Relaxed);
    eprintln!(
        "{} watches opened in {open_s:.2} s, conductor: {threads_watching} threads, RSS {rss_watching} KiB; {early} answered before the apply",
        enrolled - watch_failures.load(Ordering::Relaxed),
    );

    // -- the apply every router must see
    let doc2 = document(n, "/var/lib/svrd/root-2.pem");
    let t0 = Instant::now();
    let r = admin(&state, &AdminRequest::Apply { yaml: doc2 });
    let apply2_s = t0.elapsed().as_secs_f64();
    assert!(r.ok, "apply 2: {}", r.text);
    eprintln!("apply 2 answered after {apply2_s:.2} s");
    let t3 = Instant::now();
    while done.load(Ordering::Relaxed) < enrolled && t3.elapsed() < Duration::from_secs(WAIT_S) {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let (registered, still_open) = reactor.join().expect("reactor");
    let outcomes = std::mem::take(&mut *outcomes.lock().expect("outcomes"));
    let mut reach = Vec::with_capacity(n);
    let mut fanout = Vec::with_capacity(n);
    let answered = t0 + Duration::from_secs_f64(apply2_s);
    let mut wrong = Vec::new();
    for (i, o) in outcomes.into_iter().enumerate() {
        let Some((at, r)) = o else { continue };
        let ok = match &r {
            Ok((200, body)) => serde_json::from_slice::<ConfigResponse>(body)
                .map(|c| c.revision == 2 && c.yaml.contains("root-2.pem"))
                .unwrap_or(false),
            _ => false,
        };
        if ok && at > t0 {
            reach.push(at.duration_since(t0).as_secs_f64());
            fanout.push(at.saturating_duration_since(answered).as_secs_f64());
        } else if wrong.len() < 3 {
            wrong.push(format!(
                "{i}: {:?}",
                r.map(|(s, b)| (
                    s,
                    String::from_utf8_lossy(&b[..b.len().min(120)]).into_owned()
                ))
            ));
        }
    }
    reach.sort_by(f64::total_cmp);
    fanout.sort_by(f64::total_cmp);
    eprintln!(
        "apply reached {}/{n} routers ({registered} watches registered, {still_open} still open){}",
        reach.len(),
        if wrong.is_empty() {
            String::new()
        } else {
            format!("; not reached: {wrong:?}")
        }
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);

    let per_router = |kib: u64| (kib.saturating_sub(rss_start)) as f64 * 1024.0 / n as f64;
    let ms = |s: f64| s * 1e3;
    println!(
        "bench=conductor routers={n} conductors={} enroll_threads={} enrolled={enrolled} enroll_failed={} \
         enroll_s={enroll_s:.2} enroll_per_s={:.0} enroll_p50_ms={:.1} enroll_p99_ms={:.1} \
         tokens_per_s={:.0} apply1_s={apply1_s:.2} apply2_s={apply2_s:.2} \
         watches={} watch_failed={} early_answers={early} reached={} \
         reach_p50_ms={:.0} reach_p99_ms={:.0} reach_max_ms={:.0} \
         after_answer_p50_ms={:.0} after_answer_p99_ms={:.0} after_answer_max_ms={:.0} \
         rss_start_kib={rss_start} rss_doc_kib={rss_doc} rss_enrolled_kib={rss_enrolled} rss_watching_kib={rss_watching} \
         threads_watching={threads_watching} bytes_per_router_doc={:.0} bytes_per_router_enrolled={:.0} bytes_per_router_watching={:.0}",
        addrs.len(),
        o.enroll_threads,
        failures.len(),
        enrolled as f64 / enroll_s,
        ms(percentile(&lat, 50.0)),
        ms(percentile(&lat, 99.0)),
        n as f64 / tokens_s,
        registered,
        watch_failures.load(Ordering::Relaxed),
        reach.len(),
        ms(percentile(&reach, 50.0)),
        ms(percentile(&reach, 99.0)),
        ms(reach.last().copied().unwrap_or(f64::NAN)),
        ms(percentile(&fanout, 50.0)),
        ms(percentile(&fanout, 99.0)),
        ms(fanout.last().copied().unwrap_or(f64::NAN)),
        per_router(rss_doc),
        per_router(rss_enrolled),
        per_router(rss_watching),
    );
}
