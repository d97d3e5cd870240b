/* Unit tests of lib/s3probe against a scripted HTTP server in a thread of this process:
 * each question of the probe and its reason, the store kind from the Server header, the
 * cache (one probe per interval, on an injected clock), and an unreachable store. The real
 * store's behaviour (a bucket directory made unwritable) is in tests/system. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "s3probe/s3probe.h"

/* ---- a scripted server: answers HEAD, PUT and DELETE with the configured statuses ---- */
typedef struct fake {
  int fd;
  unsigned port;
  pthread_t th;
  int head_status, put_status, delete_status;
  atomic_int requests;
  atomic_bool stop;
} fake;

static void answer(int c, int status, const char *method) {
  char body[256] = "";
  if (status >= 400 && strcmp(method, "HEAD") != 0)
    snprintf(body, sizeof body, "<Error><Code>%s</Code><Message>m</Message></Error>",
             status == 404   ? "NoSuchBucket"
             : status == 507 ? "InsufficientStorage"
                             : "InternalError");
  char out[512];
  int n = snprintf(out, sizeof out,
                   "HTTP/1.1 %d X\r\nServer: VERSITYGW\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n%s",
                   status, strlen(body), strcmp(method, "HEAD") == 0 ? "" : body);
  if (write(c, out, (size_t)n) < 0) return;
}

static void *serve(void *ud) {
  fake *f = ud;
  while (!atomic_load(&f->stop)) {
    int c = accept(f->fd, NULL, NULL);
    if (c < 0) continue;
    char req[4096];
    size_t len = 0;
    ssize_t got;
    bool continued = false;
    /* read the head, then as many body bytes as Content-Length says */
    while (len < sizeof req - 1 && (got = read(c, req + len, sizeof req - 1 - len)) > 0) {
      len += (size_t)got;
      req[len] = '\0';
      char *end = strstr(req, "\r\n\r\n");
      if (end == NULL) continue;
      if (!continued && strcasestr(req, "Expect: 100-continue")) { /* curl waits for it */
        continued = true;
        if (write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0) break;
      }
      const char *cl = strcasestr(req, "Content-Length:");
      size_t want = cl ? (size_t)atol(cl + 15) : 0;
      if (len >= (size_t)(end + 4 - req) + want) break;
    }
    if (len > 0) {
      atomic_fetch_add(&f->requests, 1);
      char method[8] = "";
      sscanf(req, "%7s", method);
      int st = strcmp(method, "HEAD") == 0  ? f->head_status
               : strcmp(method, "PUT") == 0 ? f->put_status
                                            : f->delete_status;
      answer(c, st, method);
    }
    close(c);
  }
  return NULL;
}

static void fake_start(fake *f, int head, int put, int del) {
  memset(f, 0, sizeof *f);
  f->head_status = head;
  f->put_status = put;
  f->delete_status = del;
  f->fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(f->fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(f->fd, 16), 0);
  socklen_t al = sizeof a;
  getsockname(f->fd, (struct sockaddr *)&a, &al);
  f->port = ntohs(a.sin_port);
  assert_int_equal(pthread_create(&f->th, NULL, serve, f), 0);
}

static void fake_stop(fake *f) {
  atomic_store(&f->stop, true);
  shutdown(f->fd, SHUT_RDWR); /* wakes accept() */
  pthread_join(f->th, NULL);
  close(f->fd);
}

static int64_t test_now;
static int64_t clock_ms(void *ud) {
  (void)ud;
  return test_now;
}

static s3probe *probe_for(unsigned port, char *endpoint, size_t cap) {
  snprintf(endpoint, cap, "http://127.0.0.1:%u", port);
  s3probe_opts o = {.s3 = {.endpoint = endpoint, .region = "us-east-1", .access_key = "k", .secret_key = "s"},
                    .bucket = "fermata-staging",
                    .instance = "unit-1",
                    .interval_ms = 1000,
                    .timeout_ms = 1000,
                    .now_ms = clock_ms};
  s3probe *p = s3probe_new(&o);
  assert_non_null(p);
  return p;
}

static void test_up_and_kind(void **state) {
  (void)state;
  fake f;
  fake_start(&f, 200, 200, 204);
  char ep[64];
  s3probe *p = probe_for(f.port, ep, sizeof ep);
  s3probe_result r;
  s3probe_check(p, &r);
  if (!r.up) print_message("probe: %s http=%ld code=%s\n", r.reason, r.http_status, r.s3_code);
  assert_true(r.up);
  assert_string_equal(r.reason, "");
  assert_string_equal(r.kind, "versitygw");
  assert_int_equal(atomic_load(&f.requests), 3); /* HEAD, PUT, DELETE */
  s3probe_free(p);
  fake_stop(&f);
}

