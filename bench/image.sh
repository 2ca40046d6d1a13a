#!/usr/bin/env bash
# Image benchmark: `mlship build-push-image` against `crane append` + `crane
# mutate` of the same two layers (server, model) to the same local registry
# (Debian's docker-registry on 127.0.0.1, no auth). Prints the build+push time
# of each (median of REPEAT) and their ratio, the compressed image size (target
# <= 10 MB) and the bytes sent when only the model changes (push image A, then
# image B retrained with another seed, to the same repository, through a
# counting proxy). What is measured and how: bench/README.md. Run from anywhere:
#   bench/image.sh            (or: make bench-image)
# Environment (all optional):
#   MLSHIP=path        mlship binary (default: go build ./cmd/mlship into a temp dir)
#   MLSHIP_SERVE=path  mlship-serve binary for the image, passed as --server-bin
#                      (default: CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' ./cmd/mlship-serve)
#   CRANE=path         crane binary (default: go install .../cmd/crane@v0.22.1 into
#                      ${XDG_CACHE_HOME:-$HOME/.cache}/mlship/bin when missing there)
#   DATA=path          heart.csv (default: examples/heart-disease/heart.csv, then ../shared/data/...)
#   REPEAT=3           timed runs of each tool; the table shows medians
#   WARMUP=1           untimed runs of each tool first (page cache)
#   SEED_A=1 SEED_B=2  training seeds of models A and B (the model-only change)
#   PYTHON=/usr/bin/python3  runs bench/image/table.py and small helpers (stdlib only)
#   STRICT=1           exit 1 when a target is missed (default: targets are reported only)
#   KEEP=1             keep the work directory (models, tarballs, outputs, registry log)
set -euo pipefail
export LC_ALL=C

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PY=${PYTHON:-/usr/bin/python3}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-1}
SEED_A=${SEED_A:-1}
SEED_B=${SEED_B:-2}
CRANE_VERSION=v0.22.1
CACHE_BIN=${XDG_CACHE_HOME:-$HOME/.cache}/mlship/bin

die() { echo "bench/image.sh: $*" >&2; exit 1; }
say() { echo "bench/image.sh: $*" >&2; }
now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "$EPOCHREALTIME"; else date +%s.%N; fi; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }

