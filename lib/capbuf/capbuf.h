/*
 * capbuf: a growable byte buffer with a hard cap (C-STYLE 14, as curl's dynbuf does), for
 * the bodies libcurl hands over piecewise: the answers lib/httpc and lib/jwkshttp read
 * whole, and the head of the error documents lib/s3 keeps.
 *
 * The buffer is NULL until the first append and NUL-terminated after it (the NUL is not
 * counted in len and may sit one byte past the cap). It grows by doubling from 4 KiB and
 * never allocates more than cap + 1 bytes. A failed append frees it. Not thread-safe: a
 * capbuf has one owner, who frees it with capbuf_free or takes it with capbuf_take.
 */
#ifndef FERMATA_CAPBUF_H
#define FERMATA_CAPBUF_H

#include <stddef.h>

typedef enum capbuf_err {
  CAPBUF_OK = 0,
  CAPBUF_ERR_FULL = -1,  /* the bytes would pass the cap */
  CAPBUF_ERR_NOMEM = -2, /* allocation failed */
} capbuf_err;

typedef struct capbuf {
  char *buf;    /* owned; NULL until the first append */
  size_t len;   /* bytes held */
  size_t alloc; /* bytes allocated */
  size_t cap;   /* most bytes it may hold */
} capbuf;

/* An empty buffer that holds at most cap bytes. */
static inline capbuf capbuf_make(size_t cap) { return (capbuf){.buf = NULL, .len = 0, .alloc = 0, .cap = cap}; }

/* Appends all len bytes or none. CAPBUF_ERR_FULL when they would pass the cap,
 * CAPBUF_ERR_NOMEM when the buffer cannot grow; either failure frees the buffer (b is then
 * empty, its cap kept). Appending 0 bytes allocates the buffer: it is "" afterwards. */
int capbuf_append(capbuf *b, const void *data, size_t len);

/* Appends what fits under the cap and drops the rest, to keep the head of a long body.
 * 0, or CAPBUF_ERR_NOMEM (buffer freed). */
int capbuf_append_head(capbuf *b, const void *data, size_t len);

/* The buffer for the caller to free (NULL if nothing was appended); b is left empty. */
char *capbuf_take(capbuf *b);

/* Frees the buffer; b is left empty and may be used again. NULL is fine. */
void capbuf_free(capbuf *b);

#endif
