/*
 * breaker_read: what a breaker shows: state, metrics, counters, the event ring, its name
 * and config, and the refusal text. Each read is one locked entry point (breaker_state.c's
 * lock_enter first, so due timers fire and the fast path's successes count).
 */
#include "breaker.h"
#include "breaker_internal.h"
#include "breaker_stripe.h"

#include <stddef.h>
#include <stdio.h>

static void metrics_locked(breaker *b, int64_t now, breaker_metrics *m) {
  win *w = b->cur;
  breaker__win_read(w, now);
  m->failure_rate = breaker__win_failure_rate(w);
  m->slow_call_rate = breaker__win_slow_rate(w);
  m->buffered = w->calls;
  m->failed = w->failed;
  m->successful = w->calls - w->failed;
  m->slow = w->slow;
  m->slow_failed = w->slow_failed;
  m->slow_successful = w->slow - w->slow_failed;
  m->not_permitted = w->not_permitted;
}

void breaker_get_snapshot(breaker *b, breaker_state *state, breaker_metrics *m) {
  lazy_now ln;
  breaker__lock_enter(b, &ln);
  if (state) *state = b->state;
  if (m) metrics_locked(b, b->cur->type == BREAKER_TIME_BASED ? breaker__lz(&ln) : 0, m);
  breaker__lock_leave(b);
}

breaker_state breaker_get_state(breaker *b) {
  breaker_state s;
  breaker_get_snapshot(b, &s, NULL);
  return s;
}

void breaker_get_metrics(breaker *b, breaker_metrics *out) { breaker_get_snapshot(b, NULL, out); }

void breaker_get_counters(breaker *b, breaker_counters *out) {
  lazy_now ln;
  breaker__lock_enter(b, &ln);
  *out = b->counters;
  breaker__stripes_add_counters(&b->stripes, out);
  breaker__lock_leave(b);
}

size_t breaker_get_events(breaker *b, breaker_event *out, size_t max) {
  lazy_now ln;
  breaker__lock_enter(b, &ln);
  size_t n = (size_t)b->ring_len;
  if (out) {
    if (n > max) n = max;
    /* the newest n would lose the oldest; we keep oldest-first order of the newest n */
    size_t skip = (size_t)b->ring_len - n;
    for (size_t i = 0; i < n; i++) /* n > 0 implies a ring */
      out[i] = b->ring[(b->ring_head + skip + i) % (size_t)b->cfg.event_buffer_size];
  }
  breaker__lock_leave(b);
  return n;
}

const char *breaker_name(const breaker *b) { return b->name; }

const breaker_config *breaker_get_config(const breaker *b) { return &b->cfg; }

int breaker_refusal_message(breaker *b, char *buf, size_t len) {
  breaker_state s = breaker_get_state(b);
  return snprintf(buf, len, "CircuitBreaker '%s' is %s and does not permit further calls", b->name,
                  breaker_state_name(s));
}
