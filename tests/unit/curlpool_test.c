/* Unit tests of lib/curlpool: handles are reused, the pool keeps at most max_idle (the rest
 * are cleaned up: ASan's leak check sees any that is lost), and it holds under threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include <cmocka.h>

#include "curlpool/curlpool.h"

static void test_reuse(void **state) {
  (void)state;
  assert_null(curlpool_new(0));
  assert_null(curlpool_new(-1));
  curlpool *p = curlpool_new(2);
  assert_non_null(p);
  assert_int_equal(curlpool_idle(p), 0);
  CURL *h = curlpool_get(p);
  assert_non_null(h);
  curl_easy_setopt(h, CURLOPT_URL, "http://127.0.0.1:1/");
  curlpool_put(p, h);
  assert_int_equal(curlpool_idle(p), 1);
  CURL *again = curlpool_get(p);
  assert_ptr_equal(again, h); /* the same handle (its connections with it) */
  assert_int_equal(curlpool_idle(p), 0);
  curlpool_put(p, again);
  curlpool_put(p, NULL); /* ignored */
  assert_int_equal(curlpool_idle(p), 1);
  curlpool_free(p); /* cleans up the idle one */
  curlpool_free(NULL);
}

static void test_keeps_at_most_max_idle(void **state) {
  (void)state;
  curlpool *p = curlpool_new(2);
  CURL *h[3];
  for (int i = 0; i < 3; i++) h[i] = curlpool_get(p);
  assert_true(h[0] != h[1] && h[1] != h[2] && h[0] != h[2]);
  for (int i = 0; i < 3; i++) curlpool_put(p, h[i]);
  assert_int_equal(curlpool_idle(p), 2); /* the third was cleaned up */
  curlpool_free(p);
}

/* The handles taken right now, across threads: a handle given to two takers at once
 * shows up here twice. */
typedef struct {
  curlpool *pool;
  pthread_mutex_t mu;
  CURL *taken[64];
  int n;
  int doubles;
} churn_ctx;

static void take(churn_ctx *c, CURL *h) {
  pthread_mutex_lock(&c->mu);
  for (int i = 0; i < c->n; i++)
    if (c->taken[i] == h) c->doubles++;
  if (c->n < 64) c->taken[c->n++] = h;
  pthread_mutex_unlock(&c->mu);
}

static void give(churn_ctx *c, CURL *h) {
  pthread_mutex_lock(&c->mu);
  for (int i = 0; i < c->n; i++)
    if (c->taken[i] == h) {
      c->taken[i] = c->taken[--c->n];
      break;
    }
  pthread_mutex_unlock(&c->mu);
  curlpool_put(c->pool, h); /* after leaving the set: another may take it at once */
}

static void *churn(void *arg) {
  churn_ctx *c = arg;
  for (int i = 0; i < 2000; i++) {
    CURL *a = curlpool_get(c->pool), *b = curlpool_get(c->pool);
    if (!a || !b) return (void *)1;
    take(c, a);
    take(c, b);
    give(c, b);
    give(c, a);
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  churn_ctx c = {.pool = curlpool_new(3)};
  pthread_mutex_init(&c.mu, NULL);
  pthread_t th[4];
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, churn, &c), 0);
  for (int i = 0; i < 4; i++) {
    void *ret;
    pthread_join(th[i], &ret);
    assert_null(ret);
  }
  assert_int_equal(c.doubles, 0); /* no handle was ever given to two takers */
  assert_int_equal(c.n, 0);
  assert_true(curlpool_idle(c.pool) <= 3);
  pthread_mutex_destroy(&c.mu);
  curlpool_free(c.pool);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reuse),
      cmocka_unit_test(test_keeps_at_most_max_idle),
      cmocka_unit_test(test_threads),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
