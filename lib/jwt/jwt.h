/*
 * jwt: verifies OAuth 2.0 Bearer tokens (RFC 6750) the way Spring Security's resource
 * server does (spring.security.oauth2.resourceserver.jwt.*): signed JWTs (RFC 7519) in
 * JWS compact form, keys from the issuer's JWK Set (lib/jwks), then the claims.
 *
 * Library choice: OpenSSL 3 (EVP) for signatures, jansson for JSON, not libjwt. Debian 12
 * ships libjwt 1.10.2 (2019), which was compared and refused:
 *   - no JWK/JWKS support at all (it came with libjwt 3.0): keys must be handed over as
 *     PEM, so the JWK-to-key work on OpenSSL would be ours anyway;
 *   - jwt_decode() takes the algorithm from the token's header and uses the key it is
 *     given for whatever that says: an RSA public key PEM passed for an "HS256" token
 *     becomes its HMAC secret (the RS/HS key-confusion attack), and a NULL key accepts
 *     "alg":"none"; an allow-list would have to be bolted on before calling it;
 *   - algorithm names compared case-insensitively ("none" == "NONE"), no duplicate-claim
 *     rejection, no exp/nbf/iss/aud checks (jwt_valid came in 1.12), and another runtime
 *     dependency (libb64);
 *   - what it does right (ES256 as raw r||s, converted for OpenSSL) is a few lines here.
 * OpenSSL builds keys straight from the JWK parameters (EVP_PKEY_fromdata), verifies with
 * EVP_DigestVerify, and is already a dependency (lib/s3); no crypto is written here, only
 * base64url (lib/b64url) and the JOSE rules.
 *
 * What jwt_verify() checks, in order; the first failure is the answer:
 *   1. size (max_token_bytes, default 8 KiB), three base64url parts (strict);
 *   2. the header: a JSON object; "alg" exactly "RS256" or "ES256" (an allow-list, so
 *      "none", "HS256" and the rest are refused before any key is looked at); no "crit"
 *      (we implement no extension); "kid" a string when present; "jku", "x5u" and "jwk"
 *      are ignored (keys come from configuration, never from the token);
 *   3. the signature, with the JWK Set's keys of that kid and of a type that fits alg
 *      (lib/jwks). A kid the set lacks makes the cache refetch, rate-limited, and the
 *      lookup is tried once more;
 *   4. the claims (a JSON object without duplicate names, nesting at most 16 deep): iss
 *      equal to the issuer; aud (string or array) holding one of the audiences; exp
 *      required, nbf and iat optional, all with the clock skew (default 60 s like Spring,
 *      at most 300); sub a string when present.
 * Unlike Spring, exp is required (a token that never expires is refused) and the
 * audience is always checked.
 *
 * Scopes: "scope" (a space-separated string, Spring's default claim) or, when it is absent,
 * "scp" (an array of strings, or a string), like Spring's JwtGrantedAuthoritiesConverter.
 * The three this system knows become JWT_SCOPE_* bits; others are ignored. No scope
 * implies another.
 *
 * Answers. jwt_http_status(), jwt_error_description() and jwt_www_authenticate() turn an
 * error into the status, the contract's errorMessage and the RFC 6750 challenge: no
 * credentials get a bare `Bearer` (section 3.1), a bad token `Bearer
 * error="invalid_token", error_description="..."`, too few scopes (403) `Bearer
 * error="insufficient_scope", error_description="...", scope="fermata.write"`.
 * Descriptions are fixed texts: nothing from the token is ever echoed.
 *
 * Thread-safety: a verifier may be used by any number of threads at once; it keeps no
 * mutable state of its own (the key cache has its lock). This module never reads the
 * environment: the caller fills jwt_config (from SPRING_SECURITY_OAUTH2_RESOURCESERVER_JWT_*).
 */
#ifndef FERMATA_JWT_H
#define FERMATA_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "jwks/jwks.h"

typedef enum jwt_err {
  JWT_OK = 0,
  JWT_ERR_INVALID = -1, /* bad argument or configuration: a bug here, not the client's */
  JWT_ERR_NOMEM = -2,
  JWT_ERR_NO_TOKEN = -3,            /* 401: no Bearer credentials at all */
  JWT_ERR_MALFORMED = -4,           /* 401 invalid_token: not a compact JWS, bad base64url or JSON */
  JWT_ERR_TOO_LARGE = -5,           /* 401 invalid_token: over max_token_bytes */
  JWT_ERR_UNSUPPORTED = -6,         /* 401 invalid_token: alg not RS256/ES256, or a crit header */
  JWT_ERR_UNKNOWN_KEY = -7,         /* 401 invalid_token: no key for kid and alg, even after a refresh */
  JWT_ERR_SIGNATURE = -8,           /* 401 invalid_token */
  JWT_ERR_ISSUER = -9,              /* 401 invalid_token: iss missing or not the issuer */
  JWT_ERR_AUDIENCE = -10,           /* 401 invalid_token: aud missing or holds none of ours */
  JWT_ERR_EXPIRED = -11,            /* 401 invalid_token: exp (plus skew) has passed */
  JWT_ERR_NOT_YET_VALID = -12,      /* 401 invalid_token: nbf or iat (minus skew) is ahead */
  JWT_ERR_CLAIMS = -13,             /* 401 invalid_token: exp missing, a claim of the wrong type */
  JWT_ERR_INSUFFICIENT_SCOPE = -14, /* 403 insufficient_scope: valid token, scopes missing */
  JWT_ERR_KEYS_UNAVAILABLE = -15,   /* 503: no JWK Set could be fetched yet */
} jwt_err;

