/* Unit tests for lib/songrules: the Song Service's field limits, checks and messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "songrules/songrules.h"

static void ids(void **state) {
  (void)state;
  assert_false(songrules_id_ok(0));
  assert_false(songrules_id_ok(-1));
  assert_true(songrules_id_ok(1));
  assert_true(songrules_id_ok(INT32_MAX));
  assert_false(songrules_id_ok((int64_t)INT32_MAX + 1));
  assert_false(songrules_id_ok(INT64_MIN));
}

static void text_in_code_points(void **state) {
  (void)state;
  char s100[SONGRULES_TEXT_MAX_BYTES] = "", s101[SONGRULES_TEXT_MAX_BYTES + 4] = "";
  for (int i = 0; i < 100; i++) strcat(s100, "\xF0\x9F\x8E\xB5"); /* 100 x 4 bytes: the worst case fits */
  assert_int_equal(strlen(s100), SONGRULES_TEXT_MAX_BYTES - 1);
  assert_true(songrules_text_ok(s100));
  strcpy(s101, s100);
  strcat(s101, "a");
  assert_false(songrules_text_ok(s101));
  assert_true(songrules_text_ok("a"));
  assert_true(songrules_text_ok(" "));
  assert_false(songrules_text_ok(""));
  assert_false(songrules_text_ok(NULL));
}

static void durations(void **state) {
  (void)state;
  const char *good[] = {"00:00", "02:59", "99:59", "00:59", "59:00"};
  const char *bad[] = {"02:77", "0299", "35", "2:59", "02:60", "02:5a", "002:59", " 02:59", "02:59 ", "", "aa:bb"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) assert_true(songrules_duration_ok(good[i]));
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_false(songrules_duration_ok(bad[i]));
  assert_false(songrules_duration_ok(NULL));
  assert_int_equal(SONGRULES_DURATION_MAX_S, 99 * 60 + 59);
}

static void years(void **state) {
  (void)state;
  const char *good[] = {"1900", "1977", "2099"};
  const char *bad[] = {"1899", "2100", "0000", "199", "19999", "19a5", " 1977", "1977 ", "", "-1977"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) assert_true(songrules_year_ok(good[i]));
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_false(songrules_year_ok(bad[i]));
  assert_false(songrules_year_ok(NULL));
  assert_int_equal(SONGRULES_YEAR_MIN, 1900);
  assert_int_equal(SONGRULES_YEAR_MAX, 2099);
}

/* The contract's wording, to the letter (shared/spec/API.md, the POST /songs table). */
static void messages(void **state) {
  (void)state;
  assert_string_equal(SONGRULES_ID_MISSING, "ID is required");
  assert_string_equal(SONGRULES_ID_INVALID, "ID must be a positive integer");
  assert_string_equal(SONGRULES_NAME_MISSING, "Song name is required");
  assert_string_equal(SONGRULES_NAME_INVALID, "Song name must be between 1 and 100 characters");
  assert_string_equal(SONGRULES_ARTIST_MISSING, "Artist name is required");
  assert_string_equal(SONGRULES_ARTIST_INVALID, "Artist name must be between 1 and 100 characters");
  assert_string_equal(SONGRULES_ALBUM_MISSING, "Album name is required");
  assert_string_equal(SONGRULES_ALBUM_INVALID, "Album name must be between 1 and 100 characters");
  assert_string_equal(SONGRULES_DURATION_MISSING, "Duration is required");
  assert_string_equal(SONGRULES_DURATION_INVALID, "Duration must be in mm:ss format with leading zeros");
  assert_string_equal(SONGRULES_YEAR_MISSING, "Year is required");
  assert_string_equal(SONGRULES_YEAR_INVALID, "Year must be between 1900 and 2099");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ids),       cmocka_unit_test(text_in_code_points),
      cmocka_unit_test(durations), cmocka_unit_test(years),
      cmocka_unit_test(messages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
