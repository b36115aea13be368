//! Parsers for the small textual formats of the schema: prefixes, MACs, PCI addresses,
//! vdev strings and names. Pure functions, no allocation beyond the result, no panics.

use std::net::IpAddr;

/// `addr/len`, the address parsed by `std` (no scope ids, no leading zeros in IPv4),
/// `len` plain decimal digits, at most 32 (IPv4) or 128 (IPv6).
pub(crate) fn parse_prefix(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let digits_ok = !len.is_empty() && len.len() <= 3 && len.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok || (len.len() > 1 && len.starts_with('0')) {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    (len <= max_len(addr)).then_some((addr, len))
}

/// 32 for IPv4, 128 for IPv6.
pub(crate) fn max_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The network part of `addr/len` (host bits cleared). `len` must be at most `max_len`.
pub(crate) fn network(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

/// Is `ip` inside `net/len` (same family, same network bits)?
pub(crate) fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    net.is_ipv4() == ip.is_ipv4() && network(net, len) == network(ip, len)
}

/// fe80::/10.
pub(crate) fn is_ipv6_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
        IpAddr::V4(_) => false,
    }
}

/// Not unspecified, multicast, or the IPv4 limited broadcast.
pub(crate) fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast(),
        IpAddr::V6(a) => !a.is_unspecified() && !a.is_multicast(),
    }
}

/// For an IPv4 interface address with a prefix of /30 or shorter: is it the network or
/// the directed-broadcast address of its own prefix?
pub(crate) fn is_ipv4_network_or_broadcast(addr: IpAddr, len: u8) -> bool {
    match addr {
        IpAddr::V4(a) if len <= 30 => {
            let host_mask = u32::MAX >> u32::from(len);
            let host = u32::from(a) & host_mask;
            host == 0 || host == host_mask
        }
        _ => false,
    }
}

