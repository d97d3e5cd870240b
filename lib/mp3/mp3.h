/*
 * mp3: is this buffer an MP3, what does it say about itself, and how do we turn that
 * into song metadata the Song Service always accepts.
 *
 * Three steps, each usable alone:
 *
 * 1. mp3_validate() decides on a whole body in memory; mp3_check_*() gives the same
 *    verdict on a stream fed in chunks of any size, in fixed-size state (the upload path
 *    checks the body as it arrives; mp3_validate is init + feed + end). It is pure C with
 *    no library: it skips any ID3v2 tags (syncsafe size, footer flag), allows a little
 *    junk before the audio (MP3_MAX_LEADING_JUNK bytes), then requires MP3_MIN_FRAMES
 *    MPEG audio frames chained by their computed lengths, all with the same MPEG version,
 *    layer and sample rate. It then follows the chain to the end of the buffer: if the
 *    last frame is cut short, the file is truncated and refused. Data after the chain
 *    that is not a frame (ID3v1, APE, Lyrics3 tags, junk) is allowed, as decoders allow it.
 *    A file shorter than MP3_MIN_FRAMES frames is accepted when its frames end exactly at
 *    the end of the buffer (or at a trailing ID3v1 tag).
 *    Only Layer III (MP3 proper) is accepted, in MPEG 1, 2 and 2.5: the service takes
 *    "MP3 files", and an MP2 file is not one. Free-format streams (bitrate index 0) are
 *    refused: their frame length cannot be computed from the header and they are
 *    practically extinct.
 *
 * 2. mp3_extract_source() reads title, artist, album, year and duration with libmpg123
 *    from a random-access source (reader callbacks through one fixed buffer, no temp file,
 *    no disk I/O); mp3_extract() is the same over memory. Why libmpg123
 *    and not TagLib: measured on lame-made files (tests/system/test_mp3_extract.py),
 *    mpg123_scan() walks every frame and gives the exact length: with a Xing/Info (LAME)
 *    header, CBR or VBR, it also removes the declared encoder delay and padding and hits
 *    the synthesised length to the sample (59.400 s for 59.4 s); without one it equals
 *    ffprobe's frame-by-frame count to the millisecond (60.192 s). TagLib 1.13 returns
 *    whole seconds, truncated (59.6 s -> 59), and for VBR without a Xing header it
 *    extrapolates from the first frame's bitrate: 29 s for a 60 s file, 212 s for 601 s.
 *    (ffprobe's container duration is a similar estimate there: 57.96 s for 60.19 s.)
 *    libmpg123 also reads ID3v2.2/2.3/2.4 and ID3v1 and converts ID3v2 text (Latin-1,
 *    UTF-16 with BOM, UTF-16BE, UTF-8) to UTF-8; its year field is TYER only, so for
 *    ID3v2.4 we look up TDRC ourselves. ID3v1 text has
 *    no declared encoding: it is taken as UTF-8 when it is valid UTF-8, else as Latin-1.
 *    mp3_extract() does not validate: run mp3_validate() first if the input is untrusted
 *    in shape (it is safe on any input either way).
 *
 *    Memory, measured (2026-12-04; `cmake --build build/release --target mp3_probe`, then
 *    `/usr/bin/time -f "%M KB" build/release/tests/tools/mp3_probe [--stream] FILE` on a
 *    43:20 file, 104,003,169 bytes, made by `sox -n -r 44100 -c 2 -b 16 -t wav - synth
 *    2600 sine 200-3000 | lame -b 320 - FILE`): in memory (mp3_validate + mp3_extract on
 *    the whole file) 103,936 KB peak RSS; streamed (mp3_check over 64 KB reads +
 *    mp3_extract_source over pread) 2,512 KB. read_at was asked for 104,134,369 bytes in
 *    1,590 calls: the file once, plus 0.13% for the tag look-ups at both ends. The same
 *    audio behind a 5 MB ID3v2 picture (109,245,935 bytes): 108,964 KB against 2,704 KB,
 *    and read_at asked for 104,134,200 bytes, the picture never read (libmpg123 would hold
 *    a whole tag in memory: larger ones reach it with their small frames only).
 *
 * 3. mp3_song_fields() applies the rules that make any file's metadata acceptable to the
 *    Song Service (see the rules above that function; they are the README's wording). The
 *    Song Service's limits themselves (100 characters, 1900-2099, mm:ss) are
 *    lib/songrules', which the Song Service validates with: this module only decides how
 *    a file's tags are shaped to fit them.
 *
 * Thread-safety: every function is reentrant; there is no global mutable state. Each
 * mp3_extract() call uses its own decoder handle. mpg123_init() has been a no-op since
 * libmpg123 1.27; for older versions we call it once through pthread_once(), so callers
 * need no set-up in main.
 *
 * Ownership: callers own every struct passed in; nothing returned needs freeing. Reason
 * strings are static.
 */
