/* Unit tests for lib/breakerview: the actuator JSON shapes and Prometheus lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "breakerview/breakerview.h"

#define MS INT64_C(1000000)

typedef struct {
  int64_t now, wall;
} clk;
static int64_t mono(void *c) { return ((clk *)c)->now; }
static int64_t wall(void *c) { return ((clk *)c)->wall; }

static breaker_registry *fixture(clk *c, breaker **storage) {
  breaker_registry *r = breaker_registry_new();
  breaker_config cfg;
  breaker_config_default(&cfg);
  cfg.clock = mono;
  cfg.clock_ctx = c;
  cfg.wall_clock = wall;
  cfg.wall_clock_ctx = c;
  cfg.window_size = 3;
  cfg.minimum_calls = 3;
  cfg.failure_rate_threshold = 50;
  breaker *b = NULL, *a = NULL;
  assert_int_equal(breaker_new("storageService", &cfg, &b, NULL, 0), 0);
  assert_int_equal(breaker_registry_add(r, b), 0);
  assert_int_equal(breaker_new("alpha", &cfg, &a, NULL, 0), 0);
  assert_int_equal(breaker_registry_add(r, a), 0);
  *storage = b;
  return r;
}

static void test_circuitbreakers_initial(void **st) {
  (void)st;
  clk c = {1, 1700000000LL * 1000000000LL};
  breaker *b;
  breaker_registry *r = fixture(&c, &b);
  char *s = breakerview_circuitbreakers_json(r);
  assert_string_equal(
      s,
      "{\"circuitBreakers\":{\"alpha\":{\"failureRate\":\"-1.0%\",\"slowCallRate\":\"-1.0%\","
      "\"failureRateThreshold\":\"50.0%\",\"slowCallRateThreshold\":\"100.0%\",\"bufferedCalls\":0,"
      "\"failedCalls\":0,\"slowCalls\":0,\"slowFailedCalls\":0,\"notPermittedCalls\":0,\"state\":\"CLOSED\"},"
      "\"storageService\":{\"failureRate\":\"-1.0%\",\"slowCallRate\":\"-1.0%\","
      "\"failureRateThreshold\":\"50.0%\",\"slowCallRateThreshold\":\"100.0%\",\"bufferedCalls\":0,"
      "\"failedCalls\":0,\"slowCalls\":0,\"slowFailedCalls\":0,\"notPermittedCalls\":0,\"state\":\"CLOSED\"}}}");
  free(s);
  breaker_registry_free(r);
}

static void test_rates_and_open(void **st) {
  (void)st;
  clk c = {1, 1700000000LL * 1000000000LL + 123456789};
  breaker *b;
  breaker_registry *r = fixture(&c, &b);
  breaker_try_acquire(b);
  breaker_record(b, BREAKER_SUCCESS, 5 * MS);
  breaker_try_acquire(b);
  breaker_record(b, BREAKER_SUCCESS, 5 * MS);
  breaker_try_acquire(b);
  breaker_record_msg(b, BREAKER_FAILURE, 12 * MS, "java.io.IOException: refused");
  char *s = breakerview_circuitbreakers_json(r);
  assert_non_null(strstr(s, "\"storageService\":{\"failureRate\":\"33.333332%\",\"slowCallRate\":\"0.0%\""));
  free(s);
  breaker_try_acquire(b);
  breaker_record(b, BREAKER_FAILURE, 1 * MS); /* 2 of 3 failed: OPEN */
  assert_false(breaker_try_acquire(b));
  s = breakerview_circuitbreakers_json(r);
  assert_non_null(strstr(s, "\"failureRate\":\"66.666664%\""));
  assert_non_null(strstr(s, "\"notPermittedCalls\":1,\"state\":\"OPEN\""));
  free(s);

  bool up = true;
  s = breakerview_health_json(b, false, &up);
  assert_true(up);
  assert_non_null(strstr(
      s,
      "{\"status\":\"CIRCUIT_OPEN\",\"details\":{\"failureRate\":\"66.666664%\",\"failureRateThreshold\":\"50.0%\""));
  free(s);
  s = breakerview_health_json(b, true, &up);
  assert_false(up);
  free(s);
  assert_string_equal(breakerview_health_status(BREAKER_HALF_OPEN, false), "CIRCUIT_HALF_OPEN");
  assert_string_equal(breakerview_health_status(BREAKER_METRICS_ONLY, false), "UNKNOWN");

  int status = 0;
  s = breakerview_events_json(r, "storageService", "error", &status);
  assert_int_equal(status, 200);
  assert_string_equal(
      s,
      "{\"circuitBreakerEvents\":[{\"circuitBreakerName\":\"storageService\",\"type\":\"ERROR\","
      "\"creationTime\":\"2023-11-14T22:13:20.123456Z\",\"errorMessage\":\"java.io.IOException: refused\","
      "\"durationInMs\":12},{\"circuitBreakerName\":\"storageService\",\"type\":\"ERROR\","
      "\"creationTime\":\"2023-11-14T22:13:20.123456Z\",\"errorMessage\":\"\",\"durationInMs\":1}]}");
  free(s);
  s = breakerview_events_json(r, NULL, "STATE_TRANSITION", &status);
  assert_non_null(strstr(s, "\"stateTransition\":\"CLOSED_TO_OPEN\""));
  free(s);
  s = breakerview_events_json(r, NULL, NULL, &status);
  assert_non_null(strstr(s, "NOT_PERMITTED"));
  free(s);
  s = breakerview_events_json(r, "nope", NULL, &status);
  assert_string_equal(s, "{\"circuitBreakerEvents\":[]}");
  free(s);
  s = breakerview_events_json(r, NULL, "bogus", &status);
  assert_int_equal(status, 400);
  free(s);

  s = breakerview_prometheus(r);
  assert_non_null(strstr(s, "resilience4j_circuitbreaker_state{name=\"storageService\",state=\"open\"} 1.0\n"));
  assert_non_null(strstr(s, "resilience4j_circuitbreaker_state{name=\"storageService\",state=\"closed\"} 0.0\n"));
  assert_non_null(
      strstr(s, "resilience4j_circuitbreaker_calls_seconds_count{kind=\"successful\",name=\"storageService\"} 2.0\n"));
  assert_non_null(
      strstr(s, "resilience4j_circuitbreaker_calls_seconds_sum{kind=\"failed\",name=\"storageService\"} 0.013\n"));
  assert_non_null(
      strstr(s, "resilience4j_circuitbreaker_calls_seconds_max{kind=\"failed\",name=\"storageService\"} 0.012\n"));
  assert_non_null(strstr(s, "resilience4j_circuitbreaker_failure_rate{name=\"storageService\"} 66.66666412353516\n"));
  assert_non_null(strstr(s, "resilience4j_circuitbreaker_failure_rate{name=\"alpha\"} -1.0\n"));
  assert_non_null(
      strstr(s, "resilience4j_circuitbreaker_buffered_calls{kind=\"failed\",name=\"storageService\"} 2.0\n"));
  assert_non_null(strstr(s, "resilience4j_circuitbreaker_slow_calls{kind=\"successful\",name=\"alpha\"} 0.0\n"));
  assert_non_null(strstr(
      s,
      "resilience4j_circuitbreaker_not_permitted_calls_total{kind=\"not_permitted\",name=\"storageService\"} 1.0\n"));
  assert_non_null(strstr(s, "# TYPE resilience4j_circuitbreaker_state gauge\n"));
  free(s);
  breaker_registry_free(r);
}

