/* s3: S3 client on libcurl with CURLOPT_AWS_SIGV4.
 *
 * Design. Every operation builds one s3_req (method, bucket, key, extra headers, an
 * optional upload source and an optional streaming sink) and hands it to s3_perform(),
 * which borrows a curl easy handle from the client's pool, signs with SigV4 through
 * libcurl, runs the transfer, and classifies the outcome into an s3_err. Non-streamed
 * bodies (errors, CopyObject results) land in a capped buffer: we only ever need the first
 * few KB to find <Code> and <Message>.
 *
 * Things libcurl 7.88 does not do for us (see PITFALLS.md): the four-field SigV4 parameter
 * ("aws:amz:REGION:s3"; a loopback host gives curl nothing to guess from), the
 * x-amz-content-sha256 header (hex SHA-256 of in-memory bodies, UNSIGNED-PAYLOAD for
 * streams), and percent-encoding: we sign no query strings at all and accept only URL-safe
 * keys, so nothing needs encoding. We never set Expect or X-Amz-Date by hand.
 *
 * The handles come from a lib/curlpool pool (reset, so live connections and the DNS cache
 * stay; up to max_idle kept). A handle is used by one thread at a time, which is all
 * libcurl asks.
 */
#include "s3.h"

#include "curlpool.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

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

/* ---------------------------------------------------------------- helpers */

const char *s3_strerror(int code) {
  switch (code) {
  case S3_OK: return "ok";
  case S3_ERR_INVALID: return "invalid argument";
  case S3_ERR_NOMEM: return "out of memory";
  case S3_ERR_NOT_FOUND: return "not found";
  case S3_ERR_UNAVAILABLE: return "object store unavailable";
  case S3_ERR_DENIED: return "access denied";
  case S3_ERR_CONFLICT: return "conflict";
  case S3_ERR_RANGE: return "range not satisfiable";
  case S3_ERR_PROTOCOL: return "unexpected object store response";
  case S3_ERR_ABORTED: return "aborted by caller";
  case S3_ERR_IO: return "local read failed";
  case S3_ERR_NO_SPACE: return "object store is out of space";
  default: return "unknown error";
  }
}

bool s3_valid_bucket_name(const char *b) {
  if (b == NULL) return false;
  size_t n = strlen(b);
  if (n < 3 || n > 63) return false;
  if (!isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1])) return false;
  int dots = 0, all_digits_or_dots = 1;
  for (size_t i = 0; i < n; i++) {
    char ch = b[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-'))
      return false;
    if (ch == '.') {
      dots++;
      if (b[i + 1] == '.') return false;
    } else if (!(ch >= '0' && ch <= '9')) {
      all_digits_or_dots = 0;
    }
  }
  if (dots == 3 && all_digits_or_dots) return false; /* looks like an IPv4 address */
  if (strncmp(b, "xn--", 4) == 0) return false;
  if (n >= 8 && strcmp(b + n - 8, "-s3alias") == 0) return false;
  return true;
}

