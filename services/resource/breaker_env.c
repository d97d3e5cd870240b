/* breaker_env: see breaker_env.h. */
#include "breaker_env.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *name(const char *opt, char *buf, size_t cap) {
  snprintf(buf, cap, "%s%s", BREAKER_ENV_PREFIX, opt);
  return buf;
}

static void fail(config_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keeps the first error only, as lib/config does. */
static void fail(config_err *err, const char *fmt, ...) {
  if (!err || err->msg[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
}

/* A state name as Spring binds an enum (any case). Any state is taken here: whether it is
 * allowed for the option is breaker_config_validate's call, with Resilience4j's message. */
static void state_opt(const char *opt, breaker_state *out, config_err *err) {
  char n[160];
  const char *v = config_str(name(opt, n, sizeof n), NULL);
  if (!v) return;
  for (int i = 0; i < BREAKER_STATE_COUNT; i++) {
    const char *sn = breaker_state_name((breaker_state)i);
    if (strcasecmp(v, sn) == 0) {
      *out = (breaker_state)i;
      return;
    }
  }
  fail(err, "%s='%s': not a circuit breaker state (CLOSED, OPEN, HALF_OPEN, DISABLED, FORCED_OPEN, METRICS_ONLY)", n,
       v);
}

void breaker_env_config(breaker_config *cfg, config_err *err) {
  char n[160];
  breaker_config_default(cfg);
  cfg->window_size = 10;
  cfg->minimum_calls = 5;
  cfg->wait_in_open_ms = 10000;
  cfg->permitted_calls_in_half_open = 3;
  /* below the 2 s call timeout: "slow" is strictly longer than the threshold, and a call
   * cut off by the timeout (2000 ms exactly) must count as slow too */
  cfg->slow_call_duration_threshold_ns = 1500LL * 1000000LL;
  cfg->automatic_transition = true;

  /* Wide ranges on purpose: a value of the right type reaches breaker_config_validate,
   * which refuses it with Resilience4j's own message. */
  cfg->failure_rate_threshold =
      (float)config_double(name("FAILURERATETHRESHOLD", n, sizeof n), cfg->failure_rate_threshold, -1e9, 1e9, err);
  cfg->slow_call_rate_threshold =
      (float)config_double(name("SLOWCALLRATETHRESHOLD", n, sizeof n), cfg->slow_call_rate_threshold, -1e9, 1e9, err);
  cfg->slow_call_duration_threshold_ns =
      config_duration_ms(name("SLOWCALLDURATIONTHRESHOLD", n, sizeof n),
                         cfg->slow_call_duration_threshold_ns / 1000000LL, 0, 86400000LL, err) *
      1000000LL;
  cfg->permitted_calls_in_half_open = (int32_t)config_int(name("PERMITTEDNUMBEROFCALLSINHALFOPENSTATE", n, sizeof n),
                                                          cfg->permitted_calls_in_half_open, -1000000, 1000000, err);
  cfg->max_wait_in_half_open_ms = config_duration_ms(name("MAXWAITDURATIONINHALFOPENSTATE", n, sizeof n),
                                                     cfg->max_wait_in_half_open_ms, 0, 86400000LL, err);
  state_opt("TRANSITIONTOSTATEAFTERWAITDURATION", &cfg->transition_after_wait, err);
  cfg->window_size =
      (int32_t)config_int(name("SLIDINGWINDOWSIZE", n, sizeof n), cfg->window_size, -1000000, 1000000, err);
  cfg->minimum_calls =
      (int32_t)config_int(name("MINIMUMNUMBEROFCALLS", n, sizeof n), cfg->minimum_calls, -1000000, 1000000, err);
  cfg->wait_in_open_ms =
      config_duration_ms(name("WAITDURATIONINOPENSTATE", n, sizeof n), cfg->wait_in_open_ms, 0, 86400000LL, err);
  cfg->automatic_transition =
      config_bool(name("AUTOMATICTRANSITIONFROMOPENTOHALFOPENENABLED", n, sizeof n), cfg->automatic_transition, err);
  state_opt("INITIALSTATE", &cfg->initial_state, err);
  cfg->exponential_backoff = config_bool(name("ENABLEEXPONENTIALBACKOFF", n, sizeof n), cfg->exponential_backoff, err);
  cfg->exponential_multiplier =
      config_double(name("EXPONENTIALBACKOFFMULTIPLIER", n, sizeof n), cfg->exponential_multiplier, -1e9, 1e9, err);
  if (cfg->exponential_backoff && cfg->exponential_multiplier < 1.0) {
    /* IntervalFunction.checkMultiplier refuses it when Spring builds the function */
    fail(err, "storageService circuit breaker: Illegal argument multiplier: %g", cfg->exponential_multiplier);
  }
  cfg->exponential_max_wait_ms = config_duration_ms(name("EXPONENTIALMAXWAITDURATIONINOPENSTATE", n, sizeof n),
                                                    cfg->exponential_max_wait_ms, 0, 86400000LL, err);
  cfg->randomized_wait = config_bool(name("ENABLERANDOMIZEDWAIT", n, sizeof n), cfg->randomized_wait, err);
  cfg->randomized_wait_factor =
      config_double(name("RANDOMIZEDWAITFACTOR", n, sizeof n), cfg->randomized_wait_factor, -1e9, 1e9, err);
  cfg->event_buffer_size =
      (int32_t)config_int(name("EVENTCONSUMERBUFFERSIZE", n, sizeof n), cfg->event_buffer_size, -1000000, 1000000, err);
  if (cfg->event_buffer_size < 1) /* Spring's InstanceProperties check, not the builder's */
    fail(err, "storageService circuit breaker: eventConsumerBufferSize must be greater than or equal to 1.");
  const char *wt = config_str(name("SLIDINGWINDOWTYPE", n, sizeof n), NULL);
  if (wt) {
    if (strcasecmp(wt, "COUNT_BASED") == 0)
      cfg->window_type = BREAKER_COUNT_BASED;
    else if (strcasecmp(wt, "TIME_BASED") == 0)
      cfg->window_type = BREAKER_TIME_BASED;
    else
      fail(err, "%s='%s': expected COUNT_BASED or TIME_BASED", n, wt);
  }
}

void breaker_env_health_config(breaker_env_health *h, config_err *err) {
  char n[160];
  h->register_health = config_bool(name("REGISTERHEALTHINDICATOR", n, sizeof n), true, err);
  h->open_is_down = config_bool(name("ALLOWHEALTHINDICATORTOFAIL", n, sizeof n), false, err);
}
