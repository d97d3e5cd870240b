/* keeper: see keeper.h. */
#include "keeper.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker/worker.h"

#define DEFAULT_INTERVAL_MS 5000u

struct keeper {
  keeper_opts o;
  worker_backoff backoff; /* consecutive unclean passes; only the pass-running thread uses it */
  worker *w;              /* the background passes */
  bool started;           /* keeper_start ran (main's thread only) */
  pthread_mutex_t mu;     /* guards status and the log-once memory below */
  keeper_status status;
  keeper_status logged; /* what the log last said, to log changes only */
  bool logged_any;
  bool seed_warned; /* the "cannot seed yet" warning is logged once */
  bool ran;         /* a pass has run (main skips the first one when the database is down) */
};

static uint32_t pass_step(void *vk);

keeper *keeper_new(const keeper_opts *opts) {
  keeper *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  k->o = *opts;
  if (k->o.interval_ms == 0) k->o.interval_ms = DEFAULT_INTERVAL_MS;
  uint32_t first = k->o.interval_ms < 500 ? k->o.interval_ms : 500;
  k->backoff.policy = (retry_policy){
      .initial_ms = first, .multiplier = 2.0, .max_delay_ms = k->o.interval_ms, .jitter = RETRY_JITTER_EQUAL};
  k->backoff.rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)k;
  k->w = worker_new(pass_step, k); /* its waits follow CLOCK_MONOTONIC: immune to clock jumps */
  if (!k->w) {
    free(k);
    return NULL;
  }
  if (pthread_mutex_init(&k->mu, NULL) != 0) {
    worker_free(k->w);
    free(k);
    return NULL;
  }
  return k;
}

void keeper_free(keeper *k) {
  if (!k) return;
  worker_free(k->w); /* stops and joins the thread if it runs */
  pthread_mutex_destroy(&k->mu);
  free(k);
}

int keeper_provision(void *vk, const char *bucket) {
  keeper *k = vk;
  s3_error e = {0}; /* not every failure fills it (allocation failures return early) */
  int rc = s3_create_bucket(k->o.s3, bucket, &e);
  char qb[96], qc[80];
  if (rc == S3_OK)
    log_event(k->o.lg, LOG_LEVEL_INFO, "bucket ready", "bucket=%s", log_quote(qb, sizeof qb, bucket));
  else
    log_event(k->o.lg, LOG_LEVEL_WARN, "cannot create bucket", "bucket=%s error=\"%s\" s3_status=%ld s3_code=%s",
              log_quote(qb, sizeof qb, bucket), s3_strerror(rc), e.http_status,
              log_quote(qc, sizeof qc, e.s3_code[0] ? e.s3_code : "-")); /* the store's words: quoted */
  return rc;
}

/* Seeds once; true when seeding has succeeded (now or before). */
static bool seed(keeper *k) {
  pthread_mutex_lock(&k->mu);
  bool done = k->status.seeded;
  pthread_mutex_unlock(&k->mu);
  if (done || k->o.nseeds == 0) return true;
  storage_outcome results[8] = {0};
  size_t n = k->o.nseeds < 8 ? k->o.nseeds : 8;
  int rc = storage_seed(k->o.db, k->o.seeds, n, results);
  if (rc != STORAGE_OK) {
    if (!k->seed_warned)
      log_event(k->o.lg, LOG_LEVEL_WARN, "cannot seed storages yet; will retry", "error=\"%s\"", db_strerror(rc));
    k->seed_warned = true;
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    char qb[96], qp[220];
    const storage *s = &k->o.seeds[i];
    log_quote(qb, sizeof qb, s->bucket);
    log_quote(qp, sizeof qp, s->path);
    if (results[i] == STORAGE_CREATED)
      log_event(k->o.lg, LOG_LEVEL_INFO, "seeded storage", "type=%s bucket=%s path=%s", s->type, qb, qp);
    else if (results[i] == STORAGE_TAKEN)
      log_event(k->o.lg, LOG_LEVEL_WARN, "not seeding storage: its bucket and path belong to another storage",
                "type=%s bucket=%s path=%s", s->type, qb, qp);
  }
  pthread_mutex_lock(&k->mu);
  k->status.seeded = true;
  pthread_mutex_unlock(&k->mu);
  return true;
}

