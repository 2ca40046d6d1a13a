#!/usr/bin/env bash
# Training benchmark: `mlship train` against scikit-learn's MLPClassifier and
# torch (CPU) on the heart-disease recipe, same split, network, optimiser,
# early stopping and preprocessing. Prints a table and mlship/peer ratios.
# What is measured and how: bench/README.md. Run from anywhere:
#   bench/train.sh            (or: make bench-train)
# Environment (all optional):
#   MLSHIP=path      mlship binary to use (default: go build ./cmd/mlship into a temp dir)
#   DATA=path        heart.csv (default: examples/heart-disease/heart.csv, then ../shared/data/...)
#   REPEAT=3         timed runs of each implementation per batch size; the table shows medians
#   WARMUP=1         untimed runs of each implementation first (page cache, imports)
#   BATCHES="32 256" batch sizes
#   EPOCHS=100 PATIENCE=10 LEARNING_RATE=0.001 SEED=42
#   TORCH_THREADS=0  torch.set_num_threads (0: torch's default for the machine)
#   PYTHON=/usr/bin/python3  the Python with Debian's python3-sklearn/torch/pandas
#   SKIP_MLSHIP=1    peers only, on a split made by bench/train/peers.py (for testing)
#   STRICT=1         exit 1 when a target is missed (default: targets are reported only)
#   KEEP=1           keep the work directory with every run's output
# At scale (synthetic data from bench/train/synth.py, 20 features, seed SEED):
#   SCALE_ROWS="10000 100000"  rows of each synthetic set ("" to skip)
#   SCALE_BATCHES="32 256" SCALE_EPOCHS=5 SCALE_REPEAT=3
#   SCALE_IMPLS="mlship mlship-f32 sklearn torch"  (mlship-f32: mlship train --dtype float32;
#                    mlship first: it writes the split the peers read)
#   RSS_ROWS=1000000  rows for the peak-RSS run of mlship train (0 to skip)
set -euo pipefail
export LC_ALL=C

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PY=${PYTHON:-/usr/bin/python3}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-1}
BATCHES=${BATCHES:-"32 256"}
EPOCHS=${EPOCHS:-100}
PATIENCE=${PATIENCE:-10}
LEARNING_RATE=${LEARNING_RATE:-0.001}
SEED=${SEED:-42}
TORCH_THREADS=${TORCH_THREADS:-0}
HIDDEN=64,32

die() { echo "bench/train.sh: $*" >&2; exit 1; }

now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "$EPOCHREALTIME"; else date +%s.%N; fi; }

if [ -z "${DATA:-}" ]; then
  for d in examples/heart-disease/heart.csv ../shared/data/heart-disease/heart.csv; do
    if [ -f "$d" ]; then DATA=$d; break; fi
  done
fi
[ -n "${DATA:-}" ] || die "no heart.csv in examples/heart-disease/ or ../shared/data/heart-disease/ (set DATA)"
[ -f "$DATA" ] || die "DATA=$DATA: no such file"
DATA=$(cd "$(dirname "$DATA")" && pwd)/$(basename "$DATA")

