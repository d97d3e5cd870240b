/* handlers: see handlers.h. */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "health/health.h"

static json_t *counters(const proc_stats *s) {
  return json_pack("{s:I, s:I, s:I, s:I, s:I}", "processed", (json_int_t)atomic_load(&s->processed), "gone",
                   (json_int_t)atomic_load(&s->gone), "failed", (json_int_t)atomic_load(&s->failed), "retried",
                   (json_int_t)atomic_load(&s->retried), "deadLettered", (json_int_t)atomic_load(&s->dead_lettered));
}

/* health's components: the broker and the pipeline (no database). */
static void health_parts(json_t *components, void *vctx) {
  proc_http_ctx *ctx = vctx;
  unsigned up = workers_connected(ctx->pool), n = workers_count(ctx->pool);
  const char *st = up == n ? "UP" : up == 0 ? "DOWN" : "UNKNOWN";
  health_component(components, "broker", st,
                   json_pack("{s:s, s:i, s:i}", "broker", "RabbitMQ", "connected", (int)up, "workers", (int)n));
  json_t *details = counters(ctx->stats);
  long long last = atomic_load(&ctx->stats->last_success_ms);
  if (details && last > 0) {
    time_t secs = (time_t)(last / 1000);
    struct tm tm;
    char ts[40];
    gmtime_r(&secs, &tm);
    size_t k = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + k, sizeof ts - k, ".%03lldZ", last % 1000);
    json_object_set_new(details, "lastSuccess", json_string(ts));
  }
  health_component(components, "pipeline", "UP", details);
}

static const char *const peer_names[PROC_NPEERS] = {"resource", "song"};
static const char *const class_names[PROC_NCLASSES] = {"2xx", "4xx", "5xx", "error"};

static void write_counter(FILE *f, const char *name, const char *help, unsigned long long v) {
  fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, v);
}

/* Our metrics in Prometheus text format, appended after the server's own. */
static void write_metrics(FILE *f, const proc_stats *s) {
  write_counter(f, "processor_messages_processed_total",
                "Messages fully processed (metadata stored, processed published)", atomic_load(&s->processed));
  write_counter(f, "processor_messages_gone_total", "Messages acknowledged because the resource no longer exists",
                atomic_load(&s->gone));
  write_counter(f, "processor_messages_failed_total", "Deliveries that failed (retried or dead-lettered)",
                atomic_load(&s->failed));
  write_counter(f, "processor_messages_retried_total", "Deliveries sent to the delay queue for a later attempt",
                atomic_load(&s->retried));
  write_counter(f, "processor_messages_dead_lettered_total", "Deliveries sent to the dead-letter queue",
                atomic_load(&s->dead_lettered));
  write_counter(f, "processor_fetched_bytes_total", "Resource bytes received by ranged GETs (whole windows)",
                atomic_load(&s->fetched_bytes));
  fprintf(f,
          "# HELP processor_http_client_requests_seconds Outgoing HTTP calls by peer and "
          "result\n# TYPE processor_http_client_requests_seconds summary\n");
  for (int p = 0; p < PROC_NPEERS; p++)
    for (int k = 0; k < PROC_NCLASSES; k++) {
      unsigned long long n = atomic_load(&s->calls[p][k]);
      unsigned long long us = atomic_load(&s->call_us[p][k]);
      fprintf(f,
              "processor_http_client_requests_seconds_count{peer=\"%s\",outcome=\"%s\"} %llu\n"
              "processor_http_client_requests_seconds_sum{peer=\"%s\",outcome=\"%s\"} %.6f\n",
              peer_names[p], class_names[k], n, peer_names[p], class_names[k], us / 1e6);
    }
}

/* Our metrics, after the server's (lib/svc joins them); NULL when out of memory. */
static char *metrics(void *vctx) {
  proc_http_ctx *ctx = vctx;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  write_metrics(f, ctx->stats);
  if (fclose(f) != 0) {
    free(text);
    text = NULL;
  }
  return text;
}

int proc_routes(http_server *srv, proc_http_ctx *ctx) {
  ctx->act =
      (svc_actuator){.srv = ctx->srv, .life = ctx->life, .components = health_parts, .metrics = metrics, .ctx = ctx};
  return svc_actuator_routes(srv, &ctx->act);
}
