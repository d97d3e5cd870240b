/*
 * mp3_extract: tags and exact duration with libmpg123, over a random-access source
 * (mp3_extract_source) or memory (mp3_extract, a memory source: one implementation).
 *
 * Design:
 * - libmpg123 reads through read/seek callbacks (mpg123_replace_reader_handle), so it
 *   sees a seekable "file": that is what lets mpg123_scan() count every frame (exact
 *   duration for VBR without a Xing header) and find the ID3v1 tag at the end.
 * - libmpg123 asks for a few bytes at a time (a frame header, a frame). The callbacks
 *   serve them from one buffer of MP3_SOURCE_CHUNK bytes, refilled by read_at at the
 *   position asked for, so a sequential scan costs one read_at per chunk and a seek
 *   within the buffer costs none. The memory in use is that buffer and the decoder's
 *   handle, whatever the file's size.
 * - libmpg123 reads a whole ID3v2 tag into memory to parse it (up to 256 MB by the
 *   format: a cover picture, or a crafted size). A first tag larger than TAG_KEEP_MAX is
 *   replaced, in the stream libmpg123 sees, by a copy of its small frames (the text
 *   frames we read are small); the picture is never read. Smaller tags pass as they are.
 * - A failed read_at (or a 0 before the declared size) fails the callback, which makes
 *   libmpg123 stop; the result is MP3_ERR_IO whatever libmpg123 made of it, so a
 *   transient store error is never taken for a broken file.
 * - Strings from libmpg123 live only until its next call: they are copied at once.
 */
#include "mp3.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <mpg123.h>

#include "mp3_internal.h"

/* ------------------------------------------------------------------------------------ */
/* Tag text.                                                                            */

/* Copies s[0..n) into out[out_size] (out_size >= 1), cutting at a code point boundary,
 * always NUL-terminating. Internal NULs become sep. Input is assumed UTF-8; invalid bytes
 * are copied as is and cleaned by the field rules later. */
static void copy_text(char *out, size_t out_size, const char *s, size_t n, const char *sep) {
  size_t o = 0, seplen = strlen(sep);
  while (n > 0 && s[n - 1] == '\0') n--; /* terminators and padding */
  for (size_t i = 0; i < n;) {
    size_t used;
    if (s[i] == '\0') {
      if (seplen >= out_size - o) break;
      memcpy(out + o, sep, seplen);
      o += seplen;
      i++;
      continue;
    }
    (void)mp3__utf8_next((const unsigned char *)s + i, n - i, &used);
    if (used >= out_size - o) break;
    memcpy(out + o, s + i, used);
    o += used;
    i += used;
  }
  out[o] = '\0';
}

/* ID3v1 field: fixed width, NUL- or space-padded, no declared encoding. */
static void copy_id3v1_text(char *out, size_t out_size, const char *field, size_t width) {
  size_t n = 0;
  while (n < width && field[n] != '\0') n++;
  if (mp3__utf8_valid((const unsigned char *)field, n)) {
    copy_text(out, out_size, field, n, "");
    return;
  }
  size_t o = 0; /* Latin-1: each byte is its own code point */
  for (size_t i = 0; i < n && out_size - o > 2; i++) o += mp3__utf8_put((unsigned char)field[i], out + o);
  out[o] = '\0';
}

/* ------------------------------------------------------------------------------------ */
/* The reader callbacks: libmpg123's view of a source, through one buffer.             */

/* An ID3v2 tag up to this size goes to libmpg123 as it is. A larger one (a big cover
 * picture, or a crafted size) is replaced by a copy of its frames of at most
 * FRAME_KEEP_MAX bytes, up to TAG_KEEP_MAX in all: libmpg123 reads a whole tag into memory
 * to parse it, and the text frames we want are small. */
#define TAG_KEEP_MAX (256u * 1024)
#define FRAME_KEEP_MAX (64u * 1024)

/* libmpg123 sees a virtual stream: tag[0..tag_len) (when a tag was replaced), then the
 * source from offset skip on. Without a replaced tag, tag_len = skip = 0. */
