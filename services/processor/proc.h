/*
 * proc: what the Resource Processor's parts share: the outcome of handling one resource
 * and the counters behind /actuator/prometheus.
 *
 * The counters are atomics in one struct owned by main and passed down by pointer (no
 * global state); any thread may bump them. Only the actuator reads them.
 */
#ifndef FERMATA_PROC_H
#define FERMATA_PROC_H

#include <stdatomic.h>
#include <stdint.h>

/* What became of one delivery, as the domain sees it. */
typedef enum proc_outcome {
  PROC_DONE,   /* metadata stored (or already there) and "processed" published */
  PROC_GONE,   /* the resource no longer exists: nothing to do */
  PROC_RETRY,  /* a peer or the broker failed; trying later may succeed */
  PROC_POISON, /* trying again cannot help (not an MP3, refused metadata): dead-letter */
} proc_outcome;

/* Peers the processor calls over HTTP, for the client metrics. */
typedef enum proc_peer { PROC_PEER_RESOURCE, PROC_PEER_SONG, PROC_NPEERS } proc_peer;

/* Classes of a client call's result, for the client metrics. */
typedef enum proc_call_class {
  PROC_CALL_2XX,
  PROC_CALL_4XX,
  PROC_CALL_5XX,
  PROC_CALL_ERROR, /* no HTTP answer: connect, timeout, I/O */
  PROC_NCLASSES
} proc_call_class;

typedef struct proc_stats {
  atomic_ullong processed;     /* PROC_DONE */
  atomic_ullong gone;          /* PROC_GONE: acked, resource deleted */
  atomic_ullong failed;        /* deliveries that did not succeed (retried or dead-lettered) */
  atomic_ullong retried;       /* sent to the delay queue */
  atomic_ullong dead_lettered; /* sent to the DLQ (poison, garbage, attempts exhausted) */
  atomic_ullong calls[PROC_NPEERS][PROC_NCLASSES];
  atomic_ullong call_us[PROC_NPEERS][PROC_NCLASSES]; /* summed duration, microseconds */
  atomic_ullong fetched_bytes;                       /* resource bytes received by ranged GETs */
  atomic_llong last_success_ms;                      /* wall clock of the last PROC_DONE, 0 = none yet */
} proc_stats;

#endif
