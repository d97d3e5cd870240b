/*
 * config: typed reads of environment variables with defaults.
 *
 * Services call these once in main and keep the values in their own config struct; no
 * module reads the environment behind its caller's back. Each reader reports a bad value
 * (not a number, out of range) through `err` so main can refuse to start with a clear
 * message naming the variable instead of running with a surprising value.
 */
#ifndef FERMATA_CONFIG_H
#define FERMATA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
  char msg[256]; /* first error seen; empty when none */
} config_err;

/* The variable's value, or `def` when unset or empty. Borrowed: valid until the
 * environment changes (services never change it after start). */
const char *config_str(const char *name, const char *def);

/* Integer in [min, max]; `def` when unset. On a bad value records the error and returns def. */
long long config_int(const char *name, long long def, long long min, long long max, config_err *err);

/* Decimal number in [min, max]. */
double config_double(const char *name, double def, double min, double max, config_err *err);

/* true/false, 1/0, yes/no, on/off (any case). */
bool config_bool(const char *name, bool def, config_err *err);

/* An IPv4 address in dotted form ("127.0.0.1", "0.0.0.0"); `def` when unset. Borrowed like
 * config_str. For SERVER_ADDRESS, Spring's name for the address a server binds. */
const char *config_ipv4(const char *name, const char *def, config_err *err);

/* Parses a duration such as "250ms", "5s", "2m", "1h" or a bare number of milliseconds
 * into milliseconds (Spring's duration style). */
long long config_duration_ms(const char *name, long long def_ms, long long min_ms, long long max_ms, config_err *err);

/* Same parsers on a string, for callers that build names dynamically. Return 0 or -1. */
int config_parse_int(const char *s, long long *out);
int config_parse_duration_ms(const char *s, long long *out);

#endif
