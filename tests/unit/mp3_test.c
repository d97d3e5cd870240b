/*
 * Unit tests for lib/mp3: the validator on hand-built frame headers, the Song Service
 * field rules, and a replay of every fuzzer regression input (tests/fuzz/regressions/mp3/)
 * through mp3_validate + mp3_extract + mp3_song_fields. Every verdict of mp3_validate is
 * also checked against mp3_check fed in parts (mp3_fixture.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp3/mp3.h"
#include "mp3_fixture.h"


/* mp3_validate's verdict on b, the same from mp3_check however b is split. */
static int validate(const buf *b) {
  const char *reason = NULL;
  int rc = mp3_validate(b->p, b->len, &reason);
  assert_non_null(reason);
  assert_null(strstr(reason, "mpg123"));
  assert_int_equal(validate_splits(b->p, b->len), rc);
  return rc;
}

/* ---- mp3_validate ------------------------------------------------------------------ */

static void test_empty(void **state) {
  const char *reason = NULL;
  assert_int_equal(mp3_validate(NULL, 0, &reason), MP3_ERR_EMPTY);
  assert_string_equal(reason, "The file is empty");
  assert_int_equal(mp3_validate((const uint8_t *)"", 0, NULL), MP3_ERR_EMPTY);
}

static void test_frames_all_versions(void **state) {
  buf b = {0};
  put_frames(&b, HDR_V1, LEN_V1, 5);
  assert_int_equal(validate(&b), MP3_OK);
  free(b.p);
  b = (buf){0};
  put_frames(&b, HDR_V2, LEN_V2, 5);
  assert_int_equal(validate(&b), MP3_OK);
  free(b.p);
  b = (buf){0};
  put_frames(&b, HDR_V25, LEN_V25, 5);
  assert_int_equal(validate(&b), MP3_OK);
  free(b.p);
}

static void test_padding_bit_changes_length(void **state) {
  /* Frame 2 has the padding bit: 418 bytes. A validator ignoring padding would lose
     * the chain at frame 3. */
  const uint8_t padded[4] = {0xFF, 0xFB, 0x92, 0x00};
  buf b = {0};
  put_frames(&b, HDR_V1, LEN_V1, 1);
  put_frames(&b, padded, LEN_V1 + 1, 1);
  put_frames(&b, HDR_V1, LEN_V1, 2);
  assert_int_equal(validate(&b), MP3_OK);
  free(b.p);
}

static void test_short_file_whole(void **state) {
  buf b = {0};
  put_frames(&b, HDR_V1, LEN_V1, 1);
  assert_int_equal(validate(&b), MP3_OK); /* one complete frame is the whole file */
  put_id3v1(&b);
  assert_int_equal(validate(&b), MP3_OK);
  free(b.p);
}

static void test_truncated(void **state) {
  buf b = {0};
  put_frames(&b, HDR_V1, LEN_V1, 5);
  assert_int_equal(validate_splits(b.p, LEN_V1 + 100), MP3_ERR_TRUNCATED);   /* in frame 2 */
  assert_int_equal(validate_splits(b.p, 3), MP3_ERR_TRUNCATED);              /* in header 1 */
  assert_int_equal(validate_splits(b.p, 200), MP3_ERR_TRUNCATED);            /* in frame 1 */
  assert_int_equal(validate_splits(b.p, 5 * LEN_V1 - 1), MP3_ERR_TRUNCATED); /* last frame */
  assert_int_equal(validate_splits(b.p, 4 * LEN_V1 + 2), MP3_OK);            /* 2 stray bytes */
  free(b.p);
}

static void test_random_and_zeros(void **state) {
  uint8_t *r = malloc(100000);
  assert_non_null(r);
  uint32_t x = 12345;
  for (int seed = 0; seed < 20; seed++) {
    for (size_t i = 0; i < 100000; i++) {
      x = x * 1103515245u + 12345u + (uint32_t)seed;
      r[i] = (uint8_t)(x >> 24);
    }
    assert_int_not_equal(validate_splits(r, 100000), MP3_OK);
  }
  memset(r, 0, 100000);
  assert_int_equal(validate_splits(r, 100000), MP3_ENOTMP3);
  memset(r, 0xFF, 100000); /* all sync bits, but the bitrate index is 15: invalid */
  assert_int_equal(validate_splits(r, 100000), MP3_ENOTMP3);
  free(r);
}

static void test_id3v2_skipped(void **state) {
  buf b = {0};
  put_id3v2(&b, 3, 0, 300); /* 300 = 0x12C: syncsafe bytes 00 00 02 2C */
  assert_int_equal(b.p[8], 0x02);
  assert_int_equal(b.p[9], 0x2C);
  put_frames(&b, HDR_V1, LEN_V1, 4);
  assert_int_equal(validate(&b), MP3_OK);
  free(b.p);

  /* Large tag (a cover picture): size needs all four syncsafe bytes. */
  b = (buf){0};
  put_id3v2(&b, 4, 0, 300000);
  put_frames(&b, HDR_V1, LEN_V1, 4);
  assert_int_equal(validate(&b), MP3_OK);
  free(b.p);
}

