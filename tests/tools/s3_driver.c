/* s3_driver: runs one lib/s3 operation from the command line, for the system tests.
 * Configuration comes from the environment exactly as a service reads it (S3_ENDPOINT,
 * S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; optional S3_CONNECT_TIMEOUT_MS,
 * S3_TIMEOUT_MS, and S3_CHECKSUM = crc32c | sha256 | none for streamed bodies). Prints one JSON line with the outcome; exits 0 on success, 1 on an S3
 * error, 2 on usage errors.
 *
 *   s3_driver create-bucket B | exists B
 *   s3_driver put B K FILE [CONTENT_TYPE]        (whole file in memory, signed SHA-256)
 *   s3_driver put-hashed B K FILE SHA256HEX      (in memory, the given hash signed as is)
 *   s3_driver put-file B K FILE                  (streamed, with the trailing checksum)
 *   s3_driver put-slow B K FILE STEP DELAY_MS    (streamed STEP bytes per read, DELAY_MS between)
 *   s3_driver mpu-create B K | mpu-abort B K ID | mpu-list B PREFIX [STOP_AFTER]
 *   s3_driver mpu-part B K ID N FILE [FAIL_AT]   (FAIL_AT: the read fails after that many bytes)
 *   s3_driver mpu-complete B K ID N:ETAG[:CHECKSUM]...
 *   s3_driver mpu-upload B K FILE PART_SIZE      (create, every part, complete)
 *   s3_driver copy-sized SB SK DB DK SIZE SINGLE_MAX PART_SIZE
 *   s3_driver get B K OUT [first-last|first-|-N]
 *   s3_driver head B K | delete B K | copy SB SK DB DK
 *   s3_driver stress B THREADS OPS               (concurrent put/get/verify on one client)
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "s3/s3.h"

static long env_long(const char *name) {
  const char *v = getenv(name);
  return v ? strtol(v, NULL, 10) : 0;
}

static void print_result(int rc, const s3_error *e, const s3_object_info *info, const char *extra) {
  printf("{\"rc\":%d,\"err\":\"%s\",\"http_status\":%ld,\"s3_code\":\"%s\"", rc, s3_strerror(rc),
         rc ? e->http_status : (info ? info->http_status : 0), rc ? e->s3_code : "");
  if (info && rc == 0) {
    /* ETags come quoted; drop the quotes so the line stays valid JSON */
    const char *etag = info->etag;
    size_t n = strlen(etag);
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
      etag++;
      n -= 2;
    }
    printf(",\"content_length\":%" PRIu64 ",\"total_size\":%" PRIu64 ",\"etag\":\"%.*s\",\"content_type\":\"%s\"",
           info->content_length, info->total_size, (int)n, etag, info->content_type);
  }
  if (extra) printf(",%s", extra);
  printf("}\n");
  if (rc) fprintf(stderr, "s3_driver: %s\n", e->message);
}

static int parse_range(const char *s, s3_range *r) {
  char *end;
  if (s[0] == '-') {
    r->kind = S3_RANGE_SUFFIX;
    r->suffix_len = strtoull(s + 1, &end, 10);
    return *end ? -1 : 0;
  }
  r->first = strtoull(s, &end, 10);
  if (*end != '-') return -1;
  if (end[1] == '\0') {
    r->kind = S3_RANGE_FROM;
    return 0;
  }
  r->kind = S3_RANGE_FROM_TO;
  r->last = strtoull(end + 1, &end, 10);
  return *end ? -1 : 0;
}

typedef struct get_sink {
  FILE *fp;
  s3_object_info *info;
  int info_seen_before_body; /* proves the header contract of s3_get */
  uint64_t bytes;
} get_sink;

static int sink_write(void *ud, const void *data, size_t len) {
  get_sink *s = ud;
  if (s->bytes == 0 && s->info->http_status != 0) s->info_seen_before_body = 1;
  s->bytes += len;
  return fwrite(data, 1, len, s->fp) == len ? 0 : -1;
}

static int read_whole(const char *path, unsigned char **buf, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return -1;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  *buf = malloc(n > 0 ? (size_t)n : 1);
  *len = (size_t)n;
  int ok = *buf && fread(*buf, 1, *len, fp) == *len;
  fclose(fp);
  return ok ? 0 : -1;
}

/* ---- stress: THREADS threads share one client, each puts and reads back OPS objects */
typedef struct stress_arg {
  s3_client *c;
  const char *bucket;
  int id, ops, failures;
} stress_arg;

typedef struct mem_sink {
  unsigned char buf[4096];
  size_t len;
} mem_sink;

