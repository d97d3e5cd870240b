/*
 * mq_driver: a command-line face of lib/mq for the system tests (tests/system/test_mq.py).
 * It declares a one-queue topology (exchange, queue, DLQ, retry queue), then either
 * publishes with confirms or runs a consumer whose verdict is chosen on the command line.
 * Every event is one JSON line on stdout, flushed at once, so the test can follow along.
 *
 *   mq_driver publish --url U --exchange X --queue Q [--key K] [--rk RK] --body B
 *                     [--count N] [--gap-ms G] [--request-id R]   (RK: routing key, default K;
 *                     G: idle time between publishes)
 *   mq_driver consume --url U --exchange X --queue Q [--key K]
 *                     [--mode ack|reject|retry|retry-once|requeue-once] [--hold-ms H]
 *                     [--count N] [--seconds S] [--prefetch P] [--max-attempts M]
 *                     [--retry-ms MS] [--reason TEXT]
 *
 * publish exits 0 when every message was confirmed; consume exits 0 after N handler calls
 * (or at --seconds, or on SIGTERM/SIGINT) with a clean mq_consumer_stop.
 */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log/log.h"
#include "mq/mq.h"

typedef struct {
  const char *url, *exchange, *queue, *key, *rk, *body, *request_id, *mode, *reason;
  long count, gap_ms, hold_ms, seconds, prefetch, max_attempts, retry_ms;
} args;

typedef struct {
  const args *a;
  atomic_long handled;
  struct timespec t0;
} consume_ctx;

static volatile sig_atomic_t got_signal;
static void on_signal(int sig) {
  (void)sig;
  got_signal = 1;
}

static long ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Prints one event line; json is consumed. */
static void emit(json_t *json) {
  char *s = json_dumps(json, JSON_COMPACT);
  if (s) {
    printf("%s\n", s);
    fflush(stdout);
    free(s);
  }
  json_decref(json);
}

static mq_verdict handler(const mq_message *m, void *arg, char *reason, size_t cap) {
  consume_ctx *ctx = arg;
  const args *a = ctx->a;
  emit(json_pack("{s:s, s:s%, s:i, s:b, s:s, s:s, s:s, s:I}", "event", "msg", "body", m->body, m->len, "attempt",
                 (int)m->attempt, "redelivered", m->redelivered, "request_id", m->request_id, "routing_key",
                 m->routing_key, "content_type", m->content_type, "t_ms", (json_int_t)ms_since(&ctx->t0)));
  if (a->hold_ms > 0) sleep_ms(a->hold_ms);
  mq_verdict v = MQ_ACK;
  const char *mode = a->mode;
  if (strcmp(mode, "reject") == 0)
    v = MQ_REJECT;
  else if (strcmp(mode, "retry") == 0)
    v = MQ_RETRY;
  else if (strcmp(mode, "retry-once") == 0)
    v = m->attempt < 2 ? MQ_RETRY : MQ_ACK;
  else if (strcmp(mode, "requeue-once") == 0)
    v = m->redelivered ? MQ_ACK : MQ_REQUEUE;
  if (v == MQ_REJECT || v == MQ_RETRY) snprintf(reason, cap, "%s", a->reason);
  atomic_fetch_add(&ctx->handled, 1);
  return v;
}

static int do_publish(const args *a, const mq_params *p, const mq_topology *t) {
  mq_publisher *pub = mq_publisher_new(p, t, NULL);
  if (!pub) return 2;
  int failed = 0;
  if (a->count == 0) { /* --count 0: declare the topology only */
    int rc = mq_publisher_connect(pub);
    emit(json_pack("{s:s, s:i}", "event", "declared", "rc", rc));
    failed = rc != 0;
  }
  for (long i = 0; i < a->count; i++) {
    char body[1024];
    if (i > 0 && a->gap_ms > 0) sleep_ms(a->gap_ms);
    if (a->count == 1)
      snprintf(body, sizeof body, "%s", a->body);
    else
      snprintf(body, sizeof body, "%s-%ld", a->body, i);
    mq_publish_opts o = {.request_id = a->request_id, .attempt = 0};
    int rc = mq_publish(pub, a->exchange, a->rk, body, strlen(body), &o);
    emit(json_pack("{s:s, s:s, s:i, s:s}", "event", "published", "body", body, "rc", rc, "error", mq_strerror(rc)));
    if (rc != 0) failed++;
  }
  mq_publisher_free(pub);
  return failed ? 1 : 0;
}

