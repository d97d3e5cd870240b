#!/usr/bin/env bash
# Installs what Fermata needs on Debian 12: C libraries, the real servers of the local
# stack, the users they run as, the object store, test tools. Idempotent: what is present
# is not touched. As root it runs apt-get and useradd; otherwise it prints the exact
# command and, where no root is needed, installs into the checkout (.venv, .tools).
#
#  - Debian packages: the C libraries, PostgreSQL, RabbitMQ, nginx, Prometheus (and its
#    promtool, which `make lint` runs), the tools of the tests;
#    as root also podman, buildah, runc and debootstrap (make containers, which CI runs).
#  - System users (root only), one per server, none shared with nginx's workers
#    (www-data): fermata-s3 (the object store), fermata-song, fermata-storage,
#    fermata-resource, fermata-processor, fermata-zipkin (the trace collector).
#  - Zipkin 3.6.1's exec jar from Maven Central (SHA-1 and SHA-256 checked; 135 MB), the
#    trace collector of FERMATA_TRACING=1, run by Debian's JDK (default-jdk-headless).
#  - versitygw (the Versity S3 Gateway, the local object store; Debian has none), pinned,
#    built from source through the Go module proxy with `go install`. It needs Go >= 1.25;
#    Debian 12's golang is 1.19, so when no such Go is on PATH, Go's own toolchain module
#    (golang.org/toolchain, go1.27.3, checked against a pinned SHA-256) is fetched from the
#    module proxy and used for that build only. Installed in /usr/local/lib/fermata as
#    root (so the unprivileged store user can run it from anywhere), .tools otherwise.
#  - kustomize (sigs.k8s.io/kustomize/kustomize/v5, pinned), built the same way: the config
#    smoke test renders deploy/k8s with it.
#  - The Python test environment (.venv, pinned by tests/requirements.txt), rebuilt only
#    when the requirements change.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. "$ROOT/scripts/lib/common.sh"

PACKAGES=(
  build-essential cmake pkg-config
  libmicrohttpd-dev libjansson-dev libpq-dev libcurl4-openssl-dev librabbitmq-dev
  libmpg123-dev libcmocka-dev libssl-dev
  postgresql rabbitmq-server nginx-light prometheus
  python3 python3-venv python3-pip
  lame id3v2 sox ffmpeg gettext-base
  clang libclang-rt-14-dev clang-format cppcheck
  wrk curl ca-certificates openssl iproute2 util-linux
)
# make containers (root only; CI runs it): podman, buildah and what the base image needs.
# Without root there is no use for them, so a user is not asked to install them.
if fm_is_root; then PACKAGES+=(podman buildah runc debootstrap containernetworking-plugins); fi
command -v mvn >/dev/null 2>&1 || PACKAGES+=(maven)
command -v javac >/dev/null 2>&1 || PACKAGES+=(default-jdk-headless)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
  if fm_is_root; then
    echo "deps: installing ${missing[*]}"
    # The packaged daemons must not start system-wide instances on our ports.
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1; fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    [ "$created_policy" -eq 1 ] && rm -f "$policy"
  else
    echo "deps: missing Debian packages; run as root:" >&2
    echo "  sudo sh -c '$cmd'" >&2
    exit 1
  fi
fi

# One system user per server (root only: as a user, everything runs as that user).
if fm_is_root; then
  for u in fermata-s3 fermata-song fermata-storage fermata-resource fermata-processor fermata-zipkin; do
    fm_user_exists "$u" && continue
    echo "deps: creating system user $u"
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$u"
  done
fi

# ---- versitygw ---------------------------------------------------------------------------
GO_TOOLCHAIN=go1.27.3
declare -A GO_TOOLCHAIN_SHA256=(
  [amd64]=af4c06478303fdd1bfb335fab86c7ccb9b12e529044a946a16a1c4bcc779f8d7
  [arm64]=0ec0774cad42ecf4df82691146ee0b10c303ea594f163acb1737baedd5cc2835
)

