/*
 * fermata-storage: the Storage Service. Reads its configuration from the environment,
 * wires the database pool, the S3 client, the bucket keeper and the HTTP server, seeds the
 * STAGING and PERMANENT storages and creates their buckets (both retried in the background
 * while the database or the object store is away), serves until SIGTERM/SIGINT, then lets
 * in-flight requests finish.
 *
 * Environment: SERVER_PORT (8083), STORAGE_DB_URL, DB_POOL_SIZE (16), LOG_LEVEL (info),
 * S3_ENDPOINT (http://127.0.0.1:29000), S3_REGION (us-east-1), AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY (test/test; never logged), STORAGE_STAGING_BUCKET
 * (fermata-staging), STORAGE_STAGING_PATH (/files), STORAGE_PERMANENT_BUCKET
 * (fermata-permanent), STORAGE_PERMANENT_PATH (/files), STORAGE_BUCKET_CHECK_INTERVAL (5s).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "auth.h"
#include "handlers.h"
#include "health.h"
#include "http.h"
#include "keeper.h"
#include "log.h"
#include "s3.h"
#include "storage.h"
#include "svc.h"

/* Short enough that a store that does not answer cannot hold a request (and its database
 * transaction) for long; long enough for a bucket creation on a loaded emulator. */
#define S3_CONNECT_TIMEOUT_MS 1000
#define S3_TIMEOUT_MS 10000

/* Refuses seeds the API itself would refuse, and a shared bucket (the task wants the two
 * states in distinct buckets). */
static void check_seeds(const storage seeds[2], config_err *cerr) {
  static const char *const bucket_var[2] = {"STORAGE_STAGING_BUCKET", "STORAGE_PERMANENT_BUCKET"};
  static const char *const path_var[2] = {"STORAGE_STAGING_PATH", "STORAGE_PERMANENT_PATH"};
  for (int i = 0; i < 2 && !cerr->msg[0]; i++) {
    const char *problem = storage_path_problem(seeds[i].path);
    if (!storage_bucket_valid(seeds[i].bucket))
      snprintf(cerr->msg, sizeof cerr->msg, "%s: not a valid S3 bucket name", bucket_var[i]);
    else if (problem)
      snprintf(cerr->msg, sizeof cerr->msg, "%s: %s", path_var[i], problem);
  }
  if (!cerr->msg[0] && strcmp(seeds[0].bucket, seeds[1].bucket) == 0)
    snprintf(cerr->msg, sizeof cerr->msg,
             "STORAGE_STAGING_BUCKET and STORAGE_PERMANENT_BUCKET must differ");
}

