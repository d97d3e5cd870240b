/*
 * zipkin: exports lib/trace's spans to a Zipkin collector (JSON v2, POST /api/v2/spans,
 * libcurl), batched by a background thread (lib/worker) from a bounded queue.
 *
 * zipkin_submit (lib/trace's export function) copies the span into a ring of
 * `queue_cap` spans under a mutex held only for that copy: it never waits for the
 * network, and when the ring is full the span is dropped and counted (reason
 * "queue_full"). The thread wakes every `flush_ms`, or at once when `batch_max` spans
 * wait, takes up to `batch_max` spans, encodes them (zipkin_encode) and POSTs them with a
 * `timeout_ms` limit; a batch the collector did not take (no connection, timeout, any
 * status but 2xx) is dropped and counted (reason "export_failed"), and the thread waits
 * `flush_ms` before trying again, so a collector that is down costs one failed connection
 * per interval, and requests never notice. zipkin_free stops the thread and makes one last
 * attempt at what is queued.
 *
 * The counters are on /actuator/prometheus (zipkin_prometheus):
 *   fermata_tracing_spans_exported_total            spans the collector took
 *   fermata_tracing_spans_dropped_total{reason=...} queue_full | export_failed
 *
 * Ownership: zipkin_new copies the options' strings. Thread-safety: zipkin_submit, the
 * counters and zipkin_prometheus from any thread; new/start/free from one. libcurl must be
 * initialised (curl_global_init) before zipkin_start.
 */
#ifndef FERMATA_ZIPKIN_H
#define FERMATA_ZIPKIN_H

#include <stddef.h>
#include <stdint.h>

#include "trace/trace.h"

enum { ZIPKIN_OK = 0, ZIPKIN_ERR_ARG = -1, ZIPKIN_ERR_NOMEM = -2, ZIPKIN_ERR_THREAD = -3 };

typedef struct zipkin_opts {
  const char *endpoint; /* e.g. http://127.0.0.1:9411/api/v2/spans; required */
  const char *service;  /* localEndpoint.serviceName of every span */
  size_t queue_cap;     /* 0: 2048 */
  size_t batch_max;     /* 0: 256 (at most queue_cap) */
  uint32_t flush_ms;    /* 0: 1000 */
  long timeout_ms;      /* the whole POST; 0: 2000 (connecting: at most 1000) */
} zipkin_opts;

typedef struct zipkin zipkin;

typedef struct zipkin_counts {
  uint64_t exported, dropped_queue_full, dropped_export_failed;
} zipkin_counts;

/* NULL with no endpoint or no memory. Does not start the thread. */
zipkin *zipkin_new(const zipkin_opts *o);
/* Starts the thread: ZIPKIN_OK or ZIPKIN_ERR_THREAD. */
int zipkin_start(zipkin *z);
/* A trace_export_fn: `ud` is the zipkin. Copies the span or counts it dropped. */
void zipkin_submit(void *ud, const trace_span *s);
void zipkin_counts_get(const zipkin *z, zipkin_counts *out);
/* The counters in Prometheus' text format; malloc'd (caller frees), NULL without memory. */
char *zipkin_prometheus(const zipkin *z);
/* Stops the thread, tries once more to send what is queued, frees. NULL does nothing. */
void zipkin_free(zipkin *z);

/* The JSON v2 array of n spans, all from `service`; malloc'd (caller frees), NULL without
 * memory. Spans that are not valid are left out. */
char *zipkin_encode(const char *service, const trace_span *spans, size_t n);

#endif
