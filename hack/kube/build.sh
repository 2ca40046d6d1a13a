#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries that hack/kube/up.sh starts:
#
#   etcd                     go.etcd.io/etcd/server/v3 v3.7.0
#   kube-apiserver           k8s.io/kubernetes v1.37.2
#   kube-controller-manager  k8s.io/kubernetes v1.37.2
#   kube-scheduler           k8s.io/kubernetes v1.37.2
#   kwok                     sigs.k8s.io/kwok v0.8.0
#
# into a cache folder keyed by version, outside the work tree:
#
#   ${MLSHIP_KUBE_CACHE:-/var/cache/mlship/kube-v1.37.2}/bin
#
# ($HOME/.cache/mlship/kube-v1.37.2 when /var/cache is not writable).
# Idempotent: exits at once when all five binaries are there. A cold build
# costs 7-10 minutes on 2 cores (about 1 GB of module cache, 4 GB of build
# cache, 380 MB of binaries). The first four come from the wrapper module in
# hack/kube/tools (its go.mod and go.sum are committed: no `go mod tidy` here).
#
# Usage: hack/kube/build.sh [--print-dir]
#   --print-dir   print the bin folder (where the binaries are or will be) and exit
set -euo pipefail
export LC_ALL=C

KUBE_VERSION=v1.37.2
KWOK_VERSION=v0.8.0
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

cache_dir() {
  if [ -n "${MLSHIP_KUBE_CACHE:-}" ]; then
    echo "$MLSHIP_KUBE_CACHE"; return
  fi
  local sys=/var/cache/mlship/kube-$KUBE_VERSION
  if [ -d "$sys" ] && [ -w "$sys" ]; then echo "$sys"; return; fi
  if [ ! -e "$sys" ] && mkdir -p "$sys" 2>/dev/null; then echo "$sys"; return; fi
  echo "${XDG_CACHE_HOME:-$HOME/.cache}/mlship/kube-$KUBE_VERSION"
}
CACHE=$(cache_dir)
BIN=$CACHE/bin

if [ "${1:-}" = "--print-dir" ]; then
  echo "$BIN"; exit 0
fi

all_there() {
  local b
  for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || return 1; done
}
if all_there; then
  echo "kube: binaries present ($BIN)"
  exit 0
fi

mkdir -p "$CACHE" "$BIN"
# One build at a time per cache folder.
exec 9>"$CACHE/.build.lock"
if command -v flock >/dev/null 2>&1; then
  if ! flock -n 9; then
    echo "kube: another build holds $CACHE/.build.lock, waiting..."
    flock 9
  fi
  if all_there; then echo "kube: binaries present ($BIN)"; exit 0; fi
fi

command -v go >/dev/null 2>&1 || { echo "hack/kube/build.sh: go not found on PATH" >&2; exit 1; }

START=$(date +%s)
elapsed() { echo "$(( $(date +%s) - START ))s"; }
log() { echo "kube: [$(elapsed)] $*"; }

# GOPATH and GOMODCACHE stay at their defaults (or whatever the caller set).
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export CGO_ENABLED=0
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

TMP=$(mktemp -d "$CACHE/.build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

log "building into $BIN ($(go version | awk '{print $3}'), $(nproc 2>/dev/null || echo ?) cores); cold: 7-10 minutes on 2 cores"

need_k8s=0
for b in etcd kube-apiserver kube-controller-manager kube-scheduler; do
  [ -x "$BIN/$b" ] || need_k8s=1
done

if [ "$need_k8s" = 1 ]; then
  log "downloading modules for k8s.io/kubernetes $KUBE_VERSION and etcd (hack/kube/tools)"
  (cd "$HERE/tools" && go mod download)
  major=${KUBE_VERSION#v}; major=${major%%.*}
  minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
  V=k8s.io/component-base/version
  LDFLAGS="-s -w -X $V.gitVersion=$KUBE_VERSION -X $V.gitMajor=$major -X $V.gitMinor=$minor"
  LDFLAGS="$LDFLAGS -X $V.gitTreeState=clean -X $V.buildDate=1970-01-01T00:00:00Z"
  log "compiling etcd, kube-apiserver, kube-controller-manager, kube-scheduler (the long part)"
  # Progress: a line every 30 s while the compiler runs.
  # (It closes the lock and its sleeps hold no output pipe, so killing it
  # leaves nothing that keeps a caller's pipe open.)
  ( exec 9>&-; while sleep 30 </dev/null >/dev/null 2>&1; do log "still compiling..."; done ) &
  ticker=$!
  rc=0
  (cd "$HERE/tools" && go build -trimpath -ldflags "$LDFLAGS" -o "$TMP/" \
    go.etcd.io/etcd/server/v3 \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler) || rc=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  [ "$rc" = 0 ] || { echo "hack/kube/build.sh: go build failed (rc=$rc)" >&2; exit "$rc"; }
  mv -f "$TMP/server" "$BIN/etcd"
  for b in kube-apiserver kube-controller-manager kube-scheduler; do mv -f "$TMP/$b" "$BIN/$b"; done
  log "built etcd, kube-apiserver, kube-controller-manager, kube-scheduler"
fi

if [ ! -x "$BIN/kwok" ]; then
  log "compiling kwok $KWOK_VERSION"
  # `go install pkg@version` uses kwok's own go.mod; -mod=mod is not allowed there.
  GOFLAGS=$(echo " $GOFLAGS " | sed 's/ -mod=[a-z]* / /g') GOBIN="$TMP" \
    go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  mv -f "$TMP/kwok" "$BIN/kwok"
  log "built kwok"
fi

all_there || { echo "hack/kube/build.sh: binaries missing after the build" >&2; exit 1; }
echo "$KUBE_VERSION" >"$CACHE/VERSION"
log "done: $(du -sh "$BIN" | cut -f1) of binaries in $BIN (took $(elapsed))"
