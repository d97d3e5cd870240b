/* Unit tests of lib/jwt: the tokens issue 19 lists (none, expired, wrong issuer, wrong
 * audience, missing scope, forged signature, alg=none, the right one; JWKS rotation is in
 * jwt_rotation_test.c) and every other way a token is refused, against keys generated at
 * test time (RSA 2048 and P-256), a JWK Set served by a fake fetcher and fake clocks.
 * Tokens are signed by tests/tools/jwtmint, independently of the verifier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt_fixture.h"

/* ---- the right token ------------------------------------------------------------------ */

static void test_right_token(void **state) {
  fx *f = *state;
  assert_int_equal(check(f, good(f)), 0);
  assert_string_equal(f->claims.subject, "alice");
  assert_string_equal(f->claims.key_id, "r1");
  assert_int_equal(f->claims.alg, JWKS_RS256);
  assert_int_equal(f->claims.scopes, JWT_SCOPE_READ | JWT_SCOPE_WRITE);
  assert_int_equal(f->claims.expires_at, NOW + 300);
  assert_int_equal(f->claims.issued_at, NOW);
  assert_int_equal(f->fetches, 1);
  assert_int_equal(check(f, good(f)), 0);
  assert_int_equal(f->fetches, 1); /* the set is cached */

  assert_int_equal(check(f, token_with(f->ec, "ES256", "e1", NULL, NULL)), 0);
  assert_int_equal(f->claims.alg, JWKS_ES256);
  /* no kid: every key that fits the algorithm is tried */
  assert_int_equal(check(f, token_with(f->ec, "ES256", NULL, NULL, NULL)), 0);
  assert_int_equal(check(f, token_with(f->rsa, "RS256", NULL, "sub", NULL)), 0);
  assert_string_equal(f->claims.subject, "");
  assert_string_equal(f->claims.key_id, "");
  /* exp as a fractional NumericDate, a huge exp, the second audience */
  assert_int_equal(check_claim(f, "exp", "1700000300.75"), 0);
  assert_int_equal(f->claims.expires_at, NOW + 300);
  assert_int_equal(check_claim(f, "exp", "9223372036854775807"), 0);
  assert_int_equal(check_claim(f, "aud", "\"fermata-gateway\""), 0);
  /* a token need not be NUL-terminated */
  char *t = good(f);
  size_t len = strlen(t);
  char *copy = malloc(len + 5);
  memcpy(copy, t, len);
  memcpy(copy + len, ".xyz", 4);
  assert_int_equal(jwt_verify(f->v, copy, len, &f->claims), 0);
  free(copy);
  free(t);
}

