#!/usr/bin/env bash
# Regenerates the numbers of docs/benchmarks.md on this machine: every row measured side by
# side, in this one run, with the tools gitseal replaces; medians and ratios. The prose of
# the document is hand-written; only the blocks between `<!-- bench:NAME -->` and
# `<!-- /bench:NAME -->` are rewritten (the whole file replaced at once).
#
#   bash scripts/bench.sh                          # everything (about 10-15 minutes)
#   SECTIONS="startup sops" bash scripts/bench.sh  # some sections only (the others stay)
#   SIZES="1000 10000" CONTROLLER_OBJECTS=2000 bash scripts/bench.sh   # quicker, smaller
#
# Sections: startup (process start-up floor), sops (gitseal sops / sops 3.11.0 / rops),
# sealing (gitseal kubeseal / Python kubesealpy / JavaScript @socialgouv/aes-gcm-rsa-oaep),
# controller (the scale and external_secrets benches against the test API server, with
# the RSA floor from `openssl speed` taken in the same run).
#
# Installs what it needs, idempotently: hyperfine and rops (cargo install, into
# target/bench-tools: Debian's hyperfine 1.15 has no --input, and rops reads a file only
# from standard input when that is not a terminal), the JavaScript peer (npm, into target/bench-js), the Python venvs
# (the installers of scripts/test.sh; reused when GITSEAL_SOPS, GITSEAL_PYTHON and
# GITSEAL_MOTO_PYTHON already name them). Fixtures are read from ${GITSEAL_SHARED:-../shared}.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/test.sh
source scripts/test.sh # its installers only (it runs its checks only when executed)
ROOT=$PWD
BEGAN=$(date +%s)

SECTIONS=${SECTIONS:-"startup sops sealing controller"}
SIZES=${SIZES:-"1000 10000 50000"}
CONTROLLER_OBJECTS=${CONTROLLER_OBJECTS:-10000}
# sops is stopped after this many seconds (its flat JSON store is quadratic: 141 s at 50k).
SOPS_TIMEOUT=${SOPS_TIMEOUT:-20}
ROPS_VERSION=0.1.7
HYPERFINE_VERSION=1.19.0
SHARED=${GITSEAL_SHARED:-../shared}
CERT=$SHARED/fixtures/sealed-secrets/kseal-sealing-cert.pem
KEY=$SHARED/fixtures/sealed-secrets/kseal-sealing-key.pem
TOOLS=$ROOT/target/bench-tools
DOC=$ROOT/docs/benchmarks.md
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
OUT=$WORK/out # hyperfine's JSON and the benches' output, read by scripts/bench/report.py
mkdir -p "$OUT"
cat /proc/loadavg > "$OUT/load-start"
export SOPS_DISABLE_VERSION_CHECK=1
has() { [[ " $SECTIONS " == *" $1 "* ]]; }

# --- tools -----------------------------------------------------------------------------
if [ "$("$TOOLS/bin/hyperfine" --version 2>/dev/null)" != "hyperfine $HYPERFINE_VERSION" ]; then
  step "installing hyperfine ${HYPERFINE_VERSION} into $TOOLS"
  cargo install -q --locked hyperfine --version "$HYPERFINE_VERSION" --root "$TOOLS"
fi
# hyperfine, without its advice to use a quiet machine (the load is in the machine block).
hyperfine() {
  "$TOOLS/bin/hyperfine" "$@" 2> >(grep -v -e '^ *$' -e 'Warning: ' >&2)
}
command -v openssl >/dev/null || { echo "error: openssl is needed" >&2; exit 1; }
if { has sops || has startup; } && [ ! -x "$TOOLS/bin/rops" ]; then
  step "installing rops-cli ${ROPS_VERSION} into $TOOLS"
  cargo install -q --locked rops-cli --version "$ROPS_VERSION" --root "$TOOLS"
fi
if { has sops || has sealing; } && ! { [ -x "${GITSEAL_SOPS:-}" ] && [ -x "${GITSEAL_PYTHON:-}" ]; }; then
  install_python_oracles # exports GITSEAL_PYTHON and GITSEAL_SOPS
