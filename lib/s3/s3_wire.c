/* s3_wire: the store's answers taken apart: Range and Content-Range values, S3's XML error
 * documents, the s3_err an answer stands for, and the kind of store a Server header names;
 * and what multipart uploads exchange: escaped query values, the CompleteMultipartUpload
 * document, the Initiate / CopyPart / ListMultipartUploads results. Pure functions: no I/O,
 * no client.
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
      {"NoSuchUpload", S3_ERR_NOT_FOUND},
      {"InvalidPart", S3_ERR_INVALID},
      {"InvalidPartOrder", S3_ERR_INVALID},
      {"EntityTooSmall", S3_ERR_INVALID},
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

/* ---------------------------------------------------------------- multipart XML */

/* Decodes the five XML entities and &#N; / &#xN; (ASCII only) of s[0..n) into out. */
static int xml_unescape(const char *s, size_t n, char *out, size_t cap) {
  static const struct {
    const char *name;
    char ch;
  } ents[] = {{"&quot;", '"'}, {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&apos;", '\''}};
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    char ch = s[i];
    size_t used = 1;
    if (ch == '&') {
      used = 0;
      for (size_t k = 0; k < sizeof ents / sizeof ents[0]; k++) {
        size_t el = strlen(ents[k].name);
        if (n - i >= el && memcmp(s + i, ents[k].name, el) == 0) {
          ch = ents[k].ch;
          used = el;
          break;
        }
      }
      if (used == 0 && n - i > 3 && s[i + 1] == '#') {
        bool hex = s[i + 2] == 'x';
        size_t j = i + (hex ? 3 : 2);
        unsigned v = 0;
        while (j < n && j - i < 8 && isxdigit((unsigned char)s[j]) && (hex || isdigit((unsigned char)s[j]))) {
          v = v * (hex ? 16u : 10u) +
              (unsigned)(isdigit((unsigned char)s[j]) ? s[j] - '0' : (tolower(s[j]) - 'a' + 10));
          j++;
        }
        if (j < n && s[j] == ';' && v > 0 && v < 128) {
          ch = (char)v;
          used = j + 1 - i;
        }
      }
      if (used == 0) return -1;
    }
    if (o + 1 >= cap) return -2;
    out[o++] = ch;
    i += used;
  }
  if (cap == 0) return -2;
  out[o] = '\0';
  return 0;
}

int s3__xml_value(const char *body, size_t len, const char *tag, char *out, size_t cap) {
  char open[48], close[48];
  snprintf(open, sizeof open, "<%s>", tag);
  snprintf(close, sizeof close, "</%s>", tag);
  if (body == NULL) return -1;
  const char *s = memmem(body, len, open, strlen(open));
  if (s == NULL) return -1;
  s += strlen(open);
  const char *e = memmem(s, len - (size_t)(s - body), close, strlen(close));
  if (e == NULL) return -1;
  int rc = xml_unescape(s, (size_t)(e - s), out, cap);
  if (rc != 0 && cap) out[0] = '\0';
  return rc;
}

int s3_query_escape(const char *s, char *buf, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    bool keep = isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~';
    size_t need = keep ? 1 : 3;
    if (o + need >= cap) return S3_ERR_NOMEM;
    if (keep) {
      buf[o++] = (char)*p;
    } else {
      buf[o++] = '%';
      buf[o++] = hex[*p >> 4];
      buf[o++] = hex[*p & 15];
    }
  }
  if (cap == 0) return S3_ERR_NOMEM;
  buf[o] = '\0';
  return 0;
}

static const char complete_open[] = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
static const char complete_close[] = "</CompleteMultipartUpload>";

size_t s3_complete_xml_cap(size_t n) {
  /* "<Part><PartNumber>10000</PartNumber><ETag>" etag(79) "</ETag>"
   * "<ChecksumCRC32C>" checksum(47) "</ChecksumCRC32C></Part>" < 240 */
  return sizeof complete_open + sizeof complete_close + n * 240;
}

