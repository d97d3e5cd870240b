/* Unit tests of lib/mq that need no broker: topology validation, backoff and
 * the retry decision, argument checks of the constructors. The broker-facing paths are
 * covered by tests/system/test_mq.py through tests/tools/mq_driver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mq/mq.h"

/* URL parsing is lib/mqconn's (tests/unit/mqconn_test.c); mq_params are its params. */
static void params_from_url_delegates(void **state) {
  (void)state;
  mq_params p;
  assert_int_equal(mq_params_from_url("amqps://u:p@broker.example:5671/%2f", &p), 0);
  assert_int_equal(p.tls, 1);
  assert_string_equal(p.host, "broker.example");
  assert_int_equal(mq_params_from_url("http://h:1/", &p), MQ_ERR_INVALID);
  assert_int_equal(mq_params_set_ca_file(&p, "/nonexistent/ca.pem"), MQ_ERR_INVALID);
  assert_int_equal(mq_params_set_ca_file(&p, ""), 0);
}

static const mq_queue_spec good_queues[] = {
    {.name = "resource.uploaded", .binding_key = "resource.uploaded", .dead_letter = 1, .retry = 1},
    {.name = "resource.processed", .binding_key = NULL, .dead_letter = 1, .retry = 0},
};
static const mq_topology good = {"fermata", "topic", good_queues, 2};

static void topology_valid(void **state) {
  (void)state;
  assert_int_equal(mq_topology_validate(&good), 0);
  mq_topology t = good;
  t.n_queues = 0;
  t.queues = NULL;
  assert_int_equal(mq_topology_validate(&t), 0); /* a publisher needs only the exchange */
  mq_queue_spec wild[] = {{.name = "audit", .binding_key = "resource.#"},
                          {.name = "one", .binding_key = "*.uploaded"},
                          {.name = "all", .binding_key = ""}};
  t = (mq_topology){"x", "topic", wild, 3};
  assert_int_equal(mq_topology_validate(&t), 0);
  t.exchange_type = "direct";
  assert_int_equal(mq_topology_validate(&t), 0);
  t.exchange_type = "fanout";
  assert_int_equal(mq_topology_validate(&t), 0);
}

