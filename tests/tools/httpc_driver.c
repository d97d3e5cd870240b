/* httpc_driver: runs lib/httpc calls from the command line, for tests/system/test_httpc.py.
 *
 *   httpc_driver [--request-id ID] [--timeout-ms N] [--connect-timeout-ms N]
 *                [--max-bytes N] [--range R] [--into N] [--repeat N] [--threads N]
 *                METHOD URL [BODY|@FILE]
 *
 * --range R sends "Range: R"; --into N has the body written to a caller buffer of N bytes
 * (httpc_request.into). Without --repeat: one call, one JSON line {rc, err, status,
 * failure, body_len, body, content_type, content_range, new_connections, elapsed_ms}. With --repeat N (and --threads T): T threads
 * share one client and make N calls each; one JSON line {calls, errors, statuses_2xx,
 * new_connections, seconds}. Exit 0 when rc == 0 (any status), 1 otherwise, 2 on usage.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httpc/httpc.h"

typedef struct job {
  httpc *c;
  httpc_request req;
  int repeat;
  int errors, ok2xx;
  long connects;
} job;

static void *worker(void *p) {
  job *j = p;
  for (int i = 0; i < j->repeat; i++) {
    httpc_response r;
    int rc = httpc_do(j->c, &j->req, &r);
    if (rc != 0)
      j->errors++;
    else if (r.status >= 200 && r.status < 300)
      j->ok2xx++;
    j->connects += r.new_connections;
    httpc_response_free(&r);
  }
  return NULL;
}

static void print_json_string(const char *s, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\')
      printf("\\%c", ch);
    else if (ch < 0x20 || ch >= 0x7f)
      printf("\\u%04x", ch);
    else
      putchar(ch);
  }
  putchar('"');
}

int main(int argc, char **argv) {
  httpc_config cfg = {0};
  httpc_request req = {0};
  int repeat = 0, threads = 1, i = 1;
  for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
    if (strcmp(argv[i], "--request-id") == 0)
      req.request_id = argv[i + 1];
    else if (strcmp(argv[i], "--timeout-ms") == 0)
      cfg.timeout_ms = atol(argv[i + 1]);
    else if (strcmp(argv[i], "--connect-timeout-ms") == 0)
      cfg.connect_timeout_ms = atol(argv[i + 1]);
    else if (strcmp(argv[i], "--max-bytes") == 0)
      cfg.max_response_bytes = (size_t)atol(argv[i + 1]);
    else if (strcmp(argv[i], "--range") == 0)
      req.range = argv[i + 1];
    else if (strcmp(argv[i], "--into") == 0)
      req.into_cap = (size_t)atol(argv[i + 1]);
    else if (strcmp(argv[i], "--repeat") == 0)
      repeat = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--threads") == 0)
      threads = atoi(argv[i + 1]);
    else
      return 2;
  }
  if (argc - i < 2 || argc - i > 3 || threads < 1 || threads > 64) {
    fprintf(stderr, "usage: see the top of tests/tools/httpc_driver.c\n");
    return 2;
  }
  req.method = argv[i];
  req.url = argv[i + 1];
  char *file_body = NULL;
  if (argc - i == 3 && argv[i + 2][0] == '@') { /* @PATH: body from a file (big bodies) */
    FILE *fp = fopen(argv[i + 2] + 1, "rb");
    if (!fp) return 2;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    file_body = malloc(n > 0 ? (size_t)n : 1);
    if (!file_body || fread(file_body, 1, (size_t)n, fp) != (size_t)n) return 2;
    fclose(fp);
    req.body = file_body;
    req.body_len = (size_t)n;
  } else if (argc - i == 3) {
    req.body = argv[i + 2];
    req.body_len = strlen(argv[i + 2]);
  }
  char *into = NULL;
  if (req.into_cap > 0) {
    into = malloc(req.into_cap);
    if (!into) return 2;
    req.into = into;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  httpc *c = NULL;
  if (httpc_new(&cfg, &c) != 0) return 2;
  int exit_code = 0;
  if (repeat > 0) {
    pthread_t t[64];
    job jobs[64];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int k = 0; k < threads; k++) {
      jobs[k] = (job){.c = c, .req = req, .repeat = repeat};
      pthread_create(&t[k], NULL, worker, &jobs[k]);
    }
    int errors = 0, ok = 0;
    long connects = 0;
    for (int k = 0; k < threads; k++) {
      pthread_join(t[k], NULL);
      errors += jobs[k].errors;
      ok += jobs[k].ok2xx;
      connects += jobs[k].connects;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf(
        "{\"calls\":%d,\"errors\":%d,\"statuses_2xx\":%d,\"new_connections\":%ld,"
        "\"seconds\":%.3f}\n",
        threads * repeat, errors, ok, connects,
        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    exit_code = errors ? 1 : 0;
  } else {
    httpc_response r;
    int rc = httpc_do(c, &req, &r);
    printf("{\"rc\":%d,\"err\":\"%s\",\"status\":%ld,\"failure\":%s,\"body_len\":%zu,\"body\":", rc, httpc_strerror(rc),
           r.status, httpc_is_failure(rc, r.status) ? "true" : "false", r.body_len);
    print_json_string(into ? into : r.body ? r.body : "", r.body_len);
    printf(",\"content_type\":");
    print_json_string(r.content_type, strlen(r.content_type));
    printf(",\"content_range\":");
    print_json_string(r.content_range, strlen(r.content_range));
    printf(",\"new_connections\":%ld,\"elapsed_ms\":%.1f}\n", r.new_connections, r.elapsed_ms);
    if (rc) fprintf(stderr, "httpc_driver: %s\n", r.error);
    httpc_response_free(&r);
    exit_code = rc ? 1 : 0;
  }
  httpc_free(c);
  free(file_body);
  free(into);
  curl_global_cleanup();
  return exit_code;
}