typedef struct src_reader {
  const mp3_source *src;
  uint8_t *buf;     /* MP3_SOURCE_CHUNK bytes */
  uint64_t buf_off; /* buf holds source bytes [buf_off, buf_off + fill) */
  size_t fill;
  uint8_t *tag; /* the replacement tag, or NULL */
  size_t tag_len;
  uint64_t skip;
  uint64_t size; /* of the virtual stream */
  uint64_t pos;  /* in the virtual stream */
  bool failed;
} src_reader;

/* Copies source bytes [off, off + n) (within the source) into dst through the buffer. */
static bool copy_source(src_reader *r, uint64_t off, uint8_t *dst, size_t n) {
  while (n > 0) {
    if (off < r->buf_off || off >= r->buf_off + r->fill) {
      uint64_t left = r->src->size - off;
      size_t want = left < MP3_SOURCE_CHUNK ? (size_t)left : MP3_SOURCE_CHUNK;
      long got = r->failed ? -1 : r->src->read_at(r->src->ud, off, r->buf, want);
      if (got <= 0 || (size_t)got > want) {
        r->failed = true;
        return false;
      }
      r->buf_off = off;
      r->fill = (size_t)got;
    }
    size_t at = (size_t)(off - r->buf_off), k = r->fill - at;
    if (k > n) k = n;
    memcpy(dst, r->buf + at, k);
    dst += k, off += k, n -= k;
  }
  return true;
}

static mpg123_ssize_t src_read(void *handle, void *dst, size_t n) {
  src_reader *r = handle;
  uint8_t *out = dst;
  if (r->failed) return -1;
  if (n > r->size - r->pos) n = (size_t)(r->size - r->pos);
  size_t done = 0;
  if (r->pos < r->tag_len) {
    done = r->tag_len - (size_t)r->pos < n ? r->tag_len - (size_t)r->pos : n;
    memcpy(out, r->tag + r->pos, done);
  }
  if (!copy_source(r, r->pos + done - r->tag_len + r->skip, out + done, n - done)) return -1;
  r->pos += n;
  return (mpg123_ssize_t)n;
}

static off_t src_seek(void *handle, off_t offset, int whence) {
  src_reader *r = handle;
  off_t base, size = (off_t)r->size; /* fits off_t: the source's size is checked on entry */
  switch (whence) {
  case SEEK_SET: base = 0; break;
  case SEEK_CUR: base = (off_t)r->pos; break;
  case SEEK_END: base = size; break;
  default: return -1;
  }
  /* Both operands are within [-(size), size] or the target is refused: no overflow. */
  if ((offset < 0 && -offset > base) || (offset > 0 && offset > size - base)) return -1;
  r->pos = (uint64_t)(base + offset);
  return (off_t)r->pos;
}

static uint32_t syncsafe(const uint8_t *p) {
  return ((uint32_t)p[0] << 21) | ((uint32_t)p[1] << 14) | ((uint32_t)p[2] << 7) | p[3];
}

/* Copies the frames of the tag's body [10, end) that are small enough into r->tag (which
 * holds the header), returning the bytes written after the header. Stops at padding or
 * at a frame that does not fit the body. */
static size_t keep_small_frames(src_reader *r, int version, uint64_t end) {
  const size_t hsz = version == 2 ? 6 : 10;
  size_t out = 0;
  uint64_t off = 10;
  uint8_t fh[10];
  while (end - off >= hsz && copy_source(r, off, fh, hsz) && fh[0] != 0) {
    uint64_t fsz = version == 2   ? ((uint32_t)fh[3] << 16) | ((uint32_t)fh[4] << 8) | fh[5]
                   : version == 4 ? syncsafe(fh + 4)
                                  : ((uint32_t)fh[4] << 24) | ((uint32_t)fh[5] << 16) | ((uint32_t)fh[6] << 8) | fh[7];
    if (fsz > end - off - hsz) break;
    if (fsz <= FRAME_KEEP_MAX && hsz + fsz <= TAG_KEEP_MAX - out) {
      if (!copy_source(r, off, r->tag + 10 + out, hsz + (size_t)fsz)) break;
      out += hsz + (size_t)fsz;
    }
    off += hsz + fsz;
  }
  return out;
}

