/*
 * breaker_state: Resilience4j's CircuitBreakerStateMachine, one mutex instead of CAS loops.
 *
 * Layout. A sliding window ("win") is a ring of buckets with running totals: one bucket
 * per call for COUNT_BASED, one per epoch second for TIME_BASED (the same bucket shape
 * serves both, which keeps one code path for the totals). Java gives each state its own
 * metrics object; we preallocate the three kinds a state can own and point `cur` at the
 * one the current state uses: `main` (the configured window: CLOSED, METRICS_ONLY),
 * `half` (COUNT_BASED of permittedNumberOfCallsInHalfOpenState: HALF_OPEN) and `none`
 * (size 0: DISABLED, FORCED_OPEN). OPEN keeps the window of the state it came from, as
 * Java passes the metrics object on. Entering a state resets the window it takes.
 *
 * Timers are lazy (see breaker.h): `timer_due` is the one pending automatic transition,
 * fired by fire_timers() at the top of every locked entry point.
 *
 * The fast path. Everything is guarded by `mu` except two common calls, which read
 * `word`, a copy of the state that every locked entry point republishes before it unlocks:
 * - acquire in CLOSED, METRICS_ONLY and DISABLED: these states permit with no side effect
 *   and hold no timer, so reading the state is the whole call.
 * - record of a SUCCESS that is not slow, or of an IGNORED outcome, in CLOSED or
 *   METRICS_ONLY once the COUNT_BASED window holds at least minimumNumberOfCalls, when no
 *   event is consumed (no ring, no listener): the call goes to the thread's stripe
 *   (breaker_stripe.h), no lock and no shared write. Why no threshold can be crossed
 *   there: in CLOSED the last evaluation found both rates below their thresholds (else
 *   we would be OPEN), a COUNT_BASED window never shrinks, and such a success cannot raise
 *   either rate (it adds a call, or replaces an outcome by a better one; float division is
 *   monotone), so Resilience4j's check after it would decide nothing and publish nothing.
 *   In METRICS_ONLY the same argument shows it would publish no new EXCEEDED event.
 * - record in DISABLED and FORCED_OPEN records and publishes nothing: it returns at once.
 * Successes recorded on stripes are anonymous, identical entries of the window, so only
 * their number matters: the next locked entry point (drain_fast) moves the ones it has
 * not yet seen into the ring, as many clean successes, before it reads or writes the
 * window. `gen` names the window incarnation: it changes whenever `cur` is reset or
 * replaced, a stripe counts its successes per generation, and successes of an older
 * generation are never applied: like Resilience4j, which records into the state object it
 * read, a record racing with a state change may land in the state it started in.
 *
 * This file holds the entry points that change a breaker (acquire, record, transition,
 * reset, tick) and its lifecycle; the windows, event publishing, reads, configuration and
 * registry are in files of their own (see breaker.c), sharing breaker_internal.h.
 */
#include "breaker.h"
#include "breaker_internal.h"
#include "breaker_stripe.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- randomness and the wait in OPEN -------------------------------------------- */

static double random01(breaker *b) {
  if (b->cfg.random) return b->cfg.random(b->cfg.random_ctx);
  /* xorshift64*: per-breaker state, no global rand() */
  b->rng ^= b->rng >> 12;
  b->rng ^= b->rng << 25;
  b->rng ^= b->rng >> 27;
  return (double)((b->rng * UINT64_C(2685821657736338717)) >> 11) / 9007199254740992.0;
}

/* Java's (long) cast of a double: saturating, NaN -> 0. */
static int64_t java_d2l(double d) {
  if (isnan(d)) return 0;
  if (d >= 9223372036854775807.0) return INT64_MAX;
  if (d <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)d;
}

/* waitIntervalFunctionInOpenState.apply(attempt), attempt >= 1. */
static int64_t wait_for_attempt(breaker *b, int attempt) {
  const breaker_config *c = &b->cfg;
  int64_t w = c->wait_in_open_ms;
  if (c->exponential_backoff) {
    for (int i = 1; i < attempt && w < INT64_MAX; i++) w = java_d2l((double)w * c->exponential_multiplier);
  }
  if (c->randomized_wait) {
    double cur = (double)w, delta = c->randomized_wait_factor * cur;
    double lo = cur - delta, hi = cur + delta;
    double r = lo + random01(b) * (hi - lo + 1);
    w = java_d2l(r < 1.0 ? 1.0 : r);
  }
  if (c->exponential_backoff && c->exponential_max_wait_ms > 0 && w > c->exponential_max_wait_ms)
    w = c->exponential_max_wait_ms;
  return w;
}

