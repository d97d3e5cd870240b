/*
 * resource_stream: downloads without holding the file in memory. See resource.h.
 *
 * The object store client pushes bytes (a write callback inside s3_get) while the HTTP
 * server pulls them (a reader callback per response chunk). A producer thread runs s3_get
 * and copies into a ring buffer; the HTTP reader takes from it. Both sides block on one
 * condition variable while the ring is full (that is the backpressure that keeps memory
 * bounded for slow clients). The reader never blocks (it runs on an HTTP event loop): on an
 * empty ring it leaves a callback the producer calls with the next bytes. Closing sets
 * `aborted`, which makes the producer's next write ask s3_get to stop, then joins it.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "resource.h"

struct resource_stream {
  resource_svc *svc;
  int32_t id;
  uint64_t first, last, total, delivered;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *ring;
  size_t cap, head, len; /* bytes [head, head+len) modulo cap are waiting */
  bool started, finished, aborted;
  int err;                /* RES_OK, or why the fetch ended badly */
  void (*notify)(void *); /* set while the reader waits for bytes: called once, under mu */
  void *notify_arg;
};

/* Tells a waiting reader that bytes (or the end) came. Caller holds mu. */
static void notify_reader(resource_stream *st) {
  void (*fn)(void *) = st->notify;
  st->notify = NULL;
  if (fn) fn(st->notify_arg);
}

static int on_bytes(void *ud, const void *data, size_t n) {
  resource_stream *st = ud;
  const char *p = data;
  pthread_mutex_lock(&st->mu);
  while (n > 0) {
    while (st->len == st->cap && !st->aborted) pthread_cond_wait(&st->cv, &st->mu);
    if (st->aborted) {
      pthread_mutex_unlock(&st->mu);
      return 1; /* stop the transfer */
    }
    size_t tail = (st->head + st->len) % st->cap;
    size_t room = st->cap - st->len;
    size_t chunk = n < room ? n : room;
    if (chunk > st->cap - tail) chunk = st->cap - tail; /* up to the end of the ring */
    memcpy(st->ring + tail, p, chunk);
    st->len += chunk;
    p += chunk;
    n -= chunk;
    st->started = true;
    pthread_cond_broadcast(&st->cv);
    notify_reader(st);
  }
  pthread_mutex_unlock(&st->mu);
  return 0;
}

static void *producer(void *arg) {
  resource_stream *st = arg;
  int err = RES_ERR_STORE;
  resource_row prev = {0}; /* where the previous attempt found no object */
  for (int attempt = 0; attempt < 3; attempt++) {
    resource_row row;
    int rc = resource_find(st->svc, st->id, &row);
    if (rc != RES_OK) {
      err = rc;
      break;
    }
    if (st->last >= row.size) {
      err = RES_ERR_INTERNAL; /* the row changed size under us: cannot happen for one id */
      break;
    }
    s3_range range = {.kind = S3_RANGE_FROM_TO, .first = st->first, .last = st->last};
    s3_error e = {0};
    rc = s3_get(st->svc->s3, row.bucket, row.key, &range, on_bytes, st, NULL, &e);
    if (rc == S3_OK) {
      err = RES_OK;
      break;
    }
    pthread_mutex_lock(&st->mu);
    bool started = st->started, aborted = st->aborted;
    pthread_mutex_unlock(&st->mu);
    if (aborted) break;
    if (rc == S3_ERR_NOT_FOUND && !started) {
      if (strcmp(prev.bucket, row.bucket) != 0 || strcmp(prev.key, row.key) != 0) {
        prev = row; /* moved to PERMANENT meanwhile? read the row again */
        continue;
      }
      /* the store is up and says twice that the object the row names is not there: lost,
       * not in transit. "Retry later" would never come true, so 500, and loudly. */
      log_event(st->svc->lg, LOG_LEVEL_ERROR, "object missing from the object store", "id=%d bucket=%s key=%s state=%s",
                st->id, row.bucket, row.key, row.state);
      err = RES_ERR_INTERNAL;
      break;
    }
    char q[400];
    log_event(st->svc->lg, LOG_LEVEL_WARN, "download from object store failed", "id=%d error=%s detail=%s", st->id,
              s3_strerror(rc), log_quote(q, sizeof q, e.message));
    err = resource_s3_err(rc);
    break;
  }
  pthread_mutex_lock(&st->mu);
  st->err = err;
  st->finished = true;
  pthread_cond_broadcast(&st->cv);
  notify_reader(st);
  pthread_mutex_unlock(&st->mu);
  return NULL;
}

static void stream_free(resource_stream *st) {
  pthread_mutex_destroy(&st->mu);
  pthread_cond_destroy(&st->cv);
  free(st->ring);
  free(st);
}

int resource_stream_open(resource_svc *svc, int32_t id, uint64_t first, uint64_t last, resource_stream **out) {
  *out = NULL;
  resource_stream *st = calloc(1, sizeof *st);
  if (!st) return RES_ERR_INTERNAL;
  st->svc = svc;
  st->id = id;
  st->first = first;
  st->last = last;
  st->total = last - first + 1;
  st->cap = st->total < RESOURCE_STREAM_BUFFER ? (size_t)st->total : RESOURCE_STREAM_BUFFER;
  st->ring = malloc(st->cap);
  pthread_mutex_init(&st->mu, NULL);
  pthread_cond_init(&st->cv, NULL);
  if (!st->ring || pthread_create(&st->thread, NULL, producer, st) != 0) {
    stream_free(st);
    return RES_ERR_INTERNAL;
  }
  pthread_mutex_lock(&st->mu);
  while (!st->started && !st->finished) pthread_cond_wait(&st->cv, &st->mu);
  bool failed_early = !st->started && st->finished;
  int err = st->err;
  pthread_mutex_unlock(&st->mu);
  if (failed_early) {
    pthread_join(st->thread, NULL);
    stream_free(st);
    return err == RES_OK ? RES_ERR_INTERNAL : err; /* OK with no byte: the object was empty */
  }
  *out = st;
  return RES_OK;
}

long resource_stream_read(resource_stream *st, char *buf, size_t max, void (*notify)(void *), void *arg) {
  pthread_mutex_lock(&st->mu);
  long n = -1;
  if (st->len > 0) {
    size_t chunk = st->len < max ? st->len : max;
    if (chunk > st->cap - st->head) chunk = st->cap - st->head;
    memcpy(buf, st->ring + st->head, chunk);
    st->head = (st->head + chunk) % st->cap;
    st->len -= chunk;
    st->delivered += chunk;
    n = (long)chunk;
    pthread_cond_broadcast(&st->cv);
  } else if (!st->finished) {
    st->notify = notify; /* nothing yet: the producer calls it with the next bytes */
    st->notify_arg = arg;
    n = 0;
  } else if (st->err == RES_OK && st->delivered == st->total) {
    n = -1; /* nothing left: the HTTP layer never asks past the announced size */
  }
  pthread_mutex_unlock(&st->mu);
  return n;
}

void resource_stream_close(resource_stream *st) {
  if (!st) return;
  pthread_mutex_lock(&st->mu);
  st->aborted = true;
  st->notify = NULL; /* the reader is gone: nobody to wake */
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
  pthread_join(st->thread, NULL);
  stream_free(st);
}
