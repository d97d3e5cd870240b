/*
 * handlers: the Storage Service's HTTP endpoints, translating requests into storage_* and
 * keeper_* calls and results into the contract's responses.
 */
#ifndef FERMATA_STORAGE_HANDLERS_H
#define FERMATA_STORAGE_HANDLERS_H

#include "db.h"
#include "http.h"
#include "keeper.h"

typedef struct {
  db_pool *db;
  keeper *keeper;   /* bucket provisioning and the object store's health */
  http_server *srv; /* for /actuator/prometheus */
} storage_ctx;

/* Registers every route of the service on `srv`. Returns HTTP_OK or an error. */
int storage_routes(http_server *srv, storage_ctx *ctx);

#endif
