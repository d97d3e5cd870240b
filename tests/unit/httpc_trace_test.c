/* httpc_trace_test: a call made inside a handler is a CLIENT span, a child of the handler's
 * SERVER span, and the server it calls continues it (lib/http + lib/httpc + lib/trace on
 * one loopback server): one trace, parent links that resolve, traceparent and tracestate
 * on the wire, errors marked; no tracer or no context: nothing sent. */
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
#include "httpc/httpc.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static trace_span spans[16];
static int nspans;
static unsigned port;
static httpc *client;
static char seen_tp[128], seen_ts[600];

static void capture(void *ud, const trace_span *s) {
  (void)ud;
  pthread_mutex_lock(&mu);
  if (nspans < 16) spans[nspans++] = *s;
  pthread_mutex_unlock(&mu);
}

static int count(void) {
  pthread_mutex_lock(&mu);
  int n = nspans;
  pthread_mutex_unlock(&mu);
  return n;
}

static void wait_spans(int n) {
  for (int i = 0; i < 500 && count() < n; i++) usleep(10000);
  assert_int_equal(count(), n);
}

static const trace_span *by_kind_name(trace_kind k, const char *name) {
  for (int i = 0; i < nspans; i++)
    if (spans[i].kind == k && strcmp(spans[i].name, name) == 0) return &spans[i];
  return NULL;
}

static const char *tag(const trace_span *s, const char *key) {
  for (size_t i = 0; i < s->ntags; i++)
    if (strcmp(s->tags[i].key, key) == 0) return s->tags[i].value;
  return NULL;
}

static void h_inner(http_req *r, void *ctx) {
  (void)ctx;
  const char *tp = http_req_header(r, "traceparent");
  const char *ts = http_req_header(r, "tracestate");
  snprintf(seen_tp, sizeof seen_tp, "%s", tp ? tp : "");
  snprintf(seen_ts, sizeof seen_ts, "%s", ts ? ts : "");
  http_reply_json(r, 200, json_pack("{s:b}", "ok", 1));
}

/* calls /inner (or /missing with ?fail) with the request's context */
static void h_outer(http_req *r, void *ctx) {
  (void)ctx;
  trace_ctx tc;
  http_req_trace(r, &tc);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/%s?x=1", port, http_req_query(r, "fail") ? "boom" : "inner");
  httpc_request req = {.method = "GET", .url = url, .trace = &tc, .peer = "self"};
  httpc_response hr;
  int rc = httpc_do(client, &req, &hr);
  httpc_response_free(&hr);
  http_reply_json(r, 200, json_pack("{s:i}", "rc", rc));
}

static void h_boom(http_req *r, void *ctx) {
  (void)ctx;
  http_reply_error(r, 500, "boom");
}

static void one_trace_across_the_call(void **state) {
  (void)state;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  trace_tracer *t = trace_tracer_new("t", 1.0, capture, NULL);
  http_server_opts o = {.bind_addr = "127.0.0.1", .shutdown_grace_ms = 2000, .tracer = t, .workers = 4};
  http_server *srv = http_server_new(&o, NULL);
  assert_int_equal(http_server_route(srv, "GET", "/outer", h_outer, NULL, 0), HTTP_OK);
  assert_int_equal(http_server_route(srv, "GET", "/inner", h_inner, NULL, 0), HTTP_OK);
  assert_int_equal(http_server_route(srv, "GET", "/boom", h_boom, NULL, 0), HTTP_OK);
  assert_int_equal(http_server_start(srv), HTTP_OK);
  port = http_server_port(srv);
  assert_int_equal(httpc_new(&(httpc_config){.tracer = t}, &client), HTTPC_OK);

  resp r = http_client_call(port, "GET", "/outer", NULL, 0,
                            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\ntracestate: k=v");
  assert_int_equal(r.status, 200);
  wait_spans(3);
  pthread_mutex_lock(&mu);
  const trace_span *outer = by_kind_name(TRACE_KIND_SERVER, "GET /outer");
  const trace_span *call = by_kind_name(TRACE_KIND_CLIENT, "GET");
  const trace_span *inner = by_kind_name(TRACE_KIND_SERVER, "GET /inner");
  assert_non_null(outer);
  assert_non_null(call);
  assert_non_null(inner);
  for (int i = 0; i < 3; i++) assert_memory_equal(spans[i].trace_id, outer->trace_id, 16);
  assert_memory_equal(call->parent_id, outer->span_id, 8);
  assert_memory_equal(inner->parent_id, call->span_id, 8);
  char inner_url[64];
  snprintf(inner_url, sizeof inner_url, "http://127.0.0.1:%u/inner", port);
  assert_string_equal(tag(call, "http.url"), inner_url);
  assert_null(strchr(tag(call, "http.url"), '?')); /* no query on the span */
  assert_string_equal(tag(call, "http.status_code"), "200");
  assert_string_equal(call->remote_service, "self");
  assert_false(call->error);
  char want[64];
  trace_span_traceparent(call, want, sizeof want);
  assert_string_equal(seen_tp, want);
  assert_string_equal(seen_ts, "k=v"); /* tracestate passed on */
  nspans = 0;
  pthread_mutex_unlock(&mu);

  /* a 5xx marks the CLIENT span failed */
  r = http_client_call(port, "GET", "/outer?fail=1", NULL, 0, NULL);
  assert_int_equal(r.status, 200);
  wait_spans(3);
  pthread_mutex_lock(&mu);
  call = by_kind_name(TRACE_KIND_CLIENT, "GET");
  assert_non_null(call);
  assert_true(call->error);
  assert_string_equal(tag(call, "http.status_code"), "500");
  nspans = 0;
  pthread_mutex_unlock(&mu);

  /* no context: no span, no header */
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/inner", port);
  httpc_response hr;
  assert_int_equal(httpc_do(client, &(httpc_request){.method = "GET", .url = url}, &hr), 0);
  httpc_response_free(&hr);
  assert_string_equal(seen_tp, "");
  wait_spans(1); /* only the server's own */

  /* a refused connection: failed with the transport error */
  pthread_mutex_lock(&mu);
  nspans = 0;
  pthread_mutex_unlock(&mu);
  trace_ctx tc;
  trace_parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &tc);
  assert_int_equal(
      httpc_do(client, &(httpc_request){.method = "GET", .url = "http://127.0.0.1:1/x", .trace = &tc}, &hr),
      HTTPC_ERR_CONNECT);
  httpc_response_free(&hr);
  wait_spans(1);
  assert_true(spans[0].error);
  assert_string_equal(tag(&spans[0], "error"), httpc_strerror(HTTPC_ERR_CONNECT));
  assert_null(tag(&spans[0], "http.status_code"));

  httpc_free(client);
  http_server_free(srv);
  trace_tracer_free(t);
  curl_global_cleanup();
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(one_trace_across_the_call)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