/* ---- state machine -------------------------------------------------------------- */

static bool transition_legal(breaker_state from, breaker_state to) {
  if (from == BREAKER_CLOSED && to == BREAKER_HALF_OPEN) return false;
  if (from == BREAKER_METRICS_ONLY && (to == BREAKER_OPEN || to == BREAKER_HALF_OPEN)) return false;
  return true;
}

/* Builds state `to` as if created at time `at` (a timer's due time or now). Does not
 * publish; the caller does, after, like Java's stateTransition. */
static void enter_state(breaker *b, breaker_state to, int64_t at) {
  b->timer_armed = false; /* preTransitionHook: cancel the pending automatic transition */
  if (to != BREAKER_OPEN) {
    /* every state but OPEN resets or replaces cur: stripe successes of the old
         * generation no longer belong to it */
    b->gen++;
    b->applied = 0;
  }
  switch (to) {
  case BREAKER_CLOSED:
    b->attempts = 0;
    breaker__win_reset(&b->main, at);
    b->cur = &b->main;
    break;
  case BREAKER_METRICS_ONLY:
    b->attempts = 0;
    breaker__win_reset(&b->main, at);
    b->cur = &b->main;
    b->mo_fr_published = b->mo_sc_published = false;
    break;
  case BREAKER_DISABLED:
    b->attempts = 0;
    breaker__win_reset(&b->none, at);
    b->cur = &b->none;
    break;
  case BREAKER_FORCED_OPEN:
    b->attempts++;
    breaker__win_reset(&b->none, at);
    b->cur = &b->none;
    break;
  case BREAKER_OPEN: {
    b->attempts++;
    int64_t wait_ms = wait_for_attempt(b, b->attempts);
    b->retry_after = at + wait_ms * NS_PER_MS;
    if (b->cfg.automatic_transition) {
      b->timer_armed = true;
      b->timer_due = b->retry_after;
    }
    break; /* keeps b->cur: OPEN inherits the previous state's metrics */
  }
  case BREAKER_HALF_OPEN:
    breaker__win_reset(&b->half, at);
    b->cur = &b->half;
    b->half_permits = b->cfg.permitted_calls_in_half_open;
    if (b->cfg.max_wait_in_half_open_ms >= 1) {
      b->timer_armed = true;
      b->timer_due = at + b->cfg.max_wait_in_half_open_ms * NS_PER_MS;
    }
    break;
  }
  b->state = to;
}

static void move_to(breaker *b, breaker_state to, int64_t at) {
  breaker_state from = b->state;
  assert(transition_legal(from, to));
  enter_state(b, to, at);
  breaker__publish_transition(b, from, to);
}

/* Runs the automatic transitions due by `now`, each at its own due time. */
static void fire_timers(breaker *b, lazy_now *ln) {
  if (!b->timer_armed) return;
  int64_t now = breaker__lz(ln);
  while (b->timer_armed && now >= b->timer_due) {
    int64_t at = b->timer_due;
    b->timer_armed = false;
    if (b->state == BREAKER_OPEN)
      move_to(b, BREAKER_HALF_OPEN, at);
    else if (b->state == BREAKER_HALF_OPEN)
      move_to(b, b->cfg.transition_after_wait, at);
  }
}

/* Moves the successes threads recorded on their stripes since the last drain into main,
 * if main is the current window and is the generation they were recorded in. */
static void drain_fast(breaker *b) {
  if (!b->fast_records || b->cur != &b->main) return;
  int64_t total = breaker__stripes_in_gen(&b->stripes, b->gen);
  assert(total >= b->applied); /* per generation, stripes only count up */
  breaker__win_record_clean(&b->main, total - b->applied);
  b->applied = total;
}

