/* Unit tests of lib/msgs: topology shape (the names both services rely on), encode/decode
 * round trip, and every refusal with its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "msgs/msgs.h"

static void test_topology(void **state) {
  (void)state;
  const mq_topology *r = msgs_topology(MSGS_SIDE_RESOURCE);
  const mq_topology *p = msgs_topology(MSGS_SIDE_PROCESSOR);
  assert_non_null(r);
  assert_ptr_equal(r, p); /* same declarations on both sides, by construction */
  assert_null(msgs_topology((msgs_side)42));
  assert_int_equal(mq_topology_validate(r), MQ_OK);
  assert_string_equal(r->exchange, "fermata");
  assert_string_equal(r->exchange_type, "direct");
  assert_int_equal(r->n_queues, 2);
  const char *names[] = {"resource.uploaded", "resource.processed"};
  for (size_t i = 0; i < 2; i++) {
    assert_string_equal(r->queues[i].name, names[i]);
    assert_string_equal(r->queues[i].binding_key, names[i]);
    assert_true(r->queues[i].dead_letter);
    assert_true(r->queues[i].retry);
  }
}

static void test_sides(void **state) {
  (void)state;
  assert_string_equal(msgs_consume_queue(MSGS_SIDE_PROCESSOR), "resource.uploaded");
  assert_string_equal(msgs_publish_key(MSGS_SIDE_PROCESSOR), "resource.processed");
  assert_string_equal(msgs_consume_queue(MSGS_SIDE_RESOURCE), "resource.processed");
  assert_string_equal(msgs_publish_key(MSGS_SIDE_RESOURCE), "resource.uploaded");
  assert_null(msgs_consume_queue((msgs_side)-1));
  assert_null(msgs_publish_key((msgs_side)7));
}

static void test_encode(void **state) {
  (void)state;
  char buf[MSGS_ENCODED_MAX];
  size_t len = 0;
  assert_int_equal(msgs_encode(1, buf, sizeof buf, &len), MSGS_OK);
  assert_string_equal(buf, "{\"resourceId\":1}");
  assert_int_equal(len, strlen(buf));
  assert_int_equal(msgs_encode(INT32_MAX, buf, sizeof buf, &len), MSGS_OK);
  assert_string_equal(buf, "{\"resourceId\":2147483647}");
  assert_int_equal(msgs_encode(0, buf, sizeof buf, &len), MSGS_ERR_INVALID);
  assert_int_equal(msgs_encode(-5, buf, sizeof buf, &len), MSGS_ERR_INVALID);
  assert_int_equal(msgs_encode(12345, buf, 8, &len), MSGS_ERR_INVALID);
  assert_int_equal(msgs_encode(1, NULL, 0, &len), MSGS_ERR_INVALID);
  assert_int_equal(msgs_encode(1, buf, sizeof buf, NULL), MSGS_ERR_INVALID);
}

static void test_round_trip(void **state) {
  (void)state;
  const int32_t ids[] = {1, 7, 1000000, INT32_MAX};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    char buf[MSGS_ENCODED_MAX];
    size_t len;
    assert_int_equal(msgs_encode(ids[i], buf, sizeof buf, &len), MSGS_OK);
    int32_t out = 0;
    assert_int_equal(msgs_decode(buf, len, &out, NULL, 0), MSGS_OK);
    assert_int_equal(out, ids[i]);
  }
}

static void test_decode_accepts(void **state) {
  (void)state;
  int32_t id = 0;
  char reason[128];
  const char *ok = " { \"other\": [1,2], \"resourceId\" : 42 }\n";
  assert_int_equal(msgs_decode(ok, strlen(ok), &id, reason, sizeof reason), MSGS_OK);
  assert_int_equal(id, 42);
  assert_string_equal(reason, "");
  /* not NUL-terminated: only len bytes count */
  const char raw[] = {'{', '"', 'r', 'e', 's', 'o', 'u', 'r', 'c', 'e', 'I', 'd', '"', ':', '9', '}', 'X'};
  assert_int_equal(msgs_decode(raw, sizeof raw - 1, &id, NULL, 0), MSGS_OK);
  assert_int_equal(id, 9);
}

static void expect_bad(const char *body, const char *reason_prefix) {
  int32_t id = -77;
  char reason[160];
  assert_int_equal(msgs_decode(body, strlen(body), &id, reason, sizeof reason), MSGS_ERR_BAD_BODY);
  assert_int_equal(id, -77); /* untouched */
  if (strncmp(reason, reason_prefix, strlen(reason_prefix)) != 0)
    fail_msg("body %s: reason \"%s\", expected prefix \"%s\"", body, reason, reason_prefix);
}

static void test_decode_refuses(void **state) {
  (void)state;
  expect_bad("", "empty body");
  expect_bad("garbage", "not JSON: ");
  expect_bad("{\"resourceId\": 1", "not JSON: ");
  expect_bad("{\"resourceId\":1,\"resourceId\":2}", "not JSON: ");
  expect_bad("[1]", "not a JSON object");
  expect_bad("17", "not a JSON object");
  expect_bad("{}", "resourceId: missing");
  expect_bad("{\"resourceid\":1}", "resourceId: missing");
  expect_bad("{\"resourceId\":\"1\"}", "resourceId: not an integer");
  expect_bad("{\"resourceId\":1.0}", "resourceId: not an integer");
  expect_bad("{\"resourceId\":null}", "resourceId: not an integer");
  expect_bad("{\"resourceId\":true}", "resourceId: not an integer");
  expect_bad("{\"resourceId\":0}", "resourceId: 0 out of range");
  expect_bad("{\"resourceId\":-3}", "resourceId: -3 out of range");
  expect_bad("{\"resourceId\":2147483648}", "resourceId: 2147483648 out of range");
  expect_bad("{\"resourceId\":99999999999999999999999}", "not JSON: ");
}

static void test_decode_limits(void **state) {
  (void)state;
  int32_t id = 0;
  char reason[64];
  static char big[MSGS_BODY_MAX + 2];
  memset(big, ' ', sizeof big);
  memcpy(big, "{\"resourceId\":5}", 16);
  assert_int_equal(msgs_decode(big, MSGS_BODY_MAX, &id, reason, sizeof reason), MSGS_OK);
  assert_int_equal(id, 5);
  assert_int_equal(msgs_decode(big, MSGS_BODY_MAX + 1, &id, reason, sizeof reason), MSGS_ERR_BAD_BODY);
  assert_string_equal(reason, "body too large: 4097 bytes (max 4096)");
  /* an embedded NUL is not JSON */
  const char nul[] = "{\"resourceId\":5}\0";
  assert_int_equal(msgs_decode(nul, sizeof nul, &id, NULL, 0), MSGS_ERR_BAD_BODY);
  /* a tiny reason buffer is truncated, never overrun */
  char tiny[4];
  assert_int_equal(msgs_decode("x", 1, &id, tiny, sizeof tiny), MSGS_ERR_BAD_BODY);
  assert_string_equal(tiny, "not");
  /* bad arguments */
  assert_int_equal(msgs_decode("{}", 2, NULL, NULL, 0), MSGS_ERR_INVALID);
  assert_int_equal(msgs_decode(NULL, 3, &id, NULL, 0), MSGS_ERR_INVALID);
  assert_int_equal(msgs_decode(NULL, 0, &id, reason, sizeof reason), MSGS_ERR_BAD_BODY);
  assert_string_equal(reason, "empty body");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_topology),       cmocka_unit_test(test_sides),
      cmocka_unit_test(test_encode),         cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_decode_accepts), cmocka_unit_test(test_decode_refuses),
      cmocka_unit_test(test_decode_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
