#!/usr/bin/env bash
# Starts a Kubernetes control plane for tests, all of its state in DIR:
#
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler (real, built
#   by hack/kube/build.sh) and kwok, which simulates one node ("kwok-node-0")
#   and the pods on it: nothing runs, pods become Ready at once (stages in
#   hack/kube/stages/), except "unready" ones (an image containing "unready",
#   or the annotation mlship.dev/kwok-unready: "true"), which stay Pending,
#   not ready, waiting on ImagePullBackOff.
#
# Usage: hack/kube/up.sh DIR
#
# Writes, in DIR:
#   kubeconfig           admin (group system:masters), namespace default
#   kubeconfig-limited   user "limited": RBAC allows only get/list/watch on
#                        pods in namespace default (for permission errors)
#   env                  shell lines: KUBE_SERVER, KUBE_ADMIN_TOKEN, KUBE_LIMITED_TOKEN,
#                        KUBE_NODE, KUBE_*_PORT
#   certs/ca.crt         the CA of the apiserver's serving certificate
#   certs/ etcd/ logs/*.log pids/*.pid tokens.csv sa.key sa.pub
# and exits 0 once the node is Ready and namespace default has its default
# ServiceAccount (about 5 s). Every listener is on 127.0.0.1. On failure it
# prints the tail of each log, stops what it started and exits non-zero.
# hack/kube/down.sh DIR stops it all.
#
# Environment:
#   MLSHIP_KUBE_BIN               folder of the binaries (default: where build.sh puts them)
#   MLSHIP_KUBE_APISERVER_PORT    apiserver port (default: a free one)
#   MLSHIP_KUBE_ETCD_PORT         etcd client port (default: a free one)
#   MLSHIP_KUBE_ETCD_PEER_PORT    etcd peer port (default: a free one)
#   MLSHIP_KUBE_UP_TIMEOUT        seconds to wait for each step (default 60)
set -euo pipefail
trap 'echo "hack/kube/up.sh: failed (line $LINENO, exit $?)" >&2' ERR
export LC_ALL=C

die() { echo "hack/kube/up.sh: $*" >&2; exit 1; }
[ $# = 1 ] || die "usage: hack/kube/up.sh DIR"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
BIN=${MLSHIP_KUBE_BIN:-$("$HERE/build.sh" --print-dir)}
TIMEOUT=${MLSHIP_KUBE_UP_TIMEOUT:-60}
NODE=kwok-node-0

for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
  [ -x "$BIN/$b" ] || die "$BIN/$b missing: run hack/setup.sh (or hack/kube/build.sh)"
done
for c in openssl curl setsid; do
  command -v "$c" >/dev/null 2>&1 || die "$c not found on PATH"
done
[ ! -e "$DIR/pids/kube-apiserver.pid" ] || die "$DIR already holds a control plane: hack/kube/down.sh $DIR first"

START=$(date +%s%N)
elapsed() { local now; now=$(date +%s%N); printf '%d.%01ds' $(((now - START) / 1000000000)) $((((now - START) / 100000000) % 10)); }
log() { echo "kube-up: [$(elapsed)] $*"; }

mkdir -p "$DIR/certs" "$DIR/etcd" "$DIR/logs" "$DIR/pids" "$DIR/kwok"
chmod 700 "$DIR"

fail() {
  echo "hack/kube/up.sh: $*" >&2
  local f
  for f in "$DIR"/logs/*.log; do
    [ -f "$f" ] || continue
    echo "----- tail of $f" >&2
    tail -n 25 "$f" >&2
  done
  "$HERE/down.sh" "$DIR" >&2 || true
  exit 1
}

# ---- ports: free ones on 127.0.0.1 (below the ephemeral range), unless given.
listening_ports() {
  local f line local_addr st
  for f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$f" ] || continue
    while read -r _ local_addr _ st _; do
      [ "$st" = 0A ] || continue
      echo $((16#${local_addr##*:}))
    done < <(tail -n +2 "$f")
  done
}
USED=" $(listening_ports | tr '\n' ' ') "
pick_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    case "$USED" in *" $p "*) continue ;; esac
    USED="$USED$p "
    echo "$p"; return 0
  done
  die "no free port found"
}
ETCD_PORT=${MLSHIP_KUBE_ETCD_PORT:-$(pick_port)}; USED="$USED$ETCD_PORT "
ETCD_PEER_PORT=${MLSHIP_KUBE_ETCD_PEER_PORT:-$(pick_port)}; USED="$USED$ETCD_PEER_PORT "
API_PORT=${MLSHIP_KUBE_APISERVER_PORT:-$(pick_port)}; USED="$USED$API_PORT "
SERVER=https://127.0.0.1:$API_PORT

# ---- keys, certificates, tokens, kubeconfigs.
# A CA of our own signs the apiserver's serving certificate (the apiserver's
# self-signed one puts its leaf first in the bundle, which the
# controller-manager's ClusterTrustBundle publisher rejects).
CERTS=$DIR/certs
CA=$CERTS/ca.crt
openssl ecparam -name prime256v1 -genkey -noout -out "$CERTS/ca.key" 2>/dev/null
openssl req -x509 -new -key "$CERTS/ca.key" -subj "/CN=mlship-test-ca" -days 3650 \
  -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$CA" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$CERTS/apiserver.key" 2>/dev/null
openssl req -new -key "$CERTS/apiserver.key" -subj "/CN=kube-apiserver" 2>/dev/null |
  openssl x509 -req -CA "$CA" -CAkey "$CERTS/ca.key" -set_serial "0x$(openssl rand -hex 8)" -days 3650 \
    -out "$CERTS/apiserver.crt" -extfile <(printf '%s\n' \
      "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1" \
      "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth") 2>/dev/null
openssl genrsa -out "$DIR/sa.key" 2048 2>/dev/null
openssl rsa -in "$DIR/sa.key" -pubout -out "$DIR/sa.pub" 2>/dev/null
ADMIN_TOKEN=$(openssl rand -hex 24)
LIMITED_TOKEN=$(openssl rand -hex 24)
umask 077
cat >"$DIR/tokens.csv" <<EOF
$ADMIN_TOKEN,admin,admin,system:masters
$LIMITED_TOKEN,limited,limited
EOF
kubeconfig() { # FILE USER TOKEN
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: mlship-test
  cluster:
    server: $SERVER
    certificate-authority: $CA
users:
- name: $2
  user:
    token: $3
contexts:
- name: mlship-test
  context:
    cluster: mlship-test
    user: $2
    namespace: default
current-context: mlship-test
EOF
}
kubeconfig "$DIR/kubeconfig" admin "$ADMIN_TOKEN"
kubeconfig "$DIR/kubeconfig-limited" limited "$LIMITED_TOKEN"
cat >"$DIR/env" <<EOF
KUBE_SERVER=$SERVER
KUBE_ADMIN_TOKEN=$ADMIN_TOKEN
KUBE_LIMITED_TOKEN=$LIMITED_TOKEN
KUBE_NODE=$NODE
KUBE_APISERVER_PORT=$API_PORT
KUBE_ETCD_PORT=$ETCD_PORT
KUBE_ETCD_PEER_PORT=$ETCD_PEER_PORT
EOF
umask 022

# ---- processes: each in its own session (setsid), pid in pids/NAME.pid.
start() { # NAME ARGS...
  local name=$1; shift
  setsid "$@" </dev/null >"$DIR/logs/$name.log" 2>&1 &
  echo $! >"$DIR/pids/$name.pid"
}
alive() { kill -0 "$(cat "$DIR/pids/$1.pid")" 2>/dev/null; }

api() { # METHOD PATH [JSON]: prints the body, fails on HTTP >= 400
  local args=(-sS --fail-with-body --max-time "${CURL_TIMEOUT:-10}" --cacert "$CA" -H "Authorization: Bearer $ADMIN_TOKEN" -X "$1")
  [ $# -lt 3 ] || args+=(-H "Content-Type: application/json" --data-binary "$3")
  curl "${args[@]}" "$SERVER$2"
}
wait_for() { # WHAT CMD...: polls CMD every 0.1 s, fails after TIMEOUT
  local what=$1; shift
  local deadline=$(($(date +%s) + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    local p
    for p in "$DIR"/pids/*.pid; do
      kill -0 "$(cat "$p")" 2>/dev/null || fail "$(basename "$p" .pid) exited while waiting for $what"
    done
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${TIMEOUT}s waiting for $what"
    sleep 0.1
  done
  log "$what"
}

log "starting in $DIR (apiserver $SERVER, binaries $BIN)"
start etcd "$BIN/etcd" --name mlship \
  --data-dir "$DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "mlship=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync --quota-backend-bytes=$((1 << 30))

start kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
  --endpoint-reconciler-type none \
  --tls-cert-file "$CERTS/apiserver.crt" --tls-private-key-file "$CERTS/apiserver.key" \
  --token-auth-file "$DIR/tokens.csv" \
  --authorization-mode Node,RBAC \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$DIR/sa.pub" \
  --service-account-signing-key-file "$DIR/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16

readyz() { [ "$(CURL_TIMEOUT=2 api GET /readyz)" = ok ]; }
wait_for "apiserver ready" readyz

start kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig "$DIR/kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 0 \
  --leader-elect=false \
  --service-account-private-key-file "$DIR/sa.key" \
  --root-ca-file "$CA"

start kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig "$DIR/kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 0 \
  --leader-elect=false

# kwok: no --server-address and no --node-port, so it opens no port. It renews
# the node's Lease (--node-lease-duration-seconds), which the heartbeat stage
# (heartbeat-with-lease: a status update only every 10 minutes) relies on:
# without it the node controller marks the node NotReady after its grace
# period whenever a status update is late, as happens on busy machines.
KWOK_WORKDIR="$DIR/kwok" start kwok "$BIN/kwok" \
  --kubeconfig "$DIR/kubeconfig" \
  -c "$HERE/stages/node.yaml" -c "$HERE/stages/pod.yaml" \
  --manage-all-nodes=false \
  --node-lease-duration-seconds 40 \
  --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake

# RBAC for the limited user: read pods in namespace default, nothing else.
api POST /apis/rbac.authorization.k8s.io/v1/namespaces/default/roles '{
  "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
  "metadata": {"name": "mlship-limited-pod-reader", "namespace": "default"},
  "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
}' >/dev/null || fail "creating the limited user's Role"
api POST /apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings '{
  "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
  "metadata": {"name": "mlship-limited-pod-reader", "namespace": "default"},
  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "mlship-limited-pod-reader"},
  "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "limited"}]
}' >/dev/null || fail "creating the limited user's RoleBinding"

# The simulated node: kwok manages it (annotation) and reports it Ready.
api POST /api/v1/nodes '{
  "apiVersion": "v1", "kind": "Node",
  "metadata": {
    "name": "'"$NODE"'",
    "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
    "labels": {
      "type": "kwok",
      "kubernetes.io/arch": "amd64",
      "kubernetes.io/os": "linux",
      "kubernetes.io/hostname": "'"$NODE"'"
    }
  },
  "status": {
    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
    "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
    "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"}
  }
}' >/dev/null || fail "creating node $NODE"

node_ready() {
  api GET "/api/v1/nodes/$NODE" | tr -d ' \n' | grep -q '"type":"Ready","status":"True"'
}
wait_for "node $NODE Ready" node_ready
wait_for "ServiceAccount default/default" api GET /api/v1/namespaces/default/serviceaccounts/default

log "ready: KUBECONFIG=$DIR/kubeconfig (limited: $DIR/kubeconfig-limited); stop with hack/kube/down.sh $DIR"
