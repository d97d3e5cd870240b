/*
 * svc: what every service's main does around its server, and the routes every service
 * has. svc.c: block the termination signals before any thread starts (so they are
 * delivered only where we wait for them), ignore SIGPIPE, wait for SIGTERM/SIGINT, and
 * keep glibc's heap from holding on to freed large buffers. svc_app.c: the common
 * settings, the log, libcurl, auth, the database pool and the HTTP servers, and the
 * run/stop loop with its started/stopping/stopped lines. svc_routes.c: the actuator's
 * health, liveness, readiness and prometheus routes, and the `DELETE ?id=` handler.
 */
#ifndef FERMATA_SVC_H
#define FERMATA_SVC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "config/config.h"
#include "db/db.h"
#include "health/health.h"
#include "http/http.h"
#include "log/log.h"
#include "trace/trace.h"
#include "zipkin/zipkin.h"

/* Call first in main, before creating threads. */
void svc_block_signals(void);

/* glibc raises its mmap threshold after each large block it frees (up to 32 MiB), so after
 * a few 10 MB uploads those buffers come from the heap and their pages stay with the
 * process: the Resource Service and the processor kept ~60 MB after a 10 MB upload run.
 * This fixes the thresholds at 128 KiB (glibc's starting values): every large buffer is
 * mapped and given back on free. Nothing is changed when the environment tunes malloc
 * itself (GLIBC_TUNABLES, MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ or MALLOC_ARENA_MAX).
 * Call early in main. */
void svc_tune_memory(void);

/* "<service>-<host>-<pid>" into buf (host cut to [A-Za-z0-9.-]), to name this process
 * where replicas must not collide (probe objects, consumer tags). */
void svc_instance_name(const char *service, char *buf, size_t cap);

/* Sleeps ms milliseconds (the drain delay between "not ready" and "stop accepting"). */
void svc_sleep_ms(long long ms);

/* Blocks until SIGTERM or SIGINT; returns the signal number. */
int svc_wait_for_stop(void);

/* ---- the common start-up and run/stop loop of a service's main (svc_app.c) ----
 *
 * Every main goes through the same phases, with its own wiring in between:
 *   svc_app_init       signals blocked, malloc tuned, the common settings read into the
 *                      struct (their errors into .err, where the service adds its own)
 *   svc_app_open_log   the log; a bad setting is logged ("bad configuration") and the
 *                      process exits 2
 *   svc_app_open       libcurl, lib/auth's verifier, the tracer (and its Zipkin
 *                      exporter), the database pool and the HTTP server(s), not yet
 *                      listening
 *   ... the service's routes and its own objects ...
 *   svc_app_listen     both servers listen ("cannot listen" otherwise)
 *   svc_app_run        "started", waits for SIGTERM/SIGINT, readiness OUT_OF_SERVICE,
 *                      "stopping", the drain delay
 *   svc_app_stop_http  stop accepting; in-flight requests finish within the grace period
 *   svc_app_free_http, then the service frees its own objects, then
 *   svc_app_close      auth, pool, libcurl, "stopped" (when svc_app_open got that far),
 *                      the log.
 * Settings read here: LOG_LEVEL (info), SERVER_PORT, SERVER_ADDRESS (127.0.0.1),
 * DB_POOL_SIZE (16) and the database URL (with a database), FERMATA_INTERNAL_PORT (0 =
 * none; with an internal listener), FERMATA_DRAIN_DELAY (0),
 * SPRING_LIFECYCLE_TIMEOUT_PER_SHUTDOWN_PHASE (30s), lib/auth's (with auth), HTTP_*,
 * MANAGEMENT_TRACING_ENABLED (true; false: no tracer at all, the baseline of the
 * benchmark), MANAGEMENT_TRACING_SAMPLING_PROBABILITY (0.1, Spring Boot's default) and
 * MANAGEMENT_ZIPKIN_TRACING_ENDPOINT ("" = no export; spans are still made, their trace
 * ids logged and propagated). Both servers make SERVER spans (lib/http); the public one's
 * /actuator/prometheus adds the exporter's counters (lib/zipkin).
 * Not thread-safe: main's thread only. */
typedef struct svc_app_opts {
  const char *name;       /* the service's name in the log ("song") */
  long long default_port; /* SERVER_PORT's default */
  const char *db_var;     /* the database URL's variable; NULL: no database */
  const char *db_default;
  const db_migration *migrations;
  size_t nmigrations;
  bool internal;         /* an internal listener on FERMATA_INTERNAL_PORT */
  bool auth;             /* lib/auth's settings and verifier */
  http_server_opts http; /* defaults below HTTP_* (threads, limits), both servers */
  size_t max_body;       /* the public server's default body cap; 0 = lib/http's */
} svc_app_opts;

