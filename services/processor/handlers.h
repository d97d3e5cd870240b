/*
 * handlers: the processor's only HTTP endpoints, GET /actuator/health and
 * GET /actuator/prometheus.
 *
 * Health components: "broker" is UP while every worker holds a consuming connection
 * (details connected/workers), DOWN when none does (the processor cannot do anything),
 * else UNKNOWN with the count, which Spring-style aggregation shows without turning the
 * service DOWN; "pipeline" is always UP and carries the counters and the time of the last
 * success, so an operator sees at a glance whether work is flowing.
 */
#ifndef FERMATA_PROC_HANDLERS_H
#define FERMATA_PROC_HANDLERS_H

#include "http/http.h"
#include "proc.h"
#include "svc/svc.h"
#include "workers.h"

typedef struct proc_http_ctx {
  http_server *srv; /* for the server's own request metrics */
  workers *pool;    /* for the broker state */
  proc_stats *stats;
  health_lifecycle *life; /* for /actuator/health/readiness */
  svc_actuator act;       /* the actuator routes' context, filled by proc_routes */
} proc_http_ctx;

/* Registers the routes. Returns HTTP_OK or an error. ctx must outlive the server. */
int proc_routes(http_server *srv, proc_http_ctx *ctx);

#endif
