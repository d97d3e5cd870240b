/* auth: see auth.h. */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwkshttp/jwkshttp.h"
#include "jwks/jwks.h"

/* What a guarded route remembers: its scopes and the real handler. */
typedef struct guard {
  auth *a;
  unsigned scopes;
  http_handler h;
  void *ctx;
  struct guard *next;
} guard;

struct auth {
  log_sink *lg;
  char issuer[512];
  jwkshttp *fetcher;
  jwks_cache *keys;
  jwt_verifier *verifier;
  guard *guards;
};

#define ENV_ISSUER "SPRING_SECURITY_OAUTH2_RESOURCESERVER_JWT_ISSUER_URI"
#define ENV_JWKS "SPRING_SECURITY_OAUTH2_RESOURCESERVER_JWT_JWK_SET_URI"
#define ENV_AUD "SPRING_SECURITY_OAUTH2_RESOURCESERVER_JWT_AUDIENCES"

void auth_config_read(auth_config *c, config_err *err) {
  c->issuer = config_str(ENV_ISSUER, "");
  c->jwk_set_uri = config_str(ENV_JWKS, "");
  c->audiences = config_str(ENV_AUD, "fermata");
  c->clock_skew_s =
      (long)(config_duration_ms("FERMATA_AUTH_CLOCK_SKEW", 60000, 0, JWT_MAX_SKEW_S * 1000LL, err) / 1000);
  c->jwks_min_refresh_s =
      (long)(config_duration_ms("FERMATA_AUTH_JWKS_MIN_REFRESH", 30000, 1000, 3600 * 1000LL, err) / 1000);
  if (err && !err->msg[0] && c->issuer[0] && !c->jwk_set_uri[0])
    snprintf(err->msg, sizeof err->msg, "%s is set but %s is not (no discovery: name the JWK Set)", ENV_ISSUER,
             ENV_JWKS);
}

/* Splits the comma-separated audiences into aud[] (pointers into buf). */
static size_t split_audiences(const char *list, char *buf, size_t cap, const char **aud, size_t max) {
  snprintf(buf, cap, "%s", list);
  size_t n = 0;
  for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
    if (n == max) return max + 1;
    aud[n++] = t;
  }
  return n;
}

int auth_new(const auth_config *cfg, log_sink *lg, auth **out) {
  *out = NULL;
  if (cfg->issuer == NULL || cfg->issuer[0] == '\0') return 0;
  auth *a = calloc(1, sizeof *a);
  if (a == NULL) return -1;
  a->lg = lg;
  snprintf(a->issuer, sizeof a->issuer, "%s", cfg->issuer);
  char abuf[512];
  const char *aud[JWT_MAX_AUDIENCES];
  size_t naud = split_audiences(cfg->audiences ? cfg->audiences : "", abuf, sizeof abuf, aud, JWT_MAX_AUDIENCES);
  const char *why = NULL;
  jwkshttp_config hc = {.url = cfg->jwk_set_uri, .user_agent = "fermata"};
  jwks_cache_config cc = {.fetch = jwkshttp_fetch, .min_refresh_interval_s = cfg->jwks_min_refresh_s};
  jwt_config jc = {.issuer = cfg->issuer,
                   .audiences = aud,
                   .n_audiences = naud,
                   .clock_skew_s = cfg->clock_skew_s ? cfg->clock_skew_s : JWT_NO_SKEW};
  if (naud == 0 || naud > JWT_MAX_AUDIENCES)
    why = "the audiences list is empty or too long";
  else if (jwkshttp_new(&hc, &a->fetcher) != 0)
    why = "the JWK Set URI is not an http(s) URL";
  else if ((cc.fetch_ctx = a->fetcher, jwks_cache_new(&cc, &a->keys)) != 0)
    why = "the key cache could not be made";
  else if (jwt_verifier_new(&jc, a->keys, &a->verifier) != 0)
    why = "the issuer or the audiences are unusable";
  if (why) {
    log_event(lg, LOG_LEVEL_ERROR, "bad authentication configuration", "detail=\"%s\"", why);
    auth_free(a);
    return -1;
  }
  *out = a;
  return 0;
}

void auth_free(auth *a) {
  if (a == NULL) return;
  for (guard *g = a->guards, *next; g; g = next) {
    next = g->next;
    free(g);
  }
  jwt_verifier_free(a->verifier);
  jwks_cache_free(a->keys);
  jwkshttp_free(a->fetcher);
  free(a);
}

void auth_log_mode(const auth *a, log_sink *lg, const char *service) {
  char q[600];
  if (a)
    log_event(lg, LOG_LEVEL_INFO, "authentication on: Bearer JWTs", "service=%s issuer=%s", service,
              log_quote(q, sizeof q, a->issuer));
  else
    log_event(lg, LOG_LEVEL_WARN, "AUTHENTICATION IS OFF: every route of this service is open to anyone who reaches it",
              "service=%s hint=\"set " ENV_ISSUER " and " ENV_JWKS "\"", service);
}

static int http_route_sized(http_server *s, const char *method, const char *pattern, http_handler h, void *ctx,
                            uint64_t max_body) {
  return http_server_route(s, method, pattern, h, ctx, (size_t)max_body);
}

static void guarded(http_req *r, void *vg) {
  guard *g = vg;
  jwt_claims claims;
  int rc = jwt_authorize(g->a->verifier, http_req_header(r, "Authorization"), g->scopes, &claims);
  if (rc == JWT_OK) {
    g->h(r, g->ctx);
    return;
  }
  int status = jwt_http_status(rc);
  char challenge[256];
  if (jwt_www_authenticate(rc, g->scopes, challenge, sizeof challenge) > 0)
    http_reply_header(r, "WWW-Authenticate", challenge);
  if (status >= 500) {
    log_event(g->a->lg, LOG_LEVEL_WARN, "cannot verify tokens", "detail=\"%s\" request_id=%s",
              jwt_error_description(rc), http_req_id(r));
    http_reply_error(r, 503, "Authentication is temporarily unavailable, please retry later");
    return;
  }
  http_reply_error(r, (unsigned)status, jwt_error_description(rc));
}

static int add(http_server *srv, auth *a, const char *method, const char *pattern, unsigned scopes, http_handler h,
               void *ctx, uint64_t max_body, bool stream) {
  int (*route)(http_server *, const char *, const char *, http_handler, void *, uint64_t) =
      stream ? http_server_route_stream : http_route_sized;
  if (a == NULL || scopes == AUTH_OPEN) return route(srv, method, pattern, h, ctx, max_body);
  guard *g = calloc(1, sizeof *g);
  if (g == NULL) return HTTP_ERR_NOMEM;
  *g = (guard){.a = a, .scopes = scopes, .h = h, .ctx = ctx, .next = a->guards};
  int rc = route(srv, method, pattern, guarded, g, max_body);
  if (rc != HTTP_OK) {
    free(g);
    return rc;
  }
  a->guards = g;
  return HTTP_OK;
}

int auth_route(http_server *srv, auth *a, const char *method, const char *pattern, unsigned scopes, http_handler h,
               void *ctx, size_t max_body) {
  return add(srv, a, method, pattern, scopes, h, ctx, max_body, false);
}

int auth_route_stream(http_server *srv, auth *a, const char *method, const char *pattern, unsigned scopes,
                      http_handler h, void *ctx, uint64_t max_body) {
  return add(srv, a, method, pattern, scopes, h, ctx, max_body, true);
}
