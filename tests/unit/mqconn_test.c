/* Unit tests of lib/mqconn that need no broker: URL parsing (amqp and amqps, defaults,
 * percent-decoding, refusals), the CA file check, and what a failed open reports. TLS
 * against a real broker is tests/system/test_mq.py's (a listener with a certificate made at
 * test time). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mqconn/mqconn.h"

static void url_full(void **state) {
  (void)state;
  mqconn_params p;
  assert_int_equal(mqconn_params_from_url("amqp://fermata:secret@127.0.0.1:26720/", &p), 0);
  assert_string_equal(p.host, "127.0.0.1");
  assert_int_equal(p.port, 26720);
  assert_string_equal(p.user, "fermata");
  assert_string_equal(p.password, "secret");
  assert_string_equal(p.vhost, "/"); /* empty vhost means RabbitMQ's default */
  assert_int_equal(p.heartbeat_s, 30);
  assert_int_equal(p.connect_timeout_ms, 5000);
  assert_int_equal(p.rpc_timeout_ms, 10000);
  assert_null(p.log);
}

static void url_defaults_and_vhost(void **state) {
  (void)state;
  mqconn_params p;
  assert_int_equal(mqconn_params_from_url("amqp://broker", &p), 0);
  assert_string_equal(p.host, "broker");
  assert_int_equal(p.port, 5672);
  assert_string_equal(p.user, "guest");
  assert_string_equal(p.password, "guest");
  assert_string_equal(p.vhost, "/");
  assert_int_equal(mqconn_params_from_url("amqp://u:p@h:1/%2f", &p), 0);
  assert_string_equal(p.vhost, "/");
  assert_int_equal(mqconn_params_from_url("amqp://u:p%40x@h:1/songs", &p), 0);
  assert_string_equal(p.password, "p@x"); /* percent-decoded */
  assert_string_equal(p.vhost, "songs");
}

static void url_bad(void **state) {
  (void)state;
  mqconn_params p;
  assert_int_equal(mqconn_params_from_url(NULL, &p), MQCONN_ERR_INVALID);
  assert_int_equal(mqconn_params_from_url("amqp://h", NULL), MQCONN_ERR_INVALID);
  assert_int_equal(mqconn_params_from_url("http://h:1/", &p), MQCONN_ERR_INVALID);
  assert_int_equal(mqconn_params_from_url("amqps://h:0/", &p), MQCONN_ERR_INVALID);
  assert_int_equal(mqconn_params_from_url("amqps://h:70000/", &p), MQCONN_ERR_INVALID);
  assert_int_equal(mqconn_params_from_url("amqpx://h:1/", &p), MQCONN_ERR_INVALID);
  assert_int_equal(mqconn_params_from_url("amqp://h:notaport/", &p), MQCONN_ERR_INVALID);
  assert_int_equal(mqconn_params_from_url("", &p), MQCONN_ERR_INVALID);
  char longurl[2048];
  memset(longurl, 'a', sizeof longurl - 1);
  memcpy(longurl, "amqp://", 7);
  longurl[sizeof longurl - 1] = '\0';
  assert_int_equal(mqconn_params_from_url(longurl, &p), MQCONN_ERR_INVALID); /* capped, not truncated */
  char longhost[400];
  memset(longhost, 'h', sizeof longhost);
  memcpy(longhost, "amqp://", 7);
  memcpy(longhost + sizeof longhost - 4, ":1/", 4);
  assert_int_equal(mqconn_params_from_url(longhost, &p), MQCONN_ERR_INVALID); /* host > 255 */
}

static void url_tls(void **state) {
  (void)state;
  mqconn_params p;
  assert_int_equal(mqconn_params_from_url("amqps://fermata:s3cret@rabbitmq.example.internal:5671/%2f", &p), 0);
  assert_int_equal(p.tls, 1);
  assert_string_equal(p.host, "rabbitmq.example.internal");
  assert_int_equal(p.port, 5671);
  assert_string_equal(p.vhost, "/");
  assert_string_equal(p.tls_ca_file, ""); /* the system's CA store */
  assert_int_equal(mqconn_params_from_url("amqps://broker", &p), 0);
  assert_int_equal(p.port, 5671); /* amqps' default port */
  assert_int_equal(mqconn_params_from_url("amqp://broker", &p), 0);
  assert_int_equal(p.tls, 0);
}

