/* Unit tests of services/processor/resreader.c over a file in memory: the window serves
 * reads and moves forward, reads past the end, the size learnt at open, and each way a
 * fetch can fail (error, gone, short, size changed) ending reads with -1, and the tap
 * seeing the file in order once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "resreader.h"

typedef struct fake {
  const unsigned char *data;
  size_t size;
  unsigned calls;
  uint64_t last_offset;
  size_t last_cap;
  int fail_at_call;  /* 1-based call that fails (0: none) */
  int gone_at_call;  /* 1-based call answering "gone" */
  int short_at_call; /* 1-based call that brings nothing */
  int grow_at_call;  /* 1-based call that reports another size */
} fake;

static int fake_fetch(void *ud, uint64_t offset, size_t cap, void *buf, size_t buf_cap, resreader_chunk *chunk) {
  fake *f = ud;
  assert_true(buf_cap >= cap);
  f->calls++;
  f->last_offset = offset;
  f->last_cap = cap;
  if ((int)f->calls == f->fail_at_call) return -1;
  *chunk = (resreader_chunk){.found = (int)f->calls != f->gone_at_call, .total = f->size};
  if (!chunk->found) return 0;
  if ((int)f->calls == f->grow_at_call) chunk->total++;
  size_t n = offset >= f->size ? 0 : f->size - (size_t)offset;
  if (n > cap) n = cap;
  if ((int)f->calls == f->short_at_call) n = 0;
  memcpy(buf, f->data + offset, n);
  chunk->got = n;
  return 0;
}

static unsigned char file[1000];

static int setup(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof file; i++) file[i] = (unsigned char)(i * 7 + 3);
  return 0;
}

/* A read of up to cap bytes at offset must bring n bytes, the file's. */
static void expect_read(const mp3_source *src, uint64_t offset, size_t cap, long n) {
  unsigned char buf[128];
  assert_true(cap <= sizeof buf);
  assert_int_equal(src->read_at(src->ud, offset, buf, cap), n);
  assert_memory_equal(buf, file + offset, (size_t)n);
}

/* The last fetch asked for cap bytes at offset, and it was fetch number calls. */
static void expect_fetch(const fake *f, unsigned calls, uint64_t offset, size_t cap) {
  assert_int_equal(f->calls, calls);
  assert_int_equal(f->last_offset, offset);
  assert_int_equal(f->last_cap, cap);
}

static void test_reads_through_window(void **state) {
  (void)state;
  fake f = {.data = file, .size = sizeof file};
  resreader *r;
  assert_int_equal(resreader_new(64, fake_fetch, &f, &r), RESREADER_OK);
  assert_int_equal(resreader_open(r), RESREADER_OK);
  assert_int_equal(resreader_size(r), sizeof file);
  assert_int_equal(f.calls, 1);
  mp3_source src = resreader_source(r);
  assert_int_equal(src.size, sizeof file);
  unsigned char buf[8];
  /* within the first window: no fetch; a read larger than what is left gets less */
  expect_read(&src, 10, 20, 20);
  expect_read(&src, 50, 100, 14);
  assert_int_equal(f.calls, 1);
  /* past the window: one fetch starting at the offset asked */
  expect_read(&src, 64, 100, 64);
  expect_fetch(&f, 2, 64, 64);
  /* the tail (the last quarter-window, 16 bytes) comes into its own buffer, once, and
   * the window stays where it was */
  expect_read(&src, 990, 100, 10);
  expect_read(&src, 985, 2, 2);
  expect_read(&src, 100, 8, 8);
  expect_fetch(&f, 3, 984, 16);
  /* a jump (not where the window ends) gets a short window, a tail buffer's worth */
  expect_read(&src, 950, 100, 16);
  expect_fetch(&f, 4, 950, 16);
  /* going on from there: a whole window again, but only up to what the tail holds */
  expect_read(&src, 966, 100, 18);
  expect_fetch(&f, 5, 966, 18);
  /* back to the start: fetched again */
  expect_read(&src, 0, 4, 4);
  expect_fetch(&f, 6, 0, 16);
  /* at and past the end: 0, no fetch */
  assert_int_equal(src.read_at(src.ud, 1000, buf, 4), 0);
  assert_int_equal(src.read_at(src.ud, 5000, buf, 4), 0);
  assert_int_equal(f.calls, 6);
  assert_int_equal(resreader_fetches(r), 6);
  assert_int_equal(resreader_fetched_bytes(r), 64 + 64 + 16 + 16 + 18 + 16);
  assert_int_equal(resreader_status(r), RESREADER_OK);
  resreader_free(r);
  resreader_free(NULL);
}

