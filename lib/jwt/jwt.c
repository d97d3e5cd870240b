/* jwt: Bearer token verification on lib/jwks.
 *
 * A token is split in place (no copy): the signing input is the token's first two parts as
 * they came, so nothing is re-encoded. The header is decoded and checked before any key is
 * touched; the payload is parsed only after its signature has verified, so unauthenticated
 * JSON never reaches the claim code. Every decoded part is bounded by max_token_bytes
 * before it is allocated.
 */
#include "jwt.h"

#include "b64url/b64url.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_JSON_DEPTH 16
#define MAX_SIG_BYTES 1024 /* RSA 8192 */

struct jwt_verifier {
  char *issuer;
  char *audiences[JWT_MAX_AUDIENCES];
  size_t n_audiences;
  int64_t skew_s;
  size_t max_token;
  jwt_clock_fn clock;
  void *clock_ctx;
  jwks_cache *keys;
};

static const struct {
  unsigned bit;
  const char *name;
} scopes[] = {
    {JWT_SCOPE_READ, "fermata.read"},
    {JWT_SCOPE_WRITE, "fermata.write"},
    {JWT_SCOPE_ADMIN, "fermata.admin"},
};

const char *jwt_scope_name(unsigned scope) {
  for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
    if (scopes[i].bit == scope) return scopes[i].name;
  return NULL;
}

static int64_t realtime_s(void *ctx) {
  (void)ctx;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec;
}

int jwt_verifier_new(const jwt_config *cfg, jwks_cache *keys, jwt_verifier **out) {
  *out = NULL;
  if (cfg == NULL || keys == NULL || cfg->issuer == NULL || cfg->issuer[0] == '\0') return JWT_ERR_INVALID;
  if (cfg->audiences == NULL || cfg->n_audiences == 0 || cfg->n_audiences > JWT_MAX_AUDIENCES) return JWT_ERR_INVALID;
  for (size_t i = 0; i < cfg->n_audiences; i++)
    if (cfg->audiences[i] == NULL || cfg->audiences[i][0] == '\0') return JWT_ERR_INVALID;
  long skew = cfg->clock_skew_s == 0 ? JWT_DEFAULT_SKEW_S : cfg->clock_skew_s == JWT_NO_SKEW ? 0 : cfg->clock_skew_s;
  if (skew < 0 || skew > JWT_MAX_SKEW_S || cfg->max_token_bytes > JWT_MAX_TOKEN) return JWT_ERR_INVALID;
  jwt_verifier *v = calloc(1, sizeof *v);
  if (v == NULL) return JWT_ERR_NOMEM;
  v->issuer = strdup(cfg->issuer);
  if (v->issuer == NULL) goto nomem;
  for (; v->n_audiences < cfg->n_audiences; v->n_audiences++) {
    v->audiences[v->n_audiences] = strdup(cfg->audiences[v->n_audiences]);
    if (v->audiences[v->n_audiences] == NULL) goto nomem;
  }
  v->skew_s = skew;
  v->max_token = cfg->max_token_bytes ? cfg->max_token_bytes : JWT_DEFAULT_MAX_TOKEN;
  v->clock = cfg->clock ? cfg->clock : realtime_s;
  v->clock_ctx = cfg->clock_ctx;
  v->keys = keys;
  *out = v;
  return 0;
nomem:
  jwt_verifier_free(v);
  return JWT_ERR_NOMEM;
}

void jwt_verifier_free(jwt_verifier *v) {
  if (v == NULL) return;
  free(v->issuer);
  for (size_t i = 0; i < v->n_audiences; i++) free(v->audiences[i]);
  free(v);
}

/* ---- decoding ------------------------------------------------------------------------- */

/* true when the JSON text nests arrays and objects at most max deep (brackets inside
 * strings do not count). Run before jansson, whose own limit is 2048. */
static bool depth_ok(const char *s, size_t len, int max) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max) return false;
    } else if (c == '}' || c == ']') {
      depth--;
    }
  }
  return true;
}

/* Decodes one base64url part holding a JSON object. */
static int decode_object(const char *part, size_t len, size_t max, json_t **out) {
  *out = NULL;
  unsigned char *raw = NULL;
  size_t n = 0;
  int rc = b64url_decode_alloc(part, len, max, &raw, &n);
  if (rc == B64URL_ERR_NOMEM) return JWT_ERR_NOMEM;
  if (rc != 0) return JWT_ERR_MALFORMED;
  json_error_t err;
  json_t *j = NULL;
  if (depth_ok((const char *)raw, n, MAX_JSON_DEPTH))
    j = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, &err);
  free(raw);
  if (!json_is_object(j)) {
    json_decref(j);
    return JWT_ERR_MALFORMED;
  }
  *out = j;
  return 0;
}

