/* s3_ops: the single-request operations (buckets, put, get, head, copy, delete). Each
 * builds one s3_req and runs it through s3__perform (s3_transfer.c); what is special to an
 * operation (CreateBucketConfiguration outside us-east-1, a 409 for a bucket we own, the
 * late errors of CopyObject, a DELETE of a missing key) is handled here.
 */
#include "s3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_internal.h"

int s3_create_bucket(s3_client *c, const char *bucket, s3_error *err) {
  s3_req q = {.method = "PUT", .bucket = bucket, .upload = true, .payload_hash = s3__empty_sha256};
  char body[256], hash[65];
  if (strcmp(c->region, "us-east-1") != 0) { /* us-east-1 refuses an explicit constraint */
    int n = snprintf(body, sizeof body,
                     "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/"
                     "2006-03-01/\"><LocationConstraint>%s</LocationConstraint>"
                     "</CreateBucketConfiguration>",
                     c->region);
    if (n < 0 || (size_t)n >= sizeof body) {
      s3__err_set(err, S3_ERR_INVALID, 0, NULL, &q, "region too long");
      return S3_ERR_INVALID;
    }
    s3__hex_sha256(body, (size_t)n, hash);
    q.mem = (const unsigned char *)body;
    q.mem_len = (size_t)n;
    q.payload_hash = hash;
  }
  s3_error e = {0};
  s3_resp *r = s3__resp_new();
  if (r == NULL) {
    s3__err_set(err, S3_ERR_NOMEM, 0, NULL, &q, "out of memory");
    return S3_ERR_NOMEM;
  }
  int rc = s3__perform(c, &q, r, &e);
  s3__resp_free(r);
  if (rc == S3_ERR_CONFLICT && strcmp(e.s3_code, "BucketAlreadyOwnedByYou") == 0) rc = 0;
  if (rc != 0 && err) *err = e;
  return rc;
}

int s3_bucket_info(s3_client *c, const char *bucket, bool *exists, s3_object_info *info, s3_error *err) {
  s3_object_info scratch = {0};
  s3_req q = {.method = "HEAD", .bucket = bucket, .payload_hash = s3__empty_sha256, .info = info ? info : &scratch};
  s3_resp *r = s3__resp_new();
  if (r == NULL) return S3_ERR_NOMEM;
  int rc = s3__perform(c, &q, r, err);
  s3__resp_free(r);
  *exists = rc == 0;
  return rc == S3_ERR_NOT_FOUND ? 0 : rc;
}

int s3_bucket_exists(s3_client *c, const char *bucket, bool *exists, s3_error *err) {
  return s3_bucket_info(c, bucket, exists, NULL, err);
}

/* PUT with the given upload settings and an optional Content-Type. */
static int put_common(s3_client *c, s3_req *q, const char *content_type, s3_error *err) {
  char ct[160];
  if (content_type == NULL) content_type = "application/octet-stream";
  if (strpbrk(content_type, "\r\n") != NULL) return S3_ERR_INVALID;
  int n = snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
  if (n < 0 || (size_t)n >= sizeof ct) return S3_ERR_INVALID;
  q->method = "PUT";
  q->upload = true;
  q->headers[0] = ct;
  s3_resp *r = s3__resp_new();
  if (r == NULL) return S3_ERR_NOMEM;
  int rc = s3__perform(c, q, r, err);
  s3__resp_free(r);
  return rc;
}

int s3_put(s3_client *c, const char *bucket, const char *key, const void *data, size_t len, const char *content_type,
           s3_error *err) {
  if (key == NULL || (data == NULL && len > 0)) return S3_ERR_INVALID;
  char hash[65];
  s3__hex_sha256(data ? data : "", len, hash);
  return s3_put_hashed(c, bucket, key, data, len, hash, content_type, err);
}

int s3_put_hashed(s3_client *c, const char *bucket, const char *key, const void *data, size_t len,
                  const char *sha256_hex, const char *content_type, s3_error *err) {
  if (key == NULL || (data == NULL && len > 0) || sha256_hex == NULL || strlen(sha256_hex) != 64 ||
      strspn(sha256_hex, "0123456789abcdef") != 64)
    return S3_ERR_INVALID;
  s3_req q = {
      .bucket = bucket, .key = key, .payload_hash = sha256_hex, .mem = data ? data : (const void *)"", .mem_len = len};
  return put_common(c, &q, content_type, err);
}

