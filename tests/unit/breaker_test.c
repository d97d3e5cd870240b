/* Unit tests for lib/breaker: every state, transition and option, with a fake clock.
 * The differential test (tests/conformance/breaker) is the proof against Resilience4j;
 * these pin the behaviours one by one so a failure names the rule that broke. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "breaker/breaker.h"

#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)

typedef struct fake {
  int64_t now;
  int64_t wall;
  int events[64];
  int nevents;
} fake;

static int64_t fake_clock(void *ctx) { return ((fake *)ctx)->now; }
static int64_t fake_wall(void *ctx) { return ((fake *)ctx)->wall; }
static double fake_random_half(void *ctx) {
  (void)ctx;
  return 0.5;
}

static void fake_listener(void *ctx, const breaker *b, const breaker_event *ev) {
  (void)b;
  fake *f = ctx;
  if (f->nevents < 64) f->events[f->nevents++] = (int)ev->type;
}

static void cfg_small(breaker_config *c, fake *f) {
  breaker_config_default(c);
  c->clock = fake_clock;
  c->clock_ctx = f;
  c->wall_clock = fake_wall;
  c->wall_clock_ctx = f;
  c->listener = fake_listener;
  c->listener_ctx = f;
  c->window_size = 4;
  c->minimum_calls = 4;
  c->permitted_calls_in_half_open = 2;
  c->wait_in_open_ms = 1000;
}

static breaker *mk(const breaker_config *c) {
  breaker *b = NULL;
  char msg[256];
  assert_int_equal(breaker_new("svc", c, &b, msg, sizeof msg), 0);
  return b;
}

static void fail_n(breaker *b, int n) {
  for (int i = 0; i < n; i++) {
    assert_true(breaker_try_acquire(b));
    breaker_record(b, BREAKER_FAILURE, MS);
  }
}

static void ok_n(breaker *b, int n) {
  for (int i = 0; i < n; i++) {
    assert_true(breaker_try_acquire(b));
    breaker_record(b, BREAKER_SUCCESS, MS);
  }
}

static void test_defaults(void **st) {
  (void)st;
  breaker_config c;
  breaker_config_default(&c);
  assert_true(c.failure_rate_threshold == 50.0f);
  assert_true(c.slow_call_rate_threshold == 100.0f);
  assert_int_equal(c.slow_call_duration_threshold_ns, 60 * SEC);
  assert_int_equal(c.permitted_calls_in_half_open, 10);
  assert_int_equal(c.max_wait_in_half_open_ms, 0);
  assert_int_equal(c.window_type, BREAKER_COUNT_BASED);
  assert_int_equal(c.window_size, 100);
  assert_int_equal(c.minimum_calls, 100);
  assert_int_equal(c.wait_in_open_ms, 60000);
  assert_false(c.automatic_transition);
  assert_int_equal(c.initial_state, BREAKER_CLOSED);
  assert_int_equal(c.event_buffer_size, 100);
  breaker *b = NULL;
  assert_int_equal(breaker_new("d", &c, &b, NULL, 0), 0);
  breaker_metrics m;
  breaker_get_metrics(b, &m);
  assert_true(m.failure_rate == -1.0f && m.slow_call_rate == -1.0f);
  assert_int_equal(breaker_get_state(b), BREAKER_CLOSED);
  breaker_free(b);
  breaker_free(NULL);
}

static void expect_invalid(breaker_config *c, const char *want) {
  char msg[256] = "";
  breaker *b = (breaker *)1;
  assert_int_equal(breaker_new("x", c, &b, msg, sizeof msg), BREAKER_ERR_INVALID);
  assert_null(b);
  assert_string_equal(msg, want);
  breaker_config_default(c);
}

static void test_validation(void **st) {
  (void)st;
  breaker_config c;
  breaker_config_default(&c);
  c.failure_rate_threshold = 0;
  expect_invalid(&c, "failureRateThreshold must be greater than 0 and lower than 100, but was 0.0");
  c.failure_rate_threshold = 100.5f;
  expect_invalid(&c, "failureRateThreshold must be greater than 0 and lower than 100, but was 100.5");
  c.slow_call_rate_threshold = -1;
  expect_invalid(&c, "slowCallRateThreshold must be greater than 0 and not greater than 100, but was -1.0");
  c.wait_in_open_ms = 0;
  expect_invalid(&c, "waitDurationInOpenState must be at least 1[ms]");
  c.slow_call_duration_threshold_ns = 0;
  expect_invalid(&c, "slowCallDurationThreshold must be at least 1[ns]");
  c.permitted_calls_in_half_open = 0;
  expect_invalid(&c, "permittedNumberOfCallsInHalfOpenState must be greater than 0");
  c.window_size = 0;
  expect_invalid(&c, "slidingWindowSize must be greater than 0");
  c.minimum_calls = 0;
  expect_invalid(&c, "minimumNumberOfCalls must be greater than 0");
  c.max_wait_in_half_open_ms = -1;
  expect_invalid(&c, "maxWaitDurationInHalfOpenState must be greater than or equal to 0[ms]");
  c.transition_after_wait = BREAKER_HALF_OPEN;
  expect_invalid(&c, "transitionToStateAfterWaitDuration must be either OPEN or CLOSED");
  c.randomized_wait = true;
  c.randomized_wait_factor = 1.5;
  expect_invalid(&c, "Illegal argument randomizationFactor: 1.5");
  c.failure_rate_threshold = 100;
  assert_int_equal(breaker_config_validate(&c, NULL, 0), 0);
}

static void test_float_format(void **st) {
  (void)st;
  char buf[64];
  struct {
    float v;
    const char *s;
  } cases[] = {{-1.0f, "-1.0"},
               {50.0f, "50.0"},
               {100.0f / 3.0f, "33.333332"},
               {0.0f, "0.0"},
               {1.0f * 100.0f / 3.0f, "33.333332"},
               {2.0f * 100.0f / 3.0f, "66.666664"},
               {12.5f, "12.5"},
               {1e7f, "1.0E7"},
               {0.001f, "0.001"},
               {0.0001f, "1.0E-4"},
               {123456.7f, "123456.7"},
               {100.0f, "100.0"},
               {0.1f, "0.1"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    breaker_format_float(cases[i].v, buf, sizeof buf);
    assert_string_equal(buf, cases[i].s);
  }
}

static void test_closed_to_open_and_rates(void **st) {
  (void)st;
  fake f = {.now = 5 * SEC};
  breaker_config c;
  cfg_small(&c, &f);
  breaker *b = mk(&c);
  ok_n(b, 2);
  fail_n(b, 1);
  breaker_metrics m;
  breaker_get_metrics(b, &m);
  assert_true(m.failure_rate == -1.0f); /* 3 < minimum 4 */
  assert_int_equal(m.buffered, 3);
  assert_int_equal(m.failed, 1);
  assert_int_equal(m.successful, 2);
  f.nevents = 0;
  fail_n(b, 1); /* 2 of 4 = 50% >= 50 */
  assert_int_equal(breaker_get_state(b), BREAKER_OPEN);
  int want[] = {BREAKER_EV_ERROR, BREAKER_EV_FAILURE_RATE_EXCEEDED, BREAKER_EV_STATE_TRANSITION};
  assert_int_equal(f.nevents, 3);
  assert_memory_equal(f.events, want, sizeof want);
  breaker_get_metrics(b, &m); /* OPEN keeps the metrics */
  assert_true(m.failure_rate == 50.0f);
  assert_int_equal(m.buffered, 4);
  /* refusals count and publish */
  assert_false(breaker_try_acquire(b));
  assert_false(breaker_try_acquire(b));
  breaker_get_metrics(b, &m);
  assert_int_equal(m.not_permitted, 2);
  char msg[128];
  breaker_refusal_message(b, msg, sizeof msg);
  assert_string_equal(msg, "CircuitBreaker 'svc' is OPEN and does not permit further calls");
  breaker_free(b);
}

