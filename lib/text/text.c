/* text: see text.h. */
#include "text.h"

#include <stdint.h>

size_t text_utf8_len(const char *s) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if ((*p & 0xC0) != 0x80) n++;
  return n;
}

size_t text_utf8_prefix(const char *s, size_t max_chars) {
  size_t chars = 0, i = 0;
  const unsigned char *p = (const unsigned char *)s;
  for (; p[i]; i++) {
    if ((p[i] & 0xC0) != 0x80) {
      if (chars == max_chars) break;
      chars++;
    }
  }
  return i;
}

bool text_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    unsigned char c = p[i];
    size_t need;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      need = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      need = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      need = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + need >= len) return false; /* sequence runs past the end */
    for (size_t k = 1; k <= need; k++) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += need + 1;
  }
  return true;
}
