/*
 * fermata-processor: the Resource Processor. Consumes "resource.uploaded", turns each
 * resource into song metadata (pipeline.c), announces "resource.processed", and serves
 * only /actuator/health and /actuator/prometheus over HTTP.
 *
 * Shutdown on SIGTERM/SIGINT: raise the stop flag (in-place HTTP retries end early), stop
 * every consumer (each settles the delivery it holds: acked, or rescheduled through the
 * delay queue), then stop the HTTP server. Deliveries not yet started stay in the broker.
 *
 * Environment (defaults = the local stack):
 *   SERVER_PORT (8084), AMQP_URL (amqp://fermata:fermata@127.0.0.1:26720/; amqps:// for TLS,
 *   AMQP_TLS_CA_FILE to trust a private CA),
 *   RESOURCE_SERVICE_URL (http://127.0.0.1:8081), SONG_SERVICE_URL (http://127.0.0.1:8082),
 *   PROCESSOR_CONCURRENCY (4), PROCESSOR_MAX_ATTEMPTS (5), PROCESSOR_RETRY_INITIAL (1s),
 *   PROCESSOR_RETRY_MAX (60s), PROCESSOR_HTTP_ATTEMPTS (3), PROCESSOR_FETCH_WINDOW_BYTES
 *   (1048576: each worker reads a resource through one window of this size, by ranged GETs,
 *   so memory does not grow with the file), HTTP_CONNECT_TIMEOUT (1s), HTTP_TIMEOUT (5s, one
 *   call: one window), LOG_LEVEL (info).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "handlers.h"
#include "http/http.h"
#include "httpc/httpc.h"
#include "log/log.h"
#include "mq/mq.h"
#include "pipeline.h"
#include "health/health.h"
#include "proc.h"
#include "svc/svc.h"
#include "workers.h"

typedef struct proc_config {
  char amqp_url[1024];
  char resource_url[512];
  char song_url[512];
  unsigned concurrency;
  unsigned max_attempts;
  long long retry_initial_ms, retry_max_ms;
  unsigned http_attempts;
  long long fetch_window_bytes;
  long long connect_timeout_ms, timeout_ms;
} proc_config;

/* Copies a base URL without trailing slashes, so "{base}/songs" never has "//". */
static void base_url(const char *name, const char *def, char *out, size_t cap, config_err *err) {
  const char *v = config_str(name, def);
  size_t n = strlen(v);
  while (n > 0 && v[n - 1] == '/') n--;
  if (n >= cap || (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)) {
    if (!err->msg[0]) snprintf(err->msg, sizeof err->msg, "%s: expected an http(s) URL", name);
    out[0] = '\0';
    return;
  }
  memcpy(out, v, n);
  out[n] = '\0';
}

static void read_config(proc_config *c, config_err *err) {
  snprintf(c->amqp_url, sizeof c->amqp_url, "%s", config_str("AMQP_URL", "amqp://fermata:fermata@127.0.0.1:26720/"));
  base_url("RESOURCE_SERVICE_URL", "http://127.0.0.1:8081", c->resource_url, sizeof c->resource_url, err);
  base_url("SONG_SERVICE_URL", "http://127.0.0.1:8082", c->song_url, sizeof c->song_url, err);
  c->concurrency = (unsigned)config_int("PROCESSOR_CONCURRENCY", 4, 1, 64, err);
  c->max_attempts = (unsigned)config_int("PROCESSOR_MAX_ATTEMPTS", 5, 1, 1000, err);
  c->retry_initial_ms = config_duration_ms("PROCESSOR_RETRY_INITIAL", 1000, 1, 3600000, err);
  c->retry_max_ms = config_duration_ms("PROCESSOR_RETRY_MAX", 60000, 1, 86400000, err);
  if (c->retry_max_ms < c->retry_initial_ms && !err->msg[0])
    snprintf(err->msg, sizeof err->msg, "PROCESSOR_RETRY_MAX: below PROCESSOR_RETRY_INITIAL");
  c->http_attempts = (unsigned)config_int("PROCESSOR_HTTP_ATTEMPTS", 3, 1, 10, err);
  c->fetch_window_bytes = config_int("PROCESSOR_FETCH_WINDOW_BYTES", 1024 * 1024, 4096, 64LL * 1024 * 1024, err);
  c->connect_timeout_ms = config_duration_ms("HTTP_CONNECT_TIMEOUT", 1000, 1, 60000, err);
  c->timeout_ms = config_duration_ms("HTTP_TIMEOUT", 5000, 1, 600000, err);
}

