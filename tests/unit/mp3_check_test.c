/*
 * Unit tests for lib/mp3's incremental validator (mp3_check_*, lib/mp3/mp3_check.c):
 * the same verdict as mp3_validate on real lame-made files (tests/fuzz/corpus/mp3/) and
 * every cut of them, however split; verdicts as early as the bytes allow (a bad ID3v2
 * header at its tenth byte, junk after a 5 MB tag at the end of the junk window, long
 * before the end of the file); truncation found at the end; the latch; bad arguments.
 * The hand-built inputs of mp3_test.c go through the same split check there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mp3/mp3.h"
#include "mp3_fixture.h"

static const struct {
  const char *name;
  int verdict;
} corpus[] = {
    {"id3v1_only.mp3", MP3_OK},         {"id3v23_latin1.mp3", MP3_OK},        {"id3v23_utf16.mp3", MP3_OK},
    {"id3v24_utf8.mp3", MP3_OK},        {"mpeg1_cbr_stereo.mp3", MP3_OK},     {"mpeg25_cbr_info.mp3", MP3_OK},
    {"mpeg25_vbr_noxing.mp3", MP3_OK},  {"mpeg25_vbr_xing.mp3", MP3_OK},      {"mpeg2_cbr.mp3", MP3_OK},
    {"tag_only.mp3", MP3_ERR_NO_AUDIO}, {"truncated.mp3", MP3_ERR_TRUNCATED},
};

/* Feeds p[0..len) in chunks of 1..chunk bytes (varying); returns what end says. */
static int feed_chunked(const uint8_t *p, size_t len, size_t chunk) {
  mp3_check c;
  mp3_check_init(&c);
  for (size_t off = 0, i = 0; off < len; i++) {
    size_t k = 1 + (i * 7919) % chunk;
    if (k > len - off) k = len - off;
    (void)mp3_check_feed(&c, p + off, k);
    off += k;
  }
  assert_true(mp3_check_bytes(&c) == len);
  return mp3_check_end(&c);
}

static void test_corpus_every_split(void **state) {
  for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
    buf b;
    read_corpus(corpus[i].name, &b);
    print_message("%s: %zu bytes\n", corpus[i].name, b.len);
    assert_int_equal(validate_splits(b.p, b.len), corpus[i].verdict);
    free(b.p);
  }
}

/* Every cut of every real file (truncated uploads), fed in uneven chunks. */
static void test_corpus_every_cut(void **state) {
  int truncated = 0;
  for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
    buf b;
    read_corpus(corpus[i].name, &b);
    for (size_t len = 0; len <= b.len; len++) {
      int want = mp3_validate(b.p, len, NULL);
      truncated += want == MP3_ERR_TRUNCATED;
      assert_int_equal(feed_chunked(b.p, len, 13), want);
      assert_int_equal(feed_chunked(b.p, len, 1500), want);
    }
    free(b.p);
  }
  assert_true(truncated > 1000); /* most cuts land inside a frame */
}

/* A real file cut inside its last frame: every feed says OK, the end says TRUNCATED. */
static void test_truncation_found_at_end(void **state) {
  buf b;
  read_corpus("mpeg1_cbr_stereo.mp3", &b);
  mp3_check c;
  mp3_check_init(&c);
  for (size_t off = 0; off < b.len - 10; off += 100)
    assert_int_equal(mp3_check_feed(&c, b.p + off, off + 100 <= b.len - 10 ? 100 : b.len - 10 - off), MP3_OK);
  assert_int_equal(mp3_check_end(&c), MP3_ERR_TRUNCATED);
  assert_int_equal(mp3_check_feed(&c, b.p, 1), MP3_ERR_TRUNCATED);
  free(b.p);

  /* The same behind a 5 MB tag, after thousands of frames. */
  b = (buf){0};
  put_id3v2(&b, 3, 0, 5 << 20);
  put_frames(&b, HDR_V1, LEN_V1, 5000);
  assert_int_equal(feed_chunked(b.p, b.len - 1, 65536), MP3_ERR_TRUNCATED);
  assert_int_equal(feed_chunked(b.p, b.len, 65536), MP3_OK);
  free(b.p);
}

/* Feeds p[0..upto) in 64 KB chunks: none of them may fail. */
static void feed_ok(mp3_check *c, const uint8_t *p, size_t upto) {
  for (size_t off = 0; off < upto; off += 65536)
    assert_int_equal(mp3_check_feed(c, p + off, upto - off < 65536 ? upto - off : 65536), MP3_OK);
}

