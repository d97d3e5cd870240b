/* pipeline: see pipeline.h. The retry loop of lib/retry drives each HTTP call (each window
 * of the resource is one); the ops below keep the last PEER_* code, outcome and reason in
 * their context so that a final answer (404, 409, 400) ends the loop as "no retry" while the
 * pipeline still sees what it was. */
#include "pipeline.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mp3/mp3.h"
#include "resreader.h"

typedef struct call_ctx {
  const proc_pipeline *pl;
  int32_t id;
  const char *request_id;
  const trace_ctx *trace;
  uint64_t *rng;
  const mp3_song *song; /* POST only */
  uint64_t offset;      /* GET only: the range asked for, where it goes, what came */
  size_t want, buf_cap;
  void *buf;
  peers_range got;
  int result;   /* PEER_OK or a negative PEER_ERR_* */
  bool created; /* POST, on PEER_OK: false when it was stored already (409) */
  char reason[256];
} call_ctx;

/* lib/retry's contract: 0 = success; negative = failure, retryable unless told otherwise. */
static int settle_op(call_ctx *cx, bool *retryable) {
  if (cx->result == PEER_ERR_TRANSIENT) return -1;
  if (cx->result == PEER_ERR_PERMANENT) {
    *retryable = false;
    return -1;
  }
  return 0;
}

static int get_op(void *ud, unsigned attempt, bool *retryable) {
  call_ctx *cx = ud;
  cx->result = peers_get_range(cx->pl->peers, cx->id, cx->request_id, cx->trace, cx->offset, cx->want, cx->buf,
                               cx->buf_cap, &cx->got, cx->reason, sizeof cx->reason);
  if (cx->result == PEER_ERR_TRANSIENT)
    log_event(cx->pl->lg, LOG_LEVEL_DEBUG, "resource fetch failed",
              "resource_id=%" PRId32 " offset=%" PRIu64 " try=%u reason=\"%s\"", cx->id, cx->offset, attempt,
              cx->reason);
  return settle_op(cx, retryable);
}

static int post_op(void *ud, unsigned attempt, bool *retryable) {
  call_ctx *cx = ud;
  cx->result = peers_post_song(cx->pl->peers, cx->id, cx->song, cx->request_id, cx->trace, &cx->created, cx->reason,
                               sizeof cx->reason);
  if (cx->result == PEER_ERR_TRANSIENT)
    log_event(cx->pl->lg, LOG_LEVEL_DEBUG, "song post failed", "resource_id=%" PRId32 " try=%u reason=\"%s\"", cx->id,
              attempt, cx->reason);
  return settle_op(cx, retryable);
}

static void call(const proc_pipeline *pl, retry_op_fn op, call_ctx *cx) {
  retry_hooks hooks = {.rng_state = cx->rng, .stop = pl->stop};
  cx->result = PEER_ERR_TRANSIENT;
  snprintf(cx->reason, sizeof cx->reason, "stopping");
  if (retry_run(&pl->call_retry, op, cx, &hooks, NULL) == RETRY_ERR_INVALID) {
    cx->result = PEER_ERR_TRANSIENT;
    snprintf(cx->reason, sizeof cx->reason, "invalid retry policy");
  }
}

static proc_outcome fail(proc_outcome o, char *reason, size_t cap, const char *text) {
  snprintf(reason, cap, "%s", text);
  return o;
}

/* resreader's fetch: one window by a ranged GET, retried in place like every call. */
static int fetch_window(void *ud, uint64_t offset, size_t want, void *buf, size_t buf_cap, resreader_chunk *chunk) {
  call_ctx *cx = ud;
  cx->offset = offset;
  cx->want = want;
  cx->buf = buf;
  cx->buf_cap = buf_cap;
  cx->got = (peers_range){0};
  call(cx->pl, get_op, cx);
  if (cx->result != PEER_OK) return -1;
  *chunk = (resreader_chunk){.found = cx->got.found, .got = cx->got.got, .total = cx->got.total};
  return 0;
}

/* The MP3 check (lib/mp3's incremental one) on the reader's tap; rc latches its verdict. */
typedef struct check_ctx {
  mp3_check chk;
  int rc;
} check_ctx;

static int check_tap(void *ud, const void *bytes, size_t len) {
  check_ctx *c = ud;
  c->rc = mp3_check_feed(&c->chk, bytes, len);
  return c->rc != MP3_OK;
}

