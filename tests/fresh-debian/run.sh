#!/usr/bin/env bash
# `make fresh-debian`: scripts/deps.sh on a truly fresh Debian 12, as a new user meets it.
#
# A minimal Debian 12 (debootstrap --variant=minbase bookworm, from this machine's apt
# mirror) in a directory, entered with chroot (with /proc, /sys, /dev mounted), with nothing
# installed beyond the minimal base: no compiler, no Go, no Java, no Python. As root in it,
# this checkout is cloned to /root/fermata (mode 700, as on a new VM) and then, there:
#   scripts/deps.sh          (timed: what `make run` and `make test` start with)
#   make release             (the build `make run` runs)
#   scripts/stack.sh start   (every server of the stack comes up from /root/fermata)
#   scripts/services.sh start, an upload through the gateway, stop
# Needs root and about 3 GB of disk; downloads ~1 GB of packages. Not part of `make test`.
#
#   FRESH_DIR (/var/tmp/fermata-fresh-debian)  where the system is made (kept for reruns
#                                              with FRESH_KEEP=1; else rebuilt each time)
#   FRESH_MIRROR (this machine's apt mirror)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "fresh-debian: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
DIR=${FRESH_DIR:-/var/tmp/fermata-fresh-debian}
MIRROR=${FRESH_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
mnt() { mount "$@"; mounted+=("${@: -1}"); }

t0=$SECONDS
if [ "${FRESH_KEEP:-0}" != 1 ] || [ ! -x "$DIR/bin/bash" ]; then
  rm -rf --one-file-system "$DIR"
  echo "fresh-debian: debootstrap --variant=minbase bookworm $DIR $MIRROR"
  debootstrap --variant=minbase bookworm "$DIR" "$MIRROR" >"$DIR.debootstrap.log" 2>&1 ||
    { tail -n 30 "$DIR.debootstrap.log" >&2; exit 1; }
fi
echo "fresh-debian: base system in $((SECONDS - t0)) s"
cp /etc/resolv.conf "$DIR/etc/resolv.conf"
# this machine's apt sources and settings (its mirror may be a snapshot), nothing else
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$DIR/etc/apt/sources.list.d/"
  rm -f "$DIR/etc/apt/sources.list"
fi
for f in /etc/apt/apt.conf.d/99artifact-registry; do [ -f "$f" ] && cp "$f" "$DIR/etc/apt/apt.conf.d/"; done
mnt -t proc proc "$DIR/proc"
mnt -t sysfs sys "$DIR/sys"
mnt --bind /dev "$DIR/dev"
mnt -t devpts devpts "$DIR/dev/pts" -o newinstance,ptmxmode=0666
mnt -t tmpfs shm "$DIR/dev/shm"

# the checkout as a clone (what is committed), into /root/fermata
rm -rf "$DIR/root/fermata"
git clone -q --no-local "$ROOT" "$DIR/root/fermata"
chmod 700 "$DIR/root"

inside() { chroot "$DIR" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
           LANG=C.UTF-8 TERM=dumb bash -c "$1"; }
inside 'command -v go gcc java python3 || true' | sed 's/^/fresh-debian: already there: /'
# git and make: what a user installs to clone and type `make` (deps.sh does the rest)
inside 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends git make ca-certificates >/dev/null'
# this machine's network trust (a TLS-inspecting egress proxy's CA, if it has one), as a VM
# on this network would be given it
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$DIR/usr/local/share/ca-certificates/"
  inside 'update-ca-certificates >/dev/null'
fi
t1=$SECONDS
inside 'cd /root/fermata && scripts/deps.sh' 2>&1 | sed 's/^/  /'
deps=$((SECONDS - t1))
t2=$SECONDS
inside 'cd /root/fermata && make release >/dev/null' 2>&1 | tail -n 5 | sed 's/^/  /'
build=$((SECONDS - t2))
inside 'cd /root/fermata && export GATEWAY_PORT=18980 PG_PORT=25932 AMQP_PORT=26932 S3_PORT=29932 RESOURCE_PORT=18981 SONG_PORT=18982 STORAGE_PORT=18983 PROCESSOR_PORT=18984 &&
  scripts/stack.sh start && scripts/services.sh start &&
  sox -n -r 44100 -c 1 /tmp/a.wav synth 2 sine 440 && lame --quiet --tt Fresh --ta Debian /tmp/a.wav /tmp/a.mp3 &&
  id=$(curl -sf -X POST -H "Content-Type: audio/mpeg" --data-binary @/tmp/a.mp3 http://127.0.0.1:18980/resources) && echo "upload: $id" &&
  curl -sf http://127.0.0.1:18980/resources/1 | cmp - /tmp/a.mp3 && echo "download: identical" &&
  echo "data: $(scripts/stack.sh dir)"; rc=$?;
  scripts/services.sh stop; scripts/stack.sh stop; exit $rc' 2>&1 | sed 's/^/  /'
echo "fresh-debian: deps.sh ${deps} s, make release ${build} s, total $((SECONDS - t0)) s"
