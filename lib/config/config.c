/* config: see config.h. */
#include "config.h"

#include <arpa/inet.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void set_err(config_err *err, const char *name, const char *value, const char *why) {
  if (err && !err->msg[0]) snprintf(err->msg, sizeof err->msg, "%s='%s': %s", name, value, why);
}

const char *config_str(const char *name, const char *def) {
  const char *v = getenv(name);
  return (v && *v) ? v : def;
}

int config_parse_int(const char *s, long long *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || end == s) return -1;
  *out = v;
  return 0;
}

long long config_int(const char *name, long long def, long long min, long long max, config_err *err) {
  const char *v = config_str(name, NULL);
  if (!v) return def;
  long long n;
  if (config_parse_int(v, &n) != 0) {
    set_err(err, name, v, "not an integer");
    return def;
  }
  if (n < min || n > max) {
    char why[96];
    snprintf(why, sizeof why, "must be between %lld and %lld", min, max);
    set_err(err, name, v, why);
    return def;
  }
  return n;
}

double config_double(const char *name, double def, double min, double max, config_err *err) {
  const char *v = config_str(name, NULL);
  if (!v) return def;
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (errno || *end || end == v || !isfinite(d)) {
    set_err(err, name, v, "not a number");
    return def;
  }
  if (d < min || d > max) {
    char why[96];
    snprintf(why, sizeof why, "must be between %g and %g", min, max);
    set_err(err, name, v, why);
    return def;
  }
  return d;
}

bool config_bool(const char *name, bool def, config_err *err) {
  const char *v = config_str(name, NULL);
  if (!v) return def;
  static const char *const yes[] = {"true", "1", "yes", "on"}, *const no[] = {"false", "0", "no", "off"};
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(v, yes[i]) == 0) return true;
    if (strcasecmp(v, no[i]) == 0) return false;
  }
  set_err(err, name, v, "not a boolean (true/false)");
  return def;
}

const char *config_ipv4(const char *name, const char *def, config_err *err) {
  const char *v = config_str(name, NULL);
  if (!v) return def;
  struct in_addr a;
  if (inet_pton(AF_INET, v, &a) == 1) return v;
  set_err(err, name, v, "not an IPv4 address (e.g. 127.0.0.1 or 0.0.0.0)");
  return def;
}

int config_parse_duration_ms(const char *s, long long *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || v < 0) return -1;
  long long mul;
  if (!*end || strcmp(end, "ms") == 0)
    mul = 1;
  else if (strcmp(end, "s") == 0)
    mul = 1000;
  else if (strcmp(end, "m") == 0)
    mul = 60000;
  else if (strcmp(end, "h") == 0)
    mul = 3600000;
  else
    return -1;
  if (v > (long long)9e15 / mul) return -1;
  *out = v * mul;
  return 0;
}

long long config_duration_ms(const char *name, long long def_ms, long long min_ms, long long max_ms, config_err *err) {
  const char *v = config_str(name, NULL);
  if (!v) return def_ms;
  long long ms;
  if (config_parse_duration_ms(v, &ms) != 0) {
    set_err(err, name, v, "not a duration (e.g. 500ms, 5s, 2m)");
    return def_ms;
  }
  if (ms < min_ms || ms > max_ms) {
    char why[96];
    snprintf(why, sizeof why, "must be between %lldms and %lldms", min_ms, max_ms);
    set_err(err, name, v, why);
    return def_ms;
  }
  return ms;
}
