/*
 * db_driver: lib/db's connection pool against a real PostgreSQL, for the system tests
 * (tests/system/test_db_pool.py). Prints one JSON line with what it observed.
 *
 *   db_driver fifo URL     one connection; a holder, then waiters 1..N queued one by one,
 *                          then the holder releases and at once asks again itself: prints
 *                          the order in which they got the connection (first come, first
 *                          served means 1..N, then the holder last)
 *   db_driver timeout URL  one connection held; a second caller gives up with DB_ERR_BUSY
 *                          after acquire_timeout_ms; then the connection must still be
 *                          usable: prints the codes and the pool's counters on the way
 *
 * Exit status 0 when the run could be made at all (the test judges the output), 2 on a
 * usage or database error.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "log/log.h"

#define WAITERS 4

typedef struct {
  db_pool *pool;
  pthread_mutex_t mu;
  int order[WAITERS + 1];
  int n;
} fifo_run;

typedef struct {
  fifo_run *run;
  int who;
} fifo_arg;

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Waits (up to 5 s) until `n` threads are queued in db_acquire. */
static int wait_pending(db_pool *p, int n) {
  for (int i = 0; i < 5000; i++) {
    db_stats st;
    db_pool_stats(p, &st);
    if (st.pending == n) return 0;
    sleep_ms(1);
  }
  return -1;
}

/* Takes the connection, runs a statement on it, notes its turn, holds it briefly. */
static int take_turn(fifo_run *run, int who) {
  db_conn *c;
  int rc = db_acquire(run->pool, &c);
  if (rc != DB_OK) return rc;
  PGresult *res = NULL;
  rc = db_exec(c, "SELECT 1", 0, NULL, &res);
  PQclear(res);
  pthread_mutex_lock(&run->mu);
  run->order[run->n++] = who;
  pthread_mutex_unlock(&run->mu);
  sleep_ms(5); /* a late caller has every chance to take it first now */
  db_release(run->pool, c);
  return rc;
}

static void *waiter_main(void *varg) {
  fifo_arg *a = varg;
  take_turn(a->run, a->who);
  return NULL;
}

static int fifo(db_pool *pool) {
  fifo_run run = {.pool = pool};
  pthread_mutex_init(&run.mu, NULL);
  db_conn *held;
  if (db_acquire(pool, &held) != DB_OK) return 2;
  pthread_t th[WAITERS];
  fifo_arg args[WAITERS];
  int started = 0, rc = 0;
  for (; started < WAITERS; started++) {
    args[started] = (fifo_arg){&run, started + 1};
    if (pthread_create(&th[started], NULL, waiter_main, &args[started]) != 0 || wait_pending(pool, started + 1)) {
      rc = 2;
      break;
    }
  }
  db_release(pool, held);
  int mine = rc == 0 ? take_turn(&run, 0) : DB_OK; /* 0: the holder, arriving again */
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  if (rc == 0) {
    json_t *order = json_array();
    for (int i = 0; i < run.n; i++) json_array_append_new(order, json_integer(run.order[i]));
    db_stats st;
    db_pool_stats(pool, &st);
    json_t *out = json_pack("{s:o, s:i, s:i, s:i, s:i}", "order", order, "holder_rc", mine, "open", st.open, "idle",
                            st.idle, "pending", st.pending);
    json_dumpf(out, stdout, JSON_COMPACT);
    json_decref(out);
    putchar('\n');
  }
  pthread_mutex_destroy(&run.mu);
  return rc;
}

static void *busy_main(void *varg) {
  db_pool *pool = varg;
  db_conn *c = NULL;
  int rc = db_acquire(pool, &c);
  db_release(pool, c);
  return (void *)(intptr_t)rc;
}

static int timeout(db_pool *pool) {
  db_conn *held;
  if (db_acquire(pool, &held) != DB_OK) return 2;
  pthread_t th;
  if (pthread_create(&th, NULL, busy_main, pool) != 0) return 2;
  void *ret;
  pthread_join(th, &ret);
  db_stats during;
  db_pool_stats(pool, &during);
  db_release(pool, held);
  db_stats after;
  db_pool_stats(pool, &after);
  db_conn *again;
  int again_rc = db_acquire(pool, &again);
  PGresult *res = NULL;
  int exec_rc = again_rc == DB_OK ? db_exec(again, "SELECT 1", 0, NULL, &res) : again_rc;
  PQclear(res);
  db_release(pool, again);
  json_t *out =
      json_pack("{s:i, s:i, s:i, s:I, s:i, s:i, s:i}", "waiter_rc", (int)(intptr_t)ret, "pending_after_timeout",
                during.pending, "open_after_release", after.open, "timeouts", (json_int_t)during.timeouts,
                "idle_after_release", after.idle, "again_rc", again_rc, "exec_rc", exec_rc);
  json_dumpf(out, stdout, JSON_COMPACT);
  json_decref(out);
  putchar('\n');
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "fifo") != 0 && strcmp(argv[1], "timeout") != 0)) {
    fprintf(stderr, "usage: db_driver fifo|timeout URL\n");
    return 2;
  }
  log_sink *lg = log_new("db_driver", LOG_LEVEL_WARN, stderr);
  db_opts o = {.conninfo = argv[2], .max_conns = 1, .acquire_timeout_ms = strcmp(argv[1], "fifo") == 0 ? 10000 : 200};
  db_pool *pool = lg ? db_pool_new(&o, lg) : NULL;
  int rc = 2;
  if (pool) rc = strcmp(argv[1], "fifo") == 0 ? fifo(pool) : timeout(pool);
  db_pool_free(pool);
  log_free(lg);
  return rc;
}
