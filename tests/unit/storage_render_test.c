/* Unit tests for services/storage/storage_render.c: GET /storages's body, byte for byte as
 * lib/http writes it (the contract's field order, compact, rows in the order given). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/http.h"
#include "storage_render.h"

static char *render(const storage_row *rows, size_t n) {
  json_t *arr = storage_render_list(rows, n);
  assert_non_null(arr);
  char *text = http_json_dump(arr);
  json_decref(arr);
  return text;
}

static void renders_rows_in_order(void **state) {
  (void)state;
  storage_row rows[] = {
      {.id = 2, .type = "STAGING", .bucket = "staging-bucket", .path = "/files"},
      {.id = 1, .type = "PERMANENT", .bucket = "permanent.bucket", .path = "/"},
  };
  char *text = render(rows, 2);
  assert_string_equal(text,
                      "[{\"id\":2,\"storageType\":\"STAGING\",\"bucket\":\"staging-bucket\",\"path\":\"/files\"},"
                      "{\"id\":1,\"storageType\":\"PERMANENT\",\"bucket\":\"permanent.bucket\",\"path\":\"/\"}]");
  free(text);
}

static void renders_no_rows_as_an_empty_list(void **state) {
  (void)state;
  char *text = render(NULL, 0);
  assert_string_equal(text, "[]");
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(renders_rows_in_order),
      cmocka_unit_test(renders_no_rows_as_an_empty_list),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
