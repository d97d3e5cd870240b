/* Unit tests for lib/breaker's lock-free fast path (breaker_stripe.c and its use in
 * breaker_state.c).
 *
 * - Stripes: claim, hand-back at thread exit with the counts kept, more threads than
 *   stripes.
 * - Model: random operations on two breakers with the same config and clock, one with a
 *   listener (every record takes the mutex, the path the conformance test checks against
 *   Resilience4j) and one without consumers (records take the fast path); reads at random
 *   gaps, so one read applies many stripe successes at once, must agree on everything.
 * - Threads: several threads hammer acquire/record; checks that hold under any
 *   interleaving (exact counts, an exact window when the order cannot matter, the breaker
 *   opens once, nothing is permitted once OPEN is visible). Threads never call cmocka:
 *   they count violations and the main thread asserts. Run them under ThreadSanitizer
 *   too after changing the fast path:
 *     CC=clang cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=Debug \
 *       -DCMAKE_C_FLAGS="-fsanitize=thread -O1 -g" -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread
 *     cmake --build build/tsan --target breaker_stripe_test
 *     build/tsan/lib/breaker/breaker_stripe_test
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "breaker/breaker.h"
#include "breaker/breaker_stripe.h"

#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)

/* ---- stripes ---------------------------------------------------------------------- */

typedef struct claim_arg {
  breaker__stripes *set;
  pthread_mutex_t *mu; /* stands for the breaker's mutex */
  breaker__stripe *got;
  int adds;
} claim_arg;

static void *claim_thread(void *p) {
  claim_arg *a = p;
  pthread_mutex_lock(a->mu);
  a->got = breaker__stripe_claim(a->set);
  pthread_mutex_unlock(a->mu);
  if (a->got) {
    for (int i = 0; i < a->adds; i++) breaker__stripe_add(a->got, BREAKER__K_SUCCESS, 7, 10);
  }
  return NULL; /* the key's destructor hands the stripe back */
}

static void test_claim_and_hand_back(void **st) {
  (void)st;
  breaker__stripes set;
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  assert_int_equal(breaker__stripes_init(&set), BREAKER_OK);
  assert_non_null(set.s);
  assert_null(breaker__stripe_mine(&set));
  breaker__stripe *mine = breaker__stripe_claim(&set);
  assert_non_null(mine);
  assert_ptr_equal(breaker__stripe_mine(&set), mine);
  assert_true(atomic_load(&set.owner[mine - set.s]) == breaker__thread_token());
  assert_null(breaker__stripe_claim(&set)); /* one per thread */
  breaker__stripe_add(mine, BREAKER__K_SUCCESS, 7, 5);
  breaker__stripe_add(mine, BREAKER__K_IGNORED, 7, 9);

  claim_arg a = {&set, &mu, NULL, 3};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, claim_thread, &a), 0);
  pthread_join(t, NULL);
  assert_non_null(a.got);
  assert_ptr_not_equal(a.got, mine);
  assert_true(atomic_load(&set.owner[a.got - set.s]) == 0); /* given back at exit */
  assert_int_equal(__builtin_popcountll(set.claimed), 2);

  /* the next thread (often on the same control block, so the same stripe) counts on */
  claim_arg b = {&set, &mu, NULL, 2};
  assert_int_equal(pthread_create(&t, NULL, claim_thread, &b), 0);
  pthread_join(t, NULL);
  assert_non_null(b.got);
  assert_true(atomic_load(&set.owner[b.got - set.s]) == 0);
  assert_int_equal(breaker__stripes_in_gen(&set, 7), 1 + 3 + 2);
  assert_int_equal(breaker__stripes_in_gen(&set, 8), 0);
  if (b.got == a.got) assert_int_equal(atomic_load(&a.got->in_gen), 3 + 2);

  /* a new generation restarts the window count, not the lifetime counters */
  breaker__stripe_add(mine, BREAKER__K_SUCCESS, 8, 20);
  assert_int_equal(breaker__stripes_in_gen(&set, 7), 3 + 2);
  assert_int_equal(breaker__stripes_in_gen(&set, 8), 1);
  breaker_counters k;
  memset(&k, 0, sizeof k);
  breaker__stripes_add_counters(&set, &k);
  assert_int_equal(k.calls[0], 1 + 3 + 2 + 1);
  assert_int_equal(k.sum_ns[0], 5 + 50 + 20);
  assert_int_equal(k.max_ns[0], 20);
  assert_int_equal(k.calls[1], 0);
  assert_int_equal(k.calls[2], 1);
  assert_int_equal(k.max_ns[2], 9);
  breaker__stripes_destroy(&set);
}