static void test_authorize(void **state) {
  fx *f = *state;
  char *t = good(f);
  char auth[4096];
  snprintf(auth, sizeof auth, "Bearer %s", t);
  assert_int_equal(jwt_authorize(f->v, auth, JWT_SCOPE_READ, &f->claims), 0);
  assert_int_equal(jwt_authorize(f->v, auth, JWT_SCOPE_READ | JWT_SCOPE_WRITE, &f->claims), 0);
  assert_int_equal(jwt_authorize(f->v, auth, 0, &f->claims), 0);
  snprintf(auth, sizeof auth, "bearer \t%s  ", t); /* scheme case, spaces */
  assert_int_equal(jwt_authorize(f->v, auth, JWT_SCOPE_READ, &f->claims), 0);
  /* a missing scope: 403, and the claims are there for the log_sink */
  snprintf(auth, sizeof auth, "Bearer %s", t);
  assert_int_equal(jwt_authorize(f->v, auth, JWT_SCOPE_ADMIN, &f->claims), JWT_ERR_INSUFFICIENT_SCOPE);
  assert_string_equal(f->claims.subject, "alice");
  assert_int_equal(jwt_authorize(f->v, auth, JWT_SCOPE_READ | JWT_SCOPE_ADMIN, &f->claims), JWT_ERR_INSUFFICIENT_SCOPE);
  /* no token */
  assert_int_equal(jwt_authorize(f->v, NULL, JWT_SCOPE_READ, &f->claims), JWT_ERR_NO_TOKEN);
  assert_int_equal(jwt_authorize(f->v, "", JWT_SCOPE_READ, &f->claims), JWT_ERR_NO_TOKEN);
  assert_int_equal(jwt_authorize(f->v, "Basic YWxpY2U6cHc=", JWT_SCOPE_READ, &f->claims), JWT_ERR_NO_TOKEN);
  assert_int_equal(jwt_authorize(f->v, "Bearerx abc", JWT_SCOPE_READ, &f->claims), JWT_ERR_NO_TOKEN);
  /* Bearer, but no usable token */
  assert_int_equal(jwt_authorize(f->v, "Bearer", JWT_SCOPE_READ, &f->claims), JWT_ERR_MALFORMED);
  assert_int_equal(jwt_authorize(f->v, "Bearer   ", JWT_SCOPE_READ, &f->claims), JWT_ERR_MALFORMED);
  assert_int_equal(jwt_authorize(f->v, "Bearer a b", JWT_SCOPE_READ, &f->claims), JWT_ERR_MALFORMED);
  assert_int_equal(jwt_authorize(f->v, "Bearer a\"b", JWT_SCOPE_READ, &f->claims), JWT_ERR_MALFORMED);
  snprintf(auth, sizeof auth, "Bearer %s, Bearer %s", "a.b.c", "d.e.f");
  assert_int_equal(jwt_authorize(f->v, auth, JWT_SCOPE_READ, &f->claims), JWT_ERR_MALFORMED);
  /* token68 characters that base64url lacks */
  assert_int_equal(jwt_authorize(f->v, "Bearer a+b.c/d.e==", JWT_SCOPE_READ, &f->claims), JWT_ERR_MALFORMED);
  free(t);
  assert_int_equal(jwt_authorize(NULL, "Bearer x", 0, &f->claims), JWT_ERR_INVALID);
}

/* ---- structure ------------------------------------------------------------------------ */

static void test_malformed(void **state) {
  fx *f = *state;
  const char *bad[] = {"",
                       "abc",
                       "a.b",
                       "a.b.c.d",
                       "a.b.c.d.e",
                       ".eyJ9.c",
                       "eyJhbGciOiJSUzI1NiJ9..c",
                       "!!!.eyJ9.c",
                       "eyJhbGciOiJSUzI1NiJ9=.e30.c"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(jwt_verify(f->v, bad[i], strlen(bad[i]), &f->claims), JWT_ERR_MALFORMED);
    assert_string_equal(f->claims.subject, "");
  }
  char *c = claims_with(NULL, NULL);
  /* headers that are not a JSON object, or lack alg, or have a bad kid */
  const char *headers[] = {"not json",
                           "[\"alg\",\"RS256\"]",
                           "\"RS256\"",
                           "{}",
                           "{\"typ\":\"JWT\"}",
                           "{\"alg\":\"RS256\",\"kid\":7}",
                           "{\"alg\":\"RS256\",\"alg\":\"RS256\"}"};
  for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
    assert_int_equal(check(f, jwtmint_token(f->rsa, headers[i], c, false)), JWT_ERR_MALFORMED);
  char longkid[JWKS_MAX_KID + 2];
  memset(longkid, 'k', sizeof longkid - 1);
  longkid[sizeof longkid - 1] = '\0';
  assert_int_equal(check(f, token_with(f->rsa, "RS256", longkid, NULL, NULL)), JWT_ERR_MALFORMED);
  /* headers nested too deep */
  char deep[256];
  snprintf(deep, sizeof deep, "{\"alg\":\"RS256\",\"x\":%s}", "[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]");
  assert_int_equal(check(f, jwtmint_token(f->rsa, deep, c, false)), JWT_ERR_MALFORMED);
  /* properly signed payloads that are not a JSON object, or not base64url */
  char *h = header("RS256", "r1");
  const char *payloads[] = {"not json", "[1,2]", "{\"iss\":\"a\",\"iss\":\"b\"}",
                            "{\"a\":[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}"};
  for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++)
    assert_int_equal(check(f, jwtmint_token(f->rsa, h, payloads[i], false)), JWT_ERR_MALFORMED);
  char *hb = jwtmint_b64(h, strlen(h)), input[512];
  snprintf(input, sizeof input, "%s.%s", hb, "e30=");
  unsigned char *sig;
  size_t sl;
  assert_int_equal(jwtmint_sign(f->rsa, input, strlen(input), false, &sig, &sl), 0);
  char *sb = jwtmint_b64(sig, sl), tok[1024];
  snprintf(tok, sizeof tok, "%s.%s", input, sb);
  assert_int_equal(jwt_verify(f->v, tok, strlen(tok), &f->claims), JWT_ERR_MALFORMED);
  /* a signature that is not base64url, or too long to be one */
  snprintf(tok, sizeof tok, "%s.e30.%s", hb, "ab+c");
  assert_int_equal(jwt_verify(f->v, tok, strlen(tok), &f->claims), JWT_ERR_MALFORMED);
  char longsig[1500];
  memset(longsig, 'A', sizeof longsig - 1);
  longsig[sizeof longsig - 1] = '\0';
  snprintf(tok, sizeof tok, "%s.e30.", hb);
  char *big = malloc(strlen(tok) + sizeof longsig);
  snprintf(big, strlen(tok) + sizeof longsig, "%s%s", tok, longsig);
  assert_int_equal(jwt_verify(f->v, big, strlen(big), &f->claims), JWT_ERR_SIGNATURE);
  free(big);
  free(sb);
  free(sig);
  free(hb);
  free(h);
  free(c);
  assert_int_equal(jwt_verify(f->v, NULL, 3, &f->claims), JWT_ERR_INVALID);
  assert_int_equal(jwt_verify(NULL, "a.b.c", 5, &f->claims), JWT_ERR_INVALID);
  assert_int_equal(f->fetches, 1); /* only the properly signed payloads needed the keys */
}

