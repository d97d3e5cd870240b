/*
 * ids: the contract's id rules, with its exact error messages.
 *
 * Path ids (`GET /songs/{id}`) and the elements of CSV id lists (`DELETE ...?id=1,2`) are
 * positive integers that fit a signed 32-bit int: digits only, no sign, no spaces, value
 * 1..2147483647 (leading zeros are accepted, as Java's Integer.parseInt does). Messages are
 * written into caller-provided buffers; they echo the offending value verbatim.
 * Pure functions, thread-safe, no allocation except ids_csv's list.
 */
#ifndef FERMATA_IDS_H
#define FERMATA_IDS_H

#include <stddef.h>
#include <stdint.h>

#define IDS_CSV_MAX_CHARS 200

/* 0 and *out set when `s` is a valid id; -1 otherwise. */
int ids_parse(const char *s, int32_t *out);

/* The message for an invalid path id: printf format and its one %s argument, so callers
 * can format it at any length ("Invalid value '<s>' for ID. Must be a positive integer"). */
#define IDS_INVALID_FORMAT "Invalid value '%s' for ID. Must be a positive integer"

/* Writes that message into msg (truncated to size). */
void ids_invalid_message(const char *s, char *msg, size_t size);

typedef struct {
  int32_t *ids; /* owned; free with ids_list_free */
  size_t n;     /* number of distinct ids, in first-seen order */
} ids_list;

/* Parses a CSV id list. On success returns 0 and fills `out` (duplicates dropped, order
 * kept). On failure returns -1, leaves `out` empty and writes the contract's message:
 *   "CSV string is too long: received N characters, maximum allowed is 200"
 *   "Invalid ID format: 'V'. Only positive integers are allowed"
 * Characters are counted as Unicode code points. A NULL `csv` (parameter missing) gives
 * "Required parameter 'id' is missing". */
int ids_csv(const char *csv, ids_list *out, char *msg, size_t size);
void ids_list_free(ids_list *l);

#endif