/* Threads whose slots collide probe on; a thread finds the stripe it claimed. */
static void test_claim_probes_past_taken_slots(void **st) {
  (void)st;
  breaker__stripes set;
  assert_int_equal(breaker__stripes_init(&set), BREAKER_OK);
  unsigned home = breaker__stripe_home(breaker__thread_token());
  /* pretend live threads own this thread's first BREAKER__PROBES - 1 slots */
  for (unsigned p = 0; p + 1 < BREAKER__PROBES; p++)
    atomic_store(&set.owner[(home + p) % BREAKER__STRIPES], (uintptr_t)1 + p);
  breaker__stripe *s = breaker__stripe_claim(&set);
  assert_ptr_equal(s, &set.s[(home + BREAKER__PROBES - 1) % BREAKER__STRIPES]);
  assert_ptr_equal(breaker__stripe_mine(&set), s);
  /* a thread whose whole range is taken gets none (and takes the breaker's mutex) */
  atomic_store(&set.owner[s - set.s], (uintptr_t)99);
  assert_null(breaker__stripe_mine(&set));
  pthread_setspecific(set.key, NULL); /* no destructor for the fake owner's stripe */
  assert_null(breaker__stripe_claim(&set));
  breaker__stripes_destroy(&set);
}

/* ---- model: fast path against the locked path ------------------------------------ */

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rnd(rng *r) {
  r->s ^= r->s << 13;
  r->s ^= r->s >> 7;
  r->s ^= r->s << 17;
  return r->s;
}

static int64_t rnd_in(rng *r, int64_t lo, int64_t hi) /* inclusive */
{
  return lo + (int64_t)(rnd(r) % (uint64_t)(hi - lo + 1));
}

static int64_t model_clock(void *ctx) { return *(int64_t *)ctx; }

static void ignore_event(void *ctx, const breaker *b, const breaker_event *ev) {
  (void)ctx;
  (void)b;
  (void)ev;
}

static void random_config(rng *r, breaker_config *c, int64_t *now) {
  static const float thresholds[] = {1, 10, 25, 33.3f, 50, 60, 75, 99.9f, 100};
  breaker_config_default(c);
  c->clock = model_clock;
  c->clock_ctx = now;
  c->window_type = rnd_in(r, 0, 4) == 0 ? BREAKER_TIME_BASED : BREAKER_COUNT_BASED;
  c->window_size = (int32_t)rnd_in(r, 1, c->window_type == BREAKER_TIME_BASED ? 5 : 20);
  c->minimum_calls = (int32_t)rnd_in(r, 1, 25);
  c->failure_rate_threshold = thresholds[rnd_in(r, 0, 8)];
  c->slow_call_rate_threshold = rnd_in(r, 0, 1) ? 100 : thresholds[rnd_in(r, 0, 8)];
  c->slow_call_duration_threshold_ns = rnd_in(r, 1, 50) * MS;
  c->permitted_calls_in_half_open = (int32_t)rnd_in(r, 1, 4);
  c->wait_in_open_ms = rnd_in(r, 1, 2000);
  c->max_wait_in_half_open_ms = rnd_in(r, 0, 1) ? 0 : rnd_in(r, 100, 2000);
  c->automatic_transition = rnd_in(r, 0, 2) == 0;
  c->initial_state = rnd_in(r, 0, 3) ? BREAKER_CLOSED : (breaker_state)rnd_in(r, 0, 5);
  c->event_buffer_size = 0;
}

