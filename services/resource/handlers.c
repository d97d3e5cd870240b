/* handlers: see handlers.h. */
#include "handlers.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "health/health.h"
#include "ids/ids.h"
#include "range/range.h"

static void reply_failure(http_req *r, int rc) {
  switch (rc) {
  case RES_ERR_DB: http_reply_error(r, 503, "Service temporarily unavailable, please retry later"); break;
  case RES_ERR_STORE: http_reply_error(r, 503, "File storage is temporarily unavailable, please retry later"); break;
  case RES_ERR_STORE_FULL: http_reply_error(r, 507, "File storage is full, please retry later"); break;
  case RES_ERR_NO_STORAGE: http_reply_error(r, 503, "No storage is available for the file, please retry later"); break;
  default: http_reply_internal(r, "resource operation failed"); break;
  }
}

/* The media type of a Content-Type value, without parameters, is audio/mpeg. */
static bool is_mpeg(const char *ct) {
  if (!ct) return false;
  while (*ct == ' ') ct++;
  size_t n = strcspn(ct, ";");
  while (n && ct[n - 1] == ' ') n--;
  return n == 10 && strncasecmp(ct, "audio/mpeg", 10) == 0;
}

static long body_read(void *req, void *buf, size_t cap) { return http_req_read(req, buf, cap); }

/* The body streams to the object store as it arrives (resource_upload_stream). */
static void post_resource(http_req *r, void *vctx) {
  resource_http *ctx = vctx;
  const char *ct = http_req_header(r, "Content-Type");
  if (!is_mpeg(ct)) {
    http_reply_errorf(r, 400, "Invalid file format: %s. Only MP3 files are allowed", ct ? ct : "null");
    return;
  }
  int32_t id;
  const char *why = NULL;
  trace_ctx trace;
  http_req_trace(r, &trace);
  int rc =
      resource_upload_stream(ctx->svc, body_read, r, http_req_content_length(r), http_req_id(r), &trace, &id, &why);
  if (rc == RES_ERR_NOT_MP3) {
    http_reply_errorf(r, 400, "Invalid MP3 file: %s", why);
    return;
  }
  if (rc == RES_ERR_BODY) { /* the client went away (or passed the cap: lib/http answers 413) */
    http_reply_error(r, 400, "The upload did not arrive whole");
    return;
  }
  if (rc != RES_OK) {
    reply_failure(r, rc);
    return;
  }
  http_reply_json(r, 200, json_pack("{s:i}", "id", (json_int_t)id));
}

static void stream_wake(void *wake) { http_wake_up(wake); }

static long stream_reader(void *ctx, uint64_t pos, char *buf, size_t max, http_wake *wake) {
  (void)pos; /* sequential: the HTTP layer reads in order */
  long n = resource_stream_read(ctx, buf, max, stream_wake, wake);
  return n == 0 ? HTTP_READ_WAIT : n;
}

static void stream_done(void *ctx) { resource_stream_close(ctx); }

static void get_resource(http_req *r, void *vctx) {
  resource_http *ctx = vctx;
  const char *raw = http_req_param(r, "id");
  int32_t id;
  if (ids_parse(raw, &id) != 0) {
    http_reply_errorf(r, 400, IDS_INVALID_FORMAT, raw ? raw : "");
    return;
  }
  resource_row row;
  int rc = resource_find(ctx->svc, id, &row);
  if (rc == RES_ERR_NOT_FOUND) {
    http_reply_errorf(r, 404, "Resource with ID=%d not found", id);
    return;
  }
  if (rc != RES_OK) {
    reply_failure(r, rc);
    return;
  }
  uint64_t first = 0, last = row.size - 1;
  range_result rr = range_parse(http_req_header(r, "Range"), row.size, &first, &last);
  char cr[96];
  if (rr == RANGE_UNSATISFIABLE) {
    snprintf(cr, sizeof cr, "bytes */%" PRIu64, row.size);
    http_reply_header(r, "Content-Range", cr);
    http_reply_errorf(r, 416, "Requested range not satisfiable: the file has %" PRIu64 " bytes", row.size);
    return;
  }
  resource_stream *st;
  rc = resource_stream_open(ctx->svc, id, first, last, &st);
  if (rc == RES_ERR_NOT_FOUND) {
    http_reply_errorf(r, 404, "Resource with ID=%d not found", id);
    return;
  }
  if (rc != RES_OK) {
    reply_failure(r, rc);
    return;
  }
  http_reply_header(r, "Accept-Ranges", "bytes");
  if (rr == RANGE_PARTIAL) {
    snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, row.size);
    http_reply_header(r, "Content-Range", cr);
  }
  http_reply_stream(r, rr == RANGE_PARTIAL ? 206 : 200, "audio/mpeg", last - first + 1, stream_reader, st, stream_done);
}

static int delete_rows(void *vctx, const int32_t *ids, size_t n, const char *request_id, const trace_ctx *trace,
                       int32_t *out, size_t *nout) {
  resource_http *ctx = vctx;
  return resource_delete(ctx->svc, ids, n, request_id, trace, out, nout);
}

static void delete_resources(http_req *r, void *vctx) {
  static const svc_delete d = {delete_rows, reply_failure};
  svc_delete_ids(r, vctx, &d);
}

