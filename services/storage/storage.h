/*
 * storage: the Storage Service's domain: validation of storage descriptions and their
 * records in the service's own database.
 *
 * A storage is (storageType, bucket, path): where the Resource Service keeps files in a
 * given processing state. Validation reports every failing field at once, with the
 * messages the handlers send as the contract's `details`. Records live in the `storages`
 * table; (bucket, path) is unique, which is what makes a duplicate a 409 even when two
 * requests race. SQL lives in storage_repo.c only, which hands rows back as storage_row
 * (the contract's JSON is made from them by storage_render). Nothing here knows HTTP.
 *
 * Thread-safety: every function may be called from any thread; the db_pool is shared.
 */
#ifndef FERMATA_STORAGE_H
#define FERMATA_STORAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define STORAGE_PATH_MAX_CHARS 200

typedef struct {
  const char *type;   /* "STAGING" or "PERMANENT" */
  const char *bucket; /* a valid S3 bucket name */
  const char *path;   /* "/" or "/seg/seg" of URL-safe characters */
} storage;

/* One row of `storages` as storage_list reads it, values copied out. Every row came
 * through the field rules below (ASCII bucket and path), so the sizes hold any of them. */
typedef struct {
  int32_t id;
  char type[16];
  char bucket[64];
  char path[STORAGE_PATH_MAX_CHARS + 1];
} storage_row;

/* Field rules, also used by main to check the configured seed storages. */
bool storage_type_valid(const char *type);
bool storage_bucket_valid(const char *bucket);
/* NULL when valid, else the message for `path` (a static string). */
const char *storage_path_problem(const char *path);

/* Validates a parsed request body. Returns NULL when valid (and fills `out` with pointers
 * into `body`), else a new JSON object of field -> message the caller owns. A body that
 * is not a JSON object gives {"body": "..."}. Unknown keys are ignored. */
json_t *storage_validate(const json_t *body, storage *out);

/* The schema and its migrations, for db_opts. */
extern const db_migration storage_migrations[];
extern const size_t storage_nmigrations;

enum { STORAGE_OK = 0 };

/* What storage_create or storage_seed did with one storage, when it returned STORAGE_OK. */
typedef enum {
  STORAGE_CREATED,   /* the row was inserted (and, for create, its bucket provisioned) */
  STORAGE_EXISTS,    /* bucket+path taken (create), or the type is present (seed) */
  STORAGE_TAKEN,     /* seed only: the type is absent but its bucket+path belong to
                        another storage, so nothing was created */
  STORAGE_PROVISION, /* create only: the provision callback failed; nothing stored */
  STORAGE_FULL,      /* create only: max_count storages exist already */
} storage_outcome;

/* Called by storage_create inside its transaction, after the row is known to be new and
 * before it is committed. Returns 0 or a negative code of the callee's own, which
 * storage_create hands back through *provision_rc. */
typedef int (*storage_provision_fn)(void *ud, const char *bucket);

/* Inserts a storage and provisions its bucket atomically: the row is inserted (a duplicate
 * bucket+path gives STORAGE_EXISTS without calling `provision`), then `provision` runs,
 * and the row is committed only when it succeeded (else STORAGE_PROVISION, with its code
 * in *provision_rc, and nothing stored). Concurrent creates of the same bucket+path wait
 * for each other on the unique index, so exactly one wins. With max_count storages there
 * already it gives STORAGE_FULL (creations take a transaction-scoped advisory lock for the
 * count, so racing requests cannot pass the cap together). Returns STORAGE_OK, with the
 * outcome in *outcome (STORAGE_CREATED: *id is set), or a negative DB_ERR_* (then nothing
 * was stored and *outcome is unspecified). */
int storage_create(db_pool *db, const storage *s, long max_count, storage_provision_fn provision, void *ud,
                   storage_outcome *outcome, int32_t *id, int *provision_rc);

/* Every storage, ordered by id: *out a malloc'd array of *n rows the caller frees (NULL
 * when there are none). STORAGE_OK or a negative DB_ERR_*. */
int storage_list(db_pool *db, storage_row **out, size_t *n);

/* The distinct bucket names of all storages (new JSON array of strings in *out), for the
 * bucket keeper. STORAGE_OK or a negative DB_ERR_*. */
int storage_buckets(db_pool *db, json_t **out);

/* Deletes the given ids; the ones that existed go to `out` (room for n; may be `ids`) in
 * the order given, *nout their count. STORAGE_OK or a negative DB_ERR_*. */
int storage_delete(db_pool *db, const int32_t *ids, size_t n, int32_t *out, size_t *nout);

/* Creates each seed whose type has no storage yet. All seeds are handled in one
 * transaction under an advisory lock, so instances starting together create each one once.
 * Returns STORAGE_OK, with results[i] STORAGE_CREATED, STORAGE_EXISTS or STORAGE_TAKEN, or
 * a negative DB_ERR_* (then nothing was created and results is unspecified). */
int storage_seed(db_pool *db, const storage *seeds, size_t n, storage_outcome *results);

#endif
