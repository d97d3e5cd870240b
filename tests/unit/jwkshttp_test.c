/* Unit tests of lib/jwkshttp: the Cache-Control parser, configuration checks, and fetches
 * from a canned HTTP server on a loopback socket in this process (one thread, one answer
 * per connection, bounded by the test), so no network and no real server is needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jwkshttp/jwkshttp.h"

static void test_max_age(void **state) {
  (void)state;
  assert_int_equal(jwkshttp_max_age(NULL), -1);
  assert_int_equal(jwkshttp_max_age(""), -1);
  assert_int_equal(jwkshttp_max_age("public"), -1);
  assert_int_equal(jwkshttp_max_age("max-age=120"), 120);
  assert_int_equal(jwkshttp_max_age("public, max-age=3600, must-revalidate"), 3600);
  assert_int_equal(jwkshttp_max_age(" MAX-AGE = 5 "), 0); /* no space before '=': malformed */
  assert_int_equal(jwkshttp_max_age("Max-Age=5"), 5);     /* directive names are case-insensitive */
  assert_int_equal(jwkshttp_max_age("max-age=\"60\""), 60);
  assert_int_equal(jwkshttp_max_age("max-age=\"60"), 0);
  assert_int_equal(jwkshttp_max_age("max-age=60, max-age=5"), 60); /* the first wins */
  assert_int_equal(jwkshttp_max_age("max-age="), 0);
  assert_int_equal(jwkshttp_max_age("max-age=-1"), 0);
  assert_int_equal(jwkshttp_max_age("max-age=12x"), 0);
  assert_int_equal(jwkshttp_max_age("max-age=60, no-cache"), 0);
  assert_int_equal(jwkshttp_max_age("no-store"), 0);
  assert_int_equal(jwkshttp_max_age("private=\"a, max-age=1\", max-age=90"), 90); /* quoted comma */
  assert_int_equal(jwkshttp_max_age("s-maxage=10"), -1);
  assert_int_equal(jwkshttp_max_age("max-age=99999999999999999999999"), LONG_MAX);
}

static void test_new(void **state) {
  (void)state;
  jwkshttp *h = (jwkshttp *)1;
  assert_int_equal(jwkshttp_new(NULL, &h), JWKS_ERR_INVALID);
  assert_null(h);
  jwkshttp_config c = {.url = "ftp://x/jwks"};
  assert_int_equal(jwkshttp_new(&c, &h), JWKS_ERR_INVALID);
  c = (jwkshttp_config){.url = "file:///etc/passwd"};
  assert_int_equal(jwkshttp_new(&c, &h), JWKS_ERR_INVALID);
  c = (jwkshttp_config){.url = "http://x/a b"};
  assert_int_equal(jwkshttp_new(&c, &h), JWKS_ERR_INVALID);
  c = (jwkshttp_config){.url = "http://x/\r\nX: 1"};
  assert_int_equal(jwkshttp_new(&c, &h), JWKS_ERR_INVALID);
  c = (jwkshttp_config){.url = "http://x/", .timeout_ms = -1};
  assert_int_equal(jwkshttp_new(&c, &h), JWKS_ERR_INVALID);
  c = (jwkshttp_config){.url = "http://x/", .connect_timeout_ms = -1};
  assert_int_equal(jwkshttp_new(&c, &h), JWKS_ERR_INVALID);
  c = (jwkshttp_config){.url = "http://x/", .max_bytes = JWKS_MAX_DOC_BYTES + 1};
  assert_int_equal(jwkshttp_new(&c, &h), JWKS_ERR_INVALID);
  c = (jwkshttp_config){.url = "http://x/", .user_agent = "a\nb"};
  assert_int_equal(jwkshttp_new(&c, &h), JWKS_ERR_INVALID);
  c = (jwkshttp_config){.url = "HTTPS://issuer.example/jwks"};
  assert_int_equal(jwkshttp_new(&c, &h), 0);
  jwkshttp_free(h);
  jwkshttp_free(NULL);
}

/* ---- canned server -------------------------------------------------------------------- */

typedef struct canned {
  int fd;
  int port;
  const char *answer; /* the whole HTTP answer */
  char request[2048];
} canned;

