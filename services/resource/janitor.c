/* janitor: see janitor.h. */
#include "janitor.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker.h"

#define SWEEP_MS 2000u /* between sweeps unless kicked */

struct janitor {
  db_pool *db;
  s3_client *s3;
  songs *sg;
  worker *w;
};

static uint32_t sweep_step(void *arg);

#define BACKOFF_SQL \
  "attempts = attempts + 1, next_attempt_at = now() + least(interval '1 second' * power(2, least(attempts, 12)), interval '5 minutes')"

janitor *janitor_new(db_pool *db, s3_client *s3, songs *sg) {
  janitor *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  j->db = db;
  j->s3 = s3;
  j->sg = sg;
  j->w = worker_new(sweep_step, j);
  if (!j->w) {
    free(j);
    return NULL;
  }
  return j;
}

void janitor_free(janitor *j) {
  if (!j) return;
  worker_free(j->w); /* stops the thread first */
  free(j);
}

void janitor_kick(janitor *j) { worker_kick(j->w); }

static void forget_songs(janitor *j, const int32_t *ids, size_t n) {
  char *arr = db_int_array(ids, n);
  if (!arr) return;
  const char *p[] = {arr};
  db_query(j->db, "DELETE FROM pending_song_deletes WHERE resource_id = ANY($1::int[])", 1, p, NULL);
  free(arr);
}

void janitor_delete_songs_now(janitor *j, const int32_t *ids, size_t n, const char *request_id) {
  static const useconds_t waits[] = {0, 100000, 300000};
  for (int attempt = 0; attempt < 3; attempt++) {
    if (waits[attempt]) usleep(waits[attempt]);
    if (songs_delete(j->sg, ids, n, request_id) == 0) {
      forget_songs(j, ids, n);
      return;
    }
  }
}

static void sweep_songs(janitor *j) {
  PGresult *res;
  if (db_query(j->db,
               "SELECT resource_id FROM pending_song_deletes WHERE next_attempt_at <= now()"
               " ORDER BY resource_id LIMIT 100",
               0, NULL, &res) != DB_OK)
    return;
  int n = PQntuples(res);
  int32_t ids[100];
  for (int i = 0; i < n; i++) ids[i] = atoi(PQgetvalue(res, i, 0));
  PQclear(res);
  if (n == 0) return;
  char *arr = db_int_array(ids, (size_t)n);
  if (!arr) return;
  const char *p[] = {arr};
  if (songs_delete(j->sg, ids, (size_t)n, NULL) == 0)
    db_query(j->db, "DELETE FROM pending_song_deletes WHERE resource_id = ANY($1::int[])", 1, p, NULL);
  else
    db_query(j->db, "UPDATE pending_song_deletes SET " BACKOFF_SQL " WHERE resource_id = ANY($1::int[])", 1,
             p, NULL);
  free(arr);
}

static void sweep_objects(janitor *j) {
  PGresult *res;
  if (db_query(j->db,
               "SELECT id, bucket, s3_key FROM pending_object_deletes WHERE next_attempt_at <= now()"
               " ORDER BY id LIMIT 100",
               0, NULL, &res) != DB_OK)
    return;
  for (int i = 0; i < PQntuples(res); i++) {
    const char *p[] = {PQgetvalue(res, i, 0)};
    s3_error e = {0};
    if (s3_delete(j->s3, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), &e) == S3_OK)
      db_query(j->db, "DELETE FROM pending_object_deletes WHERE id = $1::bigint", 1, p, NULL);
    else
      db_query(j->db, "UPDATE pending_object_deletes SET " BACKOFF_SQL " WHERE id = $1::bigint", 1, p, NULL);
  }
  PQclear(res);
}

long janitor_pending(janitor *j) {
  PGresult *res;
  if (db_query(j->db,
               "SELECT (SELECT count(*) FROM pending_song_deletes) + (SELECT count(*) FROM pending_object_deletes)", 0,
               NULL, &res) != DB_OK)
    return -1;
  long n = atol(PQgetvalue(res, 0, 0));
  PQclear(res);
  return n;
}

/* The thread's round (lib/worker): both sweeps, then a wait for a kick or SWEEP_MS. */
static uint32_t sweep_step(void *arg) {
  janitor *j = arg;
  sweep_objects(j);
  sweep_songs(j);
  return SWEEP_MS;
}

int janitor_start(janitor *j) { return worker_start(j->w, 0) == WORKER_OK ? 0 : -1; }

void janitor_stop(janitor *j) {
  if (j) worker_stop(j->w);
}
