/* Unit tests of lib/jwks: JWK Set parsing (usable keys, every reason to skip one, every
 * reason to refuse a document), signature checks (RS256, ES256 raw and DER, kid and key
 * type binding), and the cache (lifetime, max-age bounds, rate limit, failures keeping the
 * last good set, rotation, single flight) with a fake fetcher and a fake clock. Keys are
 * generated at test time with OpenSSL (tests/tools/jwtmint). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "b64url/b64url.h"
#include "jwks/jwks.h"
#include "jwtmint.h"

typedef struct keys {
  jwtmint_key *rsa, *rsa2, *ec;
} keys;

static int setup_keys(void **state) {
  keys *k = calloc(1, sizeof *k);
  k->rsa = jwtmint_keygen("RS256", 2048);
  k->rsa2 = jwtmint_keygen("RS256", 2048);
  k->ec = jwtmint_keygen("ES256", 0);
  *state = k;
  return k->rsa && k->rsa2 && k->ec ? 0 : -1;
}

static int teardown_keys(void **state) {
  keys *k = *state;
  jwtmint_key_free(k->rsa);
  jwtmint_key_free(k->rsa2);
  jwtmint_key_free(k->ec);
  free(k);
  return 0;
}

/* {"keys":[...]} from JWK objects (references stolen), as a malloc'd string. */
static char *doc_of(size_t n, json_t **jwks) {
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(arr, jwks[i]);
  json_t *doc = json_pack("{s:o}", "keys", arr);
  char *s = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  return s;
}

static jwks_set *parse_ok(const char *doc) {
  jwks_set *s = NULL;
  assert_int_equal(jwks_set_parse(doc, strlen(doc), &s), 0);
  assert_non_null(s);
  return s;
}

static void test_parse_usable_keys(void **state) {
  keys *k = *state;
  json_t *j[] = {jwtmint_jwk(k->rsa, "r1", true), jwtmint_jwk(k->ec, "e1", false), jwtmint_jwk(k->rsa2, NULL, false)};
  char *doc = doc_of(3, j);
  jwks_set *s = parse_ok(doc);
  assert_int_equal(jwks_set_count(s), 3);
  assert_int_equal(jwks_set_skipped(s), 0);
  assert_true(jwks_set_has_key(s, "r1", JWKS_RS256));
  assert_false(jwks_set_has_key(s, "r1", JWKS_ES256)); /* an RSA key never serves ES256 */
  assert_true(jwks_set_has_key(s, "e1", JWKS_ES256));
  assert_false(jwks_set_has_key(s, "e1", JWKS_RS256));
  assert_false(jwks_set_has_key(s, "nope", JWKS_RS256));
  assert_true(jwks_set_has_key(s, NULL, JWKS_RS256));
  assert_true(jwks_set_has_key(s, NULL, JWKS_ES256));
  assert_false(jwks_set_has_key(NULL, NULL, JWKS_ES256));
  assert_ptr_equal(jwks_set_ref(s), s);
  jwks_set_free(s); /* the extra reference */
  assert_int_equal(jwks_set_count(s), 3);
  jwks_set_free(s);
  jwks_set_free(NULL);
  assert_null(jwks_set_ref(NULL));
  free(doc);

  jwks_set *empty = parse_ok("{\"keys\":[]}");
  assert_int_equal(jwks_set_count(empty), 0);
  jwks_set_free(empty);
}

/* One JWK of rsa (or ec) with `field` set to the JSON `value` (NULL: removed). */
static json_t *jwk_with(const jwtmint_key *key, const char *field, const char *value) {
  json_t *j = jwtmint_jwk(key, "k", false);
  if (value == NULL) {
    json_object_del(j, field);
  } else {
    json_error_t e;
    json_t *v = json_loads(value, JSON_DECODE_ANY, &e);
    assert_non_null(v);
    json_object_set_new(j, field, v);
  }
  return j;
}

static void expect_skipped(json_t *jwk) {
  json_t *arr[] = {jwk};
  char *doc = doc_of(1, arr);
  jwks_set *s = parse_ok(doc);
  assert_int_equal(jwks_set_count(s), 0);
  assert_int_equal(jwks_set_skipped(s), 1);
  jwks_set_free(s);
  free(doc);
}

