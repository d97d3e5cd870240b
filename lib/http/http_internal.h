/*
 * http_internal: what the files of lib/http share (http.c: routes, lifecycle, the event
 * loops and the worker pool; http_reply.c: replies and streamed bodies; http_metrics.c:
 * the Prometheus text). Not part of the module's contract: include only from lib/http.
 */
#ifndef FERMATA_HTTP_INTERNAL_H
#define FERMATA_HTTP_INTERNAL_H

#include "http.h"

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
  http_req *next_job; /* in the worker queue */
};

/* http_reply.c: stores the response for the request (the first one wins). */
void http_finish(http_req *r, unsigned status, struct MHD_Response *resp, const char *ctype);

/* Resumes every stream waiting for its reader (their next read then fails: hard stop). */
void http_wake_all(http_server *s);

/* http_metrics.c */
void http_record_stats(http_server *s, http_req *r, double secs);

#endif