typedef struct header {
  jwks_alg alg;
  const char *kid; /* borrowed from the header JSON; NULL when absent */
} header;

static int check_header(json_t *h, header *out) {
  json_t *alg = json_object_get(h, "alg"), *kid = json_object_get(h, "kid");
  const char *a = json_string_value(alg);
  if (a == NULL) return alg == NULL ? JWT_ERR_MALFORMED : JWT_ERR_UNSUPPORTED;
  /* exact, case-sensitive names (RFC 7515 4.1.1): "none", "HS256", "rs256" are refused */
  if (strcmp(a, "RS256") == 0)
    out->alg = JWKS_RS256;
  else if (strcmp(a, "ES256") == 0)
    out->alg = JWKS_ES256;
  else
    return JWT_ERR_UNSUPPORTED;
  if (json_object_get(h, "crit") != NULL) return JWT_ERR_UNSUPPORTED;
  out->kid = NULL;
  if (kid != NULL) {
    out->kid = json_string_value(kid);
    if (out->kid == NULL || strlen(out->kid) > JWKS_MAX_KID) return JWT_ERR_MALFORMED;
  }
  return 0;
}

/* The signature check, with one refresh of the key set for a kid it lacks. */
static int check_signature(jwt_verifier *v, const header *h, const char *input, size_t len, const unsigned char *sig,
                           size_t sig_len) {
  jwks_set *set = NULL;
  if (jwks_cache_get(v->keys, &set) != 0) return JWT_ERR_KEYS_UNAVAILABLE;
  if (!jwks_set_has_key(set, h->kid, h->alg)) {
    jwks_set *newer = NULL;
    if (jwks_cache_refresh(v->keys, set, &newer) == 0) {
      jwks_set_free(set);
      set = newer;
    }
  }
  int rc = jwks_verify(set, h->kid, h->alg, input, len, sig, sig_len);
  jwks_set_free(set);
  switch (rc) {
  case 0: return 0;
  case JWKS_ERR_NO_KEY: return JWT_ERR_UNKNOWN_KEY;
  case JWKS_ERR_SIGNATURE: return JWT_ERR_SIGNATURE;
  case JWKS_ERR_NOMEM: return JWT_ERR_NOMEM;
  default: return JWT_ERR_INVALID;
  }
}

/* ---- claims --------------------------------------------------------------------------- */

/* A NumericDate (RFC 7519 2): an integer or a finite real, truncated to seconds. */
static bool numeric_date(json_t *j, int64_t *out) {
  if (json_is_integer(j)) {
    *out = (int64_t)json_integer_value(j);
    return true;
  }
  if (json_is_real(j)) {
    double d = json_real_value(j);
    if (!isfinite(d) || d <= -9.0e15 || d >= 9.0e15) return false;
    *out = (int64_t)floor(d);
    return true;
  }
  return false;
}

/* An optional NumericDate claim: 0 absent or good (*out set), -1 wrong type. */
static int optional_date(json_t *claims, const char *name, bool *present, int64_t *out) {
  json_t *j = json_object_get(claims, name);
  *present = j != NULL;
  if (j == NULL) return 0;
  return numeric_date(j, out) ? 0 : -1;
}

static bool audience_ok(const jwt_verifier *v, json_t *aud) {
  for (size_t i = 0; i < v->n_audiences; i++) {
    if (json_is_string(aud) && strcmp(json_string_value(aud), v->audiences[i]) == 0) return true;
    size_t k;
    json_t *a;
    json_array_foreach(aud, k, a) {
      if (json_is_string(a) && strcmp(json_string_value(a), v->audiences[i]) == 0) return true;
    }
  }
  return false;
}

static unsigned scope_bit(const char *s, size_t len) {
  for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
    if (strlen(scopes[i].name) == len && memcmp(scopes[i].name, s, len) == 0) return scopes[i].bit;
  return 0;
}

/* Scope bits of a space-separated string. */
static unsigned scope_string(const char *s) {
  unsigned bits = 0;
  while (*s) {
    while (*s == ' ') s++;
    const char *start = s;
    while (*s && *s != ' ') s++;
    if (s > start) bits |= scope_bit(start, (size_t)(s - start));
  }
  return bits;
}

