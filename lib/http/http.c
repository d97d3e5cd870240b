/*
 * http: see http.h for the design. Internals:
 * - `route`: a pattern split into segments once at registration; matching walks the path
 *   segments without copying except for parameter values, stored in the request.
 * - `http_req`: created on libmicrohttpd's first callback for a request, filled with body
 *   chunks on the following ones, dispatched on the last (upload size 0), freed in the
 *   completion callback, which also runs when the client goes away mid-request.
 * - metrics: per route, a small table of (status -> count, sum, max) under one mutex;
 *   requests that match no route are counted under uri "UNKNOWN".
 */
#include "http.h"

#include "text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

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

struct http_server {
  http_server_opts opts;
  log *lg;
  struct MHD_Daemon *daemon;
  route *routes, *unknown; /* `unknown` only carries metrics */
  pthread_mutex_t stats_mu;
  atomic_int in_flight;
  atomic_bool stopping;
  atomic_uint_fast64_t next_id;
  uint64_t id_salt;
};

struct http_req {
  http_server *srv;
  struct MHD_Connection *conn;
  const char *method, *path; /* borrowed from libmicrohttpd, valid for the request */
  route *rt;                 /* NULL: no route; then `status_hint` says 404 or 405 */
  unsigned status_hint;
  char allow[96];            /* for a 405: the methods the path has (RFC 9110's Allow) */
  char *pnames[MAX_PARAMS], *pvals[MAX_PARAMS];
  int nparams;
  char *body;
  size_t body_len, body_cap, body_max;
  bool too_large;
  char id[72]; /* token_ok allows 64 characters */
  struct timespec start;
  struct MHD_Response *resp;
  unsigned status;
  char *hname[MAX_HEADERS], *hval[MAX_HEADERS];
  int nheaders;
  uint64_t resp_bytes;
};

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

int http_server_route(http_server *s, const char *method, const char *pattern, http_handler h,
                      void *ctx, size_t max_body) {
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
  route **tail = &s->routes;
  while (*tail) tail = &(*tail)->next;
  *tail = r;
  return HTTP_OK;
fail:
  route_free(r);
  return HTTP_ERR_NOMEM;
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

/* ---------- server lifecycle ---------- */

http_server *http_server_new(const http_server_opts *opts, log *lg) {
  http_server *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  if (opts) s->opts = *opts;
  if (!s->opts.max_body) s->opts.max_body = 1u << 20;
  if (!s->opts.max_connections) s->opts.max_connections = 1024;
  if (!s->opts.idle_timeout_s) s->opts.idle_timeout_s = 60;
  if (!s->opts.shutdown_grace_ms) s->opts.shutdown_grace_ms = 30000;
  s->lg = lg;
  s->unknown = calloc(1, sizeof *s->unknown);
  if (!s->unknown || pthread_mutex_init(&s->stats_mu, NULL) != 0) {
    free(s->unknown);
    free(s);
    return NULL;
  }
  s->unknown->pattern = strdup("UNKNOWN");
  s->unknown->method = strdup("*");
  if (getrandom(&s->id_salt, sizeof s->id_salt, 0) != sizeof s->id_salt)
    s->id_salt = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  return s;
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
  pthread_mutex_destroy(&s->stats_mu);
  free(s);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls);
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe);

static void on_mhd_error(void *cls, const char *fm, va_list ap) {
  http_server *s = cls;
  char buf[512];
  vsnprintf(buf, sizeof buf, fm, ap);
  size_t n = strlen(buf);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
  char q[600];
  log_event(s->lg, LOG_WARN, "http server", "detail=%s", log_quote(q, sizeof q, buf));
}

int http_server_start(http_server *s) {
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->opts.port)};
  if (s->opts.bind_addr && inet_pton(AF_INET, s->opts.bind_addr, &addr.sin_addr) != 1)
    return HTTP_ERR_START;
  if (!s->opts.bind_addr) addr.sin_addr.s_addr = htonl(INADDR_ANY);
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                   MHD_USE_ITC | MHD_USE_ERROR_LOG;
  s->daemon = MHD_start_daemon(
      flags, (uint16_t)s->opts.port, NULL, NULL, on_access, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, s,
      MHD_OPTION_SOCK_ADDR, &addr,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
      s->opts.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, s->opts.idle_timeout_s,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_LISTENING_ADDRESS_REUSE,
      1, MHD_OPTION_END);
  return s->daemon ? HTTP_OK : HTTP_ERR_START;
}

