#!/usr/bin/env bash
# make containers: builds every image of deploy/compose.yaml and runs that stack here, with
# podman and no Docker engine, then checks it (tests/containers/). Root only.
#
#   scripts/containers.sh [all]     build, up from empty volumes, check, down (volumes kept
#                                   for `up`): what make containers runs
#   scripts/containers.sh build     the base image (if missing) and every image
#   scripts/containers.sh up|check|down|ps|logs
#   scripts/containers.sh compose ARGS...   podman-compose with this machine's settings
#   scripts/containers.sh reset     down, and remove the volumes (all data of the stack)
#   scripts/containers.sh sizes     the images and their sizes
#
# This machine's settings (podman 4.3 and buildah 1.28 from Debian 12, verified here):
#   - the Dockerfiles' base image (debian:12.8-slim) is made from Debian's packages with
#     debootstrap --variant=minbase (about 40 s) and `podman import`ed under that name;
#   - containers.conf: default_ulimits = [] (through CONTAINERS_CONF), runc, cgroupfs;
#     `--ulimit host` on podman run; `--isolation chroot` for the builds;
#   - host networking only (deploy/containers/compose.here.yaml says what that changes).
# podman keeps its images and volumes in the data directory (<data>/containers/storage,
# CONTAINERS_STORAGE_CONF), apart from any other podman on the machine. podman 4.3 runs no
# healthchecks by itself without systemd, and podman-compose 1.6 ignores service_healthy
# with it: `up` starts everything at once (the services wait for what they need) and a
# loop here runs each container's healthcheck every few seconds, as the timers would.
# deploy/.env is written with random passwords and client secrets (never committed): when
# missing, and for keys deploy/.env.example gained since.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. "$ROOT/scripts/lib/common.sh"

fm_is_root || fm_die "containers: run as root (podman with host networking, debootstrap)"
DIR=${FERMATA_CONTAINERS_DIR:-$(fm_data_dir_default containers)}
VENV="$ROOT/.venv-containers"
TOOLS=(podman buildah runc debootstrap containernetworking-plugins)
OVERRIDE=deploy/containers/compose.here.yaml
BASE_IMAGE=$(sed -n 's/^ARG DEBIAN_IMAGE=//p' deploy/docker/Dockerfile)
GATEWAY_URL=http://127.0.0.1:28080

log() { echo "containers: $*"; }

install_tools() {
  local p missing=()
  for p in "${TOOLS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  local req=deploy/containers/requirements.txt stamp="$VENV/.requirements.sha256" want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/podman-compose" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "building $VENV from $req"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
    echo "$want" >"$stamp"
    echo '*' >"$VENV/.gitignore"
  fi
  scripts/deps.sh   # versitygw (copied into its image), the test venv, mp3 tools
}

setup_podman() {
  mkdir -p "$DIR"
  cat >"$DIR/containers.conf" <<EOF
# written by scripts/containers.sh
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  cat >"$DIR/storage.conf" <<EOF
# written by scripts/containers.sh
[storage]
driver = "overlay"
graphroot = "$DIR/storage"
runroot = "$DIR/runroot"
EOF
  export CONTAINERS_CONF="$DIR/containers.conf" CONTAINERS_STORAGE_CONF="$DIR/storage.conf"
  # Docker's image format: OCI images drop HEALTHCHECK
  export BUILDAH_FORMAT=docker
}

# The apt mirror this machine uses (first deb.debian.org-like URI of its sources).
apt_mirror() {
  local m
  m=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n 1)
  [ -n "$m" ] || m=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  echo "${m:-http://deb.debian.org/debian}"
}

base_image() {
  if podman image exists "docker.io/library/$BASE_IMAGE"; then return 0; fi
  local root="$DIR/rootfs" mirror security t0=$SECONDS
  mirror=$(apt_mirror)
  security=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep security | head -n 1)
  log "making the base image $BASE_IMAGE: debootstrap --variant=minbase bookworm from $mirror"
  rm -rf "$root"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$DIR/debootstrap.log" 2>&1 ||
    { tail -n 20 "$DIR/debootstrap.log" >&2; fm_die "containers: debootstrap failed (log $DIR/debootstrap.log)"; }
  # as Debian's slim images: no documentation, manuals or locales from later installs either
  cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  printf 'APT::Install-Recommends "false";\n' >"$root/etc/apt/apt.conf.d/90slim"
  {
    echo "deb $mirror bookworm main"
    echo "deb $mirror bookworm-updates main"
    [ -n "$security" ] && echo "deb $security bookworm-security main"
  } >"$root/etc/apt/sources.list"
  rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  tar -C "$root" -c . | podman import - "docker.io/library/$BASE_IMAGE" >/dev/null
  rm -rf "$root"
  log "base image ready in $((SECONDS - t0)) s"
}

