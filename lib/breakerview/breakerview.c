/*
 * breakerview.c: JSON through jansson (compact, keys in insertion order so the output
 * reads like Jackson's), Prometheus text through a capped string buffer. Numbers are
 * printed the way the JVM prints them (lib/javanum: Float.toString for rates,
 * Double.toString for Prometheus samples), since clients compare these strings.
 */
#include "breakerview.h"

#include <ctype.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "javanum/javanum.h"

#define PROM_CAP (4u << 20) /* hard cap of the Prometheus page */

/* ---- numbers and times ---------------------------------------------------------- */

static json_t *rate_string(float rate) {
  char num[JAVANUM_MAX], s[JAVANUM_MAX + 4];
  javanum_float(rate, num, sizeof num);
  snprintf(s, sizeof s, "%s%%", num);
  return json_string(s);
}

int breakerview_format_time(long long epoch_ns, char *buf, size_t len) {
  time_t secs = (time_t)(epoch_ns / 1000000000LL);
  long long ns = epoch_ns % 1000000000LL;
  if (ns < 0) {
    ns += 1000000000LL;
    secs--;
  }
  long long us = ns / 1000; /* the JVM's system clock ticks in microseconds */
  struct tm tm;
  gmtime_r(&secs, &tm);
  char hm[32], frac[16] = "";
  strftime(hm, sizeof hm, "%Y-%m-%dT%H:%M", &tm);
  if (us % 1000 == 0 && us != 0)
    snprintf(frac, sizeof frac, ".%03lld", us / 1000);
  else if (us != 0)
    snprintf(frac, sizeof frac, ".%06lld", us);
  /* LocalTime.toString omits ":00" seconds when there is no fraction either */
  if (tm.tm_sec == 0 && us == 0) return snprintf(buf, len, "%sZ", hm);
  return snprintf(buf, len, "%s:%02d%sZ", hm, tm.tm_sec, frac);
}

/* ---- JSON endpoints ------------------------------------------------------------- */

static char *dump(json_t *j) {
  if (!j) return NULL;
  char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(j);
  return s;
}

/* The fields the circuitbreakers endpoint and the health details share. */
static json_t *details(breaker *b, bool health_order) {
  breaker_state st;
  breaker_metrics m;
  breaker_get_snapshot(b, &st, &m);
  const breaker_config *c = breaker_get_config(b);
  json_t *o = json_object();
  if (!o) return NULL;
  json_object_set_new(o, "failureRate", rate_string(m.failure_rate));
  if (health_order) json_object_set_new(o, "failureRateThreshold", rate_string(c->failure_rate_threshold));
  json_object_set_new(o, "slowCallRate", rate_string(m.slow_call_rate));
  if (!health_order) json_object_set_new(o, "failureRateThreshold", rate_string(c->failure_rate_threshold));
  json_object_set_new(o, "slowCallRateThreshold", rate_string(c->slow_call_rate_threshold));
  json_object_set_new(o, "bufferedCalls", json_integer(m.buffered));
  json_object_set_new(o, "failedCalls", json_integer(m.failed));
  json_object_set_new(o, "slowCalls", json_integer(m.slow));
  json_object_set_new(o, "slowFailedCalls", json_integer(m.slow_failed));
  json_object_set_new(o, "notPermittedCalls", json_integer(m.not_permitted));
  json_object_set_new(o, "state", json_string(breaker_state_name(st)));
  return o;
}

char *breakerview_circuitbreakers_json(breaker_registry *r) {
  json_t *all = json_object();
  json_t *root = json_object();
  if (!all || !root) {
    json_decref(all);
    json_decref(root);
    return NULL;
  }
  for (size_t i = 0;; i++) {
    breaker *b = breaker_registry_at(r, i);
    if (!b) break;
    json_object_set_new(all, breaker_name(b), details(b, false));
  }
  json_object_set_new(root, "circuitBreakers", all);
  return dump(root);
}

static char *error_body(int *status, int code, const char *message) {
  *status = code;
  return dump(json_pack("{s:s}", "message", message));
}

