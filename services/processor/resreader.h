/*
 * resreader: a resource read at any offset through one fixed window, for lib/mp3's
 * mp3_source, so the processor never holds more of a file than the window (issue 13).
 *
 * read_at() serves what the window holds; a read outside it fetches the window again,
 * starting at the offset asked for. Reads run forward, so a read that continues the
 * window gets a whole window ahead of it; one that jumps elsewhere (the scan going back
 * to the first frame, a look at some tag) gets a short one, a tail buffer's worth, until
 * the reads go on from there. The frame scan looks at the file's end for ID3v1/APE tags
 * before it scans: a read in the last RESREADER_TAIL_BYTES (or a quarter of the window)
 * that misses the window is served from a second, small buffer fetched once, so the window
 * stays where the scan goes on. The first fetch, at offset 0, is made by resreader_open()
 * and learns the file's size (a ranged answer's Content-Range gives it), which mp3_source
 * must know before the first read.
 *
 * A tap sees the file's bytes in order, once each, as the windows bring them: a window
 * that continues what the tap has seen is given to it, so a reader that goes forward (as
 * the frame scan does, after a look at the tail for tags) feeds it the whole file on the
 * way; resreader_tap_rest() fetches whatever it has not seen. The processor's MP3 check
 * rides along the extraction this way, without a second pass over the file.
 *
 * Fetching is the caller's (resreader_fetch_fn: in the processor a ranged GET with its
 * retries, in the unit test memory), so this module knows neither HTTP nor the retry
 * policy. When a fetch fails, read_at() answers -1 (lib/mp3 then reports MP3_ERR_IO) and
 * resreader_status() says why: the fetch failed (its own context holds the details), the
 * resource is gone (404), or what was served does not fit what was asked.
 *
 * Window size (PROCESSOR_FETCH_WINDOW_BYTES, default 1 MiB), measured on a 100 MB,
 * 104-minute MP3 through the local stack's Resource Service (debug build, shared 2-core
 * machine, upload answered -> song stored, three runs each): 256 KiB 1.6-2.6 s, 1 MiB
 * 0.49-0.68 s, 4 MiB 0.36-0.54 s, each fetching 1.0007x the file (the tail buffer and the
 * short window after a jump; before them, every file larger than the window cost one or
 * two windows more: 1.005x, 1.021x, 1.084x). 1 MiB: most of the speed, and 4 MiB of windows
 * for the default 4 workers rather than 16.
 *
 * Ownership: resreader_new() allocates the window and the tail buffer; resreader_free()
 * releases them. The mp3_source from resreader_source() borrows the reader. Not thread-safe: one reader per
 * extraction, on one thread.
 */
#ifndef FERMATA_PROC_RESREADER_H
#define FERMATA_PROC_RESREADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp3/mp3.h"

enum {
  RESREADER_OK = 0,
  RESREADER_ERR_INVALID = -1, /* window of 0 bytes, NULL fetch */
  RESREADER_ERR_NOMEM = -2,
  RESREADER_ERR_FETCH = -3, /* the fetch function failed (its context says why) */
  RESREADER_ERR_GONE = -4,  /* the resource no longer exists */
  RESREADER_ERR_SHORT = -5, /* no bytes where the file has some, or the size changed */
};

/* What one fetch brought: found false means the resource is gone (nothing else is read);
 * otherwise got bytes (<= want) were written to buf, the file has total bytes, and got is 0
 * only for an offset at or past the end. */
typedef struct resreader_chunk {
  bool found;
  size_t got;
  uint64_t total;
} resreader_chunk;

/* Fetches up to want bytes of the resource from offset into buf, which has room for
 * buf_cap >= want bytes (an error answer may need more room than the bytes asked for).
 * Returns 0 with *chunk filled, or nonzero when it failed. */
typedef int (*resreader_fetch_fn)(void *ud, uint64_t offset, size_t want, void *buf, size_t buf_cap,
                                  resreader_chunk *chunk);

/* The tail buffer, at most (and at most a quarter of the window): ID3v1 (128 bytes),
 * Lyrics3 and APE tags fit, and lib/mp3 reads at most MP3_SOURCE_CHUNK at a time. */
#define RESREADER_TAIL_BYTES 65536

typedef struct resreader resreader;

/* A reader with a window of window_bytes. RESREADER_OK and *out, or RESREADER_ERR_INVALID /
 * RESREADER_ERR_NOMEM (then *out is NULL). fetch_ud is borrowed. */
int resreader_new(size_t window_bytes, resreader_fetch_fn fetch, void *fetch_ud, resreader **out);
/* resreader_free(NULL) does nothing. */
void resreader_free(resreader *r);

/* Fetches the first window and learns the size. RESREADER_OK, or RESREADER_ERR_FETCH /
 * _GONE / _SHORT (the same as resreader_status() then). Call once, before the source is used. */
int resreader_open(resreader *r);

/* The file's size (0 before a successful open). */
uint64_t resreader_size(const resreader *r);
/* RESREADER_OK, or what made the last fetch fail. */
int resreader_status(const resreader *r);
/* Bytes fetched so far and fetches made (windows), for logs and metrics. */
uint64_t resreader_fetched_bytes(const resreader *r);
unsigned resreader_fetches(const resreader *r);

/* Returns nonzero when it has seen enough (it is then given nothing more). */
typedef int (*resreader_tap_fn)(void *ud, const void *bytes, size_t len);

/* Sets the tap (before resreader_open); tap_ud is borrowed. */
void resreader_tap(resreader *r, resreader_tap_fn tap, void *tap_ud);
/* Fetches, in order, what the tap has not seen yet, up to the end of the file or until the
 * tap has seen enough. RESREADER_OK, or the failure status. */
int resreader_tap_rest(resreader *r);

/* An mp3_source over the reader (after a successful open); borrows r. */
mp3_source resreader_source(resreader *r);

#endif
