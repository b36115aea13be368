#!/usr/bin/env python3
"""Independent check of SVR WAN packets made by fastpath's svr_path, with Python `cryptography`.

Usage: svr_wan_check.py FILE

FILE is JSON written by `svr_path::test::python_verifies_wan_packets`:

    {"keys": {"router-a": [enc_hex, hmac_hex], "router-b": [...]},
     "packets": [{"to": router, "frame": hex, "plain": hex}, ...]}

Packets are in the order they crossed the WAN, all of one session (the first carries forward
metadata). For each: parse Ethernet/IP/UDP|TCP by hand; if the L4 payload starts with the
cookie, verify the HMAC with the receiver's metadata HMAC key, decrypt the payload TLVs
(AES-256-CBC, IV after the ciphertext), walk them and take the payload key from TLV 46;
otherwise verify the HMAC with the direction's key derived by HKDF-SHA384 from the payload
key. Then decrypt the payload (IV = AES-256(K_p, nonce block)) and compare with "plain".
Prints "OK checked=N"; any mismatch exits 1.
"""

import json
import sys

from cryptography.hazmat.primitives import constant_time, hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

COOKIE = bytes.fromhex("4c48dbc6ddf6670c")
INFO = b"svr-fastpath payload hmac v1"


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


def l4_payload(f):
    et = f[12:14]
    if et == b"\x08\x00":
        ihl = (f[14] & 0x0F) * 4
        total = int.from_bytes(f[16:18], "big")
        proto = f[23]
        l4 = 14 + ihl
        end = 14 + total
    elif et == b"\x86\xdd":
        proto = f[20]
        l4 = 14 + 40
        end = l4 + int.from_bytes(f[18:20], "big")
    else:
        raise ValueError("not IP")
    if proto == 17:
        hl = 8
    elif proto == 6:
        hl = (f[l4 + 12] >> 4) * 4
    else:
        raise ValueError("not UDP/TCP")
    return f[l4 + hl:end]


def tlvs(b):
    out = {}
    i = 0
    while i < len(b):
        t = int.from_bytes(b[i:i + 2], "big")
        n = int.from_bytes(b[i + 2:i + 4], "big")
        out[t] = b[i + 4:i + 4 + n]
        i += 4 + n
    if i != len(b):
        raise ValueError("TLV walk overruns")
    return out


def main():
    doc = json.load(open(sys.argv[1]))
    keys = {r: (bytes.fromhex(e), bytes.fromhex(m)) for r, (e, m) in doc["keys"].items()}
    first_to = doc["packets"][0]["to"]
    pkey = None
    checked = 0
    for n, p in enumerate(doc["packets"]):
        f = bytes.fromhex(p["frame"])
        pl = l4_payload(f)
        covered, tag = pl[:-24], pl[-24:]
        seq = int.from_bytes(pl[-32:-24], "big")
        direction = 0 if p["to"] == first_to else 1
        if pl.startswith(COOKIE):
            enc, mac = keys[p["to"]]
            if not constant_time.bytes_eq(tag24(mac, covered), tag):
                sys.exit(f"packet {n}: metadata HMAC mismatch")
            hl = int.from_bytes(pl[8:10], "big") & 0x0FFF
            plen = int.from_bytes(pl[10:12], "big")
            block = pl[hl:hl + plen]
            clear = cbc_decrypt(enc, block[-16:], block[:-16])
            t = tlvs(clear)
            hdr = tlvs(pl[12:hl])
            if 16 not in hdr:
                sys.exit(f"packet {n}: no Security Identifier")
            if 46 in t:
                v = t[46]
                if len(v) != 34 or v[1] != 1:
                    sys.exit(f"packet {n}: bad payload key TLV")
                pkey = (v[0], v[2:])
            if direction == 0 and 2 not in t and 3 not in t:
                sys.exit(f"packet {n}: forward metadata without context")
            if direction == 1 and 4 not in t and 5 not in t:
                sys.exit(f"packet {n}: reverse metadata without context")
            ct = pl[hl + plen:-32]
        else:
            if pkey is None:
                sys.exit(f"packet {n}: data packet before any payload key")
            okm = HKDF(algorithm=hashes.SHA384(), length=96, salt=None, info=INFO).derive(pkey[1])
            mac = okm[:48] if direction == 0 else okm[48:]
            if not constant_time.bytes_eq(tag24(mac, covered), tag):
                sys.exit(f"packet {n}: payload HMAC mismatch")
            ct = pl[:-32]
        index, k = pkey
        nonce = bytes([direction, index]) + bytes(6) + seq.to_bytes(8, "big")
        plain = cbc_decrypt(k, aes_block(k, nonce), ct)
        # The payload is the original L4 payload (UDP data here).
        if plain != bytes.fromhex(p["plain"]):
            sys.exit(f"packet {n}: payload mismatch {plain!r}")
        checked += 1
    print(f"OK checked={checked}")


if __name__ == "__main__":
    main()
