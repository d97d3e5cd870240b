#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"

static void defaults_and_values(void **state) {
  (void)state;
  config_err e = {0};
  unsetenv("FM_T_X");
  assert_int_equal(config_int("FM_T_X", 42, 0, 100, &e), 42);
  setenv("FM_T_X", "7", 1);
  assert_int_equal(config_int("FM_T_X", 42, 0, 100, &e), 7);
  setenv("FM_T_X", "", 1);
  assert_string_equal(config_str("FM_T_X", "d"), "d");
  assert_string_equal(e.msg, "");
}

static void bad_values_are_reported(void **state) {
  (void)state;
  config_err e = {0};
  setenv("FM_T_X", "12abc", 1);
  assert_int_equal(config_int("FM_T_X", 5, 0, 100, &e), 5);
  assert_non_null(strstr(e.msg, "FM_T_X"));
  config_err e2 = {0};
  setenv("FM_T_X", "1000", 1);
  config_int("FM_T_X", 5, 0, 100, &e2);
  assert_non_null(strstr(e2.msg, "between 0 and 100"));
  config_err e3 = {0};
  setenv("FM_T_X", "maybe", 1);
  assert_true(config_bool("FM_T_X", true, &e3));
  assert_non_null(strstr(e3.msg, "boolean"));
}

static void durations(void **state) {
  (void)state;
  long long ms;
  assert_int_equal(config_parse_duration_ms("250ms", &ms), 0);
  assert_int_equal(ms, 250);
  assert_int_equal(config_parse_duration_ms("5s", &ms), 0);
  assert_int_equal(ms, 5000);
  assert_int_equal(config_parse_duration_ms("2m", &ms), 0);
  assert_int_equal(ms, 120000);
  assert_int_equal(config_parse_duration_ms("1500", &ms), 0);
  assert_int_equal(ms, 1500);
  assert_int_equal(config_parse_duration_ms("5x", &ms), -1);
  assert_int_equal(config_parse_duration_ms("-5s", &ms), -1);
  config_err e = {0};
  setenv("FM_T_D", "10s", 1);
  assert_int_equal(config_duration_ms("FM_T_D", 1, 0, 60000, &e), 10000);
  assert_true(config_bool("FM_T_NOPE", true, &e));
  setenv("FM_T_B", "OFF", 1);
  assert_false(config_bool("FM_T_B", true, &e));
  setenv("FM_T_F", "0.5", 1);
  assert_true(config_double("FM_T_F", 1, 0, 1, &e) == 0.5);
  assert_string_equal(e.msg, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults_and_values),
      cmocka_unit_test(bad_values_are_reported),
      cmocka_unit_test(durations),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
