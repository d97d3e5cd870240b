/* http_body_test: request bodies read by their handlers as they arrive
 * (http_server_route_stream), seen from raw-socket clients: every byte arrives in order,
 * a stalled handler holds the client back instead of buffering the body, an early answer
 * still reaches a client that sends everything, the caps answer 413 (declared or passed
 * mid-stream), a client that goes away fails the handler's reads, the stream limit answers
 * 503, and a stop ends a handler waiting for bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"

#define MAX_BODY (256ull << 20)

typedef struct {
  atomic_long got;       /* bytes the handler read */
  atomic_uint sum;       /* a checksum of them, in order */
  atomic_int last_rc;    /* the read that ended it: 0, or HTTP_BODY_* */
  atomic_int stall_ms;   /* sleep before reading anything */
  atomic_long answer_at; /* answer 400 once this many bytes were read (0: read all, then 200) */
  atomic_int running;
  atomic_int finished;
  char ctype[64]; /* Content-Type as the handler saw it after the body ended */
} probe;

static unsigned sum_bytes(unsigned s, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) s = s * 31u + p[i];
  return s;
}

static void upload(http_req *r, void *ctx) {
  probe *p = ctx;
  atomic_fetch_add(&p->running, 1);
  if (atomic_load(&p->stall_ms)) usleep((useconds_t)atomic_load(&p->stall_ms) * 1000);
  unsigned char buf[50000];
  long n;
  unsigned s = 0;
  long total = 0;
  while ((n = http_req_read(r, buf, sizeof buf)) > 0) {
    s = sum_bytes(s, buf, (size_t)n);
    total += n;
    if (atomic_load(&p->answer_at) && total >= atomic_load(&p->answer_at)) break;
  }
  atomic_store(&p->got, total);
  atomic_store(&p->sum, s);
  atomic_store(&p->last_rc, (int)(n > 0 ? 0 : n));
  const char *ct = http_req_header(r, "Content-Type");
  snprintf(p->ctype, sizeof p->ctype, "%s", ct ? ct : "");
  if (n > 0)
    http_reply_error(r, 400, "not what we wanted");
  else if (n == 0)
    http_reply_json(r, 200, json_pack("{s:I}", "bytes", (json_int_t)total));
  else
    http_reply_error(r, 400, "read failed");
  atomic_fetch_add(&p->finished, 1);
}

static http_server *start(probe *p, unsigned max_streams, uint64_t max_body) {
  http_server_opts o = {.port = 0,
                        .bind_addr = "127.0.0.1",
                        .event_loops = 1,
                        .workers = 2,
                        .max_streams = max_streams,
                        .shutdown_grace_ms = 2000};
  http_server *s = http_server_new(&o, NULL);
  assert_non_null(s);
  assert_int_equal(http_server_route_stream(s, "POST", "/up", upload, p, max_body), HTTP_OK);
  assert_int_equal(http_server_start(s), HTTP_OK);
  return s;
}

static int dial(unsigned port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

static void send_all(int fd, const void *data, size_t n) {
  const char *p = data;
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return; /* the server closed: the answer tells */
    p += w;
    n -= (size_t)w;
  }
}

static void pattern(unsigned char *buf, size_t n, uint64_t off) {
  for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)((off + i) * 2654435761u >> 13);
}

/* Sends `total` pattern bytes (chunked when `chunked`) and returns the answer's status. */
static int send_body(int fd, uint64_t total, bool chunked, unsigned *sum) {
  static unsigned char buf[1 << 16];
  uint64_t off = 0;
  unsigned s = 0;
  while (off < total) {
    size_t n = total - off < sizeof buf ? (size_t)(total - off) : sizeof buf;
    pattern(buf, n, off);
    s = sum_bytes(s, buf, n);
    if (chunked) {
      char h[32];
      int hl = snprintf(h, sizeof h, "%zx\r\n", n);
      send_all(fd, h, (size_t)hl);
    }
    send_all(fd, buf, n);
    if (chunked) send_all(fd, "\r\n", 2);
    off += n;
  }
  if (chunked) send_all(fd, "0\r\n\r\n", 5);
  if (sum) *sum = s;
  return 0;
}

static int read_status(int fd) {
  char buf[4096];
  size_t have = 0;
  struct pollfd pf = {.fd = fd, .events = POLLIN};
  while (have < sizeof buf - 1 && poll(&pf, 1, 20000) == 1) {
    ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
    if (n <= 0) break;
    have += (size_t)n;
    buf[have] = '\0';
    if (strstr(buf, "\r\n\r\n")) break;
  }
  buf[have] = '\0';
  int status = 0;
  if (sscanf(buf, "HTTP/1.1 %d", &status) != 1) return 0;
  return status;
}

static void headers(int fd, unsigned port, uint64_t len, bool chunked) {
  char h[256];
  int n = chunked ? snprintf(h, sizeof h,
                             "POST /up HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nContent-Type: audio/mpeg\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n",
                             port)
                  : snprintf(h, sizeof h,
                             "POST /up HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nContent-Type: audio/mpeg\r\n"
                             "Content-Length: %llu\r\n\r\n",
                             port, (unsigned long long)len);
  send_all(fd, h, (size_t)n);
}

static void wait_for(atomic_int *v, int want) {
  for (int i = 0; i < 2000 && atomic_load(v) < want; i++) usleep(5000);
}

