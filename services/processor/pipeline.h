/*
 * pipeline: the processor's work for one resource, free of any messaging detail.
 *
 *   1. read the resource through a fixed window (resreader): each window is a ranged GET
 *      to the Resource Service, so memory stays at the window whatever the file's size
 *      (404 at any point: the resource was deleted -> GONE)
 *   2. extract the metadata from those reads (lib/mp3's mp3_extract_source) while the MP3
 *      check runs on the same bytes in order; the field rules of mp3_song_fields make any
 *      file's metadata acceptable to the Song Service
 *   3. POST the metadata to the Song Service (409 = stored by an earlier attempt: fine)
 *   4. announce "processed" through the caller's publish function (confirmed publish)
 *
 * Each step is idempotent, so a delivery seen twice (crash before the ack, lost ack)
 * repeats harmless work: the second POST gets 409 and the Resource Service's consumer of
 * "processed" is idempotent too.
 *
 * HTTP calls that fail transiently are retried here a few times with exponential backoff
 * and jitter (policy call_retry) to ride out blips without a round trip through the delay
 * queue; what still fails comes back as PROC_RETRY and the caller reschedules the whole
 * message. Those in-place retries stop early when *stop is raised (shutdown), so a
 * stopping processor never sits in a backoff.
 *
 * Thread-safety: proc_pipeline is read-only after set-up and shared by all workers; the
 * rng state and the publish function's context belong to the calling worker. Each call
 * holds one window (window_bytes) while it runs.
 */
#ifndef FERMATA_PROC_PIPELINE_H
#define FERMATA_PROC_PIPELINE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "log/log.h"
#include "peers.h"
#include "proc.h"
#include "retry/retry.h"

/* Publishes "processed" for id and waits for the broker's confirm. Returns 0 on success,
 * else nonzero with a reason written. */
typedef int (*proc_publish_fn)(void *ud, int32_t id, const char *request_id, const trace_ctx *trace, char *reason,
                               size_t reason_cap);

typedef struct proc_pipeline {
  const peers *peers;
  retry_policy call_retry; /* in-place retries of one HTTP call (max_attempts >= 1) */
  size_t window_bytes;     /* the read window per resource (> 0) */
  const atomic_bool *stop; /* raised at shutdown; may be NULL */
  log_sink *lg;            /* borrowed */
} proc_pipeline;

/* Handles resource id. request_id (may be NULL) is passed to the peers for tracing.
 * rng_state is the caller's (see retry.h). reason receives why on anything but PROC_DONE
 * ("ok" then). */
proc_outcome proc_handle(const proc_pipeline *pl, int32_t id, const char *request_id, const trace_ctx *trace,
                         uint64_t *rng_state, proc_publish_fn publish, void *publish_ud, char *reason,
                         size_t reason_cap);

#endif
