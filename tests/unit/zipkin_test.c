/* lib/zipkin: the JSON v2 encoding, batching to a loopback collector, and the drops (a
 * full queue, a collector that fails or is not there) counted without ever blocking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "zipkin/zipkin.h"

/* ---- a loopback collector: records each POST's path and body, answers `status` ---- */
typedef struct {
  int fd;
  unsigned port;
  pthread_t th;
  atomic_bool stop;
  atomic_int status;
  atomic_int posts;
  atomic_int spans; /* spans received in all bodies */
  pthread_mutex_t mu;
  char last_body[65536];
  char last_head[4096];
} collector;

static void *serve(void *ud) {
  collector *c = ud;
  while (!atomic_load(&c->stop)) {
    int s = accept(c->fd, NULL, NULL);
    if (s < 0) continue;
    static char req[1 << 20];
    size_t len = 0;
    ssize_t got;
    char *end = NULL;
    size_t want = 0;
    while (len < sizeof req - 1 && (got = read(s, req + len, sizeof req - 1 - len)) > 0) {
      len += (size_t)got;
      req[len] = '\0';
      end = strstr(req, "\r\n\r\n");
      if (!end) continue;
      const char *cl = strcasestr(req, "Content-Length:");
      want = cl ? (size_t)atol(cl + 15) : 0;
      if (len >= (size_t)(end + 4 - req) + want) break;
    }
    if (end) {
      json_t *a = json_loadb(end + 4, want, 0, NULL);
      pthread_mutex_lock(&c->mu);
      snprintf(c->last_head, sizeof c->last_head, "%.*s", (int)(end - req), req);
      snprintf(c->last_body, sizeof c->last_body, "%.*s", (int)want, end + 4);
      pthread_mutex_unlock(&c->mu);
      int st = atomic_load(&c->status);
      if (st / 100 == 2 && a) atomic_fetch_add(&c->spans, (int)json_array_size(a));
      json_decref(a);
      atomic_fetch_add(&c->posts, 1);
      char out[256];
      int n = snprintf(out, sizeof out, "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", st);
      if (write(s, out, (size_t)n) < 0) {}
    }
    close(s);
  }
  return NULL;
}

static void collector_start(collector *c, int status) {
  memset(c, 0, sizeof *c);
  atomic_store(&c->status, status);
  pthread_mutex_init(&c->mu, NULL);
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(c->fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(c->fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(c->fd, 16), 0);
  socklen_t al = sizeof a;
  getsockname(c->fd, (struct sockaddr *)&a, &al);
  c->port = ntohs(a.sin_port);
  assert_int_equal(pthread_create(&c->th, NULL, serve, c), 0);
}

static void collector_stop(collector *c) {
  atomic_store(&c->stop, true);
  shutdown(c->fd, SHUT_RDWR);
  pthread_join(c->th, NULL);
  close(c->fd);
  pthread_mutex_destroy(&c->mu);
}

/* a port nothing listens on: bound, never listening, closed */
static unsigned dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(fd, (struct sockaddr *)&a, sizeof a);
  socklen_t al = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &al);
  close(fd);
  return ntohs(a.sin_port);
}

static void span_for(trace_span *s, const trace_ctx *parent, const char *name, trace_kind kind) {
  trace_tracer *t = trace_tracer_new("x", 1.0, NULL, NULL);
  trace_span_start(t, s, parent, name, kind);
  trace_span_end(t, s);
  trace_tracer_free(t);
}

static void wait_for(atomic_int *v, int want) {
  for (int i = 0; i < 500 && atomic_load(v) < want; i++) usleep(10000);
}

