/*
 * fermata-song: the Song Service. Reads its configuration from the environment, wires
 * the database pool and the HTTP server, serves until SIGTERM/SIGINT, then lets in-flight
 * requests finish.
 *
 * Environment: SERVER_PORT (8082), SONG_DB_URL, DB_POOL_SIZE (16), LOG_LEVEL (info).
 */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "db.h"
#include "handlers.h"
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
  long long pool = config_int("DB_POOL_SIZE", 16, 1, 500, &cerr);
  const char *dburl = config_str("SONG_DB_URL", "postgresql://song:song@127.0.0.1:25432/songs");
  log *lg = log_new("song", level, stderr);
  if (!lg) return 1;
  if (cerr.msg[0]) {
    log_event(lg, LOG_ERROR, "bad configuration", "detail=\"%s\"", cerr.msg);
    log_free(lg);
    return 2;
  }

  int status = 1;
  db_opts dbo = {.conninfo = dburl, .max_conns = (int)pool, .migrations = song_migrations,
                 .nmigrations = song_nmigrations};
  db_pool *db = db_pool_new(&dbo, lg);
  http_server_opts ho = {.port = (unsigned)port};
  http_server *srv = http_server_new(&ho, lg);
  song_ctx ctx = {.db = db, .srv = srv};
  if (!db || !srv || song_routes(srv, &ctx) != HTTP_OK) goto out;
  int mrc = db_migrate(db);
  if (mrc != DB_OK)
    log_event(lg, LOG_WARN, "database not ready at start; serving 503 until it is", "error=\"%s\"",
              db_strerror(mrc));
  if (http_server_start(srv) != HTTP_OK) {
    log_event(lg, LOG_ERROR, "cannot listen", "port=%lld", port);
    goto out;
  }
  log_event(lg, LOG_INFO, "started", "port=%u", http_server_port(srv));
  int sig = svc_wait_for_stop();
  log_event(lg, LOG_INFO, "stopping", "signal=%d", sig);
  http_server_stop(srv);
  status = 0;
out:
  http_server_free(srv);
  db_pool_free(db);
  log_event(lg, LOG_INFO, "stopped", NULL);
  log_free(lg);
  return status;
}
