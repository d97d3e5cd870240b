/*
 * mp3: validation of uploads, metadata extraction, and tags shaped to the Song Service's
 * field rules (lib/songrules).
 *
 * Design (see mp3.h for the contract):
 * - The validator never trusts a length from the input: every ID3v2 size and every frame
 *   length is compared with what is left of the buffer before it is used, with
 *   subtraction on the "remaining" side so nothing can wrap.
 * - Extraction hands the buffer to libmpg123 through read/seek callbacks over memory, so
 *   the decoder sees a seekable "file": that is what lets mpg123_scan() count every frame
 *   (exact duration for VBR without a Xing header) and find the ID3v1 tag at the end.
 *   Strings from libmpg123 live only until its next call: they are copied at once.
 * - The field rules work code point by code point on UTF-8 and write into fixed-size
 *   buffers sized for the worst case (SONGRULES_TEXT_MAX_BYTES: 100 code points x 4 bytes),
 *   so they cannot fail.
 */
#include "mp3.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <mpg123.h>

/* ------------------------------------------------------------------------------------ */
/* Error texts: shown to uploaders in 400 bodies, so they name no library.              */

const char *mp3_strerror(int code) {
  switch (code) {
  case MP3_OK: return "ok";
  case MP3_ERR_EMPTY: return "The file is empty";
  case MP3_ENOTMP3: return "The file is not a valid MP3: no MPEG audio frames found";
  case MP3_ERR_TRUNCATED: return "The file is not a valid MP3: it is truncated";
  case MP3_ERR_NO_AUDIO: return "The file is not a valid MP3: it has a tag but no audio";
  case MP3_ERR_BAD_TAG: return "The file is not a valid MP3: malformed ID3 tag";
  case MP3_ERR_INVALID: return "Invalid argument";
  case MP3_ERR_NOMEM: return "Out of memory";
  case MP3_ERR_DECODE: return "The file has no decodable MP3 audio";
  default: return "The file is not a valid MP3";
  }
}

/* ------------------------------------------------------------------------------------ */
/* MPEG audio frame headers.                                                            */

enum { MPEG_25 = 0, MPEG_2 = 2, MPEG_1 = 3 }; /* the two version bits; 1 is reserved */

typedef struct frame_hdr {
  int version;
  int sample_rate;
  size_t length; /* whole frame in bytes, header included */
} frame_hdr;

/* Layer III bitrates in kbit/s by bitrate index; 0 (free format) and 15 are refused. */
static const int kbps_v1_l3[16] = {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0};
static const int kbps_v2_l3[16] = {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0};
static const int rate_v1[3] = {44100, 48000, 32000};

/* Parses the 4 header bytes at p (caller guarantees 4 readable bytes). Returns true for
 * a Layer III header whose frame length can be computed. */
static bool parse_frame_header(const uint8_t *p, frame_hdr *h) {
  if (p[0] != 0xFF || (p[1] & 0xE0) != 0xE0) return false;
  int version = (p[1] >> 3) & 3;
  int layer = (p[1] >> 1) & 3;
  int bitrate_index = p[2] >> 4;
  int rate_index = (p[2] >> 2) & 3;
  int padding = (p[2] >> 1) & 1;
  int emphasis = p[3] & 3;
  if (version == 1 || layer != 1 /* 01 = Layer III */ || rate_index == 3 || emphasis == 2) return false;
  int kbps = version == MPEG_1 ? kbps_v1_l3[bitrate_index] : kbps_v2_l3[bitrate_index];
  if (kbps == 0) return false;
  int rate = rate_v1[rate_index];
  if (version == MPEG_2)
    rate /= 2;
  else if (version == MPEG_25)
    rate /= 4;
  /* Layer III: 1152 samples per frame for MPEG 1, 576 for MPEG 2/2.5; bytes = samples/8
     * * bitrate / rate. */
  size_t coef = version == MPEG_1 ? 144000u : 72000u;
  h->version = version;
  h->sample_rate = rate;
  h->length = coef * (size_t)kbps / (size_t)rate + (size_t)padding;
  return true;
}

static bool same_stream(const frame_hdr *a, const frame_hdr *b) {
  return a->version == b->version && a->sample_rate == b->sample_rate;
}

