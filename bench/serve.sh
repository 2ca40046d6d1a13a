#!/usr/bin/env bash
# Serving benchmark: mlship-serve against an empty Go net/http handler (the
# upper bound) and the usual Python way, Flask + gunicorn with an sklearn
# MLPClassifier of the same shape, on the heart-disease model. Load from wrk on
# loopback. Prints req/s, p50 and p99 latency and errors, the ratios with the
# issue's targets, and batch throughput in rows/s. What is measured and how:
# bench/README.md. Run from anywhere:
#   bench/serve.sh
# Environment (all optional):
#   MLSHIP_SERVE=path  mlship-serve binary (default: go build ./cmd/mlship-serve into a temp dir)
#   MLSHIP=path        mlship binary that trains the model (default: go build ./cmd/mlship)
#   MODEL=dir          model directory to serve (default: mlship train on DATA)
#   DATA=path          heart.csv (default: examples/heart-disease/heart.csv, then ../shared/data/...)
#   DURATION=10s       measured wrk run per server and request kind
#   WARMUP=2s          unmeasured wrk run before each measured one
#   REPEAT=1           measured runs of each server; the tables show medians
#   CONNS=64 THREADS=2 wrk connections and threads
#   ROWS=8             distinct single-row bodies, sent in turn
#   BATCH_ROWS=256     rows in a batch body
#   WORKERS=2*nproc+1  gunicorn sync workers of the Flask server
#   SERVERS="mlship empty flask"  which servers to run, in this order
#   SKIP_MLSHIP=1      empty and Flask only (for testing without cmd/mlship-serve)
#   MAX_INFLIGHT=n     passed to mlship-serve as --max-inflight (default: its own default)
#   SERVE_ARGS="..."   more mlship-serve flags (default: --drain-delay 0s, so that it stops at once)
#   PYTHON=/usr/bin/python3  the Python with Debian's python3-flask, gunicorn, python3-sklearn
#   STRICT=1           exit 1 when a target is missed (default: targets are reported only)
#   KEEP=1             keep the work directory (server logs, wrk output, bodies)
set -euo pipefail
export LC_ALL=C

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PY=${PYTHON:-/usr/bin/python3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
REPEAT=${REPEAT:-1}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ROWS=${ROWS:-8}
BATCH_ROWS=${BATCH_ROWS:-256}
CORES=$(nproc)
WORKERS=${WORKERS:-$((2 * CORES + 1))}
SERVE_ARGS=${SERVE_ARGS:---drain-delay 0s}
if [ "${SKIP_MLSHIP:-0}" = 1 ]; then
  SERVERS=${SERVERS:-"empty flask"}
else
  SERVERS=${SERVERS:-"mlship empty flask"}
fi

die() { echo "bench/serve.sh: $*" >&2; exit 1; }
say() { echo "bench/serve.sh: $*" >&2; }

for s in $SERVERS; do
  case $s in mlship|empty|flask) ;; *) die "SERVERS: unknown server $s (mlship, empty, flask)" ;; esac
done
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT=$REPEAT: want a positive integer"

if [ -z "${DATA:-}" ]; then
  for d in examples/heart-disease/heart.csv ../shared/data/heart-disease/heart.csv; do
    if [ -f "$d" ]; then DATA=$d; break; fi
  done
fi
[ -n "${DATA:-}" ] || die "no heart.csv in examples/heart-disease/ or ../shared/data/heart-disease/ (set DATA)"
[ -f "$DATA" ] || die "DATA=$DATA: no such file"
DATA=$(cd "$(dirname "$DATA")" && pwd)/$(basename "$DATA")

