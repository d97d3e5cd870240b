/* curlpool: see curlpool.h. */
#include "curlpool.h"

#include <pthread.h>
#include <stdlib.h>

struct curlpool {
  pthread_mutex_t lock; /* guards idle / n_idle */
  CURL **idle;
  int n_idle;
  int max_idle;
};

curlpool *curlpool_new(int max_idle) {
  if (max_idle <= 0) return NULL;
  curlpool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->max_idle = max_idle;
  p->idle = calloc((size_t)max_idle, sizeof *p->idle);
  if (!p->idle || pthread_mutex_init(&p->lock, NULL) != 0) {
    free(p->idle);
    free(p);
    return NULL;
  }
  return p;
}

void curlpool_free(curlpool *p) {
  if (!p) return;
  for (int i = 0; i < p->n_idle; i++) curl_easy_cleanup(p->idle[i]);
  pthread_mutex_destroy(&p->lock);
  free(p->idle);
  free(p);
}

CURL *curlpool_get(curlpool *p) {
  CURL *h = NULL;
  pthread_mutex_lock(&p->lock);
  if (p->n_idle > 0) h = p->idle[--p->n_idle];
  pthread_mutex_unlock(&p->lock);
  return h ? h : curl_easy_init();
}

void curlpool_put(curlpool *p, CURL *h) {
  if (!h) return;
  curl_easy_reset(h); /* options go, connections and caches stay */
  pthread_mutex_lock(&p->lock);
  if (p->n_idle < p->max_idle) {
    p->idle[p->n_idle++] = h;
    h = NULL;
  }
  pthread_mutex_unlock(&p->lock);
  if (h) curl_easy_cleanup(h);
}

int curlpool_idle(curlpool *p) {
  pthread_mutex_lock(&p->lock);
  int n = p->n_idle;
  pthread_mutex_unlock(&p->lock);
  return n;
}
