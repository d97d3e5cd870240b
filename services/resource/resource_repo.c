/*
 * resource_repo: see resource_repo.h. Parameters are always bound.
 */
#include "resource_repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgs/msgs.h"

const db_migration resource_migrations[] = {
    {1, "create resources and outbox",
     "CREATE TABLE resources ("
     " id serial PRIMARY KEY,"
     " state varchar(16) NOT NULL CHECK (state IN ('STAGING', 'PERMANENT')),"
     " storage_id bigint NOT NULL,"
     " bucket varchar(63) NOT NULL,"
     " s3_key varchar(1024) NOT NULL,"
     " size bigint NOT NULL CHECK (size > 0),"
     " sha256 char(64) NOT NULL,"
     " created_at timestamptz NOT NULL DEFAULT now(),"
     " updated_at timestamptz NOT NULL DEFAULT now());"
     "CREATE TABLE outbox ("
     " id bigserial PRIMARY KEY,"
     " routing_key varchar(64) NOT NULL,"
     " payload text NOT NULL,"
     " request_id varchar(80),"
     " created_at timestamptz NOT NULL DEFAULT now());"
     "CREATE TABLE pending_song_deletes ("
     " resource_id integer PRIMARY KEY,"
     " attempts integer NOT NULL DEFAULT 0,"
     " next_attempt_at timestamptz NOT NULL DEFAULT now());"
     "CREATE TABLE pending_object_deletes ("
     " id bigserial PRIMARY KEY,"
     " bucket varchar(63) NOT NULL,"
     " s3_key varchar(1024) NOT NULL,"
     " attempts integer NOT NULL DEFAULT 0,"
     " next_attempt_at timestamptz NOT NULL DEFAULT now())"},
    {2, "pending deletes may be multipart uploads to abort",
     "ALTER TABLE pending_object_deletes ADD COLUMN upload_id varchar(1024)"},
    {3, "outbox rows carry the upload's trace context", "ALTER TABLE outbox ADD COLUMN traceparent varchar(64)"},
};
const size_t resource_nmigrations = sizeof resource_migrations / sizeof resource_migrations[0];

int repo_insert_with_outbox(db_pool *db, const resource_row *r, const char *sha256, const char *request_id,
                            const char *traceparent, int32_t *id) {
  db_conn *c;
  int rc = db_acquire(db, &c);
  if (rc != DB_OK) return rc;
  char sid[24], size[24];
  snprintf(sid, sizeof sid, "%lld", (long long)r->storage_id);
  snprintf(size, sizeof size, "%llu", (unsigned long long)r->size);
  const char *p[] = {r->state, sid, r->bucket, r->key, size, sha256};
  PGresult *res = NULL;
  if ((rc = db_begin(c)) != DB_OK) goto out;
  rc = db_exec(c,
               "INSERT INTO resources (state, storage_id, bucket, s3_key, size, sha256)"
               " VALUES ($1, $2::bigint, $3, $4, $5::bigint, $6) RETURNING id",
               6, p, &res);
  if (rc != DB_OK) goto rollback;
  *id = atoi(PQgetvalue(res, 0, 0));
  PQclear(res);
  char payload[MSGS_ENCODED_MAX];
  size_t plen;
  if (msgs_encode(*id, payload, sizeof payload, &plen) != MSGS_OK) {
    rc = DB_ERR_QUERY;
    goto rollback;
  }
  const char *po[] = {MSGS_UPLOADED, payload, request_id, traceparent};
  rc = db_exec(c, "INSERT INTO outbox (routing_key, payload, request_id, traceparent) VALUES ($1, $2, $3, $4)", 4, po,
               NULL);
  if (rc != DB_OK) goto rollback;
  rc = db_commit(c);
  goto out;
rollback:
  db_rollback(c);
out:
  db_release(db, c);
  return rc;
}

int repo_find(db_pool *db, int32_t id, resource_row *out, bool *found) {
  char ids[16];
  snprintf(ids, sizeof ids, "%d", id);
  const char *p[] = {ids};
  PGresult *res;
  int rc = db_query(db, "SELECT state, storage_id, bucket, s3_key, size FROM resources WHERE id = $1::int", 1, p, &res);
  if (rc != DB_OK) return rc;
  *found = PQntuples(res) > 0;
  if (!*found) {
    PQclear(res);
    return DB_OK;
  }
  memset(out, 0, sizeof *out);
  out->id = id;
  snprintf(out->state, sizeof out->state, "%s", PQgetvalue(res, 0, 0));
  out->storage_id = atoll(PQgetvalue(res, 0, 1));
  snprintf(out->bucket, sizeof out->bucket, "%s", PQgetvalue(res, 0, 2));
  snprintf(out->key, sizeof out->key, "%s", PQgetvalue(res, 0, 3));
  out->size = strtoull(PQgetvalue(res, 0, 4), NULL, 10);
  PQclear(res);
  return DB_OK;
}

