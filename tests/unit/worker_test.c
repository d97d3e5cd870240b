/* Unit tests of lib/worker: the first delay, the step's delay (0 = again at once), kicks
 * ending a wait (also one that arrives while the step runs), stop ending any wait, restart,
 * and the backoff over lib/retry's policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "worker/worker.h"

#define LONG_MS 60000u

typedef struct {
  atomic_int runs;
  atomic_int again; /* steps still to answer 0 before answering LONG_MS */
  worker *self;     /* kicked from inside the step when set */
  atomic_bool kick_inside;
} probe;

static uint32_t step(void *ud) {
  probe *p = ud;
  atomic_fetch_add(&p->runs, 1);
  if (atomic_load(&p->kick_inside) && p->self) {
    atomic_store(&p->kick_inside, false);
    worker_kick(p->self); /* as if kicked while the step runs */
  }
  if (atomic_load(&p->again) > 0) {
    atomic_fetch_sub(&p->again, 1);
    return 0;
  }
  return LONG_MS;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Waits up to 5 s for runs to reach want; true when it did. */
static bool runs_reach(probe *p, int want) {
  long long until = now_ms() + 5000;
  while (atomic_load(&p->runs) < want && now_ms() < until) sleep_ms(1);
  return atomic_load(&p->runs) >= want;
}

static void test_null_and_unstarted(void **state) {
  (void)state;
  worker_free(NULL);
  worker_stop(NULL);
  probe p = {0};
  worker *w = worker_new(step, &p);
  assert_non_null(w);
  worker_kick(w); /* before start: only remembered */
  worker_stop(w); /* never started: nothing to join */
  worker_free(w);
  assert_int_equal(atomic_load(&p.runs), 0);
}

static void test_first_step_at_once_then_waits(void **state) {
  (void)state;
  probe p = {0};
  worker *w = worker_new(step, &p);
  assert_int_equal(worker_start(w, 0), WORKER_OK);
  assert_int_equal(worker_start(w, 0), WORKER_OK); /* running already: nothing more */
  assert_true(runs_reach(&p, 1));
  sleep_ms(50);
  assert_int_equal(atomic_load(&p.runs), 1); /* now in its 60 s wait */
  long long t0 = now_ms();
  worker_free(w); /* stop ends the wait at once */
  assert_true(now_ms() - t0 < 2000);
}

static void test_first_delay_and_kick(void **state) {
  (void)state;
  probe p = {0};
  worker *w = worker_new(step, &p);
  assert_int_equal(worker_start(w, LONG_MS), WORKER_OK);
  sleep_ms(50);
  assert_int_equal(atomic_load(&p.runs), 0); /* still in the first delay */
  worker_kick(w);
  assert_true(runs_reach(&p, 1));
  worker_kick(w);
  assert_true(runs_reach(&p, 2));
  sleep_ms(50);
  assert_int_equal(atomic_load(&p.runs), 2); /* kicks do not add up to more steps */
  worker_free(w);
}

static void test_zero_delay_runs_again(void **state) {
  (void)state;
  probe p = {0};
  atomic_store(&p.again, 5);
  worker *w = worker_new(step, &p);
  assert_int_equal(worker_start(w, 0), WORKER_OK);
  assert_true(runs_reach(&p, 6)); /* five times 0, then the long wait */
  sleep_ms(50);
  assert_int_equal(atomic_load(&p.runs), 6);
  worker_free(w);
}

static void test_kick_during_step_not_lost(void **state) {
  (void)state;
  probe p = {0};
  worker *w = worker_new(step, &p);
  p.self = w;
  atomic_store(&p.kick_inside, true);
  assert_int_equal(worker_start(w, 0), WORKER_OK);
  assert_true(runs_reach(&p, 2)); /* the kick from inside the first step ended its wait */
  sleep_ms(50);
  assert_int_equal(atomic_load(&p.runs), 2);
  worker_free(w);
}

static void test_kick_pending_across_zero_delay(void **state) {
  (void)state;
  probe p = {0};
  atomic_store(&p.again, 1);
  worker *w = worker_new(step, &p);
  p.self = w;
  atomic_store(&p.kick_inside, true); /* kicked in the first step, which answers 0 */
  assert_int_equal(worker_start(w, 0), WORKER_OK);
  assert_true(runs_reach(&p, 3)); /* step 2 at once, and the kick still ends the wait after it */
  sleep_ms(50);
  assert_int_equal(atomic_load(&p.runs), 3);
  worker_free(w);
}

static void test_restart(void **state) {
  (void)state;
  probe p = {0};
  worker *w = worker_new(step, &p);
  assert_int_equal(worker_start(w, 0), WORKER_OK);
  assert_true(runs_reach(&p, 1));
  worker_stop(w);
  worker_stop(w); /* twice: nothing */
  assert_int_equal(worker_start(w, 0), WORKER_OK);
  assert_true(runs_reach(&p, 2));
  worker_free(w);
}

static void test_backoff(void **state) {
  (void)state;
  worker_backoff b = {
      .policy = {.initial_ms = 200, .multiplier = 2.0, .max_delay_ms = 5000, .jitter = RETRY_JITTER_NONE}};
  assert_int_equal(worker_backoff_delay(&b), 0);
  const uint32_t want[] = {200, 400, 800, 1600, 3200, 5000, 5000};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    worker_backoff_failed(&b);
    assert_int_equal(worker_backoff_delay(&b), want[i]);
  }
  worker_backoff_reset(&b);
  assert_int_equal(b.failures, 0);
  assert_int_equal(worker_backoff_delay(&b), 0);
  b.failures = UINT_MAX;
  worker_backoff_failed(&b); /* saturates */
  assert_int_equal(b.failures, UINT_MAX);
  assert_int_equal(worker_backoff_delay(&b), 5000);
  /* equal jitter stays within [base/2, base] */
  worker_backoff j = {
      .policy = {.initial_ms = 500, .multiplier = 2.0, .max_delay_ms = 5000, .jitter = RETRY_JITTER_EQUAL}, .rng = 42};
  worker_backoff_failed(&j);
  for (int i = 0; i < 100; i++) {
    uint32_t d = worker_backoff_delay(&j);
    assert_true(d >= 250 && d <= 500);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_null_and_unstarted),
      cmocka_unit_test(test_first_step_at_once_then_waits),
      cmocka_unit_test(test_first_delay_and_kick),
      cmocka_unit_test(test_zero_delay_runs_again),
      cmocka_unit_test(test_kick_during_step_not_lost),
      cmocka_unit_test(test_kick_pending_across_zero_delay),
      cmocka_unit_test(test_restart),
      cmocka_unit_test(test_backoff),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