static void assert_same(breaker *ref, breaker *fast) {
  breaker_state s1, s2;
  breaker_metrics m1, m2;
  breaker_counters k1, k2;
  breaker_get_snapshot(ref, &s1, &m1);
  breaker_get_snapshot(fast, &s2, &m2);
  assert_int_equal(s1, s2);
  assert_memory_equal(&m1.failure_rate, &m2.failure_rate, sizeof(float));
  assert_memory_equal(&m1.slow_call_rate, &m2.slow_call_rate, sizeof(float));
  assert_int_equal(m1.buffered, m2.buffered);
  assert_int_equal(m1.failed, m2.failed);
  assert_int_equal(m1.successful, m2.successful);
  assert_int_equal(m1.slow, m2.slow);
  assert_int_equal(m1.slow_successful, m2.slow_successful);
  assert_int_equal(m1.slow_failed, m2.slow_failed);
  assert_int_equal(m1.not_permitted, m2.not_permitted);
  breaker_get_counters(ref, &k1);
  breaker_get_counters(fast, &k2);
  assert_memory_equal(&k1, &k2, sizeof k1);
}

static void model_run(uint64_t seed) {
  rng r = {seed * 0x9E3779B97F4A7C15u + 1};
  int64_t now = 1700000000 * SEC;
  breaker_config c;
  random_config(&r, &c, &now);
  breaker *ref = NULL, *fast = NULL;
  assert_int_equal(breaker_new("ref", &c, &fast, NULL, 0), 0);
  c.listener = ignore_event; /* a consumer: this one always takes its mutex */
  assert_int_equal(breaker_new("ref", &c, &ref, NULL, 0), 0);
  /* mostly healthy traffic, so the window stays warm and CLOSED for long runs */
  int fail_pct = (int)rnd_in(&r, 0, 3) == 0 ? 40 : 3;
  int64_t next_read = rnd_in(&r, 1, 60);
  for (int op = 0; op < 1500; op++) {
    int64_t x = rnd_in(&r, 0, 999);
    int64_t d = rnd_in(&r, 0, 99) < 90 ? rnd_in(&r, 0, c.slow_call_duration_threshold_ns) : rnd_in(&r, 0, 60 * MS);
    int64_t o = rnd_in(&r, 0, 99);
    breaker_outcome out = o < fail_pct ? BREAKER_FAILURE : o < fail_pct + 5 ? BREAKER_IGNORED : BREAKER_SUCCESS;
    if (x < 900) {
      bool a1 = breaker_try_acquire(ref), a2 = breaker_try_acquire(fast);
      assert_int_equal(a1, a2);
      if (a1) {
        breaker_record(ref, out, d);
        breaker_record(fast, out, d);
      }
    } else if (x < 930) {
      breaker_record(ref, out, d);
      breaker_record(fast, out, d);
    } else if (x < 975) {
      now += rnd_in(&r, 0, 3) == 0 ? rnd_in(&r, 0, 3 * SEC) : rnd_in(&r, 0, 200 * MS);
    } else if (x < 995) {
      breaker_state to = (breaker_state)rnd_in(&r, 0, 5);
      assert_int_equal(breaker_transition(ref, to), breaker_transition(fast, to));
    } else {
      breaker_reset(ref);
      breaker_reset(fast);
    }
    if (--next_read == 0) {
      assert_same(ref, fast);
      next_read = rnd_in(&r, 1, 60);
    }
  }
  assert_same(ref, fast);
  breaker_free(ref);
  breaker_free(fast);
}