typedef struct svc_app {
  svc_app_opts o;
  config_err err; /* the first bad setting */
  log_level level;
  long long port, internal_port, pool, drain_delay_ms, grace_ms;
  const char *address, *db_url, *zipkin_url;
  double sampling;
  bool tracing; /* MANAGEMENT_TRACING_ENABLED */
  auth_config auth_cfg;
  http_server_opts http;
  /* made by svc_app_open_log / svc_app_open; owned by the app */
  log_sink *lg;
  auth *au;              /* NULL without auth, or in open mode */
  db_pool *db;           /* NULL without a database, or out of memory */
  http_server *srv;      /* NULL out of memory */
  http_server *isrv;     /* NULL without an internal port, or out of memory */
  health_lifecycle life; /* readiness: draining once stopping */
  trace_tracer *tracer;  /* NULL before svc_app_open, with tracing disabled or out of memory */
  zipkin *zipkin;        /* NULL when no endpoint is configured */
  bool curl, opened;
} svc_app;

/* Call first in main, before creating threads. */
void svc_app_init(svc_app *a, const svc_app_opts *o);
/* 0, or the exit status: 1 (no log), 2 (a bad setting, logged; the log is freed then). */
int svc_app_open_log(svc_app *a);
/* 0, or the exit status after logging why: 1 (libcurl, the tracer), 2 (lib/auth). Allocation failures
 * of the pool or the servers leave those NULL for the caller to check (and return 0). */
int svc_app_open(svc_app *a);
/* Runs the migrations; logs a warning when the database is not ready. db_migrate's code. */
int svc_app_migrate(svc_app *a);
/* Starts both servers. 0, or -1 after logging "cannot listen". */
int svc_app_listen(svc_app *a);
/* Logs "started" with `fields` (NULL: the ports), waits for SIGTERM/SIGINT, turns readiness
 * to OUT_OF_SERVICE, logs "stopping", sleeps the drain delay. Returns the signal. */
int svc_app_run(svc_app *a, const char *fields);
/* Stops accepting; in-flight requests finish within the grace period. */
void svc_app_stop_http(svc_app *a);
/* Frees the servers (stopping them first if running); again does nothing. */
void svc_app_free_http(svc_app *a);
/* Frees the rest (the servers too if still there), logs "stopped" once svc_app_open
 * succeeded, frees the log. */
void svc_app_close(svc_app *a);

/* ---- routes every service has (svc_routes.c) ---- */

/* GET /actuator/health, /actuator/health/liveness, /actuator/health/readiness and
 * /actuator/prometheus.
 *   health      the "db" component (with a pool), then what `components` adds; the
 *               aggregate as lib/health renders it
 *   prometheus  the server's metrics, the pool's gauges (pool="<pool_name>"), then what
 *               `metrics` returns (malloc'd text, stolen; NULL fails the answer with 500)
 * The struct is borrowed by the routes and must outlive the server. */
typedef struct svc_actuator {
  http_server *srv;       /* whose metrics /actuator/prometheus starts with */
  health_lifecycle *life; /* for /actuator/health/readiness */
  db_pool *db;            /* NULL: neither the db component nor the pool's gauges */
  const char *pool_name;
  void (*components)(json_t *components, void *ctx); /* NULL: none */
  char *(*metrics)(void *ctx);                       /* NULL: none */
  void *ctx;
} svc_actuator;

/* The four routes on the public server. HTTP_OK or an http_server_route error. */
int svc_actuator_routes(http_server *srv, svc_actuator *act);
/* GET /actuator/health alone, for the internal listener. */
int svc_actuator_internal_routes(http_server *srv, svc_actuator *act);

/* `DELETE ...?id=1,2`: the CSV is checked as the contract says (lib/ids: 400 with its
 * message), `del` deletes and puts the ids that existed into `out` (room for n; it is the
 * parsed list itself, so deleting in place works) with their count in *nout, and the
 * answer is {"ids":[...]}; a nonzero result of `del` is answered by `reply_error`. `del`
 * gets the request's id and trace context (http_req_trace) for the calls it makes. */
typedef struct svc_delete {
  int (*del)(void *ctx, const int32_t *ids, size_t n, const char *request_id, const trace_ctx *trace, int32_t *out,
             size_t *nout);
  void (*reply_error)(http_req *r, int rc);
} svc_delete;

void svc_delete_ids(http_req *r, void *ctx, const svc_delete *d);

#endif
