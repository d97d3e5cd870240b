/* s3_wire: the store's answers taken apart: Range and Content-Range values, S3's XML error
 * documents, the s3_err an answer stands for, and the kind of store a Server header names.
 * Pure functions: no I/O, no client.
 */
#include "s3.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "s3_internal.h"

int s3_range_format(const s3_range *r, char *buf, size_t cap) {
  int n;
  switch (r->kind) {
  case S3_RANGE_FROM_TO:
    if (r->last < r->first) return S3_ERR_INVALID;
    n = snprintf(buf, cap, "bytes=%" PRIu64 "-%" PRIu64, r->first, r->last);
    break;
  case S3_RANGE_FROM: n = snprintf(buf, cap, "bytes=%" PRIu64 "-", r->first); break;
  case S3_RANGE_SUFFIX:
    if (r->suffix_len == 0) return S3_ERR_INVALID;
    n = snprintf(buf, cap, "bytes=-%" PRIu64, r->suffix_len);
    break;
  default: return S3_ERR_INVALID;
  }
  return (n < 0 || (size_t)n >= cap) ? S3_ERR_INVALID : 0;
}

/* Parses decimal digits at *p into *out with overflow checks; advances *p. */
int s3__parse_u64(const char **p, uint64_t *out) {
  const char *s = *p;
  uint64_t v = 0;
  if (!isdigit((unsigned char)*s)) return -1;
  while (isdigit((unsigned char)*s)) {
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
    s++;
  }
  *p = s;
  *out = v;
  return 0;
}

int s3_content_range_parse(const char *v, uint64_t *first, uint64_t *last, uint64_t *total) {
  if (v == NULL || strncmp(v, "bytes ", 6) != 0) return S3_ERR_PROTOCOL;
  const char *p = v + 6;
  if (s3__parse_u64(&p, first) != 0 || *p++ != '-' || s3__parse_u64(&p, last) != 0 || *p++ != '/')
    return S3_ERR_PROTOCOL;
  if (*p == '*') {
    *total = 0;
    p++;
  } else if (s3__parse_u64(&p, total) != 0) {
    return S3_ERR_PROTOCOL;
  }
  while (*p == ' ' || *p == '\r' || *p == '\n') p++;
  if (*p != '\0' || *last < *first) return S3_ERR_PROTOCOL;
  return 0;
}

/* Copies the text of <tag>...</tag> found in body[0..len) into out, unwrapping CDATA and
 * replacing control characters so a log line stays one line. */
static bool xml_text(const char *body, size_t len, const char *tag, char *out, size_t cap) {
  char open[40], close[40];
  snprintf(open, sizeof open, "<%s>", tag);
  snprintf(close, sizeof close, "</%s>", tag);
  const char *s = memmem(body, len, open, strlen(open));
  if (s == NULL) return false;
  s += strlen(open);
  const char *e = memmem(s, len - (size_t)(s - body), close, strlen(close));
  if (e == NULL) return false;
  if (e - s >= 12 && memcmp(s, "<![CDATA[", 9) == 0 && memcmp(e - 3, "]]>", 3) == 0) {
    s += 9;
    e -= 3;
  }
  size_t n = (size_t)(e - s);
  if (cap == 0) return true;
  if (n >= cap) n = cap - 1;
  for (size_t i = 0; i < n; i++) out[i] = ((unsigned char)s[i] < 0x20) ? ' ' : s[i];
  out[n] = '\0';
  return true;
}

bool s3_error_parse(const char *body, size_t len, char *code, size_t code_cap, char *message, size_t message_cap) {
  if (code_cap) code[0] = '\0';
  if (message_cap) message[0] = '\0';
  if (body == NULL || len == 0) return false;
  const char *err = memmem(body, len, "<Error>", 7);
  if (err == NULL) return false;
  size_t rest = len - (size_t)(err - body);
  xml_text(err, rest, "Code", code, code_cap);
  xml_text(err, rest, "Message", message, message_cap);
  return true;
}

int s3_classify(long status, const char *code) {
  static const struct {
    const char *code;
    int err;
  } known[] = {
      {"NoSuchKey", S3_ERR_NOT_FOUND},
      {"NoSuchBucket", S3_ERR_NOT_FOUND},
      {"NotFound", S3_ERR_NOT_FOUND},
      {"AccessDenied", S3_ERR_DENIED},
      {"SignatureDoesNotMatch", S3_ERR_DENIED},
      {"InvalidAccessKeyId", S3_ERR_DENIED},
      {"AuthorizationHeaderMalformed", S3_ERR_DENIED},
      {"RequestTimeTooSkewed", S3_ERR_DENIED},
      {"ExpiredToken", S3_ERR_DENIED},
      {"InvalidToken", S3_ERR_DENIED},
      {"XAdminUserNotFound", S3_ERR_DENIED}, /* versitygw: an unknown access key, as a 404 */
      {"SlowDown", S3_ERR_UNAVAILABLE},
      {"ServiceUnavailable", S3_ERR_UNAVAILABLE},
      {"InternalError", S3_ERR_UNAVAILABLE},
      {"RequestTimeout", S3_ERR_UNAVAILABLE},
      {"BucketAlreadyExists", S3_ERR_CONFLICT},
      {"BucketNotEmpty", S3_ERR_CONFLICT},
      {"OperationAborted", S3_ERR_CONFLICT},
      {"InvalidRange", S3_ERR_RANGE},
      {"InsufficientStorage", S3_ERR_NO_SPACE},
  };
  if (code != NULL && code[0] != '\0')
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
      if (strcmp(code, known[i].code) == 0) return known[i].err;
  if (status >= 200 && status < 300) return S3_OK;
  if (status == 404) return S3_ERR_NOT_FOUND;
  if (status == 401 || status == 403) return S3_ERR_DENIED;
  if (status == 409) return S3_ERR_CONFLICT;
  if (status == 416) return S3_ERR_RANGE;
  if (status == 507) return S3_ERR_NO_SPACE;
  if (status == 429 || status >= 500) return S3_ERR_UNAVAILABLE;
  return S3_ERR_PROTOCOL;
}

const char *s3_store_kind(const char *server) {
  static const struct {
    const char *prefix, *kind;
  } kinds[] = {
      {"VERSITYGW", "versitygw"},   {"AmazonS3", "aws-s3"},       {"MinIO", "minio"},
      {"localstack", "localstack"}, {"TwistedWeb", "localstack"}, {"hypercorn", "localstack"},
      {"Werkzeug", "moto"},         {"Ceph", "ceph-rgw"},         {"garage", "garage"},
  };
  if (server != NULL)
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
      if (strncasecmp(server, kinds[i].prefix, strlen(kinds[i].prefix)) == 0) return kinds[i].kind;
  return "s3-compatible";
}
