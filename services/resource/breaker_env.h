/*
 * breaker_env: the storageService breaker's configuration from environment variables named
 * after Spring's resilience4j properties, upper-cased with dots as underscores:
 *   resilience4j.circuitbreaker.instances.storageService.failureRateThreshold
 *   -> RESILIENCE4J_CIRCUITBREAKER_INSTANCES_STORAGESERVICE_FAILURERATETHRESHOLD
 * Defaults are this system's (see the README), not Resilience4j's: a window of 10 calls,
 * decisions from 5, a 10 s open state, 3 half-open probes, slow above the 2 s timeout.
 */
#ifndef FERMATA_RESOURCE_BREAKER_ENV_H
#define FERMATA_RESOURCE_BREAKER_ENV_H

#include "breaker.h"
#include "config.h"

#define BREAKER_ENV_PREFIX "RESILIENCE4J_CIRCUITBREAKER_INSTANCES_STORAGESERVICE_"

/* Fills cfg: Resilience4j defaults, then this system's, then the environment. Bad values
 * are reported through err. */
void breaker_env_config(breaker_config *cfg, config_err *err);

#endif