static void test_oversize(void **state) {
  fx *f = *state;
  char pad[JWT_DEFAULT_MAX_TOKEN];
  memset(pad, 'x', sizeof pad - 1);
  pad[sizeof pad - 1] = '\0';
  char value[JWT_DEFAULT_MAX_TOKEN + 8];
  snprintf(value, sizeof value, "\"%s\"", pad);
  char *t = token_with(f->rsa, "RS256", "r1", "pad", value);
  assert_true(strlen(t) > JWT_DEFAULT_MAX_TOKEN);
  char *auth = malloc(strlen(t) + 8);
  snprintf(auth, strlen(t) + 8, "Bearer %s", t);
  assert_int_equal(jwt_authorize(f->v, auth, 0, &f->claims), JWT_ERR_TOO_LARGE);
  free(auth);
  assert_int_equal(check(f, t), JWT_ERR_TOO_LARGE);
  /* at the limit: judged on its content */
  memset(pad, 'A', sizeof pad);
  assert_int_equal(jwt_verify(f->v, pad, JWT_DEFAULT_MAX_TOKEN, &f->claims), JWT_ERR_MALFORMED);
  assert_int_equal(f->fetches, 0);
}

/* ---- algorithms and keys -------------------------------------------------------------- */

static void test_alg_none(void **state) {
  fx *f = *state;
  char *c = claims_with(NULL, NULL);
  const char *algs[] = {"none", "None", "NONE", "nOnE"};
  for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
    char *h = header(algs[i], "r1");
    assert_int_equal(check(f, jwtmint_token(NULL, h, c, false)), JWT_ERR_UNSUPPORTED);
    /* with a real signature glued on */
    assert_int_equal(check(f, jwtmint_token(f->rsa, h, c, false)), JWT_ERR_UNSUPPORTED);
    free(h);
  }
  /* a real alg with the unsecured shape (empty signature) */
  char *h = header("RS256", "r1");
  assert_int_equal(check(f, jwtmint_token(NULL, h, c, false)), JWT_ERR_SIGNATURE);
  free(h);
  free(c);
  assert_int_equal(f->fetches, 0);
}

