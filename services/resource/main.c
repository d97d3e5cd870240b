/*
 * fermata-resource: the Resource Service. Wires the database, the object store, the
 * Storage Service client behind its circuit breaker, the Song Service client, the outbox
 * relay, the janitor and the consumer of "processed" messages, then serves HTTP until SIGTERM/SIGINT.
 * Shutdown order: stop taking requests (in-flight ones finish), stop the consumer, the
 * relay and the janitor, then free in reverse order of creation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "breaker_env.h"
#include "config/config.h"
#include "handlers.h"
#include "janitor.h"
#include "msgs/msgs.h"
#include "outbox.h"
#include "svc/svc.h"

/* The settings of this service alone; the common ones are lib/svc's (svc_app). */
typedef struct {
  long long max_upload, single_max, part_bytes, copy_single_max, abandon_after_ms, storage_timeout_ms,
      storage_connect_ms;
  const char *s3_endpoint, *s3_region, *s3_key, *s3_secret, *s3_sync_dir, *amqp_url, *storage_url, *song_url;
  storages_config st;
  breaker_config bc;
  breaker_env_health bh;
} settings;

/* The stub storage used while no live list was ever received. Its bucket and path default
 * to the Storage Service's own variables (STORAGE_STAGING_BUCKET, ...), which Compose and
 * Kubernetes hand to both services: the stub and the health probe then aim at the buckets
 * the Storage Service creates, not at a global AWS bucket of the built-in name.
 * FALLBACK_<TYPE>_* still wins when set. */
static void stub(storage_loc *l, const char *type, long long def_id, const char *def_bucket, config_err *err) {
  char n[96], storage_bucket[96], storage_path[96];
  snprintf(l->type, sizeof l->type, "%s", type);
  snprintf(n, sizeof n, "FALLBACK_%s_ID", type);
  l->id = config_int(n, def_id, 0, INT64_MAX, err);
  snprintf(storage_bucket, sizeof storage_bucket, "STORAGE_%s_BUCKET", type);
  snprintf(storage_path, sizeof storage_path, "STORAGE_%s_PATH", type);
  snprintf(n, sizeof n, "FALLBACK_%s_BUCKET", type);
  snprintf(l->bucket, sizeof l->bucket, "%s", config_str(n, config_str(storage_bucket, def_bucket)));
  snprintf(n, sizeof n, "FALLBACK_%s_PATH", type);
  snprintf(l->path, sizeof l->path, "%s", config_str(n, config_str(storage_path, "/files")));
}

static void read_settings(settings *s, config_err *err) {
  /* S3 takes parts of 5 MiB to 5 GiB, at most 10,000 of them: the largest upload must fit */
  s->part_bytes = config_int("RESOURCE_UPLOAD_PART_BYTES", 8LL << 20, 5LL << 20, 5LL << 30, err);
  s->max_upload = config_int("RESOURCE_MAX_UPLOAD_BYTES", 1LL << 30, 1024, 5LL << 40, err);
  s->single_max = config_int("RESOURCE_UPLOAD_SINGLE_MAX_BYTES", 5LL << 30, 5LL << 20, 5LL << 30, err);
  if (s->max_upload > s->part_bytes * 10000 && !err->msg[0])
    snprintf(err->msg, sizeof err->msg,
             "RESOURCE_MAX_UPLOAD_BYTES=%lld needs more than 10000 parts of RESOURCE_UPLOAD_PART_BYTES=%lld",
             s->max_upload, s->part_bytes);
  s->abandon_after_ms =
      config_duration_ms("RESOURCE_UPLOAD_ABANDON_AFTER", 24LL * 3600 * 1000, 1000, 30LL * 24 * 3600 * 1000, err);
  s->copy_single_max =
      config_int("RESOURCE_COPY_SINGLE_MAX_BYTES", S3_COPY_SINGLE_MAX, 1LL << 20, S3_COPY_SINGLE_MAX, err);
  s->s3_endpoint = config_str("S3_ENDPOINT", "http://127.0.0.1:29000");
  s->s3_region = config_str("S3_REGION", "us-east-1");
  s->s3_key = config_str("AWS_ACCESS_KEY_ID", "test");
  s->s3_secret = config_str("AWS_SECRET_ACCESS_KEY", "test");
  s->s3_sync_dir = config_str("S3_SYNC_DIR", "");
  s->amqp_url = config_str("AMQP_URL", "amqp://fermata:fermata@127.0.0.1:26720/");
  s->storage_url = config_str("STORAGE_SERVICE_URL", "http://127.0.0.1:8083");
  s->song_url = config_str("SONG_SERVICE_URL", "http://127.0.0.1:8082");
  s->storage_timeout_ms = config_duration_ms("STORAGE_SERVICE_TIMEOUT", 2000, 1, 600000, err);
  s->storage_connect_ms = config_duration_ms("STORAGE_SERVICE_CONNECT_TIMEOUT", 500, 1, 600000, err);
  memset(&s->st, 0, sizeof s->st);
  s->st.url = s->storage_url;
  s->st.timeout_ms = s->storage_timeout_ms;
  s->st.connect_timeout_ms = s->storage_connect_ms;
  stub(&s->st.stub_staging, "STAGING", 1, "fermata-staging", err);
  stub(&s->st.stub_permanent, "PERMANENT", 2, "fermata-permanent", err);
  breaker_env_config(&s->bc, err);
  breaker_env_health_config(&s->bh, err);
}

