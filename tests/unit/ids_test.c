#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ids/ids.h"

static void path_ids(void **state) {
  (void)state;
  int32_t id;
  assert_int_equal(ids_parse("1", &id), 0);
  assert_int_equal(id, 1);
  assert_int_equal(ids_parse("2147483647", &id), 0);
  assert_int_equal(id, 2147483647);
  assert_int_equal(ids_parse("007", &id), 0);
  assert_int_equal(id, 7);
  const char *bad[] = {"", "0", "-1", "+1", "1.1", "ABC", "2147483648", "99999999999999999999", " 1", "1 ", "0x1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_int_equal(ids_parse(bad[i], &id), -1);
  assert_int_equal(ids_parse(NULL, &id), -1);
  char msg[128];
  ids_invalid_message("ABC", msg, sizeof msg);
  assert_string_equal(msg, "Invalid value 'ABC' for ID. Must be a positive integer");
}

static void csv_ok_dedup_in_order(void **state) {
  (void)state;
  ids_list l;
  char msg[256];
  assert_int_equal(ids_csv("3,1,3,2", &l, msg, sizeof msg), 0);
  assert_int_equal(l.n, 3);
  assert_int_equal(l.ids[0], 3);
  assert_int_equal(l.ids[1], 1);
  assert_int_equal(l.ids[2], 2);
  ids_list_free(&l);
  ids_list_free(&l); /* idempotent */
}

static void csv_errors(void **state) {
  (void)state;
  ids_list l;
  char msg[256];
  assert_int_equal(ids_csv("1,V,2", &l, msg, sizeof msg), -1);
  assert_string_equal(msg, "Invalid ID format: 'V'. Only positive integers are allowed");
  assert_null(l.ids);
  assert_int_equal(ids_csv("1,,2", &l, msg, sizeof msg), -1);
  assert_string_equal(msg, "Invalid ID format: ''. Only positive integers are allowed");
  assert_int_equal(ids_csv("", &l, msg, sizeof msg), -1);
  assert_int_equal(ids_csv("1,-2", &l, msg, sizeof msg), -1);
  assert_string_equal(msg, "Invalid ID format: '-2'. Only positive integers are allowed");
  assert_int_equal(ids_csv("2147483648", &l, msg, sizeof msg), -1);
  assert_int_equal(ids_csv(NULL, &l, msg, sizeof msg), -1);
  assert_string_equal(msg, "Required parameter 'id' is missing");
}

static void csv_length_boundary(void **state) {
  (void)state;
  char csv[300];
  ids_list l;
  char msg[256];
  /* exactly 200 characters: "1," * 99 + "12" */
  csv[0] = '\0';
  for (int i = 0; i < 99; i++) strcat(csv, "1,");
  strcat(csv, "12");
  assert_int_equal(strlen(csv), 200);
  assert_int_equal(ids_csv(csv, &l, msg, sizeof msg), 0);
  ids_list_free(&l);
  /* 208 characters */
  strcat(csv, ",3456789");
  assert_int_equal(strlen(csv), 208);
  assert_int_equal(ids_csv(csv, &l, msg, sizeof msg), -1);
  assert_string_equal(msg, "CSV string is too long: received 208 characters, maximum allowed is 200");
  /* characters, not bytes: 199 bytes of ASCII plus one 2-byte character = 200 characters */
  memset(csv, '1', 199);
  strcpy(csv + 199, "\xc3\xa9");
  assert_int_equal(ids_csv(csv, &l, msg, sizeof msg), -1);
  assert_true(strstr(msg, "Invalid ID format") != NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(path_ids),
      cmocka_unit_test(csv_ok_dedup_in_order),
      cmocka_unit_test(csv_errors),
      cmocka_unit_test(csv_length_boundary),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
