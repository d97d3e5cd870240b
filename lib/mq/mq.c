/*
 * mq: RabbitMQ publisher (confirms) and consumer (manual acks, reconnect) on rabbitmq-c.
 *
 * Design. rabbitmq-c is a thin, single-threaded protocol library: a connection must stay
 * on one thread, heartbeats are serviced only while we are inside a library call, and any
 * library error leaves the connection in an unknown state. So every object here owns its
 * connections outright, uses channel 1 only, and on any error does the one thing that is
 * always safe: destroy the connection and build a new one later (after a backoff). No
 * attempt is made to resynchronise a connection that saw an error.
 *
 * Files: this one holds the error strings, the connection parameters (lib/mqconn's), the
 * backoff and the small helpers the others share (mq_internal.h); mq_topology.c validates
 * and declares topologies; mq_publish.c is the publisher (synchronous confirms),
 * mq_consumer.c the consumer's thread (settling deliveries, republishing, reconnecting).
 */
#include "mq.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "mq_internal.h"
#include "mqconn/mqconn.h"
#include "retry/retry.h"

const char *mq_strerror(int err) {
  switch (err) {
  case MQ_OK: return "ok";
  case MQ_ERR_INVALID: return "invalid argument";
  case MQ_ERR_NOMEM: return "out of memory";
  case MQ_ERR_DOWN: return "broker unreachable";
  case MQ_ERR_PROTOCOL: return "broker closed the channel or connection";
  case MQ_ERR_TIMEOUT: return "no publisher confirm in time";
  case MQ_ERR_NACK: return "broker nacked the message";
  case MQ_ERR_UNROUTABLE: return "message reached no queue";
  case MQ_ERR_THREAD: return "consumer thread error";
  default: return "unknown error";
  }
}

/* ---------------------------------------------------------------- small helpers */

uint64_t mq__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct timeval mq__tv_ms(uint64_t ms) {
  struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
  return tv;
}

/* Per-object random stream (no global rand state). */
uint32_t mq__next_rand(unsigned *seed) { return (uint32_t)rand_r(seed); }

unsigned mq__make_seed(const void *obj) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (unsigned)ts.tv_nsec ^ (unsigned)(uintptr_t)obj;
}

/* ---------------------------------------------------------------- params, backoff */

/* Parameters are lib/mqconn's; so are these. */
int mq_params_from_url(const char *url, mq_params *out) { return mqconn_params_from_url(url, out); }
int mq_params_set_ca_file(mq_params *p, const char *path) { return mqconn_set_ca_file(p, path); }
int mq_params_set_password(mq_params *p, const char *pw) { return mqconn_set_password(p, pw); }

/* lib/mqconn opens the connections; its codes are ours. */
_Static_assert((int)MQCONN_ERR_INVALID == (int)MQ_ERR_INVALID && (int)MQCONN_ERR_NOMEM == (int)MQ_ERR_NOMEM &&
                   (int)MQCONN_ERR_DOWN == (int)MQ_ERR_DOWN,
               "codes");

/* The exponential and its cap are lib/retry's (multiplier 2); the jitter stays here
 * because the caller supplies rnd. mq's rules map onto a retry policy as follows: a base
 * of 0 counts as 1, a max of 0 means "no growth, no cap" (cap = base), a max below the
 * base caps every delay at max, and attempt 0 counts as attempt 1. */
uint32_t mq_backoff_delay_ms(const mq_backoff *b, unsigned attempt, uint32_t rnd) {
  uint32_t base = b->base_ms ? b->base_ms : 1;
  uint32_t cap = b->max_ms ? b->max_ms : base;
  retry_policy p = {
      .initial_ms = base < cap ? base : cap, .multiplier = 2.0, .max_delay_ms = cap, .jitter = RETRY_JITTER_NONE};
  assert(retry_policy_check(&p) == 0);
  uint64_t unused_rng = 0; /* no jitter: retry_delay_ms draws nothing */
  uint64_t d = retry_delay_ms(&p, attempt ? attempt : 1, &unused_rng);
  uint64_t half = d / 2;
  return (uint32_t)(half + rnd % (d - half + 1));
}
