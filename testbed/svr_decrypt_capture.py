#!/usr/bin/env python3
"""Decrypts what the real svrd routers put on the WAN, with an independent implementation
(Python `cryptography`), given the keys: the testbed's test-mode metadata keys, read from the
router YAML files.

Usage: svr_decrypt_capture.py ROUTER_A_YAML ROUTER_B_YAML PCAP [PCAP...]

For every SVR session in the captures (frames between the waypoints, in capture-time order):
  - a packet carrying metadata (it starts with the cookie) must verify under the RECEIVING
    router's metadata HMAC key; its payload TLVs are decrypted with that router's metadata
    key (AES-256-CBC, IV after the ciphertext) and walked; TLV 46 gives the flow's payload key;
  - every other packet must verify under the payload HMAC key of its direction (HKDF-SHA384
    of the payload key, info "svr-fastpath payload hmac v1", forward = first 48 bytes);
  - every payload decrypts (IV = AES-256(payload key, direction | key index | 0*6 | seq)) with
    valid PKCS#7 padding.
The original source and destination ports (from the decrypted forward context) must not
appear in any packet's clear headers, and the wayports are even (source) and odd (destination).
UDP and ICMP sessions are checked packet by packet; TCP sessions their first 400 packets
(iperf3 moves hundreds of thousands, and the point is the format, not Python's speed). The
UDP flow's datagrams must decrypt to the marker the sender put in them.
Prints a summary; exits 1 on any failure.
"""
import re
import struct
import sys

from cryptography.hazmat.primitives import constant_time, hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

COOKIE = bytes.fromhex("4c48dbc6ddf6670c")
INFO = b"svr-fastpath payload hmac v1"
MARKER = b"SVR-MARKER-UDP-"
WAYPOINT_ROUTER = {
    bytes([10, 9, 0, 1]): "router-a", bytes([10, 9, 0, 2]): "router-b",
    bytes.fromhex("fd000009" + "00" * 11 + "01"): "router-a",
    bytes.fromhex("fd000009" + "00" * 11 + "02"): "router-b",
}
TCP_LIMIT = 400


def test_keys(path):
    """(encryption key, HMAC key) of each router, from its svr-test-metadata-key section: the
    one of its peer entry (keys per peer pair; the testbed's routers have one peer each) if it
    has one, else the router-wide one."""
    text = open(path).read()
    keys = {}
    for m in re.finditer(r"- name: (router-[ab])\b(.*?)(?=\n    - name: |\Z)", text, re.S):
        block = m.group(2)
        entry = re.search(r"\n\s+- router: router-[ab]\s*\n\s+svr-test-metadata-key:(.*?)(?=\n\s+- router: |\n      [a-z]|\Z)", block, re.S)
        if entry and "encryption-key" in entry.group(1):
            block = entry.group(1)
        enc = re.search(r'encryption-key: "([0-9a-f]{64})"', block)
        mac = re.search(r'hmac-key: "([0-9a-f]{96})"', block)
        if enc and mac:
            keys[m.group(1)] = (bytes.fromhex(enc.group(1)), bytes.fromhex(mac.group(1)))
    return keys


