/*
 * jwkshttp: fetches an issuer's JWK Set over HTTP(S) for lib/jwks's cache, on libcurl.
 *
 * jwkshttp_fetch() is a jwks_fetch_fn: GET of the configured URL, no redirects followed
 * (the JWK Set URI is configuration, not something a server may move), only http and
 * https, status 200 required, the body capped (JWKS_MAX_DOC_BYTES at most), and the
 * answer's Cache-Control max-age handed to the cache, which clamps it.
 *
 * Why not lib/httpc: its response carries no headers, and max-age is the point here.
 * Fetches are minutes apart, so each one uses a fresh curl handle instead of a pool.
 *
 * Thread-safety: a jwkshttp may fetch from any number of threads at once (the cache never
 * runs two fetches, but nothing here relies on it). The caller calls
 * curl_global_init(CURL_GLOBAL_DEFAULT) once in main() before jwkshttp_new(), as for
 * lib/httpc.
 */
#ifndef FERMATA_JWKSHTTP_H
#define FERMATA_JWKSHTTP_H

#include <stddef.h>

#include "jwks/jwks.h"

typedef struct jwkshttp_config {
  const char *url;         /* http:// or https://; copied */
  long connect_timeout_ms; /* 0 means 2000 */
  long timeout_ms;         /* whole fetch; 0 means 5000 */
  size_t max_bytes;        /* body cap; 0 means JWKS_MAX_DOC_BYTES, also the upper bound */
  const char *user_agent;  /* NULL means "fermata-jwks"; copied */
} jwkshttp_config;

typedef struct jwkshttp jwkshttp;

/* Returns 0 and *out, or JWKS_ERR_INVALID (no URL, another scheme, control characters or
 * spaces in the URL or user agent, negative timeouts, a cap over the bound) /
 * JWKS_ERR_NOMEM. */
int jwkshttp_new(const jwkshttp_config *cfg, jwkshttp **out);
/* No fetch may be running. jwkshttp_free(NULL) is a no-op. */
void jwkshttp_free(jwkshttp *h);

/* A jwks_fetch_fn; ctx is a jwkshttp*. Returns 0 with out->body (malloc'd, NUL-terminated),
 * out->len and out->max_age_s, or JWKS_ERR_FETCH (transport error, status other than 200,
 * body over the cap) / JWKS_ERR_NOMEM with out->body NULL. */
int jwkshttp_fetch(void *ctx, jwks_fetched *out);

/* The max-age of a Cache-Control header value (RFC 9111 section 5.2): its seconds (the
 * first max-age wins; values past LONG_MAX saturate); 0 for no-cache, no-store or a
 * malformed max-age (RFC 9111 treats those as stale); -1 when there is no max-age (or
 * value is NULL). */
long jwkshttp_max_age(const char *cache_control);

#endif
