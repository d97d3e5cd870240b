/* svc_routes: see svc.h ("routes every service has"). */
#include "svc.h"

#include "ids/ids.h"

static void health(http_req *r, void *vact) {
  svc_actuator *act = vact;
  json_t *components = json_object();
  if (act->db) {
    int rc = db_ping(act->db);
    health_db(components, rc == DB_OK, db_strerror(rc));
  }
  if (act->components) act->components(components, act->ctx);
  health_reply(r, components);
}

static void prometheus(http_req *r, void *vact) {
  svc_actuator *act = vact;
  char *text = http_server_metrics(act->srv);
  if (act->db) text = http_metrics_join(text, db_pool_prometheus(act->db, act->pool_name));
  if (act->metrics) text = http_metrics_join(text, act->metrics(act->ctx));
  http_reply_metrics(r, text);
}

int svc_actuator_routes(http_server *srv, svc_actuator *act) {
  int rc = HTTP_OK;
  rc |= http_server_route(srv, "GET", "/actuator/health", health, act, 0);
  rc |= http_server_route(srv, "GET", "/actuator/health/liveness", health_liveness, NULL, 0);
  rc |= http_server_route(srv, "GET", "/actuator/health/readiness", health_readiness, act->life, 0);
  rc |= http_server_route(srv, "GET", "/actuator/prometheus", prometheus, act, 0);
  return rc;
}

int svc_actuator_internal_routes(http_server *srv, svc_actuator *act) {
  return http_server_route(srv, "GET", "/actuator/health", health, act, 0);
}

void svc_delete_ids(http_req *r, void *ctx, const svc_delete *d) {
  ids_list ids;
  char msg[512];
  if (ids_csv(http_req_query(r, "id"), &ids, msg, sizeof msg) != 0) {
    http_reply_error(r, 400, msg);
    return;
  }
  size_t k = 0;
  trace_ctx trace;
  http_req_trace(r, &trace);
  int rc = d->del(ctx, ids.ids, ids.n, http_req_id(r), &trace, ids.ids, &k); /* the deleted ones, in place */
  if (rc != 0)
    d->reply_error(r, rc);
  else
    http_reply_ids(r, ids.ids, k);
  ids_list_free(&ids);
}
