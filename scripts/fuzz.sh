#!/usr/bin/env bash
# Runs gitseal's fuzz targets (fuzz/, cargo fuzz with libFuzzer) for a while.
#
#   bash scripts/fuzz.sh TARGET SECONDS   # one target
#   bash scripts/fuzz.sh all SECONDS      # every target in turn, SECONDS each
#   bash scripts/fuzz.sh list             # the targets
#
# Needs the nightly toolchain (`rustup toolchain install nightly`); installs cargo-fuzz
# (pinned) under target/tools if it is missing, and builds what it needs. Each run starts
# from the committed seeds in fuzz/corpus/TARGET and writes new inputs to the scratch
# corpus fuzz/target/corpus/TARGET (fuzz/target/none/corpus/TARGET without the sanitizer),
# so the committed corpus stays small. Inputs are limited to 10 s each and the process to
# 2 GiB: a slower input is a hang, a bigger process an out-of-memory, and both count as
# crashes.
#
# Exits non-zero when a target crashes (panics, fails an assertion, hangs or runs out of
# memory), after printing the path of the input that did it (under fuzz/artifacts/).
#
# FUZZ_SANITIZER=none builds without AddressSanitizer, in its own target directory (its
# cold build was only ~15% shorter, so scripts/test.sh keeps the default, address).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

CARGO_FUZZ_VERSION="0.13.1"
SANITIZER="${FUZZ_SANITIZER:-address}"
TOOLS="$ROOT/target/tools"

usage() {
  echo "usage: $0 TARGET|all SECONDS, or $0 list" >&2
  exit 2
}

install_cargo_fuzz() {
  if [ -x "$TOOLS/bin/cargo-fuzz" ] \
    && [ "$("$TOOLS/bin/cargo-fuzz" --version)" = "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    return
  fi
  echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS" >&2
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" --root "$TOOLS"
}

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "error: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
  exit 1
fi
install_cargo_fuzz
export PATH="$TOOLS/bin:$PATH"
cd "$ROOT/fuzz"

targets=$(cargo +nightly fuzz list)
[ "${1:-}" = list ] && { echo "$targets"; exit 0; }
[ $# -eq 2 ] || usage
what=$1
seconds=$2
[[ "$seconds" =~ ^[0-9]+$ ]] || usage
if [ "$what" = all ]; then
  selected=$targets
elif grep -qxF "$what" <<<"$targets"; then
  selected=$what
else
  echo "error: no fuzz target named '$what'; the targets are:" >&2
  echo "$targets" >&2
  exit 2
fi

build=(-O --sanitizer "$SANITIZER")
work=target
if [ "$SANITIZER" != address ]; then
  work="target/$SANITIZER"
  build+=(--target-dir "$work")
fi
echo "==> building the fuzz targets (sanitizer: $SANITIZER)" >&2
cargo +nightly fuzz build "${build[@]}"

failed=()
for target in $selected; do
  scratch="$work/corpus/$target"
  mkdir -p "$scratch" "artifacts/$target" "$work/logs"
  seeds=()
  [ -d "corpus/$target" ] && seeds=("corpus/$target")
  log="$work/logs/$target.log"
  echo "==> fuzzing $target for ${seconds}s" >&2
  status=0
  # New inputs go to the first corpus directory: the scratch one.
  cargo +nightly fuzz run "${build[@]}" "$target" "$scratch" "${seeds[@]}" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corpus=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  if [ "$status" = 0 ]; then
    echo "$target: no crash, ${seconds}s, ${execs:-?} executions, corpus ${corpus:-?}" >&2
  else
    tail -n 40 "$log" >&2
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    echo "$target: CRASH after ${execs:-?} executions; input: ${artifact:-none written, see fuzz/$log}" >&2
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "error: crashed: ${failed[*]} (inputs under fuzz/artifacts/, logs under fuzz/$work/logs/)" >&2
  exit 1
fi
