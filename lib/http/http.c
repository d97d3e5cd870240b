/*
 * http: see http.h for the design. Internals (shared declarations in http_internal.h):
 * - `route`: a pattern split into segments once at registration; matching walks the path
 *   segments without copying except for parameter values, stored in the request.
 * - `http_req`: created on libmicrohttpd's first callback for a request, filled with body
 *   chunks on the following ones (on the event loop: a memcpy, nothing that blocks). On the
 *   last one (upload size 0) the connection is suspended and the request queued for the
 *   worker pool; a worker runs the handler and resumes the connection; the loop's next
 *   callback queues the response. Freed in the completion callback, which also runs when
 *   the client goes away mid-request.
 * - answers that need no handler (404, 405, 413, 503 over the connection limit) are given
 *   on the loop itself.
 */
#include "http_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

/* ---------- routes ---------- */

static int split_path(char *copy, char **segs) {
  int n = 0;
  char *p = copy;
  if (*p == '/') p++;
  for (;;) {
    if (n == MAX_SEGMENTS) return -1;
    segs[n++] = p;
    char *slash = strchr(p, '/');
    if (!slash) break;
    *slash = '\0';
    p = slash + 1;
  }
  return n;
}

static void route_free(route *r) {
  if (!r) return;
  free(r->method);
  free(r->pattern);
  free(r->segbuf);
  free(r);
}

static int route_add(http_server *s, const char *method, const char *pattern, http_handler h, void *ctx,
                     uint64_t max_body, bool stream) {
  if (!s || !method || !pattern || pattern[0] != '/' || !h) return HTTP_ERR_ROUTE;
  route *r = calloc(1, sizeof *r);
  if (!r) return HTTP_ERR_NOMEM;
  r->segbuf = strdup(pattern);
  if (!r->segbuf) goto fail;
  r->method = strdup(method);
  r->pattern = strdup(pattern);
  if (!r->method || !r->pattern) goto fail;
  r->nsegs = split_path(r->segbuf, r->segs);
  if (r->nsegs < 0) goto fail;
  r->handler = h;
  r->ctx = ctx;
  r->max_body = max_body ? max_body : s->opts.max_body;
  r->stream = stream;
  route **tail = &s->routes;
  while (*tail) tail = &(*tail)->next;
  *tail = r;
  return HTTP_OK;
fail:
  route_free(r);
  return HTTP_ERR_NOMEM;
}

int http_server_route(http_server *s, const char *method, const char *pattern, http_handler h, void *ctx,
                      size_t max_body) {
  return route_add(s, method, pattern, h, ctx, max_body, false);
}

int http_server_route_stream(http_server *s, const char *method, const char *pattern, http_handler h, void *ctx,
                             uint64_t max_body) {
  return route_add(s, method, pattern, h, ctx, max_body, true);
}

/* Matches `path` against `r`; on success stores parameters into req. */
static bool route_match(const route *r, const char *path, http_req *req) {
  const char *p = path[0] == '/' ? path + 1 : path;
  int i = 0;
  int np = 0;
  const char *vals[MAX_PARAMS];
  size_t lens[MAX_PARAMS];
  for (;; i++) {
    if (i == r->nsegs) return false;
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    const char *seg = r->segs[i];
    size_t slen = strlen(seg);
    if (slen >= 2 && seg[0] == '{' && seg[slen - 1] == '}') {
      if (np == MAX_PARAMS) return false;
      vals[np] = p;
      lens[np++] = len;
    } else if (len != slen || memcmp(p, seg, len) != 0) {
      return false;
    }
    if (!slash) break;
    p = slash + 1;
  }
  if (i != r->nsegs - 1) return false;
  if (!req) return true;
  int k = 0;
  for (int j = 0; j < r->nsegs && k < np; j++) {
    const char *seg = r->segs[j];
    size_t slen = strlen(seg);
    if (slen >= 2 && seg[0] == '{') {
      req->pnames[k] = strndup(seg + 1, slen - 2);
      req->pvals[k] = strndup(vals[k], lens[k]);
      if (!req->pnames[k] || !req->pvals[k]) {
        free(req->pnames[k]);
        free(req->pvals[k]);
        break;
      }
      k++;
    }
  }
  req->nparams = k;
  return k == np;
}

