/* worker: see worker.h. One mutex guards the two flags (kicked, stopping); the thread
 * sleeps on a condition variable bound to CLOCK_MONOTONIC, so a wall-clock jump neither
 * stretches nor cuts a wait. */
#include "worker.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct worker {
  worker_step_fn step;
  void *ud;
  uint32_t first_delay_ms;
  pthread_t thread;
  bool started;
  pthread_mutex_t mu; /* guards kicked and stopping */
  pthread_cond_t cv;
  bool kicked, stopping;
};

worker *worker_new(worker_step_fn step, void *ud) {
  worker *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->step = step;
  w->ud = ud;
  pthread_condattr_t ca;
  if (pthread_condattr_init(&ca) != 0) {
    free(w);
    return NULL;
  }
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (rc != 0) {
    free(w);
    return NULL;
  }
  if (pthread_mutex_init(&w->mu, NULL) != 0) {
    pthread_cond_destroy(&w->cv);
    free(w);
    return NULL;
  }
  return w;
}

void worker_free(worker *w) {
  if (!w) return;
  worker_stop(w);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  free(w);
}

void worker_kick(worker *w) {
  pthread_mutex_lock(&w->mu);
  w->kicked = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

/* Waits ms (none for 0: a pending kick then stays pending), or until kicked or stopped.
 * Returns false when stopped. */
static bool wait_ms(worker *w, uint32_t ms) {
  pthread_mutex_lock(&w->mu);
  if (ms > 0) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    while (!w->kicked && !w->stopping)
      if (pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0) break;
    w->kicked = false;
  }
  bool go_on = !w->stopping;
  pthread_mutex_unlock(&w->mu);
  return go_on;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  uint32_t delay = w->first_delay_ms;
  while (wait_ms(w, delay)) delay = w->step(w->ud);
  return NULL;
}

int worker_start(worker *w, uint32_t first_delay_ms) {
  if (w->started) return WORKER_OK;
  pthread_mutex_lock(&w->mu);
  w->stopping = false;
  pthread_mutex_unlock(&w->mu);
  w->first_delay_ms = first_delay_ms;
  if (pthread_create(&w->thread, NULL, worker_main, w) != 0) return WORKER_ERR_THREAD;
  w->started = true;
  return WORKER_OK;
}

void worker_stop(worker *w) {
  if (!w || !w->started) return;
  pthread_mutex_lock(&w->mu);
  w->stopping = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  w->started = false;
}

void worker_backoff_failed(worker_backoff *b) {
  if (b->failures < UINT_MAX) b->failures++;
}

void worker_backoff_reset(worker_backoff *b) { b->failures = 0; }

uint32_t worker_backoff_delay(worker_backoff *b) { return retry_delay_ms(&b->policy, b->failures, &b->rng); }