# Load generator and peer: Debian's wrk, python3-flask, gunicorn, python3-sklearn (no PyPI).
tools_ok() { command -v wrk >/dev/null && "$PY" -c 'import flask, gunicorn, sklearn' >/dev/null 2>&1; }
if ! tools_ok; then
  [ -x "$PY" ] || die "$PY not found"
  SUDO=
  if [ "$(id -u)" != 0 ]; then command -v sudo >/dev/null || die "need root or sudo to install wrk and the peer"; SUDO=sudo; fi
  PKGS="wrk python3-flask gunicorn python3-sklearn"
  APT=($SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
  say "installing $PKGS (apt-get)"
  if ! "${APT[@]}" install -y $PKGS >&2; then
    "${APT[@]}" update >&2 && "${APT[@]}" install -y $PKGS >&2 || die "apt-get install $PKGS failed"
  fi
  tools_ok || die "wrk, or flask/gunicorn/sklearn under $PY, still missing after installing $PKGS"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mlship-bench-serve.XXXXXX")
SERVER_PID=
# stop_server: SIGTERM, then SIGKILL after 10 s.
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
cleanup() {
  stop_server
  if [ "${KEEP:-0}" = 1 ]; then say "work directory: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

has() { case " $SERVERS " in *" $1 "*) return 0 ;; esac; return 1; }

# Binaries.
if has empty; then
  say "building bench/serve/empty"
  CGO_ENABLED=0 go build -trimpath -o "$WORK/empty" ./bench/serve/empty || die "go build ./bench/serve/empty failed"
fi
MODEL_FEATURES=()
if has mlship; then
  if [ -z "${MLSHIP_SERVE:-}" ]; then
    [ -f cmd/mlship-serve/main.go ] || die "cmd/mlship-serve/main.go not found (set MLSHIP_SERVE, or SKIP_MLSHIP=1 for the other servers)"
    say "building mlship-serve"
    CGO_ENABLED=0 go build -trimpath -o "$WORK/mlship-serve" ./cmd/mlship-serve || die "go build ./cmd/mlship-serve failed"
    MLSHIP_SERVE=$WORK/mlship-serve
  fi
  [ -x "$MLSHIP_SERVE" ] || die "MLSHIP_SERVE=$MLSHIP_SERVE is not executable"
  if [ -z "${MODEL:-}" ]; then
    if [ -z "${MLSHIP:-}" ]; then
      [ -f cmd/mlship/main.go ] || die "cmd/mlship/main.go not found (set MLSHIP or MODEL)"
      say "building mlship"
      CGO_ENABLED=0 go build -trimpath -o "$WORK/mlship" ./cmd/mlship || die "go build ./cmd/mlship failed"
      MLSHIP=$WORK/mlship
    fi
    say "training the heart model (mlship train)"
    "$MLSHIP" train --data "$DATA" --target target --binarize '>0' --out "$WORK/model" -q >"$WORK/train.log" 2>&1 ||
      { tail -n 20 "$WORK/train.log" >&2; die "mlship train failed"; }
    MODEL=$WORK/model
  fi
  [ -f "$MODEL/model.json" ] || die "MODEL=$MODEL: no model.json"
  MODEL_FEATURES=(--model "$MODEL")
fi

# Request bodies, the same for every server: ROWS single rows, 4 batches of BATCH_ROWS rows.
"$PY" bench/serve/tools.py bodies --data "$DATA" --target target "${MODEL_FEATURES[@]}" \
  --rows "$ROWS" --batch-rows "$BATCH_ROWS" --single "$WORK/single.jsonl" --batch "$WORK/batch.jsonl"

if has flask; then
  say "training the Flask server's MLPClassifier (sklearn)"
  flask_features=()
  if [ -n "${MODEL:-}" ]; then
    flask_features=(--features "$("$PY" -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["features"]))' "$MODEL/model.json")")
  fi
  "$PY" bench/serve/flask_app.py train --data "$DATA" --target target "${flask_features[@]}" --out "$WORK/flask.pkl" ||
    die "training the Flask server's model failed"
fi

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME PORT: starts one server in the background, sets SERVER_PID.
start_server() {
  local name=$1 port=$2 log=$WORK/$1.log
  case $name in
    mlship)
      local extra=()
      [ -n "${MAX_INFLIGHT:-}" ] && extra+=(--max-inflight "$MAX_INFLIGHT")
      # shellcheck disable=SC2206 # SERVE_ARGS is a flag list, split on spaces on purpose
      extra+=($SERVE_ARGS)
      "$MLSHIP_SERVE" --model "$MODEL" --addr "127.0.0.1:$port" "${extra[@]}" >>"$log" 2>&1 &
      ;;
    empty)
      "$WORK/empty" -addr "127.0.0.1:$port" >>"$log" 2>&1 &
      ;;
    flask)
      FLASK_MODEL=$WORK/flask.pkl "$PY" -m gunicorn --workers "$WORKERS" --worker-class sync \
        --bind "127.0.0.1:$port" --chdir "$ROOT/bench/serve" --log-level warning flask_app:app >>"$log" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
}

# wrk_run NAME KIND REP PORT DURATION BODIES: one wrk run; REP 0 is the warm-up.
RUNS=$WORK/runs.jsonl
: >"$RUNS"
wrk_run() {
  local name=$1 kind=$2 rep=$3 port=$4 dur=$5 bodies=$6
  local base=$WORK/$name-$kind-$rep rc=0
  rm -f "$base.json"
  WRK_BODIES=$bodies WRK_RESULT=$base.json \
    wrk -t"$THREADS" -c"$CONNS" -d"$dur" --timeout 5s --latency -s "$ROOT/bench/serve/post.lua" \
    "http://127.0.0.1:$port/predict" >"$base.txt" 2>&1 || rc=$?
  if [ "$rc" != 0 ] || [ ! -s "$base.json" ]; then
    cat "$base.txt" >&2
    die "wrk against $name ($kind) exited $rc or wrote no result"
  fi
  [ "$rep" = 0 ] && return 0
  local rows=1
  [ "$kind" = batch ] && rows=$BATCH_ROWS
  printf '{"server":"%s","kind":"%s","rep":%s,"batch_rows":%s,"result":"%s"}\n' \
    "$name" "$kind" "$rep" "$rows" "$base.json" >>"$RUNS"
}