static void test_fast_path_matches_locked_path(void **st) {
  (void)st;
  for (uint64_t seed = 1; seed <= 1000; seed++) model_run(seed);
}

/* ---- threads ---------------------------------------------------------------------- */

enum { THREADS = 4 };

typedef struct hammer {
  breaker *b;
  pthread_barrier_t *start;
  int id;
  long calls;       /* acquire+record attempts */
  int fail_every;   /* record FAILURE on every n-th call, 0: never ... */
  long fail_from;   /* ... from this call on */
  int ignore_every; /* IGNORED on every n-th call, 0: never */
  atomic_bool *open_seen;
  atomic_long *violations;
  /* what this thread did */
  long recorded[3]; /* SUCCESS, FAILURE, IGNORED */
  int64_t sum_ns[3], max_ns[3];
  long refused;
} hammer;

static void *hammer_thread(void *p) {
  hammer *h = p;
  if (h->start) pthread_barrier_wait(h->start);
  for (long i = 1; i <= h->calls; i++) {
    bool seen = h->open_seen && atomic_load(h->open_seen);
    bool ok = breaker_try_acquire(h->b);
    if (seen && ok) atomic_fetch_add(h->violations, 1); /* permitted after OPEN was visible */
    if (!ok) {
      h->refused++;
      if (h->open_seen) atomic_store(h->open_seen, true);
      continue;
    }
    int k = h->fail_every && i >= h->fail_from && i % h->fail_every == 0 ? 1
            : h->ignore_every && i % h->ignore_every == 0                ? 2
                                                                         : 0;
    int64_t d = 1000 + (i * 7 + h->id) % 5000;
    breaker_record(h->b, k == 0 ? BREAKER_SUCCESS : k == 1 ? BREAKER_FAILURE : BREAKER_IGNORED, d);
    h->recorded[k]++;
    h->sum_ns[k] += d;
    if (d > h->max_ns[k]) h->max_ns[k] = d;
  }
  return NULL;
}

static void run_hammers(hammer *h, int n) {
  pthread_t t[64];
  pthread_barrier_t start;
  assert_true(n <= 64);
  pthread_barrier_init(&start, NULL, (unsigned)n);
  for (int i = 0; i < n; i++) {
    h[i].start = &start;
    assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &h[i]), 0);
  }
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&start);
}

/* Counters equal what the threads recorded, call for call and nanosecond for nanosecond. */
static void assert_counters_match(breaker *b, const hammer *h, int n) {
  breaker_counters k;
  breaker_get_counters(b, &k);
  for (int j = 0; j < 3; j++) {
    long calls = 0;
    int64_t sum = 0, max = 0;
    for (int i = 0; i < n; i++) {
      calls += h[i].recorded[j];
      sum += h[i].sum_ns[j];
      if (h[i].max_ns[j] > max) max = h[i].max_ns[j];
    }
    assert_int_equal(k.calls[j], calls);
    assert_int_equal(k.sum_ns[j], sum);
    assert_int_equal(k.max_ns[j], max);
  }
}

typedef struct reader_arg {
  breaker *b;
  int32_t window;
  atomic_bool *stop;
  atomic_long *violations;
  long reads;
} reader_arg;

/* Reads while the hammers write: every snapshot is a window that could exist, and the
 * counters never go back. */
static void *reader_thread(void *p) {
  reader_arg *a = p;
  breaker_counters last;
  memset(&last, 0, sizeof last);
  while (!atomic_load(a->stop)) {
    breaker_metrics m;
    breaker_counters k;
    breaker_get_metrics(a->b, &m);
    breaker_get_counters(a->b, &k);
    if (m.buffered < 0 || m.buffered > a->window || m.successful + m.failed != m.buffered ||
        m.slow_successful + m.slow_failed != m.slow || m.failed < 0 || m.slow > m.buffered)
      atomic_fetch_add(a->violations, 1);
    for (int j = 0; j < 3; j++)
      if (k.calls[j] < last.calls[j] || k.sum_ns[j] < last.sum_ns[j] || k.max_ns[j] < last.max_ns[j])
        atomic_fetch_add(a->violations, 1);
    last = k;
    a->reads++;
  }
  return NULL;
}