/* Replaces a first ID3v2 tag larger than TAG_KEEP_MAX (see above). Tags whose frames are
 * not plain to walk (unsynchronised as a whole before 2.4, an extended header, 2.2
 * compression) keep no frames. Returns false only when memory or the source failed. */
static bool replace_big_tag(src_reader *r) {
  uint8_t h[10];
  if (r->src->size < 10) return true;
  if (!copy_source(r, 0, h, 10)) return false;
  if (memcmp(h, "ID3", 3) != 0 || h[3] < 2 || h[3] > 4 || ((h[6] | h[7] | h[8] | h[9]) & 0x80)) return true;
  uint64_t body = syncsafe(h + 6);
  if (body <= TAG_KEEP_MAX) return true;
  uint64_t total = 10 + body + ((h[3] == 4 && (h[5] & 0x10)) ? 10 : 0);
  if (total > r->src->size) total = r->src->size;
  r->tag = malloc(10 + TAG_KEEP_MAX);
  if (!r->tag) return false;
  size_t kept = 0;
  if (!((h[5] & 0x80) && h[3] < 4) && !(h[5] & 0x40))
    kept = keep_small_frames(r, h[3], total < 10 + body ? total : 10 + body);
  if (r->failed) return false;
  memcpy(r->tag, h, 10);
  r->tag[5] = (uint8_t)(h[5] & ~0x50); /* no extended header, no footer */
  r->tag[6] = (uint8_t)((kept >> 21) & 0x7F), r->tag[7] = (uint8_t)((kept >> 14) & 0x7F);
  r->tag[8] = (uint8_t)((kept >> 7) & 0x7F), r->tag[9] = (uint8_t)(kept & 0x7F);
  r->tag_len = 10 + kept;
  r->skip = total;
  r->size = r->src->size - total + r->tag_len;
  return true;
}

/* ------------------------------------------------------------------------------------ */
/* Extraction.                                                                          */

static void init_mpg123(void) { (void)mpg123_init(); /* no-op since 1.27; required once by older versions */ }

static const mpg123_string *find_text(const mpg123_id3v2 *v2, const char id[4]) {
  const mpg123_string *found = NULL;
  for (size_t i = 0; i < v2->texts; i++) {
    if (memcmp(v2->text[i].id, id, 4) == 0 && v2->text[i].text.fill > 1)
      found = &v2->text[i].text; /* the last one wins, as in libmpg123's own fields */
  }
  return found;
}

static void copy_mpg_string(char *out, const mpg123_string *s) {
  if (s && s->p && s->fill > 0 && s->fill <= s->size) copy_text(out, MP3_META_TEXT_MAX, s->p, s->fill, " / ");
}

static void copy_tags(mpg123_handle *mh, mp3_meta *meta) {
  mpg123_id3v1 *v1 = NULL;
  mpg123_id3v2 *v2 = NULL;
  if (!(mpg123_meta_check(mh) & MPG123_ID3) || mpg123_id3(mh, &v1, &v2) != MPG123_OK) return;
  if (v2) {
    meta->id3v2_version = v2->version;
    copy_mpg_string(meta->title, v2->title);
    copy_mpg_string(meta->artist, v2->artist);
    copy_mpg_string(meta->album, v2->album);
    /* ID3v2.4 replaced TYER with TDRC; libmpg123's year field is TYER only. */
    const mpg123_string *year = find_text(v2, "TDRC");
    copy_mpg_string(meta->year, year ? year : v2->year);
  }
  if (v1 && memcmp(v1->tag, "TAG", 3) == 0) {
    meta->has_id3v1 = 1;
    if (!meta->title[0]) copy_id3v1_text(meta->title, sizeof meta->title, v1->title, sizeof v1->title);
    if (!meta->artist[0]) copy_id3v1_text(meta->artist, sizeof meta->artist, v1->artist, sizeof v1->artist);
    if (!meta->album[0]) copy_id3v1_text(meta->album, sizeof meta->album, v1->album, sizeof v1->album);
    if (!meta->year[0]) copy_id3v1_text(meta->year, sizeof meta->year, v1->year, sizeof v1->year);
  }
}