int s3_complete_xml(const s3_part *parts, size_t n, s3_checksum kind, char *buf, size_t cap, size_t *len) {
  if (parts == NULL || n == 0 || n > S3_PART_MAX) return S3_ERR_INVALID;
  const char *tag = kind == S3_CHECKSUM_SHA256 ? "ChecksumSHA256" : "ChecksumCRC32C";
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
  for (size_t i = 0; i < n; i++) {
    size_t cl = strnlen(parts[i].checksum, sizeof parts[i].checksum);
    if (cl == sizeof parts[i].checksum || strspn(parts[i].checksum, b64) != cl || (cl && kind == S3_CHECKSUM_NONE))
      return S3_ERR_INVALID;
    size_t el = strnlen(parts[i].etag, sizeof parts[i].etag);
    if (parts[i].number < 1 || parts[i].number > S3_PART_MAX || (i > 0 && parts[i].number <= parts[i - 1].number) ||
        el == 0 || el == sizeof parts[i].etag || strpbrk(parts[i].etag, "<>&") != NULL)
      return S3_ERR_INVALID;
  }
  size_t o = 0;
  int w = snprintf(buf, cap, "%s", complete_open);
  if (w < 0 || (size_t)w >= cap) return S3_ERR_NOMEM;
  o = (size_t)w;
  for (size_t i = 0; i < n; i++) {
    const char *ck = parts[i].checksum;
    w = snprintf(buf + o, cap - o, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag>%s%s%s%s%s%s%s</Part>",
                 parts[i].number, parts[i].etag, ck[0] ? "<" : "", ck[0] ? tag : "", ck[0] ? ">" : "", ck,
                 ck[0] ? "</" : "", ck[0] ? tag : "", ck[0] ? ">" : "");
    if (w < 0 || (size_t)w >= cap - o) return S3_ERR_NOMEM;
    o += (size_t)w;
  }
  w = snprintf(buf + o, cap - o, "%s", complete_close);
  if (w < 0 || (size_t)w >= cap - o) return S3_ERR_NOMEM;
  *len = o + (size_t)w;
  return 0;
}

int s3_initiate_parse(const char *body, size_t len, char upload_id[S3_UPLOAD_ID_MAX]) {
  if (body == NULL || memmem(body, len, "<InitiateMultipartUploadResult", 30) == NULL) return S3_ERR_PROTOCOL;
  if (s3__xml_value(body, len, "UploadId", upload_id, S3_UPLOAD_ID_MAX) != 0 || upload_id[0] == '\0') {
    upload_id[0] = '\0';
    return S3_ERR_PROTOCOL;
  }
  return 0;
}

int s3_copy_part_parse(const char *body, size_t len, char etag[80]) {
  if (body == NULL || memmem(body, len, "<CopyPartResult", 15) == NULL) return S3_ERR_PROTOCOL;
  if (s3__xml_value(body, len, "ETag", etag, 80) != 0 || etag[0] == '\0') {
    etag[0] = '\0';
    return S3_ERR_PROTOCOL;
  }
  return 0;
}

int s3_list_uploads_parse(const char *body, size_t len, s3_upload_fn each, void *ud, s3_list_next *next) {
  memset(next, 0, sizeof *next);
  const char *root = body ? memmem(body, len, "<ListMultipartUploadsResult", 27) : NULL;
  if (root == NULL) return S3_ERR_PROTOCOL;
  const char *end = body + len;
  const char *p = root;
  char key[1025], id[S3_UPLOAD_ID_MAX];
  for (;;) {
    const char *u = memmem(p, (size_t)(end - p), "<Upload>", 8);
    if (u == NULL) break;
    const char *ue = memmem(u, (size_t)(end - u), "</Upload>", 9);
    if (ue == NULL) return S3_ERR_PROTOCOL;
    size_t ul = (size_t)(ue - u);
    if (s3__xml_value(u, ul, "Key", key, sizeof key) != 0 || s3__xml_value(u, ul, "UploadId", id, sizeof id) != 0 ||
        key[0] == '\0' || id[0] == '\0')
      return S3_ERR_PROTOCOL;
    if (each(ud, key, id) != 0) return S3_ERR_ABORTED;
    p = ue + 9;
  }
  /* the page's own fields, outside the <Upload> elements (which hold no such tags) */
  char flag[8];
  size_t rl = (size_t)(end - root);
  next->truncated = s3__xml_value(root, rl, "IsTruncated", flag, sizeof flag) == 0 && strcmp(flag, "true") == 0;
  if (!next->truncated) return 0;
  if (s3__xml_value(root, rl, "NextKeyMarker", next->key_marker, sizeof next->key_marker) != 0 ||
      next->key_marker[0] == '\0')
    return S3_ERR_PROTOCOL;
  if (s3__xml_value(root, rl, "NextUploadIdMarker", next->upload_id_marker, sizeof next->upload_id_marker) == -2)
    return S3_ERR_PROTOCOL;
  return 0;
}
