/* handlers: see handlers.h. */
#include "handlers.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ids/ids.h"
#include "song.h"
#include "song_render.h"
#include "svc/svc.h"

#define SONG_MAX_BODY (64 * 1024)

void song_reply_db_error(http_req *r, int rc) {
  if (rc == DB_ERR_UNAVAILABLE || rc == DB_ERR_BUSY)
    http_reply_error(r, 503, "Service temporarily unavailable, please retry later");
  else
    http_reply_internal(r, db_strerror(rc));
}

static void post_song(http_req *r, void *vctx) {
  song_ctx *ctx = vctx;
  json_t *body = http_req_json(r);
  if (!body) return;
  song s;
  json_t *errs = song_validate(body, &s);
  if (errs) {
    http_reply_validation(r, errs);
    json_decref(body);
    return;
  }
  bool created = false;
  int rc = song_create(ctx->db, &s, &created);
  if (rc != SONG_OK)
    song_reply_db_error(r, rc);
  else if (created)
    http_reply_json(r, 200, json_pack("{s:i}", "id", (json_int_t)s.id));
  else
    http_reply_errorf(r, 409, "Metadata for resource ID=%d already exists", s.id);
  json_decref(body);
}

static void get_song(http_req *r, void *vctx) {
  song_ctx *ctx = vctx;
  const char *raw = http_req_param(r, "id");
  int32_t id;
  if (ids_parse(raw, &id) != 0) {
    http_reply_errorf(r, 400, IDS_INVALID_FORMAT, raw ? raw : "");
    return;
  }
  song_row row;
  bool found = false;
  int rc = song_get(ctx->db, id, &row, &found);
  json_t *out = rc == SONG_OK && found ? song_render(&row) : NULL;
  if (out)
    http_reply_json(r, 200, out);
  else if (rc != SONG_OK)
    song_reply_db_error(r, rc);
  else if (!found)
    http_reply_errorf(r, 404, "Song metadata for ID=%d not found", id);
  else
    song_reply_db_error(r, DB_ERR_NOMEM); /* rendering ran out of memory */
}

static int delete_rows(void *vctx, const int32_t *ids, size_t n, const char *request_id, const trace_ctx *trace,
                       int32_t *out, size_t *nout) {
  song_ctx *ctx = vctx;
  (void)request_id, (void)trace;
  return song_delete(ctx->db, ids, n, out, nout);
}

static void delete_songs(http_req *r, void *vctx) {
  static const svc_delete d = {delete_rows, song_reply_db_error};
  svc_delete_ids(r, vctx, &d);
}

/* health: the database alone; metrics: the server's and the pool's (lib/svc). */
static svc_actuator *actuator(song_ctx *ctx) {
  ctx->act = (svc_actuator){.srv = ctx->srv, .life = ctx->life, .db = ctx->db, .pool_name = "song"};
  return &ctx->act;
}

int song_routes(http_server *srv, song_ctx *ctx, auth *a) {
  int rc = HTTP_OK;
  rc |= auth_route(srv, a, "POST", "/songs", JWT_SCOPE_WRITE, post_song, ctx, SONG_MAX_BODY);
  rc |= auth_route(srv, a, "DELETE", "/songs", JWT_SCOPE_WRITE, delete_songs, ctx, 0);
  rc |= auth_route(srv, a, "GET", "/songs/{id}", JWT_SCOPE_READ, get_song, ctx, 0);
  rc |= svc_actuator_routes(srv, actuator(ctx));
  return rc;
}

int song_internal_routes(http_server *srv, song_ctx *ctx) {
  int rc = HTTP_OK;
  rc |= http_server_route(srv, "POST", "/songs", post_song, ctx, SONG_MAX_BODY); /* the processor */
  rc |= http_server_route(srv, "DELETE", "/songs", delete_songs, ctx, 0);        /* the Resource Service */
  rc |= svc_actuator_internal_routes(srv, actuator(ctx));
  return rc;
}
