/* s3_transfer: one request through libcurl. s3__perform borrows a handle from the client's
 * pool, sets it up (SigV4 through libcurl, the payload hash header, the upload source or the
 * streaming sink), runs the transfer and classifies the outcome into an s3_err. Bodies that
 * are not streamed to the caller (error documents, CopyObject results) land in the capped
 * buffer of s3_resp: only the first few KB are ever needed.
 */
#include "s3.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "curlpool/curlpool.h"
#include "s3_internal.h"

static long resp_status(s3_resp *r) {
  long st = 0;
  curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &st);
  return st;
}

static void info_finish(s3_resp *r) {
  r->hdr.http_status = resp_status(r);
  if (r->hdr.total_size == 0 && r->hdr.http_status == 200) r->hdr.total_size = r->hdr.content_length;
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
    if (s3__parse_u64(&p, &x) == 0) r->hdr.content_length = x;
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
  if (!r->body_lost && capbuf_append_head(&r->body, buf, len) != CAPBUF_OK) r->body_lost = true;
  return len;
}

/* Pulls up to cap body bytes from the caller, never past the announced size; 0 bytes
 * before it (or a failure) aborts the transfer. Returns the bytes or 0 with read_failed. */
static size_t pull(s3_resp *r, char *buf, size_t cap) {
  s3_req *q = r->req;
  uint64_t left = q->upload_size - r->pulled;
  size_t want = left < cap ? (size_t)left : cap;
  size_t got = 0;
  if (want == 0) return 0;
  if (q->read(q->read_ud, buf, want, &got) != 0 || got > want || got == 0) {
    r->read_failed = true;
    return 0;
  }
  r->pulled += got;
  return got;
}

/* Queues the next frame of an aws-chunked body: the CRLF owed by the chunk just sent, then
 * the next chunk's header, or the zero chunk and the trailer after the last byte. */
static bool next_frame(s3_resp *r) {
  uint64_t left = r->req->upload_size - r->pulled;
  const char *crlf = r->chunk_started ? "\r\n" : "";
  int n;
  r->frame_off = 0;
  if (left > 0) {
    r->chunk_left = left < S3_CHUNK ? left : S3_CHUNK;
    n = snprintf(r->frame, sizeof r->frame, "%s%" PRIx64 "\r\n", crlf, r->chunk_left);
    r->chunk_started = true;
    r->frame_len = (size_t)n;
    return true;
  }
  n = snprintf(r->frame, sizeof r->frame, "%s0\r\n", crlf);
  size_t t = s3__sum_trailer(&r->sum, r->frame + n, sizeof r->frame - (size_t)n - 2);
  if (t == 0) return false;
  memcpy(r->frame + (size_t)n + t, "\r\n", 2);
  r->frame_len = (size_t)n + t + 2;
  r->frame_final = true;
  return true;
}

static size_t chunked_read(s3_resp *r, char *buf, size_t cap) {
  size_t out = 0;
  while (out < cap) {
    if (r->frame_off < r->frame_len) {
      size_t m = r->frame_len - r->frame_off;
      if (m > cap - out) m = cap - out;
      memcpy(buf + out, r->frame + r->frame_off, m);
      r->frame_off += m;
      out += m;
      continue;
    }
    if (r->frame_final) break;
    if (r->chunk_left == 0) {
      if (!next_frame(r)) {
        r->read_failed = true;
        return CURL_READFUNC_ABORT;
      }
      continue;
    }
    size_t want = cap - out;
    if (want > r->chunk_left) want = (size_t)r->chunk_left;
    size_t got = pull(r, buf + out, want);
    if (got == 0) return CURL_READFUNC_ABORT;
    s3__sum_update(&r->sum, buf + out, got);
    r->chunk_left -= got;
    out += got;
    break; /* hand over what the caller gave; curl asks again */
  }
  return out;
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
  if (r->chunked) return chunked_read(r, buf, cap);
  if (r->pulled == q->upload_size) return 0;
  size_t got = pull(r, buf, cap);
  return got ? got : CURL_READFUNC_ABORT;
}

/* Lets curl rewind an in-memory body (it does after some connection reuse failures). */
static int on_seek(void *ud, curl_off_t off, int origin) {
  s3_resp *r = ud;
  s3_req *q = r->req;
  if (q->read != NULL || origin != SEEK_SET || off < 0 || (uint64_t)off > q->mem_len) return CURL_SEEKFUNC_CANTSEEK;
  q->mem_off = (size_t)off;
  return CURL_SEEKFUNC_OK;
}