static void test_small_and_empty_files(void **state) {
  (void)state;
  fake f = {.data = file, .size = 5};
  resreader *r;
  assert_int_equal(resreader_new(64, fake_fetch, &f, &r), RESREADER_OK);
  assert_int_equal(resreader_open(r), RESREADER_OK);
  mp3_source src = resreader_source(r);
  unsigned char buf[16];
  assert_int_equal(src.read_at(src.ud, 0, buf, sizeof buf), 5);
  assert_int_equal(src.read_at(src.ud, 5, buf, sizeof buf), 0);
  assert_int_equal(f.calls, 1);
  resreader_free(r);

  f = (fake){.data = file, .size = 0};
  assert_int_equal(resreader_new(64, fake_fetch, &f, &r), RESREADER_OK);
  assert_int_equal(resreader_open(r), RESREADER_OK);
  assert_int_equal(resreader_size(r), 0);
  src = resreader_source(r);
  assert_int_equal(src.read_at(src.ud, 0, buf, sizeof buf), 0);
  resreader_free(r);
}

/* Opens a reader over f and reads at 0 and 64 (the second window). */
static int open_and_read(fake *f, resreader **r, long *second) {
  assert_int_equal(resreader_new(64, fake_fetch, f, r), RESREADER_OK);
  int rc = resreader_open(*r);
  if (rc != RESREADER_OK) return rc;
  mp3_source src = resreader_source(*r);
  unsigned char buf[64];
  *second = src.read_at(src.ud, 64, buf, sizeof buf);
  return rc;
}

static void test_fetch_failures(void **state) {
  (void)state;
  resreader *r;
  long second = 0;
  fake f = {.data = file, .size = sizeof file, .fail_at_call = 1};
  assert_int_equal(open_and_read(&f, &r, &second), RESREADER_ERR_FETCH);
  assert_int_equal(resreader_status(r), RESREADER_ERR_FETCH);
  resreader_free(r);
  f = (fake){.data = file, .size = sizeof file, .gone_at_call = 1};
  assert_int_equal(open_and_read(&f, &r, &second), RESREADER_ERR_GONE);
  resreader_free(r);

  const struct {
    int fail, gone, brief, grow, status;
  } cases[] = {
      {2, 0, 0, 0, RESREADER_ERR_FETCH},
      {0, 2, 0, 0, RESREADER_ERR_GONE},
      {0, 0, 2, 0, RESREADER_ERR_SHORT},
      {0, 0, 0, 2, RESREADER_ERR_SHORT},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    f = (fake){.data = file,
               .size = sizeof file,
               .fail_at_call = cases[i].fail,
               .gone_at_call = cases[i].gone,
               .short_at_call = cases[i].brief,
               .grow_at_call = cases[i].grow};
    assert_int_equal(open_and_read(&f, &r, &second), RESREADER_OK);
    assert_int_equal(second, -1);
    assert_int_equal(resreader_status(r), cases[i].status);
    /* a failed reader stays failed, without fetching again */
    mp3_source src = resreader_source(r);
    unsigned char b[4];
    assert_int_equal(src.read_at(src.ud, 0, b, sizeof b), -1);
    assert_int_equal(f.calls, 2);
    resreader_free(r);
  }
  /* a first fetch that brings nothing of a non-empty file */
  f = (fake){.data = file, .size = sizeof file, .short_at_call = 1};
  assert_int_equal(open_and_read(&f, &r, &second), RESREADER_ERR_SHORT);
  resreader_free(r);
}

typedef struct tap_log {
  unsigned char seen[1000];
  size_t len;
  size_t stop_after; /* 0: never says enough */
} tap_log;

static int tap_fn(void *ud, const void *bytes, size_t len) {
  tap_log *t = ud;
  assert_true(t->len + len <= sizeof t->seen);
  memcpy(t->seen + t->len, bytes, len);
  t->len += len;
  return t->stop_after && t->len >= t->stop_after;
}

