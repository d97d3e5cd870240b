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
#include <stdio.h>
#include <stdlib.h>

#include "handlers.h"
#include "song.h"
#include "svc/svc.h"

int main(void) {
  svc_app app;
  svc_app_init(&app, &(svc_app_opts){.name = "song",
                                     .default_port = 8082,
                                     .db_var = "SONG_DB_URL",
                                     .db_default = "postgresql://song:song@127.0.0.1:25432/songs",
                                     .migrations = song_migrations,
                                     .nmigrations = song_nmigrations,
                                     .internal = true,
                                     .auth = true});
  int status = svc_app_open_log(&app);
  if (status) return status;
  status = svc_app_open(&app);
  if (status) goto out;
  status = 1;
  song_ctx ctx = {.db = app.db, .srv = app.srv, .life = &app.life};
  if (!app.db || !app.srv || song_routes(app.srv, &ctx, app.au) != HTTP_OK) goto out;
  if (app.internal_port && (!app.isrv || song_internal_routes(app.isrv, &ctx) != HTTP_OK)) goto out;
  svc_app_migrate(&app);
  if (svc_app_listen(&app) != 0) goto out;
  svc_app_run(&app, NULL);
  svc_app_stop_http(&app);
  status = 0;
out:
  svc_app_close(&app);
  return status;
}