static void test_id3v24_footer(void **state) {
  /* Footer flag set: the 10 footer bytes belong to the tag. Without them the tag is cut
     * (a validator ignoring the flag would call it "no audio" instead). */
  buf b = {0};
  put_id3v2(&b, 4, 0x10, 100);
  assert_int_equal(validate_splits(b.p, b.len - 10), MP3_ERR_TRUNCATED);
  assert_int_equal(validate_splits(b.p, b.len), MP3_ERR_NO_AUDIO);
  put_frames(&b, HDR_V1, LEN_V1, 3);
  assert_int_equal(validate(&b), MP3_OK);
  free(b.p);
}

static void test_two_tags_and_padding(void **state) {
  buf b = {0};
  put_id3v2(&b, 3, 0, 50);
  put_id3v2(&b, 4, 0, 50);
  uint8_t zeros[2000] = {0}; /* padding beyond the declared size */
  put(&b, zeros, sizeof zeros);
  put_frames(&b, HDR_V1, LEN_V1, 3);
  assert_int_equal(validate(&b), MP3_OK);
  free(b.p);
}

static void test_id3_without_audio(void **state) {
  buf b = {0};
  put_id3v2(&b, 3, 0, 1000);
  assert_int_equal(validate(&b), MP3_ERR_NO_AUDIO);
  uint8_t junk[500] = {0};
  put(&b, junk, sizeof junk);
  assert_int_equal(validate(&b), MP3_ERR_NO_AUDIO);
  free(b.p);
}

static void test_id3_bad_or_cut(void **state) {
  buf b = {0};
  put_id3v2(&b, 3, 0, 1000);
  put_frames(&b, HDR_V1, LEN_V1, 3);
  assert_int_equal(validate_splits(b.p, 500), MP3_ERR_TRUNCATED); /* cut inside the tag */
  assert_int_equal(validate_splits(b.p, 6), MP3_ERR_TRUNCATED);   /* cut in its header */
  b.p[7] |= 0x80;                                                 /* not syncsafe */
  assert_int_equal(validate_splits(b.p, b.len), MP3_ERR_BAD_TAG);
  b.p[7] &= 0x7F;
  b.p[3] = 5; /* unknown major version */
  assert_int_equal(validate_splits(b.p, b.len), MP3_ERR_BAD_TAG);
  free(b.p);
}

static void test_not_layer3_or_inconsistent(void **state) {
  const uint8_t layer2[4] = {0xFF, 0xFD, 0x90, 0x00};
  const uint8_t free_format[4] = {0xFF, 0xFB, 0x00, 0x00};
  const uint8_t rate48k[4] = {0xFF, 0xFB, 0x94, 0x00}; /* 384 bytes at 48 kHz */
  buf b = {0};
  put_frames(&b, layer2, 417, 5);
  assert_int_equal(validate(&b), MP3_ENOTMP3);
  free(b.p);
  b = (buf){0};
  put_frames(&b, free_format, 417, 5);
  assert_int_equal(validate(&b), MP3_ENOTMP3);
  free(b.p);
  b = (buf){0};
  put_frames(&b, HDR_V1, LEN_V1, 1);
  put_frames(&b, rate48k, 384, 1);
  put_frames(&b, HDR_V1, LEN_V1, 3);
  /* The first chain breaks at frame 2; a later one (from frame 3) is a valid start. */
  assert_int_equal(validate(&b), MP3_OK);
  assert_int_equal(validate_splits(b.p, LEN_V1 + 384 + 10), MP3_ENOTMP3);
  free(b.p);
}

static void test_trailing_junk_and_tags(void **state) {
  buf b = {0};
  put_frames(&b, HDR_V1, LEN_V1, 5);
  put(&b, "APETAGEX and some junk", 22);
  put_id3v1(&b);
  assert_int_equal(validate(&b), MP3_OK);
  free(b.p);
}

static void test_strerror(void **state) {
  for (int c = 0; c >= -10; c--) assert_non_null(mp3_strerror(c));
  assert_string_equal(mp3_strerror(MP3_ERR_TRUNCATED), "The file is not a valid MP3: it is truncated");
}

/* ---- mp3_extract on hand-built input ------------------------------------------------ */

