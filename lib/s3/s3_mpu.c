/* s3_mpu: multipart uploads (create, parts, complete, abort, list) and copies of any size
 * (UploadPartCopy). Every call is one request through s3__perform with a query string built
 * here: parameters in byte order, every value escaped by s3_query_escape, empty values
 * written "name=" (libcurl 7.88 signs the query exactly as given, and SigV4's canonical form
 * of "?uploads" is "uploads="). The XML going out and coming back is s3_wire.c's.
 */
#include "s3.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_internal.h"

enum {
  LIST_PAGE = 100,               /* uploads asked per ListMultipartUploads page */
  LIST_BODY_CAP = 256 * 1024,    /* a page of 100 is some 60 KB on AWS */
  COMPLETE_BODY_CAP = 16 * 1024, /* the result or an error */
  LIST_QUERY_MAX = 7200          /* two escaped 1024-byte keys (marker, prefix) and an upload id */
};

static bool valid_upload_id(const char *id) { return id != NULL && id[0] != '\0' && strlen(id) < S3_UPLOAD_ID_MAX; }

/* Runs q once with a fresh s3_resp; the body head stays in *out (caller frees) when out is not NULL. */
static int perform(s3_client *c, s3_req *q, s3_resp **out, s3_error *err) {
  s3_resp *r = s3__resp_new();
  if (r == NULL) {
    s3__err_set(err, S3_ERR_NOMEM, 0, NULL, q, "out of memory");
    return S3_ERR_NOMEM;
  }
  int rc = s3__perform(c, q, r, err);
  if (out != NULL && rc == 0) {
    *out = r;
  } else {
    s3__resp_free(r);
  }
  return rc;
}

/* "uploadId=ID" or "partNumber=N&uploadId=ID" (number > 0) into buf. */
static int upload_query(const char *upload_id, int number, char *buf, size_t cap) {
  char esc[3 * S3_UPLOAD_ID_MAX];
  if (!valid_upload_id(upload_id) || s3_query_escape(upload_id, esc, sizeof esc) != 0) return S3_ERR_INVALID;
  int n = number > 0 ? snprintf(buf, cap, "partNumber=%d&uploadId=%s", number, esc)
                     : snprintf(buf, cap, "uploadId=%s", esc);
  return (n < 0 || (size_t)n >= cap) ? S3_ERR_INVALID : 0;
}

/* A 200 whose body is an <Error> (CompleteMultipartUpload, UploadPartCopy report late
 * failures so): classify it as a failure of q. */
static int late_error(const s3_resp *r, const s3_req *q, s3_error *err) {
  char code[64], msg[200];
  if (!s3_error_parse(r->body.buf, r->body.len, code, sizeof code, msg, sizeof msg)) return 0;
  int rc = s3_classify(500, code);
  s3__err_set(err, rc, 200, code, q, msg);
  return rc;
}

/* CreateMultipartUpload, with the client's checksum algorithm or without (UploadPartCopy
 * pieces carry no checksum of ours). */
static int mpu_create(s3_client *c, const char *bucket, const char *key, const char *content_type, bool with_checksum,
                      char upload_id[S3_UPLOAD_ID_MAX], s3_error *err) {
  if (upload_id == NULL || key == NULL) return S3_ERR_INVALID;
  upload_id[0] = '\0';
  char ct[160];
  if (content_type == NULL) content_type = "application/octet-stream";
  int n = snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
  if (strpbrk(content_type, "\r\n") != NULL || n < 0 || (size_t)n >= sizeof ct) return S3_ERR_INVALID;
  s3_req q = {.method = "POST",
              .bucket = bucket,
              .key = key,
              .query = "uploads=",
              .upload = true,
              .mem = (const unsigned char *)"",
              .payload_hash = s3__empty_sha256,
              .headers = {ct}};
  if (with_checksum && c->checksum != S3_CHECKSUM_NONE)
    q.headers[1] =
        c->checksum == S3_CHECKSUM_SHA256 ? "x-amz-checksum-algorithm: SHA256" : "x-amz-checksum-algorithm: CRC32C";
  s3_resp *r = NULL;
  int rc = perform(c, &q, &r, err);
  if (rc != 0) return rc;
  rc = s3_initiate_parse(r->body.buf, r->body.len, upload_id);
  if (rc != 0) s3__err_set(err, rc, 200, NULL, &q, "no UploadId in the answer");
  s3__resp_free(r);
  return rc;
}

