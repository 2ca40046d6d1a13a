#!/usr/bin/env bash
# Deploy benchmark: `mlship kubectl-deploy` against `kubectl apply -f ... &&
# kubectl rollout status` for the same manifests on the same control plane
# (hack/kube/up.sh: real etcd, kube-apiserver, controller-manager and scheduler,
# kwok nodes), each deploying a new image REPEAT times. Prints the median wall
# time of each and the ratio (target <= 1.1x).
#
#   bench/deploy.sh                REPEAT=7 by default
#   REPEAT=15 bench/deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-7}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mlship-bench-deploy.XXXXXX")
cleanup() { bash hack/kube/down.sh "$WORK/kube" >/dev/null 2>&1 || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT

command -v kubectl >/dev/null || { echo "bench/deploy.sh: kubectl is not installed" >&2; exit 1; }
bash hack/kube/build.sh >/dev/null
echo "building mlship..."
CGO_ENABLED=0 go build -trimpath -o "$WORK/mlship" ./cmd/mlship
echo "starting the control plane..."
bash hack/kube/up.sh "$WORK/kube" >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; exit 1; }
export KUBECONFIG="$WORK/kube/kubeconfig"

now() { date +%s.%N; }
image() { printf 'registry.example.com/acme/heart@sha256:%064x' "$1"; }

# kubectl deploys the manifests mlship renders, so both apply the same objects
# (different names, so that neither waits on the other's pods).
render() { "$WORK/mlship" kubectl-deploy --render --name "$1" --image "$2" --replicas 2 >"$3"; }

declare -a T_MLSHIP T_KUBECTL
for i in $(seq 0 "$REPEAT"); do
  img=$(image $((i + 1)))
  s=$(now)
  "$WORK/mlship" kubectl-deploy -q --name bench-mlship --image "$img" --replicas 2 >/dev/null
  e=$(now)
  render bench-kubectl "$img" "$WORK/k.yaml"
  s2=$(now)
  kubectl apply --server-side --field-manager=kubectl-bench -f "$WORK/k.yaml" >/dev/null
  kubectl rollout status deployment/bench-kubectl --timeout=5m >/dev/null
  e2=$(now)
  if [ "$i" -gt 0 ]; then # run 0 is a warm-up (first create)
    T_MLSHIP+=("$(awk -v a="$s" -v b="$e" 'BEGIN{printf "%.3f", b-a}')")
    T_KUBECTL+=("$(awk -v a="$s2" -v b="$e2" 'BEGIN{printf "%.3f", b-a}')")
  fi
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
M=$(median "${T_MLSHIP[@]}")
K=$(median "${T_KUBECTL[@]}")
R=$(awk -v m="$M" -v k="$K" 'BEGIN{printf "%.4f", m/k}')
verdict=met; awk -v r="$R" 'BEGIN{exit !(r > 1.1)}' && verdict=missed
printf '\nkubectl-deploy benchmark: %d rollouts each of a new image, 2 replicas, on a local control plane (kwok node)\n' "$REPEAT"
printf '%-42s %10s\n' "impl" "median s"
printf '%-42s %10.3f\n' "mlship kubectl-deploy (apply + wait)" "$M"
printf '%-42s %10.3f\n' "kubectl apply --server-side + rollout status" "$K"
printf '\nratio mlship/kubectl: %.2fx (target <= 1.1x: %s)\n' "$R" "$verdict"
printf 'all runs, mlship: %s\n' "${T_MLSHIP[*]}"
printf 'all runs, kubectl: %s\n' "${T_KUBECTL[*]}"
