//! IP prefixes and the longest-prefix-match route table shared read-only by the workers.
//!
//! [`RouteTable`] is built once from a list of [`Route`]s and never changes; a new
//! configuration builds a new table (and `svrd` swaps the pointer). IPv4 and IPv6 live in
//! separate structures, so a v4 lookup can never match a v6 route or the other way round.
//!
//! The structure is one hash map per prefix length, probed from the longest length present
//! down to the shortest: at most 33 (v4) or 129 (v6) probes, usually a handful, and no
//! allocation per lookup. Correctness first; a DIR-24-8 or trie can replace it behind the same
//! API when `benches/` says so.

use core::fmt;
use core::hash::{BuildHasherDefault, Hash, Hasher};
use core::str::FromStr;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP network: an address and a prefix length, **with all host bits zero**.
///
/// The invariant is enforced, not repaired silently: [`IpPrefix::new`] and `FromStr` reject
/// `10.0.0.1/24` with [`PrefixError::HostBitsSet`] (which names the network the operator
/// probably meant), because a stray host bit in a route is usually a typo for something else.
/// [`IpPrefix::new_masked`] is there for callers that want the network of an interface
/// address. Fields are private so that the invariant holds everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

/// Why text or values are not a valid [`IpPrefix`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// No `/` in the text.
    #[error("{input:?} is not a prefix: expected ADDRESS/LENGTH, like 10.0.0.0/24 or fd00::/64")]
    MissingLength {
        /// The text given.
        input: String,
    },
    /// The part before `/` is not an IPv4 or IPv6 address.
    #[error("{input:?} is not a prefix: {addr:?} is not an IPv4 or IPv6 address")]
    BadAddress {
        /// The text given.
        input: String,
        /// The address part.
        addr: String,
    },
    /// The part after `/` is not a decimal number.
    #[error("{input:?} is not a prefix: length {len:?} is not a number")]
    BadLength {
        /// The text given.
        input: String,
        /// The length part.
        len: String,
    },
    /// The length is longer than the address.
    #[error("prefix {addr}/{len}: length must be at most {max} for this address family")]
    LengthTooLong {
        /// The address.
        addr: IpAddr,
        /// The length given.
        len: u32,
        /// 32 or 128.
        max: u8,
    },
    /// Bits beyond the prefix length are set.
    #[error("prefix {addr}/{len} has host bits set; the network is {network}")]
    HostBitsSet {
        /// The address given.
        addr: IpAddr,
        /// The length given.
        len: u8,
        /// The same prefix with host bits cleared.
        network: IpPrefix,
    },
}

/// Bits in an address of this family.
fn max_len(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `v` with all but the top `len` bits cleared (`len` ≤ 32).
fn mask_v4(v: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        v & (u32::MAX << (32 - u32::from(len)))
    }
}

/// `v` with all but the top `len` bits cleared (`len` ≤ 128).
fn mask_v6(v: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        v & (u128::MAX << (128 - u32::from(len)))
    }
}

fn mask_addr(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(mask_v4(u32::from(a), len))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(mask_v6(u128::from(a), len))),
    }
}

impl IpPrefix {
    /// The prefix `addr/len`; errors if `len` is too long or host bits are set.
    pub fn new(addr: IpAddr, len: u8) -> Result<IpPrefix, PrefixError> {
        let network = Self::new_masked(addr, len)?;
        if network.addr != addr {
            return Err(PrefixError::HostBitsSet { addr, len, network });
        }
        Ok(network)
    }

    /// The network containing `addr` (host bits cleared); errors only if `len` is too long.
    pub fn new_masked(addr: IpAddr, len: u8) -> Result<IpPrefix, PrefixError> {
        let max = max_len(&addr);
        if len > max {
            return Err(PrefixError::LengthTooLong {
                addr,
                len: u32::from(len),
                max,
            });
        }
        Ok(IpPrefix {
            addr: mask_addr(addr, len),
            len,
        })
    }

    /// `0.0.0.0/0`.
    pub const fn default_v4() -> IpPrefix {
        IpPrefix {
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            len: 0,
        }
    }

    /// `::/0`.
    pub const fn default_v6() -> IpPrefix {
        IpPrefix {
            addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            len: 0,
        }
    }

    /// The network address.
    pub const fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    #[allow(clippy::len_without_is_empty)]
    pub const fn len(&self) -> u8 {
        self.len
    }

