/* b64url: strict base64url. Decoding works in groups of four characters (24 bits, three
 * bytes); a final group of two or three characters carries one or two bytes, and the bits
 * it carries beyond them must be zero. */
#include "b64url.h"

#include <stdint.h>
#include <stdlib.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int value_of(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

size_t b64url_decoded_max(size_t len) { return len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0); }

size_t b64url_encoded_len(size_t len) { return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0); }

int b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *out_len) {
  *out_len = 0;
  if (len % 4 == 1) return B64URL_ERR_INVALID;
  if (b64url_decoded_max(len) > cap) return B64URL_ERR_SPACE;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 4) {
    size_t n = len - i < 4 ? len - i : 4;
    uint32_t acc = 0;
    for (size_t j = 0; j < n; j++) {
      int v = value_of((unsigned char)in[i + j]);
      if (v < 0) return B64URL_ERR_INVALID;
      acc = acc << 6 | (uint32_t)v;
    }
    if (n == 4) {
      out[o++] = (unsigned char)(acc >> 16);
      out[o++] = (unsigned char)(acc >> 8);
      out[o++] = (unsigned char)acc;
    } else if (n == 3) { /* 18 bits: 16 of data, 2 that must be zero */
      if (acc & 0x3) return B64URL_ERR_INVALID;
      out[o++] = (unsigned char)(acc >> 10);
      out[o++] = (unsigned char)(acc >> 2);
    } else { /* n == 2: 12 bits, 8 of data, 4 that must be zero */
      if (acc & 0xf) return B64URL_ERR_INVALID;
      out[o++] = (unsigned char)(acc >> 4);
    }
  }
  *out_len = o;
  return 0;
}

int b64url_decode_alloc(const char *in, size_t len, size_t max_out, unsigned char **out, size_t *out_len) {
  *out = NULL;
  *out_len = 0;
  size_t max = b64url_decoded_max(len);
  if (max > max_out) return B64URL_ERR_SPACE;
  unsigned char *buf = malloc(max + 1);
  if (buf == NULL) return B64URL_ERR_NOMEM;
  size_t n = 0;
  int rc = b64url_decode(in, len, buf, max, &n);
  if (rc != 0) {
    free(buf);
    return rc;
  }
  buf[n] = '\0';
  *out = buf;
  *out_len = n;
  return 0;
}

int b64url_encode(const unsigned char *in, size_t len, char *out, size_t cap, size_t *out_len) {
  size_t need = b64url_encoded_len(len);
  if (out_len) *out_len = 0;
  if (cap < need + 1) return B64URL_ERR_SPACE;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    size_t n = len - i < 3 ? len - i : 3;
    uint32_t acc = (uint32_t)in[i] << 16;
    if (n > 1) acc |= (uint32_t)in[i + 1] << 8;
    if (n > 2) acc |= in[i + 2];
    out[o++] = alphabet[acc >> 18 & 63];
    out[o++] = alphabet[acc >> 12 & 63];
    if (n > 1) out[o++] = alphabet[acc >> 6 & 63];
    if (n > 2) out[o++] = alphabet[acc & 63];
  }
  out[o] = '\0';
  if (out_len) *out_len = o;
  return 0;
}