static void test_parse_skips_unusable(void **state) {
  keys *k = *state;
  expect_skipped(json_pack("{s:s,s:s}", "kty", "oct", "k", "c2VjcmV0"));
  expect_skipped(json_pack("{s:s,s:s,s:s}", "kty", "OKP", "crv", "Ed25519", "x", "AAAA"));
  expect_skipped(json_pack("{s:s}", "use", "sig")); /* no kty */
  expect_skipped(jwk_with(k->rsa, "kty", "5"));
  expect_skipped(jwk_with(k->rsa, "use", "\"enc\""));
  expect_skipped(jwk_with(k->rsa, "use", "1"));
  expect_skipped(jwk_with(k->rsa, "key_ops", "[\"encrypt\"]"));
  expect_skipped(jwk_with(k->rsa, "key_ops", "\"verify\""));
  expect_skipped(jwk_with(k->rsa, "alg", "\"RS384\""));
  expect_skipped(jwk_with(k->rsa, "alg", "\"ES256\"")); /* alg does not fit kty */
  expect_skipped(jwk_with(k->ec, "alg", "\"RS256\""));
  expect_skipped(jwk_with(k->rsa, "alg", "null"));
  expect_skipped(jwk_with(k->rsa, "kid", "42"));
  char longkid[JWKS_MAX_KID + 8];
  snprintf(longkid, sizeof longkid, "\"%0*d\"", JWKS_MAX_KID + 1, 0);
  expect_skipped(jwk_with(k->rsa, "kid", longkid));
  expect_skipped(jwk_with(k->rsa, "n", NULL));
  expect_skipped(jwk_with(k->rsa, "e", NULL));
  expect_skipped(jwk_with(k->rsa, "n", "\"not+base64url\""));
  expect_skipped(jwk_with(k->rsa, "n", "\"\""));
  expect_skipped(jwk_with(k->rsa, "e", "\"AAAAAAAAAAAAAAA\"")); /* 11 bytes */
  expect_skipped(jwk_with(k->rsa, "e", "\"Aw\""));              /* e = 3 */
  expect_skipped(jwk_with(k->rsa, "e", "\"AQAA\""));            /* e = 65536: even */
  expect_skipped(jwk_with(k->rsa, "e", "\"_w\""));              /* e = 255 */
  expect_skipped(jwk_with(k->ec, "crv", "\"P-384\""));
  expect_skipped(jwk_with(k->ec, "crv", NULL));
  expect_skipped(jwk_with(k->ec, "x", "\"AAAA\"")); /* short coordinate */
  expect_skipped(jwk_with(k->ec, "y", NULL));
  /* a point that is not on the curve: y replaced by x */
  json_t *bad = jwtmint_jwk(k->ec, "k", false);
  json_object_set(bad, "y", json_object_get(bad, "x"));
  expect_skipped(bad);
  /* an even modulus: refused by OpenSSL's public-key check */
  json_t *even = jwtmint_jwk(k->rsa, "k", false);
  const char *n64 = json_string_value(json_object_get(even, "n"));
  unsigned char n[512];
  size_t nlen;
  assert_int_equal(b64url_decode(n64, strlen(n64), n, sizeof n, &nlen), 0);
  n[nlen - 1] &= 0xfe;
  char *n2 = jwtmint_b64(n, nlen);
  json_object_set_new(even, "n", json_string(n2));
  free(n2);
  expect_skipped(even);
  /* a weak RSA key */
  jwtmint_key *weak = jwtmint_keygen("RS256", 1024);
  assert_non_null(weak);
  expect_skipped(jwtmint_jwk(weak, "w", false));
  jwtmint_key_free(weak);
  /* a usable key among skipped ones is kept */
  json_t *mixed[] = {json_pack("{s:s}", "kty", "oct"), jwtmint_jwk(k->ec, "e", true)};
  char *doc = doc_of(2, mixed);
  jwks_set *s = parse_ok(doc);
  assert_int_equal(jwks_set_count(s), 1);
  assert_int_equal(jwks_set_skipped(s), 1);
  jwks_set_free(s);
  free(doc);
}

static void expect_refused(const char *doc, int want) {
  jwks_set *s = (jwks_set *)1;
  assert_int_equal(jwks_set_parse(doc, strlen(doc), &s), want);
  assert_null(s);
}

