/*
 * fermata-resource: the Resource Service. Wires the database, the object store, the
 * Storage Service client behind its circuit breaker, the Song Service client, the outbox
 * relay, the janitor and the consumer of "processed" messages, then serves HTTP until SIGTERM/SIGINT.
 * Shutdown order: stop taking requests (in-flight ones finish), stop the consumer, the
 * relay and the janitor, then free in reverse order of creation.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "breaker_env.h"
#include "config.h"
#include "handlers.h"
#include "health.h"
#include "janitor.h"
#include "msgs.h"
#include "outbox.h"
#include "svc.h"

typedef struct {
  long long port, internal_port, drain_delay_ms, grace_ms, pool, max_upload, storage_timeout_ms, storage_connect_ms;
  const char *address, *db_url, *s3_endpoint, *s3_region, *s3_key, *s3_secret, *s3_sync_dir, *amqp_url, *storage_url, *song_url;
  storages_config st;
  breaker_config bc;
  breaker_env_health bh;
  auth_config auth;
  http_server_opts http; /* threads and connection limits (HTTP_*), both servers */
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
  s->port = config_int("SERVER_PORT", 8081, 0, 65535, err);
  s->address = config_ipv4("SERVER_ADDRESS", "127.0.0.1", err);
  s->pool = config_int("DB_POOL_SIZE", 16, 1, 500, err);
  s->max_upload = config_int("RESOURCE_MAX_UPLOAD_BYTES", 50LL << 20, 1024, 1LL << 31, err);
  s->db_url = config_str("RESOURCE_DB_URL", "postgresql://resource:resource@127.0.0.1:25432/resources");
  s->s3_endpoint = config_str("S3_ENDPOINT", "http://127.0.0.1:29000");
  s->s3_region = config_str("S3_REGION", "us-east-1");
  s->s3_key = config_str("AWS_ACCESS_KEY_ID", "test");
  s->s3_secret = config_str("AWS_SECRET_ACCESS_KEY", "test");
  s->s3_sync_dir = config_str("S3_SYNC_DIR", "");
  s->internal_port = config_int("FERMATA_INTERNAL_PORT", 0, 0, 65535, err);
  s->drain_delay_ms = config_duration_ms("FERMATA_DRAIN_DELAY", 0, 0, 600000, err);
  s->grace_ms = config_duration_ms("SPRING_LIFECYCLE_TIMEOUT_PER_SHUTDOWN_PHASE", 30000, 1, 600000, err);
  auth_config_read(&s->auth, err);
  s->http = (http_server_opts){0};
  http_server_opts_env(&s->http, err);
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
  log *lg = ctx;
  char rate[48];
  switch (ev->type) {
    case BREAKER_EV_STATE_TRANSITION:
      log_event(lg, ev->to == BREAKER_CLOSED ? LOG_INFO : LOG_WARN, "circuit breaker state transition",
                "name=%s from=%s to=%s", breaker_name(b), breaker_state_name(ev->from), breaker_state_name(ev->to));
      break;
    case BREAKER_EV_FAILURE_RATE_EXCEEDED:
    case BREAKER_EV_SLOW_CALL_RATE_EXCEEDED:
      breaker_format_float(ev->rate, rate, sizeof rate);
      log_event(lg, LOG_WARN, "circuit breaker threshold exceeded", "name=%s event=%s rate=%s", breaker_name(b),
                breaker_event_type_name(ev->type), rate);
      break;
    case BREAKER_EV_RESET:
      log_event(lg, LOG_INFO, "circuit breaker reset", "name=%s", breaker_name(b));
      break;
    default:
      break; /* per-call events: the access log and the metrics tell those */
  }
}

static mq_verdict on_processed(const mq_message *m, void *arg, char *reason, size_t cap) {
  resource_svc *svc = arg;
  int32_t id;
  if (msgs_decode(m->body, m->len, &id, reason, cap) != MSGS_OK) return MQ_REJECT;
  int rc = resource_make_permanent(svc, id, *m->request_id ? m->request_id : NULL);
  if (rc == RES_OK) return MQ_ACK;
  if (rc == RES_NOT_FOUND) {
    log_event(svc->lg, LOG_WARN, "processed message for an unknown resource; acknowledged", "id=%d", id);
    return MQ_ACK;
  }
  snprintf(reason, cap, "move to permanent storage failed (%d)", rc);
  return MQ_RETRY;
}

