/*
 * health: the Spring Boot shape of GET /actuator/health.
 *
 *   {"status":"UP","components":{"db":{"status":"UP","details":{...}}}}
 *
 * The overall status is DOWN when any component is DOWN, else UP; components with other
 * statuses (UNKNOWN, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN) are shown but do not make the service
 * DOWN, as in Spring's default aggregation with Resilience4j's indicators. HTTP 503 when
 * DOWN, else 200.
 */
#ifndef FERMATA_HEALTH_H
#define FERMATA_HEALTH_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "http/http.h"

/* Adds a component to `components` (a JSON object): status plus optional details (stolen). */
void health_component(json_t *components, const char *name, const char *status, json_t *details);

/* The "db" component: UP, or DOWN with `error` (a short text, no internals) in its details. */
void health_db(json_t *components, bool up, const char *error);

/* Replies with the aggregate; steals `components`. */
void health_reply(http_req *r, json_t *components);

/* GET /actuator/health/liveness: {"status":"UP"} while the process serves requests, whatever
 * its dependencies say (Spring's liveness group). For orchestrators: a database outage must
 * take a pod out of rotation (readiness = /actuator/health), not restart it. */
void health_liveness(http_req *r, void *ctx);

/* Readiness, Spring's ReadinessState: ACCEPTING_TRAFFIC until the service starts to drain
 * (SIGTERM), then REFUSING_TRAFFIC for good. Shared between main (which drains) and the
 * readiness route; thread-safe. Dependencies are not part of it (as in Spring's default
 * readiness group): a database outage is /actuator/health's business, and taking every
 * replica out of rotation for it would only turn 503s into 502s. */
typedef struct health_lifecycle {
  atomic_bool draining;
} health_lifecycle;

void health_lifecycle_drain(health_lifecycle *l);
bool health_lifecycle_draining(const health_lifecycle *l);

/* GET /actuator/health/readiness: 200 {"status":"UP"} while accepting traffic, 503
 * {"status":"OUT_OF_SERVICE"} once draining. ctx is the health_lifecycle. */
void health_readiness(http_req *r, void *ctx);

#endif