/// `xx:xx:xx:xx:xx:xx`, two hex digits per octet, either case.
pub(crate) fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut out {
        let part = parts.next()?;
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// `DDDD:BB:DD.F`: 4 hex digits of domain, 2 of bus, 2 of device (at most 0x1f), one
/// function digit 0-7.
pub(crate) fn is_pci_address(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let mut it = s.split(':');
    let (Some(domain), Some(bus), Some(devfn), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return false;
    };
    let Some((dev, func)) = devfn.split_once('.') else {
        return false;
    };
    hex(domain, 4)
        && hex(bus, 2)
        && hex(dev, 2)
        && u8::from_str_radix(dev, 16).is_ok_and(|d| d <= 0x1f)
        && func.len() == 1
        && matches!(func.as_bytes()[0], b'0'..=b'7')
}

/// `net_<driver><n>[,key=value...]`: the name starts with `net_`, then a driver made of
/// lower-case letters, digits and `_` that starts with a letter, then the instance number;
/// each argument is `key=value` with a key of `[a-z0-9_-]` and a value without spaces,
/// commas or control characters.
pub(crate) fn is_vdev(s: &str) -> bool {
    let mut parts = s.split(',');
    let name = parts.next().unwrap_or_default();
    if vdev_name(name).is_none() {
        return false;
    }
    parts.all(|kv| {
        let Some((k, v)) = kv.split_once('=') else {
            return false;
        };
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            && !v.is_empty()
            && v.chars().all(|c| !c.is_whitespace() && !c.is_control())
    })
}

/// The device name of a vdev string (the part before the first comma), if well formed.
pub(crate) fn vdev_name(s: &str) -> Option<&str> {
    let name = s.split(',').next()?;
    let rest = name.strip_prefix("net_")?;
    let driver = rest.trim_end_matches(|c: char| c.is_ascii_digit());
    let valid = driver.len() < rest.len()
        && driver.starts_with(|c: char| c.is_ascii_lowercase())
        && driver
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    valid.then_some(name)
}

/// A DNS-like name: dot-separated labels of 1-63 letters, digits and `-` that neither start
/// nor end with `-`; 253 characters at most; no trailing dot. The rule of
/// `peering-common-name`, also used by `svrd pki issue` for the file names it makes.
pub fn is_dns_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// 1-63 characters of `[A-Za-z0-9_-]` (router, node and file-prefix names).
pub(crate) fn is_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// 1-32 characters of `[a-z0-9-]` (interface names).
pub(crate) fn is_interface_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// An absolute path without whitespace or control characters.
pub(crate) fn is_abs_path(s: &str) -> bool {
    s.starts_with('/')
        && s.len() <= 4096
        && s.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// 1-63 characters of `[A-Za-z0-9_.-]` (tenant names).
pub(crate) fn is_tenant(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// A path to a file: 1-4096 bytes, no control characters, not ending in `/`. Absolute or
/// relative (to the config file's directory).
pub(crate) fn is_file_path(s: &str) -> bool {
    (1..=4096).contains(&s.len()) && !s.ends_with('/') && !s.chars().any(char::is_control)
}

/// Why a hex string is not an `N`-byte key. Never holds any of the string's characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HexError {
    /// The string has this many characters, not `2 * N`.
    Length(usize),
    /// The character at this (character) offset is not a hex digit.
    NotHex(usize),
}

/// Exactly `2 * N` hex digits, either case, as `N` bytes. The caller owns (and zeroizes)
/// the result; on error nothing of the input is returned.
pub(crate) fn parse_hex_key<const N: usize>(s: &str, out: &mut [u8; N]) -> Result<(), HexError> {
    if let Some(i) = s.chars().position(|c| !c.is_ascii_hexdigit()) {
        return Err(HexError::NotHex(i));
    }
    // All ASCII from here on, so bytes are characters.
    if s.len() != 2 * N {
        return Err(HexError::Length(s.len()));
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10, // only A-F remain after the hex-digit check
    };
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        *o = digit(pair[0]) << 4 | digit(pair[1]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes() {
        assert_eq!(parse_prefix("10.1.0.1/24"), Some((ip("10.1.0.1"), 24)));
        assert_eq!(parse_prefix("fd00:1::1/64"), Some((ip("fd00:1::1"), 64)));
        assert_eq!(parse_prefix("0.0.0.0/0"), Some((ip("0.0.0.0"), 0)));
        assert_eq!(parse_prefix("::/0"), Some((ip("::"), 0)));
        for bad in [
            "10.1.0.300/24",
            "10.1.0.1",
            "10.1.0.1/",
            "10.1.0.1/33",
            "10.1.0.1/+24",
            "10.1.0.1/024",
            "fd00::1/129",
            "fe80::1%eth0/64",
            "010.1.0.1/24",
            "",
            "/",
        ] {
            assert_eq!(parse_prefix(bad), None, "{bad}");
        }
    }

    #[test]
    fn networks() {
        assert_eq!(network(ip("10.2.0.7"), 24), ip("10.2.0.0"));
        assert_eq!(network(ip("10.2.0.7"), 0), ip("0.0.0.0"));
        assert_eq!(network(ip("10.2.0.7"), 32), ip("10.2.0.7"));
        assert_eq!(network(ip("fd00:2::9"), 64), ip("fd00:2::"));
        assert_eq!(network(ip("fd00:2::9"), 128), ip("fd00:2::9"));
        assert!(contains(ip("10.9.0.1"), 24, ip("10.9.0.2")));
        assert!(!contains(ip("10.9.0.1"), 24, ip("10.9.1.2")));
        assert!(!contains(ip("10.9.0.1"), 0, ip("fd00::1")));
        assert!(is_ipv6_link_local(ip("fe80::1")));
        assert!(is_ipv6_link_local(ip("febf::1")));
        assert!(!is_ipv6_link_local(ip("fec0::1")));
        assert!(is_ipv4_network_or_broadcast(ip("10.1.0.0"), 24));
        assert!(is_ipv4_network_or_broadcast(ip("10.1.0.255"), 24));
        assert!(!is_ipv4_network_or_broadcast(ip("10.1.0.0"), 31));
        assert!(!is_ipv4_network_or_broadcast(ip("10.1.0.1"), 24));
    }

    #[test]
    fn macs() {
        assert_eq!(parse_mac("02:00:00:00:09:0A"), Some([2, 0, 0, 0, 9, 0x0a]));
        for bad in [
            "02:00:00:00:09",
            "02:00:00:00:09:02:03",
            "2:0:0:0:9:2",
            "02-00-00-00-09-02",
            "0g:00:00:00:09:02",
            "+2:00:00:00:09:02",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn pci() {
        assert!(is_pci_address("0000:03:00.0"));
        assert!(is_pci_address("0000:af:1f.7"));
        for bad in [
            "03:00.0",
            "0000:03:00.8",
            "0000:03:20.0",
            "0000:3:00.0",
            "0000:03:00",
            "0000:03:00.0.1",
            "0000:03:00.00",
        ] {
            assert!(!is_pci_address(bad), "{bad}");
        }
    }

    #[test]
    fn vdevs() {
        assert!(is_vdev("net_af_packet0,iface=ra-lan"));
        assert!(is_vdev("net_tap12"));
        assert!(is_vdev("net_af_xdp0,iface=eth0,start_queue=0"));
        assert_eq!(
            vdev_name("net_af_packet1,iface=ra-wan"),
            Some("net_af_packet1")
        );
        for bad in [
            "net_af_packet,iface=x",
            "af_packet0",
            "net_0",
            "net_Tap0",
            "net_tap0,",
            "net_tap0,iface",
            "net_tap0,iface=",
            "net_tap0,=x",
            "net_tap0,iface=a b",
            "",
        ] {
            assert!(!is_vdev(bad), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(is_dns_name("router-a.demo.svr"));
        assert!(is_dns_name("router-a"));
        for bad in ["", "a..b", "-a.b", "a-.b", "a.b.", "a_b.c", "a b"] {
            assert!(!is_dns_name(bad), "{bad}");
        }
        assert!(is_name("router_A-1"));
        assert!(!is_name("router.a"));
        assert!(!is_name(""));
        assert!(is_interface_name("lan-2"));
        assert!(!is_interface_name("LAN"));
        assert!(is_abs_path("/dev/hugepages"));
        assert!(!is_abs_path("dev/hugepages"));
    }

    #[test]
    fn tenants_paths_and_keys() {
        assert!(is_tenant("blue.sub-1_x"));
        assert!(!is_tenant("") && !is_tenant("a b") && !is_tenant(&"t".repeat(64)));
        assert!(is_file_path("/etc/svrd/pki/root.pem") && is_file_path("pki/a b.pem"));
        assert!(!is_file_path("") && !is_file_path("/etc/") && !is_file_path("a\nb"));
        let mut k = [0u8; 3];
        assert_eq!(parse_hex_key("00aBfF", &mut k), Ok(()));
        assert_eq!(k, [0x00, 0xab, 0xff]);
        assert_eq!(parse_hex_key("00aBf", &mut k), Err(HexError::Length(5)));
        assert_eq!(parse_hex_key("00aBfFf0", &mut k), Err(HexError::Length(8)));
        assert_eq!(parse_hex_key("0x0000", &mut k), Err(HexError::NotHex(1)));
        assert_eq!(parse_hex_key("é0000", &mut k), Err(HexError::NotHex(0)));
    }
}
