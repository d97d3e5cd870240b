/* httpc: outgoing HTTP on libcurl.
 *
 * Design. A client holds defaults and a pool of idle curl easy handles (lib/curlpool).
 * httpc_do() borrows a handle (or makes one), sets the request's options, performs it
 * with CURLOPT_NOSIGNAL (threads plus timeouts), reads the body into a growable buffer
 * capped at max_response_bytes, and gives the handle back after curl_easy_reset(), which
 * keeps the handle's connection cache: the next call to the same host reuses the
 * connection when the server kept it alive.
 *
 * Timeouts: curl reports both connect and total timeouts as CURLE_OPERATION_TIMEDOUT. We
 * tell them apart with CURLINFO_CONNECT_TIME_T: zero means no connection was ever made,
 * which the breaker treats like a refused connection.
 */
#include "httpc.h"

#include "capbuf/capbuf.h"
#include "curlpool/curlpool.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct httpc {
  long connect_timeout_ms;
  long timeout_ms;
  size_t max_bytes;
  char *user_agent;
  curlpool *handles;
  const trace_tracer *tracer;
};

const char *httpc_strerror(int code) {
  switch (code) {
  case HTTPC_OK: return "ok";
  case HTTPC_ERR_INVALID: return "invalid request";
  case HTTPC_ERR_NOMEM: return "out of memory";
  case HTTPC_ERR_CONNECT: return "cannot connect";
  case HTTPC_ERR_TIMEOUT: return "timeout";
  case HTTPC_ERR_IO: return "connection error";
  case HTTPC_ERR_TOO_LARGE: return "response too large";
  default: return "unknown error";
  }
}

bool httpc_is_failure(int rc, long status) {
  if (rc == HTTPC_ERR_CONNECT || rc == HTTPC_ERR_TIMEOUT || rc == HTTPC_ERR_IO) return true;
  return rc == 0 && status >= 500;
}

int httpc_new(const httpc_config *cfg, httpc **out) {
  *out = NULL;
  httpc_config d = {0};
  if (cfg == NULL) cfg = &d;
  if (cfg->connect_timeout_ms < 0 || cfg->timeout_ms < 0 || cfg->max_idle_handles < 0) return HTTPC_ERR_INVALID;
  const char *ua = cfg->user_agent ? cfg->user_agent : "fermata-httpc";
  if (strpbrk(ua, "\r\n") != NULL) return HTTPC_ERR_INVALID;
  httpc *c = calloc(1, sizeof *c);
  if (c == NULL) return HTTPC_ERR_NOMEM;
  c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 1000;
  c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
  c->max_bytes = cfg->max_response_bytes ? cfg->max_response_bytes : 1024 * 1024;
  c->user_agent = strdup(ua);
  c->tracer = cfg->tracer;
  c->handles = curlpool_new(cfg->max_idle_handles ? cfg->max_idle_handles : 16);
  if (c->user_agent == NULL || c->handles == NULL) {
    free(c->user_agent);
    curlpool_free(c->handles);
    free(c);
    return HTTPC_ERR_NOMEM;
  }
  *out = c;
  return 0;
}

void httpc_free(httpc *c) {
  if (c == NULL) return;
  curlpool_free(c->handles);
  free(c->user_agent);
  free(c);
}

void httpc_response_free(httpc_response *resp) {
  if (resp == NULL) return;
  free(resp->body);
  resp->body = NULL;
  resp->body_len = 0;
}

/* Where the body goes: the client's buffer (lib/capbuf, capped at max_response_bytes), or
 * the caller's (into, capped at its size); over the cap the transfer stops. */
typedef struct sink {
  capbuf body;
  char *into;
  size_t into_cap, into_len;
  bool too_large, nomem;
} sink;

