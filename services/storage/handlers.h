/*
 * handlers: the Storage Service's HTTP endpoints, translating requests into storage_* and
 * keeper_* calls and results into the contract's responses.
 */
#ifndef FERMATA_STORAGE_HANDLERS_H
#define FERMATA_STORAGE_HANDLERS_H

#include "auth/auth.h"
#include "db/db.h"
#include "http/http.h"
#include "keeper.h"
#include "svc/svc.h"

typedef struct {
  db_pool *db;
  keeper *keeper;         /* bucket provisioning and the object store's health */
  http_server *srv;       /* for /actuator/prometheus */
  long max_count;         /* STORAGE_MAX_COUNT: POST /storages refuses more */
  health_lifecycle *life; /* for /actuator/health/readiness */
  svc_actuator act;       /* the actuator routes' context, filled by storage_routes */
} storage_ctx;

/* Registers every route of the service on `srv`, the API guarded by `a` (NULL: open):
 * GET /storages needs fermata.read, POST and DELETE fermata.admin. HTTP_OK or an error. */
int storage_routes(http_server *srv, storage_ctx *ctx, auth *a);
/* The routes other services call, unguarded, for the internal listener
 * (FERMATA_INTERNAL_PORT): GET /storages, health. */
int storage_internal_routes(http_server *srv, storage_ctx *ctx);

#endif