/* A 5 MB tag, then 10 MB of zeros: refused at the byte that ends the junk window. */
static void test_junk_refused_when_window_passed(void **state) {
  buf b = {0};
  put_id3v2(&b, 3, 0, 5 << 20);
  size_t audio = b.len;
  uint8_t *zeros = calloc(1, 10 << 20);
  assert_non_null(zeros);
  put(&b, zeros, 10 << 20);
  free(zeros);
  mp3_check c;
  mp3_check_init(&c);
  feed_ok(&c, b.p, audio + MP3_MAX_LEADING_JUNK); /* the last start tried is still to come */
  assert_int_equal(mp3_check_feed(&c, b.p + audio + MP3_MAX_LEADING_JUNK, 1), MP3_ERR_NO_AUDIO);
  assert_true(mp3_check_bytes(&c) == audio + MP3_MAX_LEADING_JUNK + 1);
  assert_int_equal(mp3_check_feed(&c, b.p + audio + MP3_MAX_LEADING_JUNK + 1, 100), MP3_ERR_NO_AUDIO);
  assert_int_equal(mp3_check_end(&c), MP3_ERR_NO_AUDIO);
  assert_int_equal(mp3_validate(b.p, b.len, NULL), MP3_ERR_NO_AUDIO);

  /* Without a tag: junk from the first byte, ENOTMP3 at byte MP3_MAX_LEADING_JUNK + 1.
   * A frame just inside the window still counts. */
  mp3_check_init(&c);
  feed_ok(&c, b.p + audio, MP3_MAX_LEADING_JUNK);
  assert_int_equal(mp3_check_feed(&c, b.p + audio, 1), MP3_ENOTMP3);
  buf late = {0};
  put(&late, b.p + audio, MP3_MAX_LEADING_JUNK);
  put_frames(&late, HDR_V1, LEN_V1, 3);
  assert_int_equal(feed_chunked(late.p, late.len, 4000), MP3_OK);
  memmove(late.p + 1, late.p, late.len - 1); /* one byte later: out of the window */
  assert_int_equal(feed_chunked(late.p, late.len, 4000), MP3_ENOTMP3);
  assert_int_equal(mp3_validate(late.p, late.len, NULL), MP3_ENOTMP3);
  free(late.p);
  free(b.p);
}

/* A bad ID3v2 header is refused at its tenth byte; cut before that, it is truncated. */
static void test_bad_tag_at_once(void **state) {
  buf b = {0};
  put_id3v2(&b, 3, 0, 1000);
  put_frames(&b, HDR_V1, LEN_V1, 3);
  b.p[3] = 5; /* unknown major version */
  mp3_check c;
  mp3_check_init(&c);
  assert_int_equal(mp3_check_feed(&c, b.p, 9), MP3_OK);
  assert_int_equal(mp3_check_feed(&c, b.p + 9, 1), MP3_ERR_BAD_TAG);
  assert_int_equal(mp3_check_feed(&c, b.p + 10, b.len - 10), MP3_ERR_BAD_TAG);
  assert_int_equal(mp3_check_end(&c), MP3_ERR_BAD_TAG);
  mp3_check_init(&c);
  assert_int_equal(mp3_check_feed(&c, b.p, 6), MP3_OK);
  assert_int_equal(mp3_check_end(&c), MP3_ERR_TRUNCATED);

  /* The second of two tags, bad: refused at its tenth byte too. */
  free(b.p);
  b = (buf){0};
  put_id3v2(&b, 4, 0, 3000);
  put_id3v2(&b, 3, 0, 10);
  b.p[3010 + 7] = 0x80; /* not syncsafe */
  mp3_check_init(&c);
  assert_int_equal(mp3_check_feed(&c, b.p, 3019), MP3_OK);
  assert_int_equal(mp3_check_feed(&c, b.p + 3019, 1), MP3_ERR_BAD_TAG);
  free(b.p);
}

/* Candidates that chain two frames and then break, over most of the junk window, before
 * the real chain: each needs the window to look ahead; the first real start wins. */
static void test_near_misses_then_audio(void **state) {
  buf b = {0};
  const uint8_t rate48k[4] = {0xFF, 0xFB, 0x94, 0x00};
  while (b.len < 60000) {
    put_frames(&b, HDR_V1, LEN_V1, 2);
    put_frames(&b, rate48k, 384, 1); /* another sample rate breaks the chain */
    put(&b, "\0", 1);
  }
  size_t audio = b.len;
  put_frames(&b, HDR_V1, LEN_V1, 3);
  put_id3v1(&b);
  assert_int_equal(validate_splits(b.p, b.len), MP3_OK);
  assert_int_equal(validate_splits(b.p, audio + 2 * LEN_V1 + 100), MP3_ERR_TRUNCATED);
  /* One frame and an ID3v1 tag that is not the last 128 bytes: no file. */
  free(b.p);
  b = (buf){0};
  put_frames(&b, HDR_V1, LEN_V1, 1);
  put_id3v1(&b);
  assert_int_equal(validate_splits(b.p, b.len), MP3_OK);
  put(&b, "x", 1);
  assert_int_equal(validate_splits(b.p, b.len), MP3_ENOTMP3);
  free(b.p);
}

static void test_bad_arguments(void **state) {
  mp3_check c;
  mp3_check_init(&c);
  mp3_check_init(NULL);
  assert_int_equal(mp3_check_feed(NULL, (const uint8_t *)"x", 1), MP3_ERR_INVALID);
  assert_int_equal(mp3_check_feed(&c, NULL, 5), MP3_ERR_INVALID);
  assert_true(mp3_check_bytes(&c) == 0);
  assert_int_equal(mp3_check_feed(&c, NULL, 0), MP3_OK);
  assert_int_equal(mp3_check_end(NULL), MP3_ERR_INVALID);
  assert_true(mp3_check_bytes(NULL) == 0);
  assert_int_equal(mp3_check_end(&c), MP3_ERR_EMPTY);
  assert_int_equal(mp3_check_feed(&c, (const uint8_t *)"x", 1), MP3_ERR_EMPTY); /* latched */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_corpus_every_split),      cmocka_unit_test(test_corpus_every_cut),
      cmocka_unit_test(test_truncation_found_at_end), cmocka_unit_test(test_junk_refused_when_window_passed),
      cmocka_unit_test(test_bad_tag_at_once),         cmocka_unit_test(test_near_misses_then_audio),
      cmocka_unit_test(test_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
