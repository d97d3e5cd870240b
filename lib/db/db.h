/*
 * db: PostgreSQL access through libpq: a connection pool, schema migrations, and query
 * helpers that always bind parameters (SQL text never contains a value).
 *
 * Design. Connections are opened lazily, up to `max_conns`, and kept idle in the pool. The
 * database may be down when a service starts or go away later: nothing here blocks start-
 * up; every call reports DB_ERR_UNAVAILABLE (the service answers 503) and the next call
 * tries again, so the service recovers by itself when the database is back. A connection
 * found dead on its first statement after being taken from the pool is reconnected and
 * the statement retried once (safe: nothing has run on it yet in this use).
 *
 * Migrations are a static array of (version, name, sql) applied in order, each once,
 * recorded in `schema_migrations`, under an advisory lock so several instances starting
 * together apply them once. They run on the first successful connection.
 *
 * Thread-safe: the pool may be shared by all threads; a db_conn belongs to the thread that
 * acquired it until it is released. PGresults returned are owned by the caller (PQclear).
 */
#ifndef FERMATA_DB_H
#define FERMATA_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log/log.h"

typedef struct db_pool db_pool;
typedef struct db_conn db_conn;

typedef struct {
  int version;
  const char *name;
  const char *sql; /* may hold several statements; constant text only */
} db_migration;

typedef struct {
  const char *conninfo;           /* libpq URI or key=value string; copied */
  int max_conns;                  /* 0 = 10 */
  int connect_timeout_s;          /* 0 = 3 */
  int acquire_timeout_ms;         /* wait for a free connection; 0 = 5000 */
  const db_migration *migrations; /* borrowed, must outlive the pool */
  size_t nmigrations;
} db_opts;

enum {
  DB_OK = 0,
  DB_ERR_UNAVAILABLE = -1, /* cannot connect, or the connection broke */
  DB_ERR_UNIQUE = -2,      /* unique violation (SQLSTATE 23505) */
  DB_ERR_QUERY = -3,       /* any other statement error: a bug or a constraint */
  DB_ERR_NOMEM = -4,
  DB_ERR_BUSY = -5 /* no connection free within acquire_timeout_ms */
};

db_pool *db_pool_new(const db_opts *opts, log_sink *lg);
void db_pool_free(db_pool *p); /* all connections must have been released */

/* Applies pending migrations now (also done implicitly on first connect). */
int db_migrate(db_pool *p);

int db_acquire(db_pool *p, db_conn **out);
void db_release(db_pool *p, db_conn *c); /* NULL ok; a broken connection is closed */

/* Waiting is first come, first served: a released connection (or the slot of a closed one)
 * goes straight to the thread that has waited longest, never to one that arrives later. */
typedef struct {
  int open;          /* connections open or being opened */
  int idle;          /* of which idle in the pool */
  int pending;       /* threads waiting in db_acquire */
  int max;           /* max_conns */
  uint64_t timeouts; /* db_acquire calls that ended in DB_ERR_BUSY */
} db_stats;
void db_pool_stats(db_pool *p, db_stats *st);

/* The pool's gauges in Prometheus text under HikariCP's names (hikaricp_connections_active,
 * _idle, _pending, _max, hikaricp_connections, _timeout_total), labelled pool="<pool>".
 * Caller frees; NULL when out of memory. */
char *db_pool_prometheus(db_pool *p, const char *pool);

/* Runs one statement with text parameters (NULL entries are SQL NULL). On DB_OK, *out (if
 * not NULL) receives the result; on error nothing is returned and the error is logged.
 * `sql` must have static storage duration (a string literal): statements with parameters
 * are prepared once per connection and found again by the address of their text. */
int db_exec(db_conn *c, const char *sql, int nparams, const char *const *params, PGresult **out);

/* acquire + db_exec + release. */
int db_query(db_pool *p, const char *sql, int nparams, const char *const *params, PGresult **out);

int db_begin(db_conn *c);
int db_commit(db_conn *c);
void db_rollback(db_conn *c); /* best effort; a failure marks the connection broken */

/* SELECT 1 on a pooled connection: DB_OK when the database answers. */
int db_ping(db_pool *p);

const char *db_strerror(int code);

/* Of `ids` (n, in request order), the ones found in column 0 of `res` (e.g. the rows a
 * DELETE ... RETURNING id removed), kept in request order: written to `out` (room for n;
 * may be `ids` itself), count returned. This is how every "deleted ids" answer keeps the
 * client's order. */
size_t db_ids_in_order(const PGresult *res, const int32_t *ids, size_t n, int32_t *out);

/* Renders ids as a PostgreSQL array literal "{1,2,3}" to bind as one `$n::int[]`
 * parameter. malloc'd; the caller frees. NULL on allocation failure. */
char *db_int_array(const int32_t *ids, size_t n);

/* Runs `sql`, a statement binding the ids as its one `$1::int[]` parameter and returning
 * the ids it removed (e.g. "DELETE FROM t WHERE id = ANY($1::int[]) RETURNING id"), and
 * writes those ids, in request order, to `out` (room for n; may be `ids`); *nout = their count. DB_OK or
 * DB_ERR_*. The shared body of every service's "delete these ids" call. */
int db_delete_ids(db_pool *p, const char *sql, const int32_t *ids, size_t n, int32_t *out, size_t *nout);

#endif