static bool is_id3v1_at(const uint8_t *buf, size_t len, size_t pos) {
  return len - pos == 128 && memcmp(buf + pos, "TAG", 3) == 0;
}

/* Outcome of following frames from one candidate start. */
typedef enum { CHAIN_OK, CHAIN_BROKEN, CHAIN_TRUNCATED } chain_result;

/* Follows the frame chain from start (pos < len). *frames receives how many complete,
 * consistent frames were found before the chain ended. */
static chain_result follow_chain(const uint8_t *buf, size_t len, size_t start, int *frames) {
  frame_hdr first, h;
  size_t pos = start;
  *frames = 0;
  if (len - pos < 4) return buf[pos] == 0xFF ? CHAIN_TRUNCATED : CHAIN_BROKEN;
  if (!parse_frame_header(buf + pos, &first)) return CHAIN_BROKEN;
  h = first;
  for (;;) {
    if (h.length > len - pos) return CHAIN_TRUNCATED; /* this frame runs past the end of the data */
    pos += h.length;
    (*frames)++;
    if (pos == len || is_id3v1_at(buf, len, pos))
      return CHAIN_OK; /* the audio ends exactly here: a short file is still a file */
    if (len - pos < 4) {
      /* A few stray bytes: a cut header if they start like one. */
      return *frames >= MP3_MIN_FRAMES ? CHAIN_OK : buf[pos] == 0xFF ? CHAIN_TRUNCATED : CHAIN_BROKEN;
    }
    if (!parse_frame_header(buf + pos, &h) || !same_stream(&first, &h))
      /* After enough frames, anything else is a trailing tag or junk. */
      return *frames >= MP3_MIN_FRAMES ? CHAIN_OK : CHAIN_BROKEN;
  }
}

/* Skips consecutive ID3v2 tags at buf+*pos. Returns MP3_OK, MP3_ERR_BAD_TAG or
 * MP3_ERR_TRUNCATED; *had_tag tells whether at least one tag was there. */
static int skip_id3v2(const uint8_t *buf, size_t len, size_t *pos, bool *had_tag) {
  while (len - *pos >= 3 && memcmp(buf + *pos, "ID3", 3) == 0) {
    const uint8_t *t = buf + *pos;
    if (len - *pos < 10) return MP3_ERR_TRUNCATED;
    /* Major version 2..4 (2.2 is old but decoders read it); revision 0xFF is invalid;
         * each size byte is 7-bit (syncsafe). */
    if (t[3] < 2 || t[3] > 4 || t[4] == 0xFF || ((t[6] | t[7] | t[8] | t[9]) & 0x80)) return MP3_ERR_BAD_TAG;
    size_t size = ((size_t)t[6] << 21) | ((size_t)t[7] << 14) | ((size_t)t[8] << 7) | t[9];
    size_t total = 10 + size + ((t[3] == 4 && (t[5] & 0x10)) ? 10 : 0);
    if (total > len - *pos) return MP3_ERR_TRUNCATED;
    *pos += total;
    *had_tag = true;
  }
  return MP3_OK;
}

static int set_reason(int rc, const char **reason) {
  if (reason) *reason = mp3_strerror(rc);
  return rc;
}

int mp3_validate(const uint8_t *buf, size_t len, const char **reason) {
  if (len == 0) return set_reason(MP3_ERR_EMPTY, reason);
  if (!buf) return set_reason(MP3_ERR_INVALID, reason);

  size_t pos = 0;
  bool had_tag = false;
  int rc = skip_id3v2(buf, len, &pos, &had_tag);
  if (rc != MP3_OK) return set_reason(rc, reason);
  if (pos == len) return set_reason(MP3_ERR_NO_AUDIO, reason);

  /* The first candidate that chains wins. A chain that runs off the end counts as a
     * truncated file only where the audio should start, or after two matching frames:
     * elsewhere it is more likely a stray 0xFF in junk. */
  bool truncated = false;
  size_t last = len - pos - 1 > MP3_MAX_LEADING_JUNK ? pos + MP3_MAX_LEADING_JUNK : len - 1;
  for (size_t start = pos; start <= last; start++) {
    if (buf[start] != 0xFF) continue;
    int frames = 0;
    chain_result cr = follow_chain(buf, len, start, &frames);
    if (cr == CHAIN_OK) return set_reason(MP3_OK, reason);
    /* An established stream cut short ends the search: looking for other starts
         * inside it would only cost time (quadratic on crafted input). */
    if (cr == CHAIN_TRUNCATED && frames >= MP3_MIN_FRAMES) return set_reason(MP3_ERR_TRUNCATED, reason);
    if (cr == CHAIN_TRUNCATED && (start == pos || frames >= 2)) truncated = true;
  }
  if (truncated) return set_reason(MP3_ERR_TRUNCATED, reason);
  return set_reason(had_tag ? MP3_ERR_NO_AUDIO : MP3_ENOTMP3, reason);
}