# Peers: Debian's python3-sklearn, python3-torch, python3-pandas (no PyPI).
peers_ok() { "$PY" -c 'import sklearn, torch, pandas' >/dev/null 2>&1; }
if ! peers_ok; then
  [ -x "$PY" ] || die "$PY not found"
  SUDO=
  if [ "$(id -u)" != 0 ]; then command -v sudo >/dev/null || die "need root or sudo to install the peers"; SUDO=sudo; fi
  PKGS="python3-sklearn python3-torch python3-pandas"
  APT=($SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
  echo "installing $PKGS (apt-get)" >&2
  if ! "${APT[@]}" install -y $PKGS >&2; then
    "${APT[@]}" update >&2 && "${APT[@]}" install -y $PKGS >&2 || die "apt-get install $PKGS failed"
  fi
  peers_ok || die "$PY cannot import sklearn, torch and pandas after installing $PKGS"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mlship-bench-train.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
  echo "work directory: $WORK" >&2
else
  trap 'rm -rf "$WORK"' EXIT
fi

if [ "${SKIP_MLSHIP:-0}" = 1 ]; then
  MLSHIP=
  IMPLS="sklearn torch"
else
  IMPLS="mlship sklearn torch"
  if [ -z "${MLSHIP:-}" ]; then
    [ -f cmd/mlship/main.go ] || die "cmd/mlship/main.go not found (set MLSHIP, or SKIP_MLSHIP=1 for the peers alone)"
    echo "building mlship" >&2
    go build -o "$WORK/mlship" ./cmd/mlship || die "go build ./cmd/mlship failed"
    MLSHIP=$WORK/mlship
  fi
  [ -x "$MLSHIP" ] || die "MLSHIP=$MLSHIP is not executable"
fi

RUNS=$WORK/runs.jsonl
: >"$RUNS"

# run IMPL BATCH REP: one process, timed from start to exit; REP 0 is a warm-up.
run() {
  local impl=$1 batch=$2 rep=$3
  local dir=$WORK/b$batch/$impl-$rep
  local split=$WORK/b$batch/split.json
  mkdir -p "$dir"
  local cmd
  case $impl in
    mlship)
      local split_out=$split
      [ -f "$split" ] && split_out=$dir/split.json
      cmd=("$MLSHIP" train --data "$DATA" --target target --binarize '>0' --hidden "$HIDDEN"
        --batch-size "$batch" --epochs "$EPOCHS" --patience "$PATIENCE" --learning-rate "$LEARNING_RATE"
        --seed "$SEED" --out "$dir/model" --split-out "$split_out" --json) ;;
    sklearn|torch)
      [ -f "$split" ] || die "no split file for batch $batch"
      cmd=("$PY" "$ROOT/bench/train/peers.py" "$impl" --data "$DATA" --split "$split" --hidden "$HIDDEN"
        --batch-size "$batch" --epochs "$EPOCHS" --patience "$PATIENCE" --learning-rate "$LEARNING_RATE"
        --seed "$SEED" --threads "$TORCH_THREADS" --out "$dir/model") ;;
  esac
  local t0 t1 rc=0
  t0=$(now)
  "${cmd[@]}" >"$dir/stdout" 2>"$dir/stderr" || rc=$?
  t1=$(now)
  if [ "$rc" != 0 ]; then
    echo "bench/train.sh: $impl (batch $batch) exited $rc: ${cmd[*]}" >&2
    tail -n 20 "$dir/stderr" >&2
    exit 1
  fi
  if [ "$impl" = mlship ] && [ "$split_out" != "$split" ] && ! cmp -s "$split" "$split_out"; then
    echo "bench/train.sh: warning: mlship wrote a different split on run $rep (batch $batch)" >&2
  fi
  [ "$rep" = 0 ] && return 0
  local e2e
  e2e=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
  printf '{"impl":"%s","batch":%s,"rep":%s,"e2e_seconds":%s,"stdout":"%s"}\n' \
    "$impl" "$batch" "$rep" "$e2e" "$dir/stdout" >>"$RUNS"
}

for batch in $BATCHES; do
  mkdir -p "$WORK/b$batch"
  if [ -z "$MLSHIP" ]; then
    "$PY" bench/train/peers.py split --data "$DATA" --split "$WORK/b$batch/split.json" --seed "$SEED"
  fi
  for ((w = 0; w < WARMUP; w++)); do
    for impl in $IMPLS; do run "$impl" "$batch" 0; done
  done
  WARMUP=0  # the page cache is warm after the first batch size
  for ((rep = 1; rep <= REPEAT; rep++)); do
    for impl in $IMPLS; do run "$impl" "$batch" "$rep"; done
  done
done

