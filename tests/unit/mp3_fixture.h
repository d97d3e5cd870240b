/*
 * mp3_fixture: what the lib/mp3 unit tests share (mp3_test, mp3_check_test,
 * mp3_extract_test): builders of hand-made MPEG frames and ID3 tags, reading the real
 * lame-made files of tests/fuzz/corpus/mp3/, and the check that the incremental validator
 * gives mp3_validate's verdict however the bytes are split. The helpers fail the running
 * cmocka test on any error.
 */
#ifndef FERMATA_TEST_MP3_FIXTURE_H
#define FERMATA_TEST_MP3_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
  uint8_t *p; /* malloc'd; the test frees it */
  size_t len;
} buf;

/* MPEG 1 Layer III, 128 kbit/s, 44100 Hz, no padding: 144000*128/44100 = 417 bytes. */
extern const uint8_t HDR_V1[4];
#define LEN_V1 417
/* MPEG 2 Layer III, 64 kbit/s, 22050 Hz: 72000*64/22050 = 208 bytes. */
extern const uint8_t HDR_V2[4];
#define LEN_V2 208
/* MPEG 2.5 Layer III, 32 kbit/s, 11025 Hz: 72000*32/11025 = 208 bytes. */
extern const uint8_t HDR_V25[4];
#define LEN_V25 208

void put(buf *b, const void *data, size_t n);
/* count frames of frame_len bytes: the header, then zeros (silent to libmpg123). */
void put_frames(buf *b, const uint8_t hdr[4], size_t frame_len, int count);
/* A 10-byte ID3v2 header ("ID3") or footer ("3DI") for a body of size bytes. */
void put_id3v2_header(buf *b, int version, uint8_t flags, size_t size, const char magic[3]);
/* ID3v2 header + body of `size` zero bytes; footer appended when flags has 0x10. */
void put_id3v2(buf *b, int version, uint8_t flags, size_t size);
/* An ID3v1 tag, empty but for "TAG". */
void put_id3v1(buf *b);

/* The whole file tests/fuzz/corpus/mp3/NAME (malloc'd, into *b). */
void read_corpus(const char *name, buf *b);

/* Returns mp3_validate(p, len), after checking that mp3_check gives the same verdict fed
 * in two parts split at every position (or at 200 positions spread over a long input)
 * and byte by byte, that an early verdict from feed is that one, and that
 * mp3_check_bytes counts every byte. */
int validate_splits(const uint8_t *p, size_t len);

#endif
