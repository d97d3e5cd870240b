/* outbox: see outbox.h. */
#include "outbox.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msgs/msgs.h"
#include "resource_repo.h"
#include "worker/worker.h"

#define BATCH REPO_OUTBOX_BATCH /* a full batch means more may be waiting */
#define IDLE_MS 1000u           /* between batches while the outbox is empty */

struct outbox {
  db_pool *db;
  mq_publisher *pub;
  log_sink *lg;
  const trace_tracer *tracer;
  worker *w;
  worker_backoff backoff; /* after a failed batch: 200 ms doubling, at most 5 s */
  atomic_bool broker_ok;
  atomic_llong published;
};

static uint32_t relay_step(void *arg);

outbox *outbox_new(db_pool *db, mq_publisher *pub, log_sink *lg, const trace_tracer *tracer) {
  outbox *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  o->db = db;
  o->pub = pub;
  o->lg = lg;
  o->tracer = tracer;
  o->backoff.policy =
      (retry_policy){.initial_ms = 200, .multiplier = 2.0, .max_delay_ms = 5000, .jitter = RETRY_JITTER_NONE};
  atomic_store(&o->broker_ok, true);
  o->w = worker_new(relay_step, o);
  if (!o->w) {
    free(o);
    return NULL;
  }
  return o;
}

void outbox_free(outbox *o) {
  if (!o) return;
  worker_free(o->w); /* stops the relay first */
  free(o);
}

bool outbox_broker_ok(outbox *o) { return atomic_load(&o->broker_ok); }
long long outbox_published(outbox *o) { return atomic_load(&o->published); }

void outbox_kick(outbox *o) { worker_kick(o->w); }

typedef struct {
  outbox *o;
  bool broker_failed; /* a publish failed, which ended the batch */
} relay;

/* One row of a batch (repo_outbox_fn): publishes it; 0 lets the repo delete it, -1 ends
 * the batch. */
static int publish_row(void *ud, const outbox_row *row) {
  relay *r = ud;
  outbox *o = r->o;
  /* a PRODUCER span continuing the upload's context, whose traceparent the message carries */
  trace_span span;
  trace_span_start_message(o->tracer, &span, row->traceparent, false, "publish", TRACE_KIND_PRODUCER, row->routing_key);
  char tp[TRACEPARENT_LEN + 1];
  mq_publish_opts po = {.request_id = *row->request_id ? row->request_id : NULL,
                        .traceparent = trace_span_traceparent(&span, tp, sizeof tp) == TRACE_OK ? tp : NULL};
  int prc = mq_publish(o->pub, MSGS_EXCHANGE, row->routing_key, row->payload, strlen(row->payload), &po);
  if (prc != MQ_OK) trace_span_fail(&span, mq_strerror(prc));
  trace_span_end(o->tracer, &span);
  if (prc != MQ_OK) {
    if (atomic_exchange(&o->broker_ok, false))
      log_event(o->lg, LOG_LEVEL_WARN, "broker unavailable; messages wait in the outbox", "error=\"%s\"",
                mq_strerror(prc));
    r->broker_failed = true;
    return -1;
  }
  if (!atomic_exchange(&o->broker_ok, true)) log_event(o->lg, LOG_LEVEL_INFO, "broker back; relaying the outbox", NULL);
  return 0;
}

/* Publishes one batch (the rows, their locks and their deletion are the repo's:
 * repo_outbox_relay). Returns rows published, or -1 when the database or broker failed. */
static int relay_batch(outbox *o) {
  relay r = {.o = o};
  int published;
  if (repo_outbox_relay(o->db, publish_row, &r, &published) != DB_OK) return -1;
  atomic_fetch_add(&o->published, published);
  return r.broker_failed ? (published ? published : -1) : published;
}

/* The relay's round (lib/worker): a full batch goes on at once (more may be waiting), a
 * failed one backs off, else the relay waits for a kick or IDLE_MS. */
static uint32_t relay_step(void *arg) {
  outbox *o = arg;
  int n = relay_batch(o);
  if (n == BATCH) return 0;
  if (n < 0) {
    worker_backoff_failed(&o->backoff);
    return worker_backoff_delay(&o->backoff);
  }
  worker_backoff_reset(&o->backoff);
  return IDLE_MS;
}

int outbox_start(outbox *o) { return worker_start(o->w, 0) == WORKER_OK ? 0 : -1; }

void outbox_stop(outbox *o) {
  if (o) worker_stop(o->w);
}
