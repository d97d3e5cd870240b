/* actuator: see actuator.h. */
#include "actuator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breakerview/breakerview.h"
#include "health/health.h"

#define JSON_TYPE "application/json"

/* breakerview hands back malloc'd bodies; NULL means it ran out of memory. Its error
 * bodies ({"message": ...}) are turned into the contract's error shape here, so every
 * error this service answers looks the same. */
static void reply_view(http_req *r, int status, char *body) {
  if (!body) {
    http_reply_internal(r, "circuit breaker view rendering failed");
    return;
  }
  if (status >= 400) {
    json_t *v = json_loads(body, 0, NULL);
    const char *msg = json_string_value(json_object_get(v, "message"));
    http_reply_error(r, (unsigned)status, msg ? msg : "Request failed");
    json_decref(v);
    free(body);
    return;
  }
  http_reply_buffer(r, (unsigned)status, JSON_TYPE, body, strlen(body), free);
}

static void get_breakers(http_req *r, void *vctx) {
  actuator_breakers *ab = vctx;
  reply_view(r, 200, breakerview_circuitbreakers_json(ab->reg));
}

static void post_breaker(http_req *r, void *vctx) {
  actuator_breakers *ab = vctx;
  size_t len;
  const char *raw = http_req_body(r, &len);
  /* the request body is a length-counted buffer; breakerview wants a C string */
  char *body = strndup(raw, len);
  if (!body) {
    http_reply_internal(r, "out of memory copying the request body");
    return;
  }
  int status = 500;
  char *out = breakerview_update_state(ab->reg, http_req_param(r, "name"), body, &status);
  free(body);
  if (out && status == 200)
    log_event(http_req_log(r), LOG_LEVEL_WARN, "circuit breaker state changed by request", "name=%s request_id=%s",
              http_req_param(r, "name"), http_req_id(r));
  reply_view(r, status, out);
}

static void events(http_req *r, actuator_breakers *ab, const char *name, const char *type) {
  int status = 500;
  char *out = breakerview_events_json(ab->reg, name, type, &status);
  reply_view(r, status, out);
}

static void get_events(http_req *r, void *vctx) { events(r, vctx, NULL, NULL); }

static void get_events_of(http_req *r, void *vctx) { events(r, vctx, http_req_param(r, "name"), NULL); }

static void get_events_of_type(http_req *r, void *vctx) {
  events(r, vctx, http_req_param(r, "name"), http_req_param(r, "eventType"));
}

int actuator_routes(http_server *srv, actuator_breakers *ab, auth *a) {
  int rc = HTTP_OK;
  rc |= http_server_route(srv, "GET", "/actuator/circuitbreakers", get_breakers, ab, 0);
  /* a state change (FORCE_OPEN, DISABLE, ...) is an operator's act: fermata.admin */
  rc |= auth_route(srv, a, "POST", "/actuator/circuitbreakers/{name}", JWT_SCOPE_ADMIN, post_breaker, ab, 4096);
  rc |= http_server_route(srv, "GET", "/actuator/circuitbreakerevents", get_events, ab, 0);
  rc |= http_server_route(srv, "GET", "/actuator/circuitbreakerevents/{name}", get_events_of, ab, 0);
  rc |= http_server_route(srv, "GET", "/actuator/circuitbreakerevents/{name}/{eventType}", get_events_of_type, ab, 0);
  return rc;
}

/* Rank of a status for the aggregate, worst first. Spring's default aggregator only knows
 * DOWN, OUT_OF_SERVICE, UP, UNKNOWN and drops other codes, so an open breaker alone would
 * aggregate to UNKNOWN; we rank the circuit codes as Spring users configure it
 * (management.endpoint.health.status.order) so the component's status shows the worst
 * breaker. */
static int rank(const char *status) {
  static const char *const order[] = {"DOWN", "OUT_OF_SERVICE", "CIRCUIT_OPEN", "CIRCUIT_HALF_OPEN", "UP", "UNKNOWN"};
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
    if (strcmp(status, order[i]) == 0) return (int)i;
  return (int)(sizeof order / sizeof order[0]);
}

void actuator_health_component(json_t *components, const actuator_breakers *ab) {
  if (!ab->register_health || breaker_registry_count(ab->reg) == 0) return;
  json_t *details = json_object();
  if (!details) return;
  const char *worst = "UNKNOWN";
  for (size_t i = 0;; i++) {
    breaker *b = breaker_registry_at(ab->reg, i);
    if (!b) break;
    char *text = breakerview_health_json(b, ab->open_is_down, NULL);
    json_t *one = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (!one) { /* out of memory: say so rather than show a breaker as missing */
      one = json_pack("{s:s}", "status", "UNKNOWN");
      if (!one) continue;
    }
    const char *st = json_string_value(json_object_get(one, "status"));
    if (st && rank(st) < rank(worst)) worst = st;
    /* `worst` may point into `one`, which `details` keeps alive until the end */
    json_object_set_new(details, breaker_name(b), one);
  }
  char status[32];
  snprintf(status, sizeof status, "%s", worst); /* copied before details can go away */
  health_component(components, "circuitBreakers", status, details);
}

char *actuator_prometheus(const actuator_breakers *ab) { return breakerview_prometheus(ab->reg); }
