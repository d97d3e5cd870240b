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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "handlers.h"
#include "keeper.h"
#include "s3/s3.h"
#include "storage.h"
#include "svc/svc.h"

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
    snprintf(cerr->msg, sizeof cerr->msg, "STORAGE_STAGING_BUCKET and STORAGE_PERMANENT_BUCKET must differ");
}

int main(void) {
  svc_app app;
  svc_app_init(&app, &(svc_app_opts){.name = "storage",
                                     .default_port = 8083,
                                     .db_var = "STORAGE_DB_URL",
                                     .db_default = "postgresql://storage:storage@127.0.0.1:25432/storages",
                                     .migrations = storage_migrations,
                                     .nmigrations = storage_nmigrations,
                                     .internal = true,
                                     .auth = true});
  config_err *cerr = &app.err;
  /* 1000 storages render to about 350 KB: well within the Resource Service's 1 MiB cap on
   * the list it reads, so the list can never grow out of its reach */
  long long max_count = config_int("STORAGE_MAX_COUNT", 100, 2, 1000, cerr);
  long long interval = config_duration_ms("STORAGE_BUCKET_CHECK_INTERVAL", 5000, 100, 3600 * 1000LL, cerr);
  const storage seeds[2] = {
      {"STAGING", config_str("STORAGE_STAGING_BUCKET", "fermata-staging"),
       config_str("STORAGE_STAGING_PATH", "/files")},
      {"PERMANENT", config_str("STORAGE_PERMANENT_BUCKET", "fermata-permanent"),
       config_str("STORAGE_PERMANENT_PATH", "/files")},
  };
  check_seeds(seeds, cerr);
  s3_config s3c = {.endpoint = config_str("S3_ENDPOINT", "http://127.0.0.1:29000"),
                   .region = config_str("S3_REGION", "us-east-1"),
                   .access_key = config_str("AWS_ACCESS_KEY_ID", "test"),
                   .secret_key = config_str("AWS_SECRET_ACCESS_KEY", "test"),
                   .connect_timeout_ms = S3_CONNECT_TIMEOUT_MS,
                   .timeout_ms = S3_TIMEOUT_MS};
  s3_client *s3 = NULL;
  keeper *kp = NULL;
  int status = svc_app_open_log(&app);
  if (status) return status;
  status = svc_app_open(&app);
  if (status) goto out;
  status = 1;
  log_sink *lg = app.lg;
  int src = s3_new(&s3c, &s3);
  if (src != S3_OK) {
    /* the endpoint or region is malformed; credentials are not part of the message */
    log_event(lg, LOG_LEVEL_ERROR, "bad configuration", "detail=\"S3_ENDPOINT or S3_REGION: %s\"", s3_strerror(src));
    status = 2;
    goto out;
  }
  keeper_opts ko = {.db = app.db, .s3 = s3, .lg = lg, .seeds = seeds, .nseeds = 2, .interval_ms = (uint32_t)interval};
  kp = app.db ? keeper_new(&ko) : NULL;
  storage_ctx ctx = {.db = app.db, .keeper = kp, .srv = app.srv, .max_count = (long)max_count, .life = &app.life};
  if (!app.db || !app.srv || !kp || storage_routes(app.srv, &ctx, app.au) != HTTP_OK) goto out;
  if (app.internal_port && (!app.isrv || storage_internal_routes(app.isrv, &ctx) != HTTP_OK)) goto out;
  if (svc_app_migrate(&app) == DB_OK)
    keeper_run_once(kp); /* seeds before the first request; the thread retries what fails */
  if (svc_app_listen(&app) != 0) goto out;
  if (keeper_start(kp) != 0) {
    log_event(lg, LOG_LEVEL_ERROR, "cannot start the bucket keeper thread", NULL);
    goto out;
  }
  svc_app_run(&app, NULL);
  svc_app_stop_http(&app);
  status = 0;
out:
  svc_app_free_http(&app);
  keeper_free(kp);
  s3_free(s3);
  svc_app_close(&app);
  return status;
}