static void test_rate_is_float32(void **st) {
  (void)st;
  fake f = {.now = SEC};
  breaker_config c;
  cfg_small(&c, &f);
  c.window_size = 3;
  c.minimum_calls = 3;
  c.failure_rate_threshold = 90;
  breaker *b = mk(&c);
  ok_n(b, 2);
  fail_n(b, 1);
  breaker_metrics m;
  breaker_get_metrics(b, &m);
  assert_true(m.failure_rate == 100.0f / 3.0f);
  assert_int_equal(breaker_get_state(b), BREAKER_CLOSED);
  breaker_free(b);
}

static void test_open_wait_strict_then_half_open(void **st) {
  (void)st;
  fake f = {.now = SEC};
  breaker_config c;
  cfg_small(&c, &f);
  breaker *b = mk(&c);
  fail_n(b, 4);
  assert_int_equal(breaker_get_state(b), BREAKER_OPEN);
  f.now += 1000 * MS; /* exactly the wait: still refused (strictly after) */
  assert_false(breaker_try_acquire(b));
  f.now += 1;
  assert_true(breaker_try_acquire(b)); /* moves to HALF_OPEN and takes a permit */
  assert_int_equal(breaker_get_state(b), BREAKER_HALF_OPEN);
  assert_true(breaker_try_acquire(b));
  assert_false(breaker_try_acquire(b)); /* 2 permits */
  breaker_metrics m;
  breaker_get_metrics(b, &m);
  assert_int_equal(m.not_permitted, 1);
  assert_int_equal(m.buffered, 0);
  breaker_record(b, BREAKER_SUCCESS, MS);
  assert_int_equal(breaker_get_state(b), BREAKER_HALF_OPEN);
  breaker_record(b, BREAKER_SUCCESS, MS);
  assert_int_equal(breaker_get_state(b), BREAKER_CLOSED);
  breaker_get_metrics(b, &m);
  assert_int_equal(m.buffered, 0); /* fresh metrics */
  breaker_free(b);
}

