/*
 * janitor: finishes deletions that could not finish at once. Two tables feed it, both
 * written in the same transaction as the change that needs them:
 *   pending_object_deletes  objects no row points at any more (deleted resources, staging
 *                           copies of moved ones)
 *   pending_song_deletes    song metadata of deleted resources
 * A thread (lib/worker) works through the due rows every 2 s (or when kicked), retrying failed
 * ones with exponential backoff (1 s doubling, at most 5 min). Nothing is ever given up.
 * Thread-safe.
 */
#ifndef FERMATA_RESOURCE_JANITOR_H
#define FERMATA_RESOURCE_JANITOR_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "s3/s3.h"
#include "songs.h"

typedef struct janitor janitor;

/* `db`, `s3` and `sg` (the Song Service client) are borrowed and must outlive the janitor. */
janitor *janitor_new(db_pool *db, s3_client *s3, songs *sg);
int janitor_start(janitor *j);
void janitor_kick(janitor *j);
void janitor_stop(janitor *j);
void janitor_free(janitor *j);

/* The synchronous song deletion of DELETE /resources: up to 3 attempts (0, 100, 300 ms);
 * on success the ids leave pending_song_deletes, else they stay for the thread. */
void janitor_delete_songs_now(janitor *j, const int32_t *ids, size_t n, const char *request_id, const trace_ctx *trace);

/* Rows still waiting: songs and objects (-1 when the database cannot say). */
long janitor_pending(janitor *j);

#endif
