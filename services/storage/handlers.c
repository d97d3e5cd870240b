/* handlers: see handlers.h. */
#include "handlers.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "health/health.h"
#include "s3/s3.h"
#include "storage.h"
#include "storage_render.h"

#define STORAGE_MAX_BODY (16 * 1024)

static void reply_db_error(http_req *r, int rc) {
  if (rc == DB_ERR_UNAVAILABLE || rc == DB_ERR_BUSY)
    http_reply_error(r, 503, "Service temporarily unavailable, please retry later");
  else
    http_reply_internal(r, db_strerror(rc));
}

/* The bucket could not be created: what the client may know of lib/s3's code (the keeper
 * has logged the details). */
static void reply_provision_error(http_req *r, int s3rc, const char *bucket) {
  if (s3rc == S3_ERR_UNAVAILABLE)
    http_reply_error(r, 503, "Object store temporarily unavailable, please retry later");
  else if (s3rc == S3_ERR_CONFLICT)
    http_reply_errorf(r, 409, "Bucket '%s' cannot be used: it belongs to someone else", bucket);
  else
    http_reply_internal(r, s3_strerror(s3rc));
}

static void post_storage(http_req *r, void *vctx) {
  storage_ctx *ctx = vctx;
  json_t *body = http_req_json(r);
  if (!body) return;
  storage s;
  json_t *errs = storage_validate(body, &s);
  if (errs) {
    http_reply_validation(r, errs);
  } else if (!s.type) { /* no memory for the verdict */
    http_reply_internal(r, "validation failed to allocate");
  } else {
    int32_t id = 0;
    int s3rc = 0;
    storage_outcome outcome = STORAGE_CREATED;
    int rc = storage_create(ctx->db, &s, ctx->max_count, keeper_provision, ctx->keeper, &outcome, &id, &s3rc);
    if (rc != STORAGE_OK)
      reply_db_error(r, rc);
    else if (outcome == STORAGE_CREATED)
      http_reply_json(r, 200, json_pack("{s:i}", "id", (json_int_t)id));
    else if (outcome == STORAGE_EXISTS)
      http_reply_errorf(r, 409, "Storage with bucket '%s' and path '%s' already exists", s.bucket, s.path);
    else if (outcome == STORAGE_FULL)
      http_reply_errorf(r, 409, "Storage limit reached: at most %ld storages are allowed", ctx->max_count);
    else
      reply_provision_error(r, s3rc, s.bucket); /* STORAGE_PROVISION */
  }
  json_decref(body);
}

static void get_storages(http_req *r, void *vctx) {
  storage_ctx *ctx = vctx;
  storage_row *rows;
  size_t n;
  int rc = storage_list(ctx->db, &rows, &n);
  json_t *out = rc == STORAGE_OK ? storage_render_list(rows, n) : NULL;
  free(rows);
  if (out)
    http_reply_json(r, 200, out);
  else
    reply_db_error(r, rc == STORAGE_OK ? DB_ERR_NOMEM : rc); /* rendering ran out of memory */
}

static int delete_rows(void *vctx, const int32_t *ids, size_t n, const char *request_id, const trace_ctx *trace,
                       int32_t *out, size_t *nout) {
  storage_ctx *ctx = vctx;
  (void)request_id, (void)trace;
  return storage_delete(ctx->db, ids, n, out, nout);
}

static void delete_storages(http_req *r, void *vctx) {
  static const svc_delete d = {delete_rows, reply_db_error};
  svc_delete_ids(r, vctx, &d);
}

/* objectStore: DOWN when unreachable or when buckets are missing (uploads to them would
 * fail), UNKNOWN before the buckets could be listed (database down since start). */
static void object_store_health(json_t *components, void *vctx) {
  storage_ctx *ctx = vctx;
  keeper_status st;
  keeper_status_get(ctx->keeper, &st);
  const char *kind = st.kind ? st.kind : "unknown";
  switch (st.store) {
  case KEEPER_STORE_UP:
    health_component(components, "objectStore", "UP",
                     json_pack("{s:s, s:I}", "kind", kind, "buckets", (json_int_t)st.buckets));
    break;
  case KEEPER_STORE_DOWN:
    health_component(components, "objectStore", "DOWN",
                     json_pack("{s:s, s:s, s:I}", "kind", kind, "error", "object store unreachable", "bucketsPending",
                               (json_int_t)st.missing));
    break;
  case KEEPER_STORE_PENDING:
    health_component(components, "objectStore", "DOWN",
                     json_pack("{s:s, s:s, s:I}", "kind", kind, "error", "buckets pending", "bucketsPending",
                               (json_int_t)st.missing));
    break;
  default: health_component(components, "objectStore", "UNKNOWN", json_pack("{s:s}", "kind", kind));
  }
}

/* health: the database, then the object store; metrics: the server's and the pool's (lib/svc). */
static svc_actuator *actuator(storage_ctx *ctx) {
  ctx->act = (svc_actuator){.srv = ctx->srv,
                            .life = ctx->life,
                            .db = ctx->db,
                            .pool_name = "storage",
                            .components = object_store_health,
                            .ctx = ctx};
  return &ctx->act;
}

int storage_routes(http_server *srv, storage_ctx *ctx, auth *a) {
  int rc = HTTP_OK;
  rc |= auth_route(srv, a, "POST", "/storages", JWT_SCOPE_ADMIN, post_storage, ctx, STORAGE_MAX_BODY);
  rc |= auth_route(srv, a, "GET", "/storages", JWT_SCOPE_READ, get_storages, ctx, 0);
  rc |= auth_route(srv, a, "DELETE", "/storages", JWT_SCOPE_ADMIN, delete_storages, ctx, 0);
  rc |= svc_actuator_routes(srv, actuator(ctx));
  return rc;
}

int storage_internal_routes(http_server *srv, storage_ctx *ctx) {
  int rc = HTTP_OK;
  rc |= http_server_route(srv, "GET", "/storages", get_storages, ctx, 0); /* the Resource Service */
  rc |= svc_actuator_internal_routes(srv, actuator(ctx));
  return rc;
}
