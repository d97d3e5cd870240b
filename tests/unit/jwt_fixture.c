/* The fixture of the lib/jwt unit tests; see jwt_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt_fixture.h"

static int fetch(void *ctx, jwks_fetched *out) {
  fx *f = ctx;
  pthread_mutex_lock(&f->mu);
  f->fetches++;
  int rc = f->fetch_rc;
  if (rc == 0) {
    out->body = strdup(f->doc);
    out->len = strlen(f->doc);
  }
  pthread_mutex_unlock(&f->mu);
  return rc;
}

static int64_t mono(void *ctx) { return atomic_load(&((fx *)ctx)->mono); }
static int64_t wall(void *ctx) { return atomic_load(&((fx *)ctx)->wall); }

/* Serves a JWK Set of (key, kid) pairs. */
void serve(fx *f, size_t n, ...) {
  va_list ap;
  va_start(ap, n);
  json_t *keys = json_array();
  for (size_t i = 0; i < n; i++) {
    const jwtmint_key *k = va_arg(ap, const jwtmint_key *);
    const char *kid = va_arg(ap, const char *);
    json_array_append_new(keys, jwtmint_jwk(k, kid, false));
  }
  va_end(ap);
  json_t *doc = json_pack("{s:o}", "keys", keys);
  pthread_mutex_lock(&f->mu);
  free(f->doc);
  f->doc = json_dumps(doc, JSON_COMPACT);
  pthread_mutex_unlock(&f->mu);
  json_decref(doc);
}

int group_setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  f->rsa = jwtmint_keygen("RS256", 2048);
  f->rsa2 = jwtmint_keygen("RS256", 2048);
  f->evil = jwtmint_keygen("RS256", 2048);
  f->ec = jwtmint_keygen("ES256", 0);
  pthread_mutex_init(&f->mu, NULL);
  *state = f;
  return f->rsa && f->rsa2 && f->evil && f->ec ? 0 : -1;
}

int group_teardown(void **state) {
  fx *f = *state;
  jwtmint_key_free(f->rsa);
  jwtmint_key_free(f->rsa2);
  jwtmint_key_free(f->evil);
  jwtmint_key_free(f->ec);
  pthread_mutex_destroy(&f->mu);
  free(f->doc);
  free(f);
  return 0;
}

static const char *const audiences[] = {"fermata", "fermata-gateway"};

static int setup_with(fx *f, long skew) {
  serve(f, 2, f->rsa, "r1", f->ec, "e1");
  f->fetches = 0;
  f->fetch_rc = 0;
  atomic_store(&f->mono, 100);
  atomic_store(&f->wall, NOW);
  jwks_cache_config kc = {.fetch = fetch, .fetch_ctx = f, .clock = mono, .clock_ctx = f};
  jwt_config c = {
      .issuer = ISS, .audiences = audiences, .n_audiences = 2, .clock_skew_s = skew, .clock = wall, .clock_ctx = f};
  if (jwks_cache_new(&kc, &f->cache) != 0) return -1;
  return jwt_verifier_new(&c, f->cache, &f->v);
}

int setup(void **state) { return setup_with(*state, 0); }
int setup_no_skew(void **state) { return setup_with(*state, JWT_NO_SKEW); }

int teardown(void **state) {
  fx *f = *state;
  jwt_verifier_free(f->v);
  jwks_cache_free(f->cache);
  f->v = NULL;
  f->cache = NULL;
  return 0;
}

/* The claims of a good token, with `field` replaced by the JSON `value` (NULL: removed). */
char *claims_with(const char *field, const char *value) {
  json_t *c = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "iss", ISS, "aud", "fermata", "sub", "alice", "scope",
                        "fermata.read fermata.write", "exp", (json_int_t)(NOW + 300), "iat", (json_int_t)NOW);
  if (field != NULL && value == NULL) {
    json_object_del(c, field);
  } else if (field != NULL) {
    json_error_t e;
    json_t *v = json_loads(value, JSON_DECODE_ANY, &e);
    assert_non_null(v);
    json_object_set_new(c, field, v);
  }
  char *s = json_dumps(c, JSON_COMPACT);
  json_decref(c);
  return s;
}

char *header(const char *alg, const char *kid) {
  char buf[512];
  if (kid)
    snprintf(buf, sizeof buf, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
  else
    snprintf(buf, sizeof buf, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
  return strdup(buf);
}

/* A token signed by key under alg/kid, with one claim changed. */
char *token_with(const jwtmint_key *key, const char *alg, const char *kid, const char *field, const char *value) {
  char *h = header(alg, kid), *c = claims_with(field, value);
  char *t = jwtmint_token(key, h, c, false);
  assert_non_null(t);
  free(h);
  free(c);
  return t;
}

char *good(fx *f) { return token_with(f->rsa, "RS256", "r1", NULL, NULL); }

/* Verifies the token, frees it and returns the code. */
int check(fx *f, char *token) {
  int rc = jwt_verify(f->v, token, strlen(token), &f->claims);
  free(token);
  return rc;
}

int check_claim(fx *f, const char *field, const char *value) {
  return check(f, token_with(f->rsa, "RS256", "r1", field, value));
}
