/* Unit tests of lib/s3 that need no server: names, URLs, SigV4 parameter, ranges, error
 * documents, classification, config validation, and a refused connection. The operations
 * against a real S3 server are tested by tests/system/test_s3_client.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "s3/s3.h"

static void test_bucket_names(void **state) {
  (void)state;
  assert_true(s3_valid_bucket_name("fermata-staging"));
  assert_true(s3_valid_bucket_name("abc"));
  assert_true(s3_valid_bucket_name("a.b-c.1"));
  assert_false(s3_valid_bucket_name(NULL));
  assert_false(s3_valid_bucket_name("ab"));
  assert_false(s3_valid_bucket_name("Upper"));
  assert_false(s3_valid_bucket_name("-start"));
  assert_false(s3_valid_bucket_name("end-"));
  assert_false(s3_valid_bucket_name("a..b"));
  assert_false(s3_valid_bucket_name("under_score"));
  assert_false(s3_valid_bucket_name("192.168.1.1"));
  assert_false(s3_valid_bucket_name("xn--abc"));
  assert_false(s3_valid_bucket_name("bucket-s3alias"));
  assert_false(s3_valid_bucket_name("a/b"));
  char long_name[70];
  memset(long_name, 'a', 64);
  long_name[64] = '\0';
  assert_false(s3_valid_bucket_name(long_name));
  long_name[63] = '\0';
  assert_true(s3_valid_bucket_name(long_name));
}

static void test_keys(void **state) {
  (void)state;
  assert_true(s3_valid_key("a"));
  assert_true(s3_valid_key("files/2024/abc-DEF_1.mp3"));
  assert_true(s3_valid_key("a~b"));
  assert_false(s3_valid_key(NULL));
  assert_false(s3_valid_key(""));
  assert_false(s3_valid_key("/lead"));
  assert_false(s3_valid_key("trail/"));
  assert_false(s3_valid_key("a//b"));
  assert_false(s3_valid_key("a/./b"));
  assert_false(s3_valid_key("a/../b"));
  assert_false(s3_valid_key(".."));
  assert_false(s3_valid_key("sp ace"));
  assert_false(s3_valid_key("q?x=1"));
  assert_false(s3_valid_key("pct%20"));
  assert_false(s3_valid_key("hash#"));
  assert_true(s3_valid_key("a/..b/c.")); /* dots inside a segment are fine */
}

static void test_sigv4_param(void **state) {
  (void)state;
  char buf[64];
  assert_int_equal(s3_sigv4_param("us-east-1", buf, sizeof buf), 0);
  assert_string_equal(buf, "aws:amz:us-east-1:s3");
  assert_int_equal(s3_sigv4_param("eu-central-1", buf, sizeof buf), 0);
  assert_string_equal(buf, "aws:amz:eu-central-1:s3");
  assert_int_equal(s3_sigv4_param("", buf, sizeof buf), S3_ERR_INVALID);
  assert_int_equal(s3_sigv4_param("us east", buf, sizeof buf), S3_ERR_INVALID);
  assert_int_equal(s3_sigv4_param("us:east", buf, sizeof buf), S3_ERR_INVALID);
  assert_int_equal(s3_sigv4_param("us-east-1", buf, 10), S3_ERR_INVALID);
}

static void test_url_build(void **state) {
  (void)state;
  char buf[256];
  assert_int_equal(s3_url_build("http://127.0.0.1:29000", "bkt", "a/b.mp3", buf, sizeof buf), 0);
  assert_string_equal(buf, "http://127.0.0.1:29000/bkt/a/b.mp3");
  assert_int_equal(s3_url_build("http://h:1/", "bkt", NULL, buf, sizeof buf), 0);
  assert_string_equal(buf, "http://h:1/bkt");
  assert_int_equal(s3_url_build("http://h:1//", "bkt", "k", buf, sizeof buf), 0);
  assert_string_equal(buf, "http://h:1/bkt/k");
  assert_int_equal(s3_url_build("http://h", "BAD", "k", buf, sizeof buf), S3_ERR_INVALID);
  assert_int_equal(s3_url_build("http://h", "bkt", "a b", buf, sizeof buf), S3_ERR_INVALID);
  assert_int_equal(s3_url_build("http://h", "bkt", "k", buf, 8), S3_ERR_NOMEM);
}