static void test_half_open_to_open_and_ignored(void **st) {
  (void)st;
  fake f = {.now = SEC};
  breaker_config c;
  cfg_small(&c, &f);
  breaker *b = mk(&c);
  assert_int_equal(breaker_transition(b, BREAKER_OPEN), 0);
  assert_int_equal(breaker_transition(b, BREAKER_HALF_OPEN), 0);
  assert_true(breaker_try_acquire(b));
  assert_true(breaker_try_acquire(b));
  assert_false(breaker_try_acquire(b));
  breaker_record(b, BREAKER_IGNORED, MS); /* gives the permit back */
  assert_true(breaker_try_acquire(b));
  breaker_record(b, BREAKER_IGNORED, MS);
  breaker_record(b, BREAKER_IGNORED, MS); /* no cap: 2 permits now */
  assert_true(breaker_try_acquire(b));
  assert_true(breaker_try_acquire(b));
  breaker_record(b, BREAKER_FAILURE, MS);
  assert_int_equal(breaker_get_state(b), BREAKER_HALF_OPEN);
  f.nevents = 0;
  breaker_record(b, BREAKER_FAILURE, MS);
  assert_int_equal(breaker_get_state(b), BREAKER_OPEN);
  /* no EXCEEDED event on HALF_OPEN -> OPEN */
  int want[] = {BREAKER_EV_ERROR, BREAKER_EV_STATE_TRANSITION};
  assert_int_equal(f.nevents, 2);
  assert_memory_equal(f.events, want, sizeof want);
  breaker_free(b);
}

static void test_half_open_minimum_smaller(void **st) {
  (void)st;
  fake f = {.now = SEC};
  breaker_config c;
  cfg_small(&c, &f);
  c.permitted_calls_in_half_open = 5;
  c.minimum_calls = 2; /* half-open decides after min(2, 5) calls */
  breaker *b = mk(&c);
  breaker_transition(b, BREAKER_OPEN);
  breaker_transition(b, BREAKER_HALF_OPEN);
  ok_n(b, 2);
  assert_int_equal(breaker_get_state(b), BREAKER_CLOSED);
  breaker_free(b);
}

