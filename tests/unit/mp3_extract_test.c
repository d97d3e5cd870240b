/*
 * Unit tests for mp3_extract_source (lib/mp3/mp3_extract.c): the same metadata as
 * mp3_extract on real lame-made files (tests/fuzz/corpus/mp3/) through a source that
 * answers with short reads; MP3_ERR_IO, a zeroed meta and no leak (ASan) when read_at
 * fails at any point, returns 0 before the declared size or more than it was asked; the
 * bytes read_at is asked for on a long file, against its size; a big ID3v2 tag whose
 * picture is never read while its text frames are found; bad arguments.
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

/* A source over memory that counts what it is asked and misbehaves on request. */
typedef struct test_source {
  const uint8_t *p;
  size_t len;
  size_t max_read;    /* short reads: at most this many bytes per call (0: no limit) */
  long fail_at_call;  /* this call (1-based) returns -1; 0: never */
  long zero_at_call;  /* this call returns 0 (before the end); 0: never */
  long extra_at_call; /* this call claims one byte more than it was asked */
  long calls;
  uint64_t asked; /* sum of the caps */
  size_t max_cap;
} test_source;

static long test_read_at(void *ud, uint64_t offset, void *dst, size_t cap) {
  test_source *s = ud;
  s->calls++;
  s->asked += cap;
  if (cap > s->max_cap) s->max_cap = cap;
  if (s->calls == s->fail_at_call) return -1;
  if (s->calls == s->zero_at_call || offset >= s->len) return 0;
  size_t n = s->len - (size_t)offset < cap ? s->len - (size_t)offset : cap;
  if (s->max_read && n > s->max_read) n = s->max_read;
  memcpy(dst, s->p + offset, n);
  return s->calls == s->extra_at_call ? (long)cap + 1 : (long)n;
}

static int extract_from(test_source *s, mp3_meta *m) {
  mp3_source src = {.ud = s, .size = s->len, .read_at = test_read_at};
  return mp3_extract_source(&src, m);
}

static void assert_same_meta(const mp3_meta *a, const mp3_meta *b) {
  assert_string_equal(a->title, b->title);
  assert_string_equal(a->artist, b->artist);
  assert_string_equal(a->album, b->album);
  assert_string_equal(a->year, b->year);
  assert_true(a->duration_s == b->duration_s);
  assert_int_equal(a->sample_rate, b->sample_rate);
  assert_true(a->samples == b->samples);
  assert_int_equal(a->id3v2_version, b->id3v2_version);
  assert_int_equal(a->has_id3v1, b->has_id3v1);
}

static void assert_zeroed(const mp3_meta *m) {
  mp3_meta zero;
  memset(&zero, 0, sizeof zero);
  assert_same_meta(m, &zero);
}

static const char *const corpus[] = {
    "id3v1_only.mp3",       "id3v23_latin1.mp3",   "id3v23_utf16.mp3",      "id3v24_utf8.mp3",
    "mpeg1_cbr_stereo.mp3", "mpeg25_cbr_info.mp3", "mpeg25_vbr_noxing.mp3", "mpeg25_vbr_xing.mp3",
    "mpeg2_cbr.mp3",        "tag_only.mp3",        "truncated.mp3",
};

static void test_short_reads_same_meta(void **state) {
  static const size_t limits[] = {0, 1, 3, 100, 4096};
  for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
    buf b;
    read_corpus(corpus[i], &b);
    mp3_meta *want = malloc(sizeof *want), *got = malloc(sizeof *got);
    assert_non_null(want);
    assert_non_null(got);
    int rc = mp3_extract(b.p, b.len, want);
    for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
      test_source s = {.p = b.p, .len = b.len, .max_read = limits[k]};
      assert_int_equal(extract_from(&s, got), rc);
      assert_same_meta(got, want);
      assert_true(s.max_cap <= MP3_SOURCE_CHUNK);
    }
    if (strcmp(corpus[i], "id3v23_latin1.mp3") == 0) {
      assert_int_equal(rc, MP3_OK);
      assert_string_equal(want->artist, "Queen");
    }
    free(want);
    free(got);
    free(b.p);
  }
}

