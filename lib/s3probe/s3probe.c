/* s3probe: see s3probe.h. One mutex serialises probes and guards the cached result; a
 * probe is a handful of loopback requests with short timeouts, so holding the mutex across
 * it is what makes concurrent health requests share one probe. */
#include "s3probe.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct s3probe {
  s3_client *s3;
  char *bucket;
  char key[160];
  long interval_ms;
  int64_t (*now_ms)(void *);
  void *now_ud;
  pthread_mutex_t mu;
  bool have;     /* a result is cached */
  int64_t at_ms; /* when it was taken */
  s3probe_result last;
};

static int64_t mono_ms(void *ud) {
  (void)ud;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

s3probe *s3probe_new(const s3probe_opts *o) {
  if (o == NULL || o->bucket == NULL || o->instance == NULL) return NULL;
  s3probe *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  s3_config c = o->s3;
  long t = o->timeout_ms > 0 ? o->timeout_ms : S3PROBE_DEFAULT_TIMEOUT_MS;
  c.connect_timeout_ms = t;
  c.timeout_ms = t;
  c.max_idle_handles = 1;
  int n = snprintf(p->key, sizeof p->key, "fermata-health/%s", o->instance);
  p->bucket = strdup(o->bucket);
  p->interval_ms = o->interval_ms > 0 ? o->interval_ms : 2000;
  p->now_ms = o->now_ms ? o->now_ms : mono_ms;
  p->now_ud = o->now_ud;
  if (n < 0 || (size_t)n >= sizeof p->key || !s3_valid_key(p->key) || p->bucket == NULL ||
      s3_new(&c, &p->s3) != S3_OK) {
    free(p->bucket);
    free(p);
    return NULL;
  }
  pthread_mutex_init(&p->mu, NULL);
  return p;
}

void s3probe_free(s3probe *p) {
  if (p == NULL) return;
  pthread_mutex_destroy(&p->mu);
  s3_free(p->s3);
  free(p->bucket);
  free(p);
}

static void fail(s3probe_result *r, const char *reason, const s3_error *e) {
  r->up = false;
  r->reason = reason;
  r->http_status = e->http_status;
  snprintf(r->s3_code, sizeof r->s3_code, "%s", e->s3_code);
}

static void probe(s3probe *p, s3probe_result *r) {
  memset(r, 0, sizeof *r);
  r->reason = "";
  s3_object_info info;
  memset(&info, 0, sizeof info);
  s3_error e;
  memset(&e, 0, sizeof e);
  bool exists = false;
  int rc = s3_bucket_info(p->s3, p->bucket, &exists, &info, &e);
  r->kind = s3_store_kind(info.server);
  if (rc != S3_OK) {
    fail(r,
         rc == S3_ERR_UNAVAILABLE ? "object store unreachable"
         : rc == S3_ERR_DENIED    ? "object store denies access"
                                  : "object store answers wrongly",
         &e);
    return;
  }
  if (!exists) {
    fail(r, "bucket missing", &e);
    return;
  }
  rc = s3_put(p->s3, p->bucket, p->key, "1", 1, "text/plain", &e);
  if (rc == S3_OK) rc = s3_delete(p->s3, p->bucket, p->key, &e);
  if (rc != S3_OK) {
    fail(r,
         rc == S3_ERR_NOT_FOUND  ? "bucket missing"
         : rc == S3_ERR_NO_SPACE ? "object store is out of space"
                                 : "object store refuses writes",
         &e);
    return;
  }
  r->up = true;
}

void s3probe_check(s3probe *p, s3probe_result *out) {
  pthread_mutex_lock(&p->mu);
  int64_t now = p->now_ms(p->now_ud);
  if (!p->have || now - p->at_ms >= p->interval_ms) {
    probe(p, &p->last);
    p->have = true;
    p->at_ms = p->now_ms(p->now_ud);
  }
  *out = p->last;
  pthread_mutex_unlock(&p->mu);
}
