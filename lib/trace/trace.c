/*
 * trace: the wire formats, ids, sampling and span bookkeeping (see trace.h). Parsing works
 * on fixed positions and lengths and checks every character, so nothing here can read past
 * a string's end or accept a malformed id; the formats' own rules are quoted where they are
 * applied.
 */
#include "trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct trace_tracer {
  char service[TRACE_SERVICE_MAX];
  double probability;
  uint64_t threshold; /* sample when the trace id's low 64 bits are below it */
  bool all;           /* probability 1: sample everything */
  trace_export_fn export;
  void *ud;
};

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1; /* uppercase is refused: both formats say lowercase */
}

/* Exactly 2n lowercase hex digits at s (s may be shorter: the NUL stops it). */
static bool unhex(const char *s, size_t n, uint8_t *out) {
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(s[2 * i]);
    if (hi < 0) return false;
    int lo = hexval(s[2 * i + 1]);
    if (lo < 0) return false;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return true;
}

static bool all_zero(const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (b[i]) return false;
  return true;
}

void trace_hex(const uint8_t *bytes, size_t n, char *buf) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    buf[2 * i] = digits[bytes[i] >> 4];
    buf[2 * i + 1] = digits[bytes[i] & 15];
  }
  buf[2 * n] = '\0';
}

static void ctx_clear(trace_ctx *out) { memset(out, 0, sizeof *out); }

/* W3C: version-traceid-parentid-flags. Version 00 is exactly 55 characters; a higher
 * version may append fields after a '-', which we ignore; version ff is invalid. */
int trace_parse_traceparent(const char *s, trace_ctx *out) {
  ctx_clear(out);
  if (!s) return TRACE_ERR_INVALID;
  uint8_t version, flags;
  size_t len = strnlen(s, TRACEPARENT_LEN + 1);
  if (len < TRACEPARENT_LEN || !unhex(s, 1, &version) || version == 0xff || s[2] != '-' ||
      !unhex(s + 3, 16, out->trace_id) || s[35] != '-' || !unhex(s + 36, 8, out->span_id) || s[52] != '-' ||
      !unhex(s + 53, 1, &flags))
    goto bad;
  if (version == 0 && len != TRACEPARENT_LEN) goto bad;
  if (len > TRACEPARENT_LEN && s[TRACEPARENT_LEN] != '-') goto bad;
  if (all_zero(out->trace_id, 16) || all_zero(out->span_id, 8)) goto bad;
  out->valid = true;
  out->sampling = (flags & 1) ? TRACE_SAMPLING_ACCEPT : TRACE_SAMPLING_DENY;
  return TRACE_OK;
bad:
  ctx_clear(out);
  return TRACE_ERR_INVALID;
}

/* A B3 trace id: 16 or 32 lowercase hex digits, widened to 16 bytes. Returns the number
 * of characters used, 0 when invalid. `end` must follow the id. */
static size_t b3_trace_id(const char *s, const char *ends, uint8_t *out) {
  memset(out, 0, 16);
  size_t n = 0;
  while (n <= 32 && s[n] && !strchr(ends, s[n])) n++;
  if (n == 32 && unhex(s, 16, out)) return n;
  if (n == 16 && unhex(s, 8, out + 8)) return n;
  return 0;
}

static int b3_sampling(const char *s, size_t n, trace_sampling *out) {
  if (n != 1) return TRACE_ERR_INVALID;
  switch (s[0]) {
  case '1':
  case 'd': *out = TRACE_SAMPLING_ACCEPT; return TRACE_OK;
  case '0': *out = TRACE_SAMPLING_DENY; return TRACE_OK;
  default: return TRACE_ERR_INVALID;
  }
}