/* Opens the reader on a new handle, scans, and copies what was found. */
static int scan(mpg123_handle *mh, src_reader *reader, mp3_meta *meta) {
  /* Quiet: a server must not print to stderr. The resync limit matches the junk the
   * validator tolerates before the first frame. */
  if (mpg123_param(mh, MPG123_ADD_FLAGS, MPG123_QUIET, 0.0) != MPG123_OK ||
      mpg123_param(mh, MPG123_RESYNC_LIMIT, MP3_MAX_LEADING_JUNK, 0.0) != MPG123_OK ||
      mpg123_replace_reader_handle(mh, src_read, src_seek, NULL) != MPG123_OK ||
      mpg123_open_handle(mh, reader) != MPG123_OK)
    return MP3_ERR_DECODE;

  int rc = MP3_ERR_DECODE;
  long rate = 0;
  int channels = 0, encoding = 0;
  /* scan first: it walks every frame, so the sample count is exact even for VBR files
   * without a Xing/VBRI header, and it meets the ID3 tags on the way. */
  if (mpg123_scan(mh) == MPG123_OK && mpg123_getformat(mh, &rate, &channels, &encoding) == MPG123_OK && rate > 0) {
    off_t samples = mpg123_length(mh);
    if (samples > 0) {
      meta->sample_rate = rate;
      meta->samples = (int64_t)samples;
      meta->duration_s = (double)samples / (double)rate;
      rc = MP3_OK;
    }
  }
  copy_tags(mh, meta);
  mpg123_close(mh);
  return rc;
}

int mp3_extract_source(const mp3_source *src, mp3_meta *meta) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  if (!meta) return MP3_ERR_INVALID;
  memset(meta, 0, sizeof *meta);
  if (!src || !src->read_at || src->size > (uint64_t)INT64_MAX || (off_t)src->size < 0) return MP3_ERR_INVALID;
  if (src->size == 0) return MP3_ERR_EMPTY;
  if (pthread_once(&once, init_mpg123) != 0) return MP3_ERR_NOMEM;

  src_reader reader = {.src = src, .buf = malloc(MP3_SOURCE_CHUNK), .size = src->size};
  int err = MPG123_OK, rc = MP3_ERR_NOMEM;
  mpg123_handle *mh = NULL;
  if (reader.buf && replace_big_tag(&reader) && (mh = mpg123_new(NULL, &err)) != NULL) {
    rc = scan(mh, &reader, meta);
    mpg123_delete(mh);
  }
  free(reader.tag);
  free(reader.buf);
  if (reader.failed) {
    memset(meta, 0, sizeof *meta);
    rc = MP3_ERR_IO;
  }
  return rc;
}

typedef struct mem_source {
  const uint8_t *buf;
  size_t len;
} mem_source;

static long mem_read_at(void *ud, uint64_t offset, void *buf, size_t cap) {
  const mem_source *m = ud;
  if (offset >= m->len) return 0;
  size_t n = m->len - (size_t)offset < cap ? m->len - (size_t)offset : cap; /* cap <= MP3_SOURCE_CHUNK */
  memcpy(buf, m->buf + offset, n);
  return (long)n;
}

int mp3_extract(const uint8_t *buf, size_t len, mp3_meta *meta) {
  if (!meta || (!buf && len > 0)) return MP3_ERR_INVALID;
  mem_source m = {.buf = buf, .len = len};
  mp3_source src = {.ud = &m, .size = len, .read_at = mem_read_at};
  return mp3_extract_source(&src, meta);
}