static void allow_add(http_req *req, const char *method) {
  size_t n = strlen(req->allow);
  snprintf(req->allow + n, sizeof req->allow - n, "%s%s", n ? ", " : "", method);
}

static void resolve_route(http_server *s, http_req *req) {
  bool path_known = false;
  const char *m = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
  for (route *r = s->routes; r; r = r->next) {
    if (!route_match(r, req->path, NULL)) continue;
    path_known = true;
    if (strcmp(r->method, m) == 0) {
      req->rt = r;
      if (!route_match(r, req->path, req)) req->status_hint = 500;
      return;
    }
    allow_add(req, r->method);
    if (strcmp(r->method, "GET") == 0) allow_add(req, "HEAD");
  }
  req->status_hint = path_known ? 405 : 404;
}

/* ---------- worker pool ---------- */


static void *worker_main(void *arg) {
  wq_worker *w = arg;
  workq *q = &w->srv->wq;
  pthread_mutex_lock(&q->mu);
  for (;;) {
    while (!q->head && !q->stop) {
      w->woken = false;
      q->idle[q->nidle++] = (unsigned)(w - q->w);
      while (!w->woken && !q->stop) pthread_cond_wait(&w->cv, &q->mu);
    }
    http_req *r = q->head;
    if (!r) break; /* stopping, and the queue is empty */
    q->head = r->next_job;
    if (!q->head) q->tail = NULL;
    pthread_mutex_unlock(&q->mu);
    http_dispatch(r);
    MHD_resume_connection(r->conn); /* the loop then sends what the handler answered */
    pthread_mutex_lock(&q->mu);
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

static void workq_push(workq *q, http_req *r) {
  r->next_job = NULL;
  pthread_mutex_lock(&q->mu);
  if (q->tail)
    q->tail->next_job = r;
  else
    q->head = r;
  q->tail = r;
  if (q->nidle) {
    wq_worker *w = &q->w[q->idle[--q->nidle]];
    w->woken = true;
    pthread_cond_signal(&w->cv);
  }
  pthread_mutex_unlock(&q->mu);
}

static int workq_start(http_server *s) {
  workq *q = &s->wq;
  unsigned n = s->opts.workers;
  q->w = calloc(n, sizeof *q->w);
  q->idle = calloc(n, sizeof *q->idle);
  if (!q->w || !q->idle) return -1;
  q->stop = false;
  q->nidle = 0;
  for (q->ncv = 0; q->ncv < n; q->ncv++) {
    q->w[q->ncv].srv = s;
    if (pthread_cond_init(&q->w[q->ncv].cv, NULL) != 0) return -1;
  }
  for (q->nthreads = 0; q->nthreads < n; q->nthreads++)
    if (pthread_create(&q->w[q->nthreads].thread, NULL, worker_main, &q->w[q->nthreads]) != 0) return -1;
  return 0;
}

/* Lets the workers finish what is queued, then joins them. */
static void workq_stop(workq *q) {
  pthread_mutex_lock(&q->mu);
  q->stop = true;
  for (unsigned i = 0; i < q->nthreads; i++) pthread_cond_signal(&q->w[i].cv);
  pthread_mutex_unlock(&q->mu);
  for (unsigned i = 0; i < q->nthreads; i++) pthread_join(q->w[i].thread, NULL);
  for (unsigned i = 0; i < q->ncv; i++) pthread_cond_destroy(&q->w[i].cv);
  free(q->w);
  free(q->idle);
  q->w = NULL;
  q->idle = NULL;
  q->nthreads = q->ncv = q->nidle = 0;
}

/* ---------- server lifecycle ---------- */

static unsigned cores(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

http_server *http_server_new(const http_server_opts *opts, log_sink *lg) {
  http_server *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  if (opts) s->opts = *opts;
  if (!s->opts.max_body) s->opts.max_body = 1u << 20;
  if (!s->opts.max_connections) s->opts.max_connections = HTTP_DEFAULT_MAX_CONNECTIONS;
  if (!s->opts.idle_timeout_s) s->opts.idle_timeout_s = 60;
  if (!s->opts.shutdown_grace_ms) s->opts.shutdown_grace_ms = 30000;
  if (!s->opts.event_loops) s->opts.event_loops = cores();
  if (!s->opts.workers) s->opts.workers = HTTP_DEFAULT_WORKERS;
  if (!s->opts.max_streams) s->opts.max_streams = HTTP_DEFAULT_MAX_STREAMS;
  s->lg = lg;
  s->unknown = calloc(1, sizeof *s->unknown);
  if (!s->unknown) {
    free(s);
    return NULL;
  }
  if (pthread_mutex_init(&s->stats_mu, NULL) != 0) goto fail_stats;
  if (pthread_mutex_init(&s->waiting_mu, NULL) != 0) goto fail_waiting;
  if (pthread_mutex_init(&s->wq.mu, NULL) != 0) goto fail_wq_mu;
  if (pthread_mutex_init(&s->bodies_mu, NULL) != 0) goto fail_bodies_mu;
  if (pthread_cond_init(&s->bodies_cv, NULL) != 0) goto fail_bodies_cv;
  s->unknown->pattern = strdup("UNKNOWN");
  s->unknown->method = strdup("*");
  if (getrandom(&s->id_salt, sizeof s->id_salt, 0) != sizeof s->id_salt)
    s->id_salt = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  return s;
fail_bodies_cv:
  pthread_mutex_destroy(&s->bodies_mu);
fail_bodies_mu:
  pthread_mutex_destroy(&s->wq.mu);
fail_wq_mu:
  pthread_mutex_destroy(&s->waiting_mu);
fail_waiting:
  pthread_mutex_destroy(&s->stats_mu);
fail_stats:
  free(s->unknown);
  free(s);
  return NULL;
}

void http_server_free(http_server *s) {
  if (!s) return;
  http_server_stop(s);
  for (route *r = s->routes; r;) {
    route *next = r->next;
    route_free(r);
    r = next;
  }
  free(s->unknown->pattern);
  free(s->unknown->method);
  free(s->unknown);
  pthread_cond_destroy(&s->bodies_cv);
  pthread_mutex_destroy(&s->bodies_mu);
  pthread_mutex_destroy(&s->wq.mu);
  pthread_mutex_destroy(&s->waiting_mu);
  pthread_mutex_destroy(&s->stats_mu);
  free(s);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls);
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe);

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code) {
  (void)conn;
  http_server *s = cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    /* A connection accepted over the limit is marked (its socket context points at the
     * server) and every request on it is answered 503; those under it are served. */
    if (atomic_fetch_add(&s->connections, 1) + 1 > (int)s->opts.max_connections) *socket_ctx = s;
  } else {
    atomic_fetch_sub(&s->connections, 1);
  }
}

