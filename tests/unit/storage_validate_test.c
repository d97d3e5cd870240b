/* Unit tests for services/storage/storage_validate.c: the field rules of POST /storages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "storage.h"

#define BUCKET_MSG                                                                           \
  "Bucket must be a valid S3 bucket name (3-63 characters: lowercase letters, digits, dots " \
  "and hyphens, starting and ending with a letter or digit)"

static json_t *valid(void) {
  return json_pack("{s:s, s:s, s:s}", "storageType", "PERMANENT", "bucket", "bucket-name", "path", "/files");
}

/* The message for `field` when validating body (consumed), "" when that field passed. */
static void expect_msg(json_t *body, const char *field, const char *want) {
  storage s;
  json_t *errs = storage_validate(body, &s);
  const char *got = errs ? json_string_value(json_object_get(errs, field)) : NULL;
  if (want == NULL) {
    assert_null(got);
  } else {
    assert_non_null(got);
    assert_string_equal(got, want);
  }
  json_decref(errs);
  json_decref(body);
}

static json_t *with(const char *field, json_t *value) {
  json_t *b = valid();
  json_object_set_new(b, field, value);
  return b;
}

static void accepts_valid_bodies(void **state) {
  (void)state;
  json_t *b = valid();
  storage s;
  assert_null(storage_validate(b, &s));
  assert_string_equal(s.type, "PERMANENT");
  assert_string_equal(s.bucket, "bucket-name");
  assert_string_equal(s.path, "/files");
  json_decref(b);
  const char *paths[] = {"/", "/files", "/a/b/c", "/A-z_0.9~", "/.hidden", "/a..b"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
    expect_msg(with("path", json_string(paths[i])), "path", NULL);
  const char *buckets[] = {"abc", "fermata-staging", "a.b.c", "0bucket9", "my.bucket-1"};
  for (size_t i = 0; i < sizeof buckets / sizeof buckets[0]; i++)
    expect_msg(with("bucket", json_string(buckets[i])), "bucket", NULL);
  expect_msg(with("storageType", json_string("STAGING")), "storageType", NULL);
  expect_msg(with("extra", json_string("ignored")), "extra", NULL);
}

static void missing_and_null_are_required(void **state) {
  (void)state;
  json_t *b = json_object();
  storage s;
  json_t *errs = storage_validate(b, &s);
  assert_non_null(errs);
  assert_int_equal(json_object_size(errs), 3);
  assert_string_equal(json_string_value(json_object_get(errs, "storageType")), "Storage type is required");
  assert_string_equal(json_string_value(json_object_get(errs, "bucket")), "Bucket is required");
  assert_string_equal(json_string_value(json_object_get(errs, "path")), "Path is required");
  assert_null(s.type);
  json_decref(errs);
  json_decref(b);
  expect_msg(with("storageType", json_null()), "storageType", "Storage type is required");
  expect_msg(with("bucket", json_null()), "bucket", "Bucket is required");
  expect_msg(with("path", json_null()), "path", "Path is required");
}

static void storage_type_is_exact(void **state) {
  (void)state;
  const char *bad[] = {"", "staging", "Permanent", "TEMP", " STAGING", "STAGING "};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect_msg(with("storageType", json_string(bad[i])), "storageType", "Storage type must be STAGING or PERMANENT");
  expect_msg(with("storageType", json_integer(1)), "storageType", "Storage type must be STAGING or PERMANENT");
  expect_msg(with("storageType", json_true()), "storageType", "Storage type must be STAGING or PERMANENT");
}

static void bucket_follows_s3_rules(void **state) {
  (void)state;
  char b64[65];
  memset(b64, 'a', 64);
  b64[64] = '\0';
  const char *bad[] = {"bucket_name", "Bucket",  "ab",          "",      b64,      "-abc", "abc-", "a..b",
                       "192.168.1.1", "xn--abc", "abc-s3alias", "a b c", "abc/def"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect_msg(with("bucket", json_string(bad[i])), "bucket", BUCKET_MSG);
  b64[63] = '\0';
  expect_msg(with("bucket", json_string(b64)), "bucket", NULL);
  expect_msg(with("bucket", json_integer(5)), "bucket", BUCKET_MSG);
  expect_msg(with("bucket", json_pack("[s]", "abc")), "bucket", BUCKET_MSG);
}

static void path_rules(void **state) {
  (void)state;
  expect_msg(with("path", json_string("files")), "path", "Path must start with /");
  expect_msg(with("path", json_string("")), "path", "Path must start with /");
  expect_msg(with("path", json_integer(1)), "path", "Path must start with /");
  expect_msg(with("path", json_object()), "path", "Path must start with /");
  const char *chars[] = {"/a b", "/a\tb", "/a\nb", "/caf\xc3\xa9", "/a?b", "/a%20b", "/a\\b"};
  for (size_t i = 0; i < sizeof chars / sizeof chars[0]; i++)
    expect_msg(with("path", json_string(chars[i])), "path",
               "Path may contain only letters, digits, '-', '_', '.', '~' and '/'");
  const char *segs[] = {"//", "/a//b", "/a/", "/.", "/..", "/a/../b", "/a/./b"};
  for (size_t i = 0; i < sizeof segs / sizeof segs[0]; i++)
    expect_msg(with("path", json_string(segs[i])), "path",
               "Path must not contain empty, '.' or '..' segments or end with /");
  char p200[202], p201[203];
  p200[0] = '/';
  memset(p200 + 1, 'x', 199);
  p200[200] = '\0';
  snprintf(p201, sizeof p201, "%sx", p200);
  expect_msg(with("path", json_string(p200)), "path", NULL);
  expect_msg(with("path", json_string(p201)), "path", "Path must be at most 200 characters");
}

static void every_failing_field_reported(void **state) {
  (void)state;
  json_t *b = json_pack("{s:s, s:s, s:s}", "storageType", "X", "bucket", "B", "path", "x");
  storage s;
  json_t *errs = storage_validate(b, &s);
  assert_non_null(errs);
  assert_int_equal(json_object_size(errs), 3);
  json_decref(errs);
  json_decref(b);
}

static void body_must_be_object(void **state) {
  (void)state;
  json_t *bodies[] = {json_array(), json_string("x"), json_integer(1), json_null()};
  for (size_t i = 0; i < 4; i++) expect_msg(bodies[i], "body", "Request body must be a JSON object");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accepts_valid_bodies),
      cmocka_unit_test(missing_and_null_are_required),
      cmocka_unit_test(storage_type_is_exact),
      cmocka_unit_test(bucket_follows_s3_rules),
      cmocka_unit_test(path_rules),
      cmocka_unit_test(every_failing_field_reported),
      cmocka_unit_test(body_must_be_object),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
