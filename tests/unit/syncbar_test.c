/* Unit tests of lib/syncbar: disabled barrier, a real syncfs on a directory, a missing
 * directory, error reporting (a failure reaches exactly the callers it covers), and group
 * commit under concurrency (every caller is covered by a sync that started after it came,
 * and many callers share few syncs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "syncbar/syncbar.h"

static void test_disabled(void **state) {
  (void)state;
  syncbar *b;
  assert_int_equal(syncbar_new(NULL, NULL, NULL, &b), 0);
  assert_int_equal(syncbar_wait(b), 0);
  assert_int_equal(syncbar_count(b), 0);
  syncbar_free(b);
  assert_int_equal(syncbar_new("", NULL, NULL, &b), 0);
  assert_int_equal(syncbar_wait(b), 0);
  syncbar_free(b);
  syncbar_free(NULL);
}

static void test_real_syncfs(void **state) {
  (void)state;
  syncbar *b;
  assert_int_equal(syncbar_new("/tmp", NULL, NULL, &b), 0);
  assert_int_equal(syncbar_wait(b), 0);
  assert_int_equal(syncbar_wait(b), 0);
  assert_int_equal(syncbar_count(b), 2); /* one caller at a time: one sync each */
  syncbar_free(b);
}

static void test_missing_directory_refused(void **state) {
  (void)state;
  syncbar *b = (syncbar *)0x1;
  assert_int_equal(syncbar_new("/nonexistent/fermata", NULL, NULL, &b), -ENOENT);
  assert_null(b);
  assert_int_equal(syncbar_new("/etc/hostname", NULL, NULL, &b), -ENOTDIR);
}

/* A scripted sync: counts, sleeps a little (so callers pile up), fails when told. */
typedef struct {
  atomic_int calls;
  atomic_int fail_next;
  atomic_int in_sync;
  atomic_int max_in_sync;
} script;

static int scripted(void *ud, int fd) {
  (void)fd;
  script *s = ud;
  int now = atomic_fetch_add(&s->in_sync, 1) + 1;
  if (now > atomic_load(&s->max_in_sync)) atomic_store(&s->max_in_sync, now);
  atomic_fetch_add(&s->calls, 1);
  usleep(2000);
  atomic_fetch_sub(&s->in_sync, 1);
  return atomic_exchange(&s->fail_next, 0);
}

static void test_failure_reaches_its_callers(void **state) {
  (void)state;
  script s = {0};
  syncbar *b;
  assert_int_equal(syncbar_new("/tmp", scripted, &s, &b), 0);
  atomic_store(&s.fail_next, -EIO);
  assert_int_equal(syncbar_wait(b), -EIO);
  assert_int_equal(syncbar_wait(b), 0); /* the next sync succeeded and covers the next caller */
  syncbar_free(b);
}

typedef struct {
  syncbar *b;
  script *s;
  int rounds;
  atomic_int *bad;
} worker_arg;

static void *worker(void *p) {
  worker_arg *a = p;
  for (int i = 0; i < a->rounds; i++) {
    int before = atomic_load(&a->s->calls); /* syncs begun or done before we call */
    if (syncbar_wait(a->b) != 0) atomic_fetch_add(a->bad, 1);
    /* covered only by a sync that began after we called: at least one more call */
    if (atomic_load(&a->s->calls) <= before) atomic_fetch_add(a->bad, 1);
  }
  return NULL;
}

static void test_group_commit(void **state) {
  (void)state;
  script s = {0};
  syncbar *b;
  assert_int_equal(syncbar_new("/tmp", scripted, &s, &b), 0);
  enum { THREADS = 8, ROUNDS = 25 };
  atomic_int bad = 0;
  pthread_t th[THREADS];
  worker_arg a = {b, &s, ROUNDS, &bad};
  for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&th[i], NULL, worker, &a), 0);
  for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
  assert_int_equal(atomic_load(&bad), 0);
  assert_int_equal(atomic_load(&s.max_in_sync), 1); /* one sync at a time */
  int calls = atomic_load(&s.calls);
  print_message("%d waits served by %d syncs\n", THREADS * ROUNDS, calls);
  assert_true(calls < THREADS * ROUNDS); /* shared */
  assert_int_equal((int)syncbar_count(b), calls);
  syncbar_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_disabled),
      cmocka_unit_test(test_real_syncfs),
      cmocka_unit_test(test_missing_directory_refused),
      cmocka_unit_test(test_failure_reaches_its_callers),
      cmocka_unit_test(test_group_commit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
