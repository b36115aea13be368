//! Packet templates and the flow walk: everything a packet needs except the bytes that change
//! per packet is built once; per packet we copy a template and patch the flow's source address
//! and port, the sequence number and the TSC, fixing the checksums incrementally.
//!
//! The 16-byte **signature** at the start of the L4 payload is `seq: u64 BE ‖ tsc: u64 BE`.
//! `seq` carries the trial epoch in its top 16 bits (see [`seq_of`]).

use std::net::IpAddr;

/// Bytes of the signature (sequence + TSC) at the start of the L4 payload.
pub const SIG_LEN: usize = 16;
/// Ethernet header.
pub const ETH_LEN: usize = 14;
/// The UDP destination port of generated traffic (the TCP one too); receivers match on it.
pub const DST_PORT: u16 = 5001;
/// Bits of `seq` below the epoch.
pub const EPOCH_SHIFT: u32 = 48;

/// Transport of the generated flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// UDP datagrams.
    Udp,
    /// TCP SYN segments (the signature rides as SYN data).
    TcpSyn,
}

impl Proto {
    /// IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Udp => 17,
            Proto::TcpSyn => 6,
        }
    }
    /// L4 header length.
    pub fn header_len(self) -> usize {
        match self {
            Proto::Udp => 8,
            Proto::TcpSyn => 20,
        }
    }
}

/// Smallest frame (no FCS) that holds the headers and the signature.
pub fn min_frame(v4: bool, proto: Proto) -> usize {
    ETH_LEN + if v4 { 20 } else { 40 } + proto.header_len() + SIG_LEN
}

/// The frame sizes of one "size" argument: a fixed size, or IMIX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeMix {
    /// The label for reports (`64`, `imix`).
    pub label: String,
    /// Sizes sent in this order, round robin.
    pub pattern: Vec<usize>,
}

/// IMIX 7:4:1 of 64, 594 and 1400 B: the classic simple IMIX with its largest size lowered
/// from 1518 to 1400 B so that the SVR overhead still fits a 1500-byte WAN MTU. The 12 slots
/// are interleaved rather than grouped.
pub const IMIX: [usize; 12] = [64, 594, 64, 64, 594, 64, 1400, 64, 594, 64, 594, 64];

impl SizeMix {
    /// Parses `64`, `1400` or `imix`; sizes below [`min_frame`] are raised to it.
    pub fn parse(s: &str, v4: bool, proto: Proto) -> Result<SizeMix, String> {
        let min = min_frame(v4, proto);
        let fix = |n: usize| n.max(min);
        if s.eq_ignore_ascii_case("imix") {
            return Ok(SizeMix {
                label: "imix".into(),
                pattern: IMIX.iter().map(|&n| fix(n)).collect(),
            });
        }
        let n: usize = s
            .parse()
            .map_err(|_| format!("size {s:?}: a frame length in bytes or `imix`"))?;
        if !(60..=9000).contains(&n) {
            return Err(format!("size {n}: 60 to 9000 bytes"));
        }
        Ok(SizeMix {
            label: s.into(),
            pattern: vec![fix(n)],
        })
    }

    /// Mean frame length of the pattern.
    pub fn mean(&self) -> f64 {
        self.pattern.iter().sum::<usize>() as f64 / self.pattern.len().max(1) as f64
    }
}

/// What every packet of a run has in common.
#[derive(Debug, Clone)]
pub struct FlowSpec {
    /// Source MAC (the generator's port).
    pub src_mac: [u8; 6],
    /// Destination MAC (the device under test).
    pub dst_mac: [u8; 6],
    /// Source address of flow 0; flow `i` uses `src + i / ports_per_ip`.
    pub src: IpAddr,
    /// Destination address (the same for every flow).
    pub dst: IpAddr,
    /// First source port; flow `i` uses `sport + i % ports_per_ip`.
    pub sport: u16,
    /// Source ports per source address.
    pub ports_per_ip: u32,
    /// Number of flows.
    pub flows: u32,
    /// UDP or TCP SYN.
    pub proto: Proto,
}

/// One frame size, ready to be copied.
#[derive(Debug, Clone)]
pub struct Template {
    /// The whole frame with zero source address, source port, checksums and signature.
    pub bytes: Vec<u8>,
    /// Offset of the L4 header.
    pub l4: usize,
    /// Offset of the L4 checksum field.
    pub l4_csum: usize,
    /// One's-complement partial sum of the pseudo header and L4 segment of the template.
    pub l4_base: u32,
    /// Partial sum of the IPv4 header of the template (0 for IPv6).
    pub ip_base: u32,
}

