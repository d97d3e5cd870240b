/*
 * text: UTF-8 helpers for the contract's "characters are Unicode characters" rules.
 * Pure functions, thread-safe.
 */
#ifndef FERMATA_TEXT_H
#define FERMATA_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Number of code points in a NUL-terminated string (continuation bytes not counted). For
 * invalid UTF-8 each stray byte counts as one character. */
size_t text_utf8_len(const char *s);

/* true when the `len` bytes are well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF). */
bool text_utf8_valid(const char *s, size_t len);

/* A copy of the `len` bytes as well-formed UTF-8: every byte that does not start a
 * well-formed sequence becomes U+FFFD, as decoders with replacement do. NUL-terminated,
 * malloc'd: the caller frees. NULL on allocation failure. */
char *text_utf8_sanitize(const char *s, size_t len);

/* Byte length of the longest prefix of `s` holding at most `max_chars` code points, never
 * cutting a multibyte sequence. */
size_t text_utf8_prefix(const char *s, size_t max_chars);

#endif