int s3_mpu_create(s3_client *c, const char *bucket, const char *key, const char *content_type,
                  char upload_id[S3_UPLOAD_ID_MAX], s3_error *err) {
  return mpu_create(c, bucket, key, content_type, true, upload_id, err);
}

int s3_mpu_put_part(s3_client *c, const char *bucket, const char *key, const char *upload_id, int number,
                    s3_read_fn read, void *ud, uint64_t size, s3_part *out, s3_error *err) {
  char query[64 + 3 * S3_UPLOAD_ID_MAX];
  if (key == NULL || read == NULL || out == NULL || number < 1 || number > S3_PART_MAX || size > S3_COPY_SINGLE_MAX ||
      upload_query(upload_id, number, query, sizeof query) != 0)
    return S3_ERR_INVALID;
  s3_object_info info = {0};
  s3_req q = {.method = "PUT",
              .bucket = bucket,
              .key = key,
              .query = query,
              .upload = true,
              .read = read,
              .read_ud = ud,
              .upload_size = size,
              .chunked = true,
              .payload_hash = "UNSIGNED-PAYLOAD",
              .info = &info};
  s3_resp *r = NULL;
  int rc = perform(c, &q, &r, err);
  if (rc != 0) return rc;
  if (info.etag[0] == '\0') {
    s3__err_set(err, S3_ERR_PROTOCOL, info.http_status, NULL, &q, "no ETag for the part");
    s3__resp_free(r);
    return S3_ERR_PROTOCOL;
  }
  out->number = number;
  snprintf(out->etag, sizeof out->etag, "%s", info.etag);
  snprintf(out->checksum, sizeof out->checksum, "%s", r->chunked ? r->sum.b64 : "");
  s3__resp_free(r);
  return 0;
}

int s3_mpu_complete(s3_client *c, const char *bucket, const char *key, const char *upload_id, const s3_part *parts,
                    size_t n, s3_error *err) {
  char query[64 + 3 * S3_UPLOAD_ID_MAX];
  if (key == NULL || upload_query(upload_id, 0, query, sizeof query) != 0) return S3_ERR_INVALID;
  if (n == 0 || n > S3_PART_MAX) return S3_ERR_INVALID;
  size_t cap = s3_complete_xml_cap(n), len = 0;
  char *xml = malloc(cap);
  if (xml == NULL) return S3_ERR_NOMEM;
  int rc = s3_complete_xml(parts, n, c->checksum, xml, cap, &len);
  if (rc != 0) {
    free(xml);
    return rc;
  }
  char hash[65];
  s3__hex_sha256(xml, len, hash);
  s3_req q = {.method = "POST",
              .bucket = bucket,
              .key = key,
              .query = query,
              .upload = true,
              .long_running = true, /* the store may join the parts before it answers */
              .mem = (const unsigned char *)xml,
              .mem_len = len,
              .payload_hash = hash,
              .body_cap = COMPLETE_BODY_CAP,
              .headers = {"Content-Type: application/xml"}};
  s3_resp *r = NULL;
  rc = perform(c, &q, &r, err);
  free(xml);
  if (rc != 0) return rc;
  rc = late_error(r, &q, err);
  if (rc == 0 && memmem(r->body.buf ? r->body.buf : "", r->body.len, "<CompleteMultipartUploadResult", 30) == NULL) {
    rc = S3_ERR_PROTOCOL; /* neither a result nor an error: we cannot tell it worked */
    s3__err_set(err, rc, 200, NULL, &q, "no CompleteMultipartUploadResult in the answer");
  }
  s3__resp_free(r);
  return rc;
}

