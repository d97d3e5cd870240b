/*
 * worker: one background thread that runs a step again and again, with kick, stop and
 * wait: the loop of the Resource Service's janitor and outbox relay and of the Storage
 * Service's bucket keeper.
 *
 * The thread waits `first_delay_ms` (worker_start), then runs the step. The step returns
 * how long to wait before it runs again: 0 runs it again at once (more work is waiting),
 * anything else waits that many milliseconds or until kicked, whichever comes first. A
 * kick that arrives while the step runs ends the next wait at once, so no kick is lost;
 * kicks do not add up (one wait ends, however many arrived). worker_stop ends any wait at
 * once, lets a running step finish, and joins the thread. Waits follow CLOCK_MONOTONIC.
 *
 * worker_backoff counts consecutive failures and gives the delay they call for under a
 * lib/retry policy (retry_delay_ms), for steps that back off while a dependency is away.
 *
 * Ownership: the worker borrows `ud`, which must outlive it. Thread-safety: worker_kick
 * may be called from any thread, also before worker_start; start, stop and free from one
 * thread at a time. The step runs on the worker's thread only. A worker_backoff belongs to
 * the thread that uses it.
 */
#ifndef FERMATA_WORKER_H
#define FERMATA_WORKER_H

#include <stdint.h>

#include "retry/retry.h"

enum { WORKER_OK = 0, WORKER_ERR_THREAD = -1 };

/* One round of work; returns the delay in ms before the next round (0: at once). */
typedef uint32_t (*worker_step_fn)(void *ud);

typedef struct worker worker;

/* NULL on allocation failure. Does not start the thread. */
worker *worker_new(worker_step_fn step, void *ud);
/* Starts the thread, which waits first_delay_ms (or a kick) before the first step.
 * WORKER_OK (also when it runs already), or WORKER_ERR_THREAD. */
int worker_start(worker *w, uint32_t first_delay_ms);
/* Ends the current or next wait early. */
void worker_kick(worker *w);
/* Stops and joins the thread; nothing when it does not run. The worker may be started
 * again afterwards. worker_stop(NULL) does nothing. */
void worker_stop(worker *w);
/* Stops, then frees. worker_free(NULL) does nothing. */
void worker_free(worker *w);

typedef struct worker_backoff {
  retry_policy policy; /* a checked policy (retry_policy_check); max_attempts unused */
  unsigned failures;   /* consecutive failures so far */
  uint64_t rng;        /* the policy's jitter draws from it; seed it with anything */
} worker_backoff;

/* Counts one more failure (saturating). */
void worker_backoff_failed(worker_backoff *b);
/* Forgets the failures after a success. */
void worker_backoff_reset(worker_backoff *b);
/* The delay the failures so far call for: retry_delay_ms(policy, failures); 0 with none. */
uint32_t worker_backoff_delay(worker_backoff *b);

#endif