static bool over_limit(http_server *s, struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci && ci->socket_context == s;
}

static void on_mhd_error(void *cls, const char *fm, va_list ap) {
  http_server *s = cls;
  char buf[512];
  vsnprintf(buf, sizeof buf, fm, ap);
  size_t n = strlen(buf);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
  char q[600];
  log_event(s->lg, LOG_LEVEL_WARN, "http server", "detail=%s", log_quote(q, sizeof q, buf));
}

int http_server_start(http_server *s) {
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->opts.port)};
  if (s->opts.bind_addr && inet_pton(AF_INET, s->opts.bind_addr, &addr.sin_addr) != 1) return HTTP_ERR_START;
  if (!s->opts.bind_addr) addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (workq_start(s) != 0) {
    workq_stop(&s->wq);
    return HTTP_ERR_START;
  }
  /* libmicrohttpd itself accepts HTTP_LIMIT_SLACK connections more than the limit, so that
   * the ones over it get a clear 503 instead of a closed socket (until the slack is used up
   * too: then it closes them). */
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  s->daemon = MHD_start_daemon(
      flags, (uint16_t)s->opts.port, NULL, NULL, on_access, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, s,
      MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
      on_connection, s, MHD_OPTION_CONNECTION_LIMIT, s->opts.max_connections + HTTP_LIMIT_SLACK,
      MHD_OPTION_CONNECTION_TIMEOUT, s->opts.idle_timeout_s, MHD_OPTION_THREAD_POOL_SIZE, s->opts.event_loops,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
      MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, MHD_OPTION_END);
  if (!s->daemon) {
    workq_stop(&s->wq);
    return HTTP_ERR_START;
  }
  return HTTP_OK;
}

unsigned http_server_port(const http_server *s) {
  if (!s->daemon) return 0;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  return info ? info->port : 0;
}