static void test_range_format(void **state) {
  (void)state;
  char buf[64];
  s3_range r = {.kind = S3_RANGE_FROM_TO, .first = 0, .last = 99};
  assert_int_equal(s3_range_format(&r, buf, sizeof buf), 0);
  assert_string_equal(buf, "bytes=0-99");
  r = (s3_range){.kind = S3_RANGE_FROM_TO, .first = 5, .last = 5};
  assert_int_equal(s3_range_format(&r, buf, sizeof buf), 0);
  assert_string_equal(buf, "bytes=5-5");
  r = (s3_range){.kind = S3_RANGE_FROM_TO, .first = 6, .last = 5};
  assert_int_equal(s3_range_format(&r, buf, sizeof buf), S3_ERR_INVALID);
  r = (s3_range){.kind = S3_RANGE_FROM, .first = 1000};
  assert_int_equal(s3_range_format(&r, buf, sizeof buf), 0);
  assert_string_equal(buf, "bytes=1000-");
  r = (s3_range){.kind = S3_RANGE_SUFFIX, .suffix_len = 500};
  assert_int_equal(s3_range_format(&r, buf, sizeof buf), 0);
  assert_string_equal(buf, "bytes=-500");
  r = (s3_range){.kind = S3_RANGE_SUFFIX, .suffix_len = 0};
  assert_int_equal(s3_range_format(&r, buf, sizeof buf), S3_ERR_INVALID);
  r = (s3_range){.kind = S3_RANGE_FROM_TO, .first = 0, .last = UINT64_MAX};
  assert_int_equal(s3_range_format(&r, buf, sizeof buf), 0);
  assert_string_equal(buf, "bytes=0-18446744073709551615");
  assert_int_equal(s3_range_format(&r, buf, 10), S3_ERR_INVALID);
}

static void test_content_range(void **state) {
  (void)state;
  uint64_t a, b, t;
  assert_int_equal(s3_content_range_parse("bytes 0-99/1000", &a, &b, &t), 0);
  assert_true(a == 0 && b == 99 && t == 1000);
  assert_int_equal(s3_content_range_parse("bytes 10-10/*\r\n", &a, &b, &t), 0);
  assert_true(a == 10 && b == 10 && t == 0);
  assert_int_equal(s3_content_range_parse("bytes 5-4/10", &a, &b, &t), S3_ERR_PROTOCOL);
  assert_int_equal(s3_content_range_parse("bytes */10", &a, &b, &t), S3_ERR_PROTOCOL);
  assert_int_equal(s3_content_range_parse("items 0-1/2", &a, &b, &t), S3_ERR_PROTOCOL);
  assert_int_equal(s3_content_range_parse("bytes 0-1/99999999999999999999", &a, &b, &t), S3_ERR_PROTOCOL);
  assert_int_equal(s3_content_range_parse(NULL, &a, &b, &t), S3_ERR_PROTOCOL);
}

static void test_error_parse(void **state) {
  (void)state;
  char code[32], msg[64];
  const char *moto =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n    "
      "<Code>NoSuchKey</Code>\n    <Message><![CDATA[The specified key does "
      "not exist.]]></Message>\n    <Key>nokey</Key>\n</Error>";
  assert_true(s3_error_parse(moto, strlen(moto), code, sizeof code, msg, sizeof msg));
  assert_string_equal(code, "NoSuchKey");
  assert_string_equal(msg, "The specified key does not exist.");

  const char *aws = "<Error><Code>SlowDown</Code><Message>Please\nreduce</Message></Error>";
  assert_true(s3_error_parse(aws, strlen(aws), code, sizeof code, msg, sizeof msg));
  assert_string_equal(code, "SlowDown");
  assert_string_equal(msg, "Please reduce"); /* one log line */

  const char *ok = "<CopyObjectResult><ETag>\"x\"</ETag></CopyObjectResult>";
  assert_false(s3_error_parse(ok, strlen(ok), code, sizeof code, msg, sizeof msg));
  assert_string_equal(code, "");

  /* truncated body (our capped buffer): still an error, no code */
  const char *cut = "<Error><Code>Internal";
  assert_true(s3_error_parse(cut, strlen(cut), code, sizeof code, msg, sizeof msg));
  assert_string_equal(code, "");

  /* long values are truncated, not overflowed; body need not be NUL-terminated */
  char big[300];
  int n = snprintf(big, sizeof big, "<Error><Code>%s</Code></Error>",
                   "AVeryLongCodeThatDoesNotFitInTheBufferAtAllxxxxxxxx");
  char small[8];
  assert_true(s3_error_parse(big, (size_t)n, small, sizeof small, msg, sizeof msg));
  assert_string_equal(small, "AVeryLo");
  assert_false(s3_error_parse("<Err", 4, code, sizeof code, msg, sizeof msg));
  assert_false(s3_error_parse(NULL, 0, code, sizeof code, msg, sizeof msg));
}

