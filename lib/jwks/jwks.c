/* jwks: JWK Set parsing, signature checks and the refreshing cache.
 *
 * Keys. Each usable JWK becomes an EVP_PKEY built with EVP_PKEY_fromdata() from its public
 * parameters (no PEM round trip) and checked with EVP_PKEY_public_check() (for EC: the point is
 * on the curve); RSA moduli must have 2048 to 8192 bits and e must be odd and at least
 * 65537, which we check ourselves. OpenSSL keys are safe to share between threads once built; each check makes its
 * own EVP_MD_CTX. A set is one allocation: a header with an atomic reference count and the
 * array of keys.
 *
 * Cache. One mutex guards the current set pointer and the refresh bookkeeping and is held
 * for O(1) work only; a condition variable lets callers wait for the fetch in progress. A
 * replaced set is released after the lock is dropped (freeing keys is the slow part).
 */
#include "jwks.h"

#include "b64url/b64url.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *jwks_strerror(int code) {
  switch (code) {
  case JWKS_OK: return "ok";
  case JWKS_ERR_INVALID: return "invalid argument";
  case JWKS_ERR_NOMEM: return "out of memory";
  case JWKS_ERR_PARSE: return "not a JWK Set";
  case JWKS_ERR_TOO_LARGE: return "JWK Set too large";
  case JWKS_ERR_FETCH: return "JWK Set fetch failed";
  case JWKS_ERR_NO_KEYS: return "no JWK Set available";
  case JWKS_ERR_TOO_SOON: return "JWK Set refreshed too recently";
  case JWKS_ERR_NO_KEY: return "no matching key";
  case JWKS_ERR_SIGNATURE: return "signature does not verify";
  default: return "unknown error";
  }
}

/* ---- keys ----------------------------------------------------------------------------- */

enum { KTY_RSA = 1, KTY_EC = 2 };
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192
#define RSA_MAX_E_BYTES 8
#define P256_COORD 32

typedef struct jwks_key {
  char kid[JWKS_MAX_KID + 1];
  bool has_kid;
  int kty;
  int alg; /* 0: any algorithm that fits kty */
  EVP_PKEY *pkey;
} jwks_key;

struct jwks_set {
  atomic_size_t refs;
  size_t count, skipped;
  jwks_key keys[];
};

/* Decodes the base64url string member `name` of jwk, of at most max bytes. */
static int member_bytes(json_t *jwk, const char *name, size_t max, unsigned char **out, size_t *len) {
  const char *s = json_string_value(json_object_get(jwk, name));
  if (s == NULL) return -1;
  return b64url_decode_alloc(s, strlen(s), max, out, len) == 0 && *len > 0 ? 0 : -1;
}

static bool public_check(EVP_PKEY *pkey) {
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
  bool ok = ctx != NULL && EVP_PKEY_public_check(ctx) == 1;
  EVP_PKEY_CTX_free(ctx);
  return ok;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM *params) {
  EVP_PKEY *pkey = NULL;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
  if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    pkey = NULL;
  EVP_PKEY_CTX_free(ctx);
  if (pkey != NULL && !public_check(pkey)) {
    EVP_PKEY_free(pkey);
    pkey = NULL;
  }
  return pkey;
}

static EVP_PKEY *rsa_from_jwk(json_t *jwk) {
  unsigned char *n = NULL, *e = NULL;
  size_t nlen = 0, elen = 0;
  BIGNUM *bn = NULL, *be = NULL;
  OSSL_PARAM_BLD *bld = NULL;
  OSSL_PARAM *params = NULL;
  EVP_PKEY *pkey = NULL;
  /* one leading zero byte is tolerated: some issuers encode n as a signed integer */
  if (member_bytes(jwk, "n", RSA_MAX_BITS / 8 + 1, &n, &nlen) != 0 ||
      member_bytes(jwk, "e", RSA_MAX_E_BYTES, &e, &elen) != 0)
    goto fail;
  bn = BN_bin2bn(n, (int)nlen, NULL);
  be = BN_bin2bn(e, (int)elen, NULL);
  if (bn == NULL || be == NULL) goto fail;
  if (BN_num_bits(bn) < RSA_MIN_BITS || BN_num_bits(bn) > RSA_MAX_BITS) goto fail;
  /* 65537 <= e, odd (SP 800-56B 6.2.1; OpenSSL's default provider does not insist) */
  if (!BN_is_odd(be) || BN_num_bits(be) < 17) goto fail;
  bld = OSSL_PARAM_BLD_new();
  if (bld == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
      !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
    goto fail;
  params = OSSL_PARAM_BLD_to_param(bld);
  if (params != NULL) pkey = pkey_fromdata("RSA", params);
fail:
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn);
  BN_free(be);
  free(n);
  free(e);
  return pkey;
}