unsigned http_server_port(const http_server *s) {
  if (!s->daemon) return 0;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  return info ? info->port : 0;
}

void http_server_stop(http_server *s) {
  if (!s || !s->daemon) return;
  atomic_store(&s->stopping, true);
  MHD_socket fd = MHD_quiesce_daemon(s->daemon);
  if (fd != MHD_INVALID_SOCKET) close(fd);
  for (unsigned waited = 0; atomic_load(&s->in_flight) > 0 && waited < s->opts.shutdown_grace_ms;
       waited += 10)
    usleep(10000);
  int left = atomic_load(&s->in_flight);
  if (left > 0) log_event(s->lg, LOG_WARN, "shutdown grace period over", "in_flight=%d", left);
  MHD_stop_daemon(s->daemon);
  s->daemon = NULL;
}

/* ---------- request handling ---------- */

static bool token_ok(const char *v) {
  size_t n = strlen(v);
  if (n == 0 || n > 64) return false;
  for (size_t i = 0; i < n; i++) {
    char c = v[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.'))
      return false;
  }
  return true;
}

static http_req *req_new(http_server *s, struct MHD_Connection *conn, const char *url,
                         const char *method) {
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
  return r;
}

static void req_free(http_req *r) {
  if (!r) return;
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

static enum MHD_Result send_reply(http_req *r) {
  if (!r->resp) {
    char why[64];
    snprintf(why, sizeof why, "handler for %s %s gave no response", r->method,
             r->rt ? r->rt->pattern : "?");
    http_reply_internal(r, why);
  }
  if (!r->resp) return MHD_NO;
  return MHD_queue_response(r->conn, r->status, r->resp);
}

static void dispatch(http_req *r) {
  if (r->too_large) {
    http_reply_errorf(r, 413, "Request body is too large: maximum allowed is %zu bytes", r->body_max);
  } else if (!r->rt) {
    if (r->status_hint == 405) {
      http_reply_header(r, "Allow", r->allow);
      http_reply_errorf(r, 405, "Method %s is not allowed for %s", r->method, r->path);
    }
    else if (r->status_hint == 500)
      http_reply_internal(r, "out of memory matching route");
    else
      http_reply_errorf(r, 404, "No endpoint %s %s", r->method, r->path);
  } else {
    r->rt->handler(r, r->rt->ctx);
  }
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
  http_server *s = cls;
  http_req *r = *con_cls;
  if (!r) {
    r = req_new(s, conn, url, method);
    if (!r) return MHD_NO;
    *con_cls = r;
    atomic_fetch_add(&s->in_flight, 1);
    presize_body(r);
    /* A declared body far over the cap is refused before it is read: reading it just to
     * discard it would let a client tie up the connection. Within 4x the cap we read and
     * discard, so ordinary clients that send the whole body first still see the 413. */
    if (r->too_large) {
      const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
      unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
      if (n / 4 > r->body_max) {
        dispatch(r);
        return send_reply(r);
      }
    }
    return MHD_YES;
  }
  if (*upload_data_size) {
    body_append(r, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (r->resp) return MHD_YES; /* already answered early */
  dispatch(r);
  return send_reply(r);
}

static void record_stats(http_server *s, http_req *r, double secs) {
  route *rt = r->rt ? r->rt : s->unknown;
  pthread_mutex_lock(&s->stats_mu);
  status_stat *st = NULL;
  for (int i = 0; i < rt->nstats; i++)
    if (rt->stats[i].status == r->status) st = &rt->stats[i];
  if (!st && rt->nstats < MAX_STATUSES) {
    st = &rt->stats[rt->nstats++];
    st->status = r->status;
  }
  if (st) {
    st->count++;
    st->sum_s += secs;
    if (secs > st->max_s) st->max_s = secs;
  }
  pthread_mutex_unlock(&s->stats_mu);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  http_server *s = cls;
  http_req *r = *con_cls;
  if (!r) return;
  struct timespec end;
  clock_gettime(CLOCK_MONOTONIC, &end);
  double secs = (double)(end.tv_sec - r->start.tv_sec) + (double)(end.tv_nsec - r->start.tv_nsec) / 1e9;
  if (!r->status) r->status = 499; /* client went away before an answer */
  record_stats(s, r, secs);
  char qpath[300], qmethod[48];
  log_event(s->lg, r->status >= 500 ? LOG_WARN : LOG_INFO, "request",
            "method=%s path=%s status=%u duration_ms=%.2f bytes_in=%zu request_id=%s%s",
            log_quote(qmethod, sizeof qmethod, r->method), log_quote(qpath, sizeof qpath, r->path), r->status, secs * 1000.0, r->body_len, r->id,
            toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=true");
  req_free(r);
  *con_cls = NULL;
  atomic_fetch_sub(&s->in_flight, 1);
}

/* ---------- accessors ---------- */

const char *http_req_method(const http_req *r) { return r->method; }
const char *http_req_path(const http_req *r) { return r->path; }
const char *http_req_id(const http_req *r) { return r->id; }
log *http_req_log(const http_req *r) { return r->srv->lg; }

const char *http_req_param(const http_req *r, const char *name) {
  for (int i = 0; i < r->nparams; i++)
    if (strcmp(r->pnames[i], name) == 0) return r->pvals[i];
  return NULL;
}

const char *http_req_query(const http_req *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_req_header(const http_req *r, const char *name) {
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
  json_t *v = json_loadb(r->body ? r->body : "", r->body_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                         &err);
  if (!v) http_reply_error(r, 400, "Malformed JSON request body");
  return v;
}

/* ---------- replies ---------- */

char *http_json_dump(const json_t *body) { return json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY); }

void http_reply_header(http_req *r, const char *name, const char *value) {
  if (r->nheaders == MAX_HEADERS) return;
  char *n = strdup(name), *v = strdup(value);
  if (!n || !v) {
    free(n);
    free(v);
    return;
  }
  r->hname[r->nheaders] = n;
  r->hval[r->nheaders++] = v;
}

static void finish(http_req *r, unsigned status, struct MHD_Response *resp, const char *ctype) {
  if (!resp) {
    /* Allocation failed: fall back to a static body so the client still gets an answer. */
    static const char oom[] = "{\"errorMessage\":\"Internal server error\",\"errorCode\":\"500\"}";
    resp = MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
    status = 500;
    ctype = "application/json";
    if (!resp) return;
  }
  if (r->resp) { /* a second reply: keep the first, it is what the handler meant */
    MHD_destroy_response(resp);
    return;
  }
  if (ctype) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  MHD_add_response_header(resp, "X-Request-Id", r->id);
  for (int i = 0; i < r->nheaders; i++) MHD_add_response_header(resp, r->hname[i], r->hval[i]);
  if (atomic_load(&r->srv->stopping)) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  r->resp = resp;
  r->status = status;
}

void http_reply_buffer(http_req *r, unsigned status, const char *content_type, void *data, size_t len,
                       void (*free_fn)(void *)) {
  struct MHD_Response *resp =
      free_fn ? MHD_create_response_from_buffer_with_free_callback(len, data, free_fn)
              : MHD_create_response_from_buffer(len, data, MHD_RESPMEM_PERSISTENT);
  if (!resp && free_fn) free_fn(data);
  r->resp_bytes = len;
  finish(r, status, resp, content_type);
}

void http_reply_metrics(http_req *r, char *text) {
  if (!text) {
    http_reply_internal(r, "metrics rendering failed");
    return;
  }
  http_reply_buffer(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text), free);
}

char *http_metrics_join(char *a, char *b) {
  char *all = NULL;
  if (a && b) {
    size_t na = strlen(a), nb = strlen(b);
    all = realloc(a, na + nb + 1);
    if (all) {
      memcpy(all + na, b, nb + 1);
      a = NULL;
    }
  }
  free(a);
  free(b);
  return all;
}

void http_reply_json(http_req *r, unsigned status, json_t *body) {
  char *s = body ? http_json_dump(body) : NULL;
  json_decref(body);
  if (!s) {
    finish(r, 500, NULL, NULL);
    return;
  }
  http_reply_buffer(r, status, "application/json", s, strlen(s), free);
}

void http_reply_ids(http_req *r, const int32_t *ids, size_t n) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; i++) json_array_append_new(arr, json_integer(ids[i]));
  http_reply_json(r, 200, arr ? json_pack("{s:o}", "ids", arr) : NULL);
}

void http_reply_error(http_req *r, unsigned status, const char *message) {
  char code[8];
  snprintf(code, sizeof code, "%u", status);
  /* messages echo client input (ids, paths, content types) that need not be UTF-8: JSON
   * must be, so bad bytes become U+FFFD and the answer stays the one intended */
  char *clean = NULL;
  if (!text_utf8_valid(message, strlen(message))) {
    clean = text_utf8_sanitize(message, strlen(message));
    if (clean == NULL) {
      finish(r, 500, NULL, NULL);
      return;
    }
    message = clean;
  }
  json_t *o = json_pack("{s:s, s:s}", "errorMessage", message, "errorCode", code);
  free(clean);
  http_reply_json(r, status, o);
}

void http_reply_errorf(http_req *r, unsigned status, const char *fmt, ...) {
  /* sized to the message: the contract echoes client values verbatim, however long
   * (a path is bounded by the connection's memory pool) */
  char *msg = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&msg, fmt, ap);
  va_end(ap);
  if (n < 0) {
    finish(r, 500, NULL, NULL);
    return;
  }
  http_reply_error(r, status, msg);
  free(msg);
}

void http_reply_validation(http_req *r, json_t *details) {
  json_t *o = json_pack("{s:s, s:o, s:s}", "errorMessage", "Validation error", "details", details,
                        "errorCode", "400");
  http_reply_json(r, 400, o);
}

void http_reply_internal(http_req *r, const char *why) {
  char q[512];
  log_event(r->srv->lg, LOG_ERROR, "internal error", "request_id=%s detail=%s", r->id,
            log_quote(q, sizeof q, why));
  http_reply_error(r, 500, "Internal server error");
}

typedef struct {
  http_reader reader;
  void *ctx;
  void (*done)(void *);
} stream_ctx;

static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max) {
  stream_ctx *sc = cls;
  long n = sc->reader(sc->ctx, pos, buf, max);
  return n < 0 ? MHD_CONTENT_READER_END_WITH_ERROR : (ssize_t)n;
}

