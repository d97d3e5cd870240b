/* s3_transfer: one request through libcurl. s3__perform borrows a handle from the client's
 * pool, sets it up (SigV4 through libcurl, the payload hash header, the upload source or the
 * streaming sink), runs the transfer and classifies the outcome into an s3_err. Bodies that
 * are not streamed to the caller (error documents, CopyObject results) land in the capped
 * buffer of s3_resp: only the first few KB are ever needed.
 */
#include "s3.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
  capbuf_free(&r->body);
  free(r);
}

/* Runs one request. On success (2xx) returns 0 and leaves the body head in r->body; on
 * failure classifies it and fills err. */
int s3__perform(s3_client *c, s3_req *q, s3_resp *r, s3_error *err) {
  char url[S3_URL_MAX];
  int rc = s3_url_build(c->endpoint, q->bucket, q->key, url, sizeof url);
  if (rc != 0) {
    s3__err_set(err, rc, 0, NULL, q, "invalid bucket name or key");
    return rc;
  }
  capbuf_free(&r->body);
  memset(r, 0, sizeof *r);
  r->body = capbuf_make(S3_BODY_CAP - 1);
  r->req = q;
  r->h = curlpool_get(c->handles);
  if (r->h == NULL) {
    s3__err_set(err, S3_ERR_NOMEM, 0, NULL, q, "curl_easy_init failed");
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
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(q->read ? q->upload_size : q->mem_len));
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
    s3__err_set(err, rc, status, NULL, q, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    goto fail;
  }
  info_finish(r);
  if (q->info && !r->info_sent) *q->info = r->hdr;
  if (status >= 200 && status < 300) {
    rc = 0;
    goto fail; /* not a failure: the common exit */
  }
  char code[64], msg[200];
  s3_error_parse(r->body.buf, r->body.len, code, sizeof code, msg, sizeof msg);
  rc = s3_classify(status, code);
  if (rc == S3_OK) rc = S3_ERR_PROTOCOL; /* a known code on a 2xx cannot happen */
  s3__err_set(err, rc, status, code, q, msg);

fail:
  curl_slist_free_all(hdrs);
  curlpool_put(c->handles, h);
  r->h = NULL;
  return rc;
}