/* Healthy traffic with a few failures, below the threshold: the breaker stays CLOSED and
 * every call is counted once, while a reader checks every snapshot. */
static void test_threads_count_every_call(void **st) {
  (void)st;
  breaker_config c;
  breaker_config_default(&c);
  c.event_buffer_size = 0;
  c.window_size = 100;
  c.minimum_calls = 10;
  breaker *b = NULL;
  assert_int_equal(breaker_new("t", &c, &b, NULL, 0), 0);
  atomic_long violations = 0;
  atomic_bool stop = false;
  reader_arg ra = {b, c.window_size, &stop, &violations, 0};
  pthread_t rt;
  assert_int_equal(pthread_create(&rt, NULL, reader_thread, &ra), 0);
  hammer h[THREADS];
  memset(h, 0, sizeof h);
  for (int i = 0; i < THREADS; i++) {
    h[i].b = b;
    h[i].id = i;
    h[i].calls = 200000;
    h[i].fail_every = 997;
    h[i].ignore_every = 13;
  }
  run_hammers(h, THREADS);
  atomic_store(&stop, true);
  pthread_join(rt, NULL);
  assert_int_equal(atomic_load(&violations), 0);
  assert_true(ra.reads > 0);
  assert_int_equal(breaker_get_state(b), BREAKER_CLOSED);
  for (int i = 0; i < THREADS; i++) assert_int_equal(h[i].refused, 0);
  assert_counters_match(b, h, THREADS);
  breaker_metrics m;
  breaker_get_metrics(b, &m);
  assert_int_equal(m.buffered, 100);
  assert_true(m.failed <= 1 + THREADS); /* at most a few of the last 100 */
  breaker_free(b);
}

/* The window is exact when order cannot matter: a known locked prefix, then only fast
 * successes from several threads. */
static void test_threads_exact_window(void **st) {
  (void)st;
  breaker_config c;
  breaker_config_default(&c);
  c.event_buffer_size = 0;
  c.window_size = 1000;
  c.minimum_calls = 10;
  c.failure_rate_threshold = 60;
  breaker *b = NULL;
  assert_int_equal(breaker_new("t", &c, &b, NULL, 0), 0);
  for (int i = 0; i < 10; i++) {
    assert_true(breaker_try_acquire(b));
    breaker_record(b, i < 5 ? BREAKER_FAILURE : BREAKER_SUCCESS, MS); /* 50%: CLOSED */
  }
  hammer h[THREADS];
  memset(h, 0, sizeof h);
  for (int i = 0; i < THREADS; i++) {
    h[i].b = b;
    h[i].id = i;
    h[i].calls = 200;
  }
  run_hammers(h, THREADS);
  breaker_metrics m;
  breaker_get_metrics(b, &m);
  assert_int_equal(m.buffered, 10 + THREADS * 200);
  assert_int_equal(m.failed, 5);
  assert_true(m.failure_rate == 5 * 100.0f / (float)(10 + THREADS * 200));
  run_hammers(h, THREADS); /* 800 more: the prefix leaves the window */
  breaker_get_metrics(b, &m);
  assert_int_equal(m.buffered, 1000);
  assert_int_equal(m.failed, 0);
  assert_true(m.failure_rate == 0.0f);
  breaker_free(b);
}

typedef struct trip_count {
  atomic_int to_open, exceeded, other_transitions;
} trip_count;