# deploy/.env from deploy/.env.example with a random value for every empty *PASSWORD and
# *SECRET; an existing one keeps its values and gets the keys the example added since.
write_env() {
  local um; um=$(umask); umask 077
  python3 - deploy/.env.example deploy/.env <<'PY'
import os, re, secrets, string, sys
# Letters, digits and characters that break a URL (: / @ %), so that a password is never
# pasted into one unencoded without the stack noticing; none that .env or a config file
# would read specially (# $ quotes spaces).
alphabet = string.ascii_letters + string.digits + ":/@%+"
have = {}
if os.path.exists(sys.argv[2]):
    for line in open(sys.argv[2]):
        k, eq, v = line.strip().partition("=")
        if eq and not k.startswith("#"):
            have[k] = v
out, added = [], []
for line in open(sys.argv[1]):
    m = re.match(r"^([A-Z_]*(?:PASSWORD|SECRET))=$", line.strip())
    key = line.strip().partition("=")[0] if "=" in line and not line.startswith("#") else None
    if key in have and (have[key] or not m):
        line = f"{key}={have[key]}\n"
    elif m:
        line = f"{m.group(1)}={''.join(secrets.choice(alphabet) for _ in range(24))}\n"
        added.append(m.group(1))
    out.append(line)
open(sys.argv[2], "w").writelines(out)
if added:
    print("containers: deploy/.env: random values for " + " ".join(added))
PY
  umask "$um"
}

# fetch_pinned URL FILE SHA256 WHAT: FILE is URL's content, fetched unless it is there
# already with that sha256; a download that does not match is refused.
fetch_pinned() {
  local url=$1 file=$2 sum=$3 what=$4
  echo "$sum  $file" | sha256sum -c --status 2>/dev/null && return 0
  log "fetching $what (Maven Central)"
  curl -fsS --retry 3 -o "$file.part" "$url" || fm_die "containers: cannot fetch $url"
  echo "$sum  $file.part" | sha256sum -c --status || fm_die "containers: $url: sha256 mismatch"
  mv "$file.part" "$file"
}

# Keycloak (compose.yaml's token issuer) for keycloak.Dockerfile: the release compose.yaml
# names, from Maven Central, checked against its pinned sha256; a Java 21+ runtime.
KEYCLOAK_VERSION=26.5.6
KEYCLOAK_SHA256=fa3dd5df90b9ac006712c2f0991be4e8a6cb30ac538e0439ce2f45fc40f4c692
KEYCLOAK_JDK=${KEYCLOAK_JDK:-/usr/lib/jvm/temurin-25-jdk-amd64}
keycloak_context() {
  local ctx="$DIR/keycloak-context" tgz="$DIR/keycloak-$KEYCLOAK_VERSION.tar.gz"
  local url="https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/$KEYCLOAK_VERSION/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz"
  grep -q "quay.io/keycloak/keycloak:$KEYCLOAK_VERSION}" deploy/compose.yaml ||
    fm_die "containers: compose.yaml's Keycloak image is not $KEYCLOAK_VERSION (KEYCLOAK_VERSION here)"
  [ -x "$KEYCLOAK_JDK/bin/java" ] ||
    fm_die "containers: Keycloak needs Java 21 or newer; none at $KEYCLOAK_JDK (set KEYCLOAK_JDK to a JDK's directory)"
  fetch_pinned "$url" "$tgz" "$KEYCLOAK_SHA256" "Keycloak $KEYCLOAK_VERSION"
  if [ "$(cat "$ctx/.stamp" 2>/dev/null)" != "$KEYCLOAK_SHA256 $KEYCLOAK_JDK 2" ]; then
    rm -rf "$ctx"; mkdir -p "$ctx/keycloak"
    tar -C "$ctx/keycloak" --strip-components=1 -xzf "$tgz"
    cp -a "$KEYCLOAK_JDK" "$ctx/jdk"
    # Debian's JDKs link their CA store to /etc/ssl/certs/java (ca-certificates-java, which
    # the image has not): the file itself goes in, or Keycloak finds no system truststore
    if [ -L "$ctx/jdk/lib/security/cacerts" ]; then
      rm "$ctx/jdk/lib/security/cacerts"
      cp -L "$KEYCLOAK_JDK/lib/security/cacerts" "$ctx/jdk/lib/security/cacerts" ||
        fm_die "containers: $KEYCLOAK_JDK/lib/security/cacerts is a dangling link (install ca-certificates-java)"
    fi
    echo "$KEYCLOAK_SHA256 $KEYCLOAK_JDK 2" >"$ctx/.stamp"
  fi
  cp deploy/containers/keycloak.Dockerfile "$ctx/Dockerfile"
  export FERMATA_KEYCLOAK_CONTEXT=$ctx
}