static void topology_invalid(void **state) {
  (void)state;
  mq_topology t = good;
  assert_int_equal(mq_topology_validate(NULL), MQ_ERR_INVALID);
  t.exchange = NULL;
  assert_int_equal(mq_topology_validate(&t), MQ_ERR_INVALID);
  t.exchange = "";
  assert_int_equal(mq_topology_validate(&t), MQ_ERR_INVALID);
  t.exchange = "has space";
  assert_int_equal(mq_topology_validate(&t), MQ_ERR_INVALID);
  t = good;
  t.exchange_type = "headers";
  assert_int_equal(mq_topology_validate(&t), MQ_ERR_INVALID);
  t.exchange_type = NULL;
  assert_int_equal(mq_topology_validate(&t), MQ_ERR_INVALID);
  t = good;
  t.queues = NULL;
  assert_int_equal(mq_topology_validate(&t), MQ_ERR_INVALID);

  mq_queue_spec dup[] = {{.name = "a"}, {.name = "a"}};
  t = (mq_topology){"x", "topic", dup, 2};
  assert_int_equal(mq_topology_validate(&t), MQ_ERR_INVALID);
  mq_queue_spec noname[] = {{.name = NULL}};
  t = (mq_topology){"x", "topic", noname, 1};
  assert_int_equal(mq_topology_validate(&t), MQ_ERR_INVALID);
  mq_queue_spec badkey[] = {{.name = "q", .binding_key = "a b"}};
  t = (mq_topology){"x", "topic", badkey, 1};
  assert_int_equal(mq_topology_validate(&t), MQ_ERR_INVALID);

  char longname[MQ_NAME_MAX + 2];
  memset(longname, 'q', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  mq_queue_spec toolong[] = {{.name = longname}};
  t = (mq_topology){"x", "topic", toolong, 1};
  assert_int_equal(mq_topology_validate(&t), MQ_ERR_INVALID);
  longname[MQ_NAME_MAX] = '\0'; /* exactly MQ_NAME_MAX is fine */
  assert_int_equal(mq_topology_validate(&t), 0);
}

static void backoff_grows_and_caps(void **state) {
  (void)state;
  mq_backoff b = {100, 1000};
  /* rnd % (d/2 + 1) == d/2 keeps the whole delay */
  assert_int_equal(mq_backoff_delay_ms(&b, 1, 50), 100);
  /* rnd = 0 gives the lower half */
  assert_int_equal(mq_backoff_delay_ms(&b, 1, 0), 50);
  assert_int_equal(mq_backoff_delay_ms(&b, 2, 0), 100);
  assert_int_equal(mq_backoff_delay_ms(&b, 3, 0), 200);
  assert_int_equal(mq_backoff_delay_ms(&b, 4, 0), 400);
  assert_int_equal(mq_backoff_delay_ms(&b, 5, 0), 500);       /* capped at 1000 */
  assert_int_equal(mq_backoff_delay_ms(&b, 1000000, 0), 500); /* no overflow */
  for (uint32_t r = 0; r < 5000; r += 7) {
    uint32_t d = mq_backoff_delay_ms(&b, 3, r);
    assert_true(d >= 200 && d <= 400);
  }
  mq_backoff zero = {0, 0};
  assert_true(mq_backoff_delay_ms(&zero, 1, 12345) <= 1);
}

static void retry_decision(void **state) {
  (void)state;
  mq_consumer_opts o = {.queue = "q", .max_attempts = 3, .retry = {1000, 8000}};
  uint32_t d = 0;
  assert_int_equal(mq_retry_decide(&o, 1, 0, &d), MQ_RETRY);
  assert_int_equal(d, 500);
  assert_int_equal(mq_retry_decide(&o, 2, 0, &d), MQ_RETRY);
  assert_int_equal(d, 1000);
  assert_int_equal(mq_retry_decide(&o, 3, 0, &d), MQ_REJECT); /* attempt 3 of 3 failed */
  assert_int_equal(mq_retry_decide(&o, 0, 0, &d), MQ_RETRY);  /* missing header = attempt 1 */

  mq_consumer_opts defaults = {.queue = "q"}; /* 5 attempts, 1 s .. 60 s */
  assert_int_equal(mq_retry_decide(&defaults, 4, 0, &d), MQ_RETRY);
  assert_int_equal(d, 4000);
  assert_int_equal(mq_retry_decide(&defaults, 5, 0, &d), MQ_REJECT);
}

static mq_verdict noop_handler(const mq_message *m, void *arg, char *reason, size_t cap) {
  (void)m, (void)arg, (void)reason, (void)cap;
  return MQ_ACK;
}

static void constructors_check_arguments(void **state) {
  (void)state;
  mq_params p;
  assert_int_equal(mq_params_from_url("amqp://u:p@127.0.0.1:1/", &p), 0);
  mq_consumer_opts o = {.queue = "resource.uploaded"};
  mq_consumer_opts missing = {.queue = "nope"};
  mq_topology bad = {"x", "bogus", NULL, 0};

  assert_null(mq_publisher_new(NULL, NULL, NULL));
  assert_null(mq_publisher_new(&p, &bad, NULL));
  assert_null(mq_consumer_new(&p, &good, &missing, noop_handler, NULL));
  assert_null(mq_consumer_new(&p, &good, &o, NULL, NULL));
  assert_null(mq_consumer_new(&p, NULL, &o, noop_handler, NULL));

  /* Nothing connects before use; free works on never-started objects and on NULL. */
  mq_publisher *pub = mq_publisher_new(&p, &good, NULL);
  assert_non_null(pub);
  assert_int_equal(mq_publisher_connected(pub), 0);
  assert_int_equal(mq_publish(pub, NULL, "k", "x", 1, NULL), MQ_ERR_INVALID);
  assert_int_equal(mq_publish(pub, "x", "k", NULL, 1, NULL), MQ_ERR_INVALID);
  mq_publisher_free(pub);
  mq_publisher_free(NULL);

  mq_consumer *c = mq_consumer_new(&p, &good, &o, noop_handler, NULL);
  assert_non_null(c);
  assert_int_equal(mq_consumer_connected(c), 0);
  mq_consumer_stop(c); /* not started: no-op */
  mq_consumer_free(c);
  mq_consumer_free(NULL);
}

static void publish_to_closed_port_fails_fast_then_backs_off(void **state) {
  (void)state;
  mq_params p;
  /* Port 1 on loopback: connection refused at once. */
  assert_int_equal(mq_params_from_url("amqp://u:p@127.0.0.1:1/", &p), 0);
  mq_backoff slow = {60000, 60000};
  mq_publisher *pub = mq_publisher_new(&p, NULL, &slow);
  assert_non_null(pub);
  assert_int_equal(mq_publish(pub, "x", "k", "{}", 2, NULL), MQ_ERR_DOWN);
  /* Inside the backoff window: fails without trying. */
  assert_int_equal(mq_publish(pub, "x", "k", "{}", 2, NULL), MQ_ERR_DOWN);
  assert_int_equal(mq_publisher_connected(pub), 0);
  mq_publisher_free(pub);
}

static void consumer_start_stop_without_broker(void **state) {
  (void)state;
  mq_params p;
  assert_int_equal(mq_params_from_url("amqp://u:p@127.0.0.1:1/", &p), 0);
  mq_consumer_opts o = {.queue = "resource.uploaded", .reconnect = {50, 100}};
  mq_consumer *c = mq_consumer_new(&p, &good, &o, noop_handler, NULL);
  assert_non_null(c);
  assert_int_equal(mq_consumer_start(c), 0);
  assert_int_equal(mq_consumer_start(c), MQ_ERR_THREAD); /* already running */
  struct timespec ts = {0, 300 * 1000000L};
  nanosleep(&ts, NULL); /* a few failed connects with backoff */
  assert_int_equal(mq_consumer_connected(c), 0);
  mq_consumer_stop(c);
  mq_consumer_stop(c);
  mq_consumer_free(c);
}

static void strerror_covers_codes(void **state) {
  (void)state;
  for (int e = MQ_OK; e >= MQ_ERR_THREAD; e--) assert_string_not_equal(mq_strerror(e), "unknown error");
  assert_string_equal(mq_strerror(-999), "unknown error");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(params_from_url_delegates),
      cmocka_unit_test(topology_valid),
      cmocka_unit_test(topology_invalid),
      cmocka_unit_test(backoff_grows_and_caps),
      cmocka_unit_test(retry_decision),
      cmocka_unit_test(constructors_check_arguments),
      cmocka_unit_test(publish_to_closed_port_fails_fast_then_backs_off),
      cmocka_unit_test(consumer_start_stop_without_broker),
      cmocka_unit_test(strerror_covers_codes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
