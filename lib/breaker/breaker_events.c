/*
 * breaker_events: publishing events as Java's publishEvent does: the cumulative counters
 * for Prometheus, the ring of recent events, the listener. Called by the state machine
 * with the breaker's mutex held.
 */
#include "breaker.h"
#include "breaker_internal.h"
#include "breaker_stripe.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t wall_ns(const breaker *b) {
  return b->cfg.wall_clock ? b->cfg.wall_clock(b->cfg.wall_clock_ctx) : breaker__clock_read(CLOCK_REALTIME);
}

/* ---- events --------------------------------------------------------------------- */

static bool state_allows_publish(breaker_state s) { return s != BREAKER_DISABLED && s != BREAKER_FORCED_OPEN; }

/* Java's publishEvent: forced types always, others only if the current state allows. */
void breaker__publish(breaker *b, breaker_event *ev, const char *message) {
  bool forced = ev->type == BREAKER_EV_STATE_TRANSITION || ev->type == BREAKER_EV_RESET;
  if (!forced && !state_allows_publish(b->state)) return;
  int k = -1;
  switch (ev->type) {
  case BREAKER_EV_SUCCESS: k = 0; break;
  case BREAKER_EV_ERROR: k = 1; break;
  case BREAKER_EV_IGNORED_ERROR: k = 2; break;
  case BREAKER_EV_NOT_PERMITTED: b->counters.not_permitted++; break;
  default: break;
  }
  if (k >= 0) {
    b->counters.calls[k]++;
    b->counters.sum_ns[k] += ev->duration_ns;
    if (ev->duration_ns > b->counters.max_ns[k]) b->counters.max_ns[k] = ev->duration_ns;
  }
  int32_t cap = b->cfg.event_buffer_size;
  if (cap == 0 && !b->cfg.listener)
    return; /* nobody consumes events: like Resilience4j without consumers, build none */
  ev->wall_ns = wall_ns(b);
  if (cap == 0) {
    b->cfg.listener(b->cfg.listener_ctx, b, ev);
    return;
  }
  int32_t slot = (b->ring_head + b->ring_len) % cap;
  if (b->ring_len == cap)
    b->ring_head = (b->ring_head + 1) % cap;
  else
    b->ring_len++;
  /* only the header is copied; the message goes straight into the slot */
  breaker_event *dst = &b->ring[slot];
  memcpy(dst, ev, offsetof(breaker_event, message));
  if (message)
    snprintf(dst->message, sizeof dst->message, "%s", message);
  else
    dst->message[0] = '\0';
  if (b->cfg.listener) b->cfg.listener(b->cfg.listener_ctx, b, dst);
}

void breaker__publish_simple(breaker *b, breaker_event_type t) {
  breaker_event ev;
  memset(&ev, 0, offsetof(breaker_event, message));
  ev.type = t;
  breaker__publish(b, &ev, NULL);
}

void breaker__publish_transition(breaker *b, breaker_state from, breaker_state to) {
  if (from == to) return; /* Java: internal transitions publish nothing */
  breaker_event ev;
  memset(&ev, 0, offsetof(breaker_event, message));
  ev.type = BREAKER_EV_STATE_TRANSITION;
  ev.from = from;
  ev.to = to;
  breaker__publish(b, &ev, NULL);
}

void breaker__publish_rate(breaker *b, breaker_event_type t, float rate) {
  breaker_event ev;
  memset(&ev, 0, offsetof(breaker_event, message));
  ev.type = t;
  ev.rate = rate;
  breaker__publish(b, &ev, NULL);
}