static void count_trip(void *ctx, const breaker *b, const breaker_event *ev) {
  (void)b;
  trip_count *t = ctx;
  if (ev->type == BREAKER_EV_STATE_TRANSITION) {
    if (ev->from == BREAKER_CLOSED && ev->to == BREAKER_OPEN)
      atomic_fetch_add(&t->to_open, 1);
    else
      atomic_fetch_add(&t->other_transitions, 1);
  } else if (ev->type == BREAKER_EV_FAILURE_RATE_EXCEEDED) {
    atomic_fetch_add(&t->exceeded, 1);
  }
}

/* Threads start healthy, then each fails every other call, which pushes the failure rate
 * over 30% once enough of them do: the breaker opens exactly once, and no call is
 * permitted by a thread that had already seen it OPEN (wait in OPEN: an hour, so no
 * HALF_OPEN). */
static void trip(bool with_listener) {
  breaker_config c;
  breaker_config_default(&c);
  c.window_size = 50;
  c.minimum_calls = 50;
  c.failure_rate_threshold = 30;
  c.wait_in_open_ms = 3600 * 1000;
  c.event_buffer_size = 0;
  trip_count tc = {0, 0, 0};
  if (with_listener) {
    c.listener = count_trip;
    c.listener_ctx = &tc;
  }
  breaker *b = NULL;
  assert_int_equal(breaker_new("t", &c, &b, NULL, 0), 0);
  atomic_bool open_seen = false;
  atomic_long violations = 0;
  hammer h[THREADS];
  memset(h, 0, sizeof h);
  for (int i = 0; i < THREADS; i++) {
    h[i].b = b;
    h[i].id = i;
    h[i].calls = 100000;
    h[i].fail_every = 2;
    h[i].fail_from = 20000 + 5000 * i;
    h[i].open_seen = &open_seen;
    h[i].violations = &violations;
  }
  run_hammers(h, THREADS);
  assert_int_equal(breaker_get_state(b), BREAKER_OPEN);
  assert_int_equal(atomic_load(&violations), 0);
  long refused = 0;
  for (int i = 0; i < THREADS; i++) refused += h[i].refused;
  assert_true(refused > 0);
  assert_counters_match(b, h, THREADS); /* records in OPEN still publish their event */
  breaker_counters k;
  breaker_get_counters(b, &k);
  assert_int_equal(k.not_permitted, refused);
  breaker_metrics m;
  breaker_get_metrics(b, &m);
  assert_int_equal(m.not_permitted, refused);
  /* >= 15 of 50 failed when it opened; calls in flight then may have replaced a few */
  assert_int_equal(m.buffered, 50);
  assert_true(m.failed >= 15 - THREADS);
  if (with_listener) {
    assert_int_equal(atomic_load(&tc.to_open), 1);
    assert_int_equal(atomic_load(&tc.exceeded), 1);
    assert_int_equal(atomic_load(&tc.other_transitions), 0);
  }
  breaker_free(b);
}

static void test_threads_trip_once(void **st) {
  (void)st;
  trip(false);
  trip(true);
}

/* More threads than stripes: the ones without a stripe take the mutex, nothing is lost;
 * then a second round of threads takes over the stripes the first round gave back. */
static void test_threads_more_than_stripes(void **st) {
  (void)st;
  breaker_config c;
  breaker_config_default(&c);
  c.event_buffer_size = 0;
  c.minimum_calls = 1;
  breaker *b = NULL;
  assert_int_equal(breaker_new("t", &c, &b, NULL, 0), 0);
  enum { N = BREAKER__STRIPES + 6, MORE = 4 };
  static hammer h[N + MORE];
  memset(h, 0, sizeof h);
  for (int i = 0; i < N + MORE; i++) {
    h[i].b = b;
    h[i].id = i;
    h[i].calls = 3000;
    h[i].ignore_every = 7;
  }
  pthread_t t[N];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, N);
  for (int i = 0; i < N; i++) {
    h[i].start = &start; /* all alive at once: some find every stripe taken */
    assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &h[i]), 0);
  }
  for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&start);
  assert_counters_match(b, h, N);
  run_hammers(h + N, MORE);
  assert_counters_match(b, h, N + MORE);
  breaker_metrics m;
  breaker_get_metrics(b, &m);
  assert_int_equal(m.buffered, 100);
  assert_int_equal(m.failed, 0);
  breaker_free(b);
}

