#!/usr/bin/env bash
# Mints a Bearer token from the local issuer of `FERMATA_AUTH=jwt make run`
# (scripts/stack.d/35-issuer.sh), for curl and the tests.
#
#   scripts/token.sh [SCOPE...]      prints a token granting the scopes (default:
#                                    fermata.read fermata.write); valid TOKEN_TTL s (3600)
#   scripts/token.sh --rotate        a new signing key becomes current; tokens of the old
#                                    one still verify (its public key stays in the set)
#   scripts/token.sh --retire        drops every key but the current one from the set
#
# Scopes: fermata.read (GETs), fermata.write (uploads, deletes, songs), fermata.admin
# (storages, actuator writes). Audience "fermata", issuer http://127.0.0.1:$ISSUER_PORT.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib/common.sh"
fm_data_dir_init
DIR="$FERMATA_DATA_DIR/issuer"
ISSUER_PORT=${ISSUER_PORT:-8090}
TOOL=
for t in "${FERMATA_BUILD_DIR:-$ROOT/build/release}/tests/tools/jwt_tool" "$ROOT/build/release/tests/tools/jwt_tool" \
         "$ROOT/build/debug/tests/tools/jwt_tool"; do
  [ -x "$t" ] && { TOOL=$t; break; }
done
[ -n "$TOOL" ] || fm_die "token: jwt_tool is not built (make release)"
[ -s "$DIR/current" ] || fm_die "token: no local issuer in $DIR: start the stack with FERMATA_AUTH=jwt make run"
kid=$(cat "$DIR/current")

case "${1:-}" in
  --rotate)
    new="fermata-$(date +%Y%m%d%H%M%S%N | cut -c1-17)"
    "$TOOL" keygen --alg RS256 --kid "$new" --key "$DIR/keys/$new.pem" --jwks "$DIR/public/jwks.json" --append >/dev/null
    chmod 644 "$DIR/public/jwks.json"
    echo "$new" >"$DIR/current"
    echo "$new"
    ;;
  --retire)
    "$TOOL" jwks --key "$DIR/keys/$kid.pem" --kid "$kid" >"$DIR/public/jwks.json.new"
    chmod 644 "$DIR/public/jwks.json.new"
    mv "$DIR/public/jwks.json.new" "$DIR/public/jwks.json"
    find "$DIR/keys" -name '*.pem' ! -name "$kid.pem" -delete
    echo "$kid"
    ;;
  *)
    scope="${*:-fermata.read fermata.write}"
    "$TOOL" mint --key "$DIR/keys/$kid.pem" --kid "$kid" --iss "http://127.0.0.1:$ISSUER_PORT" --aud fermata \
      --scope "$scope" --sub "${TOKEN_SUBJECT:-local-user}" --ttl "${TOKEN_TTL:-3600}"
    ;;
esac
