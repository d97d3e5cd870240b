/*
 * libFuzzer target for lib/mp3: the upload validator, the extraction (libmpg123 over
 * memory) and the Song Service field rules, on arbitrary bytes.
 * Besides crashes and sanitizer reports, it aborts when an output breaks the contract:
 * the Song Service must accept whatever mp3_song_fields() produces, for any input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mp3/mp3.h"

/* 1..100 code points of valid UTF-8, no control characters, no edge spaces. */
static void check_text(const char *s) {
  size_t n = strlen(s), chars = 0;
  if (n == 0 || s[0] == ' ' || s[n - 1] == ' ') abort();
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (len == 0 || i + len > n || c < 0x20 || c == 0x7F) abort();
    for (size_t k = 1; k < len; k++)
      if (((unsigned char)s[i + k] & 0xC0) != 0x80) abort();
    i += len;
    chars++;
  }
  if (chars > SONGRULES_TEXT_MAX_CHARS) abort();
}

static void check_song(const mp3_song *s) {
  check_text(s->name);
  check_text(s->artist);
  check_text(s->album);
  /* the Song Service's own checks (lib/songrules), besides the independent ones here */
  if (!songrules_text_ok(s->name) || !songrules_text_ok(s->artist) || !songrules_text_ok(s->album) ||
      !songrules_year_ok(s->year) || !songrules_duration_ok(s->duration))
    abort();
  int year = atoi(s->year);
  if (strlen(s->year) != 4 || year < 1900 || year > 2099) abort();
  const char *d = s->duration;
  if (strlen(d) != 5 || d[2] != ':' || d[3] > '5') abort();
  for (int i = 0; i < 5; i++)
    if (i != 2 && (d[i] < '0' || d[i] > '9')) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *reason = NULL;
  int rc = mp3_validate(data, size, &reason);
  if (!reason || rc > 0 || rc < MP3_ERR_DECODE) abort();

  mp3_meta *meta = malloc(sizeof *meta);
  mp3_song song;
  if (!meta) return 0;
  (void)mp3_extract(data, size, meta);
  if (mp3_song_fields(meta, &song) != MP3_OK) abort();
  check_song(&song);
  free(meta);

  /* The text rule on the raw bytes, as if they were a tag value. */
  char *text = malloc(size + 1);
  char out[SONGRULES_TEXT_MAX_BYTES];
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  mp3_song_text(text, out, sizeof out);
  check_text(out);
  free(text);
  return 0;
}
