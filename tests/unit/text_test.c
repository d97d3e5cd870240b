#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "text/text.h"

static void counts_code_points(void **state) {
  (void)state;
  assert_int_equal(text_utf8_len(""), 0);
  assert_int_equal(text_utf8_len("abc"), 3);
  assert_int_equal(text_utf8_len("\xc3\xa9t\xc3\xa9"), 3);        /* été */
  assert_int_equal(text_utf8_len("\xe6\x97\xa5\xe6\x9c\xac"), 2); /* 日本 */
  assert_int_equal(text_utf8_len("\xf0\x9f\x8e\xb5"), 1);         /* 🎵 */
}

static void prefix_never_cuts_a_sequence(void **state) {
  (void)state;
  const char *s = "a\xc3\xa9\xf0\x9f\x8e\xb5z";
  assert_int_equal(text_utf8_prefix(s, 0), 0);
  assert_int_equal(text_utf8_prefix(s, 1), 1);
  assert_int_equal(text_utf8_prefix(s, 2), 3);
  assert_int_equal(text_utf8_prefix(s, 3), 7);
  assert_int_equal(text_utf8_prefix(s, 10), strlen(s));
}

static void validates_utf8(void **state) {
  (void)state;
  assert_true(text_utf8_valid("abc", 3));
  assert_true(text_utf8_valid("\xc3\xa9", 2));
  assert_false(text_utf8_valid("\xc3", 1));             /* truncated */
  assert_false(text_utf8_valid("\xc0\xaf", 2));         /* overlong */
  assert_false(text_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
  assert_false(text_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
  assert_false(text_utf8_valid("\xff", 1));
  assert_true(text_utf8_valid("\xf0\x9f\x8e\xb5", 4));
}

static void sanitize_replaces_bad_bytes(void **state) {
  (void)state;
  struct {
    const char *in;
    size_t len;
    const char *want;
  } cases[] = {
      {"abc", 3, "abc"},
      {"\xc3\xa9t\xc3\xa9", 5, "\xc3\xa9t\xc3\xa9"}, /* valid stays */
      {"\xff", 1, "\xef\xbf\xbd"},                   /* GET /songs/%ff */
      {"a\xff"
       "b",
       3,
       "a\xef\xbf\xbd"
       "b"},
      {"\xc3", 1, "\xef\xbf\xbd"},                                 /* truncated sequence */
      {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong '/' */
      {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
      {"", 0, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *out = text_utf8_sanitize(cases[i].in, cases[i].len);
    assert_non_null(out);
    assert_string_equal(out, cases[i].want);
    assert_true(text_utf8_valid(out, strlen(out)));
    free(out);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(counts_code_points),
      cmocka_unit_test(prefix_never_cuts_a_sequence),
      cmocka_unit_test(validates_utf8),
      cmocka_unit_test(sanitize_replaces_bad_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
