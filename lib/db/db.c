/* db: see db.h. */
#include "db.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Statements with parameters are prepared once per connection and then executed by name,
 * so the server parses and plans each of them once instead of on every call (measured:
 * the backend's CPU per request was about the service's own). The cache is keyed by the
 * address of the SQL text: callers pass string literals (see db.h). */
#define STMT_CACHE 48

struct db_conn {
  PGconn *pg;
  db_pool *pool;
  bool broken;
  bool used; /* a statement ran since it was acquired */
  const char *stmt_sql[STMT_CACHE];
  int nstmt;
  db_conn *next;
};

/* A thread queued in db_acquire. Whoever frees a connection (or a slot to open one) hands
 * it to the oldest waiter directly, so a thread arriving later cannot take it first: the
 * wait is first come, first served and bounded by the queue ahead, not by luck. */
typedef struct waiter {
  pthread_cond_t cv;
  db_conn *conn; /* handed over: an idle connection */
  bool slot;     /* handed over: the right to open a new connection */
  struct waiter *next;
} waiter;

struct db_pool {
  db_opts opts;
  char *conninfo;
  log_sink *lg;
  pthread_mutex_t mu;
  db_conn *idle;
  waiter *head, *tail; /* FIFO of threads waiting in db_acquire */
  uint64_t timeouts;   /* db_acquire calls that gave up with DB_ERR_BUSY */
  int open;            /* connections in existence (idle + in use) and slots being opened */
  bool migrated;
  pthread_mutex_t migrate_mu;
};

const char *db_strerror(int code) {
  switch (code) {
  case DB_OK: return "ok";
  case DB_ERR_UNAVAILABLE: return "database unavailable";
  case DB_ERR_UNIQUE: return "unique violation";
  case DB_ERR_QUERY: return "statement failed";
  case DB_ERR_NOMEM: return "out of memory";
  case DB_ERR_BUSY: return "no database connection free";
  default: return "unknown database error";
  }
}

db_pool *db_pool_new(const db_opts *opts, log_sink *lg) {
  db_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->opts = *opts;
  if (!p->opts.max_conns) p->opts.max_conns = 10;
  if (!p->opts.connect_timeout_s) p->opts.connect_timeout_s = 3;
  if (!p->opts.acquire_timeout_ms) p->opts.acquire_timeout_ms = 5000;
  p->conninfo = strdup(opts->conninfo ? opts->conninfo : "");
  p->lg = lg;
  if (!p->conninfo) {
    free(p);
    return NULL;
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_mutex_init(&p->migrate_mu, NULL);
  return p;
}

void db_pool_free(db_pool *p) {
  if (!p) return;
  for (db_conn *c = p->idle; c;) {
    db_conn *n = c->next;
    PQfinish(c->pg);
    free(c);
    c = n;
  }
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->migrate_mu);
  free(p->conninfo);
  free(p);
}

static void log_pg_error(db_pool *p, const char *what, const char *detail) {
  char q[512];
  char buf[400];
  snprintf(buf, sizeof buf, "%s", detail ? detail : "");
  size_t n = strlen(buf);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = '\0';
  log_event(p->lg, LOG_LEVEL_WARN, what, "detail=%s", log_quote(q, sizeof q, buf));
}

/* Server notices (e.g. "relation already exists, skipping") go to our log at debug level
 * instead of libpq's default of raw lines on stderr. */
static void on_notice(void *arg, const char *message) {
  db_pool *p = arg;
  char q[400];
  char buf[300];
  snprintf(buf, sizeof buf, "%s", message);
  size_t n = strlen(buf);
  while (n && buf[n - 1] == '\n') buf[--n] = '\0';
  log_event(p->lg, LOG_LEVEL_DEBUG, "database notice", "detail=%s", log_quote(q, sizeof q, buf));
}

/* libpq echoes a malformed URI whole in its error message, password included. Before such
 * a message is logged, the password of our connection string is replaced by "***"
 * wherever it appears (URI "user:PASSWORD@" or key/value "password=PASSWORD"). */