static size_t on_write(char *data, size_t size, size_t n, void *ud) {
  sink *s = ud;
  size_t len = size * n;
  if (s->into) {
    if (len > s->into_cap - s->into_len) {
      s->too_large = true;
      return 0;
    }
    memcpy(s->into + s->into_len, data, len);
    s->into_len += len;
    return len;
  }
  int rc = capbuf_append(&s->body, data, len);
  if (rc == CAPBUF_ERR_FULL) s->too_large = true;
  if (rc == CAPBUF_ERR_NOMEM) s->nomem = true;
  return rc == CAPBUF_OK ? len : 0;
}

/* Copies the value of header line data[0..len) into out when it is "name: value"; a value
 * that does not fit is cut when cut is true, else left out (""). */
static void header_value(const char *data, size_t len, const char *name, bool cut, char *out, size_t cap) {
  size_t nl = strlen(name);
  if (len <= nl || strncasecmp(data, name, nl) != 0 || data[nl] != ':') return;
  const char *v = data + nl + 1;
  size_t vl = len - nl - 1;
  while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
  while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ')) vl--;
  if (vl >= cap && !cut) return;
  if (vl >= cap) vl = cap - 1;
  memcpy(out, v, vl);
  out[vl] = '\0';
}

static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  httpc_response *r = ud;
  size_t len = size * n;
  /* a redirect or 100 Continue would bring a second set: keep the last answer's */
  if (len > 5 && strncmp(data, "HTTP/", 5) == 0) r->content_type[0] = r->content_range[0] = '\0';
  header_value(data, len, "Content-Type", true, r->content_type, sizeof r->content_type);
  /* a cut range would read as another one */
  header_value(data, len, "Content-Range", false, r->content_range, sizeof r->content_range);
  return len;
}

static int classify(CURLcode cc, CURL *h) {
  curl_off_t connect_us = 0;
  switch (cc) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SSL_CONNECT_ERROR: return HTTPC_ERR_CONNECT;
  case CURLE_OPERATION_TIMEDOUT:
    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_us);
    return connect_us == 0 ? HTTPC_ERR_CONNECT : HTTPC_ERR_TIMEOUT;
  case CURLE_OUT_OF_MEMORY: return HTTPC_ERR_NOMEM;
  default: return HTTPC_ERR_IO;
  }
}

static bool valid_method(const char *m) {
  return m && (strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0 ||
               strcmp(m, "HEAD") == 0 || strcmp(m, "PATCH") == 0);
}

/* Appends "name: value" to *list; false on a bad value or no memory. */
static bool add_header(struct curl_slist **list, const char *name, const char *value) {
  char line[256];
  if (strpbrk(value, "\r\n") != NULL) return false;
  int n = snprintf(line, sizeof line, "%s: %s", name, value);
  if (n < 0 || (size_t)n >= sizeof line) return false;
  struct curl_slist *t = curl_slist_append(*list, line);
  if (t == NULL) return false;
  *list = t;
  return true;
}

/* traceparent and tracestate of a valid span; true when there is none. The tracestate
 * (at most TRACE_STATE_MAX, checked by lib/trace) may be longer than add_header's line. */
static bool add_trace(struct curl_slist **list, const trace_span *span) {
  char tp[TRACEPARENT_LEN + 1], ts[TRACE_STATE_MAX + 16];
  if (trace_span_traceparent(span, tp, sizeof tp) != TRACE_OK) return true;
  if (!add_header(list, "traceparent", tp)) return false;
  if (!span->tracestate[0]) return true;
  snprintf(ts, sizeof ts, "tracestate: %s", span->tracestate);
  struct curl_slist *t = curl_slist_append(*list, ts);
  if (!t) return false;
  *list = t;
  return true;
}

static int perform(httpc *c, const httpc_request *req, httpc_response *resp, const trace_span *span);

