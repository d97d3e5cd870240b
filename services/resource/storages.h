/*
 * storages: the Resource Service's view of the Storage Service, through a circuit breaker
 * named "storageService", with fallback data.
 *
 * Every lookup calls GET {url}/storages through the breaker. When the call is refused
 * (breaker OPEN), fails (connection error, timeout, 5xx) or answers something that is not
 * a storage list, the answer comes from fallback data of exactly the same shape: first the
 * last list received successfully, else the stub storages from configuration. A 4xx
 * answer means the Storage Service is up (the breaker records a success) but gives no
 * list, so the fallback is used too.
 *
 * Tracing: with a tracer in the config and a valid context, each lookup is an INTERNAL span
 * "storage lookup" (its GET a CLIENT span below it, lib/httpc) tagged breaker.state (the
 * state before the call), storage.source (live, cached, stub) and fallback (true when the
 * fallback answered).
 *
 * Thread-safe: the cache is guarded by a mutex; the breaker is thread-safe; httpc is.
 */
#ifndef FERMATA_RESOURCE_STORAGES_H
#define FERMATA_RESOURCE_STORAGES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "breaker/breaker.h"
#include "httpc/httpc.h"
#include "log/log.h"

#define STORAGES_MAX 64

typedef struct {
  int64_t id;
  char type[16]; /* STAGING, PERMANENT */
  char bucket[64];
  char path[256];
} storage_loc;

typedef struct {
  const char *url; /* Storage Service base URL */
  long connect_timeout_ms;
  long timeout_ms;
  /* stub storages used when no live list was ever received */
  storage_loc stub_staging, stub_permanent;
  const trace_tracer *tracer; /* borrowed; NULL = no spans */
} storages_config;

typedef struct storages storages;

/* `http` and `b` are borrowed and must outlive the object. NULL on allocation failure. */
storages *storages_new(const storages_config *cfg, httpc *http, breaker *b, log_sink *lg);
void storages_free(storages *s);

typedef enum { STORAGES_LIVE = 0, STORAGES_CACHED, STORAGES_STUB } storages_source;

/* Finds the first storage of `type`. Returns 0 and fills *out (and *source when not
 * NULL), or -1 when neither the live list nor the fallback has one. */
int storages_pick(storages *s, const char *type, const char *request_id, const trace_ctx *trace, storage_loc *out,
                  storages_source *source);

/* Parses a GET /storages body into locs (at most max). Returns the count or -1 when the
 * body is not a list of storages. Exposed for tests. */
int storages_parse(const char *body, size_t len, storage_loc *locs, int max);

#endif