static void wait_idle(http_server *s, unsigned ms) {
  for (unsigned waited = 0; atomic_load(&s->in_flight) > 0 && waited < ms; waited += 10) usleep(10000);
}

void http_server_stop(http_server *s) {
  if (!s || !s->daemon) return;
  atomic_store(&s->stopping, true);
  MHD_socket fd = MHD_quiesce_daemon(s->daemon);
  if (fd != MHD_INVALID_SOCKET) close(fd);
  wait_idle(s, s->opts.shutdown_grace_ms);
  int left = atomic_load(&s->in_flight);
  if (left > 0) log_event(s->lg, LOG_LEVEL_WARN, "shutdown grace period over", "in_flight=%d", left);
  /* Handlers still running finish (the workers are joined); responses still streaming end
   * now; libmicrohttpd must not be stopped with a connection suspended. */
  atomic_store(&s->hard_stop, true);
  workq_stop(&s->wq);
  http_body_stop_all(s);
  http_wake_all(s);
  wait_idle(s, 2000);
  http_wake_all(s);
  MHD_stop_daemon(s->daemon);
  s->daemon = NULL;
}

/* ---------- request handling ---------- */

static bool token_ok(const char *v) {
  size_t n = strlen(v);
  if (n == 0 || n > 64) return false;
  for (size_t i = 0; i < n; i++) {
    char c = v[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
          c == '.'))
      return false;
  }
  return true;
}