int repo_delete(db_pool *db, const int32_t *ids, size_t n, int32_t *deleted, size_t *ndeleted) {
  *ndeleted = 0;
  char *arr = db_int_array(ids, n);
  if (!arr) return DB_ERR_NOMEM;
  db_conn *c;
  int rc = db_acquire(db, &c);
  if (rc != DB_OK) {
    free(arr);
    return rc;
  }
  const char *p[] = {arr};
  PGresult *res = NULL;
  if ((rc = db_begin(c)) != DB_OK) goto out;
  /* The objects and the song metadata are recorded for deletion in the same statement
   * that removes the rows, so no crash can forget them. */
  rc = db_exec(c,
               "WITH gone AS (DELETE FROM resources WHERE id = ANY($1::int[]) RETURNING id, bucket, s3_key),"
               " objs AS (INSERT INTO pending_object_deletes (bucket, s3_key) SELECT bucket, s3_key FROM gone),"
               " songs AS (INSERT INTO pending_song_deletes (resource_id) SELECT id FROM gone"
               "           ON CONFLICT (resource_id) DO NOTHING)"
               " SELECT id FROM gone",
               1, p, &res);
  if (rc != DB_OK) {
    db_rollback(c);
    goto out;
  }
  *ndeleted = db_ids_in_order(res, ids, n, deleted);
  PQclear(res);
  rc = db_commit(c);
  if (rc != DB_OK) *ndeleted = 0;
out:
  db_release(db, c);
  free(arr);
  return rc;
}

int repo_make_permanent(db_pool *db, int32_t id, const char *old_key, const storage_loc *to, const char *new_key,
                        int *switched, double *lag_s) {
  char ids[16], sid[24];
  snprintf(ids, sizeof ids, "%d", id);
  snprintf(sid, sizeof sid, "%lld", (long long)to->id);
  const char *p[] = {ids, old_key, sid, to->bucket, new_key};
  PGresult *res;
  int rc = db_query(db,
                    "UPDATE resources SET state = 'PERMANENT', storage_id = $3::bigint, bucket = $4, s3_key = $5,"
                    " updated_at = now() WHERE id = $1::int AND s3_key = $2"
                    " RETURNING extract(epoch FROM clock_timestamp() - created_at)",
                    5, p, &res);
  if (rc != DB_OK) return rc;
  *switched = PQntuples(res) > 0;
  *lag_s = *switched ? strtod(PQgetvalue(res, 0, 0), NULL) : 0;
  PQclear(res);
  return DB_OK;
}

/* Runs a query of one count (no parameters) into *n. */
static int count_of(db_pool *db, const char *sql, long *n) {
  PGresult *res;
  int rc = db_query(db, sql, 0, NULL, &res);
  if (rc != DB_OK) return rc;
  *n = atol(PQgetvalue(res, 0, 0));
  PQclear(res);
  return DB_OK;
}

int repo_outbox_pending(db_pool *db, long *n) { return count_of(db, "SELECT count(*) FROM outbox", n); }

int repo_pending_object_delete(db_pool *db, const char *bucket, const char *key, const char *upload_id) {
  const char *p[] = {bucket, key, upload_id};
  return db_query(db, "INSERT INTO pending_object_deletes (bucket, s3_key, upload_id) VALUES ($1, $2, $3)", 3, p, NULL);
}

int repo_upload_started(db_pool *db, const char *bucket, const char *key, const char *upload_id, long after_s,
                        int64_t *guard) {
  char secs[24];
  snprintf(secs, sizeof secs, "%ld", after_s);
  const char *p[] = {bucket, key, upload_id, secs};
  PGresult *res = NULL;
  int rc = db_query(db,
                    "INSERT INTO pending_object_deletes (bucket, s3_key, upload_id, next_attempt_at)"
                    " VALUES ($1, $2, $3, now() + interval '1 second' * $4::bigint) RETURNING id",
                    4, p, &res);
  if (rc != DB_OK) return rc;
  *guard = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  return DB_OK;
}

static int guard_exec(db_pool *db, const char *sql, int64_t guard) {
  char id[24];
  snprintf(id, sizeof id, "%lld", (long long)guard);
  const char *p[] = {id};
  return db_query(db, sql, 1, p, NULL);
}

int repo_upload_done(db_pool *db, int64_t guard) {
  return guard_exec(db, "DELETE FROM pending_object_deletes WHERE id = $1::bigint", guard);
}

int repo_upload_abort_now(db_pool *db, int64_t guard) {
  return guard_exec(db, "UPDATE pending_object_deletes SET next_attempt_at = now() WHERE id = $1::bigint", guard);
}

/* ---- the janitor's deletion queues ---- */

#define STR_(x) #x
#define STR(x) STR_(x)

#define BACKOFF_SQL                                                                                                \
  "attempts = attempts + 1, next_attempt_at = now() + least(interval '1 second' * power(2, least(attempts, 12)), " \
  "interval '5 minutes')"