void s3__err_set(s3_error *err, int code, long status, const char *s3code, const s3_req *q, const char *detail) {
  if (err == NULL) return;
  err->code = code;
  err->http_status = status;
  snprintf(err->s3_code, sizeof err->s3_code, "%s", s3code ? s3code : "");
  snprintf(err->message, sizeof err->message, "%s /%s%s%s: %ld%s%s: %s", q->method, q->bucket, q->key ? "/" : "",
           q->key ? q->key : "", status, err->s3_code[0] ? " " : "", err->s3_code,
           detail && detail[0] ? detail : s3_strerror(code));
}

static int add_header(struct curl_slist **hdrs, const char *line) {
  struct curl_slist *t = curl_slist_append(*hdrs, line);
  if (t == NULL) return S3_ERR_NOMEM;
  *hdrs = t;
  return 0;
}

/* Adds Host, x-amz-date and Authorization for a request signed by us (q->self_sign): every
 * x-amz-* header of q is signed, sorted by name, with the payload hash. */
static int self_sign(const s3_client *c, const s3_req *q, const char *hash, struct curl_slist **hdrs) {
  char date[17], host[300], hh[320], dh[40], auth[600], path[1200];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
  const char *h = strstr(c->endpoint, "//") + 2;
  snprintf(host, sizeof host, "host:%s", h);
  snprintf(hh, sizeof hh, "x-amz-content-sha256:%s", hash);
  snprintf(dh, sizeof dh, "x-amz-date:%s", date);
  int n = snprintf(path, sizeof path, "/%s%s%s", q->bucket, q->key ? "/" : "", q->key ? q->key : "");
  if (n < 0 || (size_t)n >= sizeof path) return S3_ERR_INVALID;
  const char *signed_hdrs[S3_HDR_MAX + 3] = {host, hh, dh};
  size_t k = 3;
  for (int i = 0; i < S3_HDR_MAX && q->headers[i]; i++)
    if (strncmp(q->headers[i], "x-amz-", 6) == 0) signed_hdrs[k++] = q->headers[i];
  int rc = s3_sigv4_authorization(c->access_key, c->secret_key, c->region, date, q->method, path, q->query, signed_hdrs,
                                  k, hash, auth + 15, sizeof auth - 15);
  if (rc != 0) return rc;
  memcpy(auth, "Authorization: ", 15);
  snprintf(host, sizeof host, "Host: %s", h);
  snprintf(dh, sizeof dh, "x-amz-date: %s", date);
  if (add_header(hdrs, host) != 0 || add_header(hdrs, dh) != 0 || add_header(hdrs, auth) != 0) return S3_ERR_NOMEM;
  return 0;
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

s3_resp *s3__resp_new(void) {
  s3_resp *r = calloc(1, sizeof *r);
  if (r != NULL) r->body = capbuf_make(S3_BODY_CAP - 1);
  return r;
}

void s3__resp_free(s3_resp *r) {
  if (r == NULL) return;
  s3__sum_free(&r->sum);
  capbuf_free(&r->body);
  free(r);
}

/* The request's URL with its query into url (cap S3_URL_MAX). 0 or S3_ERR_INVALID. */
static int request_url(const s3_client *c, const s3_req *q, char *url, s3_error *err) {
  int rc = s3_url_build(c->endpoint, q->bucket, q->key, url, S3_URL_MAX);
  if (rc != 0) {
    s3__err_set(err, rc, 0, NULL, q, "invalid bucket name or key");
    return rc;
  }
  if (q->query != NULL) { /* signed verbatim by curl 7.88: the caller sorted and escaped it */
    size_t ul = strlen(url);
    int n = snprintf(url + ul, S3_URL_MAX - ul, "?%s", q->query);
    if (n < 0 || (size_t)n >= S3_URL_MAX - ul) {
      s3__err_set(err, S3_ERR_INVALID, 0, NULL, q, "query too long");
      return S3_ERR_INVALID;
    }
  }
  return 0;
}

/* The payload hash, the aws-chunked headers of a chunked body, our own signature where
 * curl's would be wrong, and the operation's headers; *wire = the body's bytes on the wire. */
static int request_headers(const s3_client *c, const s3_req *q, const s3_resp *r, struct curl_slist **hdrs,
                           uint64_t *wire) {
  char line[160];
  *wire = q->read ? q->upload_size : q->mem_len;
  snprintf(line, sizeof line, "x-amz-content-sha256: %s",
           r->chunked ? "STREAMING-UNSIGNED-PAYLOAD-TRAILER" : (q->read ? "UNSIGNED-PAYLOAD" : q->payload_hash));
  if (add_header(hdrs, line) != 0) return S3_ERR_NOMEM;
  if (r->chunked) {
    char dec[80], trailer[64];
    snprintf(dec, sizeof dec, "x-amz-decoded-content-length: %" PRIu64, q->upload_size);
    snprintf(trailer, sizeof trailer, "x-amz-trailer: %s", s3__sum_header(c->checksum));
    if (add_header(hdrs, "Content-Encoding: aws-chunked") != 0 || add_header(hdrs, dec) != 0 ||
        add_header(hdrs, trailer) != 0)
      return S3_ERR_NOMEM;
    *wire = s3_chunked_length(q->upload_size, c->checksum);
  }
  if (q->self_sign) {
    int rc = self_sign(c, q, q->payload_hash, hdrs);
    if (rc != 0) return rc;
  }
  for (int i = 0; i < S3_HDR_MAX && q->headers[i]; i++)
    if (add_header(hdrs, q->headers[i]) != 0) return S3_ERR_NOMEM;
  return 0;
}

static void request_options(const s3_client *c, const s3_req *q, s3_resp *r, const char *url, struct curl_slist *hdrs,
                            char *errbuf, uint64_t wire) {
  CURL *h = r->h;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads + timeouts: no SIGALRM */
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
  if (q->read != NULL || q->long_running) {
    /* the caller's pace or the object's size decides how long this takes: give up only
     * when less than 1 byte/s moved for timeout_ms */
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->timeout_ms < 1000 ? 1L : c->timeout_ms / 1000);
  } else {
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
  }
  if (!q->self_sign) {
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key);
    curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_key);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
  if (strcmp(q->method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (q->upload) { /* PUT (or POST) with Content-Length, even 0 (S3 wants it) */
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    if (strcmp(q->method, "PUT") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)wire);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, r);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
  } else if (strcmp(q->method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
  }
}

