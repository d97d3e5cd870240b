/*
 * breaker_env: the storageService breaker's configuration from environment variables named
 * after Spring's resilience4j properties, upper-cased with dots as underscores:
 *   resilience4j.circuitbreaker.instances.storageService.failureRateThreshold
 *   -> RESILIENCE4J_CIRCUITBREAKER_INSTANCES_STORAGESERVICE_FAILURERATETHRESHOLD
 * Defaults are this system's (see the README), not Resilience4j's: a window of 10 calls,
 * decisions from 5, a 10 s open state, 3 half-open probes, slow above 1.5 s (below the 2 s timeout, so timed-out calls are slow).
 */
#ifndef FERMATA_RESOURCE_BREAKER_ENV_H
#define FERMATA_RESOURCE_BREAKER_ENV_H

#include <stdbool.h>

#include "breaker/breaker.h"
#include "config/config.h"

#define BREAKER_ENV_PREFIX "RESILIENCE4J_CIRCUITBREAKER_INSTANCES_STORAGESERVICE_"

/* Fills cfg: Resilience4j defaults, then this system's, then the environment. Values that
 * are not numbers, durations or names are reported through err; values of the right type
 * but out of range are left for breaker_config_validate() (Resilience4j's messages), except
 * the two Spring-side checks Resilience4j's builder does not make (eventConsumerBufferSize,
 * exponentialBackoffMultiplier), reported through err with Spring's/IntervalFunction's
 * wording. */
void breaker_env_config(breaker_config *cfg, config_err *err);

/* Spring-only options of the health indicator. */
typedef struct {
  bool register_health; /* REGISTERHEALTHINDICATOR; ours true (Spring's false) */
  bool open_is_down;    /* ALLOWHEALTHINDICATORTOFAIL; false as in Resilience4j 2.x */
} breaker_env_health;

void breaker_env_health_config(breaker_env_health *h, config_err *err);

#endif
