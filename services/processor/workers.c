/* workers: see workers.h. */
#include "workers.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "msgs/msgs.h"

typedef struct worker {
  struct workers *pool;
  unsigned index;
  mq_consumer *consumer;
  mq_publisher *pub; /* used only on this worker's consumer thread */
  uint64_t rng;      /* backoff jitter of in-place HTTP retries */
} worker;

struct workers {
  workers_opts opts;
  mq_params params;
  unsigned n;
  worker *w;
};

static uint64_t now_ms(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The request id travels on to the peers as X-Request-Id, which lib/httpc refuses when it
 * is not a plain token: an odd header must not make every call of the message fail. */
static const char *sane_request_id(const char *rid) {
  size_t n = rid ? strlen(rid) : 0;
  if (n == 0 || n > 128) return NULL;
  for (size_t i = 0; i < n; i++) {
    char c = rid[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
          c == '.' || c == ':'))
      return NULL;
  }
  return rid;
}

static int publish_processed(void *ud, int32_t id, const char *request_id, const trace_ctx *trace, char *reason,
                             size_t reason_cap) {
  worker *wk = ud;
  const trace_tracer *tracer = wk->pool->opts.tracer;
  char body[MSGS_ENCODED_MAX];
  size_t len;
  if (msgs_encode(id, body, sizeof body, &len) != MSGS_OK) {
    snprintf(reason, reason_cap, "cannot encode id %" PRId32, id);
    return -1;
  }
  /* a PRODUCER span: the Resource Service's consumer continues it */
  trace_span span;
  trace_span_start(trace && trace->valid ? tracer : NULL, &span, trace, "publish", TRACE_KIND_PRODUCER);
  trace_span_remote(&span, "rabbitmq", NULL, 0);
  trace_span_tag(&span, "messaging.destination", msgs_publish_key(MSGS_SIDE_PROCESSOR));
  char tp[TRACEPARENT_LEN + 1];
  mq_publish_opts po = {.request_id = request_id,
                        .traceparent = trace_span_traceparent(&span, tp, sizeof tp) == TRACE_OK ? tp : NULL};
  int rc = mq_publish(wk->pub, MSGS_EXCHANGE, msgs_publish_key(MSGS_SIDE_PROCESSOR), body, len, &po);
  if (rc != MQ_OK) trace_span_fail(&span, mq_strerror(rc));
  trace_span_end(tracer, &span);
  if (rc != MQ_OK) {
    snprintf(reason, reason_cap, "%s", mq_strerror(rc));
    return -1;
  }
  return 0;
}

static const char *outcome_name(proc_outcome o) {
  switch (o) {
  case PROC_DONE: return "processed";
  case PROC_GONE: return "gone";
  case PROC_RETRY: return "retry";
  case PROC_POISON: return "poison";
  }
  return "?";
}

static mq_verdict on_delivery(const mq_message *m, void *arg, char *reason, size_t reason_cap) {
  worker *wk = arg;
  const workers_opts *o = &wk->pool->opts;
  char why[256] = "", qwhy[300];
  int32_t id = 0;
  if (msgs_decode(m->body, m->len, &id, why, sizeof why) != MSGS_OK) {
    snprintf(reason, reason_cap, "bad message: %s", why);
    atomic_fetch_add(&o->stats->failed, 1);
    atomic_fetch_add(&o->stats->dead_lettered, 1);
    log_event(o->lg, LOG_LEVEL_WARN, "message dead-lettered", "worker=%u attempt=%u reason=%s", wk->index, m->attempt,
              log_quote(qwhy, sizeof qwhy, reason));
    return MQ_REJECT;
  }

  const char *rid = sane_request_id(m->request_id);
  /* a CONSUMER span continuing the publisher's (the relay's) context, else a new trace */
  trace_span span;
  trace_span_start_message(o->tracer, &span, m->traceparent, true, "process", TRACE_KIND_CONSUMER, m->routing_key);
  trace_ctx ctx;
  trace_span_ctx(&span, &ctx);
  char tid[TRACE_ID_HEX];
  trace_span_trace_id(&span, tid);
  uint64_t t0 = now_ms(CLOCK_MONOTONIC);
  proc_outcome out = proc_handle(o->pipeline, id, rid, &ctx, &wk->rng, publish_processed, wk, why, sizeof why);
  uint64_t elapsed = now_ms(CLOCK_MONOTONIC) - t0;
  mq_verdict v = MQ_ACK;
  log_level lvl = LOG_LEVEL_INFO;
  const char *what = outcome_name(out);
  switch (out) {
  case PROC_DONE:
    atomic_fetch_add(&o->stats->processed, 1);
    atomic_store(&o->stats->last_success_ms, (long long)now_ms(CLOCK_REALTIME));
    break;
  case PROC_GONE:
    atomic_fetch_add(&o->stats->gone, 1);
    lvl = LOG_LEVEL_WARN;
    what = "gone (resource deleted), acknowledged";
    break;
  case PROC_RETRY:
    atomic_fetch_add(&o->stats->failed, 1);
    /* lib/mq turns a retry of the last allowed attempt into a dead letter (mq_retry_decide) */
    if (m->attempt >= o->max_attempts) {
      atomic_fetch_add(&o->stats->dead_lettered, 1);
      lvl = LOG_LEVEL_ERROR;
      what = "dead-lettered (attempts exhausted)";
    } else {
      atomic_fetch_add(&o->stats->retried, 1);
      lvl = LOG_LEVEL_WARN;
      what = "retry later";
    }
    v = MQ_RETRY;
    snprintf(reason, reason_cap, "%s", why);
    break;
  case PROC_POISON:
    atomic_fetch_add(&o->stats->failed, 1);
    atomic_fetch_add(&o->stats->dead_lettered, 1);
    lvl = LOG_LEVEL_ERROR;
    what = "dead-lettered (poison)";
    v = MQ_REJECT;
    snprintf(reason, reason_cap, "%s", why);
    break;
  }
  log_event(o->lg, lvl, "message handled",
            "resource_id=%" PRId32
            " outcome=\"%s\" attempt=%u redelivered=%d worker=%u "
            "elapsed_ms=%" PRIu64 " request_id=%s%s%s reason=%s",
            id, what, m->attempt, m->redelivered, wk->index, elapsed, rid ? rid : "-", tid[0] ? " trace_id=" : "", tid,
            log_quote(qwhy, sizeof qwhy, why));
  trace_span_tag(&span, "outcome", outcome_name(out));
  if (out == PROC_RETRY || out == PROC_POISON) trace_span_fail(&span, why);
  trace_span_end(o->tracer, &span);
  return v;
}

