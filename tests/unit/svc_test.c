/* Unit tests of lib/svc's routes (svc_routes.c) on a real server on an ephemeral loopback
 * port, driven with libcurl: the DELETE ?id= handler (the contract's 400s, the deleted ids
 * in order, the service's error reply) and the actuator routes (health with the service's
 * components, liveness, readiness turning OUT_OF_SERVICE, prometheus with the service's
 * metrics after the server's). No database: the pool's parts are left out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "svc/svc.h"

static unsigned port;

static resp call(const char *method, const char *path) { return http_client_call(port, method, path, NULL, 0, NULL); }

/* The "rows": ids below 100 exist; id 13 makes the deletion fail. */
static char last_request_id[80];
static int del(void *ctx, const int32_t *ids, size_t n, const char *request_id, const trace_ctx *trace, int32_t *out,
               size_t *nout) {
  (void)ctx, (void)trace;
  snprintf(last_request_id, sizeof last_request_id, "%s", request_id ? request_id : "");
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (ids[i] == 13) return -7;
    if (ids[i] < 100) out[k++] = ids[i];
  }
  *nout = k;
  return 0;
}
static void reply_error(http_req *r, int rc) { http_reply_errorf(r, 503, "failed %d", rc); }
static void h_delete(http_req *r, void *ctx) {
  static const svc_delete d = {del, reply_error};
  svc_delete_ids(r, ctx, &d);
}

static void components(json_t *c, void *ctx) { health_component(c, "thing", *(int *)ctx ? "DOWN" : "UP", NULL); }
static char *metrics(void *ctx) {
  (void)ctx;
  return strdup("# TYPE my_total counter\nmy_total 7\n");
}

static http_server *srv;
static health_lifecycle life;
static int thing_down;
static svc_actuator act;

static int setup(void **state) {
  (void)state;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  http_server_opts o = {.port = 0, .bind_addr = "127.0.0.1", .shutdown_grace_ms = 5000};
  srv = http_server_new(&o, NULL);
  assert_non_null(srv);
  act = (svc_actuator){.srv = srv, .life = &life, .components = components, .metrics = metrics, .ctx = &thing_down};
  assert_int_equal(svc_actuator_routes(srv, &act), HTTP_OK);
  assert_int_equal(http_server_route(srv, "DELETE", "/things", h_delete, NULL, 0), HTTP_OK);
  assert_int_equal(http_server_start(srv), HTTP_OK);
  port = http_server_port(srv);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  http_server_free(srv);
  curl_global_cleanup();
  return 0;
}

static void delete_ids(void **state) {
  (void)state;
  resp r = call("DELETE", "/things?id=5,200,3,5");
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"ids\":[5,3]}"); /* duplicates dropped, missing ones left out, order kept */
  assert_true(strlen(last_request_id) > 0);       /* the request id reaches the deletion */
  r = call("DELETE", "/things");
  assert_int_equal(r.status, 400);
  assert_non_null(strstr(r.body, "Required parameter 'id' is missing"));
  r = call("DELETE", "/things?id=1,x");
  assert_int_equal(r.status, 400);
  assert_non_null(strstr(r.body, "Invalid ID format: 'x'"));
  r = call("DELETE", "/things?id=1,13");
  assert_int_equal(r.status, 503);
  assert_non_null(strstr(r.body, "failed -7"));
}

static void health_routes(void **state) {
  (void)state;
  resp r = call("GET", "/actuator/health");
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"thing\":{\"status\":\"UP\"}"));
  assert_null(strstr(r.body, "\"db\"")); /* no pool, no db component */
  thing_down = 1;
  r = call("GET", "/actuator/health");
  assert_int_equal(r.status, 503);
  thing_down = 0;
  r = call("GET", "/actuator/health/liveness");
  assert_int_equal(r.status, 200);
  r = call("GET", "/actuator/health/readiness");
  assert_int_equal(r.status, 200);
  health_lifecycle_drain(&life);
  r = call("GET", "/actuator/health/readiness");
  assert_int_equal(r.status, 503);
  assert_non_null(strstr(r.body, "OUT_OF_SERVICE"));
}

static void prometheus_route(void **state) {
  (void)state;
  resp r = call("GET", "/actuator/prometheus");
  assert_int_equal(r.status, 200);
  char *mine = strstr(r.body, "my_total 7\n");
  char *server = strstr(r.body, "http_server_requests");
  assert_non_null(mine);
  assert_non_null(server);
  assert_true(server < mine); /* the server's first, the service's after */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(delete_ids),
      cmocka_unit_test(health_routes),
      cmocka_unit_test(prometheus_route),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
