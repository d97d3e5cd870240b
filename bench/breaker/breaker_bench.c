/*
 * ns per acquire+record on lib/breaker: the cost a caller pays around each protected call.
 * Default config (COUNT_BASED window of 100), monotonic clock, outcomes always SUCCESS
 * with 1 us duration: the same work as bench Java's BreakerBench does on Resilience4j.
 * usage: breaker_bench [iterations per thread]; prints "events=E threads=N ns_per_op=X".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "breaker/breaker.h"

typedef struct {
  breaker *b;
  long iters;
} arg;

static void *loop(void *p) {
  arg *a = p;
  for (long i = 0; i < a->iters; i++)
    if (breaker_try_acquire(a->b)) breaker_record(a->b, BREAKER_SUCCESS, 1000);
  return NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double run(int threads, long iters, int events) {
  breaker_config c;
  breaker_config_default(&c);
  c.event_buffer_size = events ? 100 : 0;
  breaker *b = NULL;
  if (breaker_new("bench", &c, &b, NULL, 0)) exit(1);
  pthread_t t[2];
  arg a = {b, iters};
  double t0 = now_s();
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, loop, &a);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  double dt = now_s() - t0;
  breaker_free(b);
  /* per operation as JMH's avgt reports it: wall time per op, per thread */
  return dt * 1e9 / (double)iters;
}

int main(int argc, char **argv) {
  long iters = argc > 1 ? atol(argv[1]) : 5000000;
  run(1, iters / 5, 1); /* warm-up */
  /* events=0 matches the JMH run (Resilience4j builds no event without a consumer) and
     * is lib/breaker's lock-free path once the window holds minimumNumberOfCalls calls;
     * events=1 is our default: a ring of 100 events, as the actuator needs, so every
     * record takes the mutex to append its SUCCESS event (and reads the wall clock). */
  for (int events = 0; events <= 1; events++)
    for (int threads = 1; threads <= 2; threads++) {
      double best = 1e18;
      for (int rep = 0; rep < 5; rep++) {
        double ns = run(threads, iters, events);
        if (ns < best) best = ns;
      }
      printf("events=%d threads=%d ns_per_op=%.1f\n", events, threads, best);
    }
  return 0;
}