static void *serve_once(void *arg) {
  canned *c = arg;
  int conn = accept(c->fd, NULL, NULL);
  if (conn < 0) return NULL;
  size_t got = 0;
  while (got < sizeof c->request - 1 && strstr(c->request, "\r\n\r\n") == NULL) {
    ssize_t n = read(conn, c->request + got, sizeof c->request - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    c->request[got] = '\0';
  }
  size_t len = strlen(c->answer), off = 0;
  while (off < len) {
    ssize_t n = write(conn, c->answer + off, len - off);
    if (n <= 0) break;
    off += (size_t)n;
  }
  close(conn);
  return NULL;
}

/* Serves `answer` to one connection and fetches it; returns the fetch's code. */
static int fetch_canned(const char *answer, size_t max_bytes, jwks_fetched *out, canned *c) {
  memset(c, 0, sizeof *c);
  c->answer = answer;
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(c->fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(c->fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t alen = sizeof a;
  assert_int_equal(getsockname(c->fd, (struct sockaddr *)&a, &alen), 0);
  assert_int_equal(listen(c->fd, 1), 0);
  c->port = ntohs(a.sin_port);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, serve_once, c), 0);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/jwks", c->port);
  jwkshttp_config cfg = {.url = url, .timeout_ms = 3000, .max_bytes = max_bytes};
  jwkshttp *h = NULL;
  assert_int_equal(jwkshttp_new(&cfg, &h), 0);
  int rc = jwkshttp_fetch(h, out);
  jwkshttp_free(h);
  pthread_join(t, NULL);
  close(c->fd);
  return rc;
}

static void test_fetch_ok(void **state) {
  (void)state;
  canned c;
  jwks_fetched f;
  int rc = fetch_canned(
      "HTTP/1.1 200 OK\r\nContent-Type: application/jwk-set+json\r\n"
      "Cache-Control: public\r\ncache-control: max-age=120\r\n"
      "Content-Length: 11\r\nConnection: close\r\n\r\n{\"keys\":[]}",
      0, &f, &c);
  assert_int_equal(rc, 0);
  assert_int_equal(f.len, 11);
  assert_string_equal(f.body, "{\"keys\":[]}");
  assert_int_equal(f.max_age_s, 120); /* both lines read */
  assert_non_null(strstr(c.request, "GET /jwks HTTP/1.1\r\n"));
  assert_non_null(strstr(c.request, "User-Agent: fermata-jwks\r\n"));
  assert_non_null(strstr(c.request, "Accept: application/jwk-set+json"));
  free(f.body);

  rc = fetch_canned("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", 0, &f, &c);
  assert_int_equal(rc, 0);
  assert_int_equal(f.max_age_s, -1);
  free(f.body);
}

static void test_fetch_failures(void **state) {
  (void)state;
  canned c;
  jwks_fetched f;
  assert_int_equal(
      fetch_canned("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", 0, &f, &c),
      JWKS_ERR_FETCH);
  assert_null(f.body);
  /* a redirect is not followed */
  assert_int_equal(fetch_canned("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\n"
                                "Content-Length: 0\r\nConnection: close\r\n\r\n",
                                0, &f, &c),
                   JWKS_ERR_FETCH);
  assert_null(f.body);
  /* over the cap */
  assert_int_equal(
      fetch_canned("HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"keys\":[]}", 10, &f, &c),
      JWKS_ERR_FETCH);
  assert_null(f.body);
  /* an empty body */
  assert_int_equal(fetch_canned("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 0, &f, &c),
                   JWKS_ERR_FETCH);
  /* garbage instead of HTTP */
  assert_int_equal(fetch_canned("garbage\r\n\r\n", 0, &f, &c), JWKS_ERR_FETCH);
  /* refused connection */
  jwkshttp_config cfg = {.url = "http://127.0.0.1:1/jwks", .timeout_ms = 2000};
  jwkshttp *h = NULL;
  assert_int_equal(jwkshttp_new(&cfg, &h), 0);
  assert_int_equal(jwkshttp_fetch(h, &f), JWKS_ERR_FETCH);
  assert_null(f.body);
  assert_int_equal(f.max_age_s, -1);
  jwkshttp_free(h);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_max_age),
      cmocka_unit_test(test_new),
      cmocka_unit_test(test_fetch_ok),
      cmocka_unit_test(test_fetch_failures),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