static EVP_PKEY *ec_from_jwk(json_t *jwk) {
  const char *crv = json_string_value(json_object_get(jwk, "crv"));
  if (crv == NULL || strcmp(crv, "P-256") != 0) return NULL;
  unsigned char *x = NULL, *y = NULL;
  size_t xlen = 0, ylen = 0;
  EVP_PKEY *pkey = NULL;
  /* RFC 7518 6.2.1.2: the full coordinate length, leading zeros included */
  if (member_bytes(jwk, "x", P256_COORD, &x, &xlen) == 0 && member_bytes(jwk, "y", P256_COORD, &y, &ylen) == 0 &&
      xlen == P256_COORD && ylen == P256_COORD) {
    unsigned char point[1 + 2 * P256_COORD];
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, x, P256_COORD);
    memcpy(point + 1 + P256_COORD, y, P256_COORD);
    char group[] = "P-256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point),
        OSSL_PARAM_construct_end(),
    };
    pkey = pkey_fromdata("EC", params);
  }
  free(x);
  free(y);
  return pkey;
}

static bool has_string(json_t *array, const char *want) {
  size_t i;
  json_t *v;
  json_array_foreach(array, i, v) {
    if (json_is_string(v) && strcmp(json_string_value(v), want) == 0) return true;
  }
  return false;
}

/* Fills k from one JWK; false when this module cannot use the key. */
static bool key_from_jwk(json_t *jwk, jwks_key *k) {
  const char *kty = json_string_value(json_object_get(jwk, "kty"));
  const char *use = json_string_value(json_object_get(jwk, "use"));
  json_t *ops = json_object_get(jwk, "key_ops");
  json_t *alg = json_object_get(jwk, "alg");
  json_t *kid = json_object_get(jwk, "kid");
  if (kty == NULL) return false;
  if (json_object_get(jwk, "use") != NULL && (use == NULL || strcmp(use, "sig") != 0)) return false;
  if (ops != NULL && !(json_is_array(ops) && has_string(ops, "verify"))) return false;
  if (strcmp(kty, "RSA") == 0)
    k->kty = KTY_RSA;
  else if (strcmp(kty, "EC") == 0)
    k->kty = KTY_EC;
  else
    return false;
  if (alg != NULL) {
    const char *a = json_string_value(alg);
    if (a != NULL && strcmp(a, "RS256") == 0 && k->kty == KTY_RSA)
      k->alg = JWKS_RS256;
    else if (a != NULL && strcmp(a, "ES256") == 0 && k->kty == KTY_EC)
      k->alg = JWKS_ES256;
    else
      return false;
  }
  if (kid != NULL) {
    const char *s = json_string_value(kid);
    size_t len = s ? strlen(s) : 0;
    if (s == NULL || len > JWKS_MAX_KID) return false;
    memcpy(k->kid, s, len + 1);
    k->has_kid = true;
  }
  k->pkey = k->kty == KTY_RSA ? rsa_from_jwk(jwk) : ec_from_jwk(jwk);
  ERR_clear_error(); /* a refused key leaves OpenSSL errors on this thread's queue */
  return k->pkey != NULL;
}

