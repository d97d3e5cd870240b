#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "song.h"

static json_t *valid(void) {
  return json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "id", 1, "name", "We are the champions", "artist", "Queen",
                   "album", "News of the world", "duration", "02:59", "year", "1977");
}

static const char *msg_for(json_t *body, const char *field) {
  song s;
  json_t *errs = song_validate(body, &s);
  static char buf[256];
  buf[0] = '\0';
  if (errs) {
    const char *m = json_string_value(json_object_get(errs, field));
    snprintf(buf, sizeof buf, "%s", m ? m : "");
    json_decref(errs);
  }
  return buf;
}

static void accepts_the_contract_example(void **state) {
  (void)state;
  json_t *b = valid();
  song s;
  assert_null(song_validate(b, &s));
  assert_int_equal(s.id, 1);
  assert_string_equal(s.year, "1977");
  json_decref(b);
}

static void missing_fields_all_reported(void **state) {
  (void)state;
  json_t *b = json_object();
  song s;
  json_t *errs = song_validate(b, &s);
  assert_non_null(errs);
  assert_int_equal(json_object_size(errs), 6);
  assert_string_equal(json_string_value(json_object_get(errs, "id")), "ID is required");
  assert_string_equal(json_string_value(json_object_get(errs, "name")), "Song name is required");
  assert_string_equal(json_string_value(json_object_get(errs, "artist")), "Artist name is required");
  assert_string_equal(json_string_value(json_object_get(errs, "album")), "Album name is required");
  assert_string_equal(json_string_value(json_object_get(errs, "duration")), "Duration is required");
  assert_string_equal(json_string_value(json_object_get(errs, "year")), "Year is required");
  json_decref(errs);
  json_decref(b);
}

static void text_lengths_in_code_points(void **state) {
  (void)state;
  char s100[401] = "", s101[405] = "";
  for (int i = 0; i < 100; i++) strcat(s100, "\xe6\x97\xa5"); /* 100 x 日 = 300 bytes */
  strcpy(s101, s100);
  strcat(s101, "a");
  json_t *b = valid();
  json_object_set_new(b, "name", json_string(s100));
  assert_string_equal(msg_for(b, "name"), "");
  json_object_set_new(b, "name", json_string(s101));
  assert_string_equal(msg_for(b, "name"), "Song name must be between 1 and 100 characters");
  json_object_set_new(b, "name", json_string(""));
  assert_string_equal(msg_for(b, "name"), "Song name must be between 1 and 100 characters");
  json_object_set_new(b, "name", json_null());
  assert_string_equal(msg_for(b, "name"), "Song name is required");
  json_object_set_new(b, "name", json_integer(5));
  assert_string_equal(msg_for(b, "name"), "Song name must be between 1 and 100 characters");
  json_decref(b);
}

static void durations_and_years(void **state) {
  (void)state;
  json_t *b = valid();
  const char *good_d[] = {"00:00", "02:59", "99:59", "00:59"};
  const char *bad_d[] = {"02:77", "0299", "35", "2:59", "02:60", "02:5a", "002:59", " 02:59"};
  for (size_t i = 0; i < 4; i++) {
    json_object_set_new(b, "duration", json_string(good_d[i]));
    assert_string_equal(msg_for(b, "duration"), "");
  }
  for (size_t i = 0; i < 8; i++) {
    json_object_set_new(b, "duration", json_string(bad_d[i]));
    assert_string_equal(msg_for(b, "duration"), "Duration must be in mm:ss format with leading zeros");
  }
  const char *good_y[] = {"1900", "2099", "1977"};
  const char *bad_y[] = {"1899", "2100", "01977", "1", "19a7", ""};
  json_object_set_new(b, "duration", json_string("02:59"));
  for (size_t i = 0; i < 3; i++) {
    json_object_set_new(b, "year", json_string(good_y[i]));
    assert_string_equal(msg_for(b, "year"), "");
  }
  for (size_t i = 0; i < 6; i++) {
    json_object_set_new(b, "year", json_string(bad_y[i]));
    assert_string_equal(msg_for(b, "year"), "Year must be between 1900 and 2099");
  }
  json_object_set_new(b, "year", json_integer(1977));
  assert_string_equal(msg_for(b, "year"), "Year must be between 1900 and 2099");
  json_decref(b);
}

static void ids(void **state) {
  (void)state;
  json_t *b = valid();
  json_object_set_new(b, "id", json_integer(2147483648LL));
  assert_string_equal(msg_for(b, "id"), "ID must be a positive integer");
  json_object_set_new(b, "id", json_integer(0));
  assert_string_equal(msg_for(b, "id"), "ID must be a positive integer");
  json_object_set_new(b, "id", json_string("1"));
  assert_string_equal(msg_for(b, "id"), "ID must be a positive integer");
  json_object_set_new(b, "id", json_real(1.5));
  assert_string_equal(msg_for(b, "id"), "ID must be a positive integer");
  json_object_set_new(b, "id", json_integer(2147483647));
  assert_string_equal(msg_for(b, "id"), "");
  json_decref(b);
  json_t *arr = json_array();
  song s;
  json_t *errs = song_validate(arr, &s);
  assert_non_null(json_object_get(errs, "body"));
  json_decref(errs);
  json_decref(arr);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accepts_the_contract_example),
      cmocka_unit_test(missing_fields_all_reported),
      cmocka_unit_test(text_lengths_in_code_points),
      cmocka_unit_test(durations_and_years),
      cmocka_unit_test(ids),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
