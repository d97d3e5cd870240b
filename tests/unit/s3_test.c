/* Unit tests of lib/s3 that need no server: names, URLs, SigV4 parameter, ranges, error
 * documents, classification, config validation, a refused connection, and the pure parts
 * of multipart uploads (query escaping, the CompleteMultipartUpload document, the Initiate /
 * CopyPart / ListMultipartUploads results), CRC32C, the aws-chunked size and our own
 * SigV4 signer (against AWS's published example). The operations
 * against a real S3 server are tested by tests/system/test_s3_client.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

static void test_query_escape(void **state) {
  (void)state;
  char buf[64];
  assert_int_equal(s3_query_escape("abc-DEF_1.2~", buf, sizeof buf), 0);
  assert_string_equal(buf, "abc-DEF_1.2~");
  assert_int_equal(s3_query_escape("a b/c+d=e&f", buf, sizeof buf), 0);
  assert_string_equal(buf, "a%20b%2Fc%2Bd%3De%26f"); /* uppercase hex, '/' escaped too */
  assert_int_equal(s3_query_escape("\xff\x01", buf, sizeof buf), 0);
  assert_string_equal(buf, "%FF%01");
  assert_int_equal(s3_query_escape("", buf, sizeof buf), 0);
  assert_string_equal(buf, "");
  assert_int_equal(s3_query_escape("abc", buf, 3), S3_ERR_NOMEM); /* no room for the NUL */
  assert_int_equal(s3_query_escape("a b", buf, 5), S3_ERR_NOMEM);
  assert_int_equal(s3_query_escape("a b", buf, 6), 0);
}

static void test_complete_xml(void **state) {
  (void)state;
  s3_part parts[3] = {{1, "\"aa\"", ""}, {2, "\"bb\"", "sOO8/Q=="}, {5, "\"cc-1\"", ""}};
  size_t cap = s3_complete_xml_cap(3), len = 0;
  char *buf = malloc(cap);
  assert_non_null(buf);
  assert_int_equal(s3_complete_xml(parts, 3, S3_CHECKSUM_CRC32C, buf, cap, &len), 0);
  assert_string_equal(buf,
                      "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                      "<Part><PartNumber>1</PartNumber><ETag>\"aa\"</ETag></Part>"
                      "<Part><PartNumber>2</PartNumber><ETag>\"bb\"</ETag>"
                      "<ChecksumCRC32C>sOO8/Q==</ChecksumCRC32C></Part>"
                      "<Part><PartNumber>5</PartNumber><ETag>\"cc-1\"</ETag></Part>"
                      "</CompleteMultipartUpload>");
  assert_int_equal(len, strlen(buf));
  assert_int_equal(s3_complete_xml(parts, 3, S3_CHECKSUM_CRC32C, buf, len, &len), S3_ERR_NOMEM); /* one short */
  assert_int_equal(s3_complete_xml(parts, 0, S3_CHECKSUM_CRC32C, buf, cap, &len), S3_ERR_INVALID);
  s3_part bad[2] = {{2, "\"a\"", ""}, {1, "\"b\"", ""}}; /* not ascending */
  assert_int_equal(s3_complete_xml(bad, 2, S3_CHECKSUM_CRC32C, buf, cap, &len), S3_ERR_INVALID);
  bad[0] = (s3_part){1, "\"a\"", ""};
  bad[1] = (s3_part){1, "\"b\"", ""}; /* duplicate */
  assert_int_equal(s3_complete_xml(bad, 2, S3_CHECKSUM_CRC32C, buf, cap, &len), S3_ERR_INVALID);
  bad[1] = (s3_part){2, "\"b</ETag>\"", ""}; /* would break the document */
  assert_int_equal(s3_complete_xml(bad, 2, S3_CHECKSUM_CRC32C, buf, cap, &len), S3_ERR_INVALID);
  bad[1] = (s3_part){2, "", ""};
  assert_int_equal(s3_complete_xml(bad, 2, S3_CHECKSUM_CRC32C, buf, cap, &len), S3_ERR_INVALID);
  bad[1] = (s3_part){S3_PART_MAX + 1, "\"b\"", ""};
  assert_int_equal(s3_complete_xml(bad, 2, S3_CHECKSUM_CRC32C, buf, cap, &len), S3_ERR_INVALID);
  bad[1] = (s3_part){2, "\"b\"", "ab<c"}; /* a checksum is base64 */
  assert_int_equal(s3_complete_xml(bad, 2, S3_CHECKSUM_CRC32C, buf, cap, &len), S3_ERR_INVALID);
  bad[1] = (s3_part){2, "\"b\"", "sOO8/Q=="}; /* and has an algorithm */
  assert_int_equal(s3_complete_xml(bad, 2, S3_CHECKSUM_NONE, buf, cap, &len), S3_ERR_INVALID);
  assert_int_equal(s3_complete_xml(bad, 2, S3_CHECKSUM_SHA256, buf, cap, &len), 0);
  assert_non_null(strstr(buf, "<ChecksumSHA256>sOO8/Q==</ChecksumSHA256>"));
  free(buf);
  /* the bound holds for the longest ETags and numbers */
  s3_part *many = calloc(S3_PART_MAX, sizeof *many);
  assert_non_null(many);
  for (int i = 0; i < S3_PART_MAX; i++) {
    many[i].number = i + 1;
    memset(many[i].etag, 'e', sizeof many[i].etag - 1);
    memset(many[i].checksum, 'A', sizeof many[i].checksum - 1);
  }
  cap = s3_complete_xml_cap(S3_PART_MAX);
  buf = malloc(cap);
  assert_non_null(buf);
  assert_int_equal(s3_complete_xml(many, S3_PART_MAX, S3_CHECKSUM_SHA256, buf, cap, &len), 0);
  assert_true(len < cap);
  free(buf);
  free(many);
}