static void test_parse_refuses_documents(void **state) {
  (void)state;
  expect_refused("", JWKS_ERR_PARSE);
  expect_refused("not json", JWKS_ERR_PARSE);
  expect_refused("[]", JWKS_ERR_PARSE);
  expect_refused("{}", JWKS_ERR_PARSE);
  expect_refused("{\"keys\":{}}", JWKS_ERR_PARSE);
  expect_refused("{\"keys\":[1]}", JWKS_ERR_PARSE);
  expect_refused("{\"keys\":[],\"keys\":[]}", JWKS_ERR_PARSE); /* duplicate names */
  char many[JWKS_MAX_ENTRIES * 3 + 32];
  size_t n = (size_t)snprintf(many, sizeof many, "{\"keys\":[{}");
  for (int i = 1; i <= JWKS_MAX_ENTRIES; i++) n += (size_t)snprintf(many + n, sizeof many - n, ",{}");
  snprintf(many + n, sizeof many - n, "]}");
  expect_refused(many, JWKS_ERR_TOO_LARGE);
  char *big = malloc(JWKS_MAX_DOC_BYTES + 2);
  memset(big, ' ', JWKS_MAX_DOC_BYTES + 1);
  big[JWKS_MAX_DOC_BYTES + 1] = '\0';
  expect_refused(big, JWKS_ERR_TOO_LARGE);
  free(big);
  jwks_set *s;
  assert_int_equal(jwks_set_parse(NULL, 0, &s), JWKS_ERR_INVALID);
}

static void test_verify(void **state) {
  keys *k = *state;
  json_t *j[] = {jwtmint_jwk(k->rsa, "r1", false), jwtmint_jwk(k->ec, "e1", true),
                 jwtmint_jwk(k->rsa2, "r1", false)}; /* two keys share kid r1 */
  char *doc = doc_of(3, j);
  jwks_set *s = parse_ok(doc);
  free(doc);
  const char *data = "header.payload";
  size_t len = strlen(data);
  unsigned char *sig = NULL, *sig2 = NULL, *esig = NULL, *der = NULL;
  size_t sl, sl2, el, dl;
  assert_int_equal(jwtmint_sign(k->rsa, data, len, false, &sig, &sl), 0);
  assert_int_equal(jwtmint_sign(k->rsa2, data, len, false, &sig2, &sl2), 0);
  assert_int_equal(jwtmint_sign(k->ec, data, len, false, &esig, &el), 0);
  assert_int_equal(jwtmint_sign(k->ec, data, len, true, &der, &dl), 0);
  assert_int_equal(el, 64);
  assert_int_not_equal(dl, 64);

  assert_int_equal(jwks_verify(s, "r1", JWKS_RS256, data, len, sig, sl), 0);
  assert_int_equal(jwks_verify(s, "r1", JWKS_RS256, data, len, sig2, sl2), 0); /* second r1 */
  assert_int_equal(jwks_verify(s, NULL, JWKS_RS256, data, len, sig, sl), 0);
  assert_int_equal(jwks_verify(s, "e1", JWKS_ES256, data, len, esig, el), 0);
  assert_int_equal(jwks_verify(s, NULL, JWKS_ES256, data, len, esig, el), 0);
  /* the raw signature of JWS, never DER */
  assert_int_equal(jwks_verify(s, "e1", JWKS_ES256, data, len, der, dl), JWKS_ERR_SIGNATURE);
  /* other data, a flipped byte, a short signature */
  assert_int_equal(jwks_verify(s, "r1", JWKS_RS256, "header.payloaX", len, sig, sl), JWKS_ERR_SIGNATURE);
  sig[10] ^= 1;
  assert_int_equal(jwks_verify(s, "r1", JWKS_RS256, data, len, sig, sl), JWKS_ERR_SIGNATURE);
  sig[10] ^= 1;
  assert_int_equal(jwks_verify(s, "r1", JWKS_RS256, data, len, sig, sl - 1), JWKS_ERR_SIGNATURE);
  assert_int_equal(jwks_verify(s, "r1", JWKS_RS256, data, len, NULL, 0), JWKS_ERR_SIGNATURE);
  esig[63] ^= 0x80;
  assert_int_equal(jwks_verify(s, "e1", JWKS_ES256, data, len, esig, el), JWKS_ERR_SIGNATURE);
  esig[63] ^= 0x80;
  unsigned char zero[64] = {0};
  assert_int_equal(jwks_verify(s, "e1", JWKS_ES256, data, len, zero, 64), JWKS_ERR_SIGNATURE);
  /* kid and key type bind: no key fits */
  assert_int_equal(jwks_verify(s, "r1", JWKS_ES256, data, len, esig, el), JWKS_ERR_NO_KEY);
  assert_int_equal(jwks_verify(s, "e1", JWKS_RS256, data, len, sig, sl), JWKS_ERR_NO_KEY);
  assert_int_equal(jwks_verify(s, "r2", JWKS_RS256, data, len, sig, sl), JWKS_ERR_NO_KEY);
  /* arguments */
  assert_int_equal(jwks_verify(NULL, "r1", JWKS_RS256, data, len, sig, sl), JWKS_ERR_INVALID);
  assert_int_equal(jwks_verify(s, "r1", (jwks_alg)7, data, len, sig, sl), JWKS_ERR_INVALID);
  assert_int_equal(jwks_verify(s, "r1", JWKS_RS256, NULL, 0, sig, sl), JWKS_ERR_INVALID);
  assert_int_equal(jwks_verify(s, "r1", JWKS_RS256, data, len, NULL, 5), JWKS_ERR_INVALID);
  free(sig);
  free(sig2);
  free(esig);
  free(der);
  jwks_set_free(s);
}

