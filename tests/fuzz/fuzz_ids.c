/* Fuzzes path-id and CSV-id parsing: no crash, and every accepted id is in 1..INT32_MAX,
 * every accepted list has at most 101 distinct ids, every refusal has a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ids/ids.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  int32_t id;
  if (ids_parse(s, &id) == 0 && id <= 0) abort();
  ids_list l;
  char msg[512];
  msg[0] = '\0';
  if (ids_csv(s, &l, msg, sizeof msg) == 0) {
    if (l.n == 0 || l.n > 101) abort();
    for (size_t i = 0; i < l.n; i++)
      if (l.ids[i] <= 0) abort();
    ids_list_free(&l);
  } else if (!msg[0] || l.ids) {
    abort();
  }
  free(s);
  return 0;
}
