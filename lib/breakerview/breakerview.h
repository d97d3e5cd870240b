/*
 * breakerview: renders a breaker_registry in the shapes Spring Boot's actuator gives
 * Resilience4j 2.4.0 (resilience4j-spring-boot3 endpoints, resilience4j-micrometer meters),
 * so dashboards and scripts written for a Java service read ours unchanged:
 *
 *   GET  /actuator/circuitbreakers                  breakerview_circuitbreakers_json()
 *   POST /actuator/circuitbreakers/{name}           breakerview_update_state()
 *   GET  /actuator/circuitbreakerevents[/{name}[/{eventType}]]  breakerview_events_json()
 *   GET  /actuator/health (component per breaker)   breakerview_health_json()
 *   GET  /actuator/prometheus (resilience4j_* lines) breakerview_prometheus()
 *
 * No HTTP here: handlers map the request to one call and send the returned body with the
 * returned status. Every returned char * is malloc'd, NUL-terminated, owned by the caller
 * (free()); NULL means out of memory. Thread-safe as the registry and breakers are; each
 * breaker is read under its own lock (views of several breakers are not one snapshot).
 */
#ifndef FERMATA_BREAKERVIEW_H
#define FERMATA_BREAKERVIEW_H

#include <stdbool.h>

#include "breaker/breaker.h"

/* {"circuitBreakers":{"<name>":{"failureRate":"-1.0%",...,"state":"CLOSED"},...}}, by name. */
char *breakerview_circuitbreakers_json(breaker_registry *r);

/* POST body {"updateState":"CLOSE"|"FORCE_OPEN"|"DISABLE"}. *status: 200 with
 * {"circuitBreakerName":..,"currentState":..,"message":"<name> state has been changed
 * successfully"}; 400 for a body that is not one of those (JSON error message); 404 for an
 * unknown breaker. */
char *breakerview_update_state(breaker_registry *r, const char *name, const char *body, int *status);

/* {"circuitBreakerEvents":[...]} from each breaker's event ring. name NULL = all breakers
 * (merged by creation time), event_type NULL = all types (case-insensitive, e.g. "error").
 * *status: 200, or 400 for an unknown event type. An unknown name gives an empty list. */
char *breakerview_events_json(breaker_registry *r, const char *name, const char *event_type, int *status);

/* Health of one breaker: {"status":"UP","details":{"failureRate":"-1.0%",...,"state":"CLOSED"}}.
 * CLOSED UP; OPEN CIRCUIT_OPEN (DOWN if open_is_down); HALF_OPEN CIRCUIT_HALF_OPEN;
 * DISABLED, FORCED_OPEN, METRICS_ONLY UNKNOWN. *up (may be NULL) is false only for DOWN. */
char *breakerview_health_json(breaker *b, bool open_is_down, bool *up);
/* Status word alone, static string. */
const char *breakerview_health_status(breaker_state s, bool open_is_down);

/* Prometheus text exposition (version 0.0.4) of every breaker's resilience4j_* meters. */
char *breakerview_prometheus(breaker_registry *r);

/* "2023-11-14T22:13:20.123456Z": Java's ZonedDateTime.toString() in UTC (fraction printed
 * in groups of 3 digits as needed, microsecond precision). Returns snprintf's length. */
int breakerview_format_time(long long epoch_ns, char *buf, size_t len);

#endif