fi
if has controller && [ ! -x "${GITSEAL_MOTO_PYTHON:-}" ]; then
  install_moto # exports GITSEAL_MOTO_PYTHON
fi
NODE=()
if has sealing && command -v node >/dev/null && command -v npm >/dev/null; then
  if [ ! -d target/bench-js/node_modules/@socialgouv/aes-gcm-rsa-oaep ]; then
    step "installing @socialgouv/aes-gcm-rsa-oaep into target/bench-js"
    npm install --silent --no-audit --no-fund --prefix target/bench-js \
      @socialgouv/aes-gcm-rsa-oaep@1.1.4 js-yaml@4.1.0
  fi
  NODE=(env "NODE_PATH=$ROOT/target/bench-js/node_modules" node)
fi

step "cargo build --release -p gitseal"
cargo build --release -q --locked -p gitseal
if has controller; then
  step "cargo bench -p gitseal-controller --no-run"
  cargo bench -q --locked -p gitseal-controller --no-run 2>&1 | grep -v '^ *Executable' || true
fi
GITSEAL=$ROOT/target/release/gitseal
ln -s "$GITSEAL" "$WORK/sops"
ln -s "$GITSEAL" "$WORK/kubeseal"

# hyperfine without a shell; NAME=COMMAND pairs; standard input from $INPUT (default
# /dev/null). The runs are split into $ROUNDS rounds that take the commands in turn, so
# that a change in the machine's load falls on every command alike; the JSON of round i
# goes to $OUT/<file>.r<i>.json (scripts/bench/report.py pools the rounds' times).
bench() { # file runs warmup NAME=COMMAND...
  local file=$1 runs=$2 warmup=$3 args=() pair round rounds=${ROUNDS:-1}
  shift 3
  for pair in "$@"; do args+=(-n "${pair%%=*}" "${pair#*=}"); done
  mkdir -p "$(dirname "$OUT/$file")"
  [ "$runs" -lt "$rounds" ] && rounds=$runs
  for round in $(seq "$rounds"); do
    hyperfine -N -i --style none --runs $((runs / rounds)) --warmup "$warmup" \
      --input "${INPUT:-/dev/null}" --export-json "$OUT/$file.r$round.json" "${args[@]}" >/dev/null
  done
}

# --- start-up ----------------------------------------------------------------------------
if has startup || has sops; then
  # The floor: a hello world in Rust, static (no dynamic loader) and default (PIE).
  if [ ! -x "$TOOLS/hello-static" ] || [ ! -x "$TOOLS/hello-pie" ]; then
    mkdir -p "$TOOLS"
    echo 'fn main() { println!("hello"); }' > "$WORK/hello.rs"
    rustc -O -C panic=abort -C target-feature=+crt-static -o "$TOOLS/hello-static" "$WORK/hello.rs"
    rustc -O -o "$TOOLS/hello-pie" "$WORK/hello.rs"
  fi
fi
if has startup; then
  step "start-up"
  "$GITSEAL" keygen -o "$WORK/startup-key.txt" 2>/dev/null
  printf '{"a": "b"}\n' > "$WORK/tiny.json"
  recipient=$(sed -n 's/^# public key: //p' "$WORK/startup-key.txt")
  ROUNDS=3 bench startup/trivial 300 20 \
    "hello world, static=$TOOLS/hello-static" \
    "hello world, dynamic PIE=$TOOLS/hello-pie" \
    "gitseal --version=$GITSEAL --version" \
    "sops (gitseal) --version=$WORK/sops --version" \
    "kubeseal (gitseal) --version=$WORK/kubeseal --version" \
    "rops --help=$TOOLS/bin/rops --help" \
    "gitseal sops encrypt, 1-value JSON=$GITSEAL sops encrypt --age $recipient $WORK/tiny.json"
  size=$(stat -c %s "$GITSEAL")
  relocs=$(readelf -rW "$GITSEAL" | grep -c '^[0-9a-f]' || true)
  printf '{"size": %s, "relocations": %s, "rops_size": %s}\n' "$size" "$relocs" \
    "$(stat -c %s "$TOOLS/bin/rops" 2>/dev/null || echo 0)" > "$OUT/startup/binary.json"
