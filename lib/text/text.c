/* text: see text.h. */
#include "text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* Length of the well-formed UTF-8 sequence at p[i] (1-4), or 0 when it is not one (a stray
 * continuation byte, a truncated sequence, an overlong form, a surrogate, > U+10FFFF). */
static size_t seq_len(const unsigned char *p, size_t i, size_t len) {
  unsigned char c = p[i];
  size_t need;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    need = 1, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    need = 2, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    need = 3, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + need >= len) return 0; /* sequence runs past the end */
  for (size_t k = 1; k <= need; k++) {
    if ((p[i + k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i + k] & 0x3F);
  }
  if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return need + 1;
}

bool text_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0, n; i < len; i += n)
    if ((n = seq_len(p, i, len)) == 0) return false;
  return true;
}

char *text_utf8_sanitize(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  /* at worst every byte becomes the 3-byte U+FFFD */
  if (len > (SIZE_MAX - 1) / 3) return NULL;
  char *out = malloc(len * 3 + 1);
  if (out == NULL) return NULL;
  size_t o = 0;
  for (size_t i = 0, n; i < len; i += n) {
    n = seq_len(p, i, len);
    if (n == 0) {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      n = 1;
    } else {
      memcpy(out + o, s + i, n);
      o += n;
    }
  }
  out[o] = '\0';
  return out;
}