static void test_other_algs(void **state) {
  fx *f = *state;
  const char *algs[] = {"HS256", "HS512", "RS384", "RS512", "PS256", "ES384", "EdDSA", "rs256", ""};
  for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
    assert_int_equal(check(f, token_with(f->rsa, algs[i], "r1", NULL, NULL)), JWT_ERR_UNSUPPORTED);
  char *c = claims_with(NULL, NULL);
  assert_int_equal(check(f, jwtmint_token(f->rsa, "{\"alg\":256}", c, false)), JWT_ERR_UNSUPPORTED);
  /* crit: an extension we do not implement */
  assert_int_equal(
      check(f, jwtmint_token(f->rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"exp\"],\"exp\":1}", c, false)),
      JWT_ERR_UNSUPPORTED);
  /* jku/x5u/jwk in the header are ignored: the evil key they carry is never used */
  char hdr[2048];
  json_t *ej = jwtmint_jwk(f->evil, "r1", false);
  char *ejs = json_dumps(ej, JSON_COMPACT);
  snprintf(hdr, sizeof hdr, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"jku\":\"http://evil/jwks\",\"jwk\":%s}", ejs);
  assert_int_equal(check(f, jwtmint_token(f->evil, hdr, c, false)), JWT_ERR_SIGNATURE);
  free(ejs);
  json_decref(ej);
  free(c);
}

/* RS/HS key confusion: an HS256 token whose HMAC secret is the RSA public key, as PEM and
 * as the JWK's n. */
static void test_hs256_key_confusion(void **state) {
  fx *f = *state;
  char *pem = jwtmint_public_pem(f->rsa);
  assert_non_null(pem);
  size_t pem_len = strlen(pem);
  json_t *jwk = jwtmint_jwk(f->rsa, "r1", false);
  const char *n = json_string_value(json_object_get(jwk, "n"));
  const struct {
    const void *key;
    size_t len;
  } secrets[] = {{pem, pem_len}, {n, strlen(n)}};
  char *h = header("HS256", "r1"), *c = claims_with(NULL, NULL);
  char *hb = jwtmint_b64(h, strlen(h)), *cb = jwtmint_b64(c, strlen(c)), input[1024];
  snprintf(input, sizeof input, "%s.%s", hb, cb);
  for (size_t i = 0; i < 2; i++) {
    unsigned char mac[32];
    size_t mac_len = 0;
    assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secrets[i].key, secrets[i].len,
                              (const unsigned char *)input, strlen(input), mac, sizeof mac, &mac_len));
    assert_int_equal(check(f, jwtmint_token_with_sig(h, c, mac, mac_len)), JWT_ERR_UNSUPPORTED);
  }
  /* the same MAC under "RS256" is just a wrong signature */
  char *rh = header("RS256", "r1");
  unsigned char mac[32];
  size_t mac_len;
  assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, pem, pem_len, (const unsigned char *)input,
                            strlen(input), mac, sizeof mac, &mac_len));
  assert_int_equal(check(f, jwtmint_token_with_sig(rh, c, mac, mac_len)), JWT_ERR_SIGNATURE);
  free(rh);
  free(hb);
  free(cb);
  free(h);
  free(c);
  json_decref(jwk);
  free(pem);
}

static void test_forged_signature(void **state) {
  fx *f = *state;
  /* a flipped bit in each part: header and payload change the signing input */
  char *t = good(f);
  size_t len = strlen(t);
  char *dot1 = strchr(t, '.'), *dot2 = strrchr(t, '.');
  size_t at[] = {(size_t)(dot1 - t) - 3, (size_t)(dot1 - t) + 10, len - 20};
  for (size_t i = 0; i < 3; i++) {
    char *forged = strdup(t);
    forged[at[i]] = forged[at[i]] == 'A' ? 'B' : 'A';
    int rc = jwt_verify(f->v, forged, len, &f->claims);
    assert_true(rc == JWT_ERR_SIGNATURE || (i == 0 && rc == JWT_ERR_MALFORMED));
    free(forged);
  }
  /* changed claims under the original signature */
  char *other = token_with(f->rsa, "RS256", "r1", "scope", "\"fermata.admin\"");
  char *mix = malloc(len + strlen(other) + 1);
  size_t body = (size_t)(strrchr(other, '.') - other);
  snprintf(mix, len + strlen(other) + 1, "%.*s%s", (int)body, other, dot2);
  assert_int_equal(jwt_verify(f->v, mix, strlen(mix), &f->claims), JWT_ERR_SIGNATURE);
  free(mix);
  free(other);
  /* a truncated signature: 342 characters for 256 bytes, 340 still decode */
  assert_int_equal(jwt_verify(f->v, t, len - 2, &f->claims), JWT_ERR_SIGNATURE);
  free(t);
  /* another key under the same kid, for both algorithms */
  assert_int_equal(check(f, token_with(f->evil, "RS256", "r1", NULL, NULL)), JWT_ERR_SIGNATURE);
  jwtmint_key *ec2 = jwtmint_keygen("ES256", 0);
  assert_int_equal(check(f, token_with(ec2, "ES256", "e1", NULL, NULL)), JWT_ERR_SIGNATURE);
  jwtmint_key_free(ec2);
}

