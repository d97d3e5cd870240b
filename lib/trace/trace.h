/*
 * trace: distributed-trace context and spans (the W3C Trace Context and B3 wire formats,
 * ids, sampling, the span record handed to an exporter).
 *
 * Context. A trace_ctx is what crosses a process boundary: the 128-bit trace id, the
 * sender's 64-bit span id (our parent), the sampling decision and W3C `tracestate`
 * (kept verbatim, passed on). Incoming requests are read with trace_extract, which tries,
 * in order, `traceparent` (+ `tracestate`), the single `b3` header, then the multi-header
 * X-B3-TraceId / X-B3-SpanId / X-B3-Sampled / X-B3-Flags / X-B3-ParentSpanId. Parsing is
 * strict (lowercase hex, exact lengths, no all-zero ids, W3C version ff refused): input that
 * does not follow the format is ignored as if absent, and the request starts a new trace.
 * A B3 header that carries only a sampling decision ("0", "1", "d") gives no ids but that
 * decision. Outgoing calls carry `traceparent` (trace_format_traceparent) and, when there
 * was one, `tracestate`; trace_format_b3 writes the single b3 header for peers that need it.
 * B3's 64-bit trace ids are widened to 128 bits with leading zeros, as B3 itself does.
 *
 * Spans. trace_span_start fills a caller-owned trace_span (no allocation: spans live on
 * the caller's stack): a child of the given context, or the root of a new trace when the
 * context is absent or invalid. Ids come from getrandom(2). The sampling decision is the
 * parent's when it made one; otherwise (a new trace, or B3 without a decision) the tracer's
 * probability decides, from the trace id's low 64 bits, so every service that has to decide
 * for the same trace decides the same way. The decision travels in the sampled flag, and
 * only sampled spans reach the exporter; unsampled spans still have ids (they are logged
 * and propagated), as Micrometer Tracing does. trace_span_end measures the duration
 * (CLOCK_MONOTONIC; the timestamp is CLOCK_REALTIME, both in microseconds) and hands a
 * sampled span to the tracer's export function, which copies it before returning.
 *
 * The local service name is the tracer's (trace_tracer_service), not each span's.
 *
 * Sampling probability: MANAGEMENT_TRACING_SAMPLING_PROBABILITY, Spring Boot's property,
 * whose default is 0.1 (Spring Boot's own default); read by lib/svc, not here.
 *
 * Ownership: a tracer borrows its export function's `ud`. Thread-safety: parsing and
 * formatting are pure; a tracer is immutable after trace_tracer_new (start, end and
 * service may be called from any thread); a span belongs to one thread at a time.
 * A NULL tracer is valid everywhere and makes spans that record nothing (not valid).
 */
#ifndef FERMATA_TRACE_H
#define FERMATA_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { TRACE_OK = 0, TRACE_ERR_INVALID = -1, TRACE_ERR_SPACE = -2 };

#define TRACE_STATE_MAX 512  /* W3C: at most 512 characters are propagated */
#define TRACEPARENT_LEN 55   /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define TRACE_B3_LEN 51      /* 32 hex "-" 16 hex "-" 1 */
#define TRACE_ID_HEX 33      /* 32 hex digits and a NUL */
#define TRACE_SPAN_ID_HEX 17 /* 16 hex digits and a NUL */
#define TRACE_NAME_MAX 96    /* span names are truncated to fit (with the NUL) */
#define TRACE_TAGS_MAX 8     /* further tags are dropped */
#define TRACE_TAG_KEY_MAX 32 /* tag keys and values are truncated to fit */
#define TRACE_TAG_VALUE_MAX 128
#define TRACE_SERVICE_MAX 48

typedef enum { TRACE_SAMPLING_DEFER = 0, TRACE_SAMPLING_ACCEPT, TRACE_SAMPLING_DENY } trace_sampling;

typedef struct trace_ctx {
  uint8_t trace_id[16];
  uint8_t span_id[8]; /* the sender's span: the parent of ours */
  bool valid;         /* ids present (else only `sampling` may be set) */
  trace_sampling sampling;
  char tracestate[TRACE_STATE_MAX + 1]; /* "" when none */
} trace_ctx;

/* Parsers: TRACE_OK and *out filled, or TRACE_ERR_INVALID and *out cleared (never
 * valid). NULL input is invalid. */
int trace_parse_traceparent(const char *s, trace_ctx *out);
/* The single b3 header; a lone sampling state gives TRACE_OK with out->valid false. */
int trace_parse_b3(const char *s, trace_ctx *out);
/* The multi-header form; any argument may be NULL (header absent). X-B3-Sampled takes
 * "1"/"0" (and the legacy "true"/"false"); X-B3-Flags "1" (debug) means accept. */
int trace_parse_b3_multi(const char *trace_id, const char *span_id, const char *sampled, const char *flags,
                         const char *parent_span_id, trace_ctx *out);
/* Stores a valid tracestate (printable ASCII, at most TRACE_STATE_MAX characters, at most
 * 32 comma-separated members) into ctx; anything else leaves ctx->tracestate empty. */
void trace_set_tracestate(trace_ctx *ctx, const char *s);

