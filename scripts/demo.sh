#!/usr/bin/env bash
# The whole gitseal flow on this machine, no cluster needed: a local Kubernetes API (the
# project's test server), the SealedSecret CRD applied with kubectl, gitseal-controller
# running against it, a Secret sealed with `gitseal seal`, applied with kubectl, and the
# Secret the controller makes from it.
#
#   bash scripts/demo.sh          # needs kubectl (preinstalled on the project's machines)
#
# Everything it starts is stopped when it ends; its files live in a temporary directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

step() { printf '\n==> %s\n' "$*"; }
command -v kubectl >/dev/null || { echo "error: kubectl is needed on PATH" >&2; exit 1; }

step "building gitseal, gitseal-controller and the test API server (release)"
cargo build --release --locked -q -p gitseal -p gitseal-controller -p gitseal-testkit
BIN=$ROOT/target/release

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_until() { # wait_until SECONDS COMMAND...: retries COMMAND until it succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "error: timed out: $*" >&2; return 1; }
    sleep 0.1
  done
}

step "starting a local Kubernetes API server"
"$BIN/kube-test-server" --kubeconfig "$WORK/kubeconfig" > "$WORK/server.out" &
PIDS+=($!)
wait_until 10 test -s "$WORK/server.out"
export KUBECONFIG=$WORK/kubeconfig
kubectl version 2>/dev/null | head -2 || true

step "kubectl apply -f charts/gitseal/crds/   (the SealedSecret CRD)"
kubectl apply -f charts/gitseal/crds/

API_PORT=$(free_port)
step "starting gitseal-controller (HTTP API on 127.0.0.1:$API_PORT, log in controller.log)"
POD_NAMESPACE=kube-system "$BIN/gitseal-controller" \
  --listen-addr "127.0.0.1:$API_PORT" --listen-metrics-addr "127.0.0.1:$(free_port)" \
  > "$WORK/controller.log" 2>&1 &
PIDS+=($!)
# The first start generates an RSA-4096 sealing key; /v1/cert.pem serves it.
CERT_URL="http://127.0.0.1:$API_PORT/v1/cert.pem"
wait_until 60 "$BIN/gitseal" kubeseal --cert "$CERT_URL" --fetch-cert
"$BIN/gitseal" kubeseal --cert "$CERT_URL" --fetch-cert > "$WORK/cert.pem"
"$BIN/gitseal" cert --cert "$WORK/cert.pem" --info

step "gitseal seal: a Secret becomes a SealedSecret that is safe to commit"
cat > "$WORK/secret.yaml" <<'EOF'
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: demo
type: Opaque
stringData:
  password: correct-horse-battery-staple
EOF
"$BIN/gitseal" seal "$WORK/secret.yaml" --cert "$WORK/cert.pem" -o "$WORK/db-sealed.yaml"
cut -c1-100 "$WORK/db-sealed.yaml"

step "kubectl apply -f db-sealed.yaml"
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n' | kubectl apply -f -
kubectl apply -f "$WORK/db-sealed.yaml"

step "the controller made the Secret"
wait_until 30 kubectl get secret db -n demo
wait_until 30 sh -c "kubectl get sealedsecret db -n demo -o jsonpath='{.status.conditions[0].status}' | grep -qx True"
kubectl get sealedsecret,secret -n demo
printf 'password: '
kubectl get secret db -n demo -o jsonpath='{.data.password}' | base64 -d
printf '\n'
test "$(kubectl get secret db -n demo -o jsonpath='{.data.password}' | base64 -d)" = correct-horse-battery-staple

step "demo complete: sealed with gitseal, applied with kubectl, unsealed by gitseal-controller"