static void test_slow_calls(void **st) {
  (void)st;
  fake f = {.now = SEC};
  breaker_config c;
  cfg_small(&c, &f);
  c.slow_call_duration_threshold_ns = 100 * MS;
  c.slow_call_rate_threshold = 50;
  c.failure_rate_threshold = 100;
  breaker *b = mk(&c);
  breaker_try_acquire(b);
  breaker_record(b, BREAKER_SUCCESS, 100 * MS); /* equal: not slow */
  breaker_try_acquire(b);
  breaker_record(b, BREAKER_SUCCESS, 100 * MS + 1); /* slow success */
  breaker_try_acquire(b);
  breaker_record(b, BREAKER_FAILURE, 200 * MS); /* slow failure */
  breaker_metrics m;
  breaker_get_metrics(b, &m);
  assert_int_equal(m.slow, 2);
  assert_int_equal(m.slow_successful, 1);
  assert_int_equal(m.slow_failed, 1);
  f.nevents = 0;
  ok_n(b, 1);
  assert_int_equal(breaker_get_state(b), BREAKER_OPEN);
  int want[] = {BREAKER_EV_SUCCESS, BREAKER_EV_SLOW_CALL_RATE_EXCEEDED, BREAKER_EV_STATE_TRANSITION};
  assert_int_equal(f.nevents, 3);
  assert_memory_equal(f.events, want, sizeof want);
  breaker_free(b);
}

static void test_both_exceeded_order(void **st) {
  (void)st;
  fake f = {.now = SEC};
  breaker_config c;
  cfg_small(&c, &f);
  c.slow_call_duration_threshold_ns = MS;
  c.slow_call_rate_threshold = 50;
  breaker *b = mk(&c);
  for (int i = 0; i < 3; i++) {
    breaker_try_acquire(b);
    breaker_record(b, BREAKER_FAILURE, 2 * MS);
  }
  f.nevents = 0;
  breaker_try_acquire(b);
  breaker_record(b, BREAKER_FAILURE, 2 * MS);
  int want[] = {BREAKER_EV_ERROR, BREAKER_EV_FAILURE_RATE_EXCEEDED, BREAKER_EV_SLOW_CALL_RATE_EXCEEDED,
                BREAKER_EV_STATE_TRANSITION};
  assert_int_equal(f.nevents, 4);
  assert_memory_equal(f.events, want, sizeof want);
  breaker_free(b);
}

static void test_count_window_slides(void **st) {
  (void)st;
  fake f = {.now = SEC};
  breaker_config c;
  cfg_small(&c, &f);
  c.failure_rate_threshold = 100;
  breaker *b = mk(&c);
  fail_n(b, 3);
  ok_n(b, 4); /* the failures slid out */
  breaker_metrics m;
  breaker_get_metrics(b, &m);
  assert_int_equal(m.buffered, 4);
  assert_int_equal(m.failed, 0);
  assert_true(m.failure_rate == 0.0f);
  breaker_free(b);
}

static void test_time_window(void **st) {
  (void)st;
  fake f = {.now = 1000 * SEC + 300 * MS};
  breaker_config c;
  cfg_small(&c, &f);
  c.window_type = BREAKER_TIME_BASED;
  c.window_size = 3; /* seconds */
  c.minimum_calls = 2;
  c.failure_rate_threshold = 100;
  breaker *b = mk(&c);
  fail_n(b, 1); /* second 1000 */
  f.now += SEC; /* 1001 */
  ok_n(b, 1);
  breaker_metrics m;
  breaker_get_metrics(b, &m);
  assert_int_equal(m.buffered, 2);
  f.now += SEC; /* 1002: second 1000 still counts (1002 <= 1000 + 3 - 1) */
  breaker_get_metrics(b, &m);
  assert_int_equal(m.buffered, 2);
  f.now += SEC; /* 1003: the failure ages out on a read */
  breaker_get_metrics(b, &m);
  assert_int_equal(m.buffered, 1);
  assert_int_equal(m.failed, 0);
  assert_true(m.failure_rate == -1.0f); /* below minimum 2 (not clamped for TIME_BASED) */
  f.now += 100 * SEC;
  breaker_get_metrics(b, &m);
  assert_int_equal(m.buffered, 0);
  breaker_free(b);
}

