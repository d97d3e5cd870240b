/*
 * curlpool: a pool of idle libcurl easy handles, shared by the outgoing clients (lib/httpc,
 * lib/s3). A handle returned to the pool is reset (curl_easy_reset drops its options but
 * keeps its live connections, DNS and TLS caches), so the next request reuses the
 * connection. Up to max_idle handles are kept; beyond that they are cleaned up.
 *
 * Thread-safe: get and put may be called from any thread; a handle taken belongs to the
 * taker until it is put back. The pool owns its idle handles.
 */
#ifndef FERMATA_CURLPOOL_H
#define FERMATA_CURLPOOL_H

#include <curl/curl.h>

typedef struct curlpool curlpool;

/* max_idle > 0. NULL when out of memory. */
curlpool *curlpool_new(int max_idle);
/* Cleans up the idle handles; every taken handle must have been put back (or cleaned up). */
void curlpool_free(curlpool *p);

/* An idle handle, or a new one; NULL when libcurl cannot make one. */
CURL *curlpool_get(curlpool *p);
/* Gives h back (NULL is ignored): reset and kept, or cleaned up when the pool is full. */
void curlpool_put(curlpool *p, CURL *h);
/* Handles idle in the pool now. */
int curlpool_idle(curlpool *p);

#endif
