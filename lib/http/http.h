/*
 * http: the HTTP/1.1 server every Fermata service runs, on libmicrohttpd.
 *
 * Design. A fixed set of event-loop threads (libmicrohttpd's epoll daemon with a thread
 * pool, about one per core) reads requests and writes responses; no thread per connection,
 * so idle or trickling clients cost a little memory each and no thread. Handlers block
 * (libpq, libcurl, S3), so they never run on a loop: when a request's body is complete its
 * connection is suspended and the request queued for a fixed pool of worker threads; the
 * worker runs the handler and resumes the connection, whose loop sends the answer. A router
 * maps (method, pattern) to a handler; patterns are literal segments and `{name}`
 * parameters ("/songs/{id}"). The whole request body is read into a buffer with a hard cap
 * (per route) before the handler runs; a larger body gets 413 in the contract's error
 * shape. Routes registered with http_server_route_stream instead hand their handler the
 * body as it arrives (uploads of any size in bounded memory; see below). A path that matches no pattern gets 404, a path that matches with another method
 * 405, both in the contract shape, answered on the loop. Over the connection limit, a new
 * client's request gets 503 in the contract shape and "Connection: close". Every response
 * carries X-Request-Id (taken from the request when it is a sane token, else generated)
 * and every request ends with one access-log line.
 *
 * Handlers run on worker threads and must call exactly one http_reply_* function; a
 * handler that replies nothing produces a 500. JSON bodies are rendered compact, in key
 * insertion order, with Content-Type exactly "application/json".
 *
 * Shutdown (http_server_stop): stop accepting, let in-flight requests finish (bounded by
 * the grace period), answer "Connection: close" meanwhile; then let running handlers end,
 * cut responses still streaming, and stop the daemon.
 *
 * Ownership: the server owns its routes and requests; request accessors return borrowed
 * pointers valid until the handler returns. Thread-safe as described; configure routes
 * before http_server_start.
 */
#ifndef FERMATA_HTTP_H
#define FERMATA_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "log/log.h"
#include "trace/trace.h"

typedef struct http_server http_server;
typedef struct http_req http_req;

typedef void (*http_handler)(http_req *req, void *ctx);

typedef struct {
  unsigned port;              /* TCP port; 0 = let the OS choose (see http_server_port) */
  const char *bind_addr;      /* IPv4 address to bind; NULL = all interfaces */
  size_t max_body;            /* default body cap for routes without their own; 0 = 1 MiB */
  unsigned max_connections;   /* 0 = HTTP_DEFAULT_MAX_CONNECTIONS */
  unsigned idle_timeout_s;    /* close idle connections after this; 0 = 60 */
  unsigned shutdown_grace_ms; /* 0 = 30000 */
  unsigned event_loops;       /* threads reading and writing connections; 0 = one per core */
  unsigned workers;           /* threads running handlers; 0 = HTTP_DEFAULT_WORKERS */
  unsigned max_streams;       /* streamed-body requests at once (a thread each); 0 = HTTP_DEFAULT_MAX_STREAMS */
  const trace_tracer *tracer; /* borrowed, outlives the server; NULL = no spans */
  /* appended to http_server_metrics (malloc'd text, stolen; NULL fails the metrics); the
   * tracing exporter's counters (lib/svc). NULL: none */
  char *(*extra_metrics)(void *ud);
  void *extra_metrics_ud;
} http_server_opts;

#define HTTP_DEFAULT_MAX_CONNECTIONS 8192 /* Tomcat's default, as Spring Boot has it */
#define HTTP_DEFAULT_WORKERS 16           /* = the default DB_POOL_SIZE: more would only wait */
#define HTTP_LIMIT_SLACK 64               /* connections over the limit still answered 503 */
#define HTTP_DEFAULT_MAX_STREAMS 64       /* uploads in progress at once; more get 503 */
#define HTTP_STREAM_BUFFER (256 * 1024)   /* body bytes held per streamed request */
/* After a streamed-body handler answered before the body's end (or the body passed the
 * cap), the rest is read and discarded so that a client that sends everything before it
 * reads sees the answer; past this many more bytes the answer goes out at once and the
 * connection is closed. */
#define HTTP_DRAIN_MAX (64ull << 20)

/* Reads the server's thread and connection settings from the environment, keeping what
 * `o` has for the ones not set: HTTP_EVENT_LOOPS (0-64), HTTP_WORKERS (0-1024),
 * HTTP_MAX_CONNECTIONS (0-100000), HTTP_IDLE_TIMEOUT (seconds, 0-3600), HTTP_MAX_STREAMS
 * (0-4096; 0 everywhere = the default). A bad value
 * leaves a message in `err` (lib/config). */
void http_server_opts_env(http_server_opts *o, config_err *err);

enum { HTTP_OK = 0, HTTP_ERR_NOMEM = -1, HTTP_ERR_START = -2, HTTP_ERR_ROUTE = -3 };

http_server *http_server_new(const http_server_opts *opts, log_sink *lg);
void http_server_free(http_server *s); /* stops it first if running */

/* Registers a route. `max_body` 0 = the server default. Returns HTTP_OK or HTTP_ERR_*. */
int http_server_route(http_server *s, const char *method, const char *pattern, http_handler h, void *ctx,
                      size_t max_body);