/* Looks a request header up by name (case-insensitive); NULL when absent. */
typedef const char *(*trace_header_fn)(void *ud, const char *name);
/* Reads the incoming context (see the top); never fails: out->valid false when none. */
void trace_extract(trace_header_fn get, void *ud, trace_ctx *out);

/* Formatters: TRACE_OK, TRACE_ERR_INVALID (ctx not valid) or TRACE_ERR_SPACE. The sampled
 * flag written is ctx->sampling == TRACE_SAMPLING_ACCEPT. */
int trace_format_traceparent(const trace_ctx *ctx, char *buf, size_t size); /* size > 55 */
int trace_format_b3(const trace_ctx *ctx, char *buf, size_t size);          /* size > 51 */
/* Lowercase hex of n bytes into buf (size >= 2n+1). */
void trace_hex(const uint8_t *bytes, size_t n, char *buf);

#define TRACE_LOG_FIELD 44 /* " trace_id=" 32 hex digits and a NUL */
/* " trace_id=<32 hex>", to follow request_id= in a log line's fields, or "" when ctx is
 * NULL or not valid; written into buf (TRACE_LOG_FIELD bytes), which is returned. */
const char *trace_log_field(const trace_ctx *ctx, char *buf);

/* getrandom(2) into buf; TRACE_OK or TRACE_ERR_INVALID when the kernel refuses. */
int trace_random(void *buf, size_t n);

/* INTERNAL: a local step (Zipkin: no kind), e.g. the storage lookup around a breaker. */
typedef enum {
  TRACE_KIND_SERVER = 0,
  TRACE_KIND_CLIENT,
  TRACE_KIND_PRODUCER,
  TRACE_KIND_CONSUMER,
  TRACE_KIND_INTERNAL
} trace_kind;

typedef struct trace_tag {
  char key[TRACE_TAG_KEY_MAX];
  char value[TRACE_TAG_VALUE_MAX];
} trace_tag;

typedef struct trace_span {
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint8_t parent_id[8];
  bool has_parent;
  bool valid;   /* has ids (false with a NULL tracer or when getrandom failed) */
  bool sampled; /* exported at its end */
  bool error;
  trace_kind kind;
  char name[TRACE_NAME_MAX];
  int64_t start_us;    /* CLOCK_REALTIME, microseconds since the epoch */
  int64_t duration_us; /* set by trace_span_end, at least 1 */
  int64_t mono_start_us;
  char remote_service[TRACE_SERVICE_MAX]; /* "" when none */
  char remote_ip[46];                     /* "" when unknown; IPv4 or IPv6 text */
  uint16_t remote_port;                   /* 0 when unknown */
  trace_tag tags[TRACE_TAGS_MAX];
  size_t ntags;
  char tracestate[TRACE_STATE_MAX + 1]; /* passed on to the span's children */
} trace_span;

/* Called with each sampled span that ends; must copy what it keeps and must not block. */
typedef void (*trace_export_fn)(void *ud, const trace_span *s);

typedef struct trace_tracer trace_tracer;

/* `probability` in [0, 1] (else NULL); `service` is copied (truncated to
 * TRACE_SERVICE_MAX - 1); `export` may be NULL (spans are made, logged and propagated,
 * never exported). NULL on allocation failure. */
trace_tracer *trace_tracer_new(const char *service, double probability, trace_export_fn export, void *ud);
void trace_tracer_free(trace_tracer *t);
const char *trace_tracer_service(const trace_tracer *t); /* "" for NULL */
/* Parses a probability ("0", "0.1", "1.0"): TRACE_OK or TRACE_ERR_INVALID. */
int trace_probability_parse(const char *s, double *out);

/* Starts a span as described at the top. `parent` may be NULL; `name` may be NULL (""). */
void trace_span_start(const trace_tracer *t, trace_span *s, const trace_ctx *parent, const char *name, trace_kind kind);
/* A PRODUCER or CONSUMER span of a message through the broker ("rabbitmq" the remote,
 * messaging.destination the routing key): a child of `traceparent` (a header's value or a
 * stored one; NULL, "" or invalid: a new trace when `always`, else no span at all). */
void trace_span_start_message(const trace_tracer *t, trace_span *s, const char *traceparent, bool always,
                              const char *name, trace_kind kind, const char *destination);
/* Adds a tag (dropped when TRACE_TAGS_MAX are set); nothing for NULL key/value or an
 * invalid span. */
void trace_span_tag(trace_span *s, const char *key, const char *value);
/* Names the remote side (any argument may be NULL / 0). */
void trace_span_remote(trace_span *s, const char *service, const char *ip, uint16_t port);
/* Marks the span failed and tags "error" with msg (or "true"). */
void trace_span_fail(trace_span *s, const char *msg);
/* Ends the span and exports it when sampled. An invalid span is left alone. */
void trace_span_end(const trace_tracer *t, trace_span *s);
/* The context a child of s, local or remote, continues from (valid iff s is). */
void trace_span_ctx(const trace_span *s, trace_ctx *out);
/* The span's trace id as 32 hex digits, or "" when not valid (buf >= TRACE_ID_HEX). */
const char *trace_span_trace_id(const trace_span *s, char *buf);
/* The traceparent of s for an outgoing call: TRACE_OK, or an error (s not valid). */
int trace_span_traceparent(const trace_span *s, char *buf, size_t size);

#endif