static void test_cached_for_the_interval(void **state) {
  (void)state;
  fake f;
  fake_start(&f, 200, 200, 204);
  char ep[64];
  test_now = 10000;
  s3probe *p = probe_for(f.port, ep, sizeof ep);
  s3probe_result r;
  s3probe_check(p, &r);
  test_now += 999;
  s3probe_check(p, &r);
  s3probe_check(p, &r);
  assert_int_equal(atomic_load(&f.requests), 3); /* one probe */
  test_now += 1;
  s3probe_check(p, &r);
  assert_int_equal(atomic_load(&f.requests), 6); /* the interval passed: a second one */
  assert_true(r.up);
  s3probe_free(p);
  fake_stop(&f);
}

static void test_bucket_missing(void **state) {
  (void)state;
  fake f;
  fake_start(&f, 404, 200, 204);
  char ep[64];
  s3probe *p = probe_for(f.port, ep, sizeof ep);
  s3probe_result r;
  test_now += 100000;
  s3probe_check(p, &r);
  assert_false(r.up);
  assert_string_equal(r.reason, "bucket missing");
  assert_int_equal(atomic_load(&f.requests), 1); /* no write attempted */
  s3probe_free(p);
  fake_stop(&f);
}

static void test_writes_refused(void **state) {
  (void)state;
  fake f;
  fake_start(&f, 200, 500, 204);
  char ep[64];
  s3probe *p = probe_for(f.port, ep, sizeof ep);
  s3probe_result r;
  test_now += 100000;
  s3probe_check(p, &r);
  assert_false(r.up);
  assert_string_equal(r.reason, "object store refuses writes");
  assert_int_equal(r.http_status, 500);
  assert_string_equal(r.s3_code, "InternalError");
  assert_string_equal(r.kind, "versitygw");
  s3probe_free(p);
  fake_stop(&f);
}

static void test_out_of_space(void **state) {
  (void)state;
  fake f;
  fake_start(&f, 200, 507, 204);
  char ep[64];
  s3probe *p = probe_for(f.port, ep, sizeof ep);
  s3probe_result r;
  test_now += 100000;
  s3probe_check(p, &r);
  assert_false(r.up);
  assert_string_equal(r.reason, "object store is out of space");
  assert_string_equal(r.s3_code, "InsufficientStorage");
  s3probe_free(p);
  fake_stop(&f);
}

static void test_delete_refused(void **state) {
  (void)state;
  fake f;
  fake_start(&f, 200, 200, 403);
  char ep[64];
  s3probe *p = probe_for(f.port, ep, sizeof ep);
  s3probe_result r;
  test_now += 100000;
  s3probe_check(p, &r);
  assert_false(r.up);
  assert_string_equal(r.reason, "object store refuses writes");
  assert_int_equal(r.http_status, 403);
  s3probe_free(p);
  fake_stop(&f);
}

static void test_unreachable(void **state) {
  (void)state;
  /* a port nobody listens on: bind one, close it, use its number */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t al = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &al);
  close(fd);
  char ep[64];
  s3probe *p = probe_for(ntohs(a.sin_port), ep, sizeof ep);
  s3probe_result r;
  test_now += 100000;
  s3probe_check(p, &r);
  assert_false(r.up);
  assert_string_equal(r.reason, "object store unreachable");
  assert_int_equal(r.http_status, 0);
  assert_string_equal(r.kind, "s3-compatible");
  s3probe_free(p);
}

static void test_bad_options(void **state) {
  (void)state;
  assert_null(s3probe_new(NULL));
  s3probe_opts o = {
      .s3 = {.endpoint = "http://127.0.0.1:1", .region = "us-east-1", .access_key = "k", .secret_key = "s"},
      .bucket = "b",
      .instance = NULL};
  assert_null(s3probe_new(&o));
  o.instance = "has space"; /* not a URL-safe key */
  assert_null(s3probe_new(&o));
  o.instance = "ok";
  o.s3.endpoint = "ftp://x";
  assert_null(s3probe_new(&o));
  s3probe_free(NULL);
}

static void test_store_kind(void **state) {
  (void)state;
  assert_string_equal(s3_store_kind("VERSITYGW"), "versitygw");
  assert_string_equal(s3_store_kind("AmazonS3"), "aws-s3");
  assert_string_equal(s3_store_kind("MinIO"), "minio");
  assert_string_equal(s3_store_kind("Werkzeug/3.0.1 Python/3.11.7"), "moto");
  assert_string_equal(s3_store_kind("nginx"), "s3-compatible");
  assert_string_equal(s3_store_kind(""), "s3-compatible");
  assert_string_equal(s3_store_kind(NULL), "s3-compatible");
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_up_and_kind),    cmocka_unit_test(test_cached_for_the_interval),
      cmocka_unit_test(test_bucket_missing), cmocka_unit_test(test_writes_refused),
      cmocka_unit_test(test_out_of_space),   cmocka_unit_test(test_delete_refused),
      cmocka_unit_test(test_unreachable),    cmocka_unit_test(test_bad_options),
      cmocka_unit_test(test_store_kind),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