static const char *mhd_header(void *conn, const char *name) {
  return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* The SERVER span (http.h: "Tracing"). Actuator routes (probes, scrapes) get none: they
 * would bury the traces that matter. */
static void start_span(http_server *s, http_req *r) {
  r->span.valid = false;
  r->trace_id[0] = '\0';
  if (!s->opts.tracer || (r->rt && strncmp(r->rt->pattern, "/actuator", 9) == 0)) return;
  trace_ctx in;
  trace_extract(mhd_header, r->conn, &in);
  char name[TRACE_NAME_MAX];
  snprintf(name, sizeof name, "%s%s%s", r->method, r->rt ? " " : "", r->rt ? r->rt->pattern : "");
  trace_span_start(s->opts.tracer, &r->span, &in, name, TRACE_KIND_SERVER);
  trace_span_trace_id(&r->span, r->trace_id);
}

static void end_span(http_server *s, http_req *r) {
  if (!r->span.valid) return;
  char status[8];
  snprintf(status, sizeof status, "%u", r->status);
  trace_span_tag(&r->span, "http.method", r->method);
  if (r->rt) trace_span_tag(&r->span, "http.route", r->rt->pattern);
  trace_span_tag(&r->span, "http.status_code", status);
  if (r->status >= 500) trace_span_fail(&r->span, status);
  trace_span_end(s->opts.tracer, &r->span);
}

static http_req *req_new(http_server *s, struct MHD_Connection *conn, const char *url, const char *method) {
  http_req *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->srv = s;
  r->conn = conn;
  r->method = method;
  r->path = url;
  clock_gettime(CLOCK_MONOTONIC, &r->start);
  const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
  if (rid && token_ok(rid)) {
    snprintf(r->id, sizeof r->id, "%s", rid);
  } else {
    uint64_t n = atomic_fetch_add(&s->next_id, 1) + 1;
    uint64_t x = (s->id_salt ^ (n * 0x9E3779B97F4A7C15ull));
    x ^= x >> 31;
    snprintf(r->id, sizeof r->id, "%016llx", (unsigned long long)x);
  }
  resolve_route(s, r);
  r->body_max = r->rt ? r->rt->max_body : s->opts.max_body;
  start_span(s, r);
  return r;
}

void http_req_free(http_req *r) {
  if (!r) return;
  http_body_free(r->stream);
  for (int i = 0; i < r->nparams; i++) free(r->pnames[i]), free(r->pvals[i]);
  for (int i = 0; i < r->nheaders; i++) free(r->hname[i]), free(r->hval[i]);
  if (r->resp) MHD_destroy_response(r->resp);
  free(r->body);
  free(r);
}

static void body_append(http_req *r, const char *data, size_t len) {
  if (r->too_large) return;
  if (r->body_len + len > r->body_max) {
    r->too_large = true;
    free(r->body);
    r->body = NULL;
    r->body_len = r->body_cap = 0;
    return;
  }
  if (r->body_len + len + 1 > r->body_cap) {
    size_t cap = r->body_cap ? r->body_cap : 16384;
    while (cap < r->body_len + len + 1) cap *= 2;
    if (cap > r->body_max + 1) cap = r->body_max + 1;
    char *nb = realloc(r->body, cap);
    if (!nb) {
      r->too_large = true; /* treated as too large: we could not hold it */
      free(r->body);
      r->body = NULL;
      r->body_len = r->body_cap = 0;
      return;
    }
    r->body = nb;
    r->body_cap = cap;
  }
  memcpy(r->body + r->body_len, data, len);
  r->body_len += len;
  r->body[r->body_len] = '\0';
}

static void presize_body(http_req *r) {
  const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
  if (!cl) return;
  char *end;
  errno = 0;
  unsigned long long n = strtoull(cl, &end, 10);
  if (errno || *end || n == 0) return;
  if (n > r->body_max) {
    r->too_large = true;
    return;
  }
  r->body = malloc((size_t)n + 1);
  if (r->body) r->body_cap = (size_t)n + 1, r->body[0] = '\0';
}

void http_reply_missing(http_req *r) {
  if (r->resp) return;
  char why[64];
  snprintf(why, sizeof why, "handler for %s %s gave no response", r->method, r->rt ? r->rt->pattern : "?");
  http_reply_internal(r, why);
}

enum MHD_Result http_send_reply(http_req *r) {
  http_reply_missing(r);
  if (!r->resp) return MHD_NO;
  return MHD_queue_response(r->conn, r->status, r->resp);
}

void http_dispatch(http_req *r) {
  if (r->too_large) {
    http_reply_errorf(r, 413, "Request body is too large: maximum allowed is %zu bytes", r->body_max);
  } else if (!r->rt) {
    if (r->status_hint == 405) {
      http_reply_header(r, "Allow", r->allow);
      http_reply_errorf(r, 405, "Method %s is not allowed for %s", r->method, r->path);
    } else if (r->status_hint == 500)
      http_reply_internal(r, "out of memory matching route");
    else
      http_reply_errorf(r, 404, "No endpoint %s %s", r->method, r->path);
  } else {
    r->rt->handler(r, r->rt->ctx);
  }
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls) {
  (void)version;
  http_server *s = cls;
  http_req *r = *con_cls;
  if (!r) {
    r = req_new(s, conn, url, method);
    if (!r) return MHD_NO;
    *con_cls = r;
    atomic_fetch_add(&s->in_flight, 1);
    if (over_limit(s, conn)) {
      r->busy = true; /* answered on the first callback; the body, if any, is not read */
      http_reply_header(r, "Connection", "close");
      http_reply_errorf(r, 503, "Too many connections: the server's limit is %u", s->opts.max_connections);
      return http_send_reply(r);
    }
    if (r->rt && r->rt->stream) {
      /* a declared body over the cap is refused before a byte is read */
      if (http_req_content_length(r) > 0 && (uint64_t)http_req_content_length(r) > r->body_max) {
        r->too_large = true;
        http_dispatch(r);
        return http_send_reply(r);
      }
      return http_body_start(r);
    }
    presize_body(r);
    /* A declared body far over the cap is refused before it is read: reading it just to
     * discard it would let a client tie up the connection. Within 4x the cap we read and
     * discard, so ordinary clients that send the whole body first still see the 413. */
    if (r->too_large) {
      const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
      unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
      if (n / 4 > r->body_max) {
        http_dispatch(r);
        return http_send_reply(r);
      }
    }
    return MHD_YES;
  }
  if (r->stream) return http_body_feed(r, upload_data, upload_data_size);
  if (*upload_data_size) {
    body_append(r, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (r->resp) return r->queued ? http_send_reply(r) : MHD_YES; /* the worker's answer, or an early one */
  if (r->queued) return http_send_reply(r);                     /* the handler answered nothing: send_reply says 500 */
  if (r->too_large || !r->rt) {                                 /* no handler to run: answer on the loop */
    http_dispatch(r);
    return http_send_reply(r);
  }
  r->queued = true;
  MHD_suspend_connection(conn);
  workq_push(&s->wq, r);
  return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
  (void)conn;
  http_server *s = cls;
  http_req *r = *con_cls;
  if (!r) return;
  struct timespec end;
  clock_gettime(CLOCK_MONOTONIC, &end);
  double secs = (double)(end.tv_sec - r->start.tv_sec) + (double)(end.tv_nsec - r->start.tv_nsec) / 1e9;
  if (!r->status) r->status = 499; /* client went away before an answer */
  http_record_stats(s, r, secs);
  end_span(s, r);
  char qpath[300], qmethod[48];
  /* the access log is deferred (buffered, see log.h) unless the line reports a failure */
  void (*emit)(log_sink *, log_level, const char *, const char *, ...) =
      r->status >= 500 ? log_event : log_event_deferred;
  emit(s->lg, r->status >= 500 ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, "request",
       "method=%s path=%s status=%u duration_ms=%.2f bytes_in=%" PRIu64 " request_id=%s%s%s%s",
       log_quote(qmethod, sizeof qmethod, r->method), log_quote(qpath, sizeof qpath, r->path), r->status, secs * 1000.0,
       r->stream ? http_body_received(r) : (uint64_t)r->body_len, r->id, r->trace_id[0] ? " trace_id=" : "",
       r->trace_id, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=true");
  *con_cls = NULL;
  if (r->stream && http_body_completed(r)) return; /* its handler's thread frees it */
  http_req_free(r);
  atomic_fetch_sub(&s->in_flight, 1);
}

/* ---------- accessors ---------- */

const char *http_req_method(const http_req *r) { return r->method; }
const char *http_req_path(const http_req *r) { return r->path; }

int64_t http_req_content_length(const http_req *r) {
  const char *cl = http_req_header(r, "Content-Length");
  if (!cl || !*cl) return -1;
  char *end;
  errno = 0;
  unsigned long long n = strtoull(cl, &end, 10);
  if (errno || *end || cl[0] == '-' || n > INT64_MAX) return -1;
  return (int64_t)n;
}
const char *http_req_id(const http_req *r) { return r->id; }
void http_req_trace(const http_req *r, trace_ctx *out) { trace_span_ctx(&r->span, out); }
const char *http_req_trace_id(const http_req *r) { return r->trace_id; }
log_sink *http_req_log(const http_req *r) { return r->srv->lg; }

const char *http_req_param(const http_req *r, const char *name) {
  for (int i = 0; i < r->nparams; i++)
    if (strcmp(r->pnames[i], name) == 0) return r->pvals[i];
  return NULL;
}

const char *http_req_query(const http_req *r, const char *name) {
  if (r->stream) return http_body_query(r, name);
  return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_req_header(const http_req *r, const char *name) {
  if (r->stream) return http_body_header(r, name);
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_req_body(const http_req *r, size_t *len) {
  if (len) *len = r->body_len;
  return r->body ? r->body : "";
}

static bool json_content_type(const char *ct) {
  if (!ct || !*ct) return true;
  size_t n = strcspn(ct, ";");
  while (n && ct[n - 1] == ' ') n--;
  if (n == 16 && strncasecmp(ct, "application/json", 16) == 0) return true;
  return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

json_t *http_req_json(http_req *r) {
  const char *ct = http_req_header(r, "Content-Type");
  if (!json_content_type(ct)) {
    http_reply_errorf(r, 415, "Content type '%s' is not supported. Use application/json", ct);
    return NULL;
  }
  json_error_t err;
  json_t *v = json_loadb(r->body ? r->body : "", r->body_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
  if (!v) http_reply_error(r, 400, "Malformed JSON request body");
  return v;
}


/* ---------- settings ---------- */

void http_server_opts_env(http_server_opts *o, config_err *err) {
  o->event_loops = (unsigned)config_int("HTTP_EVENT_LOOPS", o->event_loops, 0, 64, err);
  o->workers = (unsigned)config_int("HTTP_WORKERS", o->workers, 0, 1024, err);
  o->max_connections = (unsigned)config_int("HTTP_MAX_CONNECTIONS", o->max_connections, 0, 100000, err);
  o->idle_timeout_s = (unsigned)config_int("HTTP_IDLE_TIMEOUT", o->idle_timeout_s, 0, 3600, err);
  o->max_streams = (unsigned)config_int("HTTP_MAX_STREAMS", o->max_streams, 0, 4096, err);
}
