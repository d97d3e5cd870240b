#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "range/range.h"

static void expect(const char *h, uint64_t size, range_result want, uint64_t f, uint64_t l) {
  uint64_t first = 999, last = 999;
  range_result got = range_parse(h, size, &first, &last);
  assert_int_equal(got, want);
  if (want == RANGE_PARTIAL) {
    assert_int_equal(first, f);
    assert_int_equal(last, l);
  }
}

static void single_ranges(void **state) {
  (void)state;
  expect("bytes=0-99", 1000, RANGE_PARTIAL, 0, 99);
  expect("bytes=100-", 1000, RANGE_PARTIAL, 100, 999);
  expect("bytes=-100", 1000, RANGE_PARTIAL, 900, 999);
  expect("bytes=-5000", 1000, RANGE_PARTIAL, 0, 999);
  expect("bytes=990-5000", 1000, RANGE_PARTIAL, 990, 999);
  expect("bytes=999-999", 1000, RANGE_PARTIAL, 999, 999);
  expect("Bytes = 1 - 2", 1000, RANGE_PARTIAL, 1, 2);
}

static void unsatisfiable(void **state) {
  (void)state;
  expect("bytes=1000-", 1000, RANGE_UNSATISFIABLE, 0, 0);
  expect("bytes=1000-2000", 1000, RANGE_UNSATISFIABLE, 0, 0);
  expect("bytes=-0", 1000, RANGE_UNSATISFIABLE, 0, 0);
  expect("bytes=0-0", 0, RANGE_UNSATISFIABLE, 0, 0);
}

static void ignored(void **state) {
  (void)state;
  expect(NULL, 1000, RANGE_NONE, 0, 0);
  expect("", 1000, RANGE_NONE, 0, 0);
  expect("items=0-1", 1000, RANGE_NONE, 0, 0);
  expect("bytes=0-1,5-6", 1000, RANGE_NONE, 0, 0);
  expect("bytes=5-1", 1000, RANGE_NONE, 0, 0);
  expect("bytes=-", 1000, RANGE_NONE, 0, 0);
  expect("bytes=a-b", 1000, RANGE_NONE, 0, 0);
  expect("bytes=1-2x", 1000, RANGE_NONE, 0, 0);
  expect("bytes=99999999999999999999-", 1000, RANGE_NONE, 0, 0);
  expect("bytes 0-1", 1000, RANGE_NONE, 0, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(single_ranges), cmocka_unit_test(unsatisfiable),
                                     cmocka_unit_test(ignored)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
