/* retry: backoff policies and a retry loop, for calls to peers that may be briefly away
 * (Song Service from the processor, the object store, the broker's reconnects).
 *
 * The delay before retry n is base(n) = min(max_delay_ms, initial_ms * multiplier^(n-1)),
 * then jittered so that many clients failing together do not retry together:
 *   RETRY_JITTER_NONE   delay = base
 *   RETRY_JITTER_FULL   delay = uniform in [0, base]
 *   RETRY_JITTER_EQUAL  delay = base/2 + uniform in [0, base/2]
 * (the "full" and "equal" jitter of the AWS Architecture Blog's backoff article).
 *
 * retry_delay_ms() is a pure function of the policy, the attempt number and a random state
 * the caller owns, so tests fix the seed and check exact delays. retry_run() runs an
 * operation until it succeeds, says stop, runs out of attempts, or a stop flag is raised;
 * its sleep is injectable.
 *
 * Thread-safety: no shared state. A policy may be shared read-only; each rng state belongs
 * to one thread.
 */
#ifndef FERMATA_RETRY_H
#define FERMATA_RETRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum { RETRY_ERR_INVALID = -1000 }; /* far from any code an operation may return */

typedef enum retry_jitter {
  RETRY_JITTER_NONE,
  RETRY_JITTER_FULL,
  RETRY_JITTER_EQUAL,
} retry_jitter;

typedef struct retry_policy {
  uint32_t initial_ms;   /* base delay before the first retry; > 0 */
  double multiplier;     /* growth per retry; >= 1.0 and <= 100 */
  uint32_t max_delay_ms; /* cap of one delay; >= initial_ms */
  retry_jitter jitter;
  unsigned max_attempts; /* attempts in all, the first included; 0 = no limit (then stop
                            the loop with the stop flag or a non-retryable result) */
} retry_policy;

/* 0 when the policy is usable, RETRY_ERR_INVALID otherwise. */
int retry_policy_check(const retry_policy *p);

/* Next value of a small PRNG (splitmix64) over *state; seed it with anything (time, pid,
 * thread id). Not for cryptography. */
uint64_t retry_rng_next(uint64_t *state);

/* Delay in ms before retry number `retry` (1 = after the first failed attempt; 0 gives 0).
 * Advances *rng_state once when the policy has jitter. Precondition: a checked policy. */
uint32_t retry_delay_ms(const retry_policy *p, unsigned retry, uint64_t *rng_state);

/* The operation: return 0 on success or a negative error; on error set *retryable to
 * false when trying again cannot help (e.g. a 4xx answer). attempt counts from 1. */
typedef int (*retry_op_fn)(void *ud, unsigned attempt, bool *retryable);
/* Sleeps ms milliseconds; tests record instead. */
typedef void (*retry_sleep_fn)(void *ud, uint32_t ms);

typedef struct retry_hooks {
  retry_sleep_fn sleep; /* NULL: a real sleep (nanosleep, in slices so stop is seen) */
  void *sleep_ud;
  uint64_t *rng_state;     /* NULL: a state seeded from the clock, local to the call */
  const atomic_bool *stop; /* NULL, or raised by another thread to end the loop early */
} retry_hooks;

/* Runs op until success, a non-retryable error, max_attempts, or *stop. Returns op's last
 * result (0 on success), or RETRY_ERR_INVALID for a bad policy (op never runs). When
 * attempts is not NULL it receives the number of attempts made. hooks may be NULL. */
int retry_run(const retry_policy *p, retry_op_fn op, void *op_ud, const retry_hooks *hooks, unsigned *attempts);

#endif
