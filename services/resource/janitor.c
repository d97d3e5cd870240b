/* janitor: see janitor.h. */
#include "janitor.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resource_repo.h"
#include "worker/worker.h"

#define SWEEP_MS 2000u /* between sweeps unless kicked */

struct janitor {
  db_pool *db;
  s3_client *s3;
  songs *sg;
  worker *w;
};

static uint32_t sweep_step(void *arg);

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

void janitor_delete_songs_now(janitor *j, const int32_t *ids, size_t n, const char *request_id,
                              const trace_ctx *trace) {
  static const useconds_t waits[] = {0, 100000, 300000};
  for (int attempt = 0; attempt < 3; attempt++) {
    if (waits[attempt]) usleep(waits[attempt]);
    if (songs_delete(j->sg, ids, n, request_id, trace) == 0) {
      repo_forget_song_deletes(j->db, ids, n);
      return;
    }
  }
}

/* The queues' rows and their retry schedule are the repo's (resource_repo.c); these say
 * what finishing one means. */
static int delete_songs(void *ud, const int32_t *ids, size_t n) {
  janitor *j = ud;
  return songs_delete(j->sg, ids, n, NULL, NULL); /* later: the request's trace is over */
}

static int delete_object(void *ud, const char *bucket, const char *key, const char *upload_id) {
  janitor *j = ud;
  s3_error e = {0};
  int rc = upload_id ? s3_mpu_abort(j->s3, bucket, key, upload_id, &e) : s3_delete(j->s3, bucket, key, &e);
  return rc == S3_OK ? 0 : -1;
}

long janitor_pending(janitor *j) {
  long n;
  return repo_pending_deletes(j->db, &n) == DB_OK ? n : -1;
}

/* The thread's round (lib/worker): both sweeps, then a wait for a kick or SWEEP_MS. */
static uint32_t sweep_step(void *arg) {
  janitor *j = arg;
  repo_sweep_object_deletes(j->db, delete_object, j);
  repo_sweep_song_deletes(j->db, delete_songs, j);
  return SWEEP_MS;
}

int janitor_start(janitor *j) { return worker_start(j->w, 0) == WORKER_OK ? 0 : -1; }

void janitor_stop(janitor *j) {
  if (j) worker_stop(j->w);
}