fi

# --- SOPS --------------------------------------------------------------------------------
if has sops; then
  step "sops: gitseal, sops 3.11.0, rops; sizes $SIZES"
  mkdir -p "$WORK/in"
  "$GITSEAL" keygen -o "$WORK/key.txt" 2>/dev/null
  RECIPIENT=$(sed -n 's/^# public key: //p' "$WORK/key.txt")
  export SOPS_AGE_KEY_FILE=$WORK/key.txt
  ROPS_AGE=$(grep '^AGE-SECRET-KEY' "$WORK/key.txt") # rops reads its key from ROPS_AGE
  export ROPS_AGE
  # shellcheck disable=SC2086
  python3 scripts/bench/sops_inputs.py "$WORK/in" $SIZES
  for n in $SIZES; do
    runs=30 rounds=3 warmup=3 sops_runs=5
    [ "$n" -ge 10000 ] && runs=10 rounds=2 warmup=1 sops_runs=3
    [ "$n" -ge 50000 ] && runs=5 rounds=1 warmup=1 sops_runs=1
    for input in flat.yaml nested.yaml flat.json nested.json flat.env sections.ini; do
      shape=${input%.*} ext=${input##*.}
      plain=$WORK/in/$shape-$n.$ext
      enc=$WORK/in/$shape-$n.enc.$ext
      # Every tool decrypts the same file, written by gitseal (sops would take minutes at 50k).
      "$GITSEAL" sops encrypt --age "$RECIPIENT" "$plain" > "$enc"
      id=sops/$ext-$shape-$n
      echo "   $ext $shape $n"
      case $ext in
        yaml | json) # rops reads standard input (the file); gitseal its path argument
          ROUNDS=$rounds INPUT=$plain bench "$id-encrypt" "$runs" "$warmup" \
            "gitseal=$GITSEAL sops encrypt --age $RECIPIENT $plain" \
            "rops=$TOOLS/bin/rops encrypt --age $RECIPIENT -f $ext"
          ROUNDS=$rounds INPUT=$enc bench "$id-decrypt" "$runs" "$warmup" \
            "gitseal=$GITSEAL sops decrypt $enc" \
            "rops=$TOOLS/bin/rops decrypt -f $ext"
          ;;
        *)
          bench "$id-encrypt" "$runs" "$warmup" "gitseal=$GITSEAL sops encrypt --age $RECIPIENT $plain"
          bench "$id-decrypt" "$runs" "$warmup" "gitseal=$GITSEAL sops decrypt $enc"
          ;;
      esac
      # sops alone: fewer runs, stopped after SOPS_TIMEOUT seconds (exit status 124).
      bench "$id-encrypt-sops" "$sops_runs" 0 \
        "sops=timeout $SOPS_TIMEOUT $GITSEAL_SOPS encrypt --age $RECIPIENT $plain"
      bench "$id-decrypt-sops" "$sops_runs" 0 \
        "sops=timeout $SOPS_TIMEOUT $GITSEAL_SOPS decrypt $enc"
    done
  done
fi