static int mem_write(void *ud, const void *data, size_t len) {
  mem_sink *m = ud;
  if (m->len + len > sizeof m->buf) return -1;
  memcpy(m->buf + m->len, data, len);
  m->len += len;
  return 0;
}

static void *stress_thread(void *p) {
  stress_arg *a = p;
  for (int i = 0; i < a->ops; i++) {
    char key[64];
    unsigned char body[1000];
    snprintf(key, sizeof key, "stress/t%d/o%d", a->id, i);
    for (size_t j = 0; j < sizeof body; j++) body[j] = (unsigned char)(a->id * 31 + i + j);
    s3_error e;
    mem_sink m = {.len = 0};
    if (s3_put(a->c, a->bucket, key, body, sizeof body, NULL, &e) != 0 ||
        s3_get(a->c, a->bucket, key, NULL, mem_write, &m, NULL, &e) != 0 || m.len != sizeof body ||
        memcmp(m.buf, body, sizeof body) != 0) {
      a->failures++;
    }
  }
  return NULL;
}

static int stress(s3_client *c, const char *bucket, int threads, int ops) {
  pthread_t t[64];
  stress_arg a[64];
  if (threads < 1 || threads > 64) return 2;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < threads; i++) {
    a[i] = (stress_arg){.c = c, .bucket = bucket, .id = i, .ops = ops};
    pthread_create(&t[i], NULL, stress_thread, &a[i]);
  }
  int failures = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    failures += a[i].failures;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("{\"rc\":%d,\"failures\":%d,\"ops\":%d,\"seconds\":%.3f}\n", failures ? -1 : 0, failures, threads * ops * 2,
         secs);
  return failures ? 1 : 0;
}

/* ---- streamed bodies from a file, slowly, failing, or generated */
typedef struct file_src {
  FILE *fp;
  size_t step;      /* most bytes per read (0: as many as asked) */
  long delay_ms;    /* sleep before each read */
  uint64_t fail_at; /* the read fails once this many bytes were given (UINT64_MAX: never) */
  uint64_t given;
} file_src;

static int file_read(void *ud, void *buf, size_t cap, size_t *got) {
  file_src *s = ud;
  if (s->delay_ms) usleep((useconds_t)s->delay_ms * 1000);
  if (s->given >= s->fail_at) return -1;
  if (s->step && cap > s->step) cap = s->step;
  if (s->fail_at - s->given < cap) cap = (size_t)(s->fail_at - s->given);
  *got = fread(buf, 1, cap, s->fp);
  s->given += *got;
  return (*got == 0 && ferror(s->fp)) ? -1 : 0;
}

static long file_size(FILE *fp) {
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  return n;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void print_part(int rc, const s3_error *e, const s3_part *p) {
  char extra[240];
  const char *etag = p->etag;
  size_t n = strlen(etag);
  if (n >= 2 && etag[0] == '"') {
    etag++;
    n -= 2;
  }
  snprintf(extra, sizeof extra, "\"number\":%d,\"etag\":\"%.*s\",\"checksum\":\"%s\"", p->number, (int)n, etag,
           p->checksum);
  print_result(rc, e, NULL, rc == 0 ? extra : NULL);
}

typedef struct list_acc {
  int seen, stop_after;
} list_acc;

static int list_each(void *ud, const char *key, const char *upload_id) {
  list_acc *a = ud;
  printf("%s{\"key\":\"%s\",\"upload_id\":\"%s\"}", a->seen ? "," : "", key, upload_id);
  a->seen++;
  return a->stop_after > 0 && a->seen >= a->stop_after;
}

static int mpu_upload(s3_client *c, char **argv, s3_error *e) {
  FILE *fp = fopen(argv[4], "rb");
  uint64_t part_size = strtoull(argv[5], NULL, 10);
  if (!fp || part_size == 0) return 2;
  uint64_t size = (uint64_t)file_size(fp);
  size_t n = size ? (size_t)((size - 1) / part_size + 1) : 1;
  s3_part *parts = calloc(n, sizeof *parts);
  char id[S3_UPLOAD_ID_MAX];
  int rc = parts ? s3_mpu_create(c, argv[2], argv[3], "audio/mpeg", id, e) : S3_ERR_NOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    uint64_t len = size - i * part_size < part_size ? size - i * part_size : part_size;
    file_src src = {.fp = fp, .fail_at = UINT64_MAX};
    rc = s3_mpu_put_part(c, argv[2], argv[3], id, (int)i + 1, file_read, &src, len, &parts[i], e);
  }
  if (rc == 0) rc = s3_mpu_complete(c, argv[2], argv[3], id, parts, n, e);
  char extra[400];
  snprintf(extra, sizeof extra, "\"parts\":%zu,\"upload_id\":\"%s\"", n, id);
  print_result(rc, e, NULL, extra);
  free(parts);
  fclose(fp);
  return rc == 0 ? 0 : 1;
}

