/*
 * s3probe: is the object store usable right now? For the objectStore health component.
 *
 * A probe answers three questions, in this order, and stops at the first "no":
 *   1. does the store answer (HEAD of the bucket)?            "object store unreachable"
 *   2. is the bucket there?                                   "bucket missing"
 *   3. does it accept writes (PUT, then DELETE, of a 1-byte object under the key prefix
 *      "fermata-health/")?                                    "object store refuses writes"
 * The third catches what a HEAD cannot: a store whose disk is full, read-only or whose
 * directory lost its permissions answers HEAD fine and fails every upload. The probe
 * object lives for the few milliseconds between its PUT and its DELETE; its key never
 * collides with an upload's (those are under a storage path, "files/...").
 *
 * Results are cached for `interval_ms` (health is polled by orchestrators and scripts;
 * one probe every interval is enough), so at most one probe runs per interval whatever the
 * number of health requests: concurrent callers wait for the running probe and share its
 * result. The probe uses its own s3_client with short timeouts (`timeout_ms` per request),
 * so a hung or slow store makes health DOWN within that time instead of holding the health
 * request for the data path's long upload timeout. The default (500 ms) keeps a whole
 * probe, three requests, within 1.5 s: under the 2 s an orchestrator's probe waits
 * (Kubernetes' timeoutSeconds, Compose's healthcheck timeout), so a slow store reads as
 * DOWN, never as a probe that timed out. Stores in the same region answer these requests
 * in tens of milliseconds.
 *
 * Thread-safe. The caller owns the s3probe; s3probe_free it after the last check. Needs
 * curl_global_init, like lib/s3.
 */
#ifndef FERMATA_S3PROBE_H
#define FERMATA_S3PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "s3/s3.h"

typedef struct s3probe s3probe;

#define S3PROBE_DEFAULT_TIMEOUT_MS 500

typedef struct s3probe_opts {
  s3_config s3;         /* endpoint and credentials; its timeouts are replaced by timeout_ms */
  const char *bucket;   /* the bucket to probe (copied) */
  const char *instance; /* names the probe object: fermata-health/<instance> (copied; URL-safe) */
  long interval_ms;     /* cache lifetime of a result; 0 means 2000 */
  long timeout_ms;      /* per request of a probe; 0 means S3PROBE_DEFAULT_TIMEOUT_MS */
  /* Clock in milliseconds (monotonic); NULL means CLOCK_MONOTONIC. For tests. */
  int64_t (*now_ms)(void *ud);
  void *now_ud;
} s3probe_opts;

typedef struct s3probe_result {
  bool up;
  const char *reason; /* static; "" when up */
  const char *kind;   /* s3_store_kind() of the store's Server header; static, never NULL */
  long http_status;   /* of the failing request; 0 when none or no answer */
  char s3_code[64];   /* S3's error code of the failing request; "" when none */
} s3probe_result;

/* NULL on a bad option or allocation failure. */
s3probe *s3probe_new(const s3probe_opts *opts);
void s3probe_free(s3probe *p); /* NULL ok */

/* Fills *out from the cached result, probing first when it is older than the interval. */
void s3probe_check(s3probe *p, s3probe_result *out);

#endif
