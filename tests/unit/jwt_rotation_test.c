/* Unit tests of lib/jwt with lib/jwks underneath: JWKS rotation as a verifier sees it
 * (an unknown kid refetches the set, rate-limited; a retired key stops verifying once the
 * set expires), an unreachable issuer, and verifications racing set replacements. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "jwt_fixture.h"

static void test_rotation(void **state) {
  fx *f = *state;
  assert_int_equal(check(f, good(f)), 0);
  assert_int_equal(f->fetches, 1);
  /* kid r2 is unknown, right after the first fetch: too soon to ask again */
  char *t2 = token_with(f->rsa2, "RS256", "r2", NULL, NULL);
  assert_int_equal(jwt_verify(f->v, t2, strlen(t2), &f->claims), JWT_ERR_UNKNOWN_KEY);
  assert_int_equal(f->fetches, 1);
  free(t2);
  /* 30 s later: one refetch (still without r2), then no more within 30 s */
  atomic_fetch_add(&f->mono, 30);
  t2 = token_with(f->rsa2, "RS256", "r2", NULL, NULL);
  assert_int_equal(jwt_verify(f->v, t2, strlen(t2), &f->claims), JWT_ERR_UNKNOWN_KEY);
  assert_int_equal(f->fetches, 2);
  for (int i = 0; i < 20; i++) /* made-up kids do not amplify */
    assert_int_equal(check(f, token_with(f->rsa2, "RS256", "made-up", NULL, NULL)), JWT_ERR_UNKNOWN_KEY);
  assert_int_equal(f->fetches, 2);
  /* the issuer publishes r2 next to r1: the next refresh brings it in */
  serve(f, 3, f->rsa, "r1", f->rsa2, "r2", f->ec, "e1");
  atomic_fetch_add(&f->mono, 29);
  assert_int_equal(jwt_verify(f->v, t2, strlen(t2), &f->claims), JWT_ERR_UNKNOWN_KEY);
  assert_int_equal(f->fetches, 2);
  atomic_fetch_add(&f->mono, 1);
  assert_int_equal(jwt_verify(f->v, t2, strlen(t2), &f->claims), 0);
  assert_int_equal(f->fetches, 3);
  assert_int_equal(check(f, good(f)), 0); /* r1 still there */
  /* the issuer retires r1: once the set expires, r1 tokens stop verifying */
  serve(f, 1, f->rsa2, "r2");
  atomic_fetch_add(&f->mono, 299);
  assert_int_equal(check(f, good(f)), 0);
  atomic_fetch_add(&f->mono, 1);
  assert_int_equal(check(f, good(f)), JWT_ERR_UNKNOWN_KEY);
  assert_int_equal(f->fetches, 4);
  assert_int_equal(jwt_verify(f->v, t2, strlen(t2), &f->claims), 0);
  free(t2);
}

static void test_keys_unavailable(void **state) {
  fx *f = *state;
  f->fetch_rc = JWKS_ERR_FETCH;
  assert_int_equal(check(f, good(f)), JWT_ERR_KEYS_UNAVAILABLE);
  assert_int_equal(jwt_http_status(JWT_ERR_KEYS_UNAVAILABLE), 503);
  /* the issuer is back: after the retry interval, tokens verify */
  f->fetch_rc = 0;
  assert_int_equal(check(f, good(f)), JWT_ERR_KEYS_UNAVAILABLE);
  atomic_fetch_add(&f->mono, 30);
  assert_int_equal(check(f, good(f)), 0);
  /* down again after a success: the last good set stays in use */
  f->fetch_rc = JWKS_ERR_FETCH;
  atomic_fetch_add(&f->mono, 1000);
  assert_int_equal(check(f, good(f)), 0);
  assert_int_equal(f->fetches, 3);
}

typedef struct worker {
  fx *f;
  char *token;
  int failures;
} worker;

static void *verify_loop(void *arg) {
  worker *w = arg;
  jwt_claims c;
  for (int i = 0; i < 200; i++)
    if (jwt_verify(w->f->v, w->token, strlen(w->token), &c) != 0) w->failures++;
  return NULL;
}

/* Verifications in four threads while the key set is replaced under them. */
static void test_concurrent_rotation(void **state) {
  fx *f = *state;
  worker w[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker){.f = f, .token = i % 2 ? good(f) : token_with(f->ec, "ES256", "e1", NULL, NULL)};
    assert_int_equal(pthread_create(&t[i], NULL, verify_loop, &w[i]), 0);
  }
  for (int i = 0; i < 50; i++) {
    serve(f, 2 + i % 2, f->rsa, "r1", f->ec, "e1", f->rsa2, "r2");
    int before = atomic_load(&f->fetches);
    atomic_fetch_add(&f->mono, 300); /* expire: the next verification refetches */
    /* a worker's fetch in flight from before this expiry makes a get return the set it
       had: ask until a fetch since the expiry happened (each expiry gets its own) */
    for (int tries = 0; atomic_load(&f->fetches) == before && tries < 100000; tries++) {
      jwks_set *s = NULL;
      assert_int_equal(jwks_cache_get(f->cache, &s), 0);
      jwks_set_free(s);
    }
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(w[i].failures, 0);
    free(w[i].token);
  }
  assert_true(f->fetches >= 50);
}


#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_rotation),
      T(test_keys_unavailable),
      T(test_concurrent_rotation),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