static void test_strerror(void **state) {
  (void)state;
  for (int c = 0; c >= JWKS_ERR_SIGNATURE; c--) assert_string_not_equal(jwks_strerror(c), "unknown error");
  assert_string_equal(jwks_strerror(-99), "unknown error");
}

/* ---- cache ---------------------------------------------------------------------------- */

typedef struct fake {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *doc; /* served */
  long max_age;
  int rc; /* returned instead when not 0 */
  bool null_body;
  int calls;
  bool block;  /* a fetch waits until block is cleared */
  int blocked; /* fetches waiting */
  atomic_llong now;
} fake;

static int fake_fetch(void *ctx, jwks_fetched *out) {
  fake *f = ctx;
  pthread_mutex_lock(&f->mu);
  f->calls++;
  f->blocked++;
  pthread_cond_broadcast(&f->cv);
  while (f->block) pthread_cond_wait(&f->cv, &f->mu);
  f->blocked--;
  int rc = f->rc;
  if (rc == 0 && !f->null_body) {
    out->body = strdup(f->doc);
    out->len = strlen(f->doc);
    out->max_age_s = f->max_age;
  } else if (rc != 0) {
    out->body = strdup("ignored"); /* a failing fetcher's leftovers are freed by the cache */
  }
  pthread_mutex_unlock(&f->mu);
  return rc;
}

static int64_t fake_clock(void *ctx) { return atomic_load(&((fake *)ctx)->now); }

static void fake_serve(fake *f, char *doc) {
  pthread_mutex_lock(&f->mu);
  free(f->doc);
  f->doc = doc;
  pthread_mutex_unlock(&f->mu);
}

static int fake_calls(fake *f) {
  pthread_mutex_lock(&f->mu);
  int n = f->calls;
  pthread_mutex_unlock(&f->mu);
  return n;
}

static void fake_init(fake *f, char *doc) {
  memset(f, 0, sizeof *f);
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cv, NULL);
  f->doc = doc;
  f->max_age = -1;
  atomic_init(&f->now, 1000);
}

static void fake_destroy(fake *f) {
  free(f->doc);
  pthread_cond_destroy(&f->cv);
  pthread_mutex_destroy(&f->mu);
}

static jwks_cache *cache_for(fake *f) {
  jwks_cache_config cfg = {.fetch = fake_fetch, .fetch_ctx = f, .clock = fake_clock, .clock_ctx = f};
  jwks_cache *c = NULL;
  assert_int_equal(jwks_cache_new(&cfg, &c), 0);
  return c;
}

static char *doc_with(const jwtmint_key *k, const char *kid) {
  json_t *j[] = {jwtmint_jwk(k, kid, false)};
  return doc_of(1, j);
}

