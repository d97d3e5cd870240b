/*
 * s3_internal: what the files of lib/s3 share (s3.c: error strings and the client;
 * s3_sign.c: names, URLs and payload hashes as SigV4 signs them; s3_wire.c: parsing and
 * classifying what the store answers; s3_transfer.c: one request through libcurl;
 * s3_ops.c: the operations). Not part of the module's contract: include only from lib/s3.
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
  S3_URL_MAX = 2048,
  S3_BODY_CAP = 16 * 1024, /* error documents and copy results are far smaller */
  S3_HDR_MAX = 8,
};

struct s3_client {
  char *endpoint; /* without trailing '/' */
  char *access_key;
  char *secret_key;
  char *region;
  char sigv4[96];
  long connect_timeout_ms;
  long timeout_ms;
  curlpool *handles;
};

typedef struct s3_req {
  const char *method; /* GET HEAD PUT DELETE */
  const char *bucket;
  const char *key; /* NULL for bucket requests */
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
} s3_resp;

/* Lowercase hex SHA-256 of data[0..len) into out (64 digits and a NUL). */
void s3__hex_sha256(const void *data, size_t len, char out[65]);
/* SHA-256 of the empty body, what every body-less request announces. */
extern const char s3__empty_sha256[];

/* Parses decimal digits at *p into *out with overflow checks; advances *p. Returns 0 or -1
 * (no digit, overflow). */
int s3__parse_u64(const char **p, uint64_t *out);

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
