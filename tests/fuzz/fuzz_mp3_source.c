/*
 * libFuzzer target for mp3_extract_source: on every input, a source that answers with
 * short reads (their length drawn from the first byte) gives exactly mp3_extract's result
 * and metadata; the same source failing at a call drawn from the second byte gives
 * MP3_ERR_IO with a zeroed meta, or (when extraction needs fewer calls) the same result
 * again. The file is the input after those two bytes. Leaks are the fuzzer's to report.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  mp3_meta *want = malloc(sizeof *want), *got = malloc(sizeof *got), *zero = calloc(1, sizeof *zero);
  if (!want || !got || !zero) abort();
  fuzz_source s = {.p = data + 2, .len = size - 2, .max_read = 1 + (size_t)data[0] * 37};
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
  free(want);
  free(got);
  free(zero);
  return 0;
}