static void stream_free(void *cls) {
  stream_ctx *sc = cls;
  if (sc->done) sc->done(sc->ctx);
  free(sc);
}

void http_reply_stream(http_req *r, unsigned status, const char *content_type, uint64_t size,
                       http_reader reader, void *ctx, void (*done)(void *ctx)) {
  stream_ctx *sc = malloc(sizeof *sc);
  if (!sc) {
    if (done) done(ctx);
    finish(r, 500, NULL, NULL);
    return;
  }
  *sc = (stream_ctx){reader, ctx, done};
  struct MHD_Response *resp = MHD_create_response_from_callback(size, 64 * 1024, stream_cb, sc, stream_free);
  if (!resp) stream_free(sc);
  r->resp_bytes = size;
  finish(r, status, resp, content_type);
}

/* ---------- metrics ---------- */

typedef struct {
  char *buf;
  size_t len, cap;
  bool failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  if (b->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->failed = true;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = b->cap * 2 + (size_t)n + 1;
    char *nb = realloc(b->buf, cap);
    if (!nb) {
      b->failed = true;
      return;
    }
    b->buf = nb;
    b->cap = cap;
  }
}

static void route_metrics(sbuf *b, const route *rt, const char *suffix) {
  for (int i = 0; i < rt->nstats; i++) {
    const status_stat *st = &rt->stats[i];
    if (strcmp(suffix, "count") == 0)
      sb_printf(b, "http_server_requests_seconds_count{method=\"%s\",uri=\"%s\",status=\"%u\"} %llu\n",
                rt->method, rt->pattern, st->status, (unsigned long long)st->count);
    else if (strcmp(suffix, "sum") == 0)
      sb_printf(b, "http_server_requests_seconds_sum{method=\"%s\",uri=\"%s\",status=\"%u\"} %.6f\n",
                rt->method, rt->pattern, st->status, st->sum_s);
    else
      sb_printf(b, "http_server_requests_seconds_max{method=\"%s\",uri=\"%s\",status=\"%u\"} %.6f\n",
                rt->method, rt->pattern, st->status, st->max_s);
  }
}

char *http_server_metrics(http_server *s) {
  sbuf b = {malloc(4096), 0, 4096, false};
  if (!b.buf) return NULL;
  b.buf[0] = '\0';
  static const char *const parts[] = {"count", "sum", "max"};
  pthread_mutex_lock(&s->stats_mu);
  for (int p = 0; p < 3; p++) {
    sb_printf(&b, "# HELP http_server_requests_seconds_%s HTTP server requests\n", parts[p]);
    sb_printf(&b, "# TYPE http_server_requests_seconds_%s %s\n", parts[p], p == 2 ? "gauge" : "counter");
    for (route *rt = s->routes; rt; rt = rt->next) route_metrics(&b, rt, parts[p]);
    route_metrics(&b, s->unknown, parts[p]);
  }
  pthread_mutex_unlock(&s->stats_mu);
  if (b.failed) {
    free(b.buf);
    return NULL;
  }
  return b.buf;
}