/* ------------------------------------------------------------------------------------ */
/* UTF-8 helpers.                                                                       */

#define REPLACEMENT_CHAR 0xFFFDu

/* Decodes one code point from s[0..n) (n > 0). Invalid, overlong, surrogate or cut
 * sequences give U+FFFD and consume one byte, so decoding always advances. */
static uint32_t utf8_next(const unsigned char *s, size_t n, size_t *used) {
  unsigned char c = s[0];
  uint32_t cp;
  size_t need;
  *used = 1;
  if (c < 0x80) return c;
  if (c >= 0xC2 && c <= 0xDF) {
    cp = c & 0x1F;
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    cp = c & 0x0F;
    need = 2;
  } else if (c >= 0xF0 && c <= 0xF4) {
    cp = c & 0x07;
    need = 3;
  } else {
    return REPLACEMENT_CHAR;
  }
  if (n - 1 < need) return REPLACEMENT_CHAR;
  for (size_t i = 1; i <= need; i++) {
    if ((s[i] & 0xC0) != 0x80) return REPLACEMENT_CHAR;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
    return REPLACEMENT_CHAR;
  *used = need + 1;
  return cp;
}

/* Writes cp as UTF-8 at out (4 bytes available); returns the byte count. */
static size_t utf8_put(uint32_t cp, char *out) {
  unsigned char *o = (unsigned char *)out;
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | (cp >> 6));
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | (cp >> 12));
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | (cp >> 18));
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

static bool utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0, used;
  while (i < n) {
    /* A literal U+FFFD in the input is valid; only decoding failures are not. */
    uint32_t cp = utf8_next(s + i, n - i, &used);
    if (cp == REPLACEMENT_CHAR && used == 1) return false;
    i += used;
  }
  return true;
}

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
    (void)utf8_next((const unsigned char *)s + i, n - i, &used);
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
  if (utf8_valid((const unsigned char *)field, n)) {
    copy_text(out, out_size, field, n, "");
    return;
  }
  size_t o = 0; /* Latin-1: each byte is its own code point */
  for (size_t i = 0; i < n && out_size - o > 2; i++) o += utf8_put((unsigned char)field[i], out + o);
  out[o] = '\0';
}

/* ------------------------------------------------------------------------------------ */
/* Extraction with libmpg123 over memory.                                               */

typedef struct mem_reader {
  const uint8_t *buf;
  size_t len;
  size_t pos;
} mem_reader;

static mpg123_ssize_t mem_read(void *handle, void *dst, size_t n) {
  mem_reader *r = handle;
  size_t left = r->len - r->pos;
  if (n > left) n = left;
  memcpy(dst, r->buf + r->pos, n);
  r->pos += n;
  return (mpg123_ssize_t)n;
}

static off_t mem_seek(void *handle, off_t offset, int whence) {
  mem_reader *r = handle;
  off_t base;
  switch (whence) {
  case SEEK_SET: base = 0; break;
  case SEEK_CUR: base = (off_t)r->pos; break;
  case SEEK_END: base = (off_t)r->len; break;
  default: return -1;
  }
  /* Both operands are within [-(len), len] or the target is refused: no overflow. */
  if ((offset < 0 && -offset > base) || (offset > 0 && offset > (off_t)r->len - base)) return -1;
  r->pos = (size_t)(base + offset);
  return (off_t)r->pos;
}

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