# go_at_least_125 GO: true when the go binary GO reports version 1.25 or newer.
go_at_least_125() {
  local v
  v=$("$1" env GOVERSION 2>/dev/null) || return 1
  v=${v#go}
  [ "$(printf '%s\n' 1.25 "${v%%[-a-z ]*}" | sort -V | head -n 1)" = 1.25 ]
}

# go_for_build: prints a go binary new enough to build versitygw, fetching the pinned
# toolchain from the module proxy when the machine has none.
go_for_build() {
  local g
  for g in "$(command -v go || true)" /usr/local/go/bin/go; do
    [ -n "$g" ] && [ -x "$g" ] && GOTOOLCHAIN=local go_at_least_125 "$g" && { echo "$g"; return; }
  done
  local arch proxy dir zip sum want
  arch=$(dpkg --print-architecture)
  want=${GO_TOOLCHAIN_SHA256[$arch]:-}
  [ -n "$want" ] || fm_die "deps: no pinned Go toolchain for architecture $arch"
  dir="$(fm_tools_dir)/$GO_TOOLCHAIN.linux-$arch"
  if [ ! -x "$dir/bin/go" ]; then
    proxy=${GOPROXY:-https://proxy.golang.org}; proxy=${proxy%%,*}; proxy=${proxy%/}
    [ "$proxy" = direct ] || [ "$proxy" = off ] && proxy=https://proxy.golang.org
    zip=$(mktemp)
    echo "deps: no Go >= 1.25 here (Debian 12 has 1.19); fetching Go's toolchain module $GO_TOOLCHAIN for $arch from $proxy (76 MB) to build versitygw" >&2
    curl -fsS --retry 3 -o "$zip" "$proxy/golang.org/toolchain/@v/v0.0.1-$GO_TOOLCHAIN.linux-$arch.zip" ||
      { rm -f "$zip"; fm_die "deps: could not fetch the Go toolchain from $proxy"; }
    sum=$(sha256sum "$zip" | cut -d' ' -f1)
    [ "$sum" = "$want" ] || { rm -f "$zip"; fm_die "deps: Go toolchain checksum mismatch ($sum, want $want)"; }
    rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
    python3 - "$zip" "$dir.tmp" <<'PY'
import os, sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z:
    for info in z.infolist():
        # members are golang.org/toolchain@v0.0.1-goX.linux-ARCH/<path>
        rel = info.filename.split("/", 2)[-1] if info.filename.count("/") >= 2 else ""
        if not rel or rel.endswith("/") or ".." in rel.split("/"):
            continue
        out = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(info) as f, open(out, "wb") as g:
            g.write(f.read())
        mode = (info.external_attr >> 16) & 0o777
        os.chmod(out, mode or 0o644)
PY
    rm -f "$zip"
    mv "$dir.tmp" "$dir"
  fi
  echo "$dir/bin/go"
}

# go_install_pinned BIN MODULE VERSION: `go install MODULE@VERSION` into the directory of
# BIN (its name is the module's last element), unless already complete there.
go_install_pinned() {
  local bin=$1 module=$2 version=$3 dir go
  dir=$(dirname "$bin")
  [ -x "$bin" ] && [ -f "$dir/.complete" ] && return 0
  go=$(go_for_build)
  echo "deps: building $(basename "$bin") $version with $(GOTOOLCHAIN=local "$go" env GOVERSION) (go install $module@$version; about a minute on 2 cores)"
  rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
  GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOBIN="$dir.tmp" \
    GOPATH="$(fm_tools_dir)/gopath" GOCACHE="$(fm_tools_dir)/gocache" \
    "$go" install "$module@$version"
  chmod 755 "$dir.tmp/$(basename "$bin")"
  touch "$dir.tmp/.complete"
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
  chmod 755 "$(fm_tools_dir)" "$dir"
}

go_install_pinned "$(fm_versitygw_bin)" github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION"
# ---- kustomize (rendering deploy/k8s for the config smoke test), pinned ------------------
go_install_pinned "$(fm_kustomize_bin)" sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
# ---- Zipkin (FERMATA_TRACING=1 make run, tests/system/test_tracing.py), pinned ------------
fm_fetch_zipkin
# the build caches and a fetched toolchain are not needed to run them
chmod -R u+w "$(fm_tools_dir)/gopath" 2>/dev/null || true
rm -rf "$(fm_tools_dir)/gopath" "$(fm_tools_dir)/gocache" "$(fm_tools_dir)/$GO_TOOLCHAIN".linux-*

# ---- Python test tools, pinned -----------------------------------------------------------
req=tests/requirements.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "deps: building .venv from $req"
  python3 -m venv .venv
  .venv/bin/pip install -q -r "$req"
  echo "$want" > "$stamp"
fi
