/* resource: see resource.h for the invariants. */
#include "resource.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "janitor.h"
#include "outbox.h"

/* Object key = storage path (without its slashes) + "/" + name. The name is generated
 * here (never taken from a client) so keys are always URL-safe. */
int resource_make_key(const char *path, const char *name, char *key, size_t cap) {
  char gen[40];
  if (!name) {
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd) return -1;
    for (int i = 0; i < 16; i++) snprintf(gen + 2 * i, 3, "%02x", rnd[i]);
    snprintf(gen + 32, sizeof gen - 32, ".mp3");
    name = gen;
  }
  while (*path == '/') path++;
  size_t plen = strlen(path);
  while (plen && path[plen - 1] == '/') plen--;
  int n = plen ? snprintf(key, cap, "%.*s/%s", (int)plen, path, name) : snprintf(key, cap, "%s", name);
  if (n < 0 || (size_t)n >= cap || !s3_valid_key(key)) return -1;
  return 0;
}

static int db_to_res(int rc) { return rc == DB_ERR_UNAVAILABLE || rc == DB_ERR_BUSY ? RES_ERR_DB : RES_ERR_INTERNAL; }

/* A store that is down, denies us, or refuses an operation on keys we generated (a
 * read-only or full disk answers 409 or 5xx) is a dependency failure: 503, retry later. */
int resource_s3_err(int rc) {
  if (rc == S3_ERR_NO_SPACE) return RES_ERR_STORE_FULL;
  return rc == S3_ERR_UNAVAILABLE || rc == S3_ERR_NOT_FOUND || rc == S3_ERR_DENIED || rc == S3_ERR_CONFLICT
             ? RES_ERR_STORE
             : RES_ERR_INTERNAL;
}

/* Waits until what the store wrote is on its disk (lib/syncbar; a no-op for a remote store). */
static int store_durable(resource_svc *svc) {
  if (svc->sync == NULL) return RES_OK;
  int rc = syncbar_wait(svc->sync);
  if (rc == 0) return RES_OK;
  log_event(svc->lg, LOG_LEVEL_ERROR, "object store's disk did not confirm the write", "errno=%d", -rc);
  return RES_ERR_STORE;
}

static int s3_to_res(resource_svc *svc, int rc, const s3_error *e, const char *what) {
  char q[400];
  log_event(svc->lg, LOG_LEVEL_WARN, what, "error=%s detail=%s", s3_strerror(rc), log_quote(q, sizeof q, e->message));
  return resource_s3_err(rc);
}

void resource_s3_span(const resource_svc *svc, trace_span *span, const trace_ctx *trace, const char *name,
                      const char *bucket) {
  trace_span_start(trace && trace->valid ? svc->tracer : NULL, span, trace, name, TRACE_KIND_CLIENT);
  trace_span_remote(span, "s3", NULL, 0);
  trace_span_tag(span, "aws.s3.bucket", bucket);
}

void resource_s3_span_end(const resource_svc *svc, trace_span *span, int rc) {
  if (rc != S3_OK) trace_span_fail(span, s3_strerror(rc));
  trace_span_end(svc->tracer, span);
}

int resource_commit_upload(resource_svc *svc, resource_row *r, const char *sha256, const char *request_id,
                           const trace_ctx *trace, int32_t *id) {
  s3_error e = {0};
  int rc = store_durable(svc);
  if (rc != RES_OK) {
    s3_delete(svc->s3, r->bucket, r->key, &e);
    return rc;
  }
  char tp[TRACEPARENT_LEN + 1] = "";
  if (trace) trace_format_traceparent(trace, tp, sizeof tp); /* "" when not valid */
  rc = repo_insert_with_outbox(svc->db, r, sha256, request_id, tp[0] ? tp : NULL, id);
  if (rc != DB_OK) {
    /* no row will point at it: remove the object, or leave it for the janitor's sweep */
    if (s3_delete(svc->s3, r->bucket, r->key, &e) != S3_OK)
      log_event(svc->lg, LOG_LEVEL_WARN, "orphan object after failed insert", "bucket=%s key=%s", r->bucket, r->key);
    return db_to_res(rc);
  }
  if (svc->ob) outbox_kick(svc->ob);
  char tf[TRACE_LOG_FIELD];
  log_event(svc->lg, LOG_LEVEL_INFO, "resource stored", "id=%d state=STAGING bucket=%s size=%llu request_id=%s%s", *id,
            r->bucket, (unsigned long long)r->size, request_id ? request_id : "-", trace_log_field(trace, tf));
  return RES_OK;
}

