#!/usr/bin/env bash
# The GitHub actions' own overhead: one step through `uses: ./actions/evaluate-gate`
# (install.sh finding mlship on PATH, then the step) against the same
# `mlship evaluate-gate` in a plain `run:` step, both under act in host mode
# (hack/tools.sh installs act). Prints the median step time of each over RUNS
# jobs and the difference. Needs a built mlship (make build).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
root=$(pwd)
act="$(bash hack/tools.sh act)/act"
make build >/dev/null
ws=$(mktemp -d)
trap 'rm -rf "$ws"' EXIT
cp -a actions "$ws/actions"
mkdir -p "$ws/.github/workflows" "$ws/data"
bin/mlship train -q --data examples/heart-disease/heart.csv --target target --binarize '>0' --epochs 2 --out "$ws/model" >/dev/null
cat >"$ws/.github/workflows/bench.yml" <<'YML'
on: pull_request
jobs:
  bench:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: action
        uses: ./actions/evaluate-gate
        with: {model: model, min: accuracy=0.5}
      - name: direct
        run: mlship evaluate-gate --model model --min accuracy=0.5
YML
(cd "$ws" && git init -q && git add -A && git -c user.email=b@e -c user.name=b commit -qm bench)
echo '{"pull_request":{"number":1}}' >"$ws/event.json"
for i in $(seq "$RUNS"); do
  (cd "$ws" && PATH="$root/bin:$PATH" XDG_CACHE_HOME=$(mktemp -d) \
    "$act" pull_request -P ubuntu-latest=-self-hosted -e event.json --no-cache-server --json -W .github/workflows/bench.yml 2>&1) |
    /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    try: j = json.loads(line)
    except ValueError: continue
    if j.get("stage") == "Main" and j.get("stepResult") == "success" and "executionTime" in j and j.get("step") in ("action", "direct") and len(j.get("stepID", [])) == 1:
        print(j["step"], j["executionTime"] / 1e9)'
done | /usr/bin/python3 -c '
import statistics, sys
t = {}
for line in sys.stdin:
    k, v = line.split(); t.setdefault(k, []).append(float(v))
a, d = statistics.median(t["action"]), statistics.median(t["direct"])
print("runs:", len(t["action"]))
print(f"uses: ./actions/evaluate-gate   median {a:.3f} s")
print(f"run: mlship evaluate-gate      median {d:.3f} s")
print(f"overhead of the action           {a - d:.3f} s ({a / d:.2f}x)")'
