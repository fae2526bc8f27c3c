#!/usr/bin/env python3
"""Independent oracle for the Bitnami Sealed Secrets "hybrid" value format.

    base64std( u16be(len(rsa_ct)) || rsa_ct || aes_gcm_ct || tag16 )
    rsa_ct = RSA-OAEP(SHA-256, MGF1-SHA-256, label)(32-byte session key)
    AES-256-GCM with the session key, 12 zero-byte nonce, no AAD.
    label  = "<namespace>/<name>" (strict), "<namespace>" (namespace-wide),
             "" (cluster-wide).

The format itself (framing, OAEP label, AES-GCM) is done entirely by PyPI
packages, not by this script:
  * kubesealpy (default, --impl kubesealpy): kubesealpy.crypto.encrypt/decrypt
    take raw label bytes, so any label (including "") is passed as-is.
  * aes-gcm-rsa-oaep (--impl aes-gcm-rsa-oaep): aes_gcm_rsa_oaep.encrypt/decrypt.
Both offer sealing and unsealing. This script only parses the PEM files (with
the `cryptography` package both libraries are built on) and does base64/CLI.

Certificates: only the SubjectPublicKeyInfo is read (Certificate.public_key()),
never the extensions, so the fixture cert whose KeyUsage is "critical, Encipher
Only" (rejected by cryptography's .extensions parser, in 37.x as well as 48+)
loads fine on current cryptography; no old pin or DER fallback is needed. The
cert's validity period is deliberately not checked. --cert also accepts a bare
"PUBLIC KEY"/"RSA PUBLIC KEY" PEM. Private keys may be PKCS#1 or PKCS#8.

Install (aes-gcm-rsa-oaep 0.1.0 declares cryptography<38, which conflicts with
kubesealpy, so it goes in with --no-deps; its code works on current releases):
    pip install kubesealpy==1.0.1 cryptography==50.0.2
    pip install --no-deps aes-gcm-rsa-oaep==0.1.0

Usage:
    kubeseal_oracle.py seal   --cert CERT.pem --label LABEL  < plaintext  > b64
    kubeseal_oracle.py unseal --key  KEY.pem  --label LABEL  < b64  > plaintext
A label starting with "-" must be written --label=-x. Errors: message on
stderr, exit status 1 (2 for usage errors).
"""

import argparse
import base64
import binascii
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey


def load_public_key(path):
    pem = open(path, "rb").read()
    if b"-----BEGIN CERTIFICATE-----" in pem:
        key = x509.load_pem_x509_certificate(pem).public_key()
    else:
        key = serialization.load_pem_public_key(pem)
    if not isinstance(key, RSAPublicKey):
        raise ValueError(f"{path}: not an RSA public key")
    return key


def load_private_key(path):
    key = serialization.load_pem_private_key(open(path, "rb").read(), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ValueError(f"{path}: not an RSA private key")
    return key


def backend(impl):
    """Return (encrypt, decrypt), each called as f(data, rsa_key, label_bytes)."""
    if impl == "kubesealpy":
        from kubesealpy import crypto
        return crypto.encrypt, crypto.decrypt
    import aes_gcm_rsa_oaep
    return aes_gcm_rsa_oaep.encrypt, aes_gcm_rsa_oaep.decrypt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impl", choices=["kubesealpy", "aes-gcm-rsa-oaep"], default="kubesealpy")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("seal", help="plaintext on stdin -> base64 sealed value on stdout")
    p.add_argument("--cert", required=True, help="PEM certificate or RSA public key")
    p.add_argument("--label", required=True, help='OAEP label; "" for cluster-wide')
    p = sub.add_parser("unseal", help="base64 sealed value on stdin -> plaintext on stdout")
    p.add_argument("--key", required=True, help="PEM RSA private key (PKCS#1 or PKCS#8)")
    p.add_argument("--label", required=True, help='OAEP label; "" for cluster-wide')
    args = ap.parse_args(argv)

    label = args.label.encode("utf-8")
    data = sys.stdin.buffer.read()
    try:
        encrypt, decrypt = backend(args.impl)
        if args.cmd == "seal":
            sealed = encrypt(data, load_public_key(args.cert), label)
            sys.stdout.write(base64.b64encode(sealed).decode("ascii"))
        else:
            try:
                blob = base64.b64decode(b"".join(data.split()), validate=True)
            except binascii.Error as e:
                raise ValueError(f"input is not valid base64: {e}") from e
            sys.stdout.buffer.write(decrypt(blob, load_private_key(args.key), label))
        sys.stdout.flush()
    except Exception as e:  # noqa: BLE001 - any failure is an oracle error
        print(f"kubeseal_oracle: {args.cmd} failed ({args.impl}): {type(e).__name__}: {e}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
