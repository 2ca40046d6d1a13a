#!/usr/bin/env bash
# Set-up for `make test`: installs the real components the tests start, when
# they are missing. Idempotent, and quick (well under a second) when everything
# is already there. Prints one line per component.
#
#   docker-registry   Debian's docker-registry (CNCF distribution 2.8), started by
#                     internal/testutil/registry.StartDistribution
#   htpasswd          a bcrypt htpasswd generator for the registry's auth file:
#                     /usr/bin/python3 with the crypt module (Debian 12), or
#                     htpasswd from apache2-utils (installed when neither is there)
#   skopeo            Debian's skopeo: an OCI layout copied as another user
#   rsync             Debian's rsync, for gitlab-ci-local
#   prometheus        Debian's prometheus and promtool (monitoring tests)
#   qemu-user-static  qemu-aarch64-static (cross-architecture reproducibility)
#   act, staticcheck, goreleaser, gitlab-ci-local
#                     pinned tools (hack/tools.sh)
#   xmllint           Debian's libxml2-utils: the gate's JUnit XML is validated
#                     against the Jenkins xunit plugin's junit-10.xsd with it
#                     (internal/gate; required when CI is set)
#
# Needs root (or sudo) only when something has to be installed; apt-get update
# runs only when the first install fails. Exits non-zero with a message when a
# component cannot be installed.
set -euo pipefail
export LC_ALL=C

die() { echo "hack/setup.sh: $*" >&2; exit 1; }

SUDO=()
APT_UPDATED=0
apt_install() {
  if [ ${#SUDO[@]} = 0 ] && [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "need root or sudo to install $* (apt-get)"
    SUDO=(sudo)
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
  local apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q)
  local log
  log=$(mktemp "${TMPDIR:-/tmp}/mlship-setup.XXXXXX")
  if "${apt[@]}" install -y --no-install-recommends "$@" >"$log" 2>&1; then
    rm -f "$log"; return 0
  fi
  if [ "$APT_UPDATED" = 0 ]; then
    APT_UPDATED=1
    if "${apt[@]}" update >>"$log" 2>&1 &&
      "${apt[@]}" install -y --no-install-recommends "$@" >>"$log" 2>&1; then
      rm -f "$log"; return 0
    fi
  fi
  tail -n 20 "$log" >&2
  rm -f "$log"
  die "apt-get install $* failed"
}

# docker-registry: /usr/bin/docker-registry from Debian's package.
if path=$(command -v docker-registry 2>/dev/null); then
  echo "docker-registry: already present ($path)"
else
  apt_install docker-registry
  path=$(command -v docker-registry 2>/dev/null) ||
    die "docker-registry still not on PATH after installing the package"
  echo "docker-registry: installed ($path, $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null || echo '?'))"
fi

# htpasswd generator: bcrypt lines for the registry's htpasswd auth.
have_bcrypt() {
  if command -v htpasswd >/dev/null 2>&1; then command -v htpasswd; return 0; fi
  if [ -x /usr/bin/python3 ] &&
    /usr/bin/python3 -W ignore -c 'import crypt, sys; sys.exit(0 if crypt.crypt("x", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)).startswith("$2") else 1)' >/dev/null 2>&1; then
    echo "/usr/bin/python3 crypt"; return 0
  fi
  return 1
}
if how=$(have_bcrypt); then
  echo "htpasswd: already present ($how)"
else
  apt_install apache2-utils
  how=$(have_bcrypt) || die "no bcrypt htpasswd generator after installing apache2-utils"
  echo "htpasswd: installed ($how)"
fi

# xmllint: validates JUnit XML against junit-10.xsd (internal/gate tests).
if path=$(command -v xmllint 2>/dev/null); then
  echo "xmllint: already present ($path)"
else
  apt_install libxml2-utils
  path=$(command -v xmllint 2>/dev/null) ||
    die "xmllint still not on PATH after installing libxml2-utils"
  echo "xmllint: installed ($path, $(dpkg-query -W -f '${Version}' libxml2-utils 2>/dev/null || echo '?'))"
fi

# skopeo: copies an OCI layout as another user (internal/image's layout test),
# the way a later CI step reads what build-push-image wrote.
if path=$(command -v skopeo 2>/dev/null); then
  echo "skopeo: already present ($path)"
else
  apt_install skopeo
  path=$(command -v skopeo 2>/dev/null) || die "skopeo still not on PATH after installing skopeo"
  echo "skopeo: installed ($path)"
fi

# rsync: gitlab-ci-local copies the project into its build folder with it.
if path=$(command -v rsync 2>/dev/null); then
  echo "rsync: already present ($path)"
else
  apt_install rsync
  path=$(command -v rsync 2>/dev/null) || die "rsync still not on PATH after installing rsync"
  echo "rsync: installed ($path)"
fi

# prometheus and promtool: Debian's prometheus 2.x. The monitoring tests start
# a real Prometheus on loopback scraping a real mlship-serve, and check the
# alert rules with promtool (monitoring/). The package's service is not used.
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  echo "prometheus: already present ($(command -v prometheus))"
else
  apt_install prometheus
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 ||
    die "prometheus or promtool still not on PATH after installing prometheus"
  echo "prometheus: installed ($(dpkg-query -W -f '${Version}' prometheus 2>/dev/null || echo '?'))"
fi

# qemu-aarch64-static: runs the linux/arm64 build of mlship and mlship-serve
# here, to check that training and serving give the same bytes on arm64 as on
# amd64 (internal/crossarch).
if path=$(command -v qemu-aarch64-static 2>/dev/null); then
  echo "qemu-aarch64-static: already present ($path)"
else
  apt_install qemu-user-static
  path=$(command -v qemu-aarch64-static 2>/dev/null) ||
    die "qemu-aarch64-static still not on PATH after installing qemu-user-static"
  echo "qemu-aarch64-static: installed ($path)"
fi

# act (GitHub workflows in actions/actions_test.go) and staticcheck (make
# lint): pinned Go tools built into ~/.cache/mlship/tools (hack/tools.sh).
bash "$(dirname "${BASH_SOURCE[0]}")/tools.sh" >/dev/null && echo "go tools: $(bash "$(dirname "${BASH_SOURCE[0]}")/tools.sh")"

# Kubernetes test control plane (internal/testutil/kube, hack/kube/up.sh):
# openssl and curl for up.sh, and etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok built from source by hack/kube/build.sh into a cache
# outside the work tree (about 10 minutes the first time on 2 cores, instant
# after).
if ! command -v openssl >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
  apt_install openssl curl
fi
bash "$(dirname "${BASH_SOURCE[0]}")/kube/build.sh" || die "hack/kube/build.sh failed"