int jwks_set_parse(const char *json, size_t len, jwks_set **out) {
  *out = NULL;
  if (json == NULL) return JWKS_ERR_INVALID;
  if (len > JWKS_MAX_DOC_BYTES) return JWKS_ERR_TOO_LARGE;
  json_error_t jerr;
  json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  json_t *keys = json_object_get(doc, "keys");
  int rc = JWKS_ERR_PARSE;
  if (!json_is_object(doc) || !json_is_array(keys)) goto done;
  size_t n = json_array_size(keys);
  rc = JWKS_ERR_TOO_LARGE;
  if (n > JWKS_MAX_ENTRIES) goto done;
  rc = JWKS_ERR_NOMEM;
  jwks_set *s = calloc(1, sizeof *s + n * sizeof s->keys[0]);
  if (s == NULL) goto done;
  atomic_init(&s->refs, 1);
  size_t i;
  json_t *jwk;
  json_array_foreach(keys, i, jwk) {
    if (!json_is_object(jwk)) {
      jwks_set_free(s);
      rc = JWKS_ERR_PARSE;
      goto done;
    }
    if (key_from_jwk(jwk, &s->keys[s->count])) {
      s->count++;
    } else {
      memset(&s->keys[s->count], 0, sizeof s->keys[0]);
      s->skipped++;
    }
  }
  *out = s;
  rc = 0;
done:
  json_decref(doc);
  return rc;
}

void jwks_set_free(jwks_set *s) {
  if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1) return;
  for (size_t i = 0; i < s->count; i++) EVP_PKEY_free(s->keys[i].pkey);
  free(s);
}

jwks_set *jwks_set_ref(jwks_set *s) {
  if (s != NULL) atomic_fetch_add(&s->refs, 1);
  return s;
}

size_t jwks_set_count(const jwks_set *s) { return s ? s->count : 0; }
size_t jwks_set_skipped(const jwks_set *s) { return s ? s->skipped : 0; }

static bool key_fits(const jwks_key *k, const char *kid, jwks_alg alg) {
  if (kid != NULL && (!k->has_kid || strcmp(k->kid, kid) != 0)) return false;
  if (k->alg != 0 && k->alg != (int)alg) return false;
  return alg == JWKS_RS256 ? k->kty == KTY_RSA : alg == JWKS_ES256 && k->kty == KTY_EC;
}

bool jwks_set_has_key(const jwks_set *s, const char *kid, jwks_alg alg) {
  for (size_t i = 0; s != NULL && i < s->count; i++)
    if (key_fits(&s->keys[i], kid, alg)) return true;
  return false;
}

/* Raw r||s (RFC 7518 3.4) to the DER ECDSA-Sig-Value OpenSSL verifies. Returns the DER
 * length, or 0 when out of memory. */
static size_t es256_to_der(const unsigned char raw[2 * P256_COORD], unsigned char *der, size_t cap) {
  ECDSA_SIG *sig = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(raw, P256_COORD, NULL);
  BIGNUM *s = BN_bin2bn(raw + P256_COORD, P256_COORD, NULL);
  size_t n = 0;
  if (sig == NULL || r == NULL || s == NULL) {
    BN_free(r);
    BN_free(s);
  } else if (ECDSA_SIG_set0(sig, r, s) == 1) { /* sig owns r and s from here */
    int need = i2d_ECDSA_SIG(sig, NULL);
    unsigned char *p = der;
    if (need > 0 && (size_t)need <= cap && i2d_ECDSA_SIG(sig, &p) == need) n = (size_t)need;
  }
  ECDSA_SIG_free(sig);
  return n;
}

/* 1 verified, 0 did not, -1 out of memory. */
static int verify_with(EVP_PKEY *pkey, jwks_alg alg, const void *data, size_t len, const unsigned char *sig,
                       size_t sig_len) {
  unsigned char der[2 * P256_COORD + 16];
  if (alg == JWKS_RS256) {
    /* RFC 7518 3.3: exactly the modulus length */
    if (sig_len != (size_t)EVP_PKEY_get_size(pkey)) return 0;
  } else {
    if (sig_len != 2 * P256_COORD) return 0;
    sig_len = es256_to_der(sig, der, sizeof der);
    if (sig_len == 0) return -1;
    sig = der;
  }
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (md == NULL) return -1;
  int ok = EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL) == 1 &&
           EVP_DigestVerify(md, sig, sig_len, data, len) == 1;
  EVP_MD_CTX_free(md);
  ERR_clear_error();
  return ok;
}