static void test_es256_der_refused(void **state) {
  fx *f = *state;
  char *h = header("ES256", "e1"), *c = claims_with(NULL, NULL);
  assert_int_equal(check(f, jwtmint_token(f->ec, h, c, true)), JWT_ERR_SIGNATURE);
  assert_int_equal(check(f, jwtmint_token(f->ec, h, c, false)), 0);
  free(h);
  free(c);
}

static void test_key_type_binding(void **state) {
  fx *f = *state;
  /* a kid that names a key of the other type finds no key, even after a refresh */
  assert_int_equal(check(f, token_with(f->rsa, "ES256", "r1", NULL, NULL)), JWT_ERR_UNKNOWN_KEY);
  atomic_fetch_add(&f->mono, 30);
  assert_int_equal(check(f, token_with(f->ec, "RS256", "e1", NULL, NULL)), JWT_ERR_UNKNOWN_KEY);
}

/* ---- claims --------------------------------------------------------------------------- */

static void test_expiry(void **state) {
  fx *f = *state;
  char v[32];
  snprintf(v, sizeof v, "%lld", NOW - 61);
  assert_int_equal(check_claim(f, "exp", v), JWT_ERR_EXPIRED);
  snprintf(v, sizeof v, "%lld", NOW - 60); /* exp + skew == now: no longer valid */
  assert_int_equal(check_claim(f, "exp", v), JWT_ERR_EXPIRED);
  snprintf(v, sizeof v, "%lld", NOW - 59); /* within the 60 s skew */
  assert_int_equal(check_claim(f, "exp", v), 0);
  snprintf(v, sizeof v, "%lld", NOW - 1);
  assert_int_equal(check_claim(f, "exp", v), 0);
  /* time passes for a good token */
  atomic_store(&f->wall, NOW + 360);
  assert_int_equal(check(f, good(f)), JWT_ERR_EXPIRED);
  assert_int_equal(check_claim(f, "exp", "-9223372036854775807"), JWT_ERR_EXPIRED);
}

static void test_not_before(void **state) {
  fx *f = *state;
  char v[32];
  snprintf(v, sizeof v, "%lld", NOW + 61);
  assert_int_equal(check_claim(f, "nbf", v), JWT_ERR_NOT_YET_VALID);
  snprintf(v, sizeof v, "%lld", NOW + 60); /* within the skew */
  assert_int_equal(check_claim(f, "nbf", v), 0);
  snprintf(v, sizeof v, "%lld", NOW - 100);
  assert_int_equal(check_claim(f, "nbf", v), 0);
  snprintf(v, sizeof v, "%lld", NOW + 120); /* issued in the future */
  assert_int_equal(check_claim(f, "iat", v), JWT_ERR_NOT_YET_VALID);
  snprintf(v, sizeof v, "%lld", NOW + 30);
  assert_int_equal(check_claim(f, "iat", v), 0);
  assert_int_equal(check_claim(f, "nbf", "9223372036854775807"), JWT_ERR_NOT_YET_VALID);
}

static void test_no_skew(void **state) {
  fx *f = *state;
  char v[32];
  snprintf(v, sizeof v, "%lld", NOW);
  assert_int_equal(check_claim(f, "exp", v), JWT_ERR_EXPIRED);
  snprintf(v, sizeof v, "%lld", NOW + 1);
  assert_int_equal(check_claim(f, "exp", v), 0);
  snprintf(v, sizeof v, "%lld", NOW + 1);
  assert_int_equal(check_claim(f, "nbf", v), JWT_ERR_NOT_YET_VALID);
  snprintf(v, sizeof v, "%lld", NOW);
  assert_int_equal(check_claim(f, "nbf", v), 0);
}