static void test_extract_bad_input(void **state) {
  mp3_meta m;
  assert_int_equal(mp3_extract(NULL, 0, &m), MP3_ERR_EMPTY);
  assert_int_equal(mp3_extract(NULL, 5, &m), MP3_ERR_INVALID);
  assert_int_equal(mp3_extract((const uint8_t *)"x", 1, NULL), MP3_ERR_INVALID);
  uint8_t zeros[5000] = {0};
  assert_int_equal(mp3_extract(zeros, sizeof zeros, &m), MP3_ERR_DECODE);
  assert_string_equal(m.title, "");
}

static void test_extract_silent_frames(void **state) {
  /* 38 frames of 1152 samples at 44.1 kHz = 0.993 s. */
  buf b = {0};
  put_frames(&b, HDR_V1, LEN_V1, 38);
  mp3_meta m;
  assert_int_equal(mp3_extract(b.p, b.len, &m), MP3_OK);
  assert_int_equal(m.sample_rate, 44100);
  assert_int_equal(m.samples, 38 * 1152);
  mp3_song s;
  assert_int_equal(mp3_song_fields(&m, &s), MP3_OK);
  assert_string_equal(s.duration, "00:01");
  assert_string_equal(s.name, "Unknown");
  assert_string_equal(s.year, "1900");
  free(b.p);
}

/* Several messages are processed at once: extraction must not share state. */
static void *extract_worker(void *arg) {
  const buf *b = arg;
  for (int i = 0; i < 20; i++) {
    mp3_meta m;
    if (mp3_extract(b->p, b->len, &m) != MP3_OK || m.samples != 38 * 1152) return (void *)1;
  }
  return NULL;
}

static void test_extract_concurrent(void **state) {
  buf b = {0};
  put_frames(&b, HDR_V1, LEN_V1, 38);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&t[i], NULL, extract_worker, &b), 0);
  for (int i = 0; i < 4; i++) {
    void *res = (void *)1;
    assert_int_equal(pthread_join(t[i], &res), 0);
    assert_null(res);
  }
  free(b.p);
}

/* ---- field rules ------------------------------------------------------------------- */

static void text_is(const char *in, const char *want) {
  char out[SONGRULES_TEXT_MAX_BYTES];
  mp3_song_text(in, out, sizeof out);
  assert_string_equal(out, want);
}

static size_t utf8_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