typedef struct flipper_arg {
  breaker *b;
  atomic_bool *stop;
  long flips;
} flipper_arg;

static void *flipper_thread(void *p) {
  flipper_arg *a = p;
  static const breaker_state order[] = {BREAKER_METRICS_ONLY, BREAKER_CLOSED,   BREAKER_OPEN,   BREAKER_HALF_OPEN,
                                        BREAKER_CLOSED,       BREAKER_DISABLED, BREAKER_CLOSED, BREAKER_FORCED_OPEN};
  for (size_t i = 0; !atomic_load(a->stop); i++) {
    if (i % 9 == 8)
      breaker_reset(a->b);
    else
      (void)breaker_transition(a->b, order[i % 8]);
    a->flips++;
    for (volatile int spin = 0; spin < 2000; spin++) {}
  }
  return NULL;
}

/* State changes racing with fast records: generations keep stale stripe successes out of
 * fresh windows (the internal asserts and the reader check it), nothing crashes. */
static void test_threads_with_transitions(void **st) {
  (void)st;
  breaker_config c;
  breaker_config_default(&c);
  c.event_buffer_size = 0;
  c.window_size = 20;
  c.minimum_calls = 5;
  c.wait_in_open_ms = 1;
  c.permitted_calls_in_half_open = 3;
  breaker *b = NULL;
  assert_int_equal(breaker_new("t", &c, &b, NULL, 0), 0);
  atomic_bool stop = false;
  atomic_long violations = 0;
  reader_arg ra = {b, c.window_size, &stop, &violations, 0};
  flipper_arg fa = {b, &stop, 0};
  pthread_t rt, ft;
  assert_int_equal(pthread_create(&rt, NULL, reader_thread, &ra), 0);
  assert_int_equal(pthread_create(&ft, NULL, flipper_thread, &fa), 0);
  hammer h[THREADS];
  memset(h, 0, sizeof h);
  for (int i = 0; i < THREADS; i++) {
    h[i].b = b;
    h[i].id = i;
    h[i].calls = 100000;
    h[i].fail_every = 11;
    h[i].ignore_every = 5;
  }
  run_hammers(h, THREADS);
  atomic_store(&stop, true);
  pthread_join(rt, NULL);
  pthread_join(ft, NULL);
  assert_int_equal(atomic_load(&violations), 0);
  assert_true(fa.flips > 0);
  /* DISABLED and FORCED_OPEN publish nothing: counters hold at most what was recorded */
  breaker_counters k;
  breaker_get_counters(b, &k);
  long recorded = 0;
  for (int i = 0; i < THREADS; i++) recorded += h[i].recorded[0] + h[i].recorded[1] + h[i].recorded[2];
  assert_true(k.calls[0] + k.calls[1] + k.calls[2] <= recorded);
  /* quiet now: a fresh CLOSED window fills from fast records exactly */
  breaker_reset(b);
  hammer one = {.b = b, .calls = 30};
  hammer_thread(&one);
  breaker_metrics m;
  breaker_get_metrics(b, &m);
  assert_int_equal(m.buffered, 20);
  assert_int_equal(m.failed, 0);
  breaker_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_claim_and_hand_back),           cmocka_unit_test(test_claim_probes_past_taken_slots),
      cmocka_unit_test(test_fast_path_matches_locked_path), cmocka_unit_test(test_threads_count_every_call),
      cmocka_unit_test(test_threads_exact_window),          cmocka_unit_test(test_threads_trip_once),
      cmocka_unit_test(test_threads_more_than_stripes),     cmocka_unit_test(test_threads_with_transitions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
