#!/usr/bin/env python3
"""Checks a WAN capture (pcap, Ethernet) of SVR traffic between the testbed routers.

Usage: svr_wire_check.py UDP_SIZE PCAP [PCAP...]

One capture per WAN side: svrd transmits through af_packet, which the kernel does not loop
back to other packet sockets, so a capture on rb-wan sees what router-a sent and one on
ra-wan what router-b sent.

Hand-parsed pcap (no scapy). Among frames whose outer addresses are both waypoints (SVR):
  - no inner host address (10.1.0.2, 10.2.0.2, fd00:1::2, fd00:2::2) in any cleartext part
    (headers, clear metadata header, trailer), and the payload marker "SVR-MARKER" nowhere in
    the frame (iperf3 data is random, so only our own UDP flow carries a marker);
  - the SVR cookie appears only on the first packets of each session direction (never after a
    metadata-free packet of that direction), at most 11 times per direction;
  - metadata-free packets of the UDP flow (payload UDP_SIZE) are exactly UDP_SIZE + padding
    (to the next multiple of 16, 1-16 bytes) + 8 (trailer) + 24 (HMAC) long at L4, and pings
    (64-byte ICMP messages) are 64 + 16 + 32 in a UDP header.
Prints a summary line per check; exits 1 on any failure.
"""
import ipaddress
import struct
import sys

COOKIE = bytes.fromhex("4c48dbc6ddf6670c")
WAYPOINTS = {ipaddress.ip_address(a) for a in ("10.9.0.1", "10.9.0.2", "fd00:9::1", "fd00:9::2")}
INNER = [ipaddress.ip_address(a).packed for a in ("10.1.0.2", "10.2.0.2", "fd00:1::2", "fd00:2::2")]
MARKERS = [b"SVR-MARKER"]


def frames(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        yield data[off + 16:off + 16 + incl]
        off += 16 + incl


def parse(f):
    et = f[12:14]
    if et == b"\x08\x00":
        ihl = (f[14] & 0xF) * 4
        src, dst = ipaddress.ip_address(f[26:30]), ipaddress.ip_address(f[30:34])
        proto, l4, end = f[23], 14 + ihl, 14 + struct.unpack(">H", f[16:18])[0]
    elif et == b"\x86\xdd":
        src, dst = ipaddress.ip_address(f[22:38]), ipaddress.ip_address(f[38:54])
        proto, l4, end = f[20], 54, 54 + struct.unpack(">H", f[18:20])[0]
    else:
        return None
    if proto == 17:
        hl = 8
    elif proto == 6:
        hl = (f[l4 + 12] >> 4) * 4
    else:
        return None
    sport, dport = struct.unpack(">HH", f[l4:l4 + 4])
    return src, dst, proto, sport, dport, f[l4 + hl:end], f[:l4 + hl]


def cleartext(headers, pl):
    """The bytes of an SVR packet that travel unencrypted: Ethernet, IP and L4 headers, the
    metadata header with its header TLVs (when present), and the sequence trailer. The rest is
    AES-CBC ciphertext, its IV and the HMAC, where any 4-byte value turns up by chance about
    once in 2^32 positions, so an address found there says nothing."""
    clear = headers
    if pl.startswith(COOKIE) and len(pl) >= 12:
        hl = struct.unpack(">H", pl[8:10])[0] & 0x0FFF
        clear += pl[:hl]
    if len(pl) >= 32:
        clear += pl[-32:-24]
    return clear


def main():
    udp_size, paths = int(sys.argv[1]), sys.argv[2:]
    fail = []
    svr = 0
    seen_plain = set()
    md_count = {}
    sizes = {}
    for f in (f for path in paths for f in frames(path)):
        p = parse(f)
        if p is None:
            continue
        src, dst, proto, sport, dport, pl, headers = p
        if src not in WAYPOINTS or dst not in WAYPOINTS or len(pl) == 0:
            continue
        svr += 1
        clear = cleartext(headers, pl)
        for a in INNER:
            if a in clear:
                fail.append(f"inner address {ipaddress.ip_address(a)} in clear")
        for m in MARKERS:
            if m in f:
                fail.append(f"marker {m!r} in clear")
        key = (src, dst, proto, sport, dport)
        if pl.startswith(COOKIE):
            md_count[key] = md_count.get(key, 0) + 1
            if key in seen_plain:
                fail.append(f"cookie after metadata-free packets on {key}")
        else:
            seen_plain.add(key)
            if proto == 17:
                sizes[len(pl)] = sizes.get(len(pl), 0) + 1
    if svr == 0:
        fail.append("no SVR packets captured")
    print(f"[wire] SVR packets: {svr}, session directions: {len(md_count | dict.fromkeys(seen_plain))}, "
          f"with metadata: {sum(md_count.values())} (max {max(md_count.values(), default=0)} per direction)")
    if max(md_count.values(), default=0) > 11:
        fail.append("more than 11 metadata packets in one direction")
    udp_expect = udp_size + (16 - udp_size % 16) + 8 + 24
    icmp_expect = 64 + 16 + 8 + 24
    n_udp, n_icmp = sizes.get(udp_expect, 0), sizes.get(icmp_expect, 0)
    print(f"[wire] metadata-free UDP flow packets of L4 payload {udp_expect} B "
          f"(= {udp_size} + pad {16 - udp_size % 16} + trailer 8 + HMAC 24): {n_udp}")
    print(f"[wire] metadata-free ping packets of UDP payload {icmp_expect} B "
          f"(= ICMP 64 + pad 16 + trailer 8 + HMAC 24, in an 8 B UDP header): {n_icmp}")
    if n_udp < 10:
        fail.append(f"too few UDP packets of exactly {udp_expect} bytes: {sizes}")
    if n_icmp < 4:
        fail.append(f"too few ping packets of exactly {icmp_expect} bytes: {sizes}")
    for m in sorted(set(fail)):
        print(f"[wire] FAIL: {m}", file=sys.stderr)
    sys.exit(1 if fail else 0)


if __name__ == "__main__":
    main()
