/*
 * breaker_internal: what the files of lib/breaker share (the breaker struct, the window
 * types, the clocks and the breaker__ functions; breaker.c lists the files). Not part of
 * the module's contract: include only from lib/breaker.
 */
#ifndef FERMATA_BREAKER_INTERNAL_H
#define FERMATA_BREAKER_INTERNAL_H

#include "breaker.h"
#include "breaker_stripe.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)

enum { OUT_SUCCESS = 0, OUT_ERROR, OUT_SLOW_SUCCESS, OUT_SLOW_ERROR };

typedef struct bucket {
  int64_t epoch_s; /* TIME_BASED only */
  int32_t calls, failed, slow, slow_failed;
} bucket;

typedef struct win {
  breaker_window_type type;
  int32_t size;      /* buckets */
  int32_t min_calls; /* effective minimumNumberOfCalls */
  int32_t head;
  bucket *b;
  int32_t calls, failed, slow, slow_failed; /* totals over the window */
  int64_t not_permitted;
} win;

/* word: bits 0-2 the state, bit 3 W_FAST, bits 8-63 the window generation. */
#define W_STATE UINT64_C(0x7)
#define W_FAST UINT64_C(0x8)
#define W_GEN_SHIFT 8

struct breaker {
  /* Read by the lock-free paths and written rarely: at creation, `word` when the state
     * it copies changes, `stripes` when a thread claims or gives back a stripe. Kept on
     * cache lines of their own, so that locked work does not take them from readers. */
  _Alignas(128) _Atomic uint64_t word;
  bool fast_records; /* the config allows fast records (COUNT_BASED, no consumer) */
  breaker__stripes stripes;
  breaker_config cfg;
  char *name;
  /* Everything below: under mu. */
  _Alignas(128) pthread_mutex_t mu;
  breaker_state state;
  uint64_t gen;    /* incarnation of cur (see the top comment) */
  int64_t applied; /* stripe successes of gen already moved into main */
  int attempts;
  win main, half, none;
  win *cur;
  int64_t retry_after; /* OPEN: refuses until now > retry_after */
  bool timer_armed;
  int64_t timer_due;
  int32_t half_permits;                  /* HALF_OPEN */
  bool mo_fr_published, mo_sc_published; /* METRICS_ONLY: one EXCEEDED each per entry */
  breaker_event *ring;
  int32_t ring_head, ring_len;
  breaker_counters counters;
  uint64_t rng;
};

/* ---- clocks (inline: the locked paths read them on every call) ------------------ */

static inline int64_t breaker__clock_read(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static inline int64_t breaker__now_ns(const breaker *b) {
  return b->cfg.clock ? b->cfg.clock(b->cfg.clock_ctx) : breaker__clock_read(CLOCK_MONOTONIC);
}

/* The monotonic clock read at most once per entry point, and only when the path needs it
 * (CLOSED with a COUNT_BASED window never does): reading it costs as much as the rest of
 * an acquire. */
typedef struct lazy_now {
  breaker *b;
  int64_t v;
  bool have;
} lazy_now;

static inline int64_t breaker__lz(lazy_now *n) {
  if (!n->have) {
    n->v = breaker__now_ns(n->b);
    n->have = true;
  }
  return n->v;
}

/* ---- breaker_state.c ------------------------------------------------------------ */

/* Every locked entry point starts with lock_enter (mutex, due timers, the stripes'
 * successes) and ends with lock_leave (republishes the state word, unlocks). */
void breaker__lock_enter(breaker *b, lazy_now *ln);
void breaker__lock_leave(breaker *b);

/* ---- breaker_window.c: sliding windows ------------------------------------------ */

int breaker__win_init(win *w, breaker_window_type type, int32_t size, int32_t min_calls);
/* A fresh window as Java builds it at `now`: TIME_BASED buckets labelled now_s, now_s+1... */
void breaker__win_reset(win *w, int64_t now);
/* One outcome (OUT_*) at `now` (TIME_BASED only; 0 for COUNT_BASED). */
void breaker__win_record(win *w, int out, int64_t now);
/* n successes that are not slow, into a COUNT_BASED window. */
void breaker__win_record_clean(win *w, int64_t n);
/* Ages a TIME_BASED window to `now` before it is read. */
void breaker__win_read(win *w, int64_t now);
/* Rates in percent, -1 below the minimum number of calls. */
float breaker__win_failure_rate(const win *w);
float breaker__win_slow_rate(const win *w);
enum { RES_BELOW, RES_FAILURE, RES_SLOW, RES_BOTH, RES_BELOW_MINIMUM };
/* Where the window's rates stand against b's thresholds: one of RES_*. */
int breaker__win_check(const breaker *b, const win *w);

/* ---- breaker_events.c: publishing ----------------------------------------------- */

/* Java's publishEvent: forced types always, others only if the current state allows;
 * counts the event, keeps it in the ring and calls the listener. Lock held. */
void breaker__publish(breaker *b, breaker_event *ev, const char *message);
void breaker__publish_simple(breaker *b, breaker_event_type t);
/* STATE_TRANSITION from -> to; nothing when from == to. */
void breaker__publish_transition(breaker *b, breaker_state from, breaker_state to);
void breaker__publish_rate(breaker *b, breaker_event_type t, float rate);

/* ---- breaker.c ------------------------------------------------------------------ */

/* Copies text into msg (when not NULL) and returns BREAKER_ERR_INVALID. */
int breaker__invalid(char *msg, size_t len, const char *text);

#endif
