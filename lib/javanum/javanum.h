/*
 * javanum: numbers printed the way the JVM prints them, for output that clients written
 * against a Java service compare as strings: Float.toString (lib/breaker's rates and its
 * validation messages, the actuator's "50.0%") and Double.toString (lib/breakerview's
 * Prometheus samples).
 *
 * Both give the shortest digits that read back as the same value (strtof / strtod), laid
 * out as Java does: plain notation with at least one digit on each side of the point for
 * 1e-3 <= |v| < 1e7 ("-1.0", "33.333332", "0.001", "9999999.0"), otherwise one digit, the
 * point, the rest and "E<exponent>" ("1.0E7", "1.0E-4"); "NaN", "Infinity", "-Infinity",
 * "0.0" and "-0.0" for the special values.
 *
 * Pure functions, thread-safe. They return what snprintf would (the full length, even when
 * len cuts the output short); the output fits in JAVANUM_MAX bytes.
 */
#ifndef FERMATA_JAVANUM_H
#define FERMATA_JAVANUM_H

#include <stddef.h>

#define JAVANUM_MAX 48 /* longest output plus its NUL, e.g. "-1.7976931348623157E308" */

/* Float.toString(v) into buf. */
int javanum_float(float v, char *buf, size_t len);
/* Double.toString(v) into buf. */
int javanum_double(double v, char *buf, size_t len);

#endif
