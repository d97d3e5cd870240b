/*
 * actuator: the Resource Service's circuit breaker endpoints, in the shapes Spring Boot's
 * actuator gives Resilience4j (lib/breakerview renders them; this file is the HTTP glue):
 *
 *   GET  /actuator/circuitbreakers
 *   POST /actuator/circuitbreakers/{name}          {"updateState":"CLOSE"|"FORCE_OPEN"|"DISABLE"}
 *   GET  /actuator/circuitbreakerevents[/{name}[/{eventType}]]
 *
 * plus the `circuitBreakers` health component and the resilience4j_* Prometheus lines,
 * which the service's own health and prometheus handlers add to their answers.
 *
 * Health follows Resilience4j's CircuitBreakersHealthIndicator: one entry per breaker
 * registered for health (CLOSED UP, OPEN CIRCUIT_OPEN or DOWN when allowed to fail,
 * HALF_OPEN CIRCUIT_HALF_OPEN, else UNKNOWN) and an aggregate status. An open breaker is
 * not DOWN by default: the fallback keeps the service answering, so an orchestrator must
 * not restart it for that.
 *
 * The config struct is borrowed by the routes and must outlive the server. Thread-safe as
 * the registry is.
 */
#ifndef FERMATA_RESOURCE_ACTUATOR_H
#define FERMATA_RESOURCE_ACTUATOR_H

#include <jansson.h>
#include <stdbool.h>

#include "auth/auth.h"
#include "breaker/breaker.h"
#include "http/http.h"

typedef struct {
  breaker_registry *reg;
  bool register_health; /* registerHealthIndicator: show the component at all */
  bool open_is_down;    /* allowHealthIndicatorToFail: OPEN reports DOWN (service DOWN, 503) */
} actuator_breakers;

/* Registers the circuitbreakers and circuitbreakerevents routes; the state-changing POST is
 * guarded by `a` (fermata.admin; NULL: open). HTTP_OK or HTTP_ERR_*. */
int actuator_routes(http_server *srv, actuator_breakers *ab, auth *a);

/* Adds the "circuitBreakers" component to a health components object (nothing when
 * register_health is false or the registry is empty). */
void actuator_health_component(json_t *components, const actuator_breakers *ab);

/* The breakers' Prometheus lines; malloc'd, caller frees; NULL when out of memory. */
char *actuator_prometheus(const actuator_breakers *ab);

#endif