# cpu_busy: percent of all CPUs busy over the next second (iowait counts as idle),
# taken before each server starts, when nothing of the benchmark runs: a check
# that nothing else shares the machine.
cpu_busy() {
  local a b
  a=$(head -n 1 /proc/stat 2>/dev/null) || { echo '?'; return; }
  sleep 1
  b=$(head -n 1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {
    n = split(a, x, " "); split(b, y, " ")
    for (i = 2; i <= n && i <= 9; i++) { d = y[i] - x[i]; t += d; if (i != 5 && i != 6) busy += d }
    if (t > 0) printf "%.0f%%", 100 * busy / t; else printf "?"
  }'
}

declare -A ANSWER BUSY
for ((rep = 1; rep <= REPEAT; rep++)); do
  for name in $SERVERS; do
    port=$(free_port)
    BUSY[$name]="${BUSY[$name]:+${BUSY[$name]} }$(cpu_busy)"
    say "run $rep/$REPEAT: $name on 127.0.0.1:$port"
    start_server "$name" "$port"
    if ! "$PY" bench/serve/tools.py wait "http://127.0.0.1:$port/readyz" --pid "$SERVER_PID" --timeout 60; then
      tail -n 20 "$WORK/$name.log" >&2
      die "$name did not become ready"
    fi
    check=(--single "$WORK/single.jsonl" --batch "$WORK/batch.jsonl" --batch-rows "$BATCH_ROWS")
    [ "$name" = empty ] && check+=(--single-only)
    if ! ANSWER[$name]=$("$PY" bench/serve/tools.py check "http://127.0.0.1:$port/predict" "${check[@]}"); then
      tail -n 20 "$WORK/$name.log" >&2
      die "$name answered /predict wrongly"
    fi
    wrk_run "$name" single 0 "$port" "$WARMUP" "$WORK/single.jsonl"
    wrk_run "$name" single "$rep" "$port" "$DURATION" "$WORK/single.jsonl"
    if [ "$name" != empty ]; then
      wrk_run "$name" batch 0 "$port" "$WARMUP" "$WORK/batch.jsonl"
      wrk_run "$name" batch "$rep" "$port" "$DURATION" "$WORK/batch.jsonl"
    fi
    stop_server
  done
done

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
versions=$("$PY" -c 'import flask, gunicorn, sklearn, sys; print(f"Python {sys.version.split()[0]}, Flask {flask.__version__}, gunicorn {gunicorn.__version__}, scikit-learn {sklearn.__version__}")' 2>/dev/null)
echo "mlship serving benchmark: heart-disease model (MLP 13-64-32-1), POST /predict on 127.0.0.1"
echo "machine: ${cpu:-unknown CPU}, $CORES CPU(s), shared by wrk and the server; $(go env GOVERSION), $(wrk --version 2>&1 | head -n 1 | awk '{ print "wrk", $2 }'), $versions"
busy=
for name in $SERVERS; do busy="${busy:+$busy, }$name ${BUSY[$name]// /\/}"; done
echo "CPU busy in the second before each server started: $busy (near 0% unless something else is running)"
for v in ${BUSY[*]}; do
  v=${v%\%}
  if [[ $v =~ ^[0-9]+$ ]] && [ "$v" -gt 20 ]; then
    echo "WARNING: other processes were using the CPUs; these numbers are not a clean measurement"
    break
  fi
done
echo "load: wrk -t$THREADS -c$CONNS -d$DURATION (after a $WARMUP warm-up), $ROWS distinct rows in turn; batch bodies of $BATCH_ROWS rows"
for name in $SERVERS; do
  case $name in
    mlship) echo "mlship-serve: ${MLSHIP_SERVE/#$WORK/WORK} --model ${MODEL/#$WORK/WORK} ${MAX_INFLIGHT:+--max-inflight $MAX_INFLIGHT }$SERVE_ARGS; answers ${ANSWER[$name]}" ;;
    empty) echo "empty net/http: bench/serve/empty (reads the body, fixed JSON); answers ${ANSWER[$name]}" ;;
    flask) echo "flask+gunicorn: $WORKERS sync workers (2 x $CORES CPUs + 1), sklearn Pipeline(SimpleImputer, StandardScaler, MLPClassifier); answers ${ANSWER[$name]}" ;;
  esac
done
echo
STRICT_FLAG=()
[ "${STRICT:-0}" = 1 ] && STRICT_FLAG=(--strict)
"$PY" bench/serve/table.py "${STRICT_FLAG[@]}" "$RUNS"
