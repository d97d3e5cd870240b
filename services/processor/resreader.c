/* resreader: see resreader.h. The window is [win_off, win_off + win_len) of the file. */
#include "resreader.h"

#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct resreader {
  resreader_fetch_fn fetch;
  void *fetch_ud;
  unsigned char *win;
  size_t cap; /* window size */
  uint64_t win_off;
  size_t win_len;
  uint64_t size;
  bool opened;
  int status;
  resreader_tap_fn tap;
  void *tap_ud;
  uint64_t tap_pos; /* the tap has seen [0, tap_pos) */
  bool tap_done;
  uint64_t fetched;
  unsigned fetches;
};

int resreader_new(size_t window_bytes, resreader_fetch_fn fetch, void *fetch_ud, resreader **out) {
  *out = NULL;
  if (window_bytes == 0 || fetch == NULL) return RESREADER_ERR_INVALID;
  resreader *r = calloc(1, sizeof *r);
  unsigned char *win = malloc(window_bytes);
  if (r == NULL || win == NULL) {
    free(r);
    free(win);
    return RESREADER_ERR_NOMEM;
  }
  *r = (resreader){.fetch = fetch, .fetch_ud = fetch_ud, .win = win, .cap = window_bytes};
  *out = r;
  return RESREADER_OK;
}

void resreader_free(resreader *r) {
  if (r == NULL) return;
  free(r->win);
  free(r);
}

/* Refills the window from offset; want is how much to ask for. Sets and returns the status. */
static int fill(resreader *r, uint64_t offset, size_t want) {
  resreader_chunk ch = {0};
  r->win_len = 0;
  r->fetches++;
  if (r->fetch(r->fetch_ud, offset, want, r->win, r->cap, &ch) != 0) return r->status = RESREADER_ERR_FETCH;
  if (!ch.found) return r->status = RESREADER_ERR_GONE;
  if (ch.got > want) return r->status = RESREADER_ERR_SHORT;
  r->fetched += ch.got;
  /* once open, the size cannot change and a read before the end must bring bytes; the
   * first fetch must fit the size it declares */
  bool bad = r->opened ? ch.total != r->size || ch.got == 0 : ch.got > ch.total || (ch.got == 0 && ch.total > 0);
  if (bad) return r->status = RESREADER_ERR_SHORT;
  r->win_off = offset;
  r->win_len = ch.got;
  if (!r->opened) r->size = ch.total;
  if (r->tap && !r->tap_done && offset <= r->tap_pos && r->tap_pos < offset + ch.got) {
    size_t at = (size_t)(r->tap_pos - offset);
    r->tap_done = r->tap(r->tap_ud, r->win + at, ch.got - at) != 0;
    r->tap_pos = offset + ch.got;
  }
  return RESREADER_OK;
}

void resreader_tap(resreader *r, resreader_tap_fn tap, void *tap_ud) {
  assert(!r->opened);
  r->tap = tap;
  r->tap_ud = tap_ud;
}

int resreader_tap_rest(resreader *r) {
  if (!r->opened) return RESREADER_ERR_INVALID;
  while (r->status == RESREADER_OK && r->tap && !r->tap_done && r->tap_pos < r->size) {
    uint64_t rest = r->size - r->tap_pos;
    fill(r, r->tap_pos, rest < r->cap ? (size_t)rest : r->cap);
  }
  return r->status;
}

int resreader_open(resreader *r) {
  assert(!r->opened);
  int rc = fill(r, 0, r->cap);
  if (rc != RESREADER_OK) return rc;
  r->opened = true;
  return RESREADER_OK;
}

static long read_at(void *ud, uint64_t offset, void *buf, size_t cap) {
  resreader *r = ud;
  if (!r->opened || r->status != RESREADER_OK) return -1;
  if (offset >= r->size || cap == 0) return 0;
  if (offset < r->win_off || offset - r->win_off >= r->win_len) {
    uint64_t rest = r->size - offset;
    if (fill(r, offset, rest < r->cap ? (size_t)rest : r->cap) != RESREADER_OK) return -1;
  }
  size_t at = (size_t)(offset - r->win_off);
  size_t n = r->win_len - at;
  if (n > cap) n = cap;
  if (n > (size_t)LONG_MAX) n = (size_t)LONG_MAX;
  memcpy(buf, r->win + at, n);
  return (long)n;
}

mp3_source resreader_source(resreader *r) { return (mp3_source){.ud = r, .size = r->size, .read_at = read_at}; }

uint64_t resreader_size(const resreader *r) { return r->size; }
int resreader_status(const resreader *r) { return r->status; }
uint64_t resreader_fetched_bytes(const resreader *r) { return r->fetched; }
unsigned resreader_fetches(const resreader *r) { return r->fetches; }
