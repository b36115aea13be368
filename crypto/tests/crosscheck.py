#!/usr/bin/env python3
"""Independent cross-check of svr-crypto's wire format with Python `cryptography`.

Usage: crosscheck.py FILE

FILE is JSON written by crypto/tests/python_crosscheck.rs:

    {"payload":  [{"key", "index", "dir", "seq", "covered_start", "iv", "packet", "plain"}],
     "metadata": [{"enc_key", "hmac_key", "iv", "block", "tag", "plain"}]}

(byte strings in lowercase hex). For every payload packet this script re-derives the
direction's HMAC key with HKDF-SHA384, verifies the truncated HMAC, reads the trailer,
recomputes the IV as AES-256-ECB(nonce block), decrypts with AES-256-CBC, strips PKCS#7 and
compares with the plaintext. For every metadata block it takes the trailing IV, decrypts,
strips PKCS#7, compares, and checks the HMAC over the block.

Then it makes its own packets and metadata blocks with fresh random keys and prints them on
stdout, one per line, for the Rust side to open ("-" stands for an empty byte string):

    P key index dir seq covered_start packet plain
    M enc_key hmac_key block tag plain
    OK checked=N

Any mismatch is printed on stderr and the exit status is 1.
"""

import json
import os
import sys

from cryptography.hazmat.primitives import constant_time, hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PAYLOAD_HMAC_INFO = b"svr-fastpath payload hmac v1"
HMAC_LEN = 24
TRAILER_LEN = 8
IV_LEN = 16
BLOCK = 16


def hmac_keys(payload_key):
    """(forward, reverse) HMAC keys: HKDF-SHA384(ikm=K_p, salt=None, info, L=96) split 48/48."""
    okm = HKDF(algorithm=hashes.SHA384(), length=96, salt=None, info=PAYLOAD_HMAC_INFO).derive(
        payload_key
    )
    return okm[:48], okm[48:]


def tag24(key, data):
    h = hmac.HMAC(key, hashes.SHA384())
    h.update(data)
    return h.finalize()[:HMAC_LEN]


def nonce_block(direction, index, seq):
    return bytes([direction, index]) + bytes(6) + seq.to_bytes(8, "big")


def aes_ecb(key, block):
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def cbc_encrypt(key, iv, plain):
    p = padding.PKCS7(128).padder()
    padded = p.update(plain) + p.finalize()
    e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return e.update(padded) + e.finalize()


def cbc_decrypt(key, iv, ct):
    d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = d.update(ct) + d.finalize()
    u = padding.PKCS7(128).unpadder()
    return u.update(padded) + u.finalize()


class Checker:
    def __init__(self):
        self.errors = 0
        self.checked = 0

    def expect(self, cond, what):
        if not cond:
            self.errors += 1
            if self.errors <= 20:
                print("MISMATCH: " + what, file=sys.stderr)


def check_payload(c, e):
    key = bytes.fromhex(e["key"])
    index, direction, seq, cs = e["index"], e["dir"], e["seq"], e["covered_start"]
    packet = bytes.fromhex(e["packet"])
    plain = bytes.fromhex(e["plain"])
    what = "payload dir=%d seq=%d len=%d" % (direction, seq, len(plain))

    padded = (len(plain) // BLOCK + 1) * BLOCK
    c.expect(len(packet) == cs + padded + TRAILER_LEN + HMAC_LEN, what + ": length")
    covered, tag = packet[cs:-HMAC_LEN], packet[-HMAC_LEN:]
    keys = hmac_keys(key)
    c.expect(constant_time.bytes_eq(tag24(keys[direction], covered), tag), what + ": HMAC")
    c.expect(tag24(keys[1 - direction], covered) != tag, what + ": other direction's HMAC")
    c.expect(int.from_bytes(covered[-TRAILER_LEN:], "big") == seq, what + ": trailer")
    iv = aes_ecb(key, nonce_block(direction, index, seq))
    c.expect(iv.hex() == e["iv"], what + ": IV = AES-ECB(nonce block)")
    try:
        got = cbc_decrypt(key, iv, covered[:-TRAILER_LEN])
    except ValueError as err:
        c.expect(False, what + ": decrypt/unpad failed: %s" % err)
        return
    c.expect(got == plain, what + ": plaintext")
    c.checked += 1


def check_metadata(c, e):
    enc_key = bytes.fromhex(e["enc_key"])
    hmac_key = bytes.fromhex(e["hmac_key"])
    block = bytes.fromhex(e["block"])
    plain = bytes.fromhex(e["plain"])
    what = "metadata len=%d" % len(plain)

    c.expect(len(block) == (len(plain) // BLOCK + 1) * BLOCK + IV_LEN, what + ": length")
    ct, iv = block[:-IV_LEN], block[-IV_LEN:]
    c.expect(iv.hex() == e["iv"], what + ": IV after the ciphertext")
    try:
        got = cbc_decrypt(enc_key, iv, ct)
    except ValueError as err:
        c.expect(False, what + ": decrypt/unpad failed: %s" % err)
        return
    c.expect(got == plain, what + ": plaintext")
    c.expect(constant_time.bytes_eq(tag24(hmac_key, block), bytes.fromhex(e["tag"])), what + ": HMAC")
    c.checked += 1


def h(b):
    return b.hex() if b else "-"


def produce(out):
    """Our own encryptions, for the Rust side to open."""
    sizes = sorted(set(list(range(0, 40)) + list(range(40, 1501, 7)) + [1499, 1500]))
    seq_edges = [0, 1, 2**63, 2**64 - 1]
    for n, size in enumerate(sizes):
        for direction in (0, 1):
            key = os.urandom(32)
            index = os.urandom(1)[0]
            seq = seq_edges[n % len(seq_edges)] if n % 5 == 0 else int.from_bytes(os.urandom(8), "big")
            cs = n % 61
            header = os.urandom(cs)
            plain = os.urandom(size)
            iv = aes_ecb(key, nonce_block(direction, index, seq))
            covered = cbc_encrypt(key, iv, plain) + seq.to_bytes(8, "big")
            packet = header + covered + tag24(hmac_keys(key)[direction], covered)
            out.write("P %s %d %d %d %d %s %s\n" % (h(key), index, direction, seq, cs, h(packet), h(plain)))
    for size in list(range(0, 48)) + list(range(48, 601, 13)):
        enc_key, hmac_key, iv = os.urandom(32), os.urandom(48), os.urandom(16)
        plain = os.urandom(size)
        block = cbc_encrypt(enc_key, iv, plain) + iv
        out.write("M %s %s %s %s %s\n" % (h(enc_key), h(hmac_key), h(block), h(tag24(hmac_key, block)), h(plain)))


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        data = json.load(f)
    c = Checker()
    for e in data["payload"]:
        check_payload(c, e)
    for e in data["metadata"]:
        check_metadata(c, e)
    if c.errors:
        print("%d mismatches, %d entries checked" % (c.errors, c.checked), file=sys.stderr)
        return 1
    if c.checked == 0:
        print("nothing to check", file=sys.stderr)
        return 1
    produce(sys.stdout)
    print("OK checked=%d" % c.checked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
