"""Seal ten values for prod/app with kubesealpy (scripts/bench.sh: whole-process timing)."""
import sys

from cryptography import x509
from kubesealpy import crypto

key = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read()).public_key()
for i in range(1, 11):
    crypto.encrypt(b"value-number-%02d-0123456789abcdef" % i, key, b"prod/app")
