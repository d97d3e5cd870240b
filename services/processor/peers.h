/*
 * peers: the processor's two HTTP calls, GET {resource}/resources/{id} and
 * POST {song}/songs, with their answers sorted into what the pipeline must do next.
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
  PEER_OK = 0,             /* resource: 200 or 404; song: 2xx or 409 */
  PEER_ERR_TRANSIENT = -1, /* try again later */
  PEER_ERR_PERMANENT = -2, /* trying again cannot help */
};

typedef struct peers {
  httpc *resource_http;     /* borrowed; body cap = largest resource accepted */
  httpc *song_http;         /* borrowed */
  const char *resource_url; /* base URL without trailing slash, borrowed */
  const char *song_url;     /* base URL without trailing slash, borrowed */
  proc_stats *stats;        /* borrowed; client call metrics */
} peers;

/* Fetches the bytes of resource id. PEER_OK or a negative PEER_ERR_*. On PEER_OK, *found
 * says whether the resource exists (false: a 404, it was deleted); when it does, *resp
 * holds the bytes (resp->body, body_len) and the caller must httpc_response_free(resp);
 * otherwise resp holds nothing to free (it is freed here). reason receives a short text
 * for logs and dead letters. request_id may be NULL. */
int peers_get_resource(const peers *p, int32_t id, const char *request_id, httpc_response *resp, bool *found,
                       char *reason, size_t reason_cap);

/* Posts the metadata of resource id. PEER_OK or a negative PEER_ERR_*; on PEER_OK,
 * *created says whether this call stored it (false: a 409, it was stored already). */
int peers_post_song(const peers *p, int32_t id, const mp3_song *song, const char *request_id, bool *created,
                    char *reason, size_t reason_cap);

#endif