int s3_put_stream(s3_client *c, const char *bucket, const char *key, s3_read_fn read, void *ud, uint64_t size,
                  const char *content_type, s3_error *err) {
  if (key == NULL || read == NULL || size > S3_COPY_SINGLE_MAX) return S3_ERR_INVALID;
  /* transfer picks STREAMING-UNSIGNED-PAYLOAD-TRAILER or UNSIGNED-PAYLOAD by the client's checksum */
  s3_req q = {.bucket = bucket,
              .key = key,
              .payload_hash = "UNSIGNED-PAYLOAD",
              .read = read,
              .read_ud = ud,
              .upload_size = size,
              .chunked = true};
  return put_common(c, &q, content_type, err);
}

static int read_file(void *ud, void *buf, size_t cap, size_t *got) {
  FILE *fp = ud;
  *got = fread(buf, 1, cap, fp);
  return (*got == 0 && ferror(fp)) ? -1 : 0;
}

int s3_put_file(s3_client *c, const char *bucket, const char *key, FILE *fp, uint64_t size, const char *content_type,
                s3_error *err) {
  if (fp == NULL) return S3_ERR_INVALID;
  return s3_put_stream(c, bucket, key, read_file, fp, size, content_type, err);
}

int s3_get(s3_client *c, const char *bucket, const char *key, const s3_range *range, s3_write_fn write, void *ud,
           s3_object_info *info, s3_error *err) {
  if (write == NULL || key == NULL) return S3_ERR_INVALID;
  char rh[80] = "Range: ";
  s3_req q = {.method = "GET",
              .bucket = bucket,
              .key = key,
              .payload_hash = s3__empty_sha256,
              .write = write,
              .write_ud = ud,
              .info = info};
  if (range) {
    if (s3_range_format(range, rh + 7, sizeof rh - 7) != 0) return S3_ERR_INVALID;
    q.headers[0] = rh;
  }
  s3_resp *r = s3__resp_new();
  if (r == NULL) return S3_ERR_NOMEM;
  int rc = s3__perform(c, &q, r, err);
  s3__resp_free(r);
  return rc;
}

int s3_head(s3_client *c, const char *bucket, const char *key, s3_object_info *info, s3_error *err) {
  s3_req q = {.method = "HEAD", .bucket = bucket, .key = key, .payload_hash = s3__empty_sha256, .info = info};
  if (key == NULL) return S3_ERR_INVALID;
  s3_resp *r = s3__resp_new();
  if (r == NULL) return S3_ERR_NOMEM;
  int rc = s3__perform(c, &q, r, err);
  s3__resp_free(r);
  return rc;
}

int s3_copy(s3_client *c, const char *src_bucket, const char *src_key, const char *dst_bucket, const char *dst_key,
            s3_error *err) {
  if (!s3_valid_bucket_name(src_bucket) || !s3_valid_key(src_key) || dst_key == NULL) return S3_ERR_INVALID;
  char src[1200];
  int n = snprintf(src, sizeof src, "x-amz-copy-source: /%s/%s", src_bucket, src_key);
  if (n < 0 || (size_t)n >= sizeof src) return S3_ERR_INVALID;
  s3_req q = {.method = "PUT",
              .bucket = dst_bucket,
              .key = dst_key,
              .upload = true,
              .long_running = true, /* the store copies the whole object before it answers */
              .payload_hash = s3__empty_sha256,
              .headers = {src}};
  s3_resp *r = s3__resp_new();
  if (r == NULL) return S3_ERR_NOMEM;
  int rc = s3__perform(c, &q, r, err);
  char code[64], msg[200];
  if (rc == 0 && s3_error_parse(r->body.buf, r->body.len, code, sizeof code, msg, sizeof msg)) {
    /* CopyObject reports late failures in a 200 body */
    rc = s3_classify(500, code);
    s3__err_set(err, rc, 200, code, &q, msg);
  }
  s3__resp_free(r);
  return rc;
}

int s3_delete(s3_client *c, const char *bucket, const char *key, s3_error *err) {
  if (key == NULL) return S3_ERR_INVALID;
  s3_req q = {.method = "DELETE", .bucket = bucket, .key = key, .payload_hash = s3__empty_sha256};
  s3_resp *r = s3__resp_new();
  if (r == NULL) return S3_ERR_NOMEM;
  int rc = s3__perform(c, &q, r, err);
  s3__resp_free(r);
  if (rc == S3_ERR_NOT_FOUND) { /* already gone: what the caller wanted */
    if (err) memset(err, 0, sizeof *err);
    rc = 0;
  }
  return rc;
}
