/* Fuzzes the Range header parser: any header, any size, the result must be consistent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "range/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 8) return 0;
  uint64_t objsize;
  memcpy(&objsize, data, 8);
  objsize %= (1ull << 40);
  char *h = malloc(size - 8 + 1);
  if (!h) return 0;
  memcpy(h, data + 8, size - 8);
  h[size - 8] = '\0';
  uint64_t first = 0, last = 0;
  range_result r = range_parse(h, objsize, &first, &last);
  if (r == RANGE_PARTIAL && !(first <= last && last < objsize)) abort();
  if (r == RANGE_UNSATISFIABLE && objsize > 0 && strchr(h, ',')) abort(); /* lists are ignored, never 416 */
  free(h);
  return 0;
}
