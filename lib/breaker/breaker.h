/*
 * breaker: a circuit breaker with the semantics of Resilience4j 2.4.0's CircuitBreaker.
 *
 * What it reproduces (tests/conformance/breaker runs it against the real library):
 * six states (CLOSED, OPEN, HALF_OPEN, DISABLED, FORCED_OPEN, METRICS_ONLY), manual
 * transitions and reset, COUNT_BASED and TIME_BASED sliding windows, every option with
 * the same defaults and the same validation messages, the same metrics (rates are float32
 * and -1 below the minimum number of calls) and the same events, published in the same
 * order and under the same rules (DISABLED and FORCED_OPEN only publish STATE_TRANSITION
 * and RESET).
 *
 * Outcome classification is the caller's: it records SUCCESS, FAILURE or IGNORED with the
 * call's duration. breaker_classify_http() gives this system's rule (connection error,
 * timeout, 5xx = failure; any other HTTP answer, including 4xx = success, like an
 * exception Resilience4j does not record).
 *
 * Time. Two injectable clocks, both returning nanoseconds: `clock` (monotonic by default)
 * drives waits, timers and TIME_BASED buckets; `wall_clock` (CLOCK_REALTIME by default)
 * only stamps events. The TIME_BASED window keys buckets by clock_ns / 1e9, as Java keys
 * them by Instant.getEpochSecond().
 *
 * Automatic transitions without a scheduler thread. Resilience4j schedules two timers on
 * an executor: OPEN -> HALF_OPEN after the wait (automaticTransitionFromOpenToHalfOpen)
 * and HALF_OPEN -> OPEN/CLOSED after maxWaitDurationInHalfOpenState. Here a state holds at
 * most one due time; every call and every read first fires the timers that are due at
 * `now` (due <= now), in order, each at its own due time: the state it enters starts at
 * the due time, not at `now` (so a chain OPEN -> HALF_OPEN -> OPEN over a long pause lands
 * exactly where a punctual scheduler would have). Any transition cancels the pending timer,
 * as Java's preTransitionHook does; reset() cancels it too (Java forgets to: a known bug
 * we do not copy). An owner who wants transitions to happen (and be logged) while nobody
 * calls may call breaker_tick() from a timer; it is never needed for correctness. The
 * conformance harness models Java's scheduler the same way: a manual executor whose tasks
 * run, clock set to their due time, when the test advances the clock past them.
 *
 * Ownership and threads. A breaker is thread-safe. One mutex guards it, except on the
 * fast path, which takes no lock and writes no shared memory (breaker_state.c explains
 * why it decides exactly what the locked path would): breaker_try_acquire in CLOSED,
 * METRICS_ONLY and DISABLED; breaker_record in DISABLED and FORCED_OPEN (it does nothing
 * there); and breaker_record of a SUCCESS that is not slow or of an IGNORED outcome in
 * CLOSED or METRICS_ONLY once a COUNT_BASED window holds minimumNumberOfCalls calls, if
 * nothing consumes events (event_buffer_size 0 and no listener). Other calls hold the
 * mutex for O(1) work, O(window) on state changes and when they first apply successes
 * recorded lock-free. Calls from one thread give exactly Resilience4j's results;
 * concurrent calls act as if made one at a time in some order, with the latitude
 * Resilience4j has too: a record racing with a state change may count in the state it
 * started in. A read sees every call that happened before it (same thread, or ordered
 * by synchronisation); calls still in flight may or may not be in it.
 *
 * A lock-free record writes a per-thread slot of the breaker (64 of them, so up to 64
 * threads at once, fewer when their slots collide; the others take the mutex), given back
 * when its thread exits by the destructor of a pthread key that each breaker able to
 * record lock-free creates (out of keys, it always locks).
 * So breaker_free(b) needs, besides no call on b in progress, that no thread which
 * recorded on b is exiting at that moment (freeing after joining the workers, or at the
 * end of main, is fine).
 *
 * The event listener is called with the mutex held: it must not call back into the same
 * breaker and should be short (log a line). Strings returned as `const char *` are
 * borrowed from the breaker or static.
 */
#ifndef FERMATA_BREAKER_H
#define FERMATA_BREAKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct breaker breaker;
typedef struct breaker_registry breaker_registry;

enum {
  BREAKER_OK = 0,
  BREAKER_ERR_INVALID = -1, /* invalid configuration or argument; message filled in */
  BREAKER_ERR_NOMEM = -2,
  BREAKER_ERR_ILLEGAL_STATE = -3, /* illegal state transition; state unchanged */
  BREAKER_ERR_NOT_FOUND = -4,
  BREAKER_ERR_EXISTS = -5, /* registry already holds that name */
};