static void test_time_window_minimum_not_clamped(void **st) {
  (void)st;
  fake f = {.now = 10 * SEC};
  breaker_config c;
  cfg_small(&c, &f);
  c.window_type = BREAKER_TIME_BASED;
  c.window_size = 1;
  c.minimum_calls = 3;
  breaker *b = mk(&c);
  fail_n(b, 2);
  assert_int_equal(breaker_get_state(b), BREAKER_CLOSED);
  fail_n(b, 1);
  assert_int_equal(breaker_get_state(b), BREAKER_OPEN);
  breaker_free(b);
}

static void test_automatic_transition_timer(void **st) {
  (void)st;
  fake f = {.now = SEC};
  breaker_config c;
  cfg_small(&c, &f);
  c.automatic_transition = true;
  c.max_wait_in_half_open_ms = 500;
  breaker *b = mk(&c);
  fail_n(b, 4);
  f.now += 999 * MS;
  assert_int_equal(breaker_get_state(b), BREAKER_OPEN);
  f.now += MS; /* due at exactly the wait: timers fire at due <= now */
  assert_int_equal(breaker_get_state(b), BREAKER_HALF_OPEN);
  /* 500 ms in HALF_OPEN then OPEN (attempt 2), then HALF_OPEN again 1000 ms later */
  f.now += 1500 * MS;
  f.nevents = 0;
  breaker_tick(b);
  assert_int_equal(breaker_get_state(b), BREAKER_HALF_OPEN);
  assert_int_equal(f.nevents, 2);
  breaker_free(b);
}

static void test_half_open_max_wait_to_closed(void **st) {
  (void)st;
  fake f = {.now = SEC};
  breaker_config c;
  cfg_small(&c, &f);
  c.max_wait_in_half_open_ms = 200;
  c.transition_after_wait = BREAKER_CLOSED;
  breaker *b = mk(&c);
  breaker_transition(b, BREAKER_OPEN);
  breaker_transition(b, BREAKER_HALF_OPEN);
  f.now += 199 * MS;
  assert_int_equal(breaker_get_state(b), BREAKER_HALF_OPEN);
  f.now += MS;
  assert_int_equal(breaker_get_state(b), BREAKER_CLOSED);
  breaker_free(b);
}

static void test_exponential_backoff(void **st) {
  (void)st;
  fake f = {.now = SEC};
  breaker_config c;
  cfg_small(&c, &f);
  c.exponential_backoff = true;
  c.exponential_multiplier = 2.0;
  c.exponential_max_wait_ms = 3000;
  breaker *b = mk(&c);
  int64_t waits[] = {1000, 2000, 3000, 3000};
  for (int i = 0; i < 4; i++) {
    /* OPEN -> OPEN restarts the wait with attempt + 1 */
    assert_int_equal(breaker_transition(b, BREAKER_OPEN), 0);
    int64_t t0 = f.now;
    f.now = t0 + waits[i] * MS;
    assert_false(breaker_try_acquire(b));
    f.now = t0 + waits[i] * MS + 1;
    assert_true(breaker_try_acquire(b));
    breaker_transition(b, BREAKER_HALF_OPEN); /* keeps attempts */
  }
  breaker_free(b);
}

static void test_randomized_wait(void **st) {
  (void)st;
  fake f = {.now = SEC};
  breaker_config c;
  cfg_small(&c, &f);
  c.randomized_wait = true;
  c.randomized_wait_factor = 0.5;
  c.random = fake_random_half; /* 500 + 0.5 * (1500 - 500 + 1) = 1000.5 -> 1000 */
  breaker *b = mk(&c);
  breaker_transition(b, BREAKER_OPEN);
  f.now += 1000 * MS;
  assert_false(breaker_try_acquire(b));
  f.now += 1;
  assert_true(breaker_try_acquire(b));
  breaker_free(b);
  /* default source stays in [wait*(1-f), wait*(1+f)+1) */
  c.random = NULL;
  b = mk(&c);
  breaker_transition(b, BREAKER_OPEN);
  f.now += 1501 * MS + 1;
  assert_true(breaker_try_acquire(b));
  breaker_free(b);
}