static void test_classify(void **state) {
  (void)state;
  assert_int_equal(s3_classify(200, NULL), S3_OK);
  assert_int_equal(s3_classify(206, ""), S3_OK);
  assert_int_equal(s3_classify(404, ""), S3_ERR_NOT_FOUND);
  assert_int_equal(s3_classify(404, "NoSuchBucket"), S3_ERR_NOT_FOUND);
  assert_int_equal(s3_classify(403, "SignatureDoesNotMatch"), S3_ERR_DENIED);
  assert_int_equal(s3_classify(507, "InsufficientStorage"), S3_ERR_NO_SPACE);
  assert_int_equal(s3_classify(404, "XAdminUserNotFound"), S3_ERR_DENIED);
  assert_int_equal(s3_classify(507, ""), S3_ERR_NO_SPACE);
  assert_int_equal(s3_classify(500, "InsufficientStorage"), S3_ERR_NO_SPACE);
  assert_int_equal(s3_classify(400, "AuthorizationHeaderMalformed"), S3_ERR_DENIED);
  assert_int_equal(s3_classify(401, NULL), S3_ERR_DENIED);
  assert_int_equal(s3_classify(503, "SlowDown"), S3_ERR_UNAVAILABLE);
  assert_int_equal(s3_classify(500, ""), S3_ERR_UNAVAILABLE);
  assert_int_equal(s3_classify(429, ""), S3_ERR_UNAVAILABLE);
  assert_int_equal(s3_classify(409, "BucketAlreadyExists"), S3_ERR_CONFLICT);
  assert_int_equal(s3_classify(409, "BucketAlreadyOwnedByYou"), S3_ERR_CONFLICT);
  assert_int_equal(s3_classify(416, "InvalidRange"), S3_ERR_RANGE);
  assert_int_equal(s3_classify(400, "InvalidArgument"), S3_ERR_PROTOCOL);
  assert_int_equal(s3_classify(301, ""), S3_ERR_PROTOCOL);
  assert_string_equal(s3_strerror(S3_ERR_UNAVAILABLE), "object store unavailable");
  assert_non_null(s3_strerror(12345));
}

static const s3_config good = {.endpoint = "http://127.0.0.1:1",
                               .region = "us-east-1",
                               .access_key = "test",
                               .secret_key = "test",
                               .connect_timeout_ms = 500,
                               .timeout_ms = 1000};

static void test_new_validates(void **state) {
  (void)state;
  s3_client *c = (s3_client *)&c;
  s3_config cfg = good;
  cfg.endpoint = "ftp://x";
  assert_int_equal(s3_new(&cfg, &c), S3_ERR_INVALID);
  assert_null(c);
  cfg.endpoint = "http://host:1/path";
  assert_int_equal(s3_new(&cfg, &c), S3_ERR_INVALID);
  cfg.endpoint = "http://";
  assert_int_equal(s3_new(&cfg, &c), S3_ERR_INVALID);
  cfg = good;
  cfg.secret_key = NULL;
  assert_int_equal(s3_new(&cfg, &c), S3_ERR_INVALID);
  cfg = good;
  cfg.region = "Bad Region";
  assert_int_equal(s3_new(&cfg, &c), S3_ERR_INVALID);
  cfg = good;
  cfg.endpoint = "http://h:1/";
  assert_int_equal(s3_new(&cfg, &c), 0);
  s3_free(c);
  s3_free(NULL);
}

/* Port 1 on loopback refuses at once: the transport error must come back as
 * S3_ERR_UNAVAILABLE with a log message, and invalid names must never reach the network. */
static void test_refused_is_unavailable(void **state) {
  (void)state;
  s3_client *c = NULL;
  assert_int_equal(s3_new(&good, &c), 0);
  s3_error e;
  assert_int_equal(s3_put(c, "bkt", "k", "x", 1, NULL, &e), S3_ERR_UNAVAILABLE);
  assert_int_equal(e.code, S3_ERR_UNAVAILABLE);
  assert_int_equal(e.http_status, 0);
  assert_non_null(strstr(e.message, "PUT /bkt/k"));
  bool ex = true;
  assert_int_equal(s3_bucket_exists(c, "bkt", &ex, &e), S3_ERR_UNAVAILABLE);
  assert_false(ex);
  assert_int_equal(s3_delete(c, "bkt", "k", &e), S3_ERR_UNAVAILABLE);
  assert_int_equal(s3_head(c, "bkt", "bad key", NULL, &e), S3_ERR_INVALID);
  assert_int_equal(s3_copy(c, "bkt", "a", "BAD", "b", &e), S3_ERR_INVALID);
  assert_int_equal(s3_create_bucket(c, "x", &e), S3_ERR_INVALID);
  /* a caller's hash must be 64 lowercase hex digits, else nothing is sent */
  const char *hx = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"; /* SHA-256 of "x" */
  assert_int_equal(s3_put_hashed(c, "bkt", "k", "x", 1, hx, NULL, &e), S3_ERR_UNAVAILABLE);
  assert_int_equal(s3_put_hashed(c, "bkt", "k", "x", 1, NULL, NULL, &e), S3_ERR_INVALID);
  assert_int_equal(s3_put_hashed(c, "bkt", "k", "x", 1, "2D711642", NULL, &e), S3_ERR_INVALID);
  assert_int_equal(s3_put_hashed(c, "bkt", "k", "x", 1,
                                 "2D711642B726B04401627CA9FBAC32F5C8530FB1903CC4DB02258717921A4881", NULL, &e),
                   S3_ERR_INVALID);
  assert_int_equal(s3_put_hashed(c, "bkt", "k", "x", 1,
                                 "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a488g", NULL, &e),
                   S3_ERR_INVALID);
  s3_free(c);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bucket_names),  cmocka_unit_test(test_keys),
      cmocka_unit_test(test_sigv4_param),   cmocka_unit_test(test_url_build),
      cmocka_unit_test(test_range_format),  cmocka_unit_test(test_content_range),
      cmocka_unit_test(test_error_parse),   cmocka_unit_test(test_classify),
      cmocka_unit_test(test_new_validates), cmocka_unit_test(test_refused_is_unavailable),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