[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT=$REPEAT: want a positive integer"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP=$WARMUP: want a number"
[ "$SEED_A" != "$SEED_B" ] || die "SEED_A and SEED_B must differ"
[ -x "$PY" ] || die "$PY not found (set PYTHON)"
command -v go >/dev/null || die "go not found"
command -v tar >/dev/null || die "tar not found"

if [ -z "${DATA:-}" ]; then
  for d in examples/heart-disease/heart.csv ../shared/data/heart-disease/heart.csv; do
    if [ -f "$d" ]; then DATA=$d; break; fi
  done
fi
[ -n "${DATA:-}" ] || die "no heart.csv in examples/heart-disease/ or ../shared/data/heart-disease/ (set DATA)"
[ -f "$DATA" ] || die "DATA=$DATA: no such file"

# The registry: Debian's docker-registry, installed by hack/setup.sh.
if ! command -v docker-registry >/dev/null; then
  say "docker-registry missing: running hack/setup.sh"
  bash hack/setup.sh >&2 || die "hack/setup.sh failed"
  command -v docker-registry >/dev/null || die "docker-registry still not on PATH"
fi

# crane, at a fixed version, cached.
if [ -z "${CRANE:-}" ]; then
  CRANE=$CACHE_BIN/crane
  if [ ! -x "$CRANE" ] || [ "$("$CRANE" version 2>/dev/null)" != "$CRANE_VERSION" ]; then
    say "installing crane $CRANE_VERSION into $CACHE_BIN"
    mkdir -p "$CACHE_BIN"
    (cd / && GOBIN=$CACHE_BIN GOFLAGS= go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION") >&2 ||
      die "go install crane@$CRANE_VERSION failed"
  fi
fi
[ -x "$CRANE" ] || die "CRANE=$CRANE is not executable"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mlship-bench-image.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "work directory: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

GOARCH=$(go env GOARCH)
PLATFORM=linux/$GOARCH

if [ -z "${MLSHIP:-}" ]; then
  [ -f cmd/mlship/main.go ] || die "cmd/mlship/main.go not found (set MLSHIP)"
  say "building mlship"
  go build -o "$WORK/mlship" ./cmd/mlship || die "go build ./cmd/mlship failed"
  MLSHIP=$WORK/mlship
fi
[ -x "$MLSHIP" ] || die "MLSHIP=$MLSHIP is not executable"
"$MLSHIP" build-push-image --help >/dev/null 2>&1 || die "$MLSHIP has no build-push-image command"
if [ -z "${MLSHIP_SERVE:-}" ]; then
  say "building mlship-serve ($PLATFORM, static, stripped)"
  CGO_ENABLED=0 GOOS=linux GOARCH=$GOARCH go build -trimpath -ldflags '-s -w -buildid=' -o "$WORK/mlship-serve" ./cmd/mlship-serve ||
    die "go build ./cmd/mlship-serve failed"
  MLSHIP_SERVE=$WORK/mlship-serve
fi
[ -f "$MLSHIP_SERVE" ] || die "MLSHIP_SERVE=$MLSHIP_SERVE: no such file"
go build -o "$WORK/proxy" ./bench/image || die "go build ./bench/image (the counting proxy) failed"

# Models A and B: same data and settings, another seed.
for m in A B; do
  seed=SEED_$m
  "$MLSHIP" train --data "$DATA" --target target --binarize '>0' --out "$WORK/model-$m" -q --seed "${!seed}" \
    >"$WORK/train-$m.out" 2>"$WORK/train-$m.err" || { tail -n 20 "$WORK/train-$m.err" >&2; die "mlship train (model $m) failed"; }
done
cmp -s "$WORK/model-A/model.safetensors" "$WORK/model-B/model.safetensors" 2>/dev/null &&
  die "models A and B have the same weights (seeds $SEED_A, $SEED_B)"

# The crane side's layers, as tarballs: what mlship puts in its two layers,
# sorted, root-owned, mtime 0.
TAR=(tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=pax
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime)
CA=/etc/ssl/certs/ca-certificates.crt
t0=$(now)
srv=$WORK/server-root
mkdir -p "$srv/etc" "$srv/home/nonroot" "$srv/tmp"
chmod 1777 "$srv/tmp"
cp "$MLSHIP_SERVE" "$srv/mlship-serve"
chmod 0755 "$srv/mlship-serve"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$srv/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$srv/etc/group"
if [ -f "$CA" ]; then mkdir -p "$srv/etc/ssl/certs" && cp "$CA" "$srv/etc/ssl/certs/"; fi
"${TAR[@]}" -cf "$WORK/server.tar" -C "$srv" mlship-serve etc home tmp
for m in A B; do
  mkdir -p "$WORK/model-root-$m"
  cp -r "$WORK/model-$m" "$WORK/model-root-$m/model"
  "${TAR[@]}" -cf "$WORK/model-$m.tar" -C "$WORK/model-root-$m" model
done
t1=$(now)
TAR_SECONDS=$(elapsed "$t0" "$t1")

# The registry, on a free port of 127.0.0.1.
free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
# wait_http URL PID: until URL answers 200 or 401, PID exits, or 10 s pass.
wait_http() {
  "$PY" - "$1" "$2" <<'EOF'
import os, sys, time, urllib.error, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 10
while time.time() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)
    try:
        urllib.request.urlopen(url, timeout=1).close()
        sys.exit(0)
    except urllib.error.HTTPError as e:
        if e.code == 401:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.02)
sys.exit(1)
EOF
}
REG=
for attempt in 1 2 3 4 5; do
  port=$(free_port)
  cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: mlship-bench
