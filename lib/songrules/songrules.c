/* songrules: see songrules.h. */
#include "songrules.h"

#include <string.h>

#include "text/text.h"

static bool is_digits(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

bool songrules_id_ok(int64_t id) { return id > 0 && id <= INT32_MAX; }

bool songrules_text_ok(const char *s) {
  if (!s) return false;
  size_t n = text_utf8_len(s);
  return n >= 1 && n <= SONGRULES_TEXT_MAX_CHARS;
}

bool songrules_duration_ok(const char *s) {
  /* mm:ss, both with two digits, seconds 00-59 */
  return s && strlen(s) == 5 && is_digits(s, 2) && s[2] == ':' && is_digits(s + 3, 2) && s[3] <= '5';
}

bool songrules_year_ok(const char *s) {
  if (!s || strlen(s) != 4 || !is_digits(s, 4)) return false;
  int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
  return y >= SONGRULES_YEAR_MIN && y <= SONGRULES_YEAR_MAX;
}
