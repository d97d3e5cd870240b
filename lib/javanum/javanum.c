/*
 * javanum: Float.toString and Double.toString (see javanum.h).
 *
 * Both start from the shortest "%.*e" that reads back as the value (9 significant digits
 * always suffice for a float, 17 for a double), take its mantissa digits (trailing zeros
 * dropped) and decimal exponent, and lay them out as Java does; the layout is shared.
 */
#include "javanum.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The special values both types print alike; 0 if v is none of them. */
static int special(double v, char *buf, size_t len) {
  if (isnan(v)) return snprintf(buf, len, "NaN");
  if (isinf(v)) return snprintf(buf, len, v > 0 ? "Infinity" : "-Infinity");
  if (v == 0.0) return snprintf(buf, len, signbit(v) ? "-0.0" : "0.0");
  return 0;
}

/* digits is "[-]d.ddde[+-]XX" (from %.*e); writes Java's layout of it into buf. */
static int layout(const char *digits, char *buf, size_t len) {
  const char *p = digits;
  bool neg = *p == '-';
  if (neg) p++;
  char mant[24];
  size_t nm = 0;
  for (; *p && *p != 'e'; p++)
    if (*p != '.' && nm < sizeof mant - 1) mant[nm++] = *p;
  mant[nm] = '\0';
  int exp10 = *p == 'e' ? atoi(p + 1) : 0;
  while (nm > 1 && mant[nm - 1] == '0') mant[--nm] = '\0';
  char out[JAVANUM_MAX + 16];
  size_t o = 0;
  if (neg) out[o++] = '-';
  if (exp10 >= -3 && exp10 < 7) {
    /* plain notation, at least one digit on each side of the point */
    if (exp10 < 0) {
      out[o++] = '0';
      out[o++] = '.';
      for (int i = -1; i > exp10; i--) out[o++] = '0';
      for (size_t i = 0; i < nm; i++) out[o++] = mant[i];
    } else {
      for (int i = 0; i <= exp10; i++) out[o++] = (size_t)i < nm ? mant[i] : '0';
      out[o++] = '.';
      if ((size_t)exp10 + 1 >= nm) out[o++] = '0';
      for (size_t i = (size_t)exp10 + 1; i < nm; i++) out[o++] = mant[i];
    }
    out[o] = '\0';
  } else {
    out[o++] = mant[0];
    out[o++] = '.';
    if (nm == 1) out[o++] = '0';
    for (size_t i = 1; i < nm; i++) out[o++] = mant[i];
    snprintf(out + o, sizeof out - o, "E%d", exp10);
  }
  return snprintf(buf, len, "%s", out);
}

int javanum_float(float v, char *buf, size_t len) {
  if (isnan(v) || isinf(v) || v == 0.0f) return special(v, buf, len);
  char digits[32];
  for (int prec = 0; prec < 9; prec++) {
    snprintf(digits, sizeof digits, "%.*e", prec, (double)v);
    if (strtof(digits, NULL) == v) break;
  }
  return layout(digits, buf, len);
}

int javanum_double(double v, char *buf, size_t len) {
  if (isnan(v) || isinf(v) || v == 0.0) return special(v, buf, len);
  char digits[40];
  for (int prec = 0; prec < 17; prec++) {
    snprintf(digits, sizeof digits, "%.*e", prec, v);
    if (strtod(digits, NULL) == v) break;
  }
  return layout(digits, buf, len);
}