int s3_mpu_abort(s3_client *c, const char *bucket, const char *key, const char *upload_id, s3_error *err) {
  char query[64 + 3 * S3_UPLOAD_ID_MAX];
  if (key == NULL || upload_query(upload_id, 0, query, sizeof query) != 0) return S3_ERR_INVALID;
  s3_req q = {.method = "DELETE", .bucket = bucket, .key = key, .query = query, .payload_hash = s3__empty_sha256};
  int rc = perform(c, &q, NULL, err);
  if (rc == S3_ERR_NOT_FOUND) { /* no such upload (any more): what the caller wanted */
    if (err) memset(err, 0, sizeof *err);
    rc = 0;
  }
  return rc;
}

/* The query of one ListMultipartUploads page, its parameters in byte order. */
static int list_query(const char *prefix, const s3_list_next *from, char *buf, size_t cap) {
  char km[3 * 1024 + 1] = "", um[3 * S3_UPLOAD_ID_MAX] = "", px[3 * 1024 + 1] = "";
  if (from->truncated && (s3_query_escape(from->key_marker, km, sizeof km) != 0 ||
                          s3_query_escape(from->upload_id_marker, um, sizeof um) != 0))
    return S3_ERR_INVALID;
  if (prefix && s3_query_escape(prefix, px, sizeof px) != 0) return S3_ERR_INVALID;
  int n = snprintf(buf, cap, "%s%s%smax-uploads=%d%s%s%s%s%suploads=", km[0] ? "key-marker=" : "", km, km[0] ? "&" : "",
                   LIST_PAGE, px[0] ? "&prefix=" : "", px, um[0] ? "&upload-id-marker=" : "", um, "&");
  return (n < 0 || (size_t)n >= cap) ? S3_ERR_INVALID : 0;
}

int s3_mpu_list(s3_client *c, const char *bucket, const char *prefix, s3_upload_fn each, void *ud, s3_error *err) {
  if (each == NULL || (prefix && strlen(prefix) > 1024)) return S3_ERR_INVALID;
  s3_list_next *next = calloc(1, sizeof *next);
  char *query = malloc(LIST_QUERY_MAX);
  s3_error e = {0};
  bool key_marker_only = false;
  int rc = S3_ERR_NOMEM;
  if (next == NULL || query == NULL) goto done;
  for (;;) {
    rc = list_query(prefix, next, query, LIST_QUERY_MAX);
    if (rc != 0) goto done;
    s3_req q = {
        .method = "GET", .bucket = bucket, .query = query, .payload_hash = s3__empty_sha256, .body_cap = LIST_BODY_CAP};
    s3_resp *r = NULL;
    rc = perform(c, &q, &r, &e);
    if (rc == S3_ERR_PROTOCOL && next->truncated && !key_marker_only && strcmp(e.s3_code, "InvalidArgument") == 0) {
      /* versitygw v1.8.0 refuses the upload-id-marker it handed out (it looks for it among
       * the keys after key-marker): go on from the key alone (see s3.h) */
      key_marker_only = true;
      next->upload_id_marker[0] = '\0';
      continue;
    }
    if (rc != 0) goto done;
    char prev_key[sizeof next->key_marker], prev_id[sizeof next->upload_id_marker];
    snprintf(prev_key, sizeof prev_key, "%s", next->key_marker);
    snprintf(prev_id, sizeof prev_id, "%s", next->upload_id_marker);
    bool full = r->body.len >= LIST_BODY_CAP;
    rc = full ? S3_ERR_PROTOCOL : s3_list_uploads_parse(r->body.buf, r->body.len, each, ud, next);
    s3__resp_free(r);
    if (rc == 0 && next->truncated && strcmp(prev_key, next->key_marker) == 0 &&
        strcmp(prev_id, next->upload_id_marker) == 0)
      rc = S3_ERR_PROTOCOL; /* the same page again: stop rather than loop */
    if (rc == S3_ERR_PROTOCOL) s3__err_set(&e, rc, 200, NULL, &q, "unreadable ListMultipartUploadsResult");
    if (rc != 0 || !next->truncated) goto done;
    if (key_marker_only) next->upload_id_marker[0] = '\0';
  }
done:
  if (rc != 0 && err) *err = e;
  free(query);
  free(next);
  return rc;
}