/* Ensures every listed bucket exists. Fills store/missing; stops at the first sign that
 * the store is unreachable (the rest would only wait for the same timeout). */
static void ensure_buckets(keeper *k, json_t *buckets, keeper_status *st) {
  st->buckets = json_array_size(buckets);
  st->missing = st->buckets;
  st->store = KEEPER_STORE_UP;
  size_t i;
  json_t *v;
  json_array_foreach(buckets, i, v) {
    const char *b = json_string_value(v);
    bool exists = false;
    s3_error e = {0};
    s3_object_info info;
    memset(&info, 0, sizeof info);
    int rc = s3_bucket_info(k->o.s3, b, &exists, &info, &e);
    if (info.server[0]) st->kind = s3_store_kind(info.server);
    if (rc == S3_OK && !exists) rc = keeper_provision(k, b);
    if (rc == S3_OK) {
      st->missing--;
    } else if (rc == S3_ERR_UNAVAILABLE) {
      st->store = KEEPER_STORE_DOWN;
      return;
    } else {
      st->store = KEEPER_STORE_PENDING;
    }
  }
}

static const char *store_name(keeper_store s) {
  switch (s) {
  case KEEPER_STORE_UP: return "up";
  case KEEPER_STORE_DOWN: return "unreachable";
  case KEEPER_STORE_PENDING: return "buckets pending";
  default: return "unknown";
  }
}

/* Publishes the pass's result and logs it when it differs from what was last logged. */
static void publish(keeper *k, const keeper_status *st) {
  pthread_mutex_lock(&k->mu);
  k->status.store = st->store;
  k->status.buckets = st->buckets;
  k->status.missing = st->missing;
  if (st->kind) k->status.kind = st->kind;
  bool changed = !k->logged_any || k->logged.store != st->store || k->logged.missing != st->missing ||
                 k->logged.buckets != st->buckets;
  k->logged = k->status;
  k->logged_any = true;
  pthread_mutex_unlock(&k->mu);
  if (!changed) return;
  log_level lvl = st->store == KEEPER_STORE_UP ? LOG_LEVEL_INFO : LOG_LEVEL_WARN;
  log_event(k->o.lg, lvl, "object store check", "store=\"%s\" buckets=%zu missing=%zu", store_name(st->store),
            st->buckets, st->missing);
}

/* The pass itself; keeper_run_once adds the failure count. */
static bool pass(keeper *k) {
  if (!seed(k)) return false; /* only the database fails a seed, and listing needs it too */
  json_t *buckets = NULL;
  int rc = storage_buckets(k->o.db, &buckets);
  if (rc != STORAGE_OK) return false; /* the database is down; health shows it as db */
  keeper_status st = {0};
  ensure_buckets(k, buckets, &st);
  json_decref(buckets);
  publish(k, &st);
  return st.store == KEEPER_STORE_UP;
}

bool keeper_run_once(keeper *k) {
  bool clean = pass(k);
  k->ran = true;
  if (clean)
    worker_backoff_reset(&k->backoff);
  else
    worker_backoff_failed(&k->backoff);
  return clean;
}

/* The wait before the next pass: the first try soon, the interval after a clean pass, the
 * backoff after unclean ones. */
static uint32_t next_delay(keeper *k) {
  return !k->ran                    ? k->backoff.policy.initial_ms
         : k->backoff.failures == 0 ? k->o.interval_ms
                                    : worker_backoff_delay(&k->backoff);
}

/* One background pass (lib/worker's step). */
static uint32_t pass_step(void *vk) {
  keeper *k = vk;
  keeper_run_once(k);
  return next_delay(k);
}

int keeper_start(keeper *k) {
  if (k->started) return 0;
  if (worker_start(k->w, next_delay(k)) != WORKER_OK) return -1;
  k->started = true;
  return 0;
}

void keeper_status_get(keeper *k, keeper_status *out) {
  pthread_mutex_lock(&k->mu);
  *out = k->status;
  pthread_mutex_unlock(&k->mu);
}
