#!/usr/bin/env bash
# Installs the Go tools `make lint` and the tests use, pinned, into a cache
# folder outside the work tree, and prints that folder's bin/. Idempotent: a
# tool already there at its version is not rebuilt.
#
#   staticcheck   honnef.co/go/tools/cmd/staticcheck v0.8.2
#   act           github.com/nektos/act v0.2.89 (runs the GitHub workflows in
#                 the tests, in host mode; about a minute to build)
#   gitlab-ci-local  npm gitlab-ci-local 4.73.0 (runs the GitLab pipelines)
#   goreleaser    github.com/goreleaser/goreleaser/v2 v2.15.1 (the release
#                 config is checked and a snapshot built in the tests; about
#                 five minutes to build)
#   dagger-codegen  github.com/dagger/dagger/cmd/codegen v0.21.8, built from
#                 hack/dagger-codegen/go.mod (it needs replace lines, so it
#                 cannot be `go install`ed by version); it writes the Dagger
#                 module's bindings (dagger/hack/bindings.sh; two to six
#                 minutes to build on two shared cores)
#
# Usage: hack/tools.sh [TOOL...]   (default: all)
set -euo pipefail
export LC_ALL=C

declare -A PKG=(
  [staticcheck]=honnef.co/go/tools/cmd/staticcheck@v0.8.2
  [act]=github.com/nektos/act@v0.2.89
  [goreleaser]=github.com/goreleaser/goreleaser/v2@v2.15.1
)

# npm tools: gitlab-ci-local runs the GitLab pipelines in the tests (4.74 and
# later need Node 22; these machines have Node 20).
declare -A NPM=(
  [gitlab-ci-local]=gitlab-ci-local@4.73.0
)

# Go tools built from a go.mod in this repository (FOLDER PACKAGE): rebuilt
# when that go.mod or go.sum changes.
declare -A MOD=(
  [dagger-codegen]="hack/dagger-codegen github.com/dagger/dagger/cmd/codegen"
)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

DIR=${MLSHIP_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mlship/tools}
BIN=$DIR/bin
mkdir -p "$BIN"
tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=("${!PKG[@]}" "${!NPM[@]}" "${!MOD[@]}")
for t in "${tools[@]}"; do
  if [ -n "${MOD[$t]:-}" ]; then
    read -r dir pkg <<<"${MOD[$t]}"
    stamp=$BIN/.$t.version
    want="$pkg $(cat "$ROOT/$dir/go.mod" "$ROOT/$dir/go.sum" | sha256sum | cut -c1-16)"
    if [ -x "$BIN/$t" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
      continue
    fi
    echo "tools: building $pkg ($dir/go.mod)" >&2
    (cd "$ROOT/$dir" && CGO_ENABLED=0 go build -mod=readonly -trimpath -o "$BIN/$t.tmp" "$pkg" >&2)
    mv "$BIN/$t.tmp" "$BIN/$t"
    echo "$want" > "$stamp"
    continue
  fi
  if [ -n "${NPM[$t]:-}" ]; then
    pkg=${NPM[$t]}
    stamp=$BIN/.$t.version
    if [ -x "$BIN/$t" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pkg" ]; then
      continue
    fi
    echo "tools: installing $pkg (npm)" >&2
    mkdir -p "$DIR/npm"
    (cd "$DIR/npm" && npm install --no-audit --no-fund --loglevel=error "$pkg" >&2)
    ln -sf "$DIR/npm/node_modules/.bin/$t" "$BIN/$t"
    echo "$pkg" > "$stamp"
    continue
  fi
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
