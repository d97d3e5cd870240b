/* Unit tests of lib/javanum: Float.toString and Double.toString as the JVM prints them
 * (the strings Java 17 prints for these values), the special values, and snprintf's return on
 * a short buffer. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "javanum/javanum.h"

static void test_float(void **state) {
  (void)state;
  char buf[JAVANUM_MAX];
  struct {
    float v;
    const char *s;
  } cases[] = {
      {-1.0f, "-1.0"},
      {50.0f, "50.0"},
      {100.0f / 3.0f, "33.333332"},
      {2.0f * 100.0f / 3.0f, "66.666664"},
      {0.0f, "0.0"},
      {-0.0f, "-0.0"},
      {12.5f, "12.5"},
      {1e7f, "1.0E7"},
      {9999999.0f, "9999999.0"},
      {0.001f, "0.001"},
      {0.0001f, "1.0E-4"},
      {123456.7f, "123456.7"},
      {100.0f, "100.0"},
      {0.1f, "0.1"},
      {3.4028235e38f, "3.4028235E38"},
      {-2.5e-7f, "-2.5E-7"},
      {NAN, "NaN"},
      {INFINITY, "Infinity"},
      {-INFINITY, "-Infinity"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int n = javanum_float(cases[i].v, buf, sizeof buf);
    assert_string_equal(buf, cases[i].s);
    assert_int_equal(n, (int)strlen(cases[i].s));
  }
}

static void test_double(void **state) {
  (void)state;
  char buf[JAVANUM_MAX];
  struct {
    double v;
    const char *s;
  } cases[] = {
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {1.0, "1.0"},
      {0.1, "0.1"},
      {100.0, "100.0"},
      {-2.5, "-2.5"},
      {123.456, "123.456"},
      {0.001, "0.001"},
      {1e-4, "1.0E-4"},
      {1e7, "1.0E7"},
      {9999999.0, "9999999.0"},
      {3e10, "3.0E10"},
      {0.0123, "0.0123"},
      {1.2345e-5, "1.2345E-5"},
      {1.7976931348623157e308, "1.7976931348623157E308"},
      {-1.7976931348623157e308, "-1.7976931348623157E308"},
      {NAN, "NaN"},
      {INFINITY, "Infinity"},
      {-INFINITY, "-Infinity"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int n = javanum_double(cases[i].v, buf, sizeof buf);
    assert_string_equal(buf, cases[i].s);
    assert_int_equal(n, (int)strlen(cases[i].s));
  }
}

static void test_short_buffer(void **state) {
  (void)state;
  char buf[4];
  assert_int_equal(javanum_float(33.333332f, buf, sizeof buf), 9);
  assert_string_equal(buf, "33.");
  assert_int_equal(javanum_double(1e-4, buf, sizeof buf), 6);
  assert_string_equal(buf, "1.0");
  assert_int_equal(javanum_double(0.5, NULL, 0), 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_float),
      cmocka_unit_test(test_double),
      cmocka_unit_test(test_short_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
