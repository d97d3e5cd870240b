/*
 * breaker_stripe: per-thread counters behind lib/breaker's lock-free fast path. Internal to
 * lib/breaker (breaker_state.c and breaker_read.c use it; tests/unit/breaker_stripe_test.c
 * pins it).
 *
 * Why stripes. The fast path must cost a few nanoseconds on one thread and the same on two,
 * so it may neither take a lock nor do an atomic read-modify-write on a shared cache line
 * (about 5 ns uncontended and 15-50 ns when two cores fight over the line, measured here).
 * Each breaker therefore owns BREAKER__STRIPES stripes, 128 bytes each (two cache lines,
 * so the adjacent-line prefetcher does not pair two owners). A stripe has one writer, the
 * thread that owns it, which updates it with relaxed atomic stores (plain moves, no
 * read-modify-write); readers merge every stripe ever claimed.
 *
 * Ownership. A thread claims a free stripe (breaker__stripe_claim, under the breaker's
 * mutex) the first time the fast path wants one. It finds it again with no call and no
 * thread-local variable: its thread pointer (the address of its thread control block,
 * unique among live threads) hashed to a slot, then up to BREAKER__PROBES slots on, until
 * one whose owner is that pointer; pthread_getspecific, a libc call, cost a quarter of
 * the fast path. The breaker's own pthread key (no process-wide state) holds the thread's
 * owner slot only so that its destructor hands the stripe back when the thread exits,
 * with everything it counted: the next owner goes on from those numbers, so counts are
 * never lost with a thread, and a new thread on the same control block finds it free. If
 * every slot in a thread's probe range is owned, or the process is out of pthread keys,
 * the caller takes the mutex path: slower, never wrong.
 *
 * Consistency. The owner writes inside a sequence lock (seq odd while writing); a reader
 * retries until it reads a stripe between two writes, so it sees a prefix of the owner's
 * records, never half of one. Readers hold the breaker's mutex, so readers never race
 * each other; writers never wait.
 *
 * What a stripe counts: the outcomes the fast path takes, as the published-event counters
 * do (calls, total and maximum duration for SUCCESS and IGNORED), and how many SUCCESSes
 * it recorded in window generation `gen` (breaker_state.c applies those to its window).
 */
#ifndef FERMATA_BREAKER_STRIPE_H
#define FERMATA_BREAKER_STRIPE_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "breaker.h"

#define BREAKER__STRIPES 64 /* one bit each in breaker__stripes.claimed */
#define BREAKER__PROBES 8

enum { BREAKER__K_SUCCESS = 0, BREAKER__K_IGNORED = 1, BREAKER__KINDS = 2 };

typedef struct breaker__stripes breaker__stripes;

typedef struct breaker__stripe {
  _Alignas(128) _Atomic uint32_t seq; /* even between writes */
  _Atomic uint64_t gen;               /* window generation in_gen belongs to */
  _Atomic int64_t in_gen;             /* SUCCESS records made in generation gen */
  _Atomic int64_t calls[BREAKER__KINDS];
  _Atomic int64_t sum_ns[BREAKER__KINDS];
  _Atomic int64_t max_ns[BREAKER__KINDS];
} breaker__stripe;

struct breaker__stripes {
  breaker__stripe *s; /* BREAKER__STRIPES of them; NULL: no key, no fast path */
  /* owner[i]: the thread pointer of stripe i's owner, 0 when free. Apart from the
     * stripes, on lines written only at claim and release: a thread probing past another
     * one's slot must not pull that thread's counters away from it. */
  _Atomic uintptr_t *owner;
  pthread_key_t key;
  uint64_t claimed; /* bit i: stripe i was claimed at least once (breaker mutex) */
};

/* A stripe as a reader saw it between two of its owner's writes. */
typedef struct breaker__stripe_view {
  uint64_t gen;
  int64_t in_gen;
  int64_t calls[BREAKER__KINDS], sum_ns[BREAKER__KINDS], max_ns[BREAKER__KINDS];
} breaker__stripe_view;

