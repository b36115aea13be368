#!/usr/bin/env python3
"""Writes a PEM CRL, signed by an issuing CA with Python `cryptography` (an implementation
independent of ours), that revokes the leaf certificate of a chain file.

    make_crl.py ISSUER_CERT ISSUER_KEY CHAIN_OF_REVOKED OUT.pem
"""
import base64
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, ed448


def load_key(pem):
    """A PKCS#8 key; for an Ed25519 key in the v2 form (with its public key, as rcgen writes
    it, which some `cryptography` versions refuse) the 32-byte seed is taken from the DER."""
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except ValueError:
        der = base64.b64decode(b"".join(l for l in pem.splitlines() if not l.startswith(b"-----")))
        i = der.find(b"\x06\x03\x2b\x65\x70")  # OID 1.3.101.112, Ed25519
        j = der.find(b"\x04\x22\x04\x20", i)
        if i < 0 or j < 0:
            raise
        return ed25519.Ed25519PrivateKey.from_private_bytes(der[j + 4:j + 36])


def main():
    issuer_cert, issuer_key, chain, out = sys.argv[1:5]
    ca = x509.load_pem_x509_certificate(open(issuer_cert, "rb").read())
    key = load_key(open(issuer_key, "rb").read())
    leaf = x509.load_pem_x509_certificates(open(chain, "rb").read())[0]
    now = datetime.datetime.now(datetime.timezone.utc)
    revoked = (x509.RevokedCertificateBuilder()
               .serial_number(leaf.serial_number)
               .revocation_date(now - datetime.timedelta(minutes=1))
               .build())
    crl = (x509.CertificateRevocationListBuilder()
           .issuer_name(ca.subject)
           .last_update(now - datetime.timedelta(minutes=1))
           .next_update(now + datetime.timedelta(days=1))
           # RFC 5280 §5.2.3: conforming issuers include the CRL number (webpki requires it).
           .add_extension(x509.CRLNumber(1), critical=False)
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()),
                          critical=False)
           .add_revoked_certificate(revoked))
    # Ed25519/Ed448 keys sign without a separate hash.
    algorithm = None if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)) else hashes.SHA256()
    crl = crl.sign(private_key=key, algorithm=algorithm)
    open(out, "wb").write(crl.public_bytes(serialization.Encoding.PEM))
    print(f"revoked serial {leaf.serial_number:x} of {leaf.subject.rfc4514_string()}")


if __name__ == "__main__":
    main()
