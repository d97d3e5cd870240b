/* outbox: see outbox.h. */
#include "outbox.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msgs.h"
#include "worker.h"

#define BATCH 50
#define IDLE_MS 1000u /* between batches while the outbox is empty */

struct outbox {
  db_pool *db;
  mq_publisher *pub;
  log *lg;
  worker *w;
  worker_backoff backoff; /* after a failed batch: 200 ms doubling, at most 5 s */
  atomic_bool broker_ok;
  atomic_llong published;
};

static uint32_t relay_step(void *arg);

outbox *outbox_new(db_pool *db, mq_publisher *pub, log *lg) {
  outbox *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  o->db = db;
  o->pub = pub;
  o->lg = lg;
  o->backoff.policy = (retry_policy){.initial_ms = 200, .multiplier = 2.0, .max_delay_ms = 5000,
                                     .jitter = RETRY_JITTER_NONE};
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
