/* Unit tests of lib/httpc that need no server: argument checks, the breaker's failure rule,
 * a refused connection. Status codes, bodies, caps, timeouts and connection reuse are
 * tested against a real HTTP server by tests/system/test_httpc.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "httpc/httpc.h"

static void test_failure_rule(void **state) {
  (void)state;
  assert_true(httpc_is_failure(HTTPC_ERR_CONNECT, 0));
  assert_true(httpc_is_failure(HTTPC_ERR_TIMEOUT, 0));
  assert_true(httpc_is_failure(HTTPC_ERR_IO, 0));
  assert_true(httpc_is_failure(0, 500));
  assert_true(httpc_is_failure(0, 503));
  assert_false(httpc_is_failure(0, 200));
  assert_false(httpc_is_failure(0, 404));
  assert_false(httpc_is_failure(0, 400));
  assert_false(httpc_is_failure(HTTPC_ERR_INVALID, 0)); /* our bug, not the peer's */
  assert_false(httpc_is_failure(HTTPC_ERR_TOO_LARGE, 200));
  assert_string_equal(httpc_strerror(HTTPC_ERR_TIMEOUT), "timeout");
  assert_non_null(httpc_strerror(-999));
}

static void test_new_free(void **state) {
  (void)state;
  httpc *c = NULL;
  assert_int_equal(httpc_new(NULL, &c), 0);
  httpc_free(c);
  httpc_free(NULL);
  httpc_config bad = {.timeout_ms = -1};
  assert_int_equal(httpc_new(&bad, &c), HTTPC_ERR_INVALID);
  assert_null(c);
  httpc_config ua = {.user_agent = "x\r\nInjected: 1"};
  assert_int_equal(httpc_new(&ua, &c), HTTPC_ERR_INVALID);
}

static void test_invalid_requests(void **state) {
  (void)state;
  httpc *c = NULL;
  assert_int_equal(httpc_new(NULL, &c), 0);
  httpc_response r;
  httpc_request q = {.method = "FETCH", .url = "http://127.0.0.1:1/"};
  assert_int_equal(httpc_do(c, &q, &r), HTTPC_ERR_INVALID);
  q = (httpc_request){.method = "GET", .url = "file:///etc/passwd"};
  assert_int_equal(httpc_do(c, &q, &r), HTTPC_ERR_INVALID);
  q = (httpc_request){.method = "GET", .url = "http://127.0.0.1:1/", .request_id = "a\r\nX: y"};
  assert_int_equal(httpc_do(c, &q, &r), HTTPC_ERR_INVALID);
  char long_id[200];
  memset(long_id, 'a', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  q = (httpc_request){.method = "GET", .url = "http://127.0.0.1:1/", .request_id = long_id};
  assert_int_equal(httpc_do(c, &q, &r), HTTPC_ERR_INVALID);
  q = (httpc_request){.method = "POST", .url = "http://127.0.0.1:1/", .body_len = 3};
  assert_int_equal(httpc_do(c, &q, &r), HTTPC_ERR_INVALID);
  q = (httpc_request){
      .method = "POST", .url = "http://127.0.0.1:1/", .body = "{}", .body_len = 2, .content_type = "a\nb"};
  assert_int_equal(httpc_do(c, &q, &r), HTTPC_ERR_INVALID);
  q = (httpc_request){.method = "GET", .url = "http://127.0.0.1:1/", .range = "bytes=0-1\r\nX: y"};
  assert_int_equal(httpc_do(c, &q, &r), HTTPC_ERR_INVALID);
  q = (httpc_request){.method = "GET", .url = "http://127.0.0.1:1/", .into_cap = 16}; /* a size, no buffer */
  assert_int_equal(httpc_do(c, &q, &r), HTTPC_ERR_INVALID);
  assert_string_equal(r.content_range, "");
  httpc_response_free(&r);
  httpc_response_free(&r);
  httpc_free(c);
}

static void test_refused_is_connect_error(void **state) {
  (void)state;
  httpc *c = NULL;
  httpc_config cfg = {.connect_timeout_ms = 500, .timeout_ms = 1000};
  assert_int_equal(httpc_new(&cfg, &c), 0);
  httpc_response r;
  httpc_request q = {
      .method = "POST", .url = "http://127.0.0.1:1/songs", .body = "{}", .body_len = 2, .request_id = "req-1"};
  assert_int_equal(httpc_do(c, &q, &r), HTTPC_ERR_CONNECT);
  assert_int_equal(r.status, 0);
  assert_null(r.body);
  assert_non_null(strstr(r.error, "POST http://127.0.0.1:1/songs"));
  assert_true(httpc_is_failure(HTTPC_ERR_CONNECT, r.status));
  httpc_response_free(&r);
  httpc_free(c);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_failure_rule),
      cmocka_unit_test(test_new_free),
      cmocka_unit_test(test_invalid_requests),
      cmocka_unit_test(test_refused_is_connect_error),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
