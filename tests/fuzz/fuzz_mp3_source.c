/*
 * libFuzzer target for mp3_extract_source: on every input, a source that answers with
 * short reads (their length drawn from the first byte) gives exactly mp3_extract's result
 * and metadata; the same source failing at a call drawn from the second byte gives
 * MP3_ERR_IO with a zeroed meta, or (when extraction needs fewer calls) the same result
 * again. The file is the input after those two bytes. Leaks are the fuzzer's to report.
 * When the first byte's top bit is set, the file is made big-tagged instead: an ID3v2
 * header (version and flags from the second byte), the input's first bytes as its frames,
 * a 300 KB picture frame, then the rest of the input as the audio, so that the replacement
 * of big tags (lib/mp3/mp3_extract.c) walks fuzzed frames.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mp3/mp3.h"

typedef struct fuzz_source {
  const uint8_t *p;
  size_t len;
  size_t max_read;
  long fail_at_call; /* 0: never */
  long calls;
} fuzz_source;

static long fuzz_read_at(void *ud, uint64_t offset, void *dst, size_t cap) {
  fuzz_source *s = ud;
  if (++s->calls == s->fail_at_call) return -1;
  if (offset >= s->len) return 0;
  size_t n = s->len - (size_t)offset < cap ? s->len - (size_t)offset : cap;
  if (n > s->max_read) n = s->max_read;
  memcpy(dst, s->p + offset, n);
  return (long)n;
}

static bool same_meta(const mp3_meta *a, const mp3_meta *b) {
  return strcmp(a->title, b->title) == 0 && strcmp(a->artist, b->artist) == 0 && strcmp(a->album, b->album) == 0 &&
         strcmp(a->year, b->year) == 0 && a->duration_s == b->duration_s && a->sample_rate == b->sample_rate &&
         a->samples == b->samples && a->id3v2_version == b->id3v2_version && a->has_id3v1 == b->has_id3v1;
}

#define PICTURE (300u * 1024)

/* ID3v2 header, frames = p[0..k), a PICTURE-byte APIC frame, then p[k..n). */
static uint8_t *big_tagged(uint8_t param, const uint8_t *p, size_t n, size_t *len) {
  size_t k = n / 2, body = k + 10 + PICTURE;
  uint8_t *f = calloc(1, 10 + body + (n - k));
  if (!f) abort();
  const uint8_t h[10] = {'I',
                         'D',
                         '3',
                         (uint8_t)(2 + param % 3),
                         0,
                         (uint8_t)(param & 0xF0),
                         (uint8_t)((body >> 21) & 0x7F),
                         (uint8_t)((body >> 14) & 0x7F),
                         (uint8_t)((body >> 7) & 0x7F),
                         (uint8_t)(body & 0x7F)};
  const uint8_t apic[10] = {'A', 'P', 'I', 'C', 0, (uint8_t)(PICTURE >> 16), (uint8_t)(PICTURE >> 8), 0, 0, 0};
  memcpy(f, h, 10);
  memcpy(f + 10, p, k);
  memcpy(f + 10 + k, apic, 10);
  memcpy(f + 10 + body, p + k, n - k);
  *len = 10 + body + (n - k);
  return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  mp3_meta *want = malloc(sizeof *want), *got = malloc(sizeof *got), *zero = calloc(1, sizeof *zero);
  if (!want || !got || !zero) abort();
  fuzz_source s = {.p = data + 2, .len = size - 2, .max_read = 1 + (size_t)(data[0] & 0x7F) * 37};
  uint8_t *big = NULL;
  if (data[0] & 0x80) {
    big = big_tagged(data[1], data + 2, size - 2, &s.len);
    s.p = big;
    s.max_read *= 64;
  }
  mp3_source src = {.ud = &s, .size = s.len, .read_at = fuzz_read_at};

  int rc = mp3_extract(s.p, s.len, want);
  if (mp3_extract_source(&src, got) != rc || !same_meta(got, want)) abort();

  long calls = s.calls;
  s.calls = 0;
  s.fail_at_call = 1 + data[1] % (calls + 1);
  int frc = mp3_extract_source(&src, got);
  if (s.fail_at_call <= calls) {
    if (frc != MP3_ERR_IO || !same_meta(got, zero)) abort();
  } else if (frc != rc || !same_meta(got, want)) {
    abort();
  }
  free(big);
  free(want);
  free(got);
  free(zero);
  return 0;
}