static int do_consume(const args *a, const mq_params *p, const mq_topology *t) {
  consume_ctx ctx = {.a = a};
  atomic_init(&ctx.handled, 0);
  clock_gettime(CLOCK_MONOTONIC, &ctx.t0);
  mq_consumer_opts o = {
      .queue = a->queue,
      .prefetch = (uint16_t)a->prefetch,
      .max_attempts = (unsigned)a->max_attempts,
      .retry = {(uint32_t)a->retry_ms, (uint32_t)a->retry_ms * 8},
      .reconnect = {100, 1000},
  };
  mq_consumer *c = mq_consumer_new(p, t, &o, handler, &ctx);
  if (!c || mq_consumer_start(c) != 0) {
    fprintf(stderr, "mq_driver: cannot create consumer\n");
    mq_consumer_free(c);
    return 2;
  }
  int was_connected = 0;
  while (!got_signal && (a->count <= 0 || atomic_load(&ctx.handled) < a->count) &&
         (a->seconds <= 0 || ms_since(&ctx.t0) < a->seconds * 1000)) {
    int now = mq_consumer_connected(c);
    if (now != was_connected)
      emit(json_pack("{s:s, s:I}", "event", now ? "connected" : "disconnected", "t_ms", (json_int_t)ms_since(&ctx.t0)));
    was_connected = now;
    sleep_ms(20);
  }
  mq_consumer_stop(c);
  mq_consumer_free(c);
  emit(json_pack("{s:s, s:I}", "event", "stopped", "handled", (json_int_t)atomic_load(&ctx.handled)));
  return 0;
}

int main(int argc, char **argv) {
  args a = {.exchange = "fm.test",
            .body = "{}",
            .mode = "ack",
            .reason = "driver says no",
            .count = 1,
            .prefetch = 1,
            .max_attempts = 5,
            .retry_ms = 1000};
  static const struct option longopts[] = {{"url", required_argument, NULL, 'u'},
                                           {"exchange", required_argument, NULL, 'x'},
                                           {"queue", required_argument, NULL, 'q'},
                                           {"key", required_argument, NULL, 'k'},
                                           {"body", required_argument, NULL, 'b'},
                                           {"count", required_argument, NULL, 'n'},
                                           {"request-id", required_argument, NULL, 'r'},
                                           {"mode", required_argument, NULL, 'm'},
                                           {"hold-ms", required_argument, NULL, 'h'},
                                           {"seconds", required_argument, NULL, 's'},
                                           {"prefetch", required_argument, NULL, 'p'},
                                           {"max-attempts", required_argument, NULL, 'a'},
                                           {"retry-ms", required_argument, NULL, 't'},
                                           {"reason", required_argument, NULL, 'R'},
                                           {"rk", required_argument, NULL, 'K'},
                                           {"gap-ms", required_argument, NULL, 'g'},
                                           {0, 0, 0, 0}};
  if (argc < 2) goto usage;
  const char *cmd = argv[1];
  optind = 2;
  int ch;
  while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (ch) {
    case 'u': a.url = optarg; break;
    case 'x': a.exchange = optarg; break;
    case 'q': a.queue = optarg; break;
    case 'k': a.key = optarg; break;
    case 'b': a.body = optarg; break;
    case 'n': a.count = strtol(optarg, NULL, 10); break;
    case 'r': a.request_id = optarg; break;
    case 'm': a.mode = optarg; break;
    case 'h': a.hold_ms = strtol(optarg, NULL, 10); break;
    case 's': a.seconds = strtol(optarg, NULL, 10); break;
    case 'p': a.prefetch = strtol(optarg, NULL, 10); break;
    case 'a': a.max_attempts = strtol(optarg, NULL, 10); break;
    case 't': a.retry_ms = strtol(optarg, NULL, 10); break;
    case 'R': a.reason = optarg; break;
    case 'K': a.rk = optarg; break;
    case 'g': a.gap_ms = strtol(optarg, NULL, 10); break;
    default: goto usage;
    }
  }
  if (!a.url || !a.queue) goto usage;
  if (!a.key) a.key = a.queue;
  if (!a.rk) a.rk = a.key;
  mq_params p;
  if (mq_params_from_url(a.url, &p) != 0) {
    fprintf(stderr, "mq_driver: bad url\n");
    return 2;
  }
  /* as the services do: a private CA for amqps (tests/system/test_mq.py's TLS listener) */
  if (mq_params_set_ca_file(&p, getenv("AMQP_TLS_CA_FILE")) != 0) {
    fprintf(stderr, "mq_driver: AMQP_TLS_CA_FILE: not a readable file\n");
    return 2;
  }
  p.heartbeat_s = 5; /* the tests kill the broker: notice a dead peer quickly */
  p.rpc_timeout_ms = 5000;
  mq_queue_spec q = {.name = a.queue, .binding_key = a.key, .dead_letter = 1, .retry = 1};
  mq_topology t = {.exchange = a.exchange, .exchange_type = "topic", .queues = &q, .n_queues = 1};
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);
  if (strcmp(cmd, "publish") != 0 && strcmp(cmd, "consume") != 0) goto usage;
  /* connection failures (and their reasons: TLS verification, login) on stderr */
  p.log = log_new("mq_driver", LOG_LEVEL_INFO, stderr);
  int rc = strcmp(cmd, "publish") == 0 ? do_publish(&a, &p, &t) : do_consume(&a, &p, &t);
  log_free(p.log);
  return rc;
usage:
  fprintf(stderr, "usage: mq_driver publish|consume --url URL --queue Q [options]\n");
  return 2;
}