static void mask_password(const char *conninfo, const char *msg, char *out, size_t cap) {
  char secret[256] = "";
  const char *at = strchr(conninfo, '@'), *scheme = strstr(conninfo, "://");
  if (scheme && at && at > scheme) {
    const char *colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3));
    if (colon && (size_t)(at - colon - 1) < sizeof secret)
      snprintf(secret, sizeof secret, "%.*s", (int)(at - colon - 1), colon + 1);
  }
  const char *kv = strstr(conninfo, "password=");
  if (!secret[0] && kv) snprintf(secret, sizeof secret, "%.*s", (int)strcspn(kv + 9, " "), kv + 9);
  size_t o = 0, slen = strlen(secret);
  for (const char *m = msg; *m && o + 4 < cap;) {
    if (slen && strncmp(m, secret, slen) == 0) {
      memcpy(out + o, "***", 3);
      o += 3;
      m += slen;
    } else {
      out[o++] = *m++;
    }
  }
  out[o] = '\0';
}

static PGconn *connect_pg(db_pool *p) {
  char timeout[16];
  snprintf(timeout, sizeof timeout, "%d", p->opts.connect_timeout_s);
  const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
  const char *vals[] = {p->conninfo, timeout, "fermata", NULL};
  PGconn *pg = PQconnectdbParams(keys, vals, 1);
  if (!pg) return NULL;
  if (PQstatus(pg) != CONNECTION_OK) {
    char masked[512];
    mask_password(p->conninfo, PQerrorMessage(pg), masked, sizeof masked);
    log_pg_error(p, "database connect failed", masked);
    PQfinish(pg);
    return NULL;
  }
  PQsetNoticeProcessor(pg, on_notice, p);
  return pg;
}

static int classify(PGconn *pg, PGresult *res) {
  if (PQstatus(pg) == CONNECTION_BAD) return DB_ERR_UNAVAILABLE;
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  if (!state) return res ? DB_ERR_QUERY : DB_ERR_UNAVAILABLE;
  if (strcmp(state, "23505") == 0) return DB_ERR_UNIQUE;
  /* class 08: connection exception; 57P01..57P03: admin shutdown, crash, cannot connect now */
  if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0) return DB_ERR_UNAVAILABLE;
  return DB_ERR_QUERY;
}

