#!/usr/bin/env bash
# Installs the Go tools `make lint` and the tests use, pinned, into a cache
# folder outside the work tree, and prints that folder's bin/. Idempotent: a
# tool already there at its version is not rebuilt.
#
#   staticcheck   honnef.co/go/tools/cmd/staticcheck v0.8.2
#   act           github.com/nektos/act v0.2.89 (runs the GitHub workflows in
#                 the tests, in host mode; about a minute to build)
#
# Usage: hack/tools.sh [TOOL...]   (default: all)
set -euo pipefail
export LC_ALL=C

declare -A PKG=(
  [staticcheck]=honnef.co/go/tools/cmd/staticcheck@v0.8.2
  [act]=github.com/nektos/act@v0.2.89
)

DIR=${MLSHIP_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mlship/tools}
BIN=$DIR/bin
mkdir -p "$BIN"
tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=("${!PKG[@]}")
for t in "${tools[@]}"; do
  pkg=${PKG[$t]:?unknown tool $t}
  stamp=$BIN/.$t.version
  if [ -x "$BIN/$t" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pkg" ]; then
    continue
  fi
  echo "tools: installing $pkg" >&2
  GOBIN=$BIN GOFLAGS=-mod=mod go install "$pkg" >&2
  echo "$pkg" > "$stamp"
done
echo "$BIN"