/* What the finished transfer stands for; fills err on failure. */
static int outcome(s3_resp *r, const s3_req *q, CURLcode cc, const char *errbuf, s3_error *err) {
  long status = resp_status(r);
  if (status < 200) status = 0; /* a 100 Continue is no answer */
  int rc;
  if (cc != CURLE_OK) {
    if (r->user_abort) {
      rc = S3_ERR_ABORTED;
    } else if (r->read_failed || cc == CURLE_READ_ERROR || cc == CURLE_ABORTED_BY_CALLBACK) {
      rc = S3_ERR_IO;
    } else {
      rc = curl_to_err(cc);
    }
    s3__err_set(err, rc, status, NULL, q, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    return rc;
  }
  info_finish(r);
  if (q->info && !r->info_sent) *q->info = r->hdr;
  if (status >= 200 && status < 300) return 0;
  char code[64], msg[200];
  s3_error_parse(r->body.buf, r->body.len, code, sizeof code, msg, sizeof msg);
  rc = s3_classify(status, code);
  if (rc == S3_OK) rc = S3_ERR_PROTOCOL; /* a known code on a 2xx cannot happen */
  s3__err_set(err, rc, status, code, q, msg);
  return rc;
}

/* Runs one request. On success (2xx) returns 0 and leaves the body head in r->body; on
 * failure classifies it and fills err. */
int s3__perform(s3_client *c, s3_req *q, s3_resp *r, s3_error *err) {
  char url[S3_URL_MAX];
  int rc = request_url(c, q, url, err);
  if (rc != 0) return rc;
  s3__sum_free(&r->sum);
  capbuf_free(&r->body);
  memset(r, 0, sizeof *r);
  r->body = capbuf_make(q->body_cap ? q->body_cap : S3_BODY_CAP - 1);
  r->req = q;
  r->chunked = q->chunked && q->read != NULL && c->checksum != S3_CHECKSUM_NONE;
  if (r->chunked && s3__sum_init(&r->sum, c->checksum) != 0) {
    s3__err_set(err, S3_ERR_NOMEM, 0, NULL, q, "checksum context");
    return S3_ERR_NOMEM;
  }
  struct curl_slist *hdrs = NULL;
  uint64_t wire = 0;
  rc = request_headers(c, q, r, &hdrs, &wire);
  if (rc != 0) {
    s3__err_set(err, rc, 0, NULL, q, rc == S3_ERR_NOMEM ? "out of memory" : "cannot sign the request");
    curl_slist_free_all(hdrs);
    return rc;
  }
  r->h = curlpool_get(c->handles);
  if (r->h == NULL) {
    s3__err_set(err, S3_ERR_NOMEM, 0, NULL, q, "curl_easy_init failed");
    curl_slist_free_all(hdrs);
    return S3_ERR_NOMEM;
  }
  char errbuf[CURL_ERROR_SIZE] = "";
  request_options(c, q, r, url, hdrs, errbuf, wire);
  rc = outcome(r, q, curl_easy_perform(r->h), errbuf, err);
  curl_slist_free_all(hdrs);
  curlpool_put(c->handles, r->h);
  r->h = NULL;
  return rc;
}