static void test_issuer(void **state) {
  fx *f = *state;
  assert_int_equal(check_claim(f, "iss", "\"https://evil.test/realms/fermata\""), JWT_ERR_ISSUER);
  assert_int_equal(check_claim(f, "iss", "\"" ISS "/\""), JWT_ERR_ISSUER);
  assert_int_equal(check_claim(f, "iss", "\"https://issuer.fermata.test/realms/ferma\""), JWT_ERR_ISSUER);
  assert_int_equal(check_claim(f, "iss", "\"HTTPS://ISSUER.FERMATA.TEST/realms/fermata\""), JWT_ERR_ISSUER);
  assert_int_equal(check_claim(f, "iss", "[\"" ISS "\"]"), JWT_ERR_ISSUER);
  assert_int_equal(check_claim(f, "iss", "\"\""), JWT_ERR_ISSUER);
  assert_int_equal(check_claim(f, "iss", NULL), JWT_ERR_ISSUER);
}

static void test_audience(void **state) {
  fx *f = *state;
  assert_int_equal(check_claim(f, "aud", "\"other-service\""), JWT_ERR_AUDIENCE);
  assert_int_equal(check_claim(f, "aud", "[\"other\",\"account\"]"), JWT_ERR_AUDIENCE);
  assert_int_equal(check_claim(f, "aud", "[]"), JWT_ERR_AUDIENCE);
  assert_int_equal(check_claim(f, "aud", "[[\"fermata\"]]"), JWT_ERR_AUDIENCE);
  assert_int_equal(check_claim(f, "aud", "\"Fermata\""), JWT_ERR_AUDIENCE);
  assert_int_equal(check_claim(f, "aud", "7"), JWT_ERR_AUDIENCE);
  assert_int_equal(check_claim(f, "aud", NULL), JWT_ERR_AUDIENCE);
  assert_int_equal(check_claim(f, "aud", "[\"account\",\"fermata\"]"), 0);
  assert_int_equal(check_claim(f, "aud", "[1,\"fermata-gateway\"]"), 0);
}

static void test_claim_types(void **state) {
  fx *f = *state;
  assert_int_equal(check_claim(f, "exp", NULL), JWT_ERR_CLAIMS); /* exp is required */
  assert_int_equal(check_claim(f, "exp", "\"1700000300\""), JWT_ERR_CLAIMS);
  assert_int_equal(check_claim(f, "exp", "null"), JWT_ERR_CLAIMS);
  assert_int_equal(check_claim(f, "exp", "1e300"), JWT_ERR_CLAIMS);
  assert_int_equal(check_claim(f, "nbf", "\"soon\""), JWT_ERR_CLAIMS);
  assert_int_equal(check_claim(f, "iat", "true"), JWT_ERR_CLAIMS);
  assert_int_equal(check_claim(f, "sub", "42"), JWT_ERR_CLAIMS);
  char sub[JWT_MAX_SUBJECT + 4];
  snprintf(sub, sizeof sub, "\"%0*d\"", JWT_MAX_SUBJECT + 1, 0);
  assert_int_equal(check_claim(f, "sub", sub), JWT_ERR_CLAIMS);
  snprintf(sub, sizeof sub, "\"%0*d\"", JWT_MAX_SUBJECT, 0);
  assert_int_equal(check_claim(f, "sub", sub), 0);
  assert_int_equal(strlen(f->claims.subject), JWT_MAX_SUBJECT);
  assert_int_equal(check_claim(f, "scope", "7"), JWT_ERR_CLAIMS);
  assert_int_equal(check_claim(f, "scope", "[\"fermata.read\",7]"), JWT_ERR_CLAIMS);
}

static unsigned scopes_of(fx *f, const char *field, const char *value, const char *field2, const char *value2) {
  char *h = header("RS256", "r1"), *c = claims_with(field, value);
  json_error_t e;
  json_t *j = json_loads(c, 0, &e);
  if (field2) json_object_set_new(j, field2, json_loads(value2, JSON_DECODE_ANY, &e));
  char *c2 = json_dumps(j, JSON_COMPACT);
  int rc = check(f, jwtmint_token(f->rsa, h, c2, false));
  assert_int_equal(rc, 0);
  json_decref(j);
  free(c2);
  free(c);
  free(h);
  return f->claims.scopes;
}

