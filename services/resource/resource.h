/*
 * resource: the Resource Service's domain: MP3 files in the object store, their rows in
 * the service's database, and the moves between STAGING and PERMANENT storage.
 *
 * Invariants the code keeps:
 * - A row never points at a missing object: on upload the object is written before the
 *   row; on delete the row goes first and the object is deleted afterwards (recorded in
 *   pending_object_deletes in the same transaction, so a failed delete is retried later);
 *   on a move the copy is made, then the row switched, then the old object deleted.
 * - The "uploaded" message is written to the outbox in the same transaction as the row,
 *   so it is sent exactly when the upload happened, whenever the broker is back.
 * - The song metadata of a deleted resource is deleted through the Song Service (songs.c,
 *   called by the janitor: right away, then again for as long as it fails), or the id
 *   stays in pending_song_deletes until it is.
 * Nothing here knows HTTP; SQL lives in resource_repo.c (resource_repo.h).
 */
#ifndef FERMATA_RESOURCE_H
#define FERMATA_RESOURCE_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "httpc/httpc.h"
#include "log/log.h"
#include "resource_repo.h"
#include "s3/s3.h"
#include "storages.h"
#include "syncbar/syncbar.h"

typedef struct outbox outbox;
typedef struct janitor janitor;

/* Upload -> PERMANENT, observed when a move switches the row (resource_make_permanent):
 * count, sum and max of the seconds since the upload's row was written. */
typedef struct {
  pthread_mutex_t mu;
  uint64_t count;
  double sum_s, max_s;
} resource_lag;

typedef struct {
  log_sink *lg;
  db_pool *db;
  s3_client *s3;
  httpc *http;
  storages *st;
  outbox *ob;                 /* may be NULL (tests): then nobody is woken up */
  janitor *jn;                /* may be NULL likewise */
  syncbar *sync;              /* objects durable before rows name them (disabled for a remote store) */
  uint64_t single_max;        /* declared lengths up to this go in one streaming PUT */
  uint64_t part_bytes;        /* larger or chunked uploads go in multipart pieces of this size */
  uint64_t copy_single_max;   /* moves of objects over this copy in parts (UploadPartCopy) */
  long abandon_after_s;       /* a multipart upload still unfinished this long is aborted */
  resource_lag *lag;          /* may be NULL (tests) */
  const trace_tracer *tracer; /* spans of the object store calls; NULL = none */
} resource_svc;

enum {
  RES_OK = 0,
  RES_ERR_DB = -1,         /* database unavailable */
  RES_ERR_STORE = -2,      /* object store unavailable */
  RES_ERR_NO_STORAGE = -3, /* no storage of the needed type, live or fallback */
  RES_ERR_INTERNAL = -4,
  RES_ERR_STORE_FULL = -5, /* the object store is out of space */
  RES_ERR_NOT_FOUND = -6,  /* no resource with that id (never stored, or deleted) */
  RES_ERR_NOT_MP3 = -7,    /* the upload is not an MP3 file (the reason is mp3_strerror's) */
  RES_ERR_BODY = -8        /* the upload's body could not be read to its end (client gone, too large) */
};

/* ---- domain operations (resource.c) ---- */
/* The RES_ERR_* for a failed object store call (an s3_err). */
int resource_s3_err(int rc);
/* A CLIENT span for an object store call (remote "s3"), a child of trace; not valid when
 * trace is NULL or not valid or there is no tracer. End it with resource_s3_span_end. */
void resource_s3_span(const resource_svc *svc, trace_span *span, const trace_ctx *trace, const char *name,
                      const char *bucket);
/* Ends it; `rc` the call's s3_err (failed when not S3_OK). */
void resource_s3_span_end(const resource_svc *svc, trace_span *span, int rc);
/* The request body of an upload, as it arrives: up to cap bytes into buf; the count (> 0),
 * 0 at the end, or a negative value when it cannot be read to its end. */
typedef long (*resource_body_fn)(void *ud, void *buf, size_t cap);
/* Bytes of an upload read before anything else (resource_upload.c): a file this small is
 * checked whole before a byte goes to the store. */
#define RESOURCE_UPLOAD_HEAD (256 * 1024)
/* Stores an upload as it arrives (resource_upload.c): the body goes to the STAGING storage
 * in a streaming PUT, or in a multipart upload beyond svc->single_max (or chunked), hashed and checked
 * as an MP3 on the way; `length` is the declared length or -1 (chunked). On RES_OK *id is
 * the new resource's. RES_ERR_NOT_MP3 sets *why; RES_ERR_BODY: the body did not arrive
 * whole. Whatever fails, nothing stays in the store or the database. */
int resource_upload_stream(resource_svc *svc, resource_body_fn read, void *ud, int64_t length, const char *request_id,
                           const trace_ctx *trace, int32_t *id, const char **why);
/* The end of an upload whose object is in the store (resource.c): waits for the store's
 * disk, writes the row and the "uploaded" message (with the upload's traceparent, which
 * the relay publishes: `trace` may be NULL); on failure the object is deleted. */
int resource_commit_upload(resource_svc *svc, resource_row *r, const char *sha256, const char *request_id,
                           const trace_ctx *trace, int32_t *id);
/* Object key = storage path (without its slashes) + "/" + name; name NULL = a random one
 * (keys are generated, never a client's). 0, or -1 when it would not be a valid key. */
int resource_make_key(const char *path, const char *name, char *key, size_t cap);
/* Loads the row of resource id into *out. RES_OK, RES_ERR_NOT_FOUND or another RES_ERR_*. */
int resource_find(resource_svc *svc, int32_t id, resource_row *out);
/* Streams bytes [first, last] of the resource: a thread fetches from the object store into
 * a bounded buffer (RESOURCE_STREAM_BUFFER) that resource_stream_read drains, so a download
 * holds that much memory whatever the file's size. Open returns once the first bytes
 * arrived (or the fetch failed: then RES_ERR_NOT_FOUND or another RES_ERR_*, and nothing to close), so
 * errors before the first byte still become proper HTTP answers. A concurrent move to
 * PERMANENT is followed (the row is read again). */
#define RESOURCE_STREAM_BUFFER (256 * 1024)
typedef struct resource_stream resource_stream;
int resource_stream_open(resource_svc *svc, int32_t id, uint64_t first, uint64_t last, resource_stream **out);
/* Never blocks. Returns the count of bytes copied (> 0); 0 when none is there yet, after
 * which notify(arg) is called once (from the fetching thread) when some are or the fetch
 * ended; or -1 when the fetch failed midway or ended short (the HTTP layer then closes the
 * connection). */
long resource_stream_read(resource_stream *st, char *buf, size_t max, void (*notify)(void *), void *arg);
/* Stops the fetch if still running and frees; NULL ok. */
void resource_stream_close(resource_stream *st);

/* Deletes the given ids; the ones that existed go to `out` (room for n; may be `ids`) in
 * the order given, *nout their count. */
int resource_delete(resource_svc *svc, const int32_t *ids, size_t n, const char *request_id, const trace_ctx *trace,
                    int32_t *out, size_t *nout);
/* Applies a "processed" message: moves the object to PERMANENT storage. Idempotent.
 * RES_OK, RES_ERR_NOT_FOUND (the resource was deleted) or another RES_ERR_*. */
int resource_make_permanent(resource_svc *svc, int32_t id, const char *request_id, const trace_ctx *trace);

#endif