int s3_copy_part(s3_client *c, const char *src_bucket, const char *src_key, const char *dst_bucket, const char *dst_key,
                 const char *upload_id, int number, uint64_t first, uint64_t last, s3_part *out, s3_error *err) {
  char query[64 + 3 * S3_UPLOAD_ID_MAX], src[1200], range[96];
  if (!s3_valid_bucket_name(src_bucket) || !s3_valid_key(src_key) || dst_key == NULL || out == NULL || number < 1 ||
      number > S3_PART_MAX || last < first || upload_query(upload_id, number, query, sizeof query) != 0)
    return S3_ERR_INVALID;
  int n = snprintf(src, sizeof src, "x-amz-copy-source: /%s/%s", src_bucket, src_key);
  if (n < 0 || (size_t)n >= sizeof src) return S3_ERR_INVALID;
  snprintf(range, sizeof range, "x-amz-copy-source-range: bytes=%" PRIu64 "-%" PRIu64, first, last);
  s3_req q = {.method = "PUT",
              .bucket = dst_bucket,
              .key = dst_key,
              .query = query,
              .upload = true,
              .long_running = true,
              .self_sign = true, /* curl 7.88 sorts x-amz-copy-source-range wrongly (s3_sign.c) */
              .mem = (const unsigned char *)"",
              .payload_hash = s3__empty_sha256,
              .headers = {src, range}};
  s3_resp *r = NULL;
  int rc = perform(c, &q, &r, err);
  if (rc != 0) return rc;
  rc = late_error(r, &q, err);
  if (rc == 0 && s3_copy_part_parse(r->body.buf, r->body.len, out->etag) != 0) {
    rc = S3_ERR_PROTOCOL;
    s3__err_set(err, rc, 200, NULL, &q, "no ETag in CopyPartResult");
  }
  if (rc == 0) out->number = number;
  s3__resp_free(r);
  return rc;
}

/* The pieces of a sized copy, each copied with UploadPartCopy, then completed. */
static int copy_parts(s3_client *c, const char *sb, const char *sk, const char *db, const char *dk, const char *id,
                      uint64_t size, uint64_t part_size, s3_part *parts, size_t n, s3_error *err) {
  for (size_t i = 0; i < n; i++) {
    uint64_t first = (uint64_t)i * part_size;
    uint64_t last = first + part_size - 1 < size - 1 ? first + part_size - 1 : size - 1;
    int rc = s3_copy_part(c, sb, sk, db, dk, id, (int)i + 1, first, last, &parts[i], err);
    if (rc != 0) return rc;
  }
  return s3_mpu_complete(c, db, dk, id, parts, n, err);
}

int s3_copy_sized(s3_client *c, const char *src_bucket, const char *src_key, const char *dst_bucket,
                  const char *dst_key, uint64_t size, uint64_t single_max, uint64_t part_size, s3_error *err) {
  if (size <= single_max) return s3_copy(c, src_bucket, src_key, dst_bucket, dst_key, err);
  if (part_size == 0 || (size - 1) / part_size + 1 > S3_PART_MAX || !s3_valid_bucket_name(src_bucket) ||
      !s3_valid_key(src_key) || !s3_valid_key(dst_key))
    return S3_ERR_INVALID;
  size_t n = (size_t)((size - 1) / part_size + 1);
  s3_object_info info = {0};
  int rc = s3_head(c, src_bucket, src_key, &info, err); /* for its Content-Type */
  if (rc != 0) return rc;
  s3_part *parts = calloc(n, sizeof *parts);
  if (parts == NULL) return S3_ERR_NOMEM;
  char id[S3_UPLOAD_ID_MAX] = "";
  rc = mpu_create(c, dst_bucket, dst_key, info.content_type[0] ? info.content_type : NULL, false, id, err);
  if (rc == 0) rc = copy_parts(c, src_bucket, src_key, dst_bucket, dst_key, id, size, part_size, parts, n, err);
  if (rc != 0 && id[0] != '\0') {
    s3_error ignored;
    s3_mpu_abort(c, dst_bucket, dst_key, id, &ignored); /* err keeps the first failure */
  }
  free(parts);
  return rc;
}
