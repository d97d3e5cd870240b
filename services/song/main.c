/*
 * fermata-song: the Song Service. Reads its configuration from the environment, wires
 * the database pool and the HTTP server, serves until SIGTERM/SIGINT, then lets in-flight
 * requests finish.
 *
 * Environment: SERVER_PORT (8082), SERVER_ADDRESS (127.0.0.1), SONG_DB_URL, DB_POOL_SIZE (16),
 * LOG_LEVEL (info), FERMATA_INTERNAL_PORT (0: none; the unguarded listener for the other
 * services' calls), and lib/auth's SPRING_SECURITY_OAUTH2_RESOURCESERVER_JWT_*.
 * Stopping (SIGTERM/SIGINT): /actuator/health/readiness turns OUT_OF_SERVICE at once, the
 * service waits FERMATA_DRAIN_DELAY (0; a load balancer's time to notice), then stops
 * accepting and lets in-flight requests finish for at most
 * SPRING_LIFECYCLE_TIMEOUT_PER_SHUTDOWN_PHASE (30s), then stops its background work.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#include "auth.h"
#include "config.h"
#include "db.h"
#include "handlers.h"
#include "health.h"
#include "http.h"
#include "log.h"
#include "song.h"
#include "svc.h"

int main(void) {
  svc_block_signals();
  svc_tune_memory();
  config_err cerr = {0};
  log_level level = LOG_INFO;
  if (log_level_parse(config_str("LOG_LEVEL", "info"), &level) != 0)
    snprintf(cerr.msg, sizeof cerr.msg, "LOG_LEVEL: expected debug, info, warn or error");
  long long port = config_int("SERVER_PORT", 8082, 0, 65535, &cerr);
  const char *address = config_ipv4("SERVER_ADDRESS", "127.0.0.1", &cerr);
  long long pool = config_int("DB_POOL_SIZE", 16, 1, 500, &cerr);
  const char *dburl = config_str("SONG_DB_URL", "postgresql://song:song@127.0.0.1:25432/songs");
  long long iport = config_int("FERMATA_INTERNAL_PORT", 0, 0, 65535, &cerr);
  long long drain_delay = config_duration_ms("FERMATA_DRAIN_DELAY", 0, 0, 600000, &cerr);
  long long grace = config_duration_ms("SPRING_LIFECYCLE_TIMEOUT_PER_SHUTDOWN_PHASE", 30000, 1, 600000, &cerr);
  auth_config ac;
  auth_config_read(&ac, &cerr);
  http_server_opts hcfg = {0}; /* threads and connection limits (HTTP_*), both servers */
  http_server_opts_env(&hcfg, &cerr);
  log *lg = log_new("song", level, stderr);
  if (!lg) return 1;
  (void)log_buffer_start(lg, 200, 64 * 1024); /* the access log, buffered (log.h); unbuffered if it fails */
  if (cerr.msg[0]) {
    log_event(lg, LOG_ERROR, "bad configuration", "detail=\"%s\"", cerr.msg);
    log_free(lg);
    return 2;
  }

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) { /* JWK Set fetches (lib/jwkshttp) */
    log_free(lg);
    return 1;
  }
  auth *au = NULL;
  if (auth_new(&ac, lg, &au) != 0) {
    curl_global_cleanup();
    log_free(lg);
    return 2;
  }
  auth_log_mode(au, lg, "song");
  int status = 1;
  db_opts dbo = {.conninfo = dburl, .max_conns = (int)pool, .migrations = song_migrations,
                 .nmigrations = song_nmigrations};
  db_pool *db = db_pool_new(&dbo, lg);
  http_server_opts ho = hcfg;
  ho.port = (unsigned)port, ho.bind_addr = address, ho.shutdown_grace_ms = (unsigned)grace;
  http_server *srv = http_server_new(&ho, lg);
  http_server_opts io = hcfg;
  io.port = (unsigned)iport, io.bind_addr = address, io.shutdown_grace_ms = (unsigned)grace;
  http_server *isrv = iport ? http_server_new(&io, lg) : NULL;
  song_ctx ctx = {.db = db, .srv = srv};
  health_lifecycle life = {0};
  if (!db || !srv || song_routes(srv, &ctx, au) != HTTP_OK ||
      http_server_route(srv, "GET", "/actuator/health/readiness", health_readiness, &life, 0) != HTTP_OK)
    goto out;
  if (iport && (!isrv || song_internal_routes(isrv, &ctx) != HTTP_OK)) goto out;
  int mrc = db_migrate(db);
  if (mrc != DB_OK)
    log_event(lg, LOG_WARN, "database not ready at start; serving 503 until it is", "error=\"%s\"",
              db_strerror(mrc));
  if (http_server_start(srv) != HTTP_OK || (isrv && http_server_start(isrv) != HTTP_OK)) {
    log_event(lg, LOG_ERROR, "cannot listen", "port=%lld internal_port=%lld", port, iport);
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
  http_server_free(isrv);
  http_server_free(srv);
  auth_free(au);
  curl_global_cleanup();
  db_pool_free(db);
  log_event(lg, LOG_INFO, "stopped", NULL);
  log_free(lg);
  return status;
}
