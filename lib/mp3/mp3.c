/*
 * mp3: validation of uploads, metadata extraction, and tags shaped to the Song Service's
 * field rules (lib/songrules).
 *
 * This file is the module's base: the error texts, the UTF-8 helpers the other parts share
 * (mp3_internal.h) and the Song Service field rules. The validator is mp3_check.c, the
 * extraction mp3_extract.c.
 *
 * Design (see mp3.h for the contract):
 * - The field rules work code point by code point on UTF-8 and write into fixed-size
 *   buffers sized for the worst case (SONGRULES_TEXT_MAX_BYTES: 100 code points x 4 bytes),
 *   so they cannot fail.
 */
#include "mp3.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mp3_internal.h"

/* ------------------------------------------------------------------------------------ */
/* Error texts: shown to uploaders in 400 bodies, so they name no library.              */

const char *mp3_strerror(int code) {
  switch (code) {
  case MP3_OK: return "ok";
  case MP3_ERR_EMPTY: return "The file is empty";
  case MP3_ENOTMP3: return "The file is not a valid MP3: no MPEG audio frames found";
  case MP3_ERR_TRUNCATED: return "The file is not a valid MP3: it is truncated";
  case MP3_ERR_NO_AUDIO: return "The file is not a valid MP3: it has a tag but no audio";
  case MP3_ERR_BAD_TAG: return "The file is not a valid MP3: malformed ID3 tag";
  case MP3_ERR_INVALID: return "Invalid argument";
  case MP3_ERR_NOMEM: return "Out of memory";
  case MP3_ERR_DECODE: return "The file has no decodable MP3 audio";
  case MP3_ERR_IO: return "The file could not be read";
  default: return "The file is not a valid MP3";
  }
}


/* ------------------------------------------------------------------------------------ */
/* UTF-8 helpers.                                                                       */


/* Decodes one code point from s[0..n) (n > 0). Invalid, overlong, surrogate or cut
 * sequences give U+FFFD and consume one byte, so decoding always advances. */
uint32_t mp3__utf8_next(const unsigned char *s, size_t n, size_t *used) {
  unsigned char c = s[0];
  uint32_t cp;
  size_t need;
  *used = 1;
  if (c < 0x80) return c;
  if (c >= 0xC2 && c <= 0xDF) {
    cp = c & 0x1F;
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    cp = c & 0x0F;
    need = 2;
  } else if (c >= 0xF0 && c <= 0xF4) {
    cp = c & 0x07;
    need = 3;
  } else {
    return MP3__REPLACEMENT_CHAR;
  }
  if (n - 1 < need) return MP3__REPLACEMENT_CHAR;
  for (size_t i = 1; i <= need; i++) {
    if ((s[i] & 0xC0) != 0x80) return MP3__REPLACEMENT_CHAR;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
    return MP3__REPLACEMENT_CHAR;
  *used = need + 1;
  return cp;
}

/* Writes cp as UTF-8 at out (4 bytes available); returns the byte count. */
size_t mp3__utf8_put(uint32_t cp, char *out) {
  unsigned char *o = (unsigned char *)out;
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | (cp >> 6));
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | (cp >> 12));
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | (cp >> 18));
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

bool mp3__utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0, used;
  while (i < n) {
    /* A literal U+FFFD in the input is valid; only decoding failures are not. */
    uint32_t cp = mp3__utf8_next(s + i, n - i, &used);
    if (cp == MP3__REPLACEMENT_CHAR && used == 1) return false;
    i += used;
  }
  return true;
}

/* ------------------------------------------------------------------------------------ */
/* Song Service field rules (documented in mp3.h; the limits are lib/songrules').       */

_Static_assert(SONGRULES_YEAR_MIN == 1900, "MP3_UNKNOWN_YEAR is the lowest year the Song Service accepts");

static bool is_control(uint32_t cp) {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0xFEFF /* BOM */;
}

void mp3_song_text(const char *in, char *out, size_t out_size) {
  if (!out || out_size == 0) return;
  size_t o = 0, keep = 0, n = in ? strlen(in) : 0;
  unsigned chars = 0;
  for (size_t i = 0, used; i < n; i += used) {
    uint32_t cp = mp3__utf8_next((const unsigned char *)in + i, n - i, &used);
    if (cp == '\t' || cp == '\n' || cp == '\r')
      cp = ' ';
    else if (is_control(cp))
      continue;
    if (cp == ' ' && chars == 0) continue; /* leading whitespace */
    if (chars == SONGRULES_TEXT_MAX_CHARS || out_size - o <= 4) break;
    o += mp3__utf8_put(cp, out + o);
    chars++;
    if (cp != ' ') keep = o; /* end of the last non-space: trailing spaces are dropped */
  }
  if (keep == 0) {
    snprintf(out, out_size, "%s", MP3_UNKNOWN_TEXT);
    return;
  }
  out[keep] = '\0';
}

void mp3_song_year(const char *in, char out[5]) {
  const char *s = in ? in : "";
  while (*s == ' ') s++;
  /* the first four characters, unless a fifth digit follows ("01977" is no year) */
  size_t n = strnlen(s, 5);
  bool ok = n == 4 || (n == 5 && !(s[4] >= '0' && s[4] <= '9'));
  if (ok) {
    memcpy(out, s, 4);
    out[4] = '\0';
    ok = songrules_year_ok(out);
  }
  if (!ok) memcpy(out, MP3_UNKNOWN_YEAR, 5);
}

void mp3_song_duration(double seconds, char out[6]) {
  const long cap = SONGRULES_DURATION_MAX_S;
  long total;
  if (!(seconds > 0)) /* also NaN */
    total = 0;
  else if (seconds >= (double)cap)
    total = cap;
  else
    total = (long)floor(seconds + 0.5);
  if (seconds > 0 && total == 0) total = 1;
  long min = total / 60, sec = total % 60; /* 0..99 and 0..59 by the cap above */
  out[0] = (char)('0' + min / 10);
  out[1] = (char)('0' + min % 10);
  out[2] = ':';
  out[3] = (char)('0' + sec / 10);
  out[4] = (char)('0' + sec % 10);
  out[5] = '\0';
}

int mp3_song_fields(const mp3_meta *meta, mp3_song *out) {
  if (!meta || !out) return MP3_ERR_INVALID;
  mp3_song_text(meta->title, out->name, sizeof out->name);
  mp3_song_text(meta->artist, out->artist, sizeof out->artist);
  mp3_song_text(meta->album, out->album, sizeof out->album);
  mp3_song_year(meta->year, out->year);
  mp3_song_duration(meta->duration_s, out->duration);
  return MP3_OK;
}
