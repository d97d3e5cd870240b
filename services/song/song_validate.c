/*
 * song_validate: the contract's validation table for POST /songs.
 *
 * Types are strict: `id` must be a JSON integer and the other fields JSON strings; a value
 * of another type gets the field's "invalid" message, and null counts as missing. The
 * rules and messages themselves are lib/songrules' (shared with lib/mp3); this file walks
 * the JSON body and reports every failing field at once.
 */
#include <string.h>

#include "song.h"
#include "songrules/songrules.h"

typedef bool (*str_rule)(const char *);

/* Checks one string field; returns its value or NULL (and records the message). */
static const char *check_str(const json_t *body, json_t *errs, const char *field, str_rule ok, const char *missing,
                             const char *invalid) {
  json_t *v = json_object_get(body, field);
  if (!v || json_is_null(v)) {
    json_object_set_new(errs, field, json_string(missing));
    return NULL;
  }
  if (!json_is_string(v) || !ok(json_string_value(v))) {
    json_object_set_new(errs, field, json_string(invalid));
    return NULL;
  }
  return json_string_value(v);
}

json_t *song_validate(const json_t *body, song *out) {
  memset(out, 0, sizeof *out);
  json_t *errs = json_object();
  if (!errs) return NULL;
  if (!json_is_object(body)) {
    json_object_set_new(errs, "body", json_string("Request body must be a JSON object"));
    return errs;
  }
  json_t *id = json_object_get(body, "id");
  if (!id || json_is_null(id)) {
    json_object_set_new(errs, "id", json_string(SONGRULES_ID_MISSING));
  } else if (!json_is_integer(id) || !songrules_id_ok(json_integer_value(id))) {
    json_object_set_new(errs, "id", json_string(SONGRULES_ID_INVALID));
  } else {
    out->id = (int32_t)json_integer_value(id);
  }
  out->name = check_str(body, errs, "name", songrules_text_ok, SONGRULES_NAME_MISSING, SONGRULES_NAME_INVALID);
  out->artist = check_str(body, errs, "artist", songrules_text_ok, SONGRULES_ARTIST_MISSING, SONGRULES_ARTIST_INVALID);
  out->album = check_str(body, errs, "album", songrules_text_ok, SONGRULES_ALBUM_MISSING, SONGRULES_ALBUM_INVALID);
  out->duration =
      check_str(body, errs, "duration", songrules_duration_ok, SONGRULES_DURATION_MISSING, SONGRULES_DURATION_INVALID);
  out->year = check_str(body, errs, "year", songrules_year_ok, SONGRULES_YEAR_MISSING, SONGRULES_YEAR_INVALID);
  if (json_object_size(errs) == 0) {
    json_decref(errs);
    return NULL;
  }
  return errs;
}