# Zipkin (compose.yaml's trace collector) for zipkin.Dockerfile: the release compose.yaml
# names, its exec jar from Maven Central, checked against its pinned sha256.
ZIPKIN_VERSION=3.6.1
ZIPKIN_SHA256=d8326e0ed4f43855dba81228f688554706e52578a7c782d9a90b73f8680654a1
zipkin_context() {
  local ctx="$DIR/zipkin-context" jar="$DIR/zipkin-server-$ZIPKIN_VERSION-exec.jar"
  local url="https://repo1.maven.org/maven2/io/zipkin/zipkin-server/$ZIPKIN_VERSION/zipkin-server-$ZIPKIN_VERSION-exec.jar"
  grep -q "openzipkin/zipkin:$ZIPKIN_VERSION}" deploy/compose.yaml ||
    fm_die "containers: compose.yaml's Zipkin image is not $ZIPKIN_VERSION (ZIPKIN_VERSION here)"
  fetch_pinned "$url" "$jar" "$ZIPKIN_SHA256" "Zipkin $ZIPKIN_VERSION (135 MB)"
  mkdir -p "$ctx"
  cmp -s "$jar" "$ctx/zipkin.jar" || cp "$jar" "$ctx/zipkin.jar"
  install -m 755 deploy/containers/zipkin-healthcheck.sh "$ctx/docker-healthcheck"
  cp deploy/containers/zipkin.Dockerfile "$ctx/Dockerfile"
  export FERMATA_ZIPKIN_CONTEXT=$ctx
}

s3_context() {
  local ctx="$DIR/s3-context"
  mkdir -p "$ctx"
  install -m 755 "$(fm_versitygw_bin)" "$ctx/versitygw"
  cp deploy/containers/s3.Dockerfile "$ctx/Dockerfile"
  export FERMATA_S3_CONTEXT=$ctx
}

# The checks drive the API suite and schemathesis (hundreds of writes a second from one
# address) through the gateway: they run with the local stack's write limits
# (scripts/stack.d/40-gateway.sh), not Compose's 20r/s default, which they would exceed by
# design; test_gateway covers the limits themselves. A caller's own values win. Keycloak
# is on 28180 here (compose.here.yaml): the issuer the services accept follows.
compose() {
  GATEWAY_WRITE_RATE="${GATEWAY_WRITE_RATE:-100r/s}" GATEWAY_WRITE_BURST="${GATEWAY_WRITE_BURST:-200}" \
  GATEWAY_WRITE_CONNS="${GATEWAY_WRITE_CONNS:-64}" KEYCLOAK_URL=http://localhost:28180 \
  "$VENV/bin/podman-compose" --in-pod false \
    --podman-run-args="--ulimit host" \
    --podman-build-args="--isolation chroot --network host" \
    -f deploy/compose.yaml -f "$OVERRIDE" "$@"
}

build() {
  local t0=$SECONDS
  base_image
  log "building the images (compose build)"
  compose build >"$DIR/build.log" 2>&1 || { tail -n 40 "$DIR/build.log" >&2; fm_die "containers: build failed (log $DIR/build.log)"; }
  log "images built in $((SECONDS - t0)) s"
  sizes
}

sizes() {
  podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'fermata' | sort
}

containers_of_project() { podman ps -a --format '{{.Names}}' | grep -E '^fermata[_-]' || true; }

# The healthchecks podman 4.3 does not run by itself without systemd.
health_loop() {
  while :; do
    for c in $(podman ps --format '{{.Names}}' | grep -E '^fermata[_-]' || true); do
      podman healthcheck run "$c" >/dev/null 2>&1 || true
    done
    sleep 3
  done
}

up() {
  log "starting the stack (podman-compose up -d; gateway $GATEWAY_URL)"
  compose up -d >"$DIR/up.log" 2>&1 || { tail -n 40 "$DIR/up.log" >&2; fm_die "containers: up failed (log $DIR/up.log)"; }
}

check() {
  health_loop &
  local loop=$! rc=0
  FERMATA_CONTAINERS=1 GATEWAY_URL=$GATEWAY_URL FERMATA_CONTAINERS_DIR=$DIR \
    "$ROOT/.venv/bin/python" -m pytest tests/containers -p no:cacheprovider -q "$@" || rc=$?
  kill "$loop" 2>/dev/null || true
  wait "$loop" 2>/dev/null || true
  return $rc
}

down() { compose down >"$DIR/down.log" 2>&1 || { tail -n 20 "$DIR/down.log" >&2; return 1; }; }

main() {
  local cmd=${1:-all}
  [ $# -gt 0 ] && shift
  install_tools
  setup_podman
  write_env
  s3_context
  keycloak_context
  zipkin_context
  case "$cmd" in
    all)
      local t0=$SECONDS rc=0
      build
      # from empty volumes: the checks create and fuzz data; `up` alone keeps it
      compose down -v >"$DIR/down.log" 2>&1 || true
      up
      check "$@" || rc=$?
      down || rc=1
      log "done in $((SECONDS - t0)) s ($([ $rc -eq 0 ] && echo passed || echo FAILED))"
      return $rc ;;
    build) build ;;
    up) up ;;
    check) check "$@" ;;
    down) down ;;
    reset) compose down -v ;;
    ps) podman ps -a ;;
    logs) compose logs "$@" ;;
    compose) compose "$@" ;;
    sizes) sizes ;;
    *) fm_die "usage: scripts/containers.sh [all|build|up|check|down|reset|ps|logs|compose ARGS|sizes]" ;;
  esac
}

main "$@"
