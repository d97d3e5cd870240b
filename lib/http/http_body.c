/*
 * http_body: request bodies their handlers read as they arrive (http_server_route_stream).
 *
 * The loop side (http_body_feed, on an event loop, never blocking) copies each chunk
 * libmicrohttpd hands over into the request's ring; what does not fit stays with
 * libmicrohttpd (*size is left at the rest) and the connection is suspended, so a slow
 * consumer holds the client back through TCP instead of growing a buffer. The handler
 * side (http_req_read, on the handler's own thread) takes bytes out and resumes the
 * connection once half the ring is free. When the body has arrived and the handler has
 * not answered yet, the connection is suspended until it has; when the handler answered
 * before the end, the rest is discarded (up to HTTP_DRAIN_MAX) and then the answer sent.
 *
 * Suspending and resuming happen under the body's mutex, so exactly one side flips each
 * wait flag and resumes; libmicrohttpd calls neither callback for a suspended connection.
 */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
  http_body *b;
  char ***name, ***val;
  int *n;
  bool failed;
} copy_ctx;

static enum MHD_Result copy_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  (void)kind;
  copy_ctx *cc = cls;
  char **nn = realloc(*cc->name, (size_t)(*cc->n + 1) * sizeof *nn);
  if (nn) *cc->name = nn;
  char **nv = realloc(*cc->val, (size_t)(*cc->n + 1) * sizeof *nv);
  if (nv) *cc->val = nv;
  if (!nn || !nv) {
    cc->failed = true;
    return MHD_NO;
  }
  char *k = strdup(key ? key : ""), *v = strdup(value ? value : "");
  if (!k || !v) {
    free(k);
    free(v);
    cc->failed = true;
    return MHD_NO;
  }
  (*cc->name)[*cc->n] = k;
  (*cc->val)[*cc->n] = v;
  (*cc->n)++;
  return MHD_YES;
}

static bool copy_kind(http_req *r, enum MHD_ValueKind kind, char ***name, char ***val, int *n) {
  copy_ctx cc = {.b = r->stream, .name = name, .val = val, .n = n};
  MHD_get_connection_values(r->conn, kind, copy_value, &cc);
  return !cc.failed;
}

void http_body_free(http_body *b) {
  if (!b) return;
  for (int i = 0; i < b->nhdr; i++) free(b->hname[i]), free(b->hval[i]);
  for (int i = 0; i < b->nq; i++) free(b->qname[i]), free(b->qval[i]);
  free(b->hname);
  free(b->hval);
  free(b->qname);
  free(b->qval);
  free(b->method);
  free(b->path);
  free(b->ring);
  pthread_cond_destroy(&b->cv);
  pthread_mutex_destroy(&b->mu);
  free(b);
}

static const char *lookup(char **names, char **vals, int n, const char *name, bool nocase) {
  for (int i = 0; i < n; i++)
    if ((nocase ? strcasecmp(names[i], name) : strcmp(names[i], name)) == 0) return vals[i];
  return NULL;
}

const char *http_body_header(const http_req *r, const char *name) {
  const http_body *b = r->stream;
  return lookup(b->hname, b->hval, b->nhdr, name, true);
}

const char *http_body_query(const http_req *r, const char *name) {
  const http_body *b = r->stream;
  return lookup(b->qname, b->qval, b->nq, name, false);
}

uint64_t http_body_received(http_req *r) {
  pthread_mutex_lock(&r->stream->mu);
  uint64_t n = r->stream->received;
  pthread_mutex_unlock(&r->stream->mu);
  return n;
}

/* Drops one of the two references; the last one frees the request. */
static void release(http_req *r) {
  http_body *b = r->stream;
  pthread_mutex_lock(&b->mu);
  bool last = --b->refs == 0;
  pthread_mutex_unlock(&b->mu);
  if (!last) return;
  http_server *s = r->srv;
  http_req_free(r);
  atomic_fetch_sub(&s->in_flight, 1);
}