/* Why the reader stopped, as an outcome: gone, the GET's own verdict, or a retry. */
static proc_outcome reader_failure(const resreader *rd, const call_ctx *get, char *reason, size_t cap) {
  switch (resreader_status(rd)) {
  case RESREADER_ERR_GONE: return fail(PROC_GONE, reason, cap, get->reason);
  case RESREADER_ERR_FETCH:
    return fail(get->result == PEER_ERR_PERMANENT ? PROC_POISON : PROC_RETRY, reason, cap, get->reason);
  case RESREADER_ERR_SHORT:
    snprintf(reason, cap, "GET resource: the bytes served at offset %" PRIu64 " do not fit the file's %" PRIu64,
             get->offset, resreader_size(rd));
    return PROC_RETRY;
  default: return fail(PROC_RETRY, reason, cap, "GET resource: read failed");
  }
}

/* The resource, read through the window -> the Song Service's six fields. The MP3 check
 * rides along the extraction's reads (the tap); what the scan did not read is fetched for
 * it afterwards. A file that is not an MP3 is reported as such before any extraction
 * error. Returns PROC_DONE, or the outcome with its reason. */
static proc_outcome extract(resreader *rd, call_ctx *get, mp3_song *song, char *reason, size_t cap) {
  check_ctx check = {.rc = MP3_OK};
  mp3_check_init(&check.chk);
  resreader_tap(rd, check_tap, &check);
  if (resreader_open(rd) != RESREADER_OK) return reader_failure(rd, get, reason, cap);
  mp3_meta meta;
  int rc = MP3_ENOTMP3;
  if (check.rc == MP3_OK) { /* the first window can settle it: then there is nothing to scan */
    mp3_source src = resreader_source(rd);
    rc = mp3_extract_source(&src, &meta);
    if (rc == MP3_ERR_IO || resreader_tap_rest(rd) != RESREADER_OK) return reader_failure(rd, get, reason, cap);
  }
  int verdict = check.rc == MP3_OK ? mp3_check_end(&check.chk) : check.rc;
  if (verdict != MP3_OK) {
    snprintf(reason, cap, "not an MP3: %s", mp3_strerror(verdict));
    return PROC_POISON;
  }
  if (rc == MP3_ERR_NOMEM) return fail(PROC_RETRY, reason, cap, "extract: out of memory");
  if (rc != MP3_OK) {
    snprintf(reason, cap, "extract: %s", mp3_strerror(rc));
    return PROC_POISON;
  }
  if (mp3_song_fields(&meta, song) != MP3_OK) return fail(PROC_POISON, reason, cap, "extract: no song fields");
  return PROC_DONE;
}

proc_outcome proc_handle(const proc_pipeline *pl, int32_t id, const char *request_id, const trace_ctx *trace,
                         uint64_t *rng_state, proc_publish_fn publish, void *publish_ud, char *reason,
                         size_t reason_cap) {
  call_ctx get = {.pl = pl, .id = id, .request_id = request_id, .trace = trace, .rng = rng_state};
  resreader *rd = NULL;
  if (resreader_new(pl->window_bytes, fetch_window, &get, &rd) != RESREADER_OK)
    return fail(PROC_RETRY, reason, reason_cap, "GET resource: out of memory for the window");
  mp3_song song;
  proc_outcome o = extract(rd, &get, &song, reason, reason_cap);
  log_event(pl->lg, LOG_LEVEL_DEBUG, "resource read",
            "resource_id=%" PRId32 " size=%" PRIu64 " fetched=%" PRIu64 " fetches=%u", id, resreader_size(rd),
            resreader_fetched_bytes(rd), resreader_fetches(rd));
  resreader_free(rd); /* the window is not needed past extraction */
  if (o != PROC_DONE) return o;

  call_ctx post = {.pl = pl, .id = id, .request_id = request_id, .trace = trace, .rng = rng_state, .song = &song};
  call(pl, post_op, &post);
  switch (post.result) {
  case PEER_OK: break;
  case PEER_ERR_PERMANENT: return fail(PROC_POISON, reason, reason_cap, post.reason);
  default: return fail(PROC_RETRY, reason, reason_cap, post.reason);
  }
  log_event(pl->lg, LOG_LEVEL_DEBUG, "metadata stored", "resource_id=%" PRId32 " song=%s", id,
            post.created ? "created" : "existing");

  char why[256] = "";
  if (publish(publish_ud, id, request_id, trace, why, sizeof why) != 0) {
    snprintf(reason, reason_cap, "publish processed: %s", why);
    return PROC_RETRY;
  }
  snprintf(reason, reason_cap, "ok");
  return PROC_DONE;
}