int main(void) {
  svc_app app;
  /* health and metrics only: one loop, two workers by default */
  svc_app_init(&app,
               &(svc_app_opts){.name = "processor", .default_port = 8084, .http = {.event_loops = 1, .workers = 2}});
  config_err *cerr = &app.err;
  proc_config cfg = {0};
  read_config(&cfg, cerr);
  mq_params mqp;
  if (!cerr->msg[0] && mq_params_from_url(cfg.amqp_url, &mqp) != MQ_OK)
    snprintf(cerr->msg, sizeof cerr->msg, "AMQP_URL: expected amqp[s]://user:pass@host:port/vhost");
  if (!cerr->msg[0] && mq_params_set_ca_file(&mqp, config_str("AMQP_TLS_CA_FILE", "")) != MQ_OK)
    snprintf(cerr->msg, sizeof cerr->msg, "AMQP_TLS_CA_FILE: not a readable file");
  if (!cerr->msg[0] && mq_params_set_password(&mqp, config_str("AMQP_PASSWORD", "")) != MQ_OK)
    snprintf(cerr->msg, sizeof cerr->msg, "AMQP_PASSWORD: longer than 127 bytes");
  proc_stats stats = {0};
  atomic_bool stop = false;
  httpc *res_http = NULL, *song_http = NULL;
  workers *pool = NULL;
  int status = svc_app_open_log(&app);
  if (status) return status;
  log_sink *lg = app.lg;
  mqp.log = lg;
  status = svc_app_open(&app);
  if (status) goto out;
  status = 1;
  /* resource bytes go to each worker's window (httpc_request.into): the cap below only
   * bounds answers read into httpc's own buffer, which the processor's calls never are */
  httpc_config rc_cfg = {.connect_timeout_ms = (long)cfg.connect_timeout_ms,
                         .timeout_ms = (long)cfg.timeout_ms,
                         .max_response_bytes = 64 * 1024,
                         .max_idle_handles = (int)cfg.concurrency,
                         .user_agent = "fermata-processor",
                         .tracer = app.tracer};
  httpc_config sc_cfg = rc_cfg;
  if (httpc_new(&rc_cfg, &res_http) != HTTPC_OK || httpc_new(&sc_cfg, &song_http) != HTTPC_OK) goto out;
  peers pe = {.resource_http = res_http,
              .song_http = song_http,
              .resource_url = cfg.resource_url,
              .song_url = cfg.song_url,
              .stats = &stats};
  /* In-place retries ride out blips of a peer; longer outages go through the delay queue.
   * Kept short because heartbeats are not serviced while a handler runs. */
  proc_pipeline pl = {.peers = &pe,
                      .call_retry = {.initial_ms = 200,
                                     .multiplier = 2.0,
                                     .max_delay_ms = 2000,
                                     .jitter = RETRY_JITTER_EQUAL,
                                     .max_attempts = cfg.http_attempts},
                      .window_bytes = (size_t)cfg.fetch_window_bytes,
                      .stop = &stop,
                      .lg = lg};
  workers_opts wo = {.mq = &mqp,
                     .count = cfg.concurrency,
                     .max_attempts = cfg.max_attempts,
                     .retry = {(uint32_t)cfg.retry_initial_ms, (uint32_t)cfg.retry_max_ms},
                     .pipeline = &pl,
                     .stats = &stats,
                     .lg = lg,
                     .tracer = app.tracer};
  pool = workers_new(&wo);
  proc_http_ctx hctx = {.srv = app.srv, .pool = pool, .stats = &stats, .life = &app.life};
  if (!pool || !app.srv || proc_routes(app.srv, &hctx) != HTTP_OK) {
    log_event(lg, LOG_LEVEL_ERROR, "cannot set up", NULL);
    goto out;
  }
  if (svc_app_listen(&app) != 0) goto out;
  if (workers_start(pool) != 0) {
    log_event(lg, LOG_LEVEL_ERROR, "cannot start consumers", NULL);
    goto out;
  }
  char fields[2048];
  snprintf(fields, sizeof fields,
           "port=%u broker=%s:%d workers=%u max_attempts=%u retry_ms=%lld..%lld fetch_window=%lld "
           "resource=%s song=%s",
           http_server_port(app.srv), mqp.host, mqp.port, cfg.concurrency, cfg.max_attempts, cfg.retry_initial_ms,
           cfg.retry_max_ms, cfg.fetch_window_bytes, cfg.resource_url, cfg.song_url);
  svc_app_run(&app, fields);
  status = 0;
out:
  atomic_store(&stop, true);
  workers_stop(pool);
  svc_app_stop_http(&app); /* after the consumers: health answers while they settle */
  workers_free(pool);
  svc_app_free_http(&app);
  httpc_free(song_http);
  httpc_free(res_http);
  svc_app_close(&app);
  return status;
}