/* Java's declaration order is not used anywhere we print, so states are listed as the
 * actuator prints them. */
typedef enum {
  BREAKER_CLOSED = 0,
  BREAKER_OPEN,
  BREAKER_HALF_OPEN,
  BREAKER_DISABLED,
  BREAKER_FORCED_OPEN,
  BREAKER_METRICS_ONLY,
} breaker_state;
#define BREAKER_STATE_COUNT 6

typedef enum { BREAKER_COUNT_BASED = 0, BREAKER_TIME_BASED } breaker_window_type;

typedef enum { BREAKER_SUCCESS = 0, BREAKER_FAILURE, BREAKER_IGNORED } breaker_outcome;

typedef enum {
  BREAKER_EV_SUCCESS = 0,
  BREAKER_EV_ERROR,
  BREAKER_EV_IGNORED_ERROR,
  BREAKER_EV_NOT_PERMITTED,
  BREAKER_EV_STATE_TRANSITION,
  BREAKER_EV_RESET,
  BREAKER_EV_FAILURE_RATE_EXCEEDED,
  BREAKER_EV_SLOW_CALL_RATE_EXCEEDED,
} breaker_event_type;
#define BREAKER_EVENT_TYPE_COUNT 8

#define BREAKER_MSG_MAX 160

typedef struct breaker_event {
  breaker_event_type type;
  int64_t wall_ns;               /* creation time, from the wall clock */
  int64_t duration_ns;           /* SUCCESS, ERROR, IGNORED_ERROR */
  breaker_state from, to;        /* STATE_TRANSITION */
  float rate;                    /* *_RATE_EXCEEDED */
  char message[BREAKER_MSG_MAX]; /* ERROR, IGNORED_ERROR: what the caller passed */
} breaker_event;

/* Returns nanoseconds. `ctx` is the pointer given next to it in the config. */
typedef int64_t (*breaker_clock_fn)(void *ctx);
/* Called for every published event, breaker lock held (see top comment). */
typedef void (*breaker_listener_fn)(void *ctx, const breaker *b, const breaker_event *ev);
/* Uniform double in [0, 1): the randomized wait's Math.random(). */
typedef double (*breaker_random_fn)(void *ctx);

typedef struct breaker_config {
  float failure_rate_threshold;            /* percent, (0, 100]; default 50 */
  float slow_call_rate_threshold;          /* percent, (0, 100]; default 100 */
  int64_t slow_call_duration_threshold_ns; /* >= 1; default 60 s; slow if duration > it */
  int32_t permitted_calls_in_half_open;    /* >= 1; default 10 */
  int64_t max_wait_in_half_open_ms;        /* >= 0; 0 = stay HALF_OPEN until decided */
  breaker_state transition_after_wait;     /* OPEN (default) or CLOSED */
  breaker_window_type window_type;         /* default COUNT_BASED */
  int32_t window_size;                     /* calls or seconds, >= 1; default 100 */
  int32_t minimum_calls;                   /* >= 1; default 100 */
  int64_t wait_in_open_ms;                 /* >= 1; default 60000 */
  /* Interval function for the wait in OPEN (Spring's names). attempt n waits
     * wait * multiplier^(n-1) (truncated at each step, like Java), capped by max if > 0,
     * then randomized by +-factor. */
  bool exponential_backoff;        /* default false */
  double exponential_multiplier;   /* default 1.5 */
  int64_t exponential_max_wait_ms; /* 0 = no cap */
  bool randomized_wait;            /* default false */
  double randomized_wait_factor;   /* [0, 1]; default 0.5 */
  bool automatic_transition;       /* automaticTransitionFromOpenToHalfOpenEnabled */
  breaker_state initial_state;     /* default CLOSED */
  int32_t event_buffer_size;       /* ring of last events; default 100; 0 = keep
                                            * none (with no listener, events cost nothing) */
  breaker_clock_fn clock;          /* NULL = CLOCK_MONOTONIC */
  void *clock_ctx;
  breaker_clock_fn wall_clock; /* NULL = CLOCK_REALTIME */
  void *wall_clock_ctx;
  breaker_random_fn random; /* NULL = internal xorshift seeded per breaker */
  void *random_ctx;
  breaker_listener_fn listener; /* NULL = none */
  void *listener_ctx;
} breaker_config;

/* Snapshot of the current state's metrics (they restart with most states, see README). */
typedef struct breaker_metrics {
  float failure_rate;   /* -1 below the minimum number of calls */
  float slow_call_rate; /* -1 likewise */
  int32_t buffered, failed, successful, slow, slow_successful, slow_failed;
  int64_t not_permitted;
} breaker_metrics;