/* B3 single: {TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]], or {SamplingState}. */
int trace_parse_b3(const char *s, trace_ctx *out) {
  ctx_clear(out);
  if (!s) return TRACE_ERR_INVALID;
  size_t len = strnlen(s, TRACE_B3_LEN + 18);
  if (len == 1) {
    if (b3_sampling(s, 1, &out->sampling) != TRACE_OK) goto bad;
    return TRACE_OK;
  }
  size_t n = b3_trace_id(s, "-", out->trace_id);
  if (!n || s[n] != '-') goto bad;
  const char *p = s + n + 1;
  if (!unhex(p, 8, out->span_id)) goto bad;
  p += 16;
  if (*p == '-') {
    const char *st = p + 1;
    size_t sn = strcspn(st, "-");
    if (b3_sampling(st, sn, &out->sampling) != TRACE_OK) goto bad;
    p = st + sn;
    if (*p == '-') {
      uint8_t parent[8];
      if (!unhex(p + 1, 8, parent) || p[17] != '\0' || all_zero(parent, 8)) goto bad;
      p += 17;
    }
  }
  if (*p != '\0' || all_zero(out->trace_id, 16) || all_zero(out->span_id, 8)) goto bad;
  out->valid = true;
  return TRACE_OK;
bad:
  ctx_clear(out);
  return TRACE_ERR_INVALID;
}

int trace_parse_b3_multi(const char *trace_id, const char *span_id, const char *sampled, const char *flags,
                         const char *parent_span_id, trace_ctx *out) {
  ctx_clear(out);
  trace_sampling sampling = TRACE_SAMPLING_DEFER;
  if (flags && strcmp(flags, "1") == 0) {
    sampling = TRACE_SAMPLING_ACCEPT; /* debug */
  } else if (sampled) {
    if (strcmp(sampled, "1") == 0 || strcmp(sampled, "true") == 0)
      sampling = TRACE_SAMPLING_ACCEPT;
    else if (strcmp(sampled, "0") == 0 || strcmp(sampled, "false") == 0)
      sampling = TRACE_SAMPLING_DENY;
    else
      return TRACE_ERR_INVALID;
  }
  if (!trace_id && !span_id) {
    if (sampling == TRACE_SAMPLING_DEFER) return TRACE_ERR_INVALID;
    out->sampling = sampling;
    return TRACE_OK;
  }
  if (!trace_id || !span_id) return TRACE_ERR_INVALID;
  size_t n = b3_trace_id(trace_id, "", out->trace_id);
  if (!n || trace_id[n] != '\0' || strlen(span_id) != 16 || !unhex(span_id, 8, out->span_id)) goto bad;
  if (parent_span_id) {
    uint8_t parent[8];
    if (strlen(parent_span_id) != 16 || !unhex(parent_span_id, 8, parent)) goto bad;
  }
  if (all_zero(out->trace_id, 16) || all_zero(out->span_id, 8)) goto bad;
  out->valid = true;
  out->sampling = sampling;
  return TRACE_OK;
bad:
  ctx_clear(out);
  return TRACE_ERR_INVALID;
}

void trace_set_tracestate(trace_ctx *ctx, const char *s) {
  ctx->tracestate[0] = '\0';
  if (!s) return;
  size_t len = strnlen(s, TRACE_STATE_MAX + 1);
  if (len > TRACE_STATE_MAX) return;
  unsigned members = 1;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c > 0x7e) return;
    if (c == ',') members++;
  }
  if (members > 32) return;
  memcpy(ctx->tracestate, s, len + 1);
}

void trace_extract(trace_header_fn get, void *ud, trace_ctx *out) {
  ctx_clear(out);
  if (!get) return;
  if (trace_parse_traceparent(get(ud, "traceparent"), out) == TRACE_OK) {
    trace_set_tracestate(out, get(ud, "tracestate"));
    return;
  }
  if (trace_parse_b3(get(ud, "b3"), out) == TRACE_OK) return;
  if (trace_parse_b3_multi(get(ud, "X-B3-TraceId"), get(ud, "X-B3-SpanId"), get(ud, "X-B3-Sampled"),
                           get(ud, "X-B3-Flags"), get(ud, "X-B3-ParentSpanId"), out) == TRACE_OK)
    return;
  ctx_clear(out);
}

