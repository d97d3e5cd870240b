/* breaker_env: see breaker_env.h. */
#include "breaker_env.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *name(const char *opt, char *buf, size_t cap) {
  snprintf(buf, cap, "%s%s", BREAKER_ENV_PREFIX, opt);
  return buf;
}

void breaker_env_config(breaker_config *cfg, config_err *err) {
  char n[160];
  breaker_config_default(cfg);
  cfg->window_size = 10;
  cfg->minimum_calls = 5;
  cfg->wait_in_open_ms = 10000;
  cfg->permitted_calls_in_half_open = 3;
  cfg->slow_call_duration_threshold_ns = 2000LL * 1000000LL;
  cfg->automatic_transition = true;

  cfg->failure_rate_threshold =
      (float)config_double(name("FAILURERATETHRESHOLD", n, sizeof n), cfg->failure_rate_threshold, -1e9, 1e9, err);
  cfg->slow_call_rate_threshold = (float)config_double(name("SLOWCALLRATETHRESHOLD", n, sizeof n),
                                                       cfg->slow_call_rate_threshold, -1e9, 1e9, err);
  cfg->slow_call_duration_threshold_ns =
      config_duration_ms(name("SLOWCALLDURATIONTHRESHOLD", n, sizeof n),
                         cfg->slow_call_duration_threshold_ns / 1000000LL, 0, 86400000LL, err) *
      1000000LL;
  cfg->permitted_calls_in_half_open = (int32_t)config_int(name("PERMITTEDNUMBEROFCALLSINHALFOPENSTATE", n, sizeof n),
                                                          cfg->permitted_calls_in_half_open, -1000000, 1000000, err);
  cfg->max_wait_in_half_open_ms = config_duration_ms(name("MAXWAITDURATIONINHALFOPENSTATE", n, sizeof n),
                                                     cfg->max_wait_in_half_open_ms, 0, 86400000LL, err);
  cfg->window_size =
      (int32_t)config_int(name("SLIDINGWINDOWSIZE", n, sizeof n), cfg->window_size, -1000000, 1000000, err);
  cfg->minimum_calls =
      (int32_t)config_int(name("MINIMUMNUMBEROFCALLS", n, sizeof n), cfg->minimum_calls, -1000000, 1000000, err);
  cfg->wait_in_open_ms =
      config_duration_ms(name("WAITDURATIONINOPENSTATE", n, sizeof n), cfg->wait_in_open_ms, 0, 86400000LL, err);
  cfg->automatic_transition = config_bool(name("AUTOMATICTRANSITIONFROMOPENTOHALFOPENENABLED", n, sizeof n),
                                          cfg->automatic_transition, err);
  cfg->exponential_backoff = config_bool(name("ENABLEEXPONENTIALBACKOFF", n, sizeof n), cfg->exponential_backoff, err);
  cfg->exponential_multiplier = config_double(name("EXPONENTIALBACKOFFMULTIPLIER", n, sizeof n),
                                              cfg->exponential_multiplier, 1.0, 100.0, err);
  cfg->exponential_max_wait_ms = config_duration_ms(name("EXPONENTIALMAXWAITDURATIONINOPENSTATE", n, sizeof n),
                                                    cfg->exponential_max_wait_ms, 0, 86400000LL, err);
  cfg->randomized_wait = config_bool(name("ENABLERANDOMIZEDWAIT", n, sizeof n), cfg->randomized_wait, err);
  cfg->randomized_wait_factor =
      config_double(name("RANDOMIZEDWAITFACTOR", n, sizeof n), cfg->randomized_wait_factor, 0.0, 1.0, err);
  cfg->event_buffer_size = (int32_t)config_int(name("EVENTCONSUMERBUFFERSIZE", n, sizeof n), cfg->event_buffer_size,
                                               1, 100000, err);
  const char *wt = config_str(name("SLIDINGWINDOWTYPE", n, sizeof n), NULL);
  if (wt) {
    if (strcasecmp(wt, "COUNT_BASED") == 0) cfg->window_type = BREAKER_COUNT_BASED;
    else if (strcasecmp(wt, "TIME_BASED") == 0) cfg->window_type = BREAKER_TIME_BASED;
    else if (err && !err->msg[0]) snprintf(err->msg, sizeof err->msg, "%s: expected COUNT_BASED or TIME_BASED", n);
  }
}
