/*
 * song_render: the contract's JSON for the Song Service's rows, made by the handlers from
 * what song_repo returns (the repo knows SQL, not the API's shapes).
 * Pure functions, thread-safe.
 */
#ifndef FERMATA_SONG_RENDER_H
#define FERMATA_SONG_RENDER_H

#include <jansson.h>

#include "song.h"

/* {"id":..,"name":..,"artist":..,"album":..,"duration":..,"year":..}, in that order.
 * New reference the caller owns; NULL when out of memory. */
json_t *song_render(const song_row *s);

#endif
