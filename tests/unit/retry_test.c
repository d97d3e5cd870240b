/* Unit tests of lib/retry: exact backoff values, jitter bounds and spread, determinism
 * from the seed, overflow safety, and the loop with a recording sleep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "retry/retry.h"

static const retry_policy exp100 = {
    .initial_ms = 100, .multiplier = 2.0, .max_delay_ms = 1000, .jitter = RETRY_JITTER_NONE, .max_attempts = 5};

static void test_policy_check(void **state) {
  (void)state;
  assert_int_equal(retry_policy_check(&exp100), 0);
  retry_policy p = exp100;
  p.initial_ms = 0;
  assert_int_equal(retry_policy_check(&p), RETRY_ERR_INVALID);
  p = exp100;
  p.multiplier = 0.5;
  assert_int_equal(retry_policy_check(&p), RETRY_ERR_INVALID);
  p.multiplier = NAN;
  assert_int_equal(retry_policy_check(&p), RETRY_ERR_INVALID);
  p = exp100;
  p.max_delay_ms = 50;
  assert_int_equal(retry_policy_check(&p), RETRY_ERR_INVALID);
  p = exp100;
  p.jitter = (retry_jitter)7;
  assert_int_equal(retry_policy_check(&p), RETRY_ERR_INVALID);
  assert_int_equal(retry_policy_check(NULL), RETRY_ERR_INVALID);
}

static void test_exponential_exact(void **state) {
  (void)state;
  uint64_t rng = 1;
  const uint32_t want[] = {0, 100, 200, 400, 800, 1000, 1000, 1000};
  for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++)
    assert_int_equal(retry_delay_ms(&exp100, i, &rng), want[i]);
  assert_int_equal(rng, 1); /* no jitter, no draw */
  retry_policy p = {.initial_ms = 500, .multiplier = 1.5, .max_delay_ms = 10000};
  assert_int_equal(retry_delay_ms(&p, 1, &rng), 500);
  assert_int_equal(retry_delay_ms(&p, 2, &rng), 750);
  assert_int_equal(retry_delay_ms(&p, 3, &rng), 1125);
  assert_int_equal(retry_delay_ms(&p, 4, &rng), 1687); /* floor of 1687.5 */
  p.multiplier = 1.0;                                  /* constant backoff */
  assert_int_equal(retry_delay_ms(&p, 50, &rng), 500);
}

static void test_huge_attempts_saturate(void **state) {
  (void)state;
  uint64_t rng = 7;
  retry_policy p = {.initial_ms = 1, .multiplier = 100.0, .max_delay_ms = UINT32_MAX};
  assert_int_equal(retry_delay_ms(&p, 4000000000u, &rng), UINT32_MAX);
  assert_int_equal(retry_delay_ms(&exp100, 100000, &rng), 1000);
  p.jitter = RETRY_JITTER_FULL;
  for (int i = 0; i < 1000; i++) (void)retry_delay_ms(&p, 1000, &rng); /* no UB (UBSan) */
}

static void test_full_jitter(void **state) {
  (void)state;
  retry_policy p = exp100;
  p.jitter = RETRY_JITTER_FULL;
  uint64_t rng = 42;
  double sum = 0;
  uint32_t lo = UINT32_MAX, hi = 0;
  const int n = 20000;
  for (int i = 0; i < n; i++) {
    uint32_t d = retry_delay_ms(&p, 3, &rng); /* base 400 */
    assert_true(d <= 400);
    sum += d;
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
  }
  assert_true(sum / n > 190 && sum / n < 210); /* mean base/2 */
  assert_true(lo < 10 && hi > 390);            /* spreads over the whole range */
}

static void test_equal_jitter(void **state) {
  (void)state;
  retry_policy p = exp100;
  p.jitter = RETRY_JITTER_EQUAL;
  uint64_t rng = 43;
  double sum = 0;
  const int n = 20000;
  for (int i = 0; i < n; i++) {
    uint32_t d = retry_delay_ms(&p, 5, &rng); /* base 1000 (capped) */
    assert_true(d >= 500 && d <= 1000);
    sum += d;
  }
  assert_true(sum / n > 735 && sum / n < 765); /* mean 3/4 base */
  p.initial_ms = 1;                            /* odd and tiny bases stay inside [b/2, b] */
  p.max_delay_ms = 1;
  for (int i = 0; i < 100; i++) assert_true(retry_delay_ms(&p, 1, &rng) <= 1);
}