#ifndef FERMATA_MP3_H
#define FERMATA_MP3_H

#include <stddef.h>
#include <stdint.h>

#include "songrules/songrules.h"

/* Frames that must chain at the start of the audio. Three makes a false positive on
 * random bytes astronomically unlikely (each extra header must match sync, version,
 * layer, sample rate at an exact offset) and costs nothing. */
#define MP3_MIN_FRAMES 3
/* Junk tolerated between the ID3v2 tag(s) and the first frame (some taggers pad with
 * zeros beyond the declared tag size). */
#define MP3_MAX_LEADING_JUNK 65536

/* Longest text kept per raw tag field, in bytes including the NUL. Longer tags are cut
 * at a UTF-8 character boundary; the Song Service keeps at most
 * SONGRULES_TEXT_MAX_CHARS characters (100, <= 400 bytes) anyway. */
#define MP3_META_TEXT_MAX 1024

enum mp3_error {
  MP3_OK = 0,
  MP3_ERR_EMPTY = -1,     /* no bytes at all */
  MP3_ENOTMP3 = -2,       /* no chain of MPEG audio frames where the audio should start */
  MP3_ERR_TRUNCATED = -3, /* the data ends inside an ID3 tag or an audio frame */
  MP3_ERR_NO_AUDIO = -4,  /* an ID3v2 tag and nothing after it */
  MP3_ERR_BAD_TAG = -5,   /* an ID3v2 header that cannot be (bad size or version) */
  MP3_ERR_INVALID = -6,   /* NULL where a pointer is required */
  MP3_ERR_NOMEM = -7,     /* allocation failed */
  MP3_ERR_DECODE = -8,    /* the decoder found no audio to measure */
  MP3_ERR_IO = -9,        /* mp3_extract_source: the source's read_at failed (retry later) */
};

/* Human-readable text for an mp3_error, fit for an HTTP 400 message: it names no
 * library. Static string; unknown codes give a generic text. */
const char *mp3_strerror(int code);

/* Decides whether buf[0..len) is an MP3 file (see the design notes above).
 * buf may be NULL only when len is 0. reason may be NULL; when not, it receives
 * mp3_strerror() of the result (also on success: "ok").
 * Returns MP3_OK or a negative enum mp3_error. O(len / frame size), no allocation. */
int mp3_validate(const uint8_t *buf, size_t len, const char **reason);

/* Bytes of the checker's window: the longest frame chain it must see at once to decide a
 * candidate start (three frames of at most 1441 bytes), with room to spare. */
#define MP3_CHECK_WINDOW 8192

/* Incremental mp3_validate: the same verdict on the same bytes however they are split into chunks. Fixed-size
 * state, no allocation. The fields are private (read them through the functions); the struct is public so that
 * callers can embed it. */
typedef struct mp3_check {
  uint64_t fed;         /* bytes fed so far */
  uint64_t audio_start; /* where the frame search starts (after the ID3v2 tags) */
  uint64_t cand;        /* the candidate frame start being evaluated */
  uint64_t win_base;    /* absolute offset of win[0] */
  uint64_t next;        /* ID3 phase: end of the tag being skipped; follow phase: next frame header */
  int phase;
  int verdict; /* latched error (or MP3_OK once final) */
  int had_tag;
  int truncated;            /* a candidate chain ran off the end (mp3_validate's rule) */
  int version, sample_rate; /* of the chain's first frame */
  unsigned hlen;            /* bytes collected in hdr */
  unsigned fill;            /* bytes in win */
  uint8_t hdr[10];
  uint8_t win[MP3_CHECK_WINDOW];
} mp3_check;
void mp3_check_init(mp3_check *c);
/* Feeds the next len bytes. Returns MP3_OK while the bytes so far can still start an MP3 file, or the negative
 * mp3_error as soon as they cannot (then every later feed/end returns it too). It decides as early as the bytes
 * allow: no frame chain within MP3_MAX_LEADING_JUNK after the ID3v2 tag(s) -> MP3_ENOTMP3 (or MP3_ERR_NO_AUDIO
 * after a tag) right there, a bad ID3v2 header -> at once. Once MP3_MIN_FRAMES frames chain, it follows the chain
 * frame by frame without copying. NULL c, or NULL buf with len > 0: MP3_ERR_INVALID, state unchanged. */
int mp3_check_feed(mp3_check *c, const uint8_t *buf, size_t len);
/* The end of the file: MP3_OK or the verdict mp3_validate gives (TRUNCATED, EMPTY, NO_AUDIO, ...). Later calls
 * of feed or end return the same. */
int mp3_check_end(mp3_check *c);
/* The bytes fed so far. */
uint64_t mp3_check_bytes(const mp3_check *c);

/* Raw metadata as found in the file. Text fields are NUL-terminated UTF-8 (possibly
 * empty = not present); multiple values in one ID3v2.4 frame are joined with " / ". */