static void test_disabled_forced_open_metrics_only(void **st) {
  (void)st;
  fake f = {.now = SEC};
  breaker_config c;
  cfg_small(&c, &f);
  breaker *b = mk(&c);
  f.nevents = 0;
  assert_int_equal(breaker_transition(b, BREAKER_DISABLED), 0);
  fail_n(b, 10);
  assert_int_equal(breaker_get_state(b), BREAKER_DISABLED);
  breaker_metrics m;
  breaker_get_metrics(b, &m);
  assert_int_equal(m.buffered, 0);
  assert_int_equal(f.nevents, 1); /* only the STATE_TRANSITION */
  assert_int_equal(breaker_transition(b, BREAKER_FORCED_OPEN), 0);
  assert_false(breaker_try_acquire(b));
  breaker_get_metrics(b, &m);
  assert_int_equal(m.not_permitted, 1);
  assert_int_equal(f.nevents, 2); /* NOT_PERMITTED is not published in FORCED_OPEN */
  f.now += 3600 * SEC;
  assert_int_equal(breaker_get_state(b), BREAKER_FORCED_OPEN); /* no timer */
  assert_int_equal(breaker_transition(b, BREAKER_METRICS_ONLY), 0);
  f.nevents = 0;
  fail_n(b, 8);
  assert_int_equal(breaker_get_state(b), BREAKER_METRICS_ONLY);
  int exceeded = 0;
  for (int i = 0; i < f.nevents; i++) exceeded += f.events[i] == BREAKER_EV_FAILURE_RATE_EXCEEDED;
  assert_int_equal(exceeded, 1);
  assert_int_equal(breaker_transition(b, BREAKER_OPEN), BREAKER_ERR_ILLEGAL_STATE);
  assert_int_equal(breaker_transition(b, BREAKER_HALF_OPEN), BREAKER_ERR_ILLEGAL_STATE);
  assert_int_equal(breaker_get_state(b), BREAKER_METRICS_ONLY);
  assert_int_equal(breaker_transition(b, BREAKER_CLOSED), 0);
  assert_int_equal(breaker_transition(b, BREAKER_HALF_OPEN), BREAKER_ERR_ILLEGAL_STATE);
  breaker_free(b);
}

static void test_same_state_transition_and_reset(void **st) {
  (void)st;
  fake f = {.now = SEC};
  breaker_config c;
  cfg_small(&c, &f);
  c.failure_rate_threshold = 100;
  breaker *b = mk(&c);
  fail_n(b, 2);
  f.nevents = 0;
  assert_int_equal(breaker_transition(b, BREAKER_CLOSED), 0); /* restarts: fresh metrics */
  assert_int_equal(f.nevents, 0);
  breaker_metrics m;
  breaker_get_metrics(b, &m);
  assert_int_equal(m.buffered, 0);
  breaker_transition(b, BREAKER_FORCED_OPEN);
  f.nevents = 0;
  breaker_reset(b);
  assert_int_equal(breaker_get_state(b), BREAKER_CLOSED);
  int want[] = {BREAKER_EV_STATE_TRANSITION, BREAKER_EV_RESET};
  assert_int_equal(f.nevents, 2);
  assert_memory_equal(f.events, want, sizeof want);
  f.nevents = 0;
  breaker_reset(b); /* already CLOSED: RESET only */
  assert_int_equal(f.nevents, 1);
  breaker_free(b);
}

static void test_reset_cancels_timer(void **st) {
  (void)st;
  fake f = {.now = SEC};
  breaker_config c;
  cfg_small(&c, &f);
  c.max_wait_in_half_open_ms = 100;
  breaker *b = mk(&c);
  breaker_transition(b, BREAKER_OPEN);
  breaker_transition(b, BREAKER_HALF_OPEN);
  breaker_reset(b);
  f.now += 10 * SEC;
  assert_int_equal(breaker_get_state(b), BREAKER_CLOSED);
  breaker_free(b);
}

