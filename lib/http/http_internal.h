/*
 * http_internal: what the files of lib/http share (http.c: routes, lifecycle, the event
 * loops and the worker pool; http_reply.c: replies and streamed bodies; http_metrics.c:
 * the Prometheus text). Not part of the module's contract: include only from lib/http.
 */
#ifndef FERMATA_HTTP_INTERNAL_H
#define FERMATA_HTTP_INTERNAL_H

#include "http.h"

#include "trace/trace.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define MAX_SEGMENTS 16
#define MAX_PARAMS 4
#define MAX_STATUSES 24
#define MAX_HEADERS 8

typedef struct {
  unsigned status;
  uint64_t count;
  double sum_s, max_s;
} status_stat;

typedef struct route {
  char *method, *pattern;
  bool stream;  /* the handler reads the body as it arrives (http_server_route_stream) */
  char *segbuf; /* owns the strings segs[] point into */
  char *segs[MAX_SEGMENTS];
  int nsegs;
  http_handler handler;
  void *ctx;
  size_t max_body;
  status_stat stats[MAX_STATUSES];
  int nstats;
  struct route *next;
} route;

/* A streamed response body's state while its connection waits for the reader's data. */
struct http_wake {
  http_server *srv;
  struct MHD_Connection *conn;
  bool suspended;                /* the connection is suspended waiting for http_wake_up */
  bool pending;                  /* http_wake_up came before the suspension: read again at once */
  struct http_wake *prev, *next; /* in srv->waiting while suspended */
};

/* One worker thread of the pool, with a condition variable of its own: the pool wakes the
 * worker that went idle last. */
typedef struct {
  struct http_server *srv;
  pthread_t thread;
  pthread_cond_t cv;
  bool woken; /* taken off the idle stack by workq_push: there may be a job */
} wq_worker;

/* The worker pool: requests whose bodies are complete wait here, their connections
 * suspended, until a worker runs the handler and resumes them. Idle workers wait on a
 * stack, and a new request wakes the one on top (the most recently busy): under a
 * CPU-bound load a few hot threads (and, through lib/db's LIFO idle list, a few hot
 * database connections) do the work, instead of every worker in turn with cold caches
 * and a context switch each; the others are there when handlers wait on I/O. */
typedef struct {
  pthread_mutex_t mu;
  http_req *head, *tail;
  bool stop;
  wq_worker *w;   /* nthreads of them running (ncv with their cv initialised) */
  unsigned *idle; /* indexes into w: the idle stack, nidle deep */
  unsigned nthreads, ncv, nidle;
} workq;

/* A request body its handler reads as it arrives (http_body.c). The event loop copies
 * chunks into a bounded ring and suspends the connection while the ring is full; the
 * handler, on a thread of its own, takes bytes out (http_req_read) and resumes it. The
 * request is shared by the loop (until libmicrohttpd's completion callback) and the
 * handler's thread (until the handler returned): the last to let go frees it. */
typedef struct http_body {
  pthread_mutex_t mu; /* guards everything below (and MHD suspend/resume of the connection) */
  pthread_cond_t cv;  /* bytes, the end, an abort or too much: for the reading handler */
  char *ring;
  size_t cap, head, len; /* the bytes [head, head + len) modulo cap */
  uint64_t received;     /* body bytes taken from the client (ring and drain) */
  uint64_t answered_at;  /* `received` when the handler returned */
  bool eof;              /* the whole body arrived */
  bool too_large;        /* the body passed the route's cap: reads fail, the answer is 413 */
  bool aborted;          /* the client went away or the server stops: reads fail */
  bool wait_space;       /* the connection is suspended until the ring has room */
  bool wait_reply;       /* the connection is suspended until the handler answered */
  bool done;             /* the handler returned: the rest of the body is discarded */
  bool completed;        /* libmicrohttpd is done with the connection */
  int refs;              /* the loop's and the handler thread's */
  /* copies of what the handler may look at after the connection is gone */
  char *method, *path;
  char **hname, **hval, **qname, **qval;
  int nhdr, nq;
  struct http_body *prev, *next; /* in srv->bodies */
} http_body;

struct http_server {
  http_server_opts opts;
  log_sink *lg;
  struct MHD_Daemon *daemon;
  route *routes, *unknown; /* `unknown` only carries metrics */
  pthread_mutex_t stats_mu;
  atomic_int in_flight;
  atomic_int connections;
  atomic_bool stopping;
  atomic_bool hard_stop; /* grace period over: streams waiting for data end now */
  atomic_uint_fast64_t next_id;
  uint64_t id_salt;
  workq wq;
  pthread_mutex_t waiting_mu;
  struct http_wake *waiting; /* suspended streams, resumed all at a hard stop */
  pthread_mutex_t bodies_mu;
  pthread_cond_t bodies_cv; /* a streamed-body handler ended */
  http_body *bodies;        /* requests whose handlers read their bodies */
  unsigned nbodies;         /* their handler threads still running */
};

struct http_req {
  http_server *srv;
  struct MHD_Connection *conn;
  const char *method, *path; /* borrowed from libmicrohttpd, valid for the request */
  route *rt;                 /* NULL: no route; then `status_hint` says 404 or 405 */
  unsigned status_hint;
  char allow[96]; /* for a 405: the methods the path has (RFC 9110's Allow) */
  char *pnames[MAX_PARAMS], *pvals[MAX_PARAMS];
  int nparams;
  char *body;
  size_t body_len, body_cap, body_max;
  bool too_large;
  bool queued; /* handed to the worker pool (its connection suspended) */
  bool busy;   /* 503 "too many connections": answered on the loop, then closed */
  char id[72]; /* token_ok allows 64 characters */
  struct timespec start;
  struct MHD_Response *resp;
  unsigned status;
  char *hname[MAX_HEADERS], *hval[MAX_HEADERS];
  int nheaders;
  uint64_t resp_bytes;
  http_req *next_job;          /* in the worker queue */
  http_body *stream;           /* routes whose handler reads the body itself; NULL otherwise */
  trace_span span;             /* the SERVER span (not valid: no tracer, or an actuator route) */
  char trace_id[TRACE_ID_HEX]; /* its trace id for the log, "" when none */
};

/* http_reply.c: stores the response for the request (the first one wins). */
void http_finish(http_req *r, unsigned status, struct MHD_Response *resp, const char *ctype);

/* Resumes every stream waiting for its reader (their next read then fails: hard stop). */
void http_wake_all(http_server *s);

/* http.c, for http_body.c */
void http_req_free(http_req *r);
void http_dispatch(http_req *r);
enum MHD_Result http_send_reply(http_req *r);
void http_reply_missing(http_req *r); /* a 500 when the handler answered nothing */

/* http_body.c: the first callback of a request on a streaming route (starts the handler's
 * thread, or answers 503 over HTTP_MAX_STREAMS), each later one, the completion callback
 * (true when the request is still the handler's: then it is not to be freed), and the
 * hard stop (fails every read, waits for the handlers to end). */
enum MHD_Result http_body_start(http_req *r);
void http_body_free(http_body *b); /* NULL ok */
uint64_t http_body_received(http_req *r);
const char *http_body_header(const http_req *r, const char *name);
const char *http_body_query(const http_req *r, const char *name);
enum MHD_Result http_body_feed(http_req *r, const char *data, size_t *size);
bool http_body_completed(http_req *r);
void http_body_stop_all(http_server *s);

/* http_metrics.c */
void http_record_stats(http_server *s, http_req *r, double secs);

#endif