static void test_update_state(void **st) {
  (void)st;
  clk c = {1, 0};
  breaker *b;
  breaker_registry *r = fixture(&c, &b);
  int status = 0;
  char *s = breakerview_update_state(r, "storageService", "{\"updateState\":\"FORCE_OPEN\"}", &status);
  assert_int_equal(status, 200);
  assert_string_equal(s,
                      "{\"circuitBreakerName\":\"storageService\",\"currentState\":\"FORCED_OPEN\","
                      "\"message\":\"storageService state has been changed successfully\"}");
  free(s);
  s = breakerview_update_state(r, "storageService", "{\"updateState\":\"DISABLE\"}", &status);
  assert_non_null(strstr(s, "\"currentState\":\"DISABLED\""));
  free(s);
  s = breakerview_update_state(r, "storageService", "{\"updateState\":\"CLOSE\"}", &status);
  assert_non_null(strstr(s, "\"currentState\":\"CLOSED\""));
  free(s);
  s = breakerview_update_state(r, "storageService", "{\"updateState\":\"HALF\"}", &status);
  assert_int_equal(status, 400);
  free(s);
  s = breakerview_update_state(r, "storageService", "not json", &status);
  assert_int_equal(status, 400);
  free(s);
  s = breakerview_update_state(r, "nope", "{\"updateState\":\"CLOSE\"}", &status);
  assert_int_equal(status, 404);
  free(s);
  breaker_registry_free(r);
}

static void test_time_format(void **st) {
  (void)st;
  char buf[64];
  breakerview_format_time(1700000000LL * 1000000000LL, buf, sizeof buf);
  assert_string_equal(buf, "2023-11-14T22:13:20Z");
  breakerview_format_time(1699999980LL * 1000000000LL, buf, sizeof buf);
  assert_string_equal(buf, "2023-11-14T22:13Z");
  breakerview_format_time(1700000000LL * 1000000000LL + 5000000, buf, sizeof buf);
  assert_string_equal(buf, "2023-11-14T22:13:20.005Z");
  breakerview_format_time(1700000000LL * 1000000000LL + 5001999, buf, sizeof buf);
  assert_string_equal(buf, "2023-11-14T22:13:20.005001Z"); /* microseconds, truncated */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_circuitbreakers_initial),
      cmocka_unit_test(test_rates_and_open),
      cmocka_unit_test(test_update_state),
      cmocka_unit_test(test_time_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