static void encode_fields(void **state) {
  (void)state;
  trace_ctx in;
  assert_int_equal(trace_parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &in), 0);
  trace_span s[3];
  span_for(&s[0], &in, "GET /resources/{id}", TRACE_KIND_SERVER);
  trace_span_tag(&s[0], "http.method", "GET");
  trace_span_tag(&s[0], "bad", "\xff\xfe"); /* not UTF-8: left out */
  trace_span_fail(&s[0], "boom \"quoted\"");
  span_for(&s[1], NULL, "publish", TRACE_KIND_PRODUCER);
  trace_span_remote(&s[1], "rabbitmq", "::1", 5672);
  span_for(&s[2], NULL, "x", TRACE_KIND_CLIENT);
  s[2].valid = false; /* left out */
  char *body = zipkin_encode("resource", s, 3);
  assert_non_null(body);
  json_t *a = json_loads(body, 0, NULL);
  assert_non_null(a);
  assert_int_equal(json_array_size(a), 2);
  json_t *o = json_array_get(a, 0);
  assert_string_equal(json_string_value(json_object_get(o, "traceId")), "4bf92f3577b34da6a3ce929d0e0e4736");
  assert_string_equal(json_string_value(json_object_get(o, "parentId")), "00f067aa0ba902b7");
  assert_int_equal(strlen(json_string_value(json_object_get(o, "id"))), 16);
  assert_string_equal(json_string_value(json_object_get(o, "kind")), "SERVER");
  assert_string_equal(json_string_value(json_object_get(o, "name")), "GET /resources/{id}");
  assert_true(json_integer_value(json_object_get(o, "timestamp")) > 1700000000LL * 1000000);
  assert_true(json_integer_value(json_object_get(o, "duration")) >= 1);
  assert_string_equal(json_string_value(json_object_get(json_object_get(o, "localEndpoint"), "serviceName")),
                      "resource");
  json_t *tags = json_object_get(o, "tags");
  assert_string_equal(json_string_value(json_object_get(tags, "http.method")), "GET");
  assert_string_equal(json_string_value(json_object_get(tags, "error")), "boom \"quoted\"");
  assert_null(json_object_get(tags, "bad"));
  assert_null(json_object_get(o, "remoteEndpoint"));
  o = json_array_get(a, 1);
  assert_null(json_object_get(o, "parentId"));
  assert_string_equal(json_string_value(json_object_get(o, "kind")), "PRODUCER");
  json_t *re = json_object_get(o, "remoteEndpoint");
  assert_string_equal(json_string_value(json_object_get(re, "serviceName")), "rabbitmq");
  assert_string_equal(json_string_value(json_object_get(re, "ipv6")), "::1");
  assert_int_equal(json_integer_value(json_object_get(re, "port")), 5672);
  assert_null(json_object_get(o, "tags"));
  json_decref(a);
  free(body);
  body = zipkin_encode("resource", NULL, 0);
  assert_string_equal(body, "[]");
  free(body);
}

