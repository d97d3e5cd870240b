/*
 * breaker.c: the base of lib/breaker, which the other files build on and which calls none
 * of them: Resilience4j's defaults, its validation (same checks in the same order, same
 * messages), the names of states and event types, Java's float formatting (lib/javanum)
 * and this system's classification of HTTP calls.
 *
 * Files, from the bottom up: this one; breaker_window.c (the sliding windows),
 * breaker_events.c (publishing events), breaker_stripe.c (the fast path's per-thread
 * counters); breaker_state.c (the state machine: entry points, fast path, transitions,
 * lifecycle; its top comment is the design); breaker_read.c (the reads) and
 * breaker_registry.c (the registry). breaker_internal.h is what they share. Calls go
 * from a file to files below it only.
 */
#include "breaker.h"
#include "breaker_internal.h"

#include <stdio.h>
#include <string.h>

#include "javanum/javanum.h"

/* ---- names, config, lifecycle --------------------------------------------------- */

static const char *const state_names[BREAKER_STATE_COUNT] = {"CLOSED",   "OPEN",        "HALF_OPEN",
                                                             "DISABLED", "FORCED_OPEN", "METRICS_ONLY"};
static const char *const event_names[BREAKER_EVENT_TYPE_COUNT] = {
    "SUCCESS",          "ERROR", "IGNORED_ERROR",         "NOT_PERMITTED",
    "STATE_TRANSITION", "RESET", "FAILURE_RATE_EXCEEDED", "SLOW_CALL_RATE_EXCEEDED"};

const char *breaker_state_name(breaker_state s) {
  return (unsigned)s < BREAKER_STATE_COUNT ? state_names[s] : "UNKNOWN";
}

const char *breaker_event_type_name(breaker_event_type t) {
  return (unsigned)t < BREAKER_EVENT_TYPE_COUNT ? event_names[t] : "UNKNOWN";
}

int breaker_state_parse(const char *s, breaker_state *out) {
  for (int i = 0; s && i < BREAKER_STATE_COUNT; i++)
    if (strcmp(s, state_names[i]) == 0) {
      *out = (breaker_state)i;
      return BREAKER_OK;
    }
  return BREAKER_ERR_INVALID;
}

int breaker_event_type_parse(const char *s, breaker_event_type *out) {
  for (int i = 0; s && i < BREAKER_EVENT_TYPE_COUNT; i++)
    if (strcmp(s, event_names[i]) == 0) {
      *out = (breaker_event_type)i;
      return BREAKER_OK;
    }
  return BREAKER_ERR_INVALID;
}

int breaker_format_float(float v, char *buf, size_t len) { return javanum_float(v, buf, len); }

breaker_outcome breaker_classify_http(int http_status, bool transport_error, bool timed_out) {
  if (transport_error || timed_out || http_status >= 500 || http_status <= 0) return BREAKER_FAILURE;
  return BREAKER_SUCCESS;
}

void breaker_config_default(breaker_config *c) {
  memset(c, 0, sizeof *c);
  c->failure_rate_threshold = 50.0f;
  c->slow_call_rate_threshold = 100.0f;
  c->slow_call_duration_threshold_ns = 60 * NS_PER_S;
  c->permitted_calls_in_half_open = 10;
  c->max_wait_in_half_open_ms = 0;
  c->transition_after_wait = BREAKER_OPEN;
  c->window_type = BREAKER_COUNT_BASED;
  c->window_size = 100;
  c->minimum_calls = 100;
  c->wait_in_open_ms = 60000;
  c->exponential_backoff = false;
  c->exponential_multiplier = 1.5;
  c->exponential_max_wait_ms = 0;
  c->randomized_wait = false;
  c->randomized_wait_factor = 0.5;
  c->automatic_transition = false;
  c->initial_state = BREAKER_CLOSED;
  c->event_buffer_size = 100;
}

int breaker__invalid(char *msg, size_t len, const char *text) {
  if (msg && len) snprintf(msg, len, "%s", text);
  return BREAKER_ERR_INVALID;
}

/* Checks in the order Resilience4j's builder meets them; messages are its own. */
int breaker_config_validate(const breaker_config *c, char *msg, size_t len) {
  char num[48], text[160];
  if (!(c->failure_rate_threshold > 0 && c->failure_rate_threshold <= 100)) {
    breaker_format_float(c->failure_rate_threshold, num, sizeof num);
    snprintf(text, sizeof text, "failureRateThreshold must be greater than 0 and lower than 100, but was %s", num);
    return breaker__invalid(msg, len, text);
  }
  if (!(c->slow_call_rate_threshold > 0 && c->slow_call_rate_threshold <= 100)) {
    breaker_format_float(c->slow_call_rate_threshold, num, sizeof num);
    snprintf(text, sizeof text, "slowCallRateThreshold must be greater than 0 and not greater than 100, but was %s",
             num);
    return breaker__invalid(msg, len, text);
  }
  if (c->wait_in_open_ms < 1) return breaker__invalid(msg, len, "waitDurationInOpenState must be at least 1[ms]");
  if (c->slow_call_duration_threshold_ns < 1)
    return breaker__invalid(msg, len, "slowCallDurationThreshold must be at least 1[ns]");
  if (c->max_wait_in_half_open_ms < 0)
    return breaker__invalid(msg, len, "maxWaitDurationInHalfOpenState must be greater than or equal to 0[ms]");
  if (c->transition_after_wait != BREAKER_OPEN && c->transition_after_wait != BREAKER_CLOSED)
    return breaker__invalid(msg, len, "transitionToStateAfterWaitDuration must be either OPEN or CLOSED");
  if (c->permitted_calls_in_half_open < 1)
    return breaker__invalid(msg, len, "permittedNumberOfCallsInHalfOpenState must be greater than 0");
  if (c->window_size < 1) return breaker__invalid(msg, len, "slidingWindowSize must be greater than 0");
  if (c->minimum_calls < 1) return breaker__invalid(msg, len, "minimumNumberOfCalls must be greater than 0");
  if (c->window_type != BREAKER_COUNT_BASED && c->window_type != BREAKER_TIME_BASED)
    return breaker__invalid(msg, len, "slidingWindowType must be COUNT_BASED or TIME_BASED");
  if ((unsigned)c->initial_state >= BREAKER_STATE_COUNT)
    return breaker__invalid(msg, len, "initialState is not a state");
  if (c->exponential_backoff && c->exponential_max_wait_ms < 0) {
    snprintf(text, sizeof text, "Illegal argument interval: %lld millis is less than 1",
             (long long)c->exponential_max_wait_ms);
    return breaker__invalid(msg, len, text);
  }
  if (c->randomized_wait && !(c->randomized_wait_factor >= 0.0 && c->randomized_wait_factor <= 1.0)) {
    snprintf(text, sizeof text, "Illegal argument randomizationFactor: %g", c->randomized_wait_factor);
    return breaker__invalid(msg, len, text);
  }
  if (c->exponential_backoff && !(c->exponential_multiplier > 0.0))
    return breaker__invalid(msg, len, "exponentialBackoffMultiplier must be greater than 0");
  if (c->event_buffer_size < 0) return breaker__invalid(msg, len, "eventConsumerBufferSize must be at least 0");
  return BREAKER_OK;
}