static void test_cache_config(void **state) {
  (void)state;
  jwks_cache *c = (jwks_cache *)1;
  assert_int_equal(jwks_cache_new(NULL, &c), JWKS_ERR_INVALID);
  assert_null(c);
  jwks_cache_config bad[] = {
      {.fetch = NULL},
      {.fetch = fake_fetch, .ttl_s = -1},
      {.fetch = fake_fetch, .min_ttl_s = -1},
      {.fetch = fake_fetch, .max_ttl_s = -1},
      {.fetch = fake_fetch, .min_refresh_interval_s = -1},
      {.fetch = fake_fetch, .min_ttl_s = 100, .max_ttl_s = 50, .ttl_s = 60},
      {.fetch = fake_fetch, .ttl_s = 10},                         /* under min_ttl's 30 */
      {.fetch = fake_fetch, .ttl_s = 90000, .max_ttl_s = 100000}, /* over a day */
      {.fetch = fake_fetch, .max_ttl_s = 31 * 86400},
      {.fetch = fake_fetch, .min_refresh_interval_s = 86401},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(jwks_cache_new(&bad[i], &c), JWKS_ERR_INVALID);
    assert_null(c);
  }
  /* defaults, with the real monotonic clock */
  fake f;
  fake_init(&f, strdup("{\"keys\":[]}"));
  jwks_cache_config ok = {.fetch = fake_fetch, .fetch_ctx = &f};
  assert_int_equal(jwks_cache_new(&ok, &c), 0);
  jwks_set *s = NULL;
  assert_int_equal(jwks_cache_get(c, &s), 0);
  jwks_set_free(s);
  jwks_cache_info info;
  jwks_cache_get_info(c, &info);
  assert_true(info.expires_in_s >= 299 && info.expires_in_s <= 300);
  jwks_cache_free(c);
  fake_destroy(&f);
  jwks_cache_free(NULL);
}

static void test_cache_lifetime(void **state) {
  keys *k = *state;
  fake f;
  fake_init(&f, doc_with(k->rsa, "r1"));
  jwks_cache *c = cache_for(&f);
  jwks_cache_info info;
  jwks_cache_get_info(c, &info);
  assert_int_equal(info.keys, 0);
  assert_int_equal(info.expires_in_s, 0);
  assert_int_equal(fake_calls(&f), 0); /* nothing fetched before the first use */

  jwks_set *s1 = NULL, *s2 = NULL;
  assert_int_equal(jwks_cache_get(c, &s1), 0);
  assert_int_equal(fake_calls(&f), 1);
  assert_true(jwks_set_has_key(s1, "r1", JWKS_RS256));
  jwks_cache_get_info(c, &info);
  assert_int_equal(info.generation, 1);
  assert_int_equal(info.expires_in_s, 300); /* the default lifetime without max-age */
  atomic_store(&f.now, 1299);
  assert_int_equal(jwks_cache_get(c, &s2), 0);
  assert_ptr_equal(s1, s2);
  assert_int_equal(fake_calls(&f), 1);
  jwks_set_free(s2);

  /* expired: fetched again; the new answer's max-age 5 is raised to min_ttl 30 */
  f.max_age = 5;
  atomic_store(&f.now, 1300);
  assert_int_equal(jwks_cache_get(c, &s2), 0);
  assert_int_equal(fake_calls(&f), 2);
  assert_ptr_not_equal(s1, s2);
  jwks_set_free(s2);
  jwks_cache_get_info(c, &info);
  assert_int_equal(info.expires_in_s, 30);
  /* s1, replaced, is still usable by its holder */
  assert_true(jwks_set_has_key(s1, "r1", JWKS_RS256));
  jwks_set_free(s1);

  /* a max-age over max_ttl is lowered to it */
  f.max_age = 10L * 86400;
  atomic_store(&f.now, 1330);
  assert_int_equal(jwks_cache_get(c, &s2), 0);
  jwks_set_free(s2);
  jwks_cache_get_info(c, &info);
  assert_int_equal(info.expires_in_s, 86400);
  /* within bounds it is taken as is */
  f.max_age = 600;
  atomic_store(&f.now, 1330 + 86400);
  assert_int_equal(jwks_cache_get(c, &s2), 0);
  jwks_set_free(s2);
  jwks_cache_get_info(c, &info);
  assert_int_equal(info.expires_in_s, 600);
  assert_int_equal(info.fetches, 4);
  assert_int_equal(info.failures, 0);
  jwks_cache_free(c);
  fake_destroy(&f);
}