/* The scopes this system grants on. */
enum {
  JWT_SCOPE_READ = 1u << 0,  /* "fermata.read": GETs */
  JWT_SCOPE_WRITE = 1u << 1, /* "fermata.write": uploads, deletes, songs */
  JWT_SCOPE_ADMIN = 1u << 2, /* "fermata.admin": storages, actuator writes */
};

/* "fermata.read" etc. for one JWT_SCOPE_* bit; NULL for anything else. */
const char *jwt_scope_name(unsigned scope);

#define JWT_DEFAULT_SKEW_S 60
#define JWT_MAX_SKEW_S 300
#define JWT_NO_SKEW (-1L)
#define JWT_DEFAULT_MAX_TOKEN 8192
#define JWT_MAX_TOKEN 65536
#define JWT_MAX_SUBJECT 255
#define JWT_MAX_AUDIENCES 8

/* Seconds since the epoch. */
typedef int64_t (*jwt_clock_fn)(void *ctx);

typedef struct jwt_config {
  const char *issuer;           /* required: iss must equal it exactly; copied */
  const char *const *audiences; /* required, 1..JWT_MAX_AUDIENCES non-empty strings; copied */
  size_t n_audiences;
  long clock_skew_s;      /* 0 means 60; JWT_NO_SKEW for none; at most 300 */
  size_t max_token_bytes; /* 0 means 8192; at most 65536 */
  jwt_clock_fn clock;     /* NULL: CLOCK_REALTIME */
  void *clock_ctx;
} jwt_config;

/* What a verified token says. */
typedef struct jwt_claims {
  char subject[JWT_MAX_SUBJECT + 1]; /* "sub"; "" when absent */
  char key_id[JWKS_MAX_KID + 1];     /* the header's kid; "" when absent (for logs) */
  jwks_alg alg;
  unsigned scopes;    /* JWT_SCOPE_* granted */
  int64_t expires_at; /* exp, epoch seconds */
  int64_t issued_at;  /* iat; 0 when absent */
} jwt_claims;

typedef struct jwt_verifier jwt_verifier;

/* Returns 0 and *out, or JWT_ERR_INVALID (missing issuer, audiences or keys; values out of
 * range) / JWT_ERR_NOMEM. keys is borrowed: it must outlive the verifier. */
int jwt_verifier_new(const jwt_config *cfg, jwks_cache *keys, jwt_verifier **out);
/* No call may be running. jwt_verifier_free(NULL) is a no-op. */
void jwt_verifier_free(jwt_verifier *v);

/* Verifies the compact JWS token[0..len) (need not be NUL-terminated). Returns 0 with *out
 * filled, or a negative jwt_err with *out zeroed. May block on a JWK Set fetch (first use,
 * expired set, unknown kid), within the fetcher's timeout. */
int jwt_verify(jwt_verifier *v, const char *token, size_t len, jwt_claims *out);

/* For an HTTP request: takes the value of its Authorization header (NULL when absent),
 * verifies the Bearer token and requires every scope bit of required_scopes (0: none).
 * Another scheme than Bearer counts as no token, as in Spring. Returns 0 with *out
 * filled; JWT_ERR_INSUFFICIENT_SCOPE with *out filled too (for logs); otherwise as
 * jwt_verify(). */
int jwt_authorize(jwt_verifier *v, const char *authorization, unsigned required_scopes, jwt_claims *out);

/* 401, 403 or 503 for the outcomes above; 500 for JWT_ERR_INVALID, JWT_ERR_NOMEM and
 * unknown codes; 200 for 0. */
int jwt_http_status(int err);

/* A fixed text for the error body's errorMessage and the challenge's error_description;
 * never NULL, never holds '"' or '\\'. */
const char *jwt_error_description(int err);

/* Writes the WWW-Authenticate value for err into buf (NUL-terminated). For
 * JWT_ERR_INSUFFICIENT_SCOPE, required_scopes names the scopes in scope="...". Errors that
 * get no challenge (0, 500s, 503) write "". Returns the length, or JWT_ERR_INVALID when
 * buf is too small (256 bytes always suffice). */
int jwt_www_authenticate(int err, unsigned required_scopes, char *buf, size_t cap);

#endif
