/*
 * song: the Song Service's domain: validation of song metadata and its storage.
 *
 * Validation follows the contract's table (every failing field reported at once, with the
 * exact messages), with the field rules of lib/songrules. Storage is the `songs` table of
 * the service's own database; SQL lives in song_repo.c only, which hands rows back as
 * song_row (the contract's JSON is made from them by song_render). Nothing here knows
 * HTTP.
 */
#ifndef FERMATA_SONG_H
#define FERMATA_SONG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "songrules/songrules.h"

typedef struct {
  int32_t id;
  const char *name, *artist, *album, *duration, *year; /* borrowed from the JSON body */
} song;

/* One row of `songs` as song_get reads it: the values copied out, owned by the struct. */
typedef struct {
  int32_t id;
  char name[SONGRULES_TEXT_MAX_BYTES];
  char artist[SONGRULES_TEXT_MAX_BYTES];
  char album[SONGRULES_TEXT_MAX_BYTES];
  char duration[6]; /* mm:ss */
  char year[5];
} song_row;

/* Validates a parsed request body. Returns NULL when valid (and fills `out` with pointers
 * into `body`), else a new JSON object of field -> message the caller owns. A body that
 * is not a JSON object gives {"body": "..."}. */
json_t *song_validate(const json_t *body, song *out);

/* The schema and its migrations, for db_opts. */
extern const db_migration song_migrations[];
extern const size_t song_nmigrations;

enum { SONG_OK = 0 };

/* Inserts unless the id is taken. SONG_OK or a negative DB_ERR_*; on SONG_OK, *created says
 * whether the row was inserted (false: a song with that id already exists). */
int song_create(db_pool *db, const song *s, bool *created);

/* Loads one song. SONG_OK or a negative DB_ERR_*; on SONG_OK, *found says whether the id
 * exists, and *out holds the row when it does. */
int song_get(db_pool *db, int32_t id, song_row *out, bool *found);

/* Deletes the given ids; the ones that existed go to `out` (room for n; may be `ids`) in
 * the order given, *nout their count. SONG_OK or a negative DB_ERR_*. */
int song_delete(db_pool *db, const int32_t *ids, size_t n, int32_t *out, size_t *nout);

#endif