/* The CLIENT span around perform (httpc.h: "Tracing"). */
int httpc_do(httpc *c, const httpc_request *req, httpc_response *resp) {
  trace_span span;
  trace_span_start(req->trace && req->trace->valid ? c->tracer : NULL, &span, req->trace, req->method,
                   TRACE_KIND_CLIENT);
  int rc = perform(c, req, resp, &span);
  if (!span.valid) return rc;
  char url[TRACE_TAG_VALUE_MAX], status[16];
  const char *u = req->url ? req->url : "";
  snprintf(url, sizeof url, "%.*s", (int)strcspn(u, "?"), u);
  snprintf(status, sizeof status, "%ld", resp->status);
  trace_span_tag(&span, "http.method", req->method);
  trace_span_tag(&span, "http.url", url);
  if (resp->status) trace_span_tag(&span, "http.status_code", status);
  if (rc != 0)
    trace_span_fail(&span, httpc_strerror(rc));
  else if (resp->status >= 500)
    trace_span_fail(&span, status);
  trace_span_remote(&span, req->peer, NULL, 0);
  trace_span_end(c->tracer, &span);
  return rc;
}

static int perform(httpc *c, const httpc_request *req, httpc_response *resp, const trace_span *span) {
  memset(resp, 0, sizeof *resp);
  if (!valid_method(req->method) || req->url == NULL ||
      (strncmp(req->url, "http://", 7) != 0 && strncmp(req->url, "https://", 8) != 0) ||
      (req->body == NULL && req->body_len > 0) || req->timeout_ms < 0 ||
      (req->request_id && strlen(req->request_id) > 128) || (req->into == NULL && req->into_cap > 0)) {
    snprintf(resp->error, sizeof resp->error, "invalid request");
    return HTTPC_ERR_INVALID;
  }
  struct curl_slist *hdrs = NULL;
  /* POST/PUT/PATCH always carry a Content-Length, even 0: some servers want one */
  bool has_body = req->body != NULL || strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0 ||
                  strcmp(req->method, "PATCH") == 0;
  /* "Expect:" off: curl would wait up to 1 s for "100 Continue" on bodies over 1 MB, and
   * our peers answer small JSON calls at once. No signing here, so removing it is safe. */
  struct curl_slist *first = curl_slist_append(NULL, "Expect:");
  if (first == NULL) return HTTPC_ERR_NOMEM;
  hdrs = first;
  if ((has_body && !add_header(&hdrs, "Content-Type", req->content_type ? req->content_type : "application/json")) ||
      !add_header(&hdrs, "Accept", "application/json") ||
      (req->request_id && !add_header(&hdrs, "X-Request-Id", req->request_id)) ||
      (req->range && !add_header(&hdrs, "Range", req->range)) || !add_trace(&hdrs, span)) {
    curl_slist_free_all(hdrs);
    snprintf(resp->error, sizeof resp->error, "invalid header value");
    return HTTPC_ERR_INVALID;
  }
  CURL *h = curlpool_get(c->handles);
  if (h == NULL) {
    curl_slist_free_all(hdrs);
    return HTTPC_ERR_NOMEM;
  }
  sink s = {.body = capbuf_make(c->max_bytes), .into = req->into, .into_cap = req->into_cap};
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h, CURLOPT_URL, req->url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms ? req->timeout_ms : c->timeout_ms);
  curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
  if (strcmp(req->method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (strcmp(req->method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
  }
  if (has_body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
  }

  CURLcode cc = curl_easy_perform(h);
  int rc = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
  curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &resp->new_connections);
  curl_off_t total_us = 0;
  curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &total_us);
  resp->elapsed_ms = (double)total_us / 1000.0;
  if (cc != CURLE_OK) {
    rc = s.too_large ? HTTPC_ERR_TOO_LARGE : s.nomem ? HTTPC_ERR_NOMEM : classify(cc, h);
    int n = snprintf(resp->error, sizeof resp->error, "%s %s: %s", req->method, req->url,
                     s.too_large ? "response body over the cap" : (errbuf[0] ? errbuf : curl_easy_strerror(cc)));
    (void)n; /* a cut log line is fine */
    capbuf_free(&s.body);
    resp->body_len = s.into_len;
  } else if (s.into) {
    resp->body_len = s.into_len;
  } else {
    resp->body_len = s.body.len;
    resp->body = capbuf_take(&s.body);
  }
  curl_slist_free_all(hdrs);
  curlpool_put(c->handles, h);
  return rc;
}