/* Resumes the connection if it waits for the handler; caller holds b->mu. */
static void resume_locked(http_req *r) {
  http_body *b = r->stream;
  if ((b->wait_space || b->wait_reply) && !b->completed) {
    b->wait_space = b->wait_reply = false;
    MHD_resume_connection(r->conn);
  }
}

static void *handler_main(void *arg) {
  http_req *r = arg;
  http_body *b = r->stream;
  http_server *s = r->srv;
  r->rt->handler(r, r->rt->ctx);
  pthread_mutex_lock(&b->mu);
  bool too_large = b->too_large;
  pthread_mutex_unlock(&b->mu);
  if (too_large) { /* whatever the handler said, the body was refused */
    if (r->resp) MHD_destroy_response(r->resp);
    r->resp = NULL;
    r->nheaders = 0;
    http_reply_errorf(r, 413, "Request body is too large: maximum allowed is %zu bytes", r->body_max);
  }
  http_reply_missing(r);
  pthread_mutex_lock(&b->mu);
  b->done = true;
  b->answered_at = b->received;
  resume_locked(r); /* the loop sends the answer (or drains the rest first) */
  pthread_mutex_unlock(&b->mu);

  pthread_mutex_lock(&s->bodies_mu);
  if (b->prev)
    b->prev->next = b->next;
  else
    s->bodies = b->next;
  if (b->next) b->next->prev = b->prev;
  s->nbodies--;
  pthread_cond_broadcast(&s->bodies_cv);
  pthread_mutex_unlock(&s->bodies_mu);
  release(r);
  return NULL;
}

static enum MHD_Result busy(http_req *r) {
  http_reply_header(r, "Connection", "close");
  http_reply_errorf(r, 503, "Too many uploads in progress: the server's limit is %u, please retry later",
                    r->srv->opts.max_streams);
  return http_send_reply(r);
}

enum MHD_Result http_body_start(http_req *r) {
  http_server *s = r->srv;
  http_body *b = calloc(1, sizeof *b);
  if (!b) return MHD_NO;
  if (pthread_mutex_init(&b->mu, NULL) != 0) {
    free(b);
    return MHD_NO;
  }
  if (pthread_cond_init(&b->cv, NULL) != 0) {
    pthread_mutex_destroy(&b->mu);
    free(b);
    return MHD_NO;
  }
  r->stream = b;
  b->cap = HTTP_STREAM_BUFFER;
  b->ring = malloc(b->cap);
  b->method = strdup(r->method);
  b->path = strdup(r->path);
  if (!b->ring || !b->method || !b->path || !copy_kind(r, MHD_HEADER_KIND, &b->hname, &b->hval, &b->nhdr) ||
      !copy_kind(r, MHD_GET_ARGUMENT_KIND, &b->qname, &b->qval, &b->nq))
    return MHD_NO; /* the completion callback frees what was made */
  r->method = b->method;
  r->path = b->path;
  b->refs = 1; /* the loop's, until the completion callback */

  pthread_mutex_lock(&s->bodies_mu);
  if (s->nbodies >= s->opts.max_streams || atomic_load(&s->stopping)) {
    pthread_mutex_unlock(&s->bodies_mu);
    b->done = true; /* no handler: the body, if any, is not read */
    return busy(r);
  }
  b->refs = 2;
  pthread_attr_t attr;
  pthread_t t;
  bool started = pthread_attr_init(&attr) == 0;
  if (started) {
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    started = pthread_create(&t, &attr, handler_main, r) == 0;
    pthread_attr_destroy(&attr);
  }
  if (!started) {
    b->refs = 1;
    pthread_mutex_unlock(&s->bodies_mu);
    b->done = true;
    return busy(r);
  }
  s->nbodies++;
  b->next = s->bodies;
  if (s->bodies) s->bodies->prev = b;
  s->bodies = b;
  pthread_mutex_unlock(&s->bodies_mu);
  return MHD_YES;
}

