/* pipeline: see pipeline.h. The retry loop of lib/retry drives each HTTP call; the ops
 * below keep the last PEER_* code, outcome and reason in their context so that a final answer
 * (404, 409, 400) ends the loop as "no retry" while the pipeline still sees what it was. */
#include "pipeline.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mp3/mp3.h"

typedef struct call_ctx {
  const proc_pipeline *pl;
  int32_t id;
  const char *request_id;
  const mp3_song *song; /* POST only */
  httpc_response resp;  /* GET only: the bytes on PEER_OK when found */
  int result;           /* PEER_OK or a negative PEER_ERR_* */
  bool found;           /* GET, on PEER_OK: false when the resource was deleted (404) */
  bool created;         /* POST, on PEER_OK: false when it was stored already (409) */
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
  cx->result =
      peers_get_resource(cx->pl->peers, cx->id, cx->request_id, &cx->resp, &cx->found, cx->reason, sizeof cx->reason);
  if (cx->result == PEER_ERR_TRANSIENT)
    log_event(cx->pl->lg, LOG_LEVEL_DEBUG, "resource fetch failed", "resource_id=%" PRId32 " try=%u reason=\"%s\"",
              cx->id, attempt, cx->reason);
  return settle_op(cx, retryable);
}

static int post_op(void *ud, unsigned attempt, bool *retryable) {
  call_ctx *cx = ud;
  cx->result =
      peers_post_song(cx->pl->peers, cx->id, cx->song, cx->request_id, &cx->created, cx->reason, sizeof cx->reason);
  if (cx->result == PEER_ERR_TRANSIENT)
    log_event(cx->pl->lg, LOG_LEVEL_DEBUG, "song post failed", "resource_id=%" PRId32 " try=%u reason=\"%s\"", cx->id,
              attempt, cx->reason);
  return settle_op(cx, retryable);
}

static void call(const proc_pipeline *pl, retry_op_fn op, call_ctx *cx, uint64_t *rng) {
  retry_hooks hooks = {.rng_state = rng, .stop = pl->stop};
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

/* Bytes -> the Song Service's six fields. Returns PROC_DONE or PROC_POISON. */
static proc_outcome extract(const httpc_response *resp, mp3_song *song, char *reason, size_t cap) {
  const uint8_t *buf = (const uint8_t *)resp->body;
  const char *why = NULL;
  if (mp3_validate(buf, buf ? resp->body_len : 0, &why) != MP3_OK) {
    snprintf(reason, cap, "not an MP3: %s", why);
    return PROC_POISON;
  }
  mp3_meta meta;
  int rc = mp3_extract(buf, resp->body_len, &meta);
  if (rc == MP3_ERR_NOMEM) return fail(PROC_RETRY, reason, cap, "extract: out of memory");
  if (rc != MP3_OK) {
    snprintf(reason, cap, "extract: %s", mp3_strerror(rc));
    return PROC_POISON;
  }
  if (mp3_song_fields(&meta, song) != MP3_OK) return fail(PROC_POISON, reason, cap, "extract: no song fields");
  return PROC_DONE;
}

proc_outcome proc_handle(const proc_pipeline *pl, int32_t id, const char *request_id, uint64_t *rng_state,
                         proc_publish_fn publish, void *publish_ud, char *reason, size_t reason_cap) {
  call_ctx get = {.pl = pl, .id = id, .request_id = request_id};
  call(pl, get_op, &get, rng_state);
  switch (get.result) {
  case PEER_OK: break;
  case PEER_ERR_PERMANENT: return fail(PROC_POISON, reason, reason_cap, get.reason);
  default: return fail(PROC_RETRY, reason, reason_cap, get.reason);
  }
  if (!get.found) return fail(PROC_GONE, reason, reason_cap, get.reason);

  mp3_song song;
  proc_outcome o = extract(&get.resp, &song, reason, reason_cap);
  httpc_response_free(&get.resp); /* the bytes are not needed past extraction */
  if (o != PROC_DONE) return o;

  call_ctx post = {.pl = pl, .id = id, .request_id = request_id, .song = &song};
  call(pl, post_op, &post, rng_state);
  switch (post.result) {
  case PEER_OK: break;
  case PEER_ERR_PERMANENT: return fail(PROC_POISON, reason, reason_cap, post.reason);
  default: return fail(PROC_RETRY, reason, reason_cap, post.reason);
  }
  log_event(pl->lg, LOG_LEVEL_DEBUG, "metadata stored", "resource_id=%" PRId32 " song=%s", id,
            post.created ? "created" : "existing");

  char why[256] = "";
  if (publish(publish_ud, id, request_id, why, sizeof why) != 0) {
    snprintf(reason, reason_cap, "publish processed: %s", why);
    return PROC_RETRY;
  }
  snprintf(reason, reason_cap, "ok");
  return PROC_DONE;
}
