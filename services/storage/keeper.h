/*
 * keeper: keeps the object store in step with the storages table.
 *
 * Every storage's bucket must exist in the object store, but the store may be down when
 * the service starts, and the local emulator forgets every bucket when it restarts. So
 * the keeper does not create buckets once: it runs passes, one synchronously at start
 * (keeper_run_once) and then on a background thread (keeper_start, lib/worker), each pass
 *   1. seeding the configured STAGING and PERMANENT storages, until that has succeeded
 *      once (the database may be down at start),
 *   2. listing the distinct buckets of all storages and creating those that are missing.
 * After a clean pass it waits the check interval; after a failed one it retries with
 * exponential backoff (capped at the interval). It logs when its view of the store changes,
 * not on every pass. It never deletes a bucket: objects may live there.
 *
 * keeper_provision creates one bucket for a request (POST /storages) and reports lib/s3's
 * code, so the caller decides what the client sees.
 *
 * Ownership: the keeper borrows the pool, the S3 client, the log and the seeds, which
 * must outlive it. Thread-safe: status and provisioning may be called from any thread.
 */
#ifndef FERMATA_STORAGE_KEEPER_H
#define FERMATA_STORAGE_KEEPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "log/log.h"
#include "s3/s3.h"
#include "storage.h"

typedef struct keeper keeper;

typedef struct {
  db_pool *db;
  s3_client *s3;
  log_sink *lg;
  const storage *seeds; /* created at start when their type is absent */
  size_t nseeds;
  uint32_t interval_ms; /* between clean passes; also the backoff cap; 0 = 5000 */
} keeper_opts;

typedef enum {
  KEEPER_STORE_UNKNOWN = 0, /* no pass could list the buckets yet (database down) */
  KEEPER_STORE_UP,          /* reachable and every bucket exists */
  KEEPER_STORE_DOWN,        /* unreachable */
  KEEPER_STORE_PENDING,     /* reachable but some buckets could not be created */
} keeper_store;

typedef struct {
  bool seeded;
  keeper_store store;
  size_t buckets;   /* distinct buckets of the last listing */
  size_t missing;   /* of those, not known to exist after the last pass */
  const char *kind; /* s3_store_kind() of the last answer seen; NULL before any */
} keeper_status;

/* NULL on allocation failure. Does not start the thread. */
keeper *keeper_new(const keeper_opts *opts);
/* Stops and joins the thread if it runs, then frees. keeper_free(NULL) does nothing. */
void keeper_free(keeper *k);

/* One pass on the calling thread. Returns true when it was clean (seeded, all buckets
 * present). */
bool keeper_run_once(keeper *k);
/* Starts the background passes. 0, or -1 when the thread cannot be created. */
int keeper_start(keeper *k);

void keeper_status_get(keeper *k, keeper_status *out);

/* Creates `bucket` (idempotent). 0 or a negative s3_err. Matches storage_provision_fn
 * with the keeper as `ud`. */
int keeper_provision(void *k, const char *bucket);

#endif
