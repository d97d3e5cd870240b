/* resreader: see resreader.h. The window is [win_off, win_off + win_len) of the file. */
#include "resreader.h"

#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* A buffer holding [off, off + len) of the file. */
typedef struct span {
  unsigned char *buf;
  size_t cap;
  uint64_t off;
  size_t len;
} span;

struct resreader {
  resreader_fetch_fn fetch;
  void *fetch_ud;
  span win;  /* the window */
  span tail; /* the file's last bytes, fetched once when a read there misses the window */
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
  /* a quarter of the window at most: memory stays the window's, give or take */
  size_t tail_cap = window_bytes / 4 < RESREADER_TAIL_BYTES ? window_bytes / 4 : RESREADER_TAIL_BYTES;
  unsigned char *win = malloc(window_bytes), *tail = malloc(tail_cap ? tail_cap : 1);
  if (r == NULL || win == NULL || tail == NULL) {
    free(r);
    free(win);
    free(tail);
    return RESREADER_ERR_NOMEM;
  }
  *r = (resreader){.fetch = fetch,
                   .fetch_ud = fetch_ud,
                   .win = {.buf = win, .cap = window_bytes},
                   .tail = {.buf = tail, .cap = tail_cap}};
  *out = r;
  return RESREADER_OK;
}

void resreader_free(resreader *r) {
  if (r == NULL) return;
  free(r->win.buf);
  free(r->tail.buf);
  free(r);
}

/* Gives the tap what sp holds past what it has seen, when sp continues it. */
static void offer_tap(resreader *r, const span *sp) {
  if (!r->tap || r->tap_done || r->tap_pos < sp->off || r->tap_pos - sp->off >= sp->len) return;
  size_t at = (size_t)(r->tap_pos - sp->off);
  r->tap_done = r->tap(r->tap_ud, sp->buf + at, sp->len - at) != 0;
  r->tap_pos = sp->off + sp->len;
}

/* Refills sp from offset, asking for want bytes (<= sp->cap). Sets and returns the status. */
static int fill(resreader *r, span *sp, uint64_t offset, size_t want) {
  resreader_chunk ch = {0};
  assert(want <= sp->cap);
  sp->len = 0;
  r->fetches++;
  if (r->fetch(r->fetch_ud, offset, want, sp->buf, sp->cap, &ch) != 0) return r->status = RESREADER_ERR_FETCH;
  if (!ch.found) return r->status = RESREADER_ERR_GONE;
  if (ch.got > want) return r->status = RESREADER_ERR_SHORT;
  r->fetched += ch.got;
  /* once open, the size cannot change and a read before the end must bring bytes; the
   * first fetch must fit the size it declares */
  bool bad = r->opened ? ch.total != r->size || ch.got == 0 : ch.got > ch.total || (ch.got == 0 && ch.total > 0);
  if (bad) return r->status = RESREADER_ERR_SHORT;
  sp->off = offset;
  sp->len = ch.got;
  if (!r->opened) r->size = ch.total;
  offer_tap(r, sp);
  return RESREADER_OK;
}

/* Fills the window from offset, as far as it or the file goes (or the tail buffer, once it
 * holds the rest). A read that does not continue the window (a jump: the scan going back
 * to the first frame, a look at some tag) gets a short window, a tail buffer's worth: the
 * reads after a jump are few more often than not, and the next read that continues the
 * window brings a whole one again. */
static int fill_window(resreader *r, uint64_t offset) {
  uint64_t end = r->tail.len > 0 && offset < r->tail.off ? r->tail.off : r->size;
  uint64_t rest = end - offset;
  size_t want = offset == r->win.off + r->win.len || r->tail.cap == 0 ? r->win.cap : r->tail.cap;
  return fill(r, &r->win, offset, rest < want ? (size_t)rest : want);
}

static bool holds(const span *sp, uint64_t offset) { return offset >= sp->off && offset - sp->off < sp->len; }

void resreader_tap(resreader *r, resreader_tap_fn tap, void *tap_ud) {
  assert(!r->opened);
  r->tap = tap;
  r->tap_ud = tap_ud;
}

int resreader_tap_rest(resreader *r) {
  if (!r->opened) return RESREADER_ERR_INVALID;
  while (r->status == RESREADER_OK && r->tap && !r->tap_done && r->tap_pos < r->size) {
    offer_tap(r, &r->tail); /* what the tail holds needs no fetch */
    if (!r->tap_done && r->tap_pos < r->size) fill_window(r, r->tap_pos);
  }
  return r->status;
}

int resreader_open(resreader *r) {
  assert(!r->opened);
  int rc = fill(r, &r->win, 0, r->win.cap);
  if (rc != RESREADER_OK) return rc;
  r->opened = true;
  return RESREADER_OK;
}

/* Where a read at offset is served from, fetching when neither buffer holds it: the tail
 * buffer for the file's last RESREADER_TAIL_BYTES (once the file is larger than the
 * window, so a look at the tags there keeps the window where the reads go on), else the
 * window. NULL when a fetch failed. */
static const span *serve(resreader *r, uint64_t offset) {
  if (holds(&r->win, offset)) return &r->win;
  uint64_t tail_len = r->size < r->tail.cap ? r->size : r->tail.cap;
  if (tail_len > 0 && r->size > r->win.cap && offset >= r->size - tail_len) {
    if (r->tail.len == 0 && fill(r, &r->tail, r->size - tail_len, (size_t)tail_len) != RESREADER_OK) return NULL;
    offer_tap(r, &r->tail);
    return &r->tail;
  }
  return fill_window(r, offset) == RESREADER_OK ? &r->win : NULL;
}

static long read_at(void *ud, uint64_t offset, void *buf, size_t cap) {
  resreader *r = ud;
  if (!r->opened || r->status != RESREADER_OK) return -1;
  if (offset >= r->size || cap == 0) return 0;
  const span *sp = serve(r, offset);
  if (sp == NULL) return -1;
  size_t at = (size_t)(offset - sp->off);
  size_t n = sp->len - at;
  if (n > cap) n = cap;
  if (n > (size_t)LONG_MAX) n = (size_t)LONG_MAX;
  memcpy(buf, sp->buf + at, n);
  return (long)n;
}

mp3_source resreader_source(resreader *r) { return (mp3_source){.ud = r, .size = r->size, .read_at = read_at}; }

uint64_t resreader_size(const resreader *r) { return r->size; }
int resreader_status(const resreader *r) { return r->status; }
uint64_t resreader_fetched_bytes(const resreader *r) { return r->fetched; }
unsigned resreader_fetches(const resreader *r) { return r->fetches; }
