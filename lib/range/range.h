/*
 * range: the HTTP Range request header (RFC 9110, section 14) for single byte ranges.
 *
 * range_parse() decides, for an object of known size, whether to answer 200 with the
 * whole object, 206 with one range, or 416. As the RFC allows, a header we do not serve is
 * ignored (200): another unit, several ranges, or a syntactically invalid one. Pure, no
 * allocation, thread-safe; it is fed untrusted input and fuzzed.
 */
#ifndef FERMATA_RANGE_H
#define FERMATA_RANGE_H

#include <stdint.h>

typedef enum {
  RANGE_NONE = 0,     /* no (usable) Range: send everything with 200 */
  RANGE_PARTIAL,      /* send [first, last] with 206 */
  RANGE_UNSATISFIABLE /* 416 with Content-Range: bytes * /size */
} range_result;

/* header may be NULL. On RANGE_PARTIAL, *first and *last (inclusive) are within
 * [0, size-1]. An empty object can satisfy no range. */
range_result range_parse(const char *header, uint64_t size, uint64_t *first, uint64_t *last);

#endif
