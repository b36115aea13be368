//! The generator as the DUT's SVR **peer router**: its SVR state is built from the DUT's own
//! configuration file, seen as the peer (`local-router` replaced by `--svr-router`), with the
//! test-mode metadata keys of that file. It uses the `fastpath::svr_path` code of `svrd`
//! itself:
//!
//! * **decrypt direction**: `ingress::lan_packet` seals the packets the DUT will open. They
//!   are made ahead of a trial into a [`Pool`] (each (session, sequence) can be sent once:
//!   the DUT's replay window refuses a second copy), so the sealing cost never limits the
//!   offered rate;
//! * **encrypt direction**: `egress::wan_packet` opens a sample of what the DUT sent, to read
//!   the signature (and its TSC) the DUT encrypted.
//!
//! The SVR settings and test keys come from `fastpath::svr_path::from_config`, the same
//! translation `svrd` uses.

use std::path::Path;

use dpdk_ffi::Mbuf;
use fastpath::svr_path::{
    from_config, ingress, NoRoom, PacketBuf, SvrShared, SvrWorker, TestBuffer, Verdict,
};
use fastpath::time::Instant;
use svr_config::Config;

use crate::flows::{FlowSpec, FlowWalk, Template};

/// An mbuf seen as a [`PacketBuf`].
pub struct MbufBuf<'a>(pub &'a mut Mbuf);

impl PacketBuf for MbufBuf<'_> {
    fn data(&self) -> &[u8] {
        self.0.data()
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }
    fn headroom(&self) -> usize {
        self.0.headroom()
    }
    fn tailroom(&self) -> usize {
        self.0.tailroom()
    }
    fn prepend(&mut self, n: usize) -> Result<(), NoRoom> {
        self.0.prepend(n).map(|_| ()).map_err(|_| NoRoom)
    }
    fn append(&mut self, n: usize) -> Result<(), NoRoom> {
        self.0.append(n).map(|_| ()).map_err(|_| NoRoom)
    }
    fn adj(&mut self, n: usize) -> Result<(), NoRoom> {
        self.0.adj(n).map_err(|_| NoRoom)
    }
    fn trim(&mut self, n: usize) -> Result<(), NoRoom> {
        self.0.trim(n).map_err(|_| NoRoom)
    }
}

/// The peer router's SVR state and its one worker context.
pub struct Peer {
    /// Shared SVR state (sessions, keys).
    pub shared: SvrShared,
    /// The worker context (CSPRNG, replay windows, counters).
    pub worker: SvrWorker,
}

/// Loads `path` and builds the SVR state of router `router` of it (the generator's role).
pub fn peer_from_config(path: &Path, router: &str, max_sessions: u32) -> Result<Peer, String> {
    let mut cfg = Config::load(path).map_err(|e| e.to_string())?;
    let r = cfg
        .router(router)
        .ok_or_else(|| format!("{}: no router {router:?}", path.display()))?;
    let node = r
        .node
        .first()
        .ok_or_else(|| format!("{}: router {router:?} has no node", path.display()))?
        .name
        .clone();
    cfg.local_router = router.to_owned();
    cfg.local_node = node;
    let shared = build_shared(&cfg, max_sessions)?;
    let worker = SvrWorker::new(&shared, [0x5a; 32]);
    Ok(Peer { shared, worker })
}

fn build_shared(cfg: &Config, max_sessions: u32) -> Result<SvrShared, String> {
    if cfg.authority.enhanced_security_key_management {
        return Err(
            "the generator needs test-key mode (enhanced-security-key-management: false)".into(),
        );
    }
    let mut svr_cfg = from_config::svr_config(cfg)
        .ok_or_else(|| format!("router {} has no SVR peer", cfg.local().0.name))?;
    svr_cfg.max_sessions = svr_cfg.max_sessions.max(max_sessions);
    let shared = SvrShared::new(svr_cfg).map_err(|e| e.to_string())?;
    from_config::install_test_keys(cfg, &shared.keys)?;
    Ok(shared)
}

/// Pre-sealed SVR frames, packed end to end in one buffer, sent in order.
#[derive(Debug, Default)]
pub struct Pool {
    bytes: Vec<u8>,
    /// (offset, length) of each frame.
    frames: Vec<(u32, u16)>,
    next: usize,
}