static void test_initiate_parse(void **state) {
  (void)state;
  char id[S3_UPLOAD_ID_MAX];
  const char *ok =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult "
      "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>b</Bucket><Key>k</Key>"
      "<UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>"
      "</InitiateMultipartUploadResult>";
  assert_int_equal(s3_initiate_parse(ok, strlen(ok), id), 0);
  assert_string_equal(id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
  const char *amp = "<InitiateMultipartUploadResult><UploadId>a&amp;b&#46;c</UploadId></InitiateMultipartUploadResult>";
  assert_int_equal(s3_initiate_parse(amp, strlen(amp), id), 0);
  assert_string_equal(id, "a&b.c");
  const char *empty = "<InitiateMultipartUploadResult><UploadId></UploadId></InitiateMultipartUploadResult>";
  assert_int_equal(s3_initiate_parse(empty, strlen(empty), id), S3_ERR_PROTOCOL);
  const char *err = "<Error><Code>AccessDenied</Code><UploadId>x</UploadId></Error>";
  assert_int_equal(s3_initiate_parse(err, strlen(err), id), S3_ERR_PROTOCOL);
  char big[600];
  int n = snprintf(big, sizeof big, "<InitiateMultipartUploadResult><UploadId>%0300d</UploadId>", 7);
  assert_int_equal(s3_initiate_parse(big, (size_t)n, id), S3_ERR_PROTOCOL); /* too long: refused, not cut */
  assert_string_equal(id, "");
  assert_int_equal(s3_initiate_parse(NULL, 0, id), S3_ERR_PROTOCOL);
}

static void test_copy_part_parse(void **state) {
  (void)state;
  char etag[80];
  const char *aws =
      "<CopyPartResult><LastModified>2011-04-11T20:34:56.000Z</LastModified>"
      "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag></CopyPartResult>";
  assert_int_equal(s3_copy_part_parse(aws, strlen(aws), etag), 0);
  assert_string_equal(etag, "\"9b2cf535f27731c974343645a3985328\"");
  const char *none = "<CopyPartResult><LastModified>x</LastModified></CopyPartResult>";
  assert_int_equal(s3_copy_part_parse(none, strlen(none), etag), S3_ERR_PROTOCOL);
  const char *bad = "<CopyPartResult><ETag>&bogus;</ETag></CopyPartResult>";
  assert_int_equal(s3_copy_part_parse(bad, strlen(bad), etag), S3_ERR_PROTOCOL);
}

typedef struct seen {
  int n, stop_at;
  char keys[4][32], ids[4][32];
} seen;

static int collect(void *ud, const char *key, const char *id) {
  seen *s = ud;
  snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
  snprintf(s->ids[s->n], sizeof s->ids[0], "%s", id);
  s->n++;
  return s->stop_at && s->n >= s->stop_at;
}

static void test_list_uploads_parse(void **state) {
  (void)state;
  const char *page =
      "<?xml version=\"1.0\"?><ListMultipartUploadsResult><Bucket>b</Bucket>"
      "<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
      "<NextKeyMarker>b/2</NextKeyMarker><NextUploadIdMarker>id-2</NextUploadIdMarker>"
      "<MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>"
      "<Upload><Key>a/1</Key><UploadId>id-1</UploadId><Initiator><ID>x</ID></Initiator>"
      "<StorageClass>STANDARD</StorageClass></Upload>"
      "<Upload><Key>b&amp;2</Key><UploadId>id-2</UploadId></Upload>"
      "</ListMultipartUploadsResult>";
  seen s = {0};
  s3_list_next next;
  assert_int_equal(s3_list_uploads_parse(page, strlen(page), collect, &s, &next), 0);
  assert_int_equal(s.n, 2);
  assert_string_equal(s.keys[0], "a/1");
  assert_string_equal(s.ids[0], "id-1");
  assert_string_equal(s.keys[1], "b&2");
  assert_true(next.truncated);
  assert_string_equal(next.key_marker, "b/2");
  assert_string_equal(next.upload_id_marker, "id-2");

  s = (seen){.stop_at = 1};
  assert_int_equal(s3_list_uploads_parse(page, strlen(page), collect, &s, &next), S3_ERR_ABORTED);
  assert_int_equal(s.n, 1);

  const char *last = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>";
  s = (seen){0};
  assert_int_equal(s3_list_uploads_parse(last, strlen(last), collect, &s, &next), 0);
  assert_int_equal(s.n, 0);
  assert_false(next.truncated);

  const char *nomarker = "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated></ListMultipartUploadsResult>";
  assert_int_equal(s3_list_uploads_parse(nomarker, strlen(nomarker), collect, &s, &next), S3_ERR_PROTOCOL);
  const char *noid = "<ListMultipartUploadsResult><Upload><Key>k</Key></Upload></ListMultipartUploadsResult>";
  assert_int_equal(s3_list_uploads_parse(noid, strlen(noid), collect, &s, &next), S3_ERR_PROTOCOL);
  const char *cut = "<ListMultipartUploadsResult><Upload><Key>k</Key><UploadId>i</UploadId>";
  assert_int_equal(s3_list_uploads_parse(cut, strlen(cut), collect, &s, &next), S3_ERR_PROTOCOL);
  const char *other = "<ListBucketResult></ListBucketResult>";
  assert_int_equal(s3_list_uploads_parse(other, strlen(other), collect, &s, &next), S3_ERR_PROTOCOL);
}

static void test_crc32c_and_chunked_length(void **state) {
  (void)state;
  assert_int_equal(s3_crc32c(0, "123456789", 9), 0xE3069283u); /* the standard check value */
  assert_int_equal(s3_crc32c(0, "", 0), 0);
  /* continued in pieces (odd lengths, unaligned) gives the same */
  unsigned char buf[1000];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 7 + 3);
  uint32_t whole = s3_crc32c(0, buf, sizeof buf);
  uint32_t part = s3_crc32c(0, buf, 3);
  part = s3_crc32c(part, buf + 3, 500);
  part = s3_crc32c(part, buf + 503, sizeof buf - 503);
  assert_int_equal(whole, part);
  /* 100000 bytes: a 65536-byte chunk "10000\r\n..\r\n", a 34464-byte one "86a0\r\n..\r\n",
   * "0\r\n", "x-amz-checksum-crc32c:" + 8 base64 + "\r\n", "\r\n" */
  assert_int_equal(s3_chunked_length(100000, S3_CHECKSUM_CRC32C), 65536 + 9 + 34464 + 8 + 3 + 22 + 8 + 4);
  assert_int_equal(s3_chunked_length(0, S3_CHECKSUM_SHA256), 3 + 22 + 44 + 4);
  assert_int_equal(s3_chunked_length(65536, S3_CHECKSUM_CRC32C), 65536 + 9 + 3 + 22 + 8 + 4);
  assert_int_equal(s3_chunked_length(12345, S3_CHECKSUM_NONE), 12345);
}