int mp3_extract(const uint8_t *buf, size_t len, mp3_meta *meta) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  if (!meta || (!buf && len > 0)) return MP3_ERR_INVALID;
  memset(meta, 0, sizeof *meta);
  if (len == 0) return MP3_ERR_EMPTY;
  if (pthread_once(&once, init_mpg123) != 0) return MP3_ERR_NOMEM;

  int err = MPG123_OK, rc = MP3_ERR_DECODE;
  mpg123_handle *mh = mpg123_new(NULL, &err);
  if (!mh) return MP3_ERR_NOMEM;
  mem_reader reader = {.buf = buf, .len = len, .pos = 0};
  /* Quiet: a server must not print to stderr. The resync limit matches the junk the
     * validator tolerates before the first frame. */
  if (mpg123_param(mh, MPG123_ADD_FLAGS, MPG123_QUIET, 0.0) != MPG123_OK ||
      mpg123_param(mh, MPG123_RESYNC_LIMIT, MP3_MAX_LEADING_JUNK, 0.0) != MPG123_OK ||
      mpg123_replace_reader_handle(mh, mem_read, mem_seek, NULL) != MPG123_OK ||
      mpg123_open_handle(mh, &reader) != MPG123_OK)
    goto done;

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
done:
  mpg123_delete(mh);
  return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Song Service field rules (documented in mp3.h; the limits are lib/songrules').       */

_Static_assert(SONGRULES_YEAR_MIN == 1900, "MP3_UNKNOWN_YEAR is the lowest year the Song Service accepts");

static bool is_control(uint32_t cp) {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0xFEFF /* BOM */;
}

void mp3_song_text(const char *in, char *out, size_t out_size) {
  if (!out || out_size == 0) return;
  size_t o = 0, keep = 0, n = in ? strlen(in) : 0;
  unsigned chars = 0;
  for (size_t i = 0, used; i < n; i += used) {
    uint32_t cp = utf8_next((const unsigned char *)in + i, n - i, &used);
    if (cp == '\t' || cp == '\n' || cp == '\r')
      cp = ' ';
    else if (is_control(cp))
      continue;
    if (cp == ' ' && chars == 0) continue; /* leading whitespace */
    if (chars == SONGRULES_TEXT_MAX_CHARS || out_size - o <= 4) break;
    o += utf8_put(cp, out + o);
    chars++;
    if (cp != ' ') keep = o; /* end of the last non-space: trailing spaces are dropped */
  }
  if (keep == 0) {
    snprintf(out, out_size, "%s", MP3_UNKNOWN_TEXT);
    return;
  }
  out[keep] = '\0';
}

void mp3_song_year(const char *in, char out[5]) {
  const char *s = in ? in : "";
  while (*s == ' ') s++;
  /* the first four characters, unless a fifth digit follows ("01977" is no year) */
  size_t n = strnlen(s, 5);
  bool ok = n == 4 || (n == 5 && !(s[4] >= '0' && s[4] <= '9'));
  if (ok) {
    memcpy(out, s, 4);
    out[4] = '\0';
    ok = songrules_year_ok(out);
  }
  if (!ok) memcpy(out, MP3_UNKNOWN_YEAR, 5);
}

void mp3_song_duration(double seconds, char out[6]) {
  const long cap = SONGRULES_DURATION_MAX_S;
  long total;
  if (!(seconds > 0)) /* also NaN */
    total = 0;
  else if (seconds >= (double)cap)
    total = cap;
  else
    total = (long)floor(seconds + 0.5);
  if (seconds > 0 && total == 0) total = 1;
  long min = total / 60, sec = total % 60; /* 0..99 and 0..59 by the cap above */
  out[0] = (char)('0' + min / 10);
  out[1] = (char)('0' + min % 10);
  out[2] = ':';
  out[3] = (char)('0' + sec / 10);
  out[4] = (char)('0' + sec % 10);
  out[5] = '\0';
}

int mp3_song_fields(const mp3_meta *meta, mp3_song *out) {
  if (!meta || !out) return MP3_ERR_INVALID;
  mp3_song_text(meta->title, out->name, sizeof out->name);
  mp3_song_text(meta->artist, out->artist, sizeof out->artist);
  mp3_song_text(meta->album, out->album, sizeof out->album);
  mp3_song_year(meta->year, out->year);
  mp3_song_duration(meta->duration_s, out->duration);
  return MP3_OK;
}
