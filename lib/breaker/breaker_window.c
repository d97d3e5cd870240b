/*
 * breaker_window: the sliding windows. A window ("win") is a ring of buckets with running
 * totals: one bucket per call for COUNT_BASED, one per epoch second for TIME_BASED (the
 * same bucket shape serves both, which keeps one code path for the totals). breaker_state.c
 * says which window each state uses.
 */
#include "breaker.h"
#include "breaker_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int breaker__win_init(win *w, breaker_window_type type, int32_t size, int32_t min_calls) {
  w->type = type;
  w->size = size;
  w->min_calls = type == BREAKER_COUNT_BASED && size < min_calls ? size : min_calls;
  w->b = NULL;
  if (size > 0) {
    w->b = calloc((size_t)size, sizeof(bucket));
    if (!w->b) return BREAKER_ERR_NOMEM;
  }
  return BREAKER_OK;
}

/* A fresh window as Java builds it at `now`: TIME_BASED buckets labelled now_s, now_s+1... */
void breaker__win_reset(win *w, int64_t now) {
  if (w->size > 0) memset(w->b, 0, (size_t)w->size * sizeof(bucket));
  w->head = 0;
  w->calls = w->failed = w->slow = w->slow_failed = 0;
  w->not_permitted = 0;
  if (w->type == BREAKER_TIME_BASED) {
    int64_t s = now / NS_PER_S;
    for (int32_t i = 0; i < w->size; i++) w->b[i].epoch_s = s + i;
  }
}

static void win_drop(win *w, bucket *bk) {
  w->calls -= bk->calls;
  w->failed -= bk->failed;
  w->slow -= bk->slow;
  w->slow_failed -= bk->slow_failed;
  int64_t e = bk->epoch_s;
  memset(bk, 0, sizeof *bk);
  bk->epoch_s = e;
}

/* Advances a TIME_BASED head to now's second, clearing the buckets it passes. */
static bucket *win_age(win *w, int64_t now) {
  bucket *head = &w->b[w->head];
  int64_t s = now / NS_PER_S;
  int64_t diff = s - head->epoch_s;
  if (diff == 0) return head;
  int64_t move = diff < w->size ? diff : w->size;
  do {
    move--;
    w->head = (w->head + 1) % w->size;
    head = &w->b[w->head];
    win_drop(w, head);
    head->epoch_s = s - move;
  } while (move > 0);
  return head;
}

void breaker__win_record(win *w, int out, int64_t now) {
  if (w->size == 0) return; /* DISABLED/FORCED_OPEN metrics (reached through OPEN only, see README) */
  bucket *bk;
  if (w->type == BREAKER_COUNT_BASED) {
    w->head = (w->head + 1) % w->size;
    bk = &w->b[w->head];
    win_drop(w, bk);
  } else {
    bk = win_age(w, now);
  }
  int failed = out == OUT_ERROR || out == OUT_SLOW_ERROR;
  int slow = out == OUT_SLOW_SUCCESS || out == OUT_SLOW_ERROR;
  bk->calls++;
  bk->failed += failed;
  bk->slow += slow;
  bk->slow_failed += failed && slow;
  w->calls++;
  w->failed += failed;
  w->slow += slow;
  w->slow_failed += failed && slow;
}

/* n successes that are not slow, recorded into a COUNT_BASED window: after `size` of
 * them the window is all alike, so at most size steps. */
void breaker__win_record_clean(win *w, int64_t n) {
  assert(w->type == BREAKER_COUNT_BASED && n >= 0);
  if (w->size == 0 || n == 0) return;
  if (n < w->size) {
    while (n-- > 0) breaker__win_record(w, OUT_SUCCESS, 0);
    return;
  }
  for (int32_t i = 0; i < w->size; i++) w->b[i] = (bucket){.calls = 1};
  w->calls = w->size;
  w->failed = w->slow = w->slow_failed = 0;
  w->head = (int32_t)((w->head + n) % w->size);
}

void breaker__win_read(win *w, int64_t now) {
  if (w->type == BREAKER_TIME_BASED && w->size > 0) (void)win_age(w, now);
}

float breaker__win_failure_rate(const win *w) {
  if (w->calls == 0 || w->calls < w->min_calls) return -1.0f;
  return (float)w->failed * 100.0f / (float)w->calls;
}

float breaker__win_slow_rate(const win *w) {
  if (w->calls == 0 || w->calls < w->min_calls) return -1.0f;
  return (float)w->slow * 100.0f / (float)w->calls;
}

int breaker__win_check(const breaker *b, const win *w) {
  float fr = breaker__win_failure_rate(w), sr = breaker__win_slow_rate(w);
  if (fr == -1.0f || sr == -1.0f) return RES_BELOW_MINIMUM;
  bool f = fr >= b->cfg.failure_rate_threshold, s = sr >= b->cfg.slow_call_rate_threshold;
  return f && s ? RES_BOTH : f ? RES_FAILURE : s ? RES_SLOW : RES_BELOW;
}
