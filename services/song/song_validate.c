/*
 * song_validate: the contract's validation table for POST /songs.
 *
 * Types are strict: `id` must be a JSON integer and the other fields JSON strings; a value
 * of another type gets the field's "invalid" message, and null counts as missing. Lengths
 * are counted in Unicode code points (the JSON parser has already rejected invalid UTF-8).
 */
#include <string.h>

#include "song.h"
#include "text.h"

static bool is_digits(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

static bool duration_ok(const char *s) {
  /* mm:ss, both with two digits, seconds 00-59 */
  return strlen(s) == 5 && is_digits(s, 2) && s[2] == ':' && is_digits(s + 3, 2) && s[3] <= '5';
}

static bool year_ok(const char *s) {
  if (strlen(s) != 4 || !is_digits(s, 4)) return false;
  int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
  return y >= 1900 && y <= 2099;
}

typedef bool (*str_rule)(const char *);

static bool text_ok(const char *s) {
  size_t n = text_utf8_len(s);
  return n >= 1 && n <= SONG_TEXT_MAX_CHARS;
}

/* Checks one string field; returns its value or NULL (and records the message). */
static const char *check_str(const json_t *body, json_t *errs, const char *field, str_rule ok,
                             const char *missing, const char *invalid) {
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
    json_object_set_new(errs, "id", json_string("ID is required"));
  } else if (!json_is_integer(id) || json_integer_value(id) <= 0 || json_integer_value(id) > INT32_MAX) {
    json_object_set_new(errs, "id", json_string("ID must be a positive integer"));
  } else {
    out->id = (int32_t)json_integer_value(id);
  }
  out->name = check_str(body, errs, "name", text_ok, "Song name is required",
                        "Song name must be between 1 and 100 characters");
  out->artist = check_str(body, errs, "artist", text_ok, "Artist name is required",
                          "Artist name must be between 1 and 100 characters");
  out->album = check_str(body, errs, "album", text_ok, "Album name is required",
                         "Album name must be between 1 and 100 characters");
  out->duration = check_str(body, errs, "duration", duration_ok, "Duration is required",
                            "Duration must be in mm:ss format with leading zeros");
  out->year = check_str(body, errs, "year", year_ok, "Year is required", "Year must be between 1900 and 2099");
  if (json_object_size(errs) == 0) {
    json_decref(errs);
    return NULL;
  }
  return errs;
}
