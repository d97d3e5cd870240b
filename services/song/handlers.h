/*
 * handlers: the Song Service's HTTP endpoints, translating requests into song_* calls and
 * results into the contract's responses.
 */
#ifndef FERMATA_SONG_HANDLERS_H
#define FERMATA_SONG_HANDLERS_H

#include "auth/auth.h"
#include "db/db.h"
#include "http/http.h"
#include "svc/svc.h"

typedef struct {
  db_pool *db;
  http_server *srv;       /* for /actuator/prometheus */
  health_lifecycle *life; /* for /actuator/health/readiness */
  svc_actuator act;       /* the actuator routes' context, filled by song_routes */
} song_ctx;

/* Registers every route of the service on `srv`, the API guarded by `a` (NULL: open):
 * GET needs fermata.read, POST and DELETE fermata.write. Returns HTTP_OK or an error. */
int song_routes(http_server *srv, song_ctx *ctx, auth *a);
/* The routes other services call, unguarded, for the internal listener
 * (FERMATA_INTERNAL_PORT): POST and DELETE /songs, health. */
int song_internal_routes(http_server *srv, song_ctx *ctx);

/* Replies 503 or 500 for a negative DB_ERR_* code. Shared by handlers. */
void song_reply_db_error(http_req *r, int rc);

#endif
