/* httpc: outgoing HTTP for service-to-service calls (Resource -> Storage, Resource -> Song,
 * Processor -> Resource/Song), on libcurl.
 *
 * One call = one request with an optional JSON body, answered by a status and a body read
 * into memory up to a hard cap: a buffer httpc allocates (capped at max_response_bytes), or
 * one the caller lends for the call (httpc_request.into, capped at its size), so a ranged
 * GET (httpc_request.range) can fill a fixed window again and again without allocating. The result keeps apart what a circuit breaker must tell
 * apart: no connection (HTTPC_ERR_CONNECT), no answer in time (HTTPC_ERR_TIMEOUT), a broken
 * exchange (HTTPC_ERR_IO), and an HTTP answer with its status (return 0, resp->status).
 * httpc_is_failure() applies the usual rule: transport errors and 5xx are failures, any
 * other status (4xx included) means the remote service is healthy.
 *
 * X-Request-Id: when the request carries one it is sent as is, so a request can be followed
 * from the gateway through every service's log.
 *
 * Tracing: with a tracer in the config and a valid context in the request (the caller's
 * span: http_req_trace in a handler), each call is a CLIENT span, a child of that context,
 * whose traceparent (and tracestate) the request carries; tagged http.method, http.url
 * (without the query), http.status_code, failed on a transport error or a 5xx; the remote
 * endpoint is the request's `peer`. Without either, nothing is traced or sent.
 *
 * Thread-safety: one httpc client may be used by any number of threads at once. Calls
 * borrow a curl easy handle from a small pool; handles keep their connections, so calls
 * to the same service reuse kept-alive connections.
 *
 * The caller must call curl_global_init(CURL_GLOBAL_DEFAULT) once in main() before
 * httpc_new() and curl_global_cleanup() after the last httpc_free().
 */
#ifndef FERMATA_HTTPC_H
#define FERMATA_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

#include "trace/trace.h"

typedef enum httpc_err {
  HTTPC_OK = 0,
  HTTPC_ERR_INVALID = -1, /* bad argument (method, URL scheme, header value) */
  HTTPC_ERR_NOMEM = -2,
  HTTPC_ERR_CONNECT = -3,   /* refused, unresolvable, or connect timeout */
  HTTPC_ERR_TIMEOUT = -4,   /* connected, but no complete answer within the timeout */
  HTTPC_ERR_IO = -5,        /* connection lost or malformed answer */
  HTTPC_ERR_TOO_LARGE = -6, /* the answer's body is over max_response_bytes */
} httpc_err;

/* Static description of an httpc_err; never NULL. */
const char *httpc_strerror(int code);

typedef struct httpc_config {
  long connect_timeout_ms;    /* 0 means 1000 */
  long timeout_ms;            /* whole call; 0 means 5000 */
  size_t max_response_bytes;  /* body cap; 0 means 1 MiB */
  int max_idle_handles;       /* pooled handles; 0 means 16 */
  const char *user_agent;     /* NULL means "fermata-httpc" */
  const trace_tracer *tracer; /* borrowed, outlives the client; NULL = no spans */
} httpc_config;

typedef struct httpc httpc;

/* Returns 0 and *out, or HTTPC_ERR_INVALID / HTTPC_ERR_NOMEM. Copies what it keeps. */
int httpc_new(const httpc_config *cfg, httpc **out);
/* No call may be running. httpc_free(NULL) is a no-op. */
void httpc_free(httpc *c);

typedef struct httpc_request {
  const char *method; /* "GET", "POST", "PUT", "DELETE" */
  const char *url;    /* http:// or https:// */
  const char *body;   /* may be NULL; not copied, must live during the call */
  size_t body_len;
  const char *content_type; /* NULL: "application/json" when there is a body */
  const char *request_id;   /* sent as X-Request-Id when not NULL (max 128 chars, no CR/LF) */
  long timeout_ms;          /* 0: the client's default */
  const char *range;        /* sent as "Range: <range>" when not NULL, e.g. "bytes=0-1023" */
  /* When into is not NULL, the body (whatever the status) is written to into[0..into_cap)
   * instead of an allocated buffer: resp->body stays NULL and resp->body_len counts the
   * bytes written; a longer body ends the call with HTTPC_ERR_TOO_LARGE (the bytes that
   * fitted are in into, resp->body_len of them). No NUL is added. The client's
   * max_response_bytes does not apply then. */
  char *into;
  size_t into_cap;
  const trace_ctx *trace; /* the parent of the call's CLIENT span; NULL = not traced */
  const char *peer;       /* the remote service's name on the span ("storage"); may be NULL */
} httpc_request;

typedef struct httpc_response {
  long status; /* HTTP status; 0 when none arrived */
  char *body;  /* owned by the response, NUL-terminated (may be NULL when empty) */
  size_t body_len;
  char content_type[128];
  char content_range[96]; /* the Content-Range header's value, "" when none (or too long) */
  long new_connections;   /* connections this call opened: 0 means one was reused */
  double elapsed_ms;
  char error[256]; /* transport error text for logs, "" on success */
} httpc_response;

/* Performs the request. Returns 0 when an HTTP answer arrived (whatever its status) or a
 * negative httpc_err. resp is always initialised (also on failure) and must be released
 * with httpc_response_free(). */
int httpc_do(httpc *c, const httpc_request *req, httpc_response *resp);
/* Frees resp->body; safe to call twice and on a zeroed response. */
void httpc_response_free(httpc_response *resp);

/* The circuit breaker's rule: true for transport errors and 5xx answers. */
bool httpc_is_failure(int rc, long status);

#endif