    /// Whether this is an IPv4 prefix.
    pub const fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether `addr` is inside this prefix (always false across families).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => mask_v4(u32::from(a), self.len) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(a)) => mask_v6(u128::from(a), self.len) == u128::from(net),
            _ => false,
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpPrefix {
    type Err = PrefixError;

    /// Parses `10.0.0.0/24` or `fd00::/64`; see the type doc for host bits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr_text, len_text) =
            s.split_once('/')
                .ok_or_else(|| PrefixError::MissingLength {
                    input: s.to_owned(),
                })?;
        let addr: IpAddr = addr_text.parse().map_err(|_| PrefixError::BadAddress {
            input: s.to_owned(),
            addr: addr_text.to_owned(),
        })?;
        let bad_len = || PrefixError::BadLength {
            input: s.to_owned(),
            len: len_text.to_owned(),
        };
        if len_text.is_empty() || !len_text.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad_len());
        }
        let len: u32 = len_text.parse().map_err(|_| bad_len())?;
        let max = max_len(&addr);
        let len = u8::try_from(len)
            .ok()
            .filter(|l| *l <= max)
            .ok_or(PrefixError::LengthTooLong { addr, len, max })?;
        IpPrefix::new(addr, len)
    }
}

/// One route: where packets to `prefix` leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    /// Destination network.
    pub prefix: IpPrefix,
    /// Gateway; `None` means the network is directly connected and the destination itself is
    /// the next hop.
    pub next_hop: Option<IpAddr>,
    /// Output port.
    pub port: u16,
}

impl Route {
    /// The neighbour a packet to `dst` is sent to over this route.
    pub fn next_hop_for(&self, dst: IpAddr) -> NextHop {
        NextHop {
            port: self.port,
            addr: self.next_hop.unwrap_or(dst),
        }
    }
}

/// Where one packet goes: the output port and the neighbour address to resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// Output port.
    pub port: u16,
    /// The gateway, or the destination itself on a connected route.
    pub addr: IpAddr,
}

/// A fast, non-keyed hasher for prefix keys (FxHash mixing). Keys come from the configuration,
/// not from packets (lookups never insert), so there is no hash-flooding exposure.
#[derive(Default, Clone, Copy)]
struct PrefixHasher(u64);

