/*
 * songs: the Resource Service's client of the Song Service, beside storages.c (the Storage
 * Service's). It deletes the song metadata of deleted resources: DELETE {url}/songs?id=...,
 * in chunks whose CSV stays within the Song Service's 200-character limit. No breaker and
 * no fallback: a failed deletion is the janitor's to retry (pending_song_deletes).
 *
 * Ownership: `http` and `lg` are borrowed and must outlive the object; the URL is copied.
 * Thread-safe: the object is read-only after songs_new, and httpc is thread-safe.
 */
#ifndef FERMATA_RESOURCE_SONGS_H
#define FERMATA_RESOURCE_SONGS_H

#include <stddef.h>
#include <stdint.h>

#include "httpc/httpc.h"
#include "log/log.h"

typedef struct songs songs;

/* `url` is the Song Service's base URL. NULL on allocation failure. */
songs *songs_new(const char *url, httpc *http, log_sink *lg);
/* songs_free(NULL) does nothing. */
void songs_free(songs *s);

/* Deletes the song metadata of the given resource ids (each call a CLIENT span of trace,
 * which may be NULL). 0 when every chunk was answered 200;
 * -1 at the first chunk that failed (logged with its ids), the later ones not tried. */
int songs_delete(songs *s, const int32_t *ids, size_t n, const char *request_id, const trace_ctx *trace);

#endif
