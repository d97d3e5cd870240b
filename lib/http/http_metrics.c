/*
 * http_metrics: per route, a small table of (status -> count, sum, max) under one mutex,
 * rendered as Prometheus text (http_server_requests_seconds, Spring's names). Requests that
 * match no route are counted under uri "UNKNOWN".
 */
#include "http_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void http_record_stats(http_server *s, http_req *r, double secs) {
  route *rt = r->rt ? r->rt : s->unknown;
  pthread_mutex_lock(&s->stats_mu);
  status_stat *st = NULL;
  for (int i = 0; i < rt->nstats; i++)
    if (rt->stats[i].status == r->status) st = &rt->stats[i];
  if (!st && rt->nstats < MAX_STATUSES) {
    st = &rt->stats[rt->nstats++];
    st->status = r->status;
  }
  if (st) {
    st->count++;
    st->sum_s += secs;
    if (secs > st->max_s) st->max_s = secs;
  }
  pthread_mutex_unlock(&s->stats_mu);
}


typedef struct {
  char *buf;
  size_t len, cap;
  bool failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  if (b->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->failed = true;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = b->cap * 2 + (size_t)n + 1;
    char *nb = realloc(b->buf, cap);
    if (!nb) {
      b->failed = true;
      return;
    }
    b->buf = nb;
    b->cap = cap;
  }
}

static void route_metrics(sbuf *b, const route *rt, const char *suffix) {
  for (int i = 0; i < rt->nstats; i++) {
    const status_stat *st = &rt->stats[i];
    if (strcmp(suffix, "count") == 0)
      sb_printf(b, "http_server_requests_seconds_count{method=\"%s\",uri=\"%s\",status=\"%u\"} %llu\n", rt->method,
                rt->pattern, st->status, (unsigned long long)st->count);
    else if (strcmp(suffix, "sum") == 0)
      sb_printf(b, "http_server_requests_seconds_sum{method=\"%s\",uri=\"%s\",status=\"%u\"} %.6f\n", rt->method,
                rt->pattern, st->status, st->sum_s);
    else
      sb_printf(b, "http_server_requests_seconds_max{method=\"%s\",uri=\"%s\",status=\"%u\"} %.6f\n", rt->method,
                rt->pattern, st->status, st->max_s);
  }
}

char *http_server_metrics(http_server *s) {
  sbuf b = {malloc(4096), 0, 4096, false};
  if (!b.buf) return NULL;
  b.buf[0] = '\0';
  static const char *const parts[] = {"count", "sum", "max"};
  pthread_mutex_lock(&s->stats_mu);
  for (int p = 0; p < 3; p++) {
    sb_printf(&b, "# HELP http_server_requests_seconds_%s HTTP server requests\n", parts[p]);
    sb_printf(&b, "# TYPE http_server_requests_seconds_%s %s\n", parts[p], p == 2 ? "gauge" : "counter");
    for (route *rt = s->routes; rt; rt = rt->next) route_metrics(&b, rt, parts[p]);
    route_metrics(&b, s->unknown, parts[p]);
  }
  pthread_mutex_unlock(&s->stats_mu);
  if (b.failed) {
    free(b.buf);
    return NULL;
  }
  if (s->opts.extra_metrics) return http_metrics_join(b.buf, s->opts.extra_metrics(s->opts.extra_metrics_ud));
  return b.buf;
}
