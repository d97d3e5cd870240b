# The local token issuer of `FERMATA_AUTH=jwt make run`: what Keycloak (compose) or a
# company's identity provider is elsewhere, reduced to what a resource server needs. Off
# unless FERMATA_AUTH=jwt.
#
# Keys are made at its first start (tests/tools/jwt_tool: RS256, 2048 bits) in
# $FERMATA_DATA_DIR/issuer (mode 700, root's when we are root: the private keys never
# leave it); the public JWK Set is served by a private nginx on 127.0.0.1:ISSUER_PORT (8090)
# at /jwks.json, with a max-age of 60 s. scripts/token.sh mints tokens with the current key;
# `scripts/token.sh --rotate` adds a new one (the old still verifies), `--retire` drops all
# but the current one.
#
# With it on, `env` gives the services the issuer (SPRING_SECURITY_OAUTH2_RESOURCESERVER_JWT_
# ISSUER_URI, _JWK_SET_URI): their APIs then require Bearer tokens (lib/auth).
COMPONENTS+=(issuer)
ISSUER_PORT=${ISSUER_PORT:-8090}
ISS_DIR="$FERMATA_DATA_DIR/issuer"
ISS_PID="$ISS_DIR/nginx/nginx.pid"
ISS_URI="http://127.0.0.1:$ISSUER_PORT"

issuer_on_() { [ "${FERMATA_AUTH:-}" = jwt ]; }
issuer_pid_() { fm_pid_alive "$ISS_PID" nginx; }

# issuer_tool_: the jwt_tool of the build the services come from.
issuer_tool_() {
  local t
  for t in "${FERMATA_BUILD_DIR:-$ROOT/build/release}/tests/tools/jwt_tool" "$ROOT/build/release/tests/tools/jwt_tool" \
           "$ROOT/build/debug/tests/tools/jwt_tool"; do
    [ -x "$t" ] && { echo "$t"; return 0; }
  done
  echo "issuer: jwt_tool not built (make release)" >&2
  return 1
}

# issuer_keys_: the key pair and JWK Set, made once.
issuer_keys_() {
  [ -L "$ISS_DIR" ] && fm_die "refusing $ISS_DIR: it is a symbolic link"
  mkdir -p "$ISS_DIR/keys" "$ISS_DIR/public" "$ISS_DIR/nginx"
  chmod 711 "$ISS_DIR"                 # workers may reach public/, not keys/
  chmod 700 "$ISS_DIR/keys"
  chmod 755 "$ISS_DIR/public" "$ISS_DIR/nginx"
  [ -s "$ISS_DIR/current" ] && return 0
  local tool kid
  tool=$(issuer_tool_) || return 1
  kid="fermata-$(date +%Y%m%d%H%M%S)"
  "$tool" keygen --alg RS256 --kid "$kid" --key "$ISS_DIR/keys/$kid.pem" --jwks "$ISS_DIR/public/jwks.json" >/dev/null
  chmod 644 "$ISS_DIR/public/jwks.json"
  echo "$kid" >"$ISS_DIR/current"
  echo "issuer: made signing key $kid"
}

issuer_start() {
  issuer_on_ || return 0
  if issuer_pid_ >/dev/null; then echo "issuer: already running on $ISS_URI"; return 0; fi
  issuer_keys_ || return 1
  fm_port_check issuer "$ISSUER_PORT" ISSUER_PORT || return 1
  local user=""
  fm_is_root && user="user $GW_USER $(id -gn "$GW_USER");"
  cat >"$ISS_DIR/nginx/issuer.conf" <<CONF
# written by scripts/stack.d/35-issuer.sh
$user
worker_processes 1;
pid $ISS_PID;
error_log $ISS_DIR/nginx/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $ISS_DIR/nginx/tmp;
    proxy_temp_path $ISS_DIR/nginx/tmp;
    fastcgi_temp_path $ISS_DIR/nginx/tmp;
    uwsgi_temp_path $ISS_DIR/nginx/tmp;
    scgi_temp_path $ISS_DIR/nginx/tmp;
    server {
        listen 127.0.0.1:$ISSUER_PORT;
        default_type application/json;
        location = /jwks.json { alias $ISS_DIR/public/jwks.json; add_header Cache-Control "max-age=60"; }
        location = /.well-known/openid-configuration {
            return 200 '{"issuer":"$ISS_URI","jwks_uri":"$ISS_URI/jwks.json","id_token_signing_alg_values_supported":["RS256"]}';
        }
        location / { return 404 '{"errorMessage":"Not found","errorCode":"404"}'; }
    }
}
CONF
  "$GW_BIN" -q -e "$ISS_DIR/nginx/error.log" -c "$ISS_DIR/nginx/issuer.conf" </dev/null >>"$ISS_DIR/nginx/error.log" 2>&1 ||
    { echo "issuer: nginx did not start; log $ISS_DIR/nginx/error.log" >&2; tail -n 5 "$ISS_DIR/nginx/error.log" >&2; return 1; }
  wait_for_port "$ISSUER_PORT" 10 || { echo "issuer: nothing listens on $ISSUER_PORT" >&2; return 1; }
  echo "issuer: $ISS_URI (JWK Set $ISS_URI/jwks.json; tokens: scripts/token.sh SCOPE)"
}

issuer_stop() {
  local pid
  pid=$(issuer_pid_) || return 0
  kill -QUIT "$pid" 2>/dev/null || true
  fm_wait_gone 5 "$pid" || kill -KILL "$pid" 2>/dev/null || true
  rm -f "$ISS_PID"
}

issuer_kill() {
  local pid
  pid=$(issuer_pid_) || return 0
  kill -KILL "$pid" $(pgrep -P "$pid") 2>/dev/null || true
  rm -f "$ISS_PID"
}

issuer_pids() { local pid; pid=$(issuer_pid_) || return 0; echo "$pid"; pgrep -P "$pid" || true; }

issuer_status() {
  issuer_on_ || { echo "off (FERMATA_AUTH=jwt turns it on)"; return 0; }
  local pid
  if pid=$(issuer_pid_); then echo "up $ISS_URI (nginx, pid $pid)"; else echo down; return 1; fi
}

issuer_env() {
  issuer_on_ || return 0
  echo "export SPRING_SECURITY_OAUTH2_RESOURCESERVER_JWT_ISSUER_URI=$ISS_URI"
  echo "export SPRING_SECURITY_OAUTH2_RESOURCESERVER_JWT_JWK_SET_URI=$ISS_URI/jwks.json"
}
