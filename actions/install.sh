#!/usr/bin/env bash
# Puts the mlship binary on PATH for the actions in this folder (and for CI
# shell runners), and says which way it did:
#
#   path        mlship is already on PATH (a self-hosted runner, an earlier step)
#   tool-cache  this version was installed before on this runner
#   release     downloaded from the GitHub release of that version, its sha256
#               checked against the release's checksums.txt
#   built       built from this action's own source with Go (`make build`):
#               the action is used at a branch or a commit, not a release tag
#
# The version is MLSHIP_INSTALL_VERSION when set (1.2.3 or v1.2.3), else the
# action's own ref when it is a release tag (v1.2.3, or a major tag like v1,
# resolved to its newest release through the API), else mlship on PATH, else
# built from source.
#
# Environment (set by action.yml): MLSHIP_INSTALL_VERSION, MLSHIP_INSTALL_TOKEN,
# MLSHIP_ACTION_REF, MLSHIP_ACTION_REPOSITORY, and the runner's RUNNER_OS,
# RUNNER_ARCH, RUNNER_TOOL_CACHE, RUNNER_TEMP, GITHUB_ACTION_PATH,
# GITHUB_SERVER_URL, GITHUB_API_URL, GITHUB_PATH, GITHUB_OUTPUT.
# MLSHIP_RELEASE_URL overrides where releases are downloaded from
# (default: $GITHUB_SERVER_URL/OWNER/REPO/releases/download), for mirrors.
#
# Exit codes follow mlship's: 2 for a bad version or a checksum that does not
# match, 3 when the download fails.
set -euo pipefail

say() { echo "mlship setup: $*" >&2; }
fail() { # CODE MESSAGE
  echo "::error title=mlship setup::$2"
  echo "mlship setup: $2" >&2
  exit "$1"
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_root=$(cd "$here/.." && pwd)

# The action's repository and ref: from the expressions, else from its path
# on the runner (.../_actions/OWNER/REPO/REF/...), which GitHub always sets.
repo=${MLSHIP_ACTION_REPOSITORY:-}
ref=${MLSHIP_ACTION_REF:-}
if [ -z "$repo$ref" ] && [[ "$source_root" == */_actions/*/*/* ]]; then
  rest=${source_root#*/_actions/}
  IFS=/ read -r owner name ref _ <<<"$rest"
  repo=$owner/$name
fi
repo=${repo:-mlship/mlship}

want=${MLSHIP_INSTALL_VERSION:-}
want=${want#v}
if [ -n "$want" ] && ! [[ "$want" =~ ^[0-9]+(\.[0-9]+){0,2}([-+][0-9A-Za-z.-]+)?$ ]]; then
  fail 2 "version \"$MLSHIP_INSTALL_VERSION\" is not a release version like 1.2.3"
fi

publish() { # PATH SOURCE
  local bin=$1 how=$2 dir ver
  dir=$(dirname "$bin")
  ver=$("$bin" version 2>/dev/null || echo unknown)
  if [ -n "${GITHUB_PATH:-}" ]; then echo "$dir" >>"$GITHUB_PATH"; fi
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    { echo "path=$bin"; echo "version=$ver"; echo "source=$how"; } >>"$GITHUB_OUTPUT"
  fi
  say "using mlship $ver ($how): $bin"
}

if [ -z "$want" ]; then
  if [[ "$ref" =~ ^v?[0-9]+(\.[0-9]+){0,2}$ ]]; then
    want=${ref#v}
  elif bin=$(command -v mlship 2>/dev/null); then
    publish "$bin" path
    exit 0
  fi
fi

os=${RUNNER_OS:-$(uname -s)}
case "$os" in
  Linux | linux) os=linux ;;
  macOS | Darwin | darwin) os=darwin ;;
  Windows | MINGW* | MSYS* | CYGWIN*) os=windows ;;
  *) fail 2 "no mlship release for the OS $os" ;;
