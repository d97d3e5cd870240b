/*
 * storage_render: the contract's JSON for the Storage Service's rows, made by the handlers
 * from what storage_repo returns (the repo knows SQL, not the API's shapes).
 * Pure functions, thread-safe.
 */
#ifndef FERMATA_STORAGE_RENDER_H
#define FERMATA_STORAGE_RENDER_H

#include <jansson.h>
#include <stddef.h>

#include "storage.h"

/* [{"id":..,"storageType":..,"bucket":..,"path":..}, ...] in the order given (rows may be
 * NULL when n is 0). New reference the caller owns; NULL when out of memory. */
json_t *storage_render_list(const storage_row *rows, size_t n);

#endif
