#!/usr/bin/env bash
# CNN rows of the training benchmark (make bench-train runs it after bench/train.sh):
# `mlship train --kind cnn` against torch on CPU (float32), same split, network,
# optimiser, epochs and best-epoch restore, on
#   digits  the 8x8 digits (examples/digits): conv 16x3 pool 2, dense 64, batch 32
#   cifar   synthetic 3x32x32 images, 10 classes (bench/train/cnn.py synth, seeded):
#           conv 32x3 pool 2, conv 64x3 pool 2, dense 64, batch 64
# Runs alternate mlship, torch, mlship, torch, ... after one warm-up of each; the
# table shows medians, the min..max spread, and the mlship/torch ratio of training
# samples/s against the targets of issue 15 (bench/README.md).
# Environment (all optional):
#   MLSHIP=path       mlship binary (default: go build ./cmd/mlship into a temp dir)
#   CNN_WORKLOADS="digits cifar"   which rows
#   REPEAT=3 WARMUP=1 SEED=42
#   DIGITS_EPOCHS=30 CIFAR_EPOCHS=3 CIFAR_ROWS=1500
#   TORCH_THREADS=0   torch.set_num_threads (0: torch's default)
#   PYTHON=/usr/bin/python3 (Debian's python3-torch, python3-pandas; bench/train.sh installs them)
#   STRICT=1          exit 1 when a target is missed
#   KEEP=1            keep the work directory
set -euo pipefail
export LC_ALL=C

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
PY=${PYTHON:-/usr/bin/python3}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-1}
SEED=${SEED:-42}
TORCH_THREADS=${TORCH_THREADS:-0}
CNN_WORKLOADS=${CNN_WORKLOADS:-"digits cifar"}

die() { echo "bench/train/cnn.sh: $*" >&2; exit 1; }
now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "$EPOCHREALTIME"; else date +%s.%N; fi; }

"$PY" -c 'import torch, pandas' >/dev/null 2>&1 ||
  die "$PY cannot import torch and pandas (apt-get install python3-torch python3-pandas, or run bench/train.sh first)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mlship-bench-cnn.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "work directory: $WORK" >&2; else trap 'rm -rf "$WORK"' EXIT; fi

if [ -z "${MLSHIP:-}" ]; then
  echo "building mlship" >&2
  go build -o "$WORK/mlship" ./cmd/mlship || die "go build ./cmd/mlship failed"
  MLSHIP=$WORK/mlship
fi
[ -x "$MLSHIP" ] || die "MLSHIP=$MLSHIP is not executable"

RUNS=$WORK/runs.jsonl
: >"$RUNS"

# workload settings: DATA SHAPE CONV HIDDEN BATCH EPOCHS
setup() {
  case $1 in
    digits)
      DATA=
      for d in examples/digits/digits.csv ../shared/data/digits/digits.csv; do
        if [ -f "$d" ]; then DATA=$ROOT/$d; break; fi
      done
      [ -n "$DATA" ] || die "no digits.csv in examples/digits/ or ../shared/data/digits/"
      SHAPE=1x8x8 CONV=16x3p2 HIDDEN=64 BATCH=32 EPOCHS=${DIGITS_EPOCHS:-30} ;;
    cifar)
      DATA=$WORK/cifar.csv
      [ -f "$DATA" ] || "$PY" bench/train/cnn.py synth --rows "${CIFAR_ROWS:-1500}" --seed "$SEED" --out "$DATA"
      SHAPE=3x32x32 CONV=32x3p2,64x3p2 HIDDEN=64 BATCH=64 EPOCHS=${CIFAR_EPOCHS:-3} ;;
    *) die "unknown workload $1 (digits, cifar)" ;;
  esac
}

# run WORKLOAD IMPL REP: one process, timed from start to exit; REP 0 is a warm-up.
run() {
  local wl=$1 impl=$2 rep=$3
  local dir=$WORK/$wl/$impl-$rep split=$WORK/$wl/split.json
  mkdir -p "$dir"
  local cmd
  case $impl in
    mlship)
      local split_out=$split
      [ -f "$split" ] && split_out=$dir/split.json
      cmd=("$MLSHIP" train --data "$DATA" --target label --task multiclass --kind cnn --input-shape "$SHAPE"
        --conv "$CONV" --hidden "$HIDDEN" --batch-size "$BATCH" --epochs "$EPOCHS" --patience 0
        --learning-rate 0.001 --seed "$SEED" --out "$dir/model" --split-out "$split_out" --json) ;;
    torch)
      [ -f "$split" ] || die "no split file for $wl"
      cmd=("$PY" bench/train/cnn.py torch --data "$DATA" --target label --split "$split" --shape "$SHAPE"
        --conv "$CONV" --hidden "$HIDDEN" --batch-size "$BATCH" --epochs "$EPOCHS" --patience 0
        --learning-rate 0.001 --seed "$SEED" --threads "$TORCH_THREADS") ;;
  esac
  local t0 t1 rc=0
  t0=$(now)
  "${cmd[@]}" >"$dir/stdout" 2>"$dir/stderr" || rc=$?
  t1=$(now)
  if [ "$rc" != 0 ]; then
    echo "bench/train/cnn.sh: $impl ($wl) exited $rc: ${cmd[*]}" >&2
    tail -n 20 "$dir/stderr" >&2
    exit 1
  fi
  [ "$rep" = 0 ] && return 0
  printf '{"workload":"%s","impl":"%s","rep":%s,"e2e_seconds":%s,"stdout":"%s"}\n' "$wl" "$impl" "$rep" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')" "$dir/stdout" >>"$RUNS"
}

for wl in $CNN_WORKLOADS; do
  setup "$wl"
  echo "cnn $wl: $CONV, dense $HIDDEN, batch $BATCH, $EPOCHS epochs" >&2
  run "$wl" mlship 0 # writes the split the others use
  for ((w = 0; w < WARMUP; w++)); do run "$wl" torch 0; done
  for ((rep = 1; rep <= REPEAT; rep++)); do
    run "$wl" mlship "$rep"
    run "$wl" torch "$rep"
  done
done

echo "mlship CNN training benchmark: Adam lr 0.001, all epochs run, best validation epoch restored, seed $SEED; median of $REPEAT alternated run(s)"
echo "machine: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown CPU), $(nproc) CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
echo
STRICT_FLAG=()
[ "${STRICT:-0}" = 1 ] && STRICT_FLAG=(--strict)
"$PY" bench/train/cnn.py table "${STRICT_FLAG[@]}" "$RUNS"
