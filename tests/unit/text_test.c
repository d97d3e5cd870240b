#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "text.h"

static void counts_code_points(void **state) {
  (void)state;
  assert_int_equal(text_utf8_len(""), 0);
  assert_int_equal(text_utf8_len("abc"), 3);
  assert_int_equal(text_utf8_len("\xc3\xa9t\xc3\xa9"), 3);          /* été */
  assert_int_equal(text_utf8_len("\xe6\x97\xa5\xe6\x9c\xac"), 2);   /* 日本 */
  assert_int_equal(text_utf8_len("\xf0\x9f\x8e\xb5"), 1);           /* 🎵 */
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(counts_code_points),
      cmocka_unit_test(prefix_never_cuts_a_sequence),
      cmocka_unit_test(validates_utf8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