def frames(path):
    data = open(path, "rb").read()
    endian = "<" if struct.unpack("<I", data[:4])[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        yield (sec, frac), data[off + 16:off + 16 + incl]
        off += 16 + incl


def parse(f):
    et = f[12:14]
    if et == b"\x08\x00":
        ihl = (f[14] & 0xF) * 4
        src, dst, proto = f[26:30], f[30:34], f[23]
        l4, end = 14 + ihl, 14 + struct.unpack(">H", f[16:18])[0]
    elif et == b"\x86\xdd":
        src, dst, proto = f[22:38], f[38:54], f[20]
        l4, end = 54, 54 + struct.unpack(">H", f[18:20])[0]
    else:
        return None
    if proto == 17:
        hl = 8
    elif proto == 6:
        hl = (f[l4 + 12] >> 4) * 4
    else:
        return None
    sport, dport = struct.unpack(">HH", f[l4:l4 + 4])
    return src, dst, proto, sport, dport, f[l4 + hl:end]


def tag24(key, data):
    h = hmac.HMAC(key, hashes.SHA384())
    h.update(data)
    return h.finalize()[:24]


def cbc_decrypt(key, iv, ct):
    d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    p = d.update(ct) + d.finalize()
    u = padding.PKCS7(128).unpadder()
    return u.update(p) + u.finalize()


def aes_block(key, block):
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def tlvs(b):
    out, i = {}, 0
    while i + 4 <= len(b):
        t, n = struct.unpack(">HH", b[i:i + 4])
        out[t] = b[i + 4:i + 4 + n]
        i += 4 + n
    if i != len(b):
        raise ValueError("TLV walk does not end at the section end")
    return out


class Session:
    def __init__(self):
        self.payload_key = None   # (index, key)
        self.forward_from = None  # (src address, src port) of the forward direction
        self.checked = 0
        self.markers = 0
        self.proto = None
        self.inner_ports = None


def main():
    keys = {**test_keys(sys.argv[1]), **test_keys(sys.argv[2])}
    if set(keys) != {"router-a", "router-b"}:
        sys.exit(f"[decrypt] FAIL: test keys not found in the YAML files (got {sorted(keys)})")
    packets = sorted((ts, f) for path in sys.argv[3:] for ts, f in frames(path))
    sessions, fail = {}, []
    for _, f in packets:
        p = parse(f)
        if p is None:
            continue
        src, dst, proto, sport, dport, pl = p
        if src not in WAYPOINT_ROUTER or dst not in WAYPOINT_ROUTER or len(pl) < 32:
            continue
        if sport == 1280 or dport == 1280:
            continue  # BFD, not a session
        sid = (proto, frozenset([(src, sport), (dst, dport)]))
        s = sessions.setdefault(sid, Session())
        s.proto = proto
        if proto == 6 and s.checked >= TCP_LIMIT:
            continue
        covered, tag, seq = pl[:-24], pl[-24:], int.from_bytes(pl[-32:-24], "big")
        try:
            if pl.startswith(COOKIE):
                enc, mac = keys[WAYPOINT_ROUTER[dst]]
                if not constant_time.bytes_eq(tag24(mac, covered), tag):
                    raise ValueError("metadata HMAC does not verify under the receiver's key")
                hl = struct.unpack(">H", pl[8:10])[0] & 0x0FFF
                plen = struct.unpack(">H", pl[10:12])[0]
                block = pl[hl:hl + plen]
                t = tlvs(cbc_decrypt(enc, block[-16:], block[:-16])) if plen else {}
                if 2 in t or 3 in t:
                    s.forward_from = (src, sport)
                    ctx = t.get(2) or t.get(3)
                    n = 4 if 2 in t else 16
                    # The original ports, as the ingress saw them (forward context).
                    s.inner_ports = ctx[2 * n:2 * n + 4]
                    if sport % 2 or not dport % 2:
                        raise ValueError(f"wayports {sport}->{dport} are not even source, odd destination")
                if 46 in t:
                    v = t[46]
                    if len(v) != 34 or v[1] != 1:
                        raise ValueError("bad payload key TLV")
                    s.payload_key = (v[0], v[2:])
                ct = pl[hl + plen:-32]
                data_mac = None
            else:
                if s.payload_key is None:
                    raise ValueError("data packet before the payload key was seen")
                okm = HKDF(algorithm=hashes.SHA384(), length=96, salt=None, info=INFO).derive(s.payload_key[1])
                forward = (src, sport) == s.forward_from
                data_mac = okm[:48] if forward else okm[48:]
                if not constant_time.bytes_eq(tag24(data_mac, covered), tag):
                    raise ValueError("payload HMAC does not verify")
                ct = pl[:-32]
            if s.payload_key is None:
                raise ValueError("no payload key")
            direction = 0 if (src, sport) == s.forward_from else 1
            index, k = s.payload_key
            nonce = bytes([direction, index]) + bytes(6) + seq.to_bytes(8, "big")
            plain = cbc_decrypt(k, aes_block(k, nonce), ct)
            if s.inner_ports is not None and s.inner_ports in f[:len(f) - len(pl)] + pl[:12]:
                raise ValueError("the original ports appear in the clear headers")
            if plain.startswith(MARKER):
                s.markers += 1
            s.checked += 1
        except (ValueError, KeyError) as e:
            fail.append(f"session {sorted(sid[1])[0][1]}<->{sorted(sid[1])[1][1]} proto {proto}: {e}")
    total = sum(s.checked for s in sessions.values())
    markers = sum(s.markers for s in sessions.values())
    by_proto = {}
    for s in sessions.values():
        by_proto[s.proto] = by_proto.get(s.proto, 0) + 1
    print(f"[decrypt] sessions: {len(sessions)} (UDP {by_proto.get(17, 0)}, TCP {by_proto.get(6, 0)}); "
          f"packets verified and decrypted: {total}; UDP-flow datagrams with the marker: {markers}")
    if not sessions:
        fail.append("no SVR sessions in the captures")
    if markers < 20:
        fail.append(f"only {markers} datagrams decrypted to the UDP flow's marker")
    for m in sorted(set(fail))[:20]:
        print(f"[decrypt] FAIL: {m}", file=sys.stderr)
    sys.exit(1 if fail else 0)


if __name__ == "__main__":
    main()
