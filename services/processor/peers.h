/*
 * peers: the processor's two HTTP calls, GET {resource}/resources/{id} (one byte range of
 * it at a time: the resource is never fetched whole) and POST {song}/songs, with their
 * answers sorted into what the pipeline must do next.
 *
 * Classification (the why): 5xx, 408, 429 and transport errors are the peer being away
 * or overloaded, so they are worth another try; other 4xx answers will not change by
 * retrying. A 404 from the Resource Service means the resource was deleted after its
 * upload message was written; a 409 from the Song Service means the metadata is already
 * stored (an earlier attempt got that far), which for this pipeline is success.
 *
 * Thread-safety: a peers value is read-only after set-up; httpc clients are thread-safe,
 * the stats are atomics. Every call is one attempt: retrying is the caller's policy.
 */
#ifndef FERMATA_PROC_PEERS_H
#define FERMATA_PROC_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "httpc/httpc.h"
#include "mp3/mp3.h"
#include "proc.h"

/* What a call returns; the peer's definite answers (found or deleted, created or already
 * stored) are PEER_OK with the outcome in an out-parameter. */
enum {
  PEER_OK = 0,             /* resource: 206 (or 200), 416 or 404; song: 2xx or 409 */
  PEER_ERR_TRANSIENT = -1, /* try again later */
  PEER_ERR_PERMANENT = -2, /* trying again cannot help */
};

typedef struct peers {
  httpc *resource_http;     /* borrowed; bodies go to the caller's window (peers_get_range) */
  httpc *song_http;         /* borrowed */
  const char *resource_url; /* base URL without trailing slash, borrowed */
  const char *song_url;     /* base URL without trailing slash, borrowed */
  proc_stats *stats;        /* borrowed; client call metrics */
} peers;

/* What a ranged GET brought, on PEER_OK. */
typedef struct peers_range {
  bool found;     /* false: a 404, the resource was deleted (nothing else is set) */
  size_t got;     /* bytes written to buf, from offset; 0 for an offset at or past the end (416) */
  uint64_t total; /* the resource's size, from Content-Range */
} peers_range;

/* GETs bytes [offset, offset + want) of resource id (fewer at the end of the file) with
 * "Range: bytes=offset-(offset+want-1)" into buf, which has room for buf_cap >= want bytes
 * (an error answer is read there too). A 206 must name the range asked for and a size in
 * its Content-Range; a 200 (a server that ignores Range) is taken when offset is 0 and the
 * whole body fits want. PEER_OK with *out, or a negative PEER_ERR_*. The bytes received are
 * added to stats->fetched_bytes. reason receives a short text for logs and dead letters.
 * request_id and trace (the parent of the call's CLIENT span, lib/httpc) may be NULL. */
int peers_get_range(const peers *p, int32_t id, const char *request_id, const trace_ctx *trace, uint64_t offset,
                    size_t want, void *buf, size_t buf_cap, peers_range *out, char *reason, size_t reason_cap);

/* Posts the metadata of resource id. PEER_OK or a negative PEER_ERR_*; on PEER_OK,
 * *created says whether this call stored it (false: a 409, it was stored already). */
int peers_post_song(const peers *p, int32_t id, const mp3_song *song, const char *request_id, const trace_ctx *trace,
                    bool *created, char *reason, size_t reason_cap);

#endif