char *breakerview_update_state(breaker_registry *r, const char *name, const char *body, int *status) {
  breaker *b = name ? breaker_registry_get(r, name) : NULL;
  if (!b) return error_body(status, 404, "circuit breaker not found");
  json_error_t jerr;
  json_t *req = body ? json_loads(body, 0, &jerr) : NULL;
  const char *want = req ? json_string_value(json_object_get(req, "updateState")) : NULL;
  breaker_state to;
  if (want && strcmp(want, "CLOSE") == 0)
    to = BREAKER_CLOSED;
  else if (want && strcmp(want, "FORCE_OPEN") == 0)
    to = BREAKER_FORCED_OPEN;
  else if (want && strcmp(want, "DISABLE") == 0)
    to = BREAKER_DISABLED;
  else {
    json_decref(req);
    return error_body(status, 400, "updateState must be one of CLOSE, FORCE_OPEN, DISABLE");
  }
  json_decref(req);
  if (breaker_transition(b, to) != BREAKER_OK) /* none of these three is ever illegal */
    return error_body(status, 400, "illegal state transition");
  char msg[BREAKER_MSG_MAX + 64];
  snprintf(msg, sizeof msg, "%s state has been changed successfully", breaker_name(b));
  *status = 200;
  return dump(json_pack("{s:s,s:s,s:s}", "circuitBreakerName", breaker_name(b), "currentState",
                        breaker_state_name(breaker_get_state(b)), "message", msg));
}

typedef struct named_event {
  const char *name;
  breaker_event ev;
} named_event;

static int by_time(const void *a, const void *b) {
  const named_event *x = a, *y = b;
  return x->ev.wall_ns < y->ev.wall_ns ? -1 : x->ev.wall_ns > y->ev.wall_ns;
}

static json_t *event_json(const named_event *ne) {
  const breaker_event *ev = &ne->ev;
  char when[64];
  breakerview_format_time((long long)ev->wall_ns, when, sizeof when);
  json_t *o = json_object();
  if (!o) return NULL;
  json_object_set_new(o, "circuitBreakerName", json_string(ne->name));
  json_object_set_new(o, "type", json_string(breaker_event_type_name(ev->type)));
  json_object_set_new(o, "creationTime", json_string(when));
  if (ev->type == BREAKER_EV_ERROR || ev->type == BREAKER_EV_IGNORED_ERROR)
    json_object_set_new(o, "errorMessage", json_string(ev->message));
  if (ev->type == BREAKER_EV_SUCCESS || ev->type == BREAKER_EV_ERROR || ev->type == BREAKER_EV_IGNORED_ERROR)
    json_object_set_new(o, "durationInMs", json_integer(ev->duration_ns / 1000000));
  if (ev->type == BREAKER_EV_STATE_TRANSITION) {
    char tr[48];
    snprintf(tr, sizeof tr, "%s_TO_%s", breaker_state_name(ev->from), breaker_state_name(ev->to));
    json_object_set_new(o, "stateTransition", json_string(tr));
  }
  return o;
}

/* Appends the events of b (optionally one type) to *v; 0 or -1 on allocation failure. */
static int collect(breaker *b, int type, named_event **v, size_t *n) {
  size_t cnt = breaker_get_events(b, NULL, 0);
  if (cnt == 0) return 0;
  breaker_event *tmp = calloc(cnt, sizeof *tmp);
  named_event *grown = realloc(*v, (*n + cnt) * sizeof **v);
  if (!tmp || !grown) {
    free(tmp);
    if (grown) *v = grown;
    return -1;
  }
  *v = grown;
  cnt = breaker_get_events(b, tmp, cnt);
  for (size_t i = 0; i < cnt; i++) {
    if (type >= 0 && (int)tmp[i].type != type) continue;
    (*v)[*n].name = breaker_name(b);
    (*v)[*n].ev = tmp[i];
    (*n)++;
  }
  free(tmp);
  return 0;
}

char *breakerview_events_json(breaker_registry *r, const char *name, const char *event_type, int *status) {
  int type = -1;
  if (event_type) {
    char up[40];
    size_t i;
    for (i = 0; i < sizeof up - 1 && event_type[i]; i++) up[i] = (char)toupper((unsigned char)event_type[i]);
    up[i] = '\0';
    breaker_event_type t;
    if (event_type[i] || breaker_event_type_parse(up, &t)) return error_body(status, 400, "unknown event type");
    type = (int)t;
  }
  named_event *v = NULL;
  size_t n = 0;
  int rc = 0;
  if (name) {
    breaker *b = breaker_registry_get(r, name);
    if (b) rc = collect(b, type, &v, &n);
  } else {
    for (size_t i = 0; rc == 0; i++) {
      breaker *b = breaker_registry_at(r, i);
      if (!b) break;
      rc = collect(b, type, &v, &n);
    }
  }
  json_t *arr = rc == 0 ? json_array() : NULL;
  if (arr) {
    if (n > 1) /* qsort is not stable; events of one breaker are already in order */
      qsort(v, n, sizeof *v, by_time);
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, event_json(&v[i]));
  }
  free(v);
  if (!arr) return NULL;
  *status = 200;
  json_t *root = json_object();
  if (!root) {
    json_decref(arr);
    return NULL;
  }
  json_object_set_new(root, "circuitBreakerEvents", arr);
  return dump(root);
}