static void test_cache_failures(void **state) {
  keys *k = *state;
  fake f;
  fake_init(&f, doc_with(k->rsa, "r1"));
  jwks_cache *c = cache_for(&f);
  jwks_set *s = NULL;
  jwks_cache_info info;

  /* no set yet and the fetch fails: no keys, and the next attempt waits for the interval */
  f.rc = JWKS_ERR_FETCH;
  assert_int_equal(jwks_cache_get(c, &s), JWKS_ERR_NO_KEYS);
  assert_null(s);
  atomic_store(&f.now, 1029);
  assert_int_equal(jwks_cache_get(c, &s), JWKS_ERR_NO_KEYS);
  assert_int_equal(fake_calls(&f), 1);
  assert_int_equal(jwks_cache_refresh(c, NULL, &s), JWKS_ERR_TOO_SOON);
  jwks_cache_get_info(c, &info);
  assert_int_equal(info.last_error, JWKS_ERR_FETCH);
  assert_int_equal(info.failures, 1);
  /* a positive code, or success without a body, count as a failed fetch */
  f.rc = 7;
  atomic_store(&f.now, 1030);
  assert_int_equal(jwks_cache_refresh(c, NULL, &s), JWKS_ERR_FETCH);
  f.rc = 0;
  f.null_body = true;
  atomic_store(&f.now, 1060);
  assert_int_equal(jwks_cache_refresh(c, NULL, &s), JWKS_ERR_FETCH);
  f.null_body = false;
  atomic_store(&f.now, 1090);
  assert_int_equal(jwks_cache_get(c, &s), 0);
  jwks_set *good = s;

  /* expired, and the issuer is down or answers garbage: the last good set stays */
  f.rc = JWKS_ERR_FETCH;
  atomic_store(&f.now, 1090 + 300);
  assert_int_equal(jwks_cache_get(c, &s), 0);
  assert_ptr_equal(s, good);
  jwks_set_free(s);
  f.rc = 0;
  fake_serve(&f, strdup("{\"keys\":"));
  atomic_store(&f.now, 1090 + 330);
  assert_int_equal(jwks_cache_get(c, &s), 0);
  assert_ptr_equal(s, good);
  jwks_set_free(s);
  jwks_cache_get_info(c, &info);
  assert_int_equal(info.last_error, JWKS_ERR_PARSE);
  assert_int_equal(info.keys, 1);
  assert_true(info.expires_in_s <= 0);
  /* and an explicit refresh reports the failure */
  atomic_store(&f.now, 1090 + 360);
  assert_int_equal(jwks_cache_refresh(c, good, &s), JWKS_ERR_PARSE);
  assert_null(s);
  jwks_set_free(good);
  jwks_cache_free(c);
  fake_destroy(&f);
}

static void test_cache_rotation(void **state) {
  keys *k = *state;
  fake f;
  fake_init(&f, doc_with(k->rsa, "r1"));
  jwks_cache *c = cache_for(&f);
  jwks_set *s1 = NULL, *s2 = NULL, *s3 = NULL;
  assert_int_equal(jwks_cache_get(c, &s1), 0);
  assert_false(jwks_set_has_key(s1, "r2", JWKS_RS256));

  /* the issuer adds r2; a token with kid r2 asks for a refresh: but not within 30 s */
  json_t *both[] = {jwtmint_jwk(k->rsa, "r1", false), jwtmint_jwk(k->rsa2, "r2", false)};
  fake_serve(&f, doc_of(2, both));
  atomic_store(&f.now, 1029);
  assert_int_equal(jwks_cache_refresh(c, s1, &s2), JWKS_ERR_TOO_SOON);
  assert_null(s2);
  assert_int_equal(fake_calls(&f), 1);
  atomic_store(&f.now, 1030);
  assert_int_equal(jwks_cache_refresh(c, s1, &s2), 0);
  assert_int_equal(fake_calls(&f), 2);
  assert_true(jwks_set_has_key(s2, "r2", JWKS_RS256));
  /* a caller that still looked at s1 gets s2 without another fetch */
  assert_int_equal(jwks_cache_refresh(c, s1, &s3), 0);
  assert_ptr_equal(s3, s2);
  assert_int_equal(fake_calls(&f), 2);
  jwks_set_free(s3);

  /* the issuer drops r1: once the set expires, r1 is gone */
  fake_serve(&f, doc_with(k->rsa2, "r2"));
  atomic_store(&f.now, 1030 + 300);
  assert_int_equal(jwks_cache_get(c, &s3), 0);
  assert_false(jwks_set_has_key(s3, "r1", JWKS_RS256));
  assert_true(jwks_set_has_key(s3, "r2", JWKS_RS256));
  jwks_set_free(s1);
  jwks_set_free(s2);
  jwks_set_free(s3);
  jwks_cache_get_info(c, &(jwks_cache_info){0});
  jwks_cache_free(c);
  fake_destroy(&f);
}

