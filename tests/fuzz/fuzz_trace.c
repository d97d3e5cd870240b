/* Fuzzes lib/trace's header parsers (traceparent, tracestate, b3, X-B3-*): any bytes, no
 * crash, and whatever parses as valid must format and parse back to the same context. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace.h"

static void roundtrip(const trace_ctx *c) {
  if (!c->valid) return;
  char buf[64];
  trace_ctx back;
  if (trace_format_traceparent(c, buf, sizeof buf) != TRACE_OK) abort();
  if (trace_parse_traceparent(buf, &back) != TRACE_OK) abort();
  if (memcmp(back.trace_id, c->trace_id, 16) || memcmp(back.span_id, c->span_id, 8)) abort();
  if ((back.sampling == TRACE_SAMPLING_ACCEPT) != (c->sampling == TRACE_SAMPLING_ACCEPT)) abort();
  if (trace_format_b3(c, buf, sizeof buf) != TRACE_OK) abort();
  if (trace_parse_b3(buf, &back) != TRACE_OK || memcmp(back.trace_id, c->trace_id, 16)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* the input is up to five NUL-separated strings: the X-B3-* headers take one each */
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  trace_ctx c;
  if (trace_parse_traceparent(s, &c) == TRACE_OK) roundtrip(&c);
  if (trace_parse_b3(s, &c) == TRACE_OK) roundtrip(&c);
  trace_set_tracestate(&c, s);
  if (strlen(c.tracestate) > TRACE_STATE_MAX) abort();
  const char *parts[5] = {NULL};
  size_t at = 0;
  for (int i = 0; i < 5 && at <= size; i++) {
    parts[i] = s + at;
    at += strlen(s + at) + 1;
  }
  if (trace_parse_b3_multi(parts[0], parts[1], parts[2], parts[3], parts[4], &c) == TRACE_OK) roundtrip(&c);
  free(s);
  return 0;
}