/// Adds the big-endian 16-bit words of `b` (even length) to a partial sum.
#[inline]
pub fn sum_words(mut acc: u32, b: &[u8]) -> u32 {
    let mut it = b.chunks_exact(2);
    for w in &mut it {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([w[0], w[1]])));
    }
    if let [last] = it.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    fold(acc) as u32
}

/// Folds a partial sum to 16 bits (not inverted).
#[inline]
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

fn ip_bytes(a: IpAddr) -> ([u8; 16], usize) {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(v) => {
            b[..4].copy_from_slice(&v.octets());
            (b, 4)
        }
        IpAddr::V6(v) => (v.octets(), 16),
    }
}

impl Template {
    /// The frame of `len` bytes for `spec` (`len` at least [`min_frame`]).
    pub fn new(spec: &FlowSpec, len: usize) -> Template {
        let v4 = spec.src.is_ipv4();
        let ipl = if v4 { 20 } else { 40 };
        let l4 = ETH_LEN + ipl;
        let l4_len = len - l4;
        let mut f = vec![0u8; len];
        f[..6].copy_from_slice(&spec.dst_mac);
        f[6..12].copy_from_slice(&spec.src_mac);
        let proto = spec.proto.number();
        let (dst, dn) = ip_bytes(spec.dst);
        if v4 {
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f[14] = 0x45;
            f[16..18].copy_from_slice(&((len - ETH_LEN) as u16).to_be_bytes());
            f[20] = 0x40; // DF
            f[22] = 64;
            f[23] = proto;
            f[30..34].copy_from_slice(&dst[..dn]);
        } else {
            f[12..14].copy_from_slice(&[0x86, 0xdd]);
            f[14] = 0x60;
            f[18..20].copy_from_slice(&(l4_len as u16).to_be_bytes());
            f[20] = proto;
            f[21] = 64;
            f[38..54].copy_from_slice(&dst[..dn]);
        }
        f[l4 + 2..l4 + 4].copy_from_slice(&DST_PORT.to_be_bytes());
        let l4_csum = match spec.proto {
            Proto::Udp => {
                f[l4 + 4..l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
                l4 + 6
            }
            Proto::TcpSyn => {
                f[l4 + 4..l4 + 8].copy_from_slice(&0x1000_0000u32.to_be_bytes());
                f[l4 + 12] = 5 << 4;
                f[l4 + 13] = 0x02; // SYN
                f[l4 + 14..l4 + 16].copy_from_slice(&65535u16.to_be_bytes());
                l4 + 16
            }
        };
        // Payload after the signature: a fixed pattern, so that checksums and ciphers see
        // ordinary bytes rather than zeros.
        for (i, b) in f[l4 + spec.proto.header_len() + SIG_LEN..]
            .iter_mut()
            .enumerate()
        {
            *b = i as u8;
        }
        // Pseudo header without the source address: destination, protocol, length.
        let mut l4_base = sum_words(0, &dst[..dn]);
        l4_base = l4_base.wrapping_add(u32::from(proto));
        l4_base = l4_base.wrapping_add(l4_len as u32);
        l4_base = u32::from(fold(l4_base));
        l4_base = sum_words(l4_base, &f[l4..]);
        let ip_base = if v4 { sum_words(0, &f[14..34]) } else { 0 };
        Template {
            bytes: f,
            l4,
            l4_csum,
            l4_base,
            ip_base,
        }
    }
}

/// The source address and port of flow `index` (what [`FlowWalk`] writes for it).
#[cfg(test)]
pub fn flow_addr(spec: &FlowSpec, index: u32) -> (IpAddr, u16) {
    let ppi = spec.ports_per_ip.max(1);
    let ip_off = index / ppi;
    let port = spec.sport.wrapping_add((index % ppi) as u16);
    let ip = match spec.src {
        IpAddr::V4(a) => IpAddr::V4(u32::from(a).wrapping_add(ip_off).into()),
        IpAddr::V6(a) => IpAddr::V6(u128::from(a).wrapping_add(u128::from(ip_off)).into()),
    };
    (ip, port)
}

/// Walks the flows round robin, keeping the current source address bytes and port so that a
/// packet costs no division.
#[derive(Debug, Clone)]
pub struct FlowWalk {
    spec_src: IpAddr,
    ppi: u32,
    flows: u32,
    sport: u16,
    index: u32,
    port_off: u32,
    src: [u8; 16],
    src_len: usize,
    /// Partial sum of the current source address.
    src_sum: u32,
}

impl FlowWalk {
    /// Starts at flow 0.
    pub fn new(spec: &FlowSpec) -> FlowWalk {
        let mut w = FlowWalk {
            spec_src: spec.src,
            ppi: spec.ports_per_ip.max(1),
            flows: spec.flows.max(1),
            sport: spec.sport,
            index: 0,
            port_off: 0,
            src: [0; 16],
            src_len: 0,
            src_sum: 0,
        };
        w.set_ip(0);
        w
    }