int resource_find(resource_svc *svc, int32_t id, resource_row *out) {
  bool found = false;
  int rc = repo_find(svc->db, id, out, &found);
  if (rc != DB_OK) return db_to_res(rc);
  return found ? RES_OK : RES_ERR_NOT_FOUND;
}

int resource_delete(resource_svc *svc, const int32_t *ids, size_t n, const char *request_id, const trace_ctx *trace,
                    int32_t *out, size_t *nout) {
  *nout = 0;
  int rc = n ? repo_delete(svc->db, ids, n, out, nout) : DB_OK; /* in request order */
  if (rc != DB_OK) return db_to_res(rc);
  if (*nout) {
    /* the synchronous call, retried a little; the janitor retries for as long as it takes */
    if (svc->jn) janitor_delete_songs_now(svc->jn, out, *nout, request_id, trace);
    if (svc->jn) janitor_kick(svc->jn);
    char tf[TRACE_LOG_FIELD];
    log_event(svc->lg, LOG_LEVEL_INFO, "resources deleted", "count=%zu request_id=%s%s", *nout,
              request_id ? request_id : "-", trace_log_field(trace, tf));
  }
  return RES_OK;
}

static const char *basename_of(const char *key) {
  const char *slash = strrchr(key, '/');
  return slash ? slash + 1 : key;
}

int resource_make_permanent(resource_svc *svc, int32_t id, const char *request_id, const trace_ctx *trace) {
  resource_row row;
  int rc = resource_find(svc, id, &row);
  if (rc != RES_OK) return rc;
  if (strcmp(row.state, "PERMANENT") == 0) return RES_OK; /* applied before: nothing to do */
  storage_loc to;
  if (storages_pick(svc->st, "PERMANENT", request_id, trace, &to, NULL) != 0) return RES_ERR_NO_STORAGE;
  char new_key[512];
  if (resource_make_key(to.path, basename_of(row.key), new_key, sizeof new_key) != 0) return RES_ERR_INTERNAL;
  bool same_place = strcmp(to.bucket, row.bucket) == 0 && strcmp(new_key, row.key) == 0;
  s3_error e = {0};
  if (!same_place) {
    trace_span span;
    resource_s3_span(svc, &span, trace, "s3 copy", to.bucket);
    rc = s3_copy_sized(svc->s3, row.bucket, row.key, to.bucket, new_key, row.size, svc->copy_single_max,
                       svc->part_bytes, &e);
    resource_s3_span_end(svc, &span, rc);
    if (rc == S3_ERR_NOT_FOUND) {
      /* the staging object is gone: the resource was deleted or moved meanwhile */
      resource_row again;
      int frc = resource_find(svc, id, &again);
      if (frc == RES_ERR_NOT_FOUND || (frc == RES_OK && strcmp(again.state, "PERMANENT") == 0)) return frc;
    }
    if (rc != S3_OK) return s3_to_res(svc, rc, &e, "copy to permanent storage failed");
    if ((rc = store_durable(svc)) != RES_OK) return rc; /* the copy on disk before the row moves */
  }
  int switched = 0;
  double lag_s = 0;
  rc = repo_make_permanent(svc->db, id, row.key, &to, new_key, &switched, &lag_s);
  if (rc != DB_OK) return db_to_res(rc);
  if (switched && svc->lag) {
    pthread_mutex_lock(&svc->lag->mu);
    svc->lag->count++;
    svc->lag->sum_s += lag_s;
    if (lag_s > svc->lag->max_s) svc->lag->max_s = lag_s;
    pthread_mutex_unlock(&svc->lag->mu);
  }
  if (!switched) {
    /* deleted or moved by someone else meanwhile: our copy is not referenced */
    resource_row now;
    if (!same_place && !(resource_find(svc, id, &now) == RES_OK && strcmp(now.key, new_key) == 0 &&
                         strcmp(now.bucket, to.bucket) == 0))
      s3_delete(svc->s3, to.bucket, new_key, &e);
    return RES_OK;
  }
  if (!same_place && s3_delete(svc->s3, row.bucket, row.key, &e) != S3_OK) {
    if (repo_pending_object_delete(svc->db, row.bucket, row.key, NULL) != DB_OK)
      log_event(svc->lg, LOG_LEVEL_WARN, "orphan staging object", "bucket=%s key=%s", row.bucket, row.key);
    if (svc->jn) janitor_kick(svc->jn);
  }
  char tf[TRACE_LOG_FIELD];
  log_event(svc->lg, LOG_LEVEL_INFO, "resource moved", "id=%d state=PERMANENT bucket=%s request_id=%s%s", id, to.bucket,
            request_id ? request_id : "-", trace_log_field(trace, tf));
  return RES_OK;
}
