/* outbox: see outbox.h. */
#include "outbox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msgs.h"
#include "resource_repo.h"

#define BATCH REPO_OUTBOX_BATCH /* a full batch means more may be waiting */

struct outbox {
  db_pool *db;
  mq_publisher *pub;
  log *lg;
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool kicked, stopping;
  atomic_bool broker_ok;
  atomic_llong published;
};

outbox *outbox_new(db_pool *db, mq_publisher *pub, log *lg) {
  outbox *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  o->db = db;
  o->pub = pub;
  o->lg = lg;
  atomic_store(&o->broker_ok, true);
  pthread_mutex_init(&o->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&o->cv, &ca);
  pthread_condattr_destroy(&ca);
  return o;
}

void outbox_free(outbox *o) {
  if (!o) return;
  outbox_stop(o);
  pthread_mutex_destroy(&o->mu);
  pthread_cond_destroy(&o->cv);
  free(o);
}

bool outbox_broker_ok(outbox *o) { return atomic_load(&o->broker_ok); }
long long outbox_published(outbox *o) { return atomic_load(&o->published); }

void outbox_kick(outbox *o) {
  pthread_mutex_lock(&o->mu);
  o->kicked = true;
  pthread_cond_signal(&o->cv);
  pthread_mutex_unlock(&o->mu);
}

typedef struct {
  outbox *o;
  bool broker_failed; /* a publish failed, which ended the batch */
} relay;

/* One row of a batch (repo_outbox_fn): publishes it; 0 lets the repo delete it, -1 ends
 * the batch. */
static int publish_row(void *ud, const outbox_row *row) {
  relay *r = ud;
  outbox *o = r->o;
  mq_publish_opts po = {.request_id = *row->request_id ? row->request_id : NULL};
  int prc = mq_publish(o->pub, MSGS_EXCHANGE, row->routing_key, row->payload, strlen(row->payload), &po);
  if (prc != MQ_OK) {
    if (atomic_exchange(&o->broker_ok, false))
      log_event(o->lg, LOG_WARN, "broker unavailable; messages wait in the outbox", "error=\"%s\"",
                mq_strerror(prc));
    r->broker_failed = true;
    return -1;
  }
  if (!atomic_exchange(&o->broker_ok, true)) log_event(o->lg, LOG_INFO, "broker back; relaying the outbox", NULL);
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

static void wait_ms(outbox *o, long ms) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
  pthread_mutex_lock(&o->mu);
  while (!o->kicked && !o->stopping)
    if (pthread_cond_timedwait(&o->cv, &o->mu, &until) != 0) break;
  o->kicked = false;
  pthread_mutex_unlock(&o->mu);
}

static void *relay_main(void *arg) {
  outbox *o = arg;
  long backoff = 0;
  for (;;) {
    pthread_mutex_lock(&o->mu);
    bool stop = o->stopping;
    pthread_mutex_unlock(&o->mu);
    if (stop) break;
    int n = relay_batch(o);
    if (n == BATCH) continue; /* more may be waiting */
    if (n < 0) {
      backoff = backoff ? (backoff * 2 > 5000 ? 5000 : backoff * 2) : 200;
      wait_ms(o, backoff);
    } else {
      backoff = 0;
      wait_ms(o, 1000);
    }
  }
  return NULL;
}

int outbox_start(outbox *o) {
  if (pthread_create(&o->thread, NULL, relay_main, o) != 0) return -1;
  o->started = true;
  return 0;
}

void outbox_stop(outbox *o) {
  if (!o || !o->started) return;
  pthread_mutex_lock(&o->mu);
  o->stopping = true;
  pthread_cond_signal(&o->cv);
  pthread_mutex_unlock(&o->mu);
  pthread_join(o->thread, NULL);
  o->started = false;
}
