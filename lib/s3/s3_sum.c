/* s3_sum: the checksums of streamed bodies and the size of their aws-chunked framing.
 *
 * A streamed body goes out as chunks of S3_CHUNK bytes ("<hex size>\r\n<data>\r\n"), then a
 * zero chunk and the trailer ("0\r\nx-amz-checksum-crc32c:<base64>\r\n\r\n"). The size on
 * the wire is known before the first byte (every chunk but the last has the same size and
 * the trailer's base64 has a fixed length), so the request keeps a Content-Length and curl
 * sends no HTTP chunked encoding of its own.
 *
 * CRC32C runs on the SSE4.2 crc32 instruction where the CPU has it (8 bytes a cycle or so)
 * and on a 16-entry table otherwise; SHA-256 is OpenSSL's (SHA-NI where there is one).
 */
#include "s3.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "s3_internal.h"

/* CRC32C by nibbles, reflected polynomial 0x82F63B78. */
static uint32_t crc32c_soft(uint32_t crc, const unsigned char *p, size_t len) {
  static const uint32_t t[16] = {0x00000000, 0x105ec76f, 0x20bd8ede, 0x30e349b1, 0x417b1dbc, 0x5125dad3,
                                 0x61c69362, 0x7198540d, 0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9,
                                 0xc38d26c4, 0xd3d3e1ab, 0xe330a81a, 0xf36e6f75};
  while (len--) {
    crc ^= *p++;
    crc = (crc >> 4) ^ t[crc & 15];
    crc = (crc >> 4) ^ t[crc & 15];
  }
  return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const unsigned char *p, size_t len) {
  uint64_t c = crc;
  while (len >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    len -= 8;
  }
  uint32_t c32 = (uint32_t)c;
  while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}
#define S3_HAVE_SSE42 1
#endif

uint32_t s3_crc32c(uint32_t crc, const void *data, size_t len) {
  const unsigned char *p = data;
  crc = ~crc;
#ifdef S3_HAVE_SSE42
  if (__builtin_cpu_supports("sse4.2")) return ~crc32c_sse42(crc, p, len);
#endif
  return ~crc32c_soft(crc, p, len);
}

static size_t b64_len(s3_checksum kind) { return kind == S3_CHECKSUM_SHA256 ? 44 : 8; }

const char *s3__sum_header(s3_checksum kind) {
  return kind == S3_CHECKSUM_SHA256 ? "x-amz-checksum-sha256" : "x-amz-checksum-crc32c";
}

uint64_t s3_chunked_length(uint64_t size, s3_checksum kind) {
  if (kind == S3_CHECKSUM_NONE) return size;
  uint64_t full = size / S3_CHUNK, rest = size % S3_CHUNK;
  char hex[24];
  uint64_t total = full * ((uint64_t)snprintf(hex, sizeof hex, "%x", (unsigned)S3_CHUNK) + 4 + S3_CHUNK);
  if (rest) total += (uint64_t)snprintf(hex, sizeof hex, "%" PRIx64, rest) + 4 + rest;
  /* "0\r\n" name ":" base64 "\r\n" "\r\n" */
  return total + 3 + strlen(s3__sum_header(kind)) + 1 + b64_len(kind) + 2 + 2;
}

int s3__sum_init(s3__sum *s, s3_checksum kind) {
  memset(s, 0, sizeof *s);
  s->kind = kind;
  if (kind != S3_CHECKSUM_SHA256) return 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(ctx);
    return S3_ERR_NOMEM;
  }
  s->sha = ctx;
  return 0;
}

void s3__sum_update(s3__sum *s, const void *data, size_t len) {
  if (s->kind == S3_CHECKSUM_CRC32C) s->crc = s3_crc32c(s->crc, data, len);
  if (s->kind == S3_CHECKSUM_SHA256 && s->sha) EVP_DigestUpdate(s->sha, data, len);
}

size_t s3__sum_trailer(s3__sum *s, char *buf, size_t cap) {
  unsigned char raw[32];
  unsigned int n = 0;
  if (s->kind == S3_CHECKSUM_SHA256) {
    if (s->sha == NULL || EVP_DigestFinal_ex(s->sha, raw, &n) != 1) return 0;
  } else {
    for (int i = 0; i < 4; i++) raw[i] = (unsigned char)(s->crc >> (24 - 8 * i)); /* big-endian */
    n = 4;
  }
  EVP_EncodeBlock((unsigned char *)s->b64, raw, (int)n);
  int w = snprintf(buf, cap, "%s:%s\r\n", s3__sum_header(s->kind), s->b64);
  return (w < 0 || (size_t)w >= cap) ? 0 : (size_t)w;
}

void s3__sum_free(s3__sum *s) {
  if (s->sha) EVP_MD_CTX_free(s->sha);
  s->sha = NULL;
}
