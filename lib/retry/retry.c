/* retry: exponential backoff with jitter, and a retry loop with injectable sleep.
 *
 * The exponential is computed in double and clamped before converting back, so huge
 * attempt numbers (a loop with no attempt limit running for days) saturate at
 * max_delay_ms instead of overflowing. Random draws use the top bits of a splitmix64
 * output scaled into [0, n]: the bias of that is below 2^-31 for n < 2^32, irrelevant for
 * sleeping.
 */
#include "retry.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <time.h>

int retry_policy_check(const retry_policy *p) {
  if (p == NULL || p->initial_ms == 0 || !(p->multiplier >= 1.0 && p->multiplier <= 100.0) ||
      p->max_delay_ms < p->initial_ms)
    return RETRY_ERR_INVALID;
  if (p->jitter != RETRY_JITTER_NONE && p->jitter != RETRY_JITTER_FULL && p->jitter != RETRY_JITTER_EQUAL)
    return RETRY_ERR_INVALID;
  return 0;
}

uint64_t retry_rng_next(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Uniform in [0, n] for n < 2^32: multiply-shift of 32 random bits. */
static uint32_t uniform(uint64_t *state, uint32_t n) {
  uint64_t r = retry_rng_next(state) >> 32;
  return (uint32_t)((r * ((uint64_t)n + 1)) >> 32);
}

uint32_t retry_delay_ms(const retry_policy *p, unsigned retry, uint64_t *rng_state) {
  if (retry == 0) return 0;
  double base = (double)p->initial_ms * pow(p->multiplier, (double)(retry - 1));
  uint32_t b = (!isfinite(base) || base >= (double)p->max_delay_ms) ? p->max_delay_ms : (uint32_t)base;
  switch (p->jitter) {
  case RETRY_JITTER_FULL: return uniform(rng_state, b);
  case RETRY_JITTER_EQUAL: return b / 2 + uniform(rng_state, b - b / 2);
  default: return b;
  }
}

/* The default sleep: nanosleep in slices of at most 100 ms so a raised stop flag ends the
 * wait quickly; EINTR resumes with the time left. */
typedef struct real_sleep_ctx {
  const atomic_bool *stop;
} real_sleep_ctx;

static void real_sleep(void *ud, uint32_t ms) {
  real_sleep_ctx *ctx = ud;
  while (ms > 0 && !(ctx->stop && atomic_load(ctx->stop))) {
    uint32_t slice = ms < 100 ? ms : 100;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L}, rem;
    while (nanosleep(&ts, &rem) != 0 && errno == EINTR) ts = rem;
    ms -= slice;
  }
}

int retry_run(const retry_policy *p, retry_op_fn op, void *op_ud, const retry_hooks *hooks, unsigned *attempts) {
  if (attempts) *attempts = 0;
  if (retry_policy_check(p) != 0 || op == NULL) return RETRY_ERR_INVALID;
  retry_hooks h = hooks ? *hooks : (retry_hooks){0};
  real_sleep_ctx rs = {.stop = h.stop};
  if (h.sleep == NULL) {
    h.sleep = real_sleep;
    h.sleep_ud = &rs;
  }
  uint64_t local_rng;
  if (h.rng_state == NULL) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    local_rng = (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 32) ^ (uint64_t)(uintptr_t)&now;
    h.rng_state = &local_rng;
  }
  int rc = 0;
  for (unsigned attempt = 1;; attempt++) {
    bool retryable = true;
    rc = op(op_ud, attempt, &retryable);
    if (attempts) *attempts = attempt;
    if (rc == 0 || !retryable) return rc;
    if (p->max_attempts != 0 && attempt >= p->max_attempts) return rc;
    if (h.stop && atomic_load(h.stop)) return rc;
    h.sleep(h.sleep_ud, retry_delay_ms(p, attempt, h.rng_state));
    if (h.stop && atomic_load(h.stop)) return rc;
    if (attempt == UINT_MAX) return rc; /* unlimited loop: never wrap the counter */
  }
}
