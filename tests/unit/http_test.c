/* http_test: a real server on an ephemeral loopback port, driven with libcurl. */
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

static unsigned port;

static resp call(const char *method, const char *path, const char *body, long body_len, const char *hdr) {
  return http_client_call(port, method, path, body, body_len, hdr);
}

static void h_item(http_req *r, void *ctx) {
  (void)ctx;
  http_reply_json(r, 200,
                  json_pack("{s:s, s:s}", "id", http_req_param(r, "id"), "q",
                            http_req_query(r, "q") ? http_req_query(r, "q") : ""));
}
static void h_echo(http_req *r, void *ctx) {
  (void)ctx;
  size_t n;
  const char *b = http_req_body(r, &n);
  char *copy = malloc(n ? n : 1);
  memcpy(copy, b, n);
  http_reply_buffer(r, 201, "application/octet-stream", copy, n, free);
}
static void h_silent(http_req *r, void *ctx) { (void)r, (void)ctx; }
static void h_slow(http_req *r, void *ctx) {
  (void)ctx;
  usleep(300 * 1000);
  http_reply_json(r, 200, json_pack("{s:b}", "slow", 1));
}
static void h_json(http_req *r, void *ctx) {
  (void)ctx;
  json_t *v = http_req_json(r);
  if (!v) return;
  http_reply_json(r, 200, v);
}

static http_server *srv;

static int setup(void **state) {
  (void)state;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  http_server_opts o = {.port = 0, .bind_addr = "127.0.0.1", .max_body = 1000, .shutdown_grace_ms = 5000};
  srv = http_server_new(&o, NULL);
  assert_non_null(srv);
  assert_int_equal(http_server_route(srv, "GET", "/items/{id}", h_item, NULL, 0), HTTP_OK);
  assert_int_equal(http_server_route(srv, "POST", "/echo", h_echo, NULL, 10000), HTTP_OK);
  assert_int_equal(http_server_route(srv, "POST", "/json", h_json, NULL, 0), HTTP_OK);
  assert_int_equal(http_server_route(srv, "GET", "/silent", h_silent, NULL, 0), HTTP_OK);
  assert_int_equal(http_server_route(srv, "GET", "/slow", h_slow, NULL, 0), HTTP_OK);
  assert_int_equal(http_server_start(srv), HTTP_OK);
  port = http_server_port(srv);
  assert_true(port > 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  http_server_free(srv);
  curl_global_cleanup();
  return 0;
}

static void routes_with_params(void **state) {
  (void)state;
  resp r = call("GET", "/items/42?q=x%20y", NULL, 0, NULL);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.ctype, "application/json");
  assert_string_equal(r.body, "{\"id\":\"42\",\"q\":\"x y\"}");
  assert_int_equal(strlen(r.reqid), 16);
  r = call("GET", "/items/", NULL, 0, NULL); /* empty parameter still routes */
  assert_string_equal(r.body, "{\"id\":\"\",\"q\":\"\"}");
}

static void not_found_and_method_not_allowed(void **state) {
  (void)state;
  resp r = call("GET", "/nope", NULL, 0, NULL);
  assert_int_equal(r.status, 404);
  assert_string_equal(r.ctype, "application/json");
  assert_string_equal(r.body, "{\"errorMessage\":\"No endpoint GET /nope\",\"errorCode\":\"404\"}");
  r = call("DELETE", "/items/1", NULL, 0, NULL);
  assert_int_equal(r.status, 405);
  assert_string_equal(r.body, "{\"errorMessage\":\"Method DELETE is not allowed for /items/1\",\"errorCode\":\"405\"}");
  assert_string_equal(r.allow, "GET, HEAD");
  r = call("GET", "/items/1/extra", NULL, 0, NULL);
  assert_int_equal(r.status, 404);
}

