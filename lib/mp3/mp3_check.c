/*
 * mp3_check: the upload validator, incremental (mp3_check_*) and in one call
 * (mp3_validate = init + feed + end, so there is one implementation of the rules in mp3.h).
 *
 * Design. The rules of mp3_validate are stated on the whole buffer: skip the ID3v2 tags,
 * then try each 0xFF within MP3_MAX_LEADING_JUNK as the start of a frame chain, in order,
 * and the first start that gives MP3_MIN_FRAMES frames (or a short file that ends
 * exactly) decides. The checker runs the same rules on a stream in four phases:
 * - TAG: collects each 10-byte ID3v2 header (a bad one fails at once), then skips the
 *   tag's bytes by counting them; a tag cut by the end is TRUNCATED.
 * - SEARCH: the bytes from the current candidate start on are kept in a fixed window
 *   (MP3_CHECK_WINDOW). A candidate is decided from at most three frames of at most 1441
 *   bytes after it (4323 bytes), so the window always holds enough to decide it or the
 *   end has come. A candidate is dropped (BROKEN) only on bytes that no later byte can
 *   change; whatever depends on where the file ends (a chain ending exactly at the end,
 *   an ID3v1 tag in the last 128 bytes, a frame cut short) waits for more bytes or for
 *   mp3_check_end. Once the candidate passes the junk limit, no start is left: the verdict
 *   is NOT_MP3 (NO_AUDIO after a tag) at once.
 * - FOLLOW: once MP3_MIN_FRAMES frames chain, mp3_validate's answer is this chain's: OK
 *   unless the file ends inside one of its frames. The checker follows it by frame
 *   lengths, collecting only each 4-byte header, and stops (OK, final) at the first byte
 *   that is not a header of the same stream.
 * - DONE: the verdict is latched.
 * Offsets are absolute (uint64_t) so files of any size are fine; no length from the input
 * is used before it is compared with what is known.
 */
#include "mp3.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

enum { PH_TAG, PH_SEARCH, PH_FOLLOW, PH_DONE };

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

/* The longest frame: 144000 * 320 / 32000 + 1 (MPEG 1) = 72000 * 160 / 8000 + 1 (MPEG 2.5). */
#define MAX_FRAME_LEN 1441
_Static_assert(MP3_MIN_FRAMES *MAX_FRAME_LEN < MP3_CHECK_WINDOW - 1024,
               "a full window always decides its first candidate, so compaction frees at least 1 KB");

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
  assert(h->length <= MAX_FRAME_LEN);
  return true;
}

static bool same_stream(const frame_hdr *a, const frame_hdr *b) {
  return a->version == b->version && a->sample_rate == b->sample_rate;
}

/* ------------------------------------------------------------------------------------ */
/* One candidate start, on the bytes known so far.                                      */

/* CHAIN_MORE: the bytes known cannot decide yet (never returned at the end). CHAIN_MIN:
 * MP3_MIN_FRAMES frames chain, the verdict is this chain's from here on. */
typedef enum { CHAIN_OK, CHAIN_BROKEN, CHAIN_TRUNCATED, CHAIN_MORE, CHAIN_MIN } chain_result;

/* Follows the chain from s[0] (0xFF) over s[0..avail); at_end tells whether the file ends
 * at s + avail. *frames receives the complete frames found, *after (for CHAIN_MIN) the
 * offset just past the last of them. */
static chain_result follow_chain(const uint8_t *s, size_t avail, bool at_end, frame_hdr *first, int *frames,
                                 size_t *after) {
  frame_hdr h;
  size_t pos = 0;
  *frames = 0;
  if (avail < 4) return at_end ? CHAIN_TRUNCATED : CHAIN_MORE;
  if (!parse_frame_header(s, first)) return CHAIN_BROKEN;
  h = *first;
  for (;;) {
    if (h.length > avail - pos) return at_end ? CHAIN_TRUNCATED : CHAIN_MORE; /* runs past the data */
    pos += h.length;
    (*frames)++;
    if (*frames >= MP3_MIN_FRAMES) {
      *after = pos;
      return CHAIN_MIN;
    }
    /* A short file is still a file when its audio ends exactly here (or at an ID3v1 tag
     * that ends the file): until the end is known, that stays open. */
    if (pos == avail) return at_end ? CHAIN_OK : CHAIN_MORE;
    if (avail - pos < 4) return at_end ? (s[pos] == 0xFF ? CHAIN_TRUNCATED : CHAIN_BROKEN) : CHAIN_MORE;
    if (memcmp(s + pos, "TAG", 3) == 0 && avail - pos <= 128) {
      if (!at_end) return CHAIN_MORE;
      return avail - pos == 128 ? CHAIN_OK : CHAIN_BROKEN;
    }
    if (!parse_frame_header(s + pos, &h) || !same_stream(first, &h)) return CHAIN_BROKEN;
  }
}

