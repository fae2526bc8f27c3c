#!/usr/bin/env bash
# Whole-process benchmarks of the sealing CLI, side by side with the Python kubeseal-format
# implementations (run scripts/test.sh once first: it installs them into target/interop-venv).
#
#   bash scripts/bench-cli.sh            # needs hyperfine (apt-get install hyperfine), openssl
#
# Peers, each measured the same way when present: Python `kubesealpy` (from the test venv)
# and JavaScript `@socialgouv/aes-gcm-rsa-oaep` (installed here into target/bench-js when
# node and npm are on PATH). Their driver scripts are in scripts/bench/.
#
# 1. Sealing a 10-key Secret with a local certificate (one process per run).
# 2. Resealing a repository of 1,000 SealedSecrets to a new certificate.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SHARED=${GITSEAL_SHARED:-../shared}
CERT=$SHARED/fixtures/sealed-secrets/kseal-sealing-cert.pem
KEY=$SHARED/fixtures/sealed-secrets/kseal-sealing-key.pem
PYTHON=${GITSEAL_PYTHON:-target/interop-venv/bin/python}
for tool in hyperfine openssl; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed (apt-get install $tool)" >&2; exit 1; }
done
cargo build --release -q -p gitseal
NODE=
if command -v node >/dev/null && command -v npm >/dev/null; then
  npm install --silent --no-audit --no-fund --prefix target/bench-js \
    @socialgouv/aes-gcm-rsa-oaep@1.1.4 js-yaml@4.1.0
  NODE="env NODE_PATH=$PWD/target/bench-js/node_modules node"
fi
GITSEAL=$PWD/target/release/gitseal
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

{
  printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: app, namespace: prod}\nstringData:\n'
  for i in $(seq 1 10); do printf '  key%02d: value-number-%02d-0123456789abcdef\n' "$i" "$i"; done
} > "$WORK/secret10.yaml"


# The target is a median: hyperfine prints means, so the medians are printed after each run.
medians() {
  python3 - "$1" <<'PY'
import json, sys
for result in json.load(open(sys.argv[1]))["results"]:
    print("  median %9.2f ms  %s" % (result["median"] * 1000, result["command"][:90]))
PY
}

echo "== sealing a 10-key Secret, whole process"
ln -s "$GITSEAL" "$WORK/kubeseal" # the drop-in: the same binary under kubeseal's name
runs=(-N --warmup 10 --runs 200 --export-json "$WORK/seal.json"
  "$WORK/kubeseal --cert $CERT -f $WORK/secret10.yaml"
  "$GITSEAL kubeseal --cert $CERT -f $WORK/secret10.yaml")
[ -x "$PYTHON" ] && runs+=("$PYTHON scripts/bench/seal10.py $CERT")
[ -n "$NODE" ] && runs+=("$NODE scripts/bench/seal10.js $CERT")
hyperfine "${runs[@]}"
medians "$WORK/seal.json"

echo "== resealing 1,000 SealedSecrets (RSA-4096, 2 cores)"
mkdir -p "$WORK/repo"
for i in $(seq 1 1000); do
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata: {name: s%d, namespace: prod}\nstringData: {password: p%d}\n' "$i" "$i"
done | "$GITSEAL" kubeseal --cert "$CERT" -o yaml > "$WORK/all.yaml"
awk -v dir="$WORK/repo" '/^---$/ {n++} {print > (dir "/s" n ".yaml")}' "$WORK/all.yaml"
openssl req -x509 -newkey rsa:4096 -nodes -subj /CN=new -days 30 \
  -keyout "$WORK/new.key" -out "$WORK/new.pem" 2>/dev/null
cp -r "$WORK/repo" "$WORK/pristine"
runs=("$GITSEAL reseal $WORK/repo --cert $WORK/new.pem --private-key $KEY")
[ -x "$PYTHON" ] && runs+=("$PYTHON scripts/bench/reseal.py $WORK/repo $WORK/new.pem $KEY")
[ -n "$NODE" ] && runs+=("$NODE scripts/bench/reseal.js $WORK/repo $WORK/new.pem $KEY")
hyperfine --runs 3 --export-json "$WORK/reseal.json" \
  --prepare "rm -rf $WORK/repo && cp -r $WORK/pristine $WORK/repo" "${runs[@]}"
medians "$WORK/reseal.json"