/* The multipart and streaming operations; -1 when op is none of them. */
static int run_more(s3_client *c, int argc, char **argv, s3_error *e) {
  const char *op = argv[1];
  int rc;
  char extra[512];
  if (strcmp(op, "put-slow") == 0 && argc == 7) {
    FILE *fp = fopen(argv[4], "rb");
    if (!fp) return 2;
    file_src src = {.fp = fp, .step = strtoul(argv[5], NULL, 10), .delay_ms = atol(argv[6]), .fail_at = UINT64_MAX};
    double t0 = now_s();
    rc = s3_put_stream(c, argv[2], argv[3], file_read, &src, (uint64_t)file_size(fp), NULL, e);
    snprintf(extra, sizeof extra, "\"seconds\":%.3f", now_s() - t0);
    fclose(fp);
    print_result(rc, e, NULL, extra);
  } else if (strcmp(op, "mpu-create") == 0 && argc == 4) {
    char id[S3_UPLOAD_ID_MAX];
    rc = s3_mpu_create(c, argv[2], argv[3], NULL, id, e);
    snprintf(extra, sizeof extra, "\"upload_id\":\"%s\"", rc == 0 ? id : "");
    print_result(rc, e, NULL, extra);
  } else if (strcmp(op, "mpu-part") == 0 && (argc == 7 || argc == 8)) {
    FILE *fp = fopen(argv[6], "rb");
    if (!fp) return 2;
    file_src src = {.fp = fp, .fail_at = argc == 8 ? strtoull(argv[7], NULL, 10) : UINT64_MAX};
    s3_part p = {0};
    rc = s3_mpu_put_part(c, argv[2], argv[3], argv[4], atoi(argv[5]), file_read, &src, (uint64_t)file_size(fp), &p, e);
    fclose(fp);
    print_part(rc, e, &p);
  } else if (strcmp(op, "mpu-complete") == 0 && argc >= 6) {
    size_t n = (size_t)(argc - 5);
    s3_part *parts = calloc(n, sizeof *parts);
    if (!parts) return 2;
    for (size_t i = 0; i < n; i++) {
      char *colon = strchr(argv[5 + i], ':');
      if (!colon) return 2;
      char *ck = strchr(colon + 1, ':');
      if (ck) *ck++ = '\0';
      parts[i].number = atoi(argv[5 + i]);
      snprintf(parts[i].etag, sizeof parts[i].etag, "\"%s\"", colon + 1);
      snprintf(parts[i].checksum, sizeof parts[i].checksum, "%s", ck ? ck : "");
    }
    rc = s3_mpu_complete(c, argv[2], argv[3], argv[4], parts, n, e);
    free(parts);
    print_result(rc, e, NULL, NULL);
  } else if (strcmp(op, "mpu-abort") == 0 && argc == 5) {
    rc = s3_mpu_abort(c, argv[2], argv[3], argv[4], e);
    print_result(rc, e, NULL, NULL);
  } else if (strcmp(op, "mpu-list") == 0 && (argc == 4 || argc == 5)) {
    list_acc a = {.stop_after = argc == 5 ? atoi(argv[4]) : 0};
    printf("{\"uploads\":[");
    rc = s3_mpu_list(c, argv[2], argv[3], list_each, &a, e);
    printf("],\"count\":%d}\n", a.seen);
    print_result(rc, e, NULL, NULL);
  } else if (strcmp(op, "mpu-upload") == 0 && argc == 6) {
    return mpu_upload(c, argv, e);
  } else if (strcmp(op, "copy-sized") == 0 && argc == 9) {
    rc = s3_copy_sized(c, argv[2], argv[3], argv[4], argv[5], strtoull(argv[6], NULL, 10), strtoull(argv[7], NULL, 10),
                       strtoull(argv[8], NULL, 10), e);
    print_result(rc, e, NULL, NULL);
  } else {
    return -1;
  }
  return rc == 0 ? 0 : 1;
}