EOF
  docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
  pid=$!
  if wait_http "http://127.0.0.1:$port/v2/" "$pid"; then
    PIDS+=("$pid"); REG=127.0.0.1:$port; break
  fi
  kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  grep -q 'address already in use' "$WORK/registry.log" || { tail -n 20 "$WORK/registry.log" >&2; die "docker-registry did not start"; }
done
[ -n "$REG" ] || die "docker-registry: no free port after 5 tries"

# The counting proxy in front of it (for the model-only change).
"$WORK/proxy" -upstream "$REG" -addr-file "$WORK/proxy.addr" 2>"$WORK/proxy.log" &
pid=$!
PIDS+=("$pid")
for _ in $(seq 100); do [ -s "$WORK/proxy.addr" ] && break; sleep 0.05; done
PROXY=$(cat "$WORK/proxy.addr" 2>/dev/null) || die "the counting proxy did not start: $(cat "$WORK/proxy.log")"
wait_http "http://$PROXY/v2/" "$pid" || die "the counting proxy does not answer"
counter() { "$PY" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' "http://$PROXY/_counter"; }
counter_reset() { "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="POST")).close()' "http://$PROXY/_counter/reset"; }

# mlship_push MODEL REF OUT: build and push with mlship, JSON result in OUT.
mlship_push() {
  "$MLSHIP" build-push-image --model "$1" --image "$2" --platform "$PLATFORM" --push --smoke-test=false \
    --server-bin "$PLATFORM=$MLSHIP_SERVE" --json -q >"$3" 2>"$3.err" ||
    { tail -n 20 "$3.err" >&2; die "mlship build-push-image $2 failed"; }
}
# crane_meta MLSHIP_JSON: crane mutate flags giving the image mlship's config
# and annotations (one per line of the output file, NUL-separated).
crane_meta() {
  "$PY" - "$1" "$PLATFORM" >"$1.crane-args" <<'EOF'
import csv, io, json, sys
res = json.load(open(sys.argv[1]))
def q(k, v):
    # pflag's stringToString keeps a value with one "=" as it is (less
    # surrounding quotes) and reads one with more as a CSV record.
    kv = f"{k}={v}"
    if kv.count("=") == 1 and not kv.endswith('"'):
        return kv
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="").writerow([kv])
    return buf.getvalue()
args = ["--entrypoint", "/mlship-serve", "--user", "65532:65532", "--exposed-ports", "8080/tcp",
        "--workdir", "/", "--set-platform", sys.argv[2],
        "-e", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "-e", "MLSHIP_MODEL_DIR=/model", "-e", "MLSHIP_ADDR=:8080",
        "-e", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"]
for k, v in sorted(res.get("annotations", {}).items()):
    args += ["-l", q(k, v), "-a", q(k, v)]
sys.stdout.write("\0".join(args) + "\0")
EOF
}
# crane_push MODEL_TAR REF META_ARGS_FILE LOG: append + mutate.
crane_push() {
  local meta=()
  mapfile -d '' meta <"$3"
  "$CRANE" append --oci-empty-base --platform "$PLATFORM" -f "$WORK/server.tar" -f "$1" -t "$2" >"$4" 2>&1 &&
    "$CRANE" mutate "$2" "${meta[@]}" -t "$2" >>"$4" 2>&1 ||
    { tail -n 20 "$4" >&2; die "crane append/mutate $2 failed"; }
}
manifest() { "$CRANE" manifest "$1" >"$2" || die "crane manifest $1 failed"; }

RUNS=$WORK/runs.jsonl
: >"$RUNS"
# The mlship result of a first push of model A gives the annotations the crane
# image gets too, so that both push the same config.
mlship_push "$WORK/model-A" "$REG/meta-a:v1" "$WORK/meta-A.json"
crane_meta "$WORK/meta-A.json"
mlship_push "$WORK/model-B" "$REG/meta-b:v1" "$WORK/meta-B.json"
crane_meta "$WORK/meta-B.json"

# run IMPL REP: one build+push of model A to a fresh repository; REP 0 is a warm-up.
run() {
  local impl=$1 rep=$2 ref out t0 t1
  ref=$REG/bench-$impl-$rep:v1
  out=$WORK/$impl-$rep
  t0=$(now)
  case $impl in
    mlship) mlship_push "$WORK/model-A" "$ref" "$out.json" ;;
    crane) crane_push "$WORK/model-A.tar" "$ref" "$WORK/meta-A.json.crane-args" "$out.log" ;;
  esac
  t1=$(now)
  [ "$rep" = 0 ] && return 0
  manifest "$ref" "$out.manifest"
  printf '{"impl":"%s","rep":%s,"seconds":%s,"result":"%s","manifest":"%s"}\n' \
    "$impl" "$rep" "$(elapsed "$t0" "$t1")" "$out.json" "$out.manifest" >>"$RUNS"
}