int main(void) {
  svc_block_signals();
  svc_tune_memory();
  config_err err = {0};
  log_level level = LOG_INFO;
  if (log_level_parse(config_str("LOG_LEVEL", "info"), &level) != 0)
    snprintf(err.msg, sizeof err.msg, "LOG_LEVEL: expected debug, info, warn or error");
  settings s;
  read_settings(&s, &err);
  log *lg = log_new("resource", level, stderr);
  if (!lg) return 1;
  (void)log_buffer_start(lg, 200, 64 * 1024); /* the access log, buffered (log.h); unbuffered if it fails */
  char bmsg[200] = "";
  if (!err.msg[0] && breaker_config_validate(&s.bc, bmsg, sizeof bmsg) != 0)
    snprintf(err.msg, sizeof err.msg, "storageService circuit breaker: %s", bmsg);
  mq_params mp;
  if (!err.msg[0] && mq_params_from_url(s.amqp_url, &mp) != MQ_OK)
    snprintf(err.msg, sizeof err.msg, "AMQP_URL: expected amqp[s]://user:pass@host:port/vhost");
  if (!err.msg[0] && mq_params_set_ca_file(&mp, config_str("AMQP_TLS_CA_FILE", "")) != MQ_OK)
    snprintf(err.msg, sizeof err.msg, "AMQP_TLS_CA_FILE: not a readable file");
  if (!err.msg[0] && mq_params_set_password(&mp, config_str("AMQP_PASSWORD", "")) != MQ_OK)
    snprintf(err.msg, sizeof err.msg, "AMQP_PASSWORD: longer than 127 bytes");
  if (err.msg[0]) {
    log_event(lg, LOG_ERROR, "bad configuration", "detail=\"%s\"", err.msg);
    log_free(lg);
    return 2;
  }
  s.bc.listener = on_breaker_event;
  s.bc.listener_ctx = lg;
  syncbar *sync = NULL;
  int src = syncbar_new(s.s3_sync_dir, NULL, NULL, &sync);
  if (src != 0) {
    log_event(lg, LOG_ERROR, "bad configuration", "detail=\"S3_SYNC_DIR: cannot open the directory\" errno=%d", -src);
    log_free(lg);
    return 2;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    log_event(lg, LOG_ERROR, "cannot initialise libcurl", NULL);
    syncbar_free(sync);
    log_free(lg);
    return 1;
  }
  auth *au = NULL;
  if (auth_new(&s.auth, lg, &au) != 0) {
    curl_global_cleanup();
    syncbar_free(sync);
    log_free(lg);
    return 2;
  }
  auth_log_mode(au, lg, "resource");

  int status = 1;
  resource_svc svc = {.lg = lg, .sync = sync};
  songs *sg = NULL;
  db_opts dbo = {.conninfo = s.db_url, .max_conns = (int)s.pool, .migrations = resource_migrations,
                 .nmigrations = resource_nmigrations};
  s3_config s3c = {.endpoint = s.s3_endpoint, .region = s.s3_region, .access_key = s.s3_key,
                   .secret_key = s.s3_secret};
  httpc_config hc = {.connect_timeout_ms = s.storage_connect_ms, .timeout_ms = s.storage_timeout_ms};
  mq_publisher *pub = NULL;
  mq_consumer *cons = NULL;
  breaker *br = NULL;
  breaker_registry *reg = breaker_registry_new();
  http_server *srv = NULL, *isrv = NULL;
  char instance[96];
  svc_instance_name("resource", instance, sizeof instance);
  s3probe_opts po = {.s3 = s3c, .bucket = s.st.stub_staging.bucket, .instance = instance};
  s3probe *probe = s3probe_new(&po);
  svc.db = db_pool_new(&dbo, lg);
  if (!reg || !probe || !svc.db || s3_new(&s3c, &svc.s3) != S3_OK || httpc_new(&hc, &svc.http) != HTTPC_OK) goto out;
  if (breaker_new("storageService", &s.bc, &br, bmsg, sizeof bmsg) != 0) {
    log_event(lg, LOG_ERROR, "cannot create the circuit breaker", "detail=\"%s\"", bmsg);
    goto out;
  }
  if (breaker_registry_add(reg, br) != 0) {
    breaker_free(br);
    goto out;
  }
  svc.st = storages_new(&s.st, svc.http, br, lg);
  if (!svc.st) goto out;
  mp.log = lg;
  mq_backoff reconnect = {200, 5000};
  pub = mq_publisher_new(&mp, msgs_topology(MSGS_SIDE_RESOURCE), &reconnect);
  svc.ob = pub ? outbox_new(svc.db, pub, lg) : NULL;
  sg = songs_new(s.song_url, svc.http, lg);
  svc.jn = sg ? janitor_new(svc.db, svc.s3, sg) : NULL;
  mq_consumer_opts co = {.queue = msgs_consume_queue(MSGS_SIDE_RESOURCE), .prefetch = 4, .max_attempts = 10,
                         .retry = {1000, 60000}};
  cons = mq_consumer_new(&mp, msgs_topology(MSGS_SIDE_RESOURCE), &co, on_processed, &svc);
  if (!svc.ob || !svc.jn || !cons) goto out;

  http_server_opts ho = s.http;
  ho.port = (unsigned)s.port, ho.bind_addr = s.address, ho.max_body = 1 << 20;
  ho.shutdown_grace_ms = (unsigned)s.grace_ms;
  srv = http_server_new(&ho, lg);
  http_server_opts io = s.http;
  io.port = (unsigned)s.internal_port, io.bind_addr = s.address, io.shutdown_grace_ms = (unsigned)s.grace_ms;
  if (s.internal_port) isrv = http_server_new(&io, lg);
  resource_http hctx = {.svc = &svc, .srv = srv, .max_upload = (size_t)s.max_upload, .breakers = {.reg = reg, .register_health = s.bh.register_health, .open_is_down = s.bh.open_is_down},
                        .consumer = cons, .store_probe = probe};
  health_lifecycle life = {0};
  if (!srv || resource_routes(srv, &hctx, au) != HTTP_OK ||
      http_server_route(srv, "GET", "/actuator/health/readiness", health_readiness, &life, 0) != HTTP_OK)
    goto out;
  if (s.internal_port && (!isrv || resource_internal_routes(isrv, &hctx) != HTTP_OK)) goto out;
  if (db_migrate(svc.db) != DB_OK) log_event(lg, LOG_WARN, "database not ready at start; serving 503 until it is", NULL);
  if (outbox_start(svc.ob) != 0 || janitor_start(svc.jn) != 0 || mq_consumer_start(cons) != MQ_OK) goto out;
  if (http_server_start(srv) != HTTP_OK || (isrv && http_server_start(isrv) != HTTP_OK)) {
    log_event(lg, LOG_ERROR, "cannot listen", "port=%lld internal_port=%lld", s.port, s.internal_port);
    goto out;
  }
  log_event(lg, LOG_INFO, "started", "port=%u internal_port=%u", http_server_port(srv),
            isrv ? http_server_port(isrv) : 0);
  int sig = svc_wait_for_stop();
  health_lifecycle_drain(&life);
  log_event(lg, LOG_INFO, "stopping", "signal=%d drain_delay_ms=%lld", sig, s.drain_delay_ms);
  svc_sleep_ms(s.drain_delay_ms);
  http_server_stop(srv);
  if (isrv) http_server_stop(isrv);
  status = 0;
out:
  if (status) log_event(lg, LOG_ERROR, "start-up failed", NULL);
  http_server_free(isrv);
  http_server_free(srv);
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
  db_pool_free(svc.db);
  auth_free(au);
  curl_global_cleanup();
  log_event(lg, LOG_INFO, "stopped", NULL);
  log_free(lg);
  return status;
}
