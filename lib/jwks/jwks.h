/*
 * jwks: the signature keys of a token issuer, read from its JWK Set (RFC 7517, RFC 7518
 * section 6), kept fresh, and the signature check itself. lib/jwt parses tokens and checks
 * claims; this module owns every use of OpenSSL.
 *
 * Key set (jwks_set). jwks_set_parse() turns a JWK Set document into OpenSSL public keys,
 * built from the JWK parameters with EVP_PKEY_fromdata() and checked with
 * EVP_PKEY_public_check(): RSA keys (kty "RSA", n and e; 2048 to 8192 bits, e odd and at
 * least 65537) for RS256 and EC keys (kty "EC", crv "P-256", x and y of exactly 32 bytes,
 * a point on the curve) for ES256. Entries this module cannot use are skipped and
 * counted, never fatal: other key types or curves,
 * "use" other than "sig", "key_ops" without "verify", an "alg" other than RS256/ES256 or
 * not matching the key type, malformed or weak key material. A JWK's own "alg", when
 * present, binds it to that algorithm. A set is immutable and reference-counted, so it can
 * be used by any number of threads while a newer one replaces it.
 *
 * Signature check (jwks_verify). The caller names the algorithm (an enum: there is no way
 * to ask for "none" or an HMAC) and the token's kid; every key of the set with that kid
 * and a key type that fits the algorithm is tried, so an RSA public key can never serve as
 * an HMAC secret and a kid cannot select a key of the wrong type. ES256 signatures in JWS
 * are the raw 64-byte r||s (RFC 7518 section 3.4), not DER: they are converted to DER for
 * EVP_DigestVerify(), and anything of another length (a DER signature included) fails.
 *
 * Cache (jwks_cache). Holds the current set and refreshes it through an injected fetch
 * function (jwkshttp_fetch() from lib/jwkshttp, or a fake in tests) and an injected monotonic clock.
 *   - Lifetime: the answer's Cache-Control max-age, clamped to [min_ttl_s, max_ttl_s];
 *     ttl_s (default 5 min) without one. jwks_cache_get() refetches an expired set.
 *   - Unknown kid: jwks_cache_refresh() fetches at once, so a rotated-in key works
 *     without waiting for the lifetime to run out.
 *   - Rate limit: no two fetch attempts, whatever caused them, are closer than
 *     min_refresh_interval_s (default 30 s, like Nimbus's rate-limited JWK source): tokens
 *     with made-up kids cannot turn a service into an amplifier against the issuer, and an
 *     unreachable issuer is asked again at that pace.
 *   - A failed fetch or an unusable document keeps the last good set (an issuer outage
 *     does not log everybody out); a good document replaces it whole, so a key removed by
 *     the issuer stops verifying after the next successful fetch.
 *   - Single flight: one fetch at a time. A caller that needs the fetch's result (no set
 *     yet, or an explicit refresh) waits for the fetch in progress; a caller that has a
 *     set, even an expired one, never waits for the network.
 * Fetches run in the calling thread, without the cache's lock held: a background thread
 * may call jwks_cache_refresh() or jwks_cache_get() too (to fetch before the first
 * request, or ahead of expiry); it needs no other coordination.
 *
 * Ownership. A jwks_set* handed out by jwks_set_parse(), jwks_cache_get() or
 * jwks_cache_refresh() is one reference, released with jwks_set_free(). The cache copies
 * nothing from its config but pointers to the fetch and clock contexts, which must outlive
 * it.
 */
#ifndef FERMATA_JWKS_H
#define FERMATA_JWKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum jwks_err {
  JWKS_OK = 0,
  JWKS_ERR_INVALID = -1, /* bad argument or configuration */
  JWKS_ERR_NOMEM = -2,
  JWKS_ERR_PARSE = -3,     /* not a JWK Set: bad JSON, no "keys" array, an entry not an object */
  JWKS_ERR_TOO_LARGE = -4, /* over JWKS_MAX_DOC_BYTES, or over JWKS_MAX_ENTRIES entries */
  JWKS_ERR_FETCH = -5,     /* the fetch failed: transport, status other than 200, body cap */
  JWKS_ERR_NO_KEYS = -6,   /* the cache has no key set (never fetched successfully) */
  JWKS_ERR_TOO_SOON = -7,  /* refresh refused: the last attempt is under the minimum interval ago */
  JWKS_ERR_NO_KEY = -8,    /* no key in the set fits this kid and algorithm */
  JWKS_ERR_SIGNATURE = -9, /* a key fits, the signature does not verify */
} jwks_err;

/* Static description of a jwks_err; never NULL. */
const char *jwks_strerror(int code);

#define JWKS_MAX_DOC_BYTES (256 * 1024) /* a JWK Set document */
#define JWKS_MAX_ENTRIES 64             /* entries of "keys", usable or not */
#define JWKS_MAX_KID 256                /* bytes of a kid, without the NUL */

/* The signature algorithms this system accepts (RFC 7518 names). */
typedef enum jwks_alg {
  JWKS_RS256 = 1, /* RSASSA-PKCS1-v1_5 with SHA-256 */
  JWKS_ES256 = 2, /* ECDSA P-256 with SHA-256, raw r||s */
} jwks_alg;

