#!/usr/bin/env bash
# Installs what Fermata needs on Debian 12: C libraries, the real servers of the local
# stack, test tools. Idempotent: packages already present are not touched, and the Python
# test environment (.venv, pinned by tests/requirements.txt) is rebuilt only when the
# requirements change. As root it runs apt-get; otherwise it prints the exact command.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config
  libmicrohttpd-dev libjansson-dev libpq-dev libcurl4-openssl-dev librabbitmq-dev
  libmpg123-dev libcmocka-dev libssl-dev
  postgresql rabbitmq-server nginx-light
  python3 python3-venv python3-pip
  lame id3v2 sox ffmpeg gettext-base
  clang libclang-rt-14-dev
  wrk
)
command -v mvn >/dev/null 2>&1 || PACKAGES+=(maven)
command -v javac >/dev/null 2>&1 || PACKAGES+=(default-jdk-headless)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
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

# Python test tools, pinned.
req=tests/requirements.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "deps: building .venv from $req"
  python3 -m venv .venv
  .venv/bin/pip install -q -r "$req"
  echo "$want" > "$stamp"
fi
