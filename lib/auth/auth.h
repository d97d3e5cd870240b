/*
 * auth: the services' OAuth 2.0 resource-server guard, as Spring Security's
 * oauth2ResourceServer().jwt() does it: a route registered with auth_route() runs its
 * handler only for a request whose Bearer token (lib/jwt, keys from the issuer's JWK Set
 * through lib/jwkshttp and lib/jwks) grants every scope the route asks for. Otherwise the
 * answer is the contract's error shape with RFC 6750's WWW-Authenticate header:
 *   401 {"errorMessage":"Full authentication is required ...","errorCode":"401"}
 *       WWW-Authenticate: Bearer            (no token) or Bearer error="invalid_token", ...
 *   403 ... WWW-Authenticate: Bearer error="insufficient_scope", ..., scope="fermata.write"
 *   503 while no key set could be fetched from the issuer yet (it is not the client's fault)
 * The handler is not run and the request body is not read: a refused request changes
 * nothing.
 *
 * Open mode. With no issuer configured, auth_new() gives NULL and auth_route() registers
 * the handler as it is: the default of `make run`, so the course's API suites run
 * unchanged. The service then logs one loud line saying so (auth_log_mode).
 *
 * Configuration (auth_config_read, called by main), Spring's property names as environment
 * variables:
 *   SPRING_SECURITY_OAUTH2_RESOURCESERVER_JWT_ISSUER_URI   the issuer: turns auth on
 *   SPRING_SECURITY_OAUTH2_RESOURCESERVER_JWT_JWK_SET_URI  its JWK Set (required with it)
 *   SPRING_SECURITY_OAUTH2_RESOURCESERVER_JWT_AUDIENCES    accepted audiences ("fermata")
 *   FERMATA_AUTH_CLOCK_SKEW      exp/nbf tolerance (60s, at most 300s)
 *   FERMATA_AUTH_JWKS_MIN_REFRESH  least time between two fetches of the set (30s): a
 *                                token with an unknown kid makes the cache refetch, so
 *                                this bounds what forged kids can make us fetch
 *
 * Ownership and threads: the auth owns its verifier, key cache, fetcher and the small
 * records behind the routes it registered; free it after the servers using them stopped.
 * Handlers run on any number of threads at once (the verifier is thread-safe).
 */
#ifndef FERMATA_AUTH_H
#define FERMATA_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "http/http.h"
#include "jwt/jwt.h"
#include "log/log.h"

typedef struct auth auth;

typedef struct auth_config {
  const char *issuer; /* NULL or "": open mode */
  const char *jwk_set_uri;
  const char *audiences; /* comma-separated */
  long clock_skew_s;
  long jwks_min_refresh_s;
} auth_config;

/* Fills c from the environment; bad values go to err (the service refuses to start). */
void auth_config_read(auth_config *c, config_err *err);

/* 0 and *out (NULL in open mode), or -1 when the configuration is unusable (no JWK Set
 * URI with an issuer, a URI that is not http(s), too many audiences): logged. Fetches
 * nothing yet: the first request does, so a service starts while its issuer is down. */
int auth_new(const auth_config *cfg, log_sink *lg, auth **out);
void auth_free(auth *a); /* NULL ok */

/* Logs the mode once at start: who issues the tokens, or a loud warning that every route
 * of this service is open. */
void auth_log_mode(const auth *a, log_sink *lg, const char *service);

/* http_server_route, guarded: the handler runs only with a token granting `scopes` (a mask
 * of JWT_SCOPE_*; 0 means any valid token). With a NULL auth, or scopes AUTH_OPEN, the
 * route is registered unguarded. Returns HTTP_OK or an HTTP_ERR_* code. */
#define AUTH_OPEN (~0u)
int auth_route(http_server *srv, auth *a, const char *method, const char *pattern, unsigned scopes, http_handler h,
               void *ctx, size_t max_body);
/* auth_route for a route whose handler reads the body as it arrives
 * (http_server_route_stream): the token is checked before the handler reads a byte. */
int auth_route_stream(http_server *srv, auth *a, const char *method, const char *pattern, unsigned scopes,
                      http_handler h, void *ctx, uint64_t max_body);

#endif
