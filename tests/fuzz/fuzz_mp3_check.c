/*
 * libFuzzer target for lib/mp3's incremental validator: on every input, mp3_check fed in
 * chunks of sizes drawn from the first two bytes (small, around a frame chain, around the
 * junk window) gives the verdict of one feed of the whole, which is mp3_validate's; an
 * early verdict from feed is the final one, and later calls repeat it; mp3_check_bytes
 * counts every byte. The file is the input after those two bytes.
 */
#include <stdint.h>
#include <stdlib.h>

#include "mp3/mp3.h"

static int one_shot(const uint8_t *p, size_t n) {
  mp3_check c;
  mp3_check_init(&c);
  int rc = mp3_check_feed(&c, p, n);
  int end = mp3_check_end(&c);
  if (rc != MP3_OK && end != rc) abort();
  return end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint32_t x = (uint32_t)data[0] << 8 | data[1] | 1u; /* xorshift state, never 0 */
  static const size_t max_chunk[4] = {3, 64, 4400, 70000};
  size_t cap = max_chunk[data[0] & 3];
  const uint8_t *p = data + 2;
  size_t n = size - 2;

  int want = one_shot(p, n);
  if (want != (n ? mp3_validate(p, n, NULL) : MP3_ERR_EMPTY)) abort();

  mp3_check c;
  mp3_check_init(&c);
  int early = MP3_OK;
  for (size_t off = 0; off < n;) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    size_t k = 1 + x % cap;
    if (k > n - off) k = n - off;
    int rc = mp3_check_feed(&c, p + off, k);
    if (early != MP3_OK && rc != early) abort(); /* latched */
    early = rc;
    off += k;
  }
  if (early != MP3_OK && early != want) abort();
  if (mp3_check_bytes(&c) != n) abort();
  if (mp3_check_end(&c) != want || mp3_check_end(&c) != want) abort();
  if (mp3_check_feed(&c, p, n) != want) abort();
  return 0;
}
