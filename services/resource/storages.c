/* storages: see storages.h. */
#include "storages.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct storages {
  storages_config cfg;
  char *url;
  httpc *http;
  breaker *b;
  log_sink *lg;
  pthread_mutex_t mu;
  storage_loc cache[STORAGES_MAX];
  int ncache; /* 0: nothing received yet */
};

storages *storages_new(const storages_config *cfg, httpc *http, breaker *b, log_sink *lg) {
  storages *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->cfg = *cfg;
  s->url = strdup(cfg->url);
  if (!s->url) {
    free(s);
    return NULL;
  }
  s->http = http;
  s->b = b;
  s->lg = lg;
  pthread_mutex_init(&s->mu, NULL);
  return s;
}

void storages_free(storages *s) {
  if (!s) return;
  pthread_mutex_destroy(&s->mu);
  free(s->url);
  free(s);
}

static int copy_str(char *dst, size_t cap, json_t *v) {
  const char *s = json_string_value(v);
  if (!s || strlen(s) >= cap) return -1;
  memcpy(dst, s, strlen(s) + 1);
  return 0;
}

int storages_parse(const char *body, size_t len, storage_loc *locs, int max) {
  json_t *arr = json_loadb(body, len, 0, NULL);
  if (!json_is_array(arr)) {
    json_decref(arr);
    return -1;
  }
  int n = 0;
  size_t i;
  json_t *it;
  json_array_foreach(arr, i, it) {
    if (n == max) break;
    storage_loc *l = &locs[n];
    json_t *id = json_object_get(it, "id");
    if (!json_is_integer(id) || copy_str(l->type, sizeof l->type, json_object_get(it, "storageType")) ||
        copy_str(l->bucket, sizeof l->bucket, json_object_get(it, "bucket")) ||
        copy_str(l->path, sizeof l->path, json_object_get(it, "path"))) {
      json_decref(arr);
      return -1;
    }
    l->id = json_integer_value(id);
    n++;
  }
  json_decref(arr);
  return n;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One call through the breaker. Returns the number of storages into locs, or -1 when the
 * fallback must answer. */
static int fetch_live(storages *s, const char *request_id, const trace_ctx *trace, storage_loc *locs) {
  if (!breaker_try_acquire(s->b)) return -1;
  char url[512];
  snprintf(url, sizeof url, "%s/storages", s->url);
  httpc_request req = {.method = "GET",
                       .url = url,
                       .request_id = request_id,
                       .timeout_ms = s->cfg.timeout_ms,
                       .trace = trace,
                       .peer = "storage"};
  httpc_response resp;
  int64_t t0 = now_ns();
  int rc = httpc_do(s->http, &req, &resp);
  int64_t dur = now_ns() - t0;
  int n = -1;
  if (rc == 0 && resp.status == 200) n = storages_parse(resp.body ? resp.body : "", resp.body_len, locs, STORAGES_MAX);
  char msg[BREAKER_MSG_MAX];
  if (httpc_is_failure(rc, resp.status) || (rc == 0 && resp.status == 200 && n < 0)) {
    if (rc != 0)
      snprintf(msg, sizeof msg, "%s", httpc_strerror(rc));
    else if (resp.status >= 500)
      snprintf(msg, sizeof msg, "HTTP %ld", resp.status);
    else
      snprintf(msg, sizeof msg, "malformed storage list");
    breaker_record_msg(s->b, BREAKER_FAILURE, dur, msg);
    /* a list too large to read is not an outage: say so loudly, it will not heal itself */
    char tf[TRACE_LOG_FIELD];
    log_event(
        s->lg, rc == HTTPC_ERR_TOO_LARGE ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN,
        "storage service call failed; using fallback", "error=\"%s\"%s request_id=%s%s", msg,
        rc == HTTPC_ERR_TOO_LARGE ? " hint=\"the storage list is over the response cap: lower STORAGE_MAX_COUNT\"" : "",
        request_id ? request_id : "-", trace_log_field(trace, tf));
    n = -1;
  } else {
    breaker_record(s->b, BREAKER_SUCCESS, dur);
    if (resp.status != 200) n = -1;
  }
  httpc_response_free(&resp);
  return n;
}

static const storage_loc *find(const storage_loc *locs, int n, const char *type) {
  for (int i = 0; i < n; i++)
    if (strcmp(locs[i].type, type) == 0) return &locs[i];
  return NULL;
}

static int pick(storages *s, const char *type, const char *request_id, const trace_ctx *trace, storage_loc *out,
                storages_source *source);

int storages_pick(storages *s, const char *type, const char *request_id, const trace_ctx *trace, storage_loc *out,
                  storages_source *source) {
  trace_span span;
  trace_span_start(trace && trace->valid ? s->cfg.tracer : NULL, &span, trace, "storage lookup", TRACE_KIND_INTERNAL);
  if (!span.valid) return pick(s, type, request_id, trace, out, source);
  trace_span_tag(&span, "breaker.name", breaker_name(s->b));
  trace_span_tag(&span, "breaker.state", breaker_state_name(breaker_get_state(s->b)));
  trace_span_tag(&span, "storage.type", type);
  trace_ctx inner;
  trace_span_ctx(&span, &inner);
  storages_source src = STORAGES_LIVE;
  int rc = pick(s, type, request_id, &inner, out, &src);
  static const char *const names[] = {"live", "cached", "stub"};
  if (rc == 0) {
    trace_span_tag(&span, "storage.source", names[src]);
    trace_span_tag(&span, "fallback", src == STORAGES_LIVE ? "false" : "true");
  } else {
    trace_span_tag(&span, "fallback", "true");
    trace_span_fail(&span, "no storage of this type");
  }
  trace_span_end(s->cfg.tracer, &span);
  if (source) *source = src;
  return rc;
}

static int pick(storages *s, const char *type, const char *request_id, const trace_ctx *trace, storage_loc *out,
                storages_source *source) {
  storage_loc live[STORAGES_MAX];
  int n = fetch_live(s, request_id, trace, live);
  if (n >= 0) {
    pthread_mutex_lock(&s->mu);
    memcpy(s->cache, live, sizeof(storage_loc) * (size_t)n);
    s->ncache = n;
    pthread_mutex_unlock(&s->mu);
    const storage_loc *l = find(live, n, type);
    if (l) {
      *out = *l;
      if (source) *source = STORAGES_LIVE;
      return 0;
    }
    /* the live list lacks this type: fall through to the stub, like a failed call */
  } else {
    pthread_mutex_lock(&s->mu);
    const storage_loc *l = find(s->cache, s->ncache, type);
    if (l) *out = *l;
    pthread_mutex_unlock(&s->mu);
    if (l) {
      if (source) *source = STORAGES_CACHED;
      return 0;
    }
  }
  const storage_loc *stub = strcmp(type, "STAGING") == 0     ? &s->cfg.stub_staging
                            : strcmp(type, "PERMANENT") == 0 ? &s->cfg.stub_permanent
                                                             : NULL;
  if (!stub || !stub->bucket[0]) return -1;
  *out = *stub;
  if (source) *source = STORAGES_STUB;
  return 0;
}