/* Writes the ids in one of the two layouts: `prefix` trace "-" span "-" flag. */
static int format_ids(const trace_ctx *ctx, char *buf, size_t size, size_t len, const char *prefix, const char *yes,
                      const char *no) {
  if (!ctx || !ctx->valid) return TRACE_ERR_INVALID;
  if (size <= len) return TRACE_ERR_SPACE;
  char tid[TRACE_ID_HEX], sid[TRACE_SPAN_ID_HEX];
  trace_hex(ctx->trace_id, 16, tid);
  trace_hex(ctx->span_id, 8, sid);
  snprintf(buf, size, "%s%s-%s-%s", prefix, tid, sid, ctx->sampling == TRACE_SAMPLING_ACCEPT ? yes : no);
  return TRACE_OK;
}

int trace_format_traceparent(const trace_ctx *ctx, char *buf, size_t size) {
  return format_ids(ctx, buf, size, TRACEPARENT_LEN, "00-", "01", "00");
}

int trace_format_b3(const trace_ctx *ctx, char *buf, size_t size) {
  return format_ids(ctx, buf, size, TRACE_B3_LEN, "", "1", "0");
}

const char *trace_log_field(const trace_ctx *ctx, char *buf) {
  buf[0] = '\0';
  if (!ctx || !ctx->valid) return buf;
  memcpy(buf, " trace_id=", 10);
  trace_hex(ctx->trace_id, 16, buf + 10);
  return buf;
}

int trace_random(void *buf, size_t n) {
  uint8_t *p = buf;
  while (n > 0) {
    ssize_t got = getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return TRACE_ERR_INVALID;
    }
    p += got;
    n -= (size_t)got;
  }
  return TRACE_OK;
}

int trace_probability_parse(const char *s, double *out) {
  if (!s || !*s) return TRACE_ERR_INVALID;
  char *end;
  errno = 0;
  double p = strtod(s, &end);
  if (errno || *end || !(p >= 0.0 && p <= 1.0)) return TRACE_ERR_INVALID; /* also NaN */
  *out = p;
  return TRACE_OK;
}

trace_tracer *trace_tracer_new(const char *service, double probability, trace_export_fn export, void *ud) {
  if (!(probability >= 0.0 && probability <= 1.0)) return NULL;
  trace_tracer *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  snprintf(t->service, sizeof t->service, "%s", service ? service : "");
  t->probability = probability;
  t->all = probability >= 1.0;
  /* p * 2^64, below 2^64 since p < 1 here */
  t->threshold = t->all ? UINT64_MAX : (uint64_t)(probability * 18446744073709551616.0);
  t->export = export;
  t->ud = ud;
  return t;
}

void trace_tracer_free(trace_tracer *t) { free(t); }

const char *trace_tracer_service(const trace_tracer *t) { return t ? t->service : ""; }