static void test_same_seed_same_delays(void **state) {
  (void)state;
  retry_policy p = exp100;
  p.jitter = RETRY_JITTER_FULL;
  uint64_t a = 99, b = 99, c = 100;
  int differ = 0;
  for (unsigned i = 1; i < 50; i++) {
    uint32_t x = retry_delay_ms(&p, i, &a);
    assert_int_equal(x, retry_delay_ms(&p, i, &b));
    differ += x != retry_delay_ms(&p, i, &c);
  }
  assert_true(differ > 40);
}

/* ---- the loop */
typedef struct fake {
  int fail_times; /* fail this many times, then succeed */
  int error;
  bool retryable;
  int calls;
  uint32_t sleeps[16];
  int n_sleeps;
  atomic_bool *raise_stop_on_sleep;
} fake;

static int fake_op(void *ud, unsigned attempt, bool *retryable) {
  fake *f = ud;
  f->calls++;
  assert_int_equal(attempt, (unsigned)f->calls);
  if (f->calls > f->fail_times) return 0;
  *retryable = f->retryable;
  return f->error;
}

static void fake_sleep(void *ud, uint32_t ms) {
  fake *f = ud;
  if (f->n_sleeps < 16) f->sleeps[f->n_sleeps++] = ms;
  if (f->raise_stop_on_sleep) atomic_store(f->raise_stop_on_sleep, true);
}

static void test_run_succeeds_after_failures(void **state) {
  (void)state;
  fake f = {.fail_times = 2, .error = -4, .retryable = true};
  uint64_t rng = 1;
  retry_hooks h = {.sleep = fake_sleep, .sleep_ud = &f, .rng_state = &rng};
  unsigned attempts = 0;
  assert_int_equal(retry_run(&exp100, fake_op, &f, &h, &attempts), 0);
  assert_int_equal(attempts, 3);
  assert_int_equal(f.n_sleeps, 2);
  assert_int_equal(f.sleeps[0], 100);
  assert_int_equal(f.sleeps[1], 200);
}

static void test_run_gives_up(void **state) {
  (void)state;
  fake f = {.fail_times = 100, .error = -4, .retryable = true};
  retry_hooks h = {.sleep = fake_sleep, .sleep_ud = &f};
  unsigned attempts = 0;
  assert_int_equal(retry_run(&exp100, fake_op, &f, &h, &attempts), -4);
  assert_int_equal(attempts, 5);
  assert_int_equal(f.n_sleeps, 4); /* no sleep after the last attempt */
  assert_int_equal(f.sleeps[3], 800);
}

static void test_run_not_retryable(void **state) {
  (void)state;
  fake f = {.fail_times = 100, .error = -9, .retryable = false};
  retry_hooks h = {.sleep = fake_sleep, .sleep_ud = &f};
  unsigned attempts = 0;
  assert_int_equal(retry_run(&exp100, fake_op, &f, &h, &attempts), -9);
  assert_int_equal(attempts, 1);
  assert_int_equal(f.n_sleeps, 0);
}

static void test_run_stop_flag(void **state) {
  (void)state;
  atomic_bool stop = false;
  retry_policy unlimited = exp100;
  unlimited.max_attempts = 0;
  fake f = {.fail_times = 1000, .error = -4, .retryable = true, .raise_stop_on_sleep = &stop};
  retry_hooks h = {.sleep = fake_sleep, .sleep_ud = &f, .stop = &stop};
  unsigned attempts = 0;
  assert_int_equal(retry_run(&unlimited, fake_op, &f, &h, &attempts), -4);
  assert_int_equal(attempts, 1); /* stop raised during the first sleep */
}

static void test_run_real_sleep_and_invalid(void **state) {
  (void)state;
  retry_policy tiny = {
      .initial_ms = 1, .multiplier = 2, .max_delay_ms = 4, .max_attempts = 3, .jitter = RETRY_JITTER_EQUAL};
  fake f = {.fail_times = 2, .error = -4, .retryable = true};
  assert_int_equal(retry_run(&tiny, fake_op, &f, NULL, NULL), 0);
  retry_policy bad = {0};
  unsigned attempts = 9;
  assert_int_equal(retry_run(&bad, fake_op, &f, NULL, &attempts), RETRY_ERR_INVALID);
  assert_int_equal(attempts, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_policy_check),
      cmocka_unit_test(test_exponential_exact),
      cmocka_unit_test(test_huge_attempts_saturate),
      cmocka_unit_test(test_full_jitter),
      cmocka_unit_test(test_equal_jitter),
      cmocka_unit_test(test_same_seed_same_delays),
      cmocka_unit_test(test_run_succeeds_after_failures),
      cmocka_unit_test(test_run_gives_up),
      cmocka_unit_test(test_run_not_retryable),
      cmocka_unit_test(test_run_stop_flag),
      cmocka_unit_test(test_run_real_sleep_and_invalid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
