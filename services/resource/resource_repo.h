/*
 * resource_repo: every SQL statement of the Resource Service, for the request paths
 * (resource.c), the janitor's deletion queues (janitor.c) and the outbox relay (outbox.c).
 * Functions return DB_OK or a negative DB_ERR_*; what they found comes back through
 * out-parameters.
 *
 * The queues' functions take the caller's action as a callback, so that the bookkeeping
 * stays here: which rows are due, removing the finished ones, the retry schedule of the
 * others, and for the relay a transaction that keeps its rows locked from the SELECT
 * through the publishing to the DELETE of the ones published.
 *
 * Thread-safety: every function may be called from any thread; the db_pool is shared.
 */
#ifndef FERMATA_RESOURCE_REPO_H
#define FERMATA_RESOURCE_REPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "storages.h"

/* One row of `resources`. */
typedef struct {
  int32_t id;
  char state[16];
  int64_t storage_id;
  char bucket[64];
  char key[512];
  uint64_t size;
} resource_row;

extern const db_migration resource_migrations[];
extern const size_t resource_nmigrations;

/* request_id and traceparent (the upload's context, relayed with the message) may be NULL. */
int repo_insert_with_outbox(db_pool *db, const resource_row *r, const char *sha256, const char *request_id,
                            const char *traceparent, int32_t *id);
/* On DB_OK, *found says whether the row exists; when it does, *out holds it. */
int repo_find(db_pool *db, int32_t id, resource_row *out, bool *found);
/* Deletes rows and records their objects and songs for later deletion, in one transaction.
 * deleted: ids that existed, in request order (room for n; may be ids; count in *ndeleted). */
int repo_delete(db_pool *db, const int32_t *ids, size_t n, int32_t *deleted, size_t *ndeleted);
/* Switches a STAGING row to its permanent location if it still points at old_key.
 * *switched = 1 when this call changed it. */
/* *lag_s: when switched, the seconds since the row was written (the upload's commit). */
int repo_make_permanent(db_pool *db, int32_t id, const char *old_key, const storage_loc *to, const char *new_key,
                        int *switched, double *lag_s);
/* Rows of the outbox not yet published (and confirmed) to the broker. */
int repo_outbox_pending(db_pool *db, long *n);
/* Queues bucket/key for deletion by the janitor; with an upload_id (not NULL), the
 * unfinished multipart upload of that key is aborted instead. */
int repo_pending_object_delete(db_pool *db, const char *bucket, const char *key, const char *upload_id);
/* A multipart upload in progress, recorded as a pending abort due in after_s seconds
 * (*guard = its row): if the service dies mid-upload, the janitor aborts it then, so no
 * part stays in the store. repo_upload_done forgets it once completed or aborted;
 * repo_upload_abort_now makes it due at once (the abort failed: the store is down). */
int repo_upload_started(db_pool *db, const char *bucket, const char *key, const char *upload_id, long after_s,
                        int64_t *guard);
int repo_upload_done(db_pool *db, int64_t guard);
int repo_upload_abort_now(db_pool *db, int64_t guard);

/* The deletion queues the janitor works (pending_object_deletes, pending_song_deletes).
 * A failed row is retried 1 s after its first attempt, doubling per attempt, at most
 * 5 min apart. */
#define REPO_SWEEP_MAX 100 /* rows per sweep */
/* Calls del(ud, bucket, key) for each due object deletion (at most REPO_SWEEP_MAX, oldest
 * first): 0 removes its row, anything else schedules a retry. The strings are borrowed for
 * the call. DB_OK (also when none was due) or DB_ERR_*. */
typedef int (*repo_object_delete_fn)(void *ud, const char *bucket, const char *key, const char *upload_id);
int repo_sweep_object_deletes(db_pool *db, repo_object_delete_fn del, void *ud);
/* Calls del(ud, ids, n) once with the due song deletions (at most REPO_SWEEP_MAX, by id),
 * unless none is due: 0 removes their rows, anything else schedules a retry. DB_OK or
 * DB_ERR_*. */
typedef int (*repo_song_delete_fn)(void *ud, const int32_t *ids, size_t n);
int repo_sweep_song_deletes(db_pool *db, repo_song_delete_fn del, void *ud);
/* Removes the ids from pending_song_deletes (their song metadata is gone). */
int repo_forget_song_deletes(db_pool *db, const int32_t *ids, size_t n);
/* *n = rows waiting in both deletion queues. */
int repo_pending_deletes(db_pool *db, long *n);

/* The outbox the relay works (outbox.c). A row as repo_outbox_relay hands it over; the
 * strings are borrowed for the call, request_id and traceparent "" when the upload had
 * none. */
typedef struct {
  int64_t id;
  const char *routing_key;
  const char *payload;
  const char *request_id;
  const char *traceparent;
} outbox_row;
#define REPO_OUTBOX_BATCH 50 /* rows per relay call */
typedef int (*repo_outbox_fn)(void *ud, const outbox_row *row);
/* In one transaction: takes up to REPO_OUTBOX_BATCH rows in id order, FOR UPDATE SKIP
 * LOCKED (so other instances relay other rows meanwhile), calls publish(ud, row) for each
 * until one returns non-zero, deletes the rows published and commits. *published = their
 * count. DB_OK, or DB_ERR_* with *published = 0 and no row deleted (the ones published
 * will be sent again: consumers are idempotent). */
int repo_outbox_relay(db_pool *db, repo_outbox_fn publish, void *ud, int *published);

#endif
