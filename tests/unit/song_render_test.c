/* Unit tests for services/song/song_render.c: GET /songs/{id}'s body, byte for byte as
 * lib/http writes it (the contract's field order, compact). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/http.h"
#include "song_render.h"

static void renders_the_contract_shape(void **state) {
  (void)state;
  song_row s = {.id = 7};
  strcpy(s.name, "We are the \"champions\"");
  strcpy(s.artist, "Queen");
  strcpy(s.album, "Caf\xC3\xA9 \xF0\x9F\x8E\xB5");
  strcpy(s.duration, "02:59");
  strcpy(s.year, "1977");
  json_t *o = song_render(&s);
  assert_non_null(o);
  char *text = http_json_dump(o);
  assert_string_equal(text,
                      "{\"id\":7,\"name\":\"We are the \\\"champions\\\"\",\"artist\":\"Queen\","
                      "\"album\":\"Caf\xC3\xA9 \xF0\x9F\x8E\xB5\",\"duration\":\"02:59\",\"year\":\"1977\"}");
  free(text);
  json_decref(o);
}

static void renders_the_largest_id(void **state) {
  (void)state;
  song_row s = {.id = 2147483647, .name = "a", .artist = "b", .album = "c", .duration = "99:59", .year = "2099"};
  json_t *o = song_render(&s);
  char *text = http_json_dump(o);
  assert_string_equal(text,
                      "{\"id\":2147483647,\"name\":\"a\",\"artist\":\"b\",\"album\":\"c\",\"duration\":\"99:59\","
                      "\"year\":\"2099\"}");
  free(text);
  json_decref(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(renders_the_contract_shape),
      cmocka_unit_test(renders_the_largest_id),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
