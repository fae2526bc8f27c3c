"""Reseal every SealedSecret under DIR to CERT with kubesealpy, in place, over all cores.

    reseal.py DIR CERT OLD_KEY

The like-for-like Python counterpart of `gitseal reseal` for scripts/bench.sh: each value is
opened with the old private key and sealed again to the new certificate under the same
label; files are parsed and written with PyYAML (comments are not kept).
"""
import base64
import multiprocessing
import os
import sys

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kubesealpy import crypto

ANNOTATION = "sealedsecrets.bitnami.com/"


def label(meta):
    annotations = meta.get("annotations") or {}
    if annotations.get(ANNOTATION + "cluster-wide") == "true":
        return b""
    if annotations.get(ANNOTATION + "namespace-wide") == "true":
        return meta.get("namespace", "").encode()
    return ("%s/%s" % (meta.get("namespace", ""), meta["name"])).encode()


KEYS = {}


def load_keys(cert, old_key):
    """Pool initializer: each worker parses the keys once."""
    KEYS["new"] = x509.load_pem_x509_certificate(open(cert, "rb").read()).public_key()
    KEYS["old"] = serialization.load_pem_private_key(open(old_key, "rb").read(), password=None)


def reseal(path):
    new_key, old_key = KEYS["new"], KEYS["old"]
    docs = list(yaml.safe_load_all(open(path)))
    count = 0
    for doc in docs:
        if not doc or doc.get("kind") != "SealedSecret":
            continue
        lbl = label(doc["metadata"])
        items = doc["spec"]["encryptedData"]
        for key, value in items.items():
            plaintext = crypto.decrypt(base64.b64decode(value), old_key, lbl)
            items[key] = base64.b64encode(crypto.encrypt(plaintext, new_key, lbl)).decode()
            count += 1
    with open(path + ".tmp", "w") as out:
        yaml.safe_dump_all(docs, out, explicit_start=True)
    os.replace(path + ".tmp", path)
    return count


if __name__ == "__main__":
    DIR, CERT, OLD_KEY = sys.argv[1:4]
    files = [
        os.path.join(root, name)
        for root, _, names in os.walk(DIR)
        for name in names
        if name.endswith((".yaml", ".yml"))
    ]
    with multiprocessing.Pool(initializer=load_keys, initargs=(CERT, OLD_KEY)) as pool:
        total = sum(pool.map(reseal, files, chunksize=16))
    print("resealed %d value(s) in %d file(s)" % (total, len(files)))