/* ------------------------------------------------------------------------------------ */
/* The phases.                                                                          */

static int finish(mp3_check *c, int verdict) {
  c->verdict = verdict;
  c->phase = PH_DONE;
  return verdict;
}

static int no_chain(mp3_check *c) {
  return finish(c, c->truncated ? MP3_ERR_TRUNCATED : c->had_tag ? MP3_ERR_NO_AUDIO : MP3_ENOTMP3);
}

/* FOLLOW: takes bytes p[0..n) at absolute offset at; returns how many it used. */
static size_t follow_feed(mp3_check *c, uint64_t at, const uint8_t *p, size_t n) {
  if (at < c->next) return n < c->next - at ? n : (size_t)(c->next - at); /* inside a frame */
  size_t used = 0;
  while (used < n && c->hlen < 4) c->hdr[c->hlen++] = p[used++];
  if (c->hlen == 4) {
    frame_hdr h;
    if (!parse_frame_header(c->hdr, &h) || h.version != c->version || h.sample_rate != c->sample_rate) {
      finish(c, MP3_OK); /* after enough frames, anything else is a trailing tag or junk */
      return used;
    }
    c->next += h.length;
    c->hlen = 0;
  }
  return used;
}

static void follow_bytes(mp3_check *c, uint64_t at, const uint8_t *p, size_t n) {
  while (n > 0 && c->phase == PH_FOLLOW) {
    size_t used = follow_feed(c, at, p, n);
    at += used, p += used, n -= used;
  }
}

/* SEARCH: decides candidates in order on the window, as far as the bytes allow. */
static void search_run(mp3_check *c, bool at_end) {
  const uint64_t limit = c->audio_start + MP3_MAX_LEADING_JUNK; /* the last start tried */
  const uint64_t end = c->win_base + c->fill;
  while (c->phase == PH_SEARCH) {
    if (c->cand > limit || c->cand >= end) {
      if (c->cand > limit || at_end) no_chain(c);
      return;
    }
    const uint8_t *w = c->win + (c->cand - c->win_base);
    uint64_t span = end - c->cand;
    if (span > limit - c->cand + 1) span = limit - c->cand + 1;
    const uint8_t *ff = memchr(w, 0xFF, (size_t)span);
    if (!ff) {
      c->cand += span;
      continue;
    }
    c->cand += (uint64_t)(ff - w);
    frame_hdr first;
    int frames = 0;
    size_t after = 0;
    switch (follow_chain(ff, (size_t)(end - c->cand), at_end, &first, &frames, &after)) {
    case CHAIN_MORE: return;
    case CHAIN_OK: finish(c, MP3_OK); return;
    case CHAIN_TRUNCATED:
      /* Only where the audio should start, or after two matching frames: elsewhere it is
       * more likely a stray 0xFF in junk. */
      if (c->cand == c->audio_start || frames >= 2) c->truncated = 1;
      c->cand++;
      break;
    case CHAIN_BROKEN: c->cand++; break;
    case CHAIN_MIN:
      c->phase = PH_FOLLOW;
      c->version = first.version;
      c->sample_rate = first.sample_rate;
      c->next = c->cand + after;
      c->hlen = 0;
      follow_bytes(c, c->next, c->win + (c->next - c->win_base), (size_t)(end - c->next));
      return;
    }
  }
}

static size_t search_feed(mp3_check *c, const uint8_t *p, size_t n) {
  if (c->fill == MP3_CHECK_WINDOW) { /* drop what lies before the candidate */
    uint64_t drop = c->cand - c->win_base;
    if (drop > c->fill) drop = c->fill;
    assert(drop >= 1024);
    memmove(c->win, c->win + drop, c->fill - (size_t)drop);
    c->fill -= (unsigned)drop;
    c->win_base += drop;
  }
  size_t take = MP3_CHECK_WINDOW - c->fill;
  if (take > n) take = n;
  memcpy(c->win + c->fill, p, take);
  c->fill += (unsigned)take;
  c->fed += take;
  search_run(c, false);
  return take;
}