static int run(s3_client *c, int argc, char **argv) {
  const char *op = argv[1];
  s3_error e = {0};
  s3_object_info info = {0};
  int rc;
  if (strcmp(op, "create-bucket") == 0 && argc == 3) {
    rc = s3_create_bucket(c, argv[2], &e);
    print_result(rc, &e, NULL, NULL);
  } else if (strcmp(op, "exists") == 0 && argc == 3) {
    bool ex = false;
    rc = s3_bucket_exists(c, argv[2], &ex, &e);
    print_result(rc, &e, NULL, ex ? "\"exists\":true" : "\"exists\":false");
  } else if (strcmp(op, "put") == 0 && (argc == 5 || argc == 6)) {
    unsigned char *buf = NULL;
    size_t len = 0;
    if (read_whole(argv[4], &buf, &len) != 0) return 2;
    rc = s3_put(c, argv[2], argv[3], buf, len, argc == 6 ? argv[5] : NULL, &e);
    free(buf);
    print_result(rc, &e, NULL, NULL);
  } else if (strcmp(op, "put-hashed") == 0 && argc == 6) {
    unsigned char *buf = NULL;
    size_t len = 0;
    if (read_whole(argv[4], &buf, &len) != 0) return 2;
    rc = s3_put_hashed(c, argv[2], argv[3], buf, len, argv[5], NULL, &e);
    free(buf);
    print_result(rc, &e, NULL, NULL);
  } else if (strcmp(op, "put-file") == 0 && argc == 5) {
    FILE *fp = fopen(argv[4], "rb");
    if (!fp) return 2;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    rc = s3_put_file(c, argv[2], argv[3], fp, (uint64_t)n, "audio/mpeg", &e);
    fclose(fp);
    print_result(rc, &e, NULL, NULL);
  } else if (strcmp(op, "get") == 0 && (argc == 5 || argc == 6)) {
    s3_range r = {0};
    if (argc == 6 && parse_range(argv[5], &r) != 0) return 2;
    FILE *fp = fopen(argv[4], "wb");
    if (!fp) return 2;
    get_sink s = {.fp = fp, .info = &info};
    rc = s3_get(c, argv[2], argv[3], argc == 6 ? &r : NULL, sink_write, &s, &info, &e);
    fclose(fp);
    char extra[80];
    snprintf(extra, sizeof extra, "\"bytes\":%" PRIu64 ",\"info_before_body\":%s", s.bytes,
             (s.bytes == 0 || s.info_seen_before_body) ? "true" : "false");
    print_result(rc, &e, &info, extra);
  } else if (strcmp(op, "head") == 0 && argc == 4) {
    rc = s3_head(c, argv[2], argv[3], &info, &e);
    print_result(rc, &e, &info, NULL);
  } else if (strcmp(op, "delete") == 0 && argc == 4) {
    rc = s3_delete(c, argv[2], argv[3], &e);
    print_result(rc, &e, NULL, NULL);
  } else if (strcmp(op, "copy") == 0 && argc == 6) {
    rc = s3_copy(c, argv[2], argv[3], argv[4], argv[5], &e);
    print_result(rc, &e, NULL, NULL);
  } else if (strcmp(op, "stress") == 0 && argc == 5) {
    return stress(c, argv[2], atoi(argv[3]), atoi(argv[4]));
  } else if ((rc = run_more(c, argc, argv, &e)) >= 0) {
    return rc;
  } else {
    fprintf(stderr, "s3_driver: bad usage (see the top of tests/tools/s3_driver.c)\n");
    return 2;
  }
  return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  s3_config cfg = {
      .endpoint = getenv("S3_ENDPOINT"),
      .region = getenv("S3_REGION") ? getenv("S3_REGION") : "us-east-1",
      .access_key = getenv("AWS_ACCESS_KEY_ID"),
      .secret_key = getenv("AWS_SECRET_ACCESS_KEY"),
      .connect_timeout_ms = env_long("S3_CONNECT_TIMEOUT_MS"),
      .timeout_ms = env_long("S3_TIMEOUT_MS"),
  };
  const char *ck = getenv("S3_CHECKSUM");
  if (ck && strcmp(ck, "sha256") == 0) cfg.checksum = S3_CHECKSUM_SHA256;
  if (ck && strcmp(ck, "none") == 0) cfg.checksum = S3_CHECKSUM_NONE;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  s3_client *c = NULL;
  int rc = s3_new(&cfg, &c);
  if (rc != 0) {
    fprintf(stderr, "s3_driver: bad configuration (%s)\n", s3_strerror(rc));
    curl_global_cleanup();
    return 2;
  }
  rc = run(c, argc, argv);
  s3_free(c);
  curl_global_cleanup();
  return rc;
}