esac
arch=${RUNNER_ARCH:-$(uname -m)}
case "$arch" in
  X64 | x86_64 | amd64) arch=amd64 ;;
  ARM64 | aarch64 | arm64) arch=arm64 ;;
  *) fail 2 "no mlship release for the architecture $arch" ;;
esac
exe=mlship
[ "$os" = windows ] && exe=mlship.exe

if [ -z "$want" ]; then
  # A branch or a commit of the action: build it from its own source.
  command -v go >/dev/null 2>&1 ||
    fail 2 "the action is used at \"${ref:-a local path}\", not a release tag, so mlship is built from its source, which needs Go: add actions/setup-go before this step, or pin a release (@v1)"
  out=${RUNNER_TEMP:-${TMPDIR:-/tmp}}/mlship-built
  say "building mlship from $source_root (ref ${ref:-local}) with $(go version)"
  make -C "$source_root" build BIN="$out" >&2 || fail 2 "make build failed in $source_root"
  publish "$out/$exe" built
  exit 0
fi

curl_get() { # URL OUTPUT [AUTH]
  local args=(--fail --silent --show-error --location --retry 3 --retry-delay 2 --connect-timeout 20 --max-time 300 -o "$2")
  if [ -n "${3:-}" ]; then args+=(-H "Authorization: Bearer $3"); fi
  curl "${args[@]}" "$1"
}

# A major tag (v1) is resolved to its newest release.
if [[ "$want" =~ ^[0-9]+$ ]] || [[ "$want" =~ ^[0-9]+\.[0-9]+$ ]]; then
  api=${GITHUB_API_URL:-https://api.github.com}
  list=$(mktemp)
  curl_get "$api/repos/$repo/releases?per_page=100" "$list" "${MLSHIP_INSTALL_TOKEN:-}" ||
    fail 3 "cannot list the releases of $repo to resolve v$want"
  full=$(grep -o '"tag_name": *"v'"$want"'\.[0-9.]*"' "$list" | sed 's/.*"v\([0-9.]*\)"/\1/' | sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1)
  rm -f "$list"
  [ -n "$full" ] || fail 2 "no release of $repo matches v$want"
  say "v$want is release v$full"
  want=$full
fi

cache=${RUNNER_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}}/mlship/$want/$arch
if [ -x "$cache/$exe" ]; then
  publish "$cache/$exe" tool-cache
  exit 0
fi

ext=tar.gz
[ "$os" = windows ] && ext=zip
asset=mlship_${want}_${os}_${arch}.$ext
base=${MLSHIP_RELEASE_URL:-${GITHUB_SERVER_URL:-https://github.com}/$repo/releases/download}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say "downloading $base/v$want/$asset"
curl_get "$base/v$want/$asset" "$tmp/$asset" || fail 3 "cannot download $base/v$want/$asset"
curl_get "$base/v$want/checksums.txt" "$tmp/checksums.txt" || fail 3 "cannot download $base/v$want/checksums.txt"
sum=$(awk -v f="$asset" '$2 == f || $2 == "*"f {print $1}' "$tmp/checksums.txt")
[ -n "$sum" ] || fail 2 "checksums.txt of v$want lists no $asset"
if command -v sha256sum >/dev/null 2>&1; then
  got=$(sha256sum "$tmp/$asset" | awk '{print $1}')
else
  got=$(shasum -a 256 "$tmp/$asset" | awk '{print $1}')
fi
[ "$got" = "$sum" ] || fail 2 "$asset has sha256 $got, but checksums.txt says $sum: refusing it"
mkdir -p "$tmp/x"
if [ "$ext" = zip ]; then
  unzip -q "$tmp/$asset" -d "$tmp/x"
else
  tar -xzf "$tmp/$asset" -C "$tmp/x"
fi
found=$(find "$tmp/x" -type f -name "$exe" | head -n 1)
[ -n "$found" ] || fail 2 "$asset holds no $exe"
mkdir -p "$cache"
install -m 0755 "$found" "$cache/$exe"
publish "$cache/$exe" release
