/* Unit tests of lib/capbuf: appends up to the cap and not past it, growth that never
 * allocates more than cap + 1, the head mode, take and free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "capbuf/capbuf.h"

static void test_append_to_the_cap(void **state) {
  (void)state;
  capbuf b = capbuf_make(10);
  assert_null(b.buf);
  assert_int_equal(capbuf_append(&b, "hello", 5), CAPBUF_OK);
  assert_string_equal(b.buf, "hello");
  assert_int_equal(b.len, 5);
  assert_int_equal(b.alloc, 11); /* 4096 clipped to cap + 1 */
  assert_int_equal(capbuf_append(&b, "world", 5), CAPBUF_OK);
  assert_string_equal(b.buf, "helloworld");
  /* one byte past the cap: refused, and the buffer is freed */
  assert_int_equal(capbuf_append(&b, "!", 1), CAPBUF_ERR_FULL);
  assert_null(b.buf);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.cap, 10);
  capbuf_free(&b);
}

static void test_growth_doubles(void **state) {
  (void)state;
  capbuf b = capbuf_make(1u << 20);
  char chunk[1000];
  memset(chunk, 'x', sizeof chunk);
  for (int i = 0; i < 10; i++) assert_int_equal(capbuf_append(&b, chunk, sizeof chunk), CAPBUF_OK);
  assert_int_equal(b.len, 10000);
  assert_int_equal(b.alloc, 16384);
  assert_int_equal(strlen(b.buf), 10000);
  char *p = capbuf_take(&b);
  assert_null(b.buf);
  assert_int_equal(b.len, 0);
  free(p);
}

static void test_empty_append_allocates(void **state) {
  (void)state;
  capbuf b = capbuf_make(100);
  assert_int_equal(capbuf_append(&b, NULL, 0), CAPBUF_OK);
  assert_non_null(b.buf);
  assert_string_equal(b.buf, "");
  capbuf_free(&b);
  assert_null(b.buf);
  capbuf_free(NULL);
}

static void test_head_keeps_the_first_bytes(void **state) {
  (void)state;
  capbuf b = capbuf_make(8);
  assert_int_equal(capbuf_append_head(&b, "abcde", 5), CAPBUF_OK);
  assert_int_equal(capbuf_append_head(&b, "fghij", 5), CAPBUF_OK);
  assert_string_equal(b.buf, "abcdefgh");
  assert_int_equal(capbuf_append_head(&b, "klm", 3), CAPBUF_OK);
  assert_string_equal(b.buf, "abcdefgh");
  assert_int_equal(b.len, 8);
  capbuf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_append_to_the_cap),
      cmocka_unit_test(test_growth_doubles),
      cmocka_unit_test(test_empty_append_allocates),
      cmocka_unit_test(test_head_keeps_the_first_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