const char *breakerview_health_status(breaker_state s, bool open_is_down) {
  switch (s) {
  case BREAKER_CLOSED: return "UP";
  case BREAKER_OPEN: return open_is_down ? "DOWN" : "CIRCUIT_OPEN";
  case BREAKER_HALF_OPEN: return "CIRCUIT_HALF_OPEN";
  default: return "UNKNOWN";
  }
}

char *breakerview_health_json(breaker *b, bool open_is_down, bool *up) {
  json_t *d = details(b, true);
  if (!d) return NULL;
  breaker_state st;
  breaker_state_parse(json_string_value(json_object_get(d, "state")), &st);
  const char *status = breakerview_health_status(st, open_is_down);
  if (up) *up = strcmp(status, "DOWN") != 0;
  json_t *o = json_object();
  if (!o) {
    json_decref(d);
    return NULL;
  }
  json_object_set_new(o, "status", json_string(status));
  json_object_set_new(o, "details", d);
  return dump(o);
}

/* ---- Prometheus ----------------------------------------------------------------- */

typedef struct sbuf {
  char *p;
  size_t len, cap;
  bool failed;
} sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *s, const char *fmt, ...) {
  if (s->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->p ? s->p + s->len : NULL, s->p ? s->cap - s->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      s->failed = true;
      return;
    }
    if (s->p && s->len + (size_t)n < s->cap) {
      s->len += (size_t)n;
      return;
    }
    size_t cap = s->cap ? s->cap : 4096;
    while (cap <= s->len + (size_t)n) cap *= 2;
    char *np = cap <= PROM_CAP ? realloc(s->p, cap) : NULL;
    if (!np) {
      s->failed = true; /* a failed append frees the buffer (C-STYLE 14) */
      free(s->p);
      s->p = NULL;
      return;
    }
    s->p = np;
    s->cap = cap;
  }
}

/* Label values are breaker names: escape \, " and newline as the exposition format asks. */
static void escape_label(const char *in, char *out, size_t len) {
  size_t o = 0;
  for (; *in && o + 3 < len; in++) {
    if (*in == '\\' || *in == '"') {
      out[o++] = '\\';
      out[o++] = *in;
    } else if (*in == '\n') {
      out[o++] = '\\';
      out[o++] = 'n';
    } else {
      out[o++] = *in;
    }
  }
  out[o] = '\0';
}

typedef struct view {
  char name[2 * BREAKER_MSG_MAX];
  breaker_state st;
  breaker_metrics m;
  breaker_counters k;
} view;

static void sample(sbuf *s, const char *metric, const char *labels, double v) {
  char num[JAVANUM_MAX];
  javanum_double(v, num, sizeof num);
  sb_printf(s, "%s{%s} %s\n", metric, labels, num);
}

static void family(sbuf *s, const char *metric, const char *type, const char *help) {
  sb_printf(s, "# HELP %s %s\n# TYPE %s %s\n", metric, help, metric, type);
}

static const char *const kinds[3] = {"successful", "failed", "ignored"};

static void prom_calls(sbuf *s, const view *v, size_t n) {
  char l[BREAKER_MSG_MAX * 2 + 64];
  family(s, "resilience4j_circuitbreaker_calls_seconds", "summary", "Total number of calls");
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < 3; k++) {
      snprintf(l, sizeof l, "kind=\"%s\",name=\"%s\"", kinds[k], v[i].name);
      sample(s, "resilience4j_circuitbreaker_calls_seconds_count", l, (double)v[i].k.calls[k]);
      sample(s, "resilience4j_circuitbreaker_calls_seconds_sum", l, (double)v[i].k.sum_ns[k] / 1e9);
    }
  family(s, "resilience4j_circuitbreaker_calls_seconds_max", "gauge", "Total number of calls");
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < 3; k++) {
      snprintf(l, sizeof l, "kind=\"%s\",name=\"%s\"", kinds[k], v[i].name);
      sample(s, "resilience4j_circuitbreaker_calls_seconds_max", l, (double)v[i].k.max_ns[k] / 1e9);
    }
}