/* The bytes collected at a tag boundary are not an ID3v2 header: the audio starts there. */
static void start_search(mp3_check *c) {
  c->audio_start = c->fed - c->hlen;
  c->cand = c->win_base = c->audio_start;
  memcpy(c->win, c->hdr, c->hlen);
  c->fill = c->hlen;
  c->hlen = 0;
  c->phase = PH_SEARCH;
}

/* TAG: skips the tag being read, or collects the next 10 bytes as a header. */
static size_t tag_feed(mp3_check *c, const uint8_t *p, size_t n) {
  if (c->fed < c->next) {
    size_t skip = n < c->next - c->fed ? n : (size_t)(c->next - c->fed);
    c->fed += skip;
    return skip;
  }
  size_t used = 0;
  while (used < n && c->hlen < 10) {
    c->hdr[c->hlen++] = p[used++];
    c->fed++;
    if (c->hlen <= 3 && c->hdr[c->hlen - 1] != (uint8_t) "ID3"[c->hlen - 1]) {
      start_search(c);
      search_run(c, false);
      return used;
    }
  }
  if (c->hlen == 10) {
    const uint8_t *t = c->hdr;
    /* Major version 2..4 (2.2 is old but decoders read it); revision 0xFF is invalid;
     * each size byte is 7-bit (syncsafe). */
    if (t[3] < 2 || t[3] > 4 || t[4] == 0xFF || ((t[6] | t[7] | t[8] | t[9]) & 0x80)) {
      finish(c, MP3_ERR_BAD_TAG);
      return used;
    }
    uint64_t size = ((uint64_t)t[6] << 21) | ((uint64_t)t[7] << 14) | ((uint64_t)t[8] << 7) | t[9];
    c->next = c->fed + size + ((t[3] == 4 && (t[5] & 0x10)) ? 10 : 0);
    c->had_tag = 1;
    c->hlen = 0;
  }
  return used;
}

/* ------------------------------------------------------------------------------------ */
/* The API.                                                                             */

void mp3_check_init(mp3_check *c) {
  if (!c) return;
  memset(c, 0, sizeof *c);
  c->phase = PH_TAG;
  c->verdict = MP3_OK;
}

int mp3_check_feed(mp3_check *c, const uint8_t *buf, size_t len) {
  if (!c || (!buf && len > 0)) return MP3_ERR_INVALID;
  size_t off = 0;
  while (off < len && c->phase != PH_DONE) {
    size_t used;
    if (c->phase == PH_TAG) {
      used = tag_feed(c, buf + off, len - off);
    } else if (c->phase == PH_SEARCH) {
      used = search_feed(c, buf + off, len - off);
    } else {
      used = follow_feed(c, c->fed, buf + off, len - off);
      c->fed += used;
    }
    off += used;
  }
  c->fed += len - off; /* bytes after a final verdict count too */
  return c->verdict;
}

int mp3_check_end(mp3_check *c) {
  if (!c) return MP3_ERR_INVALID;
  if (c->phase == PH_TAG) {
    if (c->fed < c->next || c->hlen >= 3) return finish(c, MP3_ERR_TRUNCATED); /* cut in a tag or its header */
    if (c->hlen == 0) return finish(c, c->fed == 0 ? MP3_ERR_EMPTY : MP3_ERR_NO_AUDIO);
    start_search(c); /* one or two bytes that begin like "ID3" */
  }
  if (c->phase == PH_SEARCH) search_run(c, true);
  if (c->phase == PH_FOLLOW) finish(c, c->fed < c->next ? MP3_ERR_TRUNCATED : MP3_OK);
  assert(c->phase == PH_DONE);
  return c->verdict;
}

uint64_t mp3_check_bytes(const mp3_check *c) { return c ? c->fed : 0; }

int mp3_validate(const uint8_t *buf, size_t len, const char **reason) {
  int rc;
  if (len == 0) {
    rc = MP3_ERR_EMPTY;
  } else if (!buf) {
    rc = MP3_ERR_INVALID;
  } else {
    mp3_check c;
    mp3_check_init(&c);
    rc = mp3_check_feed(&c, buf, len);
    if (rc == MP3_OK) rc = mp3_check_end(&c);
  }
  if (reason) *reason = mp3_strerror(rc);
  return rc;
}
