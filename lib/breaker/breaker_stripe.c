/*
 * breaker_stripe.c: see breaker_stripe.h for the design. What lives here is the slow half:
 * creating the set and its pthread key, claiming and handing back stripes, and reading
 * them under the sequence lock. The two hot functions (find my stripe, add to it) are
 * inline in the header.
 */
#include "breaker_stripe.h"

#include <assert.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* Thread exit: the stripe goes back to the set with its counts. The key's value is the
 * stripe's owner slot. The release store pairs with the acquire load in
 * breaker__stripe_claim, so the next owner's plain stores come after everything this
 * owner wrote. */
static void stripe_release(void *p) {
  _Atomic uintptr_t *owner = p;
  assert(atomic_load_explicit(owner, memory_order_relaxed) == breaker__thread_token());
  atomic_store_explicit(owner, 0, memory_order_release);
}

/* One block: the owner slots (own cache lines), then the stripes. */
#define OWNER_BYTES 512
_Static_assert(BREAKER__STRIPES * sizeof(uintptr_t) <= OWNER_BYTES, "owner slots fit");
_Static_assert(OWNER_BYTES % _Alignof(breaker__stripe) == 0, "stripes stay aligned");
_Static_assert(BREAKER__STRIPES == 64, "one bit per stripe in `claimed`");

int breaker__stripes_init(breaker__stripes *set) {
  memset(set, 0, sizeof *set);
  if (pthread_key_create(&set->key, stripe_release) != 0)
    return BREAKER_OK; /* no key left: this breaker always takes its mutex */
  size_t bytes = OWNER_BYTES + BREAKER__STRIPES * sizeof(breaker__stripe);
  char *block = aligned_alloc(_Alignof(breaker__stripe), bytes);
  if (!block) {
    pthread_key_delete(set->key);
    return BREAKER_ERR_NOMEM;
  }
  memset(block, 0, bytes);
  set->owner = (_Atomic uintptr_t *)block;
  set->s = (breaker__stripe *)(block + OWNER_BYTES);
  return BREAKER_OK;
}

void breaker__stripes_destroy(breaker__stripes *set) {
  if (!set->s) return;
  /* Deleting the key first: threads that still hold a stripe exit later without
     * calling the destructor on freed memory. */
  pthread_key_delete(set->key);
  free(set->owner); /* the block */
  set->s = NULL;
  set->owner = NULL;
}

breaker__stripe *breaker__stripe_claim(breaker__stripes *set) {
  if (!set->s || breaker__stripe_mine(set)) return NULL;
  uintptr_t me = breaker__thread_token();
  unsigned home = breaker__stripe_home(me);
  for (unsigned p = 0; p < BREAKER__PROBES; p++) {
    unsigned i = (home + p) % BREAKER__STRIPES;
    /* Claims are serialised by the breaker mutex; only a destructor changes an owner
         * slot concurrently, and only to 0. */
    if (atomic_load_explicit(&set->owner[i], memory_order_acquire) != 0) continue;
    if (pthread_setspecific(set->key, (void *)&set->owner[i]) != 0) return NULL;
    atomic_store_explicit(&set->owner[i], me, memory_order_relaxed);
    set->claimed |= UINT64_C(1) << i;
    return &set->s[i];
  }
  return NULL;
}

void breaker__stripe_read(breaker__stripes *set, int32_t i, breaker__stripe_view *v) {
  assert(i >= 0 && i < BREAKER__STRIPES && (set->claimed >> i & 1));
  breaker__stripe *s = &set->s[i];
  for (unsigned spins = 1;; spins++) {
    uint32_t q = atomic_load_explicit(&s->seq, memory_order_acquire);
    if ((q & 1) == 0) {
      v->gen = atomic_load_explicit(&s->gen, memory_order_relaxed);
      v->in_gen = atomic_load_explicit(&s->in_gen, memory_order_relaxed);
      for (int k = 0; k < BREAKER__KINDS; k++) {
        v->calls[k] = atomic_load_explicit(&s->calls[k], memory_order_relaxed);
        v->sum_ns[k] = atomic_load_explicit(&s->sum_ns[k], memory_order_relaxed);
        v->max_ns[k] = atomic_load_explicit(&s->max_ns[k], memory_order_relaxed);
      }
      /* The fields were read before seq is read again (pairs with the owner's
             * release fence: a field from a newer write implies a newer seq). */
      atomic_thread_fence(memory_order_acquire);
      if (atomic_load_explicit(&s->seq, memory_order_relaxed) == q) return;
    }
    /* The owner is mid-write: a few stores, unless it was preempted there. */
    if (spins % 64 == 0) sched_yield();
  }
}

int64_t breaker__stripes_in_gen(breaker__stripes *set, uint64_t gen) {
  int64_t n = 0;
  for (uint64_t m = set->claimed; m; m &= m - 1) {
    breaker__stripe_view v;
    breaker__stripe_read(set, __builtin_ctzll(m), &v);
    if (v.gen == gen) n += v.in_gen;
  }
  assert(n >= 0);
  return n;
}

void breaker__stripes_add_counters(breaker__stripes *set, breaker_counters *acc) {
  static const int slot[BREAKER__KINDS] = {0, 2}; /* SUCCESS, IGNORED in breaker_counters */
  for (uint64_t m = set->claimed; m; m &= m - 1) {
    breaker__stripe_view v;
    breaker__stripe_read(set, __builtin_ctzll(m), &v);
    for (int k = 0; k < BREAKER__KINDS; k++) {
      int j = slot[k];
      acc->calls[j] += v.calls[k];
      acc->sum_ns[j] += v.sum_ns[k];
      if (v.max_ns[k] > acc->max_ns[j]) acc->max_ns[j] = v.max_ns[k];
    }
  }
}
