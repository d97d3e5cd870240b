/* song_render: see song_render.h. */
#include "song_render.h"

json_t *song_render(const song_row *s) {
  return json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)s->id, "name", s->name, "artist", s->artist,
                   "album", s->album, "duration", s->duration, "year", s->year);
}
