/* Unit tests of lib/b64url: RFC 4648 vectors, round trips of every length, and each way
 * strict decoding refuses input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "b64url/b64url.h"

static void check_pair(const char *plain, const char *enc) {
  char out[64];
  size_t n = 99;
  assert_int_equal(b64url_encode((const unsigned char *)plain, strlen(plain), out, sizeof out, &n), 0);
  assert_string_equal(out, enc);
  assert_int_equal(n, strlen(enc));
  unsigned char dec[64];
  assert_int_equal(b64url_decode(enc, strlen(enc), dec, sizeof dec, &n), 0);
  assert_int_equal(n, strlen(plain));
  assert_memory_equal(dec, plain, n);
}

static void test_rfc4648_vectors(void **state) {
  (void)state;
  check_pair("", "");
  check_pair("f", "Zg");
  check_pair("fo", "Zm8");
  check_pair("foo", "Zm9v");
  check_pair("foob", "Zm9vYg");
  check_pair("fooba", "Zm9vYmE");
  check_pair("foobar", "Zm9vYmFy");
  /* the two characters that differ from base64 */
  unsigned char b[] = {0xfb, 0xff};
  char out[8];
  assert_int_equal(b64url_encode(b, 2, out, sizeof out, NULL), 0);
  assert_string_equal(out, "-_8");
}

static void test_round_trip_all_lengths(void **state) {
  (void)state;
  unsigned char in[70], dec[70];
  char enc[100];
  for (size_t i = 0; i < sizeof in; i++) in[i] = (unsigned char)(i * 37 + 11);
  for (size_t len = 0; len <= sizeof in; len++) {
    size_t n = 0, m = 0;
    assert_int_equal(b64url_encode(in, len, enc, sizeof enc, &n), 0);
    assert_int_equal(n, b64url_encoded_len(len));
    assert_true(b64url_decoded_max(n) == len);
    assert_int_equal(b64url_decode(enc, n, dec, sizeof dec, &m), 0);
    assert_int_equal(m, len);
    assert_memory_equal(dec, in, len);
  }
}

static void expect_invalid(const char *s) {
  unsigned char dec[64];
  size_t n = 7;
  assert_int_equal(b64url_decode(s, strlen(s), dec, sizeof dec, &n), B64URL_ERR_INVALID);
  assert_int_equal(n, 0);
}

static void test_strictness(void **state) {
  (void)state;
  expect_invalid("Zg==");   /* padding */
  expect_invalid("Zm9v+A"); /* base64, not base64url */
  expect_invalid("Zm9v/A");
  expect_invalid("Zm 9v"); /* white space */
  expect_invalid("Zm9v\n");
  expect_invalid("Z"); /* 4k+1 characters */
  expect_invalid("Zm9vY");
  expect_invalid("Zh");      /* unused bits set: "Zg" is the only encoding of "f" */
  expect_invalid("Zm9");     /* "Zm8" is the only encoding of "fo" */
  expect_invalid("Zm\x80v"); /* a high byte */
  unsigned char dec[4];
  size_t n;
  assert_int_equal(b64url_decode("Zm\0v", 4, dec, sizeof dec, &n), B64URL_ERR_INVALID);
}

static void test_space(void **state) {
  (void)state;
  unsigned char dec[2];
  size_t n;
  assert_int_equal(b64url_decode("Zm9v", 4, dec, sizeof dec, &n), B64URL_ERR_SPACE);
  char out[4];
  assert_int_equal(b64url_encode((const unsigned char *)"foo", 3, out, sizeof out, &n),
                   B64URL_ERR_SPACE); /* needs 5 with the NUL */
  assert_int_equal(n, 0);
}

static void test_decode_alloc(void **state) {
  (void)state;
  unsigned char *p = NULL;
  size_t n = 0;
  assert_int_equal(b64url_decode_alloc("Zm9vYmFy", 8, 6, &p, &n), 0);
  assert_int_equal(n, 6);
  assert_string_equal((char *)p, "foobar"); /* NUL-terminated */
  free(p);
  assert_int_equal(b64url_decode_alloc("Zm9vYmFy", 8, 5, &p, &n), B64URL_ERR_SPACE);
  assert_null(p);
  assert_int_equal(b64url_decode_alloc("Zm9vYmF=", 8, 6, &p, &n), B64URL_ERR_INVALID);
  assert_null(p);
  assert_int_equal(n, 0);
  assert_int_equal(b64url_decode_alloc("", 0, 0, &p, &n), 0);
  assert_int_equal(n, 0);
  assert_string_equal((char *)p, "");
  free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc4648_vectors), cmocka_unit_test(test_round_trip_all_lengths),
      cmocka_unit_test(test_strictness),      cmocka_unit_test(test_space),
      cmocka_unit_test(test_decode_alloc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
