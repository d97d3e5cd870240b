/* svc_app: see svc.h ("the common start-up"). The log lines and exit statuses are the
 * ones the four mains had: "bad configuration" exits 2 before anything else starts,
 * "started"/"stopping"/"stopped" frame the run, and "stopped" is only said once the
 * process got past libcurl and lib/auth. */
#include "svc.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

void svc_app_init(svc_app *a, const svc_app_opts *o) {
  svc_block_signals();
  svc_tune_memory();
  memset(a, 0, sizeof *a);
  a->o = *o;
  config_err *err = &a->err;
  a->level = LOG_LEVEL_INFO;
  if (log_level_parse(config_str("LOG_LEVEL", "info"), &a->level) != 0)
    snprintf(err->msg, sizeof err->msg, "LOG_LEVEL: expected debug, info, warn or error");
  a->port = config_int("SERVER_PORT", o->default_port, 0, 65535, err);
  a->address = config_ipv4("SERVER_ADDRESS", "127.0.0.1", err);
  if (o->db_var) {
    a->pool = config_int("DB_POOL_SIZE", 16, 1, 500, err);
    a->db_url = config_str(o->db_var, o->db_default);
  }
  if (o->internal) a->internal_port = config_int("FERMATA_INTERNAL_PORT", 0, 0, 65535, err);
  a->drain_delay_ms = config_duration_ms("FERMATA_DRAIN_DELAY", 0, 0, 600000, err);
  a->grace_ms = config_duration_ms("SPRING_LIFECYCLE_TIMEOUT_PER_SHUTDOWN_PHASE", 30000, 1, 600000, err);
  if (o->auth) auth_config_read(&a->auth_cfg, err);
  const char *p = config_str("MANAGEMENT_TRACING_SAMPLING_PROBABILITY", "0.1");
  if (trace_probability_parse(p, &a->sampling) != TRACE_OK && !err->msg[0])
    snprintf(err->msg, sizeof err->msg, "MANAGEMENT_TRACING_SAMPLING_PROBABILITY: expected a number from 0 to 1");
  a->zipkin_url = config_str("MANAGEMENT_ZIPKIN_TRACING_ENDPOINT", "");
  a->tracing = config_bool("MANAGEMENT_TRACING_ENABLED", true, err);
  a->http = o->http;
  http_server_opts_env(&a->http, err);
}

int svc_app_open_log(svc_app *a) {
  a->lg = log_new(a->o.name, a->level, stderr);
  if (!a->lg) return 1;
  (void)log_buffer_start(a->lg, 200, 64 * 1024); /* the access log, buffered (log.h); unbuffered if it fails */
  if (a->err.msg[0]) {
    log_event(a->lg, LOG_LEVEL_ERROR, "bad configuration", "detail=\"%s\"", a->err.msg);
    log_free(a->lg);
    a->lg = NULL;
    return 2;
  }
  return 0;
}

static char *tracing_metrics(void *z) { return zipkin_prometheus(z); }

static http_server *new_server(svc_app *a, long long port, size_t max_body, bool public) {
  http_server_opts ho = a->http;
  ho.port = (unsigned)port, ho.bind_addr = a->address, ho.shutdown_grace_ms = (unsigned)a->grace_ms;
  ho.tracer = a->tracer;
  if (public && a->zipkin) ho.extra_metrics = tracing_metrics, ho.extra_metrics_ud = a->zipkin;
  if (max_body) ho.max_body = max_body;
  return http_server_new(&ho, a->lg);
}

/* The tracer (always: trace ids are logged and propagated) and, with an endpoint, the
 * Zipkin exporter it hands sampled spans to. */
