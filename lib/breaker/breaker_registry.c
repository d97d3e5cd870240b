/*
 * breaker_registry: named breakers in an array sorted by name, under a mutex of its own.
 * Breakers are never removed, so a pointer handed out stays valid for the registry's life.
 */
#include "breaker.h"
#include "breaker_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct breaker_registry {
  pthread_mutex_t mu;
  breaker **items; /* sorted by name */
  size_t n, cap;
};

breaker_registry *breaker_registry_new(void) {
  breaker_registry *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  if (pthread_mutex_init(&r->mu, NULL) != 0) {
    free(r);
    return NULL;
  }
  return r;
}

void breaker_registry_free(breaker_registry *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n; i++) breaker_free(r->items[i]);
  free(r->items);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

/* Index of the first item whose name is >= name. */
static size_t registry_lower_bound(const breaker_registry *r, const char *name) {
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

int breaker_registry_add(breaker_registry *r, breaker *b) {
  int rc = BREAKER_OK;
  pthread_mutex_lock(&r->mu);
  size_t at = registry_lower_bound(r, b->name);
  if (at < r->n && strcmp(r->items[at]->name, b->name) == 0) {
    rc = BREAKER_ERR_EXISTS;
    goto out;
  }
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 8;
    breaker **items = realloc(r->items, cap * sizeof *items);
    if (!items) {
      rc = BREAKER_ERR_NOMEM;
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

breaker *breaker_registry_get(breaker_registry *r, const char *name) {
  breaker *b = NULL;
  pthread_mutex_lock(&r->mu);
  size_t at = registry_lower_bound(r, name);
  if (at < r->n && strcmp(r->items[at]->name, name) == 0) b = r->items[at];
  pthread_mutex_unlock(&r->mu);
  return b;
}

size_t breaker_registry_count(breaker_registry *r) {
  pthread_mutex_lock(&r->mu);
  size_t n = r->n;
  pthread_mutex_unlock(&r->mu);
  return n;
}

breaker *breaker_registry_at(breaker_registry *r, size_t i) {
  pthread_mutex_lock(&r->mu);
  breaker *b = i < r->n ? r->items[i] : NULL;
  pthread_mutex_unlock(&r->mu);
  return b;
}