/* objectStore: UP when the store answers, the STAGING bucket is there and takes a write
 * (lib/s3probe); DOWN with the reason otherwise. Details name the kind of store. */
static void health_object_store(json_t *components, s3probe *probe) {
  s3probe_result pr;
  s3probe_check(probe, &pr);
  json_t *d = json_pack("{s:s}", "kind", pr.kind);
  if (!pr.up && d) {
    json_object_set_new(d, "error", json_string(pr.reason));
    if (pr.http_status) json_object_set_new(d, "status", json_integer(pr.http_status));
    if (pr.s3_code[0]) json_object_set_new(d, "code", json_string(pr.s3_code));
  }
  health_component(components, "objectStore", pr.up ? "UP" : "DOWN", d);
}

/* health's components after the database's (lib/svc): the object store, the broker, the
 * circuit breakers. */
static void health_parts(json_t *c, void *vctx) {
  resource_http *ctx = vctx;
  health_object_store(c, ctx->store_probe);
  bool broker = outbox_broker_ok(ctx->svc->ob) && (!ctx->consumer || mq_consumer_connected(ctx->consumer));
  health_component(c, "broker", broker ? "UP" : "DOWN",
                   json_pack("{s:I}", "published", (json_int_t)outbox_published(ctx->svc->ob)));
  actuator_health_component(c, &ctx->breakers);
}

/* The durability barrier's syncs (lib/syncbar): how often uploads waited for the disk. */
static char *sync_metrics(resource_svc *svc) {
  char *t = NULL;
  if (asprintf(&t,
               "# HELP fermata_store_syncs_total Syncs of the object store's filesystem before rows named new objects\n"
               "# TYPE fermata_store_syncs_total counter\n"
               "fermata_store_syncs_total %llu\n",
               svc->sync ? (unsigned long long)syncbar_count(svc->sync) : 0ULL) < 0)
    return NULL;
  return t;
}

/* The upload pipeline: how long uploads took to reach PERMANENT (observed by this
 * instance's moves), and the outbox rows not yet published (read at each scrape; -1 when
 * the database does not answer). */
static char *pipeline_metrics(resource_svc *svc) {
  uint64_t count = 0;
  double sum = 0, max = 0;
  if (svc->lag) {
    pthread_mutex_lock(&svc->lag->mu);
    count = svc->lag->count;
    sum = svc->lag->sum_s;
    max = svc->lag->max_s;
    pthread_mutex_unlock(&svc->lag->mu);
  }
  long pending = -1;
  if (repo_outbox_pending(svc->db, &pending) != DB_OK) pending = -1;
  char *t = NULL;
  if (asprintf(&t,
               "# HELP fermata_pipeline_lag_seconds Time from an upload's commit to its move to PERMANENT\n"
               "# TYPE fermata_pipeline_lag_seconds summary\n"
               "fermata_pipeline_lag_seconds_count %llu\n"
               "fermata_pipeline_lag_seconds_sum %.6f\n"
               "# HELP fermata_pipeline_lag_seconds_max Longest upload-to-PERMANENT time seen\n"
               "# TYPE fermata_pipeline_lag_seconds_max gauge\n"
               "fermata_pipeline_lag_seconds_max %.6f\n"
               "# HELP fermata_outbox_pending Messages written with their uploads and not yet confirmed by the broker\n"
               "# TYPE fermata_outbox_pending gauge\n"
               "fermata_outbox_pending %ld\n",
               (unsigned long long)count, sum, max, pending) < 0)
    return NULL;
  return t;
}

/* Metrics after the server's and the pool's (lib/svc): the breakers', the syncs, the pipeline. */
static char *metrics(void *vctx) {
  resource_http *ctx = vctx;
  return http_metrics_join(http_metrics_join(actuator_prometheus(&ctx->breakers), sync_metrics(ctx->svc)),
                           pipeline_metrics(ctx->svc));
}

static svc_actuator *actuator(resource_http *ctx) {
  ctx->act = (svc_actuator){.srv = ctx->srv,
                            .life = ctx->life,
                            .db = ctx->svc->db,
                            .pool_name = "resource",
                            .components = health_parts,
                            .metrics = metrics,
                            .ctx = ctx};
  return &ctx->act;
}

int resource_routes(http_server *srv, resource_http *ctx, auth *a) {
  int rc = HTTP_OK;
  rc |= auth_route_stream(srv, a, "POST", "/resources", JWT_SCOPE_WRITE, post_resource, ctx, ctx->max_upload);
  rc |= auth_route(srv, a, "DELETE", "/resources", JWT_SCOPE_WRITE, delete_resources, ctx, 0);
  rc |= auth_route(srv, a, "GET", "/resources/{id}", JWT_SCOPE_READ, get_resource, ctx, 0);
  rc |= svc_actuator_routes(srv, actuator(ctx));
  rc |= actuator_routes(srv, &ctx->breakers, a);
  return rc;
}

int resource_internal_routes(http_server *srv, resource_http *ctx) {
  int rc = HTTP_OK;
  rc |= http_server_route(srv, "GET", "/resources/{id}", get_resource, ctx, 0); /* the processor */
  rc |= svc_actuator_internal_routes(srv, actuator(ctx));
  return rc;
}