/* AWS's GetObject example (S3 API reference, "Signature Calculations for the Authorization
 * Header: Transferring Payload in a Single Chunk"), headers given out of order. */
static void test_sigv4_authorization(void **state) {
  (void)state;
  const char *hdrs[] = {"x-amz-date:20130524T000000Z", "range:bytes=0-9", "host:examplebucket.s3.amazonaws.com",
                        "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"};
  char out[400];
  assert_int_equal(
      s3_sigv4_authorization("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1",
                             "20130524T000000Z", "GET", "/test.txt", NULL, hdrs, 4,
                             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", out, sizeof out),
      0);
  assert_string_equal(out,
                      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  /* names sharing a prefix sort by name, not by "name:value" (what curl 7.88 gets wrong) */
  const char *copy[] = {"host:h", "x-amz-copy-source-range:bytes=0-9", "x-amz-copy-source:/b/k",
                        "x-amz-date:20130524T000000Z"};
  assert_int_equal(s3_sigv4_authorization("AK", "SK", "us-east-1", "20130524T000000Z", "PUT", "/b/k2",
                                          "partNumber=1&uploadId=x", copy, 4, "UNSIGNED-PAYLOAD", out, sizeof out),
                   0);
  assert_non_null(strstr(out, "SignedHeaders=host;x-amz-copy-source;x-amz-copy-source-range;x-amz-date,"));
  assert_int_equal(
      s3_sigv4_authorization("AK", "SK", "us-east-1", "2013", "PUT", "/b", NULL, copy, 4, "x", out, sizeof out),
      S3_ERR_INVALID);
  assert_int_equal(
      s3_sigv4_authorization("AK", "SK", "us-east-1", "20130524T000000Z", "PUT", "/b", NULL, copy, 4, "x", out, 20),
      S3_ERR_NOMEM);
  char *long_query = malloc(5000);
  assert_non_null(long_query);
  memset(long_query, 'q', 4999);
  long_query[4999] = '\0';
  assert_int_equal(s3_sigv4_authorization("AK", "SK", "us-east-1", "20130524T000000Z", "GET", "/b", long_query, copy, 4,
                                          "x", out, sizeof out),
                   S3_ERR_INVALID); /* longer than the canonical request's buffer: refused, not cut */
  free(long_query);
}

static void test_classify_multipart(void **state) {
  (void)state;
  assert_int_equal(s3_classify(404, "NoSuchUpload"), S3_ERR_NOT_FOUND);
  assert_int_equal(s3_classify(400, "InvalidPart"), S3_ERR_INVALID);
  assert_int_equal(s3_classify(400, "InvalidPartOrder"), S3_ERR_INVALID);
  assert_int_equal(s3_classify(400, "EntityTooSmall"), S3_ERR_INVALID);
}

/* Nothing invalid reaches the network (port 1 refuses: an attempt would be UNAVAILABLE). */
static void test_multipart_arguments(void **state) {
  (void)state;
  s3_client *c = NULL;
  assert_int_equal(s3_new(&good, &c), 0);
  s3_error e;
  char id[S3_UPLOAD_ID_MAX];
  s3_part p;
  assert_int_equal(s3_mpu_create(c, "bkt", "k", NULL, id, &e), S3_ERR_UNAVAILABLE);
  assert_int_equal(s3_mpu_create(c, "bkt", "k", "text/plain\r\nX: y", id, &e), S3_ERR_INVALID);
  assert_int_equal(s3_mpu_put_part(c, "bkt", "k", "id", 0, NULL, NULL, 1, &p, &e), S3_ERR_INVALID);
  assert_int_equal(s3_mpu_abort(c, "bkt", "k", "", &e), S3_ERR_INVALID);
  assert_int_equal(s3_mpu_abort(c, "bkt", "k", "id", &e), S3_ERR_UNAVAILABLE);
  s3_part parts[2] = {{2, "\"a\"", ""}, {1, "\"b\"", ""}};
  assert_int_equal(s3_mpu_complete(c, "bkt", "k", "id", parts, 2, &e), S3_ERR_INVALID);
  assert_int_equal(s3_mpu_complete(c, "bkt", "k", "id", parts, 0, &e), S3_ERR_INVALID);
  assert_int_equal(s3_copy_part(c, "bkt", "a", "bkt", "b", "id", 1, 10, 9, &p, &e), S3_ERR_INVALID);
  assert_int_equal(s3_copy_sized(c, "bkt", "a", "bkt", "b", 100, 10, 0, &e), S3_ERR_INVALID);
  /* more than S3_PART_MAX pieces */
  assert_int_equal(s3_copy_sized(c, "bkt", "a", "bkt", "b", (uint64_t)S3_PART_MAX * 10 + 1, 10, 10, &e),
                   S3_ERR_INVALID);
  assert_int_equal(s3_copy_sized(c, "bkt", "a", "bkt", "b", 100, 10, 50, &e), S3_ERR_UNAVAILABLE);
  s3_config bad = good;
  bad.checksum = (s3_checksum)7;
  s3_client *c2 = NULL;
  assert_int_equal(s3_new(&bad, &c2), S3_ERR_INVALID);
  s3_free(c);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bucket_names),        cmocka_unit_test(test_keys),
      cmocka_unit_test(test_sigv4_param),         cmocka_unit_test(test_url_build),
      cmocka_unit_test(test_range_format),        cmocka_unit_test(test_content_range),
      cmocka_unit_test(test_error_parse),         cmocka_unit_test(test_classify),
      cmocka_unit_test(test_new_validates),       cmocka_unit_test(test_refused_is_unavailable),
      cmocka_unit_test(test_query_escape),        cmocka_unit_test(test_complete_xml),
      cmocka_unit_test(test_initiate_parse),      cmocka_unit_test(test_copy_part_parse),
      cmocka_unit_test(test_list_uploads_parse),  cmocka_unit_test(test_crc32c_and_chunked_length),
      cmocka_unit_test(test_sigv4_authorization), cmocka_unit_test(test_classify_multipart),
      cmocka_unit_test(test_multipart_arguments),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