static void test_tap_sees_the_file_in_order(void **state) {
  (void)state;
  fake f = {.data = file, .size = sizeof file};
  tap_log t = {.len = 0};
  resreader *r;
  assert_int_equal(resreader_new(64, fake_fetch, &f, &r), RESREADER_OK);
  resreader_tap(r, tap_fn, &t);
  assert_int_equal(resreader_open(r), RESREADER_OK);
  assert_int_equal(t.len, 64);
  mp3_source src = resreader_source(r);
  unsigned char buf[40];
  /* a look somewhere near the end first (a jump: a short window), then forward from
   * where the tap stands */
  assert_int_equal(src.read_at(src.ud, 872, buf, 40), 16);
  assert_int_equal(t.len, 64);
  for (uint64_t off = 60; off < 500;) {
    long n = src.read_at(src.ud, off, buf, 40);
    assert_true(n > 0);
    off += (uint64_t)n;
  }
  assert_true(t.len >= 500);
  /* the rest is fetched for the tap alone */
  assert_int_equal(resreader_tap_rest(r), RESREADER_OK);
  assert_int_equal(t.len, sizeof file);
  assert_memory_equal(t.seen, file, sizeof file);
  unsigned calls = f.calls;
  assert_int_equal(resreader_tap_rest(r), RESREADER_OK);
  assert_int_equal(f.calls, calls);
  resreader_free(r);

  /* a tap that has seen enough is given nothing more, and fetches nothing */
  f = (fake){.data = file, .size = sizeof file};
  t = (tap_log){.stop_after = 100};
  assert_int_equal(resreader_new(64, fake_fetch, &f, &r), RESREADER_OK);
  resreader_tap(r, tap_fn, &t);
  assert_int_equal(resreader_open(r), RESREADER_OK);
  assert_int_equal(resreader_tap_rest(r), RESREADER_OK);
  assert_int_equal(t.len, 128);
  assert_int_equal(f.calls, 2);
  resreader_free(r);

  /* a fetch failing under the tap */
  f = (fake){.data = file, .size = sizeof file, .fail_at_call = 3};
  t = (tap_log){.len = 0};
  assert_int_equal(resreader_new(64, fake_fetch, &f, &r), RESREADER_OK);
  resreader_tap(r, tap_fn, &t);
  assert_int_equal(resreader_tap_rest(r), RESREADER_ERR_INVALID); /* not open yet */
  assert_int_equal(resreader_open(r), RESREADER_OK);
  assert_int_equal(resreader_tap_rest(r), RESREADER_ERR_FETCH);
  assert_int_equal(t.len, 128);
  resreader_free(r);
}

/* A scan as lib/mp3's: the start, a look at the tail, then forward to the end. The tail
 * is fetched once and also gives the tap the file's last bytes. */
static void test_tail_look_then_scan(void **state) {
  (void)state;
  fake f = {.data = file, .size = sizeof file};
  tap_log t = {.len = 0};
  resreader *r;
  assert_int_equal(resreader_new(64, fake_fetch, &f, &r), RESREADER_OK);
  resreader_tap(r, tap_fn, &t);
  assert_int_equal(resreader_open(r), RESREADER_OK);
  mp3_source src = resreader_source(r);
  unsigned char buf[40];
  assert_int_equal(src.read_at(src.ud, 1000 - 128 / 8, buf, 16), 16);
  for (uint64_t off = 0; off < sizeof file;) {
    long n = src.read_at(src.ud, off, buf, sizeof buf);
    assert_true(n > 0);
    assert_memory_equal(buf, file + off, (size_t)n);
    off += (uint64_t)n;
  }
  /* windows up to the tail, the tail once: nothing read twice */
  assert_int_equal(resreader_fetched_bytes(r), sizeof file);
  unsigned calls = f.calls;
  assert_int_equal(resreader_tap_rest(r), RESREADER_OK);
  assert_int_equal(f.calls, calls);
  assert_int_equal(t.len, sizeof file);
  assert_memory_equal(t.seen, file, sizeof file);
  resreader_free(r);
}

static void test_invalid(void **state) {
  (void)state;
  resreader *r = (resreader *)1;
  assert_int_equal(resreader_new(0, fake_fetch, NULL, &r), RESREADER_ERR_INVALID);
  assert_null(r);
  assert_int_equal(resreader_new(64, NULL, NULL, &r), RESREADER_ERR_INVALID);
  assert_null(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reads_through_window), cmocka_unit_test(test_small_and_empty_files),
      cmocka_unit_test(test_fetch_failures),       cmocka_unit_test(test_tap_sees_the_file_in_order),
      cmocka_unit_test(test_tail_look_then_scan),  cmocka_unit_test(test_invalid),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