# At scale: the synthetic sets, every impl at every batch size, alternated, a
# fixed number of epochs (no early stopping: patience above the epochs).
SCALE_ROWS=${SCALE_ROWS-"10000 100000"}
SCALE_BATCHES=${SCALE_BATCHES:-"32 256"}
SCALE_EPOCHS=${SCALE_EPOCHS:-5}
SCALE_REPEAT=${SCALE_REPEAT:-3}
SCALE_IMPLS=${SCALE_IMPLS:-"mlship mlship-f32 sklearn torch"}
RSS_ROWS=${RSS_ROWS-1000000}
[ -n "$MLSHIP" ] || SCALE_ROWS=
run_scale() {
  local impl=$1 rows=$2 batch=$3 rep=$4 data=$WORK/synth-$2.csv
  local dir=$WORK/s$rows-b$batch/$impl-$rep split=$WORK/s$rows-b$batch/split.json
  mkdir -p "$dir"
  local cmd
  case $impl in
    mlship|mlship-f32)
      cmd=("$MLSHIP" train --data "$data" --target target --binarize '>0' --hidden "$HIDDEN"
        --batch-size "$batch" --epochs "$SCALE_EPOCHS" --patience 0 --learning-rate "$LEARNING_RATE"
        --seed "$SEED" --out "$dir/model" --split-out "$split" --json)
      [ "$impl" = mlship ] || cmd+=(--dtype float32) ;;
    *)
      cmd=("$PY" "$ROOT/bench/train/peers.py" "$impl" --data "$data" --split "$split" --hidden "$HIDDEN"
        --batch-size "$batch" --epochs "$SCALE_EPOCHS" --patience $((SCALE_EPOCHS + 1)) --learning-rate "$LEARNING_RATE"
        --seed "$SEED" --threads "$TORCH_THREADS" --out "$dir/model") ;;
  esac
  local t0 t1 rc=0
  t0=$(now)
  "${cmd[@]}" >"$dir/stdout" 2>"$dir/stderr" || rc=$?
  t1=$(now)
  if [ "$rc" != 0 ]; then
    echo "bench/train.sh: $impl (synthetic $rows rows, batch $batch) exited $rc: ${cmd[*]}" >&2
    tail -n 20 "$dir/stderr" >&2
    exit 1
  fi
  local e2e label
  e2e=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
  label=synth-$((rows / 1000))k
  printf '{"set":"%s","impl":"%s","batch":%s,"rep":%s,"e2e_seconds":%s,"stdout":"%s"}\n' \
    "$label" "$impl" "$batch" "$rep" "$e2e" "$dir/stdout" >>"$RUNS"
}
for rows in $SCALE_ROWS; do
  "$PY" bench/train/synth.py --rows "$rows" --features 20 --seed "$SEED" --out "$WORK/synth-$rows.csv"
  for batch in $SCALE_BATCHES; do
    # mlship first: it writes the split the peers read
    for ((rep = 1; rep <= SCALE_REPEAT; rep++)); do
      for impl in $SCALE_IMPLS; do run_scale "$impl" "$rows" "$batch" "$rep"; done
    done
  done
done

# Peak RSS of mlship train on RSS_ROWS rows x 21 columns (20 features and the
# target), against 2.5 times the float64 size of the data.
RSS_LINE=
if [ -n "$MLSHIP" ] && [ "${RSS_ROWS:-0}" -gt 0 ]; then
  [ -x /usr/bin/time ] || die "/usr/bin/time not found (Debian package time)"
  "$PY" bench/train/synth.py --rows "$RSS_ROWS" --features 20 --seed "$SEED" --out "$WORK/synth-rss.csv"
  /usr/bin/time -f '%M' -o "$WORK/rss.txt" "$MLSHIP" train --data "$WORK/synth-rss.csv" --target target --binarize '>0' \
    --hidden "$HIDDEN" --batch-size 256 --epochs 1 --patience 0 --seed "$SEED" --out "$WORK/rss-model" -q \
    >"$WORK/rss.out" 2>&1 || { tail -n 20 "$WORK/rss.out" >&2; die "mlship train on $RSS_ROWS rows failed"; }
  RSS_LINE=$(awk -v kb="$(tail -n 1 "$WORK/rss.txt")" -v rows="$RSS_ROWS" 'BEGIN {
    data = rows * 21 * 8; rss = kb * 1024; r = rss / data
    printf "peak RSS, mlship train on %d rows x 21 columns (1 epoch, batch 256): %.0f MB = %.2fx the data as float64 (%.0f MB); target <= 2.5x: %s",
      rows, rss / 1e6, r, data / 1e6, (r <= 2.5 ? "met" : "MISSED") }')
fi

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
versions=$("$PY" -c 'import sklearn, torch, numpy; print(f"scikit-learn {sklearn.__version__}, torch {torch.__version__} ({torch.get_num_threads()} thread(s) by default), numpy {numpy.__version__}")')
echo "mlship training benchmark: heart-disease MLP 13-64-32-1, Adam lr $LEARNING_RATE, up to $EPOCHS epochs, patience $PATIENCE, seed $SEED"
echo "machine: ${cpu:-unknown CPU}, $(nproc) CPU(s); $versions"
echo "data: $DATA"
[ -z "$SCALE_ROWS" ] || echo "at scale: bench/train/synth.py, $SCALE_ROWS rows x 20 features (seed $SEED), MLP 20-64-32-1, $SCALE_EPOCHS epochs, no early stopping, split 64/16/20 by mlship; alternated runs, median of $SCALE_REPEAT"
echo
STRICT_FLAG=()
[ "${STRICT:-0}" = 1 ] && STRICT_FLAG=(--strict)
rc=0
"$PY" bench/train/table.py "${STRICT_FLAG[@]}" "$RUNS" || rc=$?
if [ -n "$RSS_LINE" ]; then
  echo "$RSS_LINE"
  case $RSS_LINE in *MISSED) [ "${STRICT:-0}" = 1 ] && rc=1 ;; esac
fi
exit $rc