int main(void) {
  svc_block_signals();
  svc_tune_memory();
  config_err cerr = {0};
  log_level level = LOG_INFO;
  if (log_level_parse(config_str("LOG_LEVEL", "info"), &level) != 0)
    snprintf(cerr.msg, sizeof cerr.msg, "LOG_LEVEL: expected debug, info, warn or error");
  long long port = config_int("SERVER_PORT", 8083, 0, 65535, &cerr);
  const char *address = config_ipv4("SERVER_ADDRESS", "127.0.0.1", &cerr);
  long long pool = config_int("DB_POOL_SIZE", 16, 1, 500, &cerr);
  /* 1000 storages render to about 350 KB: well within the Resource Service's 1 MiB cap on
   * the list it reads, so the list can never grow out of its reach */
  long long max_count = config_int("STORAGE_MAX_COUNT", 100, 2, 1000, &cerr);
  long long iport = config_int("FERMATA_INTERNAL_PORT", 0, 0, 65535, &cerr);
  long long drain_delay = config_duration_ms("FERMATA_DRAIN_DELAY", 0, 0, 600000, &cerr);
  long long grace = config_duration_ms("SPRING_LIFECYCLE_TIMEOUT_PER_SHUTDOWN_PHASE", 30000, 1, 600000, &cerr);
  auth_config ac;
  auth_config_read(&ac, &cerr);
  http_server_opts hcfg = {0}; /* threads and connection limits (HTTP_*), both servers */
  http_server_opts_env(&hcfg, &cerr);
  long long interval =
      config_duration_ms("STORAGE_BUCKET_CHECK_INTERVAL", 5000, 100, 3600 * 1000LL, &cerr);
  const char *dburl =
      config_str("STORAGE_DB_URL", "postgresql://storage:storage@127.0.0.1:25432/storages");
  const storage seeds[2] = {
      {"STAGING", config_str("STORAGE_STAGING_BUCKET", "fermata-staging"),
       config_str("STORAGE_STAGING_PATH", "/files")},
      {"PERMANENT", config_str("STORAGE_PERMANENT_BUCKET", "fermata-permanent"),
       config_str("STORAGE_PERMANENT_PATH", "/files")},
  };
  check_seeds(seeds, &cerr);
  s3_config s3c = {.endpoint = config_str("S3_ENDPOINT", "http://127.0.0.1:29000"),
                   .region = config_str("S3_REGION", "us-east-1"),
                   .access_key = config_str("AWS_ACCESS_KEY_ID", "test"),
                   .secret_key = config_str("AWS_SECRET_ACCESS_KEY", "test"),
                   .connect_timeout_ms = S3_CONNECT_TIMEOUT_MS,
                   .timeout_ms = S3_TIMEOUT_MS};
  log *lg = log_new("storage", level, stderr);
  if (!lg) return 1;
  (void)log_buffer_start(lg, 200, 64 * 1024); /* the access log, buffered (log.h); unbuffered if it fails */
  if (cerr.msg[0]) {
    log_event(lg, LOG_ERROR, "bad configuration", "detail=\"%s\"", cerr.msg);
    log_free(lg);
    return 2;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    log_event(lg, LOG_ERROR, "cannot initialise libcurl", NULL);
    log_free(lg);
    return 1;
  }

  auth *au = NULL;
  if (auth_new(&ac, lg, &au) != 0) {
    curl_global_cleanup();
    log_free(lg);
    return 2;
  }
  auth_log_mode(au, lg, "storage");
  int status = 1;
  s3_client *s3 = NULL;
  int src = s3_new(&s3c, &s3);
  if (src != S3_OK) {
    /* the endpoint or region is malformed; credentials are not part of the message */
    log_event(lg, LOG_ERROR, "bad configuration", "detail=\"S3_ENDPOINT or S3_REGION: %s\"",
              s3_strerror(src));
    status = 2;
  }
  db_opts dbo = {.conninfo = dburl, .max_conns = (int)pool, .migrations = storage_migrations,
                 .nmigrations = storage_nmigrations};
  db_pool *db = db_pool_new(&dbo, lg);
  http_server_opts ho = hcfg;
  ho.port = (unsigned)port, ho.bind_addr = address, ho.shutdown_grace_ms = (unsigned)grace;
  http_server *srv = http_server_new(&ho, lg);
  http_server_opts io = hcfg;
  io.port = (unsigned)iport, io.bind_addr = address, io.shutdown_grace_ms = (unsigned)grace;
  http_server *isrv = iport ? http_server_new(&io, lg) : NULL;
  keeper_opts ko = {.db = db, .s3 = s3, .lg = lg, .seeds = seeds, .nseeds = 2,
                    .interval_ms = (uint32_t)interval};
  keeper *kp = s3 && db ? keeper_new(&ko) : NULL;
  storage_ctx ctx = {.db = db, .keeper = kp, .srv = srv, .max_count = (long)max_count};
  health_lifecycle life = {0};
  if (!s3 || !db || !srv || !kp || storage_routes(srv, &ctx, au) != HTTP_OK ||
      http_server_route(srv, "GET", "/actuator/health/readiness", health_readiness, &life, 0) != HTTP_OK)
    goto out;
  if (iport && (!isrv || storage_internal_routes(isrv, &ctx) != HTTP_OK)) goto out;
  int mrc = db_migrate(db);
  if (mrc != DB_OK)
    log_event(lg, LOG_WARN, "database not ready at start; serving 503 until it is", "error=\"%s\"",
              db_strerror(mrc));
  else
    keeper_run_once(kp); /* seeds before the first request; the thread retries what fails */
  if (http_server_start(srv) != HTTP_OK || (isrv && http_server_start(isrv) != HTTP_OK)) {
    log_event(lg, LOG_ERROR, "cannot listen", "port=%lld internal_port=%lld", port, iport);
    goto out;
  }
  if (keeper_start(kp) != 0) {
    log_event(lg, LOG_ERROR, "cannot start the bucket keeper thread", NULL);
    goto out;
  }
  log_event(lg, LOG_INFO, "started", "port=%u internal_port=%u", http_server_port(srv),
            isrv ? http_server_port(isrv) : 0);
  int sig = svc_wait_for_stop();
  health_lifecycle_drain(&life);
  log_event(lg, LOG_INFO, "stopping", "signal=%d drain_delay_ms=%lld", sig, drain_delay);
  svc_sleep_ms(drain_delay);
  http_server_stop(srv);
  if (isrv) http_server_stop(isrv);
  status = 0;
out:
  http_server_free(isrv); /* stops it first if running */
  http_server_free(srv);
  auth_free(au);
  keeper_free(kp);
  db_pool_free(db);
  s3_free(s3);
  curl_global_cleanup();
  log_event(lg, LOG_INFO, "stopped", NULL);
  log_free(lg);
  return status;
}
