/*
 * storage_repo: every SQL statement of the Storage Service. Parameters are always bound.
 *
 * (bucket, path) is unique: duplicates are refused by the index, never by a check-then-
 * insert, so racing requests cannot both win. Seeding takes a transaction-scoped advisory
 * lock so that instances starting together see each other's seeds.
 */
#include <stdio.h>
#include <stdlib.h>

#include "storage.h"

const db_migration storage_migrations[] = {
    {1, "create storages",
     "CREATE TABLE storages ("
     " id serial PRIMARY KEY,"
     " storage_type varchar(16) NOT NULL CHECK (storage_type IN ('STAGING', 'PERMANENT')),"
     " bucket varchar(63) NOT NULL,"
     " path varchar(200) NOT NULL,"
     " CONSTRAINT storages_bucket_path_key UNIQUE (bucket, path))"},
};
const size_t storage_nmigrations = sizeof storage_migrations / sizeof storage_migrations[0];

#define INSERT_SQL                                                        \
  "INSERT INTO storages (storage_type, bucket, path) VALUES ($1, $2, $3)" \
  " ON CONFLICT (bucket, path) DO NOTHING RETURNING id"

int storage_create(db_pool *db, const storage *s, long max_count, storage_provision_fn provision, void *ud,
                   storage_outcome *outcome, int32_t *id, int *provision_rc) {
  db_conn *c;
  int rc = db_acquire(db, &c);
  if (rc != DB_OK) return rc;
  rc = db_begin(c);
  if (rc != DB_OK) goto out;
  const char *p[] = {s->type, s->bucket, s->path};
  PGresult *res;
  /* the cap: counted under a lock held to commit, so two creations cannot both see room */
  rc = db_exec(c, "SELECT pg_advisory_xact_lock(hashtext('fermata.storage.create'))", 0, NULL, NULL);
  if (rc != DB_OK) goto rollback;
  rc = db_exec(c, "SELECT count(*) FROM storages", 0, NULL, &res);
  if (rc != DB_OK) goto rollback;
  long count = atol(PQgetvalue(res, 0, 0));
  PQclear(res);
  if (count >= max_count) {
    *outcome = STORAGE_FULL;
    goto rollback;
  }
  /* a concurrent insert of the same key makes this wait until that one commits or aborts */
  rc = db_exec(c, INSERT_SQL, 3, p, &res);
  if (rc != DB_OK) goto rollback;
  int inserted = PQntuples(res);
  if (inserted) *id = (int32_t)atol(PQgetvalue(res, 0, 0));
  PQclear(res);
  if (!inserted) {
    *outcome = STORAGE_EXISTS;
    goto rollback;
  }
  int prc = provision ? provision(ud, s->bucket) : 0;
  if (prc != 0) {
    *provision_rc = prc;
    *outcome = STORAGE_PROVISION;
    goto rollback;
  }
  rc = db_commit(c);
  if (rc == DB_OK) *outcome = STORAGE_CREATED;
  goto out;
rollback:
  db_rollback(c);
out:
  db_release(db, c);
  return rc;
}

int storage_list(db_pool *db, storage_row **out, size_t *n) {
  *out = NULL;
  *n = 0;
  PGresult *res;
  int rc = db_query(db, "SELECT id, storage_type, bucket, path FROM storages ORDER BY id", 0, NULL, &res);
  if (rc != DB_OK) return rc;
  int rows = PQntuples(res);
  storage_row *list = rows ? calloc((size_t)rows, sizeof *list) : NULL;
  if (rows && !list) {
    PQclear(res);
    return DB_ERR_NOMEM;
  }
  for (int row = 0; row < rows; row++) {
    storage_row *s = &list[row];
    s->id = (int32_t)atol(PQgetvalue(res, row, 0));
    snprintf(s->type, sizeof s->type, "%s", PQgetvalue(res, row, 1));
    snprintf(s->bucket, sizeof s->bucket, "%s", PQgetvalue(res, row, 2));
    snprintf(s->path, sizeof s->path, "%s", PQgetvalue(res, row, 3));
  }
  PQclear(res);
  *out = list;
  *n = (size_t)rows;
  return STORAGE_OK;
}

int storage_buckets(db_pool *db, json_t **out) {
  PGresult *res;
  int rc = db_query(db, "SELECT DISTINCT bucket FROM storages ORDER BY bucket", 0, NULL, &res);
  if (rc != DB_OK) return rc;
  json_t *arr = json_array();
  for (int row = 0; arr && row < PQntuples(res); row++) {
    if (json_array_append_new(arr, json_string(PQgetvalue(res, row, 0))) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  PQclear(res);
  *out = arr;
  return arr ? STORAGE_OK : DB_ERR_NOMEM;
}

int storage_delete(db_pool *db, const int32_t *ids, size_t n, int32_t *out, size_t *nout) {
  return db_delete_ids(db, "DELETE FROM storages WHERE id = ANY($1::int[]) RETURNING id", ids, n, out, nout);
}

/* One seed inside the seeding transaction: STORAGE_OK with *outcome STORAGE_CREATED,
 * STORAGE_EXISTS or STORAGE_TAKEN, or a negative DB_ERR_*. */
static int seed_one(db_conn *c, const storage *s, storage_outcome *outcome) {
  const char *pt[] = {s->type};
  PGresult *res;
  int rc = db_exec(c, "SELECT 1 FROM storages WHERE storage_type = $1 LIMIT 1", 1, pt, &res);
  if (rc != DB_OK) return rc;
  int present = PQntuples(res);
  PQclear(res);
  if (present) {
    *outcome = STORAGE_EXISTS;
    return STORAGE_OK;
  }
  const char *p[] = {s->type, s->bucket, s->path};
  rc = db_exec(c, INSERT_SQL, 3, p, &res);
  if (rc != DB_OK) return rc;
  *outcome = PQntuples(res) ? STORAGE_CREATED : STORAGE_TAKEN;
  PQclear(res);
  return STORAGE_OK;
}

int storage_seed(db_pool *db, const storage *seeds, size_t n, storage_outcome *results) {
  db_conn *c;
  int rc = db_acquire(db, &c);
  if (rc != DB_OK) return rc;
  rc = db_begin(c);
  if (rc != DB_OK) goto out;
  /* serialises seeding across instances until commit; the key is a constant of ours */
  rc = db_exec(c, "SELECT pg_advisory_xact_lock(hashtext('fermata.storage.seed'))", 0, NULL, NULL);
  for (size_t i = 0; rc == DB_OK && i < n; i++) rc = seed_one(c, &seeds[i], &results[i]);
  if (rc == DB_OK)
    rc = db_commit(c);
  else
    db_rollback(c);
out:
  db_release(db, c);
  return rc;
}