static void body_limits(void **state) {
  (void)state;
  static char big[20000];
  memset(big, 'x', sizeof big);
  resp r = call("POST", "/echo", big, 10000, NULL);
  assert_int_equal(r.status, 201);
  assert_int_equal(r.len, 10000);
  r = call("POST", "/echo", big, 10001, NULL);
  assert_int_equal(r.status, 413);
  assert_string_equal(r.ctype, "application/json");
  assert_non_null(strstr(r.body, "\"errorCode\":\"413\""));
  r = call("POST", "/json", big, 1001, NULL); /* server default cap is 1000 */
  assert_int_equal(r.status, 413);
  r = call("POST", "/echo", "", 0, NULL);
  assert_int_equal(r.status, 201);
  assert_int_equal(r.len, 0);
}

static void json_bodies(void **state) {
  (void)state;
  const char *json = "Content-Type: application/json";
  resp r = call("POST", "/json", "{\"a\": [1, 2]}", -1, json);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"a\":[1,2]}");
  r = call("POST", "/json", "{\"a\": ", -1, json);
  assert_int_equal(r.status, 400);
  assert_string_equal(r.body, "{\"errorMessage\":\"Malformed JSON request body\",\"errorCode\":\"400\"}");
  r = call("POST", "/json", "{\"a\":1,\"a\":2}", -1, json);
  assert_int_equal(r.status, 400);
  /* the media type decides, parameters and +json suffixes allowed */
  r = call("POST", "/json", "{}", -1, "Content-Type: application/json; charset=utf-8");
  assert_int_equal(r.status, 200);
  r = call("POST", "/json", "{}", -1, "Content-Type: application/merge-patch+json");
  assert_int_equal(r.status, 200);
  r = call("POST", "/json", "{}", -1, "Content-Type: text/plain");
  assert_int_equal(r.status, 415);
  assert_string_equal(r.body,
                      "{\"errorMessage\":\"Content type 'text/plain' is not supported. Use "
                      "application/json\",\"errorCode\":\"415\"}");
}

static void silent_handler_is_500(void **state) {
  (void)state;
  resp r = call("GET", "/silent", NULL, 0, "X-Request-Id: abc-123");
  assert_int_equal(r.status, 500);
  assert_string_equal(r.body, "{\"errorMessage\":\"Internal server error\",\"errorCode\":\"500\"}");
  assert_string_equal(r.reqid, "abc-123");
  const char *longest = "X-Request-Id: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  r = call("GET", "/silent", NULL, 0, longest); /* 64 characters: echoed whole */
  assert_string_equal(r.reqid, longest + 14);
  r = call("GET", "/silent", NULL, 0, "X-Request-Id: bad id with spaces");
  assert_int_equal(strlen(r.reqid), 16); /* not echoed: replaced by a generated one */
}

static void metrics_count_requests(void **state) {
  (void)state;
  char *m = http_server_metrics(srv);
  assert_non_null(m);
  assert_non_null(strstr(m, "http_server_requests_seconds_count{method=\"GET\",uri=\"/items/{id}\",status=\"200\"} 2"));
  assert_non_null(strstr(m, "uri=\"UNKNOWN\",status=\"404\""));
  free(m);
}

static void *slow_call(void *arg) {
  resp *r = arg;
  *r = call("GET", "/slow", NULL, 0, NULL);
  return NULL;
}

static void stop_lets_in_flight_finish(void **state) {
  (void)state;
  pthread_t t;
  resp r = {0};
  pthread_create(&t, NULL, slow_call, &r);
  usleep(100 * 1000);
  http_server_stop(srv);
  pthread_join(t, NULL);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"slow\":true}");
  resp after = call("GET", "/items/1", NULL, 0, NULL);
  assert_int_equal(after.status, 0); /* refused: no longer listening */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(routes_with_params),
      cmocka_unit_test(not_found_and_method_not_allowed),
      cmocka_unit_test(body_limits),
      cmocka_unit_test(json_bodies),
      cmocka_unit_test(silent_handler_is_500),
      cmocka_unit_test(metrics_count_requests),
      cmocka_unit_test(stop_lets_in_flight_finish),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