/* The state as the lock-free paths must see it once mu is released. */
static void publish_word(breaker *b) {
  breaker_state s = b->state;
  /* The fast paths skip fire_timers: only OPEN and HALF_OPEN ever hold a timer. */
  assert(!b->timer_armed || s == BREAKER_OPEN || s == BREAKER_HALF_OPEN);
  assert((s != BREAKER_CLOSED && s != BREAKER_METRICS_ONLY) || b->cur == &b->main);
  assert(b->main.calls >= 0 && (b->main.type == BREAKER_TIME_BASED || b->main.calls <= b->main.size));
  assert(b->gen <= UINT64_MAX >> W_GEN_SHIFT);
  uint64_t w = (uint64_t)s | b->gen << W_GEN_SHIFT;
  if (b->fast_records && (s == BREAKER_CLOSED || s == BREAKER_METRICS_ONLY) && b->main.calls >= b->main.min_calls)
    w |= W_FAST;
  /* Unchanged (the common case: a read, a failure that trips nothing) costs no store,
     * so locked calls do not take the line away from the threads on the fast path. */
  if (atomic_load_explicit(&b->word, memory_order_relaxed) != w)
    atomic_store_explicit(&b->word, w, memory_order_release);
}

/* Every locked entry point starts here: due timers first, then the stripes' successes,
 * so the call sees the window as if every earlier record had been locked. */
void breaker__lock_enter(breaker *b, lazy_now *ln) {
  pthread_mutex_lock(&b->mu);
  *ln = (lazy_now){b, 0, false};
  fire_timers(b, ln);
  drain_fast(b);
}

void breaker__lock_leave(breaker *b) {
  publish_word(b);
  pthread_mutex_unlock(&b->mu);
}

static bool half_open_acquire(breaker *b) {
  if (b->half_permits > 0) {
    b->half_permits--;
    return true;
  }
  b->cur->not_permitted++;
  return false;
}

static bool acquire_locked(breaker *b, lazy_now *ln) {
  switch (b->state) {
  case BREAKER_CLOSED:
  case BREAKER_DISABLED:
  case BREAKER_METRICS_ONLY: return true;
  case BREAKER_HALF_OPEN: return half_open_acquire(b);
  case BREAKER_OPEN:
    if (breaker__lz(ln) > b->retry_after) {
      move_to(b, BREAKER_HALF_OPEN, breaker__lz(ln));
      return half_open_acquire(b);
    }
    b->cur->not_permitted++;
    return false;
  case BREAKER_FORCED_OPEN: b->cur->not_permitted++; return false;
  }
  return false;
}

__attribute__((noinline)) static bool try_acquire_locked(breaker *b) {
  lazy_now ln;
  breaker__lock_enter(b, &ln);
  bool ok = acquire_locked(b, &ln);
  if (!ok) breaker__publish_simple(b, BREAKER_EV_NOT_PERMITTED);
  breaker__lock_leave(b);
  return ok;
}

bool breaker_try_acquire(breaker *b) {
  uint64_t w = atomic_load_explicit(&b->word, memory_order_acquire);
  breaker_state s = (breaker_state)(w & W_STATE);
  if (s == BREAKER_CLOSED || s == BREAKER_METRICS_ONLY || s == BREAKER_DISABLED)
    return true; /* fast path: see the top comment */
  return try_acquire_locked(b);
}

static void on_result_closed(breaker *b, int res, lazy_now *ln) {
  if (res == RES_BELOW || res == RES_BELOW_MINIMUM) return;
  if (res == RES_FAILURE || res == RES_BOTH)
    breaker__publish_rate(b, BREAKER_EV_FAILURE_RATE_EXCEEDED, breaker__win_failure_rate(b->cur));
  if (res == RES_SLOW || res == RES_BOTH)
    breaker__publish_rate(b, BREAKER_EV_SLOW_CALL_RATE_EXCEEDED, breaker__win_slow_rate(b->cur));
  move_to(b, BREAKER_OPEN, breaker__lz(ln));
}

static void on_result_metrics_only(breaker *b, int res) {
  if ((res == RES_FAILURE || res == RES_BOTH) && !b->mo_fr_published) {
    b->mo_fr_published = true;
    breaker__publish_rate(b, BREAKER_EV_FAILURE_RATE_EXCEEDED, breaker__win_failure_rate(b->cur));
  }
  if ((res == RES_SLOW || res == RES_BOTH) && !b->mo_sc_published) {
    b->mo_sc_published = true;
    breaker__publish_rate(b, BREAKER_EV_SLOW_CALL_RATE_EXCEEDED, breaker__win_slow_rate(b->cur));
  }
}

