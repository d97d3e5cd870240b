/*
 * zipkin: see zipkin.h. One ring of fixed-size spans (copied in by the request threads,
 * out by the exporter thread), one libcurl easy handle owned by the exporter thread (kept
 * between batches, so the connection to the collector is reused), counters as atomics.
 */
#include "zipkin.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/worker.h"

struct zipkin {
  char *endpoint, *service;
  size_t cap, batch_max;
  uint32_t flush_ms;
  long timeout_ms;
  pthread_mutex_t mu;
  trace_span *ring; /* cap slots; head is the oldest, n are used */
  size_t head, n;
  trace_span *batch; /* batch_max slots, the exporter's own */
  worker *w;
  CURL *curl;
  atomic_uint_fast64_t exported, dropped_full, dropped_failed;
};

static const char *kind_name(trace_kind k) {
  switch (k) {
  case TRACE_KIND_CLIENT: return "CLIENT";
  case TRACE_KIND_PRODUCER: return "PRODUCER";
  case TRACE_KIND_CONSUMER: return "CONSUMER";
  case TRACE_KIND_INTERNAL: return NULL;
  default: return "SERVER";
  }
}

static json_t *encode_one(const char *service, const trace_span *s) {
  char tid[TRACE_ID_HEX], sid[TRACE_SPAN_ID_HEX], pid[TRACE_SPAN_ID_HEX];
  trace_hex(s->trace_id, 16, tid);
  trace_hex(s->span_id, 8, sid);
  json_t *o = json_object();
  if (!o) return NULL;
  int rc = 0;
  rc |= json_object_set_new(o, "traceId", json_string(tid));
  rc |= json_object_set_new(o, "id", json_string(sid));
  if (s->has_parent) {
    trace_hex(s->parent_id, 8, pid);
    rc |= json_object_set_new(o, "parentId", json_string(pid));
  }
  if (kind_name(s->kind)) rc |= json_object_set_new(o, "kind", json_string(kind_name(s->kind)));
  if (s->name[0]) rc |= json_object_set_new(o, "name", json_stringn(s->name, strlen(s->name)));
  rc |= json_object_set_new(o, "timestamp", json_integer(s->start_us));
  rc |= json_object_set_new(o, "duration", json_integer(s->duration_us > 0 ? s->duration_us : 1));
  rc |= json_object_set_new(o, "localEndpoint", json_pack("{s:s}", "serviceName", service));
  if (s->remote_service[0] || s->remote_ip[0] || s->remote_port) {
    json_t *re = json_object();
    if (s->remote_service[0]) rc |= json_object_set_new(re, "serviceName", json_string(s->remote_service));
    if (s->remote_ip[0])
      rc |= json_object_set_new(re, strchr(s->remote_ip, ':') ? "ipv6" : "ipv4", json_string(s->remote_ip));
    if (s->remote_port) rc |= json_object_set_new(re, "port", json_integer(s->remote_port));
    rc |= json_object_set_new(o, "remoteEndpoint", re);
  }
  if (s->ntags) {
    json_t *tags = json_object();
    /* json_string refuses invalid UTF-8: such a value (cut mid-character, or binary) is
     * left out rather than failing the span */
    for (size_t i = 0; i < s->ntags && i < TRACE_TAGS_MAX; i++) {
      json_t *v = json_string(s->tags[i].value);
      if (v && json_object_set_new(tags, s->tags[i].key, v) != 0) rc = -1;
    }
    rc |= json_object_set_new(o, "tags", tags);
  }
  if (rc != 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

char *zipkin_encode(const char *service, const trace_span *spans, size_t n) {
  json_t *a = json_array();
  if (!a) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (!spans[i].valid) continue;
    json_t *o = encode_one(service ? service : "", &spans[i]);
    if (!o || json_array_append_new(a, o) != 0) {
      json_decref(a);
      return NULL;
    }
  }
  char *out = json_dumps(a, JSON_COMPACT);
  json_decref(a);
  return out;
}

void zipkin_submit(void *ud, const trace_span *s) {
  zipkin *z = ud;
  if (!z || !s->valid) return;
  pthread_mutex_lock(&z->mu);
  bool full = z->n >= z->cap;
  if (!full) {
    z->ring[(z->head + z->n) % z->cap] = *s;
    z->n++;
  }
  bool kick = z->n == z->batch_max;
  pthread_mutex_unlock(&z->mu);
  if (full) atomic_fetch_add(&z->dropped_full, 1);
  if (kick) worker_kick(z->w);
}

static size_t discard(char *p, size_t size, size_t n, void *ud) {
  (void)p, (void)ud;
  return size * n;
}

/* POSTs body; true when the collector answered 2xx. */
static bool post(zipkin *z, const char *body) {
  if (!z->curl) z->curl = curl_easy_init();
  if (!z->curl) return false;
  CURL *c = z->curl;
  curl_easy_reset(c);
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  if (!h) return false;
  curl_easy_setopt(c, CURLOPT_URL, z->endpoint);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, z->timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, z->timeout_ms < 1000 ? z->timeout_ms : 1000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  return rc == CURLE_OK && status >= 200 && status < 300;
}

/* One batch: taken from the ring, encoded, posted. Returns the number taken and whether
 * it reached the collector. */
static size_t send_batch(zipkin *z, bool *ok) {
  pthread_mutex_lock(&z->mu);
  size_t k = z->n < z->batch_max ? z->n : z->batch_max;
  for (size_t i = 0; i < k; i++) z->batch[i] = z->ring[(z->head + i) % z->cap];
  z->head = (z->head + k) % z->cap;
  z->n -= k;
  pthread_mutex_unlock(&z->mu);
  *ok = true;
  if (k == 0) return 0;
  char *body = zipkin_encode(z->service, z->batch, k);
  *ok = body && post(z, body);
  free(body);
  atomic_fetch_add(*ok ? &z->exported : &z->dropped_failed, k);
  return k;
}

static uint32_t step(void *ud) {
  zipkin *z = ud;
  bool ok;
  size_t k = send_batch(z, &ok);
  if (!ok) return z->flush_ms; /* the collector is away: try again next interval */
  if (k == z->batch_max) {
    pthread_mutex_lock(&z->mu);
    bool more = z->n >= z->batch_max;
    pthread_mutex_unlock(&z->mu);
    if (more) return 0;
  }
  return z->flush_ms;
}

zipkin *zipkin_new(const zipkin_opts *o) {
  if (!o || !o->endpoint || !o->endpoint[0]) return NULL;
  zipkin *z = calloc(1, sizeof *z);
  if (!z) return NULL;
  z->cap = o->queue_cap ? o->queue_cap : 2048;
  z->batch_max = o->batch_max ? o->batch_max : 256;
  if (z->batch_max > z->cap) z->batch_max = z->cap;
  z->flush_ms = o->flush_ms ? o->flush_ms : 1000;
  z->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 2000;
  z->endpoint = strdup(o->endpoint);
  z->service = strdup(o->service ? o->service : "");
  /* calloc: pages of the ring are touched only as spans arrive */
  z->ring = calloc(z->cap, sizeof *z->ring);
  z->batch = calloc(z->batch_max, sizeof *z->batch);
  z->w = worker_new(step, z);
  if (!z->endpoint || !z->service || !z->ring || !z->batch || !z->w || pthread_mutex_init(&z->mu, NULL) != 0) {
    worker_free(z->w);
    free(z->batch);
    free(z->ring);
    free(z->service);
    free(z->endpoint);
    free(z);
    return NULL;
  }
  return z;
}

int zipkin_start(zipkin *z) { return worker_start(z->w, z->flush_ms) == WORKER_OK ? ZIPKIN_OK : ZIPKIN_ERR_THREAD; }

void zipkin_counts_get(const zipkin *z, zipkin_counts *out) {
  zipkin *m = (zipkin *)z; /* atomics are read, not changed */
  out->exported = atomic_load(&m->exported);
  out->dropped_queue_full = atomic_load(&m->dropped_full);
  out->dropped_export_failed = atomic_load(&m->dropped_failed);
}

char *zipkin_prometheus(const zipkin *z) {
  zipkin_counts c;
  zipkin_counts_get(z, &c);
  char *out = NULL;
  if (asprintf(&out,
               "# HELP fermata_tracing_spans_exported_total Spans the Zipkin collector accepted\n"
               "# TYPE fermata_tracing_spans_exported_total counter\n"
               "fermata_tracing_spans_exported_total %llu\n"
               "# HELP fermata_tracing_spans_dropped_total Spans dropped: export queue full, or the collector failed\n"
               "# TYPE fermata_tracing_spans_dropped_total counter\n"
               "fermata_tracing_spans_dropped_total{reason=\"queue_full\"} %llu\n"
               "fermata_tracing_spans_dropped_total{reason=\"export_failed\"} %llu\n",
               (unsigned long long)c.exported, (unsigned long long)c.dropped_queue_full,
               (unsigned long long)c.dropped_export_failed) < 0)
    return NULL;
  return out;
}

void zipkin_free(zipkin *z) {
  if (!z) return;
  worker_free(z->w); /* stops and joins: the ring and the handle are ours alone now */
  bool ok = true;
  while (ok && send_batch(z, &ok) > 0) {}
  if (z->curl) curl_easy_cleanup(z->curl);
  pthread_mutex_destroy(&z->mu);
  free(z->batch);
  free(z->ring);
  free(z->service);
  free(z->endpoint);
  free(z);
}