say "registry $REG, proxy $PROXY; timing $REPEAT run(s) of each after $WARMUP warm-up(s)"
for ((w = 0; w < WARMUP; w++)); do run mlship 0; run crane 0; done
for ((rep = 1; rep <= REPEAT; rep++)); do
  # Alternate the order, so neither always runs on a registry just written to.
  if ((rep % 2)); then run mlship "$rep"; run crane "$rep"; else run crane "$rep"; run mlship "$rep"; fi
done

# Model-only change, through the counting proxy: A, then B to the same repository.
DELTA=$WORK/delta.jsonl
: >"$DELTA"
# Both under tag v1 (as the timed runs), so that the images carry the same
# org.opencontainers.image.version; A's manifest is read before B replaces it.
for impl in mlship crane; do
  ref=$PROXY/delta-$impl:v1
  case $impl in
    mlship) mlship_push "$WORK/model-A" "$ref" "$WORK/delta-$impl-A.json" ;;
    crane) crane_push "$WORK/model-A.tar" "$ref" "$WORK/meta-A.json.crane-args" "$WORK/delta-$impl-A.log" ;;
  esac
  counter >"$WORK/delta-$impl-A.counter"
  manifest "$REG/delta-$impl:v1" "$WORK/delta-$impl-A.manifest"
  counter_reset
  case $impl in
    mlship) mlship_push "$WORK/model-B" "$ref" "$WORK/delta-$impl-B.json" ;;
    crane) crane_push "$WORK/model-B.tar" "$ref" "$WORK/meta-B.json.crane-args" "$WORK/delta-$impl-B.log" ;;
  esac
  counter >"$WORK/delta-$impl-B.counter"
  manifest "$REG/delta-$impl:v1" "$WORK/delta-$impl-B.manifest"
  counter_reset
  printf '{"impl":"%s","counter_a":"%s","counter_b":"%s","manifest_a":"%s","manifest_b":"%s"}\n' "$impl" \
    "$WORK/delta-$impl-A.counter" "$WORK/delta-$impl-B.counter" "$WORK/delta-$impl-A.manifest" "$WORK/delta-$impl-B.manifest" >>"$DELTA"
done

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
reg_version=$(docker-registry --version 2>/dev/null | awk '{ print $NF }')
echo "mlship image benchmark: build-push-image vs crane $("$CRANE" version) append + mutate, $PLATFORM, Debian docker-registry $reg_version on 127.0.0.1 (no auth)"
echo "machine: ${cpu:-unknown CPU}, $(nproc) CPU(s); $(go version | awk '{ print $3 }'); load average $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')"
echo "server: $MLSHIP_SERVE ($(stat -c %s "$MLSHIP_SERVE") bytes); models: seeds $SEED_A (A) and $SEED_B (B) on $DATA"
echo
STRICT_FLAG=()
[ "${STRICT:-0}" = 1 ] && STRICT_FLAG=(--strict)
"$PY" bench/image/table.py "${STRICT_FLAG[@]}" --tar-seconds "$TAR_SECONDS" "$RUNS" "$DELTA"