/* The state's onSuccess/onError once the event is published. */
static void record_in_state(breaker *b, int out, lazy_now *ln) {
  int64_t now = b->cur->type == BREAKER_TIME_BASED && b->cur->size > 0 ? breaker__lz(ln) : 0;
  switch (b->state) {
  case BREAKER_DISABLED:
  case BREAKER_FORCED_OPEN: return;
  case BREAKER_OPEN:
    breaker__win_record(b->cur, out, now); /* a call started before the trip: counted, no decision */
    return;
  case BREAKER_CLOSED:
    breaker__win_record(b->cur, out, now);
    on_result_closed(b, breaker__win_check(b, b->cur), ln);
    return;
  case BREAKER_METRICS_ONLY:
    breaker__win_record(b->cur, out, now);
    on_result_metrics_only(b, breaker__win_check(b, b->cur));
    return;
  case BREAKER_HALF_OPEN: {
    breaker__win_record(b->cur, out, now);
    int res = breaker__win_check(b, b->cur);
    if (res == RES_BELOW)
      move_to(b, BREAKER_CLOSED, breaker__lz(ln));
    else if (res != RES_BELOW_MINIMUM)
      move_to(b, BREAKER_OPEN, breaker__lz(ln));
    return;
  }
  }
}

/* The lock-free record (see the top comment). False: the caller takes the mutex, and
 * claims a stripe first if *claim says the thread lacks one. */
static bool record_fast(breaker *b, breaker_outcome outcome, int64_t duration_ns, bool *claim) {
  uint64_t w = atomic_load_explicit(&b->word, memory_order_acquire);
  if (!(w & W_FAST)) {
    breaker_state s = (breaker_state)(w & W_STATE);
    /* these record and publish nothing, and hold no timer */
    return s == BREAKER_DISABLED || s == BREAKER_FORCED_OPEN;
  }
  int kind;
  if (outcome == BREAKER_SUCCESS && duration_ns <= b->cfg.slow_call_duration_threshold_ns)
    kind = BREAKER__K_SUCCESS;
  else if (outcome == BREAKER_IGNORED)
    kind = BREAKER__K_IGNORED;
  else
    return false;                                          /* a failure or a slow call may cross a threshold */
  breaker__stripe *st = breaker__stripe_mine(&b->stripes); /* W_FAST: stripes exist */
  if (!st) {
    *claim = true;
    return false;
  }
  breaker__stripe_add(st, kind, w >> W_GEN_SHIFT, duration_ns);
  return true;
}

/* Not inlined, so that the fast path's caller needs no frame for the event and the
 * saved registers of this one. */
__attribute__((noinline)) static void record_locked(breaker *b, breaker_outcome outcome, int64_t duration_ns,
                                                    const char *message, bool claim) {
  breaker_event ev;
  memset(&ev, 0, offsetof(breaker_event, message));
  ev.duration_ns = duration_ns;
  lazy_now ln;
  breaker__lock_enter(b, &ln);
  if (claim) (void)breaker__stripe_claim(&b->stripes); /* none free: this thread stays locked */
  bool slow = duration_ns > b->cfg.slow_call_duration_threshold_ns;
  switch (outcome) {
  case BREAKER_IGNORED:
    if (b->state == BREAKER_HALF_OPEN) b->half_permits++; /* releasePermission: no upper cap, as in Java */
    ev.type = BREAKER_EV_IGNORED_ERROR;
    breaker__publish(b, &ev, message);
    break;
  case BREAKER_SUCCESS:
    ev.type = BREAKER_EV_SUCCESS;
    breaker__publish(b, &ev, NULL);
    record_in_state(b, slow ? OUT_SLOW_SUCCESS : OUT_SUCCESS, &ln);
    break;
  case BREAKER_FAILURE:
  default:
    ev.type = BREAKER_EV_ERROR;
    breaker__publish(b, &ev, message);
    record_in_state(b, slow ? OUT_SLOW_ERROR : OUT_ERROR, &ln);
    break;
  }
  breaker__lock_leave(b);
}

void breaker_record_msg(breaker *b, breaker_outcome outcome, int64_t duration_ns, const char *message) {
  if (duration_ns < 0) duration_ns = 0;
  bool claim = false;
  if (!record_fast(b, outcome, duration_ns, &claim)) record_locked(b, outcome, duration_ns, message, claim);
}

void breaker_record(breaker *b, breaker_outcome outcome, int64_t duration_ns) {
  breaker_record_msg(b, outcome, duration_ns, NULL);
}

int breaker_transition(breaker *b, breaker_state to) {
  if ((unsigned)to >= BREAKER_STATE_COUNT) return BREAKER_ERR_INVALID;
  lazy_now ln;
  breaker__lock_enter(b, &ln);
  int64_t now = breaker__lz(&ln);
  int rc = BREAKER_OK;
  if (!transition_legal(b->state, to))
    rc = BREAKER_ERR_ILLEGAL_STATE;
  else
    move_to(b, to, now);
  breaker__lock_leave(b);
  return rc;
}

