/* jwkshttp: one GET per fetch on a fresh curl easy handle. The body (lib/capbuf) grows up
 * to the cap (a write past it stops the transfer); Cache-Control lines are collected by
 * the header callback, restarting at each status line, and parsed once the answer is in. */
#include "jwkshttp.h"

#include "capbuf/capbuf.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct jwkshttp {
  char *url;
  char *user_agent;
  long connect_timeout_ms, timeout_ms;
  size_t max_bytes;
};

static bool printable(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s <= ' ' || (unsigned char)*s == 0x7f) return false;
  return true;
}

int jwkshttp_new(const jwkshttp_config *cfg, jwkshttp **out) {
  *out = NULL;
  if (cfg == NULL || cfg->url == NULL || !printable(cfg->url)) return JWKS_ERR_INVALID;
  if (strncasecmp(cfg->url, "http://", 7) != 0 && strncasecmp(cfg->url, "https://", 8) != 0) return JWKS_ERR_INVALID;
  if (cfg->connect_timeout_ms < 0 || cfg->timeout_ms < 0 || cfg->max_bytes > JWKS_MAX_DOC_BYTES)
    return JWKS_ERR_INVALID;
  const char *ua = cfg->user_agent ? cfg->user_agent : "fermata-jwks";
  if (strpbrk(ua, "\r\n") != NULL) return JWKS_ERR_INVALID;
  jwkshttp *h = calloc(1, sizeof *h);
  if (h == NULL) return JWKS_ERR_NOMEM;
  h->url = strdup(cfg->url);
  h->user_agent = strdup(ua);
  if (h->url == NULL || h->user_agent == NULL) {
    jwkshttp_free(h);
    return JWKS_ERR_NOMEM;
  }
  h->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 2000;
  h->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
  h->max_bytes = cfg->max_bytes ? cfg->max_bytes : JWKS_MAX_DOC_BYTES;
  *out = h;
  return 0;
}

void jwkshttp_free(jwkshttp *h) {
  if (h == NULL) return;
  free(h->url);
  free(h->user_agent);
  free(h);
}

/* ---- Cache-Control -------------------------------------------------------------------- */

static const char *skip_ows(const char *p) {
  while (*p == ' ' || *p == '\t') p++;
  return p;
}

/* Past the current directive's value, at the ',' that ends it or at the end. */
static const char *skip_directive(const char *p) {
  bool quoted = false;
  for (; *p && (quoted || *p != ','); p++) {
    if (quoted && *p == '\\' && p[1])
      p++;
    else if (*p == '"')
      quoted = !quoted;
  }
  return p;
}

static bool is_directive(const char *p, size_t len, const char *name) {
  return len == strlen(name) && strncasecmp(p, name, len) == 0;
}

/* Parses "=N" or "=\"N\"" at p; -1 when malformed. */
static long parse_seconds(const char *p) {
  if (*p++ != '=') return -1;
  bool quoted = *p == '"';
  if (quoted) p++;
  if (*p < '0' || *p > '9') return -1;
  long v = 0;
  for (; *p >= '0' && *p <= '9'; p++) v = v > (LONG_MAX - 9) / 10 ? LONG_MAX : v * 10 + (*p - '0');
  if (quoted && *p++ != '"') return -1;
  p = skip_ows(p);
  return *p == '\0' || *p == ',' ? v : -1;
}

long jwkshttp_max_age(const char *cache_control) {
  if (cache_control == NULL) return -1;
  long max_age = -1;
  bool found = false, stale = false;
  const char *p = cache_control;
  while (*p) {
    p = skip_ows(p);
    const char *name = p;
    while (*p && *p != '=' && *p != ',' && *p != ' ' && *p != '\t') p++;
    size_t len = (size_t)(p - name);
    if (is_directive(name, len, "no-cache") || is_directive(name, len, "no-store")) {
      stale = true;
    } else if (is_directive(name, len, "max-age") && !found) {
      found = true;
      max_age = parse_seconds(skip_ows(p));
      if (max_age < 0) stale = true;
    }
    p = skip_directive(p);
    if (*p == ',') p++;
  }
  if (stale) return 0;
  return found ? max_age : -1;
}

/* ---- fetch ---------------------------------------------------------------------------- */

typedef struct answer {
  capbuf body; /* capped at max_bytes (lib/capbuf) */
  bool nomem;
  char cache_control[1024];
} answer;

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  answer *a = ud;
  size_t len = size * n;
  int rc = capbuf_append(&a->body, data, len);
  if (rc == CAPBUF_ERR_NOMEM) a->nomem = true;
  return rc == CAPBUF_OK ? len : 0; /* over the cap: stops the transfer */
}

/* Collects the values of the last answer's Cache-Control lines, comma-joined. */
static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  answer *a = ud;
  size_t len = size * n;
  static const char name[] = "cache-control:";
  if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
    a->cache_control[0] = '\0'; /* a new answer (after a 1xx) */
  } else if (len > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
    size_t used = strlen(a->cache_control);
    size_t vlen = len - (sizeof name - 1);
    const char *v = data + sizeof name - 1;
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n')) vlen--;
    /* one that does not fit is dropped whole rather than cut into another meaning */
    if (used + vlen + 2 < sizeof a->cache_control) {
      if (used > 0) a->cache_control[used++] = ',';
      memcpy(a->cache_control + used, v, vlen);
      a->cache_control[used + vlen] = '\0';
    }
  }
  return len;
}

int jwkshttp_fetch(void *ctx, jwks_fetched *out) {
  jwkshttp *h = ctx;
  *out = (jwks_fetched){.body = NULL, .len = 0, .max_age_s = -1};
  answer a = {.body = capbuf_make(h->max_bytes)};
  CURL *curl = curl_easy_init();
  struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/jwk-set+json, application/json");
  int rc = JWKS_ERR_NOMEM;
  if (curl == NULL || headers == NULL) goto fail;
  curl_easy_setopt(curl, CURLOPT_URL, h->url);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, h->timeout_ms);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, h->user_agent);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &a);
  CURLcode cc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (a.nomem) goto fail;
  rc = JWKS_ERR_FETCH;
  if (cc != CURLE_OK || status != 200) goto fail;
  if (a.body.buf == NULL) goto fail; /* an empty body is no JWK Set */
  out->len = a.body.len;
  out->body = capbuf_take(&a.body);
  out->max_age_s = jwkshttp_max_age(a.cache_control[0] ? a.cache_control : NULL);
  rc = 0;
fail:
  capbuf_free(&a.body);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return rc;
}