int jwks_verify(const jwks_set *s, const char *kid, jwks_alg alg, const void *data, size_t len,
                const unsigned char *sig, size_t sig_len) {
  if (s == NULL || data == NULL || (sig == NULL && sig_len > 0)) return JWKS_ERR_INVALID;
  if (alg != JWKS_RS256 && alg != JWKS_ES256) return JWKS_ERR_INVALID;
  int rc = JWKS_ERR_NO_KEY;
  for (size_t i = 0; i < s->count; i++) {
    if (!key_fits(&s->keys[i], kid, alg)) continue;
    int v = verify_with(s->keys[i].pkey, alg, data, len, sig, sig_len);
    if (v == 1) return 0;
    if (v < 0)
      rc = JWKS_ERR_NOMEM;
    else if (rc != JWKS_ERR_NOMEM)
      rc = JWKS_ERR_SIGNATURE;
  }
  return rc;
}

/* ---- cache ---------------------------------------------------------------------------- */

#define DAY_S 86400L

struct jwks_cache {
  jwks_fetch_fn fetch;
  void *fetch_ctx;
  jwks_clock_fn clock;
  void *clock_ctx;
  long ttl_s, min_ttl_s, max_ttl_s, min_interval_s;

  pthread_mutex_t lock; /* guards everything below */
  pthread_cond_t fetched;
  jwks_set *current;
  int64_t expires_at;
  bool attempted, fetching;
  int64_t last_attempt;
  uint64_t generation, fetches, failures;
  int last_error;
};

static int64_t monotonic_s(void *ctx) {
  (void)ctx;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec;
}

static long or_default(long v, long d) { return v ? v : d; }

int jwks_cache_new(const jwks_cache_config *cfg, jwks_cache **out) {
  *out = NULL;
  if (cfg == NULL || cfg->fetch == NULL) return JWKS_ERR_INVALID;
  long ttl = or_default(cfg->ttl_s, 300), min_ttl = or_default(cfg->min_ttl_s, 30);
  long max_ttl = or_default(cfg->max_ttl_s, DAY_S);
  long interval = or_default(cfg->min_refresh_interval_s, 30);
  if (ttl < 0 || min_ttl < 0 || max_ttl < 0 || interval < 0) return JWKS_ERR_INVALID;
  if (min_ttl > max_ttl || ttl < min_ttl || ttl > max_ttl) return JWKS_ERR_INVALID;
  if (ttl > DAY_S || min_ttl > DAY_S || interval > DAY_S || max_ttl > 30 * DAY_S) return JWKS_ERR_INVALID;
  jwks_cache *c = calloc(1, sizeof *c);
  if (c == NULL) return JWKS_ERR_NOMEM;
  if (pthread_mutex_init(&c->lock, NULL) != 0) {
    free(c);
    return JWKS_ERR_NOMEM;
  }
  if (pthread_cond_init(&c->fetched, NULL) != 0) {
    pthread_mutex_destroy(&c->lock);
    free(c);
    return JWKS_ERR_NOMEM;
  }
  c->fetch = cfg->fetch;
  c->fetch_ctx = cfg->fetch_ctx;
  c->clock = cfg->clock ? cfg->clock : monotonic_s;
  c->clock_ctx = cfg->clock_ctx;
  c->ttl_s = ttl;
  c->min_ttl_s = min_ttl;
  c->max_ttl_s = max_ttl;
  c->min_interval_s = interval;
  *out = c;
  return 0;
}