static int run_migrations(db_pool *p, PGconn *pg) {
  int rc = DB_OK;
  PGresult *res = PQexec(pg,
                         "BEGIN; SELECT pg_advisory_xact_lock(727274);"
                         "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                         " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
  if (PQresultStatus(res) != PGRES_COMMAND_OK) goto fail;
  for (size_t i = 0; i < p->opts.nmigrations; i++) {
    const db_migration *m = &p->opts.migrations[i];
    char ver[16];
    snprintf(ver, sizeof ver, "%d", m->version);
    const char *params[] = {ver, m->name};
    PQclear(res);
    res = PQexecParams(pg, "SELECT 1 FROM schema_migrations WHERE version = $1::int", 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) goto fail;
    if (PQntuples(res) > 0) continue;
    PQclear(res);
    res = PQexec(pg, m->sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) goto fail;
    PQclear(res);
    res = PQexecParams(pg, "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)", 2, NULL, params, NULL,
                       NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) goto fail;
    log_event(p->lg, LOG_LEVEL_INFO, "migration applied", "version=%d name=%s", m->version, m->name);
  }
  PQclear(res);
  res = PQexec(pg, "COMMIT");
  if (PQresultStatus(res) != PGRES_COMMAND_OK) goto fail;
  PQclear(res);
  return DB_OK;
fail:
  rc = classify(pg, res);
  log_pg_error(p, "migration failed", PQerrorMessage(pg));
  PQclear(res);
  PQclear(PQexec(pg, "ROLLBACK"));
  return rc == DB_ERR_UNAVAILABLE ? rc : DB_ERR_QUERY;
}

static int ensure_migrated(db_pool *p, PGconn *pg) {
  pthread_mutex_lock(&p->migrate_mu);
  int rc = DB_OK;
  if (!p->migrated) {
    rc = run_migrations(p, pg);
    if (rc == DB_OK) p->migrated = true;
  }
  pthread_mutex_unlock(&p->migrate_mu);
  return rc;
}

/* Under p->mu: removes and returns the oldest waiter, NULL if none. */
static waiter *dequeue(db_pool *p) {
  waiter *w = p->head;
  if (!w) return NULL;
  p->head = w->next;
  if (!p->head) p->tail = NULL;
  w->next = NULL;
  return w;
}

/* Under p->mu: w gave up (timed out) before anything was handed to it. */
static void unlink_waiter(db_pool *p, waiter *w) {
  waiter **pp = &p->head, *prev = NULL;
  while (*pp && *pp != w) prev = *pp, pp = &(*pp)->next;
  if (!*pp) return;
  *pp = w->next;
  if (p->tail == w) p->tail = prev;
}

/* Under p->mu: c goes to the oldest waiter, or to the idle list when nobody waits. */
static void give_conn(db_pool *p, db_conn *c) {
  waiter *w = dequeue(p);
  if (w) {
    w->conn = c;
    pthread_cond_signal(&w->cv);
  } else {
    c->next = p->idle;
    p->idle = c;
  }
}

/* Under p->mu: a connection went away (p->open already lowered); the oldest waiter may
 * open one in its place. */
static void give_slot(db_pool *p) {
  waiter *w = dequeue(p);
  if (!w) return;
  p->open++;
  w->slot = true;
  pthread_cond_signal(&w->cv);
}

/* Waits, queued behind earlier callers, until a connection or a slot is handed over.
 * Under p->mu. Returns false on timeout. */
static bool wait_turn(db_pool *p, const struct timespec *deadline, db_conn **conn) {
  waiter w = {.conn = NULL};
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w.cv, &ca);
  pthread_condattr_destroy(&ca);
  /* w lives on this stack only while it is queued: it leaves the queue before this returns
   * (unlinked here on a timeout, or by whoever hands it a connection or a slot). */
  if (p->tail)
    p->tail->next = &w;
  else
    p->head = &w; // cppcheck-suppress autoVariables
  p->tail = &w;   // cppcheck-suppress autoVariables
  bool timed_out = false;
  while (!w.conn && !w.slot && !timed_out) timed_out = pthread_cond_timedwait(&w.cv, &p->mu, deadline) == ETIMEDOUT;
  if (!w.conn && !w.slot) unlink_waiter(p, &w); /* nothing came: leave the queue */
  pthread_cond_destroy(&w.cv);
  *conn = w.conn;
  return w.conn || w.slot;
}

int db_acquire(db_pool *p, db_conn **out) {
  *out = NULL;
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += p->opts.acquire_timeout_ms / 1000;
  deadline.tv_nsec += (long)(p->opts.acquire_timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) deadline.tv_sec++, deadline.tv_nsec -= 1000000000L;

  pthread_mutex_lock(&p->mu);
  db_conn *c = NULL;
  if (p->head) { /* others were first */
    if (!wait_turn(p, &deadline, &c)) {
      p->timeouts++;
      pthread_mutex_unlock(&p->mu);
      return DB_ERR_BUSY;
    }
  } else if (p->idle) {
    c = p->idle;
    p->idle = c->next;
  } else if (p->open < p->opts.max_conns) {
    p->open++; /* reserve the slot, connect outside the lock */
  } else if (!wait_turn(p, &deadline, &c)) {
    p->timeouts++;
    pthread_mutex_unlock(&p->mu);
    return DB_ERR_BUSY;
  }
  pthread_mutex_unlock(&p->mu);
  if (!c) { /* a slot: open a connection */
    c = calloc(1, sizeof *c);
    PGconn *pg = c ? connect_pg(p) : NULL;
    if (!pg) {
      free(c);
      pthread_mutex_lock(&p->mu);
      p->open--;
      give_slot(p);
      pthread_mutex_unlock(&p->mu);
      return c ? DB_ERR_UNAVAILABLE : DB_ERR_NOMEM;
    }
    c->pg = pg;
    c->pool = p;
  }
  c->used = false;
  c->broken = false;
  c->next = NULL;
  if (!p->migrated) {
    int rc = ensure_migrated(p, c->pg);
    if (rc != DB_OK) {
      c->broken = true;
      db_release(p, c);
      return rc;
    }
  }
  *out = c;
  return DB_OK;
}

