/* range: see range.h. */
#include "range.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* Reads 1..19 decimal digits (so no overflow); returns chars consumed or 0. */
static int read_num(const char *p, uint64_t *out) {
  uint64_t v = 0;
  int n = 0;
  while (p[n] >= '0' && p[n] <= '9') {
    if (n == 19) return 0;
    v = v * 10 + (uint64_t)(p[n] - '0');
    n++;
  }
  *out = v;
  return n;
}

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t') p++;
  return p;
}

range_result range_parse(const char *header, uint64_t size, uint64_t *first, uint64_t *last) {
  if (!header) return RANGE_NONE;
  const char *p = skip_ws(header);
  if (strncasecmp(p, "bytes", 5) != 0) return RANGE_NONE;
  p = skip_ws(p + 5);
  if (*p != '=') return RANGE_NONE;
  p = skip_ws(p + 1);
  if (strchr(p, ',')) return RANGE_NONE; /* several ranges: served whole */
  uint64_t a = 0, b = 0;
  bool has_a = false, has_b = false;
  int n = read_num(p, &a);
  if (n) has_a = true, p += n;
  p = skip_ws(p);
  if (*p != '-') return RANGE_NONE;
  p = skip_ws(p + 1);
  n = read_num(p, &b);
  if (n) has_b = true, p += n;
  p = skip_ws(p);
  if (*p != '\0') return RANGE_NONE;
  if (!has_a && !has_b) return RANGE_NONE;
  if (has_a && has_b && b < a) return RANGE_NONE; /* invalid: ignored per RFC */
  if (!has_a) {                                   /* suffix: the last b bytes */
    if (b == 0 || size == 0) return RANGE_UNSATISFIABLE;
    *first = b >= size ? 0 : size - b;
    *last = size - 1;
    return RANGE_PARTIAL;
  }
  if (a >= size) return RANGE_UNSATISFIABLE;
  *first = a;
  *last = (!has_b || b >= size) ? size - 1 : b;
  return RANGE_PARTIAL;
}
