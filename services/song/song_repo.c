/*
 * song_repo: every SQL statement of the Song Service. Parameters are always bound.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "song.h"

const db_migration song_migrations[] = {
    {1, "create songs",
     "CREATE TABLE songs ("
     " id integer PRIMARY KEY CHECK (id > 0),"
     " name varchar(100) NOT NULL,"
     " artist varchar(100) NOT NULL,"
     " album varchar(100) NOT NULL,"
     " duration char(5) NOT NULL,"
     " year char(4) NOT NULL)"},
};
const size_t song_nmigrations = sizeof song_migrations / sizeof song_migrations[0];

int song_create(db_pool *db, const song *s) {
  char id[16];
  snprintf(id, sizeof id, "%d", s->id);
  const char *p[] = {id, s->name, s->artist, s->album, s->duration, s->year};
  PGresult *res;
  int rc = db_query(db,
                    "INSERT INTO songs (id, name, artist, album, duration, year)"
                    " VALUES ($1::int, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING id",
                    6, p, &res);
  if (rc != DB_OK) return rc;
  int inserted = PQntuples(res);
  PQclear(res);
  return inserted ? SONG_OK : SONG_EXISTS;
}

int song_get(db_pool *db, int32_t id, json_t **out) {
  char ids[16];
  snprintf(ids, sizeof ids, "%d", id);
  const char *p[] = {ids};
  PGresult *res;
  int rc = db_query(db, "SELECT name, artist, album, duration, year FROM songs WHERE id = $1::int", 1, p, &res);
  if (rc != DB_OK) return rc;
  if (PQntuples(res) == 0) {
    PQclear(res);
    return SONG_NOT_FOUND;
  }
  *out = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)id, "name", PQgetvalue(res, 0, 0),
                   "artist", PQgetvalue(res, 0, 1), "album", PQgetvalue(res, 0, 2), "duration",
                   PQgetvalue(res, 0, 3), "year", PQgetvalue(res, 0, 4));
  PQclear(res);
  return *out ? SONG_OK : DB_ERR_NOMEM;
}

int song_delete(db_pool *db, const int32_t *ids, size_t n, int32_t *out, size_t *nout) {
  return db_delete_ids(db, "DELETE FROM songs WHERE id = ANY($1::int[]) RETURNING id", ids, n, out, nout);
}