static void exports_in_batches(void **state) {
  (void)state;
  collector c;
  collector_start(&c, 202);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/api/v2/spans", c.port);
  zipkin *z = zipkin_new(&(zipkin_opts){.endpoint = url, .service = "song", .batch_max = 4, .flush_ms = 50});
  assert_non_null(z);
  assert_int_equal(zipkin_start(z), ZIPKIN_OK);
  trace_tracer *t = trace_tracer_new("song", 1.0, zipkin_submit, z);
  for (int i = 0; i < 10; i++) {
    trace_span s;
    trace_span_start(t, &s, NULL, "GET /songs/{id}", TRACE_KIND_SERVER);
    trace_span_end(t, &s);
  }
  wait_for(&c.spans, 10);
  assert_int_equal(atomic_load(&c.spans), 10);
  assert_true(atomic_load(&c.posts) >= 3); /* batches of at most 4 */
  pthread_mutex_lock(&c.mu);
  assert_non_null(strstr(c.last_head, "POST /api/v2/spans HTTP/1.1"));
  assert_non_null(strcasestr(c.last_head, "Content-Type: application/json"));
  assert_non_null(strstr(c.last_body, "\"serviceName\":\"song\""));
  pthread_mutex_unlock(&c.mu);
  zipkin_counts n;
  for (int i = 0; i < 100; i++) {
    zipkin_counts_get(z, &n);
    if (n.exported == 10) break;
    usleep(10000);
  }
  assert_int_equal(n.exported, 10);
  assert_int_equal(n.dropped_queue_full + n.dropped_export_failed, 0);
  char *text = zipkin_prometheus(z);
  assert_non_null(strstr(text, "fermata_tracing_spans_exported_total 10\n"));
  assert_non_null(strstr(text, "fermata_tracing_spans_dropped_total{reason=\"queue_full\"} 0\n"));
  free(text);
  /* what is queued at the end is sent by zipkin_free */
  zipkin *late = zipkin_new(&(zipkin_opts){.endpoint = url, .service = "song", .flush_ms = 60000});
  trace_tracer *t2 = trace_tracer_new("song", 1.0, zipkin_submit, late);
  assert_int_equal(zipkin_start(late), ZIPKIN_OK);
  trace_span s;
  trace_span_start(t2, &s, NULL, "last", TRACE_KIND_SERVER);
  trace_span_end(t2, &s);
  zipkin_free(late);
  wait_for(&c.spans, 11);
  assert_int_equal(atomic_load(&c.spans), 11);
  trace_tracer_free(t2);
  trace_tracer_free(t);
  zipkin_free(z);
  collector_stop(&c);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void drops_when_down_or_full(void **state) {
  (void)state;
  /* nothing listens: every batch fails, is counted, and submitting stays instant */
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/api/v2/spans", dead_port());
  zipkin *z = zipkin_new(&(zipkin_opts){.endpoint = url, .service = "song", .batch_max = 8, .flush_ms = 20});
  assert_int_equal(zipkin_start(z), ZIPKIN_OK);
  trace_tracer *t = trace_tracer_new("song", 1.0, zipkin_submit, z);
  double t0 = now_s();
  for (int i = 0; i < 1000; i++) {
    trace_span s;
    trace_span_start(t, &s, NULL, "GET", TRACE_KIND_SERVER);
    trace_span_end(t, &s);
  }
  assert_true(now_s() - t0 < 2.0); /* ASan included; a blocking export would take 1000 connects */
  zipkin_counts n;
  for (int i = 0; i < 300; i++) {
    zipkin_counts_get(z, &n);
    if (n.dropped_export_failed + n.dropped_queue_full == 1000) break;
    usleep(10000);
  }
  assert_int_equal(n.exported, 0);
  assert_int_equal(n.dropped_export_failed + n.dropped_queue_full, 1000);
  assert_true(n.dropped_export_failed > 0);
  trace_tracer_free(t);
  zipkin_free(z);

  /* a collector answering 500: failed, not exported */
  collector c;
  collector_start(&c, 500);
  snprintf(url, sizeof url, "http://127.0.0.1:%u/api/v2/spans", c.port);
  z = zipkin_new(&(zipkin_opts){.endpoint = url, .service = "song", .flush_ms = 20});
  assert_int_equal(zipkin_start(z), ZIPKIN_OK);
  trace_span s;
  span_for(&s, NULL, "x", TRACE_KIND_SERVER);
  zipkin_submit(z, &s);
  wait_for(&c.posts, 1);
  for (int i = 0; i < 100; i++) {
    zipkin_counts_get(z, &n);
    if (n.dropped_export_failed == 1) break;
    usleep(10000);
  }
  assert_int_equal(n.dropped_export_failed, 1);
  assert_int_equal(n.exported, 0);
  zipkin_free(z);
  collector_stop(&c);

  /* a full queue (the thread not started): the rest is dropped at once */
  z = zipkin_new(&(zipkin_opts){.endpoint = url, .service = "song", .queue_cap = 4});
  for (int i = 0; i < 10; i++) zipkin_submit(z, &s);
  zipkin_counts_get(z, &n);
  assert_int_equal(n.dropped_queue_full, 6);
  char *text = zipkin_prometheus(z);
  assert_non_null(strstr(text, "fermata_tracing_spans_dropped_total{reason=\"queue_full\"} 6\n"));
  free(text);
  zipkin_free(z); /* the last attempt fails (collector gone): counted */
  /* invalid spans are ignored, NULL frees nothing */
  zipkin_free(NULL);
  assert_null(zipkin_new(&(zipkin_opts){.endpoint = ""}));
  assert_null(zipkin_new(&(zipkin_opts){.endpoint = NULL}));
  assert_null(zipkin_new(NULL));
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(encode_fields),
      cmocka_unit_test(exports_in_batches),
      cmocka_unit_test(drops_when_down_or_full),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