static void test_initial_states(void **st) {
  (void)st;
  fake f = {.now = SEC};
  breaker_config c;
  cfg_small(&c, &f);
  c.initial_state = BREAKER_OPEN;
  breaker *b = mk(&c);
  assert_int_equal(breaker_get_state(b), BREAKER_OPEN);
  assert_false(breaker_try_acquire(b));
  f.now += 1000 * MS + 1;
  assert_true(breaker_try_acquire(b));
  breaker_free(b);
  c.initial_state = BREAKER_FORCED_OPEN;
  b = mk(&c);
  assert_false(breaker_try_acquire(b));
  breaker_free(b);
  c.initial_state = BREAKER_HALF_OPEN;
  b = mk(&c);
  assert_int_equal(breaker_get_state(b), BREAKER_HALF_OPEN);
  breaker_free(b);
}

static void test_events_ring(void **st) {
  (void)st;
  fake f = {.now = SEC, .wall = 1700000000 * SEC};
  breaker_config c;
  cfg_small(&c, &f);
  c.event_buffer_size = 3;
  c.failure_rate_threshold = 100;
  breaker *b = mk(&c);
  ok_n(b, 2);
  breaker_try_acquire(b);
  breaker_record_msg(b, BREAKER_FAILURE, 7 * MS, "java.io.IOException: boom");
  f.wall += SEC;
  breaker_try_acquire(b);
  breaker_record(b, BREAKER_IGNORED, 2 * MS);
  breaker_event ev[5];
  assert_int_equal(breaker_get_events(b, NULL, 0), 3);
  size_t n = breaker_get_events(b, ev, 5);
  assert_int_equal(n, 3);
  assert_int_equal(ev[0].type, BREAKER_EV_SUCCESS);
  assert_int_equal(ev[1].type, BREAKER_EV_ERROR);
  assert_string_equal(ev[1].message, "java.io.IOException: boom");
  assert_int_equal(ev[1].duration_ns, 7 * MS);
  assert_int_equal(ev[2].type, BREAKER_EV_IGNORED_ERROR);
  assert_int_equal(ev[2].wall_ns, 1700000001 * SEC);
  n = breaker_get_events(b, ev, 1); /* newest one */
  assert_int_equal(ev[0].type, BREAKER_EV_IGNORED_ERROR);
  breaker_counters k;
  breaker_get_counters(b, &k);
  assert_int_equal(k.calls[0], 2);
  assert_int_equal(k.calls[1], 1);
  assert_int_equal(k.calls[2], 1);
  assert_int_equal(k.sum_ns[1], 7 * MS);
  assert_int_equal(k.max_ns[0], MS);
  breaker_free(b);
}

static void test_names_and_classify(void **st) {
  (void)st;
  breaker_state s;
  breaker_event_type t;
  assert_string_equal(breaker_state_name(BREAKER_METRICS_ONLY), "METRICS_ONLY");
  assert_int_equal(breaker_state_parse("FORCED_OPEN", &s), 0);
  assert_int_equal(s, BREAKER_FORCED_OPEN);
  assert_int_equal(breaker_state_parse("nope", &s), BREAKER_ERR_INVALID);
  assert_int_equal(breaker_event_type_parse("NOT_PERMITTED", &t), 0);
  assert_int_equal(t, BREAKER_EV_NOT_PERMITTED);
  assert_string_equal(breaker_event_type_name(BREAKER_EV_SLOW_CALL_RATE_EXCEEDED), "SLOW_CALL_RATE_EXCEEDED");
  assert_int_equal(breaker_classify_http(200, false, false), BREAKER_SUCCESS);
  assert_int_equal(breaker_classify_http(404, false, false), BREAKER_SUCCESS);
  assert_int_equal(breaker_classify_http(499, false, false), BREAKER_SUCCESS);
  assert_int_equal(breaker_classify_http(500, false, false), BREAKER_FAILURE);
  assert_int_equal(breaker_classify_http(503, false, false), BREAKER_FAILURE);
  assert_int_equal(breaker_classify_http(0, true, false), BREAKER_FAILURE);
  assert_int_equal(breaker_classify_http(0, false, true), BREAKER_FAILURE);
}

