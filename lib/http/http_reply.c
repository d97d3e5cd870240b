/*
 * http_reply: the http_reply_* functions and streamed response bodies (see http.h).
 * A streamed body's reader may answer HTTP_READ_WAIT: the connection is then suspended
 * (it costs no thread) until the reader's owner calls http_wake_up, which resumes it.
 */
#include "http_internal.h"

#include "text/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *http_json_dump(const json_t *body) {
  return json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
}

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

void http_finish(http_req *r, unsigned status, struct MHD_Response *resp, const char *ctype) {
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
  struct MHD_Response *resp = free_fn ? MHD_create_response_from_buffer_with_free_callback(len, data, free_fn)
                                      : MHD_create_response_from_buffer(len, data, MHD_RESPMEM_PERSISTENT);
  if (!resp && free_fn) free_fn(data);
  r->resp_bytes = len;
  http_finish(r, status, resp, content_type);
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
    http_finish(r, 500, NULL, NULL);
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
      http_finish(r, 500, NULL, NULL);
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
    http_finish(r, 500, NULL, NULL);
    return;
  }
  http_reply_error(r, status, msg);
  free(msg);
}

void http_reply_validation(http_req *r, json_t *details) {
  json_t *o = json_pack("{s:s, s:o, s:s}", "errorMessage", "Validation error", "details", details, "errorCode", "400");
  http_reply_json(r, 400, o);
}

void http_reply_internal(http_req *r, const char *why) {
  char q[512];
  log_event(r->srv->lg, LOG_LEVEL_ERROR, "internal error", "request_id=%s%s%s detail=%s", r->id,
            r->trace_id[0] ? " trace_id=" : "", r->trace_id, log_quote(q, sizeof q, why));
  http_reply_error(r, 500, "Internal server error");
}

/* ---------- streamed bodies ---------- */

typedef struct {
  http_reader reader;
  void *ctx;
  void (*done)(void *);
  http_wake wake;
} stream_ctx;

/* The suspension state of every stream of a server is guarded by its waiting_mu: waking
 * is rare (once per buffer the reader's producer fills), and one lock lets a hard stop
 * resume them all without racing the producers. */
static void waiting_add(http_server *s, http_wake *w) {
  w->prev = NULL;
  w->next = s->waiting;
  if (s->waiting) s->waiting->prev = w;
  s->waiting = w;
}

static void waiting_remove(http_server *s, http_wake *w) {
  if (w->prev)
    w->prev->next = w->next;
  else if (s->waiting == w)
    s->waiting = w->next;
  if (w->next) w->next->prev = w->prev;
  w->prev = w->next = NULL;
}

/* Resumes the connection if it is suspended for this stream; else marks the wake-up
 * pending, so that a reader answering WAIT right before it is called again at once.
 * Caller holds waiting_mu. */
static void wake_locked(http_server *s, http_wake *w) {
  if (w->suspended) {
    w->suspended = false;
    waiting_remove(s, w);
    MHD_resume_connection(w->conn);
  } else {
    w->pending = true;
  }
}

void http_wake_up(http_wake *w) {
  http_server *s = w->srv;
  pthread_mutex_lock(&s->waiting_mu);
  wake_locked(s, w);
  pthread_mutex_unlock(&s->waiting_mu);
}

void http_wake_all(http_server *s) {
  pthread_mutex_lock(&s->waiting_mu);
  while (s->waiting) wake_locked(s, s->waiting);
  pthread_mutex_unlock(&s->waiting_mu);
}

/* Runs on an event loop: never blocks. */
static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max) {
  stream_ctx *sc = cls;
  http_wake *w = &sc->wake;
  for (;;) {
    if (atomic_load(&w->srv->hard_stop)) return MHD_CONTENT_READER_END_WITH_ERROR;
    long n = sc->reader(sc->ctx, pos, buf, max, w);
    if (n != HTTP_READ_WAIT) return n < 0 ? MHD_CONTENT_READER_END_WITH_ERROR : (ssize_t)n;
    http_server *s = w->srv;
    pthread_mutex_lock(&s->waiting_mu);
    if (w->pending) { /* the data came while the reader was answering */
      w->pending = false;
      pthread_mutex_unlock(&s->waiting_mu);
      continue;
    }
    w->suspended = true;
    waiting_add(s, w);
    MHD_suspend_connection(w->conn);
    pthread_mutex_unlock(&s->waiting_mu);
    return 0; /* libmicrohttpd calls again once resumed */
  }
}

static void stream_free(void *cls) {
  stream_ctx *sc = cls;
  if (sc->done) sc->done(sc->ctx);
  free(sc);
}

void http_reply_stream(http_req *r, unsigned status, const char *content_type, uint64_t size, http_reader reader,
                       void *ctx, void (*done)(void *ctx)) {
  stream_ctx *sc = calloc(1, sizeof *sc);
  if (!sc) {
    if (done) done(ctx);
    http_finish(r, 500, NULL, NULL);
    return;
  }
  sc->reader = reader;
  sc->ctx = ctx;
  sc->done = done;
  sc->wake.srv = r->srv;
  sc->wake.conn = r->conn;
  struct MHD_Response *resp = MHD_create_response_from_callback(size, 64 * 1024, stream_cb, sc, stream_free);
  if (!resp) stream_free(sc);
  r->resp_bytes = size;
  http_finish(r, status, resp, content_type);
}
