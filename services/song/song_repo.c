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

int song_create(db_pool *db, const song *s, bool *created) {
  char id[16];
  snprintf(id, sizeof id, "%d", s->id);
  const char *p[] = {id, s->name, s->artist, s->album, s->duration, s->year};
  PGresult *res;
  int rc = db_query(db,
                    "INSERT INTO songs (id, name, artist, album, duration, year)"
                    " VALUES ($1::int, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING id",
                    6, p, &res);
  if (rc != DB_OK) return rc;
  *created = PQntuples(res) > 0;
  PQclear(res);
  return SONG_OK;
}

int song_get(db_pool *db, int32_t id, song_row *out, bool *found) {
  char ids[16];
  snprintf(ids, sizeof ids, "%d", id);
  const char *p[] = {ids};
  PGresult *res;
  int rc = db_query(db, "SELECT name, artist, album, duration, year FROM songs WHERE id = $1::int", 1, p, &res);
  if (rc != DB_OK) return rc;
  *found = PQntuples(res) > 0;
  if (!*found) {
    PQclear(res);
    return SONG_OK;
  }
  /* the columns' limits fit the fields (varchar(100) is at most 400 bytes, char(n) n) */
  out->id = id;
  snprintf(out->name, sizeof out->name, "%s", PQgetvalue(res, 0, 0));
  snprintf(out->artist, sizeof out->artist, "%s", PQgetvalue(res, 0, 1));
  snprintf(out->album, sizeof out->album, "%s", PQgetvalue(res, 0, 2));
  snprintf(out->duration, sizeof out->duration, "%s", PQgetvalue(res, 0, 3));
  snprintf(out->year, sizeof out->year, "%s", PQgetvalue(res, 0, 4));
  PQclear(res);
  return SONG_OK;
}

int song_delete(db_pool *db, const int32_t *ids, size_t n, int32_t *out, size_t *nout) {
  return db_delete_ids(db, "DELETE FROM songs WHERE id = ANY($1::int[]) RETURNING id", ids, n, out, nout);
}