void db_release(db_pool *p, db_conn *c) {
  if (!c) return;
  if (!c->broken && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
    /* a caller forgot to end its transaction: never hand that state to the next user */
    PGresult *r = PQexec(c->pg, "ROLLBACK");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) c->broken = true;
    PQclear(r);
  }
  if (c->broken || PQstatus(c->pg) != CONNECTION_OK) {
    PQfinish(c->pg);
    free(c);
    pthread_mutex_lock(&p->mu);
    p->open--;
    give_slot(p);
  } else {
    pthread_mutex_lock(&p->mu);
    give_conn(p, c);
  }
  pthread_mutex_unlock(&p->mu);
}

void db_pool_stats(db_pool *p, db_stats *st) {
  pthread_mutex_lock(&p->mu);
  *st = (db_stats){.open = p->open, .max = p->opts.max_conns, .timeouts = p->timeouts};
  for (db_conn *c = p->idle; c; c = c->next) st->idle++;   /* at most max_conns */
  for (waiter *w = p->head; w; w = w->next) st->pending++; /* one per blocked thread */
  pthread_mutex_unlock(&p->mu);
}

char *db_pool_prometheus(db_pool *p, const char *pool) {
  db_stats st;
  db_pool_stats(p, &st);
  char *out = NULL;
  /* HikariCP's metric names as Micrometer exports them, so Spring dashboards read these too */
  if (asprintf(&out,
               "# HELP hikaricp_connections_active Active connections\n"
               "# TYPE hikaricp_connections_active gauge\n"
               "hikaricp_connections_active{pool=\"%s\"} %d.0\n"
               "# HELP hikaricp_connections_idle Idle connections\n"
               "# TYPE hikaricp_connections_idle gauge\n"
               "hikaricp_connections_idle{pool=\"%s\"} %d.0\n"
               "# HELP hikaricp_connections_pending Pending threads\n"
               "# TYPE hikaricp_connections_pending gauge\n"
               "hikaricp_connections_pending{pool=\"%s\"} %d.0\n"
               "# HELP hikaricp_connections Total connections\n"
               "# TYPE hikaricp_connections gauge\n"
               "hikaricp_connections{pool=\"%s\"} %d.0\n"
               "# HELP hikaricp_connections_max Max connections\n"
               "# TYPE hikaricp_connections_max gauge\n"
               "hikaricp_connections_max{pool=\"%s\"} %d.0\n"
               "# HELP hikaricp_connections_timeout_total Connection timeout total count\n"
               "# TYPE hikaricp_connections_timeout_total counter\n"
               "hikaricp_connections_timeout_total{pool=\"%s\"} %llu.0\n",
               pool, st.open - st.idle, pool, st.idle, pool, st.pending, pool, st.open, pool, st.max, pool,
               (unsigned long long)st.timeouts) < 0)
    return NULL;
  return out;
}

/* The prepared name of sql on this connection, preparing it on first use; NULL when it is
 * not (to be) prepared. *res receives the failed PGresult when preparing failed. */
static const char *prepared(db_conn *c, const char *sql, int nparams, char *name, size_t cap, PGresult **res) {
  *res = NULL;
  /* transaction control has nothing to plan */
  if (nparams == 0 && (strcmp(sql, "BEGIN") == 0 || strcmp(sql, "COMMIT") == 0 || strcmp(sql, "ROLLBACK") == 0))
    return NULL;
  for (int i = 0; i < c->nstmt; i++)
    if (c->stmt_sql[i] == sql) {
      snprintf(name, cap, "fm%d", i);
      return name;
    }
  if (c->nstmt == STMT_CACHE) return NULL;
  snprintf(name, cap, "fm%d", c->nstmt);
  PGresult *pr = PQprepare(c->pg, name, sql, nparams, NULL);
  if (PQresultStatus(pr) != PGRES_COMMAND_OK) {
    *res = pr;
    return NULL;
  }
  PQclear(pr);
  c->stmt_sql[c->nstmt++] = sql;
  return name;
}