enum MHD_Result http_body_feed(http_req *r, const char *data, size_t *size) {
  http_body *b = r->stream;
  pthread_mutex_lock(&b->mu);
  if (b->done) {
    /* answered: discard the rest, then send the answer (a client that sends everything
     * before it reads sees it); HTTP_DRAIN_MAX past the answer, the answer goes out at
     * once and the connection closes */
    b->received += *size;
    bool now = *size == 0 || b->received - b->answered_at > HTTP_DRAIN_MAX;
    *size = 0;
    pthread_mutex_unlock(&b->mu);
    return now ? http_send_reply(r) : MHD_YES;
  }
  if (*size == 0) { /* the whole body is in: wait for the answer */
    b->eof = true;
    pthread_cond_broadcast(&b->cv);
    b->wait_reply = true;
    MHD_suspend_connection(r->conn);
    pthread_mutex_unlock(&b->mu);
    return MHD_YES;
  }
  if (b->too_large) { /* the handler is being told; hold the client until it answered */
    b->wait_reply = true;
    MHD_suspend_connection(r->conn);
    pthread_mutex_unlock(&b->mu);
    return MHD_YES;
  }
  size_t take = b->cap - b->len;
  if (take > *size) take = *size;
  if (b->received + take > r->body_max) {
    b->too_large = true;
    pthread_cond_broadcast(&b->cv);
    b->wait_reply = true;
    MHD_suspend_connection(r->conn);
    pthread_mutex_unlock(&b->mu);
    return MHD_YES;
  }
  size_t tail = (b->head + b->len) % b->cap;
  size_t first = take < b->cap - tail ? take : b->cap - tail;
  memcpy(b->ring + tail, data, first);
  memcpy(b->ring, data + first, take - first);
  b->len += take;
  b->received += take;
  *size -= take;
  if (take) pthread_cond_broadcast(&b->cv);
  if (*size) { /* the ring is full: libmicrohttpd keeps the rest until we resume */
    b->wait_space = true;
    MHD_suspend_connection(r->conn);
  }
  pthread_mutex_unlock(&b->mu);
  return MHD_YES;
}

long http_req_read(http_req *r, void *buf, size_t cap) {
  http_body *b = r->stream;
  if (!b) return HTTP_BODY_ABORTED;
  pthread_mutex_lock(&b->mu);
  while (b->len == 0 && !b->eof && !b->aborted && !b->too_large) pthread_cond_wait(&b->cv, &b->mu);
  long n;
  if (b->aborted)
    n = HTTP_BODY_ABORTED;
  else if (b->too_large)
    n = HTTP_BODY_TOO_LARGE;
  else {
    size_t take = b->len < cap ? b->len : cap;
    size_t first = take < b->cap - b->head ? take : b->cap - b->head;
    memcpy(buf, b->ring + b->head, first);
    memcpy((char *)buf + first, b->ring, take - first);
    b->head = (b->head + take) % b->cap;
    b->len -= take;
    n = (long)take;
    if (b->wait_space && b->cap - b->len >= b->cap / 2) resume_locked(r);
  }
  pthread_mutex_unlock(&b->mu);
  return n;
}

bool http_body_completed(http_req *r) {
  http_body *b = r->stream;
  pthread_mutex_lock(&b->mu);
  b->completed = true;
  if (!b->done) b->aborted = true; /* the client went away before the handler answered */
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
  /* the loop's reference: the request lives on while its handler's thread still runs */
  pthread_mutex_lock(&b->mu);
  bool last = --b->refs == 0;
  pthread_mutex_unlock(&b->mu);
  return !last;
}

void http_body_stop_all(http_server *s) {
  pthread_mutex_lock(&s->bodies_mu);
  for (;;) {
    for (http_body *b = s->bodies; b; b = b->next) {
      pthread_mutex_lock(&b->mu);
      b->aborted = true;
      pthread_cond_broadcast(&b->cv);
      pthread_mutex_unlock(&b->mu);
    }
    if (s->nbodies == 0) break;
    pthread_cond_wait(&s->bodies_cv, &s->bodies_mu);
  }
  pthread_mutex_unlock(&s->bodies_mu);
}