/* The storageService breaker's listener: one log line per state transition (and why it
 * tripped). It runs with the breaker's lock held, so it only formats and writes a line. */
static void on_breaker_event(void *ctx, const breaker *b, const breaker_event *ev) {
  log_sink *lg = ctx;
  char rate[48];
  switch (ev->type) {
  case BREAKER_EV_STATE_TRANSITION:
    log_event(lg, ev->to == BREAKER_CLOSED ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, "circuit breaker state transition",
              "name=%s from=%s to=%s", breaker_name(b), breaker_state_name(ev->from), breaker_state_name(ev->to));
    break;
  case BREAKER_EV_FAILURE_RATE_EXCEEDED:
  case BREAKER_EV_SLOW_CALL_RATE_EXCEEDED:
    breaker_format_float(ev->rate, rate, sizeof rate);
    log_event(lg, LOG_LEVEL_WARN, "circuit breaker threshold exceeded", "name=%s event=%s rate=%s", breaker_name(b),
              breaker_event_type_name(ev->type), rate);
    break;
  case BREAKER_EV_RESET: log_event(lg, LOG_LEVEL_INFO, "circuit breaker reset", "name=%s", breaker_name(b)); break;
  default: break; /* per-call events: the access log and the metrics tell those */
  }
}

static mq_verdict on_processed(const mq_message *m, void *arg, char *reason, size_t cap) {
  resource_svc *svc = arg;
  int32_t id;
  if (msgs_decode(m->body, m->len, &id, reason, cap) != MSGS_OK) return MQ_REJECT;
  /* a CONSUMER span continuing the processor's context (the message's traceparent) */
  trace_span span;
  trace_span_start_message(svc->tracer, &span, m->traceparent, false, "on processed", TRACE_KIND_CONSUMER,
                           m->routing_key);
  trace_ctx ctx;
  trace_span_ctx(&span, &ctx);
  int rc = resource_make_permanent(svc, id, *m->request_id ? m->request_id : NULL, &ctx);
  if (rc != RES_OK && rc != RES_ERR_NOT_FOUND) trace_span_fail(&span, "move to permanent storage failed");
  trace_span_end(svc->tracer, &span);
  if (rc == RES_OK) return MQ_ACK;
  if (rc == RES_ERR_NOT_FOUND) {
    log_event(svc->lg, LOG_LEVEL_WARN, "processed message for an unknown resource; acknowledged", "id=%d", id);
    return MQ_ACK;
  }
  snprintf(reason, cap, "move to permanent storage failed (%d)", rc);
  return MQ_RETRY;
}