impl Pool {
    /// Frames in the pool.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// The next frame to send and its index, or `None` when all were sent.
    #[inline]
    pub fn next_frame(&mut self) -> Option<(usize, &[u8])> {
        let i = self.next;
        let &(off, len) = self.frames.get(i)?;
        self.next += 1;
        let off = off as usize;
        Some((i, &self.bytes[off..off + usize::from(len)]))
    }
}

/// What [`PoolBuilder::fill`] made.
#[derive(Debug, Clone, Copy, Default)]
pub struct FillStats {
    /// Frames sealed.
    pub made: usize,
    /// Frames the ingress refused (counted by reason in the worker's counters).
    pub refused: usize,
    /// Seconds it took.
    pub seconds: f64,
}

/// Makes sealed frames: plaintext LAN frames from the templates through the peer's ingress.
pub struct PoolBuilder {
    /// The flows.
    pub walk: FlowWalk,
    /// Destination and source MAC of the sealed (WAN) frames.
    pub wan_macs: ([u8; 6], [u8; 6]),
    scratch: TestBuffer,
}

impl PoolBuilder {
    /// A builder for `spec`'s flows.
    pub fn new(spec: &FlowSpec, wan_dst_mac: [u8; 6], wan_src_mac: [u8; 6]) -> PoolBuilder {
        PoolBuilder {
            walk: FlowWalk::new(spec),
            wan_macs: (wan_dst_mac, wan_src_mac),
            scratch: TestBuffer::with_room(&[], 256, 256 + 2048),
        }
    }

    /// Refills `pool` with `count` frames (fewer if `max_bytes` is reached), sizes from
    /// `templates` round robin; `seq_base` tags the frames (their signature carries
    /// `seq_base + index` and TSC 0: the send time is kept in the sender's table). With
    /// `per_flow` > 1, each flow gets that many frames in a row before the next flow (the
    /// warm-up: the first frames of a session carry metadata).
    #[allow(clippy::too_many_arguments)]
    pub fn fill(
        &mut self,
        peer: &mut Peer,
        pool: &mut Pool,
        templates: &[Template],
        count: usize,
        max_bytes: usize,
        seq_base: u64,
        per_flow: usize,
        now: Instant,
    ) -> FillStats {
        let t0 = std::time::Instant::now();
        pool.bytes.clear();
        pool.frames.clear();
        pool.next = 0;
        let mut st = FillStats::default();
        let mut k = 0usize;
        let mut frame = [0u8; 2048];
        while pool.frames.len() < count && k < count.saturating_mul(2) + 16 {
            let t = &templates[k % templates.len()];
            let n = t.bytes.len();
            if pool.bytes.len() + n + 128 > max_bytes {
                break;
            }
            frame[..n].copy_from_slice(&t.bytes);
            self.walk
                .patch(t, &mut frame[..n], seq_base + pool.frames.len() as u64, 0);
            k += 1;
            if per_flow <= 1 || k % per_flow == 0 {
                self.walk.advance();
            }
            let b = &mut self.scratch;
            reset(b, &frame[..n]);
            match ingress::lan_packet(&peer.shared, &mut peer.worker, b, now) {
                Verdict::Forward { l3_len, .. } => {
                    let out = &mut b.data_mut()[..14 + l3_len];
                    out[..6].copy_from_slice(&self.wan_macs.0);
                    out[6..12].copy_from_slice(&self.wan_macs.1);
                    let off = pool.bytes.len() as u32;
                    pool.bytes.extend_from_slice(out);
                    pool.frames.push((off, out.len() as u16));
                    st.made += 1;
                }
                _ => st.refused += 1,
            }
        }
        st.seconds = t0.elapsed().as_secs_f64();
        st
    }
}

/// Puts `frame` into the scratch buffer at 256 bytes of headroom (TestBuffer keeps its
/// capacity, so nothing is allocated).
fn reset(b: &mut TestBuffer, frame: &[u8]) {
    let len = b.len();
    let _ = b.trim(len);
    let head = b.headroom();
    if head > 256 {
        let _ = b.prepend(head - 256);
        let l = b.len();
        let _ = b.trim(l);
    } else if head < 256 {
        let _ = b.append(256 - head);
        let _ = b.adj(256 - head);
    }
    let _ = b.append(frame.len());
    b.data_mut().copy_from_slice(frame);
}