void jwks_cache_free(jwks_cache *c) {
  if (c == NULL) return;
  assert(!c->fetching);
  jwks_set_free(c->current);
  pthread_cond_destroy(&c->fetched);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

static long lifetime(const jwks_cache *c, long max_age) {
  if (max_age < 0) return c->ttl_s;
  if (max_age < c->min_ttl_s) return c->min_ttl_s;
  return max_age > c->max_ttl_s ? c->max_ttl_s : max_age;
}

static bool may_attempt(const jwks_cache *c, int64_t now) {
  return !c->attempted || now - c->last_attempt >= c->min_interval_s;
}

/* With c->lock held and no fetch in progress: fetches, with the lock dropped meanwhile,
 * and installs the result. Returns with the lock held; *replaced gets the set to release
 * once the lock is dropped. */
static int fetch_locked(jwks_cache *c, int64_t now, jwks_set **replaced) {
  assert(!c->fetching);
  c->fetching = true;
  c->attempted = true;
  c->last_attempt = now;
  c->fetches++;
  pthread_mutex_unlock(&c->lock);

  jwks_fetched f = {.body = NULL, .len = 0, .max_age_s = -1};
  jwks_set *s = NULL;
  int rc = c->fetch(c->fetch_ctx, &f);
  if (rc > 0 || (rc == 0 && f.body == NULL)) rc = JWKS_ERR_FETCH;
  if (rc == 0) rc = jwks_set_parse(f.body, f.len, &s);
  free(f.body);
  int64_t after = c->clock(c->clock_ctx);

  pthread_mutex_lock(&c->lock);
  if (rc == 0) {
    *replaced = c->current;
    c->current = s;
    c->expires_at = after + lifetime(c, f.max_age_s);
    c->generation++;
  } else {
    c->failures++;
  }
  c->last_error = rc;
  c->fetching = false;
  pthread_cond_broadcast(&c->fetched);
  return rc;
}

int jwks_cache_get(jwks_cache *c, jwks_set **out) {
  *out = NULL;
  jwks_set *replaced = NULL;
  pthread_mutex_lock(&c->lock);
  int64_t now = c->clock(c->clock_ctx);
  bool fresh = c->current != NULL && now < c->expires_at;
  if (!fresh && c->fetching && c->current == NULL) {
    while (c->fetching) pthread_cond_wait(&c->fetched, &c->lock);
  } else if (!fresh && !c->fetching && may_attempt(c, now)) {
    fetch_locked(c, now, &replaced);
  }
  *out = jwks_set_ref(c->current);
  pthread_mutex_unlock(&c->lock);
  jwks_set_free(replaced);
  return *out ? 0 : JWKS_ERR_NO_KEYS;
}

int jwks_cache_refresh(jwks_cache *c, const jwks_set *seen, jwks_set **out) {
  *out = NULL;
  jwks_set *replaced = NULL;
  int rc;
  bool waited = false;
  pthread_mutex_lock(&c->lock);
  while (c->fetching) {
    pthread_cond_wait(&c->fetched, &c->lock);
    waited = true;
  }
  if (c->current != seen) {
    rc = 0; /* refreshed since the caller looked */
  } else if (waited) {
    rc = c->last_error; /* the fetch we waited for failed */
  } else {
    int64_t now = c->clock(c->clock_ctx);
    rc = may_attempt(c, now) ? fetch_locked(c, now, &replaced) : JWKS_ERR_TOO_SOON;
  }
  assert(rc != 0 || c->current != seen);
  if (rc == 0) *out = jwks_set_ref(c->current);
  pthread_mutex_unlock(&c->lock);
  jwks_set_free(replaced);
  return rc;
}

void jwks_cache_get_info(jwks_cache *c, jwks_cache_info *out) {
  pthread_mutex_lock(&c->lock);
  int64_t now = c->clock(c->clock_ctx);
  out->generation = c->generation;
  out->fetches = c->fetches;
  out->failures = c->failures;
  out->last_error = c->last_error;
  out->keys = jwks_set_count(c->current);
  out->expires_in_s = c->current ? c->expires_at - now : 0;
  pthread_mutex_unlock(&c->lock);
}