/* Registers a route whose handler reads the body itself as it arrives (http_req_read),
 * in bounded memory (HTTP_STREAM_BUFFER), on a thread of its own started as soon as the
 * headers are in, so a slow upload holds no worker of the pool. A Content-Length over
 * max_body gets 413 before a byte is read; a body that passes max_body while it streams
 * fails the handler's reads with HTTP_BODY_TOO_LARGE and gets 413 whatever the handler
 * answered. Over max_streams such requests at once, 503. The handler may answer before
 * it read the whole body (400 for a bad one): the rest is then discarded (see
 * HTTP_DRAIN_MAX). http_req_body is empty for these routes. */
int http_server_route_stream(http_server *s, const char *method, const char *pattern, http_handler h, void *ctx,
                             uint64_t max_body);

int http_server_start(http_server *s);
unsigned http_server_port(const http_server *s);
void http_server_stop(http_server *s);

/* Prometheus text for http_server_requests_seconds{method,uri,status} (count, sum, max),
 * then the options' extra_metrics. Appends to a malloc'd string the caller frees; NULL on allocation failure. */
char *http_server_metrics(http_server *s);

/* Request accessors (borrowed; valid during the handler). */
const char *http_req_method(const http_req *r);
const char *http_req_path(const http_req *r);
const char *http_req_param(const http_req *r, const char *name);  /* path parameter */
const char *http_req_query(const http_req *r, const char *name);  /* NULL when absent */
const char *http_req_header(const http_req *r, const char *name); /* case-insensitive */
const char *http_req_body(const http_req *r, size_t *len);        /* never NULL */

/* Streamed bodies (routes of http_server_route_stream): reads up to cap bytes, waiting
 * until some arrive. Returns the count (> 0), 0 at the end of the body, or a negative
 * HTTP_BODY_*: the client went away or the server is stopping, or the body passed the
 * route's cap. Every later call returns the same. */
enum { HTTP_BODY_ABORTED = -1, HTTP_BODY_TOO_LARGE = -2 };
long http_req_read(http_req *r, void *buf, size_t cap);
/* The declared Content-Length, or -1 when the body is chunked (or there is none). */
int64_t http_req_content_length(const http_req *r);
const char *http_req_id(const http_req *r);
log_sink *http_req_log(const http_req *r);

/* Tracing (with a tracer in the options). Every request but the actuator's gets a SERVER
 * span: it continues the incoming context (lib/trace: traceparent, b3, X-B3-*), else
 * starts a trace; named "<METHOD> <route pattern>" (the method alone without a route),
 * tagged http.method, http.route, http.status_code, failed on a 5xx, ended when the
 * answer went out. The access-log line then carries trace_id=. */
/* The context for the handler's own spans and outgoing calls (not valid: no span). */
void http_req_trace(const http_req *r, trace_ctx *out);
/* The trace id as 32 hex digits, "" when the request has no span; for log lines. */
const char *http_req_trace_id(const http_req *r);

/* Parses the body as a JSON value. A Content-Type other than application/json (parameters
 * allowed), a +json type or none is refused with 415, as Spring does; a body that is not
 * JSON with 400. On failure it has replied and returns NULL. The caller owns the result
 * (json_decref). */
json_t *http_req_json(http_req *r);

/* Adds a response header (copied). Call before the http_reply_* function. */
void http_reply_header(http_req *r, const char *name, const char *value);

/* Replies; exactly one per request. */
void http_reply_json(http_req *r, unsigned status, json_t *body); /* steals `body` */
void http_reply_error(http_req *r, unsigned status, const char *message);
void http_reply_errorf(http_req *r, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 400 {"errorMessage":"Validation error","details":{...},"errorCode":"400"}; steals details. */
void http_reply_validation(http_req *r, json_t *details);
/* 500 "Internal server error"; logs `why` (never shown to the client) with the request id. */
void http_reply_internal(http_req *r, const char *why);
/* Body from memory; `free_fn` (may be NULL for static data) releases `data` afterwards. */
void http_reply_buffer(http_req *r, unsigned status, const char *content_type, void *data, size_t len,
                       void (*free_fn)(void *));
/* Body produced on demand, on an event loop, so `reader` must not block: it fills buf
 * with up to max bytes at `pos` and returns the count; or returns HTTP_READ_WAIT when no
 * byte is ready yet, after arranging that http_wake_up(wake) be called (once, from any
 * thread) when some are or the body failed: the connection is suspended meanwhile (no
 * thread waits) and the reader is called again after the wake-up. 0 never (the size is
 * known); -1 on error (the connection is closed). `done` is called with ctx once the
 * response is finished or abandoned; after it returns, `wake` must not be used. */
typedef struct http_wake http_wake;
#define HTTP_READ_WAIT (-2L)
typedef long (*http_reader)(void *ctx, uint64_t pos, char *buf, size_t max, http_wake *wake);
void http_reply_stream(http_req *r, unsigned status, const char *content_type, uint64_t size, http_reader reader,
                       void *ctx, void (*done)(void *ctx));
void http_wake_up(http_wake *wake);

/* 200 with Prometheus text exposition format; steals `text` (malloc'd). NULL (rendering ran
 * out of memory) answers 500. */
void http_reply_metrics(http_req *r, char *text);

/* a followed by b, for assembling metrics from several sources; steals both (either may be
 * NULL, which makes the result NULL). */
char *http_metrics_join(char *a, char *b);

/* 200 with the contract's deleted-ids answer, {"ids":[...]}, in the order given. */
void http_reply_ids(http_req *r, const int32_t *ids, size_t n);

/* Renders `body` (borrowed) as compact JSON in insertion order; malloc'd, caller frees. */
char *http_json_dump(const json_t *body);

#endif
