//! Packet code of the worker cores: typed wire views, route lookup, forwarding stages and
//! drop/punt reasons with their counters.
//!
//! This crate never names DPDK, does no I/O, reads no clock and contains no `unsafe`. The
//! `svrd` worker loop owns the mbufs and calls the stages in [`forward`] on `&[u8]` /
//! `&mut [u8]` frame slices; the `slowpath` crate uses [`wire`] to parse and build ARP, NDP
//! and ICMP, and [`time::Instant`] for its timers.
//!
//! | module | contents |
//! | --- | --- |
//! | [`time`] | [`time::Instant`]: monotonic `u64` nanoseconds, passed in by the caller (from the leaf crate `svr-time`) |
//! | [`wire`] | smoltcp-style `XxxPacket<T>` views + `XxxRepr` values; [`wire::WireError`] |
//! | [`route`] | [`route::IpPrefix`], [`route::Route`], [`route::RouteTable`] (LPM), [`route::NextHop`] |
//! | [`svr_path`] | the SVR data plane per packet: ingress (LAN → peer), egress (peer → LAN), key store, session crypto; generic over [`svr_path::PacketBuf`] |
//! | [`forward`] | `classify` → `lookup` → `check_mtu` → `resolve` → `transform`; [`forward::DropReason`], [`forward::PuntReason`], counters |
//!
//! # Where the API differs from the first sketch
//!
//! Kept small, and listed here for the engineers writing `slowpath` and `svrd`:
//!
//! * **Checksums with a pseudo-header take the addresses.** `Icmpv6Repr::parse(src, dst, &pkt)`,
//!   `Icmpv6Repr::emit(src, dst, &mut pkt)`, and the same shape for `UdpRepr`. Other `Repr`s are
//!   `parse(&pkt)` / `emit(&mut pkt)`. `Repr::parse` always verifies the checksum.
//! * **`Ipv4Repr::parse` rejects fragments** (`WireError::Unsupported`): the slow path does not
//!   reassemble. The forwarding path does not use `Ipv4Repr` and forwards fragments.
//! * **`IpPrefix` fields are private** (`addr()`, `len()`), so "host bits are zero" always holds:
//!   `FromStr` and `IpPrefix::new` reject `10.0.0.1/24` with an error naming `10.0.0.0/24`;
//!   `IpPrefix::new_masked` clears host bits for callers that want the network of an interface
//!   address (e.g. a connected route from `10.0.0.1/24`). Interface addresses are
//!   [`forward::PortAddr`] `{ addr, prefix_len }`.
//! * **`Class::Route { l3_len }` is the IP packet length** (IPv4 total length, or 40 + IPv6
//!   payload length). The worker trims the mbuf to `wire::ethernet::HEADER_LEN + l3_len`.
//! * **Extra stage and reasons.** `forward::check_mtu` punts packets larger than the output MTU
//!   (`PuntReason::MtuExceeded`). `DropReason` also has `UnknownPort`, `BadArp`, `BadIpVersion`
//!   and `TtlExpired` (transform given TTL ≤ 1). `ALL` is an array (`for r in DropReason::ALL`
//!   yields values); counters also have `clear()`, `add()` and `total()`.
//! * **`IpPrefix::new` returns a `Result`.** `svrd` should build connected routes with
//!   `IpPrefix::new_masked(addr, len)` and configured ones with `IpPrefix::new(addr, len)?`.
//! * **`PortAddrs` carries its `port` id** and lists `ipv4` / `ipv6` addresses;
//!   `PortAddrs::new(port, mac, [(addr, prefix_len)…], mtu)` splits a mixed list. `LocalInfo::new`
//!   adds each port's EUI-64 link-local address (`forward::eui64_link_local(mac)`); the slow path
//!   should answer NDP for the same address.
//! * **Neighbours:** the `forward::NeighborTable` trait (`get(port, ip)`) plus the concrete
//!   `forward::NeighborSnapshot`; `forward::resolve` is generic over the trait.
//! * `ArpPacket` address getters return byte slices (the view handles any address length);
//!   `ArpRepr::EthernetIpv4` has the typed addresses.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod forward;
pub mod route;
pub mod session;
pub mod svr;
pub mod svr_path;
pub mod time;
pub mod wire;