static int open_tracing(svc_app *a) {
  if (!a->tracing) return 0; /* no spans, no trace ids, no export */
  if (a->zipkin_url[0]) {
    a->zipkin = zipkin_new(&(zipkin_opts){.endpoint = a->zipkin_url, .service = a->o.name});
    if (!a->zipkin || zipkin_start(a->zipkin) != ZIPKIN_OK) {
      log_event(a->lg, LOG_LEVEL_ERROR, "cannot start the Zipkin exporter", NULL);
      return -1;
    }
  }
  a->tracer = trace_tracer_new(a->o.name, a->sampling, a->zipkin ? zipkin_submit : NULL, a->zipkin);
  if (!a->tracer) return -1;
  return 0;
}

int svc_app_open(svc_app *a) {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) { /* httpc, lib/s3, lib/jwkshttp */
    log_event(a->lg, LOG_LEVEL_ERROR, "cannot initialise libcurl", NULL);
    return 1;
  }
  a->curl = true;
  if (a->o.auth) {
    if (auth_new(&a->auth_cfg, a->lg, &a->au) != 0) return 2; /* lib/auth said why */
    auth_log_mode(a->au, a->lg, a->o.name);
  }
  a->opened = true;
  if (a->o.db_var) {
    db_opts dbo = {.conninfo = a->db_url,
                   .max_conns = (int)a->pool,
                   .migrations = a->o.migrations,
                   .nmigrations = a->o.nmigrations};
    a->db = db_pool_new(&dbo, a->lg);
  }
  if (open_tracing(a) != 0) return 1;
  a->srv = new_server(a, a->port, a->o.max_body, true);
  if (a->internal_port) a->isrv = new_server(a, a->internal_port, 0, false);
  return 0;
}

int svc_app_migrate(svc_app *a) {
  int rc = db_migrate(a->db);
  if (rc != DB_OK)
    log_event(a->lg, LOG_LEVEL_WARN, "database not ready at start; serving 503 until it is", "error=\"%s\"",
              db_strerror(rc));
  return rc;
}

int svc_app_listen(svc_app *a) {
  if (http_server_start(a->srv) == HTTP_OK && (!a->isrv || http_server_start(a->isrv) == HTTP_OK)) return 0;
  if (a->o.internal)
    log_event(a->lg, LOG_LEVEL_ERROR, "cannot listen", "port=%lld internal_port=%lld", a->port, a->internal_port);
  else
    log_event(a->lg, LOG_LEVEL_ERROR, "cannot listen", "port=%lld", a->port);
  return -1;
}

int svc_app_run(svc_app *a, const char *fields) {
  if (fields)
    log_event(a->lg, LOG_LEVEL_INFO, "started", "%s", fields);
  else
    log_event(a->lg, LOG_LEVEL_INFO, "started", "port=%u internal_port=%u", http_server_port(a->srv),
              a->isrv ? http_server_port(a->isrv) : 0);
  int sig = svc_wait_for_stop();
  health_lifecycle_drain(&a->life);
  log_event(a->lg, LOG_LEVEL_INFO, "stopping", "signal=%d drain_delay_ms=%lld", sig, a->drain_delay_ms);
  svc_sleep_ms(a->drain_delay_ms);
  return sig;
}

void svc_app_stop_http(svc_app *a) {
  if (a->srv) http_server_stop(a->srv);
  if (a->isrv) http_server_stop(a->isrv);
}

void svc_app_free_http(svc_app *a) {
  http_server_free(a->isrv); /* stops it first if running */
  http_server_free(a->srv);
  a->isrv = a->srv = NULL;
}

void svc_app_close(svc_app *a) {
  svc_app_free_http(a);
  auth_free(a->au);
  db_pool_free(a->db);
  a->au = NULL;
  a->db = NULL;
  zipkin_free(a->zipkin); /* its last batch goes out before libcurl is cleaned up */
  trace_tracer_free(a->tracer);
  a->zipkin = NULL;
  a->tracer = NULL;
  if (a->curl) curl_global_cleanup();
  a->curl = false;
  if (a->lg && a->opened) log_event(a->lg, LOG_LEVEL_INFO, "stopped", NULL);
  log_free(a->lg);
  a->lg = NULL;
}
