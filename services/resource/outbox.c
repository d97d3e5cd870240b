/* outbox: see outbox.h. */
#include "outbox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msgs.h"

#define BATCH 50

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

/* Publishes one batch. Returns rows published, or -1 when the database or broker failed. */
static int relay_batch(outbox *o) {
  db_conn *c;
  if (db_acquire(o->db, &c) != DB_OK) return -1;
  int published = 0, rc;
  PGresult *res = NULL;
  if (db_begin(c) != DB_OK) goto fail;
  rc = db_exec(c,
               "SELECT id, routing_key, payload, coalesce(request_id, '') FROM outbox ORDER BY id"
               " LIMIT 50 FOR UPDATE SKIP LOCKED",
               0, NULL, &res);
  if (rc != DB_OK) goto fail;
  int n = PQntuples(res);
  char done[BATCH * 21 + 3] = "{"; /* array literal of the published ids (digits only) */
  int ndone = 0;
  bool broker_failed = false;
  for (int i = 0; i < n && i < BATCH; i++) {
    const char *key = PQgetvalue(res, i, 1), *payload = PQgetvalue(res, i, 2), *rid = PQgetvalue(res, i, 3);
    mq_publish_opts po = {.request_id = *rid ? rid : NULL};
    int prc = mq_publish(o->pub, MSGS_EXCHANGE, key, payload, strlen(payload), &po);
    if (prc != MQ_OK) {
      if (atomic_exchange(&o->broker_ok, false))
        log_event(o->lg, LOG_WARN, "broker unavailable; messages wait in the outbox", "error=\"%s\"",
                  mq_strerror(prc));
      broker_failed = true;
      break;
    }
    if (!atomic_exchange(&o->broker_ok, true)) log_event(o->lg, LOG_INFO, "broker back; relaying the outbox", NULL);
    size_t used = strlen(done);
    snprintf(done + used, sizeof done - used, "%s%s", ndone ? "," : "", PQgetvalue(res, i, 0));
    ndone++;
  }
  PQclear(res);
  res = NULL;
  if (ndone) {
    strcat(done, "}");
    const char *p[] = {done};
    rc = db_exec(c, "DELETE FROM outbox WHERE id = ANY($1::bigint[])", 1, p, NULL);
    if (rc != DB_OK) goto fail;
  }
  if (db_commit(c) != DB_OK) goto fail;
  db_release(o->db, c);
  published = ndone;
  atomic_fetch_add(&o->published, published);
  return broker_failed ? (published ? published : -1) : published;
fail:
  PQclear(res);
  db_rollback(c);
  db_release(o->db, c);
  return -1;
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