static int64_t now_us(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool decide(const trace_tracer *t, const uint8_t trace_id[16]) {
  if (t->all) return true;
  uint64_t low = 0;
  for (int i = 8; i < 16; i++) low = low << 8 | trace_id[i];
  return low < t->threshold;
}

/* A fresh non-zero id (the formats reserve all zeros for "invalid"). */
static bool fresh_id(uint8_t *id, size_t n) {
  for (int tries = 0; tries < 4; tries++) {
    if (trace_random(id, n) != TRACE_OK) return false;
    if (!all_zero(id, n)) return true;
  }
  return false;
}

void trace_span_start(const trace_tracer *t, trace_span *s, const trace_ctx *parent, const char *name,
                      trace_kind kind) {
  memset(s, 0, offsetof(trace_span, tags)); /* the tags need no clearing: ntags says */
  s->ntags = 0;
  s->tracestate[0] = '\0';
  s->kind = kind;
  snprintf(s->name, sizeof s->name, "%s", name ? name : "");
  if (!t) return;
  trace_sampling sampling = TRACE_SAMPLING_DEFER;
  if (parent && parent->valid) {
    memcpy(s->trace_id, parent->trace_id, 16);
    memcpy(s->parent_id, parent->span_id, 8);
    s->has_parent = true;
    memcpy(s->tracestate, parent->tracestate, sizeof s->tracestate);
    sampling = parent->sampling;
  } else {
    if (parent) sampling = parent->sampling; /* a lone B3 decision */
    if (!fresh_id(s->trace_id, 16)) return;
  }
  if (!fresh_id(s->span_id, 8)) return;
  s->valid = true;
  s->sampled = sampling == TRACE_SAMPLING_DEFER ? decide(t, s->trace_id) : sampling == TRACE_SAMPLING_ACCEPT;
  s->start_us = now_us(CLOCK_REALTIME);
  s->mono_start_us = now_us(CLOCK_MONOTONIC);
}

void trace_span_start_message(const trace_tracer *t, trace_span *s, const char *traceparent, bool always,
                              const char *name, trace_kind kind, const char *destination) {
  trace_ctx in;
  trace_parse_traceparent(traceparent, &in);
  trace_span_start(in.valid || always ? t : NULL, s, &in, name, kind);
  trace_span_remote(s, "rabbitmq", NULL, 0);
  trace_span_tag(s, "messaging.destination", destination);
}

static void copy_trunc(char *dst, size_t size, const char *src) { snprintf(dst, size, "%s", src); }

void trace_span_tag(trace_span *s, const char *key, const char *value) {
  if (!s->valid || !key || !value) return;
  for (size_t i = 0; i < s->ntags; i++) {
    if (strncmp(s->tags[i].key, key, sizeof s->tags[i].key - 1) == 0) { /* a tag set again is replaced */
      copy_trunc(s->tags[i].value, sizeof s->tags[i].value, value);
      return;
    }
  }
  if (s->ntags >= TRACE_TAGS_MAX) return;
  copy_trunc(s->tags[s->ntags].key, sizeof s->tags[s->ntags].key, key);
  copy_trunc(s->tags[s->ntags].value, sizeof s->tags[s->ntags].value, value);
  s->ntags++;
}

void trace_span_remote(trace_span *s, const char *service, const char *ip, uint16_t port) {
  if (service) copy_trunc(s->remote_service, sizeof s->remote_service, service);
  if (ip) copy_trunc(s->remote_ip, sizeof s->remote_ip, ip);
  s->remote_port = port;
}

void trace_span_fail(trace_span *s, const char *msg) {
  s->error = true;
  trace_span_tag(s, "error", msg && *msg ? msg : "true");
}

void trace_span_end(const trace_tracer *t, trace_span *s) {
  if (!t || !s->valid) return;
  int64_t d = now_us(CLOCK_MONOTONIC) - s->mono_start_us;
  s->duration_us = d > 0 ? d : 1;
  if (s->sampled && t->export) t->export(t->ud, s);
}

void trace_span_ctx(const trace_span *s, trace_ctx *out) {
  ctx_clear(out);
  if (!s->valid) return;
  memcpy(out->trace_id, s->trace_id, 16);
  memcpy(out->span_id, s->span_id, 8);
  out->valid = true;
  out->sampling = s->sampled ? TRACE_SAMPLING_ACCEPT : TRACE_SAMPLING_DENY;
  memcpy(out->tracestate, s->tracestate, sizeof out->tracestate);
}

const char *trace_span_trace_id(const trace_span *s, char *buf) {
  if (!s->valid) {
    buf[0] = '\0';
    return buf;
  }
  trace_hex(s->trace_id, 16, buf);
  return buf;
}

int trace_span_traceparent(const trace_span *s, char *buf, size_t size) {
  trace_ctx c;
  trace_span_ctx(s, &c);
  return trace_format_traceparent(&c, buf, size);
}