# --- sealing -----------------------------------------------------------------------------
if has sealing; then
  step "sealing: gitseal, Python kubesealpy, JavaScript @socialgouv/aes-gcm-rsa-oaep"
  mkdir -p "$OUT/sealing"
  {
    printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: app, namespace: prod}\nstringData:\n'
    for i in $(seq 1 10); do printf '  key%02d: value-number-%02d-0123456789abcdef\n' "$i" "$i"; done
  } > "$WORK/secret10.yaml"
  peers=()
  [ -x "${GITSEAL_PYTHON:-}" ] && peers+=("Python kubesealpy=$GITSEAL_PYTHON scripts/bench/seal10.py $CERT")
  [ ${#NODE[@]} -gt 0 ] && peers+=("JavaScript aes-gcm-rsa-oaep=${NODE[*]} scripts/bench/seal10.js $CERT")
  ROUNDS=2 bench sealing/seal10 100 10 \
    "kubeseal (gitseal)=$WORK/kubeseal --cert $CERT -f $WORK/secret10.yaml" \
    "gitseal kubeseal=$GITSEAL kubeseal --cert $CERT -f $WORK/secret10.yaml" \
    "${peers[@]}"

  mkdir -p "$WORK/repo"
  for i in $(seq 1 1000); do
    printf -- '---\napiVersion: v1\nkind: Secret\nmetadata: {name: s%d, namespace: prod}\nstringData: {password: p%d}\n' "$i" "$i"
  done | "$GITSEAL" kubeseal --cert "$CERT" -o yaml > "$WORK/all.yaml"
  awk -v dir="$WORK/repo" '/^---$/ {n++} {print > (dir "/s" n ".yaml")}' "$WORK/all.yaml"
  openssl req -x509 -newkey rsa:4096 -nodes -subj /CN=new -days 30 \
    -keyout "$WORK/new.key" -out "$WORK/new.pem" 2>/dev/null
  cp -r "$WORK/repo" "$WORK/pristine"
  runs=("gitseal=$GITSEAL reseal $WORK/repo --cert $WORK/new.pem --private-key $KEY")
  [ -x "${GITSEAL_PYTHON:-}" ] && runs+=("Python kubesealpy=$GITSEAL_PYTHON scripts/bench/reseal.py $WORK/repo $WORK/new.pem $KEY")
  [ ${#NODE[@]} -gt 0 ] && runs+=("JavaScript aes-gcm-rsa-oaep=${NODE[*]} scripts/bench/reseal.js $WORK/repo $WORK/new.pem $KEY")
  args=()
  for pair in "${runs[@]}"; do args+=(-n "${pair%%=*}" "${pair#*=}"); done
  for round in 1 2 3; do # one run of each per round, in turn
    hyperfine -N -i --style none --runs 1 --export-json "$OUT/sealing/reseal.r$round.json" \
      --prepare "bash -c 'rm -rf $WORK/repo && cp -r $WORK/pristine $WORK/repo'" "${args[@]}" >/dev/null
  done
fi

# --- controller --------------------------------------------------------------------------
if has controller; then
  mkdir -p "$OUT/controller"
  step "controller: RSA-4096 private-key speed (openssl speed -seconds 3 rsa4096)"
  openssl speed -seconds 3 rsa4096 > "$OUT/controller/openssl.txt" 2>/dev/null
  step "controller: $CONTROLLER_OBJECTS SealedSecrets (cargo bench --bench scale, 1 run)"
  GITSEAL_BENCH_OBJECTS=$CONTROLLER_OBJECTS CARGO_INCREMENTAL=0 \
    cargo bench -q --locked -p gitseal-controller --bench scale 2>&1 | tee "$OUT/controller/scale.txt"
  step "controller: $CONTROLLER_OBJECTS ExternalSecrets over moto and $CONTROLLER_OBJECTS SopsSecrets (1 run)"
  GITSEAL_BENCH_OBJECTS=$CONTROLLER_OBJECTS GITSEAL_BENCH_SOPS=$CONTROLLER_OBJECTS \
    GITSEAL_BENCH_SEALED=0 GITSEAL_BENCH_SECRETS=$((CONTROLLER_OBJECTS / 10)) GITSEAL_BENCH_RUNS=1 \
    CARGO_INCREMENTAL=0 cargo bench -q --locked -p gitseal-controller --bench external_secrets 2>&1 \
    | tee "$OUT/controller/external_secrets.txt"
fi

# --- the document ------------------------------------------------------------------------
step "writing $DOC"
# shellcheck disable=SC2086
python3 scripts/bench/report.py "$OUT" "$DOC" "$(($(date +%s) - BEGAN))" $SECTIONS
echo "done in $(($(date +%s) - BEGAN)) s"