/* ---- key sets -------------------------------------------------------------------------- */

typedef struct jwks_set jwks_set;

/* Parses a JWK Set document (need not be NUL-terminated). Returns 0 and *out (one
 * reference), or JWKS_ERR_PARSE / JWKS_ERR_TOO_LARGE / JWKS_ERR_NOMEM with *out NULL. A set
 * with no usable key is valid: it verifies nothing. */
int jwks_set_parse(const char *json, size_t len, jwks_set **out);
/* Drops one reference; the last one frees the set. jwks_set_free(NULL) is a no-op. */
void jwks_set_free(jwks_set *s);
/* Adds a reference (for a caller that keeps the set beyond its own reference). */
jwks_set *jwks_set_ref(jwks_set *s);
/* Usable keys, and entries skipped as unusable (for logs). */
size_t jwks_set_count(const jwks_set *s);
size_t jwks_set_skipped(const jwks_set *s);
/* true when a key with this kid (kid NULL: any key) fits alg. */
bool jwks_set_has_key(const jwks_set *s, const char *kid, jwks_alg alg);

/* Checks sig over data[0..len) with each key that has this kid (NULL: any kid) and fits
 * alg. Returns 0 when one verifies, JWKS_ERR_NO_KEY when no key fits, JWKS_ERR_SIGNATURE
 * when keys fit but none verifies (a signature of the wrong length included), or
 * JWKS_ERR_NOMEM. Thread-safe. */
int jwks_verify(const jwks_set *s, const char *kid, jwks_alg alg, const void *data, size_t len,
                const unsigned char *sig, size_t sig_len);

/* ---- fetching -------------------------------------------------------------------------- */

/* One answer of the issuer's JWK Set endpoint. */
typedef struct jwks_fetched {
  char *body; /* malloc'd by the fetch function; the cache frees it */
  size_t len;
  long max_age_s; /* from Cache-Control; -1 when the answer has none */
} jwks_fetched;

/* Fetches the document. Returns 0 with out filled, or a negative code (the cache treats
 * every failure alike: JWKS_ERR_FETCH is the usual one) with out->body NULL. Called from
 * whichever thread refreshes, never twice at once for one cache. */
typedef int (*jwks_fetch_fn)(void *ctx, jwks_fetched *out);

/* Seconds on a monotonic clock. */
typedef int64_t (*jwks_clock_fn)(void *ctx);

/* ---- cache ----------------------------------------------------------------------------- */

typedef struct jwks_cache_config {
  jwks_fetch_fn fetch; /* required */
  void *fetch_ctx;
  jwks_clock_fn clock; /* NULL: CLOCK_MONOTONIC */
  void *clock_ctx;
  long ttl_s;                  /* lifetime without max-age; 0 means 300 */
  long min_ttl_s;              /* lower bound of a max-age; 0 means 30 */
  long max_ttl_s;              /* upper bound of a max-age; 0 means 86400 */
  long min_refresh_interval_s; /* between fetch attempts; 0 means 30 */
} jwks_cache_config;

typedef struct jwks_cache jwks_cache;

/* Returns 0 and *out, or JWKS_ERR_INVALID (no fetch function, negative values, min_ttl >
 * max_ttl, ttl outside them, any value over a day but max_ttl_s's 30 days) /
 * JWKS_ERR_NOMEM. Fetches nothing yet. */
int jwks_cache_new(const jwks_cache_config *cfg, jwks_cache **out);
/* No call may be running. jwks_cache_free(NULL) is a no-op. Sets handed out stay valid
 * until their holders free them. */
void jwks_cache_free(jwks_cache *c);

/* The current set (*out, one reference). When there is none or it has expired and the rate
 * limit allows, fetches first; an expired set is still returned when that fetch fails or
 * another thread's fetch is in progress. Returns 0, or JWKS_ERR_NO_KEYS with *out NULL
 * when no set was ever fetched (then the fetch's own failure has been recorded). */
int jwks_cache_get(jwks_cache *c, jwks_set **out);

/* For a kid that `seen` (the set the caller looked in; may be NULL) lacks. When the cache
 * already holds a newer set than `seen` (another thread refreshed meanwhile), returns it
 * without fetching; otherwise fetches now, waiting for a fetch already in progress instead
 * of starting a second one. Returns 0 and the newer set (*out, one reference);
 * JWKS_ERR_TOO_SOON when a fetch is due but the last attempt is too recent; or the fetch's
 * failure (JWKS_ERR_FETCH, JWKS_ERR_PARSE, ...). On error *out is NULL and the current set,
 * if any, stays. */
int jwks_cache_refresh(jwks_cache *c, const jwks_set *seen, jwks_set **out);

/* A snapshot for logs and health endpoints. */
typedef struct jwks_cache_info {
  uint64_t generation;  /* sets installed so far */
  uint64_t fetches;     /* fetch attempts */
  uint64_t failures;    /* attempts that installed nothing */
  int last_error;       /* 0, or the last attempt's error */
  size_t keys;          /* usable keys in the current set */
  int64_t expires_in_s; /* seconds until the current set expires; <= 0 when expired or none */
} jwks_cache_info;

void jwks_cache_get_info(jwks_cache *c, jwks_cache_info *out);

#endif
