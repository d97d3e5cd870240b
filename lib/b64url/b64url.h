/*
 * b64url: base64url without padding (RFC 4648 section 5, as JOSE uses it: RFC 7515
 * section 2 and appendix C).
 *
 * The decoder is strict, because a token or key that two parsers read differently is a
 * security bug: only the 64 URL-safe characters, no '=' padding, no white space, no length
 * of the form 4k+1, and the unused low bits of the last character must be zero (so each
 * byte string has exactly one accepted encoding). Pure functions, thread-safe.
 */
#ifndef FERMATA_B64URL_H
#define FERMATA_B64URL_H

#include <stddef.h>

typedef enum b64url_err {
  B64URL_OK = 0,
  B64URL_ERR_INVALID = -1, /* not strict base64url */
  B64URL_ERR_SPACE = -2,   /* the output buffer is too small */
  B64URL_ERR_NOMEM = -3,
} b64url_err;

/* Upper bound of the decoded size of `len` input characters. */
size_t b64url_decoded_max(size_t len);
/* Characters b64url_encode writes for `len` bytes, without the terminating NUL. */
size_t b64url_encoded_len(size_t len);

/* Decodes in[0..len) into out (capacity cap); *out_len gets the byte count. On error
 * *out_len is 0 and out's content is unspecified. */
int b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *out_len);

/* Like b64url_decode into a new buffer that the caller frees. The buffer holds one extra
 * NUL byte after the data (handy for JSON). Refuses (B64URL_ERR_SPACE) input that would
 * decode to more than max_out bytes, before allocating. */
int b64url_decode_alloc(const char *in, size_t len, size_t max_out, unsigned char **out, size_t *out_len);

/* Encodes in[0..len) into out (capacity cap, which must hold b64url_encoded_len(len) + 1
 * for the NUL); *out_len (may be NULL) gets the character count. */
int b64url_encode(const unsigned char *in, size_t len, char *out, size_t cap, size_t *out_len);

#endif