int repo_sweep_object_deletes(db_pool *db, repo_object_delete_fn del, void *ud) {
  PGresult *res;
  int rc = db_query(db,
                    "SELECT id, bucket, s3_key, upload_id FROM pending_object_deletes WHERE next_attempt_at <= now()"
                    " ORDER BY id LIMIT " STR(REPO_SWEEP_MAX),
                    0, NULL, &res);
  if (rc != DB_OK) return rc;
  for (int i = 0; i < PQntuples(res); i++) {
    const char *p[] = {PQgetvalue(res, i, 0)};
    const char *upload_id = PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3);
    if (del(ud, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), upload_id) == 0)
      db_query(db, "DELETE FROM pending_object_deletes WHERE id = $1::bigint", 1, p, NULL);
    else
      db_query(db, "UPDATE pending_object_deletes SET " BACKOFF_SQL " WHERE id = $1::bigint", 1, p, NULL);
  }
  PQclear(res);
  return DB_OK;
}

/* Runs `sql`, binding the ids as its one $1::int[] parameter. */
static int song_deletes_exec(db_pool *db, const char *sql, const int32_t *ids, size_t n) {
  char *arr = db_int_array(ids, n);
  if (!arr) return DB_ERR_NOMEM;
  const char *p[] = {arr};
  int rc = db_query(db, sql, 1, p, NULL);
  free(arr);
  return rc;
}

int repo_forget_song_deletes(db_pool *db, const int32_t *ids, size_t n) {
  return song_deletes_exec(db, "DELETE FROM pending_song_deletes WHERE resource_id = ANY($1::int[])", ids, n);
}

int repo_sweep_song_deletes(db_pool *db, repo_song_delete_fn del, void *ud) {
  PGresult *res;
  int rc = db_query(db,
                    "SELECT resource_id FROM pending_song_deletes WHERE next_attempt_at <= now()"
                    " ORDER BY resource_id LIMIT " STR(REPO_SWEEP_MAX),
                    0, NULL, &res);
  if (rc != DB_OK) return rc;
  int n = PQntuples(res);
  if (n > REPO_SWEEP_MAX) n = REPO_SWEEP_MAX; /* the LIMIT already says so */
  int32_t ids[REPO_SWEEP_MAX];
  for (int i = 0; i < n; i++) ids[i] = atoi(PQgetvalue(res, i, 0));
  PQclear(res);
  if (n == 0) return DB_OK;
  if (del(ud, ids, (size_t)n) == 0) return repo_forget_song_deletes(db, ids, (size_t)n);
  return song_deletes_exec(db, "UPDATE pending_song_deletes SET " BACKOFF_SQL " WHERE resource_id = ANY($1::int[])",
                           ids, (size_t)n);
}

int repo_pending_deletes(db_pool *db, long *n) {
  return count_of(
      db, "SELECT (SELECT count(*) FROM pending_song_deletes) + (SELECT count(*) FROM pending_object_deletes)", n);
}

/* ---- the outbox ---- */

int repo_outbox_relay(db_pool *db, repo_outbox_fn publish, void *ud, int *published) {
  *published = 0;
  db_conn *c;
  int rc = db_acquire(db, &c);
  if (rc != DB_OK) return rc;
  PGresult *res = NULL;
  if ((rc = db_begin(c)) != DB_OK) goto fail;
  rc = db_exec(
      c,
      "SELECT id, routing_key, payload, coalesce(request_id, ''), coalesce(traceparent, '') FROM outbox ORDER BY id"
      " LIMIT " STR(REPO_OUTBOX_BATCH) " FOR UPDATE SKIP LOCKED",
      0, NULL, &res);
  if (rc != DB_OK) goto fail;
  int n = PQntuples(res);
  char done[REPO_OUTBOX_BATCH * 21 + 3] = "{"; /* array literal of the published ids (digits only) */
  int ndone = 0;
  for (int i = 0; i < n && i < REPO_OUTBOX_BATCH; i++) {
    outbox_row row = {.id = atoll(PQgetvalue(res, i, 0)),
                      .routing_key = PQgetvalue(res, i, 1),
                      .payload = PQgetvalue(res, i, 2),
                      .request_id = PQgetvalue(res, i, 3),
                      .traceparent = PQgetvalue(res, i, 4)};
    if (publish(ud, &row) != 0) break;
    size_t used = strlen(done);
    snprintf(done + used, sizeof done - used, "%s%s", ndone ? "," : "", PQgetvalue(res, i, 0));
    ndone++;
  }
  PQclear(res);
  res = NULL;
  if (ndone) {
    strcat(done, "}");
    const char *p[] = {done};
    rc = db_exec(c, "DELETE FROM outbox WHERE id = ANY($1::bigint[])", 1, p, NULL);
    if (rc != DB_OK) goto fail;
  }
  if ((rc = db_commit(c)) != DB_OK) goto fail;
  db_release(db, c);
  *published = ndone;
  return DB_OK;
fail:
  PQclear(res);
  db_rollback(c);
  db_release(db, c);
  return rc;
}