/* BREAKER_OK or BREAKER_ERR_NOMEM. Out of pthread keys is not an error: the set is empty
 * (s == NULL) and every caller takes the mutex path. */
int breaker__stripes_init(breaker__stripes *set);
/* Precondition: no thread uses the breaker any more, and none that used it is exiting
 * right now (its key destructor would touch the freed stripes). */
void breaker__stripes_destroy(breaker__stripes *set);

/* Unique among live threads; the same for a thread's whole life. */
static inline uintptr_t breaker__thread_token(void) { return (uintptr_t)__builtin_thread_pointer(); }

/* Fibonacci hashing: thread control blocks sit at large, aligned strides, so the top bits
 * of the product are the ones that differ. */
static inline unsigned breaker__stripe_home(uintptr_t token) {
  return (unsigned)(((uint64_t)token * UINT64_C(0x9E3779B97F4A7C15)) >> 58);
}

/* The calling thread's stripe, or NULL if it has none (yet). The set has stripes. */
static inline breaker__stripe *breaker__stripe_mine(const breaker__stripes *set) {
  assert(set->s);
  uintptr_t me = breaker__thread_token();
  unsigned home = breaker__stripe_home(me);
  for (unsigned p = 0; p < BREAKER__PROBES; p++) {
    unsigned i = (home + p) % BREAKER__STRIPES;
    /* relaxed: only this thread ever stores its own token */
    if (atomic_load_explicit(&set->owner[i], memory_order_relaxed) == me) return &set->s[i];
  }
  return NULL;
}

/* Gives the calling thread a stripe if it has none and one is free; NULL otherwise.
 * Caller holds the breaker's mutex (which orders claims and readers). */
breaker__stripe *breaker__stripe_claim(breaker__stripes *set);

/* Counts one outcome of `kind`, made in window generation `gen`. Only the owner calls it. */
static inline void breaker__stripe_add(breaker__stripe *s, int kind, uint64_t gen, int64_t duration_ns) {
  uint32_t q = atomic_load_explicit(&s->seq, memory_order_relaxed);
  atomic_store_explicit(&s->seq, q + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release); /* seq odd before any field changes */
  if (kind == BREAKER__K_SUCCESS) {
    int64_t n = 1;
    if (atomic_load_explicit(&s->gen, memory_order_relaxed) == gen)
      n += atomic_load_explicit(&s->in_gen, memory_order_relaxed);
    else
      atomic_store_explicit(&s->gen, gen, memory_order_relaxed);
    atomic_store_explicit(&s->in_gen, n, memory_order_relaxed);
  }
  atomic_store_explicit(&s->calls[kind], atomic_load_explicit(&s->calls[kind], memory_order_relaxed) + 1,
                        memory_order_relaxed);
  atomic_store_explicit(&s->sum_ns[kind], atomic_load_explicit(&s->sum_ns[kind], memory_order_relaxed) + duration_ns,
                        memory_order_relaxed);
  if (duration_ns > atomic_load_explicit(&s->max_ns[kind], memory_order_relaxed))
    atomic_store_explicit(&s->max_ns[kind], duration_ns, memory_order_relaxed);
  atomic_store_explicit(&s->seq, q + 2, memory_order_release);
}

/* Reads stripe i (claimed at least once) between two of its owner's writes. Caller holds
 * the breaker's mutex. */
void breaker__stripe_read(breaker__stripes *set, int32_t i, breaker__stripe_view *out);

/* Sum of in_gen over the stripes whose generation is `gen`. Breaker mutex held. */
int64_t breaker__stripes_in_gen(breaker__stripes *set, uint64_t gen);

/* Adds what the stripes counted to acc (SUCCESS to index 0, IGNORED to index 2, as
 * breaker_counters orders kinds). Breaker mutex held. */
void breaker__stripes_add_counters(breaker__stripes *set, breaker_counters *acc);

#endif