void breaker_reset(breaker *b) {
  lazy_now ln;
  breaker__lock_enter(b, &ln);
  int64_t now = breaker__lz(&ln);
  breaker_state from = b->state;
  enter_state(b, BREAKER_CLOSED, now);
  breaker__publish_transition(b, from, BREAKER_CLOSED);
  breaker__publish_simple(b, BREAKER_EV_RESET);
  breaker__lock_leave(b);
}

void breaker_tick(breaker *b) {
  lazy_now ln;
  breaker__lock_enter(b, &ln);
  breaker__lock_leave(b);
}

/* ---- lifecycle ------------------------------------------------------------------ */

void breaker_free(breaker *b) {
  if (!b) return;
  breaker__stripes_destroy(&b->stripes);
  pthread_mutex_destroy(&b->mu);
  free(b->main.b);
  free(b->half.b);
  free(b->ring);
  free(b->name);
  free(b);
}

int breaker_new(const char *name, const breaker_config *cfg, breaker **out, char *msg, size_t msglen) {
  *out = NULL;
  if (!name || !cfg) return breaker__invalid(msg, msglen, "name and config are required");
  int rc = breaker_config_validate(cfg, msg, msglen);
  if (rc) return rc;
  /* aligned: the fast path's fields and the locked ones sit on separate cache lines */
  breaker *b = aligned_alloc(_Alignof(breaker), sizeof *b);
  if (!b) return BREAKER_ERR_NOMEM;
  memset(b, 0, sizeof *b);
  b->cfg = *cfg;
  /* Adaptive: spins briefly before sleeping; critical sections are tens of ns, so two
     * threads on two cores rarely need the futex. */
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
  int mrc = pthread_mutex_init(&b->mu, &ma);
  pthread_mutexattr_destroy(&ma);
  if (mrc != 0) {
    free(b);
    return BREAKER_ERR_NOMEM;
  }
  /* Stripes (and their pthread key) only where a record can take the fast path. */
  b->fast_records = cfg->window_type == BREAKER_COUNT_BASED && cfg->event_buffer_size == 0 && !cfg->listener;
  if (b->fast_records && breaker__stripes_init(&b->stripes) != BREAKER_OK) {
    breaker_free(b);
    return BREAKER_ERR_NOMEM;
  }
  if (!b->stripes.s) b->fast_records = false; /* out of pthread keys: every record takes the mutex */
  b->name = strdup(name);
  b->ring = calloc(cfg->event_buffer_size ? (size_t)cfg->event_buffer_size : 1, sizeof *b->ring);
  if (!b->name || !b->ring || breaker__win_init(&b->main, cfg->window_type, cfg->window_size, cfg->minimum_calls) ||
      breaker__win_init(&b->half, BREAKER_COUNT_BASED, cfg->permitted_calls_in_half_open, cfg->minimum_calls) ||
      breaker__win_init(&b->none, BREAKER_COUNT_BASED, 0, cfg->minimum_calls)) {
    breaker_free(b);
    return BREAKER_ERR_NOMEM;
  }
  b->rng = (uint64_t)breaker__clock_read(CLOCK_MONOTONIC) ^ (uint64_t)(uintptr_t)b ^ UINT64_C(0x9E3779B97F4A7C15);
  if (b->rng == 0) b->rng = 1;
  /* Initial state as Java builds it: attempts 1 for OPEN, HALF_OPEN, FORCED_OPEN. */
  int64_t now = breaker__now_ns(b);
  b->state = BREAKER_CLOSED;
  enter_state(b, BREAKER_CLOSED, now);
  switch (cfg->initial_state) {
  case BREAKER_OPEN:
    enter_state(b, BREAKER_OPEN, now); /* attempts 0 -> 1, metrics of a CLOSED state */
    break;
  case BREAKER_HALF_OPEN:
    b->attempts = 1;
    enter_state(b, BREAKER_HALF_OPEN, now);
    break;
  case BREAKER_FORCED_OPEN: enter_state(b, BREAKER_FORCED_OPEN, now); break;
  default: enter_state(b, cfg->initial_state, now); break;
  }
  publish_word(b);
  *out = b;
  return BREAKER_OK;
}
