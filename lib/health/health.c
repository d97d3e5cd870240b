/* health: see health.h. */
#include "health.h"

#include <string.h>

void health_component(json_t *components, const char *name, const char *status, json_t *details) {
  json_t *c = json_pack("{s:s}", "status", status);
  if (!c) {
    json_decref(details);
    return;
  }
  if (details) json_object_set_new(c, "details", details);
  json_object_set_new(components, name, c);
}

void health_db(json_t *components, bool up, const char *error) {
  health_component(components, "db", up ? "UP" : "DOWN",
                   up ? json_pack("{s:s}", "database", "PostgreSQL")
                      : json_pack("{s:s, s:s}", "database", "PostgreSQL", "error", error ? error : "unavailable"));
}

void health_reply(http_req *r, json_t *components) {
  const char *overall = "UP";
  const char *key;
  json_t *c;
  json_object_foreach(components, key, c) {
    const char *st = json_string_value(json_object_get(c, "status"));
    if (st && strcmp(st, "DOWN") == 0) overall = "DOWN";
  }
  json_t *body = json_pack("{s:s, s:o}", "status", overall, "components", components);
  http_reply_json(r, strcmp(overall, "DOWN") == 0 ? 503 : 200, body);
}

void health_lifecycle_drain(health_lifecycle *l) { atomic_store(&l->draining, true); }

bool health_lifecycle_draining(const health_lifecycle *l) { return atomic_load(&l->draining); }

void health_readiness(http_req *r, void *ctx) {
  bool out = health_lifecycle_draining(ctx);
  http_reply_json(r, out ? 503 : 200, json_pack("{s:s}", "status", out ? "OUT_OF_SERVICE" : "UP"));
}

void health_liveness(http_req *r, void *ctx) {
  (void)ctx;
  http_reply_json(r, 200, json_pack("{s:s}", "status", "UP"));
}