/* Cumulative counters fed by published events, for Prometheus (micrometer's timer and
 * counter): index 0 successful, 1 failed, 2 ignored. max is the lifetime maximum. */
typedef struct breaker_counters {
  int64_t calls[3];
  int64_t sum_ns[3];
  int64_t max_ns[3];
  int64_t not_permitted;
} breaker_counters;

/* Fills Resilience4j's defaults (and no clocks, no listener). */
void breaker_config_default(breaker_config *cfg);

/* 0 if valid, else BREAKER_ERR_INVALID with Resilience4j's message in msg (may be NULL). */
int breaker_config_validate(const breaker_config *cfg, char *msg, size_t msglen);

/* Creates a breaker; copies name and cfg. On BREAKER_ERR_INVALID, msg says why. */
int breaker_new(const char *name, const breaker_config *cfg, breaker **out, char *msg, size_t msglen);
/* No call on b may be in progress; see the top comment for threads that used b. */
void breaker_free(breaker *b);

/* tryAcquirePermission(): true if the call may proceed. A refusal counts as not
 * permitted and publishes NOT_PERMITTED. Every permitted call must be followed by one
 * breaker_record (IGNORED gives a half-open permit back). */
bool breaker_try_acquire(breaker *b);

/* onSuccess / onError / ignored error. duration_ns >= 0. message (may be NULL) is kept in
 * ERROR and IGNORED_ERROR events, truncated to BREAKER_MSG_MAX - 1 bytes. */
void breaker_record(breaker *b, breaker_outcome outcome, int64_t duration_ns);
void breaker_record_msg(breaker *b, breaker_outcome outcome, int64_t duration_ns, const char *message);

/* Manual transition (transitionToXState). BREAKER_ERR_ILLEGAL_STATE for CLOSED->HALF_OPEN,
 * METRICS_ONLY->OPEN and METRICS_ONLY->HALF_OPEN. A same-state transition restarts the
 * state without an event. */
int breaker_transition(breaker *b, breaker_state to);
/* Fresh CLOSED state; STATE_TRANSITION (if not CLOSED) then RESET. */
void breaker_reset(breaker *b);
/* Fires due timers. Optional (see top comment). */
void breaker_tick(breaker *b);

breaker_state breaker_get_state(breaker *b);
void breaker_get_metrics(breaker *b, breaker_metrics *out);
void breaker_get_counters(breaker *b, breaker_counters *out);
/* State and metrics read under one lock, so they agree. */
void breaker_get_snapshot(breaker *b, breaker_state *state, breaker_metrics *m);
const char *breaker_name(const breaker *b);
const breaker_config *breaker_get_config(const breaker *b);

/* Copies up to max events, oldest first, into out; returns how many were copied.
 * With out == NULL returns how many are buffered. */
size_t breaker_get_events(breaker *b, breaker_event *out, size_t max);

/* "CLOSED", "OPEN", ... and "SUCCESS", "ERROR", ...: static strings. */
const char *breaker_state_name(breaker_state s);
const char *breaker_event_type_name(breaker_event_type t);
/* Parses the names above; 0 or BREAKER_ERR_INVALID. */
int breaker_state_parse(const char *s, breaker_state *out);
int breaker_event_type_parse(const char *s, breaker_event_type *out);

/* Java's Float.toString (e.g. "-1.0", "50.0", "33.333332", "1.0E-4"): shortest digits that
 * read back as the same float. Returns the length written (snprintf semantics). */
int breaker_format_float(float v, char *buf, size_t len);

/* This system's classification of an HTTP call: transport_error (connection refused,
 * reset, DNS...) or timed_out or status >= 500 -> FAILURE; anything else -> SUCCESS. */
breaker_outcome breaker_classify_http(int http_status, bool transport_error, bool timed_out);

/* Refusal text as Resilience4j words it: "CircuitBreaker 'NAME' is OPEN and does not
 * permit further calls" (state is the current one). Returns snprintf's length. */
int breaker_refusal_message(breaker *b, char *buf, size_t len);

/* Registry of named breakers, iterated sorted by name. Thread-safe. Breakers added are
 * owned by the registry and freed with it. */
breaker_registry *breaker_registry_new(void);
void breaker_registry_free(breaker_registry *r);
int breaker_registry_add(breaker_registry *r, breaker *b); /* BREAKER_ERR_EXISTS: not taken */
breaker *breaker_registry_get(breaker_registry *r, const char *name);
size_t breaker_registry_count(breaker_registry *r);
/* i-th breaker in name order, NULL past the end. Breakers are never removed, so the
 * pointer stays valid for the registry's life. */
breaker *breaker_registry_at(breaker_registry *r, size_t i);

#endif