static void test_registry(void **st) {
  (void)st;
  breaker_registry *r = breaker_registry_new();
  breaker_config c;
  breaker_config_default(&c);
  const char *names[] = {"storageService", "alpha", "zeta"};
  for (int i = 0; i < 3; i++) {
    breaker *b = NULL;
    assert_int_equal(breaker_new(names[i], &c, &b, NULL, 0), 0);
    assert_int_equal(breaker_registry_add(r, b), 0);
  }
  breaker *dup = NULL;
  breaker_new("alpha", &c, &dup, NULL, 0);
  assert_int_equal(breaker_registry_add(r, dup), BREAKER_ERR_EXISTS);
  breaker_free(dup);
  assert_int_equal(breaker_registry_count(r), 3);
  assert_string_equal(breaker_name(breaker_registry_at(r, 0)), "alpha");
  assert_string_equal(breaker_name(breaker_registry_at(r, 1)), "storageService");
  assert_string_equal(breaker_name(breaker_registry_at(r, 2)), "zeta");
  assert_null(breaker_registry_at(r, 3));
  assert_non_null(breaker_registry_get(r, "zeta"));
  assert_null(breaker_registry_get(r, "nope"));
  breaker_registry_free(r);
  breaker_registry_free(NULL);
}

typedef struct {
  breaker *b;
  int fail;
} worker_arg;

static void *worker(void *p) {
  worker_arg *a = p;
  for (int i = 0; i < 20000; i++) {
    if (breaker_try_acquire(a->b))
      breaker_record(a->b, a->fail && i % 3 == 0 ? BREAKER_FAILURE : BREAKER_SUCCESS, 1000);
    if (i % 5000 == 0) {
      breaker_metrics m;
      breaker_get_metrics(a->b, &m);
    }
  }
  return NULL;
}

static void test_two_threads(void **st) {
  (void)st;
  breaker_config c;
  breaker_config_default(&c);
  c.window_size = 50;
  c.minimum_calls = 10;
  c.failure_rate_threshold = 90;
  breaker *b = mk(&c);
  pthread_t t[2];
  worker_arg a[2] = {{b, 0}, {b, 1}};
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  breaker_metrics m;
  breaker_get_metrics(b, &m);
  assert_int_equal(m.buffered, 50);
  assert_int_equal(m.successful + m.failed, 50);
  breaker_counters k;
  breaker_get_counters(b, &k);
  assert_int_equal(k.calls[0] + k.calls[1], 40000);
  breaker_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_validation),
      cmocka_unit_test(test_float_format),
      cmocka_unit_test(test_closed_to_open_and_rates),
      cmocka_unit_test(test_rate_is_float32),
      cmocka_unit_test(test_open_wait_strict_then_half_open),
      cmocka_unit_test(test_half_open_to_open_and_ignored),
      cmocka_unit_test(test_half_open_minimum_smaller),
      cmocka_unit_test(test_slow_calls),
      cmocka_unit_test(test_both_exceeded_order),
      cmocka_unit_test(test_count_window_slides),
      cmocka_unit_test(test_time_window),
      cmocka_unit_test(test_time_window_minimum_not_clamped),
      cmocka_unit_test(test_automatic_transition_timer),
      cmocka_unit_test(test_half_open_max_wait_to_closed),
      cmocka_unit_test(test_exponential_backoff),
      cmocka_unit_test(test_randomized_wait),
      cmocka_unit_test(test_disabled_forced_open_metrics_only),
      cmocka_unit_test(test_same_state_transition_and_reset),
      cmocka_unit_test(test_reset_cancels_timer),
      cmocka_unit_test(test_initial_states),
      cmocka_unit_test(test_events_ring),
      cmocka_unit_test(test_names_and_classify),
      cmocka_unit_test(test_registry),
      cmocka_unit_test(test_two_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
