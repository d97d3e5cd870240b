/* http_trace_test: lib/http's SERVER spans: the incoming context continued (traceparent,
 * B3) or a trace started, name and tags, error on 5xx, none for the actuator, the handler's
 * view of the context, and trace_id= in the access log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/http.h"
#include "http_client.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static trace_span spans[16];
static int nspans;

static void capture(void *ud, const trace_span *s) {
  (void)ud;
  pthread_mutex_lock(&mu);
  if (nspans < 16) spans[nspans++] = *s;
  pthread_mutex_unlock(&mu);
}

/* waits for the n-th span (ended once the answer went out, maybe after the client saw it) */
static trace_span span_no(int n) {
  for (int i = 0; i < 500; i++) {
    pthread_mutex_lock(&mu);
    int have = nspans;
    pthread_mutex_unlock(&mu);
    if (have > n) break;
    usleep(10000);
  }
  pthread_mutex_lock(&mu);
  assert_true(nspans > n);
  trace_span s = spans[n];
  pthread_mutex_unlock(&mu);
  return s;
}

static const char *tag(const trace_span *s, const char *key) {
  for (size_t i = 0; i < s->ntags; i++)
    if (strcmp(s->tags[i].key, key) == 0) return s->tags[i].value;
  return NULL;
}

static void h_ctx(http_req *r, void *ctx) {
  (void)ctx;
  trace_ctx c;
  http_req_trace(r, &c);
  char tp[64] = "";
  trace_format_traceparent(&c, tp, sizeof tp);
  http_reply_json(r, 200, json_pack("{s:s, s:s}", "traceparent", tp, "trace_id", http_req_trace_id(r)));
}
static void h_fail(http_req *r, void *ctx) {
  (void)ctx;
  http_reply_error(r, 503, "down");
}

static void spans_per_request(void **state) {
  (void)state;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  FILE *logf = tmpfile();
  log_sink *lg = log_new("t", LOG_LEVEL_INFO, logf);
  trace_tracer *t = trace_tracer_new("t", 1.0, capture, NULL);
  http_server_opts o = {.bind_addr = "127.0.0.1", .shutdown_grace_ms = 2000, .tracer = t};
  http_server *srv = http_server_new(&o, lg);
  assert_int_equal(http_server_route(srv, "GET", "/items/{id}", h_ctx, NULL, 0), HTTP_OK);
  assert_int_equal(http_server_route(srv, "GET", "/fail", h_fail, NULL, 0), HTTP_OK);
  assert_int_equal(http_server_route(srv, "GET", "/actuator/health", h_ctx, NULL, 0), HTTP_OK);
  assert_int_equal(http_server_start(srv), HTTP_OK);
  unsigned port = http_server_port(srv);

  /* continued from traceparent */
  resp r = http_client_call(port, "GET", "/items/7", NULL, 0,
                            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  assert_int_equal(r.status, 200);
  json_t *j = json_loads(r.body, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "trace_id")), "4bf92f3577b34da6a3ce929d0e0e4736");
  trace_ctx seen;
  assert_int_equal(trace_parse_traceparent(json_string_value(json_object_get(j, "traceparent")), &seen), TRACE_OK);
  json_decref(j);
  trace_span s = span_no(0);
  assert_int_equal(s.kind, TRACE_KIND_SERVER);
  assert_string_equal(s.name, "GET /items/{id}");
  assert_true(s.has_parent);
  assert_int_equal(s.parent_id[7], 0xb7);
  assert_memory_equal(s.span_id, seen.span_id, 8); /* the handler's context is this span */
  assert_string_equal(tag(&s, "http.method"), "GET");
  assert_string_equal(tag(&s, "http.route"), "/items/{id}");
  assert_string_equal(tag(&s, "http.status_code"), "200");
  assert_false(s.error);

  /* B3, and a 5xx */
  r = http_client_call(port, "GET", "/fail", NULL, 0, "b3: 64fe8b2a57d3eff7-e457b5a2e4d86bd1-1");
  assert_int_equal(r.status, 503);
  s = span_no(1);
  assert_true(s.error);
  assert_int_equal(s.trace_id[15], 0xf7);
  assert_int_equal(s.trace_id[0], 0);
  assert_string_equal(tag(&s, "http.status_code"), "503");

  /* nothing (or garbage) incoming: a new root; a 404 is named by its method */
  r = http_client_call(port, "GET", "/nope", NULL, 0, "traceparent: 00-garbage");
  assert_int_equal(r.status, 404);
  s = span_no(2);
  assert_false(s.has_parent);
  assert_string_equal(s.name, "GET");
  assert_null(tag(&s, "http.route"));

  /* the actuator: no span, no trace id */
  r = http_client_call(port, "GET", "/actuator/health", NULL, 0, NULL);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"trace_id\":\"\""));
  usleep(100000);
  pthread_mutex_lock(&mu);
  assert_int_equal(nspans, 3);
  pthread_mutex_unlock(&mu);

  http_server_free(srv);
  log_free(lg);
  /* the access log names the trace */
  rewind(logf);
  char line[1024];
  int with = 0, without = 0;
  while (fgets(line, sizeof line, logf)) {
    if (!strstr(line, "msg=\"request\"")) continue;
    if (strstr(line, "/items/7") && strstr(line, " trace_id=4bf92f3577b34da6a3ce929d0e0e4736")) with++;
    if (strstr(line, "/actuator/health") && !strstr(line, "trace_id=")) without++;
  }
  assert_int_equal(with, 1);
  assert_int_equal(without, 1);
  fclose(logf);
  trace_tracer_free(t);
  curl_global_cleanup();
}

/* No tracer: no spans, no trace ids, the access log as before. */
static void without_tracer(void **state) {
  (void)state;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  http_server_opts o = {.bind_addr = "127.0.0.1", .shutdown_grace_ms = 2000};
  http_server *srv = http_server_new(&o, NULL);
  assert_int_equal(http_server_route(srv, "GET", "/items/{id}", h_ctx, NULL, 0), HTTP_OK);
  assert_int_equal(http_server_start(srv), HTTP_OK);
  resp r = http_client_call(http_server_port(srv), "GET", "/items/1", NULL, 0,
                            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"traceparent\":\"\",\"trace_id\":\"\"}");
  http_server_free(srv);
  curl_global_cleanup();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(spans_per_request),
      cmocka_unit_test(without_tracer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