workers *workers_new(const workers_opts *opts) {
  if (!opts || !opts->mq || !opts->pipeline || !opts->stats || opts->count == 0 || opts->max_attempts == 0) return NULL;
  workers *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->opts = *opts;
  p->params = *opts->mq;
  p->opts.mq = &p->params;
  p->n = opts->count;
  p->w = calloc(p->n, sizeof *p->w);
  if (!p->w) goto fail;
  const mq_topology *topo = msgs_topology(MSGS_SIDE_PROCESSOR);
  /* prefetch 1 per worker: a worker holds only the message it is working on, so a slow
   * message never hides others from idle workers. */
  mq_consumer_opts co = {.queue = msgs_consume_queue(MSGS_SIDE_PROCESSOR),
                         .prefetch = 1,
                         .max_attempts = opts->max_attempts,
                         .retry = opts->retry,
                         .reconnect = {200, 5000}};
  mq_backoff pub_backoff = {200, 5000};
  uint64_t seed = now_ms(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);
  for (unsigned i = 0; i < p->n; i++) {
    worker *wk = &p->w[i];
    wk->pool = p;
    wk->index = i;
    wk->rng = seed + 0x9E3779B97F4A7C15ull * (i + 1);
    wk->pub = mq_publisher_new(&p->params, topo, &pub_backoff);
    wk->consumer = mq_consumer_new(&p->params, topo, &co, on_delivery, wk);
    if (!wk->pub || !wk->consumer) goto fail;
  }
  return p;
fail:
  workers_free(p);
  return NULL;
}

int workers_start(workers *p) {
  if (!p) return -1;
  int rc = 0;
  for (unsigned i = 0; i < p->n; i++)
    if (mq_consumer_start(p->w[i].consumer) != 0) rc = -1;
  return rc;
}

static void *stop_one(void *arg) {
  mq_consumer_stop(arg);
  return NULL;
}

void workers_stop(workers *p) {
  if (!p) return;
  /* mq_consumer_stop blocks until its handler returns: stop them in parallel so that
   * workers not yet told to stop do not keep taking new messages meanwhile. */
  pthread_t *th = calloc(p->n, sizeof *th);
  int *ok = calloc(p->n, sizeof *ok);
  for (unsigned i = 0; i < p->n; i++)
    if (th && ok) ok[i] = pthread_create(&th[i], NULL, stop_one, p->w[i].consumer) == 0;
  for (unsigned i = 0; i < p->n; i++) {
    if (th && ok && ok[i])
      pthread_join(th[i], NULL);
    else
      mq_consumer_stop(p->w[i].consumer);
  }
  free(th);
  free(ok);
}

unsigned workers_connected(workers *p) {
  unsigned n = 0;
  for (unsigned i = 0; p && i < p->n; i++) n += mq_consumer_connected(p->w[i].consumer) == 1;
  return n;
}

unsigned workers_count(const workers *p) { return p ? p->n : 0; }

void workers_free(workers *p) {
  if (!p) return;
  for (unsigned i = 0; p->w && i < p->n; i++) {
    mq_consumer_free(p->w[i].consumer); /* stops first; the handler may use pub until then */
    mq_publisher_free(p->w[i].pub);
  }
  free(p->w);
  free(p);
}
