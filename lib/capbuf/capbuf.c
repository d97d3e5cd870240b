/*
 * capbuf: see capbuf.h. The checks are written so that nothing overflows: len is compared
 * with the room left (cap - b->len, never negative), and the doubling stops at cap + 1.
 */
#include "capbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int capbuf_append(capbuf *b, const void *data, size_t len) {
  if (len > b->cap - b->len) {
    capbuf_free(b);
    return CAPBUF_ERR_FULL;
  }
  if (b->len + len + 1 > b->alloc) {
    size_t want = b->alloc ? b->alloc : 4096;
    while (want < b->len + len + 1) want *= 2;
    if (b->cap < SIZE_MAX && want > b->cap + 1) want = b->cap + 1;
    char *nb = realloc(b->buf, want);
    if (nb == NULL) {
      capbuf_free(b);
      return CAPBUF_ERR_NOMEM;
    }
    b->buf = nb;
    b->alloc = want;
  }
  if (len) memcpy(b->buf + b->len, data, len);
  b->len += len;
  b->buf[b->len] = '\0';
  return CAPBUF_OK;
}

int capbuf_append_head(capbuf *b, const void *data, size_t len) {
  size_t room = b->cap - b->len;
  return capbuf_append(b, data, len < room ? len : room);
}

char *capbuf_take(capbuf *b) {
  char *p = b->buf;
  *b = capbuf_make(b->cap);
  return p;
}

void capbuf_free(capbuf *b) {
  if (b == NULL) return;
  free(b->buf);
  *b = capbuf_make(b->cap);
}