/* "scope", or "scp" when it is absent: a string or an array of strings. -1 wrong type. */
static int read_scopes(json_t *claims, unsigned *out) {
  json_t *j = json_object_get(claims, "scope");
  if (j == NULL) j = json_object_get(claims, "scp");
  *out = 0;
  if (j == NULL) return 0;
  if (json_is_string(j)) {
    *out = scope_string(json_string_value(j));
    return 0;
  }
  if (!json_is_array(j)) return -1;
  size_t i;
  json_t *s;
  json_array_foreach(j, i, s) {
    if (!json_is_string(s)) return -1;
    *out |= scope_bit(json_string_value(s), json_string_length(s));
  }
  return 0;
}

static int check_claims(const jwt_verifier *v, json_t *c, jwt_claims *out) {
  const char *iss = json_string_value(json_object_get(c, "iss"));
  if (iss == NULL || strcmp(iss, v->issuer) != 0) return JWT_ERR_ISSUER;
  if (!audience_ok(v, json_object_get(c, "aud"))) return JWT_ERR_AUDIENCE;

  int64_t exp = 0, nbf = 0, iat = 0;
  bool has_nbf, has_iat;
  if (!numeric_date(json_object_get(c, "exp"), &exp)) return JWT_ERR_CLAIMS;
  if (optional_date(c, "nbf", &has_nbf, &nbf) != 0 || optional_date(c, "iat", &has_iat, &iat) != 0)
    return JWT_ERR_CLAIMS;
  int64_t now = v->clock(v->clock_ctx);
  /* compared on `now` (sane) with the skew moved over, so huge claims cannot overflow */
  if (now - v->skew_s >= exp) return JWT_ERR_EXPIRED;
  if (has_nbf && now + v->skew_s < nbf) return JWT_ERR_NOT_YET_VALID;
  if (has_iat && now + v->skew_s < iat) return JWT_ERR_NOT_YET_VALID;

  json_t *sub = json_object_get(c, "sub");
  if (sub != NULL) {
    if (!json_is_string(sub) || json_string_length(sub) > JWT_MAX_SUBJECT) return JWT_ERR_CLAIMS;
    memcpy(out->subject, json_string_value(sub), json_string_length(sub) + 1);
  }
  if (read_scopes(c, &out->scopes) != 0) return JWT_ERR_CLAIMS;
  out->expires_at = exp;
  out->issued_at = has_iat ? iat : 0;
  return 0;
}

/* ---- verification --------------------------------------------------------------------- */

int jwt_verify(jwt_verifier *v, const char *token, size_t len, jwt_claims *out) {
  memset(out, 0, sizeof *out);
  if (v == NULL || (token == NULL && len > 0)) return JWT_ERR_INVALID;
  if (len > v->max_token) return JWT_ERR_TOO_LARGE;
  const char *dot1 = len ? memchr(token, '.', len) : NULL;
  const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
  if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
    return JWT_ERR_MALFORMED; /* not three parts (a JWE has five) */
  size_t head_len = (size_t)(dot1 - token), body_len = (size_t)(dot2 - dot1 - 1);
  size_t sig_b64_len = len - (size_t)(dot2 + 1 - token);
  if (head_len == 0 || body_len == 0) return JWT_ERR_MALFORMED;

  json_t *hj = NULL, *cj = NULL;
  unsigned char *sig = NULL;
  size_t sig_len = 0;
  header h;
  int rc = decode_object(token, head_len, v->max_token, &hj);
  if (rc == 0) rc = check_header(hj, &h);
  if (rc != 0) goto done;
  if (sig_b64_len == 0) {
    rc = JWT_ERR_SIGNATURE; /* the unsecured-JWS shape, under a real alg */
    goto done;
  }
  rc = b64url_decode_alloc(dot2 + 1, sig_b64_len, MAX_SIG_BYTES, &sig, &sig_len);
  if (rc != 0) {
    rc = rc == B64URL_ERR_NOMEM ? JWT_ERR_NOMEM : rc == B64URL_ERR_SPACE ? JWT_ERR_SIGNATURE : JWT_ERR_MALFORMED;
    goto done;
  }
  rc = check_signature(v, &h, token, (size_t)(dot2 - token), sig, sig_len);
  if (rc != 0) goto done;
  rc = decode_object(dot1 + 1, body_len, v->max_token, &cj);
  if (rc != 0) goto done;
  rc = check_claims(v, cj, out);
  if (rc != 0) goto done;
  out->alg = h.alg;
  if (h.kid) memcpy(out->key_id, h.kid, strlen(h.kid) + 1);
done:
  if (rc != 0) memset(out, 0, sizeof *out);
  free(sig);
  json_decref(hj);
  json_decref(cj);
  return rc;
}