int db_exec(db_conn *c, const char *sql, int nparams, const char *const *params, PGresult **out) {
  if (out) *out = NULL;
  if (c->broken) return DB_ERR_UNAVAILABLE;
  bool first = !c->used;
  c->used = true;
  for (int attempt = 0;; attempt++) {
    char name[16];
    PGresult *res;
    const char *stmt = prepared(c, sql, nparams, name, sizeof name, &res);
    if (!res)
      res = stmt ? PQexecPrepared(c->pg, stmt, nparams, params, NULL, NULL, 0)
                 : PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      if (out)
        *out = res;
      else
        PQclear(res);
      return DB_OK;
    }
    int rc = classify(c->pg, res);
    if (rc == DB_ERR_UNAVAILABLE && first && attempt == 0) {
      /* A pooled connection the server dropped (restart, idle kill): reconnect once. The
       * new session has none of our prepared statements. */
      PQclear(res);
      PQreset(c->pg);
      c->nstmt = 0;
      if (PQstatus(c->pg) == CONNECTION_OK) continue;
      log_pg_error(c->pool, "database reconnect failed", PQerrorMessage(c->pg));
      c->broken = true;
      return DB_ERR_UNAVAILABLE;
    }
    if (rc != DB_ERR_UNIQUE) log_pg_error(c->pool, "statement failed", PQresultErrorMessage(res));
    if (rc == DB_ERR_UNAVAILABLE) c->broken = true;
    PQclear(res);
    return rc;
  }
}

int db_query(db_pool *p, const char *sql, int nparams, const char *const *params, PGresult **out) {
  db_conn *c;
  int rc = db_acquire(p, &c);
  if (rc != DB_OK) return rc;
  rc = db_exec(c, sql, nparams, params, out);
  db_release(p, c);
  return rc;
}

int db_begin(db_conn *c) { return db_exec(c, "BEGIN", 0, NULL, NULL); }
int db_commit(db_conn *c) { return db_exec(c, "COMMIT", 0, NULL, NULL); }

void db_rollback(db_conn *c) {
  if (c->broken) return;
  PGresult *r = PQexec(c->pg, "ROLLBACK");
  if (PQresultStatus(r) != PGRES_COMMAND_OK) c->broken = true;
  PQclear(r);
}

int db_migrate(db_pool *p) {
  db_conn *c;
  int rc = db_acquire(p, &c); /* migrates on the way */
  if (rc == DB_OK) db_release(p, c);
  return rc;
}

int db_ping(db_pool *p) {
  PGresult *r;
  int rc = db_query(p, "SELECT 1", 0, NULL, &r);
  if (rc == DB_OK) PQclear(r);
  return rc;
}

char *db_int_array(const int32_t *ids, size_t n) {
  size_t cap = n * 12 + 3;
  char *buf = malloc(cap);
  if (!buf) return NULL;
  size_t o = 0;
  buf[o++] = '{';
  for (size_t i = 0; i < n; i++) o += (size_t)snprintf(buf + o, cap - o, "%s%d", i ? "," : "", (int)ids[i]);
  snprintf(buf + o, cap - o, "}");
  return buf;
}

int db_delete_ids(db_pool *p, const char *sql, const int32_t *ids, size_t n, int32_t *out, size_t *nout) {
  *nout = 0;
  if (n == 0) return DB_OK;
  char *arr = db_int_array(ids, n);
  if (!arr) return DB_ERR_NOMEM;
  const char *params[] = {arr};
  PGresult *res;
  int rc = db_query(p, sql, 1, params, &res);
  free(arr);
  if (rc != DB_OK) return rc;
  *nout = db_ids_in_order(res, ids, n, out);
  PQclear(res);
  return DB_OK;
}

size_t db_ids_in_order(const PGresult *res, const int32_t *ids, size_t n, int32_t *out) {
  size_t k = 0;
  int rows = PQntuples(res);
  for (size_t i = 0; i < n; i++)
    for (int row = 0; row < rows; row++)
      if (strtol(PQgetvalue(res, row, 0), NULL, 10) == ids[i]) {
        out[k++] = ids[i];
        break;
      }
  return k;
}