/* Passwords holding URL delimiters arrive percent-encoded (deploy/compose and the k8s
 * Secret say so); the broker must see them decoded. */
static void url_userinfo_is_percent_decoded(void **state) {
  (void)state;
  mqconn_params p;
  assert_int_equal(mqconn_params_from_url("amqps://us%3Aer:p%40ss%2Fw%3Ard%25%23%3F@h:5671/v%2Fh", &p), 0);
  assert_string_equal(p.user, "us:er");
  assert_string_equal(p.password, "p@ss/w:rd%#?");
  assert_string_equal(p.vhost, "v/h");
  /* an unencoded "@" in the password splits at the last one in rabbitmq-c: the user must
   * encode; an unencoded "/" ends the authority and is refused */
  assert_int_equal(mqconn_params_from_url("amqp://u:pa/ss@h:1/", &p), MQCONN_ERR_INVALID);
}

/* AMQP_PASSWORD: the secret kept out of the URL, used as is (no decoding). */
static void password_replaces_the_urls(void **state) {
  (void)state;
  mqconn_params p;
  assert_int_equal(mqconn_params_from_url("amqp://fermata@h:1/", &p), 0);
  assert_int_equal(mqconn_set_password(&p, "p@ss/w:rd%41"), 0);
  assert_string_equal(p.password, "p@ss/w:rd%41");
  assert_string_equal(p.user, "fermata");
  assert_int_equal(mqconn_set_password(&p, ""), 0); /* unset: kept */
  assert_string_equal(p.password, "p@ss/w:rd%41");
  char longpw[200];
  memset(longpw, 'x', sizeof longpw - 1);
  longpw[sizeof longpw - 1] = '\0';
  assert_int_equal(mqconn_set_password(&p, longpw), MQCONN_ERR_INVALID);
}

static void ca_file_must_be_readable(void **state) {
  (void)state;
  mqconn_params p;
  assert_int_equal(mqconn_params_from_url("amqps://h", &p), 0);
  assert_int_equal(mqconn_set_ca_file(&p, "/nonexistent/ca.pem"), MQCONN_ERR_INVALID);
  assert_string_equal(p.tls_ca_file, "");
  char path[] = "/tmp/mqconn_test_ca_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(mqconn_set_ca_file(&p, path), 0);
  assert_string_equal(p.tls_ca_file, path);
  assert_int_equal(mqconn_set_ca_file(&p, ""), 0);
  assert_string_equal(p.tls_ca_file, "");
  char longpath[700];
  memset(longpath, 'a', sizeof longpath - 1);
  longpath[0] = '/';
  longpath[sizeof longpath - 1] = '\0';
  assert_int_equal(mqconn_set_ca_file(&p, longpath), MQCONN_ERR_INVALID);
  unlink(path);
}

/* Nothing listens on port 1: the open fails, leaves nothing allocated (ASan) and says why. */
static void open_fails_with_a_reason(void **state) {
  (void)state;
  for (int tls = 0; tls <= 1; tls++) {
    mqconn_params p;
    assert_int_equal(mqconn_params_from_url(tls ? "amqps://u:p@127.0.0.1:1/" : "amqp://u:p@127.0.0.1:1/", &p), 0);
    p.connect_timeout_ms = 500;
    amqp_connection_state_t c = NULL;
    const char *why = NULL;
    assert_int_equal(mqconn_open(&p, &c, &why), MQCONN_ERR_DOWN);
    assert_null(c);
    assert_non_null(why);
    assert_true(strlen(why) > 0);
    mqconn_drop(&c, 1); /* NULL is fine */
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(url_full),
      cmocka_unit_test(url_defaults_and_vhost),
      cmocka_unit_test(url_bad),
      cmocka_unit_test(url_tls),
      cmocka_unit_test(url_userinfo_is_percent_decoded),
      cmocka_unit_test(password_replaces_the_urls),
      cmocka_unit_test(ca_file_must_be_readable),
      cmocka_unit_test(open_fails_with_a_reason),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
