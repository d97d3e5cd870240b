/*
 * mp3_internal: what the parts of lib/mp3 share (mp3.c is the base: the UTF-8 helpers;
 * mp3_check.c and mp3_extract.c build on it). Included only by lib/mp3's own files.
 */
#ifndef FERMATA_MP3_INTERNAL_H
#define FERMATA_MP3_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MP3__REPLACEMENT_CHAR 0xFFFDu

/* Decodes one code point from s[0..n) (n > 0). Invalid, overlong, surrogate or cut
 * sequences give U+FFFD and consume one byte, so decoding always advances. */
uint32_t mp3__utf8_next(const unsigned char *s, size_t n, size_t *used);
/* Writes cp as UTF-8 at out (4 bytes available); returns the byte count. */
size_t mp3__utf8_put(uint32_t cp, char *out);
/* Whether s[0..n) decodes without a failure (a literal U+FFFD is valid). */
bool mp3__utf8_valid(const unsigned char *s, size_t n);

#endif
