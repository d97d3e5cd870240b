/*
 * handlers: the Resource Service's HTTP endpoints: translate requests into resource_*
 * calls and results into the contract's responses.
 */
#ifndef FERMATA_RESOURCE_HANDLERS_H
#define FERMATA_RESOURCE_HANDLERS_H

#include <stddef.h>
#include <stdint.h>

#include "actuator.h"
#include "auth/auth.h"
#include "breaker/breaker.h"
#include "http/http.h"
#include "mq/mq.h"
#include "outbox.h"
#include "resource.h"
#include "s3probe/s3probe.h"
#include "svc/svc.h"

typedef struct {
  resource_svc *svc;
  http_server *srv;
  uint64_t max_upload;
  actuator_breakers breakers; /* circuit breaker endpoints, health and metrics */
  mq_consumer *consumer;      /* for health */
  s3probe *store_probe;       /* the objectStore health component: reachable, bucket, writable */
  health_lifecycle *life;     /* for /actuator/health/readiness */
  svc_actuator act;           /* the actuator routes' context, filled by resource_routes */
} resource_http;

/* Every route of the service, the API guarded by `a` (NULL: open): GET needs fermata.read,
 * POST and DELETE fermata.write, the actuator's writes fermata.admin. */
int resource_routes(http_server *srv, resource_http *ctx, auth *a);
/* The routes other services call, unguarded, for the internal listener
 * (FERMATA_INTERNAL_PORT): GET /resources/{id}, health. */
int resource_internal_routes(http_server *srv, resource_http *ctx);

#endif