static void test_text_basic(void **state) {
  text_is(NULL, "Unknown");
  text_is("", "Unknown");
  text_is("   \t ", "Unknown");
  text_is("\x01\x02", "Unknown");
  text_is("  We are the champions \t", "We are the champions");
  text_is("a\nb\r\nc", "a b  c");
  text_is(
      "a\x01"
      "b\x7f"
      "c",
      "abc");
  text_is("\xEF\xBB\xBFQueen", "Queen"); /* BOM */
  text_is("Caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8E\xB5", "Caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8E\xB5");
  text_is(
      "a\xFF"
      "b",
      "a\xEF\xBF\xBD"
      "b");                                                        /* invalid byte -> U+FFFD */
  text_is("a\xC3", "a\xEF\xBF\xBD");                               /* cut sequence */
  text_is("\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD");                 /* overlong */
  text_is("\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* surrogate */
  text_is("x\xC2\x85y", "xy");                                     /* C1 control */
}

static void test_text_truncation(void **state) {
  char in[1000], out[SONGRULES_TEXT_MAX_BYTES];
  memset(in, 'a', 150);
  in[150] = '\0';
  mp3_song_text(in, out, sizeof out);
  assert_int_equal(strlen(out), 100);

  /* 150 x "é" (2 bytes): 100 characters, 200 bytes. */
  in[0] = '\0';
  for (int i = 0; i < 150; i++) strcat(in, "\xC3\xA9");
  mp3_song_text(in, out, sizeof out);
  assert_int_equal(utf8_chars(out), 100);
  assert_int_equal(strlen(out), 200);

  /* 99 ASCII then a 4-byte emoji then more: the emoji is character 100, kept whole. */
  memset(in, 'b', 99);
  strcpy(in + 99,
         "\xF0\x9F\x8E\xB5"
         "cdef");
  mp3_song_text(in, out, sizeof out);
  assert_int_equal(utf8_chars(out), 100);
  assert_memory_equal(out + 99, "\xF0\x9F\x8E\xB5", 5);

  /* 100 x 4-byte characters fill the buffer exactly. */
  in[0] = '\0';
  for (int i = 0; i < 120; i++) strcat(in, "\xF0\x9F\x8E\xB5");
  mp3_song_text(in, out, sizeof out);
  assert_int_equal(utf8_chars(out), 100);
  assert_int_equal(strlen(out), 400);

  /* A cut that lands after a space: trailing space stripped again. */
  memset(in, 'c', 99);
  strcpy(in + 99, " d");
  mp3_song_text(in, out, sizeof out);
  assert_int_equal(strlen(out), 99);

  /* Leading spaces do not count. */
  memset(in, ' ', 10);
  memset(in + 10, 'e', 100);
  in[110] = '\0';
  mp3_song_text(in, out, sizeof out);
  assert_int_equal(strlen(out), 100);
  assert_int_equal(out[0], 'e');

  /* A small output buffer is never overrun and stays valid UTF-8. */
  char small[6];
  mp3_song_text("\xC3\xA9\xC3\xA9\xC3\xA9", small, sizeof small);
  assert_string_equal(small, "\xC3\xA9");
}

static void year_is(const char *in, const char *want) {
  char out[5];
  mp3_song_year(in, out);
  assert_string_equal(out, want);
}

static void test_year(void **state) {
  year_is("1977", "1977");
  year_is("2004-05-01", "2004");
  year_is("2004-05-01T10:00", "2004");
  year_is(" 1985", "1985");
  year_is("1900", "1900");
  year_is("2099", "2099");
  year_is("1899", "1900");
  year_is("2100", "1900");
  year_is("01977", "1900");
  year_is("19777", "1900");
  year_is("1", "1900");
  year_is("19a5", "1900");
  year_is("", "1900");
  year_is(NULL, "1900");
}

static void duration_is(double s, const char *want) {
  char out[6];
  mp3_song_duration(s, out);
  assert_string_equal(out, want);
}

static void test_duration(void **state) {
  duration_is(0, "00:00");
  duration_is(-3, "00:00");
  duration_is(0.0 / 0.0, "00:00");
  duration_is(0.2, "00:01");
  duration_is(0.5, "00:01");
  duration_is(1.49, "00:01");
  duration_is(59.4, "00:59");
  duration_is(59.5, "01:00");
  duration_is(59.6, "01:00");
  duration_is(60, "01:00");
  duration_is(179.4, "02:59");
  duration_is(754.2, "12:34");
  duration_is(5999.4, "99:59");
  duration_is(5999.6, "99:59");
  duration_is(7200, "99:59");
  duration_is(1e300, "99:59");
}

static void test_song_fields(void **state) {
  mp3_meta m;
  memset(&m, 0, sizeof m);
  strcpy(m.title, "We are the champions");
  strcpy(m.artist, "Queen");
  strcpy(m.year, "1977");
  m.duration_s = 179.2;
  mp3_song s;
  assert_int_equal(mp3_song_fields(&m, &s), MP3_OK);
  assert_string_equal(s.name, "We are the champions");
  assert_string_equal(s.artist, "Queen");
  assert_string_equal(s.album, "Unknown");
  assert_string_equal(s.year, "1977");
  assert_string_equal(s.duration, "02:59");
  assert_int_equal(mp3_song_fields(NULL, &s), MP3_ERR_INVALID);
  assert_int_equal(mp3_song_fields(&m, NULL), MP3_ERR_INVALID);
}

/* ---- fuzzer regressions ------------------------------------------------------------ */

static void test_fuzz_regressions(void **state) {
  const char *dir = FERMATA_SOURCE_DIR "/tests/fuzz/regressions/mp3";
  DIR *d = opendir(dir);
  if (!d) return; /* none recorded yet */
  struct dirent *e;
  int replayed = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *data = malloc(1 << 20);
    assert_non_null(data);
    size_t n = fread(data, 1, 1 << 20, f);
    fclose(f);
    mp3_meta m;
    mp3_song s;
    (void)validate_splits(data, n);
    (void)mp3_extract(data, n, &m);
    assert_int_equal(mp3_song_fields(&m, &s), MP3_OK);
    free(data);
    replayed++;
  }
  closedir(d);
  print_message("replayed %d fuzz regression inputs\n", replayed);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_frames_all_versions),
      cmocka_unit_test(test_padding_bit_changes_length),
      cmocka_unit_test(test_short_file_whole),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_random_and_zeros),
      cmocka_unit_test(test_id3v2_skipped),
      cmocka_unit_test(test_id3v24_footer),
      cmocka_unit_test(test_two_tags_and_padding),
      cmocka_unit_test(test_id3_without_audio),
      cmocka_unit_test(test_id3_bad_or_cut),
      cmocka_unit_test(test_not_layer3_or_inconsistent),
      cmocka_unit_test(test_trailing_junk_and_tags),
      cmocka_unit_test(test_strerror),
      cmocka_unit_test(test_extract_bad_input),
      cmocka_unit_test(test_extract_silent_frames),
      cmocka_unit_test(test_extract_concurrent),
      cmocka_unit_test(test_text_basic),
      cmocka_unit_test(test_text_truncation),
      cmocka_unit_test(test_year),
      cmocka_unit_test(test_duration),
      cmocka_unit_test(test_song_fields),
      cmocka_unit_test(test_fuzz_regressions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