static void prom_gauges(sbuf *s, const view *v, size_t n) {
  char l[BREAKER_MSG_MAX * 2 + 64];
  static const char *const st_lower[BREAKER_STATE_COUNT] = {"closed",   "open",        "half_open",
                                                            "disabled", "forced_open", "metrics_only"};
  family(s, "resilience4j_circuitbreaker_state", "gauge", "The states of the circuit breaker");
  for (size_t i = 0; i < n; i++)
    for (int st = 0; st < BREAKER_STATE_COUNT; st++) {
      snprintf(l, sizeof l, "name=\"%s\",state=\"%s\"", v[i].name, st_lower[st]);
      sample(s, "resilience4j_circuitbreaker_state", l, v[i].st == (breaker_state)st ? 1.0 : 0.0);
    }
  family(s, "resilience4j_circuitbreaker_buffered_calls", "gauge",
         "The number of buffered calls stored in the ring buffer");
  for (size_t i = 0; i < n; i++) {
    snprintf(l, sizeof l, "kind=\"failed\",name=\"%s\"", v[i].name);
    sample(s, "resilience4j_circuitbreaker_buffered_calls", l, v[i].m.failed);
    snprintf(l, sizeof l, "kind=\"successful\",name=\"%s\"", v[i].name);
    sample(s, "resilience4j_circuitbreaker_buffered_calls", l, v[i].m.successful);
  }
  family(s, "resilience4j_circuitbreaker_slow_calls", "gauge",
         "The number of slow calls which were slower than a certain threshold");
  for (size_t i = 0; i < n; i++) {
    snprintf(l, sizeof l, "kind=\"successful\",name=\"%s\"", v[i].name);
    sample(s, "resilience4j_circuitbreaker_slow_calls", l, v[i].m.slow_successful);
    snprintf(l, sizeof l, "kind=\"failed\",name=\"%s\"", v[i].name);
    sample(s, "resilience4j_circuitbreaker_slow_calls", l, v[i].m.slow_failed);
  }
  family(s, "resilience4j_circuitbreaker_failure_rate", "gauge", "The failure rate of the circuit breaker");
  for (size_t i = 0; i < n; i++) {
    snprintf(l, sizeof l, "name=\"%s\"", v[i].name);
    sample(s, "resilience4j_circuitbreaker_failure_rate", l, v[i].m.failure_rate);
  }
  family(s, "resilience4j_circuitbreaker_slow_call_rate", "gauge", "The slow call of the circuit breaker");
  for (size_t i = 0; i < n; i++) {
    snprintf(l, sizeof l, "name=\"%s\"", v[i].name);
    sample(s, "resilience4j_circuitbreaker_slow_call_rate", l, v[i].m.slow_call_rate);
  }
  family(s, "resilience4j_circuitbreaker_not_permitted_calls_total", "counter", "Total number of not permitted calls");
  for (size_t i = 0; i < n; i++) {
    snprintf(l, sizeof l, "kind=\"not_permitted\",name=\"%s\"", v[i].name);
    sample(s, "resilience4j_circuitbreaker_not_permitted_calls_total", l, (double)v[i].k.not_permitted);
  }
}

char *breakerview_prometheus(breaker_registry *r) {
  size_t n = breaker_registry_count(r);
  view *v = calloc(n ? n : 1, sizeof *v);
  if (!v) return NULL;
  for (size_t i = 0; i < n; i++) {
    breaker *b = breaker_registry_at(r, i);
    if (!b) {
      n = i;
      break;
    }
    escape_label(breaker_name(b), v[i].name, sizeof v[i].name);
    breaker_get_snapshot(b, &v[i].st, &v[i].m);
    breaker_get_counters(b, &v[i].k);
  }
  sbuf s = {0};
  sb_printf(&s, "%s", "");
  prom_calls(&s, v, n);
  prom_gauges(&s, v, n);
  free(v);
  if (s.failed) {
    free(s.p);
    return NULL;
  }
  return s.p;
}