static void every_byte_arrives_in_order(void **state) {
  (void)state;
  for (int chunked = 0; chunked < 2; chunked++) {
    probe p = {0};
    http_server *s = start(&p, 4, MAX_BODY);
    int fd = dial(http_server_port(s));
    uint64_t total = 5 * 1000 * 1000 + 17;
    headers(fd, http_server_port(s), total, chunked);
    unsigned sum;
    send_body(fd, total, chunked, &sum);
    assert_int_equal(read_status(fd), 200);
    wait_for(&p.finished, 1);
    assert_int_equal(atomic_load(&p.got), (long)total);
    assert_int_equal(atomic_load(&p.sum), sum);
    assert_int_equal(atomic_load(&p.last_rc), 0);
    assert_string_equal(p.ctype, "audio/mpeg");
    close(fd);
    http_server_free(s);
  }
}

/* The handler sleeps before reading: the server takes no more than its ring (plus the
 * kernel's socket buffers) from the client meanwhile, whatever the body's size. */
static void a_stalled_handler_holds_the_client_back(void **state) {
  (void)state;
  probe p = {0};
  atomic_store(&p.stall_ms, 1500);
  http_server *s = start(&p, 4, MAX_BODY);
  int fd = dial(http_server_port(s));
  uint64_t total = 200ull << 20;
  headers(fd, http_server_port(s), total, false);
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  static unsigned char buf[1 << 16];
  uint64_t sent = 0;
  for (int idle = 0; idle < 50 && sent < total;) { /* until the server stopped taking bytes for 500 ms */
    ssize_t w = send(fd, buf, sizeof buf, MSG_NOSIGNAL);
    if (w > 0) {
      sent += (uint64_t)w;
      idle = 0;
    } else {
      usleep(10000);
      idle++;
    }
  }
  /* ring 256 KiB + loopback socket buffers (a few MiB at most) */
  assert_true(sent < (32ull << 20));
  fcntl(fd, F_SETFL, fl);
  close(fd); /* the client gives up: the handler's reads fail, nothing leaks */
  wait_for(&p.finished, 1);
  assert_int_equal(atomic_load(&p.finished), 1);
  assert_int_equal(atomic_load(&p.last_rc), HTTP_BODY_ABORTED);
  http_server_free(s);
}

static void an_early_answer_reaches_a_client_that_sends_everything(void **state) {
  (void)state;
  probe p = {0};
  atomic_store(&p.answer_at, 1000);
  http_server *s = start(&p, 4, MAX_BODY);
  int fd = dial(http_server_port(s));
  headers(fd, http_server_port(s), 8 << 20, false);
  send_body(fd, 8 << 20, false, NULL);
  assert_int_equal(read_status(fd), 400);
  close(fd);
  http_server_free(s);
}

static void a_declared_body_over_the_cap_is_refused_unread(void **state) {
  (void)state;
  probe p = {0};
  http_server *s = start(&p, 4, 1 << 20);
  int fd = dial(http_server_port(s));
  headers(fd, http_server_port(s), (1 << 20) + 1, false);
  assert_int_equal(read_status(fd), 413);
  assert_int_equal(atomic_load(&p.running), 0); /* no handler ran */
  close(fd);
  http_server_free(s);
}

static void a_chunked_body_passing_the_cap_gets_413(void **state) {
  (void)state;
  probe p = {0};
  http_server *s = start(&p, 4, 1 << 20);
  int fd = dial(http_server_port(s));
  headers(fd, http_server_port(s), 0, true);
  send_body(fd, 3 << 20, true, NULL);
  assert_int_equal(read_status(fd), 413);
  wait_for(&p.finished, 1);
  assert_int_equal(atomic_load(&p.last_rc), HTTP_BODY_TOO_LARGE);
  assert_true(atomic_load(&p.got) <= 1 << 20);
  close(fd);
  http_server_free(s);
}

static void over_the_stream_limit_is_503(void **state) {
  (void)state;
  probe p = {0};
  http_server *s = start(&p, 1, MAX_BODY);
  int a = dial(http_server_port(s));
  headers(a, http_server_port(s), 1000, false); /* holds the only stream: its body never comes */
  wait_for(&p.running, 1);
  int b = dial(http_server_port(s));
  headers(b, http_server_port(s), 1000, false);
  assert_int_equal(read_status(b), 503);
  close(b);
  send_body(a, 1000, false, NULL);
  assert_int_equal(read_status(a), 200);
  close(a);
  http_server_free(s);
}

static void a_stop_ends_a_handler_waiting_for_bytes(void **state) {
  (void)state;
  probe p = {0};
  http_server *s = start(&p, 4, MAX_BODY);
  int fd = dial(http_server_port(s));
  headers(fd, http_server_port(s), 1 << 20, false);
  send_all(fd, "abc", 3);
  wait_for(&p.running, 1);
  http_server_stop(s);
  assert_int_equal(atomic_load(&p.finished), 1);
  assert_int_equal(atomic_load(&p.last_rc), HTTP_BODY_ABORTED);
  close(fd);
  http_server_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_byte_arrives_in_order),
      cmocka_unit_test(a_stalled_handler_holds_the_client_back),
      cmocka_unit_test(an_early_answer_reaches_a_client_that_sends_everything),
      cmocka_unit_test(a_declared_body_over_the_cap_is_refused_unread),
      cmocka_unit_test(a_chunked_body_passing_the_cap_gets_413),
      cmocka_unit_test(over_the_stream_limit_is_503),
      cmocka_unit_test(a_stop_ends_a_handler_waiting_for_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
