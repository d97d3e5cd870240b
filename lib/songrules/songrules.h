/*
 * songrules: the song metadata fields the Song Service accepts, in one place: their
 * limits, the checks and the contract's messages (POST /songs' validation table).
 *
 * Two users keep each other honest through it: the Song Service validates request bodies
 * with these checks and messages (services/song/song_validate.c), and lib/mp3 shapes any
 * file's tags to fit the same limits (mp3_song_fields), so whatever the processor posts is
 * accepted. A limit changed here changes both.
 *
 * Lengths are in Unicode code points (the JSON parser has already rejected invalid UTF-8).
 * Pure functions over NUL-terminated strings, no allocation, thread-safe.
 */
#ifndef FERMATA_SONGRULES_H
#define FERMATA_SONGRULES_H

#include <stdbool.h>
#include <stdint.h>

/* name, artist, album: 1..100 code points. */
#define SONGRULES_TEXT_MAX_CHARS 100
/* A text field's worst case in bytes: every character 4 bytes of UTF-8, and the NUL. */
#define SONGRULES_TEXT_MAX_BYTES (SONGRULES_TEXT_MAX_CHARS * 4 + 1)
/* year: four digits, 1900..2099. */
#define SONGRULES_YEAR_MIN 1900
#define SONGRULES_YEAR_MAX 2099
/* duration: "mm:ss", two digits each, seconds 00-59; so 99:59 is the longest. */
#define SONGRULES_DURATION_MAX_S (99 * 60 + 59)

/* id: a positive 32-bit integer. */
bool songrules_id_ok(int64_t id);
/* 1..SONGRULES_TEXT_MAX_CHARS code points. NULL is not ok. */
bool songrules_text_ok(const char *s);
/* mm:ss with leading zeros, seconds 00-59. NULL is not ok. */
bool songrules_duration_ok(const char *s);
/* Exactly four digits, SONGRULES_YEAR_MIN..SONGRULES_YEAR_MAX. NULL is not ok. */
bool songrules_year_ok(const char *s);

/* The contract's messages: "missing" for an absent or null field, "invalid" for one that
 * fails its check or has the wrong JSON type. */
#define SONGRULES_ID_MISSING "ID is required"
#define SONGRULES_ID_INVALID "ID must be a positive integer"
#define SONGRULES_NAME_MISSING "Song name is required"
#define SONGRULES_NAME_INVALID "Song name must be between 1 and 100 characters"
#define SONGRULES_ARTIST_MISSING "Artist name is required"
#define SONGRULES_ARTIST_INVALID "Artist name must be between 1 and 100 characters"
#define SONGRULES_ALBUM_MISSING "Album name is required"
#define SONGRULES_ALBUM_INVALID "Album name must be between 1 and 100 characters"
#define SONGRULES_DURATION_MISSING "Duration is required"
#define SONGRULES_DURATION_INVALID "Duration must be in mm:ss format with leading zeros"
#define SONGRULES_YEAR_MISSING "Year is required"
#define SONGRULES_YEAR_INVALID "Year must be between 1900 and 2099"

#endif
