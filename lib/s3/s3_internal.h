/*
 * s3_internal: what the files of lib/s3 share (s3.c: error strings and the client;
 * s3_sign.c: names, URLs and payload hashes as SigV4 signs them; s3_sum.c: the checksums
 * and the aws-chunked framing of streamed bodies; s3_wire.c: parsing and classifying what
 * the store answers, query strings and the multipart XML; s3_transfer.c: one request
 * through libcurl; s3_ops.c: the single-request operations; s3_mpu.c: multipart uploads
 * and sized copies). Not part of the module's contract: include only from lib/s3.
 */
#ifndef FERMATA_S3_INTERNAL_H
#define FERMATA_S3_INTERNAL_H

#include "s3.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capbuf/capbuf.h"
#include "curlpool/curlpool.h"

enum {
  S3_URL_MAX = 8192,       /* endpoint, bucket, a 1024-byte key and a query of two escaped keys */
  S3_BODY_CAP = 16 * 1024, /* error documents and copy results are far smaller */
  S3_HDR_MAX = 8,
  S3_CHUNK = 64 * 1024, /* aws-chunked chunk size (the store wants >= 8 KiB but the last) */
};

struct s3_client {
  char *endpoint; /* without trailing '/' */
  char *access_key;
  char *secret_key;
  char *region;
  char sigv4[96];
  long connect_timeout_ms;
  long timeout_ms;
  s3_checksum checksum;
  curlpool *handles;
};

/* A running checksum of a streamed body (CRC32C or SHA-256). */
typedef struct s3__sum {
  s3_checksum kind;
  uint32_t crc;
  void *sha;    /* EVP_MD_CTX *, owned */
  char b64[48]; /* the final value, base64, once s3__sum_trailer made it */
} s3__sum;

/* Starts a checksum of kind (S3_CHECKSUM_NONE: nothing to do). 0 or S3_ERR_NOMEM. */
int s3__sum_init(s3__sum *s, s3_checksum kind);
void s3__sum_update(s3__sum *s, const void *data, size_t len);
/* The trailer line "x-amz-checksum-<name>:<base64>\r\n" into buf. Returns its length, or
 * 0 when it does not fit. */
size_t s3__sum_trailer(s3__sum *s, char *buf, size_t cap);
void s3__sum_free(s3__sum *s);
/* "x-amz-checksum-crc32c" or "x-amz-checksum-sha256". */
const char *s3__sum_header(s3_checksum kind);

typedef struct s3_req {
  const char *method; /* GET HEAD PUT DELETE */
  const char *bucket;
  const char *key;   /* NULL for bucket requests */
  const char *query; /* sorted, escaped "a=1&b=" (signed verbatim), or NULL */
  const char *payload_hash;
  const char *headers[S3_HDR_MAX]; /* extra "Name: value" lines, NULL-terminated */
  /* upload: mem/mem_len, or read/read_ud with upload_size */
  bool upload;
  const unsigned char *mem;
  size_t mem_len;
  size_t mem_off;
  s3_read_fn read;
  void *read_ud;
  uint64_t upload_size;
  bool chunked;      /* read body sent aws-chunked with the client's trailing checksum */
  bool long_running; /* low-speed limit instead of timeout_ms (also for every read body) */
  bool self_sign;    /* signed by s3_sigv4_authorization, not libcurl (body-less only) */
  size_t body_cap;   /* cap of the collected body; 0 means S3_BODY_CAP - 1 */
  /* download sink for 2xx bodies; NULL collects into the capped buffer */
  s3_write_fn write;
  void *write_ud;
  s3_object_info *info;
} s3_req;

typedef struct s3_resp {
  CURL *h;
  s3_req *req;
  capbuf body;    /* head of a body not streamed to the caller: S3_BODY_CAP - 1 bytes */
  bool body_lost; /* out of memory for it: the status alone classifies the answer */
  bool info_sent;
  bool user_abort;
  bool read_failed;
  s3_object_info hdr; /* gathered from the headers of the final response */
  /* a read body: bytes pulled so far; for aws-chunked, the framing state */
  bool chunked; /* q->chunked and the client sends a checksum */
  uint64_t pulled;
  uint64_t chunk_left; /* body bytes left in the current chunk */
  bool chunk_started;  /* a chunk was opened (its CRLF is owed) */
  bool frame_final;    /* the last frame (zero chunk and trailer) is queued */
  char frame[160];     /* chunk header or trailer being sent */
  size_t frame_len, frame_off;
  s3__sum sum;
} s3_resp;

/* Lowercase hex SHA-256 of data[0..len) into out (64 digits and a NUL). */
void s3__hex_sha256(const void *data, size_t len, char out[65]);
/* SHA-256 of the empty body, what every body-less request announces. */
extern const char s3__empty_sha256[];

/* Parses decimal digits at *p into *out with overflow checks; advances *p. Returns 0 or -1
 * (no digit, overflow). */
int s3__parse_u64(const char **p, uint64_t *out);

/* The text of the first <tag>..</tag> in body[0..len), XML entities decoded, into out
 * (NUL-terminated). Returns 0, -1 when absent, -2 when it does not fit in cap. */
int s3__xml_value(const char *body, size_t len, const char *tag, char *out, size_t cap);

/* Fills err (when not NULL) for a failure of request q: code, HTTP status, S3 code (may be
 * NULL) and a detail (NULL or "" = s3_strerror(code)). */
void s3__err_set(s3_error *err, int code, long status, const char *s3code, const s3_req *q, const char *detail);

/* A zeroed s3_resp with its empty body buffer, or NULL; s3__resp_free frees both. */
s3_resp *s3__resp_new(void);
void s3__resp_free(s3_resp *r);

/* Runs one request. On success (2xx) returns 0 and leaves the body head in r->body; on
 * failure classifies it and fills err. r comes from s3__resp_new, used once. */
int s3__perform(s3_client *c, s3_req *q, s3_resp *r, s3_error *err);

#endif
