/*
 * workers: the messaging side of the processor. A pool of N workers, each one lib/mq
 * consumer of "resource.uploaded" (own thread, own connections, prefetch 1) plus its own
 * confirmed publisher for "resource.processed", so no rabbitmq-c connection is ever used
 * by two threads and N messages are in flight at once with fair dispatch.
 *
 * A delivery becomes a verdict here:
 *   body not a valid message          -> DLQ ("bad message: <why>"), never retried
 *   PROC_DONE                          -> ack (after the "processed" confirm)
 *   PROC_GONE (resource 404)           -> ack, logged at warn
 *   PROC_RETRY                         -> delay queue with backoff; DLQ after max attempts
 *   PROC_POISON                        -> DLQ with the reason
 * lib/mq writes the reason into the dead letter's x-reason header, so nothing leaves the
 * pipeline without a trace.
 *
 * Thread-safety: workers_new / workers_start / workers_stop / workers_free from one thread
 * (main); workers_connected from any thread.
 */
#ifndef FERMATA_PROC_WORKERS_H
#define FERMATA_PROC_WORKERS_H

#include <stdatomic.h>

#include "log/log.h"
#include "mq/mq.h"
#include "pipeline.h"
#include "proc.h"

typedef struct workers_opts {
  const mq_params *mq;           /* copied by lib/mq */
  unsigned count;                /* workers = messages in flight; >= 1 */
  unsigned max_attempts;         /* deliveries before the DLQ; >= 1 */
  mq_backoff retry;              /* delay-queue backoff of a message */
  const proc_pipeline *pipeline; /* borrowed; must outlive the pool */
  proc_stats *stats;             /* borrowed */
  log_sink *lg;                  /* borrowed */
  const trace_tracer *tracer;    /* borrowed; NULL = no spans */
} workers_opts;

typedef struct workers workers;

/* Builds the pool (nothing connects yet). NULL on bad options or memory. */
workers *workers_new(const workers_opts *opts);

/* Starts every consumer; they connect (and keep reconnecting) in the background.
 * Returns 0, or -1 if a thread could not start (those started keep running). */
int workers_start(workers *w);

/* Stops consuming on all workers at once and waits until each has settled the delivery
 * it was handling. Unstarted deliveries stay in the broker. Safe to call twice. */
void workers_stop(workers *w);

/* How many workers hold a consuming connection right now. */
unsigned workers_connected(workers *w);
unsigned workers_count(const workers *w);

void workers_free(workers *w);

#endif
