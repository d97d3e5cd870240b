/*
 * breaker.c: Resilience4j's CircuitBreakerStateMachine, one mutex instead of CAS loops.
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
 */
#include "breaker.h"
#include "breaker_stripe.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    int32_t size;     /* buckets */
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
    bool fast_records;     /* the config allows fast records (COUNT_BASED, no consumer) */
    breaker__stripes stripes;
    breaker_config cfg;
    char *name;
    /* Everything below: under mu. */
    _Alignas(128) pthread_mutex_t mu;
    breaker_state state;
    uint64_t gen;          /* incarnation of cur (see the top comment) */
    int64_t applied;       /* stripe successes of gen already moved into main */
    int attempts;
    win main, half, none;
    win *cur;
    int64_t retry_after;   /* OPEN: refuses until now > retry_after */
    bool timer_armed;
    int64_t timer_due;
    int32_t half_permits;  /* HALF_OPEN */
    bool mo_fr_published, mo_sc_published; /* METRICS_ONLY: one EXCEEDED each per entry */
    breaker_event *ring;
    int32_t ring_head, ring_len;
    breaker_counters counters;
    uint64_t rng;
};

/* ---- clocks and randomness ------------------------------------------------------ */

static int64_t clock_read(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t now_ns(const breaker *b)
{
    return b->cfg.clock ? b->cfg.clock(b->cfg.clock_ctx) : clock_read(CLOCK_MONOTONIC);
}

static int64_t wall_ns(const breaker *b)
{
    return b->cfg.wall_clock ? b->cfg.wall_clock(b->cfg.wall_clock_ctx)
                             : clock_read(CLOCK_REALTIME);
}

/* The monotonic clock read at most once per entry point, and only when the path needs it
 * (CLOSED with a COUNT_BASED window never does): reading it costs as much as the rest of
 * an acquire. */
typedef struct lazy_now {
    breaker *b;
    int64_t v;
    bool have;
} lazy_now;

static int64_t lz(lazy_now *n)
{
    if (!n->have) {
        n->v = now_ns(n->b);
        n->have = true;
    }
    return n->v;
}

static double random01(breaker *b)
{
    if (b->cfg.random)
        return b->cfg.random(b->cfg.random_ctx);
    /* xorshift64*: per-breaker state, no global rand() */
    b->rng ^= b->rng >> 12;
    b->rng ^= b->rng << 25;
    b->rng ^= b->rng >> 27;
    return (double)((b->rng * UINT64_C(2685821657736338717)) >> 11) / 9007199254740992.0;
}

/* Java's (long) cast of a double: saturating, NaN -> 0. */
static int64_t java_d2l(double d)
{
    if (isnan(d))
        return 0;
    if (d >= 9223372036854775807.0)
        return INT64_MAX;
    if (d <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)d;
}

/* waitIntervalFunctionInOpenState.apply(attempt), attempt >= 1. */
static int64_t wait_for_attempt(breaker *b, int attempt)
{
    const breaker_config *c = &b->cfg;
    int64_t w = c->wait_in_open_ms;
    if (c->exponential_backoff) {
        for (int i = 1; i < attempt && w < INT64_MAX; i++)
            w = java_d2l((double)w * c->exponential_multiplier);
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

/* ---- sliding windows ------------------------------------------------------------ */

static int win_init(win *w, breaker_window_type type, int32_t size, int32_t min_calls)
{
    w->type = type;
    w->size = size;
    w->min_calls = type == BREAKER_COUNT_BASED && size < min_calls ? size : min_calls;
    w->b = NULL;
    if (size > 0) {
        w->b = calloc((size_t)size, sizeof(bucket));
        if (!w->b)
            return BREAKER_ENOMEM;
    }
    return BREAKER_OK;
}

/* A fresh window as Java builds it at `now`: TIME_BASED buckets labelled now_s, now_s+1... */
static void win_reset(win *w, int64_t now)
{
    if (w->size > 0)
        memset(w->b, 0, (size_t)w->size * sizeof(bucket));
    w->head = 0;
    w->calls = w->failed = w->slow = w->slow_failed = 0;
    w->not_permitted = 0;
    if (w->type == BREAKER_TIME_BASED) {
        int64_t s = now / NS_PER_S;
        for (int32_t i = 0; i < w->size; i++)
            w->b[i].epoch_s = s + i;
    }
}

static void win_drop(win *w, bucket *bk)
{
    w->calls -= bk->calls;
    w->failed -= bk->failed;
    w->slow -= bk->slow;
    w->slow_failed -= bk->slow_failed;
    int64_t e = bk->epoch_s;
    memset(bk, 0, sizeof *bk);
    bk->epoch_s = e;
}

/* Advances a TIME_BASED head to now's second, clearing the buckets it passes. */
static bucket *win_age(win *w, int64_t now)
{
    bucket *head = &w->b[w->head];
    int64_t s = now / NS_PER_S;
    int64_t diff = s - head->epoch_s;
    if (diff == 0)
        return head;
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

static void win_record(win *w, int out, int64_t now)
{
    if (w->size == 0)
        return; /* DISABLED/FORCED_OPEN metrics (reached through OPEN only, see README) */
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
static void win_record_clean(win *w, int64_t n)
{
    assert(w->type == BREAKER_COUNT_BASED && n >= 0);
    if (w->size == 0 || n == 0)
        return;
    if (n < w->size) {
        while (n-- > 0)
            win_record(w, OUT_SUCCESS, 0);
        return;
    }
    for (int32_t i = 0; i < w->size; i++)
        w->b[i] = (bucket){.calls = 1};
    w->calls = w->size;
    w->failed = w->slow = w->slow_failed = 0;
    w->head = (int32_t)((w->head + n) % w->size);
}

static void win_read(win *w, int64_t now)
{
    if (w->type == BREAKER_TIME_BASED && w->size > 0)
        (void)win_age(w, now);
}

static float win_failure_rate(const win *w)
{
    if (w->calls == 0 || w->calls < w->min_calls)
        return -1.0f;
    return (float)w->failed * 100.0f / (float)w->calls;
}

static float win_slow_rate(const win *w)
{
    if (w->calls == 0 || w->calls < w->min_calls)
        return -1.0f;
    return (float)w->slow * 100.0f / (float)w->calls;
}

enum { RES_BELOW, RES_FAILURE, RES_SLOW, RES_BOTH, RES_BELOW_MINIMUM };

static int win_check(const breaker *b, const win *w)
{
    float fr = win_failure_rate(w), sr = win_slow_rate(w);
    if (fr == -1.0f || sr == -1.0f)
        return RES_BELOW_MINIMUM;
    bool f = fr >= b->cfg.failure_rate_threshold, s = sr >= b->cfg.slow_call_rate_threshold;
    return f && s ? RES_BOTH : f ? RES_FAILURE : s ? RES_SLOW : RES_BELOW;
}

/* ---- events --------------------------------------------------------------------- */

static bool state_allows_publish(breaker_state s)
{
    return s != BREAKER_DISABLED && s != BREAKER_FORCED_OPEN;
}

/* Java's publishEvent: forced types always, others only if the current state allows. */
static void publish(breaker *b, breaker_event *ev, const char *message)
{
    bool forced = ev->type == BREAKER_EV_STATE_TRANSITION || ev->type == BREAKER_EV_RESET;
    if (!forced && !state_allows_publish(b->state))
        return;
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
        if (ev->duration_ns > b->counters.max_ns[k])
            b->counters.max_ns[k] = ev->duration_ns;
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
    if (b->cfg.listener)
        b->cfg.listener(b->cfg.listener_ctx, b, dst);
}

static void publish_simple(breaker *b, breaker_event_type t)
{
    breaker_event ev;
    memset(&ev, 0, offsetof(breaker_event, message));
    ev.type = t;
    publish(b, &ev, NULL);
}

static void publish_transition(breaker *b, breaker_state from, breaker_state to)
{
    if (from == to)
        return; /* Java: internal transitions publish nothing */
    breaker_event ev;
    memset(&ev, 0, offsetof(breaker_event, message));
    ev.type = BREAKER_EV_STATE_TRANSITION;
    ev.from = from;
    ev.to = to;
    publish(b, &ev, NULL);
}

static void publish_rate(breaker *b, breaker_event_type t, float rate)
{
    breaker_event ev;
    memset(&ev, 0, offsetof(breaker_event, message));
    ev.type = t;
    ev.rate = rate;
    publish(b, &ev, NULL);
}

/* ---- state machine -------------------------------------------------------------- */

static bool transition_legal(breaker_state from, breaker_state to)
{
    if (from == BREAKER_CLOSED && to == BREAKER_HALF_OPEN)
        return false;
    if (from == BREAKER_METRICS_ONLY && (to == BREAKER_OPEN || to == BREAKER_HALF_OPEN))
        return false;
    return true;
}

/* Builds state `to` as if created at time `at` (a timer's due time or now). Does not
 * publish; the caller does, after, like Java's stateTransition. */
static void enter_state(breaker *b, breaker_state to, int64_t at)
{
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
        win_reset(&b->main, at);
        b->cur = &b->main;
        break;
    case BREAKER_METRICS_ONLY:
        b->attempts = 0;
        win_reset(&b->main, at);
        b->cur = &b->main;
        b->mo_fr_published = b->mo_sc_published = false;
        break;
    case BREAKER_DISABLED:
        b->attempts = 0;
        win_reset(&b->none, at);
        b->cur = &b->none;
        break;
    case BREAKER_FORCED_OPEN:
        b->attempts++;
        win_reset(&b->none, at);
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
        win_reset(&b->half, at);
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

static void move_to(breaker *b, breaker_state to, int64_t at)
{
    breaker_state from = b->state;
    assert(transition_legal(from, to));
    enter_state(b, to, at);
    publish_transition(b, from, to);
}

/* Runs the automatic transitions due by `now`, each at its own due time. */
static void fire_timers(breaker *b, lazy_now *ln)
{
    if (!b->timer_armed)
        return;
    int64_t now = lz(ln);
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
static void drain_fast(breaker *b)
{
    if (!b->fast_records || b->cur != &b->main)
        return;
    int64_t total = breaker__stripes_in_gen(&b->stripes, b->gen);
    assert(total >= b->applied); /* per generation, stripes only count up */
    win_record_clean(&b->main, total - b->applied);
    b->applied = total;
}

/* The state as the lock-free paths must see it once mu is released. */
static void publish_word(breaker *b)
{
    breaker_state s = b->state;
    /* The fast paths skip fire_timers: only OPEN and HALF_OPEN ever hold a timer. */
    assert(!b->timer_armed || s == BREAKER_OPEN || s == BREAKER_HALF_OPEN);
    assert((s != BREAKER_CLOSED && s != BREAKER_METRICS_ONLY) || b->cur == &b->main);
    assert(b->main.calls >= 0 &&
           (b->main.type == BREAKER_TIME_BASED || b->main.calls <= b->main.size));
    assert(b->gen <= UINT64_MAX >> W_GEN_SHIFT);
    uint64_t w = (uint64_t)s | b->gen << W_GEN_SHIFT;
    if (b->fast_records && (s == BREAKER_CLOSED || s == BREAKER_METRICS_ONLY) &&
        b->main.calls >= b->main.min_calls)
        w |= W_FAST;
    /* Unchanged (the common case: a read, a failure that trips nothing) costs no store,
     * so locked calls do not take the line away from the threads on the fast path. */
    if (atomic_load_explicit(&b->word, memory_order_relaxed) != w)
        atomic_store_explicit(&b->word, w, memory_order_release);
}

/* Every locked entry point starts here: due timers first, then the stripes' successes,
 * so the call sees the window as if every earlier record had been locked. */
static void lock_enter(breaker *b, lazy_now *ln)
{
    pthread_mutex_lock(&b->mu);
    *ln = (lazy_now){b, 0, false};
    fire_timers(b, ln);
    drain_fast(b);
}

static void lock_leave(breaker *b)
{
    publish_word(b);
    pthread_mutex_unlock(&b->mu);
}

static bool half_open_acquire(breaker *b)
{
    if (b->half_permits > 0) {
        b->half_permits--;
        return true;
    }
    b->cur->not_permitted++;
    return false;
}

static bool acquire_locked(breaker *b, lazy_now *ln)
{
    switch (b->state) {
    case BREAKER_CLOSED:
    case BREAKER_DISABLED:
    case BREAKER_METRICS_ONLY:
        return true;
    case BREAKER_HALF_OPEN:
        return half_open_acquire(b);
    case BREAKER_OPEN:
        if (lz(ln) > b->retry_after) {
            move_to(b, BREAKER_HALF_OPEN, lz(ln));
            return half_open_acquire(b);
        }
        b->cur->not_permitted++;
        return false;
    case BREAKER_FORCED_OPEN:
        b->cur->not_permitted++;
        return false;
    }
    return false;
}

__attribute__((noinline)) static bool try_acquire_locked(breaker *b)
{
    lazy_now ln;
    lock_enter(b, &ln);
    bool ok = acquire_locked(b, &ln);
    if (!ok)
        publish_simple(b, BREAKER_EV_NOT_PERMITTED);
    lock_leave(b);
    return ok;
}

bool breaker_try_acquire(breaker *b)
{
    uint64_t w = atomic_load_explicit(&b->word, memory_order_acquire);
    breaker_state s = (breaker_state)(w & W_STATE);
    if (s == BREAKER_CLOSED || s == BREAKER_METRICS_ONLY || s == BREAKER_DISABLED)
        return true; /* fast path: see the top comment */
    return try_acquire_locked(b);
}

static void on_result_closed(breaker *b, int res, lazy_now *ln)
{
    if (res == RES_BELOW || res == RES_BELOW_MINIMUM)
        return;
    if (res == RES_FAILURE || res == RES_BOTH)
        publish_rate(b, BREAKER_EV_FAILURE_RATE_EXCEEDED, win_failure_rate(b->cur));
    if (res == RES_SLOW || res == RES_BOTH)
        publish_rate(b, BREAKER_EV_SLOW_CALL_RATE_EXCEEDED, win_slow_rate(b->cur));
    move_to(b, BREAKER_OPEN, lz(ln));
}

static void on_result_metrics_only(breaker *b, int res)
{
    if ((res == RES_FAILURE || res == RES_BOTH) && !b->mo_fr_published) {
        b->mo_fr_published = true;
        publish_rate(b, BREAKER_EV_FAILURE_RATE_EXCEEDED, win_failure_rate(b->cur));
    }
    if ((res == RES_SLOW || res == RES_BOTH) && !b->mo_sc_published) {
        b->mo_sc_published = true;
        publish_rate(b, BREAKER_EV_SLOW_CALL_RATE_EXCEEDED, win_slow_rate(b->cur));
    }
}

/* The state's onSuccess/onError once the event is published. */
static void record_in_state(breaker *b, int out, lazy_now *ln)
{
    int64_t now = b->cur->type == BREAKER_TIME_BASED && b->cur->size > 0 ? lz(ln) : 0;
    switch (b->state) {
    case BREAKER_DISABLED:
    case BREAKER_FORCED_OPEN:
        return;
    case BREAKER_OPEN:
        win_record(b->cur, out, now); /* a call started before the trip: counted, no decision */
        return;
    case BREAKER_CLOSED:
        win_record(b->cur, out, now);
        on_result_closed(b, win_check(b, b->cur), ln);
        return;
    case BREAKER_METRICS_ONLY:
        win_record(b->cur, out, now);
        on_result_metrics_only(b, win_check(b, b->cur));
        return;
    case BREAKER_HALF_OPEN: {
        win_record(b->cur, out, now);
        int res = win_check(b, b->cur);
        if (res == RES_BELOW)
            move_to(b, BREAKER_CLOSED, lz(ln));
        else if (res != RES_BELOW_MINIMUM)
            move_to(b, BREAKER_OPEN, lz(ln));
        return;
    }
    }
}

/* The lock-free record (see the top comment). False: the caller takes the mutex, and
 * claims a stripe first if *claim says the thread lacks one. */
static bool record_fast(breaker *b, breaker_outcome outcome, int64_t duration_ns, bool *claim)
{
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
        return false; /* a failure or a slow call may cross a threshold */
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
__attribute__((noinline)) static void record_locked(breaker *b, breaker_outcome outcome,
                                                    int64_t duration_ns, const char *message,
                                                    bool claim)
{
    breaker_event ev;
    memset(&ev, 0, offsetof(breaker_event, message));
    ev.duration_ns = duration_ns;
    lazy_now ln;
    lock_enter(b, &ln);
    if (claim)
        (void)breaker__stripe_claim(&b->stripes); /* none free: this thread stays locked */
    bool slow = duration_ns > b->cfg.slow_call_duration_threshold_ns;
    switch (outcome) {
    case BREAKER_IGNORED:
        if (b->state == BREAKER_HALF_OPEN)
            b->half_permits++; /* releasePermission: no upper cap, as in Java */
        ev.type = BREAKER_EV_IGNORED_ERROR;
        publish(b, &ev, message);
        break;
    case BREAKER_SUCCESS:
        ev.type = BREAKER_EV_SUCCESS;
        publish(b, &ev, NULL);
        record_in_state(b, slow ? OUT_SLOW_SUCCESS : OUT_SUCCESS, &ln);
        break;
    case BREAKER_FAILURE:
    default:
        ev.type = BREAKER_EV_ERROR;
        publish(b, &ev, message);
        record_in_state(b, slow ? OUT_SLOW_ERROR : OUT_ERROR, &ln);
        break;
    }
    lock_leave(b);
}

void breaker_record_msg(breaker *b, breaker_outcome outcome, int64_t duration_ns,
                        const char *message)
{
    if (duration_ns < 0)
        duration_ns = 0;
    bool claim = false;
    if (!record_fast(b, outcome, duration_ns, &claim))
        record_locked(b, outcome, duration_ns, message, claim);
}

void breaker_record(breaker *b, breaker_outcome outcome, int64_t duration_ns)
{
    breaker_record_msg(b, outcome, duration_ns, NULL);
}

int breaker_transition(breaker *b, breaker_state to)
{
    if ((unsigned)to >= BREAKER_STATE_COUNT)
        return BREAKER_EINVAL;
    lazy_now ln;
    lock_enter(b, &ln);
    int64_t now = lz(&ln);
    int rc = BREAKER_OK;
    if (!transition_legal(b->state, to))
        rc = BREAKER_EILLEGAL;
    else
        move_to(b, to, now);
    lock_leave(b);
    return rc;
}

void breaker_reset(breaker *b)
{
    lazy_now ln;
    lock_enter(b, &ln);
    int64_t now = lz(&ln);
    breaker_state from = b->state;
    enter_state(b, BREAKER_CLOSED, now);
    publish_transition(b, from, BREAKER_CLOSED);
    publish_simple(b, BREAKER_EV_RESET);
    lock_leave(b);
}

void breaker_tick(breaker *b)
{
    lazy_now ln;
    lock_enter(b, &ln);
    lock_leave(b);
}

/* ---- reads ---------------------------------------------------------------------- */

static void metrics_locked(breaker *b, int64_t now, breaker_metrics *m)
{
    win *w = b->cur;
    win_read(w, now);
    m->failure_rate = win_failure_rate(w);
    m->slow_call_rate = win_slow_rate(w);
    m->buffered = w->calls;
    m->failed = w->failed;
    m->successful = w->calls - w->failed;
    m->slow = w->slow;
    m->slow_failed = w->slow_failed;
    m->slow_successful = w->slow - w->slow_failed;
    m->not_permitted = w->not_permitted;
}

void breaker_get_snapshot(breaker *b, breaker_state *state, breaker_metrics *m)
{
    lazy_now ln;
    lock_enter(b, &ln);
    if (state)
        *state = b->state;
    if (m)
        metrics_locked(b, b->cur->type == BREAKER_TIME_BASED ? lz(&ln) : 0, m);
    lock_leave(b);
}

breaker_state breaker_get_state(breaker *b)
{
    breaker_state s;
    breaker_get_snapshot(b, &s, NULL);
    return s;
}

void breaker_get_metrics(breaker *b, breaker_metrics *out)
{
    breaker_get_snapshot(b, NULL, out);
}

void breaker_get_counters(breaker *b, breaker_counters *out)
{
    lazy_now ln;
    lock_enter(b, &ln);
    *out = b->counters;
    breaker__stripes_add_counters(&b->stripes, out);
    lock_leave(b);
}

size_t breaker_get_events(breaker *b, breaker_event *out, size_t max)
{
    lazy_now ln;
    lock_enter(b, &ln);
    size_t n = (size_t)b->ring_len;
    if (out) {
        if (n > max)
            n = max;
        /* the newest n would lose the oldest; we keep oldest-first order of the newest n */
        size_t skip = (size_t)b->ring_len - n;
        for (size_t i = 0; i < n; i++) /* n > 0 implies a ring */
            out[i] = b->ring[(b->ring_head + skip + i) % (size_t)b->cfg.event_buffer_size];
    }
    lock_leave(b);
    return n;
}

const char *breaker_name(const breaker *b)
{
    return b->name;
}

const breaker_config *breaker_get_config(const breaker *b)
{
    return &b->cfg;
}

int breaker_refusal_message(breaker *b, char *buf, size_t len)
{
    breaker_state s = breaker_get_state(b);
    return snprintf(buf, len, "CircuitBreaker '%s' is %s and does not permit further calls",
                    b->name, breaker_state_name(s));
}

/* ---- names, config, lifecycle --------------------------------------------------- */

static const char *const state_names[BREAKER_STATE_COUNT] = {
    "CLOSED", "OPEN", "HALF_OPEN", "DISABLED", "FORCED_OPEN", "METRICS_ONLY"};
static const char *const event_names[BREAKER_EVENT_TYPE_COUNT] = {
    "SUCCESS", "ERROR", "IGNORED_ERROR", "NOT_PERMITTED", "STATE_TRANSITION", "RESET",
    "FAILURE_RATE_EXCEEDED", "SLOW_CALL_RATE_EXCEEDED"};

const char *breaker_state_name(breaker_state s)
{
    return (unsigned)s < BREAKER_STATE_COUNT ? state_names[s] : "UNKNOWN";
}

const char *breaker_event_type_name(breaker_event_type t)
{
    return (unsigned)t < BREAKER_EVENT_TYPE_COUNT ? event_names[t] : "UNKNOWN";
}

int breaker_state_parse(const char *s, breaker_state *out)
{
    for (int i = 0; s && i < BREAKER_STATE_COUNT; i++)
        if (strcmp(s, state_names[i]) == 0) {
            *out = (breaker_state)i;
            return BREAKER_OK;
        }
    return BREAKER_EINVAL;
}

int breaker_event_type_parse(const char *s, breaker_event_type *out)
{
    for (int i = 0; s && i < BREAKER_EVENT_TYPE_COUNT; i++)
        if (strcmp(s, event_names[i]) == 0) {
            *out = (breaker_event_type)i;
            return BREAKER_OK;
        }
    return BREAKER_EINVAL;
}

int breaker_format_float(float v, char *buf, size_t len)
{
    if (isnan(v))
        return snprintf(buf, len, "NaN");
    if (isinf(v))
        return snprintf(buf, len, v > 0 ? "Infinity" : "-Infinity");
    if (v == 0.0f)
        return snprintf(buf, len, signbit(v) ? "-0.0" : "0.0");
    /* shortest %.*e that reads back as v */
    char digits[32];
    int prec;
    for (prec = 0; prec < 9; prec++) {
        snprintf(digits, sizeof digits, "%.*e", prec, (double)v);
        if (strtof(digits, NULL) == v)
            break;
    }
    /* digits = [-]d.ddde[+-]XX: split mantissa digits and exponent */
    const char *p = digits;
    bool neg = *p == '-';
    if (neg)
        p++;
    char mant[16];
    size_t nm = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.' && nm < sizeof mant - 1)
            mant[nm++] = *p;
    mant[nm] = '\0';
    int exp10 = atoi(p + 1);
    while (nm > 1 && mant[nm - 1] == '0')
        mant[--nm] = '\0';
    char out[48];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (exp10 >= -3 && exp10 < 7) {
        /* plain notation, at least one digit on each side of the point */
        if (exp10 < 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = -1; i > exp10; i--)
                out[o++] = '0';
            for (size_t i = 0; i < nm; i++)
                out[o++] = mant[i];
        } else {
            for (int i = 0; i <= exp10; i++)
                out[o++] = (size_t)i < nm ? mant[i] : '0';
            out[o++] = '.';
            if ((size_t)exp10 + 1 >= nm)
                out[o++] = '0';
            for (size_t i = (size_t)exp10 + 1; i < nm; i++)
                out[o++] = mant[i];
        }
        out[o] = '\0';
    } else {
        out[o++] = mant[0];
        out[o++] = '.';
        if (nm == 1)
            out[o++] = '0';
        for (size_t i = 1; i < nm; i++)
            out[o++] = mant[i];
        o += (size_t)snprintf(out + o, sizeof out - o, "E%d", exp10);
    }
    return snprintf(buf, len, "%s", out);
}

breaker_outcome breaker_classify_http(int http_status, bool transport_error, bool timed_out)
{
    if (transport_error || timed_out || http_status >= 500 || http_status <= 0)
        return BREAKER_FAILURE;
    return BREAKER_SUCCESS;
}

void breaker_config_default(breaker_config *c)
{
    memset(c, 0, sizeof *c);
    c->failure_rate_threshold = 50.0f;
    c->slow_call_rate_threshold = 100.0f;
    c->slow_call_duration_threshold_ns = 60 * NS_PER_S;
    c->permitted_calls_in_half_open = 10;
    c->max_wait_in_half_open_ms = 0;
    c->transition_after_wait = BREAKER_OPEN;
    c->window_type = BREAKER_COUNT_BASED;
    c->window_size = 100;
    c->minimum_calls = 100;
    c->wait_in_open_ms = 60000;
    c->exponential_backoff = false;
    c->exponential_multiplier = 1.5;
    c->exponential_max_wait_ms = 0;
    c->randomized_wait = false;
    c->randomized_wait_factor = 0.5;
    c->automatic_transition = false;
    c->initial_state = BREAKER_CLOSED;
    c->event_buffer_size = 100;
}

static int invalid(char *msg, size_t len, const char *text)
{
    if (msg && len)
        snprintf(msg, len, "%s", text);
    return BREAKER_EINVAL;
}

/* Checks in the order Resilience4j's builder meets them; messages are its own. */
int breaker_config_validate(const breaker_config *c, char *msg, size_t len)
{
    char num[48], text[160];
    if (!(c->failure_rate_threshold > 0 && c->failure_rate_threshold <= 100)) {
        breaker_format_float(c->failure_rate_threshold, num, sizeof num);
        snprintf(text, sizeof text,
                 "failureRateThreshold must be greater than 0 and lower than 100, but was %s", num);
        return invalid(msg, len, text);
    }
    if (!(c->slow_call_rate_threshold > 0 && c->slow_call_rate_threshold <= 100)) {
        breaker_format_float(c->slow_call_rate_threshold, num, sizeof num);
        snprintf(text, sizeof text,
                 "slowCallRateThreshold must be greater than 0 and not greater than 100, but was %s",
                 num);
        return invalid(msg, len, text);
    }
    if (c->wait_in_open_ms < 1)
        return invalid(msg, len, "waitDurationInOpenState must be at least 1[ms]");
    if (c->slow_call_duration_threshold_ns < 1)
        return invalid(msg, len, "slowCallDurationThreshold must be at least 1[ns]");
    if (c->max_wait_in_half_open_ms < 0)
        return invalid(msg, len, "maxWaitDurationInHalfOpenState must be greater than or equal to 0[ms]");
    if (c->transition_after_wait != BREAKER_OPEN && c->transition_after_wait != BREAKER_CLOSED)
        return invalid(msg, len, "transitionToStateAfterWaitDuration must be either OPEN or CLOSED");
    if (c->permitted_calls_in_half_open < 1)
        return invalid(msg, len, "permittedNumberOfCallsInHalfOpenState must be greater than 0");
    if (c->window_size < 1)
        return invalid(msg, len, "slidingWindowSize must be greater than 0");
    if (c->minimum_calls < 1)
        return invalid(msg, len, "minimumNumberOfCalls must be greater than 0");
    if (c->window_type != BREAKER_COUNT_BASED && c->window_type != BREAKER_TIME_BASED)
        return invalid(msg, len, "slidingWindowType must be COUNT_BASED or TIME_BASED");
    if ((unsigned)c->initial_state >= BREAKER_STATE_COUNT)
        return invalid(msg, len, "initialState is not a state");
    if (c->exponential_backoff && c->exponential_max_wait_ms < 0) {
        snprintf(text, sizeof text, "Illegal argument interval: %lld millis is less than 1",
                 (long long)c->exponential_max_wait_ms);
        return invalid(msg, len, text);
    }
    if (c->randomized_wait &&
        !(c->randomized_wait_factor >= 0.0 && c->randomized_wait_factor <= 1.0)) {
        snprintf(text, sizeof text, "Illegal argument randomizationFactor: %g",
                 c->randomized_wait_factor);
        return invalid(msg, len, text);
    }
    if (c->exponential_backoff && !(c->exponential_multiplier > 0.0))
        return invalid(msg, len, "exponentialBackoffMultiplier must be greater than 0");
    if (c->event_buffer_size < 0)
        return invalid(msg, len, "eventConsumerBufferSize must be at least 0");
    return BREAKER_OK;
}

void breaker_free(breaker *b)
{
    if (!b)
        return;
    breaker__stripes_destroy(&b->stripes);
    pthread_mutex_destroy(&b->mu);
    free(b->main.b);
    free(b->half.b);
    free(b->ring);
    free(b->name);
    free(b);
}

int breaker_new(const char *name, const breaker_config *cfg, breaker **out, char *msg,
                size_t msglen)
{
    *out = NULL;
    if (!name || !cfg)
        return invalid(msg, msglen, "name and config are required");
    int rc = breaker_config_validate(cfg, msg, msglen);
    if (rc)
        return rc;
    /* aligned: the fast path's fields and the locked ones sit on separate cache lines */
    breaker *b = aligned_alloc(_Alignof(breaker), sizeof *b);
    if (!b)
        return BREAKER_ENOMEM;
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
        return BREAKER_ENOMEM;
    }
    /* Stripes (and their pthread key) only where a record can take the fast path. */
    b->fast_records = cfg->window_type == BREAKER_COUNT_BASED &&
                      cfg->event_buffer_size == 0 && !cfg->listener;
    if (b->fast_records && breaker__stripes_init(&b->stripes) != BREAKER_OK) {
        breaker_free(b);
        return BREAKER_ENOMEM;
    }
    if (!b->stripes.s)
        b->fast_records = false; /* out of pthread keys: every record takes the mutex */
    b->name = strdup(name);
    b->ring = calloc(cfg->event_buffer_size ? (size_t)cfg->event_buffer_size : 1, sizeof *b->ring);
    if (!b->name || !b->ring ||
        win_init(&b->main, cfg->window_type, cfg->window_size, cfg->minimum_calls) ||
        win_init(&b->half, BREAKER_COUNT_BASED, cfg->permitted_calls_in_half_open,
                 cfg->minimum_calls) ||
        win_init(&b->none, BREAKER_COUNT_BASED, 0, cfg->minimum_calls)) {
        breaker_free(b);
        return BREAKER_ENOMEM;
    }
    b->rng = (uint64_t)clock_read(CLOCK_MONOTONIC) ^ (uint64_t)(uintptr_t)b ^
             UINT64_C(0x9E3779B97F4A7C15);
    if (b->rng == 0)
        b->rng = 1;
    /* Initial state as Java builds it: attempts 1 for OPEN, HALF_OPEN, FORCED_OPEN. */
    int64_t now = now_ns(b);
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
    case BREAKER_FORCED_OPEN:
        enter_state(b, BREAKER_FORCED_OPEN, now);
        break;
    default:
        enter_state(b, cfg->initial_state, now);
        break;
    }
    publish_word(b);
    *out = b;
    return BREAKER_OK;
}

/* ---- registry ------------------------------------------------------------------- */

struct breaker_registry {
    pthread_mutex_t mu;
    breaker **items; /* sorted by name */
    size_t n, cap;
};

breaker_registry *breaker_registry_new(void)
{
    breaker_registry *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

void breaker_registry_free(breaker_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        breaker_free(r->items[i]);
    free(r->items);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* Index of the first item whose name is >= name. */
static size_t registry_lower_bound(const breaker_registry *r, const char *name)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(r->items[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int breaker_registry_add(breaker_registry *r, breaker *b)
{
    int rc = BREAKER_OK;
    pthread_mutex_lock(&r->mu);
    size_t at = registry_lower_bound(r, b->name);
    if (at < r->n && strcmp(r->items[at]->name, b->name) == 0) {
        rc = BREAKER_EEXIST;
        goto out;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        breaker **items = realloc(r->items, cap * sizeof *items);
        if (!items) {
            rc = BREAKER_ENOMEM;
            goto out;
        }
        r->items = items;
        r->cap = cap;
    }
    memmove(&r->items[at + 1], &r->items[at], (r->n - at) * sizeof *r->items);
    r->items[at] = b;
    r->n++;
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

breaker *breaker_registry_get(breaker_registry *r, const char *name)
{
    breaker *b = NULL;
    pthread_mutex_lock(&r->mu);
    size_t at = registry_lower_bound(r, name);
    if (at < r->n && strcmp(r->items[at]->name, name) == 0)
        b = r->items[at];
    pthread_mutex_unlock(&r->mu);
    return b;
}

size_t breaker_registry_count(breaker_registry *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

breaker *breaker_registry_at(breaker_registry *r, size_t i)
{
    pthread_mutex_lock(&r->mu);
    breaker *b = i < r->n ? r->items[i] : NULL;
    pthread_mutex_unlock(&r->mu);
    return b;
}