static void test_scopes(void **state) {
  fx *f = *state;
  assert_int_equal(scopes_of(f, "scope", "\"fermata.read\"", NULL, NULL), JWT_SCOPE_READ);
  assert_int_equal(scopes_of(f, "scope", "\"openid  fermata.admin profile fermata.write \"", NULL, NULL),
                   JWT_SCOPE_ADMIN | JWT_SCOPE_WRITE);
  assert_int_equal(scopes_of(f, "scope", "\"fermata.readx fermata fermata.rea Fermata.read\"", NULL, NULL), 0);
  assert_int_equal(scopes_of(f, "scope", "\"\"", NULL, NULL), 0);
  assert_int_equal(scopes_of(f, "scope", NULL, NULL, NULL), 0);
  /* scp, as an array or a string, when scope is absent */
  assert_int_equal(scopes_of(f, "scope", NULL, "scp", "[\"fermata.write\",\"fermata.read\"]"),
                   JWT_SCOPE_WRITE | JWT_SCOPE_READ);
  assert_int_equal(scopes_of(f, "scope", NULL, "scp", "\"fermata.admin\""), JWT_SCOPE_ADMIN);
  assert_int_equal(scopes_of(f, "scope", NULL, "scp", "[\"fermata.read fermata.write\"]"), 0);
  /* scope wins over scp, as in Spring */
  assert_int_equal(scopes_of(f, "scope", "\"fermata.read\"", "scp", "[\"fermata.admin\"]"), JWT_SCOPE_READ);
  /* the 403 of the issue: a read token on a write endpoint */
  char *t = token_with(f->rsa, "RS256", "r1", "scope", "\"fermata.read\""), auth[4096];
  snprintf(auth, sizeof auth, "Bearer %s", t);
  assert_int_equal(jwt_authorize(f->v, auth, JWT_SCOPE_WRITE, &f->claims), JWT_ERR_INSUFFICIENT_SCOPE);
  assert_int_equal(jwt_authorize(f->v, auth, JWT_SCOPE_READ, &f->claims), 0);
  free(t);
  assert_string_equal(jwt_scope_name(JWT_SCOPE_READ), "fermata.read");
  assert_string_equal(jwt_scope_name(JWT_SCOPE_WRITE), "fermata.write");
  assert_string_equal(jwt_scope_name(JWT_SCOPE_ADMIN), "fermata.admin");
  assert_null(jwt_scope_name(JWT_SCOPE_READ | JWT_SCOPE_WRITE));
  assert_null(jwt_scope_name(0));
}

/* ---- configuration and answers -------------------------------------------------------- */

static void test_config(void **state) {
  fx *f = *state;
  const char *const one[] = {"fermata"}, *const empty[] = {""}, *const null[] = {NULL};
  jwt_config bad[] = {
      {.issuer = NULL, .audiences = one, .n_audiences = 1},
      {.issuer = "", .audiences = one, .n_audiences = 1},
      {.issuer = ISS, .audiences = NULL, .n_audiences = 1},
      {.issuer = ISS, .audiences = one, .n_audiences = 0},
      {.issuer = ISS, .audiences = one, .n_audiences = JWT_MAX_AUDIENCES + 1},
      {.issuer = ISS, .audiences = empty, .n_audiences = 1},
      {.issuer = ISS, .audiences = null, .n_audiences = 1},
      {.issuer = ISS, .audiences = one, .n_audiences = 1, .clock_skew_s = JWT_MAX_SKEW_S + 1},
      {.issuer = ISS, .audiences = one, .n_audiences = 1, .clock_skew_s = -5},
      {.issuer = ISS, .audiences = one, .n_audiences = 1, .max_token_bytes = JWT_MAX_TOKEN + 1},
  };
  jwt_verifier *v = (jwt_verifier *)1;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(jwt_verifier_new(&bad[i], f->cache, &v), JWT_ERR_INVALID);
    assert_null(v);
  }
  jwt_config ok = {.issuer = ISS,
                   .audiences = one,
                   .n_audiences = 1,
                   .clock_skew_s = JWT_MAX_SKEW_S,
                   .max_token_bytes = JWT_MAX_TOKEN};
  assert_int_equal(jwt_verifier_new(&ok, NULL, &v), JWT_ERR_INVALID);
  assert_int_equal(jwt_verifier_new(NULL, f->cache, &v), JWT_ERR_INVALID);
  assert_int_equal(jwt_verifier_new(&ok, f->cache, &v), 0);
  /* the real clock: a token minted for 2023 has long expired */
  char *t = good(f);
  assert_int_equal(jwt_verify(v, t, strlen(t), &f->claims), JWT_ERR_EXPIRED);
  free(t);
  jwt_verifier_free(v);
  jwt_verifier_free(NULL);
}

