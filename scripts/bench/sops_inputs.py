"""Writes the plaintext inputs of the SOPS benchmark (scripts/bench.sh) into a directory.

For each size N (values): flat-N.yaml and flat-N.json (keyNNNNNN: value), nested-N.yaml and
nested-N.json (groups of 100 keys), flat-N.env (KEYNNNNNN=value) and sections-N.ini
(sections of 100 keys). Values are 32 random letters and digits (seeded: the same files
on every run).
"""
import json
import random
import string
import sys


def main():
    work, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
    rng = random.Random(42)
    alphabet = string.ascii_letters + string.digits

    def value():
        return "".join(rng.choice(alphabet) for _ in range(32))

    for n in sizes:
        flat = {f"key{i:06d}": value() for i in range(n)}
        nested = {
            f"group{g:04d}": {f"key{i:03d}": value() for i in range(100)}
            for g in range(n // 100)
        }
        for shape, doc in (("flat", flat), ("nested", nested)):
            with open(f"{work}/{shape}-{n}.json", "w") as f:
                json.dump(doc, f, indent=2)
            with open(f"{work}/{shape}-{n}.yaml", "w") as f:
                for k, v in doc.items():
                    if isinstance(v, dict):
                        f.write(f"{k}:\n")
                        f.writelines(f"    {k2}: {v2}\n" for k2, v2 in v.items())
                    else:
                        f.write(f"{k}: {v}\n")
        with open(f"{work}/flat-{n}.env", "w") as f:
            f.writelines(f"{k.upper()}={v}\n" for k, v in flat.items())
        with open(f"{work}/sections-{n}.ini", "w") as f:
            for section, values in nested.items():
                f.write(f"[{section}]\n")
                f.writelines(f"{k} = {v}\n" for k, v in values.items())
                f.write("\n")


if __name__ == "__main__":
    main()
