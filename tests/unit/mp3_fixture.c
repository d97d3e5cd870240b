/* mp3_fixture: see mp3_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp3/mp3.h"
#include "mp3_fixture.h"

const uint8_t HDR_V1[4] = {0xFF, 0xFB, 0x90, 0x00};
const uint8_t HDR_V2[4] = {0xFF, 0xF3, 0x80, 0x00};
const uint8_t HDR_V25[4] = {0xFF, 0xE3, 0x40, 0x00};

void put(buf *b, const void *data, size_t n) {
  b->p = realloc(b->p, b->len + n);
  assert_non_null(b->p);
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

void put_frames(buf *b, const uint8_t hdr[4], size_t frame_len, int count) {
  size_t n = frame_len * (size_t)count;
  b->p = realloc(b->p, b->len + n + 1); /* once: a realloc per frame is quadratic under ASan */
  assert_non_null(b->p);
  memset(b->p + b->len, 0, n);
  for (int i = 0; i < count; i++) memcpy(b->p + b->len + (size_t)i * frame_len, hdr, 4);
  b->len += n;
}

void put_id3v2_header(buf *b, int version, uint8_t flags, size_t size, const char magic[3]) {
  uint8_t h[10] = {(uint8_t)magic[0],
                   (uint8_t)magic[1],
                   (uint8_t)magic[2],
                   (uint8_t)version,
                   0,
                   flags,
                   (uint8_t)((size >> 21) & 0x7F),
                   (uint8_t)((size >> 14) & 0x7F),
                   (uint8_t)((size >> 7) & 0x7F),
                   (uint8_t)(size & 0x7F)};
  put(b, h, sizeof h);
}

void put_id3v2(buf *b, int version, uint8_t flags, size_t size) {
  put_id3v2_header(b, version, flags, size, "ID3");
  uint8_t *body = calloc(1, size + 1);
  assert_non_null(body);
  put(b, body, size);
  free(body);
  if (flags & 0x10) put_id3v2_header(b, version, flags, size, "3DI");
}

void put_id3v1(buf *b) {
  uint8_t tag[128] = {'T', 'A', 'G'};
  put(b, tag, sizeof tag);
}

void read_corpus(const char *name, buf *b) {
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/fuzz/corpus/mp3/%s", FERMATA_SOURCE_DIR, name);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  uint8_t chunk[4096];
  size_t n;
  *b = (buf){0};
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) put(b, chunk, n);
  fclose(f);
  assert_true(b->len > 0);
}

/* Feeds p[0..len) cut at k, checks what feed and end say against want. */
static void check_split(const uint8_t *p, size_t len, size_t k, int want) {
  mp3_check c;
  mp3_check_init(&c);
  int first = mp3_check_feed(&c, p, k);
  int second = mp3_check_feed(&c, p + k, len - k);
  if (first != MP3_OK) assert_int_equal(second, first); /* latched */
  if (second != MP3_OK) assert_int_equal(second, want); /* an early verdict is the final one */
  assert_int_equal(mp3_check_end(&c), want);
  assert_int_equal(mp3_check_end(&c), want);
  assert_int_equal(mp3_check_feed(&c, p, len), want);
  assert_true(mp3_check_bytes(&c) == 2 * (uint64_t)len);
}

int validate_splits(const uint8_t *p, size_t len) {
  int want = mp3_validate(p, len, NULL);
  size_t step = len <= 20000 ? 1 : len / 200;
  for (size_t k = 0; k <= len; k += step) check_split(p, len, k, want);
  check_split(p, len, len, want);

  mp3_check c;
  mp3_check_init(&c);
  int early = MP3_OK;
  for (size_t i = 0; i < len; i++) {
    int rc = mp3_check_feed(&c, p + i, 1);
    if (early != MP3_OK) assert_int_equal(rc, early);
    early = rc;
  }
  if (early != MP3_OK) assert_int_equal(early, want);
  assert_int_equal(mp3_check_end(&c), want);
  assert_true(mp3_check_bytes(&c) == len);
  return want;
}