typedef struct mp3_meta {
  char title[MP3_META_TEXT_MAX];
  char artist[MP3_META_TEXT_MAX];
  char album[MP3_META_TEXT_MAX];
  char year[MP3_META_TEXT_MAX]; /* as written: "1977", "2004-05-01", "" */
  double duration_s;            /* from the audio itself, encoder delay/padding removed */
  long sample_rate;             /* Hz */
  int64_t samples;              /* total PCM samples per channel */
  int id3v2_version;            /* 2, 3, 4, or 0 when there is no ID3v2 tag */
  int has_id3v1;
} mp3_meta;

/* Reads tags and exact duration from buf[0..len) into *meta (zeroed first).
 * Returns MP3_OK, MP3_ERR_INVALID, MP3_ERR_NOMEM, MP3_ERR_EMPTY, or MP3_ERR_DECODE when there is no
 * decodable audio (tags found before that failure are still in *meta). Safe on any input;
 * thread-safe. Cost: one pass over all frame headers (no decoding of samples). */
int mp3_extract(const uint8_t *buf, size_t len, mp3_meta *meta);

/* A random-access byte source for mp3_extract_source: the processor reads a resource by HTTP Range requests. */
typedef struct mp3_source {
  void *ud;
  uint64_t size; /* total bytes */
  /* Copies up to cap bytes at offset into buf; returns the count (> 0), 0 at the end, -1 on a read error. */
  long (*read_at)(void *ud, uint64_t offset, void *buf, size_t cap);
} mp3_source;
/* mp3_extract over a source, in bounded memory (a fixed buffer, whatever the size): the exact-duration frame scan
 * streams through libmpg123 (reader callbacks), tags come from the ID3v2 tag at the start and ID3v1/APE at the end.
 * A first ID3v2 tag over 256 KB reaches libmpg123 with only its frames of at most 64 KB (the text frames, not the
 * pictures), or with none when its frames cannot be walked plainly (unsynchronised as a whole before 2.4, an
 * extended header, 2.2 compression): memory stays bounded whatever the tag's size. Smaller tags reach it as they are.
 * MP3_ERR_IO when read_at failed (or returned 0 before size): the caller retries later; *meta is zeroed then.
 * Other results as mp3_extract. read_at is called from this thread only, with cap <= MP3_SOURCE_CHUNK. */
int mp3_extract_source(const mp3_source *src, mp3_meta *meta);
#define MP3_SOURCE_CHUNK 65536

/* The six Song Service strings (id excepted), always valid for its validation. */
typedef struct mp3_song {
  char name[SONGRULES_TEXT_MAX_BYTES];
  char artist[SONGRULES_TEXT_MAX_BYTES];
  char album[SONGRULES_TEXT_MAX_BYTES];
  char year[5];     /* "1900".."2099" */
  char duration[6]; /* "mm:ss" */
} mp3_song;

#define MP3_UNKNOWN_TEXT "Unknown"
#define MP3_UNKNOWN_YEAR "1900" /* SONGRULES_YEAR_MIN (checked in mp3.c) */

/*
 * Metadata rules (the README's wording):
 * - Text (title -> name, artist, album): read as UTF-8 (ID3v2 Latin-1 and UTF-16 are
 *   converted; ID3v1 is Latin-1 unless it is valid UTF-8); bytes that are not valid UTF-8
 *   become U+FFFD. Control characters are removed (tab, CR, LF become a space). Leading
 *   and trailing whitespace and ID3v1 NUL/space padding are stripped. The result is cut to
 *   100 Unicode characters (code points, never inside a UTF-8 sequence), then trailing
 *   whitespace is stripped again. A field that is missing or ends up empty is "Unknown".
 * - Year: the first four characters of the tag (TDRC for ID3v2.4, TYER for 2.3, then
 *   ID3v1), if they are four digits not followed by another digit ("2004-05-01" gives
 *   2004, "01977" is invalid) and within 1900-2099. Otherwise the year is treated as
 *   missing and stored as "1900": the Song Service requires a year, and 1900, its lowest
 *   value, is a sentinel no real recording in an MP3 file plausibly carries, so clients
 *   can show it as "unknown".
 * - Duration: measured from the audio frames (not from tags), rounded to the nearest
 *   whole second (half up), written as mm:ss with leading zeros. Audio shorter than half
 *   a second but not empty is "00:01", never "00:00". Minutes cannot exceed two digits:
 *   99:59 or longer is stored as "99:59".
 * Returns MP3_OK, or MP3_ERR_INVALID for NULL arguments.
 */
int mp3_song_fields(const mp3_meta *meta, mp3_song *out);

/* Exposed for tests and reuse: the rules above applied to single values. */
void mp3_song_text(const char *in, char *out, size_t out_size);
void mp3_song_year(const char *in, char out[5]);
void mp3_song_duration(double seconds, char out[6]);

#endif
