/* Unit tests of lib/svc's start-up (svc_app.c) for tracing: the sampling setting checked,
 * a tracer always made, the Zipkin exporter only with an endpoint, SERVER spans sent to it,
 * and its counters on /actuator/prometheus (a collector that is not there: dropped and
 * counted, the request unharmed). No database, no auth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_client.h"
#include "svc/svc.h"

static const svc_app_opts opts = {.name = "unit", .default_port = 0};

static void clear_env(void) {
  unsetenv("MANAGEMENT_TRACING_ENABLED");
  unsetenv("MANAGEMENT_TRACING_SAMPLING_PROBABILITY");
  unsetenv("MANAGEMENT_ZIPKIN_TRACING_ENDPOINT");
}

static void bad_sampling_is_a_bad_setting(void **state) {
  (void)state;
  const char *bad[] = {"1.5", "-1", "x", "0.5s"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    setenv("MANAGEMENT_TRACING_SAMPLING_PROBABILITY", bad[i], 1);
    svc_app a;
    svc_app_init(&a, &opts);
    assert_non_null(strstr(a.err.msg, "MANAGEMENT_TRACING_SAMPLING_PROBABILITY"));
  }
  setenv("MANAGEMENT_TRACING_SAMPLING_PROBABILITY", "0.25", 1);
  svc_app a;
  svc_app_init(&a, &opts);
  assert_string_equal(a.err.msg, "");
  assert_true(a.sampling > 0.24 && a.sampling < 0.26);
  setenv("MANAGEMENT_TRACING_SAMPLING_PROBABILITY", "", 1); /* empty = unset, as every setting */
  svc_app_init(&a, &opts);
  assert_true(a.sampling > 0.09 && a.sampling < 0.11); /* Spring Boot's default */
  clear_env();
  svc_app_init(&a, &opts);
  assert_true(a.sampling > 0.09 && a.sampling < 0.11);
  assert_string_equal(a.zipkin_url, "");
}

static unsigned dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in s = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(fd, (struct sockaddr *)&s, sizeof s);
  socklen_t sl = sizeof s;
  getsockname(fd, (struct sockaddr *)&s, &sl);
  close(fd);
  return ntohs(s.sin_port);
}

static void h_ok(http_req *r, void *ctx) {
  (void)ctx;
  http_reply_json(r, 200, json_pack("{s:s}", "trace", http_req_trace_id(r)));
}

/* Starts an app with the given endpoint ("" = none), serves GET /ok and the actuator. */
static void run_app(svc_app *a, svc_actuator *act, const char *endpoint) {
  if (endpoint[0]) setenv("MANAGEMENT_ZIPKIN_TRACING_ENDPOINT", endpoint, 1);
  setenv("MANAGEMENT_TRACING_SAMPLING_PROBABILITY", "1", 1);
  setenv("SERVER_PORT", "0", 1);
  svc_app_init(a, &opts);
  assert_int_equal(svc_app_open_log(a), 0);
  assert_int_equal(svc_app_open(a), 0);
  assert_non_null(a->tracer);
  assert_non_null(a->srv);
  *act = (svc_actuator){.srv = a->srv, .life = &a->life};
  assert_int_equal(http_server_route(a->srv, "GET", "/ok", h_ok, NULL, 0), HTTP_OK);
  assert_int_equal(svc_actuator_routes(a->srv, act), HTTP_OK);
  assert_int_equal(svc_app_listen(a), 0);
  clear_env();
  unsetenv("SERVER_PORT");
}

static void exporter_only_with_an_endpoint(void **state) {
  (void)state;
  svc_app a;
  svc_actuator act;
  run_app(&a, &act, "");
  assert_null(a.zipkin);
  unsigned port = http_server_port(a.srv);
  resp r = http_client_call(port, "GET", "/ok", NULL, 0, NULL);
  assert_int_equal(r.status, 200);
  assert_int_equal(strlen(r.body), strlen("{\"trace\":\"\"}") + 32); /* ids made and logged all the same */
  r = http_client_call(port, "GET", "/actuator/prometheus", NULL, 0, NULL);
  assert_null(strstr(r.body, "fermata_tracing"));
  svc_app_stop_http(&a);
  svc_app_close(&a);

  char url[96];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/api/v2/spans", dead_port());
  run_app(&a, &act, url);
  assert_non_null(a.zipkin);
  port = http_server_port(a.srv);
  r = http_client_call(port, "GET", "/ok", NULL, 0, NULL);
  assert_int_equal(r.status, 200);
  int dropped = 0;
  for (int i = 0; i < 100 && !dropped; i++) { /* the exporter tries once a second */
    usleep(50000);
    r = http_client_call(port, "GET", "/actuator/prometheus", NULL, 0, NULL);
    dropped = strstr(r.body, "fermata_tracing_spans_dropped_total{reason=\"export_failed\"} 1\n") != NULL;
  }
  assert_true(dropped);
  assert_non_null(strstr(r.body, "fermata_tracing_spans_exported_total 0\n"));
  assert_non_null(strstr(r.body, "http_server_requests_seconds_count")); /* the server's metrics still first */
  svc_app_stop_http(&a);
  svc_app_close(&a);
}

static void disabled_means_no_tracer(void **state) {
  (void)state;
  setenv("MANAGEMENT_TRACING_ENABLED", "maybe", 1);
  svc_app a;
  svc_app_init(&a, &opts);
  assert_non_null(strstr(a.err.msg, "MANAGEMENT_TRACING_ENABLED"));
  setenv("MANAGEMENT_TRACING_ENABLED", "false", 1);
  setenv("MANAGEMENT_ZIPKIN_TRACING_ENDPOINT", "http://127.0.0.1:9/api/v2/spans", 1);
  setenv("SERVER_PORT", "0", 1);
  svc_app_init(&a, &opts);
  assert_string_equal(a.err.msg, "");
  assert_int_equal(svc_app_open_log(&a), 0);
  assert_int_equal(svc_app_open(&a), 0);
  assert_null(a.tracer);
  assert_null(a.zipkin);
  assert_non_null(a.srv);
  svc_app_close(&a);
  clear_env();
  unsetenv("SERVER_PORT");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bad_sampling_is_a_bad_setting),
      cmocka_unit_test(exporter_only_with_an_endpoint),
      cmocka_unit_test(disabled_means_no_tracer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