/* A long file: the ID3v2 tag of a real one, 20000 frames (8.3 MB), an ID3v1 tag. */
static void long_file(buf *b) {
  buf real;
  read_corpus("id3v23_latin1.mp3", &real);
  size_t tag = 10 + (((size_t)real.p[6] << 21) | ((size_t)real.p[7] << 14) | ((size_t)real.p[8] << 7) | real.p[9]);
  *b = (buf){0};
  put(b, real.p, tag);
  free(real.p);
  put_frames(b, HDR_V1, LEN_V1, 20000);
  uint8_t v1[128] = {'T', 'A', 'G'};
  memcpy(v1 + 3 + 30 + 30, "Album from v1", 13);
  put(b, v1, sizeof v1);
}

static void test_long_file_bytes_asked(void **state) {
  buf b;
  long_file(&b);
  mp3_meta *m = malloc(sizeof *m), *mem = malloc(sizeof *mem);
  assert_non_null(m);
  assert_non_null(mem);
  test_source s = {.p = b.p, .len = b.len};
  assert_int_equal(extract_from(&s, m), MP3_OK);
  assert_int_equal(m->samples, 20000 * 1152);
  assert_string_equal(m->artist, "Queen");
  assert_string_equal(m->album, "News of the world"); /* ID3v2 first */
  assert_int_equal(m->has_id3v1, 1);
  assert_int_equal(mp3_extract(b.p, b.len, mem), MP3_OK);
  assert_same_meta(m, mem);
  print_message("%zu bytes: read_at asked for %llu bytes in %ld calls\n", b.len, (unsigned long long)s.asked, s.calls);
  /* one pass, plus a chunk or two for the tag checks at the end */
  assert_true(s.asked >= b.len);
  assert_true(s.asked <= b.len + 4 * (uint64_t)MP3_SOURCE_CHUNK);
  assert_true(s.calls <= (long)(b.len / MP3_SOURCE_CHUNK) + 10);
  free(m);
  free(mem);
  free(b.p);
}

static void test_read_failures(void **state) {
  buf b;
  long_file(&b);
  mp3_meta *m = malloc(sizeof *m);
  assert_non_null(m);
  test_source count = {.p = b.p, .len = b.len};
  assert_int_equal(extract_from(&count, m), MP3_OK);
  long calls = count.calls;
  assert_true(calls > 100);
  /* A failure at the first call, early, midway, at the last calls: always MP3_ERR_IO. */
  const long at[] = {1, 2, 3, calls / 2, calls - 1, calls};
  for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
    test_source s = {.p = b.p, .len = b.len, .fail_at_call = at[i]};
    assert_int_equal(extract_from(&s, m), MP3_ERR_IO);
    assert_zeroed(m);
    assert_int_equal(s.calls, at[i]); /* nothing more is read once a read failed */
    test_source z = {.p = b.p, .len = b.len, .zero_at_call = at[i]};
    assert_int_equal(extract_from(&z, m), MP3_ERR_IO);
    assert_zeroed(m);
    test_source x = {.p = b.p, .len = b.len, .extra_at_call = at[i]};
    assert_int_equal(extract_from(&x, m), MP3_ERR_IO);
  }
  /* With short reads, failing midway. */
  test_source s = {.p = b.p, .len = b.len, .max_read = 777, .fail_at_call = 5000};
  assert_int_equal(extract_from(&s, m), MP3_ERR_IO);
  free(m);
  free(b.p);
}

/* An ID3v2.3/2.4 frame (2.4: syncsafe size) into b. */
static void put_frame(buf *b, int version, const char *id, const void *body, size_t n) {
  uint8_t h[10] = {(uint8_t)id[0], (uint8_t)id[1], (uint8_t)id[2], (uint8_t)id[3]};
  for (int i = 0; i < 4; i++)
    h[4 + i] = (uint8_t)(version == 4 ? (n >> (21 - 7 * i)) & 0x7F : (n >> (24 - 8 * i)) & 0xFF);
  put(b, h, sizeof h);
  put(b, body, n);
}