typedef struct getter {
  jwks_cache *c;
  bool refresh;
  const jwks_set *seen;
  int rc;
  jwks_set *got;
} getter;

static void *run_get(void *arg) {
  getter *g = arg;
  g->rc = g->refresh ? jwks_cache_refresh(g->c, g->seen, &g->got) : jwks_cache_get(g->c, &g->got);
  return NULL;
}

static void wait_blocked(fake *f, int n) {
  pthread_mutex_lock(&f->mu);
  while (f->blocked < n) pthread_cond_wait(&f->cv, &f->mu);
  pthread_mutex_unlock(&f->mu);
}

static void release(fake *f) {
  pthread_mutex_lock(&f->mu);
  f->block = false;
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

/* Callers without a set wait for the one fetch in progress; a caller with a set (even
 * an expired one) does not wait for the network. */
static void test_cache_single_flight(void **state) {
  keys *k = *state;
  fake f;
  fake_init(&f, doc_with(k->rsa, "r1"));
  f.block = true;
  jwks_cache *c = cache_for(&f);
  getter g[3] = {{.c = c}, {.c = c}, {.c = c, .refresh = true}};
  pthread_t t[3];
  assert_int_equal(pthread_create(&t[0], NULL, run_get, &g[0]), 0);
  wait_blocked(&f, 1);
  assert_int_equal(pthread_create(&t[1], NULL, run_get, &g[1]), 0);
  assert_int_equal(pthread_create(&t[2], NULL, run_get, &g[2]), 0);
  usleep(50 * 1000); /* let them reach the wait */
  release(&f);
  for (int i = 0; i < 3; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(g[i].rc, 0);
    assert_ptr_equal(g[i].got, g[0].got);
    jwks_set_free(g[i].got);
  }
  assert_int_equal(fake_calls(&f), 1);

  /* expired: one caller fetches (blocked), another is served the expired set at once */
  f.block = true;
  atomic_store(&f.now, 2000);
  getter slow = {.c = c};
  assert_int_equal(pthread_create(&t[0], NULL, run_get, &slow), 0);
  wait_blocked(&f, 1);
  jwks_set *old = NULL;
  assert_int_equal(jwks_cache_get(c, &old), 0);
  assert_non_null(old);
  release(&f);
  pthread_join(t[0], NULL);
  assert_int_equal(slow.rc, 0);
  assert_ptr_not_equal(slow.got, old);
  jwks_set_free(slow.got);
  jwks_set_free(old);
  assert_int_equal(fake_calls(&f), 2);

  /* a refresh that waits for another's failing fetch reports that failure */
  f.block = true;
  f.rc = JWKS_ERR_FETCH;
  atomic_store(&f.now, 2100);
  jwks_set *cur = NULL;
  assert_int_equal(jwks_cache_get(c, &cur), 0); /* not expired: no fetch */
  getter first = {.c = c, .refresh = true, .seen = cur}, second = first;
  assert_int_equal(pthread_create(&t[0], NULL, run_get, &first), 0);
  wait_blocked(&f, 1);
  assert_int_equal(pthread_create(&t[1], NULL, run_get, &second), 0);
  usleep(50 * 1000);
  release(&f);
  pthread_join(t[0], NULL);
  pthread_join(t[1], NULL);
  assert_int_equal(first.rc, JWKS_ERR_FETCH);
  assert_int_equal(second.rc, JWKS_ERR_FETCH);
  assert_null(first.got);
  assert_null(second.got);
  assert_int_equal(fake_calls(&f), 3);
  jwks_set_free(cur);
  jwks_cache_free(c);
  fake_destroy(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_usable_keys),
      cmocka_unit_test(test_parse_skips_unusable),
      cmocka_unit_test(test_parse_refuses_documents),
      cmocka_unit_test(test_verify),
      cmocka_unit_test(test_strerror),
      cmocka_unit_test(test_cache_config),
      cmocka_unit_test(test_cache_lifetime),
      cmocka_unit_test(test_cache_failures),
      cmocka_unit_test(test_cache_rotation),
      cmocka_unit_test(test_cache_single_flight),
  };
  return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