bool s3_valid_key(const char *k) {
  if (k == NULL) return false;
  size_t n = strlen(k);
  if (n == 0 || n > 1024 || k[0] == '/') return false;
  size_t seg_start = 0;
  for (size_t i = 0; i <= n; i++) {
    char ch = k[i];
    if (ch == '/' || ch == '\0') {
      size_t seg = i - seg_start;
      /* empty segments would be squashed or kept depending on the server; dot segments
       * are normalised away by curl: either way the stored key would not be ours */
      if (ch == '/' && seg == 0) return false;
      if (seg == 1 && k[seg_start] == '.') return false;
      if (seg == 2 && k[seg_start] == '.' && k[seg_start + 1] == '.') return false;
      if (ch == '\0' && seg == 0) return false; /* trailing '/' */
      seg_start = i + 1;
      continue;
    }
    if (!(isalnum((unsigned char)ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~'))
      return false;
  }
  return true;
}

int s3_sigv4_param(const char *region, char *buf, size_t cap) {
  if (region == NULL || region[0] == '\0' || strlen(region) > 32) return S3_ERR_INVALID;
  for (const char *p = region; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
      return S3_ERR_INVALID;
  int n = snprintf(buf, cap, "aws:amz:%s:s3", region);
  return (n < 0 || (size_t)n >= cap) ? S3_ERR_INVALID : 0;
}

int s3_url_build(const char *endpoint, const char *bucket, const char *key, char *buf,
                 size_t cap) {
  if (endpoint == NULL || !s3_valid_bucket_name(bucket)) return S3_ERR_INVALID;
  if (key != NULL && !s3_valid_key(key)) return S3_ERR_INVALID;
  size_t elen = strlen(endpoint);
  while (elen > 0 && endpoint[elen - 1] == '/') elen--;
  int n = key ? snprintf(buf, cap, "%.*s/%s/%s", (int)elen, endpoint, bucket, key)
              : snprintf(buf, cap, "%.*s/%s", (int)elen, endpoint, bucket);
  return (n < 0 || (size_t)n >= cap) ? S3_ERR_NOMEM : 0;
}

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
static int parse_u64(const char **p, uint64_t *out) {
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
  if (parse_u64(&p, first) != 0 || *p++ != '-' || parse_u64(&p, last) != 0 || *p++ != '/')
    return S3_ERR_PROTOCOL;
  if (*p == '*') {
    *total = 0;
    p++;
  } else if (parse_u64(&p, total) != 0) {
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

bool s3_error_parse(const char *body, size_t len, char *code, size_t code_cap, char *message,
                    size_t message_cap) {
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
      {"NoSuchKey", S3_ERR_NOT_FOUND},          {"NoSuchBucket", S3_ERR_NOT_FOUND},
      {"NotFound", S3_ERR_NOT_FOUND},           {"AccessDenied", S3_ERR_DENIED},
      {"SignatureDoesNotMatch", S3_ERR_DENIED}, {"InvalidAccessKeyId", S3_ERR_DENIED},
      {"AuthorizationHeaderMalformed", S3_ERR_DENIED}, {"RequestTimeTooSkewed", S3_ERR_DENIED},
      {"ExpiredToken", S3_ERR_DENIED},          {"InvalidToken", S3_ERR_DENIED},
      {"XAdminUserNotFound", S3_ERR_DENIED}, /* versitygw: an unknown access key, as a 404 */
      {"SlowDown", S3_ERR_UNAVAILABLE},         {"ServiceUnavailable", S3_ERR_UNAVAILABLE},
      {"InternalError", S3_ERR_UNAVAILABLE},    {"RequestTimeout", S3_ERR_UNAVAILABLE},
      {"BucketAlreadyExists", S3_ERR_CONFLICT}, {"BucketNotEmpty", S3_ERR_CONFLICT},
      {"OperationAborted", S3_ERR_CONFLICT},    {"InvalidRange", S3_ERR_RANGE},
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

/* ---------------------------------------------------------------- client */

int s3_new(const s3_config *cfg, s3_client **out) {
  *out = NULL;
  if (cfg == NULL || cfg->endpoint == NULL || cfg->access_key == NULL ||
      cfg->secret_key == NULL || cfg->region == NULL)
    return S3_ERR_INVALID;
  if (strncmp(cfg->endpoint, "http://", 7) != 0 && strncmp(cfg->endpoint, "https://", 8) != 0)
    return S3_ERR_INVALID;
  const char *host = strstr(cfg->endpoint, "//") + 2;
  const char *slash = strchr(host, '/');
  if (host[0] == '\0' || host[0] == '/' || (slash && slash[1] != '\0')) return S3_ERR_INVALID;
  if (cfg->connect_timeout_ms < 0 || cfg->timeout_ms < 0 || cfg->max_idle_handles < 0)
    return S3_ERR_INVALID;

  s3_client *c = calloc(1, sizeof *c);
  if (c == NULL) return S3_ERR_NOMEM;
  if (s3_sigv4_param(cfg->region, c->sigv4, sizeof c->sigv4) != 0) {
    free(c);
    return S3_ERR_INVALID;
  }
  c->endpoint = strdup(cfg->endpoint);
  c->access_key = strdup(cfg->access_key);
  c->secret_key = strdup(cfg->secret_key);
  c->region = strdup(cfg->region);
  c->handles = curlpool_new(cfg->max_idle_handles ? cfg->max_idle_handles : 8);
  c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 2000;
  c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 60000;
  if (!c->endpoint || !c->access_key || !c->secret_key || !c->region || !c->handles) {
    free(c->endpoint);
    free(c->access_key);
    free(c->secret_key);
    free(c->region);
    curlpool_free(c->handles);
    free(c);
    return S3_ERR_NOMEM;
  }
  size_t elen = strlen(c->endpoint);
  if (c->endpoint[elen - 1] == '/') c->endpoint[elen - 1] = '\0';
  *out = c;
  return 0;
}

void s3_free(s3_client *c) {
  if (c == NULL) return;
  curlpool_free(c->handles);
  free(c->endpoint);
  free(c->access_key);
  if (c->secret_key) explicit_bzero(c->secret_key, strlen(c->secret_key));
  free(c->secret_key);
  free(c->region);
  free(c);
}

/* ---------------------------------------------------------------- transfer */

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
  char body[S3_BODY_CAP];
  size_t len;
  bool info_sent;
  bool user_abort;
  bool read_failed;
  s3_object_info hdr; /* gathered from the headers of the final response */
} s3_resp;

static long resp_status(s3_resp *r) {
  long st = 0;
  curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &st);
  return st;
}

static void info_finish(s3_resp *r) {
  r->hdr.http_status = resp_status(r);
  if (r->hdr.total_size == 0 && r->hdr.http_status == 200)
    r->hdr.total_size = r->hdr.content_length;
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud) {
  s3_resp *r = ud;
  size_t len = size * n;
  char line[512];
  size_t m = len < sizeof line - 1 ? len : sizeof line - 1;
  memcpy(line, buf, m);
  line[m] = '\0';
  while (m > 0 && (line[m - 1] == '\r' || line[m - 1] == '\n')) line[--m] = '\0';
  if (strncmp(line, "HTTP/", 5) == 0) { /* a new response (after 100 Continue): start over */
    memset(&r->hdr, 0, sizeof r->hdr);
    return len;
  }
  char *colon = strchr(line, ':');
  if (colon == NULL) return len;
  *colon = '\0';
  char *v = colon + 1;
  while (*v == ' ' || *v == '\t') v++;
  if (strcasecmp(line, "ETag") == 0) {
    snprintf(r->hdr.etag, sizeof r->hdr.etag, "%s", v);
  } else if (strcasecmp(line, "Content-Type") == 0) {
    snprintf(r->hdr.content_type, sizeof r->hdr.content_type, "%s", v);
  } else if (strcasecmp(line, "Content-Length") == 0) {
    const char *p = v;
    uint64_t x;
    if (parse_u64(&p, &x) == 0) r->hdr.content_length = x;
  } else if (strcasecmp(line, "Server") == 0) {
    snprintf(r->hdr.server, sizeof r->hdr.server, "%s", v);
  } else if (strcasecmp(line, "Content-Range") == 0) {
    uint64_t a, b, t;
    if (s3_content_range_parse(v, &a, &b, &t) == 0) r->hdr.total_size = t;
  }
  return len;
}

static size_t on_write(char *buf, size_t size, size_t n, void *ud) {
  s3_resp *r = ud;
  size_t len = size * n;
  long st = resp_status(r);
  if (st >= 200 && st < 300 && r->req->write) {
    if (!r->info_sent) {
      info_finish(r);
      if (r->req->info) *r->req->info = r->hdr;
      r->info_sent = true;
    }
    if (r->req->write(r->req->write_ud, buf, len) != 0) {
      r->user_abort = true;
      return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    return len;
  }
  /* error documents and small results: keep the head, drop the rest */
  size_t room = sizeof r->body - 1 - r->len;
  size_t m = len < room ? len : room;
  memcpy(r->body + r->len, buf, m);
  r->len += m;
  r->body[r->len] = '\0';
  return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud) {
  s3_resp *r = ud;
  s3_req *q = r->req;
  size_t cap = size * n;
  if (q->mem != NULL || q->read == NULL) {
    size_t left = q->mem_len - q->mem_off;
    size_t m = left < cap ? left : cap;
    if (m) memcpy(buf, q->mem + q->mem_off, m);
    q->mem_off += m;
    return m;
  }
  size_t got = 0;
  if (q->read(q->read_ud, buf, cap, &got) != 0 || got > cap) {
    r->read_failed = true;
    return CURL_READFUNC_ABORT;
  }
  return got;
}

/* Lets curl rewind an in-memory body (it does after some connection reuse failures). */
static int on_seek(void *ud, curl_off_t off, int origin) {
  s3_resp *r = ud;
  s3_req *q = r->req;
  if (q->read != NULL || origin != SEEK_SET || off < 0 || (uint64_t)off > q->mem_len)
    return CURL_SEEKFUNC_CANTSEEK;
  q->mem_off = (size_t)off;
  return CURL_SEEKFUNC_OK;
}

static void hex_sha256(const void *data, size_t len, char out[65]) {
  unsigned char md[32];
  unsigned int mdlen = 0;
  EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
  for (unsigned i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void err_set(s3_error *err, int code, long status, const char *s3code,
                    const s3_req *q, const char *detail) {
  if (err == NULL) return;
  err->code = code;
  err->http_status = status;
  snprintf(err->s3_code, sizeof err->s3_code, "%s", s3code ? s3code : "");
  snprintf(err->message, sizeof err->message, "%s /%s%s%s: %ld%s%s: %s", q->method, q->bucket,
           q->key ? "/" : "", q->key ? q->key : "", status, err->s3_code[0] ? " " : "",
           err->s3_code, detail && detail[0] ? detail : s3_strerror(code));
}

static int curl_to_err(CURLcode rc) {
  switch (rc) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM: return S3_ERR_UNAVAILABLE;
  case CURLE_OUT_OF_MEMORY: return S3_ERR_NOMEM;
  default: return S3_ERR_PROTOCOL;
  }
}

/* Runs one request. On success (2xx) returns 0 and leaves the body head in r->body; on
 * failure classifies it and fills err. */
static int s3_perform(s3_client *c, s3_req *q, s3_resp *r, s3_error *err) {
  char url[S3_URL_MAX];
  int rc = s3_url_build(c->endpoint, q->bucket, q->key, url, sizeof url);
  if (rc != 0) {
    err_set(err, rc, 0, NULL, q, "invalid bucket name or key");
    return rc;
  }
  memset(r, 0, sizeof *r);
  r->req = q;
  r->h = curlpool_get(c->handles);
  if (r->h == NULL) {
    err_set(err, S3_ERR_NOMEM, 0, NULL, q, "curl_easy_init failed");
    return S3_ERR_NOMEM;
  }
  CURL *h = r->h;
  struct curl_slist *hdrs = NULL, *tmp;
  char errbuf[CURL_ERROR_SIZE] = "";
  char line[160];
  snprintf(line, sizeof line, "x-amz-content-sha256: %s", q->payload_hash);
  rc = S3_ERR_NOMEM;
  if ((tmp = curl_slist_append(hdrs, line)) == NULL) goto fail;
  hdrs = tmp;
  for (int i = 0; i < S3_HDR_MAX && q->headers[i]; i++) {
    if ((tmp = curl_slist_append(hdrs, q->headers[i])) == NULL) goto fail;
    hdrs = tmp;
  }

  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads + timeouts: no SIGALRM */
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
  curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
  curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key);
  curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_key);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
  if (strcmp(q->method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (q->upload) { /* PUT with Content-Length, even 0 (S3 wants it) */
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                     (curl_off_t)(q->read ? q->upload_size : q->mem_len));
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, r);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
  } else if (strcmp(q->method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
  }

  CURLcode cc = curl_easy_perform(h);
  long status = resp_status(r);
  if (cc != CURLE_OK) {
    if (r->user_abort) {
      rc = S3_ERR_ABORTED;
    } else if (r->read_failed || cc == CURLE_READ_ERROR || cc == CURLE_ABORTED_BY_CALLBACK) {
      rc = S3_ERR_IO;
    } else {
      rc = curl_to_err(cc);
    }
    err_set(err, rc, status, NULL, q, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    goto fail;
  }
  info_finish(r);
  if (q->info && !r->info_sent) *q->info = r->hdr;
  if (status >= 200 && status < 300) {
    rc = 0;
    goto fail; /* not a failure: the common exit */
  }
  char code[64], msg[200];
  s3_error_parse(r->body, r->len, code, sizeof code, msg, sizeof msg);
  rc = s3_classify(status, code);
  if (rc == S3_OK) rc = S3_ERR_PROTOCOL; /* a known code on a 2xx cannot happen */
  err_set(err, rc, status, code, q, msg);

fail:
  curl_slist_free_all(hdrs);
  curlpool_put(c->handles, h);
  r->h = NULL;
  return rc;
}

/* SHA-256 of the empty body, what every body-less request announces. */
static const char EMPTY_SHA256[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/* ---------------------------------------------------------------- operations */

int s3_create_bucket(s3_client *c, const char *bucket, s3_error *err) {
  s3_req q = {.method = "PUT", .bucket = bucket, .upload = true, .payload_hash = EMPTY_SHA256};
  char body[256], hash[65];
  if (strcmp(c->region, "us-east-1") != 0) { /* us-east-1 refuses an explicit constraint */
    int n = snprintf(body, sizeof body,
                     "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/"
                     "2006-03-01/\"><LocationConstraint>%s</LocationConstraint>"
                     "</CreateBucketConfiguration>",
                     c->region);
    if (n < 0 || (size_t)n >= sizeof body) {
      err_set(err, S3_ERR_INVALID, 0, NULL, &q, "region too long");
      return S3_ERR_INVALID;
    }
    hex_sha256(body, (size_t)n, hash);
    q.mem = (const unsigned char *)body;
    q.mem_len = (size_t)n;
    q.payload_hash = hash;
  }
  s3_error e = {0};
  s3_resp *r = malloc(sizeof *r);
  if (r == NULL) {
    err_set(err, S3_ERR_NOMEM, 0, NULL, &q, "out of memory");
    return S3_ERR_NOMEM;
  }
  int rc = s3_perform(c, &q, r, &e);
  free(r);
  if (rc == S3_ERR_CONFLICT && strcmp(e.s3_code, "BucketAlreadyOwnedByYou") == 0) rc = 0;
  if (rc != 0 && err) *err = e;
  return rc;
}

int s3_bucket_info(s3_client *c, const char *bucket, bool *exists, s3_object_info *info,
                   s3_error *err) {
  s3_object_info scratch;
  s3_req q = {.method = "HEAD", .bucket = bucket, .payload_hash = EMPTY_SHA256,
              .info = info ? info : &scratch};
  s3_resp *r = malloc(sizeof *r);
  if (r == NULL) return S3_ERR_NOMEM;
  int rc = s3_perform(c, &q, r, err);
  free(r);
  *exists = rc == 0;
  return rc == S3_ERR_NOT_FOUND ? 0 : rc;
}

int s3_bucket_exists(s3_client *c, const char *bucket, bool *exists, s3_error *err) {
  return s3_bucket_info(c, bucket, exists, NULL, err);
}

const char *s3_store_kind(const char *server) {
  static const struct {
    const char *prefix, *kind;
  } kinds[] = {
      {"VERSITYGW", "versitygw"}, {"AmazonS3", "aws-s3"}, {"MinIO", "minio"},
      {"localstack", "localstack"}, {"TwistedWeb", "localstack"}, {"hypercorn", "localstack"},
      {"Werkzeug", "moto"}, {"Ceph", "ceph-rgw"}, {"garage", "garage"},
  };
  if (server != NULL)
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
      if (strncasecmp(server, kinds[i].prefix, strlen(kinds[i].prefix)) == 0) return kinds[i].kind;
  return "s3-compatible";
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
  s3_resp *r = malloc(sizeof *r);
  if (r == NULL) return S3_ERR_NOMEM;
  int rc = s3_perform(c, q, r, err);
  free(r);
  return rc;
}

int s3_put(s3_client *c, const char *bucket, const char *key, const void *data, size_t len,
           const char *content_type, s3_error *err) {
  if (key == NULL || (data == NULL && len > 0)) return S3_ERR_INVALID;
  char hash[65];
  hex_sha256(data ? data : "", len, hash);
  return s3_put_hashed(c, bucket, key, data, len, hash, content_type, err);
}

int s3_put_hashed(s3_client *c, const char *bucket, const char *key, const void *data, size_t len,
                  const char *sha256_hex, const char *content_type, s3_error *err) {
  if (key == NULL || (data == NULL && len > 0) || sha256_hex == NULL || strlen(sha256_hex) != 64 ||
      strspn(sha256_hex, "0123456789abcdef") != 64)
    return S3_ERR_INVALID;
  s3_req q = {.bucket = bucket, .key = key, .payload_hash = sha256_hex,
              .mem = data ? data : (const void *)"", .mem_len = len};
  return put_common(c, &q, content_type, err);
}

int s3_put_stream(s3_client *c, const char *bucket, const char *key, s3_read_fn read,
                  void *ud, uint64_t size, const char *content_type, s3_error *err) {
  if (key == NULL || read == NULL || size > (uint64_t)INT64_MAX) return S3_ERR_INVALID;
  s3_req q = {.bucket = bucket, .key = key, .payload_hash = "UNSIGNED-PAYLOAD",
              .read = read, .read_ud = ud, .upload_size = size};
  return put_common(c, &q, content_type, err);
}

static int read_file(void *ud, void *buf, size_t cap, size_t *got) {
  FILE *fp = ud;
  *got = fread(buf, 1, cap, fp);
  return (*got == 0 && ferror(fp)) ? -1 : 0;
}

int s3_put_file(s3_client *c, const char *bucket, const char *key, FILE *fp, uint64_t size,
                const char *content_type, s3_error *err) {
  if (fp == NULL) return S3_ERR_INVALID;
  return s3_put_stream(c, bucket, key, read_file, fp, size, content_type, err);
}

int s3_get(s3_client *c, const char *bucket, const char *key, const s3_range *range,
           s3_write_fn write, void *ud, s3_object_info *info, s3_error *err) {
  if (write == NULL || key == NULL) return S3_ERR_INVALID;
  char rh[80] = "Range: ";
  s3_req q = {.method = "GET", .bucket = bucket, .key = key, .payload_hash = EMPTY_SHA256,
              .write = write, .write_ud = ud, .info = info};
  if (range) {
    if (s3_range_format(range, rh + 7, sizeof rh - 7) != 0) return S3_ERR_INVALID;
    q.headers[0] = rh;
  }
  s3_resp *r = malloc(sizeof *r);
  if (r == NULL) return S3_ERR_NOMEM;
  int rc = s3_perform(c, &q, r, err);
  free(r);
  return rc;
}

int s3_head(s3_client *c, const char *bucket, const char *key, s3_object_info *info,
            s3_error *err) {
  s3_req q = {.method = "HEAD", .bucket = bucket, .key = key, .payload_hash = EMPTY_SHA256,
              .info = info};
  if (key == NULL) return S3_ERR_INVALID;
  s3_resp *r = malloc(sizeof *r);
  if (r == NULL) return S3_ERR_NOMEM;
  int rc = s3_perform(c, &q, r, err);
  free(r);
  return rc;
}

int s3_copy(s3_client *c, const char *src_bucket, const char *src_key, const char *dst_bucket,
            const char *dst_key, s3_error *err) {
  if (!s3_valid_bucket_name(src_bucket) || !s3_valid_key(src_key) || dst_key == NULL)
    return S3_ERR_INVALID;
  char src[1200];
  int n = snprintf(src, sizeof src, "x-amz-copy-source: /%s/%s", src_bucket, src_key);
  if (n < 0 || (size_t)n >= sizeof src) return S3_ERR_INVALID;
  s3_req q = {.method = "PUT", .bucket = dst_bucket, .key = dst_key, .upload = true,
              .payload_hash = EMPTY_SHA256, .headers = {src}};
  s3_resp *r = malloc(sizeof *r);
  if (r == NULL) return S3_ERR_NOMEM;
  int rc = s3_perform(c, &q, r, err);
  char code[64], msg[200];
  if (rc == 0 && s3_error_parse(r->body, r->len, code, sizeof code, msg, sizeof msg)) {
    /* CopyObject reports late failures in a 200 body */
    rc = s3_classify(500, code);
    err_set(err, rc, 200, code, &q, msg);
  }
  free(r);
  return rc;
}

int s3_delete(s3_client *c, const char *bucket, const char *key, s3_error *err) {
  if (key == NULL) return S3_ERR_INVALID;
  s3_req q = {.method = "DELETE", .bucket = bucket, .key = key, .payload_hash = EMPTY_SHA256};
  s3_resp *r = malloc(sizeof *r);
  if (r == NULL) return S3_ERR_NOMEM;
  int rc = s3_perform(c, &q, r, err);
  free(r);
  if (rc == S3_ERR_NOT_FOUND) { /* already gone: what the caller wanted */
    if (err) memset(err, 0, sizeof *err);
    rc = 0;
  }
  return rc;
}