/* A file: an ID3v2 tag (title, artist, a picture of pic bytes, album), 300 frames. */
static void tagged_file(buf *b, int version, uint8_t flags, size_t pic) {
  buf frames = {0};
  put_frame(&frames, version, "TIT2", "\0Big cover", 10);
  put_frame(&frames, version, "TPE1", "\0Queen", 6);
  uint8_t *picture = calloc(1, pic);
  assert_non_null(picture);
  memcpy(picture, "\0image/jpeg\0\3\0", 15);
  put_frame(&frames, version, "APIC", picture, pic);
  free(picture);
  put_frame(&frames, version, "TALB", "\0After the picture", 18);
  put(&frames, "\0\0\0\0\0\0\0\0", 8); /* padding */
  *b = (buf){0};
  put_id3v2_header(b, version, flags, frames.len, "ID3");
  put(b, frames.p, frames.len);
  if (flags & 0x10) put_id3v2_header(b, version, flags, frames.len, "3DI");
  free(frames.p);
  put_frames(b, HDR_V1, LEN_V1, 300);
}

/* A 5 MB picture is never read, and the text frames around it are found all the same. */
static void test_big_tag_picture_not_read(void **state) {
  const size_t sizes[] = {100000, 5u << 20}; /* under and over the size passed as it is */
  for (int version = 3; version <= 4; version++) {
    for (size_t i = 0; i < 2; i++) {
      buf b;
      tagged_file(&b, version, version == 4 ? 0x10 : 0, sizes[i]);
      mp3_meta *m = malloc(sizeof *m);
      assert_non_null(m);
      test_source s = {.p = b.p, .len = b.len};
      assert_int_equal(extract_from(&s, m), MP3_OK);
      assert_string_equal(m->title, "Big cover");
      assert_string_equal(m->artist, "Queen");
      assert_string_equal(m->album, "After the picture");
      assert_int_equal(m->id3v2_version, version);
      assert_int_equal(m->samples, 300 * 1152);
      print_message("v2.%d, %zu byte picture: %zu bytes, read_at asked for %llu\n", version, sizes[i], b.len,
                    (unsigned long long)s.asked);
      if (sizes[i] > 1000000) assert_true(s.asked < b.len - sizes[i] + 4 * (uint64_t)MP3_SOURCE_CHUNK);
      free(m);
      free(b.p);
    }
  }
}

/* A big tag unsynchronised as a whole (2.3) is not walked: no ID3v2 text, audio intact. */
static void test_big_tag_unsynchronised(void **state) {
  buf b;
  tagged_file(&b, 3, 0x80, 1u << 20);
  mp3_meta m;
  test_source s = {.p = b.p, .len = b.len};
  assert_int_equal(extract_from(&s, &m), MP3_OK);
  assert_string_equal(m.title, "");
  assert_int_equal(m.samples, 300 * 1152);
  assert_true(s.asked < b.len - (1u << 20) + 4 * (uint64_t)MP3_SOURCE_CHUNK);
  free(b.p);
}

static void test_source_bad_arguments(void **state) {
  mp3_meta m;
  test_source s = {.p = (const uint8_t *)"x", .len = 1};
  mp3_source src = {.ud = &s, .size = 1, .read_at = test_read_at};
  assert_int_equal(mp3_extract_source(NULL, &m), MP3_ERR_INVALID);
  assert_int_equal(mp3_extract_source(&src, NULL), MP3_ERR_INVALID);
  src.read_at = NULL;
  assert_int_equal(mp3_extract_source(&src, &m), MP3_ERR_INVALID);
  src.read_at = test_read_at;
  src.size = UINT64_MAX;
  assert_int_equal(mp3_extract_source(&src, &m), MP3_ERR_INVALID);
  src.size = 0;
  assert_int_equal(mp3_extract_source(&src, &m), MP3_ERR_EMPTY);
  assert_int_equal(s.calls, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_short_reads_same_meta),  cmocka_unit_test(test_long_file_bytes_asked),
      cmocka_unit_test(test_read_failures),          cmocka_unit_test(test_big_tag_picture_not_read),
      cmocka_unit_test(test_big_tag_unsynchronised), cmocka_unit_test(test_source_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
