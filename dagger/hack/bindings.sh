#!/usr/bin/env bash
# Writes the Dagger module's bindings as `dagger develop` does for engine
# v0.21.8, without an engine (none can run here): the engine's codegen, built
# from the Go module proxy by hack/tools.sh (dagger-codegen, pinned in
# hack/dagger-codegen/go.mod), reads the engine's schema in introspection
# form (introspection-v0.21.8.json beside this script, converted from the
# schema.graphqls of github.com/dagger/dagger@v0.21.8) and the module's Go
# source, and writes dagger.gen.go and internal/dagger/, then tidies go.mod
# and go.sum.
#
#   dagger/hack/bindings.sh          rewrite them in dagger/
#   dagger/hack/bindings.sh --check  generate into a copy; fail when the
#                                    committed files differ (make test)
set -euo pipefail
export LC_ALL=C
mod=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=$(cd "$mod/.." && pwd)
codegen="$(bash "$root/hack/tools.sh" dagger-codegen)/dagger-codegen"
generated=(dagger.gen.go internal go.mod go.sum)

generate() { # DIR
  local log
  log=$(mktemp)
  if ! (cd "$1" && "$codegen" generate-module --introspection-json-path hack/introspection-v0.21.8.json \
      --module-name mlship --module-source-path . --lib-version v0.21.8) >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "bindings: dagger-codegen failed" >&2
    return 1
  fi
  rm -f "$log"
  chmod -R u+rwX,go+rX "$1/dagger.gen.go" "$1/internal" "$1/go.mod" "$1/go.sum"
}

if [ "${1:-}" != "--check" ]; then
  generate "$mod"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -R "$mod" "$tmp/dagger"
generate "$tmp/dagger"
stale=()
for f in "${generated[@]}"; do
  diff -r "$mod/$f" "$tmp/dagger/$f" >"$tmp/diff" 2>&1 || stale+=("$f")
done
# The codegen writes no file besides these.
(cd "$mod" && find . -type f | sort) >"$tmp/before"
(cd "$tmp/dagger" && find . -type f | sort) >"$tmp/after"
diff "$tmp/before" "$tmp/after" >/dev/null || stale+=("(new files: $(comm -13 "$tmp/before" "$tmp/after" | tr '\n' ' '))")
if [ ${#stale[@]} -gt 0 ]; then
  for f in "${generated[@]}"; do diff -ru "$mod/$f" "$tmp/dagger/$f" | head -40 >&2 || true; done
  echo "bindings: dagger/ ${stale[*]} not what dagger-codegen v0.21.8 writes: run dagger/hack/bindings.sh (or make gen)" >&2
  exit 1
fi
echo "bindings: dagger.gen.go, internal/dagger/, go.mod and go.sum are current"
