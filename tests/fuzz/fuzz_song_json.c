/* Fuzzes the Song Service's request parsing: JSON decoding as lib/http does it, then the
 * contract's validation. Either the body is refused with field messages, or every field
 * handed to the database is within the rules.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "song.h"
#include "text/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_error_t err;
  json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
  if (!v) return 0;
  song s;
  json_t *errs = song_validate(v, &s);
  if (errs) {
    if (!json_is_object(errs) || json_object_size(errs) == 0) abort();
    json_decref(errs);
  } else {
    const char *texts[] = {s.name, s.artist, s.album};
    for (int i = 0; i < 3; i++) {
      size_t n = text_utf8_len(texts[i]);
      if (n < 1 || n > 100 || !text_utf8_valid(texts[i], strlen(texts[i]))) abort();
    }
    if (s.id <= 0 || strlen(s.duration) != 5 || strlen(s.year) != 4) abort();
  }
  json_decref(v);
  return 0;
}