/* ---- HTTP ----------------------------------------------------------------------------- */

/* RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool b64token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~' || c == '+' || c == '/';
}

int jwt_authorize(jwt_verifier *v, const char *authorization, unsigned required_scopes, jwt_claims *out) {
  memset(out, 0, sizeof *out);
  if (v == NULL) return JWT_ERR_INVALID;
  if (authorization == NULL) return JWT_ERR_NO_TOKEN;
  const char *p = authorization;
  while (*p == ' ' || *p == '\t') p++;
  /* the scheme is case-insensitive (RFC 9110 11.1); another scheme is not our business */
  if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t' && p[6] != '\0')) return JWT_ERR_NO_TOKEN;
  p += 6;
  while (*p == ' ' || *p == '\t') p++;
  const char *token = p;
  while (b64token_char(*p)) p++;
  while (*p == '=') p++;
  size_t len = (size_t)(p - token);
  while (*p == ' ' || *p == '\t') p++;
  if (len == 0 || *p != '\0') return JWT_ERR_MALFORMED;
  if (len > v->max_token) return JWT_ERR_TOO_LARGE;
  int rc = jwt_verify(v, token, len, out);
  if (rc != 0) return rc;
  return (out->scopes & required_scopes) == required_scopes ? 0 : JWT_ERR_INSUFFICIENT_SCOPE;
}

int jwt_http_status(int err) {
  switch (err) {
  case JWT_OK: return 200;
  case JWT_ERR_INSUFFICIENT_SCOPE: return 403;
  case JWT_ERR_KEYS_UNAVAILABLE: return 503;
  case JWT_ERR_INVALID:
  case JWT_ERR_NOMEM: return 500;
  default: return err <= JWT_ERR_NO_TOKEN && err >= JWT_ERR_CLAIMS ? 401 : 500;
  }
}

const char *jwt_error_description(int err) {
  switch (err) {
  case JWT_OK: return "OK";
  case JWT_ERR_NO_TOKEN: return "Full authentication is required to access this resource";
  case JWT_ERR_MALFORMED: return "Bearer token is malformed";
  case JWT_ERR_TOO_LARGE: return "Bearer token is too large";
  case JWT_ERR_UNSUPPORTED: return "Unsupported signature algorithm or critical header";
  case JWT_ERR_UNKNOWN_KEY: return "No matching signature key";
  case JWT_ERR_SIGNATURE: return "Invalid signature";
  case JWT_ERR_ISSUER: return "The iss claim is not valid";
  case JWT_ERR_AUDIENCE: return "The aud claim is not valid";
  case JWT_ERR_EXPIRED: return "Jwt expired";
  case JWT_ERR_NOT_YET_VALID: return "Jwt used before it is valid";
  case JWT_ERR_CLAIMS: return "A required claim is missing or malformed";
  case JWT_ERR_INSUFFICIENT_SCOPE: return "The request requires higher privileges than provided by the access token.";
  case JWT_ERR_KEYS_UNAVAILABLE: return "Token signing keys are unavailable";
  default: return "Internal server error";
  }
}

int jwt_www_authenticate(int err, unsigned required_scopes, char *buf, size_t cap) {
  if (buf == NULL || cap == 0) return JWT_ERR_INVALID;
  int status = jwt_http_status(err);
  int n;
  if (status != 401 && status != 403) {
    n = snprintf(buf, cap, "%s", "");
  } else if (err == JWT_ERR_NO_TOKEN) {
    n = snprintf(buf, cap, "Bearer");
  } else if (status == 401) {
    n = snprintf(buf, cap, "Bearer error=\"invalid_token\", error_description=\"%s\"", jwt_error_description(err));
  } else {
    char names[64] = "";
    size_t used = 0;
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++) {
      if (!(required_scopes & scopes[i].bit)) continue;
      int w = snprintf(names + used, sizeof names - used, "%s%s", used ? " " : "", scopes[i].name);
      assert(w > 0 && (size_t)w < sizeof names - used); /* the three names fit */
      used += (size_t)w;
    }
    n = snprintf(buf, cap, "Bearer error=\"insufficient_scope\", error_description=\"%s\", scope=\"%s\"",
                 jwt_error_description(err), names);
  }
  if (n < 0 || (size_t)n >= cap) {
    buf[0] = '\0';
    return JWT_ERR_INVALID;
  }
  return n;
}
