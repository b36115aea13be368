#!/usr/bin/env python3
"""Send malformed frames from a host namespace to a router port (raw AF_PACKET).

usage: garbage.py IFACE ROUTER_MAC COUNT
Each class of garbage is sent COUNT times; svrd must drop and count every one.
"""
import socket
import struct
import sys


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, payload, ihl=5, total=None, ttl=64, proto=17, fix_csum=True):
    total = 20 + len(payload) if total is None else total
    hdr = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, total, 1, 0, ttl, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    if fix_csum:
        hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    else:
        hdr = hdr[:10] + struct.pack("!H", 0xDEAD) + hdr[12:]
    return hdr + payload


def main():
    iface, mac, count = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), int(sys.argv[3])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    src_mac = s.getsockname()[4]
    eth4 = mac + src_mac + b"\x08\x00"
    eth6 = mac + src_mac + b"\x86\xdd"
    udp = struct.pack("!HHHH", 1000, 2000, 12, 0) + b"junk"
    good = ipv4("10.1.0.2", "10.2.0.2", udp)
    frames = {
        # IPv4 header cut short: 10 bytes of a 20-byte header
        "truncated_ipv4": eth4 + good[:10],
        # IHL = 3 (12 bytes), below the minimum 5
        "bad_ihl": eth4 + ipv4("10.1.0.2", "10.2.0.2", udp, ihl=3),
        # total length says 400 bytes, the frame holds 32
        "bad_total_length": eth4 + ipv4("10.1.0.2", "10.2.0.2", udp, total=400),
        # header checksum wrong
        "bad_checksum": eth4 + ipv4("10.1.0.2", "10.2.0.2", udp, fix_csum=False),
        # an EtherType nobody here speaks (IEEE local experimental)
        "unknown_ethertype": mac + src_mac + b"\x88\xb5" + b"\x00" * 46,
        # IPv6 payload length 1000 in a 60-byte packet
        "bad_ipv6_length": eth6 + struct.pack("!IHBB16s16s", 6 << 28, 1000, 17, 64,
                                               socket.inet_pton(socket.AF_INET6, "fd00:1::2"),
                                               socket.inet_pton(socket.AF_INET6, "fd00:2::2")) + udp,
    }
    for name, frame in frames.items():
        for _ in range(count):
            s.send(frame)
        print(f"sent {count} x {name} ({len(frame)} B)")


if __name__ == "__main__":
    main()