int main(void) {
  svc_app app;
  svc_app_init(&app, &(svc_app_opts){.name = "resource",
                                     .default_port = 8081,
                                     .db_var = "RESOURCE_DB_URL",
                                     .db_default = "postgresql://resource:resource@127.0.0.1:25432/resources",
                                     .migrations = resource_migrations,
                                     .nmigrations = resource_nmigrations,
                                     .internal = true,
                                     .auth = true,
                                     .max_body = 1 << 20});
  settings s;
  read_settings(&s, &app.err);
  char bmsg[200] = "";
  if (!app.err.msg[0] && breaker_config_validate(&s.bc, bmsg, sizeof bmsg) != 0)
    snprintf(app.err.msg, sizeof app.err.msg, "storageService circuit breaker: %s", bmsg);
  mq_params mp;
  if (!app.err.msg[0] && mq_params_from_url(s.amqp_url, &mp) != MQ_OK)
    snprintf(app.err.msg, sizeof app.err.msg, "AMQP_URL: expected amqp[s]://user:pass@host:port/vhost");
  if (!app.err.msg[0] && mq_params_set_ca_file(&mp, config_str("AMQP_TLS_CA_FILE", "")) != MQ_OK)
    snprintf(app.err.msg, sizeof app.err.msg, "AMQP_TLS_CA_FILE: not a readable file");
  if (!app.err.msg[0] && mq_params_set_password(&mp, config_str("AMQP_PASSWORD", "")) != MQ_OK)
    snprintf(app.err.msg, sizeof app.err.msg, "AMQP_PASSWORD: longer than 127 bytes");
  int status = svc_app_open_log(&app);
  if (status) return status;
  log_sink *lg = app.lg;
  s.bc.listener = on_breaker_event;
  s.bc.listener_ctx = lg;
  syncbar *sync = NULL;
  int src = syncbar_new(s.s3_sync_dir, NULL, NULL, &sync);
  if (src != 0) {
    log_event(lg, LOG_LEVEL_ERROR, "bad configuration", "detail=\"S3_SYNC_DIR: cannot open the directory\" errno=%d",
              -src);
    svc_app_close(&app);
    return 2;
  }
  status = svc_app_open(&app); /* libcurl, auth, the pool, the servers */
  if (status) {
    syncbar_free(sync);
    svc_app_close(&app);
    return status;
  }

  status = 1;
  resource_lag lag = {.mu = PTHREAD_MUTEX_INITIALIZER};
  resource_svc svc = {.lg = lg,
                      .lag = &lag,
                      .sync = sync,
                      .db = app.db,
                      .single_max = (uint64_t)s.single_max,
                      .part_bytes = (uint64_t)s.part_bytes,
                      .copy_single_max = (uint64_t)s.copy_single_max,
                      .abandon_after_s = (long)(s.abandon_after_ms / 1000),
                      .tracer = app.tracer};
  songs *sg = NULL;
  s3_config s3c = {.endpoint = s.s3_endpoint, .region = s.s3_region, .access_key = s.s3_key, .secret_key = s.s3_secret};
  httpc_config hc = {
      .connect_timeout_ms = s.storage_connect_ms, .timeout_ms = s.storage_timeout_ms, .tracer = app.tracer};
  mq_publisher *pub = NULL;
  mq_consumer *cons = NULL;
  breaker *br = NULL;
  breaker_registry *reg = breaker_registry_new();
  char instance[96];
  svc_instance_name("resource", instance, sizeof instance);
  s3probe_opts po = {.s3 = s3c, .bucket = s.st.stub_staging.bucket, .instance = instance};
  s3probe *probe = s3probe_new(&po);
  if (!reg || !probe || !svc.db || s3_new(&s3c, &svc.s3) != S3_OK || httpc_new(&hc, &svc.http) != HTTPC_OK) goto out;
  if (breaker_new("storageService", &s.bc, &br, bmsg, sizeof bmsg) != 0) {
    log_event(lg, LOG_LEVEL_ERROR, "cannot create the circuit breaker", "detail=\"%s\"", bmsg);
    goto out;
  }
  if (breaker_registry_add(reg, br) != 0) {
    breaker_free(br);
    goto out;
  }
  s.st.tracer = app.tracer;
  svc.st = storages_new(&s.st, svc.http, br, lg);
  if (!svc.st) goto out;
  mp.log = lg;
  mq_backoff reconnect = {200, 5000};
  pub = mq_publisher_new(&mp, msgs_topology(MSGS_SIDE_RESOURCE), &reconnect);
  svc.ob = pub ? outbox_new(svc.db, pub, lg, app.tracer) : NULL;
  sg = songs_new(s.song_url, svc.http, lg);
  svc.jn = sg ? janitor_new(svc.db, svc.s3, sg) : NULL;
  mq_consumer_opts co = {
      .queue = msgs_consume_queue(MSGS_SIDE_RESOURCE), .prefetch = 4, .max_attempts = 10, .retry = {1000, 60000}};
  cons = mq_consumer_new(&mp, msgs_topology(MSGS_SIDE_RESOURCE), &co, on_processed, &svc);
  if (!svc.ob || !svc.jn || !cons) goto out;

  resource_http hctx = {
      .svc = &svc,
      .srv = app.srv,
      .max_upload = (uint64_t)s.max_upload,
      .breakers = {.reg = reg, .register_health = s.bh.register_health, .open_is_down = s.bh.open_is_down},
      .consumer = cons,
      .store_probe = probe,
      .life = &app.life};
  if (!app.srv || resource_routes(app.srv, &hctx, app.au) != HTTP_OK) goto out;
  if (app.internal_port && (!app.isrv || resource_internal_routes(app.isrv, &hctx) != HTTP_OK)) goto out;
  if (db_migrate(svc.db) != DB_OK)
    log_event(lg, LOG_LEVEL_WARN, "database not ready at start; serving 503 until it is", NULL);
  if (outbox_start(svc.ob) != 0 || janitor_start(svc.jn) != 0 || mq_consumer_start(cons) != MQ_OK) goto out;
  if (svc_app_listen(&app) != 0) goto out;
  svc_app_run(&app, NULL);
  svc_app_stop_http(&app);
  status = 0;
out:
  if (status) log_event(lg, LOG_LEVEL_ERROR, "start-up failed", NULL);
  svc_app_free_http(&app);
  mq_consumer_free(cons);
  outbox_free(svc.ob);
  janitor_free(svc.jn);
  songs_free(sg);
  mq_publisher_free(pub);
  storages_free(svc.st);
  breaker_registry_free(reg); /* frees the breakers it holds */
  httpc_free(svc.http);
  s3_free(svc.s3);
  s3probe_free(probe);
  syncbar_free(svc.sync);
  svc_app_close(&app); /* the pool, auth, libcurl, "stopped" */
  return status;
}