impl PrefixHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for PrefixHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.add(u64::from(*b));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }
    fn write_u128(&mut self, v: u128) {
        self.add(v as u64);
        self.add((v >> 64) as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type PrefixMap<K> = HashMap<K, usize, BuildHasherDefault<PrefixHasher>>;

/// Longest-prefix match over one address family: a map per prefix length.
#[derive(Debug, Clone)]
struct Lpm<K> {
    /// `by_len[l]` maps a masked address to an index into `RouteTable::routes`.
    by_len: Vec<PrefixMap<K>>,
    /// Lengths that have at least one route, longest first.
    lens: Vec<u8>,
}

impl<K: Copy + Eq + Hash> Lpm<K> {
    fn new(max_len: u8) -> Lpm<K> {
        Lpm {
            by_len: (0..=max_len).map(|_| PrefixMap::default()).collect(),
            lens: Vec::new(),
        }
    }

    fn insert(&mut self, len: u8, key: K, index: usize) {
        if let Some(map) = self.by_len.get_mut(usize::from(len)) {
            map.insert(key, index);
        }
    }

    fn finish(&mut self) {
        self.lens = (0..self.by_len.len())
            .rev()
            .filter(|&l| !self.by_len[l].is_empty())
            .filter_map(|l| u8::try_from(l).ok())
            .collect();
        for map in &mut self.by_len {
            map.shrink_to_fit();
        }
    }

    #[inline]
    fn lookup(&self, addr: K, mask: impl Fn(K, u8) -> K) -> Option<usize> {
        self.lens
            .iter()
            .find_map(|&len| self.by_len[usize::from(len)].get(&mask(addr, len)).copied())
    }
}

/// An immutable longest-prefix-match table. Build once with [`RouteTable::new`], share by
/// reference (it is `Send + Sync`), look up with [`RouteTable::lookup`].
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
    v4: Lpm<u32>,
    v6: Lpm<u128>,
}

impl RouteTable {
    /// Builds the table. When two routes have the same prefix, **the later one wins**
    /// (configuration validation should reject duplicates before this point).
    pub fn new(routes: impl IntoIterator<Item = Route>) -> RouteTable {
        let mut table = RouteTable {
            routes: Vec::new(),
            v4: Lpm::new(32),
            v6: Lpm::new(128),
        };
        for route in routes {
            let index = table.routes.len();
            let len = route.prefix.len();
            match route.prefix.addr() {
                IpAddr::V4(a) => table.v4.insert(len, u32::from(a), index),
                IpAddr::V6(a) => table.v6.insert(len, u128::from(a), index),
            }
            table.routes.push(route);
        }
        table.v4.finish();
        table.v6.finish();
        table
    }

    /// The route with the longest prefix containing `dst`, if any. Does not allocate.
    #[inline]
    pub fn lookup(&self, dst: IpAddr) -> Option<&Route> {
        let index = match dst {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a), mask_v4)?,
            IpAddr::V6(a) => self.v6.lookup(u128::from(a), mask_v6)?,
        };
        self.routes.get(index)
    }

    /// The routes given to [`new`](Self::new), in order (shadowed duplicates included).
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Number of routes given to [`new`](Self::new).
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> IpPrefix {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn r(prefix: &str, via: Option<&str>, port: u16) -> Route {
        Route {
            prefix: p(prefix),
            next_hop: via.map(ip),
            port,
        }
    }

    #[test]
    fn prefix_parsing() {
        assert_eq!(p("10.0.0.0/24").addr(), ip("10.0.0.0"));
        assert_eq!(p("10.0.0.0/24").len(), 24);
        assert_eq!(p("fd00::/64").to_string(), "fd00::/64");
        assert_eq!(p("0.0.0.0/0"), IpPrefix::default_v4());
        assert_eq!(p("::/0"), IpPrefix::default_v6());
        assert_eq!(p("192.0.2.7/32").len(), 32);
        assert_eq!(p("2001:db8::1/128").len(), 128);

        let err = |s: &str| s.parse::<IpPrefix>().unwrap_err();
        assert!(matches!(err("10.0.0.0"), PrefixError::MissingLength { .. }));
        assert!(matches!(err("10.0.0/24"), PrefixError::BadAddress { .. }));
        assert!(matches!(err("10.0.0.0/"), PrefixError::BadLength { .. }));
        assert!(matches!(err("10.0.0.0/+4"), PrefixError::BadLength { .. }));
        assert!(matches!(err("10.0.0.0/x"), PrefixError::BadLength { .. }));
        assert!(matches!(
            err("10.0.0.0/33"),
            PrefixError::LengthTooLong { max: 32, .. }
        ));
        assert!(matches!(
            err("10.0.0.0/4294967296"),
            PrefixError::BadLength { .. }
        ));
        assert!(matches!(
            err("fd00::/129"),
            PrefixError::LengthTooLong { max: 128, .. }
        ));
        assert!(matches!(
            err("10.0.0.0/300"),
            PrefixError::LengthTooLong { len: 300, .. }
        ));
        let e = err("10.0.0.1/24");
        assert_eq!(
            e.to_string(),
            "prefix 10.0.0.1/24 has host bits set; the network is 10.0.0.0/24"
        );
        assert_eq!(
            err("fd00::1/64").to_string(),
            "prefix fd00::1/64 has host bits set; the network is fd00::/64"
        );
        assert_eq!(
            err("10.0.0.0/33").to_string(),
            "prefix 10.0.0.0/33: length must be at most 32 for this address family"
        );
        assert_eq!(
            err("bogus").to_string(),
            "\"bogus\" is not a prefix: expected ADDRESS/LENGTH, like 10.0.0.0/24 or fd00::/64"
        );
        assert_eq!(
            IpPrefix::new_masked(ip("10.1.2.3"), 16).unwrap(),
            p("10.1.0.0/16")
        );
    }

    #[test]
    fn contains() {
        assert!(p("10.0.0.0/8").contains(ip("10.255.0.1")));
        assert!(!p("10.0.0.0/8").contains(ip("11.0.0.0")));
        assert!(p("0.0.0.0/0").contains(ip("255.255.255.255")));
        assert!(!p("0.0.0.0/0").contains(ip("::")));
        assert!(!p("::/0").contains(ip("1.2.3.4")));
        assert!(p("fd00::/8").contains(ip("fdff::1")));
        assert!(p("2001:db8::1/128").contains(ip("2001:db8::1")));
        assert!(!p("2001:db8::1/128").contains(ip("2001:db8::2")));
    }

    #[test]
    fn longest_prefix_match() {
        let table = RouteTable::new([
            r("0.0.0.0/0", Some("192.0.2.1"), 0),
            r("10.0.0.0/8", Some("192.0.2.2"), 1),
            r("10.1.0.0/16", None, 2),
            r("10.1.2.0/24", Some("10.1.0.254"), 3),
            r("10.1.2.3/32", Some("10.1.0.253"), 4),
            r("::/0", Some("fe80::1"), 5),
            r("2001:db8::/32", None, 6),
            r("2001:db8:1::/48", Some("2001:db8::1"), 7),
            r("2001:db8:1::42/128", Some("2001:db8::2"), 8),
        ]);
        let port = |s: &str| table.lookup(ip(s)).map(|r| r.port);
        assert_eq!(port("8.8.8.8"), Some(0));
        assert_eq!(port("10.200.0.1"), Some(1));
        assert_eq!(port("10.1.200.1"), Some(2));
        assert_eq!(port("10.1.2.200"), Some(3));
        assert_eq!(port("10.1.2.3"), Some(4));
        assert_eq!(port("10.1.2.4"), Some(3));
        assert_eq!(port("2001:db9::1"), Some(5));
        assert_eq!(port("2001:db8:2::1"), Some(6));
        assert_eq!(port("2001:db8:1::1"), Some(7));
        assert_eq!(port("2001:db8:1::42"), Some(8));

        // Next hop: the gateway, or the destination on a connected route.
        let nh = |s: &str| table.lookup(ip(s)).unwrap().next_hop_for(ip(s));
        assert_eq!(
            nh("10.1.200.1"),
            NextHop {
                port: 2,
                addr: ip("10.1.200.1")
            }
        );
        assert_eq!(
            nh("10.1.2.200"),
            NextHop {
                port: 3,
                addr: ip("10.1.0.254")
            }
        );
        assert_eq!(
            nh("2001:db8:2::1"),
            NextHop {
                port: 6,
                addr: ip("2001:db8:2::1")
            }
        );
    }

    #[test]
    fn families_are_isolated() {
        let v4_only = RouteTable::new([r("0.0.0.0/0", Some("192.0.2.1"), 0)]);
        assert!(v4_only.lookup(ip("::")).is_none());
        assert!(v4_only.lookup(ip("::ffff:1.2.3.4")).is_none());
        let v6_only = RouteTable::new([r("::/0", None, 0)]);
        assert!(v6_only.lookup(ip("0.0.0.0")).is_none());
        let empty = RouteTable::new([]);
        assert!(empty.is_empty() && empty.lookup(ip("1.1.1.1")).is_none());
    }

    #[test]
    fn later_duplicate_wins() {
        let table = RouteTable::new([r("10.0.0.0/8", None, 1), r("10.0.0.0/8", None, 2)]);
        assert_eq!(table.lookup(ip("10.0.0.1")).unwrap().port, 2);
        assert_eq!(table.len(), 2);
    }

    fn brute_force(routes: &[Route], dst: IpAddr) -> Option<&Route> {
        let mut best: Option<&Route> = None;
        for route in routes {
            if route.prefix.contains(dst) && best.is_none_or_shorter(route) {
                best = Some(route);
            }
        }
        best
    }

    trait ShorterThan {
        fn is_none_or_shorter(&self, route: &Route) -> bool;
    }
    impl ShorterThan for Option<&Route> {
        fn is_none_or_shorter(&self, route: &Route) -> bool {
            // `>=` so that a later duplicate replaces an earlier one, as the table does.
            self.map_or(true, |b| route.prefix.len() >= b.prefix.len())
        }
    }

    fn arb_route(v6: bool) -> impl Strategy<Value = Route> {
        // Few distinct high bits so that prefixes overlap often.
        (any::<u128>(), 0u8..=128, 0u16..4, any::<bool>()).prop_map(move |(bits, len, port, gw)| {
            let bits = bits & !(0x3fff_u128 << 112) & !(0x3fff_u128 << 16);
            let (addr, len) = if v6 {
                (IpAddr::V6(Ipv6Addr::from(bits)), len)
            } else {
                (IpAddr::V4(Ipv4Addr::from((bits >> 96) as u32)), len % 33)
            };
            let prefix = IpPrefix::new_masked(addr, len).unwrap();
            Route {
                prefix,
                next_hop: gw.then_some(addr),
                port,
            }
        })
    }

    proptest! {
        #[test]
        fn matches_linear_scan(
            v4 in proptest::collection::vec(arb_route(false), 0..40),
            v6 in proptest::collection::vec(arb_route(true), 0..40),
            probes in proptest::collection::vec(any::<u128>(), 1..40),
        ) {
            let routes: Vec<Route> = v4.into_iter().chain(v6).collect();
            let table = RouteTable::new(routes.iter().copied());
            for (i, bits) in probes.into_iter().enumerate() {
                // Probe near an existing prefix half of the time, so lookups hit.
                let base = routes.get(i % routes.len().max(1)).map(|r| r.prefix.addr());
                let dst = match base {
                    Some(IpAddr::V4(a)) if i % 2 == 0 => IpAddr::V4(Ipv4Addr::from(u32::from(a) ^ (bits as u32 & 0xff))),
                    Some(IpAddr::V6(a)) if i % 2 == 0 => IpAddr::V6(Ipv6Addr::from(u128::from(a) ^ (bits & 0xffff))),
                    _ if i % 3 == 0 => IpAddr::V4(Ipv4Addr::from(bits as u32)),
                    _ => IpAddr::V6(Ipv6Addr::from(bits)),
                };
                prop_assert_eq!(table.lookup(dst), brute_force(&routes, dst), "dst {}", dst);
            }
        }
    }
}