static void test_answers(void **state) {
  (void)state;
  char buf[256];
  assert_int_equal(jwt_www_authenticate(JWT_ERR_NO_TOKEN, JWT_SCOPE_READ, buf, sizeof buf), 6);
  assert_string_equal(buf, "Bearer");
  assert_true(jwt_www_authenticate(JWT_ERR_EXPIRED, 0, buf, sizeof buf) > 0);
  assert_string_equal(buf, "Bearer error=\"invalid_token\", error_description=\"Jwt expired\"");
  assert_true(jwt_www_authenticate(JWT_ERR_INSUFFICIENT_SCOPE, JWT_SCOPE_WRITE, buf, sizeof buf) > 0);
  assert_string_equal(buf,
                      "Bearer error=\"insufficient_scope\", error_description=\"The request requires "
                      "higher privileges than provided by the access token.\", scope=\"fermata.write\"");
  assert_true(jwt_www_authenticate(JWT_ERR_INSUFFICIENT_SCOPE, JWT_SCOPE_READ | JWT_SCOPE_ADMIN, buf, sizeof buf) > 0);
  assert_non_null(strstr(buf, "scope=\"fermata.read fermata.admin\""));
  assert_int_equal(jwt_www_authenticate(JWT_ERR_KEYS_UNAVAILABLE, 0, buf, sizeof buf), 0);
  assert_string_equal(buf, "");
  assert_int_equal(jwt_www_authenticate(0, 0, buf, sizeof buf), 0);
  assert_int_equal(jwt_www_authenticate(JWT_ERR_NOMEM, 0, buf, sizeof buf), 0);
  assert_int_equal(jwt_www_authenticate(JWT_ERR_EXPIRED, 0, buf, 20), JWT_ERR_INVALID);
  assert_string_equal(buf, "");
  assert_int_equal(jwt_www_authenticate(JWT_ERR_EXPIRED, 0, NULL, 0), JWT_ERR_INVALID);
  /* every code: a status, a description fit for a quoted-string, a challenge that fits */
  for (int e = JWT_OK; e >= JWT_ERR_KEYS_UNAVAILABLE; e--) {
    int st = jwt_http_status(e);
    const char *d = jwt_error_description(e);
    assert_null(strpbrk(d, "\"\\\r\n"));
    assert_true(jwt_www_authenticate(e, JWT_SCOPE_READ | JWT_SCOPE_WRITE | JWT_SCOPE_ADMIN, buf, sizeof buf) >= 0);
    if (e >= JWT_ERR_CLAIMS && e <= JWT_ERR_NO_TOKEN) assert_int_equal(st, 401);
    if (e < JWT_ERR_NO_TOKEN && st == 401) assert_non_null(strstr(buf, "error=\"invalid_token\""));
  }
  assert_int_equal(jwt_http_status(0), 200);
  assert_int_equal(jwt_http_status(JWT_ERR_INSUFFICIENT_SCOPE), 403);
  assert_int_equal(jwt_http_status(JWT_ERR_INVALID), 500);
  assert_int_equal(jwt_http_status(JWT_ERR_NOMEM), 500);
  assert_int_equal(jwt_http_status(-99), 500);
  assert_string_equal(jwt_error_description(-99), "Internal server error");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_right_token),
      T(test_authorize),
      T(test_malformed),
      T(test_oversize),
      T(test_alg_none),
      T(test_other_algs),
      T(test_hs256_key_confusion),
      T(test_forged_signature),
      T(test_es256_der_refused),
      T(test_key_type_binding),
      T(test_expiry),
      T(test_not_before),
      cmocka_unit_test_setup_teardown(test_no_skew, setup_no_skew, teardown),
      T(test_issuer),
      T(test_audience),
      T(test_claim_types),
      T(test_scopes),
      T(test_config),
      T(test_answers),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