    fn set_ip(&mut self, ip_off: u32) {
        let ip = match self.spec_src {
            IpAddr::V4(a) => IpAddr::V4(u32::from(a).wrapping_add(ip_off).into()),
            IpAddr::V6(a) => IpAddr::V6(u128::from(a).wrapping_add(u128::from(ip_off)).into()),
        };
        let (b, n) = ip_bytes(ip);
        self.src = b;
        self.src_len = n;
        self.src_sum = sum_words(0, &b[..n]);
    }

    /// The current flow index.
    #[cfg(test)]
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Moves to the next flow (wrapping to flow 0 after the last).
    #[inline]
    pub fn advance(&mut self) {
        self.index += 1;
        self.port_off += 1;
        if self.index >= self.flows {
            self.index = 0;
            self.port_off = 0;
            self.set_ip(0);
        } else if self.port_off >= self.ppi {
            self.port_off = 0;
            self.set_ip(self.index / self.ppi);
        }
    }

    /// Writes the current flow, `seq` and `tsc` into `frame`, a copy of `t`, and fixes the
    /// checksums.
    #[inline]
    pub fn patch(&self, t: &Template, frame: &mut [u8], seq: u64, tsc: u64) {
        let sport = self.sport.wrapping_add(self.port_off as u16);
        let src = &self.src[..self.src_len];
        if self.src_len == 4 {
            frame[26..30].copy_from_slice(src);
            let c = !fold(t.ip_base + self.src_sum);
            frame[24..26].copy_from_slice(&c.to_be_bytes());
        } else {
            frame[22..38].copy_from_slice(src);
        }
        let l4 = t.l4;
        frame[l4..l4 + 2].copy_from_slice(&sport.to_be_bytes());
        let sig = l4 + if t.l4_csum == l4 + 6 { 8 } else { 20 };
        frame[sig..sig + 8].copy_from_slice(&seq.to_be_bytes());
        frame[sig + 8..sig + 16].copy_from_slice(&tsc.to_be_bytes());
        let mut acc = t.l4_base + self.src_sum + u32::from(sport);
        acc = sum_words(acc, &frame[sig..sig + SIG_LEN]);
        let mut c = !fold(acc);
        if c == 0 && t.l4_csum == l4 + 6 {
            c = 0xffff; // UDP: 0 means "no checksum"
        }
        frame[t.l4_csum..t.l4_csum + 2].copy_from_slice(&c.to_be_bytes());
    }
}

/// `seq` with the trial `epoch` in its top bits.
#[inline]
pub fn seq_of(epoch: u16, n: u64) -> u64 {
    (u64::from(epoch) << EPOCH_SHIFT) | (n & ((1 << EPOCH_SHIFT) - 1))
}

/// The signature of a received frame of ours (Ethernet + IPv4/IPv6 + UDP/TCP to
/// [`DST_PORT`]): `(seq, tsc)`, or `None` for anything else.
#[inline]
pub fn read_signature(frame: &[u8]) -> Option<(u64, u64)> {
    let (proto, l4) = match frame.get(12..14)? {
        [0x08, 0x00] => {
            let ihl = usize::from(*frame.get(14)? & 0x0f) * 4;
            (*frame.get(23)?, ETH_LEN + ihl)
        }
        [0x86, 0xdd] => (*frame.get(20)?, ETH_LEN + 40),
        _ => return None,
    };
    let hl = match proto {
        17 => 8,
        6 => usize::from(*frame.get(l4 + 12)? >> 4) * 4,
        _ => return None,
    };
    if frame.get(l4 + 2..l4 + 4)? != DST_PORT.to_be_bytes() {
        return None;
    }
    let s = frame.get(l4 + hl..l4 + hl + SIG_LEN)?;
    let seq = u64::from_be_bytes(s[..8].try_into().ok()?);
    let tsc = u64::from_be_bytes(s[8..].try_into().ok()?);
    Some((seq, tsc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(src: &str, dst: &str, proto: Proto) -> FlowSpec {
        FlowSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            sport: 1024,
            ports_per_ip: 3,
            flows: 7,
            proto,
        }
    }

    /// Full checksum of a frame, computed from scratch (the independent check).
    fn verify(frame: &[u8]) {
        let v4 = frame[12..14] == [0x08, 0x00];
        let (l4, proto, src, dst) = if v4 {
            assert_eq!(fold(sum_words(0, &frame[14..34])), 0xffff, "IPv4 checksum");
            (34, frame[23], &frame[26..30], &frame[30..34])
        } else {
            (54, frame[20], &frame[22..38], &frame[38..54])
        };
        let mut acc = sum_words(0, src);
        acc = sum_words(acc, dst);
        acc += u32::from(proto) + (frame.len() - l4) as u32;
        acc = sum_words(acc, &frame[l4..]);
        assert_eq!(fold(acc), 0xffff, "L4 checksum");
    }

    #[test]
    fn patched_frames_have_valid_checksums_and_signatures() {
        for (s, d) in [("10.1.1.1", "10.2.0.2"), ("fd00:1::1:1", "fd00:2::2")] {
            for proto in [Proto::Udp, Proto::TcpSyn] {
                let sp = spec(s, d, proto);
                for size in ["64", "512", "1400", "imix"] {
                    let mix = SizeMix::parse(size, sp.src.is_ipv4(), proto).unwrap();
                    let mut w = FlowWalk::new(&sp);
                    for n in 0..20u64 {
                        let len = mix.pattern[n as usize % mix.pattern.len()];
                        let t = Template::new(&sp, len);
                        let mut f = t.bytes.clone();
                        let (ip, port) = flow_addr(&sp, w.index());
                        w.patch(&t, &mut f, seq_of(3, n), 0xdead_beef_0000 + n);
                        verify(&f);
                        assert_eq!(f.len(), len);
                        assert_eq!(
                            read_signature(&f),
                            Some((seq_of(3, n), 0xdead_beef_0000 + n))
                        );
                        let got_port = u16::from_be_bytes([f[t.l4], f[t.l4 + 1]]);
                        assert_eq!(got_port, port);
                        let got_ip: IpAddr = if sp.src.is_ipv4() {
                            <[u8; 4]>::try_from(&f[26..30]).unwrap().into()
                        } else {
                            <[u8; 16]>::try_from(&f[22..38]).unwrap().into()
                        };
                        assert_eq!(got_ip, ip);
                        w.advance();
                    }
                }
            }
        }
    }

    #[test]
    fn flows_wrap_and_spread_over_addresses() {
        let sp = spec("10.1.1.1", "10.2.0.2", Proto::Udp);
        assert_eq!(flow_addr(&sp, 0), ("10.1.1.1".parse().unwrap(), 1024));
        assert_eq!(flow_addr(&sp, 4), ("10.1.1.2".parse().unwrap(), 1025));
        let mut w = FlowWalk::new(&sp);
        for _ in 0..7 {
            w.advance();
        }
        assert_eq!(w.index(), 0);
    }

    #[test]
    fn sizes() {
        assert_eq!(
            SizeMix::parse("64", true, Proto::Udp).unwrap().pattern,
            [64]
        );
        assert_eq!(
            SizeMix::parse("64", false, Proto::Udp).unwrap().pattern,
            [78]
        );
        assert_eq!(
            SizeMix::parse("64", true, Proto::TcpSyn).unwrap().pattern,
            [70]
        );
        let imix = SizeMix::parse("imix", true, Proto::Udp).unwrap();
        assert!((imix.mean() - 4224.0 / 12.0).abs() < 1e-9);
        assert!(SizeMix::parse("59", true, Proto::Udp).is_err());
        assert!(SizeMix::parse("big", true, Proto::Udp).is_err());
    }
}
